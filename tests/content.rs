//! What odd or hostile feed documents do to the published output, through the real daemon
//! (`app::start` on a temporary store, origins on loopback, real HTTP requests):
//!
//! - characters XML 1.0 cannot carry, in every field of RSS, Atom and JSON Feed documents
//!   and in the config, never reach an output, and every output stays well-formed;
//! - links keep their fragments; a fragment is the article's identity only on a source
//!   whose entries differ by it (Scripting News), a section anchor otherwise;
//! - an entry without an author of its own carries its feed's author;
//! - a `file:` source's path is never published.

mod support;

use support::all_stored;

use support::source_toml;

use support::start;

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use support::{
    Origin, Route, assert_valid_atom, assert_valid_rss, config_prelude, config_raw, get,
};
use tributary::app;
use tributary::ingest::error::PollError;
use tributary::ingest::poll::PollOutcome;

/// A config of `sources` (TOML `[[source]]` tables) on the test prelude.
fn config_of(dir: &Path, sources: &str) -> tributary::config::Config {
    config_raw(dir, &format!("{}{sources}", config_prelude("")))
}

// ---------------------------------------------------------------------------------------------
// Characters XML cannot carry

/// The characters of the attack, as XML character references.
const BAD_REFS: &[&str] = &["&#1;", "&#x8;", "&#xB;", "&#x1F;", "&#xFFFE;", "&#xFFFF;"];
const BAD_CHARS: &[char] = &['\u{1}', '\u{8}', '\u{b}', '\u{1f}', '\u{fffe}', '\u{ffff}'];

/// `word` with every bad character spliced in (`B` for the references).
fn spliced(word: &str) -> String {
    let mut s = String::new();
    for (i, c) in word.chars().enumerate() {
        s.push(c);
        if i < BAD_REFS.len() {
            s.push_str(BAD_REFS[i]);
        }
    }
    s
}

fn rss_with_controls() -> String {
    let t = spliced;
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel><title>{}</title><link>https://ctl.example/</link><description>d</description>
<item><guid>r1</guid><title>{}</title><link>https://ctl.example/r1?q={}</link>
<dc:creator>{}</dc:creator><category>{}</category>
<description>{}</description>
<content:encoded>&lt;p&gt;{}&lt;/p&gt; &amp;#1;html&amp;#x1F;entity</content:encoded>
<enclosure url="https://ctl.example/a.mp3" length="1" type="audio/{}"/>
<pubDate>Mon, 01 Jan 2024 10:00:00 GMT</pubDate></item>
<item><guid>r2</guid><link>https://ctl.example/r2</link><author>x@ctl.example ({})</author>
<description>{}</description></item>
</channel></rss>"#,
        t("RSSFEEDTITLE"),
        t("RSSTITLE"),
        t("query"),
        t("RSSCREATOR"),
        t("RSSCATEGORY"),
        t("RSSSUMMARY"),
        t("RSSCONTENT"),
        t("mpeg"),
        t("RSSAUTHOR"),
        t("untitled"),
    )
}

fn atom_with_controls() -> String {
    let t = spliced;
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title type="html">{}</title><id>urn:ctl</id>
<updated>2024-01-01T00:00:00Z</updated><author><name>{}</name><email>{}@ctl.example</email></author>
<entry><id>urn:a1</id><title>{}</title><link href="https://ctl.example/a1#{}"/>
<updated>2024-01-01T00:00:00Z</updated><category term="{}" label="{}"/>
<author><name>{}</name></author>
<summary type="html">&lt;b&gt;{}&lt;/b&gt;</summary><content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><p>{}</p></div></content></entry>
<entry><id>urn:a2</id><title type="html">{}</title><link href="https://ctl.example/a2"/>
<updated>2024-01-01T00:00:00Z</updated><content type="text">{}</content></entry>
</feed>"#,
        t("ATOMFEEDTITLE"),
        t("ATOMFEEDAUTHOR"),
        t("mail"),
        t("ATOMTITLE"),
        t("fragment"),
        t("ATOMTERM"),
        t("ATOMLABEL"),
        t("ATOMAUTHOR"),
        t("ATOMSUMMARY"),
        t("ATOMCONTENT"),
        t("ATOMHTMLTITLE"),
        t("ATOMTEXT"),
    )
}

