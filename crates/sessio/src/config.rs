//! The one configuration type, with Django's settings and defaults.
//!
//! Build it in code with [`Config::builder`], from `SESSIO_*` environment variables with
//! [`ConfigBuilder::env`], or from a TOML file with [`ConfigBuilder::toml_file`]; the three
//! can be layered (later calls win).
//!
//! | setting | Django | env variable | TOML key | default |
//! |---|---|---|---|---|
//! | engine | `SESSION_ENGINE` | `SESSIO_ENGINE` | `engine` | `db` |
//! | database URL | `DATABASES` | `SESSIO_DATABASE_URL` | `database_url` | `sqlite://sessio.sqlite3` |
//! | cache URL | `CACHES` | `SESSIO_CACHE_URL` | `cache_url` | `memory://` |
//! | cache key prefix | `KEY_PREFIX` | `SESSIO_CACHE_KEY_PREFIX` | `cache_key_prefix` | `sessio.session:` |
//! | file directory | `SESSION_FILE_PATH` | `SESSIO_FILE_PATH` | `file_path` | `$XDG_DATA_HOME/sessio/sessions`, else `~/.local/share/sessio/sessions` (created 0700; a world-writable directory is refused) |
//! | store timeout | – | `SESSIO_STORE_TIMEOUT_MS` | `store_timeout_ms` | 5000 (at most an hour) |
//! | expiry slack (s, PostgreSQL) | – | `SESSIO_EXPIRY_SLACK` | `expiry_slack` | 60 (0: Django's exact dates; at most a day) |
//! | secret key | `SECRET_KEY` | `SESSIO_SECRET_KEY` | `secret_key` | none: required |
//! | fallback keys | `SECRET_KEY_FALLBACKS` | `SESSIO_SECRET_KEY_FALLBACKS` (comma-separated) | `secret_key_fallbacks` | none |
//! | cookie name | `SESSION_COOKIE_NAME` | `SESSIO_COOKIE_NAME` | `cookie_name` | `sessionid` |
//! | cookie age (s) | `SESSION_COOKIE_AGE` | `SESSIO_COOKIE_AGE` | `cookie_age` | 1209600 (two weeks; at most 100 years) |
//! | cookie domain | `SESSION_COOKIE_DOMAIN` | `SESSIO_COOKIE_DOMAIN` | `cookie_domain` | none |
//! | cookie path | `SESSION_COOKIE_PATH` | `SESSIO_COOKIE_PATH` | `cookie_path` | `/` |
//! | Secure | `SESSION_COOKIE_SECURE` | `SESSIO_COOKIE_SECURE` | `cookie_secure` | false |
//! | HttpOnly | `SESSION_COOKIE_HTTPONLY` | `SESSIO_COOKIE_HTTPONLY` | `cookie_httponly` | true |
//! | SameSite | `SESSION_COOKIE_SAMESITE` | `SESSIO_COOKIE_SAMESITE` | `cookie_samesite` | `Lax` (`Strict`, `None`, `off`) |
//! | save every request | `SESSION_SAVE_EVERY_REQUEST` | `SESSIO_SAVE_EVERY_REQUEST` | `save_every_request` | false |
//! | expire at browser close | `SESSION_EXPIRE_AT_BROWSER_CLOSE` | `SESSIO_EXPIRE_AT_BROWSER_CLOSE` | `expire_at_browser_close` | false |
//! | Cache-Control on cookie responses | – | `SESSIO_CACHE_CONTROL` | `cache_control` | `private` (`no-store`, `off`) |
//! | idle timeout (s) | – | `SESSIO_IDLE_TIMEOUT` | `idle_timeout` | off (at most 100 years) |
//! | absolute lifetime (s) | – | `SESSIO_ABSOLUTE_TIMEOUT` | `absolute_timeout` | off (at most 100 years) |
//! | cookie overflow | – | `SESSIO_COOKIE_OVERFLOW` | `cookie_overflow` | `error` (`spill:db`, `spill:cache`, `spill:file`) |
//! | hashed ids at rest | – | `SESSIO_HASH_IDS_AT_REST` | `hash_ids_at_rest` | false |
//! | per-user session index | – | `SESSIO_TRACK_USER_SESSIONS` | `track_user_sessions` | false |
//! | record client IP | – | `SESSIO_RECORD_IP` | `record_ip` | false |
//! | sessions per user | – | `SESSIO_MAX_SESSIONS_PER_USER` | `max_sessions_per_user` | unlimited (0) |
//! | stolen-cookie grace (s): how long after an id is retired (login cycles it) a request may still present it before sessio treats the cookie as stolen; off disables stolen-cookie detection | – | `SESSIO_STOLEN_COOKIE_GRACE` | `stolen_cookie_grace` | 60 (`off`/0; at most a day) |
//! | on a stolen cookie, end every session of its user, not only the one it belonged to | – | `SESSIO_STOLEN_COOKIE_ENDS_USER_SESSIONS` | `stolen_cookie_ends_user_sessions` | false |
//! | cookie revocation store | – | `SESSIO_COOKIE_REVOCATION` | `cookie_revocation` | off (`db`, `cache`, `file`) |
//! | revocation in process memory (tests only) | – | `SESSIO_ALLOW_IN_MEMORY_REVOCATION` | `allow_in_memory_revocation` | false: `cookie_revocation = cache` on `memory://` is refused |
//! | concurrent saves | – | `SESSIO_CONCURRENCY` | `concurrency` | `merge` (`last-write-wins`) |
//! | auto-migrate | – | `SESSIO_AUTO_MIGRATE` | `auto_migrate` | false |
//! | salt of signed cookies | `signed_cookies` backend's salt | – | `signed_cookies_salt` | `django.contrib.sessions.backends.signed_cookies` |
//! | salt of `session_data` | `SessionBase`'s salt | – | `store_salt` | `django.contrib.sessions.SessionStore` (must differ from the cookie salt) |
//!
//! Each setting's TOML key and variable are read through one table (`SETTINGS` in this
//! module), so the two always agree.
//!
//! ```
//! use sessio::{Config, EngineKind};
//!
//! let config = Config::builder()
//!     .secret_key("q1w2e3r4t5y6u7i8o9p0-a-long-random-secret-key-of-50-chars!")
//!     .engine(EngineKind::SignedCookies)
//!     .cookie_secure(true)
//!     .build()
//!     .unwrap();
//! assert_eq!(config.cookie_name(), "sessionid");
//! assert_eq!(config.cookie_age(), 1_209_600);
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::signing;

/// Django's default `SESSION_COOKIE_AGE`: two weeks, in seconds.
pub const DEFAULT_COOKIE_AGE: i64 = 60 * 60 * 24 * 7 * 2;
/// The default prefix of session keys in a cache: never the bare session key, so sessions
/// cannot collide with other cache data (Django CVE-2011-4136).
pub const DEFAULT_CACHE_KEY_PREFIX: &str = "sessio.session:";
/// How long a store operation may take before the request fails with 503.
pub const DEFAULT_STORE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// The default [`Config::expiry_slack`]: a session saved again within a minute keeps its
/// stored expiry date (and ends at most a minute early).
pub const DEFAULT_EXPIRY_SLACK: std::time::Duration = std::time::Duration::from_secs(60);
/// The longest cookie age, idle timeout or absolute lifetime accepted: 100 years. Longer
/// values are mistakes, and refusing them keeps every `now + lifetime` (doubled, even)
/// far inside the dates sessio, Python and the stores represent.
pub const MAX_LIFETIME: std::time::Duration =
    std::time::Duration::from_secs(100 * 365 * 24 * 60 * 60);
/// [`MAX_LIFETIME`] in seconds, the unit of [`Config::cookie_age`].
pub const MAX_COOKIE_AGE: i64 = MAX_LIFETIME.as_secs() as i64;
/// The longest store timeout accepted: an hour (a store that slow is down).
pub const MAX_STORE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60 * 60);
/// The longest expiry slack accepted: a day.
pub const MAX_EXPIRY_SLACK: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);
/// The default [`Config::stolen_cookie_grace`].
pub const DEFAULT_STOLEN_COOKIE_GRACE: std::time::Duration = std::time::Duration::from_secs(60);
/// The longest stolen-cookie grace accepted: a day.
pub const MAX_STOLEN_COOKIE_GRACE: std::time::Duration =
    std::time::Duration::from_secs(24 * 60 * 60);
/// The shortest secret key accepted (Django's deploy check asks for 50 characters).
pub const MIN_SECRET_KEY_LEN: usize = 50;

const HOW_TO_MAKE_A_KEY: &str = "set SESSIO_SECRET_KEY to 50+ random characters, \
     for example the output of `sessio generate-key` or `openssl rand -base64 48`";

const FALLBACK_FIX: &str = "A cookie that only a fallback key verifies is re-issued \
     under the current key, so every fallback must be as strong as the secret key: replace \
     it, or remove it once the sessions it signed have expired";

/// Where session data lives: Django's `SESSION_ENGINE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EngineKind {
    /// All data in the cookie, signed with HMAC-SHA256 (readable by the client).
    SignedCookies,
    /// All data in the cookie, encrypted and authenticated (XChaCha20-Poly1305).
    EncryptedCookies,
    /// A row per session in a `django_session` table (SQLite by default; PostgreSQL and
    /// MySQL/MariaDB by URL).
    Db,
    /// A record per session in a cache (in process, or Redis by URL), expiring by TTL.
    Cache,
    /// A cache in front of the database: reads try the cache, writes go to both.
    CachedDb,
    /// A file per session in a directory.
    File,
}

impl EngineKind {
    /// The setting's value: `signed-cookies` or `db`.
    pub fn as_str(self) -> &'static str {
        match self {
            EngineKind::SignedCookies => "signed-cookies",
            EngineKind::EncryptedCookies => "encrypted-cookies",
            EngineKind::Db => "db",
            EngineKind::Cache => "cache",
            EngineKind::CachedDb => "cached-db",
            EngineKind::File => "file",
        }
    }
}

impl fmt::Display for EngineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EngineKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "signed-cookies" | "signed-cookie" | "cookies" | "cookie" => {
                Ok(EngineKind::SignedCookies)
            }
            "encrypted-cookies" | "encrypted-cookie" | "encrypted" => {
                Ok(EngineKind::EncryptedCookies)
            }
            "db" | "database" => Ok(EngineKind::Db),
            "cache" => Ok(EngineKind::Cache),
            "cached-db" | "cacheddb" => Ok(EngineKind::CachedDb),
            "file" | "files" => Ok(EngineKind::File),
            other => Err(Error::Config(format!(
                "unknown session engine `{other}`: use signed-cookies, encrypted-cookies, db, cache, cached-db or file"
            ))),
        }
    }
}

