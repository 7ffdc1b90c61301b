//! The `db` store on PostgreSQL, in Django's `django_session` layout.
//!
//! Django and sessio can share the table: same columns, same `session_data` format,
//! `expire_date` as `timestamp with time zone`. The store keeps rows; the core
//! ([`ServerEngine`]) encodes `session_data`, chooses keys and merges concurrent saves
//! ([`PostgresEngine`] is the two together).
//!
//! # Design
//!
//! * **A sqlx pool** ([`PgPool`]), opened from the URL or handed over by the application
//!   ([`PostgresStore::from_pool`]). sqlx prepares each statement once per connection and
//!   reconnects by itself when the server comes back.
//! * **Group commit for writes.** Inserts and updates go to a writer task, which takes
//!   everything queued for it (up to [`MAX_BATCH`]) and runs it as *one* statement
//!   (`INSERT … SELECT FROM unnest(…) ON CONFLICT DO NOTHING` and `UPDATE … FROM
//!   unnest(…)` in one `WITH`), so concurrent requests share a round trip and a commit.
//!   Each caller hears back only once that statement has committed, with its own result:
//!   an insert whether its key was free, an update whether it wrote. A session key always
//!   goes to the same writer, so the writes of one session keep their order and two
//!   batches never wait on each other's row locks. Encoding happens on the caller's task
//!   (the core's [`Payload`]), so the writers only do SQL.
//! * **Update if unchanged, in the same statement.** An update that expects a version
//!   carries the text its request read, and writes only where `session_data` still equals
//!   it; every update also needs a live row (`expire_date` after now), so a session that
//!   was deleted or has expired is never brought back. An unraced save is thus one
//!   statement, shared with the batch. Only when a conditional update writes nothing does
//!   one batched load tell a conflict (a live row with other data: the core merges) from
//!   a session that is gone. Conditional updates go through the writers rather than
//!   straight to the pool: measured with the `store_throughput` example's write requests
//!   (64 tasks, shared 2-core machine, noisy), a median of about 8,600 requests/s through
//!   the writers against 5,800 with one autocommit UPDATE per save on the pool.
//! * **Updates in place.** An update that moves `expire_date` by less than
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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::TryFutureExt;
use sqlx_core::connection::ConnectOptions;
use sqlx_core::executor::Executor;
use sqlx_core::pool::PoolConnection;
use sqlx_core::query::query;
use sqlx_core::query_as::query_as;
use sqlx_core::query_scalar::query_scalar;
use sqlx_core::row::Row;
use sqlx_core::Url;
use sqlx_postgres::{PgConnectOptions, PgConnection, PgDatabaseError, PgPool, Postgres};
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

pub use super::sqlx_common::DEFAULT_MAX_CONNECTIONS;
use super::sqlx_common::{
    self, apply_pending, retry, sql_error, timed_out, within, Core, Driver, Migration, Options,
    SqlResult, ENGINE,
};
use crate::clock::Clock;
use crate::config::Config;
use crate::engine::Version;
use crate::error::{Error, Result};
use crate::server::ServerEngine;
use crate::store::{Payload, Record, SessionStore, Update};

/// PostgreSQL's SQLSTATE for "relation does not exist".
const UNDEFINED_TABLE: &str = "42P01";
/// PostgreSQL's SQLSTATE for "deadlock detected".
const DEADLOCK_DETECTED: &str = "40P01";
/// The most writes combined into one statement.
pub const MAX_BATCH: usize = 128;
/// The most writer tasks (fewer with a small pool). Each runs one batch at a time; a
/// session key always goes to the same writer, so two batches never lock the same row at
/// once (no deadlock between them) and the writes of one session stay in order.
///
/// One: the fewer statements in flight, the larger each batch and the less work for the
/// server per write. Measured with 64 concurrent clients (`sessio-bench`, server on one
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
/// The longest random pause before a conflict is answered, per conflict being answered
/// at the time (see `PostgresStore::missed`).
const CONFLICT_PAUSE: Duration = Duration::from_millis(2);

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
// to_regclass follows the search path, as the store's queries do.
const TABLE_EXISTS_SQL: &str = "SELECT to_regclass('django_session') IS NOT NULL";
/// The loads that arrive together, in one statement (see [`Reader`]).
const LOAD_MANY_SQL: &str = "SELECT session_key, session_data FROM django_session \
     WHERE session_key = ANY($1) AND expire_date > $2";
