//! Every signed value in `django-vectors.json` (made by real Django 5.2 at T = 1700000000
//! with SECRET_KEY = "test-secret"): sessio decodes it, and encodes the same input to the
//! same bytes.

use sessio::signing::{Signer, SIGNED_COOKIES_SALT, STORE_SALT};
use sessio::Value;

const T: i64 = 1_700_000_000;

fn vectors() -> Value {
    sessio::value::from_str(include_str!("data/django-vectors.json")).unwrap()
}

fn check_cases(section: &str, field: &str, salt: &str, max_age: Option<(i64, i64)>) {
    let v = vectors();
    let signer = Signer::new(b"test-secret", &[], salt);
    let cases = v[section].as_object().unwrap();
    assert!(cases.len() >= 8);
    for (name, case) in cases {
        let value = case[field].as_str().unwrap();
        let input = case["input"].as_object().unwrap();
        let loaded = signer
            .loads(value, max_age)
            .unwrap_or_else(|e| panic!("{section}.{name}: {e}"));
        assert_eq!(&loaded.data, input, "{section}.{name} decodes");
        assert_eq!(loaded.timestamp, T);
        assert_eq!(
            signer.dumps(input, T, true),
            value,
            "{section}.{name} encodes byte for byte"
        );
    }
}

#[test]
fn signed_cookie_vectors() {
    check_cases(
        "signed_cookies",
        "cookie_value",
        SIGNED_COOKIES_SALT,
        Some((T, 1_209_600)),
    );
}

#[test]
fn db_session_data_vectors() {
    check_cases("db_session_data", "session_data", STORE_SALT, None);
}

#[test]
fn negative_cases() {
    let v = vectors();
    let n = &v["negative_cases"];
    let cookies = Signer::new(b"test-secret", &[], SIGNED_COOKIES_SALT);
    let store = Signer::new(b"test-secret", &[], STORE_SALT);
    let basic = v["signed_cookies"]["basic"]["cookie_value"]
        .as_str()
        .unwrap();
    let age = 1_209_600;
    assert!(cookies.loads(basic, Some((T + age, age))).is_ok());
    assert!(cookies.loads(basic, Some((T + age + 1, age))).is_err());
    for (case, signer) in [
        ("tampered_signature_cookie", &cookies),
        ("db_data_presented_as_cookie(wrong salt)", &cookies),
    ] {
        let value = n[case]["cookie_value"].as_str().unwrap();
        assert!(signer.loads(value, None).is_err(), "{case}");
    }
    let value = n["cookie_presented_as_db_data(wrong salt)"]["session_data"]
        .as_str()
        .unwrap();
    assert!(store.loads(value, None).is_err());
}

#[test]
fn key_rotation() {
    let v = vectors();
    let k = &v["key_rotation"];
    let cookies = Signer::new(b"test-secret", &[b"old-secret"], SIGNED_COOKIES_SALT);
    let loaded = cookies
        .loads(k["cookie_value"].as_str().unwrap(), None)
        .unwrap();
    assert_eq!(loaded.key_index, 1, "verified by the fallback key");
    let store = Signer::new(b"test-secret", &[b"old-secret"], STORE_SALT);
    assert!(store
        .loads(k["db_session_data"].as_str().unwrap(), None)
        .is_ok());
    // Without the fallback the old value is refused.
    let strict = Signer::new(b"test-secret", &[], SIGNED_COOKIES_SALT);
    assert!(strict
        .loads(k["cookie_value"].as_str().unwrap(), None)
        .is_err());
}
