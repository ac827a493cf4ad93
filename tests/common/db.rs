//! The database engine the tests run on: SQLite by default, PostgreSQL when
//! `TRIBUNE_TEST_POSTGRES` holds an admin URL, such as the one
//! `.ci/postgres start` prints (`postgres://postgres@127.0.0.1:PORT/postgres`).
//!
//! - `fresh_database_url` gives each test a database of its own, on either engine;
//! - `sqlite_only` ends, loudly, a test that only makes sense on SQLite;
//! - `TestDb` is a test's own connection, on either engine, for the rows a
//!   test reads or changes behind the server's back.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use sqlx::postgres::{PgConnection, PgRow};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteRow};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, FromRow};

/// The environment variable holding a PostgreSQL admin URL; when it is set,
/// the tests run on PostgreSQL.
pub const POSTGRES_ENV: &str = "TRIBUNE_TEST_POSTGRES";

/// The admin URL of the PostgreSQL cluster the tests run on, if they do.
pub fn postgres_admin_url() -> Option<String> {
    std::env::var(POSTGRES_ENV)
        .ok()
        .filter(|url| !url.trim().is_empty())
}

/// Whether this run is the PostgreSQL pass.
pub fn on_postgres() -> bool {
    postgres_admin_url().is_some()
}

/// For a test that only makes sense on SQLite (its file, its pragmas, its
/// locks): in the PostgreSQL pass it says so on stderr and gives `true`, and
/// the test returns at once:
///
/// ```ignore
/// if common::sqlite_only("reads the SQLite file's pragmas") {
///     return;
/// }
/// ```
pub fn sqlite_only(reason: &str) -> bool {
    if !on_postgres() {
        return false;
    }
    // Straight to the process's stderr: the test harness would hide `eprintln!` of a passing test.
    let _ = writeln!(
        std::io::stderr(),
        "\n**** SQLITE ONLY ({reason}): runs in the SQLite pass ****\n"
    );
    true
}

/// For a test that only makes sense on PostgreSQL (several instances on one
/// database): in the SQLite pass it says so on stderr and gives `true`, and
/// the test returns at once.
pub fn postgres_only(reason: &str) -> bool {
    if on_postgres() {
        return false;
    }
    let _ = writeln!(
        std::io::stderr(),
        "\n**** POSTGRESQL ONLY ({reason}): runs in the PostgreSQL pass, with {POSTGRES_ENV} set ****\n"
    );
    true
}

/// PostgreSQL databases made by `fresh_database_url` in this process, each
/// with the test folder it goes with.
static MADE: Mutex<Vec<(String, PathBuf)>> = Mutex::new(Vec::new());

