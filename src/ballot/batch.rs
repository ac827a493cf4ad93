//! A batch written set-based: a few statements for the whole batch instead of
//! a few for each ballot.
//!
//! 1. What the batch's ballots depend on is read with a statement per kind:
//!    which of its readers have voted in its polls, the polls' tallies, its
//!    addresses' uses in the cap's window, the answers kept under its keys,
//!    its raters' stars and the articles' counts per star.
//! 2. Each ballot is decided in order, in memory, by the same rules as
//!    `Writer::write_one`, each seeing what the ballots before it did: a
//!    reader's second vote in the batch is already voted, the batch's own
//!    uses count against the cap, and a counted vote's receipt carries the
//!    tallies with the votes before it and its own, so the batch's last
//!    receipt has the tallies it commits.
//! 3. What the batch changes is written with a statement per kind: one
//!    multi-row insert of its votes (the `unique (poll_id, voter)` constraint
//!    still refuses a second vote), one update of the tallies of each option
//!    it counted votes for, one insert of its address uses, one upsert of its
//!    ratings, one insert of its kept answers.
//! 4. Each statement is checked against what was decided: every vote
//!    recorded, each tally where the receipts say it is, each article's
//!    counts per star too. When one is not, or a statement fails, the
//!    transaction is rolled back and the batch is written one ballot at a
//!    time (see `Writer::write_batch_at`), so a bad ballot fails alone.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use super::{Ballot, Fault, Job, Now, Receipt, Writer, Written, answer_to_keep, replay, star_slot};
use crate::idempotency::Keyed;
use crate::reader::{AddressHash, ReaderId};
use crate::store::{self, Conn, idempotency::KeptAnswer};

/// What the batch's ballots depend on: as read before the batch, then as
/// each decided ballot leaves it.
#[derive(Default)]
struct Before {
    /// `(poll, voter)` that have a vote.
    voted: HashSet<(Arc<str>, String)>,
    /// Each open poll's tallies.
    tallies: HashMap<Arc<str>, Arc<[(u32, u64)]>>,
    /// `(scope, address)`: uses in the window, and when the oldest was.
    uses: HashMap<(String, [u8; 32]), (u32, Option<i64>)>,
    /// Answers kept under the batch's keys' ids.
    kept: HashMap<Vec<u8>, KeptAnswer>,
    /// `(article, voter)`: the stars they gave.
    stars: HashMap<(i64, String), u8>,
    /// Each rated article's readers per star.
    counts: HashMap<i64, [u64; 5]>,
}

/// What the batch changes, in the order its ballots were decided.
#[derive(Default)]
struct Changes {
    votes: Vec<(Arc<str>, u32, ReaderId)>,
    /// `(poll, option)`: votes added.
    added: BTreeMap<(Arc<str>, u32), u64>,
    uses: Vec<(String, String)>,
    ratings: Vec<(i64, ReaderId, u8)>,
    kept: Vec<KeptAnswer>,
}

impl Writer {
    /// Writes a batch with a statement per kind (see the module's doc);
    /// `Fault::Ballot` or `Fault::Batch` when it must be written one ballot
    /// at a time instead. The caller rolls back on any error.
    pub(super) async fn write_set_based(
        &self,
        mut conn: Conn<'_>,
        batch: &[Job],
        now: &Now,
    ) -> Result<Written, Fault> {
        let waiting: Vec<&Job> = batch.iter().filter(|j| !j.reply.is_closed()).collect();
        let mut before = self.read_before(conn.reborrow(), &waiting, now).await?;
        let mut changes = Changes::default();
        let mut written = Written::default();
        for job in batch {
            // Nobody would hear the receipt, and a retry would count it again.
            if job.reply.is_closed() {
                written.outcomes.push(None);
                continue;
            }
            let receipt = self.decide(job, &mut before, &mut changes, &mut written, now);
            written.outcomes.push(Some(Ok(receipt)));
        }
        apply(conn, &changes, &before, now).await?;
        Ok(written)
    }

