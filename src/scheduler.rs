//! Decides when each source is polled: one task per source, each on its own interval with
//! jitter, all under a global concurrency limit.
//!
//! At start, a source whose next poll fell due while the daemon was stopped (or that was
//! never polled) is polled soon, at a random point within the first few seconds, so a
//! restart does not fetch everything at once.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{Semaphore, broadcast};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::SourceConfig;
use crate::fetch::Fetcher;
use crate::poll::{PollOutcome, PollReport, poll_source};
use crate::store::Store;

/// How widely overdue sources are spread after a start.
const STARTUP_SPREAD: Duration = Duration::from_secs(10);

/// Everything a source's task needs.
#[derive(Clone)]
pub struct Scheduler {
    pub fetcher: Fetcher,
    pub store: Store,
    pub permits: Arc<Semaphore>,
    pub events: broadcast::Sender<PollReport>,
    pub shutdown: CancellationToken,
}

impl Scheduler {
    /// Starts one task per source on `tracker`; they end when `shutdown` is cancelled.
    pub fn spawn_all(&self, sources: Vec<SourceConfig>, tracker: &TaskTracker) {
        for source in sources {
            let this = self.clone();
            tracker.spawn(async move { this.source_loop(source).await });
        }
    }

    async fn source_loop(self, source: SourceConfig) {
        let mut delay = self.first_delay(&source);
        loop {
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = self.shutdown.cancelled() => return,
            }
            let permit = tokio::select! {
                p = self.permits.clone().acquire_owned() => p,
                () = self.shutdown.cancelled() => return,
            };
            let Ok(_permit) = permit else { return };
            let report = poll_source(&self.fetcher, &self.store, &source, &self.shutdown).await;
            let cancelled = report.outcome == PollOutcome::Cancelled;
            // No receiver is fine: events are for tests and future status consumers.
            let _ = self.events.send(report);
            if cancelled {
                return;
            }
            delay = jittered(source.interval);
        }
    }

    fn first_delay(&self, source: &SourceConfig) -> Duration {
        let last = self
            .store
            .source_state(&source.name)
            .ok()
            .flatten()
            .and_then(|s| s.last_attempt);
        let spread = random_fraction(source.interval.min(STARTUP_SPREAD));
        match last {
            None => spread,
            Some(last) => {
                let due = last + chrono::Duration::from_std(source.interval).unwrap_or_default();
                match (due - Utc::now()).to_std() {
                    Ok(wait) if wait > spread => wait,
                    _ => spread,
                }
            }
        }
    }
}

/// The interval plus or minus up to 10% (at most 5 minutes), so sources drift apart.
pub fn jittered(interval: Duration) -> Duration {
    let span = (interval / 10).min(Duration::from_secs(300));
    interval - span + random_fraction(span * 2)
}

fn random_fraction(d: Duration) -> Duration {
    d.mul_f64(fastrand::f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_ten_percent() {
        for _ in 0..1000 {
            let d = jittered(Duration::from_secs(100));
            assert!(
                d >= Duration::from_secs(90) && d <= Duration::from_secs(110),
                "{d:?}"
            );
        }
        let long = jittered(Duration::from_secs(24 * 3600));
        assert!(long >= Duration::from_secs(24 * 3600 - 300));
    }
}
