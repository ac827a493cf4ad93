//! `tribune migrate-data`: moves a SQLite database's data, exactly, into an
//! empty PostgreSQL database.
//!
//! The source is opened read-only and read in one transaction, so what is
//! moved is one consistent snapshot; it is never created, migrated or written.
//! The target is migrated by `Db::open`, then written in one transaction that
//! first locks every table and checks that they are all empty, and last
//! checks the copy against the source before it commits: a failure anywhere
//! leaves the target as empty as it was.
//!
//! Rows go in chunks, each one set-based statement that reads its columns as
//! arrays (`unnest`), in the order the foreign keys need. The rating counts
//! are not copied but made again by the target's trigger as the ratings go
//! in, then compared with the source's: they must be equal.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use futures_util::TryStreamExt;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgConnection};
use sqlx::sqlite::{SqliteConnection, SqliteRow};
use sqlx::{ConnectOptions, Connection, Postgres};

use super::{Db, Engine, OwnConn, SQLITE_MIGRATOR, engine_of, sqlite_options};

/// Every table that holds Tribune's data, in the order they are filled (a
/// table after those it refers to). The target must have none of their rows.
pub const TABLES: [&str; 11] = [
    "site",
    "server_secret",
    "articles",
    "polls",
    "poll_options",
    "votes",
    "ratings",
    "rating_counts",
    "address_uses",
    "idempotency_keys",
    "writer_checks",
];

/// Rows per statement.
const CHUNK: usize = 10_000;

/// How long the target's tables may take to lock: a server running on the
/// target holds its locks for a batch, far less than this.
const LOCK_WAIT: &str = "10s";

/// What was moved: the rows of each table, and where to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Moved {
    rows: RowCounts,
    /// The target's URL without its user and password.
    pub target: String,
}

impl Moved {
    /// The rows moved of `table`, one of `TABLES`.
    pub fn rows(&self, table: &str) -> u64 {
        self.rows.get(table)
    }
}

/// Rows per table, in the order of `TABLES`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct RowCounts([u64; TABLES.len()]);

impl RowCounts {
    fn get(&self, table: &str) -> u64 {
        TABLES
            .iter()
            .position(|t| *t == table)
            .map_or(0, |i| self.0[i])
    }
}

/// Moves everything from the SQLite database `from` into the empty
/// PostgreSQL database `to`. `votes_moved(done, total)` is called when the
/// votes start to go in and after each chunk of them.
pub async fn move_data(
    from: &str,
    to: &str,
    mut votes_moved: impl FnMut(u64, u64),
) -> anyhow::Result<Moved> {
    check_urls(from, to)?;
    let target = without_password(to)?;
    let (mut source, path) = open_source(from).await?;
    let mut snapshot = source.begin().await?;
    check_source(&mut snapshot, &path).await?;
    let counts = count_rows(&mut snapshot, &path).await?;

    // Only once the source is known to be good is the target touched.
    let db = Db::open(to)
        .await
        .with_context(|| format!("cannot open {target}"))?;
    let moved = async {
        let OwnConn::Postgres(mut conn) = db.export_connection().await? else {
            anyhow::bail!("--to must be a PostgreSQL database");
        };
        let mut tx = conn.begin().await?;
        lock_and_check_empty(&mut tx, &target).await?;
        copy_all(&mut snapshot, &mut tx, &counts, &mut votes_moved)
            .await
            .with_context(|| format!("nothing was written to {target}"))?;
        tx.commit()
            .await
            .with_context(|| format!("cannot commit the copy into {target}"))?;
        conn.close().await?;
        Ok(())
    }
    .await;
    db.close().await;
    // Read-only: nothing to commit.
    let _ = snapshot.rollback().await;
    let _ = source.close().await;
    moved?;
    Ok(Moved {
        rows: counts,
        target,
    })
}

/// `from` must be SQLite, `to` PostgreSQL; only their schemes are ever shown.
fn check_urls(from: &str, to: &str) -> anyhow::Result<()> {
    match engine_of(from).context("--from")? {
        Engine::Sqlite => {}
        Engine::Postgres => anyhow::bail!(
            "--from is the SQLite database to move, a sqlite: URL such as \
             sqlite://data/tribune.db; migrate-data moves SQLite into PostgreSQL"
        ),
    }
    match engine_of(to).context("--to")? {
        Engine::Postgres => Ok(()),
        Engine::Sqlite => anyhow::bail!(
            "--to is the PostgreSQL database to move into, a postgres:// URL such as \
             postgres://tribune:PASSWORD@db.internal:5432/tribune"
        ),
    }
}

