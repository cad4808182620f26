//! Page sources on saved real pages (tests/fixtures/pages/listing/ and json/, described in
//! listing/SOURCES.md): one origin serves every page, one config has a source per page with
//! the selectors SOURCES.md gives, `once` stores them, and the daemon publishes them. Each
//! source's JSON Feed and Atom feed are read over HTTP and checked against the expected
//! entries: count, and title, link and date of the first three.

mod support;

use chrono::{DateTime, Utc};
use support::{Origin, Route, config_prelude, config_raw, fixture, get, once, source_toml, start};
use tributary::ingest::poll::{PollOutcome, PollReport};
use tributary::model::PollCounts;

/// What one saved page should give.
struct Page {
    name: &'static str,
    /// Where the origin serves it.
    path: &'static str,
    fixture: &'static str,
    content_type: &'static str,
    /// Keys of the `[[source]]` table (kind, timezone) and its `[source.select]`.
    toml: &'static str,
    count: usize,
    /// The first entries on the page: title, link, date.
    first: Vec<Expected>,
}

struct Expected {
    title: &'static str,
    link: String,
    /// `None`: the page has no date for it; it is dated when first seen.
    date: Option<DateTime<Utc>>,
}

fn utc(rfc3339: &str) -> Option<DateTime<Utc>> {
    Some(
        DateTime::parse_from_rfc3339(rfc3339)
            .expect("a date in the test")
            .with_timezone(&Utc),
    )
}

fn e(title: &'static str, link: impl Into<String>, date: Option<DateTime<Utc>>) -> Expected {
    Expected {
        title,
        link: link.into(),
        date,
    }
}

