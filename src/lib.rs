//! tributary gathers many RSS, Atom and JSON feeds into one store and publishes them again as
//! combined feeds.
//!
//! # Layout
//!
//! Data flows one way, one module per stage:
//!
//! ```text
//! config -> scheduler -> fetch -> parse -> normalise/dedup -> store -> render -> http
//! ```
//!
//! - [`config`]: reads and validates `feeds.toml` (what the user wrote, then what we run).
//! - [`scheduler`]: one task per source, each on its own interval with jitter, under a global
//!   concurrency limit.
//! - [`fetch`]: HTTP(S) and `file://` retrieval with conditional GET, timeouts and a body cap.
//! - [`parse`]: raw bytes to a parsed feed (every common format); no I/O. [`charset`] first
//!   turns the bytes into UTF-8 (BOM, HTTP charset, XML declaration, in RFC 7303's order);
//!   [`dates`] reads the dates feeds really write.
//! - [`normalise`]: parsed feed to our own [`model::Entry`], with stable identities, plain-text
//!   titles and sanitised HTML; also decides whether a polled entry is new, updated or
//!   unchanged. No I/O.
//! - [`store`]: the only module that touches sled.
//! - [`render`]: entries to Atom 1.0 and RSS 2.0 documents with the writer crates; no I/O.
//! - [`http`]: the axum router; it reads the store and never triggers a fetch.
//! - [`serve`]: the HTTP connections (hyper): header and idle timeouts, the connection cap
//!   with eviction of idle connections, the per-address limit.
//! - [`poll`]: one poll of one source through fetch, parse, normalise and store.
//! - [`metrics`]: Prometheus counters for `/metrics`.
//! - [`opml`]: the sources as OPML, and OPML subscriptions added to `feeds.toml`.
//! - [`app`]: wires the stages together into the daemon and the `once` command.
//! - [`shutdown`]: turns SIGTERM and SIGINT into a cancellation every task observes.
//! - [`status`]: each source's health, for `/healthz` and `tributary status`.
//! - [`supervise`]: owns the running config and the source tasks: reloads `feeds.toml`
//!   (SIGHUP or a change of the file; [`reload`] says what changed), runs retention,
//!   beats the watchdog's heartbeat.
//! - [`systemd`]: readiness, reload, stopping and watchdog notifications to systemd.

pub mod app;
pub mod config;
pub mod daemon;
pub mod feed;
pub mod fetch;
pub mod ingest;
pub mod model;
pub mod render;
pub mod serve;
pub mod store;

/// The version string used in the User-Agent and the generator element of output feeds.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
