//! Saving: a new record and id, an unraced compare-and-set, a merge of this request's
//! changes, the cookie's size, the user's index and retired ids.

use std::sync::Arc;

use time::OffsetDateTime;

use super::timeouts;
use super::Session;
use crate::config::Concurrency;
use crate::engine::{Changes, SessionData, Version};
use crate::error::{Error, Result};
use crate::expiry;
use crate::users::{self, owner_of};
use crate::Value;

impl Session {
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
    pub(super) fn cookie_for(&self, key: Arc<str>, value: String) -> Arc<str> {
        if self.hashes() {
            key
        } else {
            value.into()
        }
    }

    /// The engine call of [`Session::save`] for the whole `data`: an unraced
    /// compare-and-set, a merge of `changes`, a plain save or a new record. Returns the
    /// cookie value, the merged data (when a merge changed it) and the stored version.
    pub(super) async fn save_data(
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

    /// Stores a new session and returns its cookie value.
    pub(super) async fn store_new(
        &self,
        data: &SessionData,
        expires: OffsetDateTime,
    ) -> Result<String> {
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

    pub(super) async fn record_in_index(
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
