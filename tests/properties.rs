//! Properties over generated input, checked with proptest:
//! - the content importer never panics on any front matter or Markdown: a
//!   file either imports (and its pages are served) or is refused with the
//!   file, the line where it is known, and the reason;
//! - the vote and rating forms, and the API's bodies, never answer 5xx to
//!   any text, and accept exactly the valid values.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking
mod common;

use std::path::Path;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::{POLL, RATING, TestRouter, body_text};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use tribune::content::{self, ImportError};
use tribune::store::Db;
use tribune::{AppState, Config};

const SITE: &str = "name = \"Tribune\"\n";
const ARTICLE_FILE: &str = "generated.md";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(ProptestConfig {
        cases,
        // Failures are reported with their smallest input; nothing is kept on disk.
        failure_persistence: None,
        ..ProptestConfig::default()
    })
}

// ---------------------------------------------------------------------------
// Content files

/// A TOML string holding any text (broken lines come from `Mistake`).
fn toml_string() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => any::<String>(),
        1 => "[a-zA-Z0-9 ]{1,12}",
    ]
    .prop_map(|s| toml::Value::String(s).to_string())
}

/// A slug as an editor might write it: mostly valid, sometimes not.
fn slug() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => "[a-z0-9]{1,8}(-[a-z0-9]{1,8}){0,2}",
        1 => "[a-zA-Z0-9_ -]{0,12}",
        1 => any::<String>(),
    ]
    .prop_map(|s| toml::Value::String(s).to_string())
}

fn datetime() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => Just("2026-12-31T00:00:00Z".to_owned()),
        3 => Just("2020-01-01T00:00:00+03:00".to_owned()),
        1 => Just("2026-12-31T00:00:00".to_owned()),
        3 => Just("2026-12-31".to_owned()),
        1 => Just("\"tomorrow\"".to_owned()),
        1 => "[0-9:TZ+-]{1,25}",
    ]
}

/// A poll option; numbered by its place unless the editor got its id wrong.
#[derive(Clone, Debug)]
struct OptionLine {
    id: Option<i64>,
    label: String,
    votes: Option<i64>,
}

impl OptionLine {
    fn line(&self, place: usize) -> String {
        let id = self
            .id
            .map_or_else(|| place.to_string(), |id| id.to_string());
        let label = &self.label;
        match self.votes {
            Some(votes) => format!("{{ id = {id}, label = {label}, votes = {votes} }}"),
            None => format!("{{ id = {id}, label = {label} }}"),
        }
    }
}

fn poll_option() -> impl Strategy<Value = OptionLine> {
    (
        prop_oneof![
            8 => Just(None),
            1 => (0_i64..6).prop_map(Some),
            1 => any::<i64>().prop_map(Some),
        ],
        toml_string(),
        prop::option::of(prop_oneof![8 => 0_i64..1_000, 1 => any::<i64>()]),
    )
        .prop_map(|(id, label, votes)| OptionLine { id, label, votes })
}

fn poll_table() -> impl Strategy<Value = Vec<String>> {
    (
        slug(),
        toml_string(),
        prop::option::of(prop_oneof![
            4 => Just("\"open\"".to_owned()),
            4 => Just("\"closed\"".to_owned()),
            1 => toml_string(),
        ]),
        prop::option::of(datetime()),
        prop_oneof![
            8 => prop::collection::vec(poll_option(), 2..6),
            1 => prop::collection::vec(poll_option(), 0..2),
        ],
    )
        .prop_map(|(id, question, status, closes_at, options)| {
            let mut lines = vec![
                "[poll]".to_owned(),
                format!("id = {id}"),
                format!("question = {question}"),
            ];
            lines.extend(status.map(|s| format!("status = {s}")));
            lines.extend(closes_at.map(|c| format!("closes_at = {c}")));
            let options: Vec<String> = options.iter().zip(1..).map(|(o, n)| o.line(n)).collect();
            lines.push(format!("options = [{}]", options.join(", ")));
            lines
        })
}

/// The front matter's lines, in an order TOML accepts.
fn front_matter() -> impl Strategy<Value = Vec<String>> {
    (
        toml_string(),
        prop::option::of(slug()),
        prop_oneof![
            4 => Just("\"en\"".to_owned()),
            4 => Just("\"ru\"".to_owned()),
            1 => toml_string()
        ],
        prop::option::of(datetime()),
        (toml_string(), toml_string()),
        prop::option::of((
            toml_string(),
            prop::option::of(toml_string()),
            prop::option::of(toml_string()),
        )),
        prop::option::of(poll_table()),
    )
        .prop_map(|(title, slug, lang, published, author, image, poll)| {
            let mut lines = vec![format!("title = {title}")];
            lines.extend(slug.map(|s| format!("slug = {s}")));
            lines.push(format!("lang = {lang}"));
            lines.extend(published.map(|p| format!("published = {p}")));
            lines.push("[author]".to_owned());
            lines.push(format!("name = {}", author.0));
            lines.push(format!("bio = {}", author.1));
            if let Some((credit, src, alt)) = image {
                lines.push("[image]".to_owned());
                lines.push(format!("credit = {credit}"));
                lines.extend(src.map(|s| format!("src = {s}")));
                lines.extend(alt.map(|a| format!("alt = {a}")));
            }
            lines.extend(poll.into_iter().flatten());
            lines
        })
}

