//! Raw bytes to a parsed feed, for every common format: RSS 0.9x, 1.0 (RDF) and 2.0, Atom
//! 0.3 and 1.0, JSON Feed 1.0 and 1.1. No I/O.
//!
//! feed-rs does the format work and honours the XML declaration's encoding. Its types stay
//! between this module and [`crate::feed::normalise`]; they never reach the store.
//!
//! This file is the dispatch: decode ([`crate::feed::charset`]), bound (`bounds.rs`), parse
//! with the rewrites feed-rs needs (`rewrite.rs`), add what it drops (`extras.rs`); when that
//! fails, an HTML page is named with the feeds it advertises (`discover.rs`), and broken XML
//! is repaired and tried again (`repair.rs`).

mod bounds;
mod discover;
mod extras;
mod repair;
mod rewrite;

use url::Url;

pub use discover::advertised_feeds;
pub(crate) use extras::thumbnail;
pub use feed_rs::model::Feed as ParsedFeed;

use bounds::{TagCounts, bound_json, cut_long_lists_counted, truncate_entries};
use discover::looks_like_html;
use extras::{add_channel_creator, add_item_extras};
use repair::repair;
use rewrite::{
    ATOM_03_NS, RSS_10_NS, RSS_090_NS, USERLAND_NS, link_rdf_items, pin_content_bases,
    rewrite_atom, strip_userland_ns,
};

/// How many entries of one document are read by default (`[fetch] max_entries`).
pub const DEFAULT_MAX_ENTRIES: usize = 5_000;

/// How many items of any one list of an entry (categories, authors, links, media) are
/// looked at, whatever the feed holds: longer lists are cut before feed-rs reads them, and
/// normalise reads no further.
pub const MAX_LIST_SCAN: usize = 1_000;

/// Why a document is no feed we can read.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// An HTML page, with the feeds it advertises (absolute URLs), if any.
    #[error(
        "not a feed: the server sent an HTML page ({}){}",
        content_type.as_deref().unwrap_or("no content type"),
        advertised_list(advertised)
    )]
    HtmlPage {
        content_type: Option<String>,
        advertised: Vec<String>,
    },
    /// Well-formed, but no RSS, Atom or JSON Feed root.
    #[error(
        "not a feed: the server sent a document with no RSS, Atom or JSON Feed root{}",
        content_type.as_ref().map(|ct| format!(" ({ct})")).unwrap_or_default()
    )]
    NoFeedRoot { content_type: Option<String> },
    /// Not well-formed XML, at this place (1-based).
    #[error("cannot parse the feed: XML error at line {line}, column {column}: {what}")]
    Xml {
        line: usize,
        column: usize,
        what: String,
    },
    /// feed-rs refused it for another reason (bad JSON, an unknown version...).
    #[error("cannot parse the feed: {}", feed_rs_message(.0))]
    Invalid(feed_rs::parser::ParseFeedError),
}

fn advertised_list(advertised: &[String]) -> String {
    if advertised.is_empty() {
        String::new()
    } else {
        const SHOWN: usize = 5;
        let more = match advertised.len().saturating_sub(SHOWN) {
            0 => String::new(),
            n => format!(" and {n} more"),
        };
        format!(
            "; the page advertises these feeds, use one as the url: {}{more}",
            advertised[..advertised.len().min(SHOWN)].join(", ")
        )
    }
}

/// feed-rs's message, with its own prefix left off for XML errors (the XML reader's
/// message says it all).
fn feed_rs_message(e: &feed_rs::parser::ParseFeedError) -> String {
    match e {
        feed_rs::parser::ParseFeedError::XmlReader(xml) => xml.to_string(),
        other => other.to_string(),
    }
}

/// A parsed document and what had to be forgiven to read it.
#[derive(Debug)]
pub struct Parsed {
    pub feed: ParsedFeed,
    /// Guessed encodings, repaired XML: worth recording, not worth failing for.
    pub warnings: Vec<String>,
}

