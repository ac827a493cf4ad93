//! The OpenAPI document of the JSON API, generated from the code.
//!
//! Each API handler carries its `#[utoipa::path]`, and the API's routes are
//! registered through `utoipa_axum`'s `OpenApiRouter` (see `app::routes`),
//! which collects those annotations as it registers the handlers: what is
//! documented is what is served. This module holds what belongs to the whole
//! document (its description and tags) and serves it at
//! `/api/v1/openapi.json`.

use std::sync::{Arc, OnceLock};

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::Value;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type};
use utoipa::{Modify, OpenApi, PartialSchema};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use crate::error::{ApiResult, AppError, Problem};
use crate::poll::PollResults;
use crate::rating::RatingSummary;

/// What the whole API shares, said once at the top of the document.
const DESCRIPTION: &str = "\
The JSON API of Tribune: a poll's results and votes, an article's star rating, \
and both live as Server-Sent Events.

**Errors** are `application/problem+json` (RFC 9457) with `type`, `title`, \
`status`, `detail` (a sentence for people) and `code` (stable, for programs). \
Every error under `/api/v1` is one, the router's own included: an unknown \
address (404), a method a route does not serve (405, with `Allow`), a path \
segment that is not UTF-8 (400).

**The reader** is recognised by the cookie `tribune_reader`: random, signed, \
HttpOnly, SameSite=Lax, set by the first vote or rating. One vote per reader \
per poll; one rating per reader per article, which the reader may change.

**Caps**: an address (an IPv4 address, or an IPv6 /64) may cast \
`--max-votes-per-address` votes per poll and make as many rating changes per \
article per hour (20 by default), and hold `--max-streams-per-address` event \
streams open (64 by default); past a cap the answer is 429 or, for streams, \
503, with `Retry-After`. `--rate-limit` caps requests per second per address \
(429 with `Retry-After`). Bodies are at most 16 KiB.

**Retries**: `POST …/votes` and `PUT …/rating` accept an `Idempotency-Key` \
header; a retry with the same key within 24 hours gets the first answer again \
and is never counted twice.

**Caching**: JSON reads carry an `ETag` and answer `304` to a matching \
`If-None-Match`; answers that carry the reader's own vote or rating are \
`private`. CORS is open for reads and closed for writes, and a browser's \
cross-site `POST` or `PUT` is refused with 403.";

/// The problems any read of the API may answer, whatever it reads (an
/// address that is not UTF-8, the rate limit), written once for the four
/// routes that read.
#[derive(utoipa::IntoResponses)]
pub enum ReadProblems {
    #[response(
        status = 400,
        description = "The address could not be read (a path segment that is not UTF-8).",
        content_type = "application/problem+json"
    )]
    BadAddress(Problem<'static>),
    #[response(
        status = 429,
        description = "Too many requests from this address (`--rate-limit`).",
        content_type = "application/problem+json",
        headers(("Retry-After" = u64, description = "Seconds to wait before trying again."))
    )]
    RateLimited(Problem<'static>),
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Tribune API", description = DESCRIPTION),
    tags(
        (name = "polls", description = "A poll's results, and votes."),
        (name = "ratings", description = "An article's 1–5 star rating."),
        (name = "events", description = "Live updates as Server-Sent Events."),
        (name = "meta", description = "This document."),
    ),
    modifiers(&EventSchemas)
)]
pub struct ApiDoc;

/// The schemas of the event streams' events, named in the streams'
/// `#[utoipa::path]`: `PollEvent` and `ArticleEvent` describe one event each
/// (OpenAPI 3.1 reads an event stream's `schema` as one event's), whose
/// `data` is the JSON of `PollUpdate` or `RatingUpdate`: the API's answers
/// less the field that belongs to one reader, as `live` broadcasts them.
struct EventSchemas;

impl Modify for EventSchemas {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let schemas = &mut components.schemas;
        schemas.insert(
            "PollUpdate".to_owned(),
            without(PollResults::schema(), "your_vote"),
        );
        schemas.insert(
            "RatingUpdate".to_owned(),
            without(RatingSummary::schema(), "your_rating"),
        );
        schemas.insert("PollEvent".to_owned(), event("poll", "PollUpdate").into());
        schemas.insert(
            "ArticleEvent".to_owned(),
            OneOfBuilder::new()
                .item(event("rating", "RatingUpdate"))
                .item(event("poll", "PollUpdate"))
                .description(Some(
                    "An article's stream: its rating, and its poll's results when it has one.",
                ))
                .into(),
        );
    }
}

