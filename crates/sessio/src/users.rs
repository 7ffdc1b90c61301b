//! Per-user sessions: list a user's sessions, revoke one, all, or all but the current one;
//! logout that ends cookie sessions; stolen-cookie detection; and ids stored only as a
//! keyed hash.
//!
//! **Records beside sessions.** The features below keep small records in the session store
//! itself, named `sessio` + a kind letter + 33 hex digits of a SHA-256 (40 characters;
//! session ids are 32, so the two can never collide, and a cookie naming a record is
//! refused). The names hash the user id or session id *without* the secret key, so that
//! they survive any number of key rotations; they reveal nothing the store does not already
//! hold (a server session's data names its user in clear).
//!
//! **Index** (`track_user_sessions`, server engines). A login adds one entry record for
//! the session (its creation time, last use, user agent and address, and its slot) and one
//! numbered slot record pointing at it, and moves the user's head record (the range of
//! slot numbers in use). Nothing is rewritten whole, so a login costs the same for a
//! user's 1st session as for their 10,000th. Entries and slots expire a lifetime after
//! their session and are refreshed with its "last seen"; logout and revocation delete
//! both. Each login also tidies the bottom of the range: it skips the gaps of ended
//! sessions and moves one live slot to the top, so the range stays near the number of live
//! sessions. Listing walks the range, pruning what has ended. `max_sessions_per_user` ends
//! the oldest sessions of a user whose login passes the limit (Spring Session's
//! concurrency control).
//!
//! **Cookie engines** keep no record on the server, so they cannot be listed. With
//! `cookie_revocation = db|cache|file`:
//! * revoking all of a user's cookie sessions bumps a per-user generation counter, which
//!   never expires, so no cookie issued before it is accepted again;
//! * a logged-in cookie carries a session id (`_sessio_sid`) inside its signed or encrypted
//!   payload; logout writes a revocation record for it, kept until any copy of that cookie
//!   has expired, so a copy taken before logout is refused.
//!
//! Every request of a logged-in cookie session then reads the generation and the session's
//! revocation record: the two server round trips of this feature.
//!
//! **Stolen-cookie detection** (`stolen_cookie_grace`, 60 s by default). When a login
//! cycles a session id, a small record of the retired id is kept until a cookie holding it
//! could no longer be valid. A request presenting the retired id within the grace window is
//! a request that was already in flight, and gets an empty session as before; after it, the
//! cookie was copied: sessio ends the session the id was cycled into (and, with
//! `stolen_cookie_ends_user_sessions`, every session of its user), logs a warning with a
//! keyed fingerprint of the id, and calls the application's hook
//! ([`SessionManager::on_stolen_cookie`](crate::SessionManager::on_stolen_cookie)). Server
//! engines look for the record only when a cookie's id is unknown, so live sessions pay
//! nothing; cookie engines (with revocation on) find it in the session's revocation record.
//!
//! **Hashed ids at rest** (`hash_ids_at_rest = true`): server engines store
//! HMAC-SHA256(id) under a key derived from the secret key, never the id itself, so a leaked
//! table or cache dump yields no usable cookie. Ids hashed under a fallback key are found
//! and moved to the current key on their next load.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::Arc;

use crate::{json, Value};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::config::{Config, SecretKey};
use crate::engine::{Changes, SessionData, SessionEngine};
use crate::error::{Error, LogId, Result};
use crate::expiry::{add_seconds, isoformat, FAR_FUTURE};

/// One of a user's sessions, as [`SessionManager::user_sessions`](crate::SessionManager::user_sessions)
/// lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSession {
    /// An opaque handle for [`SessionManager::revoke_session`](crate::SessionManager::revoke_session):
    /// the id as stored (a hash when ids are hashed at rest). Never a usable cookie when
    /// ids are hashed.
    pub id: String,
    /// Whether this is the session of the request that asked.
    pub current: bool,
    /// When the user logged in.
    pub created: OffsetDateTime,
    /// When the session was last saved or used.
    pub last_seen: OffsetDateTime,
    /// The `User-Agent` of the login request.
    pub user_agent: Option<String>,
    /// The client address, when `record_ip` is on.
    pub ip: Option<String>,
}

/// What sessio tells the application when a retired session id comes back after the grace
/// window: the cookie was copied (see [`SessionManager::on_stolen_cookie`](crate::SessionManager::on_stolen_cookie)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StolenCookie {
    /// The user the session belonged to, when it was logged in.
    pub user_id: Option<String>,
    /// When the id was retired (the login that cycled it).
    pub retired_at: OffsetDateTime,
    /// When the retired id came back.
    pub presented_at: OffsetDateTime,
    /// How many sessions were ended because of it.
    pub sessions_ended: u64,
    /// The keyed fingerprint of the retired id that the warning in the log shows (never the
    /// id itself).
    pub fingerprint: String,
}

