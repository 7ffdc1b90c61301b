//! `sessio::auth`: logins written the way django.contrib.auth writes them.

mod common;

use common::{db_sqlite, fixture_with, Make};
use sessio::auth;

const PW: &str = "pbkdf2_sha256$870000$abc$def=";

async fn login_cycles_and_logout_flushes(make: Make) {
    let f = fixture_with(make, |b| b).await.unwrap();
    let s = f.session(None);
    s.insert("cart", [1, 2]).await.unwrap();
    s.save().await.unwrap();
    let anon_key = s.id().unwrap();

    let s = f.session(Some(&anon_key));
    auth::login(&s, 42, auth::MODEL_BACKEND, PW).await.unwrap();
    s.save().await.unwrap();
    let key = s.id().unwrap();
    if !f.client_side() {
        assert_ne!(key, anon_key, "login cycles the id");
        assert!(!f.sessions.engine().exists(&anon_key).await.unwrap());
    }
    let s = f.session(Some(&key));
    assert_eq!(
        auth::user(&s).await.unwrap(),
        Some(auth::LoggedInUser {
            id: "42".into(),
            backend: auth::MODEL_BACKEND.into()
        })
    );
    assert_eq!(s.get::<Vec<u32>>("cart").await.unwrap(), Some(vec![1, 2]));
    assert!(auth::verify(&s, "42", PW).await.unwrap());
    // A password change invalidates the session.
    assert!(!auth::verify(&s, "42", "pbkdf2_sha256$870000$abc$changed=")
        .await
        .unwrap());
    assert!(s.is_empty());
    if !f.client_side() {
        assert!(!f.sessions.engine().exists(&key).await.unwrap());
    }

    // Logging in as someone else flushes the first user's data.
    let s = f.session(None);
    auth::login(&s, 1, auth::MODEL_BACKEND, PW).await.unwrap();
    s.insert("private", "of user 1").await.unwrap();
    auth::login(&s, 2, auth::MODEL_BACKEND, PW).await.unwrap();
    assert_eq!(s.get::<String>("private").await.unwrap(), None);
    auth::logout(&s).await.unwrap();
    assert!(s.is_empty());
}

#[tokio::test]
async fn signed_cookies() {
    login_cycles_and_logout_flushes(common::signed_cookies).await;
}

#[tokio::test]
async fn db_sqlite_engine() {
    login_cycles_and_logout_flushes(db_sqlite).await;
}

#[tokio::test]
async fn hash_under_a_fallback_key_is_upgraded() {
    let old = "old-secret-key-0123456789-0123456789-0123456789-0123456789";
    let f = fixture_with(db_sqlite, |b| b.secret_key(old))
        .await
        .unwrap();
    let s = f.session(None);
    auth::login(&s, 7, auth::MODEL_BACKEND, PW).await.unwrap();
    s.save().await.unwrap();
    let old_hash: String = s.get(auth::HASH_KEY).await.unwrap().unwrap();
    drop(f);

    // A session carrying that hash, read under a rotated key with the old one as fallback.
    let g = fixture_with(db_sqlite, |b| {
        b.secret_key("new-secret-key-0123456789-0123456789-0123456789-0123456789")
            .fallback_keys([old])
    })
    .await
    .unwrap();
    let s = g.session(None);
    s.insert(auth::USER_ID_KEY, "7").await.unwrap();
    s.insert(auth::BACKEND_KEY, auth::MODEL_BACKEND)
        .await
        .unwrap();
    s.insert(auth::HASH_KEY, &old_hash).await.unwrap();
    s.save().await.unwrap();
    let before = s.id().unwrap();
    assert!(auth::verify(&s, "7", PW).await.unwrap());
    assert_ne!(s.id().unwrap(), before, "upgrading the hash cycles the id");
    let new_hash: String = s.get(auth::HASH_KEY).await.unwrap().unwrap();
    assert_ne!(new_hash, old_hash);
    assert_eq!(
        new_hash,
        auth::session_auth_hash(
            b"new-secret-key-0123456789-0123456789-0123456789-0123456789",
            PW
        )
    );
}
