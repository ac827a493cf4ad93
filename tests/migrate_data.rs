//! `tribune migrate-data`: a stopped SQLite site moved into PostgreSQL is the
//! same site there (tallies, ratings, readers, address caps, kept answers);
//! a target that is not empty, a source that is missing, not Tribune's or
//! not at this version's schema, and URLs of the wrong engine are refused,
//! and nothing is written.
//!
//! The tests that need PostgreSQL read an admin URL from
//! `TRIBUNE_TEST_POSTGRES` and make a database of their own; without it they
//! say so loudly and pass.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking
mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use common::{POLL, RUSSIAN_FIXTURE, TestApp, tallies};
use reqwest::StatusCode;
use sqlx::{Connection, PgConnection};
use tribune::store::migrate::TABLES;

const TRIBUNE: &str = env!("CARGO_BIN_EXE_tribune");

/// Runs `tribune migrate-data --from FROM --to TO` with an empty environment.
fn migrate_data(from: &str, to: &str) -> Output {
    Command::new(TRIBUNE)
        .args(["migrate-data", "--from", from, "--to", to])
        .env_clear()
        .output()
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn file_bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

/// A database of its own on the PostgreSQL server of `TRIBUNE_TEST_POSTGRES`.
struct TestPostgres {
    admin: String,
    name: String,
    url: String,
}

impl TestPostgres {
    /// A fresh, empty database; `None`, said loudly, when no server is configured.
    async fn create(test: &str) -> Option<Self> {
        if common::db::postgres_only(test) {
            return None;
        }
        let admin = common::db::postgres_admin_url()?;
        let name = format!("tribune_t_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(&admin).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("create database {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        let url = common::db::with_database(&admin, &name);
        Some(Self { admin, name, url })
    }

    async fn connect(&self) -> PgConnection {
        PgConnection::connect(&self.url).await.unwrap()
    }

    /// Rows per table of Tribune's, and the poll's tallies: what a refused
    /// run must leave as it was.
    async fn contents(&self) -> (Vec<i64>, Vec<(i64, i64, i64)>) {
        let mut conn = self.connect().await;
        let mut rows = Vec::new();
        for table in TABLES {
            rows.push(
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!("select count(*) from {table}")))
                    .fetch_one(&mut conn)
                    .await
                    .unwrap(),
            );
        }
        let options = sqlx::query_as(
            "select option_id, seed_votes, cast_votes from poll_options order by option_id",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();
        (rows, options)
    }

    /// The tables in the database's public schema.
    async fn tables(&self) -> BTreeSet<String> {
        let mut conn = self.connect().await;
        let tables: Vec<String> = sqlx::query_scalar(
            "select table_name::text from information_schema.tables where table_schema = 'public'",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();
        tables.into_iter().collect()
    }
}

impl Drop for TestPostgres {
    /// Drops the database, whether the test passed or panicked.
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // On a thread and a runtime of its own: the test's runtime cannot
        // be blocked on from within.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let mut conn = PgConnection::connect(&admin).await.unwrap();
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "drop database if exists {name} with (force)"
                )))
                .execute(&mut conn)
                .await
                .unwrap();
            });
        })
        .join();
        if dropped.is_err() {
            eprintln!("could not drop the test database {}", self.name);
        }
    }
}

/// The password in a URL, if it has one.
fn password(url: &str) -> Option<&str> {
    let authority = url.split_once("://")?.1.split('/').next()?;
    let user_info = authority.rsplit_once('@')?.0;
    user_info.split_once(':').map(|(_, password)| password)
}

