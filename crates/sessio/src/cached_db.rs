//! The `cached-db` engine: a cache in front of a database (Django's `cached_db` backend).
//!
//! [`CachedDbStore`] combines two stores, chosen at run time ([`AnyStore`]): the database
//! is the record; the cache is a read-through, write-through copy. The core's
//! [`ServerEngine`] creates ids, encodes and merges around the pair ([`CachedDbEngine`]).
//!
//! * **Writes go to the database first**, then to the cache. A cache that fails is logged
//!   (`Error saving to cache`, at ERROR) and never fails the request: the database has the
//!   data, and the next read fills the cache again.
//! * **Reads try the cache** (a failing cache counts as a miss), then the database, and a
//!   database hit fills the cache.
//! * **`delete` deletes from both**, the database first, and reports a cache that fails:
//!   a logout must not leave a usable copy of the session behind.
//! * `clear_expired`, `count_expired` and `migrate` are the database's.
//!
//! # Versions
//!
//! Versions are the database's: the cache keeps each record under the database's
//! version, the text the database holds (Redis keeps that text; the in-process cache keeps
//! the data with the text as its version,
//! [`MemoryStore::with_text_versions`](crate::cache::MemoryStore::with_text_versions)),
//! so a save from a version read in the cache is one compare-and-set on the database,
//! with no read. When the database answers [`Update::Conflict`] (another request wrote, or
//! the copy was stale), the copy is dropped, so the core's merge reads the record itself.
//!
//! # Keeping the copy honest
//!
//! Four rules keep the copy from outliving or contradicting the record, where Django's
//! backend can:
//!
//! * An update of the copy is the database's update again: with the same expected
//!   version, so it replaces only the copy of the record the database just replaced
//!   (else the copy is dropped), and never adds a copy (a logout that ran between this
//!   request's database write and its cache write has removed the copy, and it stays
//!   removed). A record gone from the database takes its copy with it.
//! * A fill never overwrites ([`insert`](SessionStore::insert) is Django's cache `add`),
//!   so stale data read from the database cannot replace what a concurrent save has just
//!   cached; and a record new to the database replaces any copy left under its id.
//! * A fill is the database's text re-encoded at its signing time, stored only when that
//!   gives the very text the database holds (so its version is the database's): a record
//!   written under a fallback key, or by another encoder, is not cached until sessio
//!   writes it again.
//! * A fill lives at most [`FILL_TTL`] (or until the session's fixed expiry date): a
//!   store does not report a record's expiry date, so a filled copy must not be trusted
//!   for long. Writes cache the session until its real expiry date.
//!
//! The database `session_data` is the db engine's, so `db` and `cached-db` can be switched
//! freely, and Django's `cached_db` backend reads the same table.
//!
//! With an in-process `memory://` cache, each process has its own copy: run one process, or
//! use Redis, so that a write in one process is not hidden by a stale copy in another.

use std::sync::Arc;

use sessio_django::codec::StoreCodec;
use time::{Duration, OffsetDateTime};

use crate::clock::Clock;
use crate::config::Config;
use crate::engine::{Changes, SessionData, SessionEngine, Version};
use crate::error::{Error, LogId, Result};
use crate::expiry::Expiry;
use crate::server::ServerEngine;
use crate::store::{AnyStore, Payload, Record, SessionStore, Update};

/// The longest a copy filled from the database stays in the cache.
pub const FILL_TTL: Duration = Duration::seconds(60);

/// The `cached-db` engine: the [`CachedDbStore`] behind the core's [`ServerEngine`].
pub type CachedDbEngine = ServerEngine<CachedDbStore>;

