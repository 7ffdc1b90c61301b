//! The routes. Every POST answers with 303 See Other to `/` (POST-redirect-GET), so a
//! reload never resubmits a form.

use std::time::Instant;

use axum::extract::rejection::FormRejection;
use axum::extract::Request;
use axum::http::header::{CACHE_CONTROL, COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Form, Json};
use serde::Deserialize;
use sessio::Session;
use time::format_description::well_known::Rfc3339;

use crate::catalog::{self, Cart};
use crate::pages::{self, HomePage, SessionPanel};
use crate::{CART_KEY, USER_KEY};

/// What can go wrong in a handler.
#[derive(Debug)]
pub(crate) enum DemoError {
    /// The request was wrong; the message tells the visitor what to change.
    BadRequest(String),
    /// The session store failed; sessio picks the status and the public message.
    Session(sessio::Error),
}

impl From<sessio::Error> for DemoError {
    fn from(e: sessio::Error) -> Self {
        DemoError::Session(e)
    }
}

impl IntoResponse for DemoError {
    fn into_response(self) -> Response {
        match self {
            DemoError::BadRequest(message) => {
                let page = pages::error_page(400, "Bad request", &message);
                (StatusCode::BAD_REQUEST, no_store(), Html(page)).into_response()
            }
            DemoError::Session(e) => e.into_response(),
        }
    }
}

/// Pages show session contents: no shared cache may keep them.
fn no_store() -> [(axum::http::HeaderName, HeaderValue); 1] {
    [(CACHE_CONTROL, HeaderValue::from_static("no-store"))]
}

/// The form, or a 400 that says what was wrong with it (axum's own rejection is a 422 for
/// some cases, and plain text).
fn read_form<T>(form: Result<Form<T>, FormRejection>) -> Result<T, DemoError> {
    form.map(|Form(value)| value).map_err(|rejection| {
        DemoError::BadRequest(format!(
            "The form could not be read: {}",
            rejection.body_text()
        ))
    })
}

/// At most `max` characters of `text`, to echo user input in messages without echoing
/// megabytes.
fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}\u{2026}", &text[..cut]),
        None => text.to_owned(),
    }
}

async fn current_user(session: &Session) -> sessio::Result<Option<String>> {
    // Read leniently: a session shared with another app may hold any JSON under "user".
    Ok(session
        .get_value(USER_KEY)
        .await?
        .and_then(|v| v.as_str().map(str::to_owned)))
}

async fn current_cart(session: &Session) -> sessio::Result<Cart> {
    Ok(Cart::from_session_value(
        session.get_value(CART_KEY).await?.as_ref(),
    ))
}

async fn session_panel(session: &Session, headers: &HeaderMap) -> sessio::Result<SessionPanel> {
    let config = session.config();
    let cookie_name = config.cookie_name().to_owned();
    let cookie_bytes = sessio::cookie::find(headers.get_all(COOKIE).iter(), &cookie_name)
        .map(|value| cookie_name.len() + 1 + value.len());
    let data = session.data().await?;
    let data_json =
        serde_json::to_string_pretty(&data).unwrap_or_else(|e| format!("(unprintable: {e})"));
    let client_side = session.engine().is_client_side();
    // Only a prefix: the full id is a bearer credential and has no business on a page.
    let id_prefix = if client_side {
        None
    } else {
        session.id().map(|id| id.chars().take(8).collect())
    };
    let expiry_date = session.expiry_date().await?;
    Ok(SessionPanel {
        engine: session.engine().name(),
        location: crate::store::describe(config),
        client_side,
        data_json,
        cookie_name,
        cookie_bytes,
        id_prefix,
        expiry_age: session.expiry_age().await?,
        expiry_date: expiry_date
            .replace_nanosecond(0)
            .unwrap_or(expiry_date)
            .format(&Rfc3339)
            .unwrap_or_else(|_| expiry_date.to_string()),
        at_browser_close: session.expires_at_browser_close().await?,
    })
}

