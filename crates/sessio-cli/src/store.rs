//! The store flags of `migrate` and `clear-expired` (`--engine`, `--database-url`,
//! `--cache-url`, `--file-path`), mapped onto [`sessio::ConfigBuilder`] on top of the
//! settings (config file, `SESSIO_*` variables); and one-line errors for a store that
//! cannot be opened.
//!
//! Every URL shown goes through [`sessio::redact_url`]: a password never reaches a terminal
//! or a log.

use std::path::{Path, PathBuf};

use clap::Args;
use sessio::{Config, ConfigBuilder, EngineKind};

/// Which engine, and where its sessions live. Each option overrides the settings; `None`
/// keeps them.
///
/// Naming a store without `--engine` selects the engine that uses it, so
/// `sessio migrate --database-url postgres://…` needs no `--engine db`: a database URL
/// selects `db`, a cache URL `cache`, both `cached-db`, a directory `file`. An engine from
/// the settings that already uses the named store (`cached-db` with a database URL) is kept.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct StoreArgs {
    /// The session engine: signed-cookies, encrypted-cookies, db, cache, cached-db or file
    /// [default: SESSIO_ENGINE, else the one the options below imply, else db].
    #[arg(long, value_name = "ENGINE", value_parser = parse_engine)]
    pub(crate) engine: Option<EngineKind>,
    /// The database of the db and cached-db engines: sqlite://PATH,
    /// postgres://USER:PASSWORD@HOST:5432/DB or mysql://USER:PASSWORD@HOST:3306/DB
    /// [default: SESSIO_DATABASE_URL]. Without --engine it selects db.
    #[arg(long, value_name = "URL")]
    pub(crate) database_url: Option<String>,
    /// The cache of the cache and cached-db engines: memory://, redis://HOST:6379/0 or
    /// redis+cluster://HOST1:7000,HOST2:7001 [default: SESSIO_CACHE_URL]. Without --engine
    /// it selects cache (cached-db with --database-url).
    #[arg(long, value_name = "URL")]
    pub(crate) cache_url: Option<String>,
    /// The directory of the file engine [default: SESSIO_FILE_PATH]. Without --engine it
    /// selects file.
    #[arg(long, value_name = "DIR")]
    pub(crate) file_path: Option<PathBuf>,
}

fn parse_engine(s: &str) -> Result<EngineKind, sessio::Error> {
    s.parse()
}

impl StoreArgs {
    /// Applies the flags on top of `builder`'s settings.
    pub(crate) fn apply(&self, mut builder: ConfigBuilder) -> ConfigBuilder {
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

/// The engine that the store flags imply, given the engine of the settings.
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

/// The directory of the file engine: the setting, or sessio's default
/// ([`sessio::file::default_dir`]).
pub(crate) fn file_dir(config: &Config) -> PathBuf {
    config
        .file_path()
        .map_or_else(sessio::file::default_dir, Path::to_path_buf)
}

/// What the store of `engine` is called in messages, with its URL (password hidden) or
/// directory: `the session database postgres://app:***@db/shop`.
fn store_name(config: &Config, engine: &str) -> String {
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
pub(crate) fn open_error(config: &Config, error: sessio::Error) -> anyhow::Error {
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
pub(crate) fn create_private_dir_all(dir: &Path) -> std::io::Result<()> {
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
    fn flags_override_settings_and_pick_engines() {
        let settings = || Config::builder().engine(EngineKind::SignedCookies);
        let args = StoreArgs {
            database_url: Some("sqlite://x.db".into()),
            ..StoreArgs::default()
        };
        let c = config(args.apply(settings()));
        assert_eq!(
            (c.engine(), c.database_url()),
            (EngineKind::Db, "sqlite://x.db")
        );
        let args = StoreArgs {
            engine: Some(EngineKind::EncryptedCookies),
            cache_url: Some("redis://h".into()),
            ..StoreArgs::default()
        };
        let c = config(args.apply(settings()));
        assert_eq!(c.engine(), EngineKind::EncryptedCookies, "--engine wins");
        assert_eq!(c.cache_url(), "redis://h");
        let c = config(StoreArgs::default().apply(settings()));
        assert_eq!(c.engine(), EngineKind::SignedCookies);
        let args = StoreArgs {
            file_path: Some("/srv/sessions".into()),
            ..StoreArgs::default()
        };
        let c = config(args.apply(settings()));
        assert_eq!(c.engine(), EngineKind::File);
        assert_eq!(file_dir(&c), PathBuf::from("/srv/sessions"));
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
