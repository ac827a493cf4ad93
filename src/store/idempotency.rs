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

/// The answers kept under any of the ids given (in hex).
pub async fn find_among(
    conn: &mut SqliteConnection,
    ids: &[String],
) -> sqlx::Result<Vec<KeptAnswer>> {
    sqlx::query_as(
        r"select id, request, status, body, reader from idempotency_keys
           where id in (select unhex(value) from json_each(?))",
    )
    .bind(super::json(ids)?)
    .fetch_all(conn)
    .await
}

/// Keeps the first answers to requests under their keys' ids, in one statement.
pub async fn keep_all(
    conn: &mut SqliteConnection,
    answers: &[&KeptAnswer],
    created_at: i64,
) -> sqlx::Result<()> {
    let rows: Vec<_> = answers
        .iter()
        .map(|a| {
            (
                hex::encode(&a.id),
                &a.request,
                a.status,
                hex::encode(&a.body),
                &a.reader,
            )
        })
        .collect();
    sqlx::query(
        r"insert into idempotency_keys (id, request, status, body, reader, created_at)
          select unhex(json_extract(value, '$[0]')), json_extract(value, '$[1]'),
                 json_extract(value, '$[2]'), unhex(json_extract(value, '$[3]')),
                 json_extract(value, '$[4]'), ?
            from json_each(?)",
    )
    .bind(created_at)
    .bind(super::json(&rows)?)
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
