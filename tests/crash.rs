//! Crash safety: the real binary killed with SIGKILL at random moments during heavy
//! ingestion, many times over one store. After every kill the store reopens, `tributary
//! verify` finds it consistent, every poll the daemon logged as stored is there in full,
//! and no entry is stored twice.

mod support;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path as UrlPath, State};
use axum::response::IntoResponse;
use support::KillOnDrop;

const ROUNDS: usize = 24;
const SOURCES: usize = 4;
/// Each response lists WINDOW entries, STEP of them new: two store chunks per poll.
const WINDOW: u32 = 200;
const STEP: u32 = 100;

/// The origin: every request for a source's feed moves it on by STEP entries. It records
/// which response (by index) each request got, tagged with the round.
#[derive(Clone, Default)]
struct Feeds {
    round: Arc<Mutex<usize>>,
    next: Arc<Mutex<HashMap<String, u32>>>,
    served: Arc<Mutex<Vec<(usize, String, u32)>>>,
}

async fn feed(State(feeds): State<Feeds>, UrlPath(name): UrlPath<String>) -> impl IntoResponse {
    let index = {
        let mut next = feeds.next.lock().expect("lock");
        let n = next.entry(name.clone()).or_default();
        *n += 1;
        *n - 1
    };
    let round = *feeds.round.lock().expect("lock");
    feeds
        .served
        .lock()
        .expect("lock")
        .push((round, name.clone(), index));
    let mut body = format!(
        r#"<?xml version="1.0"?><rss version="2.0"><channel><title>{name}</title><link>https://{name}.example/</link><description>d</description>"#
    );
    for k in (index * STEP..index * STEP + WINDOW).rev() {
        body.push_str(&format!(
            "<item><guid>{name}-{k}</guid><title>{name} {k}</title><description>Entry {k} of {name}, with some words to store.</description><pubDate>{}</pubDate></item>",
            httpdate::fmt_http_date(
                std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + u64::from(k) * 60)
            )
        ));
    }
    body.push_str("</channel></rss>");
    ([("content-type", "application/rss+xml")], body)
}

fn guids(name: &str, index: u32) -> impl Iterator<Item = String> + '_ {
    (index * STEP..index * STEP + WINDOW).map(move |k| format!("{name}-{k}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_never_loses_or_duplicates() {
    let feeds = Feeds::default();
    let app = axum::Router::new()
        .route("/feed/{name}", axum::routing::get(feed))
        .with_state(feeds.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let origin = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("feeds.toml");
    let mut text = String::from(
        "[server]\nlisten = \"127.0.0.1:0\"\n\n[fetch]\nper_host = 8\nconcurrency = 8\n\n\
         [retention]\nkeep_per_source = 10000000\nkeep_total = 100000000\n\n",
    );
    for i in 0..SOURCES {
        text.push_str(&format!(
            "[[source]]\nname = \"s{i}\"\nurl = \"http://{origin}/feed/s{i}\"\ninterval = \"1s\"\n\n"
        ));
    }
    std::fs::write(&config, text).expect("config");
    let store_path = dir.path().join("store");

    // Per source, every response index a logged poll stored.
    let mut confirmed: HashMap<String, Vec<u32>> = HashMap::new();
    let mut logged_polls = 0;
    for round in 0..ROUNDS {
        *feeds.round.lock().expect("lock") = round;
        let mut child = KillOnDrop::spawn(
            Command::new(env!("CARGO_BIN_EXE_tributary"))
                .args(["run", "--config"])
                .arg(&config)
                .env("RUST_LOG", "info")
                .env_remove("NOTIFY_SOCKET"),
        );
        let log = child.stderr_lines();
        // Anywhere from opening the store to a few polls in.
        let at = Duration::from_millis(fastrand::u64(50..2000));
        tokio::time::sleep(at).await;
        let mut killed = child.0.take().expect("child");
        killed.kill().expect("SIGKILL");
        killed.wait().expect("reaped");
        drop(child);

        // The k-th poll a source logged as stored is the k-th response it got this round
        // (a source's polls are sequential).
        let mut stored_this_round: HashMap<String, usize> = HashMap::new();
        for line in log.try_iter() {
            if line.contains("polled status=200")
                && let Some(name) = line
                    .split(|c: char| c == '{' || c == '}' || c.is_whitespace())
                    .find_map(|w| w.strip_prefix("source="))
            {
                *stored_this_round.entry(name.to_string()).or_default() += 1;
                logged_polls += 1;
            }
        }
        let served = feeds.served.lock().expect("lock").clone();
        for (name, n) in stored_this_round {
            let indexes = served
                .iter()
                .filter(|(r, s, _)| *r == round && *s == name)
                .map(|(_, _, i)| *i)
                .take(n)
                .collect::<Vec<_>>();
            confirmed.entry(name).or_default().extend(indexes);
        }

        let out = Command::new(env!("CARGO_BIN_EXE_tributary"))
            .args(["verify", "--config"])
            .arg(&config)
            .output()
            .expect("verify runs");
        assert_eq!(
            out.status.code(),
            Some(0),
            "round {round} (killed after {at:?}): the store reopens and is consistent:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        check(&store_path, &confirmed, round);
    }
    assert!(
        logged_polls >= 2 * SOURCES,
        "the daemon got to ingest between kills ({logged_polls} polls)"
    );
}

/// Everything confirmed is in the store, and no entry is there twice.
fn check(store_path: &Path, confirmed: &HashMap<String, Vec<u32>>, round: usize) {
    let store = tributary::store::Store::open(store_path, 8 << 20).expect("the store reopens");
    let mut all = HashSet::new();
    let mut count = 0;
    let page = store.page(None, None, usize::MAX, |_| true).expect("reads");
    for e in &page.entries {
        count += 1;
        all.insert(e.guid.clone().expect("guid"));
    }
    assert_eq!(count, all.len(), "round {round}: an entry is stored twice");
    for (name, indexes) in confirmed {
        for &index in indexes {
            for guid in guids(name, index) {
                assert!(
                    all.contains(&guid),
                    "round {round}: {guid} (response {index} of {name}, logged as stored) is lost"
                );
            }
        }
    }
}