fn json_with_controls() -> String {
    // JSON escapes of the same characters.
    let t = |word: &str| {
        let mut s = String::new();
        for (i, c) in word.chars().enumerate() {
            s.push(c);
            if let Some(b) = BAD_CHARS.get(i) {
                s.push_str(&format!("\\u{:04x}", *b as u32));
            }
        }
        s
    };
    format!(
        r#"{{"version":"https://jsonfeed.org/version/1.1","title":"{}","home_page_url":"https://ctl.example/",
"authors":[{{"name":"{}"}}],
"items":[{{"id":"j1","url":"https://ctl.example/j1","title":"{}","content_html":"<p>{}</p>","summary":"{}",
"tags":["{}"],"authors":[{{"name":"{}"}}],"attachments":[{{"url":"https://ctl.example/j.mp3","mime_type":"audio/{}"}}]}},
{{"id":"j2","url":"https://ctl.example/j2","content_text":"{}"}}]}}"#,
        t("JSONFEEDTITLE"),
        t("JSONFEEDAUTHOR"),
        t("JSONTITLE"),
        t("JSONCONTENT"),
        t("JSONSUMMARY"),
        t("JSONTAG"),
        t("JSONAUTHOR"),
        t("mpeg"),
        t("JSONTEXT"),
    )
}

/// Fails when `body` holds a character XML 1.0 cannot carry, raw or as a character
/// reference (`&#1;`, `&#x1F;`).
fn assert_xml_chars(what: &str, body: &str) {
    for c in body.chars() {
        assert!(
            tributary::feed::text::is_xml_char(c),
            "{what}: U+{:04X} published",
            c as u32
        );
    }
    let mut rest = body;
    while let Some(at) = rest.find("&#") {
        rest = &rest[at + 2..];
        let end = rest.find(';').unwrap_or(0);
        let code = match rest.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(&hex[..end.saturating_sub(1)], 16).ok(),
            None => rest[..end].parse().ok(),
        };
        if let Some(c) = code.and_then(char::from_u32) {
            assert!(
                tributary::feed::text::is_xml_char(c),
                "{what}: &#{}; published",
                &rest[..end]
            );
        }
    }
}

/// Every string in a JSON value.
fn json_strings(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(a) => a.iter().for_each(|x| json_strings(x, out)),
        serde_json::Value::Object(o) => o.iter().for_each(|(k, x)| {
            out.push(k.clone());
            json_strings(x, out);
        }),
        _ => {}
    }
}

