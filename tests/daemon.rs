//! The whole daemon against real local origins: fetch, parse, dedup, store, serve.

mod support;

use support::{next, start};

use std::collections::HashSet;
use std::time::Duration;

use support::{Origin, Route, assert_valid_atom, assert_valid_rss, config, get};
use tokio::net::TcpListener;
use tributary::app;
use tributary::ingest::error::PollError;
use tributary::ingest::poll::{PollOutcome, PollReport};

fn stored(r: &PollReport) -> (usize, usize, usize) {
    match &r.outcome {
        PollOutcome::Stored { counts, .. } => (counts.new, counts.updated, counts.unchanged),
        other => panic!("{}: expected stored, got {other:?}", r.source),
    }
}

fn rss_feed(items: &[(&str, &str, &str)]) -> String {
    let mut s = String::from(
        r#"<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Little blog</title><link>https://little.example/</link><description>d</description>"#,
    );
    for (guid, title, date) in items {
        s.push_str(&format!(
            "<item><guid isPermaLink=\"false\">{guid}</guid><title>{title}</title><link>https://little.example/{guid}</link><description>&lt;p&gt;About {title}&lt;/p&gt;</description><pubDate>{date}</pubDate></item>"
        ));
    }
    s.push_str("</channel></rss>");
    s
}

