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

/// A cookie fixture whose revocation records live in a SQLite file of its own; `url` names
/// the file, so that a second manager (a rotated key, say) shares it.
async fn cookie_fixture(
    make: Make,
    url: &str,
    tweak: impl FnOnce(sessio::ConfigBuilder) -> sessio::ConfigBuilder,
) -> Fixture {
    let url = url.to_owned();
    fixture_with(make, move |b| {
        tweak(b.cookie_revocation(Some(EngineKind::Db)).database_url(url))
    })
    .await
    .unwrap()
}

fn db_url(dir: &tempfile::TempDir) -> String {
    format!(
        "sqlite://{}",
        dir.path().join("revocations.sqlite3").display()
    )
}

const ROTATED_KEY: &str = "rotated-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz";

/// Revoked before a key rotation: still revoked after it. Logged in before it and revoked
/// after it: revoked. The records are named without the secret key.
async fn revocation_survives_key_rotation(make: Make) {
    let dir = tempfile::tempdir().unwrap();
    let url = db_url(&dir);
    let old = cookie_fixture(make, &url, |b| b).await;
    let revoked = login(&old, "7").await;
    let kept = login(&old, "8").await;
    old.sessions.revoke_all_sessions("7").await.unwrap();
    let rotated = cookie_fixture(make, &url, |b| {
        b.secret_key(ROTATED_KEY)
            .fallback_keys([common::STRONG_KEY])
    })
    .await;
    assert!(
        alive(&rotated, &kept).await,
        "the fallback key still verifies"
    );
    assert!(
        !alive(&rotated, &revoked).await,
        "a cookie revoked before the rotation stays dead"
    );
    rotated.sessions.revoke_all_sessions("8").await.unwrap();
    assert!(
        !alive(&rotated, &kept).await,
        "a cookie issued before the rotation is revoked after it"
    );
}

#[tokio::test]
async fn signed_cookie_revocation_survives_key_rotation() {
    revocation_survives_key_rotation(common::signed_cookies).await;
}

#[tokio::test]
async fn encrypted_cookie_revocation_survives_key_rotation() {
    revocation_survives_key_rotation(common::encrypted_cookies).await;
}

/// A "remember me" cookie outlives twice the cookie age; its revocation must too.
#[tokio::test]
async fn a_revocation_outlives_a_remember_me_cookie() {
    let dir = tempfile::tempdir().unwrap();
    let f = cookie_fixture(common::encrypted_cookies, &db_url(&dir), |b| b).await;
    let s = f.session(None);
    auth::login(&s, "7", auth::MODEL_BACKEND, PW).await.unwrap();
    s.set_expiry(sessio::Expiry::OnInactivity(time::Duration::days(365)))
        .await
        .unwrap();
    s.save().await.unwrap();
    let cookie = s.id().unwrap();
    f.sessions.revoke_all_sessions("7").await.unwrap();
    // Past twice the two-week cookie age, and past a clear-expired sweep of the store.
    f.clock.advance(time::Duration::days(60));
    f.sessions.clear_expired(100, |_| {}).await.unwrap();
    assert!(
        !alive(&f, &cookie).await,
        "the revocation outlives the cookie it revokes"
    );
}

/// Logout with revocation on ends the cookie itself: a copy taken before is refused.
async fn logout_ends_a_copied_cookie(make: Make) {
    let dir = tempfile::tempdir().unwrap();
    let f = cookie_fixture(make, &db_url(&dir), |b| b).await;
    let copy = login(&f, "7").await;
    let other_device = login(&f, "7").await;
    let s = f.session(Some(&copy));
    auth::logout(&s).await.unwrap();
    s.save().await.unwrap();
    assert!(
        !alive(&f, &copy).await,
        "the copy is anonymous after logout"
    );
    assert!(
        alive(&f, &other_device).await,
        "logout ends this session only"
    );
}

#[tokio::test]
async fn logout_ends_a_copied_signed_cookie() {
    logout_ends_a_copied_cookie(common::signed_cookies).await;
}

#[tokio::test]
async fn logout_ends_a_copied_encrypted_cookie() {
    logout_ends_a_copied_cookie(common::encrypted_cookies).await;
}

