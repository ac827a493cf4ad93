//! The poll: as its editor defines it (`PollDefinition`), as it is stored
//! (`StoredPoll`), its live state and results, percentages, the newtype of an
//! option a reader names, and the routes that cast votes.

mod percent;
pub mod routes;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

pub use percent::largest_remainder_percents;
pub use routes::routes;

use crate::number::Sent;

/// An option's id as a reader sends it: a whole number of an option of the poll.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OptionId(u32);

/// Why what a reader sent names no option.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidOption {
    #[error("Choose an option before voting.")]
    Missing,
    #[error("An option is named by its number: a whole number from 1, such as 2.")]
    Malformed,
}

impl OptionId {
    /// The one parser of what a reader sends as an option, in the vote form
    /// and in the API's body alike. Whether the poll has that option is the
    /// poll's to say (`PollState::has_option`).
    pub fn parse(sent: Sent) -> Result<Self, InvalidOption> {
        match sent {
            Sent::Nothing => Err(InvalidOption::Missing),
            Sent::NotWhole => Err(InvalidOption::Malformed),
            Sent::Whole(n) => Self::try_from(n),
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<i64> for OptionId {
    type Error = InvalidOption;
    fn try_from(n: i64) -> Result<Self, InvalidOption> {
        u32::try_from(n)
            .ok()
            .filter(|&n| n > 0)
            .map(OptionId)
            .ok_or(InvalidOption::Malformed)
    }
}

/// Whether a poll takes votes.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PollStatus {
    #[default]
    Open,
    Closed,
}

impl PollStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Closed => "closed",
        }
    }
}

/// A poll as its editor defines it: what the store keeps of it, the votes
/// cast aside. The importer makes it from a content file.
#[derive(Clone, Debug, PartialEq)]
pub struct PollDefinition {
    pub id: String,
    pub question: String,
    pub status: PollStatus,
    pub closes_at: Option<OffsetDateTime>,
    /// In the order the editor gave them.
    pub options: Vec<OptionDefinition>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct OptionDefinition {
    pub id: u32,
    pub label: String,
    /// The starting tally, counted before any vote cast here.
    pub seed_votes: u32,
}

/// A poll as stored, with its tallies.
#[derive(Clone, Debug)]
pub struct StoredPoll {
    pub id: String,
    pub article_id: i64,
    pub question: String,
    pub status: PollStatus,
    pub closes_at: Option<OffsetDateTime>,
    pub options: Vec<OptionTally>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct OptionTally {
    pub id: u32,
    pub label: String,
    /// Imported starting tally plus the votes cast here.
    pub votes: u64,
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
}

impl PollState {
    pub fn new(row: StoredPoll, article_slug: &str) -> Self {
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

/// A poll's results, as `GET /api/v1/polls/{poll}` answers them.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, ToSchema)]
#[schema(example = json!({
    "id": "us-long-term-goals",
    "question": "In your opinion, what are the US long-term goals for Russia?",
    "status": "open",
    "closes_at": null,
    "total_votes": 108,
    "options": [
        {"id": 1, "label": "U.S. wants to establish partnership relations with Russia on condition that it meets the U.S. requirements", "votes": 33, "percent": 31},
        {"id": 2, "label": "U.S. wants to deter Russia’s military and political activity", "votes": 30, "percent": 28},
        {"id": 3, "label": "U.S. wants to dissolve Russia", "votes": 24, "percent": 22},
        {"id": 4, "label": "U.S. wants to establish alliance relations with Russia under the US conditions to rival China", "votes": 21, "percent": 19}
    ],
    "your_vote": null
}))]
pub struct PollResults {
    /// The poll's id: lowercase letters, digits and hyphens.
    pub id: String,
    pub question: String,
    /// `closed` once the content closes the poll or `closes_at` has passed.
    pub status: PollStatus,
    /// When the poll closes (RFC 3339), or `null` when no time is set.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(required = true)]
    pub closes_at: Option<OffsetDateTime>,
    /// The sum of the options' votes.
    pub total_votes: u64,
    /// In the order the editor gave them.
    pub options: Vec<OptionResult>,
    /// The option this reader chose, known from their cookie; `null` when
    /// they have not voted or sent no cookie. Never in event streams.
    #[schema(required = true, minimum = 1)]
    pub your_vote: Option<u32>,
}

/// One option of a poll, with its votes and share.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct OptionResult {
    /// What `{"option": …}` names when voting for it.
    #[schema(minimum = 1)]
    pub id: u32,
    pub label: String,
    pub votes: u64,
    /// A whole percent by the largest-remainder method: the options' percents
    /// add up to exactly 100 whenever `total_votes` is above 0, and are all 0 when it is 0.
    #[schema(maximum = 100)]
    pub percent: u8,
}
