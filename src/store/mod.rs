//! The SQL layer: every query Tribune runs lives in this module and its
//! children, written once for SQLite and PostgreSQL where the engines agree
//! and once for each where they do not (see `engine`). Above it, nothing
//! knows which engine it talks to.
//!
//! Reads go through a small pool; writes of votes and ratings go through the
//! ballot box's own connection (see `crate::ballot`), so each process has one
//! writer. On PostgreSQL several processes may share the database: the
//! writer then locks what a batch touches (`lock_scopes`), and every commit
//! notifies the others (`notify`).

pub mod addresses;
pub mod articles;
pub mod checks;
mod engine;
pub mod export;
pub mod idempotency;
pub mod migrate;
pub mod polls;
pub mod ratings;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection};

pub(crate) use engine::on_engine;
pub use engine::{Conn, Engine, OwnConn, Pool, PooledConn, Tx};

/// Where the database lives when nothing says otherwise.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/tribune.db";

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The database: a pool for reads and imports, and the options to open the
/// writer's and an export's connections.
#[derive(Clone, Debug)]
pub struct Db {
    pool: Pool,
    /// Behind an `Arc`: the state is cloned for every request.
    options: Arc<Options>,
}

#[derive(Debug)]
enum Options {
    Sqlite(SqliteConnectOptions),
    Postgres(PgConnectOptions),
}

/// The engine a database URL names, from its scheme; an error names the
/// schemes served. Only the scheme is ever shown: the rest may hold a password.
pub fn engine_of(url: &str) -> anyhow::Result<Engine> {
    let example = DEFAULT_DATABASE_URL;
    match url.split_once(':').map(|(scheme, _)| scheme) {
        Some(scheme) if scheme.eq_ignore_ascii_case("sqlite") => Ok(Engine::Sqlite),
        Some(scheme)
            if scheme.eq_ignore_ascii_case("postgres")
                || scheme.eq_ignore_ascii_case("postgresql") =>
        {
            Ok(Engine::Postgres)
        }
        Some(scheme)
            if !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
        {
            anyhow::bail!(
                "Tribune keeps its data in SQLite or PostgreSQL and cannot use a {scheme}: \
                 database; give a sqlite: URL, e.g. {example}, or a postgres:// URL"
            )
        }
        _ => {
            anyhow::bail!("the database URL must start with sqlite: or postgres://, e.g. {example}")
        }
    }
}

impl Db {
    /// Opens (creating it and its folder when missing, for SQLite) and
    /// migrates the database.
    pub async fn open(url: &str) -> anyhow::Result<Self> {
        match engine_of(url)? {
            Engine::Sqlite => Self::open_sqlite(url).await,
            Engine::Postgres => Self::open_postgres(url).await,
        }
    }

    async fn open_sqlite(url: &str) -> anyhow::Result<Self> {
        let options = sqlite_options(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // An acknowledged vote must survive a power cut.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        if let Some(folder) = options.get_filename().parent()
            && !folder.as_os_str().is_empty()
        {
            std::fs::create_dir_all(folder)
                .with_context(|| format!("cannot create {}", folder.display()))?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options.clone())
            .await
            .with_context(|| format!("cannot open the database {url:?}"))?;
        SQLITE_MIGRATOR
            .run(&pool)
            .await
            .context("cannot apply the database migrations")?;
        Ok(Self {
            pool: Pool::Sqlite(pool),
            options: Arc::new(Options::Sqlite(options)),
        })
    }

    async fn open_postgres(url: &str) -> anyhow::Result<Self> {
        let options = PgConnectOptions::from_str(url)
            .context("bad database URL (a postgres:// URL)")?
            .application_name("tribune")
            // An acknowledged vote must be on disk, whatever the server's default.
            .options([("synchronous_commit", "on")]);
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options.clone())
            .await
            .context("cannot connect to the PostgreSQL database")?;
        // Instances starting together migrate one after the other.
        POSTGRES_MIGRATOR
            .run(&pool)
            .await
            .context("cannot apply the database migrations")?;
        Ok(Self {
            pool: Pool::Postgres(pool),
            options: Arc::new(Options::Postgres(options)),
        })
    }

    pub fn engine(&self) -> Engine {
        match &self.pool {
            Pool::Sqlite(_) => Engine::Sqlite,
            Pool::Postgres(_) => Engine::Postgres,
        }
    }

    /// A connection from the pool, for a few reads.
    pub async fn acquire(&self) -> sqlx::Result<PooledConn> {
        self.pool.acquire().await
    }

