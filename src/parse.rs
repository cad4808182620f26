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
            ParseError::NotAFeed {
                what: format!(
                    "an HTML page ({})",
                    content_type.unwrap_or("no content type")
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
                other => ParseError::Invalid(other.to_string()),
            }
        }),
    }
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
    fn garbage_is_an_error() {
        assert!(parse(b"hello world", None, &base()).is_err());
        assert!(parse(b"<rss version=\"2.0\"><channel><title>x", None, &base()).is_err());
    }
}
