//! What the end of a request does, decided from the session's flags: a faithful port of
//! Django's `SessionMiddleware.process_response` (no save on 5xx, Vary and Cache-Control,
//! the cookie's attributes), then the save and the headers.

use std::sync::Arc;

use http::header::{CACHE_CONTROL, CONTENT_TYPE, SET_COOKIE, VARY};
use http::{HeaderMap, HeaderValue, Response};

use crate::config::Config;
use crate::error::{Error, LogId};
use crate::session::Session;

/// The error that ended a request in the session middleware, put in the extensions of the
/// error response so an outer layer can inspect it.
#[derive(Clone, Debug)]
pub struct SessionError(pub Arc<Error>);

/// What the end of a request does, decided from the session's flags (Django's
/// `SessionMiddleware.process_response`).
#[derive(Debug, Clone, Copy)]
pub(super) struct Plan {
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
    pub(super) fn needs_store(&self) -> bool {
        self.load_first || self.save
    }
}

pub(super) fn plan(session: &Session, config: &Config, status: http::StatusCode) -> Plan {
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
pub(super) async fn finish<B>(
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
pub(super) fn apply<B>(session: &Session, config: &Config, res: &mut Response<B>, plan: Plan) {
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

pub(super) fn error_response<B: From<String>>(error: Error, session: &Session) -> Response<B> {
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
