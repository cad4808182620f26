//! Text and HTML helpers shared by every stage that reads or writes feed text: plain text
//! from HTML, sanitised HTML, bounds that keep html5ever linear, mojibake repair, the
//! characters XML can carry, and URLs without credentials. Pure functions, no I/O.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::LazyLock;

use foldhash::{HashMap, HashMapExt};
use url::Url;

/// A summary or content longer than this (in bytes, before sanitising) is cut; ammonia closes
/// what the cut leaves open.
pub const MAX_HTML_BYTES: usize = 1024 * 1024;
/// HTML elements open at once, at most, when sanitising: deeper ones are dropped (their
/// text kept) before html5ever sees them.
pub const MAX_HTML_DEPTH: usize = 256;
/// Attributes per HTML tag, at most: later ones are dropped before html5ever sees them.
pub const MAX_HTML_ATTRIBUTES: usize = 64;
/// `<`s that start no tag (text) kept in one document; past this many they are dropped:
/// html5ever keeps each as a token of its own, and no real document has so many.
pub const MAX_STRAY_LT: usize = 10_000;

/// `text` cut to at most `max` bytes, on a character boundary.
fn cut_bytes(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut at = max;
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    &text[..at]
}

/// A URL without a user name or password: those are never published.
pub(crate) fn without_credentials(mut url: Url) -> Url {
    if !url.username().is_empty() || url.password().is_some() {
        // Only fails for URLs that cannot have credentials, which then have none.
        let _ = url.set_username("");
        let _ = url.set_password(None);
    }
    url
}

/// Repairs two kinds of mojibake that arrive inside otherwise well-decoded documents:
/// - C1 control characters (U+0080..U+009F) never belong in text: they are windows-1252
///   bytes read as Latin-1 (`&#146;` for a right quote), mapped to what windows-1252 means,
///   as browsers and feedparser do;
/// - UTF-8 read as windows-1252 (`â€¦` for `…`): when the whole text is representable in
///   windows-1252 and those bytes are valid UTF-8 with at least one multi-byte character, the
///   UTF-8 reading is the text. Genuine windows-1252 text practically never forms valid UTF-8.
fn fix_mojibake(text: &str) -> std::borrow::Cow<'_, str> {
    if text.is_ascii() {
        return Cow::Borrowed(text);
    }
    let mapped = map_c1(text);
    // The encoded bytes can be UTF-8 only if the first UTF-8 lead byte among them (0xC2..
    // 0xF4: a character U+00C2..U+00F4) is followed by a continuation byte (0x80..0xBF:
    // U+0080..U+00BF, or a character above U+00FF that windows-1252 encodes in 0x80..0x9F).
    // Otherwise (no lead byte, or "é " as in most accented text) there is nothing to repair,
    // and no need to encode.
    let mut chars = mapped.chars();
    let may_be_utf8 = loop {
        match chars.next() {
            None => break false,
            Some('\u{C2}'..='\u{F4}') => {
                break chars
                    .next()
                    .is_some_and(|c| matches!(c, '\u{80}'..='\u{BF}' | '\u{100}'..));
            }
            Some(_) => {}
        }
    };
    if !may_be_utf8 {
        return mapped;
    }
    let (bytes, _, unmappable) = encoding_rs::WINDOWS_1252.encode(&mapped);
    if !unmappable
        && !bytes.is_ascii()
        && let Ok(utf8) = std::str::from_utf8(&bytes)
        && utf8 != mapped
    {
        return std::borrow::Cow::Owned(utf8.to_string());
    }
    mapped
}

fn map_c1(text: &str) -> std::borrow::Cow<'_, str> {
    // U+0080..U+009F is encoded 0xC2 0x80..0x9F: text without such a pair has none.
    if !text
        .as_bytes()
        .windows(2)
        .any(|w| w[0] == 0xC2 && (0x80..=0x9F).contains(&w[1]))
    {
        return std::borrow::Cow::Borrowed(text);
    }
    text.chars()
        .map(|c| {
            if ('\u{80}'..='\u{9f}').contains(&c) {
                let byte = [c as u32 as u8];
                encoding_rs::WINDOWS_1252
                    .decode_without_bom_handling(&byte)
                    .0
                    .chars()
                    .next()
                    .unwrap_or(c)
            } else {
                c
            }
        })
        .collect::<String>()
        .into()
}

/// Whether XML 1.0 can carry `c` (its `Char` production: tab, line feed, carriage return,
/// U+0020..U+D7FF, U+E000..U+FFFD, U+10000..; Rust's `char` has no surrogates).
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// `text` without the characters XML 1.0 cannot carry (C0 controls other than tab, line feed
/// and carriage return; U+FFFE, U+FFFF): one of them anywhere in a published document makes
/// it not well-formed, and a reader rejects the whole feed. Borrowed when there are none.
pub fn xml_text(text: &str) -> std::borrow::Cow<'_, str> {
    if all_xml_chars(text) {
        std::borrow::Cow::Borrowed(text)
    } else {
        std::borrow::Cow::Owned(text.chars().filter(|c| is_xml_char(*c)).collect())
    }
}

