//! The `db` engine on PostgreSQL, in Django's `django_session` layout.
//!
//! Django and sessio can share the table: same columns, same `session_data` format,
//! `expire_date` as `timestamp with time zone`.
//!
//! # Design
//!
//! * **A sqlx pool** ([`PgPool`]), opened from the URL or handed over by the application
//!   ([`PostgresEngine::from_pool`]). sqlx prepares each statement once per connection and
//!   reconnects by itself when the server comes back.
//! * **Group commit for writes.** Creates and saves go to a writer task, which takes
//!   everything queued for it (up to [`MAX_BATCH`]) and runs it as *one* statement
//!   (`INSERT … SELECT FROM unnest(…) ON CONFLICT DO NOTHING` and `UPDATE … FROM
//!   unnest(…)` in one `WITH`), so concurrent requests share a round trip and a commit.
//!   Each caller hears back only once that statement has committed, with its own result:
//!   a taken key gets another key, a save of a deleted session fails with
//!   [`Error::SessionInterrupted`]. A session key always goes to the same writer, so the
//!   saves of one session keep their order and two batches never wait on each other's
//!   row locks. Signing happens on the caller's task, so the writers only do SQL.
//! * **Updates in place.** A save that moves `expire_date` by less than
//!   [`Config::expiry_slack`] (and 1% of the session's time left) keeps the
//!   stored date ([`keep_expiry_from`](super::keep_expiry_from)). No indexed column then
//!   changes, so PostgreSQL updates the row in place (a HOT update) instead of adding an
//!   entry to each of the table's three indexes: measured with 64 users writing, `write`
//!   went from 13.3k–19.5k to 27.0k–27.6k requests/s, and the index of a busy session no
//!   longer fills with dead entries that every load must step over.
//! * **Batched loads.** Loads go to a reader task that runs everything queued for it as one
//!   `SELECT … WHERE session_key = ANY($1)`: concurrent requests share a round trip and a
//!   statement. Deletes and the rest go straight to the pool.
//! * **Every call is bounded** by [`Config::store_timeout`]: waiting for a connection, and
//!   the query itself. A timeout or a broken connection is [`Error::Store`], which the
//!   middleware answers with 503.
//! * **The clock is sessio's**, never the server's `now()`: "now" is always a bound
//!   parameter, so expiry follows [`Config::clock`] (and tests can move time).
//! * **Migrations** are embedded `.sql` files under `migrations/postgres/`, applied in order
//!   in one transaction under an advisory lock, and recorded in `sessio_migrations`.
//!
//! # URLs
//!
//! `postgres://user:password@host:5432/database` or `postgresql://…`, with sqlx's query
//! parameters (`sslmode`, `application_name`, `options`, …). A schema other than the
//! default goes in the search path: `?options[search_path]=sessions` or
//! `?options=-c%20search_path%3Dsessions`. sessio adds `max_connections=N`, the size of
//! the pool (default [`DEFAULT_MAX_CONNECTIONS`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx_core::connection::{ConnectOptions, Connection};
use sqlx_core::executor::Executor;
use sqlx_core::pool::PoolConnection;
use sqlx_core::query::query;
use sqlx_core::query_as::query_as;
use sqlx_core::query_scalar::query_scalar;
use sqlx_core::row::Row;
use sqlx_core::Url;
use sqlx_postgres::{
    PgConnectOptions, PgConnection, PgDatabaseError, PgPool, PgPoolOptions, Postgres,
};
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

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
/// PostgreSQL's SQLSTATE for "relation does not exist".
const UNDEFINED_TABLE: &str = "42P01";
/// PostgreSQL's SQLSTATE for "deadlock detected".
const DEADLOCK_DETECTED: &str = "40P01";
/// The most writes combined into one statement.
pub const MAX_BATCH: usize = 128;
/// The most writer tasks (fewer with a small pool). Each runs one batch at a time; a
/// session key always goes to the same writer, so two batches never lock the same row at
/// once (no deadlock between them) and the saves of one session stay in order.
///
/// One: the fewer statements in flight, the larger each batch and the less work for the
/// server per write. Measured with 64 concurrent clients (`sessio bench`, server on one
/// core, PostgreSQL on the same machine): `write` 10.7k/s with 4 writers, 11.7k with 2,
/// 13.4k with 1; `login` 18.8k, 21.0k, 25.8k. One batch of up to [`MAX_BATCH`] writes per
/// commit still allows tens of thousands of writes a second.
const WRITERS: usize = 1;
/// Writes waiting for one writer; callers wait (within their timeout) beyond this.
const QUEUE_CAPACITY: usize = 4 * MAX_BATCH;
/// The most reader tasks; loads are spread over them. One, for the reason writers are one:
/// measured `read` 24.2k/s with 8 readers, 38.2k with 4, 57.2k with 2, 72.9k with 1 (same
/// setup as [`WRITERS`]; one statement per load, before batching: 19.7k).
const READERS: usize = 1;

