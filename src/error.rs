//! One error type for every request, with two faces.
//!
//! Handlers of pages and forms return `AppError`, which renders as an HTML
//! page; handlers under `/api` return `ApiError` (the same error), which renders
//! as `application/problem+json` (RFC 9457). A 5xx is logged with its cause
//! and shown without it. What the router answers by itself (an unknown
//! address, a wrong method, a caught panic) takes the face of its path; see
//! also `api::problems`, which holds the API to problem+json for the rest.

use std::any::Any;

use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;

use crate::assets;

#[derive(Debug)]
pub struct AppError {
    status: StatusCode,
    /// A stable, machine-readable name for the problem.
    code: &'static str,
    detail: String,
    retry_after: Option<u64>,
    /// Where an HTML page should offer to go back to.
    back: Option<String>,
    source: Option<anyhow::Error>,
}

pub type Result<T, E = AppError> = std::result::Result<T, E>;

impl AppError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            retry_after: None,
            back: None,
            source: None,
        }
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("There is no such {what}."),
        )
    }

    pub fn unprocessable(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail)
    }

    /// A body that is not what the route takes, in its shape or in a value
    /// (a form's or a JSON body's alike): `detail` says what it should be.
    pub fn invalid_body(detail: impl Into<String>) -> Self {
        Self::unprocessable("invalid-body", detail)
    }

    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    pub fn too_many(detail: impl Into<String>, retry_after_secs: u64) -> Self {
        let mut error = Self::new(StatusCode::TOO_MANY_REQUESTS, "too-many-votes", detail);
        error.retry_after = Some(retry_after_secs);
        error
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        let mut error = Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail);
        error.retry_after = Some(1);
        error
    }

    pub fn method_not_allowed(method: &Method) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            format!(
                "This address does not accept {method}; the Allow header lists what it does accept."
            ),
        )
    }

    /// The error that a bare `status` from the router or a layer stands for.
    pub fn from_status(status: StatusCode, method: &Method) -> Self {
        match status {
            StatusCode::BAD_REQUEST => Self::new(
                status,
                "bad-request",
                "The address could not be read: check how it is percent-encoded.",
            ),
            StatusCode::NOT_FOUND => Self::not_found("resource"),
            StatusCode::METHOD_NOT_ALLOWED => Self::method_not_allowed(method),
            StatusCode::REQUEST_TIMEOUT => Self::new(
                status,
                "timeout",
                "The request took too long and was stopped. It may still take effect: \
                 read the current state before sending it again.",
            ),
            StatusCode::SERVICE_UNAVAILABLE => {
                Self::new(status, "unavailable", "Please try again shortly.")
            }
            _ if status.is_server_error() => {
                Self::new(status, "internal", "Something went wrong on our side.")
            }
            _ => Self::new(
                status,
                "refused",
                format!(
                    "The request was refused ({}).",
                    status.canonical_reason().unwrap_or("error")
                ),
            ),
        }
    }

    pub fn internal(source: impl Into<anyhow::Error>) -> Self {
        let mut error = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Something went wrong on our side.",
        );
        error.source = Some(source.into());
        error
    }

    /// Asks the client to wait `secs` seconds before trying again.
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// Offers a link back to `url` on the HTML page.
    pub fn with_back(mut self, url: impl Into<String>) -> Self {
        self.back = Some(url.into());
        self
    }

    fn log(&self) {
        // A 503 is the server shedding load (streams over their cap) or a
        // store that is down; the cause is logged and counted where it
        // arises, not once more per refused request, which under load would
        // flood the log.
        if self.status == StatusCode::SERVICE_UNAVAILABLE && self.source.is_none() {
            tracing::debug!(detail = %self.detail, "service unavailable");
        } else if self.status.is_server_error() {
            match &self.source {
                Some(source) => {
                    tracing::error!(status = %self.status, error = ?source, "request failed")
                }
                None => {
                    tracing::error!(status = %self.status, detail = %self.detail, "request failed")
                }
            }
        }
    }

    fn title(&self) -> &'static str {
        self.status.canonical_reason().unwrap_or("Error")
    }

    fn finish(&self, mut response: Response) -> Response {
        *response.status_mut() = self.status;
        if let Some(secs) = self.retry_after
            && let Ok(value) = HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

impl From<sqlx::Error> for AppError {
    fn from(error: sqlx::Error) -> Self {
        Self::internal(error)
    }
}

impl From<askama::Error> for AppError {
    fn from(error: askama::Error) -> Self {
        Self::internal(error)
    }
}

impl From<FormRejection> for AppError {
    fn from(rejection: FormRejection) -> Self {
        let detail = match rejection.status() {
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                "Send the form as a web form would \
                 (Content-Type: application/x-www-form-urlencoded)."
            }
            StatusCode::PAYLOAD_TOO_LARGE => "The form is too large.",
            _ => "The form could not be read. Please try again from the page.",
        };
        Self::new(rejection.status(), "bad-form", detail)
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    title: &'static str,
    detail: &'a str,
    back: Option<&'a str>,
    css: &'static str,
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        self.log();
        let page = ErrorPage {
            status: self.status.as_u16(),
            title: self.title(),
            detail: if self.status.is_server_error() {
                "Something went wrong on our side. Please try again."
            } else {
                &self.detail
            },
            back: self.back.as_deref(),
            css: assets::url(assets::STYLESHEET),
        };
        let body = page
            .render()
            .unwrap_or_else(|_| format!("{} {}", self.status.as_u16(), self.title()));
        let mut response = Html(body).into_response();
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        self.finish(response)
    }
}

