//! The `cache` engine: a record per session in a cache, expiring by TTL (Django's `cache`
//! backend).
//!
//! The cache is named by `config.cache_url()`:
//!
//! | URL | cache |
//! |---|---|
//! | `memory://`, `memory`, `memory://?max_entries=N` | [`MemoryCacheEngine`], in this process |
//! | `redis://[:password@]host[:port][/db]` | `RedisCacheEngine` on one Redis server (feature `redis`) |
//! | `redis+cluster://host1:port1,host2:port2,...` (or `redis-cluster://`) | `RedisCacheEngine` on a Redis Cluster (feature `redis`) |
//!
//! A cache forgets: a session evicted for room, or lost with a restarted server, is simply
//! gone (the visitor starts a new one). For sessions that must survive, use the `cached-db`
//! engine, which keeps the database as the record and the cache as a read-through copy.

use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::config::Config;
use crate::engine::{SessionData, SessionEngine};
use crate::error::{Error, Result};

pub mod memory;
#[cfg(feature = "redis")]
pub mod redis;

pub use memory::MemoryCacheEngine;
#[cfg(feature = "redis")]
pub use redis::RedisCacheEngine;

/// The engine name of every cache, in errors and logs.
pub(crate) const ENGINE: &str = "cache";

/// What a cache engine offers beyond [`SessionEngine`]: storing a session under a key that
/// someone else (the database of the `cached-db` engine) has issued.
///
/// With [`SessionEngine::save`] (which only replaces a session that is still there), this is
/// all that `cached-db` needs from a cache.
#[async_trait]
pub trait SessionCache: SessionEngine {
    /// Stores `data` under `key` until `expires`, unless a live session is already stored
    /// under `key`; returns whether it stored it. A session that has already expired is not
    /// stored.
    ///
    /// Never overwriting is what makes a read-through fill safe: a fill carrying data read
    /// from the database cannot replace the newer data a concurrent save has just written.
    async fn add(&self, key: &str, data: &SessionData, expires: OffsetDateTime) -> Result<bool>;
}

/// The accepted cache URLs, for error messages.
const ACCEPTED: &str = "use memory://[?max_entries=N], redis://[:password@]host[:port][/db] \
     or redis+cluster://host1:port1,host2:port2,...";

/// Opens the cache that `config.cache_url()` names, as a session engine.
pub async fn open(config: &Config) -> Result<Arc<dyn SessionEngine>> {
    // No trait upcasting on the MSRV: each concrete engine is boxed twice over.
    Ok(match Opened::open(config).await? {
        Opened::Memory(engine) => engine,
        #[cfg(feature = "redis")]
        Opened::Redis(engine) => engine,
    })
}

/// Opens the cache that `config.cache_url()` names, as a cache (for `cached-db`).
pub async fn open_cache(config: &Config) -> Result<Arc<dyn SessionCache>> {
    Ok(match Opened::open(config).await? {
        Opened::Memory(engine) => engine,
        #[cfg(feature = "redis")]
        Opened::Redis(engine) => engine,
    })
}

enum Opened {
    Memory(Arc<MemoryCacheEngine>),
    #[cfg(feature = "redis")]
    Redis(Arc<RedisCacheEngine>),
}

impl Opened {
    async fn open(config: &Config) -> Result<Self> {
        let url = config.cache_url();
        match Scheme::of(url) {
            Some(Scheme::Memory) => Ok(Opened::Memory(Arc::new(MemoryCacheEngine::open(config)?))),
            Some(Scheme::Redis) => {
                #[cfg(feature = "redis")]
                {
                    Ok(Opened::Redis(Arc::new(
                        RedisCacheEngine::open(config).await?,
                    )))
                }
                #[cfg(not(feature = "redis"))]
                Err(Error::Config(format!(
                    "cache URL `{}` needs Redis support: build sessio with the `redis` feature",
                    crate::error::redact_url(url)
                )))
            }
            Some(Scheme::RedisTls) => Err(Error::Config(format!(
                "cache URL `{}`: TLS to Redis (rediss://) is not supported yet; \
                 use redis:// on a private network, or a local TLS tunnel (stunnel, a sidecar)",
                crate::error::redact_url(url)
            ))),
            None => Err(Error::Config(format!(
                "cache URL `{}` is not supported: {ACCEPTED}",
                crate::error::redact_url(url)
            ))),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Memory,
    Redis,
    RedisTls,
}

impl Scheme {
    fn of(url: &str) -> Option<Self> {
        let scheme = match url.split_once("://") {
            Some((scheme, _)) => scheme,
            None if url == "memory" || url.starts_with("memory?") => "memory",
            None => return None,
        };
        match scheme.to_ascii_lowercase().as_str() {
            "memory" => Some(Scheme::Memory),
            "redis" | "redis+cluster" | "redis-cluster" => Some(Scheme::Redis),
            "rediss" | "rediss+cluster" | "rediss-cluster" => Some(Scheme::RedisTls),
            _ => None,
        }
    }
}

/// Whether `key` could be a session key: anything else is not looked up, so a garbage
/// cookie costs no round trip and never reaches the cache as a key.
pub(crate) fn plausible_key(key: &str) -> bool {
    crate::key::is_well_formed(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> Config {
        Config::builder()
            .secret_key("test-secret")
            .allow_weak_secret_key(true)
            .cache_url(url)
            .build()
            .unwrap()
    }

    #[test]
    fn schemes() {
        assert_eq!(Scheme::of("memory://"), Some(Scheme::Memory));
        assert_eq!(Scheme::of("memory"), Some(Scheme::Memory));
        assert_eq!(Scheme::of("memory?max_entries=5"), Some(Scheme::Memory));
        assert_eq!(Scheme::of("redis://h:6379/0"), Some(Scheme::Redis));
        assert_eq!(Scheme::of("redis+cluster://a:1,b:2"), Some(Scheme::Redis));
        assert_eq!(Scheme::of("redis-cluster://a:1"), Some(Scheme::Redis));
        assert_eq!(Scheme::of("rediss://h"), Some(Scheme::RedisTls));
        assert_eq!(Scheme::of("memcached://h"), None);
        assert_eq!(Scheme::of("memoryx"), None);
    }

    #[tokio::test]
    async fn unknown_urls_name_the_accepted_forms_without_the_password() {
        for url in ["memcached://u:hunter2@h:11211", "nonsense"] {
            let err = open(&config(url)).await.unwrap_err().to_string();
            assert!(
                err.contains("memory://") && err.contains("redis://"),
                "{err}"
            );
            assert!(!err.contains("hunter2"), "{err}");
        }
        let err = open(&config("rediss://:hunter2@h:6380"))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("rediss://:***@h:6380"), "{err}");
    }

    #[tokio::test]
    async fn memory_opens() {
        for url in ["memory://", "memory", "memory://?max_entries=10"] {
            let engine = open(&config(url)).await.unwrap();
            assert_eq!(engine.name(), "cache");
            assert!(!engine.is_client_side());
        }
    }
}
