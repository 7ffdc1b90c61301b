//! The `encrypted-cookies` engine: all session data in the cookie, encrypted and
//! authenticated, so the client can neither read nor change it.
//!
//! The cookie value is `base64url(0x01 || nonce || ciphertext)`, sealed with
//! XChaCha20-Poly1305: its 24-byte nonces are drawn at random for every cookie, which is
//! safe at any volume (96-bit AES-GCM nonces are not, past about 2³² cookies per key). The
//! key is derived from the secret key with HKDF-SHA256 for this purpose alone, and the
//! cookie's name is the associated data, so a value moved to another cookie is refused. The
//! plaintext carries the expiry (`exp`), which the server enforces: a copied cookie dies
//! when the session's own expiry passes, not only at the cookie age. Old secret keys (the
//! fallbacks) still decrypt, and a cookie read under one is re-issued under the current key.
//!
//! Like signed cookies, the data travels on every request and browsers drop cookies past
//! about 4 KB; logout cannot revoke a copy before it expires.

use std::sync::Arc;

use crate::Value;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use time::OffsetDateTime;

use crate::client::{ClientEngine, CookieCodec, Opened};
use crate::clock::Clock;
use crate::config::Config;
use crate::engine::SessionData;
use crate::error::{Error, Result};

const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
/// Longer values are refused before base64 decoding: no cookie can be this large.
const MAX_VALUE_LEN: usize = 16 * 1024;
const HKDF_INFO: &[u8] = b"sessio encrypted-cookies v1";

/// Session data in an encrypted cookie: the codec.
#[derive(Clone)]
pub struct EncryptedCookies {
    // Index 0 encrypts; all decrypt, in order (current key, then the fallbacks).
    ciphers: Vec<XChaCha20Poly1305>,
    cookie_name: String,
    clock: std::sync::Arc<dyn Clock>,
    // Values sealed or opened here (with their expiry as the timestamp): a returning
    // cookie skips the decryption and the JSON.
    opened: std::sync::Arc<sessio_django::verified::Verified>,
}

/// The `encrypted-cookies` engine.
pub type EncryptedCookieEngine = ClientEngine<EncryptedCookies>;

impl ClientEngine<EncryptedCookies> {
    /// The engine for this configuration's keys, cookie name and clock.
    pub fn new(config: &Config) -> Self {
        Self::from_codec(EncryptedCookies::new(config))
    }
}

impl std::fmt::Debug for EncryptedCookies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptedCookies")
            .field("keys", &self.ciphers.len())
            .finish_non_exhaustive()
    }
}

impl EncryptedCookies {
    /// The codec for this configuration's keys, cookie name and clock.
    pub fn new(config: &Config) -> Self {
        let ciphers = std::iter::once(config.secret_key())
            .chain(config.fallback_keys())
            .map(|k| XChaCha20Poly1305::new(&k.derive(HKDF_INFO).into()))
            .collect();
        Self {
            ciphers,
            cookie_name: config.cookie_name().to_owned(),
            clock: config.clock().clone(),
            opened: Default::default(),
        }
    }

    /// Seals `data`, and remembers the value with this very data (no copy).
    fn seal_value(&self, data: &Arc<SessionData>, expires: OffsetDateTime) -> Result<String> {
        // `{"exp": …, "d": {…}}`, written as Python would (exact integers, NaN).
        let mut plaintext = String::with_capacity(64);
        plaintext.push_str("{\"exp\":");
        plaintext.push_str(itoa::Buffer::new().format(expires.unix_timestamp()));
        plaintext.push_str(",\"d\":");
        sessio_django::value::write_object(data, &mut plaintext);
        plaintext.push('}');
        let plaintext = plaintext.into_bytes();
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| Error::Io {
            context: "the operating system's random number generator failed".into(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let ciphertext = self.ciphers[0]
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &plaintext,
                    aad: self.cookie_name.as_bytes(),
                },
            )
            .map_err(|_| Error::Config("encryption failed".into()))?;
        let mut raw = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        raw.push(VERSION);
        raw.extend_from_slice(&nonce);
        raw.extend_from_slice(&ciphertext);
        let value = URL_SAFE_NO_PAD.encode(raw);
        self.opened.put(
            &value,
            sessio_django::verified::Hit {
                data: data.clone(),
                timestamp: expires.unix_timestamp(),
                key_index: 0,
            },
        );
        Ok(value)
    }