const EXISTS_SQL: &str = "SELECT EXISTS (SELECT 1 FROM django_session WHERE session_key = $1)";
const COUNT_EXPIRED_SQL: &str = "SELECT COUNT(*) FROM django_session WHERE expire_date < $1";
/// Every insert and update of a batch in one statement (one round trip, one commit).
/// Inserts whose key is taken are not returned; neither are updates of a session that is
/// gone or expired (`expire_date` not after `$9`, "now"), nor conditional updates (`$7`
/// not null) of a session whose data is no longer the one their request read. An update
/// leaves `expire_date` as it is when it is no earlier than `$8` (see
/// [`keep_expiry_from`](super::keep_expiry_from)), so the row is updated in place (HOT)
/// rather than with new entries in all three indexes.
const BATCH_SQL: &str = "WITH created AS (\
     INSERT INTO django_session (session_key, session_data, expire_date) \
     SELECT * FROM unnest($1::varchar[], $2::text[], $3::timestamptz[]) \
     ON CONFLICT (session_key) DO NOTHING RETURNING session_key), \
     saved AS (\
     UPDATE django_session AS s SET session_data = u.data, expire_date = CASE \
     WHEN s.expire_date BETWEEN u.keep AND u.expires THEN s.expire_date ELSE u.expires END \
     FROM unnest($4::varchar[], $5::text[], $6::timestamptz[], $7::text[], $8::timestamptz[]) \
     AS u (key, data, expires, old, keep) \
     WHERE s.session_key = u.key AND s.expire_date > $9 \
     AND (u.old IS NULL OR s.session_data = u.old) \
     RETURNING s.session_key) \
     SELECT true, session_key FROM created UNION ALL SELECT false, session_key FROM saved";
const DELETE_SQL: &str = "DELETE FROM django_session WHERE session_key = $1";
// The subquery bounds the work (and the locks) of one statement.
const CLEAR_EXPIRED_SQL: &str = "DELETE FROM django_session WHERE session_key IN \
     (SELECT session_key FROM django_session WHERE expire_date < $1 LIMIT $2)";

/// Sessions in a PostgreSQL `django_session` table.
///
/// Cheap to share behind an `Arc`; the pool inside is shared by clones of the [`PgPool`].
pub struct PostgresStore {
    core: Core<Postgres>,
    /// The queues of the writer tasks (see [`Writer`]).
    writers: Vec<mpsc::Sender<Write>>,
    /// The queues of the reader tasks (see [`Reader`]).
    readers: Vec<mpsc::Sender<Load>>,
    /// Spreads loads over the readers.
    next_reader: AtomicUsize,
    /// Conflicts being answered (see `missed`).
    conflicts: AtomicUsize,
}

/// The `db` engine on PostgreSQL: the [`PostgresStore`] behind the core's
/// [`ServerEngine`].
pub type PostgresEngine = ServerEngine<PostgresStore>;

/// The engine on `store`: the core with `config`'s keys and clock, leaving rows that only a
/// fallback key verifies as they are, as Django does.
pub(super) fn engine(store: PostgresStore, config: &Config) -> PostgresEngine {
    ServerEngine::new(store, config)
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.core.debug(f, "PostgresStore")
    }
}

impl PostgresEngine {
    /// The engine on the database that `config.database_url()` names (see
    /// [`PostgresStore::open`]).
    pub async fn open(config: &Config) -> Result<Self> {
        Ok(engine(PostgresStore::open(config).await?, config))
    }

