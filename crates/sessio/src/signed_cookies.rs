//! The `signed-cookies` engine: all session data in the cookie, signed with HMAC-SHA256 in
//! Django's wire format, so a Django app with the same secret key reads it.
//!
//! The client can read the data (it is signed, not encrypted), the cookie carries every
//! byte of it on every request (browsers drop cookies past about 4 KB), and a copied cookie
//! stays valid until it expires: logout cannot revoke it on the server. In exchange there is
//! no store to run, no lookup per request and nothing to clean up.

use std::sync::Arc;

use time::OffsetDateTime;

use crate::client::{ClientEngine, CookieCodec, Opened};
use crate::clock::Clock;
use crate::config::Config;
use crate::engine::SessionData;
use crate::error::Result;
use crate::signing::Signer;

/// Session data in a signed cookie (Django's `signed_cookies` backend): the codec.
#[derive(Debug, Clone)]
pub struct SignedCookies {
    signer: Signer,
    max_age: i64,
    clock: Arc<dyn Clock>,
}

/// The `signed-cookies` engine.
pub type SignedCookieEngine = ClientEngine<SignedCookies>;

impl SignedCookies {
    /// The codec for this configuration's keys, salt, cookie age and clock.
    pub fn new(config: &Config) -> Self {
        Self {
            signer: config.signer(config.signed_cookies_salt()),
            max_age: config.cookie_age(),
            clock: config.clock().clone(),
        }
    }

    /// The signer (its memory of values it signed or verified, for tests).
    pub fn signer(&self) -> &Signer {
        &self.signer
    }
}

impl ClientEngine<SignedCookies> {
    /// The engine for this configuration's keys, salt, cookie age and clock.
    pub fn new(config: &Config) -> Self {
        Self::from_codec(SignedCookies::new(config))
    }
}

impl CookieCodec for SignedCookies {
    fn name(&self) -> &'static str {
        "signed-cookies"
    }

    fn open(&self, value: &str) -> Option<Opened> {
        let now = self.clock.now();
        let now = now.unix_timestamp() as f64 + now.nanosecond() as f64 / 1e9;
        // Django: any failure (signature, expiry, base64, zlib, JSON) is an empty session.
        match self.signer.loads_shared(value, Some((now, self.max_age))) {
            Ok(unsigned) => Some(Opened {
                data: unsigned.data,
                // Signed with a fallback key: re-sign it with the current one.
                stale_key: unsigned.key_index > 0,
            }),
            Err(e) => {
                tracing::debug!(error = %e, "signed session cookie refused");
                None
            }
        }
    }

    fn seal(&self, data: &Arc<SessionData>, _expires: OffsetDateTime) -> Result<String> {
        // Django's format carries the signing time, not the expiry: the cookie age is
        // counted from it. The signer remembers the value with this data: the visitor's
        // next request skips verifying it.
        Ok(self
            .signer
            .dumps_shared(data, self.clock.now().unix_timestamp(), true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::engine::SessionEngine;

    const SECRET: &str = "a-test-secret-key-that-is-long-enough-for-the-checks-0123";

    fn engine(clock: &ManualClock, secret: &str, fallbacks: &[&str]) -> SignedCookieEngine {
        let config = Config::builder()
            .secret_key(secret)
            .fallback_keys(fallbacks.iter().copied())
            .engine(crate::EngineKind::SignedCookies)
            .clock(clock.clone())
            .build()
            .unwrap();
        SignedCookieEngine::new(&config)
    }

    fn data() -> SessionData {
        crate::value::object_from_str(r#"{"user":"alice","n":1}"#).unwrap()
    }

    #[tokio::test]
    async fn a_remembered_cookie_still_expires() {
        let clock = ManualClock::at_unix(1_700_000_000);
        let e = engine(&clock, SECRET, &[]);
        let value = e.create(&data(), OffsetDateTime::UNIX_EPOCH).await.unwrap();
        assert!(e.codec().signer.remembers(&value), "signed values are kept");
        assert_eq!(*e.load_session(&value).await.unwrap().unwrap().data, data());
        clock.advance(time::Duration::seconds(e.codec().max_age + 1));
        assert!(e.load_session(&value).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn altered_values_never_hit() {
        let clock = ManualClock::at_unix(1_700_000_000);
        let e = engine(&clock, SECRET, &[]);
        let value = e.create(&data(), OffsetDateTime::UNIX_EPOCH).await.unwrap();
        let mut bytes = value.clone().into_bytes();
        for i in 0..bytes.len() {
            let orig = bytes[i];
            bytes[i] = if orig == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(bytes.clone()).unwrap();
            assert!(
                e.load_session(&altered).await.unwrap().is_none(),
                "byte {i}"
            );
            bytes[i] = orig;
        }
        assert!(e.load_session(&value).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn a_fallback_key_is_remembered_as_stale() {
        let clock = ManualClock::at_unix(1_700_000_000);
        let old_secret = "an-old-secret-key-that-is-long-enough-for-the-checks-987";
        let old = engine(&clock, old_secret, &[]);
        let value = old
            .create(&data(), OffsetDateTime::UNIX_EPOCH)
            .await
            .unwrap();
        let new = engine(&clock, SECRET, &[old_secret]);
        for _ in 0..2 {
            // Verified once, then served from memory: stale both times.
            let loaded = new.load_session(&value).await.unwrap().unwrap();
            assert!(loaded.stale_key);
        }
        assert!(new.codec().signer.remembers(&value));
    }
}
