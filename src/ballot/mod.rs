//! The ballot box: the one writer of votes and ratings.
//!
//! Handlers send a ballot and wait for its receipt. A single task takes every
//! ballot waiting, writes them in one transaction, commits (SQLite with
//! `synchronous=FULL`: on disk when the commit returns), and only then answers
//! each one. While a commit is in flight the next ballots queue up, so the
//! batch grows with the load and one fsync acknowledges many votes. Each
//! receipt carries the tallies right after its ballot; after the commit the
//! batch's last tallies are published to `Live`.
//!
//! In the same transaction as its ballot the writer counts the use against the
//! address's cap (`store::addresses`) and keeps the answer to a ballot sent
//! with an idempotency key (`crate::idempotency`). A ballot whose caller has
//! gone (the client hung up, the handler was dropped) before it is written is
//! not written.
//!
//! A batch is written set-based first (see `batch`): the few rows the batch
//! depends on are read in a statement per kind, every ballot is decided in
//! order in memory exactly as it would be alone, and what they change is
//! written with a statement per kind for the whole batch (a multi-row insert
//! of the votes, one tally update per option), each checked against what
//! was decided.
//!
//! Faults, and what each one fails:
//! - a ballot's own SQL error (a constraint, a trigger), or a set-based
//!   statement that does not do what the batch decided: that ballot alone.
//!   The batch is rolled back and written again with each ballot in a
//!   savepoint of its own and statements of its own, so the others are
//!   committed and answered as usual;
//! - the database's (locked by another process, read-only, full, an I/O
//!   error, a broken connection) or a panic of the writer: the whole batch,
//!   answered `Unavailable`. The supervisor then drops the connection, waits
//!   (backing off), opens a fresh one and commits a small write to learn that
//!   the database can be written again before it takes ballots. Meanwhile
//!   every ballot is refused at once with `Unavailable` and `is_ready` is false.
//!
//! The writer also erases, at start and every `upkeep_every`, the address
//! uses older than the cap's window and the kept answers older than a day.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::idempotency::{Answer, Keyed};
use crate::live::Live;
use crate::poll::{OptionId, PollStatus};
use crate::rating::{RatingState, Stars};
use crate::reader::{AddressHash, ReaderId};
use crate::store::{self, Conn, Db, OwnConn};
use crate::telemetry::metrics;

mod batch;

/// Ballots that may wait for the writer before senders wait too.
const QUEUE: usize = 16 * 1024;
/// The first wait before the writer tries again after a fault; it doubles up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

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
        address: Option<AddressHash>,
    },
}

impl Ballot {
    fn voter(&self) -> &ReaderId {
        match self {
            Self::Vote { voter, .. } | Self::Rating { voter, .. } => voter,
        }
    }

    /// What it writes to: its poll or its article's rating. Addresses are
    /// capped per scope, and a batch locks its scopes.
    fn scope(&self) -> String {
        match self {
            Self::Vote { poll, .. } => format!("poll:{poll}"),
            Self::Rating { article_id, .. } => format!("rating:{article_id}"),
        }
    }

    /// `vote` or `rating`, for the metrics.
    fn kind(&self) -> &'static str {
        match self {
            Self::Vote { .. } => "vote",
            Self::Rating { .. } => "rating",
        }
    }
}

/// What became of a ballot, as the metrics name it.
fn outcome_label(outcome: &Result<Receipt, Unavailable>) -> &'static str {
    match outcome {
        Ok(Receipt::Counted { .. } | Receipt::Rated { .. }) => "accepted",
        Ok(Receipt::Answered {
            replayed: false, ..
        }) => "accepted",
        Ok(Receipt::Answered { replayed: true, .. }) => "replayed",
        Ok(Receipt::AlreadyVoted) => "already_voted",
        Ok(Receipt::PollClosed) => "poll_closed",
        Ok(Receipt::AddressLimit { .. }) => "address_limit",
        Ok(Receipt::KeyReused) => "key_reused",
        Err(Unavailable) => "unavailable",
    }
}

/// What became of a ballot. Only `Counted`, `Rated` and a fresh `Answered` changed anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Receipt {
    /// The vote is counted; the poll's tallies `(option id, votes)` right after it.
    Counted {
        tallies: Arc<[(u32, u64)]>,
    },
    /// The rating is stored; the article's readers per star right after it.
    Rated {
        counts: [u64; 5],
    },
    AlreadyVoted,
    PollClosed,
    /// The address has cast its share of votes in this poll, or of rating
    /// changes of this article, this hour.
    AddressLimit {
        retry_after_secs: u64,
    },
    /// A keyed ballot's answer, kept with its key: just now (`replayed` false,
    /// the ballot counted) or the first time the key was sent (`replayed`).
    Answered {
        answer: Answer,
        replayed: bool,
    },
    /// The idempotency key was sent before with a different request; nothing changed.
    KeyReused,
}

/// The ballot could not be stored; nothing was written.
#[derive(Clone, Copy, Debug, thiserror::Error)]
#[error("the vote could not be stored")]
pub struct Unavailable;

struct Job {
    ballot: Ballot,
    key: Option<Keyed>,
    reply: oneshot::Sender<Result<Receipt, Unavailable>>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.ballot.fmt(f)
    }
}

impl Job {
    fn refuse(self) {
        let _ = self.reply.send(Err(Unavailable));
    }
}