/// What a cookie engine does with a session too big for a cookie (name + value > 4096
/// bytes, RFC 6265bis).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CookieOverflow {
    /// A typed error ([`Error::CookieTooLarge`]); the response is a 500 unless the handler
    /// catches it. Never a silently dropped cookie.
    #[default]
    Error,
    /// Move the data into this server engine and keep only its id in the cookie; move it
    /// back when it shrinks.
    Spill(EngineKind),
}

/// What happens when two requests change one session at the same time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Concurrency {
    /// Each save applies only the keys its request changed to the stored session, in one
    /// atomic step on the store, so concurrent requests keep each other's changes
    /// (the default for server engines; cookie engines cannot merge).
    #[default]
    Merge,
    /// Each save writes the whole session as its request saw it: the last one wins
    /// (Django's behaviour).
    LastWriteWins,
}

/// The cookie's `SameSite` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    /// Sent on top-level navigations and same-site requests (Django's default).
    Lax,
    /// Sent on same-site requests only.
    Strict,
    /// Sent on cross-site requests too; browsers require `Secure` with it.
    None,
}

impl SameSite {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            SameSite::Lax => "Lax",
            SameSite::Strict => "Strict",
            SameSite::None => "None",
        }
    }
}

/// Parses `Lax`, `Strict`, `None`, or `off`/`false` (no attribute) into the setting.
fn parse_samesite(s: &str) -> Result<Option<SameSite>> {
    match s.trim().to_ascii_lowercase().as_str() {
        "lax" => Ok(Some(SameSite::Lax)),
        "strict" => Ok(Some(SameSite::Strict)),
        "none" => Ok(Some(SameSite::None)),
        "off" | "false" | "" => Ok(None),
        other => Err(Error::Config(format!(
            "cookie_samesite `{other}` is not one of Lax, Strict, None, off"
        ))),
    }
}

/// A secret key. Its `Debug` output never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey(Arc<str>);

impl SecretKey {
    /// Wraps a key without checking it.
    pub fn new(key: impl Into<Arc<str>>) -> Self {
        SecretKey(key.into())
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// Why this key is too weak for production, if it is (the same rules as Django's
    /// `check --deploy`).
    pub fn weakness(&self) -> Option<String> {
        self.weakness_of("the secret key")
    }

    /// [`weakness`](Self::weakness), naming the key `what` (a fallback is not "the secret
    /// key", and the message must say which one to replace).
    fn weakness_of(&self, what: &str) -> Option<String> {
        let unique = self
            .0
            .chars()
            .collect::<std::collections::HashSet<_>>()
            .len();
        if self.0.len() < MIN_SECRET_KEY_LEN {
            Some(format!(
                "{what} is {} characters; at least {MIN_SECRET_KEY_LEN} are needed",
                self.0.len()
            ))
        } else if unique < 5 {
            Some(format!("{what} has fewer than 5 distinct characters"))
        } else if self.0.starts_with("django-insecure-") {
            Some(format!(
                "{what} is Django's generated `django-insecure-` development key"
            ))
        } else {
            None
        }
    }

    /// A new random key of 64 URL-safe characters from the OS CSPRNG.
    pub fn generate() -> Result<Self> {
        const CHARS: &[u8] =
            b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_!@#%^&*(=+)";
        Ok(SecretKey::new(
            crate::key::random_string(64, CHARS)?.as_str(),
        ))
    }

    /// A 32-byte key for one purpose (`info`), derived from this key with HKDF-SHA256, so
    /// that no two uses of the secret share a key.
    pub fn derive(&self, info: &[u8]) -> [u8; 32] {
        let hk = hkdf::Hkdf::<sha2::Sha256>::new(Some(b"sessio"), self.as_bytes());
        let mut okm = [0u8; 32];
        hk.expand(info, &mut okm)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        okm
    }

    /// The key itself. Handle with care: never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey(<{} chars, hidden>)", self.0.len())
    }
}

/// Session settings, by concern: the cookie, the keys, the lifetimes, how saves behave,
/// the server stores' options, and the per-user features. Built with [`Config::builder`]
/// (or TOML and `SESSIO_*` variables); read a concern whole ([`Config::cookie`],
/// [`Config::store`], ...) or one setting through its getter.
#[derive(Clone)]
pub struct Config {
    engine: EngineKind,
    cookie: CookieSettings,
    keys: KeySettings,
    lifetimes: Lifetimes,
    saving: SaveSettings,
    servers: ServerSettings,
    users: UserSettings,
    clock: Arc<dyn Clock>,
}

/// The session cookie (Django's `SESSION_COOKIE_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CookieSettings {
    /// `SESSION_COOKIE_NAME`.
    pub name: String,
    /// `SESSION_COOKIE_DOMAIN`.
    pub domain: Option<String>,
    /// `SESSION_COOKIE_PATH`.
    pub path: String,
    /// `SESSION_COOKIE_SECURE`.
    pub secure: bool,
    /// `SESSION_COOKIE_HTTPONLY`.
    pub httponly: bool,
    /// `SESSION_COOKIE_SAMESITE`; `None` omits the attribute.
    pub samesite: Option<SameSite>,
    /// What cookie engines do with a session too big for a cookie.
    pub overflow: CookieOverflow,
    /// The `Cache-Control` directive of responses that set or delete the cookie.
    pub cache_control: Option<String>,
}

/// The keys, their salts, and ids at rest.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct KeySettings {
    /// The key that signs (`SECRET_KEY`).
    pub secret_key: SecretKey,
    /// Keys that still verify but never sign (`SECRET_KEY_FALLBACKS`).
    pub fallback_keys: Vec<SecretKey>,
    /// Whether a weak secret key was explicitly allowed.
    pub weak_key_allowed: bool,
    /// The salt of signed-cookie values.
    pub signed_cookies_salt: String,
    /// The salt of `session_data` in server stores.
    pub store_salt: String,
    /// Whether server stores keep a keyed hash of each id instead of the id.
    pub hash_ids_at_rest: bool,
}

/// How long sessions live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Lifetimes {
    /// `SESSION_COOKIE_AGE`, in seconds.
    pub cookie_age: i64,
    /// `SESSION_EXPIRE_AT_BROWSER_CLOSE`.
    pub expire_at_browser_close: bool,
    /// A session unused for this long is over, on every engine.
    pub idle_timeout: Option<std::time::Duration>,
    /// A session this old is over however active it is.
    pub absolute_timeout: Option<std::time::Duration>,
}

/// When and how sessions are saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SaveSettings {
    /// `SESSION_SAVE_EVERY_REQUEST`.
    pub every_request: bool,
    /// How concurrent saves of one session combine.
    pub concurrency: Concurrency,
}

/// The options of the server stores: the engine's own, and those a cookie engine spills
/// into or keeps revocations in.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerSettings {
    /// The database of the `db` and `cached-db` engines.
    pub db: DbOptions,
    /// The cache of the `cache` and `cached-db` engines.
    pub cache: CacheOptions,
    /// The directory of the `file` engine.
    pub file: FileOptions,
    /// How long one store operation may take before it fails (and the request gets 503).
    pub timeout: std::time::Duration,
    /// Whether server stores create their schema when they start.
    pub auto_migrate: bool,
}

/// The database store's options.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DbOptions {
    /// `sqlite://…`, `postgres://…`, `mysql://…`.
    pub url: String,
    /// How much earlier than asked a save may leave a stored expiry date (PostgreSQL).
    pub expiry_slack: std::time::Duration,
}

/// The cache store's options.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheOptions {
    /// `memory://`, `redis://…`, `redis+cluster://…`.
    pub url: String,
    /// The prefix of every session key in the cache.
    pub key_prefix: String,
}

/// The file store's options.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileOptions {
    /// The directory; `None` is [`file::default_dir`](crate::file::default_dir).
    pub path: Option<PathBuf>,
}

impl fmt::Debug for DbOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbOptions")
            .field("url", &crate::error::redact_url(&self.url))
            .field("expiry_slack", &self.expiry_slack)
            .finish()
    }
}

impl fmt::Debug for CacheOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheOptions")
            .field("url", &crate::error::redact_url(&self.url))
            .field("key_prefix", &self.key_prefix)
            .finish()
    }
}

impl fmt::Debug for ServerSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerSettings")
            .field("db", &self.db)
            .field("cache", &self.cache)
            .field("file", &self.file)
            .field("timeout", &self.timeout)
            .field("auto_migrate", &self.auto_migrate)
            .finish()
    }
}

/// Per-user features: the index of a user's sessions, stolen cookies, revocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct UserSettings {
    /// Whether logins are indexed per user.
    pub track_user_sessions: bool,
    /// Whether a user's session list records the client address.
    pub record_ip: bool,
    /// The most sessions one user may have at once; `None` is unlimited.
    pub max_sessions_per_user: Option<u32>,
    /// How long a retired id may still be presented before its cookie counts as stolen.
    pub stolen_cookie_grace: Option<std::time::Duration>,
    /// Whether a stolen cookie ends every session of its user.
    pub stolen_cookie_ends_user_sessions: bool,
    /// The server engine that keeps revocations of cookie sessions.
    pub cookie_revocation: Option<EngineKind>,
    /// Whether revocations in the in-process cache were explicitly allowed.
    pub allow_in_memory_revocation: bool,
}