/// One schema change, embedded from `migrations/postgres/`.
struct Migration {
    version: i64,
    name: &'static str,
    sql: &'static str,
}

/// Every migration, in order. Append new ones; never edit an applied one. Each must also
/// apply cleanly on a database where Django created the table (hence `IF NOT EXISTS`).
const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "0001_django_session",
    sql: include_str!("../../migrations/postgres/0001_django_session.sql"),
}];

const MIGRATIONS_TABLE_SQL: &str = "CREATE TABLE IF NOT EXISTS sessio_migrations \
     (version bigint PRIMARY KEY, name text NOT NULL, applied_at timestamp with time zone NOT NULL)";
// One lock per schema: migrators of different schemas do not wait for each other, and
// two migrators of one schema never race on CREATE TABLE IF NOT EXISTS (which can fail
// with a unique violation in the catalog when run concurrently).
const MIGRATE_LOCK_SQL: &str = "SELECT pg_advisory_xact_lock(\
     hashtext('sessio_migrate.' || coalesce(current_schema(), '')))";
// to_regclass follows the search path, as the engine's queries do.
const TABLE_EXISTS_SQL: &str = "SELECT to_regclass('django_session') IS NOT NULL";
/// The loads that arrive together, in one statement (see [`Reader`]).
const LOAD_MANY_SQL: &str = "SELECT session_key, session_data FROM django_session \
     WHERE session_key = ANY($1) AND expire_date > $2";
const EXISTS_SQL: &str = "SELECT EXISTS (SELECT 1 FROM django_session WHERE session_key = $1)";
const COUNT_EXPIRED_SQL: &str = "SELECT COUNT(*) FROM django_session WHERE expire_date < $1";
/// Every create and save of a batch in one statement (one round trip, one commit). New
/// keys that collide are not returned (and get another key); saves of sessions that are
/// gone are not returned either (and fail with `SessionInterrupted`), nor are
/// conditional saves (`$7` not null) of a session whose data is no longer the one their
/// request read (they fall back to a locked merge). A save leaves `expire_date` as it is
/// when it is no earlier than `$8` (see [`keep_expiry_from`](super::keep_expiry_from)), so
/// the row is updated in place (HOT) rather than with new entries in all three indexes.
const BATCH_SQL: &str = "WITH created AS (\
     INSERT INTO django_session (session_key, session_data, expire_date) \
     SELECT * FROM unnest($1::varchar[], $2::text[], $3::timestamptz[]) \
     ON CONFLICT (session_key) DO NOTHING RETURNING session_key), \
     saved AS (\
     UPDATE django_session AS s SET session_data = u.data, expire_date = CASE \
     WHEN s.expire_date BETWEEN u.keep AND u.expires THEN s.expire_date ELSE u.expires END \
     FROM unnest($4::varchar[], $5::text[], $6::timestamptz[], $7::text[], $8::timestamptz[]) \
     AS u (key, data, expires, old, keep) \
     WHERE s.session_key = u.key AND (u.old IS NULL OR s.session_data = u.old) \
     RETURNING s.session_key) \
     SELECT true, session_key FROM created UNION ALL SELECT false, session_key FROM saved";
const DELETE_SQL: &str = "DELETE FROM django_session WHERE session_key = $1";
const INSERT_ONE_SQL: &str = "INSERT INTO django_session (session_key, session_data, expire_date) \
     VALUES ($1, $2, $3) ON CONFLICT (session_key) DO NOTHING";
// The row lock taken by a merging save: concurrent merges of one session queue here.
const LOCK_ROW_SQL: &str =
    "SELECT session_data FROM django_session WHERE session_key = $1 FOR UPDATE";
const UPDATE_ONE_SQL: &str = "UPDATE django_session SET session_data = $2, expire_date = CASE \
     WHEN expire_date BETWEEN $4 AND $3 THEN expire_date ELSE $3 END WHERE session_key = $1";
// The subquery bounds the work (and the locks) of one statement.
const CLEAR_EXPIRED_SQL: &str = "DELETE FROM django_session WHERE session_key IN \
     (SELECT session_key FROM django_session WHERE expire_date < $1 LIMIT $2)";

