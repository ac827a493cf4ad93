//! The application: the one router that `main` and the tests use, the HTTP
//! layers around it, and the server's life from start to shutdown. The state
//! the routes share is `state`'s.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware;
use tokio::net::TcpListener;
use tower::{Layer, ServiceBuilder};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::article::fast::{AnonymousPageLayer, AnonymousPages};
use crate::config::Config;
use crate::cors::ReadCorsLayer;
use crate::etag::ETagLayer;
use crate::headers::security_headers;
use crate::rate_limit::{self, RateLimit};
use crate::state::{AppState, Running};
use crate::{
    api, article, assets, error, events, guard, health, openapi, poll, rating, server, telemetry,
};

/// Largest request body accepted: votes and ratings are a few bytes.
const BODY_LIMIT: usize = 16 * 1024;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a shutdown waits for the writer to commit what is queued.
const WRITER_DRAIN: Duration = Duration::from_secs(5);

/// Every route, with the layers every response goes through.
pub fn router(state: AppState) -> Router {
    let (routes, _) = routes().split_for_parts();
    let rate_limit = state.rate_limit.clone();
    with_layers(routes, rate_limit.as_deref()).with_state(state)
}

/// The OpenAPI document of the routes that `router` serves.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().into_openapi()
}

/// Every route; the API's are registered with their OpenAPI documentation.
fn routes() -> OpenApiRouter<AppState> {
    // Only votes and ratings write; reads skip the cross-site check. Writes may
    // wait on the ballot box, so they carry the request timeout; reads are
    // bounded by the pool's acquire timeout and SQLite's busy timeout.
    let writes = OpenApiRouter::new()
        .merge(poll::routes())
        .merge(rating::routes())
        .route_layer(middleware::from_fn(guard::refuse_cross_site))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ));
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(article::routes().into())
        .merge(writes)
        .merge(events::routes())
        .merge(openapi::routes(openapi))
        .merge(health::routes().into())
        .merge(telemetry::metrics::routes().into())
        .merge(assets::routes().into())
}

/// What the router answers by itself (unknown address, wrong method), and the
/// layers every response goes through, around `routes`.
pub fn with_layers(routes: Router<AppState>, rate_limit: Option<&RateLimit>) -> Router<AppState> {
    // The rate limit sits inside the security headers, so its HTML refusal
    // gets them, and outside the tags, so a refused request costs no work.
    let rate_limit = rate_limit.map(|limit| {
        ServiceBuilder::new()
            .layer(middleware::from_fn(rate_limit::answer_refusal))
            .layer(limit.layer())
    });
    routes
        .fallback(error::not_found)
        // After every route: it applies to the routes already there.
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn(telemetry::metrics::record_http))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(PropagateRequestIdLayer::x_request_id())
                .layer(telemetry::RequestSpanLayer)
                .layer(ReadCorsLayer::default())
                .layer(CompressionLayer::new())
                .map_response(security_headers)
                // Outside the panic catcher, so that under /api its 500 is a
                // problem too; inside the layers above, so that it is traced
                // and gets the security headers like any answer.
                .layer(middleware::from_fn(api::problems))
                .layer(CatchPanicLayer::custom(error::panic_response))
                .option_layer(rate_limit)
                .layer(ETagLayer),
        )
}

/// What the server runs: the router, with the anonymous article page served
/// from the cache in front of it (before routing and the layers).
pub fn app(state: AppState) -> AnonymousPages<Router> {
    AnonymousPageLayer::new(state.clone()).layer(router(state))
}

/// A bound, ready server: tests read its port; `main` runs it until a signal.
pub struct Application {
    listener: TcpListener,
    running: Running,
}

impl Application {
    /// Binds the address (port 0 picks a free one) and builds the state.
    pub async fn build(mut config: Config) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(config.bind)
            .await
            .with_context(|| format!("cannot listen on {}", config.bind))?;
        let bound = listener.local_addr()?;
        if config.base_url == format!("http://{}", config.bind) {
            config.base_url = format!("http://{bound}");
        }
        config.bind = bound;
        let running = AppState::build(config).await?;
        Ok(Self { listener, running })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.running.state.config.bind
    }

    pub fn base_url(&self) -> &str {
        &self.running.state.config.base_url
    }

    /// Serves until `shutdown` completes: then ends the event streams, lets
    /// the requests in flight finish (cutting off what is still open after
    /// the grace), lets the writer commit what it holds, and closes the database.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Running { state, writer } = self.running;
        let db = state.db.clone();
        let streams = state.streams.shutdown.clone();
        let limits = server::Limits {
            header_read_timeout: state.config.header_read_timeout,
            write_stall_timeout: state.config.write_stall_timeout,
            grace: state.config.shutdown_grace,
        };
        let app = app(state);
        server::serve(self.listener, app, limits, shutdown, move || {
            streams.cancel()
        })
        .await;
        // Every connection is closed, and with the router every BallotBox
        // handle is gone: the writer commits what is queued, then stops.
        if tokio::time::timeout(WRITER_DRAIN, writer).await.is_err() {
            tracing::warn!("the ballot box did not stop within {WRITER_DRAIN:?}");
        }
        db.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