    /// The engine on the application's own pool (see [`PostgresStore::from_pool`]).
    pub async fn from_pool(pool: PgPool, config: &Config) -> Result<Self> {
        Ok(engine(
            PostgresStore::from_pool(pool, config).await?,
            config,
        ))
    }

    /// The pool, for the application's own queries.
    pub fn pool(&self) -> &PgPool {
        self.store().pool()
    }
}

impl PostgresStore {
    /// Connects to the database that `config.database_url()` names.
    ///
    /// With `auto_migrate` it creates the schema as needed; without, a database lacking the
    /// `django_session` table is [`Error::SchemaMissing`]. A server that cannot be reached
    /// within [`Config::store_timeout`] is [`Error::Store`], naming the URL (without its
    /// password).
    pub async fn open(config: &Config) -> Result<Self> {
        sqlx_common::open(config).await
    }

    /// Uses the application's own pool (its size, TLS and timeouts stay as configured;
    /// every call is still bounded by [`Config::store_timeout`]).
    ///
    /// `config.database_url()` is not used. Checks or migrates the schema as
    /// [`open`](Self::open) does.
    pub async fn from_pool(pool: PgPool, config: &Config) -> Result<Self> {
        sqlx_common::from_pool(pool, config).await
    }

    /// The pool, for the application's own queries.
    pub fn pool(&self) -> &PgPool {
        &self.core.pool
    }

    /// Queues a load on a reader and waits for the stored text, within the timeout.
    async fn read(&self, key: &str) -> Result<Option<String>> {
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
                self.core.database
            ),
            source: None,
        };
        let call = async {
            queue.send(op(reply)).await.map_err(|_| gone())?;
            answer.await.map_err(|_| gone())?
        };
        match tokio::time::timeout(self.core.timeout, call).await {
            Ok(result) => result,
            Err(elapsed) => Err(self.core.timed_out(what, elapsed)),
        }
    }

    /// Queues a write of session `key` on its writer and waits for whether it wrote,
    /// within the timeout.
    async fn write(
        &self,
        what: &str,
        key: &str,
        op: impl FnOnce(oneshot::Sender<Result<bool>>) -> Write,
    ) -> Result<bool> {
        let queue = &self.writers[shard_of(key) % self.writers.len()];
        self.queued(what, "writer", queue, op).await
    }

    /// A conditional update that wrote nothing: a conflict while the session lives, gone
    /// otherwise.
    ///
    /// A conflict is answered after a random pause of up to [`CONFLICT_PAUSE`] per
    /// conflict being answered at the time. Batching keeps the writers of one busy session
    /// in step: they read the same version in one statement, only one of their updates
    /// can win, and the losers would read again together and lose together again, one
    /// winner per round, until the core gives up. Spread out over a time that grows with
    /// their number, each reads the version written just before its turn, and most win
    /// on their next try.
    async fn missed(&self, key: &str) -> Result<Update> {
        if self.read(key).await?.is_none() {
            return Ok(Update::Gone);
        }
        let waiting = self.conflicts.fetch_add(1, Ordering::Relaxed) + 1;
        let most = CONFLICT_PAUSE.saturating_mul(u32::try_from(waiting).unwrap_or(u32::MAX));
        let most = u64::try_from(most.as_micros()).unwrap_or(u64::MAX).max(1);
        let pause = getrandom::u64().map_or(0, |r| r % most);
        tokio::time::sleep(Duration::from_micros(pause)).await;
        self.conflicts.fetch_sub(1, Ordering::Relaxed);
        Ok(Update::Conflict)
    }
}

impl sqlx_common::SqlStore for PostgresStore {
    type Db = Postgres;

    /// The store, with its writer and reader tasks started (on the current tokio runtime).
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
                // Ends when the store (every sender) is dropped and the queue is empty.
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
            core: Core::new(pool, config, database),
            writers,
            readers,
            next_reader: AtomicUsize::new(0),
            conflicts: AtomicUsize::new(0),
        }
    }

    fn core(&self) -> &Core<Postgres> {
        &self.core
    }
}

