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
pub mod query;
pub mod render;
pub mod serve;
pub mod store;

/// The version string used in the User-Agent and the generator element of output feeds.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `error` with the chain of its causes, each after `separator`; a cause whose text an
/// earlier one already holds (an error that embeds its source's message, as `cannot listen
/// on ADDR: Address in use` does) is not repeated. For `main`'s messages and the logs.
pub fn with_causes(error: &(dyn std::error::Error + 'static), separator: &str) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let line = e.to_string();
        if !line.is_empty() && !text.contains(&line) {
            text.push_str(separator);
            text.push_str(&line);
        }
        cause = e.source();
    }
    text
}
