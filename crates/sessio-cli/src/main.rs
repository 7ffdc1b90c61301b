//! `sessio`: migrate and clean the session store, sign and inspect signed values, check
//! settings. A thin shell over library calls; the logic lives in the modules.
//!
//! ```text
//! sessio migrate --database-url postgres://app@db.internal/shop
//! sessio clear-expired            # Django's clearsessions
//! sessio sign '{"user_id": 42}' --secret "$KEY"
//! sessio inspect 'eyJ1...:1r31eq:oxQq...' --secret "$KEY"
//! sessio check --deploy           # settings that are unsafe in production
//! sessio generate-key             # a value for SESSIO_SECRET_KEY
//! ```
//!
//! The demo shop and the benchmark are programs of their own: `sessio-demo` and
//! `sessio-bench`.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use sessio::{Config, ConfigBuilder};

mod check;
mod inspect;
mod maintenance;
mod sign;
mod store;

use store::StoreArgs;

/// Django-compatible web sessions for Rust: maintenance and inspection.
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
    init_tracing();
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
        Command::Migrate(args) => {
            maintenance::migrate(settings(config_file)?, &args.store).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::ClearExpired(args) => {
            maintenance::clear_expired(settings(config_file)?, &args.store, args.batch_size)
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
    }
}

/// Logs go to stderr. `RUST_LOG` decides; without it only warnings, so the commands'
/// output stays clean.
fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
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
    fn store_options() {
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
                assert_eq!(args.store.database_url.as_deref(), Some("postgres://h/db"));
                assert_eq!(args.store.cache_url.as_deref(), Some("redis://h"));
            }
            other => panic!("{other:?}"),
        }
        let cli = Cli::try_parse_from(["sessio", "clear-expired", "--file-path", "/tmp/s"]);
        match cli.unwrap().command {
            Command::ClearExpired(args) => {
                assert_eq!(args.store.file_path, Some(PathBuf::from("/tmp/s")));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn engines_and_batch_sizes_are_validated() {
        assert!(Cli::try_parse_from(["sessio", "migrate", "--engine", "db"]).is_ok());
        assert!(Cli::try_parse_from(["sessio", "migrate", "--engine", "mongo"]).is_err());
        assert!(Cli::try_parse_from(["sessio", "clear-expired", "--batch-size", "0"]).is_err());
        let cli = Cli::try_parse_from(["sessio", "clear-expired"]).unwrap();
        match cli.command {
            Command::ClearExpired(args) => assert_eq!(args.batch_size, sessio::DEFAULT_CLEAR_BATCH),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_demo_and_the_bench_are_not_commands() {
        assert!(Cli::try_parse_from(["sessio", "demo"]).is_err());
        assert!(Cli::try_parse_from(["sessio", "bench"]).is_err());
    }
}
