//! The `db` engine: one row per session in Django's `django_session` table.
//!
//! `session_key` varchar(40) primary key, `session_data` text in Django's signed format
//! (salt [`STORE_SALT`](crate::signing::STORE_SALT)), `expire_date` indexed. Django and
//! sessio can share the table.

use std::sync::Arc;

use crate::config::Config;
use crate::engine::SessionEngine;
use crate::error::{Error, Result};

#[cfg(feature = "sqlite")]
pub mod sqlite;

/// Opens the database that `config.database_url()` names.
pub async fn open(config: &Config) -> Result<Arc<dyn SessionEngine>> {
    let url = config.database_url();
    if url.starts_with("sqlite:") {
        #[cfg(feature = "sqlite")]
        {
            return Ok(Arc::new(sqlite::SqliteEngine::open(config).await?));
        }
        #[cfg(not(feature = "sqlite"))]
        return Err(Error::Config(
            "this build of sessio has no SQLite support: enable the `sqlite` feature".into(),
        ));
    }
    Err(Error::Config(format!(
        "database URL `{}` is not supported: use sqlite://path/to/sessions.db",
        crate::error::redact_url(url)
    )))
}
