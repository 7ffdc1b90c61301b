//! Short runs: the harness works end to end. No timing is asserted (machines are shared
//! and noisy); only that requests were answered and the report was written.

use clap::Parser;
use sessio_bench::{BenchOptions, ExternalTarget, RunConfig, Workload};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    options: BenchOptions,
}

fn options(args: &[&str], out: &std::path::Path) -> BenchOptions {
    let mut argv = vec![
        "bench",
        "--quiet",
        "--no-pin",
        "--out",
        out.to_str().unwrap(),
    ];
    argv.extend_from_slice(args);
    Cli::parse_from(argv).options
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_run_measures_and_writes_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(
        &[
            "--duration",
            "1s",
            "--warmup",
            "200ms",
            "--users",
            "4",
            "--engines",
            "signed-cookies,db",
            "--workloads",
            "none,write",
        ],
        dir.path(),
    );
    let report = sessio_bench::run(opts).await.unwrap();
    assert_eq!(report.measurements.len(), 4, "{:#?}", report.notes);
    for m in &report.measurements {
        assert!(m.requests > 0, "{m:?}");
        assert_eq!(m.errors, 0, "{m:?}");
        assert!(m.rps > 0.0 && m.p99_us >= m.p50_us, "{m:?}");
        // Every user was seeded, so every request carries the session cookie.
        assert!(m.cookie_sent_per_req > 0.0, "{m:?}");
    }
    let write = |t: &str| {
        report
            .measurements
            .iter()
            .find(|m| m.target == t && m.workload == "write")
            .unwrap()
    };
    // A write sets the cookie on every answer (signed data), or once (a db key).
    assert!(write("signed-cookies").cookie_received_per_req > 100.0);
    assert_eq!(write("signed-cookies").storage_bytes_per_session, Some(0.0));
    assert!(write("db-sqlite").storage_bytes_per_session.unwrap() > 100.0);
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(
        md.contains("db-sqlite") && md.contains("signed-cookies"),
        "{md}"
    );
    assert!(dir.path().join("results.json").exists());
    assert!(dir.path().join("throughput.svg").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hyper_client_and_login_work() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(
        &[
            "--duration",
            "500ms",
            "--warmup",
            "100ms",
            "--users",
            "2",
            "--engines",
            "signed-cookies",
            "--workloads",
            "login,payload:1500",
            "--client",
            "hyper",
        ],
        dir.path(),
    );
    let report = sessio_bench::run(opts).await.unwrap();
    let login = &report.measurements[0];
    assert_eq!(login.workload, "login");
    assert!(login.requests > 0 && login.errors == 0, "{login:?}");
    // No cookie is sent at login; a new one comes back every time.
    assert_eq!(login.cookie_sent_per_req, 0.0);
    assert!(login.cookie_received_per_req > 0.0);
    let payload = &report.measurements[1];
    assert!(payload.cookie_sent_per_req > 1000.0, "{payload:?}");
    assert!(dir.path().join("payload.svg").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_served_by_another_process_is_measured() {
    let target = ExternalTarget {
        program: env!("CARGO_BIN_EXE_sessio-bench").into(),
        engine: "signed-cookies".into(),
        args: vec![],
        label: "signed-cookies (external)".into(),
    };
    let config = RunConfig {
        load: sessio_bench::LoadConfig {
            users: 2,
            warmup: std::time::Duration::from_millis(100),
            duration: std::time::Duration::from_millis(500),
            core: None,
            client: Default::default(),
        },
        server_core: None,
        repeat: 1,
    };
    let m = sessio_bench::measure(&target, Workload::Write, &config)
        .await
        .unwrap();
    assert!(m.requests > 0 && m.errors == 0, "{m:?}");
    assert_eq!(m.storage_bytes_per_session, Some(0.0));
    assert_eq!(m.target, "signed-cookies (external)");
}
