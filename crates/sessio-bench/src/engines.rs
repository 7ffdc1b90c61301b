//! sessio's engines as benchmark targets: how each is configured, checked for reachability,
//! given a fresh store per run, and measured for bytes stored per session.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use async_trait::async_trait;
use sessio::{Config, EngineKind, SessionData, SessionManager};

pub use crate::catalog::{host_port, EngineName, Services};
use crate::cpu::ThreadSet;
use crate::server::{AxumServer, Server, ServerRuntime, Target, SERVER_THREAD_PREFIXES};
use crate::workload::{blob, user_record, Workload, BLOB_KEY, COUNTER_KEY, USER_KEY};

/// The secret key of every benchmark server (not a secret: nothing here is deployed).
pub const BENCH_SECRET_KEY: &str =
    "sessio-bench-not-a-secret-0123456789-abcdefghijklmnopqrstuvwxyz";

/// One sessio engine (or bare axum) as a [`Target`].
#[derive(Debug, Clone)]
pub struct EngineTarget {
    /// Which engine.
    pub engine: EngineName,
    /// Its servers.
    pub services: Arc<Services>,
    /// The server's runtime.
    pub runtime: ServerRuntime,
    /// Rows written straight into the store before the load (scale measurements).
    pub prefill: Option<Prefill>,
}

/// Sessions written directly into a `db` store before a run, to measure at scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefill {
    /// How many rows.
    pub rows: u64,
    /// Whether they are already expired (for `clear-expired`) or live.
    pub expired: bool,
}

impl EngineTarget {
    /// A target for `engine` with no prefill.
    pub fn new(engine: EngineName, services: Arc<Services>, runtime: ServerRuntime) -> Self {
        Self {
            engine,
            services,
            runtime,
            prefill: None,
        }
    }

    /// Starts the server (the concrete type, for scale measurements that need its store).
    pub async fn start_engine(
        &self,
        workload: Workload,
        core: Option<usize>,
    ) -> anyhow::Result<EngineServer> {
        let store = RunStore::new(self.engine, self.services.clone(), workload)?;
        let config = store.config()?;
        let bare = self.engine == EngineName::Bare;
        let app_config = config.clone();
        let server = if bare {
            AxumServer::start(core, self.runtime, || async {
                Ok(crate::apps::bare_router())
            })
            .await?
        } else {
            AxumServer::start(core, self.runtime, move || async move {
                let manager = SessionManager::open(app_config).await?;
                Ok(crate::apps::sessio_app(&manager))
            })
            .await?
        };
        // After the server opened (and migrated) the store.
        store.reset().await?;
        if let Some(prefill) = self.prefill {
            store.prefill(&config, prefill).await?;
        }
        Ok(EngineServer {
            server,
            store,
            config,
        })
    }

    /// Why the engine cannot run here (server unreachable, database not creatable), if it
    /// cannot.
    pub async fn check(&self) -> Result<(), String> {
        if !self.engine.compiled_in() {
            return Err(format!(
                "{} is not in this build (Cargo feature missing)",
                self.engine
            ));
        }
        let url = match self.engine {
            EngineName::DbPostgres => &self.services.postgres_url,
            EngineName::DbMysql => &self.services.mysql_url,
            EngineName::CacheRedis => &self.services.redis_url,
            _ => return Ok(()),
        };
        let hostport = host_port(url).ok_or_else(|| format!("cannot read host:port in {url}"))?;
        let reachable = tokio::time::timeout(
            Duration::from_secs(2),
            tokio::net::TcpStream::connect(hostport.as_str()),
        )
        .await;
        if !matches!(reachable, Ok(Ok(_))) {
            return Err(format!(
                "{} skipped: nothing answers at {hostport}",
                self.engine
            ));
        }
        ensure_database(self.engine, url)
            .await
            .map_err(|e| format!("{} skipped: {e:#}", self.engine))
    }
}

/// Run counter, so that concurrent runs in one process never share a store.
static RUN: AtomicU32 = AtomicU32::new(0);

