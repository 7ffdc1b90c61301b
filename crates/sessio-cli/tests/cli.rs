//! The `sessio` binary, run as a user runs it. Each test runs in its own temp dir with no
//! `SESSIO_*` variables but the ones it sets.
//!
//! The server tests use `SESSIO_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`), `SESSIO_TEST_MYSQL_URL` (default
//! `mysql://root@127.0.0.1:3306/test`) and `SESSIO_TEST_REDIS_URL` (default
//! `redis://127.0.0.1:6379`), each in a schema or database of its own made with the `psql`
//! and `mariadb` clients. An unreachable server skips its tests with a `SKIPPED:` line, or
//! fails them under `SESSIO_REQUIRE_SERVICES=1`.

mod servers;

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
/// The same data signed with the key `old-secret` (cookies salt, same time).
const OLD_KEY_COOKIE: &str =
    "eyJ1c2VyX2lkIjo0MiwiY2FydCI6WzEsMl19:1r31eq:6vqWl1eZ1ljTIQZ_KKbloaKJxL9NrRtLq_qF4tsPSFw";
const DATA: &str = r#"{"user_id":42,"cart":[1,2]}"#;
const SIGNED_AT: &str = "1700000000";
/// Far enough for Django's 2023 vectors to stay valid.
const FOREVER: &str = "999999999999";
const STRONG_KEY: &str = "cli-tests-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `sessio args...` in `dir` with exactly the `SESSIO_*` variables in `env`.
fn sessio(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    sessio_with_stdin(dir, args, env, "")
}

/// As [`sessio`], with `stdin` as its standard input.
fn sessio_with_stdin(dir: &Path, args: &[&str], env: &[(&str, &str)], stdin: &str) -> Run {
    let mut cmd = assert_cmd::cargo::cargo_bin_cmd!("sessio");
    cmd.current_dir(dir).env_remove("RUST_LOG");
    for (name, _) in std::env::vars() {
        if name.starts_with("SESSIO_") {
            cmd.env_remove(name);
        }
    }
    cmd.envs(env.iter().copied()).args(args).write_stdin(stdin);
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
fn check_fails_on_a_weak_or_empty_fallback_key() {
    let dir = TempDir::new().unwrap();
    let production = [
        ("SESSIO_SECRET_KEY", STRONG_KEY),
        ("SESSIO_COOKIE_SECURE", "true"),
    ];
    let with_fallbacks = |fallbacks: &str| {
        let mut env = production.to_vec();
        env.push(("SESSIO_SECRET_KEY_FALLBACKS", fallbacks));
        sessio(dir.path(), &["check"], &env)
    };
    let run = with_fallbacks(&format!("{STRONG_KEY}-old"));
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    // A weak fallback is an error, as serious as a weak current key.
    let run = with_fallbacks(&format!("{STRONG_KEY}-old, django-insecure-abc"));
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stdout
            .contains("ERRORS:\nsessio.E002: fallback key #2 is"),
        "{}",
        run.stdout
    );
    // An empty entry cannot even be read.
    let run = with_fallbacks("a,,b");
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stderr.contains("SESSIO_SECRET_KEY_FALLBACKS") && run.stderr.contains("empty"),
        "{}",
        run.stderr
    );
}

#[test]
fn check_flags_revocation_in_process_memory() {
    let dir = TempDir::new().unwrap();
    let mut env = vec![
        ("SESSIO_SECRET_KEY", STRONG_KEY),
        ("SESSIO_COOKIE_SECURE", "true"),
        ("SESSIO_ENGINE", "encrypted-cookies"),
        ("SESSIO_COOKIE_REVOCATION", "cache"),
    ];
    let run = sessio(dir.path(), &["check"], &env);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stderr.contains("SESSIO_ALLOW_IN_MEMORY_REVOCATION"),
        "{}",
        run.stderr
    );
    env.push(("SESSIO_ALLOW_IN_MEMORY_REVOCATION", "true"));
    let run = sessio(dir.path(), &["check"], &env);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(run.stdout.contains("sessio.W030: "), "{}", run.stdout);
}

