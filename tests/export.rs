//! `tribune export`: the same bytes as the in-memory export it replaced, every
//! row of a large poll in bounded memory, and a reader that stops early.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking
mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{POLL, TestDb, content_with};
use serde::Serialize;
use tempfile::TempDir;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const TRIBUNE: &str = env!("CARGO_BIN_EXE_tribune");
/// The votes imported with the seed poll's options.
const IMPORTED: u64 = 108;
/// 2026-01-01T00:00:00Z, in unix milliseconds.
const JAN_1: i64 = 1_767_225_600_000;

/// A second article with a poll of its own.
const OTHER_ARTICLE: &str = r#"+++
title = "Another article"
slug = "another-article"
lang = "en"

[author]
name = "A. Author"
bio = "Writes."

[poll]
id = "another-poll"
question = "Another question?"
status = "open"
options = [
    { id = 1, label = "Yes", votes = 0 },
    { id = 2, label = "No", votes = 0 },
]
+++

The lead.
"#;

/// A database with the seed content and one more article imported, its URL,
/// and a connection of the test's own to it.
async fn seeded_database() -> (TempDir, String, TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let url = common::fresh_database_url(dir.path(), "tribune.db").await;
    let db = tribune::store::Db::open(&url).await.unwrap();
    let content = content_with(&[("another-article.md", OTHER_ARTICLE)]);
    tribune::content::import(&db, content.path()).await.unwrap();
    db.close().await;
    let db = TestDb::connect(&url).await;
    (dir, url, db)
}

/// Casts `count` votes in the seed poll in one statement: vote `i` (1-based) is
/// for option `1 + i % 4`, cast at `JAN_1 + i` ms. Casts them straight into
/// the database, keeping the tallies as the writer does (there is no per-row
/// trigger to count them).
async fn fill(db: &mut TestDb, count: u64) {
    db.execute("begin", &[]).await;
    db.execute(
        "with recursive n(i) as (select 1 union all select i + 1 from n where i < ?) \
         insert into votes (poll_id, option_id, voter, cast_at) \
         select ?, 1 + i % 4, 'filled-' || (1000000000 + i), ? + i from n",
        &[(count as i64).into(), POLL.into(), JAN_1.into()],
    )
    .await;
    db.execute(
        "update poll_options set cast_votes = \
           (select count(*) from votes v \
             where v.poll_id = poll_options.poll_id and v.option_id = poll_options.option_id) \
         where poll_id = ?",
        &[POLL.into()],
    )
    .await;
    db.commit().await;
}

