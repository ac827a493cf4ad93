//! Readers' star ratings of articles and the per-star counts kept beside them.

use super::{Conn, Db, on_engine};

/// How many readers gave each number of stars: index 0 is one star.
pub async fn distribution(conn: Conn<'_>, article_id: i64) -> sqlx::Result<[u64; 5]> {
    let rows: Vec<(i64, i64)> = on_engine!(conn, |c, _engine| {
        sqlx::query_as(r"select stars, readers from rating_counts where article_id = $1")
            .bind(article_id)
            .fetch_all(c)
            .await?
    });
    let mut counts = [0_u64; 5];
    for (stars, readers) in rows {
        count_in(&mut counts, stars, readers);
    }
    Ok(counts)
}

/// Every article's distribution, for start-up, in one query.
pub async fn all_distributions(db: &Db) -> sqlx::Result<Vec<(i64, [u64; 5])>> {
    let mut pooled = db.acquire().await?;
    let rows: Vec<(i64, Option<i64>, Option<i64>)> = on_engine!(pooled.conn(), |c, _engine| {
        sqlx::query_as(
            r"select a.id, c.stars, c.readers
                from articles a left join rating_counts c on c.article_id = a.id
               order by a.id",
        )
        .fetch_all(c)
        .await?
    });
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
pub async fn reader_rating(db: &Db, article_id: i64, voter: &str) -> sqlx::Result<Option<u8>> {
    let mut pooled = db.acquire().await?;
    stars_of(pooled.conn(), article_id, voter).await
}

/// The stars a reader gave an article, read on the connection given.
pub async fn stars_of(conn: Conn<'_>, article_id: i64, voter: &str) -> sqlx::Result<Option<u8>> {
    let stars: Option<i64> = on_engine!(conn, |c, _engine| {
        sqlx::query_scalar(r"select stars from ratings where article_id = $1 and voter = $2")
            .bind(article_id)
            .bind(voter)
            .fetch_optional(c)
            .await?
    });
    Ok(stars.and_then(|s| u8::try_from(s).ok()))
}

/// Records a reader's rating, replacing the one they gave before.
pub async fn upsert_rating(
    conn: Conn<'_>,
    article_id: i64,
    voter: &str,
    stars: u8,
    rated_at: i64,
) -> sqlx::Result<()> {
    on_engine!(conn, |c, _engine| {
        sqlx::query(
            r"insert into ratings (article_id, voter, stars, rated_at) values ($1, $2, $3, $4)
              on conflict (article_id, voter) do update set stars = excluded.stars, rated_at = excluded.rated_at",
        )
        .bind(article_id)
        .bind(voter)
        .bind(i64::from(stars))
        .bind(rated_at)
        .execute(c)
        .await?;
    });
    Ok(())
}

/// Of `$2`'s readers, the stars of those who rated article `$1`: see `store::grouped`.
pub(super) const STARS_AMONG_POSTGRES: &str = r"select r.article_id, r.voter, r.stars from unnest($2::text[]) as b(voter)
      cross join lateral (select article_id, voter, stars from ratings
                           where article_id = $1 and voter = b.voter offset 0) as r";

/// Of the `(article, voter)` pairs given, the stars of those who rated: `(article, voter, stars)`.
pub async fn stars_among(
    conn: Conn<'_>,
    pairs: &[(i64, &str)],
) -> sqlx::Result<Vec<(i64, String, u8)>> {
    let rows: Vec<(i64, String, i64)> = match conn {
        Conn::Sqlite(c) => {
            sqlx::query_as(
                r"select r.article_id, r.voter, r.stars
                    from json_each($1) as b
                    join ratings r on r.article_id = json_extract(b.value, '$[0]')
                                  and r.voter = json_extract(b.value, '$[1]')",
            )
            .bind(super::json(pairs)?)
            .fetch_all(c)
            .await?
        }
        // A group at a time: see `store::grouped`.
        Conn::Postgres(c) => {
            let mut rows = Vec::new();
            for (article, voters) in super::grouped(pairs) {
                let found: Vec<(i64, String, i64)> = sqlx::query_as(STARS_AMONG_POSTGRES)
                    .bind(article)
                    .bind(voters)
                    .fetch_all(&mut *c)
                    .await?;
                rows.extend(found);
            }
            rows
        }
    };
    Ok(rows
        .into_iter()
        .filter_map(|(article, voter, stars)| Some((article, voter, u8::try_from(stars).ok()?)))
        .collect())
}

/// Records the ratings `(article, voter, stars)` in one statement: a later
/// one by the same reader replaces the earlier (the per-star counts follow by
/// the `ratings_count_*` triggers). Only each reader's last rating of an
/// article is written, which counts as writing them in order would:
/// PostgreSQL refuses to upsert one row twice in a statement.
pub async fn upsert_ratings(
    conn: Conn<'_>,
    ratings: &[(i64, &str, u8)],
    rated_at: i64,
) -> sqlx::Result<()> {
    let mut seen = std::collections::HashSet::with_capacity(ratings.len());
    let ratings: Vec<(i64, &str, u8)> = ratings
        .iter()
        .rev()
        .filter(|&&(article, voter, _)| seen.insert((article, voter)))
        .copied()
        .collect();
    on_engine!(conn, |c, engine| {
        sqlx::query(engine.pick(
            r"insert into ratings (article_id, voter, stars, rated_at)
              select json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'), $1
                from json_each($2) where true
              on conflict (article_id, voter) do update set stars = excluded.stars, rated_at = excluded.rated_at",
            r"insert into ratings (article_id, voter, stars, rated_at)
              select (value->>0)::bigint, value->>1, (value->>2)::bigint, $1
                from json_array_elements($2::json)
              on conflict (article_id, voter) do update set stars = excluded.stars, rated_at = excluded.rated_at",
        ))
        .bind(rated_at)
        .bind(super::json(&ratings)?)
        .execute(c)
        .await?;
    });
    Ok(())
}