/// Parses `bytes`. `content_type` is the HTTP Content-Type, if any; `base` is the URL the
/// document came from (after redirects), against which relative links are resolved.
pub fn parse(
    bytes: &[u8],
    content_type: Option<&str>,
    base: &Url,
) -> Result<ParsedFeed, ParseError> {
    parse_document(bytes, content_type, base).map(|p| p.feed)
}

/// [`parse`], with the warnings.
///
/// The bytes are decoded to UTF-8 first ([`crate::feed::charset`]). When the strict parse fails on
/// breakage real readers forgive (a bare `&`, an HTML entity such as `&nbsp;` that XML does
/// not declare, an `<rss>` with no or an odd `version`), the document is repaired and parsed
/// again, with a warning.
pub fn parse_document(
    bytes: &[u8],
    content_type: Option<&str>,
    base: &Url,
) -> Result<Parsed, ParseError> {
    parse_document_limited(bytes, content_type, base, DEFAULT_MAX_ENTRIES)
}

/// [`parse_document`], reading at most the first `max_entries` entries of an XML feed (feeds
/// list their newest first). The parser's model costs about 2 KB an entry, so a hostile
/// 100,000-entry document would otherwise cost hundreds of megabytes; the cut is made before
/// parsing, with a warning.
pub fn parse_document_limited(
    bytes: &[u8],
    content_type: Option<&str>,
    base: &Url,
    max_entries: usize,
) -> Result<Parsed, ParseError> {
    let mut warnings = Vec::new();
    let json = bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace() && !matches!(b, 0xEF | 0xBB | 0xBF))
        == Some(&b'{');
    let decoded = crate::feed::charset::decode(bytes, if json { None } else { content_type });
    warnings.extend(decoded.warning);
    let mut text = decoded.text;
    if json && let Some((bounded, what)) = bound_json(&text, max_entries) {
        warnings.push(what);
        text = std::borrow::Cow::Owned(bounded);
    }
    // One cheap look at the tags decides whether either XML pass below can cut anything
    // (cutting long lists only removes elements: the count stays an upper bound).
    let tags = (!json).then(|| TagCounts::of(&text));
    if let Some(tags) = &tags
        && let Some((cut, dropped)) = cut_long_lists_counted(&text, MAX_LIST_SCAN, tags)
    {
        warnings.push(format!(
            "{dropped} repeated elements past the first {} of their kind in one entry were not read",
            MAX_LIST_SCAN
        ));
        text = std::borrow::Cow::Owned(cut);
    }
    if tags.is_some_and(|t| t.entries > max_entries)
        && let Some((cut, found)) = truncate_entries(&text, max_entries)
    {
        warnings.push(format!(
            "the feed has more than {max_entries} entries ({found} or more): only the first {max_entries} were read"
        ));
        text = std::borrow::Cow::Owned(cut);
    }
    let first_error = match parse_text(&text, base) {
        Ok(mut feed) => {
            add_item_extras(&mut feed, &text, base);
            add_channel_creator(&mut feed, &text);
            return Ok(Parsed { feed, warnings });
        }
        Err(e) => e,
    };
    if looks_like_html(text.as_bytes(), content_type) {
        return Err(ParseError::HtmlPage {
            content_type: content_type.map(str::to_string),
            advertised: advertised_feeds(text.as_bytes(), base),
        });
    }
    if !json
        && let Some((repaired, what)) = repair(&text)
        && let Ok(feed) = parse_text(
            &truncate_entries(&repaired, max_entries).map_or(repaired.clone(), |(cut, found)| {
                warnings.push(format!(
                    "the feed has more than {max_entries} entries ({found} or more): only the first {max_entries} were read"
                ));
                cut
            }),
            base,
        )
    {
        warnings.push(format!("recovered from malformed XML: {what}"));
        return Ok(Parsed { feed, warnings });
    }
    Err(match first_error {
        feed_rs::parser::ParseFeedError::ParseError(
            feed_rs::parser::ParseErrorKind::NoFeedRoot,
        ) => ParseError::NoFeedRoot {
            content_type: content_type.map(str::to_string),
        },
        feed_rs::parser::ParseFeedError::XmlReader(xml) => match xml_error_at(text.as_bytes()) {
            Some((line, column, what)) => ParseError::Xml { line, column, what },
            None => ParseError::Invalid(feed_rs::parser::ParseFeedError::XmlReader(xml)),
        },
        other => ParseError::Invalid(other),
    })
}