/// Every saved page, with what SOURCES.md says it holds. Relative links resolve against the
/// URL the page was fetched from, the origin's (none of these pages has a `<base href>`).
fn pages(origin: &Origin) -> Vec<Page> {
    vec![
        Page {
            name: "news",
            path: "/tests/akkuschrauber-werkzeug-co,82197/5",
            fixture: "pages/listing/news-section.html",
            content_type: "text/html; charset=utf-8",
            toml: r#"kind = "html"
timezone = "Europe/Berlin"
[source.select]
items = ".Listing article"
title = "p.hl-xs"
link = "a@href"
date = "time@datetime"
summary = "p.copy-md"
image = "img@data-src"
"#,
            count: 20,
            // Written `2018-11-12 15:58:00`, no offset: Berlin local time, CET (UTC+1) in
            // November, so 14:58 UTC.
            first: vec![
                e(
                    "Aldi leuchtet: LED-Röhren-Testsieger im Angebot",
                    "https://www.chip.de/news/Aldi-leuchtet-LED-Roehren-Testsieger-im-Angebot_152842829.html",
                    utc("2018-11-12T14:58:00Z"),
                ),
                e(
                    "Mal mit Druck durchwischen: Aldi Süd mit Kärcher-Angebote",
                    "https://www.chip.de/news/Mal-mit-Druck-durchwischen-Aldi-Sued-mit-Kaercher-Angebote_152839902.html",
                    utc("2018-11-12T14:06:00Z"),
                ),
                e(
                    "Schimmelbekämpfung leichtgemacht: Aldi Nord-Luftentfeuchter im Angebot",
                    "https://www.chip.de/news/Schimmelbekaempfung-leichtgemacht-Aldi-Nord-Luftentfeuchter-im-Angebot_152449863.html",
                    utc("2018-11-11T09:27:00Z"),
                ),
            ],
        },
        Page {
            name: "blog",
            path: "/blog/",
            fixture: "pages/listing/blog-index.html",
            content_type: "text/html; charset=utf-8",
            toml: r#"kind = "html"
timezone = "Europe/Berlin"
[source.select]
items = "div.post"
title = "h2.entry-title a"
link = "h2.entry-title a@href"
date = ".entry-date"
author = ".author a"
summary = ".entry-content p"
"#,
            count: 10,
            // German dates without a time of day: midnight in Berlin. "13. Januar 2014" is
            // CET (UTC+1): 2014-01-12 23:00 UTC; "23. Juli 2013" and "10. Juli 2013" are
            // CEST (UTC+2): 22:00 UTC the day before.
            first: vec![
                e(
                    "Liebe Menschen Europas",
                    "http://www.echte-demokratie-jetzt.de/2014/01/liebe-menschen-europas/",
                    utc("2014-01-12T23:00:00Z"),
                ),
                e(
                    "Sei doch nicht so negativ!",
                    "http://www.echte-demokratie-jetzt.de/2013/07/sei-doch-nicht-so-negativ/",
                    utc("2013-07-22T22:00:00Z"),
                ),
                e(
                    "Nie wieder! #prism #nsa",
                    "http://www.echte-demokratie-jetzt.de/2013/07/nie-wieder-prism-nsa/",
                    utc("2013-07-09T22:00:00Z"),
                ),
            ],
        },
        Page {
            name: "hn",
            path: "/hn",
            fixture: "pages/listing/link-aggregator.html",
            // The page has no <meta charset>: Hacker News says it in the header.
            content_type: "text/html; charset=utf-8",
            // The date is in the row after the item's (`tr.athing`): the flat-page rule.
            toml: r#"kind = "html"
[source.select]
items = "tr.athing"
title = ".titleline > a"
link = ".titleline > a@href"
date = "span.age@title"
author = "a.hnuser"
"#,
            count: 30,
            // `span.age@title` is `2026-04-26T06:24:42 1777184682`: no zone, read in the
            // source's (UTC); the Unix seconds after it agree (1777184682 = 06:24:42 UTC).
            first: vec![
                e(
                    "The West Forgot How to Make Things. Now It's Forgetting How to Code",
                    "https://techtrenches.dev/p/the-west-forgot-how-to-make-things",
                    utc("2026-04-26T06:24:42Z"),
                ),
                e(
                    "Amateur armed with ChatGPT solves an Erdős problem",
                    "https://www.scientificamerican.com/article/amateur-armed-with-chatgpt-vibe-maths-a-60-year-old-problem/",
                    utc("2026-04-25T17:40:38Z"),
                ),
                e(
                    "Why has there been so little progress on Alzheimer's disease?",
                    "https://freakonomics.com/podcast/why-has-there-been-so-little-progress-on-alzheimers-disease/",
                    utc("2026-04-26T00:12:47Z"),
                ),
            ],
        },
        Page {
            name: "releases",
            path: "/nuxt/nuxt.js/releases",
            fixture: "pages/listing/releases.html",
            content_type: "text/html; charset=utf-8",
            toml: r#"kind = "html"
[source.select]
items = "div.release-entry"
title = ".release-header a"
link = ".release-header a@href"
date = "relative-time@datetime"
author = "a.text-bold[data-hovercard-type=user]"
content = ".markdown-body"
"#,
            count: 10,
            // Root-relative links (`/nuxt/nuxt.js/releases/tag/v2.10.2`): on the origin.
            first: vec![
                e(
                    "v2.10.2",
                    origin.url("/nuxt/nuxt.js/releases/tag/v2.10.2"),
                    utc("2019-10-21T21:18:53Z"),
                ),
                e(
                    "v2.10.1",
                    origin.url("/nuxt/nuxt.js/releases/tag/v2.10.1"),
                    utc("2019-10-11T08:15:28Z"),
                ),
                e(
                    "v2.10.0",
                    origin.url("/nuxt/nuxt.js/releases/tag/v2.10.0"),
                    utc("2019-10-02T11:45:11Z"),
                ),
            ],
        },
        Page {
            name: "headings",
            path: "/2023/11/06/bushido/",
            fixture: "pages/listing/headings-time.html",
            content_type: "text/html; charset=utf-8",
            // Only `items`: the defaults find the heading's link and the <time datetime>.
            toml: "kind = \"html\"\n[source.select]\nitems = \".rpwe-block li\"\n",
            count: 15,
            // `2023-11-06T11:25:04+01:00` and the like: written with their offset.
            first: vec![
                e(
                    "Kranke Zahlen – Bushido führt im privaten Verkaufsbattle gegen Bonez MC",
                    "https://raptastisch.net/2023/11/06/kranke-zahlen-bushido-fuehrt-im-privaten-verkaufsbattle-gegen-bonez-mc/",
                    utc("2023-11-06T10:25:04Z"),
                ),
                e(
                    "Gefährlichster Rapper Deutschlands – MOK will MC Bogy jetzt persönlich erledigen",
                    "https://raptastisch.net/2023/11/06/gefaehrlichster-rapper-deutschlands-mok-will-mc-bogy-jetzt-persoenlich-erledigen/",
                    utc("2023-11-06T09:43:07Z"),
                ),
                e(
                    "18 Jahre nach „Das Urteil“ – Kool Savas schreibt an Eko Fresh und Valezka",
                    "https://raptastisch.net/2023/11/06/18-jahre-nach-das-urteil-kool-savas-schreibt-an-eko-fresh-und-valezka/",
                    utc("2023-11-06T05:48:42Z"),
                ),
            ],
        },
        Page {
            name: "cp1252",
            path: "/article/20211103/AGENTURMELDUNGEN/311039909/1276/krach",
            fixture: "pages/listing/cp1252.html",
            // No charset in the header: the page's <meta charset="windows-1252"> decides.
            content_type: "text/html",
            toml: r#"kind = "html"
[source.select]
items = "div.newslist"
title = ".fs18 a"
link = ".fs18 a@href"
summary = ".fs15"
"#,
            count: 12,
            first: vec![
                e(
                    "IT-Auslagerung bei Daimler startet holprig",
                    origin.url("/article/20211103/BCONLINE/211109964/1276/exklusiv--mitarbeiter-lehnen-transfer-ab-it-auslagerung-bei-daimler-startet-holprig"),
                    None,
                ),
                e(
                    "Ohne Zahlendreher",
                    origin.url("/article/20211103/BCONLINE/211109966/1279/start-up-serie--teil---anyline-ohne-zahlendreher"),
                    None,
                ),
                e(
                    "Neuzulassungen brechen noch weiter ein",
                    origin.url("/article/20211103/BCONLINE/211109969/1276/blitzanalyse--neuzulassungen-oktober--neuzulassungen-brechen-noch-weiter-ein"),
                    None,
                ),
            ],
        },
        Page {
            name: "algolia",
            path: "/api/v1/search",
            fixture: "pages/json/api-hn-algolia.json",
            content_type: "application/json; charset=utf-8",
            toml: r#"kind = "json"
[source.select]
items = "$.hits[*]"
title = "$.title"
link = "$.url"
date = "$.created_at"
author = "author"
"#,
            count: 4,
            first: vec![
                e(
                    "Why aren’t we using SSH for everything?",
                    "https://medium.com/@shazow/ssh-how-does-it-even-9e43586e4ffc",
                    utc("2015-01-02T21:05:46Z"),
                ),
                e(
                    "Why aren’t we using SSH for everything? (2015)",
                    "https://medium.com/@shazow/ssh-how-does-it-even-9e43586e4ffc#.r9qzj6hhl",
                    utc("2016-04-17T22:13:06Z"),
                ),
                e(
                    "Why aren’t we using SSH for everything? (2015)",
                    "https://medium.com/@shazow/ssh-how-does-it-even-9e43586e4ffc#.neyhpij1r",
                    utc("2017-02-04T12:47:25Z"),
                ),
            ],
        },
        Page {
            name: "reddit",
            path: "/search.json",
            fixture: "pages/json/api-reddit.json",
            content_type: "application/json; charset=utf-8",
            // `$.data.url` is the same article for all four: the link is the discussion.
            toml: r#"kind = "json"
[source.select]
items = "$.data.children[*]"
title = "data.title"
link = "$.data.permalink"
date = "$.data.created_utc"
author = "$.data.author"
"#,
            count: 4,
            // Unix seconds: 1420235821, 1420317685, 1420246814.
            first: vec![
                e(
                    "Why aren’t we using SSH for everything?",
                    origin.url("/r/linux/comments/2r539r/why_arent_we_using_ssh_for_everything/"),
                    utc("2015-01-02T21:57:01Z"),
                ),
                e(
                    "Why aren’t we using SSH for everything? — Medium",
                    origin.url(
                        "/r/sysadmin/comments/2r8es6/why_arent_we_using_ssh_for_everything_medium/",
                    ),
                    utc("2015-01-03T20:41:25Z"),
                ),
                e(
                    "Why aren’t we using SSH for everything?",
                    origin.url("/r/csclub/comments/2r5o9n/why_arent_we_using_ssh_for_everything/"),
                    utc("2015-01-03T01:00:14Z"),
                ),
            ],
        },
    ]
}

