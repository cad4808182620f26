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
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::config::SourceConfig;
use crate::feed::normalise;
use crate::feed::websub::{self, Discovery};
use crate::fetch::{Body, FetchError, Fetched, Fetcher, Validators};
use crate::ingest::fulltext::{self, FullTextCounts};
use crate::ingest::page::{ReadPage, read_page_blocking};
use crate::ingest::push::Push;
use crate::ingest::timing::{Bounds, Signals, due};
use crate::model::{Entry, EntryKey, PollCounts, SourceState};
use crate::store::{Store, StoreError};

use crate::ingest::error::PollError;

/// What one poll did.
#[derive(Clone, Debug)]
pub struct PollReport {
    pub source: String,
    pub outcome: PollOutcome,
    /// When the fetch began: after the poll had its places (`per_host`, `concurrency`),
    /// so time queued behind other polls is not counted (at the poll's start when it
    /// never got them).
    pub started: DateTime<Utc>,
    /// From `started` to the stored result.
    pub duration: Duration,
    /// When the source is due again; `None` once it is gone (410) or after a cancellation.
    pub next_poll: Option<DateTime<Utc>>,
    /// For `full_text` sources: the article pages this poll tried.
    pub full_text: Option<FullTextCounts>,
    /// The keys of the entries this poll stored as new (for webhooks), in store order.
    pub new_entries: Arc<[EntryKey]>,
    /// The WebSub hubs and topic the response announced (headers first, then the
    /// document); `None` when nothing was fetched, or the source does not take part.
    pub websub: Option<Discovery>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum PollOutcome {
    /// A body was fetched, parsed and merged into the store; or it was the very document
    /// read last time (see [`crate::ingest::page::digest`]), whose entries are all
    /// unchanged and were not read again.
    Stored { status: u16, counts: PollCounts },
    /// 304 Not Modified (or an unchanged local file).
    NotModified { status: u16 },
    /// Anything that went wrong; its Display is the message for a person.
    Failed { error: PollError },
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
                let error = crate::ingest::error::one_line(error);
                write!(f, "{:<24} FAILED  {error}  {secs:.2}s", self.source)
            }
            PollOutcome::Cancelled => write!(f, "{:<24} cancelled", self.source),
        }
    }
}

/// What every poll shares: the fetcher, the store, the bounds of derived intervals and the
/// global places (`[fetch] concurrency`). Cheap to clone.
#[derive(Clone)]
pub struct Poller {
    pub fetcher: Fetcher,
    pub store: Store,
    pub bounds: Bounds,
    pub permits: Arc<Semaphore>,
    /// Each poll's one line in the log at debug level only: for a caller that prints the
    /// reports itself (`tributary once`), so stderr does not repeat its table.
    pub quiet: bool,
    /// Sources a WebSub hub pushes to, polled at the safety net's interval.
    pub push: Push,
}

impl Poller {
    /// Polls `source` once, records the result in the store (with the time of the next
    /// poll) and logs one line. `cancel` stops it (see the module docs).
    ///
    /// It waits first for a place at the source's host (`per_host`), then for one of the
    /// `permits` (the global concurrency), in that order, so sources queued behind a slow
    /// host never hold global places; both are held until the poll is stored.
    // The span (on `poll_with`) keeps the name log lines have always shown.
    pub async fn poll(&self, source: &SourceConfig, cancel: &CancellationToken) -> PollReport {
        self.poll_with(source, cancel, true).await
    }

    /// [`Poller::poll`], where `first_in_run` says whether this source has not failed yet
    /// since its task started: if so, a failure is retried soon (see
    /// [`crate::ingest::timing::FIRST_RETRY`]), as is one after a success.
    #[tracing::instrument(name = "poll_source", skip_all, fields(source = %source.name))]
    pub async fn poll_with(
        &self,
        source: &SourceConfig,
        cancel: &CancellationToken,
        first_in_run: bool,
    ) -> PollReport {
        Poll {
            poller: self,
            source,
            cancel,
            first_in_run,
            fetch_began: OnceLock::new(),
            new_keys: std::sync::Mutex::default(),
            pushed: std::sync::Mutex::default(),
            discovered: std::sync::Mutex::default(),
        }
        .run()
        .await
    }

