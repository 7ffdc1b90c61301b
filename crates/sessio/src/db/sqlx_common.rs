//! What the PostgreSQL and MySQL stores share: opening the sqlx pool, bounding and
//! retrying calls, mapping driver errors to sessio's [`Error`], the migration runner and
//! clear-expired batching. Each driver module implements [`Driver`] for its sqlx database
//! (its SQL, its types, its error codes) and keeps what only it does.
//!
//! Encoding `session_data`, creating keys and merging concurrent saves are the core's
//! ([`ServerEngine`](crate::server::ServerEngine)): the stores only read and write rows.

use std::borrow::{Borrow, Cow};
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx_core::connection::Connection;
use sqlx_core::database::Database;
use sqlx_core::pool::{Pool, PoolOptions};
use sqlx_core::Url;
use time::OffsetDateTime;

use crate::clock::Clock;
use crate::config::Config;
use crate::error::{redact_url, Error, Result};

/// The pool size when the URL does not set `max_connections`.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 16;

pub(super) const ENGINE: &str = "db";
pub(super) const TABLE: &str = "django_session";
/// Migrations may wait for another migrator's lock and build indexes: more than a request.
pub(super) const MIGRATE_TIMEOUT: Duration = Duration::from_secs(60);

/// One schema change, embedded from `migrations/<database>/`.
pub(super) struct Migration {
    pub(super) version: i64,
    pub(super) name: &'static str,
    pub(super) sql: &'static str,
}

/// The connect options of a database's connections.
pub(super) type Options<DB> = <<DB as Database>::Connection as Connection>::Options;
/// A driver's own result type.
pub(super) type SqlResult<T> = std::result::Result<T, sqlx_core::Error>;

/// What differs between the databases behind the shared code: names for messages, error
/// codes, and the few statements the shared steps run.
#[async_trait]
pub(super) trait Driver: Database {
    /// The database's name in messages (`PostgreSQL`).
    const LABEL: &'static str;
    /// The URL scheme `from_pool` names the database with.
    const SCHEME: &'static str;
    /// A URL to show when one is invalid.
    const URL_EXAMPLE: &'static str;
    /// Another scheme for the same servers, and the scheme sqlx knows them by.
    const SCHEME_ALIAS: Option<(&'static str, &'static str)> = None;
    /// Every migration, in order.
    const MIGRATIONS: &'static [Migration];
    /// Creates `sessio_migrations` if needed.
    const MIGRATIONS_TABLE_SQL: &'static str;

    /// The options of a URL without sessio's own parameters; `Err` says why it is invalid.
    fn options(url: &Url) -> std::result::Result<Options<Self>, String>;
    /// User, host, port and database of a pool's options, to name it in messages.
    fn address(options: &Options<Self>) -> (&str, &str, u16, &str);
    /// Whether `e` is "no such table".
    fn table_missing(e: &sqlx_core::Error) -> bool;
    /// Whether the server's error `e` says the connection is over (beyond I/O, TLS and
    /// protocol errors, which always do).
    fn connection_ended(e: &sqlx_core::Error) -> bool;