/// An application's hook for stolen cookies.
pub(crate) type StolenCookieHook = Arc<dyn Fn(&StolenCookie) + Send + Sync>;

/// Session data keys this module keeps.
pub(crate) use sessio_django::keys::{
    GENERATION as GENERATION_KEY, LOGIN as LOGIN_KEY, SEEN as SEEN_KEY, SID as SID_KEY,
};
/// How often a read refreshes "last seen" (seconds).
pub(crate) const SEEN_EVERY: i64 = 300;

/// The logged-in user of a session (Django's `_auth_user_id`).
pub(crate) fn owner_of(data: Option<&SessionData>) -> Option<String> {
    match data?.get(sessio_django::keys::AUTH_USER_ID)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// What every record name starts with.
const RECORD_PREFIX: &str = "sessio";
/// The length of every record name (session ids are [`crate::key::KEY_LEN`] long).
const RECORD_LEN: usize = 40;

/// Record kinds, the letter after the prefix.
const HEAD: u8 = b'u';
const ENTRY: u8 = b'e';
const SLOT: u8 = b'q';
const GENERATION: u8 = b'g';
const COOKIE_SESSION: u8 = b'r';
const RETIRED: u8 = b'x';

/// How many live slots a login moves from the bottom of the user's range to the top.
const PRUNE_MOVES: usize = 1;
/// How many empty slots (of ended sessions) a login skips at the bottom of the range.
/// With one move, the bottom then advances faster than logins add slots whenever there
/// are gaps, so the range stays near the number of live sessions.
const PRUNE_SKIPS: usize = 16;
/// Empty slots past the head's top that a listing probes (concurrent logins may leave the
/// head's top behind the highest slot in use).
const PROBE_PAST_TOP: usize = 4;
/// How far a stolen-cookie check follows ids cycled again since.
const MAX_HOPS: usize = 8;

/// Whether `key` names one of the records this module keeps, not a session.
pub(crate) fn is_record_name(key: &str) -> bool {
    key.len() == RECORD_LEN && key.starts_with(RECORD_PREFIX)
}

/// The name of a record of `kind` about `parts`.
fn record_name(kind: u8, parts: &[&[u8]]) -> String {
    let mut hash = Sha256::new();
    hash.update(b"sessio record v2\0");
    hash.update([kind]);
    for part in parts {
        // Length-prefixed, so no two lists of parts hash alike.
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part);
    }
    let digest = hash.finalize();
    let mut out = String::with_capacity(RECORD_LEN + 1);
    out.push_str(RECORD_PREFIX);
    out.push(kind as char);
    for b in digest.iter() {
        if out.len() >= RECORD_LEN {
            break;
        }
        let _ = write!(out, "{b:02x}");
    }
    out.truncate(RECORD_LEN);
    out
}

fn head_name(user: &str) -> String {
    record_name(HEAD, &[user.as_bytes()])
}

fn entry_name(user: &str, stored: &str) -> String {
    record_name(ENTRY, &[user.as_bytes(), stored.as_bytes()])
}

fn slot_name(user: &str, n: u64) -> String {
    record_name(SLOT, &[user.as_bytes(), &n.to_le_bytes()])
}

fn generation_name(user: &str) -> String {
    record_name(GENERATION, &[user.as_bytes()])
}

fn cookie_session_name(sid: &str) -> String {
    record_name(COOKIE_SESSION, &[sid.as_bytes()])
}

fn retired_name(stored: &str) -> String {
    record_name(RETIRED, &[stored.as_bytes()])
}

/// The keys that hash session ids at rest: the current secret key's first, then the
/// fallbacks'.
#[derive(Clone)]
pub(crate) struct IdHasher {
    keys: Arc<[Hmac<Sha256>]>,
}

impl std::fmt::Debug for IdHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdHasher")
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl IdHasher {
    /// The hasher of `config`, when it hashes ids at rest.
    pub(crate) fn from_config(config: &Config) -> Option<Self> {
        config.hash_ids_at_rest().then(|| Self {
            keys: std::iter::once(config.secret_key())
                .chain(config.fallback_keys())
                .map(|k| keyed(k, b"sessio ids-at-rest v1"))
                .collect(),
        })
    }

    /// The stored key of id `raw` under the `i`-th secret key (0 = current).
    pub(crate) fn stored_with(&self, i: usize, raw: &str) -> String {
        let mut mac = self.keys[i].clone();
        mac.update(raw.as_bytes());
        let bytes = mac.finalize().into_bytes();
        let mut out = String::with_capacity(32);
        for b in bytes.iter().take(16) {
            let _ = write!(out, "{b:02x}");
        }
        out
    }

    /// How many fallback keys there are.
    pub(crate) fn fallback_count(&self) -> usize {
        self.keys.len().saturating_sub(1)
    }
}

