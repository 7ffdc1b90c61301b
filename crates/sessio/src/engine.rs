//! The one abstraction every engine implements, client-side and server-side alike.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::error::Result;

pub use sessio_django::data::SessionData;

/// A session as [`SessionEngine::load_session`] found it.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedSession {
    /// The data (shared: engines that keep decoded sessions hand out their copy).
    pub data: Arc<SessionData>,
    /// True when an old (fallback) secret key verified the record: it should be re-issued
    /// under the current key.
    pub stale_key: bool,
    /// What the store held, for [`SessionEngine::save_changes_from`]: `None` when the engine
    /// does not track versions.
    pub version: Option<Version>,
}

impl LoadedSession {
    /// A session read with the current key, of no known version.
    pub fn new(data: SessionData) -> Self {
        Self {
            data: Arc::new(data),
            stale_key: false,
            version: None,
        }
    }
}

/// Which state of a stored session a request read: a token the engine hands out with a
/// load and recognises in [`SessionEngine::save_changes_from`], so that a save nothing
/// raced can be written at once instead of being read and merged again.
///
/// ```
/// use sessio::engine::Version;
/// assert_eq!(Version::counter(7), Version::counter(7));
/// assert_ne!(Version::stored("a:1"), Version::stored("a:2"));
/// assert_eq!(Version::stored("a:1").as_stored(), Some("a:1"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version(VersionRepr);

#[derive(Clone, Debug, PartialEq, Eq)]
enum VersionRepr {
    Counter(u64),
    Stored(Arc<str>),
}

impl Version {
    /// A write counter kept by the engine (in-process stores).
    pub fn counter(n: u64) -> Self {
        Self(VersionRepr::Counter(n))
    }

    /// The stored value itself (a store compares it with what it holds now).
    pub fn stored(value: impl Into<Arc<str>>) -> Self {
        Self(VersionRepr::Stored(value.into()))
    }

    /// The counter, for a [`Version::counter`].
    pub fn as_counter(&self) -> Option<u64> {
        match &self.0 {
            VersionRepr::Counter(n) => Some(*n),
            VersionRepr::Stored(_) => None,
        }
    }

    /// The stored value, for a [`Version::stored`].
    pub fn as_stored(&self) -> Option<&str> {
        match &self.0 {
            VersionRepr::Stored(s) => Some(s),
            VersionRepr::Counter(_) => None,
        }
    }
}

/// The outcome of [`SessionEngine::save_changes_from`].
#[derive(Debug, Clone, PartialEq)]
pub struct Saved {
    /// The cookie value.
    pub cookie: String,
    /// The stored data after the merge, when it differs from the data the request sent
    /// (another request wrote in between); `None` when the request's data was stored as is.
    pub merged: Option<SessionData>,
    /// The version now stored, when the engine tracks versions.
    pub version: Option<Version>,
}

/// What one request changed in a session: applied to the stored session, it merges that
/// request's writes with those of concurrent requests instead of overwriting them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Changes {
    /// The request cleared the session before writing `entries`.
    pub cleared: bool,
    /// Keys the request wrote (`Some`) or removed (`None`), in order.
    pub entries: Vec<(String, Option<crate::Value>)>,
}

impl Changes {
    /// True when there is nothing to apply.
    pub fn is_empty(&self) -> bool {
        !self.cleared && self.entries.is_empty()
    }

    /// Applies the changes to `data`.
    ///
    /// ```
    /// use sessio::engine::{Changes, SessionData};
    /// let mut stored: SessionData = sessio::value::object_from_str(r#"{"a":1,"b":2}"#).unwrap();
    /// let changes = Changes {
    ///     cleared: false,
    ///     entries: vec![("c".into(), Some(3.into())), ("a".into(), None)],
    /// };
    /// changes.apply(&mut stored);
    /// assert_eq!(sessio::Value::Object(stored), sessio::json!({"b":2,"c":3}));
    /// ```
    pub fn apply(&self, data: &mut SessionData) {
        if self.cleared {
            data.clear();
        }
        for (k, v) in &self.entries {
            match v {
                // A key already there keeps its place (as `insert` would) and needs no new
                // copy of its name.
                Some(v) => match data.get_mut(k) {
                    Some(slot) => v.clone_into(slot),
                    None => {
                        data.insert(k.clone(), v.clone());
                    }
                },
                None => {
                    data.remove(k);
                }
            }
        }
    }
}

