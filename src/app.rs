//! Wires the stages into the daemon ([`start`], [`run`]) and the one-shot poll ([`once`]).

use std::net::SocketAddr;
use std::sync::Arc;

use chrono::Utc;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, broadcast, mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::daemon::control::{self, ClientError, Reply};
use crate::daemon::reload::{ReloadError, ReloadReport};
use crate::daemon::retention::RetentionError;
use crate::daemon::supervise::{Control, Event, Heartbeat, Supervisor, unknown_sources};
use crate::daemon::systemd;
use crate::fetch::{FetchError, Fetcher};
use crate::ingest::poll::{PollReport, Poller};
use crate::ingest::scheduler::{Scheduler, Sources};
use crate::ingest::timing::Bounds;
use crate::serve::{self, AppState};
use crate::store::{PruneReport, Store, StoreError};

/// Why a command (or the daemon) failed: the stage's own error, kept as the source so
/// `main` can print the whole chain.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("{0}")]
    Query(crate::query::QueryError),
    #[error("search: {0}")]
    Search(String),
    #[error("cannot listen on {addr}: {error}")]
    Bind {
        addr: SocketAddr,
        #[source]
        error: std::io::Error,
    },
    /// A task of ours stopped unfinished (it panicked or was cancelled).
    #[error("internal error: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// A report could not be written as JSON.
    #[error("internal error: {0}")]
    Json(#[from] serde_json::Error),
    /// A stop's grace ran out while a store write was still in progress.
    #[error("internal error: stopped with a store write stuck")]
    WriteStuck,
    /// A second stop signal ended the process before the store was flushed.
    #[error("internal error: stopped before the store was flushed")]
    StoppedUnflushed,
    #[error(
        "the store is in use by a running tributary, but its /healthz at {url} did not answer: {error}"
    )]
    Daemon {
        url: String,
        #[source]
        error: AskError,
    },
    #[error(
        "the store at {path} is in use by the running tributary, which prunes every {every} by itself (a pass that would remove most of the store waits for `tributary prune --confirm`); to prune now, stop it first (`systemctl stop tributary`), prune, and start it again"
    )]
    PruneWhileRunning { path: String, every: String },
    #[error(
        "not pruned: {0}, more than half; run `tributary prune --confirm` if that is what you meant (`--dry-run` lists it), or change the limits in feeds.toml"
    )]
    PruneHeld(String),
    /// `prune --confirm` could not hand its confirmation to the running daemon.
    #[error("{what} {}: {error}", path.display())]
    Confirm {
        what: &'static str,
        path: std::path::PathBuf,
        #[source]
        error: std::io::Error,
    },
    #[error(
        "the running tributary did not take the confirmation within {} s (is the daemon stuck, or older than this command?); stop it and run `tributary prune --confirm` again",
        CONFIRM_TAKEN_WITHIN.as_secs()
    )]
    ConfirmNotTaken,
    #[error(
        "the running tributary took the confirmation but has not finished the pass after 30 minutes; its log says more"
    )]
    ConfirmNotFinished,
    /// The running daemon's confirmed pass failed (its error, as it wrote it).
    #[error("the confirmed pass failed: {0}")]
    ConfirmedPassFailed(String),
    #[error("the store is inconsistent ({0} problems)")]
    Inconsistent(usize),
    /// `poll` named sources the config (the daemon's, when one runs) does not have.
    #[error("{}", unknown_sources(.0))]
    UnknownSources(Vec<String>),
    /// `poll`: the daemon's control socket failed.
    #[error(transparent)]
    Control(#[from] ClientError),
    /// `poll`: the daemon refused the request (its message).
    #[error("the running tributary refused: {0}")]
    ControlRefused(String),
    #[error(
        "the store is in use by a running tributary, but its control socket did not answer (is it older than this command, or could it not create the socket? its log says): {error}"
    )]
    NoControl {
        #[source]
        error: ClientError,
    },
}

/// What `poll` did in all.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PollSummary {
    pub polled: usize,
    pub failed: usize,
    /// Sources the daemon had not reported on when it stopped waiting.
    pub missing: Vec<String>,
    /// Whether the running daemon polled them (else this process did).
    pub by_daemon: bool,
}

/// Why the running daemon's `/healthz` gave no status.
#[derive(Debug, thiserror::Error)]
pub enum AskError {
    /// No answer (nothing listens there, or it timed out).
    #[error(transparent)]
    Request(reqwest::Error),
    /// The answer broke off.
    #[error(transparent)]
    Body(reqwest::Error),
    /// The answer is not a status.
    #[error(transparent)]
    Json(serde_json::Error),
    /// The daemon refused the request (a 400), with its reason.
    #[error("{0}")]
    Refused(String),
}

/// How long a stop waits for the source tasks (a store write in progress finishes in well
/// under a second; systemd's TimeoutStopSec is 30 s).
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(20);

