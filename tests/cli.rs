//! The command line: database URLs this build cannot serve.

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
fn a_database_url_this_build_does_not_serve_is_refused_by_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo_content(), &dir.path().join("content"));
    let before = entries(dir.path());
    for url in [
        "postgres://tribune:hunter2@db.example/tribune",
        "postgresql://localhost/tribune",
        "mysql://root:hunter2@localhost/tribune",
        "data/tribune.db",
    ] {
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
            assert!(stderr.contains("sqlite:"), "{case}: {stderr}");
            assert!(!stderr.contains("hunter2"), "{case}: no password shown");
            assert_eq!(entries(dir.path()), before, "{case}: nothing created");
        }
    }
    let output = tribune(dir.path(), "postgres://localhost/tribune", &["import"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("SQLite only") && stderr.contains("postgres"),
        "{stderr}"
    );
}
