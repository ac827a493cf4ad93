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
