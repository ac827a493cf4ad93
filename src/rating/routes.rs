//! Rating an article (form and API) and reading its rating.

use std::sync::Arc;

use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use axum::routing::post;
use axum_extra::extract::SignedCookieJar;
use bytes::Bytes;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{InvalidStars, RatingState, RatingSummary, Stars};
use crate::api::{ApiBody, ApiJson, personal};
use crate::article::Article;
use crate::ballot::{Ballot, Receipt};
use crate::error::{ApiError, ApiResult, AppError, Problem, Result};
use crate::idempotency::{self, Answer, IdempotencyKey, Keyed};
use crate::number::Sent;
use crate::openapi::ReadProblems;
use crate::reader::{self, ClientAddress};
use crate::state::AppState;
use crate::store;

/// The form's route, and the API's with their OpenAPI documentation.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .route("/articles/{slug}/rating", post(rate_form))
        .routes(routes!(rating_api, rate_api))
}

#[derive(Debug, Deserialize)]
pub struct RatingForm {
    stars: Option<String>,
}

/// A rating: a whole number of stars from 1 to 5.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"stars": 4}))]
pub struct RatingRequest {
    // Read by `Stars::parse`, as the form's field is.
    #[serde(default)]
    #[schema(value_type = u8, required = true, minimum = 1, maximum = 5, example = 4)]
    stars: Sent,
}

impl ApiBody for RatingRequest {
    const SHAPE: &'static str =
        r#"a JSON object like {"stars": 4}, with a whole number of stars from 1 to 5"#;
}

/// The problem with stars a reader sent, through the form or the API.
impl From<InvalidStars> for AppError {
    fn from(invalid: InvalidStars) -> Self {
        AppError::invalid_body(invalid.to_string())
    }
}

fn find_article(state: &AppState, slug: &str) -> Result<Arc<Article>> {
    state
        .catalog
        .article(slug)
        .cloned()
        .ok_or_else(|| AppError::not_found("article"))
}

/// A rating stored, as the routes answer it.
enum Rated {
    /// Stored just now; the article's readers per star right after it.
    Now {
        jar: SignedCookieJar,
        counts: [u64; 5],
    },
    /// A rating sent with an idempotency key: the answer kept with the key,
    /// given just now or the first time (`replayed`).
    Answered {
        jar: SignedCookieJar,
        answer: Answer,
        replayed: bool,
    },
}

/// The body of `200` to a rating: the article's rating right after it.
fn rating_body(slug: &str, stars: Stars, counts: [u64; 5]) -> Bytes {
    let summary = RatingState::new(counts).summary(slug, Some(stars.get()));
    serde_json::to_vec(&summary).unwrap_or_default().into()
}

/// Records a reader's rating, replacing their earlier one; `Ok` once it is
/// on disk (or, with a key, was stored before).
async fn rate(
    state: &AppState,
    article: &Article,
    stars: Stars,
    jar: SignedCookieJar,
    address: ClientAddress,
    key: Option<&IdempotencyKey>,
) -> Result<Rated> {
    let secure = state.config.secure_cookies();
    let known = reader::identify(&jar);
    let (jar, voter) = reader::identify_or_issue(jar, secure);
    let keyed = key.map(|key| {
        let slug = article.slug.to_string();
        Keyed::new(
            key,
            &state.keys,
            known.as_ref(),
            address.0,
            format!("PUT /api/v1/articles/{slug}/rating stars={}", stars.get()),
            Box::new(move |receipt| match receipt {
                Receipt::Rated { counts } => (StatusCode::OK, rating_body(&slug, stars, *counts)),
                _ => (StatusCode::INTERNAL_SERVER_ERROR, Bytes::new()),
            }),
        )
    });
    let ballot = Ballot::Rating {
        article_id: article.id,
        voter: voter.clone(),
        stars,
        address: address.0.map(|ip| state.keys.hash_address(ip)),
    };
    match state.ballots.cast(ballot, keyed).await {
        Ok(Receipt::Rated { counts }) => Ok(Rated::Now { jar, counts }),
        Ok(Receipt::Answered { answer, replayed }) => Ok(Rated::Answered {
            jar: answer.cookie(jar, &voter, secure),
            answer,
            replayed,
        }),
        Ok(Receipt::KeyReused) => Err(idempotency::reused()),
        Ok(Receipt::AddressLimit { retry_after_secs }) => Err(AppError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too-many-ratings",
            "Too many ratings of this article have come from your network for now. Please try again later.",
        )
        .with_retry_after(retry_after_secs)),
        Ok(_) | Err(_) => Err(AppError::unavailable(
            "Your rating could not be stored. Please try again.",
        )),
    }
}

/// `POST /articles/{slug}/rating`: the form; answers 303 back to the rating.
async fn rate_form(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    jar: SignedCookieJar,
    address: ClientAddress,
    form: std::result::Result<axum::Form<RatingForm>, FormRejection>,
) -> Result<Response> {
    let article = find_article(&state, &slug)?;
    let back = format!("{}#rating", article.path());
    let axum::Form(form) = form.map_err(|e| AppError::from(e).with_back(back.clone()))?;
    let stars = Stars::parse(Sent::from_form(form.stars.as_deref()))
        .map_err(|e| AppError::from(e).with_back(back.clone()))?;
    let jar = match rate(&state, &article, stars, jar, address, None)
        .await
        .map_err(|e| e.with_back(back.clone()))?
    {
        Rated::Now { jar, .. } | Rated::Answered { jar, .. } => jar,
    };
    Ok((jar, Redirect::to(&back)).into_response())
}