/// Whether XML can carry every character of `text`. The characters it cannot are C0
/// controls (one byte below 0x20) and U+FFFE, U+FFFF (0xEF 0xBF 0xBE/0xBF): text with no
/// such byte, as nearly all is, needs no look at its characters.
fn all_xml_chars(text: &str) -> bool {
    !any_byte(text.as_bytes(), |b| {
        (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')) || b == 0xEF
    }) || text.chars().all(is_xml_char)
}

/// Whether any byte satisfies `test`: in blocks without an early exit inside one, which
/// the compiler turns into vector instructions.
fn any_byte(bytes: &[u8], test: impl Fn(u8) -> bool) -> bool {
    bytes
        .chunks(32)
        .any(|block| block.iter().fold(false, |found, &b| found | test(b)))
}

/// Whether `text` has a `<` or a `&`: markup or character references.
fn has_markup(text: &str) -> bool {
    any_byte(text.as_bytes(), |b| b == b'<' || b == b'&')
}

/// [`xml_text`] in place.
pub fn clean_xml_text(text: &mut String) {
    if !all_xml_chars(text) {
        text.retain(is_xml_char);
    }
}

/// Sanitised HTML from HTML: the same allow-list as feed content, relative URLs resolved
/// against `base`.
pub fn sanitise(html: &str, base: &Url) -> String {
    to_html(
        html,
        true,
        Some(base).filter(|b| matches!(b.scheme(), "http" | "https")),
    )
}

/// Sanitised HTML from feed text: HTML is cleaned by the allow-list, plain text escaped.
///
/// At most [`MAX_HTML_BYTES`] are read, nesting and attributes are bounded
/// ([`bound_html`]) before html5ever parses, and characters XML cannot carry are removed.
pub(crate) fn to_html(text: &str, html: bool, base: Option<&Url>) -> String {
    let text = xml_text(cut_bytes(text, MAX_HTML_BYTES));
    let text = &*fix_mojibake(&text);
    if !html {
        return html_escape::encode_text(text.trim()).into_owned();
    }
    let clean = match as_parsed_text(text) {
        Some(serialised) => serialised,
        None => sanitise_html(text, base),
    };
    // An entity such as `&#1;` becomes the character itself in the parsed HTML.
    let trimmed = clean.trim();
    match fix_mojibake(trimmed) {
        Cow::Borrowed(fixed) => match xml_text(fixed) {
            // Nothing to trim, repair or remove: `clean` itself, without a copy.
            Cow::Borrowed(same) if same.len() == clean.len() => clean,
            other => other.into_owned(),
        },
        Cow::Owned(fixed) => xml_text(&fixed).into_owned(),
    }
}

/// The sanitiser (ammonia's default allow-list, `rel="noopener noreferrer"` on links),
/// built once: building it fills a dozen hash sets, which cost more than cleaning a short
/// summary. Relative URLs are dropped.
static SANITISER_DENY: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut builder = ammonia::Builder::default();
    builder
        .url_relative(ammonia::UrlRelative::Deny)
        .link_rel(Some("noopener noreferrer"));
    builder
});

/// [`SANITISER_DENY`]'s allow-list, with relative URLs resolved against this thread's
/// [`BASE`], as `UrlRelative::RewriteWithBase` does (ammonia asks only about relative URLs;
/// one that does not resolve is dropped).
static SANITISER_BASE: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut builder = ammonia::Builder::default();
    builder
        .url_relative(ammonia::UrlRelative::Custom(Box::new(ThreadBase)))
        .link_rel(Some("noopener noreferrer"));
    builder
});

thread_local! {
    /// The base URL of the document [`SANITISER_BASE`] is cleaning on this thread: set by
    /// [`sanitise_html`] around one `clean` call (which runs on the calling thread).
    static BASE: RefCell<Option<Url>> = const { RefCell::new(None) };
}

/// Resolves a relative URL against [`BASE`].
struct ThreadBase;

impl<'a> ammonia::UrlRelativeEvaluate<'a> for ThreadBase {
    fn evaluate<'url>(&self, url: &'url str) -> Option<Cow<'url, str>> {
        BASE.with_borrow(|base| {
            let joined = base.as_ref()?.join(url).ok()?;
            Some(Cow::Owned(String::from(joined)))
        })
    }
}

/// ammonia's clean, serialised: relative URLs resolved against `base`, else dropped.
fn sanitise_html(text: &str, base: Option<&Url>) -> String {
    let bounded = bound_html(text);
    match base {
        None => SANITISER_DENY.clean(&bounded).to_string(),
        Some(base) => {
            BASE.set(Some(base.clone()));
            let clean = SANITISER_BASE.clean(&bounded).to_string();
            BASE.set(None);
            clean
        }
    }
}

/// Strips every tag (scripts and styles with their contents), built once.
static STRIPPER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut builder = ammonia::Builder::empty();
    builder.clean_content_tags(HashSet::from(["script", "style"]));
    builder
});

