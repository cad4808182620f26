//! Golden files for every output format of `render`: fixed entries with the awkward cases
//! (HTML content, enclosures, authors, categories, missing dates, non-ASCII, characters XML
//! cannot carry, markup in texts) rendered as Atom, RSS, JSON Feed, OPML and the HTML page,
//! compared byte for byte with the files in `tests/golden/`. `BLESS=1 cargo test --test
//! render` rewrites them (review the diff before committing it).
//!
//! render is pure, so these tests call it directly: no store, no server. The one thing that
//! changes between builds, tributary's version in the generator elements, is written as
//! `{VERSION}` in the files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeZone, Utc};
use tributary::config::{self, Config};
use tributary::model::{Enclosure, Entry, EntryKey, Person};
use tributary::render::page::PageSource;
use tributary::render::{self, FeedMeta, SourceInfo};

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
        .single()
        .expect("a valid fixed date")
}

fn entry(n: u8, source: &str, title: &str, updated: DateTime<Utc>) -> Entry {
    Entry {
        key: EntryKey([n; 16]),
        source: source.into(),
        guid: None,
        title: title.into(),
        link: None,
        summary: None,
        content: None,
        authors: Vec::new(),
        categories: Vec::new(),
        enclosures: Vec::new(),
        comments: None,
        thumbnail: None,
        published: None,
        updated,
        first_seen: updated,
        fingerprint: [n; 16],
        article: None,
        duplicate_of: None,
        also_in: Vec::new(),
        full_text: None,
        full_content: None,
    }
}

/// Newest first, as a page of the store comes.
fn entries() -> Vec<Entry> {
    // Everything at once: HTML content and summary, two authors, categories, two
    // enclosures (one without type or length), comments, a thumbnail whose URL has a `&`.
    let mut full = entry(
        1,
        "alpha",
        "Café ☕ — naïve 日本語 & <tags> \"quoted\"",
        at(2024, 3, 5, 12, 30),
    );
    full.guid = Some("alpha-1".into());
    full.link = Some("https://alpha.example/posts/1?a=1&b=2".into());
    full.summary = Some("<p>A <em>short</em> summary &amp; more</p>".into());
    full.content = Some(
        "<p>Body with <a href=\"https://alpha.example/x?y=1&amp;z=2\">a link</a>, \
         <img src=\"https://alpha.example/i.png\" alt=\"ä\"> and <code>&lt;code&gt;</code>.</p>"
            .into(),
    );
    full.authors = vec![
        Person {
            name: "Zoë Ünicode".into(),
            email: Some("zoe@alpha.example".into()),
            uri: Some("https://alpha.example/zoe".into()),
        },
        Person {
            name: "Plain Name".into(),
            email: None,
            uri: None,
        },
    ];
    full.categories = vec!["rust".into(), "über & more".into()];
    full.enclosures = vec![
        Enclosure {
            url: "https://cdn.alpha.example/ep1.mp3?token=a&b=c".into(),
            mime_type: Some("audio/mpeg".into()),
            length: Some(12_345_678),
        },
        Enclosure {
            url: "https://cdn.alpha.example/ep1.bin".into(),
            mime_type: None,
            length: None,
        },
    ];
    full.comments = Some("https://alpha.example/posts/1#comments".into());
    full.thumbnail = Some("https://alpha.example/thumb.jpg?w=100&h=100".into());
    full.published = Some(at(2024, 3, 4, 8, 0));

    // No link, no content: the summary stands in; no published date.
    let mut summary_only = entry(2, "beta", "Only a summary", at(2024, 3, 4, 9, 15));
    summary_only.summary = Some("<p>The summary is all there is.</p>".into());

    // Characters XML cannot carry (C0 controls, U+FFFE) in title, summary and category;
    // nothing but a title; from a source without attribution.
    let mut controls = entry(
        3,
        "gamma",
        "Bell\u{7} and\u{1b}[31m escape\u{fffe} <b>bold?</b>",
        at(2024, 3, 3, 0, 0),
    );
    controls.categories = vec!["tab\there\u{0}".into()];

    // A link and a summary but no content (Atom: no content element); no dates but updated.
    let mut link_only = entry(4, "alpha", "Link and summary", at(2024, 3, 2, 23, 59));
    link_only.link = Some("https://alpha.example/posts/4".into());
    link_only.summary = Some("Plain text summary with a < sign".into());
    link_only.authors = vec![Person {
        name: "Ωmega".into(),
        email: None,
        uri: Some("https://omega.example/".into()),
    }];

    vec![full, summary_only, controls, link_only]
}

fn sources() -> HashMap<String, SourceInfo> {
    HashMap::from([
        (
            "alpha".to_string(),
            SourceInfo {
                title: "Alpha & Friends".into(),
                url: "https://alpha.example/feed.xml".into(),
                link: Some("https://alpha.example/".into()),
            },
        ),
        (
            "beta".to_string(),
            SourceInfo {
                title: "Bêta\u{8} blog".into(),
                url: "https://feeds.test/sources/beta.atom".into(),
                link: None,
            },
        ),
    ])
}

fn meta() -> FeedMeta {
    FeedMeta {
        title: "Test river & <friends>".into(),
        description: "Everything, combined \u{1}— with <markup> & ünïcode".into(),
        author: "The Editors".into(),
        self_url: "http://feeds.test/feed.atom?limit=4".into(),
        id: "http://feeds.test/feed.atom".into(),
        home_url: "http://feeds.test/".into(),
        empty_updated: at(2024, 1, 1, 0, 0),
        next_url: Some("http://feeds.test/feed.atom?limit=4&before=AAAA".into()),
        hubs: vec!["http://feeds.test/hub".into()],
    }
}

