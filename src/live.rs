//! The live hub: the latest state of every poll and rating, and the events
//! that carry it to open streams.
//!
//! Each poll and each article's rating has two channels:
//! - its *state* (`watch`), replaced by the ballot box after every commit and
//!   read by pages and the API at once;
//! - its *event*, the state serialised once into the bytes of a Server-Sent
//!   Event that every stream writes as they are. A pacer task per channel
//!   turns states into events: a lone change goes out at once, a burst at most
//!   once per `pace`, ending on the final state.
//!
//! So the cost of a commit does not grow with the number of readers, and the
//! cost of the readers does not grow with the rate of votes. Nobody waits on a
//! reader: `watch` keeps only the newest value, and a slow stream skips states.
//!
//! Every published state gets a version from one counter, so versions increase
//! across polls and articles alike; streams use them as event ids.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::poll::PollState;
use crate::rating::RatingState;

/// An event as every stream writes it: `id`, `event` and `data` lines.
#[derive(Clone, Debug)]
pub struct Frame {
    pub version: u64,
    pub bytes: Bytes,
}

impl Frame {
    /// The event `name` for a state: its JSON, less the field that only
    /// makes sense for one reader.
    fn broadcast(name: &str, version: u64, body: impl Serialize, per_reader: &str) -> Self {
        let mut json = serde_json::to_value(body).unwrap_or_default();
        if let Some(object) = json.as_object_mut() {
            object.remove(per_reader);
        }
        // serde_json never writes a raw newline, so the data is one line.
        let text = format!("id: {version}\nevent: {name}\ndata: {json}\n\n");
        Self {
            version,
            bytes: Bytes::from(text),
        }
    }

    fn poll(state: &PollState) -> Self {
        Self::broadcast("poll", state.version, state.results(None), "your_vote")
    }

    fn rating(slug: &str, state: &RatingState) -> Self {
        Self::broadcast(
            "rating",
            state.version,
            state.summary(slug, None),
            "your_rating",
        )
    }
}

/// One poll's or one article's channels.
#[derive(Debug)]
struct Topic<T> {
    state: watch::Sender<Arc<T>>,
    /// Subscribers clone this receiver; the pacer holds the sender.
    events: watch::Receiver<Arc<Frame>>,
}

#[derive(Debug)]
pub struct Live {
    polls: HashMap<Arc<str>, Topic<PollState>>,
    ratings: HashMap<i64, Topic<RatingState>>,
    versions: AtomicU64,
}

/// An article's rating as `Live` is given it at start.
pub struct ArticleRating {
    pub article_id: i64,
    pub slug: Arc<str>,
    pub state: RatingState,
}

impl Live {
    /// Starts the hub with its pacers, which run until `shutdown` or until
    /// the hub is dropped.
    pub fn start(
        polls: Vec<PollState>,
        ratings: Vec<ArticleRating>,
        pace: Duration,
        shutdown: &CancellationToken,
    ) -> Self {
        // Versions start at the clock, so a reader who reconnects after a
        // restart still sees them increase.
        let versions = AtomicU64::new(u64::try_from(crate::store::now_millis()).unwrap_or(0));
        let next = || versions.fetch_add(1, Ordering::Relaxed) + 1;
        let polls = polls
            .into_iter()
            .map(|mut state| {
                state.version = next();
                let id = state.id.clone();
                let topic = Topic::start(state, Frame::poll, pace, shutdown);
                (id, topic)
            })
            .collect();
        let ratings = ratings
            .into_iter()
            .map(
                |ArticleRating {
                     article_id,
                     slug,
                     mut state,
                 }| {
                    state.version = next();
                    let prepare = move |state: &RatingState| Frame::rating(&slug, state);
                    (article_id, Topic::start(state, prepare, pace, shutdown))
                },
            )
            .collect();
        Self {
            polls,
            ratings,
            versions,
        }
    }