/// How long a stop waits for the store's checkpoint ([`Store::checkpoint`]): a million
/// entries take about a second; systemd's `TimeoutStopSec` is 30 s, of which
/// [`SHUTDOWN_GRACE`] is for the writes in flight.
const CHECKPOINT_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// The store's checkpoint at a clean stop, after the final flush: what it costs here, the
/// next start saves. Everything is on disk already, so a failure or a checkpoint that
/// outlasts [`CHECKPOINT_GRACE`] only costs the next start its replay of the log.
async fn checkpoint(store: &Store) {
    let started = std::time::Instant::now();
    match tokio::time::timeout(CHECKPOINT_GRACE, store.call(|s| s.checkpoint())).await {
        Ok(Ok(true)) => tracing::info!(
            took_ms = started.elapsed().as_millis() as u64,
            "store checkpointed: the next start reads no log"
        ),
        Ok(Ok(false)) => {}
        Ok(Err(error)) => tracing::warn!(
            %error,
            "store checkpoint failed; the next start reads the log written since this one (nothing is lost)"
        ),
        Err(_) => tracing::warn!(
            grace_s = CHECKPOINT_GRACE.as_secs(),
            "store checkpoint took too long; stopping without it (nothing is lost)"
        ),
    }
}

/// A running daemon: the supervisor (config, source tasks, retention) and the HTTP server.
pub struct Daemon {
    addr: SocketAddr,
    shutdown: CancellationToken,
    events: broadcast::Sender<PollReport>,
    changes: broadcast::Sender<Event>,
    control: mpsc::Sender<Control>,
    heartbeat: Heartbeat,
    live: watch::Receiver<Arc<Config>>,
    task: tokio::task::JoinHandle<Result<(), Error>>,
    /// Every poll's report, from the first one on (subscribed before any poll started).
    pub reports: broadcast::Receiver<PollReport>,
    /// Every reload and retention pass, from the start on.
    pub supervisor_events: broadcast::Receiver<Event>,
}

impl Daemon {
    /// The address the HTTP server is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The receiver of every poll report from the start (a fresh one takes its place).
    pub fn take_reports(&mut self) -> broadcast::Receiver<PollReport> {
        let fresh = self.events.subscribe();
        std::mem::replace(&mut self.reports, fresh)
    }

    /// Another receiver of poll reports, from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<PollReport> {
        self.events.subscribe()
    }

    /// Another receiver of reloads and retention passes, from now on.
    pub fn subscribe_changes(&self) -> broadcast::Receiver<Event> {
        self.changes.subscribe()
    }

    /// The config in force.
    pub fn config(&self) -> Arc<Config> {
        self.live.borrow().clone()
    }

    /// Reads the config file again and applies it (what SIGHUP does). A broken file is an
    /// error and changes nothing.
    pub async fn reload(&self) -> Result<ReloadReport, ReloadError> {
        self.ask(Control::Reload, ReloadError::Stopping).await
    }

    /// Runs a retention pass now and returns what it did (a pass that would remove most of
    /// the store is held: see `PruneReport::held`).
    pub async fn prune(&self) -> Result<PruneReport, RetentionError> {
        self.ask(Control::Prune, RetentionError::Stopping).await
    }

    /// Sends the supervisor a request and waits for its answer (`stopping` when the
    /// supervisor is gone).
    async fn ask<T, E>(
        &self,
        request: impl FnOnce(oneshot::Sender<Result<T, E>>) -> Control,
        stopping: E,
    ) -> Result<T, E> {
        let (reply, answer) = oneshot::channel();
        if self.control.send(request(reply)).await.is_err() {
            return Err(stopping);
        }
        answer.await.unwrap_or(Err(stopping))
    }

    /// How long ago the supervisor last proved itself alive (loop and store both answering).
    pub fn heartbeat_age(&self) -> std::time::Duration {
        self.heartbeat.age()
    }

    /// Stops polling, lets in-flight writes finish, stops the server, flushes the store.
    pub async fn shutdown(self) -> Result<(), Error> {
        self.shutdown.cancel();
        self.wait().await
    }

    /// Waits until the daemon has stopped (after its shutdown token was cancelled).
    pub async fn wait(self) -> Result<(), Error> {
        self.task.await?
    }
}

/// The runtime's blocking threads (the binary builds its runtime with this many at most),
/// where store calls, parsing, extraction and DNS lookups run: eight per core, at least
/// sixteen. tokio's default (512) let a thousand polls beginning at once start a thread
/// each for their first store read; sled did no more work for it (writes take turns on one
/// lock, the rest is CPU) and the threads cost memory and switches (BENCHMARKS.md). Sixteen
/// is twice the default `[fetch] concurrency`, so lookups stuck on a dead resolver leave
/// room; renders take at most one per core (`serve/cache.rs`); the watchdog's heartbeat
/// reads the store on a thread of its own ([`Store::call_apart`]).
///
/// [`Store::call_apart`]: crate::store::Store::call_apart
pub fn blocking_threads() -> usize {
    std::thread::available_parallelism().map_or(16, |n| (8 * n.get()).max(16))
}

