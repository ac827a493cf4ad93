//! Voting: one reader, one vote; exact under concurrency; bad input changes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking
mod common;

use std::process::Command;

use common::{ARTICLE, POLL, TestApp, content_with, tallies};
use reqwest::StatusCode;
use reqwest::header;

const TRIBUNE: &str = env!("CARGO_BIN_EXE_tribune");
const SEED_TALLIES: [u64; 4] = [33, 30, 24, 21];

fn votes_url() -> String {
    format!("/api/v1/polls/{POLL}/votes")
}

async fn counts(app: &TestApp) -> Vec<u64> {
    tallies(&app.poll_json(&reqwest::Client::new()).await)
}

#[tokio::test]
async fn a_form_vote_redirects_back_to_the_poll_counts_and_is_marked() {
    let app = TestApp::spawn().await;
    let reader = app.reader();
    let response = reader
        .post(app.url(&format!("/polls/{POLL}/vote")))
        .form(&[("option", "2")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        response.headers()[header::LOCATION],
        "/articles/csto-summit-2015#poll"
    );
    let cookie = response.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("tribune_reader="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Lax")
            && !cookie.contains("Secure"),
        "{cookie}"
    );
    assert_eq!(counts(&app).await, [33, 31, 24, 21]);

    let page = reader.get(app.url(ARTICLE)).send().await.unwrap();
    assert_eq!(
        page.headers()[header::CACHE_CONTROL],
        "private, no-cache",
        "a page with the reader's own vote is private"
    );
    let page = page.text().await.unwrap();
    assert!(page.contains("31 (29%)"), "the page shows the new count");
    assert!(
        !page.contains(r#"name="option""#),
        "no second ballot for a voter"
    );
    let chosen = page
        .find("poll-option chosen")
        .expect("the reader's choice is marked");
    let label = page[chosen..]
        .find("U.S. wants to deter Russia’s military and political activity")
        .unwrap();
    assert!(page[chosen..chosen + label + 200].contains("(your vote)"));
    assert_eq!(page.matches("(your vote)").count(), 1);

    // Another reader still sees the ballot, and nothing of the first reader's.
    let other = app.get_text(ARTICLE).await;
    assert!(other.contains(r#"name="option""#) && !other.contains("(your vote)"));
    assert!(other.contains("31 (29%)"));
}

#[tokio::test]
async fn an_api_vote_answers_201_with_the_results_and_your_vote() {
    let app = TestApp::spawn().await;
    let reader = app.reader();
    let response = reader
        .post(app.url(&votes_url()))
        .json(&serde_json::json!({"option": 4}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(
        response.headers()[header::LOCATION],
        format!("/api/v1/polls/{POLL}")
    );
    let poll: serde_json::Value = response.json().await.unwrap();
    assert_eq!(poll["your_vote"], 4);
    assert_eq!(poll["total_votes"], 109);
    assert_eq!(poll["status"], "open");
    assert_eq!(poll["closes_at"], serde_json::Value::Null);
    assert_eq!(tallies(&poll), [33, 30, 24, 22]);
    let percents: Vec<u64> = poll["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["percent"].as_u64().unwrap())
        .collect();
    assert_eq!(percents.iter().sum::<u64>(), 100);
    // The reader's own vote comes back on a later read; others see none.
    assert_eq!(app.poll_json(&reader).await["your_vote"], 4);
    assert_eq!(
        app.poll_json(&reqwest::Client::new()).await["your_vote"],
        serde_json::Value::Null
    );
}

#[tokio::test]
async fn a_second_vote_is_409_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let reader = app.reader();
    assert_eq!(app.vote(&reader, 1).await, StatusCode::CREATED);
    let again = reader
        .post(app.url(&votes_url()))
        .json(&serde_json::json!({"option": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert_eq!(
        again.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    let problem: serde_json::Value = again.json().await.unwrap();
    assert_eq!(problem["status"], 409);
    assert_eq!(problem["code"], "already-voted");
    // The form says so too, as a page with a way back.
    let form = reader
        .post(app.url(&format!("/polls/{POLL}/vote")))
        .form(&[("option", "3")])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), StatusCode::CONFLICT);
    let body = form.text().await.unwrap();
    assert!(body.contains("already voted") && body.contains("/articles/csto-summit-2015#poll"));
    assert_eq!(counts(&app).await, [34, 30, 24, 21]);
    assert_eq!(app.poll_json(&reader).await["your_vote"], 1);
}

#[tokio::test]
async fn bad_input_gets_a_problem_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let client = reqwest::Client::new();
    let url = app.url(&votes_url());
    let json = |body: &str| {
        client
            .post(&url)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body.to_owned())
    };
    let cases: Vec<(&str, reqwest::RequestBuilder, StatusCode)> = vec![
        (
            "unknown option",
            json(r#"{"option": 9}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "option zero",
            json(r#"{"option": 0}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "negative option",
            json(r#"{"option": -1}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "option as text",
            json(r#"{"option": "two"}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "fractional option",
            json(r#"{"option": 1.5}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "missing field",
            json(r#"{}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "unknown field",
            json(r#"{"option": 1, "weight": 100}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "malformed JSON",
            json(r#"{"option": "#),
            StatusCode::BAD_REQUEST,
        ),
        ("a string", json(r#""1""#), StatusCode::UNPROCESSABLE_ENTITY),
        (
            "wrong content type",
            client
                .post(&url)
                .header(header::CONTENT_TYPE, "text/plain")
                .body(r#"{"option": 1}"#),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "no content type",
            client.post(&url).body(r#"{"option": 1}"#),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "body over the limit",
            json(&format!(
                r#"{{"option": 1, "pad": "{}"}}"#,
                "x".repeat(64 * 1024)
            )),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            "unknown poll",
            client
                .post(app.url("/api/v1/polls/no-such-poll/votes"))
                .json(&serde_json::json!({"option": 1})),
            StatusCode::NOT_FOUND,
        ),
    ];
    for (case, request, expected) in cases {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), expected, "{case}");
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json",
            "{case}"
        );
        let problem: serde_json::Value = response.json().await.unwrap();
        assert_eq!(problem["status"], expected.as_u16(), "{case}");
        assert!(
            problem["title"].is_string() && problem["detail"].is_string(),
            "{case}"
        );
        assert!(!problem["detail"].as_str().unwrap().is_empty(), "{case}");
    }
    let missing = client
        .get(app.url("/api/v1/polls/no-such-poll"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        missing.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );

    // The form: no choice, a stranger's option, garbage, an unknown poll.
    let form = |poll: &str, body: &'static [(&'static str, &'static str)]| {
        client
            .post(app.url(&format!("/polls/{poll}/vote")))
            .form(body)
    };
    for (case, request, expected) in [
        (
            "no option chosen",
            form(POLL, &[]),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "empty option",
            form(POLL, &[("option", "")]),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "unknown option",
            form(POLL, &[("option", "7")]),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "garbage option",
            form(POLL, &[("option", "<script>")]),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "unknown poll",
            form("nope", &[("option", "1")]),
            StatusCode::NOT_FOUND,
        ),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), expected, "form: {case}");
        assert!(
            response.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "form: {case}"
        );
        assert!(
            !response.headers().contains_key(header::SET_COOKIE),
            "form: {case} sets no cookie"
        );
        let body = response.text().await.unwrap();
        assert!(
            !body.contains("<script>"),
            "form: {case} escapes what it echoes"
        );
    }
    assert_eq!(counts(&app).await, SEED_TALLIES);
}

#[tokio::test]
async fn cross_site_browser_posts_are_refused() {
    let app = TestApp::spawn().await;
    let client = reqwest::Client::new();
    for (name, value) in [
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
        ("origin", "http://evil.example"),
        ("origin", "null"),
    ] {
        let api = client
            .post(app.url(&votes_url()))
            .header(name, value)
            .json(&serde_json::json!({"option": 1}))
            .send()
            .await
            .unwrap();
        assert_eq!(api.status(), StatusCode::FORBIDDEN, "{name}: {value}");
        assert_eq!(
            api.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let form = client
            .post(app.url(&format!("/polls/{POLL}/vote")))
            .header(name, value)
            .form(&[("option", "1")])
            .send()
            .await
            .unwrap();
        assert_eq!(form.status(), StatusCode::FORBIDDEN, "form {name}: {value}");
    }
    assert_eq!(counts(&app).await, SEED_TALLIES);
    // The page's own origin passes.
    let same = client
        .post(app.url(&votes_url()))
        .header("sec-fetch-site", "same-origin")
        .json(&serde_json::json!({"option": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(same.status(), StatusCode::CREATED);
    let origin = client
        .post(app.url(&votes_url()))
        .header("origin", &app.base)
        .json(&serde_json::json!({"option": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(origin.status(), StatusCode::CREATED);
}

const CLOSED_POLL: &str = r#"+++
title = "A closed poll"
lang = "en"

[author]
name = "An Author"
bio = "A bio."

[poll]
id = "closed-poll"
question = "Closed?"
status = "closed"
options = [ { id = 1, label = "Yes", votes = 3 }, { id = 2, label = "No", votes = 1 } ]
+++

Lead.
"#;

const EXPIRED_POLL: &str = r#"+++
title = "A poll past its closing time"
lang = "en"

[author]
name = "An Author"
bio = "A bio."

[poll]
id = "expired-poll"
question = "Expired?"
closes_at = 2020-01-01T00:00:00Z
options = [ { id = 1, label = "Yes" }, { id = 2, label = "No" } ]
+++

Lead.
"#;

#[tokio::test]
async fn a_closed_poll_shows_results_and_refuses_votes() {
    let content = content_with(&[("closed.md", CLOSED_POLL), ("expired.md", EXPIRED_POLL)]);
    let dir = tempfile::tempdir().unwrap();
    common::copy_dir(content.path(), &dir.path().join("content"));
    let url = common::fresh_database_url(dir.path(), "t.db").await;
    let app = TestApp::start(dir, url, |_| {}).await;
    for (slug, poll, results) in [
        ("closed", "closed-poll", "3 (75%)"),
        ("expired", "expired-poll", "0 (0%)"),
    ] {
        let page = app.get_text(&format!("/articles/{slug}")).await;
        assert!(page.contains(results), "{slug}: results shown");
        assert!(page.contains("This poll is closed."), "{slug}");
        assert!(!page.contains(r#"name="option""#), "{slug}: no ballot");
        let json: serde_json::Value = reqwest::get(app.url(&format!("/api/v1/polls/{poll}")))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(json["status"], "closed", "{slug}");
        let response = reqwest::Client::new()
            .post(app.url(&format!("/api/v1/polls/{poll}/votes")))
            .json(&serde_json::json!({"option": 1}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CONFLICT, "{slug}");
        let problem: serde_json::Value = response.json().await.unwrap();
        assert_eq!(problem["code"], "poll-closed");
    }
    let expired: serde_json::Value = reqwest::get(app.url("/api/v1/polls/expired-poll"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(expired["closes_at"], "2020-01-01T00:00:00Z");
    assert_eq!(expired["total_votes"], 0);
    assert!(
        expired["options"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["percent"] == 0),
        "all 0 with no votes"
    );
    let page = app.get_text("/articles/expired").await;
    assert!(page.contains("(no votes)"));
}

#[tokio::test]
async fn two_thousand_votes_from_forty_parallel_readers_are_all_counted() {
    let app = TestApp::spawn().await;
    let url = app.url(&votes_url());
    let mut tasks = Vec::new();
    for worker in 0..40_u32 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            // No cookie jar: every request is a new reader.
            let client = reqwest::Client::new();
            let mut created = [0_u64; 4];
            for i in 0..50_u32 {
                let option = (worker + i) % 4 + 1;
                let response = client
                    .post(&url)
                    .json(&serde_json::json!({"option": option}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), StatusCode::CREATED);
                created[(option - 1) as usize] += 1;
            }
            created
        }));
    }
    let mut expected = SEED_TALLIES;
    for task in tasks {
        for (total, n) in expected.iter_mut().zip(task.await.unwrap()) {
            *total += n;
        }
    }
    assert_eq!(expected.iter().sum::<u64>(), 108 + 2000);
    let poll = app.poll_json(&reqwest::Client::new()).await;
    assert_eq!(tallies(&poll), expected);
    assert_eq!(poll["total_votes"], 2108);
}

#[tokio::test]
async fn fifty_racing_votes_by_one_reader_count_once() {
    let app = TestApp::spawn().await;
    let reader = app.reader();
    // Rating first gives the reader their cookie without voting.
    let rated = app.rate(&reader, 3).await;
    assert_eq!(rated.status(), StatusCode::OK);
    let mut tasks = Vec::new();
    for i in 0..50_u32 {
        let reader = reader.clone();
        let url = app.url(&votes_url());
        tasks.push(tokio::spawn(async move {
            reader
                .post(&url)
                .json(&serde_json::json!({"option": i % 4 + 1}))
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CONFLICT)
            .count(),
        49,
        "{statuses:?}"
    );
    let poll = app.poll_json(&reader).await;
    assert_eq!(poll["total_votes"], 109);
    let mine = poll["your_vote"].as_u64().unwrap();
    let expected: Vec<u64> = SEED_TALLIES
        .iter()
        .enumerate()
        .map(|(i, &n)| n + u64::from(i as u64 + 1 == mine))
        .collect();
    assert_eq!(tallies(&poll), expected);
}

#[tokio::test]
async fn one_address_may_cast_only_its_share_of_votes_an_hour() {
    let app = TestApp::spawn_with(|c| c.max_votes_per_address = Some(3)).await;
    let first = app.reader();
    assert_eq!(app.vote(&first, 1).await, StatusCode::CREATED);
    for _ in 0..2 {
        assert_eq!(app.vote(&app.reader(), 1).await, StatusCode::CREATED);
    }
    let over = app
        .reader()
        .post(app.url(&votes_url()))
        .json(&serde_json::json!({"option": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(over.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = over.headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (3500..=3601).contains(&retry),
        "retry after about an hour, got {retry}"
    );
    assert_eq!(
        over.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    // A reader who already voted is told that, not that the address is busy.
    assert_eq!(app.vote(&first, 2).await, StatusCode::CONFLICT);
    // X-Forwarded-For from an untrusted peer is not believed.
    let spoofed = reqwest::Client::new()
        .post(app.url(&votes_url()))
        .header("x-forwarded-for", "203.0.113.9")
        .json(&serde_json::json!({"option": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(spoofed.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(counts(&app).await, [36, 30, 24, 21]);
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_address_has_its_own_share() {
    let app = TestApp::spawn_with(|c| {
        c.max_votes_per_address = Some(1);
        c.trusted_proxies = "127.0.0.1".parse().unwrap();
    })
    .await;
    let client = reqwest::Client::new();
    let vote = |address: &'static str| {
        client
            .post(app.url(&votes_url()))
            .header("x-forwarded-for", address)
            .json(&serde_json::json!({"option": 3}))
            .send()
    };
    assert_eq!(
        vote("203.0.113.1").await.unwrap().status(),
        StatusCode::CREATED
    );
    assert_eq!(
        vote("203.0.113.2").await.unwrap().status(),
        StatusCode::CREATED
    );
    assert_eq!(
        vote("203.0.113.1").await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(counts(&app).await, [33, 30, 26, 21]);
}

#[tokio::test]
async fn addresses_and_reader_ids_are_never_stored_raw() {
    let app = TestApp::spawn_with(|c| c.max_votes_per_address = Some(100)).await;
    let reader = app.reader();
    assert_eq!(app.vote(&reader, 1).await, StatusCode::CREATED);
    let (dir, url) = app.stop().await;
    if common::on_postgres() {
        // Every row of every table, as text.
        let mut db = common::TestDb::connect(&url).await;
        let tables: Vec<(String,)> = db
            .fetch_all(
                "select quote_ident(tablename) from pg_tables where schemaname = current_schema()",
                &[],
            )
            .await;
        for (table,) in tables {
            let rows: Vec<(String,)> = db
                .fetch_all(&format!("select t::text from {table} t"), &[])
                .await;
            for (row,) in rows {
                assert!(
                    !row.contains("127.0.0.1"),
                    "no raw address in {table}: {row}"
                );
            }
        }
        db.close().await;
        return;
    }
    let db = tribune::store::Db::open(&url).await.unwrap();
    drop(db);
    for entry in std::fs::read_dir(dir.path().join("data")).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(
            !bytes.windows(9).any(|w| w == b"127.0.0.1"),
            "no raw address on disk"
        );
    }
}

#[tokio::test]
async fn a_restart_keeps_every_count() {
    let app = TestApp::spawn().await;
    for option in [1, 2, 2, 3, 4, 4, 4] {
        assert_eq!(
            app.vote(&reqwest::Client::new(), option).await,
            StatusCode::CREATED
        );
    }
    let before = counts(&app).await;
    assert_eq!(before, [34, 32, 25, 24]);
    let (dir, url) = app.stop().await;
    let app = TestApp::start(dir, url, |_| {}).await;
    assert_eq!(counts(&app).await, before);
    assert!(app.get_text(ARTICLE).await.contains("34 (29%)"));
}

#[tokio::test]
async fn export_gives_tallies_and_anonymous_votes_and_backup_copies_the_live_database() {
    let app = TestApp::spawn().await;
    let reader = app.reader();
    assert_eq!(app.vote(&reader, 2).await, StatusCode::CREATED);
    assert_eq!(app.vote(&app.reader(), 3).await, StatusCode::CREATED);

    let csv = Command::new(TRIBUNE)
        .args(["export", POLL, "--format", "csv"])
        .env("DATABASE_URL", &app.database_url)
        .output()
        .unwrap();
    assert!(
        csv.status.success(),
        "{}",
        String::from_utf8_lossy(&csv.stderr)
    );
    let csv = String::from_utf8(csv.stdout).unwrap();
    assert!(
        csv.starts_with("option,label,imported_votes,cast_votes,votes,percent\n"),
        "{csv}"
    );
    assert!(
        csv.contains("\n2,U.S. wants to deter Russia’s military and political activity,30,1,31,"),
        "{csv}"
    );
    assert!(csv.contains("cast_at,option\n"));
    assert_eq!(
        csv.lines()
            .filter(|l| l.starts_with("20") && (l.ends_with(",2") || l.ends_with(",3")))
            .count(),
        2,
        "{csv}"
    );

    let json = Command::new(TRIBUNE)
        .args(["export", POLL, "--format", "json"])
        .env("DATABASE_URL", &app.database_url)
        .output()
        .unwrap();
    assert!(json.status.success());
    let export: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(export["total_votes"], 110);
    assert_eq!(export["votes"].as_array().unwrap().len(), 2);
    let text = String::from_utf8_lossy(&json.stdout);
    assert!(
        !text.contains("voter") && !text.contains("address"),
        "anonymous: {text}"
    );

    let missing = Command::new(TRIBUNE)
        .args(["export", "no-such-poll"])
        .env("DATABASE_URL", &app.database_url)
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no-such-poll"));

    // A backup while the server runs is a complete, consistent database.
    if common::sqlite_only("`tribune backup` copies the SQLite file; the export above ran") {
        return;
    }
    let target = tempfile::tempdir().unwrap();
    let copy = target.path().join("backup.db");
    let backup = Command::new(TRIBUNE)
        .arg("backup")
        .arg(&copy)
        .env("DATABASE_URL", &app.database_url)
        .output()
        .unwrap();
    assert!(
        backup.status.success(),
        "{}",
        String::from_utf8_lossy(&backup.stderr)
    );
    let copy_url = format!("sqlite://{}", copy.display());
    let from_copy = Command::new(TRIBUNE)
        .args(["export", POLL, "--format", "json"])
        .env("DATABASE_URL", &copy_url)
        .output()
        .unwrap();
    let restored: serde_json::Value = serde_json::from_slice(&from_copy.stdout).unwrap();
    assert_eq!(restored["total_votes"], 110);
    // Refuses to overwrite.
    let again = Command::new(TRIBUNE)
        .arg("backup")
        .arg(&copy)
        .env("DATABASE_URL", &app.database_url)
        .output()
        .unwrap();
    assert!(!again.status.success());
}

#[tokio::test]
async fn a_vote_that_cannot_be_stored_gets_503_and_is_not_counted() {
    let app = TestApp::spawn().await;
    // Make every insert of a vote fail, as a full or broken disk would.
    let mut db = common::TestDb::connect(&app.database_url).await;
    db.refuse_inserts("votes", "broken_disk", "true", "disk is broken")
        .await;
    let reader = app.reader();
    let response = reader
        .post(app.url(&votes_url()))
        .json(&serde_json::json!({"option": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    assert!(response.headers().contains_key(header::RETRY_AFTER));
    let problem: serde_json::Value = response.json().await.unwrap();
    assert!(
        !problem["detail"]
            .as_str()
            .unwrap()
            .contains("disk is broken"),
        "no insides shown"
    );
    let form = reader
        .post(app.url(&format!("/polls/{POLL}/vote")))
        .form(&[("option", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(counts(&app).await, SEED_TALLIES);

    // Once the disk is healthy again the same reader votes normally.
    db.allow_inserts("votes", "broken_disk").await;
    db.close().await;
    assert_eq!(app.vote(&reader, 1).await, StatusCode::CREATED);
    assert_eq!(counts(&app).await, [34, 30, 24, 21]);
}

#[tokio::test]
async fn the_reader_cookie_is_secure_on_an_https_site() {
    let app = TestApp::spawn_with(|c| c.base_url = "https://news.example".into()).await;
    let response = app
        .reader()
        .post(app.url(&votes_url()))
        .json(&serde_json::json!({"option": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let cookie = response.headers()[header::SET_COOKIE].to_str().unwrap();
    assert!(
        cookie.contains("Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    let page = app.get_text(ARTICLE).await;
    assert!(
        page.contains("https://news.example/articles/csto-summit-2015"),
        "share links use the base URL"
    );
}

#[tokio::test]
async fn a_forged_cookie_is_a_new_reader() {
    let app = TestApp::spawn().await;
    let client = reqwest::Client::new();
    let forged = client
        .post(app.url(&votes_url()))
        .header(
            header::COOKIE,
            "tribune_reader=0123456789abcdef0123456789abcdef",
        )
        .json(&serde_json::json!({"option": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::CREATED);
    assert!(
        forged.headers()[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .starts_with("tribune_reader="),
        "an unsigned cookie is replaced"
    );
}

/// The signed cookie a server with `secret` gives the reader `id`.
fn signed_cookie(secret: &str, id: &str) -> String {
    use axum::response::IntoResponse;
    use axum_extra::extract::SignedCookieJar;
    use axum_extra::extract::cookie::Cookie;
    let keys = tribune::reader::Keys::derive(secret.as_bytes());
    let jar = SignedCookieJar::new(keys.cookie.clone())
        .add(Cookie::new(tribune::reader::COOKIE, id.to_owned()));
    let response = jar.into_response();
    let set_cookie = response.headers()[header::SET_COOKIE].to_str().unwrap();
    set_cookie.split(';').next().unwrap().to_owned()
}

/// The reader id in a signed cookie, checked with the server's secret.
fn reader_in(secret: &str, set_cookie: &str) -> uuid::Uuid {
    use axum_extra::extract::SignedCookieJar;
    let keys = tribune::reader::Keys::derive(secret.as_bytes());
    let mut headers = axum::http::HeaderMap::new();
    let pair = set_cookie.split(';').next().unwrap();
    headers.insert(header::COOKIE, pair.parse().unwrap());
    let jar = SignedCookieJar::from_headers(&headers, keys.cookie.clone());
    uuid::Uuid::parse_str(jar.get(tribune::reader::COOKIE).unwrap().value()).unwrap()
}

#[tokio::test]
async fn readers_given_random_ids_before_time_ordered_ones_still_vote_and_rate_as_themselves() {
    const SECRET: &str = "a secret for this test, longer than thirty-two characters";
    let app = TestApp::spawn_with(|config| config.secret = Some(SECRET.into())).await;

    // A new reader is given a time-ordered id (UUIDv7).
    let response = reqwest::Client::new()
        .post(app.url(&votes_url()))
        .json(&serde_json::json!({"option": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let set_cookie = response.headers()[header::SET_COOKIE].to_str().unwrap();
    assert_eq!(reader_in(SECRET, set_cookie).get_version_num(), 7);

    // A reader whose cookie holds a random id (UUIDv4), as given before.
    let old = uuid::Uuid::new_v4();
    let mut headers = header::HeaderMap::new();
    headers.insert(
        header::COOKIE,
        signed_cookie(SECRET, &old.simple().to_string())
            .parse()
            .unwrap(),
    );
    let old_reader = reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap();
    let response = old_reader
        .post(app.url(&votes_url()))
        .json(&serde_json::json!({"option": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert!(
        response.headers().get(header::SET_COOKIE).is_none(),
        "the reader keeps their cookie"
    );
    let poll = app.poll_json(&old_reader).await;
    assert_eq!(poll["your_vote"], 2);
    assert_eq!(tallies(&poll), [34, 31, 24, 21]);
    assert_eq!(app.vote(&old_reader, 3).await, StatusCode::CONFLICT);

    let rated = app.rate(&old_reader, 4).await;
    assert_eq!(rated.status(), StatusCode::OK);
    assert!(rated.headers().get(header::SET_COOKIE).is_none());
    assert_eq!(app.rating_json(&old_reader).await["your_rating"], 4);
    assert_eq!(app.rate(&old_reader, 2).await.status(), StatusCode::OK);
    let rating = app.rating_json(&old_reader).await;
    assert_eq!(rating["your_rating"], 2);
    assert_eq!(rating["count"], 1);
}
