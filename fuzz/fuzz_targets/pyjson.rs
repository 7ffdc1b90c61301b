//! `sessio::pyjson` on arbitrary JSON values.
//!
//! Input: arbitrary bytes read as a JSON value (nested arrays and objects, any Unicode,
//! integers of any size, floats, number texts such as `1E5`).
//!
//! Invariants: the output is printable ASCII (Python's `ensure_ascii`), parses back to the
//! same value (floats compared by value, `-0` as `0`), writing what was read gives the same
//! text, and an object serialises the same through `to_string` and `value_to_string`.
#![no_main]

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use sessio::pyjson;
use sessio_fuzz::{arb_value, same_value, skip_known_value};

fuzz_target!(|bytes: &[u8]| {
    let mut u = Unstructured::new(bytes);
    let Ok(value) = arb_value(&mut u) else {
        return;
    };
    if skip_known_value(&value) {
        return; // known issues K1, K6
    }
    let text = pyjson::value_to_string(&value);
    assert!(text.is_ascii(), "not ASCII: {text:?}");
    assert!(
        text.bytes().all(|b| (b' '..=b'~').contains(&b)),
        "control byte in {text:?}"
    );
    let back: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{value:?} written as {text:?}, which does not parse: {e}"));
    assert!(
        same_value(&back, &value),
        "{value:?} written as {text:?} parses as {back:?}"
    );
    // Writing what was read gives the same text (Python's output is a fixed point).
    assert_eq!(pyjson::value_to_string(&back), text);
    if let Value::Object(map) = &value {
        assert_eq!(pyjson::to_string(map), text);
    }
});
