//! The `file` engine: one file per session in a directory (Django's `file` backend).
//!
//! A session lives in `<dir>/<cookie name><key>`, holding the same signed string as a
//! `django_session.session_data` column, so Django's file backend and sessio read each
//! other's files. Keys are checked against `[a-z0-9]` before they become a path (no path
//! traversal). Every write goes to a temp file (mode 0600) that is renamed over the
//! session file, so a reader or a crash never sees a torn file. The file's mtime is the last
//! save, set from the configured clock.
//!
//! The directory must be private: a directory any local user can write to (such as the
//! system temp directory) is refused, since anyone could plant a session file there. The
//! default is a directory of the user's own ([`default_dir`]), created owner-only.

use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use time::OffsetDateTime;

use crate::clock::Clock;
use crate::config::Config;
use crate::engine::{SessionData, Version};
use crate::error::{Error, LogId, Result};
use crate::server::ServerEngine;
use crate::store::{Payload, Record, SessionStore, Update};
use sessio_django::codec::StoreCodec;

/// A temp file older than this was left by a crash (writes take milliseconds).
const ABANDONED_TEMP_FILE: std::time::Duration = std::time::Duration::from_secs(3600);

/// How many locks the sessions of one engine are spread over.
const LOCK_STRIPES: usize = 64;

/// Sessions as files in a directory.
#[derive(Debug, Clone)]
pub struct FileStore {
    inner: Arc<Inner>,
}

/// The `file` engine: the [`FileStore`] behind the core's [`ServerEngine`].
pub type FileEngine = ServerEngine<FileStore>;

/// Opens the `file` engine of `config` (see [`FileStore::open`]).
pub async fn open(config: &Config) -> Result<FileEngine> {
    Ok(ServerEngine::new(FileStore::open(config).await?, config))
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    prefix: String,
    codec: StoreCodec,
    cookie_age: i64,
    clock: Arc<dyn Clock>,
    // Striped locks: a save, a merge and a delete of one session never interleave within
    // this process, so a merge cannot lose a concurrent write or resurrect a deleted file.
    locks: Vec<std::sync::Mutex<()>>,
}

fn io_error(context: String) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Io { context, source }
}

/// The file engine's directory when `file_path` is unset: `$XDG_DATA_HOME/sessio/sessions`,
/// else `$HOME/.local/share/sessio/sessions`, else `sessio-<uid>/sessions` in the system
/// temp directory. Never the shared temp directory itself.
pub fn default_dir() -> PathBuf {
    default_dir_from(
        std::env::var_os("XDG_DATA_HOME"),
        std::env::var_os("HOME"),
        &std::env::temp_dir(),
        current_uid(),
    )
}

/// [`default_dir`] from the given values of `XDG_DATA_HOME` and `HOME`, the temp directory
/// and the user id (so it can be computed without reading the process environment).
pub fn default_dir_from(
    xdg_data_home: Option<OsString>,
    home: Option<OsString>,
    temp: &Path,
    uid: Option<u32>,
) -> PathBuf {
    // The XDG spec says to ignore a relative path; an empty HOME is no home.
    let absolute = |v: Option<OsString>| v.map(PathBuf::from).filter(|p| p.is_absolute());
    if let Some(data) = absolute(xdg_data_home) {
        data.join("sessio").join("sessions")
    } else if let Some(home) = absolute(home) {
        home.join(".local/share/sessio/sessions")
    } else {
        let own = uid.map_or_else(|| "sessio".to_owned(), |uid| format!("sessio-{uid}"));
        temp.join(own).join("sessions")
    }
}

#[cfg(unix)]
fn current_uid() -> Option<u32> {
    Some(rustix::process::geteuid().as_raw())
}

#[cfg(not(unix))]
fn current_uid() -> Option<u32> {
    None
}