/// The handle handlers use to cast ballots.
#[derive(Clone, Debug)]
pub struct BallotBox {
    tx: mpsc::Sender<Job>,
    ready: Arc<AtomicBool>,
}

/// Settings of the writer.
#[derive(Clone, Debug)]
pub struct WriterSettings {
    pub max_votes_per_address: Option<u32>,
    pub max_batch: usize,
    /// How far back the per-address cap looks; older address uses are erased.
    pub address_window: Duration,
    /// How long answers kept with idempotency keys are kept.
    pub idempotency_window: Duration,
    pub upkeep_every: Duration,
    /// How long a write waits for a lock another process holds.
    pub lock_wait: Duration,
    pub faults: Option<Arc<InjectedFaults>>,
}

impl BallotBox {
    /// Starts the writer on a connection of its own. It runs until every
    /// `BallotBox` is dropped; the handle is its supervisor's.
    pub async fn start(
        db: &Db,
        live: Arc<Live>,
        settings: WriterSettings,
    ) -> anyhow::Result<(Self, JoinHandle<()>)> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let ready = Arc::new(AtomicBool::new(true));
        let writer = Writer {
            db: db.clone(),
            live,
            settings: Arc::new(settings),
            ready: ready.clone(),
        };
        let (opened, open) = oneshot::channel();
        let run = async move {
            let lock_wait = writer.settings.lock_wait;
            match writer.db.writer_connection(lock_wait).await {
                Ok(conn) => {
                    let _ = opened.send(Ok(()));
                    supervise(conn, rx, writer).await;
                }
                Err(error) => {
                    let _ = opened.send(Err(error));
                }
            }
        };
        let task = match db.engine() {
            // SQLite's connection does its work on a thread of its own and
            // wakes the writer as soon as a statement is done.
            store::Engine::Sqlite => tokio::spawn(run),
            // PostgreSQL's answers come over a socket, which a runtime busy
            // with requests looks at only now and then; a batch is a few
            // statements in a row, so that wait, paid for each, was most of
            // a batch's time under load. The writer and its connections get
            // a thread and a runtime of their own (17,900 votes/s become
            // about 23,900; on SQLite the extra hops between threads cost
            // more than they save).
            store::Engine::Postgres => {
                let (stopped, stop) = oneshot::channel::<()>();
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                std::thread::Builder::new()
                    .name("ballot-writer".to_owned())
                    .spawn(move || {
                        runtime.block_on(run);
                        drop(stopped);
                    })?;
                // Done when the writer's thread is: its sender is dropped as it ends.
                tokio::spawn(async move {
                    let _ = stop.await;
                })
            }
        };
        open.await
            .map_err(|_| anyhow::anyhow!("the ballot writer stopped at start"))??;
        Ok((Self { tx, ready }, task))
    }

    /// Casts a ballot and waits until it is on disk (or refused). With a
    /// key, a retry of a ballot already stored gets the answer kept with it.
    pub async fn cast(&self, ballot: Ballot, key: Option<Keyed>) -> Result<Receipt, Unavailable> {
        let (reply, receipt) = oneshot::channel();
        self.tx
            .send(Job { ballot, key, reply })
            .await
            .map_err(|_| Unavailable)?;
        receipt.await.unwrap_or(Err(Unavailable))
    }

    /// Whether the writer can write: false from a fault until it has written again.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }
}

/// Faults a test or a drill injects into the writer. Each is checked before
/// every transaction the writer begins, on whatever connection it has.
#[derive(Debug, Default)]
pub struct InjectedFaults {
    read_only: AtomicBool,
    disk_full: AtomicBool,
    panic: AtomicBool,
}

impl InjectedFaults {
    /// Makes the writer's connection read-only (`PRAGMA query_only`): every
    /// write fails as SQLite fails on a read-only database, root or not.
    pub fn set_read_only(&self, on: bool) {
        self.read_only.store(on, Ordering::Relaxed);
    }

    /// Fails every transaction as a full disk would (`ENOSPC`), for where a
    /// small file system cannot be mounted.
    pub fn set_disk_full(&self, on: bool) {
        self.disk_full.store(on, Ordering::Relaxed);
    }

    /// Makes the writer panic once, at its next transaction.
    pub fn panic_once(&self) {
        self.panic.store(true, Ordering::Relaxed);
    }

    async fn before_transaction(&self, conn: &mut OwnConn) -> Result<(), Fault> {
        if self.panic.swap(false, Ordering::Relaxed) {
            panic!("a panic injected into the writer");
        }
        let read_only = self.read_only.load(Ordering::Relaxed);
        store::checks::set_read_only(conn.conn(), read_only).await?;
        if self.disk_full.load(Ordering::Relaxed) {
            return Err(Fault::Database(
                std::io::Error::from_raw_os_error(28 /* ENOSPC */).into(),
            ));
        }
        Ok(())
    }
}

/// Why a write failed.
#[derive(Debug)]
enum Fault {
    /// This ballot's own: the others may still be written.
    Ballot(sqlx::Error),
    /// The database's, or the connection's: nothing can be written now.
    Database(anyhow::Error),
    /// A set-based statement did not change what the batch decided it would:
    /// the batch is written again one ballot at a time.
    Batch(String),
}

