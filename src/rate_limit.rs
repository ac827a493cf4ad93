//! `--rate-limit`: requests per second per address, with tower_governor.
//!
//! An address is what every per-address rule counts: the reader's address as
//! `reader::client_address` finds it (the peer, or the `X-Forwarded-For` hop
//! a trusted proxy names), and an IPv6 address as its /64. Each address may
//! make `N` requests in a burst, and one more every `1/N` s after that.
//! Beyond it the answer is `429` with `Retry-After`: problem+json under
//! `/api/`, the HTML error page elsewhere.
//!
//! The limit covers everything the router serves. The cached anonymous
//! article page is answered in front of the router (`article::fast`) and is
//! not counted: it costs about what a static file does, so a burst of it
//! hurts nobody, and counting it would slow the page every reader gets.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::middleware::NoOpMiddleware;
use tokio_util::sync::CancellationToken;
use tower_governor::GovernorError;
use tower_governor::GovernorLayer;
use tower_governor::governor::{GovernorConfig, GovernorConfigBuilder};
use tower_governor::key_extractor::KeyExtractor;

use crate::error::{ApiError, AppError};
use crate::proxy::TrustedProxies;
use crate::reader::{client_address, network_of};

/// How often addresses idle long enough to have a full quota are forgotten.
const FORGET_EVERY: Duration = Duration::from_secs(60);

/// The per-address limiter; one per server, shared by every connection.
#[derive(Debug)]
pub struct RateLimit {
    config: Arc<GovernorConfig<AddressKey, NoOpMiddleware>>,
}

impl RateLimit {
    /// `per_second` requests a second per address, in bursts of as many.
    pub fn new(per_second: u32, trusted: TrustedProxies) -> anyhow::Result<Self> {
        let per_second = per_second.max(1);
        let period = Duration::from_secs(1) / per_second;
        let config = GovernorConfigBuilder::default()
            .period(period)
            .burst_size(per_second)
            .key_extractor(AddressKey {
                trusted: Arc::new(trusted),
            })
            .finish()
            .ok_or_else(|| anyhow::anyhow!("the rate limit must be at least 1 per second"))?;
        Ok(Self {
            config: Arc::new(config),
        })
    }

    /// The governor, with its refusals marked for `answer_refusal`.
    pub fn layer(&self) -> GovernorLayer<AddressKey, NoOpMiddleware, Body> {
        GovernorLayer::new(self.config.clone()).error_handler(|error| {
            let refusal = match error {
                GovernorError::TooManyRequests { wait_time, .. } => Refusal::TooMany {
                    // The library rounds the wait down, often to 0.
                    retry_after_secs: wait_time.saturating_add(1),
                },
                // `AddressKey` never fails; should that change, say so.
                GovernorError::UnableToExtractKey | GovernorError::Other { .. } => Refusal::Failed,
            };
            let mut response = Response::new(Body::empty());
            response.extensions_mut().insert(refusal);
            response
        })
    }

    /// Forgets the addresses whose quota is full again, every minute, until
    /// `shutdown`: the limiter then holds only the addresses of the last minute.
    pub fn forget_idle(self: Arc<Self>, shutdown: CancellationToken) {
        tokio::spawn(async move {
            let mut every = tokio::time::interval(FORGET_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    _ = every.tick() => {
                        let limiter = self.config.limiter();
                        limiter.retain_recent();
                        limiter.shrink_to_fit();
                    }
                }
            }
        });
    }
}

/// The rate limit's key: the reader's address (an IPv6 one as its /64).
/// `None` only for a request without connection info (in-process tests).
#[derive(Clone, Debug)]
pub struct AddressKey {
    trusted: Arc<TrustedProxies>,
}

impl KeyExtractor for AddressKey {
    type Key = Option<IpAddr>;

    fn extract<T>(&self, request: &http::Request<T>) -> Result<Self::Key, GovernorError> {
        Ok(client_address(request.extensions(), request.headers(), &self.trusted).map(network_of))
    }
}

/// Why the governor refused a request, left on its empty answer.
#[derive(Clone, Copy, Debug)]
enum Refusal {
    TooMany { retry_after_secs: u64 },
    Failed,
}

/// Turns the governor's refusals into Tribune's error answers, in the face
/// the path calls for (the governor does not see the path).
pub async fn answer_refusal(request: Request, next: Next) -> Response {
    let api = request.uri().path().starts_with("/api/");
    let response = next.run(request).await;
    let Some(refusal) = response.extensions().get::<Refusal>().copied() else {
        return response;
    };
    let error = match refusal {
        Refusal::TooMany { retry_after_secs } => AppError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            "Too many requests have come from your network. Please wait a moment and try again.",
        )
        .with_retry_after(retry_after_secs),
        Refusal::Failed => AppError::internal(anyhow::anyhow!("the rate limit failed")),
    };
    if api {
        ApiError(error).into_response()
    } else {
        error.into_response()
    }
}
