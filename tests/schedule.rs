//! The scheduler in virtual time (tokio's paused clock): intervals, backoff and its reset,
//! the start-up spread. Sources are local files, so no network timer races the clock.

mod support;

use support::start;

use std::path::Path;
use std::time::Duration;

use tokio::sync::broadcast::Receiver;
use tokio::time::Instant;
use tributary::app;
use tributary::ingest::poll::{PollOutcome, PollReport};

const HOUR: Duration = Duration::from_secs(3600);

async fn next_report(reports: &mut Receiver<PollReport>, source: &str) -> (Instant, PollReport) {
    loop {
        let r = reports.recv().await.expect("daemon running");
        if r.source == source {
            return (Instant::now(), r);
        }
    }
}

fn within(gap: Duration, expected: Duration) -> bool {
    gap >= expected.mul_f64(0.89) && gap <= expected.mul_f64(1.11)
}

fn file_url(path: &Path) -> String {
    url::Url::from_file_path(path)
        .expect("file url")
        .to_string()
}

/// Failures back off 1h, 2h, 4h from a 1h interval; a success resets to the interval.
#[tokio::test(start_paused = true)]
async fn backoff_doubles_and_resets_on_success() {
    let dir = tempfile::tempdir().expect("tempdir");
    let feed = dir.path().join("feed.xml");
    let url = file_url(&feed);
    let cfg = support::config(dir.path(), &[("f", &url, "1h")], "");
    let mut daemon = start(cfg).await;
    let reports = &mut daemon.reports;

    let (t0, r) = next_report(reports, "f").await;
    assert!(matches!(r.outcome, PollOutcome::Failed { .. }), "{r:?}");
    let (t1, _) = next_report(reports, "f").await;
    assert!(
        within(t1 - t0, HOUR),
        "first retry after the interval: {:?}",
        t1 - t0
    );
    let (t2, _) = next_report(reports, "f").await;
    assert!(within(t2 - t1, 2 * HOUR), "then twice that: {:?}", t2 - t1);
    let (t3, r) = next_report(reports, "f").await;
    assert!(within(t3 - t2, 4 * HOUR), "then four times: {:?}", t3 - t2);
    assert!(matches!(r.outcome, PollOutcome::Failed { .. }));

    // The file appears: the next poll succeeds and the interval is back to 1h.
    std::fs::write(&feed, support::fixture("small_atom.xml")).expect("write");
    let (t4, r) = next_report(reports, "f").await;
    assert!(within(t4 - t3, 8 * HOUR), "{:?}", t4 - t3);
    assert!(matches!(r.outcome, PollOutcome::Stored { .. }), "{r:?}");
    let (t5, r) = next_report(reports, "f").await;
    assert!(
        within(t5 - t4, HOUR),
        "reset after a success: {:?}",
        t5 - t4
    );
    assert_eq!(r.outcome, PollOutcome::NotModified { status: 304 });
    daemon.shutdown().await.expect("shutdown");
}

/// New sources are polled within the first seconds, spread out, not all at once; a source
/// whose next poll is stored for later waits for it.
#[tokio::test(start_paused = true)]
async fn start_spreads_due_sources_and_resumes_the_others() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fixture = support::fixture_path("small_atom.xml");
    let url = file_url(&fixture);
    // One source polled already (by `once`), due again in about an hour.
    let early = support::config(dir.path(), &[("early", &url, "1h")], "");
    app::once(early).await.expect("once");

    let mut names: Vec<String> = (0..20).map(|i| format!("s{i}")).collect();
    names.push("early".into());
    let copies: Vec<String> = (0..20)
        .map(|i| {
            let p = dir.path().join(format!("copy{i}.xml"));
            std::fs::copy(&fixture, &p).expect("copy");
            file_url(&p)
        })
        .collect();
    let mut sources: Vec<(&str, &str, &str)> = names[..20]
        .iter()
        .zip(&copies)
        .map(|(n, u)| (n.as_str(), u.as_str(), "1h"))
        .collect();
    sources.push(("early", &url, "1h"));
    let cfg = support::config(dir.path(), &sources, "concurrency = 20");
    let begin = Instant::now();
    let mut daemon = start(cfg).await;

    let mut firsts = Vec::new();
    while firsts.len() < 20 {
        let r = daemon.reports.recv().await.expect("report");
        assert_ne!(
            r.source, "early",
            "a source not yet due is not polled at start"
        );
        firsts.push(Instant::now() - begin);
    }
    assert!(
        firsts.iter().all(|t| *t <= Duration::from_secs(10)),
        "{firsts:?}"
    );
    let distinct: std::collections::HashSet<u128> =
        firsts.iter().map(|t| t.as_millis() / 500).collect();
    assert!(
        distinct.len() >= 5,
        "spread over the first seconds: {firsts:?}"
    );

    let (t, r) = next_report(&mut daemon.reports, "early").await;
    assert!(
        t - begin >= Duration::from_secs(45 * 60),
        "early resumed on time: {:?}",
        t - begin
    );
    assert_eq!(r.outcome, PollOutcome::NotModified { status: 304 });
    daemon.shutdown().await.expect("shutdown");
}
