//! `sessio-peers`: sessio against the session frameworks people use today, side by side in
//! one run, on sessio-bench's load generator and workloads.
//!
//! ```text
//! cargo build --release -p sessio-bench            # in the main workspace
//! cd bench/peers && cargo run --release -- --duration 5s --workloads none,read,write
//! ```
//!
//! Systems: axum without sessions (the ceiling), tower-sessions 0.14 with its memory,
//! SQLite, PostgreSQL and Redis stores, actix-session 0.11 (cookie and Redis stores) on
//! actix-web, and sessio's engines. sessio's engines run in `sessio-bench serve` processes
//! (this crate cannot link sessio's SQLite: see Cargo.toml); the peers run here. Every
//! server runs on the same pinned core, against the same generator on the other core.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use sessio_bench::cpu::ThreadSet;
use sessio_bench::report::{Goal, Report};
use sessio_bench::workload::Workload;
use sessio_bench::{
    run_matrix, AxumServer, BenchOptions, EngineName, ExternalTarget, Server, Target,
};

mod peers;

/// sessio against tower-sessions and actix-session, in one run.
#[derive(Debug, Parser)]
#[command(name = "sessio-peers")]
struct Cli {
    /// The `sessio-bench` binary that serves sessio's engines.
    #[arg(long, value_name = "PATH", default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/release/sessio-bench"))]
    sessio_bench: PathBuf,
    /// Peers, comma-separated: tower-memory, tower-sqlite, tower-postgres, tower-redis,
    /// actix-cookie, actix-redis, or all.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "all",
        value_name = "LIST"
    )]
    peers: Vec<String>,
    /// Redis database for tower-sessions' store, which has no key prefix: it is FLUSHED
    /// after each tower-sessions Redis run. Do not point it at a database in use.
    #[arg(long, default_value = "redis://127.0.0.1:6379/14")]
    tower_redis_url: String,
    #[command(flatten)]
    bench: BenchOptions,
}

/// The sessio engines compared by default (every one that has a peer, and the ceiling).
const DEFAULT_ENGINES: &[EngineName] = &[
    EngineName::Bare,
    EngineName::SignedCookies,
    EngineName::CacheMemory,
    EngineName::DbSqlite,
    EngineName::CachedDb,
    EngineName::DbPostgres,
    EngineName::CacheRedis,
];

