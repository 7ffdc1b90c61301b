//! One measurement (a fresh server, the load, the storage probe) and the matrix of them.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::loadgen::{self, LoadConfig, Window};
use crate::report::Measurement;
use crate::server::Target;
use crate::workload::Workload;

/// Everything a measurement needs besides the target and the workload.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The load.
    pub load: LoadConfig,
    /// The core the server is pinned to.
    pub server_core: Option<usize>,
    /// Rounds of the whole matrix; each cell reports its median round (by requests/s), so
    /// that a burst of background load in one round does not decide a ratio.
    pub repeat: usize,
}

/// Starts a fresh server of `target`, drives `workload` against it, asks it how many bytes
/// it stores per session, and stops it.
pub async fn measure(
    target: &dyn Target,
    workload: Workload,
    config: &RunConfig,
) -> anyhow::Result<Measurement> {
    let server = target.start(workload, config.server_core).await?;
    let result = loadgen::run_load(
        server.addr(),
        workload,
        config.load.clone(),
        server.threads(),
        Window::default(),
    )
    .await;
    let storage = match &result {
        Ok(_) => server.storage_bytes_per_session().await.unwrap_or(None),
        Err(_) => None,
    };
    server.stop().await;
    let result = result?;
    Ok(Measurement::from_load(
        target.name(),
        workload,
        &result,
        storage,
    ))
}

/// What a matrix run produced: measurements, and a note per failed cell.
#[derive(Debug, Default)]
pub struct MatrixResult {
    /// One per (workload, target) that ran.
    pub measurements: Vec<Measurement>,
    /// Why cells are missing.
    pub notes: Vec<String>,
}

/// Runs every workload on every target, workload by workload (so that the targets compared
/// in one workload ran close together in time, under the same background load), with a
/// progress bar on stderr unless `quiet`.
pub async fn run_matrix(
    targets: &[Box<dyn Target>],
    workloads: &[Workload],
    config: &RunConfig,
    quiet: bool,
) -> MatrixResult {
    let rounds = config.repeat.max(1);
    let cells = (targets.len() * workloads.len() * rounds) as u64;
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(cells)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise} / ~{eta_precise}] {bar:30} {pos}/{len} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    let mut out = MatrixResult::default();
    // cells[workload][target]: every round's measurement.
    let mut cells: Vec<Vec<Vec<Measurement>>> =
        vec![vec![Vec::new(); targets.len()]; workloads.len()];
    for round in 0..rounds {
        for (wi, &workload) in workloads.iter().enumerate() {
            for (ti, target) in targets.iter().enumerate() {
                bar.set_message(format!(
                    "round {}/{rounds}: {} × {workload}",
                    round + 1,
                    target.name()
                ));
                match measure(target.as_ref(), workload, config).await {
                    Ok(m) => {
                        bar.println(m.one_line());
                        cells[wi][ti].push(m);
                    }
                    Err(e) => {
                        let note = format!("{} × {workload} failed: {e:#}", target.name());
                        bar.println(&note);
                        out.notes.push(note);
                    }
                }
                bar.inc(1);
            }
        }
    }
    bar.finish_and_clear();
    for row in cells {
        for mut runs in row {
            if runs.is_empty() {
                continue;
            }
            runs.sort_by(|a, b| a.rps.total_cmp(&b.rps));
            let mut median = runs[runs.len() / 2].clone();
            median.rounds = runs.iter().map(|m| m.rps).collect();
            out.measurements.push(median);
        }
    }
    out
}
