//! The HTTP server: published feeds, the status page and `/healthz`.
//!
//! It only reads the store; it never triggers a fetch, and every store read goes through
//! [`Store::call`] so the runtime's workers stay free. This file holds what the handlers
//! share ([`AppState`]) and the [`router`]; the handlers live in `feeds` (published feeds)
//! and `pages` (`/`, `/healthz`, `/metrics`, `/opml`), the render cache in `cache`, the
//! connections in `listener`.

mod cache;
mod feeds;
pub mod listener;
mod pages;

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::store::{Store, StoreError};

pub use cache::RenderCache;

pub const ATOM_TYPE: &str = "application/atom+xml; charset=utf-8";
pub const RSS_TYPE: &str = "application/rss+xml; charset=utf-8";

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    /// The running config; a reload replaces it (see [`AppState::config`]).
    pub live_config: tokio::sync::watch::Receiver<Arc<Config>>,
    /// When the daemon started: `updated` of a feed that has no entries yet.
    pub started: DateTime<Utc>,
    /// Rendered documents, by path and query, for the store generation they were made at.
    pub cache: Arc<std::sync::Mutex<RenderCache>>,
    pub metrics: crate::daemon::metrics::Metrics,
}

impl AppState {
    /// The config as of now (a reload may replace it between two calls).
    pub fn config(&self) -> Arc<Config> {
        self.live_config.borrow().clone()
    }
}

pub fn router(state: AppState) -> Router {
    // Cheap reads that must answer while feeds queue: outside the limit on feed requests.
    let probes = Router::new()
        .route("/healthz", get(pages::healthz))
        .route("/metrics", get(pages::metrics))
        .with_state(state.clone());
    Router::new()
        .route("/", get(pages::index))
        .route("/feed.atom", feeds::everything(feeds::Format::Atom))
        .route("/feed.rss", feeds::everything(feeds::Format::Rss))
        .route("/feed.json", feeds::everything(feeds::Format::Json))
        // /sources/{name}.{fmt}, /tags/{tag}.{fmt}, /feeds/{name}.{fmt}
        .route("/{folder}/{file}", get(feeds::folder_feed))
        .route("/opml", get(pages::opml))
        .fallback(not_found)
        .with_state(state)
        // At most this many requests are served at once (one count across these routes);
        // the rest wait their turn.
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
            MAX_CONCURRENT_REQUESTS,
        ))
        .merge(probes)
        // A request that takes this long is answered 408 and its work dropped.
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
}

/// How long one request may take.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// Requests served at the same time, at most.
pub const MAX_CONCURRENT_REQUESTS: usize = 256;

pub const JSON_TYPE: &str = "application/feed+json; charset=utf-8";

/// The most entries `?limit=` may ask for.
pub const MAX_LIMIT: usize = 1000;

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

/// Why a request could not be answered (the reader sees a 500 without the details; the log
/// has them).
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("compressing a document failed")]
    Compress(#[source] std::io::Error),
    #[error("a render or compression stopped unfinished")]
    Task(#[from] tokio::task::JoinError),
    #[error("the render permits are closed")]
    Closed(#[from] tokio::sync::AcquireError),
}

/// A 500 for the reader; the error with its causes for the log.
fn internal_error(e: &ServeError) -> Response {
    let mut chain = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        chain.push_str(&format!(": {c}"));
        cause = c.source();
    }
    tracing::error!(error = %chain, "request failed");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal error: the store could not be read\n",
    )
        .into_response()
}
