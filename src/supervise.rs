//! The daemon's supervisor: one task that owns the running config and the source tasks,
//! and changes them. It reloads `feeds.toml` (on request: SIGHUP, or a debounced change of
//! the file), runs retention every `[retention] every` and after each reload, and beats a
//! heartbeat the systemd watchdog listens to.
//!
//! Everything that changes the running daemon goes through this one loop, so a reload, a
//! retention pass and a shutdown never race each other.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{Semaphore, broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::{self, Config, SourceChange};
use crate::fetch::Fetcher;
use crate::reload::{self, ReloadReport};
use crate::scheduler::{Bounds, Scheduler, Sources, Start};
use crate::store::{Limits, PrunePlan, PruneReport, Store};

/// How long a burst of file events must go quiet before the file is read: editors write a
/// file in several steps (truncate, write, rename).
pub const DEBOUNCE: Duration = Duration::from_millis(300);
/// How often the supervisor proves it is alive (see [`Heartbeat`]).
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// A store write holding the write lock longer than this is stuck: no write holds it for
/// more than one chunk of entries.
pub const WRITE_STALL: Duration = Duration::from_secs(20);

/// What the supervisor did, for tests and anyone watching.
#[derive(Clone, Debug)]
pub enum Event {
    Reloaded(ReloadReport),
    /// A reload found `feeds.toml` unusable and kept the running config.
    ReloadFailed(String),
    Pruned(PruneReport),
    PruneFailed(String),
    /// Every named feed's index is built (see `store::FeedIndex`): each is read from it.
    FeedIndexesBuilt,
}

/// Requests to the supervisor.
pub enum Control {
    Reload(oneshot::Sender<Result<ReloadReport, String>>),
    Prune(oneshot::Sender<Result<PruneReport, String>>),
}

/// When the supervisor last completed a round trip through its loop and a store read,
/// with no store write stuck for longer than [`WRITE_STALL`].
#[derive(Clone)]
pub struct Heartbeat {
    origin: std::time::Instant,
    last: Arc<AtomicU64>,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Heartbeat {
            origin: std::time::Instant::now(),
            last: Arc::default(),
        }
    }
}

impl Heartbeat {
    fn beat(&self) {
        let ms = self.origin.elapsed().as_millis() as u64;
        self.last.store(ms, Ordering::Release);
    }

    /// How long ago the last beat was.
    pub fn age(&self) -> Duration {
        let last = Duration::from_millis(self.last.load(Ordering::Acquire));
        self.origin.elapsed().saturating_sub(last)
    }
}

/// The supervisor's state.
pub struct Supervisor {
    pub config: Arc<Config>,
    pub live: watch::Sender<Arc<Config>>,
    pub scheduler: Scheduler,
    pub sources: Sources,
    pub store: Store,
    pub events: broadcast::Sender<Event>,
    pub control: mpsc::Receiver<Control>,
    pub heartbeat: Heartbeat,
    pub shutdown: CancellationToken,
}

/// A retention pass in progress.
struct Pass {
    task: tokio::task::JoinHandle<Result<PruneReport, String>>,
    stop: Arc<AtomicBool>,
    waiting: Vec<oneshot::Sender<Result<PruneReport, String>>>,
}

