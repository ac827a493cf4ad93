//! Health for operators: alive, and ready (the database answers and the
//! ballot writer can write).

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    if !state.db.ping().await {
        (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n")
    } else if !state.ballots.is_ready() {
        (StatusCode::SERVICE_UNAVAILABLE, "votes cannot be stored\n")
    } else {
        (StatusCode::OK, "ready\n")
    }
}
