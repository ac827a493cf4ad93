//! Telemetry: logs on stderr (human-readable lines, or JSON for a log
//! collector), filtered by `RUST_LOG`, and metrics (see `metrics`).
//!
//! Every request runs in a span that carries its request id (the client's
//! `X-Request-Id`, or a fresh one, sent back in the answer), its method and
//! its path, so every line logged while serving it names it. No cookie,
//! secret, query string or client address is ever logged.

pub mod metrics;

use axum::body::Body;
use axum::http::Request;
use clap::ValueEnum;
use tracing::Span;
use tracing_subscriber::EnvFilter;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One readable line per event.
    #[default]
    Text,
    /// One JSON object per line, with the request's span fields.
    Json,
}

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("tribune=info,tower_http=warn,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests) is harmless; ignore it.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}

/// The span of one request: its id, method and path (never its query, which
/// could carry anything).
pub fn request_span(request: &Request<Body>) -> Span {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %request.method(),
        path = %request.uri().path(),
    )
}
