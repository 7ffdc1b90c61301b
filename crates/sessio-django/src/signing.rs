//! Django's `django.core.signing`, byte for byte.
//!
//! A signed value is
//! `["."] base64url(payload) ":" base62(unix_seconds) ":" base64url(HMAC-SHA256)`,
//! where the payload is compact JSON, zlib-compressed (and marked with the leading `.`)
//! only when that saves at least two bytes, and the HMAC key is
//! `SHA-256(salt + "signer" + secret)`. Session cookies use the salt
//! [`SIGNED_COOKIES_SALT`]; session data in a database or file uses [`STORE_SALT`].
//!
//! ```
//! use sessio_django::signing::{Signer, SIGNED_COOKIES_SALT};
//!
//! let signer = Signer::new(b"test-secret", &[], SIGNED_COOKIES_SALT);
//! let data = sessio_django::json!({"user_id": 42, "cart": [1, 2]});
//! let value = signer.dumps(data.as_object().unwrap(), 1_700_000_000, true);
//! assert_eq!(
//!     value,
//!     "eyJ1c2VyX2lkIjo0MiwiY2FydCI6WzEsMl19:1r31eq:oxQqvCdpRcSE-SQ0t06vrhPBjfo8zV8Nj1odplkJIcU"
//! );
//! let loaded = signer.loads(&value, Some((1_700_000_000, 1_209_600))).unwrap();
//! assert_eq!(loaded.data["user_id"], 42);
//! ```

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::data::SessionData;
use crate::value;
use crate::verified::{Hit, Verified};
use std::sync::Arc;

/// The salt of Django's `signed_cookies` session engine.
pub const SIGNED_COOKIES_SALT: &str = "django.contrib.sessions.backends.signed_cookies";
/// The salt of `session_data` in Django's db, cached_db and file engines
/// (`"django.contrib.sessions." + SessionStore.__qualname__`).
pub const STORE_SALT: &str = "django.contrib.sessions.SessionStore";

/// The largest signed value accepted, before any base64 decoding (bytes).
pub const MAX_SIGNED_LEN: usize = 1 << 22;
/// The largest payload accepted after decompression (bytes): a zip bomb stops here.
pub const MAX_DECOMPRESSED_LEN: usize = 1 << 24;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Why a signed value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SigningError {
    /// The value has no `:` separators.
    #[error("no \":\" found in value")]
    NoSeparator,
    /// The value is longer than [`MAX_SIGNED_LEN`].
    #[error("signed value is {0} bytes, more than the limit")]
    TooLong(usize),
    /// The signature matches none of the keys: the value was tampered with, or signed with
    /// another secret key or salt.
    #[error("signature does not match (tampered, or signed with another key or salt)")]
    BadSignature,
    /// The signature is valid but the timestamp is older than the maximum age.
    #[error("signature expired: signed {age}s ago, max age {max_age}s")]
    Expired {
        /// Seconds since signing.
        age: i64,
        /// The maximum age that was allowed.
        max_age: i64,
    },
    /// The timestamp is not base62.
    #[error("malformed timestamp")]
    BadTimestamp,
    /// The payload is not valid base64url.
    #[error("malformed base64 payload")]
    BadBase64,
    /// The payload is not a valid zlib stream, or inflates past [`MAX_DECOMPRESSED_LEN`].
    #[error("payload could not be decompressed: {0}")]
    Decompress(String),
    /// The payload is not a JSON object.
    #[error("payload is not a JSON object: {0}")]
    Json(String),
}

/// A value that passed verification.
#[derive(Debug, Clone, PartialEq)]
pub struct Unsigned {
    /// The decoded session dictionary.
    pub data: SessionData,
    /// When it was signed (Unix seconds).
    pub timestamp: i64,
    /// Which key verified it: 0 is the current key, 1.. the fallbacks in order.
    pub key_index: usize,
}

/// A `TimestampSigner` with Django's `dumps`/`loads`, for one salt.
///
/// The HMAC keys are derived once at construction, so signing and verifying cost one
/// HMAC each.
#[derive(Clone)]
pub struct Signer {
    // Index 0 signs; all verify, in order (SECRET_KEY, then SECRET_KEY_FALLBACKS).
    keys: Vec<Hmac<Sha256>>,
    // Values signed or verified before, for engines (see `remembering`).
    verified: Option<Arc<Verified>>,
}

