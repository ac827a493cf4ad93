//! The API's errors: problem+json for everything under `/api/v1`, the router's
//! own answers included, with details a person can act on; pages keep their
//! HTML error pages.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking
mod common;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, Response, StatusCode, header};
use axum::routing::{get, post};
use common::{POLL, RATING, TestRouter, body_text, test_state};
use tower::ServiceExt;
use tower_http::timeout::TimeoutLayer;

/// Words that show a detail was written for Rust, not for people.
const RUST_WORDS: [&str; 9] = [
    "struct",
    "VoteRequest",
    "RatingRequest",
    "i64",
    "u32",
    "serde",
    "deserialize",
    "line 1",
    "Invalid URL",
];

/// Checks `response` is the problem+json for `status` and gives its body.
async fn problem(response: Response<Body>, status: StatusCode, case: &str) -> serde_json::Value {
    assert_eq!(response.status(), status, "{case}");
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/problem+json",
        "{case}"
    );
    let problem: serde_json::Value = serde_json::from_str(&body_text(response).await).unwrap();
    assert_eq!(problem["status"], status.as_u16(), "{case}");
    assert!(problem["title"].is_string(), "{case}");
    assert!(problem["code"].is_string(), "{case}");
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.ends_with('.'), "{case}: a sentence: {detail}");
    for word in RUST_WORDS {
        assert!(!detail.contains(word), "{case}: {detail}");
    }
    problem
}

fn request(method: Method, path: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .body(Body::empty())
        .unwrap()
}

fn json(method: Method, path: &str, body: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

#[tokio::test]
async fn the_routers_own_errors_under_the_api_are_problems() {
    let app = TestRouter::new().await;
    let votes = format!("/api/v1/polls/{POLL}/votes");
    let poll = format!("/api/v1/polls/{POLL}");

    let response = app.get("/api/v1/no-such-thing").await;
    problem(response, StatusCode::NOT_FOUND, "unknown route").await;
    let response = app.get("/api/v2").await;
    problem(response, StatusCode::NOT_FOUND, "unknown version").await;

    for (method, path, allow) in [
        (Method::GET, votes.as_str(), "POST"),
        (Method::DELETE, poll.as_str(), "GET,HEAD"),
        (Method::POST, RATING, "GET,HEAD,PUT"),
        (Method::PATCH, "/api/v1/polls/no-such-poll", "GET,HEAD"),
    ] {
        let case = format!("{method} {path}");
        let response = app.send(request(method.clone(), path)).await;
        assert_eq!(response.headers()[header::ALLOW], allow, "{case}");
        let body = problem(response, StatusCode::METHOD_NOT_ALLOWED, &case).await;
        assert_eq!(body["code"], "method-not-allowed", "{case}");
        assert!(
            body["detail"].as_str().unwrap().contains(method.as_str()),
            "{case}: {body}"
        );
    }

    for path in [
        "/api/v1/polls/%FF",
        "/api/v1/polls/%FF/votes",
        "/api/v1/articles/%C3%28/rating",
        "/api/v1/articles/%FF/events",
    ] {
        let method = if path.ends_with("/votes") {
            Method::POST
        } else {
            Method::GET
        };
        let response = app.send(json(method, path, r#"{"option": 1}"#)).await;
        problem(response, StatusCode::BAD_REQUEST, path).await;
    }
}

#[tokio::test]
async fn pages_keep_their_html_error_pages() {
    let app = TestRouter::new().await;
    let response = app.get("/no-such-page").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/html; charset=utf-8"
    );
    let response = app
        .send(request(Method::DELETE, "/articles/csto-summit-2015"))
        .await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()[header::ALLOW], "GET,HEAD");
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/html; charset=utf-8"
    );
    assert!(body_text(response).await.contains("<h1"));
}

async fn panics() -> &'static str {
    panic!("secret insides of the failure")
}

