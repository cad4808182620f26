//! The HTTP server: published feeds, their HTML views (the river of news), the status page
//! and `/healthz`.
//!
//! It only reads the store; it never triggers a fetch, and every store read goes through
//! [`Store::call`](crate::store::Store::call) so the runtime's workers stay free. This file
//! holds the [`router`]; what the handlers share ([`AppState`]) is in `state`, their errors
//! in `error`, the handlers in `feeds` (published feeds and their HTML views, `/` among
//! them) and `pages` (`/status`, `/healthz`,
//! `/metrics`, `/opml`), the render cache in `cache`, the connections in `listener`, the
//! WebSub hub (`POST /hub` and its deliveries) in `hub`, the subscriber's callbacks in
//! `websub` (both with places of their own, [`MAX_WEBSUB_REQUESTS`]).

mod cache;
mod error;
mod feeds;
pub mod hub;
mod hub_counts;
mod hub_queue;
pub mod listener;
mod pages;
mod state;
mod websub;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

pub use cache::RenderCache;
pub use error::ServeError;
pub use feeds::{ATOM_TYPE, CONTENT_SECURITY_POLICY, HTML_TYPE, JSON_TYPE, MAX_LIMIT, RSS_TYPE};
pub use listener::REQUEST_TIMEOUT;
pub use state::AppState;

pub fn router(state: AppState, hub: hub::Hub) -> Router {
    // Cheap reads that must answer while feeds queue: outside the limit on feed requests.
    let probes = Router::new()
        .route("/healthz", get(pages::healthz))
        .route("/metrics", get(pages::metrics))
        .with_state(state.clone());
    Router::new()
        .route("/", feeds::everything(feeds::Format::Html))
        .route("/status", get(pages::status))
        .route("/feed.atom", feeds::everything(feeds::Format::Atom))
        .route("/feed.rss", feeds::everything(feeds::Format::Rss))
        .route("/feed.json", feeds::everything(feeds::Format::Json))
        // /sources/{name}.{fmt}, /tags/{tag}.{fmt}, /feeds/{name}.{fmt}
        .route("/{folder}/{file}", get(feeds::folder_feed))
        .route("/opml", get(pages::opml))
        .fallback(not_found)
        .with_state(state.clone())
        // At most this many requests are served at once (one count across these routes);
        // the rest wait their turn.
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
            MAX_CONCURRENT_REQUESTS,
        ))
        .merge(probes)
        .merge(websub_routes(state, hub))
        // A request that takes this long is answered 408 and its work dropped.
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
}

/// Requests served at the same time, at most.
pub const MAX_CONCURRENT_REQUESTS: usize = 256;
/// WebSub requests (`/hub`, the subscriber's callbacks) served at the same time, at most;
/// past it they are answered 503 at once. They have places of their own, so uploads that
/// drip their bodies never hold the places readers' requests need.
pub const MAX_WEBSUB_REQUESTS: usize = 64;

/// `POST /hub` and `/websub/callback/{token}`: requests that carry a body from anyone, with
/// their own [`MAX_WEBSUB_REQUESTS`] places.
fn websub_routes(state: AppState, hub: hub::Hub) -> Router {
    let places = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_WEBSUB_REQUESTS));
    Router::new()
        .route(
            "/hub",
            axum::routing::post(hub::endpoint)
                .layer(axum::extract::DefaultBodyLimit::max(hub::BODY_LIMIT)),
        )
        .route(
            "/websub/callback/{token}",
            get(websub::verify).post(websub::deliver),
        )
        .with_state(state)
        .layer(axum::Extension(hub))
        .layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                let places = places.clone();
                async move {
                    let Ok(_place) = places.try_acquire_owned() else {
                        return (
                            StatusCode::SERVICE_UNAVAILABLE,
                            [(axum::http::header::RETRY_AFTER, "10")],
                            "too many WebSub requests at once; try again shortly\n",
                        )
                            .into_response();
                    };
                    next.run(request).await
                }
            },
        ))
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}