/// Where sessions live, with exactly the options of that engine: matching on it, a store
/// gets its own settings and no other's.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Store<'a> {
    /// Signed cookies.
    SignedCookies,
    /// Encrypted cookies.
    EncryptedCookies,
    /// A database.
    Db(&'a DbOptions),
    /// A cache.
    Cache(&'a CacheOptions),
    /// A cache in front of a database.
    CachedDb {
        /// The cache.
        cache: &'a CacheOptions,
        /// The database.
        db: &'a DbOptions,
    },
    /// Files in a directory.
    File(&'a FileOptions),
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("engine", &self.engine)
            .field("cookie", &self.cookie)
            .field("keys", &self.keys)
            .field("lifetimes", &self.lifetimes)
            .field("saving", &self.saving)
            .field("servers", &self.servers)
            .field("users", &self.users)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// A builder with Django's defaults.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder::default()
    }

    /// The settings from `SESSIO_*` environment variables, on top of the TOML file named by
    /// `SESSIO_CONFIG` when that is set.
    pub fn from_env() -> Result<Self> {
        let mut builder = Config::builder();
        if let Ok(path) = std::env::var("SESSIO_CONFIG") {
            builder = builder.toml_file(path)?;
        }
        builder.env()?.build()
    }

    /// The session cookie's settings.
    pub fn cookie(&self) -> &CookieSettings {
        &self.cookie
    }
    /// The keys, their salts, and ids at rest.
    pub fn keys(&self) -> &KeySettings {
        &self.keys
    }
    /// How long sessions live.
    pub fn lifetimes(&self) -> &Lifetimes {
        &self.lifetimes
    }
    /// When and how sessions are saved.
    pub fn saving(&self) -> &SaveSettings {
        &self.saving
    }
    /// The options of every server store (the engine's, and a cookie engine's spill or
    /// revocation store).
    pub fn servers(&self) -> &ServerSettings {
        &self.servers
    }
    /// The per-user features.
    pub fn users(&self) -> &UserSettings {
        &self.users
    }
    /// The configured engine, with its own options.
    ///
    /// ```
    /// let config = sessio::Config::builder()
    ///     .secret_key("q1w2e3r4t5y6u7i8o9p0-a-long-random-secret-key-of-50-chars!")
    ///     .database_url("sqlite://sessions.db")
    ///     .build()
    ///     .unwrap();
    /// match config.store() {
    ///     sessio::config::Store::Db(db) => assert_eq!(db.url, "sqlite://sessions.db"),
    ///     other => panic!("{other:?}"),
    /// }
    /// ```
    pub fn store(&self) -> Store<'_> {
        self.store_of(self.engine)
    }
    /// Engine `kind` with its options (a cookie engine's spill or revocation store).
    pub fn store_of(&self, kind: EngineKind) -> Store<'_> {
        let s = &self.servers;
        match kind {
            EngineKind::SignedCookies => Store::SignedCookies,
            EngineKind::EncryptedCookies => Store::EncryptedCookies,
            EngineKind::Db => Store::Db(&s.db),
            EngineKind::Cache => Store::Cache(&s.cache),
            EngineKind::CachedDb => Store::CachedDb {
                cache: &s.cache,
                db: &s.db,
            },
            EngineKind::File => Store::File(&s.file),
        }
    }

    /// The engine (`SESSION_ENGINE`).
    pub fn engine(&self) -> EngineKind {
        self.engine
    }
    /// The database URL of the `db` engine, e.g. `sqlite://sessions.db`.
    pub fn database_url(&self) -> &str {
        &self.servers.db.url
    }
    /// The cache URL of the `cache` and `cached-db` engines: `memory://` (in process,
    /// optionally `memory://?max_entries=100000`), `redis://host:6379/0`, or
    /// `redis+cluster://host1:7000,host2:7001`.
    pub fn cache_url(&self) -> &str {
        &self.servers.cache.url
    }
    /// The prefix of every session key in a cache.
    pub fn cache_key_prefix(&self) -> &str {
        &self.servers.cache.key_prefix
    }
    /// The directory of the `file` engine (`SESSION_FILE_PATH`); `None` is
    /// [`file::default_dir`](crate::file::default_dir), a private directory of the user's.
    pub fn file_path(&self) -> Option<&Path> {
        self.servers.file.path.as_deref()
    }
    /// How long one store operation may take before it fails (and the request gets 503).
    pub fn store_timeout(&self) -> std::time::Duration {
        self.servers.timeout
    }
    /// How much earlier than asked a save may leave a session's stored expiry date, so
    /// that the row is updated in place (see [`keep_expiry_from`](crate::db::keep_expiry_from)).
    pub fn expiry_slack(&self) -> std::time::Duration {
        self.servers.db.expiry_slack
    }
    /// The key that signs (`SECRET_KEY`).
    pub fn secret_key(&self) -> &SecretKey {
        &self.keys.secret_key
    }
    /// Keys that still verify but never sign (`SECRET_KEY_FALLBACKS`).
    pub fn fallback_keys(&self) -> &[SecretKey] {
        &self.keys.fallback_keys
    }
    /// Whether a weak secret key was explicitly allowed.
    pub fn weak_key_allowed(&self) -> bool {
        self.keys.weak_key_allowed
    }
    /// `SESSION_COOKIE_NAME`.
    pub fn cookie_name(&self) -> &str {
        &self.cookie.name
    }
    /// `SESSION_COOKIE_AGE`, in seconds.
    pub fn cookie_age(&self) -> i64 {
        self.lifetimes.cookie_age
    }
    /// `SESSION_COOKIE_DOMAIN`.
    pub fn cookie_domain(&self) -> Option<&str> {
        self.cookie.domain.as_deref()
    }
    /// `SESSION_COOKIE_PATH`.
    pub fn cookie_path(&self) -> &str {
        &self.cookie.path
    }
    /// `SESSION_COOKIE_SECURE`.
    pub fn cookie_secure(&self) -> bool {
        self.cookie.secure
    }
    /// `SESSION_COOKIE_HTTPONLY`.
    pub fn cookie_httponly(&self) -> bool {
        self.cookie.httponly
    }
    /// `SESSION_COOKIE_SAMESITE`; `None` omits the attribute.
    pub fn cookie_samesite(&self) -> Option<SameSite> {
        self.cookie.samesite
    }
    /// `SESSION_SAVE_EVERY_REQUEST`.
    pub fn save_every_request(&self) -> bool {
        self.saving.every_request
    }
    /// `SESSION_EXPIRE_AT_BROWSER_CLOSE`.
    pub fn expire_at_browser_close(&self) -> bool {
        self.lifetimes.expire_at_browser_close
    }
    /// Whether server engines create their schema when they start.
    pub fn auto_migrate(&self) -> bool {
        self.servers.auto_migrate
    }
    /// The `Cache-Control` directive added to responses that set or delete the session
    /// cookie (`private` by default, so shared caches never store a response that carries
    /// someone's session); `None` leaves `Cache-Control` alone, as Django does.
    pub fn cache_control(&self) -> Option<&str> {
        self.cookie.cache_control.as_deref()
    }
    /// The idle timeout: a session unused for this long is over, on every engine.
    pub fn idle_timeout(&self) -> Option<std::time::Duration> {
        self.lifetimes.idle_timeout
    }
    /// The absolute lifetime: a session this old is over however active it is.
    pub fn absolute_timeout(&self) -> Option<std::time::Duration> {
        self.lifetimes.absolute_timeout
    }
    /// Whether server engines store a keyed hash of each id instead of the id.
    pub fn hash_ids_at_rest(&self) -> bool {
        self.keys.hash_ids_at_rest
    }
    /// Whether logins are indexed per user, so a user's sessions can be listed and revoked.
    pub fn track_user_sessions(&self) -> bool {
        self.users.track_user_sessions
    }
    /// Whether a user's session list records the client address.
    pub fn record_ip(&self) -> bool {
        self.users.record_ip
    }
    /// The most sessions one user may have at once; `None` is unlimited.
    pub fn max_sessions_per_user(&self) -> Option<u32> {
        self.users.max_sessions_per_user
    }
    /// How long after an id is retired (login cycles it) a request may still present it
    /// before sessio treats the cookie as stolen; `None` disables stolen-cookie detection.
    pub fn stolen_cookie_grace(&self) -> Option<std::time::Duration> {
        self.users.stolen_cookie_grace
    }
    /// Whether a stolen cookie ends every session of its user, not only the one it
    /// belonged to.
    pub fn stolen_cookie_ends_user_sessions(&self) -> bool {
        self.users.stolen_cookie_ends_user_sessions
    }
    /// The server engine that keeps per-user generation counters for cookie sessions
    /// ("log out everywhere" for cookie engines).
    pub fn cookie_revocation(&self) -> Option<EngineKind> {
        self.users.cookie_revocation
    }
    /// Whether revocation counters in the in-process cache were explicitly allowed.
    pub fn in_memory_revocation_allowed(&self) -> bool {
        self.users.allow_in_memory_revocation
    }
    /// Whether revocation counters live in this process's memory only (`cookie_revocation =
    /// cache` on `memory://`).
    pub fn revocation_is_in_memory(&self) -> bool {
        self.users.cookie_revocation == Some(EngineKind::Cache)
            && is_in_process(&self.servers.cache.url)
    }
    /// What cookie engines do with a session too big for a cookie.
    pub fn cookie_overflow(&self) -> CookieOverflow {
        self.cookie.overflow
    }
    /// How concurrent saves of one session combine.
    pub fn concurrency(&self) -> Concurrency {
        self.saving.concurrency
    }
    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }
    /// The salt of signed-cookie values.
    pub fn signed_cookies_salt(&self) -> &str {
        &self.keys.signed_cookies_salt
    }
    /// The salt of `session_data` in server stores.
    pub fn store_salt(&self) -> &str {
        &self.keys.store_salt
    }

    /// A signer for `salt` with this configuration's keys.
    pub(crate) fn signer(&self, salt: &str) -> signing::Signer {
        let fallbacks: Vec<&[u8]> = self
            .keys
            .fallback_keys
            .iter()
            .map(|k| k.as_bytes())
            .collect();
        // Engines verify the same values over and over: remember them.
        signing::Signer::new(self.keys.secret_key.as_bytes(), &fallbacks, salt).remembering()
    }

    /// Django's codec of `session_data` for server stores, with this configuration's keys
    /// and store salt.
    pub(crate) fn store_codec(&self) -> sessio_django::codec::StoreCodec {
        sessio_django::codec::StoreCodec::new(self.signer(self.store_salt()))
    }

    /// Settings that are unsafe in production, like Django's `check --deploy`.
    /// Each entry is `(id, message)`; ids `sessio.E…` are errors, `sessio.W…` warnings and
    /// `sessio.I…` information.
    pub fn deploy_warnings(&self) -> Vec<(&'static str, String)> {
        let mut w = Vec::new();
        if let Some(why) = self.keys.secret_key.weakness() {
            w.push(("sessio.W001", format!("{why}. {HOW_TO_MAKE_A_KEY}")));
        }
        for (i, k) in self.keys.fallback_keys.iter().enumerate() {
            // An error, not a warning: whatever a fallback verifies is re-issued under the
            // current key, so a weak fallback is as bad as a weak current key.
            if let Some(why) = k.weakness_of(&format!("fallback key #{}", i + 1)) {
                w.push(("sessio.E002", format!("{why}. {FALLBACK_FIX}")));
            }
        }
        if !self.cookie.secure {
            w.push((
                "sessio.W010",
                "cookie_secure is off: the session cookie is sent over plain HTTP too. \
                 Set SESSIO_COOKIE_SECURE=true in production (browsers accept Secure cookies \
                 on http://localhost)"
                    .into(),
            ));
        }
        if !self.cookie.httponly {
            w.push((
                "sessio.W011",
                "cookie_httponly is off: scripts on the page (and any XSS) can read the session cookie".into(),
            ));
        }
        if self.cookie.samesite == Some(SameSite::None) && !self.cookie.secure {
            w.push((
                "sessio.W012",
                "cookie_samesite=None without cookie_secure: browsers reject the cookie".into(),
            ));
        }
        if self.cookie.samesite.is_none() {
            w.push((
                "sessio.W013",
                "cookie_samesite is off: the cookie is sent on cross-site requests (CSRF risk)"
                    .into(),
            ));
        }
        if self.engine == EngineKind::SignedCookies {
            w.push((
                "sessio.I020",
                "signed-cookies: the client can read the session data, and logout cannot \
                 revoke a copied cookie before it expires"
                    .into(),
            ));
        }
        if self.revocation_is_in_memory() {
            w.push((
                "sessio.W030",
                "cookie_revocation = cache on the in-process memory:// cache: revocations are \
                 lost on restart, not shared between processes and can be evicted. Point \
                 cache_url at Redis, or use cookie_revocation = db or file"
                    .into(),
            ));
        }
        if self.lifetimes.cookie_age > 60 * 60 * 24 * 30 {
            w.push((
                "sessio.W021",
                format!(
                    "cookie_age is {} days: long-lived sessions widen the window of a stolen cookie",
                    self.lifetimes.cookie_age / 86400
                ),
            ));
        }
        w
    }
}

