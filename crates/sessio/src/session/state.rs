//! One request's view of its session: the data, the flags Django keeps, and what this
//! request changed.

use std::borrow::Cow;
use std::sync::Arc;

use http::HeaderValue;
use time::OffsetDateTime;

use crate::engine::{Changes, SessionData, Version};
use crate::Value;

#[derive(Default)]
pub(super) struct State {
    pub(super) key_initialised: bool,
    // Whether the request carried the session cookie at all (set with the key).
    pub(super) had_cookie: bool,
    // Shared, not copied, with the loads and saves that need it (for a cookie engine it
    // is the whole signed cookie).
    pub(super) key: Option<Arc<str>>,
    // None until loaded (Django's `_session_cache` is absent until first access). Shared
    // with the store when it can (copied on the first write), and with a save in flight.
    pub(super) data: Option<Arc<SessionData>>,
    // Writes not yet applied to `data` because it is shared (see `State::insert`).
    pub(super) pending: Vec<(String, Value)>,
    pub(super) accessed: bool,
    pub(super) modified: bool,
    // What this request changed, for merging saves (`Concurrency::Merge`).
    pub(super) cleared: bool,
    pub(super) changed: Vec<String>,
    // A login (or a refresh of "last seen") to record in the owner's index after the save.
    pub(super) owner_pending: Option<String>,
    // Whether `owner_pending` is a new entry (a login or a new id), not a refresh.
    pub(super) owner_fresh: bool,
    // A revocable cookie session's id that a cycle replaced, with when copies of its
    // cookie expire: retired when the new cookie is saved (and the user is known).
    pub(super) retiring: Option<(String, OffsetDateTime)>,
    // The stored version this request's data derives from, for an unraced save.
    pub(super) version: Option<Version>,
}

impl State {
    /// Django's `is_empty`: neither an id nor data (the key must be initialised).
    pub(super) fn is_empty(&self) -> bool {
        self.is_empty_with_id(self.key.is_some())
    }

    /// `is_empty` for a session that has an id or not.
    pub(super) fn is_empty_with_id(&self, has_id: bool) -> bool {
        !has_id && self.pending.is_empty() && self.data.as_deref().is_none_or(|d| d.is_empty())
    }

    /// The value under `key`, deferred writes included.
    pub(super) fn value(&self, key: &str) -> Option<&Value> {
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
    pub(super) fn insert(&mut self, key: &str, value: Value) {
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
    pub(super) fn settle(&mut self) {
        if !self.pending.is_empty() {
            let data = Arc::make_mut(self.data.get_or_insert_with(Default::default));
            for (k, v) in self.pending.drain(..) {
                data.insert(k, v);
            }
        }
    }

    /// The whole data, deferred writes applied.
    pub(super) fn view(&mut self) -> Option<&SessionData> {
        self.settle();
        self.data.as_deref()
    }

    /// The data to change in place (a copy of it if it is shared).
    pub(super) fn data_mut(&mut self) -> &mut SessionData {
        self.settle();
        Arc::make_mut(self.data.get_or_insert_with(Default::default))
    }

    /// Replaces the data (and drops any deferred write).
    pub(super) fn set_data(&mut self, data: Arc<SessionData>) {
        self.data = Some(data);
        self.pending.clear();
    }

    pub(super) fn touch(&mut self, key: &str) {
        self.modified = true;
        if !self.changed.iter().any(|k| k == key) {
            self.changed.push(key.to_owned());
        }
    }

    pub(super) fn changes(&self) -> Changes {
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
    pub(super) fn position(&self, key: &str) -> usize {
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
pub(super) enum RequestCookie {
    Value(Option<String>),
    Headers(CookieHeaders),
}

/// The request's `Cookie` headers (reference-counted copies): almost always one, which
/// needs no allocation.
pub(super) enum CookieHeaders {
    None,
    One(HeaderValue),
    Many(Vec<HeaderValue>),
}

impl RequestCookie {
    /// The value of cookie `name`, borrowed where it can be.
    pub(super) fn get(&self, name: &str) -> Option<Cow<'_, str>> {
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
