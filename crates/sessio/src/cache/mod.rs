//! The `cache` engine: a record per session in a cache, expiring by TTL.

use std::sync::Arc;

use crate::config::Config;
use crate::engine::SessionEngine;
use crate::error::{Error, Result};

/// Opens the cache that `config.cache_url()` names.
pub async fn open(config: &Config) -> Result<Arc<dyn SessionEngine>> {
    Err(Error::Config(format!(
        "cache URL `{}` is not supported",
        crate::error::redact_url(config.cache_url())
    )))
}