/// Opens the store and starts the supervisor (which starts the sources) and the HTTP server
/// on `listener`.
pub async fn start(config: Config, listener: TcpListener) -> Result<Daemon, Error> {
    let store = open_store(&config).await?;
    let fetcher = Fetcher::new(&config.fetch)?;
    let addr = listener.local_addr().map_err(|error| Error::Bind {
        addr: config.server.listen,
        error,
    })?;
    let (events, reports) = broadcast::channel(4096);
    let (changes, supervisor_events) = broadcast::channel(256);
    let (control_tx, control) = mpsc::channel(16);
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let config = Arc::new(config);
    let (live_tx, live) = watch::channel(config.clone());
    let heartbeat = Heartbeat::default();

    let metrics = crate::daemon::metrics::Metrics::new();
    // Deliveries never hold up a poll: the callback only hands the keys over.
    let webhooks = crate::daemon::webhooks::Webhooks::start(
        store.clone(),
        fetcher.clone(),
        live.clone(),
        metrics.clone(),
        shutdown.clone(),
    );
    let hub = crate::serve::hub::Hub::new(
        store.clone(),
        fetcher.clone(),
        live.clone(),
        metrics.clone(),
        shutdown.clone(),
    )
    .await;
    // WebSub: subscriptions found by polls, verified and delivered over HTTP.
    let push = crate::ingest::push::Push::default();
    let websub = crate::daemon::websub::Websub::start(crate::daemon::websub::Parts {
        store: store.clone(),
        fetcher: fetcher.clone(),
        push: push.clone(),
        live: live.clone(),
        control: control_tx.clone(),
        metrics: metrics.clone(),
        shutdown: shutdown.clone(),
        tracker: tracker.clone(),
    })
    .await;
    let on_poll = {
        let (metrics, events, hub) = (metrics.clone(), events.clone(), hub.clone());
        let discoveries = websub.discoveries();
        Arc::new(move |report: PollReport| {
            metrics.record_poll(&report);
            webhooks.poll_done(&report);
            hub.poll_done(&report);
            discoveries.poll_done(&report);
            // No receiver is fine: reports are for tests and status consumers.
            let _ = events.send(report);
        })
    };
    let scheduler = Arc::new(Scheduler {
        poller: Poller {
            fetcher,
            store: store.clone(),
            bounds: Bounds::from(&config.fetch),
            permits: Arc::new(Semaphore::new(config.fetch.concurrency)),
            quiet: false,
            push: push.clone(),
        },
        on_poll,
        shutdown: shutdown.clone(),
    });
    websub.attach(
        crate::daemon::websub::poller(
            store.clone(),
            scheduler.poller.fetcher.clone(),
            &config,
            push.clone(),
        ),
        scheduler.on_poll.clone(),
    );
    let supervisor = Supervisor {
        config: config.clone(),
        live: live_tx,
        scheduler,
        metrics: metrics.clone(),
        sources: Sources::new(tracker.clone()),
        store: store.clone(),
        events: changes.clone(),
        control,
        heartbeat: heartbeat.clone(),
        shutdown: shutdown.clone(),
    };
    tracker.spawn(supervisor.run());
    crate::daemon::indexing::start(store.clone(), changes.clone(), &shutdown, &tracker);
    start_control(&config, &control_tx, &events, &shutdown, &tracker);
    tracing::info!(
        %addr,
        sources = config.sources.len(),
        store = %config.store.path.display(),
        "tributary started"
    );

    let app_state = AppState::new(crate::serve::Shared {
        store: store.clone(),
        live_config: live.clone(),
        started: Utc::now(),
        cache: Arc::default(),
        metrics: metrics.clone(),
        hub_counts: hub.counts(),
        websub,
        pages: Default::default(),
    });
    hub.run(app_state.clone());
    let app = serve::router(app_state, hub);
    let server_shutdown = shutdown.clone();
    // Each client connection takes a file descriptor: use all the process may have.
    let settings = crate::serve::listener::Settings::from_config(&config.server)
        .within_fd_limit(crate::serve::listener::raise_fd_limit());
    let server_metrics = metrics.clone();
    let task = tokio::spawn(async move {
        // In-flight responses get `serve::STOP_GRACE` after a stop, then the connections
        // still open are closed.
        crate::serve::listener::serve(listener, app, settings, server_metrics, server_shutdown)
            .await;
        tracker.close();
        // A store write that never finishes (sled can hang after a disk error) must not
        // keep the process from stopping: after the grace, exit without it.
        if tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait())
            .await
            .is_err()
        {
            tracing::error!(
                grace_s = SHUTDOWN_GRACE.as_secs(),
                "a store write is stuck; stopping without waiting for it (the store recovers at the next start)"
            );
            return Err(Error::WriteStuck);
        }
        store.call(|s| s.flush()).await?;
        checkpoint(&store).await;
        tracing::info!("tributary stopped; store flushed");
        Ok(())
    });
    Ok(Daemon {
        addr,
        shutdown,
        events,
        changes,
        control: control_tx,
        heartbeat,
        live,
        task,
        reports,
        supervisor_events,
    })
}

