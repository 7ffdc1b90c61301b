//! [`SessionLayer`]: adds a [`Session`](crate::Session) to every request.

use std::sync::Arc;

use tower_layer::Layer;

use super::service::SessionService;
use crate::config::Config;
use crate::engine::SessionEngine;
use crate::users::Extras;

/// Adds a [`Session`](crate::Session) to every request. Made by [`SessionManager::layer`](crate::SessionManager::layer).
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
