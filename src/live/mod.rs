//! The live hub: the latest state of every poll and rating, and the events
//! that carry it to open streams.
//!
//! Each poll and each article's rating has two channels:
//! - its *state* (`watch`), replaced by the ballot box after every commit and
//!   read by pages and the API at once;
//! - its *events*, the state serialised once into the bytes of a Server-Sent
//!   Event that every stream writes as they are. A pacer task per topic turns
//!   states into events: a lone change goes out at once, a burst at most once
//!   per pause, ending on the final state. The pacers run on a thread of
//!   their own (see `run_pacers`).
//!
//! So the cost of a commit does not grow with the number of readers, and the
//! cost of the readers does not grow with the rate of votes. Nobody waits on a
//! reader: `watch` keeps only the newest value, and a slow stream skips events.
//!
//! An event's version (its `id`) is given when it is sent, by one counter
//! that every topic shares and that is held while the event goes out, so on
//! every stream, whatever topics it follows, ids only increase.

pub mod sync;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::{Mutex, watch};
use tokio_util::sync::CancellationToken;

use crate::poll::PollState;
use crate::rating::RatingState;

/// An event as every stream writes it: `id`, `event` and `data` lines.
#[derive(Clone, Debug)]
pub struct Frame {
    pub version: u64,
    pub bytes: Bytes,
}

/// Makes a topic's event for a state, given its version.
type Prepare<T> = Box<dyn Fn(&T, u64) -> Frame + Send + Sync>;

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

    fn poll(state: &PollState, version: u64) -> Self {
        Self::broadcast("poll", version, state.results(None), "your_vote")
    }

    fn rating(slug: &str, state: &RatingState, version: u64) -> Self {
        Self::broadcast("rating", version, state.summary(slug, None), "your_rating")
    }
}

/// Streams of one topic are split into this many groups, each on its own
/// channel, and an event goes to one group after the other (see `Pacer::run`).
const GROUPS: usize = 16;

/// One poll's or one article's channels.
#[derive(Debug)]
struct Topic<T> {
    state: watch::Sender<Arc<T>>,
    /// Subscribers clone one of these receivers, in turn; the pacer holds the senders.
    events: Vec<watch::Receiver<Arc<Frame>>>,
    next_group: AtomicUsize,
}

/// A reader's subscription to a topic: the newest event, then the events
/// of its group as they come (which may repeat the newest: skip what is not
/// newer than what was sent).
#[derive(Debug)]
pub struct Subscription {
    pub newest: Arc<Frame>,
    pub changes: watch::Receiver<Arc<Frame>>,
}

#[derive(Debug)]
pub struct Live {
    polls: HashMap<Arc<str>, Topic<PollState>>,
    ratings: HashMap<i64, Topic<RatingState>>,
}

/// An article's rating as `Live` is given it at start.
pub struct ArticleRating {
    pub article_id: i64,
    pub slug: Arc<str>,
    pub state: RatingState,
}

