//! `tribune export`: a poll's tallies and its anonymised votes.

use serde::Serialize;
use sqlx::Row;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::Db;

#[derive(Debug, Serialize)]
pub struct PollExport {
    pub poll: String,
    pub question: String,
    pub total_votes: u64,
    pub options: Vec<ExportedOption>,
    /// Every vote cast here, oldest first: when, and for what. No reader, no address.
    pub votes: Vec<ExportedVote>,
}

#[derive(Debug, Serialize)]
pub struct ExportedOption {
    pub id: u32,
    pub label: String,
    /// Starting tally imported from the content file.
    pub imported_votes: u64,
    pub cast_votes: u64,
    pub votes: u64,
    pub percent: u8,
}

#[derive(Debug, Serialize)]
pub struct ExportedVote {
    pub cast_at: String,
    pub option: u32,
}

pub async fn poll_export(db: &Db, poll: &str) -> sqlx::Result<Option<PollExport>> {
    let Some(question) =
        sqlx::query_scalar::<_, String>(r"select question from polls where id = ?")
            .bind(poll)
            .fetch_optional(db.pool())
            .await?
    else {
        return Ok(None);
    };
    let rows = sqlx::query(
        r"select option_id, label, seed_votes, cast_votes from poll_options where poll_id = ? order by position",
    )
    .bind(poll)
    .fetch_all(db.pool())
    .await?;
    let mut options: Vec<ExportedOption> = rows
        .into_iter()
        .map(|r| {
            let seed = r.get::<i64, _>("seed_votes").max(0) as u64;
            let cast = r.get::<i64, _>("cast_votes").max(0) as u64;
            ExportedOption {
                id: r.get::<i64, _>("option_id") as u32,
                label: r.get("label"),
                imported_votes: seed,
                cast_votes: cast,
                votes: seed + cast,
                percent: 0,
            }
        })
        .collect();
    let counts: Vec<u64> = options.iter().map(|o| o.votes).collect();
    for (option, percent) in options
        .iter_mut()
        .zip(crate::poll::largest_remainder_percents(&counts))
    {
        option.percent = percent;
    }
    let votes = sqlx::query_as::<_, (i64, i64)>(
        r"select cast_at, option_id from votes where poll_id = ? order by cast_at, id",
    )
    .bind(poll)
    .fetch_all(db.pool())
    .await?
    .into_iter()
    .map(|(cast_at, option)| ExportedVote {
        cast_at: OffsetDateTime::from_unix_timestamp_nanos(i128::from(cast_at) * 1_000_000)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_default(),
        option: option as u32,
    })
    .collect();
    Ok(Some(PollExport {
        poll: poll.to_owned(),
        question,
        total_votes: counts.iter().sum(),
        options,
        votes,
    }))
}

impl PollExport {
    /// The tallies, a blank line, then the votes; each part with its header.
    pub fn to_csv(&self) -> String {
        const TALLIES: [&str; 6] = [
            "option",
            "label",
            "imported_votes",
            "cast_votes",
            "votes",
            "percent",
        ];
        let mut out = Vec::new();
        // Writing CSV into memory cannot fail.
        let _ = write_csv(&mut out, &TALLIES, &self.options).and_then(|()| {
            out.push(b'\n');
            write_csv(&mut out, &["cast_at", "option"], &self.votes)
        });
        String::from_utf8(out).unwrap_or_default()
    }
}

/// One CSV table: its header, even when it has no rows, then the rows.
fn write_csv<T: Serialize>(out: &mut Vec<u8>, header: &[&str], rows: &[T]) -> csv::Result<()> {
    let mut writer = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(out);
    writer.write_record(header)?;
    for row in rows {
        writer.serialize(row)?;
    }
    writer.flush()?;
    Ok(())
}
