//! One poll of one source, through fetch, parse, normalise and store.
//!
//! The fetch may be cancelled by shutdown; once bytes are in hand, parsing and the store
//! write run to completion, so a shutdown never leaves half a poll behind.

use std::fmt;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::config::SourceConfig;
use crate::fetch::{Fetched, Fetcher, Validators};
use crate::model::{PollCounts, SourceState};
use crate::normalise;
use crate::parse;
use crate::store::Store;

/// What one poll did.
#[derive(Clone, Debug)]
pub struct PollReport {
    pub source: String,
    pub outcome: PollOutcome,
    pub started: DateTime<Utc>,
    pub duration: Duration,
}

#[derive(Clone, Debug, PartialEq)]
pub enum PollOutcome {
    /// A body was fetched, parsed and merged into the store.
    Stored { status: u16, counts: PollCounts },
    /// 304 Not Modified (or an unchanged local file).
    NotModified { status: u16 },
    /// Anything that went wrong, as a message for a person.
    Failed { error: String },
    /// Shutdown interrupted the fetch; nothing was written.
    Cancelled,
}

impl PollReport {
    pub fn is_failure(&self) -> bool {
        matches!(self.outcome, PollOutcome::Failed { .. })
    }
}

impl fmt::Display for PollReport {
    /// One line for `tributary once`: name, result, counts, time.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.duration.as_secs_f64();
        match &self.outcome {
            PollOutcome::Stored { status, counts } => write!(
                f,
                "{:<24} ok      {status}  new {:>4}  updated {:>4}  unchanged {:>4}  {secs:.2}s",
                self.source, counts.new, counts.updated, counts.unchanged
            ),
            PollOutcome::NotModified { status } => write!(
                f,
                "{:<24} ok      {status}  not modified                            {secs:.2}s",
                self.source
            ),
            PollOutcome::Failed { error } => {
                write!(f, "{:<24} FAILED  {error}  {secs:.2}s", self.source)
            }
            PollOutcome::Cancelled => write!(f, "{:<24} cancelled", self.source),
        }
    }
}

/// Polls `source` once and records the result in the store.
#[tracing::instrument(skip_all, fields(source = %source.name))]
pub async fn poll_source(
    fetcher: &Fetcher,
    store: &Store,
    source: &SourceConfig,
    cancel: &CancellationToken,
) -> PollReport {
    let started = Utc::now();
    let clock = Instant::now();
    let outcome = run(fetcher, store, source, cancel, started).await;
    let report = PollReport {
        source: source.name.clone(),
        outcome,
        started,
        duration: clock.elapsed(),
    };
    let ms = report.duration.as_millis() as u64;
    match &report.outcome {
        PollOutcome::Stored { status, counts } => tracing::info!(
            status,
            new = counts.new,
            updated = counts.updated,
            unchanged = counts.unchanged,
            ms,
            "polled"
        ),
        PollOutcome::NotModified { status } => {
            tracing::info!(status, new = 0, updated = 0, ms, "polled: not modified")
        }
        PollOutcome::Failed { error } => tracing::warn!(%error, ms, "poll failed"),
        PollOutcome::Cancelled => tracing::debug!("poll cancelled by shutdown"),
    }
    report
}

async fn run(
    fetcher: &Fetcher,
    store: &Store,
    source: &SourceConfig,
    cancel: &CancellationToken,
    now: DateTime<Utc>,
) -> PollOutcome {
    let mut state = match blocking({
        let store = store.clone();
        let name = source.name.clone();
        move || store.source_state(&name)
    })
    .await
    {
        Ok(s) => s.unwrap_or_default(),
        Err(e) => return PollOutcome::Failed { error: e },
    };
    state.last_attempt = Some(now);
    let validators = Validators {
        etag: state.etag.clone(),
        last_modified: state.last_modified.clone(),
    };

    let fetched = tokio::select! {
        r = fetcher.fetch(&source.url, &validators) => r,
        () = cancel.cancelled() => return PollOutcome::Cancelled,
    };

    let body = match fetched {
        Ok(Fetched::NotModified { status }) => {
            state.last_success = Some(now);
            state.last_status = Some(status);
            state.consecutive_failures = 0;
            return match save(store, &source.name, state).await {
                Ok(()) => PollOutcome::NotModified { status },
                Err(error) => PollOutcome::Failed { error },
            };
        }
        Ok(Fetched::Body(body)) => body,
        Err(e) => {
            if let crate::fetch::FetchError::Status { status, .. } = &e {
                state.last_status = Some(*status);
            }
            return fail(store, &source.name, state, e.to_string(), now).await;
        }
    };

    let status = body.status;
    let name = source.name.clone();
    let parsed = blocking(move || {
        let feed = parse::parse(&body.bytes, body.content_type.as_deref(), &body.final_url)
            .map_err(|e| e.to_string())?;
        Ok::<_, String>((
            normalise::normalise(feed, &name, &body.final_url, now),
            body.validators,
        ))
    })
    .await;
    let (normalised, new_validators) = match parsed {
        Ok(p) => p,
        Err(error) => {
            state.last_status = Some(status);
            return fail(store, &source.name, state, error, now).await;
        }
    };

    state.etag = new_validators.etag;
    state.last_modified = new_validators.last_modified;
    state.last_success = Some(now);
    state.last_status = Some(status);
    state.consecutive_failures = 0;
    state.feed_title = normalised.feed_title.or(state.feed_title);
    state.feed_link = normalised.feed_link.or(state.feed_link);
    let store2 = store.clone();
    let name = source.name.clone();
    let applied = blocking(move || {
        store2.apply_poll(&name, normalised.entries, state, |old, new| {
            normalise::merge(old, new, now)
        })
    })
    .await;
    match applied {
        Ok(counts) => PollOutcome::Stored { status, counts },
        Err(error) => PollOutcome::Failed { error },
    }
}

async fn fail(
    store: &Store,
    name: &str,
    mut state: SourceState,
    error: String,
    now: DateTime<Utc>,
) -> PollOutcome {
    state.last_error = Some(error.clone());
    state.last_error_at = Some(now);
    state.consecutive_failures = state.consecutive_failures.saturating_add(1);
    match save(store, name, state).await {
        Ok(()) => PollOutcome::Failed { error },
        Err(store_error) => PollOutcome::Failed {
            error: format!("{error}; and the failure could not be recorded: {store_error}"),
        },
    }
}

async fn save(store: &Store, name: &str, state: SourceState) -> Result<(), String> {
    let store = store.clone();
    let name = name.to_string();
    blocking(move || store.save_state(&name, &state)).await
}

/// Runs store and CPU-heavy work off the async threads; any error becomes a message.
async fn blocking<T, E>(f: impl FnOnce() -> Result<T, E> + Send + 'static) -> Result<T, String>
where
    T: Send + 'static,
    E: fmt::Display + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(join) => Err(format!("internal error: {join}")),
    }
}