    /// A transaction on a connection from the pool.
    pub async fn begin(&self) -> sqlx::Result<Tx<'static>> {
        self.pool.begin().await
    }

    /// The SQLite pool, for tests that look at SQLite itself; `None` on PostgreSQL.
    pub fn sqlite_pool(&self) -> Option<&sqlx::SqlitePool> {
        match &self.pool {
            Pool::Sqlite(pool) => Some(pool),
            Pool::Postgres(_) => None,
        }
    }

    /// The PostgreSQL pool, for the listener; `None` on SQLite.
    pub fn postgres_pool(&self) -> Option<&sqlx::PgPool> {
        match &self.pool {
            Pool::Postgres(pool) => Some(pool),
            Pool::Sqlite(_) => None,
        }
    }

    /// A connection of its own for the single writer, which waits at most
    /// `lock_wait` for a lock another process holds.
    pub async fn writer_connection(&self, lock_wait: Duration) -> anyhow::Result<OwnConn> {
        let conn = match &*self.options {
            Options::Sqlite(options) => OwnConn::Sqlite(
                options
                    .clone()
                    .busy_timeout(lock_wait)
                    .connect()
                    .await
                    .context("cannot open the writer connection")?,
            ),
            Options::Postgres(options) => {
                let wait = lock_wait.as_millis().to_string();
                OwnConn::Postgres(
                    options
                        .clone()
                        .options([("lock_timeout", wait.as_str())])
                        .connect()
                        .await
                        .context("cannot open the writer connection")?,
                )
            }
        };
        Ok(conn)
    }

    /// A connection of its own for one long read, an export, or one long
    /// write, `migrate-data`'s. On SQLite its sorts spill to temporary files
    /// rather than memory, whatever this SQLite was built with; its
    /// statements are not logged, since a streamed query takes as long as
    /// its reader, and a "slow statement" warning would be noise.
    pub async fn export_connection(&self) -> anyhow::Result<OwnConn> {
        let conn = match &*self.options {
            Options::Sqlite(options) => OwnConn::Sqlite(
                options
                    .clone()
                    .pragma("temp_store", "file")
                    .disable_statement_logging()
                    .connect()
                    .await?,
            ),
            Options::Postgres(options) => OwnConn::Postgres(
                options
                    .clone()
                    .disable_statement_logging()
                    .connect()
                    .await?,
            ),
        };
        Ok(conn)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Whether the database answers a query.
    pub async fn ping(&self) -> bool {
        match &self.pool {
            Pool::Sqlite(pool) => sqlx::query("select 1").execute(pool).await.is_ok(),
            Pool::Postgres(pool) => sqlx::query("select 1").execute(pool).await.is_ok(),
        }
    }
}

/// The options of a `sqlite:` URL; any other scheme is refused here, before
/// anything is created (sqlx would take `postgres://…` for a file name).
fn sqlite_options(url: &str) -> anyhow::Result<SqliteConnectOptions> {
    anyhow::ensure!(
        engine_of(url)? == Engine::Sqlite,
        "this needs a SQLite database (a sqlite: URL)"
    );
    SqliteConnectOptions::from_str(url).with_context(|| format!("bad database URL {url:?}"))
}

