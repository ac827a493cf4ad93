//! Server-Sent Events: the current state first, then every change.
//!
//! A stream writes the prepared events of `Live` as they are (no
//! serialisation per reader), in version order, which is also their `id`
//! order. It sends `retry:` first and a comment as heartbeat when nothing
//! else was sent for a while. Streams end when the server shuts down (the
//! hub's pacers stop, and with them every stream).
//!
//! Their number is capped twice: overall, below the process's open-file
//! limit, so that pages and votes always find a file to open; and per address
//! (an IPv4 address or an IPv6 /64), so one host cannot take every slot.
//! Beyond either cap a stream is refused with 503 and `Retry-After`, and the
//! page's script re-reads the results instead.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

mod routes;

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::Stream;
use futures_util::stream::StreamExt;
use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tokio_stream::wrappers::WatchStream;
use tokio_util::sync::CancellationToken;

pub use routes::routes;

use crate::error::AppError;
use crate::live::{Frame, Subscription};
use crate::reader::network_of;
use crate::telemetry::metrics;

/// A comment line: keeps proxies and browsers from calling the stream dead.
const HEARTBEAT: &[u8] = b":\n\n";
/// Files kept free of streams: for pages, votes, the database and the logs.
const RESERVED_FILES: u64 = 2_000;
/// Asked of a refused client before it tries again.
const REFUSED_RETRY_AFTER_SECS: u64 = 30;

/// What streams share: the caps on their number, the heartbeat, and the
/// shutdown signal that stops the hub (and with it every stream).
#[derive(Debug)]
pub struct Streams {
    slots: Arc<Semaphore>,
    max_per_address: Option<u32>,
    per_address: Mutex<HashMap<IpAddr, u32>>,
    /// Silence after which a stream sends a comment line.
    heartbeat: Duration,
    pub shutdown: CancellationToken,
}

impl Streams {
    pub fn new(capacity: usize, max_per_address: Option<u32>, heartbeat: Duration) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(capacity)),
            max_per_address,
            per_address: Mutex::default(),
            heartbeat,
            shutdown: CancellationToken::new(),
        }
    }

    /// A slot for one more stream from `address`, or the refusal to send.
    fn take(self: &Arc<Self>, address: Option<IpAddr>) -> Result<StreamSlot, AppError> {
        let refused =
            |detail: &str| AppError::unavailable(detail).with_retry_after(REFUSED_RETRY_AFTER_SECS);
        let permit = self.slots.clone().try_acquire_owned().map_err(|_| {
            metrics::stream_refused("capacity");
            refused("Too many live readers right now; the page still works without live updates.")
        })?;
        let network = address.map(network_of);
        if let (Some(network), Some(limit)) = (network, self.max_per_address) {
            let mut open = self.per_address.lock();
            let count = open.entry(network).or_insert(0);
            if *count >= limit {
                metrics::stream_refused("address");
                return Err(refused(
                    "Too many live updates are open from your network; the page still works without them.",
                ));
            }
            *count += 1;
        }
        metrics::open_streams(1.0);
        Ok(StreamSlot {
            _permit: permit,
            streams: self.clone(),
            network: network.filter(|_| self.max_per_address.is_some()),
        })
    }
}

/// Held by an open stream; gives its slots back when the stream ends.
struct StreamSlot {
    _permit: OwnedSemaphorePermit,
    streams: Arc<Streams>,
    network: Option<IpAddr>,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        metrics::open_streams(-1.0);
        if let Some(network) = self.network {
            let mut open = self.streams.per_address.lock();
            if let Some(count) = open.get_mut(&network) {
                *count -= 1;
                if *count == 0 {
                    open.remove(&network);
                }
            }
        }
    }
}

/// Raises the soft open-file limit to the hard one, and returns how many
/// streams fit below it, with room left for everything else.
pub fn capacity_for_open_files() -> usize {
    let limit = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(error) => {
            tracing::warn!(%error, "cannot read or raise the open-file limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1_024, |(soft, _)| soft)
        }
    };
    // At least a few streams, even on a tiny limit; never more than half of
    // a small one.
    let room = limit.saturating_sub(RESERVED_FILES).max(limit / 2);
    let capacity = usize::try_from(room).unwrap_or(usize::MAX);
    tracing::info!(
        open_file_limit = limit,
        stream_capacity = capacity,
        "event streams capped below the open-file limit"
    );
    capacity
}