/// A value that passed verification, its data shared with the signer's memory.
#[derive(Debug, Clone, PartialEq)]
pub struct SharedUnsigned {
    /// The decoded session dictionary, shared with the signer's memory.
    pub data: Arc<SessionData>,
    /// When it was signed (Unix seconds).
    pub timestamp: i64,
    /// Which key verified it: 0 is the current key, 1.. the fallbacks in order.
    pub key_index: usize,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// A signer for `salt` that signs with `secret` and also accepts `fallbacks`.
    pub fn new(secret: &[u8], fallbacks: &[&[u8]], salt: &str) -> Self {
        let derive = |secret: &[u8]| {
            let key = Sha256::new()
                .chain_update(salt.as_bytes())
                .chain_update(b"signer")
                .chain_update(secret)
                .finalize();
            Hmac::<Sha256>::new_from_slice(&key).expect("HMAC accepts any key length")
        };
        let mut keys = vec![derive(secret)];
        keys.extend(fallbacks.iter().map(|k| derive(k)));
        Self {
            keys,
            verified: None,
        }
    }

    /// This signer, remembering the values it signs and verifies (a bounded table, see
    /// [`crate::verified`]): verifying one of them again is a lookup instead of an HMAC,
    /// base64, zlib and JSON. A session's next request carries, or its row holds, exactly
    /// the value the last save wrote, so engines hit it on almost every load.
    pub fn remembering(mut self) -> Self {
        self.verified = Some(Default::default());
        self
    }

    /// Whether `value` is in this signer's memory (a later load of it is a lookup).
    pub fn remembers(&self, value: &str) -> bool {
        self.verified
            .as_ref()
            .is_some_and(|v| v.get(value).is_some())
    }

    fn mac(&self, key_index: usize, value: &[u8]) -> [u8; 32] {
        let mut mac = self.keys[key_index].clone();
        mac.update(value);
        mac.finalize().into_bytes().into()
    }

