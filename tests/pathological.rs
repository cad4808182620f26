//! The catalogue of pathological documents (`tests/support/pathological.rs`: huge lists in
//! one entry, deep HTML in every text field, many attributes, giant text nodes, entities,
//! deep XML and JSON, huge entry counts) through the real daemon's poll (`app::once` against
//! a loopback origin, a real store), each twice: the second poll of the unchanged document
//! (no validators, so it is fetched, parsed and compared again) must be as cheap as the
//! first. Then the daemon serves everything that was stored, and every output is valid.
//!
//! Timings here are of a debug build on a shared machine: the bound is generous (a quadratic
//! path blows it by minutes: 160,000 categories took 19 s in a release build before, 200,000
//! nested `<div>`s 154 s). `examples/pathological.rs` measures the release build against
//! the real target (2 s per document at full size); see BENCHMARKS.md.

mod support;

use support::once;

#[path = "support/pathological.rs"]
mod pathological;

use std::time::{Duration, Instant};

use support::{Origin, Route, assert_valid_atom, assert_valid_rss, get};
use tokio::net::TcpListener;
use tributary::app;
use tributary::config::Config;
use tributary::ingest::error::PollError;
use tributary::ingest::poll::PollOutcome;
use tributary::store::StoreError;

/// The catalogue at a quarter of the body cap (4 MB documents): already far past where the
/// quadratic paths took minutes, and quick enough for a debug build.
const SCALE: f64 = 0.25;
/// What a poll of one document may take in a debug build, at most.
const BOUND: Duration = Duration::from_secs(30);

fn write_config(dir: &std::path::Path, sources: &[(&str, String)]) -> Config {
    let list: Vec<(&str, &str, &str)> = sources
        .iter()
        .map(|(n, u)| (*n, u.as_str(), "1h"))
        .collect();
    support::config(dir, &list, "")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_pathological_document_is_polled_in_bounded_time() {
    let origin = Origin::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let catalogue = pathological::catalogue(SCALE);
    let mut all = Vec::new();
    let mut slowest = (Duration::ZERO, "");
    for case in &catalogue {
        let path = format!("/{}", case.name);
        origin.set(&path, Route::feed(case.body.clone(), case.content_type));
        let url = origin.url(&path);
        all.push((case.name, url.clone()));
        // The store keeps what earlier cases stored; this config polls only this case.
        let cfg = write_config(dir.path(), &[(case.name, url)]);
        let mut times = Vec::new();
        for poll in ["first", "second"] {
            let started = Instant::now();
            let reports = once(&cfg).await;
            let took = started.elapsed();
            times.push(took);
            assert_eq!(reports.len(), 1);
            match &reports[0].outcome {
                PollOutcome::Stored { counts, .. } => {
                    if poll == "second" {
                        assert_eq!(counts.new + counts.updated, 0, "{}: unchanged", case.name);
                    }
                }
                // Refused with a reason (nesting past the parser's limits): as good.
                PollOutcome::Failed { error } => {
                    assert!(
                        matches!(error, PollError::Parse(_)),
                        "{}: {error:?}",
                        case.name
                    );
                    let error = error.to_string();
                    assert!(
                        error.contains("cannot parse") || error.contains("not a feed"),
                        "{}: {error}",
                        case.name
                    )
                }
                other => panic!("{}: {other:?}", case.name),
            }
            assert!(took < BOUND, "{}: the {poll} poll took {took:?}", case.name);
            if took > slowest.0 {
                slowest = (took, case.name);
            }
        }
        eprintln!(
            "{:<32} {:>6.1} MB  first {:>8.3} s  second {:>8.3} s",
            case.name,
            case.body.len() as f64 / 1e6,
            times[0].as_secs_f64(),
            times[1].as_secs_f64()
        );
    }
    eprintln!("slowest: {} ({:?})", slowest.1, slowest.0);

    // The daemon over everything stored: every output is valid and renders in bounded time.
    // (Every source was polled within the hour: the daemon does not poll them again.)
    let cfg = write_config(dir.path(), &all);
    let daemon = loop {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        match app::start(cfg.clone(), listener).await {
            Err(app::Error::Store(StoreError::Locked { .. })) => {
                std::thread::sleep(Duration::from_millis(5));
            }
            other => break other.expect("daemon starts"),
        }
    };
    let base = format!("http://{}", daemon.local_addr());
    for path in ["/feed.atom", "/feed.rss", "/feed.json"] {
        let started = Instant::now();
        let (status, _, body) = get(&format!("{base}{path}")).await;
        assert!(
            started.elapsed() < BOUND,
            "{path} took {:?}",
            started.elapsed()
        );
        assert_eq!(status, 200, "{path}");
        let self_url = format!("http://feeds.test{path}");
        match path {
            "/feed.atom" => {
                let feed = assert_valid_atom(&body, &self_url);
                assert!(!feed.entries.is_empty());
                for e in &feed.entries {
                    assert!(e.categories.len() <= tributary::feed::normalise::MAX_CATEGORIES);
                    assert!(e.authors.len() <= tributary::feed::normalise::MAX_AUTHORS);
                    assert!(
                        e.title.value.chars().count()
                            <= tributary::feed::normalise::MAX_TITLE_CHARS + 1
                    );
                }
            }
            "/feed.rss" => {
                assert_valid_rss(&body, &self_url);
            }
            _ => {
                serde_json::from_str::<serde_json::Value>(&body).expect("JSON parses");
            }
        }
    }
    for (name, _) in &all {
        let path = format!("/sources/{name}.atom");
        let (status, _, body) = get(&format!("{base}{path}")).await;
        assert_eq!(status, 200, "{path}");
        assert_valid_atom(&body, &format!("http://feeds.test{path}"));
    }
    daemon.shutdown().await.expect("clean shutdown");
}