/// Builds a [`Config`]. Every setter is optional except the secret key. Its `Debug`
/// output hides the keys and the passwords in URLs.
#[derive(Clone)]
#[must_use]
pub struct ConfigBuilder {
    engine: EngineKind,
    database_url: String,
    cache_url: String,
    cache_key_prefix: String,
    file_path: Option<PathBuf>,
    store_timeout: std::time::Duration,
    expiry_slack: std::time::Duration,
    secret_key: Option<SecretKey>,
    fallback_keys: Vec<SecretKey>,
    allow_weak_secret_key: bool,
    cookie_name: String,
    cookie_age: i64,
    cookie_domain: Option<String>,
    cookie_path: String,
    cookie_secure: bool,
    cookie_httponly: bool,
    cookie_samesite: Option<SameSite>,
    save_every_request: bool,
    expire_at_browser_close: bool,
    auto_migrate: bool,
    cache_control: Option<String>,
    concurrency: Concurrency,
    cookie_overflow: CookieOverflow,
    hash_ids_at_rest: bool,
    record_ip: bool,
    track_user_sessions: bool,
    max_sessions_per_user: Option<u32>,
    stolen_cookie_grace: Option<std::time::Duration>,
    stolen_cookie_ends_user_sessions: bool,
    cookie_revocation: Option<EngineKind>,
    allow_in_memory_revocation: bool,
    idle_timeout: Option<std::time::Duration>,
    absolute_timeout: Option<std::time::Duration>,
    signed_cookies_salt: String,
    store_salt: String,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for ConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::error::redact_url;
        f.debug_struct("ConfigBuilder")
            .field("engine", &self.engine)
            .field("database_url", &redact_url(&self.database_url))
            .field("cache_url", &redact_url(&self.cache_url))
            .field("cache_key_prefix", &self.cache_key_prefix)
            .field("file_path", &self.file_path)
            .field("store_timeout", &self.store_timeout)
            .field("expiry_slack", &self.expiry_slack)
            .field("secret_key", &self.secret_key)
            .field("fallback_keys", &self.fallback_keys)
            .field("allow_weak_secret_key", &self.allow_weak_secret_key)
            .field("cookie_name", &self.cookie_name)
            .field("cookie_age", &self.cookie_age)
            .field("cookie_domain", &self.cookie_domain)
            .field("cookie_path", &self.cookie_path)
            .field("cookie_secure", &self.cookie_secure)
            .field("cookie_httponly", &self.cookie_httponly)
            .field("cookie_samesite", &self.cookie_samesite)
            .field("save_every_request", &self.save_every_request)
            .field("expire_at_browser_close", &self.expire_at_browser_close)
            .field("auto_migrate", &self.auto_migrate)
            .field("cache_control", &self.cache_control)
            .field("concurrency", &self.concurrency)
            .field("cookie_overflow", &self.cookie_overflow)
            .field("hash_ids_at_rest", &self.hash_ids_at_rest)
            .field("record_ip", &self.record_ip)
            .field("track_user_sessions", &self.track_user_sessions)
            .field("max_sessions_per_user", &self.max_sessions_per_user)
            .field("stolen_cookie_grace", &self.stolen_cookie_grace)
            .field(
                "stolen_cookie_ends_user_sessions",
                &self.stolen_cookie_ends_user_sessions,
            )
            .field("cookie_revocation", &self.cookie_revocation)
            .field(
                "allow_in_memory_revocation",
                &self.allow_in_memory_revocation,
            )
            .field("idle_timeout", &self.idle_timeout)
            .field("absolute_timeout", &self.absolute_timeout)
            .field("signed_cookies_salt", &self.signed_cookies_salt)
            .field("store_salt", &self.store_salt)
            .finish_non_exhaustive()
    }
}

impl Default for ConfigBuilder {
    fn default() -> Self {
        Self {
            engine: EngineKind::Db,
            database_url: "sqlite://sessio.sqlite3".into(),
            cache_url: "memory://".into(),
            cache_key_prefix: DEFAULT_CACHE_KEY_PREFIX.into(),
            file_path: None,
            store_timeout: DEFAULT_STORE_TIMEOUT,
            expiry_slack: DEFAULT_EXPIRY_SLACK,
            secret_key: None,
            fallback_keys: Vec::new(),
            allow_weak_secret_key: false,
            cookie_name: "sessionid".into(),
            cookie_age: DEFAULT_COOKIE_AGE,
            cookie_domain: None,
            cookie_path: "/".into(),
            cookie_secure: false,
            cookie_httponly: true,
            cookie_samesite: Some(SameSite::Lax),
            save_every_request: false,
            expire_at_browser_close: false,
            auto_migrate: false,
            cache_control: Some("private".into()),
            concurrency: Concurrency::Merge,
            cookie_overflow: CookieOverflow::Error,
            hash_ids_at_rest: false,
            record_ip: false,
            track_user_sessions: false,
            max_sessions_per_user: None,
            stolen_cookie_grace: Some(DEFAULT_STOLEN_COOKIE_GRACE),
            stolen_cookie_ends_user_sessions: false,
            cookie_revocation: None,
            allow_in_memory_revocation: false,
            idle_timeout: None,
            absolute_timeout: None,
            signed_cookies_salt: signing::SIGNED_COOKIES_SALT.into(),
            store_salt: signing::STORE_SALT.into(),
            clock: Arc::new(SystemClock),
        }
    }
}

/// A setting that a TOML file and the `SESSIO_*` environment both give, written once: its
/// TOML key (the variable is `SESSIO_` and the key in capitals) and how its text applies to
/// the builder. The module's table documents each (a test checks none is missing).
struct Setting {
    key: &'static str,
    /// Whether a variable sets it too (the salts are for files only).
    env: bool,
    apply: fn(&mut ConfigBuilder, &Input<'_>) -> Result<()>,
}

/// One setting's value as given, and how to name it in an error (`SESSIO_COOKIE_AGE`, or
/// the TOML key `cookie_age`).
struct Input<'a> {
    name: &'a str,
    raw: Raw<'a>,
}

enum Raw<'a> {
    Text(&'a str),
    List(Vec<String>),
}

impl Input<'_> {
    fn text(&self) -> Result<&str> {
        match &self.raw {
            Raw::Text(v) => Ok(v),
            Raw::List(_) => Err(Error::Config(format!(
                "{} takes one value, not a list",
                self.name
            ))),
        }
    }

    fn string(&self) -> Result<String> {
        self.text().map(str::to_owned)
    }

    fn bool(&self) -> Result<bool> {
        parse_bool(self.name, self.text()?)
    }

    fn number<T: FromStr>(&self, what: &str) -> Result<T> {
        parse_number(self.name, self.text()?, what)
    }

    /// Seconds, where 0 (or `off`, when `off` is allowed) turns the setting off.
    fn secs_or_off(&self, what: &str) -> Result<Option<std::time::Duration>> {
        let v = self.text()?;
        if v.trim().eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        let secs: u64 = parse_number(self.name, v, what)?;
        Ok(Some(std::time::Duration::from_secs(secs)).filter(|d| !d.is_zero()))
    }

    /// A list: a TOML array, or comma-separated text (empty text is an empty list).
    fn list(&self) -> Vec<String> {
        match &self.raw {
            Raw::List(items) => items.clone(),
            Raw::Text(v) if v.trim().is_empty() => Vec::new(),
            Raw::Text(v) => v.split(',').map(|k| k.trim().to_owned()).collect(),
        }
    }
}

/// `"key" => |builder, input| { assignment };`, one line a setting; `(file only)` marks a
/// setting no variable sets. Kept as a macro so the table stays one line a setting.
macro_rules! settings {
    ($($key:literal $(($only:ident $file:ident))? => |$b:ident, $v:ident| $body:block;)*) => {
        &[$(Setting {
            key: $key,
            env: settings!(@env $($only)?),
            apply: |$b, $v| {
                $body;
                Ok(())
            },
        }),*]
    };
    (@env) => { true };
    (@env file) => { false };
}

