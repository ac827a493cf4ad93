//! The writer survives its faults: one bad ballot fails alone; a database it
//! cannot write (read-only, full, locked by another process) or a writer that
//! panics gives `503` problem+json with `Retry-After` and a failing
//! `/readyz`, nothing crashes, and it writes again by itself once the fault
//! clears. How each fault is made:
//! - read-only: `PRAGMA query_only` on the writer's connection, injected
//!   (tests run as root in CI, and `chmod` does not stop root);
//! - full: a real 8 MiB tmpfs holding the SQLite database, filled up, where
//!   the test may mount one (root with CAP_SYS_ADMIN); else, and on
//!   PostgreSQL (whose data the test cannot put on a tmpfs), said loudly, an
//!   injected `ENOSPC`;
//! - locked: another connection holding `begin exclusive` on the same file
//!   (on PostgreSQL: every table locked `in exclusive mode`);
//! - a panic: injected into the writer.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking
mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{ARTICLE, POLL, TestApp, TestDb, copy_dir, repo_content, tallies};
use reqwest::StatusCode;
use reqwest::header;
use tribune::ballot::InjectedFaults;

const SEED_TALLIES: [u64; 4] = [33, 30, 24, 21];

fn votes_url() -> String {
    format!("/api/v1/polls/{POLL}/votes")
}

async fn counts(app: &TestApp) -> Vec<u64> {
    tallies(&app.poll_json(&reqwest::Client::new()).await)
}

async fn readyz(app: &TestApp) -> StatusCode {
    reqwest::get(app.url("/readyz")).await.unwrap().status()
}

