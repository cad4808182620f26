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
    fn garbage_is_an_error() {
        assert!(parse(b"hello world", None, &base()).is_err());
        assert!(parse(b"<rss version=\"2.0\"><channel><title>x", None, &base()).is_err());
    }
}
