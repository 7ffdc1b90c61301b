//! The axum glue: [`Session`](crate::Session) as an extractor, and [`Error`](crate::Error)
//! as a response.

use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;
use http::StatusCode;

use crate::{Error, Session};

/// The handler asked for a [`Session`] but no `SessionLayer` is installed.
#[derive(Debug, Clone, Copy)]
pub struct MissingSessionLayer;

impl IntoResponse for MissingSessionLayer {
    fn into_response(self) -> Response {
        tracing::error!(
            "a handler extracts sessio::Session but the router has no SessionLayer: \
             add `.layer(sessions.layer())`"
        );
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal server error: the session middleware is not installed.",
        )
            .into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = MissingSessionLayer;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Session>()
            .cloned()
            .ok_or(MissingSessionLayer)
    }
}

/// Lets handlers use `?` on session calls: the error becomes a response with a fitting
/// status and a log line.
impl IntoResponse for Error {
    fn into_response(self) -> Response {
        if matches!(self, Error::SessionInterrupted) {
            tracing::warn!(error = %self, "session interrupted");
        } else {
            tracing::error!(error = %self, source = ?std::error::Error::source(&self), "session error");
        }
        (self.status(), self.public_message()).into_response()
    }
}
