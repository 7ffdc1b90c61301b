//! The workloads: what each virtual user asks for, and the data the handlers store.
//!
//! Every server under test (sessio's engines, bare axum, and the peers in `bench/peers`)
//! serves the same routes with the same meaning, so one generator drives them all:
//!
//! | route | handler |
//! |---|---|
//! | `GET /none` | never touches the session |
//! | `GET /read` | reads the [`User`] record from the session |
//! | `GET /write` | increments the counter `n` in the session |
//! | `GET /login` | stores the [`User`] record in a new session |
//! | `GET /seed/0` | stores the [`User`] record (the setup of `none`, `read`, `write`) |
//! | `GET /seed/{bytes}` | stores `blob`, a string of that many bytes (the setup of `payload:`) |

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The session key of the user record.
pub const USER_KEY: &str = "user";
/// The session key of the counter of the `write` workload.
pub const COUNTER_KEY: &str = "n";
/// The session key of the payload of `payload:<bytes>`.
pub const BLOB_KEY: &str = "blob";

/// The payload sizes of the `sweep` shorthand: 100 B to 3.5 KB.
pub const SWEEP_SIZES: &[usize] = &[100, 500, 1000, 1500, 2000, 2500, 3000, 3500];

/// The ~100-byte record a logged-in user's session holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The user's id.
    pub id: u64,
    /// The login name.
    pub username: String,
    /// The address.
    pub email: String,
    /// Staff flag.
    pub is_staff: bool,
    /// Group names.
    pub groups: Vec<String>,
}

/// The record every user stores (its JSON is about 100 bytes).
pub fn user_record() -> User {
    User {
        id: 48_151,
        username: "alice.liddell".into(),
        email: "alice.liddell@example.com".into(),
        is_staff: false,
        groups: vec!["customers".into(), "newsletter".into()],
    }
}

/// A string of `bytes` pseudo-random alphanumerics: the same every time, and incompressible
/// enough that zlib (which Django's signed cookies try) cannot make it vanish.
pub fn blob(bytes: usize) -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..bytes)
        .map(|_| {
            // xorshift64*: cheap, deterministic, good enough to defeat compression.
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let r = state.wrapping_mul(0x2545_F491_4F6C_DD1D);
            CHARS[(r >> 58) as usize % CHARS.len()] as char
        })
        .collect()
}

/// One workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Workload {
    /// The handler never touches the session (the user has a session cookie).
    None,
    /// Reads the ~100-byte user record.
    Read,
    /// Increments a counter: a session write on every request.
    Write,
    /// A new session on every request: no cookie sent, the handler writes.
    Login,
    /// Like `Write`, with a session that holds this many bytes of data.
    Payload(usize),
}

impl Workload {
    /// The request every measured iteration sends.
    pub fn path(&self) -> &'static str {
        match self {
            Workload::None => "/none",
            Workload::Read => "/read",
            Workload::Write | Workload::Payload(_) => "/write",
            Workload::Login => "/login",
        }
    }

    /// The request each user sends once before the warm-up, if any.
    pub fn setup_path(&self) -> Option<String> {
        match self {
            Workload::None | Workload::Read | Workload::Write => Some("/seed/0".into()),
            Workload::Payload(n) => Some(format!("/seed/{n}")),
            Workload::Login => None,
        }
    }

    /// Whether users send their cookies back (not for `login`, which is a new visitor each
    /// time).
    pub fn sends_cookies(&self) -> bool {
        !matches!(self, Workload::Login)
    }

    /// The payload size of a `payload:` workload.
    pub fn payload_bytes(&self) -> Option<usize> {
        match self {
            Workload::Payload(n) => Some(*n),
            _ => None,
        }
    }

    /// The default set: `none`, `read`, `write`, `login` and the payload sweep.
    pub fn defaults() -> Vec<Workload> {
        let mut v = vec![
            Workload::None,
            Workload::Read,
            Workload::Write,
            Workload::Login,
        ];
        v.extend(SWEEP_SIZES.iter().map(|&n| Workload::Payload(n)));
        v
    }

    /// Parses a comma-separated list, expanding `sweep` and `all`.
    pub fn parse_list(items: &[String]) -> Result<Vec<Workload>, String> {
        let mut out = Vec::new();
        for item in items {
            match item.trim() {
                "all" => out.extend(Workload::defaults()),
                "sweep" => out.extend(SWEEP_SIZES.iter().map(|&n| Workload::Payload(n))),
                other => out.push(other.parse()?),
            }
        }
        let mut seen = std::collections::HashSet::new();
        out.retain(|w| seen.insert(*w));
        Ok(out)
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Workload::None => f.write_str("none"),
            Workload::Read => f.write_str("read"),
            Workload::Write => f.write_str("write"),
            Workload::Login => f.write_str("login"),
            Workload::Payload(n) => write!(f, "payload:{n}"),
        }
    }
}

impl FromStr for Workload {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim().to_ascii_lowercase();
        match s.as_str() {
            "none" => Ok(Workload::None),
            "read" | "ro" => Ok(Workload::Read),
            "write" | "rw" => Ok(Workload::Write),
            "login" => Ok(Workload::Login),
            _ => match s.strip_prefix("payload:") {
                Some(n) => {
                    let n: usize = n
                        .parse()
                        .map_err(|_| format!("`{s}`: the payload size must be a number of bytes"))?;
                    if n == 0 || n > 64 * 1024 {
                        return Err(format!("`{s}`: the payload must be 1 to 65536 bytes"));
                    }
                    Ok(Workload::Payload(n))
                }
                None => Err(format!(
                    "unknown workload `{s}`: use none, read, write, login, payload:<bytes>, sweep or all"
                )),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_is_about_100_bytes() {
        let n = serde_json::to_string(&user_record()).unwrap().len();
        assert!((90..=130).contains(&n), "{n}");
        assert_eq!(blob(1000).len(), 1000);
        assert_eq!(blob(50), blob(50));
    }

    #[test]
    fn lists_parse() {
        let w =
            Workload::parse_list(&["none".into(), "payload:300".into(), "sweep".into()]).unwrap();
        assert_eq!(w[0], Workload::None);
        assert_eq!(w[1], Workload::Payload(300));
        assert_eq!(w.len(), 2 + SWEEP_SIZES.len());
        assert!("payload:x".parse::<Workload>().is_err());
        assert_eq!(Workload::Payload(7).to_string(), "payload:7");
    }
}
