//! The `db` engine on MySQL and MariaDB, in Django's `django_session` layout.
//!
//! Django and sessio can share the table: same columns, same `session_data` format,
//! `expire_date` as naive UTC `datetime(6)` (what Django writes with `USE_TZ = True`).
//!
//! # Design
//!
//! * **A sqlx pool** ([`MySqlPool`]), opened from the URL or handed over by the application
//!   ([`MySqlEngine::from_pool`]). sqlx prepares each statement once per connection and
//!   reconnects by itself when the server comes back.
//! * **Every call is bounded** by [`Config::store_timeout`]: waiting for a connection, and
//!   the query itself. A timeout or a broken connection is [`Error::Store`], which the
//!   middleware answers with 503.
//! * **The clock is sessio's**, never the server's `NOW()`: "now" is always a bound
//!   parameter, so expiry follows [`Config::clock`] (and tests can move time).
//! * **An unchanged save is still a save.** MySQL counts only *changed* rows by default,
//!   so an UPDATE writing the values already there would look like a deleted session.
//!   sqlx always connects with `CLIENT_FOUND_ROWS`, which makes UPDATE count the rows it
//!   *matched*; that holds for pools handed over by the application too. The same goes
//!   for a conditional save (`save_changes_from`) writing back the very value it read.
//! * **Migrations** are embedded `.sql` files under `migrations/mysql/`, applied in order
//!   under a named lock (`GET_LOCK`), and recorded in `sessio_migrations`. MySQL has no
//!   `CREATE INDEX IF NOT EXISTS`: an index is created only when `information_schema`
//!   does not list it yet, so the migration also runs on a table Django created.
//!
//! # URLs
//!
//! `mysql://user:password@host:3306/database` or `mariadb://…`, with sqlx's query
//! parameters (`ssl-mode`, `charset`, …). sessio adds `max_connections=N`, the size of the
//! pool (default [`DEFAULT_MAX_CONNECTIONS`]).

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx_core::connection::{ConnectOptions, Connection};
use sqlx_core::executor::Executor;
use sqlx_core::query::query;
use sqlx_core::query_scalar::query_scalar;
use sqlx_core::row::Row;
use sqlx_core::Url;
use sqlx_mysql::{
    MySqlConnectOptions, MySqlConnection, MySqlDatabaseError, MySqlPool, MySqlPoolOptions,
};
use time::{OffsetDateTime, PrimitiveDateTime};

use crate::clock::Clock;
use crate::config::Config;
use crate::engine::{Changes, LoadedSession, Saved, SessionData, SessionEngine, Version};
use crate::error::{redact_url, Error, LogId, Result};
use sessio_django::codec::StoreCodec;

/// The pool size when the URL does not set `max_connections`.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 16;

const ENGINE: &str = "db";
const TABLE: &str = "django_session";
/// Session keys tried before `create` gives up (Django retries forever).
const CREATE_ATTEMPTS: u32 = 100;
/// Migrations may wait for another migrator's lock and build indexes: more than a request.
const MIGRATE_TIMEOUT: Duration = Duration::from_secs(60);
/// `ER_NO_SUCH_TABLE`.
const NO_SUCH_TABLE: u16 = 1146;
/// `ER_DUP_ENTRY`.
const DUPLICATE_ENTRY: u16 = 1062;

/// One schema change, embedded from `migrations/mysql/`.
struct Migration {
    version: i64,
    name: &'static str,
    sql: &'static str,
}

/// Every migration, in order. Append new ones; never edit an applied one. Each must also
/// apply cleanly on a database where Django created the table.
const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "0001_django_session",
    sql: include_str!("../../migrations/mysql/0001_django_session.sql"),
}];

const MIGRATIONS_TABLE_SQL: &str = "CREATE TABLE IF NOT EXISTS sessio_migrations \
     (version BIGINT NOT NULL PRIMARY KEY, name VARCHAR(255) NOT NULL, applied_at DATETIME(6) NOT NULL)";