/// The real layers around routes that fail on purpose.
async fn failing_router() -> (Router, tempfile::TempDir) {
    let (state, dir) = test_state(&[]).await;
    let slow = Router::new()
        .route(
            "/api/v1/slow",
            post(|| async {
                tokio::time::sleep(Duration::from_secs(10)).await;
                "done"
            }),
        )
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_millis(20),
        ));
    let routes = Router::new()
        .route("/api/v1/panic", get(panics))
        .route("/panic", get(panics))
        .merge(slow);
    (
        tribune::app::with_layers(routes, None).with_state(state),
        dir,
    )
}

#[tokio::test]
async fn a_panic_is_a_500_problem_that_shows_nothing_of_it() {
    let (router, _dir) = failing_router().await;
    let response = router
        .clone()
        .oneshot(request(Method::GET, "/api/v1/panic"))
        .await
        .unwrap();
    let body = problem(response, StatusCode::INTERNAL_SERVER_ERROR, "panic").await;
    assert_eq!(body["detail"], "Something went wrong on our side.");
    assert!(!body.to_string().contains("secret"), "{body}");

    // A page that panics gets the HTML page, just as bare of detail.
    let response = router
        .oneshot(request(Method::GET, "/panic"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/html; charset=utf-8"
    );
    assert!(!body_text(response).await.contains("secret"));
}

#[tokio::test]
async fn a_timeout_is_a_408_problem() {
    let (router, _dir) = failing_router().await;
    let response = router
        .oneshot(request(Method::POST, "/api/v1/slow"))
        .await
        .unwrap();
    let body = problem(response, StatusCode::REQUEST_TIMEOUT, "timeout").await;
    assert_eq!(body["code"], "timeout");
}

#[tokio::test]
async fn body_errors_say_what_the_body_should_be() {
    let app = TestRouter::new().await;
    let votes = format!("/api/v1/polls/{POLL}/votes");
    for (case, body, status, hint) in [
        (
            "a string",
            r#""1""#,
            StatusCode::UNPROCESSABLE_ENTITY,
            r#"{"option": 2}"#,
        ),
        (
            "option as text",
            r#"{"option": "two"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "a whole number from 1",
        ),
        (
            "option zero",
            r#"{"option": 0}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "a whole number from 1",
        ),
        (
            "no option",
            "{}",
            StatusCode::UNPROCESSABLE_ENTITY,
            "Choose an option",
        ),
        (
            "unknown field",
            r#"{"option": 1, "weight": 9}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            r#"{"option": 2}"#,
        ),
        (
            "malformed",
            r#"{"option": "#,
            StatusCode::BAD_REQUEST,
            "not valid JSON",
        ),
        (
            "no such option",
            r#"{"option": 9}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "no option 9",
        ),
    ] {
        let response = app.send(json(Method::POST, &votes, body)).await;
        let body = problem(response, status, case).await;
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.contains(hint), "{case}: {detail}");
    }
    for (case, body, status, hint) in [
        (
            "five as text",
            r#"{"stars": "five"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "from 1 to 5",
        ),
        (
            "six",
            r#"{"stars": 6}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "from 1 to 5",
        ),
        (
            "an array",
            "[4]",
            StatusCode::UNPROCESSABLE_ENTITY,
            r#"{"stars": 4}"#,
        ),
        (
            "malformed",
            r#"{"stars"#,
            StatusCode::BAD_REQUEST,
            r#"{"stars": 4}"#,
        ),
    ] {
        let response = app.send(json(Method::PUT, RATING, body)).await;
        let body = problem(response, status, case).await;
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.contains(hint), "{case}: {detail}");
    }
    let response = app
        .send(
            Request::put(RATING)
                .header(header::CONTENT_TYPE, "text/plain")
                .body(Body::from(r#"{"stars": 4}"#))
                .unwrap(),
        )
        .await;
    let body = problem(response, StatusCode::UNSUPPORTED_MEDIA_TYPE, "text/plain").await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("Content-Type: application/json")
    );
}

