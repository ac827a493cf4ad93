//! Idempotent writes. `POST /api/v1/polls/{poll}/votes` and
//! `PUT /api/v1/articles/{slug}/rating` accept an `Idempotency-Key` header.
//! The writer keeps the first answer to a keyed ballot that changed something
//! in the same transaction as the ballot (see `ballot`), for a day. A retry
//! with the same key gets that answer again, with the same reader cookie, and
//! counts nothing; the same key sent with a different request is refused.
//! Refusals (already voted, closed, over the cap) are not kept: a retry is
//! judged again, and can only count once.
//!
//! Whose a key is decides who may find its answer, since the answer carries
//! the reader's cookie: a reader with a cookie owns their keys; a reader
//! without one yet (their first vote, the answer to which, cookie and all,
//! may be what was lost) owns them with their address (an IPv4 address or an
//! IPv6 /64). A reader with a cookie also finds what they sent from their
//! address before they had it, when that answer made them this reader.

use std::net::IpAddr;

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use axum_extra::extract::SignedCookieJar;
use bytes::Bytes;

use crate::ballot::Receipt;
use crate::error::AppError;
use crate::reader::{self, Keys, ReaderId};

pub const HEADER: HeaderName = HeaderName::from_static("idempotency-key");
/// Set on an answer given again to a retry.
pub const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
const MAX_LEN: usize = 255;

/// A key as the client sent it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// The request's key: `None` without the header, 400 when it is not a key.
    pub fn from_headers(headers: &HeaderMap) -> Result<Option<Self>, AppError> {
        let mut values = headers.get_all(HEADER).iter();
        let Some(value) = values.next() else {
            return Ok(None);
        };
        let invalid = || {
            AppError::new(
                StatusCode::BAD_REQUEST,
                "invalid-idempotency-key",
                "The Idempotency-Key header must be one value of 1 to 255 visible ASCII \
                 characters, such as a random UUID.",
            )
        };
        if values.next().is_some() {
            return Err(invalid());
        }
        let text = value.to_str().map_err(|_| invalid())?;
        // The header is a structured-field string; a bare token is taken as
        // well. A value that opens a quote must close it.
        let text = match text.strip_prefix('"') {
            Some(quoted) => quoted.strip_suffix('"').ok_or_else(invalid)?,
            None => text,
        };
        if text.is_empty() || text.len() > MAX_LEN || !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid());
        }
        Ok(Some(Self(text.to_owned())))
    }
}

/// Phrases the answer to a ballot that changed something (`Counted` or `Rated`).
pub type Phrase = Box<dyn Fn(&Receipt) -> (StatusCode, Bytes) + Send + Sync>;

/// What the writer needs to keep a keyed ballot's answer and to find it again.
pub struct Keyed {
    /// Where the answer is kept: the key, hashed with whose it is.
    pub id: [u8; 32],
    /// For a reader with a cookie: where an answer sent from their address
    /// before they had one would be.
    pub by_address: Option<[u8; 32]>,
    /// What was asked; a retry must ask the same.
    pub request: String,
    pub phrase: Phrase,
}

impl Keyed {
    /// `reader` is the reader the request's cookie names, if it has one.
    pub fn new(
        key: &IdempotencyKey,
        keys: &Keys,
        reader: Option<&ReaderId>,
        address: Option<IpAddr>,
        request: String,
        phrase: Phrase,
    ) -> Self {
        let mut owner = b"address ".to_vec();
        owner.extend(address.map(reader::network_bytes).unwrap_or_default());
        let by_address = keys.idempotency_id(&owner, &key.0);
        let (id, by_address) = match reader {
            Some(reader) => {
                let owner = [b"reader ", reader.as_str().as_bytes()].concat();
                (keys.idempotency_id(&owner, &key.0), Some(by_address))
            }
            None => (by_address, None),
        };
        Self {
            id,
            by_address,
            request,
            phrase,
        }
    }
}

