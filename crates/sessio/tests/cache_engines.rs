//! What is particular to the `cache` and `cached-db` engines, beyond the conformance suite:
//! bounds and TTLs of the in-process cache; key layout, TTLs, NX/XX and outages on Redis;
//! write-through, read-through and cache failures of `cached-db`.
//!
//! Redis tests use real servers: the shared one (`SESSIO_TEST_REDIS_URL`), and private
//! ones they start, kill and restart themselves.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use sessio::cache::{MemoryCacheEngine, MemoryStore};
use sessio::cached_db::{CachedDbEngine, FILL_TTL};
use sessio::clock::ManualClock;
use sessio::store::{AnyStore, Payload, Record, SessionStore, Update};
use sessio::Version;
use sessio::{json, Value};
use sessio::{Config, ConfigBuilder, EngineKind, Error, SessionData, SessionEngine};
use time::{Duration, OffsetDateTime};

use common::{STRONG_KEY, T};

fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(seconds).unwrap()
}

fn data(v: Value) -> SessionData {
    v.as_object().unwrap().clone()
}

fn builder(clock: &ManualClock) -> ConfigBuilder {
    Config::builder()
        .secret_key(STRONG_KEY)
        .auto_migrate(true)
        .clock(clock.clone())
}

// ---------------------------------------------------------------------------------------
// The in-process cache

async fn memory(url: &str, clock: &ManualClock) -> Arc<dyn SessionEngine> {
    let config = builder(clock)
        .engine(EngineKind::Cache)
        .cache_url(url)
        .build()
        .unwrap();
    // Chosen by configuration alone.
    sessio::open(&config).await.unwrap()
}

#[tokio::test]
async fn memory_bound_evicts_the_least_recently_used() {
    let clock = ManualClock::at_unix(T);
    let c = memory("memory://?max_entries=3", &clock).await;
    let far = at(T + 3600);
    let a = c.create(&data(json!({"a": 1})), far).await.unwrap();
    let b = c.create(&data(json!({"b": 1})), far).await.unwrap();
    let d = c.create(&data(json!({"d": 1})), far).await.unwrap();
    // Reading `a` makes `b` the least recently used.
    assert!(c.load(&a).await.unwrap().is_some());
    let e = c.create(&data(json!({"e": 1})), far).await.unwrap();
    assert!(!c.exists(&b).await.unwrap(), "the LRU session is evicted");
    for k in [&a, &d, &e] {
        assert!(c.exists(k).await.unwrap());
    }
    // A save of an evicted session is refused, like any deleted session.
    assert!(matches!(
        c.save(&b, &SessionData::new(), far).await,
        Err(Error::SessionInterrupted)
    ));
}

#[tokio::test]
async fn memory_ttl_follows_the_configured_clock() {
    let clock = ManualClock::at_unix(T);
    let c = memory("memory://", &clock).await;
    let short = c.create(&data(json!({"s": 1})), at(T + 10)).await.unwrap();
    let long = c
        .create(&data(json!({"l": 1})), at(T + 3600))
        .await
        .unwrap();
    assert_eq!(c.count_expired().await.unwrap(), Some(0));
    clock.advance(Duration::seconds(9));
    assert!(c.load(&short).await.unwrap().is_some());
    clock.advance(Duration::seconds(1));
    assert_eq!(c.count_expired().await.unwrap(), Some(1));
    assert_eq!(c.load(&short).await.unwrap(), None);
    assert!(!c.exists(&short).await.unwrap());
    // Gone by its TTL: a save does not bring it back.
    assert!(matches!(
        c.save(&short, &SessionData::new(), at(T + 3600)).await,
        Err(Error::SessionInterrupted)
    ));
    assert!(c.exists(&long).await.unwrap());

    // clear_expired drops what expired without being met.
    let third = c.create(&data(json!({"t": 1})), at(T + 20)).await.unwrap();
    clock.advance(Duration::seconds(20));
    assert_eq!(c.clear_expired_batch(100).await.unwrap(), 1);
    assert!(!c.exists(&third).await.unwrap());
    assert!(c.exists(&long).await.unwrap());
}

#[tokio::test]
async fn memory_full_cache_drops_expired_sessions_before_live_ones() {
    let clock = ManualClock::at_unix(T);
    let c = memory("memory://?max_entries=3", &clock).await;
    let short = c.create(&data(json!({"s": 1})), at(T + 5)).await.unwrap();
    let old = c
        .create(&data(json!({"o": 1})), at(T + 3600))
        .await
        .unwrap();
    let new = c
        .create(&data(json!({"n": 1})), at(T + 3600))
        .await
        .unwrap();
    // `short` is the most recently used; `old` the least.
    assert!(c.load(&short).await.unwrap().is_some());
    clock.advance(Duration::seconds(6));
    let fourth = c
        .create(&data(json!({"f": 1})), at(T + 3600))
        .await
        .unwrap();
    for k in [&old, &new, &fourth] {
        assert!(c.exists(k).await.unwrap(), "live sessions are kept");
    }
    assert!(!c.exists(&short).await.unwrap());
}