/// `GET /api/v1/articles/{slug}/rating`.
#[utoipa::path(
    get,
    path = "/api/v1/articles/{slug}/rating",
    tag = "ratings",
    operation_id = "getRating",
    summary = "An article's rating",
    description = "The exact average, the count and the ratings per star, and, when the request \
        carries the reader cookie, the stars this reader gave.",
    params(
        ("slug" = String, Path, description = "The article's slug.", example = "csto-summit-2015"),
        ("If-None-Match" = Option<String>, Header, description = "An `ETag` from an earlier answer: \
            `304` without a body when the rating has not changed since."),
        ("tribune_reader" = Option<String>, Cookie, description = "The reader cookie, set by the \
            reader's first vote or rating; with it, `your_rating` says what this reader gave."),
    ),
    responses(
        (status = 200, description = "The rating.", body = RatingSummary,
            headers(
                ("ETag" = String, description = "Names this state of the rating, for `If-None-Match`."),
                ("Cache-Control" = String, description = "`no-cache`; `private, no-cache` when the \
                    answer carries `your_rating`."),
            )),
        (status = 304, description = "Not modified: `If-None-Match` names the current state.",
            headers(("ETag" = String, description = "The current state."))),
        (status = 404, description = "There is no such article.", body = Problem,
            content_type = "application/problem+json"),
        ReadProblems,
    )
)]
async fn rating_api(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    jar: SignedCookieJar,
) -> ApiResult<Response> {
    let article = find_article(&state, &slug)?;
    let reader = reader::identify(&jar);
    let your_rating = match &reader {
        Some(reader) => {
            store::ratings::reader_rating(&state.db, article.id, reader.as_str()).await?
        }
        None => None,
    };
    let summary = state
        .live
        .rating(article.id)
        .summary(&article.slug, your_rating);
    Ok(personal(reader.is_some(), axum::Json(summary)))
}

/// `PUT /api/v1/articles/{slug}/rating` with `{"stars": N}`: 200 and the
/// rating right after it. With an `Idempotency-Key`, a retry gets the first
/// answer again.
#[utoipa::path(
    put,
    path = "/api/v1/articles/{slug}/rating",
    tag = "ratings",
    operation_id = "rateArticle",
    summary = "Rate an article, or change one's rating",
    description = "Records this reader's rating, replacing their earlier one, once it is on \
        disk, and answers with the rating that includes it. A reader without the reader cookie \
        is given one. At most `--max-votes-per-address` rating changes per article per hour \
        come from one address (an IPv4 address or an IPv6 /64). A browser's cross-site request \
        is refused.",
    params(
        ("slug" = String, Path, description = "The article's slug.", example = "csto-summit-2015"),
        ("Idempotency-Key" = Option<String>, Header, description = "A key the client makes up \
            for this rating, such as a random UUID, and sends again when it retries: a retry with \
            the same key within 24 hours gets the first answer again and is never counted twice. Visible ASCII, 1 to 255 characters, bare or as a quoted string.", pattern = "^(\"[!-~]{1,255}\"|[!#-~][!-~]{0,254})$"),
        ("tribune_reader" = Option<String>, Cookie, description = "The reader cookie: who is \
            rating. Without it (or with one that is not valid) the answer sets a new one."),
    ),
    request_body(content = RatingRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Stored; the rating includes it, and `your_rating` is the \
            stars given.", body = RatingSummary,
            headers(
                ("Set-Cookie" = String, description = "The reader cookie `tribune_reader` (signed, \
                    HttpOnly, SameSite=Lax), for a reader who had none."),
                ("Idempotent-Replayed" = String, description = "`true` when this is the answer \
                    first given to the same `Idempotency-Key`, sent again."),
            )),
        (status = 400, description = "The body is not valid JSON, the address could not be read, \
            or the `Idempotency-Key` is not 1 to 255 visible ASCII characters \
            (`invalid-idempotency-key`).",
            body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A browser's cross-site request (by `Sec-Fetch-Site` or \
            `Origin`).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "There is no such article (whatever the body).", body = Problem,
            content_type = "application/problem+json"),
        (status = 408, description = "The rating took too long to store. It may still have been \
            stored: read the rating (or retry with the same `Idempotency-Key`).",
            body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than 16 KiB.", body = Problem,
            content_type = "application/problem+json"),
        (status = 415, description = "The body is not sent as `application/json`.", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "The body is not an object like `{\"stars\": 4}` with 1 to 5 \
            stars (`invalid-body`), or the `Idempotency-Key` was sent before with another request \
            (`idempotency-key-reused`).", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many rating changes from this address for this article \
            this hour, or too many requests (`--rate-limit`).", body = Problem,
            content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again."))),
        (status = 503, description = "The rating could not be stored; nothing changed.",
            body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again."))),
    )
)]
async fn rate_api(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    jar: SignedCookieJar,
    address: ClientAddress,
    headers: HeaderMap,
    body: std::result::Result<ApiJson<RatingRequest>, ApiError>,
) -> ApiResult<Response> {
    // An unknown article is a 404, whatever the body.
    let article = find_article(&state, &slug)?;
    let ApiJson(request) = body?;
    let stars = Stars::parse(request.stars)?;
    let key = IdempotencyKey::from_headers(&headers)?;
    let rated = rate(&state, &article, stars, jar, address, key.as_ref()).await?;
    let (status, body, jar, replayed) = match rated {
        Rated::Now { jar, counts } => (
            StatusCode::OK,
            rating_body(&article.slug, stars, counts),
            jar,
            false,
        ),
        Rated::Answered {
            jar,
            answer,
            replayed,
        } => (answer.status, answer.body, jar, replayed),
    };
    Ok((
        status,
        jar,
        AppendHeaders(Answer::replayed_header(replayed)),
        personal(true, idempotency::json_body(body)),
    )
        .into_response())
}
