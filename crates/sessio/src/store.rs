//! The store contract: what a server-side store implements.
//!
//! A store keeps encoded records by id, each with a version, and nothing more. It knows
//! nothing of cookies, of Django's format, of id creation, of id hashing or of merging
//! concurrent writes: sessio's core does all of that once, for every store, around the six
//! methods below ([`ServerEngine`](crate::server::ServerEngine)).
//!
//! The one rule that makes a store safe under concurrency: [`update`](SessionStore::update)
//! with an `expected` version writes only if the record still has that version (a
//! compare-and-set), and answers [`Update::Conflict`] otherwise. The core then reads the
//! record again, applies the request's changes to it and tries again, so concurrent
//! requests never lose each other's writes. A store that implements the required methods
//! as documented is correct by construction; the conformance suite checks it.
//!
//! ```
//! use std::collections::HashMap;
//! use std::sync::Mutex;
//! use sessio::store::{Payload, Record, SessionStore, Update};
//! use sessio::engine::Version;
//! use time::OffsetDateTime;
//!
//! /// Sessions in a `HashMap`: text and expiry by id.
//! #[derive(Debug, Default)]
//! struct MapStore(Mutex<HashMap<String, (String, OffsetDateTime)>>);
//!
//! impl SessionStore for MapStore {
//!     fn name(&self) -> &'static str {
//!         "map"
//!     }
//!     async fn load(&self, id: &str) -> sessio::Result<Option<Record>> {
//!         let map = self.0.lock().unwrap();
//!         Ok(map
//!             .get(id)
//!             .filter(|(_, expires)| *expires > OffsetDateTime::now_utc())
//!             .map(|(text, _)| Record::Text(text.clone())))
//!     }
//!     async fn insert(&self, id: &str, record: &Payload<'_>, expires: OffsetDateTime) -> sessio::Result<bool> {
//!         let mut map = self.0.lock().unwrap();
//!         if map.contains_key(id) {
//!             return Ok(false);
//!         }
//!         map.insert(id.to_owned(), (record.text().to_owned(), expires));
//!         Ok(true)
//!     }
//!     async fn update(
//!         &self,
//!         id: &str,
//!         record: &Payload<'_>,
//!         expires: OffsetDateTime,
//!         expected: Option<&Version>,
//!     ) -> sessio::Result<Update> {
//!         let mut map = self.0.lock().unwrap();
//!         let Some(stored) = map.get_mut(id).filter(|(_, e)| *e > OffsetDateTime::now_utc()) else {
//!             return Ok(Update::Gone);
//!         };
//!         if expected.is_some_and(|v| v.as_stored() != Some(stored.0.as_str())) {
//!             return Ok(Update::Conflict);
//!         }
//!         *stored = (record.text().to_owned(), expires);
//!         Ok(Update::Stored(Some(record.version())))
//!     }
//!     async fn delete(&self, id: &str) -> sessio::Result<()> {
//!         self.0.lock().unwrap().remove(id);
//!         Ok(())
//!     }
//!     async fn clear_expired(&self, limit: usize) -> sessio::Result<u64> {
//!         let now = OffsetDateTime::now_utc();
//!         let mut map = self.0.lock().unwrap();
//!         let expired: Vec<String> =
//!             map.iter().filter(|(_, (_, e))| *e <= now).map(|(k, _)| k.clone()).take(limit).collect();
//!         for id in &expired {
//!             map.remove(id);
//!         }
//!         Ok(expired.len() as u64)
//!     }
//! }
//! ```

use std::fmt;
use std::future::Future;
use std::sync::{Arc, OnceLock};

use sessio_django::codec::StoreCodec;
use time::OffsetDateTime;

use crate::engine::{Changes, SessionData, Version};
use crate::error::Result;

