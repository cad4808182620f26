//! An active-active pair: two daemons with the same `feeds.toml` and stores of their own,
//! polling the same origin at different moments, publish byte-identical documents (same
//! ids, same ETags) for the combined, tag and per-source feeds in every format, also after a
//! new entry appears at the origin. A reader switched from one to the other in the middle
//! of paging (a load balancer failing over) sees every entry once: B answers A's `next`
//! link and A's ETag. `bench/pair.sh` runs the same pair behind nginx with one killed.

mod support;

use std::collections::HashSet;
use std::path::Path;

use support::{Item, Origin, Route, Rss, all_stored, config_prelude, source_toml};
use tokio::net::TcpListener;
use tributary::app;

/// Both configs' `base_url` (the address readers use, nginx's in production).
const BASE: &str = "http://feeds.test";

/// The dated entries `from..to` of `name`, one an hour, newest first, linking to its site.
fn items(name: &str, range: std::ops::Range<u64>) -> Vec<Item> {
    range
        .rev()
        .map(|i| {
            Item::new(format!("https://{name}.example/{i}"))
                .title(format!("{name} {i}"))
                .link(format!("https://{name}.example/{i}"))
                .description(format!("&lt;p&gt;Post {i} of {name}&lt;/p&gt;"))
                .published_at(1_750_000_000 + i * 3600 + name.len() as u64)
        })
        .collect()
}

fn rss(name: &str, items: Vec<Item>) -> Route {
    Route::feed(
        Rss::new(name, format!("https://{name}.example/"))
            .items(items)
            .xml(),
        "application/rss+xml",
    )
}

/// The one config both instances load: three sources, two tags, a named feed, 4 entries a
/// page so that paging has several pages.
fn feeds_toml(origin: &Origin) -> String {
    let prelude = config_prelude("").replace("max_items = 500", "max_items = 4");
    format!(
        "{prelude}{}{}{}[[feed]]\nname = \"digest\"\nsources = [\"alpha\", \"gamma\"]\n\n",
        source_toml("alpha", &origin.url("/alpha"), "1h", "tags = [\"news\"]"),
        source_toml("beta", &origin.url("/beta"), "1h", "tags = [\"news\"]"),
        source_toml("gamma", &origin.url("/gamma"), "1h", "tags = [\"other\"]"),
    )
}

async fn start(dir: &Path, text: &str) -> (app::Daemon, tributary::config::Config) {
    let cfg = support::config_raw(dir, text);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let daemon = app::start(cfg.clone(), listener)
        .await
        .expect("daemon starts");
    (daemon, cfg)
}

/// A GET with an optional If-None-Match: status, ETag, body.
async fn fetch(url: &str, inm: Option<&str>) -> (u16, String, String) {
    let client = reqwest::Client::new();
    let mut req = client.get(url);
    if let Some(tag) = inm {
        req = req.header("If-None-Match", tag);
    }
    let r = req.send().await.expect("request succeeds");
    let status = r.status().as_u16();
    let etag = r
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (status, etag, r.text().await.expect("body"))
}

/// Every document a reader can ask for, first pages and a second page.
fn documents() -> Vec<String> {
    let mut out = Vec::new();
    for path in [
        "/feed",
        "/tags/news",
        "/tags/other",
        "/sources/alpha",
        "/sources/beta",
        "/sources/gamma",
        "/feeds/digest",
    ] {
        for ext in ["atom", "rss", "json"] {
            out.push(format!("{path}.{ext}"));
            out.push(format!("{path}.{ext}?limit=2"));
            out.push(format!("{path}.{ext}?limit=1000"));
        }
    }
    out
}

/// Asserts that `a` and `b` serve every document byte for byte with the same ETag.
async fn assert_identical(a: &app::Daemon, b: &app::Daemon) {
    for doc in documents() {
        let (sa, ea, ba) = fetch(&format!("http://{}{doc}", a.local_addr()), None).await;
        let (sb, eb, bb) = fetch(&format!("http://{}{doc}", b.local_addr()), None).await;
        assert_eq!((sa, sb), (200, 200), "{doc}");
        assert_eq!(ba, bb, "{doc}: the same bytes from both");
        assert!(ea.starts_with('"'), "{doc}: a strong ETag: {ea}");
        assert_eq!(ea, eb, "{doc}: the same ETag from both");
    }
}