    /// Whether `django_session` exists (where the store's queries look for it).
    async fn table_exists(conn: &mut Self::Connection) -> SqlResult<bool>;
    /// Applies the pending migrations under the migration lock, or `None` when another
    /// migrator held the lock for `lock_timeout`.
    async fn apply_migrations(
        conn: &mut Self::Connection,
        now: OffsetDateTime,
        lock_timeout: Duration,
    ) -> SqlResult<Option<Vec<&'static str>>>;
    async fn execute(conn: &mut Self::Connection, sql: &str) -> SqlResult<()>;
    /// The versions `sessio_migrations` lists.
    async fn applied_versions(conn: &mut Self::Connection) -> SqlResult<Vec<i64>>;
    /// Runs the statements of one migration.
    async fn apply(conn: &mut Self::Connection, migration: &'static Migration) -> SqlResult<()>;
    /// Records one migration as applied at `now`.
    async fn record(
        conn: &mut Self::Connection,
        migration: &'static Migration,
        now: OffsetDateTime,
    ) -> SqlResult<()>;
}

/// A store built on [`Core`], so that opening it can be shared.
pub(super) trait SqlStore: Sized {
    type Db: Driver;
    /// The store on `pool` (whose database `database` names, without its password).
    fn new(pool: Pool<Self::Db>, config: &Config, database: Arc<str>) -> Self;
    fn core(&self) -> &Core<Self::Db>;
}

/// Connects to the database that `config.database_url()` names, then checks or migrates
/// the schema.
pub(super) async fn open<E: SqlStore>(config: &Config) -> Result<E> {
    let url = config.database_url();
    let database: Arc<str> = redact_url(url).into();
    let (options, max_connections) = parse_url::<E::Db>(url, &database)?;
    let label = E::Db::LABEL;
    // One direct connection first: a refused connection or a failed login is reported
    // as such (the pool would retry a refused connection until its timeout).
    let connect = <E::Db as Database>::Connection::connect_with(&options);
    let mut conn = match tokio::time::timeout(config.store_timeout(), connect).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => {
            return Err(Error::store(
                ENGINE,
                format!(
                    "could not connect to {label} at `{database}`: check that the server \
                     is running and that the URL is right"
                ),
                e,
            ))
        }
        Err(elapsed) => {
            return Err(Error::store(
                ENGINE,
                format!(
                    "could not connect to {label} at `{database}` within {:?}",
                    config.store_timeout()
                ),
                elapsed,
            ))
        }
    };
    let pool = PoolOptions::<E::Db>::new()
        .max_connections(max_connections)
        .acquire_timeout(config.store_timeout())
        // A ping per checkout would double the round trips of every call; a connection
        // that broke (server restart) fails one call and is dropped from the pool.
        .test_before_acquire(false)
        .connect_lazy_with(options);
    let store = E::new(pool, config, database);
    let prepared = store
        .core()
        .prepare_schema(&mut conn, config.auto_migrate())
        .await;
    // The pool opens its own connections; this one was only for the checks.
    let _ = conn.close().await;
    prepared?;
    Ok(store)
}

/// The store on the application's own pool; checks or migrates the schema as [`open`]
/// does.
pub(super) async fn from_pool<E: SqlStore>(pool: Pool<E::Db>, config: &Config) -> Result<E> {
    let options = pool.connect_options();
    let (user, host, port, name) = E::Db::address(&options);
    let database: Arc<str> = format!("{}://{user}@{host}:{port}/{name}", E::Db::SCHEME).into();
    let store = E::new(pool, config, database);
    let core = store.core();
    let mut conn = core
        .bounded(
            "connecting",
            core.timeout.max(MIGRATE_TIMEOUT),
            core.pool.acquire(),
        )
        .await?;
    core.prepare_schema(&mut conn, config.auto_migrate())
        .await?;
    Ok(store)
}

/// The connect options and pool size of a URL (sessio's own `max_connections` parameter
/// removed, the rest left to sqlx).
pub(super) fn parse_url<DB: Driver>(url: &str, redacted: &str) -> Result<(Options<DB>, u32)> {
    let invalid = |why: String| {
        Error::Config(format!(
            "database URL `{redacted}` is not a valid {} URL ({why}): use {}",
            DB::LABEL,
            DB::URL_EXAMPLE
        ))
    };
    let url: Cow<'_, str> = match DB::SCHEME_ALIAS {
        Some((alias, scheme)) if url.starts_with(alias) => {
            format!("{scheme}{}", &url[alias.len()..]).into()
        }
        _ => url.into(),
    };
    let mut parsed = Url::parse(&url).map_err(|e| invalid(e.to_string()))?;
    let mut max_connections = DEFAULT_MAX_CONNECTIONS;
    let mut rest = Vec::new();
    for (name, value) in parsed.query_pairs() {
        if name == "max_connections" {
            max_connections = value.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                invalid(format!(
                    "max_connections `{value}` is not a positive number"
                ))
            })?;
        } else {
            rest.push((name.into_owned(), value.into_owned()));
        }
    }
    if rest.is_empty() {
        parsed.set_query(None);
    } else {
        parsed.query_pairs_mut().clear().extend_pairs(rest);
    }
    let options = DB::options(&parsed).map_err(invalid)?;
    Ok((options, max_connections))
}