// One lock per database, held by the migrating connection (MySQL DDL cannot run in a
// transaction, so the lock is what keeps two migrators apart).
const LOCK_SQL: &str = "SELECT GET_LOCK(CONCAT('sessio_migrate.', DATABASE()), ?)";
const UNLOCK_SQL: &str = "SELECT RELEASE_LOCK(CONCAT('sessio_migrate.', DATABASE()))";
const TABLE_EXISTS_SQL: &str = "SELECT COUNT(*) FROM information_schema.tables \
     WHERE table_schema = DATABASE() AND table_name = ?";
const INDEX_EXISTS_SQL: &str = "SELECT COUNT(*) FROM information_schema.statistics \
     WHERE table_schema = DATABASE() AND table_name = ? AND index_name = ?";
const LOAD_SQL: &str =
    "SELECT session_data FROM django_session WHERE session_key = ? AND expire_date > ?";
const EXISTS_SQL: &str = "SELECT 1 FROM django_session WHERE session_key = ?";
const COUNT_EXPIRED_SQL: &str = "SELECT COUNT(*) FROM django_session WHERE expire_date < ?";
const INSERT_SQL: &str =
    "INSERT INTO django_session (session_key, session_data, expire_date) VALUES (?, ?, ?)";
const UPDATE_SQL: &str =
    "UPDATE django_session SET session_data = ?, expire_date = ? WHERE session_key = ?";
// A save nothing raced: only if the row still holds the data its request read. Compared
// as bytes: the table's collation may ignore case (and trailing spaces), so two different
// values could compare equal as text.
const UPDATE_IF_SQL: &str = "UPDATE django_session SET session_data = ?, expire_date = ? \
     WHERE session_key = ? AND CAST(session_data AS BINARY) = CAST(? AS BINARY)";
const DELETE_SQL: &str = "DELETE FROM django_session WHERE session_key = ?";
// The row lock taken by a merging save: concurrent merges of one session queue here.
const LOCK_ROW_SQL: &str =
    "SELECT session_data FROM django_session WHERE session_key = ? FOR UPDATE";
// LIMIT bounds the work (and the locks) of one statement.
const CLEAR_EXPIRED_SQL: &str = "DELETE FROM django_session WHERE expire_date < ? LIMIT ?";

/// Sessions in a MySQL or MariaDB `django_session` table.
///
/// Cheap to share behind an `Arc`; the pool inside is shared by clones of the
/// [`MySqlPool`].
pub struct MySqlEngine {
    pool: MySqlPool,
    /// The URL with any password hidden, for messages.
    database: Arc<str>,
    codec: StoreCodec,
    clock: Arc<dyn Clock>,
    timeout: Duration,
}

