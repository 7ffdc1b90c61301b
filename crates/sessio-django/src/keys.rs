//! The keys Django and sessio reserve inside a session's data.
//!
//! Django's keys are shared with Django applications byte for byte; sessio's own start with
//! `_sessio_` and travel inside the signed or encrypted payload of cookie sessions, so a
//! client can read but never forge them.

/// Django's custom expiry (`set_expiry`): seconds as a number, or an ISO date as a string.
pub const EXPIRY: &str = "_session_expiry";

/// Django's `SESSION_KEY`: the logged-in user's primary key, as a string.
pub const AUTH_USER_ID: &str = "_auth_user_id";
/// Django's `BACKEND_SESSION_KEY`: the dotted path of the backend that authenticated.
pub const AUTH_BACKEND: &str = "_auth_user_backend";
/// Django's `HASH_SESSION_KEY`: the session auth hash.
pub const AUTH_HASH: &str = "_auth_user_hash";

/// When the session was created (Unix seconds), for the absolute timeout.
pub const CREATED: &str = "_sessio_created";
/// When the session was last used (Unix seconds), for the idle timeout.
pub const ACTIVE: &str = "_sessio_active";
/// When the user logged in (Unix seconds), for the per-user index.
pub const LOGIN: &str = "_sessio_login";
/// When the session was last seen (Unix seconds), refreshed at most every few minutes.
pub const SEEN: &str = "_sessio_seen";
/// The user's revocation generation a cookie session was issued under.
pub const GENERATION: &str = "_sessio_gen";
/// A cookie session's own id, so that a logout can revoke it.
pub const SID: &str = "_sessio_sid";

/// Whether `key` is one of the keys above: a key an application should not write itself.
///
/// ```
/// assert!(sessio_django::keys::is_reserved("_session_expiry"));
/// assert!(!sessio_django::keys::is_reserved("cart"));
/// ```
pub fn is_reserved(key: &str) -> bool {
    [
        EXPIRY,
        AUTH_USER_ID,
        AUTH_BACKEND,
        AUTH_HASH,
        CREATED,
        ACTIVE,
        LOGIN,
        SEEN,
        GENERATION,
        SID,
    ]
    .contains(&key)
}