#[rustfmt::skip]
const SETTINGS: &[Setting] = settings! {
    "engine" => |b, v| { b.engine = v.text()?.parse()? };
    "database_url" => |b, v| { b.database_url = v.string()? };
    "cache_url" => |b, v| { b.cache_url = v.string()? };
    "cache_key_prefix" => |b, v| { b.cache_key_prefix = v.string()? };
    "file_path" => |b, v| { b.file_path = Some(PathBuf::from(v.text()?)) };
    "store_timeout_ms" => |b, v| { b.store_timeout = std::time::Duration::from_millis(v.number("a number of milliseconds")?) };
    "expiry_slack" => |b, v| { let secs = v.number("a number of seconds (0 writes Django's exact expiry dates)")?; b.expiry_slack = std::time::Duration::from_secs(secs) };
    "secret_key" => |b, v| { b.secret_key = Some(SecretKey::new(v.string()?)) };
    "secret_key_fallbacks" => |b, v| { b.fallback_keys = parse_fallbacks(v.name, v.list())? };
    "cookie_name" => |b, v| { b.cookie_name = v.string()? };
    "cookie_age" => |b, v| { b.cookie_age = v.number("a number of seconds")? };
    "cookie_domain" => |b, v| { b.cookie_domain = Some(v.string()?).filter(|d| !d.is_empty()) };
    "cookie_path" => |b, v| { b.cookie_path = v.string()? };
    "cookie_secure" => |b, v| { b.cookie_secure = v.bool()? };
    "cookie_httponly" => |b, v| { b.cookie_httponly = v.bool()? };
    "cookie_samesite" => |b, v| { b.cookie_samesite = parse_samesite(v.text()?)? };
    "save_every_request" => |b, v| { b.save_every_request = v.bool()? };
    "expire_at_browser_close" => |b, v| { b.expire_at_browser_close = v.bool()? };
    "cache_control" => |b, v| { b.cache_control = parse_cache_control(v.text()?)? };
    "idle_timeout" => |b, v| { b.idle_timeout = v.secs_or_off("a number of seconds (0 turns it off)")? };
    "absolute_timeout" => |b, v| { b.absolute_timeout = v.secs_or_off("a number of seconds (0 turns it off)")? };
    "cookie_overflow" => |b, v| { b.cookie_overflow = parse_overflow(v.text()?)? };
    "hash_ids_at_rest" => |b, v| { b.hash_ids_at_rest = v.bool()? };
    "track_user_sessions" => |b, v| { b.track_user_sessions = v.bool()? };
    "record_ip" => |b, v| { b.record_ip = v.bool()? };
    "max_sessions_per_user" => |b, v| { let n: u32 = v.number("a number of sessions (0: unlimited)")?; b.max_sessions_per_user = Some(n).filter(|&n| n != 0) };
    "stolen_cookie_grace" => |b, v| { b.stolen_cookie_grace = v.secs_or_off("a number of seconds, or off (0 is off too)")? };
    "stolen_cookie_ends_user_sessions" => |b, v| { b.stolen_cookie_ends_user_sessions = v.bool()? };
    "cookie_revocation" => |b, v| { b.cookie_revocation = parse_revocation(v.text()?)? };
    "allow_in_memory_revocation" => |b, v| { b.allow_in_memory_revocation = v.bool()? };
    "concurrency" => |b, v| { b.concurrency = parse_concurrency(v.text()?)? };
    "auto_migrate" => |b, v| { b.auto_migrate = v.bool()? };
    "signed_cookies_salt" (file only) => |b, v| { b.signed_cookies_salt = v.string()? };
    "store_salt" (file only) => |b, v| { b.store_salt = v.string()? };
};

/// Whether a cache URL names the in-process cache (`memory://`), whose records live and
/// die with this process.
pub(crate) fn is_in_process(url: &str) -> bool {
    let url = url.trim();
    let scheme = url.split_once("://").map_or(url, |(scheme, _)| scheme);
    scheme.eq_ignore_ascii_case("memory") || url == "memory" || url.starts_with("memory?")
}

/// The variable of a setting: `SESSIO_` and its TOML key in capitals.
fn env_name(key: &str) -> String {
    format!("SESSIO_{}", key.to_ascii_uppercase())
}

fn parse_revocation(v: &str) -> Result<Option<EngineKind>> {
    let v = v.trim();
    if v.is_empty() || v.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    match v.parse()? {
        k @ (EngineKind::Db | EngineKind::Cache | EngineKind::CachedDb | EngineKind::File) => {
            Ok(Some(k))
        }
        other => Err(Error::Config(format!(
            "cookie_revocation needs a server engine (db, cache, cached-db, file), not `{other}`"
        ))),
    }
}

fn parse_overflow(v: &str) -> Result<CookieOverflow> {
    let v = v.trim().to_ascii_lowercase();
    match v.split_once(':') {
        None if v == "error" => Ok(CookieOverflow::Error),
        None if v == "spill" => Ok(CookieOverflow::Spill(EngineKind::Db)),
        Some(("spill", engine)) => match engine.parse()? {
            k @ (EngineKind::Db | EngineKind::Cache | EngineKind::CachedDb | EngineKind::File) => {
                Ok(CookieOverflow::Spill(k))
            }
            other => Err(Error::Config(format!(
                "cookie_overflow cannot spill into `{other}`: use spill:db, spill:cache, spill:cached-db or spill:file"
            ))),
        },
        _ => Err(Error::Config(format!(
            "cookie_overflow `{v}` is not one of error, spill, spill:db, spill:cache, spill:file"
        ))),
    }
}

fn parse_concurrency(v: &str) -> Result<Concurrency> {
    match v.trim().to_ascii_lowercase().replace('_', "-").as_str() {
        "merge" => Ok(Concurrency::Merge),
        "last-write-wins" | "lww" | "django" => Ok(Concurrency::LastWriteWins),
        other => Err(Error::Config(format!(
            "concurrency `{other}` is not one of merge, last-write-wins"
        ))),
    }
}

fn parse_cache_control(v: &str) -> Result<Option<String>> {
    match v.trim().to_ascii_lowercase().as_str() {
        "off" | "false" | "none" | "" => Ok(None),
        "private" => Ok(Some("private".into())),
        "no-store" => Ok(Some("no-store".into())),
        other => Err(Error::Config(format!(
            "cache_control `{other}` is not one of private, no-store, off"
        ))),
    }
}

/// A whole number from variable `name`; the error says it is not `what` (the unit, and
/// what 0 means where that matters).
fn parse_number<T: std::str::FromStr>(name: &str, v: &str, what: &str) -> Result<T> {
    v.trim()
        .parse()
        .map_err(|_| Error::Config(format!("{name}=`{v}` is not {what}")))
}

/// The fallback keys of setting `name`, refusing an empty entry (a stray comma, or `""`),
/// which would otherwise become a key anyone can sign with.
fn parse_fallbacks(name: &str, keys: impl IntoIterator<Item = String>) -> Result<Vec<SecretKey>> {
    keys.into_iter()
        .enumerate()
        .map(|(i, k)| {
            if k.trim().is_empty() {
                Err(Error::Config(format!(
                    "{name}: entry #{} is empty: remove it (and any stray comma)",
                    i + 1
                )))
            } else {
                Ok(SecretKey::new(k))
            }
        })
        .collect()
}

fn parse_bool(name: &str, v: &str) -> Result<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        other => Err(Error::Config(format!(
            "{name}=`{other}` is not a boolean: use true or false"
        ))),
    }
}

