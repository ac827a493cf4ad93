//! The stylesheet and the script, compiled into the binary and served under
//! URLs that carry a hash of their content, so browsers may keep them a year.

mod routes;

use std::sync::LazyLock;

pub use routes::routes;

pub const STYLESHEET: &str = "style.css";
pub const SCRIPT: &str = "tribune.js";

struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
    /// `/assets/style.0123456789.css`
    url: String,
}

static ASSETS: LazyLock<Vec<Asset>> = LazyLock::new(|| {
    [
        (
            STYLESHEET,
            "text/css; charset=utf-8",
            &include_bytes!("../../assets/style.css")[..],
        ),
        (
            SCRIPT,
            "text/javascript; charset=utf-8",
            &include_bytes!("../../assets/tribune.js")[..],
        ),
    ]
    .into_iter()
    .map(|(name, content_type, bytes)| {
        let hash = blake3::hash(bytes).to_hex();
        let (stem, ext) = name.rsplit_once('.').unwrap_or((name, ""));
        let url = format!("/assets/{stem}.{}.{ext}", &hash[..10]);
        Asset {
            name,
            content_type,
            bytes,
            url,
        }
    })
    .collect()
});

/// The fingerprinted URL of an asset by its plain name.
pub fn url(name: &str) -> &'static str {
    ASSETS
        .iter()
        .find(|a| a.name == name)
        .map_or("/assets/missing", |a| a.url.as_str())
}
