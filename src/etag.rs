//! Entity tags for JSON answers, and `304 Not Modified` for a client that
//! already holds the answer.
//!
//! The tag is a hash of the body as the handler wrote it, so it changes
//! whenever the body would: a vote or rating (the totals), and the reader's
//! own fields (`your_vote`, `your_rating`). Two readers share a tag only when
//! they would get the same bytes, so a tag never lets one reader's answer
//! stand for another's; the answers keep `Vary: Cookie` and their private
//! caching besides. The tag is weak (`W/"…"`): compression, outside this
//! layer, changes the bytes on the wire but not what they mean, and
//! `If-None-Match` compares weakly anyway (RFC 9110, 13.1.2).
//!
//! Only `200` answers to `GET` and `HEAD` whose type is `application/json`
//! get a tag; event streams, pages, errors and writes pass untouched.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::body::HttpBody as _;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use axum::response::Response;
use futures_util::future::Either;
use tower::{Layer, Service};

/// Larger JSON bodies are sent without a tag rather than held in memory.
const MAX_TAGGED_BODY: u64 = 1024 * 1024;

#[derive(Clone, Copy, Debug, Default)]
pub struct ETagLayer;

impl<S> Layer<S> for ETagLayer {
    type Service = ETag<S>;

    fn layer(&self, inner: S) -> ETag<S> {
        ETag { inner }
    }
}

#[derive(Clone, Debug)]
pub struct ETag<S> {
    inner: S,
}

type Tagging = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

impl<S> Service<Request<Body>> for ETag<S>
where
    S: Service<Request<Body>, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<S::Future, Tagging>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        if !matches!(*request.method(), Method::GET | Method::HEAD) {
            return Either::Left(self.inner.call(request));
        }
        let if_none_match = IfNoneMatch::from_headers(request.headers());
        let answer = self.inner.call(request);
        Either::Right(Box::pin(async move {
            let response = answer.await?;
            Ok(tag(response, &if_none_match).await)
        }))
    }
}

/// Tags a JSON answer, and turns it into a `304` when the client holds it.
async fn tag(response: Response, if_none_match: &IfNoneMatch) -> Response {
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<mime::Mime>().ok())
        .is_some_and(|m| m.essence_str() == mime::APPLICATION_JSON.essence_str());
    let small = response
        .body()
        .size_hint()
        .exact()
        .is_some_and(|size| size <= MAX_TAGGED_BODY);
    if response.status() != StatusCode::OK
        || !is_json
        || !small
        || response.headers().contains_key(header::ETAG)
    {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        tracing::error!("a JSON body failed while being read for its tag");
        parts.status = StatusCode::INTERNAL_SERVER_ERROR;
        parts.headers.remove(header::CONTENT_TYPE);
        return Response::from_parts(parts, Body::empty());
    };
    let opaque = opaque_tag(&bytes);
    if let Ok(value) = HeaderValue::from_str(&format!("W/{opaque}")) {
        parts.headers.insert(header::ETAG, value);
    }
    if if_none_match.matches(&opaque) {
        // RFC 9110, 15.4.5: the 304 keeps the tag, Cache-Control and Vary,
        // and has no body nor the body's metadata.
        parts.status = StatusCode::NOT_MODIFIED;
        parts.headers.remove(header::CONTENT_TYPE);
        parts.headers.remove(header::CONTENT_LENGTH);
        return Response::from_parts(parts, Body::empty());
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// The quoted part of the tag: 128 bits of the body's hash.
fn opaque_tag(body: &[u8]) -> String {
    let hash = blake3::hash(body);
    format!("\"{}\"", hex::encode(&hash.as_bytes()[..16]))
}

/// What a request's `If-None-Match` holds: nothing, `*`, or a list of tags.
#[derive(Debug, Default, PartialEq, Eq)]
enum IfNoneMatch {
    #[default]
    Absent,
    Any,
    /// The opaque (quoted) tags, their `W/` dropped: comparison is weak.
    Tags(Vec<String>),
}

impl IfNoneMatch {
    /// Reads every `If-None-Match` field line. An unreadable member ends its
    /// line; what was read before it still counts.
    fn from_headers(headers: &HeaderMap) -> Self {
        let mut tags = Vec::new();
        let mut present = false;
        for value in headers.get_all(header::IF_NONE_MATCH) {
            present = true;
            let Ok(text) = value.to_str() else { continue };
            if text.trim() == "*" {
                return Self::Any;
            }
            tags.extend(entity_tags(text));
        }
        if present {
            Self::Tags(tags)
        } else {
            Self::Absent
        }
    }

    /// Weak comparison: the opaque tags are equal, `W/` or not.
    fn matches(&self, opaque: &str) -> bool {
        match self {
            Self::Absent => false,
            Self::Any => true,
            Self::Tags(tags) => tags.iter().any(|tag| tag == opaque),
        }
    }
}

/// The opaque tags of a list such as `W/"a", "b,c" ,"d"` (a tag may hold a comma).
fn entity_tags(text: &str) -> Vec<String> {
    let mut tags = Vec::new();
    let mut rest = text;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            break;
        }
        let unweakened = rest.strip_prefix("W/").unwrap_or(rest);
        let Some(quoted) = unweakened.strip_prefix('"') else {
            break;
        };
        let Some(end) = quoted.find('"') else { break };
        tags.push(format!("\"{}\"", &quoted[..end]));
        rest = &quoted[end + 1..];
    }
    tags
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(values: &[&str]) -> IfNoneMatch {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(header::IF_NONE_MATCH, HeaderValue::from_str(value).unwrap());
        }
        IfNoneMatch::from_headers(&headers)
    }

    #[test]
    fn lists_weak_tags_and_star() {
        assert_eq!(parse(&[]), IfNoneMatch::Absent);
        assert_eq!(parse(&["*"]), IfNoneMatch::Any);
        assert_eq!(parse(&[" * "]), IfNoneMatch::Any);
        assert_eq!(
            parse(&[r#"W/"a", "b,c" ,"d""#, r#""e""#]),
            IfNoneMatch::Tags(vec![
                r#""a""#.into(),
                r#""b,c""#.into(),
                r#""d""#.into(),
                r#""e""#.into()
            ])
        );
        assert_eq!(
            parse(&[r#""a", junk, "b""#]),
            IfNoneMatch::Tags(vec![r#""a""#.into()])
        );
        assert_eq!(parse(&[r#""unterminated"#]), IfNoneMatch::Tags(vec![]));
    }

    #[test]
    fn comparison_is_weak() {
        let tag = opaque_tag(b"{}");
        assert!(parse(&[&format!("W/{tag}")]).matches(&tag));
        assert!(parse(&[&tag]).matches(&tag));
        assert!(parse(&[&format!(r#""x", W/{tag}"#)]).matches(&tag));
        assert!(parse(&["*"]).matches(&tag));
        assert!(!parse(&[r#""x""#]).matches(&tag));
        assert!(!parse(&[]).matches(&tag));
        assert_ne!(opaque_tag(b"{}"), opaque_tag(b"{ }"));
    }
}