/// The config with a source per page, polled every `interval`.
fn config_text(origin: &Origin, pages: &[Page], interval: &str) -> String {
    let mut text = config_prelude("");
    for p in pages {
        text.push_str(&source_toml(p.name, &origin.url(p.path), interval, p.toml));
    }
    text
}

fn counts(r: &PollReport) -> PollCounts {
    match &r.outcome {
        PollOutcome::Stored { counts, .. } => *counts,
        other => panic!("{}: expected Stored, got {other:?}", r.source),
    }
}

/// The published JSON Feed of source `name`: its items.
async fn json_items(base: &str, name: &str) -> Vec<serde_json::Value> {
    let (status, ct, body) = get(&format!("{base}/sources/{name}.json")).await;
    assert_eq!(status, 200, "{name}: {body}");
    assert!(ct.contains("json"), "{ct}");
    let doc: serde_json::Value = serde_json::from_str(&body).expect("a JSON Feed");
    doc["items"].as_array().expect("items").clone()
}

fn item_date(item: &serde_json::Value) -> Option<DateTime<Utc>> {
    item["date_published"].as_str().and_then(utc)
}

/// Every saved page through `once` and the daemon: each source's JSON Feed and Atom feed
/// hold the expected entries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_saved_page_gives_its_expected_entries() {
    let origin = Origin::start().await;
    let pages = pages(&origin);
    for p in &pages {
        origin.set(p.path, Route::feed(fixture(p.fixture), p.content_type));
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config_raw(dir.path(), &config_text(&origin, &pages, "1h"));
    let before = Utc::now();
    let reports = once(&cfg).await;
    let after = Utc::now();
    assert_eq!(reports.len(), pages.len());
    for (r, p) in reports.iter().zip(&pages) {
        assert_eq!(r.source, p.name);
        assert_eq!(counts(r).new, p.count, "{r:?}");
    }

    let daemon = start(cfg).await;
    let base = format!("http://{}", daemon.local_addr());
    for p in &pages {
        let items = json_items(&base, p.name).await;
        assert_eq!(items.len(), p.count, "{}: {items:#?}", p.name);
        let atom_path = format!("/sources/{}.atom", p.name);
        let (status, _, xml) = get(&format!("{base}{atom_path}")).await;
        assert_eq!(status, 200, "{xml}");
        let atom = support::assert_valid_atom(&xml, &format!("http://feeds.test{atom_path}"));
        assert_eq!(atom.entries.len(), p.count, "{}", p.name);
        for want in &p.first {
            let item = items
                .iter()
                .find(|i| i["url"] == want.link.as_str())
                .unwrap_or_else(|| panic!("{}: no item {} in {items:#?}", p.name, want.link));
            assert_eq!(item["title"], want.title, "{}", p.name);
            let date = item_date(item);
            match want.date {
                Some(d) => assert_eq!(date, Some(d), "{}: {}", p.name, want.title),
                // Dated when first seen: during the `once` run.
                None => {
                    let d = date.expect("a dateless entry is dated when seen");
                    assert!(
                        d >= before - chrono::Duration::seconds(1) && d <= after,
                        "{d}"
                    );
                }
            }
            let entry = atom
                .entries
                .iter()
                .find(|e| e.links.iter().any(|l| l.href == want.link))
                .unwrap_or_else(|| panic!("{}: no Atom entry {}", p.name, want.link));
            assert_eq!(entry.title.value, want.title);
            assert_eq!(entry.published.map(|d| d.with_timezone(&Utc)), date);
        }
    }

    // The windows-1252 page: its en dashes (byte 0x96) and umlauts (0xE4, 0xFC) decoded.
    let cp = json_items(&base, "cp1252").await;
    let titles: Vec<&str> = cp.iter().filter_map(|i| i["title"].as_str()).collect();
    for t in [
        "Es knirscht zwischen Diess und Aufsichtsräten",
        "Neue Regeln für mobiles Arbeiten bei VW vereinbart",
        "Ifo – Materialmangel in Industrie etwas gesunken",
        "Zipse lässt die Muskeln spielen",
    ] {
        assert!(titles.contains(&t), "{t} in {titles:?}");
    }
    let first = cp
        .iter()
        .find(|i| i["title"] == "IT-Auslagerung bei Daimler startet holprig")
        .expect("the first entry");
    assert_eq!(
        first["summary"],
        "EXKLUSIV – Mitarbeiter lehnen Transfer ab:"
    );
    assert!(!cp.iter().any(|i| i.to_string().contains('\u{FFFD}')));

    // Hacker News: the 8th story's relative link, resolved against the page's URL.
    let hn = json_items(&base, "hn").await;
    let ask = hn
        .iter()
        .find(|i| i["url"] == origin.url("/item?id=47906253").as_str())
        .expect("the relative link resolved");
    assert_eq!(
        ask["title"],
        "Tell HN: An app is silently installing itself on my iPhone every day"
    );
    assert!(hn.iter().all(|i| item_date(i).is_some()));

    // Algolia: four links that differ only by fragment or query are four entries.
    let algolia = json_items(&base, "algolia").await;
    let mut links: Vec<&str> = algolia.iter().filter_map(|i| i["url"].as_str()).collect();
    links.sort_unstable();
    assert_eq!(
        links,
        [
            "https://medium.com/@shazow/ssh-how-does-it-even-9e43586e4ffc",
            "https://medium.com/@shazow/ssh-how-does-it-even-9e43586e4ffc#.neyhpij1r",
            "https://medium.com/@shazow/ssh-how-does-it-even-9e43586e4ffc#.r9qzj6hhl",
            "https://medium.com/@shazow/ssh-how-does-it-even-9e43586e4ffc?hn=1",
        ]
    );

    // Reddit: the fourth entry's Unix seconds too (1420235765 = 2015-01-02T21:56:05Z).
    let reddit = json_items(&base, "reddit").await;
    let fourth = reddit
        .iter()
        .find(|i| {
            i["url"]
                == origin
                    .url("/r/hackernews/comments/2r5364/why_arent_we_using_ssh_for_everything/")
                    .as_str()
        })
        .expect("the 4th");
    assert_eq!(item_date(fourth), utc("2015-01-02T21:56:05Z"));
    daemon.shutdown().await.expect("clean stop");
}