    /// Decrypts and checks a cookie value; `None` for anything that is not a live session
    /// sealed by one of our keys for this cookie name.
    fn open_value(&self, value: &str) -> Option<Opened> {
        if value.len() > MAX_VALUE_LEN {
            return None;
        }
        if let Some(hit) = self.opened.get(value) {
            // Opened before: only the expiry is checked again.
            if self.clock.now().unix_timestamp() >= hit.timestamp {
                return None;
            }
            return Some(Opened {
                data: hit.data,
                stale_key: hit.key_index > 0,
            });
        }
        let raw = URL_SAFE_NO_PAD.decode(value).ok()?;
        if raw.len() < 1 + NONCE_LEN + 16 || raw[0] != VERSION {
            return None;
        }
        let nonce = XNonce::from_slice(&raw[1..1 + NONCE_LEN]);
        let sealed = &raw[1 + NONCE_LEN..];
        let (index, plaintext) = self.ciphers.iter().enumerate().find_map(|(i, c)| {
            let payload = Payload {
                msg: sealed,
                aad: self.cookie_name.as_bytes(),
            };
            c.decrypt(nonce, payload).ok().map(|p| (i, p))
        })?;
        let Ok(Value::Object(mut payload)) = sessio_django::value::from_slice(&plaintext) else {
            return None;
        };
        let exp = payload.get("exp")?.as_i64()?;
        if self.clock.now().unix_timestamp() >= exp {
            return None;
        }
        let Some(Value::Object(data)) = payload.remove("d") else {
            return None;
        };
        let data = std::sync::Arc::new(data);
        self.opened.put(
            value,
            sessio_django::verified::Hit {
                data: data.clone(),
                timestamp: exp,
                key_index: index,
            },
        );
        Some(Opened {
            data,
            stale_key: index > 0,
        })
    }
}