fn export(dir: &Path, url: &str, format: &str) -> Output {
    let output = Command::new(TRIBUNE)
        .args(["export", POLL, "--format", format])
        .current_dir(dir)
        .env_clear()
        .env("DATABASE_URL", url)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn rfc3339(millis: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .unwrap()
        .format(&Rfc3339)
        .unwrap()
}

// The export as the in-memory version wrote it: the reference the streamed
// output must match byte for byte.
#[derive(Serialize)]
struct OldExport {
    poll: String,
    question: String,
    total_votes: u64,
    options: Vec<OldOption>,
    votes: Vec<OldVote>,
}

#[derive(Serialize)]
struct OldOption {
    id: u32,
    label: String,
    imported_votes: u64,
    cast_votes: u64,
    votes: u64,
    percent: u8,
}

#[derive(Serialize)]
struct OldVote {
    cast_at: String,
    option: u32,
}

async fn old_export(db: &mut TestDb) -> OldExport {
    let (question,): (String,) = db
        .fetch_one("select question from polls where id = ?", &[POLL.into()])
        .await;
    let mut options: Vec<OldOption> = db
        .fetch_all::<(i64, String, i64, i64)>(
            "select cast(option_id as bigint), label, cast(seed_votes as bigint), \
                    cast(cast_votes as bigint) \
             from poll_options where poll_id = ? order by position",
            &[POLL.into()],
        )
        .await
        .into_iter()
        .map(|(id, label, seed, cast)| OldOption {
            id: id as u32,
            label,
            imported_votes: seed as u64,
            cast_votes: cast as u64,
            votes: (seed + cast) as u64,
            percent: 0,
        })
        .collect();
    let counts: Vec<u64> = options.iter().map(|o| o.votes).collect();
    for (option, percent) in options
        .iter_mut()
        .zip(tribune::poll::largest_remainder_percents(&counts))
    {
        option.percent = percent;
    }
    let votes = db
        .fetch_all::<(i64, i64)>(
            "select cast(cast_at as bigint), cast(option_id as bigint) \
             from votes where poll_id = ? order by cast_at, id",
            &[POLL.into()],
        )
        .await
        .into_iter()
        .map(|(cast_at, option)| OldVote {
            cast_at: rfc3339(cast_at),
            option: option as u32,
        })
        .collect();
    OldExport {
        poll: POLL.to_owned(),
        question,
        total_votes: counts.iter().sum(),
        options,
        votes,
    }
}

fn old_csv(export: &OldExport) -> String {
    fn table<T: Serialize>(out: &mut Vec<u8>, header: &[&str], rows: &[T]) {
        let mut writer = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(out);
        writer.write_record(header).unwrap();
        for row in rows {
            writer.serialize(row).unwrap();
        }
        writer.flush().unwrap();
    }
    let mut out = Vec::new();
    table(
        &mut out,
        &[
            "option",
            "label",
            "imported_votes",
            "cast_votes",
            "votes",
            "percent",
        ],
        &export.options,
    );
    out.push(b'\n');
    table(&mut out, &["cast_at", "option"], &export.votes);
    String::from_utf8(out).unwrap()
}

fn old_json(export: &OldExport) -> String {
    serde_json::to_string_pretty(export).unwrap() + "\n"
}

fn assert_same_as_before(dir: &Path, url: &str, reference: &OldExport, case: &str) {
    let csv = String::from_utf8(export(dir, url, "csv").stdout).unwrap();
    assert_eq!(csv, old_csv(reference), "{case}: CSV");
    let json = String::from_utf8(export(dir, url, "json").stdout).unwrap();
    assert_eq!(json, old_json(reference), "{case}: JSON");
}

#[tokio::test]
async fn the_streamed_export_has_the_same_bytes_as_the_in_memory_one() {
    let (dir, url, mut db) = seeded_database().await;
    let reference = old_export(&mut db).await;
    assert!(reference.votes.is_empty());
    assert_same_as_before(dir.path(), &url, &reference, "no votes yet");

    // Votes in an order that is not the order of their ids, two at the same
    // millisecond, and a label that CSV must quote.
    db.execute(
        "update poll_options set label = 'Both, \"and\" neither' where poll_id = ? and option_id = 3",
        &[POLL.into()],
    )
    .await;
    for (voter, option, cast_at) in [
        ("a", 2, JAN_1 + 500),
        ("b", 3, JAN_1 + 100),
        ("c", 1, JAN_1 + 100),
        ("d", 4, JAN_1 + 999_999),
        ("e", 3, JAN_1),
    ] {
        db.execute(
            "insert into votes (poll_id, option_id, voter, cast_at) values (?, ?, ?, ?)",
            &[POLL.into(), option.into(), voter.into(), cast_at.into()],
        )
        .await;
    }
    let reference = old_export(&mut db).await;
    assert_eq!(reference.votes.len(), 5);
    // The poll holds every vote: its rows are read with the table.
    assert_same_as_before(dir.path(), &url, &reference, "five votes");

    // Now a small part of the table: its rows are found through the index.
    db.execute(
        "with recursive n(i) as (select 1 union all select i + 1 from n where i < 100) \
         insert into votes (poll_id, option_id, voter, cast_at) \
         select 'another-poll', 1 + i % 2, 'other-' || (1000 + i), ? + i from n",
        &[JAN_1.into()],
    )
    .await;
    assert_eq!(old_export(&mut db).await.votes.len(), 5);
    assert_same_as_before(dir.path(), &url, &reference, "five votes among many");
    db.close().await;
}

/// Peak resident memory of a child, read from /proc while it runs.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Runs an export to a pipe and reads it line by line as it comes. Returns
/// the number of lines, the lines that match `is_vote` (first and last kept),
/// and the process's peak RSS in KiB.
struct Streamed {
    lines: u64,
    votes: u64,
    first_vote: String,
    last_vote: String,
    peak_kib: u64,
}

fn stream_export(dir: &Path, url: &str, format: &str, is_vote: fn(&str) -> bool) -> Streamed {
    let mut child = Command::new(TRIBUNE)
        .args(["export", POLL, "--format", format])
        .current_dir(dir)
        .env_clear()
        .env("DATABASE_URL", url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let (mut lines, mut votes) = (0_u64, 0_u64);
        let (mut first, mut last) = (String::new(), String::new());
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            lines += 1;
            if is_vote(&line) {
                votes += 1;
                if first.is_empty() {
                    first = line.clone();
                }
                last = line;
            }
        }
        (lines, votes, first, last)
    });
    let mut peak_kib = 0;
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        // VmHWM only grows: the last reading before the exit is the peak.
        if let Some(kib) = peak_rss_kib(pid) {
            peak_kib = peak_kib.max(kib);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the export did not finish");
        std::thread::sleep(Duration::from_millis(2));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{format}: {stderr}");
    assert!(
        stderr.is_empty(),
        "{format}: silent when stderr is not a terminal: {stderr}"
    );
    let (lines, votes, first_vote, last_vote) = reader.join().unwrap();
    assert!(peak_kib > 0, "{format}: the peak RSS was read");
    Streamed {
        lines,
        votes,
        first_vote,
        last_vote,
        peak_kib,
    }
}

