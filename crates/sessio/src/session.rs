//! The `Session` handle that handlers use.

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::Value;
use http::HeaderValue;
use serde::de::DeserializeOwned;
use serde::Serialize;
use time::OffsetDateTime;

use crate::config::Concurrency;
use crate::config::Config;
use crate::engine::{Changes, SessionData, SessionEngine, Version};
use crate::error::{Error, Result};
use crate::expiry::{self, Expiry};
use crate::users::{self, Extras};

use crate::users::owner_of;

/// Idle and absolute session lifetimes, kept inside the session data (so cookie engines
/// carry them in the signed or encrypted payload) and enforced on every load.
mod timeouts {
    use crate::config::Config;
    use crate::engine::SessionData;
    use crate::Value;

    pub(super) use sessio_django::keys::{ACTIVE as ACTIVE_KEY, CREATED as CREATED_KEY};

    fn secs(data: &SessionData, key: &str) -> Option<i64> {
        data.get(key).and_then(Value::as_i64)
    }

    /// A limit in whole seconds; saturating, though the configuration bounds it far below.
    fn limit_secs(t: std::time::Duration) -> i64 {
        i64::try_from(t.as_secs()).unwrap_or(i64::MAX)
    }

    /// Whether either limit is set (only then do sessions carry markers, or need the time).
    pub(super) fn enabled(config: &Config) -> bool {
        config.absolute_timeout().is_some() || config.idle_timeout().is_some()
    }

    /// Whether the session is past its absolute or idle limit at `now`.
    pub(super) fn timed_out(config: &Config, data: &SessionData, now: i64) -> bool {
        deadline(config, data, now).is_some_and(|d| d <= now)
    }

    /// The earliest of the absolute and idle deadlines, when either limit is set.
    pub(super) fn deadline(config: &Config, data: &SessionData, now: i64) -> Option<i64> {
        let absolute = config.absolute_timeout().map(|t| {
            secs(data, CREATED_KEY)
                .unwrap_or(now)
                .saturating_add(limit_secs(t))
        });
        let idle = config.idle_timeout().map(|t| {
            secs(data, ACTIVE_KEY)
                .unwrap_or(now)
                .saturating_add(limit_secs(t))
        });
        match (absolute, idle) {
            (Some(a), Some(i)) => Some(a.min(i)),
            (a, i) => a.or(i),
        }
    }

    /// Whether to record activity now (at most every tenth of the idle limit).
    pub(super) fn needs_activity_stamp(
        config: &Config,
        data: Option<&SessionData>,
        now: i64,
    ) -> bool {
        let (Some(idle), Some(data)) = (config.idle_timeout(), data) else {
            return false;
        };
        let step = (limit_secs(idle) / 10).max(1);
        // Stored markers are data: a far-off one must not overflow the subtraction.
        secs(data, ACTIVE_KEY).is_none_or(|active| now.saturating_sub(active) >= step)
    }

    /// Adds the markers a limited session needs; returns the keys it wrote.
    pub(super) fn stamp(config: &Config, data: &mut SessionData, now: i64) -> Vec<&'static str> {
        let mut written = Vec::new();
        if config.absolute_timeout().is_some() && secs(data, CREATED_KEY).is_none() {
            data.insert(CREATED_KEY.into(), Value::from(now));
            written.push(CREATED_KEY);
        }
        if config.idle_timeout().is_some() && secs(data, ACTIVE_KEY).is_none() {
            data.insert(ACTIVE_KEY.into(), Value::from(now));
            written.push(ACTIVE_KEY);
        }
        written
    }
}

/// The name Django gives the custom expiry inside the session data.
pub(crate) use sessio_django::keys::EXPIRY as EXPIRY_KEY;

/// One visitor's session: a cheap-to-clone handle for the current request.
///
/// Data is loaded from the engine on first use, not before: a handler that never touches
/// the session costs no store round trip. Reads set the *accessed* flag, writes the
/// *modified* flag, exactly as Django's `SessionBase` does, and the middleware decides from
/// those flags whether to save and what cookie to send.
///
/// ```
/// use sessio::Session;
///
/// async fn add_to_cart(session: Session, item: u32) -> sessio::Result<usize> {
///     let mut cart: Vec<u32> = session.get("cart").await?.unwrap_or_default();
///     cart.push(item);
///     let n = cart.len();
///     session.insert("cart", cart).await?;
///     Ok(n)
/// }
/// ```
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Arc<dyn SessionEngine>,
    config: Arc<Config>,
    extras: Arc<Extras>,
    client: ClientInfo,
    cookie: RequestCookie,
    state: Mutex<State>,
    // Serialises the first load so two tasks sharing a handle do not both hit the store.
    load_gate: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct State {
    key_initialised: bool,
    // Whether the request carried the session cookie at all (set with the key).
    had_cookie: bool,
    // Shared, not copied, with the loads and saves that need it (for a cookie engine it
    // is the whole signed cookie).
    key: Option<Arc<str>>,
    // None until loaded (Django's `_session_cache` is absent until first access). Shared
    // with the store when it can (copied on the first write), and with a save in flight.
    data: Option<Arc<SessionData>>,
    // Writes not yet applied to `data` because it is shared (see `State::insert`).
    pending: Vec<(String, Value)>,
    accessed: bool,
    modified: bool,
    // What this request changed, for merging saves (`Concurrency::Merge`).
    cleared: bool,
    changed: Vec<String>,
    // A login (or a refresh of "last seen") to record in the owner's index after the save.
    owner_pending: Option<String>,
    // Whether `owner_pending` is a new entry (a login or a new id), not a refresh.
    owner_fresh: bool,
    // A revocable cookie session's id that a cycle replaced, with when copies of its
    // cookie expire: retired when the new cookie is saved (and the user is known).
    retiring: Option<(String, OffsetDateTime)>,
    // The stored version this request's data derives from, for an unraced save.
    version: Option<Version>,
}

