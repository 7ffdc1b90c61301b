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
//! [`SLOTS`] entries of values up to [`MAX_VALUE_LEN`] bytes whose decoded data takes up to
//! [`MAX_DATA_SIZE`] bytes of memory, so about 1 MB for typical sessions and never more
//! than about 12 MB (1024 × (4 KB + 8 KB)). Both bounds are needed: a 4 KB compressed
//! value can inflate to megabytes of data. A collision just replaces the older entry.

use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, PoisonError};

use subtle::ConstantTimeEq;

use crate::value::{Map, Value};

use crate::data::SessionData;

/// Entries in the table.
pub const SLOTS: usize = 1024;
/// Longer values are not kept (the browsers' limit for a whole cookie is 4096 bytes).
pub const MAX_VALUE_LEN: usize = 4096;
/// Values whose decoded data takes more memory than this (as this module estimates it) are
/// not kept. Django's login keys take under 1 KB, and each further short key about 240 bytes.
pub const MAX_DATA_SIZE: usize = 8 * 1024;

/// A verified value: its data, when it was signed (or when it expires), and which key
/// verified it.
#[derive(Clone, Debug)]
pub struct Hit {
    /// The value's decoded data.
    pub data: Arc<SessionData>,
    /// When it was signed (Unix seconds), or when it expires (encrypted cookies).
    pub timestamp: i64,
    /// Which key verified it: 0 is the current key, 1.. the fallbacks in order.
    pub key_index: usize,
}

struct Entry {
    value: Box<str>,
    hit: Hit,
}

/// The table of recently verified values (see the module's documentation).
pub struct Verified {
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
    pub fn get(&self, value: &str) -> Option<Hit> {
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

    /// Keeps `value`, which was just signed here or passed verification, unless it or its
    /// data is too large to keep.
    pub fn put(&self, value: &str, hit: Hit) {
        if value.len() > MAX_VALUE_LEN || data_size(&hit.data, MAX_DATA_SIZE).is_none() {
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

/// The memory `data` takes, estimated (the shared map, its entries with room to grow,
/// strings, numbers' digits, arrays' capacity; not the allocator's own overhead), or `None`
/// past `limit`. Counting stops
/// there, so looking at a huge value costs no more than at one just over the limit, and the
/// recursion is no deeper than `limit` over the size of a [`Value`].
fn data_size(data: &SessionData, limit: usize) -> Option<usize> {
    // The `Arc`'s allocation: two counts and the map.
    let shared = 2 * size_of::<usize>() + size_of::<SessionData>();
    let mut left = limit.checked_sub(shared)?;
    map_size(data, &mut left)?;
    Some(limit - left)
}

/// One map entry: its hash, key and value, and its slot in the index.
const ENTRY: usize = 2 * size_of::<usize>() + size_of::<String>() + size_of::<Value>();

fn take(left: &mut usize, bytes: usize) -> Option<()> {
    *left = left.checked_sub(bytes)?;
    Some(())
}

fn map_size(map: &Map, left: &mut usize) -> Option<()> {
    // A map grown by doubling holds up to twice its length.
    take(left, map.len().saturating_mul(2 * ENTRY))?;
    map.iter().try_for_each(|(k, v)| {
        take(left, k.len())?;
        value_size(v, left)
    })
}

fn value_size(value: &Value, left: &mut usize) -> Option<()> {
    match value {
        Value::Null | Value::Bool(_) => Some(()),
        // Integers wider than 64 bits keep their digits on the heap.
        Value::Number(n) => take(left, n.heap_len()),
        Value::String(s) => take(left, s.capacity()),
        Value::Array(a) => {
            take(left, a.capacity().saturating_mul(size_of::<Value>()))?;
            a.iter().try_for_each(|v| value_size(v, left))
        }
        Value::Object(m) => map_size(m, left),
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

    fn data(json: &str) -> Arc<SessionData> {
        Arc::new(crate::value::object_from_str(json).unwrap())
    }

    #[test]
    fn large_decoded_data_is_not_kept() {
        let v = Verified::default();
        let small = data(r#"{"_auth_user_id":"1","cart":[1,2,3],"theme":"dark"}"#);
        assert!(data_size(&small, MAX_DATA_SIZE).unwrap() < 2048);
        let put = |value: &str, data: &Arc<SessionData>| {
            v.put(
                value,
                Hit {
                    data: data.clone(),
                    timestamp: 0,
                    key_index: 0,
                },
            );
            v.get(value).is_some()
        };
        assert!(put("small", &small));
        // Long text, and short JSON that decodes into many values: a few KB of JSON, tens
        // or hundreds of KB of memory.
        let text = data(&format!(r#"{{"a":"{}"}}"#, "x".repeat(MAX_DATA_SIZE)));
        let numbers = data(&format!(r#"{{"a":[{}1]}}"#, "1,".repeat(1000)));
        let nested = data(&format!(
            r#"{{"a":{}{}}}"#,
            "[".repeat(120),
            "]".repeat(120)
        ));
        let keys = (0..200)
            .map(|i| format!(r#""{i}":null"#))
            .collect::<Vec<_>>();
        let keys = data(&format!("{{{}}}", keys.join(",")));
        for (name, big) in [
            ("text", text),
            ("numbers", numbers),
            ("nested", nested),
            ("keys", keys),
        ] {
            assert_eq!(data_size(&big, MAX_DATA_SIZE), None, "{name}");
            assert!(!put(name, &big), "{name}");
        }
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
