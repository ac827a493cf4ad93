//! What the article, print and index pages show, and the cache of the
//! anonymous article page.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use askama::Template;
use bytes::Bytes;
use parking_lot::RwLock;
use time::format_description::well_known::Rfc3339;

use super::share::ShareLink;
use super::{Article, Catalog, FooterLink};
use crate::assets;
use crate::i18n::Labels;
use crate::poll::PollState;
use crate::rating::{RatingState, Stars};

/// What every page's frame needs.
pub struct PageMeta<'a> {
    pub lang: &'static str,
    pub title: String,
    pub description: String,
    pub canonical: String,
    pub site_name: &'a str,
    pub css: &'static str,
    pub js: &'static str,
    pub footer: Vec<&'a FooterLink>,
    pub labels: &'static Labels,
    /// `og:type`
    pub kind: &'static str,
}

impl<'a> PageMeta<'a> {
    pub fn new(
        catalog: &'a Catalog,
        labels: &'static Labels,
        title: String,
        description: String,
        canonical: String,
    ) -> Self {
        Self {
            lang: labels.lang.code(),
            title,
            description,
            canonical,
            site_name: &catalog.site.name,
            css: assets::url(assets::STYLESHEET),
            js: assets::url(assets::SCRIPT),
            footer: catalog
                .site
                .footer_links
                .iter()
                .filter(|l| l.lang.is_none_or(|lang| lang == labels.lang))
                .collect(),
            labels,
            kind: "website",
        }
    }

    /// The words for counts, for the script's `data-forms`; brackets as JSON
    /// escapes, so "(no votes)" appears in the page only where it is shown.
    pub fn plural_forms_attr(&self) -> String {
        self.labels
            .plural_forms_json()
            .replace('(', "\\u0028")
            .replace(')', "\\u0029")
    }
}

impl<'a> PageMeta<'a> {
    /// The frame of an article's page, in the article's language.
    pub fn for_article(catalog: &'a Catalog, article: &Article, url: String) -> Self {
        let mut meta = Self::new(
            catalog,
            article.lang.labels(),
            article.title.clone(),
            article.summary.clone(),
            url,
        );
        meta.kind = "article";
        meta
    }
}

pub struct TranslationLink {
    pub href: String,
    pub lang: &'static str,
    pub label: &'static str,
}

pub struct PollView {
    pub id: String,
    pub action: String,
    pub question: String,
    pub open: bool,
    pub voted: bool,
    pub closes_at: Option<String>,
    pub options: Vec<OptionView>,
    /// "108 votes", for the total line under the results.
    pub total_text: String,
}

impl PollView {
    pub fn show_form(&self) -> bool {
        self.open && !self.voted
    }
}

pub struct OptionView {
    pub id: u32,
    pub label: String,
    pub percent: u8,
    /// "33 (31%)"
    pub result: String,
    pub chosen: bool,
}

impl PollView {
    pub fn new(poll: &PollState, your_vote: Option<u32>, labels: &Labels) -> Self {
        Self {
            id: poll.id.to_string(),
            action: format!("/polls/{}/vote", poll.id),
            question: poll.question.clone(),
            open: poll.is_open(),
            voted: your_vote.is_some(),
            closes_at: poll.closes_at.and_then(|t| t.format(&Rfc3339).ok()),
            options: poll
                .options
                .iter()
                .zip(&poll.percents)
                .map(|(o, &percent)| OptionView {
                    id: o.id,
                    label: o.label.clone(),
                    percent,
                    result: format!("{} ({percent}%)", o.votes),
                    chosen: your_vote == Some(o.id),
                })
                .collect(),
            total_text: labels.votes(poll.total_votes),
        }
    }
}

pub struct RatingView {
    pub action: String,
    /// The average to one decimal, when anyone has rated.
    pub average: Option<String>,
    /// "(no votes)", "(3 votes)"
    pub count_text: String,
    pub your_rating: Option<u8>,
    pub stars: Vec<StarView>,
}

pub struct StarView {
    pub value: u8,
    pub label: String,
    pub checked: bool,
    /// Filled in the average display.
    pub lit: bool,
    /// Half filled: the average, to the nearest half, ends on this star.
    pub half: bool,
}