impl From<sqlx::Error> for Fault {
    fn from(error: sqlx::Error) -> Self {
        let own = error.as_database_error().is_some_and(|e| {
            match e.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                // PostgreSQL's SQLSTATE classes for what a statement itself
                // did wrong: bad data (22), a constraint (23), an error in it
                // (42), a trigger that raised one (P0). Everything else (a
                // lock timeout, a broken connection, a full disk, a read-only
                // server…) is the database's.
                Some(pg) => matches!(pg.code().get(..2), Some("22" | "23" | "42" | "P0")),
                // SQLite's primary result codes (the low byte of the extended
                // code) for the same: an error in it (1), too big (18), a
                // constraint or trigger (19), a type mismatch (20), a bad
                // parameter (25). Everything else (busy, locked, read-only,
                // I/O, full, corrupt, cannot open…) is the database's.
                None => e
                    .code()
                    .and_then(|code| code.parse::<i32>().ok())
                    .is_some_and(|code| matches!(code & 0xff, 1 | 18 | 19 | 20 | 25)),
            }
        });
        if own {
            Self::Ballot(error)
        } else {
            Self::Database(error.into())
        }
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ballot(error) => write!(f, "{error}"),
            Self::Database(error) => write!(f, "{error:#}"),
            Self::Batch(what) => write!(f, "the batch disagrees with its statements: {what}"),
        }
    }
}

/// How a writer session ended.
enum Stop {
    /// Every `BallotBox` is gone and the queue is empty.
    Closed,
    /// A fault of the database; `wrote` says whether the session had written.
    Fault { wrote: bool },
}

#[derive(Clone)]
struct Writer {
    db: Db,
    live: Arc<Live>,
    settings: Arc<WriterSettings>,
    ready: Arc<AtomicBool>,
}

