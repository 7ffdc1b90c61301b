//! The benchmark app on axum: with sessio's [`SessionLayer`](sessio::SessionLayer), and the
//! same routes without sessions (the ceiling every session framework is measured against).
//!
//! Handlers use only sessio's public API, as an application would.

use axum::extract::Path;
use axum::routing::get;
use axum::Router;
use sessio::{Session, SessionManager};

use crate::workload::{blob, user_record, User, BLOB_KEY, COUNTER_KEY, USER_KEY};

/// The routes of [`crate::workload`] on sessio, behind `manager`'s layer.
pub fn sessio_router(manager: &SessionManager) -> Router {
    Router::new()
        .route("/none", get(none))
        .route("/read", get(read))
        .route("/write", get(write))
        .route("/login", get(login))
        .route("/seed/{bytes}", get(seed))
        .layer(manager.layer())
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
