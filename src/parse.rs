//! Raw bytes to a parsed feed, for every common format: RSS 0.9x, 1.0 (RDF) and 2.0, Atom
//! 0.3 and 1.0, JSON Feed 1.0 and 1.1. No I/O.
//!
//! feed-rs does the format work and honours the XML declaration's encoding. Its types stay
//! between this module and [`crate::normalise`]; they never reach the store.

use url::Url;

pub use feed_rs::model::Feed as ParsedFeed;

#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("not a feed: the server sent {what}")]
    NotAFeed { what: String },
    #[error("cannot parse the feed: {0}")]
    Invalid(String),
}

/// Parses `bytes`. `content_type` is the HTTP Content-Type, if any; `base` is the URL the
/// document came from (after redirects), against which relative links are resolved.
pub fn parse(
    bytes: &[u8],
    content_type: Option<&str>,
    base: &Url,
) -> Result<ParsedFeed, ParseError> {
    let feed = parse_with_feed_rs(bytes, content_type, base)?;
    // RSS 0.90 is RDF with Netscape's namespace, which feed-rs does not know: it finds the
    // channel but no items. Its elements are RSS 1.0's, so read it as RSS 1.0.
    if feed.entries.is_empty()
        && let Some(at) = find(bytes, RSS_090_NS)
    {
        let mut rewritten = Vec::with_capacity(bytes.len());
        rewritten.extend_from_slice(&bytes[..at]);
        rewritten.extend_from_slice(RSS_10_NS);
        rewritten.extend_from_slice(&bytes[at + RSS_090_NS.len()..]);
        return parse_with_feed_rs(&rewritten, content_type, base);
    }
    Ok(feed)
}

const RSS_090_NS: &[u8] = b"http://my.netscape.com/rdf/simple/0.9/";
const RSS_10_NS: &[u8] = b"http://purl.org/rss/1.0/";

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn parse_with_feed_rs(
    bytes: &[u8],
    content_type: Option<&str>,
    base: &Url,
) -> Result<ParsedFeed, ParseError> {
    let parser = feed_rs::parser::Builder::new()
        .base_uri(Some(base.as_str()))
        // An empty id tells normalise the feed gave none: feed-rs would otherwise invent a
        // random UUID on every parse, and such an entry would look new on every poll.
        .id_generator(|_, _, _| String::new())
        // Sanitising is ours to do (normalise), with URL resolution against the entry link.
        .sanitize_content(false)
        .build();
    match parser.parse(bytes) {
        Ok(feed) => Ok(feed),
        Err(e) => Err(if looks_like_html(bytes, content_type) {
            let advertised = advertised_feeds(bytes, base);
            ParseError::NotAFeed {
                what: format!(
                    "an HTML page ({}){}",
                    content_type.unwrap_or("no content type"),
                    if advertised.is_empty() {
                        String::new()
                    } else {
                        format!(
                            "; the page advertises these feeds, use one as the url: {}",
                            advertised.join(", ")
                        )
                    }
                ),
            }
        } else {
            match e {
                feed_rs::parser::ParseFeedError::ParseError(
                    feed_rs::parser::ParseErrorKind::NoFeedRoot,
                ) => ParseError::NotAFeed {
                    what: match content_type {
                        Some(ct) => {
                            format!("a document with no RSS, Atom or JSON Feed root ({ct})")
                        }
                        None => "a document with no RSS, Atom or JSON Feed root".to_string(),
                    },
                },
                feed_rs::parser::ParseFeedError::XmlReader(xml) => match xml_error_at(bytes) {
                    Some((line, col, what)) => ParseError::Invalid(format!(
                        "XML error at line {line}, column {col}: {what}"
                    )),
                    None => ParseError::Invalid(xml.to_string()),
                },
                other => ParseError::Invalid(other.to_string()),
            }
        }),
    }
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

/// The feeds an HTML page advertises with `<link rel="alternate" type="application/rss+xml"
/// href="...">` (or Atom, JSON Feed), as absolute URLs, read with html5ever's tokenizer.
pub fn advertised_feeds(html: &[u8], base: &Url) -> Vec<String> {
    use html5ever::tokenizer::{
        BufferQueue, Tag, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
    };
    use std::cell::RefCell;

    struct Links(RefCell<Vec<Tag>>);
    impl TokenSink for Links {
        type Handle = ();
        fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
            if let Token::TagToken(tag) = token
                && tag.kind == TagKind::StartTag
                && (&*tag.name == "link" || &*tag.name == "a")
            {
                self.0.borrow_mut().push(tag);
            }
            TokenSinkResult::Continue
        }
    }

    let text = String::from_utf8_lossy(html);
    let tokenizer = Tokenizer::new(Links(RefCell::new(Vec::new())), TokenizerOpts::default());
    let queue = BufferQueue::default();
    queue.push_back(text.as_ref().into());
    let _ = tokenizer.feed(&queue);
    tokenizer.end();
    let mut found = Vec::new();
    for tag in tokenizer.sink.0.borrow().iter() {
        let attr = |name: &str| {
            tag.attrs
                .iter()
                .find(|a| &*a.name.local == name)
                .map(|a| a.value.to_string())
        };
        let rel = attr("rel").unwrap_or_default().to_ascii_lowercase();
        let kind = attr("type").unwrap_or_default().to_ascii_lowercase();
        let is_feed_type = [
            "application/rss+xml",
            "application/atom+xml",
            "application/feed+json",
            "application/rdf+xml",
        ]
        .iter()
        .any(|t| kind.starts_with(t));
        if !rel.split_whitespace().any(|r| r == "alternate") || !is_feed_type {
            continue;
        }
        if let Some(url) = attr("href").and_then(|h| base.join(h.trim()).ok())
            && matches!(url.scheme(), "http" | "https")
            && !found.contains(&url.to_string())
        {
            found.push(url.to_string());
        }
    }
    found
}

fn looks_like_html(bytes: &[u8], content_type: Option<&str>) -> bool {
    if content_type.is_some_and(|ct| ct.to_ascii_lowercase().starts_with("text/html")) {
        return true;
    }
    let head: Vec<u8> = bytes.iter().take(512).map(u8::to_ascii_lowercase).collect();
    let head = String::from_utf8_lossy(&head);
    let head = head.trim_start_matches('\u{feff}').trim_start();
    head.starts_with("<!doctype html") || head.starts_with("<html")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("http://example.org/feed").expect("static url")
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
    fn garbage_is_an_error() {
        assert!(parse(b"hello world", None, &base()).is_err());
        assert!(parse(b"<rss version=\"2.0\"><channel><title>x", None, &base()).is_err());
    }
}