/// Sessions in a PostgreSQL `django_session` table.
///
/// Cheap to share behind an `Arc`; the pool inside is shared by clones of the [`PgPool`].
pub struct PostgresEngine {
    pool: PgPool,
    /// The URL with any password hidden, for messages.
    database: Arc<str>,
    codec: StoreCodec,
    clock: Arc<dyn Clock>,
    timeout: Duration,
    /// See [`keep_expiry_from`](super::keep_expiry_from).
    expiry_slack: Duration,
    /// The queues of the writer tasks (see [`Writer`]).
    writers: Vec<mpsc::Sender<Write>>,
    /// Spreads creates over the writers.
    next_writer: AtomicUsize,
    /// The queues of the reader tasks (see [`Reader`]).
    readers: Vec<mpsc::Sender<Load>>,
    /// Spreads loads over the readers.
    next_reader: AtomicUsize,
}

impl fmt::Debug for PostgresEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresEngine")
            .field("database", &self.database)
            .field("connections", &self.pool.size())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl PostgresEngine {
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
        let conn = match tokio::time::timeout(config.store_timeout(), connect).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => {
                return Err(Error::store(
                    ENGINE,
                    format!(
                        "could not connect to PostgreSQL at `{database}`: check that the \
                         server is running and that the URL is right"
                    ),
                    e,
                ))
            }
            Err(elapsed) => {
                return Err(Error::store(
                    ENGINE,
                    format!(
                        "could not connect to PostgreSQL at `{database}` within {:?}",
                        config.store_timeout()
                    ),
                    elapsed,
                ))
            }
        };
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(config.store_timeout())
            // A ping per checkout would double the round trips of every call; a connection
            // that broke (server restart) fails one call and is dropped from the pool.
            .test_before_acquire(false)
            .connect_lazy_with(options);
        let engine = Self::new(pool, config, database);
        let mut conn = conn;
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
    pub async fn from_pool(pool: PgPool, config: &Config) -> Result<Self> {
        let options = pool.connect_options();
        let database: Arc<str> = format!(
            "postgres://{}@{}:{}/{}",
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

    /// The engine, with its writer tasks started (on the current tokio runtime).
    fn new(pool: PgPool, config: &Config, database: Arc<str>) -> Self {
        // At most half the pool, so that loads always find a connection.
        let max_connections = pool.options().get_max_connections();
        let count = usize::try_from(max_connections / 2).map_or(WRITERS, |n| n.clamp(1, WRITERS));
        let writers = (0..count)
            .map(|_| {
                let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
                let writer = Writer {
                    pool: pool.clone(),
                    database: database.clone(),
                    timeout: config.store_timeout(),
                    clock: config.clock().clone(),
                    expiry_slack: config.expiry_slack(),
                };
                // Ends when the engine (every sender) is dropped and the queue is empty.
                tokio::spawn(writer.run(rx));
                tx
            })
            .collect();
        let readers = (0..READERS.min(count))
            .map(|_| {
                let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
                let reader = Reader {
                    pool: pool.clone(),
                    database: database.clone(),
                    clock: config.clock().clone(),
                    timeout: config.store_timeout(),
                };
                tokio::spawn(reader.run(rx));
                tx
            })
            .collect();
        Self {
            pool,
            database,
            codec: config.store_codec(),
            clock: config.clock().clone(),
            timeout: config.store_timeout(),
            expiry_slack: config.expiry_slack(),
            writers,
            next_writer: AtomicUsize::new(0),
            readers,
            next_reader: AtomicUsize::new(0),
        }
    }

    /// Queues a load on a reader and waits for the stored text (`Some(None)`: a row whose
    /// data is not text), within the timeout.
    async fn read(&self, key: &str) -> Result<Option<Option<String>>> {
        let i = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        let key = key.to_owned();
        self.queued("loading a session", "reader", &self.readers[i], |reply| {
            Load { key, reply }
        })
        .await
    }

    /// Sends what `op` makes to a writer or reader task and waits for its answer, within
    /// the timeout (the task skips a call whose caller stopped waiting).
    async fn queued<Op, T>(
        &self,
        what: &str,
        task: &str,
        queue: &mpsc::Sender<Op>,
        op: impl FnOnce(oneshot::Sender<Result<T>>) -> Op,
    ) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        let gone = || Error::Store {
            engine: ENGINE,
            message: format!(
                "{what} failed: the {task} task of PostgreSQL database `{}` has stopped",
                self.database
            ),
            source: None,
        };
        let call = async {
            queue.send(op(reply)).await.map_err(|_| gone())?;
            answer.await.map_err(|_| gone())?
        };
        match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result,
            Err(elapsed) => Err(Error::store(
                ENGINE,
                format!(
                    "{what} timed out after {:?} on PostgreSQL database `{}`",
                    self.timeout, self.database
                ),
                elapsed,
            )),
        }
    }

    /// Queues a write on writer `shard` and waits for its result, within the timeout.
    async fn write(
        &self,
        what: &str,
        shard: usize,
        op: impl FnOnce(oneshot::Sender<Result<String>>) -> Write,
    ) -> Result<String> {
        let queue = &self.writers[shard % self.writers.len()];
        self.queued(what, "writer", queue, op).await
    }

    /// The pool, for the application's own queries.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Migrates, or checks that the table is there.
    async fn prepare_schema(&self, conn: &mut PgConnection, auto_migrate: bool) -> Result<()> {
        if auto_migrate {
            return self.migrate_on(conn).await;
        }
        let exists: bool = self
            .bounded(
                "checking the schema",
                self.timeout,
                query_scalar(TABLE_EXISTS_SQL).fetch_one(&mut *conn),
            )
            .await?;
        if exists {
            Ok(())
        } else {
            Err(self.schema_missing())
        }
    }

    /// Applies the pending migrations in one transaction.
    async fn migrate_on(&self, conn: &mut PgConnection) -> Result<()> {
        let work = apply_migrations(conn, self.clock.now());
        let applied = self
            .bounded(
                "applying migrations",
                self.timeout.max(MIGRATE_TIMEOUT),
                work,
            )
            .await?;
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
                    "{what} timed out after {timeout:?} on PostgreSQL database `{}`",
                    self.database
                ),
                elapsed,
            )),
        }
    }

    fn sql_error(&self, what: &str, e: sqlx_core::Error) -> Error {
        sql_error(&self.database, self.timeout, what, e)
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

/// Applies what `sessio_migrations` does not list yet, in one transaction under the
/// migration lock.
async fn apply_migrations(
    conn: &mut PgConnection,
    now: OffsetDateTime,
) -> std::result::Result<Vec<&'static str>, sqlx_core::Error> {
    // BEGIN/COMMIT by hand rather than sqlx's `Transaction`: through its `DerefMut`,
    // rustc cannot prove this future `Send` inside the `async_trait` methods.
    conn.execute("BEGIN").await?;
    let applied = migrations_in_transaction(conn, now).await;
    match applied {
        Ok(applied) => {
            conn.execute("COMMIT").await?;
            Ok(applied)
        }
        Err(e) => {
            let _ = conn.execute("ROLLBACK").await;
            Err(e)
        }
    }
}