#[tokio::test]
async fn memory_sessions_saved_already_expired_are_not_kept() {
    let clock = ManualClock::at_unix(T);
    let c = memory("memory://", &clock).await;
    let k = c.create(&data(json!({"x": 1})), at(T)).await.unwrap();
    assert_eq!(k.len(), 32);
    assert!(!c.exists(&k).await.unwrap());
    let k = c.create(&data(json!({"x": 1})), at(T + 60)).await.unwrap();
    c.save(&k, &data(json!({"x": 2})), at(T - 1)).await.unwrap();
    assert!(!c.exists(&k).await.unwrap());
}

#[tokio::test]
async fn memory_urls_are_checked() {
    let clock = ManualClock::at_unix(T);
    for bad in [
        "memory://?max_entries=0",
        "memory://somewhere",
        "memory://?ttl=3",
    ] {
        let config = builder(&clock)
            .engine(EngineKind::Cache)
            .cache_url(bad)
            .build()
            .unwrap();
        let err = sessio::open(&config).await.unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{bad}: {err}");
        assert!(err.to_string().contains("max_entries"), "{err}");
    }
}

// ---------------------------------------------------------------------------------------
// cached-db over the in-process cache

async fn cached_db_memory(clock: &ManualClock) -> (CachedDbEngine, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = builder(clock)
        .engine(EngineKind::CachedDb)
        .database_url(format!(
            "sqlite://{}",
            dir.path().join("s.sqlite3").display()
        ))
        .cache_url("memory://")
        .build()
        .unwrap();
    (CachedDbEngine::open(&config).await.unwrap(), dir)
}

#[tokio::test]
async fn cached_db_writes_through_and_reads_fill_the_cache() {
    let clock = ManualClock::at_unix(T);
    let (e, _dir) = cached_db_memory(&clock).await;
    let d = data(json!({"user_id": 42}));
    let k = e.create(&d, at(T + 3600)).await.unwrap();
    assert_eq!(e.db().load(&k).await.unwrap(), Some(d.clone()));
    assert_eq!(e.cache().load(&k).await.unwrap(), Some(d.clone()));
    // Lost from the cache (evicted, restarted): read from the database, and cached again.
    e.cache().delete(&k).await.unwrap();
    assert_eq!(e.load(&k).await.unwrap(), Some(d.clone()));
    assert_eq!(e.cache().load(&k).await.unwrap(), Some(d));
}

#[tokio::test]
async fn cached_db_save_of_a_deleted_row_is_interrupted_and_drops_the_copy() {
    let clock = ManualClock::at_unix(T);
    let (e, _dir) = cached_db_memory(&clock).await;
    let k = e
        .create(&data(json!({"a": 1})), at(T + 3600))
        .await
        .unwrap();
    // Deleted from the record only (say, by another process with its own cache).
    e.db().delete(&k).await.unwrap();
    assert!(matches!(
        e.save(&k, &data(json!({"a": 2})), at(T + 3600)).await,
        Err(Error::SessionInterrupted)
    ));
    assert!(!e.cache().exists(&k).await.unwrap());
    assert_eq!(e.load(&k).await.unwrap(), None);
}

#[tokio::test]
async fn cached_db_save_replaces_a_copy_but_never_adds_one() {
    let clock = ManualClock::at_unix(T);
    let (e, _dir) = cached_db_memory(&clock).await;
    let k = e
        .create(&data(json!({"v": 1})), at(T + 3600))
        .await
        .unwrap();
    e.save(&k, &data(json!({"v": 2})), at(T + 3600))
        .await
        .unwrap();
    assert_eq!(
        e.cache().load(&k).await.unwrap(),
        Some(data(json!({"v": 2})))
    );
    // A concurrent logout removed the copy between our database and cache writes: it
    // stays removed.
    e.cache().delete(&k).await.unwrap();
    e.save(&k, &data(json!({"v": 3})), at(T + 3600))
        .await
        .unwrap();
    assert!(!e.cache().exists(&k).await.unwrap());
    assert_eq!(e.load(&k).await.unwrap(), Some(data(json!({"v": 3}))));
}