    /// `Signer.signature(value)`: base64url of the HMAC, 43 characters.
    pub fn signature(&self, value: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(0, value.as_bytes()))
    }

    /// `TimestampSigner.sign_object(data, compress=...)` at the given Unix time.
    pub fn dumps(&self, data: &SessionData, unix_seconds: i64, compress: bool) -> String {
        self.dumps_with(data, unix_seconds, compress, || Arc::new(data.clone()))
    }

    /// As [`Signer::dumps`], for data already shared: the signer's memory keeps a reference
    /// to it instead of a copy.
    pub fn dumps_shared(
        &self,
        data: &Arc<SessionData>,
        unix_seconds: i64,
        compress: bool,
    ) -> String {
        self.dumps_with(data, unix_seconds, compress, || data.clone())
    }

    fn dumps_with(
        &self,
        data: &SessionData,
        unix_seconds: i64,
        compress: bool,
        shared: impl FnOnce() -> Arc<SessionData>,
    ) -> String {
        let json = value::object_to_string(data);
        let json = json.as_bytes();
        let mut out = String::with_capacity(json.len() * 4 / 3 + 60);
        let compressed = if compress { zlib_compress(json) } else { None };
        match compressed {
            // Django compresses only when it saves at least two bytes.
            Some(c) if c.len() < json.len().saturating_sub(1) => {
                out.push('.');
                URL_SAFE_NO_PAD.encode_string(&c, &mut out);
            }
            _ => URL_SAFE_NO_PAD.encode_string(json, &mut out),
        }
        out.push(':');
        out.push_str(&b62_encode(unix_seconds));
        let mac = self.mac(0, out.as_bytes());
        out.push(':');
        URL_SAFE_NO_PAD.encode_string(mac, &mut out);
        if let Some(verified) = &self.verified {
            verified.put(
                &out,
                Hit {
                    data: shared(),
                    timestamp: unix_seconds,
                    key_index: 0,
                },
            );
        }
        out
    }

    /// `TimestampSigner.unsign(value)`: checks the signature against every key and returns
    /// the signed text (payload and timestamp) and the index of the key that matched.
    pub fn unsign<'a>(&self, signed: &'a str) -> Result<(&'a str, usize), SigningError> {
        if signed.len() > MAX_SIGNED_LEN {
            return Err(SigningError::TooLong(signed.len()));
        }
        let (value, sig) = signed.rsplit_once(':').ok_or(SigningError::NoSeparator)?;
        // A SHA-256 MAC is 32 bytes; anything else cannot match (and is not decoded further).
        let mut given = [0u8; 32];
        match URL_SAFE_NO_PAD.decode_slice(sig, &mut given) {
            Ok(32) if sig.len() == 43 => {}
            _ => return Err(SigningError::BadSignature),
        }
        for i in 0..self.keys.len() {
            if bool::from(self.mac(i, value.as_bytes()).ct_eq(&given)) {
                return Ok((value, i));
            }
        }
        Err(SigningError::BadSignature)
    }

    /// `signing.loads(value, max_age=...)`.
    ///
    /// `max_age` is `(now_unix_seconds, max_age_seconds)`; with `None` the timestamp is not
    /// checked (as for db session data). The signature is verified before anything is
    /// decoded, and decompression stops at [`MAX_DECOMPRESSED_LEN`].
    pub fn loads(
        &self,
        signed: &str,
        max_age: Option<(i64, i64)>,
    ) -> Result<Unsigned, SigningError> {
        self.loads_at(signed, max_age.map(|(now, max)| (now as f64, max)))
    }

    /// As [`Signer::loads`], with the current time as fractional seconds: Django compares
    /// `time.time() - timestamp > max_age` in floating point.
    pub fn loads_at(
        &self,
        signed: &str,
        max_age: Option<(f64, i64)>,
    ) -> Result<Unsigned, SigningError> {
        let shared = self.loads_shared(signed, max_age)?;
        Ok(Unsigned {
            data: Arc::unwrap_or_clone(shared.data),
            timestamp: shared.timestamp,
            key_index: shared.key_index,
        })
    }

    /// As [`Signer::loads_at`], with the data shared: from the signer's memory when the
    /// value was signed or verified before (its age is checked again all the same).
    pub fn loads_shared(
        &self,
        signed: &str,
        max_age: Option<(f64, i64)>,
    ) -> Result<SharedUnsigned, SigningError> {
        if let Some(hit) = self.verified.as_ref().and_then(|v| v.get(signed)) {
            check_age(hit.timestamp, max_age)?;
            return Ok(SharedUnsigned {
                data: hit.data,
                timestamp: hit.timestamp,
                key_index: hit.key_index,
            });
        }
        let unsigned = self.verify_and_decode(signed, max_age)?;
        let data = Arc::new(unsigned.data);
        if let Some(verified) = &self.verified {
            verified.put(
                signed,
                Hit {
                    data: data.clone(),
                    timestamp: unsigned.timestamp,
                    key_index: unsigned.key_index,
                },
            );
        }
        Ok(SharedUnsigned {
            data,
            timestamp: unsigned.timestamp,
            key_index: unsigned.key_index,
        })
    }

    fn verify_and_decode(
        &self,
        signed: &str,
        max_age: Option<(f64, i64)>,
    ) -> Result<Unsigned, SigningError> {
        let (value, key_index) = self.unsign(signed)?;
        let (payload, ts) = value.rsplit_once(':').ok_or(SigningError::NoSeparator)?;
        let timestamp = b62_decode(ts).ok_or(SigningError::BadTimestamp)?;
        check_age(timestamp, max_age)?;
        let data = decode_payload(payload)?;
        Ok(Unsigned {
            data,
            timestamp,
            key_index,
        })
    }
}

/// Django's `time.time() - timestamp > max_age`, in floating point.
fn check_age(timestamp: i64, max_age: Option<(f64, i64)>) -> Result<(), SigningError> {
    if let Some((now, max)) = max_age {
        let age = now - timestamp as f64;
        if age > max as f64 {
            return Err(SigningError::Expired {
                age: age as i64,
                max_age: max,
            });
        }
    }
    Ok(())
}

/// Django's `salted_hmac(key_salt, value, secret, algorithm="sha256")`: HMAC-SHA256 keyed
/// with `SHA-256(key_salt + secret)`.
///
/// ```
/// // Django's tests/utils_tests/test_crypto.py known answer.
/// let mac = sessio_django::signing::salted_hmac_sha256("salt", b"value", b"django_tests_secret_key");
/// let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
/// assert_eq!(hex, "ee0bf789e4e009371a5372c90f73fcf17695a8439c9108b0480f14e347b3f9ec");
/// ```
pub fn salted_hmac_sha256(key_salt: &str, value: &[u8], secret: &[u8]) -> [u8; 32] {
    let key = Sha256::new()
        .chain_update(key_salt.as_bytes())
        .chain_update(secret)
        .finalize();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC accepts any key length");
    mac.update(value);
    mac.finalize().into_bytes().into()
}

