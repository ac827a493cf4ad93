//! Answers kept with idempotency keys, so a retried write is answered, not counted again.

use sqlx::sqlite::SqliteConnection;

/// An answer kept with a key.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct KeptAnswer {
    pub id: Vec<u8>,
    /// What was asked the first time.
    pub request: String,
    pub status: i64,
    pub body: Vec<u8>,
    /// The reader the ballot was cast as.
    pub reader: String,
}

/// The answers kept under either id.
pub async fn find(
    conn: &mut SqliteConnection,
    id: &[u8],
    other_id: &[u8],
) -> sqlx::Result<Vec<KeptAnswer>> {
    sqlx::query_as(
        r"select id, request, status, body, reader from idempotency_keys where id in (?, ?)",
    )
    .bind(id)
    .bind(other_id)
    .fetch_all(conn)
    .await
}

/// Keeps the first answer to a request under its key's id.
pub async fn keep(
    conn: &mut SqliteConnection,
    answer: &KeptAnswer,
    created_at: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        r"insert into idempotency_keys (id, request, status, body, reader, created_at)
          values (?, ?, ?, ?, ?, ?)",
    )
    .bind(&answer.id)
    .bind(&answer.request)
    .bind(answer.status)
    .bind(&answer.body)
    .bind(&answer.reader)
    .bind(created_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Erases the answers kept at or before `before`; returns how many.
pub async fn erase_before(conn: &mut SqliteConnection, before: i64) -> sqlx::Result<u64> {
    let done = sqlx::query(r"delete from idempotency_keys where created_at <= ?")
        .bind(before)
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}
