//! The `cached-db` engine: a cache in front of a db engine (Django's `cached_db` backend).
//!
//! The database is the record; the cache is a read-through, write-through copy:
//!
//! * **Writes go to the database first**, then to the cache. A cache that fails is logged
//!   (`Error saving to cache`, at ERROR) and never fails the request: the database has the
//!   data, and the next read fills the cache again.
//! * **Reads try the cache** (a failing cache counts as a miss), then the database, and a
//!   database hit fills the cache.
//! * **`delete` deletes from both**, the database first, and reports a cache that fails:
//!   a logout must not leave a usable copy of the session behind.
//! * `exists` asks the cache, then the database; `clear_expired`, `count_expired` and
//!   `migrate` are the database's.
//!
//! Three rules keep the copy from outliving or contradicting the record, where Django's
//! backend can:
//!
//! * `save` only *replaces* a cached copy (the cache's own `save`, `SET … XX` on Redis); it
//!   never adds one. A logout that ran between this request's database write and its cache
//!   write has removed the copy, and it stays removed.
//! * A fill never overwrites ([`SessionCache::add`]), so stale data read from the database
//!   cannot replace what a concurrent save has just cached.
//! * A fill lives at most [`FILL_TTL`] (or until the session's fixed expiry date): the
//!   database engine does not report a row's `expire_date`, so a filled copy must not be
//!   trusted for long. Writes cache the session until its real expiry date.
//!
//! The database `session_data` is the db engine's, so `db` and `cached-db` can be switched
//! freely, and Django's `cached_db` backend reads the same table.
//!
//! With an in-process `memory://` cache, each process has its own copy: run one process, or
//! use Redis, so that a write in one process is not hidden by a stale copy in another.

use std::sync::Arc;

use async_trait::async_trait;
use time::{Duration, OffsetDateTime};

use crate::cache::SessionCache;
use crate::clock::Clock;
use crate::config::Config;
use crate::engine::{Changes, LoadedSession, SessionData, SessionEngine};
use crate::error::{Error, LogId, Result};
use crate::expiry::Expiry;

/// The longest a copy filled from the database stays in the cache.
pub const FILL_TTL: Duration = Duration::seconds(60);

/// Opens the database and the cache that the configuration names.
pub async fn open(config: &Config) -> Result<Arc<dyn SessionEngine>> {
    Ok(Arc::new(CachedDbEngine::open(config).await?))
}

/// Sessions in a database, with a cache in front.
///
/// ```no_run
/// # async fn run() -> sessio::Result<()> {
/// use sessio::{Config, EngineKind};
///
/// let config = Config::builder()
///     .secret_key("a-long-random-secret-key-from-your-settings-0123456789")
///     .engine(EngineKind::CachedDb)
///     .database_url("sqlite://sessions.sqlite3")
///     .cache_url("redis://127.0.0.1:6379/0")
///     .build()?;
/// let engine = sessio::engine::open(&config).await?;
/// assert_eq!(engine.name(), "cached-db");
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct CachedDbEngine {
    db: Arc<dyn SessionEngine>,
    cache: Arc<dyn SessionCache>,
    clock: Arc<dyn Clock>,
    cookie_age: i64,
}

impl CachedDbEngine {
    /// Opens `config.database_url()` and `config.cache_url()`.
    ///
    /// A cache that cannot be reached at start-up is an error, like a database: it is
    /// more likely a wrong URL than a passing outage.
    pub async fn open(config: &Config) -> Result<Self> {
        let db = crate::db::open(config).await?;
        let cache = crate::cache::open_cache(config).await?;
        Ok(Self::new(db, cache, config))
    }

    /// Puts `cache` in front of `db`, with the clock and cookie age of `config`.
    pub fn new(db: Arc<dyn SessionEngine>, cache: Arc<dyn SessionCache>, config: &Config) -> Self {
        Self {
            db,
            cache,
            clock: config.clock().clone(),
            cookie_age: config.cookie_age(),
        }
    }

    /// The database: the record.
    pub fn db(&self) -> &Arc<dyn SessionEngine> {
        &self.db
    }

    /// The cache: a copy.
    pub fn cache(&self) -> &Arc<dyn SessionCache> {
        &self.cache
    }

    /// How long a copy filled from the database may live: until the session's fixed
    /// expiry date if it has one (the row's `expire_date` then), else at most [`FILL_TTL`].
    fn fill_expiry(&self, data: &SessionData) -> OffsetDateTime {
        let now = self.clock.now();
        match crate::expiry::from_data(Some(data)) {
            Expiry::AtDateTime(at) => at,
            _ => crate::expiry::date(Some(data), now, self.cookie_age).min(now + FILL_TTL),
        }
    }

    fn cache_write_failed(&self, key: &str, e: &Error) {
        tracing::error!(cache = ?self.cache, session = %LogId(key), error = %e, "Error saving to cache");
    }
}