/// What one run of one engine owns, besides the server.
#[derive(Debug)]
struct RunStore {
    engine: EngineName,
    dir: Option<tempfile::TempDir>,
    redis_prefix: String,
    services: Arc<Services>,
    workload: Workload,
}

impl RunStore {
    fn new(
        engine: EngineName,
        services: Arc<Services>,
        workload: Workload,
    ) -> anyhow::Result<Self> {
        let needs_dir = matches!(
            engine,
            EngineName::DbSqlite | EngineName::CachedDb | EngineName::File
        );
        let dir = if needs_dir {
            let mut b = tempfile::Builder::new();
            b.prefix("sessio-bench-");
            Some(match &services.data_dir {
                Some(d) => {
                    std::fs::create_dir_all(d)?;
                    b.tempdir_in(d)?
                }
                None => b.tempdir()?,
            })
        } else {
            None
        };
        let run = RUN.fetch_add(1, Ordering::Relaxed);
        Ok(Self {
            engine,
            dir,
            redis_prefix: format!("sessio-bench:{}:{run}:", std::process::id()),
            services,
            workload,
        })
    }

    fn sqlite_path(&self) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.path().join("sessions.sqlite3"))
    }

    /// The configuration of this run: Django's defaults, the benchmark key, and this run's
    /// store.
    fn config(&self) -> anyhow::Result<Config> {
        let mut b = Config::builder()
            .secret_key(BENCH_SECRET_KEY)
            .auto_migrate(true)
            .cache_key_prefix(self.redis_prefix.clone());
        let sqlite_url = || {
            self.sqlite_path()
                .map(|p| format!("sqlite://{}", p.display()))
                .unwrap_or_default()
        };
        // Big enough that `login` never evicts: eviction is measured separately.
        let memory = "memory://?max_entries=4000000";
        b = match self.engine {
            EngineName::Bare | EngineName::SignedCookies => b.engine(EngineKind::SignedCookies),
            EngineName::DbSqlite => b.engine(EngineKind::Db).database_url(sqlite_url()),
            EngineName::DbPostgres => b
                .engine(EngineKind::Db)
                .database_url(self.services.postgres_url.clone()),
            EngineName::DbMysql => b
                .engine(EngineKind::Db)
                .database_url(self.services.mysql_url.clone()),
            EngineName::CacheMemory => b.engine(EngineKind::Cache).cache_url(memory),
            EngineName::CacheRedis => b
                .engine(EngineKind::Cache)
                .cache_url(self.services.redis_url.clone()),
            EngineName::CachedDb => b
                .engine(EngineKind::CachedDb)
                .database_url(sqlite_url())
                .cache_url(memory),
            EngineName::File => b.engine(EngineKind::File).file_path(
                self.dir
                    .as_ref()
                    .map(|d| d.path().join("files"))
                    .unwrap_or_default(),
            ),
        };
        Ok(b.build()?)
    }

    /// Empties the shared database tables before a run, so every run starts from the same
    /// state.
    async fn reset(&self) -> anyhow::Result<()> {
        match self.engine {
            EngineName::DbPostgres => {
                sql::execute(
                    self.engine,
                    &self.services.postgres_url,
                    "TRUNCATE django_session",
                )
                .await
            }
            EngineName::DbMysql => {
                sql::execute(
                    self.engine,
                    &self.services.mysql_url,
                    "TRUNCATE TABLE django_session",
                )
                .await
            }
            _ => Ok(()),
        }
    }

    /// Writes `prefill.rows` sessions straight into the table, each a copy of one real
    /// session written through sessio (so `session_data` and `expire_date` have the real
    /// format and size) under a random 32-character key.
    async fn prefill(&self, config: &Config, prefill: Prefill) -> anyhow::Result<()> {
        let manager = SessionManager::open(config.clone()).await?;
        let session = manager.session(None);
        session.insert(USER_KEY, user_record()).await?;
        session.save().await?;
        let template = session.id().context("the template session has no key")?;
        drop(session);
        drop(manager);
        let n = prefill.rows;
        match self.engine {
            EngineName::DbSqlite | EngineName::CachedDb => {
                let path = self.sqlite_path().context("no database path")?;
                let expire = if prefill.expired {
                    "'2000-01-01 00:00:00'".to_string()
                } else {
                    format!(
                        "(SELECT expire_date FROM django_session WHERE session_key = '{template}')"
                    )
                };
                let sql = format!(
                    "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < {n}) \
                     INSERT INTO django_session (session_key, session_data, expire_date) \
                     SELECT lower(hex(randomblob(16))), \
                     (SELECT session_data FROM django_session WHERE session_key = '{template}'), \
                     {expire} FROM c"
                );
                tokio::task::spawn_blocking(move || sqlite_exec(&path, &[&sql, "ANALYZE"])).await?
            }
            EngineName::DbPostgres | EngineName::DbMysql => {
                let url = if self.engine == EngineName::DbPostgres {
                    &self.services.postgres_url
                } else {
                    &self.services.mysql_url
                };
                let sql = if self.engine == EngineName::DbPostgres {
                    let expire = if prefill.expired {
                        "now() - interval '1 day'"
                    } else {
                        "t.expire_date"
                    };
                    format!(
                        "INSERT INTO django_session (session_key, session_data, expire_date) \
                         SELECT md5(random()::text || i::text), t.session_data, {expire} \
                         FROM generate_series(1, {n}) AS i, \
                         (SELECT session_data, expire_date FROM django_session \
                          WHERE session_key = '{template}') AS t"
                    )
                } else {
                    let expire = if prefill.expired {
                        "NOW() - INTERVAL 1 DAY"
                    } else {
                        "t.expire_date"
                    };
                    format!(
                        "INSERT INTO django_session (session_key, session_data, expire_date) \
                         SELECT MD5(CONCAT(RAND(), s.i)), t.session_data, {expire} \
                         FROM (WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s \
                         WHERE i < {n}) SELECT i FROM s) AS s, \
                         (SELECT session_data, expire_date FROM django_session \
                          WHERE session_key = '{template}') AS t"
                    )
                };
                sql::execute(self.engine, url, &sql).await?;
                let analyze = if self.engine == EngineName::DbPostgres {
                    "ANALYZE django_session"
                } else {
                    "ANALYZE TABLE django_session"
                };
                sql::execute(self.engine, url, analyze).await
            }
            other => Err(anyhow!("{other} cannot be prefilled")),
        }
    }

    async fn storage_bytes(&self) -> anyhow::Result<Option<f64>> {
        match self.engine {
            EngineName::Bare | EngineName::SignedCookies => Ok(Some(0.0)),
            EngineName::DbSqlite | EngineName::CachedDb => {
                let path = self.sqlite_path().context("no database path")?;
                tokio::task::spawn_blocking(move || sqlite_row_bytes(&path)).await?
            }
            EngineName::DbPostgres => {
                sql::scalar_f64(
                    self.engine,
                    &self.services.postgres_url,
                    "SELECT AVG(octet_length(session_key) + octet_length(session_data) + 8)::text \
                     FROM django_session",
                )
                .await
            }
            EngineName::DbMysql => {
                sql::scalar_f64(
                    self.engine,
                    &self.services.mysql_url,
                    "SELECT CONCAT(AVG(LENGTH(session_key) + LENGTH(session_data) + 8)) \
                     FROM django_session",
                )
                .await
            }
            EngineName::CacheRedis => {
                let (url, prefix) = (self.services.redis_url.clone(), self.redis_prefix.clone());
                tokio::task::spawn_blocking(move || redis_ops::bytes_per_key(&url, &prefix)).await?
            }
            EngineName::CacheMemory => {
                let workload = self.workload;
                if let Some((_, b)) = self
                    .services
                    .memory_estimates
                    .iter()
                    .find(|(w, _)| *w == workload)
                {
                    return Ok(Some(*b));
                }
                tokio::task::spawn_blocking(move || memory_bytes_per_session(workload, 50_000))
                    .await?
                    .map(Some)
            }
            EngineName::File => {
                let dir = self
                    .dir
                    .as_ref()
                    .map(|d| d.path().join("files"))
                    .context("no directory")?;
                tokio::task::spawn_blocking(move || average_file_size(&dir)).await?
            }
        }
    }

    async fn cleanup(&self) {
        if self.engine == EngineName::CacheRedis {
            let (url, prefix) = (self.services.redis_url.clone(), self.redis_prefix.clone());
            let _ =
                tokio::task::spawn_blocking(move || redis_ops::delete_prefix(&url, &prefix)).await;
        }
    }
}

