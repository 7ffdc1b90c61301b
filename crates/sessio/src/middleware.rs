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

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{CACHE_CONTROL, CONTENT_TYPE, COOKIE, SET_COOKIE, VARY};
use http::{HeaderMap, HeaderValue, Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use crate::config::Config;
use crate::engine::SessionEngine;
use crate::error::{Error, LogId};
use crate::session::{ClientInfo, Session};
use crate::users::Extras;

/// Adds a [`Session`] to every request. Made by [`SessionManager::layer`](crate::SessionManager::layer).
#[derive(Clone, Debug)]
pub struct SessionLayer {
    engine: Arc<dyn SessionEngine>,
    config: Arc<Config>,
    extras: Arc<Extras>,
}

impl SessionLayer {
    /// A layer over an engine with a configuration.
    pub fn new(engine: Arc<dyn SessionEngine>, config: Arc<Config>) -> Self {
        let extras = Arc::new(Extras::new(&config, &engine, None));
        Self {
            engine,
            config,
            extras,
        }
    }

    pub(crate) fn with_extras(
        engine: Arc<dyn SessionEngine>,
        config: Arc<Config>,
        extras: Arc<Extras>,
    ) -> Self {
        Self {
            engine,
            config,
            extras,
        }
    }
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService {
            inner,
            engine: self.engine.clone(),
            config: self.config.clone(),
            extras: self.extras.clone(),
        }
    }
}

/// The service made by [`SessionLayer`].
#[derive(Clone, Debug)]
pub struct SessionService<S> {
    inner: S,
    engine: Arc<dyn SessionEngine>,
    config: Arc<Config>,
    extras: Arc<Extras>,
}

/// The error that ended a request in the session middleware, put in the extensions of the
/// error response so an outer layer can inspect it.
#[derive(Clone, Debug)]
pub struct SessionError(pub Arc<Error>);

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

pin_project_lite::pin_project! {
    /// The response future of [`SessionService`]: the inner service's, then the session's
    /// save when there is one to make. A request that needs no store work finishes without
    /// an allocation of its own.
    pub struct ResponseFuture<F, ResBody> {
        #[pin]
        inner: F,
        session: Option<Session>,
        config: Arc<Config>,
        saving: Option<BoxFuture<Response<ResBody>>>,
    }
}

impl<F, ResBody, E> Future for ResponseFuture<F, ResBody>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    ResBody: From<String> + Send + 'static,
{
    type Output = Result<Response<ResBody>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            if let Some(saving) = this.saving.as_mut() {
                return saving.as_mut().poll(cx).map(Ok);
            }
            let mut res = std::task::ready!(this.inner.as_mut().poll(cx))?;
            let Some(session) = this.session.take() else {
                // Polled again after completion: the inner future decides.
                return Poll::Ready(Ok(res));
            };
            let plan = plan(&session, this.config, res.status());
            if !plan.needs_store() {
                apply(&session, this.config, &mut res, plan);
                return Poll::Ready(Ok(res));
            }
            let config = this.config.clone();
            *this.saving = Some(Box::pin(async move {
                match finish(&session, &config, &mut res, plan).await {
                    Ok(()) => res,
                    Err(error) => error_response(error, &session),
                }
            }));
        }
    }
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

/// What the end of a request does, decided from the session's flags (Django's
/// `SessionMiddleware.process_response`).
#[derive(Debug, Clone, Copy)]
struct Plan {
    /// Load before deciding (`save_every_request` on a session the handler never read).
    load_first: bool,
    /// Expire the cookie (the session ended up empty).
    remove_cookie: bool,
    /// Save and send the cookie.
    save: bool,
    /// Add `Vary: Cookie`.
    vary: bool,
}

impl Plan {
    fn needs_store(&self) -> bool {
        self.load_first || self.save
    }
}

fn plan(session: &Session, config: &Config, status: http::StatusCode) -> Plan {
    let server_error = status.is_server_error();
    let f = session.flags();
    if config.save_every_request() && !server_error && !f.loaded && f.has_id {
        // Django would save an unloaded session under an unknown key and fail; loading first
        // lets an unknown key turn into an empty session instead.
        return Plan {
            load_first: true,
            remove_cookie: false,
            save: false,
            vary: false,
        };
    }
    let remove_cookie = f.empty && f.had_cookie;
    // No save and no cookie on any 5xx: the handler's changes may be half-made.
    let save =
        !remove_cookie && (f.modified || config.save_every_request()) && !f.empty && !server_error;
    Plan {
        load_first: false,
        remove_cookie,
        save,
        vary: f.accessed || remove_cookie || save,
    }
}

/// Loads and saves as `plan` says, then writes the headers.
async fn finish<B>(
    session: &Session,
    config: &Config,
    res: &mut Response<B>,
    mut plan: Plan,
) -> Result<(), Error> {
    if plan.load_first {
        session.load_for_save().await?;
        plan = self::plan(session, config, res.status());
    }
    if plan.save {
        session.save().await?;
    }
    apply(session, config, res, plan);
    Ok(())
}

