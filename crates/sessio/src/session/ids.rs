//! Ids: logout (`flush`), a new id for the same data (`cycle_id`), and the user's other
//! sessions.

use std::sync::Arc;

use super::Session;
use crate::error::Result;
use crate::users::{self, owner_of};
use crate::Value;

impl Session {
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
}
