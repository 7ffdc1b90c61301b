//! # sessio-bench
//!
//! sessio's benchmark harness: it starts real HTTP servers (axum with sessio's
//! `SessionLayer`, one per engine, and axum without sessions as the ceiling), drives them
//! with a built-in closed-loop load generator, and reports requests/s, latency, cookie
//! bytes and storage per session as a table, a Markdown report, JSON and SVG charts.
//!
//! ```text
//! cargo run --release -p sessio-bench -- --duration 5s --engines signed-cookies,db,memory
//! ```
//!
//! * [`loadgen`]: the generator (virtual users with keep-alive connections and cookie jars).
//! * [`workload`]: the routes and what they store.
//! * [`server`]: the [`Target`]/[`Server`] traits and the pinned server runner.
//! * [`engines`]: sessio's engines as targets.
//! * [`scale`]: 1M sessions, `clear-expired` under load, memory per session.
//! * [`report`]: results and their renderings.
//!
//! The peer comparison (tower-sessions, actix-session) lives in `bench/peers`, outside the
//! workspace, and reuses this crate's generator and workloads.
//!
//! Pinning: the server runs on its own runtime pinned to `--server-core` (default 0), the
//! generator on another pinned to `--load-core` (default 1). Databases and Redis run in
//! their own processes, unpinned.

#![warn(missing_docs)]

use std::path::PathBuf;
#[cfg(feature = "engines")]
use std::sync::Arc;
use std::time::Duration;

#[cfg(feature = "engines")]
pub mod apps;
pub mod catalog;
pub mod chart;
pub mod cpu;
#[cfg(feature = "engines")]
pub mod engines;
pub mod harness;
pub mod loadgen;
pub mod report;
#[cfg(feature = "engines")]
pub mod scale;
pub mod server;
pub mod workload;

pub use catalog::{host_port, EngineName, ScaleMode, Services};
#[cfg(feature = "engines")]
pub use engines::EngineTarget;
pub use harness::{measure, run_matrix, RunConfig};
pub use loadgen::{ClientKind, LoadConfig};
pub use report::{Measurement, Report};
pub use server::{AxumServer, ExternalTarget, Server, ServerRuntime, Target};
pub use workload::Workload;

/// The servers the engines use.
#[derive(Debug, Clone, clap::Args)]
pub struct ServiceArgs {
    /// PostgreSQL database of db-postgres (created if missing; its django_session table is
    /// emptied before each run).
    #[arg(
        long,
        env = "SESSIO_BENCH_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/sessio_bench"
    )]
    pub postgres_url: String,
    /// MySQL/MariaDB database of db-mysql (created if missing; emptied before each run).
    #[arg(
        long,
        env = "SESSIO_BENCH_MYSQL_URL",
        default_value = "mysql://root@127.0.0.1:3306/sessio_bench"
    )]
    pub mysql_url: String,
    /// Redis of cache-redis (keys under a per-run prefix, deleted after the run).
    #[arg(
        long,
        env = "SESSIO_BENCH_REDIS_URL",
        default_value = "redis://127.0.0.1:6379/13"
    )]
    pub redis_url: String,
    /// Where SQLite databases and session files go [default: the system temp directory].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

impl ServiceArgs {
    /// The services these arguments name.
    pub fn services(&self) -> Services {
        Services {
            postgres_url: self.postgres_url.clone(),
            mysql_url: self.mysql_url.clone(),
            redis_url: self.redis_url.clone(),
            data_dir: self.data_dir.clone(),
            memory_estimates: Vec::new(),
        }
    }
}