impl Supervisor {
    /// Starts every configured source, then runs until shutdown.
    pub async fn run(mut self) {
        self.store.set_min_free(self.config.store.min_free_bytes);
        self.store
            .set_tombstone_ttl(self.config.retention.tombstones_for);
        // Registered when the store was opened; the missing ones are built meanwhile.
        build_feed_indexes(&self.store, &self.shutdown, &self.events);
        for s in self.config.sources.clone() {
            self.sources.start(&self.scheduler, s, Start::Resume);
        }
        let (file_tx, mut file_rx) = mpsc::unbounded_channel();
        let _watcher = watch_file(&self.config.path, file_tx);
        // What the file held when it was last read, so touching it does nothing.
        let mut last_read = read_hash(&self.config.path).await;
        let mut reload_at: Option<Instant> = None;
        let mut next_prune = Instant::now();
        let mut pass: Option<Pass> = None;
        let mut pending_prunes: Vec<oneshot::Sender<Result<PruneReport, String>>> = Vec::new();
        let mut stalled = false;
        let mut beat = tokio::time::interval(HEARTBEAT);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = self.shutdown.cancelled() => break,
                Some(control) = self.control.recv() => match control {
                    Control::Reload(reply) => {
                        last_read = read_hash(&self.config.path).await;
                        let r = self.reload().await;
                        if r.is_ok() {
                            next_prune = Instant::now();
                        }
                        let _ = reply.send(r);
                    }
                    Control::Prune(reply) => {
                        pending_prunes.push(reply);
                        next_prune = Instant::now();
                    }
                },
                Some(()) = file_rx.recv() => reload_at = Some(Instant::now() + DEBOUNCE),
                () = sleep_until(reload_at) => {
                    reload_at = None;
                    let now = read_hash(&self.config.path).await;
                    if now != last_read {
                        last_read = now;
                        tracing::info!(path = %self.config.path.display(), "the config file changed; reloading");
                        if self.reload().await.is_ok() {
                            next_prune = Instant::now();
                        }
                    }
                }
                () = tokio::time::sleep_until(next_prune), if pass.is_none() => {
                    pass = Some(self.start_pass(std::mem::take(&mut pending_prunes)));
                    next_prune = Instant::now() + self.config.retention.every;
                }
                done = finish(&mut pass) => {
                    let waiting = pass.take().map(|p| p.waiting).unwrap_or_default();
                    self.finished_pass(done, waiting);
                }
                _ = beat.tick() => {
                    let store = self.store.clone();
                    let read = tokio::task::spawn_blocking(move || store.probe()).await;
                    let stall = self.store.write_stall();
                    if stall > WRITE_STALL {
                        if !stalled {
                            tracing::error!(
                                stalled_s = stall.as_secs(),
                                "a store write has been stuck for a long time; under systemd the watchdog restarts the daemon"
                            );
                        }
                        stalled = true;
                    } else if let Ok(Ok(())) = read {
                        stalled = false;
                        self.heartbeat.beat();
                    }
                }
            }
        }
        if let Some(p) = pass {
            p.stop.store(true, Ordering::Release);
            let _ = p.task.await;
        }
    }

    /// Reads `feeds.toml` again and applies what changed; a broken file changes nothing.
    async fn reload(&mut self) -> Result<ReloadReport, String> {
        let path = self.config.path.clone();
        let loaded = tokio::task::spawn_blocking(move || config::load(&path))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
        let new = match loaded {
            Ok(c) => c,
            Err(error) => {
                // One line: each line of a log becomes its own journal entry.
                tracing::error!(
                    "the config was not reloaded; the running config stays in force: {}",
                    error.replace('\n', "; ")
                );
                self.scheduler.metrics.record_reload(false);
                let _ = self.events.send(Event::ReloadFailed(error.clone()));
                return Err(error);
            }
        };
        let report = reload::diff(&self.config, &new);
        if report.fetch_changed {
            match Fetcher::new(&new.fetch) {
                Ok(fetcher) => {
                    self.scheduler.fetcher = fetcher;
                    self.scheduler.bounds = Bounds::from(&new.fetch);
                    self.scheduler.permits = Arc::new(Semaphore::new(new.fetch.concurrency));
                }
                Err(e) => {
                    let error = format!("the new [fetch] settings cannot be used: {e}");
                    tracing::error!("the config was not reloaded: {error}");
                    self.scheduler.metrics.record_reload(false);
                    let _ = self.events.send(Event::ReloadFailed(error.clone()));
                    return Err(error);
                }
            }
        }
        for name in &report.removed {
            self.sources.stop(name);
        }
        for s in &new.sources {
            let old = self.sources.config(&s.name).cloned();
            match old.map(|o| s.change_from(&o)) {
                None => self
                    .sources
                    .start(&self.scheduler, s.clone(), Start::Prompt),
                Some(SourceChange::Request) => {
                    self.sources.start(&self.scheduler, s.clone(), Start::Now)
                }
                Some(SourceChange::Interval) => {
                    self.sources
                        .start(&self.scheduler, s.clone(), Start::Prompt)
                }
                // Filters, full text, templates, retention, title and tags: the task
                // restarts with them and keeps its schedule (no extra poll).
                Some(SourceChange::Presentation) => {
                    self.sources
                        .start(&self.scheduler, s.clone(), Start::Resume)
                }
                Some(SourceChange::None) if report.fetch_changed => {
                    self.sources
                        .start(&self.scheduler, s.clone(), Start::Resume)
                }
                Some(SourceChange::None) => {}
            }
        }
        self.store.set_min_free(new.store.min_free_bytes);
        self.store.set_tombstone_ttl(new.retention.tombstones_for);
        let (store, indexes) = (self.store.clone(), new.feed_indexes());
        match tokio::task::spawn_blocking(move || store.register_feed_indexes(indexes)).await {
            Ok(Ok(())) => build_feed_indexes(&self.store, &self.shutdown, &self.events),
            Ok(Err(error)) => tracing::error!(%error, "the named feeds' indexes were not updated"),
            Err(error) => tracing::error!(%error, "the named feeds' indexes were not updated"),
        }
        if !report.restart_needed.is_empty() {
            tracing::warn!(
                settings = %report.restart_needed.join(", "),
                "these settings changed in the config but take effect only after a restart"
            );
        }
        let new = Arc::new(new);
        self.config = new.clone();
        // Handlers see the new config from their next request on.
        self.live.send_replace(new);
        tracing::info!(changes = %report, sources = self.sources.len(), "config reloaded");
        self.scheduler.metrics.record_reload(true);
        let _ = self.events.send(Event::Reloaded(report.clone()));
        Ok(report)
    }

    fn start_pass(&self, waiting: Vec<oneshot::Sender<Result<PruneReport, String>>>) -> Pass {
        let stop = Arc::new(AtomicBool::new(false));
        let plan = prune_plan(&self.config, false, Some(stop.clone()));
        let store = self.store.clone();
        let task =
            tokio::task::spawn_blocking(move || store.prune(&plan).map_err(|e| e.to_string()));
        Pass {
            task,
            stop,
            waiting,
        }
    }

    fn finished_pass(
        &self,
        done: Result<PruneReport, String>,
        waiting: Vec<oneshot::Sender<Result<PruneReport, String>>>,
    ) {
        match &done {
            Ok(report) => {
                if report.pruned_total() > 0 || !report.deleted_sources.is_empty() {
                    tracing::info!(
                        pruned = report.pruned_total(),
                        deleted_sources = report.deleted_sources.len(),
                        tombstones_expired = report.tombstones_expired,
                        entries = report.entries,
                        "retention pass"
                    );
                } else {
                    tracing::debug!(entries = report.entries, "retention pass: nothing to prune");
                }
                self.scheduler.metrics.record_prune(report);
                let _ = self.events.send(Event::Pruned(report.clone()));
            }
            Err(error) => {
                tracing::error!(%error, "retention pass failed");
                let _ = self.events.send(Event::PruneFailed(error.clone()));
            }
        }
        for reply in waiting {
            let _ = reply.send(done.clone());
        }
    }
}

