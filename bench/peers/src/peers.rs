//! The peers: tower-sessions on axum and actix-session on actix-web, each serving the
//! routes of `sessio_bench::workload` with the same meaning as sessio's app, configured as
//! their READMEs show (defaults, except `Secure` off for plain HTTP as with sessio).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use async_trait::async_trait;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use sessio_bench::cpu::{self, ThreadSet};
use sessio_bench::server::SERVER_THREAD_NAME;
use sessio_bench::workload::{blob, user_record, User, BLOB_KEY, COUNTER_KEY, USER_KEY};
use sessio_bench::{AxumServer, Server, ServerRuntime, Target, Workload};
use tower::Layer as _;
use tower_sessions::{SessionManagerLayer, SessionStore};
use tower_sessions_sqlx_store::sqlx;

use crate::{temp_dir, AxumPeerServer};

static RUN: AtomicU32 = AtomicU32::new(0);

/// How a store's bytes per session are found after a run.
pub enum StorageProbe {
    /// Nothing is stored on the server.
    Zero,
    /// tower-sessions' SQLite table.
    Sqlite(PathBuf),
    /// tower-sessions' PostgreSQL table.
    Postgres(String),
    /// Redis keys under a prefix.
    RedisPrefix(String, String),
}

impl StorageProbe {
    /// Bytes per session: id + data + 8 for the date (SQL), key + value (Redis).
    pub async fn measure(&self) -> anyhow::Result<Option<f64>> {
        match self {
            StorageProbe::Zero => Ok(Some(0.0)),
            StorageProbe::Sqlite(path) => {
                let pool =
                    sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display())).await?;
                let v: Option<f64> = sqlx::query_scalar(
                    "SELECT AVG(LENGTH(CAST(id AS BLOB)) + LENGTH(data) + 8) FROM tower_sessions",
                )
                .fetch_one(&pool)
                .await?;
                pool.close().await;
                Ok(v)
            }
            StorageProbe::Postgres(url) => {
                let pool = sqlx::PgPool::connect(url).await?;
                let v: Option<f64> = sqlx::query_scalar(
                    "SELECT AVG(octet_length(id) + octet_length(data) + 8)::float8 \
                     FROM tower_sessions.session",
                )
                .fetch_one(&pool)
                .await?;
                pool.close().await;
                Ok(v)
            }
            StorageProbe::RedisPrefix(url, prefix) => {
                let (url, prefix) = (url.clone(), prefix.clone());
                tokio::task::spawn_blocking(move || -> anyhow::Result<Option<f64>> {
                    use redis::Commands as _;
                    let mut conn = redis::Client::open(url.as_str())?.get_connection()?;
                    let keys: Vec<String> = conn
                        .scan_match::<_, String>(format!("{prefix}*"))?
                        .take(1000)
                        .collect();
                    if keys.is_empty() {
                        return Ok(None);
                    }
                    let mut total = 0u64;
                    for k in &keys {
                        let n: u64 = redis::cmd("STRLEN").arg(k).query(&mut conn)?;
                        total += n + k.len() as u64;
                    }
                    Ok(Some(total as f64 / keys.len() as f64))
                })
                .await?
            }
        }
    }
}

/// What is undone after a run.
pub enum Cleanup {
    /// A temporary directory (dropped).
    Dir(#[allow(dead_code)] tempfile::TempDir),
    /// A Redis database that only the benchmark uses.
    FlushRedis(String),
    /// Redis keys under a prefix.
    RedisPrefix(String, String),
}

impl Cleanup {
    /// Undoes it.
    pub async fn run(self) {
        let result = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            match self {
                Cleanup::Dir(d) => drop(d),
                Cleanup::FlushRedis(url) => {
                    let mut c = redis::Client::open(url.as_str())?.get_connection()?;
                    redis::cmd("FLUSHDB").exec(&mut c)?;
                }
                Cleanup::RedisPrefix(url, prefix) => {
                    use redis::Commands as _;
                    let client = redis::Client::open(url.as_str())?;
                    let mut scan = client.get_connection()?;
                    let mut del = client.get_connection()?;
                    let keys: Vec<String> = scan
                        .scan_match::<_, String>(format!("{prefix}*"))?
                        .collect();
                    for chunk in keys.chunks(1000) {
                        redis::cmd("UNLINK").arg(chunk).exec(&mut del)?;
                    }
                }
            }
            Ok(())
        })
        .await;
        if let Ok(Err(e)) = result {
            eprintln!("note: clean-up failed: {e:#}");
        }
    }
}