/// Every input format, stored once and published in valid Atom and RSS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_combined_atom_and_rss_from_every_input_format() {
    let origin = Origin::start().await;
    let fixtures = [
        ("rss2", "large_rss.xml", 25),
        ("atom", "small_atom.xml", 20),
        ("rdf", "rdf_UTF8.xml", 60),
        ("latin1", "encoding_ISO-8859-1.xml", 40),
        ("json", "jsonfeed_example_1.json", 2),
        ("podcast", "itunes.xml", 3),
    ];
    let urls: Vec<String> = fixtures
        .iter()
        .map(|(_, f, _)| {
            origin.set(&format!("/{f}"), Route::fixture(f));
            origin.url(&format!("/{f}"))
        })
        .collect();
    let sources: Vec<(&str, &str, &str)> = fixtures
        .iter()
        .zip(&urls)
        .map(|((name, _, _), url)| (*name, url.as_str(), "1h"))
        .collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), &sources, "");

    let reports = app::once(cfg.clone()).await.expect("once runs");
    let mut total = 0;
    for ((name, _, expected), report) in fixtures.iter().zip(&reports) {
        assert_eq!(report.source, *name);
        let (new, updated, unchanged) = stored(report);
        assert_eq!((new, updated, unchanged), (*expected, 0, 0), "{name}");
        total += expected;
    }

    let daemon = start(cfg).await;
    let base = format!("http://{}", daemon.local_addr());

    let (status, ct, body) = get(&format!("{base}/feed.atom")).await;
    assert_eq!(status, 200);
    assert_eq!(ct, "application/atom+xml; charset=utf-8");
    let atom = assert_valid_atom(&body, "http://feeds.test/feed.atom");
    assert_eq!(atom.entries.len(), total);
    // Newest first.
    let dates: Vec<_> = atom
        .entries
        .iter()
        .map(|e| e.published.unwrap_or(e.updated))
        .collect();
    assert!(dates.windows(2).all(|w| w[0] >= w[1]), "newest first");
    // Latin-1 decoded right: no replacement characters anywhere.
    assert!(!body.contains('\u{fffd}'));
    // Each entry names its source.
    assert!(atom.entries.iter().all(|e| e.source.is_some()));

    let (status, ct, body) = get(&format!("{base}/feed.rss?x=1")).await;
    assert_eq!(status, 200);
    assert_eq!(ct, "application/rss+xml; charset=utf-8");
    // An ignored parameter is not echoed in the self link.
    let channel = assert_valid_rss(&body, "http://feeds.test/feed.rss");
    assert_eq!(channel.items.len(), total);
    // Podcast enclosures survive.
    let enclosures = channel
        .items
        .iter()
        .filter(|i| i.enclosure.is_some())
        .count();
    assert!(enclosures >= 3, "podcast enclosures kept: {enclosures}");
    // The same ids in both formats.
    let atom_ids: HashSet<_> = atom.entries.iter().map(|e| e.id.clone()).collect();
    let rss_ids: HashSet<_> = channel
        .items
        .iter()
        .filter_map(|i| i.guid.as_ref().map(|g| g.value.clone()))
        .collect();
    assert_eq!(atom_ids, rss_ids);

    let (status, _, health) = get(&format!("{base}/healthz")).await;
    assert_eq!(status, 200);
    let health: serde_json::Value = serde_json::from_str(&health).expect("json");
    assert_eq!(health["entries"], total);
    assert_eq!(health["sources"].as_array().map(Vec::len), Some(6));

    let (status, _, _) = get(&format!("{base}/nope")).await;
    assert_eq!(status, 404);

    // HEAD: headers, no body.
    let head = reqwest::Client::new()
        .head(format!("{base}/feed.atom"))
        .send()
        .await
        .expect("HEAD");
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.headers()["content-type"],
        "application/atom+xml; charset=utf-8"
    );
    assert!(head.bytes().await.expect("body").is_empty());

    // The home page lets a reader discover both feeds.
    let (status, ct, page) = get(&format!("{base}/")).await;
    assert_eq!(status, 200);
    assert!(ct.starts_with("text/html"));
    assert!(page.contains(
        r#"<link rel="alternate" type="application/atom+xml" title="Test river (Atom)" href="http://feeds.test/feed.atom">"#
    ));
    assert!(page.contains(r#"type="application/rss+xml""#));
    daemon.shutdown().await.expect("clean shutdown");
}

/// A second poll adds nothing; with an ETag it is a conditional request answered 304.
#[tokio::test]
async fn repeated_polls_add_nothing_and_send_validators() {
    let origin = Origin::start().await;
    let feed = rss_feed(&[
        ("a", "Alpha", "Mon, 01 Jan 2024 10:00:00 GMT"),
        ("b", "Beta", "Tue, 02 Jan 2024 10:00:00 GMT"),
    ]);
    origin.set(
        "/etag.xml",
        Route::feed(feed.clone(), "application/rss+xml").with_etag("\"v1\""),
    );
    origin.set(
        "/lm.xml",
        Route::feed(feed.clone(), "application/rss+xml")
            .with_last_modified("Tue, 02 Jan 2024 10:00:00 GMT"),
    );
    origin.set("/plain.xml", Route::feed(feed, "application/rss+xml"));
    let (etag_url, lm_url, plain_url) = (
        origin.url("/etag.xml"),
        origin.url("/lm.xml"),
        origin.url("/plain.xml"),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(
        dir.path(),
        &[
            ("etag", &etag_url, "1h"),
            ("lm", &lm_url, "1h"),
            ("plain", &plain_url, "1h"),
        ],
        "",
    );

    let first = app::once(cfg.clone()).await.expect("once");
    assert!(first.iter().all(|r| stored(r) == (2, 0, 0)), "{first:?}");
    let second = app::once(cfg.clone()).await.expect("once");
    assert_eq!(second[0].outcome, PollOutcome::NotModified { status: 304 });
    assert_eq!(stored(&second[1]), (0, 0, 2));
    assert_eq!(stored(&second[2]), (0, 0, 2));

    let etag_requests = origin.requests("/etag.xml");
    assert_eq!(etag_requests.len(), 2);
    assert!(etag_requests[0].headers.get("if-none-match").is_none());
    assert_eq!(etag_requests[1].headers["if-none-match"], "\"v1\"");
    let lm_requests = origin.requests("/lm.xml");
    assert_eq!(
        lm_requests[1].headers["if-modified-since"],
        "Tue, 02 Jan 2024 10:00:00 GMT"
    );
    let ua = etag_requests[0].headers["user-agent"]
        .to_str()
        .expect("ascii");
    assert!(
        ua.starts_with("tributary/") && ua.contains("(+http://feeds.test)"),
        "{ua}"
    );

    // The three sources carry the same two articles: each is published once.
    let daemon = start(cfg).await;
    let (_, _, body) = get(&format!("http://{}/feed.atom", daemon.local_addr())).await;
    let atom = assert_valid_atom(&body, "http://feeds.test/feed.atom");
    assert_eq!(atom.entries.len(), 2);
    daemon.shutdown().await.expect("shutdown");
}

/// A changed title updates the stored entry in place: same id, new `updated`, no new item.
#[tokio::test]
async fn changed_entry_is_updated_in_place() {
    let origin = Origin::start().await;
    let v1 = rss_feed(&[
        ("a", "Alpha", "Mon, 01 Jan 2024 10:00:00 GMT"),
        ("b", "Beta", "Tue, 02 Jan 2024 10:00:00 GMT"),
    ]);
    origin.set("/f.xml", Route::feed(v1, "application/rss+xml"));
    let url = origin.url("/f.xml");
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), &[("little", &url, "1h")], "");
    app::once(cfg.clone()).await.expect("once");

    let v2 = rss_feed(&[
        ("a", "Alpha, corrected", "Mon, 01 Jan 2024 10:00:00 GMT"),
        ("b", "Beta", "Tue, 02 Jan 2024 10:00:00 GMT"),
    ]);
    origin.set("/f.xml", Route::feed(v2, "application/rss+xml"));
    let reports = app::once(cfg.clone()).await.expect("once");
    assert_eq!(stored(&reports[0]), (0, 1, 1));

    let daemon = start(cfg).await;
    let (_, _, body) = get(&format!("http://{}/feed.atom", daemon.local_addr())).await;
    let atom = assert_valid_atom(&body, "http://feeds.test/feed.atom");
    assert_eq!(atom.entries.len(), 2);
    let alpha = atom
        .entries
        .iter()
        .find(|e| e.title.value.starts_with("Alpha"))
        .expect("alpha");
    assert_eq!(alpha.title.value, "Alpha, corrected");
    let published = alpha.published.expect("published");
    assert!(alpha.updated > published, "updated moved forward");
    let beta = atom
        .entries
        .iter()
        .find(|e| e.title.value == "Beta")
        .expect("beta");
    assert_eq!(
        Some(beta.updated),
        beta.published,
        "an unchanged entry keeps its date"
    );
    daemon.shutdown().await.expect("shutdown");
}

