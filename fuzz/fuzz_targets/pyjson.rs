//! `sessio::pyjson` on arbitrary JSON values.
//!
//! Input: arbitrary bytes read as a JSON value (nested arrays and objects, any Unicode,
//! integers of any size, floats, number texts such as `1E5`).
//!
//! Invariants: the output is printable ASCII (Python's `ensure_ascii`); sessio's reader (in
//! a signed value) reads it back as the same value (floats compared by value, `-0` as `0`),
//! and writing that gives the same text; it is plain JSON unless a number is past `f64`
//! (then Python's `Infinity`); an object serialises the same through `to_string` and
//! `value_to_string`.
#![no_main]

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use serde_json::Map;
use serde_json::Value;
use sessio::pyjson;
use sessio::signing::STORE_SALT;
use sessio_fuzz::{arb_value, has_overflowing_float, same_value, signer, skip_known_value};

fuzz_target!(|bytes: &[u8]| {
    let mut u = Unstructured::new(bytes);
    let Ok(value) = arb_value(&mut u) else {
        return;
    };
    if skip_known_value(&value) {
        return; // known issue K6
    }
    let text = pyjson::value_to_string(&value);
    assert!(text.is_ascii(), "not ASCII: {text:?}");
    assert!(
        text.bytes().all(|b| (b' '..=b'~').contains(&b)),
        "control byte in {text:?}"
    );
    // sessio reads what pyjson writes through its signed-data reader, which also takes
    // Python's `Infinity` (for numbers past f64, such as `1e400`).
    let signer = signer(STORE_SALT);
    let mut wrapped = Map::new();
    wrapped.insert("v".into(), value.clone());
    let signed = signer.dumps(&wrapped, 0, false);
    let read = signer
        .loads(&signed, None)
        .unwrap_or_else(|e| panic!("{value:?} written as {text:?} does not read back: {e}"));
    assert!(
        same_value(&read.data["v"], &value),
        "{value:?} written as {text:?} reads back as {:?}",
        read.data["v"]
    );
    // Writing what was read gives the same text (Python's output is a fixed point).
    assert_eq!(pyjson::value_to_string(&read.data["v"]), text);
    if has_overflowing_float(&value) {
        assert!(text.contains("Infinity"), "{value:?} written as {text:?}");
    } else {
        // Plain JSON otherwise.
        let back: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{value:?} written as {text:?}, not JSON: {e}"));
        assert!(
            same_value(&back, &value),
            "{value:?} written as {text:?} parses as {back:?}"
        );
    }
    if let Value::Object(map) = &value {
        assert_eq!(pyjson::to_string(map), text);
    }
});
