//! A complete sessio store, written outside sessio: sessions in a `HashMap`.
//!
//! A store keeps encoded records by id, each with a version, and nothing more: sessio's
//! core creates the ids, encodes Django's `session_data`, hashes ids at rest and merges
//! concurrent writes. Here the record is the text itself, and so is its version: an update
//! that expects a version writes only if the text is still the one the request read.
//!
//! Its tests run sessio's whole conformance suite with one line
//! (`tests/conformance.rs`). Plug it in with
//! `SessionManager::new(config, Arc::new(ServerEngine::new(MapStore::new(clock), &config)))`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use sessio::clock::Clock;
use sessio::engine::Version;
use sessio::store::{Payload, Record, SessionStore, Update};
use time::OffsetDateTime;

/// Sessions in this process's memory: the text and the expiry of each, by id.
#[derive(Debug)]
pub struct MapStore {
    records: Mutex<HashMap<String, (String, OffsetDateTime)>>,
    clock: Arc<dyn Clock>,
}

impl MapStore {
    /// An empty store that tells expired records by `clock` (the configuration's clock,
    /// `config.clock()`, so that tests can move time).
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            records: Mutex::default(),
            clock,
        }
    }

    fn records(&self) -> MutexGuard<'_, HashMap<String, (String, OffsetDateTime)>> {
        // A panic elsewhere while the lock was held leaves whole records: carry on.
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The live record under `id`.
    fn live<'a>(
        &self,
        records: &'a mut HashMap<String, (String, OffsetDateTime)>,
        id: &str,
    ) -> Option<&'a mut (String, OffsetDateTime)> {
        let now = self.clock.now();
        records.get_mut(id).filter(|(_, expires)| *expires > now)
    }
}

impl SessionStore for MapStore {
    fn name(&self) -> &'static str {
        "map"
    }

    async fn load(&self, id: &str) -> sessio::Result<Option<Record>> {
        let mut records = self.records();
        Ok(self
            .live(&mut records, id)
            .map(|(text, _)| Record::Text(text.clone())))
    }

    async fn insert(
        &self,
        id: &str,
        record: &Payload<'_>,
        expires: OffsetDateTime,
    ) -> sessio::Result<bool> {
        let mut records = self.records();
        // Taken, live or expired: never overwrite another session.
        if records.contains_key(id) {
            return Ok(false);
        }
        records.insert(id.to_owned(), (record.text().to_owned(), expires));
        Ok(true)
    }

    async fn update(
        &self,
        id: &str,
        record: &Payload<'_>,
        expires: OffsetDateTime,
        expected: Option<&Version>,
    ) -> sessio::Result<Update> {
        let mut records = self.records();
        let Some(stored) = self.live(&mut records, id) else {
            // Deleted by a logout, or expired: an update never brings it back.
            return Ok(Update::Gone);
        };
        if expected.is_some_and(|v| v.as_stored() != Some(stored.0.as_str())) {
            return Ok(Update::Conflict);
        }
        *stored = (record.text().to_owned(), expires);
        Ok(Update::Stored(Some(record.version())))
    }

    async fn delete(&self, id: &str) -> sessio::Result<()> {
        self.records().remove(id);
        Ok(())
    }

    async fn clear_expired(&self, limit: usize) -> sessio::Result<u64> {
        let now = self.clock.now();
        let mut records = self.records();
        let expired: Vec<String> = records
            .iter()
            .filter(|(_, (_, expires))| *expires <= now)
            .map(|(id, _)| id.clone())
            .take(limit)
            .collect();
        for id in &expired {
            records.remove(id);
        }
        Ok(expired.len() as u64)
    }
}