/// A mistake an editor might make to a line list: none, mostly.
#[derive(Clone, Debug)]
enum Mistake {
    None,
    DropLine(usize),
    RepeatLine(usize),
    InsertLine(usize, String),
}

fn mistake() -> impl Strategy<Value = Mistake> {
    prop_oneof![
        12 => Just(Mistake::None),
        1 => any::<usize>().prop_map(Mistake::DropLine),
        1 => any::<usize>().prop_map(Mistake::RepeatLine),
        1 => (
            any::<usize>(),
            prop_oneof![
                Just("authr = \"x\"".to_owned()),
                Just("+++".to_owned()),
                Just("[poll]".to_owned()),
                Just("title = ".to_owned()),
                any::<String>(),
            ]
        )
            .prop_map(|(at, line)| Mistake::InsertLine(at, line)),
    ]
}

fn apply(mistake: &Mistake, lines: &mut Vec<String>) {
    match mistake {
        Mistake::None => {}
        Mistake::DropLine(at) if !lines.is_empty() => {
            lines.remove(at % lines.len());
        }
        Mistake::RepeatLine(at) if !lines.is_empty() => {
            let line = lines[at % lines.len()].clone();
            lines.insert(at % lines.len(), line);
        }
        Mistake::InsertLine(at, line) => {
            let at = at % (lines.len() + 1);
            lines.insert(at, line.clone());
        }
        _ => {}
    }
}

/// Markdown: paragraphs made of what articles hold, and of anything at all.
fn markdown() -> impl Strategy<Value = String> {
    let block = prop_oneof![
        3 => "[A-Za-z ,.]{1,40}",
        1 => Just("{{ image }}".to_owned()),
        1 => Just("> A pull quote.".to_owned()),
        1 => Just("# A heading".to_owned()),
        1 => Just("<b id=\"x\">bold</b> <script>alert(1)</script>".to_owned()),
        1 => Just("[a link](javascript:alert(1)) and ![img](x.png)".to_owned()),
        1 => Just("```\ncode\n```".to_owned()),
        1 => Just("+++".to_owned()),
        1 => Just("- a\n- b\n\n1. c".to_owned()),
        2 => any::<String>(),
    ];
    prop::collection::vec(block, 1..6).prop_map(|blocks| blocks.join("\n\n"))
}

/// A whole article file.
fn article_text() -> impl Strategy<Value = String> {
    prop_oneof![
        19 => (front_matter(), mistake(), markdown(), any::<bool>()).prop_map(
            |(mut lines, mistake, body, crlf)| {
                apply(&mistake, &mut lines);
                let text = format!("+++\n{}\n+++\n\n{body}\n", lines.join("\n"));
                if crlf { text.replace('\n', "\r\n") } else { text }
            }
        ),
        1 => any::<String>(),
    ]
}

/// A content folder with the site file and one article.
fn content_folder(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("articles")).unwrap();
    std::fs::write(dir.path().join("site.toml"), SITE).unwrap();
    std::fs::write(dir.path().join("articles").join(ARTICLE_FILE), text).unwrap();
    dir
}

/// A refusal names the article's file, a line that is in it, and a reason.
fn check_refusal(
    error: &content::ContentError,
    folder: &Path,
    text: &str,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(&error.file, &folder.join("articles").join(ARTICLE_FILE));
    prop_assert!(!error.message.trim().is_empty(), "a reason: {error}");
    if let Some(line) = error.line {
        let lines = text.matches('\n').count() + 1;
        prop_assert!(
            (1..=lines).contains(&line),
            "line {line} of {lines}: {error}"
        );
    }
    Ok(())
}