// ---------------------------------------------------------------- tower-sessions on axum

/// Which tower-sessions store.
#[derive(Debug, Clone)]
enum TowerStore {
    Memory,
    Sqlite(Option<PathBuf>),
    Postgres(String),
    Redis(String),
}

/// tower-sessions 0.14 with one of its stores.
#[derive(Debug, Clone)]
pub struct Tower {
    store: TowerStore,
}

impl Tower {
    /// `MemoryStore`.
    pub fn memory() -> Self {
        Self {
            store: TowerStore::Memory,
        }
    }
    /// `SqliteStore` (tower-sessions-sqlx-store) on a new database file per run.
    pub fn sqlite(data_dir: Option<PathBuf>) -> Self {
        Self {
            store: TowerStore::Sqlite(data_dir),
        }
    }
    /// `PostgresStore` (tower-sessions-sqlx-store), its table emptied per run.
    pub fn postgres(url: String) -> Self {
        Self {
            store: TowerStore::Postgres(url),
        }
    }
    /// `RedisStore` (tower-sessions-redis-store, fred).
    pub fn redis(url: String) -> Self {
        Self {
            store: TowerStore::Redis(url),
        }
    }
}

/// Wrapped around the router, as sessio's app is (see `sessio_bench::apps::sessio_app`).
fn tower_app<S: SessionStore + Clone>(
    store: S,
) -> impl tower::Service<
    axum::extract::Request,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone
       + Send
       + 'static {
    SessionManagerLayer::new(store)
        .with_secure(false)
        .layer(tower_routes().with_state(()))
}

fn tower_routes() -> Router {
    Router::new()
        .route("/none", get(|| async { "ok" }))
        .route("/read", get(t_read))
        .route("/write", get(t_write))
        .route("/login", get(t_login))
        .route("/seed/{bytes}", get(t_seed))
}

fn e500<E: std::fmt::Display>(e: E) -> StatusCode {
    eprintln!("tower-sessions error: {e}");
    StatusCode::INTERNAL_SERVER_ERROR
}

async fn t_read(session: tower_sessions::Session) -> Result<String, StatusCode> {
    let user: Option<User> = session.get(USER_KEY).await.map_err(e500)?;
    Ok(user.map(|u| u.username).unwrap_or_default())
}

async fn t_write(session: tower_sessions::Session) -> Result<String, StatusCode> {
    let n: u64 = session.get(COUNTER_KEY).await.map_err(e500)?.unwrap_or(0) + 1;
    session.insert(COUNTER_KEY, n).await.map_err(e500)?;
    Ok(n.to_string())
}

async fn t_login(session: tower_sessions::Session) -> Result<&'static str, StatusCode> {
    session
        .insert(USER_KEY, user_record())
        .await
        .map_err(e500)?;
    Ok("ok")
}

async fn t_seed(
    session: tower_sessions::Session,
    Path(bytes): Path<usize>,
) -> Result<&'static str, StatusCode> {
    if bytes == 0 {
        session
            .insert(USER_KEY, user_record())
            .await
            .map_err(e500)?;
    } else {
        session
            .insert(BLOB_KEY, blob(bytes.min(64 * 1024)))
            .await
            .map_err(e500)?;
    }
    Ok("ok")
}

/// Creates the database a PostgreSQL URL names when it is missing.
async fn ensure_pg_database(url: &str) -> anyhow::Result<()> {
    let base = url.split('?').next().unwrap_or(url);
    let Some((server, db)) = base.rsplit_once('/') else {
        return Ok(());
    };
    let admin = sqlx::PgPool::connect(&format!("{server}/postgres")).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(db)
            .fetch_one(&admin)
            .await?;
    if !exists && db.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        sqlx::query(&format!("CREATE DATABASE \"{db}\""))
            .execute(&admin)
            .await?;
    }
    admin.close().await;
    Ok(())
}

#[async_trait]
impl Target for Tower {
    fn name(&self) -> String {
        match self.store {
            TowerStore::Memory => "tower-sessions memory",
            TowerStore::Sqlite(_) => "tower-sessions sqlite",
            TowerStore::Postgres(_) => "tower-sessions postgres",
            TowerStore::Redis(_) => "tower-sessions redis",
        }
        .into()
    }