/// The daemon until SIGTERM or SIGINT: binds `server.listen` and runs. SIGHUP reloads the
/// config. Under systemd it reports readiness, reloads and stopping, and sends watchdog
/// keep-alives while the supervisor's heartbeat is fresh.
pub async fn run(config: Config) -> Result<(), Error> {
    // Before anything else: a reload asked for during start-up must not kill the process
    // (SIGHUP's default action).
    let mut signals = crate::daemon::shutdown::Signals::new();
    let addr = config.server.listen;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|error| Error::Bind { addr, error })?;
    // Start-up is quick, except while a big store is converted (minutes): a stop then
    // ends the process at once. That is as safe as a crash (each conversion batch is
    // atomic, and the next start carries on), and waiting would only end in SIGKILL.
    let daemon = tokio::select! {
        started = start(config, listener) => started?,
        () = signals.stop.next() => {
            systemd::stopping();
            tracing::warn!("stopped while opening the store; a conversion carries on at the next start");
            std::process::exit(0);
        }
    };
    systemd::ready(&status_line(&daemon));
    let watchdog = systemd::watchdog();
    let mut keepalive = tokio::time::interval(watchdog.map_or(
        std::time::Duration::from_secs(3600),
        systemd::keepalive_period,
    ));
    let mut changes = daemon.subscribe_changes();
    loop {
        tokio::select! {
            // Any reload (a watched edit as well as SIGHUP): the status line follows.
            Ok(event) = changes.recv() => {
                if let Event::Reloaded(_) = event {
                    systemd::status(&status_line(&daemon));
                }
            }
            () = signals.stop.next() => break,
            () = signals.reload.next() => {
                tracing::info!("SIGHUP received, reloading the config");
                systemd::reloading();
                // A failed reload is logged by the supervisor and changes nothing.
                let _ = daemon.reload().await;
                systemd::ready(&status_line(&daemon));
            }
            _ = keepalive.tick(), if watchdog.is_some() => {
                let age = daemon.heartbeat_age();
                if watchdog.is_some_and(|wd| systemd::alive(age, wd)) {
                    systemd::keepalive();
                } else {
                    tracing::error!(
                        heartbeat_age_ms = age.as_millis() as u64,
                        "the scheduler is not answering; withholding the watchdog keep-alive"
                    );
                }
            }
        }
    }
    systemd::stopping();
    // A poll still reading its document is dropped at once; one in its store write
    // finishes; then the store is flushed. A second stop signal does not wait for that.
    tokio::select! {
        stopped = daemon.shutdown() => stopped,
        () = signals.stop.next() => {
            tracing::warn!("asked to stop again: exiting without waiting (the store recovers at the next start)");
            Err(Error::StoppedUnflushed)
        }
    }
}

/// The control socket (`tributary poll`), served until shutdown; a daemon that cannot
/// create it runs without it.
fn start_control(
    config: &Config,
    control: &mpsc::Sender<Control>,
    reports: &broadcast::Sender<PollReport>,
    shutdown: &CancellationToken,
    tracker: &TaskTracker,
) {
    let path = control::socket_path(&config.store.path);
    match control::bind(&path) {
        Ok(listening) => {
            let channel = control::Channel {
                control: control.clone(),
                reports: reports.clone(),
                shutdown: shutdown.clone(),
            };
            tracing::debug!(path = %path.display(), "control socket listening");
            tracker.spawn(listening.serve(channel, tracker.clone()));
        }
        Err(error) => tracing::error!(
            %error,
            "running without the control socket: `tributary poll` cannot reach this daemon"
        ),
    }
}

fn status_line(daemon: &Daemon) -> String {
    let config = daemon.config();
    format!(
        "serving {} sources on {}",
        config.sources.len(),
        daemon.local_addr()
    )
}

/// Polls every source once (concurrently, within the configured limit) and returns one
/// report per source, in config order. Failing sources are reports, not errors; only an
/// unusable store is an error.
pub async fn once(config: Config) -> Result<Vec<PollReport>, Error> {
    once_each(config, |_| {}).await
}

