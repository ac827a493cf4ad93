//! Articles: the catalogue loaded at start-up, and the pages that show them.

pub mod fast;
mod page;
pub mod routes;
mod share;

use std::collections::HashMap;
use std::sync::Arc;

pub use page::PageCache;
pub use routes::routes;

use crate::content::{Author, Image, Site, markdown};
use crate::i18n::Lang;
use crate::store::articles::ArticleRow;

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
    pub fn from_row(row: ArticleRow, poll_id: Option<Arc<str>>) -> Self {
        let rendered = markdown::render(&row.body_markdown, row.image.as_ref());
        let summary = summary_of(&row.body_markdown);
        Self {
            id: row.id,
            slug: row.slug,
            lang: row.lang,
            title: row.title,
            translation: row.translation,
            author: row.author,
            published: row.published,
            image: row.image,
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
