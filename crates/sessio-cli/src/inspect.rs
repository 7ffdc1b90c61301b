//! `sessio inspect`: verify and decode a signed session value, and say why it is refused
//! when it is.
//!
//! Values from a Django app with a short secret key are legitimate to inspect, so the key
//! is never held to the 50-character rule here.

use std::io::Read as _;
use std::process::ExitCode;

use clap::Args;
use sessio::{ConfigBuilder, SecretKey};
use sessio_django::json;
use sessio_django::signing::{Signer, SigningError};
use sessio_django::value::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::UsageError;

#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// The signed value: a session cookie's value (a `sessionid=` prefix is fine) or a db
    /// `session_data` column. `-` reads it from stdin.
    value: String,
    /// The secret key [default: SESSIO_SECRET_KEY or the config file's]. Prefer the
    /// variable: a key on the command line ends up in the shell history.
    #[arg(long, value_name = "KEY")]
    secret: Option<String>,
    /// An older key that still verifies (repeatable) [default: SESSIO_SECRET_KEY_FALLBACKS].
    #[arg(long = "fallback-secret", value_name = "KEY")]
    fallback_secrets: Vec<String>,
    /// The salt: `cookies` (signed-cookies engine), `store` (db session_data) or a salt
    /// name [default: try cookies, then store].
    #[arg(long, value_name = "NAME|cookies|store")]
    salt: Option<String>,
    /// Refuse values signed longer ago than this [default: the configured cookie age,
    /// for the cookies salt only: db rows expire by their expire_date column].
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(i64).range(0..))]
    max_age: Option<i64>,
    /// Print one JSON object on stdout instead of the data plus a report on stderr.
    #[arg(long)]
    json: bool,
}

/// A salt to try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Salt {
    /// `cookies`, `store` or `custom`.
    pub(crate) kind: &'static str,
    /// The salt itself.
    pub(crate) salt: String,
    /// The maximum age that applies when none is given.
    pub(crate) default_max_age: Option<i64>,
}

/// What became of a value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Status {
    /// Signed with one of the keys and not too old.
    Valid,
    /// Signed with one of the keys, but longer ago than the maximum age.
    Expired { age: i64, max_age: i64 },
    /// The signature matches no key with any of the salts tried.
    Tampered,
    /// Not a signed value at all, or a valid signature over an undecodable payload.
    Malformed(String),
}

/// The outcome of inspecting one value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Report {
    pub(crate) status: Status,
    /// The salt whose signature matched.
    pub(crate) salt: Option<Salt>,
    /// The key that matched: 0 is the current one, 1.. the fallbacks.
    pub(crate) key_index: Option<usize>,
    /// When it was signed (Unix seconds).
    pub(crate) timestamp: Option<i64>,
    /// The maximum age that was applied.
    pub(crate) max_age: Option<i64>,
    pub(crate) data: Option<Map>,
    /// The salts that were tried, in order.
    pub(crate) tried: Vec<Salt>,
}

/// Verifies `value` with each salt in turn and reports on the first whose signature matches.
pub(crate) fn inspect(
    value: &str,
    secret: &[u8],
    fallbacks: &[&[u8]],
    salts: &[Salt],
    max_age: Option<i64>,
    now: i64,
) -> Report {
    let mut report = Report {
        status: Status::Tampered,
        salt: None,
        key_index: None,
        timestamp: None,
        max_age: None,
        data: None,
        tried: salts.to_vec(),
    };
    for salt in salts {
        let signer = Signer::new(secret, fallbacks, &salt.salt);
        let key_index = match signer.unsign(value) {
            Ok((_, key_index)) => key_index,
            Err(SigningError::BadSignature) => continue,
            // No salt changes the shape of a value.
            Err(e) => {
                report.status = Status::Malformed(e.to_string());
                return report;
            }
        };
        let max_age = max_age.or(salt.default_max_age);
        report.salt = Some(salt.clone());
        report.key_index = Some(key_index);
        report.max_age = max_age;
        match signer.loads(value, max_age.map(|m| (now, m))) {
            Ok(unsigned) => {
                report.status = Status::Valid;
                report.timestamp = Some(unsigned.timestamp);
                report.data = Some(unsigned.data);
            }
            Err(SigningError::Expired { age, max_age }) => {
                report.status = Status::Expired { age, max_age };
                // Expired data is still worth seeing when debugging.
                match signer.loads(value, None) {
                    Ok(unsigned) => {
                        report.timestamp = Some(unsigned.timestamp);
                        report.data = Some(unsigned.data);
                    }
                    Err(_) => report.timestamp = Some(now.saturating_sub(age)),
                }
            }
            Err(e) => report.status = Status::Malformed(e.to_string()),
        }
        return report;
    }
    report
}

