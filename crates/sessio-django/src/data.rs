//! A session's data: a dictionary in insertion order, as Django's.

use serde_json::{Map, Value};

/// A session's data: a JSON object, in insertion order (as Django's dict).
pub type SessionData = Map<String, Value>;

/// Maps up to this many keys are searched by [`lookup`] with a scan.
const SCAN_MAX: usize = 8;

/// `data.get(key)`, found by a scan of the entries when the map is small.
///
/// A session holds a handful of keys, and the map hashes with SipHash: comparing a few
/// keys (their lengths first) costs less than hashing one (measured with the `inproc`
/// example, about 200 instructions per lookup saved; the middleware looks up
/// `_session_expiry` several times per save).
pub fn lookup<'a>(data: &'a SessionData, key: &str) -> Option<&'a Value> {
    if data.len() <= SCAN_MAX {
        data.iter().find_map(|(k, v)| (k == key).then_some(v))
    } else {
        data.get(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_agrees_with_get_on_small_and_large_maps() {
        for n in [0, 1, 7, 8, 9, 40] {
            let mut data = SessionData::new();
            for i in 0..n {
                data.insert(format!("k{i}"), Value::from(i));
            }
            // Same length as the stored keys, a prefix of one, and absent keys.
            for key in ["k0", "k7", "k8", "k39", "k", "k00", "", "_session_expiry"] {
                assert_eq!(lookup(&data, key), data.get(key), "{n} keys, {key:?}");
            }
        }
    }
}
