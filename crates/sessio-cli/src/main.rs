//! `sessio`: run the demo, migrate and clean the session store, inspect signed values,
//! check settings. A thin shell over library calls; the logic lives in the modules.
//!
//! ```text
//! sessio demo                     # the demo site on http://127.0.0.1:8000
//! sessio demo --engine encrypted-cookies
//! sessio migrate --database-url postgres://app@db.internal/shop
//! sessio clear-expired            # Django's clearsessions
//! sessio sign '{"user_id": 42}' --secret "$KEY"
//! sessio inspect 'eyJ1...:1r31eq:oxQq...' --secret "$KEY"
//! sessio check --deploy           # settings that are unsafe in production
//! sessio generate-key             # a value for SESSIO_SECRET_KEY
//! sessio bench --duration 5s      # measure the engines on this machine
//! ```

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use sessio::{Config, ConfigBuilder, EngineKind};

mod check;
mod inspect;
mod maintenance;
mod sign;

/// Django-compatible web sessions for Rust: demo, maintenance and inspection.
///
/// Settings come from the TOML file given with --config (or SESSIO_CONFIG), then from
/// SESSIO_* environment variables, then from each command's flags.
#[derive(Debug, Parser)]
#[command(name = "sessio", version, propagate_version = true)]
struct Cli {
    /// A TOML settings file (the same keys as the SESSIO_* variables, in lower case
    /// without the prefix).
    #[arg(long, global = true, value_name = "FILE", env = "SESSIO_CONFIG")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the demo shop on http://127.0.0.1:8000 (or a free port if that one is taken).
    Demo(DemoArgs),
    /// Prepare the store: create or upgrade the session table, or the file directory.
    ///
    /// The db and cached-db engines get Django's `django_session` table; the file engine
    /// its directory (owner-only); caches and cookies need nothing.
    Migrate(MigrateArgs),
    /// Delete expired sessions from the store (Django's clearsessions).
    ///
    /// Caches expire sessions by themselves; the file engine needs the app's secret key,
    /// since each session's expiry date is signed.
    ClearExpired(ClearExpiredArgs),
    /// Sign a JSON object as Django does: a signed-cookies value or db `session_data`.
    Sign(sign::SignArgs),
    /// Verify and decode a signed session cookie or a db `session_data` value.
    Inspect(inspect::InspectArgs),
    /// Report settings that are unsafe in production (like Django's `check --deploy`).
    Check(CheckArgs),
    /// Print a new random secret key, for SESSIO_SECRET_KEY.
    GenerateKey,
    /// Measure the engines on this machine: real HTTP servers on loopback, a closed-loop
    /// load generator, a table, a Markdown report and charts.
    Bench(sessio_bench::BenchOptions),
}

/// Which engine, and where its sessions live. Each option overrides the settings; naming a
/// store without `--engine` selects the engine that uses it.
#[derive(Debug, Args)]
struct StoreArgs {
    /// The session engine: signed-cookies, encrypted-cookies, db, cache, cached-db or file
    /// [default: SESSIO_ENGINE, else the one the options below imply, else db].
    #[arg(long, value_name = "ENGINE", value_parser = parse_engine)]
    engine: Option<EngineKind>,
    /// The database of the db and cached-db engines: sqlite://PATH,
    /// postgres://USER:PASSWORD@HOST:5432/DB or mysql://USER:PASSWORD@HOST:3306/DB
    /// [default: SESSIO_DATABASE_URL]. Without --engine it selects db.
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// The cache of the cache and cached-db engines: memory://, redis://HOST:6379/0 or
    /// redis+cluster://HOST1:7000,HOST2:7001 [default: SESSIO_CACHE_URL]. Without --engine
    /// it selects cache (cached-db with --database-url).
    #[arg(long, value_name = "URL")]
    cache_url: Option<String>,
    /// The directory of the file engine [default: SESSIO_FILE_PATH]. Without --engine it
    /// selects file.
    #[arg(long, value_name = "DIR")]
    file_path: Option<PathBuf>,
}

impl StoreArgs {
    fn options(self) -> sessio_demo::StoreOptions {
        sessio_demo::StoreOptions {
            engine: self.engine,
            database_url: self.database_url,
            cache_url: self.cache_url,
            file_path: self.file_path,
        }
    }
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// The store; the demo's defaults are the db engine on <DATA_DIR>/sessions.sqlite3,
    /// and <DATA_DIR>/sessions for the file engine.
    #[command(flatten)]
    store: StoreArgs,
    /// A SQLite file for the database: short for --database-url sqlite://PATH.
    #[arg(long, value_name = "PATH", conflicts_with = "database_url")]
    database: Option<PathBuf>,
    /// Where the demo keeps its database and its generated secret key.
    #[arg(long, value_name = "DIR", default_value = sessio_demo::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// The address to listen on [default: 127.0.0.1:8000, or a free port if taken].
    #[arg(long, value_name = "ADDR")]
    addr: Option<SocketAddr>,
}

#[derive(Debug, Args)]
struct MigrateArgs {
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Debug, Args)]
struct ClearExpiredArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// How many sessions one statement deletes, so no statement holds the store for long.
    #[arg(long, value_name = "N", default_value_t = sessio::DEFAULT_CLEAR_BATCH,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    batch_size: usize,
}

#[derive(Debug, Args)]
struct CheckArgs {
    /// Accepted for familiarity with Django's `check --deploy`: the checks are always the
    /// deployment checks.
    #[arg(long)]
    deploy: bool,
}

fn parse_engine(s: &str) -> Result<EngineKind, sessio::Error> {
    s.parse()
}