#[async_trait]
impl Target for EngineTarget {
    fn name(&self) -> String {
        self.engine.as_str().to_string()
    }

    async fn start(
        &self,
        workload: Workload,
        core: Option<usize>,
    ) -> anyhow::Result<Box<dyn Server>> {
        Ok(Box::new(self.start_engine(workload, core).await?))
    }
}

/// A running sessio server and its store.
#[derive(Debug)]
pub struct EngineServer {
    server: AxumServer,
    store: RunStore,
    config: Config,
}

impl EngineServer {
    /// The configuration the server runs with (same store): to open a second
    /// [`SessionManager`] on it, as `sessio clear-expired` would.
    pub fn config(&self) -> &Config {
        &self.config
    }
}

#[async_trait]
impl Server for EngineServer {
    fn addr(&self) -> std::net::SocketAddr {
        self.server.addr()
    }

    fn threads(&self) -> ThreadSet {
        ThreadSet::own(SERVER_THREAD_PREFIXES)
    }

    async fn storage_bytes_per_session(&self) -> anyhow::Result<Option<f64>> {
        self.store.storage_bytes().await
    }

    async fn stop(self: Box<Self>) {
        let EngineServer { server, store, .. } = *self;
        server.stop().await;
        store.cleanup().await;
        drop(store);
    }
}

