//! # sessio-conformance
//!
//! The conformance suite of sessio's stores: Django's `SessionTestsMixin`
//! (tests/sessions_tests), written once, run against every engine sessio ships and against
//! any store written elsewhere, in one macro line.
//!
//! A store implements [`sessio::store::SessionStore`]; its tests run the suite with
//! [`conformance!`]:
//!
//! ```ignore
//! // tests/conformance.rs of a crate that implements `MyStore`
//! sessio_conformance::conformance!(my_store, store = |_config| async { Some(MyStore::new()) });
//! ```
//!
//! The closure gets the suite's [`Config`](sessio::Config) (its keys, its clock frozen at
//! [`fixture::T`]) and returns the store to test, or `None` to skip the tests when the
//! store's server is unreachable ([`fixture::skip`] says so, or fails under
//! `SESSIO_REQUIRE_SERVICES=1`). Each test gets a store of its own: give each one its own
//! data (a table, key prefix or directory of its own).
//!
//! The cases use a controllable clock, so expiry, idle and absolute timeouts, and stolen
//! cookies are checked without waiting; a store reads time only through the `expires` it
//! is given, or the configuration's clock.

pub mod cases;
pub mod fixture;

/// sessio, for the macro's paths.
#[doc(hidden)]
pub use sessio;

/// Runs one case on a current-thread runtime (what `#[tokio::test]` does), so that the
/// crate using [`conformance!`] needs no runtime of its own.
#[doc(hidden)]
pub fn run<F: std::future::Future<Output = ()>>(case: F) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(case)
}

/// Runs one case on a runtime with four worker threads (for the cases about concurrency).
#[doc(hidden)]
pub fn run_threaded<F: std::future::Future<Output = ()>>(case: F) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(case)
}

/// Runs every conformance case as a `#[test]` in a module named `$name`.
///
/// * `conformance!(name, store = |config| async { Some(store) })`: a
///   [`SessionStore`](sessio::store::SessionStore), behind the core's
///   [`ServerEngine`](sessio::server::ServerEngine);
/// * `conformance!(name, path::to::make)`: any engine, from a [`fixture::Make`].
#[macro_export]
macro_rules! conformance {
    ($name:ident, store = $store:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn make(
                builder: $crate::sessio::ConfigBuilder,
            ) -> ::std::pin::Pin<
                ::std::boxed::Box<
                    dyn ::std::future::Future<Output = Option<$crate::fixture::Fixture>> + Send,
                >,
            > {
                ::std::boxed::Box::pin($crate::fixture::store_fixture(builder, $store))
            }

            $crate::conformance!(@cases make);
        }
    };
    ($name:ident, $make:path) => {
        mod $name {
            $crate::conformance!(@cases $make);
        }
    };
    (@cases $make:path) => {
        $crate::conformance!(@case $make, new_session);
        $crate::conformance!(@case $make, get_empty);
        $crate::conformance!(@case $make, store);
        $crate::conformance!(@case $make, pop);
        $crate::conformance!(@case $make, pop_missing);
        $crate::conformance!(@case $make, setdefault);
        $crate::conformance!(@case $make, update);
        $crate::conformance!(@case $make, has_key);
        $crate::conformance!(@case $make, keys_and_data);
        $crate::conformance!(@case $make, clear);
        $crate::conformance!(@case $make, save_and_exists);
        $crate::conformance!(@case $make, delete);
        $crate::conformance!(@case $make, flush);
        $crate::conformance!(@case $make, cycle);
        $crate::conformance!(@case $make, cycle_without_loading_keeps_data);
        $crate::conformance!(@case $make, save_doesnt_clear_data);
        $crate::conformance!(@case $make, invalid_key);
        $crate::conformance!(@case $make, key_length_rules);
        $crate::conformance!(@case $make, default_expiry);
        $crate::conformance!(@case $make, custom_expiry_seconds);
        $crate::conformance!(@case $make, custom_expiry_datetime);
        $crate::conformance!(@case $make, custom_expiry_reset);
        $crate::conformance!(@case $make, expire_at_browser_close);
        $crate::conformance!(@case $make, actual_expiry);
        $crate::conformance!(@case $make, cookie_age_expiry);
        $crate::conformance!(@case $make, load_does_not_create_record);
        $crate::conformance!(@case $make, save_does_not_resurrect);
        $crate::conformance!(@case $make, typed_values_round_trip);
        $crate::conformance!(@case $make, python_data_round_trips);
        $crate::conformance!(@case $make, clear_expired);
        $crate::conformance!(@case $make, concurrent_sessions_are_independent);
        $crate::conformance!(@case $make, idle_and_absolute_timeouts);
        $crate::conformance!(@case $make, user_sessions_list_and_revoke);
        $crate::conformance!(@case $make, hashed_ids_at_rest);
        $crate::conformance!(@case $make, user_index_survives_key_rotation);
        $crate::conformance!(@case $make, stolen_cookie_detection);
        $crate::conformance!(@case $make, versioned_saves);
        $crate::conformance!(@case $make, interleaved_requests_merge);
        $crate::conformance!(@case $make, writes_read_back_in_order);

        #[test]
        fn concurrent_writers_keep_each_others_keys() {
            $crate::run_threaded($crate::cases::concurrent_writers_keep_each_others_keys($make))
        }
    };
    (@case $make:path, $case:ident) => {
        #[test]
        fn $case() {
            $crate::run($crate::cases::$case($make))
        }
    };
}
