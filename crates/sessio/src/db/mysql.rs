//! The `db` store on MySQL and MariaDB, in Django's `django_session` layout.
//!
//! Django and sessio can share the table: same columns, same `session_data` format,
//! `expire_date` as naive UTC `datetime(6)` (what Django writes with `USE_TZ = True`).
//! The store keeps rows; the core ([`ServerEngine`]) encodes `session_data`, chooses keys
//! and merges concurrent saves ([`MySqlEngine`] is the two together).
//!
//! # Design
//!
//! * **A sqlx pool** ([`MySqlPool`]), opened from the URL or handed over by the application
//!   ([`MySqlStore::from_pool`]). sqlx prepares each statement once per connection and
//!   reconnects by itself when the server comes back.
//! * **Every call is bounded** by [`Config::store_timeout`]: waiting for a connection, and
//!   the query itself. A timeout or a broken connection is [`Error::Store`](crate::Error::Store), which the
//!   middleware answers with 503.
//! * **The clock is sessio's**, never the server's `NOW()`: "now" is always a bound
//!   parameter, so expiry follows [`Config::clock`] (and tests can move time).
//! * **One statement per write.** An insert is a plain `INSERT` (a taken key is MySQL's
//!   duplicate-entry error, and the core tries another key). An update is one autocommit
//!   `UPDATE` of a live row (`expire_date` after now: a session deleted by a concurrent
//!   logout, or expired, is never brought back); when the core expects a version, only
//!   where `session_data` still holds the text its request read, compared as bytes. Only
//!   when a conditional update matches no row does a second query tell a conflict (a
//!   live row with other data: the core merges) from a session that is gone.
//! * **An unchanged save is still a save.** MySQL counts only *changed* rows by default,
//!   so an UPDATE writing the values already there would look like a deleted session.
//!   sqlx always connects with `CLIENT_FOUND_ROWS`, which makes UPDATE count the rows it
//!   *matched*; that holds for pools handed over by the application too. The same goes
//!   for a conditional update writing back the very value it read.
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
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::{FutureExt, TryFutureExt};
use sqlx_core::connection::ConnectOptions;
use sqlx_core::executor::Executor;
use sqlx_core::query::query;
use sqlx_core::query_scalar::query_scalar;
use sqlx_core::row::Row;
use sqlx_core::Url;
use sqlx_mysql::{MySql, MySqlConnectOptions, MySqlConnection, MySqlDatabaseError, MySqlPool};
use time::{OffsetDateTime, PrimitiveDateTime};

pub use super::sqlx_common::DEFAULT_MAX_CONNECTIONS;
use super::sqlx_common::{
    self, apply_pending, Core, Driver, Migration, Options, SqlResult, ENGINE, TABLE,
};
use crate::config::Config;
use crate::engine::Version;
use crate::error::Result;
use crate::server::ServerEngine;
use crate::store::{Payload, Record, SessionStore, Update};

/// `ER_NO_SUCH_TABLE`.
const NO_SUCH_TABLE: u16 = 1146;
/// `ER_DUP_ENTRY`.
const DUPLICATE_ENTRY: u16 = 1062;

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
// Whether a conditional update that matched nothing met a live row (a conflict).
const LIVE_SQL: &str = "SELECT 1 FROM django_session WHERE session_key = ? AND expire_date > ?";
const INSERT_SQL: &str =
    "INSERT INTO django_session (session_key, session_data, expire_date) VALUES (?, ?, ?)";
// Only a live row: an update never brings back an expired session.
const UPDATE_SQL: &str = "UPDATE django_session SET session_data = ?, expire_date = ? \
     WHERE session_key = ? AND expire_date > ?";
// An update from the version its request read: only if the row still holds that data.
// Compared as bytes: the table's collation may ignore case (and trailing spaces), so two
// different values could compare equal as text.
const UPDATE_IF_SQL: &str = "UPDATE django_session SET session_data = ?, expire_date = ? \
     WHERE session_key = ? AND expire_date > ? \
     AND CAST(session_data AS BINARY) = CAST(? AS BINARY)";
