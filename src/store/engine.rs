//! The two engines behind `Db`: a connection, a transaction and a pool of
//! either, so that the store's functions are written once and only the SQL
//! that differs is written twice (see `on_engine!`).

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnection, PgPool};
use sqlx::sqlite::{SqliteConnection, SqlitePool};
use sqlx::{Connection, Postgres, Sqlite, Transaction};

/// Which SQL a statement is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    /// The text for this engine, of a statement written differently for each.
    pub fn pick(self, sqlite: &'static str, postgres: &'static str) -> &'static str {
        match self {
            Self::Sqlite => sqlite,
            Self::Postgres => postgres,
        }
    }
}

/// One connection of either engine, borrowed for a statement or a few.
#[derive(Debug)]
pub enum Conn<'c> {
    Sqlite(&'c mut SqliteConnection),
    Postgres(&'c mut PgConnection),
}

impl Conn<'_> {
    /// The same connection, borrowed again for a shorter while.
    pub fn reborrow(&mut self) -> Conn<'_> {
        match self {
            Self::Sqlite(c) => Conn::Sqlite(c),
            Self::Postgres(c) => Conn::Postgres(c),
        }
    }
}

/// Runs `$body` on `$conn` (a `Conn`), once written for both engines: in it,
/// `$c` is that engine's `&mut …Connection` and `$engine` its `Engine`, to
/// pick the statement's text where the engines differ.
macro_rules! on_engine {
    ($conn:expr, |$c:ident, $engine:ident| $body:expr) => {
        match $conn {
            $crate::store::Conn::Sqlite($c) => {
                #[allow(unused_variables)]
                let $engine = $crate::store::Engine::Sqlite;
                $body
            }
            $crate::store::Conn::Postgres($c) => {
                #[allow(unused_variables)]
                let $engine = $crate::store::Engine::Postgres;
                $body
            }
        }
    };
}
pub(crate) use on_engine;

/// A pool of either engine.
#[derive(Clone, Debug)]
pub enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Pool {
    pub async fn acquire(&self) -> sqlx::Result<PooledConn> {
        Ok(match self {
            Self::Sqlite(pool) => PooledConn::Sqlite(pool.acquire().await?),
            Self::Postgres(pool) => PooledConn::Postgres(pool.acquire().await?),
        })
    }

    pub async fn begin(&self) -> sqlx::Result<Tx<'static>> {
        Ok(match self {
            Self::Sqlite(pool) => Tx::Sqlite(pool.begin().await?),
            Self::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }

    pub async fn close(&self) {
        match self {
            Self::Sqlite(pool) => pool.close().await,
            Self::Postgres(pool) => pool.close().await,
        }
    }
}

/// A connection taken from a pool; back to it when dropped.
#[derive(Debug)]
pub enum PooledConn {
    Sqlite(PoolConnection<Sqlite>),
    Postgres(PoolConnection<Postgres>),
}

impl PooledConn {
    pub fn conn(&mut self) -> Conn<'_> {
        match self {
            Self::Sqlite(c) => Conn::Sqlite(c),
            Self::Postgres(c) => Conn::Postgres(c),
        }
    }
}

/// A connection of its own, outside the pool: the writer's, an export's.
#[derive(Debug)]
pub enum OwnConn {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

impl OwnConn {
    pub fn conn(&mut self) -> Conn<'_> {
        match self {
            Self::Sqlite(c) => Conn::Sqlite(c),
            Self::Postgres(c) => Conn::Postgres(c),
        }
    }

    /// A transaction that writes: on SQLite it takes the write lock at once
    /// (`begin immediate`), so that it never fails half-way for want of it.
    pub async fn begin_write(&mut self) -> sqlx::Result<Tx<'_>> {
        Ok(match self {
            Self::Sqlite(c) => Tx::Sqlite(c.begin_with("begin immediate").await?),
            Self::Postgres(c) => Tx::Postgres(c.begin().await?),
        })
    }

    /// A read-only transaction that sees one snapshot from its first read to its end.
    pub async fn begin_snapshot(&mut self) -> sqlx::Result<Tx<'_>> {
        Ok(match self {
            // A deferred transaction reads one snapshot of a WAL database.
            Self::Sqlite(c) => Tx::Sqlite(c.begin().await?),
            Self::Postgres(c) => Tx::Postgres(
                c.begin_with("begin isolation level repeatable read read only")
                    .await?,
            ),
        })
    }

    pub async fn close(self) -> sqlx::Result<()> {
        match self {
            Self::Sqlite(c) => c.close().await,
            Self::Postgres(c) => c.close().await,
        }
    }
}

/// A transaction of either engine, or a savepoint within one.
#[derive(Debug)]
pub enum Tx<'c> {
    Sqlite(Transaction<'c, Sqlite>),
    Postgres(Transaction<'c, Postgres>),
}

impl Tx<'_> {
    pub fn conn(&mut self) -> Conn<'_> {
        match self {
            Self::Sqlite(t) => Conn::Sqlite(t),
            Self::Postgres(t) => Conn::Postgres(t),
        }
    }

    /// A savepoint: rolled back alone, or committed into this transaction.
    pub async fn savepoint(&mut self) -> sqlx::Result<Tx<'_>> {
        Ok(match self {
            Self::Sqlite(t) => Tx::Sqlite(t.begin().await?),
            Self::Postgres(t) => Tx::Postgres(t.begin().await?),
        })
    }

    pub async fn commit(self) -> sqlx::Result<()> {
        match self {
            Self::Sqlite(t) => t.commit().await,
            Self::Postgres(t) => t.commit().await,
        }
    }

    pub async fn rollback(self) -> sqlx::Result<()> {
        match self {
            Self::Sqlite(t) => t.rollback().await,
            Self::Postgres(t) => t.rollback().await,
        }
    }
}