    /// A document a WebSub hub delivered for `source` (a fat ping): read, normalised,
    /// filtered and stored as a poll's would be, without a fetch; the source's schedule and
    /// validators stay as they are. Full text applies as after a poll.
    #[tracing::instrument(name = "push_source", skip_all, fields(source = %source.name))]
    pub async fn push(
        &self,
        source: &SourceConfig,
        body: Body,
        cancel: &CancellationToken,
    ) -> PollReport {
        Poll {
            poller: self,
            source,
            cancel,
            first_in_run: true,
            fetch_began: OnceLock::new(),
            new_keys: std::sync::Mutex::default(),
            pushed: std::sync::Mutex::new(Some(body)),
            discovered: std::sync::Mutex::default(),
        }
        .run()
        .await
    }
}

/// One poll of one source: the shared context, the source and what stops the poll. Its
/// methods are the steps: begin, fetch, read, apply, follow older pages, full text.
struct Poll<'a> {
    poller: &'a Poller,
    source: &'a SourceConfig,
    cancel: &'a CancellationToken,
    /// No failure of this source yet since its task started.
    first_in_run: bool,
    /// When the fetch began, once the poll had its places (the host's and the global
    /// one): a poll's time is its own, not time spent queued behind other polls.
    fetch_began: OnceLock<(DateTime<Utc>, Instant)>,
    /// The keys of the entries this poll stored as new, every page's.
    new_keys: std::sync::Mutex<Vec<EntryKey>>,
    /// A document a hub delivered: read instead of fetching one.
    pushed: std::sync::Mutex<Option<Body>>,
    /// What the response announced for WebSub.
    discovered: std::sync::Mutex<Option<Discovery>>,
}

/// What the feed's part of a poll gives: its outcome and when the source is due again.
type Ended = (PollOutcome, Option<DateTime<Utc>>);

/// What the store says before a poll fetches anything (one store call).
enum Begun {
    /// The source's state: go on. (Boxed: the other answers are small.)
    Ready(Box<SourceState>),
    /// The source answered 410 Gone earlier.
    Gone,
    /// No room on the store's disk (`min_free_mb`): recorded in the state (or, if that
    /// failed too, the error says so); due again at the usual time.
    NoSpace { error: PollError, at: DateTime<Utc> },
}

