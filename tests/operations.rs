//! What operators read: Prometheus metrics and log lines.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking
mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::sse::Events;
use common::{POLL, TestApp, repo_content};
use reqwest::StatusCode;

/// The value of the first metric line that starts with `name{` and holds every label given.
fn metric(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| {
            line.starts_with(&format!("{name}{{")) || line.starts_with(&format!("{name} "))
        })
        .find(|line| labels.iter().all(|label| line.contains(label)))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

#[tokio::test]
async fn metrics_count_requests_streams_and_ballots() {
    let app = TestApp::spawn().await;
    let reader = app.reader();
    assert_eq!(app.vote(&reader, 1).await, StatusCode::CREATED);
    assert_eq!(app.vote(&reader, 2).await, StatusCode::CONFLICT);
    let _page = app.get_text(common::ARTICLE).await;
    let mut events = Events::open(&app.url(&format!("/api/v1/polls/{POLL}/events"))).await;
    events.next_event().await;

    let response = reqwest::get(app.url("/metrics")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    let votes = metric(
        &text,
        "http_requests_total",
        &[r#"route="/api/v1/polls/{poll}/votes""#, r#"status="201""#],
    );
    assert!(votes.is_some_and(|n| n >= 1.0), "{text}");
    assert!(
        metric(
            &text,
            "http_requests_total",
            &[r#"route="/api/v1/polls/{poll}/votes""#, r#"status="409""#]
        )
        .is_some_and(|n| n >= 1.0)
    );
    assert!(
        metric(
            &text,
            "http_requests_total",
            &[r#"route="/articles/{slug}""#, r#"status="200""#]
        )
        .is_some_and(|n| n >= 1.0),
        "the cached page counts too"
    );
    assert!(
        text.contains("http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(
        metric(&text, "tribune_open_streams", &[]).is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert!(
        !text.contains("/api/v1/polls/us-long-term-goals/votes"),
        "routes are labelled by their pattern, not the raw path"
    );
}

#[tokio::test]
async fn json_logs_carry_a_request_id_and_no_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = common::fresh_database_url(dir.path(), "t.db").await;
    let secret = "a-test-secret-that-must-never-be-logged";
    let mut child = Command::new(env!("CARGO_BIN_EXE_tribune"))
        .args([
            "--log-format",
            "json",
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--content",
        ])
        .arg(repo_content())
        .args(["--secret", secret])
        .env("DATABASE_URL", &database_url)
        .env("RUST_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let base = loop {
        let line = lines_rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .unwrap();
        let entry: serde_json::Value = serde_json::from_str(&line).expect("every line is JSON");
        if let Some(message) = entry["fields"]["message"].as_str()
            && let Some(at) = message.find(" on http://")
        {
            break message[at + 4..].trim().to_owned();
        }
    };

    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let voted = client
        .post(format!("{base}/api/v1/polls/{POLL}/votes"))
        .header("x-request-id", "req-test-1")
        .json(&serde_json::json!({ "option": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(voted.status(), StatusCode::CREATED);
    assert_eq!(voted.headers()["x-request-id"], "req-test-1");
    let cookie = voted
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned();
    let page = client
        .get(format!("{base}/articles/csto-summit-2015"))
        .send()
        .await
        .unwrap();
    assert!(
        page.headers().contains_key("x-request-id"),
        "a fresh id when none is sent"
    );
    let _ = client
        .get(format!("{base}/api/v1/polls/nope?who=me"))
        .send()
        .await
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();

    let lines: Vec<String> = lines_rx.try_iter().collect();
    let mut in_requests = 0;
    for line in &lines {
        let entry: serde_json::Value = serde_json::from_str(line).expect("every line is JSON");
        assert!(!line.contains(secret), "the secret was logged: {line}");
        assert!(
            !line.contains(&cookie),
            "a reader's cookie was logged: {line}"
        );
        assert!(
            !line.contains("who=me"),
            "a query string was logged: {line}"
        );
        if entry.get("span").is_some() {
            in_requests += 1;
            assert!(
                entry["span"]["request_id"]
                    .as_str()
                    .is_some_and(|id| !id.is_empty() && id != "-"),
                "a line logged while serving a request names it: {line}"
            );
        }
    }
    assert!(
        lines.iter().any(|l| l.contains("req-test-1")),
        "the request's lines carry its id"
    );
    assert!(
        in_requests > 0,
        "some lines were logged while serving requests"
    );
}
