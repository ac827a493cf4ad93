//! Serves the assets at their fingerprinted URLs.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::ASSETS;
use crate::error::AppError;

/// `GET /assets/{file}`, whatever the state: the assets are in the binary.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/assets/{file}", get(serve_asset))
}

async fn serve_asset(Path(file): Path<String>) -> Result<Response, AppError> {
    let path = format!("/assets/{file}");
    let asset = ASSETS
        .iter()
        .find(|a| a.url == path)
        .ok_or_else(|| AppError::not_found("file"))?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
        ],
        asset.bytes,
    )
        .into_response())
}
