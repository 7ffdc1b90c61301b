//! # sessio-demo
//!
//! A small shop that shows what sessio does: log in as a demo user, fill a cart, and watch
//! the session (its data, cookie, id and expiry) change on every page. It is an ordinary
//! axum app that uses only sessio's public API, so it doubles as an example.
//!
//! ```text
//! cargo run --release -p sessio-demo                            # db engine, SQLite in .sessio-demo/
//! cargo run --release -p sessio-demo -- --engine signed-cookies    # in the cookie, signed
//! cargo run --release -p sessio-demo -- --engine encrypted-cookies # in the cookie, encrypted
//! cargo run --release -p sessio-demo -- --engine file              # files in .sessio-demo/sessions/
//! cargo run --release -p sessio-demo -- --engine cache             # this process's memory
//! cargo run --release -p sessio-demo -- --database-url postgres://postgres@127.0.0.1/test
//! cargo run --release -p sessio-demo -- --cache-url redis://127.0.0.1:6379/0
//! ```
//!
//! The `sessio-demo` binary (`src/main.rs`) parses those flags into [`DemoOptions`] and
//! calls [`serve`].
//!
//! * [`app`] builds the router for a [`SessionManager`]; tests drive it with
//!   `tower::ServiceExt::oneshot`, no server needed.
//! * [`serve`] runs it: settings from `SESSIO_*` variables, a secret key of its own when
//!   none is set (saved in the data directory so sessions survive restarts), and a port.
//! * [`store`] chooses the engine and its store from command-line options, and says where
//!   the sessions live (the page shows it too).
//!
//! | route | what it does |
//! |---|---|
//! | `GET /` | account, shop, cart and the session panel |
//! | `POST /login` | `username`, `password` (the user name): cycles the session id, stores the user |
//! | `POST /logout` | flushes the session |
//! | `POST /cart/add` | `product`: one more of it in the cart |
//! | `POST /cart/clear` | empties the cart |
//! | `GET /api/session` | the session data as JSON |

#![warn(missing_docs)]

use axum::routing::{get, post};
use axum::Router;
use sessio::SessionManager;

pub mod catalog;
mod handlers;
pub mod pages;
mod serve;
pub mod store;

pub use serve::{
    demo_config, load_or_create_secret_key, serve, DemoOptions, KeySource, DEFAULT_ADDR,
    DEFAULT_DATA_DIR,
};
pub use store::StoreOptions;

/// The session key that holds the logged-in user name.
pub const USER_KEY: &str = "user";
/// The session key that holds the cart (`{"product id": quantity}`).
pub const CART_KEY: &str = "cart";

/// The demo site, with the session layer of `sessions`.
///
/// ```
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let config = sessio::Config::builder()
///     .secret_key("a-demo-secret-key-that-is-long-enough-for-the-checks-0123")
///     .engine(sessio::EngineKind::SignedCookies)
///     .build()?;
/// let sessions = sessio::SessionManager::open(config).await?;
/// let app = sessio_demo::app(&sessions);
/// # let _ = app; Ok(()) }
/// ```
pub fn app(sessions: &SessionManager) -> Router {
    Router::new()
        .route("/", get(handlers::home))
        .route("/login", post(handlers::login))
        .route("/logout", post(handlers::logout))
        .route("/cart/add", post(handlers::cart_add))
        .route("/cart/clear", post(handlers::cart_clear))
        .route("/api/session", get(handlers::api_session))
        .fallback(handlers::not_found)
        .layer(sessions.layer())
        // Outermost, so the logged status is the final one, after the session was saved.
        .layer(axum::middleware::from_fn(handlers::log_request))
}