/// Strict well-formedness: quick-xml's reader with every check on, to the end.
fn assert_well_formed(what: &str, xml: &str) {
    let mut reader = quick_xml::Reader::from_str(xml);
    reader.config_mut().check_end_names = true;
    reader.config_mut().check_comments = true;
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e)) => {
                for a in e.attributes() {
                    let a = a.unwrap_or_else(|err| panic!("{what}: bad attribute: {err}"));
                    let v = a
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .unwrap_or_else(|err| panic!("{what}: bad attribute value: {err}"));
                    assert_xml_chars(what, &v);
                }
            }
            Ok(quick_xml::events::Event::GeneralRef(r)) if r.is_char_ref() => {
                let c = r
                    .resolve_char_ref()
                    .unwrap_or_else(|err| panic!("{what}: bad character reference: {err}"))
                    .expect("a character");
                assert!(tributary::feed::text::is_xml_char(c), "{what}: {c:?}");
            }
            Ok(_) => {}
            Err(e) => panic!(
                "{what}: not well-formed at {}: {e}",
                reader.buffer_position()
            ),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_characters_never_reach_an_output() {
    let origin = Origin::start().await;
    origin.set(
        "/rss",
        Route::feed(rss_with_controls(), "application/rss+xml"),
    );
    origin.set(
        "/atom",
        Route::feed(atom_with_controls(), "application/atom+xml"),
    );
    origin.set(
        "/json",
        Route::feed(json_with_controls(), "application/feed+json"),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    // The config can carry them too (TOML's \u escapes): the published title, a source's
    // title, the description.
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nbase_url = \"http://feeds.test\"\n\n\
         [publish]\ntitle = \"River\\u0001 of\\u001f news\"\ndescription = \"All\\u000b of it\"\n\
         author = \"Ed\\u0008itor\"\n\n[fetch]\n\n{}{}{}",
        source_toml("rss", &origin.url("/rss"), "1h", ""),
        source_toml(
            "atom",
            &origin.url("/atom"),
            "1h",
            "title = \"Atom\\u0001 source\""
        ),
        source_toml("json", &origin.url("/json"), "1h", ""),
    );
    let cfg = config_raw(dir.path(), &text);
    let mut daemon = start(cfg).await;
    let mut reports = daemon.take_reports();
    all_stored(&mut reports, &["rss", "atom", "json"]).await;
    let base = format!("http://{}", daemon.local_addr());

    let mut published = String::new();
    for path in [
        "/feed.atom",
        "/sources/rss.atom",
        "/sources/atom.atom",
        "/sources/json.atom",
    ] {
        let (status, _, body) = get(&format!("{base}{path}")).await;
        assert_eq!(status, 200, "{path}");
        assert_xml_chars(path, &body);
        assert_well_formed(path, &body);
        let feed = assert_valid_atom(&body, &format!("http://feeds.test{path}"));
        if path == "/feed.atom" {
            assert_eq!(feed.entries.len(), 6, "every entry published");
        }
        published.push_str(&body);
    }
    for path in [
        "/feed.rss",
        "/sources/rss.rss",
        "/sources/atom.rss",
        "/sources/json.rss",
    ] {
        let (status, _, body) = get(&format!("{base}{path}")).await;
        assert_eq!(status, 200, "{path}");
        assert_xml_chars(path, &body);
        assert_well_formed(path, &body);
        assert_valid_rss(&body, &format!("http://feeds.test{path}"));
        published.push_str(&body);
    }
    for path in [
        "/feed.json",
        "/sources/rss.json",
        "/sources/atom.json",
        "/sources/json.json",
    ] {
        let (status, _, body) = get(&format!("{base}{path}")).await;
        assert_eq!(status, 200, "{path}");
        let doc: serde_json::Value = serde_json::from_str(&body).expect("JSON parses");
        let mut strings = Vec::new();
        json_strings(&doc, &mut strings);
        for s in &strings {
            assert_xml_chars(path, s);
        }
        published.push_str(&strings.join("\n"));
    }
    let (status, _, opml) = get(&format!("{base}/opml")).await;
    assert_eq!(status, 200);
    assert_xml_chars("/opml", &opml);
    assert_well_formed("/opml", &opml);
    let outlines = tributary::config::opml::read(&opml).expect("OPML reads");
    assert_eq!(outlines.len(), 3);
    assert!(
        outlines.iter().any(|o| o.title == "Atom source"),
        "{outlines:?}"
    );
    let (status, _, page) = get(&format!("{base}/status")).await;
    assert_eq!(status, 200);
    assert_xml_chars("/status", &page);
    assert!(page.contains("River of news"), "{page}");
    let (status, _, river) = get(&format!("{base}/")).await;
    assert_eq!(status, 200);
    assert_xml_chars("/", &river);

    // The text around the characters is all there, in every format.
    for word in [
        "RSSFEEDTITLE",
        "RSSTITLE",
        "RSSCREATOR",
        "RSSCATEGORY",
        "RSSSUMMARY",
        "RSSCONTENT",
        "RSSAUTHOR",
        "htmlentity",
        "ATOMFEEDAUTHOR",
        "ATOMTITLE",
        "ATOMLABEL",
        "ATOMAUTHOR",
        "ATOMSUMMARY",
        "ATOMCONTENT",
        "ATOMHTMLTITLE",
        "ATOMTEXT",
        "JSONFEEDAUTHOR",
        "JSONTITLE",
        "JSONCONTENT",
        "JSONTAG",
        "JSONAUTHOR",
        "JSONTEXT",
        "River of news",
        "All of it",
        "Atom source",
    ] {
        assert!(published.contains(word), "{word} is missing");
    }
    daemon.shutdown().await.expect("clean shutdown");
}

