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
/// The bytes are decoded to UTF-8 first ([`crate::charset`]). When the strict parse fails on
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

/// How many entries of one document are read by default (`[fetch] max_entries`).
pub const DEFAULT_MAX_ENTRIES: usize = 5_000;

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
    let decoded = crate::charset::decode(bytes, if json { None } else { content_type });
    warnings.extend(decoded.warning);
    let mut text = decoded.text;
    if !json && let Some((cut, found)) = truncate_entries(&text, max_entries) {
        warnings.push(format!(
            "the feed has more than {max_entries} entries ({found} or more): only the first {max_entries} were read"
        ));
        text = std::borrow::Cow::Owned(cut);
    }
    let first_error = match parse_text(&text, base) {
        Ok(feed) => return Ok(Parsed { feed, warnings }),
        Err(e) => e,
    };
    if looks_like_html(text.as_bytes(), content_type) {
        let advertised = advertised_feeds(text.as_bytes(), base);
        return Err(ParseError::NotAFeed {
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
        });
    }
    if !json
        && let Some((repaired, what)) = repair(&text)
        && let Ok(feed) = parse_text(&repaired, base)
    {
        warnings.push(format!("recovered from malformed XML: {what}"));
        return Ok(Parsed { feed, warnings });
    }
    Err(match first_error {
        feed_rs::parser::ParseFeedError::ParseError(
            feed_rs::parser::ParseErrorKind::NoFeedRoot,
        ) => ParseError::NotAFeed {
            what: match content_type {
                Some(ct) => format!("a document with no RSS, Atom or JSON Feed root ({ct})"),
                None => "a document with no RSS, Atom or JSON Feed root".to_string(),
            },
        },
        feed_rs::parser::ParseFeedError::XmlReader(xml) => match xml_error_at(text.as_bytes()) {
            Some((line, col, what)) => {
                ParseError::Invalid(format!("XML error at line {line}, column {col}: {what}"))
            }
            None => ParseError::Invalid(xml.to_string()),
        },
        other => ParseError::Invalid(other.to_string()),
    })
}

/// feed-rs on UTF-8 text, with RSS 0.90 read as RSS 1.0: it is RDF with Netscape's
/// namespace, which feed-rs does not know (it finds the channel but no items), and its
/// elements are RSS 1.0's.
fn parse_text(text: &str, base: &Url) -> Result<ParsedFeed, feed_rs::parser::ParseFeedError> {
    let feed = parse_with_feed_rs(text.as_bytes(), base)?;
    if feed.entries.is_empty() && text.contains(RSS_090_NS) {
        return parse_with_feed_rs(text.replacen(RSS_090_NS, RSS_10_NS, 1).as_bytes(), base);
    }
    Ok(feed)
}

/// The document cut after its `max`-th entry (`<item>` or `<entry>`), with the elements
/// still open at that point closed again; `None` when it has no more than `max` entries.
/// Also returns how many entries were seen (the scan stops soon after the cut).
fn truncate_entries(text: &str, max: usize) -> Option<(String, usize)> {
    use quick_xml::events::Event;
    // Cheap test first: most feeds are far below any limit.
    if text.matches("<item").count() + text.matches("<entry").count() <= max {
        return None;
    }
    let mut reader = quick_xml::Reader::from_str(text);
    let mut open: Vec<String> = Vec::new();
    let mut seen = 0usize;
    let mut cut_at = None;
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => open.push(e.name().into_inner().to_string()),
            Ok(Event::End(e)) => {
                open.pop();
                let name = e.local_name();
                if matches!(name.into_inner(), "item" | "entry") {
                    seen += 1;
                    if seen == max {
                        cut_at = Some((
                            usize::try_from(reader.buffer_position()).ok()?,
                            open.clone(),
                        ));
                    } else if seen > max {
                        break;
                    }
                }
            }
            Ok(Event::Eof) | Err(_) => break,
            Ok(_) => {}
        }
    }
    let (at, still_open) = cut_at?;
    if seen <= max {
        return None;
    }
    let mut out = String::with_capacity(at + 64);
    out.push_str(text.get(..at)?);
    for name in still_open.iter().rev() {
        out.push_str("</");
        out.push_str(name);
        out.push('>');
    }
    Some((out, seen))
}

