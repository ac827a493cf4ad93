//! Address uses: the keyed hashes of the addresses that voted or rated in the
//! last hour, which the per-address caps count, and nothing older.

use sqlx::sqlite::SqliteConnection;

/// Uses of `scope` by one address since `since`, and when the oldest of them was.
pub async fn uses_since(
    conn: &mut SqliteConnection,
    scope: &str,
    address_hash: &[u8],
    since: i64,
) -> sqlx::Result<(u32, Option<i64>)> {
    let (count, oldest): (i64, Option<i64>) = sqlx::query_as(
        r"select count(*), min(used_at) from address_uses
           where scope = ? and address_hash = ? and used_at > ?",
    )
    .bind(scope)
    .bind(address_hash)
    .bind(since)
    .fetch_one(conn)
    .await?;
    Ok((u32::try_from(count).unwrap_or(u32::MAX), oldest))
}

/// Counts one use of `scope` by an address.
pub async fn record_use(
    conn: &mut SqliteConnection,
    scope: &str,
    address_hash: &[u8],
    used_at: i64,
) -> sqlx::Result<()> {
    sqlx::query(r"insert into address_uses (scope, address_hash, used_at) values (?, ?, ?)")
        .bind(scope)
        .bind(address_hash)
        .bind(used_at)
        .execute(conn)
        .await?;
    Ok(())
}

/// Erases the uses at or before `before`; returns how many.
pub async fn erase_before(conn: &mut SqliteConnection, before: i64) -> sqlx::Result<u64> {
    let done = sqlx::query(r"delete from address_uses where used_at <= ?")
        .bind(before)
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking
mod tests {
    use sqlx::{ConnectOptions, sqlite::SqliteConnectOptions};

    #[tokio::test]
    async fn the_upgrade_keeps_the_hour_of_address_uses_and_erases_every_vote_address() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = SqliteConnectOptions::new()
            .filename(dir.path().join("old.db"))
            .create_if_missing(true)
            .connect()
            .await
            .unwrap();
        sqlx::raw_sql(include_str!("../../migrations/0001_initial.sql"))
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
            "../../migrations/0002_address_uses_and_idempotency.sql"
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
