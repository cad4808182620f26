//! The daemon's supervisor: one task that owns the running config and the source tasks,
//! and changes them. It reloads `feeds.toml` (on request: SIGHUP, or a change of the file
//! once it has settled), runs retention every `[retention] every`, and beats a heartbeat
//! the systemd watchdog listens to.
//!
//! A careless save must not destroy anything:
//! - a watched change is applied only once the file has stayed the same (size, mtime,
//!   content) for [`SETTLE`], and only if it is still the same just before applying, so an
//!   editor writing in several steps is never caught half way;
//! - a reload to a config with no sources, or one removing most running sources at once,
//!   is refused ([`reload::plan`]); a restart applies such a config deliberately;
//! - a reload never prunes: after a reload that changes what retention depends on (sources
//!   added or removed, a source's `keep`/`keep_for`, `[retention]`) the next retention pass
//!   comes at its usual time and not sooner than [`PRUNE_AFTER_RELOAD`] after the change
//!   (but, however many reloads come, never more than that past when it was due; a reload
//!   that changes none of it does not move the pass), and a pass that would remove most of the
//!   store is held until `tributary prune --confirm` (see `store::retention`). How a pass
//!   runs and is confirmed: [`crate::daemon::retention`].
//!
//! [`PRUNE_AFTER_RELOAD`]: crate::daemon::retention::PRUNE_AFTER_RELOAD
//!
//! Everything that changes the running daemon goes through this one loop, so a reload, a
//! retention pass and a shutdown never race each other.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Semaphore, broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::{self, Config, SourceChange};
use crate::daemon::reload::{self, ReloadError, ReloadReport};
use crate::daemon::retention::{
    CONFIRM_FILE, Confirmation, Pass, PassSchedule, PruneReply, RetentionError, pass_done,
    report_confirmed, take_confirmation,
};
use crate::daemon::watch::{Snapshot, snapshot, watch_file};
use crate::fetch::Fetcher;
use crate::ingest::scheduler::{Scheduler, Sources};
use crate::ingest::timing::{Bounds, Start};
use crate::store::{PruneReport, Store, StoreError};

/// How long `feeds.toml` must stay unchanged (no event, same size, mtime and content)
/// before a change is applied: editors write a file in several steps (truncate, write in
/// chunks, rename). The file is looked at once this long after the last event and again
/// this long later; a change between the two starts the wait again.
pub const SETTLE: Duration = Duration::from_secs(1);
/// How often the supervisor proves it is alive (see [`Heartbeat`]).
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// A store write holding the write lock longer than this is stuck: no write holds it for
/// more than one chunk of entries.
pub const WRITE_STALL: Duration = Duration::from_secs(20);

/// What the supervisor did, for tests and anyone watching.
#[derive(Clone, Debug)]
pub enum Event {
    Reloaded(ReloadReport),
    /// A reload found `feeds.toml` unusable (or refused it) and kept the running config.
    ReloadFailed(ReloadError),
    Pruned(PruneReport),
    PruneFailed(RetentionError),
    /// Every named feed's index is built (see `model::FeedIndex`): each is read from it.
    FeedIndexesBuilt,
    /// The search index committed a round (`daemon/indexing.rs`): searches now see
    /// `documents` entries, and `pending` says more work was waiting.
    SearchIndexed {
        documents: u64,
        complete: bool,
        pending: bool,
    },
}

/// Requests to the supervisor.
pub enum Control {
    Reload(oneshot::Sender<Result<ReloadReport, ReloadError>>),
    Prune(PruneReply),
    /// Poll these sources now (every source when empty): answers with the sources woken,
    /// in the order asked (config order for all), whose reports then come as every poll's
    /// do; or, if any name is unknown, with those names, and polls nothing.
    PollNow(
        Vec<String>,
        oneshot::Sender<Result<Vec<String>, PollNowError>>,
    ),
}

/// Why a poll-now request polled nothing.
#[derive(Clone, Debug, thiserror::Error)]
pub enum PollNowError {
    #[error("{}", unknown_sources(.0))]
    Unknown(Vec<String>),
    #[error("the daemon is stopping")]
    Stopping,
}

