//! One task per source: each sleeps until its source is due ([`crate::ingest::timing`]),
//! polls it ([`crate::ingest::poll`]) and hands the report to whoever started it, all under
//! a global concurrency limit (and the fetcher's per-host limit). [`Sources`] starts, stops
//! and restarts the tasks when the config is reloaded, and wakes one to poll now
//! (`tributary poll`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::SourceConfig;
use crate::ingest::poll::{PollOutcome, PollReport, Poller};
use crate::ingest::timing::{Start, first_delay};

/// Tasks reading their source's state at once: a start or reload of 10,000 sources makes
/// 10,000 short store reads, queued here rather than as 10,000 jobs that would grow the
/// blocking pool towards its 512 threads.
static FIRST_READS: std::sync::LazyLock<tokio::sync::Semaphore> =
    std::sync::LazyLock::new(|| tokio::sync::Semaphore::new(4));

/// Where each poll's report goes (the daemon counts it in its metrics and passes it on to
/// its listeners).
pub type OnPoll = Arc<dyn Fn(PollReport) + Send + Sync>;

/// Everything a source's task needs, shared by them all (`Arc`: inline, its 400 bytes
/// would be part of every idle task).
#[derive(Clone)]
pub struct Scheduler {
    pub poller: Poller,
    pub on_poll: OnPoll,
    pub shutdown: CancellationToken,
}

/// The running source tasks, by name: a reload starts, stops and restarts them.
pub struct Sources {
    tracker: TaskTracker,
    running: HashMap<String, Running>,
}

struct Running {
    /// Shared with the task: a source's config is about a kilobyte, kept once.
    config: Arc<SourceConfig>,
    stop: CancellationToken,
    /// Wakes the task to poll now (a wake during a poll makes it poll once more after).
    poll_now: Arc<Notify>,
    task: JoinHandle<()>,
}

impl Sources {
    pub fn new(tracker: TaskTracker) -> Sources {
        Sources {
            tracker,
            running: HashMap::new(),
        }
    }

    /// Starts a task for `source` (stopping the one it replaces).
    pub fn start(&mut self, scheduler: &Arc<Scheduler>, source: Arc<SourceConfig>, start: Start) {
        self.stop(&source.name);
        let stop = scheduler.shutdown.child_token();
        let this = Arc::clone(scheduler);
        let task_stop = stop.clone();
        let task_source = source.clone();
        let poll_now = Arc::new(Notify::new());
        // The loop's future itself, not an `async move` around it, which would hold the
        // moved arguments and the future both: the task lives as long as the source.
        let task =
            self.tracker
                .spawn(this.source_loop(task_source, task_stop, start, poll_now.clone()));
        self.running.insert(
            source.name.clone(),
            Running {
                config: source,
                stop,
                poll_now,
                task,
            },
        );
    }

    /// Makes a source's task poll now, whatever its schedule; its report goes where every
    /// report goes. A task that has ended (its source answered 410 Gone) is not restarted:
    /// the source is polled once on its own (and reports it is gone, unless its URL
    /// changed). `false` if no such source runs.
    pub fn poll_now(&self, scheduler: &Arc<Scheduler>, name: &str) -> bool {
        match self.running.get(name) {
            None => false,
            Some(r) if r.task.is_finished() => {
                let (this, source) = (Arc::clone(scheduler), r.config.clone());
                let stop = r.stop.clone();
                self.tracker.spawn(async move {
                    let report = Box::pin(this.poller.poll(&source, &stop)).await;
                    (this.on_poll)(report);
                });
                true
            }
            Some(r) => {
                r.poll_now.notify_one();
                true
            }
        }
    }

    /// Stops a source's task: a fetch in flight is dropped; a store write in progress
    /// finishes.
    pub fn stop(&mut self, name: &str) {
        if let Some(r) = self.running.remove(name) {
            r.stop.cancel();
        }
    }

    /// The config a running source was started with.
    pub fn config(&self, name: &str) -> Option<&SourceConfig> {
        self.running.get(name).map(|r| &*r.config)
    }

    pub fn names(&self) -> Vec<String> {
        self.running.keys().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.running.len()
    }

    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }
}

impl Scheduler {
    async fn source_loop(
        self: Arc<Self>,
        source: Arc<SourceConfig>,
        stop: CancellationToken,
        start: Start,
        poll_now: Arc<Notify>,
    ) {
        // Boxed, like a poll: what the first wait reads (the source's state) would otherwise
        // stay part of every idle task's size.
        let Some(mut delay) = Box::pin(self.first_wait(&source, start)).await else {
            return;
        };
        // Whether the source has failed since its task started (see `timing::FIRST_RETRY`).
        let mut failed = false;
        loop {
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = poll_now.notified() => {}
                () = stop.cancelled() => return,
            }
            // Boxed: a poll's state (fetch, parse, store futures) is several KB, and inline it
            // would make every idle source's task that big (74 MB for 10,000 sources). Boxed,
            // it exists only while the poll runs.
            let report = Box::pin(self.poller.poll_with(&source, &stop, !failed)).await;
            failed = report.is_failure();
            let next = report.next_poll;
            let cancelled = report.outcome == PollOutcome::Cancelled;
            (self.on_poll)(report);
            match next {
                _ if cancelled => return,
                None => return, // gone
                Some(at) => {
                    delay = (at - Utc::now()).to_std().unwrap_or_default();
                    tracing::debug!(source = %source.name, next_poll = %at, "next poll");
                }
            }
        }
    }
}

impl Scheduler {
    /// How long a source's task waits before its first poll; `None` if it is not polled
    /// at all. (Its stored state is read here, not in the loop, so the idle task does not
    /// hold it.)
    async fn first_wait(&self, source: &SourceConfig, start: Start) -> Option<Duration> {
        let name = source.name.clone();
        let state = {
            let _turn = FIRST_READS.acquire().await.ok()?;
            self.poller
                .store
                .call(move |store| store.source_state(&name))
                .await
                .ok()
                .flatten()
        };
        if state.as_ref().is_some_and(|s| s.is_gone(&source.url)) {
            tracing::warn!(
                source = %source.name,
                url = %source.url,
                "not polled: the source answered 410 Gone; remove it from feeds.toml or give it a new url"
            );
            return None;
        }
        let delay = first_delay(source, state.as_ref(), start);
        tracing::debug!(
            source = %source.name,
            first_poll_in_s = delay.as_secs(),
            stored_next_poll = ?state.as_ref().and_then(|s| s.next_poll),
            "scheduled: the first poll is at the stored due time (backoff, Retry-After, the server's freshness); new or overdue sources are spread over the first seconds"
        );
        Some(delay)
    }
}
