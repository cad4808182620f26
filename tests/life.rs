//! A daemon's life: its config edited under it, retention, a full disk.
//!
//! The real daemon (library entry point) with a temp store, against a real local origin;
//! every wait is on the daemon's own reports and events, never on a clock.

mod support;

use support::is_stored;

use support::source_toml;

use support::{Item, Rss};

use support::{next, start};

use std::path::Path;

use support::{Origin, Route, config_prelude, get};
use tributary::daemon::reload::ReloadError;
use tributary::daemon::supervise::Event;
use tributary::ingest::error::PollError;
use tributary::ingest::poll::PollOutcome;
use tributary::store::StoreError;

fn rss(name: &str, items: std::ops::Range<u32>) -> String {
    Rss::new(name, format!("https://{name}.example/"))
        .utf8_declared()
        .items(items.rev().map(|i| {
            Item::new(format!("https://{name}.example/{i}"))
                .title(format!("{name} {i}"))
                .link(format!("https://{name}.example/{i}"))
                .pub_date(format!(
                    "Mon, 01 Sep 2025 {:02}:{:02}:00 GMT",
                    i / 60 % 24,
                    i % 60
                ))
        }))
        .xml()
}

fn write(path: &Path, text: &str) {
    // As editors do: write a new file, rename it over the old one.
    let tmp = path.with_extension("toml.swp");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

async fn titles(base: &str, path: &str) -> Vec<String> {
    let (status, _, body) = get(&format!("{base}{path}")).await;
    assert_eq!(status, 200, "{path}");
    let feed = atom_syndication::Feed::read_from(body.as_bytes()).expect("atom");
    feed.entries.iter().map(|e| e.title.value.clone()).collect()
}

/// Sources added, removed, changed, then a broken edit and its fix, all by editing the
/// file under the running daemon (the watch), plus a reload by request (SIGHUP's path).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_of_the_config_are_applied_live_and_broken_ones_refused() {
    let origin = Origin::start().await;
    for name in ["a", "b", "c"] {
        origin.set(
            &format!("/{name}"),
            Route::feed(rss(name, 0..3), "application/rss+xml"),
        );
    }
    origin.set("/a2", Route::feed(rss("a", 0..4), "application/rss+xml"));
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("feeds.toml");
    let prelude = config_prelude("");
    let first = format!(
        "{prelude}{}{}",
        source_toml("a", &origin.url("/a"), "1h", ""),
        source_toml("b", &origin.url("/b"), "1h", "")
    );
    let cfg = support::config_raw(dir.path(), &first);
    let mut daemon = start(cfg).await;
    let base = format!("http://{}", daemon.local_addr());
    let mut events = daemon.subscribe_changes();
    let mut seen = std::collections::HashSet::new();
    let mut initial = daemon.take_reports();
    while seen.len() < 2 {
        let r = next(&mut initial, is_stored).await;
        seen.insert(r.source);
    }
    let mut reports = daemon.subscribe();
    assert_eq!(titles(&base, "/feed.atom").await.len(), 6);

    // Add c, remove b, point a at another URL, give nothing else.
    let second = format!(
        "{prelude}{}{}",
        source_toml("a", &origin.url("/a2"), "1h", ""),
        source_toml("c", &origin.url("/c"), "1h", "tags = [\"new\"]")
    );
    write(&path, &second);
    let Event::Reloaded(report) = next(&mut events, |e| matches!(e, Event::Reloaded(_))).await
    else {
        unreachable!()
    };
    assert_eq!(
        (report.added, report.removed, report.repolled),
        (
            vec!["c".to_string()],
            vec!["b".to_string()],
            vec!["a".to_string()]
        )
    );
    // Both are polled promptly (well inside their 1 h interval).
    let mut polled = std::collections::HashSet::new();
    while polled.len() < 2 {
        let r = next(&mut reports, |r| is_stored(r) && r.source != "b").await;
        polled.insert(r.source);
    }
    assert_eq!(origin.requests("/a2").len(), 1);
    let river = titles(&base, "/feed.atom").await;
    assert!(river.contains(&"a 3".to_string()), "{river:?}");
    assert!(river.contains(&"c 0".to_string()), "{river:?}");
    assert!(
        !river.iter().any(|t| t.starts_with("b ")),
        "a removed source leaves the outputs at once: {river:?}"
    );
    let (status, _, _) = get(&format!("{base}/sources/b.atom")).await;
    assert_eq!(status, 404);
    let (status, _, _) = get(&format!("{base}/tags/new.atom")).await;
    assert_eq!(status, 200, "the new tag is served");
    let b_requests = origin.requests("/b").len();

    // A broken edit: the running config stays, the error names the place, as `check` does.
    let broken = second.replace("interval = \"1h\"", "interval = \"often\"");
    write(&path, &broken);
    let Event::ReloadFailed(error) =
        next(&mut events, |e| matches!(e, Event::ReloadFailed(_))).await
    else {
        unreachable!()
    };
    assert!(matches!(error, ReloadError::Config(_)), "{error:?}");
    let error = error.to_string();
    let check = tributary::config::load(&path)
        .expect_err("check refuses it too")
        .to_string();
    assert_eq!(error, check);
    assert!(
        error.contains("feeds.toml:") && error.contains("interval \"often\" is not a duration"),
        "{error}"
    );
    let names: Vec<String> = daemon
        .config()
        .sources
        .iter()
        .map(|s| s.name.clone())
        .collect();
    assert_eq!(names, ["a", "c"], "the running config stays in force");
    assert_eq!(titles(&base, "/sources/c.atom").await.len(), 3);

    // Fixed, with c's title changed: applied without polling c again.
    let fixed = second.replace("tags = [\"new\"]", "tags = [\"new\"]\ntitle = \"Sea\"");
    write(&path, &fixed);
    let Event::Reloaded(report) = next(&mut events, |e| matches!(e, Event::Reloaded(_))).await
    else {
        unreachable!()
    };
    assert_eq!(report.updated, ["c"]);
    assert!(report.repolled.is_empty() && report.added.is_empty());

    // A reload by request with settings that need a restart: said, not applied.
    let moved = fixed.replace("listen = \"127.0.0.1:0\"", "listen = \"127.0.0.1:1\"");
    std::fs::write(&path, &moved).expect("write");
    let report = daemon.reload().await.expect("reloads");
    assert_eq!(report.restart_needed, ["[server] listen"]);
    let (status, _, _) = get(&format!("{base}/healthz")).await;
    assert_eq!(status, 200, "still serving on the old address");
    assert_eq!(
        origin.requests("/b").len(),
        b_requests,
        "b is no longer polled"
    );
    daemon.shutdown().await.expect("shutdown");
}