/// `GET /`: account, shop, cart and session panel.
pub(crate) async fn home(session: Session, headers: HeaderMap) -> Result<Response, DemoError> {
    let page = HomePage {
        user: current_user(&session).await?,
        cart: current_cart(&session).await?,
        panel: session_panel(&session, &headers).await?,
    };
    Ok((no_store(), Html(pages::home(&page))).into_response())
}

/// The login form.
#[derive(Debug, Deserialize)]
pub(crate) struct LoginForm {
    username: String,
    password: String,
}

/// `POST /login`: checks the demo password, gives the session a new id (against session
/// fixation) keeping its data, and stores the user name. Logging in as someone else
/// starts from an empty session.
pub(crate) async fn login(
    session: Session,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Result<Redirect, DemoError> {
    let form = read_form(form)?;
    let username = form.username.trim();
    let user = catalog::user(username).ok_or_else(|| {
        DemoError::BadRequest(format!(
            "There is no demo user called \u{201c}{}\u{201d}. Pick alice, bob or carol.",
            shorten(username, 40)
        ))
    })?;
    if !catalog::password_matches(user, &form.password) {
        return Err(DemoError::BadRequest(format!(
            "Wrong password for {}. In this demo the password is the user name: \u{201c}{}\u{201d}.",
            user.display_name, user.username
        )));
    }
    // As django.contrib.auth.login: another user's session is not inherited (flush);
    // otherwise the same data continues under a new id.
    match current_user(&session).await? {
        Some(previous) if previous != user.username => session.flush().await?,
        _ => session.cycle_id().await?,
    }
    session.insert(USER_KEY, user.username).await?;
    tracing::info!(user = user.username, "logged in");
    Ok(Redirect::to("/"))
}

/// `POST /logout`: deletes the session and its data (the cart too).
pub(crate) async fn logout(session: Session) -> Result<Redirect, DemoError> {
    session.flush().await?;
    Ok(Redirect::to("/"))
}

/// The add-to-cart form.
#[derive(Debug, Deserialize)]
pub(crate) struct AddToCartForm {
    product: String,
}

/// `POST /cart/add`: one more of a product.
pub(crate) async fn cart_add(
    session: Session,
    form: Result<Form<AddToCartForm>, FormRejection>,
) -> Result<Redirect, DemoError> {
    let form = read_form(form)?;
    let product = catalog::product(form.product.trim()).ok_or_else(|| {
        DemoError::BadRequest(format!(
            "There is no product \u{201c}{}\u{201d} in this shop.",
            shorten(&form.product, 40)
        ))
    })?;
    let mut cart = current_cart(&session).await?;
    cart.add(product).map_err(DemoError::BadRequest)?;
    session
        .insert_value(CART_KEY, cart.to_session_value())
        .await?;
    Ok(Redirect::to("/"))
}

/// `POST /cart/clear`: empties the cart and keeps the rest of the session.
pub(crate) async fn cart_clear(session: Session) -> Result<Redirect, DemoError> {
    session.remove_value(CART_KEY).await?;
    Ok(Redirect::to("/"))
}

/// `GET /api/session`: the session data as JSON.
pub(crate) async fn api_session(session: Session) -> Result<Response, DemoError> {
    Ok((no_store(), Json(session.data().await?)).into_response())
}

/// Any other path.
pub(crate) async fn not_found() -> Response {
    let page = pages::error_page(404, "Not found", "There is no page at this address.");
    (StatusCode::NOT_FOUND, Html(page)).into_response()
}

/// One log line per request, with the final status (after the session was saved).
pub(crate) async fn log_request(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let start = Instant::now();
    let res = next.run(req).await;
    tracing::info!(
        %method,
        %path,
        status = res.status().as_u16(),
        elapsed_ms = start.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    res
}

#[cfg(test)]
mod tests {
    use super::shorten;

    #[test]
    fn shortens_on_char_boundaries() {
        assert_eq!(shorten("abc", 5), "abc");
        assert_eq!(shorten("ééééé", 2), "éé\u{2026}");
    }
}
