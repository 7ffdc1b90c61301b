//! `sessio-bench`: the benchmark harness as a command.
//!
//! ```text
//! sessio-bench --duration 5s --engines signed-cookies,db,memory
//! sessio-bench --scale all                 # 1M rows, clear-expired, memory per session
//! sessio-bench serve --engine db           # one engine's server, for bench/peers
//! ```

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sessio_bench::{BenchOptions, ServeArgs};

/// Benchmarks sessio's engines on real HTTP servers with a closed-loop load generator.
#[derive(Debug, Parser)]
#[command(name = "sessio-bench", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    options: BenchOptions,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve one engine until stdin closes (used by bench/peers).
    Serve(ServeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    // The harness starts its own pinned runtimes; this one only coordinates.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        match cli.command {
            Some(Command::Serve(args)) => sessio_bench::serve(args).await,
            None => sessio_bench::run(cli.options).await.map(|_| ()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs (sessio's warnings) go to stderr. `RUST_LOG` decides; without it only warnings, so
/// the table stays readable.
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