/// The same pages polled twice: nothing new, nothing updated, every entry unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_polled_twice_gives_nothing_new() {
    let origin = Origin::start().await;
    let pages = pages(&origin);
    for p in &pages {
        origin.set(p.path, Route::feed(fixture(p.fixture), p.content_type));
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config_raw(dir.path(), &config_text(&origin, &pages, "1h"));
    once(&cfg).await;
    let again = once(&cfg).await;
    for (r, p) in again.iter().zip(&pages) {
        assert_eq!(
            counts(r),
            PollCounts {
                unchanged: p.count,
                ..PollCounts::default()
            },
            "{r:?}"
        );
    }
}

/// Runs `once` on `cfg` (every source must store), then starts the daemon on its store and
/// returns source `name`'s published JSON Feed items.
async fn published(cfg: tributary::config::Config, name: &str) -> Vec<serde_json::Value> {
    for r in once(&cfg).await {
        counts(&r);
    }
    let daemon = start(cfg).await;
    let base = format!("http://{}", daemon.local_addr());
    let items = json_items(&base, name).await;
    daemon.shutdown().await.expect("clean stop");
    items
}

/// A flat page, as a small blog or a changelog writes it: no element per entry, only a
/// heading, a `<time>` and paragraphs one after the other in `<main>`. With only
/// `items = "main > h2"`, the defaults read each entry from its heading and the elements
/// after it, up to the next heading: title and link from the heading's link, the date from
/// the `<time datetime>`, the summary from the first paragraph. (Written here, not saved:
/// no saved real page has exactly this shape; `flat_lwn_page_...` below is a real flat one.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flat_page_of_headings_and_times_with_only_the_defaults() {
    let page = r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Notes — Ada's log</title></head>
