//! Address uses: the keyed hashes of the addresses that voted or rated in the
//! last hour, which the per-address caps count, and nothing older.

use super::{Conn, on_engine};

/// Uses of `scope` by one address since `since`, and when the oldest of them was.
pub async fn uses_since(
    conn: Conn<'_>,
    scope: &str,
    address_hash: &[u8],
    since: i64,
) -> sqlx::Result<(u32, Option<i64>)> {
    let (count, oldest): (i64, Option<i64>) = on_engine!(conn, |c, _engine| {
        sqlx::query_as(
            r"select count(*), min(used_at) from address_uses
               where scope = $1 and address_hash = $2 and used_at > $3",
        )
        .bind(scope)
        .bind(address_hash)
        .bind(since)
        .fetch_one(c)
        .await?
    });
    Ok((u32::try_from(count).unwrap_or(u32::MAX), oldest))
}

/// Counts one use of `scope` by an address.
pub async fn record_use(
    conn: Conn<'_>,
    scope: &str,
    address_hash: &[u8],
    used_at: i64,
) -> sqlx::Result<()> {
    on_engine!(conn, |c, _engine| {
        sqlx::query(r"insert into address_uses (scope, address_hash, used_at) values ($1, $2, $3)")
            .bind(scope)
            .bind(address_hash)
            .bind(used_at)
            .execute(c)
            .await?;
    });
    Ok(())
}

/// Counted from `address_uses_by_address (scope, address_hash, used_at)`
/// alone: a seek per address and a range scan of its last hour.
const USES_AMONG: &str = r"select u.scope, lower(hex(u.address_hash)), count(*), min(u.used_at)
      from (select distinct json_extract(value, '$[0]') as scope,
                            unhex(json_extract(value, '$[1]')) as address_hash
              from json_each($1)) as b
      join address_uses u on u.scope = b.scope and u.address_hash = b.address_hash
     where u.used_at > $2
     group by u.scope, u.address_hash";

/// On PostgreSQL a scope at a time (see `store::grouped`), from the same index.
pub(super) const USES_AMONG_POSTGRES: &str = r"select $1, encode(b.hash, 'hex'), u.uses, u.oldest
      from (select distinct hash from unnest($2::bytea[]) as hash) as b
      cross join lateral (select count(*) as uses, min(used_at) as oldest from address_uses
                           where scope = $1 and address_hash = b.hash and used_at > $3 offset 0) as u
     where u.uses > 0";

/// Uses since `since` of each `(scope, address hash in hex)` given that has
/// any: `(scope, hash in hex, count, oldest)`.
pub async fn uses_among(
    conn: Conn<'_>,
    pairs: &[(&str, &str)],
    since: i64,
) -> sqlx::Result<Vec<(String, String, u32, i64)>> {
    let rows: Vec<(String, String, i64, i64)> = match conn {
        Conn::Sqlite(c) => {
            sqlx::query_as(USES_AMONG)
                .bind(super::json(pairs)?)
                .bind(since)
                .fetch_all(c)
                .await?
        }
        Conn::Postgres(c) => {
            let mut rows = Vec::new();
            for (scope, hashes) in super::grouped(pairs) {
                let hashes: Vec<Vec<u8>> = hashes
                    .iter()
                    .filter_map(|hash| hex::decode(hash).ok())
                    .collect();
                let found: Vec<(String, String, i64, i64)> = sqlx::query_as(USES_AMONG_POSTGRES)
                    .bind(scope)
                    .bind(hashes)
                    .bind(since)
                    .fetch_all(&mut *c)
                    .await?;
                rows.extend(found);
            }
            rows
        }
    };
    Ok(rows
        .into_iter()
        .map(|(scope, hash, count, oldest)| {
            (
                scope,
                hash,
                u32::try_from(count).unwrap_or(u32::MAX),
                oldest,
            )
        })
        .collect())
}