/// An edit of `[fetch]` reaches the polls after it: every source's task restarts with the
/// new fetcher (and keeps its schedule).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_edit_reaches_the_polls_after_it() {
    let origin = Origin::start().await;
    origin.set("/a", Route::feed(rss("a", 0..3), "application/rss+xml"));
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("feeds.toml");
    let text = |agent: &str| {
        format!(
            "{}{}",
            config_prelude(&format!("user_agent = \"{agent}\"")),
            source_toml("a", &origin.url("/a"), "1s", "")
        )
    };
    let agents = || -> Vec<String> {
        origin
            .requests("/a")
            .iter()
            .filter_map(|r| {
                r.headers
                    .get("user-agent")?
                    .to_str()
                    .ok()
                    .map(str::to_string)
            })
            .collect()
    };
    let mut daemon = start(support::config_raw(dir.path(), &text("first-agent/1"))).await;
    let mut events = daemon.subscribe_changes();
    let mut reports = daemon.take_reports();
    next(&mut reports, |r| r.source == "a").await;
    assert_eq!(agents(), ["first-agent/1"]);

    write(&path, &text("second-agent/2"));
    let Event::Reloaded(report) = next(&mut events, |e| matches!(e, Event::Reloaded(_))).await
    else {
        unreachable!()
    };
    assert!(report.fetch_changed, "{report:?}");
    // A poll already under way when the edit landed may finish with the old agent; the
    // ones after it carry the new one.
    let mut reports = daemon.subscribe();
    for _ in 0..3 {
        next(&mut reports, |r| r.source == "a").await;
        if agents().last().map(String::as_str) == Some("second-agent/2") {
            break;
        }
    }
    assert_eq!(
        agents().last().map(String::as_str),
        Some("second-agent/2"),
        "{:?}",
        agents()
    );
    daemon.shutdown().await.expect("shutdown");
}