impl std::fmt::Debug for Keyed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyed")
            .field("request", &self.request)
            .finish_non_exhaustive()
    }
}

/// An answer kept with a key: the status and body, and the reader it made the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Bytes,
    pub reader: ReaderId,
}

impl Answer {
    /// The jar for this answer: the client becomes (or stays) its reader.
    /// `jar` is the request's, after `voter` was identified or issued.
    pub fn cookie(&self, jar: SignedCookieJar, voter: &ReaderId, secure: bool) -> SignedCookieJar {
        if &self.reader == voter {
            jar
        } else {
            reader::give_cookie(jar, &self.reader, secure)
        }
    }

    /// The header that says the answer was given before.
    pub fn replayed_header(replayed: bool) -> Option<(HeaderName, HeaderValue)> {
        replayed.then(|| (REPLAYED, HeaderValue::from_static("true")))
    }
}

/// A JSON body already serialised (an answer kept, or one to keep).
pub fn json_body(body: Bytes) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
}

/// 422: the key was used before for a different request.
pub fn reused() -> AppError {
    AppError::unprocessable(
        "idempotency-key-reused",
        "This Idempotency-Key was used before for a different request. Send a new key with a new request.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(value: &str) -> Result<Option<IdempotencyKey>, AppError> {
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(HEADER, value);
        }
        IdempotencyKey::from_headers(&headers)
    }

    #[test]
    fn a_key_is_one_short_visible_value() {
        assert!(matches!(
            key("0b7c5a1e-4f7e-4c5e-9d55-6a1f1f0e2b11"),
            Ok(Some(_))
        ));
        assert_eq!(
            key("\"abc\"").ok().flatten(),
            key("abc").ok().flatten(),
            "quoted as a structured string"
        );
        assert!(key("").is_err());
        assert!(key("\"\"").is_err(), "an empty quoted string");
        assert!(key("\"abc").is_err(), "a quote opened and not closed");
        assert!(
            matches!(key("abc\""), Ok(Some(_))),
            "a quote inside a bare key"
        );
        assert!(key("with space").is_err());
        assert!(key(&"x".repeat(256)).is_err());
        assert!(matches!(
            IdempotencyKey::from_headers(&HeaderMap::new()),
            Ok(None)
        ));
    }

    #[test]
    fn a_key_is_its_owners() {
        let keys = Keys::derive(b"one secret that is long enough!!");
        let Ok(Some(key)) = key("k1") else {
            panic!("a key")
        };
        let phrase = || -> Phrase { Box::new(|_| (StatusCode::OK, Bytes::new())) };
        let ip = |s: &str| s.parse::<IpAddr>().ok();
        let a = ReaderId::parse("5f0c4d1e2a3b4c5d6e7f8091a2b3c4d5");
        let b = ReaderId::parse("6f0c4d1e2a3b4c5d6e7f8091a2b3c4d5");
        let first = Keyed::new(
            &key,
            &keys,
            None,
            ip("2001:db8::1"),
            String::new(),
            phrase(),
        );
        let same_network = Keyed::new(
            &key,
            &keys,
            None,
            ip("2001:db8::2"),
            String::new(),
            phrase(),
        );
        let elsewhere = Keyed::new(
            &key,
            &keys,
            None,
            ip("2001:db9::1"),
            String::new(),
            phrase(),
        );
        assert_eq!(first.id, same_network.id);
        assert_ne!(first.id, elsewhere.id);
        let reader_a = Keyed::new(
            &key,
            &keys,
            a.as_ref(),
            ip("2001:db8::1"),
            String::new(),
            phrase(),
        );
        let reader_b = Keyed::new(
            &key,
            &keys,
            b.as_ref(),
            ip("2001:db8::1"),
            String::new(),
            phrase(),
        );
        assert_ne!(reader_a.id, reader_b.id);
        assert_ne!(reader_a.id, first.id);
        assert_eq!(reader_a.by_address, Some(first.id));
    }
}
