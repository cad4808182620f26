//! Full text, the address guard, per-source filters and light transforms, through the
//! real daemon against real local origins.

mod support;

use support::is_stored;

use support::health;

use support::source_toml;

use support::{Item, Rss};

use support::{next, start};

use support::{Origin, RawOrigin, RawRoute, Route, config_prelude, fixture, get};
use tributary::ingest::poll::PollOutcome;

/// A feed whose items (guid, title, link, teaser) are given.
fn rss(items: &[(&str, &str, &str, &str)]) -> String {
    Rss::new("Riverside Gazette", "https://gazette.example/")
        .items(items.iter().map(|(guid, title, link, teaser)| {
            Item::new(*guid)
                .title(*title)
                .link(*link)
                .description(*teaser)
                .pub_date("Tue, 03 Mar 2026 10:00:00 GMT")
                .category(*guid)
        }))
        .xml()
}

/// The published Atom feed's entries: (title, content, summary).
async fn published(base: &str, path: &str) -> Vec<(String, String, String)> {
    let (status, _, body) = get(&format!("{base}{path}")).await;
    assert_eq!(status, 200);
    let feed = atom_syndication::Feed::read_from(body.as_bytes()).expect("atom");
    feed.entries
        .iter()
        .map(|e| {
            (
                e.title.value.clone(),
                e.content
                    .as_ref()
                    .and_then(|c| c.value.clone())
                    .unwrap_or_default(),
                e.summary
                    .as_ref()
                    .map(|s| s.value.clone())
                    .unwrap_or_default(),
            )
        })
        .collect()
}

/// The article page in realistic site chrome: the published content is the article, with
/// none of the chrome; the feed's teaser stays as the summary; the page is fetched once,
/// not again on later polls nor after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_text_replaces_the_teaser_with_the_article_once() {
    let origin = Origin::start().await;
    origin.set(
        "/2026/mill",
        Route::feed(fixture("pages/article.html"), "text/html; charset=utf-8"),
    );
    origin.set("/2026/missing", Route::status(404, "gone"));
    let feed = rss(&[
        (
            "mill",
            "How the old mill was saved",
            &origin.url("/2026/mill"),
            "Neighbours bought the mill...",
        ),
        (
            "missing",
            "A page that is gone",
            &origin.url("/2026/missing"),
            "Only the teaser",
        ),
    ]);
    origin.set("/feed", Route::feed(feed, "application/rss+xml"));
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "{}{}",
        config_prelude(""),
        source_toml("gazette", &origin.url("/feed"), "1s", "full_text = true")
    );
    let cfg = support::config_raw(dir.path(), &text);
    let mut daemon = start(cfg.clone()).await;
    let base = format!("http://{}", daemon.local_addr());
    let mut reports = daemon.take_reports();
    let first = next(&mut reports, is_stored).await;
    let ft = first.full_text.expect("a full-text pass");
    assert_eq!((ft.fetched, ft.failed, ft.refused), (1, 1, 0));

    let entries = published(&base, "/feed.atom").await;
    let (_, content, summary) = entries
        .iter()
        .find(|(t, _, _)| t == "How the old mill was saved")
        .expect("the mill entry");
    for wanted in [
        "For forty years the old water mill",
        "A wheel that turns again",
        "forty-eight paddles",
        "href=\"http://127.0.0.1",
        "/places/vasteras\"",
        "src=\"http://127.0.0.1",
        "/images/mill-wheel.jpg\"",
        "We did not save a building",
        "the footbridge that once connected",
    ] {
        assert!(
            content.contains(wanted),
            "{wanted:?} missing from the article: {content}"
        );
    }
    for chrome in [
        "Back to top",
        "Go to home page",
        "Skip to content",
        "Share on",
        "Email this",
        "We use cookies",
        "Most read",
        "Related stories",
        "First!!!",
        "Post comment",
        "Advertisement",
        "About the Gazette",
        "All rights reserved",
        "gtag",
        "<script",
        "Search the Gazette",
        ">Opinion<",
    ] {
        assert!(
            !content.contains(chrome),
            "{chrome:?} left in the article: {content}"
        );
    }
    assert_eq!(
        summary, "Neighbours bought the mill...",
        "the feed's own summary stays"
    );
    let (_, content, summary) = entries
        .iter()
        .find(|(t, _, _)| t == "A page that is gone")
        .expect("the other entry");
    assert_eq!(
        (content.as_str(), summary.as_str()),
        ("", "Only the teaser"),
        "falls back to what the feed gave"
    );
    let h = health(&base).await;
    let s = &h["sources"][0];
    assert_eq!(s["full_text"]["fetched"], 1);
    assert_eq!(s["full_text"]["failed"], 1);
    assert!(
        s["full_text"]["last_failure"]
            .as_str()
            .is_some_and(|w| w.contains("/2026/missing") && w.contains("HTTP 404")),
        "{s}"
    );

    // Later polls do not fetch the pages again...
    next(&mut reports, |r| {
        r.source == "gazette" && r.full_text.is_some()
    })
    .await;
    daemon.shutdown().await.expect("shutdown");
    assert_eq!(origin.requests("/2026/mill").len(), 1);
    assert_eq!(origin.requests("/2026/missing").len(), 1);
    // ...nor does a restart.
    let mut daemon = start(cfg).await;
    let mut reports = daemon.take_reports();
    let again = next(&mut reports, |r| r.source == "gazette").await;
    assert_eq!(again.full_text.map(|f| f.tried()), Some(0));
    daemon.shutdown().await.expect("shutdown");
    assert_eq!(origin.requests("/2026/mill").len(), 1);
}

