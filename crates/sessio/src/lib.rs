//! # sessio
//!
//! Web sessions for Rust with Django's design and Django's wire formats: a visitor's data
//! lives either inside the cookie (signed, so it cannot be tampered with) or on the server
//! (a `django_session` row found by a random id in the cookie), and one setting switches
//! between the two without touching handler code.
//!
//! ```no_run
//! use axum::{routing::get, Router};
//! use sessio::{Config, Session, SessionManager};
//!
//! async fn counter(session: Session) -> sessio::Result<String> {
//!     let n: u32 = session.get("n").await?.unwrap_or(0) + 1;
//!     session.insert("n", n).await?;
//!     Ok(format!("you have been here {n} times"))
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     // SESSIO_SECRET_KEY=... SESSIO_ENGINE=db|signed-cookies SESSIO_DATABASE_URL=sqlite://s.db
//!     let sessions = SessionManager::open(Config::from_env()?).await?;
//!     let app = Router::new().route("/", get(counter)).layer(sessions.layer());
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//!     axum::serve(listener, app).await?;
//!     Ok(())
//! }
//! ```
//!
//! ## Concepts
//!
//! * [`Config`]: every setting, with Django's names and defaults.
//! * [`SessionManager`]: the configuration and its open engine; gives the [`layer`](SessionManager::layer).
//! * [`Session`]: the per-request handle (an axum extractor), loaded on first use.
//! * [`SessionEngine`]: where data lives. Engines: [`signed_cookies`],
//!   [`encrypted_cookies`], [`db`], [`cache`](mod@cache), [`cached_db`], [`file`](mod@file).
//! * [`signing`]: Django's `django.core.signing`, byte for byte.
//! * [`auth`]: logins that Django's `django.contrib.auth` shares.
//!
//! ## Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `axum` | yes | `Session` as an axum extractor, `IntoResponse` for [`Error`] |
//! | `sqlite` | yes | the `db` engine on embedded SQLite |
//! | `postgres` | no | the `db` engine on PostgreSQL (`postgres://` URLs) |
//! | `mysql` | no | the `db` engine on MySQL and MariaDB (`mysql://` URLs) |
//! | `redis` | no | the `cache` and `cached-db` engines on Redis and Redis Cluster |

#![warn(missing_docs)]

pub mod auth;
#[cfg(any(feature = "postgres", feature = "redis"))]
mod batch;
pub mod cache;
pub mod cached_db;
pub mod client;
pub mod clock;
pub mod config;
pub mod cookie;
pub mod db;
pub mod encrypted_cookies;
pub mod engine;
mod error;
pub mod file;
pub mod key;
mod manager;
pub mod middleware;
mod open;
pub mod server;
mod session;
pub mod signed_cookies;
pub mod spill;
pub mod store;
pub mod users;

// Django's formats live in their own crate; these paths stay where users know them.
pub use sessio_django::{expiry, json, signing, value, Value};

pub use config::{
    Concurrency, Config, ConfigBuilder, CookieOverflow, EngineKind, SameSite, SecretKey,
};
pub use engine::{Changes, LoadedSession, Saved, SessionData, SessionEngine, Version};
pub use error::{redact_url, Error, Result};
pub use expiry::Expiry;
pub use manager::{SessionManager, DEFAULT_CLEAR_BATCH};
pub use middleware::{ResponseFuture, SessionLayer, SessionService};
pub use open::open;
pub use session::Session;

/// The README's examples compile as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