    async fn start(
        &self,
        _workload: Workload,
        core: Option<usize>,
    ) -> anyhow::Result<Box<dyn Server>> {
        let runtime = ServerRuntime::Multi;
        let (storage, cleanup, server) = match self.store.clone() {
            TowerStore::Memory => {
                let server = AxumServer::start(core, runtime, || async {
                    Ok(tower_app(tower_sessions::MemoryStore::default()))
                })
                .await?;
                (None, None, server)
            }
            TowerStore::Sqlite(data_dir) => {
                let dir = temp_dir(&data_dir)?;
                let path = dir.path().join("sessions.sqlite3");
                let url = format!("sqlite://{}?mode=rwc", path.display());
                let server = AxumServer::start(core, runtime, move || async move {
                    let pool = sqlx::SqlitePool::connect(&url).await?;
                    let store = tower_sessions_sqlx_store::SqliteStore::new(pool);
                    store.migrate().await?;
                    Ok(tower_app(store))
                })
                .await?;
                (
                    Some(StorageProbe::Sqlite(path)),
                    Some(Cleanup::Dir(dir)),
                    server,
                )
            }
            TowerStore::Postgres(url) => {
                ensure_pg_database(&url).await?;
                let u = url.clone();
                let server = AxumServer::start(core, runtime, move || async move {
                    let pool = sqlx::PgPool::connect(&u).await?;
                    let store = tower_sessions_sqlx_store::PostgresStore::new(pool.clone());
                    store.migrate().await?;
                    sqlx::query("TRUNCATE tower_sessions.session")
                        .execute(&pool)
                        .await?;
                    Ok(tower_app(store))
                })
                .await?;
                (Some(StorageProbe::Postgres(url)), None, server)
            }
            TowerStore::Redis(url) => {
                // Its keys have no prefix: start from an empty database.
                Cleanup::FlushRedis(url.clone()).run().await;
                let u = url.clone();
                let server = AxumServer::start(core, runtime, move || async move {
                    use tower_sessions_redis_store::fred::prelude::*;
                    let config = Config::from_url(&u)?;
                    // The pool size of the crate's README example.
                    let pool = Pool::new(config, None, None, None, 6)?;
                    pool.init().await?;
                    Ok(tower_app(tower_sessions_redis_store::RedisStore::new(pool)))
                })
                .await?;
                (None, Some(Cleanup::FlushRedis(url)), server)
            }
        };
        Ok(Box::new(AxumPeerServer {
            server,
            storage,
            cleanup,
        }))
    }
}

// ---------------------------------------------------------------- actix-session on actix-web

/// actix-session 0.11 on actix-web 4, with its cookie or Redis store.
#[derive(Debug, Clone)]
pub struct Actix {
    redis_url: Option<String>,
}

impl Actix {
    /// `CookieSessionStore` (private, AES-GCM: the default content security).
    pub fn cookie() -> Self {
        Self { redis_url: None }
    }
    /// `RedisSessionStore`, keys under a per-run prefix.
    pub fn redis(url: String) -> Self {
        Self {
            redis_url: Some(url),
        }
    }
}

mod actix_app {
    use actix_session::Session;
    use actix_web::{web, HttpResponse};
    use sessio_bench::workload::{blob, user_record, User, BLOB_KEY, COUNTER_KEY, USER_KEY};

    pub async fn none() -> HttpResponse {
        HttpResponse::Ok().body("ok")
    }

    pub async fn read(session: Session) -> actix_web::Result<String> {
        let user: Option<User> = session.get(USER_KEY)?;
        Ok(user.map(|u| u.username).unwrap_or_default())
    }

    pub async fn write(session: Session) -> actix_web::Result<String> {
        let n: u64 = session.get(COUNTER_KEY)?.unwrap_or(0) + 1;
        session.insert(COUNTER_KEY, n)?;
        Ok(n.to_string())
    }

    pub async fn login(session: Session) -> actix_web::Result<&'static str> {
        session.insert(USER_KEY, user_record())?;
        Ok("ok")
    }

    pub async fn seed(
        session: Session,
        bytes: web::Path<usize>,
    ) -> actix_web::Result<&'static str> {
        let bytes = bytes.into_inner();
        if bytes == 0 {
            session.insert(USER_KEY, user_record())?;
        } else {
            session.insert(BLOB_KEY, blob(bytes.min(64 * 1024)))?;
        }
        Ok("ok")
    }
}

