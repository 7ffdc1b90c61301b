//! `sessio check`: the settings' deployment warnings, printed as Django's `check --deploy`
//! prints them.

use std::process::ExitCode;

use std::path::Path;

use sessio::{Config, CookieOverflow, EngineKind};
use sessio::{ConfigBuilder, SecretKey};

/// The id given to a missing secret key: the same as a weak one, since the fix is the same.
const NO_KEY_ID: &str = "sessio.W001";

/// Every finding for these settings, as `(id, message)`.
///
/// A missing or weak secret key is a finding, not a failure: the rest of the settings are
/// still checked.
pub(crate) fn findings(builder: ConfigBuilder) -> sessio::Result<Vec<(String, String)>> {
    let mut found = Vec::new();
    let builder = if builder.has_secret_key() {
        builder
    } else {
        found.push((
            NO_KEY_ID.to_owned(),
            "no secret key is set: set SESSIO_SECRET_KEY to 50+ random characters, for \
             example the output of `sessio generate-key`"
                .to_owned(),
        ));
        // A strong stand-in, so that only the real settings are judged.
        builder.secret_key(SecretKey::generate()?.expose())
    };
    let config = builder.allow_weak_secret_key(true).build()?;
    found.extend(
        config
            .deploy_warnings()
            .into_iter()
            .map(|(id, message)| (id.to_owned(), message)),
    );
    if let Some(dir) = world_writable_file_dir(&config) {
        found.push((
            "sessio.W040".to_owned(),
            format!(
                "the session directory {} is writable by every local user, who could plant \
                 or replace session files (the file engine refuses to open it): run `chmod \
                 700 {}`, or set SESSIO_FILE_PATH to a private directory",
                dir.display(),
                dir.display()
            ),
        ));
    }
    Ok(found)
}

/// The file engine's directory, when these settings use it and everyone can write to it.
fn world_writable_file_dir(config: &Config) -> Option<std::path::PathBuf> {
    let uses_files = config.engine() == EngineKind::File
        || config.cookie_overflow() == CookieOverflow::Spill(EngineKind::File)
        || config.cookie_revocation() == Some(EngineKind::File);
    let dir = config
        .file_path()
        .map_or_else(sessio::file::default_dir, Path::to_path_buf);
    (uses_files && sessio::file::is_world_writable(&dir)).then_some(dir)
}

/// Whether a finding should fail the check (warnings and errors do, infos do not).
fn is_serious(id: &str) -> bool {
    id.starts_with("sessio.W") || id.starts_with("sessio.E")
}

/// The report, grouped as Django groups it.
pub(crate) fn render(found: &[(String, String)]) -> String {
    let mut out = String::new();
    if !found.is_empty() {
        out.push_str("System check identified some issues:\n");
        for (title, prefix) in [
            ("ERRORS", "sessio.E"),
            ("WARNINGS", "sessio.W"),
            ("INFOS", "sessio.I"),
        ] {
            let group: Vec<_> = found
                .iter()
                .filter(|(id, _)| id.starts_with(prefix))
                .collect();
            if group.is_empty() {
                continue;
            }
            out.push_str(&format!("\n{title}:\n"));
            for (id, message) in group {
                out.push_str(&format!("{id}: {message}\n"));
            }
        }
        // Ids of another shape still get printed.
        for (id, message) in found.iter().filter(|(id, _)| {
            !["sessio.E", "sessio.W", "sessio.I"]
                .iter()
                .any(|p| id.starts_with(p))
        }) {
            out.push_str(&format!("\n{id}: {message}\n"));
        }
        out.push('\n');
    }
    out.push_str(&match found.len() {
        0 => "System check identified no issues.\n".to_owned(),
        1 => "System check identified 1 issue.\n".to_owned(),
        n => format!("System check identified {n} issues.\n"),
    });
    out
}

/// `sessio check`: exit 1 when there is any warning or error.
pub(crate) fn run(builder: ConfigBuilder) -> anyhow::Result<ExitCode> {
    let found = findings(builder)?;
    print!("{}", render(&found));
    Ok(if found.iter().any(|(id, _)| is_serious(id)) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0123456789abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH";

    fn ids(builder: ConfigBuilder) -> Vec<String> {
        findings(builder)
            .unwrap()
            .into_iter()
            .map(|(id, _)| id)
            .collect()
    }

    #[test]
    fn a_missing_key_is_a_finding() {
        let found = ids(sessio::Config::builder().cookie_secure(true));
        assert_eq!(found, ["sessio.W001"]);
    }

    #[test]
    fn a_production_config_is_clean() {
        let found = ids(sessio::Config::builder()
            .secret_key(KEY)
            .cookie_secure(true));
        assert!(found.is_empty(), "{found:?}");
        assert_eq!(render(&[]), "System check identified no issues.\n");
    }

    #[test]
    fn infos_are_listed_but_do_not_fail() {
        let found = findings(
            sessio::Config::builder()
                .secret_key(KEY)
                .cookie_secure(true)
                .engine(sessio::EngineKind::SignedCookies),
        )
        .unwrap();
        assert!(found.iter().all(|(id, _)| !is_serious(id)));
        let text = render(&found);
        assert!(text.contains("INFOS:\nsessio.I020: "), "{text}");
        assert!(text.ends_with("System check identified 1 issue.\n"));
    }
}