/// The entry ids of a JSON Feed document and its `next_url`.
fn json_page(body: &str) -> (Vec<String>, Option<String>) {
    let v: serde_json::Value = serde_json::from_str(body).expect("JSON Feed");
    let ids = v["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["id"].as_str().expect("id").to_string())
        .collect();
    (ids, v["next_url"].as_str().map(String::from))
}

/// The entry ids of an Atom document and its `rel="next"` link.
fn atom_page(body: &str) -> (Vec<String>, Option<String>) {
    let f = atom_syndication::Feed::read_from(body.as_bytes()).expect("Atom");
    let ids = f.entries.iter().map(|e| e.id.clone()).collect();
    let next = f
        .links
        .iter()
        .find(|l| l.rel == "next")
        .map(|l| l.href.clone());
    (ids, next)
}

/// A reader pages `doc` (`json` or `atom`) on `first` for one page, then is switched to
/// `second` (the failover) and follows the `next` links there to the end. Returns the ids
/// in order; asserts that `second` answers `first`'s ETag with a 304 when `same_etag`.
async fn page_across(
    first: &app::Daemon,
    second: &app::Daemon,
    doc: &str,
    same_etag: bool,
) -> Vec<String> {
    let parse = if doc.ends_with(".json") {
        json_page
    } else {
        atom_page
    };
    let (status, etag, body) = fetch(&format!("http://{}{doc}", first.local_addr()), None).await;
    assert_eq!(status, 200);
    // The switched reader revalidates what it holds: the other instance knows the ETag.
    if same_etag {
        let (status, etag_b, body_b) =
            fetch(&format!("http://{}{doc}", second.local_addr()), Some(&etag)).await;
        assert_eq!(status, 304, "{doc}: B answers A's ETag {etag}");
        assert_eq!(etag_b, etag);
        assert!(body_b.is_empty());
    }
    let (mut ids, mut next) = parse(&body);
    let mut pages = 1;
    while let Some(url) = next {
        // The link names the public address (base_url); the reader now reaches B.
        let path = url.strip_prefix(BASE).expect("next link under base_url");
        let (status, _, body) = fetch(&format!("http://{}{path}", second.local_addr()), None).await;
        assert_eq!(status, 200, "{url}");
        let (more, after) = parse(&body);
        ids.extend(more);
        next = after;
        pages += 1;
        assert!(pages < 100, "paging ends");
    }
    assert!(pages >= 2, "{doc}: several pages ({pages})");
    ids
}

/// The ids of `doc` at once (`?limit=1000`) from one instance.
async fn all_ids(d: &app::Daemon, doc: &str) -> Vec<String> {
    let (status, _, body) =
        fetch(&format!("http://{}{doc}?limit=1000", d.local_addr()), None).await;
    assert_eq!(status, 200);
    if doc.ends_with(".json") {
        json_page(&body).0
    } else {
        atom_page(&body).0
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_publish_the_same_bytes_and_a_switched_reader_sees_each_entry_once() {
    let origin = Origin::start().await;
    // alpha carries a wire story that beta brings later (cross-source dedup); gamma has an
    // entry without a date of its own and one dated in the future (both take the feed's
    // `lastBuildDate`, not the poll's time).
    let wire = || {
        Item::new("https://wire.example/story/1")
            .title("wire story")
            .link("https://wire.example/story/1")
            .published_at(1_750_000_000 + 5 * 3600 + 30)
    };
    let mut alpha = items("alpha", 0..9);
    alpha.push(wire());
    origin.set("/alpha", rss("alpha", alpha.clone()));
    let mut beta = items("beta", 0..7);
    origin.set("/beta", rss("beta", beta.clone()));
    let mut gamma = items("gamma", 0..5);
    gamma.push(Item::new("https://gamma.example/undated").title("gamma undated"));
    gamma.push(
        Item::new("https://gamma.example/future")
            .title("gamma from the future")
            .pub_date("Fri, 01 Jan 2100 00:00:00 GMT"),
    );
    let gamma = rss("gamma", gamma);
    // A recent feed date (an older one is not trusted to date new entries).
    let built = (chrono::Utc::now() - chrono::Duration::hours(20)).to_rfc2822();
    let dated_channel = String::from_utf8(gamma.body.clone())
        .expect("utf-8")
        .replacen(
            "<description>d</description>",
            &format!("<description>d</description><lastBuildDate>{built}</lastBuildDate>"),
            1,
        );
    origin.set(
        "/gamma",
        Route {
            body: dated_channel.into_bytes(),
            ..gamma
        },
    );

    let text = feeds_toml(&origin);
    let (da, db) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    // A polls first; B starts (and polls) only once A is done: different moments.
    let (mut a, cfg_a) = start(da.path(), &text).await;
    let cfg_a2 = cfg_a.clone();
    all_stored(&mut a.reports, &["alpha", "beta", "gamma"]).await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let (mut b, cfg_b) = start(db.path(), &text).await;
    let cfg_b2 = cfg_b.clone();
    all_stored(&mut b.reports, &["alpha", "beta", "gamma"]).await;
    assert_identical(&a, &b).await;

    // A new entry at the origin, and the wire story in beta too (credited to alpha, which
    // had it first on both): A polls first, B a moment later.
    alpha.insert(0, items("alpha", 9..10).remove(0));
    origin.set("/alpha", rss("alpha", alpha));
    beta.push(wire());
    origin.set("/beta", rss("beta", beta));
    app::poll(cfg_a, vec!["alpha".into(), "beta".into()], |_| {})
        .await
        .expect("A polls");
    let newest = all_ids(&a, "/sources/alpha.json").await;
    let before = all_ids(&b, "/sources/alpha.json").await;
    assert_eq!(newest.len(), before.len() + 1, "B has not polled yet");
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    app::poll(cfg_b, vec!["alpha".into(), "beta".into()], |_| {})
        .await
        .expect("B polls");
    assert_identical(&a, &b).await;

    // A reader of A fails over to B in the middle of paging, and back: each entry once,
    // none missing.
    for doc in [
        "/feed.json",
        "/feed.atom",
        "/tags/news.json",
        "/sources/alpha.atom",
    ] {
        for (first, second) in [(&a, &b), (&b, &a)] {
            let ids = page_across(first, second, doc, true).await;
            let unique: HashSet<&String> = ids.iter().collect();
            assert_eq!(unique.len(), ids.len(), "{doc}: no entry twice: {ids:?}");
            let whole = all_ids(first, doc).await;
            assert_eq!(ids, whole, "{doc}: every entry, in order");
        }
    }

    // What may differ: an entry edited without a new date is stamped `updated` by each
    // instance's own poll (README). Its id, date and place stay the same on both, so a
    // switched reader still pages without a duplicate or a gap.
    let mut edited = items("beta", 0..7);
    edited[0] = edited[0]
        .clone()
        .description("&lt;p&gt;Corrected&lt;/p&gt;");
    edited.push(wire());
    origin.set("/beta", rss("beta", edited));
    for cfg in [&cfg_a2, &cfg_b2] {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        app::poll(cfg.clone(), vec!["beta".into()], |_| {})
            .await
            .expect("polls");
    }
    for doc in ["/feed.json", "/sources/beta.atom", "/tags/news.json"] {
        assert_eq!(all_ids(&a, doc).await, all_ids(&b, doc).await, "{doc}");
        let ids = page_across(&a, &b, doc, false).await;
        assert_eq!(
            ids,
            all_ids(&b, doc).await,
            "{doc}: every entry once, in order"
        );
    }
    // 10 alpha + 7 beta + 5 gamma + the undated and the future one, and the wire story once.
    assert_eq!(all_ids(&a, "/feed.json").await.len(), 10 + 7 + 5 + 2 + 1);

    a.shutdown().await.expect("shutdown");
    b.shutdown().await.expect("shutdown");
}
