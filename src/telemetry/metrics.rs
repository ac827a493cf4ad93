//! Metrics for operators, in Prometheus's text format at `GET /metrics`.
//!
//! The recorder is global to the process (the `metrics` crate's design), so
//! it is installed once, whatever number of servers a process starts (tests
//! start many). What is recorded, and where:
//! - `http_requests_total` and `http_request_duration_seconds`, by route,
//!   method and status (`record_http` here; the cached anonymous page counts
//!   itself in `article::fast`);
//! - `tribune_ballots_total` by kind and outcome (the ballot box);
//! - `tribune_write_batch_size` and `tribune_commit_seconds` (the ballot box);
//! - `tribune_open_streams` and `tribune_streams_refused_total` by reason (`events`).

use std::sync::{LazyLock, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;

/// Bucket bounds in seconds, for request and commit latencies.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const BATCH_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's recorder, installed on first use; `None` if another
/// recorder was installed first.
fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let installed = PrometheusBuilder::new()
                .set_buckets(LATENCY_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        metrics_exporter_prometheus::Matcher::Full(
                            "tribune_write_batch_size".to_owned(),
                        ),
                        BATCH_BUCKETS,
                    )
                })
                .and_then(PrometheusBuilder::install_recorder);
            match installed {
                Ok(handle) => Some(handle),
                Err(error) => {
                    tracing::warn!(%error, "metrics are off: cannot install the recorder");
                    None
                }
            }
        })
        .as_ref()
}

/// Installs the recorder (once) and keeps its histograms trimmed until `shutdown`.
pub fn start(shutdown: &CancellationToken) {
    let Some(handle) = handle() else {
        return;
    };
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = every.tick() => handle.run_upkeep(),
                () = shutdown.cancelled() => return,
            }
        }
    });
}

/// `GET /metrics`, whatever the state: it reads only the process's recorder.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/metrics", get(render))
}

async fn render() -> Response {
    match handle() {
        Some(handle) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            )],
            handle.render(),
        )
            .into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "metrics are off\n").into_response(),
    }
}

/// Counts every request the router answers, by route (its pattern, never
/// the raw path, so that the label set stays small), method and status.
pub async fn record_http(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let response = next.run(request).await;
    http_request(route, method, response.status(), started.elapsed());
    response
}

/// Records one answered request.
pub fn http_request(route: String, method: String, status: StatusCode, took: Duration) {
    let labels = [
        ("route", route),
        ("method", method),
        ("status", status.as_str().to_owned()),
    ];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels).record(took.as_secs_f64());
}

/// The cached anonymous article page, counted like any other request to its
/// route; its handles are made once, as it is the busiest path.
pub fn cached_page_served(took: Duration) {
    static HANDLES: LazyLock<(metrics::Counter, metrics::Histogram)> = LazyLock::new(|| {
        let labels = [
            ("route", "/articles/{slug}"),
            ("method", "GET"),
            ("status", "200"),
        ];
        (
            metrics::counter!("http_requests_total", &labels),
            metrics::histogram!("http_request_duration_seconds", &labels),
        )
    });
    HANDLES.0.increment(1);
    HANDLES.1.record(took.as_secs_f64());
}

/// A stream opened (`+1.0`) or closed (`-1.0`).
pub fn open_streams(change: f64) {
    metrics::gauge!("tribune_open_streams").increment(change);
}

/// A stream refused, by `reason`: `capacity` or `address`.
pub fn stream_refused(reason: &'static str) {
    metrics::counter!("tribune_streams_refused_total", "reason" => reason).increment(1);
}

/// A ballot answered by the writer: `kind` is `vote` or `rating`, `outcome`
/// `accepted`, `replayed`, or the reason it was refused.
pub fn ballot(kind: &'static str, outcome: &'static str) {
    metrics::counter!("tribune_ballots_total", "kind" => kind, "outcome" => outcome).increment(1);
}

/// A batch the writer wrote (or failed to): its size, and how long its
/// transaction took up to the commit on disk.
pub fn batch_written(ballots: usize, took: Duration, committed: bool) {
    metrics::histogram!("tribune_write_batch_size").record(ballots as f64);
    let outcome = if committed { "committed" } else { "failed" };
    metrics::histogram!("tribune_commit_seconds", "outcome" => outcome).record(took.as_secs_f64());
}
