//! Every view is read from an index: an empty tag, a named feed whose patterns match
//! nothing and a sparse one cost the page they publish, not a scan of the store (issue 13.3).
//! What a render reads is counted by the daemon (`tributary_store_entries_read` in
//! `/metrics`), so these tests check the work done, not a clock.

mod support;

use support::all_stored;

use std::time::Duration;

use support::{Origin, Route, assert_valid_atom, config_prelude, config_raw, get};
use tokio::net::TcpListener;
use tributary::app;
use tributary::daemon::supervise::Event;

/// An RSS feed of `n` items; every `every`-th title mentions "sled".
fn big_feed(n: usize, every: usize) -> String {
    let mut s = String::from(
        r#"<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Big</title><link>https://big.example/</link><description>d</description>"#,
    );
    for i in 0..n {
        let topic = if i % every == 0 { "sled" } else { "other" };
        s.push_str(&format!(
            "<item><guid isPermaLink=\"false\">g{i}</guid><title>Post {i} about {topic}</title><link>https://big.example/{i}</link><description>Body {i}</description><pubDate>{}</pubDate></item>",
            (chrono::Utc::now() - chrono::Duration::minutes(i as i64)).to_rfc2822()
        ));
    }
    s.push_str("</channel></rss>");
    s
}

async fn wait_indexed(events: &mut tokio::sync::broadcast::Receiver<Event>) {
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match events.recv().await {
                Ok(Event::FeedIndexesBuilt) => return,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("event channel closed: {e}"),
            }
        }
    })
    .await
    .expect("the named feeds were indexed");
}

/// Entries the daemon has read to render since it started.
async fn entries_read(base: &str) -> u64 {
    let (status, _, body) = get(&format!("{base}/metrics")).await;
    assert_eq!(status, 200);
    body.lines()
        .find_map(|l| l.strip_prefix("tributary_store_entries_read "))
        .and_then(|v| v.trim().parse().ok())
        .expect("the metric is there")
}