/// Records and applies what `sessio_migrations` does not list yet (the caller holds the
/// migration lock).
pub(super) async fn apply_pending<DB: Driver>(
    conn: &mut DB::Connection,
    now: OffsetDateTime,
) -> SqlResult<Vec<&'static str>> {
    DB::execute(conn, DB::MIGRATIONS_TABLE_SQL).await?;
    if !DB::table_exists(conn).await? {
        // The history is stale (say, Django's `migrate sessions zero` dropped the table):
        // start again from the first migration.
        DB::execute(conn, "DELETE FROM sessio_migrations").await?;
    }
    let done = DB::applied_versions(conn).await?;
    let mut applied = Vec::new();
    for m in DB::MIGRATIONS.iter().filter(|m| !done.contains(&m.version)) {
        DB::apply(conn, m).await?;
        DB::record(conn, m, now).await?;
        applied.push(m.name);
    }
    Ok(applied)
}

/// Whether `e` means the connection is unusable (closed by a server restart, say) rather
/// than that the statement failed: worth another try on another connection.
pub(super) fn broken_connection<DB: Driver>(e: &sqlx_core::Error) -> bool {
    match e {
        sqlx_core::Error::Io(_) | sqlx_core::Error::Tls(_) | sqlx_core::Error::Protocol(_) => true,
        _ => DB::connection_ended(e),
    }
}

/// Runs `f`, and again (up to once per pooled connection) while it fails on a broken
/// connection: a connection that broke while idle in the pool (the server restarted, say)
/// fails the call immediately; sqlx then drops it, and the call goes to another.
pub(super) async fn retry<DB: Driver, T, F, Fut>(pool: &Pool<DB>, f: F) -> SqlResult<T>
where
    F: Fn() -> Fut,
    Fut: Future<Output = SqlResult<T>>,
{
    let tries = pool.options().get_max_connections() + 1;
    let mut result = f().await;
    for _ in 1..tries {
        match &result {
            Err(e) if broken_connection::<DB>(e) => result = f().await,
            _ => break,
        }
    }
    result
}

/// Runs one store call within `limit`, mapping its errors (`timeout` is the store timeout,
/// for messages).
pub(super) async fn within<DB: Driver, T>(
    database: &str,
    timeout: Duration,
    what: &str,
    limit: Duration,
    call: impl Future<Output = SqlResult<T>>,
) -> Result<T> {
    match tokio::time::timeout(limit, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(sql_error::<DB, _>(database, timeout, what, e)),
        Err(elapsed) => Err(Error::store(
            ENGINE,
            timed_out::<DB>(what, limit, database),
            elapsed,
        )),
    }
}

/// The message of a call that took longer than `timeout`.
pub(super) fn timed_out<DB: Driver>(what: &str, timeout: Duration, database: &str) -> String {
    format!(
        "{what} timed out after {timeout:?} on {} database `{database}`",
        DB::LABEL
    )
}

/// Maps a driver error: a missing table is the schema's absence, anything else a store
/// failure with the driver error as its source.
pub(super) fn sql_error<DB: Driver, E>(database: &str, timeout: Duration, what: &str, e: E) -> Error
where
    E: Borrow<sqlx_core::Error> + std::error::Error + Send + Sync + 'static,
{
    if DB::table_missing(e.borrow()) {
        return schema_missing(database);
    }
    let label = DB::LABEL;
    let message = match e.borrow() {
        sqlx_core::Error::PoolTimedOut => format!(
            "{what} failed on {label} database `{database}`: no connection within \
             {timeout:?} (server down or unreachable, or every connection busy)"
        ),
        _ => format!("{what} failed on {label} database `{database}`"),
    };
    Error::store(ENGINE, message, e)
}

fn schema_missing(database: &str) -> Error {
    Error::SchemaMissing {
        table: TABLE.into(),
        database: database.into(),
    }
}

/// The pool and settings every call of a store uses.
pub(super) struct Core<DB: Database> {
    pub(super) pool: Pool<DB>,
    /// The URL with any password hidden, for messages.
    pub(super) database: Arc<str>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) timeout: Duration,
}