#[cfg(unix)]
#[test]
fn check_warns_about_a_world_writable_session_directory() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new().unwrap();
    let sessions = dir.path().join("sessions");
    std::fs::create_dir(&sessions).unwrap();
    let env = [
        ("SESSIO_SECRET_KEY", STRONG_KEY),
        ("SESSIO_COOKIE_SECURE", "true"),
        ("SESSIO_ENGINE", "file"),
        ("SESSIO_FILE_PATH", sessions.to_str().unwrap()),
    ];
    std::fs::set_permissions(&sessions, std::fs::Permissions::from_mode(0o700)).unwrap();
    let run = sessio(dir.path(), &["check"], &env);
    assert_eq!(run.code, 0, "{}", run.stdout);
    std::fs::set_permissions(&sessions, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let run = sessio(dir.path(), &["check"], &env);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(run.stdout.contains("sessio.W040: "), "{}", run.stdout);
    assert!(run.stdout.contains("chmod 700"), "{}", run.stdout);
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
    assert_eq!(
        run.stdout.trim(),
        format!("Created the session table django_session in {url}.")
    );
    let again = sessio(dir.path(), &["migrate"], &env);
    assert_eq!(again.code, 0, "migrate is idempotent: {}", again.stderr);
    assert!(again.stdout.contains("is up to date"), "{}", again.stdout);

    let run = sessio(dir.path(), &["clear-expired"], &env);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout.trim(),
        format!("Deleted 0 expired sessions from {url}.")
    );
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
    assert_eq!(
        run.stdout.trim(),
        format!("Deleted 5 expired sessions from {url}.")
    );
    let run = sessio(dir.path(), &["clear-expired", "--database-url", &url], &[]);
    assert!(run.stdout.starts_with("Deleted 0 expired sessions"));
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
        "migrate",
        "clear-expired",
        "sign",
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
    // The demo and the benchmark are programs of their own (sessio-demo, sessio-bench).
    assert_eq!(sessio(dir.path(), &["demo"], &[]).code, 2);
    assert_eq!(sessio(dir.path(), &["bench"], &[]).code, 2);
    assert_eq!(
        sessio(dir.path(), &["migrate", "--engine", "mongo"], &[]).code,
        2
    );
    assert_eq!(
        sessio(dir.path(), &["clear-expired", "--batch-size", "0"], &[]).code,
        2
    );
}

// --- sign -----------------------------------------------------------------------------

#[test]
fn sign_matches_djangos_vectors() {
    let dir = TempDir::new().unwrap();
    let args = [
        "sign",
        DATA,
        "--secret",
        "test-secret",
        "--timestamp",
        SIGNED_AT,
    ];
    let run = sessio(dir.path(), &args, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        format!("{COOKIE}\n"),
        "only the value on stdout"
    );
    assert!(run.stderr.is_empty(), "{}", run.stderr);

    let run = sessio(dir.path(), &[&args[..], &["--salt", "store"]].concat(), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, format!("{STORED}\n"));

    // The salt by its value, and the key from SESSIO_SECRET_KEY.
    let run = sessio(
        dir.path(),
        &[
            "sign",
            DATA,
            "--timestamp",
            SIGNED_AT,
            "--salt",
            "django.contrib.sessions.SessionStore",
        ],
        &[("SESSIO_SECRET_KEY", "test-secret")],
    );
    assert_eq!(run.stdout, format!("{STORED}\n"));
}

