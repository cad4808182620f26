//! Page sources (`kind = "html"` and `"json"`) through the real daemon: a real origin serves
//! listing pages and API documents, the daemon polls them into a temp store, and its
//! published feeds are read over HTTP. The entries go through the same pipeline as feed
//! entries: identity, dedup, rules, title templates, full text, every output.

mod support;

use support::{Origin, Route, config_prelude, config_raw, fixture, get, next, source_toml, start};
use tributary::ingest::poll::{PollOutcome, PollReport};

/// A news section: three stories, one without a date, one excluded by a rule.
fn section(origin: &Origin, extra_story: bool) -> String {
    let extra = if extra_story {
        r#"<article class="story"><h2><a href="/news/late">A late story</a></h2>
        <p>Arrived on the second poll.</p></article>"#
    } else {
        ""
    };
    format!(
        r#"<!DOCTYPE html><html><head><meta charset="utf-8"><title>World | The Example</title></head>
<body><nav><a href="/">Home</a> <a href="/world">World</a> <a href="/sport">Sport</a></nav>
<main>{extra}
<article class="story"><h2><a href="{mill}">How the old mill was saved</a></h2>
<time datetime="2026-11-20T08:30:00Z">20 November</time><p>Neighbours bought the mill.</p></article>
<article class="story"><h2><a href="/news/bridge">The bridge reopens</a></h2>
<p>Traffic flows again over the Kemi bridge.</p></article>
<article class="story"><h2><a href="/news/ads">Sponsored: buy a boat</a></h2>
<time datetime="2026-11-19T10:00:00Z">19 November</time><p>Advertisement.</p></article>
</main><footer><a href="/about">About</a></footer></body></html>"#,
        mill = origin.url("/2026/mill"),
    )
}

/// The published Atom feed at `path`: (title, link, published) per entry, newest first.
async fn atom_entries(base: &str, path: &str) -> Vec<(String, String, Option<String>)> {
    let (status, _, body) = get(&format!("{base}{path}")).await;
    assert_eq!(status, 200, "{body}");
    let feed = support::assert_valid_atom(&body, &format!("http://feeds.test{path}"));
    feed.entries
        .iter()
        .map(|e| {
            (
                e.title.value.clone(),
                e.links.first().map(|l| l.href.clone()).unwrap_or_default(),
                e.published.map(|p| p.to_rfc3339()),
            )
        })
        .collect()
}

fn stored_new(r: &PollReport) -> Option<usize> {
    match &r.outcome {
        PollOutcome::Stored { counts, .. } => Some(counts.new),
        _ => None,
    }
}

