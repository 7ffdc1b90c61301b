//! [`SessionService`]: builds each request's [`Session`] from its `Cookie` headers.

use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::COOKIE;
use http::{Request, Response};
use tower_service::Service;

use super::future::ResponseFuture;
use crate::config::Config;
use crate::engine::SessionEngine;
use crate::session::{ClientInfo, Session};
use crate::users::Extras;

/// The service made by [`SessionLayer`](super::SessionLayer).
#[derive(Clone, Debug)]
pub struct SessionService<S> {
    pub(super) inner: S,
    pub(super) engine: Arc<dyn SessionEngine>,
    pub(super) config: Arc<Config>,
    pub(super) extras: Arc<Extras>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: From<String> + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let tracks_users = self.extras.index.is_some();
        let client = ClientInfo {
            // Read only when a login is recorded in a user's index.
            user_agent: if tracks_users {
                req.headers().get(http::header::USER_AGENT).cloned()
            } else {
                None
            },
            ip: if self.extras.record_ip() {
                client_ip(&req)
            } else {
                None
            },
        };
        let session = Session::from_headers(
            self.engine.clone(),
            self.config.clone(),
            self.extras.clone(),
            client,
            req.headers().get_all(COOKIE).iter(),
        );
        req.extensions_mut().insert(session.clone());
        // Called here, not inside the future: the service made ready is the one called,
        // with no clone of it per request.
        ResponseFuture {
            inner: self.inner.call(req),
            session: Some(session),
            config: self.config.clone(),
            saving: None,
        }
    }
}

/// The peer address axum records with `into_make_service_with_connect_info`.
fn client_ip<B>(req: &Request<B>) -> Option<String> {
    #[cfg(feature = "axum")]
    {
        req.extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip().to_string())
    }
    #[cfg(not(feature = "axum"))]
    {
        let _ = req;
        None
    }
}