/// The response headers of a decided (and, if need be, saved) session.
fn apply<B>(session: &Session, config: &Config, res: &mut Response<B>, plan: Plan) {
    if plan.remove_cookie {
        append(
            res.headers_mut(),
            SET_COOKIE,
            crate::cookie::removal_cookie(config),
        );
        // As for a set cookie: a shared cache must not replay one visitor's logout to others.
        patch_cache_control(res.headers_mut(), config);
    } else if plan.save {
        let value = session.id().unwrap_or_default();
        let cookie = crate::cookie::set_cookie(config, &value, session.cookie_lifetime());
        append(res.headers_mut(), SET_COOKIE, cookie);
        patch_cache_control(res.headers_mut(), config);
    }
    if plan.vary {
        patch_vary_cookie(res.headers_mut());
    }
}

fn append(headers: &mut HeaderMap, name: http::HeaderName, value: String) {
    match HeaderValue::try_from(value) {
        Ok(v) => {
            headers.append(name, v);
        }
        // Unreachable with validated config and engine-made values; never panic on it.
        Err(e) => tracing::error!(error = %e, "session cookie is not a valid header value"),
    }
}

/// Adds `Cookie` to `Vary` unless it is already there (Django's `patch_vary_headers`).
fn patch_vary_cookie(headers: &mut HeaderMap) {
    if !headers.contains_key(VARY) {
        headers.insert(VARY, HeaderValue::from_static("Cookie"));
        return;
    }
    let mut existing: Vec<String> = Vec::new();
    for v in headers.get_all(VARY) {
        if let Ok(s) = v.to_str() {
            existing.extend(
                s.split(',')
                    .map(|p| p.trim().to_owned())
                    .filter(|p| !p.is_empty()),
            );
        }
    }
    if existing
        .iter()
        .any(|v| v == "*" || v.eq_ignore_ascii_case("cookie"))
    {
        return;
    }
    if existing.is_empty() {
        headers.insert(VARY, HeaderValue::from_static("Cookie"));
    } else {
        existing.push("Cookie".into());
        if let Ok(v) = HeaderValue::try_from(existing.join(", ")) {
            headers.insert(VARY, v);
        }
    }
}

/// Keeps shared caches from storing a response that sets or deletes someone's session cookie
/// (Flask CVE-2023-30861): adds the configured directive unless the response already says
/// `private` or `no-store`, and drops a contradicting `public`.
fn patch_cache_control(headers: &mut HeaderMap, config: &Config) {
    let Some(directive) = config.cache_control() else {
        return;
    };
    if !headers.contains_key(CACHE_CONTROL) {
        let value = match directive {
            "private" => Ok(HeaderValue::from_static("private")),
            "no-store" => Ok(HeaderValue::from_static("no-store")),
            other => HeaderValue::try_from(other),
        };
        if let Ok(v) = value {
            headers.insert(CACHE_CONTROL, v);
        }
        return;
    }
    let mut parts: Vec<String> = Vec::new();
    for v in headers.get_all(CACHE_CONTROL) {
        if let Ok(s) = v.to_str() {
            parts.extend(
                s.split(',')
                    .map(|p| p.trim().to_owned())
                    .filter(|p| !p.is_empty()),
            );
        }
    }
    if parts
        .iter()
        .any(|p| p.eq_ignore_ascii_case("private") || p.eq_ignore_ascii_case("no-store"))
    {
        return;
    }
    parts.retain(|p| !p.eq_ignore_ascii_case("public"));
    parts.push(directive.to_owned());
    if let Ok(v) = HeaderValue::try_from(parts.join(", ")) {
        headers.insert(CACHE_CONTROL, v);
    }
}

fn error_response<B: From<String>>(error: Error, session: &Session) -> Response<B> {
    let id = session.id().unwrap_or_default();
    match &error {
        Error::SessionInterrupted => tracing::warn!(
            session = %LogId(&id),
            "session deleted by a concurrent request before this one could save it"
        ),
        _ => tracing::error!(
            session = %LogId(&id),
            engine = session.engine().name(),
            error = %error,
            source = ?std::error::Error::source(&error),
            "session could not be saved"
        ),
    }
    let mut res = Response::new(B::from(error.public_message().to_owned()));
    *res.status_mut() = error.status();
    let headers = res.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(VARY, HeaderValue::from_static("Cookie"));
    res.extensions_mut().insert(SessionError(Arc::new(error)));
    res
}

#[cfg(feature = "axum")]
mod axum_support {
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

        async fn from_request_parts(
            parts: &mut Parts,
            _state: &S,
        ) -> Result<Self, Self::Rejection> {
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
}

#[cfg(feature = "axum")]
pub use axum_support::MissingSessionLayer;
