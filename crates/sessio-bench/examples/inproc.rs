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
//! Arguments: engine (`bare`, `signed-cookies`, `encrypted-cookies`, `memory`, `db` and
//! `cached-db` on SQLite in a temporary directory, `redis` at `SESSIO_REDIS_URL` or
//! 127.0.0.1:6379 under a key prefix of its own), workload (`none`, `read`,
//! `write`, `login`) and the number of requests. It prints the wall time per request.

use std::time::Instant;

use axum::body::{Body, Bytes};
use http::{header, HeaderValue, Request};
use sessio::{Config, EngineKind, SessionManager};
use std::convert::Infallible;

use axum::response::Response;
use tower::{Service, ServiceExt};

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
        let manager = match engine {
            "bare" => None,
            "signed-cookies" => {
                Some(SessionManager::open(b.engine(EngineKind::SignedCookies).build()?).await?)
            }
            "encrypted-cookies" => {
                Some(SessionManager::open(b.engine(EngineKind::EncryptedCookies).build()?).await?)
            }
            "memory" => Some(
                SessionManager::open(
                    b.engine(EngineKind::Cache)
                        .cache_url("memory://?max_entries=4000000")
                        .build()?,
                )
                .await?,
            ),
            "db" | "cached-db" => {
                let url = format!("sqlite://{}", dir.path().join("sessions.sqlite3").display());
                let b = if engine == "db" {
                    b.engine(EngineKind::Db)
                } else {
                    b.engine(EngineKind::CachedDb)
                        .cache_url("memory://?max_entries=4000000")
                };
                Some(SessionManager::open(b.database_url(url).auto_migrate(true).build()?).await?)
            }
            // A key prefix of its own, so runs never see each other's sessions.
            "redis" => Some(
                SessionManager::open(
                    b.engine(EngineKind::Cache)
                        .cache_url(
                            std::env::var("SESSIO_REDIS_URL")
                                .unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into()),
                        )
                        .cache_key_prefix(format!("sessio-inproc:{}:", std::process::id()))
                        .build()?,
                )
                .await?,
            ),
            other => anyhow::bail!("unknown engine {other}"),
        };
        let label = format!("{engine} {workload}");
        match manager {
            // As `axum::serve` does: handlers become routes once, not on every call.
            None => {
                drive(
                    sessio_bench::apps::bare_router().with_state(()),
                    workload,
                    n,
                    &label,
                )
                .await
            }
            Some(m) => drive(sessio_bench::apps::sessio_app(&m), workload, n, &label).await,
        }
    })
}

/// Calls `app` `n` times with `workload`'s request, carrying the cookie as a client would.
async fn drive<A>(app: A, workload: &str, n: usize, label: &str) -> anyhow::Result<()>
where
    A: Service<Request<Body>, Response = Response, Error = Infallible> + Clone,
{
    // A session to carry, as the load generator's users do after their setup request.
    let seed = app
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
    let mut cookie = cookie.map(|c| shared_bytes(&c));
    let start = Instant::now();
    for _ in 0..n {
        let mut req = Request::get(path.as_str());
        if workload != "login" {
            if let Some(c) = &cookie {
                req = req.header(header::COOKIE, HeaderValue::from_maybe_shared(c.clone())?);
            }
        }
        let res = app.clone().oneshot(req.body(Body::empty())?).await?;
        if let Some(set) = res.headers().get(header::SET_COOKIE) {
            if workload != "login" {
                cookie = set.to_str()?.split(';').next().map(shared_bytes);
            }
        }
        let body = axum::body::to_bytes(res.into_body(), 1 << 20).await?;
        std::hint::black_box(body);
    }
    let per = start.elapsed() / n as u32;
    println!("{label}: {per:?} per request");
    anyhow::Ok(())
}

/// The bytes of a header value as hyper hands them over: a slice of a shared read buffer,
/// so that cloning the value (as the middleware does with the cookie) counts an atomic
/// increment, not the copy a value made from a `&str` would need.
fn shared_bytes(s: &str) -> Bytes {
    let b = Bytes::copy_from_slice(s.as_bytes());
    // The first clone turns the vector into shared storage.
    drop(b.clone());
    b
}
