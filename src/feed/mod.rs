//! The feed itself, from raw bytes to our own entries: pure functions, no I/O.

pub mod charset;
pub mod dates;
pub mod extract;
pub mod normalise;
pub mod parse;
pub mod rules;
pub mod template;
pub mod transform;

/// How many entries of one document are read by default (`[fetch] max_entries`).
pub const DEFAULT_MAX_ENTRIES: usize = 5_000;