/// Broken, hostile and unreachable sources are recorded; healthy ones still update.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_sources_do_not_stop_the_others() {
    let origin = Origin::start().await;
    origin.set("/good.xml", Route::fixture("large_rss.xml"));
    origin.set("/500", Route::status(500, "oops"));
    origin.set(
        "/garbage",
        Route::feed("this is not xml at all", "application/xml"),
    );
    origin.set(
        "/html",
        Route::feed(
            "<!DOCTYPE html><html><head><title>Blog</title></head><body>hi</body></html>",
            "text/html; charset=utf-8",
        ),
    );
    origin.set(
        "/truncated",
        Route::feed(
            r#"<?xml version="1.0"?><rss version="2.0"><channel><title>x</title><item><title>a"#,
            "application/rss+xml",
        ),
    );
    origin.set("/empty", Route::feed("", "application/rss+xml"));
    origin.set(
        "/slow",
        Route::fixture("large_rss.xml").with_delay(Duration::from_secs(30)),
    );
    // A port that was just free: connection refused.
    let closed = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let closed_url = format!("http://{}/feed", closed.local_addr().expect("addr"));
    drop(closed);

    let urls: Vec<(String, String)> = [
        "good.xml",
        "missing",
        "500",
        "garbage",
        "html",
        "truncated",
        "empty",
        "slow",
    ]
    .iter()
    .map(|p| (p.replace(".xml", ""), origin.url(&format!("/{p}"))))
    .collect();
    let mut sources: Vec<(&str, &str, &str)> = urls
        .iter()
        .map(|(n, u)| (n.as_str(), u.as_str(), "1h"))
        .collect();
    sources.push(("refused", &closed_url, "1h"));
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), &sources, "timeout = \"2s\"");

    let reports = app::once(cfg.clone()).await.expect("once still succeeds");
    let failure = |name: &str| match &reports
        .iter()
        .find(|r| r.source == name)
        .expect("report")
        .outcome
    {
        PollOutcome::Failed { error } => error.clone(),
        other => panic!("{name}: expected a failure, got {other:?}"),
    };
    let error = |name: &str| failure(name).to_string();
    for name in ["missing", "500", "empty", "slow", "refused"] {
        let kind = failure(name);
        assert!(matches!(kind, PollError::Fetch(_)), "{name}: {kind:?}");
    }
    for name in ["garbage", "html", "truncated"] {
        let kind = failure(name);
        assert!(matches!(kind, PollError::Parse(_)), "{name}: {kind:?}");
    }
    assert_eq!(stored(&reports[0]), (25, 0, 0));
    assert_eq!(error("missing"), "HTTP 404 Not Found");
    assert_eq!(error("500"), "HTTP 500 Internal Server Error");
    assert!(
        error("garbage").starts_with("not a feed"),
        "{}",
        error("garbage")
    );
    assert!(error("html").starts_with("not a feed: the server sent an HTML page (text/html"));
    assert!(
        error("truncated").starts_with("cannot parse the feed"),
        "{}",
        error("truncated")
    );
    assert_eq!(error("empty"), "empty response");
    assert!(error("slow").starts_with("timed out"), "{}", error("slow"));
    assert_eq!(
        error("refused"),
        format!(
            "connection refused by {}",
            closed_url
                .trim_start_matches("http://")
                .trim_end_matches("/feed")
        )
    );

    // The failures are visible in /healthz, and the good source is served.
    let daemon = start(cfg).await;
    let base = format!("http://{}", daemon.local_addr());
    let (_, _, health) = get(&format!("{base}/healthz")).await;
    let health: serde_json::Value = serde_json::from_str(&health).expect("json");
    let missing = health["sources"]
        .as_array()
        .expect("array")
        .iter()
        .find(|s| s["name"] == "missing")
        .expect("listed");
    assert_eq!(missing["last_error"], "HTTP 404 Not Found");
    assert_eq!(missing["consecutive_failures"], 1);
    assert_eq!(missing["last_status"], 404);
    // The status page shows each source's state and last error.
    let (_, _, page) = get(&format!("{base}/status")).await;
    assert!(page.contains("HTTP 404 Not Found (1 in a row)"), "{page}");
    assert!(page.contains("<td>failing</td>"));
    let (_, _, body) = get(&format!("{base}/feed.atom")).await;
    assert_eq!(
        assert_valid_atom(&body, "http://feeds.test/feed.atom")
            .entries
            .len(),
        25
    );
    daemon.shutdown().await.expect("shutdown");
}