impl<DB: Driver> Core<DB> {
    pub(super) fn new(pool: Pool<DB>, config: &Config, database: Arc<str>) -> Self {
        Self {
            pool,
            database,
            clock: config.clock().clone(),
            timeout: config.store_timeout(),
        }
    }

    /// The store's `Debug`: its database, pool size and timeout.
    pub(super) fn debug(&self, f: &mut fmt::Formatter<'_>, name: &str) -> fmt::Result {
        f.debug_struct(name)
            .field("database", &self.database)
            .field("connections", &self.pool.size())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }

    /// Migrates, or checks that the table is there.
    pub(super) async fn prepare_schema(
        &self,
        conn: &mut DB::Connection,
        auto_migrate: bool,
    ) -> Result<()> {
        if auto_migrate {
            return self.migrate_on(conn).await;
        }
        let exists = self
            .bounded("checking the schema", self.timeout, DB::table_exists(conn))
            .await?;
        if exists {
            Ok(())
        } else {
            Err(schema_missing(&self.database))
        }
    }

    /// `sessio migrate`: applies the pending migrations on a pooled connection.
    pub(super) async fn migrate(&self) -> Result<()> {
        let mut conn = self
            .bounded("connecting", self.timeout, self.pool.acquire())
            .await?;
        self.migrate_on(&mut conn).await
    }

    /// Applies the pending migrations under the migration lock.
    async fn migrate_on(&self, conn: &mut DB::Connection) -> Result<()> {
        let timeout = self.timeout.max(MIGRATE_TIMEOUT);
        let work = DB::apply_migrations(conn, self.clock.now(), timeout);
        let Some(applied) = self.bounded("applying migrations", timeout, work).await? else {
            return Err(Error::Store {
                engine: ENGINE,
                message: format!(
                    "another process held the migration lock of {} database `{}` for {timeout:?}",
                    DB::LABEL,
                    self.database
                ),
                source: None,
            });
        };
        for name in applied {
            tracing::info!(database = %self.database, migration = name, "applied session migration");
        }
        Ok(())
    }

    /// Runs one call on the pool within the timeout, mapping its errors; a broken
    /// connection is replaced and the call tried again (see [`retry`]).
    pub(super) async fn call<T, F, Fut>(&self, what: &str, f: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = SqlResult<T>>,
    {
        self.bounded(what, self.timeout, retry(&self.pool, f)).await
    }

    /// Runs one store call within `timeout`, mapping its errors.
    pub(super) async fn bounded<T>(
        &self,
        what: &str,
        timeout: Duration,
        call: impl Future<Output = SqlResult<T>>,
    ) -> Result<T> {
        within::<DB, T>(&self.database, self.timeout, what, timeout, call).await
    }

    /// A call that did not finish within the store timeout.
    pub(super) fn timed_out(&self, what: &str, elapsed: tokio::time::error::Elapsed) -> Error {
        Error::store(
            ENGINE,
            timed_out::<DB>(what, self.timeout, &self.database),
            elapsed,
        )
    }

    /// Counts the expired rows with `count` (given "now").
    pub(super) async fn count_expired<F, Fut>(&self, count: F) -> Result<Option<u64>>
    where
        F: Fn(OffsetDateTime) -> Fut,
        Fut: Future<Output = SqlResult<i64>>,
    {
        let now = self.clock.now();
        let n = self
            .call("counting expired sessions", || count(now))
            .await?;
        Ok(Some(u64::try_from(n).unwrap_or(0)))
    }

    /// Deletes at most `limit` expired rows with `delete` (given "now" and the limit), and
    /// says how many it deleted.
    pub(super) async fn clear_expired_batch<F, Fut>(&self, limit: usize, delete: F) -> Result<u64>
    where
        F: Fn(OffsetDateTime, usize) -> Fut,
        Fut: Future<Output = SqlResult<u64>>,
    {
        if limit == 0 {
            return Ok(0);
        }
        let now = self.clock.now();
        self.call("deleting expired sessions", || delete(now, limit))
            .await
    }
}