/// Runs writer sessions until the queue closes: each on a connection of its
/// own, in a task of its own, so that a session that fails or panics is
/// followed by a fresh one after a wait, with every ballot meanwhile refused.
async fn supervise(first: OwnConn, rx: mpsc::Receiver<Job>, writer: Writer) {
    // A session holds the queue's lock for its life; a panic releases it.
    let rx = Arc::new(Mutex::new(rx));
    let mut conn = Some(first);
    let mut backoff = FIRST_BACKOFF;
    loop {
        let session = tokio::spawn(writer.clone().session(conn.take(), rx.clone()));
        match session.await {
            Ok(Stop::Closed) => break,
            Ok(Stop::Fault { wrote }) => {
                if wrote {
                    backoff = FIRST_BACKOFF;
                }
            }
            Err(error) => {
                tracing::error!(%error, "the ballot writer died; starting it again");
            }
        }
        writer.set_ready(false);
        let mut queue = rx.lock().await;
        if refusing(&mut queue, tokio::time::sleep(backoff))
            .await
            .is_none()
        {
            break;
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
    tracing::debug!("ballot box closed");
}

/// Runs `work` while answering every ballot that arrives meanwhile with
/// `Unavailable`; `None` when every sender is gone.
async fn refusing<F: Future>(rx: &mut mpsc::Receiver<Job>, work: F) -> Option<F::Output> {
    tokio::pin!(work);
    loop {
        tokio::select! {
            output = &mut work => return Some(output),
            job = rx.recv() => job?.refuse(),
        }
    }
}

impl Writer {
    fn set_ready(&self, ready: bool) {
        let was = self.ready.swap(ready, Ordering::Relaxed);
        if ready && !was {
            tracing::info!("the ballot writer can write again");
        }
    }

    async fn session(self, conn: Option<OwnConn>, rx: Arc<Mutex<mpsc::Receiver<Job>>>) -> Stop {
        let mut rx = rx.lock_owned().await;
        let mut conn = match conn {
            Some(conn) => conn,
            None => match refusing(&mut rx, self.reconnect()).await {
                None => return Stop::Closed,
                Some(Ok(conn)) => conn,
                Some(Err(fault)) => {
                    tracing::warn!(error = %fault, "the ballot writer still cannot write");
                    return Stop::Fault { wrote: false };
                }
            },
        };
        self.set_ready(true);
        let max_batch = self.settings.max_batch.max(1);
        let mut batch = Vec::with_capacity(max_batch);
        let mut upkeep = tokio::time::interval(self.settings.upkeep_every);
        upkeep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = upkeep.tick() => {
                    if let Err(fault) = self.upkeep(&mut conn).await {
                        tracing::error!(error = %fault, "could not erase expired address uses and keys");
                        if matches!(fault, Fault::Database(_)) {
                            return Stop::Fault { wrote: true };
                        }
                    }
                }
                received = rx.recv_many(&mut batch, max_batch) => {
                    if received == 0 {
                        let _ = conn.close().await;
                        return Stop::Closed;
                    }
                    let started = std::time::Instant::now();
                    let result = self.write_batch(&mut conn, &batch).await;
                    metrics::batch_written(batch.len(), started.elapsed(), result.is_ok());
                    match result {
                        Ok(written) => {
                            self.publish(&written);
                            for (job, outcome) in batch.drain(..).zip(written.outcomes) {
                                if let Some(outcome) = outcome {
                                    metrics::ballot(job.ballot.kind(), outcome_label(&outcome));
                                    let _ = job.reply.send(outcome);
                                }
                            }
                        }
                        Err(fault) => {
                            tracing::error!(error = %fault, ballots = batch.len(), "could not store a batch of ballots");
                            for job in &batch {
                                metrics::ballot(job.ballot.kind(), "unavailable");
                            }
                            batch.drain(..).for_each(Job::refuse);
                            return Stop::Fault { wrote: true };
                        }
                    }
                }
            }
        }
    }

    /// A fresh connection, once a small write on it has committed.
    async fn reconnect(&self) -> Result<OwnConn, Fault> {
        let mut conn = self
            .db
            .writer_connection(self.settings.lock_wait)
            .await
            .map_err(Fault::Database)?;
        self.before_transaction(&mut conn).await?;
        let mut tx = conn.begin_write().await?;
        store::checks::check_writable(tx.conn(), store::now_millis()).await?;
        tx.commit().await?;
        Ok(conn)
    }

    async fn before_transaction(&self, conn: &mut OwnConn) -> Result<(), Fault> {
        match &self.settings.faults {
            Some(faults) => faults.before_transaction(conn).await,
            None => Ok(()),
        }
    }

    /// Erases address uses past the cap's window and answers past theirs.
    async fn upkeep(&self, conn: &mut OwnConn) -> Result<(), Fault> {
        let now = store::now_millis();
        self.before_transaction(conn).await?;
        let mut tx = conn.begin_write().await?;
        let addresses =
            store::addresses::erase_before(tx.conn(), now - millis(self.settings.address_window))
                .await?;
        let answers = store::idempotency::erase_before(
            tx.conn(),
            now - millis(self.settings.idempotency_window),
        )
        .await?;
        tx.commit().await?;
        tracing::debug!(
            addresses,
            answers,
            "erased expired address uses and kept answers"
        );
        Ok(())
    }

    /// Writes a batch in one transaction; the receipts are valid only once it returns `Ok`.
    async fn write_batch(&self, conn: &mut OwnConn, batch: &[Job]) -> Result<Written, Fault> {
        self.write_batch_at(conn, batch, &Now::new()).await
    }

    async fn write_batch_at(
        &self,
        conn: &mut OwnConn,
        batch: &[Job],
        now: &Now,
    ) -> Result<Written, Fault> {
        self.before_transaction(conn).await?;
        let scopes = scopes_of(batch);
        let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
        let mut tx = conn.begin_write().await?;
        store::lock_scopes(tx.conn(), &scopes).await?;
        let written = match self.write_set_based(tx.conn(), batch, now).await {
            Ok(written) => written,
            Err(fault @ (Fault::Ballot(_) | Fault::Batch(_))) => {
                tracing::warn!(error = %fault, "a ballot failed; writing its batch again one ballot at a time");
                tx.rollback().await?;
                tx = conn.begin_write().await?;
                store::lock_scopes(tx.conn(), &scopes).await?;
                let mut written = Written::default();
                self.write_each_alone(&mut tx, batch, &mut written, now)
                    .await?;
                written
            }
            Err(fault) => return Err(fault),
        };
        written.notify(tx.conn()).await?;
        tx.commit().await?;
        Ok(written)
    }

    /// Writes every ballot whose caller still waits, each with statements of
    /// its own in a savepoint of its own, so that one that fails is rolled
    /// back and answered alone.
    async fn write_each_alone(
        &self,
        tx: &mut store::Tx<'_>,
        batch: &[Job],
        written: &mut Written,
        now: &Now,
    ) -> Result<(), Fault> {
        for job in batch {
            // Nobody would hear the receipt, and a retry would count it again.
            if job.reply.is_closed() {
                written.outcomes.push(None);
                continue;
            }
            let mut savepoint = tx.savepoint().await?;
            match self.write_one(savepoint.conn(), job, written, now).await {
                Ok(receipt) => {
                    savepoint.commit().await?;
                    written.outcomes.push(Some(Ok(receipt)));
                }
                Err(Fault::Ballot(error)) => {
                    // If the error took the whole transaction with it, this fails too.
                    savepoint.rollback().await?;
                    tracing::error!(%error, ballot = ?job.ballot, "could not store a ballot");
                    written.outcomes.push(Some(Err(Unavailable)));
                }
                Err(fault) => return Err(fault),
            }
        }
        Ok(())
    }

    /// Writes one ballot. What it learns about tallies goes into `written`
    /// only once all of its statements have succeeded.
    async fn write_one(
        &self,
        mut conn: Conn<'_>,
        job: &Job,
        written: &mut Written,
        now: &Now,
    ) -> Result<Receipt, Fault> {
        if let Some(key) = &job.key
            && let Some(receipt) = earlier_answer(conn.reborrow(), key, job.ballot.voter()).await?
        {
            return Ok(receipt);
        }
        let receipt = match &job.ballot {
            Ballot::Vote {
                poll,
                option,
                voter,
                address,
            } => {
                if !self.is_open(poll, now) {
                    return Ok(Receipt::PollClosed);
                }
                let scope = job.ballot.scope();
                if let Some(limit) = self
                    .over_address_limit(conn.reborrow(), &scope, address.as_ref(), now)
                    .await?
                {
                    // A reader who already voted hears that, not that the address is busy.
                    if store::polls::has_voted(conn.reborrow(), poll, voter.as_str()).await? {
                        return Ok(Receipt::AlreadyVoted);
                    }
                    return Ok(limit);
                }
                let before = written.tallies(conn.reborrow(), poll).await?;
                if !store::polls::insert_vote(
                    conn.reborrow(),
                    poll,
                    option.get(),
                    voter.as_str(),
                    now.millis,
                )
                .await?
                {
                    return Ok(Receipt::AlreadyVoted);
                }
                self.record_use(conn.reborrow(), &scope, address.as_ref(), now)
                    .await?;
                let tallies: Arc<[(u32, u64)]> = before
                    .iter()
                    .map(|&(id, votes)| (id, votes + u64::from(id == option.get())))
                    .collect();
                let receipt = Receipt::Counted {
                    tallies: tallies.clone(),
                };
                let receipt = keep_answer(conn.reborrow(), job, receipt, now).await?;
                written.polls.insert(poll.clone(), tallies);
                receipt
            }
            Ballot::Rating {
                article_id,
                voter,
                stars,
                address,
            } => {
                let scope = job.ballot.scope();
                if let Some(limit) = self
                    .over_address_limit(conn.reborrow(), &scope, address.as_ref(), now)
                    .await?
                {
                    return Ok(limit);
                }
                let mut counts = written.counts(conn.reborrow(), *article_id).await?;
                let earlier =
                    store::ratings::stars_of(conn.reborrow(), *article_id, voter.as_str()).await?;
                store::ratings::upsert_rating(
                    conn.reborrow(),
                    *article_id,
                    voter.as_str(),
                    stars.get(),
                    now.millis,
                )
                .await?;
                self.record_use(conn.reborrow(), &scope, address.as_ref(), now)
                    .await?;
                if let Some(slot) = earlier.and_then(|s| star_slot(&mut counts, s)) {
                    *slot = slot.saturating_sub(1);
                }
                if let Some(slot) = star_slot(&mut counts, stars.get()) {
                    *slot += 1;
                }
                let receipt =
                    keep_answer(conn.reborrow(), job, Receipt::Rated { counts }, now).await?;
                written.ratings.insert(*article_id, counts);
                receipt
            }
        };
        Ok(receipt)
    }

    /// Whether the poll takes votes at `now`.
    fn is_open(&self, poll: &str, now: &Now) -> bool {
        self.live
            .poll(poll)
            .is_some_and(|p| p.status_at(now.time) == PollStatus::Open)
    }

    /// `Some(receipt)` when the address has used up its share of `scope` in the window.
    async fn over_address_limit(
        &self,
        conn: Conn<'_>,
        scope: &str,
        address: Option<&AddressHash>,
        now: &Now,
    ) -> sqlx::Result<Option<Receipt>> {
        let (Some(limit), Some(address)) = (self.settings.max_votes_per_address, address) else {
            return Ok(None);
        };
        let window = millis(self.settings.address_window);
        let (count, oldest) =
            store::addresses::uses_since(conn, scope, &address.0, now.millis - window).await?;
        Ok(self.address_limit(limit, count, oldest, now))
    }

    /// `Some(receipt)` when `count` uses in the window, the oldest at
    /// `oldest`, have used up `limit`.
    fn address_limit(
        &self,
        limit: u32,
        count: u32,
        oldest: Option<i64>,
        now: &Now,
    ) -> Option<Receipt> {
        if count < limit {
            return None;
        }
        let window = millis(self.settings.address_window);
        let free_at = oldest.unwrap_or(now.millis) + window;
        let retry_after_secs = u64::try_from((free_at - now.millis).max(0) / 1000 + 1).unwrap_or(1);
        Some(Receipt::AddressLimit { retry_after_secs })
    }

    /// Counts a use against the address's cap (only while there is a cap).
    async fn record_use(
        &self,
        conn: Conn<'_>,
        scope: &str,
        address: Option<&AddressHash>,
        now: &Now,
    ) -> sqlx::Result<()> {
        match (self.settings.max_votes_per_address, address) {
            (Some(_), Some(address)) => {
                store::addresses::record_use(conn, scope, &address.0, now.millis).await
            }
            _ => Ok(()),
        }
    }

    /// Publishes the batch's last tallies of what it changed.
    fn publish(&self, written: &Written) {
        for (poll, tallies) in &written.polls {
            if let Some(current) = self.live.poll(poll) {
                self.live.publish_poll(current.with_tallies(tallies));
            }
        }
        for (&article_id, &counts) in &written.ratings {
            self.live
                .publish_rating(article_id, RatingState::new(counts));
        }
    }
}

