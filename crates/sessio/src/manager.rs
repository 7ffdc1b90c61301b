//! `SessionManager`: a configuration and its open engine, the entry point of an app.

use std::sync::Arc;

use crate::config::Config;
use crate::engine::SessionEngine;
use crate::error::Result;
use crate::middleware::SessionLayer;
use crate::session::Session;
use crate::users::{Extras, StolenCookie, UserSession};

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
    extras: Arc<Extras>,
}

impl SessionManager {
    /// Opens the engine the configuration names (and creates its schema when
    /// `auto_migrate` is on).
    pub async fn open(config: Config) -> Result<Self> {
        let engine = crate::open(&config).await?;
        // Cookie engines keep "log out everywhere" counters in a server engine.
        let revocation = match config.cookie_revocation() {
            Some(kind) if engine.is_client_side() => {
                Some(crate::open::open_kind(&config, kind).await?)
            }
            _ => None,
        };
        let extras = Arc::new(Extras::new(&config, &engine, revocation));
        Ok(Self {
            config: Arc::new(config),
            engine,
            extras,
        })
    }

    /// A manager over an engine that is already open.
    pub fn new(config: Config, engine: Arc<dyn SessionEngine>) -> Self {
        let extras = Arc::new(Extras::new(&config, &engine, None));
        Self {
            config: Arc::new(config),
            engine,
            extras,
        }
    }

    /// The tower layer that gives every request a [`Session`].
    pub fn layer(&self) -> SessionLayer {
        SessionLayer::with_extras(
            self.engine.clone(),
            self.config.clone(),
            self.extras.clone(),
        )
    }

    /// A session for a cookie value, outside HTTP.
    pub fn session(&self, cookie_value: Option<String>) -> Session {
        Session::with_extras(
            self.engine.clone(),
            self.config.clone(),
            self.extras.clone(),
            cookie_value,
        )
    }

    /// Runs [`clear_expired`](SessionManager::clear_expired) every `interval` in a tokio
    /// task, logging what it deleted and any error (the task keeps going). Drop or abort
    /// the handle to stop it.
    ///
    /// ```no_run
    /// # async fn run(sessions: sessio::SessionManager) {
    /// let cleaner = sessions.spawn_clear_expired(std::time::Duration::from_secs(3600));
    /// // ... on shutdown:
    /// cleaner.abort();
    /// # }
    /// ```
    pub fn spawn_clear_expired(
        &self,
        interval: std::time::Duration,
    ) -> tokio::task::JoinHandle<()> {
        let manager = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match manager.clear_expired(DEFAULT_CLEAR_BATCH, |_| {}).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(deleted = n, "cleared expired sessions"),
                    Err(error) => tracing::warn!(%error, "clearing expired sessions failed"),
                }
            }
        })
    }

    /// The sessions of a user (logged in with [`crate::auth::login`]), newest data first
    /// as stored; ended sessions are pruned from the index as they are found. Server
    /// engines only: cookie sessions are nowhere on the server to list.
    pub async fn user_sessions(&self, user_id: &str) -> Result<Vec<UserSession>> {
        if self.extras.generations {
            return Err(crate::Error::Unsupported {
                engine: self.engine.name(),
                operation: "listing a user's sessions (cookie sessions live in browsers; revoke_all_sessions works with cookie_revocation)",
            });
        }
        let entries = self.extras.index_list(user_id).await?;
        Ok(entries
            .into_iter()
            .map(|l| crate::users::parse_entry(l.stored, None, &l.entry))
            .collect())
    }

    /// Ends one session of a user, by the `id` that [`SessionManager::user_sessions`] gave.
    /// Returns whether it ended one: an id that is not a live session of `user_id` (another
    /// user's, say) is left alone.
    pub async fn revoke_session(&self, user_id: &str, id: &str) -> Result<bool> {
        if self.extras.generations || crate::users::is_record_name(id) {
            return Ok(false);
        }
        let owner = self.engine.load(id).await?;
        if crate::users::owner_of(owner.as_ref()).as_deref() != Some(user_id) {
            return Ok(false);
        }
        self.engine.delete(id).await?;
        if self.extras.index.is_some() {
            self.extras.index_remove(user_id, &[id.to_owned()]).await?;
        }
        Ok(true)
    }

    /// Calls `hook` when a stolen cookie is detected: a session id that a login retired
    /// comes back after `stolen_cookie_grace`. By then sessio has already ended the session
    /// the id was cycled into (and every session of the user, with
    /// `stolen_cookie_ends_user_sessions`) and logged a warning; the hook lets the
    /// application tell the user or audit it. Keep it quick: it runs inside the request.
    ///
    /// ```no_run
    /// # async fn run() -> sessio::Result<()> {
    /// let sessions = sessio::SessionManager::open(sessio::Config::from_env()?)
    ///     .await?
    ///     .on_stolen_cookie(|event| {
    ///         eprintln!("stolen cookie of user {:?} ({})", event.user_id, event.fingerprint);
    ///     });
    /// # Ok(()) }
    /// ```
    pub fn on_stolen_cookie(
        mut self,
        hook: impl Fn(&StolenCookie) + Send + Sync + 'static,
    ) -> Self {
        Arc::make_mut(&mut self.extras).set_hook(Arc::new(hook));
        self
    }

    /// Logs a user out everywhere (password change, disabled account): ends every session
    /// of theirs and returns how many. For cookie engines this bumps the user's generation
    /// (every cookie issued before is refused) and returns 1.
    pub async fn revoke_all_sessions(&self, user_id: &str) -> Result<u64> {
        if self.extras.generations {
            self.extras.bump_generation(user_id).await?;
            return Ok(1);
        }
        let ids: Vec<String> = self
            .extras
            .index_list(user_id)
            .await?
            .into_iter()
            .map(|l| l.stored)
            .collect();
        for id in &ids {
            self.engine.delete(id).await?;
        }
        self.extras.index_remove(user_id, &ids).await?;
        Ok(ids.len() as u64)
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
