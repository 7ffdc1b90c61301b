//! The in-process cache: sessions in this process's memory (Django's `locmem` cache).
//!
//! Fast and private to one process: a restart forgets every session, and several
//! processes (or hosts) do not share them. Use Redis, or `cached-db`, when that matters.
//!
//! [`MemoryStore`] keeps the sessions; the core's [`ServerEngine`] creates ids and
//! merges concurrent writes around it ([`MemoryCacheEngine`]).
//!
//! # Design
//!
//! * **Sharded.** The map is split into up to [`MAX_SHARDS`] shards by a seeded hash of
//!   the session key, each behind its own `Mutex`, so concurrent requests rarely contend.
//!   A lock is held only for a hash lookup and a few pointer updates: never across an
//!   `.await`, never while cloning or dropping session data.
//! * **Bounded.** At most `max_entries` sessions (`memory://?max_entries=N`, default
//!   [`DEFAULT_MAX_ENTRIES`]). A full shard first drops sessions that have expired, then the
//!   least recently used one. Each shard keeps its own LRU order (an intrusive doubly linked
//!   list over a slab), so eviction is O(1) and recency is exact within a shard, approximate
//!   across shards. Small caches use one shard, so their order is exact.
//! * **TTL by the configured clock.** Each session expires at the `expires` it was saved
//!   with, as told by `config.clock()` (so tests can move time). Expired sessions are never
//!   returned; they are dropped when met, when room is needed, or by `clear_expired`.
//! * **No serialisation.** The session map is stored as it is (behind an `Arc`, the
//!   request's own: [`Payload::shared`]) and handed out as a [`Record::Data`]; nothing is
//!   encoded or signed, since it never leaves the process. The price is memory: about 250
//!   bytes for an empty session, 1.1 KB for three small keys and 1.7 KB for a Django login,
//!   as measured by `tests/cache_engines.rs` (`memory_bytes_per_session`); size
//!   `max_entries` with that in mind (the default bound is ~110-170 MB of typical sessions).
//! * **Versions are write counters**, one sequence per shard. A `write` request nothing
//!   raced is applied where the data lies ([`LocalStore::apply_now`]): the request lets go
//!   of its handle first, so unless another request still reads that version the stored
//!   map is changed in place, not copied. A raced one takes the core's merge path
//!   ([`update`](SessionStore::update) with the version it read, which answers
//!   [`Update::Conflict`]).
//! * **Or text versions**, in front of a database (`cached-db`,
//!   [`with_text_versions`](MemoryStore::with_text_versions)): each record's version is
//!   the text the database keeps ([`Payload::version`]), so a version read from the cache
//!   is one the database's compare-and-set accepts. Nothing is then applied in place: the
//!   database is written first.

use std::collections::HashMap;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use time::{Duration, OffsetDateTime};

use super::{plausible_key, ENGINE};
use crate::clock::Clock;
use crate::config::Config;
use crate::engine::{Changes, SessionData, Version};
use crate::error::{Error, Result};
use crate::server::ServerEngine;
use crate::store::{LocalStore, Payload, Record, SessionStore, Update};

/// The hash of the shard index and of each shard's map: foldhash, randomly seeded, in place
/// of SipHash (measured: a load's lookup cost ~750 instructions with SipHash, hashing the
/// key twice). Its DoS resistance is minimal, and that is enough here: a key is stored only
/// when a session is created (a new random key, or its keyed hash with hashed ids) or
/// copied from the store that already holds it (cached-db, a hashed id's key rotation); a
/// cookie's key the store does not know is never adopted. So a client cannot fill a shard
/// or a bucket with keys it chose: it can only look keys up.
type KeyHasher = foldhash::fast::RandomState;

