//! When a session ends: Django's `set_expiry` and `get_expiry_*` rules.
//!
//! The custom expiry is stored in the session data under `_session_expiry`, as Django
//! stores it: an integer (seconds of inactivity, `0` for "when the browser closes"), or an
//! ISO 8601 date for a fixed moment.

use crate::value::{Number, Value};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Duration, OffsetDateTime, PrimitiveDateTime, UtcOffset};

use crate::data::SessionData;
use crate::keys::EXPIRY as EXPIRY_KEY;

/// When a session expires: what Django's `set_expiry` takes (`Session::set_expiry` in
/// sessio), read back from the data as `get_expiry` does.
///
/// ```
/// use sessio_django::{data::SessionData, expiry::{self, Expiry}};
/// use time::Duration;
///
/// let mut data = SessionData::new();
/// data.insert("_session_expiry".into(), 0.into());
/// assert_eq!(expiry::from_data(Some(&data)), Expiry::OnBrowserClose);
/// data.insert("_session_expiry".into(), 1800.into());
/// assert_eq!(expiry::from_data(Some(&data)), Expiry::OnInactivity(Duration::minutes(30)));
/// assert_eq!(expiry::from_data(None), Expiry::Default);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// The configured cookie age, or the browser session when `expire_at_browser_close`
    /// is on (Django's `set_expiry(None)`).
    Default,
    /// After this long without a save (Django's `set_expiry(seconds)`); whole seconds.
    OnInactivity(Duration),
    /// At a fixed moment (Django's `set_expiry(datetime)`).
    AtDateTime(OffsetDateTime),
    /// When the browser closes (Django's `set_expiry(0)`); the stored record still expires
    /// after the cookie age.
    OnBrowserClose,
}

/// The latest moment sessio represents; expiries beyond it are clamped to it (Python's
/// datetime ends at year 9999 too).
pub const FAR_FUTURE: OffsetDateTime = time::macros::datetime!(9999-12-31 23:59:59 UTC);

/// `at + seconds`, clamped to the representable range instead of overflowing.
pub fn add_seconds(at: OffsetDateTime, seconds: i64) -> OffsetDateTime {
    at.checked_add(Duration::seconds(seconds))
        .map(|t| t.min(FAR_FUTURE))
        .unwrap_or(if seconds < 0 {
            OffsetDateTime::UNIX_EPOCH
        } else {
            FAR_FUTURE
        })
}

fn raw(data: Option<&SessionData>) -> Option<&Value> {
    data.and_then(|d| d.get(EXPIRY_KEY))
        .filter(|v| !v.is_null())
}

/// Python truthiness of the stored value: `None`, `0`, `0.0`, `""`, `false` are "no expiry".
fn is_falsy(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// The `Expiry` that the data holds.
pub fn from_data(data: Option<&SessionData>) -> Expiry {
    match raw(data) {
        None => Expiry::Default,
        Some(Value::Number(n)) if n.as_f64() == Some(0.0) => Expiry::OnBrowserClose,
        Some(Value::Number(n)) => Expiry::OnInactivity(Duration::seconds(number_secs(n))),
        Some(Value::String(s)) => parse_iso(s)
            .map(Expiry::AtDateTime)
            .unwrap_or(Expiry::Default),
        Some(_) => Expiry::Default,
    }
}

fn number_secs(n: &Number) -> i64 {
    n.as_i64()
        .or_else(|| n.as_f64().map(|f| f.floor() as i64))
        .unwrap_or(0)
}

/// Django's `get_expiry_age(modification=now)`.
pub fn age(data: Option<&SessionData>, now: OffsetDateTime, cookie_age: i64) -> i64 {
    match raw(data) {
        None => cookie_age,
        Some(v) if is_falsy(v) => cookie_age,
        Some(Value::Number(n)) => number_secs(n),
        Some(Value::String(s)) => match parse_iso(s) {
            // timedelta.days * 86400 + timedelta.seconds: whole seconds, rounded down.
            Some(at) => (at - now).as_seconds_f64().floor() as i64,
            None => cookie_age,
        },
        Some(_) => cookie_age,
    }
}

/// Django's `get_expiry_date(modification=now)`.
pub fn date(data: Option<&SessionData>, now: OffsetDateTime, cookie_age: i64) -> OffsetDateTime {
    match raw(data) {
        Some(Value::String(s)) if !s.is_empty() => {
            parse_iso(s).unwrap_or_else(|| add_seconds(now, cookie_age))
        }
        // Django adds `timedelta(seconds=expiry)`: a fractional expiry keeps its fraction.
        Some(Value::Number(n)) if !is_falsy(&Value::Number(n.clone())) => match n.as_i64() {
            Some(secs) => add_seconds(now, secs),
            None => {
                let f = n.as_f64().unwrap_or(f64::INFINITY);
                Duration::checked_seconds_f64(f)
                    .and_then(|d| now.checked_add(d))
                    .map(|t| t.min(FAR_FUTURE))
                    .unwrap_or(if f < 0.0 {
                        OffsetDateTime::UNIX_EPOCH
                    } else {
                        FAR_FUTURE
                    })
            }
        },
        _ => add_seconds(now, cookie_age),
    }
}

/// Django's `get_expire_at_browser_close()`.
pub fn at_browser_close(data: Option<&SessionData>, setting: bool) -> bool {
    match raw(data) {
        None => setting,
        Some(Value::Number(n)) => n.as_f64() == Some(0.0),
        Some(_) => false,
    }
}

/// Python's `datetime.isoformat()` of a UTC datetime: `2023-11-14T22:14:50+00:00`, with
/// `.ffffff` only when there are microseconds.
pub fn isoformat(at: OffsetDateTime) -> String {
    let at = at.checked_to_offset(UtcOffset::UTC).unwrap_or(FAR_FUTURE);
    let micros = at.microsecond();
    let mut s = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        at.year(),
        at.month() as u8,
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    );
    if micros != 0 {
        s.push_str(&format!(".{micros:06}"));
    }
    s.push_str("+00:00");
    s
}