/// [`once`], handing each report to `each` as its poll finishes (in the order they finish),
/// before returning them all in config order. Each poll's log line is at debug level: the
/// caller shows the reports.
pub async fn once_each(
    config: Config,
    mut each: impl FnMut(&PollReport),
) -> Result<Vec<PollReport>, Error> {
    let store = open_store(&config).await?;
    let fetcher = Fetcher::new(&config.fetch)?;
    let poller = Poller {
        fetcher,
        store: store.clone(),
        bounds: Bounds::from(&config.fetch),
        permits: Arc::new(Semaphore::new(config.fetch.concurrency)),
        quiet: true,
        push: Default::default(),
    };
    let cancel = CancellationToken::new();
    let mut set = JoinSet::new();
    for (i, source) in config.sources.iter().cloned().enumerate() {
        let (poller, cancel) = (poller.clone(), cancel.clone());
        set.spawn(async move { (i, poller.poll(&source, &cancel).await) });
    }
    let mut reports: Vec<Option<PollReport>> = vec![None; config.sources.len()];
    while let Some(done) = set.join_next().await {
        let (i, report) = done?;
        each(&report);
        reports[i] = Some(report);
    }
    store.call(|s| s.flush()).await?;
    Ok(reports.into_iter().flatten().collect())
}

/// Polls the named sources now (every source when `names` is empty): the running daemon
/// does, over its control socket (see [`control`]), and each poll's line (what `once`
/// prints) is handed to `line` as it finishes; with no daemon running, this process polls
/// them as `once` does. A name the config does not have is an error and polls nothing.
pub async fn poll(
    config: Config,
    names: Vec<String>,
    mut line: impl FnMut(&str),
) -> Result<PollSummary, Error> {
    let path = control::socket_path(&config.store.path);
    let request = control::Request {
        poll: names.clone(),
    };
    match control::Client::ask(&path, &request).await {
        Ok(client) => poll_by_daemon(client, line).await,
        Err(ClientError::NotRunning { path, error }) => {
            let unknown: Vec<String> = names
                .iter()
                .filter(|n| config.source(n).is_none())
                .cloned()
                .collect();
            if !unknown.is_empty() {
                return Err(Error::UnknownSources(unknown));
            }
            let mut config = config;
            if !names.is_empty() {
                config.sources.retain(|s| names.contains(&s.name));
            }
            // Each line as its poll finishes, as `once` prints them.
            let reports = match once_each(config, |r| line(&r.to_string())).await {
                Err(Error::Store(StoreError::Locked { .. })) => {
                    let error = ClientError::NotRunning { path, error };
                    return Err(Error::NoControl { error });
                }
                other => other?,
            };
            Ok(PollSummary {
                polled: reports.len(),
                failed: reports.iter().filter(|r| r.is_failure()).count(),
                missing: Vec::new(),
                by_daemon: false,
            })
        }
        Err(error) => Err(error.into()),
    }
}

/// The daemon's replies to a poll request, until its `done`.
async fn poll_by_daemon(
    mut client: control::Client,
    mut line: impl FnMut(&str),
) -> Result<PollSummary, Error> {
    loop {
        match client.next().await? {
            Reply::Started { .. } => {}
            Reply::Report { line: text, .. } => line(&text),
            Reply::Done {
                polled,
                failed,
                missing,
            } => {
                return Ok(PollSummary {
                    polled,
                    failed,
                    missing,
                    by_daemon: true,
                });
            }
            Reply::Unknown { names } => return Err(Error::UnknownSources(names)),
            Reply::Error { message } => return Err(Error::ControlRefused(message)),
        }
    }
}

/// How often systemd hears that opening the store is still going on.
const STILL_OPENING: std::time::Duration = std::time::Duration::from_secs(10);
/// How long opening the store may take at most, however big the store.
const OPENING_AT_MOST: std::time::Duration = std::time::Duration::from_secs(30 * 60);

async fn open_store(config: &Config) -> Result<Store, Error> {
    let path = config.store.path.clone();
    let cache = config.store.cache_bytes;
    let mut opening = tokio::task::spawn_blocking(move || Store::open(&path, cache));
    // Opening is quick, except when sled replays a long log or the layout is converted
    // (minutes for a million entries): meanwhile systemd is told start-up goes on.
    // Past OPENING_AT_MOST systemd is no longer told, so TimeoutStartSec ends a stuck open.
    let began = std::time::Instant::now();
    let store = loop {
        tokio::select! {
            opened = &mut opening => break opened,
            () = tokio::time::sleep(STILL_OPENING) => if began.elapsed() < OPENING_AT_MOST {
                crate::daemon::systemd::still_starting(
                    "opening the store (converting it, when the log says so)",
                    STILL_OPENING * 3,
                );
            },
        }
    }??;
    store.set_min_free(config.store.min_free_bytes);
    store.set_tombstone_ttl(config.retention.tombstones_for);
    // Before the first write, so every write keeps the named feeds' indexes.
    let indexes = config.feed_indexes();
    store
        .call(move |s| s.register_feed_indexes(indexes))
        .await?;
    Ok(store)
}

/// The store, for commands that read or check it: a missing one is an error, not created.
async fn open_existing_store(config: &Config) -> Result<Store, Error> {
    let path = config.store.path.clone();
    let cache = config.store.cache_bytes;
    // There is no store to call yet: opening is the one store call made on its own
    // blocking thread.
    let store = tokio::task::spawn_blocking(move || Store::open_existing(&path, cache)).await??;
    store.set_tombstone_ttl(config.retention.tombstones_for);
    Ok(store)
}

