//! The writer's check that it can write again after a fault.

use sqlx::sqlite::SqliteConnection;

/// Rewrites the writer's check row: a small write that commits, so that
/// success means the database can be written (not locked, read-only or full).
pub async fn check_writable(conn: &mut SqliteConnection, now: i64) -> sqlx::Result<()> {
    sqlx::query(
        r"insert into writer_checks (id, checked_at) values (1, ?)
          on conflict (id) do update set checked_at = excluded.checked_at",
    )
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}