/// Who made the request, for a user's session list.
#[derive(Debug, Clone, Default)]
pub(crate) struct ClientInfo {
    // Kept as the header (a reference-counted copy): read only when a login is recorded.
    pub(crate) user_agent: Option<HeaderValue>,
    pub(crate) ip: Option<String>,
}

impl State {
    /// Django's `is_empty`: neither an id nor data (the key must be initialised).
    fn is_empty(&self) -> bool {
        self.is_empty_with_id(self.key.is_some())
    }

    /// `is_empty` for a session that has an id or not.
    fn is_empty_with_id(&self, has_id: bool) -> bool {
        !has_id && self.pending.is_empty() && self.data.as_deref().is_none_or(|d| d.is_empty())
    }

    /// The value under `key`, deferred writes included.
    fn value(&self, key: &str) -> Option<&Value> {
        match self.pending.iter().find(|(k, _)| k == key) {
            Some((_, v)) => Some(v),
            None => self.data.as_deref().and_then(|d| d.get(key)),
        }
    }

    /// Stores `value` under `key` and marks it changed.
    ///
    /// While the data is shared (with the store it came from, as the memory engine shares
    /// it), an ordinary key's write waits in `pending` instead of copying the whole map: an
    /// engine that can apply the changes where the data lies then saves with no copy at all
    /// ([`SessionEngine::save_changes_now`]), and anything else that needs the whole map
    /// applies them first ([`State::settle`]). Reserved keys (`_session_expiry`, the
    /// timeout and login stamps, all starting with `_`) are written at once, so the code
    /// that reads them from the map directly never misses a deferred one.
    fn insert(&mut self, key: &str, value: Value) {
        let shared = self
            .data
            .as_mut()
            .is_some_and(|d| Arc::get_mut(d).is_none());
        if shared && !key.starts_with('_') {
            match self.pending.iter_mut().find(|(k, _)| k == key) {
                Some(entry) => entry.1 = value,
                None => self.pending.push((key.to_owned(), value)),
            }
        } else {
            self.data_mut().insert(key.to_owned(), value);
        }
        self.touch(key);
    }

    /// Applies the deferred writes, copying the data if it is shared.
    fn settle(&mut self) {
        if !self.pending.is_empty() {
            let data = Arc::make_mut(self.data.get_or_insert_with(Default::default));
            for (k, v) in self.pending.drain(..) {
                data.insert(k, v);
            }
        }
    }

    /// The whole data, deferred writes applied.
    fn view(&mut self) -> Option<&SessionData> {
        self.settle();
        self.data.as_deref()
    }

    /// The data to change in place (a copy of it if it is shared).
    fn data_mut(&mut self) -> &mut SessionData {
        self.settle();
        Arc::make_mut(self.data.get_or_insert_with(Default::default))
    }

    /// Replaces the data (and drops any deferred write).
    fn set_data(&mut self, data: Arc<SessionData>) {
        self.data = Some(data);
        self.pending.clear();
    }

    fn touch(&mut self, key: &str) {
        self.modified = true;
        if !self.changed.iter().any(|k| k == key) {
            self.changed.push(key.to_owned());
        }
    }

    fn changes(&self) -> Changes {
        let mut entries: Vec<_> = self
            .changed
            .iter()
            .map(|k| (k.clone(), self.value(k).cloned()))
            .collect();
        if entries.len() > 1 {
            // Removals first, then the writes in the order the keys now have here: applied
            // to what is stored, new keys then land in the same order as in this request's
            // data (a key removed and written again goes last, as in Django's dict), not
            // in the order they were first touched.
            entries.sort_by_cached_key(|(k, v)| v.as_ref().map(|_| self.position(k)));
        }
        Changes {
            cleared: self.cleared,
            entries,
        }
    }

    /// Where `key` is in the data, deferred writes (which come after every stored key
    /// they do not replace) included.
    fn position(&self, key: &str) -> usize {
        let stored = self.data.as_deref();
        match stored.and_then(|d| d.keys().position(|k| k == key)) {
            Some(i) => i,
            None => {
                let len = stored.map_or(0, |d| d.len());
                len + self
                    .pending
                    .iter()
                    .position(|(k, _)| k == key)
                    .unwrap_or(usize::MAX - len)
            }
        }
    }
}

/// The session cookie of the request, parsed only when someone asks for it.
enum RequestCookie {
    Value(Option<String>),
    Headers(CookieHeaders),
}

/// The request's `Cookie` headers (reference-counted copies): almost always one, which
/// needs no allocation.
enum CookieHeaders {
    None,
    One(HeaderValue),
    Many(Vec<HeaderValue>),
}

impl RequestCookie {
    /// The value of cookie `name`, borrowed where it can be.
    fn get(&self, name: &str) -> Option<Cow<'_, str>> {
        match self {
            RequestCookie::Value(v) => v.as_deref().map(Cow::Borrowed),
            RequestCookie::Headers(CookieHeaders::None) => None,
            RequestCookie::Headers(CookieHeaders::One(h)) => {
                crate::cookie::find_value(std::iter::once(h), name)
            }
            RequestCookie::Headers(CookieHeaders::Many(hs)) => {
                crate::cookie::find_value(hs.iter(), name)
            }
        }
    }
}

