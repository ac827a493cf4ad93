//! The JSON API's HTTP caching (`ETag`, `304`) and its CORS: open for reads, closed for writes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking
mod common;

use common::{ARTICLE, POLL, RATING, TestApp};
use reqwest::header::{self, HeaderMap};
use reqwest::{Method, StatusCode};

const ELSEWHERE: &str = "https://elsewhere.example";

fn poll_url() -> String {
    format!("/api/v1/polls/{POLL}")
}

fn votes_url() -> String {
    format!("/api/v1/polls/{POLL}/votes")
}

async fn get(
    client: &reqwest::Client,
    url: &str,
    if_none_match: Option<&str>,
) -> reqwest::Response {
    let mut request = client.get(url);
    if let Some(tags) = if_none_match {
        request = request.header(header::IF_NONE_MATCH, tags);
    }
    request.send().await.unwrap()
}

fn etag(headers: &HeaderMap) -> String {
    headers
        .get(header::ETAG)
        .expect("a JSON read carries an ETag")
        .to_str()
        .unwrap()
        .to_owned()
}

/// The ETag of `path` as `client` sees it now.
async fn etag_of(app: &TestApp, client: &reqwest::Client, path: &str) -> String {
    let response = get(client, &app.url(path), None).await;
    assert_eq!(response.status(), StatusCode::OK, "GET {path}");
    etag(response.headers())
}

#[tokio::test]
async fn json_reads_carry_a_stable_weak_etag() {
    let app = TestApp::spawn().await;
    let client = reqwest::Client::new();
    for path in [poll_url(), RATING.to_owned()] {
        let first = etag_of(&app, &client, &path).await;
        assert!(first.starts_with("W/\"") && first.ends_with('"'), "{first}");
        assert_eq!(etag_of(&app, &client, &path).await, first, "{path}: stable");
        let head = client.head(app.url(&path)).send().await.unwrap();
        assert_eq!(head.status(), StatusCode::OK);
        assert_eq!(etag(head.headers()), first, "{path}: HEAD has GET's tag");
    }
    assert_ne!(
        etag_of(&app, &client, &poll_url()).await,
        etag_of(&app, &client, RATING).await
    );
}

#[tokio::test]
async fn a_matching_if_none_match_gets_304_with_no_body() {
    let app = TestApp::spawn().await;
    let client = reqwest::Client::new();
    for path in [poll_url(), RATING.to_owned()] {
        let url = app.url(&path);
        let tag = etag_of(&app, &client, &path).await;
        let strong = tag.trim_start_matches("W/").to_owned();
        for if_none_match in [
            tag.clone(),
            strong.clone(),
            format!("\"something-else\", {tag}"),
            format!("W/\"a\",{strong} , \"b\""),
            "*".to_owned(),
        ] {
            let response = get(&client, &url, Some(&if_none_match)).await;
            assert_eq!(
                response.status(),
                StatusCode::NOT_MODIFIED,
                "{path} with If-None-Match: {if_none_match}"
            );
            let headers = response.headers().clone();
            assert_eq!(etag(&headers), tag);
            assert_eq!(headers[header::VARY], "Cookie");
            assert!(headers.contains_key(header::CACHE_CONTROL));
            assert!(!headers.contains_key(header::CONTENT_TYPE));
            assert!(response.bytes().await.unwrap().is_empty());
        }
        let other = get(&client, &url, Some("W/\"something-else\"")).await;
        assert_eq!(other.status(), StatusCode::OK);
        assert_eq!(etag(other.headers()), tag);
        assert!(other.json::<serde_json::Value>().await.unwrap().is_object());
    }
}

