//! The benchmark app on axum: with sessio's [`SessionLayer`](sessio::SessionLayer), and the
//! same routes without sessions (the ceiling every session framework is measured against).
//!
//! Handlers use only sessio's public API, as an application would.

use axum::extract::Path;
use axum::routing::get;
use axum::Router;
use sessio::{Session, SessionManager, SessionService};
use tower::Layer as _;

use crate::workload::{blob, user_record, User, BLOB_KEY, COUNTER_KEY, USER_KEY};

/// The routes of [`crate::workload`] on sessio, inside `manager`'s layer.
///
/// The layer wraps the whole router, as Django's middleware wraps every view, rather than
/// being added with `Router::layer`: that one boxes the service and its future on every
/// request for any middleware (about 1,000 instructions per request, measured with the
/// `inproc` example), a cost of axum's routing, not of sessions. The peer comparison wraps
/// tower-sessions the same way.
pub fn sessio_app(manager: &SessionManager) -> SessionService<Router> {
    // `with_state` turns the handlers into routes once; a router called as an inner
    // service without it does so on every request (`axum::serve` calls it for a router it
    // serves itself).
    manager.layer().layer(sessio_routes().with_state(()))
}

fn sessio_routes() -> Router {
    Router::new()
        .route("/none", get(none))
        .route("/read", get(read))
        .route("/write", get(write))
        .route("/login", get(login))
        .route("/seed/{bytes}", get(seed))
}

/// The same routes with no session middleware: each answers what the session handler
/// would, without any session work.
pub fn bare_router() -> Router {
    Router::new()
        .route("/none", get(none))
        .route("/read", get(|| async { user_record().username }))
        .route("/write", get(|| async { "1" }))
        .route("/login", get(|| async { "ok" }))
        .route("/seed/{bytes}", get(|| async { "ok" }))
}

async fn none() -> &'static str {
    "ok"
}

async fn read(session: Session) -> sessio::Result<String> {
    let user: Option<User> = session.get(USER_KEY).await?;
    Ok(user.map(|u| u.username).unwrap_or_default())
}

async fn write(session: Session) -> sessio::Result<String> {
    let n: u64 = session.get(COUNTER_KEY).await?.unwrap_or(0) + 1;
    session.insert(COUNTER_KEY, n).await?;
    Ok(n.to_string())
}

async fn login(session: Session) -> sessio::Result<&'static str> {
    session.insert(USER_KEY, user_record()).await?;
    Ok("ok")
}

async fn seed(session: Session, Path(bytes): Path<usize>) -> sessio::Result<&'static str> {
    if bytes == 0 {
        session.insert(USER_KEY, user_record()).await?;
    } else {
        session.insert(BLOB_KEY, blob(bytes.min(64 * 1024))).await?;
    }
    Ok("ok")
}
