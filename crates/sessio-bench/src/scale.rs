//! Measurements at scale: throughput with 1M live sessions against 1k, `clear-expired` of
//! 1M expired rows under load, and memory per session in the memory engine.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use sessio::SessionManager;

pub use crate::catalog::ScaleMode;
use crate::engines::{memory_estimates, EngineName, EngineTarget, Prefill, Services};
use crate::harness::RunConfig;
use crate::loadgen::{self, Window};
use crate::report::{fmt_rps, fmt_us, Measurement, ScaleResult};
use crate::server::{Server as _, ServerRuntime};
use crate::workload::Workload;

/// Runs the scale measurements `modes`, returning their results and the measurements they
/// made (with `target` names such as `db-sqlite 1M rows`).
pub async fn run(
    modes: &[ScaleMode],
    rows: u64,
    services: Arc<Services>,
    runtime: ServerRuntime,
    config: &RunConfig,
    available: &[EngineName],
) -> anyhow::Result<(Vec<ScaleResult>, Vec<Measurement>, Vec<String>)> {
    let all = modes.contains(&ScaleMode::All);
    let mut results = Vec::new();
    let mut measurements = Vec::new();
    let mut notes = Vec::new();
    if all || modes.contains(&ScaleMode::Memory) {
        results.push(memory().await?);
    }
    if all || modes.contains(&ScaleMode::Rows) {
        for engine in [EngineName::DbSqlite, EngineName::DbPostgres] {
            if !available.contains(&engine) {
                notes.push(format!("scale rows: {engine} not available, skipped"));
                continue;
            }
            match live_rows(engine, rows, services.clone(), runtime, config).await {
                Ok((r, m)) => {
                    results.push(r);
                    measurements.extend(m);
                }
                Err(e) => notes.push(format!("scale rows on {engine} failed: {e:#}")),
            }
        }
    }
    if all || modes.contains(&ScaleMode::ClearExpired) {
        if available.contains(&EngineName::DbSqlite) {
            match clear_expired(rows, services.clone(), runtime, config).await {
                Ok((r, m)) => {
                    results.push(r);
                    measurements.extend(m);
                }
                Err(e) => notes.push(format!("clear-expired failed: {e:#}")),
            }
        } else {
            notes.push("clear-expired: SQLite not in this build, skipped".into());
        }
    }
    Ok((results, measurements, notes))
}

fn label(rows: u64) -> String {
    if rows >= 1_000_000 && rows % 1_000_000 == 0 {
        format!("{}M", rows / 1_000_000)
    } else if rows >= 1000 && rows % 1000 == 0 {
        format!("{}k", rows / 1000)
    } else {
        rows.to_string()
    }
}

/// One load run on a prefilled store.
async fn prefilled_run(
    target: &EngineTarget,
    workload: Workload,
    name: String,
    config: &RunConfig,
) -> anyhow::Result<Measurement> {
    let server = target.start_engine(workload, config.server_core).await?;
    let result = loadgen::run_load(
        server.addr(),
        workload,
        config.load.clone(),
        server.threads(),
        Window::default(),
    )
    .await;
    Box::new(server).stop().await;
    Ok(Measurement::from_load(name, workload, &result?, None))
}

async fn live_rows(
    engine: EngineName,
    rows: u64,
    services: Arc<Services>,
    runtime: ServerRuntime,
    config: &RunConfig,
) -> anyhow::Result<(ScaleResult, Vec<Measurement>)> {
    let mut figures = BTreeMap::new();
    let mut measurements = Vec::new();
    for workload in [Workload::Read, Workload::Write] {
        let mut rps = Vec::new();
        for n in [1000, rows] {
            let mut target = EngineTarget::new(engine, services.clone(), runtime);
            target.prefill = Some(Prefill {
                rows: n,
                expired: false,
            });
            let filled = Instant::now();
            let m = prefilled_run(
                &target,
                workload,
                format!("{engine} {} rows", label(n)),
                config,
            )
            .await?;
            figures.insert(
                format!("{workload} with {} live sessions", label(n)),
                format!(
                    "{} req/s, p50 {}, p99 {} (prefill + run {:.0} s)",
                    fmt_rps(m.rps),
                    fmt_us(m.p50_us),
                    fmt_us(m.p99_us),
                    filled.elapsed().as_secs_f64()
                ),
            );
            rps.push(m.rps);
            measurements.push(m);
        }
        figures.insert(
            format!("{workload}: {} ÷ 1k", label(rows)),
            format!("{:.2}×", rps[1] / rps[0]),
        );
    }
    Ok((
        ScaleResult {
            name: format!("{engine}: {} live sessions against 1k", label(rows)),
            figures,
        },
        measurements,
    ))
}