/// The bound when the URL sets none.
pub const DEFAULT_MAX_ENTRIES: usize = 100_000;
/// The most shards a cache is split into.
pub const MAX_SHARDS: usize = 64;
/// Shards are added only while each keeps at least this many entries, so that per-shard
/// LRU stays a good approximation of global LRU.
const MIN_ENTRIES_PER_SHARD: usize = 1024;
/// A full shard scans itself for expired sessions at most this often (by the configured
/// clock); in between it evicts from the LRU end, where expired sessions gather anyway.
const SWEEP_INTERVAL: Duration = Duration::seconds(1);
/// "No slot" in the linked list.
const NIL: u32 = u32::MAX;

/// Sessions in this process's memory: bounded, expiring, sharded.
///
/// ```
/// # async fn run() -> sessio::Result<()> {
/// use sessio::{Config, EngineKind};
///
/// let config = Config::builder()
///     .secret_key("a-long-random-secret-key-from-your-settings-0123456789")
///     .engine(EngineKind::Cache)
///     .cache_url("memory://?max_entries=50000")
///     .build()?;
/// let engine = sessio::open(&config).await?;
/// assert_eq!(engine.name(), "cache");
/// # Ok(()) }
/// ```
pub struct MemoryStore {
    shards: Box<[Mutex<Shard>]>,
    hasher: KeyHasher,
    clock: Arc<dyn Clock>,
    max_entries: usize,
    /// Records are versioned by their text, not by write counters.
    text_versions: bool,
}

/// The in-process `cache` engine: the [`MemoryStore`] behind the core's [`ServerEngine`].
pub type MemoryCacheEngine = ServerEngine<MemoryStore>;

impl ServerEngine<MemoryStore> {
    /// Opens the cache that `config.cache_url()` describes (`memory://?max_entries=N`).
    pub fn open(config: &Config) -> Result<Self> {
        Ok(ServerEngine::new(MemoryStore::open(config)?, config))
    }

    /// The most sessions this cache holds.
    pub fn max_entries(&self) -> usize {
        self.store().max_entries()
    }

    /// How many sessions are stored now (including expired ones not yet dropped).
    pub fn len(&self) -> usize {
        self.store().len()
    }

    /// Whether no session is stored.
    pub fn is_empty(&self) -> bool {
        self.store().is_empty()
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("max_entries", &self.max_entries)
            .field("shards", &self.shards.len())
            .field("len", &self.len())
            .field("text_versions", &self.text_versions)
            .finish_non_exhaustive()
    }
}

impl MemoryStore {
    /// Opens the cache that `config.cache_url()` describes (`memory://?max_entries=N`).
    pub fn open(config: &Config) -> Result<Self> {
        let max_entries = parse_url(config.cache_url())?;
        Ok(Self::new(max_entries, config.clock().clone()))
    }

    /// A cache of at most `max_entries` sessions (at least one), timed by `clock`.
    pub fn new(max_entries: usize, clock: Arc<dyn Clock>) -> Self {
        let max_entries = max_entries.max(1);
        // A power of two, so that picking a shard is a mask.
        let mut shards = 1;
        while shards * 2 <= MAX_SHARDS && max_entries / (shards * 2) >= MIN_ENTRIES_PER_SHARD {
            shards *= 2;
        }
        // Spread the bound exactly: the shards' capacities add up to max_entries.
        let shards = (0..shards)
            .map(|i| {
                let capacity = max_entries / shards + usize::from(i < max_entries % shards);
                Mutex::new(Shard::new(capacity))
            })
            .collect();
        Self {
            shards,
            hasher: KeyHasher::default(),
            clock,
            max_entries,
            text_versions: false,
        }
    }

    /// Versions each record by the text the core encoded for it ([`Payload::version`]),
    /// as a text store does, instead of by a write counter: for a cache in front of a
    /// database, whose compare-and-set then accepts the versions the cache hands out.
    /// Every write then encodes (the database needs the text anyway), and nothing is
    /// applied in place.
    pub fn with_text_versions(mut self) -> Self {
        self.text_versions = true;
        self
    }

    /// The most sessions this cache holds.
    pub fn max_entries(&self) -> usize {
        self.max_entries
    }