/// An error in how the command was called (exit code 2, as clap's own).
#[derive(Debug)]
pub(crate) struct UsageError(pub(crate) String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// The settings before any command's flags: the config file, then `SESSIO_*` variables.
pub(crate) fn settings(config_file: Option<&Path>) -> sessio::Result<ConfigBuilder> {
    let mut builder = Config::builder();
    if let Some(path) = config_file {
        builder = builder.toml_file(path)?;
    }
    builder.env()
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(matches!(cli.command, Command::Demo(_)));
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            report(&e);
            if e.is::<UsageError>() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config_file = cli.config.as_deref();
    match cli.command {
        Command::Demo(args) => {
            sessio_demo::serve(sessio_demo::DemoOptions {
                store: args.store.options(),
                database: args.database,
                data_dir: args.data_dir,
                addr: args.addr,
                config_file: cli.config.clone(),
            })
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate(args) => {
            maintenance::migrate(settings(config_file)?, &args.store.options()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::ClearExpired(args) => {
            maintenance::clear_expired(
                settings(config_file)?,
                &args.store.options(),
                args.batch_size,
            )
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Sign(args) => sign::run(settings(config_file)?, args),
        Command::Inspect(args) => inspect::run(settings(config_file)?, args),
        Command::Check(_) => check::run(settings(config_file)?),
        Command::GenerateKey => {
            println!("{}", sessio::SecretKey::generate()?.expose());
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(opts) => {
            // The harness pins runtimes of its own; it is driven from a plain thread, as
            // the sessio-bench binary does.
            tokio::task::spawn_blocking(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?
                    .block_on(sessio_bench::run(opts))
            })
            .await??;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Logs go to stderr. `RUST_LOG` decides; without it the demo logs each request and the
/// other commands only warnings, so their output stays clean.
fn init_tracing(demo: bool) {
    use tracing_subscriber::EnvFilter;
    let default = if demo { "info" } else { "warn" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for people: a log file or pipe gets plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// `error: <message>`, then each cause that adds something.
fn report(error: &anyhow::Error) {
    let secrets = urls_with_passwords(
        std::env::args().chain(
            ["SESSIO_DATABASE_URL", "SESSIO_CACHE_URL"]
                .into_iter()
                .filter_map(|name| std::env::var(name).ok()),
        ),
    );
    eprintln!("error: {}", scrub(&error.to_string(), &secrets));
    let mut previous = error.to_string();
    for cause in error.chain().skip(1) {
        let text = cause.to_string();
        // Many messages already end with their source's text; do not say it twice.
        if !previous.contains(&text) {
            eprintln!("  caused by: {}", scrub(&text, &secrets));
        }
        previous = text;
    }
}

/// The URLs among `candidates` (arguments, `--flag=URL` included, and variables) that hold
/// a password, each with its redacted form.
fn urls_with_passwords(candidates: impl Iterator<Item = String>) -> Vec<(String, String)> {
    candidates
        .map(|c| match c.split_once('=') {
            Some((flag, url)) if flag.starts_with("--") => url.to_owned(),
            _ => c,
        })
        .filter(|c| c.contains("://"))
        .filter_map(|url| {
            let redacted = sessio::redact_url(&url);
            (redacted != url).then_some((url, redacted))
        })
        .collect()
}

/// A last line of defence: sessio's messages already hide passwords, but a driver's error
/// text might quote a URL, and a password must never reach a terminal or a log file.
fn scrub(text: &str, secrets: &[(String, String)]) -> String {
    secrets
        .iter()
        .fold(text.to_owned(), |text, (url, redacted)| {
            text.replace(url.as_str(), redacted)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn passwords_are_scrubbed_from_messages() {
        let secrets = urls_with_passwords(
            [
                "sessio",
                "--database-url=postgres://u:pw@h/db",
                "redis://:pw2@h:6379",
                "sqlite://x.db",
            ]
            .into_iter()
            .map(String::from),
        );
        assert_eq!(secrets.len(), 2);
        assert_eq!(
            scrub("bad postgres://u:pw@h/db and redis://:pw2@h:6379", &secrets),
            "bad postgres://u:***@h/db and redis://:***@h:6379"
        );
    }

    #[test]
    fn store_options_and_the_sqlite_shortcut() {
        let cli = Cli::try_parse_from([
            "sessio",
            "migrate",
            "--database-url",
            "postgres://h/db",
            "--cache-url",
            "redis://h",
        ])
        .unwrap();
        match cli.command {
            Command::Migrate(args) => {
                let options = args.store.options();
                assert_eq!(options.database_url.as_deref(), Some("postgres://h/db"));
                assert_eq!(options.cache_url.as_deref(), Some("redis://h"));
            }
            other => panic!("{other:?}"),
        }
        let both = [
            "sessio",
            "demo",
            "--database",
            "a.db",
            "--database-url",
            "sqlite://b.db",
        ];
        assert!(Cli::try_parse_from(both).is_err(), "one database at a time");
        assert!(Cli::try_parse_from(["sessio", "demo", "--file-path", "/tmp/s"]).is_ok());
    }

    #[test]
    fn engines_and_batch_sizes_are_validated() {
        assert!(Cli::try_parse_from(["sessio", "demo", "--engine", "db"]).is_ok());
        assert!(Cli::try_parse_from(["sessio", "demo", "--engine", "mongo"]).is_err());
        assert!(Cli::try_parse_from(["sessio", "clear-expired", "--batch-size", "0"]).is_err());
        let cli = Cli::try_parse_from(["sessio", "clear-expired"]).unwrap();
        match cli.command {
            Command::ClearExpired(args) => assert_eq!(args.batch_size, sessio::DEFAULT_CLEAR_BATCH),
            other => panic!("{other:?}"),
        }
    }
}