/// Counts one use of each `(scope, address hash in hex)` given, in one statement.
pub async fn record_uses(conn: Conn<'_>, uses: &[(&str, &str)], used_at: i64) -> sqlx::Result<()> {
    on_engine!(conn, |c, engine| {
        sqlx::query(engine.pick(
            r"insert into address_uses (scope, address_hash, used_at)
              select json_extract(value, '$[0]'), unhex(json_extract(value, '$[1]')), $1
                from json_each($2)",
            r"insert into address_uses (scope, address_hash, used_at)
              select value->>0, decode(value->>1, 'hex'), $1
                from json_array_elements($2::json)",
        ))
        .bind(used_at)
        .bind(super::json(uses)?)
        .execute(c)
        .await?;
    });
    Ok(())
}

/// Erases the uses at or before `before`; returns how many.
pub async fn erase_before(conn: Conn<'_>, before: i64) -> sqlx::Result<u64> {
    let done = on_engine!(conn, |c, _engine| {
        sqlx::query(r"delete from address_uses where used_at <= $1")
            .bind(before)
            .execute(c)
            .await?
            .rows_affected()
    });
    Ok(done)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking
mod tests {
    use sqlx::{ConnectOptions, sqlite::SqliteConnectOptions};

    #[tokio::test]
    async fn the_cap_counts_from_its_index_alone_and_erasing_uses_the_age_index() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let db = super::super::Db::open(&url).await.unwrap();
        async fn plan(db: &super::super::Db, sql: &str) -> String {
            let rows: Vec<(i64, i64, i64, String)> =
                sqlx::query_as(sqlx::AssertSqlSafe(format!("explain query plan {sql}")))
                    .fetch_all(db.sqlite_pool().unwrap())
                    .await
                    .unwrap();
            rows.into_iter().map(|r| r.3).collect::<Vec<_>>().join("\n")
        }
        let uses = plan(&db, super::USES_AMONG).await;
        assert!(
            uses.contains(
                "SEARCH u USING COVERING INDEX address_uses_by_address (scope=? AND address_hash=? AND used_at>?)"
            ),
            "{uses}"
        );
        let erase = plan(&db, "delete from address_uses where used_at <= ?").await;
        assert!(erase.contains("USING INDEX address_uses_by_age"), "{erase}");
    }

    #[tokio::test]
    async fn the_upgrade_keeps_the_hour_of_address_uses_and_erases_every_vote_address() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = SqliteConnectOptions::new()
            .filename(dir.path().join("old.db"))
            .create_if_missing(true)
            .connect()
            .await
            .unwrap();
        sqlx::raw_sql(include_str!("../../migrations/sqlite/0001_initial.sql"))
            .execute(&mut conn)
            .await
            .unwrap();
        let now = super::super::now_millis();
        sqlx::raw_sql(
            r"insert into articles (id, slug, lang, title, author_name, author_bio, body_markdown, source_path, imported_at)
              values (1, 'a', 'en', 't', 'n', 'b', 'x', 'a.md', '2026');
              insert into polls (id, article_id, question, status) values ('p', 1, 'q', 'open');
              insert into poll_options (poll_id, option_id, position, label) values ('p', 1, 0, 'one');",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        for (voter, address, age_minutes) in [
            ("a", Some(&b"x"[..]), 5),
            ("b", Some(b"y"), 90),
            ("c", None, 1),
        ] {
            sqlx::query(
                r"insert into votes (poll_id, option_id, voter, address_hash, cast_at) values ('p', 1, ?, ?, ?)",
            )
            .bind(voter)
            .bind(address)
            .bind(now - age_minutes * 60 * 1000)
            .execute(&mut conn)
            .await
            .unwrap();
        }
        sqlx::raw_sql(include_str!(
            "../../migrations/sqlite/0002_address_uses_and_idempotency.sql"
        ))
        .execute(&mut conn)
        .await
        .unwrap();
        let uses: Vec<(String, Vec<u8>)> =
            sqlx::query_as(r"select scope, address_hash from address_uses")
                .fetch_all(&mut conn)
                .await
                .unwrap();
        assert_eq!(uses, [("poll:p".to_owned(), b"x".to_vec())]);
        let kept: i64 =
            sqlx::query_scalar(r"select count(*) from votes where address_hash is not null")
                .fetch_one(&mut conn)
                .await
                .unwrap();
        assert_eq!(kept, 0);
        let votes: i64 = sqlx::query_scalar(r"select count(*) from votes")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(votes, 3, "every vote stays");
    }
}