/// One retention pass on the store (which must not be in use), or a dry run of one. A pass
/// that would remove most of the store runs only when `confirmed`; otherwise it is held
/// (recorded for `status`) and returned with `held` set.
pub async fn prune(config: Config, dry_run: bool, confirmed: bool) -> Result<PruneReport, Error> {
    let store = match open_existing_store(&config).await {
        // The running daemon takes a confirmation (see `retention::CONFIRM_FILE`).
        Err(Error::Store(StoreError::Locked { .. })) if confirmed => {
            return confirm_to_daemon(&config).await;
        }
        Err(Error::Store(StoreError::Locked { path })) => {
            return Err(Error::PruneWhileRunning {
                path: path.display().to_string(),
                every: humantime::format_duration(config.retention.every).to_string(),
            });
        }
        other => other?,
    };
    let plan = crate::daemon::retention::prune_plan(&config, dry_run, confirmed, None);
    let report = store
        .call(move |s| {
            let report = s.prune(&plan)?;
            s.flush()?;
            Ok(report)
        })
        .await?;
    Ok(report)
}

/// How long the running daemon has to take a confirmation (it looks every heartbeat, when
/// no pass is running), and then to finish the pass.
const CONFIRM_TAKEN_WITHIN: std::time::Duration = std::time::Duration::from_secs(30);
const CONFIRM_DONE_WITHIN: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// `prune --confirm` while the daemon runs: leaves the confirmation in the store's folder,
/// waits for the daemon to take it and run the pass, and returns the pass's report.
async fn confirm_to_daemon(config: &Config) -> Result<PruneReport, Error> {
    use crate::daemon::retention::{CONFIRM_FILE, CONFIRM_REPORT};
    let request = config.store.path.join(CONFIRM_FILE);
    let report = config.store.path.join(CONFIRM_REPORT);
    let io = |what: &'static str, path: &std::path::Path, error: std::io::Error| Error::Confirm {
        what,
        path: path.to_path_buf(),
        error,
    };
    match tokio::fs::remove_file(&report).await {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(io("cannot remove an old report at", &report, e));
        }
        _ => {}
    }
    let tmp = request.with_extension("tmp");
    tokio::fs::write(&tmp, Utc::now().to_rfc3339())
        .await
        .map_err(|e| io("cannot write the confirmation to", &tmp, e))?;
    tokio::fs::rename(&tmp, &request)
        .await
        .map_err(|e| io("cannot write the confirmation to", &request, e))?;
    eprintln!("the store is in use by the running tributary: it runs the confirmed pass now");
    let began = std::time::Instant::now();
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        if let Ok(bytes) = tokio::fs::read(&report).await {
            let _ = tokio::fs::remove_file(&report).await;
            if let Ok(r) = serde_json::from_slice::<PruneReport>(&bytes) {
                return Ok(r);
            }
            let error = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v.get("error")?.as_str().map(str::to_string))
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
            return Err(Error::ConfirmedPassFailed(error));
        }
        let taken = !tokio::fs::try_exists(&request).await.unwrap_or(true);
        if !taken && began.elapsed() > CONFIRM_TAKEN_WITHIN {
            let _ = tokio::fs::remove_file(&request).await;
            return Err(Error::ConfirmNotTaken);
        }
        if began.elapsed() > CONFIRM_DONE_WITHIN {
            return Err(Error::ConfirmNotFinished);
        }
    }
}

/// Checks the store's consistency (see [`Store::verify`]).
pub async fn verify(config: Config) -> Result<crate::store::VerifyReport, Error> {
    let store = open_existing_store(&config).await?;
    let indexes = config.feed_indexes();
    let report = store
        .call(move |s| {
            s.register_feed_indexes(indexes)?;
            let mut report = s.verify()?;
            match s.verify_search() {
                Ok(search) => {
                    if search.complete && !search.agrees() {
                        report.problems.push(format!(
                            "the search index disagrees with the store: {} entries not indexed, {} documents of entries not stored, {} indexed twice (`tributary reindex` rebuilds it)",
                            search.missing, search.stale, search.duplicated
                        ));
                    }
                    report.search = Some(search);
                }
                Err(error) => report.problems.push(format!(
                    "the search index cannot be read: {error} (`tributary reindex` rebuilds it)"
                )),
            }
            Ok(report)
        })
        .await?;
    Ok(report)
}

/// One entry a search found, as `tributary search` prints it.
#[derive(Clone, Debug, serde::Serialize, PartialEq)]
pub struct SearchLine {
    pub title: String,
    /// The source's name (as in feeds.toml).
    pub source: String,
    pub date: Option<chrono::DateTime<Utc>>,
    pub link: Option<String>,
}

/// Who answered a search.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SearchedBy {
    Daemon,
    Store,
}