#[tokio::test]
async fn cached_db_fill_never_overwrites_a_newer_copy() {
    let clock = ManualClock::at_unix(T);
    let (e, _dir) = cached_db_memory(&clock).await;
    let k = e
        .create(&data(json!({"v": 1})), at(T + 3600))
        .await
        .unwrap();
    let stale = data(json!({"v": 0}));
    assert!(!e.cache().insert(&k, &stale, at(T + 3600)).await.unwrap());
    assert_eq!(e.load(&k).await.unwrap(), Some(data(json!({"v": 1}))));
}

#[tokio::test]
async fn cached_db_fills_live_at_most_fill_ttl_unless_the_expiry_is_fixed() {
    let clock = ManualClock::at_unix(T);
    let (e, _dir) = cached_db_memory(&clock).await;
    let sliding = e
        .db()
        .create(&data(json!({"a": 1})), at(T + 1_209_600))
        .await
        .unwrap();
    let fixed_data = data(json!({"_session_expiry": "2023-11-14T23:13:20+00:00"}));
    let fixed = e.db().create(&fixed_data, at(T + 3600)).await.unwrap();
    assert!(e.load(&sliding).await.unwrap().is_some());
    assert!(e.load(&fixed).await.unwrap().is_some());
    assert!(e.cache().exists(&sliding).await.unwrap());
    clock.advance(FILL_TTL);
    // The database does not tell a row's expiry: a filled copy is not trusted for long.
    assert!(!e.cache().exists(&sliding).await.unwrap());
    assert!(e.cache().exists(&fixed).await.unwrap());
    assert!(e.load(&sliding).await.unwrap().is_some());
    assert!(e.cache().exists(&sliding).await.unwrap());
}

/// A database store that counts the calls that reach it.
#[derive(Debug)]
struct Counting {
    inner: AnyStore,
    calls: Arc<AtomicUsize>,
}

