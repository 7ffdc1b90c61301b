//! Results: one [`Measurement`] per (system, workload), the [`Report`] of a run, and its
//! renderings (a terminal table, Markdown, JSON and SVG charts).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::loadgen::LoadResult;
use crate::workload::Workload;

/// One system under one workload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Measurement {
    /// The system (`signed-cookies`, `tower-sessions sqlite`, `bare-axum`).
    pub target: String,
    /// The workload (`none`, `read`, `write`, `login`, `payload:<bytes>`).
    pub workload: String,
    /// The payload of a `payload:` workload.
    pub payload_bytes: Option<usize>,
    /// Answers in the measured window.
    pub requests: u64,
    /// Non-2xx answers and connection failures among them.
    pub errors: u64,
    /// The first error, if any.
    pub first_error: Option<String>,
    /// The measured window, in seconds.
    pub seconds: f64,
    /// Answers per second.
    pub rps: f64,
    /// Median latency, µs.
    pub p50_us: u64,
    /// 90th percentile latency, µs.
    pub p90_us: u64,
    /// 99th percentile latency, µs.
    pub p99_us: u64,
    /// Worst latency, µs.
    pub max_us: u64,
    /// `Cookie` header bytes sent per request.
    pub cookie_sent_per_req: f64,
    /// `Set-Cookie` header bytes received per request.
    pub cookie_received_per_req: f64,
    /// Bytes the server stores per session (cookie engines: 0; `None`: not known).
    pub storage_bytes_per_session: Option<f64>,
    /// CPU the server used, in cores (1.0 = its core fully busy).
    pub server_cpu: f64,
    /// CPU the load generator used, in cores.
    pub load_cpu: f64,
    /// Requests/s of every round when the matrix ran several (this one is the median).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rounds: Vec<f64>,
}

impl Measurement {
    /// The measurement of one load run.
    pub fn from_load(
        target: String,
        workload: Workload,
        r: &LoadResult,
        storage: Option<f64>,
    ) -> Self {
        let per_req = |b: u64| {
            if r.requests == 0 {
                0.0
            } else {
                b as f64 / r.requests as f64
            }
        };
        let h = &r.latency_us;
        let q = |p: f64| {
            if h.is_empty() {
                0
            } else {
                h.value_at_quantile(p)
            }
        };
        Self {
            target,
            workload: workload.to_string(),
            payload_bytes: workload.payload_bytes(),
            requests: r.requests,
            errors: r.errors,
            first_error: r.first_error.clone(),
            seconds: r.elapsed.as_secs_f64(),
            rps: r.rps(),
            p50_us: q(0.50),
            p90_us: q(0.90),
            p99_us: q(0.99),
            max_us: if h.is_empty() { 0 } else { h.max() },
            cookie_sent_per_req: per_req(r.cookie_bytes_sent),
            cookie_received_per_req: per_req(r.cookie_bytes_received),
            storage_bytes_per_session: storage,
            server_cpu: r.server_cpu,
            load_cpu: r.load_cpu,
            rounds: Vec::new(),
        }
    }

    /// A one-line summary for the progress output.
    pub fn one_line(&self) -> String {
        format!(
            "{:<26} {:<13} {:>9} req/s  p50 {:>8}  p99 {:>8}  cookie {:>5.0}/{:<5.0} B  srv {:>3.0}%  gen {:>3.0}%{}",
            self.target,
            self.workload,
            fmt_rps(self.rps),
            fmt_us(self.p50_us),
            fmt_us(self.p99_us),
            self.cookie_sent_per_req,
            self.cookie_received_per_req,
            self.server_cpu * 100.0,
            self.load_cpu * 100.0,
            if self.errors > 0 {
                format!("  {} errors", self.errors)
            } else {
                String::new()
            }
        )
    }
}

/// A performance goal of the issue: `engine` under `workload` at least `min_ratio` times
/// the requests/s of `baseline` measured in the same run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Goal {
    /// The sessio engine (`*`: every sessio engine measured).
    pub engine: String,
    /// The workload.
    pub workload: String,
    /// The system it is compared with.
    pub baseline: String,
    /// The least acceptable ratio.
    pub min_ratio: f64,
}

