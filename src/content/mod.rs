//! The editors' files: `content/site.toml` and `content/articles/*.md`.
//!
//! `parse` reads and checks every file before anything is written, so a mistake
//! in one file stops the whole import with the file, the line and the reason;
//! `import` then writes everything in one transaction. What the files say is
//! read into the domain's own types (`ArticleText`, `PollDefinition`), which
//! the store takes.

mod import;

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

pub use import::{ImportError, ImportReport, import};

use crate::article::{ArticleText, Author, Image, Site, markdown};
use crate::i18n::Lang;
use crate::poll::{OptionDefinition, PollDefinition, PollStatus};

/// A mistake in a content file: where it is and what is wrong.
#[derive(Debug, thiserror::Error)]
pub struct ContentError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for ContentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file.display(), self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

impl ContentError {
    fn new(file: &Path, line: Option<usize>, message: impl Into<String>) -> Self {
        Self {
            file: file.to_owned(),
            line,
            message: message.into(),
        }
    }
}

/// The TOML front matter of an article.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FrontMatter {
    title: String,
    slug: Option<Spanned<String>>,
    lang: Lang,
    translation: Option<Spanned<String>>,
    published: Option<toml::value::Datetime>,
    author: Author,
    image: Option<Image>,
    poll: Option<PollSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PollSpec {
    id: Spanned<String>,
    question: String,
    #[serde(default)]
    status: PollStatus,
    closes_at: Option<toml::value::Datetime>,
    options: Vec<OptionSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OptionSpec {
    id: Spanned<u32>,
    label: String,
    #[serde(default)]
    votes: u32,
}

/// An article file, checked: the article, where it came from, and its poll.
#[derive(Clone, Debug, PartialEq)]
pub struct ArticleDoc {
    pub text: ArticleText,
    pub source_path: String,
    pub poll: Option<PollDefinition>,
}

/// Everything in a content folder, checked.
#[derive(Debug)]
pub struct Content {
    pub site: Site,
    pub articles: Vec<ArticleDoc>,
}

/// A slug or poll id: lowercase letters, digits and single hyphens.
pub fn is_valid_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--")
}

/// Reads and checks a content folder. Nothing is written.
pub fn parse(dir: &Path) -> Result<Content, ContentError> {
    let site_path = dir.join("site.toml");
    let site_text = read(&site_path)?;
    let site: Site =
        toml::from_str(&site_text).map_err(|e| toml_error(&site_path, &site_text, 0, &e))?;
    if site.name.trim().is_empty() {
        return Err(ContentError::new(
            &site_path,
            Some(1),
            "the site name is empty",
        ));
    }

    let articles_dir = dir.join("articles");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&articles_dir)
        .map_err(|e| {
            ContentError::new(&articles_dir, None, format!("cannot read the folder: {e}"))
        })?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|ext| ext == "md"))
        .collect();
    paths.sort();

    // Each article with the line of its `translation` key, for the check below.
    let mut articles: Vec<(ArticleDoc, Option<usize>)> = Vec::new();
    for path in &paths {
        let text = read(path)?;
        let (doc, translation_line) = parse_article(path, &text)?;
        if let Some((other, _)) = articles.iter().find(|(a, _)| a.text.slug == doc.text.slug) {
            return Err(ContentError::new(
                path,
                None,
                format!(
                    "slug {:?} is already used by {}",
                    doc.text.slug, other.source_path
                ),
            ));
        }
        if let Some(poll) = &doc.poll
            && let Some((other, _)) = articles
                .iter()
                .find(|(a, _)| a.poll.as_ref().is_some_and(|p| p.id == poll.id))
        {
            return Err(ContentError::new(
                path,
                None,
                format!(
                    "poll id {:?} is already used by {}",
                    poll.id, other.source_path
                ),
            ));
        }
        articles.push((doc, translation_line));
    }

    // A translation must name another article that exists.
    for (doc, line) in &articles {
        let Some(target) = &doc.text.translation else {
            continue;
        };
        let line = *line;
        let path = Path::new(&doc.source_path);
        if target == &doc.text.slug {
            return Err(ContentError::new(
                path,
                line,
                "an article cannot be its own translation",
            ));
        }
        if !articles.iter().any(|(a, _)| &a.text.slug == target) {
            return Err(ContentError::new(
                path,
                line,
                format!("translation {target:?} names no article in this folder"),
            ));
        }
    }

    Ok(Content {
        site,
        articles: articles.into_iter().map(|(doc, _)| doc).collect(),
    })
}

fn read(path: &Path) -> Result<String, ContentError> {
    std::fs::read_to_string(path)
        .map_err(|e| ContentError::new(path, None, format!("cannot read the file: {e}")))
}

