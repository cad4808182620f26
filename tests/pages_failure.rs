//! Page sources when the page changes under them: a redesign that `items` no longer
//! matches is a failed poll, visible in reports, `/healthz` and `/metrics`, and the stored
//! entries stay; a field selector that misses is a warning; conditional GET works as for
//! feeds, and a changed selector reads the page again even when the server says it did not
//! change.

mod support;

use support::{
    Origin, Route, config_prelude, config_raw, get, health, next, once, source_toml, start,
};
use tributary::ingest::poll::{PollOutcome, PollReport};
use tributary::model::PollCounts;

/// A section page with `n` stories, each `<article class="story">` with a heading link, a
/// kicker and a `<time>`.
fn section(n: usize) -> String {
    let stories: String = (0..n)
        .map(|i| {
            format!(
                r#"<article class="story"><h2><a href="/news/{i}">Story {i}</a></h2>
<p class="kicker">Kicker {i}</p><time datetime="2026-11-2{i}T08:00:00Z">2{i} Nov</time>
<p>Teaser {i}.</p></article>
"#
            )
        })
        .collect();
    format!(
        "<!DOCTYPE html><html><head><meta charset=utf-8><title>Section</title></head>\
         <body><main>{stories}</main></body></html>"
    )
}

/// The same site after a redesign: the stories are `<div class="card">`s now.
const REDESIGNED: &str = r#"<!DOCTYPE html><html><head><meta charset=utf-8><title>Section</title></head>
<body><main><div class="card"><h3><a href="/n/a">A new look</a></h3></div>
<div class="card"><h3><a href="/n/b">Another</a></h3></div></main></body></html>"#;

fn html(body: impl Into<Vec<u8>>) -> Route {
    Route::feed(body, "text/html; charset=utf-8")
}

fn counts(r: &PollReport) -> Option<PollCounts> {
    match &r.outcome {
        PollOutcome::Stored { counts, .. } => Some(*counts),
        _ => None,
    }
}

/// The value of the metric line starting with `name` (labels included).
fn metric(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} in {metrics}"))
}

/// A redesign on a later poll: `items` matches nothing. The poll fails with a message that
/// names the selector; `/healthz` shows the source failing with it, `/metrics` counts a
/// failed poll, and the entries of the first poll are still published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_matching_nothing_later_is_a_visible_failure_and_entries_stay() {
    let origin = Origin::start().await;
    origin.set("/section", html(section(3)));
    let dir = tempfile::tempdir().expect("tempdir");
    let text = config_prelude("")
        + &source_toml(
            "section",
            &origin.url("/section"),
            "1s",
            "kind = \"html\"\n[source.select]\nitems = \"article.story\"\n",
        );
    let mut daemon = start(config_raw(dir.path(), &text)).await;
    let base = format!("http://{}", daemon.local_addr());
    let mut reports = daemon.take_reports();
    let first = next(&mut reports, |r| r.source == "section").await;
    assert_eq!(counts(&first).map(|c| c.new), Some(3), "{first:?}");

    origin.set("/section", html(REDESIGNED));
    let failed = next(&mut reports, |r| r.source == "section" && r.is_failure()).await;
    let PollOutcome::Failed { error } = &failed.outcome else {
        unreachable!("a failure")
    };
    let message = error.to_string();
    assert!(
        message.contains("selector `items` (article.story) matched nothing on the page"),
        "{message}"
    );

    let h = health(&base).await;
    let s = h["sources"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == "section"))
        .expect("the source in /healthz");
    assert_eq!(s["state"], "failing", "{s:#}");
    assert!(s["consecutive_failures"].as_u64() >= Some(1), "{s:#}");
    assert!(
        s["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("selector `items` (article.story) matched nothing")),
        "{s:#}"
    );
    assert_eq!(s["entries"], 3, "{s:#}");

    let (status, _, metrics) = get(&format!("{base}/metrics")).await;
    assert_eq!(status, 200);
    assert!(metric(&metrics, "tributary_polls_total{result=\"failed\"}") >= 1.0);
    assert!(metric(&metrics, "tributary_polls_total{result=\"stored\"}") >= 1.0);

    let (status, _, xml) = get(&format!("{base}/sources/section.atom")).await;
    assert_eq!(status, 200, "{xml}");
    let atom = support::assert_valid_atom(&xml, "http://feeds.test/sources/section.atom");
    let mut titles: Vec<&str> = atom
        .entries
        .iter()
        .map(|e| e.title.value.as_str())
        .collect();
    titles.sort_unstable();
    assert_eq!(titles, ["Story 0", "Story 1", "Story 2"]);
    daemon.shutdown().await.expect("clean stop");
}

