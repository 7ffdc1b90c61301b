//! Where sessions live: the demo's store options (`--engine`, `--database-url`,
//! `--cache-url`, `--file-path`), a plain-words description of a store, and one-line errors
//! for a store that cannot be opened.
//!
//! Every URL shown goes through [`sessio::redact_url`] or drops its user part altogether:
//! a password never reaches a page, a terminal or a log.

use std::path::{Path, PathBuf};

use sessio::{Config, ConfigBuilder, EngineKind};

/// The store chosen on the command line. Each option overrides the settings (config file,
/// `SESSIO_*` variables); `None` keeps them.
///
/// Naming a store without an engine picks the engine that uses it, so
/// `sessio-demo --database-url postgres://…` needs no `--engine db`: a database URL
/// selects `db`, a cache URL `cache`, both `cached-db`, a directory `file`. An engine from
/// the settings that already uses the named store (`cached-db` with a database URL) is kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreOptions {
    /// The engine (`--engine`).
    pub engine: Option<EngineKind>,
    /// The database of the `db` and `cached-db` engines (`--database-url`).
    pub database_url: Option<String>,
    /// The cache of the `cache` and `cached-db` engines (`--cache-url`).
    pub cache_url: Option<String>,
    /// The directory of the `file` engine (`--file-path`).
    pub file_path: Option<PathBuf>,
}

impl StoreOptions {
    /// Applies the options on top of `builder`'s settings.
    pub fn apply(&self, mut builder: ConfigBuilder) -> ConfigBuilder {
        let engine = self.engine.unwrap_or_else(|| {
            implied_engine(
                settings_engine(&builder),
                self.database_url.is_some(),
                self.cache_url.is_some(),
                self.file_path.is_some(),
            )
        });
        builder = builder.engine(engine);
        if let Some(url) = &self.database_url {
            builder = builder.database_url(url.as_str());
        }
        if let Some(url) = &self.cache_url {
            builder = builder.cache_url(url.as_str());
        }
        if let Some(dir) = &self.file_path {
            builder = builder.file_path(dir);
        }
        builder
    }
}

/// The engine the settings in `builder` name.
///
/// `ConfigBuilder` has no getter for it, so this builds a throwaway `Config` (with a
/// stand-in key, never used). Settings that do not build fall back to the default engine;
/// the real build reports what is wrong with them.
fn settings_engine(builder: &ConfigBuilder) -> EngineKind {
    builder
        .clone()
        .secret_key("stand-in key, only to read the engine setting")
        .allow_weak_secret_key(true)
        .build()
        .map_or(EngineKind::Db, |config| config.engine())
}

/// The engine that the store options imply, given the engine of the settings.
fn implied_engine(current: EngineKind, database: bool, cache: bool, file: bool) -> EngineKind {
    let uses_database = matches!(current, EngineKind::Db | EngineKind::CachedDb);
    let uses_cache = matches!(current, EngineKind::Cache | EngineKind::CachedDb);
    let uses_files = current == EngineKind::File;
    let unused_store_named =
        (database && !uses_database) || (cache && !uses_cache) || (file && !uses_files);
    if !unused_store_named {
        return current;
    }
    match (database, cache) {
        (true, true) => EngineKind::CachedDb,
        (true, false) => EngineKind::Db,
        (false, true) => EngineKind::Cache,
        (false, false) => EngineKind::File,
    }
}

/// Where the sessions of `config` live, in words: `in the cookie, encrypted`,
/// `in PostgreSQL at 127.0.0.1:5432/test`, `in files in /var/lib/app/sessions`.
///
/// Database and cache locations keep only host, port and path: no user, password or
/// query string (which may carry credentials too).
///
/// ```
/// let config = sessio::Config::builder()
///     .secret_key("k")
///     .allow_weak_secret_key(true)
///     .database_url("postgres://app:hunter2@db.internal:5432/shop")
///     .build()
///     .unwrap();
/// assert_eq!(sessio_demo::store::describe(&config), "in PostgreSQL at db.internal:5432/shop");
/// ```
pub fn describe(config: &Config) -> String {
    match config.engine() {
        EngineKind::SignedCookies => {
            "in the cookie, signed (the visitor can read it, not change it)".to_owned()
        }
        EngineKind::EncryptedCookies => "in the cookie, encrypted".to_owned(),
        EngineKind::Db => describe_database(config.database_url()),
        EngineKind::Cache => describe_cache(config.cache_url()),
        EngineKind::CachedDb => format!(
            "{}, with a copy {}",
            describe_database(config.database_url()),
            describe_cache(config.cache_url())
        ),
        EngineKind::File => format!("in files in {}", file_dir(config).display()),
        other => format!("in the store of the {other} engine"),
    }
}

