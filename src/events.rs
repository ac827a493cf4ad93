//! Server-Sent Events: the current state first, then every change.
//!
//! Each stream follows `watch` channels, so it only ever sends the newest
//! state: a slow reader skips states instead of holding anything up. Streams
//! end when the server shuts down, and their number is capped below the
//! process's open-file limit.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::stream::{self, Stream, StreamExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_stream::wrappers::WatchStream;
use tokio_util::sync::CancellationToken;

use crate::app::AppState;
use crate::error::{ApiResult, AppError};
use crate::poll::PollState;
use crate::rating::RatingState;

/// Open event streams allowed at once; the process may hold 20,000 files.
pub const MAX_STREAMS: usize = 15_000;

/// What streams share: a cap on their number, and the shutdown signal that ends them.
#[derive(Clone, Debug)]
pub struct Streams {
    permits: Arc<Semaphore>,
    pub shutdown: CancellationToken,
}

impl Default for Streams {
    fn default() -> Self {
        Self {
            permits: Arc::new(Semaphore::new(MAX_STREAMS)),
            shutdown: CancellationToken::new(),
        }
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/polls/{poll}/events", get(poll_events))
        .route("/api/v1/articles/{slug}/events", get(article_events))
}

fn poll_event(state: &PollState) -> Event {
    broadcast("poll", state.results(None), "your_vote")
}

fn rating_event(slug: &str, state: &RatingState) -> Event {
    broadcast("rating", state.summary(slug, None), "your_rating")
}

/// An event every reader gets alike: the API's JSON without its per-reader field.
fn broadcast(event: &str, body: impl serde::Serialize, per_reader: &str) -> Event {
    let mut json = serde_json::to_value(body).unwrap_or_default();
    if let Some(object) = json.as_object_mut() {
        object.remove(per_reader);
    }
    Event::default().event(event).data(json.to_string())
}

fn permit(state: &AppState) -> ApiResult<OwnedSemaphorePermit> {
    Ok(state
        .streams
        .permits
        .clone()
        .try_acquire_owned()
        .map_err(|_| {
            AppError::unavailable(
                "Too many live readers right now; the page still works without live updates.",
            )
        })?)
}

/// Ends the stream on shutdown and holds its permit while it is open.
fn finish<S>(state: &AppState, permit: OwnedSemaphorePermit, events: S) -> Response
where
    S: Stream<Item = Event> + Send + 'static,
{
    let shutdown = state.streams.shutdown.clone().cancelled_owned();
    let events = events
        .map(move |event| {
            let _held = &permit;
            Ok::<_, Infallible>(event)
        })
        .take_until(shutdown);
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// `GET /api/v1/polls/{poll}/events`: event `poll`.
async fn poll_events(
    State(state): State<AppState>,
    Path(poll): Path<String>,
) -> ApiResult<Response> {
    let updates = state
        .live
        .subscribe_poll(&poll)
        .ok_or_else(|| AppError::not_found("poll"))?;
    let permit = permit(&state)?;
    let events = WatchStream::new(updates).map(|poll| poll_event(&poll));
    Ok(finish(&state, permit, events))
}

/// `GET /api/v1/articles/{slug}/events`: events `poll` (the article's poll) and `rating`.
async fn article_events(
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> ApiResult<Response> {
    let article = state
        .catalog
        .article(&slug)
        .cloned()
        .ok_or_else(|| AppError::not_found("article"))?;
    let ratings = state
        .live
        .subscribe_rating(article.id)
        .ok_or_else(|| AppError::not_found("article"))?;
    let polls = article
        .poll_id
        .as_deref()
        .and_then(|id| state.live.subscribe_poll(id));
    let permit = permit(&state)?;
    let slug: Arc<str> = article.slug.as_str().into();
    let ratings = WatchStream::new(ratings).map(move |rating| rating_event(&slug, &rating));
    let events = match polls {
        Some(polls) => stream::select(
            WatchStream::new(polls).map(|poll| poll_event(&poll)),
            ratings,
        )
        .boxed(),
        None => ratings.boxed(),
    };
    Ok(finish(&state, permit, events))
}
