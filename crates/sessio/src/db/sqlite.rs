//! The `db` engine on embedded SQLite, in Django's `django_session` layout.
//!
//! Django and sessio can share the database file: same table, same `session_data` format,
//! same `expire_date` text.
//!
//! [`SqliteStore`] is a [`SessionStore`]: it keeps each session's `session_data` text by
//! key, with its `expire_date`, and the text is the record's version. The core
//! ([`ServerEngine`]) does the rest: it creates keys, encodes and decodes `session_data`,
//! and merges concurrent writes. [`SqliteEngine`] is the two together.
//!
//! # Design
//!
//! * **One writer thread, group commit.** A dedicated thread owns the only read-write
//!   connection. Writes reach it over a channel; it takes one, then everything else already
//!   queued (up to [`MAX_BATCH`]), and runs them all in one `BEGIN IMMEDIATE … COMMIT`, so
//!   many requests share one WAL append. Each caller hears back only after the `COMMIT` of
//!   its write succeeded. A statement that fails fails only its own operation; a failed
//!   `COMMIT` fails every operation of the batch.
//! * **Compare-and-set in one statement.** An update that expects a version is
//!   `UPDATE … WHERE session_key = ? AND session_data = <the text the request read> AND
//!   expire_date > <now>`; earlier writes of the same batch count (same transaction).
//!   Only when it matches no row does the writer read the row, to tell a session that is
//!   gone or expired ([`Update::Gone`], never brought back) from one another request
//!   wrote first ([`Update::Conflict`], which the core merges and retries). The writer
//!   never decodes or merges.
//! * **Readers never queue behind writes.** Loads of a database file run inline on the
//!   caller's task, other reads on tokio's blocking pool, on a small pool of read-only
//!   connections; in WAL mode they read the last committed state while the writer writes.
//! * **Checkpoints off the write path.** A second thread copies the WAL back into the
//!   database file every 100 ms; the writer never waits for those fsyncs.
//! * **Durability:** `synchronous=NORMAL`. A committed session survives the process
//!   crashing or being killed; an OS crash or power cut can lose the last commits, never
//!   the database's consistency.
//! * **Signing happens on the caller's task** (the core encodes before the write is
//!   queued), not on the writer thread, so HMAC and zlib work spreads over all cores and
//!   the writer only does SQL.
//! * **Migrations** are embedded `.sql` files under `migrations/sqlite/`, applied in order
//!   and recorded in `sessio_migrations`.
//!
//! # URLs
//!
//! `sqlite://relative/path.db`, `sqlite:///absolute/path.db`, `sqlite:path.db`, and
//! `sqlite::memory:` (one private in-memory database per store). Any `?query` is ignored,
//! except `mode=memory`, which means in-memory.

use std::cell::Cell;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::types::Value;
use rusqlite::{params, Connection, ErrorCode, OpenFlags, OptionalExtension};
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

use crate::clock::Clock;
use crate::config::Config;
use crate::engine::Version;
use crate::error::{Error, Result};
use crate::server::ServerEngine;
use crate::store::{Payload, Record, SessionStore, Update};

/// The most write operations committed in one transaction.
pub const MAX_BATCH: usize = 256;

const ENGINE: &str = "db";
const TABLE: &str = "django_session";
/// Writes waiting for the writer thread; callers wait (asynchronously) beyond this.
const QUEUE_CAPACITY: usize = 4 * MAX_BATCH;
/// Idle read connections kept open; more are opened under load and closed afterwards.
const MAX_IDLE_READERS: usize = 16;
/// How long a statement waits for a lock held by another process (Django, `sessio` CLI).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// The sleep between tries for such a lock. SQLite's own handler backs off to 100 ms
/// sleeps, so a writer waiting behind a run of short transactions (a `sessio clear-expired`
/// sweep) keeps missing the gaps between them and can wait for seconds; short, even sleeps
/// take the lock at the next gap.
const BUSY_RETRY: Duration = Duration::from_millis(1);
/// After a full `clear_expired` batch the store pauses for this fraction of the batch's
/// time, within the bounds below: a sweep takes at most ~1/8 longer, and writers it held up
/// get in before its next batch.
const CLEAR_PAUSE_DIVISOR: u32 = 8;
const MIN_CLEAR_PAUSE: Duration = Duration::from_millis(1);
const MAX_CLEAR_PAUSE: Duration = Duration::from_millis(50);
/// How often the checkpointer copies the WAL back into the database file.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(100);
/// WAL pages after which the writer checkpoints itself: only reached when the background
/// checkpointer cannot keep up.
const WRITER_AUTOCHECKPOINT_PAGES: i64 = 16_384;

/// One schema change, embedded from `migrations/sqlite/`.
struct Migration {
    version: i64,
    name: &'static str,
    sql: &'static str,
}

/// Every migration, in order. Append new ones; never edit an applied one. Each must also
/// apply cleanly after the ones before it on a database that lost `django_session`
/// (the history is then replayed from the start).
const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "0001_django_session",
    sql: include_str!("../../migrations/sqlite/0001_django_session.sql"),
}];

const MIGRATIONS_TABLE_SQL: &str = "CREATE TABLE IF NOT EXISTS sessio_migrations \
     (version INTEGER PRIMARY KEY, name TEXT, applied_at TEXT)";
const LOAD_SQL: &str =
    "SELECT session_data FROM django_session WHERE session_key = ?1 AND expire_date > ?2";
const EXISTS_SQL: &str = "SELECT 1 FROM django_session WHERE session_key = ?1";
const COUNT_EXPIRED_SQL: &str = "SELECT COUNT(*) FROM django_session WHERE expire_date < ?1";
const INSERT_SQL: &str = "INSERT INTO django_session (session_key, session_data, expire_date) \
     VALUES (?1, ?2, ?3) ON CONFLICT (session_key) DO NOTHING";
// Only a live row: an update never brings back a session that ended.
const UPDATE_SQL: &str = "UPDATE django_session SET session_data = ?2, expire_date = ?3 \
     WHERE session_key = ?1 AND expire_date > ?4";
// Compare-and-set: only if the live row still holds the text its request read.
const UPDATE_IF_SQL: &str = "UPDATE django_session SET session_data = ?2, expire_date = ?3 \
     WHERE session_key = ?1 AND session_data = ?5 AND expire_date > ?4";
const DELETE_SQL: &str = "DELETE FROM django_session WHERE session_key = ?1";
// The rowid subquery bounds the work (and the lock) of one statement.
const CLEAR_EXPIRED_SQL: &str = "DELETE FROM django_session WHERE rowid IN \
     (SELECT rowid FROM django_session WHERE expire_date < ?1 LIMIT ?2)";

/// Sessions in a SQLite `django_session` table.
///
/// Cheap to share behind an `Arc`; dropping it commits what is queued and stops the writer
/// thread.
pub struct SqliteStore {
    shared: Arc<Shared>,
    writer: Option<mpsc::Sender<Op>>,
    thread: Option<JoinHandle<()>>,
    checkpointer: Option<Checkpointer>,
}

/// The `db` engine on SQLite: the [`SqliteStore`] behind the core's [`ServerEngine`].
pub type SqliteEngine = ServerEngine<SqliteStore>;

/// Opens the SQLite `db` engine of `config` (see [`SqliteStore::open`]).
pub async fn open(config: &Config) -> Result<SqliteEngine> {
    Ok(ServerEngine::new(SqliteStore::open(config).await?, config))
}

impl ServerEngine<SqliteStore> {
    /// Opens the database that `config.database_url()` names (see
    /// [`SqliteStore::open`]).
    pub async fn open(config: &Config) -> Result<Self> {
        open(config).await
    }
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("database", &self.shared.database)
            .field("writer_running", &self.writer.is_some())
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens the database that `config.database_url()` names.
    ///
    /// With `auto_migrate` it creates the file, its directory and the schema as needed;
    /// without, a database lacking the `django_session` table is
    /// [`Error::SchemaMissing`].
    pub async fn open(config: &Config) -> Result<Self> {
        let config = config.clone();
        blocking(move || Self::open_blocking(&config)).await
    }

