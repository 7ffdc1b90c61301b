//! The `db` engine on real PostgreSQL and MySQL/MariaDB servers: Django's schema and
//! formats, a table Django created, missing tables, unreachable servers, and a server that
//! goes away under load (through the middleware).
//!
//! Servers: `SESSIO_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`)
//! and `SESSIO_TEST_MYSQL_URL` (default `mysql://root@127.0.0.1:3306/test`). Each test
//! works in a schema (PostgreSQL) or database (MySQL) of its own. Unreachable servers skip
//! the tests visibly, or fail them under `SESSIO_REQUIRE_SERVICES=1`.

#![cfg(any(feature = "postgres", feature = "mysql"))]

mod common;

use std::time::Duration;

use sessio::clock::ManualClock;
use sessio::{json, Value};
use sessio::{Config, EngineKind, Error, SessionData, SessionEngine};
use time::OffsetDateTime;

/// 2023-11-14T22:13:20Z, the time of Django's vectors.
const T0: i64 = 1_700_000_000;
const DAY: i64 = 86_400;
/// `{"user_id":42,"cart":[1,2]}` as Django 5.2 stores it, signed with `test-secret` at T0.
const DJANGO_DATA: &str =
    "eyJ1c2VyX2lkIjo0MiwiY2FydCI6WzEsMl19:1r31eq:EuHZHOfZueYvjUO7CERx-u8g7grivz5XfByNK-8nVNg";

fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap()
}

fn data(value: Value) -> SessionData {
    value.as_object().unwrap().clone()
}

/// Settings with Django's test secret, a frozen clock and the given URL.
fn config(url: &str, clock: &ManualClock, auto_migrate: bool) -> Config {
    config_builder(url, clock, auto_migrate).build().unwrap()
}

/// [`config`] before it is built, for a test that changes one more setting.
fn config_builder(url: &str, clock: &ManualClock, auto_migrate: bool) -> sessio::ConfigBuilder {
    Config::builder()
        .secret_key("test-secret")
        .allow_weak_secret_key(true)
        .engine(EngineKind::Db)
        .database_url(url)
        .auto_migrate(auto_migrate)
        .clock(clock.clone())
}

fn assert_schema_missing(result: sessio::Result<impl std::fmt::Debug>) {
    match result {
        Err(e @ Error::SchemaMissing { .. }) => {
            assert!(e.to_string().contains("sessio migrate"), "{e}");
        }
        other => panic!("expected SchemaMissing, got {other:?}"),
    }
}

/// Tests that both engines pass, on a fresh engine over an empty store.
async fn shared_semantics(engine: &dyn SessionEngine, clock: &ManualClock) {
    clock.set(at(T0));
    assert_eq!(engine.name(), "db");
    assert!(!engine.is_client_side());

    let first = data(json!({"user_id": 42, "cart": [1, 2]}));
    let key = engine.create(&first, at(T0 + DAY)).await.unwrap();
    assert_eq!(key.len(), 32);
    assert_eq!(engine.load(&key).await.unwrap(), Some(first.clone()));
    assert!(engine.exists(&key).await.unwrap());

    // An unchanged save (same data, same expiry, same second) is still a save.
    assert_eq!(engine.save(&key, &first, at(T0 + DAY)).await.unwrap(), key);
    let second = data(json!({"user_id": 42, "theme": "dark", "é": "ü"}));
    engine.save(&key, &second, at(T0 + 2 * DAY)).await.unwrap();
    assert_eq!(engine.load(&key).await.unwrap(), Some(second.clone()));

    // Expiry: strictly after now; exists ignores it.
    clock.set(at(T0 + 2 * DAY - 1));
    assert!(engine.load(&key).await.unwrap().is_some());
    clock.set(at(T0 + 2 * DAY));
    assert_eq!(engine.load(&key).await.unwrap(), None);
    assert!(engine.exists(&key).await.unwrap());
    assert_eq!(engine.count_expired().await.unwrap(), Some(0));
    clock.set(at(T0 + 2 * DAY + 1));
    assert_eq!(engine.count_expired().await.unwrap(), Some(1));

    // Save never resurrects a deleted session.
    clock.set(at(T0));
    engine.delete(&key).await.unwrap();
    engine.delete(&key).await.unwrap();
    assert!(!engine.exists(&key).await.unwrap());
    assert!(matches!(
        engine.save(&key, &second, at(T0 + DAY)).await,
        Err(Error::SessionInterrupted)
    ));
    assert!(!engine.exists(&key).await.unwrap());

    // Odd keys are simply absent.
    for odd in ["", "x", "a\0b", &"k".repeat(200), "ünïcödé-kéy-ünïcödé"] {
        assert_eq!(engine.load(odd).await.unwrap(), None, "{odd:?}");
        assert!(!engine.exists(odd).await.unwrap(), "{odd:?}");
        engine.delete(odd).await.unwrap();
    }

    // Expired rows go in batches of at most `limit`.
    for i in 0..25 {
        engine
            .create(&data(json!({"i": i})), at(T0 + 10))
            .await
            .unwrap();
    }
    let live = engine
        .create(&data(json!({"live": true})), at(T0 + DAY))
        .await
        .unwrap();
    clock.set(at(T0 + 100));
    assert_eq!(engine.count_expired().await.unwrap(), Some(25));
    assert_eq!(engine.clear_expired_batch(0).await.unwrap(), 0);
    let mut batches = Vec::new();
    loop {
        let n = engine.clear_expired_batch(10).await.unwrap();
        batches.push(n);
        if n < 10 {
            break;
        }
    }
    assert_eq!(batches, vec![10, 10, 5]);
    assert_eq!(engine.count_expired().await.unwrap(), Some(0));
    assert!(engine.load(&live).await.unwrap().is_some());

    // Far past and far future expiry dates are stored without error.
    clock.set(at(T0));
    let past = engine
        .create(
            &SessionData::new(),
            OffsetDateTime::UNIX_EPOCH - time::Duration::days(800_000),
        )
        .await
        .unwrap();
    assert_eq!(engine.load(&past).await.unwrap(), None);
    let future = engine
        .create(
            &SessionData::new(),
            time::macros::datetime!(9999-12-31 23:59:59 UTC),
        )
        .await
        .unwrap();
    assert_eq!(
        engine.load(&future).await.unwrap(),
        Some(SessionData::new())
    );

    // Many concurrent writers.
    let mut tasks = Vec::new();
    for i in 0..64 {
        tasks.push(async move {
            let key = engine.create(&data(json!({"i": i})), at(T0 + DAY)).await?;
            engine
                .save(&key, &data(json!({"i": i, "saved": true})), at(T0 + DAY))
                .await?;
            Ok::<_, Error>((i, key))
        });
    }
    for (i, key) in futures_util::future::try_join_all(tasks).await.unwrap() {
        assert_eq!(
            engine.load(&key).await.unwrap(),
            Some(data(json!({"i": i, "saved": true})))
        );
    }
}