fn keyed(secret: &SecretKey, info: &[u8]) -> Hmac<Sha256> {
    let key = secret.derive(info);
    Hmac::<Sha256>::new_from_slice(&key).expect("HMAC accepts any key length")
}

/// One listed entry of a user's index.
pub(crate) struct Listed {
    /// The session's stored key.
    pub(crate) stored: String,
    /// Its entry (creation, last use, user agent, address).
    pub(crate) entry: Value,
}

/// What sessions need beyond their engine: the id hasher, the user index, revocation and
/// stolen-cookie detection.
#[derive(Clone)]
pub(crate) struct Extras {
    ids: Option<IdHasher>,
    /// Where user indexes (server engines) or generation counters and cookie-session
    /// records (cookie engines) live.
    pub(crate) index: Option<Arc<dyn SessionEngine>>,
    /// True when `index` holds generation counters for cookie sessions.
    pub(crate) generations: bool,
    record_ip: bool,
    max_sessions: Option<u32>,
    /// Seconds after which a retired id counts as stolen (`None`: detection off).
    stolen_grace: Option<i64>,
    stolen_ends_user: bool,
    hook: Option<StolenCookieHook>,
}

impl std::fmt::Debug for Extras {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Extras")
            .field("hash_ids_at_rest", &self.ids.is_some())
            .field("index", &self.index.as_ref().map(|e| e.name()))
            .field("generations", &self.generations)
            .field("max_sessions", &self.max_sessions)
            .field("stolen_grace", &self.stolen_grace)
            .field("hook", &self.hook.is_some())
            .finish()
    }
}

impl Extras {
    /// For `engine`; `revocation` is the server engine of cookie-session records.
    pub(crate) fn new(
        config: &Config,
        engine: &Arc<dyn SessionEngine>,
        revocation: Option<Arc<dyn SessionEngine>>,
    ) -> Self {
        let (index, generations) = if engine.is_client_side() {
            (revocation, true)
        } else {
            (config.track_user_sessions().then(|| engine.clone()), false)
        };
        Self {
            ids: IdHasher::from_config(config),
            index,
            generations,
            record_ip: config.record_ip(),
            max_sessions: config.max_sessions_per_user(),
            stolen_grace: config
                .stolen_cookie_grace()
                .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
            stolen_ends_user: config.stolen_cookie_ends_user_sessions(),
            hook: None,
        }
    }

    /// Sets the application's stolen-cookie hook.
    pub(crate) fn set_hook(&mut self, hook: StolenCookieHook) {
        self.hook = Some(hook);
    }

    /// The key a server id is stored under (its hash, when hashing at rest).
    pub(crate) fn stored(&self, raw: &str) -> String {
        self.stored_with(0, raw)
    }

    /// The stored key under the `i`-th secret key (0 = current).
    pub(crate) fn stored_with(&self, i: usize, raw: &str) -> String {
        match &self.ids {
            Some(ids) => ids.stored_with(i, raw),
            None => raw.to_owned(),
        }
    }

    pub(crate) fn hashing(&self) -> bool {
        self.ids.is_some()
    }

    pub(crate) fn fallback_count(&self) -> usize {
        self.ids.as_ref().map_or(0, IdHasher::fallback_count)
    }

    pub(crate) fn record_ip(&self) -> bool {
        self.record_ip
    }

    /// Whether cookie sessions are revocable (a cookie engine with `cookie_revocation`).
    pub(crate) fn revocable_cookies(&self) -> bool {
        self.generations && self.index.is_some()
    }

    /// Whether retired ids are recorded and watched for.
    pub(crate) fn detects_stolen(&self) -> bool {
        self.stolen_grace.is_some()
    }

    fn index_engine(&self) -> Result<&Arc<dyn SessionEngine>> {
        self.index.as_ref().ok_or(Error::Unsupported {
            engine: "this configuration",
            operation: "listing or revoking a user's sessions: turn on track_user_sessions \
                        (server engines) or set cookie_revocation (cookie engines)",
        })
    }

    // ---- The per-user index (server engines) ----

