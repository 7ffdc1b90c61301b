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
#[derive(Debug)]
pub struct Fixture {
    pub sessions: SessionManager,
    pub clock: ManualClock,
    // Keeps the engine's temp dir alive for the test.
    _dir: Option<tempfile::TempDir>,
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

pub type Make = fn(ConfigBuilder) -> Pin<Box<dyn Future<Output = Fixture> + Send>>;

/// The base settings: a strong key, schema created at start (the fixture adds a clock
/// frozen at `T`).
pub fn base() -> ConfigBuilder {
    Config::builder().secret_key(STRONG_KEY).auto_migrate(true)
}

async fn open(
    builder: ConfigBuilder,
    dir: Option<tempfile::TempDir>,
    clock: ManualClock,
) -> Fixture {
    let config = builder.build().expect("valid test config");
    let sessions = SessionManager::open(config).await.expect("engine opens");
    Fixture {
        sessions,
        clock,
        _dir: dir,
    }
}

/// Sessions in signed cookies.
pub fn signed_cookies(builder: ConfigBuilder) -> Pin<Box<dyn Future<Output = Fixture> + Send>> {
    Box::pin(async move {
        let clock = ManualClock::at_unix(T);
        let b = builder
            .clock(clock.clone())
            .engine(EngineKind::SignedCookies);
        open(b, None, clock).await
    })
}

/// Sessions in a SQLite `django_session` table in a temp dir of its own.
pub fn db_sqlite(builder: ConfigBuilder) -> Pin<Box<dyn Future<Output = Fixture> + Send>> {
    Box::pin(async move {
        let clock = ManualClock::at_unix(T);
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("sessions.sqlite3").display());
        let b = builder
            .clock(clock.clone())
            .engine(EngineKind::Db)
            .database_url(url);
        open(b, Some(dir), clock).await
    })
}

/// A fixture with the base settings (and the fixture's own clock).
pub async fn fixture(make: Make) -> Fixture {
    make(base()).await
}

/// A fixture with extra settings on top of the base ones.
pub async fn fixture_with(
    make: Make,
    tweak: impl FnOnce(ConfigBuilder) -> ConfigBuilder,
) -> Fixture {
    make(tweak(base())).await
}
