//! Raw bytes to a parsed feed, for every common format: RSS 0.9x, 1.0 (RDF) and 2.0, Atom
//! 0.3 and 1.0, JSON Feed 1.0 and 1.1. No I/O.
//!
//! feed-rs does the format work and honours the XML declaration's encoding. Its types stay
//! between this module and [`crate::feed::normalise`]; they never reach the store.

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

pub use crate::feed::DEFAULT_MAX_ENTRIES;

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
    if !json
        && let Some((cut, dropped)) = cut_long_lists(&text, crate::feed::normalise::MAX_LIST_SCAN)
    {
        warnings.push(format!(
            "{dropped} repeated elements past the first {} of their kind in one entry were not read",
            crate::feed::normalise::MAX_LIST_SCAN
        ));
        text = std::borrow::Cow::Owned(cut);
    }
    if !json && let Some((cut, found)) = truncate_entries(&text, max_entries) {
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

/// Items of a JSON Feed read at most (the newest first); feed-rs has no limit of its own.
/// Lists inside an item (`tags`, `authors`, `attachments`) and the feed's `authors` are cut
/// to [`crate::feed::normalise::MAX_LIST_SCAN`]: feed-rs compares each author with every one before
/// it, and gives every item without authors a copy of the feed's.
///
/// `None` when the document is within these bounds (or is no JSON object: feed-rs says
/// what is wrong with it; serde_json refuses nesting over 128 levels).
fn bound_json(text: &str, max_entries: usize) -> Option<(String, String)> {
    use serde_json::Value;
    let max_list = crate::feed::normalise::MAX_LIST_SCAN;
    let mut doc: Value = serde_json::from_str(text).ok()?;
    let obj = doc.as_object_mut()?;
    let mut cut = Vec::new();
    let bound = |v: Option<&mut Value>, max: usize, what: &str, cut: &mut Vec<String>| {
        if let Some(Value::Array(list)) = v
            && list.len() > max
        {
            cut.push(format!("{what} ({} of {})", max, list.len()));
            list.truncate(max);
        }
    };
    bound(obj.get_mut("authors"), max_list, "feed authors", &mut cut);
    bound(obj.get_mut("items"), max_entries, "items", &mut cut);
    if let Some(Value::Array(items)) = obj.get_mut("items") {
        for item in items.iter_mut().filter_map(Value::as_object_mut) {
            for list in ["tags", "authors", "attachments"] {
                bound(item.get_mut(list), max_list, list, &mut cut);
            }
        }
    }
    if cut.is_empty() {
        return None;
    }
    cut.dedup_by(|a, b| a.split(' ').next() == b.split(' ').next());
    let what = format!("the JSON Feed was cut to bounds: {}", cut.join(", "));
    Some((serde_json::to_string(&doc).ok()?, what))
}

/// An RSS channel's `<dc:creator>` as the feed's author (feed-rs reads it only on items),
/// when the feed names no other (`managingEditor`, `itunes:author`).
fn add_channel_creator(feed: &mut ParsedFeed, text: &str) {
    use quick_xml::events::Event;
    if !matches!(
        feed.feed_type,
        feed_rs::model::FeedType::RSS0
            | feed_rs::model::FeedType::RSS1
            | feed_rs::model::FeedType::RSS2
    ) || !feed.authors.is_empty()
        || feed
            .contributors
            .iter()
            .any(|p| p.role.as_deref() == Some("managingEditor"))
        || !text.contains("creator")
    {
        return;
    }
    let mut reader = quick_xml::Reader::from_str(text);
    let mut path: Vec<Vec<u8>> = Vec::new();
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                let name = e.name().into_inner().as_bytes().to_vec();
                let local = name.rsplit(|b| *b == b':').next().unwrap_or(&name);
                if matches!(local, b"item" | b"entry") {
                    // Items' own creators are feed-rs's to read: skipped whole.
                    if reader.read_to_end(e.name()).is_err() {
                        return;
                    }
                    continue;
                }
                let in_channel = path
                    .last()
                    .is_some_and(|p| p.rsplit(|b| *b == b':').next() == Some(b"channel"));
                if in_channel && name.ends_with(b":creator") && name.starts_with(b"dc") {
                    let Ok(t) = reader.read_text(e.name()) else {
                        return;
                    };
                    let creator = html_escape::decode_html_entities(t.trim()).into_owned();
                    if !creator.is_empty() {
                        feed.authors.push(feed_rs::model::Person {
                            name: Some(creator),
                            uri: None,
                            email: None,
                            role: Some("author".into()),
                        });
                    }
                    return;
                }
                path.push(name);
            }
            Ok(Event::End(_)) => {
                path.pop();
            }
            Ok(Event::Eof) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// The document without the children of an entry (or of the channel or feed; entries
/// themselves excepted) past the first `max` of the same name: 600,000 `<category>`s in one item would otherwise become
/// 600,000 feed-rs values (tens of megabytes) that normalise reads no further than `max`.
/// `None` when no element has that many children of one name; else the cut document and
/// how many elements were left out.
///
/// Counted for elements up to the depth where entries' children are (`rss > channel > item
/// > category`); the document is copied once, in ranges, when something is cut.
fn cut_long_lists(text: &str, max: usize) -> Option<(String, usize)> {
    use quick_xml::events::Event;
    use std::collections::HashMap;
    /// The deepest parent whose children are counted (`item` in `rss > channel > item`).
    const DEEPEST_PARENT: usize = 3;
    // Cheap test first: a document with so few tags has no such list.
    if text.bytes().filter(|b| *b == b'<').count() <= max {
        return None;
    }
    let mut reader = quick_xml::Reader::from_str(text);
    // For each open element up to DEEPEST_PARENT: how many children of each name.
    let mut counts: Vec<HashMap<String, usize>> = vec![HashMap::new()];
    let mut depth = 0usize;
    let mut out = String::new();
    let mut copied = 0usize;
    let mut dropped = 0usize;
    loop {
        let before = reader.buffer_position() as usize;
        let (name, empty) = match reader.read_event() {
            Ok(Event::Start(e)) => (e.name().into_inner().to_string(), false),
            Ok(Event::Empty(e)) => (e.name().into_inner().to_string(), true),
            Ok(Event::End(_)) => {
                if depth <= DEEPEST_PARENT {
                    counts.pop();
                }
                depth = depth.saturating_sub(1);
                continue;
            }
            Ok(Event::Eof) | Err(_) => break,
            Ok(_) => continue,
        };
        // Entries are not a list of this kind: `max_entries` bounds them.
        let local = name.rsplit(':').next().unwrap_or(&name);
        let over = depth <= DEEPEST_PARENT
            && !matches!(local, "item" | "entry")
            && counts.last_mut().is_some_and(|c| {
                let n = c.entry(name.clone()).or_default();
                *n += 1;
                *n > max
            });
        if over {
            if !empty {
                let end = quick_xml::name::QName(&name);
                if reader.read_to_end(end).is_err() {
                    break;
                }
            }
            let after = reader.buffer_position() as usize;
            out.push_str(text.get(copied..before)?);
            copied = after;
            dropped += 1;
            continue;
        }
        if !empty {
            depth += 1;
            if depth <= DEEPEST_PARENT {
                counts.push(HashMap::new());
            }
        }
    }
    if dropped == 0 {
        return None;
    }
    out.push_str(text.get(copied..)?);
    Some((out, dropped))
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
    if feed.entries.is_empty() && text.contains(USERLAND_NS) {
        let plain = text
            .replacen(&format!(" xmlns=\"{USERLAND_NS}\""), "", 1)
            .replacen(&format!(" xmlns='{USERLAND_NS}'"), "", 1);
        if plain != text {
            return parse_with_feed_rs(plain.as_bytes(), base);
        }
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
    // RSS 2.0 put in a namespace of its own (an early UserLand draft).
    for ns in [
        " xmlns=\"http://backend.userland.com/rss2\"",
        " xmlns='http://backend.userland.com/rss2'",
    ] {
        if out.contains(ns) {
            out = out.replacen(ns, "", 1);
            what.push("RSS 2.0 in the backend.userland.com namespace".to_string());
        }
    }
    if let Some(fixed) = wrap_rss_channel(&out) {
        out = fixed;
        what.push("an <rss> element without <channel>".to_string());
    }
    (!what.is_empty()).then(|| (out, what.join(", ")))
}

/// An `<rss>` with no `<channel>` (items straight inside, or nothing at all): its content
/// wrapped in one, as feedparser reads it.
fn wrap_rss_channel(text: &str) -> Option<String> {
    if text.contains("<channel") {
        return None;
    }
    let at = text.find("<rss")?;
    let end = at + text[at..].find('>')?;
    if text[..end].ends_with('/') {
        let start_tag = text[at..end].trim_end_matches('/').trim_end();
        return Some(format!(
            "{}{start_tag}><channel></channel></rss>{}",
            &text[..at],
            &text[end + 1..]
        ));
    }
    let close = text.rfind("</rss>")?;
    Some(format!(
        "{}<channel>{}</channel>{}",
        &text[..=end],
        &text[end + 1..close],
        &text[close..]
    ))
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
    // `version` as an attribute name, not inside another attribute's value.
    let version_at = tag.match_indices("version").map(|(i, _)| i).find(|&i| {
        tag[..i].ends_with([' ', '\t', '\r', '\n']) && tag[i + 7..].trim_start().starts_with('=')
    });
    let version = version_at.and_then(|v| {
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
    match version_at {
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

const ATOM_03_NS: &str = "http://purl.org/atom/ns#";
const ATOM_10_NS: &str = "http://www.w3.org/2005/Atom";

/// Rewrites an Atom document for feed-rs: `type` attributes given as MIME types (or
/// unknown) become Atom 1.0's `text`/`html`/`xhtml`; with `from_03`, Atom 0.3 also becomes
/// Atom 1.0 (namespace, `issued`/`modified`/`created`, `tagline`, `copyright`, `url` of a
/// person, and `mode="escaped"`). `None` when the document is no Atom or nothing changed.
fn rewrite_atom(text: &str, from_03: bool) -> Option<String> {
    use quick_xml::events::attributes::Attribute;
    use quick_xml::events::{BytesEnd, BytesStart, Event};
    use quick_xml::name::QName;
    use std::borrow::Cow;

    fn renamed(name: &str, parent: Option<&str>, from_03: bool) -> Option<String> {
        if !from_03 {
            return None;
        }
        let (prefix, local) = match name.rsplit_once(':') {
            Some((p, l)) => (Some(p), l),
            None => (None, name),
        };
        let new = match (local, parent.map(|p| p.rsplit(':').next().unwrap_or(p))) {
            ("issued", _) => "published",
            ("modified", _) => "updated",
            ("tagline", _) => "subtitle",
            ("copyright", _) => "rights",
            ("url", Some("author" | "contributor")) => "uri",
            _ => return None,
        };
        Some(match prefix {
            Some(p) => format!("{p}:{new}"),
            None => new.to_string(),
        })
    }
    const TEXT_CONSTRUCTS: &[&str] = &[
        "title",
        "subtitle",
        "tagline",
        "summary",
        "content",
        "rights",
        "copyright",
    ];

    let mut reader = quick_xml::Reader::from_str(text);
    let mut writer = quick_xml::Writer::new(Vec::with_capacity(text.len() + 256));
    let mut stack: Vec<String> = Vec::new();
    let mut changed = false;
    let mut saw_feed = false;
    let mut has_issued: Vec<bool> = Vec::new();
    loop {
        let event = reader.read_event().ok()?;
        let (start, empty) = match &event {
            Event::Start(e) => (Some(e), false),
            Event::Empty(e) => (Some(e), true),
            _ => (None, false),
        };
        if let Some(e) = start {
            let name = e.name().into_inner().to_string();
            let local = name.rsplit(':').next().unwrap_or(&name).to_string();
            if stack.is_empty() {
                if local != "feed" {
                    return None;
                }
                saw_feed = true;
            }
            if from_03 && local == "entry" {
                has_issued.push(false);
            }
            if from_03
                && local == "issued"
                && let Some(h) = has_issued.last_mut()
            {
                *h = true;
            }
            // `created` is only a stand-in for `issued`, when an entry has none before it.
            let new_name = if from_03 && local == "created" {
                if has_issued.last().copied().unwrap_or(true) {
                    None
                } else {
                    Some(name.replacen("created", "published", 1))
                }
            } else {
                renamed(&name, stack.last().map(String::as_str), from_03)
            };
            let mut out = BytesStart::new(new_name.clone().unwrap_or_else(|| name.clone()));
            let is_text = TEXT_CONSTRUCTS.contains(&local.as_str());
            let mut mode = None;
            let mut ty = None;
            for attr in e.attributes().with_checks(false).flatten() {
                let key = attr.key.into_inner();
                if key.starts_with("xmlns") && attr.value == ATOM_03_NS && from_03 {
                    out.push_attribute(Attribute {
                        key: QName(key),
                        value: Cow::Borrowed(ATOM_10_NS),
                    });
                    changed = true;
                } else if is_text && key == "mode" {
                    mode = Some(attr.value.to_string());
                    changed = true;
                } else if is_text && key == "type" {
                    ty = Some(attr.value.to_string());
                } else {
                    out.push_attribute(attr);
                }
            }
            if is_text {
                let mapped = match (
                    ty.as_deref().map(str::to_ascii_lowercase).as_deref(),
                    mode.as_deref(),
                ) {
                    (_, Some("escaped")) => Some("html"),
                    (Some("text" | "html" | "xhtml"), _) => None,
                    (Some("text/html"), _) => Some("html"),
                    (None, None) => None,
                    (Some("text/plain"), _) | (None, _) => Some("text"),
                    (Some(t), _) if t.contains("xml") => Some("xhtml"),
                    _ => Some("text"),
                };
                match (mapped, ty.as_deref()) {
                    (Some(m), _) => {
                        changed |= ty.as_deref() != Some(m);
                        out.push_attribute(("type", m));
                    }
                    (None, Some(t)) => out.push_attribute(Attribute {
                        key: QName("type"),
                        value: Cow::Owned(t.to_string()),
                    }),
                    (None, None) => {}
                }
            }
            changed |= new_name.is_some();
            // A dropped `created` is skipped with its contents.
            if from_03 && local == "created" && new_name.is_none() {
                changed = true;
                if !empty {
                    reader.read_to_end(e.name()).ok()?;
                }
                continue;
            }
            if empty {
                writer.write_event(Event::Empty(out)).ok()?;
            } else {
                stack.push(new_name.unwrap_or(name));
                writer.write_event(Event::Start(out)).ok()?;
            }
            continue;
        }
        match event {
            Event::End(_) => {
                let name = stack.pop()?;
                if from_03 && name.rsplit(':').next() == Some("entry") {
                    has_issued.pop();
                }
                writer.write_event(Event::End(BytesEnd::new(name))).ok()?;
            }
            Event::Eof => break,
            other => writer.write_event(other).ok()?,
        }
    }
    if !saw_feed || !changed {
        return None;
    }
    String::from_utf8(writer.into_inner()).ok()
}

/// Writes on every Atom `<content>` the absolute xml:base in effect there (inherited and
/// resolved), when one is in effect. `None` when nothing changed (or not Atom).
fn pin_content_bases(text: &str, document: &Url) -> Option<String> {
    use quick_xml::events::attributes::Attribute;
    use quick_xml::events::{BytesStart, Event};
    use quick_xml::name::QName;
    use std::borrow::Cow;

    let mut reader = quick_xml::Reader::from_str(text);
    let mut writer = quick_xml::Writer::new(Vec::with_capacity(text.len() + 256)); // The base in effect for each open element, whether an xml:base set it, and whether
    // the element is inside a summary or content (inline XHTML).
    let mut bases: Vec<(Url, bool, bool)> = Vec::new();
    let mut changed = false;
    loop {
        let event = reader.read_event().ok()?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let name = e.name().into_inner().to_string();
                if bases.is_empty() && name.rsplit(':').next() != Some("feed") {
                    return None;
                }
                let (parent, inherited, in_text) =
                    bases
                        .last()
                        .cloned()
                        .unwrap_or((document.clone(), false, false));
                let own = e
                    .attributes()
                    .with_checks(false)
                    .flatten()
                    .find(|a| a.key.into_inner() == "xml:base")
                    .and_then(|a| {
                        let raw = html_escape::decode_html_entities(&a.value).into_owned();
                        parent.join(raw.trim()).ok()
                    });
                let (here, set) = match own {
                    Some(u) => (u, true),
                    None => (parent, inherited),
                };
                let local = name.rsplit(':').next().unwrap_or(&name);
                let is_empty = matches!(event, Event::Empty(_));
                // feed-rs keeps no base for a summary: its HTML is resolved here, against the
                // base in effect, and written back (escaped HTML, as `type="html"` says).
                let html_summary = local == "summary"
                    && set
                    && !is_empty
                    && e.attributes().with_checks(false).flatten().any(|a| {
                        a.key.into_inner() == "type" && a.value.eq_ignore_ascii_case("html")
                    });
                if html_summary {
                    writer.write_event(Event::Start(e.clone())).ok()?;
                    let mut html = String::new();
                    loop {
                        match reader.read_event().ok()? {
                            Event::Text(t) => html.push_str(&t.into_inner()),
                            Event::GeneralRef(r) => {
                                let entity = format!("&{};", r.into_inner());
                                html.push_str(&html_escape::decode_html_entities(&entity));
                            }
                            Event::CData(c) => html.push_str(&c.into_inner()),
                            // Markup where escaped HTML was promised: leave it all to the
                            // parser, unpinned.
                            Event::Start(_) | Event::Empty(_) => return None,
                            Event::End(end) => {
                                let mut builder = ammonia::Builder::default();
                                builder.url_relative(ammonia::UrlRelative::RewriteWithBase(
                                    here.clone(),
                                ));
                                let cleaned = builder.clean(&html).to_string();
                                writer
                                    .write_event(Event::Text(quick_xml::events::BytesText::new(
                                        &cleaned,
                                    )))
                                    .ok()?;
                                writer.write_event(Event::End(end)).ok()?;
                                break;
                            }
                            Event::Eof => return None,
                            _ => {}
                        }
                    }
                    changed = true;
                    continue;
                } // Inline XHTML in a summary or content: its links resolved here.
                if in_text && set {
                    let mut out = BytesStart::new(name.clone());
                    for a in e.attributes().with_checks(false).flatten() {
                        let key = a.key.into_inner();
                        if matches!(key, "href" | "src") {
                            let raw = html_escape::decode_html_entities(&a.value).into_owned();
                            if let Ok(abs) = here.join(raw.trim()) {
                                let escaped =
                                    html_escape::encode_double_quoted_attribute(abs.as_str())
                                        .into_owned();
                                out.push_attribute(Attribute {
                                    key: QName(key),
                                    value: Cow::Owned(escaped),
                                });
                                changed = true;
                                continue;
                            }
                        }
                        out.push_attribute(a);
                    }
                    if is_empty {
                        writer.write_event(Event::Empty(out)).ok()?;
                    } else {
                        writer.write_event(Event::Start(out)).ok()?;
                        bases.push((here, set, true));
                    }
                    continue;
                }
                if local == "content" && set {
                    let mut out = BytesStart::new(name.clone());
                    for a in e.attributes().with_checks(false).flatten() {
                        if a.key.into_inner() != "xml:base" {
                            out.push_attribute(a);
                        }
                    }
                    let escaped =
                        html_escape::encode_double_quoted_attribute(here.as_str()).into_owned();
                    out.push_attribute(Attribute {
                        key: QName("xml:base"),
                        value: Cow::Owned(escaped),
                    });
                    changed = true;
                    if is_empty {
                        writer.write_event(Event::Empty(out)).ok()?;
                    } else {
                        writer.write_event(Event::Start(out)).ok()?;
                    }
                } else {
                    writer.write_event(event.clone()).ok()?;
                }
                if !is_empty {
                    let text_construct = matches!(local, "summary" | "content");
                    bases.push((here, set, in_text || text_construct));
                }
            }
            Event::End(_) => {
                bases.pop();
                writer.write_event(event).ok()?;
            }
            Event::Eof => break,
            other => writer.write_event(other).ok()?,
        }
    }
    if !changed {
        return None;
    }
    String::from_utf8(writer.into_inner()).ok()
}

/// What feed-rs drops from items, found here in document order and given to the entries:
/// - a `<media:thumbnail>` with no `<media:content>` beside it (YouTube's, blogs');
/// - Dublin Core terms dates (`dcterms:issued`, `dcterms:created`, `dcterms:modified`).
fn add_item_extras(feed: &mut ParsedFeed, text: &str, base: &Url) {
    use quick_xml::events::Event;
    if !text.contains(":thumbnail") && !text.contains("dcterms") {
        return;
    }
    #[derive(Default)]
    struct Extras {
        thumbnail: Option<String>,
        issued: Option<String>,
        modified: Option<String>,
    }
    let mut reader = quick_xml::Reader::from_str(text);
    let mut per_entry: Vec<Extras> = Vec::new();
    let mut entry_depth: Option<usize> = None;
    let mut depth = 0usize;
    loop {
        let (e, empty) = match reader.read_event() {
            Ok(Event::Start(e)) => (e, false),
            Ok(Event::Empty(e)) => (e, true),
            Ok(Event::End(_)) => {
                depth = depth.saturating_sub(1);
                if entry_depth.is_some_and(|d| depth < d) {
                    entry_depth = None;
                }
                continue;
            }
            Ok(Event::Eof) | Err(_) => break,
            Ok(_) => continue,
        };
        let name = e.name().into_inner().to_string();
        let (prefixed, local) = match name.rsplit_once(':') {
            Some((_, l)) => (true, l),
            None => (false, name.as_str()),
        };
        if !empty {
            depth += 1;
        }
        if matches!(local, "item" | "entry") && entry_depth.is_none() && !empty {
            entry_depth = Some(depth);
            per_entry.push(Extras::default());
            continue;
        }
        let (Some(_), Some(x)) = (entry_depth, per_entry.last_mut()) else {
            continue;
        };
        match local {
            "thumbnail" if prefixed && x.thumbnail.is_none() => {
                x.thumbnail = e
                    .attributes()
                    .with_checks(false)
                    .flatten()
                    .find(|a| a.key.into_inner() == "url")
                    .map(|a| html_escape::decode_html_entities(&a.value).into_owned());
            }
            "issued" | "created" | "modified" if name.starts_with("dcterms:") && !empty => {
                let value = reader
                    .read_text(e.name())
                    .ok()
                    .map(|t| t.into_inner().trim().to_string());
                depth = depth.saturating_sub(1);
                match local {
                    "modified" => x.modified = x.modified.take().or(value),
                    _ => x.issued = x.issued.take().or(value),
                }
            }
            _ => {}
        }
    }
    if per_entry.len() != feed.entries.len() {
        return; // the scan and the parser disagree on what the entries are: add nothing
    }
    for (entry, x) in feed.entries.iter_mut().zip(per_entry) {
        let has_one = entry.media.iter().any(|m| !m.thumbnails.is_empty());
        if let (false, Some(url)) = (has_one, x.thumbnail.and_then(|t| base.join(t.trim()).ok())) {
            let mut media = feed_rs::model::MediaObject::default();
            media.thumbnails.push(feed_rs::model::MediaThumbnail {
                image: feed_rs::model::Image {
                    uri: url.to_string(),
                    title: None,
                    link: None,
                    width: None,
                    height: None,
                    description: None,
                },
                time: None,
            });
            entry.media.push(media);
        }
        if entry.published.is_none()
            && let Some(d) = x.issued.as_deref().and_then(crate::feed::dates::parse)
        {
            entry.published = Some(d);
            if entry.updated.is_none() {
                entry.updated = Some(d);
            }
        }
        if let Some(d) = x.modified.as_deref().and_then(crate::feed::dates::parse) {
            entry.updated = Some(d);
        }
    }
}

const USERLAND_NS: &str = "http://backend.userland.com/rss2";

/// Gives each RSS 1.0 `<item rdf:about="...">` that has no `<link>` one, from its
/// `rdf:about`. `None` when no item needed it.
fn link_rdf_items(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len() + 256);
    let mut rest = text;
    let mut changed = false;
    while let Some(i) = rest.find("<item") {
        let after = &rest[i + 5..];
        if !after.starts_with([' ', '>', '\t', '\r', '\n']) {
            out.push_str(&rest[..i + 5]);
            rest = after;
            continue;
        }
        let tag_end = i + rest[i..].find('>')? + 1;
        let block_end = rest[tag_end..]
            .find("</item>")
            .map_or(rest.len(), |e| tag_end + e);
        let tag = &rest[i..tag_end];
        out.push_str(&rest[..tag_end]);
        let block = &rest[tag_end..block_end];
        if !block.contains("<link")
            && let Some(at) = tag.find("rdf:about=")
            && let Some(q) = tag[at + 10..]
                .chars()
                .next()
                .filter(|c| matches!(c, '"' | '\''))
            && let Some(len) = tag[at + 11..].find(q)
        {
            out.push_str("<link>");
            out.push_str(&tag[at + 11..at + 11 + len]);
            out.push_str("</link>");
            changed = true;
        }
        rest = &rest[tag_end..];
    }
    out.push_str(rest);
    changed.then_some(out)
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
        let max = crate::feed::normalise::MAX_LIST_SCAN;
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
        assert!(cut_long_lists(&xml, max).is_none());
    }

    #[test]
    fn json_feed_lists_are_bounded() {
        let tags: Vec<String> = (0..3000).map(|i| format!("t{i}")).collect();
        let doc = serde_json::json!({
            "version": "https://jsonfeed.org/version/1.1", "title": "j",
            "items": [{"id": "1", "content_text": "x", "tags": tags}],
        });
        let parsed = parse_document(doc.to_string().as_bytes(), None, &base()).expect("parses");
        assert_eq!(
            parsed.feed.entries[0].categories.len(),
            crate::feed::normalise::MAX_LIST_SCAN
        );
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
        let mut xml = String::from(r#"<rss version="2.0"><channel><title>Fish & Chips</title>"#);
        for i in 0..50 {
            xml.push_str(&format!("<item><guid>{i}</guid><title>n{i}</title></item>"));
        }
        xml.push_str("</channel></rss>");
        let p = parse_document_limited(xml.as_bytes(), None, &base(), 10).expect("parses");
        assert_eq!(p.feed.entries.len(), 10);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(parse(b"hello world", None, &base()).is_err());
        assert!(parse(b"<rss version=\"2.0\"><channel><title>x", None, &base()).is_err());
    }
}
