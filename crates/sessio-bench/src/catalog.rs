//! Names of the systems and services, shared by the harness and `bench/peers` (which
//! builds this crate without sessio).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::workload::Workload;

/// The systems the main harness can measure: sessio's engines, and axum without sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EngineName {
    /// axum with the same routes and no session middleware: the ceiling.
    Bare,
    /// `signed-cookies`.
    SignedCookies,
    /// `db` on SQLite.
    DbSqlite,
    /// `db` on PostgreSQL.
    DbPostgres,
    /// `db` on MySQL/MariaDB.
    DbMysql,
    /// `cache` on the in-process memory cache.
    CacheMemory,
    /// `cache` on Redis.
    CacheRedis,
    /// `cached-db`: SQLite with the in-process memory cache in front.
    CachedDb,
    /// `file`.
    File,
}

impl EngineName {
    /// Every engine, in report order.
    pub const ALL: &'static [EngineName] = &[
        EngineName::Bare,
        EngineName::SignedCookies,
        EngineName::CacheMemory,
        EngineName::DbSqlite,
        EngineName::CachedDb,
        EngineName::File,
        EngineName::DbPostgres,
        EngineName::DbMysql,
        EngineName::CacheRedis,
    ];

    /// The name in reports and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            EngineName::Bare => "bare-axum",
            EngineName::SignedCookies => "signed-cookies",
            EngineName::DbSqlite => "db-sqlite",
            EngineName::DbPostgres => "db-postgres",
            EngineName::DbMysql => "db-mysql",
            EngineName::CacheMemory => "cache-memory",
            EngineName::CacheRedis => "cache-redis",
            EngineName::CachedDb => "cached-db",
            EngineName::File => "file",
        }
    }

    /// Whether this build of the harness has the engine (Cargo features).
    pub fn compiled_in(self) -> bool {
        match self {
            EngineName::DbSqlite | EngineName::CachedDb => cfg!(feature = "sqlite"),
            EngineName::DbPostgres => cfg!(feature = "postgres"),
            EngineName::DbMysql => cfg!(feature = "mysql"),
            EngineName::CacheRedis => cfg!(feature = "redis"),
            _ => true,
        }
    }

    /// The engines in this build.
    pub fn available() -> Vec<EngineName> {
        Self::ALL
            .iter()
            .copied()
            .filter(|e| e.compiled_in())
            .collect()
    }

    /// Parses a comma-separated list (`all` = every engine in this build).
    pub fn parse_list(items: &[String]) -> Result<Vec<EngineName>, String> {
        let mut out = Vec::new();
        for item in items {
            if item.trim() == "all" {
                out.extend(Self::available());
            } else {
                out.push(item.parse()?);
            }
        }
        let mut seen = std::collections::HashSet::new();
        out.retain(|e| seen.insert(*e));
        Ok(out)
    }
}

impl fmt::Display for EngineName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EngineName {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(
            match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
                "bare" | "bare-axum" | "axum" | "none" => EngineName::Bare,
                "signed-cookies" | "signed-cookie" | "cookies" | "cookie" => {
                    EngineName::SignedCookies
                }
                "db" | "db-sqlite" | "sqlite" => EngineName::DbSqlite,
                "db-postgres" | "postgres" | "postgresql" | "pg" => EngineName::DbPostgres,
                "db-mysql" | "mysql" | "mariadb" | "db-mariadb" => EngineName::DbMysql,
                "memory" | "cache-memory" | "cache" => EngineName::CacheMemory,
                "redis" | "cache-redis" => EngineName::CacheRedis,
                "cached-db" | "cacheddb" => EngineName::CachedDb,
                "file" | "files" => EngineName::File,
                other => {
                    return Err(format!(
                        "unknown engine `{other}`: use bare-axum, signed-cookies, db (db-sqlite), \
                     db-postgres, db-mysql, memory (cache-memory), redis (cache-redis), \
                     cached-db, file or all"
                    ))
                }
            },
        )
    }
}

/// Where the server-backed engines find their servers.
#[derive(Debug, Clone)]
pub struct Services {
    /// PostgreSQL database of `db-postgres` (created if missing).
    pub postgres_url: String,
    /// MySQL/MariaDB database of `db-mysql` (created if missing).
    pub mysql_url: String,
    /// Redis of `cache-redis` (keys under a per-run prefix, deleted afterwards).
    pub redis_url: String,
    /// Where SQLite databases and session files go (a temporary directory per run).
    pub data_dir: Option<PathBuf>,
    /// Bytes per session of the memory engine by workload, measured before any server ran
    /// (see `engines::memory_estimates`); measured on demand for workloads not listed.
    pub memory_estimates: Vec<(Workload, f64)>,
}

/// `host:port` of a service URL.
pub fn host_port(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let default = match url.split_once("://")?.0 {
        "postgres" | "postgresql" => 5432,
        "mysql" | "mariadb" => 3306,
        "redis" => 6379,
        _ => return None,
    };
    Some(if hostport.contains(':') {
        hostport.to_string()
    } else {
        format!("{hostport}:{default}")
    })
}

/// The scale measurements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScaleMode {
    /// `read`/`write` with `--scale-rows` live sessions against 1k (SQLite, PostgreSQL).
    Rows,
    /// `clear-expired` of `--scale-rows` expired rows on SQLite while `write` runs.
    ClearExpired,
    /// Bytes of memory per session in the memory engine (100k sessions).
    Memory,
    /// All of the above.
    All,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for e in EngineName::ALL {
            assert_eq!(e.as_str().parse::<EngineName>().unwrap(), *e);
        }
        assert_eq!("db".parse::<EngineName>().unwrap(), EngineName::DbSqlite);
        assert_eq!(
            "memory".parse::<EngineName>().unwrap(),
            EngineName::CacheMemory
        );
        assert!("nope".parse::<EngineName>().is_err());
    }

    #[test]
    fn urls() {
        assert_eq!(
            host_port("postgres://postgres@127.0.0.1:5432/test").as_deref(),
            Some("127.0.0.1:5432")
        );
        assert_eq!(
            host_port("redis://localhost/2").as_deref(),
            Some("localhost:6379")
        );
    }
}