<body><header><h1><a href="/">Ada's log</a></h1><nav><a href="/about">About</a></nav></header>
<main>
<h2><a href="/notes/2026/sled-compaction">Compacting sled, carefully</a></h2>
<time datetime="2026-11-20T18:05:00+01:00">20 Nov 2026</time>
<p>Why the store grew, and how a pass a week keeps it small.</p>
<p>A second paragraph that is not the summary.</p>
<h2><a href="/notes/2026/selectors">Selectors are a language</a></h2>
<time datetime="2026-11-12">12 Nov 2026</time>
<p>CSS selectors say where things are; they cannot say what they mean.</p>
<h2><a href="https://elsewhere.example/guest-post">A guest post, elsewhere</a></h2>
<time datetime="2026-10-30T07:00:00Z">30 Oct 2026</time>
<p>Written for a friend’s site.</p>
</main>
<footer><p>© Ada</p></footer></body></html>"#;
    let origin = Origin::start().await;
    origin.set("/notes/", Route::feed(page, "text/html; charset=utf-8"));
    let dir = tempfile::tempdir().expect("tempdir");
    let text = config_prelude("")
        + &source_toml(
            "notes",
            &origin.url("/notes/"),
            "1h",
            "kind = \"html\"\n[source.select]\nitems = \"main > h2\"\n",
        );
    let items = published(config_raw(dir.path(), &text), "notes").await;
    let got: Vec<(&str, &str, Option<DateTime<Utc>>, &str)> = items
        .iter()
        .map(|i| {
            (
                i["title"].as_str().unwrap_or(""),
                i["url"].as_str().unwrap_or(""),
                item_date(i),
                i["summary"].as_str().unwrap_or(""),
            )
        })
        .collect();
    let (sled, selectors) = (
        origin.url("/notes/2026/sled-compaction"),
        origin.url("/notes/2026/selectors"),
    );
    assert_eq!(
        got,
        [
            // 18:05 at +01:00 is 17:05 UTC.
            (
                "Compacting sled, carefully",
                sled.as_str(),
                utc("2026-11-20T17:05:00Z"),
                "Why the store grew, and how a pass a week keeps it small."
            ),
            // A date without a time of day: midnight in the source's zone (UTC).
            (
                "Selectors are a language",
                selectors.as_str(),
                utc("2026-11-12T00:00:00Z"),
                "CSS selectors say where things are; they cannot say what they mean."
            ),
            (
                "A guest post, elsewhere",
                "https://elsewhere.example/guest-post",
                utc("2026-10-30T07:00:00Z"),
                "Written for a friend’s site."
            ),
        ],
        "newest first"
    );
}