#[async_trait]
impl Driver for Postgres {
    const LABEL: &'static str = "PostgreSQL";
    const SCHEME: &'static str = "postgres";
    const URL_EXAMPLE: &'static str = "postgres://user:password@host:5432/database";
    const MIGRATIONS: &'static [Migration] = MIGRATIONS;
    const MIGRATIONS_TABLE_SQL: &'static str = MIGRATIONS_TABLE_SQL;

    fn options(url: &Url) -> std::result::Result<Options<Self>, String> {
        let options = PgConnectOptions::from_url(url).map_err(|e| e.to_string())?;
        if options.get_application_name().is_some() {
            return Ok(options);
        }
        Ok(options.application_name("sessio"))
    }

    fn address(o: &PgConnectOptions) -> (&str, &str, u16, &str) {
        let database = o.get_database().unwrap_or_default();
        (o.get_username(), o.get_host(), o.get_port(), database)
    }

    fn table_missing(e: &sqlx_core::Error) -> bool {
        sqlstate(e) == Some(UNDEFINED_TABLE)
    }

    fn connection_ended(e: &sqlx_core::Error) -> bool {
        // Class 57P: admin_shutdown, crash_shutdown, cannot_connect_now.
        sqlstate(e).is_some_and(|code| code.starts_with("57P"))
    }

    async fn table_exists(conn: &mut PgConnection) -> SqlResult<bool> {
        query_scalar(TABLE_EXISTS_SQL).fetch_one(&mut *conn).await
    }

    /// In one transaction, under an advisory lock (which waits rather than times out).
    async fn apply_migrations(
        conn: &mut PgConnection,
        now: OffsetDateTime,
        _lock_timeout: Duration,
    ) -> SqlResult<Option<Vec<&'static str>>> {
        // BEGIN/COMMIT by hand rather than sqlx's `Transaction`: through its `DerefMut`,
        // rustc cannot prove this future `Send` inside the `async_trait` methods.
        conn.execute("BEGIN").await?;
        let applied = async {
            conn.execute(MIGRATE_LOCK_SQL).await?;
            apply_pending::<Postgres>(conn, now).await
        }
        .await;
        match applied {
            Ok(applied) => {
                conn.execute("COMMIT").await?;
                Ok(Some(applied))
            }
            Err(e) => {
                let _ = conn.execute("ROLLBACK").await;
                Err(e)
            }
        }
    }

    async fn execute(conn: &mut PgConnection, sql: &str) -> SqlResult<()> {
        conn.execute(sql).await.map(drop)
    }

    async fn applied_versions(conn: &mut PgConnection) -> SqlResult<Vec<i64>> {
        query_scalar("SELECT version FROM sessio_migrations")
            .fetch_all(&mut *conn)
            .await
    }

    async fn apply(conn: &mut PgConnection, m: &'static Migration) -> SqlResult<()> {
        // Without parameters sqlx uses the simple query protocol: several statements.
        conn.execute(m.sql).await.map(drop)
    }

    async fn record(
        conn: &mut PgConnection,
        m: &'static Migration,
        now: OffsetDateTime,
    ) -> SqlResult<()> {
        query("INSERT INTO sessio_migrations (version, name, applied_at) VALUES ($1, $2, $3)")
            .bind(m.version)
            .bind(m.name)
            .bind(now)
            .execute(&mut *conn)
            .await
            .map(drop)
    }
}

impl SessionStore for PostgresStore {
    // Django's database backend leaves a row that an old key verifies as it is until the
    // session changes.
    fn reissues_old_keys(&self) -> bool {
        false
    }

