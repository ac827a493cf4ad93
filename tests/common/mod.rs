//! Test support: a real Tribune server on 127.0.0.1:0 with its own database and content.
//!
//! The tests run on SQLite, or on PostgreSQL when `TRIBUNE_TEST_POSTGRES`
//! holds an admin URL (see `fresh_database_url`).
#![allow(dead_code)]

pub mod db;
pub mod sse;

// Each test binary uses its own part of these.
#[allow(unused_imports)]
pub use db::{Arg, TestDb, fresh_database_url, on_postgres, sqlite_only};

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use axum::body::Body;
use axum::http::{Request, Response};
use http_body_util::BodyExt;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tower::ServiceExt;
use tribune::{AppState, Application, Config};

pub const ARTICLE: &str = "/articles/csto-summit-2015";
pub const POLL: &str = "us-long-term-goals";
pub const RATING: &str = "/api/v1/articles/csto-summit-2015/rating";

pub struct TestApp {
    pub addr: std::net::SocketAddr,
    pub base: String,
    pub dir: TempDir,
    pub database_url: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// The repository's own content folder.
pub fn repo_content() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("content")
}

/// Copies a content folder into `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A temporary folder with a copy of the repository's content, plus extra articles.
pub fn content_with(extra: &[(&str, &str)]) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo_content(), dir.path());
    for (name, text) in extra {
        std::fs::write(dir.path().join("articles").join(name), text).unwrap();
    }
    dir
}