/// Decodes a (verified) payload: optional `.` zlib marker, base64url, JSON object.
fn decode_payload(payload: &str) -> Result<SessionData, SigningError> {
    let (compressed, b64) = match payload.strip_prefix('.') {
        Some(rest) => (true, rest),
        None => (false, payload),
    };
    let raw = b64_decode(b64).ok_or(SigningError::BadBase64)?;
    let json = if compressed {
        zlib_decompress(&raw)?
    } else {
        raw
    };
    // Django decodes the bytes as latin-1 before json.loads; Python's own output is ASCII.
    let text: std::borrow::Cow<'_, str> = match std::str::from_utf8(&json) {
        Ok(s) => s.into(),
        Err(_) => json.iter().map(|&b| b as char).collect::<String>().into(),
    };
    // Python's own reader: NaN and ±Infinity, exact big integers, keys in their order.
    value::object_from_str(&text).map_err(|e| SigningError::Json(e.to_string()))
}

/// zlib at level 6 with the zlib wrapper: `zlib.compress(data)` in Python.
///
/// Session-sized inputs go to the pure-Rust port of zlib's deflate, which writes the same
/// bytes without libz's per-call reset; longer ones to libz.
pub(crate) fn zlib_compress(data: &[u8]) -> Option<Vec<u8>> {
    crate::deflate::zlib_compress(data).or_else(|| zlib_compress_libz(data))
}

/// `zlib_compress` through libz.
///
/// Setting up a deflate state costs several times more than compressing a session, so
/// each thread keeps one and resets it (measured: ~39 µs per call fresh, ~5 µs reused).
pub(crate) fn zlib_compress_libz(data: &[u8]) -> Option<Vec<u8>> {
    use flate2::{Compress, Compression, FlushCompress, Status};
    thread_local! {
        static DEFLATE: std::cell::RefCell<Compress> =
            std::cell::RefCell::new(Compress::new(Compression::new(6), true));
    }
    DEFLATE.with(|cell| {
        let mut z = cell.borrow_mut();
        z.reset();
        // zlib's worst case is a few bytes per 16 KB block over the input, plus the wrapper.
        let mut out = Vec::with_capacity(data.len() + data.len() / 1000 + 64);
        loop {
            let consumed = z.total_in() as usize;
            match z.compress_vec(&data[consumed..], &mut out, FlushCompress::Finish) {
                Ok(Status::StreamEnd) => return Some(out),
                Ok(_) => out.reserve(out.capacity().max(64)),
                Err(_) => return None,
            }
        }
    })
}

/// Inflates a zlib stream, stopping at [`MAX_DECOMPRESSED_LEN`].
///
/// As with compression, each thread keeps one inflate state and resets it: a fresh state
/// and its 32 KB window cost more than inflating a session (measured: ~2.3 µs fresh, a
/// fraction of that reused, for a 117-byte stream).
fn zlib_decompress(raw: &[u8]) -> Result<Vec<u8>, SigningError> {
    use flate2::{Decompress, FlushDecompress, Status};
    thread_local! {
        static INFLATE: std::cell::RefCell<Decompress> =
            std::cell::RefCell::new(Decompress::new(true));
    }
    INFLATE.with(|cell| {
        let mut z = cell.borrow_mut();
        z.reset(true);
        let mut out = Vec::with_capacity((raw.len() * 4).min(MAX_DECOMPRESSED_LEN + 1));
        loop {
            let consumed = z.total_in() as usize;
            let produced = z.total_out();
            let status = z
                .decompress_vec(&raw[consumed..], &mut out, FlushDecompress::Finish)
                .map_err(|e| SigningError::Decompress(e.to_string()))?;
            if out.len() > MAX_DECOMPRESSED_LEN {
                return Err(SigningError::Decompress(format!(
                    "inflates past {MAX_DECOMPRESSED_LEN} bytes"
                )));
            }
            match status {
                Status::StreamEnd => return Ok(out),
                // Room is what it needs: grow (bounded by the limit check above).
                _ if out.len() == out.capacity() => out.reserve(out.capacity().max(256)),
                // Output room left and no progress (or no input left), yet no end: a
                // truncated stream.
                _ if z.total_in() as usize >= raw.len()
                    || (z.total_in() as usize == consumed && z.total_out() == produced) =>
                {
                    return Err(SigningError::Decompress("truncated zlib stream".into()))
                }
                _ => {}
            }
        }
    })
}