#[test]
fn sign_compresses_like_django_unless_told_not_to() {
    let dir = TempDir::new().unwrap();
    let data = format!(r#"{{"cart":[{}]}}"#, vec!["1"; 200].join(","));
    let sign = |extra: &[&str]| {
        let args = [
            &[
                "sign",
                data.as_str(),
                "--secret",
                "k",
                "--timestamp",
                SIGNED_AT,
            ][..],
            extra,
        ]
        .concat();
        sessio(dir.path(), &args, &[])
    };
    let compressed = sign(&[]);
    assert_eq!(compressed.code, 0, "{}", compressed.stderr);
    assert!(compressed.stdout.starts_with('.'), "{}", compressed.stdout);
    let plain = sign(&["--no-compress"]);
    assert!(plain.stdout.starts_with("eyJ"), "{}", plain.stdout);
    assert!(plain.stdout.len() > compressed.stdout.len());
    // Both decode to the same data.
    for value in [&compressed.stdout, &plain.stdout] {
        let run = sessio(
            dir.path(),
            &[
                "inspect",
                value.trim(),
                "--secret",
                "k",
                "--max-age",
                FOREVER,
            ],
            &[],
        );
        assert_eq!(run.code, 0, "{}", run.stderr);
        let decoded: Value = serde_json::from_str(&run.stdout).unwrap();
        assert_eq!(decoded["cart"].as_array().unwrap().len(), 200);
    }
}

#[test]
fn sign_then_inspect_round_trips_through_stdin() {
    let dir = TempDir::new().unwrap();
    let env = [("SESSIO_SECRET_KEY", "a-short-django-key")];
    let data = r#"{"user":"alice","cart":{"tea":2},"note":"é ✓"}"#;
    for salt in ["cookies", "store", "my.app.salt"] {
        let signed = sessio_with_stdin(dir.path(), &["sign", "-", "--salt", salt], &env, data);
        assert_eq!(signed.code, 0, "{}", signed.stderr);
        assert_eq!(signed.stdout.lines().count(), 1);
        let run = sessio_with_stdin(
            dir.path(),
            &["inspect", "-", "--salt", salt],
            &env,
            &signed.stdout,
        );
        assert_eq!(run.code, 0, "{salt}: {}", run.stderr);
        let decoded: Value = serde_json::from_str(&run.stdout).unwrap();
        assert_eq!(decoded, serde_json::from_str::<Value>(data).unwrap());
        assert!(run.stderr.contains("status: valid"), "{}", run.stderr);
        // Signed just now: valid under the default (two-week) max age too.
        let run = sessio(
            dir.path(),
            &["inspect", signed.stdout.trim(), "--json"],
            &env,
        );
        let report: Value = serde_json::from_str(&run.stdout).unwrap();
        if salt == "my.app.salt" {
            // Without --salt, inspect tries only the engines' salts.
            assert_eq!(run.code, 1);
            assert_eq!(report["status"], "tampered");
        } else {
            assert_eq!(run.code, 0, "{}", run.stdout);
            assert_eq!(report["salt_kind"], salt);
        }
    }
    // With no argument, piped data is read too.
    let signed = sessio_with_stdin(dir.path(), &["sign"], &env, data);
    assert_eq!(signed.code, 0, "{}", signed.stderr);
}

#[test]
fn sign_refuses_what_is_not_a_json_object() {
    let dir = TempDir::new().unwrap();
    for (input, expected) in [
        ("[1, 2]", "an array"),
        ("42", "a number"),
        ("\"text\"", "a string"),
        ("{\"a\": ", "not valid JSON"),
        ("", "not valid JSON"),
    ] {
        let run = sessio(dir.path(), &["sign", input, "--secret", "k"], &[]);
        assert_eq!(run.code, 2, "{input}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{input}: {}", run.stdout);
        assert!(run.stderr.starts_with("error: "), "{}", run.stderr);
        assert!(run.stderr.contains(expected), "{input}: {}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    }
    let run = sessio_with_stdin(dir.path(), &["sign", "-", "--secret", "k"], &[], "[]");
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("JSON object"), "{}", run.stderr);
    // No key at all.
    let run = sessio(dir.path(), &["sign", DATA], &[]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("no secret key"), "{}", run.stderr);
    assert_eq!(
        sessio(
            dir.path(),
            &["sign", DATA, "--secret", "k", "--timestamp", "soon"],
            &[]
        )
        .code,
        2
    );
}

// --- inspect --------------------------------------------------------------------------

#[test]
fn inspect_accepts_fallback_secrets() {
    let dir = TempDir::new().unwrap();
    let base = [
        "inspect",
        OLD_KEY_COOKIE,
        "--secret",
        "test-secret",
        "--max-age",
        FOREVER,
    ];
    let run = sessio(dir.path(), &base, &[]);
    assert_eq!(run.code, 1, "old-secret is not the current key");
    assert!(run.stderr.contains("tampered"), "{}", run.stderr);

    let run = sessio(
        dir.path(),
        &[&base[..], &["--fallback-secret", "old-secret"]].concat(),
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("status: valid"), "{}", run.stderr);
    assert!(run.stderr.contains("key:    fallback #1"), "{}", run.stderr);
    let data: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(data["user_id"], 42);

    // Repeatable, in order; the JSON report names the key too.
    let run = sessio(
        dir.path(),
        &[
            &base[..],
            &[
                "--fallback-secret",
                "older-secret",
                "--fallback-secret",
                "old-secret",
                "--json",
            ],
        ]
        .concat(),
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stdout);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["status"], "valid");
    assert_eq!(report["key"], "fallback #2");
    assert_eq!(report["key_index"], 2);
    assert_eq!(report["max_age_seconds"], 999_999_999_999_i64);
    assert!(run.stderr.is_empty(), "--json: stdout holds everything");

    // From SESSIO_SECRET_KEY_FALLBACKS as well.
    let run = sessio(
        dir.path(),
        &base,
        &[("SESSIO_SECRET_KEY_FALLBACKS", "x, old-secret")],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("key:    fallback #2"), "{}", run.stderr);
}

#[test]
fn inspect_prints_only_the_result_on_stdout() {
    let dir = TempDir::new().unwrap();
    let run = sessio(
        dir.path(),
        &[
            "inspect",
            COOKIE,
            "--secret",
            "test-secret",
            "--salt",
            "cookies",
            "--max-age",
            FOREVER,
        ],
        &[("RUST_LOG", "debug")],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    // The data as JSON and nothing else, even with debug logging on.
    let data: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(data, serde_json::json!({"user_id": 42, "cart": [1, 2]}));

    // A custom salt by its value: the vector's salt is Django's cookie salt.
    let run = sessio(
        dir.path(),
        &[
            "inspect",
            COOKIE,
            "--secret",
            "test-secret",
            "--salt",
            "django.contrib.sessions.backends.signed_cookies",
            "--max-age",
            FOREVER,
            "--json",
        ],
        &[],
    );
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["salt_kind"], "cookies");
    // Errors go to stderr only.
    let run = sessio(dir.path(), &["inspect", "garbage", "--secret", "k"], &[]);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    let run = sessio(
        dir.path(),
        &["inspect", COOKIE, "--secret", "k", "--max-age", "-5"],
        &[],
    );
    assert_eq!(run.code, 2);
    assert!(run.stdout.is_empty());
}

// --- check ----------------------------------------------------------------------------

#[test]
fn check_tells_the_cookie_engines_apart() {
    let dir = TempDir::new().unwrap();
    let run_for = |engine: &str| {
        sessio(
            dir.path(),
            &["check"],
            &[
                ("SESSIO_SECRET_KEY", STRONG_KEY),
                ("SESSIO_COOKIE_SECURE", "true"),
                ("SESSIO_ENGINE", engine),
            ],
        )
    };
    // Signed cookies: the visitor can read the data, and logout cannot revoke a copy.
    let signed = run_for("signed-cookies");
    assert_eq!(signed.code, 0, "an info does not fail: {}", signed.stdout);
    assert!(signed.stdout.contains("sessio.I020: "), "{}", signed.stdout);
    assert!(signed.stdout.contains("can read"), "{}", signed.stdout);
    // Encrypted cookies: the data is private, so no readability warning.
    let encrypted = run_for("encrypted-cookies");
    assert_eq!(encrypted.code, 0, "{}", encrypted.stdout);
    assert!(
        !encrypted.stdout.contains("sessio.I020"),
        "{}",
        encrypted.stdout
    );
    assert!(
        !encrypted.stdout.contains("can read"),
        "{}",
        encrypted.stdout
    );
    // Both still need the production settings.
    for engine in ["signed-cookies", "encrypted-cookies"] {
        let run = sessio(
            dir.path(),
            &["check"],
            &[("SESSIO_SECRET_KEY", "short"), ("SESSIO_ENGINE", engine)],
        );
        assert_eq!(run.code, 1);
        assert!(
            run.stdout.contains("sessio.W001"),
            "{engine}: {}",
            run.stdout
        );
        assert!(
            run.stdout.contains("sessio.W010"),
            "{engine}: {}",
            run.stdout
        );
    }
}

// --- migrate and clear-expired on every engine ----------------------------------------

/// Writes `old` sessions a month ago and one now, with `builder`'s engine.
fn write_sessions(builder: sessio::ConfigBuilder, old: usize) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let open = |at: time::OffsetDateTime| {
            let config = builder
                .clone()
                .secret_key(STRONG_KEY)
                .clock(sessio::clock::ManualClock::new(at))
                .build()
                .unwrap();
            sessio::SessionManager::open(config)
        };
        let now = time::OffsetDateTime::now_utc();
        let past = open(now - time::Duration::days(30)).await.unwrap();
        for i in 0..old {
            let session = past.session(None);
            session.insert("n", i).await.unwrap();
            session.save().await.unwrap();
        }
        let current = open(now).await.unwrap();
        let session = current.session(None);
        session.insert("n", 99).await.unwrap();
        session.save().await.unwrap();
    });
}