/// The session data a user holds after `workload` (what the stores keep).
pub fn session_data_of(workload: Workload) -> SessionData {
    let mut data = SessionData::new();
    match workload {
        Workload::Payload(n) => {
            data.insert(BLOB_KEY.into(), blob(n).into());
            data.insert(COUNTER_KEY.into(), 12_345.into());
        }
        Workload::Write => {
            data.insert(
                USER_KEY.into(),
                sessio::value::to_value(&user_record()).unwrap_or_default(),
            );
            data.insert(COUNTER_KEY.into(), 12_345.into());
        }
        _ => {
            data.insert(
                USER_KEY.into(),
                sessio::value::to_value(&user_record()).unwrap_or_default(),
            );
        }
    }
    data
}

/// Bytes of memory per session in the in-process memory cache: the growth of this
/// process's resident set while `count` sessions holding `workload`'s data are created in a
/// fresh cache, divided by `count`. An estimate: the allocator may reuse memory it already
/// had (which makes it low), so [`memory_estimates`] runs before any server has run.
pub fn memory_bytes_per_session(workload: Workload, count: usize) -> anyhow::Result<f64> {
    Ok(memory_estimates(&[workload], count)?[0].1)
}

/// [`memory_bytes_per_session`] for several workloads; every cache stays alive until all
/// are measured, so no measurement reuses memory that an earlier one freed.
pub fn memory_estimates(
    workloads: &[Workload],
    count: usize,
) -> anyhow::Result<Vec<(Workload, f64)>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut keep = Vec::new();
        let mut out = Vec::new();
        for &workload in workloads {
            let config = Config::builder()
                .secret_key(BENCH_SECRET_KEY)
                .engine(EngineKind::Cache)
                .cache_url(format!("memory://?max_entries={}", count * 2))
                .build()?;
            let data = session_data_of(workload);
            let expires = time::OffsetDateTime::now_utc() + time::Duration::days(14);
            let before = crate::cpu::rss_bytes().context("no /proc/self/statm")?;
            let engine = sessio::open(&config).await?;
            for _ in 0..count {
                // Each session gets its own copy of the data, as sessions decoded from
                // requests would.
                engine.create(&data.clone(), expires).await?;
            }
            let after = crate::cpu::rss_bytes().context("no /proc/self/statm")?;
            keep.push(engine);
            out.push((workload, after.saturating_sub(before) as f64 / count as f64));
        }
        drop(keep);
        Ok(out)
    })
}