/// A real flat page (LWN.net's weekly edition, tests/fixtures/pages/listing/flat-lwn.html):
/// each entry is an `<h2 class=SummaryHL>`, a byline `<div>` with the date, and the
/// article's paragraphs, all siblings in one container. Neither the `<h4>` subheadings nor
/// the closing "Inside this week's" heading (no link) nor the sidebar become entries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_flat_page_reads_each_entry_up_to_the_next_heading() {
    let origin = Origin::start().await;
    origin.set(
        "/Articles/637393/",
        Route::feed(
            fixture("pages/listing/flat-lwn.html"),
            "text/html; charset=utf-8",
        ),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let text = config_prelude("")
        + &source_toml(
            "lwn",
            &origin.url("/Articles/637393/"),
            "1h",
            "kind = \"html\"\ntimezone = \"America/Denver\"\n[source.select]\n\
             items = \"div.ArticleText > h2.SummaryHL\"\ndate = \".FeatureByline\"\n\
             author = \".FeatureByline b\"\n",
        );
    let items = published(config_raw(dir.path(), &text), "lwn").await;
    // "March 25, 2015" has no time of day: midnight in Denver, where DST (UTC-6) began on
    // March 8, 2015, so 06:00 UTC. All three share it; the feed keeps page order for ties.
    let date = utc("2015-03-25T06:00:00Z");
    let mut got: Vec<(&str, &str, Option<DateTime<Utc>>, &str)> = items
        .iter()
        .map(|i| {
            (
                i["title"].as_str().unwrap_or(""),
                i["url"].as_str().unwrap_or(""),
                item_date(i),
                i["authors"][0]["name"].as_str().unwrap_or(""),
            )
        })
        .collect();
    got.sort_by_key(|g| g.1);
    let links = [
        origin.url("/Articles/637533/"),
        origin.url("/Articles/637735/"),
        origin.url("/Articles/637755/"),
    ];
    assert_eq!(
        got,
        [
            (
                "Mapping and data mining with QGIS 2.8",
                links[0].as_str(),
                date,
                "Nathan Willis"
            ),
            (
                "Development activity in LibreOffice and OpenOffice",
                links[1].as_str(),
                date,
                "Jonathan Corbet"
            ),
            (
                "A trademark battle in the Arduino community",
                links[2].as_str(),
                date,
                "Nathan Willis"
            ),
        ]
    );
    // The default summary: the first paragraph after the heading and byline.
    let arduino = items
        .iter()
        .find(|i| i["url"] == links[2].as_str())
        .expect("arduino");
    let summary = arduino["summary"].as_str().expect("a summary");
    assert!(
        summary.starts_with("The Arduino has been one of the biggest success stories"),
        "{summary}"
    );
    // The third opens with bare text and an empty `<p> </p>`: the summary is the first
    // paragraph with text.
    let libreoffice = items
        .iter()
        .find(|i| i["url"] == links[1].as_str())
        .expect("libreoffice");
    let summary = libreoffice["summary"].as_str().expect("a summary");
    assert!(
        summary.starts_with("Apache OpenOffice has made two releases in the past year"),
        "{summary}"
    );
}