/// Django's `b64_decode`: pads, then decodes the URL-safe alphabet. Unlike Python, sessio
/// refuses characters outside the alphabet instead of skipping them; such a value never
/// passes the signature check anyway.
fn b64_decode(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok()
}

/// Django's `b62_encode`.
///
/// ```
/// assert_eq!(sessio_django::signing::b62_encode(1_700_000_000), "1r31eq");
/// assert_eq!(sessio_django::signing::b62_encode(-62), "-10");
/// ```
pub fn b62_encode(n: i64) -> String {
    if n == 0 {
        return "0".into();
    }
    let mut digits = Vec::with_capacity(12);
    let mut v = n.unsigned_abs();
    while v > 0 {
        digits.push(BASE62[(v % 62) as usize]);
        v /= 62;
    }
    if n < 0 {
        digits.push(b'-');
    }
    digits.reverse();
    String::from_utf8(digits).expect("ascii")
}

/// Django's `b62_decode`; `None` for characters outside the alphabet or overflow.
pub fn b62_decode(s: &str) -> Option<i64> {
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    if digits.is_empty() {
        return None;
    }
    // Accumulate with the final sign so that i64::MIN (one past -i64::MAX) decodes.
    let mut n: i64 = 0;
    for c in digits.bytes() {
        let d = BASE62.iter().position(|&b| b == c)? as i64;
        n = n.checked_mul(62)?;
        n = if neg {
            n.checked_sub(d)?
        } else {
            n.checked_add(d)?
        };
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;
    use std::io::Write;

    const T: i64 = 1_700_000_000;

    #[test]
    fn base62_round_trips() {
        for n in [
            -10_000_000_000,
            10_000_000_000,
            1_620_378_259,
            0,
            61,
            62,
            3844,
        ] {
            assert_eq!(b62_decode(&b62_encode(n)), Some(n));
        }
        for n in -100..100 {
            assert_eq!(b62_decode(&b62_encode(n)), Some(n));
        }
        assert_eq!(b62_encode(61), "z");
        assert_eq!(b62_encode(3844), "100");
        assert_eq!(b62_decode("!"), None);
    }

    #[test]
    fn django_known_answer_signature() {
        // tests/signing/tests.py: Signer(key="predictable-secret").sign("foo"), default salt.
        let signer = Signer::new(b"predictable-secret", &[], "django.core.signing.Signer");
        assert_eq!(
            signer.signature("foo"),
            "jZQoX_FtSO70jX9HLRGg2A_2s4kdDBxz1QoO_OpEQb0"
        );
    }

    #[test]
    fn compressed_value_matches_django() {
        let signer = Signer::new(b"test-secret", &[], SIGNED_COOKIES_SALT);
        let loaded = signer
            .loads(
                ".eJyrVkpOLCpRsoo21KEqjNVRyssvSVWyUkokAijVAgASaiJ9:1r31eq:D517hS151Trb9O5CZAR8TSen4R3-up0c7iyCabEs53I",
                None,
            )
            .unwrap();
        let again = signer.dumps(&loaded.data, T, true);
        assert!(again.starts_with(".eJyrVkpOLCpRsoo21KEqjNVRyssvSVWyUkokAijVAgASaiJ9:1r31eq:"));
    }

    #[test]
    fn shared_data_is_remembered_without_a_copy() {
        let signer = Signer::new(b"test-secret", &[], SIGNED_COOKIES_SALT).remembering();
        let data = Arc::new(json!({"user_id": 42}).as_object().unwrap().clone());
        let v = signer.dumps_shared(&data, T, true);
        // The next load hands back the very same data...
        assert!(Arc::ptr_eq(
            &signer.loads_shared(&v, None).unwrap().data,
            &data
        ));
        // ...and the value is the one `dumps` writes.
        assert_eq!(v, signer.dumps(&data, T, true));
    }

    #[test]
    fn compressible_values_that_decode_large_are_verified_but_not_remembered() {
        let signer = Signer::new(b"test-secret", &[], SIGNED_COOKIES_SALT).remembering();
        // Each fits a cookie once compressed, and decodes to 100 KB or more of memory.
        let text = json!({"a": "x".repeat(100_000)});
        let numbers = json!({"a": vec![1; 20_000]});
        for data in [text, numbers] {
            let data = data.as_object().unwrap();
            let v = signer.dumps(data, T, true);
            assert!(v.starts_with('.') && v.len() < crate::verified::MAX_VALUE_LEN);
            assert!(!signer.remembers(&v), "signed, not kept");
            // Verified (here, and by a signer that never saw it) but not kept either.
            let fresh = Signer::new(b"test-secret", &[], SIGNED_COOKIES_SALT).remembering();
            for s in [&signer, &fresh] {
                assert_eq!(&s.loads(&v, None).unwrap().data, data);
                assert!(!s.remembers(&v), "verified, not kept");
            }
        }
        // A small session still is.
        let v = signer.dumps(json!({"a": "x".repeat(100)}).as_object().unwrap(), T, true);
        assert!(signer.remembers(&v));
    }

    #[test]
    fn python_nan_and_infinity_are_read() {
        let signer = Signer::new(b"k", &[], STORE_SALT);
        let payload =
            URL_SAFE_NO_PAD.encode(br#"{"a":Infinity,"b":-Infinity,"c":NaN,"s":"NaN Infinity"}"#);
        let value = format!("{payload}:1r31eq");
        let signed = format!("{value}:{}", signer.signature(&value));
        let data = signer.loads(&signed, None).unwrap().data;
        assert_eq!(
            crate::value::object_to_string(&data),
            r#"{"a":Infinity,"b":-Infinity,"c":NaN,"s":"NaN Infinity"}"#
        );
    }

    #[test]
    fn expiry_boundary_is_inclusive() {
        let signer = Signer::new(b"test-secret", &[], SIGNED_COOKIES_SALT);
        let v = signer.dumps(json!({"a": 1}).as_object().unwrap(), T, true);
        assert!(signer.loads(&v, Some((T + 1_209_600, 1_209_600))).is_ok());
        assert!(matches!(
            signer.loads(&v, Some((T + 1_209_601, 1_209_600))),
            Err(SigningError::Expired { .. })
        ));
    }

    #[test]
    fn fallback_keys_verify_but_never_sign() {
        let old = Signer::new(b"old-secret", &[], STORE_SALT);
        let v = old.dumps(json!({"a": 1}).as_object().unwrap(), T, false);
        let rotated = Signer::new(b"new-secret", &[b"old-secret"], STORE_SALT);
        assert_eq!(rotated.loads(&v, None).unwrap().key_index, 1);
        let resigned = rotated.dumps(&rotated.loads(&v, None).unwrap().data, T, false);
        assert_eq!(rotated.loads(&resigned, None).unwrap().key_index, 0);
        assert!(old.loads(&resigned, None).is_err());
    }

    #[test]
    fn tampering_is_rejected_at_every_byte() {
        let signer = Signer::new(b"test-secret", &[], SIGNED_COOKIES_SALT);
        let v = signer.dumps(json!({"user_id": 42}).as_object().unwrap(), T, true);
        for i in 0..v.len() {
            let mut bytes = v.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(bytes).unwrap();
            if tampered != v {
                assert!(signer.loads(&tampered, None).is_err(), "byte {i}");
            }
        }
        assert_eq!(
            signer.loads("no-separators", None),
            Err(SigningError::NoSeparator)
        );
    }

    #[test]
    fn zip_bombs_stop_at_the_limit() {
        // A correctly signed payload that inflates past the limit must be refused, not
        // allocated.
        let signer = Signer::new(b"k", &[], STORE_SALT);
        let big = vec![b' '; MAX_DECOMPRESSED_LEN + 10];
        let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&big).unwrap();
        let payload = format!(
            ".{}:{}",
            URL_SAFE_NO_PAD.encode(enc.finish().unwrap()),
            "1r31eq"
        );
        let signed = format!("{payload}:{}", signer.signature(&payload));
        assert!(matches!(
            signer.loads(&signed, None),
            Err(SigningError::Decompress(_))
        ));
    }
}
