//! How many store operations per second an engine takes from many tasks at once, with no
//! HTTP in between: `OPS` creates each followed by a save, then `OPS` loads, then `OPS`
//! write requests (a load, then a save of one change from the version read).
//!
//! ```sh
//! cargo run --release -p sessio-bench --example store_throughput -- sqlite
//! cargo run --release -p sessio-bench --example store_throughput -- postgres 10000 64
//! ```
//!
//! Arguments: engine (`sqlite` in a temporary directory; `postgres` at
//! `SESSIO_TEST_POSTGRES_URL` or postgres://postgres@127.0.0.1:5432/test, in a schema of
//! its own; `mysql` at `SESSIO_TEST_MYSQL_URL` or mysql://root@127.0.0.1:3306/test, in a
//! database of its own; `redis` at `SESSIO_TEST_REDIS_URL` or redis://127.0.0.1:6379, under
//! a key prefix of its own; `memory`), the number of operations (default 10,000) and of
//! tasks (default 64). It prints operations per second for each phase, then removes what
//! it stored.

use std::sync::Arc;
use std::time::Instant;

use sessio::engine::{Changes, SessionData, SessionEngine};
use sessio::json;
use sessio::Config;
use time::OffsetDateTime;

/// Where an engine keeps its sessions for one run, and how to remove them afterwards.
enum Store {
    Dir(tempfile::TempDir),
    /// A scratch schema (PostgreSQL) or database (MySQL), dropped with `drop_sql` on
    /// `admin_url`.
    Scratch {
        admin_url: String,
        drop_sql: String,
    },
    Nothing,
}

fn env_url(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_owned())
}

/// Runs `sql` on a fresh connection to the server at `url` (`postgres://` or `mysql://`).
async fn admin(url: &str, sql: &str) -> anyhow::Result<()> {
    use sessio::db::sqlx_core::connection::Connection;
    use sessio::db::sqlx_core::executor::Executor;
    if url.starts_with("mysql://") {
        let mut conn = sessio::db::sqlx_mysql::MySqlConnection::connect(url).await?;
        conn.execute(sql).await?;
        conn.close().await?;
    } else {
        let mut conn = sessio::db::sqlx_postgres::PgConnection::connect(url).await?;
        conn.execute(sql).await?;
        conn.close().await?;
    }
    Ok(())
}

/// The engine's settings and where its data goes.
async fn prepare(engine: &str, run: &str) -> anyhow::Result<(Config, Store)> {
    let builder = Config::builder()
        .secret_key(sessio::SecretKey::generate()?.expose())
        .auto_migrate(true);
    Ok(match engine {
        "sqlite" => {
            let dir = tempfile::tempdir()?;
            let url = format!("sqlite://{}", dir.path().join("sessions.sqlite3").display());
            (builder.database_url(url).build()?, Store::Dir(dir))
        }
        "postgres" => {
            let admin_url = env_url(
                "SESSIO_TEST_POSTGRES_URL",
                "postgres://postgres@127.0.0.1:5432/test",
            );
            admin(&admin_url, &format!("CREATE SCHEMA {run}")).await?;
            let separator = if admin_url.contains('?') { '&' } else { '?' };
            let url = format!("{admin_url}{separator}options[search_path]={run}");
            let drop_sql = format!("DROP SCHEMA IF EXISTS {run} CASCADE");
            let store = Store::Scratch {
                admin_url,
                drop_sql,
            };
            (builder.database_url(url).build()?, store)
        }
        "mysql" => {
            let admin_url = env_url("SESSIO_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test");
            admin(&admin_url, &format!("CREATE DATABASE {run}")).await?;
            let mut url = sessio::db::sqlx_core::Url::parse(&admin_url)?;
            url.set_path(&format!("/{run}"));
            let drop_sql = format!("DROP DATABASE IF EXISTS {run}");
            let store = Store::Scratch {
                admin_url,
                drop_sql,
            };
            (builder.database_url(url.as_str()).build()?, store)
        }
        "redis" => {
            let url = env_url("SESSIO_TEST_REDIS_URL", "redis://127.0.0.1:6379");
            let config = builder
                .cache_url(url)
                .cache_key_prefix(format!("{run}:"))
                .build()?;
            (config, Store::Nothing)
        }
        "memory" => (builder.cache_url("memory://").build()?, Store::Nothing),
        other => {
            anyhow::bail!("unknown engine `{other}`: sqlite, postgres, mysql, redis or memory")
        }
    })
}

