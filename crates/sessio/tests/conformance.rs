//! The conformance suite, run against every engine sessio ships. The cases live in the
//! `sessio-conformance` crate, which any store written elsewhere runs the same way.

mod common;

sessio_conformance::conformance!(signed_cookies, crate::common::signed_cookies);
sessio_conformance::conformance!(encrypted_cookies, crate::common::encrypted_cookies);
sessio_conformance::conformance!(db_sqlite, crate::common::db_sqlite);
sessio_conformance::conformance!(file, crate::common::file);
sessio_conformance::conformance!(spill_sqlite, crate::common::spill_sqlite);
sessio_conformance::conformance!(cache_memory, crate::common::cache_memory);
sessio_conformance::conformance!(cached_db_memory, crate::common::cached_db_memory);
#[cfg(feature = "redis")]
sessio_conformance::conformance!(cache_redis, crate::common::cache_redis);
#[cfg(feature = "redis")]
sessio_conformance::conformance!(cached_db_redis, crate::common::cached_db_redis);
#[cfg(feature = "redis")]
sessio_conformance::conformance!(cache_redis_cluster, crate::common::cache_redis_cluster);
#[cfg(feature = "postgres")]
sessio_conformance::conformance!(db_postgres, crate::common::db_postgres);
#[cfg(feature = "mysql")]
sessio_conformance::conformance!(db_mysql, crate::common::db_mysql);