/// Without revocation a copied cookie outlives logout, as the docs say.
#[tokio::test]
async fn without_revocation_a_copied_cookie_outlives_logout() {
    let f = common::fixture(common::signed_cookies).await.unwrap();
    let copy = login(&f, "7").await;
    let s = f.session(Some(&copy));
    auth::logout(&s).await.unwrap();
    assert!(alive(&f, &copy).await);
}

/// Stolen-cookie detection on cookie engines (with revocation on): a cookie whose id a
/// login cycled, replayed after the grace window, ends the session it became.
async fn stolen_cookie_detection(make: Make) {
    let dir = tempfile::tempdir().unwrap();
    let f = cookie_fixture(make, &db_url(&dir), |b| b).await;
    let (sessions, events) = common::recording_stolen_cookies(&f.sessions);
    let login_on = |key: Option<String>| {
        let s = sessions.session(key);
        async move {
            auth::login(&s, "7", auth::MODEL_BACKEND, PW).await.unwrap();
            s.save().await.unwrap();
            s.id().unwrap()
        }
    };
    // A visitor's cart, then a login: the id inside the cookie is cycled, the old one
    // retired.
    let s = sessions.session(None);
    s.insert("cart", 1).await.unwrap();
    s.save().await.unwrap();
    let before = s.id().unwrap();
    let after = login_on(Some(before.clone())).await;
    let cart = |key: &str| {
        let s = sessions.session(Some(key.to_owned()));
        async move { s.get::<i64>("cart").await.unwrap() }
    };
    f.clock.advance(time::Duration::seconds(30));
    assert_eq!(
        cart(&before).await,
        None,
        "a retired cookie is not accepted"
    );
    assert!(events.lock().unwrap().is_empty(), "in flight: no alarm");
    assert!(alive(&f, &after).await);
    f.clock.advance(time::Duration::seconds(60));
    assert_eq!(cart(&before).await, None);
    assert_eq!(events.lock().unwrap().len(), 1);
    assert_eq!(events.lock().unwrap()[0].user_id.as_deref(), Some("7"));
    assert!(
        !alive(&f, &after).await,
        "the session the stolen cookie became is ended"
    );
}

#[tokio::test]
async fn stolen_signed_cookie_is_detected() {
    stolen_cookie_detection(common::signed_cookies).await;
}

#[tokio::test]
async fn stolen_encrypted_cookie_is_detected() {
    stolen_cookie_detection(common::encrypted_cookies).await;
}

/// With `stolen_cookie_ends_user_sessions`, every session of the user ends.
#[tokio::test]
async fn a_stolen_cookie_can_end_every_session_of_its_user() {
    let f = fixture_with(db_sqlite, |b| {
        b.track_user_sessions(true)
            .stolen_cookie_ends_user_sessions(true)
    })
    .await
    .unwrap();
    let laptop = {
        let s = f.session(None);
        s.insert("cart", 1).await.unwrap();
        s.save().await.unwrap();
        s.id().unwrap()
    };
    let s = f.session(Some(&laptop));
    auth::login(&s, "7", auth::MODEL_BACKEND, PW).await.unwrap();
    s.save().await.unwrap();
    let cycled = s.id().unwrap();
    let phone = login(&f, "7").await;
    f.clock.advance(time::Duration::seconds(120));
    assert!(!alive(&f, &laptop).await);
    assert!(!alive(&f, &cycled).await && !alive(&f, &phone).await);
    assert!(f.sessions.user_sessions("7").await.unwrap().is_empty());
}

/// `stolen_cookie_grace = off`: a retired id is simply unknown.
#[tokio::test]
async fn stolen_cookie_detection_can_be_turned_off() {
    let f = fixture_with(db_sqlite, |b| b.stolen_cookie_grace(None))
        .await
        .unwrap();
    let before = {
        let s = f.session(None);
        s.insert("cart", 1).await.unwrap();
        s.save().await.unwrap();
        s.id().unwrap()
    };
    let s = f.session(Some(&before));
    auth::login(&s, "7", auth::MODEL_BACKEND, PW).await.unwrap();
    s.save().await.unwrap();
    let after = s.id().unwrap();
    f.clock.advance(time::Duration::seconds(120));
    assert!(!alive(&f, &before).await);
    assert!(alive(&f, &after).await, "nothing is ended");
}

