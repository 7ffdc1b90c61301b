//! Running the demo as a server: settings, the demo's own secret key, the listener.

use std::io::{ErrorKind, Write as _};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use sessio::{Config, EngineKind, SecretKey, SessionManager};
use tokio::net::TcpListener;

use crate::store::{self, StoreOptions};

/// Prints a line for the person running the demo. A stdout that was closed
/// (`sessio-demo | head -1`) is no reason to stop serving, so write errors are ignored
/// (`println!` would panic).
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// Where the demo listens unless told otherwise.
pub const DEFAULT_ADDR: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8000));

/// The demo's default data directory, relative to the current directory.
pub const DEFAULT_DATA_DIR: &str = ".sessio-demo";

/// How to run the demo. `DemoOptions::default()` is what `sessio-demo` does without flags.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// The engine and its store (`--engine`, `--database-url`, `--cache-url`,
    /// `--file-path`); what they leave unset comes from the settings (the config file,
    /// `SESSIO_*` variables), and then from the demo's defaults: the `db` engine on
    /// `<data_dir>/sessions.sqlite3`, files in `<data_dir>/sessions`.
    pub store: StoreOptions,
    /// A SQLite file for the database (`--database`), a shortcut for
    /// `store.database_url = sqlite://PATH`; the database URL wins when both are set.
    pub database: Option<PathBuf>,
    /// Where the demo keeps its database and generated secret key.
    pub data_dir: PathBuf,
    /// The address to listen on. `None` is [`DEFAULT_ADDR`], or any free port on
    /// 127.0.0.1 when that one is taken; an explicit address that is taken is an error.
    pub addr: Option<SocketAddr>,
    /// A TOML settings file applied before the `SESSIO_*` environment variables.
    pub config_file: Option<PathBuf>,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            store: StoreOptions::default(),
            database: None,
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            addr: None,
            config_file: None,
        }
    }
}

impl DemoOptions {
    /// The SQLite file of `--database`, or the demo's default one; a database URL from
    /// the options or the settings takes precedence over both.
    pub fn database_path(&self) -> PathBuf {
        self.database
            .clone()
            .unwrap_or_else(|| self.data_dir.join("sessions.sqlite3"))
    }

    /// The directory of the `file` engine, unless the options or settings name another.
    pub fn file_sessions_dir(&self) -> PathBuf {
        self.data_dir.join("sessions")
    }

    /// The file the demo keeps its generated secret key in.
    pub fn secret_key_path(&self) -> PathBuf {
        self.data_dir.join("secret_key")
    }
}

/// Where the demo's secret key came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `SESSIO_SECRET_KEY` or the config file.
    Settings,
    /// Generated now and saved in this file.
    Created(PathBuf),
    /// Read from this file, saved by an earlier run.
    Reused(PathBuf),
}

/// The demo's settings: the demo's defaults (SQLite and files in the data directory), then
/// the config file and `SESSIO_*` variables, then the options; auto-migrate on; and a
/// secret key from the settings or the data directory (which this creates, owner-only,
/// when it is missing). The directories the store needs (a SQLite file's, the file
/// engine's) are created too.
pub fn demo_config(opts: &DemoOptions) -> anyhow::Result<(Config, KeySource)> {
    create_private_dir(&opts.data_dir)?;
    // Defaults that the settings and options may override.
    let mut builder = Config::builder()
        .database_url(sqlite_url(&opts.database_path()))
        .file_path(opts.file_sessions_dir());
    if let Some(path) = &opts.config_file {
        builder = builder.toml_file(path)?;
    }
    builder = builder.env()?;
    let source = if builder.has_secret_key() {
        KeySource::Settings
    } else {
        let path = opts.secret_key_path();
        let (key, created) = load_or_create_secret_key(&path)?;
        builder = builder.secret_key(key.expose());
        if created {
            KeySource::Created(path)
        } else {
            KeySource::Reused(path)
        }
    };
    let mut store = opts.store.clone();
    if let Some(path) = &opts.database {
        // `--database` is a database option like `--database-url`: it selects the db engine
        // over a cookie engine from the settings, and loses to an explicit URL.
        store.database_url.get_or_insert_with(|| sqlite_url(path));
    }
    let config = store.apply(builder).auto_migrate(true).build()?;
    prepare_directories(&config, opts)?;
    Ok((config, source))
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// Creates the directory of a SQLite file and the file engine's directory, so the demo
/// runs on a fresh checkout with any engine.
fn prepare_directories(config: &Config, opts: &DemoOptions) -> anyhow::Result<()> {
    let uses_database = matches!(config.engine(), EngineKind::Db | EngineKind::CachedDb);
    if let Some(path) = store::sqlite_path(config.database_url()).filter(|_| uses_database) {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the directory {}", dir.display()))?;
        }
    }
    if config.engine() == EngineKind::File {
        let dir = store::file_dir(config);
        if dir == opts.file_sessions_dir() {
            create_private_dir(&dir)?;
        } else if !dir.is_dir() {
            store::create_private_dir_all(&dir)
                .with_context(|| format!("cannot create the directory {}", dir.display()))?;
        }
    }
    Ok(())
}

/// Reads the secret key saved in `path`, or generates one and saves it there (readable
/// only by the owner). Returns the key and whether it was created now.
///
/// Only the demo does this: a real app gets its key from its deployment's secrets.
pub fn load_or_create_secret_key(path: &Path) -> anyhow::Result<(SecretKey, bool)> {
    match read_secret_key(path) {
        Ok(key) => return Ok((key, false)),
        Err(e) if is_not_found(&e) => {}
        Err(e) => return Err(e),
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_private_dir(dir)?;
    }
    let key = SecretKey::generate()?;
    let mut file = match private_file(path) {
        Ok(file) => file,
        // Another run got there first: use its key.
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            return Ok((read_secret_key(path)?, false))
        }
        Err(e) => {
            return Err(e).with_context(|| format!("cannot create {}", path.display()));
        }
    };
    writeln!(file, "{}", key.expose())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok((key, true))
}

