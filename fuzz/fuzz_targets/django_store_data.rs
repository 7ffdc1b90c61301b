//! `session_data` of Django's db, cached_db and file engines: arbitrary text decoded with
//! the store salt and no maximum age, as `sessio`'s server engines decode it. Uses
//! `sessio_django` alone.
//!
//! Input: a mode byte, then the text. Mode 0: the text is the stored value. Mode 1 / 2: the
//! text is `payload:timestamp`, signed here with the current / fallback key, so the
//! decoding past the signature is fuzzed.
//!
//! Invariants: no panic; the timestamp never matters (a value decodes the same at any
//! time); the real values of `django-vectors.json` decode to the data Django stored; any
//! value that decodes re-encodes to one that decodes to the same data.
#![no_main]

use std::collections::HashMap;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sessio_django::signing::{Signer, SigningError, SIGNED_COOKIES_SALT, STORE_SALT};
use sessio_django::value::{self, Map};
use sessio_fuzz::{assert_reencodes, same_loaded, same_map, signer, OLD_SECRET};

/// `session_data` → the data Django stored, from the vectors.
fn django_values() -> &'static HashMap<String, Map> {
    static V: OnceLock<HashMap<String, Map>> = OnceLock::new();
    V.get_or_init(|| {
        let vectors = value::from_str(include_str!(
            "../../crates/sessio/tests/data/django-vectors.json"
        ))
        .expect("django-vectors.json");
        let cases = vectors["db_session_data"]
            .as_object()
            .expect("db_session_data");
        let map: HashMap<_, _> = cases
            .values()
            .filter_map(|c| {
                Some((
                    c["session_data"].as_str()?.to_owned(),
                    c["input"].as_object()?.clone(),
                ))
            })
            .collect();
        assert!(!map.is_empty());
        map
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let store = signer(STORE_SALT);
    let input = match mode % 3 {
        0 => text.to_string(),
        1 => format!("{text}:{}", store.signature(&text)),
        _ => format!(
            "{text}:{}",
            Signer::new(OLD_SECRET.as_bytes(), &[], STORE_SALT).signature(&text)
        ),
    };
    let got = store.loads(&input, None);
    if let Some(want) = django_values().get(&input) {
        let got = got
            .as_ref()
            .unwrap_or_else(|e| panic!("Django's {input:?}: {e}"));
        assert!(
            same_map(&got.data, want),
            "Django's {input:?} decoded as {:?}",
            got.data
        );
    }
    // No maximum age: the stored timestamp is never checked.
    for now in [0.0, 1.7e9, 4.1e9] {
        let at = store.loads_at(&input, Some((now, i64::MAX)));
        assert!(
            same_loaded(&at, &got),
            "{input:?} decodes differently at {now}: {at:?}, not {got:?}"
        );
    }
    match &got {
        Ok(ok) => {
            assert_reencodes(&store, &input, ok);
            assert_eq!(
                signer(SIGNED_COOKIES_SALT).loads(&input, None).err(),
                Some(SigningError::BadSignature),
                "store data accepted as a cookie: {input:?}"
            );
        }
        Err(SigningError::BadSignature) => assert_eq!(mode % 3, 0, "our own signature refused"),
        Err(_) => {}
    }
});
