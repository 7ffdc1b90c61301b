//! The sessio issues the fuzz targets found (K1..K8 in `fuzz/README.md`), each reproduced
//! through sessio's public API (Django's formats through `sessio_django`). Open ones fail
//! until sessio is fixed; CI does not run them (`fuzz/` is outside the workspace):
//! `cd fuzz && cargo test --test regressions`.
//! The fuzz inputs are in `fuzz/regressions/<target>/`; `SESSIO_FUZZ_STRICT=1 bash
//! fuzz/run.sh 5` replays them without the targets' known-issue exemptions.

use std::sync::Arc;

use http::HeaderValue;
use sessio::clock::ManualClock;
use sessio::signed_cookies::SignedCookieEngine;
use sessio::{EngineKind, Session, SessionEngine};
use sessio_django::json;
use sessio_django::signing::{SIGNED_COOKIES_SALT, STORE_SALT};
use sessio_django::value::{self, Map, Value};
use sessio_fuzz::engines::{
    block_on, config, set_expiry_through_middleware, COOKIE_NAME, EXPIRY_KEY,
};
use sessio_fuzz::{same_map, signer, K6_KEY, SECRET, T};

fn session_fixture() -> (Arc<dyn SessionEngine>, Arc<sessio::Config>) {
    let clock = ManualClock::at_unix(T);
    let config = Arc::new(config(
        SECRET,
        COOKIE_NAME,
        EngineKind::SignedCookies,
        &clock,
    ));
    let engine: Arc<dyn SessionEngine> = Arc::new(SignedCookieEngine::new(&config));
    (engine, config)
}

