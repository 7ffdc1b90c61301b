//! `SessionManager`: a configuration and its open engine, the entry point of an app.

use std::sync::Arc;

use crate::config::Config;
use crate::engine::SessionEngine;
use crate::error::Result;
use crate::middleware::SessionLayer;
use crate::session::Session;

/// How many expired records one `clear_expired` statement deletes by default.
pub const DEFAULT_CLEAR_BATCH: usize = 1000;

/// A configuration with its engine, opened once at start-up and shared by every request.
///
/// ```no_run
/// # async fn run() -> sessio::Result<()> {
/// let sessions = sessio::SessionManager::open(sessio::Config::from_env()?).await?;
/// let deleted = sessions.clear_expired(1000, |_| {}).await?;
/// println!("deleted {deleted} expired sessions");
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct SessionManager {
    config: Arc<Config>,
    engine: Arc<dyn SessionEngine>,
}

impl SessionManager {
    /// Opens the engine the configuration names (and creates its schema when
    /// `auto_migrate` is on).
    pub async fn open(config: Config) -> Result<Self> {
        let engine = crate::engine::open(&config).await?;
        Ok(Self::new(config, engine))
    }

    /// A manager over an engine that is already open.
    pub fn new(config: Config, engine: Arc<dyn SessionEngine>) -> Self {
        Self {
            config: Arc::new(config),
            engine,
        }
    }

    /// The tower layer that gives every request a [`Session`].
    pub fn layer(&self) -> SessionLayer {
        SessionLayer::new(self.engine.clone(), self.config.clone())
    }

    /// A session for a cookie value, outside HTTP.
    pub fn session(&self, cookie_value: Option<String>) -> Session {
        Session::new(self.engine.clone(), self.config.clone(), cookie_value)
    }

    /// The configuration.
    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// The engine.
    pub fn engine(&self) -> &Arc<dyn SessionEngine> {
        &self.engine
    }

    /// Creates or upgrades the engine's schema (`sessio migrate`).
    pub async fn migrate(&self) -> Result<()> {
        self.engine.migrate().await
    }

    /// How many expired records there are, when the engine can tell.
    pub async fn count_expired(&self) -> Result<Option<u64>> {
        self.engine.count_expired().await
    }

    /// Deletes every expired record, `batch` at a time so no statement holds the store for
    /// long, calling `progress` with the running total after each batch. Returns the total
    /// (Django's `clearsessions`).
    pub async fn clear_expired(&self, batch: usize, mut progress: impl FnMut(u64)) -> Result<u64> {
        let batch = batch.max(1);
        let mut total = 0;
        loop {
            let n = self.engine.clear_expired_batch(batch).await?;
            total += n;
            progress(total);
            if (n as usize) < batch {
                return Ok(total);
            }
            // Let live traffic in between batches.
            tokio::task::yield_now().await;
        }
    }
}
