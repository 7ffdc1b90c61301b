//! The `Session` handle that handlers use.

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::Value;
use http::HeaderValue;
use serde::de::DeserializeOwned;
use serde::Serialize;
use time::OffsetDateTime;

use crate::config::Config;
use crate::engine::{SessionData, SessionEngine};
use crate::error::{Error, Result};
use crate::expiry::{self, Expiry};
use crate::users::Extras;

mod ids;
mod load;
mod save;
mod state;
mod timeouts;

use state::{CookieHeaders, RequestCookie, State};

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

/// Who made the request, for a user's session list.
#[derive(Debug, Clone, Default)]
pub(crate) struct ClientInfo {
    // Kept as the header (a reference-counted copy): read only when a login is recorded.
    pub(crate) user_agent: Option<HeaderValue>,
    pub(crate) ip: Option<String>,
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
    /// let engine = sessio::open(&config).await?;
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

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
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
}
