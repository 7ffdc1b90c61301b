//! The `db` engine: one row per session in Django's `django_session` table.
//!
//! `session_key` varchar(40) primary key, `session_data` text in Django's signed format
//! (salt [`STORE_SALT`](crate::signing::STORE_SALT)), `expire_date` indexed. Django and
//! sessio can share the table.

use std::sync::Arc;

use crate::config::Config;
use crate::engine::SessionEngine;
use crate::error::{Error, Result};

#[cfg(feature = "mysql")]
pub mod mysql;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;

/// The parts of sqlx that the PostgreSQL and MySQL engines use (sqlx 0.8), for callers
/// that build their own pool (`PostgresEngine::from_pool`) or need raw SQL.
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub use sqlx_core;
/// sqlx's MySQL driver: [`MySqlPool`](sqlx_mysql::MySqlPool) and its options.
#[cfg(feature = "mysql")]
pub use sqlx_mysql;
/// sqlx's PostgreSQL driver: [`PgPool`](sqlx_postgres::PgPool) and its options.
#[cfg(feature = "postgres")]
pub use sqlx_postgres;

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
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        #[cfg(feature = "postgres")]
        {
            return Ok(Arc::new(postgres::PostgresEngine::open(config).await?));
        }
        #[cfg(not(feature = "postgres"))]
        return Err(Error::Config(
            "this build of sessio has no PostgreSQL support: enable the `postgres` feature".into(),
        ));
    }
    if url.starts_with("mysql://") || url.starts_with("mariadb://") {
        #[cfg(feature = "mysql")]
        {
            return Ok(Arc::new(mysql::MySqlEngine::open(config).await?));
        }
        #[cfg(not(feature = "mysql"))]
        return Err(Error::Config(
            "this build of sessio has no MySQL/MariaDB support: enable the `mysql` feature".into(),
        ));
    }
    Err(Error::Config(format!(
        "database URL `{}` is not supported: use sqlite://path/to/sessions.db, \
         postgres://user:password@host/database or mysql://user:password@host/database",
        crate::error::redact_url(url)
    )))
}
