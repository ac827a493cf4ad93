//! The application's state: what every handler may reach (the database, the
//! catalogue, the live state, the ballot box, the keys, the caches), and how
//! it is built at start-up.
//!
//! It sits beneath the routes: the routes take it, and it knows no route.
//! `app` assembles the router around it. The extractors that read it (the
//! cookie key, the reader's address) are implemented here, so that the
//! modules they belong to need not know it.

use std::sync::Arc;

use anyhow::Context;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum_extra::extract::cookie::Key;
use tokio::task::JoinHandle;

use crate::article::{Article, Catalog, PageCache, Site};
use crate::ballot::{BallotBox, WriterSettings};
use crate::config::Config;
use crate::content;
use crate::events::{self, Streams};
use crate::live::{ArticleRating, Live};
use crate::poll::PollState;
use crate::rate_limit::RateLimit;
use crate::rating::RatingState;
use crate::reader::{self, ClientAddress, Keys};
use crate::store::{self, Db};
use crate::telemetry;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    pub catalog: Arc<Catalog>,
    pub live: Arc<Live>,
    pub ballots: BallotBox,
    pub keys: Arc<Keys>,
    pub pages: Arc<PageCache>,
    pub streams: Arc<Streams>,
    /// The per-address request limit; `None` when `--rate-limit` is 0.
    pub rate_limit: Option<Arc<RateLimit>>,
}

/// The key that signs the reader cookie, for `SignedCookieJar`.
impl FromRef<AppState> for Key {
    fn from_ref(state: &AppState) -> Key {
        state.keys.cookie.clone()
    }
}

/// The reader's address, as seen through the trusted proxies (see `reader::client_address`).
impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(reader::client_address(
            &parts.extensions,
            &parts.headers,
            &state.config.trusted_proxies,
        )))
    }
}

/// The state, with the writer task that must be awaited after the last request.
pub struct Running {
    pub state: AppState,
    pub writer: JoinHandle<()>,
}

impl AppState {
    /// Opens and migrates the database, imports the content, loads it, and starts the writer.
    pub async fn build(config: Config) -> anyhow::Result<Running> {
        let db = Db::open(&config.database_url).await?;
        content::import(&db, &config.content_dir)
            .await
            .with_context(|| {
                format!(
                    "cannot import the content in {}",
                    config.content_dir.display()
                )
            })?;
        let secret = store::server_secret(&db, config.secret.as_deref()).await?;
        let capacity = config
            .max_streams
            .unwrap_or_else(events::capacity_for_open_files);
        let streams = Arc::new(Streams::new(
            capacity,
            config.max_streams_per_address,
            config.heartbeat,
        ));
        telemetry::metrics::start(&streams.shutdown);
        let (catalog, polls, ratings) = load(&db).await?;
        let live = Arc::new(Live::start(
            polls,
            ratings,
            config.live_pace,
            &streams.shutdown,
        ));
        let settings = WriterSettings {
            max_votes_per_address: config.max_votes_per_address,
            max_batch: config.write_batch,
            address_window: config.address_window,
            idempotency_window: config.idempotency_window,
            upkeep_every: config.upkeep_every,
            lock_wait: config.write_lock_wait,
            faults: config.writer_faults.clone(),
        };
        crate::live::sync::follow(&db, live.clone(), streams.shutdown.clone());
        let (ballots, writer) = BallotBox::start(&db, live.clone(), settings).await?;
        let rate_limit = match config.rate_limit {
            Some(per_second) => {
                let limit = Arc::new(RateLimit::new(per_second, config.trusted_proxies.clone())?);
                limit.clone().forget_idle(streams.shutdown.clone());
                Some(limit)
            }
            None => None,
        };
        let state = Self {
            config: Arc::new(config),
            db,
            catalog: Arc::new(catalog),
            live,
            ballots,
            keys: Arc::new(Keys::derive(&secret)),
            pages: Arc::default(),
            streams,
            rate_limit,
        };
        Ok(Running { state, writer })
    }
}

/// Reads the articles, polls and ratings the server shows.
async fn load(db: &Db) -> anyhow::Result<(Catalog, Vec<PollState>, Vec<ArticleRating>)> {
    let site = store::articles::load_site(db).await?.unwrap_or(Site {
        name: "Tribune".to_owned(),
        footer_links: Vec::new(),
    });
    let rows = store::articles::load_articles(db).await?;
    let polls = store::polls::load_polls(db).await?;
    let mut poll_states = Vec::with_capacity(polls.len());
    let mut articles = Vec::with_capacity(rows.len());
    for (id, text) in rows {
        let poll = polls.iter().find(|p| p.article_id == id);
        if let Some(poll) = poll {
            poll_states.push(PollState::new(poll.clone(), &text.slug));
        }
        articles.push(Article::new(id, text, poll.map(|p| p.id.as_str().into())));
    }
    let ratings = store::ratings::all_distributions(db)
        .await?
        .into_iter()
        .filter_map(|(article_id, counts)| {
            let article = articles.iter().find(|a| a.id == article_id)?;
            Some(ArticleRating {
                article_id,
                slug: article.slug.as_str().into(),
                state: RatingState::new(counts),
            })
        })
        .collect();
    Ok((Catalog::new(site, articles), poll_states, ratings))
}