#[async_trait]
impl SessionEngine for CachedDbEngine {
    fn name(&self) -> &'static str {
        "cached-db"
    }

    fn is_client_side(&self) -> bool {
        false
    }

    async fn load(&self, key: &str) -> Result<Option<SessionData>> {
        Ok(self
            .load_session(key)
            .await?
            .map(|s| Arc::unwrap_or_clone(s.data)))
    }

    /// Hands out no version: one from the cache or the database alone says nothing about
    /// the other copy, so saves take the merging path (`save_changes`).
    async fn load_session(&self, key: &str) -> Result<Option<LoadedSession>> {
        match self.cache.load_session(key).await {
            Ok(Some(session)) => {
                return Ok(Some(LoadedSession {
                    version: None,
                    ..session
                }))
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(cache = ?self.cache, error = %e, "Error reading from cache, reading the database");
            }
        }
        let Some(session) = self.db.load_session(key).await? else {
            return Ok(None);
        };
        if let Err(e) = self
            .cache
            .add(key, &session.data, self.fill_expiry(&session.data))
            .await
        {
            self.cache_write_failed(key, &e);
        }
        Ok(Some(LoadedSession {
            version: None,
            ..session
        }))
    }

    async fn create(&self, data: &SessionData, expires: OffsetDateTime) -> Result<String> {
        let key = self.db.create(data, expires).await?;
        // The key is new: nothing can be cached under it yet.
        if let Err(e) = self.cache.add(&key, data, expires).await {
            self.cache_write_failed(&key, &e);
        }
        Ok(key)
    }

    async fn insert(&self, key: &str, data: &SessionData, expires: OffsetDateTime) -> Result<bool> {
        if !self.db.insert(key, data, expires).await? {
            return Ok(false);
        }
        if let Err(e) = self.cache.add(key, data, expires).await {
            self.cache_write_failed(key, &e);
        }
        Ok(true)
    }

    async fn save(&self, key: &str, data: &SessionData, expires: OffsetDateTime) -> Result<String> {
        let cookie = match self.db.save(key, data, expires).await {
            Ok(cookie) => cookie,
            Err(Error::SessionInterrupted) => {
                // Gone from the record: no copy may survive it.
                if let Err(e) = self.cache.delete(key).await {
                    tracing::error!(cache = ?self.cache, session = %LogId(key), error = %e, "Error deleting from cache");
                }
                return Err(Error::SessionInterrupted);
            }
            Err(e) => return Err(e),
        };
        match self.cache.save(key, data, expires).await {
            // No copy to replace (never filled, evicted, or deleted by a concurrent logout):
            // the next read fills it from the database.
            Ok(_) | Err(Error::SessionInterrupted) => {}
            Err(e) => {
                self.cache_write_failed(key, &e);
                // The copy may now be older than the record: drop it if the cache lets us.
                let _ = self.cache.delete(key).await;
            }
        }
        Ok(cookie)
    }

    async fn save_changes(
        &self,
        key: &str,
        changes: &Changes,
        expires: OffsetDateTime,
    ) -> Result<(String, SessionData)> {
        let (cookie, merged) = match self.db.save_changes(key, changes, expires).await {
            Ok(saved) => saved,
            Err(Error::SessionInterrupted) => {
                if let Err(e) = self.cache.delete(key).await {
                    tracing::error!(cache = ?self.cache, session = %LogId(key), error = %e, "Error deleting from cache");
                }
                return Err(Error::SessionInterrupted);
            }
            Err(e) => return Err(e),
        };
        // The same changes, applied atomically to the copy: concurrent requests reach the
        // two stores in any order, and changes to different keys commute, so the copy ends
        // as the record does. A copy that differs from the record (conflicting writes of
        // one key, or a copy already stale) is dropped; the next read fills it again.
        match self.cache.save_changes(key, changes, expires).await {
            Ok((_, copy)) if copy == merged => {}
            Ok(_) => {
                if let Err(e) = self.cache.delete(key).await {
                    self.cache_write_failed(key, &e);
                }
            }
            Err(Error::SessionInterrupted) => {}
            Err(e) => {
                self.cache_write_failed(key, &e);
                let _ = self.cache.delete(key).await;
            }
        }
        Ok((cookie, merged))
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.db.delete(key).await?;
        // Reported, not swallowed (as Django): a copy left behind would keep a logged-out
        // session alive for anyone holding its cookie.
        self.cache.delete(key).await
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        match self.cache.exists(key).await {
            Ok(true) => return Ok(true),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(cache = ?self.cache, error = %e, "Error reading from cache, reading the database");
            }
        }
        self.db.exists(key).await
    }

    async fn count_expired(&self) -> Result<Option<u64>> {
        self.db.count_expired().await
    }

    async fn clear_expired_batch(&self, limit: usize) -> Result<u64> {
        self.db.clear_expired_batch(limit).await
    }

    async fn migrate(&self) -> Result<()> {
        self.db.migrate().await
    }
}
