//! `sessio`: run the demo, migrate and clean the session store, inspect signed values,
//! check settings. A thin shell over library calls; the logic lives in the modules.
//!
//! ```text
//! sessio demo                     # the demo site on http://127.0.0.1:8000
//! sessio migrate                  # create the django_session table
//! sessio clear-expired            # Django's clearsessions
//! sessio inspect 'eyJ1...:1r31eq:oxQq...' --secret "$KEY"
//! sessio check --deploy           # settings that are unsafe in production
//! sessio generate-key             # a value for SESSIO_SECRET_KEY
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
    /// Create or upgrade the session table of the db engine.
    Migrate(MigrateArgs),
    /// Delete expired sessions from the store (Django's clearsessions).
    ClearExpired(ClearExpiredArgs),
    /// Verify and decode a signed session cookie or a db `session_data` value.
    Inspect(inspect::InspectArgs),
    /// Report settings that are unsafe in production (like Django's `check --deploy`).
    Check(CheckArgs),
    /// Print a new random secret key, for SESSIO_SECRET_KEY.
    GenerateKey,
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// The session engine: db, signed-cookies, file, cache or cached-db
    /// [default: SESSIO_ENGINE, else db].
    #[arg(long, value_name = "ENGINE", value_parser = parse_engine)]
    engine: Option<EngineKind>,
    /// The SQLite file of the db engine [default: <DATA_DIR>/sessions.sqlite3].
    #[arg(long, value_name = "PATH")]
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
    /// The database, e.g. sqlite://sessions.sqlite3 [default: SESSIO_DATABASE_URL].
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
}

#[derive(Debug, Args)]
struct ClearExpiredArgs {
    /// The database, e.g. sqlite://sessions.sqlite3 [default: SESSIO_DATABASE_URL];
    /// giving one selects the db engine.
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
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
                engine: args.engine,
                database: args.database,
                data_dir: args.data_dir,
                addr: args.addr,
                config_file: cli.config.clone(),
            })
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate(args) => {
            maintenance::migrate(settings(config_file)?, args.database_url).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::ClearExpired(args) => {
            maintenance::clear_expired(settings(config_file)?, args.database_url, args.batch_size)
                .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Inspect(args) => inspect::run(settings(config_file)?, args),
        Command::Check(_) => check::run(settings(config_file)?),
        Command::GenerateKey => {
            println!("{}", sessio::SecretKey::generate()?.expose());
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
    eprintln!("error: {error}");
    let mut previous = error.to_string();
    for cause in error.chain().skip(1) {
        let text = cause.to_string();
        // Many messages already end with their source's text; do not say it twice.
        if !previous.contains(&text) {
            eprintln!("  caused by: {text}");
        }
        previous = text;
    }
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
