//! Casting votes (form and API) and reading results.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum_extra::extract::SignedCookieJar;
use bytes::Bytes;
use serde::Deserialize;

use super::{OptionId, PollState};
use crate::api::{ApiBody, ApiJson, personal};
use crate::app::AppState;
use crate::ballot::{Ballot, Receipt};
use crate::error::{ApiError, ApiResult, AppError, Result};
use crate::idempotency::{self, Answer, IdempotencyKey, Keyed};
use crate::reader::{self, ClientAddress};
use crate::store;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/polls/{poll}/vote", post(vote_form))
        .route("/api/v1/polls/{poll}", get(poll_results))
        .route("/api/v1/polls/{poll}/votes", post(vote_api))
}

#[derive(Debug, Deserialize)]
pub struct VoteForm {
    option: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoteRequest {
    option: OptionId,
}

impl ApiBody for VoteRequest {
    const SHAPE: &'static str = r#"a JSON object like {"option": 2}, where option is the number of one of the poll's options"#;
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
    let option = form
        .option
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            AppError::unprocessable("no-option", "Choose an option before voting.")
                .with_back(back.clone())
        })?
        .parse::<i64>()
        .ok()
        .and_then(|n| OptionId::try_from(n).ok())
        .ok_or_else(|| {
            AppError::unprocessable("no-such-option", "That is not an option of this poll.")
                .with_back(back.clone())
        })?;
    let jar = match cast_vote(&state, &poll, option, jar, address, None)
        .await
        .map_err(|e| e.with_back(back.clone()))?
    {
        Cast::Counted { jar, .. } | Cast::Answered { jar, .. } => jar,
    };
    Ok((jar, Redirect::to(&back)).into_response())
}

/// `GET /api/v1/polls/{poll}`.
async fn poll_results(
    State(state): State<AppState>,
    Path(poll): Path<String>,
    jar: SignedCookieJar,
) -> ApiResult<Response> {
    let poll = find_poll(&state, &poll)?;
    let reader = reader::identify(&jar);
    let your_vote = match &reader {
        Some(reader) => {
            store::polls::reader_choice(state.db.pool(), &poll.id, reader.as_str()).await?
        }
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
    let key = IdempotencyKey::from_headers(&headers)?;
    let cast = cast_vote(&state, &poll, request.option, jar, address, key.as_ref()).await?;
    let (status, body, jar, replayed) = match cast {
        Cast::Counted { jar, tallies } => (
            StatusCode::CREATED,
            vote_body(&poll, request.option, &tallies),
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
