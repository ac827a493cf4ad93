//! What the JSON API shares: the body extractor whose errors are problem+json,
//! and the caching rules for answers that may carry a reader's own state.

use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// `axum::Json`, with its rejections (400, 413, 415, 422) as problem+json.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let axum::Json(value) = axum::Json::<T>::from_request(request, state).await?;
        Ok(Self(value))
    }
}

/// An answer that may carry a reader's own fields: never stored by a shared cache.
pub fn personal(is_personal: bool, body: impl IntoResponse) -> Response {
    let cache = if is_personal {
        "private, no-cache"
    } else {
        "no-cache"
    };
    (
        [
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
            (header::VARY, HeaderValue::from_static("Cookie")),
        ],
        body,
    )
        .into_response()
}
