//! Crash safety: the real `sessio-demo` binary under load, killed with SIGKILL at a random
//! moment and restarted on the same store, must still hold every write it acknowledged.
//!
//! Concurrent clients log in, add to carts and re-login (which cycles the session id),
//! each over its own plain HTTP/1.1 connection. A write counts only when its whole response
//! arrived: the demo answers after the session middleware saved, so a response means the
//! store said the write was done. Writes whose response never arrived may or may not be
//! there after the restart; they bound the cart from above. After each restart every
//! tracked session is read back with `GET /api/session`: its cart must hold at least the
//! acknowledged items and at most those plus the unanswered attempts, and ids retired by
//! an acknowledged re-login must stay dead.
//!
//! For the file engine the directory is also inspected right after each kill: every
//! session file must be a whole signed value (the engine writes a temp file and renames
//! it), and leftover temp files (`<name>_out_*`) must not be readable as sessions.
//!
//! The PostgreSQL test uses `SESSIO_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`) with a schema of its own, and skips with a
//! `SKIPPED:` line when the server is unreachable (fails under
//! `SESSIO_REQUIRE_SERVICES=1`). Each test prints its figures on stderr (`--nocapture`).

// The CLI's tests reach the same servers the same way: one copy of the helpers.
#[path = "../../sessio-cli/tests/servers/mod.rs"]
mod servers;

use std::collections::hash_map::RandomState;
use std::collections::BTreeMap;
use std::hash::BuildHasher as _;
use std::io::BufRead as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

const SECRET: &str = "crash-tests-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz-!";
const COOKIE_NAME: &str = "sessionid";
const USERS: &[&str] = &["alice", "bob", "carol"];
const PRODUCTS: &[&str] = &["tea", "mug", "notebook", "stickers"];
const CLIENTS: usize = 16;
const ROUNDS: usize = 3;
/// A session is set aside (and a fresh one started) after this many items, well below the
/// demo's 99-per-product limit.
const ITEMS_PER_SESSION: u64 = 40;
/// Acknowledged requests to wait for before the random kill moment, so every round has
/// something to check however slow the machine is.
const MIN_ACKS_BEFORE_KILL: u64 = 20;
/// Generous bounds: only a hung server or client reaches them.
const IO_TIMEOUT: Duration = Duration::from_secs(20);
const START_TIMEOUT: Duration = Duration::from_secs(60);

// --- the server ---------------------------------------------------------------------------

/// A `sessio-demo` process; killed (SIGKILL) on drop too, so a failing test leaves none.
struct Server {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Server {
    /// Starts the demo on a free loopback port with the store of `store_args`, and waits
    /// for the address it prints.
    fn start(dir: &Path, store_args: &[String], run: usize) -> Server {
        let log = dir.join(format!("server-{run}.log"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sessio-demo"));
        for (name, _) in std::env::vars() {
            if name.starts_with("SESSIO_") {
                cmd.env_remove(name);
            }
        }
        let mut child = cmd
            .current_dir(dir)
            .args(["--addr", "127.0.0.1:0", "--data-dir"])
            .arg(dir.join("data"))
            .args(store_args)
            .env("SESSIO_SECRET_KEY", SECRET)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        // Keeps reading after the banner: a closed pipe would fail the demo's next line.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.contains("serving on http://") {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(line);
                    }
                }
            }
        });
        let mut server = Server {
            child,
            addr: "127.0.0.1:1".parse().unwrap(),
            log,
        };
        let banner = match rx.recv_timeout(START_TIMEOUT) {
            Ok(line) => line,
            Err(_) => {
                let _ = server.child.kill();
                let _ = server.child.wait();
                panic!("sessio-demo did not start:\n{}", server.log_text());
            }
        };
        server.addr = banner
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("no address in {banner:?}"));
        server
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `kill -9`: no graceful shutdown, no flushing, no destructors.
    fn kill_9(&mut self) {
        self.child.kill().unwrap();
        let status = self.child.wait().unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt as _;
            // Not an earlier exit of its own: that would mean the kill tested nothing.
            assert_eq!(
                status.signal(),
                Some(9),
                "the demo exited by itself ({status}):\n{}",
                self.log_text()
            );
        }
        #[cfg(not(unix))]
        let _ = status;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// --- a minimal HTTP/1.1 client ------------------------------------------------------------

