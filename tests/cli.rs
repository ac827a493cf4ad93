//! The command line: database URLs this build cannot serve, and backups that
//! refuse what is not there and never touch their source.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking
mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{POLL, copy_dir, repo_content};

const TRIBUNE: &str = env!("CARGO_BIN_EXE_tribune");

/// Runs `tribune` in `dir` with only the environment given.
fn tribune(dir: &Path, database_url: &str, args: &[&str]) -> Output {
    Command::new(TRIBUNE)
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("DATABASE_URL", database_url)
        .output()
        .unwrap()
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_database_url_tribune_does_not_serve_is_refused_by_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo_content(), &dir.path().join("content"));
    let before = entries(dir.path());
    for url in ["mysql://root:hunter2@localhost/tribune", "data/tribune.db"] {
        for args in [
            // With no content, a server that got past the URL would stop, not serve.
            &["serve", "--bind", "127.0.0.1:0", "--content", "nowhere"][..],
            &["import"],
            &["export", POLL],
            &["backup", "copy.db"],
        ] {
            let case = format!("{url} {args:?}");
            let output = tribune(dir.path(), url, args);
            assert!(!output.status.success(), "{case}");
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(
                stderr.contains("sqlite:") && stderr.contains("postgres://"),
                "{case}: {stderr}"
            );
            assert!(!stderr.contains("hunter2"), "{case}: no password shown");
            assert_eq!(entries(dir.path()), before, "{case}: nothing created");
        }
    }
}

#[test]
fn a_postgres_server_that_does_not_answer_is_named_without_its_password() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo_content(), &dir.path().join("content"));
    let before = entries(dir.path());
    // Nothing listens on port 1: the connection is refused at once.
    let url = "postgres://tribune:hunter2@127.0.0.1:1/tribune";
    for args in [&["import"][..], &["export", POLL]] {
        let output = tribune(dir.path(), url, args);
        assert!(!output.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("PostgreSQL"), "{args:?}: {stderr}");
        assert!(!stderr.contains("hunter2"), "{args:?}: no password shown");
        assert_eq!(entries(dir.path()), before, "{args:?}: nothing created");
    }
    let output = tribune(dir.path(), url, &["backup", "copy.db"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("pg_dump"), "{stderr}");
    assert_eq!(entries(dir.path()), before, "backup: nothing created");
}

#[test]
fn backup_refuses_a_database_that_is_not_there_and_creates_nothing() {
    if common::sqlite_only("`tribune backup` of a SQLite file") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let missing = format!("sqlite://{}", dir.path().join("typo/tribune.db").display());
    let output = tribune(dir.path(), &missing, &["backup", "copy.db"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no database at") && stderr.contains("typo/tribune.db"),
        "{stderr}"
    );
    assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));

    // An empty file is no database either, and stays as it was.
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let url = format!("sqlite://{}", empty.display());
    let output = tribune(dir.path(), &url, &["backup", "copy.db"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not a Tribune database"), "{stderr}");
    assert_eq!(std::fs::metadata(&empty).unwrap().len(), 0);
    assert!(!dir.path().join("copy.db").exists());
}

#[tokio::test]
async fn backup_never_migrates_its_source() {
    if common::sqlite_only("`tribune backup` of a SQLite file, read directly") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("tribune.db");
    let url = format!("sqlite://{}", source.display());
    // A database from a newer build: it has a migration this build does not know.
    let db = tribune::store::Db::open(&url).await.unwrap();
    sqlx::query(
        "insert into _sqlx_migrations (version, description, success, checksum, execution_time) \
         values (99990101000000, 'from a newer build', true, x'00', 0)",
    )
    .execute(db.sqlite_pool().unwrap())
    .await
    .unwrap();
    db.close().await;
    let migrations = |path: &Path| {
        let path = path.to_owned();
        async move {
            let url = format!("sqlite://{}?mode=ro", path.display());
            let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
            let versions: Vec<i64> =
                sqlx::query_scalar("select version from _sqlx_migrations order by version")
                    .fetch_all(&pool)
                    .await
                    .unwrap();
            pool.close().await;
            versions
        }
    };
    let before = migrations(&source).await;

    let output = tribune(dir.path(), &url, &["backup", "copy.db"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(migrations(&source).await, before, "the source is untouched");
    assert_eq!(migrations(&dir.path().join("copy.db")).await, before);
}
