//! The `db` engine on embedded SQLite.

use crate::config::Config;
use crate::error::{Error, Result};

/// Sessions in a SQLite `django_session` table.
#[derive(Debug)]
pub struct SqliteEngine {}

impl SqliteEngine {
    /// Opens (and with auto-migrate, creates) the database.
    pub async fn open(_config: &Config) -> Result<Self> {
        Err(Error::Config("not yet".into()))
    }
}

#[async_trait::async_trait]
impl crate::engine::SessionEngine for SqliteEngine {
    fn name(&self) -> &'static str {
        "db"
    }
    fn is_client_side(&self) -> bool {
        false
    }
    async fn load(&self, _key: &str) -> Result<Option<crate::SessionData>> {
        unimplemented!()
    }
    async fn create(&self, _d: &crate::SessionData, _e: time::OffsetDateTime) -> Result<String> {
        unimplemented!()
    }
    async fn save(
        &self,
        _k: &str,
        _d: &crate::SessionData,
        _e: time::OffsetDateTime,
    ) -> Result<String> {
        unimplemented!()
    }
    async fn delete(&self, _key: &str) -> Result<()> {
        unimplemented!()
    }
    async fn exists(&self, _key: &str) -> Result<bool> {
        unimplemented!()
    }
    async fn clear_expired_batch(&self, _limit: usize) -> Result<u64> {
        unimplemented!()
    }
}