/// A PostgreSQL URL as it may be shown: `postgres://host:port/database`,
/// without the user and password.
fn without_password(url: &str) -> anyhow::Result<String> {
    let options = PgConnectOptions::from_str(url).context("--to is not a valid postgres:// URL")?;
    let host = options.get_host();
    let host = if host.contains(':') && !host.starts_with(['[', '/']) {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    let database = options.get_database().unwrap_or_default();
    Ok(format!(
        "postgres://{host}:{}/{database}",
        options.get_port()
    ))
}

/// The source, open read-only: never created, never written.
async fn open_source(url: &str) -> anyhow::Result<(SqliteConnection, PathBuf)> {
    let options = sqlite_options(url)?;
    let path = options.get_filename().to_owned();
    anyhow::ensure!(
        path.is_file(),
        "there is no database at {} (check --from)",
        path.display()
    );
    let conn = options
        .create_if_missing(false)
        .read_only(true)
        .busy_timeout(Duration::from_secs(5))
        // A read that streams a million rows is not a slow statement.
        .disable_statement_logging()
        .connect()
        .await
        .map_err(|e| unreadable(e, &path))?;
    Ok((conn, path))
}

/// What SQLite's refusal to read `path` means to the person who gave it.
fn unreadable(error: sqlx::Error, path: &Path) -> anyhow::Error {
    let not_a_database = error
        .as_database_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "26"); // SQLITE_NOTADB
    if not_a_database {
        anyhow::anyhow!(
            "{} is not a Tribune database (not a SQLite file)",
            path.display()
        )
    } else {
        anyhow::Error::new(error).context(format!("cannot read the database {}", path.display()))
    }
}

/// The source must be a Tribune database at exactly this build's latest
/// migration: older, its tables are not the ones copied here; newer, this
/// build does not know what it holds.
async fn check_source(source: &mut SqliteConnection, path: &Path) -> anyhow::Result<()> {
    let (has_migrations, has_votes): (bool, bool) = sqlx::query_as(
        r"select exists (select 1 from sqlite_master where type = 'table' and name = '_sqlx_migrations'),
                 exists (select 1 from sqlite_master where type = 'table' and name = 'votes')",
    )
    .fetch_one(&mut *source)
    .await
    .map_err(|e| unreadable(e, path))?;
    anyhow::ensure!(
        has_migrations && has_votes,
        "{} is not a Tribune database",
        path.display()
    );
    let applied: Vec<(i64, bool, Vec<u8>)> =
        sqlx::query_as(r"select version, success, checksum from _sqlx_migrations order by version")
            .fetch_all(&mut *source)
            .await
            .map_err(|e| unreadable(e, path))?;
    let start_once = "start this version of Tribune on it once (it brings the database up to \
                      date as it starts), stop it, then run migrate-data again";
    for (version, success, checksum) in &applied {
        match SQLITE_MIGRATOR.iter().find(|m| m.version == *version) {
            None => anyhow::bail!(
                "{} was last used by a newer version of Tribune (it has migration {version}, \
                 which this version does not know); move it with that version's migrate-data",
                path.display()
            ),
            Some(_) if !success => anyhow::bail!(
                "{}: migration {version} did not finish; {start_once}",
                path.display()
            ),
            Some(known) if known.checksum.as_ref() != checksum.as_slice() => anyhow::bail!(
                "{}: migration {version} is not the one this version of Tribune has; \
                 move it with the version that made it",
                path.display()
            ),
            Some(_) => {}
        }
    }
    if let Some(missing) = SQLITE_MIGRATOR
        .iter()
        .find(|m| !applied.iter().any(|(v, _, _)| *v == m.version))
    {
        anyhow::bail!(
            "{} is not at this version's latest schema (migration {} is not applied); {start_once}",
            path.display(),
            missing.version
        );
    }
    Ok(())
}

async fn count_rows(source: &mut SqliteConnection, path: &Path) -> anyhow::Result<RowCounts> {
    let mut counts = RowCounts::default();
    for (table, count) in TABLES.iter().zip(counts.0.iter_mut()) {
        // The table names are this module's constants.
        let rows: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("select count(*) from {table}")))
                .fetch_one(&mut *source)
                .await
                .map_err(|e| unreadable(e, path))?;
        *count = u64::try_from(rows).unwrap_or(0);
    }
    Ok(counts)
}

