//! The test servers, reached with their command-line clients (`psql`, `mariadb`) so the
//! tests need no database driver of their own: scratch schemas and databases, one per
//! test, dropped when the test ends.

#![allow(dead_code)]

use std::net::{TcpStream, ToSocketAddrs};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Whether unreachable services fail the tests instead of skipping them (CI sets it).
pub fn required() -> bool {
    std::env::var("SESSIO_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// Reports an unreachable service: a visible skip, or a failure under
/// `SESSIO_REQUIRE_SERVICES=1`. Returns `None` for the caller to return.
pub fn skip<T>(service: &str, url: &str, why: &str) -> Option<T> {
    let url = redact(url);
    // Clients explain over several lines; a skip is one.
    let why = why.split_whitespace().collect::<Vec<_>>().join(" ");
    if required() {
        panic!("{service} at {url} is unreachable and SESSIO_REQUIRE_SERVICES=1: {why}");
    }
    eprintln!(
        "SKIPPED: {service} at {url} is unreachable ({why}); set SESSIO_REQUIRE_SERVICES=1 to fail instead"
    );
    None
}

fn redact(url: &str) -> String {
    sessio::redact_url(url)
}

fn service_url(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_owned())
}

pub fn postgres_url() -> String {
    service_url(
        "SESSIO_TEST_POSTGRES_URL",
        "postgres://postgres@127.0.0.1:5432/test",
    )
}

pub fn mysql_url() -> String {
    service_url("SESSIO_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")
}

pub fn redis_url() -> String {
    service_url("SESSIO_TEST_REDIS_URL", "redis://127.0.0.1:6379")
}

/// The parts of `scheme://[user[:password]@]host[:port][/path][?query]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlParts {
    pub user: Option<String>,
    pub password: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    pub path: String,
}

pub fn parse_url(url: &str) -> UrlParts {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i + 1..].to_owned()),
        None => (rest, String::new()),
    };
    let (userinfo, hostport) = match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    };
    let (user, password) = match userinfo {
        Some(info) => match info.split_once(':') {
            Some((u, p)) => (Some(u.to_owned()), Some(p.to_owned())),
            None => (Some(info.to_owned()), None),
        },
        None => (None, None),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) if p.parse::<u16>().is_ok() => (h.to_owned(), p.parse().ok()),
        _ => (hostport.to_owned(), None),
    };
    UrlParts {
        user,
        password,
        host,
        port,
        path,
    }
}

/// `url` with its path (the database) replaced by `/database`, query kept.
fn with_database(url: &str, database: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let query_at = rest.find(['?', '#']).unwrap_or(rest.len());
    let (before_query, query) = rest.split_at(query_at);
    let authority = before_query.split('/').next().unwrap_or_default();
    format!("{scheme}://{authority}/{database}{query}")
}

/// `url` with one more `name=value` query parameter.
pub fn with_query(url: &str, pair: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{pair}")
}

/// A fresh scratch name, `sessio_t_<unix time>_<unique>`: the library's server tests drop
/// leftovers of this shape after an hour, should a killed run leave one behind.
fn scratch_name() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    format!(
        "sessio_t_{}_cli{}x{}x{}",
        now.as_secs(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst),
        now.subsec_nanos()
    )
}

/// Runs `program` and returns its stdout, or why it failed (not installed, refused...).
fn run(mut cmd: Command) -> Result<String, String> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Runs SQL on PostgreSQL with `psql`.
pub fn psql(url: &str, sql: &str) -> Result<String, String> {
    let mut cmd = Command::new("psql");
    cmd.arg(url)
        .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .env("PGCONNECT_TIMEOUT", "5");
    run(cmd)
}

