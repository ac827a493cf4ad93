//! What `tribune export` reads: a poll's tallies and its anonymised votes, as
//! a stream. The document itself is written by `crate::export`.

use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use super::{Conn, on_engine};

/// A poll's question and its options' counts, in display order.
#[derive(Debug)]
pub struct PollTallies {
    pub question: String,
    pub options: Vec<OptionCounts>,
}

#[derive(Debug)]
pub struct OptionCounts {
    pub id: u32,
    pub label: String,
    /// Starting tally imported from the content file.
    pub seed_votes: u64,
    /// Votes cast here (kept by a trigger, so it equals the poll's vote rows).
    pub cast_votes: u64,
}

/// One vote as exported: when, and for what. No reader, no address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CastVote {
    /// Unix milliseconds.
    pub cast_at: i64,
    pub option: u32,
}

pub async fn poll_tallies(conn: Conn<'_>, poll: &str) -> sqlx::Result<Option<PollTallies>> {
    on_engine!(conn, |c, _engine| {
        let Some(question) =
            sqlx::query_scalar::<_, String>(r"select question from polls where id = $1")
                .bind(poll)
                .fetch_optional(&mut *c)
                .await?
        else {
            return Ok(None);
        };
        let options = sqlx::query_as::<_, (i64, String, i64, i64)>(
            r"select option_id, label, seed_votes, cast_votes from poll_options where poll_id = $1 order by position",
        )
        .bind(poll)
        .fetch_all(&mut *c)
        .await?
        .into_iter()
        .map(|(id, label, seed, cast)| OptionCounts {
            id: id as u32,
            label,
            seed_votes: seed.max(0) as u64,
            cast_votes: cast.max(0) as u64,
        })
        .collect();
        Ok(Some(PollTallies { question, options }))
    })
}

/// Votes cast in every poll: with a poll's own count, says how to read its rows.
pub async fn all_cast_votes(conn: Conn<'_>) -> sqlx::Result<u64> {
    let votes: i64 = on_engine!(conn, |c, _engine| {
        sqlx::query_scalar(r"select cast(coalesce(sum(cast_votes), 0) as bigint) from poll_options")
            .fetch_one(c)
            .await?
    });
    Ok(votes.max(0) as u64)
}

/// How to find a poll's votes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VoteScan {
    /// Read the whole table in storage order and keep the poll's rows: for a
    /// poll that holds much of the table, sequential reads beat the index,
    /// whose order (by reader) makes a random read of every row.
    Table,
    /// Find the poll's rows through the index: for a small poll in a large table.
    Index,
}

/// Every vote of a poll, oldest first, one row at a time: only the rows in
/// flight between the database and the caller are in memory. On SQLite the
/// sort spills to temporary files past its cache (see `Db::export_connection`);
/// PostgreSQL plans the scan itself.
pub fn votes_oldest_first<'c>(
    conn: Conn<'c>,
    poll: &'c str,
    scan: VoteScan,
) -> BoxStream<'c, sqlx::Result<CastVote>> {
    let sql = match scan {
        VoteScan::Table => {
            r"select cast_at, option_id from votes not indexed where poll_id = $1 order by cast_at, id"
        }
        VoteScan::Index => {
            r"select cast_at, option_id from votes where poll_id = $1 order by cast_at, id"
        }
    };
    let rows = match conn {
        Conn::Sqlite(c) => sqlx::query_as::<_, (i64, i64)>(sql).bind(poll).fetch(c),
        Conn::Postgres(c) => sqlx::query_as::<_, (i64, i64)>(
            r"select cast_at, option_id from votes where poll_id = $1 order by cast_at, id",
        )
        .bind(poll)
        .fetch(c),
    };
    rows.map(|row| {
        row.map(|(cast_at, option)| CastVote {
            cast_at,
            option: option as u32,
        })
    })
    .boxed()
}
