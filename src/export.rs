//! `tribune export`: a poll's tallies and its anonymised votes as CSV or
//! JSON, streamed from the database to a writer in bounded memory.
//!
//! The votes come from one read transaction, so the tallies and the rows are
//! the same snapshot however long the export takes. An async task reads the
//! rows with sqlx and hands them in chunks over a small bounded channel to a
//! blocking thread that formats them: at most a few chunks are in memory at
//! any time, whatever the poll's size. The JSON is written by serde_json's
//! own pretty printer, the votes fed to it as a sequence while it writes, so
//! the document is byte for byte what `serde_json::to_string_pretty` gives
//! for the whole export held in memory.

use std::cell::RefCell;
use std::io::{self, Write};

use anyhow::Context;
use futures_util::StreamExt;
use indicatif::ProgressBar;
use serde::ser::{Error as _, SerializeSeq};
use serde::{Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::mpsc;

use crate::store::export::{CastVote, PollTallies, VoteScan};
use crate::store::{self, Db, OwnConn};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Csv,
    Json,
}

/// How an export ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Exported {
    /// The whole document was written: the poll's votes (rows).
    Complete { votes: u64 },
    /// The reader closed the output (`| head`) after this many votes.
    OutputClosed { votes: u64 },
}

/// Votes per message from the reading task to the writing thread.
const CHUNK: usize = 4096;
/// Messages in flight between them: memory is bounded by `CHUNK * IN_FLIGHT` votes.
const IN_FLIGHT: usize = 4;
const OUTPUT_BUFFER: usize = 64 * 1024;

/// The tallies part of the export, the votes aside.
#[derive(Debug, Serialize)]
struct ExportedOption {
    id: u32,
    label: String,
    /// Starting tally imported from the content file.
    imported_votes: u64,
    cast_votes: u64,
    votes: u64,
    percent: u8,
}

#[derive(Debug, Serialize)]
struct ExportedVote {
    cast_at: String,
    option: u32,
}

impl From<CastVote> for ExportedVote {
    fn from(vote: CastVote) -> Self {
        Self {
            cast_at: OffsetDateTime::from_unix_timestamp_nanos(
                i128::from(vote.cast_at) * 1_000_000,
            )
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_default(),
            option: vote.option,
        }
    }
}

struct Head {
    poll: String,
    question: String,
    total_votes: u64,
    /// Votes cast here: the rows to come.
    cast_votes: u64,
    options: Vec<ExportedOption>,
}

impl Head {
    fn new(poll: &str, tallies: PollTallies) -> Self {
        let counts: Vec<u64> = tallies
            .options
            .iter()
            .map(|o| o.seed_votes + o.cast_votes)
            .collect();
        let percents = crate::poll::largest_remainder_percents(&counts);
        let options = tallies
            .options
            .into_iter()
            .zip(percents)
            .map(|(o, percent)| ExportedOption {
                id: o.id,
                label: o.label,
                imported_votes: o.seed_votes,
                cast_votes: o.cast_votes,
                votes: o.seed_votes + o.cast_votes,
                percent,
            })
            .collect::<Vec<_>>();
        Self {
            poll: poll.to_owned(),
            question: tallies.question,
            total_votes: counts.iter().sum(),
            cast_votes: options.iter().map(|o| o.cast_votes).sum(),
            options,
        }
    }
}

enum Message {
    Votes(Vec<CastVote>),
    /// Every row was sent: the document may be closed.
    End,
}

/// Writes poll `poll` in `format` to `out`. `Ok(None)` when there is no such
/// poll. `progress` is set to the number of votes, and advanced as they are
/// written; it is left for the caller to finish.
pub async fn export_poll<W: Write + Send + 'static>(
    db: &Db,
    poll: &str,
    format: ExportFormat,
    out: W,
    progress: ProgressBar,
) -> anyhow::Result<Option<Exported>> {
    let mut conn = db.export_connection().await?;
    let exported = export_in(&mut conn, poll, format, out, progress).await;
    conn.close().await?;
    exported
}

