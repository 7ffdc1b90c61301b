//! `Signer::loads` / `loads_at` on arbitrary strings, with the signed-cookies and the store
//! salts.
//!
//! Input: a mode byte, then the text.
//! * mode 0: the text is the whole signed value (as a cookie would bring it);
//! * mode 1: the text is `payload:timestamp`, signed here with the current key, so the
//!   decoding after the signature check (base62, base64, zlib, JSON) is fuzzed too;
//! * mode 2: as 1, signed with the fallback key.
//!
//! Uses `sessio_django` alone.
//!
//! Invariants: no panic; `loads_at` agrees with `loads` (it only adds the age check; data
//! compared with NaN equal to NaN); a value
//! that verifies under one salt never verifies under the other; anything that verifies
//! re-encodes (`dumps` at the same timestamp) to a value that verifies and decodes to the
//! same data.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sessio_django::signing::{Signer, SigningError, SIGNED_COOKIES_SALT, STORE_SALT};
use sessio_fuzz::{assert_reencodes, same_loaded, signer, COOKIE_AGE, OLD_SECRET, T};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let salts = [SIGNED_COOKIES_SALT, STORE_SALT];
    let signers = salts.map(signer);
    for (i, salt) in salts.iter().enumerate() {
        let input = match mode % 3 {
            0 => text.to_string(),
            1 => format!("{text}:{}", signers[i].signature(&text)),
            _ => {
                let old = Signer::new(OLD_SECRET.as_bytes(), &[], salt);
                format!("{text}:{}", old.signature(&text))
            }
        };
        check(&signers[i], &signers[1 - i], &input, mode % 3);
    }
});

fn check(signer: &Signer, other_salt: &Signer, input: &str, mode: u8) {
    let plain = signer.loads(input, None);
    if mode != 0 {
        // Signed here: the signature itself must pass.
        assert!(
            !matches!(plain, Err(SigningError::BadSignature)),
            "a value signed with our key was refused: {input:?}"
        );
    }
    if let Ok(got) = &plain {
        match mode {
            0 => assert!(got.key_index <= 1, "{input:?}"),
            _ => assert_eq!(got.key_index, usize::from(mode == 2), "{input:?}"),
        }
        assert_eq!(
            other_salt.loads(input, None).err(),
            Some(SigningError::BadSignature),
            "{input:?} verifies under both salts"
        );
        assert_reencodes(signer, input, got);
    }

    for (now, max_age) in [
        (T as f64, COOKIE_AGE),
        ((T + COOKIE_AGE) as f64 + 0.5, COOKIE_AGE),
        (0.0, 0),
        (f64::from(u32::MAX), i64::MAX),
    ] {
        let aged = signer.loads_at(input, Some((now, max_age)));
        match (&plain, &aged) {
            (Ok(_), Ok(_)) => assert!(
                same_loaded(&plain, &aged),
                "{input:?}: loads says {plain:?}, loads_at says {aged:?}"
            ),
            (Ok(p), Err(SigningError::Expired { .. })) => assert!(
                now - p.timestamp as f64 > max_age as f64,
                "{input:?} refused as expired at {now} with max age {max_age}"
            ),
            (Err(p), Err(a)) => assert!(
                p == a || matches!(a, SigningError::Expired { .. }),
                "{input:?}: loads says {p:?}, loads_at says {a:?}"
            ),
            (p, a) => panic!("{input:?}: loads says {p:?}, loads_at({now}, {max_age}) says {a:?}"),
        }
        if let Ok(a) = &aged {
            assert!(now - a.timestamp as f64 <= max_age as f64, "{input:?}");
        }
    }
}