    fn name(&self) -> &'static str {
        ENGINE
    }

    async fn load(&self, id: &str) -> Result<Option<Record>> {
        if !storable(id) {
            return Ok(None);
        }
        Ok(self.read(id).await?.map(Record::Text))
    }

    /// Through the writers: concurrent creates share a statement and a commit.
    async fn insert(
        &self,
        id: &str,
        record: &Payload<'_>,
        expires: OffsetDateTime,
    ) -> Result<bool> {
        if !storable(id) {
            return Err(Error::Config(format!(
                "`{id}` is too long for a django_session key"
            )));
        }
        let (key, data) = (id.to_owned(), record.text().to_owned());
        self.write("creating a session", id, |reply| Write::Insert {
            key,
            data,
            expires,
            reply,
        })
        .await
    }

    /// One UPDATE in a writer's batch (see the module documentation), conditional on the
    /// stored text when a version is expected.
    async fn update(
        &self,
        id: &str,
        record: &Payload<'_>,
        expires: OffsetDateTime,
        expected: Option<&Version>,
    ) -> Result<Update> {
        if !storable(id) {
            return Ok(Update::Gone);
        }
        let old = match expected.map(Version::as_stored) {
            None => None,
            Some(Some(old)) => Some(old.to_owned()),
            // Not a version of a row: it cannot match.
            Some(None) => return self.missed(id).await,
        };
        let conditional = old.is_some();
        let (key, data) = (id.to_owned(), record.text().to_owned());
        let written = self
            .write("saving a session", id, |reply| Write::Update {
                key,
                data,
                expires,
                old,
                reply,
            })
            .await?;
        if written {
            Ok(Update::Stored(Some(record.version())))
        } else if conditional {
            self.missed(id).await
        } else {
            Ok(Update::Gone)
        }
    }

    async fn delete(&self, id: &str) -> Result<()> {
        if !storable(id) {
            return Ok(());
        }
        let pool = &self.core.pool;
        self.core
            .call("deleting a session", || {
                query(DELETE_SQL).bind(id).execute(pool)
            })
            .await?;
        Ok(())
    }

    /// Any row, live or expired (Django's `exists()`).
    async fn exists(&self, id: &str) -> Result<bool> {
        if !storable(id) {
            return Ok(false);
        }
        let pool = &self.core.pool;
        self.core
            .call("checking whether a session exists", || {
                query_scalar(EXISTS_SQL).bind(id).fetch_one(pool)
            })
            .await
    }

    async fn clear_expired(&self, limit: usize) -> Result<u64> {
        let pool = &self.core.pool;
        self.core
            .clear_expired_batch(limit, |now, limit| {
                query(CLEAR_EXPIRED_SQL)
                    .bind(now)
                    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                    .execute(pool)
                    .map_ok(|done| done.rows_affected())
            })
            .await
    }

    async fn migrate(&self) -> Result<()> {
        self.core.migrate().await
    }

    async fn count_expired(&self) -> Result<Option<u64>> {
        let pool = &self.core.pool;
        self.core
            .count_expired(|now| query_scalar(COUNT_EXPIRED_SQL).bind(now).fetch_one(pool))
            .await
    }
}

// ---------------------------------------------------------------------------------------
// Writing: group commit

/// An insert or update for a writer task, with where to send whether it wrote.
enum Write {
    Insert {
        key: String,
        data: String,
        expires: OffsetDateTime,
        reply: oneshot::Sender<Result<bool>>,
    },
    Update {
        key: String,
        data: String,
        expires: OffsetDateTime,
        /// For a conditional update: the stored data it replaces, if still there.
        old: Option<String>,
        reply: oneshot::Sender<Result<bool>>,
    },
}

impl Write {
    fn key(&self) -> &str {
        match self {
            Write::Insert { key, .. } | Write::Update { key, .. } => key,
        }
    }

    /// The caller stopped waiting (timeout, cancelled request): nothing to write.
    fn abandoned(&self) -> bool {
        match self {
            Write::Insert { reply, .. } | Write::Update { reply, .. } => reply.is_closed(),
        }
    }

    /// Whether this is a conditional update expecting the text `replaced` lists for its
    /// session.
    fn expects_one_of(&self, replaced: &HashMap<String, String>) -> bool {
        match self {
            Write::Update {
                key,
                old: Some(old),
                ..
            } => replaced.get(key) == Some(old),
            _ => false,
        }
    }