    /// How many sessions are stored now (including expired ones not yet dropped).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).map.len()).sum()
    }

    /// Whether no session is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn shard(&self, key: &str) -> MutexGuard<'_, Shard> {
        let index = self.hasher.hash_one(key) as usize & (self.shards.len() - 1);
        lock(&self.shards[index])
    }

    fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// The version a write of `record` stores: its text, with text versions (encoded
    /// here, outside any lock); otherwise the shard's next counter, taken under its lock.
    fn text_version(&self, record: &Payload<'_>) -> Option<Version> {
        self.text_versions.then(|| record.version())
    }

    /// The live record under `key`, its data shared with the store (a request that
    /// writes copies it then, outside the lock).
    fn find_live(&self, key: &str) -> Option<Record> {
        if !plausible_key(key) {
            return None;
        }
        let now = self.now();
        let (found, dropped) = {
            let mut shard = self.shard(key);
            match shard.find(key, now) {
                Found::Live(i) => {
                    shard.touch(i);
                    let entry = shard.entry(i);
                    (Some((entry.data.clone(), entry.version.clone())), None)
                }
                Found::Expired(i) => (None, shard.remove(i)),
                Found::Absent => (None, None),
            }
        };
        drop(dropped);
        found.map(|(data, version)| Record::Data { data, version })
    }
}

fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    // Nothing panics while a shard is locked; if something did, its data is still sound.
    shard.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `memory://`, `memory`, with an optional `?max_entries=N`.
fn parse_url(url: &str) -> Result<usize> {
    let rest = url
        .strip_prefix("memory://")
        .or_else(|| url.strip_prefix("memory"))
        .unwrap_or(url);
    let bad = |why: &str| {
        Error::Config(format!(
            "cache URL `{url}`: {why}; use memory:// or memory://?max_entries=N"
        ))
    };
    let query = match rest.split_once('?') {
        Some(("", query)) => query,
        None if rest.is_empty() => "",
        _ => return Err(bad("an in-process cache has no host or path")),
    };
    let mut max_entries = DEFAULT_MAX_ENTRIES;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("max_entries", n)) => {
                max_entries = n
                    .parse()
                    .ok()
                    .filter(|&n: &usize| n > 0)
                    .ok_or_else(|| bad("max_entries must be a positive whole number"))?;
            }
            _ => return Err(bad(&format!("unknown option `{pair}`"))),
        }
    }
    Ok(max_entries)
}