/// Creates the default directory `dir` owner-only (0700, with any missing parents) unless it
/// exists, then checks that it and its parent belong to this user and that nobody else
/// can write to them (so a directory planted by another user in a shared temp directory
/// is refused).
pub fn prepare_default_dir(dir: &Path) -> Result<()> {
    if !dir.is_dir() {
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).map_err(io_error(format!(
            "cannot create the session directory {}: set SESSIO_FILE_PATH to a private \
             directory",
            dir.display()
        )))?;
    }
    #[cfg(unix)]
    for d in std::iter::once(dir).chain(dir.parent()) {
        use std::os::unix::fs::MetadataExt;
        let meta = fs::metadata(d).map_err(io_error(format!("cannot read {}", d.display())))?;
        if Some(meta.uid()) != current_uid() {
            return Err(Error::Config(format!(
                "the session directory {} belongs to another user (uid {}), who could plant \
                 session files in it: remove it, or set SESSIO_FILE_PATH to a private directory",
                d.display(),
                meta.uid()
            )));
        }
        refuse_world_writable(d)?;
    }
    Ok(())
}

/// Refuses a directory that every local user can write to: any of them could plant,
/// replace or remove session files (a sticky bit stops only the last).
fn refuse_world_writable(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(dir)
            .map_err(io_error(format!("cannot read {}", dir.display())))?
            .permissions()
            .mode();
        if mode & 0o002 != 0 {
            return Err(Error::Config(format!(
                "the session directory {} is writable by every local user (mode {:o}): run \
                 `chmod 700 {}`, or set file_path (SESSIO_FILE_PATH) to a private directory",
                dir.display(),
                mode & 0o7777,
                dir.display()
            )));
        }
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Whether `dir` exists and every local user can write to it (`sessio check` warns).
pub fn is_world_writable(dir: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(dir).is_ok_and(|m| m.is_dir() && m.permissions().mode() & 0o002 != 0)
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        false
    }
}

impl FileStore {
    /// Opens `config.file_path()`, which must exist and be private; when unset, the
    /// [`default_dir`], created owner-only if missing.
    pub async fn open(config: &Config) -> Result<Self> {
        let dir = match config.file_path() {
            Some(dir) => dir.to_path_buf(),
            None => {
                let dir = default_dir();
                prepare_default_dir(&dir)?;
                dir
            }
        };
        if !dir.is_dir() {
            return Err(Error::Config(format!(
                "file_path `{}` is not an existing directory: create it, or set SESSIO_FILE_PATH",
                dir.display()
            )));
        }
        refuse_world_writable(&dir)?;
        Ok(Self {
            inner: Arc::new(Inner {
                dir,
                prefix: config.cookie_name().to_owned(),
                codec: config.store_codec(),
                cookie_age: config.cookie_age(),
                clock: config.clock().clone(),
                locks: (0..LOCK_STRIPES)
                    .map(|_| std::sync::Mutex::new(()))
                    .collect(),
            }),
        })
    }

    /// The directory the sessions live in.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| Error::Io {
                context: "file engine task failed".into(),
                source: std::io::Error::other(e.to_string()),
            })?
    }
}

impl Inner {
    /// The file of `key`, or `None` for a key that could not have been issued.
    fn path(&self, key: &str) -> Option<PathBuf> {
        crate::key::is_well_formed(key).then(|| self.dir.join(format!("{}{key}", self.prefix)))
    }

