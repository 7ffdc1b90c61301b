//! Helpers shared by the fuzz targets in `fuzz_targets/`: keys, arbitrary session data
//! (sessio-django's [`Value`]), and equality of session data with floats compared by value.
//!
//! This module uses `sessio_django` alone, as do the targets that exercise Django's formats
//! (`signed_loads`, `signed_roundtrip`, `python_json`, `django_store_data`). What the
//! engine and middleware targets need from `sessio` is in [`engines`].

use std::sync::OnceLock;

use arbitrary::{Result as ArbResult, Unstructured};
use sessio_django::signing::{Signer, Unsigned};
use sessio_django::value::{Map, Number, Value};

pub mod engines;

/// The secret key of `crates/sessio/tests/data/django-vectors.json`, so its values verify.
pub const SECRET: &str = "test-secret";
/// A retired key, accepted as a fallback (the vectors' `key_rotation` one).
pub const OLD_SECRET: &str = "old-secret";
/// The vectors' frozen time (Unix seconds).
pub const T: i64 = 1_700_000_000;
/// Django's `SESSION_COOKIE_AGE`.
pub const COOKIE_AGE: i64 = 1_209_600;

/// Whether to fail on the known sessio issues too (`SESSIO_FUZZ_STRICT=1`).
///
/// The targets step around the open issues listed under "Known issues" in
/// `fuzz/README.md` so that CI keeps fuzzing for new ones until they are fixed; in strict
/// mode they fail on them. Each place that steps around one names it.
pub fn strict() -> bool {
    static STRICT: OnceLock<bool> = OnceLock::new();
    *STRICT.get_or_init(|| std::env::var_os("SESSIO_FUZZ_STRICT").is_some_and(|v| v != "0"))
}

/// The map key by which serde_json's `arbitrary_precision` marks a number. Known issue K6
/// (fixed): while sessio read session data with that feature, an object whose first key was
/// this one was read as a number or refused. The generators below pick it as a key often,
/// so the round-trip assertions of the targets check that such data reads back as written.
pub const K6_KEY: &str = "$serde_json::private::Number";

/// The signer for `salt` with [`SECRET`] and the fallback [`OLD_SECRET`].
pub fn signer(salt: &str) -> Signer {
    Signer::new(SECRET.as_bytes(), &[OLD_SECRET.as_bytes()], salt)
}

const MAX_DEPTH: u32 = 4;
const MAX_ITEMS: usize = 6;

/// An arbitrary JSON object (bounded depth and width).
pub fn arb_map(u: &mut Unstructured<'_>) -> ArbResult<Map> {
    map_at(u, 0)
}

/// An arbitrary JSON value (bounded depth and width).
pub fn arb_value(u: &mut Unstructured<'_>) -> ArbResult<Value> {
    value_at(u, 0)
}

/// A key: arbitrary text, or one of a few keys with a meaning to sessio or to serde_json.
fn arb_key(u: &mut Unstructured<'_>) -> ArbResult<String> {
    Ok(match u.int_in_range(0..=7u8)? {
        0 => K6_KEY.to_owned(),
        1 => u
            .choose(&[
                "",
                "_session_expiry",
                "_auth_user_id",
                "$serde_json::private::RawValue",
            ])?
            .to_string(),
        _ => u.arbitrary()?,
    })
}

fn map_at(u: &mut Unstructured<'_>, depth: u32) -> ArbResult<Map> {
    let n = u.int_in_range(0..=MAX_ITEMS)?;
    let mut map = Map::new();
    for _ in 0..n {
        let k = arb_key(u)?;
        let v = value_at(u, depth + 1)?;
        map.insert(k, v);
    }
    Ok(map)
}

fn value_at(u: &mut Unstructured<'_>, depth: u32) -> ArbResult<Value> {
    let leaf_only = depth >= MAX_DEPTH;
    let choice = u.int_in_range(0..=if leaf_only { 7 } else { 9 })?;
    Ok(match choice {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => Value::from(u.arbitrary::<i64>()?),
        3 => Value::from(u.arbitrary::<u64>()?),
        // Any f64, NaN and the infinities included: Python writes them as NaN, Infinity and
        // -Infinity, and sessio-django keeps them.
        4 => Value::from(u.arbitrary::<f64>()?),
        5 => Value::Number(arb_number_text(u)?),
        6 | 7 => Value::String(u.arbitrary()?),
        8 => {
            let n = u.int_in_range(0..=MAX_ITEMS)?;
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                items.push(value_at(u, depth + 1)?);
            }
            Value::Array(items)
        }
        _ => Value::Object(map_at(u, depth + 1)?),
    })
}