/// A record as a store returns it from [`SessionStore::load`].
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// The encoded text the store keeps (what [`Payload::text`] gave it). The text is
    /// also the record's version: [`update`](SessionStore::update) compares it with
    /// [`Version::as_stored`].
    Text(String),
    /// Decoded data, for stores that keep sessions in this process
    /// ([`Payload::data`]), with the version the store keeps for it.
    Data {
        /// The session's data.
        data: Arc<SessionData>,
        /// Its version.
        version: Version,
    },
}

/// The outcome of [`SessionStore::update`].
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// Written; with the record's new version when the store knows it.
    Stored(Option<Version>),
    /// Not written: the record no longer has the expected version.
    Conflict,
    /// Not written: there is no live record under this id (deleted by a concurrent
    /// logout, or expired), and an update never brings one back.
    Gone,
}

/// What a store writes: a session's data, encoded by the core's codec on first use.
///
/// A store that keeps text calls [`text`](Payload::text) (Django's `session_data`, encoded
/// once however often it is asked for); a store that keeps sessions in this process takes
/// the data itself ([`shared`](Payload::shared)).
pub struct Payload<'a> {
    data: Held<'a>,
    codec: &'a StoreCodec,
    now: i64,
    text: OnceLock<String>,
}

enum Held<'a> {
    Borrowed(&'a SessionData),
    Shared(&'a Arc<SessionData>),
}

impl fmt::Debug for Payload<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Payload")
            .field("keys", &self.data().len())
            .finish_non_exhaustive()
    }
}

impl<'a> Payload<'a> {
    /// The payload of `data`, to be encoded with `codec` at `now` (Unix seconds).
    pub fn new(data: &'a Arc<SessionData>, codec: &'a StoreCodec, now: i64) -> Self {
        Self::holding(Held::Shared(data), codec, now)
    }

    /// As [`new`](Payload::new), for data the caller does not share.
    pub(crate) fn borrowed(data: &'a SessionData, codec: &'a StoreCodec, now: i64) -> Self {
        Self::holding(Held::Borrowed(data), codec, now)
    }

    fn holding(data: Held<'a>, codec: &'a StoreCodec, now: i64) -> Self {
        Self {
            data,
            codec,
            now,
            text: OnceLock::new(),
        }
    }

    /// The session's data.
    pub fn data(&self) -> &SessionData {
        match self.data {
            Held::Borrowed(data) => data,
            Held::Shared(data) => data,
        }
    }

    /// A handle on the session's data to keep: the request's own when it is shared (no
    /// copy), a copy otherwise.
    pub fn shared(&self) -> Arc<SessionData> {
        match self.data {
            Held::Borrowed(data) => Arc::new(data.clone()),
            Held::Shared(data) => data.clone(),
        }
    }

    /// The encoded text (Django's `session_data`), encoded on the first call.
    pub fn text(&self) -> &str {
        self.text.get_or_init(|| match self.data {
            Held::Borrowed(data) => self.codec.encode(data, self.now),
            // The codec's signer remembers the value with this very data: the next load
            // of the text is a lookup, not a decode.
            Held::Shared(data) => self.codec.encode_shared(data, self.now),
        })
    }

    /// The version of a record that holds [`text`](Payload::text).
    pub fn version(&self) -> Version {
        Version::stored(self.text())
    }
}

