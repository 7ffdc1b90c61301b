//! Makes `seeds/encrypted_sealed.json` and the encrypted_load seed corpus: real values
//! sealed by the engine (random nonces, so they are made once and committed).
//!
//! `cargo test --test seeds -- --ignored` in `fuzz/` writes them again.

use sessio::clock::ManualClock;
use sessio::encrypted_cookies::EncryptedCookieEngine;
use sessio::value::{self, Value};
use sessio::{json, EngineKind, SessionEngine};
use sessio_fuzz::engines::{block_on, config, sealed_seeds, COOKIE_NAME};
use sessio_fuzz::{same_map, OLD_SECRET, SECRET, T};
use time::Duration;

#[test]
#[ignore = "writes the seed files"]
fn write_encrypted_seeds() {
    let clock = ManualClock::at_unix(T);
    let current = EncryptedCookieEngine::new(&config(
        SECRET,
        COOKIE_NAME,
        EngineKind::EncryptedCookies,
        &clock,
    ));
    let old = EncryptedCookieEngine::new(&config(
        OLD_SECRET,
        COOKIE_NAME,
        EngineKind::EncryptedCookies,
        &clock,
    ));
    let far = clock_now(&clock) + Duration::days(365 * 100);
    let datas = [
        json!({}),
        json!({"user_id": 42, "cart": [1, 2]}),
        json!({"_auth_user_id": "1", "_auth_user_backend": "django.contrib.auth.backends.ModelBackend", "_auth_user_hash": "abc", "_session_expiry": "2023-11-15T22:13:20+00:00"}),
        json!({"name": "Zoë \u{1F600}", "n": 1e16, "big": 123456789012345678901234567890u128.to_string(), "nested": {"a": [null, true, -0.0]}}),
    ];
    let mut out = Vec::new();
    for (i, data) in datas.iter().enumerate() {
        let data = data.as_object().unwrap();
        let (engine, stale) = if i == 1 {
            (&old, true)
        } else {
            (&current, false)
        };
        let value = block_on(engine.create(data, far)).unwrap();
        out.push(json!({"value": value, "data": data, "stale_key": stale}));
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/corpus/encrypted_load");
        std::fs::create_dir_all(dir).unwrap();
        // Mode byte 0: the rest is a cookie value.
        std::fs::write(format!("{dir}/sealed-{i}"), format!("\0{value}")).unwrap();
    }
    let mut text = String::new();
    pretty(&Value::Array(out), 0, &mut text);
    text.push('\n');
    std::fs::write(
        concat!(env!("CARGO_MANIFEST_DIR"), "/seeds/encrypted_sealed.json"),
        text,
    )
    .unwrap();
}

/// The seeds file is read by sessio-django's reader: it still holds the data it was made
/// with, and the sealed values open to it.
#[test]
fn encrypted_seeds_open_to_their_data() {
    let clock = ManualClock::at_unix(T);
    let engine = EncryptedCookieEngine::new(&config(
        SECRET,
        COOKIE_NAME,
        EngineKind::EncryptedCookies,
        &clock,
    ));
    let seeds = sealed_seeds();
    assert_eq!(seeds.len(), 4);
    for (sealed, data, stale) in seeds {
        let got = block_on(engine.load_session(&sealed))
            .unwrap()
            .unwrap_or_else(|| panic!("{sealed:?} does not open"));
        assert!(same_map(&got.data, &data), "{sealed:?}: {:?}", got.data);
        assert_eq!(got.stale_key, stale);
    }
}

/// JSON text indented by two spaces, each scalar as Python's `json.dumps` writes it.
fn pretty(v: &Value, indent: usize, out: &mut String) {
    let pad = |n: usize| "  ".repeat(n);
    match v {
        Value::Array(items) if !items.is_empty() => {
            out.push_str("[\n");
            for (i, item) in items.iter().enumerate() {
                out.push_str(&pad(indent + 1));
                pretty(item, indent + 1, out);
                out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
            }
            out.push_str(&pad(indent));
            out.push(']');
        }
        Value::Object(map) if !map.is_empty() => {
            out.push_str("{\n");
            for (i, (k, item)) in map.iter().enumerate() {
                out.push_str(&pad(indent + 1));
                out.push_str(&value::to_string(&Value::from(k.as_str())));
                out.push_str(": ");
                pretty(item, indent + 1, out);
                out.push_str(if i + 1 < map.len() { ",\n" } else { "\n" });
            }
            out.push_str(&pad(indent));
            out.push('}');
        }
        _ => out.push_str(&value::to_string(v)),
    }
}

fn clock_now(clock: &ManualClock) -> time::OffsetDateTime {
    use sessio::clock::Clock;
    clock.now()
}