impl fmt::Debug for MySqlEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MySqlEngine")
            .field("database", &self.database)
            .field("connections", &self.pool.size())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl MySqlEngine {
    /// Connects to the database that `config.database_url()` names.
    ///
    /// With `auto_migrate` it creates the schema as needed; without, a database lacking the
    /// `django_session` table is [`Error::SchemaMissing`]. A server that cannot be reached
    /// within [`Config::store_timeout`] is [`Error::Store`], naming the URL (without its
    /// password).
    pub async fn open(config: &Config) -> Result<Self> {
        let url = config.database_url();
        let database: Arc<str> = redact_url(url).into();
        let (options, max_connections) = parse_url(url, &database)?;
        // One direct connection first: a refused connection or a failed login is reported
        // as such (the pool would retry a refused connection until its timeout).
        let connect = options.connect();
        let mut conn = match tokio::time::timeout(config.store_timeout(), connect).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => {
                return Err(Error::store(
                    ENGINE,
                    format!(
                        "could not connect to MySQL at `{database}`: check that the server \
                         is running and that the URL is right"
                    ),
                    e,
                ))
            }
            Err(elapsed) => {
                return Err(Error::store(
                    ENGINE,
                    format!(
                        "could not connect to MySQL at `{database}` within {:?}",
                        config.store_timeout()
                    ),
                    elapsed,
                ))
            }
        };
        let pool = MySqlPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(config.store_timeout())
            // A ping per checkout would double the round trips of every call; a connection
            // that broke (server restart) fails one call and is dropped from the pool.
            .test_before_acquire(false)
            .connect_lazy_with(options);
        let engine = Self::new(pool, config, database);
        let prepared = engine
            .prepare_schema(&mut conn, config.auto_migrate())
            .await;
        // The pool opens its own connections; this one was only for the checks.
        let _ = conn.close().await;
        prepared?;
        Ok(engine)
    }

    /// Uses the application's own pool (its size, TLS and timeouts stay as configured;
    /// every call is still bounded by [`Config::store_timeout`]).
    ///
    /// `config.database_url()` is not used. Checks or migrates the schema as
    /// [`open`](Self::open) does.
    pub async fn from_pool(pool: MySqlPool, config: &Config) -> Result<Self> {
        let options = pool.connect_options();
        let database: Arc<str> = format!(
            "mysql://{}@{}:{}/{}",
            options.get_username(),
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or_default()
        )
        .into();
        let engine = Self::new(pool, config, database);
        let mut conn = engine
            .bounded(
                "connecting",
                engine.timeout.max(MIGRATE_TIMEOUT),
                engine.pool.acquire(),
            )
            .await?;
        engine
            .prepare_schema(&mut conn, config.auto_migrate())
            .await?;
        Ok(engine)
    }

    fn new(pool: MySqlPool, config: &Config, database: Arc<str>) -> Self {
        Self {
            pool,
            database,
            codec: config.store_codec(),
            clock: config.clock().clone(),
            timeout: config.store_timeout(),
        }
    }

    /// The pool, for the application's own queries.
    pub fn pool(&self) -> &MySqlPool {
        &self.pool
    }

    /// Migrates, or checks that the table is there.
    async fn prepare_schema(&self, conn: &mut MySqlConnection, auto_migrate: bool) -> Result<()> {
        if auto_migrate {
            return self.migrate_on(conn).await;
        }
        let found: i64 = self
            .bounded(
                "checking the schema",
                self.timeout,
                query_scalar(TABLE_EXISTS_SQL)
                    .bind(TABLE)
                    .fetch_one(&mut *conn),
            )
            .await?;
        if found > 0 {
            Ok(())
        } else {
            Err(self.schema_missing())
        }
    }

    /// Applies the pending migrations under the migration lock.
    async fn migrate_on(&self, conn: &mut MySqlConnection) -> Result<()> {
        let now = naive_utc(self.clock.now());
        let timeout = self.timeout.max(MIGRATE_TIMEOUT);
        let work = async {
            let locked: Option<i64> = query_scalar(LOCK_SQL)
                .bind(i64::try_from(timeout.as_secs()).unwrap_or(60))
                .fetch_one(&mut *conn)
                .await?;
            if locked != Some(1) {
                return Ok(Err(Error::Store {
                    engine: ENGINE,
                    message: format!(
                        "another process held the migration lock of MySQL database `{}` \
                         for {timeout:?}",
                        self.database
                    ),
                    source: None,
                }));
            }
            let applied = apply_migrations(&mut *conn, now).await;
            // Released even when a migration failed (closing the connection would too).
            let unlocked = conn.execute(UNLOCK_SQL).await;
            let applied = applied?;
            unlocked?;
            Ok(Ok(applied))
        };
        let applied = self.bounded("applying migrations", timeout, work).await??;
        for name in applied {
            tracing::info!(database = %self.database, migration = name, "applied session migration");
        }
        Ok(())
    }

    /// Runs one call on the pool within the timeout, mapping its errors. A connection
    /// that broke while idle in the pool (the server restarted, say) fails the call
    /// immediately; sqlx then drops it, and the call is tried again on another.
    async fn call<T, F, Fut>(&self, what: &str, f: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = std::result::Result<T, sqlx_core::Error>>,
    {
        let tries = self.pool.options().get_max_connections() + 1;
        let attempts = async {
            let mut result = f().await;
            for _ in 1..tries {
                match &result {
                    Err(e) if broken_connection(e) => result = f().await,
                    _ => break,
                }
            }
            result
        };
        self.bounded(what, self.timeout, attempts).await
    }

    /// Runs one store call within the timeout, mapping its errors.
    async fn bounded<T>(
        &self,
        what: &str,
        timeout: Duration,
        call: impl Future<Output = std::result::Result<T, sqlx_core::Error>>,
    ) -> Result<T> {
        match tokio::time::timeout(timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(self.sql_error(what, e)),
            Err(elapsed) => Err(Error::store(
                ENGINE,
                format!(
                    "{what} timed out after {timeout:?} on MySQL database `{}`",
                    self.database
                ),
                elapsed,
            )),
        }
    }

    /// Maps a driver error: a missing table is the schema's absence, anything else a store
    /// failure with the driver error as its source.
    fn sql_error(&self, what: &str, e: sqlx_core::Error) -> Error {
        if error_number(&e) == Some(NO_SUCH_TABLE) {
            return self.schema_missing();
        }
        let message = match &e {
            sqlx_core::Error::PoolTimedOut => format!(
                "{what} failed on MySQL database `{}`: no connection within {:?} \
                 (server down or unreachable, or every connection busy)",
                self.database, self.timeout
            ),
            _ => format!("{what} failed on MySQL database `{}`", self.database),
        };
        Error::store(ENGINE, message, e)
    }

    fn schema_missing(&self) -> Error {
        Error::SchemaMissing {
            table: TABLE.into(),
            database: self.database.to_string(),
        }
    }

    fn encode(&self, data: &SessionData) -> String {
        self.codec.encode(data, self.clock.now().unix_timestamp())
    }

    fn encode_shared(&self, data: &Arc<SessionData>) -> String {
        self.codec
            .encode_shared(data, self.clock.now().unix_timestamp())
    }

    /// Django's `SessionBase.decode`: data that does not verify or parse is an empty
    /// session (with a warning), never an error.
    fn decode(&self, key: &str, text: Option<String>) -> std::sync::Arc<SessionData> {
        self.codec
            .decode_or_empty(text.as_deref(), &LogId(key))
            .data
    }
}

