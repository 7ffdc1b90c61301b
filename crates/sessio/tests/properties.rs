//! Properties that hold for any input (proptest): encoders round-trip, decoders never
//! panic, and nothing a client sends can crash the middleware.

use proptest::prelude::*;
use sessio::signing::{Signer, SIGNED_COOKIES_SALT};
use sessio::{value::Map, Value};

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        // Finite floats: NaN never equals itself (Python writes and reads it, as sessio does).
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((any::<String>(), inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn session_data() -> impl Strategy<Value = Map> {
    prop::collection::vec((any::<String>(), json_value()), 0..10)
        .prop_map(|kv| kv.into_iter().collect())
}

/// Floats compare by value after a text round trip; everything else exactly.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(p), Some(q)) if !(x.is_i64() || x.is_u64()) => p == q,
            _ => x.to_string() == y.to_string(),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|((k, p), (l, q))| k == l && same(p, q))
        }
        _ => a == b,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn python_json_is_ascii_and_parses_back(v in json_value()) {
        let text = sessio::value::to_string(&v);
        prop_assert!(text.is_ascii());
        let back: Value = sessio::value::from_str(&text).unwrap();
        prop_assert!(same(&v, &back), "{text}");
    }

    #[test]
    fn signed_values_round_trip(data in session_data(), ts in 0i64..4_000_000_000, compress in any::<bool>()) {
        let signer = Signer::new(b"property-secret", &[b"old"], SIGNED_COOKIES_SALT);
        let value = signer.dumps(&data, ts, compress);
        let back = signer.loads(&value, None).unwrap();
        prop_assert_eq!(back.timestamp, ts);
        prop_assert_eq!(back.key_index, 0);
        prop_assert!(same(&Value::Object(data), &Value::Object(back.data)));
        // Cookie-safe characters only: no quoting, no separators.
        prop_assert!(value.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_:.".contains(&b)));
    }

    #[test]
    fn decoders_never_panic_on_garbage(s in ".{0,300}") {
        let signer = Signer::new(b"k", &[], SIGNED_COOKIES_SALT);
        let _ = signer.loads(&s, Some((1_700_000_000, 10)));
        let _ = signer.unsign(&s);
        let _ = sessio::signing::b62_decode(&s);
    }

    #[test]
    fn cookie_headers_never_panic(s in prop::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(h) = http::HeaderValue::from_bytes(&s) {
            let _ = sessio::cookie::find(std::iter::once(&h), "sessionid");
        }
    }

    #[test]
    fn tampered_values_are_refused(data in session_data(), pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let signer = Signer::new(b"property-secret", &[], SIGNED_COOKIES_SALT);
        let value = signer.dumps(&data, 1_700_000_000, true);
        let mut bytes = value.clone().into_bytes();
        let i = pos.index(bytes.len());
        prop_assume!(bytes[i] != byte);
        bytes[i] = byte;
        if let Ok(tampered) = String::from_utf8(bytes) {
            // A change the base64 decoder folds away (a trailing bit) may verify; then the
            // data must be unchanged.
            if let Ok(u) = signer.loads(&tampered, None) {
                prop_assert!(same(&Value::Object(u.data), &Value::Object(data)));
            }
        }
    }
}
