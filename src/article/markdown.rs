//! Turns an article's Markdown into the lead and the body the page shows.
//!
//! The first paragraph is the lead; a block quote is a pull quote; a paragraph
//! that is only `{{ image }}` is where the picture and its credit go. Raw HTML
//! in the Markdown is shown as text, never passed through.

use askama::Template;
use pulldown_cmark::{Event, Parser, Tag, TagEnd, html};

use super::Image;

/// The paragraph that marks where the article's image stands.
pub const IMAGE_PLACEHOLDER: &str = "{{ image }}";

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rendered {
    /// The first paragraph's inner HTML.
    pub lead_html: String,
    /// Everything after the lead.
    pub body_html: String,
}

#[derive(Template)]
#[template(path = "partials/figure.html")]
struct Figure<'a> {
    image: &'a Image,
}

/// Checks the `{{ image }}` marker: at most one, and only with an `[image]`.
/// On error gives the 1-based line within `body` and the reason.
pub fn check_image_placeholder(body: &str, has_image: bool) -> Result<(), (usize, String)> {
    let mut seen = false;
    for (index, line) in body.lines().enumerate() {
        if line.trim() != IMAGE_PLACEHOLDER {
            continue;
        }
        if !has_image {
            return Err((
                index + 1,
                format!("{IMAGE_PLACEHOLDER} needs an [image] table in the front matter"),
            ));
        }
        if seen {
            return Err((
                index + 1,
                format!("{IMAGE_PLACEHOLDER} may appear only once"),
            ));
        }
        seen = true;
    }
    Ok(())
}

/// Renders an article body.
pub fn render(markdown: &str, image: Option<&Image>) -> Rendered {
    let mut blocks = top_level_blocks(markdown);
    let mut rendered = Rendered::default();

    let lead_at = blocks.iter().position(|b| {
        matches!(b.first(), Some(Event::Start(Tag::Paragraph))) && !is_placeholder(b)
    });
    if let Some(index) = lead_at {
        let lead = blocks.remove(index);
        // Drop the paragraph's own start and end: the template wraps the lead.
        let inner = lead
            .into_iter()
            .filter(|e| {
                !matches!(
                    e,
                    Event::Start(Tag::Paragraph) | Event::End(TagEnd::Paragraph)
                )
            })
            .map(html_as_text);
        html::push_html(&mut rendered.lead_html, inner);
    }

    let figure = image.map(|image| Figure { image }.render().unwrap_or_default());
    let has_placeholder = blocks.iter().any(|b| is_placeholder(b));
    if let (Some(figure), false) = (&figure, has_placeholder) {
        rendered.body_html.push_str(figure);
    }
    for block in blocks {
        if is_placeholder(&block) {
            if let Some(figure) = &figure {
                rendered.body_html.push_str(figure);
            }
            continue;
        }
        let events = block
            .into_iter()
            .map(html_as_text)
            .map(|event| match event {
                Event::Start(Tag::BlockQuote(_)) => {
                    Event::Html("<blockquote class=\"pullquote\">\n".into())
                }
                other => other,
            });
        html::push_html(&mut rendered.body_html, events);
    }
    rendered
}

/// Raw HTML in the Markdown, in the lead as in the body, is shown as text.
fn html_as_text(event: Event<'_>) -> Event<'_> {
    match event {
        Event::Html(text) | Event::InlineHtml(text) => Event::Text(text),
        other => other,
    }
}

/// The Markdown's events, grouped by top-level block.
fn top_level_blocks(markdown: &str) -> Vec<Vec<Event<'_>>> {
    let mut blocks = Vec::new();
    let mut current = Vec::new();
    let mut depth = 0_usize;
    for event in Parser::new(markdown) {
        match &event {
            Event::Start(_) => depth += 1,
            Event::End(_) => depth = depth.saturating_sub(1),
            _ => {}
        }
        current.push(event);
        if depth == 0 {
            blocks.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        blocks.push(current);
    }
    blocks
}

fn is_placeholder(block: &[Event<'_>]) -> bool {
    let [
        Event::Start(Tag::Paragraph),
        inner @ ..,
        Event::End(TagEnd::Paragraph),
    ] = block
    else {
        return false;
    };
    let text: String = inner
        .iter()
        .map(|e| match e {
            Event::Text(t) => t.as_ref(),
            _ => "\u{0}",
        })
        .collect();
    text.trim() == IMAGE_PLACEHOLDER
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_paragraph_is_the_lead_and_quotes_are_pull_quotes() {
        let r = render("Lead *text*.\n\nBody.\n\n> Quoted.\n", None);
        assert_eq!(r.lead_html, "Lead <em>text</em>.");
        assert!(r.body_html.contains("<p>Body.</p>"));
        assert!(
            r.body_html
                .contains("<blockquote class=\"pullquote\">\n<p>Quoted.</p>\n</blockquote>")
        );
    }

    #[test]
    fn raw_html_is_shown_as_text() {
        let r = render(
            "A <b id=\"x\">lead</b>.\n\n<script>alert(1)</script>\n\nA <b>b</b>.\n",
            None,
        );
        assert_eq!(r.lead_html, "A &lt;b id=\"x\"&gt;lead&lt;/b&gt;.");
        assert!(!r.body_html.contains("<script>"));
        assert!(r.body_html.contains("&lt;script&gt;"));
        assert!(r.body_html.contains("&lt;b&gt;"));
    }

    #[test]
    fn the_image_goes_where_the_marker_is() {
        let image = Image {
            credit: "Photo: example.org".into(),
            src: None,
            alt: None,
        };
        let r = render("Lead.\n\nOne.\n\n{{ image }}\n\nTwo.\n", Some(&image));
        let credit = r.body_html.find("Photo: example.org").unwrap_or(usize::MAX);
        let one = r.body_html.find("One.").unwrap_or(usize::MAX);
        let two = r.body_html.find("Two.").unwrap_or(0);
        assert!(one < credit && credit < two, "{}", r.body_html);
        assert!(!r.body_html.contains("<img"), "no image without a src");
        assert!(!r.body_html.contains("{{"));
    }

    #[test]
    fn the_marker_needs_an_image_and_appears_once() {
        assert!(check_image_placeholder("a\n\n{{ image }}\n", false).is_err());
        assert_eq!(
            check_image_placeholder("a\n\n{{ image }}\n\n{{ image }}\n", true).map_err(|e| e.0),
            Err(5)
        );
        assert!(check_image_placeholder("a\n\n{{ image }}\n", true).is_ok());
    }
}
