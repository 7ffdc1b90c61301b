//! Real Redis servers for the tests: the shared one (`SESSIO_TEST_REDIS_URL`), a Redis
//! Cluster started for the test binary, and private servers a test may kill and restart.
//!
//! Every server started here is watched: when the test process ends, however it ends, a
//! small shell loop shuts the servers down and removes their directory. Servers left by a
//! run whose watcher died too are found by their pid files and stopped at the next start.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The shared Redis of the tests.
pub fn redis_url() -> String {
    super::service_url("SESSIO_TEST_REDIS_URL", "redis://127.0.0.1:6379")
}

/// A blocking connection with short timeouts, for checks and cleanup.
pub fn connect(url: &str) -> redis::RedisResult<redis::Connection> {
    let client = redis::Client::open(url)?;
    let conn = client.get_connection_with_timeout(Duration::from_secs(2))?;
    conn.set_read_timeout(Some(Duration::from_secs(2)))?;
    conn.set_write_timeout(Some(Duration::from_secs(2)))?;
    Ok(conn)
}

/// Whether a Redis answers at `url`.
pub fn ping(url: &str) -> Result<(), String> {
    let mut conn = connect(url).map_err(|e| e.to_string())?;
    redis::cmd("PING")
        .query::<String>(&mut conn)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// A key prefix no other test uses, so tests share one Redis and run in parallel.
pub fn unique_prefix() -> String {
    format!("sessio-test:{}:", sessio::key::new_session_key().unwrap())
}

/// Every key under `prefix` on the server at `url` (one node of a cluster: its own keys).
pub fn keys(url: &str, prefix: &str) -> Vec<String> {
    let Ok(mut conn) = connect(url) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    let mut cursor = 0u64;
    loop {
        let Ok((next, batch)): redis::RedisResult<(u64, Vec<String>)> = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(1000)
            .query(&mut conn)
        else {
            return found;
        };
        found.extend(batch);
        if next == 0 {
            return found;
        }
        cursor = next;
    }
}

/// Deletes the keys of a test's prefix when dropped (best effort).
#[derive(Debug)]
pub struct KeyCleanup {
    /// The servers to clean (every node of a cluster).
    pub urls: Vec<String>,
    /// The test's prefix.
    pub prefix: String,
}

impl Drop for KeyCleanup {
    fn drop(&mut self) {
        for url in &self.urls {
            let keys = keys(url, &self.prefix);
            if keys.is_empty() {
                continue;
            }
            if let Ok(mut conn) = connect(url) {
                for key in keys {
                    let _: redis::RedisResult<i64> = redis::cmd("DEL").arg(key).query(&mut conn);
                }
            }
        }
    }
}

/// A loopback port that is free now, whose cluster bus port (+10000) is free too.
fn free_port() -> u16 {
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().unwrap().port();
        if port <= 55_535 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

fn redis_cli(port: u16, args: &[&str]) -> Option<String> {
    let out = Command::new("redis-cli")
        .arg("-p")
        .arg(port.to_string())
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn wait_for(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) -> Result<(), String> {
    let start = Instant::now();
    while !ready() {
        if start.elapsed() > timeout {
            return Err(format!("{what}: not ready after {timeout:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Where this process's servers keep their files: `<tmp>/sessio-test-redis/<pid>`.
fn base_dir() -> PathBuf {
    std::env::temp_dir().join("sessio-test-redis")
}

fn process_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Stops the servers of earlier test processes that are gone, by their pid files.
fn clean_leftovers() {
    let Ok(entries) = std::fs::read_dir(base_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let Some(owner) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if owner == std::process::id() || process_alive(owner) {
            continue;
        }
        // <pid>/<server dir>/*.pid
        let servers = std::fs::read_dir(entry.path())
            .into_iter()
            .flatten()
            .flatten();
        let files = servers.flat_map(|server| {
            std::fs::read_dir(server.path())
                .into_iter()
                .flatten()
                .flatten()
        });
        for file in files {
            let path = file.path();
            if path.extension().is_none_or(|e| e != "pid") {
                continue;
            }
            let Some(pid) = std::fs::read_to_string(&path)
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok())
            else {
                continue;
            };
            // Only a redis-server: the pid may have been reused since.
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains("redis-server") {
                let _ = Command::new("kill").arg(pid.to_string()).status();
            }
        }
        let _ = std::fs::remove_dir_all(entry.path());
    }
}

/// A directory for this process's servers, after stopping earlier runs' leftovers.
fn own_dir(name: &str) -> Result<PathBuf, String> {
    clean_leftovers();
    let dir = base_dir().join(std::process::id().to_string()).join(name);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}

/// Shuts the servers on `ports` down (and removes `dir`) when this process ends.
fn watch(ports: &[u16], dir: &Path) {
    let shutdown: String = ports
        .iter()
        .map(|p| format!("redis-cli -p {p} shutdown nosave >/dev/null 2>&1; "))
        .collect();
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {shutdown}rm -rf '{dir}'; \
         rmdir '{parent}' 2>/dev/null",
        pid = std::process::id(),
        dir = dir.display(),
        parent = dir.parent().unwrap_or(dir).display(),
    );
    let _ = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
}

fn redis_server_installed() -> Result<(), String> {
    Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(drop)
        .map_err(|e| format!("redis-server is not installed ({e})"))
}

// ---------------------------------------------------------------------------------------
// Redis Cluster

/// A three-master Redis Cluster on loopback ports, shared by the tests of one binary.
#[derive(Debug)]
pub struct Cluster {
    /// The nodes' ports.
    pub ports: Vec<u16>,
}

impl Cluster {
    /// The `redis+cluster://` URL of the cluster.
    pub fn url(&self) -> String {
        let nodes: Vec<String> = self
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!("redis+cluster://{}", nodes.join(","))
    }

    /// A `redis://` URL per node.
    pub fn node_urls(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect()
    }
}

/// The cluster of this test binary, started on first use; an error says why there is none.
pub fn cluster() -> Result<&'static Cluster, String> {
    static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
    CLUSTER
        .get_or_init(|| {
            redis_server_installed()?;
            let mut last = String::new();
            // A free port can be taken by someone else before the server binds it: retry.
            for attempt in 0..3 {
                match start_cluster(attempt) {
                    Ok(c) => return Ok(c),
                    Err(e) => last = e,
                }
            }
            Err(last)
        })
        .as_ref()
        .map_err(Clone::clone)
}

fn start_cluster(attempt: u32) -> Result<Cluster, String> {
    let dir = own_dir(&format!("cluster-{attempt}"))?;
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    watch(&ports, &dir);
    let stop = |ports: &[u16]| {
        for p in ports {
            redis_cli(*p, &["shutdown", "nosave"]);
        }
    };
    for &port in &ports {
        let status = Command::new("redis-server")
            .args(["--port", &port.to_string()])
            .args(["--cluster-enabled", "yes"])
            .arg("--cluster-config-file")
            .arg(dir.join(format!("nodes-{port}.conf")))
            .args(["--cluster-node-timeout", "2000"])
            .arg("--dir")
            .arg(&dir)
            .args(["--save", "", "--appendonly", "no", "--daemonize", "yes"])
            .args(["--bind", "127.0.0.1"])
            .arg("--pidfile")
            .arg(dir.join(format!("redis-{port}.pid")))
            .arg("--logfile")
            .arg(dir.join(format!("redis-{port}.log")))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| format!("redis-server: {e}"))?;
        if !status.success() {
            stop(&ports);
            return Err(format!("redis-server on port {port} did not start"));
        }
    }
    let all_ping = || {
        ports
            .iter()
            .all(|&p| redis_cli(p, &["ping"]).is_some_and(|o| o.contains("PONG")))
    };
    if let Err(e) = wait_for("cluster nodes", Duration::from_secs(10), all_ping) {
        stop(&ports);
        return Err(e);
    }
    let nodes: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let created = Command::new("redis-cli")
        .arg("--cluster")
        .arg("create")
        .args(&nodes)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("redis-cli --cluster create: {e}"))?;
    if !created.success() {
        stop(&ports);
        return Err("redis-cli --cluster create failed".into());
    }
    // Every node must agree that all slots are served before the client asks for them.
    let all_ok = || {
        ports.iter().all(|&p| {
            redis_cli(p, &["cluster", "info"]).is_some_and(|info| {
                info.contains("cluster_state:ok") && info.contains("cluster_slots_ok:16384")
            })
        })
    };
    if let Err(e) = wait_for("cluster state", Duration::from_secs(30), all_ok) {
        stop(&ports);
        return Err(e);
    }
    Ok(Cluster { ports })
}

// ---------------------------------------------------------------------------------------
// Private servers

/// A Redis server of one test's own, which the test may kill and restart on the same port.
/// Never the shared one.
#[derive(Debug)]
pub struct PrivateRedis {
    /// Its port.
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl PrivateRedis {
    /// Starts a server on a free loopback port.
    pub fn start() -> Result<Self, String> {
        redis_server_installed()?;
        let port = free_port();
        let dir = own_dir(&format!("private-{port}"))?;
        watch(&[port], &dir);
        let mut server = Self {
            port,
            dir,
            child: None,
        };
        server.restart()?;
        Ok(server)
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL: no goodbye to its clients), and waits for it to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing is answered.
    pub fn pause(&self) {
        self.signal("STOP");
    }

    /// Thaws a paused server (SIGCONT).
    pub fn resume(&self) {
        self.signal("CONT");
    }

    fn signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .arg(format!("-{signal}"))
                .arg(child.id().to_string())
                .status();
        }
    }

    /// Starts the server again on the same port (with no data: nothing is persisted).
    pub fn restart(&mut self) -> Result<(), String> {
        self.kill();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--pidfile")
            .arg(self.dir.join("redis.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("redis-server: {e}"))?;
        self.child = Some(child);
        let url = self.url();
        wait_for("private redis-server", Duration::from_secs(10), || {
            ping(&url).is_ok()
        })
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
