//! What the core does for every server store, once: id creation and the insert loop,
//! Django's encoding of `session_data`, and merging concurrent writes.
//!
//! [`ServerEngine`] wraps any [`SessionStore`] into the engine the middleware and
//! [`Session`](crate::Session) talk to.
//!
//! # Merging
//!
//! A request that read version `v` of a session saves with `update(expected = v)`. When
//! another request wrote in between, the store answers [`Update::Conflict`]; the engine
//! then reads the record again, applies this request's changes (the keys it wrote or
//! removed) to what is stored, and tries again, at most [`MAX_MERGES`] times. Each retry
//! follows a write that succeeded, so the loop only runs long under a burst of writers to
//! one session; past the bound the save fails with [`Error::Store`] (503) rather than
//! overwrite anything.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use sessio_django::codec::StoreCodec;
use time::OffsetDateTime;

use crate::clock::Clock;
use crate::config::Config;
use crate::engine::{Changes, LoadedSession, Saved, SessionData, SessionEngine, Version};
use crate::error::{Error, LogId, Result};
use crate::store::{Payload, Record, SessionStore, Update};

/// How many times a save reads, merges and tries again after a conflict.
pub const MAX_MERGES: usize = 32;

/// How many fresh ids a new session tries before giving up (a store that answers "taken"
/// to every one of them is broken or full).
const MAX_NEW_IDS: u32 = 100;

/// Any [`SessionStore`], as the engine sessions use.
///
/// ```no_run
/// # use sessio::store::SessionStore;
/// # async fn run(my_store: impl SessionStore) -> sessio::Result<()> {
/// use std::sync::Arc;
/// use sessio::{server::ServerEngine, Config, SessionManager};
///
/// let config = Config::from_env()?;
/// let engine = Arc::new(ServerEngine::new(my_store, &config));
/// let sessions = SessionManager::new(config, engine);
/// # Ok(()) }
/// ```
pub struct ServerEngine<S> {
    store: S,
    codec: StoreCodec,
    clock: Arc<dyn Clock>,
    /// Whether a record only a fallback key verifies is re-issued under the current key.
    reissue_old_keys: bool,
}

impl<S: SessionStore> fmt::Debug for ServerEngine<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerEngine")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl<S: SessionStore> ServerEngine<S> {
    /// `store`, with the keys, salt and clock of `config`.
    pub fn new(store: S, config: &Config) -> Self {
        Self::with_codec(store, config.store_codec(), config.clock().clone())
    }

    /// `store`, with its own codec (a store whose values only sessio reads may skip
    /// compression) and clock.
    pub fn with_codec(store: S, codec: StoreCodec, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            codec,
            clock,
            reissue_old_keys: true,
        }
    }

    /// Leaves a record that only a fallback key verifies as it is until the session
    /// changes, as Django's database backend does, instead of re-issuing it under the
    /// current key at the end of the request (the default).
    pub fn keeping_old_keys(mut self) -> Self {
        self.reissue_old_keys = false;
        self
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    fn now(&self) -> i64 {
        self.clock.now().unix_timestamp()
    }

    /// `store.update`, except that a session saved as already expired ends now: its
    /// record is deleted (every store alike, whatever it does with expiry dates).
    async fn store_update(
        &self,
        id: &str,
        payload: &Payload<'_>,
        expires: OffsetDateTime,
        expected: Option<&Version>,
    ) -> Result<Update> {
        if expires <= self.clock.now() {
            self.store.delete(id).await?;
            return Ok(Update::Stored(None));
        }
        self.store.update(id, payload, expires, expected).await
    }

    fn decode(&self, id: &str, record: Record) -> LoadedSession {
        match record {
            Record::Text(text) => {
                let decoded = self.codec.decode_or_empty(Some(&text), &LogId(id));
                LoadedSession {
                    data: decoded.data,
                    stale_key: decoded.stale_key && self.reissue_old_keys,
                    version: Some(Version::stored(text)),
                }
            }
            Record::Data { data, version } => LoadedSession {
                data,
                stale_key: false,
                version: Some(version),
            },
        }
    }

    /// Reads `id`, applies `changes` and writes it back if nothing wrote in between,
    /// until it succeeds: the merged data and its version.
    async fn merge(
        &self,
        id: &str,
        changes: &Changes,
        expires: OffsetDateTime,
    ) -> Result<(Arc<SessionData>, Option<Version>)> {
        for _ in 0..MAX_MERGES {
            let Some(record) = self.store.load(id).await? else {
                // A concurrent logout deleted it, and it stays deleted.
                return Err(Error::SessionInterrupted);
            };
            let loaded = self.decode(id, record);
            let mut data = Arc::unwrap_or_clone(loaded.data);
            changes.apply(&mut data);
            let data = Arc::new(data);
            let payload = Payload::new(&data, &self.codec, self.now());
            match self
                .store_update(id, &payload, expires, loaded.version.as_ref())
                .await?
            {
                Update::Stored(version) => return Ok((data, version)),
                Update::Gone => return Err(Error::SessionInterrupted),
                Update::Conflict => continue,
            }
        }
        Err(Error::Store {
            engine: self.store.name(),
            message: format!("{MAX_MERGES} concurrent writes to one session came first; try again"),
            source: None,
        })
    }

    async fn update(
        &self,
        id: &str,
        payload: &Payload<'_>,
        expires: OffsetDateTime,
    ) -> Result<String> {
        match self.store_update(id, payload, expires, None).await? {
            Update::Stored(_) => Ok(id.to_owned()),
            // Without an expected version a store never conflicts; either way nothing was
            // written, and a vanished session is never brought back.
            Update::Gone | Update::Conflict => Err(Error::SessionInterrupted),
        }
    }
}

