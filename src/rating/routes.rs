//! Rating an article (form and API) and reading its rating.

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum_extra::extract::SignedCookieJar;
use serde::Deserialize;

use super::Stars;
use crate::api::{ApiBody, ApiJson, personal};
use crate::app::AppState;
use crate::article::Article;
use crate::ballot::{Ballot, Receipt};
use crate::error::{ApiError, ApiResult, AppError, Result};
use crate::reader;
use crate::store;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/articles/{slug}/rating", post(rate_form))
        .route(
            "/api/v1/articles/{slug}/rating",
            get(rating_api).put(rate_api),
        )
}

#[derive(Debug, Deserialize)]
pub struct RatingForm {
    stars: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RatingRequest {
    stars: Stars,
}

impl ApiBody for RatingRequest {
    const SHAPE: &'static str =
        r#"a JSON object like {"stars": 4}, with a whole number of stars from 1 to 5"#;
}

fn find_article(state: &AppState, slug: &str) -> Result<Arc<Article>> {
    state
        .catalog
        .article(slug)
        .cloned()
        .ok_or_else(|| AppError::not_found("article"))
}

/// Records a reader's rating, replacing their earlier one; `Ok` once it is on disk.
async fn rate(
    state: &AppState,
    article: &Article,
    stars: Stars,
    jar: SignedCookieJar,
) -> Result<(SignedCookieJar, reader::ReaderId)> {
    let (jar, voter) = reader::identify_or_issue(jar, state.config.secure_cookies());
    let ballot = Ballot::Rating {
        article_id: article.id,
        voter: voter.clone(),
        stars,
    };
    match state.ballots.cast(ballot).await {
        Ok(Receipt::Rated) => Ok((jar, voter)),
        _ => Err(AppError::unavailable(
            "Your rating could not be stored. Please try again.",
        )),
    }
}

/// `POST /articles/{slug}/rating`: the form; answers 303 back to the rating.
async fn rate_form(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    jar: SignedCookieJar,
    form: std::result::Result<axum::Form<RatingForm>, FormRejection>,
) -> Result<Response> {
    let article = find_article(&state, &slug)?;
    let back = format!("{}#rating", article.path());
    let axum::Form(form) = form.map_err(|e| AppError::from(e).with_back(back.clone()))?;
    let stars = form
        .stars
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            AppError::unprocessable("no-stars", "Choose from one to five stars.")
                .with_back(back.clone())
        })?
        .parse::<i64>()
        .ok()
        .and_then(|n| Stars::try_from(n).ok())
        .ok_or_else(|| {
            AppError::unprocessable(
                "invalid-stars",
                "A rating is a whole number of stars from 1 to 5.",
            )
            .with_back(back.clone())
        })?;
    let (jar, _) = rate(&state, &article, stars, jar)
        .await
        .map_err(|e| e.with_back(back.clone()))?;
    Ok((jar, Redirect::to(&back)).into_response())
}

/// `GET /api/v1/articles/{slug}/rating`.
async fn rating_api(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    jar: SignedCookieJar,
) -> ApiResult<Response> {
    let article = find_article(&state, &slug)?;
    let reader = reader::identify(&jar);
    let your_rating = match &reader {
        Some(reader) => {
            store::ratings::reader_rating(state.db.pool(), article.id, reader.as_str()).await?
        }
        None => None,
    };
    let summary = state
        .live
        .rating(article.id)
        .summary(&article.slug, your_rating);
    Ok(personal(reader.is_some(), axum::Json(summary)))
}

/// `PUT /api/v1/articles/{slug}/rating` with `{"stars": N}`: 200 and the rating.
async fn rate_api(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    jar: SignedCookieJar,
    body: std::result::Result<ApiJson<RatingRequest>, ApiError>,
) -> ApiResult<Response> {
    // An unknown article is a 404, whatever the body.
    let article = find_article(&state, &slug)?;
    let ApiJson(request) = body?;
    let (jar, _) = rate(&state, &article, request.stars, jar).await?;
    let summary = state
        .live
        .rating(article.id)
        .summary(&article.slug, Some(request.stars.get()));
    Ok((jar, personal(true, axum::Json(summary))).into_response())
}