/// 48 concurrent requests' worth of creates, saves and loads; every one must succeed.
async fn busy(engine: &std::sync::Arc<dyn SessionEngine>) -> usize {
    let mut tasks = Vec::new();
    for i in 0..48 {
        let engine = engine.clone();
        tasks.push(tokio::spawn(async move {
            let key = engine.create(&data(json!({"i": i})), at(T0 + DAY)).await?;
            engine
                .save(&key, &data(json!({"i": i, "saved": true})), at(T0 + DAY))
                .await?;
            let loaded = engine.load(&key).await?;
            assert_eq!(loaded, Some(data(json!({"i": i, "saved": true}))));
            Ok::<_, Error>(())
        }));
    }
    let mut ok = 0;
    for t in tasks {
        t.await.unwrap().unwrap();
        ok += 1;
    }
    ok
}

// ---------------------------------------------------------------------------------------
// The tests every SQL server runs, written once against `SqlServer`

/// What the shared tests need from a server: a scratch schema or database of their own,
/// raw access to it, and the engine.
trait SqlServer: 'static {
    /// A schema or database of the test's own, dropped on drop.
    type Scratch: Send + Sync + 'static;
    type Engine: SessionEngine;
    /// A connection outside the engine, for raw SQL.
    type Conn;
    /// Django's DDL for `sessions.0001_initial`, statement by statement.
    const DJANGO_DDL: &'static [&'static str];
    /// The columns of `django_session`, as [`SqlServer::columns`] describes them.
    const COLUMNS: &'static [&'static str];
    /// The URL scheme, and the other name the URL dispatch accepts for it.
    const SCHEMES: (&'static str, &'static str);
    /// A URL with a password where no server listens, and how messages must show it.
    const UNREACHABLE: (&'static str, &'static str);
    /// What follows the seconds when a whole-second `expire_date` is read back as text.
    const FRACTION: &'static str;

    /// A fresh scratch, or `None` (the test skips) when the server is unreachable.
    async fn scratch() -> Option<Self::Scratch>;
    /// The URL of the scratch.
    fn url(scratch: &Self::Scratch) -> &str;
    /// The scratch's URL, marked so that [`SqlServer::end_connections`] finds the
    /// engine's connections.
    fn tagged_url(scratch: &Self::Scratch) -> String;
    /// The engine's own `open` (`Send`: concurrent migrators are spawned tasks).
    fn open(
        config: &Config,
    ) -> impl std::future::Future<Output = sessio::Result<Self::Engine>> + Send;
    async fn raw(scratch: &Self::Scratch) -> Self::Conn;
    async fn execute(conn: &mut Self::Conn, sql: &str);
    /// Ends, from the server side, every connection opened with the tagged URL; returns
    /// how many it ended.
    async fn end_connections(scratch: &Self::Scratch) -> usize;
    /// Stores a row as Django would, expiring at `expire_date` (UTC, `YYYY-MM-DD hh:mm:ss`).
    async fn insert_row(conn: &mut Self::Conn, key: &str, data: &str, expire_date: &str);
    /// `session_data|expire_date` of a row, the date as UTC text.
    async fn stored_row(conn: &mut Self::Conn, key: &str) -> String;
    /// `name type … nullable …` per column of `django_session`, in order.
    async fn columns(conn: &mut Self::Conn, scratch: &Self::Scratch) -> Vec<String>;
    /// The indexes of `django_session`, one line each, sorted.
    async fn indexes(conn: &mut Self::Conn, scratch: &Self::Scratch) -> Vec<String>;
    /// What [`SqlServer::indexes`] lists for Django's schema.
    fn django_indexes(scratch: &Self::Scratch) -> Vec<String>;
    /// `version name` per row of `sessio_migrations`, in order.
    async fn migrations(conn: &mut Self::Conn) -> Vec<String>;
}

