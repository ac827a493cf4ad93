//! The streams' routes: a poll's events, and an article's.

use axum::extract::{Path, State};
use axum::response::Response;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::stream_response;
use crate::error::{ApiResult, AppError, Problem};
use crate::openapi::ReadProblems;
use crate::reader::ClientAddress;
use crate::state::AppState;

/// The streams' routes, with their OpenAPI documentation.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(poll_events))
        .routes(routes!(article_events))
}

/// `GET /api/v1/polls/{poll}/events`: event `poll`.
#[utoipa::path(
    get,
    path = "/api/v1/polls/{poll}/events",
    tag = "events",
    operation_id = "pollEvents",
    summary = "A poll's results, live",
    description = "Server-Sent Events that do not end: first `retry:` (2 to 10 s), then event `poll` with \
        the current results (the `PollResults` JSON without `your_vote`: a broadcast carries \
        no per-reader field), then an event `poll` for each change: a lone change at once, a burst paced to \
        a few events a second, ending on the final state. Each event's `id` is the state's \
        version, increasing. A comment line is sent when nothing else was for 15 s.",
    params(
        ("poll" = String, Path, description = "The poll's id.", example = "us-long-term-goals"),
    ),
    responses(
        (status = 200, description = "The stream; `schema` describes each event.",
            content_type = "text/event-stream", body = ref("#/components/schemas/PollEvent"),
            example = "retry: 4213\n\nid: 7\nevent: poll\ndata: {\"id\":\"us-long-term-goals\",…}\n\n"),
        (status = 404, description = "There is no such poll.", body = Problem,
            content_type = "application/problem+json"),
        ReadProblems,
        (status = 503, description = "Too many streams are open, overall or from this address \
            (`--max-streams-per-address`); read `GET /api/v1/polls/{poll}` instead.",
            body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again."))),
    )
)]
async fn poll_events(
    State(state): State<AppState>,
    Path(poll): Path<String>,
    address: ClientAddress,
) -> ApiResult<Response> {
    let events = state
        .live
        .poll_events(&poll)
        .ok_or_else(|| AppError::not_found("poll"))?;
    let slot = state.streams.take(address.0)?;
    Ok(stream_response(&state.streams, slot, vec![events]))
}

/// `GET /api/v1/articles/{slug}/events`: events `poll` (the article's poll) and `rating`.
#[utoipa::path(
    get,
    path = "/api/v1/articles/{slug}/events",
    tag = "events",
    operation_id = "articleEvents",
    summary = "An article's rating and poll, live",
    description = "Server-Sent Events that do not end: first `retry:`, then event `rating` \
        with the current rating (the `RatingSummary` JSON without `your_rating`) \
        and, when the article has a poll, event `poll` with its results; then an event for each \
        change, paced as for a poll's stream. Each event's `id` is the state's version, \
        increasing across both kinds.",
    params(
        ("slug" = String, Path, description = "The article's slug.", example = "csto-summit-2015"),
    ),
    responses(
        (status = 200, description = "The stream; `schema` describes each event.",
            content_type = "text/event-stream", body = ref("#/components/schemas/ArticleEvent"),
            example = "retry: 4213\n\nid: 3\nevent: rating\ndata: {\"article\":\"csto-summit-2015\",…}\n\n"),
        (status = 404, description = "There is no such article.", body = Problem,
            content_type = "application/problem+json"),
        ReadProblems,
        (status = 503, description = "Too many streams are open, overall or from this address \
            (`--max-streams-per-address`); read the rating and the poll instead.",
            body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again."))),
    )
)]
async fn article_events(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    address: ClientAddress,
) -> ApiResult<Response> {
    let article = state
        .catalog
        .article(&slug)
        .ok_or_else(|| AppError::not_found("article"))?;
    let mut sources: Vec<_> = state.live.rating_events(article.id).into_iter().collect();
    if sources.is_empty() {
        return Err(AppError::not_found("article").into());
    }
    sources.extend(
        article
            .poll_id
            .as_deref()
            .and_then(|id| state.live.poll_events(id)),
    );
    let slot = state.streams.take(address.0)?;
    Ok(stream_response(&state.streams, slot, sources))
}