/// The answer that streams `sources`' events, holding `slot` while it is open.
fn stream_response(
    streams: &Streams,
    slot: StreamSlot,
    subscriptions: Vec<Subscription>,
) -> Response {
    let mut ready: Vec<Arc<Frame>> = subscriptions.iter().map(|s| s.newest.clone()).collect();
    ready.sort_by_key(|frame| std::cmp::Reverse(frame.version));
    let feed = LiveFeed {
        sources: subscriptions
            .into_iter()
            .map(|s| WatchStream::from_changes(s.changes))
            .collect(),
        ready,
        sent_version: 0,
        retry: Some(retry_line()),
        heartbeat: Box::pin(tokio::time::sleep(streams.heartbeat)),
        heartbeat_after: streams.heartbeat,
        last_write: Instant::now(),
        _slot: slot,
    };
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            // Tells nginx not to buffer the stream.
            (
                header::HeaderName::from_static("x-accel-buffering"),
                HeaderValue::from_static("no"),
            ),
        ],
        Body::from_stream(feed),
    )
        .into_response()
}

/// How long a browser waits before reconnecting: 2 to 10 s, spread so that
/// readers cut off together (a restart) do not all come back at once.
fn retry_line() -> Bytes {
    let spread = getrandom::u32().unwrap_or(0) % 8_000;
    Bytes::from(format!("retry: {}\n\n", 2_000 + spread))
}

/// One reader's stream: the events of one or two topics, in version order.
struct LiveFeed {
    sources: Vec<WatchStream<Arc<Frame>>>,
    /// Events taken from the sources and not yet written, newest first.
    ready: Vec<Arc<Frame>>,
    /// The version of the last event written: one not newer is not written
    /// (a group may bring, after the stream began, the event it began with).
    sent_version: u64,
    retry: Option<Bytes>,
    /// Fires at most `heartbeat_after` after the last write; re-armed only
    /// when it fires, not at every event, so an event costs no timer work.
    heartbeat: Pin<Box<Sleep>>,
    heartbeat_after: Duration,
    last_write: Instant,
    _slot: StreamSlot,
}

impl LiveFeed {
    fn sent(&mut self, bytes: Bytes) -> Poll<Option<Result<Bytes, Infallible>>> {
        self.last_write = Instant::now();
        Poll::Ready(Some(Ok(bytes)))
    }

    /// Whether a heartbeat is due; if not, the timer is set for when it will be.
    fn heartbeat_due(&mut self, cx: &mut Context<'_>) -> bool {
        while self.heartbeat.as_mut().poll(cx).is_ready() {
            let due = self.last_write + self.heartbeat_after;
            if due <= Instant::now() {
                return true;
            }
            self.heartbeat.as_mut().reset(due);
        }
        false
    }
}

impl Stream for LiveFeed {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if let Some(retry) = this.retry.take() {
            return Poll::Ready(Some(Ok(retry)));
        }
        loop {
            while let Some(frame) = this.ready.pop() {
                if frame.version > this.sent_version {
                    this.sent_version = frame.version;
                    return this.sent(frame.bytes.clone());
                }
            }
            // Every source is polled in the same pass, so that two changes
            // published one after the other go out in version order; again
            // until none has anything, so that each will wake the stream.
            for source in &mut this.sources {
                match source.poll_next_unpin(cx) {
                    Poll::Ready(Some(frame)) => this.ready.push(frame),
                    // The hub's pacers have stopped: the server is shutting down.
                    Poll::Ready(None) => return Poll::Ready(None),
                    Poll::Pending => {}
                }
            }
            if this.ready.is_empty() {
                break;
            }
            this.ready
                .sort_by_key(|frame| std::cmp::Reverse(frame.version));
        }
        if this.heartbeat_due(cx) {
            return this.sent(Bytes::from_static(HEARTBEAT));
        }
        Poll::Pending
    }
}