/// Every test that holds for all SQL servers, instantiated for `$server` in the
/// calling module (`postgres::semantics`, `mysql::semantics`, …).
macro_rules! sql_suite {
    ($server:ty) => {
        #[tokio::test]
        async fn semantics() {
            crate::suite::semantics::<$server>().await
        }

        /// The server ends every connection of the pool while it is idle (a restart,
        /// `wait_timeout`, a failover, an idle-connection killer): the next calls get new
        /// connections instead of errors.
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn connections_ended_by_the_server_are_replaced() {
            crate::suite::connections_ended_by_the_server_are_replaced::<$server>().await
        }

        #[tokio::test]
        async fn fresh_schema_is_djangos_and_migrating_again_changes_nothing() {
            crate::suite::fresh_schema_is_djangos_and_migrating_again_changes_nothing::<$server>()
                .await
        }

        #[tokio::test]
        async fn concurrent_migrators_do_not_collide() {
            crate::suite::concurrent_migrators_do_not_collide::<$server>().await
        }

        #[tokio::test]
        async fn table_created_by_django_is_used_and_migrated() {
            crate::suite::table_created_by_django_is_used_and_migrated::<$server>().await
        }

        #[tokio::test]
        async fn reads_rows_django_wrote_and_writes_what_django_reads() {
            crate::suite::reads_rows_django_wrote_and_writes_what_django_reads::<$server>().await
        }

        #[tokio::test]
        async fn corrupted_session_data_loads_as_an_empty_session() {
            crate::suite::corrupted_session_data_loads_as_an_empty_session::<$server>().await
        }

        #[tokio::test]
        async fn missing_table_is_schema_missing_at_open_and_at_run_time() {
            crate::suite::missing_table_is_schema_missing_at_open_and_at_run_time::<$server>().await
        }

        #[tokio::test]
        async fn server_down_at_open_names_the_url_without_its_password() {
            crate::suite::server_down_at_open_names_the_url_without_its_password::<$server>().await
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn concurrent_write_requests_save_without_merging() {
            crate::suite::concurrent_write_requests_save_without_merging::<$server>().await
        }
    };
}

mod suite {
    use super::*;

    /// What most tests start from: a scratch, a clock at `T0` and an engine that migrated
    /// the schema. `None` when the server is unreachable (the test then skips).
    pub async fn migrated<S: SqlServer>() -> Option<(S::Scratch, ManualClock, S::Engine)> {
        let scratch = S::scratch().await?;
        let clock = ManualClock::at_unix(T0);
        let engine = S::open(&config(S::url(&scratch), &clock, true))
            .await
            .unwrap();
        Some((scratch, clock, engine))
    }

    pub async fn semantics<S: SqlServer>() {
        let Some((_scratch, clock, engine)) = migrated::<S>().await else {
            return;
        };
        shared_semantics(&engine, &clock).await;
    }

    pub async fn connections_ended_by_the_server_are_replaced<S: SqlServer>() {
        let Some(scratch) = S::scratch().await else {
            return;
        };
        let clock = ManualClock::at_unix(T0);
        let engine: std::sync::Arc<dyn SessionEngine> = std::sync::Arc::new(
            S::open(&config(&S::tagged_url(&scratch), &clock, true))
                .await
                .unwrap(),
        );
        assert_eq!(busy(&engine).await, 48);
        assert!(S::end_connections(&scratch).await > 0);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(busy(&engine).await, 48);
    }

    pub async fn fresh_schema_is_djangos_and_migrating_again_changes_nothing<S: SqlServer>() {
        let Some((scratch, clock, engine)) = migrated::<S>().await else {
            return;
        };
        let mut conn = S::raw(&scratch).await;
        assert_eq!(S::columns(&mut conn, &scratch).await, S::COLUMNS);
        let expected = S::django_indexes(&scratch);
        assert_eq!(S::indexes(&mut conn, &scratch).await, expected);
        assert_eq!(S::migrations(&mut conn).await, ["1 0001_django_session"]);

        // Again, by `sessio migrate` and by another auto-migrating process.
        engine.migrate().await.unwrap();
        S::open(&config(S::url(&scratch), &clock, true))
            .await
            .unwrap();
        assert_eq!(S::indexes(&mut conn, &scratch).await, expected);
        assert_eq!(S::migrations(&mut conn).await.len(), 1);
    }

    pub async fn concurrent_migrators_do_not_collide<S: SqlServer>() {
        let Some(scratch) = S::scratch().await else {
            return;
        };
        let clock = ManualClock::at_unix(T0);
        let config = config(S::url(&scratch), &clock, true);
        let opens: Vec<_> = (0..6)
            .map(|_| {
                let config = config.clone();
                tokio::spawn(async move { S::open(&config).await.map(drop) })
            })
            .collect();
        for open in opens {
            open.await.unwrap().unwrap();
        }
        let mut conn = S::raw(&scratch).await;
        assert_eq!(S::migrations(&mut conn).await.len(), 1);
        assert_eq!(
            S::indexes(&mut conn, &scratch).await.len(),
            S::django_indexes(&scratch).len()
        );
    }

    pub async fn table_created_by_django_is_used_and_migrated<S: SqlServer>() {
        let Some(scratch) = S::scratch().await else {
            return;
        };
        let mut conn = S::raw(&scratch).await;
        for statement in S::DJANGO_DDL {
            S::execute(&mut conn, statement).await;
        }
        let clock = ManualClock::at_unix(T0);
        // Without auto-migrate: the table is there, that is enough.
        let engine = S::open(&config(S::url(&scratch), &clock, false))
            .await
            .unwrap();
        let key = engine
            .create(&data(json!({"a": 1})), at(T0 + DAY))
            .await
            .unwrap();
        // `sessio migrate` on Django's table: recorded, no index created twice, data kept.
        engine.migrate().await.unwrap();
        assert_eq!(S::migrations(&mut conn).await, ["1 0001_django_session"]);
        assert_eq!(
            S::indexes(&mut conn, &scratch).await.len(),
            S::django_indexes(&scratch).len()
        );
        assert_eq!(
            engine.load(&key).await.unwrap(),
            Some(data(json!({"a": 1})))
        );
    }

    pub async fn reads_rows_django_wrote_and_writes_what_django_reads<S: SqlServer>() {
        let Some((scratch, clock, engine)) = migrated::<S>().await else {
            return;
        };
        let mut conn = S::raw(&scratch).await;
        let key = "djangokey000000000000000000000000";
        S::insert_row(&mut conn, key, DJANGO_DATA, "2023-11-28 22:13:20").await;
        let expected = data(json!({"user_id": 42, "cart": [1, 2]}));
        assert_eq!(engine.load(key).await.unwrap(), Some(expected.clone()));
        clock.set(at(T0 + 14 * DAY - 1));
        assert_eq!(engine.load(key).await.unwrap(), Some(expected.clone()));
        clock.set(at(T0 + 14 * DAY));
        assert_eq!(engine.load(key).await.unwrap(), None);

        clock.set(at(T0));
        let ours = engine.create(&expected, at(T0 + 14 * DAY)).await.unwrap();
        assert_eq!(
            S::stored_row(&mut conn, &ours).await,
            format!("{DJANGO_DATA}|2023-11-28 22:13:20{}", S::FRACTION)
        );
    }

    pub async fn corrupted_session_data_loads_as_an_empty_session<S: SqlServer>() {
        let Some((scratch, _, engine)) = migrated::<S>().await else {
            return;
        };
        let mut conn = S::raw(&scratch).await;
        let tampered = DJANGO_DATA.replace("eyJ1c2Vy", "eyJ2c2Vy");
        for (i, value) in ["garbage", "", tampered.as_str(), "a:b:c"]
            .iter()
            .enumerate()
        {
            let key = format!("corrupt{i}");
            S::insert_row(&mut conn, &key, value, "2030-01-01 00:00:00").await;
            assert_eq!(
                engine.load(&key).await.unwrap(),
                Some(SessionData::new()),
                "{value}"
            );
        }
    }

    pub async fn missing_table_is_schema_missing_at_open_and_at_run_time<S: SqlServer>() {
        let Some(scratch) = S::scratch().await else {
            return;
        };
        let url = S::url(&scratch);
        let clock = ManualClock::at_unix(T0);
        assert_schema_missing(S::open(&config(url, &clock, false)).await);
        // Through the URL dispatch too, with the other scheme name.
        let (scheme, other) = S::SCHEMES;
        let other_url = url.replacen(scheme, other, 1);
        assert_schema_missing(sessio::open(&config(&other_url, &clock, false)).await);

        let engine = S::open(&config(url, &clock, true)).await.unwrap();
        let key = engine
            .create(&SessionData::new(), at(T0 + DAY))
            .await
            .unwrap();
        let mut conn = S::raw(&scratch).await;
        S::execute(&mut conn, "DROP TABLE django_session").await;
        assert_schema_missing(engine.load(&key).await);
        assert_schema_missing(engine.save(&key, &SessionData::new(), at(T0 + DAY)).await);
        assert_schema_missing(engine.create(&SessionData::new(), at(T0 + DAY)).await);
        assert_schema_missing(engine.exists(&key).await);
        assert_schema_missing(engine.clear_expired_batch(10).await);
        // `sessio migrate` brings it back (the stale history is replayed).
        engine.migrate().await.unwrap();
        let key = engine
            .create(&SessionData::new(), at(T0 + DAY))
            .await
            .unwrap();
        assert!(engine.exists(&key).await.unwrap());
    }

    pub async fn server_down_at_open_names_the_url_without_its_password<S: SqlServer>() {
        let (url, redacted) = S::UNREACHABLE;
        let clock = ManualClock::at_unix(T0);
        let started = std::time::Instant::now();
        let err = S::open(&config(url, &clock, true)).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        let text = err.to_string();
        assert!(matches!(err, Error::Store { .. }), "{err:?}");
        assert!(text.contains(redacted), "{text}");
        let everything = format!("{err} {err:?} {:?}", std::error::Error::source(&err));
        assert!(!everything.contains("hunter2"), "{everything}");
    }

    /// Requests from many tasks at once: each creates and saves a session, loads it back,
    /// and saves a change from the version it read, which nothing raced, so nothing is
    /// merged.
    pub async fn concurrent_write_requests_save_without_merging<S: SqlServer>() {
        let Some((_scratch, _, engine)) = migrated::<S>().await else {
            return;
        };
        let engine: std::sync::Arc<dyn SessionEngine> = std::sync::Arc::new(engine);
        let expires = at(T0 + DAY);
        let tasks: Vec<_> = (0..64)
            .map(|i| {
                let engine = engine.clone();
                tokio::spawn(async move {
                    let d = data(json!({"user_id": i}));
                    let key = engine.create(&d, expires).await.unwrap();
                    engine.save(&key, &d, expires).await.unwrap();
                    let loaded = engine.load_session(&key).await.unwrap().unwrap();
                    let base = loaded.version.expect("a stored version");
                    let changes = sessio::engine::Changes {
                        cleared: false,
                        entries: vec![("seen".into(), Some(json!(i)))],
                    };
                    let mut d = std::sync::Arc::unwrap_or_clone(loaded.data);
                    changes.apply(&mut d);
                    let d = std::sync::Arc::new(d);
                    let saved = engine
                        .save_changes_from(&key, &base, &d, &changes, expires)
                        .await
                        .unwrap();
                    assert_eq!(saved.merged, None);
                    assert_eq!(engine.load(&key).await.unwrap().as_ref(), Some(&*d));
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    }
}

// ---------------------------------------------------------------------------------------
// PostgreSQL

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;
    use common::{postgres_url, skip, PgScratch};
    use sessio::db::postgres::PostgresEngine;
    use sessio::db::sqlx_core::connection::Connection;
    use sessio::db::sqlx_core::executor::Executor;
    use sessio::db::sqlx_core::query::query;
    use sessio::db::sqlx_core::query_scalar::query_scalar;
    use sessio::db::sqlx_postgres::{PgConnection, PgPoolOptions};

    /// Django's DDL for `sessions.0001_initial` on PostgreSQL, exactly.
    const DJANGO_DDL: &str = r#"CREATE TABLE "django_session" ("session_key" varchar(40) NOT NULL PRIMARY KEY, "session_data" text NOT NULL, "expire_date" timestamp with time zone NOT NULL);
CREATE INDEX "django_session_session_key_c0390e0f_like" ON "django_session" ("session_key" varchar_pattern_ops);
CREATE INDEX "django_session_expire_date_a5c62663" ON "django_session" ("expire_date");"#;

    /// The test PostgreSQL, each test in a schema of its own.
    struct Pg;

    /// The application name of the engine's connections in `tagged_url`.
    fn application_name(scratch: &PgScratch) -> String {
        format!("app_{}", scratch.schema)
    }

    impl SqlServer for Pg {
        type Scratch = PgScratch;
        type Engine = PostgresEngine;
        type Conn = PgConnection;
        // Several statements in one: sqlx runs it with the simple query protocol.
        const DJANGO_DDL: &'static [&'static str] = &[DJANGO_DDL];
        const COLUMNS: &'static [&'static str] = &[
            "session_key character varying 40 NO",
            "session_data text - NO",
            "expire_date timestamp with time zone - NO",
        ];
        const SCHEMES: (&'static str, &'static str) = ("postgres://", "postgresql://");
        const UNREACHABLE: (&'static str, &'static str) = (
            "postgres://postgres:hunter2@127.0.0.1:1/test",
            "postgres://postgres:***@127.0.0.1:1/test",
        );
        const FRACTION: &'static str = "";

        async fn scratch() -> Option<PgScratch> {
            PgScratch::create().await
        }

        fn url(scratch: &PgScratch) -> &str {
            &scratch.url
        }

        fn tagged_url(scratch: &PgScratch) -> String {
            let name = application_name(scratch);
            common::with_query(&scratch.url, &format!("application_name={name}"))
        }

        fn open(
            config: &Config,
        ) -> impl std::future::Future<Output = sessio::Result<PostgresEngine>> + Send {
            PostgresEngine::open(config)
        }

        async fn raw(scratch: &PgScratch) -> PgConnection {
            PgConnection::connect(&scratch.url).await.unwrap()
        }

        async fn execute(conn: &mut PgConnection, sql: &str) {
            conn.execute(sql).await.unwrap();
        }

        async fn end_connections(scratch: &PgScratch) -> usize {
            let mut admin = Self::raw(scratch).await;
            let ended: Vec<bool> = query_scalar(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            )
            .bind(application_name(scratch))
            .fetch_all(&mut admin)
            .await
            .unwrap();
            ended.len()
        }

        async fn insert_row(conn: &mut PgConnection, key: &str, data: &str, expire_date: &str) {
            query(&format!(
                "INSERT INTO django_session VALUES ($1, $2, '{expire_date}+00')"
            ))
            .bind(key)
            .bind(data)
            .execute(conn)
            .await
            .unwrap();
        }

        async fn stored_row(conn: &mut PgConnection, key: &str) -> String {
            query_scalar(
                "SELECT session_data || '|' || (expire_date AT TIME ZONE 'UTC')::text \
                 FROM django_session WHERE session_key = $1",
            )
            .bind(key)
            .fetch_one(conn)
            .await
            .unwrap()
        }

        async fn columns(conn: &mut PgConnection, scratch: &PgScratch) -> Vec<String> {
            query_scalar(
                "SELECT column_name::text || ' ' || data_type::text || ' ' || \
                 coalesce(character_maximum_length::text, '-') || ' ' || is_nullable::text \
                 FROM information_schema.columns \
                 WHERE table_schema = $1 AND table_name = 'django_session' ORDER BY ordinal_position",
            )
            .bind(&scratch.schema)
            .fetch_all(conn)
            .await
            .unwrap()
        }

        async fn indexes(conn: &mut PgConnection, scratch: &PgScratch) -> Vec<String> {
            query_scalar(
                "SELECT indexname::text || '|' || indexdef FROM pg_indexes \
                 WHERE schemaname = $1 AND tablename = 'django_session' ORDER BY indexname",
            )
            .bind(&scratch.schema)
            .fetch_all(conn)
            .await
            .unwrap()
        }

        fn django_indexes(scratch: &PgScratch) -> Vec<String> {
            let s = &scratch.schema;
            vec![
                format!("django_session_expire_date_a5c62663|CREATE INDEX django_session_expire_date_a5c62663 ON {s}.django_session USING btree (expire_date)"),
                format!("django_session_pkey|CREATE UNIQUE INDEX django_session_pkey ON {s}.django_session USING btree (session_key)"),
                format!("django_session_session_key_c0390e0f_like|CREATE INDEX django_session_session_key_c0390e0f_like ON {s}.django_session USING btree (session_key varchar_pattern_ops)"),
            ]
        }

        async fn migrations(conn: &mut PgConnection) -> Vec<String> {
            query_scalar(
                "SELECT version::text || ' ' || name FROM sessio_migrations ORDER BY version",
            )
            .fetch_all(conn)
            .await
            .unwrap()
        }
    }

    sql_suite!(Pg);

    async fn migrated() -> Option<(PgScratch, ManualClock, PostgresEngine)> {
        suite::migrated::<Pg>().await
    }

    async fn raw(scratch: &PgScratch) -> PgConnection {
        Pg::raw(scratch).await
    }

    /// Writes are grouped into one statement per batch: a session saved many times at
    /// once, and saves of deleted sessions, must not disturb the rest of the batch.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn batched_writes_keep_each_result_apart() {
        let Some((_scratch, _, engine)) = migrated().await else {
            return;
        };
        let engine = std::sync::Arc::new(engine);
        let shared = engine
            .create(&data(json!({"n": -1})), at(T0 + DAY))
            .await
            .unwrap();
        let gone = engine
            .create(&SessionData::new(), at(T0 + DAY))
            .await
            .unwrap();
        engine.delete(&gone).await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..200 {
            let (engine, shared, gone) = (engine.clone(), shared.clone(), gone.clone());
            tasks.push(tokio::spawn(async move {
                match i % 3 {
                    0 => engine
                        .save(&shared, &data(json!({"n": i})), at(T0 + DAY))
                        .await
                        .map(drop),
                    1 => {
                        let r = engine.save(&gone, &SessionData::new(), at(T0 + DAY)).await;
                        assert!(matches!(r, Err(Error::SessionInterrupted)), "{r:?}");
                        Ok(())
                    }
                    _ => {
                        let key = engine.create(&data(json!({"i": i})), at(T0 + DAY)).await?;
                        assert_eq!(engine.load(&key).await?, Some(data(json!({"i": i}))));
                        Ok(())
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let last = engine.load(&shared).await.unwrap().unwrap();
        let n = last["n"].as_i64().unwrap();
        assert!(n >= 0 && n % 3 == 0, "{last:?}");
        assert!(!engine.exists(&gone).await.unwrap());
        let rows: i64 = query_scalar("SELECT COUNT(*) FROM django_session")
            .fetch_one(engine.pool())
            .await
            .unwrap();
        assert_eq!(rows, 1 + 66);
    }

    #[tokio::test]
    async fn expire_date_is_a_utc_timestamptz() {
        let Some((scratch, _, engine)) = migrated().await else {
            return;
        };
        let expires = time::macros::datetime!(2026-12-10 13:41:23.537181999 +01:00);
        let key = engine.create(&SessionData::new(), expires).await.unwrap();
        let mut conn = raw(&scratch).await;
        // Whatever the session's time zone, the instant is the same.
        conn.execute("SET TIME ZONE 'Asia/Tokyo'").await.unwrap();
        let stored: OffsetDateTime =
            query_scalar("SELECT expire_date FROM django_session WHERE session_key = $1")
                .bind(&key)
                .fetch_one(&mut conn)
                .await
                .unwrap();
        assert_eq!(
            stored,
            time::macros::datetime!(2026-12-10 12:41:23.537181 UTC)
        );
        let utc_text: String = query_scalar(
            "SELECT (expire_date AT TIME ZONE 'UTC')::text FROM django_session WHERE session_key = $1",
        )
        .bind(&key)
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert_eq!(utc_text, "2026-12-10 12:41:23.537181");
    }

    /// A save within `Config::expiry_slack` (60 s by default, and 1% of the time left) of
    /// the stored expiry date leaves the date, and so its index, alone: the row is updated
    /// in place.
    #[tokio::test]
    async fn a_save_leaves_a_nearly_unchanged_expire_date_alone() {
        let Some((scratch, clock, engine)) = migrated().await else {
            return;
        };
        let mut conn = raw(&scratch).await;
        let mut stored = async |key: &str| -> i64 {
            query_scalar::<_, OffsetDateTime>(
                "SELECT expire_date FROM django_session WHERE session_key = $1",
            )
            .bind(key)
            .fetch_one(&mut conn)
            .await
            .unwrap()
            .unix_timestamp()
        };
        let age = 14 * DAY;
        let key = engine
            .create(&data(json!({"n": 0})), at(T0 + age))
            .await
            .unwrap();
        // 59 s later: the date stays (the data is written).
        clock.set(at(T0 + 59));
        engine
            .save(&key, &data(json!({"n": 1})), at(T0 + 59 + age))
            .await
            .unwrap();
        assert_eq!(stored(&key).await, T0 + age);
        assert_eq!(
            engine.load(&key).await.unwrap(),
            Some(data(json!({"n": 1})))
        );
        // A merging save takes the same rule.
        let changes = sessio::engine::Changes {
            cleared: false,
            entries: vec![("n".into(), Some(2.into()))],
        };
        engine
            .save_changes(&key, &changes, at(T0 + 59 + age))
            .await
            .unwrap();
        assert_eq!(stored(&key).await, T0 + age);
        // (clock, expiry asked, expiry stored after the save, why)
        #[rustfmt::skip]
        let steps = [
            (T0 + 61, T0 + 61 + age, T0 + 61 + age, "61 s after it was written, the date moves"),
            (T0 + 61, T0 + 60 + age, T0 + 60 + age, "an earlier expiry is always written"),
            (T0 + 61, T0 + 61 + 300, T0 + 61 + 300, "a much earlier one too"),
            (T0 + 65, T0 + 65 + 300, T0 + 65 + 300, "a 5-minute session keeps 1%: 3 s, not 60"),
            (T0 + 67, T0 + 67 + 300, T0 + 65 + 300, "and within those 3 s the date stays"),
        ];
        for (n, (now, expires, kept, why)) in (3..).zip(steps) {
            clock.set(at(now));
            engine
                .save(&key, &data(json!({ "n": n })), at(expires))
                .await
                .unwrap();
            assert_eq!(stored(&key).await, kept, "{why}");
        }
        // No slack: every save writes the date Django would write.
        let exact = config_builder(&scratch.url, &clock, false)
            .expiry_slack(Duration::ZERO)
            .build()
            .unwrap();
        let exact = PostgresEngine::open(&exact).await.unwrap();
        clock.set(at(T0 + 68));
        exact
            .save(&key, &data(json!({"n": 9})), at(T0 + 68 + age))
            .await
            .unwrap();
        assert_eq!(stored(&key).await, T0 + 68 + age);
    }

    #[tokio::test]
    async fn the_applications_own_pool() {
        let Some(scratch) = PgScratch::create().await else {
            return;
        };
        let pool = match PgPoolOptions::new()
            .max_connections(3)
            .connect(&scratch.url)
            .await
        {
            Ok(pool) => pool,
            Err(e) => return skip::<()>("PostgreSQL", &postgres_url(), e).unwrap_or(()),
        };
        let clock = ManualClock::at_unix(T0);
        // The URL of the config is not used.
        let config = config("postgres://nobody@127.0.0.1:1/none", &clock, true);
        let engine = PostgresEngine::from_pool(pool.clone(), &config)
            .await
            .unwrap();
        let key = engine
            .create(&data(json!({"pool": "mine"})), at(T0 + DAY))
            .await
            .unwrap();
        let n: i64 = query_scalar("SELECT COUNT(*) FROM django_session")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(n, 1);
        assert_eq!(
            engine.load(&key).await.unwrap(),
            Some(data(json!({"pool": "mine"})))
        );
        assert!(format!("{engine:?}").contains("127.0.0.1"));
    }
}

// ---------------------------------------------------------------------------------------
// MySQL / MariaDB

#[cfg(feature = "mysql")]
mod mysql {
    use super::*;
    use common::MySqlScratch;
    use sessio::db::mysql::MySqlEngine;
    use sessio::db::sqlx_core::connection::Connection;
    use sessio::db::sqlx_core::executor::Executor;
    use sessio::db::sqlx_core::query::query;
    use sessio::db::sqlx_core::query_scalar::query_scalar;
    use sessio::db::sqlx_mysql::{MySqlConnection, MySqlPoolOptions};

    /// The test MySQL or MariaDB, each test in a database of its own.
    struct My;

    impl SqlServer for My {
        type Scratch = MySqlScratch;
        type Engine = MySqlEngine;
        type Conn = MySqlConnection;
        /// Django's DDL for `sessions.0001_initial` on MySQL (`sqlmigrate sessions 0001`).
        const DJANGO_DDL: &'static [&'static str] = &[
            "CREATE TABLE `django_session` (`session_key` varchar(40) NOT NULL PRIMARY KEY, `session_data` longtext NOT NULL, `expire_date` datetime(6) NOT NULL)",
            "CREATE INDEX `django_session_expire_date_a5c62663` ON `django_session` (`expire_date`)",
        ];
        const COLUMNS: &'static [&'static str] = &[
            "session_key varchar(40) NO PRI",
            "session_data longtext NO ",
            "expire_date datetime(6) NO MUL",
        ];
        const SCHEMES: (&'static str, &'static str) = ("mysql://", "mariadb://");
        const UNREACHABLE: (&'static str, &'static str) = (
            "mysql://root:hunter2@127.0.0.1:1/test",
            "mysql://root:***@127.0.0.1:1/test",
        );
        const FRACTION: &'static str = ".000000";

        async fn scratch() -> Option<MySqlScratch> {
            MySqlScratch::create().await
        }

        fn url(scratch: &MySqlScratch) -> &str {
            &scratch.url
        }

        // The engine's connections are the ones on the scratch database.
        fn tagged_url(scratch: &MySqlScratch) -> String {
            scratch.url.clone()
        }

        fn open(
            config: &Config,
        ) -> impl std::future::Future<Output = sessio::Result<MySqlEngine>> + Send {
            MySqlEngine::open(config)
        }

        async fn raw(scratch: &MySqlScratch) -> MySqlConnection {
            MySqlConnection::connect(&scratch.url).await.unwrap()
        }

        async fn execute(conn: &mut MySqlConnection, sql: &str) {
            conn.execute(sql).await.unwrap();
        }

        async fn end_connections(scratch: &MySqlScratch) -> usize {
            let mut admin = MySqlConnection::connect(&scratch.admin_url).await.unwrap();
            let ids: Vec<u64> = query_scalar(
                "SELECT CAST(id AS UNSIGNED) FROM information_schema.processlist WHERE db = ? AND id <> CONNECTION_ID()",
            )
            .bind(&scratch.database)
            .fetch_all(&mut admin)
            .await
            .unwrap();
            for id in &ids {
                let _ = admin.execute(format!("KILL {id}").as_str()).await;
            }
            ids.len()
        }

        async fn insert_row(conn: &mut MySqlConnection, key: &str, data: &str, expire_date: &str) {
            query(&format!(
                "INSERT INTO django_session VALUES (?, ?, '{expire_date}')"
            ))
            .bind(key)
            .bind(data)
            .execute(conn)
            .await
            .unwrap();
        }

        async fn stored_row(conn: &mut MySqlConnection, key: &str) -> String {
            query_scalar(
                "SELECT CAST(CONCAT(session_data, '|', expire_date) AS CHAR) \
                 FROM django_session WHERE session_key = ?",
            )
            .bind(key)
            .fetch_one(conn)
            .await
            .unwrap()
        }

        async fn columns(conn: &mut MySqlConnection, _: &MySqlScratch) -> Vec<String> {
            query_scalar(
                "SELECT CAST(CONCAT(column_name, ' ', column_type, ' ', is_nullable, ' ', column_key) AS CHAR) \
                 FROM information_schema.columns \
                 WHERE table_schema = DATABASE() AND table_name = 'django_session' ORDER BY ordinal_position",
            )
            .fetch_all(conn)
            .await
            .unwrap()
        }

        async fn indexes(conn: &mut MySqlConnection, _: &MySqlScratch) -> Vec<String> {
            let mut found: Vec<String> = query_scalar(
                "SELECT CAST(CONCAT(index_name, ' ', column_name, ' ', non_unique) AS CHAR) \
                 FROM information_schema.statistics \
                 WHERE table_schema = DATABASE() AND table_name = 'django_session' \
                 ORDER BY index_name, seq_in_index",
            )
            .fetch_all(conn)
            .await
            .unwrap();
            found.sort();
            found
        }

        fn django_indexes(_: &MySqlScratch) -> Vec<String> {
            let mut want = [
                "PRIMARY session_key 0",
                "django_session_expire_date_a5c62663 expire_date 1",
            ]
            .map(str::to_owned)
            .to_vec();
            want.sort();
            want
        }

        async fn migrations(conn: &mut MySqlConnection) -> Vec<String> {
            query_scalar(
                "SELECT CAST(CONCAT(version, ' ', name) AS CHAR) FROM sessio_migrations \
                 ORDER BY version",
            )
            .fetch_all(conn)
            .await
            .unwrap()
        }
    }

    sql_suite!(My);

    #[tokio::test]
    async fn expire_date_is_naive_utc() {
        let Some((scratch, _, engine)) = suite::migrated::<My>().await else {
            return;
        };
        let expires = time::macros::datetime!(2026-12-10 13:41:23.537181999 +01:00);
        let key = engine.create(&SessionData::new(), expires).await.unwrap();
        let mut conn = My::raw(&scratch).await;
        // A DATETIME does not follow the session time zone: it is stored as written.
        conn.execute("SET time_zone = '+09:00'").await.unwrap();
        let stored: String = query_scalar(
            "SELECT CAST(expire_date AS CHAR) FROM django_session WHERE session_key = ?",
        )
        .bind(&key)
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert_eq!(stored, "2026-12-10 12:41:23.537181");
    }

    #[tokio::test]
    async fn unchanged_save_is_not_an_interrupted_session() {
        let Some((scratch, clock, engine)) = suite::migrated::<My>().await else {
            return;
        };
        let d = data(json!({"same": "data"}));
        let key = engine.create(&d, at(T0 + DAY)).await.unwrap();
        let before: String =
            query_scalar("SELECT session_data FROM django_session WHERE session_key = ?")
                .bind(&key)
                .fetch_one(engine.pool())
                .await
                .unwrap();
        // Same data, same expiry, same clock second: the UPDATE changes no byte.
        for _ in 0..3 {
            assert_eq!(engine.save(&key, &d, at(T0 + DAY)).await.unwrap(), key);
        }
        let after: String =
            query_scalar("SELECT session_data FROM django_session WHERE session_key = ?")
                .bind(&key)
                .fetch_one(engine.pool())
                .await
                .unwrap();
        assert_eq!(before, after);
        // And with the application's own pool (sqlx always asks for CLIENT_FOUND_ROWS).
        let pool = MySqlPoolOptions::new()
            .max_connections(2)
            .connect(&scratch.url)
            .await
            .unwrap();
        let mine = MySqlEngine::from_pool(pool, &config("mysql://x@127.0.0.1:1/y", &clock, true))
            .await
            .unwrap();
        assert_eq!(mine.save(&key, &d, at(T0 + DAY)).await.unwrap(), key);
        engine.delete(&key).await.unwrap();
        assert!(matches!(
            mine.save(&key, &d, at(T0 + DAY)).await,
            Err(Error::SessionInterrupted)
        ));
    }
}

// ---------------------------------------------------------------------------------------
// Faults: a private PostgreSQL server that hangs, goes down and comes back under load

#[cfg(feature = "postgres")]
mod faults {
    use std::path::{Path, PathBuf};
    use std::process::{Command, Stdio};
    use std::time::Instant;

    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::routing::get;
    use axum::Router;
    use sessio::{Session, SessionManager};
    use tower::ServiceExt;

    use super::*;
    use common::{skip, STRONG_KEY};

    /// How long a store call may take in this test.
    const STORE_TIMEOUT: Duration = Duration::from_millis(800);
    /// Scheduling slack on a busy machine, on top of the store timeout.
    const MARGIN: Duration = Duration::from_millis(1500);
    /// How long the service may take to come back once the server is back.
    const RECOVERY: Duration = Duration::from_secs(20);

    /// A PostgreSQL server of this test's own, on a spare loopback port, in a temp dir.
    /// (The shared test server is never stopped: other tests use it.)
    struct PrivatePostgres {
        dir: tempfile::TempDir,
        bin: PathBuf,
        port: u16,
        paused: Vec<u32>,
    }

    fn run(what: &str, command: &mut Command) -> std::result::Result<(), String> {
        let out = command
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{what}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{what} failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    impl PrivatePostgres {
        /// Starts the server, or returns `None` (see [`skip`]) when the tools are missing.
        fn start() -> Option<Self> {
            const WHERE: &str = "/usr/lib/postgresql/*/bin";
            let Some(bin) = std::fs::read_dir("/usr/lib/postgresql")
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path().join("bin"))
                .filter(|bin| bin.join("initdb").exists() && bin.join("pg_ctl").exists())
                .max()
            else {
                return skip("PostgreSQL's initdb and pg_ctl", WHERE, "not installed");
            };
            // PostgreSQL refuses to run as root: run it as `postgres`.
            let root = Command::new("id")
                .arg("-u")
                .output()
                .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
            if !root || Command::new("runuser").arg("--help").output().is_err() {
                return skip(
                    "a private PostgreSQL server",
                    WHERE,
                    "this needs root and runuser to run it as the `postgres` user",
                );
            }
            let dir = tempfile::tempdir().expect("temp dir");
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a spare port")
                .port();
            let server = Self {
                dir,
                bin,
                port,
                paused: Vec::new(),
            };
            let prepared = run(
                "chown",
                Command::new("chown")
                    .arg("postgres:")
                    .arg(server.dir.path()),
            )
            .and_then(|()| {
                run(
                    "initdb",
                    server
                        .as_postgres("initdb")
                        .args([
                            "-U",
                            "postgres",
                            "--auth=trust",
                            "--no-sync",
                            "-E",
                            "UTF8",
                            "-D",
                        ])
                        .arg(server.data()),
                )
            })
            .and_then(|()| server.start_again());
            if let Err(e) = prepared {
                return skip("a private PostgreSQL server", WHERE, e);
            }
            Some(server)
        }

        fn data(&self) -> PathBuf {
            self.dir.path().join("data")
        }

        fn url(&self) -> String {
            format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
        }

        fn as_postgres(&self, tool: &str) -> Command {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(self.bin.join(tool));
            c
        }

        fn start_again(&self) -> std::result::Result<(), String> {
            let options = format!(
                "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c max_connections=40",
                self.port,
                self.dir.path().display()
            );
            run(
                "pg_ctl start",
                self.as_postgres("pg_ctl")
                    .args(["-w", "-t", "60", "-D"])
                    .arg(self.data())
                    .arg("-l")
                    .arg(self.dir.path().join("log"))
                    .args(["-o", &options, "start"]),
            )
        }

        fn stop(&self, mode: &str) -> std::result::Result<(), String> {
            run(
                "pg_ctl stop",
                self.as_postgres("pg_ctl")
                    .args(["-w", "-t", "60", "-m", mode, "-D"])
                    .arg(self.data())
                    .arg("stop"),
            )
        }

        /// Freezes the postmaster and every backend (SIGSTOP): connections stay open and
        /// nothing answers, like a hung server or a network black hole.
        fn pause(&mut self) {
            let pid_file = std::fs::read_to_string(self.data().join("postmaster.pid"))
                .expect("postmaster.pid");
            let postmaster: u32 = pid_file.lines().next().unwrap().trim().parse().unwrap();
            let mut pids = vec![postmaster];
            pids.extend(children_of(postmaster));
            for pid in &pids {
                let _ = run(
                    "kill -STOP",
                    Command::new("kill").args(["-STOP", &pid.to_string()]),
                );
            }
            self.paused = pids;
        }

        fn resume(&mut self) {
            for pid in self.paused.drain(..) {
                let _ = run(
                    "kill -CONT",
                    Command::new("kill").args(["-CONT", &pid.to_string()]),
                );
            }
        }
    }

    impl Drop for PrivatePostgres {
        fn drop(&mut self) {
            self.resume();
            let _ = self.stop("immediate");
        }
    }

    /// The processes whose parent is `parent` (from /proc).
    fn children_of(parent: u32) -> Vec<u32> {
        let mut pids = Vec::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(stat) =
                std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("stat"))
            else {
                continue;
            };
            // pid (comm) state ppid …; comm may contain spaces, so split after the last ')'.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if ppid == Some(parent) {
                pids.push(pid);
            }
        }
        pids
    }

    async fn set(session: Session) -> sessio::Result<&'static str> {
        session.insert("user_id", 42).await?;
        Ok("set")
    }

    async fn read(session: Session) -> sessio::Result<String> {
        Ok(format!("{:?}", session.get::<u32>("user_id").await?))
    }

    struct Reply {
        status: StatusCode,
        elapsed: Duration,
        cookie: Option<String>,
        body: String,
    }

    async fn call(app: &Router, path: &str, cookie: Option<&str>) -> Reply {
        let mut req = Request::builder().uri(path);
        if let Some(value) = cookie {
            req = req.header("cookie", format!("sessionid={value}"));
        }
        let started = Instant::now();
        let res = app
            .clone()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let elapsed = started.elapsed();
        let status = res.status();
        let cookie = res
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| v.strip_prefix("sessionid="))
            .and_then(|v| v.split(';').next())
            .filter(|v| !v.is_empty() && *v != "\"\"")
            .map(str::to_owned);
        let body = axum::body::to_bytes(res.into_body(), 4096).await.unwrap();
        Reply {
            status,
            elapsed,
            cookie,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    /// `n` concurrent requests, half creating sessions and half reading existing ones.
    async fn burst(app: &Router, cookies: &[String], n: usize) -> Vec<Reply> {
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                let app = app.clone();
                let cookie = (i % 2 == 1).then(|| cookies[i % cookies.len()].clone());
                tokio::spawn(async move {
                    let path = if cookie.is_some() { "/read" } else { "/set" };
                    call(&app, path, cookie.as_deref()).await
                })
            })
            .collect();
        let mut replies = Vec::new();
        for t in tasks {
            replies.push(t.await.unwrap());
        }
        replies
    }

    fn assert_all_ok(replies: &[Reply]) {
        for r in replies {
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            assert!(r.cookie.is_some() || r.body == "Some(42)", "{}", r.body);
        }
    }

    /// Every request fails with 503, and none waits longer than the store timeout allows.
    fn assert_all_unavailable(replies: &[Reply]) {
        for r in replies {
            assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
            assert!(
                r.elapsed <= STORE_TIMEOUT + MARGIN,
                "a request took {:?} with a store timeout of {STORE_TIMEOUT:?}",
                r.elapsed
            );
        }
    }

    /// Bursts until one succeeds entirely; fails after [`RECOVERY`].
    async fn recovers(app: &Router, cookies: &[String]) -> Duration {
        let started = Instant::now();
        loop {
            let replies = burst(app, cookies, 16).await;
            if replies.iter().all(|r| r.status == StatusCode::OK) {
                assert_all_ok(&replies);
                return started.elapsed();
            }
            assert!(
                started.elapsed() < RECOVERY,
                "the service did not come back within {RECOVERY:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn server_going_away_under_load_is_503_within_the_timeout_then_service_resumes() {
        let Some(mut pg) = tokio::task::spawn_blocking(PrivatePostgres::start)
            .await
            .unwrap()
        else {
            return;
        };
        let config = Config::builder()
            .secret_key(STRONG_KEY)
            .engine(EngineKind::Db)
            .database_url(pg.url())
            .auto_migrate(true)
            .store_timeout(STORE_TIMEOUT)
            .build()
            .unwrap();
        let sessions = SessionManager::open(config).await.unwrap();
        let app = Router::new()
            .route("/set", get(set))
            .route("/read", get(read))
            .layer(sessions.layer());

        // Healthy.
        let mut cookies = Vec::new();
        for _ in 0..8 {
            let r = call(&app, "/set", None).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            cookies.push(r.cookie.expect("a session cookie"));
        }
        assert_all_ok(&burst(&app, &cookies, 32).await);

        // Hung: connections open, nothing answers. Every request times out into a 503.
        pg.pause();
        let hung = burst(&app, &cookies, 32).await;
        pg.resume();
        assert_all_unavailable(&hung);
        let after_hang = recovers(&app, &cookies).await;

        // Down: connections refused. 503 again, within the timeout.
        tokio::task::spawn_blocking({
            let data = pg.data();
            let ctl = pg.as_postgres("pg_ctl");
            move || {
                let mut ctl = ctl;
                run(
                    "pg_ctl stop",
                    ctl.args(["-w", "-t", "60", "-m", "fast", "-D"])
                        .arg(data)
                        .arg("stop"),
                )
            }
        })
        .await
        .unwrap()
        .unwrap();
        let down = burst(&app, &cookies, 32).await;
        assert_all_unavailable(&down);

        // Back: the pool reconnects by itself; sessions from before are still there.
        tokio::task::block_in_place(|| pg.start_again()).unwrap();
        let after_restart = recovers(&app, &cookies).await;
        for cookie in &cookies {
            let r = call(&app, "/read", Some(cookie)).await;
            assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "Some(42)"));
        }
        // Restarted while idle: every pooled connection is stale, and no request notices
        // (a broken connection is replaced and the statement tried again).
        tokio::task::block_in_place(|| pg.stop("fast").and_then(|()| pg.start_again())).unwrap();
        let replies = burst(&app, &cookies, 32).await;
        assert_all_ok(&replies);
        eprintln!(
            "recovered {after_hang:?} after the hang, {after_restart:?} after the restart; \
             slowest 503: {:?}",
            hung.iter().chain(&down).map(|r| r.elapsed).max().unwrap()
        );
    }
}
