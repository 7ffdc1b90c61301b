//! The one error type of sessio.

use std::fmt;

/// A `Result` whose error defaults to sessio's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in sessio.
///
/// Each variant says what happened and, where there is something to do, what to do.
/// Errors from drivers are kept as the [`source`](std::error::Error::source), never
/// flattened into a string.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is invalid; the message names the setting and how to fix it.
    #[error("invalid session configuration: {0}")]
    Config(String),

    /// The session was deleted (for example by a logout in a concurrent request) before
    /// this request could save it. Django answers this with 400 Bad Request; so does sessio.
    #[error(
        "The request's session was deleted before the request completed. \
         The user may have logged out in a concurrent request, for example."
    )]
    SessionInterrupted,

    /// The session table does not exist yet.
    #[error("the session table `{table}` does not exist in {database}: run `sessio migrate` (or enable auto-migrate)")]
    SchemaMissing {
        /// The missing table.
        table: String,
        /// Where it was looked for (a URL with any password hidden).
        database: String,
    },

    /// The session cookie would be larger than browsers accept (name + value > 4096 bytes,
    /// RFC 6265bis), so it would be dropped silently. Store less in the session, switch to a
    /// server engine, or set `cookie_overflow = spill`.
    #[error("session cookie `{name}` would be {size} bytes (name + value), over the {limit}-byte limit browsers accept: store less in the session, use a server engine, or set cookie_overflow=spill")]
    CookieTooLarge {
        /// The cookie's name.
        name: String,
        /// Name plus value, in bytes.
        size: usize,
        /// The limit (4096).
        limit: usize,
    },

    /// A new, unique session key could not be created after many attempts.
    #[error("unable to create a new session key after {attempts} attempts; the store is likely unavailable")]
    KeyCreation {
        /// How many keys were tried.
        attempts: u32,
    },

    /// The session store could not be reached or failed.
    #[error("session store `{engine}` failed: {message}")]
    Store {
        /// The engine that failed.
        engine: &'static str,
        /// What it was doing, and what to check.
        message: String,
        /// The driver's error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },

    /// A session value could not be converted to or from JSON.
    #[error("session value for key `{key}` could not be (de)serialized: {source}")]
    Serde {
        /// The session key (the name in the session dictionary, not the session id).
        key: String,
        /// What did not fit (the type that was expected, and what was found).
        #[source]
        source: sessio_django::value::Error,
    },

    /// This engine cannot do what was asked (for example, clearing expired cookie sessions).
    #[error("session engine `{engine}` does not support {operation}")]
    Unsupported {
        /// The engine.
        engine: &'static str,
        /// The operation.
        operation: &'static str,
    },

    /// Reading or writing a local file failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// A store error with a driver error as its source.
    pub fn store<E>(engine: &'static str, message: impl Into<String>, source: E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        Error::Store {
            engine,
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }

    /// The HTTP status that fits this error when it ends a request.
    ///
    /// `SessionInterrupted` is the client's race (400), an unreachable store is a
    /// temporary condition (503), anything else is the server's fault (500).
    pub fn status(&self) -> http::StatusCode {
        match self {
            Error::SessionInterrupted => http::StatusCode::BAD_REQUEST,
            Error::Store { .. } | Error::KeyCreation { .. } => {
                http::StatusCode::SERVICE_UNAVAILABLE
            }
            _ => http::StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The text sent to the client when this error ends a request: no internals, only
    /// what the client can act on.
    pub fn public_message(&self) -> &'static str {
        match self {
            Error::SessionInterrupted => {
                "The request's session was deleted before the request completed. \
                 The user may have logged out in a concurrent request, for example."
            }
            Error::Store { .. } | Error::KeyCreation { .. } => {
                "The session store is temporarily unavailable. Please try again."
            }
            _ => "Internal server error (session).",
        }
    }
}

/// Hides the password in a database or cache URL, for error messages and logs: the one
/// in the user info, and a `password=` query parameter (which PostgreSQL and MySQL accept).
///
/// ```
/// assert_eq!(sessio::redact_url("postgres://u:pw@h/db"), "postgres://u:***@h/db");
/// assert_eq!(sessio::redact_url("postgres://h/db?password=pw"), "postgres://h/db?password=***");
/// ```
pub fn redact_url(url: &str) -> String {
    let url = redact_userinfo(url);
    let Some((base, query)) = url.split_once('?') else {
        return url;
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if name.eq_ignore_ascii_case("password") => format!("{name}=***"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{base}?{}", query.join("&"))
}

fn redact_userinfo(url: &str) -> String {
    // scheme://user:password@host/...  ->  scheme://user:***@host/...
    if let Some(scheme_end) = url.find("://") {
        let rest = &url[scheme_end + 3..];
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        if let Some(at) = authority.rfind('@') {
            let userinfo = &authority[..at];
            if let Some(colon) = userinfo.find(':') {
                return format!(
                    "{}://{}:***{}",
                    &url[..scheme_end],
                    &userinfo[..colon],
                    &rest[at..]
                );
            }
        }
    }
    url.to_string()
}

/// A keyed, short fingerprint of a session id for logs: lets an operator correlate log
/// lines of one session without the log ever holding a usable id.
pub(crate) struct LogId<'a>(pub(crate) &'a str);

/// What a log line shows for a session id when no key could be drawn: a hash under a
/// known key could be matched against guessed or stolen ids, so none is written.
const UNKEYED: &str = "<id hidden: no random key>";

/// The fingerprint key drawn by `fill` (the OS random source), or `None` if it failed:
/// a partly filled or zero key must never be used.
fn log_key(fill: impl FnOnce(&mut [u8]) -> Result<(), getrandom::Error>) -> Option<[u8; 16]> {
    let mut k = [0u8; 16];
    fill(&mut k).ok()?;
    Some(k)
}

/// Writes the fingerprint of `id` under `key`, or [`UNKEYED`] without one.
fn write_fingerprint(f: &mut impl fmt::Write, key: Option<&[u8; 16]>, id: &str) -> fmt::Result {
    use sha2::{Digest, Sha256};
    let Some(key) = key else {
        return f.write_str(UNKEYED);
    };
    let digest = Sha256::new()
        .chain_update(key)
        .chain_update(id.as_bytes())
        .finalize();
    for b in &digest[..6] {
        write!(f, "{b:02x}")?;
    }
    Ok(())
}

impl fmt::Display for LogId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A per-process random key: fingerprints correlate within one process's logs, and
        // a leaked log cannot be matched against guessed or stolen ids.
        static KEY: std::sync::OnceLock<[u8; 16]> = std::sync::OnceLock::new();
        // A failed draw is not kept: the next log line tries again.
        let key = match KEY.get() {
            Some(k) => Some(k),
            None => log_key(getrandom::fill).map(|k| KEY.get_or_init(|| k)),
        };
        write_fingerprint(f, key, self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgres://u:secret@localhost:5432/db"),
            "postgres://u:***@localhost:5432/db"
        );
        assert_eq!(redact_url("sqlite://data/s.db"), "sqlite://data/s.db");
        assert_eq!(redact_url("redis://host:6379"), "redis://host:6379");
        assert_eq!(
            redact_url("redis://:pw@host:6379/0"),
            "redis://:***@host:6379/0"
        );
        assert_eq!(
            redact_url("mysql://u@h/db?ssl-mode=required&Password=pw"),
            "mysql://u@h/db?ssl-mode=required&Password=***"
        );
    }

    #[test]
    fn a_failed_random_source_never_yields_a_zero_keyed_hash() {
        let id = "0123456789abcdefghijklmnopqrstuv";
        let fingerprint = |key: Option<&[u8; 16]>| {
            let mut s = String::new();
            write_fingerprint(&mut s, key, id).unwrap();
            s
        };
        let zero_keyed = fingerprint(Some(&[0; 16]));
        // A source that fails outright, or after writing some bytes.
        let failed = log_key(|_| Err(getrandom::Error::UNSUPPORTED));
        let partial = log_key(|k| {
            k[..8].fill(7);
            Err(getrandom::Error::UNEXPECTED)
        });
        for key in [failed, partial] {
            assert_eq!(key, None);
            let shown = fingerprint(key.as_ref());
            assert_eq!(shown, UNKEYED);
            assert_ne!(shown, zero_keyed);
            assert!(!shown.contains(id));
        }
        // A working source keys the hash; the same id gives the same fingerprint.
        let key = log_key(getrandom::fill);
        assert!(key.is_some());
        assert_eq!(fingerprint(key.as_ref()).len(), 12);
        assert_ne!(fingerprint(key.as_ref()), zero_keyed);
        assert_eq!(
            LogId(id).to_string(),
            LogId(id).to_string(),
            "one key per process"
        );
    }
}
