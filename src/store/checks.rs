//! The writer's check that it can write again after a fault.

use super::{Conn, on_engine};

/// Rewrites the writer's check row: a small write that commits, so that
/// success means the database can be written (not locked, read-only or full).
pub async fn check_writable(conn: Conn<'_>, now: i64) -> sqlx::Result<()> {
    on_engine!(conn, |c, _engine| {
        sqlx::query(
            r"insert into writer_checks (id, checked_at) values (1, $1)
              on conflict (id) do update set checked_at = excluded.checked_at",
        )
        .bind(now)
        .execute(c)
        .await?;
    });
    Ok(())
}

/// Makes every later transaction on this connection read-only, or writable
/// again: a fault a test injects, failing writes as the engine fails them.
pub async fn set_read_only(conn: Conn<'_>, on: bool) -> sqlx::Result<()> {
    on_engine!(conn, |c, engine| {
        let sql = match on {
            true => engine.pick(
                "pragma query_only = on",
                "set default_transaction_read_only = on",
            ),
            false => engine.pick(
                "pragma query_only = off",
                "set default_transaction_read_only = off",
            ),
        };
        sqlx::query(sql).execute(c).await?;
    });
    Ok(())
}
