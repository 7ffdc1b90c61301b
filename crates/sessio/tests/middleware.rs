//! The middleware scenario table of Django's `SessionMiddleware` (spec §7), over an axum
//! router driven with `tower::ServiceExt::oneshot`. Signed-cookie responses are compared
//! byte for byte with the headers real Django wrote (`tests/data/django-vectors.json`).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use common::{db_sqlite, fixture_with, signed_cookies, Fixture, Make, T};
use sessio::clock::ManualClock;
use sessio::Value;
use sessio::{
    Config, ConfigBuilder, EngineKind, Expiry, Session, SessionData, SessionEngine, SessionManager,
};
use time::OffsetDateTime;
use tower::ServiceExt;

fn vectors() -> Value {
    sessio::value::from_str(include_str!("data/django-vectors.json")).unwrap()
}

fn vector(name: &str) -> (Vec<String>, Option<String>) {
    let v = &vectors()["middleware"][name];
    let cookies = v["set_cookie"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    (cookies, v["vary"].as_str().map(str::to_owned))
}

async fn set(session: Session) -> sessio::Result<&'static str> {
    session.insert("user_id", 42).await?;
    session.insert("cart", [1, 2]).await?;
    Ok("set")
}

async fn set_expiry0(session: Session) -> sessio::Result<&'static str> {
    session.insert("user_id", 42).await?;
    session.set_expiry(Expiry::OnBrowserClose).await?;
    Ok("set")
}

async fn read(session: Session) -> sessio::Result<String> {
    Ok(format!("{:?}", session.get::<u32>("user_id").await?))
}

async fn flush(session: Session) -> sessio::Result<&'static str> {
    session.flush().await?;
    Ok("flushed")
}

async fn fail(session: Session, status: StatusCode) -> axum::response::Response {
    if let Err(e) = session.insert("user_id", 42).await {
        return e.into_response();
    }
    (status, "boom").into_response()
}

async fn remove_all(session: Session) -> sessio::Result<&'static str> {
    for k in session.keys().await? {
        session.remove_value(&k).await?;
    }
    Ok("emptied")
}

async fn concurrent_logout(session: Session) -> sessio::Result<&'static str> {
    // Load, then another request deletes the record, then this one writes.
    session.get::<u32>("user_id").await?;
    let id = session.id().unwrap();
    session.engine().delete(&id).await?;
    session.insert("user_id", 7).await?;
    Ok("written")
}

fn app(sessions: &SessionManager) -> Router {
    Router::new()
        .route("/set", get(set))
        .route("/set-expiry0", get(set_expiry0))
        .route("/untouched", get(|| async { "untouched" }))
        .route("/read", get(read))
        .route("/flush", get(flush))
        .route(
            "/fail500",
            get(|s: Session| fail(s, StatusCode::INTERNAL_SERVER_ERROR)),
        )
        .route(
            "/fail503",
            get(|s: Session| fail(s, StatusCode::SERVICE_UNAVAILABLE)),
        )
        .route("/remove-all", get(remove_all))
        .route("/concurrent-logout", get(concurrent_logout))
        .layer(sessions.layer())
}

struct Reply {
    status: StatusCode,
    set_cookie: Vec<String>,
    vary: Option<String>,
    body: String,
}

impl Reply {
    /// The value of the session cookie that was set.
    fn cookie_value(&self) -> String {
        let c = &self.set_cookie[0];
        c["sessionid=".len()..c.find(';').unwrap()].to_owned()
    }
}