impl Poll<'_> {
    async fn run(self) -> PollReport {
        let started = Utc::now();
        let clock = Instant::now();
        let (outcome, next_poll) = self.poll_feed().await;
        // A poll that never got its places (it failed or was stopped before) is timed
        // from its start.
        let (started, clock) = self.fetch_began.get().copied().unwrap_or((started, clock));
        let mut report = PollReport {
            source: self.source.name.clone(),
            outcome,
            started,
            duration: clock.elapsed(),
            next_poll,
            full_text: None,
            new_entries: std::mem::take(
                &mut *self.new_keys.lock().unwrap_or_else(|e| e.into_inner()),
            )
            .into(),
            websub: self
                .discovered
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take(),
        };
        log(&report, self.poller.quiet);
        // Article pages, after the feed's places are given back (they take their own hosts'
        // places). Also after a 304: pages a stop interrupted are fetched now.
        if self.source.full_text
            && matches!(
                report.outcome,
                PollOutcome::Stored { .. } | PollOutcome::NotModified { .. }
            )
        {
            let counts = Box::pin(fulltext::fetch_pending(
                &self.poller.fetcher,
                &self.poller.store,
                self.source,
                self.cancel,
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

    /// The feed's part of the poll: its first page, and older pages while they are all new.
    async fn poll_feed(&self) -> Ended {
        let source = self.source;
        let mut state = match self.begin().await {
            Ok(Begun::Ready(state)) => *state,
            Ok(Begun::Gone) => return failed(PollError::GoneEarlier, None),
            Ok(Begun::NoSpace { error, at }) => return failed(error, Some(at)),
            Err(error) => return failed(error, Some(self.due(Utc::now(), Signals::default()))),
        };
        let pushed = self.pushed.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(body) = pushed {
            return self.store_pushed(state, body).await;
        }
        let url = state.current_url(&source.url);
        let places = async {
            let host = self.poller.fetcher.host_permit(&url).await;
            let global = self.poller.permits.acquire().await.ok();
            (host, global)
        };
        let _places = tokio::select! {
            p = places => p,
            () = self.cancel.cancelled() => return (PollOutcome::Cancelled, None),
        };
        let now = Utc::now();
        let _ = self.fetch_began.set((now, Instant::now()));
        state.last_attempt = Some(now);
        // A page read with other selectors than now must be read again, changed or not.
        let reader = source.kind.reader_key();
        let validators = if state.read_as == reader {
            Validators {
                etag: state.etag.clone(),
                last_modified: state.last_modified.clone(),
            }
        } else {
            Validators::default()
        };

        tracing::debug!(url = %url, "fetching");
        let fetched = tokio::select! {
            // Boxed here and below: the fetch, the parse and the page-following futures are
            // large, and inline they would make every poll waiting for a place that large.
            r = Box::pin(self.poller.fetcher.fetch(source, &url, &validators)) => r,
            () = self.cancel.cancelled() => return (PollOutcome::Cancelled, None),
        };
        let fetched = match fetched {
            Ok(f) => f,
            Err(e) => return self.fetch_failed(state, e, &url, now).await,
        };
        self.note_move(&mut state, &fetched);
        let Fetched {
            status,
            fresh_for,
            body,
            links,
            ..
        } = fetched;
        self.discover(&url, &links, body.as_ref());
        let Some(body) = body else {
            let at = self.succeeded(&mut state, status, fresh_for, now);
            return match self.save(state).await {
                Ok(()) => (PollOutcome::NotModified { status }, Some(at)),
                Err(error) => failed(error, Some(at)),
            };
        };

        // What the last full read of the source was, if it is recent: a read refreshes the
        // tombstones of pruned entries the document still lists, so one is made at least
        // once a day or so even when nothing changed.
        let refresh = self.poller.store.tombstone_refresh();
        let seen = (state.read_as == reader)
            .then(|| state.document.clone())
            .flatten()
            .filter(|d| d.read_at.is_some_and(|t| now - t < refresh))
            .filter(|d| d.entry_count == state.entry_count);
        // The document read last time, again: nothing in it can differ from what is stored.
        let digest = crate::ingest::page::digest(source, &body, self.poller.fetcher.max_entries());
        if let Some(seen) = seen.as_ref().filter(|d| d.digest == digest) {
            tracing::debug!("the same document as last time: not read again");
            let ttl = seen.ttl_secs.map(Duration::from_secs);
            let at = self.succeeded(&mut state, status, fresh_for.max(ttl), now);
            state.etag = body.validators.etag;
            state.last_modified = body.validators.last_modified;
            return self.known_entries(state, seen, status, at).await;
        }

        tracing::debug!(bytes = body.bytes.len(), "fetched; reading the feed");
        let known = seen.as_ref().and_then(|d| d.entries_digest.clone());
        let parsed = tokio::select! {
            p = Box::pin(self.read(body, now, known)) => p,
            () = self.cancel.cancelled() => return (PollOutcome::Cancelled, None),
        };
        let ReadPage {
            normalised,
            validators: new_validators,
            warnings,
            filtered,
            entries_digest,
            entries_known,
        } = match parsed {
            Ok(p) => p,
            Err(error) => {
                state.last_status = Some(status);
                let at = self.back_off(&mut state, None, now);
                return (self.fail(state, error, now).await, Some(at));
            }
        };

        let at = self.succeeded(&mut state, status, fresh_for.max(normalised.ttl), now);
        for w in &warnings {
            // A repaired feed, a guessed charset, a field selector that matched nothing.
            tracing::warn!(warning = %w, "read with a warning");
        }
        state.last_warning = (!warnings.is_empty()).then(|| warnings.join("; "));
        state.etag = new_validators.etag;
        state.last_modified = new_validators.last_modified;
        state.read_as = reader;
        state.feed_title = normalised.feed_title.or(state.feed_title);
        state.feed_link = normalised.feed_link.or(state.feed_link);
        let ttl_secs = normalised.ttl.map(|t| t.as_secs());
        if entries_known && let Some(seen) = seen {
            // Another document (a new lastBuildDate, say) with the very entries read last
            // time: they were not normalised again, and nothing about them is stored.
            tracing::debug!("the same entries as last time: not read again");
            let seen = crate::model::SeenDocument {
                digest,
                ttl_secs,
                ..seen
            };
            return self.known_entries(state, &seen, status, at).await;
        }
        // Written with the entries, in the same batch (the store adds what it counted): a
        // document counts as read only once what it gave is stored.
        state.document = Some(crate::model::SeenDocument {
            digest,
            ttl_secs,
            filtered,
            read_at: Some(now),
            entries_digest: Some(entries_digest),
            ..crate::model::SeenDocument::default()
        });
        let next_page = normalised.next_page.clone();
        // The last point where a stop drops the poll; past it, the write completes.
        if self.cancel.is_cancelled() {
            return (PollOutcome::Cancelled, None);
        }
        match self
            .apply(normalised.entries, Some(state), false, filtered, now)
            .await
        {
            Ok(mut counts) => {
                counts.filtered = filtered;
                if let Some(next) = next_page {
                    Box::pin(self.follow_pages(next, &counts, now))
                        .await
                        .add_to(&mut counts);
                }
                (PollOutcome::Stored { status, counts }, Some(at))
            }
            Err(error) => failed(error, Some(at)),
        }
    }

    /// A poll whose document (`seen`, as it is to be remembered) holds the very entries
    /// read last time: counted as unchanged, and only the source's state is written.
    async fn known_entries(
        &self,
        mut state: SourceState,
        seen: &crate::model::SeenDocument,
        status: u16,
        at: DateTime<Utc>,
    ) -> Ended {
        let counts = PollCounts {
            unchanged: seen.entries,
            pruned: seen.buried,
            filtered: seen.filtered,
            ..PollCounts::default()
        };
        state.filtered += counts.filtered as u64;
        state.document = Some(seen.clone());
        match self.save(state).await {
            Ok(()) => (PollOutcome::Stored { status, counts }, Some(at)),
            Err(error) => failed(error, Some(at)),
        }
    }

    /// What the response announced for WebSub (feed sources that take part only).
    fn discover(&self, url: &url::Url, links: &[String], body: Option<&Body>) {
        if !self.source.websub || self.source.kind != crate::config::SourceKind::Feed {
            return;
        }
        let base = body.map_or(url, |b| &b.final_url);
        let headers = websub::from_link_headers(links.iter().map(String::as_str), base);
        let document = body.map_or_else(Discovery::default, |b| {
            websub::from_document(&b.bytes, &b.final_url)
        });
        let mut found = Discovery::choose(headers, document);
        if found.hubs.is_empty() && body.is_none() {
            // A 304 repeats no document: nothing is known either way.
            return;
        }
        found.topic = found.topic.or_else(|| Some(base.clone()));
        *self.discovered.lock().unwrap_or_else(|e| e.into_inner()) = Some(found);
    }

    /// A delivered document stored as a poll's page (see [`Poller::push`]). The stored
    /// state is kept as it is (read again in the write's own store call), so a poll of the
    /// source running meanwhile loses none of its state.
    async fn store_pushed(&self, state: SourceState, body: Body) -> Ended {
        let now = Utc::now();
        let _ = self.fetch_began.set((now, Instant::now()));
        let next = state.next_poll;
        let parsed = tokio::select! {
            p = Box::pin(self.read(body, now, None)) => p,
            () = self.cancel.cancelled() => return (PollOutcome::Cancelled, None),
        };
        let ReadPage {
            normalised,
            warnings,
            filtered,
            ..
        } = match parsed {
            Ok(p) => p,
            // A delivery that cannot be read is the hub's fault, not the source's: the
            // source's state is not touched.
            Err(error) => return failed(error, next),
        };
        for w in &warnings {
            tracing::warn!(warning = %w, "delivery read with a warning");
        }
        if self.cancel.is_cancelled() {
            return (PollOutcome::Cancelled, None);
        }
        match self
            .apply(normalised.entries, None, true, filtered, now)
            .await
        {
            Ok(mut counts) => {
                counts.filtered = filtered;
                (
                    PollOutcome::Stored {
                        status: 200,
                        counts,
                    },
                    next,
                )
            }
            Err(error) => failed(error, next),
        }
    }

    /// The source's state, read, checked for an earlier 410 and for room on the disk, in
    /// one store call. No room is recorded at once: it is not the source's fault, so no
    /// backoff, and the source is due again at the usual time.
    async fn begin(&self) -> Result<Begun, StoreError> {
        let name = self.source.name.clone();
        let url = self.source.url.clone();
        let interval = self.source.interval;
        let bounds = self.poller.bounds;
        self.poller
            .store
            .call(move |store| {
                let mut state = store.source_state(&name)?.unwrap_or_default();
                if state.is_gone(&url) {
                    return Ok(Begun::Gone);
                }
                let Err(error) = store.ensure_space() else {
                    return Ok(Begun::Ready(Box::new(state)));
                };
                let now = Utc::now();
                let at = due(now, interval, Signals::default(), bounds);
                state.next_poll = Some(at);
                state.last_error = Some(crate::ingest::error::one_line(&error));
                state.last_error_at = Some(now);
                let unrecorded = store.save_state(&name, &state).err();
                let error = unrecorded_if(error.into(), unrecorded);
                Ok(Begun::NoSpace { error, at })
            })
            .await
    }

    /// A failed fetch: recorded, with backoff (and a 410 stops the source for good).
    async fn fetch_failed(
        &self,
        mut state: SourceState,
        e: FetchError,
        url: &url::Url,
        now: DateTime<Utc>,
    ) -> Ended {
        let source = self.source;
        state.last_status = e.status();
        if e.status() == Some(410) {
            // Gone for good: stop polling this URL (until feeds.toml names another).
            state.gone_url = Some(source.url.to_string());
            state.next_poll = None;
            tracing::warn!(
                url = %url,
                "the source answered 410 Gone: it will not be polled again; remove it from feeds.toml or give it a new url"
            );
            let error = PollError::Gone(Arc::new(e));
            return (self.fail(state, error, now).await, None);
        }
        let retry_after = match &e {
            FetchError::Status { retry_after, .. } => *retry_after,
            _ => None,
        };
        let at = self.back_off(&mut state, retry_after, now);
        (self.fail(state, e.into(), now).await, Some(at))
    }

    /// A permanent redirect noted in the state: the new URL is polled from now on.
    fn note_move(&self, state: &mut SourceState, fetched: &Fetched) {
        if let Some(moved) = &fetched.moved_to
            && state.moved_to.as_deref() != Some(moved.as_str())
        {
            tracing::warn!(
                from = %self.source.url,
                to = %moved,
                "the source has moved permanently; polling the new url from now on; update its url in feeds.toml"
            );
            state.moved_to = Some(moved.to_string());
            state.moved_from = Some(self.source.url.to_string());
        }
    }

    /// [`read_page`] on a blocking thread (parsing is CPU work).
    /// `known`: the entries digest of the last full read ([`ReadPage::entries_known`]).
    async fn read(
        &self,
        body: Body,
        now: DateTime<Utc>,
        known: Option<String>,
    ) -> Result<ReadPage, PollError> {
        let max = self.poller.fetcher.max_entries();
        read_page_blocking(self.source, body, max, now, known).await
    }

    /// Catching up through a paged feed (RFC 5005, as tributary's own feeds are): while a
    /// page brought only new entries and names an older page, that page is fetched too, up
    /// to [`MAX_PAGES`] in all. A source that is up to date stops at its first page.
    async fn follow_pages(
        &self,
        mut next: url::Url,
        first: &PollCounts,
        now: DateTime<Utc>,
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
                r = self.poller.fetcher.fetch(self.source, &next, &none) => r,
                () = self.cancel.cancelled() => break,
            };
            let body = match fetched {
                Ok(Fetched { body: Some(b), .. }) => b,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(url = %next, error = %e, "cannot fetch an older page of the feed");
                    break;
                }
            };
            let page = tokio::select! {
                p = self.read(body, now, None) => p,
                () = self.cancel.cancelled() => break,
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
            if self.cancel.is_cancelled() {
                break;
            }
            // An older page changes only the source's entries (and its filtered count).
            let mut counts = match self
                .apply(normalised.entries, None, false, filtered, now)
                .await
            {
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

    /// A success noted in the state (`status`, fresh for `fresh_for` by the server's
    /// word), with the next due time, which it returns.
    fn succeeded(
        &self,
        state: &mut SourceState,
        status: u16,
        fresh_for: Option<Duration>,
        now: DateTime<Utc>,
    ) -> DateTime<Utc> {
        state.last_success = Some(now);
        state.last_status = Some(status);
        state.consecutive_failures = 0;
        let signals = Signals {
            fresh_for,
            ..Signals::default()
        };
        let at = self.due(now, signals);
        state.next_poll = Some(at);
        at
    }

    /// The next due time after one more consecutive failure (and a server's
    /// `retry_after`), set in the state and returned.
    fn back_off(
        &self,
        state: &mut SourceState,
        retry_after: Option<Duration>,
        now: DateTime<Utc>,
    ) -> DateTime<Utc> {
        let signals = Signals {
            failures: state.consecutive_failures.saturating_add(1),
            first_failure: self.first_in_run || state.consecutive_failures == 0,
            fresh_for: None,
            retry_after,
        };
        let at = self.due(now, signals);
        state.next_poll = Some(at);
        at
    }

    /// When the source is due again after a poll at `now` that gave `signals`.
    fn due(&self, now: DateTime<Utc>, signals: Signals) -> DateTime<Utc> {
        let interval = self.poller.push.interval(self.source, now);
        due(now, interval, signals, self.poller.bounds)
    }

    /// A failure recorded in the source's state (one more consecutive failure).
    async fn fail(
        &self,
        mut state: SourceState,
        error: PollError,
        now: DateTime<Utc>,
    ) -> PollOutcome {
        state.last_error = Some(crate::ingest::error::one_line(&error));
        state.last_error_at = Some(now);
        state.consecutive_failures = state.consecutive_failures.saturating_add(1);
        let error = unrecorded_if(error, self.save(state).await.err());
        PollOutcome::Failed { error }
    }

    /// Stores one page's entries with the source's merge rule and `max_new_per_poll`, in
    /// one store call, adding `filtered` to the source's count of filtered entries. `state`
    /// is the state the poll leaves; `None` keeps the stored one (`pushed`: but for the
    /// last document read, which a hub's document makes stale).
    async fn apply(
        &self,
        entries: Vec<Entry>,
        state: Option<SourceState>,
        pushed: bool,
        filtered: usize,
        now: DateTime<Utc>,
    ) -> Result<PollCounts, StoreError> {
        let name = self.source.name.clone();
        let max_new = self.source.max_new_per_poll;
        let page_source = self.source.kind != crate::config::SourceKind::Feed;
        // Only the poll's own document comes with its state: older pages and pushes read it.
        let read = state.is_some() && !pushed;
        let (counts, keys) = self
            .poller
            .store
            .call(move |store| {
                let mut state = match state {
                    Some(state) => state,
                    None => store.source_state(&name)?.unwrap_or_default(),
                };
                if pushed {
                    // A hub's document may change entries the last read document also
                    // lists: that document, served again, must be read in full.
                    state.document = None;
                }
                state.filtered += filtered as u64;
                store.apply_poll(&name, entries, state, read, max_new, now, |old, mut new| {
                    // A page entry keeps the date it was first stored with: one the page
                    // writes relatively ("2 hours ago") moves at every poll, and one it does
                    // not write at all is the time it was first seen.
                    if page_source {
                        new.published = old
                            .and_then(|o| o.published)
                            .or(new.published)
                            .or(Some(new.first_seen));
                    }
                    normalise::merge(old, new, now)
                })
            })
            .await?;
        self.new_keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(keys);
        Ok(counts)
    }

    async fn save(&self, state: SourceState) -> Result<(), StoreError> {
        let name = self.source.name.clone();
        self.poller
            .store
            .call(move |store| store.save_state(&name, &state))
            .await
    }
}

/// A poll that failed with `error`, due again `at`.
fn failed(error: impl Into<PollError>, at: Option<DateTime<Utc>>) -> Ended {
    (
        PollOutcome::Failed {
            error: error.into(),
        },
        at,
    )
}

/// `error`, or, if recording it failed, both.
fn unrecorded_if(error: PollError, record: Option<StoreError>) -> PollError {
    match record {
        None => error,
        Some(record) => PollError::Unrecorded {
            error: Box::new(error),
            record: Arc::new(record),
        },
    }
}

/// The poll's one line in the log (at debug level when `quiet`: the caller prints it).
fn log(report: &PollReport, quiet: bool) {
    let ms = report.duration.as_millis() as u64;
    let next = report
        .next_poll
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let next = next.as_deref().unwrap_or("never");
    macro_rules! line {
        ($level:expr, $($field:tt)*) => {
            if quiet {
                tracing::debug!($($field)*)
            } else {
                tracing::event!($level, $($field)*)
            }
        };
    }
    use tracing::Level;
    match &report.outcome {
        PollOutcome::Stored { status, counts } => line!(
            Level::INFO,
            status,
            new = counts.new,
            updated = counts.updated,
            unchanged = counts.unchanged,
            filtered = counts.filtered,
            capped = counts.capped,
            ms,
            next,
            "polled"
        ),
        PollOutcome::NotModified { status } => line!(
            Level::INFO,
            status,
            new = 0,
            updated = 0,
            ms,
            next,
            "polled: not modified"
        ),
        PollOutcome::Failed { error } => {
            let error = crate::ingest::error::one_line(error);
            line!(Level::WARN, %error, ms, next, "poll failed")
        }
        PollOutcome::Cancelled => tracing::debug!("poll cancelled by shutdown"),
    }
}

/// Older pages followed at most in one poll (RFC 5005 `next` links).
pub const MAX_PAGES: usize = 10;
