//! The cost of one request through the benchmark app without the network: the router is
//! called directly, `N` times per workload, on a current-thread runtime. Under
//! `valgrind --tool=callgrind` its instruction counts repeat exactly, so a change to the
//! middleware or an engine can be judged on a noisy machine:
//!
//! ```sh
//! cargo build --release -p sessio-bench --example inproc
//! valgrind --tool=callgrind target/release/examples/inproc memory write 20000
//! ```
//!
//! Arguments: engine (`bare`, `signed-cookies`, `encrypted-cookies`, `memory`, `db` and `cached-db` on SQLite
//! in a temporary directory), workload (`none`, `read`,
//! `write`, `login`) and the number of requests. It prints the wall time per request.

use std::time::Instant;

use axum::body::Body;
use http::{header, Request};
use sessio::{Config, EngineKind, SessionManager};
use tower::ServiceExt;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let engine = args.get(1).map(String::as_str).unwrap_or("memory");
    let workload = args.get(2).map(String::as_str).unwrap_or("write");
    let n: usize = args
        .get(3)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(20_000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // For the SQLite engines; removed when the run ends.
    let dir = tempfile::tempdir()?;
    rt.block_on(async move {
        let b = Config::builder()
            .secret_key("inproc-probe-secret-key-of-more-than-fifty-characters-0123456789");
        let router = match engine {
            "bare" => sessio_bench::apps::bare_router(),
            "signed-cookies" => {
                let m = SessionManager::open(b.engine(EngineKind::SignedCookies).build()?).await?;
                sessio_bench::apps::sessio_router(&m)
            }
            "encrypted-cookies" => {
                let m =
                    SessionManager::open(b.engine(EngineKind::EncryptedCookies).build()?).await?;
                sessio_bench::apps::sessio_router(&m)
            }
            "memory" => {
                let m = SessionManager::open(
                    b.engine(EngineKind::Cache)
                        .cache_url("memory://?max_entries=4000000")
                        .build()?,
                )
                .await?;
                sessio_bench::apps::sessio_router(&m)
            }
            "db" | "cached-db" => {
                let url = format!("sqlite://{}", dir.path().join("sessions.sqlite3").display());
                let b = if engine == "db" {
                    b.engine(EngineKind::Db)
                } else {
                    b.engine(EngineKind::CachedDb)
                        .cache_url("memory://?max_entries=4000000")
                };
                let m =
                    SessionManager::open(b.database_url(url).auto_migrate(true).build()?).await?;
                sessio_bench::apps::sessio_router(&m)
            }
            other => anyhow::bail!("unknown engine {other}"),
        };
        // As `axum::serve` does: handlers become routes once, not on every call.
        let router = router.with_state(());
        // A session to carry, as the load generator's users do after their setup request.
        let seed = router
            .clone()
            .oneshot(Request::get("/seed/0").body(Body::empty())?)
            .await?;
        let cookie = seed
            .headers()
            .get(header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(str::to_owned)
            // Bare axum sets none: it gets a cookie of a signed session's size all the same,
            // so both parse the same request.
            .or_else(|| Some(format!("sessionid={}", "x".repeat(206))));
        let path = format!("/{workload}");
        let mut cookie = cookie;
        let start = Instant::now();
        for _ in 0..n {
            let mut req = Request::get(path.as_str());
            if workload != "login" {
                if let Some(c) = &cookie {
                    req = req.header(header::COOKIE, c.as_str());
                }
            }
            let res = router.clone().oneshot(req.body(Body::empty())?).await?;
            if let Some(set) = res.headers().get(header::SET_COOKIE) {
                if workload != "login" {
                    cookie = set.to_str()?.split(';').next().map(str::to_owned);
                }
            }
            let body = axum::body::to_bytes(res.into_body(), 1 << 20).await?;
            std::hint::black_box(body);
        }
        let per = start.elapsed() / n as u32;
        println!("{engine} {workload}: {per:?} per request");
        anyhow::Ok(())
    })
}