/// feed-rs on UTF-8 text, with RSS 0.90 read as RSS 1.0: it is RDF with Netscape's
/// namespace, which feed-rs does not know (it finds the channel but no items), and its
/// elements are RSS 1.0's.
fn parse_text(text: &str, base: &Url) -> Result<ParsedFeed, feed_rs::parser::ParseFeedError> {
    // feed-rs gives an entry's content only the xml:base written on <content> itself, not
    // one inherited from <entry> or <feed>: write the effective base where it can see it.
    if text.contains("xml:base")
        && let Some(pinned) = pin_content_bases(text, base)
    {
        return parse_feed_text(&pinned, base);
    }
    parse_feed_text(text, base)
}

fn parse_feed_text(text: &str, base: &Url) -> Result<ParsedFeed, feed_rs::parser::ParseFeedError> {
    // Atom 0.3 (its own namespace, elements and `mode`s), which feed-rs reads as an Atom 1.0
    // feed with nothing in it: rewritten as the Atom 1.0 it maps onto.
    if text.contains(ATOM_03_NS)
        && let Some(atom10) = rewrite_atom(text, true)
    {
        return parse_with_feed_rs(atom10.as_bytes(), base);
    }
    let feed = match parse_with_feed_rs(text.as_bytes(), base) {
        Ok(feed) => feed,
        // Atom text constructs with MIME types for `type` (`text/plain`, `text/html`,
        // `application/xhtml+xml`...) or unknown ones make feed-rs reject the whole feed.
        Err(e) => match rewrite_atom(text, false) {
            Some(fixed) => return parse_with_feed_rs(fixed.as_bytes(), base).map_err(|_| e),
            None => return Err(e),
        },
    };
    // RSS 0.90 read as RSS 1.0: every mention replaced at once, so the document is parsed
    // once more at most (one replacement per retry let a comment repeating the namespace
    // recurse a thousand times and overflow the stack).
    if feed.entries.is_empty() && text.contains(RSS_090_NS) {
        return parse_feed_text(&text.replace(RSS_090_NS, RSS_10_NS), base);
    }
    // RSS 2.0 put in a namespace of its own (an early UserLand draft): no items found.
    if feed.entries.is_empty()
        && text.contains(USERLAND_NS)
        && let Some(plain) = strip_userland_ns(text)
    {
        return parse_with_feed_rs(plain.as_bytes(), base);
    }
    // RSS 1.0 items without <link> are dropped by feed-rs; their rdf:about is their URI.
    if feed.feed_type == feed_rs::model::FeedType::RSS1
        && feed.entries.len() < text.matches("<item").count()
        && let Some(linked) = link_rdf_items(text)
    {
        return parse_with_feed_rs(linked.as_bytes(), base);
    }
    Ok(feed)
}

fn parse_with_feed_rs(
    bytes: &[u8],
    base: &Url,
) -> Result<ParsedFeed, feed_rs::parser::ParseFeedError> {
    feed_rs::parser::Builder::new()
        .base_uri(Some(base.as_str()))
        // An empty id tells normalise the feed gave none: feed-rs would otherwise invent a
        // random UUID on every parse, and such an entry would look new on every poll.
        .id_generator(|_, _, _| String::new())
        // Sanitising is ours to do (normalise), with URL resolution against the entry link.
        .sanitize_content(false)
        .timestamp_parser(crate::feed::dates::parse)
        .build()
        .parse(bytes)
}

