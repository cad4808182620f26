//! The feed itself, from raw bytes to our own entries: pure functions, no I/O.
//!
//! In the order a document goes through them: [`charset`] (bytes to UTF-8), [`parse`]
//! (every feed format, with its bounds, rewrites, extras, repairs and HTML-page discovery),
//! [`dates`] (the dates feeds really write), [`normalise`] (parsed feed to our entries,
//! and new/updated/unchanged), with [`identity`] (entry and article keys, fingerprints) and
//! [`text`] (plain text, sanitised HTML, XML characters); [`rules`] (include/exclude),
//! [`template`] (title templates) and [`transform`] (both applied to a source's entries);
//! [`extract`] (an article page's main text, for full text).

pub mod charset;
pub mod dates;
pub mod extract;
pub mod identity;
pub mod normalise;
pub mod parse;
pub mod rules;
pub mod scrape;
pub mod template;
pub mod text;
pub mod transform;
pub mod websub;
