//! The latest state of every poll and rating, one `watch` channel each.
//!
//! The ballot box publishes after each commit; pages and the API read the
//! current value without touching the database; a subscriber only ever sees
//! the newest state, so a slow reader never holds up a vote.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::watch;

use crate::poll::PollState;
use crate::rating::RatingState;

#[derive(Debug, Default)]
pub struct Live {
    polls: HashMap<Arc<str>, watch::Sender<Arc<PollState>>>,
    ratings: HashMap<i64, watch::Sender<Arc<RatingState>>>,
}

impl Live {
    pub fn new(polls: Vec<PollState>, ratings: Vec<(i64, RatingState)>) -> Self {
        Self {
            polls: polls
                .into_iter()
                .map(|p| (p.id.clone(), watch::Sender::new(Arc::new(p))))
                .collect(),
            ratings: ratings
                .into_iter()
                .map(|(id, r)| (id, watch::Sender::new(Arc::new(r))))
                .collect(),
        }
    }

    pub fn poll(&self, id: &str) -> Option<Arc<PollState>> {
        self.polls.get(id).map(|tx| tx.borrow().clone())
    }

    pub fn subscribe_poll(&self, id: &str) -> Option<watch::Receiver<Arc<PollState>>> {
        self.polls.get(id).map(watch::Sender::subscribe)
    }

    pub fn publish_poll(&self, state: PollState) {
        if let Some(tx) = self.polls.get(&state.id) {
            // send_replace: publishing must work with nobody subscribed.
            tx.send_replace(Arc::new(state));
        }
    }

    /// An article's rating; an article nobody has rated has an empty one.
    pub fn rating(&self, article_id: i64) -> Arc<RatingState> {
        self.ratings
            .get(&article_id)
            .map(|tx| tx.borrow().clone())
            .unwrap_or_default()
    }

    pub fn subscribe_rating(&self, article_id: i64) -> Option<watch::Receiver<Arc<RatingState>>> {
        self.ratings.get(&article_id).map(watch::Sender::subscribe)
    }

    pub fn publish_rating(&self, article_id: i64, state: RatingState) {
        if let Some(tx) = self.ratings.get(&article_id) {
            tx.send_replace(Arc::new(state));
        }
    }
}
