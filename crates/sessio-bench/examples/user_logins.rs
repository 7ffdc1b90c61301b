//! What a login costs as one user's sessions pile up, with the per-user index on
//! (`track_user_sessions`): `N` logins of one user, each on a fresh session (cycled, as
//! `auth::login` does, and saved), timed one by one. A login should cost the same for the
//! user's 1st session as for their 10,000th.
//!
//! ```sh
//! cargo run --release -p sessio-bench --example user_logins -- sqlite 10000
//! cargo run --release -p sessio-bench --example user_logins -- postgres 10000
//! cargo run --release -p sessio-bench --example user_logins -- redis 10000
//! ```
//!
//! Arguments: engine (`sqlite` in a temporary directory; `postgres` at
//! `SESSIO_POSTGRES_URL` or postgres://postgres@127.0.0.1:5432/test; `redis` at
//! `SESSIO_REDIS_URL` or redis://127.0.0.1:6379, under a key prefix of its own) and the
//! number of logins. It prints the median time of the first and of the last tenth of the
//! logins (single logins are too noisy to compare on a shared machine), and their ratio;
//! with `SESSIO_LOGINS_BY_THOUSAND` set, the median of every thousand; then it ends every
//! session it made.

use std::time::{Duration, Instant};

use sessio::{auth, Config, EngineKind, SessionManager};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let engine = args.get(1).map(String::as_str).unwrap_or("sqlite");
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    anyhow::ensure!(n >= 10, "give at least 10 logins");
    let window = n / 10;
    let dir = tempfile::tempdir()?;
    let run = format!("bench{}", std::process::id());
    let builder = Config::builder()
        .secret_key(sessio::SecretKey::generate()?.expose())
        .auto_migrate(true)
        .track_user_sessions(true);
    let builder = match engine {
        "sqlite" => builder.engine(EngineKind::Db).database_url(format!(
            "sqlite://{}",
            dir.path().join("logins.sqlite3").display()
        )),
        "postgres" => builder.engine(EngineKind::Db).database_url(
            std::env::var("SESSIO_POSTGRES_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into()),
        ),
        "redis" => builder
            .engine(EngineKind::Cache)
            .cache_url(
                std::env::var("SESSIO_REDIS_URL")
                    .unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
            )
            .cache_key_prefix(format!("{run}:")),
        other => anyhow::bail!("unknown engine `{other}`: sqlite, postgres or redis"),
    };
    let sessions = SessionManager::open(builder.build()?).await?;
    let user = format!("user-{run}");
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        let s = sessions.session(None);
        auth::login(&s, &user, auth::MODEL_BACKEND, "pbkdf2_sha256$1$s$h=").await?;
        s.save().await?;
        times.push(start.elapsed());
    }
    let first = median(times[..window].to_vec());
    let last = median(times[n - window..].to_vec());
    println!(
        "{engine}: logins 1-{window}: {:.3} ms, logins {}-{n}: {:.3} ms, ratio {:.2}",
        first.as_secs_f64() * 1e3,
        n - window + 1,
        last.as_secs_f64() * 1e3,
        last.as_secs_f64() / first.as_secs_f64()
    );
    if std::env::var_os("SESSIO_LOGINS_BY_THOUSAND").is_some() {
        for (i, block) in times.chunks(1000).enumerate() {
            println!(
                "  logins {}-{}: median {:.3} ms",
                i * 1000 + 1,
                i * 1000 + block.len(),
                median(block.to_vec()).as_secs_f64() * 1e3
            );
        }
    }
    let listed = sessions.user_sessions(&user).await?.len();
    let ended = sessions.revoke_all_sessions(&user).await?;
    println!("listed {listed} sessions, ended {ended}");
    Ok(())
}