/// Records and applies what `sessio_migrations` does not list yet (the caller holds the
/// migration lock).
async fn apply_migrations(
    conn: &mut MySqlConnection,
    now: PrimitiveDateTime,
) -> std::result::Result<Vec<&'static str>, sqlx_core::Error> {
    conn.execute(MIGRATIONS_TABLE_SQL).await?;
    let table: i64 = query_scalar(TABLE_EXISTS_SQL)
        .bind(TABLE)
        .fetch_one(&mut *conn)
        .await?;
    if table == 0 {
        // The history is stale (say, Django's `migrate sessions zero` dropped the table):
        // start again from the first migration.
        conn.execute("DELETE FROM sessio_migrations").await?;
    }
    let done: Vec<i64> = query_scalar("SELECT version FROM sessio_migrations")
        .fetch_all(&mut *conn)
        .await?;
    let mut applied = Vec::new();
    for m in MIGRATIONS.iter().filter(|m| !done.contains(&m.version)) {
        for statement in statements(m.sql) {
            if let Some((index, table)) = created_index(statement) {
                let found: i64 = query_scalar(INDEX_EXISTS_SQL)
                    .bind(table)
                    .bind(index)
                    .fetch_one(&mut *conn)
                    .await?;
                if found > 0 {
                    continue;
                }
            }
            conn.execute(statement).await?;
        }
        query("INSERT INTO sessio_migrations (version, name, applied_at) VALUES (?, ?, ?)")
            .bind(m.version)
            .bind(m.name)
            .bind(now)
            .execute(&mut *conn)
            .await?;
        applied.push(m.name);
    }
    Ok(applied)
}

/// The statements of a migration file: `--` comment lines dropped, split at `;` line ends.
fn statements(sql: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = None;
    let mut offset = 0;
    for line in sql.split_inclusive('\n') {
        let trimmed = line.trim();
        if start.is_none() && !trimmed.is_empty() && !trimmed.starts_with("--") {
            start = Some(offset);
        }
        offset += line.len();
        if let Some(s) = start {
            if trimmed.ends_with(';') {
                let statement = sql[s..offset].trim();
                out.push(statement.trim_end_matches(';').trim_end());
                start = None;
            }
        }
    }
    if let Some(s) = start {
        out.push(sql[s..].trim());
    }
    out
}

/// The index and table of a `CREATE INDEX `index` ON `table` …` statement.
fn created_index(statement: &str) -> Option<(&str, &str)> {
    let rest = statement.strip_prefix("CREATE INDEX `")?;
    let (index, rest) = rest.split_once('`')?;
    let rest = rest.trim_start().strip_prefix("ON `")?;
    let (table, _) = rest.split_once('`')?;
    Some((index, table))
}

