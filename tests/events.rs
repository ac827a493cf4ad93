//! Server-Sent Events: the current state first, then every change; streams end at shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking
mod common;

use std::time::Duration;

use common::{POLL, TestApp};
use futures_util::StreamExt;
use reqwest::StatusCode;
use reqwest::header;

/// Reads events from an SSE response: `(event, data)`.
struct Events {
    body: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buffer: String,
}

impl Events {
    async fn open(url: &str) -> Self {
        let response = reqwest::get(url).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/event-stream"
        );
        Self {
            body: Box::pin(response.bytes_stream()),
            buffer: String::new(),
        }
    }

    async fn next(&mut self) -> (String, serde_json::Value) {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = String::new();
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event: ") {
                        event = v.to_owned();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data.push_str(v);
                    }
                }
                if event.is_empty() {
                    continue; // a keep-alive comment
                }
                return (event, serde_json::from_str(&data).unwrap());
            }
            let chunk = tokio::time::timeout(Duration::from_secs(5), self.body.next())
                .await
                .expect("an event within 5 s")
                .unwrap()
                .unwrap();
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
}

#[tokio::test]
async fn a_poll_stream_sends_the_current_state_then_each_change() {
    let app = TestApp::spawn().await;
    let mut events = Events::open(&app.url(&format!("/api/v1/polls/{POLL}/events"))).await;
    let (event, first) = events.next().await;
    assert_eq!(event, "poll");
    assert_eq!(first["total_votes"], 108);
    assert!(
        first.get("your_vote").is_none(),
        "broadcasts carry no per-reader fields"
    );
    assert_eq!(app.vote(&app.reader(), 3).await, StatusCode::CREATED);
    let (event, next) = events.next().await;
    assert_eq!(event, "poll");
    assert_eq!(next["total_votes"], 109);
    assert_eq!(next["options"][2]["votes"], 25);
}

#[tokio::test]
async fn an_article_stream_sends_its_poll_and_its_rating() {
    let app = TestApp::spawn().await;
    let mut events = Events::open(&app.url("/api/v1/articles/csto-summit-2015/events")).await;
    let mut first = std::collections::BTreeMap::new();
    for _ in 0..2 {
        let (event, data) = events.next().await;
        first.insert(event, data);
    }
    assert_eq!(first["poll"]["id"], POLL);
    assert_eq!(first["rating"]["count"], 0);
    assert!(first["rating"].get("your_rating").is_none());

    let reader = app.reader();
    let rated = app.rate(&reader, 5).await;
    assert_eq!(rated.status(), StatusCode::OK);
    let (event, data) = events.next().await;
    assert_eq!(event, "rating");
    assert_eq!(data["count"], 1);
    assert_eq!(data["average"], 5.0);

    assert_eq!(app.vote(&reader, 1).await, StatusCode::CREATED);
    let (event, data) = events.next().await;
    assert_eq!(event, "poll");
    assert_eq!(data["options"][0]["votes"], 34);
}

#[tokio::test]
async fn unknown_streams_are_404_problems() {
    let app = TestApp::spawn().await;
    for path in ["/api/v1/polls/nope/events", "/api/v1/articles/nope/events"] {
        let response = reqwest::get(app.url(path)).await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
    }
}

#[tokio::test]
async fn open_streams_do_not_hold_up_a_graceful_shutdown() {
    let app = TestApp::spawn().await;
    let mut events = Events::open(&app.url(&format!("/api/v1/polls/{POLL}/events"))).await;
    let _ = events.next().await;
    tokio::time::timeout(Duration::from_secs(5), app.stop())
        .await
        .expect("the server stops with a stream open");
}
