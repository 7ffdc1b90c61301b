//! Per-user sessions: list a user's sessions, revoke one, all, or all but the current one;
//! and ids stored only as a keyed hash.
//!
//! **Index.** Logging in with [`auth::login`](crate::auth::login) records the session under
//! its owner in a per-user index record kept in the same server engine (a record whose key
//! is a keyed hash of the user id), so listing and revoking read one record instead of
//! scanning every session. Entries are updated with the engine's atomic merge
//! ([`SessionEngine::save_changes`]), so concurrent logins never drop each other. An entry
//! whose session has ended is pruned when the list is read. "Last seen" is refreshed when
//! the session is saved, and at most every five minutes on a request that only reads it.
//!
//! **Cookie engines** keep no record on the server, so they cannot be listed. Revoking all
//! of a user's cookie sessions instead bumps a per-user generation counter kept in a server
//! engine (`cookie_revocation = db|cache|file`); every request of a logged-in cookie session
//! then costs one read of that counter, the one server round trip of this feature.
//!
//! **Hashed ids at rest** (`hash_ids_at_rest = true`): server engines store
//! HMAC-SHA256(id) under a key derived from the secret key, never the id itself, so a leaked
//! table or cache dump yields no usable cookie. Ids hashed under a fallback key are found
//! and moved to the current key on their next load.

use std::sync::Arc;

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use time::{Duration, OffsetDateTime};

use crate::config::{Config, SecretKey};
use crate::engine::{Changes, SessionData, SessionEngine};
use crate::error::{Error, Result};

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

/// Session data keys this module keeps.
pub(crate) const LOGIN_KEY: &str = "_sessio_login";
pub(crate) const SEEN_KEY: &str = "_sessio_seen";
pub(crate) const GENERATION_KEY: &str = "_sessio_gen";
/// How often a read refreshes "last seen" (seconds).
pub(crate) const SEEN_EVERY: i64 = 300;

fn keyed(secret: &SecretKey, info: &[u8]) -> Hmac<Sha256> {
    let key = crate::encrypted_cookies::derive_key(secret, info);
    Hmac::<Sha256>::new_from_slice(&key).expect("HMAC accepts any key length")
}

fn hex32(mac: Hmac<Sha256>, prefix: Option<char>) -> String {
    let bytes = mac.finalize().into_bytes();
    let mut out = String::with_capacity(32);
    if let Some(p) = prefix {
        out.push(p);
    }
    for b in bytes.iter() {
        if out.len() >= 32 {
            break;
        }
        out.push_str(&format!("{b:02x}"));
    }
    out.truncate(32);
    out
}

/// What sessions need beyond their engine: the id hasher and the user index.
#[derive(Clone)]
pub(crate) struct Extras {
    /// Current key first, then the fallbacks.
    id_keys: Option<Vec<Hmac<Sha256>>>,
    user_key: Hmac<Sha256>,
    /// Where user indexes (server engines) or generation counters (cookie engines) live.
    pub(crate) index: Option<Arc<dyn SessionEngine>>,
    /// True when `index` holds generation counters for cookie sessions.
    pub(crate) generations: bool,
    record_ip: bool,
}

impl std::fmt::Debug for Extras {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Extras")
            .field("hash_ids_at_rest", &self.id_keys.is_some())
            .field("index", &self.index.as_ref().map(|e| e.name()))
            .field("generations", &self.generations)
            .finish()
    }
}

impl Extras {
    /// For `engine`; `revocation` is the server engine of cookie-session generations.
    pub(crate) fn new(
        config: &Config,
        engine: &Arc<dyn SessionEngine>,
        revocation: Option<Arc<dyn SessionEngine>>,
    ) -> Self {
        let id_keys = config.hash_ids_at_rest().then(|| {
            std::iter::once(config.secret_key())
                .chain(config.fallback_keys())
                .map(|k| keyed(k, b"sessio ids-at-rest v1"))
                .collect()
        });
        let (index, generations) = if engine.is_client_side() {
            (revocation, true)
        } else {
            (config.track_user_sessions().then(|| engine.clone()), false)
        };
        Self {
            id_keys,
            user_key: keyed(config.secret_key(), b"sessio user-index v1"),
            index,
            generations,
            record_ip: config.record_ip(),
        }
    }

    /// The key a server id is stored under (its hash, when hashing at rest).
    pub(crate) fn stored(&self, raw: &str) -> String {
        self.stored_with(0, raw)
    }