fn files_in(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("sessionid")
        })
        .count()
}

#[test]
fn migrate_then_clear_expired_with_files() {
    let dir = TempDir::new().unwrap();
    let sessions = dir.path().join("sessions");
    let path = sessions.to_str().unwrap();
    let env = [("SESSIO_SECRET_KEY", STRONG_KEY)];

    let run = sessio(
        dir.path(),
        &["migrate", "--engine", "file", "--file-path", path],
        &env,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout.trim(),
        format!("Created the session directory {path}.")
    );
    assert!(sessions.is_dir());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&sessions).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "session files are credentials");
    }
    // --file-path alone selects the file engine; SESSIO_FILE_PATH works as well.
    let run = sessio(dir.path(), &["migrate", "--file-path", path], &env);
    assert!(
        run.stdout.contains("exists: nothing to migrate"),
        "{}",
        run.stdout
    );
    let file_env = [
        ("SESSIO_SECRET_KEY", STRONG_KEY),
        ("SESSIO_ENGINE", "file"),
        ("SESSIO_FILE_PATH", path),
    ];
    let run = sessio(dir.path(), &["migrate"], &file_env);
    assert!(
        run.stdout.contains("exists: nothing to migrate"),
        "{}",
        run.stdout
    );

    write_sessions(
        sessio::Config::builder()
            .engine(sessio::EngineKind::File)
            .file_path(&sessions),
        4,
    );
    assert_eq!(files_in(&sessions), 5);
    let run = sessio(
        dir.path(),
        &["clear-expired", "--batch-size", "3"],
        &file_env,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout.trim(),
        format!("Deleted 4 expired sessions from {path}.")
    );
    assert_eq!(files_in(&sessions), 1, "the live session stays");

    // Expiry dates are signed: without the app's key the files cannot be judged.
    let run = sessio(dir.path(), &["clear-expired", "--file-path", path], &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("SESSIO_SECRET_KEY"), "{}", run.stderr);
    assert_eq!(files_in(&sessions), 1);
}