/// A server-side store of sessions: encoded records by id, with a version.
///
/// Ids reach the store already chosen (and hashed, with `hash_ids_at_rest`); records come
/// as a [`Payload`]. Every method may fail with [`Error::Store`](crate::Error::Store) when
/// the server cannot be reached; a missing schema is
/// [`Error::SchemaMissing`](crate::Error::SchemaMissing).
///
/// See the [module documentation](self) for a complete store.
pub trait SessionStore: Send + Sync + fmt::Debug + 'static {
    /// A short name for logs and errors (`db`, `cache`).
    fn name(&self) -> &'static str;

    /// The live record under `id`; `None` when there is none or it has expired. Never
    /// creates anything.
    fn load(&self, id: &str) -> impl Future<Output = Result<Option<Record>>> + Send;

    /// Stores `record` under `id` unless a record (live or expired) already has that id;
    /// answers whether it stored.
    fn insert(
        &self,
        id: &str,
        record: &Payload<'_>,
        expires: OffsetDateTime,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Replaces the live record `id` with `record`: only if it still has version
    /// `expected` when one is given ([`Update::Conflict`] otherwise), and never when there
    /// is no live record ([`Update::Gone`]).
    fn update(
        &self,
        id: &str,
        record: &Payload<'_>,
        expires: OffsetDateTime,
        expected: Option<&Version>,
    ) -> impl Future<Output = Result<Update>> + Send;

    /// Deletes the record `id`; deleting an unknown id is not an error.
    fn delete(&self, id: &str) -> impl Future<Output = Result<()>> + Send;

    /// Deletes at most `limit` expired records and answers how many it deleted. Callers
    /// loop until it answers less than `limit`, so no single call holds a lock for long.
    fn clear_expired(&self, limit: usize) -> impl Future<Output = Result<u64>> + Send;

    /// Creates or upgrades the store's schema. Optional: stores without one do nothing.
    fn migrate(&self) -> impl Future<Output = Result<()>> + Send {
        async { Ok(()) }
    }

    /// How many expired records are stored, when the store can tell cheaply. Optional.
    fn count_expired(&self) -> impl Future<Output = Result<Option<u64>>> + Send {
        async { Ok(None) }
    }

    /// Whether a record has the id `id`. Optional: by default, whether
    /// [`load`](Self::load) finds a live one; a store that keeps expired records until
    /// they are cleared may answer for those too, as Django's database backend does.
    fn exists(&self, id: &str) -> impl Future<Output = Result<bool>> + Send {
        async move { Ok(self.load(id).await?.is_some()) }
    }

    /// The store's in-process fast path, if it has one. Optional.
    fn local(&self) -> Option<&dyn LocalStore> {
        None
    }
}

/// An optional capability of stores that keep sessions in this process: answers without
/// waiting, and applies a request's changes where the data lies.
///
/// Sparing the boxed future of a load and the copy of the map on a write is worth about
/// 4,700 instructions of a memory-store `write` request (27,126 → 22,437, callgrind on
/// the `inproc` example).
pub trait LocalStore: Send + Sync {
    /// [`SessionStore::load`], answered now.
    fn load_now(&self, id: &str) -> Option<Record>;

    /// Applies `changes` to the record `id` where it lies, if it still has version `base`
    /// and `read` is the stored data itself (the request's handle on it, without the
    /// changes): lets go of `read`, applies the changes (nothing is copied unless another
    /// request still reads that version), puts the result in `read` and answers the new
    /// version. Otherwise leaves `read` alone and answers `None`, and the core saves
    /// through [`SessionStore::update`].
    fn apply_now(
        &self,
        id: &str,
        base: &Version,
        read: &mut Option<Arc<SessionData>>,
        changes: &Changes,
        expires: OffsetDateTime,
    ) -> Option<Version>;
}

/// Any [`SessionStore`], behind one type: for combinators over stores chosen at run time
/// (the cache and the database of `cached_db`) and for stores picked by configuration.
///
/// Each call goes through a boxed future (about 200 instructions and one allocation);
/// a store used on its own is wrapped directly in a
/// [`ServerEngine`](crate::server::ServerEngine) instead.
#[derive(Clone)]
pub struct AnyStore(Arc<dyn DynStore>);

impl fmt::Debug for AnyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.debug(f)
    }
}

impl AnyStore {
    /// `store`, type-erased.
    pub fn new(store: impl SessionStore) -> Self {
        Self(Arc::new(store))
    }
}

