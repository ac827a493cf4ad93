//! Casting votes (form and API) and reading results.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use axum::routing::post;
use axum_extra::extract::SignedCookieJar;
use bytes::Bytes;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{InvalidOption, OptionId, PollResults, PollState};
use crate::api::{ApiBody, ApiJson, personal};
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
        .route("/polls/{poll}/vote", post(vote_form))
        .routes(routes!(poll_results))
        .routes(routes!(vote_api))
}

#[derive(Debug, Deserialize)]
pub struct VoteForm {
    option: Option<String>,
}

/// A vote: the id of one of the poll's options.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"option": 2}))]
pub struct VoteRequest {
    // Read by `OptionId::parse`, as the form's field is.
    #[serde(default)]
    #[schema(value_type = u32, required = true, minimum = 1, example = 2)]
    option: Sent,
}

impl ApiBody for VoteRequest {
    const SHAPE: &'static str = r#"a JSON object like {"option": 2}, where option is the number of one of the poll's options"#;
}

/// The problem with an option a reader sent, through the form or the API.
impl From<InvalidOption> for AppError {
    fn from(invalid: InvalidOption) -> Self {
        AppError::invalid_body(invalid.to_string())
    }
}

fn find_poll(state: &AppState, id: &str) -> Result<Arc<PollState>> {
    state
        .live
        .poll(id)
        .ok_or_else(|| AppError::not_found("poll"))
}

/// A vote counted, as the routes answer it.
enum Cast {
    /// Counted just now; the poll's tallies right after it.
    Counted {
        jar: SignedCookieJar,
        tallies: Arc<[(u32, u64)]>,
    },
    /// A vote sent with an idempotency key: the answer kept with the key,
    /// given just now or the first time (`replayed`).
    Answered {
        jar: SignedCookieJar,
        answer: Answer,
        replayed: bool,
    },
}

/// The body of `201` to a vote for `option`: the results right after it.
fn vote_body(poll: &PollState, option: OptionId, tallies: &[(u32, u64)]) -> Bytes {
    let results = poll.with_tallies(tallies).results(Some(option.get()));
    serde_json::to_vec(&results).unwrap_or_default().into()
}

/// Casts a vote; `Ok` only once it is counted and on disk (or, with a key,
/// was counted before).
async fn cast_vote(
    state: &AppState,
    poll: &Arc<PollState>,
    option: OptionId,
    jar: SignedCookieJar,
    address: ClientAddress,
    key: Option<&IdempotencyKey>,
) -> Result<Cast> {
    if !poll.has_option(option) {
        return Err(AppError::unprocessable(
            "no-such-option",
            format!("This poll has no option {}.", option.get()),
        ));
    }
    let secure = state.config.secure_cookies();
    let known = reader::identify(&jar);
    let (jar, voter) = reader::identify_or_issue(jar, secure);
    let keyed = key.map(|key| {
        let poll = poll.clone();
        Keyed::new(
            key,
            &state.keys,
            known.as_ref(),
            address.0,
            format!(
                "POST /api/v1/polls/{}/votes option={}",
                poll.id,
                option.get()
            ),
            Box::new(move |receipt| match receipt {
                Receipt::Counted { tallies } => {
                    (StatusCode::CREATED, vote_body(&poll, option, tallies))
                }
                _ => (StatusCode::INTERNAL_SERVER_ERROR, Bytes::new()),
            }),
        )
    });
    let ballot = Ballot::Vote {
        poll: poll.id.clone(),
        option,
        voter: voter.clone(),
        address: address.0.map(|ip| state.keys.hash_address(ip)),
    };
    match state.ballots.cast(ballot, keyed).await {
        Ok(Receipt::Counted { tallies }) => Ok(Cast::Counted { jar, tallies }),
        Ok(Receipt::Answered { answer, replayed }) => Ok(Cast::Answered {
            jar: answer.cookie(jar, &voter, secure),
            answer,
            replayed,
        }),
        Ok(Receipt::KeyReused) => Err(idempotency::reused()),
        Ok(Receipt::AlreadyVoted) => Err(AppError::conflict(
            "already-voted",
            "You have already voted in this poll.",
        )),
        Ok(Receipt::PollClosed) => Err(AppError::conflict("poll-closed", "This poll is closed.")),
        Ok(Receipt::AddressLimit { retry_after_secs }) => Err(AppError::too_many(
            "Too many votes have come from your network in this poll for now. Please try again later.",
            retry_after_secs,
        )),
        Ok(Receipt::Rated { .. }) | Err(_) => Err(AppError::unavailable(
            "Your vote could not be stored. Please try again.",
        )),
    }
}

