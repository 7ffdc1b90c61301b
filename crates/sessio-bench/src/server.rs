//! Servers under test: the [`Target`] and [`Server`] traits every system implements, the
//! pinned-runtime runner for axum apps, and a target that runs in another process
//! (`sessio-bench serve`).

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use async_trait::async_trait;
use axum::serve::ListenerExt as _;
use axum::ServiceExt as _;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::oneshot;

use crate::cpu::{self, ThreadSet};
use crate::workload::Workload;

/// The name of every thread of a server runtime started here (CPU accounting finds the
/// server's threads by it).
pub const SERVER_THREAD_NAME: &str = "bench-srv";

/// Thread-name prefixes that belong to an in-process sessio server: the runtime's threads
/// and the threads sessio's engines start (the SQLite writer).
pub const SERVER_THREAD_PREFIXES: &[&str] = &[SERVER_THREAD_NAME, "sessio-"];

/// A system under test: something that starts a fresh server for one workload.
#[async_trait]
pub trait Target: Send + Sync {
    /// The name in tables and reports (`signed-cookies`, `tower-sessions sqlite`).
    fn name(&self) -> String;

    /// Starts a server with an empty store, its runtime pinned to `core`.
    async fn start(
        &self,
        workload: Workload,
        core: Option<usize>,
    ) -> anyhow::Result<Box<dyn Server>>;
}

/// A running server.
#[async_trait]
pub trait Server: Send + Sync {
    /// Where it listens.
    fn addr(&self) -> SocketAddr;

    /// Its threads, for CPU accounting.
    fn threads(&self) -> ThreadSet;

    /// Bytes the store keeps per session, when that is known: called after the load, before
    /// [`stop`](Server::stop).
    async fn storage_bytes_per_session(&self) -> anyhow::Result<Option<f64>> {
        Ok(None)
    }

    /// Stops it and frees its store.
    async fn stop(self: Box<Self>);
}

/// Which tokio runtime a server runs on (always on one pinned core).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ServerRuntime {
    /// A multi-thread runtime with one worker (what `#[tokio::main]` apps run, sized to
    /// the core it is pinned to).
    #[default]
    Multi,
    /// A current-thread runtime.
    Current,
}

