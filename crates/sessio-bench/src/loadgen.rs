//! The closed-loop load generator.
//!
//! `users` virtual users, each with one keep-alive HTTP/1.1 connection and its own cookie
//! jar, send one request at a time: the next leaves when the previous answer has been read
//! in full. All of them run as tasks of one single-threaded tokio runtime on its own thread
//! (pinned to the load core), so the generator costs exactly one core and never competes
//! with the server for the other.
//!
//! Two clients: a hand-written HTTP/1.1 client over `TcpStream` (the default: it writes one
//! preformatted request and parses the answer in place with `httparse`) and hyper's
//! `client::conn::http1`. The raw one costs about half the CPU per request (see the
//! report's `gen cpu` column when comparing them with `--client hyper`), which is what
//! keeps the generator from being the bottleneck when the server is fast.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, Context as _};
use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{oneshot, Notify};

use crate::cpu::{self, ThreadSet};
use crate::workload::Workload;

/// The name of the generator's thread (CPU accounting finds it by this prefix).
pub const LOAD_THREAD_NAME: &str = "bench-load";

/// Which HTTP client the virtual users use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ClientKind {
    /// A minimal hand-written HTTP/1.1 client (cheapest).
    #[default]
    Raw,
    /// hyper's HTTP/1.1 client connection.
    Hyper,
}

/// How to drive the load.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Virtual users (connections).
    pub users: usize,
    /// Load before measuring.
    pub warmup: Duration,
    /// How long to measure (the most, when a stop signal is given).
    pub duration: Duration,
    /// The core the generator's thread is pinned to.
    pub core: Option<usize>,
    /// The HTTP client.
    pub client: ClientKind,
}

/// Signals around the measured window, for measurements that run something alongside the
/// load (the `clear-expired` sweep).
#[derive(Debug, Default)]
pub struct Window {
    /// Told when the measured window starts (after set-up and warm-up).
    pub started: Option<oneshot::Sender<()>>,
    /// Ends the window early when it fires (or is dropped).
    pub until: Option<oneshot::Receiver<()>>,
}

/// What one load run measured.
#[derive(Debug, Clone)]
pub struct LoadResult {
    /// Answers completed inside the measured window.
    pub requests: u64,
    /// Of those, answers that were not 2xx, plus connection failures.
    pub errors: u64,
    /// The first error seen, for the report.
    pub first_error: Option<String>,
    /// The measured window.
    pub elapsed: Duration,
    /// Latency of each answer in the window, in microseconds.
    pub latency_us: Histogram<u64>,
    /// Bytes of `Cookie` header values sent in the window.
    pub cookie_bytes_sent: u64,
    /// Bytes of `Set-Cookie` header values received in the window.
    pub cookie_bytes_received: u64,
    /// CPU used by the server's threads in the window (1.0 = one core).
    pub server_cpu: f64,
    /// CPU used by the generator's thread in the window.
    pub load_cpu: f64,
}

