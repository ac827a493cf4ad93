//! Cross-origin access to the API: open for reads, closed for writes.
//!
//! Any site's script may read results, ratings and event streams
//! (`GET`/`HEAD` under `/api/v1`, answered with `Access-Control-Allow-Origin: *`
//! and `ETag` exposed); no credentials are shared, so it reads what a
//! cookie-less reader sees. Writes get no grant at all: a cross-origin `POST`
//! or `PUT` carries no CORS header, and a preflight asking for one goes on to
//! the router, which does not answer `OPTIONS`, so the browser never sends it.
//! (A form post needs no preflight; `guard` refuses those.)

use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::http::{HeaderName, Method, Request, Response, header};
use futures_util::future::Either;
use tower::{Layer, Service};
use tower_http::cors::{self, Cors, CorsLayer};

/// Browsers may keep a read preflight's answer this long.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// Applies `CorsLayer` to API reads and their preflights, and to nothing else.
#[derive(Clone, Debug)]
pub struct ReadCorsLayer {
    cors: CorsLayer,
}

impl Default for ReadCorsLayer {
    fn default() -> Self {
        let cors = CorsLayer::new()
            .allow_origin(cors::Any)
            .allow_methods([Method::GET, Method::HEAD])
            .allow_headers([
                header::IF_NONE_MATCH,
                HeaderName::from_static("last-event-id"),
            ])
            .expose_headers([header::ETAG, header::RETRY_AFTER])
            .max_age(PREFLIGHT_MAX_AGE);
        Self { cors }
    }
}

impl<S: Clone> Layer<S> for ReadCorsLayer {
    type Service = ReadCors<S>;

    fn layer(&self, inner: S) -> ReadCors<S> {
        ReadCors {
            reads: self.cors.layer(inner.clone()),
            others: inner,
        }
    }
}

#[derive(Clone, Debug)]
pub struct ReadCors<S> {
    reads: Cors<S>,
    others: S,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ReadCors<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Either<cors::ResponseFuture<S::Future>, S::Future>;

    // Both clones must be ready, as either may take the call. The router's
    // routes always are, so neither holds a reservation it does not use.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        ready!(self.others.poll_ready(cx))?;
        self.reads.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        if is_api_read(&request) {
            Either::Left(self.reads.call(request))
        } else {
            Either::Right(self.others.call(request))
        }
    }
}

/// A `GET` or `HEAD` under `/api/v1`, or a preflight for one.
fn is_api_read<B>(request: &Request<B>) -> bool {
    if !request.uri().path().starts_with("/api/v1/") {
        return false;
    }
    let method = if request.method() == Method::OPTIONS {
        match request
            .headers()
            .get(header::ACCESS_CONTROL_REQUEST_METHOD)
            .and_then(|v| Method::from_bytes(v.as_bytes()).ok())
        {
            Some(method) => method,
            None => return false,
        }
    } else {
        request.method().clone()
    };
    matches!(method, Method::GET | Method::HEAD)
}