/// Runs SQL on MySQL/MariaDB with the `mariadb` client (the password, if any, through
/// `MYSQL_PWD`, never on the command line).
pub fn mariadb(url: &str, sql: &str) -> Result<String, String> {
    let parts = parse_url(url);
    let mut cmd = Command::new("mariadb");
    cmd.args(["--protocol=TCP", "--connect-timeout=5", "-N", "-B"])
        .args(["-h", &parts.host])
        .args(["-P", &parts.port.unwrap_or(3306).to_string()]);
    if let Some(user) = &parts.user {
        cmd.args(["-u", user]);
    }
    if let Some(password) = &parts.password {
        cmd.env("MYSQL_PWD", password);
    }
    if !parts.path.is_empty() {
        cmd.args(["-D", &parts.path]);
    }
    cmd.args(["-e", sql]);
    run(cmd)
}

/// A PostgreSQL schema of its own; `url` points the search path at it.
#[derive(Debug)]
pub struct PgSchema {
    pub admin_url: String,
    pub schema: String,
    pub url: String,
}

impl PgSchema {
    /// Creates the schema, or returns `None` after [`skip`] when the server is unreachable.
    pub fn create() -> Option<Self> {
        let admin_url = postgres_url();
        if let Err(why) = psql(&admin_url, "SELECT 1") {
            return skip("PostgreSQL", &admin_url, &why);
        }
        let schema = scratch_name();
        psql(&admin_url, &format!("CREATE SCHEMA {schema}")).expect("create a scratch schema");
        let url = with_query(&admin_url, &format!("options[search_path]={schema}"));
        Some(Self {
            admin_url,
            schema,
            url,
        })
    }

    /// Runs SQL with the search path on the scratch schema.
    pub fn sql(&self, sql: &str) -> Result<String, String> {
        psql(
            &self.admin_url,
            &format!("SET search_path TO {}; {sql}", self.schema),
        )
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let _ = psql(
            &self.admin_url,
            &format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema),
        );
    }
}

/// A MySQL/MariaDB database of its own; `url` names it.
#[derive(Debug)]
pub struct MySqlDatabase {
    pub admin_url: String,
    pub database: String,
    pub url: String,
}

impl MySqlDatabase {
    /// Creates the database, or returns `None` after [`skip`] when the server is
    /// unreachable.
    pub fn create() -> Option<Self> {
        let admin_url = mysql_url();
        if let Err(why) = mariadb(&admin_url, "SELECT 1") {
            return skip("MySQL", &admin_url, &why);
        }
        let database = scratch_name();
        mariadb(&admin_url, &format!("CREATE DATABASE {database}"))
            .expect("create a scratch database");
        let url = with_database(&admin_url, &database);
        Some(Self {
            admin_url,
            database,
            url,
        })
    }

    /// Runs SQL in the scratch database.
    pub fn sql(&self, sql: &str) -> Result<String, String> {
        mariadb(&self.url, sql)
    }
}

impl Drop for MySqlDatabase {
    fn drop(&mut self) {
        let _ = mariadb(
            &self.admin_url,
            &format!("DROP DATABASE IF EXISTS {}", self.database),
        );
    }
}

/// The Redis URL when a server answers there, else `None` after [`skip`].
pub fn redis() -> Option<String> {
    let url = redis_url();
    let parts = parse_url(&url);
    let port = parts.port.unwrap_or(6379);
    let reachable = (parts.host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| e.to_string())
        .and_then(|mut addrs| {
            let addr = addrs.next().ok_or("no address")?;
            TcpStream::connect_timeout(&addr, Duration::from_secs(3)).map_err(|e| e.to_string())
        });
    match reachable {
        Ok(_) => Some(url),
        Err(why) => skip("Redis", &url, &why),
    }
}

#[test]
fn urls_are_taken_apart() {
    let p = parse_url("mysql://root:pw@127.0.0.1:3306/test?x=1");
    assert_eq!(p.user.as_deref(), Some("root"));
    assert_eq!(p.password.as_deref(), Some("pw"));
    assert_eq!((p.host.as_str(), p.port), ("127.0.0.1", Some(3306)));
    assert_eq!(p.path, "test");
    assert_eq!(
        with_database("mysql://root@h:3306/test?ssl=0", "scratch"),
        "mysql://root@h:3306/scratch?ssl=0"
    );
    assert_eq!(with_database("mysql://root@h", "s"), "mysql://root@h/s");
}
