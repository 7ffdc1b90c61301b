//! The one factory above all stores: the engine a configuration names, with a cookie
//! engine's spill store.

use std::sync::Arc;

use crate::config::{Config, CookieOverflow, EngineKind};
use crate::engine::SessionEngine;
use crate::error::Result;

/// Opens the engine the configuration names.
///
/// ```no_run
/// # async fn run() -> sessio::Result<()> {
/// let config = sessio::Config::from_env()?;
/// let engine = sessio::open(&config).await?;
/// println!("sessions live in the {} engine", engine.name());
/// # Ok(()) }
/// ```
pub async fn open(config: &Config) -> Result<Arc<dyn SessionEngine>> {
    let engine = open_kind(config, config.engine()).await?;
    match config.cookie_overflow() {
        CookieOverflow::Spill(server) if engine.is_client_side() => {
            let server = open_kind(config, server).await?;
            Ok(Arc::new(
                crate::spill::SpillEngine::new(engine, server, config.cookie_name())
                    .hashing_ids(config),
            ))
        }
        _ => Ok(engine),
    }
}

pub(crate) async fn open_kind(config: &Config, kind: EngineKind) -> Result<Arc<dyn SessionEngine>> {
    match kind {
        EngineKind::SignedCookies => Ok(Arc::new(crate::signed_cookies::SignedCookieEngine::new(
            config,
        ))),
        EngineKind::EncryptedCookies => Ok(Arc::new(
            crate::encrypted_cookies::EncryptedCookieEngine::new(config),
        )),
        EngineKind::Db => crate::db::open(config).await,
        EngineKind::Cache => crate::cache::open(config).await,
        EngineKind::CachedDb => Ok(Arc::new(crate::cached_db::open(config).await?)),
        EngineKind::File => Ok(Arc::new(crate::file::open(config).await?)),
    }
}