fn average_file_size(dir: &Path) -> anyhow::Result<Option<f64>> {
    let (mut n, mut total) = (0u64, 0u64);
    for entry in std::fs::read_dir(dir)?.flatten() {
        if let Ok(meta) = entry.metadata() {
            if meta.is_file() {
                n += 1;
                total += meta.len();
            }
        }
    }
    Ok((n > 0).then(|| total as f64 / n as f64))
}

#[cfg(feature = "sqlite")]
fn sqlite_row_bytes(path: &Path) -> anyhow::Result<Option<f64>> {
    let conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let avg: Option<f64> = conn.query_row(
        "SELECT AVG(LENGTH(CAST(session_key AS BLOB)) + LENGTH(CAST(session_data AS BLOB)) \
         + LENGTH(CAST(expire_date AS BLOB))) FROM django_session",
        [],
        |r| r.get(0),
    )?;
    Ok(avg)
}

#[cfg(feature = "sqlite")]
fn sqlite_exec(path: &Path, statements: &[&str]) -> anyhow::Result<()> {
    let conn = rusqlite::Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(30))?;
    for s in statements {
        conn.execute_batch(s)?;
    }
    Ok(())
}

#[cfg(not(feature = "sqlite"))]
fn sqlite_exec(_path: &Path, _statements: &[&str]) -> anyhow::Result<()> {
    Err(anyhow!("SQLite is not in this build"))
}

#[cfg(not(feature = "sqlite"))]
fn sqlite_row_bytes(_path: &Path) -> anyhow::Result<Option<f64>> {
    Ok(None)
}

/// Splits `scheme://auth/db?query` into (`scheme://auth`, `db`).
fn split_database(url: &str) -> Option<(&str, &str)> {
    let without_query = url.split('?').next()?;
    let (scheme, rest) = without_query.split_once("://")?;
    let slash = rest.find('/')?;
    let base_len = scheme.len() + 3 + slash;
    Some((&without_query[..base_len], &without_query[base_len + 1..]))
}

/// Creates the database a PostgreSQL or MySQL URL names, when it does not exist yet.
async fn ensure_database(engine: EngineName, url: &str) -> anyhow::Result<()> {
    let Some((base, db)) = split_database(url) else {
        return Ok(());
    };
    if db.is_empty() || !db.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Ok(());
    }
    match engine {
        EngineName::DbPostgres => {
            let admin = format!("{base}/postgres");
            let exists = sql::scalar_f64(
                engine,
                &admin,
                &format!("SELECT COUNT(*)::text FROM pg_database WHERE datname = '{db}'"),
            )
            .await?;
            if exists != Some(1.0) {
                sql::execute(engine, &admin, &format!("CREATE DATABASE \"{db}\"")).await?;
            }
            Ok(())
        }
        EngineName::DbMysql => {
            sql::execute(
                engine,
                &format!("{base}/"),
                &format!("CREATE DATABASE IF NOT EXISTS `{db}`"),
            )
            .await
        }
        _ => Ok(()),
    }
}

/// A few SQL statements on PostgreSQL and MySQL through the sqlx that sessio re-exports.
mod sql {
    use super::*;

    /// Runs one statement.
    #[allow(unused_variables)]
    pub async fn execute(engine: EngineName, url: &str, statement: &str) -> anyhow::Result<()> {
        match engine {
            #[cfg(feature = "postgres")]
            EngineName::DbPostgres => {
                use sessio::db::sqlx_core::connection::Connection as _;
                let mut conn = sessio::db::sqlx_postgres::PgConnection::connect(url).await?;
                sessio::db::sqlx_core::query::query::<sessio::db::sqlx_postgres::Postgres>(
                    statement,
                )
                .execute(&mut conn)
                .await?;
                conn.close().await?;
                Ok(())
            }
            #[cfg(feature = "mysql")]
            EngineName::DbMysql => {
                use sessio::db::sqlx_core::connection::Connection as _;
                let mut conn = sessio::db::sqlx_mysql::MySqlConnection::connect(url).await?;
                sessio::db::sqlx_core::query::query::<sessio::db::sqlx_mysql::MySql>(statement)
                    .execute(&mut conn)
                    .await?;
                conn.close().await?;
                Ok(())
            }
            _ => Err(anyhow!("{engine} has no SQL connection in this build")),
        }
    }

