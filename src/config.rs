//! Server configuration, as the command line and the environment give it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::ballot::InjectedFaults;
use crate::proxy::TrustedProxies;
pub use crate::store::DEFAULT_DATABASE_URL;

#[derive(Clone, Debug)]
pub struct Config {
    pub bind: SocketAddr,
    pub database_url: String,
    pub content_dir: PathBuf,
    /// Absolute URL the site is reached at, without a trailing slash.
    pub base_url: String,
    /// Votes one address may cast per poll, and rating changes it may make
    /// per article, within `address_window`; `None` turns the cap off.
    pub max_votes_per_address: Option<u32>,
    /// Peers whose `X-Forwarded-For` is believed: addresses and CIDR ranges.
    pub trusted_proxies: TrustedProxies,
    /// Requests per second one address may make; `None` turns the limit off.
    pub rate_limit: Option<u32>,
    /// How far back the per-address cap looks; address hashes older than this
    /// are erased. An hour.
    pub address_window: Duration,
    /// How long the answer to a write sent with an `Idempotency-Key` is kept. A day.
    pub idempotency_window: Duration,
    /// How often the writer erases what has outlived its window (and at start).
    pub upkeep_every: Duration,
    /// How long the writer waits for a lock another process holds before it
    /// gives up on a batch (and answers it `503`).
    pub write_lock_wait: Duration,
    /// Faults to inject into the writer, for tests and drills; `None` in service.
    pub writer_faults: Option<Arc<InjectedFaults>>,
    /// Configured secret; when `None` one is made once and kept in the database.
    pub secret: Option<String>,
    /// Most votes and ratings committed in one transaction.
    pub write_batch: usize,
    /// Event streams one address may hold open; `None` turns the cap off.
    pub max_streams_per_address: Option<u32>,
    /// Event streams open at once; `None` derives it from the open-file limit.
    pub max_streams: Option<usize>,
    /// Least time between two events of one poll or rating in a burst.
    pub live_pace: Duration,
    /// A stream with nothing to say for this long sends a comment line.
    pub heartbeat: Duration,
    /// A request's headers must arrive within this time of the connection
    /// opening or going idle; it is also how long an idle keep-alive lasts.
    pub header_read_timeout: Duration,
    /// A connection whose client has taken nothing for this long is closed.
    pub write_stall_timeout: Duration,
    /// How long a shutdown waits for requests in flight before it cuts them off.
    pub shutdown_grace: Duration,
}

impl Config {
    /// A configuration for the given database and content, with the defaults of `tribune serve`.
    pub fn new(database_url: impl Into<String>, content_dir: impl Into<PathBuf>) -> Self {
        let bind = SocketAddr::from(([127, 0, 0, 1], 8080));
        Self {
            bind,
            database_url: database_url.into(),
            content_dir: content_dir.into(),
            base_url: format!("http://{bind}"),
            max_votes_per_address: Some(20),
            trusted_proxies: TrustedProxies::default(),
            rate_limit: None,
            address_window: Duration::from_secs(60 * 60),
            idempotency_window: Duration::from_secs(24 * 60 * 60),
            upkeep_every: Duration::from_secs(60),
            write_lock_wait: Duration::from_secs(5),
            writer_faults: None,
            secret: None,
            write_batch: 1024,
            max_streams_per_address: Some(64),
            max_streams: None,
            live_pace: Duration::from_millis(250),
            heartbeat: Duration::from_secs(15),
            header_read_timeout: Duration::from_secs(10),
            write_stall_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(5),
        }
    }

    /// Cookies get `Secure` when the site is served over https.
    pub fn secure_cookies(&self) -> bool {
        self.base_url.starts_with("https://")
    }
}

/// Normalises a base URL: trims it and drops the trailing slash.
pub fn normalise_base_url(url: &str) -> Result<String, String> {
    let url = url.trim().trim_end_matches('/');
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!(
            "base URL must start with http:// or https://, got {url:?}"
        ));
    }
    Ok(url.to_owned())
}