/// A fresh, empty database for one test, as a URL to give the server.
///
/// On SQLite it is the file `sqlite_file` (a path relative to `dir`, the
/// test's folder), which the server creates when it first opens it; the URL
/// is the one the tests have always used.
///
/// On PostgreSQL it is a new database `tribune_t_<random>` in the cluster
/// named by `TRIBUNE_TEST_POSTGRES`, with the same user and options. It lives
/// as the file would: once `dir` is gone, a later call drops it. The last few
/// of a run stay until the cluster is thrown away.
pub async fn fresh_database_url(dir: &Path, sqlite_file: &str) -> String {
    let Some(admin) = postgres_admin_url() else {
        return format!("sqlite://{}", dir.join(sqlite_file).display());
    };
    let mut conn = PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the cluster in {POSTGRES_ENV}: {e}"));
    drop_released(&mut conn).await;
    let name = format!("tribune_t_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(AssertSqlSafe(format!("create database {name}")))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("cannot create the database {name}: {e}"));
    MADE.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push((name.clone(), dir.to_owned()));
    let _ = conn.close().await;
    with_database(&admin, &name)
}

/// Drops the databases made here whose test folder is gone and that nobody
/// is connected to any more (a server may still be stopping: its database
/// is dropped by a later call).
async fn drop_released(conn: &mut PgConnection) {
    let released: Vec<(String, PathBuf)> = {
        let mut made = MADE.lock().unwrap_or_else(PoisonError::into_inner);
        let (gone, kept) = made.drain(..).partition(|(_, dir)| !dir.exists());
        *made = kept;
        gone
    };
    for (name, dir) in released {
        let sessions: Result<i64, _> =
            sqlx::query_scalar("select count(*) from pg_stat_activity where datname = $1")
                .bind(&name)
                .fetch_one(&mut *conn)
                .await;
        let dropped = matches!(sessions, Ok(0))
            && sqlx::query(AssertSqlSafe(format!("drop database if exists {name}")))
                .execute(&mut *conn)
                .await
                .is_ok();
        if !dropped {
            MADE.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((name, dir));
        }
    }
}

/// `admin` with its database (the URL's path) replaced by `name`.
pub fn with_database(admin: &str, name: &str) -> String {
    let (url, query) = match admin.split_once('?') {
        Some((url, query)) => (url, Some(query)),
        None => (admin, None),
    };
    let host_at = url
        .find("://")
        .map(|at| at + 3)
        .unwrap_or_else(|| panic!("{POSTGRES_ENV} must be a postgres:// URL"));
    let path_at = url[host_at..]
        .find('/')
        .map_or(url.len(), |at| host_at + at);
    let mut fresh = format!("{}/{name}", &url[..path_at]);
    if let Some(query) = query {
        fresh.push('?');
        fresh.push_str(query);
    }
    fresh
}

/// A value bound to one `?` of a `TestDb` statement.
#[derive(Clone, Debug)]
pub enum Arg {
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
}

impl From<i64> for Arg {
    fn from(value: i64) -> Self {
        Self::Int(value)
    }
}

impl From<i32> for Arg {
    fn from(value: i32) -> Self {
        Self::Int(value.into())
    }
}

impl From<u32> for Arg {
    fn from(value: u32) -> Self {
        Self::Int(value.into())
    }
}

impl From<&str> for Arg {
    fn from(value: &str) -> Self {
        Self::Text(value.to_owned())
    }
}

impl From<String> for Arg {
    fn from(value: String) -> Self {
        Self::Text(value)
    }
}

impl From<&[u8]> for Arg {
    fn from(value: &[u8]) -> Self {
        Self::Bytes(value.to_vec())
    }
}

/// Binds `args` to a `query` or `query_as` of either engine.
macro_rules! bind_args {
    ($query:expr, $args:expr) => {{
        let mut query = $query;
        for arg in $args {
            query = match arg {
                Arg::Int(value) => query.bind(*value),
                Arg::Text(value) => query.bind(value.clone()),
                Arg::Bytes(value) => query.bind(value.clone()),
            };
        }
        query
    }};
}

/// A test's own connection to a server's database, on either engine.
///
/// Statements are written once, with `?` for their arguments (numbered `$1`,
/// `$2`… for PostgreSQL; a `?` inside a string literal would be numbered
/// too). Write SQL both engines take: `cast(x as bigint)` where a column
/// might be a smaller integer in PostgreSQL, a bound `Arg::Bytes` rather than
/// a blob literal. Where the engines differ, `is_postgres` picks the text.
pub enum TestDb {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

/// Rows either engine can give as `T`: tuples of `i64`, `String`, `Vec<u8>`,
/// `Option<…>` of those, or a `FromRow` struct.
pub trait EitherRow:
    for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{
}

impl<T> EitherRow for T where
    T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{
}

impl TestDb {
    /// Connects to a database URL a test was given (`sqlite:` or `postgres:`).
    pub async fn connect(url: &str) -> Self {
        if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Self::Postgres(PgConnection::connect(url).await.unwrap())
        } else {
            Self::Sqlite(
                SqliteConnectOptions::from_str(url)
                    .unwrap()
                    .busy_timeout(Duration::from_secs(5))
                    .connect()
                    .await
                    .unwrap(),
            )
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Self::Postgres(_))
    }

    /// `sql` with its `?` numbered for PostgreSQL.
    fn numbered(sql: &str) -> String {
        let mut out = String::with_capacity(sql.len() + 8);
        let mut n = 0;
        for c in sql.chars() {
            if c == '?' {
                n += 1;
                out.push_str(&format!("${n}"));
            } else {
                out.push(c);
            }
        }
        out
    }

    /// Runs a statement; gives the number of rows it changed.
    pub async fn execute(&mut self, sql: &str, args: &[Arg]) -> u64 {
        let result = match self {
            Self::Sqlite(conn) => bind_args!(sqlx::query(AssertSqlSafe(sql.to_owned())), args)
                .execute(conn)
                .await
                .map(|done| done.rows_affected()),
            Self::Postgres(conn) => {
                bind_args!(sqlx::query(AssertSqlSafe(Self::numbered(sql))), args)
                    .execute(conn)
                    .await
                    .map(|done| done.rows_affected())
            }
        };
        result.unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    pub async fn fetch_all<T: EitherRow>(&mut self, sql: &str, args: &[Arg]) -> Vec<T> {
        let result = match self {
            Self::Sqlite(conn) => {
                bind_args!(sqlx::query_as::<_, T>(AssertSqlSafe(sql.to_owned())), args)
                    .fetch_all(conn)
                    .await
            }
            Self::Postgres(conn) => {
                bind_args!(
                    sqlx::query_as::<_, T>(AssertSqlSafe(Self::numbered(sql))),
                    args
                )
                .fetch_all(conn)
                .await
            }
        };
        result.unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    pub async fn fetch_one<T: EitherRow>(&mut self, sql: &str, args: &[Arg]) -> T {
        let mut rows = self.fetch_all::<T>(sql, args).await;
        assert_eq!(rows.len(), 1, "{sql}: one row");
        rows.remove(0)
    }

    /// A `select count(*) …`'s count.
    pub async fn count(&mut self, sql: &str, args: &[Arg]) -> i64 {
        self.fetch_one::<(i64,)>(sql, args).await.0
    }

    /// Holds every table of the database against writers, as another process
    /// would, until `commit`; readers go on. SQLite: `begin exclusive` on the
    /// file. PostgreSQL: every table of the schema locked `in exclusive mode`.
    pub async fn lock_writes(&mut self) {
        if self.is_postgres() {
            self.execute("begin", &[]).await;
            let tables: Vec<(String,)> = self
                .fetch_all(
                    "select quote_ident(tablename) from pg_tables \
                     where schemaname = current_schema() order by tablename",
                    &[],
                )
                .await;
            assert!(!tables.is_empty(), "the database has tables to lock");
            let tables: Vec<String> = tables.into_iter().map(|(t,)| t).collect();
            self.execute(
                &format!("lock table {} in exclusive mode", tables.join(", ")),
                &[],
            )
            .await;
            // What another instance's writer holds while it writes a batch:
            // the writer waits for these before it decides anything.
            self.execute(
                "select count(pg_advisory_xact_lock(hashtextextended(scope, 0))) from \
                 (select 'poll:' || id as scope from polls \
                  union all select 'rating:' || id from articles) as s",
                &[],
            )
            .await;
        } else {
            self.execute("begin exclusive", &[]).await;
        }
    }

    pub async fn commit(&mut self) {
        self.execute("commit", &[]).await;
    }

    /// Makes every insert into `table` for which `when` holds (an SQL
    /// condition on `new`, e.g. `new.option_id = 4`; `true` for all) fail
    /// with `message`, as a broken constraint or disk would. Undone by
    /// `allow_inserts` with the same `name`.
    pub async fn refuse_inserts(&mut self, table: &str, name: &str, when: &str, message: &str) {
        if self.is_postgres() {
            self.execute(
                &format!(
                    "create function {name}() returns trigger language plpgsql as $body$ \
                     begin if {when} then raise exception '{message}'; end if; return new; end \
                     $body$"
                ),
                &[],
            )
            .await;
            self.execute(
                &format!(
                    "create trigger {name} before insert on {table} \
                     for each row execute function {name}()"
                ),
                &[],
            )
            .await;
        } else {
            self.execute(
                &format!(
                    "create trigger {name} before insert on {table} when {when} \
                     begin select raise(abort, '{message}'); end"
                ),
                &[],
            )
            .await;
        }
    }

    pub async fn allow_inserts(&mut self, table: &str, name: &str) {
        if self.is_postgres() {
            self.execute(&format!("drop trigger {name} on {table}"), &[])
                .await;
            self.execute(&format!("drop function {name}()"), &[]).await;
        } else {
            self.execute(&format!("drop trigger {name}"), &[]).await;
        }
    }

    pub async fn close(self) {
        let _ = match self {
            Self::Sqlite(conn) => conn.close().await,
            Self::Postgres(conn) => conn.close().await,
        };
    }
}