/// The running daemon polls on its own schedule, new entries appear, and everything survives
/// a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_polls_by_itself_and_the_store_survives_a_restart() {
    let origin = Origin::start().await;
    origin.set(
        "/f.xml",
        Route::feed(
            rss_feed(&[("a", "Alpha", "Mon, 01 Jan 2024 10:00:00 GMT")]),
            "application/rss+xml",
        ),
    );
    let url = origin.url("/f.xml");
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), &[("little", &url, "1s")], "");

    let mut daemon = start(cfg.clone()).await;
    let first = next(&mut daemon.reports, |r| r.source == "little").await;
    assert_eq!(stored(&first), (1, 0, 0));
    // Served (and now cached) with the one entry...
    let base = format!("http://{}", daemon.local_addr());
    let (_, _, one) = get(&format!("{base}/feed.atom")).await;
    assert_eq!(
        assert_valid_atom(&one, "http://feeds.test/feed.atom")
            .entries
            .len(),
        1
    );

    origin.set(
        "/f.xml",
        Route::feed(
            rss_feed(&[
                ("a", "Alpha", "Mon, 01 Jan 2024 10:00:00 GMT"),
                ("b", "Beta", "Tue, 02 Jan 2024 10:00:00 GMT"),
            ]),
            "application/rss+xml",
        ),
    );
    next(
        &mut daemon.reports,
        |r| matches!(r.outcome, PollOutcome::Stored { counts, .. } if counts.new == 1),
    )
    .await;
    // ...and the cached document is dropped once the store changes.
    let (_, _, before) = get(&format!("{base}/feed.atom")).await;
    let before = assert_valid_atom(&before, "http://feeds.test/feed.atom");
    assert_eq!(before.entries.len(), 2);
    assert_eq!(before.entries[0].title.value, "Beta");

    // The polls and requests are counted for Prometheus.
    let etag = reqwest::get(format!("{base}/feed.atom"))
        .await
        .expect("get")
        .headers()["etag"]
        .to_str()
        .expect("ascii")
        .to_string();
    let not_modified = reqwest::Client::new()
        .get(format!("{base}/feed.atom"))
        .header("if-none-match", etag)
        .send()
        .await
        .expect("get");
    assert_eq!(not_modified.status(), 304);
    let (status, ct, metrics) = get(&format!("{base}/metrics")).await;
    assert_eq!(status, 200);
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    let value = |line_start: &str| -> f64 {
        metrics
            .lines()
            .find(|l| l.starts_with(line_start))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{line_start} in {metrics}"))
    };
    assert!(value("tributary_polls_total{result=\"stored\"}") >= 2.0);
    assert_eq!(value("tributary_entries_new_total"), 2.0);
    assert_eq!(value("tributary_entries_stored"), 2.0);
    assert!(value("tributary_feed_requests_total{format=\"atom\",status=\"200\"}") >= 3.0);
    assert_eq!(
        value("tributary_feed_requests_total{format=\"atom\",status=\"304\"}"),
        1.0
    );
    assert!(value("tributary_poll_duration_seconds_count") >= 2.0);
    daemon.shutdown().await.expect("shutdown");

    // Restart with a long interval: what is served comes from the store alone.
    let cfg = config(dir.path(), &[("little", &url, "1h")], "");
    let daemon = start(cfg).await;
    let (_, _, after) = get(&format!("http://{}/feed.atom", daemon.local_addr())).await;
    let after = assert_valid_atom(&after, "http://feeds.test/feed.atom");
    let ids =
        |f: &atom_syndication::Feed| f.entries.iter().map(|e| e.id.clone()).collect::<Vec<_>>();
    assert_eq!(
        ids(&before),
        ids(&after),
        "same entries, same ids after a restart"
    );
    daemon.shutdown().await.expect("shutdown");
}

