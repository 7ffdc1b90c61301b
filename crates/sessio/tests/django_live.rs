//! Live interoperability with real Django (5.2 LTS and the newest 6.x), installed from PyPI
//! by `interop/setup-django.sh` into `target/django-venvs/{5.2,6}` (or `$SESSIO_DJANGO_VENVS`).
//!
//! Django runs `interop/django_app` through its test `Client` (the real SessionMiddleware
//! and AuthenticationMiddleware) in one Python process per test, driven over a line-oriented
//! JSON protocol (`interop/django_side.py serve`). sessio runs an axum app with its
//! `SessionLayer`, called with `tower::ServiceExt::oneshot`. Both share the secret key, the
//! database and a clock frozen at the same instant, and hand cookies to each other.
//!
//! One test per Django version and engine (signed cookies; db on SQLite, PostgreSQL and
//! MySQL/MariaDB), each running every scenario and reporting all failing ones:
//! (a) Django writes, sessio reads; (b) sessio writes, Django reads; (c) logins made on one
//! side are accepted on the other; (d) logouts made on one side are honoured on the other;
//! (e) the same data at the same time gives the same `Set-Cookie` and stored bytes;
//! (f) the same change to a Django-made session (each kind of `set_expiry`) gives the same
//! bytes; (g) invalid, short, unknown, tampered and expired cookies get the same answers;
//! (h) SECRET_KEY rotation with fallbacks; (i) logging in over an existing login;
//! (j) the known differences, printed as `KNOWN DIFFERENCE` while they last.
//!
//! Without the venvs, or without a database server, a test is skipped with a message, and
//! fails under `SESSIO_REQUIRE_SERVICES=1` (see `common::skip`).

mod common;

use std::io::{BufRead, BufReader, Read, Seek, Write};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::FutureExt;
use sessio::clock::ManualClock;
use sessio::{auth, Config, EngineKind, Expiry, Session, SessionManager};
use sessio::{json, Value};
use time::OffsetDateTime;
use tower::ServiceExt;

/// The frozen "now" of both sides (2023-11-14T22:13:20Z).
const T: i64 = common::T;
/// Shared by both sides; 50+ characters, so no weak-key exception is needed.
const SECRET: &str = common::STRONG_KEY;
/// The key before a rotation: a fallback on both sides (`SECRET_KEY_FALLBACKS`).
const OLD_SECRET: &str = "the-previous-secret-key-rotated-out-0123456789-abcdefghij";
/// How long one Django command may take (start-up includes migrations; the machine may
/// be running other tests).
const DJANGO_TIMEOUT: Duration = Duration::from_secs(180);

// ---------------------------------------------------------------------------------------
// Where things are.

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The venv's Python for a Django line (`5.2` or `6`); it may not exist.
fn venv_python(version: &str) -> PathBuf {
    let root = std::env::var_os("SESSIO_DJANGO_VENVS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/django-venvs"));
    root.join(version).join("bin/python")
}

// ---------------------------------------------------------------------------------------
// A response from either side, reduced to what the scenarios compare.

#[derive(Debug, Clone)]
struct Reply {
    status: u16,
    set_cookie: Vec<String>,
    vary: Option<String>,
    body: Value,
}

impl Reply {
    /// The `Set-Cookie` header of the session cookie.
    fn session_header(&self) -> Option<&str> {
        self.set_cookie
            .iter()
            .map(String::as_str)
            .find(|c| c.starts_with("sessionid="))
    }

    /// The new cookie value, when the response sets one (and does not delete it).
    fn cookie(&self) -> Option<String> {
        let h = self.session_header()?;
        if self.deleted() {
            return None;
        }
        let v = &h["sessionid=".len()..];
        Some(v[..v.find(';').unwrap_or(v.len())].to_owned())
    }

    /// The cookie value a browser holds after this response, given what it held before.
    fn next_cookie(&self, before: Option<&str>) -> Option<String> {
        if self.deleted() {
            None
        } else {
            self.cookie().or(before.map(str::to_owned))
        }
    }

    fn deleted(&self) -> bool {
        self.session_header()
            .is_some_and(|h| h.split("; ").any(|a| a == "Max-Age=0"))
    }

    /// The `Set-Cookie` headers with the session key replaced by `<key>` (db keys are
    /// random, everything else must match).
    fn masked(&self) -> Vec<String> {
        let key = self.cookie();
        self.set_cookie
            .iter()
            .map(|h| match &key {
                Some(k) => h.replacen(k.as_str(), "<key>", 1),
                None => h.clone(),
            })
            .collect()
    }

    fn data(&self) -> &Value {
        &self.body["data"]
    }
}

/// Session data for comparison across the two JSON encoders: integers as their digits,
/// floats as `f64` (Python writes `1e+16` where the request said `1e16`). The exact bytes
/// are compared elsewhere, in the signed values themselves.
fn norm(v: &Value) -> Value {
    match v {
        Value::Number(n) => {
            let s = n.to_string();
            if s.contains(['.', 'e', 'E']) {
                Value::String(format!("float {:?}", s.parse::<f64>().unwrap()))
            } else if s == "-0" {
                Value::String("int 0".into())
            } else {
                Value::String(format!("int {s}"))
            }
        }
        Value::Array(a) => Value::Array(a.iter().map(norm).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), norm(v))).collect()),
        other => other.clone(),
    }
}

fn assert_same_data(got: &Value, want: &Value, what: &str) {
    assert_eq!(norm(got), norm(want), "{what}");
}

/// `a` with the entries of `b` added (later keys win, order kept).
fn merged(a: &Value, b: &Value) -> Value {
    let mut out = a.as_object().cloned().unwrap_or_default();
    for (k, v) in b.as_object().unwrap() {
        out.insert(k.clone(), v.clone());
    }
    Value::Object(out)
}

// ---------------------------------------------------------------------------------------
// Django's side: one `django_side.py serve` process.

struct Django {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    stderr: std::fs::File,
    version: String,
    /// Whether the process made a database of its own (PostgreSQL, MySQL) to drop at the end.
    owns_database: bool,
}