async fn open(engine: &str, config: &Config) -> sessio::Result<Arc<dyn SessionEngine>> {
    match engine {
        "redis" | "memory" => sessio::cache::open(config).await,
        _ => sessio::db::open(config).await,
    }
}

/// Runs `op` on every key of `keys` from `tasks` tasks, each taking every `tasks`-th key.
async fn spread<F, Fut>(keys: &Arc<Vec<String>>, tasks: usize, op: F) -> anyhow::Result<()>
where
    F: Fn(usize, String) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = sessio::Result<()>> + Send,
{
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let (keys, op) = (keys.clone(), op.clone());
            tokio::spawn(async move {
                for key in keys.iter().skip(t).step_by(tasks) {
                    op(t, key.clone()).await?;
                }
                Ok::<_, sessio::Error>(())
            })
        })
        .collect();
    for h in handles {
        h.await??;
    }
    Ok(())
}

fn report(engine: &str, what: &str, ops: usize, started: Instant) {
    let elapsed = started.elapsed();
    println!(
        "{engine} {what}: {ops} in {elapsed:.2?}: {:.0} operations/s",
        ops as f64 / elapsed.as_secs_f64()
    );
}

async fn measure(
    name: &str,
    engine: Arc<dyn SessionEngine>,
    ops: usize,
    tasks: usize,
) -> anyhow::Result<()> {
    let d: SessionData = json!({"user_id": 42, "name": "Ada Lovelace", "cart": [1, 2, 3]})
        .as_object()
        .cloned()
        .unwrap_or_default();
    let expires = OffsetDateTime::now_utc() + time::Duration::days(14);

    // Creates and saves: `ops` of each, spread over the tasks.
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let (engine, d) = (engine.clone(), d.clone());
            let share = ops / tasks + usize::from(t < ops % tasks);
            tokio::spawn(async move {
                let mut keys = Vec::with_capacity(share);
                for _ in 0..share {
                    let key = engine.create(&d, expires).await?;
                    engine.save(&key, &d, expires).await?;
                    keys.push(key);
                }
                Ok::<_, sessio::Error>(keys)
            })
        })
        .collect();
    let mut keys = Vec::with_capacity(ops);
    for h in handles {
        keys.extend(h.await??);
    }
    report(name, "writes (create and save)", keys.len() * 2, started);
    let keys = Arc::new(keys);

    let started = Instant::now();
    let loading = engine.clone();
    spread(&keys, tasks, move |_, key| {
        let engine = loading.clone();
        async move {
            let found = engine.load(&key).await?;
            assert!(found.is_some(), "a session just written is missing");
            Ok(())
        }
    })
    .await?;
    report(name, "loads", keys.len(), started);

    // A write request: load, then save one change from the version read.
    let started = Instant::now();
    let writing = engine.clone();
    spread(&keys, tasks, move |t, key| {
        let engine = writing.clone();
        async move {
            let changes = Changes {
                cleared: false,
                entries: vec![("seen".into(), Some(json!(t)))],
            };
            let Some(loaded) = engine.load_session(&key).await? else {
                return Err(sessio::Error::SessionInterrupted);
            };
            match loaded.version {
                Some(base) => {
                    let mut data = Arc::unwrap_or_clone(loaded.data);
                    changes.apply(&mut data);
                    let data = Arc::new(data);
                    engine
                        .save_changes_from(&key, &base, &data, &changes, expires)
                        .await?;
                }
                None => {
                    engine.save_changes(&key, &changes, expires).await?;
                }
            }
            Ok(())
        }
    })
    .await?;
    report(name, "write requests (load and save)", keys.len(), started);

    let deleting = engine.clone();
    spread(&keys, tasks, move |_, key| {
        let engine = deleting.clone();
        async move { engine.delete(&key).await }
    })
    .await
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let engine = args.get(1).map_or("sqlite", String::as_str);
    let ops: usize = args
        .get(2)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(10_000);
    let tasks: usize = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(64);
    anyhow::ensure!(tasks > 0, "give at least one task");
    let run = format!("sessio_bench_{}", std::process::id());
    let (config, store) = prepare(engine, &run).await?;
    let measured = match open(engine, &config).await {
        Ok(opened) => measure(engine, opened, ops, tasks).await,
        Err(e) => Err(e.into()),
    };
    match store {
        Store::Dir(dir) => dir.close()?,
        Store::Scratch {
            admin_url,
            drop_sql,
        } => admin(&admin_url, &drop_sql).await?,
        Store::Nothing => {}
    }
    measured
}
