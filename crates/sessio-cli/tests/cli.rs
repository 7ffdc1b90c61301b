//! The `sessio` binary, run as a user runs it. Each test runs in its own temp dir with no
//! `SESSIO_*` variables but the ones it sets.

use std::path::Path;

use serde_json::Value;
use tempfile::TempDir;

/// Django's own vector: `{"user_id": 42, "cart": [1, 2]}` signed at 1700000000 with the
/// key `test-secret`, as a signed cookie...
const COOKIE: &str =
    "eyJ1c2VyX2lkIjo0MiwiY2FydCI6WzEsMl19:1r31eq:oxQqvCdpRcSE-SQ0t06vrhPBjfo8zV8Nj1odplkJIcU";
/// ... and as db `session_data`.
const STORED: &str =
    "eyJ1c2VyX2lkIjo0MiwiY2FydCI6WzEsMl19:1r31eq:EuHZHOfZueYvjUO7CERx-u8g7grivz5XfByNK-8nVNg";
const STRONG_KEY: &str = "cli-tests-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `sessio args...` in `dir` with exactly the `SESSIO_*` variables in `env`.
fn sessio(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = assert_cmd::cargo::cargo_bin_cmd!("sessio");
    cmd.current_dir(dir).env_remove("RUST_LOG");
    for (name, _) in std::env::vars() {
        if name.starts_with("SESSIO_") {
            cmd.env_remove(name);
        }
    }
    cmd.envs(env.iter().copied()).args(args);
    let out = cmd.output().unwrap();
    Run {
        code: out.status.code().expect("exited normally"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

#[test]
fn inspect_decodes_a_valid_cookie() {
    let dir = TempDir::new().unwrap();
    let run = sessio(
        dir.path(),
        &[
            "inspect",
            COOKIE,
            "--secret",
            "test-secret",
            "--max-age",
            "999999999999",
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let data: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(data["user_id"], 42);
    assert_eq!(data["cart"], serde_json::json!([1, 2]));
    assert!(run.stderr.contains("status: valid"), "{}", run.stderr);
    assert!(run.stderr.contains("(cookies)"));
    assert!(run.stderr.contains("key:    current"));
    assert!(run.stderr.contains("2023-11-14T22:13:20Z"));
}

#[test]
fn inspect_reports_an_expired_cookie() {
    let dir = TempDir::new().unwrap();
    let run = sessio(
        dir.path(),
        &["inspect", COOKIE, "--secret", "test-secret"],
        &[],
    );
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("status: expired"), "{}", run.stderr);
    assert!(run.stderr.contains("(max age 14 days)"));
    // Expired data is still shown: that is what one inspects it for.
    assert!(run.stdout.contains("\"user_id\": 42"));
}

#[test]
fn inspect_reports_tampering() {
    let dir = TempDir::new().unwrap();
    let tampered = COOKIE.replacen("eyJ1c2VyX2lkIjo0Mi", "eyJ1c2VyX2lkIjo0My", 1);
    let run = sessio(
        dir.path(),
        &[
            "inspect",
            &tampered,
            "--secret",
            "test-secret",
            "--max-age",
            "999999999999",
        ],
        &[],
    );
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("tampered"), "{}", run.stderr);
    assert!(run.stdout.is_empty(), "no data from a bad signature");

    let run = sessio(dir.path(), &["inspect", "garbage", "--secret", "k"], &[]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("malformed"), "{}", run.stderr);
}

#[test]
fn inspect_decodes_db_session_data_with_the_store_salt() {
    let dir = TempDir::new().unwrap();
    // The key from SESSIO_SECRET_KEY; no max age applies to stored data.
    let run = sessio(
        dir.path(),
        &["inspect", STORED],
        &[("SESSIO_SECRET_KEY", "test-secret")],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("\"user_id\": 42"));
    assert!(run
        .stderr
        .contains("salt:   django.contrib.sessions.SessionStore (store)"));

    let run = sessio(
        dir.path(),
        &[
            "inspect",
            STORED,
            "--secret",
            "test-secret",
            "--salt",
            "cookies",
        ],
        &[],
    );
    assert_eq!(run.code, 1, "wrong salt");
    assert!(run.stderr.contains("tampered"));
}

#[test]
fn inspect_json_is_one_object() {
    let dir = TempDir::new().unwrap();
    let run = sessio(
        dir.path(),
        &[
            "inspect",
            &format!("sessionid={COOKIE}"),
            "--secret",
            "new-secret",
            "--fallback-secret",
            "test-secret",
            "--json",
        ],
        &[],
    );
    assert_eq!(run.code, 1, "expired by default");
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["status"], "expired");
    assert_eq!(report["key"], "fallback #1");
    assert_eq!(report["salt_kind"], "cookies");
    assert_eq!(report["signed_at"], "2023-11-14T22:13:20Z");
    assert_eq!(report["max_age_seconds"], 1_209_600);
    assert!(report["expired_by_seconds"].as_i64().unwrap() > 0);
    assert_eq!(report["data"]["user_id"], 42);
    assert!(run.stderr.is_empty(), "{}", run.stderr);
}

#[test]
fn inspect_without_a_key_is_a_usage_error() {
    let dir = TempDir::new().unwrap();
    let run = sessio(dir.path(), &["inspect", COOKIE], &[]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("error: no secret key"),
        "{}",
        run.stderr
    );
}

#[test]
fn check_lists_weak_settings_and_fails() {
    let dir = TempDir::new().unwrap();
    let run = sessio(
        dir.path(),
        &["check", "--deploy"],
        &[("SESSIO_SECRET_KEY", "short")],
    );
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("sessio.W001: "), "{}", run.stdout);
    assert!(run.stdout.contains("sessio.W010: "));
    assert!(run.stdout.contains("System check identified 2 issues."));

    let run = sessio(dir.path(), &["check"], &[]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("sessio.W001: no secret key is set"));
}

#[test]
fn check_passes_a_production_config_file() {
    let dir = TempDir::new().unwrap();
    let file = dir.path().join("sessio.toml");
    std::fs::write(
        &file,
        format!("secret_key = \"{STRONG_KEY}\"\ncookie_secure = true\n"),
    )
    .unwrap();
    let run = sessio(
        dir.path(),
        &["--config", file.to_str().unwrap(), "check"],
        &[],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("System check identified no issues."));

    // The same file through SESSIO_CONFIG, with a variable on top.
    let run = sessio(
        dir.path(),
        &["check"],
        &[
            ("SESSIO_CONFIG", file.to_str().unwrap()),
            ("SESSIO_COOKIE_SECURE", "false"),
        ],
    );
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("sessio.W010"));
}

