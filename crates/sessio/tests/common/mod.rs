//! Fixtures shared by the integration tests: one per engine, each with its own data.

#![allow(dead_code)]

use std::future::Future;
use std::pin::Pin;

use sessio::clock::ManualClock;
use sessio::{ConfigBuilder, EngineKind};

// The fixtures every engine shares come with the conformance suite (each test file uses
// some of them).
#[allow(unused_imports)]
pub use sessio_conformance::fixture::{
    base, fixture, fixture_with, open, recording_stolen_cookies, service_url, services_required,
    skip, Fixture, Make, STRONG_KEY, T,
};

#[cfg(feature = "redis")]
pub mod redis_servers;

/// Sessions in signed cookies.
pub fn signed_cookies(
    builder: ConfigBuilder,
) -> Pin<Box<dyn Future<Output = Option<Fixture>> + Send>> {
    Box::pin(async move {
        let clock = ManualClock::at_unix(T);
        let b = builder
            .clock(clock.clone())
            .engine(EngineKind::SignedCookies);
        open(b, None, clock).await
    })
}

/// Sessions in encrypted cookies.
pub fn encrypted_cookies(
    builder: ConfigBuilder,
) -> Pin<Box<dyn Future<Output = Option<Fixture>> + Send>> {
    Box::pin(async move {
        let clock = ManualClock::at_unix(T);
        let b = builder
            .clock(clock.clone())
            .engine(EngineKind::EncryptedCookies);
        open(b, None, clock).await
    })
}

/// Sessions in a SQLite `django_session` table in a temp dir of its own.
pub fn db_sqlite(builder: ConfigBuilder) -> Pin<Box<dyn Future<Output = Option<Fixture>> + Send>> {
    Box::pin(async move {
        let clock = ManualClock::at_unix(T);
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("sessions.sqlite3").display());
        let b = builder
            .clock(clock.clone())
            .engine(EngineKind::Db)
            .database_url(url);
        open(b, Some(Box::new(dir)), clock).await
    })
}

/// Sessions in signed cookies, spilled to a SQLite table in a temp dir of its own when
/// a cookie would pass the browsers' 4 KB limit.
pub fn spill_sqlite(
    builder: ConfigBuilder,
) -> Pin<Box<dyn Future<Output = Option<Fixture>> + Send>> {
    Box::pin(async move {
        let clock = ManualClock::at_unix(T);
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("spill.sqlite3").display());
        let b = builder
            .clock(clock.clone())
            .engine(EngineKind::SignedCookies)
            .cookie_overflow(sessio::CookieOverflow::Spill(EngineKind::Db))
            .database_url(url);
        open(b, Some(Box::new(dir)), clock).await
    })
}

/// Sessions as files in a temp dir of their own.
pub fn file(builder: ConfigBuilder) -> Pin<Box<dyn Future<Output = Option<Fixture>> + Send>> {
    Box::pin(async move {
        let clock = ManualClock::at_unix(T);
        let dir = tempfile::tempdir().expect("temp dir");
        let b = builder
            .clock(clock.clone())
            .engine(EngineKind::File)
            .file_path(dir.path());
        open(b, Some(Box::new(dir)), clock).await
    })
}

/// Sessions in this process's memory (`memory://`).
pub fn cache_memory(
    builder: ConfigBuilder,
) -> Pin<Box<dyn Future<Output = Option<Fixture>> + Send>> {
    Box::pin(async move {
        let clock = ManualClock::at_unix(T);
        let b = builder
            .clock(clock.clone())
            .engine(EngineKind::Cache)
            .cache_url("memory://");
        open(b, None, clock).await
    })
}

/// Sessions in SQLite (a temp dir of their own) behind an in-process cache.
pub fn cached_db_memory(
    builder: ConfigBuilder,
) -> Pin<Box<dyn Future<Output = Option<Fixture>> + Send>> {
    Box::pin(async move {
        let clock = ManualClock::at_unix(T);
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("sessions.sqlite3").display());
        let b = builder
            .clock(clock.clone())
            .engine(EngineKind::CachedDb)
            .database_url(url)
            .cache_url("memory://");
        open(b, Some(Box::new(dir)), clock).await
    })
}