    fn open_blocking(config: &Config) -> Result<Self> {
        let location = Location::parse(config.database_url())?;
        let database: Arc<str> = location.to_string().into();
        let schema_missing = || Error::SchemaMissing {
            table: TABLE.into(),
            database: database.to_string(),
        };
        if let Location::File(path) = &location {
            // Without auto-migrate, don't leave an empty database file behind.
            if !config.auto_migrate() && !path.exists() {
                return Err(schema_missing());
            }
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|source| Error::Io {
                    context: format!(
                        "could not create the directory `{}` of the session database",
                        parent.display()
                    ),
                    source,
                })?;
            }
        }

        let conn =
            open_writer(&location).map_err(|e| sql_error(&database, "opening the database", e))?;
        if config.auto_migrate() {
            let now = format_expire_date(config.clock().now());
            conn.execute_batch("BEGIN IMMEDIATE")
                .map_err(|e| sql_error(&database, "starting the migration", e))?;
            match migrate(&conn, &database, &now) {
                Ok(()) => conn
                    .execute_batch("COMMIT")
                    .map_err(|e| sql_error(&database, "committing the migration", e))?,
                Err(e) => {
                    let _ = conn.execute_batch("ROLLBACK");
                    return Err(e);
                }
            }
        } else {
            let exists = table_exists(&conn, TABLE)
                .map_err(|e| sql_error(&database, "checking the schema", e))?;
            if !exists {
                return Err(schema_missing());
            }
        }

        let shared = Arc::new(Shared {
            location,
            database: database.clone(),
            clock: config.clock().clone(),
            readers: Mutex::new(Vec::new()),
        });
        // Open one reader now so that a database readers cannot open fails at start-up,
        // not on the first request.
        let reader = shared
            .open_reader()
            .map_err(|e| sql_error(&database, "opening a read connection", e))?;
        shared
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(reader);

        let checkpointer = match &shared.location {
            Location::File(path) => Some(
                Checkpointer::start(path.clone(), database.clone()).map_err(|source| {
                    Error::Io {
                        context: "could not start the SQLite checkpointer thread".into(),
                        source,
                    }
                })?,
            ),
            // An in-memory database has no WAL.
            Location::Memory { .. } => None,
        };
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let writer = Writer { conn, database };
        let thread = std::thread::Builder::new()
            .name("sessio-sqlite-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|source| Error::Io {
                context: "could not start the SQLite writer thread".into(),
                source,
            })?;
        Ok(Self {
            shared,
            writer: Some(tx),
            thread: Some(thread),
            checkpointer,
        })
    }

    /// Sends one operation to the writer thread and waits until it is committed.
    async fn write<T>(&self, op: impl FnOnce(oneshot::Sender<Result<T>>) -> Op) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        let writer = self.writer.as_ref().ok_or_else(|| self.writer_gone())?;
        writer
            .send(op(reply))
            .await
            .map_err(|_| self.writer_gone())?;
        answer.await.map_err(|_| self.writer_gone())?
    }

    fn writer_gone(&self) -> Error {
        Error::Store {
            engine: ENGINE,
            message: format!(
                "the writer thread of SQLite database `{}` has stopped",
                self.shared.database
            ),
            source: None,
        }
    }

    /// Runs a read on a pooled read-only connection, on the blocking pool.
    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Shared) -> Result<T> + Send + 'static,
    {
        let shared = self.shared.clone();
        blocking(move || f(&shared)).await
    }

    /// Now, as `expire_date` text.
    fn now(&self) -> String {
        format_expire_date(self.shared.clock.now())
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        // Closing the channel ends the writer loop once the queued writes are committed;
        // joining makes the shutdown deterministic (WAL checkpointed, file closed).
        drop(self.writer.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if let Some(checkpointer) = self.checkpointer.take() {
            checkpointer.stop();
        }
    }
}

impl SessionStore for SqliteStore {
    fn name(&self) -> &'static str {
        ENGINE
    }

    async fn load(&self, id: &str) -> Result<Option<Record>> {
        if matches!(self.shared.location, Location::File(_)) {
            // Inline, on the calling task: a primary-key read in WAL mode never waits for
            // the writer and takes a few microseconds from the page cache, less than the
            // hand-off to a blocking thread and back (measured: 1.9x the `read` requests/s
            // of a server on one core). Shared-cache in-memory databases keep the blocking
            // pool: their table locks can make a read retry and sleep.
            return self.shared.load(id);
        }
        let id = id.to_owned();
        self.read(move |shared| shared.load(&id)).await
    }

    async fn insert(
        &self,
        id: &str,
        record: &Payload<'_>,
        expires: OffsetDateTime,
    ) -> Result<bool> {
        let key = id.to_owned();
        let data = record.text().to_owned();
        let expires = format_expire_date(expires);
        self.write(|reply| Op::Insert {
            key,
            data,
            expires,
            reply,
        })
        .await
    }

    async fn update(
        &self,
        id: &str,
        record: &Payload<'_>,
        expires: OffsetDateTime,
        expected: Option<&Version>,
    ) -> Result<Update> {
        let expected = match expected {
            None => Expected::Live,
            Some(version) => match version.as_stored() {
                Some(text) => Expected::Text(text.to_owned()),
                None => Expected::Never,
            },
        };
        let key = id.to_owned();
        let data = record.text().to_owned();
        let expires = format_expire_date(expires);
        let now = self.now();
        let written = self
            .write(|reply| Op::Update {
                key,
                data,
                expires,
                now,
                expected,
                reply,
            })
            .await?;
        Ok(match written {
            Written::Stored => Update::Stored(Some(record.version())),
            Written::Conflict => Update::Conflict,
            Written::Gone => Update::Gone,
        })
    }

    async fn exists(&self, id: &str) -> Result<bool> {
        let key = id.to_owned();
        self.read(move |shared| {
            shared.with_reader("checking whether a session exists", |conn| {
                conn.prepare_cached(EXISTS_SQL)?.exists([&key])
            })
        })
        .await
    }

    async fn delete(&self, id: &str) -> Result<()> {
        let key = id.to_owned();
        self.write(|reply| Op::Delete { key, reply }).await
    }

    async fn clear_expired(&self, limit: usize) -> Result<u64> {
        if limit == 0 {
            return Ok(0);
        }
        let now = self.now();
        let started = Instant::now();
        let batch = i64::try_from(limit).unwrap_or(i64::MAX);
        let deleted = self
            .write(|reply| Op::ClearExpired {
                now,
                limit: batch,
                reply,
            })
            .await?;
        if deleted >= limit as u64 {
            // More to come. A writer in another process waiting for SQLite's one write lock
            // needs a gap it can see before the next batch, not just a yield.
            let pause =
                (started.elapsed() / CLEAR_PAUSE_DIVISOR).clamp(MIN_CLEAR_PAUSE, MAX_CLEAR_PAUSE);
            blocking(move || {
                std::thread::sleep(pause);
                Ok(())
            })
            .await?;
        }
        Ok(deleted)
    }

    async fn migrate(&self) -> Result<()> {
        let now = self.now();
        self.write(|reply| Op::Migrate { now, reply }).await
    }

    /// No: Django's `db` backend reads rows an old key signed without rewriting them.
    fn reissues_old_keys(&self) -> bool {
        false
    }

    async fn count_expired(&self) -> Result<Option<u64>> {
        self.read(|shared| {
            let now = format_expire_date(shared.clock.now());
            let n: i64 = shared.with_reader("counting expired sessions", |conn| {
                conn.prepare_cached(COUNT_EXPIRED_SQL)?
                    .query_row([&now], |r| r.get(0))
            })?;
            Ok(Some(u64::try_from(n).unwrap_or(0)))
        })
        .await
    }
}

/// Runs `f` on tokio's blocking pool; inline when there is no tokio runtime (rather than
/// panicking).
async fn blocking<T, F>(f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => runtime.spawn_blocking(f).await.map_err(|e| {
            Error::store(
                ENGINE,
                "a blocking SQLite task panicked or was cancelled",
                e,
            )
        })?,
        Err(_) => f(),
    }
}

// ---------------------------------------------------------------------------------------
// Reading

/// What the store and its reads share.
struct Shared {
    location: Location,
    /// The path (or `:memory:`), for messages.
    database: Arc<str>,
    clock: Arc<dyn Clock>,
    /// Idle read-only connections. The lock is held only to pop or push, never during a
    /// query and never across an `.await`.
    readers: Mutex<Vec<Connection>>,
}