/// Reduces a pasted cookie to its value: surrounding blanks, a `name=` prefix, a trailing
/// `;` and double quotes go.
pub(crate) fn clean_value(raw: &str) -> &str {
    let mut value = raw.trim().trim_end_matches(';').trim();
    // Signed values have no `=` before their first `:`, so a `=` there ends a cookie name.
    if let Some((name, rest)) = value.split_once('=') {
        if !name.is_empty() && !name.contains(':') {
            value = rest.trim();
        }
    }
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
}

/// `cookies`, `store` or a literal salt, to the salts to try.
fn salts(choice: Option<&str>, cookies: &str, store: &str, cookie_age: i64) -> Vec<Salt> {
    let cookies = Salt {
        kind: "cookies",
        salt: cookies.to_owned(),
        default_max_age: Some(cookie_age),
    };
    let store = Salt {
        kind: "store",
        salt: store.to_owned(),
        default_max_age: None,
    };
    match choice {
        None => vec![cookies, store],
        Some("cookies") => vec![cookies],
        Some("store") => vec![store],
        Some(s) if s == cookies.salt => vec![cookies],
        Some(s) if s == store.salt => vec![store],
        Some(s) => vec![Salt {
            kind: "custom",
            salt: s.to_owned(),
            default_max_age: None,
        }],
    }
}

/// `sessio inspect`: exit 0 when the value is valid, 1 when it is not.
pub(crate) fn run(builder: ConfigBuilder, args: InspectArgs) -> anyhow::Result<ExitCode> {
    let mut builder = builder.allow_weak_secret_key(true);
    if let Some(secret) = &args.secret {
        builder = builder.secret_key(secret.as_str());
    }
    if !args.fallback_secrets.is_empty() {
        builder = builder.fallback_keys(args.fallback_secrets.iter().map(String::as_str));
    }
    if !builder.has_secret_key() {
        return Err(UsageError(
            "no secret key to verify with: pass --secret KEY or set SESSIO_SECRET_KEY".into(),
        )
        .into());
    }
    // Only for the settings (keys, salts, cookie age): weak keys are allowed above and the
    // signer is built right here.
    let config = builder.build()?;
    let raw = if args.value == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| anyhow::anyhow!("cannot read the value from stdin: {e}"))?;
        text
    } else {
        args.value.clone()
    };
    let value = clean_value(&raw);
    let fallbacks: Vec<&[u8]> = config
        .fallback_keys()
        .iter()
        .map(SecretKey::as_bytes)
        .collect();
    let salts = salts(
        args.salt.as_deref(),
        config.signed_cookies_salt(),
        config.store_salt(),
        config.cookie_age(),
    );
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let report = inspect(
        value,
        config.secret_key().as_bytes(),
        &fallbacks,
        &salts,
        args.max_age,
        now,
    );
    if args.json {
        println!("{}", to_json(&report, now));
    } else {
        if let Some(data) = &report.data {
            println!(
                "{}",
                serde_json::to_string_pretty(data).unwrap_or_else(|e| format!("{e}"))
            );
        }
        eprint!("{}", to_text(&report, now));
    }
    Ok(if report.status == Status::Valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn key_name(index: usize) -> String {
    match index {
        0 => "current".to_owned(),
        n => format!("fallback #{n}"),
    }
}

fn rfc3339(unix: i64) -> Option<String> {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()?
        .format(&Rfc3339)
        .ok()
}

fn status_word(status: &Status) -> &'static str {
    match status {
        Status::Valid => "valid",
        Status::Expired { .. } => "expired",
        Status::Tampered => "tampered",
        Status::Malformed(_) => "malformed",
    }
}