/// A section page becomes a feed: defaults find title, link, date and summary; a rule
/// keeps the advert out; the title template applies; full text replaces the teaser with
/// the article; a dateless story is dated when first seen and keeps that date; the
/// combined Atom, RSS and JSON outputs carry the entries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_section_page_flows_through_the_whole_pipeline() {
    let origin = Origin::start().await;
    origin.set(
        "/2026/mill",
        Route::feed(fixture("pages/article.html"), "text/html; charset=utf-8"),
    );
    origin.set("/news/bridge", Route::status(404, "gone"));
    origin.set(
        "/world",
        Route::feed(section(&origin, false), "text/html; charset=utf-8"),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "{}{}",
        config_prelude(""),
        source_toml(
            "world",
            &origin.url("/world"),
            "1s",
            "kind = \"html\"\nfull_text = true\ntitle_template = \"[World] {title}\"\n\
             exclude = [{ field = \"title\", pattern = \"^Sponsored\" }]\n[source.select]\nitems = \"article.story\"\n"
        )
    );
    let cfg = config_raw(dir.path(), &text);
    let mut daemon = start(cfg).await;
    let base = format!("http://{}", daemon.local_addr());
    let mut reports = daemon.take_reports();
    let first = next(&mut reports, |r| r.source == "world").await;
    assert_eq!(stored_new(&first), Some(2), "{first:?}");
    let ft = first.full_text.expect("a full-text pass");
    assert_eq!((ft.fetched, ft.failed), (1, 1));

    let entries = atom_entries(&base, "/sources/world.atom").await;
    let titles: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        titles,
        [
            "[World] The bridge reopens",
            "[World] How the old mill was saved"
        ],
        "the dateless story, dated when first seen, is the newest"
    );
    assert_eq!(entries[0].1, origin.url("/news/bridge"));
    assert_eq!(entries[1].1, origin.url("/2026/mill"));
    assert_eq!(
        entries[1].2.as_deref(),
        Some("2026-11-20T08:30:00+00:00"),
        "the date from <time datetime>"
    );
    let bridge_date = entries[0]
        .2
        .clone()
        .expect("a dateless entry is dated when seen");

    // Full text: the mill's article replaced the teaser.
    let (_, _, json) = get(&format!("{base}/sources/world.json")).await;
    let doc: serde_json::Value = serde_json::from_str(&json).expect("JSON Feed");
    let mill = doc["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["url"] == origin.url("/2026/mill").as_str())
        .expect("the mill in the JSON Feed");
    let html = mill["content_html"].as_str().expect("content");
    assert!(html.contains("A wheel that turns again"), "{html}");
    assert_eq!(mill["summary"], "Neighbours bought the mill.");
    let (status, _, rss) = get(&format!("{base}/feed.rss")).await;
    assert_eq!(status, 200);
    let channel = support::assert_valid_rss(&rss, "http://feeds.test/feed.rss");
    assert_eq!(channel.items.len(), 2);
    // The page is no feed: readers are pointed at its feed here.
    let feed_here = "http://feeds.test/sources/world.atom";
    for item in &channel.items {
        assert_eq!(item.source().map(|s| s.url()), Some(feed_here));
    }
    let (_, _, opml) = get(&format!("{base}/opml")).await;
    assert!(opml.contains(&format!("xmlUrl=\"{feed_here}\"")), "{opml}");

    // A second poll: one new story at the top; the others unchanged, the dateless one
    // keeps the date it was first seen with.
    origin.set(
        "/world",
        Route::feed(section(&origin, true), "text/html; charset=utf-8"),
    );
    let second = next(&mut reports, |r| {
        r.source == "world" && stored_new(r).is_some_and(|n| n > 0)
    })
    .await;
    assert_eq!(stored_new(&second), Some(1), "{second:?}");
    let entries = atom_entries(&base, "/sources/world.atom").await;
    let bridge = entries
        .iter()
        .find(|e| e.0 == "[World] The bridge reopens")
        .expect("bridge");
    assert_eq!(bridge.2.as_deref(), Some(bridge_date.as_str()));
    assert_eq!(entries.len(), 3);
    daemon.shutdown().await.expect("clean stop");
}

