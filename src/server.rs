//! The HTTP/1.1 server: accepts connections, serves each with hyper, and
//! stops within a deadline.
//!
//! It is `axum::serve` with the limits a public server needs and that one
//! lacks:
//! - a request's headers must arrive within `header_read_timeout` of the
//!   connection opening or going idle, so a half-sent request or an idle
//!   keep-alive cannot hold a connection (and a file) forever;
//! - a client that takes nothing of what it is sent for `write_stall_timeout`
//!   is cut off, instead of holding a stream and its buffers;
//! - running out of files or memory while accepting does not stop the loop;
//! - a shutdown stops accepting, asks every connection to finish, and after
//!   `grace` cuts off those still open (slow clients, stuck streams);
//! - a connection whose first request opens an event stream is served on a
//!   runtime of its own (see `StreamsRuntime`).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::{Handle, Runtime};
use tokio::task::JoinSet;
use tokio::time::Sleep;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use tower::{Service, ServiceExt};

/// The time limits of a connection.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub write_stall_timeout: Duration,
    /// How long a shutdown waits for connections to finish.
    pub grace: Duration,
}

/// Serves `app` on `listener` until `shutdown` completes; then calls
/// `stopping` (to end long-lived responses), lets connections finish for at
/// most `limits.grace`, and cuts off the rest. Returns once every connection
/// is closed, so the caller may then close what the app holds.
pub async fn serve<S>(
    listener: TcpListener,
    app: S,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
    stopping: impl FnOnce(),
) where
    S: Service<Request<Body>, Response = Response, Error = std::convert::Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let closing = CancellationToken::new();
    let mut connections = JoinSet::new();
    let streams = StreamsRuntime::start();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            // Reap finished connections so the set stays small.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let connection = Connection {
                        http: http.clone(),
                        stream,
                        peer,
                        app: app.clone(),
                        limits,
                        closing: closing.clone(),
                    };
                    connections.spawn(connection.serve(streams.handle()));
                }
                Err(error) => accept_failed(&error).await,
            },
        }
    }
    drop(listener);
    stopping();
    closing.cancel();
    let open = connections.len();
    let finished = tokio::time::timeout(limits.grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if finished.is_err() {
        tracing::warn!(
            open = connections.len(),
            of = open,
            grace = ?limits.grace,
            "cutting off connections still open after the shutdown grace"
        );
        connections.shutdown().await;
    }
}

/// The runtime that serves event streams, apart from the server's.
///
/// An event goes to every open stream at once: with 10,000 readers, about
/// 120 ms of CPU, a hundred milliseconds of both cores. Served on the
/// server's runtime, those streams' tasks filled its queues, and every
/// wake-up of the votes' round trip (the ballot writer's, each time its
/// database thread finished a statement) waited behind them: under a vote
/// flood, votes/s fell by a quarter with 10,000 streams open. On a runtime
/// of their own the streams still have both cores when the server is idle,
/// and under load the OS shares the cores between the two runtimes' threads
/// slice by slice, so a vote waits for a slice, not for a fan-out.
///
/// A connection is sent here when its first request is for an event stream
/// (see `opens_event_stream`); one that asks for a stream later in its
/// life, after other requests, stays where it began (served the same).
struct StreamsRuntime(Option<Runtime>);

impl StreamsRuntime {
    fn start() -> Self {
        let built = tokio::runtime::Builder::new_multi_thread()
            .thread_name("live-streams")
            .enable_all()
            .build();
        match built {
            Ok(runtime) => Self(Some(runtime)),
            Err(error) => {
                tracing::warn!(%error, "cannot start the event streams' runtime; they share the server's");
                Self(None)
            }
        }
    }

    fn handle(&self) -> Option<Handle> {
        self.0.as_ref().map(|runtime| runtime.handle().clone())
    }
}

