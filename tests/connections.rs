//! Connections that cannot be held open for nothing: half-sent requests and
//! clients that stop reading are let go.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking
mod common;

use std::time::{Duration, Instant};

use common::{ARTICLE, TestApp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Reads until the server closes the connection; `None` if it does not within `wait`.
async fn read_until_closed(stream: &mut TcpStream, wait: Duration) -> Option<usize> {
    let mut total = 0;
    let mut buf = vec![0_u8; 64 * 1024];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(total),
            Ok(Ok(n)) => total += n,
        }
    }
}

#[tokio::test]
async fn a_request_whose_headers_never_finish_is_closed() {
    let app = TestApp::spawn_with(|c| c.header_read_timeout = Duration::from_millis(500)).await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let started = Instant::now();
    let read = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(read.is_some(), "the server kept a half-sent request open");
    assert!(started.elapsed() >= Duration::from_millis(400));

    // A connection that never says anything is closed the same way, and so
    // is a keep-alive connection left idle after a request.
    let mut silent = TcpStream::connect(app.addr).await.unwrap();
    assert!(
        read_until_closed(&mut silent, Duration::from_secs(5))
            .await
            .is_some()
    );
    let mut idle = TcpStream::connect(app.addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answered = read_until_closed(&mut idle, Duration::from_secs(5)).await;
    assert!(
        answered.is_some_and(|n| n > 0),
        "answered, then closed when idle"
    );

    // Meanwhile the server answers everyone else.
    assert_eq!(app.get_text("/healthz").await, "ok\n");
}

#[tokio::test]
async fn a_client_that_stops_reading_is_let_go() {
    let app = TestApp::spawn_with(|c| c.write_stall_timeout = Duration::from_millis(500)).await;
    let page_len = app.get_text(ARTICLE).await.len();
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(app.addr).await.unwrap();
    // Ask for the page 200 times over, then read nothing.
    let requests = format!("GET {ARTICLE} HTTP/1.1\r\nHost: x\r\n\r\n").repeat(200);
    stream.write_all(requests.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let read = read_until_closed(&mut stream, Duration::from_secs(10))
        .await
        .expect("the server let the stalled client go");
    assert!(
        read < 100 * page_len,
        "{read} bytes read of {} asked for",
        200 * page_len
    );
    assert_eq!(app.get_text("/healthz").await, "ok\n");
}
