//! Session keys: 32 characters of `[a-z0-9]` from the OS CSPRNG (about 165 bits), as Django
//! makes them.

use crate::error::{Error, Result};

/// Django's `VALID_KEY_CHARS`: lower case so keys survive case-insensitive file systems.
pub const KEY_CHARS: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
/// Length of a new key.
pub const KEY_LEN: usize = 32;
/// Keys shorter than this are treated as no key at all (Django's rule).
pub const MIN_KEY_LEN: usize = 8;

/// A new random session key.
///
/// ```
/// let key = sessio::key::new_session_key().unwrap();
/// assert_eq!(key.len(), 32);
/// assert!(key.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
/// ```
pub fn new_session_key() -> Result<String> {
    random_string(KEY_LEN, KEY_CHARS)
}

/// `len` characters drawn uniformly and independently from `alphabet` (at most 256
/// characters), with bytes from the operating system's CSPRNG.
pub fn random_string(len: usize, alphabet: &[u8]) -> Result<String> {
    assert!(!alphabet.is_empty() && alphabet.len() <= 256);
    // Rejection sampling keeps every character equally likely.
    let limit = 256 - (256 % alphabet.len());
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        getrandom::fill(&mut buf).map_err(|e| Error::Io {
            context: "the operating system's random number generator failed".into(),
            source: std::io::Error::other(e.to_string()),
        })?;
        for &b in &buf {
            if (b as usize) < limit {
                out.push(alphabet[b as usize % alphabet.len()] as char);
                if out.len() == len {
                    break;
                }
            }
        }
    }
    Ok(out)
}

/// Django's `_session_key` validation: a key shorter than 8 characters is no key.
pub(crate) fn validate(key: Option<&str>) -> Option<&str> {
    key.filter(|k| k.len() >= MIN_KEY_LEN)
}

/// Whether `key` could have been made by [`new_session_key`] (the file engine's path check).
pub fn is_well_formed(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 64
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn keys_are_unique_and_well_formed() {
        let keys: HashSet<String> = (0..20_000).map(|_| new_session_key().unwrap()).collect();
        assert_eq!(keys.len(), 20_000);
        assert!(keys.iter().all(|k| k.len() == 32 && is_well_formed(k)));
        // Every character of the alphabet shows up: no bias toward a subset.
        let seen: HashSet<char> = keys.iter().flat_map(|k| k.chars()).collect();
        assert_eq!(seen.len(), 36);
    }

    #[test]
    fn short_keys_are_no_keys() {
        assert_eq!(validate(Some("1234567")), None);
        assert_eq!(validate(Some("12345678")), Some("12345678"));
        assert_eq!(validate(Some("")), None);
        assert_eq!(validate(None), None);
    }
}