    /// Lists session `stored` under `user_id`, or refreshes its entry. `fresh` is true
    /// for a login or a new id (the entry is new); `session_expires` is when the session
    /// expires (its entry and slot outlive it, and are refreshed with it).
    pub(crate) async fn index_put(
        &self,
        config: &Config,
        user_id: &str,
        stored: &str,
        entry: Value,
        session_expires: OffsetDateTime,
        fresh: bool,
    ) -> Result<()> {
        let engine = self.index_engine()?;
        let expires = outliving(config, session_expires);
        let name = entry_name(user_id, stored);
        let mut data = record(entry, expires);
        if !fresh && self.refresh(engine, user_id, &name, &data, expires).await? {
            return Ok(());
        }
        let n = self.add_slot(engine, user_id, stored, expires).await?;
        data.insert("n".into(), Value::from(n));
        if !engine.insert(&name, &data, expires).await? {
            // Listed already (saved twice, or its slot was pruned in a race): the entry
            // moves to the new slot.
            let old = engine.load(&name).await?;
            let old_slot = lookup_u64(old.as_ref(), "n");
            upsert(engine, &name, &as_changes(&data), expires).await?;
            if let Some(old) = old_slot.filter(|&o| o != n) {
                let slot = slot_name(user_id, old);
                if engine
                    .load(&slot)
                    .await?
                    .is_some_and(|s| slot_id(&s) == stored)
                {
                    engine.delete(&slot).await?;
                }
            }
        }
        if let Some(max) = self.max_sessions {
            self.enforce_max(user_id, stored, max as usize).await?;
        }
        Ok(())
    }