impl Django {
    fn start(python: &Path, env: &[(&str, String)], owns_database: bool) -> Django {
        let script = workspace_root().join("interop/django_side.py");
        let stderr = tempfile::tempfile().expect("temp file for Django's stderr");
        let mut cmd = Command::new(python);
        cmd.arg(&script)
            .arg("serve")
            .env_remove("DJANGO_SETTINGS_MODULE")
            // Keep __pycache__ out of the source tree.
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr.try_clone().unwrap());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", python.display()));
        let stdout = child.stdout.take().unwrap();
        // A reader thread, so that a hung Python fails the test after a timeout instead of
        // hanging it.
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        let mut django = Django {
            child,
            stdin,
            lines,
            stderr,
            version: String::new(),
            owns_database,
        };
        let ready = django.read_reply("start-up");
        django.version = ready["django"].as_str().unwrap_or("?").to_owned();
        django
    }

    fn stderr_text(&mut self) -> String {
        let mut s = String::new();
        let _ = self.stderr.rewind();
        let _ = self.stderr.read_to_string(&mut s);
        s
    }

    fn read_reply(&mut self, what: &str) -> Value {
        match self.lines.recv_timeout(DJANGO_TIMEOUT) {
            Ok(line) => {
                let v: Value = sessio::value::from_str(&line).unwrap_or_else(|e| {
                    panic!("Django's reply to {what} is not JSON ({e}): {line}")
                });
                if v["ok"] != true {
                    panic!(
                        "Django failed on {what}: {}\n{}\n--- stderr:\n{}",
                        v["error"],
                        v["trace"].as_str().unwrap_or(""),
                        self.stderr_text()
                    );
                }
                v
            }
            Err(e) => panic!(
                "no reply from Django to {what} ({e})\n--- stderr:\n{}",
                self.stderr_text()
            ),
        }
    }

    fn call(&mut self, cmd: Value) -> Value {
        let what = cmd.to_string();
        let stdin = self.stdin.as_mut().expect("Django is running");
        writeln!(stdin, "{cmd}")
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("cannot write to Django ({e}): {}", self.stderr_text()));
        self.read_reply(&what)
    }

    fn request(
        &mut self,
        method: &str,
        path: &str,
        cookie: Option<&str>,
        body: Value,
        now: i64,
    ) -> Reply {
        let r = self.call(json!({
            "op": "request", "method": method, "path": path, "cookie": cookie,
            "json": body, "now": now,
        }));
        Reply {
            status: r["status"].as_u64().unwrap() as u16,
            set_cookie: r["set_cookie"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap().to_owned())
                .collect(),
            vary: r["vary"].as_str().map(str::to_owned),
            body: r["body"].clone(),
        }
    }

    /// The user `username` (created with a known password if needed): (id, password hash).
    fn user(&mut self, username: &str) -> (String, String) {
        let r = self.call(json!({"op": "user", "username": username, "create": true}));
        let u = &r["user"];
        (
            u["id"].as_str().unwrap().to_owned(),
            u["password"].as_str().unwrap().to_owned(),
        )
    }

    /// The `django_session` row as Django's ORM reads it: (session_data, expire_date).
    fn session_row(&mut self, key: &str) -> Option<(String, String)> {
        let r = self.call(json!({"op": "session_row", "key": key}));
        let row = &r["row"];
        (!row.is_null()).then(|| {
            (
                row["session_data"].as_str().unwrap().to_owned(),
                row["expire_date"].as_str().unwrap().to_owned(),
            )
        })
    }
}

impl Drop for Django {
    fn drop(&mut self) {
        if self.owns_database {
            // Best effort: a failure here must not hide the test's own result.
            if let Some(stdin) = self.stdin.as_mut() {
                let _ = writeln!(stdin, "{}", json!({"op": "drop_db"}));
                let _ = stdin.flush();
                let _ = self.lines.recv_timeout(Duration::from_secs(30));
            }
        }
        // Closing stdin ends the command loop.
        self.stdin.take();
        for _ in 0..100 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------
// sessio's side: an axum app with the same views.

async fn state(session: &Session, mut extra: sessio::value::Map) -> Json<Value> {
    extra.insert(
        "data".into(),
        Value::Object(session.data().await.unwrap_or_default()),
    );
    extra.insert("key".into(), json!(session.id()));
    Json(Value::Object(extra))
}

/// A request's JSON body as Python reads it: axum's `Json` goes through serde_json, which
/// holds no integer past 64 bits.
struct PyJson(Value);

impl<S: Send + Sync> axum::extract::FromRequest<S> for PyJson {
    type Rejection = (http::StatusCode, String);

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| (http::StatusCode::BAD_REQUEST, e.to_string()))?;
        sessio::value::from_slice(&bytes)
            .map(PyJson)
            .map_err(|e| (http::StatusCode::BAD_REQUEST, e.to_string()))
    }
}

/// Stores `data`; `expiry` is Django's set_expiry argument (seconds, 0, or ISO datetime).
async fn set_view(session: Session, PyJson(body): PyJson) -> sessio::Result<Json<Value>> {
    for (k, v) in body["data"].as_object().into_iter().flatten() {
        session.insert_value(k, v.clone()).await?;
    }
    match &body["expiry"] {
        Value::Number(n) if n.as_i64() == Some(0) => {
            session.set_expiry(Expiry::OnBrowserClose).await?
        }
        Value::Number(n) => {
            let secs = n.as_i64().unwrap();
            session
                .set_expiry(Expiry::OnInactivity(time::Duration::seconds(secs)))
                .await?
        }
        Value::String(s) => {
            let at =
                OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap();
            session.set_expiry(Expiry::AtDateTime(at)).await?
        }
        _ => {}
    }
    Ok(state(&session, Default::default()).await)
}

async fn show_view(session: Session) -> Json<Value> {
    state(&session, Default::default()).await
}

async fn login_view(session: Session, PyJson(body): PyJson) -> sessio::Result<Json<Value>> {
    let id = body["user_id"].as_str().unwrap();
    let hash = body["password_hash"].as_str().unwrap();
    auth::login(&session, id, auth::MODEL_BACKEND, hash).await?;
    Ok(state(&session, Default::default()).await)
}

/// Who is logged in, verified against the password hash the test passes (Django's
/// get_user reads it from auth_user; the test read it from Django).
async fn whoami_view(session: Session, PyJson(body): PyJson) -> sessio::Result<Json<Value>> {
    let user = auth::user(&session).await?;
    let verified = match &user {
        Some(_) => {
            let id = body["user_id"].as_str().unwrap();
            let hash = body["password_hash"].as_str().unwrap();
            auth::verify(&session, id, hash).await?
        }
        None => false,
    };
    let mut extra = sessio::value::Map::new();
    extra.insert(
        "user".into(),
        match user {
            Some(u) => json!({"id": u.id, "backend": u.backend}),
            None => Value::Null,
        },
    );
    extra.insert("verified".into(), json!(verified));
    Ok(state(&session, extra).await)
}

async fn logout_view(session: Session) -> sessio::Result<Json<Value>> {
    auth::logout(&session).await?;
    Ok(state(&session, Default::default()).await)
}

struct Sessio {
    sessions: SessionManager,
    clock: ManualClock,
}

