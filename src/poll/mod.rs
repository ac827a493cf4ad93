//! The poll: its state and results, percentages, and the routes that cast votes.

mod percent;
pub mod routes;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub use percent::largest_remainder_percents;
pub use routes::routes;

use crate::content::PollStatus;
use crate::store::polls::{OptionTally, PollRow};

/// An option's id as a reader sends it: a whole number of an option of the poll.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "u32")]
pub struct OptionId(u32);

impl OptionId {
    pub fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<i64> for OptionId {
    type Error = String;
    fn try_from(n: i64) -> Result<Self, String> {
        u32::try_from(n)
            .ok()
            .filter(|&n| n > 0)
            .map(OptionId)
            .ok_or_else(|| format!("option must be a positive whole number, got {n}"))
    }
}

impl From<OptionId> for u32 {
    fn from(id: OptionId) -> u32 {
        id.0
    }
}

/// The latest state of one poll, shared by pages, the API and the writer.
#[derive(Clone, Debug)]
pub struct PollState {
    pub id: Arc<str>,
    pub article_id: i64,
    pub article_slug: Arc<str>,
    pub question: String,
    pub status: PollStatus,
    pub closes_at: Option<OffsetDateTime>,
    pub options: Vec<OptionTally>,
    pub percents: Vec<u8>,
    pub total_votes: u64,
    /// Set by `Live` when the state is published; later states have higher versions.
    pub version: u64,
}

impl PollState {
    pub fn new(row: PollRow, article_slug: &str) -> Self {
        let mut state = Self {
            id: row.id.into(),
            article_id: row.article_id,
            article_slug: article_slug.into(),
            question: row.question,
            status: row.status,
            closes_at: row.closes_at,
            options: row.options,
            percents: Vec::new(),
            total_votes: 0,
            version: 0,
        };
        state.recount();
        state
    }

    /// The same poll with new tallies `(option id, votes)`.
    pub fn with_tallies(&self, tallies: &[(u32, u64)]) -> Self {
        let mut next = self.clone();
        for option in &mut next.options {
            if let Some((_, votes)) = tallies.iter().find(|(id, _)| *id == option.id) {
                option.votes = *votes;
            }
        }
        next.recount();
        next
    }

    fn recount(&mut self) {
        let counts: Vec<u64> = self.options.iter().map(|o| o.votes).collect();
        self.total_votes = counts.iter().sum();
        self.percents = largest_remainder_percents(&counts);
    }

    /// Open, unless the content closed it or its closing time has passed.
    pub fn status_at(&self, now: OffsetDateTime) -> PollStatus {
        match (self.status, self.closes_at) {
            (PollStatus::Open, Some(closes_at)) if now >= closes_at => PollStatus::Closed,
            (status, _) => status,
        }
    }

    pub fn is_open(&self) -> bool {
        self.status_at(OffsetDateTime::now_utc()) == PollStatus::Open
    }

    pub fn has_option(&self, option: OptionId) -> bool {
        self.options.iter().any(|o| o.id == option.get())
    }

    /// The results as the API shows them, with the reader's own vote when known.
    pub fn results(&self, your_vote: Option<u32>) -> PollResults {
        PollResults {
            id: self.id.to_string(),
            question: self.question.clone(),
            status: self.status_at(OffsetDateTime::now_utc()),
            closes_at: self.closes_at,
            total_votes: self.total_votes,
            options: self
                .options
                .iter()
                .zip(&self.percents)
                .map(|(o, &percent)| OptionResult {
                    id: o.id,
                    label: o.label.clone(),
                    votes: o.votes,
                    percent,
                })
                .collect(),
            your_vote,
        }
    }
}

/// `GET /api/v1/polls/{poll}`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PollResults {
    pub id: String,
    pub question: String,
    pub status: PollStatus,
    #[serde(with = "time::serde::rfc3339::option")]
    pub closes_at: Option<OffsetDateTime>,
    pub total_votes: u64,
    pub options: Vec<OptionResult>,
    pub your_vote: Option<u32>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct OptionResult {
    pub id: u32,
    pub label: String,
    pub votes: u64,
    pub percent: u8,
}
