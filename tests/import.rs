//! Importing content: idempotent, keeps votes and ratings, refuses a broken file with where and why.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking
mod common;

use std::process::Command;

use common::{ARTICLE, TestApp, content_with, tallies};
use reqwest::StatusCode;

const TRIBUNE: &str = env!("CARGO_BIN_EXE_tribune");

fn seed_text() -> String {
    std::fs::read_to_string(common::repo_content().join("articles/csto-summit-2015.md")).unwrap()
}

/// Runs `tribune import` on `content` into `database`; returns (success, stderr).
fn import(content: &std::path::Path, database: &str) -> (bool, String) {
    let out = Command::new(TRIBUNE)
        .args(["import", "--content"])
        .arg(content)
        .env("DATABASE_URL", database)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn a_restart_reimports_and_keeps_votes_and_ratings() {
    let app = TestApp::spawn().await;
    let reader = app.reader();
    assert_eq!(app.vote(&reader, 2).await, StatusCode::CREATED);
    let rated = app.rate(&reader, 5).await;
    assert_eq!(rated.status(), StatusCode::OK);
    let (dir, url) = app.stop().await;

    // Importing the same files again by hand changes nothing.
    let (ok, stderr) = import(&dir.path().join("content"), &url);
    assert!(ok, "{stderr}");

    let app = TestApp::start(dir, url, |_| {}).await;
    let poll = app.poll_json(&reqwest::Client::new()).await;
    assert_eq!(tallies(&poll), [33, 31, 24, 21]);
    let rating: serde_json::Value = app.rating_json(&reqwest::Client::new()).await;
    assert_eq!(rating["count"], 1);
    assert_eq!(rating["average"], 5.0);
    // The reader's cookie still works: the same secret was kept in the database.
    assert_eq!(app.vote(&reader, 1).await, StatusCode::CONFLICT);
}

#[tokio::test]
async fn an_editor_may_correct_starting_tallies_and_labels_without_touching_cast_votes() {
    let app = TestApp::spawn().await;
    assert_eq!(app.vote(&app.reader(), 3).await, StatusCode::CREATED);
    let (dir, url) = app.stop().await;
    let article = dir.path().join("content/articles/csto-summit-2015.md");
    let text = seed_text().replace("votes = 24", "votes = 40").replace(
        "U.S. wants to dissolve Russia\"",
        "U.S. wants to break up Russia\"",
    );
    std::fs::write(&article, text).unwrap();
    let app = TestApp::start(dir, url, |_| {}).await;
    let poll = app.poll_json(&reqwest::Client::new()).await;
    assert_eq!(tallies(&poll), [33, 30, 41, 21], "40 imported + 1 cast");
    assert_eq!(poll["options"][2]["label"], "U.S. wants to break up Russia");
}

/// Each broken file: the text that breaks it, and what the error must say.
fn broken_cases() -> Vec<(&'static str, String, &'static str, &'static str)> {
    let seed = seed_text();
    vec![
        (
            "missing field",
            seed.replacen(
                "question = \"In your opinion, what are the US long-term goals for Russia?\"\n",
                "",
                1,
            ),
            "missing field `question`",
            ":16:",
        ),
        (
            "duplicate option id",
            seed.replacen("{ id = 2,", "{ id = 1,", 1),
            "duplicate option id 1",
            ":22:",
        ),
        (
            "unknown key",
            seed.replacen("lang = \"en\"", "lang = \"en\"\nauthr = \"x\"", 1),
            "unknown field `authr`",
            ":6:",
        ),
        (
            "bad TOML",
            seed.replacen("status = \"open\"", "status = open", 1),
            "must be quoted",
            ":19:",
        ),
        (
            "unknown status",
            seed.replacen("status = \"open\"", "status = \"paused\"", 1),
            "paused",
            ":19:",
        ),
        (
            "no closing +++",
            seed.replacen("+++\n\nThe summit", "\nThe summit", 1),
            "closing +++",
            "",
        ),
        (
            "translation to nowhere",
            seed.replacen(
                "lang = \"en\"",
                "lang = \"en\"\ntranslation = \"nowhere\"",
                1,
            ),
            "nowhere",
            ":6:",
        ),
    ]
}

#[tokio::test]
async fn a_broken_file_is_refused_with_its_name_line_and_reason_and_changes_nothing() {
    let app = TestApp::spawn().await;
    assert_eq!(app.vote(&app.reader(), 1).await, StatusCode::CREATED);
    let before = tallies(&app.poll_json(&reqwest::Client::new()).await);
    assert_eq!(before, [34, 30, 24, 21]);
    let (dir, url) = app.stop().await;

    for (case, text, reason, line) in broken_cases() {
        let content = content_with(&[]);
        // Another, valid change in the same import must not be applied either.
        let site = content.path().join("site.toml");
        std::fs::write(
            &site,
            std::fs::read_to_string(&site)
                .unwrap()
                .replace("Russian International Affairs Council", "Renamed"),
        )
        .unwrap();
        std::fs::write(content.path().join("articles/csto-summit-2015.md"), text).unwrap();
        let (ok, stderr) = import(content.path(), &url);
        assert!(!ok, "{case}: the import must fail");
        assert!(
            stderr.contains("csto-summit-2015.md"),
            "{case}: names the file: {stderr}"
        );
        assert!(stderr.contains(reason), "{case}: says {reason:?}: {stderr}");
        assert!(stderr.contains(line), "{case}: gives line {line}: {stderr}");
    }

    let app = TestApp::start(dir, url.clone(), |_| {}).await;
    let page = app.get_text(ARTICLE).await;
    assert!(
        page.contains("Russian International Affairs Council"),
        "the site was not renamed"
    );
    assert_eq!(
        tallies(&app.poll_json(&reqwest::Client::new()).await),
        before
    );
}

#[tokio::test]
async fn the_server_does_not_start_on_broken_content() {
    let content = content_with(&[]);
    std::fs::write(
        content.path().join("articles/csto-summit-2015.md"),
        seed_text().replacen("{ id = 2,", "{ id = 1,", 1),
    )
    .unwrap();
    let db = tempfile::tempdir().unwrap();
    let url = common::fresh_database_url(db.path(), "t.db").await;
    let out = Command::new(TRIBUNE)
        .args(["serve", "--bind", "127.0.0.1:0", "--content"])
        .arg(content.path())
        .env("DATABASE_URL", url)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("csto-summit-2015.md:22: duplicate option id 1"),
        "{stderr}"
    );
}

#[tokio::test]
async fn removing_an_option_that_has_votes_is_refused() {
    let app = TestApp::spawn().await;
    assert_eq!(app.vote(&app.reader(), 4).await, StatusCode::CREATED);
    let (dir, url) = app.stop().await;
    let content = content_with(&[]);
    let text = seed_text();
    let without_four: String = text
        .lines()
        .filter(|l| !l.contains("{ id = 4,"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(
        content.path().join("articles/csto-summit-2015.md"),
        without_four,
    )
    .unwrap();
    let (ok, stderr) = import(content.path(), &url);
    assert!(!ok);
    assert!(
        stderr.contains("option 4") && stderr.contains("cannot be removed"),
        "{stderr}"
    );
    drop(dir);
}