/// `revoke_session` ends a session only when it is the named user's.
#[tokio::test]
async fn revoke_session_checks_the_owner() {
    let f = fixture_with(db_sqlite, |b| b.track_user_sessions(true))
        .await
        .unwrap();
    let sevens = login(&f, "7").await;
    let eights = login(&f, "8").await;
    assert!(!f.sessions.revoke_session("8", &sevens).await.unwrap());
    assert!(
        alive(&f, &sevens).await,
        "another user's session is left alone"
    );
    assert!(f.sessions.revoke_session("8", &eights).await.unwrap());
    assert!(!alive(&f, &eights).await);
}

/// A session spilled to the server is stored under the hash of its id, like any other
/// server session, when ids are hashed at rest.
#[tokio::test]
async fn spilled_sessions_are_hashed_at_rest() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("spill.sqlite3");
    let url = format!("sqlite://{}", db.display());
    let f = fixture_with(common::signed_cookies, |b| {
        b.cookie_overflow(sessio::CookieOverflow::Spill(EngineKind::Db))
            .database_url(url)
            .hash_ids_at_rest(true)
    })
    .await
    .unwrap();
    let s = f.session(None);
    // Random text: it does not compress into a cookie.
    let big: String = (0..200)
        .map(|_| sessio::key::new_session_key().unwrap())
        .collect();
    s.insert("big", &big).await.unwrap();
    s.save().await.unwrap();
    let id = s.id().unwrap();
    assert_eq!(id.len(), 32, "spilled: the cookie holds an id");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let keys: Vec<String> = conn
        .prepare("SELECT session_key FROM django_session")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(keys.len(), 1);
    assert_ne!(keys[0], id, "the table holds a hash, not the id");
    let back = f.session(Some(&id));
    assert_eq!(
        back.get::<String>("big").await.unwrap().as_deref(),
        Some(&*big)
    );
    back.insert("more", 1).await.unwrap();
    back.save().await.unwrap();
    assert_eq!(
        back.id().as_deref(),
        Some(id.as_str()),
        "the cookie keeps the id"
    );
    back.flush().await.unwrap();
    let count: i64 = conn
        .query_row("SELECT count(*) FROM django_session", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 0);
}

/// The records beside sessions (index, revocations) are never sessions: a cookie naming
/// one finds nothing, and a write through it creates a new session instead of touching it.
#[tokio::test]
async fn a_cookie_naming_a_record_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("records.sqlite3");
    let url = format!("sqlite://{}", db.display());
    let clock = sessio::clock::ManualClock::at_unix(common::T);
    let b = common::base()
        .engine(EngineKind::Db)
        .database_url(url)
        .track_user_sessions(true)
        .clock(clock.clone());
    let f = common::open(b, None, clock).await.unwrap();
    let id = login(&f, "7").await;
    let conn = rusqlite::Connection::open(&db).unwrap();
    let records: Vec<String> = conn
        .prepare("SELECT session_key FROM django_session WHERE session_key <> ?1")
        .unwrap()
        .query_map([&id], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(!records.is_empty());
    for name in &records {
        assert!(name.len() == 40 && name.starts_with("sessio"), "{name}");
        let s = f.session(Some(name));
        assert!(s.keys().await.unwrap().is_empty(), "nothing is loaded");
        s.flush().await.unwrap();
    }
    assert_eq!(f.sessions.user_sessions("7").await.unwrap().len(), 1);
    assert!(alive(&f, &id).await);
}

/// `max_sessions_per_user`: a login past the limit ends the user's oldest sessions.
#[tokio::test]
async fn max_sessions_per_user_ends_the_oldest() {
    let f = fixture_with(db_sqlite, |b| {
        b.track_user_sessions(true).max_sessions_per_user(Some(3))
    })
    .await
    .unwrap();
    let mut keys = Vec::new();
    for _ in 0..5 {
        keys.push(login(&f, "7").await);
        f.clock.advance(time::Duration::seconds(1));
    }
    assert!(!alive(&f, &keys[0]).await && !alive(&f, &keys[1]).await);
    for key in &keys[2..] {
        assert!(alive(&f, key).await);
    }
    assert_eq!(f.sessions.user_sessions("7").await.unwrap().len(), 3);
}

/// Counts the store calls of whatever it wraps.
#[derive(Debug)]
struct Counting {
    inner: std::sync::Arc<dyn sessio::SessionEngine>,
    calls: std::sync::atomic::AtomicUsize,
}