/// Sessions in the shared Redis (`SESSIO_TEST_REDIS_URL`), under a key prefix of their own
/// whose keys are deleted when the fixture drops.
#[cfg(feature = "redis")]
pub fn cache_redis(
    builder: ConfigBuilder,
) -> Pin<Box<dyn Future<Output = Option<Fixture>> + Send>> {
    Box::pin(async move {
        let url = redis_servers::redis_url();
        if let Err(e) = redis_servers::ping(&url) {
            return skip("Redis", &url, e);
        }
        let clock = ManualClock::at_unix(T);
        let (b, cleanup) = redis_builder(builder, &url, vec![url.clone()]);
        let b = b.clock(clock.clone()).engine(EngineKind::Cache);
        open(b, Some(Box::new(cleanup)), clock).await
    })
}

/// Sessions in SQLite (a temp dir of their own) behind the shared Redis.
#[cfg(feature = "redis")]
pub fn cached_db_redis(
    builder: ConfigBuilder,
) -> Pin<Box<dyn Future<Output = Option<Fixture>> + Send>> {
    Box::pin(async move {
        let url = redis_servers::redis_url();
        if let Err(e) = redis_servers::ping(&url) {
            return skip("Redis", &url, e);
        }
        let clock = ManualClock::at_unix(T);
        let dir = tempfile::tempdir().expect("temp dir");
        let db = format!("sqlite://{}", dir.path().join("sessions.sqlite3").display());
        let (b, cleanup) = redis_builder(builder, &url, vec![url.clone()]);
        let b = b
            .clock(clock.clone())
            .engine(EngineKind::CachedDb)
            .database_url(db);
        open(b, Some(Box::new((dir, cleanup))), clock).await
    })
}

/// Sessions in a three-master Redis Cluster that this test binary starts (once) on spare
/// loopback ports and stops when it exits.
#[cfg(feature = "redis")]
pub fn cache_redis_cluster(
    builder: ConfigBuilder,
) -> Pin<Box<dyn Future<Output = Option<Fixture>> + Send>> {
    Box::pin(async move {
        // Starting the cluster blocks for a second or two: off the runtime's thread.
        let cluster = tokio::task::spawn_blocking(redis_servers::cluster)
            .await
            .expect("cluster start-up did not panic");
        let cluster = match cluster {
            Ok(c) => c,
            Err(e) => return skip("Redis Cluster", "redis-server on spare loopback ports", e),
        };
        let clock = ManualClock::at_unix(T);
        let (b, cleanup) = redis_builder(builder, &cluster.url(), cluster.node_urls());
        let b = b.clock(clock.clone()).engine(EngineKind::Cache);
        open(b, Some(Box::new(cleanup)), clock).await
    })
}

/// Points `builder` at the Redis `url` with a key prefix of its own, and the guard that
/// deletes that prefix's keys from `nodes`.
#[cfg(feature = "redis")]
pub fn redis_builder(
    builder: ConfigBuilder,
    url: &str,
    nodes: Vec<String>,
) -> (ConfigBuilder, redis_servers::KeyCleanup) {
    let prefix = redis_servers::unique_prefix();
    let b = builder.cache_url(url).cache_key_prefix(prefix.clone());
    (
        b,
        redis_servers::KeyCleanup {
            urls: nodes,
            prefix,
        },
    )
}

/// The test PostgreSQL server (a database the tests may create schemas in).
pub fn postgres_url() -> String {
    service_url(
        "SESSIO_TEST_POSTGRES_URL",
        "postgres://postgres@127.0.0.1:5432/test",
    )
}

/// The test MySQL or MariaDB server (a user that may create databases).
pub fn mysql_url() -> String {
    service_url("SESSIO_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")
}

