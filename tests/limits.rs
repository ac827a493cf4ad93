//! `--rate-limit` per address, and `--trusted-proxy` with CIDR ranges.
//!
//! Clients bound to other loopback addresses (127.0.0.2, …) are other
//! addresses to the server.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking
mod common;

use std::net::IpAddr;
use std::process::Child;

use common::{ARTICLE, POLL, TestApp, spawn_binary};
use reqwest::StatusCode;
use reqwest::header;

/// A client whose requests come from `ip` (a loopback address).
fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

fn poll_url(base: &str) -> String {
    format!("{base}/api/v1/polls/{POLL}")
}

/// GETs `url` `times` times in a row, optionally as forwarded for `xff`; the statuses.
async fn statuses(
    client: &reqwest::Client,
    url: &str,
    xff: Option<&str>,
    times: usize,
) -> Vec<StatusCode> {
    let mut statuses = Vec::with_capacity(times);
    for _ in 0..times {
        let mut request = client.get(url);
        if let Some(xff) = xff {
            request = request.header("x-forwarded-for", xff);
        }
        statuses.push(request.send().await.unwrap().status());
    }
    statuses
}

fn refused(statuses: &[StatusCode]) -> bool {
    statuses.contains(&StatusCode::TOO_MANY_REQUESTS)
}