/// The 1-based line within `text` where byte offset `span.start` lies.
fn line_of(text: &str, span: Range<usize>) -> usize {
    let start = span.start.min(text.len());
    text.as_bytes()[..start]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

fn toml_error(
    path: &Path,
    text: &str,
    line_offset: usize,
    error: &toml::de::Error,
) -> ContentError {
    let line = error.span().map(|span| line_offset + line_of(text, span));
    ContentError::new(path, line, error.message().trim().to_owned())
}

/// Splits the front matter from the body: `(front matter, its first line, body, body's first line)`.
fn split_front_matter<'a>(
    path: &Path,
    text: &'a str,
) -> Result<(&'a str, usize, &'a str, usize), ContentError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let rest = text
        .strip_prefix("+++\n")
        .or_else(|| text.strip_prefix("+++\r\n"))
        .ok_or_else(|| {
            ContentError::new(
                path,
                Some(1),
                "the file must start with a +++ line opening the front matter",
            )
        })?;
    let mut offset = 0;
    for line in rest.split_inclusive('\n') {
        if line.trim_end() == "+++" {
            let front = &rest[..offset];
            let body = &rest[offset + line.len()..];
            let body_line = 2 + front.matches('\n').count() + 1;
            return Ok((front, 2, body, body_line));
        }
        offset += line.len();
    }
    Err(ContentError::new(
        path,
        None,
        "the front matter has no closing +++ line",
    ))
}

fn parse_article(path: &Path, text: &str) -> Result<(ArticleDoc, Option<usize>), ContentError> {
    let (front, front_line, body, body_line) = split_front_matter(path, text)?;
    // Lines reported for the front matter count from the file's first line.
    let at = |span: Range<usize>| Some(front_line - 1 + line_of(front, span));
    let fm: FrontMatter =
        toml::from_str(front).map_err(|e| toml_error(path, front, front_line - 1, &e))?;

    let slug = match &fm.slug {
        Some(slug) => {
            if !is_valid_slug(slug.get_ref()) {
                return Err(ContentError::new(
                    path,
                    at(slug.span()),
                    format!(
                        "slug {:?} must be lowercase letters, digits and hyphens",
                        slug.get_ref()
                    ),
                ));
            }
            slug.get_ref().clone()
        }
        None => {
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default();
            if !is_valid_slug(stem) {
                return Err(ContentError::new(
                    path,
                    None,
                    format!(
                        "the file name {stem:?} is not a valid slug; name the file or set `slug`"
                    ),
                ));
            }
            stem.to_owned()
        }
    };
    for (what, value) in [("title", &fm.title), ("author.name", &fm.author.name)] {
        if value.trim().is_empty() {
            return Err(ContentError::new(path, None, format!("`{what}` is empty")));
        }
    }
    if body.trim().is_empty() {
        return Err(ContentError::new(
            path,
            Some(body_line),
            "the article has no text",
        ));
    }
    markdown::check_image_placeholder(body, fm.image.is_some())
        .map_err(|(line, message)| ContentError::new(path, Some(body_line - 1 + line), message))?;

    let poll = match fm.poll {
        None => None,
        Some(spec) => {
            if !is_valid_slug(spec.id.get_ref()) {
                return Err(ContentError::new(
                    path,
                    at(spec.id.span()),
                    format!(
                        "poll id {:?} must be lowercase letters, digits and hyphens",
                        spec.id.get_ref()
                    ),
                ));
            }
            if spec.question.trim().is_empty() {
                return Err(ContentError::new(
                    path,
                    at(spec.id.span()),
                    "the poll question is empty",
                ));
            }
            if spec.options.len() < 2 {
                return Err(ContentError::new(
                    path,
                    at(spec.id.span()),
                    "a poll needs at least two options",
                ));
            }
            let mut options: Vec<OptionDefinition> = Vec::with_capacity(spec.options.len());
            for option in &spec.options {
                let id = *option.id.get_ref();
                if id == 0 {
                    return Err(ContentError::new(
                        path,
                        at(option.id.span()),
                        "option ids start at 1",
                    ));
                }
                if options.iter().any(|o| o.id == id) {
                    return Err(ContentError::new(
                        path,
                        at(option.id.span()),
                        format!("duplicate option id {id}"),
                    ));
                }
                if option.label.trim().is_empty() {
                    return Err(ContentError::new(
                        path,
                        at(option.id.span()),
                        format!("option {id} has an empty label"),
                    ));
                }
                options.push(OptionDefinition {
                    id,
                    label: option.label.clone(),
                    seed_votes: option.votes,
                });
            }
            let closes_at = match spec.closes_at {
                None => None,
                Some(dt) => Some(parse_datetime(&dt).ok_or_else(|| {
                    ContentError::new(path, at(spec.id.span()), format!("closes_at {dt} must be a date and time with an offset, like 2026-12-31T00:00:00Z"))
                })?),
            };
            Some(PollDefinition {
                id: spec.id.into_inner(),
                question: spec.question,
                status: spec.status,
                closes_at,
                options,
            })
        }
    };

    let translation_line = fm.translation.as_ref().and_then(|t| at(t.span()));
    let doc = ArticleDoc {
        text: ArticleText {
            slug,
            lang: fm.lang,
            title: fm.title,
            translation: fm.translation.map(Spanned::into_inner),
            published: fm.published.map(|d| d.to_string()),
            author: fm.author,
            image: fm.image,
            body_markdown: body.to_owned(),
        },
        source_path: path.display().to_string(),
        poll,
    };
    Ok((doc, translation_line))
}

fn parse_datetime(dt: &toml::value::Datetime) -> Option<time::OffsetDateTime> {
    dt.offset?;
    time::OffsetDateTime::parse(
        &dt.to_string(),
        &time::format_description::well_known::Rfc3339,
    )
    .ok()
}
