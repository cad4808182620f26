//! Growing past one machine: tributary instances that each poll their share of the
//! sources, combined by another instance that subscribes to their published feeds. The
//! combining instance catches up through the feeds' RFC 5005 paging and gets every entry
//! once, articles both halves carry included.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use support::{Origin, Route, config_prelude, get};
use tokio::net::TcpListener;
use tokio::sync::broadcast::{Receiver, error::RecvError};
use tributary::app;
use tributary::ingest::poll::{PollOutcome, PollReport};

/// A daemon whose `base_url` is its real address (its `next` links must work).
async fn start(dir: &std::path::Path, text: &str) -> app::Daemon {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let text = text.replace("http://feeds.test", &format!("http://{addr}"));
    let cfg = support::config_raw(dir, &text);
    app::start(cfg, listener).await.expect("daemon starts")
}

/// Waits until every source in `names` has stored a poll; returns their counts.
async fn stored_all(rx: &mut Receiver<PollReport>, names: &[&str]) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), async {
        while out.len() < names.len() {
            match rx.recv().await {
                Ok(PollReport {
                    source,
                    outcome: PollOutcome::Stored { counts, .. },
                    ..
                }) if names.contains(&source.as_str())
                    && !out.iter().any(|(s, _)| *s == source) =>
                {
                    out.push((source, counts.new));
                }
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(e) => panic!("channel closed: {e}"),
            }
        }
    })
    .await
    .expect("every source polled");
    out.sort();
    out
}

/// `n` items numbered from `from`, linking to `site`; items `shared` link to a common site.
fn rss(name: &str, range: std::ops::Range<u32>, shared: std::ops::Range<u32>) -> String {
    let mut s = format!(
        r#"<?xml version="1.0"?><rss version="2.0"><channel><title>{name}</title><link>https://{name}.example/</link><description>d</description>"#
    );
    for i in range.clone().rev() {
        s.push_str(&format!(
            "<item><guid>{name}-{i}</guid><title>{name} {i}</title><link>https://{name}.example/{i}</link><pubDate>{}</pubDate></item>",
            httpdate::fmt_http_date(std::time::UNIX_EPOCH + Duration::from_secs(1_750_000_000 + u64::from(i) * 3600))
        ));
    }
    for i in shared {
        s.push_str(&format!(
            "<item><guid>{name}-shared-{i}</guid><title>shared {i}</title><link>https://wire.example/story/{i}</link><pubDate>{}</pubDate></item>",
            httpdate::fmt_http_date(std::time::UNIX_EPOCH + Duration::from_secs(1_740_000_000 + u64::from(i) * 3600))
        ));
    }
    s.push_str("</channel></rss>");
    s
}

fn source(name: &str, url: &str) -> String {
    format!("[[source]]\nname = \"{name}\"\nurl = \"{url}\"\ninterval = \"1h\"\n\n")
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
    stored_all(&mut a.reports, &["north"]).await;
    stored_all(&mut b.reports, &["south"]).await;
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
    let counts = stored_all(&mut c.reports, &["half-a", "half-b"]).await;
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
