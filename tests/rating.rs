//! Rating an article: one rating per reader, changeable; exact averages; JSON-LD.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking
mod common;

use common::{ARTICLE, RATING, TestApp};
use reqwest::StatusCode;
use reqwest::header;

/// The JSON-LD block of a page, parsed.
fn json_ld(page: &str) -> serde_json::Value {
    let start = page
        .find(r#"<script type="application/ld+json">"#)
        .expect("JSON-LD")
        + r#"<script type="application/ld+json">"#.len();
    let end = start + page[start..].find("</script>").unwrap();
    serde_json::from_str(&page[start..end]).expect("valid JSON")
}

#[tokio::test]
async fn nobody_has_rated_yet() {
    let app = TestApp::spawn().await;
    let json = app.rating_json(&reqwest::Client::new()).await;
    assert_eq!(
        json,
        serde_json::json!({
            "article": "csto-summit-2015",
            "average": null,
            "count": 0,
            "distribution": {"1": 0, "2": 0, "3": 0, "4": 0, "5": 0},
            "your_rating": null
        })
    );
    let page = app.get_text(ARTICLE).await;
    assert_eq!(page.matches("(no votes)").count(), 2, "top and bottom");
    let ld = json_ld(&page);
    assert_eq!(ld["@type"], "Article");
    assert_eq!(
        ld["headline"],
        "CSTO Summit 2015: New Threats and the Case for Soft Power"
    );
    assert_eq!(ld["author"]["@type"], "Person");
    assert_eq!(ld["author"]["name"], "Yulia Nikitina");
    assert_eq!(
        ld["publisher"]["name"],
        "Russian International Affairs Council"
    );
    assert_eq!(ld["inLanguage"], "en");
    assert_eq!(ld["image"]["creditText"], "Photo: www.odkb-csto.org");
    assert!(
        ld.get("aggregateRating").is_none(),
        "no AggregateRating without ratings"
    );
}

#[tokio::test]
async fn the_form_saves_a_rating_and_redirects_back_to_it() {
    let app = TestApp::spawn().await;
    let reader = app.reader();
    let response = reader
        .post(app.url("/articles/csto-summit-2015/rating"))
        .form(&[("stars", "4")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        response.headers()[header::LOCATION],
        "/articles/csto-summit-2015#rating"
    );
    assert!(
        response.headers()[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("HttpOnly")
    );
    let page = reader
        .get(app.url(ARTICLE))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(page.matches("(1 vote)").count(), 2);
    assert!(page.contains(">4.0<"), "the average to one decimal");
    assert_eq!(
        page.matches(r#"name="stars" value="4" checked"#).count(),
        2,
        "the reader's rating is marked in both widgets"
    );
    assert!(!page.contains("data-rating-yours hidden"));
    // Another reader sees the average but no marked star.
    let other = app.get_text(ARTICLE).await;
    assert!(other.contains("(1 vote)") && !other.contains(" checked"));
    let ld = json_ld(&other);
    assert_eq!(ld["aggregateRating"]["@type"], "AggregateRating");
    assert_eq!(ld["aggregateRating"]["ratingValue"], 4.0);
    assert_eq!(ld["aggregateRating"]["ratingCount"], 1);
    assert_eq!(ld["aggregateRating"]["bestRating"], 5);
    assert_eq!(ld["aggregateRating"]["worstRating"], 1);
}

#[tokio::test]
async fn a_reader_may_change_their_mind() {
    let app = TestApp::spawn().await;
    let reader = app.reader();
    let first = app.rate(&reader, 2).await;
    assert_eq!(first.status(), StatusCode::OK);
    let json: serde_json::Value = first.json().await.unwrap();
    assert_eq!(
        (
            json["count"].clone(),
            json["average"].clone(),
            json["your_rating"].clone()
        ),
        (1.into(), 2.0.into(), 2.into())
    );
    let second: serde_json::Value = app.rate(&reader, 5).await.json().await.unwrap();
    assert_eq!(second["count"], 1, "a change replaces, it does not add");
    assert_eq!(second["average"], 5.0);
    assert_eq!(
        second["distribution"],
        serde_json::json!({"1": 0, "2": 0, "3": 0, "4": 0, "5": 1})
    );
    assert_eq!(app.rating_json(&reader).await["your_rating"], 5);

    let other = app.reader();
    let both: serde_json::Value = app.rate(&other, 2).await.json().await.unwrap();
    assert_eq!(both["count"], 2);
    assert_eq!(both["average"], 3.5);
    assert_eq!(both["your_rating"], 2);
    assert_eq!(
        app.rating_json(&reqwest::Client::new()).await["your_rating"],
        serde_json::Value::Null
    );
    let page = app.get_text(ARTICLE).await;
    assert!(page.contains(">3.5<") && page.contains("(2 votes)"));
}

#[tokio::test]
async fn bad_ratings_get_a_problem_and_change_nothing() {
    let app = TestApp::spawn().await;
    let client = reqwest::Client::new();
    let put = |body: &str| {
        client
            .put(app.url(RATING))
            .header(header::CONTENT_TYPE, "application/json")
            .body(body.to_owned())
    };
    for (case, request, expected) in [
        (
            "zero stars",
            put(r#"{"stars": 0}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "six stars",
            put(r#"{"stars": 6}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "negative",
            put(r#"{"stars": -3}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "fraction",
            put(r#"{"stars": 4.5}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "text",
            put(r#"{"stars": "five"}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        ("missing", put(r#"{}"#), StatusCode::UNPROCESSABLE_ENTITY),
        ("malformed", put(r#"{"stars"#), StatusCode::BAD_REQUEST),
        (
            "wrong type",
            client
                .put(app.url(RATING))
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body("stars=4"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "unknown article",
            client
                .put(app.url("/api/v1/articles/nope/rating"))
                .json(&serde_json::json!({"stars": 4})),
            StatusCode::NOT_FOUND,
        ),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), expected, "{case}");
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json",
            "{case}"
        );
        assert!(
            !response.headers().contains_key(header::SET_COOKIE),
            "{case}"
        );
    }
    let missing = client
        .get(app.url("/api/v1/articles/nope/rating"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let form = |slug: &str, body: &'static [(&'static str, &'static str)]| {
        client
            .post(app.url(&format!("/articles/{slug}/rating")))
            .form(body)
    };
    for (case, request, expected) in [
        (
            "no stars",
            form("csto-summit-2015", &[]),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "seven stars",
            form("csto-summit-2015", &[("stars", "7")]),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "text",
            form("csto-summit-2015", &[("stars", "many")]),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "unknown article",
            form("nope", &[("stars", "3")]),
            StatusCode::NOT_FOUND,
        ),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), expected, "form: {case}");
        assert!(
            response.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
    }
    assert_eq!(app.rating_json(&client).await["count"], 0);
}

#[tokio::test]
async fn five_hundred_parallel_raters_give_an_exact_count_and_average() {
    let app = TestApp::spawn().await;
    let mut tasks = Vec::new();
    for i in 0..500_u32 {
        let url = app.url(RATING);
        tasks.push(tokio::spawn(async move {
            let stars = i % 5 + 1;
            let response = reqwest::Client::new()
                .put(url)
                .json(&serde_json::json!({ "stars": stars }))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            stars
        }));
    }
    let mut sum = 0;
    for task in tasks {
        sum += task.await.unwrap();
    }
    let json = app.rating_json(&reqwest::Client::new()).await;
    assert_eq!(json["count"], 500);
    assert_eq!(json["average"].as_f64().unwrap(), f64::from(sum) / 500.0);
    assert_eq!(
        json["distribution"],
        serde_json::json!({"1": 100, "2": 100, "3": 100, "4": 100, "5": 100})
    );

    // And a restart keeps them.
    let (dir, url) = app.stop().await;
    let app = TestApp::start(dir, url, |_| {}).await;
    let json = app.rating_json(&reqwest::Client::new()).await;
    assert_eq!(json["count"], 500);
    assert_eq!(json["average"], 3.0);
}

#[tokio::test]
async fn changes_of_mind_in_parallel_keep_one_rating_per_reader() {
    let app = TestApp::spawn().await;
    let readers: Vec<reqwest::Client> = (0..20).map(|_| app.reader()).collect();
    for reader in &readers {
        assert_eq!(app.rate(reader, 1).await.status(), StatusCode::OK);
    }
    let mut tasks = Vec::new();
    for (i, reader) in readers.iter().enumerate() {
        for stars in 2..=5_u8 {
            let reader = reader.clone();
            let url = app.url(RATING);
            let stars = if i % 2 == 0 { stars } else { 7 - stars };
            tasks.push(tokio::spawn(async move {
                reader
                    .put(url)
                    .json(&serde_json::json!({ "stars": stars }))
                    .send()
                    .await
                    .unwrap()
                    .status()
            }));
        }
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), StatusCode::OK);
    }
    let json = app.rating_json(&reqwest::Client::new()).await;
    assert_eq!(json["count"], 20);
    let distribution = json["distribution"].as_object().unwrap();
    assert_eq!(
        distribution
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum::<u64>(),
        20,
        "{json}"
    );
    let mut expected_sum = 0;
    for reader in &readers {
        expected_sum += app.rating_json(reader).await["your_rating"]
            .as_u64()
            .unwrap();
    }
    assert_eq!(
        json["average"].as_f64().unwrap(),
        expected_sum as f64 / 20.0
    );
}
