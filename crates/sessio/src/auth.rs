//! Logins that Django's `django.contrib.auth` accepts, and Django logins that sessio reads.
//!
//! Django keeps the logged-in user in three session keys: `_auth_user_id` (the primary key
//! as a string), `_auth_user_backend` (the dotted path of the authentication backend) and
//! `_auth_user_hash` (an HMAC of the user's password hash, so that changing the password
//! logs out every other session). These helpers read and write them exactly as Django does.
//!
//! ```
//! # async fn run(session: sessio::Session) -> sessio::Result<()> {
//! use sessio::auth;
//!
//! // The password hash is the `password` column of Django's auth_user row.
//! let password_hash = "pbkdf2_sha256$870000$salt$hash=";
//! auth::login(&session, "42", auth::MODEL_BACKEND, password_hash).await?;
//!
//! // Later, on another request (in Rust or in Django):
//! if let Some(user) = auth::user(&session).await? {
//!     // Check the hash against the user's current password hash, as Django's get_user does.
//!     if auth::verify(&session, &user.id, password_hash).await? {
//!         println!("user {} is logged in via {}", user.id, user.backend);
//!     }
//! }
//! auth::logout(&session).await?;
//! # Ok(()) }
//! ```

use subtle::ConstantTimeEq;

use crate::error::Result;
use crate::session::Session;

/// Django's `SESSION_KEY`: the logged-in user's primary key, as a string.
pub const USER_ID_KEY: &str = sessio_django::keys::AUTH_USER_ID;
/// Django's `BACKEND_SESSION_KEY`: the dotted path of the backend that authenticated.
pub const BACKEND_KEY: &str = sessio_django::keys::AUTH_BACKEND;
/// Django's `HASH_SESSION_KEY`: the session auth hash.
pub const HASH_KEY: &str = sessio_django::keys::AUTH_HASH;
/// Django's default authentication backend.
pub const MODEL_BACKEND: &str = "django.contrib.auth.backends.ModelBackend";

const HASH_SALT: &str = "django.contrib.auth.models.AbstractBaseUser.get_session_auth_hash";

/// Who a session says is logged in (not yet verified against the password hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedInUser {
    /// `_auth_user_id`.
    pub id: String,
    /// `_auth_user_backend`.
    pub backend: String,
}

/// Django's `AbstractBaseUser.get_session_auth_hash()` for one secret key:
/// `salted_hmac(HASH_SALT, password_hash, secret, algorithm="sha256").hexdigest()`.
///
/// ```
/// let h = sessio::auth::session_auth_hash(b"secret", "pbkdf2_sha256$1$s$h");
/// assert_eq!(h.len(), 64);
/// ```
pub fn session_auth_hash(secret: &[u8], password_hash: &str) -> String {
    crate::signing::salted_hmac_sha256(HASH_SALT, password_hash.as_bytes(), secret)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn same(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The user the session says is logged in, if any (Django's `_get_user_session_key`).
pub async fn user(session: &Session) -> Result<Option<LoggedInUser>> {
    let id = match session.get_value(USER_ID_KEY).await? {
        Some(crate::Value::String(s)) => s,
        // Older Django versions stored integer ids.
        Some(crate::Value::Number(n)) => n.to_string(),
        _ => return Ok(None),
    };
    let backend = session
        .get::<String>(BACKEND_KEY)
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
    Ok(Some(LoggedInUser { id, backend }))
}

/// Logs `user_id` in, as `django.contrib.auth.login` does: a session that belonged to
/// another user (or to the same user with another password) is flushed first, otherwise its
/// id is cycled against session fixation; then the three auth keys are written.
pub async fn login(
    session: &Session,
    user_id: impl ToString,
    backend: &str,
    password_hash: &str,
) -> Result<()> {
    let user_id = user_id.to_string();
    let hash = session_auth_hash(session.config().secret_key().as_bytes(), password_hash);
    match user(session).await? {
        Some(current) => {
            let stored = session.get::<String>(HASH_KEY).await.ok().flatten();
            let same_user =
                same(&current.id, &user_id) && stored.as_deref().is_some_and(|s| same(s, &hash));
            if !same_user {
                session.flush().await?;
            }
        }
        None => session.cycle_id().await?,
    }
    session.insert(USER_ID_KEY, &user_id).await?;
    session.insert(BACKEND_KEY, backend).await?;
    session.insert(HASH_KEY, &hash).await?;
    // For listing and revoking the user's sessions (sessio's own keys, ignored by Django).
    session.record_login(&user_id).await?;
    Ok(())
}

/// Logs out, as `django.contrib.auth.logout` does: flushes the session.
pub async fn logout(session: &Session) -> Result<()> {
    session.flush().await
}

/// Checks the session's auth hash against the user's current password hash, as Django's
/// `get_user` does. A hash made with a fallback secret key is accepted and upgraded (new
/// session id, hash under the current key); a missing or wrong hash, or another user id,
/// flushes the session and returns `false`.
pub async fn verify(session: &Session, user_id: &str, password_hash: &str) -> Result<bool> {
    let Some(current) = user(session).await? else {
        return Ok(false);
    };
    if !same(&current.id, user_id) {
        return Ok(false);
    }
    let config = session.config().clone();
    let expected = session_auth_hash(config.secret_key().as_bytes(), password_hash);
    let stored = session.get::<String>(HASH_KEY).await.ok().flatten();
    let Some(stored) = stored.filter(|s| !s.is_empty()) else {
        session.flush().await?;
        return Ok(false);
    };
    if same(&stored, &expected) {
        return Ok(true);
    }
    let by_fallback = config
        .fallback_keys()
        .iter()
        .any(|k| same(&stored, &session_auth_hash(k.as_bytes(), password_hash)));
    if by_fallback {
        session.cycle_id().await?;
        session.insert(HASH_KEY, &expected).await?;
        return Ok(true);
    }
    session.flush().await?;
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::{Hmac, Mac};
    use sha2::{Digest, Sha256};

    #[test]
    fn hash_is_djangos_salted_hmac() {
        // salted_hmac(salt, value, secret, algorithm="sha256") = HMAC(sha256(salt+secret), value)
        let key = Sha256::digest(format!("{HASH_SALT}test-secret"));
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        mac.update(b"pbkdf2_sha256$x");
        let want: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(session_auth_hash(b"test-secret", "pbkdf2_sha256$x"), want);
    }
}