/// `POST /polls/{poll}/vote`: the form; answers 303 back to the poll.
async fn vote_form(
    State(state): State<AppState>,
    Path(poll): Path<String>,
    jar: SignedCookieJar,
    address: ClientAddress,
    form: std::result::Result<axum::Form<VoteForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response> {
    let poll = find_poll(&state, &poll)?;
    let back = format!("/articles/{}#poll", poll.article_slug);
    let axum::Form(form) = form.map_err(|e| AppError::from(e).with_back(back.clone()))?;
    let option = OptionId::parse(Sent::from_form(form.option.as_deref()))
        .map_err(|e| AppError::from(e).with_back(back.clone()))?;
    let jar = match cast_vote(&state, &poll, option, jar, address, None)
        .await
        .map_err(|e| e.with_back(back.clone()))?
    {
        Cast::Counted { jar, .. } | Cast::Answered { jar, .. } => jar,
    };
    Ok((jar, Redirect::to(&back)).into_response())
}

/// `GET /api/v1/polls/{poll}`.
#[utoipa::path(
    get,
    path = "/api/v1/polls/{poll}",
    tag = "polls",
    operation_id = "getPoll",
    summary = "A poll's results",
    description = "The question, each option's votes and whole percent, and, when the \
        request carries the reader cookie, the option this reader chose.",
    params(
        ("poll" = String, Path, description = "The poll's id.", example = "us-long-term-goals"),
        ("If-None-Match" = Option<String>, Header, description = "An `ETag` from an earlier answer: \
            `304` without a body when the results have not changed since."),
        ("tribune_reader" = Option<String>, Cookie, description = "The reader cookie, set by the \
            reader's first vote or rating; with it, `your_vote` says what this reader chose."),
    ),
    responses(
        (status = 200, description = "The results.", body = PollResults,
            headers(
                ("ETag" = String, description = "Names this state of the results, for `If-None-Match`."),
                ("Cache-Control" = String, description = "`no-cache`; `private, no-cache` when the \
                    answer carries `your_vote`."),
            )),
        (status = 304, description = "Not modified: `If-None-Match` names the current state.",
            headers(("ETag" = String, description = "The current state."))),
        (status = 404, description = "There is no such poll.", body = Problem,
            content_type = "application/problem+json"),
        ReadProblems,
    )
)]
async fn poll_results(
    State(state): State<AppState>,
    Path(poll): Path<String>,
    jar: SignedCookieJar,
) -> ApiResult<Response> {
    let poll = find_poll(&state, &poll)?;
    let reader = reader::identify(&jar);
    let your_vote = match &reader {
        Some(reader) => store::polls::reader_choice(&state.db, &poll.id, reader.as_str()).await?,
        None => None,
    };
    Ok(personal(
        reader.is_some(),
        axum::Json(poll.results(your_vote)),
    ))
}

