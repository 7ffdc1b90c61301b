//! The security checklist's tests that are not elsewhere: strict ids, id quality, and logs
//! that never carry an id or a cookie.

mod common;

use std::collections::HashSet;
use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::Request;
use axum::routing::get;
use axum::Router;
use common::{db_sqlite, file, fixture_with, Make};
use sessio::{Session, SessionManager};
use tower::ServiceExt;

async fn read(session: Session) -> sessio::Result<String> {
    Ok(format!("{:?}", session.get::<u32>("user_id").await?))
}

async fn write(session: Session) -> sessio::Result<&'static str> {
    session.insert("user_id", 1).await?;
    Ok("written")
}

fn app(sessions: &SessionManager) -> Router {
    Router::new()
        .route("/read", get(read))
        .route("/write", get(write))
        .layer(sessions.layer())
}

async fn get_with_cookie(
    sessions: &SessionManager,
    path: &str,
    cookie: &str,
) -> axum::response::Response {
    app(sessions)
        .oneshot(
            Request::builder()
                .uri(path)
                .header("cookie", format!("sessionid={cookie}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap()
}

async fn random_cookies_create_nothing(make: Make) {
    let f = fixture_with(make, |b| b).await.unwrap();
    for _ in 0..10_000 {
        let cookie = sessio::key::new_session_key().unwrap();
        let res = get_with_cookie(&f.sessions, "/read", &cookie).await;
        assert_eq!(res.status(), 200);
        assert!(!f.sessions.engine().exists(&cookie).await.unwrap());
    }
    // Nothing was stored: there is nothing to clear and no key was adopted.
    let res = get_with_cookie(&f.sessions, "/write", "0123456789abcdefghijklmnopqrstuv").await;
    let set = res.headers()["set-cookie"].to_str().unwrap();
    assert!(!set.contains("0123456789abcdefghijklmnopqrstuv"));
}

#[tokio::test]
async fn ten_thousand_random_cookies_create_no_rows_db() {
    random_cookies_create_nothing(db_sqlite).await;
}

#[tokio::test]
async fn ten_thousand_random_cookies_create_no_files() {
    random_cookies_create_nothing(file).await;
}

#[test]
fn a_million_ids_are_unique_and_well_formed() {
    let mut seen = HashSet::with_capacity(1_000_000);
    for _ in 0..1_000_000 {
        let k = sessio::key::new_session_key().unwrap();
        assert_eq!(k.len(), 32);
        assert!(k
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
        assert!(seen.insert(k));
    }
}

/// Collects everything tracing writes, for the log checks.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn logs_never_contain_an_id_or_a_cookie() {
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || sink.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let f = fixture_with(db_sqlite, |b| b).await.unwrap();
    // A live session, then a concurrent logout before its save (warn log).
    let res = app(&f.sessions)
        .oneshot(
            Request::builder()
                .uri("/write")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let set = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    let key = set["sessionid=".len()..set.find(';').unwrap()].to_owned();
    let s = f.session(Some(&key));
    s.insert("x", 1).await.unwrap();
    f.sessions.engine().delete(&key).await.unwrap();
    assert!(s.save().await.is_err());
    // A refused signed cookie (debug log) and a store failure (error log).
    let c = fixture_with(common::signed_cookies, |b| b).await.unwrap();
    let bad = "eyJ1c2VyX2lkIjo0Mn0:1r31eq:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let res = get_with_cookie(&c.sessions, "/read", bad).await;
    assert_eq!(res.status(), 200);

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(!logs.is_empty(), "the checks above log something");
    assert!(!logs.contains(&key), "raw session id in logs:\n{logs}");
    assert!(!logs.contains(bad), "raw cookie in logs:\n{logs}");
}

/// Logs in, saves, and loads again (through the middleware too) with every lifetime at
/// the largest value the configuration accepts.
async fn the_longest_lifetimes_work(make: Make, index_users: bool) {
    use sessio::config::{MAX_COOKIE_AGE, MAX_LIFETIME};
    let f = fixture_with(make, |b| {
        b.cookie_age(MAX_COOKIE_AGE)
            .idle_timeout(Some(MAX_LIFETIME))
            .absolute_timeout(Some(MAX_LIFETIME))
            .track_user_sessions(index_users)
    })
    .await
    .unwrap();
    let s = f.session(None);
    sessio::auth::login(&s, 7, sessio::auth::MODEL_BACKEND, "pbkdf2_sha256$1$a$b=")
        .await
        .unwrap();
    s.insert("user_id", 1).await.unwrap();
    s.save().await.unwrap();
    assert!(s.expiry_age().await.unwrap() > 0);
    let key = s.id().unwrap();
    let s = f.session(Some(&key));
    assert_eq!(s.get::<u32>("user_id").await.unwrap(), Some(1));

    let res = get_with_cookie(&f.sessions, "/write", &key).await;
    assert_eq!(res.status(), 200);
    let set = res.headers()["set-cookie"].to_str().unwrap();
    assert!(set.contains("Max-Age="), "{set}");
    let fresh = set
        .strip_prefix("sessionid=")
        .and_then(|v| v.split(';').next())
        .unwrap();
    let res = get_with_cookie(&f.sessions, "/read", fresh).await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn the_longest_lifetimes_work_on_every_local_engine() {
    for (make, index_users) in [
        (common::cache_memory as Make, true),
        (common::signed_cookies as Make, false),
        (common::encrypted_cookies as Make, false),
        (db_sqlite as Make, true),
        (file as Make, true),
    ] {
        the_longest_lifetimes_work(make, index_users).await;
    }
}