/// `schema` with the property `field` gone.
fn without(schema: RefOr<Schema>, field: &str) -> RefOr<Schema> {
    match schema {
        RefOr::T(Schema::Object(mut object)) => {
            object.properties.remove(field);
            object.required.retain(|name| name != field);
            object.description = Some(format!(
                "What event streams send: the same JSON as the API's answer, without `{field}`."
            ));
            object.example = None;
            RefOr::T(Schema::Object(object))
        }
        other => other,
    }
}

/// One event named `name`, whose data is the JSON of the schema `data`.
fn event(name: &str, data: &str) -> Schema {
    let text = || ObjectBuilder::new().schema_type(SchemaType::Type(Type::String));
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::Object))
        .property("event", text().enum_values(Some([name])))
        .required("event")
        .property(
            "id",
            text()
                .pattern(Some("^[0-9]+$"))
                .description(Some("The state's version: later states have higher ones.")),
        )
        .required("id")
        .property(
            "data",
            text()
                .content_media_type("application/json")
                .content_schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                    data,
                )))),
        )
        .required("data")
        .into()
}

/// The document's own route. `document` gives the document of every route
/// the router serves, this one included (`app::openapi`); it is written
/// once, at the first request for it.
pub fn routes<S: Clone + Send + Sync + 'static>(
    document: fn() -> utoipa::openapi::OpenApi,
) -> OpenApiRouter<S> {
    let served = Arc::new(Served {
        document,
        json: OnceLock::new(),
    });
    let route: UtoipaMethodRouter<Arc<Served>> = routes!(openapi_json);
    OpenApiRouter::new().routes(route.with_state(served))
}

/// The document as the route serves it.
struct Served {
    document: fn() -> utoipa::openapi::OpenApi,
    /// Written at the first request; `None` if it could not be.
    json: OnceLock<Option<Bytes>>,
}

/// `GET /api/v1/openapi.json`.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "meta",
    operation_id = "openapi",
    summary = "This document",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document of `/api/v1`.",
            content_type = "application/json", body = Object),
    )
)]
async fn openapi_json(State(served): State<Arc<Served>>) -> ApiResult<Response> {
    let json = served
        .json
        .get_or_init(|| match json((served.document)()) {
            Ok(json) => Some(Bytes::from(json)),
            Err(error) => {
                tracing::error!(%error, "cannot write the OpenAPI document");
                None
            }
        })
        .clone()
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("no OpenAPI document")))?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        json,
    )
        .into_response())
}

/// The document as JSON.
fn json(document: utoipa::openapi::OpenApi) -> serde_json::Result<Vec<u8>> {
    let mut json = serde_json::to_value(document)?;
    require_headers(&mut json);
    optional_not_null(&mut json);
    serde_json::to_vec(&json)
}

/// An optional header or cookie is absent or a string, never `null`; utoipa
/// writes an `Option<String>` parameter as `["string", "null"]`.
fn optional_not_null(document: &mut Value) {
    let parameters = operations(document)
        .filter_map(|operation| operation.get_mut("parameters"))
        .filter_map(Value::as_array_mut)
        .flatten();
    for parameter in parameters {
        if parameter["required"] == false
            && let Some(schema_type) = parameter.pointer_mut("/schema/type")
            && *schema_type == serde_json::json!(["string", "null"])
        {
            *schema_type = Value::from("string");
        }
    }
}

/// Every operation object of the document.
fn operations(document: &mut Value) -> impl Iterator<Item = &mut Value> {
    document
        .get_mut("paths")
        .and_then(Value::as_object_mut)
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
}

/// Marks the response headers that are always sent as `required` (utoipa's
/// header object has no such field): `Location` on a 201, `Retry-After` on
/// a 429 or a 503, and `ETag` on a 200 or 304 that documents one (the JSON
/// reads). A checker then holds the server to them.
fn require_headers(document: &mut Value) {
    for operation in operations(document) {
        let Some(responses) = operation
            .get_mut("responses")
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        for (status, response) in responses {
            let required = match status.as_str() {
                "201" => "Location",
                "200" | "304" => "ETag",
                "429" | "503" => "Retry-After",
                _ => continue,
            };
            if let Some(header) = response
                .get_mut("headers")
                .and_then(|headers| headers.get_mut(required))
                .and_then(Value::as_object_mut)
            {
                header.insert("required".to_owned(), Value::Bool(true));
            }
        }
    }
}