/// `POST /api/v1/polls/{poll}/votes` with `{"option": N}`: 201 and the
/// results right after the vote. With an `Idempotency-Key`, a retry gets
/// the first answer again.
#[utoipa::path(
    post,
    path = "/api/v1/polls/{poll}/votes",
    tag = "polls",
    operation_id = "castVote",
    summary = "Cast a vote",
    description = "Counts one vote for one option, once it is on disk, and answers with the \
        results that include it. One vote per reader per poll: a reader without the reader \
        cookie is given one. At most `--max-votes-per-address` votes per poll per hour come \
        from one address (an IPv4 address or an IPv6 /64). A browser's cross-site request is \
        refused.",
    params(
        ("poll" = String, Path, description = "The poll's id.", example = "us-long-term-goals"),
        ("Idempotency-Key" = Option<String>, Header, description = "A key the client makes up \
            for this vote, such as a random UUID, and sends again when it retries: a retry with \
            the same key within 24 hours gets the first answer again and is never counted twice. Visible ASCII, 1 to 255 characters, bare or as a quoted string.", pattern = "^(\"[!-~]{1,255}\"|[!#-~][!-~]{0,254})$"),
        ("tribune_reader" = Option<String>, Cookie, description = "The reader cookie: who is \
            voting. Without it (or with one that is not valid) the answer sets a new one."),
    ),
    request_body(content = VoteRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Counted and stored; the results include this vote, and \
            `your_vote` is the option chosen.", body = PollResults,
            headers(
                ("Location" = String, description = "The poll's results: `/api/v1/polls/{poll}`."),
                ("Idempotent-Replayed" = String, description = "`true` when this is the answer \
                    first given to the same `Idempotency-Key`, sent again."),
                ("Set-Cookie" = String, description = "The reader cookie `tribune_reader` (signed, \
                    HttpOnly, SameSite=Lax), for a reader who had none."),
            )),
        (status = 400, description = "The body is not valid JSON, the address could not be read, \
            or the `Idempotency-Key` is not 1 to 255 visible ASCII characters \
            (`invalid-idempotency-key`).",
            body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A browser's cross-site request (by `Sec-Fetch-Site` or \
            `Origin`).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "There is no such poll (whatever the body).", body = Problem,
            content_type = "application/problem+json"),
        (status = 408, description = "The vote took too long to store. It may still have been \
            counted: read the results (or retry with the same `Idempotency-Key`).",
            body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "This reader has already voted in this poll \
            (`already-voted`), or the poll is closed (`poll-closed`).", body = Problem,
            content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than 16 KiB.", body = Problem,
            content_type = "application/problem+json"),
        (status = 415, description = "The body is not sent as `application/json`.", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "The body is not an object like `{\"option\": 2}` \
            (`invalid-body`), the poll has no such option (`no-such-option`), or the \
            `Idempotency-Key` was sent before with another request (`idempotency-key-reused`).", body = Problem,
            content_type = "application/problem+json"),
        (status = 429, description = "Too many votes from this address in this poll this hour \
            (`too-many-votes`), or too many requests (`--rate-limit`).", body = Problem,
            content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again."))),
        (status = 503, description = "The vote could not be stored; nothing was counted.",
            body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again."))),
    )
)]
async fn vote_api(
    State(state): State<AppState>,
    Path(poll): Path<String>,
    jar: SignedCookieJar,
    address: ClientAddress,
    headers: HeaderMap,
    body: std::result::Result<ApiJson<VoteRequest>, ApiError>,
) -> ApiResult<Response> {
    // An unknown poll is a 404, whatever the body.
    let poll = find_poll(&state, &poll).map_err(ApiError)?;
    let ApiJson(request) = body?;
    let option = OptionId::parse(request.option)?;
    let key = IdempotencyKey::from_headers(&headers)?;
    let cast = cast_vote(&state, &poll, option, jar, address, key.as_ref()).await?;
    let (status, body, jar, replayed) = match cast {
        Cast::Counted { jar, tallies } => (
            StatusCode::CREATED,
            vote_body(&poll, option, &tallies),
            jar,
            false,
        ),
        Cast::Answered {
            jar,
            answer,
            replayed,
        } => (answer.status, answer.body, jar, replayed),
    };
    let location = HeaderValue::from_str(&format!("/api/v1/polls/{}", poll.id))
        .unwrap_or(HeaderValue::from_static("/"));
    Ok((
        status,
        jar,
        [(header::LOCATION, location)],
        AppendHeaders(Answer::replayed_header(replayed)),
        personal(true, idempotency::json_body(body)),
    )
        .into_response())
}