/// A place where sessions live: inside the cookie, or in a store found by the cookie's key.
///
/// The "key" is whatever the cookie carries: a random id for server engines, the signed
/// data itself for cookie engines. Engines follow Django's store semantics:
///
/// * `load` of an unknown, expired or invalid key is `Ok(None)`, and never creates anything;
/// * `create` stores a new session under a fresh key and never overwrites one;
/// * `save` updates an existing session and fails with
///   [`Error::SessionInterrupted`](crate::Error::SessionInterrupted) when it is gone, so a
///   session deleted by a concurrent logout is never resurrected.
///
/// To write an engine, implement this trait and run the conformance suite against it
/// (`crates/sessio/tests/conformance`).
#[async_trait]
pub trait SessionEngine: Send + Sync + fmt::Debug + 'static {
    /// A short name for logs and errors (`db`, `signed-cookies`).
    fn name(&self) -> &'static str;

    /// True when the data travels in the cookie (nothing to delete or clean on the server).
    fn is_client_side(&self) -> bool;

    /// Whether the session behind this cookie value lives in the cookie. Only engines that
    /// keep some sessions in the cookie and others on the server (cookie overflow with
    /// spill) answer per value.
    fn is_client_side_key(&self, _key: &str) -> bool {
        self.is_client_side()
    }

    /// The session stored under `key`, if there is a live one.
    async fn load(&self, key: &str) -> Result<Option<SessionData>>;

    /// [`load_session`](SessionEngine::load_session) for an engine that can answer without
    /// waiting (the cookie engines, the in-process cache): `Some` holds the answer, `None`
    /// means "call `load_session`". Sessions try it first, which spares the boxed future
    /// of an async trait call (measured with the `inproc` example: about 200 instructions
    /// and one allocation per load). The default answers `None`.
    fn load_session_now(&self, key: &str) -> Option<Result<Option<LoadedSession>>> {
        let _ = key;
        None
    }

    /// As [`load`](SessionEngine::load), and also says whether the record was verified
    /// with an old (fallback) secret key, so the session is saved again under the current
    /// key. Engines that sign or encrypt override it; the default wraps `load`.
    async fn load_session(&self, key: &str) -> Result<Option<LoadedSession>> {
        Ok(self.load(key).await?.map(LoadedSession::new))
    }

    /// Stores `data` under a new key that expires at `expires`, and returns the cookie value.
    async fn create(&self, data: &SessionData, expires: OffsetDateTime) -> Result<String>;

    /// Stores `data` under exactly `key` unless a session (live or expired) already has
    /// it; returns whether it stored. Needed for hashed ids at rest and per-user indexes;
    /// the default says the engine cannot.
    async fn insert(&self, key: &str, data: &SessionData, expires: OffsetDateTime) -> Result<bool> {
        let _ = (key, data, expires);
        Err(crate::Error::Unsupported {
            engine: self.name(),
            operation: "storing a session under a chosen key (insert)",
        })
    }

    /// Replaces the data of the existing session `key`, and returns the cookie value
    /// (the same key for server engines, the newly signed value for cookie engines).
    async fn save(&self, key: &str, data: &SessionData, expires: OffsetDateTime) -> Result<String>;

    /// As [`save`](SessionEngine::save), with the data shared with the session: an engine
    /// that keeps the data it writes (the cookie engines remember what they sign) takes a
    /// reference instead of a copy. The default calls `save`.
    async fn save_shared(
        &self,
        key: &str,
        data: &Arc<SessionData>,
        expires: OffsetDateTime,
    ) -> Result<String> {
        self.save(key, data, expires).await
    }

    /// Applies one request's `changes` to the stored session `key` and returns the cookie
    /// value and the merged data; fails with
    /// [`Error::SessionInterrupted`](crate::Error::SessionInterrupted) when the session is
    /// gone. Engines override it to read, apply and write in one atomic step, so that
    /// concurrent requests never lose each other's changes; this default is a plain load
    /// then save, which is not atomic.
    async fn save_changes(
        &self,
        key: &str,
        changes: &Changes,
        expires: OffsetDateTime,
    ) -> Result<(String, SessionData)> {
        let mut data = self
            .load(key)
            .await?
            .ok_or(crate::Error::SessionInterrupted)?;
        changes.apply(&mut data);
        let value = self.save(key, &data, expires).await?;
        Ok((value, data))
    }

    /// As [`save_changes`](SessionEngine::save_changes), for a request that read version
    /// `base` of the session and now holds `data` (`base` with `changes` applied).
    ///
    /// Engines that hand out versions override it: when the stored session is still `base`
    /// they store `data` as it is, with no read and no merge (one compare-and-set), and
    /// only otherwise merge `changes` into what is stored. The default merges.
    async fn save_changes_from(
        &self,
        key: &str,
        base: &Version,
        data: &Arc<SessionData>,
        changes: &Changes,
        expires: OffsetDateTime,
    ) -> Result<Saved> {
        let _ = (base, data);
        let (cookie, merged) = self.save_changes(key, changes, expires).await?;
        Ok(Saved {
            cookie,
            merged: Some(merged),
            version: None,
        })
    }

    /// [`save_changes_from`](SessionEngine::save_changes_from) for an engine that keeps
    /// the data in this process (the in-process cache), without waiting and without a copy.
    ///
    /// `read` is the request's handle on version `base` of the data, as the engine handed
    /// it out, *without* `changes` applied. When the stored session is still `base` and
    /// `read` is the stored data itself, the engine lets go of `read`, applies `changes`
    /// where the data lies (so nothing is copied unless another request still reads that
    /// version), puts the stored result in `read` and answers `Some`. Otherwise it leaves
    /// `read` alone and answers `None`, and the caller saves with `save_changes_from`
    /// (which also reports any error). The default answers `None`.
    ///
    /// Measured with the `inproc` example on a memory-engine `write` that changes one key of
    /// a session holding a user record: sparing the copy of the map on the first write and
    /// the free of the replaced one takes the request from 27,126 to 22,437 instructions.
    fn save_changes_now(
        &self,
        key: &str,
        base: &Version,
        read: &mut Option<Arc<SessionData>>,
        changes: &Changes,
        expires: OffsetDateTime,
    ) -> Option<Saved> {
        let _ = (key, base, read, changes, expires);
        None
    }

    /// Deletes the session `key`; deleting an unknown key is not an error.
    async fn delete(&self, key: &str) -> Result<()>;

    /// Whether a session is stored under `key` (expired or not).
    async fn exists(&self, key: &str) -> Result<bool>;

    /// How many expired sessions are stored, when the engine can tell cheaply.
    async fn count_expired(&self) -> Result<Option<u64>> {
        Ok(None)
    }

    /// Deletes at most `limit` expired sessions and returns how many it deleted. Callers
    /// loop until it returns less than `limit`, so no single call holds a lock for long.
    async fn clear_expired_batch(&self, limit: usize) -> Result<u64>;

    /// Creates or upgrades the engine's schema. Engines without one do nothing.
    async fn migrate(&self) -> Result<()> {
        Ok(())
    }
}
