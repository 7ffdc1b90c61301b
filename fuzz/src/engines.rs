//! What the targets that exercise sessio's engines and middleware share (`cookie_header`,
//! `encrypted_load`, `expiry_iso`, and `tests/`): a runtime for the async API, a
//! configuration, the sealed seeds, and a request through the middleware.

use std::cell::RefCell;
use std::future::Future;

use sessio::value::{Map, Value};

use crate::OLD_SECRET;

/// Runs a future to completion on a per-thread current-thread tokio runtime.
pub fn block_on<F: Future>(f: F) -> F::Output {
    thread_local! {
        static RT: RefCell<tokio::runtime::Runtime> = RefCell::new(
            tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("tokio runtime"),
        );
    }
    RT.with(|rt| rt.borrow().block_on(f))
}

/// The cookie name the engine targets use.
pub const COOKIE_NAME: &str = "sessionid";

/// A configuration with the secret `secret` (and [`OLD_SECRET`] as fallback), the cookie
/// name `cookie_name`, the given engine and clock.
pub fn config(
    secret: &str,
    cookie_name: &str,
    engine: sessio::EngineKind,
    clock: &sessio::clock::ManualClock,
) -> sessio::Config {
    sessio::Config::builder()
        .secret_key(secret)
        .fallback_keys([OLD_SECRET])
        .allow_weak_secret_key(true)
        .cookie_name(cookie_name)
        .engine(engine)
        .clock(clock.clone())
        .build()
        .expect("fuzz configuration")
}

/// Real sealed values of the encrypted-cookies engine (made by `tests/seeds.rs`), with the
/// data each holds and whether the fallback key sealed it. Their expiry is far in the
/// future of [`crate::T`].
pub fn sealed_seeds() -> Vec<(String, Map, bool)> {
    let seeds = sessio::value::from_str(include_str!("../seeds/encrypted_sealed.json"))
        .expect("seeds/encrypted_sealed.json");
    seeds
        .as_array()
        .expect("a list")
        .iter()
        .map(|s| {
            (
                s["value"].as_str().expect("value").to_owned(),
                s["data"].as_object().expect("data").clone(),
                s["stale_key"].as_bool().expect("stale_key"),
            )
        })
        .collect()
}

/// The key of the custom expiry in the session data.
pub const EXPIRY_KEY: &str = "_session_expiry";

/// A handler that sets `_session_expiry` to a value.
#[derive(Clone, Debug)]
struct SetExpiry(Value);

impl tower_service::Service<http::Request<()>> for SetExpiry {
    type Response = http::Response<String>;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<
        Box<dyn Future<Output = Result<http::Response<String>, std::convert::Infallible>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<()>) -> Self::Future {
        let session = req
            .extensions()
            .get::<sessio::Session>()
            .expect("the middleware adds the session")
            .clone();
        let value = self.0.clone();
        Box::pin(async move {
            session.insert_value(EXPIRY_KEY, value).await.unwrap();
            Ok(http::Response::new(String::new()))
        })
    }
}

/// One request without a cookie through the session middleware, to a handler that sets
/// `_session_expiry` to `value`; the response (with its `Set-Cookie`).
pub async fn set_expiry_through_middleware(
    engine: &std::sync::Arc<dyn sessio::SessionEngine>,
    config: &std::sync::Arc<sessio::Config>,
    value: Value,
) -> http::Response<String> {
    use tower_layer::Layer;
    use tower_service::Service;
    let mut service =
        sessio::SessionLayer::new(engine.clone(), config.clone()).layer(SetExpiry(value));
    match service.call(http::Request::new(())).await {
        Ok(res) => res,
        Err(never) => match never {},
    }
}