impl Shared {
    fn open_reader(&self) -> rusqlite::Result<Connection> {
        let conn = match &self.location {
            Location::File(path) => Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?,
            Location::Memory { uri } => {
                let conn = Connection::open_with_flags(
                    uri,
                    OpenFlags::SQLITE_OPEN_READ_ONLY
                        | OpenFlags::SQLITE_OPEN_URI
                        | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                // A shared-cache database has table locks instead of WAL: without this a
                // read during a write transaction fails at once with SQLITE_LOCKED. It can
                // see a batch before its COMMIT; in memory a COMMIT cannot fail on I/O.
                conn.pragma_update(None, "read_uncommitted", true)?;
                conn
            }
        };
        wait_when_busy(&conn)?;
        Ok(conn)
    }

    /// Runs `f` on an idle read connection (opening one if none is idle).
    fn with_reader<T>(
        &self,
        what: &str,
        mut f: impl FnMut(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let idle = self
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let conn = match idle {
            Some(conn) => conn,
            None => self
                .open_reader()
                .map_err(|e| sql_error(&self.database, "opening a read connection", e))?,
        };
        let mut result = f(&conn);
        // SQLITE_LOCKED (not BUSY, so no busy handler) can still happen on a shared-cache
        // in-memory database while the schema changes: retry briefly.
        for _ in 0..200 {
            match &result {
                Err(e) if e.sqlite_error_code() == Some(ErrorCode::DatabaseLocked) => {
                    std::thread::sleep(Duration::from_millis(1));
                    result = f(&conn);
                }
                _ => break,
            }
        }
        {
            let mut idle = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
            if idle.len() < MAX_IDLE_READERS {
                idle.push(conn);
            }
        }
        result.map_err(|e| sql_error(&self.database, what, e))
    }

    /// The live record under `key`: its `session_data`, which is also its version.
    fn load(&self, key: &str) -> Result<Option<Record>> {
        let now = format_expire_date(self.clock.now());
        let row = self.with_reader("loading a session", |conn| {
            conn.prepare_cached(LOAD_SQL)?
                .query_row(params![key, now], |r| r.get::<_, Value>(0))
                .optional()
        })?;
        Ok(row.map(|value| Record::Text(loaded_text(value))))
    }
}

/// The text of a stored `session_data`. Django writes text; anything else (a blob another
/// program wrote) is read as text, and does not verify unless it is the very text, so
/// it loads as an empty session (Django's rule for data that does not verify).
fn loaded_text(value: Value) -> String {
    match value {
        Value::Text(text) => text,
        Value::Blob(bytes) => String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        Value::Integer(n) => n.to_string(),
        Value::Real(x) => x.to_string(),
        Value::Null => String::new(),
    }
}

// ---------------------------------------------------------------------------------------
// Writing

/// A write for the writer thread, with where to send its result.
enum Op {
    /// INSERT under a chosen key; `false` when the key is taken (by a live or an expired
    /// row).
    Insert {
        key: String,
        data: String,
        expires: String,
        reply: oneshot::Sender<Result<bool>>,
    },
    /// UPDATE of the row `key` if it is live at `now` and holds what `expected` says.
    Update {
        key: String,
        data: String,
        expires: String,
        now: String,
        expected: Expected,
        reply: oneshot::Sender<Result<Written>>,
    },
    Delete {
        key: String,
        reply: oneshot::Sender<Result<()>>,
    },
    ClearExpired {
        now: String,
        limit: i64,
        reply: oneshot::Sender<Result<u64>>,
    },
    Migrate {
        now: String,
        reply: oneshot::Sender<Result<()>>,
    },
}

/// What an update expects the live row to hold.
enum Expected {
    /// Anything: an unconditional update.
    Live,
    /// This `session_data` text, as a load gave it.
    Text(String),
    /// A version that is not stored text: none this store hands out, so it never matches.
    Never,
}

/// What the writer did with an update.
enum Written {
    Stored,
    /// The live row holds something else.
    Conflict,
    /// There is no live row.
    Gone,
}

/// Makes the error that every operation of a failed batch gets.
type BatchFailure<'a> = &'a dyn Fn() -> Error;

/// An executed operation waiting for its batch to commit: called with `None` once the
/// batch committed, or with the batch's failure.
type Finish = Box<dyn FnOnce(Option<BatchFailure<'_>>) + Send>;

impl Op {
    /// Answers without running (the transaction could not even start).
    fn fail(self, failure: BatchFailure<'_>) {
        // Send errors mean the caller stopped waiting: nothing to do.
        let _ = match self {
            Op::Delete { reply, .. } | Op::Migrate { reply, .. } => reply.send(Err(failure())).ok(),
            Op::ClearExpired { reply, .. } => reply.send(Err(failure())).ok(),
            Op::Update { reply, .. } => reply.send(Err(failure())).ok(),
            Op::Insert { reply, .. } => reply.send(Err(failure())).ok(),
        };
    }
}

/// Holds `result` until the batch is settled; returns whether the operation itself failed.
fn settle<T: Send + 'static>(
    reply: oneshot::Sender<Result<T>>,
    result: Result<T>,
) -> (Finish, bool) {
    let failed = result.is_err();
    let finish: Finish = Box::new(move |batch_failure: Option<BatchFailure<'_>>| {
        let result = match (result, batch_failure) {
            (Ok(_), Some(failure)) => Err(failure()),
            (result, _) => result,
        };
        let _ = reply.send(result);
    });
    (finish, failed)
}

/// The writer thread's state: the only read-write connection.
struct Writer {
    conn: Connection,
    database: Arc<str>,
}

impl Writer {
    fn run(self, mut queue: mpsc::Receiver<Op>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        // Ends when every sender is gone, i.e. the store was dropped.
        while let Some(op) = queue.blocking_recv() {
            batch.push(op);
            // Group commit: whatever queued up during the last commit goes in this one.
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(op) => batch.push(op),
                    Err(_) => break,
                }
            }
            self.commit_batch(&mut batch);
        }
    }

    fn begin(&self) -> std::result::Result<(), Arc<rusqlite::Error>> {
        // IMMEDIATE takes the write lock up front, so a concurrent writer in another
        // process makes us wait (the busy handler) here rather than fail halfway through.
        self.conn.execute_batch("BEGIN IMMEDIATE").map_err(Arc::new)
    }

    fn commit_batch(&self, batch: &mut Vec<Op>) {
        let mut ops = batch.drain(..);
        let mut done: Vec<Finish> = Vec::with_capacity(ops.len());
        if let Err(e) = self.begin() {
            let failure = || sql_error(&self.database, "starting a write transaction", e.clone());
            ops.by_ref().for_each(|op| op.fail(&failure));
            return;
        }
        while let Some(op) = ops.next() {
            let (finish, failed) = self.apply(op);
            if failed && self.conn.is_autocommit() {
                // The failure (I/O error, disk full…) made SQLite roll back the whole
                // transaction: the batch's earlier writes are gone too, so say so.
                let failure = || {
                    Error::Store {
                    engine: ENGINE,
                    message: format!(
                        "another write in the same transaction failed and SQLite rolled it back ({})",
                        self.database
                    ),
                    source: None,
                }
                };
                done.drain(..).for_each(|f| f(Some(&failure)));
                finish(None);
                if let Err(e) = self.begin() {
                    let failure =
                        || sql_error(&self.database, "starting a write transaction", e.clone());
                    ops.by_ref().for_each(|op| op.fail(&failure));
                    return;
                }
                continue;
            }
            done.push(finish);
        }
        match self.conn.execute_batch("COMMIT") {
            Ok(()) => done.into_iter().for_each(|f| f(None)),
            Err(e) => {
                if !self.conn.is_autocommit() {
                    let _ = self.conn.execute_batch("ROLLBACK");
                }
                let e = Arc::new(e);
                let failure = || sql_error(&self.database, "committing session writes", e.clone());
                done.into_iter().for_each(|f| f(Some(&failure)));
            }
        }
    }

    fn apply(&self, op: Op) -> (Finish, bool) {
        match op {
            Op::Insert {
                key,
                data,
                expires,
                reply,
            } => {
                let result = self
                    .conn
                    .prepare_cached(INSERT_SQL)
                    .and_then(|mut s| s.execute(params![key, data, expires]))
                    .map(|n| n == 1)
                    .map_err(|e| self.error("creating a session", e));
                settle(reply, result)
            }
            Op::Update {
                key,
                data,
                expires,
                now,
                expected,
                reply,
            } => settle(reply, self.update(&key, &data, &expires, &now, &expected)),
            Op::Delete { key, reply } => {
                let result = self
                    .conn
                    .prepare_cached(DELETE_SQL)
                    .and_then(|mut s| s.execute([&key]))
                    .map(drop)
                    .map_err(|e| self.error("deleting a session", e));
                settle(reply, result)
            }
            Op::ClearExpired { now, limit, reply } => {
                let result = self
                    .conn
                    .prepare_cached(CLEAR_EXPIRED_SQL)
                    .and_then(|mut s| s.execute(params![now, limit]))
                    .map(|n| n as u64)
                    .map_err(|e| self.error("deleting expired sessions", e));
                settle(reply, result)
            }
            Op::Migrate { now, reply } => settle(reply, migrate(&self.conn, &self.database, &now)),
        }
    }

    /// Django's `save(must_create=False)`, UPDATE only, of a row live at `now`: no live
    /// row means a concurrent request deleted the session (logout) or it expired, and it
    /// is not brought back. With an expected text, a compare-and-set (earlier writes of the
    /// batch count: same transaction).
    fn update(
        &self,
        key: &str,
        data: &str,
        expires: &str,
        now: &str,
        expected: &Expected,
    ) -> Result<Written> {
        let updated = match expected {
            Expected::Live => self.update_live(key, data, expires, now)?,
            Expected::Text(old) => self
                .conn
                .prepare_cached(UPDATE_IF_SQL)
                .and_then(|mut s| s.execute(params![key, data, expires, now, old]))
                .map_err(|e| self.error("saving a session", e))?,
            Expected::Never => 0,
        };
        if updated == 1 {
            return Ok(Written::Stored);
        }
        if let Expected::Live = expected {
            return Ok(Written::Gone);
        }
        // Nothing written: tell a row that is gone from one that changed.
        let stored = self
            .conn
            .prepare_cached(LOAD_SQL)
            .and_then(|mut s| {
                s.query_row(params![key, now], |r| r.get::<_, Value>(0))
                    .optional()
            })
            .map_err(|e| self.error("saving a session", e))?;
        let value = match stored {
            None => return Ok(Written::Gone),
            Some(Value::Text(_)) => return Ok(Written::Conflict),
            Some(value) => value,
        };
        // Not text (a blob another program wrote) that loads as the text expected: that is
        // the version the request read, so the write goes ahead.
        match expected {
            Expected::Text(old) if loaded_text(value) == *old => {
                match self.update_live(key, data, expires, now)? {
                    1 => Ok(Written::Stored),
                    _ => Ok(Written::Gone),
                }
            }
            _ => Ok(Written::Conflict),
        }
    }

    fn update_live(&self, key: &str, data: &str, expires: &str, now: &str) -> Result<usize> {
        self.conn
            .prepare_cached(UPDATE_SQL)
            .and_then(|mut s| s.execute(params![key, data, expires, now]))
            .map_err(|e| self.error("saving a session", e))
    }

    fn error(&self, what: &str, e: rusqlite::Error) -> Error {
        sql_error(&self.database, what, e)
    }
}