const DELETE_SQL: &str = "DELETE FROM django_session WHERE session_key = ?";
// LIMIT bounds the work (and the locks) of one statement.
const CLEAR_EXPIRED_SQL: &str = "DELETE FROM django_session WHERE expire_date < ? LIMIT ?";

/// Sessions in a MySQL or MariaDB `django_session` table.
///
/// Cheap to share behind an `Arc`; the pool inside is shared by clones of the
/// [`MySqlPool`].
pub struct MySqlStore {
    core: Core<MySql>,
}

/// The `db` engine on MySQL and MariaDB: the [`MySqlStore`] behind the core's
/// [`ServerEngine`].
pub type MySqlEngine = ServerEngine<MySqlStore>;

/// The engine on `store`: the core with `config`'s keys and clock, leaving rows that only a
/// fallback key verifies as they are, as Django does.
pub(super) fn engine(store: MySqlStore, config: &Config) -> MySqlEngine {
    ServerEngine::new(store, config)
}

impl fmt::Debug for MySqlStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.core.debug(f, "MySqlStore")
    }
}

impl MySqlEngine {
    /// The engine on the database that `config.database_url()` names (see
    /// [`MySqlStore::open`]).
    pub async fn open(config: &Config) -> Result<Self> {
        Ok(engine(MySqlStore::open(config).await?, config))
    }

    /// The engine on the application's own pool (see [`MySqlStore::from_pool`]).
    pub async fn from_pool(pool: MySqlPool, config: &Config) -> Result<Self> {
        Ok(engine(MySqlStore::from_pool(pool, config).await?, config))
    }

    /// The pool, for the application's own queries.
    pub fn pool(&self) -> &MySqlPool {
        self.store().pool()
    }
}

impl MySqlStore {
    /// Connects to the database that `config.database_url()` names.
    ///
    /// With `auto_migrate` it creates the schema as needed; without, a database lacking the
    /// `django_session` table is [`Error::SchemaMissing`](crate::Error::SchemaMissing). A server that cannot be reached
    /// within [`Config::store_timeout`] is [`Error::Store`](crate::Error::Store), naming the URL (without its
    /// password).
    pub async fn open(config: &Config) -> Result<Self> {
        sqlx_common::open(config).await
    }

    /// Uses the application's own pool (its size, TLS and timeouts stay as configured;
    /// every call is still bounded by [`Config::store_timeout`]).
    ///
    /// `config.database_url()` is not used. Checks or migrates the schema as
    /// [`open`](Self::open) does.
    pub async fn from_pool(pool: MySqlPool, config: &Config) -> Result<Self> {
        sqlx_common::from_pool(pool, config).await
    }

    /// The pool, for the application's own queries.
    pub fn pool(&self) -> &MySqlPool {
        &self.core.pool
    }
}

impl sqlx_common::SqlStore for MySqlStore {
    type Db = MySql;

    fn new(pool: MySqlPool, config: &Config, database: Arc<str>) -> Self {
        Self {
            core: Core::new(pool, config, database),
        }
    }

    fn core(&self) -> &Core<MySql> {
        &self.core
    }
}

#[async_trait]
impl Driver for MySql {
    const LABEL: &'static str = "MySQL";
    const SCHEME: &'static str = "mysql";
    const URL_EXAMPLE: &'static str = "mysql://user:password@host:3306/database";
    // sqlx knows MariaDB's servers by the MySQL scheme only.
    const SCHEME_ALIAS: Option<(&'static str, &'static str)> = Some(("mariadb://", "mysql://"));
    const MIGRATIONS: &'static [Migration] = MIGRATIONS;
    const MIGRATIONS_TABLE_SQL: &'static str = MIGRATIONS_TABLE_SQL;

    fn options(url: &Url) -> std::result::Result<Options<Self>, String> {
        let options = MySqlConnectOptions::from_url(url).map_err(|e| e.to_string())?;
        if options.get_database().is_none_or(str::is_empty) {
            return Err("it names no database".into());
        }
        Ok(options)
    }

    fn address(o: &MySqlConnectOptions) -> (&str, &str, u16, &str) {
        let database = o.get_database().unwrap_or_default();
        (o.get_username(), o.get_host(), o.get_port(), database)
    }