/// Well under the 64 MiB the issue allows at any size; the export that held
/// every row in memory needed more than this for 200,000 votes.
const PEAK_LIMIT_KIB: u64 = 32 * 1024;

#[tokio::test]
async fn an_export_of_200_000_votes_gives_every_row_in_bounded_memory() {
    const VOTES: u64 = 200_000;
    let (dir, url, mut db) = seeded_database().await;
    fill(&mut db, VOTES).await;
    db.close().await;

    let csv = stream_export(dir.path(), &url, "csv", |l| l.starts_with("2026-"));
    // The tallies' header, four options, a blank line, the votes' header, the votes.
    assert_eq!(csv.lines, 1 + 4 + 1 + 1 + VOTES, "CSV lines");
    assert_eq!(csv.votes, VOTES);
    assert_eq!(csv.first_vote, format!("{},2", rfc3339(JAN_1 + 1)));
    assert_eq!(
        csv.last_vote,
        format!("{},1", rfc3339(JAN_1 + VOTES as i64))
    );
    assert!(
        csv.peak_kib < PEAK_LIMIT_KIB,
        "CSV peak RSS {} KiB",
        csv.peak_kib
    );

    let json = stream_export(dir.path(), &url, "json", |l| {
        l.trim_start().starts_with("\"cast_at\"")
    });
    assert_eq!(json.votes, VOTES);
    assert_eq!(
        json.first_vote,
        format!("      \"cast_at\": \"{}\",", rfc3339(JAN_1 + 1))
    );
    assert_eq!(
        json.last_vote,
        format!("      \"cast_at\": \"{}\",", rfc3339(JAN_1 + VOTES as i64))
    );
    assert!(
        json.peak_kib < PEAK_LIMIT_KIB,
        "JSON peak RSS {} KiB",
        json.peak_kib
    );
    eprintln!(
        "export of {VOTES} votes: peak RSS {} KiB (CSV), {} KiB (JSON)",
        csv.peak_kib, json.peak_kib
    );

    // The JSON document is whole: it parses, with every vote and the tallies.
    let whole = export(dir.path(), &url, "json");
    let document: serde_json::Value = serde_json::from_slice(&whole.stdout).unwrap();
    assert_eq!(document["total_votes"], IMPORTED + VOTES);
    assert_eq!(document["votes"].as_array().unwrap().len() as u64, VOTES);
    assert_eq!(document["votes"][VOTES as usize - 1]["option"], 1);
}

#[tokio::test]
async fn an_export_whose_reader_stops_early_ends_quietly() {
    let (dir, url, mut db) = seeded_database().await;
    // Far more than a pipe holds, so the export is still writing when the reader goes.
    fill(&mut db, 50_000).await;
    db.close().await;
    for format in ["csv", "json"] {
        let mut child = Command::new(TRIBUNE)
            .args(["export", POLL, "--format", format])
            .current_dir(dir.path())
            .env_clear()
            .env("DATABASE_URL", &url)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        assert!(!first.is_empty(), "{format}");
        // The reader is gone, as after `| head -1`.
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{format}: {stderr}");
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "{format}: {stderr}"
        );
    }
}