/// What the pacers share: the last version given, held while an event goes out.
type Versions = Arc<Mutex<u64>>;

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
        let mut last = u64::try_from(crate::store::now_millis()).unwrap_or(0);
        let mut next = || {
            last += 1;
            last
        };
        let (mut poll_pacers, mut rating_pacers) = (Vec::new(), Vec::new());
        let polls = polls
            .into_iter()
            .map(|state| {
                let id = state.id.clone();
                let (topic, pacer) = Topic::new(state, Box::new(Frame::poll), next());
                poll_pacers.push(pacer);
                (id, topic)
            })
            .collect();
        let ratings = ratings
            .into_iter()
            .map(
                |ArticleRating {
                     article_id,
                     slug,
                     state,
                 }| {
                    let prepare =
                        move |state: &RatingState, version| Frame::rating(&slug, state, version);
                    let (topic, pacer) = Topic::new(state, Box::new(prepare), next());
                    rating_pacers.push(pacer);
                    (article_id, topic)
                },
            )
            .collect();
        let versions: Versions = Arc::new(Mutex::new(last));
        let mut pacers: Vec<PacerRun> = Vec::new();
        for pacer in poll_pacers {
            pacers.push(Box::pin(pacer.run(
                versions.clone(),
                pace,
                shutdown.clone(),
            )));
        }
        for pacer in rating_pacers {
            pacers.push(Box::pin(pacer.run(
                versions.clone(),
                pace,
                shutdown.clone(),
            )));
        }
        run_pacers(pacers);
        Self { polls, ratings }
    }

    pub fn poll(&self, id: &str) -> Option<Arc<PollState>> {
        self.polls.get(id).map(|topic| topic.state.borrow().clone())
    }

    /// A poll's events, starting with the current one.
    pub fn poll_events(&self, id: &str) -> Option<Subscription> {
        self.polls.get(id).map(Topic::subscribe)
    }

    /// Publishes a poll's new state, unless it is the one published, or has
    /// fewer votes: votes are only ever added, so that state is older (an
    /// instance's writer may publish after the state it read from another's
    /// later commit; see `sync`).
    pub fn publish_poll(&self, state: PollState) {
        if let Some(topic) = self.polls.get(&state.id) {
            // send_if_modified: publishing must work with nobody subscribed.
            topic.state.send_if_modified(|current| {
                let newer =
                    state.total_votes >= current.total_votes && state.options != current.options;
                if newer {
                    *current = Arc::new(state);
                }
                newer
            });
        }
    }

    /// The polls the hub serves.
    pub fn poll_ids(&self) -> impl Iterator<Item = &str> {
        self.polls.keys().map(|id| &**id)
    }

    /// The articles whose ratings the hub serves.
    pub fn article_ids(&self) -> impl Iterator<Item = i64> + '_ {
        self.ratings.keys().copied()
    }

    /// An article's rating; an article nobody has rated has an empty one.
    pub fn rating(&self, article_id: i64) -> Arc<RatingState> {
        self.ratings
            .get(&article_id)
            .map(|topic| topic.state.borrow().clone())
            .unwrap_or_default()
    }

    /// An article's rating events, starting with the current one.
    pub fn rating_events(&self, article_id: i64) -> Option<Subscription> {
        self.ratings.get(&article_id).map(Topic::subscribe)
    }

    /// Publishes an article's new rating, unless it is the one published, or
    /// fewer readers have rated in it (an older state, as for polls).
    pub fn publish_rating(&self, article_id: i64, state: RatingState) {
        if let Some(topic) = self.ratings.get(&article_id) {
            topic.state.send_if_modified(|current| {
                let newer = state.count() >= current.count() && state.counts != current.counts;
                if newer {
                    *current = Arc::new(state);
                }
                newer
            });
        }
    }
}

impl<T: Send + Sync + 'static> Topic<T> {
    /// The topic, and the pacer that turns its states into events; its first
    /// event has version `first`.
    fn new(state: T, prepare: Prepare<T>, first: u64) -> (Self, Pacer<T>) {
        let frame = Arc::new(prepare(&state, first));
        let (state, states) = watch::channel(Arc::new(state));
        let (groups, events) = (0..GROUPS).map(|_| watch::channel(frame.clone())).unzip();
        let topic = Self {
            state,
            events,
            next_group: AtomicUsize::new(0),
        };
        let pacer = Pacer {
            states,
            groups,
            prepare,
        };
        (topic, pacer)
    }

    fn subscribe(&self) -> Subscription {
        let group = self.next_group.fetch_add(1, Ordering::Relaxed) % self.events.len();
        // In a burst an event reaches the groups one by one, the first group
        // first: a new reader starts from the first group's event, the
        // newest. Its own group is taken before: it never has an event the
        // first has not, so whatever is newer than that comes through it.
        let changes = self.events[group].clone();
        let newest = self.events[0].borrow().clone();
        Subscription { newest, changes }
    }
}

/// In a burst, the pause between two groups of streams: the event reaches
/// every stream within `GROUPS` of these, while votes go on in between.
const GROUP_GAP_IN_BURST: Duration = Duration::from_millis(6);