    /// Refreshes a listed entry and its slot (the expiry, last use); `false` when the
    /// entry or its slot is missing and the session must be listed anew.
    async fn refresh(
        &self,
        engine: &Arc<dyn SessionEngine>,
        user_id: &str,
        name: &str,
        data: &SessionData,
        expires: OffsetDateTime,
    ) -> Result<bool> {
        let merged = match engine.save_changes(name, &as_changes(data), expires).await {
            Ok((_, merged)) => merged,
            Err(Error::SessionInterrupted) => return Ok(false),
            Err(e) => return Err(e),
        };
        let Some(n) = lookup_u64(Some(&merged), "n") else {
            return Ok(false);
        };
        let changes = as_changes(&record(json!({}), expires));
        match engine
            .save_changes(&slot_name(user_id, n), &changes, expires)
            .await
        {
            Ok(_) => Ok(true),
            Err(Error::SessionInterrupted) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Gives `stored` a slot above the user's others, expiring at `expires`, and prunes
    /// the oldest slots; returns the new slot.
    async fn add_slot(
        &self,
        engine: &Arc<dyn SessionEngine>,
        user: &str,
        stored: &str,
        expires: OffsetDateTime,
    ) -> Result<u64> {
        let head = engine.load(&head_name(user)).await?;
        let lo = number(head.as_ref(), "lo");
        let hi = number(head.as_ref(), "hi");
        // The head outlives every slot it counts.
        let mut head_expires = expiry_of(head.as_ref()).unwrap_or(expires).max(expires);
        let n = claim_slot(engine, user, stored, hi.max(lo), expires).await?;
        let mut top = n;
        // Prune on write. Slots of ended sessions are gone (logout and revocation delete
        // them; expired ones expire with their session): skip them. A live slot at the
        // bottom moves to the top, so that the gaps behind it reach the bottom too.
        let mut bottom = lo;
        let (mut moved, mut skipped) = (0, 0);
        while bottom < n && moved < PRUNE_MOVES && skipped < PRUNE_SKIPS {
            let slot = slot_name(user, bottom);
            match engine.load(&slot).await? {
                None => skipped += 1,
                Some(data) => {
                    moved += 1;
                    let id = slot_id(&data);
                    let until = expiry_of(Some(&data)).unwrap_or(FAR_FUTURE);
                    head_expires = head_expires.max(until);
                    top = claim_slot(engine, user, &id, top + 1, until).await?;
                    set_slot(engine, &entry_name(user, &id), top, until).await?;
                    engine.delete(&slot).await?;
                }
            }
            bottom += 1;
        }
        let mut head = record(json!({"hi": top + 1, "lo": bottom}), head_expires);
        if bottom == lo {
            // Nothing pruned: a concurrent login may have moved `lo` on; leave it.
            head.remove("lo");
        }
        upsert(engine, &head_name(user), &as_changes(&head), head_expires).await?;
        Ok(n)
    }

    /// Ends the oldest sessions of `user_id` past `max` (never `keep`, the new one).
    async fn enforce_max(&self, user_id: &str, keep: &str, max: usize) -> Result<()> {
        let mut live = self.index_list(user_id).await?;
        if live.len() <= max {
            return Ok(());
        }
        let created = |l: &Listed| l.entry.get("c").and_then(Value::as_i64).unwrap_or(0);
        // Oldest first; the listing's order (slot order) breaks ties.
        live.sort_by_key(created);
        let excess = live.len() - max;
        let ended: Vec<String> = live
            .into_iter()
            .filter(|l| l.stored != keep)
            .take(excess)
            .map(|l| l.stored)
            .collect();
        let engine = self.index_engine()?;
        for id in &ended {
            engine.delete(id).await?;
        }
        self.index_remove(user_id, &ended).await?;
        if !ended.is_empty() {
            tracing::info!(
                sessions = ended.len(),
                max,
                "a login passed max_sessions_per_user: the oldest sessions were ended"
            );
        }
        Ok(())
    }

    /// Removes `stored` from the index of `user_id`: its entry and its slot.
    pub(crate) async fn index_remove(&self, user_id: &str, stored: &[String]) -> Result<()> {
        if stored.is_empty() {
            return Ok(());
        }
        let engine = self.index_engine()?;
        for id in stored {
            let name = entry_name(user_id, id);
            if let Some(entry) = engine.load(&name).await? {
                if let Some(n) = entry.get("n").and_then(Value::as_u64) {
                    let slot = slot_name(user_id, n);
                    // Only its own slot (a moved entry's old slot is gone or reused).
                    if engine
                        .load(&slot)
                        .await?
                        .is_some_and(|s| slot_id(&s) == *id)
                    {
                        engine.delete(&slot).await?;
                    }
                }
                engine.delete(&name).await?;
            }
        }
        Ok(())
    }

    /// The live sessions of `user_id`, in slot order; dead entries are pruned.
    pub(crate) async fn index_list(&self, user_id: &str) -> Result<Vec<Listed>> {
        let engine = self.index_engine()?;
        let head = engine.load(&head_name(user_id)).await?;
        let lo = number(head.as_ref(), "lo");
        let hi = number(head.as_ref(), "hi");
        let mut live = Vec::new();
        let mut seen = HashSet::new();
        let mut first = None;
        let (mut n, mut misses) = (lo, 0);
        while n < hi || misses < PROBE_PAST_TOP {
            let name = slot_name(user_id, n);
            match engine.load(&name).await? {
                None => {
                    if n >= hi {
                        misses += 1;
                    }
                }
                Some(slot) => {
                    misses = 0;
                    let id = slot_id(&slot);
                    if seen.contains(&id) {
                        // A moved slot's old copy: the entry is listed once.
                        engine.delete(&name).await?;
                    } else {
                        let entry = engine.load(&entry_name(user_id, &id)).await?;
                        match entry {
                            Some(mut entry) if engine.load(&id).await?.is_some() => {
                                first.get_or_insert(n);
                                seen.insert(id.clone());
                                entry.remove(sessio_django::keys::EXPIRY);
                                live.push(Listed {
                                    stored: id,
                                    entry: Value::Object(entry),
                                });
                            }
                            // Ended, or its entry is gone (revoked): the slot goes.
                            _ => {
                                engine.delete(&entry_name(user_id, &id)).await?;
                                engine.delete(&name).await?;
                            }
                        }
                    }
                }
            }
            n += 1;
        }
        let start = first.unwrap_or(n);
        if let (Some(head), true) = (&head, start > lo) {
            let until = expiry_of(Some(head)).unwrap_or(FAR_FUTURE);
            let changes = as_changes(&record(json!({ "lo": start }), until));
            upsert(engine, &head_name(user_id), &changes, until).await?;
        }
        Ok(live)
    }

    // ---- Cookie sessions (cookie engines with cookie_revocation) ----

    /// The current generation of `user_id`'s cookie sessions (0 when never bumped).
    pub(crate) async fn generation(&self, user_id: &str) -> Result<i64> {
        let engine = self.index_engine()?;
        Ok(engine
            .load(&generation_name(user_id))
            .await?
            .and_then(|d| d.get("g").and_then(Value::as_i64))
            .unwrap_or(0))
    }

    /// Ends every cookie session of `user_id` issued so far; returns the new generation.
    /// The counter never expires: a cookie can be given any lifetime, and the counter
    /// must outlive every cookie it revokes.
    pub(crate) async fn bump_generation(&self, user_id: &str) -> Result<i64> {
        let engine = self.index_engine()?;
        let next = self.generation(user_id).await? + 1;
        let changes = Changes {
            cleared: false,
            entries: vec![("g".into(), Some(Value::from(next)))],
        };
        // Two revocations racing both end every earlier session: either count is fine.
        upsert(engine, &generation_name(user_id), &changes, FAR_FUTURE).await?;
        Ok(next)
    }

    /// Ends cookie session `sid` for good (logout): its record is kept until `until`,
    /// when every copy of the cookie has expired.
    pub(crate) async fn revoke_sid(&self, sid: &str, until: OffsetDateTime) -> Result<()> {
        let engine = self.index_engine()?;
        let data = record(json!({"k": "revoked"}), until);
        upsert(engine, &cookie_session_name(sid), &as_changes(&data), until).await
    }

    /// Records that cookie session `sid` was cycled into `successor` at `now` (a login);
    /// `until` is when a copy of either cookie expires (they hold the same data).
    pub(crate) async fn retire_sid(
        &self,
        sid: &str,
        successor: &str,
        user: Option<&str>,
        now: i64,
        until: OffsetDateTime,
    ) -> Result<()> {
        let engine = self.index_engine()?;
        let data = record(
            json!({"k": "retired", "at": now, "succ": successor, "u": user,
                   "su": until.unix_timestamp()}),
            until,
        );
        upsert(engine, &cookie_session_name(sid), &as_changes(&data), until).await
    }

    /// Whether cookie session `sid` may be used at `now`: `false` when it was logged out,
    /// or retired (a retired one past the grace window is a stolen cookie: the session it
    /// was cycled into is ended, and the application told).
    pub(crate) async fn cookie_session_valid(
        &self,
        sid: &str,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let engine = self.index_engine()?;
        let name = cookie_session_name(sid);
        let Some(rec) = engine.load(&name).await? else {
            return Ok(true);
        };
        let Some(retired) = Retired::read(&rec) else {
            // Revoked, or already reported as stolen.
            return Ok(false);
        };
        if !self.past_grace(&retired, now) {
            return Ok(false);
        }
        let mut ended = 0;
        let mut next = retired.successor.clone();
        let mut until = retired.successor_until;
        for _ in 0..MAX_HOPS {
            match engine.load(&cookie_session_name(&next)).await? {
                Some(r) => match Retired::read(&r) {
                    Some(again) => {
                        next = again.successor;
                        until = again.successor_until;
                    }
                    None => break,
                },
                None => {
                    self.revoke_sid(&next, until).await?;
                    ended += 1;
                    break;
                }
            }
        }
        if let (true, Some(user)) = (self.stolen_ends_user, retired.user.as_deref()) {
            self.bump_generation(user).await?;
            ended += 1;
        }
        mark_reported(engine, &name).await?;
        self.report_stolen(sid, &retired, now, ended);
        Ok(false)
    }

    // ---- Retired ids of server sessions ----

    /// Records that the server session of cookie id `old` was cycled into the session
    /// stored as `new` at `now`; kept until `until`, when a cookie holding `old` could no
    /// longer be valid. The record is named after the cookie's id, not its stored key, so
    /// that it is found under any secret key; its name is a hash and never gives the id.
    pub(crate) async fn retire_id(
        &self,
        engine: &Arc<dyn SessionEngine>,
        old: &str,
        new: &str,
        user: Option<&str>,
        now: i64,
        until: OffsetDateTime,
    ) -> Result<()> {
        let data = record(
            json!({"k": "retired", "at": now, "succ": new, "u": user}),
            until,
        );
        upsert(engine, &retired_name(old), &as_changes(&data), until).await
    }

    /// For a cookie whose server id `raw` is unknown: when it is an id retired longer ago
    /// than the grace window, the cookie was stolen, and the session it was cycled into is
    /// ended (with every session of its user, when configured).
    pub(crate) async fn check_retired(
        &self,
        engine: &Arc<dyn SessionEngine>,
        raw: &str,
        now: OffsetDateTime,
    ) -> Result<()> {
        let name = retired_name(raw);
        let Some(rec) = engine.load(&name).await? else {
            return Ok(());
        };
        let Some(retired) = Retired::read(&rec) else {
            return Ok(());
        };
        if !self.past_grace(&retired, now) {
            return Ok(());
        }
        let mut ended = 0;
        let mut user = retired.user.clone();
        let mut next = retired.successor.clone();
        for _ in 0..MAX_HOPS {
            if let Some(data) = engine.load(&next).await? {
                engine.delete(&next).await?;
                // The login that retired the id wrote the user after the cycle.
                user = owner_of(Some(&data)).or(user);
                if let (Some(user), true) = (user.as_deref(), self.tracks_index()) {
                    self.index_remove(user, std::slice::from_ref(&next)).await?;
                }
                ended += 1;
                break;
            }
            match engine.load(&retired_name(&next)).await? {
                Some(r) => match Retired::read(&r) {
                    Some(again) => next = again.successor,
                    None => break,
                },
                None => break,
            }
        }
        if let (true, Some(user)) = (self.stolen_ends_user, user.as_deref()) {
            if self.tracks_index() {
                let all: Vec<String> = self
                    .index_list(user)
                    .await?
                    .into_iter()
                    .map(|l| l.stored)
                    .collect();
                for id in &all {
                    engine.delete(id).await?;
                }
                self.index_remove(user, &all).await?;
                ended += all.len() as u64;
            }
        }
        mark_reported(engine, &name).await?;
        let retired = Retired { user, ..retired };
        self.report_stolen(raw, &retired, now, ended);
        Ok(())
    }

    /// Whether this is a server engine's user index.
    fn tracks_index(&self) -> bool {
        self.index.is_some() && !self.generations
    }

    /// Moves the index entry of a session whose stored key changed (a hashed id moved
    /// from a fallback key's hash to the current key's).
    pub(crate) async fn index_move(
        &self,
        config: &Config,
        user_id: &str,
        old: &str,
        new: &str,
        session_expires: OffsetDateTime,
    ) -> Result<()> {
        let engine = self.index_engine()?;
        let mut entry = engine
            .load(&entry_name(user_id, old))
            .await?
            .unwrap_or_default();
        entry.remove(sessio_django::keys::EXPIRY);
        entry.remove("n");
        self.index_put(
            config,
            user_id,
            new,
            Value::Object(entry),
            session_expires,
            true,
        )
        .await?;
        self.index_remove(user_id, &[old.to_owned()]).await
    }

    fn past_grace(&self, retired: &Retired, now: OffsetDateTime) -> bool {
        self.stolen_grace
            .is_some_and(|grace| now.unix_timestamp().saturating_sub(retired.at) > grace)
    }

    fn report_stolen(&self, id: &str, retired: &Retired, now: OffsetDateTime, ended: u64) {
        let fingerprint = LogId(id).to_string();
        tracing::warn!(
            session = %fingerprint,
            sessions_ended = ended,
            retired_secs_ago = now.unix_timestamp().saturating_sub(retired.at),
            "a retired session id came back after the grace window: the cookie was copied; \
             the session it belonged to was ended"
        );
        if let Some(hook) = &self.hook {
            hook(&StolenCookie {
                user_id: retired.user.clone(),
                retired_at: OffsetDateTime::from_unix_timestamp(retired.at)
                    .unwrap_or(OffsetDateTime::UNIX_EPOCH),
                presented_at: now,
                sessions_ended: ended,
                fingerprint,
            });
        }
    }
}

/// A retired id's record.
struct Retired {
    at: i64,
    successor: String,
    successor_until: OffsetDateTime,
    user: Option<String>,
}

impl Retired {
    /// The record, when it is a retired id not yet reported.
    fn read(rec: &SessionData) -> Option<Self> {
        if rec.get("k").and_then(Value::as_str) != Some("retired") {
            return None;
        }
        Some(Self {
            at: rec.get("at").and_then(Value::as_i64)?,
            successor: rec.get("succ").and_then(Value::as_str)?.to_owned(),
            successor_until: rec
                .get("su")
                .and_then(Value::as_i64)
                .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
                .unwrap_or(FAR_FUTURE),
            user: rec.get("u").and_then(Value::as_str).map(str::to_owned),
        })
    }
}

/// Marks a retired id's record as reported, so a replayed cookie is refused but reported
/// once.
async fn mark_reported(engine: &Arc<dyn SessionEngine>, name: &str) -> Result<()> {
    let changes = Changes {
        cleared: false,
        entries: vec![("k".into(), Some(Value::from("stolen")))],
    };
    let expires = expiry_of(engine.load(name).await?.as_ref()).unwrap_or(FAR_FUTURE);
    match engine.save_changes(name, &changes, expires).await {
        Ok(_) | Err(Error::SessionInterrupted) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Claims the first free slot of `user` from `start` for `stored`, expiring at
/// `expires`; returns its number.
async fn claim_slot(
    engine: &Arc<dyn SessionEngine>,
    user: &str,
    stored: &str,
    start: u64,
    expires: OffsetDateTime,
) -> Result<u64> {
    let data = record(json!({ "id": stored }), expires);
    // Concurrent logins of one user race for the same numbers; each loser takes the next.
    for n in start..start.saturating_add(256) {
        if engine.insert(&slot_name(user, n), &data, expires).await? {
            return Ok(n);
        }
    }
    Err(Error::KeyCreation { attempts: 256 })
}

/// Points entry `name` (expiring at `expires`) at its slot `n`.
async fn set_slot(
    engine: &Arc<dyn SessionEngine>,
    name: &str,
    n: u64,
    expires: OffsetDateTime,
) -> Result<()> {
    let changes = Changes {
        cleared: false,
        entries: vec![("n".into(), Some(Value::from(n)))],
    };
    match engine.save_changes(name, &changes, expires).await {
        Ok(_) | Err(Error::SessionInterrupted) => Ok(()),
        Err(e) => Err(e),
    }
}

/// A record's expiry, as [`record`] wrote it.
fn expiry_of(data: Option<&SessionData>) -> Option<OffsetDateTime> {
    data?
        .get(sessio_django::keys::EXPIRY)
        .and_then(Value::as_str)
        .and_then(crate::expiry::parse_iso)
}

fn slot_id(slot: &SessionData) -> String {
    slot.get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn lookup_u64(data: Option<&SessionData>, key: &str) -> Option<u64> {
    data.and_then(|d| d.get(key)).and_then(Value::as_u64)
}

fn number(data: Option<&SessionData>, key: &str) -> u64 {
    data.and_then(|d| d.get(key))
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

/// Record data: `fields` with the expiry as Django writes a custom one, so that engines
/// that read the expiry from the data (the file engine) keep the record as long as the
/// others do.
fn record(fields: Value, expires: OffsetDateTime) -> SessionData {
    let mut data = match fields {
        Value::Object(map) => map,
        _ => SessionData::new(),
    };
    data.insert(
        sessio_django::keys::EXPIRY.into(),
        Value::String(isoformat(expires)),
    );
    data
}

fn as_changes(data: &SessionData) -> Changes {
    Changes {
        cleared: false,
        entries: data
            .iter()
            .map(|(k, v)| (k.clone(), Some(v.clone())))
            .collect(),
    }
}

/// The longest a session can live from its last save (seconds).
fn longest_lifetime(config: &Config) -> i64 {
    let absolute = config
        .absolute_timeout()
        .map_or(0, |t| i64::try_from(t.as_secs()).unwrap_or(i64::MAX));
    config.cookie_age().max(absolute)
}

/// An expiry that outlives a session expiring at `session_expires`, however it is
/// extended before the record is next written.
pub(crate) fn outliving(config: &Config, session_expires: OffsetDateTime) -> OffsetDateTime {
    let longest = longest_lifetime(config);
    let soonest = add_seconds(config.clock().now(), longest);
    add_seconds(session_expires.max(soonest), longest)
}

/// Applies `changes` to `record`, creating it when it does not exist yet.
async fn upsert(
    engine: &Arc<dyn SessionEngine>,
    record: &str,
    changes: &Changes,
    expires: OffsetDateTime,
) -> Result<()> {
    for _ in 0..3 {
        match engine.save_changes(record, changes, expires).await {
            Ok(_) => return Ok(()),
            Err(Error::SessionInterrupted) => {
                let mut data = SessionData::new();
                changes.apply(&mut data);
                if engine.insert(record, &data, expires).await? {
                    return Ok(());
                }
                // Another request created it first: merge into theirs.
            }
            Err(e) => return Err(e),
        }
    }
    Err(Error::KeyCreation { attempts: 3 })
}

/// The index entry of a session.
pub(crate) fn entry(created: i64, seen: i64, user_agent: Option<&str>, ip: Option<&str>) -> Value {
    json!({"c": created, "s": seen, "ua": user_agent, "ip": ip})
}

/// Reads an index entry back.
pub(crate) fn parse_entry(id: String, current: Option<&str>, v: &Value) -> UserSession {
    let at = |k: &str| {
        v.get(k)
            .and_then(Value::as_i64)
            .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    };
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    UserSession {
        current: current == Some(id.as_str()),
        id,
        created: at("c"),
        last_seen: at("s"),
        user_agent: text("ua"),
        ip: text("ip"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_names_are_their_own_namespace() {
        let names = [
            head_name("7"),
            entry_name("7", "abc"),
            slot_name("7", 0),
            generation_name("7"),
            cookie_session_name("sid"),
            retired_name("abc"),
        ];
        for name in &names {
            assert_eq!(name.len(), RECORD_LEN);
            assert!(is_record_name(name), "{name}");
            // Every store accepts it (the file engine's rule is the strictest).
            assert!(crate::key::is_well_formed(name), "{name}");
        }
        let id = crate::key::new_session_key().unwrap();
        assert!(!is_record_name(&id), "a session id is never a record name");
        // Parts are length-prefixed: ("ab", "c") and ("a", "bc") differ.
        assert_ne!(entry_name("ab", "c"), entry_name("a", "bc"));
        assert_ne!(slot_name("7", 1), slot_name("7", 2));
    }
}