async fn export_in<W: Write + Send + 'static>(
    conn: &mut OwnConn,
    poll: &str,
    format: ExportFormat,
    out: W,
    progress: ProgressBar,
) -> anyhow::Result<Option<Exported>> {
    let mut snapshot = conn.begin_snapshot().await?;
    let Some(tallies) = store::export::poll_tallies(snapshot.conn(), poll).await? else {
        return Ok(None);
    };
    let head = Head::new(poll, tallies);
    progress.set_length(head.cast_votes);
    let all_votes = store::export::all_cast_votes(snapshot.conn()).await?;
    let scan = if head.cast_votes.saturating_mul(8) >= all_votes {
        VoteScan::Table
    } else {
        VoteScan::Index
    };

    let (sender, receiver) = mpsc::channel(IN_FLIGHT);
    let writer = tokio::task::spawn_blocking(move || {
        let mut feed = Feed::new(receiver, progress);
        let result = write_document(format, &head, &mut feed, out);
        (result, feed.written)
    });

    let mut rows = store::export::votes_oldest_first(snapshot.conn(), poll, scan);
    let mut chunk = Vec::with_capacity(CHUNK);
    let mut read_error = None;
    let mut writer_gone = false;
    // Ends with the poll's rows: a finite query.
    while let Some(row) = rows.next().await {
        match row {
            Ok(vote) => chunk.push(vote),
            Err(e) => {
                read_error = Some(e);
                break;
            }
        }
        if chunk.len() == CHUNK {
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
            if sender.send(Message::Votes(full)).await.is_err() {
                writer_gone = true;
                break;
            }
        }
    }
    drop(rows);
    if read_error.is_none() && !writer_gone {
        // If the writer has stopped, its own result says why.
        let _ = sender.send(Message::Votes(chunk)).await;
        let _ = sender.send(Message::End).await;
    }
    drop(sender);
    let (written, votes) = writer.await.context("the export's writer stopped")?;
    // Read-only: nothing to commit.
    snapshot.rollback().await?;
    if let Some(e) = read_error {
        return Err(anyhow::Error::new(e).context("cannot read the poll's votes"));
    }
    match written {
        Ok(()) => Ok(Some(Exported::Complete { votes })),
        Err(WriteError::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => {
            Ok(Some(Exported::OutputClosed { votes }))
        }
        Err(WriteError::Output(e)) => Err(anyhow::Error::new(e).context("cannot write the export")),
        Err(WriteError::RowsEnded) => anyhow::bail!("the poll's votes stopped before the end"),
    }
}

#[derive(Debug)]
enum WriteError {
    Output(io::Error),
    /// The reading side went away without `Message::End`.
    RowsEnded,
}

impl From<io::Error> for WriteError {
    fn from(e: io::Error) -> Self {
        Self::Output(e)
    }
}

impl From<csv::Error> for WriteError {
    fn from(e: csv::Error) -> Self {
        match e.into_kind() {
            csv::ErrorKind::Io(e) => Self::Output(e),
            other => Self::Output(io::Error::other(format!("{other:?}"))),
        }
    }
}

/// The votes as the writing thread takes them, one at a time.
struct Feed {
    receiver: mpsc::Receiver<Message>,
    chunk: std::vec::IntoIter<CastVote>,
    progress: ProgressBar,
    written: u64,
}

impl Feed {
    fn new(receiver: mpsc::Receiver<Message>, progress: ProgressBar) -> Self {
        Self {
            receiver,
            chunk: Vec::new().into_iter(),
            progress,
            written: 0,
        }
    }

    /// The next vote; `Ok(None)` after the last one.
    fn next_vote(&mut self) -> Result<Option<ExportedVote>, WriteError> {
        // Bounded: each turn takes a message, and the sender stops at `End`.
        loop {
            if let Some(vote) = self.chunk.next() {
                self.written += 1;
                return Ok(Some(vote.into()));
            }
            match self.receiver.blocking_recv() {
                Some(Message::Votes(votes)) => {
                    // The previous chunk is written (into the buffer) by now.
                    self.progress.set_position(self.written);
                    self.chunk = votes.into_iter();
                }
                Some(Message::End) => {
                    self.progress.set_position(self.written);
                    return Ok(None);
                }
                None => return Err(WriteError::RowsEnded),
            }
        }
    }
}

fn write_document<W: Write>(
    format: ExportFormat,
    head: &Head,
    feed: &mut Feed,
    out: W,
) -> Result<(), WriteError> {
    let mut out = io::BufWriter::with_capacity(OUTPUT_BUFFER, out);
    match format {
        ExportFormat::Csv => write_csv(head, feed, &mut out)?,
        ExportFormat::Json => write_json(head, feed, &mut out)?,
    }
    out.flush()?;
    Ok(())
}

/// The tallies, a blank line, then the votes; each part with its header.
fn write_csv<W: Write>(head: &Head, feed: &mut Feed, out: &mut W) -> Result<(), WriteError> {
    const TALLIES: [&str; 6] = [
        "option",
        "label",
        "imported_votes",
        "cast_votes",
        "votes",
        "percent",
    ];
    let mut tallies = csv_writer(&mut *out);
    tallies.write_record(TALLIES)?;
    for option in &head.options {
        tallies.serialize(option)?;
    }
    tallies.flush()?;
    drop(tallies);
    out.write_all(b"\n")?;
    let mut votes = csv_writer(&mut *out);
    votes.write_record(["cast_at", "option"])?;
    while let Some(vote) = feed.next_vote()? {
        votes.serialize(vote)?;
    }
    votes.flush()?;
    Ok(())
}

fn csv_writer<W: Write>(out: W) -> csv::Writer<W> {
    // The header is written by hand, so that a table without rows has one too.
    csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(out)
}

/// The document `serde_json::to_string_pretty` gives for the whole export.
#[derive(Serialize)]
struct Document<'a> {
    poll: &'a str,
    question: &'a str,
    total_votes: u64,
    options: &'a [ExportedOption],
    /// Every vote cast here, oldest first: when, and for what. No reader, no address.
    votes: Votes<'a>,
}