    /// Reads what the waiting ballots depend on, a statement per kind.
    async fn read_before(
        &self,
        mut conn: Conn<'_>,
        jobs: &[&Job],
        now: &Now,
    ) -> Result<Before, Fault> {
        let mut before = Before::default();
        let mut pairs = Vec::new();
        let mut raters = Vec::new();
        let mut addresses = Vec::new();
        let mut ids = Vec::new();
        for job in jobs {
            if let Some(key) = &job.key {
                ids.push(hex::encode(key.id));
                ids.extend(key.by_address.map(hex::encode));
            }
            match &job.ballot {
                Ballot::Vote {
                    poll,
                    voter,
                    address,
                    ..
                } => {
                    if !self.is_open(poll, now) {
                        continue;
                    }
                    if !before.tallies.contains_key(poll) {
                        let tallies = store::polls::tallies(conn.reborrow(), poll).await?;
                        before.tallies.insert(poll.clone(), tallies.into());
                    }
                    pairs.push((&**poll, voter.as_str()));
                    if let Some(address) = address {
                        addresses.push((job.ballot.scope(), hex::encode(address.0)));
                    }
                }
                Ballot::Rating {
                    article_id,
                    voter,
                    address,
                    ..
                } => {
                    if !before.counts.contains_key(article_id) {
                        let counts =
                            store::ratings::distribution(conn.reborrow(), *article_id).await?;
                        before.counts.insert(*article_id, counts);
                    }
                    raters.push((*article_id, voter.as_str()));
                    if let Some(address) = address {
                        addresses.push((job.ballot.scope(), hex::encode(address.0)));
                    }
                }
            }
        }
        if !pairs.is_empty() {
            for (poll, voter) in store::polls::voted_among(conn.reborrow(), &pairs).await? {
                before.voted.insert((poll.into(), voter));
            }
        }
        if !raters.is_empty() {
            for (article, voter, stars) in
                store::ratings::stars_among(conn.reborrow(), &raters).await?
            {
                before.stars.insert((article, voter), stars);
            }
        }
        if self.settings.max_votes_per_address.is_some() && !addresses.is_empty() {
            let pairs: Vec<(&str, &str)> = addresses
                .iter()
                .map(|(scope, hash)| (scope.as_str(), hash.as_str()))
                .collect();
            let since = now.millis - super::millis(self.settings.address_window);
            for (scope, hash, count, oldest) in
                store::addresses::uses_among(conn.reborrow(), &pairs, since).await?
            {
                let mut address = [0_u8; 32];
                if hex::decode_to_slice(&hash, &mut address).is_ok() {
                    before.uses.insert((scope, address), (count, Some(oldest)));
                }
            }
        }
        if !ids.is_empty() {
            for kept in store::idempotency::find_among(conn.reborrow(), &ids).await? {
                before.kept.insert(kept.id.clone(), kept);
            }
        }
        Ok(before)
    }

    /// Decides one ballot as `write_one` would, from what the ballots before
    /// it left, and notes what it changes.
    fn decide(
        &self,
        job: &Job,
        before: &mut Before,
        changes: &mut Changes,
        written: &mut Written,
        now: &Now,
    ) -> Receipt {
        if let Some(key) = &job.key
            && let Some(receipt) = before.earlier_answer(key, job.ballot.voter())
        {
            return receipt;
        }
        match &job.ballot {
            Ballot::Vote {
                poll,
                option,
                voter,
                address,
            } => {
                if !self.is_open(poll, now) {
                    return Receipt::PollClosed;
                }
                let scope = job.ballot.scope();
                let voted = (poll.clone(), voter.as_str().to_owned());
                let has_voted = before.voted.contains(&voted);
                if let Some(limit) = self.limit_of(before, &scope, address.as_ref(), now) {
                    // A reader who already voted hears that, not that the address is busy.
                    return if has_voted {
                        Receipt::AlreadyVoted
                    } else {
                        limit
                    };
                }
                if has_voted {
                    return Receipt::AlreadyVoted;
                }
                before.voted.insert(voted);
                changes
                    .votes
                    .push((poll.clone(), option.get(), voter.clone()));
                *changes
                    .added
                    .entry((poll.clone(), option.get()))
                    .or_default() += 1;
                self.use_address(before, changes, scope, address.as_ref(), now);
                let tallies: Arc<[(u32, u64)]> = before
                    .tallies
                    .get(poll)
                    .map(|t| {
                        t.iter()
                            .map(|&(id, votes)| (id, votes + u64::from(id == option.get())))
                            .collect()
                    })
                    .unwrap_or_default();
                before.tallies.insert(poll.clone(), tallies.clone());
                written.polls.insert(poll.clone(), tallies.clone());
                keep(changes, before, job, Receipt::Counted { tallies })
            }
            Ballot::Rating {
                article_id,
                voter,
                stars,
                address,
            } => {
                let scope = job.ballot.scope();
                if let Some(limit) = self.limit_of(before, &scope, address.as_ref(), now) {
                    return limit;
                }
                let mut counts = before.counts.get(article_id).copied().unwrap_or_default();
                let earlier = before
                    .stars
                    .insert((*article_id, voter.as_str().to_owned()), stars.get());
                changes
                    .ratings
                    .push((*article_id, voter.clone(), stars.get()));
                self.use_address(before, changes, scope, address.as_ref(), now);
                if let Some(slot) = earlier.and_then(|s| star_slot(&mut counts, s)) {
                    *slot = slot.saturating_sub(1);
                }
                if let Some(slot) = star_slot(&mut counts, stars.get()) {
                    *slot += 1;
                }
                before.counts.insert(*article_id, counts);
                written.ratings.insert(*article_id, counts);
                keep(changes, before, job, Receipt::Rated { counts })
            }
        }
    }