/// What became of one request.
#[derive(Debug)]
enum Outcome {
    /// No connection: the server cannot have seen the request.
    NotSent,
    /// Sent, but no whole response came back: the write may or may not have happened.
    Unknown,
    /// A whole response.
    Done(Response),
}

#[derive(Debug)]
struct Response {
    status: u16,
    /// The value of the session cookie it set, if it set a non-empty one.
    session_cookie: Option<String>,
    body: String,
}

/// One request on a fresh connection with `Connection: close`.
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    form: Option<&str>,
) -> Outcome {
    let mut stream = match tokio::time::timeout(IO_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => stream,
        _ => return Outcome::NotSent,
    };
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(cookie) = cookie {
        request.push_str(&format!("Cookie: {COOKIE_NAME}={cookie}\r\n"));
    }
    match form {
        Some(body) => request.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )),
        None => request.push_str("\r\n"),
    }
    let mut received = Vec::new();
    let exchange = async {
        stream.write_all(request.as_bytes()).await?;
        let mut chunk = [0u8; 4096];
        loop {
            match stream.read(&mut chunk).await? {
                0 => return Ok::<_, std::io::Error>(()),
                n => received.extend_from_slice(&chunk[..n]),
            }
        }
    };
    // A reset after the whole response still leaves a whole response: judge the bytes.
    let _ = tokio::time::timeout(IO_TIMEOUT, exchange).await;
    match parse_response(&received) {
        Some(response) => Outcome::Done(response),
        None => Outcome::Unknown,
    }
}

/// A response whose head and `Content-Length` body arrived whole; `None` for a truncated
/// one (a killed server closes its connections mid-response).
fn parse_response(bytes: &[u8]) -> Option<Response> {
    let head_end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&bytes[..head_end]).ok()?;
    let body = &bytes[head_end + 4..];
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let mut length = None;
    let mut session_cookie = None;
    for line in lines {
        let (name, value) = line.split_once(':')?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = value.parse::<usize>().ok();
        } else if name.eq_ignore_ascii_case("set-cookie") {
            let pair = value.split(';').next().unwrap_or_default();
            if let Some(v) = pair.strip_prefix(&format!("{COOKIE_NAME}=")) {
                session_cookie = Some(v.trim_matches('"').to_owned()).filter(|v| !v.is_empty());
            }
        }
    }
    // Without a length a truncated body looks whole: the demo always sends one.
    if body.len() != length? {
        return None;
    }
    Some(Response {
        status,
        session_cookie,
        body: String::from_utf8_lossy(body).into_owned(),
    })
}

// --- the clients --------------------------------------------------------------------------

/// xorshift64*: enough randomness for choosing actions and kill moments, no dependency.
struct Rng(u64);

