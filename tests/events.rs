//! Server-Sent Events: the current state first, then every change; streams end at shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking
mod common;

use std::time::Duration;

use common::sse::Events;
use common::{POLL, TestApp};
use reqwest::StatusCode;
use reqwest::header;

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

/// Reads `stream` until what it has sent holds `needle`; panics after 5 s.
async fn read_until(stream: &mut tokio::net::TcpStream, seen: &mut String, needle: &str) {
    use tokio::io::AsyncReadExt;
    let mut buf = [0_u8; 4096];
    while !seen.contains(needle) {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no {needle} in 5 s; got: {seen}"))
            .unwrap();
        assert!(n > 0, "closed before {needle}; got: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
}

/// A connection whose first request is a stream is served on threads of
/// their own; the server tells it by the request's first line. A stream
/// whose request comes in pieces, and one asked for on a connection that
/// has already served another request, are served like any other.
#[tokio::test]
async fn a_stream_is_served_however_its_request_arrives() {
    use tokio::io::AsyncWriteExt;
    let app = TestApp::spawn().await;
    let request = format!("GET /api/v1/polls/{POLL}/events HTTP/1.1\r\nHost: x\r\n\r\n");

    let mut in_pieces = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let (first, rest) = request.split_at(14);
    in_pieces.write_all(first.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    in_pieces.write_all(rest.as_bytes()).await.unwrap();
    let mut seen_in_pieces = String::new();
    read_until(&mut in_pieces, &mut seen_in_pieces, "\"total_votes\":108").await;

    let mut reused = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    reused
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut seen_reused = String::new();
    read_until(&mut reused, &mut seen_reused, "ok\n").await;
    reused.write_all(request.as_bytes()).await.unwrap();
    read_until(&mut reused, &mut seen_reused, "text/event-stream").await;
    read_until(&mut reused, &mut seen_reused, "\"total_votes\":108").await;

    assert_eq!(app.vote(&app.reader(), 1).await, StatusCode::CREATED);
    read_until(&mut in_pieces, &mut seen_in_pieces, "\"total_votes\":109").await;
    read_until(&mut reused, &mut seen_reused, "\"total_votes\":109").await;
}

#[tokio::test]
async fn a_vote_reaches_an_open_stream_within_a_second() {
    let app = TestApp::spawn().await;
    let mut events = Events::open(&app.url(&format!("/api/v1/polls/{POLL}/events"))).await;
    let first = events.next_event().await;
    assert_eq!(first.data["total_votes"], 108);
    assert!(
        events.retry.is_some(),
        "the stream tells the browser when to reconnect"
    );
    let sent = std::time::Instant::now();
    assert_eq!(app.vote(&app.reader(), 2).await, StatusCode::CREATED);
    let next = events.next_event().await;
    let took = sent.elapsed();
    assert_eq!(next.data["total_votes"], 109);
    assert!(took < Duration::from_secs(1), "the vote took {took:?}");
}

#[tokio::test]
async fn a_burst_of_votes_arrives_as_few_events_ending_on_the_final_total() {
    let app = TestApp::spawn().await;
    let mut events = Events::open(&app.url(&format!("/api/v1/polls/{POLL}/events"))).await;
    assert_eq!(events.next_event().await.data["total_votes"], 108);

    // 500 new readers vote at once, 25 at a time.
    let mut voters = tokio::task::JoinSet::new();
    for worker in 0..25_u32 {
        let url = app.url(&format!("/api/v1/polls/{POLL}/votes"));
        voters.spawn(async move {
            let client = reqwest::Client::new(); // no cookies: each vote is a new reader
            for i in 0..20 {
                let response = client
                    .post(&url)
                    .json(&serde_json::json!({ "option": (worker + i) % 4 + 1 }))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), StatusCode::CREATED);
            }
        });
    }
    voters.join_all().await;

    let mut received = Vec::new();
    loop {
        let event = events.next_event().await;
        let total = event.data["total_votes"].as_u64().unwrap();
        received.push((event.id.unwrap(), total));
        if total == 608 {
            break;
        }
    }
    assert!(
        received.len() <= 50,
        "500 votes came as {} events: {received:?}",
        received.len()
    );
    assert!(
        received
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
        "ids and totals increase: {received:?}"
    );
    assert!(
        events.next_within(Duration::from_secs(1)).await.is_none(),
        "the event with the final total is the last one"
    );
}

#[tokio::test]
async fn event_ids_increase_across_a_poll_and_a_rating() {
    let app = TestApp::spawn().await;
    let mut events = Events::open(&app.url("/api/v1/articles/csto-summit-2015/events")).await;
    let mut ids = vec![events.next_event().await, events.next_event().await];
    let reader = app.reader();
    for round in 0..3_u8 {
        assert_eq!(app.rate(&reader, round + 2).await.status(), StatusCode::OK);
        ids.push(events.next_event().await);
        assert_eq!(app.vote(&app.reader(), 1).await, StatusCode::CREATED);
        ids.push(events.next_event().await);
    }
    let names: Vec<&str> = ids.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        &names[2..],
        ["rating", "poll", "rating", "poll", "rating", "poll"]
    );
    let mut ids: Vec<u64> = ids
        .iter()
        .map(|e| e.id.expect("every event has an id"))
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase: {ids:?}");

    // Votes and ratings at the same moment (often in one batch, published
    // by two pacers at once) still reach the stream in increasing ids.
    for round in 0..10_u8 {
        let rater = app.reader();
        let (rated, voted) = tokio::join!(app.rate(&rater, round % 5 + 1), app.vote(&rater, 2));
        assert_eq!(rated.status(), StatusCode::OK);
        assert_eq!(voted, StatusCode::CREATED);
    }
    let (mut ratings, mut total) = (0, 0);
    // One rater before these, and three votes.
    while ratings < 1 + 10 || total < 108 + 3 + 10 {
        let event = events.next_event().await;
        ids.push(event.id.unwrap());
        match event.name.as_str() {
            "rating" => ratings = event.data["count"].as_u64().unwrap(),
            _ => total = event.data["total_votes"].as_u64().unwrap(),
        }
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase: {ids:?}");

    // A reader who comes back gets the current state with an id at least as high.
    let mut again = Events::open(&app.url(&format!("/api/v1/polls/{POLL}/events"))).await;
    let last = again.next_event().await.id.unwrap();
    assert!(last >= *ids.last().unwrap(), "{last} after {ids:?}");
}

#[tokio::test]
async fn a_quiet_stream_sends_heartbeats() {
    let app = TestApp::spawn_with(|c| c.heartbeat = Duration::from_millis(200)).await;
    let mut events = Events::open(&app.url(&format!("/api/v1/polls/{POLL}/events"))).await;
    let _ = events.next_event().await;
    assert!(
        events
            .next_within(Duration::from_millis(900))
            .await
            .is_none()
    );
    assert!(
        events.comments >= 2,
        "{} heartbeats in 900 ms",
        events.comments
    );
}

/// A client bound to another loopback address: another host, as the server sees it.
fn client_from(ip: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(std::net::IpAddr::from(ip))
        .build()
        .unwrap()
}

async fn assert_refused(response: reqwest::Response) {
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    let retry: u64 = response.headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    let problem: serde_json::Value = response.json().await.unwrap();
    assert_eq!(problem["status"], 503);
}

#[tokio::test]
async fn one_address_cannot_take_every_stream() {
    let app = TestApp::spawn_with(|c| c.max_streams_per_address = Some(2)).await;
    let url = app.url(&format!("/api/v1/polls/{POLL}/events"));
    let here = client_from([127, 0, 0, 1]);
    let first = Events::open_with(&here, &url).await;
    let _second = Events::open_with(&here, &url).await;
    assert_refused(here.get(&url).send().await.unwrap()).await;

    // Another host still gets its streams, and the article's stream too.
    let mut there = Events::open_with(&client_from([127, 0, 0, 2]), &url).await;
    assert_eq!(there.next_event().await.data["total_votes"], 108);

    // A closed stream gives its slot back.
    drop(first);
    let mut reopened = None;
    for _ in 0..50 {
        let response = here.get(&url).send().await.unwrap();
        if response.status() == StatusCode::OK {
            reopened = Some(Events::from_response(response));
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut reopened = reopened.expect("a closed stream frees its slot");
    assert_eq!(reopened.next_event().await.data["total_votes"], 108);
}

#[tokio::test]
async fn past_the_stream_cap_pages_and_votes_still_work() {
    let app = TestApp::spawn_with(|c| c.max_streams = Some(2)).await;
    let url = app.url(&format!("/api/v1/polls/{POLL}/events"));
    let _a = Events::open_with(&client_from([127, 0, 0, 3]), &url).await;
    let _b = Events::open_with(&client_from([127, 0, 0, 4]), &url).await;
    assert_refused(
        client_from([127, 0, 0, 5])
            .get(app.url("/api/v1/articles/csto-summit-2015/events"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(
        app.get_text(common::ARTICLE)
            .await
            .contains("Poll conducted")
    );
    assert_eq!(app.vote(&app.reader(), 4).await, StatusCode::CREATED);
    assert_eq!(app.poll_json(&app.reader()).await["total_votes"], 109);
}