fn actix_serve<S, F>(
    make_store: F,
    listener: std::net::TcpListener,
) -> std::io::Result<actix_web::dev::Server>
where
    S: actix_session::storage::SessionStore + 'static,
    F: Fn() -> S + Clone + Send + 'static,
{
    use actix_session::SessionMiddleware;
    use actix_web::{web, App, HttpServer};
    // A fixed key: nothing here is deployed.
    let key = actix_web::cookie::Key::from(&[0x42; 64]);
    Ok(HttpServer::new(move || {
        App::new()
            .wrap(
                SessionMiddleware::builder(make_store(), key.clone())
                    .cookie_secure(false)
                    .build(),
            )
            .route("/none", web::get().to(actix_app::none))
            .route("/read", web::get().to(actix_app::read))
            .route("/write", web::get().to(actix_app::write))
            .route("/login", web::get().to(actix_app::login))
            .route("/seed/{bytes}", web::get().to(actix_app::seed))
    })
    // One worker on the one core it is pinned to, like the axum servers.
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run())
}

#[async_trait]
impl Target for Actix {
    fn name(&self) -> String {
        match self.redis_url {
            None => "actix-session cookie".into(),
            Some(_) => "actix-session redis".into(),
        }
    }

    async fn start(
        &self,
        _workload: Workload,
        core: Option<usize>,
    ) -> anyhow::Result<Box<dyn Server>> {
        let prefix = format!(
            "actix-bench:{}:{}:",
            std::process::id(),
            RUN.fetch_add(1, Ordering::Relaxed)
        );
        let redis_url = self.redis_url.clone();
        let p = prefix.clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<
            anyhow::Result<(SocketAddr, actix_web::dev::ServerHandle)>,
        >();
        let thread = std::thread::Builder::new()
            .name(SERVER_THREAD_NAME.into())
            .spawn(move || {
                if let Some(c) = core {
                    cpu::pin_current_thread(c);
                }
                let system = actix_web::rt::System::new();
                system.block_on(async move {
                    let start = async {
                        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
                        let addr = listener.local_addr()?;
                        let server = match redis_url {
                            None => actix_serve(
                                actix_session::storage::CookieSessionStore::default,
                                listener,
                            )?,
                            Some(url) => {
                                let store = actix_session::storage::RedisSessionStore::builder(url)
                                    .cache_keygen(move |k| format!("{p}{k}"))
                                    .build()
                                    .await?;
                                actix_serve(move || store.clone(), listener)?
                            }
                        };
                        anyhow::Ok((addr, server))
                    };
                    match start.await {
                        Ok((addr, server)) => {
                            let _ = tx.send(Ok((addr, server.handle())));
                            let _ = server.await;
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e));
                        }
                    }
                });
            })
            .context("starting the actix thread")?;
        let (addr, handle) = rx
            .await
            .map_err(|_| anyhow!("the actix thread stopped before it was ready"))??;
        let (storage, cleanup) = match &self.redis_url {
            None => (StorageProbe::Zero, None),
            Some(url) => (
                StorageProbe::RedisPrefix(url.clone(), prefix.clone()),
                Some(Cleanup::RedisPrefix(url.clone(), prefix)),
            ),
        };
        Ok(Box::new(ActixServer {
            addr,
            handle,
            thread: Some(thread),
            storage,
            cleanup,
        }))
    }
}

struct ActixServer {
    addr: SocketAddr,
    handle: actix_web::dev::ServerHandle,
    thread: Option<JoinHandle<()>>,
    storage: StorageProbe,
    cleanup: Option<Cleanup>,
}

#[async_trait]
impl Server for ActixServer {
    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn threads(&self) -> ThreadSet {
        // actix names its worker and acceptor threads `actix-server ...`.
        ThreadSet::own(&[SERVER_THREAD_NAME, "actix"])
    }

    async fn storage_bytes_per_session(&self) -> anyhow::Result<Option<f64>> {
        self.storage.measure().await
    }

    async fn stop(mut self: Box<Self>) {
        let _ = tokio::time::timeout(Duration::from_secs(10), self.handle.stop(false)).await;
        if let Some(t) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
        if let Some(c) = self.cleanup.take() {
            c.run().await;
        }
    }
}