impl Sessio {
    async fn request(
        &self,
        method: &str,
        path: &str,
        cookie: Option<&str>,
        body: Value,
        now: i64,
    ) -> Reply {
        self.clock
            .set(OffsetDateTime::from_unix_timestamp(now).unwrap());
        let app = Router::new()
            .route("/set", post(set_view))
            .route("/show", get(show_view))
            .route("/login", post(login_view))
            .route("/whoami", post(whoami_view))
            .route("/logout", post(logout_view))
            .route("/untouched", get(|| async { "untouched" }))
            .layer(self.sessions.layer());
        let mut req = Request::builder().method(method).uri(path);
        if let Some(c) = cookie {
            req = req.header("cookie", format!("sessionid={c}"));
        }
        let req = if method == "POST" {
            req.header("content-type", "application/json")
                .body(Body::from(body.to_string()))
        } else {
            req.body(Body::empty())
        };
        let res = app.oneshot(req.unwrap()).await.unwrap();
        let status = res.status().as_u16();
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
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        let body = sessio::value::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Reply {
            status,
            set_cookie,
            vary,
            body,
        }
    }
}

// ---------------------------------------------------------------------------------------
// One Django version, one engine.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    SignedCookies,
    Sqlite,
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    Postgres,
    #[cfg_attr(not(feature = "mysql"), allow(dead_code))]
    Mysql,
}

struct Ctx {
    // Fields drop in order: sessio's connections close before Django drops the database.
    sessio: Sessio,
    /// sessio as deployed before the key rotation: signs with OLD_SECRET, same store.
    old: Sessio,
    django: Django,
    backend: Backend,
    /// The SQLite file both sides share (for reading raw rows).
    sqlite_path: Option<PathBuf>,
    _dir: tempfile::TempDir,
}

impl Ctx {
    fn db(&self) -> bool {
        self.backend != Backend::SignedCookies
    }
}

/// `scheme://user@host:port/other?opts` with the database `name`.
fn with_database(url: &str, name: &str) -> String {
    let base = url.split('?').next().unwrap();
    let (server, _) = base
        .rsplit_once('/')
        .filter(|(s, _)| s.contains("://"))
        .unwrap();
    format!("{server}/{name}")
}

/// The database a server URL names (where the test's own database is created from).
fn database_of(url: &str) -> String {
    let base = url.split('?').next().unwrap();
    let after = &base[base.find("://").map_or(0, |i| i + 3)..];
    after
        .split_once('/')
        .map(|(_, db)| db.to_owned())
        .filter(|db| !db.is_empty())
        .unwrap_or_else(|| "test".into())
}