/// Python's datetimes hold microseconds: finer digits are dropped, as `fromisoformat` does.
fn to_micros(at: OffsetDateTime) -> OffsetDateTime {
    at.replace_nanosecond(at.nanosecond() / 1000 * 1000)
        .unwrap_or(at)
}

/// Python's `datetime.fromisoformat` for the forms Django writes; a string without an offset
/// (Django with `USE_TZ=False`) is read as UTC.
pub fn parse_iso(s: &str) -> Option<OffsetDateTime> {
    // Python's fromisoformat takes only four-digit years.
    if !s.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        return None;
    }
    if let Ok(at) = OffsetDateTime::parse(s, &Rfc3339) {
        // A date whose UTC form is past year 9999 cannot be represented (nor by Python).
        return at
            .checked_to_offset(UtcOffset::UTC)
            .filter(|utc| utc.year() >= 1)
            .map(to_micros);
    }
    let naive = format_description!(
        version = 2,
        "[year]-[month]-[day][first [T][ ]][hour]:[minute]:[second][optional [.[subsecond]]]"
    );
    PrimitiveDateTime::parse(s, naive)
        .ok()
        .map(|p| to_micros(p.assume_utc()))
        .filter(|utc| utc.year() >= 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;
    use time::macros::datetime;

    fn data(v: Value) -> SessionData {
        let mut d = SessionData::new();
        d.insert(EXPIRY_KEY.into(), v);
        d
    }

    #[test]
    fn isoformat_matches_python() {
        assert_eq!(
            isoformat(datetime!(2023-11-14 22:14:50 UTC)),
            "2023-11-14T22:14:50+00:00"
        );
        assert_eq!(
            isoformat(datetime!(2023-11-15 22:13:20.123456 UTC)),
            "2023-11-15T22:13:20.123456+00:00"
        );
        assert_eq!(
            parse_iso("2023-11-15T22:13:20.123456+00:00"),
            Some(datetime!(2023-11-15 22:13:20.123456 UTC))
        );
        assert_eq!(
            parse_iso("2023-11-14T22:14:50"),
            Some(datetime!(2023-11-14 22:14:50 UTC))
        );
        // Digits past microseconds are dropped, so a date survives a write and a read.
        let at = parse_iso("2023-11-15T22:13:28.123421112110").unwrap();
        assert_eq!(at, datetime!(2023-11-15 22:13:28.123421 UTC));
        assert_eq!(parse_iso(&isoformat(at)), Some(at));
    }

    #[test]
    fn absurd_expiries_clamp_instead_of_panicking() {
        let now = datetime!(2023-11-14 22:13:20 UTC);
        assert_eq!(date(Some(&data(json!(1e300))), now, 5), FAR_FUTURE);
        assert_eq!(
            date(Some(&data(json!(1_000_000_000_000_i64))), now, 5),
            FAR_FUTURE
        );
        assert_eq!(parse_iso("9999-12-31T23:59:59-01:00"), None);
        assert_eq!(parse_iso("0000-01-01T00:00:00+01:00"), None);
        assert_eq!(parse_iso("0000-01-01T00:00:00"), None);
        assert!(!at_browser_close(
            Some(&data(json!("9999-12-31T23:59:59-01:00"))),
            false
        ));
        let _ = isoformat(FAR_FUTURE);
    }

    #[test]
    fn ages_follow_django() {
        let now = datetime!(2023-11-14 22:13:20 UTC);
        assert_eq!(age(None, now, 1209600), 1209600);
        assert_eq!(age(Some(&data(json!(0))), now, 1209600), 1209600);
        assert_eq!(age(Some(&data(json!(300))), now, 1209600), 300);
        assert_eq!(
            age(Some(&data(json!("2023-11-14T22:14:50+00:00"))), now, 1),
            90
        );
        assert_eq!(
            age(Some(&data(json!("2023-11-14T22:13:19.5+00:00"))), now, 1),
            -1
        );
        assert!(at_browser_close(Some(&data(json!(0))), false));
        assert!(!at_browser_close(Some(&data(json!(10))), true));
        assert!(at_browser_close(None, true));
        assert_eq!(
            date(Some(&data(json!(10))), now, 5),
            datetime!(2023-11-14 22:13:30 UTC)
        );
        assert_eq!(
            date(Some(&data(json!(300.5))), now, 5),
            datetime!(2023-11-14 22:18:20.5 UTC)
        );
    }
}