/// An axum app served on its own thread and runtime, pinned to one core.
#[derive(Debug)]
pub struct AxumServer {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl AxumServer {
    /// Starts a thread pinned to `core`, builds a runtime on it, calls `make_app` there (so
    /// whatever the app opens, such as a session engine and its threads, lives on that core
    /// too) and serves the app on an ephemeral port of 127.0.0.1.
    pub async fn start<F, Fut, A>(
        core: Option<usize>,
        runtime: ServerRuntime,
        make_app: F,
    ) -> anyhow::Result<Self>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<A>> + Send + 'static,
        A: tower::Service<
                axum::extract::Request,
                Response = axum::response::Response,
                Error = std::convert::Infallible,
            > + Clone
            + Send
            + 'static,
        A::Future: Send,
    {
        let (ready_tx, ready_rx) = oneshot::channel::<anyhow::Result<SocketAddr>>();
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(SERVER_THREAD_NAME.into())
            .spawn(move || {
                if let Some(core) = core {
                    cpu::pin_current_thread(core);
                }
                let rt = match runtime {
                    ServerRuntime::Multi => tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(1)
                        .thread_name(SERVER_THREAD_NAME)
                        .enable_all()
                        .build(),
                    ServerRuntime::Current => tokio::runtime::Builder::new_current_thread()
                        .thread_name(SERVER_THREAD_NAME)
                        .enable_all()
                        .build(),
                };
                let rt = match rt {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(anyhow!(e).context("building the runtime")));
                        return;
                    }
                };
                // The serving future runs as a spawned task so that a multi-thread
                // runtime serves on its worker, not on this thread.
                let task = rt.spawn(async move {
                    let setup = async {
                        let app = make_app().await?;
                        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                        let addr = listener.local_addr()?;
                        anyhow::Ok((app, listener, addr))
                    };
                    let (app, listener, addr) = match setup.await {
                        Ok(v) => v,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(addr));
                    let listener = listener.tap_io(|tcp| {
                        let _ = tcp.set_nodelay(true);
                    });
                    tokio::select! {
                        _ = axum::serve(listener, app.into_make_service()) => {}
                        _ = shutdown_rx => {}
                    }
                });
                let _ = rt.block_on(task);
                // Dropping open connections and the engine here, on the pinned thread.
                rt.shutdown_timeout(Duration::from_secs(2));
            })
            .context("starting the server thread")?;
        let addr = ready_rx
            .await
            .map_err(|_| anyhow!("the server thread stopped before it was ready"))??;
        Ok(Self {
            addr,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving, drops the app (and its engine) and waits for the thread.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

impl Drop for AxumServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

#[async_trait]
impl Server for AxumServer {
    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn threads(&self) -> ThreadSet {
        ThreadSet::own(SERVER_THREAD_PREFIXES)
    }

    async fn stop(self: Box<Self>) {
        AxumServer::stop(*self).await
    }
}

/// A sessio engine served by another process: `sessio-bench serve --engine NAME`.
///
/// `bench/peers` uses it for the engines it cannot link (its sqlx SQLite peer and sessio's
/// rusqlite link different `libsqlite3-sys` versions), and can use it for every sessio
/// engine so that each one runs the same code as in the main harness.
#[derive(Debug, Clone)]
pub struct ExternalTarget {
    /// The `sessio-bench` binary.
    pub program: PathBuf,
    /// The engine name it is given.
    pub engine: String,
    /// Extra arguments (`--postgres-url`, `--runtime`...).
    pub args: Vec<String>,
    /// The name in reports.
    pub label: String,
}

#[async_trait]
impl Target for ExternalTarget {
    fn name(&self) -> String {
        self.label.clone()
    }

    async fn start(
        &self,
        workload: Workload,
        core: Option<usize>,
    ) -> anyhow::Result<Box<dyn Server>> {
        let mut cmd = tokio::process::Command::new(&self.program);
        cmd.arg("serve")
            .arg("--engine")
            .arg(&self.engine)
            .arg("--workload")
            .arg(workload.to_string())
            .args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        match core {
            Some(c) => cmd.arg("--server-core").arg(c.to_string()),
            None => cmd.arg("--no-pin"),
        };
        let mut child = cmd
            .spawn()
            .with_context(|| format!("running {}", self.program.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let mut addr = None;
        let read = async {
            while let Some(line) = lines.next_line().await? {
                if let Some(a) = line.strip_prefix("listening ") {
                    addr = Some(a.trim().parse::<SocketAddr>()?);
                    break;
                }
            }
            anyhow::Ok(())
        };
        tokio::time::timeout(Duration::from_secs(60), read)
            .await
            .context("the serve process did not start within 60 s")??;
        let addr = addr.context("the serve process exited before listening")?;
        // Later lines answer `storage` requests.
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(v) = line.strip_prefix("storage ") {
                    let _ = tx.send(v.trim().parse::<f64>().ok()).await;
                }
            }
        });
        let pid = child.id().unwrap_or(0);
        let stdin = child.stdin.take();
        Ok(Box::new(ExternalServer {
            addr,
            pid,
            child: Some(child),
            stdin: tokio::sync::Mutex::new(stdin),
            storage: tokio::sync::Mutex::new(rx),
        }))
    }
}

/// A `sessio-bench serve` process. Protocol: it prints `listening ADDR` once ready; a line
/// `storage` on its stdin is answered by `storage BYTES` (or `storage none`) on stdout;
/// closing its stdin stops it.
struct ExternalServer {
    addr: SocketAddr,
    pid: u32,
    child: Option<tokio::process::Child>,
    stdin: tokio::sync::Mutex<Option<tokio::process::ChildStdin>>,
    storage: tokio::sync::Mutex<tokio::sync::mpsc::Receiver<Option<f64>>>,
}

#[async_trait]
impl Server for ExternalServer {
    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn threads(&self) -> ThreadSet {
        ThreadSet::process(self.pid)
    }

    async fn storage_bytes_per_session(&self) -> anyhow::Result<Option<f64>> {
        use tokio::io::AsyncWriteExt as _;
        {
            let mut stdin = self.stdin.lock().await;
            let stdin = stdin
                .as_mut()
                .context("the serve process's stdin is closed")?;
            stdin.write_all(b"storage\n").await?;
            stdin.flush().await?;
        }
        let mut rx = self.storage.lock().await;
        let answer = tokio::time::timeout(Duration::from_secs(120), rx.recv())
            .await
            .context("the serve process did not answer `storage`")?;
        Ok(answer.flatten())
    }

    async fn stop(mut self: Box<Self>) {
        drop(self.stdin.lock().await.take());
        if let Some(mut child) = self.child.take() {
            if tokio::time::timeout(Duration::from_secs(10), child.wait())
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
        }
    }
}