    fn answer(self, result: Result<bool>) {
        // A send error means the caller stopped waiting: nothing to do.
        match self {
            Write::Insert { reply, .. } | Write::Update { reply, .. } => {
                let _ = reply.send(result);
            }
        }
    }
}

/// A load for a reader, with where to send the stored text.
struct Load {
    key: String,
    reply: oneshot::Sender<Result<Option<String>>>,
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
    async fn fetch(&self, keys: &[&str]) -> Result<HashMap<String, String>> {
        let now = self.clock.now();
        let run = || {
            query(LOAD_MANY_SQL)
                .bind(keys)
                .bind(now)
                .fetch_all(&self.pool)
        };
        let (database, timeout) = (&self.database, self.timeout);
        let what = "loading a session";
        let rows =
            within::<Postgres, _>(database, timeout, what, timeout, retry(&self.pool, run)).await?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                let key = row.try_get::<String, _>(0).ok()?;
                // `session_data` is text NOT NULL; anything else decodes as no data.
                Some((key, row.try_get::<String, _>(1).unwrap_or_default()))
            })
            .collect())
    }
}

/// Runs the inserts and updates that arrive together as one statement: one round trip
/// and one commit (one WAL flush) for many requests, instead of one each. Each caller
/// hears back only once the statement that holds its write has committed.
struct Writer {
    pool: PgPool,
    database: Arc<str>,
    timeout: Duration,
    clock: Arc<dyn Clock>,
    expiry_slack: Duration,
}

type Reply = oneshot::Sender<Result<bool>>;