/// Repairs what real readers forgive; `None` when there is nothing to repair.
fn repair(text: &str) -> Option<(String, String)> {
    let mut what = Vec::new();
    let mut out = String::with_capacity(text.len() + 64);
    let mut rest = text;
    let (mut bare, mut html_entities) = (0usize, 0usize);
    while let Some(i) = rest.find(['&', '<']) {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        // Copy CDATA sections and comments through untouched.
        for (open, close) in [("<![CDATA[", "]]>"), ("<!--", "-->")] {
            if rest.starts_with(open) {
                let end = rest.find(close).map_or(rest.len(), |e| e + close.len());
                out.push_str(&rest[..end]);
                rest = &rest[end..];
            }
        }
        if rest.starts_with('<') {
            out.push('<');
            rest = &rest[1..];
            continue;
        }
        if !rest.starts_with('&') {
            continue;
        }
        let name_len = rest[1..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '#'))
            .unwrap_or(rest.len() - 1);
        let name = &rest[1..1 + name_len];
        let terminated = rest[1 + name_len..].starts_with(';');
        if terminated
            && (matches!(name, "amp" | "lt" | "gt" | "quot" | "apos") || is_char_ref(name))
        {
            out.push_str(&rest[..name_len + 2]);
            rest = &rest[name_len + 2..];
            continue;
        }
        if terminated && !name.is_empty() {
            let entity = &rest[..name_len + 2];
            let decoded = html_escape::decode_html_entities(entity);
            if decoded != entity {
                for c in decoded.chars() {
                    out.push_str(&format!("&#x{:X};", c as u32));
                }
                html_entities += 1;
                rest = &rest[name_len + 2..];
                continue;
            }
        }
        out.push_str("&amp;");
        bare += 1;
        rest = &rest[1..];
    }
    out.push_str(rest);
    if html_entities > 0 {
        what.push(format!("{html_entities} undeclared HTML entities"));
    }
    if bare > 0 {
        what.push(format!("{bare} bare '&'"));
    }
    if let Some(fixed) = fix_rss_version(&out) {
        out = fixed;
        what.push("an <rss> element without version 2.0".to_string());
    }
    (!what.is_empty()).then(|| (out, what.join(", ")))
}

fn is_char_ref(name: &str) -> bool {
    match name.strip_prefix('#') {
        Some(hex) if hex.starts_with(['x', 'X']) => {
            hex.len() > 1 && hex[1..].chars().all(|c| c.is_ascii_hexdigit())
        }
        Some(dec) => !dec.is_empty() && dec.chars().all(|c| c.is_ascii_digit()),
        None => false,
    }
}

/// An `<rss>` root whose `version` feed-rs does not accept (missing, "2.00", "2.0.1"...) is
/// read as RSS 2.0, as every reader does.
fn fix_rss_version(text: &str) -> Option<String> {
    let at = text.find("<rss")?;
    if !text[at + 4..].starts_with([' ', '>', '\t', '\r', '\n']) {
        return None;
    }
    let end = at + text[at..].find('>')?;
    let tag = &text[at..end];
    let version = tag.find("version").and_then(|v| {
        let rest = tag[v + 7..].trim_start().strip_prefix('=')?.trim_start();
        let q = rest.chars().next()?;
        let value = rest.get(1..)?;
        Some(&value[..value.find(q)?])
    });
    if matches!(version, Some("2.0" | "0.91" | "0.92" | "")) {
        return None;
    }
    let mut new_tag = String::from("<rss version=\"2.0\"");
    let attrs = &tag[4..];
    match tag.find("version") {
        Some(v) => {
            // Drop the old version attribute.
            let rest = &tag[v..];
            let q_start = rest.find(['"', '\''])?;
            let q = rest[q_start..].chars().next()?;
            let q_end = q_start + 1 + rest[q_start + 1..].find(q)?;
            new_tag.push_str(&tag[4..v]);
            new_tag.push_str(&rest[q_end + 1..]);
        }
        None => new_tag.push_str(attrs),
    }
    Some(format!("{}{}{}", &text[..at], new_tag, &text[end..]))
}

const RSS_090_NS: &str = "http://my.netscape.com/rdf/simple/0.9/";
const RSS_10_NS: &str = "http://purl.org/rss/1.0/";

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
        .timestamp_parser(crate::dates::parse)
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
        let mut xml =
            String::from(r#"<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>"#);
        for i in 0..50 {
            xml.push_str(&format!("<item><guid>{i}</guid><title>n{i}</title></item>"));
        }
        xml.push_str("</channel></rss>");
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
    fn garbage_is_an_error() {
        assert!(parse(b"hello world", None, &base()).is_err());
        assert!(parse(b"<rss version=\"2.0\"><channel><title>x", None, &base()).is_err());
    }
}