/// Waits (at most `within`) until `/readyz` answers `want`.
async fn wait_until_ready_is(app: &TestApp, want: StatusCode, within: Duration) {
    let start = Instant::now();
    loop {
        let got = readyz(app).await;
        if got == want {
            return;
        }
        assert!(
            start.elapsed() < within,
            "/readyz still {got} after {within:?}, expected {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Asserts a refused write: 503 problem+json with Retry-After, no insides shown.
async fn assert_unavailable(response: reqwest::Response) {
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    assert!(response.headers().contains_key(header::RETRY_AFTER));
    let problem: serde_json::Value = response.json().await.unwrap();
    assert_eq!(problem["status"], 503);
    assert_eq!(problem["detail"], "Something went wrong on our side.");
}

async fn vote(app: &TestApp, option: u32) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url(&votes_url()))
        .json(&serde_json::json!({ "option": option }))
        .send()
        .await
        .unwrap()
}

async fn rate(app: &TestApp, stars: u8) -> reqwest::Response {
    app.rate(&reqwest::Client::new(), stars).await
}

/// During a fault: votes and ratings get 503 (at once, once the writer knows),
/// `/readyz` fails, and pages are still served.
async fn assert_refused_while_faulty(app: &TestApp) {
    assert_unavailable(vote(app, 1).await).await;
    wait_until_ready_is(
        app,
        StatusCode::SERVICE_UNAVAILABLE,
        Duration::from_secs(10),
    )
    .await;
    let start = Instant::now();
    assert_unavailable(vote(app, 2).await).await;
    assert_unavailable(rate(app, 3).await).await;
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "refused without a long wait, took {:?}",
        start.elapsed()
    );
    let form = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(app.url(&format!("/polls/{POLL}/vote")))
        .form(&[("option", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        form.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(readyz(app).await, StatusCode::SERVICE_UNAVAILABLE);
    assert!(app.get_text(ARTICLE).await.contains("Poll conducted"));
    assert_eq!(
        reqwest::get(app.url("/healthz")).await.unwrap().status(),
        StatusCode::OK
    );
}

/// After the fault clears: ready again by itself, and votes count.
async fn assert_recovers(app: &TestApp, before: &[u64]) {
    wait_until_ready_is(app, StatusCode::OK, Duration::from_secs(15)).await;
    assert_eq!(counts(app).await, before, "nothing refused was counted");
    assert_eq!(vote(app, 4).await.status(), StatusCode::CREATED);
    assert_eq!(rate(app, 5).await.status(), StatusCode::OK);
    let mut expected = before.to_vec();
    expected[3] += 1;
    assert_eq!(counts(app).await, expected);
}

#[tokio::test]
async fn a_read_only_database_gets_503_and_the_writer_recovers() {
    let faults = Arc::new(InjectedFaults::default());
    let injected = faults.clone();
    let app = TestApp::spawn_with(move |c| c.writer_faults = Some(injected)).await;
    assert_eq!(vote(&app, 1).await.status(), StatusCode::CREATED);
    assert_eq!(readyz(&app).await, StatusCode::OK);

    faults.set_read_only(true);
    assert_refused_while_faulty(&app).await;
    // Still faulty after a while: the writer keeps trying and keeps refusing.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(readyz(&app).await, StatusCode::SERVICE_UNAVAILABLE);

    faults.set_read_only(false);
    assert_recovers(&app, &[34, 30, 24, 21]).await;
}

#[tokio::test]
async fn a_writer_that_panics_is_started_again() {
    let faults = Arc::new(InjectedFaults::default());
    let injected = faults.clone();
    let app = TestApp::spawn_with(move |c| c.writer_faults = Some(injected)).await;
    faults.panic_once();
    assert_unavailable(vote(&app, 1).await).await;
    assert_recovers(&app, &SEED_TALLIES).await;
}

#[tokio::test]
async fn a_database_locked_by_another_process_gets_503_and_the_writer_recovers() {
    let app = TestApp::spawn_with(|c| c.write_lock_wait = Duration::from_millis(300)).await;
    let mut other = TestDb::connect(&app.database_url).await;
    other.lock_writes().await;
    assert_refused_while_faulty(&app).await;
    other.commit().await;
    assert_recovers(&app, &SEED_TALLIES).await;
}

/// A tmpfs mounted by the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Self> {
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        mounted.then(|| Self(at.to_owned()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes to `path` until the file system has no room left.
fn fill(path: &Path) {
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0x5a_u8; 64 * 1024];
    for _ in 0..100_000 {
        if let Err(error) = file.write_all(&chunk).and_then(|()| file.sync_all()) {
            assert_eq!(error.raw_os_error(), Some(28), "ENOSPC, got {error}");
            return;
        }
    }
    panic!("the file system never filled up");
}

#[tokio::test]
async fn a_full_file_system_gets_503_and_the_writer_recovers() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo_content(), &dir.path().join("content"));
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let faults = Arc::new(InjectedFaults::default());
    let tmpfs = if common::on_postgres() {
        eprintln!(
            "\n========================================================================\n\
             FAULT TEST: PostgreSQL keeps its data in its own cluster, not on a tmpfs\n\
             this test can fill. The full file system is SIMULATED with an injected\n\
             ENOSPC instead; the real one is filled in the SQLite pass.\n\
             ========================================================================\n"
        );
        None
    } else {
        let tmpfs = Tmpfs::mount(&data, "8m");
        if tmpfs.is_none() {
            eprintln!(
                "\n========================================================================\n\
                 FAULT TEST: cannot mount a tmpfs here (it needs root with CAP_SYS_ADMIN).\n\
                 The full file system is SIMULATED with an injected ENOSPC instead.\n\
                 ========================================================================\n"
            );
        }
        tmpfs
    };
    let url = common::fresh_database_url(dir.path(), "data/tribune.db").await;
    let injected = faults.clone();
    let app = TestApp::start(dir, url, move |c| c.writer_faults = Some(injected)).await;
    assert_eq!(vote(&app, 1).await.status(), StatusCode::CREATED);

    let filler = data.join("filler");
    if tmpfs.is_some() {
        // Empty the write-ahead log first, so that the next commit needs new room.
        let mut db = TestDb::connect(&app.database_url).await;
        db.execute("pragma wal_checkpoint(truncate)", &[]).await;
        db.close().await;
        fill(&filler);
    } else {
        faults.set_disk_full(true);
    }
    assert_refused_while_faulty(&app).await;

    if tmpfs.is_some() {
        std::fs::remove_file(&filler).unwrap();
    } else {
        faults.set_disk_full(false);
    }
    assert_recovers(&app, &[34, 30, 24, 21]).await;
    app.stop().await;
    drop(tmpfs);
}

#[tokio::test]
async fn one_failing_ballot_fails_alone_and_its_batch_is_committed() {
    let app = TestApp::spawn_with(|c| c.write_lock_wait = Duration::from_secs(20)).await;
    let mut other = TestDb::connect(&app.database_url).await;
    // Votes for option 4 fail in SQL, as a constraint would fail them.
    other
        .refuse_inserts(
            "votes",
            "no_four",
            "new.option_id = 4",
            "option four is broken",
        )
        .await;
    // Hold the writer at its first ballot so that the rest queue up into one batch.
    other.lock_writes().await;
    let first = tokio::spawn({
        let url = app.url(&votes_url());
        async move {
            reqwest::Client::new()
                .post(url)
                .json(&serde_json::json!({"option": 1}))
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut votes = Vec::new();
    for option in [1_u32, 2, 3, 4, 1, 2, 3, 4, 1, 2] {
        let url = app.url(&votes_url());
        votes.push((
            option,
            tokio::spawn(async move {
                reqwest::Client::new()
                    .post(url)
                    .json(&serde_json::json!({ "option": option }))
                    .send()
                    .await
                    .unwrap()
            }),
        ));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    other.commit().await;

    assert_eq!(first.await.unwrap(), StatusCode::CREATED);
    for (option, vote) in votes {
        let response = vote.await.unwrap();
        if option == 4 {
            assert_unavailable(response).await;
        } else {
            assert_eq!(response.status(), StatusCode::CREATED, "option {option}");
        }
    }
    assert_eq!(counts(&app).await, [33 + 4, 30 + 3, 24 + 2, 21]);
    assert_eq!(
        readyz(&app).await,
        StatusCode::OK,
        "a ballot's fault is not the writer's"
    );
}

#[tokio::test]
async fn a_vote_whose_client_gave_up_before_it_was_written_is_not_counted() {
    let app = TestApp::spawn_with(|c| c.write_lock_wait = Duration::from_secs(20)).await;
    let mut other = TestDb::connect(&app.database_url).await;
    other.lock_writes().await;
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let gave_up = impatient
        .post(app.url(&votes_url()))
        .json(&serde_json::json!({"option": 1}))
        .send()
        .await;
    assert!(
        gave_up.is_err(),
        "the client gives up while the database is locked"
    );
    // A patient reader's vote waits for the lock and is counted.
    let patient = tokio::spawn({
        let url = app.url(&votes_url());
        async move {
            reqwest::Client::new()
                .post(url)
                .json(&serde_json::json!({"option": 2}))
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    other.commit().await;
    assert_eq!(patient.await.unwrap(), StatusCode::CREATED);
    assert_eq!(counts(&app).await, [33, 31, 24, 21]);
}