// ---------------------------------------------------------------------------------------------
// Fragments

/// Every `href` of an Atom entry's alternate link.
fn alternate_links(feed: &atom_syndication::Feed) -> Vec<String> {
    feed.entries
        .iter()
        .flat_map(|e| e.links.iter().filter(|l| l.rel == "alternate"))
        .map(|l| l.href.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_told_apart_by_fragment_stay_distinct_with_their_fragments() {
    let origin = Origin::start().await;
    origin.set("/scripting", Route::fixture("content/scriptingNews.rss"));
    let fixture = String::from_utf8(support::fixture("content/scriptingNews.rss")).expect("utf-8");
    let wanted: HashSet<String> = fixture
        .split("<link>")
        .skip(2) // the channel's own link
        .filter_map(|s| s.split("</link>").next())
        .map(str::to_string)
        .collect();
    assert_eq!(wanted.len(), 48, "the fixture's distinct post links");
    let pages: HashSet<&str> = wanted.iter().filter_map(|l| l.split('#').next()).collect();
    assert!(pages.len() < 10, "posts share a few day pages");

    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config_of(
        dir.path(),
        &source_toml("scripting", &origin.url("/scripting"), "1h", ""),
    );
    let mut daemon = start(cfg).await;
    let mut reports = daemon.take_reports();
    all_stored(&mut reports, &["scripting"]).await;
    let base = format!("http://{}", daemon.local_addr());
    for path in ["/feed.atom", "/sources/scripting.atom"] {
        let (_, _, body) = get(&format!("{base}{path}")).await;
        let feed = assert_valid_atom(&body, &format!("http://feeds.test{path}"));
        let links: HashSet<String> = alternate_links(&feed).into_iter().collect();
        assert_eq!(links, wanted, "{path}: every post, by its own link");
        assert_eq!(feed.entries.len(), 48, "{path}");
    }
    let (_, _, rss) = get(&format!("{base}/feed.rss")).await;
    let channel = assert_valid_rss(&rss, "http://feeds.test/feed.rss");
    let links: HashSet<String> = channel
        .items
        .iter()
        .filter_map(|i| i.link.clone())
        .collect();
    assert_eq!(links, wanted);
    let (_, _, json) = get(&format!("{base}/feed.json")).await;
    let doc: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    let links: HashSet<String> = doc["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["url"].as_str().map(str::to_string))
        .collect();
    assert_eq!(links, wanted);
    daemon.shutdown().await.expect("clean shutdown");
}

fn one_item_rss(title: &str, guid: &str, link: &str) -> String {
    format!(
        r#"<?xml version="1.0"?><rss version="2.0"><channel><title>{title}</title><link>https://{guid}.example/</link><description>d</description>
<item><guid>{guid}-1</guid><title>The article</title><link>{link}</link><pubDate>Mon, 01 Jan 2024 10:00:00 GMT</pubDate></item>
<item><guid>{guid}-2</guid><title>Something else from {guid}</title><link>https://{guid}.example/other</link><pubDate>Mon, 01 Jan 2024 09:00:00 GMT</pubDate></item>
</channel></rss>"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_section_anchor_is_still_the_same_article() {
    let origin = Origin::start().await;
    origin.set(
        "/first",
        Route::feed(
            one_item_rss("First", "first", "https://news.example/story#details"),
            "application/rss+xml",
        ),
    );
    origin.set(
        "/second",
        Route::feed(
            one_item_rss("Second", "second", "https://news.example/story"),
            "application/rss+xml",
        ),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    // `first` is polled first (the only one at the start); `second` after a reload.
    let cfg = config_of(
        dir.path(),
        &source_toml("first", &origin.url("/first"), "1h", ""),
    );
    let mut daemon = start(cfg).await;
    let mut reports = daemon.take_reports();
    all_stored(&mut reports, &["first"]).await;
    std::fs::write(
        dir.path().join("feeds.toml"),
        format!(
            "{}{}{}",
            config_prelude(""),
            source_toml("first", &origin.url("/first"), "1h", ""),
            source_toml("second", &origin.url("/second"), "1h", "")
        ),
    )
    .expect("config written");
    daemon.reload().await.expect("reload");
    all_stored(&mut reports, &["second"]).await;
    let base = format!("http://{}", daemon.local_addr());

    let (_, _, body) = get(&format!("{base}/feed.atom")).await;
    let feed = assert_valid_atom(&body, "http://feeds.test/feed.atom");
    let stories: Vec<_> = feed
        .entries
        .iter()
        .filter(|e| e.title.value == "The article")
        .collect();
    assert_eq!(
        stories.len(),
        1,
        "one article, credited to the first source"
    );
    assert_eq!(
        stories[0].links[0].href, "https://news.example/story#details",
        "its link keeps the fragment"
    );
    assert_eq!(feed.entries.len(), 3);
    // Each source's own feed shows its own link.
    let (_, _, second) = get(&format!("{base}/sources/second.atom")).await;
    let second = assert_valid_atom(&second, "http://feeds.test/sources/second.atom");
    assert!(alternate_links(&second).contains(&"https://news.example/story".to_string()));
    daemon.shutdown().await.expect("clean shutdown");
}

// ---------------------------------------------------------------------------------------------
// Feed authors

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_without_an_author_carry_their_feeds() {
    let origin = Origin::start().await;
    // research.swtch.com: the author at feed level only.
    origin.set("/rsc", Route::fixture("content/russcox.atom"));
    let rss = |channel_author: &str, prefix: &str| {
        format!(
            r#"<?xml version="1.0"?><rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd">
<channel><title>{prefix} feed</title><link>https://{prefix}.example/</link><description>d</description>{channel_author}
<item><guid>{prefix}-1</guid><title>{prefix} one</title><link>https://{prefix}.example/1</link></item>
<item><guid>{prefix}-2</guid><title>{prefix} two</title><link>https://{prefix}.example/2</link><dc:creator>Own Author</dc:creator></item>
</channel></rss>"#
        )
    };
    origin.set(
        "/editor",
        Route::feed(
            rss(
                "<managingEditor>ed@editor.example (Edna Editor)</managingEditor>",
                "editor",
            ),
            "application/rss+xml",
        ),
    );
    origin.set(
        "/creator",
        Route::feed(
            rss("<dc:creator>Carl Creator</dc:creator>", "creator"),
            "application/rss+xml",
        ),
    );
    origin.set(
        "/itunes",
        Route::feed(
            rss("<itunes:author>Ira Itunes</itunes:author>", "itunes"),
            "application/rss+xml",
        ),
    );
    origin.set(
        "/json",
        Route::feed(
            r#"{"version":"https://jsonfeed.org/version/1.1","title":"J","authors":[{"name":"Jo Json"}],
"items":[{"id":"j1","url":"https://json.example/1","title":"json one","content_text":"x"},
{"id":"j2","url":"https://json.example/2","title":"json two","content_text":"y","authors":[{"name":"Own Author"}]}]}"#,
            "application/feed+json",
        ),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config_of(
        dir.path(),
        &["rsc", "editor", "creator", "itunes", "json"]
            .map(|n| source_toml(n, &origin.url(&format!("/{n}")), "1h", ""))
            .concat(),
    );
    let mut daemon = start(cfg).await;
    let mut reports = daemon.take_reports();
    all_stored(
        &mut reports,
        &["rsc", "editor", "creator", "itunes", "json"],
    )
    .await;
    let base = format!("http://{}", daemon.local_addr());

    let expected = |title: &str| -> &str {
        match title.split(' ').next() {
            _ if title.ends_with(" two") => "Own Author",
            Some("editor") => "Edna Editor",
            Some("creator") => "Carl Creator",
            Some("itunes") => "Ira Itunes",
            Some("json") => "Jo Json",
            _ => "Russ Cox",
        }
    };
    let (_, _, body) = get(&format!("{base}/feed.atom")).await;
    let feed = assert_valid_atom(&body, "http://feeds.test/feed.atom");
    assert_eq!(feed.entries.len(), 19 + 8);
    for e in &feed.entries {
        let names: Vec<&str> = e.authors.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, [expected(&e.title.value)], "{}", e.title.value);
    }
    let rsc = feed
        .entries
        .iter()
        .find(|e| e.title.value == "Transparent Logs for Skeptical Clients")
        .expect("a post of research!rsc");
    assert_eq!(
        rsc.authors[0].uri.as_deref(),
        Some("https://swtch.com/~rsc")
    );

    let (_, _, rss_body) = get(&format!("{base}/feed.rss")).await;
    let channel = assert_valid_rss(&rss_body, "http://feeds.test/feed.rss");
    for item in &channel.items {
        let title = item.title.as_deref().unwrap_or_default();
        let creators = item
            .dublin_core_ext
            .as_ref()
            .map(|d| d.creators.clone())
            .unwrap_or_default();
        assert_eq!(creators, [expected(title)], "{title}");
    }
    let (_, _, json) = get(&format!("{base}/feed.json")).await;
    let doc: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    for item in doc["items"].as_array().expect("items") {
        let title = item["title"].as_str().unwrap_or_default();
        assert_eq!(
            item["authors"][0]["name"].as_str(),
            Some(expected(title)),
            "{title}"
        );
    }
    daemon.shutdown().await.expect("clean shutdown");
}

// ---------------------------------------------------------------------------------------------
// Local sources

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_sources_path_is_never_published() {
    let dir = tempfile::tempdir().expect("tempdir");
    let feeds = dir.path().join("private-feeds");
    std::fs::create_dir(&feeds).expect("mkdir");
    let path = feeds.join("diary.xml");
    std::fs::write(
        &path,
        r#"<?xml version="1.0"?><rss version="2.0"><channel><title>My diary</title><link>https://me.example/</link><description>d</description>
<item><guid>d1</guid><title>Dear diary</title><link>https://me.example/d1</link><pubDate>Mon, 01 Jan 2024 10:00:00 GMT</pubDate></item>
<item><guid>d2</guid><title>No link of its own</title><pubDate>Mon, 01 Jan 2024 09:00:00 GMT</pubDate><description>&lt;a href="notes/secret.html"&gt;notes&lt;/a&gt; &lt;img src="../img.png"&gt; &lt;a href="//evil.test/x"&gt;far&lt;/a&gt; &lt;a href='#top'&gt;top&lt;/a&gt; &lt;a href="https://ok.example/kept"&gt;kept&lt;/a&gt;</description></item>
</channel></rss>"#,
    )
    .expect("feed written");
    let file_url = url::Url::from_file_path(&path).expect("file URL");
    // A second local source whose file is missing: its error names the path.
    let missing = url::Url::from_file_path(feeds.join("missing.xml")).expect("file URL");
    let cfg = config_of(
        dir.path(),
        &format!(
            "{}{}",
            source_toml("diary", file_url.as_str(), "1h", ""),
            source_toml("missing", missing.as_str(), "1h", "")
        ),
    );
    let mut daemon = start(cfg).await;
    let mut reports = daemon.take_reports();
    let mut left = HashSet::from(["diary", "missing"]);
    while !left.is_empty() {
        let r = tokio::time::timeout(Duration::from_secs(60), reports.recv())
            .await
            .expect("polled in time")
            .expect("reports");
        match (r.source.as_str(), &r.outcome) {
            ("diary", PollOutcome::Stored { .. }) => left.remove("diary"),
            ("missing", PollOutcome::Failed { error }) => {
                assert!(matches!(error, PollError::Fetch(_)), "{error:?}");
                assert!(error.to_string().contains("missing.xml"), "{error}");
                left.remove("missing")
            }
            (name, other) => panic!("{name}: {other:?}"),
        };
    }
    let base = format!("http://{}", daemon.local_addr());
    let private = feeds.to_string_lossy().to_string();
    let here = "http://feeds.test/sources/diary.atom";

    let (_, _, atom) = get(&format!("{base}/feed.atom")).await;
    let feed = assert_valid_atom(&atom, "http://feeds.test/feed.atom");
    let src = feed.entries[0].source.as_ref().expect("a <source>");
    assert_eq!(src.title.value, "My diary");
    assert_eq!(src.id, here);
    assert!(src.links.iter().any(|l| l.rel == "self" && l.href == here));
    let (_, _, rss) = get(&format!("{base}/feed.rss")).await;
    let channel = assert_valid_rss(&rss, "http://feeds.test/feed.rss");
    let rss_source = channel.items[0].source.as_ref().expect("a <source>");
    assert_eq!(rss_source.url, here);
    assert_eq!(rss_source.title.as_deref(), Some("My diary"));
    let (_, _, json) = get(&format!("{base}/feed.json")).await;
    let doc: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(doc["items"][0]["_source"]["feed_url"].as_str(), Some(here));
    let (_, _, opml) = get(&format!("{base}/opml")).await;
    let outlines = tributary::config::opml::read(&opml).expect("OPML");
    assert_eq!(outlines[0].xml_url, here);
    assert_eq!(outlines[0].title, "My diary");
    assert_eq!(
        outlines[1].xml_url,
        "http://feeds.test/sources/missing.atom"
    );
    let (_, _, page) = get(&format!("{base}/status")).await;
    assert!(page.contains(here), "{page}");
    let (_, _, river) = get(&format!("{base}/")).await;
    assert!(page.contains("[local path]"), "{page}");

    let (_, _, health) = get(&format!("{base}/healthz")).await;
    let h: serde_json::Value = serde_json::from_str(&health).expect("JSON");
    assert_eq!(h["sources"][0]["url"].as_str(), Some(here), "{health}");
    assert!(
        h["sources"][1]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("[local path]")),
        "{health}"
    );
    let (_, _, metrics) = get(&format!("{base}/metrics")).await;

    for (what, body) in [
        ("/feed.atom", &atom),
        ("/feed.rss", &rss),
        ("/feed.json", &json),
        ("/opml", &opml),
        ("/status", &page),
        ("/", &river),
        ("/healthz", &health),
        ("/metrics", &metrics),
    ] {
        assert!(
            !body.contains("file://"),
            "{what} publishes a file: URL: {body}"
        );
        assert!(!body.contains(&private), "{what} publishes the local path");
        assert!(
            !body.contains("secret.html") && !body.contains("img.png"),
            "{what} publishes a link relative to the local file: {body}"
        );
    }
    // A relative link in a local feed has no public address: it is dropped, not resolved
    // against the file; absolute web links stay.
    assert!(atom.contains("https://ok.example/kept"), "{atom}");
    // The owner's own export (tributary export-opml) still lists the file.
    let exported = tributary::render::opml::export(&daemon.config(), &|_| None);
    assert!(exported.contains("file:"), "{exported}");
    daemon.shutdown().await.expect("clean shutdown");
}

/// A web source cannot turn relative links into `file:` URLs with `xml:base`, and user names
/// and passwords in entry links and enclosures are never published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_local_urls_or_credentials_reach_an_output() {
    let origin = Origin::start().await;
    origin.set(
        "/based.atom",
        Route::feed(
            r#"<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom" xml:base="file:///etc/"><title>Based</title><id>urn:based</id><updated>2024-01-01T00:00:00Z</updated>
<entry><id>urn:b1</id><title>Based entry</title><updated>2024-01-01T00:00:00Z</updated><content type="html">&lt;a href="passwd"&gt;p&lt;/a&gt; &lt;a href="//evil.test/x"&gt;e&lt;/a&gt;</content></entry></feed>"#,
            "application/atom+xml",
        ),
    );
    origin.set(
        "/creds.xml",
        Route::feed(
            r#"<?xml version="1.0"?><rss version="2.0"><channel><title>Creds</title><link>https://creds.example/</link><description>d</description>
<item><guid>c1</guid><title>With credentials</title><link>http://user:pw@a.test/p1</link><enclosure url="https://u:pw@creds.test/e.mp3" type="audio/mpeg" length="1"/><pubDate>Mon, 01 Jan 2024 10:00:00 GMT</pubDate></item>
</channel></rss>"#,
            "application/rss+xml",
        ),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config_of(
        dir.path(),
        &format!(
            "{}{}",
            source_toml("based", &origin.url("/based.atom"), "1h", ""),
            source_toml(
                "creds",
                &origin
                    .url("/creds.xml")
                    .replace("http://", "http://owner:hunter2@"),
                "1h",
                ""
            )
        ),
    );
    let mut daemon = start(cfg).await;
    let mut reports = daemon.take_reports();
    all_stored(&mut reports, &["based", "creds"]).await;
    let base = format!("http://{}", daemon.local_addr());
    for path in [
        "/feed.atom",
        "/feed.rss",
        "/feed.json",
        "/healthz",
        "/opml",
        "/status",
        "/",
    ] {
        let (status, _, body) = get(&format!("{base}{path}")).await;
        assert_eq!(status, 200);
        assert!(
            !body.contains("hunter2"),
            "{path} publishes a source's password: {body}"
        );
        if matches!(path, "/healthz" | "/opml" | "/status") {
            continue;
        }
        assert!(
            !body.contains("file:"),
            "{path} publishes a file: URL: {body}"
        );
        assert!(!body.contains("/etc/"), "{path}: {body}");
        assert!(
            !body.contains("pw@"),
            "{path} publishes credentials: {body}"
        );
        assert!(body.contains("a.test/p1"), "{path} lost the link: {body}");
        assert!(
            body.contains("creds.test/e.mp3"),
            "{path} lost the enclosure: {body}"
        );
    }
    daemon.shutdown().await.expect("clean shutdown");
}

fn guidless_rss(items: &[(&str, &str)]) -> String {
    let mut s = String::from(
        r#"<?xml version="1.0"?><rss version="2.0"><channel><title>Day pages</title><link>http://s.test/</link><description>d</description>"#,
    );
    for (title, link) in items {
        s.push_str(&format!(
            "<item><title>{title}</title><link>{link}</link><description>{title} body</description><pubDate>Wed, 31 Jan 2024 10:00:00 GMT</pubDate></item>"
        ));
    }
    s.push_str("</channel></rss>");
    s
}

/// A day's page gains its second post (the source starts telling its entries apart by
/// fragment), then the first rolls back alone: each post stays one entry throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_gaining_its_second_fragment_post_makes_no_duplicate() {
    let origin = Origin::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config_of(
        dir.path(),
        &source_toml("day", &origin.url("/day.xml"), "1h", ""),
    );
    let first = ("first", "http://s.test/2024/01/31.html#a1");
    let second = ("second", "http://s.test/2024/01/31.html#a2");
    for items in [vec![first], vec![second, first], vec![first]] {
        origin.set(
            "/day.xml",
            Route::feed(guidless_rss(&items), "application/rss+xml"),
        );
        let reports = app::once(cfg.clone()).await.expect("polls");
        assert!(
            matches!(reports[0].outcome, PollOutcome::Stored { .. }),
            "{:?}",
            reports[0].outcome
        );
    }
    let daemon = start(cfg).await;
    let base = format!("http://{}", daemon.local_addr());
    let (_, _, atom) = get(&format!("{base}/feed.atom")).await;
    let feed = assert_valid_atom(&atom, "http://feeds.test/feed.atom");
    let mut titles: Vec<&str> = feed
        .entries
        .iter()
        .map(|e| e.title.value.as_str())
        .collect();
    titles.sort_unstable();
    assert_eq!(titles, ["first", "second"], "{atom}");
    daemon.shutdown().await.expect("clean shutdown");
}
