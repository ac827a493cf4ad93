//! The 1–5 star rating: its state, the JSON it shows, and its routes.

pub mod routes;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use routes::routes;

use crate::number::Sent;

/// A rating a reader gives: a whole number of stars from 1 to 5.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stars(u8);

/// Why what a reader sent is no rating.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidStars {
    #[error("Choose from one to five stars.")]
    Missing,
    #[error("A rating is a whole number of stars from 1 to 5.")]
    Malformed,
}

impl Stars {
    pub const ALL: [u8; 5] = [1, 2, 3, 4, 5];

    /// The one parser of what a reader sends as stars, in the rating form
    /// and in the API's body alike.
    pub fn parse(sent: Sent) -> Result<Self, InvalidStars> {
        match sent {
            Sent::Nothing => Err(InvalidStars::Missing),
            Sent::NotWhole => Err(InvalidStars::Malformed),
            Sent::Whole(n) => Self::try_from(n),
        }
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<i64> for Stars {
    type Error = InvalidStars;
    fn try_from(n: i64) -> Result<Self, InvalidStars> {
        match n {
            1..=5 => Ok(Self(n as u8)),
            _ => Err(InvalidStars::Malformed),
        }
    }
}

/// How many readers gave an article each number of stars (index 0 is one star).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RatingState {
    pub counts: [u64; 5],
}

impl RatingState {
    pub fn new(counts: [u64; 5]) -> Self {
        Self { counts }
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The exact mean, `None` when nobody has rated.
    pub fn average(&self) -> Option<f64> {
        let count = self.count();
        let sum: u64 = self
            .counts
            .iter()
            .zip(1_u64..)
            .map(|(n, stars)| n * stars)
            .sum();
        (count > 0).then(|| sum as f64 / count as f64)
    }

    pub fn summary(&self, article: &str, your_rating: Option<u8>) -> RatingSummary {
        let [one, two, three, four, five] = self.counts;
        RatingSummary {
            article: article.to_owned(),
            average: self.average(),
            count: self.count(),
            distribution: Distribution {
                one,
                two,
                three,
                four,
                five,
            },
            your_rating,
        }
    }
}

/// An article's rating, as `GET /api/v1/articles/{slug}/rating` answers it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, ToSchema)]
#[schema(example = json!({
    "article": "csto-summit-2015",
    "average": 4.25,
    "count": 4,
    "distribution": {"1": 0, "2": 0, "3": 1, "4": 1, "5": 2},
    "your_rating": 5
}))]
pub struct RatingSummary {
    /// The article's slug.
    pub article: String,
    /// The exact mean of the ratings, unrounded; `null` when `count` is 0.
    #[schema(required = true, minimum = 1, maximum = 5)]
    pub average: Option<f64>,
    /// How many readers rated the article.
    pub count: u64,
    pub distribution: Distribution,
    /// The stars this reader gave, known from their cookie; `null` when they
    /// have not rated or sent no cookie. Never in event streams.
    #[schema(required = true, minimum = 1, maximum = 5)]
    pub your_rating: Option<u8>,
}

/// Ratings per star, keyed "1" to "5".
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[schema(example = json!({"1": 0, "2": 0, "3": 1, "4": 1, "5": 2}))]
pub struct Distribution {
    #[serde(rename = "1")]
    pub one: u64,
    #[serde(rename = "2")]
    pub two: u64,
    #[serde(rename = "3")]
    pub three: u64,
    #[serde(rename = "4")]
    pub four: u64,
    #[serde(rename = "5")]
    pub five: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn average_is_exact_and_none_at_zero() {
        assert_eq!(RatingState::default().average(), None);
        let state = RatingState::new([1, 0, 0, 0, 2]);
        assert_eq!(state.count(), 3);
        assert_eq!(state.average(), Some(11.0 / 3.0));
    }

    #[test]
    fn stars_are_one_to_five() {
        assert!(Stars::try_from(0).is_err());
        assert!(Stars::try_from(6).is_err());
        assert_eq!(Stars::try_from(4).map(Stars::get), Ok(4));
    }

    #[test]
    fn missing_stars_are_told_apart_from_wrong_ones() {
        assert_eq!(Stars::parse(Sent::Nothing), Err(InvalidStars::Missing));
        assert_eq!(Stars::parse(Sent::NotWhole), Err(InvalidStars::Malformed));
        assert_eq!(Stars::parse(Sent::Whole(0)), Err(InvalidStars::Malformed));
        assert_eq!(Stars::parse(Sent::Whole(5)).map(Stars::get), Ok(5));
    }
}