impl TestApp {
    /// The seed content, the per-address cap off.
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// The seed content, with `adjust` applied to the configuration.
    pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&repo_content(), &dir.path().join("content"));
        let database_url = fresh_database_url(dir.path(), "data/tribune.db").await;
        Self::start(dir, database_url, adjust).await
    }

    /// `spawn_with` on SQLite in either pass: for a site to move elsewhere.
    pub async fn spawn_sqlite_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&repo_content(), &dir.path().join("content"));
        let database_url = format!("sqlite://{}", dir.path().join("data/tribune.db").display());
        Self::start(dir, database_url, adjust).await
    }

    /// Starts a server on an existing folder (with `content/`) and database.
    pub async fn start(
        dir: TempDir,
        database_url: String,
        adjust: impl FnOnce(&mut Config),
    ) -> Self {
        let mut config = Config::new(database_url.clone(), dir.path().join("content"));
        config.bind = "127.0.0.1:0".parse().unwrap();
        config.base_url = "http://127.0.0.1:0".into();
        config.max_votes_per_address = None;
        adjust(&mut config);
        let app = Application::build(config).await.expect("the server starts");
        let addr = app.local_addr();
        let base = format!("http://{addr}");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until_stopped(async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            base,
            dir,
            database_url,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A client that keeps cookies, like one reader's browser, and does not follow redirects.
    pub fn reader(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    /// Stops the server gracefully and gives back its folder and database.
    pub async fn stop(mut self) -> (TempDir, String) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        (dir, self.database_url.clone())
    }

    pub async fn get_text(&self, path: &str) -> String {
        let response = reqwest::get(self.url(path)).await.unwrap();
        assert!(
            response.status().is_success(),
            "GET {path}: {}",
            response.status()
        );
        response.text().await.unwrap()
    }

    /// The seed article's rating as `client` sees it.
    pub async fn rating_json(&self, client: &reqwest::Client) -> serde_json::Value {
        client
            .get(self.url(RATING))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Rates the seed article through the API as `client`.
    pub async fn rate(&self, client: &reqwest::Client, stars: u8) -> reqwest::Response {
        client
            .put(self.url(RATING))
            .json(&serde_json::json!({ "stars": stars }))
            .send()
            .await
            .unwrap()
    }

    pub async fn poll_json(&self, client: &reqwest::Client) -> serde_json::Value {
        client
            .get(self.url(&format!("/api/v1/polls/{POLL}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Casts a vote through the API as `client`; returns the status.
    pub async fn vote(&self, client: &reqwest::Client, option: u32) -> reqwest::StatusCode {
        vote_at(&self.base, client, option).await
    }
}

/// A vote for `option` in the seed poll, through the API of the server at `base`.
pub async fn vote_at(base: &str, client: &reqwest::Client, option: u32) -> reqwest::StatusCode {
    client
        .post(format!("{base}/api/v1/polls/{POLL}/votes"))
        .json(&serde_json::json!({ "option": option }))
        .send()
        .await
        .unwrap()
        .status()
}

/// The application's state on a fresh database with the seed content plus
/// `extra` articles, for requests through the router without a listener.
pub async fn test_state(extra: &[(&str, &str)]) -> (AppState, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let content = dir.path().join("content");
    copy_dir(&repo_content(), &content);
    for (name, text) in extra {
        std::fs::write(content.join("articles").join(name), text).unwrap();
    }
    let database_url = fresh_database_url(dir.path(), "data/tribune.db").await;
    let mut config = Config::new(database_url, content);
    config.max_votes_per_address = None;
    // The writer stops by itself once the router and its state are dropped.
    let running = AppState::build(config).await.expect("the state builds");
    (running.state, dir)
}

/// The real router, answering one request at a time with `oneshot`.
pub struct TestRouter {
    pub router: axum::Router,
    pub dir: TempDir,
}

impl TestRouter {
    /// The seed content.
    pub async fn new() -> Self {
        Self::with_articles(&[]).await
    }

    /// The seed content plus `extra` articles `(file name, text)`.
    pub async fn with_articles(extra: &[(&str, &str)]) -> Self {
        let (state, dir) = test_state(extra).await;
        Self {
            router: tribune::router(state),
            dir,
        }
    }

    pub async fn send(&self, request: Request<Body>) -> Response<Body> {
        self.router.clone().oneshot(request).await.unwrap()
    }

    pub async fn get(&self, path: &str) -> Response<Body> {
        self.send(Request::get(path).body(Body::empty()).unwrap())
            .await
    }
}

/// A response's body as text.
pub async fn body_text(response: Response<Body>) -> String {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// The votes of each option, in order, from a poll JSON.
pub fn tallies(poll: &serde_json::Value) -> Vec<u64> {
    poll["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["votes"].as_u64().unwrap())
        .collect()
}

/// A Russian translation of the seed article, for the language-link tests.
pub const RUSSIAN_FIXTURE: &str = r#"+++
title = "Саммит ОДКБ 2015 года"
slug = "csto-summit-2015-ru"
lang = "ru"
translation = "csto-summit-2015"

[author]
name = "Юлия Никитина"
bio = "Кандидат политических наук, доцент"
+++

Тестовый перевод: первый абзац.

Второй абзац.
"#;

/// Starts the real `tribune` binary on a free port, with `extra` arguments
/// and the per-address vote cap off unless they set it; returns it and its
/// base URL.
pub fn spawn_binary(database_url: &str, content: &Path, extra: &[&str]) -> (Child, String) {
    let cap_off: &[&str] = if extra.contains(&"--max-votes-per-address") {
        &[]
    } else {
        &["--max-votes-per-address", "0"]
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_tribune"))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .args(cap_off)
        .arg("--content")
        .arg(content)
        .args(extra)
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "tribune=info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let base = loop {
        let line = lines
            .next()
            .expect("the server logs where it serves")
            .unwrap();
        if let Some(at) = line.find(" on http://") {
            break line[at + 4..].trim().to_owned();
        }
    };
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, base)
}

/// Readers voting through the API, each a new reader per vote, until told to
/// stop or until the server stops answering with 201.
pub struct Voters {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<Voted>>,
}

/// What one voter saw: the votes acknowledged per option, and the answer
/// that ended it other than a 201 (none when the connection failed or it was told to stop).
struct Voted {
    acknowledged: [u64; 4],
    refused: Option<reqwest::StatusCode>,
}

impl Voters {
    pub fn start(base: &str, voters: u64) -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let tasks = (0..voters)
            .map(|worker| {
                let url = format!("{base}/api/v1/polls/{POLL}/votes");
                let stop = stop.clone();
                tokio::spawn(async move {
                    let client = reqwest::Client::new();
                    let mut voted = Voted {
                        acknowledged: [0; 4],
                        refused: None,
                    };
                    let mut i = worker;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let option = i % 4 + 1;
                        i += 1;
                        match client
                            .post(&url)
                            .json(&serde_json::json!({ "option": option }))
                            .send()
                            .await
                        {
                            Ok(response) if response.status() == reqwest::StatusCode::CREATED => {
                                voted.acknowledged[(option - 1) as usize] += 1;
                            }
                            Ok(response) => {
                                voted.refused = Some(response.status());
                                break;
                            }
                            // The server is gone: this vote was never acknowledged.
                            Err(_) => break,
                        }
                    }
                    voted
                })
            })
            .collect();
        Self { stop, tasks }
    }

    /// Stops the voters; gives the votes acknowledged per option, and every
    /// answer other than a 201 that stopped a voter.
    pub async fn finish(self) -> ([u64; 4], Vec<reqwest::StatusCode>) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut acknowledged = [0_u64; 4];
        let mut refused = Vec::new();
        for task in self.tasks {
            let voted = task.await.unwrap();
            for (total, n) in acknowledged.iter_mut().zip(voted.acknowledged) {
                *total += n;
            }
            refused.extend(voted.refused);
        }
        (acknowledged, refused)
    }
}

/// Every acknowledged vote is counted in `poll`, and at most `in_flight`
/// votes more (those whose answer was cut off).
pub fn assert_every_acknowledged_vote_counted(
    poll: &serde_json::Value,
    acknowledged: [u64; 4],
    in_flight: u64,
) {
    let seed = [33, 30, 24, 21];
    for (i, (count, ack)) in tallies(poll).iter().zip(acknowledged).enumerate() {
        assert!(
            *count >= seed[i] + ack,
            "option {}: {count} counted, {} acknowledged",
            i + 1,
            seed[i] + ack
        );
    }
    let acked: u64 = acknowledged.iter().sum();
    let extra = poll["total_votes"].as_u64().unwrap() - 108 - acked;
    assert!(
        extra <= in_flight,
        "{extra} votes counted that nobody was told about"
    );
}
