//! Many instances, one truth: on PostgreSQL, every instance's live state
//! follows the database, whichever instance wrote to it.
//!
//! A writer that commits a batch notifies, in the same transaction, what it
//! changed (`Changed`, on `store::CHANGES_CHANNEL`); PostgreSQL delivers it
//! once the batch commits. Every instance listens, reads the new tallies of
//! what changed, and publishes them through its paced fan-out, so a vote cast
//! on one instance reaches the streams of all. Its own notifications too: the
//! state it then publishes was read after the commit, so an instance never
//! ends on a state older than the database's.
//!
//! A listener whose connection drops misses what was sent meanwhile: once it
//! has listened again, it reads every tally anew.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;

use super::Live;
use crate::rating::RatingState;
use crate::store::{self, Db};

/// Waits after a failure before listening again, doubling up to a few seconds.
const FIRST_RETRY: Duration = Duration::from_millis(100);
const MAX_RETRY: Duration = Duration::from_secs(5);

/// What a committed batch changed: its polls, and its articles' ratings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changed {
    pub polls: Vec<String>,
    pub articles: Vec<i64>,
}

impl Changed {
    /// One line a change, `poll <id>` or `rating <article id>`: short enough
    /// for a notification (8,000 bytes) with the few a batch has.
    pub fn to_payload(&self) -> String {
        let polls = self.polls.iter().map(|p| format!("poll {p}"));
        let ratings = self.articles.iter().map(|a| format!("rating {a}"));
        polls.chain(ratings).collect::<Vec<_>>().join("\n")
    }

    /// Every poll and rating the hub serves.
    fn everything(live: &Live) -> Self {
        Self {
            polls: live.poll_ids().map(str::to_owned).collect(),
            articles: live.article_ids().collect(),
        }
    }

    /// Reads a payload; lines it does not know are skipped.
    pub fn parse(payload: &str) -> Self {
        let mut changed = Self::default();
        for line in payload.lines() {
            match line.split_once(' ') {
                Some(("poll", id)) => changed.polls.push(id.to_owned()),
                Some(("rating", id)) => changed.articles.extend(id.parse::<i64>().ok()),
                _ => {}
            }
        }
        changed
    }
}

/// Starts following the database, when it is PostgreSQL; until `shutdown`.
pub fn follow(db: &Db, live: Arc<Live>, shutdown: CancellationToken) {
    if db.postgres_pool().is_none() {
        return;
    }
    tokio::spawn(run(db.clone(), live, shutdown));
}

async fn run(db: Db, live: Arc<Live>, shutdown: CancellationToken) {
    let mut retry = FIRST_RETRY;
    loop {
        let listened = tokio::select! {
            () = shutdown.cancelled() => return,
            result = listen(&db, &live) => result,
        };
        if let Err(error) = listened {
            tracing::warn!(%error, "lost the database's change notifications; listening again");
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(retry) => {}
        }
        retry = (retry * 2).min(MAX_RETRY);
    }
}

/// Listens, reads every tally, then follows the notifications until the
/// listener fails.
async fn listen(db: &Db, live: &Live) -> anyhow::Result<()> {
    let Some(pool) = db.postgres_pool() else {
        return Ok(());
    };
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(store::CHANGES_CHANNEL).await?;
    refresh(db, live, &Changed::everything(live)).await?;
    tracing::debug!("following the database's changes");
    loop {
        match listener.try_recv().await? {
            Some(notification) => {
                refresh(db, live, &Changed::parse(notification.payload())).await?;
            }
            // The connection was lost, and is back: what was sent meanwhile is not.
            None => {
                tracing::warn!("the change notifications were cut off; reading every tally again");
                refresh(db, live, &Changed::everything(live)).await?;
            }
        }
    }
}

/// Reads what changed and publishes it.
async fn refresh(db: &Db, live: &Live, changed: &Changed) -> sqlx::Result<()> {
    let mut pooled = db.acquire().await?;
    for poll in &changed.polls {
        let Some(current) = live.poll(poll) else {
            continue;
        };
        let tallies = store::polls::tallies(pooled.conn(), poll).await?;
        live.publish_poll(current.with_tallies(&tallies));
    }
    for &article in &changed.articles {
        let counts = store::ratings::distribution(pooled.conn(), article).await?;
        live.publish_rating(article, RatingState::new(counts));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test fails by panicking
mod tests {
    use super::Changed;

    #[test]
    fn a_payload_gives_back_what_changed() {
        let changed = Changed {
            polls: vec!["us-long-term-goals".to_owned(), "a b".to_owned()],
            articles: vec![1, 42],
        };
        assert_eq!(Changed::parse(&changed.to_payload()), changed);
        assert_eq!(
            Changed::parse("nonsense\nrating x\npoll p"),
            Changed {
                polls: vec!["p".to_owned()],
                articles: vec![],
            }
        );
    }
}