    fn table_missing(e: &sqlx_core::Error) -> bool {
        error_number(e) == Some(NO_SUCH_TABLE)
    }

    fn connection_ended(_: &sqlx_core::Error) -> bool {
        false
    }

    async fn table_exists(conn: &mut MySqlConnection) -> SqlResult<bool> {
        let found: i64 = query_scalar(TABLE_EXISTS_SQL)
            .bind(TABLE)
            .fetch_one(&mut *conn)
            .await?;
        Ok(found > 0)
    }

    /// Under a named lock: MySQL DDL cannot run in a transaction.
    async fn apply_migrations(
        conn: &mut MySqlConnection,
        now: OffsetDateTime,
        lock_timeout: Duration,
    ) -> SqlResult<Option<Vec<&'static str>>> {
        let locked: Option<i64> = query_scalar(LOCK_SQL)
            .bind(i64::try_from(lock_timeout.as_secs()).unwrap_or(60))
            .fetch_one(&mut *conn)
            .await?;
        if locked != Some(1) {
            return Ok(None);
        }
        let applied = apply_pending::<MySql>(conn, now).await;
        // Released even when a migration failed (closing the connection would too).
        let unlocked = conn.execute(UNLOCK_SQL).await;
        let applied = applied?;
        unlocked?;
        Ok(Some(applied))
    }

    async fn execute(conn: &mut MySqlConnection, sql: &str) -> SqlResult<()> {
        conn.execute(sql).await.map(drop)
    }

    async fn applied_versions(conn: &mut MySqlConnection) -> SqlResult<Vec<i64>> {
        query_scalar("SELECT version FROM sessio_migrations")
            .fetch_all(&mut *conn)
            .await
    }

    /// Statement by statement: an index is created only when `information_schema` does
    /// not list it yet (MySQL has no `CREATE INDEX IF NOT EXISTS`).
    async fn apply(conn: &mut MySqlConnection, m: &'static Migration) -> SqlResult<()> {
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
        Ok(())
    }

    async fn record(
        conn: &mut MySqlConnection,
        m: &'static Migration,
        now: OffsetDateTime,
    ) -> SqlResult<()> {
        query("INSERT INTO sessio_migrations (version, name, applied_at) VALUES (?, ?, ?)")
            .bind(m.version)
            .bind(m.name)
            .bind(naive_utc(now))
            .execute(&mut *conn)
            .await
            .map(drop)
    }
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

fn error_number(e: &sqlx_core::Error) -> Option<u16> {
    e.as_database_error()
        .and_then(|d| d.try_downcast_ref::<MySqlDatabaseError>())
        .map(MySqlDatabaseError::number)
}

impl SessionStore for MySqlStore {
    // Django's database backend leaves a row that an old key verifies as it is until the
    // session changes.
    fn reissues_old_keys(&self) -> bool {
        false
    }

