//! Polls, their options and tallies, and the votes cast in them.

use sqlx::Row;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{Conn, Db, on_engine};
use crate::poll::{OptionTally, PollDefinition, PollStatus, StoredPoll};

/// Why a poll in the content cannot replace the stored one.
#[derive(Debug, thiserror::Error)]
pub enum PollSyncError {
    #[error("option {option} of poll {poll:?} has {votes} votes cast; it cannot be removed")]
    OptionHasVotes {
        poll: String,
        option: i64,
        votes: i64,
    },
    #[error("poll {poll:?} belongs to article {article:?}")]
    PollOfAnotherArticle { poll: String, article: String },
    #[error("the article's earlier poll {poll:?} has votes cast; it cannot be replaced")]
    EarlierPollHasVotes { poll: String },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Makes the stored poll of `article_id` match the content; never touches cast votes.
pub async fn sync_poll(
    conn: Conn<'_>,
    article_id: i64,
    poll: Option<&PollDefinition>,
) -> Result<(), PollSyncError> {
    on_engine!(conn, |c, engine| {
        // An earlier poll of this article under another id goes, unless people voted in it.
        let earlier: Vec<(String, i64)> = sqlx::query_as(engine.pick(
            r"select p.id, coalesce((select cast(sum(cast_votes) as bigint) from poll_options o where o.poll_id = p.id), 0)
                from polls p where p.article_id = $1 and p.id is not $2",
            r"select p.id, coalesce((select cast(sum(cast_votes) as bigint) from poll_options o where o.poll_id = p.id), 0)
                from polls p where p.article_id = $1 and p.id is distinct from $2",
        ))
        .bind(article_id)
        .bind(poll.map(|p| p.id.as_str()))
        .fetch_all(&mut *c)
        .await?;
        for (id, votes) in earlier {
            if votes > 0 {
                return Err(PollSyncError::EarlierPollHasVotes { poll: id });
            }
            sqlx::query(r"delete from polls where id = $1")
                .bind(&id)
                .execute(&mut *c)
                .await?;
        }
        let Some(poll) = poll else { return Ok(()) };

        let owner: Option<(i64, String)> = sqlx::query_as(
            r"select a.id, a.slug from polls p join articles a on a.id = p.article_id where p.id = $1",
        )
        .bind(&poll.id)
        .fetch_optional(&mut *c)
        .await?;
        if let Some((owner_id, slug)) = owner
            && owner_id != article_id
        {
            return Err(PollSyncError::PollOfAnotherArticle {
                poll: poll.id.clone(),
                article: slug,
            });
        }

        let closes_at = poll.closes_at.and_then(|t| t.format(&Rfc3339).ok());
        sqlx::query(
            r"insert into polls (id, article_id, question, status, closes_at) values ($1, $2, $3, $4, $5)
              on conflict (id) do update set question = excluded.question, status = excluded.status,
                                             closes_at = excluded.closes_at",
        )
        .bind(&poll.id)
        .bind(article_id)
        .bind(&poll.question)
        .bind(poll.status.as_str())
        .bind(closes_at)
        .execute(&mut *c)
        .await?;

        let stored: Vec<(i64, i64)> =
            sqlx::query_as(r"select option_id, cast_votes from poll_options where poll_id = $1")
                .bind(&poll.id)
                .fetch_all(&mut *c)
                .await?;
        for (option, votes) in stored {
            if poll.options.iter().any(|o| i64::from(o.id) == option) {
                continue;
            }
            if votes > 0 {
                return Err(PollSyncError::OptionHasVotes {
                    poll: poll.id.clone(),
                    option,
                    votes,
                });
            }
            sqlx::query(r"delete from poll_options where poll_id = $1 and option_id = $2")
                .bind(&poll.id)
                .bind(option)
                .execute(&mut *c)
                .await?;
        }
        for (position, option) in poll.options.iter().enumerate() {
            sqlx::query(
                r"insert into poll_options (poll_id, option_id, position, label, seed_votes) values ($1, $2, $3, $4, $5)
                  on conflict (poll_id, option_id) do update set
                      position = excluded.position, label = excluded.label, seed_votes = excluded.seed_votes",
            )
            .bind(&poll.id)
            .bind(i64::from(option.id))
            .bind(position as i64)
            .bind(&option.label)
            .bind(i64::from(option.seed_votes))
            .execute(&mut *c)
            .await?;
        }
        Ok(())
    })
}

/// Every poll, with its tallies.
pub async fn load_polls(db: &Db) -> sqlx::Result<Vec<StoredPoll>> {
    let mut pooled = db.acquire().await?;
    on_engine!(pooled.conn(), |c, _engine| {
        let polls = sqlx::query(
            r"select id, article_id, question, status, closes_at from polls order by id",
        )
        .fetch_all(&mut *c)
        .await?;
        let mut out = Vec::with_capacity(polls.len());
        for row in polls {
            let id: String = row.try_get("id")?;
            let status: String = row.try_get("status")?;
            let closes_at: Option<String> = row.try_get("closes_at")?;
            let options: Vec<(i64, String, i64)> = sqlx::query_as(
                r"select option_id, label, seed_votes + cast_votes as votes
                    from poll_options where poll_id = $1 order by position",
            )
            .bind(&id)
            .fetch_all(&mut *c)
            .await?;
            out.push(StoredPoll {
                id,
                article_id: row.try_get("article_id")?,
                question: row.try_get("question")?,
                status: if status == "closed" {
                    PollStatus::Closed
                } else {
                    PollStatus::Open
                },
                closes_at: closes_at.and_then(|t| OffsetDateTime::parse(&t, &Rfc3339).ok()),
                options: options
                    .into_iter()
                    .map(|(id, label, votes)| OptionTally {
                        id: id as u32,
                        label,
                        votes: votes.max(0) as u64,
                    })
                    .collect(),
            });
        }
        Ok(out)
    })
}

/// The current tally of each option of a poll: `(option id, votes)` in display order.
pub async fn tallies(conn: Conn<'_>, poll: &str) -> sqlx::Result<Vec<(u32, u64)>> {
    let rows: Vec<(i64, i64)> = on_engine!(conn, |c, _engine| {
        sqlx::query_as(
            r"select option_id, seed_votes + cast_votes from poll_options where poll_id = $1 order by position",
        )
        .bind(poll)
        .fetch_all(c)
        .await?
    });
    Ok(rows
        .into_iter()
        .map(|(id, votes)| (id as u32, votes.max(0) as u64))
        .collect())
}

/// The option a reader chose in a poll, if they voted.
pub async fn reader_choice(db: &Db, poll: &str, voter: &str) -> sqlx::Result<Option<u32>> {
    let mut pooled = db.acquire().await?;
    let choice: Option<i64> = on_engine!(pooled.conn(), |c, _engine| {
        sqlx::query_scalar(r"select option_id from votes where poll_id = $1 and voter = $2")
            .bind(poll)
            .bind(voter)
            .fetch_optional(c)
            .await?
    });
    Ok(choice.map(|c| c as u32))
}

/// Records a vote, and counts it, unless the reader has one in this poll;
/// true when it was recorded.
pub async fn insert_vote(
    mut conn: Conn<'_>,
    poll: &str,
    option: u32,
    voter: &str,
    cast_at: i64,
) -> sqlx::Result<bool> {
    let done = on_engine!(conn.reborrow(), |c, _engine| {
        sqlx::query(
            r"insert into votes (poll_id, option_id, voter, cast_at) values ($1, $2, $3, $4)
              on conflict (poll_id, voter) do nothing",
        )
        .bind(poll)
        .bind(i64::from(option))
        .bind(voter)
        .bind(cast_at)
        .execute(c)
        .await?
        .rows_affected()
    });
    let recorded = done == 1;
    if recorded {
        count_vote(conn, poll, option).await?;
    }
    Ok(recorded)
}

/// Whether a reader has voted in a poll.
pub async fn has_voted(conn: Conn<'_>, poll: &str, voter: &str) -> sqlx::Result<bool> {
    let found: Option<i64> = on_engine!(conn, |c, _engine| {
        sqlx::query_scalar(r"select cast(1 as bigint) from votes where poll_id = $1 and voter = $2")
            .bind(poll)
            .bind(voter)
            .fetch_optional(c)
            .await?
    });
    Ok(found.is_some())
}

/// Adds one vote to an option's tally (the writer keeps tallies; see the migrations).
pub async fn count_vote(conn: Conn<'_>, poll: &str, option: u32) -> sqlx::Result<()> {
    on_engine!(conn, |c, _engine| {
        sqlx::query(
            r"update poll_options set cast_votes = cast_votes + 1 where poll_id = $1 and option_id = $2",
        )
        .bind(poll)
        .bind(i64::from(option))
        .execute(c)
        .await?;
    });
    Ok(())
}

/// Of `$2`'s readers, those who voted in poll `$1`: see `store::grouped`.
pub(super) const VOTED_AMONG_POSTGRES: &str = r"select v.poll_id, v.voter from unnest($2::text[]) as b(voter)
      cross join lateral (select poll_id, voter from votes
                           where poll_id = $1 and voter = b.voter offset 0) as v";

/// Of the `(poll, voter)` pairs given, those that have a vote.
pub async fn voted_among(
    conn: Conn<'_>,
    pairs: &[(&str, &str)],
) -> sqlx::Result<Vec<(String, String)>> {
    match conn {
        Conn::Sqlite(c) => {
            sqlx::query_as(
                r"select v.poll_id, v.voter
                    from json_each($1) as b
                    join votes v on v.poll_id = json_extract(b.value, '$[0]')
                                and v.voter = json_extract(b.value, '$[1]')",
            )
            .bind(super::json(pairs)?)
            .fetch_all(c)
            .await
        }
        Conn::Postgres(c) => {
            let mut voted = Vec::new();
            for (poll, voters) in super::grouped(pairs) {
                let found: Vec<(String, String)> = sqlx::query_as(VOTED_AMONG_POSTGRES)
                    .bind(poll)
                    .bind(voters)
                    .fetch_all(&mut *c)
                    .await?;
                voted.extend(found);
            }
            Ok(voted)
        }
    }
}

/// Records the votes `(poll, option, voter)` in one statement, skipping any
/// reader who already has a vote in the poll; returns how many were recorded.
pub async fn insert_votes(
    conn: Conn<'_>,
    votes: &[(&str, u32, &str)],
    cast_at: i64,
) -> sqlx::Result<u64> {
    let done = match conn {
        Conn::Sqlite(c) => {
            sqlx::query(
                r"insert into votes (poll_id, option_id, voter, cast_at)
                  select json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'), $1
                    from json_each($2) where true
                  on conflict (poll_id, voter) do nothing",
            )
            .bind(cast_at)
            .bind(super::json(votes)?)
            .execute(c)
            .await?
            .rows_affected()
        }
        Conn::Postgres(c) => {
            let polls: Vec<&str> = votes.iter().map(|v| v.0).collect();
            let options: Vec<i64> = votes.iter().map(|v| i64::from(v.1)).collect();
            let voters: Vec<&str> = votes.iter().map(|v| v.2).collect();
            sqlx::query(
                r"insert into votes (poll_id, option_id, voter, cast_at)
                  select poll_id, option_id, voter, $4
                    from unnest($1::text[], $2::bigint[], $3::text[]) as b(poll_id, option_id, voter)
                  on conflict (poll_id, voter) do nothing",
            )
            .bind(polls)
            .bind(options)
            .bind(voters)
            .bind(cast_at)
            .execute(c)
            .await?
            .rows_affected()
        }
    };
    Ok(done)
}

/// Adds `(poll, option, votes)` to the tallies in one statement; returns the
/// new tally `(poll, option, votes)` of each option it changed.
pub async fn add_to_tallies(
    conn: Conn<'_>,
    added: &[(&str, u32, u64)],
) -> sqlx::Result<Vec<(String, u32, u64)>> {
    let rows: Vec<(String, i64, i64)> = on_engine!(conn, |c, engine| {
        sqlx::query_as(engine.pick(
            r"update poll_options set cast_votes = cast_votes + d.n
                from (select json_extract(value, '$[0]') as poll_id, json_extract(value, '$[1]') as option_id,
                             json_extract(value, '$[2]') as n
                        from json_each($1)) as d
               where poll_options.poll_id = d.poll_id and poll_options.option_id = d.option_id
              returning poll_options.poll_id, poll_options.option_id, seed_votes + cast_votes",
            r"update poll_options set cast_votes = cast_votes + d.n
                from (select value->>0 as poll_id, (value->>1)::bigint as option_id, (value->>2)::bigint as n
                        from json_array_elements($1::json)) as d
               where poll_options.poll_id = d.poll_id and poll_options.option_id = d.option_id
              returning poll_options.poll_id, poll_options.option_id, seed_votes + cast_votes",
        ))
        .bind(super::json(added)?)
        .fetch_all(c)
        .await?
    });
    Ok(rows
        .into_iter()
        .map(|(poll, option, votes)| (poll, option as u32, votes.max(0) as u64))
        .collect())
}
