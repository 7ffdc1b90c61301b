//! `sessio sign`: Django's `signing.dumps` from the command line, to make a session cookie
//! or a `session_data` value for tests, fixtures and scripts.
//!
//! ```text
//! $ sessio sign '{"user_id":42,"cart":[1,2]}' --secret test-secret --timestamp 1700000000
//! eyJ1c2VyX2lkIjo0MiwiY2FydCI6WzEsMl19:1r31eq:oxQqvCdpRcSE-SQ0t06vrhPBjfo8zV8Nj1odplkJIcU
//! ```
//!
//! Only the value goes to stdout, so `$(sessio sign ...)` is the value; everything else
//! goes to stderr.

use std::io::{IsTerminal as _, Read as _};
use std::process::ExitCode;

use clap::Args;
use sessio::ConfigBuilder;
use sessio_django::signing::Signer;
use sessio_django::value::{Map, Value};
use time::OffsetDateTime;

use crate::UsageError;

#[derive(Debug, Args)]
pub(crate) struct SignArgs {
    /// The session data, a JSON object such as '{"user_id": 42}'. `-` reads it from
    /// stdin, as does leaving it out when stdin is a pipe.
    #[arg(value_name = "JSON")]
    data: Option<String>,
    /// The secret key [default: SESSIO_SECRET_KEY or the config file's]. A Django key
    /// shorter than 50 characters is fine here. Prefer the variable: a key on the command
    /// line ends up in the shell history.
    #[arg(long, value_name = "KEY")]
    secret: Option<String>,
    /// The salt: `cookies` (a signed-cookies session cookie), `store` (`session_data` of
    /// the db, cached-db, file and cache engines) or any salt string.
    #[arg(long, value_name = "cookies|store|SALT", default_value = "cookies")]
    salt: String,
    /// The signing time, in Unix seconds, for reproducible output [default: now].
    #[arg(long, value_name = "UNIX_SECONDS",
          value_parser = clap::value_parser!(i64).range(0..))]
    timestamp: Option<i64>,
    /// Do not compress. Django's session engines compress whenever that saves two bytes or
    /// more, as `sessio sign` does by default.
    #[arg(long)]
    no_compress: bool,
}

/// Reads a JSON object; anything else is a usage error (exit 2).
pub(crate) fn parse_object(text: &str) -> Result<Map, UsageError> {
    let value: Value = sessio_django::value::from_str(text.trim())
        .map_err(|e| UsageError(format!("the data is not valid JSON: {e}")))?;
    match value {
        Value::Object(map) => Ok(map),
        other => Err(UsageError(format!(
            "the data must be a JSON object such as '{{\"user_id\": 42}}', not {}",
            describe(&other)
        ))),
    }
}

/// `an array`, `a string`, ... for messages.
fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `cookies`, `store` or a literal salt, to the salt itself.
fn resolve_salt<'a>(choice: &'a str, cookies: &'a str, store: &'a str) -> &'a str {
    match choice {
        "cookies" => cookies,
        "store" => store,
        other => other,
    }
}

/// `sessio sign`: prints the signed value and nothing else on stdout.
pub(crate) fn run(builder: ConfigBuilder, args: SignArgs) -> anyhow::Result<ExitCode> {
    let mut builder = builder.allow_weak_secret_key(true);
    if let Some(secret) = &args.secret {
        builder = builder.secret_key(secret.as_str());
    }
    if !builder.has_secret_key() {
        return Err(UsageError(
            "no secret key to sign with: pass --secret KEY or set SESSIO_SECRET_KEY".into(),
        )
        .into());
    }
    // Only for the key and the configured salts.
    let config = builder.build()?;
    let text = match args.data.as_deref() {
        Some("-") => read_stdin()?,
        None if !std::io::stdin().is_terminal() => read_stdin()?,
        None => {
            return Err(UsageError(
                "no data to sign: give a JSON object as the argument, or `-` to read it \
                 from stdin"
                    .into(),
            )
            .into())
        }
        Some(text) => text.to_owned(),
    };
    let data = parse_object(&text)?;
    let salt = resolve_salt(
        &args.salt,
        config.signed_cookies_salt(),
        config.store_salt(),
    );
    let timestamp = args
        .timestamp
        .unwrap_or_else(|| OffsetDateTime::now_utc().unix_timestamp());
    // Signing uses the current key only; fallbacks never sign.
    let signer = Signer::new(config.secret_key().as_bytes(), &[], salt);
    println!("{}", signer.dumps(&data, timestamp, !args.no_compress));
    Ok(ExitCode::SUCCESS)
}

fn read_stdin() -> anyhow::Result<String> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| anyhow::anyhow!("cannot read the data from stdin: {e}"))?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessio_django::signing::{SIGNED_COOKIES_SALT, STORE_SALT};

    #[test]
    fn only_objects_are_signed() {
        assert_eq!(parse_object(r#" {"a": 1} "#).unwrap()["a"], 1);
        let e = parse_object("[1, 2]").unwrap_err().to_string();
        assert!(e.contains("JSON object") && e.contains("an array"), "{e}");
        assert!(parse_object("42")
            .unwrap_err()
            .to_string()
            .contains("a number"));
        let e = parse_object("{nope").unwrap_err().to_string();
        assert!(e.contains("not valid JSON"), "{e}");
    }

    #[test]
    fn salts_by_name_or_value() {
        let pick = |c| resolve_salt(c, SIGNED_COOKIES_SALT, STORE_SALT);
        assert_eq!(pick("cookies"), SIGNED_COOKIES_SALT);
        assert_eq!(pick("store"), STORE_SALT);
        assert_eq!(pick("my.salt"), "my.salt");
    }

    #[test]
    fn keys_order_is_kept() {
        let data = parse_object(r#"{"user_id":42,"cart":[1,2]}"#).unwrap();
        let signer = Signer::new(b"test-secret", &[], SIGNED_COOKIES_SALT);
        assert_eq!(
            signer.dumps(&data, 1_700_000_000, true),
            "eyJ1c2VyX2lkIjo0MiwiY2FydCI6WzEsMl19:1r31eq:oxQqvCdpRcSE-SQ0t06vrhPBjfo8zV8Nj1odplkJIcU"
        );
    }
}