/// A local file works as a source, and an unchanged file counts as not modified.
#[tokio::test]
async fn file_sources_work_offline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let feed_path = dir.path().join("local feed.xml");
    std::fs::write(&feed_path, support::fixture("small_atom.xml")).expect("write");
    let url = url::Url::from_file_path(&feed_path).expect("file url");
    let cfg = config(dir.path(), &[("local", url.as_str(), "1h")], "");
    let first = app::once(cfg.clone()).await.expect("once");
    assert_eq!(stored(&first[0]), (20, 0, 0));
    let second = app::once(cfg).await.expect("once");
    assert_eq!(second[0].outcome, PollOutcome::NotModified { status: 304 });
}

/// A publisher whose guids change on every fetch, links staying the same: nothing new.
#[tokio::test]
async fn changing_guids_with_stable_links_add_nothing() {
    let origin = Origin::start().await;
    let feed = |generation: u32| {
        format!(
            r#"<rss version="2.0"><channel><title>Flaky</title><link>https://flaky.example/</link><description>d</description>
            <item><guid isPermaLink="false">{generation}-a</guid><title>A</title><link>https://flaky.example/a?utm_source=rss&amp;utm_campaign={generation}</link></item>
            <item><guid isPermaLink="false">{generation}-b</guid><title>B</title><link>https://flaky.example/b</link></item>
            </channel></rss>"#
        )
    };
    origin.set("/f.xml", Route::feed(feed(1), "application/rss+xml"));
    let url = origin.url("/f.xml");
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), &[("flaky", &url, "1h")], "");
    let first = app::once(cfg.clone()).await.expect("once");
    assert_eq!(stored(&first[0]), (2, 0, 0));
    for generation in 2..5 {
        origin.set(
            "/f.xml",
            Route::feed(feed(generation), "application/rss+xml"),
        );
        let again = app::once(cfg.clone()).await.expect("once");
        assert_eq!(stored(&again[0]), (0, 0, 2), "generation {generation}");
        let PollOutcome::Stored { counts, .. } = &again[0].outcome else {
            unreachable!()
        };
        assert_eq!(counts.guid_changes, 2);
    }
    let daemon = start(cfg).await;
    let (_, _, body) = get(&format!("http://{}/feed.atom", daemon.local_addr())).await;
    let atom = assert_valid_atom(&body, "http://feeds.test/feed.atom");
    assert_eq!(atom.entries.len(), 2);
    // Tracking parameters are gone from the published link.
    assert!(
        atom.entries
            .iter()
            .any(|e| e.links[0].href == "https://flaky.example/a")
    );
    daemon.shutdown().await.expect("shutdown");
}

