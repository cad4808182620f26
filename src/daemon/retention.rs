//! The daemon's retention passes: when the next one is due (`PassSchedule`, put off by
//! reloads), the plan the config asks for ([`prune_plan`]), a pass in progress (`Pass`),
//! and the handshake with `tributary prune --confirm` through the store's folder
//! ([`CONFIRM_FILE`], [`CONFIRM_REPORT`]). The supervisor decides when a pass runs; this
//! file holds how.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::config::Config;
use crate::store::{Limits, PrunePlan, PruneReport, Store, StoreError};

/// A reload never prunes at once: the next retention pass is at least this far away.
pub const PRUNE_AFTER_RELOAD: Duration = Duration::from_secs(10 * 60);

/// Where the report of a retention pass asked for goes.
pub type PruneReply = oneshot::Sender<Result<PruneReport, RetentionError>>;

/// Why a retention pass of the running daemon failed.
#[derive(Clone, Debug, thiserror::Error)]
pub enum RetentionError {
    /// The store failed during the pass (nothing past the failure was pruned).
    #[error(transparent)]
    Store(Arc<StoreError>),
    /// The supervisor is gone: the daemon is stopping.
    #[error("the daemon is stopping")]
    Stopping,
}

impl From<StoreError> for RetentionError {
    fn from(error: StoreError) -> Self {
        RetentionError::Store(Arc::new(error))
    }
}

/// A retention pass in progress.
pub(super) struct Pass {
    task: tokio::task::JoinHandle<Result<PruneReport, StoreError>>,
    stop: Arc<AtomicBool>,
    /// Who asked for this pass (`Daemon::prune`): each gets its report.
    pub(super) waiting: Vec<PruneReply>,
    /// Confirmed by `tributary prune --confirm` (see [`CONFIRM_FILE`]): its report is
    /// written back for the command.
    pub(super) confirmed: bool,
}

/// `tributary prune --confirm` against a running daemon leaves this file in the store's
/// folder (only someone who may write there can confirm); the supervisor finds it within a
/// heartbeat, removes it, runs a confirmed pass and writes the pass's report to
/// [`CONFIRM_REPORT`] beside it.
pub const CONFIRM_FILE: &str = "prune-confirm";
/// Where the report of a pass confirmed through [`CONFIRM_FILE`] is written (JSON).
pub const CONFIRM_REPORT: &str = "prune-confirm.report.json";

impl Pass {
    /// Starts a pass on the store's blocking pool, with the plan `config` asks for now.
    pub(super) fn start(
        config: &Config,
        store: &Store,
        waiting: Vec<PruneReply>,
        confirmed: bool,
    ) -> Pass {
        let stop = Arc::new(AtomicBool::new(false));
        let plan = prune_plan(config, false, confirmed, Some(stop.clone()));
        let store = store.clone();
        let task = tokio::spawn(async move { store.call(move |s| s.prune(&plan)).await });
        Pass {
            task,
            stop,
            waiting,
            confirmed,
        }
    }

    /// Stops the pass at its next chunk and waits for it (at shutdown).
    pub(super) async fn stop(self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.task.await;
    }
}

/// Writes a confirmed pass's report where `tributary prune --confirm` waits for it
/// (in the store's `folder`).
pub(super) async fn report_confirmed(folder: &Path, done: &Result<PruneReport, RetentionError>) {
    let body = match done {
        Ok(report) => serde_json::to_vec(report).map_err(|e| e.to_string()),
        Err(error) => Err(error.to_string()),
    };
    let body = body.unwrap_or_else(|error| {
        serde_json::to_vec(&serde_json::json!({ "error": error })).unwrap_or_default()
    });
    let path = folder.join(CONFIRM_REPORT);
    let tmp = path.with_extension("tmp");
    let written = match tokio::fs::write(&tmp, body).await {
        Ok(()) => tokio::fs::rename(&tmp, &path).await,
        Err(e) => Err(e),
    };
    if let Err(error) = written {
        tracing::error!(%error, path = %path.display(), "the confirmed pass's report could not be written");
    }
}

/// The retention plan the config asks for, now.
pub fn prune_plan(
    config: &Config,
    dry_run: bool,
    confirmed: bool,
    stop: Option<Arc<AtomicBool>>,
) -> PrunePlan {
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
        confirmed,
    }
}

/// When the next retention pass is due.
pub(super) struct PassSchedule {
    pub(super) next: Instant,
    /// The latest the reloads since the last pass may put the next pass off to (see
    /// [`PassSchedule::postpone`]).
    due_before_reloads: Option<Instant>,
}

impl PassSchedule {
    /// The first pass is due at once.
    pub(super) fn new() -> Self {
        PassSchedule {
            next: Instant::now(),
            due_before_reloads: None,
        }
    }

    /// A pass started: the next one is `every` from now.
    pub(super) fn started(&mut self, every: Duration) {
        self.next = Instant::now() + every;
        self.due_before_reloads = None;
    }

    /// A reload that changed what retention depends on (see
    /// [`super::reload::retention_changed`]) moves the next pass to at least
    /// [`PRUNE_AFTER_RELOAD`] from now, so a careless save prunes nothing at once; but however
    /// many such reloads come, a pass is never put off by more than [`PRUNE_AFTER_RELOAD`]
    /// past when it was due before the first of them (set by the first and cleared when a
    /// pass starts).
    pub(super) fn postpone(&mut self) {
        let now = Instant::now();
        let latest = *self
            .due_before_reloads
            .get_or_insert(self.next.max(now) + PRUNE_AFTER_RELOAD);
        self.next = self.next.max(now + PRUNE_AFTER_RELOAD).min(latest);
    }
}

/// What a heartbeat found of a prune confirmation (see [`CONFIRM_FILE`]).
pub(super) enum Confirmation {
    Absent,
    /// Found and removed: the confirmed pass runs.
    Taken,
    /// Found but it could not be removed.
    Stuck(std::io::Error),
}

/// Takes the confirmation at `path` if one is there (blocking: on the blocking pool).
pub(super) fn take_confirmation(path: &Path) -> Confirmation {
    if !path.try_exists().unwrap_or(false) {
        return Confirmation::Absent;
    }
    match std::fs::remove_file(path) {
        Ok(()) => Confirmation::Taken,
        Err(error) => Confirmation::Stuck(error),
    }
}

/// Completes when the pass in progress does (never when there is none).
pub(super) async fn pass_done(pass: &mut Option<Pass>) -> Result<PruneReport, RetentionError> {
    match pass {
        Some(p) => match (&mut p.task).await {
            Ok(r) => Ok(r?),
            Err(e) => Err(StoreError::Task(e).into()),
        },
        None => std::future::pending().await,
    }
}