fn config() -> Config {
    let text = r#"
[server]
listen = "127.0.0.1:0"
base_url = "http://feeds.test"

[publish]
title = "Test river & <friends> ☕"
description = "Everything, <b>combined</b>"

[[source]]
name = "alpha"
url = "https://user:secret@alpha.example/feed.xml?x=1&y=2"
tags = ["rust", "news"]

[[source]]
name = "beta"
title = "Bêta \"quoted\""
url = "file:///srv/private/beta.xml"
tags = ["news"]

[[source]]
name = "gamma"
url = "https://gamma.example/rss"

[[feed]]
name = "picked"
title = "Picked <things> & more"
include = ["rust"]
"#;
    config::parse(text, Path::new("/golden/feeds.toml")).expect("a valid fixed config")
}

fn page_sources() -> Vec<PageSource> {
    vec![
        PageSource {
            name: "alpha".into(),
            title: Some("Alpha <Weblog>".into()),
            current_url: "https://alpha.example/feed.xml?x=1&y=2".into(),
            state: "ok".into(),
            last_success: Some(at(2024, 3, 5, 12, 0)),
            last_error: Some("HTTP 503 from <origin> — «busy»".into()),
            consecutive_failures: 0,
            next_poll: Some(at(2024, 3, 5, 13, 0)),
            entries: 42,
        },
        PageSource {
            name: "beta".into(),
            title: None,
            current_url: "http://feeds.test/sources/beta.atom".into(),
            state: "failing".into(),
            last_success: None,
            last_error: Some("cannot read [local path]: \u{1}denied".into()),
            consecutive_failures: 3,
            next_poll: Some(at(2024, 3, 5, 12, 45)),
            entries: 0,
        },
        PageSource {
            name: "gamma".into(),
            title: Some("gamma".into()),
            current_url: "not a url".into(),
            state: "gone".into(),
            last_success: Some(at(2023, 12, 31, 23, 59)),
            last_error: None,
            consecutive_failures: 0,
            next_poll: Some(at(2024, 4, 1, 0, 0)),
            entries: 7,
        },
    ]
}

/// Compares `actual` with `tests/golden/{name}` byte for byte, or rewrites the file with
/// `BLESS=1`.
fn golden(name: &str, actual: &str) {
    let actual = actual.replace(tributary::VERSION, "{VERSION}");
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "golden", name]
        .iter()
        .collect();
    if std::env::var_os("BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &actual).expect("write the golden file");
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with BLESS=1 to write it)", path.display()));
    if expected != actual {
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .map_or_else(|| "the length".to_string(), |n| format!("line {}", n + 1));
        panic!(
            "{name} differs from {} at {line} (BLESS=1 rewrites it):\n{actual}",
            path.display()
        );
    }
}

#[test]
fn atom_matches_its_golden_file() {
    golden("feed.atom", &render::atom(&meta(), &entries(), &sources()));
}

#[test]
fn rss_matches_its_golden_file() {
    golden("feed.rss", &render::rss(&meta(), &entries(), &sources()));
}

#[test]
fn json_feed_matches_its_golden_file() {
    golden("feed.json", &render::json(&meta(), &entries(), &sources()));
}

#[test]
fn an_empty_feed_matches_its_golden_files() {
    let mut meta = meta();
    meta.next_url = None;
    let none = HashMap::new();
    golden("empty.atom", &render::atom(&meta, &[], &none));
    golden("empty.rss", &render::rss(&meta, &[], &none));
    golden("empty.json", &render::json(&meta, &[], &none));
}

#[test]
fn opml_matches_its_golden_files() {
    let titles = |name: &str| match name {
        "alpha" => Some("Alpha\u{1} from its feed & co".to_string()),
        _ => None,
    };
    golden(
        "sources.opml",
        &render::opml::export_public(&config(), &titles),
    );
    golden(
        "sources-private.opml",
        &render::opml::export(&config(), &titles),
    );
}

#[test]
fn status_page_matches_its_golden_file() {
    golden(
        "status.html",
        &render::page::status_page(&config(), &page_sources()),
    );
}

#[test]
fn river_page_matches_its_golden_file() {
    use render::river::{Alternate, NavLink, RiverEntry, RiverPage, RiverSource, View};
    let sources = sources();
    let entries = entries()
        .into_iter()
        .map(|e| {
            // A source without attribution is shown by its name.
            let source = RiverSource::new(&e.source, sources.get(&e.source), "http://feeds.test");
            RiverEntry::new(&e, source)
        })
        .collect();
    let page = RiverPage {
        view: View {
            site_title: "Golden <river>".into(),
            title: "Golden <river>".into(),
            description: "Every & all".into(),
            site: None,
            home: "http://feeds.test/".into(),
            status: "http://feeds.test/status".into(),
            alternates: vec![Alternate {
                mime_type: "application/atom+xml".into(),
                title: "Golden <river> (Atom)".into(),
                label: "Atom".into(),
                href: "http://feeds.test/feed.atom".into(),
            }],
            nav: vec![NavLink {
                title: "#rust".into(),
                href: "http://feeds.test/tags/rust".into(),
            }],
            older: Some("http://feeds.test/?before=abc".into()),
            newest: Some("http://feeds.test/".into()),
            search: "http://feeds.test/search".into(),
            query: "sled \"write ahead\" <b>".into(),
        },
        entries,
    };
    let env = render::river::environment(&[]).expect("the built-in templates compile");
    golden(
        "river.html",
        &render::river::river(&env, &page).expect("the river renders"),
    );
}