impl Goal {
    fn new(engine: &str, workload: &str, baseline: &str, min_ratio: f64) -> Self {
        Self {
            engine: engine.into(),
            workload: workload.into(),
            baseline: baseline.into(),
            min_ratio,
        }
    }

    /// The goals of the performance issue (anchors.md).
    pub fn issue_goals() -> Vec<Goal> {
        vec![
            Goal::new("*", "none", BARE, 0.97),
            Goal::new("signed-cookies", "write", "actix-session cookie", 1.3),
            Goal::new("signed-cookies", "read", BARE, 0.85),
            Goal::new("cache-memory", "write", BARE, 0.9),
            Goal::new("db-sqlite", "write", "tower-sessions sqlite", 15.0),
            Goal::new("db-sqlite", "read", "tower-sessions sqlite", 2.5),
            Goal::new("db-postgres", "write", "tower-sessions postgres", 4.0),
            Goal::new("db-postgres", "read", "tower-sessions postgres", 3.0),
            Goal::new("cache-redis", "write", "tower-sessions redis", 1.8),
            Goal::new("cache-redis", "read", "tower-sessions redis", 1.5),
            Goal::new("cached-db", "read", BARE, 0.8),
        ]
    }
}

/// The name of axum without sessions in reports.
pub const BARE: &str = "bare-axum";

/// A goal checked against one run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GoalResult {
    /// The goal.
    pub goal: Goal,
    /// The engine it was checked for (a `*` goal is checked for each engine).
    pub engine: String,
    /// Requests/s of the engine over the baseline's.
    pub ratio: f64,
    /// Whether the ratio reaches the goal.
    pub met: bool,
}

/// A ratio of a sessio engine to a peer of the same kind, for every workload both ran.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Comparison {
    /// The sessio engine.
    pub sessio: String,
    /// The peer.
    pub peer: String,
    /// Workload → sessio req/s ÷ peer req/s.
    pub ratios: BTreeMap<String, f64>,
}

/// Results that are not request loops (1M rows, clear-expired, memory per session).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScaleResult {
    /// What was measured.
    pub name: String,
    /// The figures, by name.
    pub figures: BTreeMap<String, String>,
}

/// Everything one run produced.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Report {
    /// The heading.
    pub title: String,
    /// When it ran (RFC 3339, UTC).
    pub generated_at: String,
    /// Machine and settings.
    pub environment: BTreeMap<String, String>,
    /// One per (system, workload), in run order.
    pub measurements: Vec<Measurement>,
    /// Ratios to peers of the same kind (peer comparison only).
    pub comparisons: Vec<Comparison>,
    /// The issue's goals that this run can check.
    pub goals: Vec<GoalResult>,
    /// Scale measurements.
    pub scale: Vec<ScaleResult>,
    /// Skipped systems and failed cells.
    pub notes: Vec<String>,
    /// Files written (Markdown, JSON, charts).
    pub files: Vec<PathBuf>,
}

impl Report {
    /// An empty report with the machine's description.
    pub fn new(title: &str) -> Self {
        let now = time::OffsetDateTime::now_utc();
        let mut env = BTreeMap::new();
        if let Ok(cpuinfo) = std::fs::read_to_string("/proc/cpuinfo") {
            if let Some(model) = cpuinfo.lines().find(|l| l.starts_with("model name")) {
                env.insert(
                    "cpu".into(),
                    model.split(':').nth(1).unwrap_or("").trim().to_string(),
                );
            }
        }
        env.insert("cores".into(), crate::cpu::available_cores().to_string());
        if let Ok(k) = std::fs::read_to_string("/proc/sys/kernel/osrelease") {
            env.insert("kernel".into(), k.trim().to_string());
        }
        if let Ok(l) = std::fs::read_to_string("/proc/loadavg") {
            env.insert(
                "load average at start".into(),
                l.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
            );
        }
        Self {
            title: title.into(),
            generated_at: now
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            environment: env,
            ..Default::default()
        }
    }