/// The options of the `sessio-bench` binary.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchOptions {
    /// How long each measurement lasts (`5s`, `500ms`, `1m`).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Load before each measurement, not measured.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Virtual users: concurrent keep-alive connections, each with its own cookie jar.
    #[arg(long, default_value_t = 64)]
    pub users: usize,
    /// Engines, comma-separated: bare-axum, signed-cookies, db (db-sqlite), db-postgres,
    /// db-mysql, memory (cache-memory), redis (cache-redis), cached-db, file, or all.
    /// Engines whose server does not answer are skipped with a note.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "all",
        value_name = "LIST"
    )]
    pub engines: Vec<String>,
    /// Workloads, comma-separated: none, read, write, login, payload:BYTES, sweep
    /// (payload:100 to payload:3500), or all.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "all",
        value_name = "LIST"
    )]
    pub workloads: Vec<String>,
    /// The core the server's runtime is pinned to.
    #[arg(long, default_value_t = 0, value_name = "CPU")]
    pub server_core: usize,
    /// The core the load generator's runtime is pinned to.
    #[arg(long, default_value_t = 1, value_name = "CPU")]
    pub load_core: usize,
    /// Do not pin the server or the generator.
    #[arg(long)]
    pub no_pin: bool,
    /// The generator's HTTP client.
    #[arg(long, value_enum, default_value_t)]
    pub client: ClientKind,
    /// The server's tokio runtime (on its one core).
    #[arg(long, value_enum, default_value_t)]
    pub runtime: ServerRuntime,
    /// Run scale measurements instead of the workload matrix (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', value_name = "LIST")]
    pub scale: Vec<ScaleMode>,
    /// Run the whole matrix this many times, interleaved, and report each cell's median
    /// round (for shared, noisy machines).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub repeat: usize,
    /// Rows of the scale measurements.
    #[arg(long, default_value_t = 1_000_000, value_name = "N")]
    pub scale_rows: u64,
    /// Where report.md, results.json and the charts go.
    #[arg(long, default_value = "target/sessio-bench", value_name = "DIR")]
    pub out: PathBuf,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// The servers.
    #[command(flatten)]
    pub services: ServiceArgs,
}

impl BenchOptions {
    /// The run configuration these options describe.
    pub fn run_config(&self) -> RunConfig {
        let pin = !self.no_pin && cpu::available_cores() >= 2;
        RunConfig {
            load: LoadConfig {
                users: self.users.max(1),
                warmup: self.warmup,
                duration: self.duration,
                core: pin.then_some(self.load_core),
                client: self.client,
            },
            server_core: pin.then_some(self.server_core),
            repeat: self.repeat.max(1),
        }
    }
}

