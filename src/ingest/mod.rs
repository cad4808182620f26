//! Polling: when each source is due ([`timing`]), one task per source ([`scheduler`]), one
//! poll of one source through fetch, parse, normalise and store ([`poll`], [`page`]), what
//! makes a poll fail ([`error`]), the full text of new entries ([`fulltext`]), and the
//! feeds a site offers, for `tributary add` ([`discover`]).

pub mod discover;
pub mod error;
pub mod fulltext;
pub mod page;
pub mod poll;
pub mod preview;
pub mod push;
pub mod scheduler;
pub mod timing;