/// Locks every table until the transaction ends, so that nothing else writes
/// to the target meanwhile, and refuses a target with a row in any of them.
async fn lock_and_check_empty(target: &mut PgConnection, name: &str) -> anyhow::Result<()> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "set local lock_timeout = '{LOCK_WAIT}'"
    )))
    .execute(&mut *target)
    .await?;
    let locked = sqlx::query(sqlx::AssertSqlSafe(format!(
        "lock table {} in exclusive mode",
        TABLES.join(", ")
    )))
    .execute(&mut *target)
    .await;
    if let Err(e) = locked {
        let busy = e
            .as_database_error()
            .and_then(|e| e.code())
            .is_some_and(|code| code == "55P03"); // lock_not_available
        if busy {
            anyhow::bail!(
                "{name} is in use: its tables stayed locked for {LOCK_WAIT}; \
                 stop whatever writes to it, then run migrate-data again (nothing was written)"
            );
        }
        return Err(anyhow::Error::new(e).context(format!("cannot lock the tables of {name}")));
    }
    let mut full = Vec::new();
    for table in TABLES {
        let has_rows: bool = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "select exists (select 1 from {table})"
        )))
        .fetch_one(&mut *target)
        .await?;
        if has_rows {
            full.push(table);
        }
    }
    let (tables, hold) = match full.len() {
        1 => ("its table", "holds"),
        _ => ("its tables", "hold"),
    };
    anyhow::ensure!(
        full.is_empty(),
        "{name} is not empty: {tables} {} {hold} rows. migrate-data moves data only into an \
         empty database, before any Tribune instance starts on it; nothing was written",
        full.join(", "),
    );
    Ok(())
}

async fn copy_all(
    source: &mut SqliteConnection,
    target: &mut PgConnection,
    counts: &RowCounts,
    votes_moved: &mut impl FnMut(u64, u64),
) -> anyhow::Result<()> {
    copy::<Site>(source, target, &mut |_| {}).await?;
    copy::<ServerSecret>(source, target, &mut |_| {}).await?;
    copy::<Articles>(source, target, &mut |_| {}).await?;
    copy::<Polls>(source, target, &mut |_| {}).await?;
    copy::<PollOptions>(source, target, &mut |_| {}).await?;
    let total = counts.get("votes");
    votes_moved(0, total);
    copy::<Votes>(source, target, &mut |done| votes_moved(done, total)).await?;
    // The target's trigger counts the ratings as they go in.
    copy::<Ratings>(source, target, &mut |_| {}).await?;
    let source_counts = rating_counts(&mut *source).await?;
    keep_empty_rating_counts(target, &source_counts).await?;
    copy::<AddressUses>(source, target, &mut |_| {}).await?;
    copy::<IdempotencyKeys>(source, target, &mut |_| {}).await?;
    copy::<WriterChecks>(source, target, &mut |_| {}).await?;

    check_copy(target, counts, &source_counts).await?;
    // Last, since a sequence is not rolled back with the transaction.
    for (table, column) in [("articles", "id"), ("votes", "id")] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "select setval(pg_get_serial_sequence('{table}', '{column}'),
                           coalesce((select max({column}) from {table}), 0) + 1, false)"
        )))
        .execute(&mut *target)
        .await
        .with_context(|| format!("cannot move the ids of {table} on"))?;
    }
    Ok(())
}

