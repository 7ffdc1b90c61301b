//! `sessio migrate` and `sessio clear-expired`: the store's housekeeping.

use std::io::IsTerminal as _;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use sessio::{ConfigBuilder, EngineKind, SecretKey, SessionManager};

use crate::store::{self, StoreArgs};
use crate::UsageError;

/// Show a progress bar only when the work takes more than this many batches.
const PROGRESS_BAR_BATCHES: u64 = 10;

/// Housekeeping never signs or verifies session data, so it needs no real secret key:
/// a weak one is fine, and without one a throwaway key stands in. Operators can run
/// `sessio migrate` without handing the command the production secret.
fn housekeeping(builder: ConfigBuilder) -> anyhow::Result<ConfigBuilder> {
    let builder = builder.allow_weak_secret_key(true);
    if builder.has_secret_key() {
        return Ok(builder);
    }
    Ok(builder.secret_key(SecretKey::generate()?.expose()))
}

/// Prepares the store of the configured engine: creates or upgrades the session table
/// (db, cached-db), creates the directory (file), checks that the cache answers (cache);
/// cookie engines have nothing to prepare.
pub(crate) async fn migrate(builder: ConfigBuilder, store: &StoreArgs) -> anyhow::Result<()> {
    let builder = store.apply(housekeeping(builder)?);
    // Opening without auto-migrate tells a missing table from an existing one, so the
    // message can say which; only then is the schema created.
    let config = builder.clone().auto_migrate(false).build()?;
    let engine = config.engine();
    match engine {
        EngineKind::Db | EngineKind::CachedDb => {}
        EngineKind::Cache => {
            open(&config).await?;
            println!(
                "The cache engine has no schema: nothing to migrate in {}.",
                sessio::redact_url(config.cache_url())
            );
            return Ok(());
        }
        EngineKind::File => return migrate_directory(&config).await,
        EngineKind::SignedCookies | EngineKind::EncryptedCookies => {
            println!(
                "The {engine} engine keeps sessions in the browsers' cookies: there is nothing \
                 to migrate."
            );
            return Ok(());
        }
        _ => {
            // An engine this command does not know yet: its own migrate decides.
            open(&config).await?.migrate().await?;
            println!("Migrated the {engine} engine.");
            return Ok(());
        }
    }
    let database = sessio::redact_url(config.database_url());
    let (sessions, created) = match SessionManager::open(config.clone()).await {
        Ok(sessions) => (sessions, None),
        Err(sessio::Error::SchemaMissing { table, .. }) => {
            let config = builder.auto_migrate(true).build()?;
            (open(&config).await?, Some(table))
        }
        Err(e) => return Err(store::open_error(&config, e)),
    };
    sessions
        .migrate()
        .await
        .with_context(|| format!("cannot migrate the session database {database}"))?;
    match created {
        Some(table) => println!("Created the session table {table} in {database}."),
        None => println!("Migrated {database}: the session table is up to date."),
    }
    Ok(())
}

/// `migrate` for the file engine: the directory, created owner-only when missing.
async fn migrate_directory(config: &sessio::Config) -> anyhow::Result<()> {
    let dir = store::file_dir(config);
    let created = !dir.is_dir();
    if created {
        store::create_private_dir_all(&dir)
            .with_context(|| format!("cannot create the session directory {}", dir.display()))?;
    }
    // Opening checks that the engine can use it.
    open(config).await?;
    if created {
        println!("Created the session directory {}.", dir.display());
    } else {
        println!(
            "The session directory {} exists: nothing to migrate.",
            dir.display()
        );
    }
    Ok(())
}