/// Whether something answers at the URL's host and port.
fn reachable(url: &str, default_port: u16) -> Result<(), String> {
    use std::net::ToSocketAddrs;
    let after = &url[url.find("://").map_or(0, |i| i + 3)..];
    let hostport = after.split(['/', '?']).next().unwrap();
    let hostport = hostport.rsplit_once('@').map_or(hostport, |(_, h)| h);
    let addr = if hostport.contains(':') {
        hostport.to_owned()
    } else {
        format!("{hostport}:{default_port}")
    };
    let addrs = addr.to_socket_addrs().map_err(|e| e.to_string())?;
    let mut last = String::from("no address");
    for a in addrs {
        match std::net::TcpStream::connect_timeout(&a, Duration::from_secs(3)) {
            Ok(_) => return Ok(()),
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}

fn unique_database(version: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "sessio_django{}_{}_{}",
        version.replace('.', ""),
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

async fn setup(version: &str, backend: Backend) -> Option<Ctx> {
    let python = venv_python(version);
    if !python.exists() {
        return common::skip(
            &format!("Django {version}"),
            &python.display().to_string(),
            "not installed: run `bash interop/setup-django.sh`",
        );
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let mut env: Vec<(&str, String)> = vec![
        ("SECRET_KEY", SECRET.into()),
        ("SECRET_KEY_FALLBACKS", OLD_SECRET.into()),
    ];
    let (engine, database_url, owns_database) = match backend {
        Backend::SignedCookies => {
            // Django still needs a database for auth_user.
            let db = dir.path().join("django.sqlite3");
            env.push(("DATABASE_URL", format!("sqlite://{}", db.display())));
            (EngineKind::SignedCookies, None, false)
        }
        Backend::Sqlite => {
            let url = format!("sqlite://{}", dir.path().join("shared.sqlite3").display());
            env.push(("DATABASE_URL", url.clone()));
            (EngineKind::Db, Some(url), false)
        }
        Backend::Postgres | Backend::Mysql => {
            let (service, var, default, port) = if backend == Backend::Postgres {
                (
                    "PostgreSQL",
                    "SESSIO_TEST_POSTGRES_URL",
                    "postgres://postgres@127.0.0.1:5432/test",
                    5432,
                )
            } else {
                (
                    "MySQL",
                    "SESSIO_TEST_MYSQL_URL",
                    "mysql://root@127.0.0.1:3306/test",
                    3306,
                )
            };
            let server = common::service_url(var, default);
            if let Err(e) = reachable(&server, port) {
                return common::skip(service, &server, e);
            }
            // A fresh database per test, made (and dropped) by the Django side.
            let url = with_database(&server, &unique_database(version));
            env.push(("DATABASE_URL", url.clone()));
            env.push(("SESSIO_DJANGO_CREATE_DB", "1".into()));
            env.push(("SESSIO_DJANGO_ADMIN_DB", database_of(&server)));
            (EngineKind::Db, Some(url), true)
        }
    };
    env.push((
        "SESSION_ENGINE",
        match engine {
            EngineKind::SignedCookies => "django.contrib.sessions.backends.signed_cookies",
            _ => "django.contrib.sessions.backends.db",
        }
        .into(),
    ));
    // Django first: its `migrate` creates django_session (and auth's tables); sessio then
    // opens the database Django made, and its own migration must leave that table alone.
    let django = Django::start(&python, &env, owns_database);
    let open = |secret: &'static str, fallbacks: &[&'static str]| {
        let clock = ManualClock::at_unix(T);
        let mut builder = Config::builder()
            .secret_key(secret)
            .fallback_keys(fallbacks.to_vec())
            .clock(clock.clone())
            .engine(engine)
            // Rows are compared with Django's to the microsecond: no expiry slack.
            .expiry_slack(std::time::Duration::ZERO)
            .auto_migrate(true);
        if let Some(url) = &database_url {
            builder = builder.database_url(url.clone());
        }
        let config = builder.build().expect("valid config");
        async move {
            let sessions = SessionManager::open(config)
                .await
                .unwrap_or_else(|e| panic!("sessio cannot open the database: {e}"));
            Sessio { sessions, clock }
        }
    };
    let sessio = open(SECRET, &[OLD_SECRET]).await;
    let old = open(OLD_SECRET, &[]).await;
    let sqlite_path = (backend == Backend::Sqlite).then(|| dir.path().join("shared.sqlite3"));
    Some(Ctx {
        sessio,
        old,
        django,
        backend,
        sqlite_path,
        _dir: dir,
    })
}

async fn run(version: &str, backend: Backend) {
    let Some(mut ctx) = setup(version, backend).await else {
        return;
    };
    let label = format!("Django {} / {backend:?}", ctx.django.version);
    let mut failures = Vec::new();
    macro_rules! scenario {
        ($name:literal, $f:ident) => {
            if let Err(p) = AssertUnwindSafe($f(&mut ctx)).catch_unwind().await {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failures.push(format!("({}) {}", $name, msg));
            }
        };
    }
    scenario!("a: Django writes, sessio reads", django_writes_sessio_reads);
    scenario!("b: sessio writes, Django reads", sessio_writes_django_reads);
    scenario!("c: logins cross over", logins_cross_over);
    scenario!("d: logouts cross over", logouts_cross_over);
    scenario!("e: same bytes for the same data and time", same_bytes);
    scenario!("f: same change to a Django-made session", same_change);
    scenario!("g: odd and stale cookies", odd_cookies);
    scenario!("h: secret key rotation", key_rotation);
    scenario!("i: logins over an existing login", relogin);
    scenario!("j: known differences", known_differences);
    // Drop the database (and end Django) before reporting.
    drop(ctx);
    assert!(
        failures.is_empty(),
        "{label}: {} scenario(s) failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    eprintln!("{label}: all scenarios passed");
}

// ---------------------------------------------------------------------------------------
// Data and scenarios.

/// Small (stored uncompressed), with what Python's JSON writes in its own way: non-ASCII,
/// an astral character, floats in exponent form, an integer beyond 64 bits.
fn plain_data() -> Value {
    sessio::value::from_str(
        r#"{"user_id": 42, "cart": [1, 2], "name": "Zo\u00eb \ud83d\ude00 <&>/\\\"",
            "price": 0.1, "huge": 1e16, "tiny": 1e-07, "big": 100000000000000000000,
            "flags": {"a": true, "b": false, "c": null}, "empty": {}, "none": []}"#,
    )
    .unwrap()
}

/// Numbers and strings at the edges of Python's JSON: float `repr` (shortest round-trip
/// digits, `e+XX` exponents, `-0.0`), unbounded integers, control characters and
/// non-ASCII keys.
fn number_data() -> Value {
    sessio::value::from_str(
        r#"{"floats": [0.1, -0.0, 1.5e300, 5e-324, 123456789.123456789, 1e22, 1.0, 100.0,
                       1e-5, 0.0001, 1E5, 2.50, 0.30000000000000004, 1e2, 1e15, 1e16],
            "ints": [18446744073709551616, -9223372036854775809, 0, -1],
            "text": "\u0000\u001f\u007f\t\n\r\b\f \u2028 caf\u00e9 \ud83d\ude00",
            "cl\u00e9": "\u00fc"}"#,
    )
    .unwrap()
}

/// Large and repetitive: stored zlib-compressed (the `.` prefix).
fn compressible_data() -> Value {
    let items: Vec<Value> = (0..40)
        .map(|i| json!({"sku": format!("SKU-{i:04}"), "qty": i % 3 + 1, "gift": false}))
        .collect();
    json!({"cart": items, "currency": "EUR"})
}

/// (a) Django sets the session; sessio reads it from Django's cookie.
async fn django_writes_sessio_reads(ctx: &mut Ctx) {
    for data in [plain_data(), number_data(), compressible_data()] {
        let d = ctx
            .django
            .request("POST", "/set", None, json!({ "data": data }), T);
        assert_eq!(d.status, 200);
        let cookie = d.cookie().expect("Django set a cookie");
        if !ctx.db() && data.get("currency").is_some() {
            assert!(cookie.starts_with('.'), "compressed: {cookie}");
        }

        let s = ctx
            .sessio
            .request("GET", "/show", Some(&cookie), json!({}), T)
            .await;
        assert_eq!(s.status, 200, "sessio read {s:?}");
        assert_same_data(s.data(), &data, "sessio's view of Django's session");
        if ctx.db() {
            assert_eq!(s.body["key"], json!(cookie), "sessio found the row");
        }
        // A read-only request: Django and sessio answer with the same headers.
        let d2 = ctx
            .django
            .request("GET", "/show", Some(&cookie), json!({}), T);
        assert_same_data(d2.data(), &data, "Django reads its own session");
        assert_eq!(
            s.set_cookie, d2.set_cookie,
            "Set-Cookie of a read-only request"
        );
        assert_eq!(s.vary, d2.vary, "Vary of a read-only request");
    }

    // Django's set_expiry(datetime) is an ISO string in the data; sessio understands it.
    let at = "2023-11-20T10:00:00+00:00";
    let d = ctx.django.request(
        "POST",
        "/set",
        None,
        json!({"data": {"n": 1}, "expiry": at}),
        T,
    );
    let cookie = d.cookie().unwrap();
    assert_eq!(d.data()["_session_expiry"], json!(at));
    let s = ctx
        .sessio
        .request("GET", "/show", Some(&cookie), json!({}), T)
        .await;
    assert_eq!(s.data()["_session_expiry"], json!(at));
    assert_eq!(s.data()["n"], json!(1));
}

/// (b) sessio sets the session; Django reads it from sessio's cookie, and they take turns.
async fn sessio_writes_django_reads(ctx: &mut Ctx) {
    for data in [plain_data(), number_data(), compressible_data()] {
        let s = ctx
            .sessio
            .request("POST", "/set", None, json!({ "data": data }), T)
            .await;
        assert_eq!(s.status, 200, "{s:?}");
        let c1 = s.cookie().expect("sessio set a cookie");

        let d = ctx.django.request("GET", "/show", Some(&c1), json!({}), T);
        assert_same_data(d.data(), &data, "Django's view of sessio's session");
        if ctx.db() {
            assert_eq!(d.body["key"], json!(c1), "Django found the row");
        }
        assert!(d.set_cookie.is_empty(), "Django rewrote nothing: {d:?}");

        // Django adds a key, sessio adds one, Django reads both.
        let d = ctx.django.request(
            "POST",
            "/set",
            Some(&c1),
            json!({"data": {"step": 2}}),
            T + 10,
        );
        let c2 = d.next_cookie(Some(&c1)).unwrap();
        if ctx.db() {
            assert_eq!(c2, c1, "the db key stays");
        }
        let s = ctx
            .sessio
            .request(
                "POST",
                "/set",
                Some(&c2),
                json!({"data": {"step": 3}}),
                T + 20,
            )
            .await;
        assert_eq!(s.status, 200, "{s:?}");
        let c3 = s.next_cookie(Some(&c2)).unwrap();
        let d = ctx
            .django
            .request("GET", "/show", Some(&c3), json!({}), T + 30);
        assert_same_data(
            d.data(),
            &merged(&data, &json!({"step": 3})),
            "after taking turns",
        );
    }

    // set_expiry(300) in sessio: Django sees the same `_session_expiry`, and for db the
    // row's expire_date is now + 300 s as Django would have written it.
    let s = ctx
        .sessio
        .request(
            "POST",
            "/set",
            None,
            json!({"data": {"n": 1}, "expiry": 300}),
            T,
        )
        .await;
    let c = s.cookie().unwrap();
    let d = ctx.django.request("GET", "/show", Some(&c), json!({}), T);
    assert_eq!(d.data(), &json!({"n": 1, "_session_expiry": 300}));
    if ctx.db() {
        let (_, expire) = ctx.django.session_row(&c).expect("row");
        assert_eq!(
            expire, "2023-11-14T22:18:20+00:00",
            "expire_date of set_expiry(300)"
        );
        // After the expiry, Django no longer sees it.
        let d = ctx
            .django
            .request("GET", "/show", Some(&c), json!({}), T + 301);
        assert_eq!(d.data(), &json!({}), "Django drops the expired row");
    }
}

/// (c) A Django login is seen by sessio, and a sessio login is accepted by Django.
async fn logins_cross_over(ctx: &mut Ctx) {
    // Django logs alice in; sessio sees and verifies her.
    let d = ctx
        .django
        .request("POST", "/login", None, json!({"username": "alice"}), T);
    assert_eq!(d.status, 200);
    let cookie = d.cookie().expect("Django's login sets a cookie");
    let id = d.body["user_id"].as_str().unwrap().to_owned();
    let hash = d.body["password_hash"].as_str().unwrap().to_owned();
    assert_eq!(
        d.data()["_auth_user_hash"],
        json!(auth::session_auth_hash(SECRET.as_bytes(), &hash)),
        "Django's session auth hash is sessio's"
    );
    let s = ctx
        .sessio
        .request(
            "POST",
            "/whoami",
            Some(&cookie),
            json!({"user_id": id, "password_hash": hash}),
            T,
        )
        .await;
    assert_eq!(
        s.body["user"],
        json!({"id": id, "backend": auth::MODEL_BACKEND}),
        "{s:?}"
    );
    assert_eq!(s.body["verified"], true, "sessio verifies Django's login");
    assert!(s.set_cookie.is_empty(), "verifying rewrites nothing: {s:?}");

    // sessio logs bob in (a user in Django's auth_user); Django's request.user is bob.
    let (bob, bob_hash) = ctx.django.user("bob");
    let s = ctx
        .sessio
        .request(
            "POST",
            "/login",
            None,
            json!({"user_id": bob, "password_hash": bob_hash}),
            T,
        )
        .await;
    assert_eq!(s.status, 200, "{s:?}");
    let cookie = s.cookie().expect("sessio's login sets a cookie");
    let d = ctx
        .django
        .request("POST", "/whoami", Some(&cookie), json!({}), T);
    assert_eq!(
        d.body["user"],
        json!("bob"),
        "Django accepts sessio's login: {d:?}"
    );
    assert!(d.set_cookie.is_empty(), "Django kept the session: {d:?}");

    // Logging in over an anonymous session keeps its data under a new key, both ways.
    let d = ctx
        .django
        .request("POST", "/set", None, json!({"data": {"cart": [7]}}), T);
    let anon = d.cookie().unwrap();
    let s = ctx
        .sessio
        .request(
            "POST",
            "/login",
            Some(&anon),
            json!({"user_id": bob, "password_hash": bob_hash}),
            T,
        )
        .await;
    let logged = s.cookie().expect("a new cookie");
    if ctx.db() {
        assert_ne!(logged, anon, "sessio cycled the key");
        assert!(
            ctx.django.session_row(&anon).is_none(),
            "the old row is gone"
        );
    }
    let d = ctx
        .django
        .request("POST", "/whoami", Some(&logged), json!({}), T);
    assert_eq!(d.body["user"], json!("bob"));
    assert_eq!(
        d.data()["cart"],
        json!([7]),
        "data kept across sessio's login"
    );

    let s = ctx
        .sessio
        .request("POST", "/set", None, json!({"data": {"cart": [8]}}), T)
        .await;
    let anon = s.cookie().unwrap();
    let d = ctx.django.request(
        "POST",
        "/login",
        Some(&anon),
        json!({"username": "alice"}),
        T,
    );
    let logged = d.cookie().expect("a new cookie");
    if ctx.db() {
        assert_ne!(logged, anon, "Django cycled the key");
        let old = ctx
            .sessio
            .request("GET", "/show", Some(&anon), json!({}), T)
            .await;
        assert_eq!(old.data(), &json!({}), "sessio no longer finds the old key");
        assert!(old.deleted(), "and deletes the cookie: {old:?}");
    }
    let s = ctx
        .sessio
        .request(
            "POST",
            "/whoami",
            Some(&logged),
            json!({"user_id": id, "password_hash": hash}),
            T,
        )
        .await;
    assert_eq!(s.body["verified"], true, "{s:?}");
    assert_eq!(
        s.data()["cart"],
        json!([8]),
        "data kept across Django's login"
    );
}

/// (d) A logout on one side is honoured on the other.
async fn logouts_cross_over(ctx: &mut Ctx) {
    let (alice, alice_hash) = ctx.django.user("alice");
    let alice_body = json!({"user_id": alice, "password_hash": alice_hash});

    // Django logs in and out; sessio sees nobody.
    let d = ctx
        .django
        .request("POST", "/login", None, json!({"username": "alice"}), T);
    let cookie = d.cookie().unwrap();
    let s = ctx
        .sessio
        .request("POST", "/whoami", Some(&cookie), alice_body.clone(), T)
        .await;
    assert_eq!(s.body["verified"], true);
    let django_logout = ctx
        .django
        .request("POST", "/logout", Some(&cookie), json!({}), T);
    assert!(django_logout.deleted(), "{django_logout:?}");
    let browser = django_logout.next_cookie(Some(&cookie));
    assert_eq!(browser, None);
    let s = ctx
        .sessio
        .request("POST", "/whoami", browser.as_deref(), alice_body.clone(), T)
        .await;
    assert_eq!(
        s.body["user"],
        Value::Null,
        "anonymous after Django's logout"
    );
    // A copy of the old cookie: dead for db (the row is gone); with signed cookies it
    // stays valid until it expires (documented Django behaviour): both sides must agree.
    let s = ctx
        .sessio
        .request("POST", "/whoami", Some(&cookie), alice_body.clone(), T)
        .await;
    let d = ctx
        .django
        .request("POST", "/whoami", Some(&cookie), json!({}), T);
    if ctx.db() {
        assert_eq!(
            s.body["user"],
            Value::Null,
            "the row is gone for sessio: {s:?}"
        );
        assert!(s.deleted(), "sessio deletes the dead cookie: {s:?}");
        assert_eq!(d.body["user"], Value::Null);
        assert_eq!(s.set_cookie, d.set_cookie, "the same deletion header");
    } else {
        assert_eq!(
            s.body["verified"], true,
            "a replayed signed cookie is still valid"
        );
        assert_eq!(d.body["user"], json!("alice"));
    }

    // sessio logs in and out; Django sees nobody, and the deletion headers are the same.
    let s = ctx
        .sessio
        .request("POST", "/login", None, alice_body.clone(), T)
        .await;
    let cookie = s.cookie().unwrap();
    let d = ctx
        .django
        .request("POST", "/whoami", Some(&cookie), json!({}), T);
    assert_eq!(d.body["user"], json!("alice"));
    let sessio_logout = ctx
        .sessio
        .request("POST", "/logout", Some(&cookie), json!({}), T)
        .await;
    assert!(sessio_logout.deleted(), "{sessio_logout:?}");
    assert_eq!(
        sessio_logout.set_cookie, django_logout.set_cookie,
        "logout's Set-Cookie"
    );
    assert_eq!(sessio_logout.vary, django_logout.vary, "logout's Vary");
    let d = ctx
        .django
        .request("POST", "/whoami", Some(&cookie), json!({}), T);
    if ctx.db() {
        assert_eq!(d.body["user"], Value::Null, "Django: the row is gone");
        assert!(ctx.django.session_row(&cookie).is_none());
    } else {
        assert_eq!(d.body["user"], json!("alice"), "replay of a signed cookie");
    }

    // A password change (another hash) logs out on the sessio side, and for db Django then
    // finds no session either.
    let d = ctx
        .django
        .request("POST", "/login", None, json!({"username": "alice"}), T);
    let cookie = d.cookie().unwrap();
    let s = ctx
        .sessio
        .request(
            "POST",
            "/whoami",
            Some(&cookie),
            json!({"user_id": alice, "password_hash": "pbkdf2_sha256$1$changed$x="}),
            T,
        )
        .await;
    assert_eq!(s.body["verified"], false);
    assert!(s.deleted(), "sessio flushes on a hash mismatch: {s:?}");
    if ctx.db() {
        let d = ctx
            .django
            .request("POST", "/whoami", Some(&cookie), json!({}), T);
        assert_eq!(d.body["user"], Value::Null);
    }
}

/// A raw `django_session` row of the shared SQLite file: (session_data, expire_date as
/// stored, SQLite's type of it).
fn sqlite_row(path: &Path, key: &str) -> (String, String, String) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row(
        "SELECT session_data, CAST(expire_date AS TEXT), typeof(expire_date) \
         FROM django_session WHERE session_key = ?1",
        [key],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .unwrap()
}

/// (e) The same data at the same frozen time: the same Set-Cookie (up to the random db
/// key), and for db the same stored row.
async fn same_bytes(ctx: &mut Ctx) {
    let cases = [
        ("plain", json!({ "data": plain_data() }), T),
        ("compressible", json!({ "data": compressible_data() }), T),
        ("numbers", json!({ "data": number_data() }), T),
        ("an hour later", json!({"data": {"a": 1}}), T + 3600),
        (
            "set_expiry(300)",
            json!({"data": {"a": 1}, "expiry": 300}),
            T,
        ),
        ("set_expiry(0)", json!({"data": {"a": 1}, "expiry": 0}), T),
        (
            "set_expiry(datetime)",
            json!({"data": {"a": 1}, "expiry": "2023-11-15T22:13:20.123456+00:00"}),
            T,
        ),
    ];
    for (name, body, now) in cases {
        let d = ctx.django.request("POST", "/set", None, body.clone(), now);
        let s = ctx.sessio.request("POST", "/set", None, body, now).await;
        assert_eq!(s.vary, d.vary, "Vary ({name})");
        if !ctx.db() {
            assert_eq!(s.set_cookie, d.set_cookie, "Set-Cookie ({name})");
            continue;
        }
        assert_eq!(
            s.masked(),
            d.masked(),
            "Set-Cookie without the key ({name})"
        );
        let (dk, sk) = (d.cookie().unwrap(), s.cookie().unwrap());
        assert_eq!(sk.len(), 32, "a 32-character key");
        assert!(sk
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
        let d_row = ctx.django.session_row(&dk).expect("Django's row");
        let s_row = ctx.django.session_row(&sk).expect("sessio's row");
        assert_eq!(s_row, d_row, "the row as Django reads it ({name})");
        if let Some(path) = &ctx.sqlite_path {
            assert_eq!(
                sqlite_row(path, &sk),
                sqlite_row(path, &dk),
                "the raw SQLite row ({name})"
            );
        }
    }

    // Logins: the same user at the same time makes the same session.
    let (bob, bob_hash) = ctx.django.user("bob");
    let d = ctx
        .django
        .request("POST", "/login", None, json!({"username": "bob"}), T);
    let s = ctx
        .sessio
        .request(
            "POST",
            "/login",
            None,
            json!({"user_id": bob, "password_hash": bob_hash}),
            T,
        )
        .await;
    assert_eq!(s.vary, d.vary, "Vary (login)");
    if ctx.db() {
        assert_eq!(s.masked(), d.masked(), "Set-Cookie without the key (login)");
        let d_row = ctx.django.session_row(&d.cookie().unwrap()).unwrap();
        let s_row = ctx.django.session_row(&s.cookie().unwrap()).unwrap();
        assert_eq!(s_row, d_row, "the login row as Django reads it");
    } else {
        assert_eq!(s.set_cookie, d.set_cookie, "Set-Cookie (login)");
    }
}

// ---------------------------------------------------------------------------------------
// The matrix.

macro_rules! live_tests {
    ($($(#[$attr:meta])* $name:ident: $version:literal, $backend:ident;)*) => {$(
        $(#[$attr])*
        #[tokio::test]
        async fn $name() {
            run($version, Backend::$backend).await;
        }
    )*};
}

live_tests! {
    django52_signed_cookies: "5.2", SignedCookies;
    django52_db_sqlite: "5.2", Sqlite;
    #[cfg(feature = "postgres")]
    django52_db_postgres: "5.2", Postgres;
    #[cfg(feature = "mysql")]
    django52_db_mysql: "5.2", Mysql;
    django6_signed_cookies: "6", SignedCookies;
    django6_db_sqlite: "6", Sqlite;
    #[cfg(feature = "postgres")]
    django6_db_postgres: "6", Postgres;
    #[cfg(feature = "mysql")]
    django6_db_mysql: "6", Mysql;
}

/// Compares the two answers to the same request, made on equal starting points: the same
/// status, Vary and Set-Cookie (up to the random db key), and for db the same stored row.
fn assert_same_answer(ctx: &mut Ctx, name: &str, d: &Reply, s: &Reply) {
    assert_eq!(s.status, d.status, "status ({name})");
    assert_eq!(s.vary, d.vary, "Vary ({name})");
    assert_same_data(s.data(), d.data(), &format!("session data ({name})"));
    if !ctx.db() {
        assert_eq!(s.set_cookie, d.set_cookie, "Set-Cookie ({name})");
        return;
    }
    assert_eq!(
        s.masked(),
        d.masked(),
        "Set-Cookie without the key ({name})"
    );
    if let (Some(dk), Some(sk)) = (d.cookie(), s.cookie()) {
        let d_row = ctx.django.session_row(&dk).expect("Django's row");
        let s_row = ctx.django.session_row(&sk).expect("sessio's row");
        assert_eq!(s_row, d_row, "the row as Django reads it ({name})");
        if let Some(path) = &ctx.sqlite_path {
            assert_eq!(
                sqlite_row(path, &sk),
                sqlite_row(path, &dk),
                "the raw SQLite row ({name})"
            );
        }
    }
}

/// (f) Django makes a session (with each kind of `set_expiry`), then Django and sessio
/// make the same change to it a minute later: same cookie, same row.
async fn same_change(ctx: &mut Ctx) {
    let starts = [
        ("default expiry", json!({"data": {"a": 1}})),
        ("set_expiry(300)", json!({"data": {"a": 1}, "expiry": 300})),
        ("set_expiry(0)", json!({"data": {"a": 1}, "expiry": 0})),
        (
            "set_expiry(datetime with microseconds)",
            json!({"data": {"a": 1}, "expiry": "2023-11-20T10:00:00.250000+00:00"}),
        ),
        (
            "set_expiry(datetime at +02:00)",
            json!({"data": {"a": 1}, "expiry": "2023-11-20T12:00:00+02:00"}),
        ),
    ];
    let change = json!({"data": {"more": [1, "two"]}});
    for (name, start) in starts {
        let c1 = ctx
            .django
            .request("POST", "/set", None, start.clone(), T)
            .cookie()
            .unwrap();
        // db: a second row with the same content; signed: the same cookie serves twice.
        let c2 = if ctx.db() {
            ctx.django
                .request("POST", "/set", None, start, T)
                .cookie()
                .unwrap()
        } else {
            c1.clone()
        };
        let d = ctx
            .django
            .request("POST", "/set", Some(&c1), change.clone(), T + 60);
        let s = ctx
            .sessio
            .request("POST", "/set", Some(&c2), change.clone(), T + 60)
            .await;
        assert_same_answer(ctx, name, &d, &s);
    }
}

/// (g) Cookies that are not (or no longer) a valid session, read and left untouched: the
/// same answers on both sides.
async fn odd_cookies(ctx: &mut Ctx) {
    let valid = ctx
        .django
        .request("POST", "/set", None, json!({"data": {"a": 1}}), T)
        .cookie()
        .unwrap();
    let mut tampered = valid.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let age = 1_209_600;
    let cases = [
        ("garbage", "not-a-valid-session-value".to_owned(), T),
        ("shorter than 8 characters", "abc".to_owned(), T),
        (
            "an unknown 32-character key",
            "0123456789abcdefghijklmnopqrstuv".to_owned(),
            T,
        ),
        ("tampered", tampered, T),
        (
            "valid, at the last second of the cookie age",
            valid.clone(),
            T + age,
        ),
        ("expired by one second", valid.clone(), T + age + 1),
    ];
    for (name, cookie, now) in cases {
        for path in ["/show", "/untouched"] {
            let d = ctx
                .django
                .request("GET", path, Some(&cookie), json!({}), now);
            let s = ctx
                .sessio
                .request("GET", path, Some(&cookie), json!({}), now)
                .await;
            let name = format!("{name}, {path}");
            assert_eq!(s.status, d.status, "status ({name})");
            assert_eq!(s.vary, d.vary, "Vary ({name})");
            assert_eq!(s.set_cookie, d.set_cookie, "Set-Cookie ({name})");
            if path == "/show" {
                assert_same_data(s.data(), d.data(), &format!("data ({name})"));
            }
        }
    }
}

/// (h) SECRET_KEY rotated to SECRET with OLD_SECRET as the fallback on both sides: data and
/// logins signed with the old key (by sessio as deployed before) are read, and logins are
/// upgraded to the new key the same way on both sides.
async fn key_rotation(ctx: &mut Ctx) {
    let (alice, hash) = ctx.django.user("alice");
    let alice_body = json!({"user_id": alice, "password_hash": hash});

    let o = ctx
        .old
        .request("POST", "/set", None, json!({"data": {"cart": [3]}}), T)
        .await;
    let c = o.cookie().unwrap();
    let d = ctx.django.request("GET", "/show", Some(&c), json!({}), T);
    let s = ctx
        .sessio
        .request("GET", "/show", Some(&c), json!({}), T)
        .await;
    assert_eq!(d.data(), &json!({"cart": [3]}), "Django reads old-key data");
    assert_eq!(s.data(), &json!({"cart": [3]}), "sessio reads old-key data");
    assert_eq!(s.vary, d.vary);
    if ctx.db() {
        assert_eq!(
            s.set_cookie, d.set_cookie,
            "reading old-key data rewrites nothing"
        );
    } else {
        // A deliberate difference: sessio re-issues a signed cookie that only a fallback
        // key verifies (Django leaves it until the session changes). The new cookie must
        // be the one Django itself signs for that data now.
        assert!(d.set_cookie.is_empty(), "Django rewrites nothing: {d:?}");
        let fresh = ctx
            .django
            .request("POST", "/set", None, json!({"data": {"cart": [3]}}), T);
        assert_eq!(s.set_cookie, fresh.set_cookie, "sessio's re-issued cookie");
    }

    // Two equal pre-rotation logins; Django upgrades one, sessio the other.
    let c1 = ctx
        .old
        .request("POST", "/login", None, alice_body.clone(), T)
        .await
        .cookie()
        .unwrap();
    let c2 = ctx
        .old
        .request("POST", "/login", None, alice_body.clone(), T)
        .await
        .cookie()
        .unwrap();
    let d = ctx
        .django
        .request("POST", "/whoami", Some(&c1), json!({}), T + 60);
    assert_eq!(
        d.body["user"],
        json!("alice"),
        "Django accepts the old-key login"
    );
    let s = ctx
        .sessio
        .request("POST", "/whoami", Some(&c2), alice_body.clone(), T + 60)
        .await;
    assert_eq!(s.body["verified"], true, "sessio accepts the old-key login");
    let new_hash = json!(auth::session_auth_hash(SECRET.as_bytes(), &hash));
    assert_eq!(
        d.data()["_auth_user_hash"],
        new_hash,
        "Django upgraded the hash"
    );
    assert_eq!(
        s.data()["_auth_user_hash"],
        new_hash,
        "sessio upgraded the hash"
    );
    assert_same_answer(ctx, "the upgrade", &d, &s);
    if ctx.db() {
        assert!(
            ctx.django.session_row(&c1).is_none(),
            "Django cycled the key"
        );
        assert!(
            ctx.django.session_row(&c2).is_none(),
            "sessio cycled the key"
        );
    }

    // Each side takes the other's upgraded session as it is.
    let (dc, sc) = (
        d.next_cookie(Some(&c1)).unwrap(),
        s.next_cookie(Some(&c2)).unwrap(),
    );
    let s = ctx
        .sessio
        .request("POST", "/whoami", Some(&dc), alice_body, T + 120)
        .await;
    assert_eq!(s.body["verified"], true);
    assert!(s.set_cookie.is_empty(), "{s:?}");
    let d = ctx
        .django
        .request("POST", "/whoami", Some(&sc), json!({}), T + 120);
    assert_eq!(d.body["user"], json!("alice"));
    assert!(d.set_cookie.is_empty(), "{d:?}");
}

/// (i) Logging in over an existing login, from equal starting points: the same user again
/// (Django keeps the key and data), and another user (Django flushes: new key, no data).
async fn relogin(ctx: &mut Ctx) {
    let (alice, alice_hash) = ctx.django.user("alice");
    let (bob, bob_hash) = ctx.django.user("bob");
    let cases = [
        (
            "alice again",
            "alice",
            json!({"user_id": alice, "password_hash": alice_hash}),
        ),
        (
            "bob over alice",
            "bob",
            json!({"user_id": bob, "password_hash": bob_hash}),
        ),
    ];
    for (name, username, sessio_body) in cases {
        let c1 = logged_in_with_cart(&mut ctx.django);
        let c2 = if ctx.db() {
            logged_in_with_cart(&mut ctx.django)
        } else {
            c1.clone()
        };
        let d = ctx.django.request(
            "POST",
            "/login",
            Some(&c1),
            json!({ "username": username }),
            T + 60,
        );
        let s = ctx
            .sessio
            .request("POST", "/login", Some(&c2), sessio_body, T + 60)
            .await;
        assert_same_answer(ctx, name, &d, &s);
        if ctx.db() {
            // The same user keeps the key; another user gets a new one.
            let same_user = username == "alice";
            assert_eq!(
                d.cookie().is_none() || d.cookie() == Some(c1.clone()),
                same_user
            );
            assert_eq!(
                s.cookie().is_none() || s.cookie() == Some(c2.clone()),
                same_user
            );
        }
    }
}

/// A Django session where alice is logged in and has a cart.
fn logged_in_with_cart(django: &mut Django) -> String {
    let c = django
        .request("POST", "/login", None, json!({"username": "alice"}), T)
        .cookie()
        .unwrap();
    django
        .request("POST", "/set", Some(&c), json!({"data": {"cart": [5]}}), T)
        .next_cookie(Some(&c))
        .unwrap()
}

/// The JSON inside a signed value that is not compressed (no leading `.`).
fn signed_payload(value: &str) -> String {
    use base64::Engine as _;
    let b64 = value.split(':').next().unwrap();
    assert!(!b64.starts_with('.'), "compressed: {value}");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(b64)
        .unwrap();
    String::from_utf8(bytes).unwrap()
}

/// (j) Where sessio is known to write other bytes than Django. Each check passes when the
/// two agree, or when they differ in exactly the known way (printed, so that it stays
/// visible); any other difference fails.
async fn known_differences(ctx: &mut Ctx) {
    // 1. The integer `-0` (from JSON text, e.g. a client's payload stored as is): Python
    //    reads it as the int 0 and writes `0`, and so does sessio's reader.
    let body = json!({"data": {"z": sessio::value::from_str("-0").unwrap()}});
    let d = ctx.django.request("POST", "/set", None, body.clone(), T);
    let s = ctx.sessio.request("POST", "/set", None, body, T).await;
    let (d_value, s_value) = if ctx.db() {
        let d_row = ctx.django.session_row(&d.cookie().unwrap()).unwrap();
        let s_row = ctx.django.session_row(&s.cookie().unwrap()).unwrap();
        (d_row.0, s_row.0)
    } else {
        (d.cookie().unwrap(), s.cookie().unwrap())
    };
    assert_eq!(signed_payload(&d_value), r#"{"z":0}"#);
    assert_eq!(signed_payload(&s_value), r#"{"z":0}"#);

    // 2. A float `_session_expiry` (Django's set_expiry(300.5)): on the next save Django
    //    stores expire_date = now + 300.5 s; sessio drops the fraction. The cookie's
    //    Max-Age and expires agree (both whole seconds).
    let start = json!({"data": {"a": 1}, "expiry": 300.5});
    let c1 = ctx
        .django
        .request("POST", "/set", None, start.clone(), T)
        .cookie()
        .unwrap();
    let c2 = if ctx.db() {
        ctx.django
            .request("POST", "/set", None, start, T)
            .cookie()
            .unwrap()
    } else {
        c1.clone()
    };
    let change = json!({"data": {"b": 2}});
    let d = ctx
        .django
        .request("POST", "/set", Some(&c1), change.clone(), T + 60);
    let s = ctx
        .sessio
        .request("POST", "/set", Some(&c2), change, T + 60)
        .await;
    assert_eq!(s.masked(), d.masked(), "Set-Cookie (set_expiry(300.5))");
    if ctx.db() {
        let dk = d.next_cookie(Some(&c1)).unwrap();
        let sk = s.next_cookie(Some(&c2)).unwrap();
        let d_row = ctx.django.session_row(&dk).unwrap();
        let s_row = ctx.django.session_row(&sk).unwrap();
        assert_eq!(s_row.0, d_row.0, "session_data (set_expiry(300.5))");
        assert_eq!(d_row.1, "2023-11-14T22:19:20.500000+00:00");
        if s_row.1 != d_row.1 {
            assert_eq!(
                s_row.1, "2023-11-14T22:19:20+00:00",
                "an unknown difference"
            );
            eprintln!(
                "KNOWN DIFFERENCE ({:?}): after set_expiry(300.5), expire_date is {} in sessio, {} in Django",
                ctx.backend, s_row.1, d_row.1
            );
        }
    }
}
