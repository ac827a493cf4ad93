//! `GET /`, `GET /articles/{slug}` and `GET /articles/{slug}/print`.

use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::FromRequestParts;
use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum_extra::extract::SignedCookieJar;
use bytes::Bytes;

use super::page::{
    ArticlePage, CachedPage, Encoding, IndexEntry, IndexPage, PageMeta, PollView, PrintPage,
    RatingView, ShareView, TranslationLink, json_ld,
};
use super::share::share_links;
use super::{Article, Catalog};
use crate::error::{AppError, Result};
use crate::i18n::Lang;
use crate::poll::PollState;
use crate::rating::RatingState;
use crate::reader::{self, ReaderId};
use crate::state::AppState;
use crate::store;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/articles/{slug}", get(article_page))
        .route("/articles/{slug}/print", get(print_page))
}

async fn index(State(state): State<AppState>) -> Result<Response> {
    let catalog = &state.catalog;
    let labels = catalog
        .articles
        .first()
        .map_or(Lang::En, |a| a.lang)
        .labels();
    let meta = PageMeta::new(
        catalog,
        labels,
        catalog.site.name.clone(),
        format!("{}: {}", catalog.site.name, labels.articles),
        format!("{}/", state.config.base_url),
    );
    let entries = catalog
        .articles
        .iter()
        .map(|article| IndexEntry {
            article,
            lang: article.lang.code(),
        })
        .collect();
    let html = IndexPage { meta, entries }.render()?;
    Ok(page_response(html.into(), None))
}

fn find(catalog: &Catalog, slug: &str) -> Result<Arc<Article>> {
    catalog
        .article(slug)
        .cloned()
        .ok_or_else(|| AppError::not_found("article"))
}

async fn article_page(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    AcceptEncoding(encoding): AcceptEncoding,
    jar: SignedCookieJar,
) -> Result<Response> {
    let article = find(&state.catalog, &slug)?;
    let reader = reader::identify(&jar);
    if reader.is_none()
        && let Some(response) = cached_page(&state, &article, encoding)
    {
        return Ok(response);
    }
    let (poll, rating) = live_state(&state, &article);
    // Boxed: the hot path above stays a small future.
    Box::pin(render_article(
        state, article, reader, poll, rating, encoding,
    ))
    .await
}

/// Renders the article page: for a reader, with their own marks; for anyone
/// else, once per state, into the cache.
async fn render_article(
    state: AppState,
    article: Arc<Article>,
    reader: Option<ReaderId>,
    poll: Option<Arc<PollState>>,
    rating: Arc<RatingState>,
    encoding: Encoding,
) -> Result<Response> {
    let (your_vote, your_rating) = reader_state(&state, &article, reader.as_ref()).await?;
    let catalog = &state.catalog;
    let labels = article.lang.labels();
    let url = format!("{}{}", state.config.base_url, article.path());
    let meta = PageMeta::for_article(catalog, &article, url.clone());
    let translation = article
        .translation
        .as_deref()
        .and_then(|slug| catalog.article(slug))
        .map(|other| TranslationLink {
            href: other.path(),
            lang: other.lang.code(),
            label: other.lang.labels().read_in_this_language,
        });
    let page = ArticlePage {
        json_ld: json_ld(&article, &catalog.site.name, &url, &rating),
        print_url: format!("{}/print", article.path()),
        translation,
        poll: poll.as_deref().map(|p| PollView::new(p, your_vote, labels)),
        rating: RatingView::new(&article.slug, &rating, your_rating, labels),
        share: ShareView {
            links: share_links(&url, &article.title, labels.share_by_email),
            url,
            title: article.title.clone(),
        },
        article: &article,
        meta,
    };
    let body = Bytes::from(page.render()?);
    match reader {
        Some(reader) => Ok(page_response(body, Some(reader))),
        None => {
            let page = state.pages.put(&article.slug, poll, rating, body);
            Ok(cached_response(&page, encoding))
        }
    }
}

/// The coding the reader accepts for a page we keep compressed.
pub struct AcceptEncoding(pub Encoding);

impl<S: Send + Sync> FromRequestParts<S> for AcceptEncoding {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok());
        Ok(Self(Encoding::negotiate(header)))
    }
}

async fn print_page(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    jar: SignedCookieJar,
) -> Result<Response> {
    let article = find(&state.catalog, &slug)?;
    let reader = reader::identify(&jar);
    let (your_vote, your_rating) = reader_state(&state, &article, reader.as_ref()).await?;
    let labels = article.lang.labels();
    let url = format!("{}{}", state.config.base_url, article.path());
    let meta = PageMeta::for_article(&state.catalog, &article, url.clone());
    let (poll, rating) = live_state(&state, &article);
    let page = PrintPage {
        poll: poll.as_deref().map(|p| PollView::new(p, your_vote, labels)),
        rating: RatingView::new(&article.slug, &rating, your_rating, labels),
        page_url: url,
        article: &article,
        meta,
    };
    Ok(page_response(page.render()?.into(), reader))
}

/// The article's poll and rating as they stand now.
fn live_state(state: &AppState, article: &Article) -> (Option<Arc<PollState>>, Arc<RatingState>) {
    let poll = article
        .poll_id
        .as_deref()
        .and_then(|id| state.live.poll(id));
    (poll, state.live.rating(article.id))
}

/// The reader's own vote and rating on this article, when they have a cookie.
async fn reader_state(
    state: &AppState,
    article: &Article,
    reader: Option<&ReaderId>,
) -> Result<(Option<u32>, Option<u8>)> {
    let Some(reader) = reader else {
        return Ok((None, None));
    };
    let vote = match &article.poll_id {
        Some(poll) => store::polls::reader_choice(&state.db, poll, reader.as_str()).await?,
        None => None,
    };
    let rating = store::ratings::reader_rating(&state.db, article.id, reader.as_str()).await?;
    Ok((vote, rating))
}

/// A page, cacheable by nobody when it carries a reader's own state.
fn page_response(body: Bytes, reader: Option<ReaderId>) -> Response {
    let cache = if reader.is_some() {
        "private, no-cache"
    } else {
        "no-cache"
    };
    (
        [
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
            (header::VARY, HeaderValue::from_static("Cookie")),
        ],
        Html(body),
    )
        .into_response()
}

/// The page an anonymous reader gets, if it is cached for the current state.
pub fn cached_page(state: &AppState, article: &Article, encoding: Encoding) -> Option<Response> {
    let (poll, rating) = live_state(state, article);
    let page = state.pages.get(&article.slug, poll.as_ref(), &rating)?;
    Some(cached_response(&page, encoding))
}

/// The anonymous page, already compressed the way the reader accepts.
fn cached_response(page: &CachedPage, encoding: Encoding) -> Response {
    let mut response = page_response(page.body(encoding), None);
    let headers = response.headers_mut();
    headers.insert(
        header::VARY,
        HeaderValue::from_static("Cookie, Accept-Encoding"),
    );
    if let Some(coding) = encoding.header() {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding));
    }
    response
}
