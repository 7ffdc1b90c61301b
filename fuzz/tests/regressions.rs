//! The sessio issues the fuzz targets found (K1..K5 in `fuzz/README.md`), each reproduced
//! through sessio's public API. They fail until sessio is fixed; CI does not run them
//! (`fuzz/` is outside the workspace): `cd fuzz && cargo test --test regressions`.
//! The fuzz inputs are in `fuzz/regressions/<target>/`; `SESSIO_FUZZ_STRICT=1 bash
//! fuzz/run.sh 5` replays them without the targets' known-issue exemptions.

use std::sync::Arc;

use http::HeaderValue;
use serde_json::{json, Value};
use sessio::clock::ManualClock;
use sessio::signed_cookies::SignedCookieEngine;
use sessio::signing::{SIGNED_COOKIES_SALT, STORE_SALT};
use sessio::{pyjson, EngineKind, Expiry, Session, SessionEngine};
use sessio_fuzz::{
    block_on, config, set_expiry_through_middleware, signer, COOKIE_NAME, EXPIRY_KEY, SECRET, T,
};

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

/// K1: a number such as `1e400` (valid JSON; Python reads it as `inf`) is written as
/// nothing, so a session holding it verifies and loads, but once saved no longer loads.
#[test]
fn k1_pyjson_writes_a_number_past_f64_as_nothing() {
    let value: Value = serde_json::from_str(r#"{"a":1e400}"#).unwrap();
    let text = pyjson::value_to_string(&value);
    assert!(
        serde_json::from_str::<Value>(&text).is_ok(),
        "{{\"a\":1e400}} written as {text:?}"
    );
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

/// K2: `_session_expiry` = a date whose UTC form is past 9999-12-31 (Python's
/// `fromisoformat` reads it; Django stores `isoformat()` as given). `set_expiry` of the
/// expiry read back panics in `expiry::isoformat` (`to_offset`).
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
        assert!(matches!(expiry, Expiry::AtDateTime(_)));
        session.set_expiry(expiry).await.unwrap();
    });
}

/// K2 in the middleware: the same string makes every response panic (`cookie_lifetime`:
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

/// K3: `cookie::find` unquotes an octal escape above `\177` as a raw byte and then reads
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

/// K4: `_session_expiry` = seconds past the representable range: `expiry_date` panics
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

/// K4 in the middleware: the response panics (`cookie_lifetime`).
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

/// K5: `b62_decode` cannot read `b62_encode(i64::MIN)`, so `dumps` at that timestamp gives a
/// value `loads` refuses (BadTimestamp). Minor: no clock says i64::MIN.
#[test]
fn k5_dumps_at_i64_min_does_not_load() {
    let s = signer(SIGNED_COOKIES_SALT);
    let value = s.dumps(&serde_json::Map::new(), i64::MIN, true);
    assert!(s.loads(&value, None).is_ok(), "{value:?}");
    assert_eq!(
        sessio::signing::b62_decode(&sessio::signing::b62_encode(i64::MIN)),
        Some(i64::MIN)
    );
}