/// K1 (fixed in a19d400 and 399cc66): a number such as `1e400` (valid JSON; Python reads
/// it as `inf`) was written as nothing, then as `Infinity`, which sessio could not read
/// back: a session holding it was lost after its next save. Now written `Infinity` and read
/// back (as Django's `float("inf")` sessions are). sessio-django reads `1e400` as Python
/// does, as the float `inf` (serde_json's `arbitrary_precision` kept the text `1e400`, whose
/// `as_f64` was `None`), and writes it `Infinity`.
#[test]
fn k1_python_json_output_for_a_number_past_f64_reads_back() {
    let value = value::from_str(r#"{"a":1e400}"#).unwrap();
    assert_eq!(value["a"].as_f64(), Some(f64::INFINITY));
    let text = value::to_string(&value);
    assert_eq!(text, r#"{"a":Infinity}"#);
    let s = signer(STORE_SALT);
    let saved = s.dumps(value.as_object().unwrap(), T, false);
    let read = s.loads(&saved, None).expect("reads back");
    assert_eq!(
        read.data["a"].as_f64(),
        Some(f64::INFINITY),
        "still infinite: {:?}",
        read.data
    );
    assert_eq!(value::object_to_string(&read.data), text);
}

/// K1 as the db engines meet it: stored data that decodes, re-saved, no longer decodes.
#[test]
fn k1_store_data_with_1e400_is_lost_on_the_next_save() {
    let store = signer(STORE_SALT);
    let payload = "eyJhIjoxZTQwMH0:1r31eq"; // base64url of {"a":1e400}, then the timestamp
    let signed = format!("{payload}:{}", store.signature(payload));
    let loaded = store.loads(&signed, None).expect("verifies and decodes");
    let saved = store.dumps(&loaded.data, loaded.timestamp, true);
    assert!(store.loads(&saved, None).is_ok(), "re-saved as {saved:?}");
}

/// K2 (fixed in a19d400): `_session_expiry` = a date whose UTC form is past 9999-12-31;
/// `set_expiry` of the expiry read back panicked in `expiry::isoformat` (`to_offset`).
#[test]
fn k2_set_expiry_of_a_date_past_9999_in_utc_panics() {
    let (engine, config) = session_fixture();
    block_on(async {
        let session = Session::new(engine, config, None);
        session
            .insert_value(EXPIRY_KEY, json!("9999-12-31T23:59:59-01:00"))
            .await
            .unwrap();
        let expiry = session.expiry().await.unwrap();
        session.set_expiry(expiry).await.unwrap();
    });
}

/// K2 in the middleware (fixed in a19d400): the same string makes every response panic (`cookie_lifetime`:
/// now + age is past 9999).
#[test]
fn k2_middleware_with_a_date_past_9999_in_utc_panics() {
    let (engine, config) = session_fixture();
    let res = block_on(set_expiry_through_middleware(
        &engine,
        &config,
        json!("9999-12-31T23:59:59-01:00"),
    ));
    assert!(res.headers().get(http::header::SET_COOKIE).is_some());
}

/// K3 (fixed in a19d400): `cookie::find` unquotes an octal escape above `\177` as a raw byte and then reads
/// lossy UTF-8; Python's `_unquote` (which the docs cite) gives `chr(0o377)`.
#[test]
fn k3_cookie_octal_escape_above_177() {
    let h = [HeaderValue::from_static(r#"sessionid="\377""#)];
    assert_eq!(
        sessio::cookie::find(h.iter(), "sessionid").as_deref(),
        Some("\u{ff}")
    );
    let h = [HeaderValue::from_static(r#"sessionid="\303\251""#)];
    assert_eq!(
        sessio::cookie::find(h.iter(), "sessionid").as_deref(),
        Some("\u{c3}\u{a9}")
    );
}

/// K4 (fixed in a19d400; dates clamp to 9999-12-31): `_session_expiry` = seconds past the representable range: `expiry_date` panics
/// (`Duration::seconds_f64` overflow for 1e300; `OffsetDateTime + Duration` for 10**12,
/// year ~33700). Django raises OverflowError there; sessio should return an error or
/// clamp, not panic.
#[test]
fn k4_expiry_date_of_1e300_seconds_panics() {
    let (engine, config) = session_fixture();
    block_on(async {
        let session = Session::new(engine, config, None);
        session
            .insert_value(EXPIRY_KEY, json!(1e300))
            .await
            .unwrap();
        let _ = session.expiry_date().await;
    });
}

#[test]
fn k4_expiry_date_of_10e12_seconds_panics() {
    let (engine, config) = session_fixture();
    block_on(async {
        let session = Session::new(engine, config, None);
        session
            .insert_value(EXPIRY_KEY, json!(1_000_000_000_000i64))
            .await
            .unwrap();
        let _ = session.expiry_date().await;
    });
}

/// K4 in the middleware (fixed in a19d400): the response panics (`cookie_lifetime`).
#[test]
fn k4_middleware_with_10e12_seconds_panics() {
    let (engine, config) = session_fixture();
    let res = block_on(set_expiry_through_middleware(
        &engine,
        &config,
        json!(1_000_000_000_000i64),
    ));
    let _ = res.status();
}

/// K5 (fixed in a19d400): `b62_decode` cannot read `b62_encode(i64::MIN)`, so `dumps` at that timestamp gives a
/// value `loads` refuses (BadTimestamp). Minor: no clock says i64::MIN.
#[test]
fn k5_dumps_at_i64_min_does_not_load() {
    let s = signer(SIGNED_COOKIES_SALT);
    let value = s.dumps(&Map::new(), i64::MIN, true);
    assert!(s.loads(&value, None).is_ok(), "{value:?}");
    assert_eq!(
        sessio_django::signing::b62_decode(&sessio_django::signing::b62_encode(i64::MIN)),
        Some(i64::MIN)
    );
}

/// K6 (fixed: session data is sessio-django's `Value`, and sessio no longer turns on
/// serde_json's `arbitrary_precision`): with that feature, an object whose first key is
/// `$serde_json::private::Number` was read as a number: such data (a key an app may take
/// from user input; Django stores it fine) was saved, then refused on the next load. The
/// targets now assert that such data round-trips (`signed_roundtrip` wraps every input in
/// that key; the generators pick it as a key often).
fn k6_round_trip(data: Value) {
    let s = signer(SIGNED_COOKIES_SALT);
    let data = data.as_object().unwrap();
    let value = s.dumps(data, T, false);
    let loaded = s.loads(&value, None);
    assert_eq!(loaded.map(|u| u.data).as_ref(), Ok(data), "{value:?}");
}

#[test]
fn k6_serde_number_token_first_key_round_trips() {
    k6_round_trip(json!({"$serde_json::private::Number": 1, "b": 2}));
}

#[test]
fn k6_serde_number_token_nested_key_round_trips() {
    k6_round_trip(json!({"prefs": {"$serde_json::private::Number": "x"}}));
}

/// K6 the other way (fixed): Django's data `{"x": {"$serde_json::private::Number": "5"}}`
/// was read as `{"x": 5}`.
#[test]
fn k6_serde_number_token_object_is_not_read_as_a_number() {
    let s = signer(SIGNED_COOKIES_SALT);
    let payload = "eyJ4Ijp7IiRzZXJkZV9qc29uOjpwcml2YXRlOjpOdW1iZXIiOiI1In19:1r31eq";
    let signed = format!("{payload}:{}", s.signature(payload));
    let loaded = s.loads(&signed, None).map(|u| Value::Object(u.data));
    assert_eq!(
        loaded,
        Ok(json!({"x": {"$serde_json::private::Number": "5"}}))
    );
}

/// K6 through the writer too: the key is written as any other, in its place.
#[test]
fn k6_serde_number_token_key_is_written_as_any_key() {
    let data = json!({K6_KEY: 1, "b": {K6_KEY: [2]}});
    let text = value::to_string(&data);
    assert_eq!(
        text,
        r#"{"$serde_json::private::Number":1,"b":{"$serde_json::private::Number":[2]}}"#
    );
    assert_eq!(value::from_str(&text).unwrap(), data);
}

/// Not an issue, a change the fuzz targets rely on: while sessio read session data with
/// serde_json, a float could not be NaN (the generator turned NaN into `null`) and `-0`
/// was kept as the text `-0`. Now numbers are Python's: `NaN` reads back as NaN (and is
/// written `NaN`), `-0` is read as the integer 0 (as `json.loads("-0")` is), `-0.0` stays
/// the float -0.0, and integers of any size are exact.
#[test]
fn python_numbers_round_trip_as_python_reads_them() {
    let s = signer(SIGNED_COOKIES_SALT);
    let data = value::object_from_str(
        r#"{"nan":NaN,"inf":-Infinity,"zero":-0,"negzero":-0.0,"big":-123456789012345678901234567890,"e":1E5}"#,
    )
    .unwrap();
    assert!(data["nan"].as_f64().unwrap().is_nan());
    assert_eq!(data["zero"], json!(0));
    assert!(data["zero"].is_u64());
    assert!(data["negzero"].as_f64().unwrap().is_sign_negative());
    assert_eq!(data["e"], json!(100000.0));
    let text = value::object_to_string(&data);
    assert_eq!(
        text,
        r#"{"nan":NaN,"inf":-Infinity,"zero":0,"negzero":-0.0,"big":-123456789012345678901234567890,"e":100000.0}"#
    );
    let loaded = s.loads(&s.dumps(&data, T, true), None).unwrap().data;
    // NaN != NaN for `==`; `same_map` takes every NaN as equal, as Python's output does.
    assert!(same_map(&loaded, &data), "{loaded:?}");
    assert!(loaded["nan"].as_f64().unwrap().is_nan());
    assert_eq!(value::object_to_string(&loaded), text);
}

/// K7 (fixed in 399cc66: signed years are refused): `parse_iso` read a negative year (`-2023-11-15T22:13:20`, which Python's
/// `fromisoformat` refuses), but `isoformat` of it did not parse back:
/// `set_expiry(session.expiry())` turned the date into the default expiry.
#[test]
fn k7_negative_year_expiry_round_trips() {
    let (engine, config) = session_fixture();
    block_on(async {
        let session = Session::new(engine, config, None);
        session
            .insert_value(EXPIRY_KEY, json!("-2023-11-15T22:13:20"))
            .await
            .unwrap();
        let expiry = session.expiry().await.unwrap();
        session.set_expiry(expiry).await.unwrap();
        assert_eq!(session.expiry().await.unwrap(), expiry);
    });
}

/// K8: a date in year 0000 (Python's `fromisoformat` refuses year 0) with a positive offset
/// parses; its UTC form is in year -1, and `isoformat` of it (`-0001-12-31T00:01:00+00:00`)
/// does not parse back: `set_expiry(session.expiry())` silently drops the date.
#[test]
fn k8_year_0000_with_positive_offset_round_trips() {
    let (engine, config) = session_fixture();
    block_on(async {
        let session = Session::new(engine, config, None);
        session
            .insert_value(EXPIRY_KEY, json!("0000-01-01T00:00:00+23:59"))
            .await
            .unwrap();
        let expiry = session.expiry().await.unwrap();
        session.set_expiry(expiry).await.unwrap();
        assert_eq!(session.expiry().await.unwrap(), expiry);
    });
}