/// Takes, until the transaction ends, a lock on each scope (`poll:<id>`,
/// `rating:<article id>`) that a batch writes, in one order so that two
/// writers never wait on each other. On SQLite the write transaction already
/// holds the only write lock; on PostgreSQL, with several instances, this is
/// what makes a batch's reads (who voted, the tallies, the address uses)
/// still true when it commits.
pub async fn lock_scopes(conn: Conn<'_>, scopes: &[&str]) -> sqlx::Result<()> {
    let Conn::Postgres(c) = conn else {
        return Ok(());
    };
    let mut scopes = scopes.to_vec();
    scopes.sort_unstable();
    scopes.dedup();
    for scope in scopes {
        sqlx::query("select pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(scope)
            .execute(&mut *c)
            .await?;
    }
    Ok(())
}

/// Makes imports wait for each other until this transaction ends: instances
/// that start together on one PostgreSQL database import the same content
/// one after the other. (SQLite's writers already wait for each other.)
pub async fn lock_import(conn: Conn<'_>) -> sqlx::Result<()> {
    lock_scopes(conn, &["import"]).await
}

/// The channel on which PostgreSQL instances tell each other what changed.
pub const CHANGES_CHANNEL: &str = "tribune_changes";

/// Tells every instance, once this transaction commits, that `what` changed
/// (a short text: see `crate::live::sync`). Nothing to do on SQLite, where
/// this process is the only writer.
pub async fn notify(conn: Conn<'_>, what: &str) -> sqlx::Result<()> {
    let Conn::Postgres(c) = conn else {
        return Ok(());
    };
    sqlx::query("select pg_notify($1, $2)")
        .bind(CHANGES_CHANNEL)
        .bind(what)
        .execute(c)
        .await?;
    Ok(())
}

/// The server secret: the configured one, or the one made on first start and kept here.
pub async fn server_secret(db: &Db, configured: Option<&str>) -> anyhow::Result<Vec<u8>> {
    if let Some(secret) = configured {
        anyhow::ensure!(
            secret.len() >= 32,
            "the secret must be at least 32 characters long"
        );
        return Ok(secret.as_bytes().to_vec());
    }
    let mut fresh = [0_u8; 64];
    getrandom::fill(&mut fresh).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let mut pooled = db.acquire().await?;
    let secret: Vec<u8> = on_engine!(pooled.conn(), |c, _engine| {
        sqlx::query(
            r"insert into server_secret (id, secret) values (1, $1) on conflict (id) do nothing",
        )
        .bind(&fresh[..])
        .execute(&mut *c)
        .await?;
        sqlx::query_scalar(r"select secret from server_secret where id = 1")
            .fetch_one(&mut *c)
            .await?
    });
    Ok(secret)
}

/// A consistent copy of the database, ready to be written: the source checked
/// and open read-only. Safe while the server runs. The source is read as it
/// is: never created, never migrated, never written.
///
/// The copy is made by `vacuum into`, in one read transaction: SQLite's online
/// backup API would report pages as it goes, but it starts over whenever
/// another connection writes to the source, which a busy server does
/// all the time. Progress is watched from outside instead, as the copy's size
/// on disk (see `Backup::bytes_estimate`).
pub struct Backup {
    conn: SqliteConnection,
    target: std::path::PathBuf,
    bytes_estimate: u64,
}

impl Backup {
    /// Checks that `url` names an existing Tribune database and that `path`
    /// does not exist yet, and opens the source read-only.
    pub async fn prepare(url: &str, path: &Path) -> anyhow::Result<Self> {
        anyhow::ensure!(
            engine_of(url)? == Engine::Sqlite,
            "tribune backup copies a SQLite database; back up PostgreSQL with its own tools: \
             pg_dump --format=custom --file=tribune.dump DATABASE"
        );
        let options = sqlite_options(url)?;
        let source = options.get_filename().to_owned();
        anyhow::ensure!(
            source.is_file(),
            "there is no database at {} (check --database-url or DATABASE_URL)",
            source.display()
        );
        anyhow::ensure!(!path.exists(), "{} already exists", path.display());
        anyhow::ensure!(
            path.to_str().is_some(),
            "the backup path must be valid UTF-8"
        );
        let mut conn = options
            .create_if_missing(false)
            .read_only(true)
            .busy_timeout(Duration::from_secs(5))
            .connect()
            .await
            .with_context(|| format!("cannot open the database {}", source.display()))?;
        let (is_tribune, pages_in_use, page_size): (bool, i64, i64) = sqlx::query_as(
            r"select exists (select 1 from sqlite_master where type = 'table' and name = 'votes'),
                     (select page_count from pragma_page_count()) - (select freelist_count from pragma_freelist_count()),
                     (select page_size from pragma_page_size())",
        )
        .fetch_one(&mut conn)
        .await
        .with_context(|| format!("cannot read the database {}", source.display()))?;
        anyhow::ensure!(is_tribune, "{} is not a Tribune database", source.display());
        Ok(Self {
            conn,
            target: path.to_owned(),
            bytes_estimate: u64::try_from(pages_in_use.max(0) * page_size.max(0)).unwrap_or(0),
        })
    }

    /// About the size the copy will have: the source's pages in use. The copy
    /// is rebuilt page by page, so it is usually somewhat smaller.
    pub fn bytes_estimate(&self) -> u64 {
        self.bytes_estimate
    }

    /// Writes the copy and has it on disk (file and folder synced) before
    /// returning its size in bytes.
    pub async fn run(mut self) -> anyhow::Result<u64> {
        let path = self.target;
        let target = path
            .to_str()
            .context("the backup path must be valid UTF-8")?
            .to_owned();
        sqlx::query(r"vacuum into ?")
            .bind(target)
            .execute(&mut self.conn)
            .await
            .with_context(|| format!("cannot back up to {}", path.display()))?;
        self.conn.close().await?;
        let copy = path.clone();
        tokio::task::spawn_blocking(move || sync_new_file(&copy))
            .await?
            .with_context(|| format!("cannot sync {} to disk", path.display()))
    }
}

/// Flushes a new file, and the directory entry that names it, to disk; gives its size.
fn sync_new_file(path: &Path) -> std::io::Result<u64> {
    let file = std::fs::File::open(path)?;
    file.sync_all()?;
    let size = file.metadata()?.len();
    #[cfg(unix)]
    {
        let folder = match path.parent() {
            Some(folder) if !folder.as_os_str().is_empty() => folder,
            _ => Path::new("."),
        };
        std::fs::File::open(folder)?.sync_all()?;
    }
    Ok(size)
}

/// Milliseconds since the Unix epoch, as stored in `cast_at` and `rated_at`.
pub fn now_millis() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    (now.unix_timestamp_nanos() / 1_000_000) as i64
}