/// A changelog on one page: each version is an entry, identified by its link with the
/// fragment (`page#v1.2.0`), so versions on one page are distinct entries, and a new
/// version on a later poll is one new entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changelog_gives_one_entry_per_version_by_fragment() {
    let page = |versions: &[(&str, &str)]| {
        let mut html = String::from(
            "<!DOCTYPE html><html><head><title>Changelog</title></head><body><main><h1>Changelog</h1>",
        );
        for (v, date) in versions {
            html.push_str(&format!(
                "<h2 id=\"v{v}\"><a href=\"#v{v}\">{v}</a> ({date})</h2><ul><li>Fixes for {v}.</li></ul>"
            ));
        }
        html.push_str("</main></body></html>");
        html
    };
    let origin = Origin::start().await;
    let v2 = [("1.2.0", "2026-11-02"), ("1.1.0", "2026-10-01")];
    origin.set(
        "/changelog",
        Route::feed(page(&v2), "text/html; charset=utf-8"),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "{}{}",
        config_prelude(""),
        source_toml(
            "changes",
            &origin.url("/changelog"),
            "1s",
            "kind = \"html\"\n[source.select]\nitems = \"main > h2\"\ndate = \"h2\"\nsummary = \"li\"\n"
        )
    );
    let mut daemon = start(config_raw(dir.path(), &text)).await;
    let base = format!("http://{}", daemon.local_addr());
    let mut reports = daemon.take_reports();
    let first = next(&mut reports, |r| r.source == "changes").await;
    assert_eq!(stored_new(&first), Some(2), "{first:?}");
    let v3 = [("1.3.0", "2026-11-20"), v2[0], v2[1]];
    origin.set(
        "/changelog",
        Route::feed(page(&v3), "text/html; charset=utf-8"),
    );
    let second = next(&mut reports, |r| {
        r.source == "changes" && stored_new(r).is_some_and(|n| n > 0)
    })
    .await;
    assert_eq!(stored_new(&second), Some(1), "{second:?}");
    let entries = atom_entries(&base, "/sources/changes.atom").await;
    let got: Vec<(&str, &str, Option<&str>)> = entries
        .iter()
        .map(|(t, l, d)| (t.as_str(), l.as_str(), d.as_deref()))
        .collect();
    let link = |v: &str| origin.url(&format!("/changelog#v{v}"));
    assert_eq!(
        got,
        [
            (
                "1.3.0 (2026-11-20)",
                link("1.3.0").as_str(),
                Some("2026-11-20T00:00:00+00:00")
            ),
            (
                "1.2.0 (2026-11-02)",
                link("1.2.0").as_str(),
                Some("2026-11-02T00:00:00+00:00")
            ),
            (
                "1.1.0 (2026-10-01)",
                link("1.1.0").as_str(),
                Some("2026-10-01T00:00:00+00:00")
            ),
        ]
    );
    daemon.shutdown().await.expect("clean stop");
}

/// Editing a page source's selectors makes the running daemon read the page again at once,
/// without a conditional request (the server would answer 304 to the unchanged page, and
/// the new selectors would wait for the page to change).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_selectors_read_the_page_again_unconditionally() {
    let origin = Origin::start().await;
    let page = r#"<html><body><article><h2><a href="/a">Headline A</a></h2><h3>Kicker A</h3></article>
        <article><h2><a href="/b">Headline B</a></h2><h3>Kicker B</h3></article></body></html>"#;
    origin.set(
        "/page",
        Route::feed(page, "text/html; charset=utf-8").with_etag("\"v1\""),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let config = |title: &str| {
        format!(
            "{}{}",
            config_prelude(""),
            source_toml(
                "site",
                &origin.url("/page"),
                "1h",
                &format!("kind = \"html\"\n[source.select]\nitems = \"article\"\n{title}")
            )
        )
    };
    let mut daemon = start(config_raw(dir.path(), &config(""))).await;
    let base = format!("http://{}", daemon.local_addr());
    let mut reports = daemon.take_reports();
    let first = next(&mut reports, |r| r.source == "site").await;
    assert_eq!(stored_new(&first), Some(2), "{first:?}");

    std::fs::write(dir.path().join("feeds.toml"), config("title = \"h3\"\n")).expect("edit");
    daemon.reload().await.expect("reload");
    let second = next(&mut reports, |r| r.source == "site").await;
    match &second.outcome {
        PollOutcome::Stored { status, counts } => {
            assert_eq!(
                (*status, counts.new, counts.updated),
                (200, 0, 2),
                "{second:?}"
            );
        }
        other => panic!("expected the page read again, got {other:?}"),
    }
    let requests = origin.requests("/page");
    assert_eq!(requests.len(), 2);
    assert!(
        !requests[1].headers.contains_key("if-none-match"),
        "the page was asked for whole"
    );
    let titles: Vec<String> = atom_entries(&base, "/sources/site.atom")
        .await
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert!(titles.contains(&"Kicker A".to_string()), "{titles:?}");
    daemon.shutdown().await.expect("clean stop");
}