impl RatingView {
    pub fn new(slug: &str, rating: &RatingState, your_rating: Option<u8>, labels: &Labels) -> Self {
        let average = rating.average();
        let rounded = average.map(|a| (a * 2.0).round() / 2.0).unwrap_or(0.0);
        Self {
            action: format!("/articles/{slug}/rating"),
            average: average.map(|a| format!("{a:.1}")),
            count_text: labels.votes_in_parens(rating.count()),
            your_rating,
            stars: Stars::ALL
                .iter()
                .map(|&value| StarView {
                    value,
                    label: labels.stars_of_five(value),
                    checked: your_rating == Some(value),
                    lit: f64::from(value) <= rounded,
                    half: f64::from(value) - 0.5 == rounded,
                })
                .collect(),
        }
    }
}

pub struct ShareView {
    pub url: String,
    pub title: String,
    pub links: Vec<ShareLink>,
}

#[derive(Template)]
#[template(path = "article.html")]
pub struct ArticlePage<'a> {
    pub meta: PageMeta<'a>,
    pub article: &'a Article,
    pub translation: Option<TranslationLink>,
    pub poll: Option<PollView>,
    pub rating: RatingView,
    pub share: ShareView,
    pub json_ld: String,
    pub print_url: String,
}

#[derive(Template)]
#[template(path = "print.html")]
pub struct PrintPage<'a> {
    pub meta: PageMeta<'a>,
    pub article: &'a Article,
    pub poll: Option<PollView>,
    pub rating: RatingView,
    pub page_url: String,
}

pub struct IndexEntry<'a> {
    pub article: &'a Article,
    pub lang: &'static str,
}

#[derive(Template)]
#[template(path = "index.html")]
pub struct IndexPage<'a> {
    pub meta: PageMeta<'a>,
    pub entries: Vec<IndexEntry<'a>>,
}

/// The `Article` structured data, with `AggregateRating` only when there are ratings.
pub fn json_ld(article: &Article, site_name: &str, url: &str, rating: &RatingState) -> String {
    let mut data = serde_json::json!({
        "@context": "https://schema.org",
        "@type": "Article",
        "headline": article.title,
        "inLanguage": article.lang.code(),
        "url": url,
        "mainEntityOfPage": url,
        "description": article.summary,
        "author": { "@type": "Person", "name": article.author.name, "description": article.author.bio },
        "publisher": { "@type": "Organization", "name": site_name },
    });
    if let Some(published) = &article.published {
        data["datePublished"] = published.clone().into();
    }
    if let Some(image) = &article.image {
        let mut object = serde_json::json!({ "@type": "ImageObject", "creditText": image.credit });
        if let Some(src) = &image.src {
            object["contentUrl"] = src.clone().into();
        }
        data["image"] = object;
    }
    if let Some(average) = rating.average() {
        data["aggregateRating"] = serde_json::json!({
            "@type": "AggregateRating",
            "ratingValue": average,
            "ratingCount": rating.count(),
            "bestRating": 5,
            "worstRating": 1,
        });
    }
    escape_for_script(&data.to_string())
}

/// JSON that may stand inside `<script>`: `<`, `>` and `&` occur only within
/// its strings, where `\u003c`, `\u003e` and `\u0026` mean the same, and then
/// neither `</script>` nor `<!--` can end or hide the rest of the page.
fn escape_for_script(json: &str) -> String {
    let mut escaped = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => escaped.push_str("\\u003c"),
            '>' => escaped.push_str("\\u003e"),
            '&' => escaped.push_str("\\u0026"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// A content coding the reader accepts, for pages kept compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    Brotli,
}

impl Encoding {
    /// The best coding `Accept-Encoding` allows: brotli, then gzip, else none.
    pub fn negotiate(accept_encoding: Option<&str>) -> Self {
        let accepts = |wanted: &str| {
            accept_encoding
                .into_iter()
                .flat_map(|v| v.split(','))
                .any(|item| {
                    let mut parts = item.split(';').map(str::trim);
                    let coding = parts.next().unwrap_or_default();
                    let refused = parts.any(|p| {
                        p.strip_prefix("q=").and_then(|q| q.parse::<f32>().ok()) == Some(0.0)
                    });
                    coding.eq_ignore_ascii_case(wanted) && !refused
                })
        };
        if accepts("br") {
            Self::Brotli
        } else if accepts("gzip") {
            Self::Gzip
        } else {
            Self::Identity
        }
    }

    pub fn header(self) -> Option<&'static str> {
        match self {
            Self::Identity => None,
            Self::Gzip => Some("gzip"),
            Self::Brotli => Some("br"),
        }
    }
}