/// A thread that copies the WAL back into the database file (`wal_checkpoint(PASSIVE)`)
/// every [`CHECKPOINT_INTERVAL`], on its own connection. A checkpoint fsyncs; done by the
/// writer it would stall every write queued behind it (it tripled the writer's time per
/// write in measurements), while here it runs alongside.
struct Checkpointer {
    stop: std::sync::mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

impl Checkpointer {
    fn start(path: PathBuf, database: Arc<str>) -> std::io::Result<Self> {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("sessio-sqlite-checkpointer".into())
            .spawn(move || {
                let conn = match Connection::open_with_flags(
                    &path,
                    OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .and_then(|conn| {
                    conn.pragma_update(None, "synchronous", "NORMAL")?;
                    Ok(conn)
                }) {
                    Ok(conn) => conn,
                    Err(error) => {
                        // The writer's own auto-checkpoint still bounds the WAL.
                        tracing::warn!(%database, %error, "the SQLite checkpointer could not start");
                        return;
                    }
                };
                // Runs until the store is dropped (the sender goes away).
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(CHECKPOINT_INTERVAL)
                {
                    // PASSIVE never waits for, nor blocks, readers and the writer.
                    if let Err(error) =
                        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    {
                        tracing::debug!(%database, %error, "WAL checkpoint failed; retrying later");
                    }
                }
            })?;
        Ok(Self { stop, thread })
    }

    fn stop(self) {
        drop(self.stop);
        let _ = self.thread.join();
    }
}

/// Makes `conn` retry a lock another connection holds every [`BUSY_RETRY`] for up to
/// [`BUSY_TIMEOUT`], then fail with `SQLITE_BUSY`.
fn wait_when_busy(conn: &Connection) -> rusqlite::Result<()> {
    fn retry(attempt: i32) -> bool {
        thread_local! {
            // When this thread's current wait began: SQLite calls the handler on the
            // waiting thread, with `attempt` 0 at the start of each wait.
            static SINCE: Cell<Option<Instant>> = const { Cell::new(None) };
        }
        let now = Instant::now();
        let since = SINCE.with(|since| match since.get() {
            Some(t) if attempt > 0 => t,
            _ => {
                since.set(Some(now));
                now
            }
        });
        if now.duration_since(since) >= BUSY_TIMEOUT {
            return false;
        }
        std::thread::sleep(BUSY_RETRY);
        true
    }
    conn.busy_handler(Some(retry))
}

/// Opens the read-write connection and sets it up for throughput.
fn open_writer(location: &Location) -> rusqlite::Result<Connection> {
    let conn = match location {
        // No URI flag for paths: a file named `file:…` is still a file.
        Location::File(path) => Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?,
        Location::Memory { uri } => Connection::open_with_flags(
            uri,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_URI
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?,
    };
    wait_when_busy(&conn)?;
    // WAL: readers read the last commit while the writer writes, and a commit is one
    // sequential append. The mode is stored in the file, so it stays on for Django too
    // (which handles WAL fine). In-memory databases stay in `memory` mode.
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    if let Location::File(path) = location {
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(
                database = %path.display(),
                journal_mode = %mode,
                "SQLite refused WAL mode; reads will wait for writes"
            );
        }
    }
    // synchronous=NORMAL with WAL: no fsync per commit. A committed write is in the WAL
    // file (the OS page cache) and survives a crash or kill of this process; only an OS
    // crash or power cut can lose the last commits, and never corrupts the database. FULL
    // would cap writes at the disk's fsync rate.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // Truncate the WAL file back to this size after checkpoints instead of keeping its
    // high-water mark forever.
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    // The checkpointer thread does this work; see `Checkpointer`.
    let _: i64 = conn.pragma_update_and_check(
        None,
        "wal_autocheckpoint",
        WRITER_AUTOCHECKPOINT_PAGES,
        |r| r.get(0),
    )?;
    // Session keys are random, so every write touches a random page of the primary-key
    // index: keep the indexes in memory rather than re-reading them (32 MiB, negative =
    // KiB).
    conn.pragma_update(None, "cache_size", -32_768)?;
    Ok(conn)
}

/// Applies the pending migrations, inside the caller's transaction (a savepoint, so a
/// failed migration leaves nothing behind and the rest of a batch still commits).
fn migrate(conn: &Connection, database: &str, now: &str) -> Result<()> {
    let error = |e| sql_error(database, "applying migrations", e);
    conn.execute_batch("SAVEPOINT sessio_migrate")
        .map_err(error)?;
    let applied = (|| -> rusqlite::Result<Vec<&'static str>> {
        conn.execute_batch(MIGRATIONS_TABLE_SQL)?;
        if !table_exists(conn, TABLE)? {
            // The history is stale (say, Django's `migrate sessions zero` dropped the
            // table): start again from the first migration.
            conn.execute("DELETE FROM sessio_migrations", [])?;
        }
        let done: Vec<i64> = conn
            .prepare("SELECT version FROM sessio_migrations")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut applied = Vec::new();
        for m in MIGRATIONS.iter().filter(|m| !done.contains(&m.version)) {
            conn.execute_batch(m.sql)?;
            conn.execute(
                "INSERT INTO sessio_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
                params![m.version, m.name, now],
            )?;
            applied.push(m.name);
        }
        Ok(applied)
    })();
    match applied {
        Ok(applied) => {
            conn.execute_batch("RELEASE sessio_migrate")
                .map_err(error)?;
            for name in applied {
                tracing::info!(database, migration = name, "applied session migration");
            }
            Ok(())
        }
        Err(e) => {
            // Fails harmlessly if SQLite already rolled the whole transaction back.
            let _ = conn.execute_batch("ROLLBACK TO sessio_migrate; RELEASE sessio_migrate");
            Err(error(e))
        }
    }
}

fn table_exists(conn: &Connection, table: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1")?
        .exists([table])
}

/// Maps a driver error: a missing table is the schema's absence, anything else a store
/// failure with the driver error as its source.
fn sql_error<E>(database: &str, what: &str, e: E) -> Error
where
    E: std::borrow::Borrow<rusqlite::Error> + std::error::Error + Send + Sync + 'static,
{
    if let rusqlite::Error::SqliteFailure(_, Some(message)) = e.borrow() {
        if message.contains("no such table") {
            return Error::SchemaMissing {
                table: TABLE.into(),
                database: database.into(),
            };
        }
    }
    Error::store(
        ENGINE,
        format!("{what} failed on SQLite database `{database}`"),
        e,
    )
}

// ---------------------------------------------------------------------------------------
// URLs and dates

/// Where the database lives.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Location {
    File(PathBuf),
    /// A named shared-cache in-memory database, unique to one engine.
    Memory {
        uri: String,
    },
}

