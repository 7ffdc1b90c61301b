//! Cookie overflow with spill: a cookie engine that moves a session too big for a cookie
//! into a server engine, leaving only its id in the cookie, and moves it back into the
//! cookie when it shrinks.
//!
//! Small sessions cost no store round trip; a large one costs what a server session costs,
//! instead of a cookie the browser would drop. Chosen with `cookie_overflow = spill` and
//! `spill_engine = db|cache|file` on a cookie engine.
//!
//! The cookie value tells where the session is: a server id is exactly 32 characters of
//! `[a-z0-9]`, which no signed or encrypted value can be. With `hash_ids_at_rest`, the
//! server engine holds only the keyed hash of a spilled session's id, as it does for its
//! own sessions.

use std::borrow::Cow;
use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::engine::{Changes, LoadedSession, SessionData, SessionEngine};
use crate::error::{Error, Result};
use crate::users::IdHasher;

/// A cookie engine with a server engine for sessions that outgrow the cookie.
#[derive(Debug, Clone)]
pub struct SpillEngine {
    cookie: Arc<dyn SessionEngine>,
    server: Arc<dyn SessionEngine>,
    cookie_name_len: usize,
    ids: Option<IdHasher>,
    // For the expiry of a session moved from a fallback key's hash to the current one.
    clock: Arc<dyn crate::clock::Clock>,
    cookie_age: i64,
}

impl SpillEngine {
    /// Keeps sessions in `cookie` while `name=value` fits in 4096 bytes, in `server` when
    /// not.
    pub fn new(
        cookie: Arc<dyn SessionEngine>,
        server: Arc<dyn SessionEngine>,
        cookie_name: &str,
    ) -> Self {
        Self {
            cookie,
            server,
            cookie_name_len: cookie_name.len(),
            ids: None,
            clock: Arc::new(crate::clock::SystemClock),
            cookie_age: crate::config::DEFAULT_COOKIE_AGE,
        }
    }

    /// Stores spilled sessions under the keyed hash of their id (`hash_ids_at_rest`).
    pub(crate) fn hashing_ids(mut self, config: &crate::Config) -> Self {
        self.ids = IdHasher::from_config(config);
        self.clock = config.clock().clone();
        self.cookie_age = config.cookie_age();
        self
    }

    /// The server's key for spilled session `key`.
    fn stored<'k>(&self, key: &'k str) -> Cow<'k, str> {
        match &self.ids {
            Some(ids) => Cow::Owned(ids.stored_with(0, key)),
            None => Cow::Borrowed(key),
        }
    }

    /// Stores `data` in the server under a new id; returns the id (the cookie value).
    async fn spill_new(&self, data: &SessionData, expires: OffsetDateTime) -> Result<String> {
        if self.ids.is_none() {
            return self.server.create(data, expires).await;
        }
        for _ in 0..100 {
            let raw = crate::key::new_session_key()?;
            if self
                .server
                .insert(&self.stored(&raw), data, expires)
                .await?
            {
                return Ok(raw);
            }
        }
        Err(Error::KeyCreation { attempts: 100 })
    }

    fn fits(&self, value: &str) -> bool {
        self.cookie_name_len + value.len() <= crate::cookie::MAX_COOKIE_BYTES
    }

    fn is_server_key(key: &str) -> bool {
        key.len() == crate::key::KEY_LEN && crate::key::is_well_formed(key)
    }
}

#[async_trait]
impl SessionEngine for SpillEngine {
    fn name(&self) -> &'static str {
        self.cookie.name()
    }

    fn is_client_side(&self) -> bool {
        true
    }

    fn is_client_side_key(&self, key: &str) -> bool {
        !Self::is_server_key(key)
    }

    async fn load(&self, key: &str) -> Result<Option<SessionData>> {
        Ok(self
            .load_session(key)
            .await?
            .map(|l| std::sync::Arc::unwrap_or_clone(l.data)))
    }

    async fn load_session(&self, key: &str) -> Result<Option<LoadedSession>> {
        if Self::is_server_key(key) {
            let found = self.server.load_session(&self.stored(key)).await?;
            if found.is_some() {
                return Ok(found);
            }
            // Hashed under a fallback key: found, and moved to the current key.
            let Some(ids) = &self.ids else {
                return Ok(None);
            };
            for i in 1..=ids.fallback_count() {
                let old = ids.stored_with(i, key);
                if let Some(found) = self.server.load_session(&old).await? {
                    let expires =
                        crate::expiry::date(Some(&found.data), self.clock.now(), self.cookie_age);
                    if self
                        .server
                        .insert(&self.stored(key), &found.data, expires)
                        .await?
                    {
                        self.server.delete(&old).await?;
                    }
                    return Ok(Some(found));
                }
            }
            Ok(None)
        } else {
            self.cookie.load_session(key).await
        }
    }

    async fn create(&self, data: &SessionData, expires: OffsetDateTime) -> Result<String> {
        let value = self.cookie.create(data, expires).await?;
        if self.fits(&value) {
            return Ok(value);
        }
        self.spill_new(data, expires).await
    }

    async fn save(&self, key: &str, data: &SessionData, expires: OffsetDateTime) -> Result<String> {
        let value = self.cookie.save(key, data, expires).await?;
        let spilled = Self::is_server_key(key);
        match (self.fits(&value), spilled) {
            (true, false) => Ok(value),
            // Small again: back into the cookie, and the server copy goes (after the new
            // value exists, so a failure loses nothing).
            (true, true) => {
                self.server.delete(&self.stored(key)).await?;
                Ok(value)
            }
            (false, true) => {
                self.server.save(&self.stored(key), data, expires).await?;
                Ok(key.to_owned())
            }
            (false, false) => self.spill_new(data, expires).await,
        }
    }

    async fn save_changes(
        &self,
        key: &str,
        changes: &Changes,
        expires: OffsetDateTime,
    ) -> Result<(String, SessionData)> {
        // Only spilled sessions merge (a cookie session has no shared copy to merge into).
        let stored = self.stored(key);
        let (_, data) = self.server.save_changes(&stored, changes, expires).await?;
        let value = self.cookie.create(&data, expires).await?;
        if self.fits(&value) {
            self.server.delete(&stored).await?;
            return Ok((value, data));
        }
        Ok((key.to_owned(), data))
    }

    async fn delete(&self, key: &str) -> Result<()> {
        if Self::is_server_key(key) {
            self.server.delete(&self.stored(key)).await
        } else {
            Ok(())
        }
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        if Self::is_server_key(key) {
            self.server.exists(&self.stored(key)).await
        } else {
            Ok(false)
        }
    }

    async fn count_expired(&self) -> Result<Option<u64>> {
        self.server.count_expired().await
    }

    async fn clear_expired_batch(&self, limit: usize) -> Result<u64> {
        self.server.clear_expired_batch(limit).await
    }

    async fn migrate(&self) -> Result<()> {
        self.server.migrate().await
    }
}
