//! The daemon in-process, as most tests drive it: start it on a loopback port, wait on its
//! poll reports and events (signals, never sleeps), run `once`, read `/healthz`.

use std::collections::HashSet;
use std::future::Future;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;
use tributary::app;
use tributary::config::Config;
use tributary::ingest::poll::{PollOutcome, PollReport};
use tributary::store::StoreError;

/// How long a test waits for a poll or event it expects before failing.
pub const EXPECTED_WITHIN: Duration = Duration::from_secs(60);

/// The daemon of `cfg`, serving on a fresh loopback port.
pub async fn start(cfg: Config) -> app::Daemon {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    app::start(cfg, listener).await.expect("daemon starts")
}

/// The next report (or event) that `pred` accepts; panics after [`EXPECTED_WITHIN`].
pub async fn next<T: Clone>(rx: &mut Receiver<T>, mut pred: impl FnMut(&T) -> bool) -> T {
    tokio::time::timeout(EXPECTED_WITHIN, async {
        loop {
            match rx.recv().await {
                Ok(x) if pred(&x) => return x,
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(e) => panic!("channel closed: {e}"),
            }
        }
    })
    .await
    .expect("the expected report or event came")
}

/// Whether the poll stored what it fetched.
pub fn is_stored(r: &PollReport) -> bool {
    matches!(r.outcome, PollOutcome::Stored { .. })
}

/// Waits until each of `names` has stored a poll; a named source whose poll ends otherwise
/// fails the test. Returns each source with its count of new entries, sorted by name.
pub async fn all_stored(rx: &mut Receiver<PollReport>, names: &[&str]) -> Vec<(String, usize)> {
    let mut left: HashSet<&str> = names.iter().copied().collect();
    let mut out = Vec::new();
    tokio::time::timeout(EXPECTED_WITHIN, async {
        while !left.is_empty() {
            match rx.recv().await {
                Ok(r) if left.contains(r.source.as_str()) => match &r.outcome {
                    PollOutcome::Stored { counts, .. } => {
                        left.remove(r.source.as_str());
                        out.push((r.source.clone(), counts.new));
                    }
                    other => panic!("{}: expected stored, got {other:?}", r.source),
                },
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(e) => panic!("report channel closed: {e}"),
            }
        }
    })
    .await
    .expect("every source was polled");
    out.sort();
    out
}

/// Retries `attempt` while the store is still locked by a daemon that just stopped (sled
/// lets go of its lock a moment after the store is closed); up to 10 s.
pub async fn when_unlocked<T, F>(mut attempt: impl FnMut() -> F) -> Result<T, app::Error>
where
    F: Future<Output = Result<T, app::Error>>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match attempt().await {
            Err(app::Error::Store(StoreError::Locked { .. }))
                if std::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            other => return other,
        }
    }
}

/// `tributary once` in-process: every source polled once.
pub async fn once(cfg: &Config) -> Vec<PollReport> {
    when_unlocked(|| app::once(cfg.clone()))
        .await
        .expect("once runs")
}

/// The daemon's `/healthz` at `base` (e.g. `http://127.0.0.1:8080`), which must answer 200.
pub async fn health(base: &str) -> serde_json::Value {
    let (status, _, body) = super::get(&format!("{base}/healthz")).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("healthz is JSON")
}