/// What html5ever parses and serialises `text` to, when `text` has no markup and no
/// character references (no `<`, no `&`) and needs no splitting ([`bound_html`] leaves it
/// alone): one text node, so the sanitiser would give exactly this. The parser drops a
/// leading byte order mark and turns CR LF and lone CRs into LF; the serialiser escapes
/// `>` and no-break spaces (`&` and `<` are absent). `None` for any other text.
fn as_parsed_text(text: &str) -> Option<String> {
    if has_markup(text) || needs_split(text) {
        return None;
    }
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len() + 8);
    let mut copied = 0; // bytes of `text` before this are in `out`
    let mut at = 0;
    while at < bytes.len() {
        // Each of `\r`, `>` and the no-break space's 0xC2 0xA0 starts at a character
        // boundary: the slices below are on boundaries.
        let (skip, with) = match (bytes[at], bytes.get(at + 1)) {
            (b'\r', Some(b'\n')) => (2, "\n"),
            (b'\r', _) => (1, "\n"),
            (b'>', _) => (1, "&gt;"),
            (0xC2, Some(0xA0)) => (2, "&nbsp;"),
            _ => {
                at += 1;
                continue;
            }
        };
        out.push_str(&text[copied..at]);
        out.push_str(with);
        at += skip;
        copied = at;
    }
    out.push_str(&text[copied..]);
    Some(out)
}

/// Plain text: tags stripped (scripts and styles with their contents), entities decoded,
/// white space folded, characters XML cannot carry removed; read from at most
/// [`MAX_HTML_BYTES`].
pub fn plain_text(text: &str, html: bool) -> String {
    let text = xml_text(cut_bytes(text, MAX_HTML_BYTES));
    let text = &*fix_mojibake(&text);
    let decoded = if has_markup(text) {
        let stripped = STRIPPER.clean(&bound_html(text)).to_string();
        Cow::Owned(html_escape::decode_html_entities(&stripped).into_owned())
    } else if html {
        // What the stripper gives for text without markup or references, decoded
        // ([`as_parsed_text`]; the line breaks are folded below anyway).
        Cow::Borrowed(text.strip_prefix('\u{FEFF}').unwrap_or(text))
    } else {
        Cow::Borrowed(text)
    };
    let mut out = String::with_capacity(decoded.len());
    for word in xml_text(&fix_mojibake(&decoded)).split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// HTML elements that never have content (no end tag; they open nothing).
const VOID_ELEMENTS: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
    "track", "wbr", "keygen",
];
/// Elements whose content is text up to their end tag.
const RAW_TEXT_ELEMENTS: &[&str] = &[
    "script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes",
];
/// Elements a following start tag of their kind closes (`<li>a<li>b`), and what may be
/// open above them when it does.
const IMPLIED_END: &[&str] = &[
    "p", "li", "dt", "dd", "option", "optgroup", "tr", "td", "th", "thead", "tbody", "tfoot", "rb",
    "rt", "rp",
];

/// HTML with its nesting bounded to [`MAX_HTML_DEPTH`] open elements and every tag to
/// [`MAX_HTML_ATTRIBUTES`] attributes, for html5ever, whose tree builder costs time in the
/// depth for each element (100,000 nested `<div>`s took 26 s, 200,000 took 154 s) and whose
/// tokenizer checks each attribute against the tag's others.
///
/// One linear scan keeps a model of the open elements (void elements open nothing, `<li>`
/// closes an open `<li>` and the like, an end tag closes up to its element); a start tag
/// past the depth is dropped, with its end tag, and its text kept. Of the `<`s that start
/// no tag, the first [`MAX_STRAY_LT`] are kept and the rest dropped (html5ever keeps each
/// bare `<` as a token of about 75 bytes: 15 MB of them took 1.2 GB). Borrowed,
/// unchanged, when the document is within the bounds, as every real one is.
pub fn bound_html(html: &str) -> std::borrow::Cow<'_, str> {
    // Cheap: short text, or text without tags that is short or has few `&`.
    if html.len() <= 256 || (!html.contains('<') && !needs_split(html)) {
        return std::borrow::Cow::Borrowed(html);
    }
    match scan_html(html, false) {
        None => std::borrow::Cow::Borrowed(html),
        Some(_) => std::borrow::Cow::Owned(scan_html(html, true).unwrap_or_default()),
    }
}

