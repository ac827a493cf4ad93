//! One error type for every request, with two faces.
//!
//! Handlers of pages and forms return `AppError`, which renders as an HTML
//! page; handlers under `/api` return `ApiError` (the same error), which renders
//! as `application/problem+json` (RFC 9457). A 5xx is logged with its cause
//! and shown without it.

use askama::Template;
use axum::extract::rejection::{FormRejection, JsonRejection};
use axum::http::{HeaderValue, StatusCode, header};
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
        if self.status.is_server_error() {
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
        Self::new(rejection.status(), "bad-form", rejection.body_text())
    }
}

impl From<JsonRejection> for AppError {
    fn from(rejection: JsonRejection) -> Self {
        let code = match rejection.status() {
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported-media-type",
            StatusCode::PAYLOAD_TOO_LARGE => "payload-too-large",
            StatusCode::UNPROCESSABLE_ENTITY => "invalid-body",
            _ => "malformed-body",
        };
        Self::new(rejection.status(), code, rejection.body_text())
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

/// The JSON face of `AppError`.
#[derive(Debug)]
pub struct ApiError(pub AppError);

pub type ApiResult<T> = std::result::Result<T, ApiError>;

impl<E: Into<AppError>> From<E> for ApiError {
    fn from(error: E) -> Self {
        Self(error.into())
    }
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    title: &'static str,
    status: u16,
    detail: &'a str,
    /// Extension member: which problem it is, stable for programs to match on.
    code: &'static str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let error = self.0;
        error.log();
        let detail = if error.status.is_server_error() {
            "Something went wrong on our side."
        } else {
            &error.detail
        };
        let problem = Problem {
            kind: "about:blank",
            title: error.title(),
            status: error.status.as_u16(),
            detail,
            code: error.code,
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (
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
        response = error.finish(response);
        response
    }
}