async fn clear_expired(
    rows: u64,
    services: Arc<Services>,
    runtime: ServerRuntime,
    config: &RunConfig,
) -> anyhow::Result<(ScaleResult, Vec<Measurement>)> {
    let workload = Workload::Write;
    let mut target = EngineTarget::new(EngineName::DbSqlite, services, runtime);
    target.prefill = Some(Prefill {
        rows,
        expired: true,
    });
    let mut figures = BTreeMap::new();

    // Baseline: the same store and load, no sweep.
    let baseline = prefilled_run(
        &target,
        workload,
        format!("db-sqlite {} expired, no sweep", label(rows)),
        config,
    )
    .await?;

    // The sweep: a second SessionManager on the same database (as `sessio clear-expired`
    // is a second process), on a thread pinned to the server's core so that it competes
    // with the server and not with the load generator.
    let server = target.start_engine(workload, config.server_core).await?;
    let sweep_config = server.config().clone();
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let core = config.server_core;
    let sweep = std::thread::Builder::new()
        .name("bench-sweep".into())
        .spawn(move || -> anyhow::Result<(u64, Duration)> {
            if let Some(c) = core {
                crate::cpu::pin_current_thread(c);
            }
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let out = rt.block_on(async move {
                let manager = SessionManager::open(sweep_config).await?;
                // Start when the measured window does.
                let _ = started_rx.await;
                let t = Instant::now();
                let n = manager
                    .clear_expired(sessio::DEFAULT_CLEAR_BATCH, |_| {})
                    .await?;
                anyhow::Ok((n, t.elapsed()))
            });
            let _ = done_tx.send(());
            out
        })
        .context("starting the sweep thread")?;
    let mut load = config.load.clone();
    // The window ends with the sweep; this is only a bound.
    load.duration = Duration::from_secs(600);
    let result = loadgen::run_load(
        server.addr(),
        workload,
        load,
        server.threads(),
        Window {
            started: Some(started_tx),
            until: Some(done_rx),
        },
    )
    .await;
    Box::new(server).stop().await;
    let (deleted, took) = sweep
        .join()
        .map_err(|_| anyhow::anyhow!("the sweep thread panicked"))??;
    let during = Measurement::from_load(
        format!("db-sqlite during clear-expired of {}", label(rows)),
        workload,
        &result?,
        None,
    );
    figures.insert("rows deleted".into(), deleted.to_string());
    figures.insert(
        "sweep time".into(),
        format!(
            "{:.2} s ({:.0} rows/s, batches of {})",
            took.as_secs_f64(),
            deleted as f64 / took.as_secs_f64().max(1e-9),
            sessio::DEFAULT_CLEAR_BATCH
        ),
    );
    figures.insert(
        "write during the sweep".into(),
        format!(
            "{} req/s, p50 {}, p99 {}, max {}",
            fmt_rps(during.rps),
            fmt_us(during.p50_us),
            fmt_us(during.p99_us),
            fmt_us(during.max_us)
        ),
    );
    figures.insert(
        "write without a sweep".into(),
        format!(
            "{} req/s, p50 {}, p99 {}, max {}",
            fmt_rps(baseline.rps),
            fmt_us(baseline.p50_us),
            fmt_us(baseline.p99_us),
            fmt_us(baseline.max_us)
        ),
    );
    Ok((
        ScaleResult {
            name: format!(
                "db-sqlite: clear-expired of {} expired rows under load",
                label(rows)
            ),
            figures,
        },
        vec![baseline, during],
    ))
}

async fn memory() -> anyhow::Result<ScaleResult> {
    let shapes = [
        ("user record (~100 B of JSON)", Workload::Read),
        ("user record + counter", Workload::Write),
        ("1000-byte payload", Workload::Payload(1000)),
    ];
    let workloads: Vec<Workload> = shapes.iter().map(|(_, w)| *w).collect();
    let estimates =
        tokio::task::spawn_blocking(move || memory_estimates(&workloads, 100_000)).await??;
    let mut figures = BTreeMap::new();
    for ((what, _), (_, bytes)) in shapes.iter().zip(estimates) {
        figures.insert(
            format!("bytes per session, {what}"),
            format!("{bytes:.0} (RSS growth over 100k sessions)"),
        );
    }
    Ok(ScaleResult {
        name: "cache-memory: memory per session".into(),
        figures,
    })
}
