//! Fixtures: an engine under test with a clock the test controls, and the rules for
//! servers that are not there (a visible skip, or a failure under
//! `SESSIO_REQUIRE_SERVICES=1`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use sessio::clock::ManualClock;
use sessio::server::ServerEngine;
use sessio::store::SessionStore;
use sessio::{Config, ConfigBuilder, Session, SessionManager};

/// The frozen time of Django's test vectors: 2023-11-14T22:13:20Z.
pub const T: i64 = 1_700_000_000;
/// A key that passes the production checks.
pub const STRONG_KEY: &str = "conformance-suite-secret-key-0123456789-abcdefghijklmnop";

/// An engine under test, with a clock the test controls.
pub struct Fixture {
    /// The sessions of the engine under test.
    pub sessions: SessionManager,
    /// The clock the engine reads; tests move it.
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
    /// A fixture over `sessions`; `guard` lives as long as the fixture (a temp dir, or
    /// whatever drops the test's database or key prefix).
    pub fn new(
        sessions: SessionManager,
        clock: ManualClock,
        guard: Option<Box<dyn std::any::Any + Send + Sync>>,
    ) -> Self {
        Self {
            sessions,
            clock,
            _guard: guard,
        }
    }

    /// A fresh session, as for a request with this cookie value.
    pub fn session(&self, key: Option<&str>) -> Session {
        self.sessions.session(key.map(str::to_owned))
    }

    /// The fixture clock's time.
    pub fn clock_now(&self) -> time::OffsetDateTime {
        use sessio::clock::Clock;
        self.clock.now()
    }

    /// Whether the engine keeps sessions in the cookie.
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

/// `sessions` with a stolen-cookie hook that records every report, and the record.
pub fn recording_stolen_cookies(
    sessions: &SessionManager,
) -> (
    SessionManager,
    std::sync::Arc<std::sync::Mutex<Vec<sessio::users::StolenCookie>>>,
) {
    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = events.clone();
    let sessions = sessions
        .clone()
        .on_stolen_cookie(move |e| seen.lock().unwrap().push(e.clone()));
    (sessions, events)
}

/// A fixture for `store`, made from the suite's settings by `make`: the store behind the
/// core's [`ServerEngine`], with a clock frozen at [`T`]. This is how a store written
/// outside sessio runs the suite (see [`conformance!`](crate::conformance)).
///
/// `make` gets the configuration (keys, clock, lifetimes) and returns the store, or `None`
/// to skip (its server is unreachable: call [`skip`]).
pub async fn store_fixture<S, F, Fut>(builder: ConfigBuilder, make: F) -> Option<Fixture>
where
    S: SessionStore,
    F: FnOnce(&Config) -> Fut,
    Fut: Future<Output = Option<S>>,
{
    let clock = ManualClock::at_unix(T);
    let config = builder
        .clock(clock.clone())
        .build()
        .expect("valid test config");
    let store = make(&config).await?;
    let engine = Arc::new(ServerEngine::new(store, &config));
    let sessions = SessionManager::new(config, engine);
    sessions
        .migrate()
        .await
        .expect("the store's schema is created");
    Some(Fixture::new(sessions, clock, None))
}
