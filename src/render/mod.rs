//! Entries to the published documents: Atom 1.0 (`atom`), RSS 2.0 (`rss`), JSON Feed 1.1
//! (`json`), with the writer crates (never by string formatting, so escaping is always
//! right); the OPML subscription list (`opml`), the status page (`page`) and the river of news
//! (`river`, from minijinja templates). No I/O: each
//! takes its data and returns the document.
//!
//! What the W3C Feed Validator asks for is built in: a self link equal to the URL requested,
//! a feed-level author (so every entry has one), `id`/`title`/`updated` inside each Atom
//! `<source>`, RFC 3339 dates in Atom and RFC 822 dates in RSS, unique ids.

mod atom;
mod clean;
mod json;
mod meta;
pub mod opml;
pub mod page;
pub mod river;
mod rss;

pub use atom::atom;
pub use json::json;
pub use meta::{FeedMeta, SourceInfo, public_source_url, source_feed_url};
pub use rss::rss;
