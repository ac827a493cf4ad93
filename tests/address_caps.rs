//! Per-address limits: the cap covers rating changes as well as votes, and
//! the address hashes it counts are erased once its window has passed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking
mod common;

use std::time::{Duration, Instant};

use common::{POLL, TestApp, TestDb};
use reqwest::StatusCode;
use reqwest::header;

/// Address hashes the database holds, wherever they are.
async fn address_hashes(app: &TestApp) -> (i64, i64) {
    let mut db = TestDb::connect(&app.database_url).await;
    let uses = db.count("select count(*) from address_uses", &[]).await;
    // Only SQLite's votes still have the column, from before address uses
    // had a table of their own; PostgreSQL's votes never had it.
    let on_votes = if db.is_postgres() {
        0
    } else {
        db.count(
            "select count(*) from votes where address_hash is not null",
            &[],
        )
        .await
    };
    db.close().await;
    (uses, on_votes)
}

#[tokio::test]
async fn one_address_may_change_an_articles_rating_only_so_often_an_hour() {
    let app = TestApp::spawn_with(|c| c.max_votes_per_address = Some(3)).await;
    for stars in [1, 1, 2] {
        // Cookie-less, as a script would send them: each one a new reader.
        let response = app.rate(&reqwest::Client::new(), stars).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    let over = app.rate(&reqwest::Client::new(), 1).await;
    assert_eq!(over.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        over.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    let retry: u64 = over.headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (3500..=3601).contains(&retry),
        "retry after about an hour, got {retry}"
    );
    let problem: serde_json::Value = over.json().await.unwrap();
    assert_eq!(problem["code"], "too-many-ratings");

    // A reader who rated changes their mind: a change counts too.
    let form = app
        .reader()
        .post(app.url("/articles/csto-summit-2015/rating"))
        .form(&[("stars", "5")])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(form.headers().contains_key(header::RETRY_AFTER));
    assert!(
        form.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        form.text()
            .await
            .unwrap()
            .contains("/articles/csto-summit-2015#rating")
    );

    let rating = app.rating_json(&reqwest::Client::new()).await;
    assert_eq!(rating["count"], 3);
    assert_eq!(rating["distribution"]["1"], 2);

    // Votes have a share of their own.
    assert_eq!(
        app.vote(&reqwest::Client::new(), 1).await,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn address_hashes_are_erased_once_the_window_has_passed() {
    let app = TestApp::spawn_with(|c| {
        c.max_votes_per_address = Some(2);
        c.address_window = Duration::from_millis(800);
        c.upkeep_every = Duration::from_millis(100);
    })
    .await;
    assert_eq!(app.vote(&app.reader(), 1).await, StatusCode::CREATED);
    assert_eq!(app.rate(&app.reader(), 4).await.status(), StatusCode::OK);
    assert_eq!(app.vote(&app.reader(), 1).await, StatusCode::CREATED);
    assert_eq!(
        app.vote(&app.reader(), 1).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        address_hashes(&app).await,
        (3, 0),
        "no vote keeps its address"
    );

    let start = Instant::now();
    while address_hashes(&app).await != (0, 0) {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "address hashes outlived the window"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The window has passed: the address may vote again.
    assert_eq!(app.vote(&app.reader(), 2).await, StatusCode::CREATED);
}

#[tokio::test]
async fn address_hashes_older_than_an_hour_are_erased_at_start() {
    let app = TestApp::spawn_with(|c| c.max_votes_per_address = Some(5)).await;
    assert_eq!(app.vote(&app.reader(), 1).await, StatusCode::CREATED);
    let (dir, url) = app.stop().await;
    let mut db = TestDb::connect(&url).await;
    let hour_and_a_minute_ago = tribune::store::now_millis() - 61 * 60 * 1000;
    db.execute(
        "insert into address_uses (scope, address_hash, used_at) values (?, ?, ?)",
        &[
            format!("poll:{POLL}").into(),
            (&[0_u8][..]).into(),
            hour_and_a_minute_ago.into(),
        ],
    )
    .await;
    db.close().await;
    let app = TestApp::start(dir, url, |c| c.max_votes_per_address = Some(5)).await;
    let start = Instant::now();
    while address_hashes(&app).await != (1, 0) {
        assert!(start.elapsed() < Duration::from_secs(5), "erased at start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The vote of this hour still counts against the address.
    let mut db = TestDb::connect(&app.database_url).await;
    let recent = db
        .count(
            "select count(*) from address_uses where used_at > ?",
            &[hour_and_a_minute_ago.into()],
        )
        .await;
    assert_eq!(recent, 1);
}
