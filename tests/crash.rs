//! `kill -9` while votes are in flight loses no acknowledged vote.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking
mod common;

use std::process::Child;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::StatusCode;

const POLL: &str = "us-long-term-goals";

fn start(database_url: &str, content: &std::path::Path) -> (Child, String) {
    common::spawn_binary(database_url, content, &[])
}

#[tokio::test]
async fn acknowledged_votes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}", dir.path().join("t.db").display());
    let content = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("content");
    let (mut server, base) = start(&database_url, &content);

    let stop = Arc::new(AtomicBool::new(false));
    let mut voters = Vec::new();
    for worker in 0..16_u64 {
        let url = format!("{base}/api/v1/polls/{POLL}/votes");
        let stop = stop.clone();
        voters.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut acknowledged = [0_u64; 4];
            let mut i = worker;
            while !stop.load(Ordering::Relaxed) {
                let option = i % 4 + 1;
                i += 1;
                match client
                    .post(&url)
                    .json(&serde_json::json!({ "option": option }))
                    .send()
                    .await
                {
                    Ok(response) if response.status() == StatusCode::CREATED => {
                        acknowledged[(option - 1) as usize] += 1
                    }
                    Ok(response) => panic!("unexpected {}", response.status()),
                    // The server died under us: this vote was never acknowledged.
                    Err(_) => break,
                }
            }
            acknowledged
        }));
    }
    // Let votes flow, then kill the server mid-stream.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill().unwrap();
    server.wait().unwrap();
    stop.store(true, Ordering::Relaxed);

    let mut acknowledged = [0_u64; 4];
    for voter in voters {
        for (total, n) in acknowledged.iter_mut().zip(voter.await.unwrap()) {
            *total += n;
        }
    }
    let acked: u64 = acknowledged.iter().sum();
    assert!(
        acked > 100,
        "votes were flowing when the server was killed ({acked})"
    );

    let (mut server, base) = start(&database_url, &content);
    let poll: serde_json::Value = reqwest::get(format!("{base}/api/v1/polls/{POLL}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    server.kill().unwrap();
    server.wait().unwrap();

    let seed = [33, 30, 24, 21];
    let counted: Vec<u64> = poll["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["votes"].as_u64().unwrap())
        .collect();
    for (i, (&count, &ack)) in counted.iter().zip(&acknowledged).enumerate() {
        assert!(
            count >= seed[i] + ack,
            "option {}: {count} counted, {} acknowledged",
            i + 1,
            seed[i] + ack
        );
    }
    // Only votes in flight at the kill (at most one per voter) may be counted without an answer.
    let extra = poll["total_votes"].as_u64().unwrap() - 108 - acked;
    assert!(
        extra <= 16,
        "{extra} votes counted that nobody was told about"
    );
}
