//! What the handlers share: the store, the live config, the render cache, the metrics.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::cache::RenderCache;
use crate::config::Config;
use crate::store::Store;

/// What the handlers share: one `Arc`, so the copy each request's extractors take is one
/// atomic increment, not one per counter of [`Shared`] (that was a fifth of a warm feed's
/// cost).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> AppState {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] holds.
pub struct Shared {
    pub store: Store,
    /// The running config; a reload replaces it (see [`AppState::config`]).
    pub live_config: tokio::sync::watch::Receiver<Arc<Config>>,
    /// When the daemon started: `updated` of a feed that has no entries yet.
    pub started: DateTime<Utc>,
    /// Rendered documents, by path and query, for the store generation they were made at.
    pub cache: Arc<std::sync::Mutex<RenderCache>>,
    pub metrics: crate::daemon::metrics::Metrics,
    /// The WebSub hub's subscription counts, for `/healthz` (the hub itself is the `/hub`
    /// route's extension: it renders with this state).
    pub hub_counts: Arc<std::sync::Mutex<super::hub_counts::Counts>>,
    /// The WebSub subscriber, which answers its callbacks.
    pub websub: crate::daemon::websub::Websub,
}

impl Shared {
    /// The config as of now (a reload may replace it between two calls).
    pub fn config(&self) -> Arc<Config> {
        self.live_config.borrow().clone()
    }
}