#[test]
fn clear_expired_on_sqlite_keeps_live_sessions() {
    let dir = TempDir::new().unwrap();
    let url = format!("sqlite://{}", dir.path().join("s.sqlite3").display());
    let run = sessio(dir.path(), &["migrate", "--database-url", &url], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    write_sessions(sessio::Config::builder().database_url(url.clone()), 3);
    // SESSIO_ENGINE and SESSIO_DATABASE_URL, no flags.
    let env = [
        ("SESSIO_ENGINE", "db"),
        ("SESSIO_DATABASE_URL", url.as_str()),
    ];
    let run = sessio(dir.path(), &["clear-expired"], &env);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout.trim(),
        format!("Deleted 3 expired sessions from {url}.")
    );
    let run = sessio(dir.path(), &["clear-expired"], &env);
    assert_eq!(
        run.stdout.trim(),
        format!("Deleted 0 expired sessions from {url}.")
    );
}

#[test]
fn cached_db_migrates_and_clears_its_database() {
    let dir = TempDir::new().unwrap();
    let url = format!("sqlite://{}", dir.path().join("s.sqlite3").display());
    let args = ["--database-url", url.as_str(), "--cache-url", "memory://"];
    let run = sessio(dir.path(), &[&["migrate"][..], &args].concat(), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run
        .stdout
        .contains("Created the session table django_session in sqlite://"));
    let run = sessio(dir.path(), &[&["clear-expired"][..], &args].concat(), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout.trim(),
        format!("Deleted 0 expired sessions from {url}.")
    );
    let run = sessio(
        dir.path(),
        &["migrate", "--engine", "cached-db"],
        &[("SESSIO_DATABASE_URL", url.as_str())],
    );
    assert!(run.stdout.contains("is up to date"), "{}", run.stdout);
}