/// The scan behind [`bound_html`]. Without `rewrite`: `Some` (empty) as soon as a bound is
/// exceeded, `None` when none is. With `rewrite`: the bounded document.
fn scan_html(html: &str, rewrite: bool) -> Option<String> {
    let bytes = html.as_bytes();
    let mut out = String::with_capacity(if rewrite { html.len() } else { 0 });
    let mut open: Vec<String> = Vec::new();
    let mut open_count: HashMap<String, usize> = HashMap::new();
    let mut i = 0;
    let mut copied = 0; // bytes of `html` before this are dealt with
    let mut exceeded = false;
    let mut stray_lt = 0usize;
    while let Some(lt) = memchr_lt(bytes, i) {
        if needs_split(&html[i..lt]) {
            if !rewrite {
                return Some(String::new());
            }
            out.push_str(&html[copied..i]);
            split_text(&html[i..lt], &mut out);
            copied = lt;
        }
        let next = bytes.get(lt + 1).copied().unwrap_or(b' ');
        if html[lt..].starts_with("<!--") {
            i = html[lt + 4..]
                .find("-->")
                .map_or(bytes.len(), |e| lt + 4 + e + 3);
            continue;
        }
        if matches!(next, b'!' | b'?') {
            i = html[lt..].find('>').map_or(bytes.len(), |e| lt + e + 1);
            continue;
        }
        let end_tag = next == b'/';
        let name_at = lt + 1 + usize::from(end_tag);
        if !bytes.get(name_at).is_some_and(u8::is_ascii_alphabetic) {
            // A `<` that starts no tag is text; html5ever keeps each one as a token of its
            // own (about 75 bytes), so past a bound they are dropped.
            if !end_tag {
                stray_lt += 1;
                if stray_lt > MAX_STRAY_LT {
                    if !rewrite {
                        return Some(String::new());
                    }
                    out.push_str(&html[copied..lt]);
                    copied = lt + 1;
                }
            }
            i = lt + 1;
            continue;
        }
        let mut j = name_at;
        while j < bytes.len()
            && !matches!(
                bytes[j],
                b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' | b'/' | b'>'
            )
        {
            j += 1;
        }
        let name = html[name_at..j].to_ascii_lowercase();
        // Attributes: name, optionally `=` and a value, quoted or not.
        let mut attributes = 0usize;
        let mut keep_to = j; // the tag is copied up to here when attributes are dropped
        let mut cut_at: Option<usize> = None; // an attribute from here on is dropped
        loop {
            while j < bytes.len()
                && matches!(bytes[j], b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' | b'/')
            {
                j += 1;
            }
            if j >= bytes.len() || bytes[j] == b'>' {
                break;
            }
            let attribute_at = j;
            let mut value = j..j;
            while j < bytes.len()
                && !matches!(
                    bytes[j],
                    b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' | b'/' | b'>' | b'='
                )
            {
                j += 1;
            }
            while j < bytes.len() && matches!(bytes[j], b' ' | b'\t' | b'\n' | b'\r' | b'\x0c') {
                j += 1;
            }
            if bytes.get(j) == Some(&b'=') {
                j += 1;
                while j < bytes.len() && matches!(bytes[j], b' ' | b'\t' | b'\n' | b'\r' | b'\x0c')
                {
                    j += 1;
                }
                match bytes.get(j) {
                    Some(q @ (b'"' | b'\'')) => {
                        let start = j + 1;
                        j = html[j + 1..]
                            .find(char::from(*q))
                            .map_or(bytes.len(), |e| j + 1 + e + 1);
                        value = start..j.saturating_sub(1).max(start);
                    }
                    _ => {
                        let start = j;
                        while j < bytes.len()
                            && !matches!(bytes[j], b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' | b'>')
                        {
                            j += 1;
                        }
                        value = start..j;
                    }
                }
            }
            attributes += 1;
            if cut_at.is_none() && needs_split(&html[value]) {
                cut_at = Some(attribute_at);
            }
            if attributes <= MAX_HTML_ATTRIBUTES && cut_at.is_none() {
                keep_to = j.min(bytes.len());
            }
        }
        let tag_end = (j + 1).min(bytes.len());
        // What becomes of the tag: kept whole, kept without some attributes, or dropped.
        let mut keep = true;
        let close_to = |open: &mut Vec<String>, counts: &mut HashMap<String, usize>, at: usize| {
            for n in open.drain(at..) {
                if let Some(c) = counts.get_mut(&n) {
                    *c -= 1;
                }
            }
        };
        if end_tag {
            // Looked for only when open: each search that finds it closes what it passed.
            match open_count
                .get(&name)
                .filter(|c| **c > 0)
                .and_then(|_| open.iter().rposition(|n| *n == name))
            {
                Some(at) => close_to(&mut open, &mut open_count, at),
                None => keep = !rewrite || !exceeded, // unmatched: its start was dropped
            }
        } else if !VOID_ELEMENTS.contains(&name.as_str()) {
            // `<li>` closes an `<li>` open just above (with only such elements over it).
            if IMPLIED_END.contains(&name.as_str())
                && let Some(back) = open.iter().rev().take(8).position(|n| *n == name)
                && open
                    .iter()
                    .rev()
                    .take(back)
                    .all(|n| IMPLIED_END.contains(&n.as_str()))
            {
                let at = open.len() - 1 - back;
                close_to(&mut open, &mut open_count, at);
            }
            if open.len() >= MAX_HTML_DEPTH {
                keep = false;
            } else {
                *open_count.entry(name.clone()).or_default() += 1;
                open.push(name.clone());
            }
        }
        if !keep || attributes > MAX_HTML_ATTRIBUTES || cut_at.is_some() {
            if !rewrite {
                return Some(String::new());
            }
            exceeded = true;
            out.push_str(&html[copied..lt]);
            if keep {
                out.push_str(&html[lt..keep_to]);
                out.push('>');
            }
            copied = tag_end;
        }
        i = tag_end;
        // Raw text: no tags until the element's end tag.
        if !end_tag && keep && RAW_TEXT_ELEMENTS.contains(&name.as_str()) {
            let from = i;
            i = html[i..]
                .match_indices("</")
                .find(|(at, _)| {
                    html.as_bytes()
                        .get(i + at + 2..i + at + 2 + name.len())
                        .is_some_and(|n| n.eq_ignore_ascii_case(name.as_bytes()))
                })
                .map_or(bytes.len(), |(at, _)| i + at);
            // Such text cannot be split with elements: a big one full of `&` is dropped.
            if needs_split(&html[from..i]) {
                if !rewrite {
                    return Some(String::new());
                }
                out.push_str(&html[copied..from]);
                copied = i;
            }
        }
    }
    if needs_split(&html[i.min(bytes.len())..]) {
        if !rewrite {
            return Some(String::new());
        }
        out.push_str(&html[copied..i]);
        split_text(&html[i..], &mut out);
        copied = bytes.len();
    }
    if !rewrite {
        return None;
    }
    out.push_str(&html[copied..]);
    Some(out)
}

/// A text run (or attribute value) longer than this, with more than
/// [`MAX_TEXT_SPECIALS`] characters html5ever's serializer escapes, is split
/// ([`split_text`]); such an attribute is dropped.
const MAX_TEXT_RUN: usize = 4096;
const MAX_TEXT_SPECIALS: usize = 64;
/// The pieces a long text run is split into.
const TEXT_PIECE: usize = 1024;

/// Whether html5ever's serializer would take quadratic time over `text`: for each `&` (or
/// character U+0080..U+00BF, lead byte 0xC2) in a text node it searches the rest of the
/// node for `<`, `>` (or `"`); one 1 MB node of `a & b ` took 1.3 s.
fn needs_split(text: &str) -> bool {
    text.len() > MAX_TEXT_RUN
        && text
            .bytes()
            .filter(|b| matches!(b, b'&' | 0xC2))
            .nth(MAX_TEXT_SPECIALS)
            .is_some()
}

/// `text` as runs of about [`TEXT_PIECE`] bytes with an empty `<span></span>` between them,
/// so html5ever's text nodes stay short. Never cut inside a character reference: a cut is
/// made before a `&`, or at least 40 bytes after the last one (longer than any entity name).
fn split_text(text: &str, out: &mut String) {
    let bytes = text.as_bytes();
    let mut piece = 0;
    let mut last_amp: Option<usize> = None;
    for at in 0..bytes.len() {
        if at - piece >= TEXT_PIECE
            && text.is_char_boundary(at)
            && (bytes[at] == b'&' || last_amp.is_none_or(|a| at - a >= 40))
        {
            out.push_str(&text[piece..at]);
            out.push_str("<span></span>");
            piece = at;
        }
        if bytes[at] == b'&' {
            last_amp = Some(at);
        }
    }
    out.push_str(&text[piece..]);
}

/// The next `<` at or after `from`.
fn memchr_lt(bytes: &[u8], from: usize) -> Option<usize> {
    bytes
        .get(from..)?
        .iter()
        .position(|b| *b == b'<')
        .map(|p| from + p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mojibake_is_repaired_and_latin1_left_alone() {
        assert_eq!(plain_text("don\u{92}t", false), "don’t");
        assert_eq!(
            plain_text("Wait\u{e2}\u{80}\u{a6} what", false),
            "Wait… what"
        );
        assert_eq!(
            plain_text("Caf\u{c3}\u{a9} cr\u{c3}\u{a8}me", false),
            "Café crème"
        );
        assert_eq!(plain_text("Café crème", false), "Café crème");
        assert_eq!(
            plain_text("naïve Zürich — “quoted”", false),
            "naïve Zürich — “quoted”"
        );
    }

    #[test]
    fn characters_xml_cannot_carry_are_removed() {
        assert_eq!(
            xml_text("a\u{1}b\u{8}c\u{b}d\u{1f}e\u{fffe}f\u{ffff}g"),
            "abcdefg"
        );
        assert_eq!(
            xml_text("tab\tnl\ncr\r é \u{10000}"),
            "tab\tnl\ncr\r é \u{10000}"
        );
        assert!(matches!(xml_text("clean"), std::borrow::Cow::Borrowed(_)));
        assert_eq!(plain_text("x&#1;y", true), "xy");
        let base = Url::parse("https://example.org/").expect("url");
        assert_eq!(
            to_html("<p>a&#1;b\u{1}</p>", true, Some(&base)),
            "<p>ab</p>"
        );
    }

    #[test]
    fn html_is_bounded_before_sanitising() {
        let deep = format!("{}x{}", "<div>".repeat(1000), "</div>".repeat(1000));
        let bounded = bound_html(&deep);
        assert_eq!(bounded.matches("<div>").count(), MAX_HTML_DEPTH);
        assert_eq!(bounded.matches("</div>").count(), MAX_HTML_DEPTH);
        assert!(bounded.contains('x'));
        // Unclosed list items and paragraphs do not count as nesting.
        let list = format!("<ul>{}</ul>", "<li><p>item".repeat(2000));
        assert!(matches!(bound_html(&list), std::borrow::Cow::Borrowed(_)));
        let attrs: String = (0..500).map(|i| format!(" a{i}=\"x\"")).collect();
        let tag = format!("<p{attrs}>text</p>{}", " ".repeat(300));
        let bounded = bound_html(&tag);
        assert_eq!(bounded.matches("=\"x\"").count(), MAX_HTML_ATTRIBUTES);
        assert!(bounded.contains(">text</p>"));
        // Long text full of `&` is split into short runs, entities intact.
        let amps = "a &amp; b &eacute; ".repeat(2000);
        let split = bound_html(&amps);
        assert!(split.contains("<span></span>"));
        assert_eq!(split.replace("<span></span>", ""), amps);
        // Real content is left alone.
        let article =
            "<p>Some <b>bold</b> &amp; <a href=\"/x?a=1&amp;b=2\">links</a>.</p>".repeat(200);
        assert!(matches!(
            bound_html(&article),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}

#[cfg(test)]
mod stray_lt_tests {
    use super::*;

    /// Bare `<`s are text: a few stay as they are (real documents are unchanged); past
    /// [`MAX_STRAY_LT`] they are dropped, and the markup after them is read as before.
    #[test]
    fn many_bare_less_thans_are_dropped() {
        let few = format!("<p>{}</p>", "a < b ".repeat(100));
        assert!(matches!(bound_html(&few), std::borrow::Cow::Borrowed(_)));
        let many = format!("<p>{}</p><p>x</p>", "< ".repeat(MAX_STRAY_LT + 5));
        let bounded = bound_html(&many);
        assert_eq!(bounded.matches('<').count(), MAX_STRAY_LT + 4);
        let doc = dom_query::Document::from(&*bounded);
        assert_eq!(doc.select("p").length(), 2);
        assert_eq!(doc.select("p").last().text().to_string(), "x");
    }
}

#[cfg(test)]
mod same_output_tests {
    //! The built-once sanitisers and the fast paths give what a sanitiser built per call
    //! (as [`to_html`] and [`plain_text`] once did) gives, on random feed text.
    use super::*;

    /// [`xml_text`] as first written: a look at every character.
    fn xml_text_reference(text: &str) -> Cow<'_, str> {
        if text.chars().all(is_xml_char) {
            Cow::Borrowed(text)
        } else {
            Cow::Owned(text.chars().filter(|c| is_xml_char(*c)).collect())
        }
    }

    /// [`fix_mojibake`] as first written: every non-ASCII text encoded.
    fn fix_mojibake_reference(text: &str) -> Cow<'_, str> {
        let mapped: Cow<'_, str> = if !text.chars().any(|c| ('\u{80}'..='\u{9f}').contains(&c)) {
            Cow::Borrowed(text)
        } else {
            text.chars()
                .map(|c| {
                    if ('\u{80}'..='\u{9f}').contains(&c) {
                        let byte = [c as u32 as u8];
                        encoding_rs::WINDOWS_1252
                            .decode_without_bom_handling(&byte)
                            .0
                            .chars()
                            .next()
                            .unwrap_or(c)
                    } else {
                        c
                    }
                })
                .collect::<String>()
                .into()
        };
        if mapped.is_ascii() {
            return mapped;
        }
        let (bytes, _, unmappable) = encoding_rs::WINDOWS_1252.encode(&mapped);
        if !unmappable
            && !bytes.is_ascii()
            && let Ok(utf8) = std::str::from_utf8(&bytes)
            && utf8 != mapped
        {
            return Cow::Owned(utf8.to_string());
        }
        mapped
    }

    /// [`to_html`] with an ammonia `Builder` built for the call.
    fn to_html_fresh(text: &str, html: bool, base: Option<&Url>) -> String {
        let text = xml_text_reference(cut_bytes(text, MAX_HTML_BYTES));
        let text = &*fix_mojibake_reference(&text);
        if !html {
            return html_escape::encode_text(text.trim()).into_owned();
        }
        let mut builder = ammonia::Builder::default();
        builder
            .url_relative(match base {
                Some(base) => ammonia::UrlRelative::RewriteWithBase(base.clone()),
                None => ammonia::UrlRelative::Deny,
            })
            .link_rel(Some("noopener noreferrer"));
        let clean = builder.clean(&bound_html(text)).to_string();
        xml_text_reference(&fix_mojibake_reference(clean.trim())).into_owned()
    }

    /// [`plain_text`] with an ammonia `Builder` built for the call, for every text with
    /// markup or `html`.
    fn plain_text_fresh(text: &str, html: bool) -> String {
        let text = xml_text_reference(cut_bytes(text, MAX_HTML_BYTES));
        let text = &*fix_mojibake_reference(&text);
        let decoded = if html || text.contains('<') || text.contains('&') {
            let stripped = ammonia::Builder::empty()
                .clean_content_tags(HashSet::from(["script", "style"]))
                .clean(&bound_html(text))
                .to_string();
            html_escape::decode_html_entities(&stripped).into_owned()
        } else {
            text.to_string()
        };
        let mut out = String::with_capacity(decoded.len());
        for word in xml_text_reference(&fix_mojibake_reference(&decoded)).split_whitespace() {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(word);
        }
        out
    }

    /// Pieces random texts are made of: characters the parser or serialiser treat apart
    /// (line breaks, `>`, quotes, no-break space, byte order mark, C0 and C1 controls,
    /// mojibake), and markup with relative, absolute and broken URLs.
    const PIECES: &[&str] = &[
        "a",
        "word",
        "â",
        "™",
        "Ã¢â‚¬â„¢",
        "ð",
        "Ÿ",
        "˜",
        "ô",
        "¿",
        "\u{80}",
        "\u{bf}",
        "\u{ffff}",
        "\u{ef}",
        " ",
        "  ",
        "\t",
        "\n",
        "\r",
        "\r\n",
        "\u{c}",
        ">",
        "\"",
        "'",
        "=",
        "/",
        "\u{a0}",
        "\u{feff}",
        "\u{1}",
        "\u{0}",
        "\u{85}",
        "\u{92}",
        "\u{81}",
        "\u{9d}",
        "é",
        "Ã©",
        "â€™",
        "Ã",
        "Â",
        "\u{c2}\u{a0}",
        "€",
        "\u{2028}",
        "\u{fffd}",
        "\u{fffe}",
        "😀",
        "\u{10ffff}",
        "#",
        ";",
        "&",
        "&amp;",
        "&lt;",
        "&#1;",
        "&nbsp;",
        "&#146;",
        "<",
        "< ",
        "<p>",
        "</p>",
        "<b>",
        "</b>",
        "<br/>",
        "<li>",
        "<script>x</script>",
        "<style>s</style>",
        "<!-- c -->",
        "<a href=\"rel/x?a=1&amp;b=2\" title=t>",
        "<a title=\"t\" href=\"/abs\" rel=nofollow>",
        "</a>",
        "<img alt='i' src=\"pic.png\" width=1>",
        "<img src=\"https://e.org/i.png\">",
        "<a href=\"http://[bad\">",
        "<a href=\"javascript:alert(1)\">",
        "<a href=\"//other.example/p\">",
        "<img src=\"\" alt=x>",
        "<svg><animate attributeName=href values=\"a;/b\"/></svg>",
        "<div id=d>",
        "<table><tr><td>c",
        "<q cite=\"q.html\">",
        "<object data=x>",
    ];

    /// A deterministic stream of texts made of [`PIECES`].
    fn texts(seed: u64, count: usize, markup: bool) -> Vec<String> {
        let mut state = seed;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let plain = PIECES
            .iter()
            .position(|p| p.contains(['&', '<']))
            .unwrap_or(PIECES.len());
        let pieces = if markup { PIECES } else { &PIECES[..plain] };
        (0..count)
            .map(|_| {
                let len = (next() % 24) as usize;
                (0..len)
                    .map(|_| pieces[(next() % pieces.len() as u64) as usize])
                    .collect()
            })
            .collect()
    }

    #[test]
    fn checks_that_skip_work_change_nothing() {
        for text in texts(0x2545_F491_4F6C_DD1D, 20_000, false) {
            assert_eq!(xml_text(&text), xml_text_reference(&text), "{text:?}");
            let clean = xml_text_reference(&text);
            assert_eq!(
                fix_mojibake(&clean),
                fix_mojibake_reference(&clean),
                "{text:?}"
            );
        }
    }

    #[test]
    fn text_without_markup_is_what_the_sanitiser_gives() {
        let base = Url::parse("https://example.org/dir/page.html").expect("url");
        let mut inputs = texts(0x9E37_79B9_7F4A_7C15, 3000, false);
        // Long texts: one the parser keeps whole, one that must be split (many U+0080..).
        inputs.push("plain words > and\u{a0}more\r\n".repeat(400));
        inputs.push("é ® ".repeat(2000));
        for text in &inputs {
            let prepared = xml_text(text);
            let prepared = fix_mojibake(&prepared);
            if let Some(fast) = as_parsed_text(&prepared) {
                assert_eq!(
                    fast,
                    SANITISER_DENY.clean(&prepared).to_string(),
                    "{text:?}"
                );
            }
            for b in [None, Some(&base)] {
                assert_eq!(
                    to_html(text, true, b),
                    to_html_fresh(text, true, b),
                    "{text:?}"
                );
            }
            assert_eq!(to_html(text, false, None), to_html_fresh(text, false, None));
            for html in [true, false] {
                assert_eq!(
                    plain_text(text, html),
                    plain_text_fresh(text, html),
                    "{text:?}"
                );
            }
        }
        assert!(as_parsed_text(&"é ® ".repeat(2000)).is_none());
        assert_eq!(
            as_parsed_text("\u{feff}a > b\r\nc\rd\u{a0}\"e'").as_deref(),
            Some("a &gt; b\nc\nd&nbsp;\"e'")
        );
    }

    #[test]
    fn html_is_sanitised_as_by_a_builder_made_for_it() {
        let bases = [
            Url::parse("https://example.org/dir/page.html").expect("url"),
            Url::parse("http://other.example:8080/a/b/?q=1#f").expect("url"),
        ];
        for text in texts(0xD1B5_4A32_D192_ED03, 3000, true) {
            assert_eq!(to_html(&text, true, None), to_html_fresh(&text, true, None));
            for base in &bases {
                assert_eq!(
                    to_html(&text, true, Some(base)),
                    to_html_fresh(&text, true, Some(base)),
                    "{text:?}"
                );
            }
            assert_eq!(plain_text(&text, true), plain_text_fresh(&text, true));
            assert_eq!(plain_text(&text, false), plain_text_fresh(&text, false));
        }
    }

    #[test]
    fn the_base_is_the_callers_on_every_thread() {
        let text = r#"<a href="x">x</a><img src="/i.png">"#;
        std::thread::scope(|s| {
            for n in 0..4 {
                s.spawn(move || {
                    let base = Url::parse(&format!("https://h{n}.example/d/")).expect("url");
                    for _ in 0..200 {
                        assert_eq!(
                            to_html(text, true, Some(&base)),
                            format!(
                                r#"<a href="https://h{n}.example/d/x" rel="noopener noreferrer">x</a><img src="https://h{n}.example/i.png">"#
                            )
                        );
                        assert_eq!(to_html(text, true, None), "<a rel=\"noopener noreferrer\">x</a><img>");
                    }
                });
            }
        });
    }
}

/// The words of `text` for a search index, appended to `out` (after a space) while `out`
/// is shorter than `max` bytes: when `html`, tags are dropped (with what `<script>` and
/// `<style>` hold) and character references decoded. Not a sanitiser and not for display:
/// a mistake here only costs a word, so one linear pass does it, about twenty times
/// faster than [`plain_text`]'s parser (a full rebuild of the index reads every entry).
pub fn search_text(text: &str, html: bool, out: &mut String, max: usize) {
    if out.len() >= max || text.is_empty() {
        return;
    }
    if !out.is_empty() {
        out.push(' ');
    }
    let room = |out: &String| max.saturating_sub(out.len());
    if !html {
        out.push_str(cut_bytes(text, room(out)));
        return;
    }
    let mut rest = text;
    while !rest.is_empty() && out.len() < max {
        let Some(lt) = memchr::memchr(b'<', rest.as_bytes()) else {
            push_decoded(cut_bytes(rest, room(out)), out);
            break;
        };
        push_decoded(cut_bytes(&rest[..lt], room(out)), out);
        let tag = &rest[lt + 1..];
        let Some(gt) = memchr::memchr(b'>', tag.as_bytes()) else {
            break;
        };
        let name: String = tag
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .take(8)
            .map(|c| c.to_ascii_lowercase())
            .collect();
        rest = &tag[gt + 1..];
        if name == "script" || name == "style" {
            let close = format!("</{name}");
            rest = match find_ascii_case_insensitive(rest, &close) {
                Some(at) => &rest[at..],
                None => "",
            };
        }
        out.push(' ');
    }
}

/// `text` with its character references decoded, onto `out`.
fn push_decoded(text: &str, out: &mut String) {
    if text.contains('&') {
        html_escape::decode_html_entities_to_string(text, out);
    } else {
        out.push_str(text);
    }
}

/// Where `needle` (ASCII) first occurs in `haystack`, ignoring ASCII case.
fn find_ascii_case_insensitive(haystack: &str, needle: &str) -> Option<usize> {
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    (0..h.len().saturating_sub(n.len()) + 1)
        .filter(|&i| i + n.len() <= h.len())
        .find(|&i| h[i..i + n.len()].eq_ignore_ascii_case(n))
}

#[cfg(test)]
mod search_text_tests {
    use super::search_text;

    fn words(html: &str) -> String {
        let mut out = String::new();
        search_text(html, true, &mut out, 1 << 20);
        out.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn tags_go_and_references_are_decoded() {
        assert_eq!(
            words("<p class=\"x\">Caf&eacute; <b>sled</b>&amp;fjall</p><img src=a.png>"),
            "Café sled &fjall"
        );
        assert_eq!(
            words("a<script>var hidden = 1;</SCRIPT>b<style>.c{}</style>d"),
            "a b d"
        );
        assert_eq!(words("unclosed <a href"), "unclosed");
        assert_eq!(words("x < y"), "x");
    }

    #[test]
    fn it_stops_at_the_bound_on_a_character_boundary() {
        let mut out = String::from("title");
        search_text(&"é".repeat(100), false, &mut out, 21);
        assert!(out.len() <= 21, "{}", out.len());
        assert!(out.starts_with("title é"));
        // Full already: nothing more, not even the space.
        let before = out.clone();
        search_text("more", true, &mut out, 10);
        assert_eq!(out, before);
    }
}
