//! The `cached-db` engine: a cache in front of a db engine.

use std::sync::Arc;

use crate::config::Config;
use crate::engine::SessionEngine;
use crate::error::{Error, Result};

/// Opens the database and the cache that the configuration names.
pub async fn open(_config: &Config) -> Result<Arc<dyn SessionEngine>> {
    Err(Error::Config(
        "the cached-db engine is not available in this build".into(),
    ))
}