impl LoadResult {
    /// Answers per second.
    pub fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

const WARMING: u8 = 0;
const MEASURING: u8 = 1;
const STOPPING: u8 = 2;

struct Shared {
    phase: AtomicU8,
    ready: AtomicUsize,
    ready_notify: Notify,
}

/// Runs the workload against `addr` on a new thread with its own runtime (pinned to
/// `config.core`), and returns what it measured. `server` names the server's threads for
/// CPU accounting.
pub async fn run_load(
    addr: SocketAddr,
    workload: Workload,
    config: LoadConfig,
    server: ThreadSet,
    window: Window,
) -> anyhow::Result<LoadResult> {
    let (tx, rx) = oneshot::channel();
    std::thread::Builder::new()
        .name(LOAD_THREAD_NAME.into())
        .spawn(move || {
            if let Some(core) = config.core {
                cpu::pin_current_thread(core);
            }
            let result = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("building the load generator's runtime")
                .and_then(|rt| rt.block_on(drive(addr, workload, config, server, window)));
            let _ = tx.send(result);
        })
        .context("starting the load generator's thread")?;
    rx.await
        .map_err(|_| anyhow!("the load generator's thread panicked"))?
}

async fn drive(
    addr: SocketAddr,
    workload: Workload,
    config: LoadConfig,
    server: ThreadSet,
    mut window: Window,
) -> anyhow::Result<LoadResult> {
    let shared = Arc::new(Shared {
        phase: AtomicU8::new(WARMING),
        ready: AtomicUsize::new(0),
        ready_notify: Notify::new(),
    });
    let users = config.users.max(1);
    let mut tasks = Vec::with_capacity(users);
    for _ in 0..users {
        let shared = shared.clone();
        let client = config.client;
        tasks.push(tokio::spawn(async move {
            user(addr, workload, client, shared).await
        }));
    }

    // Every user has connected and run its set-up request before the warm-up starts.
    let setup = async {
        while shared.ready.load(Ordering::Acquire) < users {
            let notified = shared.ready_notify.notified();
            if shared.ready.load(Ordering::Acquire) >= users {
                break;
            }
            notified.await;
        }
    };
    if tokio::time::timeout(Duration::from_secs(60), setup)
        .await
        .is_err()
    {
        shared.phase.store(STOPPING, Ordering::Release);
        return Err(anyhow!(
            "the virtual users could not connect and set up within 60 s"
        ));
    }
    // A user whose set-up failed has returned already: report why.
    for t in &tasks {
        if t.is_finished() {
            shared.phase.store(STOPPING, Ordering::Release);
            break;
        }
    }
    if shared.phase.load(Ordering::Acquire) == STOPPING {
        for t in tasks {
            if let Ok(Err(e)) = t.await {
                return Err(e.context("a virtual user's set-up request failed"));
            }
        }
        return Err(anyhow!("a virtual user stopped during set-up"));
    }

    tokio::time::sleep(config.warmup).await;

    let own = ThreadSet::own(&[LOAD_THREAD_NAME]);
    let (server_before, own_before) = (server.sample(), own.sample());
    let t0 = Instant::now();
    shared.phase.store(MEASURING, Ordering::Release);
    if let Some(started) = window.started.take() {
        let _ = started.send(());
    }
    match window.until.take() {
        Some(until) => {
            let _ = tokio::time::timeout(config.duration, until).await;
        }
        None => tokio::time::sleep(config.duration).await,
    }
    shared.phase.store(STOPPING, Ordering::Release);
    let elapsed = t0.elapsed();
    let (server_after, own_after) = (server.sample(), own.sample());

    let mut result = LoadResult {
        requests: 0,
        errors: 0,
        first_error: None,
        elapsed,
        latency_us: new_histogram(),
        cookie_bytes_sent: 0,
        cookie_bytes_received: 0,
        server_cpu: cpu::busy_fraction(&server_before, &server_after, elapsed.as_secs_f64()),
        load_cpu: cpu::busy_fraction(&own_before, &own_after, elapsed.as_secs_f64()),
    };
    for t in tasks {
        let stats = match t.await {
            Ok(Ok(stats)) => stats,
            Ok(Err(e)) => return Err(e),
            Err(e) => return Err(anyhow!("a virtual user panicked: {e}")),
        };
        result.requests += stats.requests;
        result.errors += stats.errors;
        result.cookie_bytes_sent += stats.cookie_sent;
        result.cookie_bytes_received += stats.cookie_received;
        if result.first_error.is_none() {
            result.first_error = stats.first_error;
        }
        result
            .latency_us
            .add(&stats.latency_us)
            .map_err(|e| anyhow!("merging histograms: {e}"))?;
    }
    Ok(result)
}

fn new_histogram() -> Histogram<u64> {
    // 1 µs to 60 s, 3 significant digits.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

struct UserStats {
    requests: u64,
    errors: u64,
    first_error: Option<String>,
    cookie_sent: u64,
    cookie_received: u64,
    latency_us: Histogram<u64>,
}

async fn user(
    addr: SocketAddr,
    workload: Workload,
    client: ClientKind,
    shared: Arc<Shared>,
) -> anyhow::Result<UserStats> {
    let mut stats = UserStats {
        requests: 0,
        errors: 0,
        first_error: None,
        cookie_sent: 0,
        cookie_received: 0,
        latency_us: new_histogram(),
    };
    let mut jar = CookieJar::default();
    let announce_ready = || {
        shared.ready.fetch_add(1, Ordering::AcqRel);
        shared.ready_notify.notify_one();
    };
    let mut conn = match Conn::connect(addr, client).await {
        Ok(c) => c,
        Err(e) => {
            announce_ready();
            return Err(anyhow!(e).context(format!("connecting to {addr}")));
        }
    };
    if let Some(path) = workload.setup_path() {
        let res = conn.request(&path, None).await;
        match res {
            Ok(resp) if (200..300).contains(&resp.status) => {
                for c in &resp.set_cookies {
                    jar.apply(c);
                }
            }
            Ok(resp) => {
                announce_ready();
                return Err(anyhow!("GET {path} answered {}", resp.status));
            }
            Err(e) => {
                announce_ready();
                return Err(anyhow!(e).context(format!("GET {path}")));
            }
        }
        if conn.must_reconnect() {
            conn = Conn::connect(addr, client).await?;
        }
    }
    announce_ready();

    let path = workload.path();
    let sends_cookies = workload.sends_cookies();
    loop {
        if shared.phase.load(Ordering::Acquire) == STOPPING {
            break;
        }
        let cookie = if sends_cookies { jar.header() } else { None };
        let started = Instant::now();
        let res = conn.request(path, cookie).await;
        let measuring = shared.phase.load(Ordering::Acquire) == MEASURING;
        match res {
            Ok(resp) => {
                if measuring {
                    let us = started.elapsed().as_micros().max(1) as u64;
                    stats.latency_us.saturating_record(us);
                    stats.requests += 1;
                    stats.cookie_sent += cookie.map_or(0, |c| c.len() as u64);
                    if !(200..300).contains(&resp.status) {
                        stats.errors += 1;
                        if stats.first_error.is_none() {
                            stats.first_error =
                                Some(format!("GET {path} answered {}", resp.status));
                        }
                    }
                }
                for c in &resp.set_cookies {
                    if measuring {
                        stats.cookie_received += c.len() as u64;
                    }
                    if sends_cookies {
                        jar.apply(c);
                    }
                }
                if conn.must_reconnect() {
                    conn = reconnect(addr, client, &shared).await?;
                }
            }
            Err(e) => {
                if measuring {
                    stats.requests += 1;
                    stats.errors += 1;
                }
                if stats.first_error.is_none() {
                    stats.first_error = Some(format!("GET {path}: {e}"));
                }
                conn = reconnect(addr, client, &shared).await?;
            }
        }
    }
    Ok(stats)
}

async fn reconnect(addr: SocketAddr, client: ClientKind, shared: &Shared) -> anyhow::Result<Conn> {
    loop {
        match Conn::connect(addr, client).await {
            Ok(c) => return Ok(c),
            Err(e) => {
                if shared.phase.load(Ordering::Acquire) == STOPPING {
                    return Err(anyhow!(e).context("reconnecting"));
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// One virtual user's cookies: what a browser does with `Set-Cookie`, for the few cookies
/// a session framework sets.
#[derive(Debug, Default, Clone)]
pub struct CookieJar {
    cookies: Vec<(String, String)>,
    header: String,
}

impl CookieJar {
    /// Applies one `Set-Cookie` header value: stores the cookie, replaces one of the same
    /// name, or deletes it when the server expires it (`Max-Age` ≤ 0 or an `Expires` date in
    /// the past).
    pub fn apply(&mut self, set_cookie: &str) {
        let mut parts = set_cookie.split(';');
        let Some((name, value)) = parts.next().and_then(|nv| nv.split_once('=')) else {
            return;
        };
        let (name, value) = (name.trim(), value.trim());
        let mut delete = false;
        for attr in parts {
            let (k, v) = attr.split_once('=').unwrap_or((attr, ""));
            let k = k.trim();
            if k.eq_ignore_ascii_case("max-age") {
                delete = v.trim().parse::<i64>().is_ok_and(|age| age <= 0);
                if !delete {
                    break; // Max-Age wins over Expires.
                }
            } else if k.eq_ignore_ascii_case("expires") {
                if let Ok(t) = httpdate::parse_http_date(v.trim()) {
                    delete = t <= SystemTime::now();
                }
            }
        }
        self.cookies.retain(|(n, _)| n != name);
        if !delete {
            self.cookies.push((name.to_owned(), value.to_owned()));
        }
        self.header = self
            .cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
    }

    /// The `Cookie` header value to send, if there are cookies.
    pub fn header(&self) -> Option<&str> {
        (!self.header.is_empty()).then_some(self.header.as_str())
    }

    /// The value of one cookie.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.cookies
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// An answer, reduced to what the generator needs.
#[derive(Debug)]
struct Answer {
    status: u16,
    set_cookies: Vec<String>,
    close: bool,
}

enum Conn {
    Raw(RawConn),
    Hyper(HyperConn),
}

impl Conn {
    async fn connect(addr: SocketAddr, kind: ClientKind) -> io::Result<Self> {
        Ok(match kind {
            ClientKind::Raw => Conn::Raw(RawConn::connect(addr).await?),
            ClientKind::Hyper => Conn::Hyper(HyperConn::connect(addr).await?),
        })
    }

    async fn request(&mut self, path: &str, cookie: Option<&str>) -> io::Result<Answer> {
        match self {
            Conn::Raw(c) => c.request(path, cookie).await,
            Conn::Hyper(c) => c.request(path, cookie).await,
        }
    }

    fn must_reconnect(&self) -> bool {
        match self {
            Conn::Raw(c) => c.closed,
            Conn::Hyper(c) => c.closed,
        }
    }
}

/// The hand-written client: one buffer each way, no allocation per request unless the
/// answer sets cookies.
struct RawConn {
    stream: TcpStream,
    host: String,
    out: Vec<u8>,
    buf: Vec<u8>,
    len: usize,
    closed: bool,
}

impl RawConn {
    async fn connect(addr: SocketAddr) -> io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            host: addr.to_string(),
            out: Vec::with_capacity(8192),
            buf: vec![0; 16 * 1024],
            len: 0,
            closed: false,
        })
    }

    async fn request(&mut self, path: &str, cookie: Option<&str>) -> io::Result<Answer> {
        self.out.clear();
        self.out.extend_from_slice(b"GET ");
        self.out.extend_from_slice(path.as_bytes());
        self.out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        self.out.extend_from_slice(self.host.as_bytes());
        self.out.extend_from_slice(b"\r\n");
        if let Some(c) = cookie {
            self.out.extend_from_slice(b"Cookie: ");
            self.out.extend_from_slice(c.as_bytes());
            self.out.extend_from_slice(b"\r\n");
        }
        self.out.extend_from_slice(b"\r\n");
        self.stream.write_all(&self.out).await?;
        loop {
            if self.len > 0 {
                if let Some(answer) = self.parse()? {
                    self.closed = answer.close;
                    return Ok(answer);
                }
            }
            if self.len == self.buf.len() {
                if self.buf.len() >= 1 << 20 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "answer larger than 1 MiB",
                    ));
                }
                self.buf.resize(self.buf.len() * 2, 0);
            }
            let n = self.stream.read(&mut self.buf[self.len..]).await?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection",
                ));
            }
            self.len += n;
        }
    }

    /// The answer at the front of the buffer, once it is complete; consumes it.
    fn parse(&mut self) -> io::Result<Option<Answer>> {
        let (end, answer) = {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut res = httparse::Response::new(&mut headers);
            let head_len = match res.parse(&self.buf[..self.len]) {
                Ok(httparse::Status::Complete(n)) => n,
                Ok(httparse::Status::Partial) => return Ok(None),
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            };
            let mut answer = Answer {
                status: res.code.unwrap_or(0),
                set_cookies: Vec::new(),
                close: false,
            };
            let mut content_length = 0usize;
            let mut chunked = false;
            for h in res.headers.iter() {
                if h.name.eq_ignore_ascii_case("set-cookie") {
                    answer
                        .set_cookies
                        .push(String::from_utf8_lossy(h.value).into_owned());
                } else if h.name.eq_ignore_ascii_case("content-length") {
                    content_length = std::str::from_utf8(h.value)
                        .ok()
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                    chunked = h.value.eq_ignore_ascii_case(b"chunked");
                } else if h.name.eq_ignore_ascii_case("connection") {
                    answer.close = h.value.eq_ignore_ascii_case(b"close");
                }
            }
            let end = if chunked {
                match chunked_len(&self.buf[head_len..self.len])? {
                    Some(n) => head_len + n,
                    None => return Ok(None),
                }
            } else {
                head_len + content_length
            };
            if end > self.len {
                return Ok(None);
            }
            (end, answer)
        };
        self.buf.copy_within(end..self.len, 0);
        self.len -= end;
        Ok(Some(answer))
    }
}