/// A number read (as Python's `json.loads` reads it) from an arbitrary JSON number lexeme
/// (`-?int(.frac)?([eE][+-]?exp)?`), as found in a payload: integers of any size (kept
/// exactly), `1E5`, `1e400` (infinite), `-0` (the integer 0), `0.10`...
pub fn arb_number_text(u: &mut Unstructured<'_>) -> ArbResult<Number> {
    let mut s = String::new();
    if u.arbitrary()? {
        s.push('-');
    }
    digits(u, &mut s, true)?;
    if u.arbitrary()? {
        s.push('.');
        digits(u, &mut s, false)?;
    }
    if u.arbitrary()? {
        s.push(*u.choose(&['e', 'E'])?);
        s.push_str(u.choose(&["", "+", "-"])?);
        digits(u, &mut s, false)?;
    }
    match sessio_django::value::from_str(&s) {
        Ok(Value::Number(n)) => Ok(n),
        other => panic!("generator made a JSON number {s:?} that reads as {other:?}"),
    }
}

fn digits(u: &mut Unstructured<'_>, s: &mut String, integer_part: bool) -> ArbResult<()> {
    let n = u.int_in_range(1..=40)?;
    for i in 0..n {
        let d = u.int_in_range(0..=9u8)?;
        // JSON integers have no leading zeros: a leading 0 stands alone.
        if integer_part && i == 0 && d == 0 {
            s.push('0');
            return Ok(());
        }
        s.push((b'0' + d) as char);
    }
    Ok(())
}

/// Numbers equal as Python sees them after a JSON round trip: integers exactly (any size),
/// floats bit for bit (so `-0.0` stays negative) except that every NaN equals every NaN
/// (Python writes and reads one `NaN`); an integer never equals a float.
pub fn same_number(a: &Number, b: &Number) -> bool {
    match (a.is_f64(), b.is_f64()) {
        (false, false) => a == b,
        (true, true) => {
            let (fa, fb) = (a.as_f64().unwrap(), b.as_f64().unwrap());
            (fa.is_nan() && fb.is_nan()) || fa.to_bits() == fb.to_bits()
        }
        _ => false,
    }
}

/// Deep equality of JSON values with [`same_number`] for numbers and key order respected.
pub fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => same_number(x, y),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_value(p, q))
        }
        (Value::Object(x), Value::Object(y)) => same_map(x, y),
        _ => a == b,
    }
}

/// [`same_value`] for objects.
pub fn same_map(a: &Map, b: &Map) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|((ka, va), (kb, vb))| ka == kb && same_value(va, vb))
}

/// True when `value` holds a float that is NaN or infinite (Python writes `NaN`,
/// `Infinity`, `-Infinity`, which are not RFC 8259 JSON).
pub fn has_non_finite(value: &Value) -> bool {
    match value {
        Value::Number(n) => n.is_f64() && !n.as_f64().unwrap().is_finite(),
        Value::Array(items) => items.iter().any(has_non_finite),
        Value::Object(map) => map.values().any(has_non_finite),
        _ => false,
    }
}

/// Characters a signed value may contain: base64url, `.`, `:` and the `-` of a negative
/// timestamp. All are cookie-octets that need no quoting.
pub fn is_cookie_safe(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// What every value that verified must satisfy: signing its data again (compressed or not)
/// at the same timestamp gives a cookie-safe value that verifies under the current key and
/// decodes to the same data.
pub fn assert_reencodes(signer: &Signer, input: &str, got: &Unsigned) {
    for compress in [true, false] {
        let again = signer.dumps(&got.data, got.timestamp, compress);
        assert!(
            is_cookie_safe(&again),
            "re-encoded value not cookie-safe: {again:?}"
        );
        let back = signer.loads(&again, None).unwrap_or_else(|e| {
            panic!(
                "input {input:?} verified with data {:?}, but its re-encoding {again:?} \
                 (compress={compress}) does not load: {e}",
                got.data
            )
        });
        assert_eq!(back.timestamp, got.timestamp);
        assert_eq!(
            back.key_index, 0,
            "re-encoded values are signed with the current key"
        );
        assert!(
            same_map(&back.data, &got.data),
            "input {input:?}: data {:?} re-encoded as {again:?} loads as {:?}",
            got.data,
            back.data
        );
    }
}

/// Two results of `loads` equal as Python sees them: the same data ([`same_map`], so NaN
/// equals NaN), timestamp and key, or the same error.
pub fn same_loaded(
    a: &Result<Unsigned, sessio_django::signing::SigningError>,
    b: &Result<Unsigned, sessio_django::signing::SigningError>,
) -> bool {
    match (a, b) {
        (Ok(a), Ok(b)) => {
            a.timestamp == b.timestamp && a.key_index == b.key_index && same_map(&a.data, &b.data)
        }
        (Err(a), Err(b)) => a == b,
        _ => false,
    }
}