#[test]
fn a_bad_config_file_is_an_error_with_its_path() {
    let dir = TempDir::new().unwrap();
    let file = dir.path().join("broken.toml");
    std::fs::write(&file, "cookie_age = \"soon\"\n").unwrap();
    let run = sessio(
        dir.path(),
        &["--config", file.to_str().unwrap(), "check"],
        &[],
    );
    assert_eq!(run.code, 1);
    assert!(run.stderr.starts_with("error: "), "{}", run.stderr);
    assert!(run.stderr.contains("broken.toml"));
}

#[test]
fn generate_key_prints_a_strong_key() {
    let dir = TempDir::new().unwrap();
    let first = sessio(dir.path(), &["generate-key"], &[]);
    let second = sessio(dir.path(), &["generate-key"], &[]);
    assert_eq!(first.code, 0);
    let key = first.stdout.trim_end();
    assert_eq!(key.chars().count(), 64);
    assert_ne!(key, second.stdout.trim_end());
    // The key passes the checks it is made for.
    let run = sessio(
        dir.path(),
        &["check"],
        &[("SESSIO_SECRET_KEY", key), ("SESSIO_COOKIE_SECURE", "true")],
    );
    assert_eq!(run.code, 0, "{}", run.stdout);
}

#[test]
fn migrate_then_clear_expired_on_sqlite() {
    let dir = TempDir::new().unwrap();
    let url = format!("sqlite://{}", dir.path().join("sessions.sqlite3").display());
    let env = [
        ("SESSIO_SECRET_KEY", STRONG_KEY),
        ("SESSIO_DATABASE_URL", url.as_str()),
    ];
    // Before migrate, the store says what to do.
    let run = sessio(dir.path(), &["clear-expired"], &env);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("sessio migrate"), "{}", run.stderr);

    let run = sessio(dir.path(), &["migrate"], &env);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("Created the session table django_session in sqlite://"),
        "{}",
        run.stdout
    );
    let again = sessio(dir.path(), &["migrate"], &env);
    assert_eq!(again.code, 0, "migrate is idempotent: {}", again.stderr);
    assert!(again.stdout.contains("is up to date"), "{}", again.stdout);

    let run = sessio(dir.path(), &["clear-expired"], &env);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.trim(), "Deleted 0 expired sessions.");
}