/// Parses `5s`, `1.5s`, `250ms`, `2m`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (5s, 500ms, 1m)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" | "sec" => n,
        "m" | "min" => n * 60.0,
        _ => return Err(format!("`{s}`: unknown unit `{unit}` (ms, s, m)")),
    };
    if !(secs.is_finite() && secs >= 0.0) {
        return Err(format!("`{s}` is not a duration"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Runs the benchmark these options describe: prints the table to stdout, writes the report
/// to `opts.out`, and returns it.
#[cfg(feature = "engines")]
pub async fn run(opts: BenchOptions) -> anyhow::Result<Report> {
    let engines = EngineName::parse_list(&opts.engines).map_err(anyhow::Error::msg)?;
    let workloads = Workload::parse_list(&opts.workloads).map_err(anyhow::Error::msg)?;
    anyhow::ensure!(!engines.is_empty(), "no engines to measure");
    let config = opts.run_config();
    let mut report = Report::new("sessio benchmark");
    let mut services = opts.services.services();

    let mut available = Vec::new();
    for &engine in &engines {
        let target = EngineTarget::new(engine, Arc::new(services.clone()), opts.runtime);
        match target.check().await {
            Ok(()) => available.push(engine),
            Err(why) => {
                eprintln!("note: {why}");
                report.notes.push(why);
            }
        }
    }

    if !opts.scale.is_empty() {
        let (results, measurements, notes) = scale::run(
            &opts.scale,
            opts.scale_rows,
            Arc::new(services),
            opts.runtime,
            &config,
            &available,
        )
        .await?;
        report.scale = results;
        report.measurements = measurements;
        report.notes.extend(notes);
    } else {
        if available.contains(&EngineName::CacheMemory) {
            // Before any server runs, so that no freed memory is reused (see
            // `memory_estimates`).
            let ws = workloads.clone();
            services.memory_estimates =
                tokio::task::spawn_blocking(move || engines::memory_estimates(&ws, 50_000))
                    .await??;
        }
        let services = Arc::new(services);
        let targets: Vec<Box<dyn Target>> = available
            .iter()
            .map(|&e| {
                Box::new(EngineTarget::new(e, services.clone(), opts.runtime)) as Box<dyn Target>
            })
            .collect();
        let matrix = run_matrix(&targets, &workloads, &config, opts.quiet).await;
        report.measurements = matrix.measurements;
        report.notes.extend(matrix.notes);
        let sessio_targets: Vec<String> = available
            .iter()
            .filter(|&&e| e != EngineName::Bare)
            .map(|e| e.to_string())
            .collect();
        report.check_goals(&report::Goal::issue_goals(), &sessio_targets);
    }
    describe_run(&mut report, &opts, &config);
    report.write(&opts.out)?;
    print!("{}", report.table());
    println!("report: {}", opts.out.join("report.md").display());
    Ok(report)
}

/// Adds the run's settings to the report's environment section.
pub fn describe_run(report: &mut Report, opts: &BenchOptions, config: &RunConfig) {
    let env = &mut report.environment;
    env.insert("users".into(), opts.users.to_string());
    env.insert(
        "duration / warm-up".into(),
        format!("{:?} / {:?}", opts.duration, opts.warmup),
    );
    env.insert(
        "pinning".into(),
        match (config.server_core, config.load.core) {
            (Some(s), Some(l)) => format!("server core {s}, generator core {l}"),
            _ => "off".into(),
        },
    );
    env.insert("client".into(), format!("{:?}", opts.client).to_lowercase());
    env.insert(
        "rounds".into(),
        format!(
            "{} (each cell: the median round by requests/s)",
            config.repeat
        ),
    );
    env.insert(
        "server runtime".into(),
        format!("{:?}", opts.runtime).to_lowercase(),
    );
}

/// The options of `sessio-bench serve`: one engine's server in this process, for
/// [`ExternalTarget`].
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// The engine (as for --engines).
    #[arg(long)]
    pub engine: String,
    /// The workload the store is prepared for.
    #[arg(long, default_value = "write")]
    pub workload: String,
    /// The core the server is pinned to.
    #[arg(long, default_value_t = 0)]
    pub server_core: usize,
    /// Do not pin.
    #[arg(long)]
    pub no_pin: bool,
    /// The server's tokio runtime.
    #[arg(long, value_enum, default_value_t)]
    pub runtime: ServerRuntime,
    /// The servers.
    #[command(flatten)]
    pub services: ServiceArgs,
}

/// Serves one engine until stdin closes: prints `listening ADDR`, answers a `storage` line
/// with `storage BYTES` (or `storage none`).
#[cfg(feature = "engines")]
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    use std::io::Write as _;
    use tokio::io::AsyncBufReadExt as _;
    let engine: EngineName = args.engine.parse().map_err(anyhow::Error::msg)?;
    let workload: Workload = args.workload.parse().map_err(anyhow::Error::msg)?;
    let target = EngineTarget::new(engine, Arc::new(args.services.services()), args.runtime);
    target.check().await.map_err(anyhow::Error::msg)?;
    let pin = !args.no_pin && cpu::available_cores() >= 2;
    let server = target
        .start(workload, pin.then_some(args.server_core))
        .await?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening {}", server.addr())?;
        out.flush()?;
    }
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        if line.trim() == "storage" {
            let v = server.storage_bytes_per_session().await.unwrap_or(None);
            let mut out = std::io::stdout().lock();
            match v {
                Some(b) => writeln!(out, "storage {b}")?,
                None => writeln!(out, "storage none")?,
            }
            out.flush()?;
        }
    }
    server.stop().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("5h").is_err());
        assert!(parse_duration("x").is_err());
    }
}