#[tokio::test]
async fn beyond_the_rate_an_address_gets_429_with_retry_after_as_problem_json() {
    let app = TestApp::spawn_with(|c| c.rate_limit = Some(2)).await;
    let url = poll_url(&app.base);
    let greedy = client_from("127.0.0.2");
    // A burst of 2 passes; the rest of a quick run is refused.
    let run = statuses(&greedy, &url, None, 10).await;
    assert_eq!(run[..2], [StatusCode::OK, StatusCode::OK], "{run:?}");
    assert!(refused(&run[2..]), "{run:?}");

    let response = greedy.get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response.headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "Retry-After: {retry_after}");
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    let problem: serde_json::Value = response.json().await.unwrap();
    assert_eq!(problem["status"], 429);
    assert_eq!(problem["code"], "rate-limited");
    assert!(problem["detail"].as_str().unwrap().contains("wait"));

    // Writes count too, and are refused the same way.
    let vote = greedy
        .post(format!("{url}/votes"))
        .json(&serde_json::json!({"option": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(vote.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        vote.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );

    // Outside the API the refusal is the HTML error page, not the library's text.
    let page = greedy.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(page.headers().contains_key(header::RETRY_AFTER));
    assert!(
        page.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );

    // Another address has its own quota.
    let other = client_from("127.0.0.3");
    assert_eq!(
        statuses(&other, &url, None, 2).await,
        [StatusCode::OK, StatusCode::OK]
    );
}

#[tokio::test]
async fn the_cached_anonymous_page_is_outside_the_limit() {
    let app = TestApp::spawn_with(|c| c.rate_limit = Some(2)).await;
    // The first view fills the page cache (through the router).
    assert_eq!(
        client_from("127.0.0.4")
            .get(app.url(ARTICLE))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let reader = client_from("127.0.0.5");
    assert!(refused(
        &statuses(&reader, &poll_url(&app.base), None, 10).await
    ));
    let pages = statuses(&reader, &app.url(ARTICLE), None, 10).await;
    assert!(pages.iter().all(|s| *s == StatusCode::OK), "{pages:?}");
}

/// The real binary with `extra` arguments, on the seed content.
async fn binary(dir: &tempfile::TempDir, extra: &[&str]) -> (Child, String) {
    let content = dir.path().join("content");
    common::copy_dir(&common::repo_content(), &content);
    let database_url = common::fresh_database_url(dir.path(), "tribune.db").await;
    spawn_binary(&database_url, &content, extra)
}

#[tokio::test]
async fn the_flag_sets_the_rate_and_zero_turns_it_off() {
    let limited_dir = tempfile::tempdir().unwrap();
    let open_dir = tempfile::tempdir().unwrap();
    let (mut limited, limited_base) = binary(&limited_dir, &["--rate-limit", "2"]).await;
    let (mut open, open_base) = binary(&open_dir, &["--rate-limit", "0"]).await;
    let client = client_from("127.0.0.6");
    let limited_run = statuses(&client, &poll_url(&limited_base), None, 10).await;
    let open_run = statuses(&client, &poll_url(&open_base), None, 50).await;
    limited.kill().unwrap();
    open.kill().unwrap();
    let _ = limited.wait();
    let _ = open.wait();
    assert!(refused(&limited_run), "--rate-limit 2: {limited_run:?}");
    assert!(
        open_run.iter().all(|s| *s == StatusCode::OK),
        "--rate-limit 0: {open_run:?}"
    );
}

#[tokio::test]
async fn the_rate_keys_on_the_client_a_cidr_trusted_proxy_names() {
    let app = TestApp::spawn_with(|c| {
        c.rate_limit = Some(2);
        c.trusted_proxies = "127.0.0.0/30, 2001:db8::/32".parse().unwrap();
    })
    .await;
    let url = poll_url(&app.base);
    // 127.0.0.2 is inside 127.0.0.0/30: the client it names is the address.
    let proxy = client_from("127.0.0.2");
    assert!(refused(
        &statuses(&proxy, &url, Some("203.0.113.1"), 10).await
    ));
    assert_eq!(
        statuses(&proxy, &url, Some("203.0.113.2"), 2).await,
        [StatusCode::OK, StatusCode::OK],
        "another forwarded client has its own quota"
    );
    // One IPv6 /64 is one address, whichever of its addresses it uses.
    assert_eq!(
        statuses(&proxy, &url, Some("2001:db8:1:2::1"), 2).await,
        [StatusCode::OK, StatusCode::OK]
    );
    assert_eq!(
        statuses(&proxy, &url, Some("2001:db8:1:2::99"), 1).await,
        [StatusCode::TOO_MANY_REQUESTS]
    );
    assert_eq!(
        statuses(&proxy, &url, Some("2001:db8:1:3::1"), 1).await,
        [StatusCode::OK]
    );
    // 127.0.0.7 is outside the range: what it forwards is not believed.
    let stranger = client_from("127.0.0.7");
    let spoofed = [
        "198.51.100.1",
        "198.51.100.2",
        "198.51.100.3",
        "198.51.100.4",
        "198.51.100.5",
    ];
    let mut run = Vec::new();
    for xff in spoofed {
        run.extend(statuses(&stranger, &url, Some(xff), 1).await);
    }
    assert!(refused(&run), "{run:?}");
}

#[tokio::test]
async fn the_vote_cap_believes_a_proxy_given_as_an_ipv4_mapped_range() {
    let app = TestApp::spawn_with(|c| {
        c.max_votes_per_address = Some(1);
        c.trusted_proxies = "::ffff:127.0.0.0/120".parse().unwrap();
    })
    .await;
    let proxy = client_from("127.0.0.8");
    let vote = |xff: &'static str| {
        proxy
            .post(app.url(&format!("/api/v1/polls/{POLL}/votes")))
            .header("x-forwarded-for", xff)
            .json(&serde_json::json!({"option": 1}))
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
    // Outside the range (127.0.1.0 is not in 127.0.0.0/24), the peer is the address.
    let stranger = client_from("127.0.1.1");
    let vote = |xff: &'static str| {
        stranger
            .post(app.url(&format!("/api/v1/polls/{POLL}/votes")))
            .header("x-forwarded-for", xff)
            .json(&serde_json::json!({"option": 1}))
            .send()
    };
    assert_eq!(
        vote("203.0.113.3").await.unwrap().status(),
        StatusCode::CREATED
    );
    assert_eq!(
        vote("203.0.113.4").await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn a_malformed_trusted_proxy_stops_the_start_with_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = common::fresh_database_url(dir.path(), "t.db").await;
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tribune"))
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--trusted-proxy",
            "10.0.0.0/33",
        ])
        .env("DATABASE_URL", database_url)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("10.0.0.0/33"), "{stderr}");
    assert!(stderr.contains("CIDR"), "{stderr}");
}
