//! Serves the cached anonymous article page in front of the middleware.
//!
//! Most readers have no cookie, and for them the article page is the same
//! bytes until a vote or rating changes it (see `PageCache`). This service,
//! in front of the router (see `app::app`), answers those requests straight
//! from the cache, with the same headers the router would add, so the page
//! is served at close to the speed of a static file. Anything else — a reader with a cookie, another
//! page, a page not cached yet — goes on through the router as usual.

use std::convert::Infallible;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::http::{Method, Request, header};
use axum::response::Response;
use futures_util::future::{Either, Ready, ready};
use tower::{Layer, Service};

use super::page::Encoding;
use super::routes::cached_page;
use crate::headers::security_headers;
use crate::reader;
use crate::state::AppState;
use crate::telemetry::metrics;

#[derive(Clone)]
pub struct AnonymousPageLayer {
    state: AppState,
}

impl AnonymousPageLayer {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

impl<S> Layer<S> for AnonymousPageLayer {
    type Service = AnonymousPages<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AnonymousPages {
            inner,
            state: self.state.clone(),
        }
    }
}

#[derive(Clone)]
pub struct AnonymousPages<S> {
    inner: S,
    state: AppState,
}

impl<S> AnonymousPages<S> {
    fn cached(&self, request: &Request<Body>) -> Option<Response> {
        if request.method() != Method::GET {
            return None;
        }
        let slug = request.uri().path().strip_prefix("/articles/")?;
        if slug.contains('/') || request.uri().query().is_some() {
            return None;
        }
        // A reader's cookie, valid or not, is the router's business.
        let has_reader = request.headers().get_all(header::COOKIE).iter().any(|v| {
            v.as_bytes()
                .windows(reader::COOKIE.len())
                .any(|w| w == reader::COOKIE.as_bytes())
        });
        if has_reader {
            return None;
        }
        let article = self.state.catalog.article(slug)?;
        let accept = request
            .headers()
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok());
        let response = cached_page(&self.state, article, Encoding::negotiate(accept))?;
        tracing::debug!(path = %request.uri().path(), "served the cached page");
        Some(security_headers(response))
    }
}

impl<S> Service<Request<Body>> for AnonymousPages<S>
where
    S: Service<Request<Body>, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<Ready<Result<Response, Infallible>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let started = Instant::now();
        match self.cached(&request) {
            Some(response) => {
                metrics::cached_page_served(started.elapsed());
                Either::Left(ready(Ok(response)))
            }
            None => Either::Right(self.inner.call(request)),
        }
    }
}
