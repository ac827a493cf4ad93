//! The ballot box: the one writer of votes and ratings.
//!
//! Handlers send a ballot and wait for its receipt. A single task takes every
//! ballot waiting, writes them in one transaction, commits (SQLite with
//! `synchronous=FULL`: on disk when the commit returns), and only then answers
//! each one. While a commit is in flight the next ballots queue up, so the
//! batch grows with the load and one fsync acknowledges many votes. After each
//! commit it reads back the tallies it touched and publishes them to `Live`.

use std::collections::BTreeSet;
use std::sync::Arc;

use sqlx::Connection;
use sqlx::sqlite::SqliteConnection;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::live::Live;
use crate::poll::OptionId;
use crate::rating::{RatingState, Stars};
use crate::reader::{AddressHash, ReaderId};
use crate::store::{self, Db};

/// How long the per-address vote cap looks back.
const ADDRESS_WINDOW_MS: i64 = 60 * 60 * 1000;
/// Ballots that may wait for the writer before senders wait too.
const QUEUE: usize = 16 * 1024;

#[derive(Clone, Debug)]
pub enum Ballot {
    Vote {
        poll: Arc<str>,
        option: OptionId,
        voter: ReaderId,
        address: Option<AddressHash>,
    },
    Rating {
        article_id: i64,
        voter: ReaderId,
        stars: Stars,
    },
}

/// What became of a ballot. Every variant but `Counted`/`Rated` changed nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Receipt {
    Counted,
    Rated,
    AlreadyVoted,
    PollClosed,
    /// The address has cast its share of votes in this poll this hour.
    AddressLimit {
        retry_after_secs: u64,
    },
}

/// The ballot could not be stored; nothing was written.
#[derive(Clone, Copy, Debug, thiserror::Error)]
#[error("the vote could not be stored")]
pub struct Unavailable;

struct Job {
    ballot: Ballot,
    reply: oneshot::Sender<Result<Receipt, Unavailable>>,
}

/// The handle handlers use to cast ballots.
#[derive(Clone, Debug)]
pub struct BallotBox {
    tx: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.ballot.fmt(f)
    }
}

/// Settings of the writer.
#[derive(Clone, Copy, Debug)]
pub struct WriterSettings {
    pub max_votes_per_address: Option<u32>,
    pub max_batch: usize,
}

impl BallotBox {
    /// Starts the writer on a connection of its own. It runs until every `BallotBox` is dropped.
    pub async fn start(
        db: &Db,
        live: Arc<Live>,
        settings: WriterSettings,
    ) -> anyhow::Result<(Self, JoinHandle<()>)> {
        let conn = db.writer_connection().await?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = tokio::spawn(write_loop(conn, rx, live, settings));
        Ok((Self { tx }, task))
    }

    /// Casts a ballot and waits until it is on disk (or refused).
    pub async fn cast(&self, ballot: Ballot) -> Result<Receipt, Unavailable> {
        let (reply, receipt) = oneshot::channel();
        self.tx
            .send(Job { ballot, reply })
            .await
            .map_err(|_| Unavailable)?;
        receipt.await.unwrap_or(Err(Unavailable))
    }
}

async fn write_loop(
    mut conn: SqliteConnection,
    mut rx: mpsc::Receiver<Job>,
    live: Arc<Live>,
    settings: WriterSettings,
) {
    let max_batch = settings.max_batch.max(1);
    let mut batch = Vec::with_capacity(max_batch);
    while rx.recv_many(&mut batch, max_batch).await > 0 {
        let result = write_batch(&mut conn, &batch, &live, settings).await;
        match result {
            Ok(receipts) => {
                publish(&mut conn, &batch, &receipts, &live).await;
                for (job, receipt) in batch.drain(..).zip(receipts) {
                    let _ = job.reply.send(Ok(receipt));
                }
            }
            Err(error) => {
                tracing::error!(%error, ballots = batch.len(), "could not store a batch of ballots");
                for job in batch.drain(..) {
                    let _ = job.reply.send(Err(Unavailable));
                }
            }
        }
    }
    let _ = conn.close().await;
    tracing::debug!("ballot box closed");
}