impl Counting {
    fn tick(&self) {
        self.calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

#[async_trait::async_trait]
impl sessio::SessionEngine for Counting {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn is_client_side(&self) -> bool {
        false
    }
    async fn load(&self, key: &str) -> sessio::Result<Option<sessio::SessionData>> {
        self.tick();
        self.inner.load(key).await
    }
    async fn create(
        &self,
        data: &sessio::SessionData,
        expires: time::OffsetDateTime,
    ) -> sessio::Result<String> {
        self.tick();
        self.inner.create(data, expires).await
    }
    async fn insert(
        &self,
        key: &str,
        data: &sessio::SessionData,
        expires: time::OffsetDateTime,
    ) -> sessio::Result<bool> {
        self.tick();
        self.inner.insert(key, data, expires).await
    }
    async fn save(
        &self,
        key: &str,
        data: &sessio::SessionData,
        expires: time::OffsetDateTime,
    ) -> sessio::Result<String> {
        self.tick();
        self.inner.save(key, data, expires).await
    }
    async fn save_changes(
        &self,
        key: &str,
        changes: &sessio::Changes,
        expires: time::OffsetDateTime,
    ) -> sessio::Result<(String, sessio::SessionData)> {
        self.tick();
        self.inner.save_changes(key, changes, expires).await
    }
    async fn delete(&self, key: &str) -> sessio::Result<()> {
        self.tick();
        self.inner.delete(key).await
    }
    async fn exists(&self, key: &str) -> sessio::Result<bool> {
        self.tick();
        self.inner.exists(key).await
    }
    async fn clear_expired_batch(&self, limit: usize) -> sessio::Result<u64> {
        self.inner.clear_expired_batch(limit).await
    }
}

/// A login is O(1) in the number of the user's sessions: the 500th costs as many store
/// calls as the 2nd, and nothing is rewritten whole.
#[tokio::test]
async fn a_login_costs_the_same_however_many_sessions_the_user_has() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::base()
        .engine(EngineKind::Db)
        .database_url(format!(
            "sqlite://{}",
            dir.path().join("o1.sqlite3").display()
        ))
        .track_user_sessions(true)
        .build()
        .unwrap();
    let inner = sessio::open(&config).await.unwrap();
    let counting = std::sync::Arc::new(Counting {
        inner,
        calls: Default::default(),
    });
    let sessions = sessio::SessionManager::new(config, counting.clone());
    let mut most = 0;
    let mut first = 0;
    for i in 0..500 {
        let before = counting.calls.load(std::sync::atomic::Ordering::Relaxed);
        let s = sessions.session(None);
        auth::login(&s, "7", auth::MODEL_BACKEND, PW).await.unwrap();
        s.save().await.unwrap();
        let calls = counting.calls.load(std::sync::atomic::Ordering::Relaxed) - before;
        if i == 1 {
            first = calls;
        }
        if i > 0 {
            most = most.max(calls);
        }
    }
    assert!(
        most <= first + 10,
        "a login made {most} store calls at most, the second one {first}"
    );
    assert_eq!(sessions.user_sessions("7").await.unwrap().len(), 500);
    // Four in five log out, leaving gaps all over the user's range; later logins tidy
    // them away, so a listing reads about what is live, not every slot ever used.
    let listed = sessions.user_sessions("7").await.unwrap();
    for (i, s) in listed.iter().enumerate() {
        if i % 5 != 0 {
            assert!(sessions.revoke_session("7", &s.id).await.unwrap());
        }
    }
    for _ in 0..100 {
        let s = sessions.session(None);
        auth::login(&s, "7", auth::MODEL_BACKEND, PW).await.unwrap();
        s.save().await.unwrap();
    }
    let before = counting.calls.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(sessions.user_sessions("7").await.unwrap().len(), 200);
    let calls = counting.calls.load(std::sync::atomic::Ordering::Relaxed) - before;
    assert!(
        calls <= 3 * 2 * 200 + 20,
        "listing 200 sessions took {calls} calls"
    );
    assert_eq!(sessions.revoke_all_sessions("7").await.unwrap(), 200);
    assert!(sessions.user_sessions("7").await.unwrap().is_empty());
}