impl ConfigBuilder {
    /// The engine (`SESSION_ENGINE`).
    pub fn engine(mut self, engine: EngineKind) -> Self {
        self.engine = engine;
        self
    }
    /// The database URL of the `db` engine: `sqlite://path/to/file.db` or `sqlite::memory:`.
    pub fn database_url(mut self, url: impl Into<String>) -> Self {
        self.database_url = url.into();
        self
    }
    /// The cache URL of the `cache` and `cached-db` engines (see [`Config::cache_url`]).
    pub fn cache_url(mut self, url: impl Into<String>) -> Self {
        self.cache_url = url.into();
        self
    }
    /// The prefix of session keys in a cache (default [`DEFAULT_CACHE_KEY_PREFIX`]).
    pub fn cache_key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.cache_key_prefix = prefix.into();
        self
    }
    /// The directory of the `file` engine (`SESSION_FILE_PATH`).
    pub fn file_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.file_path = Some(path.into());
        self
    }
    /// How long one store operation may take (default 5 s).
    pub fn store_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.store_timeout = timeout;
        self
    }
    /// How much earlier than asked a save may leave a session's stored expiry date
    /// (default 60 s; never more than 1% of the session's time left). On PostgreSQL this
    /// lets most saves update the row in place instead of writing every index again; zero
    /// writes the dates Django writes, to the microsecond.
    pub fn expiry_slack(mut self, slack: std::time::Duration) -> Self {
        self.expiry_slack = slack;
        self
    }
    /// The secret key that signs (`SECRET_KEY`). Required; at least 50 characters.
    pub fn secret_key(mut self, key: impl Into<Arc<str>>) -> Self {
        self.secret_key = Some(SecretKey::new(key));
        self
    }
    /// Old keys that still verify but never sign (`SECRET_KEY_FALLBACKS`), newest first.
    /// Each must pass the secret key's strength rule (unless
    /// [`allow_weak_secret_key`](Self::allow_weak_secret_key)) and none may be empty.
    pub fn fallback_keys<I, K>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = K>,
        K: Into<Arc<str>>,
    {
        self.fallback_keys = keys.into_iter().map(SecretKey::new).collect();
        self
    }
    /// Accepts a weak secret key (and weak fallback keys; never an empty one). Only for
    /// sharing sessions with an existing Django deployment whose key cannot change yet, and
    /// for tests; `sessio check` keeps reporting it.
    pub fn allow_weak_secret_key(mut self, allow: bool) -> Self {
        self.allow_weak_secret_key = allow;
        self
    }
    /// `SESSION_COOKIE_NAME`.
    pub fn cookie_name(mut self, name: impl Into<String>) -> Self {
        self.cookie_name = name.into();
        self
    }
    /// `SESSION_COOKIE_AGE`, in seconds.
    pub fn cookie_age(mut self, seconds: i64) -> Self {
        self.cookie_age = seconds;
        self
    }
    /// `SESSION_COOKIE_DOMAIN`.
    pub fn cookie_domain(mut self, domain: Option<String>) -> Self {
        self.cookie_domain = domain;
        self
    }
    /// `SESSION_COOKIE_PATH`.
    pub fn cookie_path(mut self, path: impl Into<String>) -> Self {
        self.cookie_path = path.into();
        self
    }
    /// `SESSION_COOKIE_SECURE`.
    pub fn cookie_secure(mut self, secure: bool) -> Self {
        self.cookie_secure = secure;
        self
    }
    /// `SESSION_COOKIE_HTTPONLY`.
    pub fn cookie_httponly(mut self, httponly: bool) -> Self {
        self.cookie_httponly = httponly;
        self
    }
    /// `SESSION_COOKIE_SAMESITE`; `None` omits the attribute.
    pub fn cookie_samesite(mut self, samesite: Option<SameSite>) -> Self {
        self.cookie_samesite = samesite;
        self
    }
    /// `SESSION_SAVE_EVERY_REQUEST`.
    pub fn save_every_request(mut self, on: bool) -> Self {
        self.save_every_request = on;
        self
    }
    /// `SESSION_EXPIRE_AT_BROWSER_CLOSE`.
    pub fn expire_at_browser_close(mut self, on: bool) -> Self {
        self.expire_at_browser_close = on;
        self
    }
    /// Create or upgrade the schema when a server engine starts.
    pub fn auto_migrate(mut self, on: bool) -> Self {
        self.auto_migrate = on;
        self
    }
    /// The salt of signed-cookie values (Django's default unless sharing with a custom
    /// engine).
    pub fn signed_cookies_salt(mut self, salt: impl Into<String>) -> Self {
        self.signed_cookies_salt = salt.into();
        self
    }
    /// The salt of `session_data` in server stores: `django.contrib.sessions.` + the
    /// Django store's class name.
    pub fn store_salt(mut self, salt: impl Into<String>) -> Self {
        self.store_salt = salt.into();
        self
    }
    /// The `Cache-Control` directive for responses that set the session cookie: `private`
    /// (default), `no-store`, or `None` to leave the header alone (Django's behaviour).
    pub fn cache_control(mut self, directive: Option<&str>) -> Self {
        self.cache_control = directive.map(str::to_owned);
        self
    }
    /// Ends sessions unused for this long (whole seconds), enforced on the server for every
    /// engine and inside the payload for cookie engines.
    pub fn idle_timeout(mut self, timeout: Option<std::time::Duration>) -> Self {
        self.idle_timeout = timeout;
        self
    }
    /// Ends sessions this long after they were created (whole seconds), however active.
    pub fn absolute_timeout(mut self, timeout: Option<std::time::Duration>) -> Self {
        self.absolute_timeout = timeout;
        self
    }
    /// Store only a keyed hash of each session id in server engines, so a leaked table or
    /// cache dump yields no usable cookie (default off: Django stores raw ids).
    pub fn hash_ids_at_rest(mut self, on: bool) -> Self {
        self.hash_ids_at_rest = on;
        self
    }
    /// Index logins per user in the server engine, so a user's sessions can be listed and
    /// revoked (default off: Django keeps no such index, and the index costs a write per
    /// login).
    pub fn track_user_sessions(mut self, on: bool) -> Self {
        self.track_user_sessions = on;
        self
    }
    /// The most sessions one user may have at once (default `None`: unlimited; `Some(0)` is
    /// unlimited too).
    pub fn max_sessions_per_user(mut self, max: Option<u32>) -> Self {
        self.max_sessions_per_user = max;
        self
    }
    /// How long after an id is retired (login cycles it) a request may still present it
    /// before sessio treats the cookie as stolen (default 60 s, at most a day); `None` (or
    /// zero) disables stolen-cookie detection.
    pub fn stolen_cookie_grace(mut self, grace: Option<std::time::Duration>) -> Self {
        self.stolen_cookie_grace = grace;
        self
    }
    /// On a stolen cookie, end every session of its user, not only the one it belonged to
    /// (default off).
    pub fn stolen_cookie_ends_user_sessions(mut self, on: bool) -> Self {
        self.stolen_cookie_ends_user_sessions = on;
        self
    }
    /// Record the client address in a user's session list (default off).
    pub fn record_ip(mut self, on: bool) -> Self {
        self.record_ip = on;
        self
    }
    /// The server engine (db, cache, cached-db or file, with the configured URLs) that keeps
    /// per-user generation counters, so a cookie engine can revoke a user's sessions.
    pub fn cookie_revocation(mut self, engine: Option<EngineKind>) -> Self {
        self.cookie_revocation = engine;
        self
    }
    /// Accepts `cookie_revocation = cache` on the in-process `memory://` cache, whose
    /// revocations are lost on restart, not shared between processes and evictable (default
    /// off: refused). For tests and single-process demos only.
    pub fn allow_in_memory_revocation(mut self, allow: bool) -> Self {
        self.allow_in_memory_revocation = allow;
        self
    }
    /// What cookie engines do with a session too big for a cookie (default: an error).
    pub fn cookie_overflow(mut self, overflow: CookieOverflow) -> Self {
        self.cookie_overflow = overflow;
        self
    }
    /// How concurrent saves of one session combine (default [`Concurrency::Merge`]).
    pub fn concurrency(mut self, concurrency: Concurrency) -> Self {
        self.concurrency = concurrency;
        self
    }
    /// The clock (tests use [`crate::clock::ManualClock`]).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Applies the settings of a TOML file (see the module docs for the keys).
    pub fn toml_file(self, path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            context: format!("cannot read config file {}", path.display()),
            source,
        })?;
        self.toml_str(&text)
            .map_err(|e| Error::Config(format!("{}: {e}", path.display())))
    }

    /// Applies the settings of a TOML document (keys as in the module's table).
    pub fn toml_str(mut self, text: &str) -> Result<Self> {
        let file: toml::Table = toml::from_str(text).map_err(|e| Error::Config(e.to_string()))?;
        for (key, value) in &file {
            let Some(setting) = SETTINGS.iter().find(|s| s.key == key) else {
                let known: Vec<&str> = SETTINGS.iter().map(|s| s.key).collect();
                return Err(Error::Config(format!(
                    "unknown setting `{key}` in the TOML file; the settings are: {}",
                    known.join(", ")
                )));
            };
            let text;
            let raw = match value {
                toml::Value::String(v) => Raw::Text(v),
                toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Boolean(_) => {
                    text = value.to_string();
                    Raw::Text(&text)
                }
                toml::Value::Array(items) => Raw::List(
                    items
                        .iter()
                        .map(|item| match item {
                            toml::Value::String(v) => Ok(v.clone()),
                            other => Err(Error::Config(format!(
                                "{key}: the list takes strings, not `{other}`"
                            ))),
                        })
                        .collect::<Result<_>>()?,
                ),
                other => {
                    return Err(Error::Config(format!(
                        "{key} = `{other}` is not a setting's value (text, a number, true or false)"
                    )))
                }
            };
            (setting.apply)(&mut self, &Input { name: key, raw })?;
        }
        Ok(self)
    }

    /// Applies the `SESSIO_*` environment variables that are set.
    pub fn env(self) -> Result<Self> {
        self.env_from(|name| std::env::var(name).ok())
    }

    /// Applies `SESSIO_*` variables read through `lookup` (for tests and embedding).
    pub fn env_from(mut self, lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        for setting in SETTINGS.iter().filter(|s| s.env) {
            let name = env_name(setting.key);
            if let Some(v) = lookup(&name) {
                let raw = Raw::Text(&v);
                (setting.apply)(&mut self, &Input { name: &name, raw })?;
            }
        }
        Ok(self)
    }

    /// Whether a secret key has been set.
    pub fn has_secret_key(&self) -> bool {
        self.secret_key.is_some()
    }

    /// Checks the settings and builds the [`Config`].
    pub fn build(self) -> Result<Config> {
        let secret_key = self
            .secret_key
            .ok_or_else(|| Error::Config(format!("no secret key is set: {HOW_TO_MAKE_A_KEY}")))?;
        if !self.allow_weak_secret_key {
            if let Some(why) = secret_key.weakness() {
                return Err(Error::Config(format!("{why}: {HOW_TO_MAKE_A_KEY}")));
            }
        }
        if secret_key.as_bytes().is_empty() {
            return Err(Error::Config(format!(
                "the secret key is empty: {HOW_TO_MAKE_A_KEY}"
            )));
        }
        for (i, key) in self.fallback_keys.iter().enumerate() {
            // Refused even when weak keys are allowed: an empty key is no secret at all.
            if key.expose().trim().is_empty() {
                return Err(Error::Config(format!(
                    "fallback key #{} is empty: remove it from secret_key_fallbacks \
                     (SESSIO_SECRET_KEY_FALLBACKS)",
                    i + 1
                )));
            }
            if !self.allow_weak_secret_key {
                if let Some(why) = key.weakness_of(&format!("fallback key #{}", i + 1)) {
                    return Err(Error::Config(format!("{why}. {FALLBACK_FIX}")));
                }
            }
        }
        validate_cookie_name(&self.cookie_name)?;
        if !self.cookie_path.starts_with('/') || self.cookie_path.bytes().any(is_bad_attr_byte) {
            return Err(Error::Config(format!(
                "cookie_path `{}` must start with `/` and contain no control characters or `;`",
                self.cookie_path
            )));
        }
        if let Some(domain) = &self.cookie_domain {
            let ok = domain
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
            if !ok {
                return Err(Error::Config(format!(
                    "cookie_domain `{domain}` may contain only letters, digits, `.` and `-`"
                )));
            }
        }
        if let CookieOverflow::Spill(k) = self.cookie_overflow {
            if matches!(k, EngineKind::SignedCookies | EngineKind::EncryptedCookies) {
                return Err(Error::Config(
                    "cookie_overflow must spill into a server engine (db, cache, cached-db, file)"
                        .into(),
                ));
            }
        }
        if self.cache_key_prefix.is_empty() {
            return Err(Error::Config(
                "cache_key_prefix must not be empty: a bare session key could collide with other cache data".into(),
            ));
        }
        if self.store_timeout.is_zero() {
            return Err(Error::Config("store_timeout must be more than zero".into()));
        }
        if self.max_sessions_per_user.is_some_and(|n| n != 0) && !self.track_user_sessions {
            return Err(Error::Config(
                "max_sessions_per_user needs track_user_sessions = true (server engines): \
                 without the per-user index there is nothing to count"
                    .into(),
            ));
        }
        if self.cookie_age <= 0 || self.cookie_age > MAX_COOKIE_AGE {
            return Err(Error::Config(format!(
                "cookie_age must be a positive number of seconds up to {MAX_COOKIE_AGE} \
                 (100 years), not {}",
                self.cookie_age
            )));
        }
        at_most(
            "store_timeout",
            self.store_timeout,
            MAX_STORE_TIMEOUT,
            "an hour",
        )?;
        at_most("expiry_slack", self.expiry_slack, MAX_EXPIRY_SLACK, "a day")?;
        for (name, timeout) in [
            ("idle_timeout", self.idle_timeout),
            ("absolute_timeout", self.absolute_timeout),
        ] {
            if let Some(t) = timeout {
                at_most(name, t, MAX_LIFETIME, "100 years")?;
            }
        }
        if let Some(grace) = self.stolen_cookie_grace {
            at_most(
                "stolen_cookie_grace",
                grace,
                MAX_STOLEN_COOKIE_GRACE,
                "a day",
            )?;
        }
        // Browsers match these prefixes case-insensitively (RFC 6265bis): so does the check.
        let has_prefix = |prefix: &str| {
            self.cookie_name
                .get(..prefix.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
        };
        if has_prefix("__Host-")
            && (self.cookie_domain.is_some() || self.cookie_path != "/" || !self.cookie_secure)
        {
            return Err(Error::Config(format!(
                "cookie_name `{}` has the `__Host-` prefix, which needs cookie_secure=true, \
                 cookie_path=/ and no cookie_domain",
                self.cookie_name
            )));
        }
        if has_prefix("__Secure-") && !self.cookie_secure {
            return Err(Error::Config(format!(
                "cookie_name `{}` has the `__Secure-` prefix, which needs cookie_secure=true",
                self.cookie_name
            )));
        }
        if self.cookie_revocation == Some(EngineKind::Cache)
            && is_in_process(&self.cache_url)
            && !self.allow_in_memory_revocation
        {
            return Err(Error::Config(format!(
                "cookie_revocation = cache with cache_url `{}` keeps revocations in this \
                 process's memory: they are lost on restart, not seen by other processes and \
                 can be evicted, so a revoked cookie would work again. Point cache_url \
                 (SESSIO_CACHE_URL) at Redis, use cookie_revocation = db or file, or for tests \
                 set allow_in_memory_revocation (SESSIO_ALLOW_IN_MEMORY_REVOCATION=true)",
                crate::error::redact_url(&self.cache_url)
            )));
        }
        if self.signed_cookies_salt == self.store_salt {
            return Err(Error::Config(format!(
                "signed_cookies_salt and store_salt are both `{}`: every stored session_data \
                 would then be a valid session cookie; keep them different (the defaults are)",
                self.store_salt
            )));
        }
        Ok(Config {
            engine: self.engine,
            cookie: CookieSettings {
                name: self.cookie_name,
                domain: self.cookie_domain,
                path: self.cookie_path,
                secure: self.cookie_secure,
                httponly: self.cookie_httponly,
                samesite: self.cookie_samesite,
                overflow: self.cookie_overflow,
                cache_control: self.cache_control,
            },
            keys: KeySettings {
                secret_key,
                fallback_keys: self.fallback_keys,
                weak_key_allowed: self.allow_weak_secret_key,
                signed_cookies_salt: self.signed_cookies_salt,
                store_salt: self.store_salt,
                hash_ids_at_rest: self.hash_ids_at_rest,
            },
            lifetimes: Lifetimes {
                cookie_age: self.cookie_age,
                expire_at_browser_close: self.expire_at_browser_close,
                idle_timeout: self.idle_timeout,
                absolute_timeout: self.absolute_timeout,
            },
            saving: SaveSettings {
                every_request: self.save_every_request,
                concurrency: self.concurrency,
            },
            servers: ServerSettings {
                db: DbOptions {
                    url: self.database_url,
                    expiry_slack: self.expiry_slack,
                },
                cache: CacheOptions {
                    url: self.cache_url,
                    key_prefix: self.cache_key_prefix,
                },
                file: FileOptions {
                    path: self.file_path,
                },
                timeout: self.store_timeout,
                auto_migrate: self.auto_migrate,
            },
            users: UserSettings {
                track_user_sessions: self.track_user_sessions,
                record_ip: self.record_ip,
                max_sessions_per_user: self.max_sessions_per_user.filter(|&n| n != 0),
                stolen_cookie_grace: self.stolen_cookie_grace.filter(|d| !d.is_zero()),
                stolen_cookie_ends_user_sessions: self.stolen_cookie_ends_user_sessions,
                cookie_revocation: self.cookie_revocation,
                allow_in_memory_revocation: self.allow_in_memory_revocation,
            },
            clock: self.clock,
        })
    }
}