/// The answer kept with the ballot's key, if it was sent before: the same
/// request gets it again; another request is refused.
async fn earlier_answer(
    conn: Conn<'_>,
    key: &Keyed,
    voter: &ReaderId,
) -> Result<Option<Receipt>, Fault> {
    let by_address = key.by_address.unwrap_or(key.id);
    let kept = store::idempotency::find(conn, &key.id, &by_address).await?;
    // An answer kept under the address is this reader's only if it made them this reader.
    Ok(replay(kept, key, voter))
}

/// The receipt of a keyed ballot whose key finds one of `kept` (as
/// `idempotency_keys` returns them for the key's two ids), if it does.
fn replay(
    kept: impl IntoIterator<Item = store::idempotency::KeptAnswer>,
    key: &Keyed,
    voter: &ReaderId,
) -> Option<Receipt> {
    let kept = kept
        .into_iter()
        .find(|k| k.id == key.id || k.reader == voter.as_str())?;
    if kept.request != key.request {
        return Some(Receipt::KeyReused);
    }
    let answer = Answer {
        status: u16::try_from(kept.status)
            .ok()
            .and_then(|s| axum::http::StatusCode::from_u16(s).ok())
            .unwrap_or(axum::http::StatusCode::OK),
        body: kept.body.into(),
        reader: ReaderId::parse(&kept.reader).unwrap_or_else(|| voter.clone()),
    };
    Some(Receipt::Answered {
        answer,
        replayed: true,
    })
}