/// Scratch schemas and databases: one per test, named `sessio_t_<unix time>_<random>`,
/// dropped when the test ends; any left behind by a killed run are dropped an hour later.
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub mod scratch {
    use std::future::Future;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    pub const PREFIX: &str = "sessio_t_";
    /// Leftovers older than this are from runs that did not clean up.
    const STALE_AFTER_SECS: u64 = 3600;

    fn unix_now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }

    /// A fresh name for a schema or database.
    pub fn name() -> String {
        let random = sessio::key::new_session_key().expect("random");
        format!("{PREFIX}{}_{}", unix_now(), &random[..10])
    }

    /// Whether `name` is a scratch name older than an hour.
    pub fn is_stale(name: &str) -> bool {
        name.strip_prefix(PREFIX)
            .and_then(|rest| rest.split('_').next())
            .and_then(|t| t.parse::<u64>().ok())
            .is_some_and(|t| t + STALE_AFTER_SECS < unix_now())
    }

    /// True the first time it is called for `flag` in this process.
    pub fn first_time(flag: &AtomicBool) -> bool {
        !flag.swap(true, Ordering::SeqCst)
    }

    /// Runs `work` to completion on a runtime of its own, on a thread of its own: usable
    /// from `Drop`, inside or outside a tokio runtime. Errors are ignored (best effort).
    pub fn run_detached<F, Fut>(work: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        let thread = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                let _ = rt.block_on(async {
                    tokio::time::timeout(Duration::from_secs(10), work()).await
                });
            }
        });
        // Joined, so the drop is done before the test process exits.
        let _ = thread.join();
    }

    pub static PG_SWEPT: AtomicBool = AtomicBool::new(false);
    pub static MYSQL_SWEPT: AtomicBool = AtomicBool::new(false);
}

/// A PostgreSQL schema of its own (`url` sets the search path to it), dropped on drop.
#[cfg(feature = "postgres")]
#[derive(Debug)]
pub struct PgScratch {
    pub admin_url: String,
    pub schema: String,
    pub url: String,
}

#[cfg(feature = "postgres")]
impl PgScratch {
    /// Creates the schema, or returns `None` (see [`skip`]) when the server is unreachable.
    pub async fn create() -> Option<Self> {
        use sessio::db::sqlx_core::connection::Connection;
        use sessio::db::sqlx_core::executor::Executor;
        use sessio::db::sqlx_postgres::PgConnection;

        let admin_url = postgres_url();
        let connect = PgConnection::connect(&admin_url);
        let mut conn = match tokio::time::timeout(std::time::Duration::from_secs(5), connect).await
        {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => return skip("PostgreSQL", &admin_url, e),
            Err(_) => return skip("PostgreSQL", &admin_url, "no answer within 5s"),
        };
        if scratch::first_time(&scratch::PG_SWEPT) {
            let names: Vec<String> = sessio::db::sqlx_core::query_scalar::query_scalar(
                "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'sessio\\_t\\_%'",
            )
            .fetch_all(&mut conn)
            .await
            .unwrap_or_default();
            for stale in names.iter().filter(|n| scratch::is_stale(n)) {
                let _ = conn
                    .execute(format!("DROP SCHEMA IF EXISTS {stale} CASCADE").as_str())
                    .await;
            }
        }
        let schema = scratch::name();
        conn.execute(format!("CREATE SCHEMA {schema}").as_str())
            .await
            .expect("create a scratch schema");
        let _ = conn.close().await;
        let url = with_query(&admin_url, &format!("options[search_path]={schema}"));
        Some(Self {
            admin_url,
            schema,
            url,
        })
    }
}

#[cfg(feature = "postgres")]
impl Drop for PgScratch {
    fn drop(&mut self) {
        use sessio::db::sqlx_core::connection::Connection;
        use sessio::db::sqlx_core::executor::Executor;
        use sessio::db::sqlx_postgres::PgConnection;

        let url = self.admin_url.clone();
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema);
        scratch::run_detached(move || async move {
            if let Ok(mut conn) = PgConnection::connect(&url).await {
                let _ = conn.execute(sql.as_str()).await;
                let _ = conn.close().await;
            }
        });
    }
}

