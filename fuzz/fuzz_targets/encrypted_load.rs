//! The encrypted-cookies engine on arbitrary cookie values, and seal/open round trips.
//!
//! Input: a mode byte, then
//! * even mode: the rest is a cookie value. `load_session` never panics and returns data
//!   only for the real sealed values of `seeds/encrypted_sealed.json` (then exactly their
//!   data, and `stale_key` for the one sealed with the fallback key); every other value is
//!   `Ok(None)`. An engine for another cookie name refuses even those;
//! * odd mode: the rest is read as session data (NaN, big integers and keys such as
//!   `$serde_json::private::Number` included) and an expiry offset; `create` seals it to
//!   a base64url value that loads back as exactly that data while it lives, and as
//!   `Ok(None)` once expired or under another cookie name.
#![no_main]

use std::collections::HashMap;
use std::sync::OnceLock;

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use sessio::clock::{Clock, ManualClock};
use sessio::encrypted_cookies::EncryptedCookieEngine;
use sessio::value::Map;
use sessio::{EngineKind, LoadedSession, SessionEngine};
use sessio_fuzz::engines::{block_on, config, sealed_seeds, COOKIE_NAME};
use sessio_fuzz::{arb_map, same_map, SECRET, T};
use time::{Duration, OffsetDateTime};

/// The engine refuses longer values before decoding (`MAX_VALUE_LEN`, private).
const MAX_VALUE_LEN: usize = 16 * 1024;

struct Fixture {
    clock: ManualClock,
    engine: EncryptedCookieEngine,
    other_name: EncryptedCookieEngine,
    seeds: HashMap<String, (Map, bool)>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let clock = ManualClock::at_unix(T);
        let make = |name| {
            EncryptedCookieEngine::new(&config(SECRET, name, EngineKind::EncryptedCookies, &clock))
        };
        let seeds = sealed_seeds()
            .into_iter()
            .map(|(v, d, stale)| (v, (d, stale)))
            .collect::<HashMap<_, _>>();
        assert!(!seeds.is_empty(), "no sealed seeds");
        Fixture {
            engine: make(COOKIE_NAME),
            other_name: make("othercookie"),
            clock,
            seeds,
        }
    })
}

/// `got` holds exactly `data` (NaN equal to NaN, key order kept) and `stale_key`.
fn is_loaded(got: &Option<LoadedSession>, data: &Map, stale_key: bool) -> bool {
    got.as_ref()
        .is_some_and(|g| same_map(&g.data, data) && g.stale_key == stale_key && g.version.is_none())
}

fn load(engine: &EncryptedCookieEngine, value: &str) -> Option<LoadedSession> {
    block_on(engine.load_session(value)).expect("load_session never errs on cookie engines")
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let now = OffsetDateTime::from_unix_timestamp(T).unwrap();
    f.clock.set(now);
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        let value = String::from_utf8_lossy(rest);
        let got = load(&f.engine, &value);
        match f.seeds.get(value.as_ref()) {
            Some((data, stale)) => assert!(
                is_loaded(&got, data, *stale),
                "seed {value:?} loaded as {got:?}"
            ),
            None => assert_eq!(got, None, "{value:?} was not sealed by the engine"),
        }
        assert_eq!(
            load(&f.other_name, &value),
            None,
            "{value:?} under another name"
        );
        return;
    }

    let mut u = Unstructured::new(rest);
    let Ok(session) = arb_map(&mut u) else {
        return;
    };
    let secs: i64 = u.int_in_range(-86_400..=100 * 365 * 86_400).unwrap_or(3600);
    let expires = now + Duration::seconds(secs);
    let value = block_on(f.engine.create(&session, expires)).expect("seal");
    assert!(
        value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "not base64url: {value:?}"
    );
    let got = load(&f.engine, &value);
    if secs > 0 && value.len() <= MAX_VALUE_LEN {
        assert!(
            is_loaded(&got, &session, false),
            "sealed {session:?} as {value:?}, loaded as {got:?}"
        );
    } else {
        assert_eq!(got, None, "expired or oversized {value:?} loaded");
    }
    assert_eq!(load(&f.other_name, &value), None);
    // Random nonces: sealing again gives another value.
    let again = block_on(f.engine.create(&session, expires)).expect("seal");
    assert_ne!(again, value);
    // The expiry inside the payload is enforced.
    f.clock.set(expires);
    assert_eq!(f.clock.now(), expires);
    assert_eq!(
        load(&f.engine, &value),
        None,
        "{value:?} loaded at its expiry"
    );
});