/// Rows moved at once: a table's columns, each as an array.
trait Chunk: Default {
    /// One row as the source gives it.
    type Row: for<'r> sqlx::FromRow<'r, SqliteRow> + Send + Unpin;
    const TABLE: &'static str;
    /// On SQLite: the table's rows, columns in the order of `Row`.
    const SELECT: &'static str;
    /// On PostgreSQL: inserts the rows whose columns are bound as arrays by `bind`.
    const INSERT: &'static str;
    fn push(&mut self, row: Self::Row);
    fn bind(self, insert: PgQuery<'_>) -> PgQuery<'_>;
}

type PgQuery<'q> = sqlx::query::Query<'q, Postgres, PgArguments>;

/// Copies the rows of one table, `CHUNK` at a time; calls `moved` with the
/// rows written so far after each chunk.
async fn copy<C: Chunk>(
    source: &mut SqliteConnection,
    target: &mut PgConnection,
    moved: &mut dyn FnMut(u64),
) -> anyhow::Result<u64> {
    let mut rows = sqlx::query_as::<_, C::Row>(C::SELECT).fetch(&mut *source);
    let mut chunk = C::default();
    let mut in_chunk = 0;
    let mut done = 0;
    // Ends with the table's rows: a finite query.
    loop {
        let row = rows
            .try_next()
            .await
            .with_context(|| format!("cannot read {} from the source", C::TABLE))?;
        let last = row.is_none();
        if let Some(row) = row {
            chunk.push(row);
            in_chunk += 1;
        }
        if in_chunk == CHUNK || (last && in_chunk > 0) {
            std::mem::take(&mut chunk)
                .bind(sqlx::query(C::INSERT))
                .execute(&mut *target)
                .await
                .with_context(|| format!("cannot write {}", C::TABLE))?;
            done += in_chunk as u64;
            in_chunk = 0;
            moved(done);
        }
        if last {
            return Ok(done);
        }
    }
}

#[derive(Default)]
struct Site {
    id: Vec<i64>,
    name: Vec<String>,
    footer_links: Vec<String>,
}

impl Chunk for Site {
    type Row = (i64, String, String);
    const TABLE: &'static str = "site";
    const SELECT: &'static str = r"select id, name, footer_links from site";
    const INSERT: &'static str = r"insert into site (id, name, footer_links)
        select * from unnest($1::bigint[], $2::text[], $3::text[])";
    fn push(&mut self, (id, name, footer_links): Self::Row) {
        self.id.push(id);
        self.name.push(name);
        self.footer_links.push(footer_links);
    }
    fn bind(self, insert: PgQuery<'_>) -> PgQuery<'_> {
        insert.bind(self.id).bind(self.name).bind(self.footer_links)
    }
}

#[derive(Default)]
struct ServerSecret {
    id: Vec<i64>,
    secret: Vec<Vec<u8>>,
}

impl Chunk for ServerSecret {
    type Row = (i64, Vec<u8>);
    const TABLE: &'static str = "server_secret";
    const SELECT: &'static str = r"select id, secret from server_secret";
    const INSERT: &'static str = r"insert into server_secret (id, secret)
        select * from unnest($1::bigint[], $2::bytea[])";
    fn push(&mut self, (id, secret): Self::Row) {
        self.id.push(id);
        self.secret.push(secret);
    }
    fn bind(self, insert: PgQuery<'_>) -> PgQuery<'_> {
        insert.bind(self.id).bind(self.secret)
    }
}

type ArticleRow = (
    i64,
    String,
    String,
    String,
    Option<String>,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    String,
    String,
);

#[derive(Default)]
struct Articles {
    id: Vec<i64>,
    slug: Vec<String>,
    lang: Vec<String>,
    title: Vec<String>,
    translation: Vec<Option<String>>,
    author_name: Vec<String>,
    author_bio: Vec<String>,
    published_at: Vec<Option<String>>,
    image_src: Vec<Option<String>>,
    image_alt: Vec<Option<String>>,
    image_credit: Vec<Option<String>>,
    body_markdown: Vec<String>,
    source_path: Vec<String>,
    imported_at: Vec<String>,
}

impl Chunk for Articles {
    type Row = ArticleRow;
    const TABLE: &'static str = "articles";
    const SELECT: &'static str = r"select id, slug, lang, title, translation, author_name, author_bio,
               published_at, image_src, image_alt, image_credit, body_markdown, source_path, imported_at
          from articles order by id";
    const INSERT: &'static str = r"insert into articles (id, slug, lang, title, translation, author_name, author_bio,
               published_at, image_src, image_alt, image_credit, body_markdown, source_path, imported_at)
        select * from unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                             $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[])";
    fn push(&mut self, row: Self::Row) {
        let (
            id,
            slug,
            lang,
            title,
            translation,
            author_name,
            author_bio,
            published_at,
            image_src,
            image_alt,
            image_credit,
            body_markdown,
            source_path,
            imported_at,
        ) = row;
        self.id.push(id);
        self.slug.push(slug);
        self.lang.push(lang);
        self.title.push(title);
        self.translation.push(translation);
        self.author_name.push(author_name);
        self.author_bio.push(author_bio);
        self.published_at.push(published_at);
        self.image_src.push(image_src);
        self.image_alt.push(image_alt);
        self.image_credit.push(image_credit);
        self.body_markdown.push(body_markdown);
        self.source_path.push(source_path);
        self.imported_at.push(imported_at);
    }
    fn bind(self, insert: PgQuery<'_>) -> PgQuery<'_> {
        insert
            .bind(self.id)
            .bind(self.slug)
            .bind(self.lang)
            .bind(self.title)
            .bind(self.translation)
            .bind(self.author_name)
            .bind(self.author_bio)
            .bind(self.published_at)
            .bind(self.image_src)
            .bind(self.image_alt)
            .bind(self.image_credit)
            .bind(self.body_markdown)
            .bind(self.source_path)
            .bind(self.imported_at)
    }
}

#[derive(Default)]
struct Polls {
    id: Vec<String>,
    article_id: Vec<i64>,
    question: Vec<String>,
    status: Vec<String>,
    closes_at: Vec<Option<String>>,
}

impl Chunk for Polls {
    type Row = (String, i64, String, String, Option<String>);
    const TABLE: &'static str = "polls";
    const SELECT: &'static str =
        r"select id, article_id, question, status, closes_at from polls order by id";
    const INSERT: &'static str = r"insert into polls (id, article_id, question, status, closes_at)
        select * from unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[])";
    fn push(&mut self, (id, article_id, question, status, closes_at): Self::Row) {
        self.id.push(id);
        self.article_id.push(article_id);
        self.question.push(question);
        self.status.push(status);
        self.closes_at.push(closes_at);
    }
    fn bind(self, insert: PgQuery<'_>) -> PgQuery<'_> {
        insert
            .bind(self.id)
            .bind(self.article_id)
            .bind(self.question)
            .bind(self.status)
            .bind(self.closes_at)
    }
}

#[derive(Default)]
struct PollOptions {
    poll_id: Vec<String>,
    option_id: Vec<i64>,
    position: Vec<i64>,
    label: Vec<String>,
    seed_votes: Vec<i64>,
    cast_votes: Vec<i64>,
}

impl Chunk for PollOptions {
    type Row = (String, i64, i64, String, i64, i64);
    const TABLE: &'static str = "poll_options";
    const SELECT: &'static str = r"select poll_id, option_id, position, label, seed_votes, cast_votes
          from poll_options order by poll_id, option_id";
    const INSERT: &'static str = r"insert into poll_options (poll_id, option_id, position, label, seed_votes, cast_votes)
        select * from unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::bigint[], $6::bigint[])";
    fn push(&mut self, (poll_id, option_id, position, label, seed, cast): Self::Row) {
        self.poll_id.push(poll_id);
        self.option_id.push(option_id);
        self.position.push(position);
        self.label.push(label);
        self.seed_votes.push(seed);
        self.cast_votes.push(cast);
    }
    fn bind(self, insert: PgQuery<'_>) -> PgQuery<'_> {
        insert
            .bind(self.poll_id)
            .bind(self.option_id)
            .bind(self.position)
            .bind(self.label)
            .bind(self.seed_votes)
            .bind(self.cast_votes)
    }
}

/// The votes keep their ids; SQLite's `address_hash`, null in every row
/// since migration 0002, has no column on PostgreSQL.
#[derive(Default)]
struct Votes {
    id: Vec<i64>,
    poll_id: Vec<String>,
    option_id: Vec<i64>,
    voter: Vec<String>,
    cast_at: Vec<i64>,
}

impl Chunk for Votes {
    type Row = (i64, String, i64, String, i64);
    const TABLE: &'static str = "votes";
    // In id order, which is SQLite's storage order: the target's index on
    // the ids then only ever grows at its end.
    const SELECT: &'static str =
        r"select id, poll_id, option_id, voter, cast_at from votes order by id";
    const INSERT: &'static str = r"insert into votes (id, poll_id, option_id, voter, cast_at)
        select * from unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::bigint[])";
    fn push(&mut self, (id, poll_id, option_id, voter, cast_at): Self::Row) {
        self.id.push(id);
        self.poll_id.push(poll_id);
        self.option_id.push(option_id);
        self.voter.push(voter);
        self.cast_at.push(cast_at);
    }
    fn bind(self, insert: PgQuery<'_>) -> PgQuery<'_> {
        insert
            .bind(self.id)
            .bind(self.poll_id)
            .bind(self.option_id)
            .bind(self.voter)
            .bind(self.cast_at)
    }
}

#[derive(Default)]
struct Ratings {
    article_id: Vec<i64>,
    voter: Vec<String>,
    stars: Vec<i64>,
    rated_at: Vec<i64>,
}

impl Chunk for Ratings {
    type Row = (i64, String, i64, i64);
    const TABLE: &'static str = "ratings";
    const SELECT: &'static str = r"select article_id, voter, stars, rated_at from ratings";
    const INSERT: &'static str = r"insert into ratings (article_id, voter, stars, rated_at)
        select * from unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[])";
    fn push(&mut self, (article_id, voter, stars, rated_at): Self::Row) {
        self.article_id.push(article_id);
        self.voter.push(voter);
        self.stars.push(stars);
        self.rated_at.push(rated_at);
    }
    fn bind(self, insert: PgQuery<'_>) -> PgQuery<'_> {
        insert
            .bind(self.article_id)
            .bind(self.voter)
            .bind(self.stars)
            .bind(self.rated_at)
    }
}

#[derive(Default)]
struct AddressUses {
    scope: Vec<String>,
    address_hash: Vec<Vec<u8>>,
    used_at: Vec<i64>,
}

impl Chunk for AddressUses {
    type Row = (String, Vec<u8>, i64);
    const TABLE: &'static str = "address_uses";
    const SELECT: &'static str = r"select scope, address_hash, used_at from address_uses";
    const INSERT: &'static str = r"insert into address_uses (scope, address_hash, used_at)
        select * from unnest($1::text[], $2::bytea[], $3::bigint[])";
    fn push(&mut self, (scope, address_hash, used_at): Self::Row) {
        self.scope.push(scope);
        self.address_hash.push(address_hash);
        self.used_at.push(used_at);
    }
    fn bind(self, insert: PgQuery<'_>) -> PgQuery<'_> {
        insert
            .bind(self.scope)
            .bind(self.address_hash)
            .bind(self.used_at)
    }
}

#[derive(Default)]
struct IdempotencyKeys {
    id: Vec<Vec<u8>>,
    request: Vec<String>,
    status: Vec<i64>,
    body: Vec<Vec<u8>>,
    reader: Vec<String>,
    created_at: Vec<i64>,
}

impl Chunk for IdempotencyKeys {
    type Row = (Vec<u8>, String, i64, Vec<u8>, String, i64);
    const TABLE: &'static str = "idempotency_keys";
    const SELECT: &'static str =
        r"select id, request, status, body, reader, created_at from idempotency_keys";
    const INSERT: &'static str = r"insert into idempotency_keys (id, request, status, body, reader, created_at)
        select * from unnest($1::bytea[], $2::text[], $3::bigint[], $4::bytea[], $5::text[], $6::bigint[])";
    fn push(&mut self, (id, request, status, body, reader, created_at): Self::Row) {
        self.id.push(id);
        self.request.push(request);
        self.status.push(status);
        self.body.push(body);
        self.reader.push(reader);
        self.created_at.push(created_at);
    }
    fn bind(self, insert: PgQuery<'_>) -> PgQuery<'_> {
        insert
            .bind(self.id)
            .bind(self.request)
            .bind(self.status)
            .bind(self.body)
            .bind(self.reader)
            .bind(self.created_at)
    }
}

#[derive(Default)]
struct WriterChecks {
    id: Vec<i64>,
    checked_at: Vec<i64>,
}

impl Chunk for WriterChecks {
    type Row = (i64, i64);
    const TABLE: &'static str = "writer_checks";
    const SELECT: &'static str = r"select id, checked_at from writer_checks";
    const INSERT: &'static str = r"insert into writer_checks (id, checked_at)
        select * from unnest($1::bigint[], $2::bigint[])";
    fn push(&mut self, (id, checked_at): Self::Row) {
        self.id.push(id);
        self.checked_at.push(checked_at);
    }
    fn bind(self, insert: PgQuery<'_>) -> PgQuery<'_> {
        insert.bind(self.id).bind(self.checked_at)
    }
}

/// `(article id, stars, readers)`, in that order: at most five rows an article.
type RatingCount = (i64, i64, i64);

const RATING_COUNTS: &str =
    r"select article_id, stars, readers from rating_counts order by article_id, stars";

async fn rating_counts(source: &mut SqliteConnection) -> anyhow::Result<Vec<RatingCount>> {
    sqlx::query_as(RATING_COUNTS)
        .fetch_all(source)
        .await
        .context("cannot read rating_counts from the source")
}

/// The source's rows of no readers (a star every reader who gave it has
/// since changed), which no insert into `ratings` makes.
async fn keep_empty_rating_counts(
    target: &mut PgConnection,
    source: &[RatingCount],
) -> anyhow::Result<()> {
    let (articles, stars): (Vec<i64>, Vec<i64>) = source
        .iter()
        .filter(|(_, _, readers)| *readers == 0)
        .map(|(article, stars, _)| (*article, *stars))
        .unzip();
    sqlx::query(
        r"insert into rating_counts (article_id, stars, readers)
          select article_id, stars, 0 from unnest($1::bigint[], $2::bigint[]) as e(article_id, stars)
          on conflict (article_id, stars) do nothing",
    )
    .bind(articles)
    .bind(stars)
    .execute(target)
    .await
    .context("cannot write rating_counts")?;
    Ok(())
}

/// In the transaction, before it commits: every table has the source's
/// rows, every poll's tallies count its votes, and the rating counts the
/// trigger made are the source's.
async fn check_copy(
    target: &mut PgConnection,
    counts: &RowCounts,
    source_counts: &[RatingCount],
) -> anyhow::Result<()> {
    for (table, expected) in TABLES.iter().zip(counts.0) {
        let rows: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("select count(*) from {table}")))
                .fetch_one(&mut *target)
                .await?;
        anyhow::ensure!(
            u64::try_from(rows).ok() == Some(expected),
            "{table} has {rows} rows after the copy, but {expected} in the source"
        );
    }
    let polls: Vec<(String, i64, i64)> = sqlx::query_as(
        r"select p.id,
                 coalesce((select sum(o.cast_votes) from poll_options o where o.poll_id = p.id), 0)::bigint,
                 (select count(*) from votes v where v.poll_id = p.id)
            from polls p order by p.id",
    )
    .fetch_all(&mut *target)
    .await?;
    for (poll, cast, votes) in polls {
        anyhow::ensure!(
            cast == votes,
            "poll {poll:?}: its tallies count {cast} votes cast, but it has {votes} votes \
             (so has the source)"
        );
    }
    let made: Vec<RatingCount> = sqlx::query_as(RATING_COUNTS)
        .fetch_all(&mut *target)
        .await?;
    if made != source_counts {
        let differs = made
            .iter()
            .zip(source_counts)
            .find(|(m, s)| m != s)
            .map(|(m, s)| {
                format!(
                    "({}, {}, {}) against ({}, {}, {})",
                    m.0, m.1, m.2, s.0, s.1, s.2
                )
            })
            .unwrap_or_else(|| format!("{} rows against {}", made.len(), source_counts.len()));
        anyhow::bail!(
            "the rating counts that the moved ratings make differ from the source's \
             (article, stars, readers): {differs}"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_is_shown_without_its_user_or_password() {
        assert_eq!(
            without_password("postgres://tribune:hunter2@db.internal:5433/tribune").ok(),
            Some("postgres://db.internal:5433/tribune".to_owned())
        );
        assert_eq!(
            without_password("postgresql://tribune@[::1]/site?sslmode=disable").ok(),
            Some("postgres://[::1]:5432/site".to_owned())
        );
    }

    #[test]
    fn only_sqlite_into_postgres_is_taken() {
        assert!(check_urls("sqlite://data/tribune.db", "postgres://h/db").is_ok());
        for (from, to) in [
            ("postgres://h/a", "postgres://h/db"),
            ("sqlite://a.db", "sqlite://b.db"),
            ("mysql://root:hunter2@h/db", "postgres://h/db"),
            ("sqlite://a.db", "data/b.db"),
        ] {
            let error = check_urls(from, to).err().map(|e| format!("{e:#}"));
            let error = error.unwrap_or_default();
            assert!(
                error.contains("--from") || error.contains("--to"),
                "{from} {to}: {error}"
            );
            assert!(!error.contains("hunter2"), "{error}");
        }
    }
}
