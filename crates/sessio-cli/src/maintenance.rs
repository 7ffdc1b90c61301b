//! `sessio migrate` and `sessio clear-expired`: the store's housekeeping.

use std::io::IsTerminal as _;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use sessio::{ConfigBuilder, EngineKind, SecretKey, SessionManager};

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

/// Opens the db engine and creates or upgrades its table.
pub(crate) async fn migrate(
    builder: ConfigBuilder,
    database_url: Option<String>,
) -> anyhow::Result<()> {
    let mut builder = housekeeping(builder)?.engine(EngineKind::Db);
    if let Some(url) = database_url {
        builder = builder.database_url(url);
    }
    // Opening without auto-migrate tells a missing table from an existing one, so the
    // message can say which; only then is the schema created.
    let config = builder.clone().auto_migrate(false).build()?;
    let url = shown_url(config.database_url());
    let cannot_open = || format!("cannot open the session database{url}");
    let (sessions, created) = match SessionManager::open(config).await {
        Ok(sessions) => (sessions, None),
        Err(sessio::Error::SchemaMissing { table, .. }) => {
            let config = builder.auto_migrate(true).build()?;
            let sessions = SessionManager::open(config)
                .await
                .with_context(cannot_open)?;
            (sessions, Some(table))
        }
        Err(e) => return Err(e).with_context(cannot_open),
    };
    sessions
        .migrate()
        .await
        .with_context(|| format!("cannot migrate the session database{url}"))?;
    match created {
        Some(table) => println!("Created the session table {table} in{url}."),
        None => println!("Migrated{url}: the session table is up to date."),
    }
    Ok(())
}

/// Deletes expired sessions batch by batch, with a progress bar for long runs.
pub(crate) async fn clear_expired(
    builder: ConfigBuilder,
    database_url: Option<String>,
    batch_size: usize,
) -> anyhow::Result<()> {
    let mut builder = housekeeping(builder)?;
    if let Some(url) = database_url {
        builder = builder.engine(EngineKind::Db).database_url(url);
    }
    let config = builder.build()?;
    let engine = config.engine();
    let url = shown_url(config.database_url());
    let sessions = SessionManager::open(config)
        .await
        .with_context(|| match engine {
            EngineKind::Db => format!("cannot open the session database{url}"),
            _ => format!("cannot open the {engine} session engine"),
        })?;
    if sessions.engine().is_client_side() {
        println!(
            "The {} engine keeps sessions in the browsers' cookies: there is nothing to clear \
             on the server (expired cookies are refused when they come back).",
            sessions.engine().name()
        );
        return Ok(());
    }
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
        // Caches drop expired sessions by themselves (TTL).
        Err(sessio::Error::Unsupported { engine, .. }) => {
            println!("The {engine} engine expires sessions by itself: there is nothing to clear.");
            return Ok(());
        }
        Err(e) => return Err(e).context("cannot delete the expired sessions"),
    };
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    println!("{}", deleted_message(deleted));
    Ok(())
}

/// ` <url>` for messages when it is a SQLite URL, which holds no password; other URLs do
/// not open, and sessio's own error names them with the password hidden.
fn shown_url(url: &str) -> String {
    if url.starts_with("sqlite:") {
        format!(" {url}")
    } else {
        String::new()
    }
}

fn progress_bar(total: u64) -> ProgressBar {
    let style = ProgressStyle::with_template(
        "Deleting expired sessions [{wide_bar}] {human_pos}/{human_len} ({eta})",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    ProgressBar::new(total).with_style(style)
}

/// `Deleted N expired sessions.` (Django's clearsessions says nothing; a count is friendlier.)
fn deleted_message(n: u64) -> String {
    format!(
        "Deleted {n} expired session{}.",
        if n == 1 { "" } else { "s" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_count_properly() {
        assert_eq!(deleted_message(0), "Deleted 0 expired sessions.");
        assert_eq!(deleted_message(1), "Deleted 1 expired session.");
        assert_eq!(deleted_message(2500), "Deleted 2500 expired sessions.");
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
        let builder = sessio::Config::builder().engine(EngineKind::SignedCookies);
        clear_expired(builder, None, 10).await.unwrap();
    }
}