/// The blog index with only `items`: title and link from each post's heading, and a
/// summary for every post, also for the two whose first paragraph holds only an image
/// (the default summary is the first paragraph with text). No `<time>`: dated when seen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_blog_index_by_its_defaults() {
    let origin = Origin::start().await;
    origin.set(
        "/blog/",
        Route::feed(
            fixture("pages/listing/blog-index.html"),
            "text/html; charset=utf-8",
        ),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let text = config_prelude("")
        + &source_toml(
            "blog",
            &origin.url("/blog/"),
            "1h",
            "kind = \"html\"\n[source.select]\nitems = \"div.post\"\n",
        );
    let items = published(config_raw(dir.path(), &text), "blog").await;
    assert_eq!(items.len(), 10);
    let by_link = |l: &str| {
        items
            .iter()
            .find(|i| i["url"] == l)
            .unwrap_or_else(|| panic!("{l} in {items:#?}"))
    };
    let first = by_link("http://www.echte-demokratie-jetzt.de/2014/01/liebe-menschen-europas/");
    assert_eq!(first["title"], "Liebe Menschen Europas");
    assert_eq!(
        first["summary"],
        "Liebe Menschen Europas, in Griechenland, Spanien, Italien oder wo auch immer Ihr lebt!"
    );
    assert!(
        items
            .iter()
            .all(|i| i["summary"].as_str().is_some_and(|s| !s.is_empty())),
        "{items:#?}"
    );
    let sixth = items
        .iter()
        .find(|i| i["title"] == "Occupy befreit Schulden: The Rolling Jubilee")
        .unwrap_or_else(|| panic!("the 6th in {items:#?}"));
    assert!(
        sixth["summary"]
            .as_str()
            .is_some_and(|s| s.starts_with("$1 Millionen Schulden für $50.000 kaufen")),
        "{sixth:#}"
    );
}