/// Article links to other loopback addresses than the source's, or to another port of its
/// host, are refused, directly or by a redirect from the source's own origin; refusals show
/// in status; `allow_networks` lets a network through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn article_pages_on_other_internal_hosts_are_never_fetched() {
    let origin = Origin::start().await; // 127.0.0.1: the source's host
    let inside = Origin::start_on([127, 0, 0, 2].into()).await; // "the network inside"
    inside.set(
        "/admin",
        Route::feed(fixture("pages/article.html"), "text/html"),
    );
    // The source's own origin redirects to the internal host.
    origin.set("/go", Route::redirect(302, &inside.url("/admin")));
    // Another port of the source's host is not its origin.
    let other_port = RawOrigin::start().await;
    other_port.set(
        "/page",
        RawRoute::feed(fixture("pages/article.html"), "text/html"),
    );
    let feed = rss(&[
        (
            "direct",
            "Internal page",
            &inside.url("/admin"),
            "teaser one",
        ),
        ("hop", "Redirected page", &origin.url("/go"), "teaser two"),
        (
            "port",
            "Another port",
            &other_port.url("/page"),
            "teaser three",
        ),
    ]);
    origin.set("/feed", Route::feed(feed, "application/rss+xml"));
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "{}{}",
        config_prelude(""),
        source_toml("s", &origin.url("/feed"), "1s", "full_text = true")
    );
    let mut daemon = start(support::config_raw(dir.path(), &text)).await;
    let base = format!("http://{}", daemon.local_addr());
    let mut reports = daemon.take_reports();
    let r = next(&mut reports, is_stored).await;
    let ft = r.full_text.expect("a full-text pass");
    assert_eq!((ft.fetched, ft.refused), (0, 3), "{ft:?}");
    assert!(inside.requests("/admin").is_empty(), "never fetched");
    assert!(other_port.requests("/page").is_empty(), "never fetched");
    assert_eq!(
        origin.requests("/go").len(),
        1,
        "the same-origin hop was fetched, not its target"
    );
    let entries = published(&base, "/feed.atom").await;
    let summaries: Vec<&str> = entries.iter().map(|(_, _, s)| s.as_str()).collect();
    assert!(summaries.contains(&"teaser one"), "{entries:?}");
    assert!(summaries.contains(&"teaser two"), "{entries:?}");
    assert!(
        !entries.iter().any(|(_, c, _)| c.contains("old water mill")),
        "nothing from the internal page is republished"
    );
    let h = health(&base).await;
    let f = &h["sources"][0]["full_text"];
    assert_eq!(f["refused"], 3);
    let refusal = f["last_refusal"].as_str().expect("a refusal");
    assert!(
        refusal.contains("127.0.0.2") && refusal.contains("loopback"),
        "{refusal}"
    );
    let (_, _, metrics) = get(&format!("{base}/metrics")).await;
    assert!(
        metrics.contains("tributary_full_text_pages_total{result=\"refused\"} 3"),
        "{metrics}"
    );
    daemon.shutdown().await.expect("shutdown");

    // Allowed explicitly: fetched.
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "{}{}",
        config_prelude("allow_networks = [\"127.0.0.2/32\", \"127.0.0.1/32\"]"),
        source_toml("s", &origin.url("/feed"), "1s", "full_text = true")
    );
    let mut daemon = start(support::config_raw(dir.path(), &text)).await;
    let mut reports = daemon.take_reports();
    let r = next(&mut reports, is_stored).await;
    assert_eq!(r.full_text.map(|f| f.fetched), Some(3));
    assert_eq!(inside.requests("/admin").len(), 2);
    assert_eq!(other_port.requests("/page").len(), 1);
    daemon.shutdown().await.expect("shutdown");
}