/// The directory of the file engine: the setting, or sessio's default
/// ([`sessio::file::default_dir`]).
pub fn file_dir(config: &Config) -> PathBuf {
    config
        .file_path()
        .map_or_else(sessio::file::default_dir, Path::to_path_buf)
}

/// The file of a `sqlite:` URL, or `None` for an in-memory database or another URL.
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split(['?', '#']).next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

/// `in PostgreSQL at host:port/db`, `in SQLite at path`, ...
fn describe_database(url: &str) -> String {
    let scheme = url
        .split(':')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    match scheme.as_str() {
        "sqlite" => match sqlite_path(url) {
            Some(path) => format!("in SQLite at {}", path.display()),
            None => "in an in-memory SQLite database".to_owned(),
        },
        "postgres" | "postgresql" => format!("in PostgreSQL at {}", location(url)),
        "mysql" => format!("in MySQL at {}", location(url)),
        "mariadb" => format!("in MariaDB at {}", location(url)),
        _ => format!("in the database at {}", location(url)),
    }
}

/// `in Redis at host:port/db`, `in this process's memory`, ...
fn describe_cache(url: &str) -> String {
    let scheme = url
        .split("://")
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    match scheme.as_str() {
        s if s == "memory" || s.starts_with("memory?") => {
            "in this process's memory (memory://)".to_owned()
        }
        "redis" => format!("in Redis at {}", location(url)),
        "redis+cluster" | "redis-cluster" => format!("in a Redis Cluster at {}", location(url)),
        _ => format!("in the cache at {}", location(url)),
    }
}

/// A URL without its scheme, user part, query and fragment: `host:port/path`.
fn location(url: &str) -> String {
    let redacted = sessio::redact_url(url);
    let rest = redacted
        .split_once("://")
        .map_or(redacted.as_str(), |(_, rest)| rest);
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => rest[at + 1..].to_owned(),
        None => rest.to_owned(),
    }
}

/// What the store of `engine` is called in messages, with its URL (password hidden) or
/// directory: `the session database postgres://app:***@db/shop`.
pub fn store_name(config: &Config, engine: &str) -> String {
    match engine {
        "db" => format!(
            "the session database {}",
            sessio::redact_url(config.database_url())
        ),
        "cache" => format!(
            "the session cache {}",
            sessio::redact_url(config.cache_url())
        ),
        "file" => format!("the session directory {}", file_dir(config).display()),
        other => format!("the {other} session engine"),
    }
}

/// The error for a store that cannot be opened, on one line for a store that fails
/// (`cannot open the session database postgres://u:***@h/x: Connection refused (os error 111)`);
/// configuration errors, a missing table and the like are already one line naming the
/// store, and are returned as they are.
pub fn open_error(config: &Config, error: sessio::Error) -> anyhow::Error {
    let sessio::Error::Store { engine, .. } = &error else {
        return error.into();
    };
    // cached-db reports which of its two stores failed.
    let store = store_name(config, engine);
    anyhow::anyhow!("cannot open {store}: {}", root_cause(&error, config))
}

/// The innermost cause, which says what actually happened (refused, timed out, login
/// failed); the layers above it repeat the URL.
fn root_cause(error: &sessio::Error, config: &Config) -> String {
    let mut cause: &(dyn std::error::Error + 'static) = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    if cause.is::<tokio::time::error::Elapsed>() {
        return format!("no answer within {:?}", config.store_timeout());
    }
    cause.to_string()
}

