//! The `cache` engine: a record per session in a cache, expiring by TTL (Django's `cache`
//! backend).
//!
//! The cache is named by `config.cache_url()`:
//!
//! | URL | cache |
//! |---|---|
//! | `memory://`, `memory`, `memory://?max_entries=N` | [`MemoryStore`], in this process |
//! | `redis://[:password@]host[:port][/db]` | `RedisStore` on one Redis server (feature `redis`) |
//! | `redis+cluster://host1:port1,host2:port2,...` (or `redis-cluster://`) | `RedisStore` on a Redis Cluster (feature `redis`) |
//!
//! Each is a [`SessionStore`](crate::store::SessionStore) behind the core's
//! [`ServerEngine`](crate::server::ServerEngine) ([`MemoryCacheEngine`],
//! `RedisCacheEngine`). Django's cache `add`, which a read-through fill needs (it must
//! never overwrite a newer copy), is the store contract's
//! [`insert`](crate::store::SessionStore::insert).
//!
//! A cache forgets: a session evicted for room, or lost with a restarted server, is simply
//! gone (the visitor starts a new one). For sessions that must survive, use the `cached-db`
//! engine, which keeps the database as the record and the cache as a read-through copy.

use std::sync::Arc;

use sessio_django::codec::StoreCodec;

use crate::config::Config;
use crate::engine::SessionEngine;
use crate::error::{Error, Result};
use crate::store::AnyStore;

pub mod memory;
#[cfg(feature = "redis")]
pub mod redis;

pub use memory::{MemoryCacheEngine, MemoryStore};
#[cfg(feature = "redis")]
pub use redis::{RedisCacheEngine, RedisStore};

/// The engine name of every cache, in errors and logs.
pub(crate) const ENGINE: &str = "cache";

/// The accepted cache URLs, for error messages.
const ACCEPTED: &str = "use memory://[?max_entries=N], redis://[:password@]host[:port][/db] \
     or redis+cluster://host1:port1,host2:port2,...";

/// Opens the cache that `config.cache_url()` names, as a session engine.
pub async fn open(config: &Config) -> Result<Arc<dyn SessionEngine>> {
    Ok(match Cache::of(config)? {
        Cache::Memory => Arc::new(MemoryCacheEngine::open(config)?),
        #[cfg(feature = "redis")]
        Cache::Redis => Arc::new(RedisCacheEngine::open(config).await?),
    })
}

/// Opens the cache that `config.cache_url()` names, as a store in front of a database
/// (`cached-db`): its versions are the text the database keeps, so that a version read
/// from the cache is one the database accepts. `codec` is the engine's (a Redis store
/// checks expiry with a clone of it).
#[cfg_attr(not(feature = "redis"), allow(unused_variables))]
pub(crate) async fn open_store(config: &Config, codec: &StoreCodec) -> Result<AnyStore> {
    Ok(match Cache::of(config)? {
        Cache::Memory => AnyStore::new(MemoryStore::open(config)?.with_text_versions()),
        #[cfg(feature = "redis")]
        Cache::Redis => AnyStore::new(RedisStore::open_sharing(config, codec.clone()).await?),
    })
}

/// The caches this build supports.
enum Cache {
    Memory,
    #[cfg(feature = "redis")]
    Redis,
}

impl Cache {
    /// The cache `config.cache_url()` names, if this build supports it.
    fn of(config: &Config) -> Result<Self> {
        let url = config.cache_url();
        match Scheme::of(url) {
            Some(Scheme::Memory) => Ok(Cache::Memory),
            #[cfg(feature = "redis")]
            Some(Scheme::Redis) => Ok(Cache::Redis),
            #[cfg(not(feature = "redis"))]
            Some(Scheme::Redis) => Err(Error::Config(format!(
                "cache URL `{}` needs Redis support: build sessio with the `redis` feature",
                crate::error::redact_url(url)
            ))),
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