impl Writer {
    async fn run(self, mut queue: mpsc::Receiver<Write>) {
        // Writes held over to the next batch: those of a session that already has a
        // write in the batch (one statement cannot write one row twice, and the later
        // write must win).
        let mut carried: VecDeque<Write> = VecDeque::new();
        // Kept from one batch to the next while there is work, so a busy writer does not
        // pay for a checkout (and sqlx's ping on release) per batch; given back to the
        // pool, for loads, whenever the writer goes idle.
        let mut conn: Option<PoolConnection<Postgres>> = None;
        // The text each conditional update of the last batch replaced, by session key.
        // A conditional update queued while that batch ran and expecting that text read
        // it before the batch committed: it cannot write, and is answered at once rather
        // than after a statement for each write of its session queued before it (which
        // keeps the writers of one busy session from falling ever further behind).
        let mut replaced: HashMap<String, String> = HashMap::new();
        loop {
            let mut next: Vec<Write> = carried.drain(..).collect();
            if next.is_empty() {
                let op = match queue.try_recv() {
                    Ok(op) => Some(op),
                    Err(_) => {
                        conn = None;
                        replaced.clear();
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
            let mut writing = HashSet::new();
            for op in next {
                if op.abandoned() {
                    continue;
                }
                if op.expects_one_of(&replaced) {
                    op.answer(Ok(false));
                    continue;
                }
                let later = !writing.insert(op.key().to_owned());
                if later || batch.len() >= MAX_BATCH {
                    carried.push_back(op);
                } else {
                    batch.push(op);
                }
            }
            replaced = self.execute(batch, &mut conn).await;
        }
    }

    /// Runs `batch` and answers its callers; answers the text each conditional update
    /// that wrote replaced, by session key.
    async fn execute(
        &self,
        batch: Vec<Write>,
        conn: &mut Option<PoolConnection<Postgres>>,
    ) -> HashMap<String, String> {
        let mut replaced = HashMap::new();
        if batch.is_empty() {
            return replaced;
        }
        let mut inserts: Vec<(String, Reply)> = Vec::new();
        let mut updates: Vec<(String, Reply)> = Vec::new();
        let now = self.clock.now();
        let mut args = BatchArgs {
            c_keys: Vec::new(),
            c_data: Vec::new(),
            c_expires: Vec::new(),
            s_keys: Vec::new(),
            s_data: Vec::new(),
            s_expires: Vec::new(),
            s_old: Vec::new(),
            s_keep: Vec::new(),
            now,
        };
        for op in batch {
            match op {
                Write::Insert {
                    key,
                    data,
                    expires,
                    reply,
                } => {
                    args.c_keys.push(key.clone());
                    args.c_data.push(data);
                    args.c_expires.push(expires);
                    inserts.push((key, reply));
                }
                Write::Update {
                    key,
                    data,
                    expires,
                    old,
                    reply,
                } => {
                    args.s_keys.push(key.clone());
                    args.s_data.push(data);
                    args.s_expires.push(expires);
                    args.s_keep
                        .push(super::keep_expiry_from(expires, now, self.expiry_slack));
                    args.s_old.push(old);
                    updates.push((key, reply));
                }
            }
        }
        let what = if updates.is_empty() {
            "creating sessions"
        } else {
            "saving sessions"
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
                for (_, reply) in inserts.into_iter().chain(updates) {
                    let _ = reply.send(Err(sql_error::<Postgres, _>(
                        &self.database,
                        self.timeout,
                        what,
                        e.clone(),
                    )));
                }
                return replaced;
            }
            Err(_) => {
                for (_, reply) in inserts.into_iter().chain(updates) {
                    let _ = reply.send(Err(Error::Store {
                        engine: ENGINE,
                        message: timed_out::<Postgres>(what, self.timeout, &self.database),
                        source: None,
                    }));
                }
                return replaced;
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
        // A send error means the caller stopped waiting: nothing to do.
        for (key, reply) in inserts {
            // Not created: the key is taken (live or expired), and the core tries another.
            let _ = reply.send(Ok(created.contains(&key)));
        }
        let olds = args.s_old.into_iter().zip(&args.s_data);
        for ((key, reply), (old, data)) in updates.into_iter().zip(olds) {
            // Not saved: the session is gone (deleted by a concurrent logout, or expired),
            // which an update must not undo, or for a conditional update another write
            // came first.
            let written = saved.contains(&key);
            let _ = reply.send(Ok(written));
            if let (true, Some(old)) = (written, old) {
                if old != *data {
                    replaced.insert(key, old);
                }
            }
        }
        replaced
    }
}

/// The columns of a batch, one array per statement parameter, and "now".
struct BatchArgs {
    c_keys: Vec<String>,
    c_data: Vec<String>,
    c_expires: Vec<OffsetDateTime>,
    s_keys: Vec<String>,
    s_data: Vec<String>,
    s_expires: Vec<OffsetDateTime>,
    s_old: Vec<Option<String>>,
    s_keep: Vec<OffsetDateTime>,
    now: OffsetDateTime,
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
                .bind(args.now)
                .fetch_all(&mut **c)
                .await;
            let e = match result {
                Ok(rows) => return Ok(rows),
                Err(e) => e,
            };
            // After an error, the pool decides whether the connection is still good.
            *conn = None;
            let again = if sqlx_common::broken_connection::<Postgres>(&e) {
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

fn sqlstate(e: &sqlx_core::Error) -> Option<&str> {
    e.as_database_error()
        .and_then(|d| d.try_downcast_ref::<PgDatabaseError>())
        .map(PgDatabaseError::code)
}

/// Whether PostgreSQL can hold `key` at all: `text` cannot contain NUL, and a key that
/// cannot be stored is simply not there (rather than a server error).
fn storable(key: &str) -> bool {
    !key.contains('\0')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::sqlx_common::parse_url;

    #[test]
    fn urls() {
        let (o, n) = parse_url::<Postgres>("postgres://u:p@db.example:5433/app", "x").unwrap();
        assert_eq!((o.get_host(), o.get_port(), n), ("db.example", 5433, 16));
        assert_eq!(o.get_database(), Some("app"));
        assert_eq!(o.get_application_name(), Some("sessio"));
        let (o, n) = parse_url::<Postgres>(
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
                matches!(parse_url::<Postgres>(bad, "x"), Err(Error::Config(_))),
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