impl Rng {
    fn new(salt: u64) -> Rng {
        Rng(RandomState::new().hash_one(salt) | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// A session as the clients know it.
#[derive(Debug, Clone)]
struct Tracked {
    user: &'static str,
    cookie: String,
    /// Items whose addition was acknowledged: the floor of what the store must hold.
    acked: BTreeMap<String, u64>,
    /// Additions sent without an acknowledgement: they may or may not have happened.
    unsure: BTreeMap<String, u64>,
}

impl Tracked {
    fn items(&self) -> u64 {
        self.acked.values().sum()
    }
}

#[derive(Default)]
struct Counters {
    acked: AtomicU64,
    unknown: AtomicU64,
    unexpected: AtomicU64,
}

/// One simulated visitor, owned by its task during a round and handed back after.
struct Client {
    rng: Rng,
    user: &'static str,
    current: Option<Tracked>,
    finished: Vec<Tracked>,
    /// Ids an acknowledged re-login replaced: the store must not serve them again.
    retired: Vec<String>,
    /// Sessions given up on because a re-login went unanswered: it may have moved the
    /// session to an id the client never learned, so nothing can be checked about it.
    indeterminate: u64,
    /// The first few unexpected responses, for the failure message.
    surprises: Vec<String>,
}

impl Client {
    fn new(index: usize) -> Client {
        Client {
            rng: Rng::new(index as u64),
            user: USERS[index % USERS.len()],
            current: None,
            finished: Vec::new(),
            retired: Vec::new(),
            indeterminate: 0,
            surprises: Vec::new(),
        }
    }

    fn login_form(&self) -> String {
        format!("username={0}&password={0}", self.user)
    }

    fn surprise(&mut self, counters: &Counters, what: &str, response: &Response) {
        counters.unexpected.fetch_add(1, Ordering::Relaxed);
        if self.surprises.len() < 5 {
            let body: String = response.body.chars().take(200).collect();
            self.surprises
                .push(format!("{what}: {} {body}", response.status));
        }
    }

    /// One action; `false` when the server could not be reached.
    async fn step(&mut self, addr: SocketAddr, counters: &Counters) -> bool {
        let ack = || counters.acked.fetch_add(1, Ordering::Relaxed);
        let unknown = || counters.unknown.fetch_add(1, Ordering::Relaxed);
        let Some(mut session) = self.current.take() else {
            // A fresh login: until it is acknowledged there is no session to track.
            let form = self.login_form();
            match http(addr, "POST", "/login", None, Some(&form)).await {
                Outcome::NotSent => return false,
                Outcome::Unknown => {
                    unknown();
                }
                Outcome::Done(r) => match (r.status, &r.session_cookie) {
                    (303, Some(cookie)) => {
                        ack();
                        self.current = Some(Tracked {
                            user: self.user,
                            cookie: cookie.clone(),
                            acked: BTreeMap::new(),
                            unsure: BTreeMap::new(),
                        });
                    }
                    _ => self.surprise(counters, "login", &r),
                },
            }
            return true;
        };
        if session.items() >= ITEMS_PER_SESSION || self.rng.below(40) == 0 {
            // Set it aside: it is still checked after every later kill.
            self.finished.push(session);
            return true;
        }
        if self.rng.below(15) == 0 {
            // Re-login as the same user: same data under a new id, the old id deleted.
            let form = self.login_form();
            match http(addr, "POST", "/login", Some(&session.cookie), Some(&form)).await {
                Outcome::NotSent => {
                    self.current = Some(session);
                    return false;
                }
                Outcome::Unknown => {
                    unknown();
                    self.indeterminate += 1;
                }
                Outcome::Done(r) => match (r.status, &r.session_cookie) {
                    (303, Some(cookie)) if *cookie != session.cookie => {
                        ack();
                        let old = std::mem::replace(&mut session.cookie, cookie.clone());
                        self.retired.push(old);
                        self.current = Some(session);
                    }
                    _ => {
                        self.surprise(counters, "re-login", &r);
                        self.indeterminate += 1;
                    }
                },
            }
            return true;
        }
        let product = PRODUCTS[self.rng.below(PRODUCTS.len() as u64) as usize];
        let form = format!("product={product}");
        let outcome = http(
            addr,
            "POST",
            "/cart/add",
            Some(&session.cookie),
            Some(&form),
        )
        .await;
        let reached = !matches!(outcome, Outcome::NotSent);
        match outcome {
            Outcome::NotSent => {}
            Outcome::Unknown => {
                unknown();
                *session.unsure.entry(product.to_owned()).or_default() += 1;
            }
            Outcome::Done(r) if r.status == 303 => {
                ack();
                *session.acked.entry(product.to_owned()).or_default() += 1;
            }
            Outcome::Done(r) => {
                // An error page may come after a half-done store call: not a floor, a maybe.
                self.surprise(counters, "cart/add", &r);
                *session.unsure.entry(product.to_owned()).or_default() += 1;
            }
        }
        self.current = Some(session);
        reached
    }

    fn sessions_mut(&mut self) -> impl Iterator<Item = &mut Tracked> {
        self.finished.iter_mut().chain(self.current.as_mut())
    }
}

/// Runs `client` against `addr` until `stop`.
async fn drive(
    mut client: Client,
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
) -> Client {
    while !stop.load(Ordering::Relaxed) {
        if !client.step(addr, &counters).await {
            // The server is gone; the round is ending.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    client
}

// --- checks -------------------------------------------------------------------------------

/// The session data the restarted server serves for `cookie`.
async fn read_session(
    addr: SocketAddr,
    cookie: String,
) -> Result<serde_json::Map<String, Value>, String> {
    match http(addr, "GET", "/api/session", Some(&cookie), None).await {
        Outcome::Done(r) if r.status == 200 => match serde_json::from_str(&r.body) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(format!("not a JSON object: {}", r.body)),
        },
        other => Err(format!("GET /api/session failed: {other:?}")),
    }
}

/// Reads many sessions at once (a few connections at a time), in order.
async fn read_sessions(
    addr: SocketAddr,
    cookies: Vec<String>,
) -> Vec<Result<serde_json::Map<String, Value>, String>> {
    let limit = Arc::new(tokio::sync::Semaphore::new(8));
    let tasks: Vec<_> = cookies
        .into_iter()
        .map(|cookie| {
            let limit = limit.clone();
            tokio::spawn(async move {
                let _permit = limit.acquire_owned().await.unwrap();
                read_session(addr, cookie).await
            })
        })
        .collect();
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}

#[derive(Debug, Default)]
struct Verdict {
    checked: usize,
    lost: Vec<String>,
    corrupt: Vec<String>,
    retired_checked: usize,
    resurrected: Vec<String>,
}

/// Compares what the store serves with what was acknowledged, then takes the served state
/// as the new floor (the unanswered writes are settled one way or the other now).
async fn verify(addr: SocketAddr, clients: &mut [Client]) -> Verdict {
    let mut verdict = Verdict::default();
    let cookies: Vec<String> = clients
        .iter_mut()
        .flat_map(|c| {
            c.sessions_mut()
                .map(|s| s.cookie.clone())
                .collect::<Vec<_>>()
        })
        .collect();
    let mut served = read_sessions(addr, cookies).await.into_iter();
    for session in clients.iter_mut().flat_map(Client::sessions_mut) {
        verdict.checked += 1;
        let short = &session.cookie[..8.min(session.cookie.len())];
        let data = served
            .next()
            .unwrap()
            .unwrap_or_else(|e| panic!("{short}…: {e}"));
        if data.is_empty() {
            verdict.lost.push(format!(
                "{short}…: gone (acknowledged cart {:?})",
                session.acked
            ));
            continue;
        }
        if data.get("user").and_then(Value::as_str) != Some(session.user) {
            verdict.corrupt.push(format!(
                "{short}…: user is {:?}, not {}",
                data.get("user"),
                session.user
            ));
            continue;
        }
        let cart: BTreeMap<String, u64> = match data.get("cart") {
            None => BTreeMap::new(),
            Some(Value::Object(cart)) => cart
                .iter()
                .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(u64::MAX)))
                .collect(),
            Some(other) => {
                verdict.corrupt.push(format!("{short}…: cart is {other}"));
                continue;
            }
        };
        for product in PRODUCTS {
            let have = cart.get(*product).copied().unwrap_or(0);
            let floor = session.acked.get(*product).copied().unwrap_or(0);
            let ceiling = floor + session.unsure.get(*product).copied().unwrap_or(0);
            if have < floor {
                verdict.lost.push(format!(
                    "{short}…: {have} {product}, {floor} acknowledged (cart {cart:?})"
                ));
            } else if have > ceiling {
                verdict.corrupt.push(format!(
                    "{short}…: {have} {product}, at most {ceiling} ever sent (cart {cart:?})"
                ));
            }
        }
        if let Some(extra) = cart.keys().find(|k| !PRODUCTS.contains(&k.as_str())) {
            verdict
                .corrupt
                .push(format!("{short}…: unknown product {extra}"));
        }
        session.acked = cart;
        session.unsure.clear();
    }
    let retired: Vec<String> = clients.iter().flat_map(|c| c.retired.clone()).collect();
    verdict.retired_checked = retired.len();
    for (cookie, data) in retired
        .iter()
        .zip(read_sessions(addr, retired.clone()).await)
    {
        let data = data.unwrap_or_else(|e| panic!("{}…: {e}", &cookie[..8]));
        if !data.is_empty() {
            verdict
                .resurrected
                .push(format!("{}…: {}", &cookie[..8], Value::Object(data)));
        }
    }
    verdict
}

/// What a file-engine directory holds right after a kill.
#[derive(Debug, Default)]
struct Census {
    sessions: usize,
    /// Claimed names (O_EXCL) whose first write never landed: the engine reads them as
    /// empty sessions.
    empty: usize,
    torn: Vec<String>,
    temp: Vec<String>,
}

fn census(dir: &Path) -> Census {
    let signer = sessio::signing::Signer::new(SECRET.as_bytes(), &[], sessio::signing::STORE_SALT);
    let mut census = Census::default();
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if !name.starts_with(COOKIE_NAME) {
            continue;
        }
        if name.contains("_out_") {
            census.temp.push(name);
            continue;
        }
        census.sessions += 1;
        let text = std::fs::read_to_string(dir.join(&name)).unwrap_or_default();
        if text.is_empty() {
            census.empty += 1;
        } else if let Err(e) = signer.loads(text.trim_end(), None) {
            census
                .torn
                .push(format!("{name}: {e} ({} bytes)", text.len()));
        }
    }
    census
}

// --- the rounds ---------------------------------------------------------------------------

/// What one engine's test saw, summed over the rounds (losses fail the round at once).
#[derive(Debug, Default)]
struct Totals {
    acked: u64,
    /// Session checks, summed over the rounds (a session is checked after every kill).
    checked: usize,
}

/// Runs [`ROUNDS`] rounds of load, `kill -9` and restart-and-verify against the store of
/// `store_args`; `files` is the file engine's directory, inspected after each kill.
fn crash_rounds(engine: &str, dir: &Path, store_args: &[String], files: Option<&Path>) -> Totals {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut rng = Rng::new(u64::MAX);
    let mut clients: Vec<Client> = (0..CLIENTS).map(Client::new).collect();
    let mut totals = Totals::default();
    let mut server = Server::start(dir, store_args, 0);
    for round in 1..=ROUNDS {
        let counters = Arc::new(Counters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let tasks: Vec<_> = std::mem::take(&mut clients)
            .into_iter()
            .map(|client| rt.spawn(drive(client, server.addr, stop.clone(), counters.clone())))
            .collect();
        // The kill lands at a random moment once the load is under way.
        let started = Instant::now();
        while counters.acked.load(Ordering::Relaxed) < MIN_ACKS_BEFORE_KILL {
            assert!(
                started.elapsed() < START_TIMEOUT,
                "[{engine}] no progress under load:\n{}",
                server.log_text()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(rng.below(1200)));
        let killed_after = started.elapsed();
        server.kill_9();
        stop.store(true, Ordering::Relaxed);
        clients = rt.block_on(async {
            let mut clients = Vec::new();
            for task in tasks {
                clients.push(task.await.unwrap());
            }
            clients
        });

        let census = files.map(census);
        server = Server::start(dir, store_args, round);
        let verdict = rt.block_on(verify(server.addr, &mut clients));

        let acked = counters.acked.load(Ordering::Relaxed);
        let unexpected = counters.unexpected.load(Ordering::Relaxed);
        let indeterminate: u64 = clients.iter().map(|c| c.indeterminate).sum();
        eprintln!(
            "crash[{engine}] round {round}: killed after {} ms of load; {acked} requests \
             acknowledged, {} unanswered, {unexpected} unexpected; {} sessions checked, \
             {} lost, {} corrupt; {} retired ids checked, {} resurrected; {indeterminate} \
             sessions left unchecked (re-login unanswered, so far)",
            killed_after.as_millis(),
            counters.unknown.load(Ordering::Relaxed),
            verdict.checked,
            verdict.lost.len(),
            verdict.corrupt.len(),
            verdict.retired_checked,
            verdict.resurrected.len(),
        );
        if let Some(census) = &census {
            eprintln!(
                "crash[{engine}] round {round}: after the kill the directory holds {} session \
                 files ({} torn, {} empty: claimed, never written) and {} temp files left \
                 over by the kills so far",
                census.sessions,
                census.torn.len(),
                census.empty,
                census.temp.len()
            );
        }
        let surprises: Vec<&String> = clients.iter().flat_map(|c| &c.surprises).collect();
        assert!(
            verdict.lost.is_empty() && verdict.corrupt.is_empty() && verdict.resurrected.is_empty(),
            "[{engine}] round {round}: lost {:#?}\ncorrupt {:#?}\nresurrected {:#?}",
            verdict.lost,
            verdict.corrupt,
            verdict.resurrected
        );
        assert!(
            verdict.checked > 0,
            "[{engine}] round {round}: nothing to check"
        );
        // The store is healthy until the kill: an error page is a finding, not noise.
        assert_eq!(unexpected, 0, "[{engine}] round {round}: {surprises:#?}");
        if let Some(census) = census {
            assert!(
                census.torn.is_empty(),
                "[{engine}] round {round}: torn {:#?}",
                census.torn
            );
            check_temp_files_are_not_sessions(&rt, server.addr, &census.temp);
        }
        totals.acked += acked;
        totals.checked += verdict.checked;
    }
    totals
}

/// A leftover temp file is named like a session file plus `_out_…`; its name must never
/// be reachable as a session id (the engine only takes `[a-z0-9]` ids).
fn check_temp_files_are_not_sessions(
    rt: &tokio::runtime::Runtime,
    addr: SocketAddr,
    temp: &[String],
) {
    let ids: Vec<String> = temp
        .iter()
        .map(|name| name[COOKIE_NAME.len()..].to_owned())
        .collect();
    for (id, data) in ids
        .iter()
        .zip(rt.block_on(read_sessions(addr, ids.clone())))
    {
        let data = data.unwrap();
        assert!(
            data.is_empty(),
            "the temp file {id} is served as a session: {data:?}"
        );
    }
}

fn store_args(args: &[&str]) -> Vec<String> {
    args.iter().map(|&a| a.to_owned()).collect()
}

#[test]
fn db_on_sqlite_keeps_every_acknowledged_write_through_kill_9() {
    let dir = TempDir::new().unwrap();
    let url = format!("sqlite://{}", dir.path().join("sessions.sqlite3").display());
    let totals = crash_rounds(
        "db/sqlite",
        dir.path(),
        &store_args(&["--engine", "db", "--database-url", &url]),
        None,
    );
    eprintln!("crash[db/sqlite] total: {totals:?}");
}

#[test]
fn db_on_postgresql_keeps_every_acknowledged_write_through_kill_9() {
    let Some(schema) = servers::PgSchema::create() else {
        return;
    };
    let dir = TempDir::new().unwrap();
    let totals = crash_rounds(
        "db/postgres",
        dir.path(),
        &store_args(&["--engine", "db", "--database-url", &schema.url]),
        None,
    );
    eprintln!("crash[db/postgres] total: {totals:?}");
}

#[test]
fn file_engine_keeps_every_acknowledged_write_and_tears_no_file_through_kill_9() {
    let dir = TempDir::new().unwrap();
    let files = dir.path().join("sessions");
    std::fs::create_dir(&files).unwrap();
    let files_arg = files.display().to_string();
    let args = store_args(&["--engine", "file", "--file-path", &files_arg]);
    let totals = crash_rounds("file", dir.path(), &args, Some(&files));
    eprintln!("crash[file] total: {totals:?}");

    // Leftover temp files: not sessions, so `clear-expired` passes over them; say what
    // happens to them, and check it deletes no live session. This is the library call that
    // `sessio clear-expired --engine file --file-path DIR` makes.
    let before = census(&files);
    let config = sessio::Config::builder()
        .engine(sessio::EngineKind::File)
        .file_path(&files)
        .secret_key(SECRET)
        .build()
        .unwrap();
    let deleted = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let sessions = sessio::SessionManager::open(config).await?;
            sessions
                .clear_expired(sessio::DEFAULT_CLEAR_BATCH, |_| {})
                .await
        })
        .unwrap();
    let after = census(&files);
    eprintln!(
        "crash[file] clear-expired: session files {} -> {}, temp files {} -> {} (deleted {deleted})",
        before.sessions,
        after.sessions,
        before.temp.len(),
        after.temp.len(),
    );
    assert_eq!(
        after.sessions, before.sessions,
        "no live session is expired"
    );
}

/// The census tells a whole file from a torn one, so "0 torn" above means something.
#[test]
fn the_census_spots_torn_files_and_temp_files() {
    let dir = TempDir::new().unwrap();
    let signer = sessio::signing::Signer::new(SECRET.as_bytes(), &[], sessio::signing::STORE_SALT);
    let mut data = sessio::value::Map::new();
    data.insert("user".into(), "alice".into());
    let whole = signer.dumps(&data, 1_700_000_000, true);
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write("sessionidwhole", &whole);
    write("sessionidtorn", &whole[..whole.len() - 5]);
    write("sessionidclaimed", "");
    write("sessionidwhole_out_abc123", &whole[..10]);
    write("unrelated", "x");
    let census = census(dir.path());
    assert_eq!(census.sessions, 3);
    assert_eq!(census.empty, 1);
    assert_eq!(census.torn.len(), 1, "{:?}", census.torn);
    assert!(census.torn[0].starts_with("sessionidtorn:"));
    assert_eq!(census.temp, ["sessionidwhole_out_abc123"]);
}