/// Which sessio engine each peer is compared with.
const PAIRS: &[(&str, &str)] = &[
    ("signed-cookies", "actix-session cookie"),
    ("cache-memory", "tower-sessions memory"),
    ("db-sqlite", "tower-sessions sqlite"),
    ("db-postgres", "tower-sessions postgres"),
    ("cache-redis", "tower-sessions redis"),
    ("cache-redis", "actix-session redis"),
];

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let opts = &cli.bench;
    let workloads = Workload::parse_list(&opts.workloads).map_err(anyhow::Error::msg)?;
    let engines: Vec<EngineName> = if opts.engines.iter().any(|e| e == "all") {
        DEFAULT_ENGINES.to_vec()
    } else {
        opts.engines
            .iter()
            .map(|e| e.parse())
            .collect::<Result<_, _>>()
            .map_err(anyhow::Error::msg)?
    };
    anyhow::ensure!(
        cli.sessio_bench.exists(),
        "{} not found: build it first with `cargo build --release -p sessio-bench` in the \
         main workspace, or pass --sessio-bench PATH",
        cli.sessio_bench.display()
    );
    let config = opts.run_config();
    let mut report = Report::new("sessio against its peers");
    let services = &opts.services;

    let mut targets: Vec<Box<dyn Target>> = Vec::new();
    let mut service_args = vec![
        "--postgres-url".to_string(),
        services.postgres_url.clone(),
        "--mysql-url".to_string(),
        services.mysql_url.clone(),
        "--redis-url".to_string(),
        services.redis_url.clone(),
        "--runtime".to_string(),
        format!("{:?}", opts.runtime).to_lowercase(),
    ];
    if let Some(d) = &services.data_dir {
        service_args.push("--data-dir".into());
        service_args.push(d.display().to_string());
    }
    for &engine in &engines {
        let url = match engine {
            EngineName::DbPostgres => Some(&services.postgres_url),
            EngineName::DbMysql => Some(&services.mysql_url),
            EngineName::CacheRedis => Some(&services.redis_url),
            _ => None,
        };
        if let Some(url) = url {
            if let Err(why) = reachable(url).await {
                report.notes.push(format!("{engine} skipped: {why}"));
                continue;
            }
        }
        targets.push(Box::new(ExternalTarget {
            program: cli.sessio_bench.clone(),
            engine: engine.to_string(),
            args: service_args.clone(),
            label: engine.to_string(),
        }));
    }

    let all = cli.peers.iter().any(|p| p == "all");
    let want = |p: &str| all || cli.peers.iter().any(|x| x == p);
    let data_dir = services.data_dir.clone();
    if want("tower-memory") {
        targets.push(Box::new(peers::Tower::memory()));
    }
    if want("tower-sqlite") {
        targets.push(Box::new(peers::Tower::sqlite(data_dir.clone())));
    }
    if want("tower-postgres") {
        match reachable(&services.postgres_url).await {
            Ok(()) => targets.push(Box::new(peers::Tower::postgres(
                services.postgres_url.clone(),
            ))),
            Err(why) => report
                .notes
                .push(format!("tower-sessions postgres skipped: {why}")),
        }
    }
    if want("tower-redis") {
        match reachable(&cli.tower_redis_url).await {
            Ok(()) => targets.push(Box::new(peers::Tower::redis(cli.tower_redis_url.clone()))),
            Err(why) => report
                .notes
                .push(format!("tower-sessions redis skipped: {why}")),
        }
    }
    if want("actix-cookie") {
        targets.push(Box::new(peers::Actix::cookie()));
    }
    if want("actix-redis") {
        match reachable(&services.redis_url).await {
            Ok(()) => targets.push(Box::new(peers::Actix::redis(services.redis_url.clone()))),
            Err(why) => report
                .notes
                .push(format!("actix-session redis skipped: {why}")),
        }
    }
    for n in &report.notes {
        eprintln!("note: {n}");
    }

    let matrix = run_matrix(&targets, &workloads, &config, opts.quiet).await;
    report.measurements = matrix.measurements;
    report.notes.extend(matrix.notes);
    let mut pairs: Vec<(String, String)> = PAIRS
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    let sessio_targets: Vec<String> = engines
        .iter()
        .filter(|e| **e != EngineName::Bare)
        .map(|e| e.to_string())
        .collect();
    for e in &sessio_targets {
        pairs.push((e.clone(), "bare-axum".into()));
    }
    report.compare(&pairs);
    report.check_goals(&Goal::issue_goals(), &sessio_targets);
    sessio_bench::describe_run(&mut report, opts, &config);
    report.environment.insert(
        "peers".into(),
        "tower-sessions 0.14 (stores: memory, sqlx 0.15 sqlite/postgres, redis 0.16 on fred), \
         actix-session 0.11 on actix-web 4 (cookie: private, the default; redis)"
            .into(),
    );
    report.write(&opts.out)?;
    print!("{}", report.table());
    println!("report: {}", opts.out.join("report.md").display());
    Ok(())
}

/// Whether something answers at the URL's host and port.
async fn reachable(url: &str) -> Result<(), String> {
    let hp = sessio_bench::host_port(url).ok_or_else(|| format!("bad URL {url}"))?;
    match tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(&hp)).await {
        Ok(Ok(_)) => Ok(()),
        _ => Err(format!("nothing answers at {hp}")),
    }
}

/// An axum peer's server: the shared runner, plus its store's clean-up and size probe.
pub struct AxumPeerServer {
    server: AxumServer,
    storage: Option<peers::StorageProbe>,
    cleanup: Option<peers::Cleanup>,
}

#[async_trait::async_trait]
impl Server for AxumPeerServer {
    fn addr(&self) -> std::net::SocketAddr {
        self.server.addr()
    }

    fn threads(&self) -> ThreadSet {
        ThreadSet::own(&[sessio_bench::server::SERVER_THREAD_NAME])
    }

    async fn storage_bytes_per_session(&self) -> anyhow::Result<Option<f64>> {
        match &self.storage {
            Some(p) => p.measure().await,
            None => Ok(None),
        }
    }

    async fn stop(self: Box<Self>) {
        let AxumPeerServer {
            server, cleanup, ..
        } = *self;
        server.stop().await;
        if let Some(c) = cleanup {
            c.run().await;
        }
    }
}

/// A temporary directory for a peer's SQLite database, under `--data-dir` if given.
pub fn temp_dir(data_dir: &Option<PathBuf>) -> anyhow::Result<tempfile::TempDir> {
    let mut b = tempfile::Builder::new();
    b.prefix("sessio-peers-");
    Ok(match data_dir {
        Some(d) => {
            std::fs::create_dir_all(d).context("creating the data directory")?;
            b.tempdir_in(d)?
        }
        None => b.tempdir()?,
    })
}
