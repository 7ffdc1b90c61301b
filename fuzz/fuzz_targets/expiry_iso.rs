//! An arbitrary string in `_session_expiry`, through the public `Session` API.
//!
//! Input: the string (lossy UTF-8). A `Session` over the signed-cookies engine with a
//! `ManualClock` gets `_session_expiry` = the string by `insert_value`, then
//! `expiry`, `expiry_age`, `expiry_date` and `expires_at_browser_close` are asked.
//!
//! Invariants: nothing panics; a date that parses (`Expiry::AtDateTime(at)`) is the expiry
//! date, its age is the whole seconds from now to it (rounded down) and the cookie does not
//! end with the browser; any other string means the configured cookie age; setting the
//! parsed expiry again keeps the same instant; the session saves and loads back with the
//! same string (or is refused as too large for a cookie); through the middleware, the
//! `Set-Cookie` has `Max-Age` = the age and `expires` = now + the age. A string that is a JSON number is
//! also stored as that number: seconds of inactivity, 0 for "at browser close".
#![no_main]

use std::sync::{Arc, OnceLock};

use http::header::SET_COOKIE;
use sessio::cookie::http_date;

use libfuzzer_sys::fuzz_target;
use sessio::clock::ManualClock;
use sessio::signed_cookies::SignedCookieEngine;
use sessio::value::{Number, Value};
use sessio::{Config, EngineKind, Expiry, Session, SessionEngine};
use sessio_fuzz::engines::{
    block_on, config, set_expiry_through_middleware, COOKIE_NAME, EXPIRY_KEY,
};
use sessio_fuzz::{strict, COOKIE_AGE, SECRET, T};
use time::{Duration, OffsetDateTime, UtcOffset};

/// sessio's latest date: expiries past it are clamped to it.
const FAR_FUTURE: OffsetDateTime = time::macros::datetime!(9999-12-31 23:59:59 UTC);

struct Fixture {
    clock: ManualClock,
    config: Arc<Config>,
    engine: Arc<dyn SessionEngine>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let clock = ManualClock::at_unix(T);
        let config = Arc::new(config(
            SECRET,
            COOKIE_NAME,
            EngineKind::SignedCookies,
            &clock,
        ));
        assert_eq!(config.cookie_age(), COOKIE_AGE);
        let engine: Arc<dyn SessionEngine> = Arc::new(SignedCookieEngine::new(&config));
        Fixture {
            clock,
            config,
            engine,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let now = OffsetDateTime::from_unix_timestamp(T).unwrap();
    f.clock.set(now);
    let text = String::from_utf8_lossy(data).into_owned();
    block_on(async {
        let session = Session::new(f.engine.clone(), f.config.clone(), None);
        session
            .insert_value(EXPIRY_KEY, Value::String(text.clone()))
            .await
            .unwrap();
        let expiry = session.expiry().await.unwrap();
        let age = session.expiry_age().await.unwrap();
        let date = session.expiry_date().await.unwrap();
        let at_close = session.expires_at_browser_close().await.unwrap();
        assert!(
            !at_close,
            "{text:?}: a string never means 'at browser close'"
        );
        match expiry {
            Expiry::AtDateTime(at) => {
                assert_eq!(date, at, "{text:?}");
                assert_eq!(age, (at - now).as_seconds_f64().floor() as i64, "{text:?}");
                // Setting the same expiry again keeps the instant. Known issue K8: a date
                // in year 0000 with a positive offset parses, but its UTC form is in year
                // -1 and its `isoformat` does not parse back.
                let k8 = at
                    .checked_to_offset(UtcOffset::UTC)
                    .is_none_or(|utc| utc.year() < 0);
                if strict() || !k8 {
                    session.set_expiry(Expiry::AtDateTime(at)).await.unwrap();
                    match session.expiry().await.unwrap() {
                        Expiry::AtDateTime(again) => assert_eq!(again, at, "{text:?}"),
                        other => panic!("{text:?}: set_expiry({at}) reads back as {other:?}"),
                    }
                    session
                        .insert_value(EXPIRY_KEY, Value::String(text.clone()))
                        .await
                        .unwrap();
                }
            }
            Expiry::Default => {
                assert_eq!(age, COOKIE_AGE, "{text:?}");
                assert_eq!(date, now + Duration::seconds(COOKIE_AGE), "{text:?}");
            }
            other => panic!("{text:?} read as {other:?}"),
        }
        // The session saves and loads back with the same string.
        match session.save().await {
            Ok(()) => {}
            // A long string may not fit in a cookie: refused, not truncated.
            Err(sessio::Error::CookieTooLarge { size, limit, .. }) if size > limit => return,
            Err(e) => panic!("{text:?}: save failed: {e}"),
        }
        let value = session.id().expect("a saved session has a cookie value");
        let loaded = Session::new(f.engine.clone(), f.config.clone(), Some(value));
        assert_eq!(
            loaded.get_value(EXPIRY_KEY).await.unwrap(),
            Some(Value::String(text.clone()))
        );
        assert_eq!(loaded.expiry().await.unwrap(), expiry);
        check_middleware(f, now, Value::String(text.clone()), Some(age)).await;
    });
    // A string that Python's `json.loads` reads as a number is also tried as that number
    // (Django's `set_expiry(seconds)`). Not NaN: Django's `timedelta(seconds=nan)` raises
    // ValueError, so there is nothing to compare with.
    if let Ok(Value::Number(n)) = sessio::value::from_str(text.trim()) {
        if n.as_f64().is_some_and(|f| !f.is_nan()) {
            check_number(f, now, n);
        }
    }
});