/// Whether `e` means the connection is unusable (closed by a server restart, say) rather
/// than that the statement failed: worth another try on another connection.
fn broken_connection(e: &sqlx_core::Error) -> bool {
    matches!(
        e,
        sqlx_core::Error::Io(_) | sqlx_core::Error::Tls(_) | sqlx_core::Error::Protocol(_)
    )
}

fn error_number(e: &sqlx_core::Error) -> Option<u16> {
    e.as_database_error()
        .and_then(|d| d.try_downcast_ref::<MySqlDatabaseError>())
        .map(MySqlDatabaseError::number)
}

#[async_trait]
impl SessionEngine for MySqlEngine {
    fn name(&self) -> &'static str {
        ENGINE
    }

    fn is_client_side(&self) -> bool {
        false
    }

    async fn load(&self, key: &str) -> Result<Option<SessionData>> {
        Ok(self
            .load_session(key)
            .await?
            .map(|s| std::sync::Arc::unwrap_or_clone(s.data)))
    }

    async fn load_session(&self, key: &str) -> Result<Option<LoadedSession>> {
        let now = naive_utc(self.clock.now());
        let row = self
            .call("loading a session", || {
                query(LOAD_SQL)
                    .bind(key)
                    .bind(now)
                    .fetch_optional(&self.pool)
            })
            .await?;
        Ok(row.map(|row| {
            let text = row.try_get::<String, _>(0).ok();
            // The text as read is the version: a save from it is one conditional UPDATE.
            let version = text.as_deref().map(Version::stored);
            LoadedSession {
                data: self.decode(key, text),
                stale_key: false,
                version,
            }
        }))
    }

    async fn create(&self, data: &SessionData, expires: OffsetDateTime) -> Result<String> {
        let data = self.encode(data);
        let expires = naive_utc(expires);
        let attempts = async {
            // Connections that broke while idle in the pool are replaced, not reported.
            let mut broken = 0;
            let tries = self.pool.options().get_max_connections();
            for _ in 0..CREATE_ATTEMPTS {
                let key = crate::key::new_session_key()?;
                // A plain INSERT, not INSERT IGNORE: IGNORE would also turn other errors
                // (say, a value too long) into warnings and a silently missing row.
                let inserted = query(INSERT_SQL)
                    .bind(&key)
                    .bind(&data)
                    .bind(expires)
                    .execute(&self.pool)
                    .await;
                match inserted {
                    Ok(_) => return Ok(key),
                    Err(e) if error_number(&e) == Some(DUPLICATE_ENTRY) => continue,
                    Err(e) if broken_connection(&e) && broken < tries => broken += 1,
                    Err(e) => return Err(self.sql_error("creating a session", e)),
                }
            }
            Err(Error::KeyCreation {
                attempts: CREATE_ATTEMPTS,
            })
        };
        match tokio::time::timeout(self.timeout, attempts).await {
            Ok(result) => result,
            Err(elapsed) => Err(Error::store(
                ENGINE,
                format!(
                    "creating a session timed out after {:?} on MySQL database `{}`",
                    self.timeout, self.database
                ),
                elapsed,
            )),
        }
    }

    async fn save(&self, key: &str, data: &SessionData, expires: OffsetDateTime) -> Result<String> {
        let data = self.encode(data);
        let updated = self
            .call("saving a session", || {
                query(UPDATE_SQL)
                    .bind(&data)
                    .bind(naive_utc(expires))
                    .bind(key)
                    .execute(&self.pool)
            })
            .await?
            .rows_affected();
        // Django's `save(must_create=False)`: UPDATE only. No row means a concurrent
        // request deleted the session (logout), which must not be undone by inserting it.
        // (CLIENT_FOUND_ROWS: an unchanged row still counts, see the module docs.)
        if updated == 0 {
            return Err(Error::SessionInterrupted);
        }
        Ok(key.to_owned())
    }

    async fn insert(&self, key: &str, data: &SessionData, expires: OffsetDateTime) -> Result<bool> {
        let data = self.encode(data);
        let inserted = tokio::time::timeout(
            self.timeout,
            query(INSERT_SQL)
                .bind(key)
                .bind(&data)
                .bind(naive_utc(expires))
                .execute(&self.pool),
        )
        .await;
        match inserted {
            Ok(Ok(_)) => Ok(true),
            Ok(Err(e)) if error_number(&e) == Some(DUPLICATE_ENTRY) => Ok(false),
            Ok(Err(e)) => Err(self.sql_error("creating a session", e)),
            Err(elapsed) => Err(Error::store(
                ENGINE,
                format!(
                    "creating a session timed out after {:?} on MySQL database `{}`",
                    self.timeout, self.database
                ),
                elapsed,
            )),
        }
    }

    /// Reads the row with a row lock (`SELECT ... FOR UPDATE`), applies the changes and
    /// writes it back in one transaction: concurrent merges of one session serialise on the
    /// row instead of overwriting each other.
    async fn save_changes(
        &self,
        key: &str,
        changes: &Changes,
        expires: OffsetDateTime,
    ) -> Result<(String, SessionData)> {
        let merge = async {
            let mut tx = self.pool.begin().await?;
            let row = query(LOCK_ROW_SQL)
                .bind(key)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(row) = row else {
                tx.rollback().await?;
                return Ok(None);
            };
            let mut data =
                std::sync::Arc::unwrap_or_clone(self.decode(key, row.try_get::<String, _>(0).ok()));
            changes.apply(&mut data);
            query(UPDATE_SQL)
                .bind(self.encode(&data))
                .bind(naive_utc(expires))
                .bind(key)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Some(data))
        };
        match self
            .bounded("saving a session", self.timeout, merge)
            .await?
        {
            Some(data) => Ok((key.to_owned(), data)),
            // Deleted by a concurrent logout: it stays deleted.
            None => Err(Error::SessionInterrupted),
        }
    }

    /// One autocommit conditional UPDATE (`… AND session_data = <what the request read>`),
    /// falling back to the locked merge of [`save_changes`](Self::save_changes) when it
    /// matches no row: another write came first, or the session is gone (the merge tells
    /// which, and never recreates it). Rows are counted as matched (`CLIENT_FOUND_ROWS`),
    /// so writing back unchanged data still counts as done.
    async fn save_changes_from(
        &self,
        key: &str,
        base: &Version,
        data: &Arc<SessionData>,
        changes: &Changes,
        expires: OffsetDateTime,
    ) -> Result<Saved> {
        if let Some(old) = base.as_stored() {
            let new = self.encode_shared(data);
            let updated = self
                .call("saving a session", || {
                    query(UPDATE_IF_SQL)
                        .bind(&new)
                        .bind(naive_utc(expires))
                        .bind(key)
                        .bind(old)
                        .execute(&self.pool)
                })
                .await?
                .rows_affected();
            if updated == 1 {
                return Ok(Saved {
                    cookie: key.to_owned(),
                    merged: None,
                    version: Some(Version::stored(new)),
                });
            }
        }
        let (cookie, merged) = self.save_changes(key, changes, expires).await?;
        Ok(Saved {
            cookie,
            merged: Some(merged),
            version: None,
        })
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.call("deleting a session", || {
            query(DELETE_SQL).bind(key).execute(&self.pool)
        })
        .await?;
        Ok(())
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        let row = self
            .call("checking whether a session exists", || {
                query(EXISTS_SQL).bind(key).fetch_optional(&self.pool)
            })
            .await?;
        Ok(row.is_some())
    }

    async fn count_expired(&self) -> Result<Option<u64>> {
        let n: i64 = self
            .call("counting expired sessions", || {
                query_scalar(COUNT_EXPIRED_SQL)
                    .bind(naive_utc(self.clock.now()))
                    .fetch_one(&self.pool)
            })
            .await?;
        Ok(Some(u64::try_from(n).unwrap_or(0)))
    }

    async fn clear_expired_batch(&self, limit: usize) -> Result<u64> {
        if limit == 0 {
            return Ok(0);
        }
        let limit = u64::try_from(limit).unwrap_or(u64::MAX);
        let done = self
            .call("deleting expired sessions", || {
                query(CLEAR_EXPIRED_SQL)
                    .bind(naive_utc(self.clock.now()))
                    .bind(limit)
                    .execute(&self.pool)
            })
            .await?;
        Ok(done.rows_affected())
    }

    async fn migrate(&self) -> Result<()> {
        let mut conn = self
            .bounded("connecting", self.timeout, self.pool.acquire())
            .await?;
        self.migrate_on(&mut conn).await
    }
}

