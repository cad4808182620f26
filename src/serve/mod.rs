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
//! `websub` (each with places of its own, [`MAX_WEBSUB_REQUESTS`]).

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
pub use state::{AppState, Shared};

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
        .route("/search", feeds::search(feeds::Format::Html))
        .route("/search.atom", feeds::search(feeds::Format::Atom))
        .route("/search.rss", feeds::search(feeds::Format::Rss))
        .route("/search.json", feeds::search(feeds::Format::Json))
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
/// Places of each WebSub route (`POST /hub`, the subscriber's callbacks): requests served
/// at the same time, at most; past it they are answered 503 at once. They are apart from
/// the feed requests' places, so uploads that drip their bodies never hold a place a
/// reader needs, and apart from each other, so a flood of `/hub` requests never refuses a
/// hub's delivery to us (a callback with a token we do not hold is answered before its
/// body is read, so only a hub we subscribed to can hold a callback place).
pub const MAX_WEBSUB_REQUESTS: usize = 32;
/// `POST /hub` places one client address (an IPv6 /64) holds at most; trusted proxies
/// (`[server] trusted_proxies`, loopback) are not counted: their clients cannot be told
/// apart, and the proxy applies its own limits.
pub const MAX_HUB_REQUESTS_PER_CLIENT: usize = 4;
/// Callback places one callback token holds at most (a hub sends a topic's deliveries one
/// after another), so whoever learns one callback URL cannot hold them all.
pub const MAX_CALLBACK_REQUESTS_PER_TOKEN: usize = 2;
/// A `POST /hub` request (an 8 KiB form at most) is answered within this, or 408.
pub const HUB_REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// `POST /hub` and `/websub/callback/{token}`: requests that carry a body from anyone, each
/// route with [`MAX_WEBSUB_REQUESTS`] places of its own.
fn websub_routes(state: AppState, hub: hub::Hub) -> Router {
    let hub_places = Places::new(
        MAX_WEBSUB_REQUESTS,
        MAX_HUB_REQUESTS_PER_CLIENT,
        client_key,
        "too many WebSub requests from your address at once",
    );
    let callback_places = Places::new(
        MAX_WEBSUB_REQUESTS,
        MAX_CALLBACK_REQUESTS_PER_TOKEN,
        token_key,
        "too many deliveries to this callback at once",
    );
    let hub_route = Router::new()
        .route("/hub", axum::routing::post(hub::endpoint))
        .layer(axum::extract::DefaultBodyLimit::max(hub::BODY_LIMIT))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            HUB_REQUEST_TIMEOUT,
        ))
        .layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                hub_places.clone().serve(request, next)
            },
        ));
    let callback_route = Router::new()
        .route(
            "/websub/callback/{token}",
            get(websub::verify).post(websub::deliver),
        )
        .layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                callback_places.clone().serve(request, next)
            },
        ));
    hub_route
        .merge(callback_route)
        .with_state(state)
        .layer(axum::Extension(hub))
}

/// A route's places: at most so many requests at once, and at most so many per key (a
/// client address, a callback token); a request finding none is answered 503 at once.
#[derive(Clone)]
struct Places {
    all: std::sync::Arc<tokio::sync::Semaphore>,
    per_key: usize,
    key: fn(&axum::extract::Request) -> Option<String>,
    held: std::sync::Arc<std::sync::Mutex<KeyCounts>>,
    refusal: &'static str,
}

type KeyCounts = std::collections::HashMap<String, usize>;

/// The client address a `/hub` request is counted under (`None`: a trusted proxy).
fn client_key(request: &axum::extract::Request) -> Option<String> {
    request
        .extensions()
        .get::<listener::ClientAddress>()
        .and_then(|c| c.0)
        .map(|ip| ip.to_string())
}

/// The callback token a delivery or verification is for.
fn token_key(request: &axum::extract::Request) -> Option<String> {
    request
        .uri()
        .path()
        .rsplit('/')
        .next()
        .map(|t| t.chars().take(128).collect())
}

impl Places {
    fn new(
        all: usize,
        per_key: usize,
        key: fn(&axum::extract::Request) -> Option<String>,
        refusal: &'static str,
    ) -> Places {
        Places {
            all: std::sync::Arc::new(tokio::sync::Semaphore::new(all)),
            per_key,
            key,
            held: std::sync::Arc::default(),
            refusal,
        }
    }

    async fn serve(
        self,
        request: axum::extract::Request,
        next: axum::middleware::Next,
    ) -> Response {
        let _key_place = match (self.key)(&request) {
            Some(key) => match KeyPlace::take(&self.held, key, self.per_key) {
                Some(place) => Some(place),
                None => return busy(self.refusal),
            },
            None => None,
        };
        let Ok(_place) = self.all.clone().try_acquire_owned() else {
            return busy("too many WebSub requests at once");
        };
        next.run(request).await
    }
}

/// One key's place among its share; given back when dropped.
struct KeyPlace {
    held: std::sync::Arc<std::sync::Mutex<KeyCounts>>,
    key: String,
}

impl KeyPlace {
    fn take(
        held: &std::sync::Arc<std::sync::Mutex<KeyCounts>>,
        key: String,
        max: usize,
    ) -> Option<KeyPlace> {
        let mut counts = held.lock().unwrap_or_else(|e| e.into_inner());
        let n = counts.entry(key.clone()).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(KeyPlace {
            held: held.clone(),
            key,
        })
    }
}

impl Drop for KeyPlace {
    fn drop(&mut self) {
        let mut counts = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = counts.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

fn busy(reason: &'static str) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(axum::http::header::RETRY_AFTER, "10")],
        format!("{reason}; try again shortly\n"),
    )
        .into_response()
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}
