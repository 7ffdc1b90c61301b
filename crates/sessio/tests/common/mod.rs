//! Fixtures shared by the integration tests: one per engine, each with its own data.

#![allow(dead_code)]

use std::future::Future;
use std::pin::Pin;

use sessio::clock::ManualClock;
use sessio::{Config, ConfigBuilder, EngineKind, Session, SessionManager};

/// The frozen time of Django's test vectors: 2023-11-14T22:13:20Z.
pub const T: i64 = 1_700_000_000;
/// A key that passes the production checks.
pub const STRONG_KEY: &str = "conformance-suite-secret-key-0123456789-abcdefghijklmnop";

/// An engine under test, with a clock the test controls.
pub struct Fixture {
    pub sessions: SessionManager,
    pub clock: ManualClock,
    // Keeps the engine's temp dir, database or key prefix alive for the test.
    _guard: Option<Box<dyn std::any::Any + Send + Sync>>,
}

impl std::fmt::Debug for Fixture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fixture")
            .field("engine", &self.sessions.engine().name())
            .finish_non_exhaustive()
    }
}

impl Fixture {
    /// A fresh session, as for a request with this cookie value.
    pub fn session(&self, key: Option<&str>) -> Session {
        self.sessions.session(key.map(str::to_owned))
    }

    pub fn client_side(&self) -> bool {
        self.sessions.engine().is_client_side()
    }
}

/// Makes a fixture from settings, or `None` when the engine's server is unreachable and
/// the test should be skipped (see [`service_url`]).
pub type Make = fn(ConfigBuilder) -> Pin<Box<dyn Future<Output = Option<Fixture>> + Send>>;

/// Whether unreachable services fail the tests instead of skipping them (CI sets it).
pub fn services_required() -> bool {
    std::env::var("SESSIO_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// The URL of a test service from the environment variable `var`, or `default`.
pub fn service_url(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_owned())
}

/// Reports an unreachable service: a visible skip locally, a failure under
/// `SESSIO_REQUIRE_SERVICES=1`. Returns `None` so callers can `?`/`return` on it.
pub fn skip<T>(service: &str, url: &str, error: impl std::fmt::Display) -> Option<T> {
    if services_required() {
        panic!("{service} at {url} is unreachable and SESSIO_REQUIRE_SERVICES=1: {error}");
    }
    eprintln!("SKIPPED: {service} at {url} is unreachable ({error}); set SESSIO_REQUIRE_SERVICES=1 to fail instead");
    None
}

/// The base settings: a strong key, schema created at start (the fixture adds a clock
/// frozen at `T`).
pub fn base() -> ConfigBuilder {
    Config::builder().secret_key(STRONG_KEY).auto_migrate(true)
}

/// Opens the configured engine; `guard` lives as long as the fixture (a temp dir, or
/// whatever drops the test's database or key prefix).
pub async fn open(
    builder: ConfigBuilder,
    guard: Option<Box<dyn std::any::Any + Send + Sync>>,
    clock: ManualClock,
) -> Option<Fixture> {
    let config = builder.build().expect("valid test config");
    let sessions = SessionManager::open(config).await.expect("engine opens");
    Some(Fixture {
        sessions,
        clock,
        _guard: guard,
    })
}

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

/// A fixture with the base settings (and the fixture's own clock); `None` means skip.
pub async fn fixture(make: Make) -> Option<Fixture> {
    make(base()).await
}

/// A fixture with extra settings on top of the base ones.
pub async fn fixture_with(
    make: Make,
    tweak: impl FnOnce(ConfigBuilder) -> ConfigBuilder,
) -> Option<Fixture> {
    make(tweak(base())).await
}