/// Include, exclude, both (on any field or a named one), counted; a bad pattern in a
/// reload is refused with its position and the running rules stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_source_filters_keep_entries_out_of_every_output() {
    let origin = Origin::start().await;
    let feed = rss(&[
        ("a", "Rust 2.0 released", "https://n.example/a", "big news"),
        ("b", "Football results", "https://n.example/b", "goals"),
        (
            "c",
            "Sponsored: Rust hosting",
            "https://n.example/c",
            "buy now",
        ),
        ("d", "Weather", "https://n.example/d", "rain about Rust"),
    ]);
    origin.set("/f", Route::feed(feed, "application/rss+xml"));
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("feeds.toml");
    let text = |rules: &str| {
        format!(
            "{}{}{}{}",
            config_prelude(""),
            source_toml("inc", &origin.url("/f?1"), "1h", "include = ['(?i)rust']"),
            source_toml(
                "exc",
                &origin.url("/f?2"),
                "1h",
                "exclude = [{ field = \"title\", pattern = '^Sponsored' }]"
            ),
            source_toml("both", &origin.url("/f?3"), "1h", rules)
        )
    };
    let both = "include = [{ field = \"title\", pattern = '(?i)rust' }]\nexclude = [{ field = \"category\", pattern = '^c$' }]";
    let mut daemon = start(support::config_raw(dir.path(), &text(both))).await;
    let base = format!("http://{}", daemon.local_addr());
    let mut reports = daemon.take_reports();
    let mut seen = std::collections::HashSet::new();
    while seen.len() < 3 {
        seen.insert(next(&mut reports, is_stored).await.source);
    }
    let titles = |entries: Vec<(String, String, String)>| -> Vec<String> {
        let mut t: Vec<String> = entries.into_iter().map(|(t, _, _)| t).collect();
        t.sort();
        t
    };
    assert_eq!(
        titles(published(&base, "/sources/inc.atom").await),
        ["Rust 2.0 released", "Sponsored: Rust hosting", "Weather"],
        "include matches any field (the teaser of 'Weather' names Rust)"
    );
    assert_eq!(
        titles(published(&base, "/sources/exc.atom").await),
        ["Football results", "Rust 2.0 released", "Weather"]
    );
    assert_eq!(
        titles(published(&base, "/sources/both.atom").await),
        ["Rust 2.0 released"]
    );
    let h = health(&base).await;
    let filtered: Vec<u64> = (0..3)
        .map(|i| h["sources"][i]["filtered"].as_u64().expect("count"))
        .collect();
    assert_eq!(filtered, [1, 1, 3]);
    let (_, _, metrics) = get(&format!("{base}/metrics")).await;
    assert!(
        metrics.contains("tributary_entries_filtered_total 5"),
        "{metrics}"
    );

    // A bad pattern: refused with its position; the running rules stay.
    std::fs::write(&path, text("include = ['(?i)rust(']")).expect("write");
    let err = daemon.reload().await.expect_err("refused");
    assert!(
        matches!(err, tributary::daemon::reload::ReloadError::Config(_)),
        "{err:?}"
    );
    let err = err.to_string();
    assert!(
        err.contains("feeds.toml:")
            && err.contains("include pattern \"(?i)rust(\" is not a valid regular expression"),
        "{err}"
    );
    assert_eq!(
        daemon.config().sources[2].rules.include[0].pattern.as_str(),
        "(?i)rust"
    );
    daemon.shutdown().await.expect("shutdown");
}

/// A title template, and a cap on the new entries one poll may add (the newest kept, the
/// rest skipped for good).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn title_template_and_new_entry_cap() {
    let origin = Origin::start().await;
    let mut items = String::new();
    for i in 0..10 {
        items.push_str(&format!(
            "<item><guid>g{i}</guid><title>Post {i}</title><link>https://b.example/{i}</link><pubDate>Tue, 03 Mar 2026 10:{i:02}:00 GMT</pubDate><author>ann@b.example (Ann)</author></item>"
        ));
    }
    let feed = format!(
        r#"<?xml version="1.0"?><rss version="2.0"><channel><title>Ann's blog</title><link>https://b.example/</link><description>d</description>{items}</channel></rss>"#
    );
    origin.set("/f", Route::feed(feed, "application/rss+xml"));
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "{}{}",
        config_prelude(""),
        source_toml(
            "ann",
            &origin.url("/f"),
            "1s",
            "title_template = \"[{source}] {title} by {author}\"\nmax_new_per_poll = 3"
        )
    );
    let mut daemon = start(support::config_raw(dir.path(), &text)).await;
    let base = format!("http://{}", daemon.local_addr());
    let mut reports = daemon.take_reports();
    let r = next(&mut reports, is_stored).await;
    let PollOutcome::Stored { counts, .. } = r.outcome else {
        unreachable!()
    };
    assert_eq!((counts.new, counts.capped), (3, 7));
    let titles: Vec<String> = published(&base, "/feed.atom")
        .await
        .into_iter()
        .map(|(t, _, _)| t)
        .collect();
    assert_eq!(
        titles,
        [
            "[Ann's blog] Post 9 by Ann",
            "[Ann's blog] Post 8 by Ann",
            "[Ann's blog] Post 7 by Ann"
        ]
    );
    // The next poll adds none of the skipped ones.
    let r = next(&mut reports, |r| is_stored(r) && r.source == "ann").await;
    let PollOutcome::Stored { counts, .. } = r.outcome else {
        unreachable!()
    };
    assert_eq!(counts.new, 0, "{counts:?}");
    let h = health(&base).await;
    assert_eq!(h["sources"][0]["capped"], 7);
    daemon.shutdown().await.expect("shutdown");
}
