//! `dumps` then `loads` on arbitrary session data.
//!
//! Input: arbitrary bytes, read as a JSON object (nested values, big integers, NaN and
//! infinities, number texts such as `1E5`, any Unicode in keys and strings, and often the
//! key `$serde_json::private::Number`), a timestamp, and whether to compress. Uses
//! `sessio_django` alone.
//!
//! Invariants: the signed value is ASCII and cookie-safe (base64url, `.`, `:`, `-`); it
//! verifies under the same salt at the same timestamp, with the current key, and decodes to
//! the same data (floats compared by value, NaN equal to NaN); it does not verify under
//! the other salt. K6 (fixed): the same data under the key `$serde_json::private::Number`
//! (which serde_json's `arbitrary_precision` read as a number) round-trips too.
#![no_main]

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use sessio_django::signing::{SigningError, SIGNED_COOKIES_SALT, STORE_SALT};
use sessio_django::value::{Map, Value};
use sessio_fuzz::{arb_map, is_cookie_safe, same_map, signer, K6_KEY};

fuzz_target!(|bytes: &[u8]| {
    let mut u = Unstructured::new(bytes);
    let Ok(data) = arb_map(&mut u) else {
        return;
    };
    let timestamp: i64 = u.arbitrary().unwrap_or(1_700_000_000);
    let compress: bool = u.arbitrary().unwrap_or(true);
    let salt_index = usize::from(u.arbitrary::<bool>().unwrap_or(false));
    let salts = [SIGNED_COOKIES_SALT, STORE_SALT];
    let signer_ = signer(salts[salt_index]);
    let other = signer(salts[1 - salt_index]);

    let value = signer_.dumps(&data, timestamp, compress);
    assert!(is_cookie_safe(&value), "not cookie-safe: {value:?}");
    let loaded = signer_
        .loads(&value, None)
        .unwrap_or_else(|e| panic!("dumps({data:?}, {timestamp}) = {value:?} does not load: {e}"));
    assert_eq!(loaded.timestamp, timestamp, "{value:?}");
    assert_eq!(loaded.key_index, 0);
    assert!(
        same_map(&loaded.data, &data),
        "dumps({data:?}) = {value:?} loads as {:?}",
        loaded.data
    );
    // Zero age at the signing time passes the age check.
    let aged = signer_.loads_at(&value, Some((timestamp as f64, 0)));
    assert!(aged.is_ok(), "{value:?} at its own timestamp: {aged:?}");
    assert_eq!(
        other.loads(&value, None).err(),
        Some(SigningError::BadSignature)
    );
    // K6: data whose first key is serde_json's number token round-trips like any other.
    let mut k6 = Map::new();
    k6.insert(K6_KEY.to_owned(), Value::Object(data.clone()));
    let value = signer_.dumps(&k6, timestamp, compress);
    let loaded = signer_
        .loads(&value, None)
        .unwrap_or_else(|e| panic!("K6: dumps({k6:?}) = {value:?} does not load: {e}"));
    assert!(
        same_map(&loaded.data, &k6),
        "K6: dumps({k6:?}) = {value:?} loads as {:?}",
        loaded.data
    );
});
