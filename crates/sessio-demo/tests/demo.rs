//! The demo driven through its router, as a browser would: each test keeps a one-cookie jar.
//!
//! The flows run on every engine: signed and encrypted cookies, `db` on a SQLite file in a
//! temp dir of its own (and on PostgreSQL, in a schema of its own, when
//! `SESSIO_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test`, answers;
//! else the test prints `SKIPPED:`, or fails under `SESSIO_REQUIRE_SERVICES=1`), files in
//! a temp dir, the in-process `memory://` cache, and `cached-db` on SQLite and memory.

// The CLI's test helpers for servers (scratch schemas through `psql`), shared rather than
// copied.
#[path = "../../sessio-cli/tests/servers/mod.rs"]
mod servers;

use axum::body::Body;
use axum::http::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use axum::http::{Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt as _;
use serde_json::{json, Value};
use sessio::{Config, EngineKind, SessionManager};
use tempfile::TempDir;
use tower::ServiceExt as _;

const KEY: &str = "demo-tests-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz";

async fn signed_cookies() -> SessionManager {
    let config = Config::builder()
        .secret_key(KEY)
        .engine(EngineKind::SignedCookies)
        .build()
        .unwrap();
    SessionManager::open(config).await.unwrap()
}

/// A `db` manager on `sessions.sqlite3` in `dir`.
async fn db_in(dir: &TempDir) -> SessionManager {
    let path = dir.path().join("sessions.sqlite3");
    let config = Config::builder()
        .secret_key(KEY)
        .engine(EngineKind::Db)
        .database_url(format!("sqlite://{}", path.display()))
        .auto_migrate(true)
        .build()
        .unwrap();
    SessionManager::open(config)
        .await
        .expect("the db engine opens a SQLite file")
}

async fn encrypted_cookies() -> SessionManager {
    let config = Config::builder()
        .secret_key(KEY)
        .engine(EngineKind::EncryptedCookies)
        .build()
        .unwrap();
    SessionManager::open(config).await.unwrap()
}

/// A `file` manager on `dir`.
async fn files_in(dir: &TempDir) -> SessionManager {
    let config = Config::builder()
        .secret_key(KEY)
        .engine(EngineKind::File)
        .file_path(dir.path())
        .build()
        .unwrap();
    SessionManager::open(config).await.unwrap()
}

/// A `cache` manager on this process's memory.
async fn memory_cache() -> SessionManager {
    let config = Config::builder()
        .secret_key(KEY)
        .engine(EngineKind::Cache)
        .cache_url("memory://")
        .build()
        .unwrap();
    SessionManager::open(config).await.unwrap()
}

/// A `cached-db` manager: SQLite in `dir`, memory in front.
async fn cached_db_in(dir: &TempDir) -> SessionManager {
    let path = dir.path().join("sessions.sqlite3");
    let config = Config::builder()
        .secret_key(KEY)
        .engine(EngineKind::CachedDb)
        .database_url(format!("sqlite://{}", path.display()))
        .cache_url("memory://")
        .auto_migrate(true)
        .build()
        .unwrap();
    SessionManager::open(config).await.unwrap()
}

/// A `db` manager on PostgreSQL in a schema of its own, or `None` (skipped) when the
/// server does not answer. The schema lives as long as the returned guard.
async fn postgres() -> Option<(SessionManager, servers::PgSchema)> {
    let schema = servers::PgSchema::create()?;
    let config = Config::builder()
        .secret_key(KEY)
        .engine(EngineKind::Db)
        .database_url(schema.url.clone())
        .auto_migrate(true)
        .build()
        .unwrap();
    let sessions = SessionManager::open(config)
        .await
        .expect("the db engine opens PostgreSQL");
    Some((sessions, schema))
}

/// A browser with a jar for the session cookie.
struct Browser {
    app: Router,
    cookie_name: String,
    cookie: Option<String>,
}

struct Page {
    status: StatusCode,
    location: Option<String>,
    body: String,
}

impl Browser {
    fn new(sessions: &SessionManager) -> Self {
        Self {
            app: sessio_demo::app(sessions),
            cookie_name: sessions.config().cookie_name().to_owned(),
            cookie: None,
        }
    }

    async fn send(&mut self, mut req: Request<Body>) -> Page {
        if let Some(value) = &self.cookie {
            let header = format!("{}={value}", self.cookie_name);
            req.headers_mut().insert(COOKIE, header.parse().unwrap());
        }
        let res = self.app.clone().oneshot(req).await.unwrap();
        for set in res.headers().get_all(SET_COOKIE) {
            let set = set.to_str().unwrap();
            let (pair, attrs) = set.split_once(';').unwrap_or((set, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if name != self.cookie_name {
                continue;
            }
            let removed = attrs
                .split(';')
                .any(|a| a.trim().eq_ignore_ascii_case("max-age=0"));
            self.cookie = (!removed).then(|| value.to_owned());
        }
        let status = res.status();
        let location = res
            .headers()
            .get(LOCATION)
            .map(|l| l.to_str().unwrap().to_owned());
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        Page {
            status,
            location,
            body: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let req = Request::get(path).body(Body::empty()).unwrap();
        self.send(req).await
    }

    async fn post(&mut self, path: &str, form: &str) -> Page {
        let req = Request::post(path)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(form.to_owned()))
            .unwrap();
        self.send(req).await
    }

    /// A POST that must answer 303 See Other to `/`.
    async fn submit(&mut self, path: &str, form: &str) {
        let page = self.post(path, form).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}: {}", page.body);
        assert_eq!(page.location.as_deref(), Some("/"));
    }

    async fn session(&mut self) -> Value {
        let page = self.get("/api/session").await;
        assert_eq!(page.status, StatusCode::OK);
        serde_json::from_str(&page.body).unwrap()
    }
}

/// Log in with an anonymous cart, see it kept, log out, see it gone.
async fn shop_login_logout(sessions: &SessionManager) -> Browser {
    let mut browser = Browser::new(sessions);
    let home = browser.get("/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains("Log in"));
    assert!(home.body.contains("(no cookie yet)"));
    assert!(home.body.contains("Your cart is empty"));
    assert!(
        browser.cookie.is_none(),
        "reading the session sets no cookie"
    );

    browser.submit("/cart/add", "product=tea").await;
    browser.submit("/cart/add", "product=tea").await;
    browser.submit("/cart/add", "product=mug").await;
    assert!(browser.cookie.is_some());
    assert_eq!(
        browser.session().await,
        json!({"cart": {"mug": 1, "tea": 2}})
    );
    let home = browser.get("/").await;
    assert!(home.body.contains("Green tea"));
    assert!(home.body.contains("Ceramic mug"));
    assert!(home.body.contains("3 items"));
    assert!(home.body.contains("$21.00"), "total of 2 x 4.50 + 12.00");

    let before_login = browser.cookie.clone().unwrap();
    browser
        .submit("/login", "username=alice&password=alice")
        .await;
    let after_login = browser.cookie.clone().unwrap();
    assert_ne!(before_login, after_login, "login changes the cookie");
    assert_eq!(
        browser.session().await,
        json!({"cart": {"mug": 1, "tea": 2}, "user": "alice"})
    );
    let home = browser.get("/").await;
    assert!(home.body.contains("Welcome back, Alice"));
    assert!(home.body.contains("3 items"), "the cart survives login");

    browser.submit("/logout", "").await;
    assert!(browser.cookie.is_none(), "logout removes the cookie");
    assert_eq!(browser.session().await, json!({}));
    let home = browser.get("/").await;
    assert!(home.body.contains("Log in"));
    assert!(home.body.contains("Your cart is empty"));
    browser
}

#[tokio::test]
async fn shop_login_logout_with_signed_cookies() {
    shop_login_logout(&signed_cookies().await).await;
}

#[tokio::test]
async fn shop_login_logout_with_db() {
    let dir = TempDir::new().unwrap();
    shop_login_logout(&db_in(&dir).await).await;
}

#[tokio::test]
async fn db_login_cycles_the_id_and_logout_revokes_it() {
    let dir = TempDir::new().unwrap();
    let sessions = db_in(&dir).await;
    let mut browser = Browser::new(&sessions);
    browser.submit("/cart/add", "product=notebook").await;
    let anonymous_id = browser.cookie.clone().unwrap();

    browser.submit("/login", "username=bob&password=bob").await;
    let logged_in_id = browser.cookie.clone().unwrap();
    assert_ne!(anonymous_id, logged_in_id, "login gives a new session id");
    assert_eq!(logged_in_id.len(), 32);
    let home = browser.get("/").await;
    assert!(
        home.body.contains(&logged_in_id[..8]),
        "the id prefix is shown"
    );
    assert!(!home.body.contains(&logged_in_id), "never the whole id");

    // Whoever kept the pre-login id (session fixation) gets nothing.
    let mut attacker = Browser::new(&sessions);
    attacker.cookie = Some(anonymous_id);
    assert_eq!(attacker.session().await, json!({}));

    // After logout, a copy of the logged-in cookie is worthless too.
    browser.submit("/logout", "").await;
    attacker.cookie = Some(logged_in_id);
    assert_eq!(attacker.session().await, json!({}));
}

#[tokio::test]
async fn db_cart_survives_a_restart() {
    let dir = TempDir::new().unwrap();
    let cookie = {
        let sessions = db_in(&dir).await;
        let mut browser = Browser::new(&sessions);
        browser.submit("/cart/add", "product=stickers").await;
        browser
            .submit("/login", "username=carol&password=carol")
            .await;
        browser.cookie.clone().unwrap()
    };
    // A new process: a new manager on the same file, with the same secret key.
    let sessions = db_in(&dir).await;
    let mut browser = Browser::new(&sessions);
    browser.cookie = Some(cookie);
    assert_eq!(
        browser.session().await,
        json!({"cart": {"stickers": 1}, "user": "carol"})
    );
    let home = browser.get("/").await;
    assert!(home.body.contains("Welcome back, Carol"));
    assert!(home.body.contains("Cookie stickers"));
}

/// Logging in over another user's session does not hand over their cart.
async fn switching_users_starts_afresh(sessions: &SessionManager) {
    let mut browser = Browser::new(sessions);
    browser
        .submit("/login", "username=alice&password=alice")
        .await;
    browser.submit("/cart/add", "product=mug").await;
    browser
        .submit("/login", "username=alice&password=alice")
        .await;
    assert_eq!(
        browser.session().await,
        json!({"user": "alice", "cart": {"mug": 1}}),
        "logging in again as the same user keeps the session"
    );
    browser.submit("/login", "username=bob&password=bob").await;
    assert_eq!(browser.session().await, json!({"user": "bob"}));
}

#[tokio::test]
async fn switching_users_starts_afresh_with_signed_cookies() {
    switching_users_starts_afresh(&signed_cookies().await).await;
}

#[tokio::test]
async fn switching_users_starts_afresh_with_db() {
    let dir = TempDir::new().unwrap();
    switching_users_starts_afresh(&db_in(&dir).await).await;
}

async fn bad_input_is_a_400(sessions: &SessionManager) {
    let mut browser = Browser::new(sessions);
    let cases = [
        ("/cart/add", "product=caviar", "no product"),
        ("/cart/add", "", "could not be read"),
        ("/cart/add", "product=%3Cb%3E", "&lt;b&gt;"),
        ("/login", "username=alice&password=bob", "Wrong password"),
        (
            "/login",
            "username=mallory&password=mallory",
            "no demo user",
        ),
        ("/login", "username=alice", "could not be read"),
    ];
    for (path, form, expected) in cases {
        let page = browser.post(path, form).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{path} {form}");
        assert!(page.body.contains(expected), "{path} {form}: {}", page.body);
        assert!(!page.body.contains("<b>"));
    }
    let json = Request::post("/login")
        .header(CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"username":"alice","password":"alice"}"#))
        .unwrap();
    assert_eq!(browser.send(json).await.status, StatusCode::BAD_REQUEST);
    assert!(browser.cookie.is_none(), "failed logins create no session");
    assert_eq!(browser.get("/nowhere").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_input_is_a_400_with_signed_cookies() {
    bad_input_is_a_400(&signed_cookies().await).await;
}

#[tokio::test]
async fn bad_input_is_a_400_with_db() {
    let dir = TempDir::new().unwrap();
    bad_input_is_a_400(&db_in(&dir).await).await;
}

/// A session written by someone else (another app sharing it, or a bug) is shown escaped,
/// and a cart of another shape does not break the page.
async fn foreign_session_data_is_escaped(sessions: &SessionManager) {
    let session = sessions.session(None);
    session
        .insert("user", "<script>alert(1)</script>")
        .await
        .unwrap();
    session.insert("cart", json!([1, 2])).await.unwrap();
    session
        .insert("note", "\"quoted\" & <tagged>")
        .await
        .unwrap();
    session.save().await.unwrap();
    let mut browser = Browser::new(sessions);
    browser.cookie = session.id();
    let home = browser.get("/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(!home.body.contains("<script>alert"), "{}", home.body);
    assert!(!home.body.contains("<tagged>"));
    assert!(home.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(home.body.contains("Your cart is empty"));
    // Adding to a cart of another shape replaces it rather than failing.
    browser.submit("/cart/add", "product=tea").await;
    assert_eq!(browser.session().await["cart"], json!({"tea": 1}));
}

#[tokio::test]
async fn foreign_session_data_is_escaped_with_signed_cookies() {
    foreign_session_data_is_escaped(&signed_cookies().await).await;
}

#[tokio::test]
async fn foreign_session_data_is_escaped_with_db() {
    let dir = TempDir::new().unwrap();
    foreign_session_data_is_escaped(&db_in(&dir).await).await;
}

#[tokio::test]
async fn the_session_panel_tells_the_facts() {
    let sessions = signed_cookies().await;
    let mut browser = Browser::new(&sessions);
    browser.submit("/cart/add", "product=tea").await;
    let cookie = browser.cookie.clone().unwrap();
    let home = browser.get("/").await;
    let size = format!("{} bytes", "sessionid".len() + 1 + cookie.len());
    assert!(home.body.contains(&size), "cookie size {size}");
    assert!(home.body.contains("engine: signed-cookies"));
    assert!(home.body.contains("1209600 seconds (14 days)"));
    assert!(home.body.contains("the cookie is persistent"));
    assert!(
        home.body.contains("&quot;tea&quot;: 1"),
        "pretty JSON of the data"
    );
    assert!(
        !home.body.contains(&cookie),
        "the signed value itself is not echoed"
    );
}

#[tokio::test]
async fn a_tampered_cookie_is_an_empty_session() {
    let sessions = signed_cookies().await;
    let mut browser = Browser::new(&sessions);
    browser
        .submit("/login", "username=alice&password=alice")
        .await;
    let cookie = browser.cookie.clone().unwrap();
    // Swap the payload for one that claims to be carol, keeping alice's signature.
    let (_, rest) = cookie.split_once(':').unwrap();
    browser.cookie = Some(format!("eyJ1c2VyIjoiY2Fyb2wifQ:{rest}"));
    assert_eq!(browser.session().await, json!({}));
}

// --- every engine ---------------------------------------------------------------------

#[tokio::test]
async fn shop_login_logout_with_encrypted_cookies() {
    let sessions = encrypted_cookies().await;
    shop_login_logout(&sessions).await;
    switching_users_starts_afresh(&sessions).await;
    bad_input_is_a_400(&sessions).await;
}

#[tokio::test]
async fn shop_login_logout_with_files() {
    let dir = TempDir::new().unwrap();
    let sessions = files_in(&dir).await;
    shop_login_logout(&sessions).await;
    server_side_login_cycles_the_id_and_logout_revokes_it(&sessions).await;
    switching_users_starts_afresh(&sessions).await;
    bad_input_is_a_400(&sessions).await;
    foreign_session_data_is_escaped(&sessions).await;
}

#[tokio::test]
async fn shop_login_logout_with_a_memory_cache() {
    let sessions = memory_cache().await;
    shop_login_logout(&sessions).await;
    server_side_login_cycles_the_id_and_logout_revokes_it(&sessions).await;
    switching_users_starts_afresh(&sessions).await;
    foreign_session_data_is_escaped(&sessions).await;
}

#[tokio::test]
async fn shop_login_logout_with_cached_db() {
    let dir = TempDir::new().unwrap();
    let sessions = cached_db_in(&dir).await;
    shop_login_logout(&sessions).await;
    server_side_login_cycles_the_id_and_logout_revokes_it(&sessions).await;
}

#[tokio::test]
async fn shop_login_logout_with_db_on_postgresql() {
    let Some((sessions, _schema)) = postgres().await else {
        return;
    };
    shop_login_logout(&sessions).await;
    server_side_login_cycles_the_id_and_logout_revokes_it(&sessions).await;
    switching_users_starts_afresh(&sessions).await;
    foreign_session_data_is_escaped(&sessions).await;
    let mut browser = Browser::new(&sessions);
    let home = browser.get("/").await;
    let host = servers::parse_url(&servers::postgres_url());
    let place = format!(
        "in PostgreSQL at {}:{}/{}",
        host.host,
        host.port.unwrap_or(5432),
        host.path
    );
    assert!(home.body.contains(&place), "{place}: {}", home.body);
    assert!(
        !home.body.contains("postgres://"),
        "no URL, so no credentials"
    );
}

/// Login gives a server session a new id; a copy of an old id, or of any id after
/// logout, opens nothing.
async fn server_side_login_cycles_the_id_and_logout_revokes_it(sessions: &SessionManager) {
    let mut browser = Browser::new(sessions);
    browser.submit("/cart/add", "product=notebook").await;
    let anonymous_id = browser.cookie.clone().unwrap();
    browser.submit("/login", "username=bob&password=bob").await;
    let logged_in_id = browser.cookie.clone().unwrap();
    assert_ne!(anonymous_id, logged_in_id, "login gives a new session id");
    assert_eq!(logged_in_id.len(), 32);
    let home = browser.get("/").await;
    assert!(
        home.body.contains(&logged_in_id[..8]),
        "the id prefix is shown"
    );
    assert!(!home.body.contains(&logged_in_id), "never the whole id");

    let mut attacker = Browser::new(sessions);
    attacker.cookie = Some(anonymous_id);
    assert_eq!(attacker.session().await, json!({}));
    browser.submit("/logout", "").await;
    attacker.cookie = Some(logged_in_id);
    assert_eq!(attacker.session().await, json!({}));
}

#[tokio::test]
async fn the_panel_says_where_the_data_lives() {
    let dir = TempDir::new().unwrap();
    let cases = [
        (
            signed_cookies().await,
            "signed-cookies",
            "in the cookie, signed".to_owned(),
        ),
        (
            encrypted_cookies().await,
            "encrypted-cookies",
            "in the cookie, encrypted".to_owned(),
        ),
        (
            db_in(&dir).await,
            "db",
            format!(
                "in SQLite at {}",
                dir.path().join("sessions.sqlite3").display()
            ),
        ),
        (
            files_in(&dir).await,
            "file",
            format!("in files in {}", dir.path().display()),
        ),
        (
            memory_cache().await,
            "cache",
            "in this process&#x27;s memory".to_owned(),
        ),
    ];
    for (sessions, engine, place) in cases {
        let mut browser = Browser::new(&sessions);
        browser.submit("/cart/add", "product=tea").await;
        let home = browser.get("/").await;
        assert!(home.body.contains(&format!("engine: {engine}")), "{engine}");
        assert!(
            home.body.contains(&place),
            "{engine}: {place}: {}",
            home.body
        );
    }
}

#[tokio::test]
async fn encrypted_cookies_hide_the_data_from_the_visitor() {
    let sessions = encrypted_cookies().await;
    let mut browser = Browser::new(&sessions);
    browser
        .submit("/login", "username=alice&password=alice")
        .await;
    let cookie = browser.cookie.clone().unwrap();
    assert!(!cookie.contains("alice"));
    // Neither readable as Django's signed format...
    let payload = cookie.split(':').next().unwrap();
    assert!(!payload.starts_with("eyJ"), "not base64 JSON: {cookie}");
    // ...nor accepted when changed.
    let mut tampered = cookie.clone().into_bytes();
    let middle = tampered.len() / 2;
    tampered[middle] = if tampered[middle] == b'A' { b'B' } else { b'A' };
    browser.cookie = Some(String::from_utf8(tampered).unwrap());
    assert_eq!(browser.session().await, json!({}));
}