impl Location {
    fn parse(url: &str) -> Result<Self> {
        let invalid = |why: &str| {
            Error::Config(format!(
                "database URL `{}` {why}: use sqlite://path/to/sessions.db, \
                 sqlite:///absolute/path.db or sqlite::memory:",
                crate::error::redact_url(url)
            ))
        };
        let rest = url
            .strip_prefix("sqlite:")
            .ok_or_else(|| invalid("is not a SQLite URL"))?;
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let (path, query) = match rest.split_once('?') {
            Some((path, query)) => (path, query),
            None => (rest, ""),
        };
        let memory_mode = query
            .split('&')
            .any(|pair| pair.eq_ignore_ascii_case("mode=memory"));
        if path == ":memory:" || memory_mode {
            // All connections of one engine must see one database: a named, shared-cache
            // in-memory database. The random name keeps two engines apart. The writer's
            // connection keeps it alive for the engine's lifetime.
            let name = crate::key::random_string(16, crate::key::KEY_CHARS)?;
            return Ok(Location::Memory {
                uri: format!("file:sessio-mem-{name}?mode=memory&cache=shared"),
            });
        }
        if path.is_empty() {
            return Err(invalid("names no file"));
        }
        if !query.is_empty() {
            tracing::debug!(query, "ignoring the query of the SQLite database URL");
        }
        Ok(Location::File(PathBuf::from(path)))
    }

    #[cfg(test)]
    fn path(&self) -> Option<&std::path::Path> {
        match self {
            Location::File(path) => Some(path),
            Location::Memory { .. } => None,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File(path) => write!(f, "{}", path.display()),
            Location::Memory { .. } => f.write_str(":memory:"),
        }
    }
}

/// `expire_date` as Django writes it on SQLite: naive UTC text,
/// `2023-11-28 22:13:20`, or `2026-12-10 12:41:23.537181` when there are microseconds.
///
/// The text sorts like the time, so SQL compares it as text. Dates before year 1 (which
/// Python cannot represent) become `0001-01-01 00:00:00`.
///
/// ```
/// use sessio::db::sqlite::format_expire_date;
/// use time::macros::datetime;
///
/// assert_eq!(format_expire_date(datetime!(2023-11-28 22:13:20 UTC)), "2023-11-28 22:13:20");
/// assert_eq!(
///     format_expire_date(datetime!(2026-12-10 13:41:23.537181 +01:00)),
///     "2026-12-10 12:41:23.537181"
/// );
/// ```
pub fn format_expire_date(at: OffsetDateTime) -> String {
    // Through the Unix timestamp: converting to UTC cannot panic at the edges of the range.
    let Ok(utc) = OffsetDateTime::from_unix_timestamp_nanos(at.unix_timestamp_nanos()) else {
        return "0001-01-01 00:00:00".into();
    };
    if utc.year() < 1 {
        return "0001-01-01 00:00:00".into();
    }
    let mut text = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        utc.year(),
        u8::from(utc.month()),
        utc.day(),
        utc.hour(),
        utc.minute(),
        utc.second()
    );
    let micros = utc.microsecond();
    if micros != 0 {
        text.push_str(&format!(".{micros:06}"));
    }
    text
}

