//! Tribune publishes an analytical article with a star rating, share links, a
//! print view, a link to its other-language version and a live poll.
//!
//! `app` assembles the router that `main` and every test use, over the
//! `state` the routes share; each capability (`article`, `poll`, `rating`,
//! `health`) owns its routes; `store` owns the SQL;
//! `ballot` is the single writer for votes and ratings; `live` holds the latest
//! poll and rating state that pages and streams read.

pub mod api;
pub mod app;
pub mod article;
pub mod assets;
pub mod ballot;
pub mod cli;
pub mod config;
pub mod content;
pub mod cors;
pub mod error;
pub mod etag;
pub mod events;
pub mod export;
pub mod guard;
pub mod headers;
pub mod health;
pub mod i18n;
pub mod idempotency;
pub mod live;
pub mod number;
pub mod openapi;
pub mod poll;
pub mod progress;
pub mod proxy;
pub mod rate_limit;
pub mod rating;
pub mod reader;
pub mod server;
pub mod state;
pub mod store;
pub mod telemetry;

pub use app::{Application, app, router};
pub use config::Config;
pub use state::AppState;