/// Refuses a duration setting longer than `max` (`max_words` says it for people).
fn at_most(
    name: &str,
    value: std::time::Duration,
    max: std::time::Duration,
    max_words: &str,
) -> Result<()> {
    if value > max {
        return Err(Error::Config(format!(
            "{name} is {} seconds; at most {} ({max_words}) is accepted",
            value.as_secs(),
            max.as_secs()
        )));
    }
    Ok(())
}

fn is_bad_attr_byte(b: u8) -> bool {
    b < 0x20 || b == 0x7f || b == b';'
}

/// RFC 6265 cookie-name: a token (no separators, no controls, no spaces).
fn validate_cookie_name(name: &str) -> Result<()> {
    const SEPARATORS: &[u8] = b"()<>@,;:\\\"/[]?={} \t";
    if name.is_empty()
        || name
            .bytes()
            .any(|b| b <= 0x20 || b >= 0x7f || SEPARATORS.contains(&b))
    {
        return Err(Error::Config(format!(
            "cookie_name `{name}` is not a valid cookie name (letters, digits and !#$%&'*+-.^_`|~)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_is_documented_with_its_variable() {
        let docs = include_str!("config.rs");
        for setting in SETTINGS {
            let key = format!("| `{}` |", setting.key);
            assert!(
                docs.contains(&key),
                "{} is not in the module's table",
                setting.key
            );
            let var = format!("`{}`", env_name(setting.key));
            assert_eq!(docs.contains(&var), setting.env, "{var}");
        }
    }

    #[test]
    fn toml_and_env_take_the_same_values() {
        let b = || {
            Config::builder()
                .secret_key("k")
                .allow_weak_secret_key(true)
        };
        let from_toml = b()
            .toml_str(
                "cookie_secure = 'yes'\nidle_timeout = 'off'\nsecret_key_fallbacks = ['a,b']\n",
            )
            .unwrap()
            .build()
            .unwrap();
        assert!(from_toml.cookie_secure());
        assert_eq!(from_toml.idle_timeout(), None);
        assert_eq!(
            from_toml.fallback_keys().len(),
            1,
            "a TOML list is not split at commas"
        );
        let err = b().toml_str("cookie_agee = 5\n").unwrap_err().to_string();
        assert!(
            err.contains("cookie_agee") && err.contains("cookie_age"),
            "{err}"
        );
        let err = b()
            .toml_str("cookie_age = 'soon'\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cookie_age") && err.contains("seconds"),
            "{err}"
        );
    }

    const KEY: &str = "0123456789abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH";

    #[test]
    fn defaults_match_django() {
        let c = Config::builder().secret_key(KEY).build().unwrap();
        assert_eq!(c.cookie_name(), "sessionid");
        assert_eq!(c.cookie_age(), 1_209_600);
        assert_eq!(c.cookie_path(), "/");
        assert_eq!(c.cookie_domain(), None);
        assert!(!c.cookie_secure());
        assert!(c.cookie_httponly());
        assert_eq!(c.cookie_samesite(), Some(SameSite::Lax));
        assert!(!c.save_every_request());
        assert!(!c.expire_at_browser_close());
        assert_eq!(c.engine(), EngineKind::Db);
    }

    #[test]
    fn missing_or_short_keys_are_refused_with_a_hint() {
        let e = Config::builder().build().unwrap_err().to_string();
        assert!(e.contains("SESSIO_SECRET_KEY"), "{e}");
        let e = Config::builder()
            .secret_key("short")
            .build()
            .unwrap_err()
            .to_string();
        assert!(e.contains("50") && e.contains("SESSIO_SECRET_KEY"), "{e}");
        assert!(Config::builder()
            .secret_key("short")
            .allow_weak_secret_key(true)
            .build()
            .is_ok());
    }

    #[test]
    fn weak_or_empty_fallback_keys_are_refused_in_code() {
        let b = || Config::builder().secret_key(KEY);
        let strong_old = "old-0123456789abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH";
        assert!(b().fallback_keys([strong_old]).build().is_ok());
        for weak in [
            "short",
            "django-insecure-0123456789abcdefghijklmnopqrstuvwxyz0123456789",
        ] {
            let e = b()
                .fallback_keys([strong_old, weak])
                .build()
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("fallback key #2") && e.contains("re-issued"),
                "{e}"
            );
            // Allowed for Django interop, like a weak current key.
            assert!(b()
                .fallback_keys([weak])
                .allow_weak_secret_key(true)
                .build()
                .is_ok());
        }
        // An empty fallback is refused even then.
        for empty in ["", "  "] {
            let e = b()
                .fallback_keys([empty])
                .allow_weak_secret_key(true)
                .build()
                .unwrap_err()
                .to_string();
            assert!(e.contains("fallback key #1 is empty"), "{e}");
        }
    }

    #[test]
    fn weak_or_empty_fallback_keys_are_refused_in_toml_and_env() {
        let b = || Config::builder().secret_key(KEY);
        let e = b()
            .toml_str("secret_key_fallbacks = ['']\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("secret_key_fallbacks") && e.contains("empty"),
            "{e}"
        );
        let e = b()
            .toml_str("secret_key_fallbacks = ['short']\n")
            .unwrap()
            .build()
            .unwrap_err()
            .to_string();
        assert!(e.contains("fallback key #1 is 5 characters"), "{e}");
        let env = |v: &'static str| {
            b().env_from(move |n| (n == "SESSIO_SECRET_KEY_FALLBACKS").then(|| v.into()))
        };
        let e = env("a,,b").unwrap_err().to_string();
        assert!(
            e.contains("SESSIO_SECRET_KEY_FALLBACKS") && e.contains("entry #2 is empty"),
            "{e}"
        );
        assert!(env("short").unwrap().build().is_err());
        assert!(env("").unwrap().build().unwrap().fallback_keys().is_empty());
        let two = format!("{KEY}x, {KEY}y");
        let c = b()
            .env_from(|n| (n == "SESSIO_SECRET_KEY_FALLBACKS").then(|| two.clone()))
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(c.fallback_keys().len(), 2);
    }

    #[test]
    fn env_and_toml_layer() {
        let b = Config::builder()
            .toml_str("engine = 'signed-cookies'\ncookie_age = 60\ncookie_samesite = 'Strict'\n")
            .unwrap()
            .env_from(|n| match n {
                "SESSIO_SECRET_KEY" => Some(KEY.into()),
                "SESSIO_COOKIE_AGE" => Some("120".into()),
                "SESSIO_COOKIE_SECURE" => Some("true".into()),
                _ => None,
            })
            .unwrap();
        let c = b.build().unwrap();
        assert_eq!(c.engine(), EngineKind::SignedCookies);
        assert_eq!(c.cookie_age(), 120);
        assert!(c.cookie_secure());
        assert_eq!(c.cookie_samesite(), Some(SameSite::Strict));
        assert!(Config::builder().toml_str("nonsense = 1").is_err());
        assert!(Config::builder()
            .env_from(|n| (n == "SESSIO_COOKIE_SECURE").then(|| "maybe".into()))
            .is_err());
    }

    #[test]
    fn expiry_slack_from_code_toml_and_env() {
        let b = || Config::builder().secret_key(KEY);
        assert_eq!(b().build().unwrap().expiry_slack(), DEFAULT_EXPIRY_SLACK);
        let c = b().toml_str("expiry_slack = 0\n").unwrap().build().unwrap();
        assert_eq!(c.expiry_slack(), std::time::Duration::ZERO);
        let c = b()
            .env_from(|n| (n == "SESSIO_EXPIRY_SLACK").then(|| "5".into()))
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(c.expiry_slack(), std::time::Duration::from_secs(5));
        let e = b()
            .env_from(|n| (n == "SESSIO_EXPIRY_SLACK").then(|| "1m".into()))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("SESSIO_EXPIRY_SLACK") && e.contains("seconds"),
            "{e}"
        );
    }

    #[test]
    fn cookie_attributes_are_validated() {
        let b = || Config::builder().secret_key(KEY);
        assert!(b().cookie_name("bad name").build().is_err());
        assert!(b().cookie_name("a;b").build().is_err());
        assert!(b().cookie_path("nope").build().is_err());
        assert!(b().cookie_domain(Some("a;b".into())).build().is_err());
        assert!(b().cookie_name("__Host-s").build().is_err());
        assert!(b()
            .cookie_name("__Host-s")
            .cookie_secure(true)
            .build()
            .is_ok());
        assert!(b()
            .cookie_name("__Host-s")
            .cookie_secure(true)
            .cookie_path("/app")
            .build()
            .is_err());
    }

    #[test]
    fn cookie_prefixes_are_checked_in_any_case() {
        let b = || Config::builder().secret_key(KEY);
        for name in ["__host-s", "__HOST-s", "__Host-s", "__hOsT-s"] {
            let e = b().cookie_name(name).build().unwrap_err().to_string();
            assert!(e.contains("__Host-") && e.contains(name), "{e}");
            assert!(b()
                .cookie_name(name)
                .cookie_secure(true)
                .cookie_domain(Some("example.com".into()))
                .build()
                .is_err());
            assert!(b().cookie_name(name).cookie_secure(true).build().is_ok());
        }
        for name in ["__secure-s", "__SECURE-s", "__Secure-s"] {
            let e = b().cookie_name(name).build().unwrap_err().to_string();
            assert!(e.contains("__Secure-") && e.contains(name), "{e}");
            assert!(b().cookie_name(name).cookie_secure(true).build().is_ok());
        }
        // Not a prefix: no checks (and a name shorter than a prefix is fine).
        assert!(b().cookie_name("x__host-s").build().is_ok());
        assert!(b().cookie_name("__h").build().is_ok());
    }

    #[test]
    fn the_cookie_salt_cannot_be_the_store_salt() {
        let b = || Config::builder().secret_key(KEY);
        let e = b()
            .signed_cookies_salt(signing::STORE_SALT)
            .build()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("signed_cookies_salt") && e.contains("store_salt"),
            "{e}"
        );
        let e = b()
            .toml_str("signed_cookies_salt = 'same'\nstore_salt = 'same'\n")
            .unwrap()
            .build()
            .unwrap_err()
            .to_string();
        assert!(e.contains("`same`"), "{e}");
        assert!(b().store_salt("custom.store").build().is_ok());
    }

    #[test]
    fn revocation_in_process_memory_needs_the_allow_flag() {
        let b = || {
            Config::builder()
                .secret_key(KEY)
                .engine(EngineKind::SignedCookies)
                .cookie_revocation(Some(EngineKind::Cache))
        };
        for url in [
            "memory://",
            "memory",
            "memory://?max_entries=10",
            "MEMORY://",
        ] {
            let e = b().cache_url(url).build().unwrap_err().to_string();
            assert!(
                e.contains("cookie_revocation = cache")
                    && e.contains("Redis")
                    && e.contains("SESSIO_ALLOW_IN_MEMORY_REVOCATION"),
                "{e}"
            );
        }
        let c = b().allow_in_memory_revocation(true).build().unwrap();
        assert!(c.revocation_is_in_memory());
        assert!(c
            .deploy_warnings()
            .iter()
            .any(|(id, _)| *id == "sessio.W030"));
        assert!(b()
            .toml_str("allow_in_memory_revocation = true\n")
            .unwrap()
            .build()
            .is_ok());
        assert!(b()
            .env_from(|n| (n == "SESSIO_ALLOW_IN_MEMORY_REVOCATION").then(|| "true".into()))
            .unwrap()
            .build()
            .is_ok());
        // Durable stores need no flag.
        let c = b().cache_url("redis://127.0.0.1:6379/0").build().unwrap();
        assert!(!c.revocation_is_in_memory());
        assert!(b().cookie_revocation(Some(EngineKind::Db)).build().is_ok());
    }

    #[test]
    fn durations_are_bounded_at_build() {
        let b = || Config::builder().secret_key(KEY);
        for age in [i64::MAX, 1_000_000_000_000_000, MAX_COOKIE_AGE + 1, 0, -1] {
            let e = b().cookie_age(age).build().unwrap_err().to_string();
            assert!(e.contains("cookie_age") && e.contains("100 years"), "{e}");
        }
        assert!(b().cookie_age(MAX_COOKIE_AGE).build().is_ok());
        let huge = std::time::Duration::from_secs(u64::MAX);
        let over = MAX_LIFETIME + std::time::Duration::from_secs(1);
        for t in [huge, over, std::time::Duration::MAX] {
            let e = b().idle_timeout(Some(t)).build().unwrap_err().to_string();
            assert!(e.contains("idle_timeout"), "{e}");
            let e = b()
                .absolute_timeout(Some(t))
                .build()
                .unwrap_err()
                .to_string();
            assert!(e.contains("absolute_timeout"), "{e}");
        }
        assert!(b()
            .idle_timeout(Some(MAX_LIFETIME))
            .absolute_timeout(Some(MAX_LIFETIME))
            .build()
            .is_ok());
        // TOML and env give whole seconds as u64: the same bound applies.
        let e = b()
            .toml_str(&format!("absolute_timeout = {}\n", i64::MAX))
            .unwrap()
            .build()
            .unwrap_err()
            .to_string();
        assert!(e.contains("absolute_timeout"), "{e}");
        let e = b()
            .env_from(|n| (n == "SESSIO_IDLE_TIMEOUT").then(|| u64::MAX.to_string()))
            .unwrap()
            .build()
            .unwrap_err()
            .to_string();
        assert!(e.contains("idle_timeout"), "{e}");
        let e = b()
            .env_from(|n| (n == "SESSIO_COOKIE_AGE").then(|| "1000000000000000".into()))
            .unwrap()
            .build()
            .unwrap_err()
            .to_string();
        assert!(e.contains("cookie_age"), "{e}");
        assert!(b().store_timeout(huge).build().is_err());
        assert!(b().expiry_slack(huge).build().is_err());
    }

    #[test]
    fn max_sessions_per_user_needs_the_index() {
        let err = Config::builder()
            .secret_key(KEY)
            .max_sessions_per_user(Some(3))
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("track_user_sessions"), "{err}");
    }

    #[test]
    fn session_limits_and_stolen_cookie_settings() {
        let b = || Config::builder().secret_key(KEY).track_user_sessions(true);
        let c = b().build().unwrap();
        assert_eq!(c.max_sessions_per_user(), None);
        assert_eq!(c.stolen_cookie_grace(), Some(DEFAULT_STOLEN_COOKIE_GRACE));
        assert!(!c.stolen_cookie_ends_user_sessions());

        let c = b()
            .max_sessions_per_user(Some(3))
            .stolen_cookie_grace(Some(std::time::Duration::from_secs(5)))
            .stolen_cookie_ends_user_sessions(true)
            .build()
            .unwrap();
        assert_eq!(c.max_sessions_per_user(), Some(3));
        assert_eq!(
            c.stolen_cookie_grace(),
            Some(std::time::Duration::from_secs(5))
        );
        assert!(c.stolen_cookie_ends_user_sessions());
        let c = b()
            .max_sessions_per_user(Some(0))
            .stolen_cookie_grace(Some(std::time::Duration::ZERO))
            .build()
            .unwrap();
        assert_eq!(c.max_sessions_per_user(), None);
        assert_eq!(c.stolen_cookie_grace(), None);

        let c = b()
            .toml_str(
                "max_sessions_per_user = 5\nstolen_cookie_grace = 0\n\
                 stolen_cookie_ends_user_sessions = true\n",
            )
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(c.max_sessions_per_user(), Some(5));
        assert_eq!(c.stolen_cookie_grace(), None);
        assert!(c.stolen_cookie_ends_user_sessions());
        assert_eq!(
            b().toml_str("max_sessions_per_user = 0\n")
                .unwrap()
                .build()
                .unwrap()
                .max_sessions_per_user(),
            None
        );

        let env = |pairs: &'static [(&'static str, &'static str)]| {
            b().env_from(move |n| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == n)
                    .map(|(_, v)| v.to_string())
            })
        };
        let c = env(&[
            ("SESSIO_MAX_SESSIONS_PER_USER", "2"),
            ("SESSIO_STOLEN_COOKIE_GRACE", "off"),
            ("SESSIO_STOLEN_COOKIE_ENDS_USER_SESSIONS", "true"),
        ])
        .unwrap()
        .build()
        .unwrap();
        assert_eq!(c.max_sessions_per_user(), Some(2));
        assert_eq!(c.stolen_cookie_grace(), None);
        assert!(c.stolen_cookie_ends_user_sessions());
        let c = env(&[("SESSIO_STOLEN_COOKIE_GRACE", "30")])
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(
            c.stolen_cookie_grace(),
            Some(std::time::Duration::from_secs(30))
        );
        for bad in [
            &[("SESSIO_MAX_SESSIONS_PER_USER", "-1")][..],
            &[("SESSIO_STOLEN_COOKIE_GRACE", "1m")][..],
        ] {
            let e = env(bad).unwrap_err().to_string();
            assert!(e.contains(bad[0].0), "{e}");
        }

        // The grace is bounded: a day at most.
        let e = env(&[("SESSIO_STOLEN_COOKIE_GRACE", "86401")])
            .unwrap()
            .build()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("stolen_cookie_grace") && e.contains("a day"),
            "{e}"
        );
        assert!(b()
            .stolen_cookie_grace(Some(MAX_STOLEN_COOKIE_GRACE))
            .build()
            .is_ok());
    }

    #[test]
    fn debug_hides_the_key() {
        let c = Config::builder().secret_key(KEY).build().unwrap();
        assert!(!format!("{c:?}").contains(KEY));
    }

    #[test]
    fn debug_hides_url_passwords() {
        let b = Config::builder()
            .secret_key(KEY)
            .fallback_keys([format!("{KEY}-old")])
            .database_url("postgres://app:db-hunter2@db.internal/sessions")
            .cache_url("redis://:cache-hunter2@cache.internal:6379/0");
        let c = b.clone().build().unwrap();
        for shown in [format!("{b:?}"), format!("{c:?}")] {
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(!shown.contains(KEY), "{shown}");
            assert!(
                shown.contains("postgres://app:***@db.internal/sessions"),
                "{shown}"
            );
            assert!(
                shown.contains("redis://:***@cache.internal:6379/0"),
                "{shown}"
            );
        }
    }
}
