//! `kill -9` while votes are in flight loses no acknowledged vote (on either
//! engine: the server may only acknowledge a vote once it is committed).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking
mod common;

use std::process::Child;
use std::time::Duration;

use common::{Voters, assert_every_acknowledged_vote_counted};

const POLL: &str = "us-long-term-goals";

fn start(database_url: &str, content: &std::path::Path) -> (Child, String) {
    common::spawn_binary(database_url, content, &[])
}

#[tokio::test]
async fn acknowledged_votes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = common::fresh_database_url(dir.path(), "t.db").await;
    let content = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("content");
    let (mut server, base) = start(&database_url, &content);

    let voters = Voters::start(&base, 16);
    // Let votes flow, then kill the server mid-stream.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill().unwrap();
    server.wait().unwrap();
    let (acknowledged, refused) = voters.finish().await;
    assert!(refused.is_empty(), "answers other than 201: {refused:?}");
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

    // Only votes in flight at the kill (at most one per voter) may be counted without an answer.
    assert_every_acknowledged_vote_counted(&poll, acknowledged, 16);
}

/// kill -9 cannot tell `synchronous=FULL` from `NORMAL` (the OS keeps what the
/// process wrote); a power cut can. So the setting itself is checked, on the
/// writer's connection and the pool's.
#[tokio::test]
async fn the_writer_commits_with_synchronous_full() {
    if common::sqlite_only("checks SQLite's synchronous and journal_mode pragmas") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let db = tribune::store::Db::open(&url).await.unwrap();
    let tribune::store::OwnConn::Sqlite(mut writer) =
        db.writer_connection(Duration::from_secs(5)).await.unwrap()
    else {
        panic!("a sqlite: URL opens SQLite");
    };
    let (writer_sync,): (i64,) = sqlx::query_as("pragma synchronous")
        .fetch_one(&mut writer)
        .await
        .unwrap();
    let (pool_sync,): (i64,) = sqlx::query_as("pragma synchronous")
        .fetch_one(db.sqlite_pool().unwrap())
        .await
        .unwrap();
    let (journal,): (String,) = sqlx::query_as("pragma journal_mode")
        .fetch_one(db.sqlite_pool().unwrap())
        .await
        .unwrap();
    assert_eq!((writer_sync, pool_sync), (2, 2), "2 is FULL");
    assert_eq!(journal, "wal");
}

/// The same on PostgreSQL: a vote is acknowledged once its commit is on
/// disk (`synchronous_commit=on`, whatever the server's default), on the
/// writer's connection and the pool's; the writer waits for another's lock
/// at most as long as it is told to.
#[tokio::test]
async fn the_writer_commits_with_synchronous_commit_on() {
    if common::db::postgres_only("checks PostgreSQL's synchronous_commit") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let url = common::fresh_database_url(dir.path(), "t.db").await;
    // A server whose default would acknowledge before the disk has it.
    let mut admin = common::TestDb::connect(&url).await;
    let database = url.rsplit('/').next().unwrap().to_owned();
    admin
        .execute(
            &format!("alter database {database} set synchronous_commit = off"),
            &[],
        )
        .await;
    admin.close().await;
    let db = tribune::store::Db::open(&url).await.unwrap();
    let tribune::store::OwnConn::Postgres(mut writer) = db
        .writer_connection(Duration::from_millis(1500))
        .await
        .unwrap()
    else {
        panic!("a postgres:// URL opens PostgreSQL");
    };
    let (commit, lock_timeout): (String, String) = sqlx::query_as(
        "select current_setting('synchronous_commit'), current_setting('lock_timeout')",
    )
    .fetch_one(&mut writer)
    .await
    .unwrap();
    assert_eq!((commit.as_str(), lock_timeout.as_str()), ("on", "1500ms"));
    let mut pooled = db.acquire().await.unwrap();
    let tribune::store::Conn::Postgres(pool_conn) = pooled.conn() else {
        panic!("the pool is PostgreSQL's");
    };
    let commit: String = sqlx::query_scalar("select current_setting('synchronous_commit')")
        .fetch_one(pool_conn)
        .await
        .unwrap();
    assert_eq!(commit, "on");
    drop(pooled);
    db.close().await;
}
