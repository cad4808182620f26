//! Polling: when each source is due, one poll of one source through fetch, parse,
//! normalise and store, and the full text of new entries.

pub mod fulltext;
pub mod poll;
pub mod scheduler;