async fn migrations_in_transaction(
    conn: &mut PgConnection,
    now: OffsetDateTime,
) -> std::result::Result<Vec<&'static str>, sqlx_core::Error> {
    conn.execute(MIGRATE_LOCK_SQL).await?;
    conn.execute(MIGRATIONS_TABLE_SQL).await?;
    let table_exists: bool = query_scalar(TABLE_EXISTS_SQL).fetch_one(&mut *conn).await?;
    if !table_exists {
        // The history is stale (say, Django's `migrate sessions zero` dropped the table):
        // start again from the first migration.
        conn.execute("DELETE FROM sessio_migrations").await?;
    }
    let done: Vec<i64> = query_scalar("SELECT version FROM sessio_migrations")
        .fetch_all(&mut *conn)
        .await?;
    let mut applied = Vec::new();
    for m in MIGRATIONS.iter().filter(|m| !done.contains(&m.version)) {
        // Without parameters sqlx uses the simple query protocol: several statements.
        conn.execute(m.sql).await?;
        query("INSERT INTO sessio_migrations (version, name, applied_at) VALUES ($1, $2, $3)")
            .bind(m.version)
            .bind(m.name)
            .bind(now)
            .execute(&mut *conn)
            .await?;
        applied.push(m.name);
    }
    Ok(applied)
}

