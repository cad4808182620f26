//! Pathological documents (BENCHMARKS.md, "Pathological documents"): every document of the
//! catalogue in `tests/support/pathological.rs`, timed stage by stage (parse, normalise,
//! encoding for the store) and then as whole polls through `app::once` against a local HTTP
//! origin: the first poll (everything new) and a second one of the unchanged document (no
//! validators, so it is fetched, parsed and compared again).
//!
//! ```text
//! cargo run --release --locked --example pathological [-- NAME-FILTER [SCALE]]
//! ```
//!
//! Prints one line per document; the target is under 2 s for each poll.

#[path = "../tests/support/mod.rs"]
#[allow(unused_imports)]
mod support;

#[path = "../tests/support/pathological.rs"]
mod pathological;

use std::time::{Duration, Instant};

use chrono::Utc;
use tributary::ingest::poll::PollOutcome;
use url::Url;

fn secs(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64())
}

/// `app::once`, again while sled still holds the previous run's lock for a moment.
async fn once(cfg: &tributary::config::Config) -> Vec<tributary::ingest::poll::PollReport> {
    loop {
        match tributary::app::once(cfg.clone()).await {
            Err(tributary::app::Error::Store(tributary::store::StoreError::Locked { .. })) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            other => return other.expect("once runs"),
        }
    }
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let filter = args.next().unwrap_or_default();
    let scale: f64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(1.0);
    let origin = support::Origin::start().await;
    println!(
        "{:<32} {:>6} {:>7} {:>7} {:>7} {:>8} {:>7} {:>7}  result",
        "document", "MB", "parse", "norm", "encode", "entries", "poll1", "poll2"
    );
    let mut worst = Duration::ZERO;
    for case in pathological::catalogue(scale) {
        if !case.name.contains(&filter) {
            continue;
        }
        let url = Url::parse(&origin.url(&format!("/{}", case.name))).expect("url");
        let t = Instant::now();
        let parsed = tributary::feed::parse::parse_document_limited(
            &case.body,
            Some(case.content_type),
            &url,
            tributary::feed::parse::DEFAULT_MAX_ENTRIES,
        );
        let parse = t.elapsed();
        let (norm, encode, entries) = match parsed {
            Ok(p) => {
                let t = Instant::now();
                let n = tributary::feed::normalise::normalise(p.feed, "s", &url, Utc::now());
                let norm = t.elapsed();
                let t = Instant::now();
                let bytes: usize = n
                    .entries
                    .iter()
                    .map(|e| serde_json::to_vec(e).map_or(0, |v| v.len()))
                    .sum();
                std::hint::black_box(bytes);
                (norm, t.elapsed(), n.entries.len())
            }
            Err(_) => (Duration::ZERO, Duration::ZERO, 0),
        };
        origin.set(
            &format!("/{}", case.name),
            support::Route::feed(case.body.clone(), case.content_type),
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = support::config(dir.path(), &[("s", url.as_str(), "1h")], "");
        let mut polls = Vec::new();
        let mut result = String::new();
        for _ in 0..2 {
            let t = Instant::now();
            let reports = once(&cfg).await;
            polls.push(t.elapsed());
            result = match &reports[0].outcome {
                PollOutcome::Stored { counts, .. } => format!(
                    "stored (new {}, unchanged {})",
                    counts.new, counts.unchanged
                ),
                PollOutcome::Failed { error } => {
                    format!(
                        "failed: {}",
                        error.to_string().chars().take(60).collect::<String>()
                    )
                }
                other => format!("{other:?}"),
            };
        }
        worst = worst.max(polls[0]).max(polls[1]);
        println!(
            "{:<32} {:>6.1} {:>7} {:>7} {:>7} {:>8} {:>7} {:>7}  {result}",
            case.name,
            case.body.len() as f64 / 1e6,
            secs(parse),
            secs(norm),
            secs(encode),
            entries,
            secs(polls[0]),
            secs(polls[1]),
        );
    }
    println!("slowest poll: {} s", secs(worst));
}