/// A MySQL/MariaDB database of its own (`url` names it), dropped on drop.
#[cfg(feature = "mysql")]
#[derive(Debug)]
pub struct MySqlScratch {
    pub admin_url: String,
    pub database: String,
    pub url: String,
}

#[cfg(feature = "mysql")]
impl MySqlScratch {
    /// Creates the database, or returns `None` (see [`skip`]) when the server is
    /// unreachable.
    pub async fn create() -> Option<Self> {
        use sessio::db::sqlx_core::connection::Connection;
        use sessio::db::sqlx_core::executor::Executor;
        use sessio::db::sqlx_mysql::MySqlConnection;

        let admin_url = mysql_url();
        let connect = MySqlConnection::connect(&admin_url);
        let mut conn = match tokio::time::timeout(std::time::Duration::from_secs(5), connect).await
        {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => return skip("MySQL", &admin_url, e),
            Err(_) => return skip("MySQL", &admin_url, "no answer within 5s"),
        };
        if scratch::first_time(&scratch::MYSQL_SWEPT) {
            let names: Vec<String> = sessio::db::sqlx_core::query_scalar::query_scalar(
                "SELECT CAST(schema_name AS CHAR) FROM information_schema.schemata \
                 WHERE schema_name LIKE 'sessio\\_t\\_%'",
            )
            .fetch_all(&mut conn)
            .await
            .unwrap_or_default();
            for stale in names.iter().filter(|n| scratch::is_stale(n)) {
                let _ = conn
                    .execute(format!("DROP DATABASE IF EXISTS {stale}").as_str())
                    .await;
            }
        }
        let database = scratch::name();
        conn.execute(format!("CREATE DATABASE {database}").as_str())
            .await
            .expect("create a scratch database");
        let _ = conn.close().await;
        let mut url = sessio::db::sqlx_core::Url::parse(&admin_url).expect("a valid MySQL URL");
        url.set_path(&format!("/{database}"));
        Some(Self {
            admin_url,
            database,
            url: url.to_string(),
        })
    }
}

#[cfg(feature = "mysql")]
impl Drop for MySqlScratch {
    fn drop(&mut self) {
        use sessio::db::sqlx_core::connection::Connection;
        use sessio::db::sqlx_core::executor::Executor;
        use sessio::db::sqlx_mysql::MySqlConnection;

        let url = self.admin_url.clone();
        let sql = format!("DROP DATABASE IF EXISTS {}", self.database);
        scratch::run_detached(move || async move {
            if let Ok(mut conn) = MySqlConnection::connect(&url).await {
                let _ = conn.execute(sql.as_str()).await;
                let _ = conn.close().await;
            }
        });
    }
}

/// `url` with one more `name=value` query parameter.
pub fn with_query(url: &str, pair: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{pair}")
}

/// Sessions in a PostgreSQL `django_session` table, in a schema of its own.
#[cfg(feature = "postgres")]
pub fn db_postgres(
    builder: ConfigBuilder,
) -> Pin<Box<dyn Future<Output = Option<Fixture>> + Send>> {
    Box::pin(async move {
        let clock = ManualClock::at_unix(T);
        let scratch = PgScratch::create().await?;
        let b = builder
            .clock(clock.clone())
            .engine(EngineKind::Db)
            .database_url(scratch.url.clone());
        open(b, Some(Box::new(scratch)), clock).await
    })
}

/// Sessions in a MySQL/MariaDB `django_session` table, in a database of its own.
#[cfg(feature = "mysql")]
pub fn db_mysql(builder: ConfigBuilder) -> Pin<Box<dyn Future<Output = Option<Fixture>> + Send>> {
    Box::pin(async move {
        let clock = ManualClock::at_unix(T);
        let scratch = MySqlScratch::create().await?;
        let b = builder
            .clock(clock.clone())
            .engine(EngineKind::Db)
            .database_url(scratch.url.clone());
        open(b, Some(Box::new(scratch)), clock).await
    })
}
