//! Readers' star ratings of articles and the per-star counts kept beside them.

use sqlx::sqlite::SqliteConnection;
use sqlx::{SqliteExecutor, SqlitePool};

/// How many readers gave each number of stars: index 0 is one star.
pub async fn distribution<'e>(
    db: impl SqliteExecutor<'e>,
    article_id: i64,
) -> sqlx::Result<[u64; 5]> {
    let rows: Vec<(i64, i64)> =
        sqlx::query_as(r"select stars, readers from rating_counts where article_id = ?")
            .bind(article_id)
            .fetch_all(db)
            .await?;
    let mut counts = [0_u64; 5];
    for (stars, readers) in rows {
        if let Some(slot) = usize::try_from(stars - 1)
            .ok()
            .and_then(|i| counts.get_mut(i))
        {
            *slot = readers.max(0) as u64;
        }
    }
    Ok(counts)
}

/// Every article's distribution, for start-up.
pub async fn all_distributions(pool: &SqlitePool) -> sqlx::Result<Vec<(i64, [u64; 5])>> {
    let ids: Vec<i64> = sqlx::query_scalar(r"select id from articles")
        .fetch_all(pool)
        .await?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        out.push((id, distribution(pool, id).await?));
    }
    Ok(out)
}

/// The stars a reader gave an article, if any.
pub async fn reader_rating(
    pool: &SqlitePool,
    article_id: i64,
    voter: &str,
) -> sqlx::Result<Option<u8>> {
    let stars: Option<i64> =
        sqlx::query_scalar(r"select stars from ratings where article_id = ? and voter = ?")
            .bind(article_id)
            .bind(voter)
            .fetch_optional(pool)
            .await?;
    Ok(stars.and_then(|s| u8::try_from(s).ok()))
}

/// Records a reader's rating, replacing the one they gave before.
pub async fn upsert_rating(
    conn: &mut SqliteConnection,
    article_id: i64,
    voter: &str,
    stars: u8,
    rated_at: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        r"insert into ratings (article_id, voter, stars, rated_at) values (?, ?, ?, ?)
          on conflict (article_id, voter) do update set stars = excluded.stars, rated_at = excluded.rated_at",
    )
    .bind(article_id)
    .bind(voter)
    .bind(stars)
    .bind(rated_at)
    .execute(conn)
    .await?;
    Ok(())
}