impl Drop for StreamsRuntime {
    /// A runtime cannot be dropped from async code, only let go: by then
    /// every connection on it is closed or cut off.
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// Whether a request, as far as it has come, is a `GET` of an event stream
/// (a path ending in `/events`). A first line still on its way counts as
/// anything else: the request is served the same, on the server's runtime.
fn opens_event_stream(head: &[u8]) -> bool {
    let Some(target) = head.strip_prefix(b"GET /") else {
        return false;
    };
    target
        .iter()
        .position(|&b| b == b' ' || b == b'?')
        .is_some_and(|end| target[..end].ends_with(b"/events"))
}

/// An accepted connection and what serving it takes.
struct Connection<S> {
    http: hyper::server::conn::http1::Builder,
    stream: TcpStream,
    peer: SocketAddr,
    app: S,
    limits: Limits,
    closing: CancellationToken,
}

impl<S> Connection<S>
where
    S: Service<Request<Body>, Response = Response, Error = std::convert::Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    /// Serves the connection on `streams` if its first request opens an
    /// event stream, here otherwise. It is looked at (not read) first, for
    /// as long as hyper would wait for its headers: one that says nothing
    /// in that time is closed, as hyper would close it.
    async fn serve(self, streams: Option<Handle>) {
        let Some(streams) = streams else {
            return self.serve_here().await;
        };
        let mut head = [0_u8; 128];
        let peeked =
            tokio::time::timeout(self.limits.header_read_timeout, self.stream.peek(&mut head))
                .await;
        match peeked {
            Ok(Ok(0) | Err(_)) | Err(_) => {}
            Ok(Ok(n)) if opens_event_stream(&head[..n]) => {
                // Cut off with this task, as the shutdown's grace cuts off this one.
                let served = AbortOnDropHandle::new(streams.spawn(self.serve_here()));
                let _ = served.await;
            }
            Ok(Ok(_)) => self.serve_here().await,
        }
    }

    /// One connection, from its first byte to its close, on this runtime.
    async fn serve_here(self) {
        let Self {
            http,
            stream,
            peer,
            app,
            limits,
            closing,
        } = self;
        // Small writes (events, votes' answers) go out at once.
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(WriteStall::new(stream, limits.write_stall_timeout));
        let app = app.map_request(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            request.map(Body::new)
        });
        let connection = http.serve_connection(io, TowerToHyperService::new(app));
        tokio::pin!(connection);
        let result = tokio::select! {
            result = connection.as_mut() => result,
            () = closing.cancelled() => {
                connection.as_mut().graceful_shutdown();
                connection.await
            }
        };
        if let Err(error) = result {
            tracing::debug!(%error, "connection ended with an error");
        }
    }
}

/// Accepting can fail for the listener as a whole (out of files, out of
/// memory) or for one connection that died in the queue. Either way the
/// server goes on; when the process is out of files it pauses, so as not to
/// spin while a file frees up.
async fn accept_failed(error: &io::Error) {
    if matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
    ) {
        return;
    }
    tracing::warn!(%error, "cannot accept a connection; pausing");
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// A connection that fails its writes once nothing could be written for
/// `limit`: a client that stops reading is let go instead of being buffered for.
pub struct WriteStall<IO> {
    inner: IO,
    limit: Duration,
    /// Running while writes are blocked; reset by any progress.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<IO> WriteStall<IO> {
    pub fn new(inner: IO, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            stalled: None,
        }
    }

    /// Called with the result of a write, flush or shutdown of the inner
    /// connection: progress clears the clock, a block starts or checks it.
    fn watch<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if poll.is_ready() {
            self.stalled = None;
            return poll;
        }
        let limit = self.limit;
        let stalled = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        if stalled.as_mut().poll(cx).is_ready() {
            self.stalled = None;
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client stopped reading",
            )));
        }
        Poll::Pending
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for WriteStall<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for WriteStall<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.watch(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.watch(cx, poll)
    }
}

#[cfg(test)]
mod tests {
    use super::opens_event_stream;

    #[test]
    fn event_streams_are_told_by_their_first_line() {
        for stream in [
            "GET /api/v1/polls/us-long-term-goals/events HTTP/1.1\r\nHost: x\r\n",
            "GET /api/v1/articles/csto-summit-2015/events?x=1 HTTP/1.1\r\n",
            "GET /api/v1/polls/p/events HTTP/1.",
        ] {
            assert!(opens_event_stream(stream.as_bytes()), "{stream}");
        }
        for other in [
            "GET /api/v1/polls/us-long-term-goals HTTP/1.1\r\n",
            "POST /api/v1/polls/p/events HTTP/1.1\r\n",
            "GET /api/v1/polls/p/events/more HTTP/1.1\r\n",
            "GET /events-of-the-day HTTP/1.1\r\n",
            // Its path is not all here yet.
            "GET /api/v1/polls/p/even",
            "",
            "GET",
        ] {
            assert!(!opens_event_stream(other.as_bytes()), "{other}");
        }
    }
}
