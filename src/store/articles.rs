//! Articles and the site, as the importer writes them and the server loads them.

use sqlx::sqlite::SqliteConnection;
use sqlx::{Row, SqlitePool};

use crate::content::{ArticleDoc, Author, FooterLink, Image, Site};
use crate::i18n::Lang;

pub async fn save_site(conn: &mut SqliteConnection, site: &Site) -> sqlx::Result<()> {
    let links = serde_json::to_string(&site.footer_links).unwrap_or_else(|_| "[]".to_owned());
    sqlx::query(
        r"insert into site (id, name, footer_links) values (1, ?, ?)
          on conflict (id) do update set name = excluded.name, footer_links = excluded.footer_links",
    )
    .bind(&site.name)
    .bind(links)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn load_site(pool: &SqlitePool) -> sqlx::Result<Option<Site>> {
    let row = sqlx::query(r"select name, footer_links from site where id = 1")
        .fetch_optional(pool)
        .await?;
    Ok(row.map(|row| {
        let links: String = row.get("footer_links");
        Site {
            name: row.get("name"),
            footer_links: serde_json::from_str::<Vec<FooterLink>>(&links).unwrap_or_default(),
        }
    }))
}

/// Inserts or updates an article by slug; returns its id.
pub async fn upsert_article(
    conn: &mut SqliteConnection,
    doc: &ArticleDoc,
    now: &str,
) -> sqlx::Result<i64> {
    let image = doc.image.as_ref();
    sqlx::query_scalar(
        r"insert into articles
              (slug, lang, title, translation, author_name, author_bio, published_at,
               image_src, image_alt, image_credit, body_markdown, source_path, imported_at)
          values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
          on conflict (slug) do update set
              lang = excluded.lang, title = excluded.title, translation = excluded.translation,
              author_name = excluded.author_name, author_bio = excluded.author_bio,
              published_at = excluded.published_at, image_src = excluded.image_src,
              image_alt = excluded.image_alt, image_credit = excluded.image_credit,
              body_markdown = excluded.body_markdown, source_path = excluded.source_path,
              imported_at = excluded.imported_at
          returning id",
    )
    .bind(&doc.slug)
    .bind(doc.lang.code())
    .bind(&doc.title)
    .bind(&doc.translation)
    .bind(&doc.author.name)
    .bind(&doc.author.bio)
    .bind(&doc.published)
    .bind(image.and_then(|i| i.src.as_deref()))
    .bind(image.and_then(|i| i.alt.as_deref()))
    .bind(image.map(|i| i.credit.as_str()))
    .bind(&doc.body_markdown)
    .bind(&doc.source_path)
    .bind(now)
    .fetch_one(conn)
    .await
}

/// An article as stored.
#[derive(Clone, Debug)]
pub struct ArticleRow {
    pub id: i64,
    pub slug: String,
    pub lang: Lang,
    pub title: String,
    pub translation: Option<String>,
    pub author: Author,
    pub published: Option<String>,
    pub image: Option<Image>,
    pub body_markdown: String,
}

/// Every article, newest first (by publication date, then by import order).
pub async fn load_articles(pool: &SqlitePool) -> sqlx::Result<Vec<ArticleRow>> {
    let rows = sqlx::query(
        r"select id, slug, lang, title, translation, author_name, author_bio, published_at,
                 image_src, image_alt, image_credit, body_markdown
            from articles
           order by published_at is null, published_at desc, id desc",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let credit: Option<String> = row.get("image_credit");
            ArticleRow {
                id: row.get("id"),
                slug: row.get("slug"),
                lang: Lang::parse(row.get("lang")).unwrap_or_default(),
                title: row.get("title"),
                translation: row.get("translation"),
                author: Author {
                    name: row.get("author_name"),
                    bio: row.get("author_bio"),
                },
                published: row.get("published_at"),
                image: credit.map(|credit| Image {
                    credit,
                    src: row.get("image_src"),
                    alt: row.get("image_alt"),
                }),
                body_markdown: row.get("body_markdown"),
            }
        })
        .collect())
}