    /// Runs a query whose one column is a number as text (so no database-specific numeric
    /// decoding is needed).
    #[allow(unused_variables, unreachable_code)]
    pub async fn scalar_f64(
        engine: EngineName,
        url: &str,
        statement: &str,
    ) -> anyhow::Result<Option<f64>> {
        let text: Option<String> = match engine {
            #[cfg(feature = "postgres")]
            EngineName::DbPostgres => {
                use sessio::db::sqlx_core::connection::Connection as _;
                use sessio::db::sqlx_core::row::Row as _;
                let mut conn = sessio::db::sqlx_postgres::PgConnection::connect(url).await?;
                let row =
                    sessio::db::sqlx_core::query::query::<sessio::db::sqlx_postgres::Postgres>(
                        statement,
                    )
                    .fetch_one(&mut conn)
                    .await?;
                let v = row.try_get::<Option<String>, _>(0)?;
                conn.close().await?;
                v
            }
            #[cfg(feature = "mysql")]
            EngineName::DbMysql => {
                use sessio::db::sqlx_core::connection::Connection as _;
                use sessio::db::sqlx_core::row::Row as _;
                let mut conn = sessio::db::sqlx_mysql::MySqlConnection::connect(url).await?;
                let row =
                    sessio::db::sqlx_core::query::query::<sessio::db::sqlx_mysql::MySql>(statement)
                        .fetch_one(&mut conn)
                        .await?;
                let v = row.try_get::<Option<String>, _>(0)?;
                conn.close().await?;
                v
            }
            _ => return Err(anyhow!("{engine} has no SQL connection in this build")),
        };
        Ok(text.and_then(|t| t.trim().parse().ok()))
    }
}

/// Redis look-ups for storage size and clean-up (blocking client, off the hot path).
mod redis_ops {
    #[cfg(feature = "redis")]
    use redis::Commands as _;

    #[cfg(feature = "redis")]
    pub fn bytes_per_key(url: &str, prefix: &str) -> anyhow::Result<Option<f64>> {
        let client = redis::Client::open(url)?;
        let mut conn = client.get_connection()?;
        let keys: Vec<String> = conn
            .scan_match::<_, String>(format!("{prefix}*"))?
            .take(1000)
            .collect();
        if keys.is_empty() {
            return Ok(None);
        }
        let mut total = 0u64;
        for k in &keys {
            let len: u64 = redis::cmd("STRLEN").arg(k).query(&mut conn)?;
            total += len + k.len() as u64;
        }
        Ok(Some(total as f64 / keys.len() as f64))
    }

    #[cfg(feature = "redis")]
    pub fn delete_prefix(url: &str, prefix: &str) -> anyhow::Result<()> {
        let client = redis::Client::open(url)?;
        let mut scan = client.get_connection()?;
        let mut del = client.get_connection()?;
        let keys = scan.scan_match::<_, String>(format!("{prefix}*"))?;
        let mut batch = Vec::with_capacity(1000);
        for k in keys {
            batch.push(k);
            if batch.len() == 1000 {
                redis::cmd("UNLINK").arg(&batch).exec(&mut del)?;
                batch.clear();
            }
        }
        if !batch.is_empty() {
            redis::cmd("UNLINK").arg(&batch).exec(&mut del)?;
        }
        Ok(())
    }

    #[cfg(not(feature = "redis"))]
    pub fn bytes_per_key(_url: &str, _prefix: &str) -> anyhow::Result<Option<f64>> {
        Ok(None)
    }

    #[cfg(not(feature = "redis"))]
    pub fn delete_prefix(_url: &str, _prefix: &str) -> anyhow::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            split_database("mysql://root@127.0.0.1:3306/sessio_bench?x=1"),
            Some(("mysql://root@127.0.0.1:3306", "sessio_bench"))
        );
    }
}