async fn call(sessions: &SessionManager, path: &str, cookie: Option<&str>) -> Reply {
    let mut req = Request::builder().uri(path);
    if let Some(c) = cookie {
        req = req.header("cookie", format!("sessionid={c}"));
    }
    let res = app(sessions)
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let set_cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let vary = res
        .headers()
        .get("vary")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    Reply {
        status,
        set_cookie,
        vary,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// Django's vector settings: secret `test-secret`, clock frozen at T.
async fn django(tweak: impl FnOnce(ConfigBuilder) -> ConfigBuilder) -> Fixture {
    fixture_with(signed_cookies, |b| {
        tweak(b.secret_key("test-secret").allow_weak_secret_key(true))
    })
    .await
    .expect("cookie engines need no server")
}

const BASIC: &str =
    "eyJ1c2VyX2lkIjo0MiwiY2FydCI6WzEsMl19:1r31eq:oxQqvCdpRcSE-SQ0t06vrhPBjfo8zV8Nj1odplkJIcU";

fn assert_vector(reply: &Reply, name: &str) {
    let (cookies, vary) = vector(name);
    assert_eq!(reply.set_cookie, cookies, "Set-Cookie of `{name}`");
    assert_eq!(reply.vary, vary, "Vary of `{name}`");
}

#[tokio::test]
async fn signed_view_sets_data() {
    let f = django(|b| b).await;
    let r = call(&f.sessions, "/set", None).await;
    assert_eq!(r.status, 200);
    assert_vector(&r, "signed_cookies_set");
}

#[tokio::test]
async fn signed_expire_at_browser_close_setting() {
    let f = django(|b| b.expire_at_browser_close(true)).await;
    let r = call(&f.sessions, "/set", None).await;
    assert_vector(&r, "signed_cookies_set_expire_at_browser_close_setting");
}

#[tokio::test]
async fn signed_set_expiry_zero() {
    let f = django(|b| b).await;
    let r = call(&f.sessions, "/set-expiry0", None).await;
    assert_vector(&r, "signed_cookies_set_expiry0");
}

#[tokio::test]
async fn signed_secure_strict_domain() {
    let f = django(|b| {
        b.cookie_secure(true)
            .cookie_httponly(false)
            .cookie_samesite(Some(sessio::SameSite::Strict))
            .cookie_domain(Some(".example.com".into()))
    })
    .await;
    let r = call(&f.sessions, "/set", None).await;
    assert_vector(&r, "signed_cookies_secure_strict_domain");
}

#[tokio::test]
async fn untouched_without_cookie_sets_nothing() {
    let f = django(|b| b).await;
    let r = call(&f.sessions, "/untouched", None).await;
    assert_vector(&r, "no_access_no_cookie");
}

#[tokio::test]
async fn read_only_with_valid_cookie_sets_vary_only() {
    let f = django(|b| b).await;
    let r = call(&f.sessions, "/read", Some(BASIC)).await;
    assert_eq!(r.body, "Some(42)");
    assert_vector(&r, "read_only_access_with_valid_cookie");
}

#[tokio::test]
async fn flush_with_cookie_deletes_it() {
    let f = django(|b| b).await;
    let r = call(&f.sessions, "/flush", Some(BASIC)).await;
    assert_vector(&r, "flush_with_cookie_present");
}

#[tokio::test]
async fn flush_without_cookie_sets_vary_only() {
    let f = django(|b| b).await;
    let r = call(&f.sessions, "/flush", None).await;
    assert_vector(&r, "flush_without_cookie");
}

#[tokio::test]
async fn no_save_on_5xx() {
    let f = django(|b| b).await;
    let r = call(&f.sessions, "/fail500", None).await;
    assert_eq!(r.status, 500);
    assert_vector(&r, "status_500_modified");
    let r = call(&f.sessions, "/fail503", None).await;
    assert_eq!(r.status, 503);
    assert_vector(&r, "status_500_modified");
}

#[tokio::test]
async fn save_every_request_reissues_untouched_cookie() {
    let f = django(|b| b.save_every_request(true)).await;
    let r = call(&f.sessions, "/untouched", Some(BASIC)).await;
    assert_vector(&r, "save_every_request_untouched_valid_cookie");
    // An untouched request without a session writes nothing, even in this mode.
    let r = call(&f.sessions, "/untouched", None).await;
    assert!(r.set_cookie.is_empty());
}

#[tokio::test]
async fn invalid_cookie_untouched_sets_nothing() {
    let f = django(|b| b).await;
    let r = call(&f.sessions, "/untouched", Some("not-a-valid-signed-value")).await;
    assert_vector(&r, "invalid_cookie_untouched");
}

#[tokio::test]
async fn invalid_cookie_read_gets_a_signed_empty_session() {
    let f = django(|b| b).await;
    let r = call(&f.sessions, "/read", Some("not-a-valid-signed-value")).await;
    assert_eq!(r.status, 200, "a bad cookie is never an error");
    assert_vector(&r, "invalid_cookie_read");
}

#[tokio::test]
async fn deletion_cookie_repeats_domain_path_samesite_secure() {
    let f = django(|b| {
        b.cookie_domain(Some(".example.local".into()))
            .cookie_path("/example/")
            .cookie_secure(true)
            .cookie_samesite(Some(sessio::SameSite::Strict))
    })
    .await;
    let r = call(&f.sessions, "/flush", Some(BASIC)).await;
    assert_eq!(
        r.set_cookie,
        vec![
            "sessionid=\"\"; Domain=.example.local; expires=Thu, 01 Jan 1970 00:00:00 GMT; \
             Max-Age=0; Path=/example/; SameSite=Strict; Secure"
        ]
    );
}

#[tokio::test]
async fn expired_signed_cookie_is_an_empty_session() {
    let f = django(|b| b).await;
    f.clock
        .set(OffsetDateTime::from_unix_timestamp(T + 1_209_601).unwrap());
    let r = call(&f.sessions, "/read", Some(BASIC)).await;
    assert_eq!(r.body, "None");
}

// ---- db engine rows of the table ----

async fn db() -> Fixture {
    fixture_with(db_sqlite, |b| b)
        .await
        .expect("SQLite is embedded")
}

#[tokio::test]
async fn db_view_sets_data() {
    let f = db().await;
    let r = call(&f.sessions, "/set", None).await;
    assert_eq!(r.vary.as_deref(), Some("Cookie"));
    let key = r.cookie_value();
    assert_eq!(key.len(), 32);
    assert_eq!(
        r.set_cookie[0],
        format!(
            "sessionid={key}; expires=Tue, 28 Nov 2023 22:13:20 GMT; HttpOnly; Max-Age=1209600; Path=/; SameSite=Lax"
        )
    );
    let r = call(&f.sessions, "/read", Some(&key)).await;
    assert_eq!(r.body, "Some(42)");
    assert!(r.set_cookie.is_empty());
    assert_eq!(r.vary.as_deref(), Some("Cookie"));
}

#[tokio::test]
async fn db_unknown_key_untouched_sets_nothing() {
    let f = db().await;
    let r = call(
        &f.sessions,
        "/untouched",
        Some("0123456789abcdefghijklmnopqrstuv"),
    )
    .await;
    assert_vector(&r, "db_unknown_key_untouched");
}

#[tokio::test]
async fn db_unknown_key_read_deletes_cookie() {
    let f = db().await;
    let r = call(
        &f.sessions,
        "/read",
        Some("0123456789abcdefghijklmnopqrstuv"),
    )
    .await;
    assert_vector(&r, "db_unknown_key_read");
}

#[tokio::test]
async fn db_short_cookie_untouched_deletes_cookie() {
    let f = db().await;
    let r = call(&f.sessions, "/untouched", Some("abc")).await;
    assert_vector(&r, "db_short_cookie_untouched(len<8 => key None => empty)");
}

#[tokio::test]
async fn db_unknown_key_then_write_gets_a_new_key() {
    let f = db().await;
    let client_key = "0123456789abcdefghijklmnopqrstuv";
    let r = call(&f.sessions, "/set", Some(client_key)).await;
    assert_eq!(r.vary.as_deref(), Some("Cookie"));
    assert_ne!(r.cookie_value(), client_key);
    assert!(!f.sessions.engine().exists(client_key).await.unwrap());
}

#[tokio::test]
async fn db_empty_session_is_still_saved() {
    // Django's test_empty_session_saved: a keyed session emptied by deleting its keys is
    // saved (the row holds `{}`), the cookie is re-set, and Vary is sent.
    let f = db().await;
    let key = call(&f.sessions, "/set", None).await.cookie_value();
    let r = call(&f.sessions, "/remove-all", Some(&key)).await;
    assert_eq!(r.set_cookie.len(), 1);
    assert_eq!(r.cookie_value(), key);
    assert_eq!(r.vary.as_deref(), Some("Cookie"));
    assert!(f.sessions.engine().exists(&key).await.unwrap());
    assert!(f
        .sessions
        .engine()
        .load(&key)
        .await
        .unwrap()
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn db_flush_deletes_row_and_cookie() {
    let f = db().await;
    let key = call(&f.sessions, "/set", None).await.cookie_value();
    let r = call(&f.sessions, "/flush", Some(&key)).await;
    assert_vector(&r, "flush_with_cookie_present");
    assert!(!f.sessions.engine().exists(&key).await.unwrap());
}

#[tokio::test]
async fn db_no_save_on_5xx() {
    let f = db().await;
    let r = call(&f.sessions, "/fail500", None).await;
    assert_vector(&r, "status_500_modified");
}

#[tokio::test]
async fn db_save_after_concurrent_logout_is_400_and_no_resurrection() {
    let f = db().await;
    let key = call(&f.sessions, "/set", None).await.cookie_value();
    let r = call(&f.sessions, "/concurrent-logout", Some(&key)).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body,
        "The request's session was deleted before the request completed. \
         The user may have logged out in a concurrent request, for example."
    );
    assert!(r.set_cookie.is_empty());
    assert!(!f.sessions.engine().exists(&key).await.unwrap());
}

#[tokio::test]
async fn db_save_every_request_with_unknown_key_deletes_cookie() {
    let f = fixture_with(db_sqlite, |b| b.save_every_request(true))
        .await
        .unwrap();
    let r = call(
        &f.sessions,
        "/untouched",
        Some("0123456789abcdefghijklmnopqrstuv"),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_vector(&r, "db_unknown_key_read");
    // And a live session is refreshed on every request.
    let key = call(&f.sessions, "/set", None).await.cookie_value();
    let r = call(&f.sessions, "/untouched", Some(&key)).await;
    assert_eq!(r.cookie_value(), key);
    assert_eq!(r.vary.as_deref(), Some("Cookie"));
}

// ---- laziness and failures ----

/// Counts the store calls of a real engine.
#[derive(Debug)]
struct Counting {
    inner: Arc<dyn SessionEngine>,
    calls: AtomicUsize,
}

#[async_trait]
impl SessionEngine for Counting {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn is_client_side(&self) -> bool {
        self.inner.is_client_side()
    }
    async fn load(&self, key: &str) -> sessio::Result<Option<SessionData>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.load(key).await
    }
    async fn create(&self, data: &SessionData, expires: OffsetDateTime) -> sessio::Result<String> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.create(data, expires).await
    }
    async fn save(
        &self,
        key: &str,
        data: &SessionData,
        expires: OffsetDateTime,
    ) -> sessio::Result<String> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.save(key, data, expires).await
    }
    async fn delete(&self, key: &str) -> sessio::Result<()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.delete(key).await
    }
    async fn exists(&self, key: &str) -> sessio::Result<bool> {
        self.inner.exists(key).await
    }
    async fn clear_expired_batch(&self, limit: usize) -> sessio::Result<u64> {
        self.inner.clear_expired_batch(limit).await
    }
}