    fn lock(&self, key: &str) -> std::sync::MutexGuard<'_, ()> {
        let h = key
            .bytes()
            .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize));
        self.locks[h % LOCK_STRIPES]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// When the session in `path` (decoded as `data`) expires: its own expiry date, or the
    /// last save (mtime) plus its inactivity limit or the cookie age.
    fn expires(&self, path: &Path, data: Option<&SessionData>) -> OffsetDateTime {
        let mtime = fs::metadata(path)
            .and_then(|m| m.modified())
            .map(OffsetDateTime::from)
            .unwrap_or_else(|_| self.now());
        // Django's file backend never expires a session with an integer expiry on load;
        // sessio counts it from the last save, as every other engine does.
        crate::expiry::date(data, mtime, self.cookie_age)
    }

    /// The text of the file at `path`, if there is one.
    fn read_text(&self, path: &Path) -> Result<Option<String>> {
        match fs::read_to_string(path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(format!(
                "cannot read session file {}",
                path.display()
            ))(e)),
        }
    }

    /// The session in `text` (Django's rule: unreadable data is an empty session).
    fn decode(&self, path: &Path, text: &str) -> Arc<SessionData> {
        if text.is_empty() {
            // Claimed by a creator that has not written yet.
            return Arc::default();
        }
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        self.codec
            .decode_or_empty(Some(text.trim_end()), &LogId(&name))
            .data
    }

    /// The live session in `path` and its text; an expired one is deleted.
    fn load(&self, path: &Path) -> Result<Option<(Arc<SessionData>, String)>> {
        let Some(text) = self.read_text(path)? else {
            return Ok(None);
        };
        let data = self.decode(path, &text);
        if self.expires(path, Some(&data)) <= self.now() {
            let _ = fs::remove_file(path);
            return Ok(None);
        }
        Ok(Some((data, text)))
    }

    /// Creates the file of `key` with `text` unless it exists; `false` when it does.
    fn insert(&self, key: &str, text: &str) -> Result<bool> {
        let path = self.path(key).ok_or_else(|| {
            Error::Config(format!(
                "`{key}` is not a valid session key for the file engine"
            ))
        })?;
        let _guard = self.lock(key);
        // Claim the name first (O_EXCL), so two creators never share a key.
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
            Err(e) => {
                return Err(io_error(format!(
                    "cannot create session file in {}",
                    self.dir.display()
                ))(e))
            }
        }
        self.write(&path, text)?;
        Ok(true)
    }

    /// Replaces the file of `key` with `text` if it exists (and still holds `expected`; a
    /// version that is not stored text, none this store hands out, never matches).
    fn update(&self, key: &str, text: &str, expected: Option<Option<String>>) -> Result<Update> {
        let Some(path) = self.path(key) else {
            return Ok(Update::Gone);
        };
        let _guard = self.lock(key);
        let Some((_, stored)) = self.load(&path)? else {
            // Deleted by a concurrent logout, or expired: never resurrect it.
            return Ok(Update::Gone);
        };
        if expected.is_some_and(|e| e.as_deref() != Some(stored.as_str())) {
            return Ok(Update::Conflict);
        }
        self.write(&path, text)?;
        Ok(Update::Stored(Some(Version::stored(text))))
    }

    /// Writes `text` to `path` through a temp file and a rename, with mtime = now.
    fn write(&self, path: &Path, text: &str) -> Result<()> {
        let now = self.now();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("session");
        let ctx = || format!("cannot write session file {}", path.display());
        let mut tmp = tempfile::Builder::new()
            .prefix(&format!("{name}_out_"))
            .tempfile_in(&self.dir)
            .map_err(io_error(ctx()))?;
        tmp.write_all(text.as_bytes()).map_err(io_error(ctx()))?;
        tmp.as_file().sync_data().map_err(io_error(ctx()))?;
        let mtime = SystemTime::from(now);
        tmp.as_file().set_modified(mtime).map_err(io_error(ctx()))?;
        tmp.persist(path).map_err(|e| io_error(ctx())(e.error))?;
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<()> {
        let Some(path) = self.path(key) else {
            return Ok(());
        };
        let _guard = self.lock(key);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(format!(
                "cannot delete session file {}",
                path.display()
            ))(e)),
        }
    }

    fn clear_expired(&self, limit: usize) -> Result<u64> {
        let now = self.now();
        let entries = fs::read_dir(&self.dir).map_err(io_error(format!(
            "cannot list session directory {}",
            self.dir.display()
        )))?;
        let mut deleted = 0u64;
        for entry in entries.flatten() {
            if deleted as usize >= limit {
                break;
            }
            let name = entry.file_name();
            let Some(key) = name.to_str().and_then(|n| n.strip_prefix(&self.prefix)) else {
                continue;
            };
            // A temp file left by a crash between write and rename: never a session,
            // but a copy of session data, so it goes once it is surely abandoned.
            if key.contains("_out_") {
                let abandoned = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .map(|t| t.elapsed().unwrap_or_default() > ABANDONED_TEMP_FILE)
                    .unwrap_or(false);
                if abandoned {
                    let _ = fs::remove_file(entry.path());
                }
                continue;
            }
            let Some(path) = self.path(key) else {
                continue; // temp files and foreign files are not sessions
            };
            let Some(text) = self.read_text(&path)? else {
                continue;
            };
            let data = self.decode(&path, &text);
            if self.expires(&path, Some(&data)) < now {
                match fs::remove_file(&path) {
                    Ok(()) => deleted += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(io_error(format!(
                            "cannot delete session file {}",
                            path.display()
                        ))(e))
                    }
                }
            }
        }
        Ok(deleted)
    }
}

