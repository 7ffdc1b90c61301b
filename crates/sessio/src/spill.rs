//! Cookie overflow with spill: a cookie engine that moves a session too big for a cookie
//! into a server engine, leaving only its id in the cookie, and moves it back into the
//! cookie when it shrinks.
//!
//! Small sessions cost no store round trip; a large one costs what a server session costs,
//! instead of a cookie the browser would drop. Chosen with `cookie_overflow = spill` and
//! `spill_engine = db|cache|file` on a cookie engine.
//!
//! The cookie value tells where the session is: a server id is exactly 32 characters of
//! `[a-z0-9]`, which no signed or encrypted value can be.

use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::engine::{Changes, LoadedSession, SessionData, SessionEngine};
use crate::error::Result;

/// A cookie engine with a server engine for sessions that outgrow the cookie.
#[derive(Debug, Clone)]
pub struct SpillEngine {
    cookie: Arc<dyn SessionEngine>,
    server: Arc<dyn SessionEngine>,
    cookie_name_len: usize,
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
        }
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
            self.server.load_session(key).await
        } else {
            self.cookie.load_session(key).await
        }
    }

    async fn create(&self, data: &SessionData, expires: OffsetDateTime) -> Result<String> {
        let value = self.cookie.create(data, expires).await?;
        if self.fits(&value) {
            return Ok(value);
        }
        self.server.create(data, expires).await
    }

    async fn save(&self, key: &str, data: &SessionData, expires: OffsetDateTime) -> Result<String> {
        let value = self.cookie.save(key, data, expires).await?;
        let spilled = Self::is_server_key(key);
        match (self.fits(&value), spilled) {
            (true, false) => Ok(value),
            // Small again: back into the cookie, and the server copy goes (after the new
            // value exists, so a failure loses nothing).
            (true, true) => {
                self.server.delete(key).await?;
                Ok(value)
            }
            (false, true) => self.server.save(key, data, expires).await,
            (false, false) => self.server.create(data, expires).await,
        }
    }

    async fn save_changes(
        &self,
        key: &str,
        changes: &Changes,
        expires: OffsetDateTime,
    ) -> Result<(String, SessionData)> {
        // Only spilled sessions merge (a cookie session has no shared copy to merge into).
        let (key, data) = self.server.save_changes(key, changes, expires).await?;
        let value = self.cookie.create(&data, expires).await?;
        if self.fits(&value) {
            self.server.delete(&key).await?;
            return Ok((value, data));
        }
        Ok((key, data))
    }

    async fn delete(&self, key: &str) -> Result<()> {
        if Self::is_server_key(key) {
            self.server.delete(key).await
        } else {
            Ok(())
        }
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        if Self::is_server_key(key) {
            self.server.exists(key).await
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