impl SessionStore for MemoryStore {
    fn name(&self) -> &'static str {
        ENGINE
    }

    async fn load(&self, id: &str) -> Result<Option<Record>> {
        Ok(self.find_live(id))
    }

    /// Django's cache `add`: stores unless a live session has `id` (an expired one is
    /// replaced). A session already expired is not kept (Django's cache backend adds and
    /// drops it), and counts as stored.
    async fn insert(
        &self,
        id: &str,
        record: &Payload<'_>,
        expires: OffsetDateTime,
    ) -> Result<bool> {
        if !plausible_key(id) {
            return Err(Error::Config(format!(
                "`{id}` is not a valid session key for the memory cache"
            )));
        }
        let now = self.now();
        if expires <= now {
            return Ok(true);
        }
        let data = record.shared();
        let text_version = self.text_version(record);
        let dropped = {
            let mut shard = self.shard(id);
            let old = match shard.find(id, now) {
                Found::Live(_) => return Ok(false),
                Found::Expired(i) => shard.remove(i),
                Found::Absent => None,
            };
            let version = text_version.unwrap_or_else(|| shard.next_counter());
            (old, shard.insert(id.into(), data, expires, version, now))
        };
        // Freed outside the shard lock.
        drop(dropped);
        Ok(true)
    }

    async fn update(
        &self,
        id: &str,
        record: &Payload<'_>,
        expires: OffsetDateTime,
        expected: Option<&Version>,
    ) -> Result<Update> {
        if !plausible_key(id) {
            return Ok(Update::Gone);
        }
        let now = self.now();
        let data = record.shared();
        let text_version = self.text_version(record);
        let (outcome, dropped) = {
            let mut shard = self.shard(id);
            match shard.find(id, now) {
                // Gone by its TTL: never resurrect it.
                Found::Expired(i) => (Update::Gone, shard.remove(i).map(|e| e.data)),
                Found::Absent => (Update::Gone, None),
                Found::Live(i) if expected.is_some_and(|v| *v != shard.entry(i).version) => {
                    (Update::Conflict, None)
                }
                Found::Live(i) => {
                    let version = text_version.unwrap_or_else(|| shard.next_counter());
                    shard.touch(i);
                    let old = shard.replace(i, data, expires, version.clone());
                    (Update::Stored(Some(version)), Some(old))
                }
            }
        };
        drop(dropped);
        Ok(outcome)
    }

    async fn delete(&self, id: &str) -> Result<()> {
        if plausible_key(id) {
            let dropped = {
                let mut shard = self.shard(id);
                let i = shard.map.get(id).copied();
                i.and_then(|i| shard.remove(i))
            };
            drop(dropped);
        }
        Ok(())
    }

    async fn clear_expired(&self, limit: usize) -> Result<u64> {
        let now = self.now();
        let mut deleted = 0;
        for shard in self.shards.iter() {
            let left = limit.saturating_sub(deleted as usize);
            if left == 0 {
                break;
            }
            let dropped = lock(shard).sweep(now, left);
            deleted += dropped.len() as u64;
        }
        Ok(deleted)
    }

    async fn count_expired(&self) -> Result<Option<u64>> {
        let now = self.now();
        let n = self
            .shards
            .iter()
            .map(|s| {
                lock(s)
                    .slots
                    .iter()
                    .filter_map(|slot| slot.entry.as_ref())
                    .filter(|e| e.expires <= now)
                    .count() as u64
            })
            .sum();
        Ok(Some(n))
    }

    fn local(&self) -> Option<&dyn LocalStore> {
        Some(self)
    }
}

impl LocalStore for MemoryStore {
    fn load_now(&self, id: &str) -> Option<Record> {
        self.find_live(id)
    }

    fn apply_now(
        &self,
        id: &str,
        base: &Version,
        read: &mut Option<Arc<SessionData>>,
        changes: &Changes,
        expires: OffsetDateTime,
    ) -> Option<Version> {
        // Text versions (a cache in front of a database) never match: that record is
        // written through `update`, the database first.
        let base = base.as_counter()?;
        if !plausible_key(id) {
            return None;
        }
        let now = self.now();
        if expires <= now {
            return None;
        }
        let mut shard = self.shard(id);
        let Found::Live(i) = shard.find(id, now) else {
            return None;
        };
        let entry = shard.entry(i);
        let same = read.as_ref().is_some_and(|r| Arc::ptr_eq(r, &entry.data));
        if entry.version.as_counter() != Some(base) || !same {
            return None;
        }
        // The request's handle goes first: then, unless another request still reads
        // this version, `apply` changes the stored map in place instead of copying it.
        // (Dropping it frees nothing: the store holds the same map.)
        drop(read.take());
        shard.touch(i);
        let (version, data) = shard.apply(i, changes);
        shard.set_expiry(i, expires);
        *read = Some(data);
        Some(Version::counter(version))
    }
}

// ---------------------------------------------------------------------------------------
// One shard: a hash map from key to slot, and the slots in LRU order.

struct Entry {
    key: Arc<str>,
    data: Arc<SessionData>,
    expires: OffsetDateTime,
    /// Which write of its shard stored this data (a [`Version::counter`]), or the text
    /// it was stored as (with text versions).
    version: Version,
}

struct Slot {
    entry: Option<Entry>,
    /// Towards the most recently used end.
    prev: u32,
    /// Towards the least recently used end.
    next: u32,
}

enum Found {
    Live(u32),
    Expired(u32),
    Absent,
}