#[test]
fn cache_and_cookie_engines_have_nothing_to_migrate_or_clear() {
    let dir = TempDir::new().unwrap();
    for args in [&["--engine", "cache"][..], &["--cache-url", "memory://"]] {
        let run = sessio(dir.path(), &[&["migrate"][..], args].concat(), &[]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(
            run.stdout.contains("nothing to migrate in memory://"),
            "{}",
            run.stdout
        );
        let run = sessio(dir.path(), &[&["clear-expired"][..], args].concat(), &[]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(run.stdout.contains("TTL"), "{}", run.stdout);
        assert!(run.stdout.contains("nothing to clear"), "{}", run.stdout);
    }
    let run = sessio(
        dir.path(),
        &["clear-expired"],
        &[
            ("SESSIO_ENGINE", "cache"),
            ("SESSIO_CACHE_URL", "memory://"),
        ],
    );
    assert!(run.stdout.contains("TTL"), "{}", run.stdout);
    for engine in ["signed-cookies", "encrypted-cookies"] {
        for command in ["migrate", "clear-expired"] {
            let run = sessio(dir.path(), &[command, "--engine", engine], &[]);
            assert_eq!(run.code, 0, "{}", run.stderr);
            assert!(
                run.stdout.contains("in the browsers' cookies"),
                "{}",
                run.stdout
            );
        }
    }
}

// --- servers --------------------------------------------------------------------------

#[test]
fn migrate_and_clear_expired_on_postgresql() {
    let Some(schema) = servers::PgSchema::create() else {
        return;
    };
    let dir = TempDir::new().unwrap();
    let shown = sessio::redact_url(&schema.url);
    let run = sessio(dir.path(), &["migrate", "--database-url", &schema.url], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout.trim(),
        format!("Created the session table django_session in {shown}.")
    );
    assert_eq!(
        schema
            .sql("SELECT count(*) FROM django_session")
            .unwrap()
            .trim(),
        "0"
    );
    let env = [("SESSIO_DATABASE_URL", schema.url.as_str())];
    let run = sessio(dir.path(), &["migrate"], &env);
    assert!(run.stdout.contains("is up to date"), "{}", run.stdout);

    // An expired row and a live one, written as Django writes them.
    schema
        .sql(&format!(
            "INSERT INTO django_session VALUES \
             ('expiredexpiredexpiredexpired0001', '{STORED}', now() - interval '1 day'), \
             ('liveliveliveliveliveliveliveli01', '{STORED}', now() + interval '1 day')"
        ))
        .unwrap();
    let run = sessio(dir.path(), &["clear-expired"], &env);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout.trim(),
        format!("Deleted 1 expired session from {shown}.")
    );
    assert_eq!(
        schema
            .sql("SELECT session_key FROM django_session")
            .unwrap()
            .trim(),
        "liveliveliveliveliveliveliveli01"
    );
}

#[test]
fn migrate_and_clear_expired_on_mysql() {
    let Some(db) = servers::MySqlDatabase::create() else {
        return;
    };
    let dir = TempDir::new().unwrap();
    let shown = sessio::redact_url(&db.url);
    let run = sessio(dir.path(), &["migrate", "--database-url", &db.url], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout.trim(),
        format!("Created the session table django_session in {shown}.")
    );
    assert_eq!(
        db.sql("SELECT count(*) FROM django_session")
            .unwrap()
            .trim(),
        "0"
    );
    let run = sessio(dir.path(), &["migrate", "--database-url", &db.url], &[]);
    assert!(run.stdout.contains("is up to date"), "{}", run.stdout);
    db.sql(&format!(
        "INSERT INTO django_session VALUES \
         ('expiredexpiredexpiredexpired0001', '{STORED}', UTC_TIMESTAMP() - INTERVAL 1 DAY), \
         ('liveliveliveliveliveliveliveli01', '{STORED}', UTC_TIMESTAMP() + INTERVAL 1 DAY)"
    ))
    .unwrap();
    let run = sessio(
        dir.path(),
        &["clear-expired", "--engine", "db"],
        &[("SESSIO_DATABASE_URL", db.url.as_str())],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout.trim(),
        format!("Deleted 1 expired session from {shown}.")
    );
}

#[test]
fn redis_needs_no_migration_and_expires_by_itself() {
    let Some(url) = servers::redis() else {
        return;
    };
    let dir = TempDir::new().unwrap();
    let run = sessio(dir.path(), &["migrate", "--cache-url", &url], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("nothing to migrate"), "{}", run.stdout);
    let run = sessio(
        dir.path(),
        &["clear-expired"],
        &[
            ("SESSIO_ENGINE", "cache"),
            ("SESSIO_CACHE_URL", url.as_str()),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("TTL"), "{}", run.stdout);
    assert!(
        run.stdout.contains(&sessio::redact_url(&url)),
        "{}",
        run.stdout
    );
}

/// An unreachable server: exit 1, one line that names the URL with its password hidden.
fn assert_unreachable(run: &Run, shown: &str) {
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "one line: {}", run.stderr);
    assert!(
        run.stderr.starts_with("error: cannot open "),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains(shown), "{}", run.stderr);
    assert!(run.stderr.contains("***"), "{}", run.stderr);
    assert!(!run.stderr.contains("secret"), "{}", run.stderr);
}

#[test]
fn unreachable_servers_are_one_clear_line_without_the_password() {
    let dir = TempDir::new().unwrap();
    let cases = [
        (
            "postgres://u:secret@127.0.0.1:1/x",
            "--database-url",
            "postgres://u:***@127.0.0.1:1/x",
        ),
        (
            "mysql://u:secret@127.0.0.1:1/x",
            "--database-url",
            "mysql://u:***@127.0.0.1:1/x",
        ),
        (
            "redis://:secret@127.0.0.1:1/0",
            "--cache-url",
            "redis://:***@127.0.0.1:1/0",
        ),
    ];
    for (url, flag, shown) in cases {
        for command in ["migrate", "clear-expired"] {
            let run = sessio(dir.path(), &[command, flag, url], &[]);
            assert_unreachable(&run, shown);
            assert!(run.stdout.is_empty(), "{}", run.stdout);
        }
    }
    // From the environment too, and with the cached-db engine's cache.
    let run = sessio(
        dir.path(),
        &["migrate"],
        &[("SESSIO_DATABASE_URL", "postgres://u:secret@127.0.0.1:1/x")],
    );
    assert_unreachable(&run, "postgres://u:***@127.0.0.1:1/x");
    let sqlite = format!("sqlite://{}", dir.path().join("s.sqlite3").display());
    let run = sessio(
        dir.path(),
        &[
            "migrate",
            "--engine",
            "cached-db",
            "--database-url",
            &sqlite,
        ],
        &[("SESSIO_CACHE_URL", "redis://:secret@127.0.0.1:1/0")],
    );
    assert_unreachable(&run, "the session cache redis://:***@127.0.0.1:1/0");
}