/// Opens the database and the cache that the configuration names.
pub async fn open(config: &Config) -> Result<CachedDbEngine> {
    CachedDbEngine::open(config).await
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
/// let engine = sessio::open(&config).await?;
/// assert_eq!(engine.name(), "cached-db");
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct CachedDbStore {
    cache: AnyStore,
    db: AnyStore,
    /// A clone of the engine's codec (sharing its table of verified values), to read the
    /// database's text for a fill.
    codec: StoreCodec,
    clock: Arc<dyn Clock>,
    cookie_age: i64,
}

impl ServerEngine<CachedDbStore> {
    /// Opens `config.database_url()` and `config.cache_url()`.
    ///
    /// A cache that cannot be reached at start-up is an error, like a database: it is
    /// more likely a wrong URL than a passing outage.
    pub async fn open(config: &Config) -> Result<Self> {
        let codec = config.store_codec();
        let db = AnyStore::new(EngineStore(crate::db::open(config).await?));
        let cache = crate::cache::open_store(config, &codec).await?;
        Ok(Self::with_stores(db, cache, codec, config))
    }

    /// Puts `cache` in front of `db`, with the keys, clock and cookie age of `config`. The
    /// cache should version its records as the database does (see the
    /// [module documentation](self)); one that does not is correct, only slower.
    pub fn from_stores(db: AnyStore, cache: AnyStore, config: &Config) -> Self {
        Self::with_stores(db, cache, config.store_codec(), config)
    }

    fn with_stores(db: AnyStore, cache: AnyStore, codec: StoreCodec, config: &Config) -> Self {
        let store = CachedDbStore::sharing(db, cache, codec.clone(), config);
        ServerEngine::with_codec(store, codec, config.clock().clone())
            .merging_for(config.store_timeout())
    }

    /// The database (the record), as an engine of its own.
    pub fn db(&self) -> ServerEngine<AnyStore> {
        self.store().view(self.store().db())
    }

    /// The cache (a copy), as an engine of its own.
    pub fn cache(&self) -> ServerEngine<AnyStore> {
        self.store().view(self.store().cache())
    }
}

impl CachedDbStore {
    /// Puts `cache` in front of `db`, with the keys, clock and cookie age of `config`.
    pub fn new(db: AnyStore, cache: AnyStore, config: &Config) -> Self {
        Self::sharing(db, cache, config.store_codec(), config)
    }

    /// As [`new`](Self::new), with `codec`, a clone of the engine's (so that the engine's
    /// decode of a record a fill has read is a lookup).
    fn sharing(db: AnyStore, cache: AnyStore, codec: StoreCodec, config: &Config) -> Self {
        Self {
            cache,
            db,
            codec,
            clock: config.clock().clone(),
            cookie_age: config.cookie_age(),
        }
    }

    /// The database: the record.
    pub fn db(&self) -> &AnyStore {
        &self.db
    }

    /// The cache: a copy.
    pub fn cache(&self) -> &AnyStore {
        &self.cache
    }

    fn view(&self, store: &AnyStore) -> ServerEngine<AnyStore> {
        ServerEngine::with_codec(store.clone(), self.codec.clone(), self.clock.clone())
    }

    /// How long a copy filled from the database may live: until the session's fixed
    /// expiry date if it has one (the record's expiry then), else at most [`FILL_TTL`].
    fn fill_expiry(&self, data: &SessionData) -> OffsetDateTime {
        let now = self.clock.now();
        match crate::expiry::from_data(Some(data)) {
            Expiry::AtDateTime(at) => at,
            _ => crate::expiry::date(Some(data), now, self.cookie_age).min(now + FILL_TTL),
        }
    }

    /// Copies the database's `record` into the cache, under the database's version, unless
    /// the cache holds a copy already.
    async fn fill(&self, id: &str, record: &Record) {
        let text = match record {
            Record::Text(text) => text.as_str(),
            Record::Data { version, .. } => match version.as_stored() {
                Some(text) => text,
                // A database versioned otherwise: no copy could carry its version.
                None => return,
            },
        };
        // A remembered value when the core or a Redis cache has read it already.
        let Ok(decoded) = self.codec.decode(text) else {
            return;
        };
        let Some(signed_at) = decoded.signed_at.filter(|_| !decoded.stale_key) else {
            return;
        };
        let payload = Payload::new(&decoded.data, &self.codec, signed_at);
        if payload.text() != text {
            // Written by another encoder: a copy would not carry the database's version.
            return;
        }
        let expires = self.fill_expiry(&decoded.data);
        if let Err(e) = self.cache.insert(id, &payload, expires).await {
            self.cache_write_failed(id, &e);
        }
    }

    /// Drops the copy of `id`, which may be older than the record.
    async fn drop_copy(&self, id: &str) {
        if let Err(e) = self.cache.delete(id).await {
            tracing::error!(cache = ?self.cache, session = %LogId(id), error = %e, "Error deleting from cache");
        }
    }

    fn cache_write_failed(&self, id: &str, e: &Error) {
        tracing::error!(cache = ?self.cache, session = %LogId(id), error = %e, "Error saving to cache");
    }
}

impl SessionStore for CachedDbStore {
    fn name(&self) -> &'static str {
        "cached-db"
    }

    async fn load(&self, id: &str) -> Result<Option<Record>> {
        match self.cache.load(id).await {
            Ok(Some(record)) => return Ok(Some(record)),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(cache = ?self.cache, error = %e, "Error reading from cache, reading the database");
            }
        }
        let Some(record) = self.db.load(id).await? else {
            return Ok(None);
        };
        self.fill(id, &record).await;
        Ok(Some(record))
    }

    async fn insert(
        &self,
        id: &str,
        record: &Payload<'_>,
        expires: OffsetDateTime,
    ) -> Result<bool> {
        if !self.db.insert(id, record, expires).await? {
            return Ok(false);
        }
        match self.cache.insert(id, record, expires).await {
            Ok(true) => {}
            // The id is new to the record: a copy under it is a leftover.
            Ok(false) => self.drop_copy(id).await,
            Err(e) => self.cache_write_failed(id, &e),
        }
        Ok(true)
    }

    async fn update(
        &self,
        id: &str,
        record: &Payload<'_>,
        expires: OffsetDateTime,
        expected: Option<&Version>,
    ) -> Result<Update> {
        let outcome = self.db.update(id, record, expires, expected).await?;
        match outcome {
            // The same update of the copy: it replaces only the copy of what the database
            // held, and never adds one (no copy: never filled, evicted, or deleted by a
            // concurrent logout; the next read fills it from the database).
            Update::Stored(_) => match self.cache.update(id, record, expires, expected).await {
                Ok(Update::Stored(_) | Update::Gone) => {}
                // A copy of another version: older than the record, dropped.
                Ok(Update::Conflict) => self.drop_copy(id).await,
                Err(e) => {
                    self.cache_write_failed(id, &e);
                    // The copy may now be older than the record: drop it if the cache lets us.
                    let _ = self.cache.delete(id).await;
                }
            },
            // The version may have come from a stale copy: the core's next read goes to
            // the database.
            Update::Conflict => self.drop_copy(id).await,
            // Gone from the record: no copy may survive it.
            Update::Gone => self.drop_copy(id).await,
        }
        Ok(outcome)
    }

    async fn delete(&self, id: &str) -> Result<()> {
        self.db.delete(id).await?;
        // Reported, not swallowed (as Django): a copy left behind would keep a logged-out
        // session alive for anyone holding its cookie.
        self.cache.delete(id).await
    }

    async fn clear_expired(&self, limit: usize) -> Result<u64> {
        self.db.clear_expired(limit).await
    }

    async fn migrate(&self) -> Result<()> {
        self.db.migrate().await
    }

    async fn count_expired(&self) -> Result<Option<u64>> {
        self.db.count_expired().await
    }
}