struct Shard {
    map: HashMap<Arc<str>, u32, KeyHasher>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// The most recently used slot.
    head: u32,
    /// The least recently used slot: the next to evict.
    tail: u32,
    capacity: usize,
    /// No stored session expires before this (a lower bound; exact after a full sweep).
    earliest: Option<OffsetDateTime>,
    last_sweep: Option<OffsetDateTime>,
    /// Writes so far: the source of entry versions (a key always lives in one shard, so
    /// versions never repeat for a key).
    writes: u64,
}

impl Shard {
    fn next_version(&mut self) -> u64 {
        self.writes += 1;
        self.writes
    }

    fn next_counter(&mut self) -> Version {
        Version::counter(self.next_version())
    }

    fn new(capacity: usize) -> Self {
        Self {
            map: HashMap::default(),
            slots: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            capacity,
            earliest: None,
            last_sweep: None,
            writes: 0,
        }
    }

    fn entry(&self, i: u32) -> &Entry {
        self.slots[i as usize]
            .entry
            .as_ref()
            .expect("the map points at occupied slots")
    }

    fn entry_mut(&mut self, i: u32) -> &mut Entry {
        self.slots[i as usize]
            .entry
            .as_mut()
            .expect("the map points at occupied slots")
    }

    /// Applies `changes` to slot `i` as a new version; returns it and the merged data
    /// (shared with the store).
    fn apply(&mut self, i: u32, changes: &Changes) -> (u64, Arc<SessionData>) {
        let version = self.next_version();
        let entry = self.entry_mut(i);
        // Copies the map only if a reader still holds this version.
        changes.apply(Arc::make_mut(&mut entry.data));
        entry.version = Version::counter(version);
        (version, entry.data.clone())
    }

    fn set_expiry(&mut self, i: u32, expires: OffsetDateTime) {
        self.note_expiry(expires);
        self.entry_mut(i).expires = expires;
    }

    fn find(&self, key: &str, now: OffsetDateTime) -> Found {
        match self.map.get(key) {
            None => Found::Absent,
            Some(&i) if self.entry(i).expires <= now => Found::Expired(i),
            Some(&i) => Found::Live(i),
        }
    }

    fn unlink(&mut self, i: u32) {
        let (prev, next) = {
            let slot = &self.slots[i as usize];
            (slot.prev, slot.next)
        };
        match prev {
            NIL => self.head = next,
            p => self.slots[p as usize].next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.slots[n as usize].prev = prev,
        }
    }

    fn push_front(&mut self, i: u32) {
        let old_head = self.head;
        {
            let slot = &mut self.slots[i as usize];
            slot.prev = NIL;
            slot.next = old_head;
        }
        match old_head {
            NIL => self.tail = i,
            h => self.slots[h as usize].prev = i,
        }
        self.head = i;
    }

    /// Marks slot `i` as the most recently used.
    fn touch(&mut self, i: u32) {
        if self.head != i {
            self.unlink(i);
            self.push_front(i);
        }
    }

    /// Removes slot `i`; the entry is returned so the caller drops it after unlocking.
    fn remove(&mut self, i: u32) -> Option<Entry> {
        let entry = self.slots[i as usize].entry.take()?;
        self.unlink(i);
        self.map.remove(&entry.key);
        self.free.push(i);
        Some(entry)
    }

    /// Replaces the data of slot `i`; returns the old data, to be dropped after unlocking.
    fn replace(
        &mut self,
        i: u32,
        data: Arc<SessionData>,
        expires: OffsetDateTime,
        version: Version,
    ) -> Arc<SessionData> {
        self.set_expiry(i, expires);
        let entry = self.entry_mut(i);
        entry.version = version;
        std::mem::replace(&mut entry.data, data)
    }

    fn note_expiry(&mut self, expires: OffsetDateTime) {
        self.earliest = Some(self.earliest.map_or(expires, |e| e.min(expires)));
    }

