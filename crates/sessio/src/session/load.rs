//! Loading: the cookie's id, the record behind it (ids hashed at rest, found under old keys
//! and moved), timeouts and revocations checked, never adopting an unknown id.

use std::borrow::Cow;
use std::sync::Arc;

use super::state::State;
use super::timeouts;
use super::Session;
use crate::engine::SessionData;
use crate::error::Result;
use crate::users::{self, owner_of};
use crate::Value;

impl Session {
    /// Loads the session of cookie value `key` (finding ids hashed under a fallback key,
    /// and moving them to the current one).
    pub(super) async fn load_record(
        &self,
        key: &str,
    ) -> Result<Option<crate::engine::LoadedSession>> {
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

    pub(super) fn init_key(&self, st: &mut State) {
        if !st.key_initialised {
            st.key_initialised = true;
            let (key, had_cookie) = self.cookie_key();
            st.had_cookie = had_cookie;
            st.key = key.map(|k| Arc::from(k.as_ref()));
        }
    }

    /// The session key the request's cookie holds, if it is a valid one (borrowed where it
    /// can be), and whether the request carried the session cookie at all.
    pub(super) fn cookie_key(&self) -> (Option<Cow<'_, str>>, bool) {
        let value = self.inner.cookie.get(self.inner.config.cookie_name());
        let had_cookie = value.is_some();
        // A name of sessio's own records (user index, revocations) is never a session id.
        let key =
            value.filter(|v| crate::key::validate(Some(v)).is_some() && !users::is_record_name(v));
        (key, had_cookie)
    }

    /// Loads the data if it is not loaded yet, and marks the session accessed.
    pub(super) async fn ensure_loaded(&self) -> Result<()> {
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

    pub(super) async fn with_data<R>(&self, f: impl FnOnce(&mut State) -> R) -> Result<R> {
        self.ensure_loaded().await?;
        let mut st = self.lock();
        Ok(f(&mut st))
    }

    /// Whether a cookie session was logged out or retired (one read of its record), or
    /// issued before its user's sessions were revoked (one read of the user's generation
    /// counter).
    pub(super) async fn cookie_revoked(&self, data: &SessionData) -> Result<bool> {
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

    pub(crate) async fn load_for_save(&self) -> Result<()> {
        let accessed = self.accessed();
        self.ensure_loaded().await?;
        // Loading on the middleware's behalf is not the handler's access.
        self.lock().accessed = accessed;
        Ok(())
    }
}