/// GETs a feed; returns its entry count and how many entries the render read.
async fn render(base: &str, path: &str) -> (usize, u64) {
    let before = entries_read(base).await;
    let (status, _, body) = get(&format!("{base}{path}")).await;
    assert_eq!(status, 200, "{path}: {body}");
    let feed = assert_valid_atom(&body, &format!("http://feeds.test{path}"));
    let read = entries_read(base).await - before;
    (feed.entries().len(), read)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_and_sparse_views_read_only_what_they_publish() {
    let origin = Origin::start().await;
    // 600 entries, 3 of them about sled; a second source with none.
    origin.set(
        "/big.xml",
        Route::feed(big_feed(600, 200), "application/rss+xml"),
    );
    origin.set(
        "/none.xml",
        Route::feed(big_feed(0, 1), "application/rss+xml"),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "{}[[source]]\nname = \"big\"\nurl = \"{}\"\ntags = [\"rust\"]\n\n\
         [[source]]\nname = \"quiet\"\nurl = \"{}\"\ntags = [\"empty\"]\n\n\
         [[feed]]\nname = \"nothing\"\ninclude = [\"never-mentioned\"]\n\n\
         [[feed]]\nname = \"sled\"\ninclude = [\"sled\"]\n\n\
         [[feed]]\nname = \"quiet-only\"\nsources = [\"quiet\"]\n",
        config_prelude(""),
        origin.url("/big.xml"),
        origin.url("/none.xml"),
    );
    let config = config_raw(dir.path(), &text);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let mut daemon = app::start(config, listener).await.expect("daemon starts");
    let mut reports = daemon.take_reports();
    wait_indexed(&mut daemon.supervisor_events).await;
    all_stored(&mut reports, &["big", "quiet"]).await;
    let base = format!("http://{}", daemon.local_addr());

    // The combined feed reads its page (500 a page here) and one more to know a next
    // page exists.
    let (n, read) = render(&base, "/feed.atom").await;
    assert_eq!(n, 500);
    assert!(read <= 501, "/feed.atom read {read} entries");

    // Patterns that match nothing: nothing to read, whatever the store holds.
    let (n, read) = render(&base, "/feeds/nothing.atom").await;
    assert_eq!((n, read), (0, 0), "an empty named feed read the store");
    // Sparse: the three entries it publishes.
    let (n, read) = render(&base, "/feeds/sled.atom").await;
    assert_eq!(
        (n, read),
        (3, 3),
        "a sparse named feed read more than it publishes"
    );
    // A tag and a feed over a source with no entries.
    let (n, read) = render(&base, "/tags/empty.atom").await;
    assert_eq!((n, read), (0, 0), "an empty tag read the store");
    let (n, read) = render(&base, "/feeds/quiet-only.atom").await;
    assert_eq!((n, read), (0, 0));
    // A tag's page.
    let (n, read) = render(&base, "/tags/rust.atom?limit=10").await;
    assert_eq!(n, 10);
    assert!(read <= 11, "/tags/rust.atom read {read} entries");
    daemon.shutdown().await.expect("stops");
}

/// A changed pattern gets a new index, built in the background while the feed is served;
/// once built it is read alone, and what it publishes follows the new pattern.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_pattern_is_indexed_anew_on_reload() {
    let origin = Origin::start().await;
    origin.set(
        "/big.xml",
        Route::feed(big_feed(300, 100), "application/rss+xml"),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let text = |pattern: &str| {
        format!(
            "{}[[source]]\nname = \"big\"\nurl = \"{}\"\n\n\
             [[feed]]\nname = \"picked\"\ninclude = [\"{pattern}\"]\n",
            config_prelude(""),
            origin.url("/big.xml"),
        )
    };
    let config = config_raw(dir.path(), &text("sled"));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let mut daemon = app::start(config, listener).await.expect("daemon starts");
    let mut reports = daemon.take_reports();
    wait_indexed(&mut daemon.supervisor_events).await;
    all_stored(&mut reports, &["big"]).await;
    let base = format!("http://{}", daemon.local_addr());
    assert_eq!(render(&base, "/feeds/picked.atom").await, (3, 3));

    // Entries 7, 17, ..., 297: thirty of them.
    std::fs::write(dir.path().join("feeds.toml"), text("Post [0-9]*7 ")).expect("writes");
    daemon.reload().await.expect("reloads");
    wait_indexed(&mut daemon.supervisor_events).await;
    assert_eq!(render(&base, "/feeds/picked.atom").await, (30, 30));

    // Restarted on the same store: the index is kept, not rebuilt, and still read alone.
    daemon.shutdown().await.expect("stops");
    let config = tributary::config::load(&dir.path().join("feeds.toml")).expect("loads");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let mut daemon = app::start(config, listener).await.expect("daemon starts");
    wait_indexed(&mut daemon.supervisor_events).await;
    let base = format!("http://{}", daemon.local_addr());
    assert_eq!(render(&base, "/feeds/picked.atom").await, (30, 30));
    let (_, _, body) = get(&format!("{base}/healthz")).await;
    assert!(body.contains("\"big\""), "{body}");
    daemon.shutdown().await.expect("stops");
    // And the store agrees with itself, the feed index included.
    let config = tributary::config::load(&dir.path().join("feeds.toml")).expect("loads");
    let report = app::verify(config).await.expect("verifies");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

/// Entries of a source removed from the config stay in the store (hidden) until retention
/// deletes them days later; `/feed.atom` does not read its way through them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hidden_entries_of_a_removed_source_are_not_read_through() {
    let origin = Origin::start().await;
    origin.set(
        "/big.xml",
        Route::feed(big_feed(600, 1000), "application/rss+xml"),
    );
    // Older than every entry of "big".
    let old: String = {
        let mut s = String::from(
            r#"<?xml version="1.0"?><rss version="2.0"><channel><title>Old</title><link>https://old.example/</link><description>d</description>"#,
        );
        for i in 0..20 {
            s.push_str(&format!(
                "<item><guid>o{i}</guid><title>Old {i}</title><link>https://old.example/{i}</link><pubDate>{}</pubDate></item>",
                (chrono::Utc::now() - chrono::Duration::days(3) - chrono::Duration::minutes(i)).to_rfc2822()
            ));
        }
        s.push_str("</channel></rss>");
        s
    };
    origin.set("/old.xml", Route::feed(old, "application/rss+xml"));
    let dir = tempfile::tempdir().expect("tempdir");
    let text = |with_big: bool| {
        let mut t = format!(
            "{}[[source]]\nname = \"old\"\nurl = \"{}\"\n\n",
            config_prelude(""),
            origin.url("/old.xml")
        );
        if with_big {
            t.push_str(&format!(
                "[[source]]\nname = \"big\"\nurl = \"{}\"\n\n",
                origin.url("/big.xml")
            ));
        }
        t
    };
    let config = config_raw(dir.path(), &text(true));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let mut daemon = app::start(config, listener).await.expect("daemon starts");
    let mut reports = daemon.take_reports();
    all_stored(&mut reports, &["big", "old"]).await;
    std::fs::write(dir.path().join("feeds.toml"), text(false)).expect("writes");
    daemon.reload().await.expect("reloads");
    let base = format!("http://{}", daemon.local_addr());
    let (n, read) = render(&base, "/feed.atom?limit=5").await;
    assert_eq!(n, 5);
    assert!(
        read <= 2 * 5 + 100 + 2 * 6,
        "/feed.atom read {read} entries past 600 hidden ones"
    );
    let (_, _, body) = get(&format!("{base}/feed.atom?limit=5")).await;
    assert!(
        body.contains("Old 0") && !body.contains("about other"),
        "{body}"
    );
    daemon.shutdown().await.expect("stops");
}

/// A named feed's patterns match an entry's text, not its markup (as a source's filters
/// do): `exclude = ["href"]` keeps an entry that only links, and `include = ["strong"]`
/// takes an entry that says "strong", not one that is merely bold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_feed_patterns_do_not_match_markup() {
    let origin = Origin::start().await;
    let item = |i: usize, title: &str, html: &str| {
        format!(
            "<item><guid isPermaLink=\"false\">m{i}</guid><title>{title}</title><link>https://m.example/{i}</link><description><![CDATA[{html}]]></description><pubDate>{}</pubDate></item>",
            (chrono::Utc::now() - chrono::Duration::minutes(i as i64)).to_rfc2822()
        )
    };
    let body = format!(
        r#"<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>M</title><link>https://m.example/</link><description>d</description>{}{}{}</channel></rss>"#,
        item(
            1,
            "Linked",
            r#"<p>See <a href="https://x.example/">this page</a></p>"#
        ),
        item(2, "Bold", "<p><strong>Loud</strong> words</p>"),
        item(3, "Said", "<p>A strong case</p>"),
    );
    origin.set("/m.xml", Route::feed(body, "application/rss+xml"));
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "{}[[source]]\nname = \"m\"\nurl = \"{}\"\n\n\
         [[feed]]\nname = \"no-href\"\nexclude = [\"href\"]\n\n\
         [[feed]]\nname = \"strong\"\ninclude = [\"strong\"]\n",
        config_prelude(""),
        origin.url("/m.xml"),
    );
    let config = config_raw(dir.path(), &text);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let mut daemon = app::start(config, listener).await.expect("daemon starts");
    let mut reports = daemon.take_reports();
    wait_indexed(&mut daemon.supervisor_events).await;
    all_stored(&mut reports, &["m"]).await;
    let base = format!("http://{}", daemon.local_addr());
    let titles = |path: &'static str| {
        let base = base.clone();
        async move {
            let (status, _, body) = get(&format!("{base}{path}")).await;
            assert_eq!(status, 200, "{path}: {body}");
            let feed = assert_valid_atom(&body, &format!("http://feeds.test{path}"));
            let mut t: Vec<String> = feed
                .entries()
                .iter()
                .map(|e| e.title().value.clone())
                .collect();
            t.sort();
            t
        }
    };
    assert_eq!(
        titles("/feeds/no-href.atom").await,
        ["Bold", "Linked", "Said"]
    );
    assert_eq!(titles("/feeds/strong.atom").await, ["Said"]);
    daemon.shutdown().await.expect("stops");
}
