//! Makes `seeds/encrypted_sealed.json` and the encrypted_load seed corpus: real values
//! sealed by the engine (random nonces, so they are made once and committed).
//!
//! `cargo test --test seeds -- --ignored` in `fuzz/` writes them again.

use serde_json::{json, Value};
use sessio::clock::ManualClock;
use sessio::encrypted_cookies::EncryptedCookieEngine;
use sessio::{EngineKind, SessionEngine};
use sessio_fuzz::{block_on, config, COOKIE_NAME, OLD_SECRET, SECRET, T};
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
    std::fs::write(
        concat!(env!("CARGO_MANIFEST_DIR"), "/seeds/encrypted_sealed.json"),
        serde_json::to_string_pretty(&Value::Array(out)).unwrap() + "\n",
    )
    .unwrap();
}

fn clock_now(clock: &ManualClock) -> time::OffsetDateTime {
    use sessio::clock::Clock;
    clock.now()
}