#[tokio::test]
async fn untouched_requests_do_no_store_io() {
    let f = db().await;
    let key = call(&f.sessions, "/set", None).await.cookie_value();
    let counting = Arc::new(Counting {
        inner: f.sessions.engine().clone(),
        calls: AtomicUsize::new(0),
    });
    let sessions = SessionManager::new((**f.sessions.config()).clone(), counting.clone());
    for _ in 0..10 {
        let r = call(&sessions, "/untouched", Some(&key)).await;
        assert!(r.set_cookie.is_empty() && r.vary.is_none());
    }
    assert_eq!(counting.calls.load(Ordering::SeqCst), 0);
    // A read is one load and no write.
    call(&sessions, "/read", Some(&key)).await;
    assert_eq!(counting.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn missing_table_is_a_500_naming_the_fix_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sqlite3");
    let config = |auto| {
        Config::builder()
            .secret_key(common::STRONG_KEY)
            .engine(EngineKind::Db)
            .database_url(format!("sqlite://{}", path.display()))
            .auto_migrate(auto)
            .clock(ManualClock::at_unix(T))
            .build()
            .unwrap()
    };
    // Without the table and without auto-migrate, start-up fails and says what to run.
    let err = SessionManager::open(config(false)).await.unwrap_err();
    assert!(err.to_string().contains("sessio migrate"), "{err}");
    // The table disappears while the app runs: requests get a clean error response.
    let sessions = SessionManager::open(config(true)).await.unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute_batch("DROP TABLE django_session").unwrap();
    let r = call(&sessions, "/set", None).await;
    assert_eq!(r.status, 500);
    assert!(r.set_cookie.is_empty());
    let r = call(&sessions, "/read", Some("0123456789abcdefghijklmnopqrstuv")).await;
    assert_eq!(r.status, 500);
}

#[tokio::test]
async fn missing_layer_is_a_clear_500() {
    let app = Router::new().route("/read", get(read));
    let res = app
        .oneshot(Request::builder().uri("/read").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), 500);
}

