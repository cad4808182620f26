//! Polling: when each source is due ([`timing`]), one task per source ([`scheduler`]), one
//! poll of one source through fetch, parse, normalise and store ([`poll`], [`page`]), what
//! makes a poll fail ([`error`]), and the full text of new entries ([`fulltext`]).

pub mod error;
pub mod fulltext;
pub mod page;
pub mod poll;
pub mod scheduler;
pub mod timing;
