//! Several Tribune instances on one PostgreSQL database: every vote counted
//! once whichever instance takes it, every instance's streams live with the
//! votes of all, and no acknowledged vote lost when one instance is killed.
//! PostgreSQL only: SQLite is one process's database.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking
mod common;

use std::process::Child;
use std::time::{Duration, Instant};

use common::sse::Events;
use common::{POLL, Voters, assert_every_acknowledged_vote_counted, tallies};
use reqwest::StatusCode;

/// A running instance: its process and its base URL.
struct Instance {
    process: Child,
    base: String,
}

impl Instance {
    fn start(database_url: &str) -> Self {
        Self::start_with(database_url, &[])
    }

    fn start_with(database_url: &str, args: &[&str]) -> Self {
        let content = common::repo_content();
        let (process, base) = common::spawn_binary(database_url, &content, args);
        Self { process, base }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn poll(&self) -> serde_json::Value {
        reqwest::get(self.url(&format!("/api/v1/polls/{POLL}")))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn vote(&self, reader: &reqwest::Client, option: u32) -> StatusCode {
        common::vote_at(&self.base, reader, option).await
    }

    fn kill(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A reader's browser: it keeps the cookie the first instance gives it, and
/// sends it to every instance (they share one host).
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap()
}

/// Reads events until one shows `total` votes; how long that took, or `None`
/// after `wait`.
async fn until_total(events: &mut Events, total: u64, wait: Duration) -> Option<Duration> {
    let started = Instant::now();
    while let Some(left) = wait.checked_sub(started.elapsed()) {
        let event = events.next_within(left).await?;
        if event.name == "poll" && event.data["total_votes"] == total {
            return Some(started.elapsed());
        }
    }
    None
}

#[tokio::test]
async fn two_instances_count_each_reader_once_and_stream_each_others_votes() {
    if common::db::postgres_only("two instances on one PostgreSQL database") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let url = common::fresh_database_url(dir.path(), "t.db").await;
    let a = Instance::start(&url);
    let b = Instance::start(&url);
    let mut on_b = Events::open(&b.url(&format!("/api/v1/polls/{POLL}/events"))).await;
    let first = on_b.next_event().await;
    assert_eq!(first.data["total_votes"], 108, "the seed tallies");

    // 40 readers, half voting on A and half on B, all at once.
    let readers: Vec<reqwest::Client> = (0..40).map(|_| browser()).collect();
    let votes = readers.iter().enumerate().map(|(i, reader)| {
        let (here, option) = if i % 2 == 0 { (&a, 1) } else { (&b, 2) };
        let option = option + 2 * u32::from(i % 4 >= 2);
        async move { (option, here.vote(reader, option).await) }
    });
    let cast = futures_util::future::join_all(votes).await;
    let mut expected = [33_u64, 30, 24, 21];
    for (option, status) in &cast {
        assert_eq!(*status, StatusCode::CREATED, "option {option}");
        expected[*option as usize - 1] += 1;
    }

    // Each reader tries again on the other instance: refused, their cookie
    // known there (the secret is shared), their vote found (the database
    // decides, not an instance's memory).
    let again = readers.iter().enumerate().map(|(i, reader)| {
        let elsewhere = if i % 2 == 0 { &b } else { &a };
        elsewhere.vote(reader, 4)
    });
    for status in futures_util::future::join_all(again).await {
        assert_eq!(status, StatusCode::CONFLICT);
    }

    // Both instances serve the exact counts: their own votes and the other's.
    let expected = expected.to_vec();
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let (on_a, on_b_now) = (tallies(&a.poll().await), tallies(&b.poll().await));
        if on_a == expected && on_b_now == expected {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "A has {on_a:?}, B has {on_b_now:?}, the votes cast make {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        until_total(&mut on_b, 148, Duration::from_secs(1))
            .await
            .is_some(),
        "B's stream reaches the total of the votes cast on both"
    );

    // A lone vote on A reaches the stream open on B within a second.
    let sent = Instant::now();
    assert_eq!(a.vote(&browser(), 3).await, StatusCode::CREATED);
    let arrived = until_total(&mut on_b, 149, Duration::from_secs(1)).await;
    assert!(
        arrived.is_some(),
        "a vote on A reached B's stream within a second ({:?} since it was sent)",
        sent.elapsed()
    );
}

#[tokio::test]
async fn killing_one_instance_under_load_loses_no_acknowledged_vote() {
    if common::db::postgres_only("two instances on one PostgreSQL database") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let url = common::fresh_database_url(dir.path(), "t.db").await;
    let mut a = Instance::start(&url);
    let b = Instance::start(&url);

    let on_a = Voters::start(&a.base, 12);
    let on_b = Voters::start(&b.base, 12);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    a.kill();
    let (acknowledged_a, refused_a) = on_a.finish().await;
    // B keeps taking votes after A is gone.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (acknowledged_b, refused_b) = on_b.finish().await;
    assert!(
        refused_a.is_empty() && refused_b.is_empty(),
        "answers other than 201: {refused_a:?} {refused_b:?}"
    );
    let acked_a: u64 = acknowledged_a.iter().sum();
    assert!(
        acked_a > 50,
        "votes were flowing on A when it was killed ({acked_a})"
    );

    let mut acknowledged = acknowledged_a;
    for (total, n) in acknowledged.iter_mut().zip(acknowledged_b) {
        *total += n;
    }
    // Read from the database through a fresh instance, not B's memory.
    let c = Instance::start(&url);
    // Only votes in flight on A at the kill (one per voter) may be counted without an answer.
    assert_every_acknowledged_vote_counted(&c.poll().await, acknowledged, 12);
    assert_eq!(
        tallies(&b.poll().await),
        tallies(&c.poll().await),
        "B's live state is the database's"
    );
}

#[tokio::test]
async fn an_instance_whose_listener_drops_reads_every_tally_again() {
    if common::db::postgres_only("the PostgreSQL listener") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let url = common::fresh_database_url(dir.path(), "t.db").await;
    let a = Instance::start(&url);
    assert_eq!(tallies(&a.poll().await), [33, 30, 24, 21]);
    let mut on_a = Events::open(&a.url(&format!("/api/v1/polls/{POLL}/events"))).await;
    on_a.next_event().await;

    // Votes that reached the database without a notification, as those
    // sent while a listener is cut off are lost to it.
    let mut db = common::TestDb::connect(&url).await;
    db.execute(
        "update poll_options set cast_votes = cast_votes + 5 \
         where poll_id = 'us-long-term-goals' and option_id = 2",
        &[],
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        tallies(&a.poll().await),
        [33, 30, 24, 21],
        "nothing told the instance"
    );

    // Cut the listener's connection off.
    let cut = db
        .count(
            "select count(pg_terminate_backend(pid)) from pg_stat_activity \
             where datname = current_database() and query ilike 'listen%'",
            &[],
        )
        .await;
    assert_eq!(cut, 1, "one instance, one listener");
    db.close().await;

    assert!(
        until_total(&mut on_a, 113, Duration::from_secs(5))
            .await
            .is_some(),
        "once it listens again, the instance reads the tallies and streams them"
    );
    assert_eq!(tallies(&a.poll().await), [33, 35, 24, 21]);
}

#[tokio::test]
async fn the_per_address_cap_holds_across_instances() {
    if common::db::postgres_only("two instances on one PostgreSQL database") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let url = common::fresh_database_url(dir.path(), "t.db").await;
    let cap = ["--max-votes-per-address", "3"];
    let a = Instance::start_with(&url, &cap);
    let b = Instance::start_with(&url, &cap);
    // Twelve cookie-less votes from one address, all at once, over both
    // instances: each instance alone would take three.
    let votes = (0..12).map(|i| {
        let here = if i % 2 == 0 { &a } else { &b };
        async move { here.vote(&reqwest::Client::new(), 1).await }
    });
    let mut statuses = futures_util::future::join_all(votes).await;
    statuses.sort();
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let capped = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((created, capped), (3, 9), "{statuses:?}");
    assert_eq!(tallies(&a.poll().await)[0], 36);
}