impl SessionStore for FileStore {
    fn name(&self) -> &'static str {
        "file"
    }

    async fn load(&self, id: &str) -> Result<Option<Record>> {
        let id = id.to_owned();
        self.blocking(move |inner| {
            let Some(path) = inner.path(&id) else {
                return Ok(None);
            };
            // Decoded here already (a file's expiry depends on its data, as in Django's
            // file backend), so the core gets the data, with the text as its version.
            Ok(inner.load(&path)?.map(|(data, text)| Record::Data {
                data,
                version: Version::stored(text),
            }))
        })
        .await
    }

    async fn insert(
        &self,
        id: &str,
        record: &Payload<'_>,
        _expires: OffsetDateTime,
    ) -> Result<bool> {
        let (id, text) = (id.to_owned(), record.text().to_owned());
        self.blocking(move |inner| inner.insert(&id, &text)).await
    }

    async fn update(
        &self,
        id: &str,
        record: &Payload<'_>,
        _expires: OffsetDateTime,
        expected: Option<&Version>,
    ) -> Result<Update> {
        let (id, text) = (id.to_owned(), record.text().to_owned());
        let expected = expected.map(|v| v.as_stored().map(str::to_owned));
        self.blocking(move |inner| inner.update(&id, &text, expected))
            .await
    }

    async fn delete(&self, id: &str) -> Result<()> {
        let id = id.to_owned();
        self.blocking(move |inner| inner.delete(&id)).await
    }

    async fn clear_expired(&self, limit: usize) -> Result<u64> {
        self.blocking(move |inner| inner.clear_expired(limit)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    use crate::engine::SessionEngine;

    async fn engine(dir: &Path) -> FileEngine {
        let config = Config::builder()
            .secret_key("test-secret")
            .allow_weak_secret_key(true)
            .file_path(dir)
            .clock(ManualClock::at_unix(1_700_000_000))
            .build()
            .unwrap();
        open(&config).await.unwrap()
    }

    #[tokio::test]
    async fn path_traversal_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let e = engine(dir.path()).await;
        for bad in ["../../etc/passwd", "a/b/c", "a\\b\\c", "ABC12345", ""] {
            assert_eq!(e.load(bad).await.unwrap(), None, "{bad}");
            assert!(!e.exists(bad).await.unwrap());
            e.delete(bad).await.unwrap();
            assert!(matches!(
                e.save(bad, &SessionData::new(), OffsetDateTime::now_utc())
                    .await,
                Err(Error::SessionInterrupted)
            ));
        }
    }

    #[tokio::test]
    async fn files_are_django_format_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let e = engine(dir.path()).await;
        let data: SessionData =
            crate::value::object_from_str(r#"{"user_id":42,"cart":[1,2]}"#).unwrap();
        let key = e.create(&data, OffsetDateTime::now_utc()).await.unwrap();
        let path = dir.path().join(format!("sessionid{key}"));
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "eyJ1c2VyX2lkIjo0MiwiY2FydCI6WzEsMl19:1r31eq:EuHZHOfZueYvjUO7CERx-u8g7grivz5XfByNK-8nVNg"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        // No temp files are left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[tokio::test]
    async fn missing_directory_is_a_clear_error() {
        let config = Config::builder()
            .secret_key("test-secret")
            .allow_weak_secret_key(true)
            .file_path("/nonexistent/sessio/dir")
            .build()
            .unwrap();
        let err = open(&config).await.unwrap_err().to_string();
        assert!(err.contains("/nonexistent/sessio/dir"), "{err}");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_world_writable_directory_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        for mode in [0o777, 0o1777, 0o703] {
            fs::set_permissions(dir.path(), fs::Permissions::from_mode(mode)).unwrap();
            let config = Config::builder()
                .secret_key("test-secret")
                .allow_weak_secret_key(true)
                .file_path(dir.path())
                .build()
                .unwrap();
            let err = open(&config).await.unwrap_err().to_string();
            assert!(
                err.contains(&dir.path().display().to_string())
                    && err.contains("chmod 700")
                    && err.contains("SESSIO_FILE_PATH"),
                "{err}"
            );
            assert!(is_world_writable(dir.path()));
        }
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
        assert!(!is_world_writable(dir.path()));
        engine(dir.path()).await;
    }

    #[test]
    fn the_default_directory_is_the_users_own() {
        let temp = Path::new("/tmp");
        let os = |s: &str| Some(OsString::from(s));
        assert_eq!(
            default_dir_from(os("/data"), os("/home/u"), temp, Some(1000)),
            Path::new("/data/sessio/sessions")
        );
        // A relative XDG_DATA_HOME is ignored, as the XDG spec says.
        assert_eq!(
            default_dir_from(os("data"), os("/home/u"), temp, Some(1000)),
            Path::new("/home/u/.local/share/sessio/sessions")
        );
        assert_eq!(
            default_dir_from(None, os(""), temp, Some(1000)),
            Path::new("/tmp/sessio-1000/sessions")
        );
        // Never the shared temp directory itself.
        assert_ne!(default_dir_from(None, None, temp, None), temp);
    }

    #[cfg(unix)]
    #[test]
    fn the_default_directory_is_created_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let home = tempfile::tempdir().unwrap();
        let dir = default_dir_from(None, Some(home.path().into()), Path::new("/tmp"), None);
        prepare_default_dir(&dir).unwrap();
        for d in [&dir, dir.parent().unwrap()] {
            let mode = fs::metadata(d).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{}", d.display());
        }
        // Again: it exists, and is still fine.
        prepare_default_dir(&dir).unwrap();
        // A default directory that others can write to is refused, not used.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        let err = prepare_default_dir(&dir).unwrap_err().to_string();
        assert!(err.contains("chmod 700"), "{err}");
    }

    #[tokio::test]
    async fn crash_leftover_temp_files_are_cleaned_once_abandoned() {
        let dir = tempfile::tempdir().unwrap();
        let e = engine(dir.path()).await;
        let stale = dir.path().join("sessionidabc_out_x1");
        let fresh = dir.path().join("sessionidabc_out_x2");
        fs::write(&stale, "x").unwrap();
        fs::write(&fresh, "x").unwrap();
        let long_ago = SystemTime::now() - std::time::Duration::from_secs(7200);
        fs::File::options()
            .write(true)
            .open(&stale)
            .unwrap()
            .set_modified(long_ago)
            .unwrap();
        assert_eq!(e.clear_expired_batch(100).await.unwrap(), 0, "not sessions");
        assert!(!stale.exists());
        assert!(fresh.exists(), "a write may still be in flight");
    }

    #[tokio::test]
    async fn clear_expired_uses_expiry_then_mtime() {
        // Django's FileSessionTests.test_clearsessions_command: +3600 kept, -3600 and an
        // old file without expiry deleted.
        let dir = tempfile::tempdir().unwrap();
        let e = engine(dir.path()).await;
        let mut keep = SessionData::new();
        keep.insert("_session_expiry".into(), "2023-11-14T23:13:20+00:00".into());
        let mut gone = SessionData::new();
        gone.insert("_session_expiry".into(), "2023-11-14T21:13:20+00:00".into());
        let now = OffsetDateTime::now_utc();
        let kept = e.create(&keep, now).await.unwrap();
        e.create(&gone, now).await.unwrap();
        let old = e.create(&SessionData::new(), now).await.unwrap();
        let old_path = dir.path().join(format!("sessionid{old}"));
        let long_ago =
            SystemTime::from(OffsetDateTime::from_unix_timestamp(1_600_000_000).unwrap());
        fs::File::options()
            .write(true)
            .open(&old_path)
            .unwrap()
            .set_modified(long_ago)
            .unwrap();
        assert_eq!(e.clear_expired_batch(100).await.unwrap(), 2);
        assert!(e.exists(&kept).await.unwrap());
        assert!(!e.exists(&old).await.unwrap());
    }
}