#[tokio::test]
async fn a_vote_or_a_rating_changes_the_etag() {
    let app = TestApp::spawn().await;
    let anonymous = reqwest::Client::new();
    let poll_before = etag_of(&app, &anonymous, &poll_url()).await;
    let rating_before = etag_of(&app, &anonymous, RATING).await;

    assert_eq!(app.vote(&app.reader(), 2).await, StatusCode::CREATED);
    let poll_after = etag_of(&app, &anonymous, &poll_url()).await;
    assert_ne!(poll_after, poll_before);
    let stale = get(&anonymous, &app.url(&poll_url()), Some(&poll_before)).await;
    assert_eq!(
        stale.status(),
        StatusCode::OK,
        "a stale tag gets the new results"
    );
    assert_eq!(
        stale.json::<serde_json::Value>().await.unwrap()["total_votes"],
        109
    );

    assert_eq!(app.rate(&app.reader(), 4).await.status(), StatusCode::OK);
    let rating_after = etag_of(&app, &anonymous, RATING).await;
    assert_ne!(rating_after, rating_before);
    let stale = get(&anonymous, &app.url(RATING), Some(&rating_before)).await;
    assert_eq!(stale.status(), StatusCode::OK);
    assert_eq!(stale.json::<serde_json::Value>().await.unwrap()["count"], 1);
}

#[tokio::test]
async fn a_reader_with_a_vote_or_rating_has_a_tag_of_their_own() {
    let app = TestApp::spawn().await;
    let voter = app.reader();
    let anonymous = reqwest::Client::new();
    assert_eq!(app.vote(&voter, 3).await, StatusCode::CREATED);
    assert_eq!(app.rate(&voter, 5).await.status(), StatusCode::OK);

    for (path, own_field, own_value) in [
        (poll_url(), "your_vote", 3),
        (RATING.to_owned(), "your_rating", 5),
    ] {
        let url = app.url(&path);
        let mine = get(&voter, &url, None).await;
        assert_eq!(mine.headers()[header::CACHE_CONTROL], "private, no-cache");
        assert_eq!(mine.headers()[header::VARY], "Cookie");
        let my_tag = etag(mine.headers());
        assert_eq!(
            mine.json::<serde_json::Value>().await.unwrap()[own_field],
            own_value
        );

        let theirs = get(&anonymous, &url, None).await;
        let their_tag = etag(theirs.headers());
        assert_ne!(
            my_tag, their_tag,
            "{path}: the reader's own field is in the tag"
        );

        // The voter's tag never gets the anonymous reader a 304 (nor the reverse).
        let crossed = get(&anonymous, &url, Some(&my_tag)).await;
        assert_eq!(crossed.status(), StatusCode::OK);
        assert!(crossed.json::<serde_json::Value>().await.unwrap()[own_field].is_null());
        let crossed = get(&voter, &url, Some(&their_tag)).await;
        assert_eq!(crossed.status(), StatusCode::OK);
        assert_eq!(
            crossed.json::<serde_json::Value>().await.unwrap()[own_field],
            own_value
        );
        // Their own tags do.
        assert_eq!(
            get(&voter, &url, Some(&my_tag)).await.status(),
            StatusCode::NOT_MODIFIED
        );
        assert_eq!(
            get(&anonymous, &url, Some(&their_tag)).await.status(),
            StatusCode::NOT_MODIFIED
        );
    }
}

