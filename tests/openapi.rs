//! The OpenAPI document: served at `/api/v1/openapi.json`, OpenAPI 3.1, and
//! true to what the router serves: every documented operation answers, with
//! the documented status and media type, and the problem, caching, cookie and
//! idempotency rules are written down where they apply.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking
mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::{TestRouter, body_text};
use serde_json::Value;

/// The routes of `/api/v1`, with their methods, as DESIGN.md lists them.
const OPERATIONS: [(&str, &str); 7] = [
    ("/api/v1/polls/{poll}", "get"),
    ("/api/v1/polls/{poll}/votes", "post"),
    ("/api/v1/articles/{slug}/rating", "get"),
    ("/api/v1/articles/{slug}/rating", "put"),
    ("/api/v1/polls/{poll}/events", "get"),
    ("/api/v1/articles/{slug}/events", "get"),
    ("/api/v1/openapi.json", "get"),
];

async fn document(app: &TestRouter) -> Value {
    let response = app.get("/api/v1/openapi.json").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    serde_json::from_str(&body_text(response).await).unwrap()
}

/// Follows a local `$ref` ("#/components/schemas/X") to what it names.
fn resolve<'a>(document: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference.trim_start_matches('#');
            document.pointer(pointer).unwrap_or(&Value::Null)
        }
        None => value,
    }
}

fn operation<'a>(document: &'a Value, path: &str, method: &str) -> &'a Value {
    let operation = &document["paths"][path][method];
    assert!(operation.is_object(), "{method} {path} is documented");
    operation
}

fn parameter<'a>(operation: &'a Value, name: &str) -> Option<&'a Value> {
    operation["parameters"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == name)
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_lists_every_api_route() {
    let app = TestRouter::new().await;
    let document = document(&app).await;
    assert_eq!(document["openapi"], "3.1.0");
    assert_eq!(document["info"]["title"], "Tribune API");

    let mut documented: Vec<(String, String)> = document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |method| (path.clone(), method.clone()))
        })
        .collect();
    documented.sort();
    let mut expected: Vec<(String, String)> = OPERATIONS
        .iter()
        .map(|(p, m)| ((*p).to_owned(), (*m).to_owned()))
        .collect();
    expected.sort();
    assert_eq!(documented, expected, "the API's routes, and only those");

    for name in [
        "PollResults",
        "OptionResult",
        "PollStatus",
        "RatingSummary",
        "Distribution",
        "VoteRequest",
        "RatingRequest",
        "Problem",
    ] {
        let schema = &document["components"]["schemas"][name];
        assert!(schema.is_object(), "schema {name}");
    }
    let status = &document["components"]["schemas"]["PollStatus"];
    assert_eq!(status["enum"], serde_json::json!(["open", "closed"]));
}

#[tokio::test]
async fn every_documented_operation_is_served_as_documented() {
    let app = TestRouter::new().await;
    let document = document(&app).await;
    for (path, method) in OPERATIONS {
        let operation = operation(&document, path, method);
        // The documented examples name the seed's poll and article.
        let mut uri = path.to_owned();
        for parameter in operation["parameters"].as_array().into_iter().flatten() {
            if parameter["in"] == "path" {
                let name = parameter["name"].as_str().unwrap();
                let example = parameter["example"].as_str().unwrap();
                uri = uri.replace(&format!("{{{name}}}"), example);
            }
        }
        let mut request = Request::builder()
            .method(Method::from_bytes(method.to_uppercase().as_bytes()).unwrap())
            .uri(&uri);
        let body = match operation["requestBody"]["content"]["application/json"].get("schema") {
            Some(schema) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                resolve(&document, schema)["example"].to_string()
            }
            None => String::new(),
        };
        let response = app.send(request.body(Body::from(body)).unwrap()).await;
        let status = response.status().as_u16().to_string();
        let documented = &operation["responses"][&status];
        assert!(
            documented.is_object(),
            "{method} {uri}: {status} is documented"
        );
        assert!(
            response.status().is_success(),
            "{method} {uri}: the examples are accepted, got {status}"
        );
        let content_type = response.headers()[header::CONTENT_TYPE].to_str().unwrap();
        assert!(
            documented["content"][content_type].is_object(),
            "{method} {uri}: {content_type} is documented for {status}"
        );
        for (name, header) in documented["headers"].as_object().into_iter().flatten() {
            if header["required"] == true {
                assert!(
                    response.headers().contains_key(name.as_str()),
                    "{method} {uri}: {name}"
                );
            }
        }
    }
}

