//! The article page and everything around it, over HTTP against the real server.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking
mod common;

use common::{ARTICLE, RUSSIAN_FIXTURE, TestApp, TestRouter, body_text, content_with};
use reqwest::StatusCode;
use reqwest::header;

/// Text as the page writes it inside HTML.
fn escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const SEED: &str = include_str!("fixtures/seed-article-page.txt");
const QUOTES: [&str; 3] = [
    "At the CSTO summit, Vladimir Putin gave a clear signal that Russia was ready to work together with the West.",
    "The CSTO will have to address the IS challenge in its own territory making use of the arsenals of the regional organizations.",
    "The CSTO has potential for preventing the increase in the numbers of IS supporters within its territory.",
];

/// The seed's article paragraphs (the long lines), in order.
fn seed_paragraphs() -> Vec<&'static str> {
    let body_start = SEED.find("The summit of the Collective").unwrap();
    let body_end = SEED[body_start..].find("Rate this article").unwrap() + body_start;
    SEED[body_start..body_end]
        .lines()
        .map(str::trim)
        .filter(|l| l.len() > 150)
        .collect()
}

#[tokio::test]
async fn the_page_carries_every_paragraph_of_the_seed_in_order() {
    let app = TestApp::spawn().await;
    let page = app.get_text(ARTICLE).await;
    let paragraphs = seed_paragraphs();
    assert_eq!(paragraphs.len(), 10, "the seed has ten paragraphs");
    let mut from = 0;
    for paragraph in &paragraphs {
        let at = page[from..]
            .find(&escaped(paragraph))
            .unwrap_or_else(|| panic!("missing or out of order: {}", &paragraph[..60]));
        from += at + paragraph.len();
    }
    // The first paragraph is the lead.
    let lead = format!("<p class=\"lead\">{}</p>", escaped(paragraphs[0]));
    assert!(page.contains(&lead), "the first paragraph is the lead");
}

#[tokio::test]
async fn pull_quotes_are_blockquotes_where_the_seed_has_them() {
    let app = TestApp::spawn().await;
    let page = app.get_text(ARTICLE).await;
    let paragraphs = seed_paragraphs();
    for (quote, (before, after)) in QUOTES.iter().zip([(3, 4), (5, 6), (8, 9)]) {
        let block = format!(
            "<blockquote class=\"pullquote\">\n<p>{}</p>\n</blockquote>",
            escaped(quote)
        );
        let at = page
            .find(&block)
            .unwrap_or_else(|| panic!("no blockquote for {quote}"));
        let prev = page.find(&escaped(paragraphs[before])).unwrap();
        let next = page.find(&escaped(paragraphs[after])).unwrap();
        assert!(
            prev < at && at < next,
            "{quote} is between paragraphs {} and {}",
            before + 1,
            after + 1
        );
    }
}

#[tokio::test]
async fn the_photo_credit_stands_after_the_third_paragraph_with_no_made_up_image() {
    let app = TestApp::spawn().await;
    let page = app.get_text(ARTICLE).await;
    let paragraphs = seed_paragraphs();
    let credit = page
        .find("<figcaption class=\"photo-credit\">Photo: www.odkb-csto.org</figcaption>")
        .expect("credit");
    assert!(page.find(&escaped(paragraphs[2])).unwrap() < credit);
    assert!(credit < page.find(&escaped(paragraphs[3])).unwrap());
    assert!(
        !page.contains("<img"),
        "no image was captured, none is shown"
    );
}