/// "no source named a, b" (at most 20 names: a request may hold thousands).
pub fn unknown_sources(names: &[String]) -> String {
    const SHOWN: usize = 20;
    let mut text = format!(
        "no source named {}",
        names
            .iter()
            .take(SHOWN)
            .map(|n| format!("{n:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if names.len() > SHOWN {
        text.push_str(&format!(" (and {} more)", names.len() - SHOWN));
    }
    text
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
    pub scheduler: Arc<Scheduler>,
    pub metrics: crate::daemon::metrics::Metrics,
    pub sources: Sources,
    pub store: Store,
    pub events: broadcast::Sender<Event>,
    pub control: mpsc::Receiver<Control>,
    pub heartbeat: Heartbeat,
    pub shutdown: CancellationToken,
}

impl Supervisor {
    /// Starts every configured source, then runs until shutdown.
    pub async fn run(mut self) {
        self.store.set_min_free(self.config.store.min_free_bytes);
        self.store
            .set_tombstone_ttl(self.config.retention.tombstones_for);
        // Registered when the store was opened; the missing ones are built meanwhile.
        build_feed_indexes(&self.store, None, &self.shutdown, &self.events);
        for s in self.config.sources.clone() {
            self.sources.start(&self.scheduler, s, Start::Resume);
        }
        let (file_tx, mut file_rx) = mpsc::unbounded_channel();
        let _watcher = watch_file(&self.config.path, file_tx);
        // What the file held when it was last read, so touching it does nothing.
        let mut last_read = snapshot(&self.config.path).await.map(|(id, _)| id);
        // What the file held when last looked at while a change settles.
        let mut settling: Option<Option<Snapshot>> = None;
        let mut reload_at: Option<Instant> = None;
        let mut passes = PassSchedule::new();
        let mut pass: Option<Pass> = None;
        let mut pending_prunes: Vec<PruneReply> = Vec::new();
        let mut stalled = false;
        let mut beat = tokio::time::interval(HEARTBEAT);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = self.shutdown.cancelled() => break,
                Some(control) = self.control.recv() => match control {
                    Control::Reload(reply) => {
                        let read = snapshot(&self.config.path).await;
                        last_read = read.as_ref().map(|(id, _)| id.clone());
                        let r = match self.prepare(read.map(|(_, bytes)| bytes)).await {
                            Ok(new) => self.reload(new, &mut passes),
                            Err(e) => Err(e),
                        };
                        let _ = reply.send(r);
                    }
                    Control::Prune(reply) => {
                        pending_prunes.push(reply);
                        passes.next = Instant::now();
                    }
                    Control::PollNow(names, reply) => {
                        let _ = reply.send(self.poll_now(names));
                    }
                },
                Some(()) = file_rx.recv() => {
                    reload_at = Some(Instant::now() + SETTLE);
                    settling = None;
                }
                () = sleep_until(reload_at) => {
                    reload_at = None;
                    let read = snapshot(&self.config.path).await;
                    let id = read.as_ref().map(|(id, _)| id.clone());
                    if id == last_read {
                        settling = None;
                    } else if settling.as_ref() != Some(&id) {
                        // Changed since last looked at: not settled yet.
                        tracing::debug!("the config file changed; waiting for it to settle");
                        settling = Some(id);
                        reload_at = Some(Instant::now() + SETTLE);
                    } else {
                        settling = None;
                        last_read = id.clone();
                        tracing::info!(path = %self.config.path.display(), "the config file changed; reloading");
                        if let Ok(new) = self.prepare(read.map(|(_, bytes)| bytes)).await {
                            // Checked once more just before applying.
                            let again = snapshot(&self.config.path).await.map(|(id, _)| id);
                            if again != id {
                                tracing::info!("the config file changed again while it was read; waiting for it to settle");
                                reload_at = Some(Instant::now() + SETTLE);
                                last_read = None;
                            } else {
                                // A failure is logged and reported by `reload`.
                                let _ = self.reload(new, &mut passes);
                            }
                        }
                    }
                }
                () = tokio::time::sleep_until(passes.next), if pass.is_none() => {
                    pass = Some(Pass::start(&self.config, &self.store, std::mem::take(&mut pending_prunes), false));
                    passes.started(self.config.retention.every);
                }
                done = pass_done(&mut pass) => {
                    let (waiting, confirmed) = pass
                        .take()
                        .map(|p| (p.waiting, p.confirmed))
                        .unwrap_or_default();
                    if confirmed {
                        report_confirmed(&self.config.store.path, &done).await;
                    }
                    self.finished_pass(done, waiting);
                }
                _ = beat.tick() => {
                    // No confirmation is taken while a pass runs.
                    let confirm = pass.is_none().then(|| self.config.store.path.join(CONFIRM_FILE));
                    let (confirmation, read) = self.beat_trip(confirm.clone()).await;
                    match confirmation {
                        Confirmation::Absent => {}
                        Confirmation::Taken => {
                            tracing::warn!("`tributary prune --confirm`: running the retention pass even if it removes most of the store");
                            pass = Some(Pass::start(&self.config, &self.store, std::mem::take(&mut pending_prunes), true));
                        }
                        Confirmation::Stuck(error) => {
                            let path = confirm.unwrap_or_default();
                            tracing::error!(%error, path = %path.display(), "a prune confirmation could not be taken (remove the file by hand)");
                        }
                    }
                    let stall = self.store.write_stall();
                    if stall > WRITE_STALL {
                        if !stalled {
                            tracing::error!(
                                stalled_s = stall.as_secs(),
                                "a store write has been stuck for a long time; under systemd the watchdog restarts the daemon"
                            );
                        }
                        stalled = true;
                    } else if read.is_ok() {
                        stalled = false;
                        self.heartbeat.beat();
                    }
                }
            }
        }
        if let Some(p) = pass {
            p.stop().await;
        }
    }

    /// Wakes the named sources' tasks (every source's when `names` is empty) to poll now;
    /// nothing if a name is unknown.
    fn poll_now(&self, names: Vec<String>) -> Result<Vec<String>, PollNowError> {
        let names: Vec<String> = if names.is_empty() {
            self.config.sources.iter().map(|s| s.name.clone()).collect()
        } else {
            let mut seen = std::collections::HashSet::new();
            names
                .into_iter()
                .filter(|n| seen.insert(n.clone()))
                .collect()
        };
        let unknown: Vec<String> = names
            .iter()
            .filter(|n| self.sources.config(n).is_none())
            .cloned()
            .collect();
        if !unknown.is_empty() {
            return Err(PollNowError::Unknown(unknown));
        }
        for name in &names {
            self.sources.poll_now(&self.scheduler, name);
        }
        tracing::info!(sources = names.len(), "polling now, as asked");
        Ok(names)
    }

    /// A heartbeat's one trip off the runtime: takes a prune confirmation left in the
    /// store's folder (looked for at `confirm`, when given) and reads the store, so neither
    /// the file system nor the store is touched on a runtime worker. On a thread of its own,
    /// not the blocking pool: a heartbeat waiting behind polls (a slow flush, lookups on a
    /// dead resolver) would stop the watchdog's keep-alive for what is not a stuck store.
    async fn beat_trip(
        &self,
        confirm: Option<std::path::PathBuf>,
    ) -> (Confirmation, Result<(), StoreError>) {
        let trip = self
            .store
            .call_apart(move |store| {
                let confirmation = confirm
                    .as_deref()
                    .map_or(Confirmation::Absent, take_confirmation);
                Ok((confirmation, store.probe()))
            })
            .await;
        trip.unwrap_or_else(|error| (Confirmation::Absent, Err(error)))
    }

    /// Validates `feeds.toml` as read (`bytes`; `None`: it could not be read) and checks
    /// that applying it cannot hide or lose everything ([`reload::plan`]). A file that
    /// fails is logged and reported, and changes nothing.
    async fn prepare(&mut self, bytes: Option<Vec<u8>>) -> Result<Prepared, ReloadError> {
        let path = self.config.path.clone();
        let loaded = tokio::task::spawn_blocking(move || read_config(bytes, path))
            .await
            .unwrap_or_else(|e| Err(ReloadError::Task(e.to_string())));
        let prepared = loaded.and_then(|config| {
            let report = reload::plan(&self.config, &config)?;
            Ok(Prepared { config, report })
        });
        prepared.inspect_err(|error| self.reload_failed(error))
    }

    /// A prepared config applied (see [`Supervisor::apply`]); one that changes what
    /// retention depends on puts the next retention pass off (see [`PassSchedule::postpone`]).
    fn reload(
        &mut self,
        new: Prepared,
        passes: &mut PassSchedule,
    ) -> Result<ReloadReport, ReloadError> {
        let retention = reload::retention_changed(&self.config, &new.config);
        let report = self.apply(new)?;
        if retention {
            passes.postpone();
        }
        Ok(report)
    }

    /// A reload that changed nothing: logged (on one line: each line of a log becomes its
    /// own journal entry), counted and reported.
    fn reload_failed(&self, error: &ReloadError) {
        tracing::error!(
            "the config was not reloaded; the running config stays in force: {}",
            error.to_string().replace('\n', "; ")
        );
        self.metrics.record_reload(false);
        let _ = self.events.send(Event::ReloadFailed(error.clone()));
    }

    /// Applies a validated config: what changed (see [`reload::diff`]).
    fn apply(&mut self, prepared: Prepared) -> Result<ReloadReport, ReloadError> {
        let Prepared {
            config: new,
            report,
        } = prepared;
        if report.fetch_changed {
            match Fetcher::new(&new.fetch) {
                Ok(fetcher) => {
                    // The tasks restarted below take the new one; running polls finish
                    // with the old.
                    let mut next = Scheduler::clone(&self.scheduler);
                    next.poller.fetcher = fetcher;
                    next.poller.bounds = Bounds::from(&new.fetch);
                    next.poller.permits = Arc::new(Semaphore::new(new.fetch.concurrency));
                    self.scheduler = Arc::new(next);
                }
                Err(e) => {
                    let error = ReloadError::from(e);
                    self.reload_failed(&error);
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
        // The new named feeds' indexes: registered (in order) and built off the runtime.
        let ticket = self.store.feed_index_ticket();
        build_feed_indexes(
            &self.store,
            Some((ticket, new.feed_indexes())),
            &self.shutdown,
            &self.events,
        );
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
        self.metrics.record_reload(true);
        let _ = self.events.send(Event::Reloaded(report.clone()));
        Ok(report)
    }

    fn finished_pass(&self, done: Result<PruneReport, RetentionError>, waiting: Vec<PruneReply>) {
        match &done {
            Ok(
                report @ PruneReport {
                    held: Some(held), ..
                },
            ) => {
                tracing::error!(
                    would_prune = held.would_prune,
                    entries = held.entries,
                    held_since = %held.since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    "RETENTION HELD: {}, so nothing was pruned. If the [retention] limits or keep/keep_for in feeds.toml are what you meant, run `tributary prune --dry-run` to see what would go (stop the daemon first), then `tributary prune --confirm` (the running daemon takes it); if not, fix feeds.toml. Retention stays held until then",
                    held.reason
                );
                self.metrics.record_prune(report);
                let _ = self.events.send(Event::Pruned(report.clone()));
            }
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
                self.metrics.record_prune(report);
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
/// `model::FeedIndex`); until one is ready its feed is read by merging its sources.
fn build_feed_indexes(
    store: &Store,
    register: Option<(u64, Vec<crate::model::FeedIndex>)>,
    shutdown: &CancellationToken,
    events: &broadcast::Sender<Event>,
) {
    let (store, shutdown, events) = (store.clone(), shutdown.clone(), events.clone());
    tokio::spawn(async move {
        let stop = shutdown.clone();
        let built = store
            .call(move |store| {
                if let Some((ticket, indexes)) = register {
                    store.register_feed_indexes_as(ticket, indexes)?;
                }
                store.build_feed_indexes(&|| stop.is_cancelled())
            })
            .await;
        match built {
            Ok(()) if !shutdown.is_cancelled() => {
                let _ = events.send(Event::FeedIndexesBuilt);
            }
            Ok(()) => {}
            Err(error) => tracing::error!(
                %error,
                "building the named feeds' indexes failed; they are built at the next start or reload"
            ),
        }
    });
}

/// A validated config with what applying it changes.
struct Prepared {
    config: Config,
    report: ReloadReport,
}

/// `feeds.toml` as read (`bytes`; `None`: read it again here), validated.
fn read_config(bytes: Option<Vec<u8>>, path: std::path::PathBuf) -> Result<Config, ReloadError> {
    let config = match bytes {
        Some(bytes) => match String::from_utf8(bytes) {
            Ok(text) => config::parse(&text, &path)?,
            Err(error) => return Err(ReloadError::NotUtf8 { path, error }),
        },
        None => config::load(&path)?,
    };
    // A theme that compiles may still fail as it renders: tried on sample pages first, so
    // a broken theme is refused here and the running one keeps serving.
    if let Some(t) = &config.publish.templates
        && let Err(error) = crate::render::river::trial(&t.files)
    {
        return Err(ReloadError::Templates {
            config: path,
            dir: t.dir.clone(),
            error: std::sync::Arc::new(error),
        });
    }
    Ok(config)
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