    /// The requests/s of `target` under `workload`, if measured.
    pub fn rps(&self, target: &str, workload: &str) -> Option<f64> {
        self.measurements
            .iter()
            .find(|m| m.target == target && m.workload == workload && m.requests > 0)
            .map(|m| m.rps)
    }

    /// Fills [`Report::goals`] from the measurements, for every goal whose two sides ran.
    /// `sessio_targets` are the names a `*` goal applies to.
    pub fn check_goals(&mut self, goals: &[Goal], sessio_targets: &[String]) {
        let mut out = Vec::new();
        for g in goals {
            let engines: Vec<String> = if g.engine == "*" {
                sessio_targets.to_vec()
            } else {
                vec![g.engine.clone()]
            };
            for e in engines {
                if e == g.baseline {
                    continue;
                }
                if let (Some(a), Some(b)) = (
                    self.rps(&e, &g.workload),
                    self.rps(&g.baseline, &g.workload),
                ) {
                    let ratio = a / b;
                    out.push(GoalResult {
                        goal: g.clone(),
                        engine: e,
                        ratio,
                        met: ratio >= g.min_ratio,
                    });
                }
            }
        }
        self.goals = out;
    }

    /// Fills [`Report::comparisons`] for `(sessio, peer)` pairs.
    pub fn compare(&mut self, pairs: &[(String, String)]) {
        let workloads = self.workloads();
        for (s, p) in pairs {
            let mut ratios = BTreeMap::new();
            for w in &workloads {
                if let (Some(a), Some(b)) = (self.rps(s, w), self.rps(p, w)) {
                    ratios.insert(w.clone(), a / b);
                }
            }
            if !ratios.is_empty() {
                self.comparisons.push(Comparison {
                    sessio: s.clone(),
                    peer: p.clone(),
                    ratios,
                });
            }
        }
    }