/// For a keyed ballot that changed something, phrases its answer and keeps it with the key.
async fn keep_answer(
    conn: Conn<'_>,
    job: &Job,
    receipt: Receipt,
    now: &Now,
) -> Result<Receipt, Fault> {
    let (kept, receipt) = match answer_to_keep(job, receipt) {
        Ok(keep) => keep,
        Err(receipt) => return Ok(receipt),
    };
    store::idempotency::keep(conn, &kept, now.millis).await?;
    Ok(receipt)
}

/// For a keyed ballot, the answer to keep with its key and the receipt that
/// says so; `Err(receipt)` unchanged for a ballot without a key.
fn answer_to_keep(
    job: &Job,
    receipt: Receipt,
) -> Result<(store::idempotency::KeptAnswer, Receipt), Receipt> {
    let Some(key) = &job.key else {
        return Err(receipt);
    };
    let (status, body) = (key.phrase)(&receipt);
    let voter = job.ballot.voter();
    let kept = store::idempotency::KeptAnswer {
        id: key.id.to_vec(),
        request: key.request.clone(),
        status: i64::from(status.as_u16()),
        body: body.to_vec(),
        reader: voter.as_str().to_owned(),
    };
    let receipt = Receipt::Answered {
        answer: Answer {
            status,
            body,
            reader: voter.clone(),
        },
        replayed: false,
    };
    Ok((kept, receipt))
}

/// The time a batch is written at.
struct Now {
    millis: i64,
    time: time::OffsetDateTime,
}

impl Now {
    fn new() -> Self {
        Self {
            millis: store::now_millis(),
            time: time::OffsetDateTime::now_utc(),
        }
    }
}

/// What a batch wrote: each ballot's outcome (`None`: its caller had gone,
/// and it was not written), and the last tallies of what it changed.
#[derive(Default)]
struct Written {
    outcomes: Vec<Option<Result<Receipt, Unavailable>>>,
    polls: HashMap<Arc<str>, Arc<[(u32, u64)]>>,
    ratings: HashMap<i64, [u64; 5]>,
}

impl Written {
    /// Tells the other instances what this batch changed (see `crate::live::sync`).
    async fn notify(&self, conn: Conn<'_>) -> sqlx::Result<()> {
        if self.polls.is_empty() && self.ratings.is_empty() {
            return Ok(());
        }
        let changed = crate::live::sync::Changed {
            polls: self.polls.keys().map(|p| p.to_string()).collect(),
            articles: self.ratings.keys().copied().collect(),
        };
        store::notify(conn, &changed.to_payload()).await
    }

    /// A poll's tallies as this batch has them, read in the transaction at first.
    async fn tallies(&self, conn: Conn<'_>, poll: &str) -> sqlx::Result<Arc<[(u32, u64)]>> {
        if let Some(tallies) = self.polls.get(poll) {
            return Ok(tallies.clone());
        }
        Ok(store::polls::tallies(conn, poll).await?.into())
    }

    /// An article's readers per star as this batch has them.
    async fn counts(&self, conn: Conn<'_>, article_id: i64) -> sqlx::Result<[u64; 5]> {
        if let Some(counts) = self.ratings.get(&article_id) {
            return Ok(*counts);
        }
        store::ratings::distribution(conn, article_id).await
    }
}

/// What a batch writes to, as `store::lock_scopes` names it.
fn scopes_of(batch: &[Job]) -> Vec<String> {
    let mut scopes: Vec<String> = batch.iter().map(|job| job.ballot.scope()).collect();
    scopes.sort_unstable();
    scopes.dedup();
    scopes
}

