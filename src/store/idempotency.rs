//! Answers kept with idempotency keys, so a retried write is answered, not counted again.

use super::{Conn, on_engine};

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
pub async fn find(conn: Conn<'_>, id: &[u8], other_id: &[u8]) -> sqlx::Result<Vec<KeptAnswer>> {
    on_engine!(conn, |c, _engine| {
        sqlx::query_as(
            r"select id, request, status, body, reader from idempotency_keys where id in ($1, $2)",
        )
        .bind(id)
        .bind(other_id)
        .fetch_all(c)
        .await
    })
}

/// Keeps the first answer to a request under its key's id.
pub async fn keep(conn: Conn<'_>, answer: &KeptAnswer, created_at: i64) -> sqlx::Result<()> {
    on_engine!(conn, |c, _engine| {
        sqlx::query(
            r"insert into idempotency_keys (id, request, status, body, reader, created_at)
              values ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&answer.id)
        .bind(&answer.request)
        .bind(answer.status)
        .bind(&answer.body)
        .bind(&answer.reader)
        .bind(created_at)
        .execute(c)
        .await?;
    });
    Ok(())
}

/// The answers kept under the ids `$1`: see `store::grouped`.
pub(super) const FIND_AMONG_POSTGRES: &str = r"select k.id, k.request, k.status, k.body, k.reader
      from unnest($1::bytea[]) as b(id)
      cross join lateral (select id, request, status, body, reader from idempotency_keys
                           where id = b.id offset 0) as k";

/// The answers kept under any of the ids given (in hex).
pub async fn find_among(conn: Conn<'_>, ids: &[String]) -> sqlx::Result<Vec<KeptAnswer>> {
    match conn {
        Conn::Sqlite(c) => {
            sqlx::query_as(
                r"select id, request, status, body, reader from idempotency_keys
                   where id in (select unhex(value) from json_each($1))",
            )
            .bind(super::json(ids)?)
            .fetch_all(c)
            .await
        }
        // An index probe per id, however the statement was planned (see
        // `store::grouped`).
        Conn::Postgres(c) => {
            let ids: Vec<Vec<u8>> = ids.iter().filter_map(|id| hex::decode(id).ok()).collect();
            sqlx::query_as(FIND_AMONG_POSTGRES)
                .bind(ids)
                .fetch_all(c)
                .await
        }
    }
}

/// Keeps the first answers to requests under their keys' ids, in one statement.
pub async fn keep_all(
    conn: Conn<'_>,
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
    on_engine!(conn, |c, engine| {
        sqlx::query(engine.pick(
            r"insert into idempotency_keys (id, request, status, body, reader, created_at)
              select unhex(json_extract(value, '$[0]')), json_extract(value, '$[1]'),
                     json_extract(value, '$[2]'), unhex(json_extract(value, '$[3]')),
                     json_extract(value, '$[4]'), $1
                from json_each($2)",
            r"insert into idempotency_keys (id, request, status, body, reader, created_at)
              select decode(value->>0, 'hex'), value->>1, (value->>2)::bigint,
                     decode(value->>3, 'hex'), value->>4, $1
                from json_array_elements($2::json)",
        ))
        .bind(created_at)
        .bind(super::json(&rows)?)
        .execute(c)
        .await?;
    });
    Ok(())
}

/// Erases the answers kept at or before `before`; returns how many.
pub async fn erase_before(conn: Conn<'_>, before: i64) -> sqlx::Result<u64> {
    let done = on_engine!(conn, |c, _engine| {
        sqlx::query(r"delete from idempotency_keys where created_at <= $1")
            .bind(before)
            .execute(c)
            .await?
            .rows_affected()
    });
    Ok(done)
}