/// A field selector that matches nothing is a warning, not a failure: the poll stores the
/// entries, and `/healthz` shows the source ok with a `last_warning` naming the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_field_matching_nothing_is_a_warning() {
    let origin = Origin::start().await;
    origin.set("/section", html(section(3)));
    let dir = tempfile::tempdir().expect("tempdir");
    let text = config_prelude("")
        + &source_toml(
            "section",
            &origin.url("/section"),
            "1h",
            "kind = \"html\"\n[source.select]\nitems = \"article.story\"\n\
             author = \"span.byline\"\n",
        );
    let cfg = config_raw(dir.path(), &text);
    let reports = once(&cfg).await;
    assert_eq!(counts(&reports[0]).map(|c| c.new), Some(3), "{reports:?}");

    let daemon = start(cfg).await;
    let base = format!("http://{}", daemon.local_addr());
    let h = health(&base).await;
    let s = &h["sources"][0];
    assert_eq!(s["state"], "ok", "{s:#}");
    assert!(s["last_error"].is_null(), "{s:#}");
    assert_eq!(
        s["last_warning"], "selector `author` (span.byline) matched nothing in 3 of 3 items",
        "{s:#}"
    );
    daemon.shutdown().await.expect("clean stop");
}

/// Conditional GET: the second poll sends the page's ETag and gets 304. A changed selector
/// (the same store) must read the page again: the next poll sends no `If-None-Match`, gets
/// the page (200) and stores what the new selector reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_get_and_a_changed_selector_reads_the_page_again() {
    let origin = Origin::start().await;
    origin.set("/section", html(section(2)).with_etag("\"v1\""));
    let dir = tempfile::tempdir().expect("tempdir");
    let config = |select: &str| {
        let text = config_prelude("")
            + &source_toml(
                "section",
                &origin.url("/section"),
                "1h",
                &format!("kind = \"html\"\n[source.select]\nitems = \"article.story\"\n{select}"),
            );
        config_raw(dir.path(), &text)
    };
    let cfg = config("");
    let first = once(&cfg).await;
    assert_eq!(counts(&first[0]).map(|c| c.new), Some(2), "{first:?}");
    let second = once(&cfg).await;
    assert_eq!(
        second[0].outcome,
        PollOutcome::NotModified { status: 304 },
        "{second:?}"
    );
    let seen = origin.requests("/section");
    assert_eq!(seen.len(), 2);
    assert!(seen[0].headers.get("if-none-match").is_none());
    assert_eq!(
        seen[1]
            .headers
            .get("if-none-match")
            .and_then(|v| v.to_str().ok()),
        Some("\"v1\"")
    );

    // The title now from the kicker: the same entries (same links), their titles changed.
    let cfg = config("title = \"p.kicker\"\n");
    let third = once(&cfg).await;
    let seen = origin.requests("/section");
    assert_eq!(seen.len(), 3);
    assert!(
        seen[2].headers.get("if-none-match").is_none(),
        "{:?}",
        seen[2].headers
    );
    assert!(
        matches!(third[0].outcome, PollOutcome::Stored { status: 200, .. }),
        "{third:?}"
    );
    assert_eq!(
        counts(&third[0]),
        Some(PollCounts {
            updated: 2,
            ..PollCounts::default()
        }),
        "{third:?}"
    );
    let daemon = start(cfg.clone()).await;
    let base = format!("http://{}", daemon.local_addr());
    let (_, _, json) = get(&format!("{base}/sources/section.json")).await;
    let doc: serde_json::Value = serde_json::from_str(&json).expect("a JSON Feed");
    let mut titles: Vec<&str> = doc["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["title"].as_str())
        .collect();
    titles.sort_unstable();
    assert_eq!(titles, ["Kicker 0", "Kicker 1"]);
    // And with the new reader stored, the page's ETag is used again.
    daemon.shutdown().await.expect("clean stop");
    let fourth = once(&cfg).await;
    assert_eq!(fourth[0].outcome, PollOutcome::NotModified { status: 304 });
}
