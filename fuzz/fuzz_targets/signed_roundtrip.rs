//! `dumps` then `loads` on arbitrary session data.
//!
//! Input: arbitrary bytes, read as a JSON object (nested values, big integers, number
//! texts such as `1E5`, any Unicode in keys and strings), a timestamp, and whether to
//! compress.
//!
//! Invariants: the signed value is ASCII and cookie-safe (base64url, `.`, `:`, `-`); it
//! verifies under the same salt at the same timestamp, with the current key, and decodes to
//! the same data (floats compared by value); it does not verify under the other salt.
#![no_main]

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use sessio::signing::{SigningError, SIGNED_COOKIES_SALT, STORE_SALT};
use sessio_fuzz::{arb_map, is_cookie_safe, same_map, signer, skip_known};

fuzz_target!(|bytes: &[u8]| {
    let mut u = Unstructured::new(bytes);
    let Ok(data) = arb_map(&mut u) else {
        return;
    };
    if skip_known(&data) {
        return;
    }
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
});
