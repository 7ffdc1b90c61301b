//! The `signed-cookies` engine: all session data in the cookie, signed with HMAC-SHA256 in
//! Django's wire format, so a Django app with the same secret key reads it.
//!
//! The client can read the data (it is signed, not encrypted), the cookie carries every
//! byte of it on every request (browsers drop cookies past about 4 KB), and a copied cookie
//! stays valid until it expires: logout cannot revoke it on the server. In exchange there is
//! no store to run, no lookup per request and nothing to clean up.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::clock::Clock;
use crate::config::Config;
use crate::engine::{LoadedSession, SessionData, SessionEngine};
use crate::error::Result;
use crate::signing::Signer;

/// Session data in a signed cookie (Django's `signed_cookies` backend).
#[derive(Debug, Clone)]
pub struct SignedCookieEngine {
    signer: Signer,
    max_age: i64,
    clock: std::sync::Arc<dyn Clock>,
}

impl SignedCookieEngine {
    /// The engine for this configuration's keys, salt, cookie age and clock.
    pub fn new(config: &Config) -> Self {
        Self {
            signer: config.signer(config.signed_cookies_salt()),
            max_age: config.cookie_age(),
            clock: config.clock().clone(),
        }
    }

    fn sign(&self, data: &SessionData) -> String {
        self.signer
            .dumps(data, self.clock.now().unix_timestamp(), true)
    }
}

#[async_trait]
impl SessionEngine for SignedCookieEngine {
    fn name(&self) -> &'static str {
        "signed-cookies"
    }

    fn is_client_side(&self) -> bool {
        true
    }

    async fn load(&self, key: &str) -> Result<Option<SessionData>> {
        Ok(self
            .load_session(key)
            .await?
            .map(|l| std::sync::Arc::unwrap_or_clone(l.data)))
    }

    async fn load_session(&self, key: &str) -> Result<Option<LoadedSession>> {
        let now = self.clock.now();
        let now = now.unix_timestamp() as f64 + now.nanosecond() as f64 / 1e9;
        // Django: any failure (signature, expiry, base64, zlib, JSON) is an empty session.
        match self.signer.loads_at(key, Some((now, self.max_age))) {
            Ok(unsigned) => Ok(Some(LoadedSession {
                data: std::sync::Arc::new(unsigned.data),
                // Signed with a fallback key: re-sign it with the current one.
                stale_key: unsigned.key_index > 0,
                version: None,
            })),
            Err(e) => {
                tracing::debug!(error = %e, "signed session cookie refused");
                Ok(None)
            }
        }
    }

    async fn create(&self, data: &SessionData, _expires: OffsetDateTime) -> Result<String> {
        Ok(self.sign(data))
    }

    async fn save(
        &self,
        _key: &str,
        data: &SessionData,
        _expires: OffsetDateTime,
    ) -> Result<String> {
        Ok(self.sign(data))
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