/// Finds where a document stops being well-formed XML: (line, column, what), 1-based.
/// feed-rs's errors carry no position; quick-xml's reader does.
fn xml_error_at(bytes: &[u8]) -> Option<(usize, usize, String)> {
    let mut reader = quick_xml::Reader::from_reader(bytes);
    let mut buf = Vec::new();
    let mut depth = 0usize;
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(quick_xml::events::Event::Start(_)) => depth += 1,
            Ok(quick_xml::events::Event::End(_)) => depth = depth.saturating_sub(1),
            Ok(quick_xml::events::Event::Eof) => {
                return (depth > 0).then(|| {
                    let (l, c) = line_col(bytes, bytes.len());
                    (
                        l,
                        c,
                        "the document ends before its elements are closed (truncated?)".into(),
                    )
                });
            }
            Ok(_) => {}
            Err(e) => {
                let at = usize::try_from(reader.error_position()).unwrap_or(usize::MAX);
                let (l, c) = line_col(bytes, at.min(bytes.len()));
                return Some((l, c, e.to_string()));
            }
        }
        buf.clear();
    }
}

fn line_col(bytes: &[u8], at: usize) -> (usize, usize) {
    let before = &bytes[..at];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    let col = String::from_utf8_lossy(&before[start..]).chars().count() + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("http://example.org/feed").expect("static url")
    }

    /// An RSS 2.0 document that opens with `head` and has 50 items, guids 0 to 49.
    fn fifty_items(head: &str) -> String {
        let mut xml = String::from(head);
        for i in 0..50 {
            xml.push_str(&format!("<item><guid>{i}</guid><title>n{i}</title></item>"));
        }
        xml.push_str("</channel></rss>");
        xml
    }

    #[test]
    fn long_lists_in_an_entry_are_cut_before_feed_rs() {
        let cats: String = (0..3000)
            .map(|i| format!("<category>c{i}</category>"))
            .collect();
        let encs: String = (0..3000)
            .map(|i| format!("<enclosure url=\"http://example.org/{i}.mp3\" length=\"1\" type=\"audio/mpeg\"/>"))
            .collect();
        let xml = format!(
            r#"<rss version="2.0"><channel><title>t</title><item><title>a</title>{cats}{encs}<link>http://example.org/a</link></item><item><title>b</title><category>x</category></item></channel></rss>"#
        );
        let parsed = parse_document(xml.as_bytes(), None, &base()).expect("parses");
        let max = MAX_LIST_SCAN;
        assert_eq!(parsed.feed.entries[0].categories.len(), max);
        assert_eq!(parsed.feed.entries[0].categories[0].term, "c0");
        assert_eq!(parsed.feed.entries[0].links[0].href, "http://example.org/a");
        assert_eq!(parsed.feed.entries[1].categories.len(), 1);
        assert!(
            parsed
                .warnings
                .iter()
                .any(|w| w.contains("4000 repeated elements")),
            "{:?}",
            parsed.warnings
        );
        // A feed with many entries is no list to cut.
        let items: String = (0..3000)
            .map(|i| format!("<item><title>{i}</title></item>"))
            .collect();
        let xml = format!(r#"<rss version="2.0"><channel><title>t</title>{items}</channel></rss>"#);
        assert!(bounds::cut_long_lists(&xml, max).is_none());
    }

    #[test]
    fn tag_counts_are_an_upper_bound() {
        let xml = r#"<?xml version="1.0"?><rss version="2.0"><channel><!-- <item> --><title>t</title>
            <item><title>a</title><category>x</category><category/><media:thumbnail url="u"/></item>
            <item ><title>b</title><![CDATA[<category>]]><entry/></item><items/></channel></rss>"#;
        let tags = bounds::TagCounts::of(xml);
        // The comment, the two items, `<entry/>` and `<items/>` all open with "item"/"entry".
        assert_eq!(tags.entries, 5);
        // `category` three times (two elements and the CDATA's text), as `title` and `item`.
        assert_eq!(tags.most_of_one_name, 3);
        assert!(bounds::TagCounts::of("<<<<<<<<").most_of_one_name == 8);
    }

    #[test]
    fn long_lists_of_the_channel_between_entries_are_still_cut() {
        // No item has a long list, and no stretch between items holds more than `max` of one
        // name: only the channel, counted across the items, has too many.
        let max = MAX_LIST_SCAN;
        let before: String = (0..max)
            .map(|i| format!("<category>b{i}</category>"))
            .collect();
        let after: String = (0..3)
            .map(|i| format!("<category>a{i}</category>"))
            .collect();
        let xml = format!(
            r#"<rss version="2.0"><channel><title>t</title>{before}<item><title>x</title></item>{after}<item><title>y</title></item></channel></rss>"#
        );
        let parsed = parse_document(xml.as_bytes(), None, &base()).expect("parses");
        assert_eq!(parsed.feed.categories.len(), max);
        assert_eq!(parsed.feed.entries.len(), 2);
        assert!(
            parsed
                .warnings
                .iter()
                .any(|w| w.contains("3 repeated elements")),
            "{:?}",
            parsed.warnings
        );
        // One fewer: nothing is cut.
        let before: String = (0..max - 3)
            .map(|i| format!("<category>b{i}</category>"))
            .collect();
        let xml = format!(
            r#"<rss version="2.0"><channel><title>t</title>{before}<item><title>x</title></item>{after}</channel></rss>"#
        );
        let parsed = parse_document(xml.as_bytes(), None, &base()).expect("parses");
        assert_eq!(parsed.feed.categories.len(), max);
        assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    }

    #[test]
    fn extras_are_read_when_every_entry_has_a_thumbnail() {
        // Each item has a thumbnail (itunes:image, read with its summary into the media it
        // illustrates) and the channel a lone media:thumbnail:
        // no thumbnail is wanted, but the Dublin Core terms date still is.
        let xml = r#"<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd" xmlns:media="http://search.yahoo.com/mrss/" xmlns:dcterms="http://purl.org/dc/terms/"><channel><title>t</title><media:thumbnail url="http://example.org/channel.jpg"/>
            <item><title>a</title><media:content url="http://example.org/a.mp3" type="audio/mpeg"/><itunes:image href="http://example.org/a.jpg"/><itunes:summary>s</itunes:summary><dcterms:issued>2024-03-05T10:00:00Z</dcterms:issued></item>
            <item><title>b</title><media:content url="http://example.org/b.mp3" type="audio/mpeg"/><itunes:image href="http://example.org/b.jpg"/><itunes:summary>s</itunes:summary></item></channel></rss>"#;
        let feed = parse(xml.as_bytes(), None, &base()).expect("parses");
        let thumbs = |e: &feed_rs::model::Entry| -> Vec<String> {
            e.media
                .iter()
                .flat_map(|m| m.thumbnails.iter().map(|t| t.image.uri.clone()))
                .collect()
        };
        assert_eq!(thumbs(&feed.entries[0]), ["http://example.org/a.jpg"]);
        assert_eq!(thumbs(&feed.entries[1]), ["http://example.org/b.jpg"]);
        assert_eq!(
            feed.entries[0].published.map(|d| d.to_rfc3339()).as_deref(),
            Some("2024-03-05T10:00:00+00:00")
        );
        // Without the date, and an item with no thumbnail but a lone media:thumbnail of its
        // own: that item gets it.
        let xml = xml
            .replace(
                "<dcterms:issued>2024-03-05T10:00:00Z</dcterms:issued>",
                "",
            )
            .replace(
                r#"<media:content url="http://example.org/a.mp3" type="audio/mpeg"/><itunes:image href="http://example.org/a.jpg"/>"#,
                r#"<media:thumbnail url="http://example.org/own.jpg"/>"#,
            );
        let feed = parse(xml.as_bytes(), None, &base()).expect("parses");
        assert_eq!(thumbs(&feed.entries[0]), ["http://example.org/own.jpg"]);
        assert_eq!(thumbs(&feed.entries[1]), ["http://example.org/b.jpg"]);
    }

    #[test]
    fn json_feed_lists_are_bounded() {
        let tags: Vec<String> = (0..3000).map(|i| format!("t{i}")).collect();
        let doc = serde_json::json!({
            "version": "https://jsonfeed.org/version/1.1", "title": "j",
            "items": [{"id": "1", "content_text": "x", "tags": tags}],
        });
        let parsed = parse_document(doc.to_string().as_bytes(), None, &base()).expect("parses");
        assert_eq!(parsed.feed.entries[0].categories.len(), MAX_LIST_SCAN);
        assert!(!parsed.warnings.is_empty());
    }

    #[test]
    fn entries_without_ids_get_empty_ids_not_random_ones() {
        let xml = br#"<rss version="2.0"><channel><title>t</title><item><title>a</title></item></channel></rss>"#;
        let feed = parse(xml, None, &base()).expect("parses");
        assert_eq!(feed.entries[0].id, "");
    }

    #[test]
    fn html_page_is_not_a_feed() {
        let html = b"<!DOCTYPE html><html><head><title>x</title></head><body></body></html>";
        let e = parse(html, Some("text/html; charset=utf-8"), &base()).expect_err("not a feed");
        assert!(
            e.to_string()
                .starts_with("not a feed: the server sent an HTML page (text/html")
        );
    }

    #[test]
    fn rss_090_items_are_read() {
        let xml = br#"<?xml version="1.0"?><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://my.netscape.com/rdf/simple/0.9/"><channel><title>t</title><link>http://example.org/</link></channel><item><title>one</title><link>http://example.org/1</link></item></rdf:RDF>"#;
        let feed = parse(xml, None, &base()).expect("parses");
        assert_eq!(feed.entries.len(), 1);
        assert_eq!(feed.entries[0].links[0].href, "http://example.org/1");
    }

    #[test]
    fn html_page_names_the_feeds_it_advertises() {
        let html = br#"<!DOCTYPE html><html><head>
            <link rel="alternate" type="application/rss+xml" title="Main" href="/feed.xml">
            <link rel="alternate" type="application/atom+xml" href="https://other.example/atom">
            <link rel="stylesheet" href="/style.css">
            </head><body><a href="/x">x</a></body></html>"#;
        let e = parse(html, Some("text/html"), &base()).expect_err("not a feed");
        assert_eq!(
            e.to_string(),
            "not a feed: the server sent an HTML page (text/html); the page advertises these feeds, use one as the url: http://example.org/feed.xml, https://other.example/atom"
        );
    }

    #[test]
    fn xml_errors_have_a_position() {
        let xml = b"<?xml version=\"1.0\"?>\n<rss version=\"2.0\"><channel>\n<title>x</title>\n<item><title>a</titel></item></channel></rss>";
        let e = parse(xml, None, &base()).expect_err("malformed");
        assert!(
            e.to_string()
                .starts_with("cannot parse the feed: XML error at line 4, column"),
            "{e}"
        );
        let truncated = b"<rss version=\"2.0\"><channel><title>x</title>\n<item><title>a";
        let e = parse(truncated, None, &base()).expect_err("truncated");
        assert!(e.to_string().contains("line 2"), "{e}");
    }

    #[test]
    fn common_breakage_is_repaired_with_a_warning() {
        let xml = "<rss><channel><title>Fish & Chips&nbsp;&eacute;&copy;</title><item><title>a &amp; b &#233; &#xE9;</title><description><![CDATA[x & y]]></description></item></channel></rss>";
        let p = parse_document(xml.as_bytes(), None, &base()).expect("repaired");
        assert_eq!(p.feed.title.expect("title").content, "Fish & Chips\u{a0}é©");
        assert_eq!(
            p.feed.entries[0].title.as_ref().expect("title").content,
            "a & b é é"
        );
        assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
        assert!(
            p.warnings[0].contains("bare '&'") && p.warnings[0].contains("HTML entities"),
            "{:?}",
            p.warnings
        );
        assert!(
            p.warnings[0].contains("without version"),
            "{:?}",
            p.warnings
        );
        let odd = r#"<rss version="2.00"><channel><title>t</title><item><title>x</title></item></channel></rss>"#;
        assert_eq!(
            parse_document(odd.as_bytes(), None, &base())
                .expect("repaired")
                .feed
                .entries
                .len(),
            1
        );
    }

    #[test]
    fn declared_encoding_and_http_charset_are_honoured() {
        let latin1 = b"<?xml version=\"1.0\" encoding=\"iso-8859-1\"?><rss version=\"2.0\"><channel><title>caf\xe9</title></channel></rss>";
        let p = parse_document(latin1, None, &base()).expect("parses");
        assert_eq!(p.feed.title.expect("title").content, "café");
        // The HTTP header says UTF-8 but the bytes are not: the declaration is believed.
        let p = parse_document(latin1, Some("text/xml; charset=utf-8"), &base()).expect("parses");
        assert_eq!(p.feed.title.expect("title").content, "café");
        assert_eq!(p.warnings.len(), 1);
        // An explicit HTTP charset beats the declaration.
        let p = parse_document(latin1, Some("text/xml; charset=koi8-r"), &base()).expect("parses");
        assert_eq!(p.feed.title.expect("title").content, "cafИ");
    }

    #[test]
    fn huge_feeds_are_cut_after_max_entries() {
        let xml =
            fifty_items(r#"<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>"#);
        let p = parse_document_limited(xml.as_bytes(), None, &base(), 10).expect("parses");
        assert_eq!(p.feed.entries.len(), 10);
        assert_eq!(p.feed.entries[9].id, "9");
        assert!(
            p.warnings[0].contains("more than 10 entries"),
            "{:?}",
            p.warnings
        );
        let p = parse_document_limited(xml.as_bytes(), None, &base(), 50).expect("parses");
        assert_eq!((p.feed.entries.len(), p.warnings.len()), (50, 0));
    }

    #[test]
    fn atom_03_is_read_as_atom_10() {
        let xml = r#"<?xml version="1.0"?><feed version="0.3" xmlns="http://purl.org/atom/ns#">
            <title mode="escaped" type="text/html">A &amp;lt;b&amp;gt;feed</title>
            <tagline>Sub</tagline><modified>2003-12-31T10:14:55Z</modified>
            <entry><id>e1</id><title>One</title><link rel="alternate" type="text/html" href="http://example.org/1"/>
              <issued>2003-12-31T10:14:55Z</issued><modified>2004-01-01T00:00:00Z</modified>
              <author><name>Me</name><url>http://example.org/me</url></author>
              <content type="text/html" mode="escaped">&lt;p&gt;Hi&lt;/p&gt;</content></entry>
            <entry><id>e2</id><title type="text/plain">Two</title><created>2003-12-30T00:00:00Z</created></entry>
            </feed>"#;
        let feed = parse(xml.as_bytes(), None, &base()).expect("parses");
        assert_eq!(feed.entries.len(), 2);
        let e = &feed.entries[0];
        assert_eq!(
            e.published.map(|d| d.to_rfc3339()).as_deref(),
            Some("2003-12-31T10:14:55+00:00")
        );
        assert_eq!(
            e.updated.map(|d| d.to_rfc3339()).as_deref(),
            Some("2004-01-01T00:00:00+00:00")
        );
        assert_eq!(e.authors[0].uri.as_deref(), Some("http://example.org/me"));
        assert_eq!(
            e.content.as_ref().and_then(|c| c.body.as_deref()),
            Some("<p>Hi</p>")
        );
        assert_eq!(
            feed.entries[1].published.map(|d| d.to_rfc3339()).as_deref(),
            Some("2003-12-30T00:00:00+00:00")
        );
    }

    #[test]
    fn atom_mime_types_for_text_are_accepted() {
        let xml = r#"<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><id>f</id>
            <entry><id>e</id><title type="text/plain">Plain</title><summary type="application/xhtml+xml"><div xmlns="http://www.w3.org/1999/xhtml">x</div></summary></entry></feed>"#;
        let feed = parse(xml.as_bytes(), None, &base()).expect("parses");
        assert_eq!(feed.entries.len(), 1);
    }

    #[test]
    fn rss_without_channel_is_read() {
        let xml = r#"<rss version="2.0"><item><title>a</title><link>http://example.org/a</link></item></rss>"#;
        let p = parse_document(xml.as_bytes(), None, &base()).expect("parses");
        assert_eq!(p.feed.entries.len(), 1);
        let empty = parse_document(
            br#"<?xml version="1.0"?><rss version="2.0"></rss>"#,
            None,
            &base(),
        );
        assert_eq!(empty.expect("an empty feed").feed.entries.len(), 0);
    }

    #[test]
    fn inherited_xml_base_reaches_content() {
        let xml = r#"<feed xmlns="http://www.w3.org/2005/Atom" xml:base="http://example.com/root/"><title>t</title><id>f</id>
            <entry xml:base="posts/"><id>e</id><title>x</title><content type="html">&lt;a href="a.html"&gt;a&lt;/a&gt;</content></entry></feed>"#;
        let feed = parse(xml.as_bytes(), None, &base()).expect("parses");
        assert_eq!(
            feed.entries[0].base.as_deref(),
            Some("http://example.com/root/posts/")
        );
    }

    #[test]
    fn inherited_xml_base_reaches_summaries() {
        let xml = r#"<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><id>f</id>
            <entry><id>e</id><title>x</title><summary type="html" xml:base="http://example.com/test/">&lt;a href="test.html"&gt;a &amp;amp; b&lt;/a&gt;</summary></entry></feed>"#;
        let feed = parse(xml.as_bytes(), None, &base()).expect("parses");
        let summary = &feed.entries[0].summary.as_ref().expect("summary").content;
        assert!(
            summary.contains(r#"href="http://example.com/test/test.html""#),
            "{summary}"
        );
        assert!(summary.contains("a &amp; b"), "{summary}");
    }

    #[test]
    fn hostile_rdf_and_rss_tags_do_not_panic_or_corrupt() {
        let rdf = "<?xml version=\"1.0\"?><rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\" xmlns=\"http://purl.org/rss/1.0/\"><channel rdf:about=\"http://e.org/\"><title>t</title><link>http://e.org/</link><items/></channel><item rdf:about=\"http://e.org/1\"><title>a</title><link>http://e.org/1</link></item><!-- <item rdf:about=\u{201c}x\u{201d}> --></rdf:RDF>";
        assert_eq!(
            parse(rdf.as_bytes(), None, &base())
                .expect("parses")
                .entries
                .len(),
            1
        );
        let rss = r#"<rss xmlns:v="http://example.com/version/1" version="2.0"><channel><title>Fish & Chips</title><item><title>x</title></item></channel></rss>"#;
        let p = parse_document(rss.as_bytes(), None, &base()).expect("repaired");
        assert!(
            !p.warnings[0].contains("without version"),
            "{:?}",
            p.warnings
        );
    }

    #[test]
    fn malformed_huge_feeds_are_still_cut() {
        let xml = fifty_items(r#"<rss version="2.0"><channel><title>Fish & Chips</title>"#);
        let p = parse_document_limited(xml.as_bytes(), None, &base(), 10).expect("parses");
        assert_eq!(p.feed.entries.len(), 10);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(parse(b"hello world", None, &base()).is_err());
        assert!(parse(b"<rss version=\"2.0\"><channel><title>x", None, &base()).is_err());
    }
}
