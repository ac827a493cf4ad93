//! Idempotent writes: a vote or rating retried with the same `Idempotency-Key`
//! gets the first answer again (status, body and reader cookie) and counts
//! once; the key reused for another request is refused; keys are their
//! owners'; kept answers are erased after their window.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking
mod common;

use std::time::{Duration, Instant};

use common::{POLL, RATING, TestApp, TestDb, tallies};
use reqwest::StatusCode;
use reqwest::header;

const KEY: &str = "idempotency-key";

fn votes_url() -> String {
    format!("/api/v1/polls/{POLL}/votes")
}

async fn counts(app: &TestApp) -> Vec<u64> {
    tallies(&app.poll_json(&reqwest::Client::new()).await)
}

async fn kept_answers(app: &TestApp) -> i64 {
    let mut db = TestDb::connect(&app.database_url).await;
    let kept = db.count("select count(*) from idempotency_keys", &[]).await;
    db.close().await;
    kept
}

/// What a client got: status, body, the reader cookie set, whether it was a replay.
#[derive(Debug, PartialEq)]
struct Got {
    status: StatusCode,
    body: String,
    cookie: Option<String>,
    replayed: bool,
}

async fn got(response: reqwest::Response) -> Got {
    let cookie = response
        .headers()
        .get(header::SET_COOKIE)
        .map(|c| c.to_str().unwrap().split(';').next().unwrap().to_owned());
    let replayed = response.headers().contains_key("idempotent-replayed");
    Got {
        status: response.status(),
        cookie,
        replayed,
        body: response.text().await.unwrap(),
    }
}

/// A vote from a client without cookies (each request is cookie-less).
async fn vote(app: &TestApp, option: u32, key: &str) -> Got {
    got(reqwest::Client::new()
        .post(app.url(&votes_url()))
        .header(KEY, key)
        .json(&serde_json::json!({ "option": option }))
        .send()
        .await
        .unwrap())
    .await
}

#[tokio::test]
async fn a_retried_vote_gets_the_first_answer_and_its_cookie_and_counts_once() {
    let app = TestApp::spawn().await;
    let first = vote(&app, 2, "c0a8f1e6-7d2b-4b7e-9a61-0f3c2d1e5b47").await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert!(!first.replayed);
    let cookie = first.cookie.clone().expect("a new reader gets a cookie");
    let body: serde_json::Value = serde_json::from_str(&first.body).unwrap();
    assert_eq!(body["your_vote"], 2);
    assert_eq!(tallies(&body), [33, 31, 24, 21]);

    // Another reader votes; then the first answer was lost, and the client retries.
    assert_eq!(
        app.vote(&reqwest::Client::new(), 2).await,
        StatusCode::CREATED
    );
    let retry = vote(&app, 2, "c0a8f1e6-7d2b-4b7e-9a61-0f3c2d1e5b47").await;
    assert!(retry.replayed);
    assert_eq!(
        (retry.status, &retry.body, &retry.cookie),
        (first.status, &first.body, &first.cookie),
        "the same answer, byte for byte, and the same reader"
    );
    assert_eq!(counts(&app).await, [33, 32, 24, 21], "counted once");

    // The cookie it gives back is the reader who voted.
    let reader: serde_json::Value = reqwest::Client::new()
        .get(app.url(&format!("/api/v1/polls/{POLL}")))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reader["your_vote"], 2);

    // The client, now with its cookie, retries once more: the same answer.
    let with_cookie = got(reqwest::Client::new()
        .post(app.url(&votes_url()))
        .header(KEY, "c0a8f1e6-7d2b-4b7e-9a61-0f3c2d1e5b47")
        .header(header::COOKIE, &cookie)
        .json(&serde_json::json!({"option": 2}))
        .send()
        .await
        .unwrap())
    .await;
    assert_eq!(
        (with_cookie.status, &with_cookie.body),
        (first.status, &first.body)
    );
    assert!(with_cookie.replayed);
    assert_eq!(counts(&app).await, [33, 32, 24, 21]);
}

#[tokio::test]
async fn a_retried_rating_gets_the_first_answer_and_counts_once() {
    let app = TestApp::spawn().await;
    let rate = |stars: u8, key: &'static str| {
        let url = app.url(RATING);
        async move {
            got(reqwest::Client::new()
                .put(url)
                .header(KEY, key)
                .json(&serde_json::json!({ "stars": stars }))
                .send()
                .await
                .unwrap())
            .await
        }
    };
    let first = rate(4, "rating-1").await;
    assert_eq!(first.status, StatusCode::OK);
    assert!(first.cookie.is_some());
    let retry = rate(4, "rating-1").await;
    assert!(retry.replayed);
    assert_eq!(
        (retry.status, &retry.body, &retry.cookie),
        (first.status, &first.body, &first.cookie)
    );
    let rating = app.rating_json(&reqwest::Client::new()).await;
    assert_eq!(rating["count"], 1, "one reader, not two");
    assert_eq!(rating["average"], 4.0);
}

