//! `--trusted-proxy` with CIDR ranges.
//!
//! Clients bound to other loopback addresses (127.0.0.2, …) are other
//! addresses to the server.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking
mod common;

use std::net::IpAddr;

use common::{POLL, TestApp};
use reqwest::StatusCode;

/// A client whose requests come from `ip` (a loopback address).
fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
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

#[test]
fn a_malformed_trusted_proxy_stops_the_start_with_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tribune"))
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--trusted-proxy",
            "10.0.0.0/33",
        ])
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.path().join("t.db").display()),
        )
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("10.0.0.0/33"), "{stderr}");
    assert!(stderr.contains("CIDR"), "{stderr}");
}