/// A pacer's loop, as `run_pacers` takes it.
type PacerRun = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Runs the pacers on a thread of their own, with a small runtime of their
/// own, so that an event's fan-out waits for the votes and pages, not the
/// other way round.
///
/// Most streams are served on a runtime apart from the server's
/// (`server::StreamsRuntime`); a stream asked for on a connection that
/// served other requests first is on the server's. There, a stream woken
/// from one of the worker threads would join that worker's own queue,
/// behind what is there and ahead of everything that arrives after it: the
/// votes and pages that came in during a fan-out waited for all of it.
/// Woken from another thread, the streams join the runtime's shared queue
/// instead, which a worker takes from when its own queue is empty (and now
/// and then regardless): a fan-out fills the time that votes and pages
/// leave, and an event to an idle server goes out as fast.
fn run_pacers(pacers: Vec<PacerRun>) {
    // Handed over once the thread runs, so that they are still here if it
    // cannot be started.
    let (hand, take) = std::sync::mpsc::sync_channel::<Vec<PacerRun>>(1);
    let started = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .and_then(|runtime| {
            std::thread::Builder::new()
                .name("live-pacers".to_owned())
                .spawn(move || {
                    let Ok(pacers) = take.recv() else { return };
                    runtime.block_on(async {
                        // A task each, as on the server's runtime: a pacer
                        // that fails ends its own topic's streams, not all.
                        let mut running = tokio::task::JoinSet::new();
                        for pacer in pacers {
                            running.spawn(pacer);
                        }
                        while running.join_next().await.is_some() {}
                    });
                })
        });
    let refused = match started {
        Ok(_) => hand.send(pacers).err().map(|back| back.0),
        Err(error) => {
            tracing::warn!(%error, "cannot start the pacers' thread; they share the server's");
            Some(pacers)
        }
    };
    // Never without events: on the server's own runtime, as before.
    for pacer in refused.into_iter().flatten() {
        tokio::spawn(pacer);
    }
}

/// The least pause between two events of a topic for each of its readers:
/// an event costs a write per reader, so the pause grows with the audience,
/// keeping what the writes cost the server to a bounded share of its time.
const PAUSE_PER_READER: Duration = Duration::from_micros(60);
/// The longest pause, whatever the audience: a reader is never much more
/// than a second behind.
const LONGEST_PAUSE: Duration = Duration::from_millis(750);

/// The pause after an event seen by `readers` streams.
fn pause_after(pace: Duration, readers: usize) -> Duration {
    let by_audience = PAUSE_PER_READER.saturating_mul(u32::try_from(readers).unwrap_or(u32::MAX));
    by_audience.min(LONGEST_PAUSE).max(pace)
}

/// Turns one topic's states into events.
struct Pacer<T> {
    states: watch::Receiver<Arc<T>>,
    /// In order: the first always has the newest event (see `Topic::subscribe`).
    groups: Vec<watch::Sender<Arc<Frame>>>,
    prepare: Prepare<T>,
}

impl<T> Pacer<T> {
    /// The first change after a quiet spell goes out at once, then at most
    /// one event per pause (`pace`, longer for a large audience, counted
    /// from the start of the event before), always ending on the newest state.
    ///
    /// An event goes to the groups of streams one after the other. After a
    /// quiet spell (a lone vote), group follows group at once: the event
    /// reaches every stream as soon as the cores can write it. In a burst
    /// (the state changed during the pause), `GROUP_GAP_IN_BURST` separates
    /// the groups, so that the fan-out, about 120 ms of CPU at 10,000
    /// readers, is spread over some 100 ms in which the votes pouring in get
    /// their turns, instead of taking both cores away from them at once.
    /// A reader who arrives meanwhile starts from the newest event.
    async fn run(mut self, versions: Versions, pace: Duration, shutdown: CancellationToken) {
        // Whether the state changed during the last pause: votes are pouring in.
        let mut burst = false;
        loop {
            tokio::select! {
                changed = self.states.changed() => if changed.is_err() { return },
                () = shutdown.cancelled() => return,
            }
            let started = tokio::time::Instant::now();
            let readers = {
                let mut version = versions.lock().await;
                *version += 1;
                let state = self.states.borrow_and_update().clone();
                let frame = Arc::new((self.prepare)(&state, *version));
                let mut readers = 0;
                for group in &self.groups {
                    group.send_replace(frame.clone());
                    readers += group.receiver_count().saturating_sub(1);
                    if burst {
                        tokio::time::sleep(GROUP_GAP_IN_BURST).await;
                    } else {
                        tokio::task::yield_now().await;
                    }
                }
                readers
            };
            // Changes during the pause are folded into the next event. The
            // pause counts from the event's start, the spread included.
            tokio::select! {
                () = tokio::time::sleep_until(started + pause_after(pace, readers)) => {}
                () = shutdown.cancelled() => return,
            }
            burst = self.states.has_changed().unwrap_or(false);
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
        assert_eq!(pause_after(pace, 10_000), Duration::from_millis(600));
        assert_eq!(pause_after(pace, 19_000), LONGEST_PAUSE);
        assert_eq!(pause_after(pace, usize::MAX), LONGEST_PAUSE);
        // A pace set longer than the longest pause is kept.
        let slow = Duration::from_secs(2);
        assert_eq!(pause_after(slow, 10_000), slow);
    }
}