/// Pairs grouped by their first member, in order of first appearance: a
/// batch's readers per poll (or article, or scope). On PostgreSQL a batch's
/// lookups go a group at a time, each member looked up by itself in a
/// lateral subquery that cannot be merged into a join (`offset 0`), on the
/// whole key: the one plan for that is a probe of the unique index per
/// member. Other forms were planned, on a table without statistics yet (a
/// new site taking its first votes), as a join that reads the table
/// (`poll_id = $1 and voter = any($2)` read every vote of the poll: 20 ms a
/// batch at 30,000 votes), and a prepared statement keeps its plan.
fn grouped<K: PartialEq + Copy, V: Clone>(pairs: &[(K, V)]) -> Vec<(K, Vec<V>)> {
    let mut groups: Vec<(K, Vec<V>)> = Vec::new();
    for (key, member) in pairs {
        match groups.iter_mut().find(|(k, _)| k == key) {
            Some((_, members)) => members.push(member.clone()),
            None => groups.push((*key, vec![member.clone()])),
        }
    }
    groups
}

/// A batch's rows as the JSON array that a set-based statement reads with
/// `json_each`: one parameter, whatever the batch's size. Blobs go as hex.
fn json<T: serde::Serialize + ?Sized>(rows: &T) -> sqlx::Result<String> {
    serde_json::to_string(rows).map_err(|e| sqlx::Error::Encode(Box::new(e)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking
mod tests {
    use sqlx::{AssertSqlSafe, Connection, PgConnection};

    /// The writer's lookups of a batch's readers, prepared on a new, empty
    /// database (no statistics yet) and planned once for every batch, as
    /// PostgreSQL may: each must still probe its index per reader, never
    /// read the table. Needs `TRIBUNE_TEST_POSTGRES` (an admin URL).
    #[tokio::test]
    async fn a_batch_lookup_probes_its_index_whatever_plan_is_kept() {
        let Ok(admin) = std::env::var("TRIBUNE_TEST_POSTGRES") else {
            eprintln!("**** POSTGRESQL ONLY (query plans): set TRIBUNE_TEST_POSTGRES ****");
            return;
        };
        let name = format!("tribune_t_{}", uuid::Uuid::new_v4().simple());
        let mut server = PgConnection::connect(&admin).await.unwrap();
        sqlx::query(AssertSqlSafe(format!("create database {name}")))
            .execute(&mut server)
            .await
            .unwrap();
        let url = match admin.rsplit_once('/') {
            Some((host, _)) => format!("{host}/{name}"),
            None => panic!("TRIBUNE_TEST_POSTGRES is a postgres:// URL"),
        };
        let db = super::Db::open(&url).await.unwrap();
        let mut conn = PgConnection::connect(&url).await.unwrap();
        sqlx::query("set plan_cache_mode = force_generic_plan")
            .execute(&mut conn)
            .await
            .unwrap();
        for (types, sql, index, args) in [
            (
                "text, text[]",
                super::polls::VOTED_AMONG_POSTGRES,
                "votes_poll_id_voter_key",
                "'p', '{a,b}'",
            ),
            (
                "bigint, text[]",
                super::ratings::STARS_AMONG_POSTGRES,
                "ratings_pkey",
                "1, '{a,b}'",
            ),
            (
                "text, bytea[], bigint",
                super::addresses::USES_AMONG_POSTGRES,
                "address_uses_by_address",
                r"'poll:p', '{\\x01}', 0",
            ),
            (
                "bytea[]",
                super::idempotency::FIND_AMONG_POSTGRES,
                "idempotency_keys_pkey",
                r"'{\\x01}'",
            ),
        ] {
            sqlx::query(AssertSqlSafe(format!("prepare lookup ({types}) as {sql}")))
                .execute(&mut conn)
                .await
                .unwrap();
            let plan: Vec<String> =
                sqlx::query_scalar(AssertSqlSafe(format!("explain execute lookup ({args})")))
                    .fetch_all(&mut conn)
                    .await
                    .unwrap();
            let plan = plan.join("\n");
            assert!(
                plan.contains("Nested Loop") && plan.contains(index) && !plan.contains("Seq Scan"),
                "{sql}\n{plan}"
            );
            sqlx::query("deallocate lookup")
                .execute(&mut conn)
                .await
                .unwrap();
        }
        conn.close().await.unwrap();
        db.close().await;
        sqlx::query(AssertSqlSafe(format!("drop database {name}")))
            .execute(&mut server)
            .await
            .unwrap();
    }
}