#[tokio::test]
async fn twenty_concurrent_retries_count_once_and_all_get_the_same_answer() {
    let app = TestApp::spawn().await;
    let mut tries = Vec::new();
    for _ in 0..20 {
        let url = app.url(&votes_url());
        tries.push(tokio::spawn(async move {
            got(reqwest::Client::new()
                .post(url)
                .header(KEY, "one-ballot-many-tries")
                .json(&serde_json::json!({"option": 3}))
                .send()
                .await
                .unwrap())
            .await
        }));
    }
    let mut answers = Vec::new();
    for attempt in tries {
        answers.push(attempt.await.unwrap());
    }
    assert_eq!(answers.iter().filter(|a| !a.replayed).count(), 1);
    let first = answers.iter().find(|a| !a.replayed).unwrap();
    assert_eq!(first.status, StatusCode::CREATED);
    for answer in &answers {
        assert_eq!(
            (answer.status, &answer.body, &answer.cookie),
            (first.status, &first.body, &first.cookie)
        );
    }
    assert_eq!(counts(&app).await, [33, 30, 25, 21]);
    assert_eq!(kept_answers(&app).await, 1);
}

#[tokio::test]
async fn a_key_reused_for_another_request_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let reader = app.reader();
    let send = |option: u32| {
        reader
            .post(app.url(&votes_url()))
            .header(KEY, "key-1")
            .json(&serde_json::json!({ "option": option }))
            .send()
    };
    assert_eq!(send(1).await.unwrap().status(), StatusCode::CREATED);
    let reused = send(2).await.unwrap();
    assert_eq!(reused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        reused.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    let problem: serde_json::Value = reused.json().await.unwrap();
    assert_eq!(problem["code"], "idempotency-key-reused");
    // The same key on the rating is another request too.
    let on_rating = reader
        .put(app.url(RATING))
        .header(KEY, "key-1")
        .json(&serde_json::json!({"stars": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(on_rating.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(counts(&app).await, [34, 30, 24, 21]);
    assert_eq!(app.rating_json(&reader).await["count"], 0);

    // A key that is no key is a 400.
    for bad in ["", "two words", &"k".repeat(300)] {
        let response = reader
            .post(app.url(&votes_url()))
            .header(KEY, bad)
            .json(&serde_json::json!({"option": 2}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad:?}");
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
    }
    assert_eq!(counts(&app).await, [34, 30, 24, 21]);
}

#[tokio::test]
async fn a_key_is_its_owners_and_finds_nobody_elses_answer() {
    let app = TestApp::spawn().await;
    // A reader without a cookie votes with a key; it is kept under their address.
    let first = vote(&app, 1, "shared-key").await;
    assert_eq!(first.status, StatusCode::CREATED);
    // Another reader, with a cookie of their own, sends the same key from the
    // same address: their own vote, not the first reader's answer and cookie.
    let other = app.reader();
    assert_eq!(app.rate(&other, 3).await.status(), StatusCode::OK);
    let theirs = got(other
        .post(app.url(&votes_url()))
        .header(KEY, "shared-key")
        .json(&serde_json::json!({"option": 1}))
        .send()
        .await
        .unwrap())
    .await;
    assert_eq!(theirs.status, StatusCode::CREATED);
    assert!(!theirs.replayed);
    assert_eq!(theirs.cookie, None, "they keep their own cookie");
    assert_eq!(counts(&app).await, [35, 30, 24, 21]);
}

#[tokio::test]
async fn kept_answers_are_erased_after_their_window() {
    let app = TestApp::spawn_with(|c| {
        c.idempotency_window = Duration::from_millis(500);
        c.upkeep_every = Duration::from_millis(100);
    })
    .await;
    assert_eq!(
        vote(&app, 1, "short-lived").await.status,
        StatusCode::CREATED
    );
    assert_eq!(kept_answers(&app).await, 1);
    let start = Instant::now();
    while kept_answers(&app).await > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the kept answer is erased"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn kept_answers_older_than_a_day_are_erased_at_start() {
    let app = TestApp::spawn().await;
    assert_eq!(vote(&app, 1, "fresh").await.status, StatusCode::CREATED);
    let (dir, url) = app.stop().await;
    let mut db = TestDb::connect(&url).await;
    let day_and_a_minute_ago = tribune::store::now_millis() - (24 * 60 + 1) * 60 * 1000;
    db.execute(
        "update idempotency_keys set created_at = ?",
        &[day_and_a_minute_ago.into()],
    )
    .await;
    db.close().await;
    let app = TestApp::start(dir, url, |_| {}).await;
    let start = Instant::now();
    while kept_answers(&app).await > 0 {
        assert!(start.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