/// Builds the registered named-feed indexes that are not ready yet, in the background (see
/// `store::FeedIndex`); until one is ready its feed is read by merging its sources.
fn build_feed_indexes(
    store: &Store,
    shutdown: &CancellationToken,
    events: &broadcast::Sender<Event>,
) {
    let (store, shutdown, events) = (store.clone(), shutdown.clone(), events.clone());
    tokio::task::spawn_blocking(move || {
        match store.build_feed_indexes(&|| shutdown.is_cancelled()) {
            Ok(()) if !shutdown.is_cancelled() => {
                let _ = events.send(Event::FeedIndexesBuilt);
            }
            Ok(()) => {}
            Err(error) => {
                tracing::error!(%error, "building the named feeds' indexes failed; they are built at the next start or reload")
            }
        }
    });
}

/// The retention plan the config asks for, now.
pub fn prune_plan(config: &Config, dry_run: bool, stop: Option<Arc<AtomicBool>>) -> PrunePlan {
    let r = &config.retention;
    PrunePlan {
        sources: config
            .sources
            .iter()
            .map(|s| {
                let keep = s.keep.unwrap_or(r.keep_per_source);
                let limits = Limits {
                    keep,
                    keep_for: s.keep_for.unwrap_or(r.keep_for),
                    keep_min: r.keep_min.min(keep),
                };
                (s.name.clone(), limits)
            })
            .collect(),
        keep_total: r.keep_total,
        removed_after: r.removed_after,
        tombstones_for: r.tombstones_for,
        now: Utc::now(),
        dry_run,
        stop,
    }
}

/// Completes when the pass in progress does (never when there is none).
async fn finish(pass: &mut Option<Pass>) -> Result<PruneReport, String> {
    match pass {
        Some(p) => match (&mut p.task).await {
            Ok(r) => r,
            Err(e) => Err(format!("internal error: {e}")),
        },
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// A hash of the file's bytes (`None` when it cannot be read).
async fn read_hash(path: &std::path::Path) -> Option<blake3::Hash> {
    tokio::fs::read(path)
        .await
        .ok()
        .map(|bytes| blake3::hash(&bytes))
}

/// Watches the config file's folder (editors replace the file by renaming another over it,
/// which a watch on the file itself would miss) and signals events about the file.
fn watch_file(
    path: &std::path::Path,
    tx: mpsc::UnboundedSender<()>,
) -> Option<notify::RecommendedWatcher> {
    use notify::Watcher;
    let name = path.file_name()?.to_owned();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && !event.kind.is_access()
            && event.paths.iter().any(|p| p.file_name() == Some(&name))
        {
            let _ = tx.send(());
        }
    });
    let mut watcher = match watcher {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch the config file; reload with SIGHUP");
            return None;
        }
    };
    match watcher.watch(&dir, notify::RecursiveMode::NonRecursive) {
        Ok(()) => Some(watcher),
        Err(e) => {
            tracing::warn!(
                error = %e,
                dir = %dir.display(),
                "cannot watch the config file's folder; reload with SIGHUP"
            );
            None
        }
    }
}
