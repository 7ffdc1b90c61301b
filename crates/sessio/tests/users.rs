//! Per-user sessions beyond the conformance suite (which lists and revokes on every server
//! engine): "log out everywhere" for cookie engines, the index's upkeep, and hashed ids as
//! SQLite stores them.

mod common;

use common::{db_sqlite, fixture_with, Fixture, Make};
use sessio::{auth, EngineKind};

const PW: &str = "pbkdf2_sha256$870000$salt$hash=";

/// Logs `user` in on a fresh session and saves it; returns the cookie value.
async fn login(f: &Fixture, user: &str) -> String {
    let s = f.session(None);
    auth::login(&s, user, auth::MODEL_BACKEND, PW)
        .await
        .unwrap();
    s.save().await.unwrap();
    s.id().unwrap()
}

async fn alive(f: &Fixture, key: &str) -> bool {
    auth::user(&f.session(Some(key))).await.unwrap().is_some()
}

#[tokio::test]
async fn listing_needs_the_index_turned_on() {
    let f = fixture_with(db_sqlite, |b| b).await.unwrap();
    login(&f, "7").await;
    let err = f.sessions.user_sessions("7").await.unwrap_err();
    assert!(err.to_string().contains("track_user_sessions"), "{err}");
}

#[tokio::test]
async fn cycling_the_id_keeps_the_index_right() {
    let f = fixture_with(db_sqlite, |b| b.track_user_sessions(true))
        .await
        .unwrap();
    let a = login(&f, "7").await;
    let s = f.session(Some(&a));
    s.cycle_id().await.unwrap();
    s.save().await.unwrap();
    let listed = f.sessions.user_sessions("7").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, s.id().unwrap());
}

#[tokio::test]
async fn hashed_ids_leave_no_usable_id_in_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.sqlite3");
    let url = format!("sqlite://{}", db.display());
    // Our own database file (the fixture would make its own), opened twice below.
    let at = |b: sessio::ConfigBuilder| async {
        let clock = sessio::clock::ManualClock::at_unix(common::T);
        let b = b
            .engine(EngineKind::Db)
            .database_url(url.clone())
            .hash_ids_at_rest(true)
            .clock(clock.clone());
        common::open(b, None, clock).await.unwrap()
    };
    let f = at(common::base()).await;
    let s = f.session(None);
    s.insert("secret", "data").await.unwrap();
    s.save().await.unwrap();
    let raw = s.id().unwrap();
    let conn = rusqlite::Connection::open(&db).unwrap();
    let keys: Vec<String> = conn
        .prepare("SELECT session_key FROM django_session")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(keys.len(), 1);
    assert_ne!(keys[0], raw, "the table holds a hash, not the id");
    // A stored key presented as a cookie finds nothing.
    assert_eq!(
        f.session(Some(&keys[0]))
            .get::<String>("secret")
            .await
            .unwrap(),
        None
    );
    // The id itself still works, and survives a key rotation.
    assert_eq!(
        f.session(Some(&raw))
            .get::<String>("secret")
            .await
            .unwrap()
            .as_deref(),
        Some("data")
    );
    drop(f);
    let g = at(common::base()
        .secret_key("rotated-key-0123456789-0123456789-0123456789-0123456789")
        .fallback_keys([common::STRONG_KEY]))
    .await;
    assert_eq!(
        g.session(Some(&raw))
            .get::<String>("secret")
            .await
            .unwrap()
            .as_deref(),
        Some("data"),
        "found under the fallback key's hash and moved"
    );
}

async fn cookie_revocation(make: Make) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("gen.sqlite3").display());
    let f = fixture_with(make, |b| {
        b.cookie_revocation(Some(EngineKind::Db)).database_url(url)
    })
    .await
    .unwrap();
    let a = login(&f, "7").await;
    let b = login(&f, "7").await;
    assert!(alive(&f, &a).await && alive(&f, &b).await);
    assert!(
        f.sessions.user_sessions("7").await.is_err(),
        "cookie sessions cannot be listed"
    );
    // All but this one: `a` gets the new generation when it is saved.
    let s = f.session(Some(&a));
    s.revoke_other_sessions().await.unwrap();
    s.save().await.unwrap();
    let a2 = s.id().unwrap();
    assert!(alive(&f, &a2).await);
    assert!(
        !alive(&f, &b).await,
        "copied cookies of other devices are refused"
    );
    // Everywhere.
    f.sessions.revoke_all_sessions("7").await.unwrap();
    assert!(!alive(&f, &a2).await);
    // A fresh login works again.
    let c = login(&f, "7").await;
    assert!(alive(&f, &c).await);
}

#[tokio::test]
async fn log_out_everywhere_with_signed_cookies() {
    cookie_revocation(common::signed_cookies).await;
}

#[tokio::test]
async fn log_out_everywhere_with_encrypted_cookies() {
    cookie_revocation(common::encrypted_cookies).await;
}