/// The same article from two sources appears once in the combined feed, credited to the
/// source that had it first.
#[tokio::test]
async fn the_same_article_from_two_sources_is_published_once() {
    let origin = Origin::start().await;
    let planet = r#"<rss version="2.0"><channel><title>Planet</title><link>https://planet.example/</link><description>d</description>
        <item><guid>planet-1</guid><title>Shared post</title><link>http://www.blog.example/post?utm_source=planet</link></item>
        <item><guid>planet-2</guid><title>Only on the planet</title><link>https://elsewhere.example/x</link></item>
        </channel></rss>"#;
    let blog = r#"<feed xmlns="http://www.w3.org/2005/Atom"><title>Blog</title><id>urn:blog</id><updated>2024-01-01T00:00:00Z</updated>
        <entry><id>urn:blog:post</id><title>Shared post</title><link href="https://blog.example/post"/><updated>2024-01-01T00:00:00Z</updated></entry>
        <entry><id>urn:blog:other</id><title>Only on the blog</title><link href="https://blog.example/other"/><updated>2024-01-01T00:00:00Z</updated></entry>
        </feed>"#;
    origin.set("/planet.xml", Route::feed(planet, "application/rss+xml"));
    origin.set("/blog.xml", Route::feed(blog, "application/atom+xml"));
    let (planet_url, blog_url) = (origin.url("/planet.xml"), origin.url("/blog.xml"));
    let dir = tempfile::tempdir().expect("tempdir");
    // The blog is polled first: it is credited.
    let blog_only = config(dir.path(), &[("blog", &blog_url, "1h")], "");
    app::once(blog_only).await.expect("once");
    let cfg = config(
        dir.path(),
        &[("blog", &blog_url, "1h"), ("planet", &planet_url, "1h")],
        "",
    );
    let reports = app::once(cfg.clone()).await.expect("once");
    let PollOutcome::Stored { counts, .. } = &reports[1].outcome else {
        panic!("{reports:?}")
    };
    assert_eq!((counts.new, counts.duplicates), (2, 1));

    let daemon = start(cfg).await;
    let (_, _, body) = get(&format!("http://{}/feed.atom", daemon.local_addr())).await;
    let atom = assert_valid_atom(&body, "http://feeds.test/feed.atom");
    let titles: Vec<&str> = atom
        .entries
        .iter()
        .map(|e| e.title.value.as_str())
        .collect();
    assert_eq!(atom.entries.len(), 3, "{titles:?}");
    let shared: Vec<_> = atom
        .entries
        .iter()
        .filter(|e| e.title.value == "Shared post")
        .collect();
    assert_eq!(shared.len(), 1);
    assert_eq!(
        shared[0].source.as_ref().map(|s| s.title.value.as_str()),
        Some("Blog"),
        "credited to the source that had it first"
    );
    daemon.shutdown().await.expect("shutdown");
}

