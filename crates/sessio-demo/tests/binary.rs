//! The `sessio-demo` binary, run as a user runs it: its options, its errors, and the demo
//! serving on each kind of store. Each test runs in its own temp dir with no `SESSIO_*`
//! variables but the ones it sets.

use std::path::Path;

use tempfile::TempDir;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `sessio-demo args...` in `dir` with exactly the `SESSIO_*` variables in `env`, to
/// the end (for what makes it stop: help, usage errors, a store it cannot open).
fn sessio_demo(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_sessio-demo"));
    cmd.current_dir(dir).env_remove("RUST_LOG");
    for (name, _) in std::env::vars() {
        if name.starts_with("SESSIO_") {
            cmd.env_remove(name);
        }
    }
    let out = cmd
        .envs(env.iter().copied())
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    Run {
        code: out.status.code().expect("exited normally"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

#[test]
fn help_and_usage_errors() {
    let dir = TempDir::new().unwrap();
    let run = sessio_demo(dir.path(), &["--help"], &[]);
    assert_eq!(run.code, 0);
    for option in [
        "--engine",
        "--database-url",
        "--database",
        "--cache-url",
        "--file-path",
        "--data-dir",
        "--addr",
        "--config",
    ] {
        assert!(run.stdout.contains(option), "{option}: {}", run.stdout);
    }
    assert_eq!(sessio_demo(dir.path(), &["--engine", "mongo"], &[]).code, 2);
    assert_eq!(
        sessio_demo(
            dir.path(),
            &["--database", "a.db", "--database-url", "sqlite://b.db"],
            &[]
        )
        .code,
        2,
        "one database at a time"
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
fn an_unreachable_server_is_one_clear_line_without_the_password() {
    let dir = TempDir::new().unwrap();
    // The demo refuses to start on a store it cannot open, as `sessio migrate` does.
    let run = sessio_demo(
        dir.path(),
        &[
            "--database-url",
            "postgres://u:secret@127.0.0.1:1/x",
            "--addr",
            "127.0.0.1:0",
        ],
        &[],
    );
    assert_unreachable(&run, "postgres://u:***@127.0.0.1:1/x");
}

/// A `sessio-demo` process, killed on drop.
struct Demo {
    child: std::process::Child,
    /// The first line it printed about serving.
    banner: String,
    addr: String,
}

impl Demo {
    fn start(dir: &Path, args: &[&str]) -> Demo {
        use std::io::BufRead as _;
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_sessio-demo"));
        for (name, _) in std::env::vars() {
            if name.starts_with("SESSIO_") {
                cmd.env_remove(name);
            }
        }
        let mut child = cmd
            .current_dir(dir)
            .args(["--addr", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = std::io::BufReader::new(stdout).lines();
        let mut banner = String::new();
        for line in lines.by_ref() {
            let line = line.unwrap();
            if line.contains("serving on http://") {
                banner = line;
                break;
            }
        }
        // Keep reading: a closed pipe would make the demo's next line fail.
        std::thread::spawn(move || lines.for_each(drop));
        let addr = banner
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no address in {banner:?}"))
            .to_owned();
        Demo {
            child,
            banner,
            addr,
        }
    }

    /// `GET path` over plain HTTP/1.1; the whole response.
    fn get(&self, path: &str) -> String {
        use std::io::{Read as _, Write as _};
        let mut stream = std::net::TcpStream::connect(&self.addr).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_demo_runs_on_files_and_says_where_they_are() {
    let dir = TempDir::new().unwrap();
    let demo = Demo::start(dir.path(), &["--engine", "file", "--data-dir", "data"]);
    assert!(
        demo.banner
            .contains("engine: file, sessions in files in data/sessions"),
        "{}",
        demo.banner
    );
    assert!(
        dir.path().join("data/sessions").is_dir(),
        "made by the demo"
    );
    let page = demo.get("/");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("in files in data/sessions"), "{page}");
}

#[test]
fn the_demo_runs_on_encrypted_cookies() {
    let dir = TempDir::new().unwrap();
    let demo = Demo::start(
        dir.path(),
        &["--engine", "encrypted-cookies", "--data-dir", "d"],
    );
    assert!(
        demo.banner
            .contains("engine: encrypted-cookies, sessions in the cookie, encrypted"),
        "{}",
        demo.banner
    );
    let page = demo.get("/");
    assert!(page.contains("engine: encrypted-cookies"), "{page}");
    assert!(page.contains("in the cookie, encrypted"), "{page}");
}

#[test]
fn the_demo_takes_a_sqlite_file_or_a_cache_url() {
    let dir = TempDir::new().unwrap();
    let demo = Demo::start(dir.path(), &["--database", "db/demo.sqlite3"]);
    assert!(
        demo.banner
            .contains("engine: db, sessions in SQLite at db/demo.sqlite3"),
        "{}",
        demo.banner
    );
    assert!(dir.path().join("db/demo.sqlite3").is_file());
    drop(demo);

    let demo = Demo::start(dir.path(), &["--cache-url", "memory://"]);
    assert!(
        demo.banner
            .contains("engine: cache, sessions in this process's memory"),
        "{}",
        demo.banner
    );
    assert!(demo.get("/").contains("engine: cache"));
    drop(demo);

    // Settings from the environment, the store from a flag.
    let url = format!("sqlite://{}", dir.path().join("c.sqlite3").display());
    let demo = Demo::start(
        dir.path(),
        &["--engine", "cached-db", "--database-url", &url],
    );
    assert!(
        demo.banner
            .contains("engine: cached-db, sessions in SQLite at"),
        "{}",
        demo.banner
    );
    assert!(demo.banner.contains("with a copy in this process's memory"));
}