#[tokio::test]
async fn writes_errors_and_pages_carry_no_etag() {
    let app = TestApp::spawn().await;
    let client = reqwest::Client::new();
    let vote = client
        .post(app.url(&votes_url()))
        .json(&serde_json::json!({"option": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(vote.status(), StatusCode::CREATED);
    assert!(!vote.headers().contains_key(header::ETAG));
    let missing = get(&client, &app.url("/api/v1/polls/no-such-poll"), Some("*")).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert!(!missing.headers().contains_key(header::ETAG));
    let page = get(&client, &app.url(ARTICLE), None).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(!page.headers().contains_key(header::ETAG));
}

fn allowed_origin(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        .map(|v| v.to_str().unwrap())
}

#[tokio::test]
async fn reads_are_open_to_every_origin_and_expose_the_etag() {
    let app = TestApp::spawn().await;
    let client = reqwest::Client::new();
    for path in [
        poll_url(),
        RATING.to_owned(),
        format!("/api/v1/polls/{POLL}/events"),
        "/api/v1/articles/csto-summit-2015/events".to_owned(),
    ] {
        let response = client
            .get(app.url(&path))
            .header(header::ORIGIN, ELSEWHERE)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let headers = response.headers();
        assert_eq!(allowed_origin(headers), Some("*"), "{path}");
        let exposed = headers[header::ACCESS_CONTROL_EXPOSE_HEADERS]
            .to_str()
            .unwrap()
            .to_ascii_lowercase();
        assert!(exposed.contains("etag"), "{path}: {exposed}");
        assert!(!headers.contains_key(header::ACCESS_CONTROL_ALLOW_CREDENTIALS));
    }
    // A read's preflight (If-None-Match is not a simple header) is granted.
    let preflight = client
        .request(Method::OPTIONS, app.url(&poll_url()))
        .header(header::ORIGIN, ELSEWHERE)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "GET")
        .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "if-none-match")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success());
    let headers = preflight.headers();
    assert_eq!(allowed_origin(headers), Some("*"));
    let methods = headers[header::ACCESS_CONTROL_ALLOW_METHODS]
        .to_str()
        .unwrap();
    assert!(methods.contains("GET") && !methods.contains("POST") && !methods.contains("PUT"));
    let allowed = headers[header::ACCESS_CONTROL_ALLOW_HEADERS]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(allowed.contains("if-none-match"), "{allowed}");
    // Pages are not part of the API.
    let page = client
        .get(app.url(ARTICLE))
        .header(header::ORIGIN, ELSEWHERE)
        .send()
        .await
        .unwrap();
    assert_eq!(allowed_origin(page.headers()), None);
}

#[tokio::test]
async fn writes_get_no_cors_grant_nor_a_preflight() {
    let app = TestApp::spawn().await;
    let client = reqwest::Client::new();
    // With an Origin (refused by the cross-site guard) or without one (counted),
    // a write's answer never carries a CORS grant.
    for origin in [Some(ELSEWHERE), None] {
        let mut vote = client
            .post(app.url(&votes_url()))
            .json(&serde_json::json!({"option": 1}));
        let mut rate = client
            .put(app.url(RATING))
            .json(&serde_json::json!({"stars": 4}));
        if let Some(origin) = origin {
            vote = vote.header(header::ORIGIN, origin);
            rate = rate.header(header::ORIGIN, origin);
        }
        for (what, response) in [
            ("POST", vote.send().await.unwrap()),
            ("PUT", rate.send().await.unwrap()),
        ] {
            let expected = if origin.is_some() {
                StatusCode::FORBIDDEN
            } else if what == "POST" {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            assert_eq!(response.status(), expected, "{what} from {origin:?}");
            assert_eq!(
                allowed_origin(response.headers()),
                None,
                "{what} from {origin:?}"
            );
            assert!(
                !response
                    .headers()
                    .contains_key(header::ACCESS_CONTROL_EXPOSE_HEADERS)
            );
        }
    }
    for (method, path) in [("POST", votes_url()), ("PUT", RATING.to_owned())] {
        let preflight = client
            .request(Method::OPTIONS, app.url(&path))
            .header(header::ORIGIN, ELSEWHERE)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, method)
            .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "content-type")
            .send()
            .await
            .unwrap();
        assert!(
            !preflight.status().is_success(),
            "{method} preflight: {}",
            preflight.status()
        );
        let headers = preflight.headers();
        assert_eq!(allowed_origin(headers), None, "{method} preflight");
        assert!(!headers.contains_key(header::ACCESS_CONTROL_ALLOW_METHODS));
        assert!(!headers.contains_key(header::ACCESS_CONTROL_ALLOW_HEADERS));
    }
}