    /// The stored key under the `i`-th secret key (0 = current).
    pub(crate) fn stored_with(&self, i: usize, raw: &str) -> String {
        match &self.id_keys {
            Some(keys) => {
                let mut mac = keys[i].clone();
                mac.update(raw.as_bytes());
                hex32(mac, None)
            }
            None => raw.to_owned(),
        }
    }

    pub(crate) fn hashing(&self) -> bool {
        self.id_keys.is_some()
    }

    pub(crate) fn fallback_count(&self) -> usize {
        self.id_keys
            .as_ref()
            .map_or(0, |k| k.len().saturating_sub(1))
    }

    pub(crate) fn record_ip(&self) -> bool {
        self.record_ip
    }

    fn user_record(&self, prefix: char, user_id: &str) -> String {
        let mut mac = self.user_key.clone();
        mac.update(user_id.as_bytes());
        hex32(mac, Some(prefix))
    }

    fn index_engine(&self) -> Result<&Arc<dyn SessionEngine>> {
        self.index.as_ref().ok_or(Error::Unsupported {
            engine: "this configuration",
            operation: "listing or revoking a user's sessions: turn on track_user_sessions \
                        (server engines) or set cookie_revocation (cookie engines)",
        })
    }

    /// Adds or refreshes `stored` in the index of `user_id`.
    pub(crate) async fn index_put(
        &self,
        config: &Config,
        user_id: &str,
        stored: &str,
        entry: Value,
    ) -> Result<()> {
        let engine = self.index_engine()?;
        let record = self.user_record('u', user_id);
        let expires = index_expiry(config);
        let changes = Changes {
            cleared: false,
            entries: vec![(stored.to_owned(), Some(entry))],
        };
        upsert(engine, &record, &changes, expires).await
    }

    /// Removes `stored` from the index of `user_id`.
    pub(crate) async fn index_remove(
        &self,
        config: &Config,
        user_id: &str,
        stored: &[String],
    ) -> Result<()> {
        if stored.is_empty() {
            return Ok(());
        }
        let engine = self.index_engine()?;
        let record = self.user_record('u', user_id);
        let changes = Changes {
            cleared: false,
            entries: stored.iter().map(|k| (k.clone(), None)).collect(),
        };
        match engine
            .save_changes(&record, &changes, index_expiry(config))
            .await
        {
            Ok(_) | Err(Error::SessionInterrupted) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The entries of the index of `user_id`, ended sessions pruned.
    pub(crate) async fn index_list(
        &self,
        config: &Config,
        user_id: &str,
    ) -> Result<Vec<(String, Value)>> {
        let engine = self.index_engine()?;
        let record = self.user_record('u', user_id);
        let Some(data) = engine.load(&record).await? else {
            return Ok(Vec::new());
        };
        let mut live = Vec::new();
        let mut dead = Vec::new();
        for (stored, entry) in data {
            if engine.load(&stored).await?.is_some() {
                live.push((stored, entry));
            } else {
                dead.push(stored);
            }
        }
        self.index_remove(config, user_id, &dead).await?;
        Ok(live)
    }

    /// The current generation of `user_id`'s cookie sessions (0 when never bumped).
    pub(crate) async fn generation(&self, user_id: &str) -> Result<i64> {
        let engine = self.index_engine()?;
        let record = self.user_record('g', user_id);
        Ok(engine
            .load(&record)
            .await?
            .and_then(|d| d.get("g").and_then(Value::as_i64))
            .unwrap_or(0))
    }

    /// Ends every cookie session of `user_id` issued so far; returns the new generation.
    pub(crate) async fn bump_generation(&self, config: &Config, user_id: &str) -> Result<i64> {
        let engine = self.index_engine()?;
        let record = self.user_record('g', user_id);
        let next = self.generation(user_id).await? + 1;
        let changes = Changes {
            cleared: false,
            entries: vec![("g".into(), Some(Value::from(next)))],
        };
        // Two revocations racing both end every earlier session: either count is fine.
        upsert(engine, &record, &changes, index_expiry(config)).await?;
        Ok(next)
    }
}

/// Index records outlive the sessions they list.
fn index_expiry(config: &Config) -> OffsetDateTime {
    let longest = config.absolute_timeout().map_or(config.cookie_age(), |t| {
        config.cookie_age().max(t.as_secs() as i64)
    });
    config.clock().now() + Duration::seconds(longest.saturating_mul(2))
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
