//! Helpers shared by the fuzz targets in `fuzz_targets/`: keys, a runtime for the async
//! API, arbitrary JSON, and equality of session data with floats compared by value.

use std::cell::RefCell;
use std::future::Future;
use std::sync::OnceLock;

use arbitrary::{Result as ArbResult, Unstructured};
use serde_json::{Map, Number, Value};
use sessio::signing::{Signer, Unsigned};

/// The secret key of `crates/sessio/tests/data/django-vectors.json`, so its values verify.
pub const SECRET: &str = "test-secret";
/// A retired key, accepted as a fallback (the vectors' `key_rotation` one).
pub const OLD_SECRET: &str = "old-secret";
/// The vectors' frozen time (Unix seconds).
pub const T: i64 = 1_700_000_000;
/// Django's `SESSION_COOKIE_AGE`.
pub const COOKIE_AGE: i64 = 1_209_600;

/// Whether to fail on the known sessio issues too (`SESSIO_FUZZ_STRICT=1`).
///
/// The targets step around the issues listed under "Known issues" in `fuzz/README.md`
/// (K6...) so that CI keeps fuzzing for new ones until they are fixed; in strict mode
/// they fail on them. Each place that steps around one names it.
pub fn strict() -> bool {
    static STRICT: OnceLock<bool> = OnceLock::new();
    *STRICT.get_or_init(|| std::env::var_os("SESSIO_FUZZ_STRICT").is_some_and(|v| v != "0"))
}

/// True when `value` holds a number that is not an integer and whose value does not fit an
/// `f64` (`1e400`): Python reads it as infinite and `pyjson` writes `Infinity`, which
/// serde_json alone cannot read back (sessio's signed-data reader can).
pub fn has_overflowing_float(value: &Value) -> bool {
    match value {
        Value::Number(n) => !is_int_text(&n.to_string()) && n.as_f64().is_none(),
        Value::Array(items) => items.iter().any(has_overflowing_float),
        Value::Object(map) => map.values().any(has_overflowing_float),
        _ => false,
    }
}

/// The map key by which serde_json's `arbitrary_precision` marks a number.
pub const SERDE_NUMBER_TOKEN: &str = "$serde_json::private::Number";

/// Known issue K6: with serde_json's `arbitrary_precision`, an object whose first key is
/// [`SERDE_NUMBER_TOKEN`] is read as a number (or refused), so data holding one does not
/// read back as written. True when `value` holds such an object.
pub fn has_number_token_object(value: &Value) -> bool {
    match value {
        Value::Object(map) => {
            map.keys().next().map(String::as_str) == Some(SERDE_NUMBER_TOKEN)
                || map.values().any(has_number_token_object)
        }
        Value::Array(items) => items.iter().any(has_number_token_object),
        _ => false,
    }
}

/// True when strict mode is off and the value holds a known issue K6 case: the caller
/// skips the round trip.
pub fn skip_known_value(value: &Value) -> bool {
    !strict() && has_number_token_object(value)
}

/// [`skip_known_value`] for session data.
pub fn skip_known(data: &Map<String, Value>) -> bool {
    !strict()
        && (data.keys().next().map(String::as_str) == Some(SERDE_NUMBER_TOKEN)
            || data.values().any(|v| skip_known_value(v)))
}

/// Runs a future to completion on a per-thread current-thread tokio runtime.
pub fn block_on<F: Future>(f: F) -> F::Output {
    thread_local! {
        static RT: RefCell<tokio::runtime::Runtime> = RefCell::new(
            tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("tokio runtime"),
        );
    }
    RT.with(|rt| rt.borrow().block_on(f))
}

/// The signer for `salt` with [`SECRET`] and the fallback [`OLD_SECRET`].
pub fn signer(salt: &str) -> Signer {
    Signer::new(SECRET.as_bytes(), &[OLD_SECRET.as_bytes()], salt)
}

const MAX_DEPTH: u32 = 4;
const MAX_ITEMS: usize = 6;

/// An arbitrary JSON object (bounded depth and width).
pub fn arb_map(u: &mut Unstructured<'_>) -> ArbResult<Map<String, Value>> {
    map_at(u, 0)
}

/// An arbitrary JSON value (bounded depth and width).
pub fn arb_value(u: &mut Unstructured<'_>) -> ArbResult<Value> {
    value_at(u, 0)
}