#[tokio::test]
async fn several_cookie_headers_and_duplicates() {
    let f = django(|b| b).await;
    let req = Request::builder()
        .uri("/read")
        .header("cookie", "a=1; sessionid=garbage")
        .header("cookie", format!("b=2; sessionid={BASIC}"))
        .body(Body::empty())
        .unwrap();
    let res = app(&f.sessions).oneshot(req).await.unwrap();
    let body = axum::body::to_bytes(res.into_body(), 1024).await.unwrap();
    assert_eq!(
        &body[..],
        b"Some(42)",
        "the last value of a repeated name wins"
    );
}

/// Runs the engine-independent part of the table against every engine.
async fn table_for(make: Make) {
    let Some(f) = fixture_with(make, |b| b).await else {
        return;
    };
    let r = call(&f.sessions, "/untouched", None).await;
    assert!(r.set_cookie.is_empty() && r.vary.is_none());
    let r = call(&f.sessions, "/set", None).await;
    let value = r.cookie_value();
    let r = call(&f.sessions, "/read", Some(&value)).await;
    assert_eq!(r.body, "Some(42)");
    assert!(r.set_cookie.is_empty());
    assert_eq!(r.vary.as_deref(), Some("Cookie"));
    let r = call(&f.sessions, "/flush", Some(&value)).await;
    assert!(r.set_cookie[0].starts_with("sessionid=\"\"; expires=Thu, 01 Jan 1970"));
    let r = call(&f.sessions, "/fail500", None).await;
    assert!(r.set_cookie.is_empty());
}