    fn next_version(&self) -> u64 {
        self.versions.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn poll(&self, id: &str) -> Option<Arc<PollState>> {
        self.polls.get(id).map(|topic| topic.state.borrow().clone())
    }

    /// A poll's events, starting with the current one.
    pub fn poll_events(&self, id: &str) -> Option<watch::Receiver<Arc<Frame>>> {
        self.polls.get(id).map(|topic| topic.events.clone())
    }

    pub fn publish_poll(&self, mut state: PollState) {
        if let Some(topic) = self.polls.get(&state.id) {
            state.version = self.next_version();
            // send_replace: publishing must work with nobody subscribed.
            topic.state.send_replace(Arc::new(state));
        }
    }

    /// An article's rating; an article nobody has rated has an empty one.
    pub fn rating(&self, article_id: i64) -> Arc<RatingState> {
        self.ratings
            .get(&article_id)
            .map(|topic| topic.state.borrow().clone())
            .unwrap_or_default()
    }

    /// An article's rating events, starting with the current one.
    pub fn rating_events(&self, article_id: i64) -> Option<watch::Receiver<Arc<Frame>>> {
        self.ratings
            .get(&article_id)
            .map(|topic| topic.events.clone())
    }

    pub fn publish_rating(&self, article_id: i64, mut state: RatingState) {
        if let Some(topic) = self.ratings.get(&article_id) {
            state.version = self.next_version();
            topic.state.send_replace(Arc::new(state));
        }
    }
}

impl<T: Send + Sync + 'static> Topic<T> {
    fn start(
        state: T,
        prepare: impl Fn(&T) -> Frame + Send + 'static,
        pace: Duration,
        shutdown: &CancellationToken,
    ) -> Self {
        let first = Arc::new(prepare(&state));
        let (state, states) = watch::channel(Arc::new(state));
        let (events_tx, events) = watch::channel(first);
        tokio::spawn(pace_events(
            states,
            events_tx,
            prepare,
            pace,
            shutdown.clone(),
        ));
        Self { state, events }
    }
}

/// The least pause between two events of a topic for each of its readers:
/// an event costs a write per reader, so the pause grows with the audience,
/// keeping what the writes cost the server to a bounded share of its time.
const PAUSE_PER_READER: Duration = Duration::from_micros(40);
/// The longest pause, whatever the audience: a reader is never much more
/// than a second behind.
const LONGEST_PAUSE: Duration = Duration::from_millis(750);

/// The pause after an event seen by `readers` streams.
fn pause_after(pace: Duration, readers: usize) -> Duration {
    let by_audience = PAUSE_PER_READER.saturating_mul(u32::try_from(readers).unwrap_or(u32::MAX));
    by_audience.min(LONGEST_PAUSE).max(pace)
}

/// Turns states into events: the first change after a quiet spell at once,
/// then at most one event per pause (`pace`, longer for a large audience),
/// always ending on the newest state.
async fn pace_events<T>(
    mut states: watch::Receiver<Arc<T>>,
    events: watch::Sender<Arc<Frame>>,
    prepare: impl Fn(&T) -> Frame,
    pace: Duration,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            changed = states.changed() => if changed.is_err() { return },
            () = shutdown.cancelled() => return,
        }
        let state = states.borrow_and_update().clone();
        events.send_replace(Arc::new(prepare(&state)));
        // Changes during the pause are folded into the next event.
        let pause = pause_after(pace, events.receiver_count());
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pause_grows_with_the_audience_within_bounds() {
        let pace = Duration::from_millis(250);
        assert_eq!(pause_after(pace, 0), pace);
        assert_eq!(pause_after(pace, 1_000), pace);
        assert_eq!(pause_after(pace, 10_000), Duration::from_millis(400));
        assert_eq!(pause_after(pace, 19_000), LONGEST_PAUSE);
        assert_eq!(pause_after(pace, usize::MAX), LONGEST_PAUSE);
        // A pace set longer than the longest pause is kept.
        let slow = Duration::from_secs(2);
        assert_eq!(pause_after(slow, 10_000), slow);
    }
}