/// The same mistake in a vote or a rating, sent through the form and through
/// the API: the same status and the same detail, shown on the HTML page and
/// in the problem, whose code is the one the contract names (the page does
/// not show its code; both faces are made from the newtype's one parser).
#[tokio::test]
async fn the_same_bad_value_gets_the_same_problem_through_a_form_and_the_api() {
    let app = TestRouter::new().await;
    let vote_form = format!("/polls/{POLL}/vote");
    let votes = format!("/api/v1/polls/{POLL}/votes");
    let vote = (vote_form.as_str(), Method::POST, votes.as_str(), "option");
    let rate = (
        "/articles/csto-summit-2015/rating",
        Method::PUT,
        RATING,
        "stars",
    );
    // The field's value in the form and in the JSON body; `None` leaves it out.
    let cases = [
        ("no option", &vote, None, None, "invalid-body"),
        ("option zero", &vote, Some("0"), Some("0"), "invalid-body"),
        (
            "negative option",
            &vote,
            Some("-1"),
            Some("-1"),
            "invalid-body",
        ),
        (
            "option as text",
            &vote,
            Some("two"),
            Some(r#""two""#),
            "invalid-body",
        ),
        (
            "fractional option",
            &vote,
            Some("1.5"),
            Some("1.5"),
            "invalid-body",
        ),
        (
            "huge option",
            &vote,
            Some("100000000000000000000"),
            Some("1e20"),
            "invalid-body",
        ),
        (
            "an option the poll lacks",
            &vote,
            Some("9"),
            Some("9"),
            "no-such-option",
        ),
        ("no stars", &rate, None, None, "invalid-body"),
        ("zero stars", &rate, Some("0"), Some("0"), "invalid-body"),
        ("six stars", &rate, Some("6"), Some("6"), "invalid-body"),
        (
            "stars as text",
            &rate,
            Some("many"),
            Some(r#""many""#),
            "invalid-body",
        ),
        (
            "fractional stars",
            &rate,
            Some("4.5"),
            Some("4.5"),
            "invalid-body",
        ),
    ];
    for (case, (form_path, method, api_path, field), form_value, json_value, code) in cases {
        let body = json_value.map_or("{}".to_owned(), |v| format!(r#"{{"{field}": {v}}}"#));
        let response = app.send(json(method.clone(), api_path, &body)).await;
        let problem = problem(response, StatusCode::UNPROCESSABLE_ENTITY, case).await;
        assert_eq!(problem["type"], "about:blank", "{case}");
        assert_eq!(problem["code"], code, "{case}");

        let form = form_value.map_or(String::new(), |v| format!("{field}={v}"));
        let page = app
            .send(
                Request::post(*form_path)
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(Body::from(form))
                    .unwrap(),
            )
            .await;
        assert_eq!(
            page.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "form: {case}"
        );
        assert!(
            page.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "form: {case}"
        );
        let page = body_text(page).await;
        for part in ["title", "detail"] {
            let text = problem[part].as_str().unwrap();
            assert!(
                page.contains(&format!(">{}<", html_escaped(text))),
                "form: {case}: the page shows the problem's {part} {text:?}: {page}"
            );
        }
    }
}

/// `text` as Askama writes it into a page.
fn html_escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

#[tokio::test]
async fn an_unknown_poll_or_article_is_404_whatever_the_body() {
    let app = TestRouter::new().await;
    let bodies = [
        ("malformed", Some("application/json"), "{"),
        ("wrong shape", Some("application/json"), r#""x""#),
        ("not JSON", Some("text/plain"), "x"),
        ("no content type", None, "x"),
        (
            "good",
            Some("application/json"),
            r#"{"option": 1, "stars": 4}"#,
        ),
    ];
    for (method, path) in [
        (Method::POST, "/api/v1/polls/no-such-poll/votes"),
        (Method::PUT, "/api/v1/articles/no-such-article/rating"),
    ] {
        for (case, content_type, body) in bodies {
            let mut request = Request::builder().method(method.clone()).uri(path);
            if let Some(content_type) = content_type {
                request = request.header(header::CONTENT_TYPE, content_type);
            }
            let response = app.send(request.body(Body::from(body)).unwrap()).await;
            let case = format!("{method} {path}: {case}");
            let body = problem(response, StatusCode::NOT_FOUND, &case).await;
            assert_eq!(body["code"], "not-found", "{case}");
        }
    }
}