#[tokio::test]
async fn table_signed_cookies() {
    table_for(signed_cookies).await;
}

#[tokio::test]
async fn table_encrypted_cookies() {
    table_for(common::encrypted_cookies).await;
}

#[tokio::test]
async fn table_db_sqlite() {
    table_for(db_sqlite).await;
}

#[tokio::test]
async fn table_file() {
    table_for(common::file).await;
}

#[tokio::test]
async fn table_cache_memory() {
    table_for(common::cache_memory).await;
}

#[tokio::test]
async fn table_cached_db_memory() {
    table_for(common::cached_db_memory).await;
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn table_cache_redis() {
    table_for(common::cache_redis).await;
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn table_cached_db_redis() {
    table_for(common::cached_db_redis).await;
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn table_cache_redis_cluster() {
    table_for(common::cache_redis_cluster).await;
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn table_db_postgres() {
    table_for(common::db_postgres).await;
}

#[cfg(feature = "mysql")]
#[tokio::test]
async fn table_db_mysql() {
    table_for(common::db_mysql).await;
}

// ---- cache headers, key rotation, cookie size ----

#[tokio::test]
async fn cookie_responses_are_private_to_caches() {
    let f = django(|b| b).await;
    let res = app(&f.sessions)
        .oneshot(Request::builder().uri("/set").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.headers()["cache-control"], "private");
    let res = app(&f.sessions)
        .oneshot(
            Request::builder()
                .uri("/untouched")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert!(res.headers().get("cache-control").is_none());
    let public = Router::new()
        .route(
            "/",
            get(|s: Session| async move {
                s.insert("a", 1).await.unwrap();
                ([("cache-control", "public, max-age=60")], "cached?")
            }),
        )
        .layer(f.sessions.layer());
    let res = public
        .oneshot(Request::builder().uri("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.headers()["cache-control"], "max-age=60, private");
    // Django-compatible: leave the header alone.
    let g = django(|b| b.cache_control(None)).await;
    let r = app(&g.sessions)
        .oneshot(Request::builder().uri("/set").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert!(r.headers().get("cache-control").is_none());
}

#[tokio::test]
async fn cookie_deleting_responses_are_private_to_caches() {
    // The `Cache-Control` of a response that deletes the session cookie.
    async fn cache_control(sessions: &SessionManager, path: &str, cookie: &str) -> Option<String> {
        let req = Request::builder()
            .uri(path)
            .header("cookie", format!("sessionid={cookie}"))
            .body(Body::empty())
            .unwrap();
        let res = app(sessions).oneshot(req).await.unwrap();
        let set_cookie = res.headers()["set-cookie"].to_str().unwrap();
        assert!(
            set_cookie.contains("Max-Age=0"),
            "`{path}` deletes the cookie"
        );
        res.headers()
            .get("cache-control")
            .map(|v| v.to_str().unwrap().to_owned())
    }
    let f = django(|b| b).await;
    assert_eq!(
        cache_control(&f.sessions, "/flush", BASIC).await.as_deref(),
        Some("private")
    );
    // A read that found no session behind the cookie.
    let unknown = "0123456789abcdefghijklmnopqrstuv";
    assert_eq!(
        cache_control(&db().await.sessions, "/read", unknown)
            .await
            .as_deref(),
        Some("private")
    );
    let g = django(|b| b.cache_control(Some("no-store"))).await;
    assert_eq!(
        cache_control(&g.sessions, "/flush", BASIC).await.as_deref(),
        Some("no-store")
    );
    // Django-compatible: leave the header alone.
    let h = django(|b| b.cache_control(None)).await;
    assert_eq!(cache_control(&h.sessions, "/flush", BASIC).await, None);
}

#[tokio::test]
async fn a_cookie_signed_with_an_old_key_is_reissued_under_the_new_one() {
    // The vector cookie was signed with `test-secret`; rotate to a new key.
    let f = fixture_with(signed_cookies, |b| {
        // The vector's key is weak: a fallback must be allowed to be, as the current key.
        b.secret_key("rotated-secret-key-0123456789-0123456789-0123456789-xyz")
            .fallback_keys(["test-secret"])
            .allow_weak_secret_key(true)
    })
    .await
    .unwrap();
    let r = call(&f.sessions, "/read", Some(BASIC)).await;
    assert_eq!(r.body, "Some(42)");
    assert_eq!(r.set_cookie.len(), 1, "re-issued");
    let fresh = r.cookie_value();
    assert_ne!(fresh, BASIC);
    let current = sessio::signing::Signer::new(
        b"rotated-secret-key-0123456789-0123456789-0123456789-xyz",
        &[],
        sessio::signing::SIGNED_COOKIES_SALT,
    );
    assert_eq!(current.loads(&fresh, None).unwrap().key_index, 0);
    // Read again with the fresh cookie: nothing more to re-issue.
    let r = call(&f.sessions, "/read", Some(&fresh)).await;
    assert!(r.set_cookie.is_empty());
}

#[tokio::test]
async fn encrypted_cookie_under_an_old_key_is_reissued() {
    let old = "old-encryption-key-0123456789-0123456789-0123456789-abc";
    let f = fixture_with(common::encrypted_cookies, |b| b.secret_key(old))
        .await
        .unwrap();
    let value = call(&f.sessions, "/set", None).await.cookie_value();
    let g = fixture_with(common::encrypted_cookies, |b| {
        b.secret_key("new-encryption-key-0123456789-0123456789-0123456789-abc")
            .fallback_keys([old])
    })
    .await
    .unwrap();
    let r = call(&g.sessions, "/read", Some(&value)).await;
    assert_eq!(r.body, "Some(42)");
    let fresh = r.cookie_value();
    assert_ne!(fresh, value);
    // The old engine cannot read the re-issued cookie: it is under the new key.
    let r = call(&f.sessions, "/read", Some(&fresh)).await;
    assert_eq!(r.body, "None");
}

/// Deterministic, incompressible-looking text (so zlib does not shrink the cookie).
fn noise(n: usize) -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_";
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            CHARS[(x % 64) as usize] as char
        })
        .collect()
}

/// A cookie name and payload length for which name + signed value is exactly `total`.
fn sized(total: usize) -> (String, usize) {
    let signer = sessio::signing::Signer::new(
        common::STRONG_KEY.as_bytes(),
        &[],
        sessio::signing::SIGNED_COOKIES_SALT,
    );
    for name_len in 9..16 {
        for n in 2500..5500 {
            let mut data = SessionData::new();
            data.insert("p".into(), Value::String(noise(n)));
            if name_len + signer.dumps(&data, T, true).len() == total {
                return ("s".repeat(name_len), n);
            }
        }
    }
    panic!("no size found for {total}");
}

#[tokio::test]
async fn cookie_size_boundary_4096_4097() {
    async fn big(
        session: Session,
        axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, usize>>,
    ) -> &'static str {
        session.insert("p", noise(q["n"])).await.unwrap();
        "ok"
    }
    for (total, fits) in [(4096, true), (4097, false)] {
        let (name, n) = sized(total);
        let f = fixture_with(signed_cookies, |b| b.cookie_name(name.clone()))
            .await
            .unwrap();
        let res = Router::new()
            .route("/big", get(big))
            .layer(f.sessions.layer())
            .oneshot(
                Request::builder()
                    .uri(format!("/big?n={n}"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let cookies: Vec<_> = res.headers().get_all("set-cookie").iter().collect();
        if fits {
            assert_eq!(res.status(), 200);
            let c = cookies[0].to_str().unwrap();
            assert_eq!(
                c.find(';').unwrap(),
                total + 1,
                "name=value is {total} bytes"
            );
        } else {
            assert_eq!(res.status(), 500, "never a silently dropped cookie");
            assert!(cookies.is_empty());
            let err = res
                .extensions()
                .get::<sessio::middleware::SessionError>()
                .expect("the error travels with the response");
            match &*err.0 {
                sessio::Error::CookieTooLarge {
                    name: n,
                    size,
                    limit,
                } => {
                    assert_eq!((n.as_str(), *size, *limit), (name.as_str(), 4097, 4096));
                }
                other => panic!("unexpected {other}"),
            }
        }
    }
}

#[tokio::test]
async fn a_handler_can_catch_an_oversized_cookie() {
    let f = fixture_with(signed_cookies, |b| b).await.unwrap();
    let app = Router::new()
        .route(
            "/",
            get(|s: Session| async move {
                s.insert("p", noise(6000)).await.unwrap();
                match s.save().await {
                    Err(sessio::Error::CookieTooLarge { size, .. }) => {
                        s.remove_value("p").await.unwrap();
                        s.insert("note", "too big").await.unwrap();
                        format!("caught {size}")
                    }
                    other => format!("{other:?}"),
                }
            }),
        )
        .layer(f.sessions.layer());
    let res = app
        .oneshot(Request::builder().uri("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers().get_all("set-cookie").iter().count(), 1);
}

#[tokio::test]
async fn overflow_spills_into_the_server_and_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("spill.sqlite3").display());
    let f = fixture_with(signed_cookies, |b| {
        b.cookie_overflow(sessio::CookieOverflow::Spill(EngineKind::Db))
            .database_url(url)
    })
    .await
    .unwrap();
    async fn put(
        session: Session,
        axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, usize>>,
    ) -> sessio::Result<String> {
        session.insert("p", noise(q["n"])).await?;
        Ok(format!(
            "{}",
            session.get::<String>("p").await?.unwrap_or_default().len()
        ))
    }
    let app = || {
        Router::new()
            .route("/put", get(put))
            .route(
                "/read",
                get(|s: Session| async move {
                    format!(
                        "{}",
                        s.get::<String>("p")
                            .await
                            .unwrap()
                            .unwrap_or_default()
                            .len()
                    )
                }),
            )
            .layer(f.sessions.layer())
    };
    async fn send(app: Router, uri: &str, cookie: Option<&str>) -> (String, String) {
        let mut req = Request::builder().uri(uri);
        if let Some(c) = cookie {
            req = req.header("cookie", format!("sessionid={c}"));
        }
        let res = app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(res.status(), 200);
        let cookie = res
            .headers()
            .get("set-cookie")
            .map(|c| {
                let c = c.to_str().unwrap();
                c["sessionid=".len()..c.find(';').unwrap()].to_owned()
            })
            .unwrap_or_default();
        let body = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        (cookie, String::from_utf8_lossy(&body).into_owned())
    }
    // Small: all in the cookie.
    let (small, _) = send(app(), "/put?n=100", None).await;
    assert!(small.contains(':'), "a signed value");
    // Too big for a cookie: the data moves to the database, the cookie holds an id.
    let (big, body) = send(app(), "/put?n=8000", Some(&small)).await;
    assert_eq!(body, "8000");
    assert_eq!(big.len(), 32, "an id, not the data: {}", big.len());
    assert!(f.sessions.engine().exists(&big).await.unwrap());
    let (_, body) = send(app(), "/read", Some(&big)).await;
    assert_eq!(body, "8000");
    // Small again: back into the cookie, and the row is gone.
    let (back, body) = send(app(), "/put?n=50", Some(&big)).await;
    assert_eq!(body, "50");
    assert!(back.contains(':'));
    assert!(!f.sessions.engine().exists(&big).await.unwrap());
}
