//! What the JSON API shares: the body extractor whose errors are problem+json
//! and speak to people, the layer that holds every error under `/api` to
//! problem+json, and the caching rules for answers that may carry a reader's
//! own state.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::error::{ApiError, AppError, is_api};

/// A JSON request body, and what it should look like, said to a person.
pub trait ApiBody: DeserializeOwned {
    /// Completes "The body must be …", e.g. `a JSON object like {"option": 2}`.
    const SHAPE: &'static str;
}

/// `axum::Json`, with its rejections (400, 413, 415, 422) as problem+json
/// whose detail says what the body should be, not which Rust type it missed.
/// The body must be a JSON object: serde would take `[4]` for `{"stars": 4}`.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: ApiBody,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let axum::Json(value) = axum::Json::<serde_json::Value>::from_request(request, state)
            .await
            .map_err(|rejection| ApiError(body_error::<T>(&rejection)))?;
        if !value.is_object() {
            return Err(ApiError(invalid_body::<T>()));
        }
        serde_json::from_value(value)
            .map(Self)
            .map_err(|_| ApiError(invalid_body::<T>()))
    }
}

fn invalid_body<T: ApiBody>() -> AppError {
    AppError::invalid_body(format!("The body must be {}.", T::SHAPE))
}

fn body_error<T: ApiBody>(rejection: &JsonRejection) -> AppError {
    let status = rejection.status();
    match rejection {
        JsonRejection::MissingJsonContentType(_) => AppError::new(
            status,
            "unsupported-media-type",
            "Send the body as JSON, with the header Content-Type: application/json.",
        ),
        JsonRejection::JsonDataError(_) => invalid_body::<T>(),
        JsonRejection::JsonSyntaxError(_) => AppError::new(
            status,
            "malformed-body",
            format!("The body is not valid JSON. It must be {}.", T::SHAPE),
        ),
        _ if status == StatusCode::PAYLOAD_TOO_LARGE => AppError::new(
            status,
            "payload-too-large",
            "The body is too large for this request.",
        ),
        _ => AppError::new(status, "malformed-body", "The body could not be read."),
    }
}

/// Every error under `/api` is problem+json. Handlers answer with `ApiError`;
/// what the router and the layers answer by themselves (a path segment that
/// is not UTF-8, a timeout, a caught panic) arrives here bare or as an HTML
/// page, and leaves as the problem for its status, keeping `Allow` and
/// `Retry-After`.
pub async fn problems(request: Request, next: Next) -> Response {
    if !is_api(request.uri().path()) {
        return next.run(request).await;
    }
    let method = request.method().clone();
    let response = next.run(request).await;
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|t| t == "application/problem+json");
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return response;
    }
    // Logged, if it is a 5xx, where it arose.
    let mut problem = AppError::from_status(status, &method).problem_response();
    for name in [header::ALLOW, header::RETRY_AFTER] {
        if let Some(value) = response.headers().get(&name) {
            problem.headers_mut().insert(name, value.clone());
        }
    }
    problem
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