/// The entries matching `text`, newest first (or by relevance), at most `limit`: from the
/// running daemon's `/search.json` when one answers, else from the store's index.
pub async fn search(
    config: Config,
    text: String,
    limit: usize,
    relevance: bool,
) -> Result<(Vec<SearchLine>, SearchedBy), Error> {
    let query = crate::query::parse(&text).map_err(Error::Query)?;
    let mut params = url::form_urlencoded::Serializer::new(String::new());
    params.append_pair("q", &text);
    params.append_pair("limit", &limit.to_string());
    if relevance {
        params.append_pair("sort", "relevance");
    }
    let url = daemon_url(&config, &format!("/search.json?{}", params.finish()));
    match search_daemon(&config, &url).await {
        Ok(lines) => return Ok((lines, SearchedBy::Daemon)),
        Err(AskError::Refused(message)) => return Err(Error::Search(message)),
        Err(error) => {
            tracing::debug!(%url, error = %crate::with_causes(&error, ": "), "no daemon answered; searching the store");
        }
    }
    let store = match open_existing_store(&config).await {
        Ok(store) => store,
        Err(Error::Store(StoreError::Locked { .. })) => {
            return Err(Error::Search(format!(
                "a daemon holds the store, but {url} did not answer"
            )));
        }
        Err(e) => return Err(e),
    };
    let lines = store
        .call(move |s| {
            // What was stored since the index was last kept (by `once`, say) is taken in
            // first, as the daemon would have; an index never built is built.
            if !s.search_built() {
                tracing::info!("building the search index from the store first");
            }
            if let Err(e) = s.index_all_pending() {
                return Ok(Err(e));
            }
            s.close_search();
            let publishes = |n: &str| config.source(n).is_some();
            let tagged = |tag: &str| {
                config
                    .sources
                    .iter()
                    .filter(|c| c.tags.iter().any(|t| t == tag))
                    .map(|c| c.name.clone())
                    .collect()
            };
            let scope = crate::store::search::Scope {
                publishes: &publishes,
                tagged: &tagged,
            };
            let sort = if relevance {
                crate::store::search::Sort::Relevance
            } else {
                crate::store::search::Sort::Newest
            };
            let found = s.search_page(&query, &scope, sort, None, limit, |_| true);
            Ok(found.map(|(entries, _)| {
                entries
                    .into_iter()
                    .map(|e| SearchLine {
                        date: Some(e.sort_time()),
                        title: e.title,
                        source: e.source,
                        link: e.link,
                    })
                    .collect::<Vec<_>>()
            }))
        })
        .await?
        .map_err(|e| Error::Search(e.to_string()))?;
    Ok((lines, SearchedBy::Store))
}

/// A search asked of the running daemon: its JSON Feed's items, each source named by its
/// feed URL there.
async fn search_daemon(config: &Config, url: &str) -> Result<Vec<SearchLine>, AskError> {
    let (status, body) = get_daemon(url).await?;
    if status == reqwest::StatusCode::BAD_REQUEST {
        return Err(AskError::Refused(
            String::from_utf8_lossy(&body).trim().to_string(),
        ));
    }
    let feed: serde_json::Value = serde_json::from_slice(&body).map_err(AskError::Json)?;
    let by_url: std::collections::HashMap<String, &str> = config
        .sources
        .iter()
        .map(|s| {
            (
                crate::render::source_feed_url(&config.server.base_url, s),
                s.name.as_str(),
            )
        })
        .collect();
    let text = |v: &serde_json::Value, k: &str| v.get(k).and_then(|t| t.as_str()).map(String::from);
    Ok(feed
        .get("items")
        .and_then(|i| i.as_array())
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|item| {
            let source = item.get("_source");
            SearchLine {
                title: text(item, "title").unwrap_or_default(),
                source: source
                    .and_then(|s| text(s, "feed_url"))
                    .and_then(|u| by_url.get(&u).map(|n| n.to_string()))
                    .or_else(|| source.and_then(|s| text(s, "title")))
                    .unwrap_or_default(),
                // An undated entry is dated by when it was first seen (as the store says).
                date: text(item, "date_published")
                    .or_else(|| text(item, "date_modified"))
                    .and_then(|d| chrono::DateTime::parse_from_rfc3339(&d).ok())
                    .map(|d| d.with_timezone(&Utc)),
                link: text(item, "url"),
            }
        })
        .collect())
}

/// Rebuilds the search index: the running daemon does (asked through the store's folder,
/// [`crate::store::search::REINDEX_FILE`]); with none running, this process does, and
/// returns once it is done. Returns whether a daemon was asked.
pub async fn reindex(config: Config) -> Result<bool, Error> {
    match open_existing_store(&config).await {
        Ok(store) => {
            store
                .call(|s| {
                    Ok(s.reindex()
                        .and_then(|()| s.index_all_pending())
                        .map(|()| s.close_search()))
                })
                .await?
                .map_err(|e| Error::Search(e.to_string()))?;
            Ok(false)
        }
        Err(Error::Store(StoreError::Locked { .. })) => {
            let asked = config.store.path.join(crate::store::search::REINDEX_FILE);
            std::fs::write(&asked, b"").map_err(|error| {
                Error::Search(format!(
                    "cannot ask the daemon ({}): {error}",
                    asked.display()
                ))
            })?;
            Ok(true)
        }
        Err(e) => Err(e),
    }
}