fn check_number(f: &Fixture, now: OffsetDateTime, n: Number) {
    let Some(float) = n.as_f64() else {
        return;
    };
    let secs = n.as_i64().unwrap_or(float.floor() as i64);
    // Django adds `timedelta(seconds=n)` to now (OverflowError past year 9999); sessio
    // clamps the date to its far future instead.
    let exact = match n.as_i64() {
        Some(i) => now.checked_add(Duration::seconds(i)),
        None => Duration::checked_seconds_f64(float).and_then(|d| now.checked_add(d)),
    };
    block_on(async {
        let session = Session::new(f.engine.clone(), f.config.clone(), None);
        session
            .insert_value(EXPIRY_KEY, Value::Number(n.clone()))
            .await
            .unwrap();
        let expiry = session.expiry().await.unwrap();
        let age = session.expiry_age().await.unwrap();
        let date = session.expiry_date().await.unwrap();
        let at_close = session.expires_at_browser_close().await.unwrap();
        if float == 0.0 {
            assert_eq!(expiry, Expiry::OnBrowserClose, "{n}");
            assert!(at_close, "{n}");
            assert_eq!(age, COOKIE_AGE, "{n}");
            assert_eq!(date, now + Duration::seconds(COOKIE_AGE), "{n}");
        } else {
            assert_eq!(expiry, Expiry::OnInactivity(Duration::seconds(secs)), "{n}");
            assert!(!at_close, "{n}");
            assert_eq!(age, secs, "{n}");
            match exact {
                Some(t) => assert_eq!(date, t.min(FAR_FUTURE), "{n}"),
                None if float > 0.0 => assert_eq!(date, FAR_FUTURE, "{n}"),
                None => assert!(date <= now, "{n}: {date}"),
            }
        }
        let lifetime = (float != 0.0).then_some(age);
        check_middleware(f, now, Value::Number(n.clone()), lifetime).await;
    });
}

/// Through the middleware: the `Set-Cookie` has `Max-Age` = the expiry age and `expires`
/// = now + that age (at most [`FAR_FUTURE`]), or neither when the cookie ends with the
/// browser (`lifetime` None).
async fn check_middleware(f: &Fixture, now: OffsetDateTime, value: Value, lifetime: Option<i64>) {
    let res = set_expiry_through_middleware(&f.engine, &f.config, value.clone()).await;
    if res.status().is_server_error() {
        // Only a cookie too large for browsers is refused.
        assert!(res.headers().get(SET_COOKIE).is_none());
        return;
    }
    let cookie = res
        .headers()
        .get(SET_COOKIE)
        .unwrap_or_else(|| panic!("{value}: no Set-Cookie"))
        .to_str()
        .unwrap();
    match lifetime {
        Some(age) => {
            let expires = match now.checked_add(Duration::seconds(age)) {
                Some(t) => format!("; expires={};", http_date(t.min(FAR_FUTURE))),
                // Clamped (checked for the expiry date above).
                None => "; expires=".to_owned(),
            };
            assert!(
                cookie.contains(&expires),
                "{value}: {cookie:?} lacks {expires:?}"
            );
            assert!(
                cookie.contains(&format!("; Max-Age={age};")),
                "{value}: {cookie:?}"
            );
        }
        None => assert!(
            !cookie.contains("expires=") && !cookie.contains("Max-Age="),
            "{value}: {cookie:?}"
        ),
    }
}