    /// Inserts a key that is not in the shard, making room first; returns what was evicted.
    fn insert(
        &mut self,
        key: Arc<str>,
        data: Arc<SessionData>,
        expires: OffsetDateTime,
        version: Version,
        now: OffsetDateTime,
    ) -> Vec<Entry> {
        let evicted = if self.map.len() >= self.capacity {
            self.make_room(now)
        } else {
            Vec::new()
        };
        let entry = Entry {
            key: key.clone(),
            data,
            expires,
            version,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize].entry = Some(entry);
                i
            }
            None => {
                let i = u32::try_from(self.slots.len()).expect("fewer than 2^32 sessions a shard");
                self.slots.push(Slot {
                    entry: Some(entry),
                    prev: NIL,
                    next: NIL,
                });
                i
            }
        };
        self.push_front(i);
        self.map.insert(key, i);
        self.note_expiry(expires);
        evicted
    }

    /// Frees at least one place: expired sessions first, else the least recently used.
    fn make_room(&mut self, now: OffsetDateTime) -> Vec<Entry> {
        // The LRU end is where sessions expire first (each save restarts the expiry).
        if self.tail != NIL && self.entry(self.tail).expires <= now {
            return self.remove(self.tail).into_iter().collect();
        }
        let something_expired = self.earliest.is_some_and(|e| e <= now);
        let may_sweep = self.last_sweep.is_none_or(|at| now - at >= SWEEP_INTERVAL);
        if something_expired && may_sweep {
            let swept = self.sweep(now, usize::MAX);
            if !swept.is_empty() {
                return swept;
            }
        }
        self.remove(self.tail).into_iter().collect()
    }

    /// Removes up to `limit` expired sessions and returns them.
    fn sweep(&mut self, now: OffsetDateTime, limit: usize) -> Vec<Entry> {
        let expired: Vec<u32> = (0..self.slots.len() as u32)
            .filter(|&i| {
                self.slots[i as usize]
                    .entry
                    .as_ref()
                    .is_some_and(|e| e.expires <= now)
            })
            .take(limit)
            .collect();
        let complete = expired.len() < limit;
        let removed: Vec<Entry> = expired.into_iter().filter_map(|i| self.remove(i)).collect();
        if complete {
            // Everything left is live: the bound is exact again.
            self.earliest = self
                .slots
                .iter()
                .filter_map(|s| s.entry.as_ref().map(|e| e.expires))
                .min();
            self.last_sweep = Some(now);
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::engine::SessionEngine;
    use crate::Value;

    const T0: i64 = 1_700_000_000;

    /// The engine over a store of at most `max_entries`, timed by `clock`.
    fn engine(max_entries: usize, clock: &ManualClock) -> MemoryCacheEngine {
        let config = Config::builder()
            .secret_key("test-secret")
            .allow_weak_secret_key(true)
            .clock(clock.clone())
            .build()
            .unwrap();
        ServerEngine::new(
            MemoryStore::new(max_entries, Arc::new(clock.clone())),
            &config,
        )
    }

    fn at(seconds: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(seconds).unwrap()
    }

    fn data(n: i64) -> SessionData {
        let mut d = SessionData::new();
        d.insert("n".into(), n.into());
        d
    }

    #[test]
    fn urls() {
        assert_eq!(parse_url("memory://").unwrap(), DEFAULT_MAX_ENTRIES);
        assert_eq!(parse_url("memory").unwrap(), DEFAULT_MAX_ENTRIES);
        assert_eq!(parse_url("memory://?max_entries=7").unwrap(), 7);
        assert_eq!(parse_url("memory?max_entries=7").unwrap(), 7);
        for bad in [
            "memory://?max_entries=0",
            "memory://?max_entries=x",
            "memory://?size=3",
            "memory://host",
        ] {
            assert!(matches!(parse_url(bad), Err(Error::Config(_))), "{bad}");
        }
    }

    #[test]
    fn shards_add_up_to_the_bound() {
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::at_unix(T0));
        for max in [1, 10, 1023, 2048, 100_000, 1_000_003] {
            let c = MemoryStore::new(max, clock.clone());
            let total: usize = c.shards.iter().map(|s| lock(s).capacity).sum();
            assert_eq!(total, max);
            assert!(c.shards.len().is_power_of_two() && c.shards.len() <= MAX_SHARDS);
        }
        assert_eq!(MemoryStore::new(10, clock.clone()).shards.len(), 1);
        assert_eq!(MemoryStore::new(100_000, clock).shards.len(), 64);
    }

    #[tokio::test]
    async fn lru_order_survives_reads_and_writes() {
        let clock = ManualClock::at_unix(T0);
        let c = engine(3, &clock);
        let far = at(T0 + 3600);
        let a = c.create(&data(1), far).await.unwrap();
        let b = c.create(&data(2), far).await.unwrap();
        let d = c.create(&data(3), far).await.unwrap();
        // a is read, b is saved: d is now the least recently used.
        assert!(c.load(&a).await.unwrap().is_some());
        c.save(&b, &data(20), far).await.unwrap();
        let e = c.create(&data(4), far).await.unwrap();
        assert!(!c.exists(&d).await.unwrap());
        for k in [&a, &b, &e] {
            assert!(c.exists(k).await.unwrap());
        }
        assert_eq!(c.len(), 3);
        // Deleting frees a place without evicting anyone.
        c.delete(&a).await.unwrap();
        let f = c.create(&data(5), far).await.unwrap();
        for k in [&b, &e, &f] {
            assert!(c.exists(k).await.unwrap());
        }
        assert_eq!(c.load(&b).await.unwrap(), Some(data(20)));
    }

    #[tokio::test]
    async fn expired_sessions_are_evicted_before_live_ones() {
        let clock = ManualClock::at_unix(T0);
        let c = engine(3, &clock);
        let short = c.create(&data(1), at(T0 + 10)).await.unwrap();
        let old = c.create(&data(2), at(T0 + 3600)).await.unwrap();
        let new = c.create(&data(3), at(T0 + 3600)).await.unwrap();
        // `short` is the most recently used, `old` the least.
        assert!(c.load(&short).await.unwrap().is_some());
        clock.advance(Duration::seconds(11));
        c.create(&data(4), at(T0 + 3600)).await.unwrap();
        assert!(c.exists(&old).await.unwrap() && c.exists(&new).await.unwrap());
        assert!(!c.exists(&short).await.unwrap());
        assert_eq!(c.len(), 3);
    }

    #[tokio::test]
    async fn load_now_answers_as_load_session() {
        let clock = ManualClock::at_unix(T0);
        let c = engine(16, &clock);
        let live = c.create(&data(1), at(T0 + 60)).await.unwrap();
        let short = c.create(&data(2), at(T0 + 10)).await.unwrap();
        clock.advance(time::Duration::seconds(30));
        for key in [
            live.as_str(),
            short.as_str(),
            "absentabsentabsentabsentabsent00",
            "x",
        ] {
            let now = c
                .load_session_now(key)
                .expect("the memory engine answers at once");
            assert_eq!(now.unwrap(), c.load_session(key).await.unwrap(), "{key}");
        }
        assert!(c.load_session_now(&live).unwrap().unwrap().is_some());
        assert!(c.load_session_now(&short).unwrap().unwrap().is_none());
    }

    #[tokio::test]
    async fn save_now_changes_the_stored_data_in_place_only_when_unraced() {
        let clock = ManualClock::at_unix(T0);
        let c = engine(16, &clock);
        let key = c.create(&data(1), at(T0 + 60)).await.unwrap();
        let change = |n: i64| Changes {
            cleared: false,
            entries: vec![("m".into(), Some(n.into()))],
        };
        let loaded = c.load_session_now(&key).unwrap().unwrap().unwrap();
        let stored_at = Arc::as_ptr(&loaded.data);
        let mut read = Some(loaded.data);
        let base = loaded.version.unwrap();
        let saved = c
            .save_changes_now(&key, &base, &mut read, &change(2), at(T0 + 90))
            .expect("unraced: saved at once");
        assert_eq!(saved.cookie, key);
        assert_eq!(saved.merged, None);
        // Nobody else held the map: changed where it lies, not copied.
        let now = read.expect("the stored data is handed back");
        assert_eq!(Arc::as_ptr(&now), stored_at);
        assert_eq!(
            Value::Object((*now).clone()),
            crate::json!({"n": 1, "m": 2})
        );
        let again = c.load_session(&key).await.unwrap().unwrap();
        assert_eq!(again.version, saved.version);
        assert!(Arc::ptr_eq(&again.data, &now));

        // A stale version, a copy of the data, a past expiry or an unknown key: left to
        // save_changes_from, with the request's handle untouched.
        let stale = base;
        let mut read = Some(now.clone());
        assert!(c
            .save_changes_now(&key, &stale, &mut read, &change(3), at(T0 + 90))
            .is_none());
        assert!(read.is_some());
        let current = saved.version.unwrap();
        let mut copy = Some(Arc::new((*now).clone()));
        assert!(c
            .save_changes_now(&key, &current, &mut copy, &change(3), at(T0 + 90))
            .is_none());
        let mut read = Some(now.clone());
        assert!(c
            .save_changes_now(&key, &current, &mut read, &change(3), at(T0))
            .is_none());
        assert!(c
            .save_changes_now(
                "absentabsentabsentabsentabsent00",
                &current,
                &mut read,
                &change(3),
                at(T0 + 90)
            )
            .is_none());
        assert!(Arc::ptr_eq(read.as_ref().unwrap(), &now));
        // Another request still reads this version: it keeps what it read.
        let saved = c
            .save_changes_now(&key, &current, &mut read, &change(4), at(T0 + 90))
            .unwrap();
        assert_eq!(
            Value::Object((*now).clone()),
            crate::json!({"n": 1, "m": 2})
        );
        let stored = c.load_session(&key).await.unwrap().unwrap();
        assert_eq!(stored.version, saved.version);
        assert_eq!(
            Value::Object((*stored.data).clone()),
            crate::json!({"n": 1, "m": 4})
        );
    }

    #[tokio::test]
    async fn slots_are_reused() {
        let clock = ManualClock::at_unix(T0);
        let c = engine(4, &clock);
        for i in 0..1000 {
            c.create(&data(i), at(T0 + 60)).await.unwrap();
        }
        assert_eq!(c.len(), 4);
        assert!(lock(&c.store().shards[0]).slots.len() <= 4);
    }

    #[tokio::test]
    async fn text_versions_are_the_stored_text() {
        let clock = ManualClock::at_unix(T0);
        let config = Config::builder()
            .secret_key("test-secret")
            .allow_weak_secret_key(true)
            .clock(clock.clone())
            .build()
            .unwrap();
        let codec = config.store_codec();
        let store = MemoryStore::new(16, Arc::new(clock.clone())).with_text_versions();
        let key = crate::key::new_session_key().unwrap();
        let first = Arc::new(data(1));
        let first = Payload::new(&first, &codec, T0);
        assert!(store.insert(&key, &first, at(T0 + 60)).await.unwrap());
        let Some(Record::Data { version, .. }) = store.load(&key).await.unwrap() else {
            panic!("a data record");
        };
        assert_eq!(version, first.version());
        // Never applied in place: the database is written first.
        let mut read = None;
        assert!(store
            .apply_now(&key, &version, &mut read, &Changes::default(), at(T0 + 60))
            .is_none());
        let second = Arc::new(data(2));
        let second = Payload::new(&second, &codec, T0);
        assert_eq!(
            store
                .update(&key, &second, at(T0 + 60), Some(&Version::counter(1)))
                .await
                .unwrap(),
            Update::Conflict
        );
        assert_eq!(
            store
                .update(&key, &second, at(T0 + 60), Some(&version))
                .await
                .unwrap(),
            Update::Stored(Some(second.version()))
        );
        assert_eq!(
            store
                .update(&key, &first, at(T0 + 60), Some(&version))
                .await
                .unwrap(),
            Update::Conflict
        );
    }
}
