//! `sessio-demo`: the demo shop as a server.
//!
//! ```text
//! sessio-demo                                   # http://127.0.0.1:8000, SQLite in .sessio-demo/
//! sessio-demo --engine encrypted-cookies
//! sessio-demo --database-url postgres://postgres@127.0.0.1/test
//! sessio-demo --cache-url redis://127.0.0.1:6379/0 --addr 0.0.0.0:8080
//! ```
//!
//! Settings come from the TOML file given with --config (or SESSIO_CONFIG), then from
//! SESSIO_* environment variables, then from the flags.

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser};
use sessio::EngineKind;

/// The sessio demo shop: log in, fill a cart, and watch the session change on every page.
///
/// Serves on http://127.0.0.1:8000 (or a free port if that one is taken) until Ctrl-C.
#[derive(Debug, Parser)]
#[command(name = "sessio-demo", version)]
struct Cli {
    /// A TOML settings file (the same keys as the SESSIO_* variables, in lower case
    /// without the prefix).
    #[arg(long, value_name = "FILE", env = "SESSIO_CONFIG")]
    config: Option<PathBuf>,
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

impl Cli {
    fn options(self) -> sessio_demo::DemoOptions {
        sessio_demo::DemoOptions {
            store: self.store.options(),
            database: self.database,
            data_dir: self.data_dir,
            addr: self.addr,
            config_file: self.config,
        }
    }
}

fn parse_engine(s: &str) -> Result<EngineKind, sessio::Error> {
    s.parse()
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    match sessio_demo::serve(cli.options()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report(&e);
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr. `RUST_LOG` decides; without it the demo logs each request.
fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
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
                "sessio-demo",
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
            "sessio-demo",
            "--database-url",
            "postgres://h/db",
            "--cache-url",
            "redis://h",
        ])
        .unwrap();
        let options = cli.options();
        assert_eq!(
            options.store.database_url.as_deref(),
            Some("postgres://h/db")
        );
        assert_eq!(options.store.cache_url.as_deref(), Some("redis://h"));
        assert_eq!(
            options.data_dir,
            PathBuf::from(sessio_demo::DEFAULT_DATA_DIR)
        );
        let both = [
            "sessio-demo",
            "--database",
            "a.db",
            "--database-url",
            "sqlite://b.db",
        ];
        assert!(Cli::try_parse_from(both).is_err(), "one database at a time");
        assert!(Cli::try_parse_from(["sessio-demo", "--file-path", "/tmp/s"]).is_ok());
    }

    #[test]
    fn engines_are_validated() {
        assert!(Cli::try_parse_from(["sessio-demo", "--engine", "db"]).is_ok());
        assert!(Cli::try_parse_from(["sessio-demo", "--engine", "mongo"]).is_err());
    }
}