/// The count of readers who gave `stars` (index 0 is one star).
fn star_slot(counts: &mut [u64; 5], stars: u8) -> Option<&mut u64> {
    usize::from(stars)
        .checked_sub(1)
        .and_then(|i| counts.get_mut(i))
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::config::Config;
    use crate::state::AppState;

    /// A server's state on a fresh database, a writer of the test's own on
    /// another connection, and votes for option 4 failing in SQL when they
    /// are written (a repeat vote for it is refused before that).
    async fn writer() -> (tempfile::TempDir, AppState, Writer, OwnConn) {
        writer_capped(None).await
    }

    /// `writer`, with a cap of `cap` uses per address.
    async fn writer_capped(cap: Option<u32>) -> (tempfile::TempDir, AppState, Writer, OwnConn) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let content = concat!(env!("CARGO_MANIFEST_DIR"), "/content");
        let mut config = Config::new(url, content);
        config.max_votes_per_address = None;
        let state = AppState::build(config).await.unwrap().state;
        sqlx::query(
            "create trigger no_four after insert on votes when new.option_id = 4
             begin select raise(abort, 'option four is broken'); end",
        )
        .execute(state.db.sqlite_pool().unwrap())
        .await
        .unwrap();
        let writer = Writer {
            db: state.db.clone(),
            live: state.live.clone(),
            settings: Arc::new(WriterSettings {
                max_votes_per_address: cap,
                max_batch: 1024,
                address_window: Duration::from_secs(3600),
                idempotency_window: Duration::from_secs(86400),
                upkeep_every: Duration::from_secs(60),
                lock_wait: Duration::from_secs(5),
                faults: None,
            }),
            ready: Arc::new(AtomicBool::new(true)),
        };
        let conn = state
            .db
            .writer_connection(Duration::from_secs(5))
            .await
            .unwrap();
        (dir, state, writer, conn)
    }

    fn reader(n: u8) -> ReaderId {
        ReaderId::parse(&format!("{n:032x}")).unwrap()
    }

    fn job(ballot: Ballot) -> (Job, oneshot::Receiver<Result<Receipt, Unavailable>>) {
        let (reply, receipt) = oneshot::channel();
        let job = Job {
            ballot,
            key: None,
            reply,
        };
        (job, receipt)
    }

    fn vote(voter: u8, option: u32) -> Ballot {
        Ballot::Vote {
            poll: "us-long-term-goals".into(),
            option: OptionId::try_from(i64::from(option)).unwrap(),
            voter: reader(voter),
            address: None,
        }
    }

    async fn stored_tallies(state: &AppState) -> Vec<u64> {
        let mut pooled = state.db.acquire().await.unwrap();
        store::polls::tallies(pooled.conn(), "us-long-term-goals")
            .await
            .unwrap()
            .into_iter()
            .map(|(_, votes)| votes)
            .collect()
    }

    fn counted(tallies: [u64; 4]) -> Option<Result<Receipt, Unavailable>> {
        Some(Ok(Receipt::Counted {
            tallies: (1..=4).zip(tallies).collect(),
        }))
    }

    #[tokio::test]
    async fn a_batch_with_one_failing_ballot_commits_the_others() {
        let (_dir, state, writer, mut conn) = writer().await;
        let (jobs, mut receivers): (Vec<_>, Vec<_>) =
            [vote(1, 1), vote(2, 4), vote(3, 2), vote(4, 1), vote(5, 3)]
                .into_iter()
                .map(job)
                .unzip();
        // The last caller has gone: its ballot is not written.
        receivers.pop();
        let written = writer.write_batch(&mut conn, &jobs).await.unwrap();
        let outcomes: Vec<_> = written
            .outcomes
            .iter()
            .map(|o| o.as_ref().map(|r| r.clone().map_err(|_| "unavailable")))
            .collect();
        let counted = |t| counted(t).map(|r| r.map_err(|_| "unavailable"));
        assert_eq!(
            outcomes,
            [
                counted([34, 30, 24, 21]),
                Some(Err("unavailable")),
                counted([34, 31, 24, 21]),
                counted([35, 31, 24, 21]),
                None,
            ]
        );
        assert_eq!(stored_tallies(&state).await, [35, 31, 24, 21]);
    }

    /// One ballot of a generated batch, of every kind the writer tells apart.
    #[derive(Clone, Debug)]
    enum Test {
        /// A vote; option 4 fails in SQL. `gone`: its caller hung up.
        Vote {
            voter: u8,
            option: u32,
            address: Option<u8>,
            key: Option<u8>,
            gone: bool,
        },
        /// A vote in a poll that is not open.
        Closed { voter: u8, key: Option<u8> },
        Rate {
            voter: u8,
            stars: u8,
            address: Option<u8>,
            key: Option<u8>,
        },
    }

    impl Test {
        fn fails(&self) -> bool {
            matches!(self, Self::Vote { option: 4, .. })
        }

        /// The job, built afresh for each writer; `None` for the receiver of a caller who hung up.
        fn job(
            &self,
            article_id: i64,
        ) -> (Job, Option<oneshot::Receiver<Result<Receipt, Unavailable>>>) {
            let (ballot, key, gone) = match *self {
                Self::Vote {
                    voter,
                    option,
                    address,
                    key,
                    gone,
                } => {
                    let ballot = Ballot::Vote {
                        poll: "us-long-term-goals".into(),
                        option: OptionId::try_from(i64::from(option)).unwrap(),
                        voter: reader(voter),
                        address: address.map(|a| AddressHash([a; 32])),
                    };
                    (
                        ballot,
                        key.map(|k| keyed(k, format!("vote {option}"))),
                        gone,
                    )
                }
                Self::Closed { voter, key } => {
                    let ballot = Ballot::Vote {
                        poll: "a-poll-that-is-not-open".into(),
                        option: OptionId::try_from(1).unwrap(),
                        voter: reader(voter),
                        address: None,
                    };
                    (ballot, key.map(|k| keyed(k, "closed".into())), false)
                }
                Self::Rate {
                    voter,
                    stars,
                    address,
                    key,
                } => {
                    let ballot = Ballot::Rating {
                        article_id,
                        voter: reader(voter),
                        stars: Stars::try_from(i64::from(stars)).unwrap(),
                        address: address.map(|a| AddressHash([a; 32])),
                    };
                    (
                        ballot,
                        key.map(|k| keyed(k, format!("rate {stars}"))),
                        false,
                    )
                }
            };
            let (mut job, receiver) = job(ballot);
            job.key = key;
            (job, (!gone).then_some(receiver))
        }
    }

    /// Key `k`; odd keys also look where key `k - 1` keeps its answers, as
    /// a reader's key looks where their address kept one.
    fn keyed(k: u8, request: String) -> Keyed {
        Keyed {
            id: [k; 32],
            by_address: (k % 2 == 1).then(|| [k - 1; 32]),
            request,
            phrase: Box::new(|receipt: &Receipt| {
                (
                    axum::http::StatusCode::CREATED,
                    bytes::Bytes::from(format!("{receipt:?}")),
                )
            }),
        }
    }

    fn ballot() -> impl Strategy<Value = Test> {
        let voter = 0_u8..8;
        let address = prop::option::of(0_u8..3);
        let key = prop::option::weighted(0.3, 0_u8..6);
        prop_oneof![
            6 => (voter.clone(), 1_u32..=3, address.clone(), key.clone(), prop::bool::weighted(0.05))
                .prop_map(|(voter, option, address, key, gone)| Test::Vote { voter, option, address, key, gone }),
            1 => (voter.clone(), address.clone(), key.clone())
                .prop_map(|(voter, address, key)| Test::Vote { voter, option: 4, address, key, gone: false }),
            1 => (voter.clone(), key.clone()).prop_map(|(voter, key)| Test::Closed { voter, key }),
            4 => (voter, 1_u8..=5, address, key)
                .prop_map(|(voter, stars, address, key)| Test::Rate { voter, stars, address, key }),
        ]
    }

    /// A few batches in a row, so that later ones meet what earlier ones stored.
    fn batches() -> impl Strategy<Value = Vec<Vec<Test>>> {
        prop::collection::vec(prop::collection::vec(ballot(), 1..30), 1..4)
    }

    type Outcome = Option<Result<Receipt, ()>>;

    fn outcomes(written: &Written) -> Vec<Outcome> {
        written
            .outcomes
            .iter()
            .map(|o| o.clone().map(|r| r.map_err(|_| ())))
            .collect()
    }

    /// Everything the writer keeps, in a form to compare.
    async fn stored(state: &AppState, article_id: i64) -> Vec<String> {
        let pool = state.db.sqlite_pool().unwrap();
        let mut pooled = state.db.acquire().await.unwrap();
        let mut rows = vec![format!("{:?}", stored_tallies(state).await)];
        rows.push(format!(
            "{:?}",
            store::ratings::distribution(pooled.conn(), article_id)
                .await
                .unwrap()
        ));
        for sql in [
            "select poll_id || ' ' || option_id || ' ' || voter from votes order by 1",
            "select article_id || ' ' || voter || ' ' || stars from ratings order by 1",
            "select scope || ' ' || hex(address_hash) || ' ' || used_at from address_uses order by 1",
            "select hex(id) || ' ' || request || ' ' || status || ' ' || hex(body) || ' ' || reader
               from idempotency_keys order by 1",
        ] {
            let found: Vec<String> = sqlx::query_scalar(sql).fetch_all(pool).await.unwrap();
            rows.extend(found);
        }
        rows
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Batches mixing every kind of ballot (new votes, repeat votes, a
        /// poll that is not open, the address cap, new and changed ratings,
        /// keyed ballots and their retries, a ballot that fails in SQL, a
        /// caller who hung up), written set-based, give each ballot the
        /// receipt the per-ballot writer gives it one at a time, each in a
        /// transaction of its own, and store the same rows. A batch without
        /// a failing ballot is written set-based, not one at a time.
        #[test]
        fn a_batch_is_the_same_as_its_ballots_one_at_a_time(batches in batches()) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let (_dir, state, writer, mut conn) = writer_capped(Some(3)).await;
                let (_one_dir, one_state, one_writer, mut one_conn) = writer_capped(Some(3)).await;
                let article_id = state.catalog.article("csto-summit-2015").unwrap().id;
                for batch in &batches {
                    let now = Now::new();
                    let (jobs, _receivers): (Vec<_>, Vec<_>) =
                        batch.iter().map(|b| b.job(article_id)).unzip();
                    let written = if batch.iter().any(Test::fails) {
                        writer.write_batch_at(&mut conn, &jobs, &now).await.unwrap()
                    } else {
                        let mut tx = conn.begin_write().await.unwrap();
                        let written = writer.write_set_based(tx.conn(), &jobs, &now).await.unwrap();
                        tx.commit().await.unwrap();
                        written
                    };

                    let mut alone = Vec::new();
                    for ballot in batch {
                        let (job, _receiver) = ballot.job(article_id);
                        let mut tx = one_conn.begin_write().await.unwrap();
                        let mut one = Written::default();
                        one_writer
                            .write_each_alone(&mut tx, std::slice::from_ref(&job), &mut one, &now)
                            .await
                            .unwrap();
                        tx.commit().await.unwrap();
                        alone.extend(outcomes(&one));
                    }
                    let got = outcomes(&written);
                    for ((ballot, got), alone) in batch.iter().zip(&got).zip(&alone) {
                        prop_assert_eq!(got, alone, "{:?} in {:?}", ballot, batch);
                    }
                    prop_assert_eq!(got.len(), batch.len());

                    // The batch publishes its last receipts' tallies, which are what it stored.
                    if let Some(published) = written.polls.get("us-long-term-goals") {
                        let published: Vec<u64> = published.iter().map(|t| t.1).collect();
                        prop_assert_eq!(published, stored_tallies(&state).await);
                    }
                    if let Some(counts) = written.ratings.get(&article_id) {
                        let mut pooled = state.db.acquire().await.unwrap();
                        let stored = store::ratings::distribution(pooled.conn(), article_id).await.unwrap();
                        prop_assert_eq!(*counts, stored);
                    }
                    prop_assert_eq!(stored(&state, article_id).await, stored(&one_state, article_id).await);
                }
                Ok(())
            })?;
        }
    }
}