    fn name(&self) -> &'static str {
        ENGINE
    }

    async fn load(&self, id: &str) -> Result<Option<Record>> {
        let core = &self.core;
        let now = naive_utc(core.clock.now());
        let row = core
            .call("loading a session", || {
                query(LOAD_SQL)
                    .bind(id)
                    .bind(now)
                    .fetch_optional(&core.pool)
            })
            .await?;
        // `session_data` is longtext NOT NULL; anything else decodes as no data.
        Ok(row.map(|row| Record::Text(row.try_get::<String, _>(0).unwrap_or_default())))
    }

    /// A plain INSERT, not INSERT IGNORE: IGNORE would also turn other errors (say, a
    /// value too long) into warnings and a silently missing row.
    async fn insert(
        &self,
        id: &str,
        record: &Payload<'_>,
        expires: OffsetDateTime,
    ) -> Result<bool> {
        let core = &self.core;
        let data = record.text();
        let expires = naive_utc(expires);
        core.call("creating a session", || {
            query(INSERT_SQL)
                .bind(id)
                .bind(data)
                .bind(expires)
                .execute(&core.pool)
                .map(|inserted| match inserted {
                    Ok(_) => Ok(true),
                    Err(e) if error_number(&e) == Some(DUPLICATE_ENTRY) => Ok(false),
                    Err(e) => Err(e),
                })
        })
        .await
    }

    /// One autocommit UPDATE of the live row, conditional on the stored text when a
    /// version is expected. Rows are counted as matched (`CLIENT_FOUND_ROWS`), so writing
    /// back unchanged data still counts as done.
    async fn update(
        &self,
        id: &str,
        record: &Payload<'_>,
        expires: OffsetDateTime,
        expected: Option<&Version>,
    ) -> Result<Update> {
        let core = &self.core;
        let now = naive_utc(core.clock.now());
        let expires = naive_utc(expires);
        let old = match expected.map(Version::as_stored) {
            None => None,
            Some(Some(old)) => Some(old),
            // Not a version of a row: it cannot match.
            Some(None) => return self.missed(id, now).await,
        };
        let data = record.text();
        let updated = core
            .call("saving a session", || {
                let update = match old {
                    None => query(UPDATE_SQL),
                    Some(_) => query(UPDATE_IF_SQL),
                };
                let update = update.bind(data).bind(expires).bind(id).bind(now);
                match old {
                    None => update,
                    Some(old) => update.bind(old),
                }
                .execute(&core.pool)
            })
            .await?
            .rows_affected();
        if updated > 0 {
            Ok(Update::Stored(Some(record.version())))
        } else if old.is_some() {
            self.missed(id, now).await
        } else {
            // No live row: a concurrent logout deleted the session, or it expired.
            Ok(Update::Gone)
        }
    }

    async fn delete(&self, id: &str) -> Result<()> {
        let core = &self.core;
        core.call("deleting a session", || {
            query(DELETE_SQL).bind(id).execute(&core.pool)
        })
        .await?;
        Ok(())
    }

    /// Any row, live or expired (Django's `exists()`).
    async fn exists(&self, id: &str) -> Result<bool> {
        let core = &self.core;
        let row = core
            .call("checking whether a session exists", || {
                query(EXISTS_SQL).bind(id).fetch_optional(&core.pool)
            })
            .await?;
        Ok(row.is_some())
    }

    async fn clear_expired(&self, limit: usize) -> Result<u64> {
        let pool = &self.core.pool;
        self.core
            .clear_expired_batch(limit, |now, limit| {
                query(CLEAR_EXPIRED_SQL)
                    .bind(naive_utc(now))
                    .bind(u64::try_from(limit).unwrap_or(u64::MAX))
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
            .count_expired(|now| {
                query_scalar(COUNT_EXPIRED_SQL)
                    .bind(naive_utc(now))
                    .fetch_one(pool)
            })
            .await
    }
}

impl MySqlStore {
    /// A conditional update that matched no row: a conflict while the session lives,
    /// gone otherwise.
    async fn missed(&self, key: &str, now: PrimitiveDateTime) -> Result<Update> {
        let core = &self.core;
        let row = core
            .call("saving a session", || {
                query(LIVE_SQL)
                    .bind(key)
                    .bind(now)
                    .fetch_optional(&core.pool)
            })
            .await?;
        Ok(if row.is_some() {
            Update::Conflict
        } else {
            Update::Gone
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::sqlx_common::parse_url;
    use crate::error::Error;
    use time::macros::datetime;

    #[test]
    fn urls() {
        let (o, n) = parse_url::<MySql>("mysql://u:p@db.example:3307/app", "x").unwrap();
        assert_eq!((o.get_host(), o.get_port(), n), ("db.example", 3307, 16));
        assert_eq!(o.get_database(), Some("app"));
        let (o, n) =
            parse_url::<MySql>("mariadb://u@h/app?max_connections=3&charset=utf8mb4", "x").unwrap();
        assert_eq!((o.get_database(), n), (Some("app"), 3));
        for bad in [
            "mysql://u@h/app?max_connections=0",
            "mysql://u@h/",
            "mysql://u@h",
        ] {
            assert!(
                matches!(parse_url::<MySql>(bad, "x"), Err(Error::Config(_))),
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
