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
//!   `grace` cuts off those still open (slow clients, stuck streams).

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
use tokio::task::JoinSet;
use tokio::time::Sleep;
use tokio_util::sync::CancellationToken;
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
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            // Reap finished connections so the set stays small.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let connection = serve_connection(
                        http.clone(),
                        stream,
                        peer,
                        app.clone(),
                        limits.write_stall_timeout,
                        closing.clone(),
                    );
                    connections.spawn(connection);
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

/// One connection, from its first byte to its close.
async fn serve_connection<S>(
    http: hyper::server::conn::http1::Builder,
    stream: TcpStream,
    peer: SocketAddr,
    app: S,
    write_stall_timeout: Duration,
    closing: CancellationToken,
) where
    S: Service<Request<Body>, Response = Response, Error = std::convert::Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    // Small writes (events, votes' answers) go out at once.
    let _ = stream.set_nodelay(true);
    let io = TokioIo::new(WriteStall::new(stream, write_stall_timeout));
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