#[async_trait]
impl<S: SessionStore> SessionEngine for ServerEngine<S> {
    fn name(&self) -> &'static str {
        self.store.name()
    }

    fn is_client_side(&self) -> bool {
        false
    }

    async fn load(&self, key: &str) -> Result<Option<SessionData>> {
        Ok(self
            .load_session(key)
            .await?
            .map(|loaded| Arc::unwrap_or_clone(loaded.data)))
    }

    fn load_session_now(&self, key: &str) -> Option<Result<Option<LoadedSession>>> {
        let local = self.store.local()?;
        Some(Ok(local.load_now(key).map(|r| self.decode(key, r))))
    }

    async fn load_session(&self, key: &str) -> Result<Option<LoadedSession>> {
        Ok(self
            .store
            .load(key)
            .await?
            .map(|record| self.decode(key, record)))
    }

    async fn create(&self, data: &SessionData, expires: OffsetDateTime) -> Result<String> {
        let payload = Payload::borrowed(data, &self.codec, self.now());
        for _ in 0..MAX_NEW_IDS {
            let id = crate::key::new_session_key()?;
            if self.store.insert(&id, &payload, expires).await? {
                return Ok(id);
            }
        }
        Err(Error::KeyCreation {
            attempts: MAX_NEW_IDS,
        })
    }

    async fn insert(&self, key: &str, data: &SessionData, expires: OffsetDateTime) -> Result<bool> {
        let payload = Payload::borrowed(data, &self.codec, self.now());
        self.store.insert(key, &payload, expires).await
    }

    async fn save(&self, key: &str, data: &SessionData, expires: OffsetDateTime) -> Result<String> {
        let payload = Payload::borrowed(data, &self.codec, self.now());
        self.update(key, &payload, expires).await
    }

    async fn save_shared(
        &self,
        key: &str,
        data: &Arc<SessionData>,
        expires: OffsetDateTime,
    ) -> Result<String> {
        let payload = Payload::new(data, &self.codec, self.now());
        self.update(key, &payload, expires).await
    }

    async fn save_changes(
        &self,
        key: &str,
        changes: &Changes,
        expires: OffsetDateTime,
    ) -> Result<(String, SessionData)> {
        let (data, _) = self.merge(key, changes, expires).await?;
        Ok((key.to_owned(), Arc::unwrap_or_clone(data)))
    }

    async fn save_changes_from(
        &self,
        key: &str,
        base: &Version,
        data: &Arc<SessionData>,
        changes: &Changes,
        expires: OffsetDateTime,
    ) -> Result<Saved> {
        let payload = Payload::new(data, &self.codec, self.now());
        match self
            .store_update(key, &payload, expires, Some(base))
            .await?
        {
            Update::Stored(version) => Ok(Saved {
                cookie: key.to_owned(),
                merged: None,
                version,
            }),
            Update::Gone => Err(Error::SessionInterrupted),
            Update::Conflict => {
                let (merged, version) = self.merge(key, changes, expires).await?;
                Ok(Saved {
                    cookie: key.to_owned(),
                    merged: Some(Arc::unwrap_or_clone(merged)),
                    version,
                })
            }
        }
    }

    fn save_changes_now(
        &self,
        key: &str,
        base: &Version,
        read: &mut Option<Arc<SessionData>>,
        changes: &Changes,
        expires: OffsetDateTime,
    ) -> Option<Saved> {
        let version = self
            .store
            .local()?
            .apply_now(key, base, read, changes, expires)?;
        Some(Saved {
            cookie: key.to_owned(),
            merged: None,
            version: Some(version),
        })
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.store.delete(key).await
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        self.store.exists(key).await
    }

    async fn count_expired(&self) -> Result<Option<u64>> {
        self.store.count_expired().await
    }

    async fn clear_expired_batch(&self, limit: usize) -> Result<u64> {
        self.store.clear_expired(limit).await
    }

    async fn migrate(&self) -> Result<()> {
        self.store.migrate().await
    }
}