/// The report for people: one `name: value` line each.
pub(crate) fn to_text(report: &Report, now: i64) -> String {
    let mut lines = Vec::new();
    let status = match &report.status {
        Status::Valid => "valid".to_owned(),
        Status::Expired { age, max_age } => format!(
            "expired {} ago (max age {})",
            human_duration(age.saturating_sub(*max_age)),
            human_duration(*max_age)
        ),
        Status::Tampered => {
            let tried: Vec<&str> = report.tried.iter().map(|s| s.salt.as_str()).collect();
            format!(
                "tampered or wrong key: the signature matches no key with salt {}",
                tried.join(" or ")
            )
        }
        Status::Malformed(why) => format!("malformed: {why}"),
    };
    lines.push(format!("status: {status}"));
    if let Some(salt) = &report.salt {
        lines.push(format!("salt:   {} ({})", salt.salt, salt.kind));
    }
    if let Some(index) = report.key_index {
        lines.push(format!("key:    {}", key_name(index)));
    }
    if let Some(ts) = report.timestamp {
        let when = rfc3339(ts).unwrap_or_else(|| format!("Unix time {ts}"));
        let ago = if now >= ts {
            format!("{} ago", human_duration(now.saturating_sub(ts)))
        } else {
            format!("{} in the future", human_duration(ts.saturating_sub(now)))
        };
        lines.push(format!("signed: {when} ({ago})"));
    }
    if matches!(report.status, Status::Valid) {
        if let Some(max_age) = report.max_age {
            let left = report
                .timestamp
                .map_or(0, |ts| ts.saturating_add(max_age).saturating_sub(now));
            lines.push(format!(
                "max age: {} ({} left)",
                human_duration(max_age),
                human_duration(left)
            ));
        }
    }
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

/// The report for programs: one object, every field always present.
pub(crate) fn to_json(report: &Report, now: i64) -> Value {
    let (expired_by, error) = match &report.status {
        Status::Expired { age, max_age } => (Some(age.saturating_sub(*max_age)), None),
        Status::Malformed(why) => (None, Some(why.clone())),
        Status::Tampered => (
            None,
            Some("the signature matches no key with the salts tried".to_owned()),
        ),
        Status::Valid => (None, None),
    };
    json!({
        "status": status_word(&report.status),
        "salt": report.salt.as_ref().map(|s| s.salt.clone()),
        "salt_kind": report.salt.as_ref().map(|s| s.kind),
        "key": report.key_index.map(key_name),
        "key_index": report.key_index,
        "signed_at": report.timestamp.and_then(rfc3339),
        "signed_unix": report.timestamp,
        "age_seconds": report.timestamp.map(|ts| now.saturating_sub(ts)),
        "max_age_seconds": report.max_age,
        "expired_by_seconds": expired_by,
        "salts_tried": report.tried.iter().map(|s| s.salt.clone()).collect::<Vec<_>>(),
        "error": error,
        "data": report.data,
    })
}

/// `90061` as `1 day 1 hour`: the two largest units.
pub(crate) fn human_duration(seconds: i64) -> String {
    let seconds = seconds.max(0);
    if seconds == 0 {
        return "0 seconds".to_owned();
    }
    let units = [
        ("year", 365 * 86_400),
        ("day", 86_400),
        ("hour", 3_600),
        ("minute", 60),
        ("second", 1),
    ];
    let mut parts = Vec::new();
    let mut rest = seconds;
    for (name, size) in units {
        let n = rest / size;
        if n > 0 {
            parts.push(format!("{n} {name}{}", if n == 1 { "" } else { "s" }));
            rest %= size;
        } else if !parts.is_empty() {
            // "1 year 3 hours" would hide the days in between; stop at the gap.
            break;
        }
        if parts.len() == 2 {
            break;
        }
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessio_django::signing::{SIGNED_COOKIES_SALT, STORE_SALT};

    const COOKIE: &str =
        "eyJ1c2VyX2lkIjo0MiwiY2FydCI6WzEsMl19:1r31eq:oxQqvCdpRcSE-SQ0t06vrhPBjfo8zV8Nj1odplkJIcU";
    const STORED: &str =
        "eyJ1c2VyX2lkIjo0MiwiY2FydCI6WzEsMl19:1r31eq:EuHZHOfZueYvjUO7CERx-u8g7grivz5XfByNK-8nVNg";
    const SIGNED_AT: i64 = 1_700_000_000;
    const TWO_WEEKS: i64 = 1_209_600;

    fn both() -> Vec<Salt> {
        salts(None, SIGNED_COOKIES_SALT, STORE_SALT, TWO_WEEKS)
    }

    #[test]
    fn a_fresh_cookie_is_valid() {
        let r = inspect(COOKIE, b"test-secret", &[], &both(), None, SIGNED_AT + 60);
        assert_eq!(r.status, Status::Valid);
        assert_eq!(r.salt.unwrap().kind, "cookies");
        assert_eq!(r.key_index, Some(0));
        assert_eq!(r.timestamp, Some(SIGNED_AT));
        assert_eq!(r.data.unwrap()["user_id"], 42);
    }

    #[test]
    fn an_old_cookie_is_expired_and_still_shown() {
        let now = SIGNED_AT + TWO_WEEKS + 3600;
        let r = inspect(COOKIE, b"test-secret", &[], &both(), None, now);
        assert_eq!(
            r.status,
            Status::Expired {
                age: TWO_WEEKS + 3600,
                max_age: TWO_WEEKS
            }
        );
        assert!(r.data.is_some());
        assert!(to_text(&r, now).contains("expired 1 hour ago (max age 14 days)"));
        assert_eq!(to_json(&r, now)["expired_by_seconds"], 3600);
    }

    #[test]
    fn store_values_have_no_default_max_age() {
        let now = SIGNED_AT + 10 * TWO_WEEKS;
        let r = inspect(STORED, b"test-secret", &[], &both(), None, now);
        assert_eq!(r.status, Status::Valid);
        assert_eq!(r.salt.unwrap().kind, "store");
        let r = inspect(STORED, b"test-secret", &[], &both(), Some(60), now);
        assert!(matches!(r.status, Status::Expired { .. }));
    }

    #[test]
    fn fallback_keys_are_named() {
        let r = inspect(
            COOKIE,
            b"new",
            &[b"old", b"test-secret"],
            &both(),
            Some(i64::MAX),
            0,
        );
        assert_eq!(r.status, Status::Valid);
        assert_eq!(r.key_index, Some(2));
        assert!(to_text(&r, SIGNED_AT).contains("key:    fallback #2"));
    }

    #[test]
    fn tampering_wrong_keys_and_garbage_are_told_apart() {
        let tampered = COOKIE.replacen("eyJ1", "eyJ2", 1);
        let r = inspect(&tampered, b"test-secret", &[], &both(), None, SIGNED_AT);
        assert_eq!(r.status, Status::Tampered);
        assert!(to_text(&r, SIGNED_AT).contains(STORE_SALT));
        let r = inspect(COOKIE, b"other-secret", &[], &both(), None, SIGNED_AT);
        assert_eq!(r.status, Status::Tampered);
        let r = inspect("not a signed value", b"k", &[], &both(), None, 0);
        assert!(matches!(r.status, Status::Malformed(_)));
        let only_store = salts(Some("store"), SIGNED_COOKIES_SALT, STORE_SALT, TWO_WEEKS);
        let r = inspect(COOKIE, b"test-secret", &[], &only_store, None, SIGNED_AT);
        assert_eq!(r.status, Status::Tampered);
    }

    #[test]
    fn pasted_cookies_are_cleaned() {
        assert_eq!(clean_value(&format!("  sessionid={COOKIE}; ")), COOKIE);
        assert_eq!(clean_value(&format!("\"{COOKIE}\"")), COOKIE);
        assert_eq!(clean_value(COOKIE), COOKIE);
        let compressed = ".eJyrVkpOLCpRsoo21KEqjNVRyssvSVWyUkokAijVAgASaiJ9:1r31eq:D517hS151Trb9O5CZAR8TSen4R3-up0c7iyCabEs53I";
        assert_eq!(clean_value(compressed), compressed);
    }

    #[test]
    fn salts_are_chosen_by_name_or_value() {
        let pick = |c| salts(Some(c), SIGNED_COOKIES_SALT, STORE_SALT, 1);
        assert_eq!(pick("cookies")[0].kind, "cookies");
        assert_eq!(pick(STORE_SALT)[0].kind, "store");
        assert_eq!(pick("my.salt")[0].kind, "custom");
        assert_eq!(pick("my.salt")[0].default_max_age, None);
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(human_duration(0), "0 seconds");
        assert_eq!(human_duration(1), "1 second");
        assert_eq!(human_duration(90_061), "1 day 1 hour");
        assert_eq!(human_duration(365 * 86_400 + 3 * 3600), "1 year");
        assert_eq!(human_duration(TWO_WEEKS), "14 days");
    }
}
