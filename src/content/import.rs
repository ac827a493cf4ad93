//! Writes checked content into the database, all or nothing.

use std::fmt;
use std::path::Path;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{ContentError, parse};
use crate::store::{self, Db, polls::PollSyncError};

/// What an import did.
#[derive(Debug)]
pub struct ImportReport {
    pub articles: usize,
    pub polls: usize,
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "imported {} articles and {} polls",
            self.articles, self.polls
        )
    }
}

/// Why an import stopped. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Content(#[from] ContentError),
    #[error("{file}: {source}")]
    Poll { file: String, source: PollSyncError },
    #[error("database error while importing: {0}")]
    Database(#[from] sqlx::Error),
}

/// Imports a content folder: parses and checks every file, then writes it all in one transaction.
/// Re-importing is safe: votes and ratings are kept.
pub async fn import(db: &Db, dir: &Path) -> Result<ImportReport, ImportError> {
    let content = parse(dir)?;
    let now = OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default();

    let mut tx = db.begin().await?;
    store::lock_import(tx.conn()).await?;
    store::articles::save_site(tx.conn(), &content.site).await?;
    let mut polls = 0;
    for doc in &content.articles {
        let id =
            store::articles::upsert_article(tx.conn(), &doc.text, &doc.source_path, &now).await?;
        store::polls::sync_poll(tx.conn(), id, doc.poll.as_ref())
            .await
            .map_err(|source| ImportError::Poll {
                file: doc.source_path.clone(),
                source,
            })?;
        polls += usize::from(doc.poll.is_some());
    }
    tx.commit().await?;
    tracing::info!(
        articles = content.articles.len(),
        polls,
        "content imported from {}",
        dir.display()
    );
    Ok(ImportReport {
        articles: content.articles.len(),
        polls,
    })
}
