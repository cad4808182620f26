//! One poll of one source, through fetch, parse, normalise and store.
//!
//! A poll is stored whole or not at all. Shutdown (or a reload that stops the source)
//! cancels it at any stage before its store write: the fetch is dropped, and parsing and
//! normalising (on a blocking thread, which cannot be interrupted) are abandoned: their
//! result is thrown away and the poll reports `Cancelled` at once, so a stop never waits
//! for a slow document. Cancellation is checked again just before the store write; a write
//! that has begun runs to completion (it is one batch), so a stop never leaves half a poll
//! behind.

use std::fmt;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::config::SourceConfig;
use crate::feed::normalise;
use crate::feed::parse;
use crate::fetch::{FetchError, Fetcher, Validators};
use crate::ingest::scheduler::{Bounds, Signals, jittered, next_delay};
use crate::model::{PollCounts, SourceState};
use crate::store::Store;

/// What one poll did.
#[derive(Clone, Debug)]
pub struct PollReport {
    pub source: String,
    pub outcome: PollOutcome,
    pub started: DateTime<Utc>,
    pub duration: Duration,
    /// When the source is due again; `None` once it is gone (410) or after a cancellation.
    pub next_poll: Option<DateTime<Utc>>,
    /// For `full_text` sources: the article pages this poll tried.
    pub full_text: Option<crate::ingest::fulltext::FullTextCounts>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum PollOutcome {
    /// A body was fetched, parsed and merged into the store.
    Stored { status: u16, counts: PollCounts },
    /// 304 Not Modified (or an unchanged local file).
    NotModified { status: u16 },
    /// Anything that went wrong, as a message for a person.
    Failed { error: String },
    /// Shutdown (or a reload stopping the source) came before the store write; nothing
    /// was written.
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

/// Polls `source` once, records the result in the store (with the time of the next poll)
/// and logs one line.
#[tracing::instrument(skip_all, fields(source = %source.name))]
///
/// It waits first for a place at the source's host (`per_host`), then for one of the
/// `permits` (the global concurrency), in that order, so sources queued behind a slow host
/// never hold global places; both are held until the poll is stored.
pub async fn poll_source(
    fetcher: &Fetcher,
    store: &Store,
    source: &SourceConfig,
    bounds: Bounds,
    permits: &Semaphore,
    cancel: &CancellationToken,
) -> PollReport {
    let started = Utc::now();
    let clock = Instant::now();
    let (outcome, next_poll) = run(fetcher, store, source, bounds, permits, cancel).await;
    let mut report = PollReport {
        source: source.name.clone(),
        outcome,
        started,
        duration: clock.elapsed(),
        next_poll,
        full_text: None,
    };
    let ms = report.duration.as_millis() as u64;
    let next = next_poll.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let next = next.as_deref().unwrap_or("never");
    match &report.outcome {
        PollOutcome::Stored { status, counts } => tracing::info!(
            status,
            new = counts.new,
            updated = counts.updated,
            unchanged = counts.unchanged,
            ms,
            next,
            "polled"
        ),
        PollOutcome::NotModified { status } => {
            tracing::info!(
                status,
                new = 0,
                updated = 0,
                ms,
                next,
                "polled: not modified"
            )
        }
        PollOutcome::Failed { error } => tracing::warn!(%error, ms, next, "poll failed"),
        PollOutcome::Cancelled => tracing::debug!("poll cancelled by shutdown"),
    }
    // Article pages, after the feed's places are given back (they take their own hosts'
    // places). Also after a 304: pages a stop interrupted are fetched now.
    if source.full_text
        && matches!(
            report.outcome,
            PollOutcome::Stored { .. } | PollOutcome::NotModified { .. }
        )
    {
        let counts = Box::pin(crate::ingest::fulltext::fetch_pending(
            fetcher, store, source, cancel,
        ))
        .await;
        if counts.tried() > 0 {
            tracing::info!(
                fetched = counts.fetched,
                failed = counts.failed,
                refused = counts.refused,
                "full text"
            );
        }
        report.full_text = Some(counts);
    }
    report
}

async fn run(
    fetcher: &Fetcher,
    store: &Store,
    source: &SourceConfig,
    bounds: Bounds,
    permits: &Semaphore,
    cancel: &CancellationToken,
) -> (PollOutcome, Option<DateTime<Utc>>) {
    let mut state = match blocking({
        let store = store.clone();
        let name = source.name.clone();
        move || store.source_state(&name)
    })
    .await
    {
        Ok(s) => s.unwrap_or_default(),
        Err(error) => {
            let at = due(Utc::now(), source.interval, Signals::default(), bounds);
            return (PollOutcome::Failed { error }, Some(at));
        }
    };
    if state.is_gone(&source.url) {
        let error = "HTTP 410 Gone earlier: no longer polled (remove the source or change its url)";
        return (
            PollOutcome::Failed {
                error: error.into(),
            },
            None,
        );
    }
    if let Err(e) = store.ensure_space() {
        // Not the source's fault: no backoff, try again at the usual time.
        let now = Utc::now();
        let at = due(now, source.interval, Signals::default(), bounds);
        state.next_poll = Some(at);
        state.last_error = Some(e.to_string());
        state.last_error_at = Some(now);
        return match save(store, &source.name, state).await {
            Ok(()) => (
                PollOutcome::Failed {
                    error: e.to_string(),
                },
                Some(at),
            ),
            Err(store_error) => (
                PollOutcome::Failed {
                    error: format!("{e}; and this could not be recorded: {store_error}"),
                },
                Some(at),
            ),
        };
    }
    let url = state.current_url(&source.url);
    let places = async {
        let host = fetcher.host_permit(&url).await;
        let global = permits.acquire().await.ok();
        (host, global)
    };
    let _places = tokio::select! {
        p = places => p,
        () = cancel.cancelled() => return (PollOutcome::Cancelled, None),
    };
    let now = Utc::now();
    state.last_attempt = Some(now);
    let validators = Validators {
        etag: state.etag.clone(),
        last_modified: state.last_modified.clone(),
    };

    tracing::debug!(url = %url, "fetching");
    let fetched = tokio::select! {
        // Boxed here and below: the fetch, the parse and the page-following futures are
        // large, and inline they would make every poll waiting for a place that large.
        r = Box::pin(fetcher.fetch(source, &url, &validators)) => r,
        () = cancel.cancelled() => return (PollOutcome::Cancelled, None),
    };
    let fetched = match fetched {
        Ok(f) => f,
        Err(e) => {
            state.last_status = e.status();
            if e.status() == Some(410) {
                // Gone for good: stop polling this URL (until feeds.toml names another).
                state.gone_url = Some(source.url.to_string());
                state.next_poll = None;
                tracing::warn!(
                    url = %url,
                    "the source answered 410 Gone: it will not be polled again; remove it from feeds.toml or give it a new url"
                );
                let error = format!("{e}: gone, no longer polled");
                return (fail(store, &source.name, state, error, now).await, None);
            }
            let retry_after = match &e {
                FetchError::Status { retry_after, .. } => *retry_after,
                _ => None,
            };
            let signals = Signals {
                failures: state.consecutive_failures.saturating_add(1),
                fresh_for: None,
                retry_after,
            };
            let at = due(now, source.interval, signals, bounds);
            state.next_poll = Some(at);
            return (
                fail(store, &source.name, state, e.to_string(), now).await,
                Some(at),
            );
        }
    };

    if let Some(moved) = &fetched.moved_to
        && state.moved_to.as_deref() != Some(moved.as_str())
    {
        tracing::warn!(
            from = %source.url,
            to = %moved,
            "the source has moved permanently; polling the new url from now on; update its url in feeds.toml"
        );
        state.moved_to = Some(moved.to_string());
        state.moved_from = Some(source.url.to_string());
    }
    let status = fetched.status;
    let fresh_for = fetched.fresh_for;
    let Some(body) = fetched.body else {
        state.last_success = Some(now);
        state.last_status = Some(status);
        state.consecutive_failures = 0;
        let signals = Signals {
            fresh_for,
            ..Signals::default()
        };
        let at = due(now, source.interval, signals, bounds);
        state.next_poll = Some(at);
        return match save(store, &source.name, state).await {
            Ok(()) => (PollOutcome::NotModified { status }, Some(at)),
            Err(error) => (PollOutcome::Failed { error }, Some(at)),
        };
    };

    tracing::debug!(bytes = body.bytes.len(), "fetched; reading the feed");
    let parsed = tokio::select! {
        p = Box::pin(read_page_off_thread(fetcher, source, body, now)) => p,
        () = cancel.cancelled() => return (PollOutcome::Cancelled, None),
    };
    let ReadPage {
        normalised,
        validators: new_validators,
        warnings,
        filtered,
    } = match parsed {
        Ok(p) => p,
        Err(error) => {
            state.last_status = Some(status);
            let signals = Signals {
                failures: state.consecutive_failures.saturating_add(1),
                ..Signals::default()
            };
            let at = due(now, source.interval, signals, bounds);
            state.next_poll = Some(at);
            return (fail(store, &source.name, state, error, now).await, Some(at));
        }
    };

    let signals = Signals {
        fresh_for: fresh_for.max(normalised.ttl),
        ..Signals::default()
    };
    let at = due(now, source.interval, signals, bounds);
    state.next_poll = Some(at);
    for w in &warnings {
        tracing::warn!(warning = %w, "feed read with a repair");
    }
    state.last_warning = (!warnings.is_empty()).then(|| warnings.join("; "));
    state.etag = new_validators.etag;
    state.last_modified = new_validators.last_modified;
    state.last_success = Some(now);
    state.last_status = Some(status);
    state.consecutive_failures = 0;
    state.feed_title = normalised.feed_title.or(state.feed_title);
    state.feed_link = normalised.feed_link.or(state.feed_link);
    let normalised_next = normalised.next_page.clone();
    // The last point where a stop drops the poll; past it, the write completes.
    if cancel.is_cancelled() {
        return (PollOutcome::Cancelled, None);
    }
    let applied = store_page(
        store,
        source,
        normalised.entries,
        Some(state),
        filtered,
        now,
    )
    .await;
    match applied {
        Ok(mut counts) => {
            counts.filtered = filtered;
            if let Some(next) = normalised_next {
                Box::pin(follow_pages(
                    fetcher, store, source, next, &counts, now, cancel,
                ))
                .await
                .add_to(&mut counts);
            }
            (PollOutcome::Stored { status, counts }, Some(at))
        }
        Err(error) => (PollOutcome::Failed { error }, Some(at)),
    }
}

/// Older pages followed at most in one poll (RFC 5005 `next` links).
pub const MAX_PAGES: usize = 10;

/// One fetched page, read: what [`read_page`] gives.
struct ReadPage {
    normalised: normalise::Normalised,
    /// The validators to keep for the next poll.
    validators: crate::fetch::Validators,
    /// What the parser had to repair.
    warnings: Vec<String>,
    /// Entries the source's rules kept out.
    filtered: usize,
}

/// [`read_page`] on a blocking thread (parsing is CPU work).
async fn read_page_off_thread(
    fetcher: &Fetcher,
    source: &SourceConfig,
    body: crate::fetch::Body,
    now: DateTime<Utc>,
) -> Result<ReadPage, String> {
    let max_entries = fetcher.max_entries();
    let source = source.clone();
    blocking(move || read_page(&source, body, max_entries, now)).await
}

/// A fetched body parsed, normalised and run through the source's rules.
fn read_page(
    source: &SourceConfig,
    body: crate::fetch::Body,
    max_entries: usize,
    now: DateTime<Utc>,
) -> Result<ReadPage, String> {
    let crate::fetch::Body {
        bytes,
        content_type,
        final_url,
        validators,
    } = body;
    let parsed =
        parse::parse_document_limited(&bytes, content_type.as_deref(), &final_url, max_entries)
            .map_err(|e| e.to_string())?;
    // The raw body can be large (up to max_body_mb): gone before the next copy is made.
    drop(bytes);
    let mut normalised = normalise::normalise(parsed.feed, &source.name, &final_url, now);
    let title = source
        .title
        .clone()
        .or_else(|| normalised.feed_title.clone())
        .unwrap_or_else(|| source.name.clone());
    let (kept, filtered) = source.transform().apply(&title, normalised.entries);
    normalised.entries = kept;
    Ok(ReadPage {
        normalised,
        validators,
        warnings: parsed.warnings,
        filtered,
    })
}

/// Catching up through a paged feed (RFC 5005, as tributary's own feeds are): while a
/// page brought only new entries and names an older page, that page is fetched too, up to
/// [`MAX_PAGES`] in all. A source that is up to date stops at its first page.
async fn follow_pages(
    fetcher: &Fetcher,
    store: &Store,
    source: &SourceConfig,
    mut next: url::Url,
    first: &PollCounts,
    now: DateTime<Utc>,
    cancel: &CancellationToken,
) -> PollCounts {
    let mut total = PollCounts::default();
    let all_new = |c: &PollCounts| {
        c.new > 0 && c.unchanged == 0 && c.updated == 0 && c.pruned == 0 && c.capped == 0
    };
    if !all_new(first) {
        return total;
    }
    let none = Validators::default();
    for _ in 1..MAX_PAGES {
        let fetched = tokio::select! {
            r = fetcher.fetch(source, &next, &none) => r,
            () = cancel.cancelled() => break,
        };
        let body = match fetched {
            Ok(crate::fetch::Fetched { body: Some(b), .. }) => b,
            Ok(_) => break,
            Err(e) => {
                tracing::warn!(url = %next, error = %e, "cannot fetch an older page of the feed");
                break;
            }
        };
        let page = tokio::select! {
            p = read_page_off_thread(fetcher, source, body, now) => p,
            () = cancel.cancelled() => break,
        };
        let ReadPage {
            normalised,
            filtered,
            ..
        } = match page {
            Ok(p) => p,
            Err(error) => {
                tracing::warn!(url = %next, %error, "cannot read an older page of the feed");
                break;
            }
        };
        let following = normalised.next_page.clone();
        if cancel.is_cancelled() {
            break;
        }
        // An older page changes only the source's entries (and its filtered count).
        let applied = store_page(store, source, normalised.entries, None, filtered, now).await;
        let mut counts = match applied {
            Ok(c) => c,
            Err(error) => {
                tracing::warn!(url = %next, %error, "cannot store an older page of the feed");
                break;
            }
        };
        counts.filtered = filtered;
        tracing::debug!(url = %next, new = counts.new, "older page");
        counts.add_to(&mut total);
        match following {
            Some(u) if all_new(&counts) => next = u,
            _ => break,
        }
    }
    total
}

/// When the next poll is due, jitter included.
fn due(now: DateTime<Utc>, interval: Duration, signals: Signals, bounds: Bounds) -> DateTime<Utc> {
    let delay = jittered(next_delay(interval, signals, bounds));
    chrono::Duration::from_std(delay)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
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

/// Stores one page's entries with the source's merge rule and `max_new_per_poll`, on a
/// blocking thread, adding `filtered` to the source's count of filtered entries. `state` is
/// the state the poll leaves; `None` keeps the stored one.
async fn store_page(
    store: &Store,
    source: &SourceConfig,
    entries: Vec<crate::model::Entry>,
    state: Option<SourceState>,
    filtered: usize,
    now: DateTime<Utc>,
) -> Result<PollCounts, String> {
    let store = store.clone();
    let name = source.name.clone();
    let max_new = source.max_new_per_poll;
    blocking(move || {
        let mut state = match state {
            Some(state) => state,
            None => store.source_state(&name)?.unwrap_or_default(),
        };
        state.filtered += filtered as u64;
        store.apply_poll(&name, entries, state, max_new, now, |old, new| {
            normalise::merge(old, new, now)
        })
    })
    .await
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