/// The length of a complete chunked body at the start of `b`, or `None` if it is not all
/// there yet.
fn chunked_len(b: &[u8]) -> io::Result<Option<usize>> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "bad chunked encoding");
    let mut pos = 0;
    loop {
        let Some(eol) = b[pos..].windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let line = std::str::from_utf8(&b[pos..pos + eol]).map_err(|_| bad())?;
        let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| bad())?;
        pos += eol + 2;
        if size == 0 {
            // Trailers, then an empty line.
            loop {
                let Some(eol) = b[pos..].windows(2).position(|w| w == b"\r\n") else {
                    return Ok(None);
                };
                pos += eol + 2;
                if eol == 0 {
                    return Ok(Some(pos));
                }
            }
        }
        if b.len() < pos + size + 2 {
            return Ok(None);
        }
        pos += size + 2;
    }
}

/// hyper's client connection, for comparison.
struct HyperConn {
    sender: hyper::client::conn::http1::SendRequest<http_body_util::Empty<hyper::body::Bytes>>,
    host: http::HeaderValue,
    closed: bool,
}

impl HyperConn {
    async fn connect(addr: SocketAddr) -> io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(io::Error::other)?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Self {
            sender,
            host: http::HeaderValue::try_from(addr.to_string()).map_err(io::Error::other)?,
            closed: false,
        })
    }

    async fn request(&mut self, path: &str, cookie: Option<&str>) -> io::Result<Answer> {
        use http_body_util::BodyExt as _;
        let mut req = http::Request::get(path)
            .body(http_body_util::Empty::new())
            .map_err(io::Error::other)?;
        req.headers_mut()
            .insert(http::header::HOST, self.host.clone());
        if let Some(c) = cookie {
            req.headers_mut().insert(
                http::header::COOKIE,
                http::HeaderValue::try_from(c).map_err(io::Error::other)?,
            );
        }
        self.sender.ready().await.map_err(io::Error::other)?;
        let res = self
            .sender
            .send_request(req)
            .await
            .map_err(io::Error::other)?;
        let answer = Answer {
            status: res.status().as_u16(),
            set_cookies: res
                .headers()
                .get_all(http::header::SET_COOKIE)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect(),
            close: res
                .headers()
                .get(http::header::CONNECTION)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close")),
        };
        res.into_body().collect().await.map_err(io::Error::other)?;
        self.closed = answer.close;
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jar_stores_replaces_and_deletes() {
        let mut jar = CookieJar::default();
        jar.apply("sessionid=abc; expires=Thu, 01 Jan 2099 00:00:00 GMT; HttpOnly; Max-Age=1209600; Path=/; SameSite=Lax");
        assert_eq!(jar.header(), Some("sessionid=abc"));
        jar.apply("other=1; Path=/");
        jar.apply("sessionid=def; Path=/");
        assert_eq!(jar.header(), Some("other=1; sessionid=def"));
        jar.apply(r#"sessionid=""; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/"#);
        assert_eq!(jar.get("sessionid"), None);
        jar.apply("other=; Expires=Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(jar.header(), None);
    }

    #[test]
    fn chunked_bodies() {
        assert_eq!(chunked_len(b"2\r\nok\r\n0\r\n\r\n").unwrap(), Some(12));
        assert_eq!(chunked_len(b"2\r\nok\r\n0\r\n").unwrap(), None);
        assert!(chunked_len(b"zz\r\n").is_err());
    }
}
