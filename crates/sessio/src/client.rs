//! Sessions kept in the cookie: a codec that seals a session into a cookie value and opens
//! it again, synchronously, with nothing stored on the server.
//!
//! [`CookieCodec`] is the whole contract of a cookie engine (the `signed_cookies` and
//! `encrypted_cookies` modules implement it); [`ClientEngine`] makes any codec the engine
//! sessions talk to. There is nothing to delete, migrate or clear: expired cookies live in
//! browsers.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::engine::{LoadedSession, SessionData, SessionEngine};
use crate::error::Result;

/// A session opened from a cookie value.
#[derive(Debug, Clone, PartialEq)]
pub struct Opened {
    /// The session's data (shared with the codec's memory of values it opened or sealed).
    pub data: Arc<SessionData>,
    /// True when an old (fallback) secret key opened it: it is sealed again under the
    /// current key at the end of the request.
    pub stale_key: bool,
}

/// Seals sessions into cookie values and opens them, without waiting.
pub trait CookieCodec: Send + Sync + fmt::Debug + 'static {
    /// A short name for logs and errors (`signed-cookies`).
    fn name(&self) -> &'static str;

    /// The live session a cookie value holds. Anything wrong with the value (forged,
    /// expired, sealed for another cookie or key, malformed) is `None`: Django reads it as
    /// an empty session, never as an error.
    fn open(&self, value: &str) -> Option<Opened>;

    /// The cookie value of `data`, to expire at `expires`.
    fn seal(&self, data: &Arc<SessionData>, expires: OffsetDateTime) -> Result<String>;
}

/// Any [`CookieCodec`], as the engine sessions use.
#[derive(Debug, Clone)]
pub struct ClientEngine<C>(C);

impl<C: CookieCodec> ClientEngine<C> {
    /// The engine of `codec`.
    pub fn from_codec(codec: C) -> Self {
        Self(codec)
    }

    /// The codec.
    pub fn codec(&self) -> &C {
        &self.0
    }

    fn open(&self, value: &str) -> Option<LoadedSession> {
        self.0.open(value).map(|opened| LoadedSession {
            data: opened.data,
            stale_key: opened.stale_key,
            version: None,
        })
    }
}

#[async_trait]
impl<C: CookieCodec> SessionEngine for ClientEngine<C> {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn is_client_side(&self) -> bool {
        true
    }

    async fn load(&self, key: &str) -> Result<Option<SessionData>> {
        Ok(self.open(key).map(|l| Arc::unwrap_or_clone(l.data)))
    }

    fn load_session_now(&self, key: &str) -> Option<Result<Option<LoadedSession>>> {
        Some(Ok(self.open(key)))
    }

    async fn load_session(&self, key: &str) -> Result<Option<LoadedSession>> {
        Ok(self.open(key))
    }

    async fn create(&self, data: &SessionData, expires: OffsetDateTime) -> Result<String> {
        self.0.seal(&Arc::new(data.clone()), expires)
    }

    async fn save(
        &self,
        _key: &str,
        data: &SessionData,
        expires: OffsetDateTime,
    ) -> Result<String> {
        self.0.seal(&Arc::new(data.clone()), expires)
    }

    async fn save_shared(
        &self,
        _key: &str,
        data: &Arc<SessionData>,
        expires: OffsetDateTime,
    ) -> Result<String> {
        self.0.seal(data, expires)
    }

    async fn delete(&self, _key: &str) -> Result<()> {
        Ok(())
    }

    async fn exists(&self, _key: &str) -> Result<bool> {
        Ok(false)
    }

    async fn clear_expired_batch(&self, _limit: usize) -> Result<u64> {
        // Expired cookies live in browsers; there is nothing on the server to delete.
        Ok(0)
    }
}
