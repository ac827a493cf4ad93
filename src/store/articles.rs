//! Articles and the site, as the importer writes them and the server loads them.

use sqlx::Row;

use super::{Conn, Db, on_engine};
use crate::article::{ArticleText, Author, FooterLink, Image, Site};
use crate::i18n::Lang;

pub async fn save_site(conn: Conn<'_>, site: &Site) -> sqlx::Result<()> {
    let links = serde_json::to_string(&site.footer_links).unwrap_or_else(|_| "[]".to_owned());
    on_engine!(conn, |c, _engine| {
        sqlx::query(
            r"insert into site (id, name, footer_links) values (1, $1, $2)
              on conflict (id) do update set name = excluded.name, footer_links = excluded.footer_links",
        )
        .bind(&site.name)
        .bind(links)
        .execute(c)
        .await?;
    });
    Ok(())
}

pub async fn load_site(db: &Db) -> sqlx::Result<Option<Site>> {
    let mut pooled = db.acquire().await?;
    let row: Option<(String, String)> = on_engine!(pooled.conn(), |c, _engine| {
        sqlx::query_as(r"select name, footer_links from site where id = 1")
            .fetch_optional(c)
            .await?
    });
    Ok(row.map(|(name, links)| Site {
        name,
        footer_links: serde_json::from_str::<Vec<FooterLink>>(&links).unwrap_or_default(),
    }))
}

/// Inserts or updates an article by slug, noting the file it came from;
/// returns its id.
pub async fn upsert_article(
    conn: Conn<'_>,
    article: &ArticleText,
    source_path: &str,
    now: &str,
) -> sqlx::Result<i64> {
    let image = article.image.as_ref();
    on_engine!(conn, |c, _engine| sqlx::query_scalar(
        r"insert into articles
              (slug, lang, title, translation, author_name, author_bio, published_at,
               image_src, image_alt, image_credit, body_markdown, source_path, imported_at)
          values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
          on conflict (slug) do update set
              lang = excluded.lang, title = excluded.title, translation = excluded.translation,
              author_name = excluded.author_name, author_bio = excluded.author_bio,
              published_at = excluded.published_at, image_src = excluded.image_src,
              image_alt = excluded.image_alt, image_credit = excluded.image_credit,
              body_markdown = excluded.body_markdown, source_path = excluded.source_path,
              imported_at = excluded.imported_at
          returning id",
    )
    .bind(&article.slug)
    .bind(article.lang.code())
    .bind(&article.title)
    .bind(&article.translation)
    .bind(&article.author.name)
    .bind(&article.author.bio)
    .bind(&article.published)
    .bind(image.and_then(|i| i.src.as_deref()))
    .bind(image.and_then(|i| i.alt.as_deref()))
    .bind(image.map(|i| i.credit.as_str()))
    .bind(&article.body_markdown)
    .bind(source_path)
    .bind(now)
    .fetch_one(c)
    .await)
}

/// Every article with its id, newest first (by publication date, then by
/// import order).
pub async fn load_articles(db: &Db) -> sqlx::Result<Vec<(i64, ArticleText)>> {
    let mut pooled = db.acquire().await?;
    on_engine!(pooled.conn(), |c, _engine| {
        let rows = sqlx::query(
            r"select id, slug, lang, title, translation, author_name, author_bio, published_at,
                     image_src, image_alt, image_credit, body_markdown
                from articles
               order by published_at is null, published_at desc, id desc",
        )
        .fetch_all(c)
        .await?;
        rows.iter()
            .map(|row| {
                let credit: Option<String> = row.try_get("image_credit")?;
                let lang: String = row.try_get("lang")?;
                let text = ArticleText {
                    slug: row.try_get("slug")?,
                    lang: Lang::parse(&lang).unwrap_or_default(),
                    title: row.try_get("title")?,
                    translation: row.try_get("translation")?,
                    author: Author {
                        name: row.try_get("author_name")?,
                        bio: row.try_get("author_bio")?,
                    },
                    published: row.try_get("published_at")?,
                    image: match credit {
                        Some(credit) => Some(Image {
                            credit,
                            src: row.try_get("image_src")?,
                            alt: row.try_get("image_alt")?,
                        }),
                        None => None,
                    },
                    body_markdown: row.try_get("body_markdown")?,
                };
                Ok((row.try_get("id")?, text))
            })
            .collect()
    })
}