/// Deletes expired sessions batch by batch, with a progress bar for long runs.
pub(crate) async fn clear_expired(
    builder: ConfigBuilder,
    store: &StoreArgs,
    batch_size: usize,
) -> anyhow::Result<()> {
    let had_key = builder.has_secret_key();
    let config = store.apply(housekeeping(builder)?).build()?;
    let engine = config.engine();
    if is_cookie_engine(engine) {
        println!(
            "The {engine} engine keeps sessions in the browsers' cookies: there is nothing to \
             clear on the server (expired cookies are refused when they come back)."
        );
        return Ok(());
    }
    if engine == EngineKind::Cache {
        // Opened all the same: a cache that does not answer is worth an error.
        open(&config).await?;
        println!(
            "The cache engine at {} drops expired sessions by itself (each has a TTL): \
             there is nothing to clear.",
            sessio::redact_url(config.cache_url())
        );
        return Ok(());
    }
    if engine == EngineKind::File && !had_key {
        // A file's expiry date is inside its signed data: with a stand-in key every file
        // would count as corrupted and be judged by its age alone.
        return Err(UsageError(
            "the file engine keeps each session's expiry date in its signed data: set \
             SESSIO_SECRET_KEY (or secret_key in --config) to the app's key"
                .into(),
        )
        .into());
    }
    let sessions = open(&config).await?;
    let place = match engine {
        EngineKind::File => format!("{}", store::file_dir(&config).display()),
        _ => sessio::redact_url(config.database_url()),
    };
    let total = sessions
        .count_expired()
        .await
        .context("cannot count the expired sessions")?;
    let bar = total
        .filter(|&n| n > PROGRESS_BAR_BATCHES * batch_size as u64)
        .filter(|_| std::io::stderr().is_terminal())
        .map(progress_bar);
    let cleared = sessions
        .clear_expired(batch_size, |done| {
            if let Some(bar) = &bar {
                bar.set_position(done);
            }
        })
        .await;
    let deleted = match cleared {
        Ok(n) => n,
        // An engine that expires sessions by itself.
        Err(sessio::Error::Unsupported { engine, .. }) => {
            println!("The {engine} engine expires sessions by itself: there is nothing to clear.");
            return Ok(());
        }
        Err(e) => return Err(e).context("cannot delete the expired sessions"),
    };
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    println!("{}", deleted_message(deleted, &place));
    Ok(())
}

fn is_cookie_engine(engine: EngineKind) -> bool {
    matches!(
        engine,
        EngineKind::SignedCookies | EngineKind::EncryptedCookies
    )
}

/// Opens the configured engine; a store that fails is one line naming it.
async fn open(config: &sessio::Config) -> anyhow::Result<SessionManager> {
    SessionManager::open(config.clone())
        .await
        .map_err(|e| store::open_error(config, e))
}

fn progress_bar(total: u64) -> ProgressBar {
    let style = ProgressStyle::with_template(
        "Deleting expired sessions [{wide_bar}] {human_pos}/{human_len} ({eta})",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    ProgressBar::new(total).with_style(style)
}

/// `Deleted N expired sessions from <store>.` (Django's clearsessions says nothing; a
/// count is friendlier.)
fn deleted_message(n: u64, place: &str) -> String {
    format!(
        "Deleted {n} expired session{} from {place}.",
        if n == 1 { "" } else { "s" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_count_properly() {
        assert_eq!(
            deleted_message(0, "x"),
            "Deleted 0 expired sessions from x."
        );
        assert_eq!(deleted_message(1, "x"), "Deleted 1 expired session from x.");
        assert_eq!(
            deleted_message(2500, "x"),
            "Deleted 2500 expired sessions from x."
        );
    }

    #[test]
    fn housekeeping_needs_no_real_key() {
        assert!(housekeeping(sessio::Config::builder())
            .unwrap()
            .build()
            .is_ok());
        assert!(housekeeping(sessio::Config::builder().secret_key("short"))
            .unwrap()
            .build()
            .is_ok());
    }

    #[tokio::test]
    async fn signed_cookies_have_nothing_to_clear() {
        for engine in [EngineKind::SignedCookies, EngineKind::EncryptedCookies] {
            let builder = sessio::Config::builder().engine(engine);
            clear_expired(builder, &StoreArgs::default(), 10)
                .await
                .unwrap();
        }
    }
}
