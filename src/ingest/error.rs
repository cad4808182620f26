//! What can make a poll fail: [`PollError`], one kind per cause, each shown as the same
//! sentence `tributary once`, the logs and the status page have always shown (the status
//! keeps it as the source's `last_error`).

use std::sync::Arc;

use crate::feed::parse::ParseError;
use crate::feed::scrape::ScrapeError;
use crate::fetch::FetchError;
use crate::store::StoreError;

/// Why a poll failed. Cheap to clone (a report goes to several listeners); two errors are
/// equal when they are of the same kind and say the same.
#[derive(Clone, Debug, thiserror::Error)]
pub enum PollError {
    /// The source answered 410 Gone at an earlier poll: it is no longer polled.
    #[error("HTTP 410 Gone earlier: no longer polled (remove the source or change its url)")]
    GoneEarlier,
    /// The source answered 410 Gone now: it will not be polled again.
    #[error("{0}: gone, no longer polled")]
    Gone(Arc<FetchError>),
    /// The feed could not be fetched.
    #[error(transparent)]
    Fetch(Arc<FetchError>),
    /// The document is not a feed, or cannot be read as one (also: too many entries).
    #[error(transparent)]
    Parse(Arc<ParseError>),
    /// A page source's page gave no entries (`items` matched nothing, not JSON...).
    #[error(transparent)]
    Scrape(Arc<ScrapeError>),
    /// The store could not read the source's state, has no room (`min_free_mb`), or could
    /// not store the poll.
    #[error(transparent)]
    Store(Arc<StoreError>),
    /// Reading the document stopped unfinished (a bug: the reader panicked).
    #[error("internal error: {0}")]
    Task(Arc<tokio::task::JoinError>),
    /// The poll failed, and recording the failure in the source's state failed too.
    #[error("{error}; and {} could not be recorded: {record}", error.recorded_as())]
    Unrecorded {
        error: Box<PollError>,
        record: Arc<StoreError>,
    },
}

impl PollError {
    /// How an unrecorded failure is named: a store without room is not the source's
    /// failure.
    fn recorded_as(&self) -> &'static str {
        match self {
            PollError::Store(_) => "this",
            _ => "the failure",
        }
    }
}

impl PartialEq for PollError {
    fn eq(&self, other: &PollError) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
            && self.to_string() == other.to_string()
    }
}

impl From<FetchError> for PollError {
    fn from(e: FetchError) -> PollError {
        PollError::Fetch(Arc::new(e))
    }
}

impl From<ParseError> for PollError {
    fn from(e: ParseError) -> PollError {
        PollError::Parse(Arc::new(e))
    }
}

impl From<ScrapeError> for PollError {
    fn from(e: ScrapeError) -> PollError {
        PollError::Scrape(Arc::new(e))
    }
}

impl From<StoreError> for PollError {
    fn from(e: StoreError) -> PollError {
        PollError::Store(Arc::new(e))
    }
}

/// The longest error text a poll shows or keeps (`once`, `poll`, the log, `last_error`).
pub const MAX_SHOWN_CHARS: usize = 600;

/// `error` as one short line: control characters (a feed's escape sequences, line breaks)
/// become spaces, and past [`MAX_SHOWN_CHARS`] it is cut with "…". What a source sends
/// may end up in an error message; it must not reach a terminal or a log as it came.
pub fn one_line(error: &impl std::fmt::Display) -> String {
    let text = error.to_string();
    let mut out = String::with_capacity(text.len().min(MAX_SHOWN_CHARS + 4));
    for (i, c) in text.chars().enumerate() {
        if i == MAX_SHOWN_CHARS {
            out.push('…');
            break;
        }
        out.push(if c.is_control() { ' ' } else { c });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unrecorded_failure_names_what_was_not_recorded() {
        let record = || Arc::new(StoreError::Stopped { path: "/s".into() });
        let fetch = PollError::Unrecorded {
            error: Box::new(FetchError::Empty.into()),
            record: record(),
        };
        assert_eq!(
            fetch.to_string(),
            "empty response; and the failure could not be recorded: the store at /s stopped when its disk filled up: it is reopened within a second once there is room again"
        );
        let space = PollError::Unrecorded {
            error: Box::new(StoreError::Stopped { path: "/t".into() }.into()),
            record: record(),
        };
        assert!(
            space
                .to_string()
                .contains("; and this could not be recorded: "),
            "{space}"
        );
    }
}