#[async_trait]
impl SessionEngine for PostgresEngine {
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
        if !storable(key) {
            return Ok(None);
        }
        let row = self.read(key).await?;
        Ok(row.map(|text| {
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
        // Signed here, on the caller's task: the writers only do SQL.
        let data = self.encode(data);
        let shard = self.next_writer.fetch_add(1, Ordering::Relaxed);
        self.write("creating a session", shard, |reply| Write::Create {
            data,
            expires,
            attempts: 0,
            reply,
        })
        .await
    }

    async fn save(&self, key: &str, data: &SessionData, expires: OffsetDateTime) -> Result<String> {
        if !storable(key) {
            return Err(Error::SessionInterrupted);
        }
        let data = self.encode(data);
        let key = key.to_owned();
        self.write("saving a session", shard_of(&key), |reply| Write::Save {
            key,
            data,
            expires,
            old: None,
            reply,
        })
        .await
    }

    async fn insert(&self, key: &str, data: &SessionData, expires: OffsetDateTime) -> Result<bool> {
        if !storable(key) {
            return Err(Error::Config(format!(
                "`{key}` is too long for a django_session key"
            )));
        }
        let data = self.encode(data);
        let done = self
            .call("creating a session", || {
                query(INSERT_ONE_SQL)
                    .bind(key)
                    .bind(&data)
                    .bind(expires)
                    .execute(&self.pool)
            })
            .await?;
        Ok(done.rows_affected() == 1)
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
        if !storable(key) {
            return Err(Error::SessionInterrupted);
        }
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
            query(UPDATE_ONE_SQL)
                .bind(key)
                .bind(self.encode(&data))
                .bind(expires)
                .bind(super::keep_expiry_from(
                    expires,
                    self.clock.now(),
                    self.expiry_slack,
                ))
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

    /// One conditional UPDATE (`… AND session_data = <what the request read>`), falling
    /// back to the locked merge of [`save_changes`](Self::save_changes) when it matches no
    /// row: another write came first, or the session is gone (the merge tells which).
    ///
    /// The UPDATE goes through the group-commit writers, as a plain save does, rather than
    /// straight to the pool: concurrent saves of different sessions then share one
    /// statement and one commit (WAL flush), the saves of one session stay ordered on
    /// their writer, and loads keep their half of the pool. Measured with the
    /// `throughput_postgres` write requests (64 tasks, shared 2-core machine, noisy): a
    /// median of about 8,600 requests/s through the writers against 5,800 with one
    /// autocommit UPDATE per save on the pool.
    async fn save_changes_from(
        &self,
        key: &str,
        base: &Version,
        data: &Arc<SessionData>,
        changes: &Changes,
        expires: OffsetDateTime,
    ) -> Result<Saved> {
        if !storable(key) {
            return Err(Error::SessionInterrupted);
        }
        if let Some(old) = base.as_stored() {
            let new = self.encode_shared(data);
            let owned = key.to_owned();
            let written = self
                .write("saving a session", shard_of(key), |reply| Write::Save {
                    key: owned,
                    data: new.clone(),
                    expires,
                    old: Some(old.to_owned()),
                    reply,
                })
                .await;
            match written {
                Ok(cookie) => {
                    return Ok(Saved {
                        cookie,
                        merged: None,
                        version: Some(Version::stored(new)),
                    })
                }
                // Raced, or deleted: the merge below finds out which.
                Err(Error::SessionInterrupted) => {}
                Err(e) => return Err(e),
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
        if !storable(key) {
            return Ok(());
        }
        self.call("deleting a session", || {
            query(DELETE_SQL).bind(key).execute(&self.pool)
        })
        .await?;
        Ok(())
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        if !storable(key) {
            return Ok(false);
        }
        self.call("checking whether a session exists", || {
            query_scalar(EXISTS_SQL).bind(key).fetch_one(&self.pool)
        })
        .await
    }

    async fn count_expired(&self) -> Result<Option<u64>> {
        let now = self.clock.now();
        let n: i64 = self
            .call("counting expired sessions", || {
                query_scalar(COUNT_EXPIRED_SQL)
                    .bind(now)
                    .fetch_one(&self.pool)
            })
            .await?;
        Ok(Some(u64::try_from(n).unwrap_or(0)))
    }

    async fn clear_expired_batch(&self, limit: usize) -> Result<u64> {
        if limit == 0 {
            return Ok(0);
        }
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let now = self.clock.now();
        let done = self
            .call("deleting expired sessions", || {
                query(CLEAR_EXPIRED_SQL)
                    .bind(now)
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

// ---------------------------------------------------------------------------------------
// Writing: group commit

/// A create or save for a writer task, with where to send its result.
enum Write {
    Create {
        data: String,
        expires: OffsetDateTime,
        /// Keys already tried (they collided).
        attempts: u32,
        reply: oneshot::Sender<Result<String>>,
    },
    Save {
        key: String,
        data: String,
        expires: OffsetDateTime,
        /// For a conditional save: the stored data it replaces, if still there.
        old: Option<String>,
        reply: oneshot::Sender<Result<String>>,
    },
}

impl Write {
    /// The caller stopped waiting (timeout, cancelled request): nothing to write.
    fn abandoned(&self) -> bool {
        match self {
            Write::Create { reply, .. } | Write::Save { reply, .. } => reply.is_closed(),
        }
    }

    fn answer(self, result: Result<String>) {
        // A send error means the caller stopped waiting: nothing to do.
        match self {
            Write::Create { reply, .. } | Write::Save { reply, .. } => {
                let _ = reply.send(result);
            }
        }
    }
}

/// A load for a reader, with where to send the stored text.
struct Load {
    key: String,
    reply: oneshot::Sender<Result<Option<Option<String>>>>,
}

/// Runs the loads that arrive together as one `SELECT ... WHERE session_key = ANY($1)`:
/// one round trip and one statement for PostgreSQL to plan and run, instead of one per
/// request (see [`READERS`] for the measurements). A load waits for no timer: a reader
/// takes whatever has queued while its previous statement ran.
struct Reader {
    pool: PgPool,
    database: Arc<str>,
    clock: Arc<dyn Clock>,
    timeout: Duration,
}

impl Reader {
    async fn run(self, mut queue: mpsc::Receiver<Load>) {
        // Callers that stopped waiting (timeout, cancelled request) are not read for.
        while let Some(batch) =
            crate::batch::next(&mut queue, MAX_BATCH, |load| !load.reply.is_closed()).await
        {
            let keys: Vec<&str> = batch.iter().map(|load| load.key.as_str()).collect();
            match self.fetch(&keys).await {
                Ok(rows) => {
                    for load in batch {
                        // The same session twice in a batch: each gets the row.
                        let found = rows.get(load.key.as_str()).cloned();
                        let _ = load.reply.send(Ok(found));
                    }
                }
                Err(error) => {
                    let message = error.to_string();
                    let mut first = Some(error);
                    for load in batch {
                        let e = first.take().unwrap_or_else(|| Error::Store {
                            engine: ENGINE,
                            message: message.clone(),
                            source: None,
                        });
                        let _ = load.reply.send(Err(e));
                    }
                }
            }
        }
    }

    /// The live rows among `keys`, by key (a connection the server closed is replaced).
    async fn fetch(&self, keys: &[&str]) -> Result<HashMap<String, Option<String>>> {
        let now = self.clock.now();
        let tries = self.pool.options().get_max_connections() + 1;
        let attempts = async {
            let run = || {
                query(LOAD_MANY_SQL)
                    .bind(keys)
                    .bind(now)
                    .fetch_all(&self.pool)
            };
            let mut result = run().await;
            for _ in 1..tries {
                match &result {
                    Err(e) if broken_connection(e) => result = run().await,
                    _ => break,
                }
            }
            result
        };
        match tokio::time::timeout(self.timeout, attempts).await {
            Ok(Ok(rows)) => Ok(rows
                .into_iter()
                .filter_map(|row| {
                    let key = row.try_get::<String, _>(0).ok()?;
                    Some((key, row.try_get::<String, _>(1).ok()))
                })
                .collect()),
            Ok(Err(e)) => Err(sql_error(
                &self.database,
                self.timeout,
                "loading a session",
                e,
            )),
            Err(elapsed) => Err(Error::store(
                ENGINE,
                format!(
                    "loading a session timed out after {:?} on PostgreSQL database `{}`",
                    self.timeout, self.database
                ),
                elapsed,
            )),
        }
    }
}

/// Runs the creates and saves that arrive together as one statement: one round trip and
/// one commit (one WAL flush) for many requests, instead of one each. Each caller hears
/// back only once the statement that holds its write has committed.
struct Writer {
    pool: PgPool,
    database: Arc<str>,
    timeout: Duration,
    clock: Arc<dyn Clock>,
    expiry_slack: Duration,
}

impl Writer {
    async fn run(self, mut queue: mpsc::Receiver<Write>) {
        // Writes held over to the next batch: creates whose key collided, and saves of a
        // session that already has a save in the batch (one row cannot be updated twice
        // by one statement, and the later save must win).
        let mut carried: VecDeque<Write> = VecDeque::new();
        // Kept from one batch to the next while there is work, so a busy writer does not
        // pay for a checkout (and sqlx's ping on release) per batch; given back to the
        // pool, for loads, whenever the writer goes idle.
        let mut conn: Option<PoolConnection<Postgres>> = None;
        loop {
            let mut next: Vec<Write> = carried.drain(..).collect();
            if next.is_empty() {
                let op = match queue.try_recv() {
                    Ok(op) => Some(op),
                    Err(_) => {
                        conn = None;
                        queue.recv().await
                    }
                };
                match op {
                    Some(op) => next.push(op),
                    None => return,
                }
            }
            while next.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(op) => next.push(op),
                    Err(_) => break,
                }
            }
            let mut batch = Vec::with_capacity(next.len());
            let mut saving = HashSet::new();
            for op in next {
                if op.abandoned() {
                    continue;
                }
                let later = match &op {
                    Write::Save { key, .. } => !saving.insert(key.clone()),
                    Write::Create { .. } => false,
                };
                if later || batch.len() >= MAX_BATCH {
                    carried.push_back(op);
                } else {
                    batch.push(op);
                }
            }
            self.execute(batch, &mut carried, &mut conn).await;
        }
    }

    async fn execute(
        &self,
        batch: Vec<Write>,
        carried: &mut VecDeque<Write>,
        conn: &mut Option<PoolConnection<Postgres>>,
    ) {
        if batch.is_empty() {
            return;
        }
        let mut creates = Vec::new();
        let mut saves = Vec::new();
        let (mut c_keys, mut c_data, mut c_expires) = (Vec::new(), Vec::new(), Vec::new());
        let (mut s_keys, mut s_data, mut s_expires) = (Vec::new(), Vec::new(), Vec::new());
        let (mut s_old, mut s_keep) = (Vec::new(), Vec::new());
        let now = self.clock.now();
        for op in batch {
            match &op {
                Write::Create { data, expires, .. } => match crate::key::new_session_key() {
                    Ok(key) => {
                        c_keys.push(key.clone());
                        c_data.push(data.clone());
                        c_expires.push(*expires);
                        creates.push((key, op));
                    }
                    Err(e) => op.answer(Err(e)),
                },
                Write::Save {
                    key,
                    data,
                    expires,
                    old,
                    ..
                } => {
                    s_keys.push(key.clone());
                    s_data.push(data.clone());
                    s_expires.push(*expires);
                    s_keep.push(super::keep_expiry_from(*expires, now, self.expiry_slack));
                    s_old.push(old.clone());
                    saves.push(op);
                }
            }
        }
        let what = if saves.is_empty() {
            "creating sessions"
        } else {
            "saving sessions"
        };
        let args = BatchArgs {
            c_keys,
            c_data,
            c_expires,
            s_keys,
            s_data,
            s_expires,
            s_old,
            s_keep,
        };
        let outcome = tokio::time::timeout(self.timeout, self.run_batch(&args, conn)).await;
        if outcome.is_err() {
            // Abandoned halfway through a statement: not fit for the next batch.
            *conn = None;
        }
        let rows = match outcome {
            Ok(Ok(rows)) => rows,
            Ok(Err(e)) => {
                let e = Arc::new(e);
                for (_, op) in creates {
                    op.answer(Err(sql_error(
                        &self.database,
                        self.timeout,
                        what,
                        e.clone(),
                    )));
                }
                for op in saves {
                    op.answer(Err(sql_error(
                        &self.database,
                        self.timeout,
                        what,
                        e.clone(),
                    )));
                }
                return;
            }
            Err(_) => {
                let timed_out = || Error::Store {
                    engine: ENGINE,
                    message: format!(
                        "{what} timed out after {:?} on PostgreSQL database `{}`",
                        self.timeout, self.database
                    ),
                    source: None,
                };
                creates
                    .into_iter()
                    .for_each(|(_, op)| op.answer(Err(timed_out())));
                saves.into_iter().for_each(|op| op.answer(Err(timed_out())));
                return;
            }
        };
        let mut created = HashSet::new();
        let mut saved = HashSet::new();
        for (was_created, key) in rows {
            if was_created {
                created.insert(key);
            } else {
                saved.insert(key);
            }
        }
        for (key, op) in creates {
            if created.contains(&key) {
                op.answer(Ok(key));
                continue;
            }
            // Django's `create()`: a key that is taken means another key.
            match op {
                Write::Create {
                    data,
                    expires,
                    attempts,
                    reply,
                } if attempts + 1 < CREATE_ATTEMPTS => carried.push_back(Write::Create {
                    data,
                    expires,
                    attempts: attempts + 1,
                    reply,
                }),
                op => op.answer(Err(Error::KeyCreation {
                    attempts: CREATE_ATTEMPTS,
                })),
            }
        }
        for op in saves {
            let Write::Save { key, reply, .. } = op else {
                continue;
            };
            // Django's `save(must_create=False)`: UPDATE only. No row means a concurrent
            // request deleted the session (logout), which must not be undone by inserting
            // it again (or, for a conditional save, that another write came first: the
            // caller then merges).
            let result = if saved.contains(&key) {
                Ok(key)
            } else {
                Err(Error::SessionInterrupted)
            };
            let _ = reply.send(result);
        }
    }
}

/// The columns of a batch, one array per statement parameter.
struct BatchArgs {
    c_keys: Vec<String>,
    c_data: Vec<String>,
    c_expires: Vec<OffsetDateTime>,
    s_keys: Vec<String>,
    s_data: Vec<String>,
    s_expires: Vec<OffsetDateTime>,
    s_old: Vec<Option<String>>,
    s_keep: Vec<OffsetDateTime>,
}

impl Writer {
    /// Runs the batch statement on the writer's connection (checked out if needed). A
    /// broken connection is replaced and the statement tried again; so is a deadlock
    /// with another client's multi-row statement (say, Django's clearsessions), which
    /// PostgreSQL resolves by aborting one of the two.
    async fn run_batch(
        &self,
        args: &BatchArgs,
        conn: &mut Option<PoolConnection<Postgres>>,
    ) -> std::result::Result<Vec<(bool, String)>, sqlx_core::Error> {
        let tries = self.pool.options().get_max_connections() + 1;
        let mut deadlocks = 0;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let c = match conn {
                Some(c) => c,
                None => conn.insert(self.pool.acquire().await?),
            };
            let result = query_as::<_, (bool, String)>(BATCH_SQL)
                .bind(&args.c_keys)
                .bind(&args.c_data)
                .bind(&args.c_expires)
                .bind(&args.s_keys)
                .bind(&args.s_data)
                .bind(&args.s_expires)
                .bind(&args.s_old)
                .bind(&args.s_keep)
                .fetch_all(&mut **c)
                .await;
            let e = match result {
                Ok(rows) => return Ok(rows),
                Err(e) => e,
            };
            // After an error, the pool decides whether the connection is still good.
            *conn = None;
            let again = if broken_connection(&e) {
                attempt < tries
            } else if sqlstate(&e) == Some(DEADLOCK_DETECTED) {
                deadlocks += 1;
                deadlocks < 3
            } else {
                false
            };
            if !again {
                return Err(e);
            }
        }
    }
}

/// Picks the writer of a session key: always the same one (FNV-1a).
fn shard_of(key: &str) -> usize {
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    // Only the low bits matter (modulo the few writers).
    hash as usize
}

/// Whether `e` means the connection is unusable (closed by a server restart, say) rather
/// than that the statement failed: worth another try on another connection.
fn broken_connection(e: &sqlx_core::Error) -> bool {
    match e {
        sqlx_core::Error::Io(_) | sqlx_core::Error::Tls(_) | sqlx_core::Error::Protocol(_) => true,
        // Class 57P: admin_shutdown, crash_shutdown, cannot_connect_now.
        _ => sqlstate(e).is_some_and(|code| code.starts_with("57P")),
    }
}

fn sqlstate(e: &sqlx_core::Error) -> Option<&str> {
    e.as_database_error()
        .and_then(|d| d.try_downcast_ref::<PgDatabaseError>())
        .map(PgDatabaseError::code)
}

/// Maps a driver error: a missing table is the schema's absence, anything else a store
/// failure with the driver error as its source.
fn sql_error<E>(database: &str, timeout: Duration, what: &str, e: E) -> Error
where
    E: std::borrow::Borrow<sqlx_core::Error> + std::error::Error + Send + Sync + 'static,
{
    if sqlstate(e.borrow()) == Some(UNDEFINED_TABLE) {
        return Error::SchemaMissing {
            table: TABLE.into(),
            database: database.into(),
        };
    }
    let message = match e.borrow() {
        sqlx_core::Error::PoolTimedOut => format!(
            "{what} failed on PostgreSQL database `{database}`: no connection within \
             {timeout:?} (server down or unreachable, or every connection busy)"
        ),
        _ => format!("{what} failed on PostgreSQL database `{database}`"),
    };
    Error::store(ENGINE, message, e)
}

/// Whether PostgreSQL can hold `key` at all: `text` cannot contain NUL, and a key that
/// cannot be stored is simply not there (rather than a server error).
fn storable(key: &str) -> bool {
    !key.contains('\0')
}

/// The connect options and pool size of a `postgres://` URL (sessio's own
/// `max_connections` parameter removed, the rest left to sqlx).
fn parse_url(url: &str, redacted: &str) -> Result<(PgConnectOptions, u32)> {
    let invalid = |why: String| {
        Error::Config(format!(
            "database URL `{redacted}` is not a valid PostgreSQL URL ({why}): use \
             postgres://user:password@host:5432/database"
        ))
    };
    let mut parsed = Url::parse(url).map_err(|e| invalid(e.to_string()))?;
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
    let mut options = PgConnectOptions::from_url(&parsed).map_err(|e| invalid(e.to_string()))?;
    if options.get_application_name().is_none() {
        options = options.application_name("sessio");
    }
    Ok((options, max_connections))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let (o, n) = parse_url("postgres://u:p@db.example:5433/app", "x").unwrap();
        assert_eq!((o.get_host(), o.get_port(), n), ("db.example", 5433, 16));
        assert_eq!(o.get_database(), Some("app"));
        assert_eq!(o.get_application_name(), Some("sessio"));
        let (o, n) = parse_url(
            "postgresql://u@h/app?max_connections=4&options[search_path]=s1&application_name=web",
            "x",
        )
        .unwrap();
        assert_eq!(n, 4);
        assert_eq!(o.get_options(), Some("-c search_path=s1"));
        assert_eq!(o.get_application_name(), Some("web"));
        for bad in [
            "postgres://u@h/app?max_connections=0",
            "postgres://u@h/app?max_connections=many",
            "postgres://u@[h/app",
        ] {
            assert!(
                matches!(parse_url(bad, "x"), Err(Error::Config(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn keys_postgres_cannot_store_are_absent() {
        assert!(storable("abcdefgh12345678"));
        assert!(!storable("abc\0def"));
    }
}