/// Whether `path` is the API's, whose errors are problem+json.
pub fn is_api(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/")
}

impl AppError {
    /// The face that fits the address: problem+json under `/api`, else the HTML page.
    pub fn into_response_for(self, path: &str) -> Response {
        if is_api(path) {
            ApiError(self).into_response()
        } else {
            self.into_response()
        }
    }
}

/// The router's answer to an address no route serves.
pub async fn not_found(uri: Uri) -> Response {
    let what = if is_api(uri.path()) {
        "resource"
    } else {
        "page"
    };
    AppError::not_found(what).into_response_for(uri.path())
}

/// The router's answer to a method a route does not serve; axum adds `Allow`.
pub async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    AppError::method_not_allowed(&method).into_response_for(uri.path())
}

/// The answer to a handler that panicked: logged with the panic's message, shown
/// without it. The HTML page; `api::problems` turns it into a problem under `/api`.
pub fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned());
    AppError::internal(anyhow::anyhow!("the handler panicked: {message}")).into_response()
}

/// The JSON face of `AppError`.
#[derive(Debug)]
pub struct ApiError(pub AppError);

pub type ApiResult<T> = std::result::Result<T, ApiError>;

impl<E: Into<AppError>> From<E> for ApiError {
    fn from(error: E) -> Self {
        Self(error.into())
    }
}

/// An error under `/api`, as `application/problem+json` (RFC 9457).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({
    "type": "about:blank",
    "title": "Conflict",
    "status": 409,
    "detail": "You have already voted in this poll.",
    "code": "already-voted"
}))]
pub struct Problem<'a> {
    /// Always `about:blank`: the status says what kind of problem it is,
    /// and `code` which one.
    #[serde(rename = "type")]
    #[schema(example = "about:blank")]
    kind: &'static str,
    /// The status's reason phrase, e.g. `Not Found`.
    title: &'static str,
    /// The HTTP status, repeated.
    #[schema(minimum = 400, maximum = 599)]
    status: u16,
    /// What went wrong, in a sentence meant for people; a 5xx says no more
    /// than that something went wrong on the server's side.
    detail: &'a str,
    /// Extension member: which problem it is, stable for programs to match
    /// on, e.g. `not-found`, `invalid-body`, `no-such-option`,
    /// `already-voted`, `poll-closed`, `too-many-votes`, `unavailable`.
    #[schema(example = "already-voted")]
    code: &'static str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.0.log();
        self.0.problem_response()
    }
}

impl AppError {
    /// The problem+json face, without logging: for answers logged where they arose.
    pub fn problem_response(&self) -> Response {
        let detail = if self.status.is_server_error() {
            "Something went wrong on our side."
        } else {
            &self.detail
        };
        let problem = Problem {
            kind: "about:blank",
            title: self.title(),
            status: self.status.as_u16(),
            detail,
            code: self.code,
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let response = (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/problem+json"),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
            body,
        )
            .into_response();
        self.finish(response)
    }
}