/// The votes as a JSON sequence, taken from the feed while serde_json writes.
struct Votes<'a> {
    feed: RefCell<&'a mut Feed>,
    /// Why the feed stopped, when it did: serde only carries a message.
    failure: RefCell<Option<WriteError>>,
}

impl Serialize for Votes<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // The length is not given: serde_json writes the same bytes without it.
        let mut seq = serializer.serialize_seq(None)?;
        let mut feed = self.feed.borrow_mut();
        // Bounded by the feed, which ends.
        loop {
            match feed.next_vote() {
                Ok(Some(vote)) => seq.serialize_element(&vote)?,
                Ok(None) => break,
                Err(e) => {
                    *self.failure.borrow_mut() = Some(e);
                    return Err(S::Error::custom("the votes stopped"));
                }
            }
        }
        seq.end()
    }
}

fn write_json<W: Write>(head: &Head, feed: &mut Feed, out: &mut W) -> Result<(), WriteError> {
    let document = Document {
        poll: &head.poll,
        question: &head.question,
        total_votes: head.total_votes,
        options: &head.options,
        votes: Votes {
            feed: RefCell::new(feed),
            failure: RefCell::new(None),
        },
    };
    let written = serde_json::to_writer_pretty(&mut *out, &document);
    if let Some(failure) = document.votes.failure.into_inner() {
        return Err(failure);
    }
    written.map_err(|e| match e.io_error_kind() {
        Some(kind) => WriteError::Output(io::Error::new(kind, e)),
        None => WriteError::Output(io::Error::other(e)),
    })?;
    out.write_all(b"\n")?;
    Ok(())
}