/// Creates a missing directory for the file engine, readable only by its owner: session
/// files are bearer credentials.
pub fn create_private_dir_all(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(builder: ConfigBuilder) -> Config {
        builder
            .secret_key("k")
            .allow_weak_secret_key(true)
            .build()
            .unwrap()
    }

    #[test]
    fn named_stores_imply_their_engine() {
        use EngineKind::*;
        assert_eq!(implied_engine(Db, false, false, false), Db);
        assert_eq!(implied_engine(SignedCookies, true, false, false), Db);
        assert_eq!(implied_engine(Db, false, true, false), Cache);
        assert_eq!(implied_engine(Db, true, true, false), CachedDb);
        assert_eq!(implied_engine(CachedDb, true, false, false), CachedDb);
        assert_eq!(implied_engine(CachedDb, false, true, false), CachedDb);
        assert_eq!(implied_engine(Db, false, false, true), File);
        assert_eq!(implied_engine(File, false, false, true), File);
        assert_eq!(implied_engine(Cache, false, true, false), Cache);
    }

    #[test]
    fn options_override_settings_and_pick_engines() {
        let settings = || Config::builder().engine(EngineKind::SignedCookies);
        let opts = StoreOptions {
            database_url: Some("sqlite://x.db".into()),
            ..StoreOptions::default()
        };
        let c = config(opts.apply(settings()));
        assert_eq!(
            (c.engine(), c.database_url()),
            (EngineKind::Db, "sqlite://x.db")
        );
        let opts = StoreOptions {
            engine: Some(EngineKind::EncryptedCookies),
            cache_url: Some("redis://h".into()),
            ..StoreOptions::default()
        };
        let c = config(opts.apply(settings()));
        assert_eq!(c.engine(), EngineKind::EncryptedCookies, "--engine wins");
        assert_eq!(c.cache_url(), "redis://h");
        let c = config(StoreOptions::default().apply(settings()));
        assert_eq!(c.engine(), EngineKind::SignedCookies);
    }

    #[test]
    fn descriptions_never_show_credentials() {
        let b = || Config::builder();
        let cases = [
            (
                b().database_url("postgres://u:pw@127.0.0.1:5432/test?options[search_path]=s"),
                "in PostgreSQL at 127.0.0.1:5432/test",
            ),
            (
                b().database_url("mysql://root@127.0.0.1:3306/test"),
                "in MySQL at 127.0.0.1:3306/test",
            ),
            (
                b().database_url("sqlite://data/s.sqlite3"),
                "in SQLite at data/s.sqlite3",
            ),
            (
                b().database_url("sqlite::memory:"),
                "in an in-memory SQLite database",
            ),
            (
                b().engine(EngineKind::Cache)
                    .cache_url("redis://:pw@h:6379/2"),
                "in Redis at h:6379/2",
            ),
            (
                b().engine(EngineKind::Cache)
                    .cache_url("redis+cluster://u:pw@a:7000,b:7001"),
                "in a Redis Cluster at a:7000,b:7001",
            ),
            (
                b().engine(EngineKind::Cache).cache_url("memory://"),
                "in this process's memory (memory://)",
            ),
            (
                b().engine(EngineKind::CachedDb)
                    .database_url("postgres://h/db")
                    .cache_url("redis://h:6379"),
                "in PostgreSQL at h/db, with a copy in Redis at h:6379",
            ),
            (
                b().engine(EngineKind::EncryptedCookies),
                "in the cookie, encrypted",
            ),
            (
                b().engine(EngineKind::File).file_path("/srv/sessions"),
                "in files in /srv/sessions",
            ),
        ];
        for (builder, expected) in cases {
            assert_eq!(describe(&config(builder)), expected);
        }
    }

    #[test]
    fn sqlite_paths() {
        assert_eq!(
            sqlite_path("sqlite://a/b.db"),
            Some(PathBuf::from("a/b.db"))
        );
        assert_eq!(
            sqlite_path("sqlite:///abs/b.db?mode=rwc"),
            Some(PathBuf::from("/abs/b.db"))
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://h/db"), None);
    }

    #[test]
    fn store_failures_are_one_line_without_the_password() {
        let c = config(Config::builder().database_url("postgres://u:secret@127.0.0.1:1/x"));
        let source = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e = open_error(&c, sessio::Error::store("db", "could not connect", source));
        assert_eq!(
            e.to_string(),
            "cannot open the session database postgres://u:***@127.0.0.1:1/x: refused"
        );
        assert_eq!(e.chain().count(), 1);
    }
}
