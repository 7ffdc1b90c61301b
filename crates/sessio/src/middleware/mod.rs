//! The tower middleware: loads sessions lazily, saves them when they changed, and writes
//! the cookie, following Django's `SessionMiddleware` rule for rule.
//!
//! ```no_run
//! use axum::{routing::get, Router};
//! use sessio::{Config, Session, SessionManager};
//!
//! async fn visits(session: Session) -> sessio::Result<String> {
//!     let n: u64 = session.get("visits").await?.unwrap_or(0) + 1;
//!     session.insert("visits", n).await?;
//!     Ok(format!("visit number {n}"))
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let sessions = SessionManager::open(Config::from_env()?).await?;
//! let app: Router = Router::new().route("/", get(visits)).layer(sessions.layer());
//! # Ok(()) }
//! ```
//!
//! The middleware is laid out as tower-http lays out its own: [`layer`] (the
//! [`SessionLayer`]), [`service`] (the [`SessionService`], which puts a lazily loaded
//! [`Session`](crate::Session) in each request), [`future`] (the response future, which saves
//! and sets the cookie), `policy` (what the end of a request does, Django's
//! `process_response` rule for rule) and, with the `axum` feature, the extractor.

#[cfg(feature = "axum")]
mod axum;
pub mod future;
pub mod layer;
mod policy;
pub mod service;

#[cfg(feature = "axum")]
pub use self::axum::MissingSessionLayer;
pub use future::ResponseFuture;
pub use layer::SessionLayer;
pub use policy::SessionError;
pub use service::SessionService;