fn map_at(u: &mut Unstructured<'_>, depth: u32) -> ArbResult<Map<String, Value>> {
    let n = u.int_in_range(0..=MAX_ITEMS)?;
    let mut map = Map::new();
    for _ in 0..n {
        let k: String = u.arbitrary()?;
        let v = value_at(u, depth + 1)?;
        map.insert(k, v);
    }
    Ok(map)
}

fn value_at(u: &mut Unstructured<'_>, depth: u32) -> ArbResult<Value> {
    let leaf_only = depth >= MAX_DEPTH;
    let choice = u.int_in_range(0..=if leaf_only { 7 } else { 9 })?;
    Ok(match choice {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => Value::from(u.arbitrary::<i64>()?),
        3 => Value::from(u.arbitrary::<u64>()?),
        4 => Number::from_f64(u.arbitrary()?).map_or(Value::Null, Value::Number),
        5 => Value::Number(arb_number_text(u)?),
        6 | 7 => Value::String(u.arbitrary()?),
        8 => {
            let n = u.int_in_range(0..=MAX_ITEMS)?;
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                items.push(value_at(u, depth + 1)?);
            }
            Value::Array(items)
        }
        _ => Value::Object(map_at(u, depth + 1)?),
    })
}

/// A number from an arbitrary JSON number lexeme (`-?int(.frac)?([eE][+-]?exp)?`), as
/// `serde_json` (with `arbitrary_precision`) keeps it when it parses a payload: big
/// integers, `1E5`, `1e400`, `-0`, `0.10`...
pub fn arb_number_text(u: &mut Unstructured<'_>) -> ArbResult<Number> {
    let mut s = String::new();
    if u.arbitrary()? {
        s.push('-');
    }
    digits(u, &mut s, true)?;
    if u.arbitrary()? {
        s.push('.');
        digits(u, &mut s, false)?;
    }
    if u.arbitrary()? {
        s.push(*u.choose(&['e', 'E'])?);
        s.push_str(u.choose(&["", "+", "-"])?);
        digits(u, &mut s, false)?;
    }
    Ok(serde_json::from_str::<Number>(&s)
        .unwrap_or_else(|e| panic!("generator made an invalid JSON number {s:?}: {e}")))
}

fn digits(u: &mut Unstructured<'_>, s: &mut String, integer_part: bool) -> ArbResult<()> {
    let n = u.int_in_range(1..=40)?;
    for i in 0..n {
        let d = u.int_in_range(0..=9u8)?;
        // JSON integers have no leading zeros: a leading 0 stands alone.
        if integer_part && i == 0 && d == 0 {
            s.push('0');
            return Ok(());
        }
        s.push((b'0' + d) as char);
    }
    Ok(())
}

/// True when the number's text is an integer (`-?[0-9]+`).
fn is_int_text(t: &str) -> bool {
    let d = t.strip_prefix('-').unwrap_or(t);
    !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())
}

/// Python's int value as text: `-0` is `0`, leading zeros cannot occur in JSON.
fn int_text(t: &str) -> &str {
    let d = t.strip_prefix('-').unwrap_or(t);
    if d.bytes().all(|b| b == b'0') {
        "0"
    } else {
        t
    }
}

/// Numbers equal as Python sees them after a JSON round trip: integers by their digits,
/// floats by value (bit for bit, so `-0.0` stays negative).
pub fn same_number(a: &Number, b: &Number) -> bool {
    let (ta, tb) = (a.to_string(), b.to_string());
    match (is_int_text(&ta), is_int_text(&tb)) {
        (true, true) => int_text(&ta) == int_text(&tb),
        (false, false) => {
            let fa: f64 = ta.parse().expect("a JSON number parses as f64");
            let fb: f64 = tb.parse().expect("a JSON number parses as f64");
            fa.to_bits() == fb.to_bits()
        }
        _ => false,
    }
}

/// Deep equality of JSON values with [`same_number`] for numbers and key order respected.
pub fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => same_number(x, y),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_value(p, q))
        }
        (Value::Object(x), Value::Object(y)) => same_map(x, y),
        _ => a == b,
    }
}

/// [`same_value`] for objects.
pub fn same_map(a: &Map<String, Value>, b: &Map<String, Value>) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|((ka, va), (kb, vb))| ka == kb && same_value(va, vb))
}

