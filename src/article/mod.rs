//! Articles: what an article is as written (`ArticleText`, with its author,
//! image and the site around it), the catalogue of them rendered at
//! start-up, and the pages that show them.

pub mod fast;
pub mod markdown;
mod page;
pub mod routes;
mod share;

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use page::PageCache;
pub use routes::routes;

use crate::i18n::Lang;

/// The site around the articles: its name and footer links, as
/// `content/site.toml` gives them.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Site {
    pub name: String,
    #[serde(default)]
    pub footer_links: Vec<FooterLink>,
}

/// A link in the footer (stored as JSON in this shape).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FooterLink {
    pub label: String,
    pub href: String,
    /// Shown only on pages in this language; on every page when absent.
    #[serde(default)]
    pub lang: Option<Lang>,
}

/// Who wrote an article, and the line that says who they are.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Author {
    pub name: String,
    pub bio: String,
}

/// A picture with its credit; `src` is optional so a credit can stand alone.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Image {
    pub credit: String,
    pub src: Option<String>,
    pub alt: Option<String>,
}

/// An article as its editor wrote it: the Markdown, and what is said about
/// it. The importer stores it; the server loads it and renders it (`Article`).
#[derive(Clone, Debug, PartialEq)]
pub struct ArticleText {
    pub slug: String,
    pub lang: Lang,
    pub title: String,
    pub translation: Option<String>,
    pub published: Option<String>,
    pub author: Author,
    pub image: Option<Image>,
    pub body_markdown: String,
}

/// An article ready to show: its Markdown already turned into HTML.
#[derive(Debug)]
pub struct Article {
    pub id: i64,
    pub slug: String,
    pub lang: Lang,
    pub title: String,
    pub translation: Option<String>,
    pub author: Author,
    pub published: Option<String>,
    pub image: Option<Image>,
    pub lead_html: String,
    pub body_html: String,
    /// The lead as plain text, for the page description.
    pub summary: String,
    pub poll_id: Option<Arc<str>>,
}

impl Article {
    /// Article `id`, rendered from its text.
    pub fn new(id: i64, text: ArticleText, poll_id: Option<Arc<str>>) -> Self {
        let rendered = markdown::render(&text.body_markdown, text.image.as_ref());
        let summary = summary_of(&text.body_markdown);
        Self {
            id,
            slug: text.slug,
            lang: text.lang,
            title: text.title,
            translation: text.translation,
            author: text.author,
            published: text.published,
            image: text.image,
            lead_html: rendered.lead_html,
            body_html: rendered.body_html,
            summary,
            poll_id,
        }
    }

    pub fn path(&self) -> String {
        format!("/articles/{}", self.slug)
    }
}

/// The first paragraph as plain text, cut at a word near 300 characters.
fn summary_of(markdown: &str) -> String {
    let first = markdown
        .split("\n\n")
        .map(str::trim)
        .find(|p| !p.is_empty() && !p.starts_with('>') && !p.starts_with('#'))
        .unwrap_or_default();
    let text: String = first.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.chars().count() <= 300 {
        return text;
    }
    let cut: String = text.chars().take(300).collect();
    match cut.rfind(' ') {
        Some(space) => format!("{}…", &cut[..space]),
        None => format!("{cut}…"),
    }
}

/// Every article, and the site around them.
#[derive(Debug)]
pub struct Catalog {
    pub site: Site,
    /// Newest first.
    pub articles: Vec<Arc<Article>>,
    by_slug: HashMap<String, Arc<Article>>,
}

impl Catalog {
    pub fn new(site: Site, articles: Vec<Article>) -> Self {
        let articles: Vec<Arc<Article>> = articles.into_iter().map(Arc::new).collect();
        let by_slug = articles
            .iter()
            .map(|a| (a.slug.clone(), a.clone()))
            .collect();
        Self {
            site,
            articles,
            by_slug,
        }
    }

    pub fn article(&self, slug: &str) -> Option<&Arc<Article>> {
        self.by_slug.get(slug)
    }
}