type BoxFuture<'a, T> = std::pin::Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// [`SessionStore`] with boxed futures, so that it can be a trait object.
trait DynStore: Send + Sync + 'static {
    fn debug(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result;
    fn name(&self) -> &'static str;
    fn load<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Option<Record>>;
    fn insert<'a>(
        &'a self,
        id: &'a str,
        record: &'a Payload<'a>,
        expires: OffsetDateTime,
    ) -> BoxFuture<'a, bool>;
    fn update<'a>(
        &'a self,
        id: &'a str,
        record: &'a Payload<'a>,
        expires: OffsetDateTime,
        expected: Option<&'a Version>,
    ) -> BoxFuture<'a, Update>;
    fn delete<'a>(&'a self, id: &'a str) -> BoxFuture<'a, ()>;
    fn clear_expired(&self, limit: usize) -> BoxFuture<'_, u64>;
    fn migrate(&self) -> BoxFuture<'_, ()>;
    fn count_expired(&self) -> BoxFuture<'_, Option<u64>>;
    fn exists<'a>(&'a self, id: &'a str) -> BoxFuture<'a, bool>;
    fn local(&self) -> Option<&dyn LocalStore>;
}

impl<S: SessionStore> DynStore for S {
    fn debug(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
    fn name(&self) -> &'static str {
        SessionStore::name(self)
    }
    fn load<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Option<Record>> {
        Box::pin(SessionStore::load(self, id))
    }
    fn insert<'a>(
        &'a self,
        id: &'a str,
        record: &'a Payload<'a>,
        expires: OffsetDateTime,
    ) -> BoxFuture<'a, bool> {
        Box::pin(SessionStore::insert(self, id, record, expires))
    }
    fn update<'a>(
        &'a self,
        id: &'a str,
        record: &'a Payload<'a>,
        expires: OffsetDateTime,
        expected: Option<&'a Version>,
    ) -> BoxFuture<'a, Update> {
        Box::pin(SessionStore::update(self, id, record, expires, expected))
    }
    fn delete<'a>(&'a self, id: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(SessionStore::delete(self, id))
    }
    fn clear_expired(&self, limit: usize) -> BoxFuture<'_, u64> {
        Box::pin(SessionStore::clear_expired(self, limit))
    }
    fn migrate(&self) -> BoxFuture<'_, ()> {
        Box::pin(SessionStore::migrate(self))
    }
    fn count_expired(&self) -> BoxFuture<'_, Option<u64>> {
        Box::pin(SessionStore::count_expired(self))
    }
    fn exists<'a>(&'a self, id: &'a str) -> BoxFuture<'a, bool> {
        Box::pin(SessionStore::exists(self, id))
    }
    fn local(&self) -> Option<&dyn LocalStore> {
        SessionStore::local(self)
    }
}

impl SessionStore for AnyStore {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    async fn load(&self, id: &str) -> Result<Option<Record>> {
        self.0.load(id).await
    }
    async fn insert(
        &self,
        id: &str,
        record: &Payload<'_>,
        expires: OffsetDateTime,
    ) -> Result<bool> {
        self.0.insert(id, record, expires).await
    }
    async fn update(
        &self,
        id: &str,
        record: &Payload<'_>,
        expires: OffsetDateTime,
        expected: Option<&Version>,
    ) -> Result<Update> {
        self.0.update(id, record, expires, expected).await
    }
    async fn delete(&self, id: &str) -> Result<()> {
        self.0.delete(id).await
    }
    async fn clear_expired(&self, limit: usize) -> Result<u64> {
        self.0.clear_expired(limit).await
    }
    async fn migrate(&self) -> Result<()> {
        self.0.migrate().await
    }
    async fn count_expired(&self) -> Result<Option<u64>> {
        self.0.count_expired().await
    }
    async fn exists(&self, id: &str) -> Result<bool> {
        self.0.exists(id).await
    }
    fn local(&self) -> Option<&dyn LocalStore> {
        self.0.local()
    }
}