/// Parses an `expire_date` that Django or sessio wrote on SQLite (naive UTC, with or
/// without a fraction, `T` or space between date and time).
///
/// ```
/// use sessio::db::sqlite::parse_expire_date;
///
/// let t = parse_expire_date("2026-12-10 12:41:23.537181").unwrap();
/// assert_eq!(t.microsecond(), 537_181);
/// assert_eq!(parse_expire_date("2023-11-28 22:13:20").unwrap().unix_timestamp(), 1_701_209_600);
/// assert!(parse_expire_date("yesterday").is_none());
/// ```
pub fn parse_expire_date(text: &str) -> Option<OffsetDateTime> {
    use time::macros::format_description;
    use time::PrimitiveDateTime;
    let text = text.trim().replacen('T', " ", 1);
    let whole = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    let fraction = format_description!("[year]-[month]-[day] [hour]:[minute]:[second].[subsecond]");
    PrimitiveDateTime::parse(&text, whole)
        .or_else(|_| PrimitiveDateTime::parse(&text, fraction))
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::engine::{SessionData, SessionEngine};
    use crate::json;
    use std::path::Path;
    use std::time::Instant;
    use tempfile::TempDir;
    use time::macros::datetime;

    const T0: i64 = 1_700_000_000;
    const DJANGO_DATA: &str =
        "eyJ1c2VyX2lkIjo0MiwiY2FydCI6WzEsMl19:1r31eq:EuHZHOfZueYvjUO7CERx-u8g7grivz5XfByNK-8nVNg";

    fn db_path(dir: &TempDir) -> PathBuf {
        dir.path().join("s.db")
    }

    fn config(url: String, clock: ManualClock, auto_migrate: bool) -> Config {
        Config::builder()
            .secret_key("test-secret")
            .allow_weak_secret_key(true)
            .database_url(url)
            .auto_migrate(auto_migrate)
            .clock(clock)
            .build()
            .unwrap()
    }

    fn file_config(dir: &TempDir, clock: &ManualClock) -> Config {
        let url = format!("sqlite://{}", db_path(dir).display());
        config(url, clock.clone(), true)
    }

    async fn open(dir: &TempDir, clock: &ManualClock) -> SqliteEngine {
        SqliteEngine::open(&file_config(dir, clock)).await.unwrap()
    }

    fn raw(dir: &TempDir) -> Connection {
        let conn = Connection::open(db_path(dir)).unwrap();
        conn.busy_timeout(BUSY_TIMEOUT).unwrap();
        conn
    }

    /// A writer that finds the lock taken by a run of short transactions with small gaps
    /// between them (another process's clear-expired sweep) gets in at a gap, rather than
    /// backing off past every one of them.
    #[test]
    fn a_busy_writer_gets_in_between_short_transactions() {
        let dir = TempDir::new().unwrap();
        let sweeper = open_writer(&Location::File(db_path(&dir))).unwrap();
        sweeper
            .execute_batch("CREATE TABLE t (x INTEGER); BEGIN IMMEDIATE")
            .unwrap();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sweeping = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                // 20 ms transactions with 2 ms gaps, for up to 2 s.
                for _ in 0..90 {
                    std::thread::sleep(Duration::from_millis(20));
                    sweeper.execute_batch("COMMIT").unwrap();
                    std::thread::sleep(Duration::from_millis(2));
                    if stop.load(std::sync::atomic::Ordering::SeqCst) {
                        return;
                    }
                    sweeper.execute_batch("BEGIN IMMEDIATE").unwrap();
                }
                sweeper.execute_batch("COMMIT").unwrap();
            })
        };
        let writer = open_writer(&Location::File(db_path(&dir))).unwrap();
        let t = Instant::now();
        writer
            .execute_batch("BEGIN IMMEDIATE; INSERT INTO t VALUES (1); COMMIT")
            .unwrap();
        let waited = t.elapsed();
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        sweeping.join().unwrap();
        // SQLite's default handler sleeps 100 ms at a time by then and would keep missing
        // the 2 ms gaps; a generous bound, for loaded machines.
        assert!(waited < Duration::from_millis(1000), "waited {waited:?}");
    }

    fn rows(dir: &TempDir) -> i64 {
        raw(dir)
            .query_row("SELECT COUNT(*) FROM django_session", [], |r| r.get(0))
            .unwrap()
    }

    fn data(value: crate::Value) -> SessionData {
        value.as_object().unwrap().clone()
    }

    fn at(unix: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(unix).unwrap()
    }

    const DAY: i64 = 86_400;

    #[tokio::test]
    async fn create_load_save_delete_exists() {
        let dir = TempDir::new().unwrap();
        let clock = ManualClock::at_unix(T0);
        let engine = open(&dir, &clock).await;
        assert_eq!(engine.name(), "db");
        assert!(!engine.is_client_side());

        let first = data(json!({"user_id": 42, "cart": [1, 2]}));
        let key = engine.create(&first, at(T0 + DAY)).await.unwrap();
        assert_eq!(key.len(), 32);
        assert_eq!(engine.load(&key).await.unwrap(), Some(first));
        assert!(engine.exists(&key).await.unwrap());

        let second = data(json!({"user_id": 42, "theme": "dark", "é": "ü"}));
        let saved = engine.save(&key, &second, at(T0 + 2 * DAY)).await.unwrap();
        assert_eq!(saved, key);
        assert_eq!(engine.load(&key).await.unwrap(), Some(second));
        let expire: String = raw(&dir)
            .query_row(
                "SELECT expire_date FROM django_session WHERE session_key = ?1",
                [&key],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(expire, "2023-11-16 22:13:20");

        engine.delete(&key).await.unwrap();
        assert!(!engine.exists(&key).await.unwrap());
        assert_eq!(engine.load(&key).await.unwrap(), None);
        engine.delete(&key).await.unwrap();
        engine.delete("never-existed").await.unwrap();
        assert_eq!(rows(&dir), 0);
    }

    #[tokio::test]
    async fn unknown_key_loads_none_and_creates_nothing() {
        let dir = TempDir::new().unwrap();
        let engine = open(&dir, &ManualClock::at_unix(T0)).await;
        for key in [
            "doesnotexist00000000000000000000",
            "",
            "' OR 1=1 --",
            "ü\0x",
        ] {
            assert_eq!(engine.load(key).await.unwrap(), None);
            assert!(!engine.exists(key).await.unwrap());
        }
        assert_eq!(rows(&dir), 0);
    }

    #[tokio::test]
    async fn expired_rows_are_not_loaded_and_are_cleared_in_batches() {
        let dir = TempDir::new().unwrap();
        let clock = ManualClock::at_unix(T0);
        let engine = Arc::new(open(&dir, &clock).await);
        let d = data(json!({"n": 1}));

        let mut tasks = Vec::new();
        for i in 0..2510 {
            let (engine, d) = (engine.clone(), d.clone());
            let expires = if i < 2500 {
                at(T0 - 1 - i)
            } else {
                at(T0 + DAY)
            };
            tasks.push(tokio::spawn(async move {
                engine.create(&d, expires).await.unwrap()
            }));
        }
        let mut keys = Vec::new();
        for t in tasks {
            keys.push(t.await.unwrap());
        }
        assert_eq!(rows(&dir), 2510);
        assert_eq!(engine.count_expired().await.unwrap(), Some(2500));
        assert_eq!(engine.load(&keys[0]).await.unwrap(), None);
        assert!(
            engine.exists(&keys[0]).await.unwrap(),
            "expired rows still exist"
        );
        assert_eq!(engine.load(&keys[2505]).await.unwrap(), Some(d.clone()));

        let mut batches = Vec::new();
        loop {
            let n = engine.clear_expired_batch(1000).await.unwrap();
            batches.push(n);
            if n < 1000 {
                break;
            }
        }
        assert_eq!(batches, [1000, 1000, 500]);
        assert_eq!(rows(&dir), 10);
        assert_eq!(engine.count_expired().await.unwrap(), Some(0));
        assert_eq!(engine.clear_expired_batch(0).await.unwrap(), 0);
        for key in &keys[2500..] {
            assert_eq!(engine.load(key).await.unwrap(), Some(d.clone()));
        }
    }

    #[tokio::test]
    async fn expiry_boundaries_are_strict() {
        let dir = TempDir::new().unwrap();
        let clock = ManualClock::at_unix(T0);
        let engine = open(&dir, &clock).await;
        let d = data(json!({"a": 1}));
        let key = engine.create(&d, at(T0 + 10)).await.unwrap();
        clock.set(at(T0 + 10) - time::Duration::microseconds(1));
        assert_eq!(engine.load(&key).await.unwrap(), Some(d));
        // expire_date == now: not loaded (Django: expire_date > now) and not cleared
        // (Django: expire_date < now).
        clock.set(at(T0 + 10));
        assert_eq!(engine.load(&key).await.unwrap(), None);
        assert_eq!(engine.count_expired().await.unwrap(), Some(0));
        assert_eq!(engine.clear_expired_batch(10).await.unwrap(), 0);
        clock.set(at(T0 + 10) + time::Duration::microseconds(1));
        assert_eq!(engine.clear_expired_batch(10).await.unwrap(), 1);
    }

    /// The store's contract: insert only if absent, update only a live row, and with an
    /// expected version only if the row still holds it; gone and changed told apart.
    #[tokio::test]
    async fn update_is_a_compare_and_set_that_tells_gone_from_conflict() {
        let dir = TempDir::new().unwrap();
        let clock = ManualClock::at_unix(T0);
        let config = file_config(&dir, &clock);
        let store = SqliteStore::open(&config).await.unwrap();
        let codec = config.store_codec();
        let (a, b) = (
            Arc::new(data(json!({"n": 1}))),
            Arc::new(data(json!({"n": 2}))),
        );
        let (a, b) = (Payload::new(&a, &codec, T0), Payload::new(&b, &codec, T0));
        let key = "cas00000000000000000000000000000";
        assert!(store.insert(key, &a, at(T0 + DAY)).await.unwrap());
        assert!(!store.insert(key, &b, at(T0 + DAY)).await.unwrap());
        let Some(Record::Text(read)) = store.load(key).await.unwrap() else {
            panic!("not loaded")
        };
        assert_eq!(read, a.text());
        let read = Version::stored(read);

        let stored = store.update(key, &b, at(T0 + DAY), Some(&read)).await;
        assert_eq!(stored.unwrap(), Update::Stored(Some(b.version())));
        // Another request wrote since `read`: a conflict, and nothing written.
        let conflict = store.update(key, &a, at(T0 + DAY), Some(&read)).await;
        assert_eq!(conflict.unwrap(), Update::Conflict);
        let counter = Version::counter(1);
        let conflict = store.update(key, &a, at(T0 + DAY), Some(&counter)).await;
        assert_eq!(conflict.unwrap(), Update::Conflict);
        assert_eq!(
            store.load(key).await.unwrap(),
            Some(Record::Text(b.text().into()))
        );

        // Expired: gone for every update, though the row is still there.
        clock.set(at(T0 + DAY));
        let expected = b.version();
        for expected in [Some(&expected), Some(&read), None] {
            let gone = store.update(key, &a, at(T0 + 2 * DAY), expected).await;
            assert_eq!(gone.unwrap(), Update::Gone);
        }
        assert!(store.exists(key).await.unwrap());
        assert_eq!(rows(&dir), 1);
        clock.set(at(T0));
        store.delete(key).await.unwrap();
        assert_eq!(
            store.update(key, &a, at(T0 + DAY), None).await.unwrap(),
            Update::Gone
        );
        assert_eq!(rows(&dir), 0);

        // A blob row is read as its text, and an update that read it goes through.
        raw(&dir)
            .execute(
                "INSERT INTO django_session VALUES (?1, CAST(?2 AS BLOB), '2030-01-01 00:00:00')",
                params![key, a.text()],
            )
            .unwrap();
        let Some(Record::Text(read)) = store.load(key).await.unwrap() else {
            panic!("not loaded")
        };
        assert_eq!(read, a.text());
        let read = Version::stored(read);
        let stored = store.update(key, &b, at(T0 + DAY), Some(&read)).await;
        assert_eq!(stored.unwrap(), Update::Stored(Some(b.version())));
        assert_eq!(
            store.load(key).await.unwrap(),
            Some(Record::Text(b.text().into()))
        );
    }

    #[tokio::test]
    async fn save_after_delete_is_interrupted_and_inserts_nothing() {
        let dir = TempDir::new().unwrap();
        let engine = open(&dir, &ManualClock::at_unix(T0)).await;
        let d = data(json!({"user_id": 1}));
        let key = engine.create(&d, at(T0 + DAY)).await.unwrap();
        engine.delete(&key).await.unwrap();
        let err = engine.save(&key, &d, at(T0 + DAY)).await.unwrap_err();
        assert!(matches!(err, Error::SessionInterrupted), "{err:?}");
        assert_eq!(err.status(), http::StatusCode::BAD_REQUEST);
        let err = engine
            .save("neverexisted0000", &d, at(T0 + DAY))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::SessionInterrupted), "{err:?}");
        assert_eq!(rows(&dir), 0);
    }

    #[tokio::test]
    async fn missing_schema_without_auto_migrate() {
        let dir = TempDir::new().unwrap();
        let clock = ManualClock::at_unix(T0);
        let url = format!("sqlite://{}", db_path(&dir).display());

        // No file at all: refused, and no empty file is left behind.
        let err = SqliteEngine::open(&config(url.clone(), clock.clone(), false))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::SchemaMissing { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains("sessio migrate"), "{message}");
        assert!(message.contains("django_session"), "{message}");
        assert!(message.contains("s.db"), "{message}");
        assert!(!db_path(&dir).exists());

        // A database without the table.
        raw(&dir)
            .execute_batch("CREATE TABLE other (x INTEGER)")
            .unwrap();
        let err = SqliteEngine::open(&config(url.clone(), clock.clone(), false))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("sessio migrate"), "{err}");

        // The table disappears while running: SchemaMissing too, from reads and writes.
        let engine = SqliteEngine::open(&config(url, clock, true)).await.unwrap();
        raw(&dir)
            .execute_batch("DROP TABLE django_session")
            .unwrap();
        let err = engine.load("somekey0000000000").await.unwrap_err();
        assert!(matches!(err, Error::SchemaMissing { .. }), "{err:?}");
        let err = engine
            .create(&SessionData::new(), at(T0 + DAY))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::SchemaMissing { .. }), "{err:?}");
        // `migrate` brings it back.
        engine.migrate().await.unwrap();
        let key = engine
            .create(&SessionData::new(), at(T0 + DAY))
            .await
            .unwrap();
        assert!(engine.exists(&key).await.unwrap());
    }

    #[tokio::test]
    async fn migrate_is_idempotent_and_adopts_djangos_table() {
        let dir = TempDir::new().unwrap();
        let clock = ManualClock::at_unix(T0);
        // Exactly what Django's `migrate` runs on SQLite.
        raw(&dir)
            .execute_batch(
                r#"CREATE TABLE "django_session" ("session_key" varchar(40) NOT NULL PRIMARY KEY, "session_data" text NOT NULL, "expire_date" datetime NOT NULL);
                   CREATE INDEX "django_session_expire_date_a5c62663" ON "django_session" ("expire_date");"#,
            )
            .unwrap();
        raw(&dir)
            .execute(
                "INSERT INTO django_session VALUES ('djangokey000000000000000000000000', ?1, '2023-11-28 22:13:20')",
                [DJANGO_DATA],
            )
            .unwrap();

        // Django's table is enough to run without migrating.
        let url = format!("sqlite://{}", db_path(&dir).display());
        let engine = SqliteEngine::open(&config(url, clock.clone(), false))
            .await
            .unwrap();
        engine.migrate().await.unwrap();
        engine.migrate().await.unwrap();
        drop(engine);
        let engine = open(&dir, &clock).await; // auto-migrate on an up-to-date database
        engine.migrate().await.unwrap();

        let conn = raw(&dir);
        let applied: Vec<(i64, String)> = conn
            .prepare("SELECT version, name FROM sessio_migrations")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(applied, [(1, "0001_django_session".to_string())]);
        let indexes: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'django_session' AND name = 'django_session_expire_date_a5c62663'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(indexes, 1);
        assert_eq!(
            engine
                .load("djangokey000000000000000000000000")
                .await
                .unwrap(),
            Some(data(json!({"user_id": 42, "cart": [1, 2]})))
        );
    }

    #[tokio::test]
    async fn fresh_database_gets_djangos_exact_schema() {
        let dir = TempDir::new().unwrap();
        let nested = dir.path().join("a/b/s.db");
        let url = format!("sqlite://{}", nested.display());
        let engine = SqliteEngine::open(&config(url, ManualClock::at_unix(T0), true))
            .await
            .unwrap();
        drop(engine);
        let conn = Connection::open(&nested).unwrap();
        let sql: String = conn
            .query_row(
                "SELECT sql FROM sqlite_master WHERE name = 'django_session'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(
            sql,
            r#"CREATE TABLE "django_session" ("session_key" varchar(40) NOT NULL PRIMARY KEY, "session_data" text NOT NULL, "expire_date" datetime NOT NULL)"#
        );
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[tokio::test]
    async fn expire_date_is_stored_as_django_writes_it() {
        assert_eq!(format_expire_date(at(T0)), "2023-11-14 22:13:20");
        let with_micros = datetime!(2026-12-10 12:41:23.537181 UTC);
        assert_eq!(
            format_expire_date(with_micros),
            "2026-12-10 12:41:23.537181"
        );
        // Nanoseconds are truncated to Python's microseconds; offsets become UTC.
        assert_eq!(
            format_expire_date(datetime!(2026-12-10 14:41:23.000000999 +02:00)),
            "2026-12-10 12:41:23"
        );
        assert_eq!(
            format_expire_date(datetime!(2026-01-01 00:00:00.000001 UTC)),
            "2026-01-01 00:00:00.000001"
        );
        assert_eq!(
            format_expire_date(datetime!(-0005-01-01 00:00 UTC)),
            "0001-01-01 00:00:00"
        );
        assert_eq!(
            parse_expire_date("2026-12-10 12:41:23.537181"),
            Some(with_micros)
        );
        assert_eq!(parse_expire_date("2023-11-14 22:13:20"), Some(at(T0)));
        assert_eq!(parse_expire_date("2023-11-14T22:13:20"), Some(at(T0)));
        assert_eq!(parse_expire_date(""), None);

        let dir = TempDir::new().unwrap();
        let engine = open(&dir, &ManualClock::at_unix(T0)).await;
        let a = engine
            .create(&SessionData::new(), at(T0 + DAY))
            .await
            .unwrap();
        let b = engine
            .create(&SessionData::new(), with_micros)
            .await
            .unwrap();
        let stored = |key: &str| -> String {
            raw(&dir)
                .query_row(
                    "SELECT expire_date FROM django_session WHERE session_key = ?1",
                    [key],
                    |r| r.get(0),
                )
                .unwrap()
        };
        assert_eq!(stored(&a), "2023-11-15 22:13:20");
        assert_eq!(stored(&b), "2026-12-10 12:41:23.537181");
    }

    #[tokio::test]
    async fn reads_rows_django_wrote_and_writes_what_django_reads() {
        let dir = TempDir::new().unwrap();
        let clock = ManualClock::at_unix(T0);
        let engine = open(&dir, &clock).await;
        let key = "djangokey000000000000000000000000";
        raw(&dir)
            .execute(
                "INSERT INTO django_session VALUES (?1, ?2, '2023-11-28 22:13:20')",
                [key, DJANGO_DATA],
            )
            .unwrap();
        let expected = data(json!({"user_id": 42, "cart": [1, 2]}));
        assert_eq!(engine.load(key).await.unwrap(), Some(expected.clone()));
        // The session_data timestamp is not an expiry (Django passes no max_age).
        clock.set(at(T0 + 13 * DAY));
        assert_eq!(engine.load(key).await.unwrap(), Some(expected.clone()));
        clock.set(at(T0 + 14 * DAY));
        assert_eq!(engine.load(key).await.unwrap(), None);

        // What sessio writes is byte for byte what Django writes.
        clock.set(at(T0));
        let ours = engine.create(&expected, at(T0 + 14 * DAY)).await.unwrap();
        let (session_data, expire_date): (String, String) = raw(&dir)
            .query_row(
                "SELECT session_data, expire_date FROM django_session WHERE session_key = ?1",
                [&ours],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(session_data, DJANGO_DATA);
        assert_eq!(expire_date, "2023-11-28 22:13:20");
    }

    #[tokio::test]
    async fn corrupted_session_data_loads_as_an_empty_session() {
        let dir = TempDir::new().unwrap();
        let engine = open(&dir, &ManualClock::at_unix(T0)).await;
        let conn = raw(&dir);
        let tampered = DJANGO_DATA.replace("eyJ1c2Vy", "eyJ2c2Vy");
        let legacy = "NDY0YjEyNGZkZGQwNmEwNjI2M2NiNDg4NTFmNDMzMTZjN2IwMjc1Nzp7InVzZXJfaWQiOjQyLCJjYXJ0IjpbMSwyXX0=";
        for (i, value) in ["garbage", "", tampered.as_str(), legacy, "a:b:c"]
            .iter()
            .enumerate()
        {
            conn.execute(
                "INSERT INTO django_session VALUES (?1, ?2, '2030-01-01 00:00:00')",
                params![format!("corrupt{i}"), value],
            )
            .unwrap();
        }
        conn.execute(
            "INSERT INTO django_session VALUES ('blobkey', x'00ff', '2030-01-01 00:00:00')",
            [],
        )
        .unwrap();
        for i in 0..5 {
            assert_eq!(
                engine.load(&format!("corrupt{i}")).await.unwrap(),
                Some(SessionData::new()),
                "row {i}"
            );
        }
        assert_eq!(
            engine.load("blobkey").await.unwrap(),
            Some(SessionData::new())
        );
        // Another secret key: the signature does not verify either.
        let other = Config::builder()
            .secret_key("another-secret")
            .allow_weak_secret_key(true)
            .database_url(format!("sqlite://{}", db_path(&dir).display()))
            .clock(ManualClock::at_unix(T0))
            .build()
            .unwrap();
        let other = SqliteEngine::open(&other).await.unwrap();
        let key = engine
            .create(&data(json!({"a": 1})), at(T0 + DAY))
            .await
            .unwrap();
        assert_eq!(other.load(&key).await.unwrap(), Some(SessionData::new()));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_creates_and_saves_are_group_committed() {
        let dir = TempDir::new().unwrap();
        let engine = Arc::new(open(&dir, &ManualClock::at_unix(T0)).await);
        let gone = engine
            .create(&SessionData::new(), at(T0 + DAY))
            .await
            .unwrap();
        engine.delete(&gone).await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..200 {
            let engine = engine.clone();
            let gone = gone.clone();
            tasks.push(tokio::spawn(async move {
                let key = engine.create(&data(json!({"i": i})), at(T0 + DAY)).await?;
                engine
                    .save(&key, &data(json!({"i": i, "saved": true})), at(T0 + DAY))
                    .await?;
                // A failing operation in the same batches must not fail the others.
                let interrupted = engine.save(&gone, &SessionData::new(), at(T0 + DAY)).await;
                assert!(matches!(interrupted, Err(Error::SessionInterrupted)));
                let loaded = engine.load(&key).await?;
                assert_eq!(loaded, Some(data(json!({"i": i, "saved": true}))));
                Ok::<_, Error>(key)
            }));
        }
        let mut keys = std::collections::HashSet::new();
        for t in tasks {
            keys.insert(t.await.unwrap().unwrap());
        }
        assert_eq!(keys.len(), 200);
        assert_eq!(rows(&dir), 200);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn in_memory_database_is_shared_by_reader_and_writer() {
        for url in [
            "sqlite::memory:",
            "sqlite://:memory:",
            "sqlite://x.db?mode=memory",
        ] {
            let config = config(url.into(), ManualClock::at_unix(T0), true);
            let engine = SqliteEngine::open(&config).await.unwrap();
            let other = SqliteEngine::open(&config).await.unwrap();
            let d = data(json!({"in": "memory"}));
            let key = engine.create(&d, at(T0 + DAY)).await.unwrap();
            assert_eq!(engine.load(&key).await.unwrap(), Some(d.clone()), "{url}");
            assert!(engine.exists(&key).await.unwrap());
            // Each engine has its own database.
            assert_eq!(other.load(&key).await.unwrap(), None);
            let mut tasks = Vec::new();
            let engine = Arc::new(engine);
            for _ in 0..50 {
                let (engine, d) = (engine.clone(), d.clone());
                tasks.push(tokio::spawn(async move {
                    let key = engine.create(&d, at(T0 + DAY)).await.unwrap();
                    engine.save(&key, &d, at(T0 + DAY)).await.unwrap();
                    assert_eq!(engine.load(&key).await.unwrap(), Some(d));
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
            assert_eq!(engine.count_expired().await.unwrap(), Some(0));
        }
        assert!(!Path::new("x.db").exists());
    }

    #[test]
    fn urls() {
        let file = |url: &str| Location::parse(url).unwrap().path().map(Path::to_path_buf);
        assert_eq!(file("sqlite://data/s.db"), Some("data/s.db".into()));
        assert_eq!(file("sqlite:///var/lib/s.db"), Some("/var/lib/s.db".into()));
        assert_eq!(file("sqlite:s.db"), Some("s.db".into()));
        assert_eq!(file("sqlite://s.db?mode=rwc"), Some("s.db".into()));
        assert_eq!(file("sqlite::memory:"), None);
        assert_eq!(file("sqlite://:memory:?cache=shared"), None);
        let Location::Memory { uri: a } = Location::parse("sqlite::memory:").unwrap() else {
            panic!("not in memory")
        };
        let Location::Memory { uri: b } = Location::parse("sqlite::memory:").unwrap() else {
            panic!("not in memory")
        };
        assert_ne!(a, b);
        assert!(a.starts_with("file:sessio-mem-") && a.ends_with("?mode=memory&cache=shared"));
        for bad in ["sqlite://", "sqlite:", "sqlite:?mode=rwc", "postgres://x/y"] {
            assert!(
                matches!(Location::parse(bad), Err(Error::Config(_))),
                "{bad}"
            );
        }
    }

    /// A minimal executor that is not tokio.
    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        struct Unpark(std::thread::Thread);
        impl std::task::Wake for Unpark {
            fn wake(self: Arc<Self>) {
                self.0.unpark();
            }
        }
        let waker = Arc::new(Unpark(std::thread::current())).into();
        let mut cx = std::task::Context::from_waker(&waker);
        let mut future = std::pin::pin!(future);
        loop {
            if let std::task::Poll::Ready(out) = future.as_mut().poll(&mut cx) {
                return out;
            }
            std::thread::park();
        }
    }

    #[test]
    fn works_without_a_tokio_runtime() {
        let dir = TempDir::new().unwrap();
        let config = file_config(&dir, &ManualClock::at_unix(T0));
        block_on(async {
            let engine = SqliteEngine::open(&config).await.unwrap();
            let key = engine
                .create(&data(json!({"a": 1})), at(T0 + DAY))
                .await
                .unwrap();
            assert_eq!(
                engine.load(&key).await.unwrap(),
                Some(data(json!({"a": 1})))
            );
        });
    }

    #[tokio::test]
    async fn dropping_the_engine_stops_the_writer_after_committing() {
        let dir = TempDir::new().unwrap();
        let engine = open(&dir, &ManualClock::at_unix(T0)).await;
        let key = engine
            .create(&SessionData::new(), at(T0 + DAY))
            .await
            .unwrap();
        drop(engine); // joins the writer thread: returning proves it stopped
        let found: i64 = raw(&dir)
            .query_row(
                "SELECT COUNT(*) FROM django_session WHERE session_key = ?1",
                [&key],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(found, 1);
    }
}
