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
const MINUTE: Duration = Duration::from_secs(60);

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

/// A first failure is retried within a minute; then failures back off 1h, 2h, 4h from a 1h
/// interval; a success resets to the interval, and the next first failure is retried
/// quickly again.
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
    let (t1, r) = next_report(reports, "f").await;
    assert!(
        within(t1 - t0, MINUTE),
        "the first failure is retried within a minute: {:?}",
        t1 - t0
    );
    assert!(matches!(r.outcome, PollOutcome::Failed { .. }), "{r:?}");
    let (t2, _) = next_report(reports, "f").await;
    assert!(
        within(t2 - t1, HOUR),
        "then after the interval: {:?}",
        t2 - t1
    );
    let (t3, _) = next_report(reports, "f").await;
    assert!(within(t3 - t2, 2 * HOUR), "then twice that: {:?}", t3 - t2);
    let (t4, r) = next_report(reports, "f").await;
    assert!(within(t4 - t3, 4 * HOUR), "then four times: {:?}", t4 - t3);
    assert!(matches!(r.outcome, PollOutcome::Failed { .. }));

    // The file appears: the next poll succeeds and the interval is back to 1h.
    std::fs::write(&feed, support::fixture("small_atom.xml")).expect("write");
    let (t5, r) = next_report(reports, "f").await;
    assert!(within(t5 - t4, 8 * HOUR), "{:?}", t5 - t4);
    assert!(matches!(r.outcome, PollOutcome::Stored { .. }), "{r:?}");
    let (t6, r) = next_report(reports, "f").await;
    assert!(
        within(t6 - t5, HOUR),
        "reset after a success: {:?}",
        t6 - t5
    );
    assert_eq!(r.outcome, PollOutcome::NotModified { status: 304 });

    // It breaks again: the first failure after a success is retried within a minute.
    std::fs::remove_file(&feed).expect("remove");
    let (t7, r) = next_report(reports, "f").await;
    assert!(matches!(r.outcome, PollOutcome::Failed { .. }), "{r:?}");
    let (t8, _) = next_report(reports, "f").await;
    assert!(within(t8 - t7, MINUTE), "{:?}", t8 - t7);
    daemon.shutdown().await.expect("shutdown");
}

/// An origin that fails at start-up and then serves its feed: the feed is stored within
/// about a minute, not after the source's interval (2 h here).
#[tokio::test(start_paused = true)]
async fn a_source_failing_at_start_up_is_retried_within_a_minute() {
    let dir = tempfile::tempdir().expect("tempdir");
    let feed = dir.path().join("feed.xml");
    let url = file_url(&feed);
    let cfg = support::config(dir.path(), &[("f", &url, "2h")], "");
    let mut daemon = start(cfg).await;

    let (t0, r) = next_report(&mut daemon.reports, "f").await;
    assert!(matches!(r.outcome, PollOutcome::Failed { .. }), "{r:?}");
    std::fs::write(&feed, support::fixture("small_atom.xml")).expect("write");
    let (t1, r) = next_report(&mut daemon.reports, "f").await;
    assert!(matches!(r.outcome, PollOutcome::Stored { .. }), "{r:?}");
    assert!(
        t1 - t0 <= MINUTE.mul_f64(1.1),
        "retried within about a minute: {:?}",
        t1 - t0
    );
    daemon.shutdown().await.expect("shutdown");
}

/// A source that was failing before a restart (its count of failures is stored) gets the
/// quick retry again after the restart, then backs off from where it was.
#[tokio::test(start_paused = true)]
async fn a_restart_retries_a_failing_source_within_a_minute() {
    let dir = tempfile::tempdir().expect("tempdir");
    let feed = dir.path().join("feed.xml");
    let url = file_url(&feed);
    let cfg = support::config(dir.path(), &[("f", &url, "1h")], "");
    let mut daemon = start(cfg.clone()).await;
    // Three failures: the quick retry, then the interval.
    for _ in 0..3 {
        let (_, r) = next_report(&mut daemon.reports, "f").await;
        assert!(matches!(r.outcome, PollOutcome::Failed { .. }), "{r:?}");
    }
    daemon.shutdown().await.expect("shutdown");

    let mut daemon = support::when_unlocked(|| {
        let cfg = cfg.clone();
        async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            app::start(cfg, listener).await
        }
    })
    .await
    .expect("daemon starts again");
    // Due again 2 h after the third failure (kept across the restart): the clock moves on.
    let (t0, r) = next_report(&mut daemon.reports, "f").await;
    assert!(matches!(r.outcome, PollOutcome::Failed { .. }), "{r:?}");
    let (t1, _) = next_report(&mut daemon.reports, "f").await;
    assert!(within(t1 - t0, MINUTE), "{:?}", t1 - t0);
    let (t2, _) = next_report(&mut daemon.reports, "f").await;
    assert!(
        within(t2 - t1, 8 * HOUR),
        "then backs off as before the restart (the fifth failure in a row): {:?}",
        t2 - t1
    );
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
