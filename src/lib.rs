//! tributary gathers many RSS, Atom and JSON feeds into one store and publishes them again
//! as combined feeds.
//!
//! # Layout
//!
//! Data flows one way, one folder per stage:
//!
//! ```text
//! config -> ingest (when) -> fetch -> feed (parse, normalise, rules) -> store -> render -> serve
//! ```
//!
//! - [`config`]: reads and validates `feeds.toml` (what the user wrote, then what we run).
//! - [`ingest`]: when each source is due, one task per source, one poll of one source, full
//!   text.
//! - [`fetch`]: HTTP(S) and `file://` retrieval with conditional GET, timeouts, a body cap
//!   and the address guard.
//! - [`feed`]: pure functions from raw bytes to our own entries: charset, parse, dates,
//!   normalise, identity, text, rules, templates, article extraction.
//! - [`store`]: the only module that touches sled; async code calls it through
//!   [`store::Store::call`].
//! - [`render`]: entries to Atom, RSS, JSON Feed, OPML and the HTML page; pure.
//! - [`serve`]: the HTTP server: router, feeds, render cache, pages, connections. It reads the
//!   store and never triggers a fetch.
//! - [`daemon`]: the daemon's life: the supervisor, reloads, retention passes, file watching,
//!   shutdown, systemd, status and metrics.
//! - [`app`]: wires the stages together (`run`, `once`, `prune`, `verify`, `status`).
//! - [`model`]: the data every stage shares (entries, source state, feed indexes).

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