/// `expire_date` as Django stores it on MySQL with `USE_TZ = True`: naive UTC, to the
/// microsecond. Times before year 1 (which Python cannot represent) become its start.
///
/// ```
/// use sessio::db::mysql::naive_utc;
/// use time::macros::datetime;
///
/// assert_eq!(
///     naive_utc(datetime!(2026-12-10 13:41:23.537181999 +01:00)),
///     datetime!(2026-12-10 12:41:23.537181)
/// );
/// ```
pub fn naive_utc(at: OffsetDateTime) -> PrimitiveDateTime {
    const START: PrimitiveDateTime = time::macros::datetime!(0001-01-01 00:00);
    // Through the Unix timestamp: converting to UTC cannot panic at the edges of the range.
    let micros = at.unix_timestamp_nanos().div_euclid(1_000) * 1_000;
    match OffsetDateTime::from_unix_timestamp_nanos(micros) {
        Ok(utc) if utc.year() >= 1 => PrimitiveDateTime::new(utc.date(), utc.time()),
        _ => START,
    }
}

/// The connect options and pool size of a `mysql://` or `mariadb://` URL (sessio's own
/// `max_connections` parameter removed, the rest left to sqlx).
fn parse_url(url: &str, redacted: &str) -> Result<(MySqlConnectOptions, u32)> {
    let invalid = |why: String| {
        Error::Config(format!(
            "database URL `{redacted}` is not a valid MySQL URL ({why}): use \
             mysql://user:password@host:3306/database"
        ))
    };
    let url = match url.strip_prefix("mariadb://") {
        Some(rest) => format!("mysql://{rest}"),
        None => url.to_owned(),
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
    let options = MySqlConnectOptions::from_url(&parsed).map_err(|e| invalid(e.to_string()))?;
    if options.get_database().is_none_or(str::is_empty) {
        return Err(invalid("it names no database".into()));
    }
    Ok((options, max_connections))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn urls() {
        let (o, n) = parse_url("mysql://u:p@db.example:3307/app", "x").unwrap();
        assert_eq!((o.get_host(), o.get_port(), n), ("db.example", 3307, 16));
        assert_eq!(o.get_database(), Some("app"));
        let (o, n) = parse_url("mariadb://u@h/app?max_connections=3&charset=utf8mb4", "x").unwrap();
        assert_eq!((o.get_database(), n), (Some("app"), 3));
        for bad in [
            "mysql://u@h/app?max_connections=0",
            "mysql://u@h/",
            "mysql://u@h",
        ] {
            assert!(
                matches!(parse_url(bad, "x"), Err(Error::Config(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn migration_statements() {
        let sql = MIGRATIONS[0].sql;
        let all = statements(sql);
        assert_eq!(all.len(), 2, "{all:?}");
        assert!(all[0].starts_with("CREATE TABLE IF NOT EXISTS `django_session`"));
        assert!(all[0].ends_with("NOT NULL)"));
        assert_eq!(
            created_index(all[1]),
            Some(("django_session_expire_date_a5c62663", "django_session"))
        );
        assert_eq!(created_index(all[0]), None);
        assert_eq!(statements("-- only\n\n"), Vec::<&str>::new());
        assert_eq!(statements("A;\nB\n;\nC"), vec!["A", "B", "C"]);
    }

    #[test]
    fn expire_dates_are_naive_utc_microseconds() {
        assert_eq!(
            naive_utc(datetime!(2023-11-28 22:13:20 UTC)),
            datetime!(2023-11-28 22:13:20)
        );
        assert_eq!(
            naive_utc(datetime!(2026-01-01 00:00:00.000001999 UTC)),
            datetime!(2026-01-01 00:00:00.000001)
        );
        assert_eq!(
            naive_utc(datetime!(-0005-01-01 00:00 UTC)),
            datetime!(0001-01-01 00:00)
        );
        assert_eq!(
            naive_utc(datetime!(0001-01-01 00:30 +01:00)),
            datetime!(0001-01-01 00:00)
        );
    }
}
