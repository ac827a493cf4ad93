//! Telemetry: logs on stderr (human-readable lines, or JSON for a log
//! collector), filtered by `RUST_LOG`, and metrics (see `metrics`).
//!
//! Every request runs in a span that carries its request id (the client's
//! `X-Request-Id`, or a fresh one, sent back in the answer), its method and
//! its path, so every line logged while serving it names it. No cookie,
//! secret, query string or client address is ever logged.

pub mod metrics;

use std::task::{Context, Poll};

use axum::http::Request;
use clap::ValueEnum;
use tower::{Layer, Service};
use tracing::Span;
use tracing::instrument::{Instrument, Instrumented};
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
pub fn request_span<B>(request: &Request<B>) -> Span {
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

/// Runs each request's handling in its span (`request_span`). Unlike
/// tower-http's `TraceLayer` it leaves the response body alone: a body is
/// written after the handler is done and logs nothing, and entering a span
/// for every chunk of every live event stream is work for nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct RequestSpanLayer;

impl<S> Layer<S> for RequestSpanLayer {
    type Service = RequestSpan<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestSpan(inner)
    }
}

#[derive(Clone, Debug)]
pub struct RequestSpan<S>(S);

impl<S, B> Service<Request<B>> for RequestSpan<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Instrumented<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let span = request_span(&request);
        span.in_scope(|| tracing::debug!("request"));
        self.0.call(request).instrument(span)
    }
}
