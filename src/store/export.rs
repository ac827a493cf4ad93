//! What `tribune export` reads: a poll's tallies and its anonymised votes, as
//! a stream. The document itself is written by `crate::export`.

use futures_util::{Stream, StreamExt};
use sqlx::sqlite::SqliteConnection;

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

pub async fn poll_tallies(
    conn: &mut SqliteConnection,
    poll: &str,
) -> sqlx::Result<Option<PollTallies>> {
    let Some(question) =
        sqlx::query_scalar::<_, String>(r"select question from polls where id = ?")
            .bind(poll)
            .fetch_optional(&mut *conn)
            .await?
    else {
        return Ok(None);
    };
    let options = sqlx::query_as::<_, (i64, String, i64, i64)>(
        r"select option_id, label, seed_votes, cast_votes from poll_options where poll_id = ? order by position",
    )
    .bind(poll)
    .fetch_all(&mut *conn)
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
}

/// Votes cast in every poll: with a poll's own count, says how to read its rows.
pub async fn all_cast_votes(conn: &mut SqliteConnection) -> sqlx::Result<u64> {
    let votes: i64 = sqlx::query_scalar(r"select coalesce(sum(cast_votes), 0) from poll_options")
        .fetch_one(conn)
        .await?;
    Ok(votes.max(0) as u64)
}

/// How to find a poll's votes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VoteScan {
    /// Read the whole table in rowid order and keep the poll's rows: for a
    /// poll that holds much of the table, sequential reads beat the index,
    /// whose order (by address hash) makes a random read of every row.
    Table,
    /// Find the poll's rows through the index: for a small poll in a large table.
    Index,
}

/// Every vote of a poll, oldest first, one row at a time: only the rows in
/// flight between SQLite's thread and the caller are in memory. The sort
/// spills to temporary files past SQLite's cache (see `Db::export_connection`).
pub fn votes_oldest_first<'c>(
    conn: &'c mut SqliteConnection,
    poll: &'c str,
    scan: VoteScan,
) -> impl Stream<Item = sqlx::Result<CastVote>> + Send + 'c {
    let sql = match scan {
        VoteScan::Table => {
            r"select cast_at, option_id from votes not indexed where poll_id = ? order by cast_at, id"
        }
        VoteScan::Index => {
            r"select cast_at, option_id from votes where poll_id = ? order by cast_at, id"
        }
    };
    sqlx::query_as::<_, (i64, i64)>(sql)
        .bind(poll)
        .fetch(conn)
        .map(|row| {
            row.map(|(cast_at, option)| CastVote {
                cast_at,
                option: option as u32,
            })
        })
}
