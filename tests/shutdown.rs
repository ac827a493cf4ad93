//! SIGTERM: the server ends its streams, finishes what is in flight, cuts off
//! slow clients after its grace, and exits within a few seconds, losing no
//! acknowledged vote.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking
mod common;

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::sse::Events;
use common::{POLL, Voters, assert_every_acknowledged_vote_counted, repo_content, spawn_binary};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};

/// The server's own grace (`Config::shutdown_grace`), and what the test allows on top.
const GRACE: Duration = Duration::from_secs(5);
const SLACK: Duration = Duration::from_secs(3);

fn terminate(server: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits for the process to exit; panics if it is still running after `limit`.
async fn exits_within(server: &mut Child, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        if let Some(status) = server.try_wait().unwrap() {
            assert!(status.success(), "the server exited with {status}");
            return started.elapsed();
        }
        if started.elapsed() > limit {
            server.kill().unwrap();
            panic!("the server was still running {limit:?} after SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_open_streams_and_slow_clients_exits_within_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = common::fresh_database_url(dir.path(), "t.db").await;
    let (mut server, base) = spawn_binary(
        &database_url,
        &repo_content(),
        &["--max-streams-per-address", "0"],
    );
    let addr: std::net::SocketAddr = base.trim_start_matches("http://").parse().unwrap();

    // 200 readers watching.
    let url = format!("{base}/api/v1/polls/{POLL}/events");
    let mut streams = Vec::new();
    for _ in 0..200 {
        let client = reqwest::Client::new();
        let mut events = Events::open_with(&client, &url).await;
        events.next_event().await;
        streams.push(events);
    }
    // A client whose request never finishes, and one that stopped reading a large answer.
    let mut half_sent = TcpStream::connect(addr).await.unwrap();
    half_sent
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut not_reading = socket.connect(addr).await.unwrap();
    let requests = "GET /articles/csto-summit-2015 HTTP/1.1\r\nHost: x\r\n\r\n".repeat(200);
    not_reading.write_all(requests.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    terminate(&server);
    let took = exits_within(&mut server, GRACE + SLACK).await;
    eprintln!("exited {took:?} after SIGTERM");
    for (i, events) in streams.iter_mut().enumerate() {
        assert!(
            events.ended_within(Duration::from_secs(1)).await,
            "stream {i} was ended"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_acknowledged_vote_is_lost_across_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = common::fresh_database_url(dir.path(), "t.db").await;
    let (mut server, base) = spawn_binary(&database_url, &repo_content(), &[]);

    let voters = Voters::start(&base, 16);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    terminate(&server);
    exits_within(&mut server, GRACE + SLACK).await;
    // Refused while stopping, or cut off: not acknowledged either way.
    let (acknowledged, _refused) = voters.finish().await;
    let acked: u64 = acknowledged.iter().sum();
    assert!(acked > 100, "votes were flowing at the SIGTERM ({acked})");

    let (mut server, base) = spawn_binary(&database_url, &repo_content(), &[]);
    let poll: serde_json::Value = reqwest::get(format!("{base}/api/v1/polls/{POLL}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    server.kill().unwrap();
    server.wait().unwrap();
    assert_every_acknowledged_vote_counted(&poll, acknowledged, 16);
}