/// Hacker News served as Hacker News would be without its header charset (`text/html`
/// alone; the page has no `<meta charset>`): the encoding is guessed, and "Erdős" survives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_without_any_charset_is_guessed() {
    let origin = Origin::start().await;
    origin.set(
        "/news",
        Route::feed(fixture("pages/listing/link-aggregator.html"), "text/html"),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let text = config_prelude("")
        + &source_toml(
            "hn",
            &origin.url("/news"),
            "1h",
            "kind = \"html\"\n[source.select]\nitems = \"tr.athing\"\n\
             title = \".titleline > a\"\nlink = \".titleline > a@href\"\n",
        );
    let items = published(config_raw(dir.path(), &text), "hn").await;
    assert_eq!(items.len(), 30);
    assert!(
        items
            .iter()
            .any(|i| i["title"] == "Amateur armed with ChatGPT solves an Erdős problem"),
        "{items:#?}"
    );
    assert!(!items.iter().any(|i| i.to_string().contains('\u{FFFD}')));
}

/// Items that are links themselves: `@name` alone reads the item's own attribute (title,
/// link and date from the `<a>`'s attributes), and relative links resolve against the
/// page's `<base href>`, not the URL it was fetched from.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_attributes_and_base_href() {
    let page = r#"<!DOCTYPE html><html><head><meta charset=utf-8>
<base href="https://cdn.example/site/"><title>Links</title></head><body><ul>
<li><a class=s href="one" title="First one" data-date="2026-01-02T10:00:00Z">One</a></li>
<li><a class=s href="/two" title="Second" data-date="2026-01-03T10:00:00Z">Two</a></li>
</ul></body></html>"#;
    let origin = Origin::start().await;
    origin.set("/links", Route::feed(page, "text/html; charset=utf-8"));
    let dir = tempfile::tempdir().expect("tempdir");
    let text = config_prelude("")
        + &source_toml(
            "links",
            &origin.url("/links"),
            "1h",
            "kind = \"html\"\n[source.select]\nitems = \"a.s\"\ntitle = \"@title\"\n\
             link = \"@href\"\ndate = \"@data-date\"\n",
        );
    let items = published(config_raw(dir.path(), &text), "links").await;
    let got: Vec<(&str, &str, Option<DateTime<Utc>>)> = items
        .iter()
        .map(|i| {
            (
                i["title"].as_str().unwrap_or(""),
                i["url"].as_str().unwrap_or(""),
                item_date(i),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "Second",
                "https://cdn.example/two",
                utc("2026-01-03T10:00:00Z")
            ),
            (
                "First one",
                "https://cdn.example/site/one",
                utc("2026-01-02T10:00:00Z")
            ),
        ]
    );
}