impl Counting {
    fn hit(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

impl SessionStore for Counting {
    fn name(&self) -> &'static str {
        "counting"
    }
    async fn load(&self, id: &str) -> sessio::Result<Option<Record>> {
        self.hit();
        self.inner.load(id).await
    }
    async fn insert(
        &self,
        id: &str,
        record: &Payload<'_>,
        expires: OffsetDateTime,
    ) -> sessio::Result<bool> {
        self.hit();
        self.inner.insert(id, record, expires).await
    }
    async fn update(
        &self,
        id: &str,
        record: &Payload<'_>,
        expires: OffsetDateTime,
        expected: Option<&Version>,
    ) -> sessio::Result<Update> {
        self.hit();
        self.inner.update(id, record, expires, expected).await
    }
    async fn delete(&self, id: &str) -> sessio::Result<()> {
        self.hit();
        self.inner.delete(id).await
    }
    async fn clear_expired(&self, limit: usize) -> sessio::Result<u64> {
        self.hit();
        self.inner.clear_expired(limit).await
    }
}

#[tokio::test]
async fn cached_db_reads_and_exists_search_the_cache_first() {
    // Django's test_exists_searches_cache_first: no database query.
    let clock = ManualClock::at_unix(T);
    let (plain, _dir) = cached_db_memory(&clock).await;
    let counting = Counting {
        inner: plain.store().db().clone(),
        calls: Arc::new(AtomicUsize::new(0)),
    };
    let calls = counting.calls.clone();
    let config = builder(&clock).build().unwrap();
    let cache = AnyStore::new(MemoryStore::open(&config).unwrap().with_text_versions());
    let e = CachedDbEngine::from_stores(AnyStore::new(counting), cache, &config);
    let k = e
        .create(&data(json!({"a": 1})), at(T + 3600))
        .await
        .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(e.exists(&k).await.unwrap());
    assert!(e.load(&k).await.unwrap().is_some());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // An overlong key is no key (Django's test_load_overlong_key), wherever it is asked.
    let long = "a".repeat(1240);
    assert_eq!(e.load(&long).await.unwrap(), None);
}

#[tokio::test]
async fn cached_db_maintenance_is_the_databases() {
    let clock = ManualClock::at_unix(T);
    let (e, _dir) = cached_db_memory(&clock).await;
    e.create(&data(json!({"a": 1})), at(T + 10)).await.unwrap();
    clock.advance(Duration::seconds(11));
    assert_eq!(e.count_expired().await.unwrap(), Some(1));
    assert_eq!(e.clear_expired_batch(10).await.unwrap(), 1);
    e.migrate().await.unwrap();
}

/// 64 requests add a key each to one session at once, through a `cached-db` whose record
/// merges atomically: every key survives, in the record and in the copy (if one is left).
async fn concurrent_merges(db: AnyStore, cache: AnyStore) {
    let clock = ManualClock::at_unix(T);
    let config = builder(&clock).build().unwrap();
    let engine = Arc::new(CachedDbEngine::from_stores(db, cache, &config));
    let sessions = sessio::SessionManager::new(config, engine.clone());
    let s = sessions.session(None);
    s.insert("start", true).await.unwrap();
    s.save().await.unwrap();
    let key = s.id().unwrap();
    let mut tasks = Vec::new();
    for i in 0..64u32 {
        let (sessions, key) = (sessions.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            let s = sessions.session(Some(key));
            s.insert(&format!("k{i}"), i).await.unwrap();
            s.save().await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let record = engine.db().load(&key).await.unwrap().unwrap();
    assert_eq!(record.len(), 65, "{:?}", record.keys());
    if let Some(copy) = engine.cache().load(&key).await.unwrap() {
        assert_eq!(copy, record, "a copy left in the cache is the record");
    }
    assert_eq!(engine.load(&key).await.unwrap(), Some(record));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cached_db_concurrent_merges_keep_every_change() {
    let clock = ManualClock::at_unix(T);
    let config = builder(&clock).build().unwrap();
    for _ in 0..5 {
        // The in-process cache stands in for a database that merges atomically.
        let db = AnyStore::new(MemoryStore::open(&config).unwrap().with_text_versions());
        let cache = AnyStore::new(MemoryStore::open(&config).unwrap().with_text_versions());
        concurrent_merges(db, cache).await;
    }
}

// ---------------------------------------------------------------------------------------
// Memory use (`cargo test --release -p sessio --test cache_engines memory_bytes_per_session -- --ignored --nocapture`);
// operations per second: `cargo run --release -p sessio-bench --example store_throughput -- memory`

/// The resident memory of this process, in bytes.
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// Resident memory per stored session, by session size. Each size fills an engine of its
/// own, and nothing is freed in between, so the allocator cannot hand freed memory back.
#[tokio::test]
#[ignore = "a measurement, not a check"]
async fn memory_bytes_per_session() {
    const N: usize = 200_000;
    let config = Config::builder()
        .secret_key(STRONG_KEY)
        .cache_url(format!("memory://?max_entries={N}"))
        .build()
        .unwrap();
    let expires = OffsetDateTime::now_utc() + Duration::days(14);
    let mut keep = Vec::new();
    for (label, d) in [
        ("empty session", json!({})),
        (
            "3 keys (user_id, name, cart)",
            json!({"user_id": 42, "name": "Ada Lovelace", "cart": [1, 2, 3]}),
        ),
        (
            "Django login (3 _auth keys) + cart",
            json!({
                "_auth_user_id": "42",
                "_auth_user_backend": "django.contrib.auth.backends.ModelBackend",
                "_auth_user_hash": "e1f6b2f2d0a7c3b9e0f4d5c6b7a8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6",
                "cart": [1, 2, 3]
            }),
        ),
    ] {
        let engine = MemoryCacheEngine::open(&config).unwrap();
        let d = data(d);
        let json_len = serde_json::to_string(&d).unwrap().len();
        let before = rss();
        for _ in 0..N {
            engine.create(&d, expires).await.unwrap();
        }
        let grown = rss().saturating_sub(before);
        println!(
            "memory engine, {label} ({json_len} bytes of JSON): ~{} bytes per session \
             ({N} sessions, RSS +{} MiB)",
            grown / N,
            grown >> 20
        );
        keep.push(engine);
    }
}

// ---------------------------------------------------------------------------------------
// Redis

#[cfg(feature = "redis")]
mod redis_tests {
    use std::time::Instant;

    use super::*;
    use common::redis_servers::{self, KeyCleanup, PrivateRedis};
    use sessio::cache::{RedisCacheEngine, RedisStore};

    /// A Redis engine on the shared server with a prefix of its own; `None` skips.
    async fn shared(clock: &ManualClock) -> Option<(RedisCacheEngine, Config, KeyCleanup)> {
        let url = redis_servers::redis_url();
        if let Err(e) = redis_servers::ping(&url) {
            return common::skip("Redis", &url, e);
        }
        let (b, cleanup) = common::redis_builder(builder(clock), &url, vec![url.clone()]);
        let config = b.engine(EngineKind::Cache).build().unwrap();
        let engine = RedisCacheEngine::open(&config).await.unwrap();
        Some((engine, config, cleanup))
    }

    fn raw(url: &str) -> redis::Connection {
        redis_servers::connect(url).unwrap()
    }

    #[tokio::test]
    async fn key_prefix_is_always_applied() {
        let clock = ManualClock::at_unix(T);
        let Some((e, config, cleanup)) = shared(&clock).await else {
            return;
        };
        let d = data(json!({"user_id": 42, "cart": [1, 2]}));
        let k = e.create(&d, at(T + 3600)).await.unwrap();
        let mut conn = raw(config.cache_url());
        let exists = |conn: &mut redis::Connection, key: &str| -> bool {
            redis::cmd("EXISTS").arg(key).query(conn).unwrap()
        };
        assert!(
            !exists(&mut conn, &k),
            "never the bare session key (CVE-2011-4136)"
        );
        assert!(exists(&mut conn, &format!("{}{k}", cleanup.prefix)));
        assert_eq!(e.redis_key(&k), format!("{}{k}", cleanup.prefix));
        // The only key holding the session key is the prefixed one.
        let mut found: Vec<String> = Vec::new();
        let mut cursor = 0u64;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("*{k}*"))
                .arg("COUNT")
                .arg(1000)
                .query(&mut conn)
                .unwrap();
            found.extend(batch);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        assert_eq!(found, vec![format!("{}{k}", cleanup.prefix)]);
        // The value is a db session_data: signed with the store salt, not bare JSON.
        let value: String = redis::cmd("GET")
            .arg(e.redis_key(&k))
            .query(&mut conn)
            .unwrap();
        let signer =
            sessio::signing::Signer::new(config.secret_key().as_bytes(), &[], config.store_salt());
        assert_eq!(signer.loads(&value, None).unwrap().data, d);
        assert!(!value.contains("user_id"));
    }

    #[tokio::test]
    async fn ttl_is_the_expiry_age() {
        let clock = ManualClock::at_unix(T);
        let Some((e, config, _cleanup)) = shared(&clock).await else {
            return;
        };
        let mut conn = raw(config.cache_url());
        let ttl = |conn: &mut redis::Connection, key: &str| -> i64 {
            redis::cmd("TTL").arg(key).query(conn).unwrap()
        };
        let k = e
            .create(&data(json!({"a": 1})), at(T + 3600))
            .await
            .unwrap();
        assert!((3599..=3600).contains(&ttl(&mut conn, &e.redis_key(&k))));
        e.save(&k, &data(json!({"a": 2})), at(T + 1_209_600))
            .await
            .unwrap();
        assert!((1_209_599..=1_209_600).contains(&ttl(&mut conn, &e.redis_key(&k))));
        // Through a session: the expiry the handler sets is the TTL.
        let sessions = sessio::SessionManager::new(config.clone(), Arc::new(e));
        let s = sessions.session(None);
        s.insert("x", 1).await.unwrap();
        s.set_expiry(sessio::Expiry::OnInactivity(Duration::seconds(600)))
            .await
            .unwrap();
        s.save().await.unwrap();
        let key = format!("{}{}", config.cache_key_prefix(), s.id().unwrap());
        assert!((599..=600).contains(&ttl(&mut conn, &key)));
    }

    #[tokio::test]
    async fn writes_never_overwrite_another_session() {
        let clock = ManualClock::at_unix(T);
        let Some((e, _config, _cleanup)) = shared(&clock).await else {
            return;
        };
        let k = e
            .create(&data(json!({"first": 1})), at(T + 3600))
            .await
            .unwrap();
        assert!(!e
            .insert(&k, &data(json!({"second": 1})), at(T + 3600))
            .await
            .unwrap());
        assert_eq!(e.load(&k).await.unwrap(), Some(data(json!({"first": 1}))));
        // Many concurrent creates: every key distinct, every session its own.
        let e = Arc::new(e);
        let mut tasks = Vec::new();
        for i in 0..100 {
            let e = e.clone();
            tasks.push(tokio::spawn(async move {
                let k = e
                    .create(&data(json!({"i": i})), at(T + 3600))
                    .await
                    .unwrap();
                (i, k)
            }));
        }
        let mut keys = std::collections::HashSet::new();
        for t in tasks {
            let (i, k) = t.await.unwrap();
            assert_eq!(e.load(&k).await.unwrap(), Some(data(json!({"i": i}))));
            keys.insert(k);
        }
        assert_eq!(keys.len(), 100);
    }

    #[tokio::test]
    async fn save_after_delete_or_expiry_is_interrupted_and_leaves_no_key() {
        let clock = ManualClock::at_unix(T);
        let Some((e, config, _cleanup)) = shared(&clock).await else {
            return;
        };
        let mut conn = raw(config.cache_url());
        let k = e
            .create(&data(json!({"a": 1})), at(T + 3600))
            .await
            .unwrap();
        e.delete(&k).await.unwrap();
        assert!(matches!(
            e.save(&k, &data(json!({"a": 2})), at(T + 3600)).await,
            Err(Error::SessionInterrupted)
        ));
        let exists: bool = redis::cmd("EXISTS")
            .arg(e.redis_key(&k))
            .query(&mut conn)
            .unwrap();
        assert!(!exists, "a deleted session is never resurrected");
        // Expired by Redis's TTL: the same.
        let k = e
            .create(&data(json!({"a": 1})), at(T + 3600))
            .await
            .unwrap();
        let _: i64 = redis::cmd("PEXPIRE")
            .arg(e.redis_key(&k))
            .arg(1)
            .query(&mut conn)
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(matches!(
            e.save(&k, &data(json!({"a": 2})), at(T + 3600)).await,
            Err(Error::SessionInterrupted)
        ));
        assert!(!e.exists(&k).await.unwrap());
    }

    #[tokio::test]
    async fn values_are_not_compressed_but_compressed_ones_load() {
        let clock = ManualClock::at_unix(T);
        let Some((e, config, _cleanup)) = shared(&clock).await else {
            return;
        };
        // Repetitive enough that zlib would shrink it.
        let d = data(json!({"cart": vec!["the same item"; 50]}));
        let k = e.create(&d, at(T + 3600)).await.unwrap();
        let mut conn = raw(config.cache_url());
        let value: String = redis::cmd("GET")
            .arg(e.redis_key(&k))
            .query(&mut conn)
            .unwrap();
        assert!(!value.starts_with('.'), "not compressed: {value}");
        // A value compressed as earlier versions (and Django's db) write it still loads.
        let signer =
            sessio::signing::Signer::new(config.secret_key().as_bytes(), &[], config.store_salt());
        let compressed = signer.dumps(&d, T, true);
        assert!(compressed.starts_with('.'));
        let _: () = redis::cmd("SET")
            .arg(e.redis_key(&k))
            .arg(&compressed)
            .query(&mut conn)
            .unwrap();
        assert_eq!(e.load(&k).await.unwrap(), Some(d));
    }

    #[tokio::test]
    async fn corrupted_values_load_as_empty_sessions() {
        let clock = ManualClock::at_unix(T);
        let Some((e, config, _cleanup)) = shared(&clock).await else {
            return;
        };
        let mut conn = raw(config.cache_url());
        let k = sessio::key::new_session_key().unwrap();
        let _: () = redis::cmd("SET")
            .arg(e.redis_key(&k))
            .arg("{\"user_id\": 1}")
            .query(&mut conn)
            .unwrap();
        assert_eq!(e.load(&k).await.unwrap(), Some(SessionData::new()));
        // Garbage keys are not even looked up.
        assert_eq!(e.load("../../etc/passwd").await.unwrap(), None);
        assert_eq!(e.load(&"a".repeat(1240)).await.unwrap(), None);
    }

    fn unused_port() -> u16 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    }

    #[tokio::test]
    async fn server_down_at_open_names_the_url_without_the_password() {
        let clock = ManualClock::at_unix(T);
        let port = unused_port();
        for (engine, url) in [
            (
                EngineKind::Cache,
                format!("redis://:hunter2@127.0.0.1:{port}/0"),
            ),
            (
                EngineKind::CachedDb,
                format!("redis://user:hunter2@127.0.0.1:{port}"),
            ),
            (
                EngineKind::Cache,
                format!("redis+cluster://:hunter2@127.0.0.1:{port}"),
            ),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let config = builder(&clock)
                .engine(engine)
                .database_url(format!(
                    "sqlite://{}",
                    dir.path().join("s.sqlite3").display()
                ))
                .cache_url(&url)
                .store_timeout(std::time::Duration::from_secs(1))
                .build()
                .unwrap();
            let start = Instant::now();
            let err = sessio::SessionManager::open(config).await.unwrap_err();
            let msg = err.to_string();
            assert!(start.elapsed() < std::time::Duration::from_secs(3), "{msg}");
            assert!(matches!(err, Error::Store { .. }), "{msg}");
            assert!(!msg.contains("hunter2"), "{msg}");
            assert!(msg.contains(&format!(":***@127.0.0.1:{port}")), "{msg}");
        }
    }

    /// A private server for a test that kills it; `None` skips.
    fn private() -> Option<PrivateRedis> {
        match PrivateRedis::start() {
            Ok(server) => Some(server),
            Err(e) => common::skip("a private redis-server", "a spare loopback port", e),
        }
    }

    mod fault {
        use super::*;
        use axum::body::Body;
        use axum::http::{Request, StatusCode};
        use axum::routing::get;
        use axum::Router;
        use sessio::{Session, SessionManager};
        use tower::ServiceExt;

        const TIMEOUT: std::time::Duration = std::time::Duration::from_millis(500);
        /// What a request may take beyond the store timeout (scheduling, reconnect backoff).
        const MARGIN: std::time::Duration = std::time::Duration::from_millis(1500);

        async fn set(session: Session) -> sessio::Result<&'static str> {
            session.insert("user_id", 42).await?;
            Ok("set")
        }

        async fn read(session: Session) -> sessio::Result<String> {
            Ok(format!("{:?}", session.get::<u32>("user_id").await?))
        }

        fn app(sessions: &SessionManager) -> Router {
            Router::new()
                .route("/set", get(set))
                .route("/read", get(read))
                .layer(sessions.layer())
        }

        struct Reply {
            status: StatusCode,
            cookie: Option<String>,
            body: String,
        }

        /// One request, which must end within the store timeout and the margin.
        async fn call(app: &Router, path: &str, cookie: Option<&str>) -> Reply {
            let mut req = Request::builder().uri(path);
            if let Some(c) = cookie {
                req = req.header("cookie", format!("sessionid={c}"));
            }
            let start = Instant::now();
            let res = tokio::time::timeout(
                TIMEOUT + MARGIN,
                app.clone().oneshot(req.body(Body::empty()).unwrap()),
            )
            .await
            .unwrap_or_else(|_| panic!("{path} hung for more than {:?}", TIMEOUT + MARGIN))
            .unwrap();
            assert!(start.elapsed() <= TIMEOUT + MARGIN);
            let status = res.status();
            let cookie = res
                .headers()
                .get("set-cookie")
                .map(|v| v.to_str().unwrap().to_owned())
                .and_then(|v| {
                    v.strip_prefix("sessionid=")
                        .and_then(|rest| rest.split(';').next())
                        .map(str::to_owned)
                });
            let body = axum::body::to_bytes(res.into_body(), 4096).await.unwrap();
            Reply {
                status,
                cookie,
                body: String::from_utf8_lossy(&body).into_owned(),
            }
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn outage_is_503_then_service_resumes_by_itself() {
            let Some(mut server) = private() else {
                return;
            };
            let config = Config::builder()
                .secret_key(STRONG_KEY)
                .engine(EngineKind::Cache)
                .cache_url(server.url())
                .store_timeout(TIMEOUT)
                .build()
                .unwrap();
            let sessions = SessionManager::open(config).await.unwrap();
            let app = app(&sessions);
            let r = call(&app, "/set", None).await;
            assert_eq!(r.status, 200);
            let key = r.cookie.expect("a session cookie");
            assert_eq!(call(&app, "/read", Some(&key)).await.body, "Some(42)");

            server.kill();
            for _ in 0..5 {
                let r = call(&app, "/read", Some(&key)).await;
                assert_eq!(r.status, 503, "{}", r.body);
                let r = call(&app, "/set", None).await;
                assert_eq!(r.status, 503, "{}", r.body);
                assert!(
                    r.cookie.is_none(),
                    "no cookie for a session that was not stored"
                );
            }

            server.restart().unwrap();
            let start = Instant::now();
            let key = loop {
                let r = call(&app, "/set", None).await;
                if r.status == 200 {
                    break r.cookie.unwrap();
                }
                assert!(
                    start.elapsed() < std::time::Duration::from_secs(10),
                    "service did not resume: {} {}",
                    r.status,
                    r.body
                );
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            };
            assert_eq!(call(&app, "/read", Some(&key)).await.body, "Some(42)");

            // A server that hangs rather than dies: the store timeout answers.
            server.pause();
            for _ in 0..3 {
                let r = call(&app, "/read", Some(&key)).await;
                assert_eq!(r.status, 503, "{}", r.body);
            }
            server.resume();
            let start = Instant::now();
            while call(&app, "/read", Some(&key)).await.body != "Some(42)" {
                assert!(
                    start.elapsed() < std::time::Duration::from_secs(10),
                    "service did not resume after the pause"
                );
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn cached_db_keeps_serving_from_the_database_when_the_cache_dies() {
            let Some(mut server) = private() else {
                return;
            };
            let dir = tempfile::tempdir().unwrap();
            let clock = ManualClock::at_unix(T);
            let config = builder(&clock)
                .engine(EngineKind::CachedDb)
                .database_url(format!(
                    "sqlite://{}",
                    dir.path().join("s.sqlite3").display()
                ))
                .cache_url(server.url())
                .store_timeout(TIMEOUT)
                .build()
                .unwrap();
            let engine = Arc::new(CachedDbEngine::open(&config).await.unwrap());
            let k = engine
                .create(&data(json!({"v": 1})), at(T + 3600))
                .await
                .unwrap();
            assert!(engine.cache().exists(&k).await.unwrap());

            server.kill();
            let start = Instant::now();
            engine
                .save(&k, &data(json!({"v": 2})), at(T + 3600))
                .await
                .expect("a dead cache does not fail a save");
            assert_eq!(engine.load(&k).await.unwrap(), Some(data(json!({"v": 2}))));
            let k2 = engine
                .create(&data(json!({"v": 3})), at(T + 3600))
                .await
                .expect("a dead cache does not fail a create");
            assert_eq!(engine.load(&k2).await.unwrap(), Some(data(json!({"v": 3}))));
            assert!(engine.exists(&k2).await.unwrap());
            assert!(start.elapsed() < 8 * (TIMEOUT + MARGIN));

            // Through the middleware as well.
            let sessions = SessionManager::new(config, engine.clone());
            let app = app(&sessions);
            let r = call(&app, "/set", None).await;
            assert_eq!(r.status, 200, "{}", r.body);
            let cookie = r.cookie.unwrap();
            assert_eq!(call(&app, "/read", Some(&cookie)).await.body, "Some(42)");

            // A logout must not leave a copy it could not delete: reported, not hidden.
            assert!(matches!(engine.delete(&k).await, Err(Error::Store { .. })));
            assert!(!engine.db().exists(&k).await.unwrap());

            // The cache comes back (empty): reads fill it again.
            server.restart().unwrap();
            let start = Instant::now();
            while !engine.cache().exists(&k2).await.unwrap_or(false) {
                assert_eq!(engine.load(&k2).await.unwrap(), Some(data(json!({"v": 3}))));
                assert!(start.elapsed() < std::time::Duration::from_secs(10));
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }

    #[tokio::test]
    async fn cluster_spreads_sessions_over_every_node() {
        let cluster = match tokio::task::spawn_blocking(redis_servers::cluster)
            .await
            .unwrap()
        {
            Ok(c) => c,
            Err(e) => {
                common::skip::<()>("Redis Cluster", "spare loopback ports", e);
                return;
            }
        };
        let clock = ManualClock::at_unix(T);
        let (b, cleanup) =
            common::redis_builder(builder(&clock), &cluster.url(), cluster.node_urls());
        let config = b.engine(EngineKind::Cache).build().unwrap();
        let e = RedisCacheEngine::open(&config).await.unwrap();
        let mut keys = Vec::new();
        for i in 0..60 {
            keys.push(
                e.create(&data(json!({"i": i})), at(T + 3600))
                    .await
                    .unwrap(),
            );
        }
        for node in cluster.node_urls() {
            assert!(
                !redis_servers::keys(&node, &cleanup.prefix).is_empty(),
                "node {node} holds none of 60 sessions"
            );
        }
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(e.load(k).await.unwrap(), Some(data(json!({"i": i}))));
            e.delete(k).await.unwrap();
        }
        for node in cluster.node_urls() {
            assert!(redis_servers::keys(&node, &cleanup.prefix).is_empty());
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn cached_db_concurrent_merges_keep_every_change_on_redis() {
        let clock = ManualClock::at_unix(T);
        for _ in 0..3 {
            let Some((_engine, config, _cleanup)) = shared(&clock).await else {
                return;
            };
            let cache = AnyStore::new(RedisStore::open(&config).await.unwrap());
            let db =
                AnyStore::new(MemoryStore::new(1000, config.clock().clone()).with_text_versions());
            concurrent_merges(db, cache).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_merges_on_redis_keep_every_change() {
        let clock = ManualClock::at_unix(T);
        let Some((e, _config, _cleanup)) = shared(&clock).await else {
            return;
        };
        let e = Arc::new(e);
        let k = e
            .create(&data(json!({"start": true})), at(T + 3600))
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for i in 0..64 {
            let (e, k) = (e.clone(), k.clone());
            tasks.push(tokio::spawn(async move {
                let changes = sessio::engine::Changes {
                    cleared: false,
                    entries: vec![(format!("k{i}"), Some(json!(i)))],
                };
                e.save_changes(&k, &changes, at(T + 3600)).await.unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(e.load(&k).await.unwrap().unwrap().len(), 65);
        // A merge of a deleted session is refused, and leaves nothing.
        e.delete(&k).await.unwrap();
        let changes = sessio::engine::Changes {
            cleared: false,
            entries: vec![("late".into(), Some(json!(1)))],
        };
        assert!(matches!(
            e.save_changes(&k, &changes, at(T + 3600)).await,
            Err(Error::SessionInterrupted)
        ));
        assert!(!e.exists(&k).await.unwrap());
    }
}