/// A database engine as a store, for the databases that are engines rather than stores:
/// they hand out their stored text as versions and save from a version with a
/// compare-and-set, which is all the contract needs.
#[derive(Debug)]
struct EngineStore(Arc<dyn SessionEngine>);

impl SessionStore for EngineStore {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    async fn load(&self, id: &str) -> Result<Option<Record>> {
        Ok(self.0.load_session(id).await?.map(|loaded| {
            match loaded.version.as_ref().and_then(Version::as_stored) {
                // Decoded again by the core, which also tells a fallback key.
                Some(text) => Record::Text(text.to_owned()),
                None => Record::Data {
                    data: loaded.data,
                    version: loaded.version.unwrap_or(Version::counter(0)),
                },
            }
        }))
    }

    async fn insert(
        &self,
        id: &str,
        record: &Payload<'_>,
        expires: OffsetDateTime,
    ) -> Result<bool> {
        self.0.insert(id, record.data(), expires).await
    }

    async fn update(
        &self,
        id: &str,
        record: &Payload<'_>,
        expires: OffsetDateTime,
        expected: Option<&Version>,
    ) -> Result<Update> {
        let saved = match expected {
            None => self
                .0
                .save_shared(id, &record.shared(), expires)
                .await
                .map(|_| Update::Stored(None)),
            // With no changes to merge, a raced save only writes back what is stored: the
            // conflict is reported and the core merges.
            Some(base) => self
                .0
                .save_changes_from(id, base, &record.shared(), &Changes::default(), expires)
                .await
                .map(|saved| match saved.merged {
                    None => Update::Stored(saved.version),
                    Some(_) => Update::Conflict,
                }),
        };
        match saved {
            Err(Error::SessionInterrupted) => Ok(Update::Gone),
            other => other,
        }
    }

    async fn delete(&self, id: &str) -> Result<()> {
        self.0.delete(id).await
    }

    async fn clear_expired(&self, limit: usize) -> Result<u64> {
        self.0.clear_expired_batch(limit).await
    }

    async fn migrate(&self) -> Result<()> {
        self.0.migrate().await
    }

    async fn count_expired(&self) -> Result<Option<u64>> {
        self.0.count_expired().await
    }
}
