//! sessio's whole conformance suite against `MapStore`, in one line.

sessio_conformance::conformance!(
    map_store,
    store = |config: &sessio::Config| {
        let clock = config.clock().clone();
        async move { Some(::map_store::MapStore::new(clock)) }
    }
);