/// A source's `keep` applies on the daemon's retention pass; what was pruned does not come
/// back on the next poll while the feed still lists it; status and metrics count it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_prunes_and_pruned_entries_stay_away() {
    let origin = Origin::start().await;
    origin.set("/s", Route::feed(rss("s", 0..20), "application/rss+xml"));
    origin.set("/t", Route::feed(rss("t", 0..20), "application/rss+xml"));
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "{}[retention]\nkeep_per_source = 8\nkeep_min = 2\n\n{}{}",
        config_prelude(""),
        source_toml("s", &origin.url("/s"), "1h", "keep = 5\ninterval = \"1s\"")
            .replace("interval = \"1h\"\n", ""),
        source_toml("t", &origin.url("/t"), "1h", "")
    );
    let cfg = support::config_raw(dir.path(), &text);
    let mut daemon = start(cfg).await;
    let base = format!("http://{}", daemon.local_addr());
    let mut reports = daemon.take_reports();
    let mut seen = std::collections::HashSet::new();
    while seen.len() < 2 {
        seen.insert(next(&mut reports, is_stored).await.source);
    }
    let report = daemon.prune().await.expect("prunes");
    assert_eq!(report.pruned.get("s"), Some(&15));
    assert_eq!(report.pruned.get("t"), Some(&12));
    let s = titles(&base, "/sources/s.atom").await;
    assert_eq!(s, ["s 19", "s 18", "s 17", "s 16", "s 15"]);
    assert_eq!(titles(&base, "/sources/t.atom").await.len(), 8);

    // s is polled every second; its feed still lists all 20.
    let again = next(&mut reports, |r| r.source == "s" && is_stored(r)).await;
    let PollOutcome::Stored { counts, .. } = again.outcome else {
        unreachable!()
    };
    assert_eq!((counts.new, counts.pruned), (0, 15), "{counts:?}");
    assert_eq!(titles(&base, "/sources/s.atom").await.len(), 5);
    let (_, _, metrics) = get(&format!("{base}/metrics")).await;
    assert!(
        metrics.contains("tributary_entries_pruned_total 27"),
        "{metrics}"
    );
    let (_, _, health) = get(&format!("{base}/healthz")).await;
    let health: serde_json::Value = serde_json::from_str(&health).expect("json");
    assert_eq!(health["entries"], 13);
    daemon.shutdown().await.expect("shutdown");
}

/// Below `[store] min_free_mb` polls store nothing and say why; the feeds are still
/// served; with space back (here: the limit lowered by a reload), polls store again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_storing_not_serving() {
    let origin = Origin::start().await;
    origin.set("/s", Route::feed(rss("s", 0..3), "application/rss+xml"));
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("feeds.toml");
    let text = |min_free: u64| {
        format!(
            "{}[store]\nmin_free_mb = {min_free}\n\n{}",
            config_prelude(""),
            source_toml("s", &origin.url("/s"), "1h", "interval = \"1s\"")
                .replace("interval = \"1h\"\n", "")
        )
    };
    let cfg = support::config_raw(dir.path(), &text(0));
    let mut daemon = start(cfg).await;
    let base = format!("http://{}", daemon.local_addr());
    let mut reports = daemon.take_reports();
    next(&mut reports, is_stored).await;

    // More free space asked for than any disk has: the disk is "full".
    std::fs::write(&path, text(1 << 30)).expect("write");
    daemon.reload().await.expect("reloads");
    origin.set("/s", Route::feed(rss("s", 0..5), "application/rss+xml"));
    let failed = next(&mut reports, |r| r.is_failure()).await;
    let PollOutcome::Failed { error } = &failed.outcome else {
        unreachable!()
    };
    assert!(
        matches!(error, PollError::Store(e) if matches!(**e, StoreError::DiskFull { .. })),
        "{error:?}"
    );
    let error = error.to_string();
    assert!(
        error.contains("is full") && error.contains("min_free_mb"),
        "{error}"
    );
    assert!(failed.next_poll.is_some(), "it keeps trying");
    assert_eq!(titles(&base, "/feed.atom").await.len(), 3, "still served");
    let (_, _, health) = get(&format!("{base}/healthz")).await;
    assert!(health.contains("is full"), "status says why: {health}");

    std::fs::write(&path, text(1)).expect("write");
    daemon.reload().await.expect("reloads");
    next(&mut reports, is_stored).await;
    assert_eq!(titles(&base, "/feed.atom").await.len(), 5);
    daemon.shutdown().await.expect("shutdown");
}