/// Every source's status: from the running daemon (asked over HTTP at `server.listen`) when
/// one answers there, else read from the store directly.
pub async fn status(
    config: Config,
) -> Result<
    (
        crate::daemon::status::Health,
        crate::daemon::status::Answered,
    ),
    Error,
> {
    use crate::daemon::status::Answered;
    let url = daemon_url(&config, "/healthz");
    let error = match ask_daemon(&url).await {
        Ok(mut health) => {
            // The daemon shows the public its `file:` sources by their feeds there; the
            // owner sees the configured URL.
            for s in &mut health.sources {
                if let Some(src) = config.source(&s.name).filter(|c| c.url.scheme() == "file") {
                    s.url = src.url.to_string();
                    s.current_url = src.url.to_string();
                }
            }
            return Ok((health, Answered::Daemon));
        }
        Err(error) => error,
    };
    tracing::debug!(%url, error = %crate::with_causes(&error, ": "), "no daemon answered; reading the store");
    match open_existing_store(&config).await {
        Ok(store) => {
            let health = store
                .call(move |s| crate::daemon::status::collect(&config, s))
                .await?;
            Ok((health, Answered::Store { healthz: url }))
        }
        // Locked, so a daemon runs on it, yet /healthz did not answer: say why.
        Err(Error::Store(StoreError::Locked { .. })) => Err(Error::Daemon { url, error }),
        Err(e) => Err(e),
    }
}

async fn ask_daemon(url: &str) -> Result<crate::daemon::status::Health, AskError> {
    let (_, body) = get_daemon(url).await?;
    serde_json::from_slice(&body).map_err(AskError::Json)
}

/// A GET of the running daemon (10 s at most): the status and the whole body.
async fn get_daemon(url: &str) -> Result<(reqwest::StatusCode, bytes::Bytes), AskError> {
    let response = reqwest::Client::new()
        .get(url)
        .timeout(std::time::Duration::from_secs(10))
        .send()
        .await
        .map_err(AskError::Request)?;
    let status = response.status();
    Ok((status, response.bytes().await.map_err(AskError::Body)?))
}

/// The sources as OPML, each titled by its config `title`, else its feed's own title (from
/// the store, or, while a daemon holds the store, from the daemon's `/opml`), else its name.
pub async fn export_opml(config: Config) -> String {
    let titles: std::collections::HashMap<String, String> = match open_existing_store(&config).await
    {
        Ok(store) => store
            .call(|s| s.source_states())
            .await
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(name, s)| s.feed_title.map(|t| (name, t)))
            .collect(),
        Err(Error::Store(StoreError::Locked { .. })) => titles_from_daemon(&config).await,
        Err(_) => Default::default(),
    };
    crate::render::opml::export(&config, &|name| titles.get(name).cloned())
}

/// The feeds' own titles by source name, as the running daemon's `/opml` lists them (each
/// outline is matched to its source by the public URL `/opml` gives it). Empty, with a
/// warning, when the daemon does not answer.
async fn titles_from_daemon(config: &Config) -> std::collections::HashMap<String, String> {
    /// `/opml` of even 100,000 sources is far smaller.
    const MAX_OPML: usize = 64 * 1024 * 1024;
    let url = daemon_url(config, "/opml");
    let answer = async {
        let mut response = reqwest::Client::new()
            .get(&url)
            .timeout(std::time::Duration::from_secs(10))
            .send()
            .await?
            .error_for_status()?;
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > MAX_OPML {
                break;
            }
            body.extend_from_slice(&chunk);
        }
        Ok::<_, reqwest::Error>(body)
    };
    let outlines = match answer.await {
        Ok(body) => crate::config::opml::read(&String::from_utf8_lossy(&body)).ok(),
        Err(e) => {
            tracing::warn!(%url, error = %e, "the store is in use, and the daemon did not answer: outlines without a configured title are titled by the source's name");
            None
        }
    };
    let by_url: std::collections::HashMap<String, String> = outlines
        .unwrap_or_default()
        .into_iter()
        .map(|o| (o.xml_url, o.title))
        .collect();
    config
        .sources
        .iter()
        .filter_map(|s| {
            let public = crate::render::source_feed_url(&config.server.base_url, s);
            let title = by_url.get(&public)?;
            (title != &s.name).then(|| (s.name.clone(), title.clone()))
        })
        .collect()
}

/// `path` on the running daemon, at `[server] listen` (loopback when it listens on every
/// interface).
fn daemon_url(config: &Config, path: &str) -> String {
    let mut addr = config.server.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    format!("http://{addr}{path}")
}