#[test]
fn any_article_file_is_read_or_refused_with_file_line_and_reason() {
    runner(512)
        .run(&article_text(), |text| {
            let folder = content_folder(&text);
            match content::parse(folder.path()) {
                Ok(content) => {
                    prop_assert_eq!(content.articles.len(), 1);
                    let article = &content.articles[0];
                    prop_assert!(content::is_valid_slug(&article.text.slug));
                    prop_assert!(!article.text.title.trim().is_empty());
                    if let Some(poll) = &article.poll {
                        prop_assert!(poll.options.len() >= 2);
                        let mut ids: Vec<u32> = poll.options.iter().map(|o| o.id).collect();
                        ids.sort_unstable();
                        ids.dedup();
                        prop_assert_eq!(ids.len(), poll.options.len());
                        prop_assert!(ids.iter().all(|&id| id > 0));
                    }
                }
                Err(error) => check_refusal(&error, folder.path(), &text)?,
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn a_file_that_is_not_utf8_is_refused_with_its_name() {
    let folder = content_folder("");
    let path = folder.path().join("articles").join(ARTICLE_FILE);
    std::fs::write(&path, b"+++\ntitle = \"\xff\xfe\"\n+++\n").unwrap();
    let error = content::parse(folder.path()).unwrap_err();
    assert_eq!(error.file, path);
    assert!(error.message.contains("cannot read"), "{error}");
}

/// Imports `text` into a fresh database: either it is imported and its
/// pages are served, or the import is refused with where and why and the
/// database keeps nothing of it.
async fn import_and_serve(text: &str) -> Result<(), TestCaseError> {
    let folder = content_folder(text);
    let data = tempfile::tempdir().unwrap();
    let url = common::fresh_database_url(data.path(), "tribune.db").await;
    let db = Db::open(&url).await.unwrap();
    let imported = content::import(&db, folder.path()).await;
    db.close().await;
    let mut check = common::TestDb::connect(&url).await;
    let articles = check.count("select count(*) from articles", &[]).await;
    check.close().await;
    match imported {
        Err(ImportError::Content(error)) => {
            check_refusal(&error, folder.path(), text)?;
            prop_assert_eq!(articles, 0, "a refused import writes nothing");
            return Ok(());
        }
        Err(other) => {
            return Err(TestCaseError::fail(format!(
                "refused for another reason than the file: {other}"
            )));
        }
        Ok(report) => prop_assert_eq!(report.articles, 1),
    }

    let parsed = content::parse(folder.path()).unwrap();
    let article = &parsed.articles[0];
    let mut config = Config::new(url, folder.path().to_owned());
    config.max_votes_per_address = None;
    let running = AppState::build(config).await.unwrap();
    let router = tribune::router(running.state);
    let app = TestRouter { router, dir: data };
    let slug = &article.text.slug;
    let mut paths = vec![
        "/".to_owned(),
        format!("/articles/{slug}"),
        format!("/articles/{slug}/print"),
        format!("/api/v1/articles/{slug}/rating"),
    ];
    if let Some(poll) = &article.poll {
        paths.push(format!("/api/v1/polls/{}", poll.id));
    }
    for path in paths {
        let response = app.get(&path).await;
        prop_assert_eq!(response.status(), StatusCode::OK, "GET {}", path);
    }
    Ok(())
}

#[test]
fn any_article_file_imports_and_is_served_or_is_refused_and_changes_nothing() {
    let rt = runtime();
    runner(64)
        .run(&article_text(), |text| rt.block_on(import_and_serve(&text)))
        .unwrap();
}

// ---------------------------------------------------------------------------
// Forms and bodies

/// Text a form field might carry: numbers written every which way, and anything.
fn field_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[ \t\n]{0,2}[+-]?0{0,3}[0-9]{1,3}[ \t\n]{0,2}",
        1 => "[0-9]{15,30}",
        1 => prop::sample::select(vec![
            "", " ", "2.0", "1e0", "0x2", "٣", "２", "three", "1,2", "2 2", "+", "-",
            "\u{a0}2\u{2003}", "NaN", "-0", "+0003",
        ])
        .prop_map(str::to_owned),
        3 => any::<String>(),
    ]
}

/// The whole number that `text` names, if it is only that: optional white
/// space, an optional `+`, ASCII digits, optional white space.
fn whole_number(text: &str) -> Option<u128> {
    let digits = text.trim_matches(char::is_whitespace);
    let digits = digits.strip_prefix('+').unwrap_or(digits);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let significant = digits.trim_start_matches('0');
    if significant.len() > 30 {
        return None;
    }
    Some(significant.parse().unwrap_or(0))
}

fn form(path: &str, body: Vec<u8>) -> Request<Body> {
    Request::post(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap()
}

fn encoded(field: &str, value: &str) -> Vec<u8> {
    format!("{field}={}", utf8_percent_encode(value, NON_ALPHANUMERIC)).into_bytes()
}

/// Sends a form with any `field` text: a valid one is taken (303 back to the
/// article), any other gets the 422 page; never a 5xx.
fn check_form_field(path: &str, field: &str, valid: std::ops::RangeInclusive<u128>, back: &str) {
    let rt = runtime();
    let app = rt.block_on(TestRouter::new());
    runner(256)
        .run(&field_text(), |text| {
            let response = rt.block_on(app.send(form(path, encoded(field, &text))));
            let status = response.status();
            let is_valid = whole_number(&text).is_some_and(|n| valid.contains(&n));
            if is_valid {
                prop_assert_eq!(status, StatusCode::SEE_OTHER, "{:?}", text);
                prop_assert_eq!(&response.headers()[header::LOCATION], back);
            } else {
                prop_assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", text);
                prop_assert_eq!(
                    &response.headers()[header::CONTENT_TYPE],
                    "text/html; charset=utf-8"
                );
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn the_vote_forms_option_accepts_exactly_the_polls_options() {
    check_form_field(
        &format!("/polls/{POLL}/vote"),
        "option",
        1..=4,
        "/articles/csto-summit-2015#poll",
    );
}

#[test]
fn the_rating_forms_stars_accepts_exactly_one_to_five() {
    check_form_field(
        "/articles/csto-summit-2015/rating",
        "stars",
        1..=5,
        "/articles/csto-summit-2015#rating",
    );
}

/// A form body that is anything at all: bytes, with or without the field.
fn form_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        any::<Vec<u8>>(),
        any::<String>().prop_map(String::into_bytes),
        (any::<String>(), any::<String>()).prop_map(|(k, v)| format!("{k}={v}").into_bytes()),
        "(option|stars)=[%0-9A-Fa-f+&=]{0,12}".prop_map(String::into_bytes),
    ]
}

#[test]
fn no_form_body_gets_a_server_error() {
    let rt = runtime();
    let app = rt.block_on(TestRouter::new());
    let paths = [
        format!("/polls/{POLL}/vote"),
        "/articles/csto-summit-2015/rating".to_owned(),
    ];
    runner(256)
        .run(&(form_body(), 0..paths.len()), |(body, which)| {
            let response = rt.block_on(app.send(form(&paths[which], body.clone())));
            let status = response.status();
            prop_assert!(
                status == StatusCode::SEE_OTHER || status.is_client_error(),
                "{status} for {:?}",
                String::from_utf8_lossy(&body)
            );
            Ok(())
        })
        .unwrap();
}

/// A JSON body: any JSON value, mostly objects with the right key.
fn json_body() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        (-2_i64..8).prop_map(serde_json::Value::from),
        (-2_i64..8).prop_map(|n| serde_json::Value::from(n as f64)),
        any::<f64>().prop_map(serde_json::Value::from),
        any::<String>().prop_map(serde_json::Value::from),
    ];
    let value = leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(any::<String>(), inner, 0..3)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    });
    prop_oneof![
        2 => (prop_oneof![Just("option"), Just("stars")], value.clone())
            .prop_map(|(key, v)| serde_json::json!({ key: v })),
        1 => value,
    ]
}

/// The whole number a JSON value is, however it is written (`2`, `2.0`, `2e0`).
fn whole(value: &serde_json::Value) -> Option<i64> {
    value.as_i64().or_else(|| {
        let n = value.as_f64()?;
        #[allow(clippy::cast_possible_truncation)]
        (n.fract() == 0.0 && n.abs() < 1e18).then_some(n as i64)
    })
}

#[test]
fn the_apis_bodies_accept_exactly_the_valid_ones_and_never_get_a_server_error() {
    let rt = runtime();
    let app = rt.block_on(TestRouter::new());
    let votes = format!("/api/v1/polls/{POLL}/votes");
    runner(256)
        .run(&(json_body(), any::<bool>()), |(body, is_vote)| {
            let (method, path, key, valid, ok) = if is_vote {
                ("POST", votes.as_str(), "option", 1..=4, StatusCode::CREATED)
            } else {
                ("PUT", RATING, "stars", 1..=5, StatusCode::OK)
            };
            let request = Request::builder()
                .method(method)
                .uri(path)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string()))
                .unwrap();
            let response = rt.block_on(app.send(request));
            let status = response.status();
            let is_valid = body.as_object().is_some_and(|object| {
                object.len() == 1
                    && object
                        .get(key)
                        .and_then(whole)
                        .is_some_and(|n| valid.contains(&n))
            });
            if is_valid {
                prop_assert_eq!(status, ok, "{}", body);
            } else {
                prop_assert!(
                    status == StatusCode::UNPROCESSABLE_ENTITY || status == StatusCode::BAD_REQUEST,
                    "{status} for {body}"
                );
                let text = rt.block_on(body_text(response));
                let problem: serde_json::Value = serde_json::from_str(&text).unwrap();
                prop_assert_eq!(&problem["status"], status.as_u16());
            }
            Ok(())
        })
        .unwrap();
}