/// Characters a signed value may contain: base64url, `.`, `:` and the `-` of a negative
/// timestamp. All are cookie-octets that need no quoting.
pub fn is_cookie_safe(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// What every value that verified must satisfy: signing its data again (compressed or not)
/// at the same timestamp gives a cookie-safe value that verifies under the current key and
/// decodes to the same data.
pub fn assert_reencodes(signer: &Signer, input: &str, got: &Unsigned) {
    if skip_known(&got.data) {
        return;
    }
    for compress in [true, false] {
        let again = signer.dumps(&got.data, got.timestamp, compress);
        assert!(
            is_cookie_safe(&again),
            "re-encoded value not cookie-safe: {again:?}"
        );
        let back = signer.loads(&again, None).unwrap_or_else(|e| {
            panic!(
                "input {input:?} verified with data {:?}, but its re-encoding {again:?} \
                 (compress={compress}) does not load: {e}",
                got.data
            )
        });
        assert_eq!(back.timestamp, got.timestamp);
        assert_eq!(
            back.key_index, 0,
            "re-encoded values are signed with the current key"
        );
        assert!(
            same_map(&back.data, &got.data),
            "input {input:?}: data {:?} re-encoded as {again:?} loads as {:?}",
            got.data,
            back.data
        );
    }
}

/// The cookie name the engine targets use.
pub const COOKIE_NAME: &str = "sessionid";

/// A configuration with [`SECRET`] (and [`OLD_SECRET`] as fallback), the cookie name
/// `cookie_name`, the given engine and clock.
pub fn config(
    secret: &str,
    cookie_name: &str,
    engine: sessio::EngineKind,
    clock: &sessio::clock::ManualClock,
) -> sessio::Config {
    sessio::Config::builder()
        .secret_key(secret)
        .fallback_keys([OLD_SECRET])
        .allow_weak_secret_key(true)
        .cookie_name(cookie_name)
        .engine(engine)
        .clock(clock.clone())
        .build()
        .expect("fuzz configuration")
}

/// Real sealed values of the encrypted-cookies engine (made by `tests/seeds.rs`), with the
/// data each holds and whether the fallback key sealed it. Their expiry is far in the
/// future of [`T`].
pub fn sealed_seeds() -> Vec<(String, Map<String, Value>, bool)> {
    let seeds: Value = serde_json::from_str(include_str!("../seeds/encrypted_sealed.json"))
        .expect("seeds/encrypted_sealed.json");
    seeds
        .as_array()
        .expect("a list")
        .iter()
        .map(|s| {
            (
                s["value"].as_str().expect("value").to_owned(),
                s["data"].as_object().expect("data").clone(),
                s["stale_key"].as_bool().expect("stale_key"),
            )
        })
        .collect()
}

/// The key of the custom expiry in the session data.
pub const EXPIRY_KEY: &str = "_session_expiry";

/// A handler that sets `_session_expiry` to a value.
#[derive(Clone, Debug)]
struct SetExpiry(Value);

impl tower_service::Service<http::Request<()>> for SetExpiry {
    type Response = http::Response<String>;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<
        Box<dyn Future<Output = Result<http::Response<String>, std::convert::Infallible>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<()>) -> Self::Future {
        let session = req
            .extensions()
            .get::<sessio::Session>()
            .expect("the middleware adds the session")
            .clone();
        let value = self.0.clone();
        Box::pin(async move {
            session.insert_value(EXPIRY_KEY, value).await.unwrap();
            Ok(http::Response::new(String::new()))
        })
    }
}

/// One request without a cookie through the session middleware, to a handler that sets
/// `_session_expiry` to `value`; the response (with its `Set-Cookie`).
pub async fn set_expiry_through_middleware(
    engine: &std::sync::Arc<dyn sessio::SessionEngine>,
    config: &std::sync::Arc<sessio::Config>,
    value: Value,
) -> http::Response<String> {
    use tower_layer::Layer;
    use tower_service::Service;
    let mut service =
        sessio::SessionLayer::new(engine.clone(), config.clone()).layer(SetExpiry(value));
    match service.call(http::Request::new(())).await {
        Ok(res) => res,
        Err(never) => match never {},
    }
}