#[tokio::test]
async fn the_page_has_every_element_of_the_seed() {
    let app = TestApp::spawn().await;
    let page = app.get_text(ARTICLE).await;
    for text in [
        "CSTO Summit 2015: New Threats and the Case for Soft Power",
        ">Print<",
        "Rate this article",
        "(no votes)",
        "Share this article",
        "Yulia Nikitina",
        "PhD in Political Science, associate professor at the School of World Political Processes, research associate at the Center for Post-Soviet Studies, MGIMO University",
        "Poll conducted",
        "In your opinion, what are the US long-term goals for Russia?",
        "U.S. wants to establish partnership relations with Russia on condition that it meets the U.S. requirements",
        "U.S. wants to deter Russia’s military and political activity",
        "U.S. wants to dissolve Russia",
        "U.S. wants to establish alliance relations with Russia under the US conditions to rival China",
        "33 (31%)",
        "30 (28%)",
        "24 (22%)",
        "21 (19%)",
        "For business",
        "For researchers",
        "For students",
    ] {
        assert!(page.contains(text), "the page lacks {text:?}");
    }
    // Rate and share appear above and below the article, as on the seed.
    assert_eq!(page.matches("Rate this article").count(), 2);
    assert_eq!(page.matches("Share this article").count(), 2);
    assert_eq!(
        page.matches("href=\"/articles/csto-summit-2015/print\"")
            .count(),
        2
    );
    // The results are in the order of the seed.
    let order: Vec<usize> = ["33 (31%)", "30 (28%)", "24 (22%)", "21 (19%)"]
        .iter()
        .map(|t| page.find(t).unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]));
    // Without a translation there is no language link.
    assert!(!page.contains("translation-link"));
    assert!(!page.contains("Читать на русском"));
}