/// The anonymous article page, rendered once per state of its poll and rating,
/// and compressed once per coding a reader asks for.
#[derive(Default)]
pub struct PageCache {
    pages: RwLock<HashMap<String, Arc<CachedPage>>>,
}

pub struct CachedPage {
    poll: Option<Arc<PollState>>,
    poll_open: bool,
    rating: Arc<RatingState>,
    identity: Bytes,
    gzip: OnceLock<Bytes>,
    brotli: OnceLock<Bytes>,
}

impl CachedPage {
    /// The page in `encoding`, compressing it the first time it is asked for.
    pub fn body(&self, encoding: Encoding) -> Bytes {
        match encoding {
            Encoding::Identity => self.identity.clone(),
            Encoding::Gzip => self.gzip.get_or_init(|| gzip(&self.identity)).clone(),
            Encoding::Brotli => self.brotli.get_or_init(|| brotli(&self.identity)).clone(),
        }
    }
}

fn gzip(bytes: &[u8]) -> Bytes {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(bytes.len() / 3),
        flate2::Compression::best(),
    );
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default().into()
}

fn brotli(bytes: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(bytes.len() / 3);
    let params = ::brotli::enc::BrotliEncoderParams {
        quality: 9,
        lgwin: 22,
        ..Default::default()
    };
    // Reading from a slice into a Vec cannot fail.
    let _ = ::brotli::BrotliCompress(&mut &bytes[..], &mut out, &params);
    out.into()
}

impl PageCache {
    /// The cached page, if it was rendered from exactly this state.
    pub fn get(
        &self,
        slug: &str,
        poll: Option<&Arc<PollState>>,
        rating: &Arc<RatingState>,
    ) -> Option<Arc<CachedPage>> {
        let pages = self.pages.read();
        let page = pages.get(slug)?;
        let same_poll = match (&page.poll, poll) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b) && page.poll_open == b.is_open(),
            (None, None) => true,
            _ => false,
        };
        (same_poll && Arc::ptr_eq(&page.rating, rating)).then(|| page.clone())
    }

    pub fn put(
        &self,
        slug: &str,
        poll: Option<Arc<PollState>>,
        rating: Arc<RatingState>,
        body: Bytes,
    ) -> Arc<CachedPage> {
        // Compared with `is_open()` on the way out, so asked the same way here.
        let poll_open = poll.as_ref().is_some_and(|p| p.is_open());
        let page = Arc::new(CachedPage {
            poll,
            poll_open,
            rating,
            identity: body,
            gzip: OnceLock::new(),
            brotli: OnceLock::new(),
        });
        self.pages.write().insert(slug.to_owned(), page.clone());
        page
    }
}

#[cfg(test)]
mod tests {
    use super::Encoding;

    #[test]
    fn accept_encoding_is_negotiated() {
        assert_eq!(Encoding::negotiate(None), Encoding::Identity);
        assert_eq!(
            Encoding::negotiate(Some("gzip, deflate, br, zstd")),
            Encoding::Brotli
        );
        assert_eq!(Encoding::negotiate(Some("gzip")), Encoding::Gzip);
        assert_eq!(
            Encoding::negotiate(Some("br;q=0, gzip;q=0.5")),
            Encoding::Gzip
        );
        assert_eq!(Encoding::negotiate(Some("identity")), Encoding::Identity);
        assert_eq!(Encoding::negotiate(Some("BR")), Encoding::Brotli);
    }
}
