//! The daemon's indexer: one thread of its own, at a lower CPU priority (nice 10), that
//! takes the search index's journal in every second (or rebuilds the index, a chunk at a
//! time), so that polls and requests on a small machine come first. It honours
//! `tributary reindex` through the store's folder ([`REINDEX_FILE`]), and stops with the
//! daemon, dropping the index's writer (its lock) before the store is flushed.
//!
//! [`REINDEX_FILE`]: crate::store::search::REINDEX_FILE

use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::daemon::supervise::Event;
use crate::store::Store;
use crate::store::search::REINDEX_FILE;

/// How often the journal is looked at.
const EVERY: Duration = Duration::from_secs(1);

/// Journal records one round takes in (one commit).
const ROUND: usize = 1_000;

/// The CPU priority of the indexer's thread (the nice value: higher is lower).
const NICE: libc::c_int = 10;

/// Starts the indexer; the daemon's stop waits for it (through `tracker`). Each round that
/// changed the index is told on `events` ([`Event::SearchIndexed`]).
pub fn start(
    store: Store,
    events: broadcast::Sender<Event>,
    shutdown: &CancellationToken,
    tracker: &TaskTracker,
) {
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("indexer".into())
        .spawn(move || {
            lower_priority();
            run(&store, &events, &stop_rx);
            store.close_search();
        });
    let thread = match spawned {
        Ok(thread) => thread,
        Err(error) => {
            tracing::error!(%error, "the search indexer could not start; searches find only what was indexed");
            return;
        }
    };
    let shutdown = shutdown.clone();
    tracker.spawn(async move {
        shutdown.cancelled().await;
        drop(stop_tx);
        // Joined on the blocking pool: a paused test clock does not run ahead meanwhile.
        if let Ok(Err(_)) = tokio::task::spawn_blocking(move || thread.join()).await {
            tracing::error!("the search indexer panicked");
        }
    });
}

/// Rounds until the stop: all the work there is, then a look every [`EVERY`].
fn run(store: &Store, events: &broadcast::Sender<Event>, stop: &mpsc::Receiver<()>) {
    let mut last_error = None;
    loop {
        let asked = store.path().join(REINDEX_FILE);
        if asked.exists() {
            let _ = std::fs::remove_file(&asked);
            match store.reindex() {
                Ok(()) => tracing::info!("search index rebuild asked for: it is rebuilt"),
                Err(error) => tracing::warn!(%error, "the search index could not be rebuilt"),
            }
        }
        loop {
            match store.index_pending(ROUND) {
                Ok(round) => {
                    if last_error.take().is_some() {
                        tracing::info!("the search index is kept again");
                    }
                    if round.changed > 0 {
                        let status = store.search_status();
                        // No receiver is fine: the events are for tests and status.
                        let _ = events.send(Event::SearchIndexed {
                            documents: status.indexed,
                            complete: status.complete,
                            pending: round.more,
                        });
                    }
                    if !round.more {
                        break;
                    }
                }
                Err(error) => {
                    // Said once, not every second.
                    let text = error.to_string();
                    if last_error.as_ref() != Some(&text) {
                        tracing::warn!(error = %text, "the search index could not be kept; retrying every second");
                    }
                    last_error = Some(text);
                    break;
                }
            }
            if !matches!(stop.try_recv(), Err(mpsc::TryRecvError::Empty)) {
                return;
            }
        }
        match stop.recv_timeout(EVERY) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => return,
        }
    }
}

/// Lowers this thread's CPU priority (Linux: a thread's nice value is its own).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority on this thread's id changes only its scheduling priority.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, NICE);
    }
}