/// Writes a batch in one transaction; the receipts are valid only once it returns `Ok`.
async fn write_batch(
    conn: &mut SqliteConnection,
    batch: &[Job],
    live: &Live,
    settings: WriterSettings,
) -> sqlx::Result<Vec<Receipt>> {
    let now = store::now_millis();
    let now_time = time::OffsetDateTime::now_utc();
    let mut tx = conn.begin_with("begin immediate").await?;
    let mut receipts = Vec::with_capacity(batch.len());
    for job in batch {
        let receipt = match &job.ballot {
            Ballot::Vote {
                poll,
                option,
                voter,
                address,
            } => {
                let open = live
                    .poll(poll)
                    .is_some_and(|p| p.status_at(now_time) == crate::content::PollStatus::Open);
                if !open {
                    Receipt::PollClosed
                } else if let Some(limit) =
                    over_address_limit(&mut tx, poll, voter, address.as_ref(), settings, now)
                        .await?
                {
                    limit
                } else if store::polls::insert_vote(
                    &mut tx,
                    poll,
                    option.get(),
                    voter.as_str(),
                    address.as_ref().map(|a| &a.0[..]),
                    now,
                )
                .await?
                {
                    Receipt::Counted
                } else {
                    Receipt::AlreadyVoted
                }
            }
            Ballot::Rating {
                article_id,
                voter,
                stars,
            } => {
                store::ratings::upsert_rating(
                    &mut tx,
                    *article_id,
                    voter.as_str(),
                    stars.get(),
                    now,
                )
                .await?;
                Receipt::Rated
            }
        };
        receipts.push(receipt);
    }
    tx.commit().await?;
    Ok(receipts)
}

/// `Some(receipt)` when the address has used up its votes in this poll this hour.
async fn over_address_limit(
    conn: &mut SqliteConnection,
    poll: &str,
    voter: &ReaderId,
    address: Option<&AddressHash>,
    settings: WriterSettings,
    now: i64,
) -> sqlx::Result<Option<Receipt>> {
    let (Some(limit), Some(address)) = (settings.max_votes_per_address, address) else {
        return Ok(None);
    };
    let (count, oldest) =
        store::polls::votes_from_address_since(conn, poll, &address.0, now - ADDRESS_WINDOW_MS)
            .await?;
    if count < limit {
        return Ok(None);
    }
    // A reader who already voted hears that, not that the address is busy.
    if store::polls::has_voted(conn, poll, voter.as_str()).await? {
        return Ok(Some(Receipt::AlreadyVoted));
    }
    let free_at = oldest.unwrap_or(now) + ADDRESS_WINDOW_MS;
    let retry_after_secs = u64::try_from((free_at - now).max(0) / 1000 + 1).unwrap_or(1);
    Ok(Some(Receipt::AddressLimit { retry_after_secs }))
}

/// Reads back what the batch changed and publishes it.
async fn publish(conn: &mut SqliteConnection, batch: &[Job], receipts: &[Receipt], live: &Live) {
    let mut polls = BTreeSet::new();
    let mut articles = BTreeSet::new();
    for (job, receipt) in batch.iter().zip(receipts) {
        match (&job.ballot, receipt) {
            (Ballot::Vote { poll, .. }, Receipt::Counted) => {
                polls.insert(poll.clone());
            }
            (Ballot::Rating { article_id, .. }, Receipt::Rated) => {
                articles.insert(*article_id);
            }
            _ => {}
        }
    }
    for poll in polls {
        match store::polls::tallies(conn, &poll).await {
            Ok(tallies) => {
                if let Some(current) = live.poll(&poll) {
                    live.publish_poll(current.with_tallies(&tallies));
                }
            }
            Err(error) => tracing::error!(%error, %poll, "could not read back a poll's tallies"),
        }
    }
    for article_id in articles {
        match store::ratings::distribution(&mut *conn, article_id).await {
            Ok(counts) => live.publish_rating(article_id, RatingState::new(counts)),
            Err(error) => {
                tracing::error!(%error, article_id, "could not read back an article's ratings")
            }
        }
    }
}
