//! `sessio_django::value`'s writer and reader (Python's `json.dumps` / `json.loads`) on
//! arbitrary JSON values. Uses `sessio_django` alone.
//!
//! Input: arbitrary bytes read as a JSON value (nested arrays and objects, any Unicode,
//! integers of any size, any f64 including NaN and the infinities, number texts such as
//! `1E5` or `1e400`, and often the key `$serde_json::private::Number`).
//!
//! Invariants: the output is printable ASCII (Python's `ensure_ascii`); `value::from_str`
//! reads it back as the same value (integers exactly, floats bit for bit, NaN as NaN), and
//! writing that gives the same text; so does the signed-data reader (inside a signed
//! value); Python's `NaN`/`Infinity`/`-Infinity` appear outside strings exactly when the
//! value holds a non-finite float (plain JSON otherwise); an object writes the same through
//! `to_string`, `object_to_string` and `Display`, and reads back through
//! `object_from_str`.
#![no_main]

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use sessio_django::signing::STORE_SALT;
use sessio_django::value::{self, Map, Value};
use sessio_fuzz::{arb_value, has_non_finite, same_map, same_value, signer};

/// True when JSON text has a letter `N` or `I` outside its strings: the literals `null`,
/// `true`, `false` and numbers have none, so these are Python's `NaN` and `Infinity`.
fn has_python_special(text: &str) -> bool {
    let (mut in_string, mut escaped) = (false, false);
    for b in text.bytes() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else if b == b'"' {
            in_string = true;
        } else if b == b'N' || b == b'I' {
            return true;
        }
    }
    false
}

fuzz_target!(|bytes: &[u8]| {
    let mut u = Unstructured::new(bytes);
    let Ok(v) = arb_value(&mut u) else {
        return;
    };
    let text = value::to_string(&v);
    assert!(text.is_ascii(), "not ASCII: {text:?}");
    assert!(
        text.bytes().all(|b| (b' '..=b'~').contains(&b)),
        "control byte in {text:?}"
    );
    assert_eq!(v.to_string(), text, "Display differs from to_string");

    // Python's reader reads it back, and writing that gives the same text (Python's
    // output is a fixed point).
    let back = value::from_str(&text)
        .unwrap_or_else(|e| panic!("{v:?} written as {text:?} does not read back: {e}"));
    assert!(
        same_value(&back, &v),
        "{v:?} written as {text:?} reads back as {back:?}"
    );
    assert_eq!(value::to_string(&back), text);
    assert_eq!(
        value::from_slice(text.as_bytes()).map(|b| value::to_string(&b)),
        Ok(text.clone())
    );

    // The same through a signed value, as session data travels.
    let signer = signer(STORE_SALT);
    let mut wrapped = Map::new();
    wrapped.insert("v".into(), v.clone());
    let signed = signer.dumps(&wrapped, 0, false);
    let read = signer
        .loads(&signed, None)
        .unwrap_or_else(|e| panic!("{v:?} signed as {signed:?} does not read back: {e}"));
    assert!(
        same_value(&read.data["v"], &v),
        "{v:?} signed as {signed:?} reads back as {:?}",
        read.data["v"]
    );

    // Plain JSON unless a float is NaN or infinite.
    assert_eq!(
        has_python_special(&text),
        has_non_finite(&v),
        "{v:?} written as {text:?}"
    );

    if let Value::Object(map) = &v {
        assert_eq!(value::object_to_string(map), text);
        let m = value::object_from_str(&text)
            .unwrap_or_else(|e| panic!("object {text:?} does not read back: {e}"));
        assert!(same_map(&m, map), "{text:?} reads back as {m:?}");
    } else {
        assert!(
            value::object_from_str(&text).is_err(),
            "{text:?} read as an object"
        );
    }
});