impl CookieCodec for EncryptedCookies {
    fn name(&self) -> &'static str {
        "encrypted-cookies"
    }

    fn open(&self, value: &str) -> Option<Opened> {
        self.open_value(value)
    }

    fn seal(&self, data: &Arc<SessionData>, expires: OffsetDateTime) -> Result<String> {
        self.seal_value(data, expires)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use time::Duration;

    const KEY: &str = "encrypted-cookie-test-key-0123456789-0123456789-0123456789";
    const OLD: &str = "encrypted-cookie-old-key-0123456789-0123456789-0123456789";

    fn engine(clock: &ManualClock, key: &str, fallbacks: &[&str], name: &str) -> EncryptedCookies {
        let config = Config::builder()
            .secret_key(key)
            .fallback_keys(fallbacks.iter().copied())
            .cookie_name(name)
            .clock(clock.clone())
            .build()
            .unwrap();
        EncryptedCookies::new(&config)
    }

    fn data() -> SessionData {
        sessio_django::value::object_from_str(r#"{"user_id":42,"secret":"hunter2"}"#).unwrap()
    }

    impl EncryptedCookies {
        fn seal_data(&self, data: &SessionData, expires: OffsetDateTime) -> Result<String> {
            self.seal(&Arc::new(data.clone()), expires)
        }
    }

    #[test]
    fn round_trip_and_confidentiality() {
        let clock = ManualClock::at_unix(1_700_000_000);
        let e = engine(&clock, KEY, &[], "sessionid");
        let exp = clock.now() + Duration::hours(1);
        let v = e.seal_data(&data(), exp).unwrap();
        assert!(!v.contains("hunter2"));
        let raw = URL_SAFE_NO_PAD.decode(&v).unwrap();
        assert!(!String::from_utf8_lossy(&raw).contains("hunter2"));
        assert_eq!(*e.open_value(&v).unwrap().data, data());
        // Random nonces: the same data seals differently every time.
        assert_ne!(v, e.seal_data(&data(), exp).unwrap());
    }

    #[test]
    fn the_sealed_payload_keeps_its_layout() {
        // Values sealed by earlier versions (from a map, `exp` first) must still open, and
        // new ones must open in them: the plaintext is `{"exp":…,"d":{…}}`.
        let clock = ManualClock::at_unix(1_700_000_000);
        let e = engine(&clock, KEY, &[], "sessionid");
        let exp = clock.now() + Duration::hours(1);
        let shared = std::sync::Arc::new(data());
        for v in [
            e.seal_data(&data(), exp).unwrap(),
            e.seal(&shared, exp).unwrap(),
        ] {
            let raw = URL_SAFE_NO_PAD.decode(&v).unwrap();
            let plain = e.ciphers[0]
                .decrypt(
                    XNonce::from_slice(&raw[1..1 + NONCE_LEN]),
                    Payload {
                        msg: &raw[1 + NONCE_LEN..],
                        aad: b"sessionid",
                    },
                )
                .unwrap();
            let expected = format!(
                r#"{{"exp":{},"d":{}}}"#,
                exp.unix_timestamp(),
                sessio_django::value::object_to_string(&data())
            );
            assert_eq!(String::from_utf8(plain).unwrap(), expected);
        }
    }

    #[test]
    fn every_flipped_byte_is_rejected() {
        let clock = ManualClock::at_unix(1_700_000_000);
        let e = engine(&clock, KEY, &[], "sessionid");
        let v = e
            .seal_data(&data(), clock.now() + Duration::hours(1))
            .unwrap();
        let raw = URL_SAFE_NO_PAD.decode(&v).unwrap();
        for i in 0..raw.len() {
            let mut bad = raw.clone();
            bad[i] ^= 0x01;
            assert!(
                e.open_value(&URL_SAFE_NO_PAD.encode(&bad)).is_none(),
                "byte {i}"
            );
        }
        assert!(e.open_value("").is_none());
        assert!(e.open_value("!!!").is_none());
        assert!(e.open_value(&"A".repeat(MAX_VALUE_LEN + 1)).is_none());
    }

    #[test]
    fn other_cookie_name_wrong_key_and_expiry_are_rejected() {
        let clock = ManualClock::at_unix(1_700_000_000);
        let e = engine(&clock, KEY, &[], "sessionid");
        let v = e
            .seal_data(&data(), clock.now() + Duration::seconds(10))
            .unwrap();
        assert!(engine(&clock, KEY, &[], "othercookie")
            .open_value(&v)
            .is_none());
        assert!(engine(&clock, OLD, &[], "sessionid")
            .open_value(&v)
            .is_none());
        clock.advance(Duration::seconds(9));
        assert!(e.open_value(&v).is_some());
        clock.advance(Duration::seconds(1));
        assert!(e.open_value(&v).is_none(), "expired inside the payload");
    }

    #[test]
    fn fallback_keys_decrypt_and_ask_for_reissue() {
        let clock = ManualClock::at_unix(1_700_000_000);
        let old = engine(&clock, OLD, &[], "sessionid");
        let v = old
            .seal_data(&data(), clock.now() + Duration::hours(1))
            .unwrap();
        let rotated = engine(&clock, KEY, &[OLD], "sessionid");
        let loaded = rotated.open_value(&v).unwrap();
        assert!(loaded.stale_key);
        let fresh = rotated
            .seal(&loaded.data, clock.now() + Duration::hours(1))
            .unwrap();
        assert!(!rotated.open_value(&fresh).unwrap().stale_key);
        assert!(old.open_value(&fresh).is_none());
    }
}