    /// `Some(receipt)` when the address has used up its share of `scope`.
    fn limit_of(
        &self,
        before: &Before,
        scope: &str,
        address: Option<&AddressHash>,
        now: &Now,
    ) -> Option<Receipt> {
        let (Some(limit), Some(address)) = (self.settings.max_votes_per_address, address) else {
            return None;
        };
        let (count, oldest) = before
            .uses
            .get(&(scope.to_owned(), address.0))
            .copied()
            .unwrap_or((0, None));
        self.address_limit(limit, count, oldest, now)
    }

    /// Counts a use against the address's cap (only while there is a cap).
    fn use_address(
        &self,
        before: &mut Before,
        changes: &mut Changes,
        scope: String,
        address: Option<&AddressHash>,
        now: &Now,
    ) {
        let (Some(_), Some(address)) = (self.settings.max_votes_per_address, address) else {
            return;
        };
        changes.uses.push((scope.clone(), hex::encode(address.0)));
        let (count, oldest) = before.uses.entry((scope, address.0)).or_default();
        *count = count.saturating_add(1);
        *oldest = Some(oldest.map_or(now.millis, |o| o.min(now.millis)));
    }
}

impl Before {
    /// `earlier_answer`, from the answers read before the batch and kept in it.
    fn earlier_answer(&self, key: &Keyed, voter: &ReaderId) -> Option<Receipt> {
        let by_address = key.by_address.unwrap_or(key.id);
        let mut found: Vec<&KeptAnswer> = [&key.id[..], &by_address[..]]
            .into_iter()
            .filter_map(|id| self.kept.get(id))
            .collect();
        // As `idempotency_keys` returns them: by id, each once.
        found.sort_by(|a, b| a.id.cmp(&b.id));
        found.dedup_by(|a, b| a.id == b.id);
        replay(found.into_iter().cloned(), key, voter)
    }
}

/// For a keyed ballot that changed something, phrases its answer and notes it to keep.
fn keep(changes: &mut Changes, before: &mut Before, job: &Job, receipt: Receipt) -> Receipt {
    match answer_to_keep(job, receipt) {
        Ok((kept, receipt)) => {
            before.kept.insert(kept.id.clone(), kept.clone());
            changes.kept.push(kept);
            receipt
        }
        Err(receipt) => receipt,
    }
}

/// Writes what the batch changes, a statement per kind, and checks each
/// against what the receipts say.
async fn apply(
    mut conn: Conn<'_>,
    changes: &Changes,
    after: &Before,
    now: &Now,
) -> Result<(), Fault> {
    if !changes.votes.is_empty() {
        let votes: Vec<(&str, u32, &str)> = changes
            .votes
            .iter()
            .map(|(poll, option, voter)| (&**poll, *option, voter.as_str()))
            .collect();
        let recorded = store::polls::insert_votes(conn.reborrow(), &votes, now.millis).await?;
        if recorded != votes.len() as u64 {
            return Err(Fault::Batch(format!(
                "{recorded} of {} votes recorded",
                votes.len()
            )));
        }
        let added: Vec<(&str, u32, u64)> = changes
            .added
            .iter()
            .map(|((poll, option), n)| (&**poll, *option, *n))
            .collect();
        let tallies = store::polls::add_to_tallies(conn.reborrow(), &added).await?;
        let agrees = tallies.len() == added.len()
            && tallies.iter().all(|(poll, option, votes)| {
                after
                    .tallies
                    .get(poll.as_str())
                    .and_then(|t| t.iter().find(|(id, _)| id == option))
                    .is_some_and(|(_, expected)| expected == votes)
            });
        if !agrees {
            return Err(Fault::Batch(format!(
                "the tallies stored are {tallies:?}, not as counted"
            )));
        }
    }
    if !changes.uses.is_empty() {
        let uses: Vec<(&str, &str)> = changes
            .uses
            .iter()
            .map(|(scope, hash)| (scope.as_str(), hash.as_str()))
            .collect();
        store::addresses::record_uses(conn.reborrow(), &uses, now.millis).await?;
    }
    if !changes.ratings.is_empty() {
        let ratings: Vec<(i64, &str, u8)> = changes
            .ratings
            .iter()
            .map(|(article, voter, stars)| (*article, voter.as_str(), *stars))
            .collect();
        store::ratings::upsert_ratings(conn.reborrow(), &ratings, now.millis).await?;
        let articles: HashSet<i64> = changes.ratings.iter().map(|(a, _, _)| *a).collect();
        for article in articles {
            let stored = store::ratings::distribution(conn.reborrow(), article).await?;
            if after.counts.get(&article) != Some(&stored) {
                return Err(Fault::Batch(format!(
                    "article {article} has {stored:?} readers per star, not as counted"
                )));
            }
        }
    }
    if !changes.kept.is_empty() {
        let kept: Vec<&KeptAnswer> = changes.kept.iter().collect();
        store::idempotency::keep_all(conn.reborrow(), &kept, now.millis).await?;
    }
    Ok(())
}
