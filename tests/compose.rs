//! Growing past one machine: tributary instances that each poll their share of the
//! sources, combined by another instance that subscribes to their published feeds. The
//! combining instance catches up through the feeds' RFC 5005 paging and gets every entry
//! once, articles both halves carry included.

mod support;

use support::all_stored;

use support::{Item, Rss};

use std::collections::HashSet;

use support::{Origin, Route, config_prelude, get};
use tokio::net::TcpListener;
use tributary::app;

/// A daemon whose `base_url` is its real address (its `next` links must work).
async fn start(dir: &std::path::Path, text: &str) -> app::Daemon {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let text = text.replace("http://feeds.test", &format!("http://{addr}"));
    let cfg = support::config_raw(dir, &text);
    app::start(cfg, listener).await.expect("daemon starts")
}

/// `n` items numbered from `from`, linking to `site`; items `shared` link to a common site.
fn rss(name: &str, range: std::ops::Range<u32>, shared: std::ops::Range<u32>) -> String {
    Rss::new(name, format!("https://{name}.example/"))
        .items(range.rev().map(|i| {
            Item::new(format!("{name}-{i}"))
                .title(format!("{name} {i}"))
                .link(format!("https://{name}.example/{i}"))
                .published_at(1_750_000_000 + u64::from(i) * 3600)
        }))
        .items(shared.map(|i| {
            Item::new(format!("{name}-shared-{i}"))
                .title(format!("shared {i}"))
                .link(format!("https://wire.example/story/{i}"))
                .published_at(1_740_000_000 + u64::from(i) * 3600)
        }))
        .xml()
}

fn source(name: &str, url: &str) -> String {
    support::source_toml(name, url, "1h", "")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_combining_two_others_gets_every_entry_once() {
    let origin = Origin::start().await;
    origin.set(
        "/north",
        Route::feed(rss("north", 0..120, 0..10), "application/rss+xml"),
    );
    origin.set(
        "/south",
        Route::feed(rss("south", 0..70, 0..10), "application/rss+xml"),
    );

    // Two instances, each with its share of the sources; their feeds carry 50 per page.
    let prelude = config_prelude("").replace("max_items = 500", "max_items = 50");
    let (da, db, dc) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    let mut a = start(
        da.path(),
        &format!("{prelude}{}", source("north", &origin.url("/north"))),
    )
    .await;
    let mut b = start(
        db.path(),
        &format!("{prelude}{}", source("south", &origin.url("/south"))),
    )
    .await;
    all_stored(&mut a.reports, &["north"]).await;
    all_stored(&mut b.reports, &["south"]).await;
    let a_url = format!("http://{}/feed.atom", a.local_addr());
    let b_url = format!("http://{}/feed.atom", b.local_addr());

    // The combining instance subscribes to both.
    let mut c = start(
        dc.path(),
        &format!(
            "{}{}{}",
            config_prelude(""),
            source("half-a", &a_url),
            source("half-b", &b_url)
        ),
    )
    .await;
    let counts = all_stored(&mut c.reports, &["half-a", "half-b"]).await;
    // North: 130 entries over three pages of 50; south: 80 over two.
    assert_eq!(
        counts,
        [("half-a".to_string(), 130), ("half-b".to_string(), 80)]
    );

    let base = format!("http://{}", c.local_addr());
    let (status, _, body) = get(&format!("{base}/feed.atom?limit=1000")).await;
    assert_eq!(status, 200);
    let feed = atom_syndication::Feed::read_from(body.as_bytes()).expect("atom");
    let titles: Vec<String> = feed.entries.iter().map(|e| e.title.value.clone()).collect();
    let unique: HashSet<&String> = titles.iter().collect();
    assert_eq!(unique.len(), titles.len(), "no entry twice");
    // 120 + 70 own entries, and the 10 shared stories once.
    assert_eq!(titles.len(), 200, "{titles:?}");
    for i in 0..120 {
        assert!(unique.contains(&format!("north {i}")), "north {i}");
    }
    for i in 0..10 {
        assert!(unique.contains(&format!("shared {i}")), "shared {i}");
    }
    let ids: HashSet<&str> = feed.entries.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids.len(), 200);
    for d in [a, b, c] {
        d.shutdown().await.expect("shutdown");
    }
}