    fn targets(&self) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for m in &self.measurements {
            if !v.contains(&m.target) {
                v.push(m.target.clone());
            }
        }
        v
    }

    fn workloads(&self) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for m in &self.measurements {
            if !v.contains(&m.workload) {
                v.push(m.workload.clone());
            }
        }
        v
    }

    /// The table printed to stdout.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:<26} {:<13} {:>9} {:>9} {:>9} {:>8} {:>8} {:>9} {:>5} {:>5} {:>6}",
            "system",
            "workload",
            "req/s",
            "p50",
            "p99",
            "cookie>",
            "cookie<",
            "store B",
            "srv%",
            "gen%",
            "errors"
        );
        for m in &self.measurements {
            let _ = writeln!(
                s,
                "{:<26} {:<13} {:>9} {:>9} {:>9} {:>8.0} {:>8.0} {:>9} {:>5.0} {:>5.0} {:>6}",
                m.target,
                m.workload,
                fmt_rps(m.rps),
                fmt_us(m.p50_us),
                fmt_us(m.p99_us),
                m.cookie_sent_per_req,
                m.cookie_received_per_req,
                m.storage_bytes_per_session
                    .map_or("–".to_string(), |b| format!("{b:.0}")),
                m.server_cpu * 100.0,
                m.load_cpu * 100.0,
                m.errors
            );
        }
        if !self.comparisons.is_empty() {
            let _ = writeln!(
                s,
                "\nsessio ÷ peer of the same kind (req/s ratio, same run):"
            );
            for c in &self.comparisons {
                let r: Vec<String> = c
                    .ratios
                    .iter()
                    .map(|(w, r)| format!("{w} {r:.2}×"))
                    .collect();
                let _ = writeln!(s, "  {:<16} vs {:<26} {}", c.sessio, c.peer, r.join("  "));
            }
        }
        if !self.goals.is_empty() {
            let _ = writeln!(s, "\nissue goals:");
            for g in &self.goals {
                let _ = writeln!(
                    s,
                    "  {} {:<16} {:<6} vs {:<24} {:.2}× (goal ≥ {}×)",
                    if g.met { "MET " } else { "MISS" },
                    g.engine,
                    g.goal.workload,
                    g.goal.baseline,
                    g.ratio,
                    g.goal.min_ratio
                );
            }
        }
        for sc in &self.scale {
            let _ = writeln!(s, "\n{}:", sc.name);
            for (k, v) in &sc.figures {
                let _ = writeln!(s, "  {k}: {v}");
            }
        }
        for n in &self.notes {
            let _ = writeln!(s, "note: {n}");
        }
        s
    }

    /// The Markdown report.
    pub fn markdown(&self, charts: &[(String, String)]) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# {}\n", self.title);
        let _ = writeln!(
            s,
            "Generated {}. Closed loop: each virtual user has one keep-alive HTTP/1.1 \
             connection and a cookie jar, and sends its next request when the previous answer \
             is in. The server runs on one pinned core, the generator on another. Absolute \
             numbers depend on the machine and on whatever else runs on it: compare ratios \
             within one report.\n",
            self.generated_at
        );
        let main: Vec<String> = self
            .workloads()
            .into_iter()
            .filter(|w| !w.starts_with("payload:"))
            .collect();
        let sweep: Vec<String> = self
            .workloads()
            .into_iter()
            .filter(|w| w.starts_with("payload:"))
            .collect();
        let targets = self.targets();

        if !main.is_empty() {
            let _ = writeln!(s, "## Requests per second\n");
            let _ = write!(s, "| system |");
            for w in &main {
                let _ = write!(s, " {w} |");
            }
            let _ = write!(s, "\n|---|");
            for _ in &main {
                let _ = write!(s, "---:|");
            }
            let _ = writeln!(s);
            for t in &targets {
                let _ = write!(s, "| {t} |");
                for w in &main {
                    let _ = write!(s, " {} |", self.rps(t, w).map_or("–".into(), fmt_rps));
                }
                let _ = writeln!(s);
            }
            let _ = writeln!(s);
        }

        if !self.comparisons.is_empty() {
            let _ = writeln!(s, "## sessio ÷ peer of the same kind\n");
            let ws = self.workloads();
            let _ = write!(s, "| sessio | peer |");
            for w in &ws {
                let _ = write!(s, " {w} |");
            }
            let _ = write!(s, "\n|---|---|");
            for _ in &ws {
                let _ = write!(s, "---:|");
            }
            let _ = writeln!(s);
            for c in &self.comparisons {
                let _ = write!(s, "| {} | {} |", c.sessio, c.peer);
                for w in &ws {
                    let _ = write!(
                        s,
                        " {} |",
                        c.ratios.get(w).map_or("–".into(), |r| format!("{r:.2}×"))
                    );
                }
                let _ = writeln!(s);
            }
            let _ = writeln!(s);
        }

        if !self.goals.is_empty() {
            let _ = writeln!(s, "## Issue goals\n");
            let _ = writeln!(s, "| engine | workload | compared with | ratio | goal | |");
            let _ = writeln!(s, "|---|---|---|---:|---:|---|");
            for g in &self.goals {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {:.2}× | ≥ {}× | {} |",
                    g.engine,
                    g.goal.workload,
                    g.goal.baseline,
                    g.ratio,
                    g.goal.min_ratio,
                    if g.met { "met" } else { "**not met**" }
                );
            }
            let _ = writeln!(s);
        }

        for (w_set, heading) in [
            (&main, "## Details"),
            (&sweep, "## Payload sweep (write workload)"),
        ] {
            if w_set.is_empty() {
                continue;
            }
            let _ = writeln!(s, "{heading}\n");
            let _ = writeln!(
                s,
                "| system | workload | req/s | p50 | p99 | cookie sent B/req | cookie received B/req | stored B/session | server CPU | generator CPU | errors |"
            );
            let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
            for w in w_set.iter() {
                for m in self.measurements.iter().filter(|m| &m.workload == w) {
                    let _ = writeln!(
                        s,
                        "| {} | {} | {} | {} | {} | {:.0} | {:.0} | {} | {:.0}% | {:.0}% | {} |",
                        m.target,
                        m.workload,
                        rps_with_range(m),
                        fmt_us(m.p50_us),
                        fmt_us(m.p99_us),
                        m.cookie_sent_per_req,
                        m.cookie_received_per_req,
                        m.storage_bytes_per_session
                            .map_or("–".to_string(), |b| format!("{b:.0}")),
                        m.server_cpu * 100.0,
                        m.load_cpu * 100.0,
                        m.errors
                    );
                }
            }
            let _ = writeln!(s);
        }
        let _ = writeln!(
            s,
            "Stored B/session: for `db` engines the bytes of `session_key` + `session_data` + \
             `expire_date` per row (PostgreSQL and MySQL: 8 bytes for the date); Redis: key + \
             value; file: file size; cache-memory: resident-memory growth per session while \
             50k sessions of the same data are created (an estimate); cookie engines: 0. \
             Server CPU near 100% means the server was the bottleneck; generator CPU near 100% \
             with server CPU well below means the generator was.\n"
        );

        for (file, caption) in charts {
            let _ = writeln!(s, "![{caption}]({file})\n");
        }
        if !self.scale.is_empty() {
            let _ = writeln!(s, "## Scale\n");
            for sc in &self.scale {
                let _ = writeln!(s, "### {}\n", sc.name);
                for (k, v) in &sc.figures {
                    let _ = writeln!(s, "* {k}: {v}");
                }
                let _ = writeln!(s);
            }
        }
        if !self.notes.is_empty() {
            let _ = writeln!(s, "## Notes\n");
            for n in &self.notes {
                let _ = writeln!(s, "* {n}");
            }
            let _ = writeln!(s);
        }
        let _ = writeln!(s, "## Environment\n");
        for (k, v) in &self.environment {
            let _ = writeln!(s, "* {k}: {v}");
        }
        s
    }

    /// Writes `report.md`, `results.json` and the charts to `dir`, and records them in
    /// [`Report::files`].
    pub fn write(&mut self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut charts = Vec::new();
        let mut files = Vec::new();
        if let Some(svg) = crate::chart::throughput(self) {
            let p = dir.join("throughput.svg");
            std::fs::write(&p, svg)?;
            charts.push((
                "throughput.svg".to_string(),
                "requests per second".to_string(),
            ));
            files.push(p);
        }
        if let Some(svg) = crate::chart::payload(self) {
            let p = dir.join("payload.svg");
            std::fs::write(&p, svg)?;
            charts.push((
                "payload.svg".to_string(),
                "payload sweep: requests per second and cookie bytes".to_string(),
            ));
            files.push(p);
        }
        let md = dir.join("report.md");
        std::fs::write(&md, self.markdown(&charts))?;
        files.insert(0, md);
        let json = dir.join("results.json");
        files.push(json.clone());
        self.files = files;
        std::fs::write(&json, serde_json::to_string_pretty(self)?)?;
        Ok(())
    }
}

/// Requests/s, with the range over rounds when there were several.
fn rps_with_range(m: &Measurement) -> String {
    if m.rounds.len() > 1 {
        let lo = m.rounds.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = m.rounds.iter().copied().fold(0.0, f64::max);
        format!("{} ({}–{})", fmt_rps(m.rps), fmt_rps(lo), fmt_rps(hi))
    } else {
        fmt_rps(m.rps)
    }
}

/// `123456.7` → `123.5k`.
pub fn fmt_rps(rps: f64) -> String {
    if rps >= 10_000.0 {
        format!("{:.1}k", rps / 1000.0)
    } else if rps >= 100.0 {
        format!("{rps:.0}")
    } else {
        format!("{rps:.1}")
    }
}

/// `1234` µs → `1.23 ms`.
pub fn fmt_us(us: u64) -> String {
    if us >= 10_000 {
        format!("{:.1} ms", us as f64 / 1000.0)
    } else if us >= 1000 {
        format!("{:.2} ms", us as f64 / 1000.0)
    } else {
        format!("{us} µs")
    }
}
