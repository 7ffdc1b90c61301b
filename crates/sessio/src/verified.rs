//! Recently verified cookie values, so that the next request carrying the same cookie skips
//! the signature check and the decoding.
//!
//! A cookie engine verifies the whole value on every request: an HMAC (or an AEAD open),
//! base64, zlib and JSON, ~2 µs for a small session. A visitor sends back the value the
//! last response set, so each value this process signed, or verified once, is kept with its
//! decoded data. A hit needs the *whole* value to be equal (compared in constant time) to
//! one that was signed here or that passed verification, so it proves exactly what a
//! verification would: a forged or altered value never matches. The signing time (the
//! expiry, for encrypted cookies) is kept and the age limit applied on every hit, as on a
//! full verification.
//!
//! Used by [`Signer`](crate::signing::Signer) for every engine that stores Django's signed
//! format (cookies, database rows, Redis values, files), and by the encrypted-cookie engine.
//!
//! The table is direct-mapped on a seeded hash (a client cannot aim at a slot) and bounded:
//! [`SLOTS`] entries of values up to [`MAX_VALUE_LEN`] bytes, so about 1 MB for typical
//! sessions and never more than ~10 MB. A collision just replaces the older entry.

use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, PoisonError};

use subtle::ConstantTimeEq;

use crate::engine::SessionData;

/// Entries in the table.
pub(crate) const SLOTS: usize = 1024;
/// Longer values are not kept (the browsers' limit for a whole cookie is 4096 bytes).
pub(crate) const MAX_VALUE_LEN: usize = 4096;

/// A verified value: its data, when it was signed (or when it expires), and which key
/// verified it.
#[derive(Clone)]
pub(crate) struct Hit {
    pub(crate) data: Arc<SessionData>,
    pub(crate) timestamp: i64,
    pub(crate) key_index: usize,
}

struct Entry {
    value: Box<str>,
    hit: Hit,
}

pub(crate) struct Verified {
    slots: Box<[Mutex<Option<Entry>>]>,
    /// Seeded foldhash rather than SipHash: only values this process signed or verified
    /// are stored, and their hashed tail is a MAC or tag no client can choose.
    hasher: foldhash::fast::RandomState,
}

impl std::fmt::Debug for Verified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verified")
            .field("slots", &self.slots.len())
            .finish_non_exhaustive()
    }
}

impl Default for Verified {
    fn default() -> Self {
        Self {
            slots: (0..SLOTS).map(|_| Mutex::new(None)).collect(),
            hasher: foldhash::fast::RandomState::default(),
        }
    }
}

impl Verified {
    fn slot(&self, value: &str) -> &Mutex<Option<Entry>> {
        // The tail of a signed or sealed value is its MAC or tag (random-looking), so a
        // seeded hash of it and the length spreads values as well as hashing it all, for a
        // fraction of the cost on a 4 KB cookie.
        let bytes = value.as_bytes();
        let tail = &bytes[bytes.len().saturating_sub(32)..];
        let i = self.hasher.hash_one((bytes.len(), tail)) as usize % self.slots.len();
        &self.slots[i]
    }

    /// The entry for exactly `value`, if it is kept.
    pub(crate) fn get(&self, value: &str) -> Option<Hit> {
        if value.len() > MAX_VALUE_LEN {
            return None;
        }
        let slot = self
            .slot(value)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let entry = slot.as_ref()?;
        same_value(entry.value.as_bytes(), value.as_bytes()).then(|| entry.hit.clone())
    }

    /// Keeps `value`, which was just signed here or passed verification.
    pub(crate) fn put(&self, value: &str, hit: Hit) {
        if value.len() > MAX_VALUE_LEN {
            return;
        }
        let entry = Entry {
            value: value.into(),
            hit,
        };
        // The replaced entry is freed after the lock is released.
        let old = self
            .slot(value)
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .replace(entry);
        drop(old);
    }
}

/// Whether `a == b`, in time that depends only on the length: a slot may hold another
/// visitor's value, and how much of it an attacker's value matches must not show.
/// Word-wise, as `subtle` does byte-wise.
fn same_value(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u64;
    let (wa, wb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (wa.remainder(), wb.remainder());
    for (x, y) in wa.zip(wb) {
        let x = u64::from_ne_bytes(x.try_into().unwrap_or_default());
        let y = u64::from_ne_bytes(y.try_into().unwrap_or_default());
        diff |= x ^ y;
    }
    let tail = u64::from(bool::from(ra.ct_eq(rb)));
    // No early exit: the sum of differences is looked at once, through an opaque value.
    std::hint::black_box(diff) == 0 && tail == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(n: i64) -> Hit {
        let mut data = SessionData::new();
        data.insert("n".into(), n.into());
        Hit {
            data: Arc::new(data),
            timestamp: n,
            key_index: 0,
        }
    }

    #[test]
    fn only_the_exact_value_hits() {
        let v = Verified::default();
        v.put("abc:def:ghi", hit(1));
        assert_eq!(v.get("abc:def:ghi").unwrap().timestamp, 1);
        assert!(v.get("abc:def:ghj").is_none());
        assert!(v.get("abc:def:gh").is_none());
        assert!(v.get("abc:def:ghii").is_none());
        let long = "x".repeat(MAX_VALUE_LEN + 1);
        v.put(&long, hit(2));
        assert!(v.get(&long).is_none());
    }

    #[test]
    fn comparison() {
        assert!(same_value(b"", b""));
        assert!(same_value(b"0123456789abcdefXYZ", b"0123456789abcdefXYZ"));
        assert!(!same_value(b"0123456789abcdefXYZ", b"0123456789abcdefXYz"));
        assert!(!same_value(b"0123456789abcdefXYZ", b"1123456789abcdefXYZ"));
        assert!(!same_value(b"0123456789abcdef", b"0123456789abcdeg"));
        assert!(!same_value(b"abc", b"abcd"));
    }

    #[test]
    fn bounded() {
        let v = Verified::default();
        for i in 0..(SLOTS as i64 * 4) {
            v.put(&format!("value-{i}"), hit(i));
        }
        let kept = v
            .slots
            .iter()
            .filter(|s| s.lock().unwrap().is_some())
            .count();
        assert!(kept <= SLOTS);
    }
}