#[tokio::test]
async fn the_forms_post_to_the_routes_of_the_contract() {
    let app = TestApp::spawn().await;
    let page = app.get_text(ARTICLE).await;
    assert!(page.contains(r#"method="post" action="/polls/us-long-term-goals/vote""#));
    assert_eq!(page.matches(r#"name="option""#).count(), 4);
    assert!(page.contains(">Vote</button>"));
    assert_eq!(
        page.matches(r#"action="/articles/csto-summit-2015/rating""#)
            .count(),
        2
    );
    // Five stars a widget, twice, each a radio in a fieldset with a legend.
    assert_eq!(
        page.matches(r#"type="radio" class="star-input""#).count(),
        10
    );
    for stars in 1..=5 {
        assert_eq!(
            page.matches(&format!(r#"name="stars" value="{stars}""#))
                .count(),
            2
        );
    }
    assert!(page.contains("4 stars of 5") && page.contains("1 star of 5"));
    assert!(page.matches("<legend").count() >= 3);
}

#[tokio::test]
async fn share_links_are_built_on_the_server_for_six_networks() {
    let app = TestApp::spawn().await;
    let page = app.get_text(ARTICLE).await;
    let url = format!("{}{ARTICLE}", app.base);
    let encoded: String = url
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_string()
            } else {
                format!("%{:02X}", c as u32)
            }
        })
        .collect();
    for prefix in [
        "mailto:?subject=",
        "https://x.com/intent/post?url=",
        "https://www.facebook.com/sharer/sharer.php?u=",
        "https://vk.com/share.php?url=",
        "https://t.me/share/url?url=",
        "https://www.linkedin.com/sharing/share-offsite/?url=",
    ] {
        assert_eq!(page.matches(prefix).count(), 2, "{prefix} above and below");
    }
    assert!(
        page.contains(&encoded),
        "links carry the page's absolute URL"
    );
    assert!(page.contains("Copy link"));
}

#[tokio::test]
async fn the_page_loads_nothing_from_third_parties() {
    let app = TestApp::spawn().await;
    let page = app.get_text(ARTICLE).await;
    for tag in [
        "<script src=\"",
        "<link rel=\"stylesheet\" href=\"",
        "<img src=\"",
    ] {
        for (at, _) in page.match_indices(tag) {
            let url = &page[at + tag.len()..];
            assert!(
                url.starts_with('/'),
                "{tag} loads {}",
                &url[..40.min(url.len())]
            );
        }
    }
    assert!(!page.contains("<script>"), "no inline script");
    assert!(!page.contains("style=\""), "no inline style");
    assert!(!page.contains("fonts.googleapis"));
}

#[tokio::test]
async fn the_page_sends_security_headers() {
    let app = TestApp::spawn().await;
    let response = reqwest::get(app.url(ARTICLE)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers();
    let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"));
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert!(headers.contains_key(header::REFERRER_POLICY));
    assert!(headers.contains_key("permissions-policy"));
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        !headers.contains_key(header::SET_COOKIE),
        "reading sets no cookie"
    );
}

#[tokio::test]
async fn pages_are_compressed_with_brotli_and_gzip() {
    let app = TestApp::spawn().await;
    let client = reqwest::Client::new();
    let plain = client
        .get(app.url(ARTICLE))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    for (encoding, decode) in [
        (
            "br",
            Box::new(|b: &[u8]| {
                let mut out = Vec::new();
                brotli::BrotliDecompress(&mut &b[..], &mut out).unwrap();
                out
            }) as Box<dyn Fn(&[u8]) -> Vec<u8>>,
        ),
        (
            "gzip",
            Box::new(|b: &[u8]| {
                use std::io::Read;
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(b)
                    .read_to_end(&mut out)
                    .unwrap();
                out
            }),
        ),
    ] {
        let response = client
            .get(app.url(ARTICLE))
            .header(header::ACCEPT_ENCODING, encoding)
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()[header::CONTENT_ENCODING], encoding);
        let body = response.bytes().await.unwrap();
        assert!(body.len() * 2 < plain.len(), "{encoding} shrinks the page");
        assert_eq!(decode(&body), plain.to_vec());
    }
}

#[tokio::test]
async fn assets_have_fingerprinted_urls_cached_for_a_year() {
    let app = TestApp::spawn().await;
    let page = app.get_text(ARTICLE).await;
    for (marker, content_type) in [
        ("<link rel=\"stylesheet\" href=\"", "text/css"),
        ("<script src=\"", "text/javascript"),
    ] {
        let start = page.find(marker).unwrap() + marker.len();
        let url = &page[start..start + page[start..].find('"').unwrap()];
        assert!(
            url.starts_with("/assets/") && url.matches('.').count() == 2,
            "{url} carries a hash"
        );
        let response = reqwest::get(app.url(url)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            response.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with(content_type)
        );
        let cache = response.headers()[header::CACHE_CONTROL].to_str().unwrap();
        assert!(
            cache.contains("max-age=31536000") && cache.contains("immutable"),
            "{cache}"
        );
    }
    let stale = reqwest::get(app.url("/assets/style.0000000000.css"))
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_print_view_is_the_article_without_forms() {
    let app = TestApp::spawn().await;
    let page = app.get_text(&format!("{ARTICLE}/print")).await;
    for paragraph in seed_paragraphs() {
        assert!(page.contains(&escaped(paragraph)));
    }
    assert!(page.contains("Yulia Nikitina"));
    assert!(page.contains("33 (31%)") && page.contains("21 (19%)"));
    assert!(
        page.contains(&format!("{}{ARTICLE}", app.base)),
        "the print view gives the page's URL"
    );
    assert!(!page.contains("<form"), "no forms on paper");
    assert!(!page.contains("sharer.php"), "no share links on paper");
}

#[tokio::test]
async fn the_index_lists_the_articles() {
    let app = TestApp::spawn().await;
    let page = app.get_text("/").await;
    assert!(page.contains("href=\"/articles/csto-summit-2015\""));
    assert!(page.contains("CSTO Summit 2015: New Threats and the Case for Soft Power"));
    assert!(page.contains("Yulia Nikitina"));
}

#[tokio::test]
async fn unknown_pages_get_a_styled_404() {
    let app = TestApp::spawn().await;
    for path in [
        "/articles/no-such-article",
        "/nope",
        "/articles/no-such-article/print",
    ] {
        let response = reqwest::get(app.url(path)).await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(
            response.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let body = response.text().await.unwrap();
        assert!(
            body.contains("Not Found") && body.contains("rel=\"stylesheet\""),
            "{path}: {body}"
        );
    }
}

#[tokio::test]
async fn health_and_readiness() {
    let app = TestApp::spawn().await;
    assert_eq!(
        reqwest::get(app.url("/healthz")).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        reqwest::get(app.url("/readyz")).await.unwrap().status(),
        StatusCode::OK
    );
}

async fn spawn_with_translation() -> TestApp {
    let content = content_with(&[("csto-summit-2015-ru.md", RUSSIAN_FIXTURE)]);
    // The English article names its translation.
    let english = content.path().join("articles/csto-summit-2015.md");
    let text = std::fs::read_to_string(&english).unwrap().replacen(
        "lang = \"en\"",
        "lang = \"en\"\ntranslation = \"csto-summit-2015-ru\"",
        1,
    );
    std::fs::write(&english, text).unwrap();
    let dir = tempfile::tempdir().unwrap();
    common::copy_dir(content.path(), &dir.path().join("content"));
    let url = common::fresh_database_url(dir.path(), "t.db").await;
    TestApp::start(dir, url, |_| {}).await
}

#[tokio::test]
async fn the_language_link_goes_both_ways() {
    let app = spawn_with_translation().await;
    let english = app.get_text(ARTICLE).await;
    assert_eq!(english.matches(r#"href="/articles/csto-summit-2015-ru" hreflang="ru" lang="ru">Читать на русском</a>"#).count(), 2);
    let russian = app.get_text("/articles/csto-summit-2015-ru").await;
    assert!(russian.contains(r#"<html lang="ru">"#));
    assert_eq!(
        russian
            .matches(
                r#"href="/articles/csto-summit-2015" hreflang="en" lang="en">Read in English</a>"#
            )
            .count(),
        2
    );
    // The Russian page speaks Russian, with Russian footer links.
    for text in [
        "Печать",
        "Оцените статью",
        "(нет голосов)",
        "Поделиться статьёй",
        "Бизнесу",
        "1 звезда из 5",
        "4 звезды из 5",
        "5 звёзд из 5",
    ] {
        assert!(russian.contains(text), "the Russian page lacks {text}");
    }
    assert!(!russian.contains("For business"));
}

#[tokio::test]
async fn russian_counts_take_russian_plurals() {
    let app = spawn_with_translation().await;
    let slug = "csto-summit-2015-ru";
    for (raters, text) in [(1, "(1 голос)"), (3, "(3 голоса)"), (5, "(5 голосов)")]
    {
        while !app
            .get_text(&format!("/api/v1/articles/{slug}/rating"))
            .await
            .contains(&format!("\"count\":{raters}"))
        {
            let status = reqwest::Client::new()
                .put(app.url(&format!("/api/v1/articles/{slug}/rating")))
                .json(&serde_json::json!({ "stars": 4 }))
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(status, StatusCode::OK);
        }
        let page = app.get_text(&format!("/articles/{slug}")).await;
        assert!(page.contains(text), "{raters} raters: {text}");
    }
}

/// The headers a reader would notice, without those that differ per request:
/// the date, and the request id of the log lines (the cached page, which
/// logs nothing, has none).
fn visible_headers(response: &reqwest::Response) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = response
        .headers()
        .iter()
        .filter(|(name, _)| {
            *name != header::DATE && *name != header::CONTENT_LENGTH && *name != "x-request-id"
        })
        .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_owned()))
        .collect();
    headers.sort();
    headers
}

#[tokio::test]
async fn the_cached_page_is_the_same_page_with_the_same_headers() {
    let app = TestApp::spawn().await;
    let client = reqwest::Client::builder()
        .no_gzip()
        .no_brotli()
        .build()
        .unwrap();
    for encoding in ["identity", "gzip", "br"] {
        // The first anonymous request renders the page; the next ones come from the cache.
        let first = client
            .get(app.url(ARTICLE))
            .header(header::ACCEPT_ENCODING, encoding)
            .send()
            .await
            .unwrap();
        let first_headers = visible_headers(&first);
        let first_body = first.bytes().await.unwrap();
        for _ in 0..2 {
            let again = client
                .get(app.url(ARTICLE))
                .header(header::ACCEPT_ENCODING, encoding)
                .send()
                .await
                .unwrap();
            assert_eq!(again.status(), StatusCode::OK);
            assert_eq!(visible_headers(&again), first_headers, "{encoding}");
            assert_eq!(again.bytes().await.unwrap(), first_body, "{encoding}");
        }
        assert!(
            first_headers
                .iter()
                .any(|(n, v)| n == "content-security-policy" && v.contains("script-src 'self'"))
        );
        assert!(
            first_headers
                .iter()
                .any(|(n, v)| n == "vary" && v.contains("Cookie"))
        );
    }
}

#[tokio::test]
async fn the_cached_page_follows_every_vote_and_rating() {
    let app = TestApp::spawn().await;
    for _ in 0..3 {
        assert!(app.get_text(ARTICLE).await.contains("30 (28%)"));
    }
    assert_eq!(app.vote(&app.reader(), 2).await, StatusCode::CREATED);
    let page = app.get_text(ARTICLE).await;
    assert!(
        page.contains("31 (29%)"),
        "an anonymous reader sees the vote at once"
    );
    let rated = app.rate(&reqwest::Client::new(), 2).await;
    assert_eq!(rated.status(), StatusCode::OK);
    assert!(app.get_text(ARTICLE).await.contains("(1 vote)"));
    // A reader's own page is never the cached one.
    let reader = app.reader();
    assert_eq!(app.vote(&reader, 1).await, StatusCode::CREATED);
    let own = reader
        .get(app.url(ARTICLE))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(own.contains("(your vote)"));
    assert!(!app.get_text(ARTICLE).await.contains("(your vote)"));
}

/// An article whose author put markup where text belongs.
const MARKUP_FIXTURE: &str = r#"+++
title = 'Markup <!--<script> & </script> in a title'
slug = "markup"
lang = "en"

[author]
name = "A. Author"
bio = "Writes <i>markup</i>"
+++

<b id="x">A lead</b> with <img src=x onerror="alert(1)"> in it.

A body with <b id="y">markup</b> too.
"#;

#[tokio::test]
async fn markup_in_the_lead_is_shown_as_text_as_in_the_body() {
    let app = TestRouter::with_articles(&[("markup.md", MARKUP_FIXTURE)]).await;
    for path in ["/articles/markup", "/articles/markup/print"] {
        let response = app.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let page = body_text(response).await;
        for markup in [r#"<b id="x">"#, "<img", r#"<b id="y">"#, "<i>"] {
            assert!(!page.contains(markup), "{path}: {markup} is live markup");
        }
        for text in [
            r#"<b id="x">A lead</b> with"#,
            r#"<img src=x onerror="alert(1)">"#,
            r#"<b id="y">markup</b> too"#,
        ] {
            // Markdown text escapes `<`, `>` and `&`; quotes need none there.
            let shown = text.replace('<', "&lt;").replace('>', "&gt;");
            assert!(page.contains(&shown), "{path}: {text} is not shown");
        }
    }
}

#[tokio::test]
async fn the_json_ld_escapes_markup_so_a_title_cannot_end_or_hide_the_page() {
    let app = TestRouter::with_articles(&[("markup.md", MARKUP_FIXTURE)]).await;
    let page = body_text(app.get("/articles/markup").await).await;
    let open = r#"<script type="application/ld+json">"#;
    let start = page.find(open).expect("the page has JSON-LD") + open.len();
    let end = start + page[start..].find("</script>").unwrap();
    let json = &page[start..end];
    for c in ['<', '>', '&'] {
        assert!(!json.contains(c), "{c} in the JSON-LD: {json}");
    }
    assert!(json.contains(r"\u003c!--\u003cscript\u003e \u0026 \u003c/script\u003e"));
    let data: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(
        data["headline"],
        "Markup <!--<script> & </script> in a title"
    );
    assert_eq!(data["author"]["description"], "Writes <i>markup</i>");
    // The title appears nowhere as markup, and the page goes on to its end.
    assert!(!page.contains("<!--"));
    assert_eq!(page.matches("<script").count(), 2, "{page}");
    assert!(page.trim_end().ends_with("</html>"));
}