/// What readers use survives republishing: enclosures, categories, authors, comments links,
/// thumbnails, and on every entry where it came from.
#[tokio::test]
async fn enclosures_authors_categories_comments_and_thumbnails_are_kept() {
    let origin = Origin::start().await;
    let feed = r#"<?xml version="1.0"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:media="http://search.yahoo.com/mrss/">
<channel><title>Pod</title><link>https://pod.example/</link><description>d</description>
<item><guid>ep1</guid><title>Episode 1</title><link>https://pod.example/ep1</link>
<description>&lt;p&gt;Show notes &lt;a href="/notes"&gt;here&lt;/a&gt;&lt;/p&gt;</description>
<pubDate>Tue, 05 Mar 2024 10:00:00 EST</pubDate>
<dc:creator>Jane Host</dc:creator><category>Tech</category><category>Talk</category>
<comments>https://pod.example/ep1#comments</comments>
<media:thumbnail url="https://pod.example/ep1.jpg"/>
<enclosure url="https://cdn.pod.example/ep1.mp3" length="12345678" type="audio/mpeg"/>
</item></channel></rss>"#;
    origin.set("/pod.xml", Route::feed(feed, "application/rss+xml"));
    let url = origin.url("/pod.xml");
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), &[("pod", &url, "1h")], "");
    app::once(cfg.clone()).await.expect("once");
    let daemon = start(cfg).await;
    let base = format!("http://{}", daemon.local_addr());

    let (_, _, body) = get(&format!("{base}/feed.atom")).await;
    let atom = assert_valid_atom(&body, "http://feeds.test/feed.atom");
    let e = &atom.entries[0];
    assert_eq!(e.authors[0].name, "Jane Host");
    let terms: Vec<&str> = e.categories.iter().map(|c| c.term.as_str()).collect();
    assert_eq!(terms, ["Tech", "Talk"]);
    let link = |rel: &str| e.links.iter().find(|l| l.rel == rel).expect(rel);
    assert_eq!(link("alternate").href, "https://pod.example/ep1");
    // The comments URL keeps its fragment: only article links are normalised.
    assert_eq!(link("replies").href, "https://pod.example/ep1#comments");
    let enc = link("enclosure");
    assert_eq!(enc.href, "https://cdn.pod.example/ep1.mp3");
    assert_eq!(enc.length.as_deref(), Some("12345678"));
    assert_eq!(enc.mime_type.as_deref(), Some("audio/mpeg"));
    assert_eq!(
        e.extensions["media"]["thumbnail"][0].attrs["url"],
        "https://pod.example/ep1.jpg"
    );
    // Relative links in the content resolve against the entry's link.
    let summary = e.summary.as_ref().expect("summary").value.as_str();
    assert!(
        summary.contains(r#"href="https://pod.example/notes""#),
        "{summary}"
    );
    // Named zones: 10:00 EST is 15:00 UTC.
    assert_eq!(
        e.published.expect("published").to_rfc3339(),
        "2024-03-05T15:00:00+00:00"
    );
    assert_eq!(e.source.as_ref().expect("source").title.value, "Pod");

    let (_, _, body) = get(&format!("{base}/feed.rss")).await;
    let channel = assert_valid_rss(&body, "http://feeds.test/feed.rss");
    let item = &channel.items[0];
    assert_eq!(
        item.comments.as_deref(),
        Some("https://pod.example/ep1#comments")
    );
    let enc = item.enclosure.as_ref().expect("enclosure");
    assert_eq!(
        (enc.length.as_str(), enc.mime_type.as_str()),
        ("12345678", "audio/mpeg")
    );
    assert_eq!(
        item.dublin_core_ext.as_ref().expect("dc").creators,
        ["Jane Host"]
    );
    assert_eq!(item.categories.len(), 2);
    assert_eq!(item.source.as_ref().expect("source").url, url);
    assert_eq!(
        item.extensions["media"]["thumbnail"][0].attrs["url"],
        "https://pod.example/ep1.jpg"
    );
    daemon.shutdown().await.expect("shutdown");
}

/// Positional guids (a feed that numbers its items) with an edited, re-dated entry: nothing
/// lost, no id published twice.
#[tokio::test]
async fn positional_guids_lose_nothing_and_duplicate_nothing() {
    let origin = Origin::start().await;
    let feed = |items: &[(&str, &str, &str, &str)]| {
        let mut s = String::from(
            r#"<rss version="2.0"><channel><title>P</title><link>https://p.example/</link><description>d</description>"#,
        );
        for (guid, link, title, date) in items {
            s.push_str(&format!(
                "<item><guid isPermaLink=\"false\">{guid}</guid><link>https://p.example/{link}</link><title>{title}</title><pubDate>{date}</pubDate></item>"
            ));
        }
        s.push_str("</channel></rss>");
        s
    };
    let url = origin.url("/p.xml");
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), &[("p", &url, "1h")], "");
    let polls = [
        feed(&[("1", "a", "A", "Sat, 06 Jan 2024 10:00:00 GMT")]),
        feed(&[
            ("1", "b", "B", "Wed, 10 Jan 2024 10:00:00 GMT"),
            ("2", "a", "A edited", "Sat, 06 Jan 2024 10:00:00 GMT"),
        ]),
        feed(&[
            ("1", "b", "B", "Wed, 10 Jan 2024 10:00:00 GMT"),
            ("2", "a", "A edited again", "Sun, 07 Jan 2024 10:00:00 GMT"),
        ]),
    ];
    for body in polls {
        origin.set("/p.xml", Route::feed(body, "application/rss+xml"));
        app::once(cfg.clone()).await.expect("once");
    }
    let daemon = start(cfg).await;
    let (_, _, body) = get(&format!("http://{}/feed.atom", daemon.local_addr())).await;
    let atom = assert_valid_atom(&body, "http://feeds.test/feed.atom");
    let titles: Vec<&str> = atom
        .entries
        .iter()
        .map(|e| e.title.value.as_str())
        .collect();
    assert!(titles.contains(&"B"), "{titles:?}");
    assert!(titles.contains(&"A edited again"), "{titles:?}");
    assert_eq!(titles.len(), 2, "{titles:?}");
    daemon.shutdown().await.expect("shutdown");
}
