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
        count_in(&mut counts, stars, readers);
    }
    Ok(counts)
}

/// Every article's distribution, for start-up, in one query.
pub async fn all_distributions(pool: &SqlitePool) -> sqlx::Result<Vec<(i64, [u64; 5])>> {
    let rows: Vec<(i64, Option<i64>, Option<i64>)> = sqlx::query_as(
        r"select a.id, c.stars, c.readers
            from articles a left join rating_counts c on c.article_id = a.id
           order by a.id",
    )
    .fetch_all(pool)
    .await?;
    let mut out: Vec<(i64, [u64; 5])> = Vec::new();
    for (article_id, stars, readers) in rows {
        if out.last().is_none_or(|(id, _)| *id != article_id) {
            out.push((article_id, [0; 5]));
        }
        if let (Some((_, counts)), Some(stars), Some(readers)) = (out.last_mut(), stars, readers) {
            count_in(counts, stars, readers);
        }
    }
    Ok(out)
}

/// Puts a row of `rating_counts` in its slot: index 0 is one star.
fn count_in(counts: &mut [u64; 5], stars: i64, readers: i64) {
    if let Some(slot) = usize::try_from(stars - 1)
        .ok()
        .and_then(|i| counts.get_mut(i))
    {
        *slot = readers.max(0) as u64;
    }
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

/// The stars a reader gave an article, read inside the writer's transaction.
pub async fn stars_of(
    conn: &mut SqliteConnection,
    article_id: i64,
    voter: &str,
) -> sqlx::Result<Option<u8>> {
    let stars: Option<i64> =
        sqlx::query_scalar(r"select stars from ratings where article_id = ? and voter = ?")
            .bind(article_id)
            .bind(voter)
            .fetch_optional(conn)
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

/// Of the `(article, voter)` pairs given, the stars of those who rated: `(article, voter, stars)`.
pub async fn stars_among(
    conn: &mut SqliteConnection,
    pairs: &[(i64, &str)],
) -> sqlx::Result<Vec<(i64, String, u8)>> {
    let rows: Vec<(i64, String, i64)> = sqlx::query_as(
        r"select r.article_id, r.voter, r.stars
            from json_each(?) as b
            join ratings r on r.article_id = json_extract(b.value, '$[0]')
                          and r.voter = json_extract(b.value, '$[1]')",
    )
    .bind(super::json(pairs)?)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(article, voter, stars)| Some((article, voter, u8::try_from(stars).ok()?)))
        .collect())
}

/// Records the ratings `(article, voter, stars)` in one statement, in order:
/// a later one by the same reader replaces the earlier (the per-star counts
/// follow by the `ratings_count_*` triggers).
pub async fn upsert_ratings(
    conn: &mut SqliteConnection,
    ratings: &[(i64, &str, u8)],
    rated_at: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        r"insert into ratings (article_id, voter, stars, rated_at)
          select json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'), ?
            from json_each(?) where true
          on conflict (article_id, voter) do update set stars = excluded.stars, rated_at = excluded.rated_at",
    )
    .bind(rated_at)
    .bind(super::json(ratings)?)
    .execute(conn)
    .await?;
    Ok(())
}