#[test]
fn clear_expired_deletes_in_batches() {
    let dir = TempDir::new().unwrap();
    let url = format!("sqlite://{}", dir.path().join("sessions.sqlite3").display());
    // Five sessions written a month ago by an app with a two-week cookie age, and one now.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let config = |clock: sessio::clock::ManualClock| {
            sessio::Config::builder()
                .secret_key(STRONG_KEY)
                .database_url(url.clone())
                .auto_migrate(true)
                .clock(clock)
                .build()
                .unwrap()
        };
        let month_ago = time::OffsetDateTime::now_utc() - time::Duration::days(30);
        let old = sessio::SessionManager::open(config(sessio::clock::ManualClock::new(month_ago)))
            .await
            .unwrap();
        for i in 0..5 {
            let session = old.session(None);
            session.insert("n", i).await.unwrap();
            session.save().await.unwrap();
        }
        let now = time::OffsetDateTime::now_utc();
        let current = sessio::SessionManager::open(config(sessio::clock::ManualClock::new(now)))
            .await
            .unwrap();
        let session = current.session(None);
        session.insert("n", 99).await.unwrap();
        session.save().await.unwrap();
    });
    let run = sessio(
        dir.path(),
        &["clear-expired", "--database-url", &url, "--batch-size", "2"],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.trim(), "Deleted 5 expired sessions.");
    let run = sessio(dir.path(), &["clear-expired", "--database-url", &url], &[]);
    assert_eq!(run.stdout.trim(), "Deleted 0 expired sessions.");
}

#[test]
fn clear_expired_has_nothing_to_do_for_signed_cookies() {
    let dir = TempDir::new().unwrap();
    let run = sessio(
        dir.path(),
        &["clear-expired"],
        &[("SESSIO_ENGINE", "signed-cookies")],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("nothing to clear"), "{}", run.stdout);
}

#[test]
fn store_errors_name_the_database_and_hide_passwords() {
    let dir = TempDir::new().unwrap();
    let run = sessio(
        dir.path(),
        &[
            "migrate",
            "--database-url",
            "nosuchdb://app:hunter2@localhost/sessions",
        ],
        &[],
    );
    assert_eq!(run.code, 1);
    assert!(run.stderr.starts_with("error: "), "{}", run.stderr);
    assert!(run.stderr.contains("nosuchdb://app:"), "{}", run.stderr);
    assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);
}

#[test]
fn help_and_usage_errors() {
    let dir = TempDir::new().unwrap();
    let run = sessio(dir.path(), &["--help"], &[]);
    assert_eq!(run.code, 0);
    for command in [
        "demo",
        "migrate",
        "clear-expired",
        "inspect",
        "check",
        "generate-key",
    ] {
        assert!(run.stdout.contains(command), "{command}: {}", run.stdout);
    }
    let run = sessio(dir.path(), &["inspect", "--help"], &[]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("--fallback-secret"));
    assert_eq!(sessio(dir.path(), &["frobnicate"], &[]).code, 2);
    assert_eq!(
        sessio(dir.path(), &["demo", "--engine", "mongo"], &[]).code,
        2
    );
    assert_eq!(
        sessio(dir.path(), &["clear-expired", "--batch-size", "0"], &[]).code,
        2
    );
}