fn is_not_found(e: &anyhow::Error) -> bool {
    e.downcast_ref::<std::io::Error>()
        .is_some_and(|e| e.kind() == ErrorKind::NotFound)
}

fn read_secret_key(path: &Path) -> anyhow::Result<SecretKey> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == ErrorKind::NotFound => return Err(e.into()),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read the secret key {}", path.display()))
        }
    };
    let key = text.trim();
    if key.is_empty() {
        anyhow::bail!(
            "the secret key file {} is empty: delete it and the demo makes a new one",
            path.display()
        );
    }
    warn_if_readable_by_others(path);
    Ok(SecretKey::new(key))
}

#[cfg(unix)]
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

/// Creates a directory (owner-only on Unix) with a `.gitignore` that keeps the secret key
/// and sessions out of version control.
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .with_context(|| format!("cannot create the directory {}", dir.display()))?;
    let ignore = dir.join(".gitignore");
    std::fs::write(
        &ignore,
        "# Created by the sessio demo: secret key and database.\n*\n",
    )
    .with_context(|| format!("cannot write {}", ignore.display()))?;
    Ok(())
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                "the secret key file is readable by other users: chmod 600 it"
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

/// Binds `addr`, or [`DEFAULT_ADDR`] falling back to a free port when it is taken.
async fn bind(addr: Option<SocketAddr>) -> anyhow::Result<TcpListener> {
    if let Some(addr) = addr {
        return TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"));
    }
    match TcpListener::bind(DEFAULT_ADDR).await {
        Ok(listener) => Ok(listener),
        Err(e) if e.kind() == ErrorKind::AddrInUse => {
            say!("sessio demo: {DEFAULT_ADDR} is in use, so the demo takes a free port instead");
            TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .await
                .context("cannot listen on any port of 127.0.0.1")
        }
        Err(e) => Err(e).with_context(|| format!("cannot listen on {DEFAULT_ADDR}")),
    }
}

/// The URL to open for a listening address (`0.0.0.0` is not something to type in a
/// browser).
fn browser_url(addr: SocketAddr) -> String {
    let mut shown = addr;
    if shown.ip().is_unspecified() {
        shown.set_ip(Ipv4Addr::LOCALHOST.into());
    }
    format!("http://{shown}")
}

/// Runs the demo site until Ctrl-C (or SIGTERM).
///
/// ```no_run
/// # async fn run() -> anyhow::Result<()> {
/// // cargo run --release -p sessio-demo
/// sessio_demo::serve(sessio_demo::DemoOptions::default()).await
/// # }
/// ```
pub async fn serve(opts: DemoOptions) -> anyhow::Result<()> {
    let (config, key_source) = demo_config(&opts)?;
    match &key_source {
        KeySource::Settings => {}
        KeySource::Created(path) => say!(
            "sessio demo: generated a secret key and saved it in {} (reused on later runs; \
             set SESSIO_SECRET_KEY to use your own)",
            path.display()
        ),
        KeySource::Reused(path) => {
            say!(
                "sessio demo: using the secret key saved in {}",
                path.display()
            )
        }
    }
    let engine = config.engine();
    let location = store::describe(&config);
    let sessions = SessionManager::open(config.clone())
        .await
        .map_err(|e| store::open_error(&config, e))?;
    let listener = bind(opts.addr).await?;
    let local = listener
        .local_addr()
        .context("the listener has no address")?;
    say!(
        "sessio demo: serving on {} (engine: {engine}, sessions {location})",
        browser_url(local)
    );
    say!("sessio demo: press Ctrl-C to stop");
    axum::serve(listener, crate::app(&sessions))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("the demo server failed")?;
    say!("sessio demo: stopped");
    Ok(())
}

/// Resolves on Ctrl-C, or SIGTERM on Unix.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_key_is_created_once_and_kept_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data").join("secret_key");
        let (first, created) = load_or_create_secret_key(&path).unwrap();
        assert!(created);
        assert!(first.weakness().is_none());
        let (second, created) = load_or_create_secret_key(&path).unwrap();
        assert!(!created);
        assert_eq!(first, second);
        assert!(dir.path().join("data/.gitignore").is_file());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn an_empty_key_file_is_an_error_not_a_weak_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret_key");
        std::fs::write(&path, "\n").unwrap();
        let e = load_or_create_secret_key(&path).unwrap_err().to_string();
        assert!(e.contains("empty"), "{e}");
    }

    #[test]
    fn browser_urls_avoid_the_unspecified_address() {
        assert_eq!(
            browser_url("0.0.0.0:8000".parse().unwrap()),
            "http://127.0.0.1:8000"
        );
        assert_eq!(browser_url(DEFAULT_ADDR), "http://127.0.0.1:8000");
    }

    #[tokio::test]
    async fn the_default_port_falls_back_when_taken() {
        // Hold the default port if it is free; if something else holds it, so much the better.
        let _guard = TcpListener::bind(DEFAULT_ADDR).await;
        let listener = bind(None).await.unwrap();
        assert_ne!(listener.local_addr().unwrap(), DEFAULT_ADDR);
        assert!(listener.local_addr().unwrap().ip().is_loopback());
    }
}