/// What the middleware needs to know at the end of a request, read under one lock.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Flags {
    pub(crate) accessed: bool,
    pub(crate) modified: bool,
    pub(crate) empty: bool,
    pub(crate) loaded: bool,
    pub(crate) has_id: bool,
    pub(crate) had_cookie: bool,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.lock();
        f.debug_struct("Session")
            .field("engine", &self.inner.engine.name())
            .field("loaded", &st.data.is_some())
            .field("accessed", &st.accessed)
            .field("modified", &st.modified)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A session for the given cookie value (or none), outside any HTTP middleware: for
    /// background jobs, tools and tests.
    ///
    /// ```
    /// # async fn run() -> sessio::Result<()> {
    /// use std::sync::Arc;
    /// let config = Arc::new(
    ///     sessio::Config::builder()
    ///         .secret_key("an-example-secret-key-that-is-long-enough-to-pass-checks")
    ///         .engine(sessio::EngineKind::SignedCookies)
    ///         .build()?,
    /// );
    /// let engine = sessio::engine::open(&config).await?;
    /// let session = sessio::Session::new(engine, config, None);
    /// session.insert("user_id", 42).await?;
    /// session.save().await?;
    /// let cookie_value = session.id().unwrap();
    /// # Ok(()) }
    /// ```
    pub fn new(
        engine: Arc<dyn SessionEngine>,
        config: Arc<Config>,
        cookie_value: Option<String>,
    ) -> Self {
        let extras = Arc::new(Extras::new(&config, &engine, None));
        Self::build(
            engine,
            config,
            extras,
            ClientInfo::default(),
            RequestCookie::Value(cookie_value),
        )
    }

    /// A session sharing a manager's extras (id hashing, user index), outside HTTP.
    pub(crate) fn with_extras(
        engine: Arc<dyn SessionEngine>,
        config: Arc<Config>,
        extras: Arc<Extras>,
        cookie_value: Option<String>,
    ) -> Self {
        let cookie = RequestCookie::Value(cookie_value);
        Self::build(engine, config, extras, ClientInfo::default(), cookie)
    }

    pub(crate) fn from_headers<'a>(
        engine: Arc<dyn SessionEngine>,
        config: Arc<Config>,
        extras: Arc<Extras>,
        client: ClientInfo,
        mut headers: impl Iterator<Item = &'a HeaderValue>,
    ) -> Self {
        let headers = match (headers.next(), headers.next()) {
            (None, _) => CookieHeaders::None,
            (Some(one), None) => CookieHeaders::One(one.clone()),
            (Some(a), Some(b)) => {
                let mut all = vec![a.clone(), b.clone()];
                all.extend(headers.cloned());
                CookieHeaders::Many(all)
            }
        };
        Self::build(
            engine,
            config,
            extras,
            client,
            RequestCookie::Headers(headers),
        )
    }

    fn build(
        engine: Arc<dyn SessionEngine>,
        config: Arc<Config>,
        extras: Arc<Extras>,
        client: ClientInfo,
        cookie: RequestCookie,
    ) -> Self {
        Session {
            inner: Arc::new(Inner {
                engine,
                config,
                extras,
                client,
                cookie,
                state: Mutex::new(State::default()),
                load_gate: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// Whether logins of this (server) engine are indexed per user.
    fn tracks_users(&self) -> bool {
        self.inner.extras.index.is_some() && !self.inner.extras.generations
    }

    /// Whether ids are hashed before they reach the engine (server engines only).
    fn hashes(&self) -> bool {
        self.inner.extras.hashing() && !self.inner.engine.is_client_side()
    }

    /// The key the engine knows a session by.
    fn stored<'k>(&self, key: &'k str) -> Cow<'k, str> {
        if self.hashes() {
            Cow::Owned(self.inner.extras.stored(key))
        } else {
            Cow::Borrowed(key)
        }
    }

    /// Stores a new session and returns its cookie value.
    async fn store_new(&self, data: &SessionData, expires: OffsetDateTime) -> Result<String> {
        if !self.hashes() {
            return self.inner.engine.create(data, expires).await;
        }
        // The cookie gets a fresh random id; the engine gets only its keyed hash.
        for _ in 0..100 {
            let raw = crate::key::new_session_key()?;
            let stored = self.inner.extras.stored(&raw);
            if self.inner.engine.insert(&stored, data, expires).await? {
                return Ok(raw);
            }
        }
        Err(Error::KeyCreation { attempts: 100 })
    }

    /// Loads the session of cookie value `key` (finding ids hashed under a fallback key,
    /// and moving them to the current one).
    async fn load_record(&self, key: &str) -> Result<Option<crate::engine::LoadedSession>> {
        if !self.hashes() {
            // Hashed ids below keep the plain async call: trying `load_session_now` there
            // too made this future bigger and a memory-engine write ~1,900 instructions
            // dearer (callgrind, `inproc`).
            if let Some(answer) = self.inner.engine.load_session_now(key) {
                return answer;
            }
            return self.inner.engine.load_session(key).await;
        }
        let stored = self.inner.extras.stored(key);
        if let Some(found) = self.inner.engine.load_session(&stored).await? {
            return Ok(Some(found));
        }
        for i in 1..=self.inner.extras.fallback_count() {
            let old = self.inner.extras.stored_with(i, key);
            if let Some(found) = self.inner.engine.load_session(&old).await? {
                let expires = self.expiry_date_of(&found.data);
                if self
                    .inner
                    .engine
                    .insert(&stored, &found.data, expires)
                    .await?
                {
                    self.inner.engine.delete(&old).await?;
                    // The user's index follows the session to its new key.
                    if let (Some(user), true) = (owner_of(Some(&found.data)), self.tracks_users()) {
                        self.inner
                            .extras
                            .index_move(&self.inner.config, &user, &old, &stored, expires)
                            .await?;
                    }
                }
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn init_key(&self, st: &mut State) {
        if !st.key_initialised {
            st.key_initialised = true;
            let (key, had_cookie) = self.cookie_key();
            st.had_cookie = had_cookie;
            st.key = key.map(|k| Arc::from(k.as_ref()));
        }
    }

    /// The session key the request's cookie holds, if it is a valid one (borrowed where it
    /// can be), and whether the request carried the session cookie at all.
    fn cookie_key(&self) -> (Option<Cow<'_, str>>, bool) {
        let value = self.inner.cookie.get(self.inner.config.cookie_name());
        let had_cookie = value.is_some();
        // A name of sessio's own records (user index, revocations) is never a session id.
        let key =
            value.filter(|v| crate::key::validate(Some(v)).is_some() && !users::is_record_name(v));
        (key, had_cookie)
    }

    /// Loads the data if it is not loaded yet, and marks the session accessed.
    async fn ensure_loaded(&self) -> Result<()> {
        {
            let mut st = self.lock();
            st.accessed = true;
            if st.data.is_some() {
                return Ok(());
            }
        }
        // Uncontended unless two tasks share this handle: skip the async acquire then.
        let _gate = match self.inner.load_gate.try_lock() {
            Ok(gate) => gate,
            Err(_) => self.inner.load_gate.lock().await,
        };
        let key = {
            let mut st = self.lock();
            if st.data.is_some() {
                return Ok(());
            }
            self.init_key(&mut st);
            st.key.clone()
        };
        let mut loaded = match &key {
            Some(k) => self.load_record(k).await?,
            None => None,
        };
        // An unknown id may be one a login retired: then the cookie was copied.
        if loaded.is_none() && self.inner.extras.detects_stolen() {
            if let Some(k) = key
                .as_deref()
                .filter(|_| !self.inner.engine.is_client_side())
            {
                let now = self.inner.config.clock().now();
                self.inner
                    .extras
                    .check_retired(&self.inner.engine, k, now)
                    .await?;
            }
        }
        // Only timeouts and the user index need the time: no clock read otherwise.
        let config = &self.inner.config;
        let needs_time = timeouts::enabled(config) || self.tracks_users();
        let now = if needs_time {
            config.clock().now().unix_timestamp()
        } else {
            0
        };
        let mut timed_out = loaded
            .as_ref()
            .is_some_and(|l| timeouts::timed_out(&self.inner.config, &l.data, now));
        if let (Some(l), false) = (&loaded, timed_out) {
            timed_out = self.cookie_revoked(&l.data).await?;
        }
        if timed_out {
            // Past its idle or absolute limit, or revoked: the record goes, and the id is
            // not reused.
            if let Some(k) = key
                .as_deref()
                .filter(|k| !self.inner.engine.is_client_side_key(k))
            {
                self.inner.engine.delete(&self.stored(k)).await?;
            }
            loaded = None;
        }
        let mut st = self.lock();
        if st.data.is_some() {
            // cleared while we were loading: the clear wins.
            return Ok(());
        }
        match loaded {
            Some(loaded) => {
                st.set_data(loaded.data);
                st.version = loaded.version;
                // Key rotation: a record verified by an old key is re-issued under the
                // current one at the end of this request.
                st.modified |= loaded.stale_key;
                // Activity keeps an idle-limited session alive (written at most every
                // tenth of the limit, so reads do not all turn into writes).
                if timeouts::needs_activity_stamp(&self.inner.config, st.data.as_deref(), now) {
                    st.data_mut()
                        .insert(timeouts::ACTIVE_KEY.into(), Value::from(now));
                    st.touch(timeouts::ACTIVE_KEY);
                }
                // A logged-in server session refreshes "last seen" in its owner's index,
                // at most every few minutes.
                if self.tracks_users() {
                    let owner = owner_of(st.data.as_deref());
                    let seen = st
                        .data
                        .as_ref()
                        .and_then(|d| d.get(users::SEEN_KEY))
                        .and_then(Value::as_i64);
                    if owner.is_some()
                        && seen.is_none_or(|s| now.saturating_sub(s) >= users::SEEN_EVERY)
                    {
                        st.data_mut()
                            .insert(users::SEEN_KEY.into(), Value::from(now));
                        st.touch(users::SEEN_KEY);
                        st.owner_pending = owner;
                        st.owner_fresh = false;
                    }
                }
            }
            None => {
                st.set_data(Arc::default());
                if timed_out {
                    st.key = None;
                } else if let Some(k) = key.as_deref() {
                    if self.inner.engine.is_client_side_key(k) {
                        // Django's signed_cookies calls create() on a bad cookie, which marks
                        // the session modified: the response replaces the cookie.
                        st.modified = true;
                    } else {
                        // Never adopt a key the store does not know (CVE-2015-5143).
                        st.key = None;
                    }
                }
            }
        }
        Ok(())
    }

    async fn with_data<R>(&self, f: impl FnOnce(&mut State) -> R) -> Result<R> {
        self.ensure_loaded().await?;
        let mut st = self.lock();
        Ok(f(&mut st))
    }

    /// The value stored under `key`, deserialised into `T`.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        // Deserialised from the stored value in place: no copy of it.
        self.with_data(|st| match st.value(key) {
            None => Ok(None),
            Some(v) => T::deserialize(v).map(Some).map_err(|source| Error::Serde {
                key: key.to_owned(),
                source,
            }),
        })
        .await?
    }

    /// The raw JSON value stored under `key`.
    pub async fn get_value(&self, key: &str) -> Result<Option<Value>> {
        self.with_data(|st| st.value(key).cloned()).await
    }

    /// Stores `value` under `key`.
    pub async fn insert<T: Serialize>(&self, key: &str, value: T) -> Result<()> {
        let value = sessio_django::value::to_value(&value).map_err(|source| Error::Serde {
            key: key.to_owned(),
            source,
        })?;
        self.insert_value(key, value).await
    }

    /// Stores a raw JSON value under `key`.
    pub async fn insert_value(&self, key: &str, value: Value) -> Result<()> {
        self.with_data(|st| st.insert(key, value)).await
    }

    /// Removes `key` and returns its value (Django's `pop`). The session counts as modified
    /// only if the key was there.
    pub async fn remove<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        match self.remove_value(key).await? {
            None => Ok(None),
            Some(v) => sessio_django::value::from_value(v)
                .map(Some)
                .map_err(|source| Error::Serde {
                    key: key.to_owned(),
                    source,
                }),
        }
    }

    /// Removes `key` and returns its raw value.
    pub async fn remove_value(&self, key: &str) -> Result<Option<Value>> {
        self.with_data(|st| {
            st.settle();
            let removed = st.data.as_mut().and_then(|d| Arc::make_mut(d).remove(key));
            if removed.is_some() {
                st.touch(key);
            }
            removed
        })
        .await
    }

    /// Whether `key` is in the session.
    pub async fn contains(&self, key: &str) -> Result<bool> {
        self.with_data(|st| st.value(key).is_some()).await
    }

    /// The keys, in insertion order.
    pub async fn keys(&self) -> Result<Vec<String>> {
        self.with_data(|st| {
            st.view()
                .map(|d| d.keys().cloned().collect())
                .unwrap_or_default()
        })
        .await
    }

    /// A copy of all the data.
    pub async fn data(&self) -> Result<SessionData> {
        self.with_data(|st| st.view().cloned().unwrap_or_default())
            .await
    }

    /// Stores every entry of `entries` (Django's `update`).
    pub async fn update(&self, entries: SessionData) -> Result<()> {
        self.with_data(|st| {
            for k in entries.keys() {
                st.touch(k);
            }
            st.data_mut().extend(entries);
        })
        .await
    }

    /// Returns the value under `key`, storing `default` first if there is none (Django's
    /// `setdefault`).
    pub async fn get_or_insert<T: Serialize + DeserializeOwned>(
        &self,
        key: &str,
        default: T,
    ) -> Result<T> {
        if let Some(v) = self.get(key).await? {
            return Ok(v);
        }
        self.insert(key, &default).await?;
        Ok(default)
    }

    /// Empties the session without loading it; the record stays (use [`Session::flush`]
    /// to log out).
    pub fn clear(&self) {
        let mut st = self.lock();
        st.set_data(Arc::default());
        st.accessed = true;
        st.modified = true;
        st.cleared = true;
        st.changed.clear();
    }

    /// Logs out: deletes the data and the stored record, and forgets the id, so the
    /// response expires the cookie.
    pub async fn flush(&self) -> Result<()> {
        if self.inner.extras.revocable_cookies() {
            // A cookie session's own id is inside the cookie: read it, so that logout
            // can end every copy of the cookie.
            self.ensure_loaded().await?;
        }
        let (key, owner, revoke) = {
            let mut st = self.lock();
            let data = st.view();
            let owner = owner_of(data);
            let revoke = data.and_then(|d| {
                let sid = d.get(users::SID_KEY)?.as_str()?.to_owned();
                Some((
                    sid,
                    users::outliving(&self.inner.config, self.expiry_date_of(d)),
                ))
            });
            // An id cycled earlier in this request ends too.
            let cycled = st.retiring.take();
            st.set_data(Arc::default());
            st.accessed = true;
            st.modified = true;
            st.owner_pending = None;
            st.version = None;
            self.init_key(&mut st);
            (st.key.take(), owner, revoke.into_iter().chain(cycled))
        };
        if self.inner.extras.revocable_cookies() {
            for (sid, until) in revoke {
                self.inner.extras.revoke_sid(&sid, until).await?;
            }
        }
        if let Some(key) = key {
            let stored = self.stored(&key);
            self.inner.engine.delete(&stored).await?;
            if let (Some(user), false) = (owner, self.inner.engine.is_client_side_key(&key)) {
                if self.tracks_users() {
                    self.inner
                        .extras
                        .index_remove(&user, &[stored.into_owned()])
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// Gives the session a new id and keeps its data (call it on login, against session
    /// fixation). The new record is stored before the old one is deleted, so a failure in
    /// between loses nothing.
    pub async fn cycle_id(&self) -> Result<()> {
        self.ensure_loaded().await?;
        let in_cookie = match self.id() {
            Some(k) => self.inner.engine.is_client_side_key(&k),
            None => self.inner.engine.is_client_side(),
        };
        if in_cookie {
            // A cookie engine's "id" is its signed content: re-signing is the cycle. A
            // revocable cookie also gets a new id inside, and the old one is retired.
            let mut st = self.lock();
            st.modified = true;
            if !self.inner.extras.revocable_cookies() {
                return Ok(());
            }
            let retiring = st.view().and_then(|d| {
                let sid = d.get(users::SID_KEY)?.as_str()?.to_owned();
                Some((
                    sid,
                    users::outliving(&self.inner.config, self.expiry_date_of(d)),
                ))
            });
            if let Some(retiring) = retiring {
                st.insert(users::SID_KEY, Value::from(crate::key::new_session_key()?));
                // A second cycle in one request retires the first id, not the middle one.
                st.retiring.get_or_insert(retiring);
            }
            return Ok(());
        }
        let (old_key, data, expires) = {
            let mut st = self.lock();
            self.init_key(&mut st);
            st.settle();
            let data = st.data.clone().unwrap_or_default();
            let expires = self.expiry_date_of(&data);
            (st.key.clone(), data, expires)
        };
        let new_key = self.store_new(&data, expires).await?;
        let new_key_copy = new_key.clone();
        let owner = owner_of(Some(&data));
        {
            let mut st = self.lock();
            st.key = Some(new_key.into());
            st.version = None;
            st.modified = true;
            if owner.is_some() && self.tracks_users() {
                // The new id joins the owner's index when the session is saved.
                st.owner_pending = owner.clone();
                st.owner_fresh = true;
            }
        }
        if let Some(old) = old_key {
            let stored = self.stored(&old);
            if self.inner.extras.detects_stolen() && !self.inner.engine.is_client_side() {
                // Kept until a cookie holding the old id could no longer be valid.
                let now = self.inner.config.clock().now().unix_timestamp();
                self.inner
                    .extras
                    .retire_id(
                        &self.inner.engine,
                        &old,
                        &self.stored(&new_key_copy),
                        owner.as_deref(),
                        now,
                        expires,
                    )
                    .await?;
            }
            self.inner.engine.delete(&stored).await?;
            if let (Some(user), true) = (owner, self.tracks_users()) {
                self.inner
                    .extras
                    .index_remove(&user, &[stored.into_owned()])
                    .await?;
            }
        }
        Ok(())
    }

    /// Sets when the session expires. See [`Expiry`].
    pub async fn set_expiry(&self, expiry: Expiry) -> Result<()> {
        let value = match expiry {
            Expiry::Default => return self.remove_value(EXPIRY_KEY).await.map(|_| ()),
            Expiry::OnInactivity(d) => Value::from(d.whole_seconds()),
            Expiry::AtDateTime(at) => Value::String(expiry::isoformat(at)),
            Expiry::OnBrowserClose => Value::from(0),
        };
        self.insert_value(EXPIRY_KEY, value).await
    }

    /// The expiry as set with [`Session::set_expiry`] (`Expiry::Default` when unset).
    pub async fn expiry(&self) -> Result<Expiry> {
        self.with_data(|st| expiry::from_data(st.data.as_deref()))
            .await
    }

    /// Seconds until the session expires, counted from now (Django's `get_expiry_age`).
    pub async fn expiry_age(&self) -> Result<i64> {
        let now = self.inner.config.clock().now();
        self.with_data(|st| expiry::age(st.data.as_deref(), now, self.inner.config.cookie_age()))
            .await
    }

    /// When the session expires, if saved now (Django's `get_expiry_date`).
    pub async fn expiry_date(&self) -> Result<OffsetDateTime> {
        self.with_data(|st| self.expiry_date_of(st.data.as_deref().unwrap_or(&SessionData::new())))
            .await
    }

    fn expiry_date_of(&self, data: &SessionData) -> OffsetDateTime {
        let now = self.inner.config.clock().now();
        let date = expiry::date(Some(data), now, self.inner.config.cookie_age());
        // The idle and absolute limits end the stored record too.
        match timeouts::deadline(&self.inner.config, data, now.unix_timestamp()) {
            Some(deadline) => {
                date.min(OffsetDateTime::from_unix_timestamp(deadline).unwrap_or(date))
            }
            None => date,
        }
    }

    /// Whether the cookie ends when the browser closes (Django's
    /// `get_expire_at_browser_close`).
    pub async fn expires_at_browser_close(&self) -> Result<bool> {
        self.with_data(|st| {
            expiry::at_browser_close(
                st.data.as_deref(),
                self.inner.config.expire_at_browser_close(),
            )
        })
        .await
    }

    /// True when there is neither an id nor data (Django's `is_empty`).
    pub fn is_empty(&self) -> bool {
        let mut st = self.lock();
        self.init_key(&mut st);
        st.is_empty()
    }

    /// The session id: the store's key for server engines, the signed value for cookie
    /// engines. `None` until the session has been saved under a key.
    pub fn id(&self) -> Option<String> {
        let mut st = self.lock();
        self.init_key(&mut st);
        st.key.as_deref().map(str::to_owned)
    }

    /// Whether the data was read or written in this request.
    pub fn accessed(&self) -> bool {
        self.lock().accessed
    }

    /// Whether the data was changed in this request.
    pub fn modified(&self) -> bool {
        self.lock().modified
    }

    /// The engine this session lives in.
    pub fn engine(&self) -> &Arc<dyn SessionEngine> {
        &self.inner.engine
    }

    /// The configuration in force.
    pub fn config(&self) -> &Arc<Config> {
        &self.inner.config
    }

    /// Saves the session now: a new record (and id) when it has none, otherwise an update.
    /// The middleware calls this for you at the end of a request.
    ///
    /// Fails with [`Error::SessionInterrupted`] when the record was deleted in the
    /// meantime, for example by a logout in a concurrent request.
    pub async fn save(&self) -> Result<()> {
        let key = {
            let mut st = self.lock();
            self.init_key(&mut st);
            st.key.clone()
        };
        if key.is_some() {
            // An existing session saves what it holds, so load it first (the load may also
            // find the key unknown, and then a new session is created instead).
            self.ensure_loaded().await?;
        }
        let (key, changes, base, expires) = {
            let mut st = self.lock();
            if self.inner.extras.revocable_cookies()
                && st.value(users::SID_KEY).is_none()
                && key
                    .as_deref()
                    .is_none_or(|k| self.inner.engine.is_client_side_key(k))
            {
                // A revocable cookie session carries an id of its own, so that logout
                // and a cycled id can end every copy of the cookie.
                st.insert(users::SID_KEY, Value::from(crate::key::new_session_key()?));
            }
            if timeouts::enabled(&self.inner.config) {
                let now = self.inner.config.clock().now().unix_timestamp();
                let stamped = timeouts::stamp(&self.inner.config, st.data_mut(), now);
                for k in stamped {
                    st.touch(k);
                }
            }
            let changes = st.changes();
            // Deferred writes are never to the reserved keys the dates come from (see
            // `State::insert`), so the data as it lies gives the right date.
            let expires = match st.data.as_deref() {
                Some(data) => self.expiry_date_of(data),
                None => self.expiry_date_of(&SessionData::new()),
            };
            (st.key.clone(), changes, st.version.clone(), expires)
        };
        let merge = self.inner.config.concurrency() == Concurrency::Merge
            && key
                .as_deref()
                .is_some_and(|k| !self.inner.engine.is_client_side_key(k));
        // Unraced since it was read, in an engine that holds the data here: the changes
        // are applied where the data lies (no copy, no wait).
        // The store's key (a keyed hash when ids are hashed at rest), computed once.
        let stored = key.as_deref().map(|k| self.stored(k));
        let in_place = match (&key, &stored, &base) {
            (Some(k), Some(stored), Some(base)) if merge => {
                let mut st = self.lock();
                let saved = self.inner.engine.save_changes_now(
                    stored,
                    base,
                    &mut st.data,
                    &changes,
                    expires,
                );
                if saved.is_some() {
                    // Applied with the changes, which hold every deferred write.
                    st.pending.clear();
                }
                saved.map(|saved| (k.clone(), saved))
            }
            _ => None,
        };
        let (cookie_value, merged, version) = match in_place {
            Some((k, saved)) => (
                self.cookie_for(k, saved.cookie),
                saved.merged,
                saved.version,
            ),
            None => {
                let data = {
                    let mut st = self.lock();
                    st.settle();
                    st.data.get_or_insert_with(Default::default).clone()
                };
                let key = key.clone().zip(stored.as_deref());
                self.save_data(key, base, merge, &data, &changes, expires)
                    .await?
            }
        };
        // A cookie past the browsers' limit would be dropped without a word: refuse it.
        let size = self.inner.config.cookie_name().len() + cookie_value.len();
        if size > crate::cookie::MAX_COOKIE_BYTES {
            return Err(Error::CookieTooLarge {
                name: self.inner.config.cookie_name().to_owned(),
                size,
                limit: crate::cookie::MAX_COOKIE_BYTES,
            });
        }
        let owner = {
            let mut st = self.lock();
            st.key = Some(cookie_value.clone());
            st.version = version;
            if let Some(merged) = merged {
                st.set_data(Arc::new(merged));
            }
            st.cleared = false;
            st.changed.clear();
            (st.owner_pending.take(), std::mem::take(&mut st.owner_fresh))
        };
        let retiring = self.lock().retiring.take();
        if let Some((old, until)) = retiring {
            let (new, owner) = {
                let st = self.lock();
                let data = st.data.as_deref();
                let sid = data.and_then(|d| d.get(users::SID_KEY));
                (
                    sid.and_then(Value::as_str).map(str::to_owned),
                    owner_of(data),
                )
            };
            let now = self.inner.config.clock().now().unix_timestamp();
            match new {
                Some(new) => {
                    self.inner
                        .extras
                        .retire_sid(&old, &new, owner.as_deref(), now, until)
                        .await?
                }
                None => self.inner.extras.revoke_sid(&old, until).await?,
            }
        }
        if let ((Some(user), fresh), true) = (owner, self.tracks_users()) {
            if !self.inner.engine.is_client_side_key(&cookie_value) {
                let data = self.lock().data.clone().unwrap_or_default();
                self.record_in_index(&user, &cookie_value, &data, expires, fresh)
                    .await?;
            }
        }
        Ok(())
    }

    /// The cookie value after a save of session `key` whose engine answered `value`: a
    /// hashed id stays the cookie (the engine only knows its hash).
    fn cookie_for(&self, key: Arc<str>, value: String) -> Arc<str> {
        if self.hashes() {
            key
        } else {
            value.into()
        }
    }

    /// The engine call of [`Session::save`] for the whole `data`: an unraced
    /// compare-and-set, a merge of `changes`, a plain save or a new record. Returns the
    /// cookie value, the merged data (when a merge changed it) and the stored version.
    async fn save_data(
        &self,
        key: Option<(Arc<str>, &str)>,
        base: Option<Version>,
        merge: bool,
        data: &Arc<SessionData>,
        changes: &Changes,
        expires: OffsetDateTime,
    ) -> Result<(Arc<str>, Option<SessionData>, Option<Version>)> {
        Ok(match (key, base) {
            // Unraced since it was read: stored as it is (one compare-and-set).
            (Some((k, stored)), Some(base)) if merge => {
                let saved = self
                    .inner
                    .engine
                    .save_changes_from(stored, &base, data, changes, expires)
                    .await?;
                (
                    self.cookie_for(k, saved.cookie),
                    saved.merged,
                    saved.version,
                )
            }
            // Apply only what this request changed to what is stored now, so concurrent
            // requests do not overwrite each other's keys.
            (Some((k, stored)), _) if merge => {
                let (value, merged) = self
                    .inner
                    .engine
                    .save_changes(stored, changes, expires)
                    .await?;
                (self.cookie_for(k, value), Some(merged), None)
            }
            (Some((k, stored)), _) => {
                let value = self.inner.engine.save_shared(stored, data, expires).await?;
                (self.cookie_for(k, value), None, None)
            }
            (None, _) => (self.store_new(data, expires).await?.into(), None, None),
        })
    }

    async fn record_in_index(
        &self,
        user: &str,
        key: &str,
        data: &SessionData,
        expires: OffsetDateTime,
        fresh: bool,
    ) -> Result<()> {
        let now = self.inner.config.clock().now().unix_timestamp();
        let created = data
            .get(users::LOGIN_KEY)
            .and_then(Value::as_i64)
            .unwrap_or(now);
        let ip = if self.inner.extras.record_ip() {
            self.inner.client.ip.as_deref()
        } else {
            None
        };
        let user_agent = self
            .inner
            .client
            .user_agent
            .as_ref()
            .and_then(|h| h.to_str().ok());
        let entry = users::entry(created, now, user_agent, ip);
        self.inner
            .extras
            .index_put(
                &self.inner.config,
                user,
                &self.stored(key),
                entry,
                expires,
                fresh,
            )
            .await
    }

    /// Whether a cookie session was logged out or retired (one read of its record), or
    /// issued before its user's sessions were revoked (one read of the user's generation
    /// counter).
    async fn cookie_revoked(&self, data: &SessionData) -> Result<bool> {
        if !self.inner.extras.revocable_cookies() {
            return Ok(false);
        }
        if let Some(sid) = data.get(users::SID_KEY).and_then(Value::as_str) {
            let now = self.inner.config.clock().now();
            if !self.inner.extras.cookie_session_valid(sid, now).await? {
                return Ok(true);
            }
        }
        let Some(user) = owner_of(Some(data)) else {
            return Ok(false);
        };
        let stamped = data
            .get(users::GENERATION_KEY)
            .and_then(Value::as_i64)
            .unwrap_or(0);
        Ok(self.inner.extras.generation(&user).await? > stamped)
    }

    /// Records a login of `user_id` (called by [`crate::auth::login`] after the id cycled):
    /// the session joins the user's index, or is stamped with the user's generation.
    pub(crate) async fn record_login(&self, user_id: &str) -> Result<()> {
        if self.inner.extras.index.is_none() {
            // Nothing tracks logins: the session stays exactly as Django would write it.
            return Ok(());
        }
        let now = self.inner.config.clock().now().unix_timestamp();
        self.insert(users::LOGIN_KEY, now).await?;
        if self.inner.extras.generations {
            let generation = self.inner.extras.generation(user_id).await?;
            self.insert(users::GENERATION_KEY, generation).await?;
            // The cookie's own id, so that logout can end this session for good.
            if !self.contains(users::SID_KEY).await? {
                self.insert(users::SID_KEY, crate::key::new_session_key()?)
                    .await?;
            }
        } else {
            self.insert(users::SEEN_KEY, now).await?;
            let mut st = self.lock();
            st.owner_pending = Some(user_id.to_owned());
            st.owner_fresh = true;
        }
        Ok(())
    }

    /// The sessions of the logged-in user, this one marked `current` (server engines).
    pub async fn user_sessions(&self) -> Result<Vec<users::UserSession>> {
        let Some(user) = owner_of(Some(&self.data().await?)) else {
            return Ok(Vec::new());
        };
        let current = self.id().map(|k| self.stored(&k).into_owned());
        let entries = self.inner.extras.index_list(&user).await?;
        Ok(entries
            .into_iter()
            .map(|l| users::parse_entry(l.stored, current.as_deref(), &l.entry))
            .collect())
    }

    /// Logs the user out everywhere but here: ends every other session of the logged-in
    /// user and returns how many (for cookie engines: all earlier cookies, counted as 1).
    pub async fn revoke_other_sessions(&self) -> Result<u64> {
        let Some(user) = owner_of(Some(&self.data().await?)) else {
            return Ok(0);
        };
        if self.inner.extras.generations {
            let generation = self.inner.extras.bump_generation(&user).await?;
            // This session carries the new generation and stays valid.
            self.insert(users::GENERATION_KEY, generation).await?;
            return Ok(1);
        }
        let current = self.id().map(|k| self.stored(&k).into_owned());
        let mut ended = Vec::new();
        for s in self.user_sessions().await? {
            if Some(&s.id) != current.as_ref() {
                self.inner.engine.delete(&s.id).await?;
                ended.push(s.id);
            }
        }
        self.inner.extras.index_remove(&user, &ended).await?;
        Ok(ended.len() as u64)
    }

    /// [`accessed`](Session::accessed), [`modified`](Session::modified),
    /// [`is_empty`](Session::is_empty) and the rest, under one lock.
    pub(crate) fn flags(&self) -> Flags {
        let st = self.lock();
        let (has_id, had_cookie) = if st.key_initialised {
            (st.key.is_some(), st.had_cookie)
        } else {
            // Never used: what the cookie holds is read without keeping a copy of it.
            let (key, had_cookie) = self.cookie_key();
            (key.is_some(), had_cookie)
        };
        Flags {
            accessed: st.accessed,
            modified: st.modified,
            // Django's `is_empty`, with the key as `init_key` would set it.
            empty: st.is_empty_with_id(has_id),
            loaded: st.data.is_some(),
            has_id,
            had_cookie,
        }
    }

    pub(crate) async fn load_for_save(&self) -> Result<()> {
        let accessed = self.accessed();
        self.ensure_loaded().await?;
        // Loading on the middleware's behalf is not the handler's access.
        self.lock().accessed = accessed;
        Ok(())
    }

    /// `(max_age, expires)` for the cookie; `None` when it ends with the browser.
    pub(crate) fn cookie_lifetime(&self) -> Option<(i64, OffsetDateTime)> {
        let st = self.lock();
        let data = st.data.as_deref();
        if expiry::at_browser_close(data, self.inner.config.expire_at_browser_close()) {
            return None;
        }
        let now = self.inner.config.clock().now();
        let mut age = expiry::age(data, now, self.inner.config.cookie_age());
        if let Some(deadline) =
            data.and_then(|d| timeouts::deadline(&self.inner.config, d, now.unix_timestamp()))
        {
            age = age.min(deadline.saturating_sub(now.unix_timestamp()));
        }
        // Django: http_date(time.time() + max_age), truncated to whole seconds.
        let expires = expiry::add_seconds(
            OffsetDateTime::from_unix_timestamp(now.unix_timestamp()).unwrap_or(now),
            age,
        );
        Some((age, expires))
    }
}