async fn vote_with_key(
    app: &TestApp,
    reader: &reqwest::Client,
    key: &str,
    option: u32,
) -> (StatusCode, String) {
    let response = reader
        .post(app.url(&format!("/api/v1/polls/{POLL}/votes")))
        .header("idempotency-key", key)
        .json(&serde_json::json!({ "option": option }))
        .send()
        .await
        .unwrap();
    (response.status(), response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_sqlite_site_moves_to_postgresql_exactly_and_only_once() {
    let Some(postgres) = TestPostgres::create("a_stopped_sqlite_site_moves_to_postgresql").await
    else {
        return;
    };
    // The address cap on, so that the addresses' uses move too.
    let cap = |config: &mut tribune::Config| config.max_votes_per_address = Some(5);

    // A SQLite site where four readers voted, one with an Idempotency-Key, and
    // two rated, one of whom changed their mind.
    let app = TestApp::spawn_sqlite_with(cap).await;
    let (alice, bob, carol, dave) = (app.reader(), app.reader(), app.reader(), app.reader());
    assert_eq!(app.vote(&alice, 1).await, StatusCode::CREATED);
    assert_eq!(app.vote(&bob, 2).await, StatusCode::CREATED);
    assert_eq!(app.vote(&carol, 2).await, StatusCode::CREATED);
    let keyed = vote_with_key(&app, &dave, "move-me", 4).await;
    assert_eq!(keyed.0, StatusCode::CREATED);
    assert_eq!(app.rate(&alice, 4).await.status(), StatusCode::OK);
    assert_eq!(app.rate(&alice, 2).await.status(), StatusCode::OK);
    assert_eq!(app.rate(&bob, 5).await.status(), StatusCode::OK);
    let poll_before = app.poll_json(&alice).await;
    let rating_before = app.rating_json(&alice).await;
    assert_eq!(tallies(&poll_before), [34, 32, 24, 22]);
    let (dir, sqlite_url) = app.stop().await;
    let source = dir.path().join("data/tribune.db");
    let source_before = file_bytes(&source);

    let moved = migrate_data(&sqlite_url, &postgres.url);
    assert!(moved.status.success(), "{}", stderr(&moved));
    let said = stdout(&moved);
    assert!(
        said.starts_with(
            "moved 1 article, 1 poll with 4 options, 4 votes, 2 ratings, 7 address uses, \
             1 idempotency key, the site's settings and the server secret into postgres://"
        ),
        "{said}"
    );
    assert!(
        said.trim_end().ends_with(&format!("/{}", postgres.name)),
        "{said}"
    );
    if let Some(password) = password(&postgres.url) {
        assert!(!said.contains(password), "the password is never shown");
    }
    assert!(!stderr(&moved).contains("moving"), "no bar off a terminal");
    assert_eq!(
        file_bytes(&source),
        source_before,
        "the source is never written"
    );

    // A server on PostgreSQL, with one more article in its content: the
    // import at start gives it a new id, past the moved ones.
    std::fs::write(
        dir.path().join("content/articles/csto-summit-2015-ru.md"),
        RUSSIAN_FIXTURE,
    )
    .unwrap();
    let app = TestApp::start(dir, postgres.url.clone(), cap).await;
    let poll_after = app.poll_json(&alice).await;
    assert_eq!(
        poll_after, poll_before,
        "the same tallies, and alice's vote"
    );
    assert_eq!(poll_after["your_vote"], 1);
    let rating_after = app.rating_json(&alice).await;
    assert_eq!(
        rating_after, rating_before,
        "the same rating, and alice's 2 stars"
    );
    assert_eq!(rating_after["your_rating"], 2);
    assert_eq!(rating_after["count"], 2);
    app.get_text("/articles/csto-summit-2015-ru").await;

    // The readers' cookies still hold: alice has voted, dave's retry gets
    // his first answer and is not counted again.
    assert_eq!(app.vote(&alice, 3).await, StatusCode::CONFLICT);
    assert_eq!(vote_with_key(&app, &dave, "move-me", 4).await, keyed);
    // A new reader's vote counts (the votes' ids go on past the moved ones),
    // and is the address's fifth this hour: the next is over the cap.
    let erin = app.reader();
    assert_eq!(app.vote(&erin, 3).await, StatusCode::CREATED);
    assert_eq!(tallies(&app.poll_json(&erin).await), [34, 32, 25, 22]);
    assert_eq!(
        app.vote(&app.reader(), 1).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    let (dir, _) = app.stop().await;

    // A second run into the same database is refused and changes nothing.
    let contents = postgres.contents().await;
    let again = migrate_data(&sqlite_url, &postgres.url);
    assert!(!again.status.success());
    let refusal = stderr(&again);
    assert!(
        refusal.contains("is not empty") && refusal.contains("articles"),
        "{refusal}"
    );
    assert!(stdout(&again).is_empty());
    assert_eq!(postgres.contents().await, contents);
    assert_eq!(file_bytes(&source), source_before);
    drop(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_still_taking_votes_is_moved_as_one_consistent_snapshot() {
    let Some(postgres) = TestPostgres::create("a_site_still_taking_votes_is_moved").await else {
        return;
    };
    let app = TestApp::spawn_sqlite_with(|_| {}).await;
    let voters = common::Voters::start(&app.base, 4);
    // Votes are arriving, and keep arriving while the copy reads.
    while tallies(&app.poll_json(&reqwest::Client::new()).await)
        .iter()
        .sum::<u64>()
        < 108 + 200
    {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (from, to) = (app.database_url.clone(), postgres.url.clone());
    let moved = tokio::task::spawn_blocking(move || migrate_data(&from, &to))
        .await
        .unwrap();
    let (acknowledged, refused) = voters.finish().await;
    assert!(refused.is_empty(), "{refused:?}");
    assert!(moved.status.success(), "{}", stderr(&moved));

    // What moved is one moment of the site: its tallies count its votes
    // (migrate-data checks it too), and it is no later than the end.
    let mut conn = postgres.connect().await;
    let (cast, votes): (i64, i64) = sqlx::query_as(
        "select (select sum(cast_votes)::bigint from poll_options), (select count(*) from votes)",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    assert_eq!(cast, votes);
    assert!(votes >= 200, "{votes}");
    assert!(
        votes as u64 <= acknowledged.iter().sum::<u64>() + 4,
        "{votes}"
    );
    assert!(
        stdout(&moved).contains(&format!(" {} votes,", indicatif::HumanCount(votes as u64))),
        "{}",
        stdout(&moved)
    );
    app.stop().await;
}

#[tokio::test]
async fn a_missing_source_is_refused_before_the_target_is_touched() {
    let Some(postgres) = TestPostgres::create("a_missing_source_is_refused").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let missing = format!("sqlite://{}", dir.path().join("typo/tribune.db").display());
    let output = migrate_data(&missing, &postgres.url);
    assert!(!output.status.success());
    let refusal = stderr(&output);
    assert!(
        refusal.contains("no database at") && refusal.contains("typo/tribune.db"),
        "{refusal}"
    );
    assert!(stdout(&output).is_empty());
    assert!(postgres.tables().await.is_empty(), "not even migrated");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing created"
    );
}

#[tokio::test]
async fn migrate_data_knows_every_table_of_both_schemas() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("tribune.db").display());
    let db = tribune::store::Db::open(&url).await.unwrap();
    let sqlite: Vec<String> = sqlx::query_scalar(
        "select name from sqlite_master where type = 'table' \
         and name not like 'sqlite_%' and name <> '_sqlx_migrations'",
    )
    .fetch_all(db.sqlite_pool().unwrap())
    .await
    .unwrap();
    db.close().await;
    let moved: BTreeSet<String> = TABLES.iter().map(|t| (*t).to_owned()).collect();
    assert_eq!(sqlite.into_iter().collect::<BTreeSet<_>>(), moved);

    let Some(postgres) = TestPostgres::create("migrate_data_knows_every_table (PostgreSQL)").await
    else {
        return;
    };
    let db = tribune::store::Db::open(&postgres.url).await.unwrap();
    db.close().await;
    let mut tables = postgres.tables().await;
    tables.remove("_sqlx_migrations");
    assert_eq!(tables, moved);
}

/// A target no test connects to: the source is refused before it is tried.
const NOWHERE: &str = "postgres://tribune:hunter2@127.0.0.1:1/tribune";

#[tokio::test]
async fn a_source_that_is_not_a_tribune_database_at_this_schema_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let refused = |path: &Path, why: &str| {
        let before = file_bytes(path);
        let output = migrate_data(&format!("sqlite://{}", path.display()), NOWHERE);
        assert!(!output.status.success(), "{}", path.display());
        let refusal = stderr(&output);
        assert!(refusal.contains(why), "{}: {refusal}", path.display());
        assert!(!refusal.contains("hunter2"), "{refusal}");
        assert_eq!(
            file_bytes(path),
            before,
            "{} is left as it was",
            path.display()
        );
    };

    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    refused(&empty, "not a Tribune database");
    let text = dir.path().join("notes.txt");
    std::fs::write(
        &text,
        "not a database, though long enough to look like one's header; ".repeat(20),
    )
    .unwrap();
    refused(&text, "not a Tribune database");

    // One migration short of this version's schema, and one past it.
    for (name, change, why) in [
        (
            "older.db",
            "delete from _sqlx_migrations where version = (select max(version) from _sqlx_migrations)",
            "start this version of Tribune on it once",
        ),
        (
            "newer.db",
            "insert into _sqlx_migrations (version, description, success, checksum, execution_time) \
             values (99990101000000, 'from a newer build', true, x'00', 0)",
            "newer version of Tribune",
        ),
    ] {
        let path = dir.path().join(name);
        let db = tribune::store::Db::open(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        sqlx::query(change)
            .execute(db.sqlite_pool().unwrap())
            .await
            .unwrap();
        db.close().await;
        refused(&path, why);
    }
}

#[test]
fn only_sqlite_into_postgresql_is_taken() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}", dir.path().join("tribune.db").display());
    for (from, to, why) in [
        (NOWHERE, NOWHERE, "--from is the SQLite database"),
        (
            sqlite.as_str(),
            sqlite.as_str(),
            "--to is the PostgreSQL database",
        ),
        ("mysql://root:hunter2@localhost/db", NOWHERE, "--from"),
        (sqlite.as_str(), "data/tribune.db", "--to"),
    ] {
        let output = migrate_data(from, to);
        assert!(!output.status.success(), "{from} {to}");
        let refusal = stderr(&output);
        assert!(refusal.contains(why), "{from} {to}: {refusal}");
        assert!(!refusal.contains("hunter2"), "{refusal}");
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing created"
    );

    // Both flags are required.
    let output = Command::new(TRIBUNE)
        .args(["migrate-data", "--from", &sqlite])
        .env_clear()
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(stderr(&output).contains("--to"), "{}", stderr(&output));
}
