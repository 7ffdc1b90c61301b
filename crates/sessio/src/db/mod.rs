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
#[cfg(any(feature = "postgres", feature = "mysql"))]
mod sqlx_common;

/// The parts of sqlx that the PostgreSQL and MySQL stores use (sqlx 0.8), for callers
/// that build their own pool (`PostgresEngine::from_pool`) or need raw SQL.
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub use sqlx_core;
/// sqlx's MySQL driver: [`MySqlPool`](sqlx_mysql::MySqlPool) and its options.
#[cfg(feature = "mysql")]
pub use sqlx_mysql;
/// sqlx's PostgreSQL driver: [`PgPool`](sqlx_postgres::PgPool) and its options.
#[cfg(feature = "postgres")]
pub use sqlx_postgres;

/// The earliest stored `expire_date` that a save of a session now expiring at `expires`
/// leaves as it is: the stored date stays when it lies between this and `expires`.
///
/// Django writes `expire_date` on every save. But a database whose index on it changes
/// must update that index too, and PostgreSQL then also writes a new entry in every other
/// index of the table (no HOT update): three index entries per save, and an index that
/// grows with each write to a busy session. Left unchanged, the row is updated in place.
/// The date kept is never later than asked, only earlier: by at most `slack`
/// ([`Config::expiry_slack`](crate::Config::expiry_slack), 60 s by default) and at most 1%
/// of the time the session has left, so a 5-minute session ends at most 3 s early. A
/// creation, an expiry set to an earlier date, and a zero `slack` write the date as asked.
///
/// ```
/// use std::time::Duration as Slack;
/// use sessio::db::keep_expiry_from;
/// use time::{Duration, OffsetDateTime};
///
/// let now = OffsetDateTime::UNIX_EPOCH;
/// let minute = Slack::from_secs(60);
/// let two_weeks = now + Duration::weeks(2);
/// assert_eq!(keep_expiry_from(two_weeks, now, minute), two_weeks - Duration::minutes(1));
/// let five_minutes = now + Duration::minutes(5);
/// assert_eq!(keep_expiry_from(five_minutes, now, minute), five_minutes - Duration::seconds(3));
/// assert_eq!(keep_expiry_from(two_weeks, now, Slack::ZERO), two_weeks);
/// ```
pub fn keep_expiry_from(
    expires: time::OffsetDateTime,
    now: time::OffsetDateTime,
    slack: std::time::Duration,
) -> time::OffsetDateTime {
    let left: time::Duration = expires - now;
    let most = time::Duration::try_from(slack).unwrap_or(time::Duration::MAX);
    let slack = (left / 100_i32).clamp(time::Duration::ZERO, most);
    expires - slack
}

/// Opens the database that `config.database_url()` names.
pub async fn open(config: &Config) -> Result<Arc<dyn SessionEngine>> {
    let url = config.database_url();
    if url.starts_with("sqlite:") {
        #[cfg(feature = "sqlite")]
        {
            return Ok(Arc::new(crate::server::ServerEngine::new(
                sqlite::SqliteStore::open(config).await?,
                config,
            )));
        }
        #[cfg(not(feature = "sqlite"))]
        return Err(Error::Config(
            "this build of sessio has no SQLite support: enable the `sqlite` feature".into(),
        ));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        #[cfg(feature = "postgres")]
        {
            let store = postgres::PostgresStore::open(config).await?;
            return Ok(Arc::new(postgres::engine(store, config)));
        }
        #[cfg(not(feature = "postgres"))]
        return Err(Error::Config(
            "this build of sessio has no PostgreSQL support: enable the `postgres` feature".into(),
        ));
    }
    if url.starts_with("mysql://") || url.starts_with("mariadb://") {
        #[cfg(feature = "mysql")]
        {
            let store = mysql::MySqlStore::open(config).await?;
            return Ok(Arc::new(mysql::engine(store, config)));
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