#[tokio::test]
async fn errors_are_documented_as_problems_with_retry_after_where_they_apply() {
    let app = TestRouter::new().await;
    let document = document(&app).await;
    let problem = &document["components"]["schemas"]["Problem"];
    let mut required: Vec<&str> = problem["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    required.sort_unstable();
    assert_eq!(required, ["code", "detail", "status", "title", "type"]);
    assert!(problem["example"].is_object());

    for (path, method) in OPERATIONS {
        let responses = operation(&document, path, method)["responses"]
            .as_object()
            .unwrap();
        for (status, response) in responses {
            let code: u16 = status.parse().unwrap();
            if code < 400 {
                continue;
            }
            let content = &response["content"];
            assert_eq!(
                content.as_object().unwrap().keys().collect::<Vec<_>>(),
                ["application/problem+json"],
                "{method} {path} {status}"
            );
            assert_eq!(
                content["application/problem+json"]["schema"]["$ref"],
                "#/components/schemas/Problem",
                "{method} {path} {status}"
            );
            if code == 429 || code == 503 {
                assert_eq!(
                    response["headers"]["Retry-After"]["required"], true,
                    "{method} {path} {status}"
                );
            }
        }
    }

    let votes = operation(&document, "/api/v1/polls/{poll}/votes", "post");
    for status in [
        "400", "403", "404", "408", "409", "413", "415", "422", "429", "503",
    ] {
        assert!(votes["responses"][status].is_object(), "votes {status}");
    }
    assert_eq!(
        votes["responses"]["201"]["headers"]["Location"]["required"],
        true
    );
    let rate = operation(&document, "/api/v1/articles/{slug}/rating", "put");
    for status in [
        "200", "400", "403", "404", "413", "415", "422", "429", "503",
    ] {
        assert!(rate["responses"][status].is_object(), "rating {status}");
    }
    for path in [
        "/api/v1/polls/{poll}/events",
        "/api/v1/articles/{slug}/events",
    ] {
        let events = operation(&document, path, "get");
        assert!(events["responses"]["200"]["content"]["text/event-stream"].is_object());
        assert_eq!(
            events["responses"]["503"]["headers"]["Retry-After"]["required"],
            true
        );
    }
}

#[tokio::test]
async fn headers_and_the_cookie_are_documented_where_they_apply() {
    let app = TestRouter::new().await;
    let document = document(&app).await;
    for (path, method) in [
        ("/api/v1/polls/{poll}/votes", "post"),
        ("/api/v1/articles/{slug}/rating", "put"),
    ] {
        let operation = operation(&document, path, method);
        let key = parameter(operation, "Idempotency-Key").expect("Idempotency-Key");
        assert_eq!(key["in"], "header");
        assert_ne!(key["required"], true);
        // Absent or a string: a header is never null.
        assert_eq!(key["schema"]["type"], "string");
        assert!(key["description"].as_str().unwrap().contains("24 hours"));
        let body = &operation["requestBody"];
        assert_eq!(body["required"], true, "{method} {path}");
        assert!(body["content"]["application/json"].is_object());
    }
    for path in ["/api/v1/polls/{poll}", "/api/v1/articles/{slug}/rating"] {
        let operation = operation(&document, path, "get");
        let if_none_match = parameter(operation, "If-None-Match").expect("If-None-Match");
        assert_eq!(if_none_match["in"], "header");
        assert!(operation["responses"]["200"]["headers"]["ETag"].is_object());
        assert!(operation["responses"]["304"].is_object());
    }
    for (path, method) in [
        ("/api/v1/polls/{poll}", "get"),
        ("/api/v1/polls/{poll}/votes", "post"),
        ("/api/v1/articles/{slug}/rating", "get"),
        ("/api/v1/articles/{slug}/rating", "put"),
    ] {
        let cookie = parameter(operation(&document, path, method), "tribune_reader")
            .expect("the reader cookie");
        assert_eq!(cookie["in"], "cookie", "{method} {path}");
    }
}

#[tokio::test]
async fn the_bodies_are_strict_objects_with_bounds() {
    let app = TestRouter::new().await;
    let document = document(&app).await;
    let schemas = &document["components"]["schemas"];
    let vote = &schemas["VoteRequest"];
    assert_eq!(vote["additionalProperties"], false);
    assert_eq!(vote["required"], serde_json::json!(["option"]));
    assert_eq!(vote["properties"]["option"]["minimum"], 1);
    assert_eq!(vote["example"], serde_json::json!({"option": 2}));
    let rating = &schemas["RatingRequest"];
    assert_eq!(rating["additionalProperties"], false);
    assert_eq!(rating["properties"]["stars"]["minimum"], 1);
    assert_eq!(rating["properties"]["stars"]["maximum"], 5);

    // What the server answers has the documented fields, every one of them.
    for (name, path) in [
        ("PollResults", "/api/v1/polls/us-long-term-goals"),
        ("RatingSummary", "/api/v1/articles/csto-summit-2015/rating"),
    ] {
        let schema = &schemas[name];
        let answer: Value = serde_json::from_str(&body_text(app.get(path).await).await).unwrap();
        let mut fields: Vec<&String> = answer.as_object().unwrap().keys().collect();
        let mut documented: Vec<&String> =
            schema["properties"].as_object().unwrap().keys().collect();
        let mut required: Vec<&str> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        fields.sort();
        documented.sort();
        required.sort_unstable();
        assert_eq!(fields, documented, "{name}");
        assert_eq!(
            required,
            fields.iter().map(|f| f.as_str()).collect::<Vec<_>>(),
            "{name}: every field is always sent"
        );
    }
}

#[tokio::test]
async fn the_streams_send_what_their_event_schemas_say() {
    let app = common::TestApp::spawn().await;
    let document: Value = reqwest::get(app.url("/api/v1/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let schemas = &document["components"]["schemas"];
    let fields = |name: &str| {
        let mut fields: Vec<String> = schemas[name]["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        fields.sort();
        fields
    };
    assert!(!fields("PollUpdate").contains(&"your_vote".to_owned()));
    assert!(!fields("RatingUpdate").contains(&"your_rating".to_owned()));
    for (path, schema) in [
        ("/api/v1/polls/{poll}/events", "PollEvent"),
        ("/api/v1/articles/{slug}/events", "ArticleEvent"),
    ] {
        let content = &operation(&document, path, "get")["responses"]["200"]["content"];
        assert_eq!(
            content["text/event-stream"]["schema"]["$ref"],
            format!("#/components/schemas/{schema}")
        );
    }

    let mut poll =
        common::sse::Events::open(&app.url("/api/v1/polls/us-long-term-goals/events")).await;
    let event = poll.next_event().await;
    assert_eq!(event.name, "poll");
    assert!(event.id.is_some());
    let mut sent: Vec<String> = event.data.as_object().unwrap().keys().cloned().collect();
    sent.sort();
    assert_eq!(sent, fields("PollUpdate"));

    let mut article =
        common::sse::Events::open(&app.url("/api/v1/articles/csto-summit-2015/events")).await;
    for _ in 0..2 {
        let event = article.next_event().await;
        let schema = match event.name.as_str() {
            "poll" => "PollUpdate",
            "rating" => "RatingUpdate",
            other => panic!("an event the document does not name: {other}"),
        };
        let mut sent: Vec<String> = event.data.as_object().unwrap().keys().cloned().collect();
        sent.sort();
        assert_eq!(sent, fields(schema), "{}", event.name);
    }
}

// What schemathesis found, each fixed in the server or the document.

/// JSON Schema counts `5.0` and `2e0` as the integers 5 and 2, so the
/// document's `"type": "integer"` allows them: the server takes them too.
#[tokio::test]
async fn a_whole_number_written_with_a_fraction_or_an_exponent_is_that_number() {
    let app = TestRouter::new().await;
    let send = |method: Method, path: &str, body: &str| {
        Request::builder()
            .method(method)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap()
    };
    let rating = "/api/v1/articles/csto-summit-2015/rating";
    let response = app
        .send(send(Method::PUT, rating, r#"{"stars": 5.0}"#))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = serde_json::from_str(&body_text(response).await).unwrap();
    assert_eq!(body["your_rating"], 5);

    let votes = "/api/v1/polls/us-long-term-goals/votes";
    let response = app
        .send(send(Method::POST, votes, r#"{"option": 2e0}"#))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = serde_json::from_str(&body_text(response).await).unwrap();
    assert_eq!(body["your_vote"], 2);
    assert_eq!(body["options"][1]["votes"], 31);

    for (path, method, body) in [
        (rating, Method::PUT, r#"{"stars": 4.5}"#),
        (rating, Method::PUT, r#"{"stars": 5e300}"#),
        (votes, Method::POST, r#"{"option": 1.25}"#),
        (votes, Method::POST, r#"{"option": 1e19}"#),
    ] {
        let response = app.send(send(method, path, body)).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}"
        );
        let problem: Value = serde_json::from_str(&body_text(response).await).unwrap();
        assert_eq!(problem["code"], "invalid-body", "{body}");
    }
}
