//! Parsed feed to tributary's own [`Entry`] model, and the dedup decision. No I/O.
//!
//! # Identity
//! Each entry's [`EntryKey`] is a keyed BLAKE3 hash, scoped to the source name so two
//! sources' guids cannot collide, over the first of:
//! 1. the feed's guid / id, when it gives one;
//! 2. else the entry's link;
//! 3. else its title and content.
//!
//! # Content
//! Titles become plain text (tags stripped, entities decoded, white space folded). Summaries
//! and content become sanitised HTML (ammonia's allow-list), with relative URLs resolved
//! against the entry's link, else the feed's URL. Dates in the future are clamped to the
//! poll time so no entry sticks to the top.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use url::Url;

use crate::feed::parse::ParsedFeed;
use crate::model::{Enclosure, Entry, EntryKey, Person};

/// Keeps key derivations of different versions or purposes apart.
const KEY_CONTEXT: &str = "tributary 2026-11 entry key v1";
const FINGERPRINT_CONTEXT: &str = "tributary 2026-11 entry fingerprint v1";
const ARTICLE_CONTEXT: &str = "tributary 2026-11 article key v1";

/// A feed turned into our model.
#[derive(Debug)]
pub struct Normalised {
    pub feed_title: Option<String>,
    pub feed_link: Option<String>,
    /// RSS `<ttl>`: how long the publisher says the feed may be cached.
    pub ttl: Option<std::time::Duration>,
    /// RFC 5005 paging: the next (older) page of the feed, when it names one.
    pub next_page: Option<Url>,
    /// Entries in feed order; an entry whose identity repeats within the feed is kept once
    /// (the first occurrence).
    pub entries: Vec<Entry>,
}

/// What polling an entry again means for the store.
#[derive(Debug, PartialEq)]
pub enum Merge {
    New(Entry),
    Updated(Entry),
    Unchanged,
}

/// Computes an entry's stable identity. See the module docs.
pub fn entry_key(source: &str, kind: &str, value: &str) -> EntryKey {
    let mut h = blake3::Hasher::new_derive_key(KEY_CONTEXT);
    for part in [source, kind, value] {
        h.update(&(part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    let mut key = [0u8; 16];
    key.copy_from_slice(&h.finalize().as_bytes()[..16]);
    EntryKey(key)
}

/// Turns a parsed feed from `source` (fetched from `feed_url`) into entries, at time `now`.
pub fn normalise(feed: ParsedFeed, source: &str, feed_url: &Url, now: DateTime<Utc>) -> Normalised {
    let feed_title = feed
        .title
        .as_ref()
        .map(|t| plain_text(&t.content, is_html(t.content_type.as_ref())))
        .filter(|t| !t.is_empty());
    let feed_link = pick_link(&feed.links, feed_url).filter(|l| l.as_str() != feed_url.as_str());

    let ttl = feed.ttl;
    let next_page = feed
        .links
        .iter()
        .filter(|l| l.rel.as_deref() == Some("next"))
        .find_map(|l| absolute(&l.href, feed_url))
        .filter(|u| u.as_str() != feed_url.as_str());
    // The feed's own author stands for every entry that names none (Atom's feed-level
    // <author>, RSS's managingEditor, dc:creator or itunes:author, JSON Feed's authors).
    let mut feed_authors = people(&feed.authors, feed_url);
    if feed_authors.is_empty() {
        let editors: Vec<feed_rs::model::Person> = feed
            .contributors
            .iter()
            .filter(|p| p.role.as_deref() == Some("managingEditor"))
            .cloned()
            .collect();
        feed_authors = people(&editors, feed_url);
    }
    let (mut entries, bare_links): (Vec<Entry>, Vec<Option<Url>>) = feed
        .entries
        .into_iter()
        .map(|e| normalise_entry(e, source, feed_url, now, &feed_authors))
        .unzip();

    // Fragments: a link keeps its fragment wherever it is published. Whether the fragment
    // is part of the article's identity depends on the source: when it tells several of its
    // own entries apart by fragment alone (`day.html#a1`, `day.html#a2`: posts on one page),
    // it is; otherwise it is a section anchor, and `page#details` is the article `page`.
    let mut fragments_by_page: HashMap<&str, HashSet<&str>> = HashMap::new();
    for (e, bare) in entries.iter().zip(&bare_links) {
        if let (Some(bare), Some(link)) = (bare, &e.link) {
            fragments_by_page
                .entry(bare.as_str())
                .or_default()
                .insert(link.as_str());
        }
    }
    let by_fragment: HashSet<String> = fragments_by_page
        .into_iter()
        .filter(|(_, links)| links.len() > 1)
        .map(|(page, _)| page.to_string())
        .collect();
    // On such a source the whole link names the article.
    for e in &mut entries {
        if let Some(full) = e.link.as_deref().and_then(|l| Url::parse(l).ok())
            && by_fragment.contains(without_fragment(&full).as_str())
        {
            e.article = Some(article_key(&full));
        }
    }

    // A guid shared by entries with different links is no identity: those entries are
    // identified by their links instead.
    let mut guid_links: HashMap<&str, HashSet<Option<&str>>> = HashMap::new();
    for e in &entries {
        if let Some(g) = &e.guid {
            guid_links.entry(g).or_default().insert(e.link.as_deref());
        }
    }
    let unusable: HashSet<String> = guid_links
        .into_iter()
        .filter(|(_, links)| links.len() > 1)
        .map(|(g, _)| g.to_string())
        .collect();
    // A link shared by several entries (a home page, say) says nothing about which article
    // an entry is: it cannot match entries across polls or sources.
    let mut link_uses: HashMap<[u8; 16], usize> = HashMap::new();
    for e in &entries {
        if let Some(a) = e.article {
            *link_uses.entry(a).or_default() += 1;
        }
    }
    let mut seen = HashSet::new();
    entries.retain_mut(|e| {
        if e.guid.as_ref().is_some_and(|g| unusable.contains(g)) {
            e.key = identity(
                source,
                None,
                e.link.as_deref(),
                &e.title,
                &e.summary,
                &e.content,
            );
        }
        if e.article
            .is_some_and(|a| link_uses.get(&a).copied().unwrap_or(0) > 1)
        {
            e.article = None;
        }
        seen.insert(e.key)
    });
    Normalised {
        feed_title,
        feed_link: feed_link.map(String::from),
        ttl: ttl
            .filter(|m| *m > 0)
            .map(|m| std::time::Duration::from_secs(u64::from(m) * 60)),
        next_page,
        entries,
    }
}

/// One entry in our model, and its link without the fragment (what identifies it unless its
/// source tells entries apart by fragment; see [`normalise`]).
fn normalise_entry(
    e: feed_rs::model::Entry,
    source: &str,
    feed_url: &Url,
    now: DateTime<Utc>,
    feed_authors: &[Person],
) -> (Entry, Option<Url>) {
    let guid = Some(e.id.trim().to_string()).filter(|g| !g.is_empty());
    // An RSS guid is a permalink unless marked otherwise (feed-rs does not keep the mark):
    // with no <link>, an absolute http(s) guid is where the entry lives.
    let guid_url = guid
        .as_deref()
        .and_then(|g| Url::parse(g).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .map(|u| normalise_link(&u));
    let link = pick_link(&e.links, feed_url)
        .map(|l| normalise_link(&l))
        .or_else(|| guid_url.clone());
    let bare_link = link.as_ref().map(without_fragment);
    let comments = e
        .links
        .iter()
        .find(|l| l.target == Some(feed_rs::model::LinkTarget::Comments))
        .and_then(|l| absolute(&l.href, feed_url))
        .map(String::from);
    let thumbnail = e
        .media
        .iter()
        .flat_map(|m| &m.thumbnails)
        .find_map(|t| absolute(&t.image.uri, feed_url))
        .map(String::from);
    // Content resolves against the xml:base in effect for it, else the entry's link (such
    // content usually comes from the article page), else the feed's URL.
    // Only a web address is a base: against a `file:` feed URL or an `xml:base` of another
    // scheme a relative URL would become a path on some machine (or `file://host/`), so
    // there relative URLs are dropped instead.
    let web = |u: &Url| matches!(u.scheme(), "http" | "https");
    let content_base = e
        .base
        .as_deref()
        .and_then(|b| feed_url.join(b).ok())
        .filter(web)
        .or_else(|| link.clone())
        .or_else(|| Some(feed_url.clone()).filter(web));

    let summary = e
        .summary
        .as_ref()
        .map(|t| {
            to_html(
                &t.content,
                is_html(t.content_type.as_ref()),
                content_base.as_ref(),
            )
        })
        .filter(|s| !s.trim().is_empty());
    let content = e
        .content
        .as_ref()
        .and_then(|c| {
            c.body.as_ref().map(|body| {
                to_html(
                    body,
                    is_html(c.content_type.as_ref()),
                    content_base.as_ref(),
                )
            })
        })
        .filter(|s| !s.trim().is_empty());

    let mut title = e
        .title
        .as_ref()
        .map(|t| plain_text(&t.content, is_html(t.content_type.as_ref())))
        .unwrap_or_default();
    if title.is_empty() {
        title = fallback_title(summary.as_deref().or(content.as_deref()), link.as_ref());
    }
    let title = shorten(title, MAX_TITLE_CHARS);

    // Without a guid, the whole link names the entry, fragment included: whether its
    // source tells entries apart by fragment can change from poll to poll (a day's page
    // gains its second post), and the key must not. (A fragment that changes on its own is
    // caught by the store's link index, which is keyed by the article.)
    let key = identity(
        source,
        guid.as_deref(),
        link.as_ref().map(Url::as_str),
        &title,
        &summary,
        &content,
    );
    // What names the article across sources: its link, else a permalink guid (the page:
    // `normalise` puts the fragment back for sources whose entries differ by it).
    let article = bare_link
        .as_ref()
        .or(guid_url.as_ref())
        .map(|l| article_key(&without_fragment(l)));

    let mut authors = people(&e.authors, feed_url);
    if authors.is_empty() {
        authors = feed_authors.to_vec();
    }

    // Linear, and bounded: a list of 600,000 categories is read no further than it takes to
    // find the first MAX_CATEGORIES distinct ones (or MAX_LIST_SCAN items).
    let mut categories: Vec<String> = Vec::new();
    let mut seen_categories = HashSet::new();
    for c in e.categories.iter().take(MAX_LIST_SCAN) {
        if categories.len() >= MAX_CATEGORIES {
            break;
        }
        let label = shorten(
            plain_text(c.label.as_deref().unwrap_or(&c.term), false),
            MAX_LABEL_CHARS,
        );
        if !label.is_empty() && seen_categories.insert(label.clone()) {
            categories.push(label);
        }
    }

    let mut enclosures: Vec<Enclosure> = Vec::new();
    let mut seen_enclosures = HashSet::new();
    let mut add_enclosure = |url: Option<Url>, mime_type: Option<String>, length: Option<u64>| {
        if let Some(url) = url
            && enclosures.len() < MAX_ENCLOSURES
            && seen_enclosures.insert(url.to_string())
        {
            enclosures.push(Enclosure {
                url: url.to_string(),
                mime_type: mime_type
                    .map(|m| shorten(xml_text(m.trim()).into_owned(), MAX_LABEL_CHARS))
                    .filter(|m| !m.is_empty()),
                length: length.filter(|l| *l > 0),
            });
        }
    };
    for l in e.links.iter().take(MAX_LIST_SCAN) {
        if l.rel.as_deref() == Some("enclosure") {
            add_enclosure(absolute(&l.href, feed_url), l.media_type.clone(), l.length);
        }
    }
    for m in e.media.iter().take(MAX_LIST_SCAN) {
        for c in m.content.iter().take(MAX_LIST_SCAN) {
            let url = c.url.as_ref().and_then(|u| absolute(u.as_str(), feed_url));
            add_enclosure(url, c.content_type.as_ref().map(|t| t.to_string()), c.size);
        }
    }

    let clamp = |d: DateTime<Utc>| d.min(now);
    let published = e.published.or(e.updated).map(clamp);
    let updated = e.updated.or(e.published).map(clamp).unwrap_or(now);

    let mut entry = Entry {
        key,
        source: source.to_string(),
        guid,
        title,
        link: link.map(String::from),
        summary,
        content,
        authors,
        categories,
        enclosures,
        comments,
        thumbnail,
        published,
        updated,
        first_seen: now,
        fingerprint: [0; 16],
        article,
        duplicate_of: None,
        also_in: Vec::new(),
        full_text: None,
        full_content: None,
    };
    entry.fingerprint = fingerprint(&entry);
    (entry, bare_link)
}

/// How many categories an entry keeps (the first distinct ones).
pub const MAX_CATEGORIES: usize = 100;
/// How many authors an entry (or a feed, for its entries) keeps.
pub const MAX_AUTHORS: usize = 20;
/// How many enclosures an entry keeps.
pub const MAX_ENCLOSURES: usize = 20;
/// How many items of any one list of an entry (categories, authors, links, media) are
/// looked at, whatever the feed holds.
pub const MAX_LIST_SCAN: usize = 1_000;
/// A title longer than this many characters is cut (with an ellipsis).
pub const MAX_TITLE_CHARS: usize = 1_000;
/// Names, categories and media types longer than this are cut.
pub const MAX_LABEL_CHARS: usize = 200;
/// A summary or content longer than this (in bytes, before sanitising) is cut; ammonia closes
/// what the cut leaves open.
pub const MAX_HTML_BYTES: usize = 1024 * 1024;
/// HTML elements open at once, at most, when sanitising: deeper ones are dropped (their
/// text kept) before html5ever sees them.
pub const MAX_HTML_DEPTH: usize = 256;
/// Attributes per HTML tag, at most: later ones are dropped before html5ever sees them.
pub const MAX_HTML_ATTRIBUTES: usize = 64;

/// `text` cut to `max` characters, with an ellipsis when cut.
fn shorten(mut text: String, max: usize) -> String {
    if let Some((at, _)) = text.char_indices().nth(max) {
        text.truncate(at);
        text.push('…');
    }
    text
}

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

/// The link without its fragment.
fn without_fragment(url: &Url) -> Url {
    let mut u = url.clone();
    u.set_fragment(None);
    u
}

/// Feed persons in our model (at most [`MAX_AUTHORS`]): names as plain text, RSS's
/// `email (Name)` read as the name, an address alone used as the name.
fn people(persons: &[feed_rs::model::Person], feed_url: &Url) -> Vec<Person> {
    let mut out: Vec<Person> = Vec::new();
    let mut seen = HashSet::new();
    for p in persons.iter().take(MAX_LIST_SCAN) {
        if out.len() >= MAX_AUTHORS {
            break;
        }
        let name = plain_text(p.name.as_deref().unwrap_or(""), false);
        // RSS's "email (Name)": feed-rs leaves the parentheses on the name.
        let name = match name.strip_prefix('(').and_then(|n| n.strip_suffix(')')) {
            Some(inner) if !inner.contains(['(', ')']) => inner.trim().to_string(),
            _ => name,
        };
        let email = p
            .email
            .as_ref()
            .map(|m| shorten(xml_text(m.trim()).into_owned(), MAX_LABEL_CHARS))
            .filter(|m| !m.is_empty());
        let name = if name.is_empty() {
            match email.clone() {
                Some(e) => e,
                None => continue,
            }
        } else {
            shorten(name, MAX_LABEL_CHARS)
        };
        if !seen.insert((name.clone(), email.clone())) {
            continue;
        }
        out.push(Person {
            name,
            email,
            uri: p
                .uri
                .as_deref()
                .and_then(|u| absolute(u, feed_url))
                .map(String::from),
        });
    }
    out
}

/// An entry's key: its guid, else its link, else its title and content (module docs).
fn identity(
    source: &str,
    guid: Option<&str>,
    link: Option<&str>,
    title: &str,
    summary: &Option<String>,
    content: &Option<String>,
) -> EntryKey {
    match (guid, link) {
        (Some(g), _) => entry_key(source, "guid", g),
        (None, Some(l)) => entry_key(source, "link", l),
        (None, None) => entry_key(
            source,
            "content",
            &format!(
                "{title}\u{0}{}\u{0}{}",
                summary.as_deref().unwrap_or(""),
                content.as_deref().unwrap_or("")
            ),
        ),
    }
}

/// Query parameters that only track readers; dropped from links.
fn is_tracking_param(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.starts_with("utm_")
        || matches!(
            n.as_str(),
            "fbclid"
                | "gclid"
                | "dclid"
                | "gbraid"
                | "wbraid"
                | "msclkid"
                | "yclid"
                | "igshid"
                | "mc_cid"
                | "mc_eid"
                | "_ga"
                | "_gl"
                | "mkt_tok"
                | "oly_anon_id"
                | "oly_enc_id"
                | "vero_id"
                | "wt_mc"
                | "__s"
                | "_hsenc"
                | "_hsmi"
                | "hsctatracking"
        )
}

/// A link in canonical form: scheme and host lowercased, default port dropped (the url
/// crate does that), tracking parameters removed, everything else (the fragment too) kept in
/// order.
pub fn normalise_link(url: &Url) -> Url {
    let mut u = without_credentials(url.clone());
    if u.query().is_some() {
        let kept: Vec<(String, String)> = u
            .query_pairs()
            .filter(|(k, _)| !is_tracking_param(k))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if kept.is_empty() {
            u.set_query(None);
        } else if kept.len() != u.query_pairs().count() {
            u.query_pairs_mut().clear().extend_pairs(kept);
        }
    }
    u
}

/// The cross-source identity of an article: a hash of its normalised link, with the scheme
/// and a leading `www.` set aside (the same article is often linked both ways). The caller
/// decides whether the fragment is part of it (see [`normalise`]).
pub fn article_key(link: &Url) -> [u8; 16] {
    let host = link.host_str().unwrap_or_default();
    let host = host.strip_prefix("www.").unwrap_or(host);
    let rest = &link[url::Position::BeforePort..];
    let mut h = blake3::Hasher::new_derive_key(ARTICLE_CONTEXT);
    h.update(host.as_bytes());
    h.update(rest.as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&h.finalize().as_bytes()[..16]);
    out
}

/// A hash of everything a reader sees of an entry, dates excepted: a publisher re-stamping an
/// unchanged entry does not make it "updated".
pub fn fingerprint(e: &Entry) -> [u8; 16] {
    let visible = (
        &e.title,
        &e.link,
        &e.summary,
        &e.content,
        &e.authors,
        &e.categories,
        &e.enclosures,
        (&e.comments, &e.thumbnail),
    );
    let mut h = blake3::Hasher::new_derive_key(FINGERPRINT_CONTEXT);
    // Serialising our own plain structs cannot fail; an empty hash input would only make
    // every entry look unchanged, never lose data.
    h.update(&serde_json::to_vec(&visible).unwrap_or_default());
    let mut out = [0u8; 16];
    out.copy_from_slice(&h.finalize().as_bytes()[..16]);
    out
}

/// Decides what a freshly polled entry means given the stored one with the same key.
pub fn merge(existing: Option<&Entry>, mut incoming: Entry, now: DateTime<Utc>) -> Merge {
    let Some(old) = existing else {
        return Merge::New(incoming);
    };
    if old.fingerprint == incoming.fingerprint {
        return Merge::Unchanged;
    }
    incoming.first_seen = old.first_seen;
    incoming.duplicate_of = old.duplicate_of.clone();
    incoming.also_in = old.also_in.clone();
    // The article page is fetched once per entry: an update of the feed keeps it.
    incoming.full_text = old.full_text.clone();
    incoming.full_content = old.full_content.clone();
    if incoming.published.is_none() {
        incoming.published = old.published;
    }
    // The feed's own `updated` if it moved forward, else the time we saw the change.
    incoming.updated = if incoming.updated > old.updated && incoming.updated <= now {
        incoming.updated
    } else {
        now.max(old.updated)
    };
    Merge::Updated(incoming)
}

fn is_html(media_type: &str) -> bool {
    let m = media_type.to_ascii_lowercase();
    m.contains("html") || m.contains("xml")
}

/// The entry's (or feed's) web page: the first `alternate` link (or one with no rel),
/// absolute, http(s).
fn pick_link(links: &[feed_rs::model::Link], base: &Url) -> Option<Url> {
    links
        .iter()
        .filter(|l| matches!(l.rel.as_deref(), None | Some("alternate")) && l.target.is_none())
        .find_map(|l| absolute(&l.href, base))
}

fn absolute(href: &str, base: &Url) -> Option<Url> {
    let href = href.trim();
    if href.is_empty() {
        return None;
    }
    let url = base.join(href).ok()?;
    matches!(url.scheme(), "http" | "https").then(|| without_credentials(url))
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
    let mapped = map_c1(text);
    if mapped.is_ascii() {
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
    if !text.chars().any(|c| ('\u{80}'..='\u{9f}').contains(&c)) {
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
    if text.chars().all(is_xml_char) {
        std::borrow::Cow::Borrowed(text)
    } else {
        std::borrow::Cow::Owned(text.chars().filter(|c| is_xml_char(*c)).collect())
    }
}

/// [`xml_text`] in place.
pub fn clean_xml_text(text: &mut String) {
    if !text.chars().all(is_xml_char) {
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
fn to_html(text: &str, html: bool, base: Option<&Url>) -> String {
    let text = xml_text(cut_bytes(text, MAX_HTML_BYTES));
    let text = &*fix_mojibake(&text);
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
    // An entity such as `&#1;` becomes the character itself in the parsed HTML.
    xml_text(&fix_mojibake(clean.trim())).into_owned()
}

/// Plain text: tags stripped (scripts and styles with their contents), entities decoded,
/// white space folded, characters XML cannot carry removed; read from at most
/// [`MAX_HTML_BYTES`].
pub fn plain_text(text: &str, html: bool) -> String {
    let text = xml_text(cut_bytes(text, MAX_HTML_BYTES));
    let text = &*fix_mojibake(&text);
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
/// past the depth is dropped, with its end tag, and its text kept. Borrowed, unchanged, when
/// the document is within the bounds, as every real one is.
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

fn fallback_title(html: Option<&str>, link: Option<&Url>) -> String {
    if let Some(h) = html {
        let text = plain_text(h, true);
        if !text.is_empty() {
            let mut t: String = text.chars().take(80).collect();
            if t.len() < text.len() {
                t.push('…');
            }
            return t;
        }
    }
    link.map(|l| l.to_string())
        .unwrap_or_else(|| "(untitled)".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::parse::parse;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
            .expect("static date")
            .with_timezone(&Utc)
    }

    fn run(xml: &str) -> Normalised {
        let url = Url::parse("https://example.org/blog/feed.xml").expect("static url");
        let feed = parse(xml.as_bytes(), None, &url).expect("parses");
        normalise(feed, "src", &url, now())
    }

    #[test]
    fn identity_prefers_guid_then_link_then_content() {
        let n = run(r#"<rss version="2.0"><channel><title>T</title>
            <item><guid>g1</guid><link>https://example.org/a</link><title>A</title></item>
            <item><link>/b</link><title>B</title></item>
            <item><title>C</title><description>c</description></item>
            </channel></rss>"#);
        assert_eq!(n.entries.len(), 3);
        assert_eq!(n.entries[0].key, entry_key("src", "guid", "g1"));
        assert_eq!(
            n.entries[1].key,
            entry_key("src", "link", "https://example.org/b")
        );
        assert_eq!(n.entries[1].guid, None);
        assert_eq!(
            n.entries[2].key,
            entry_key("src", "content", "C\u{0}c\u{0}")
        );
        // Same guid in another source: another key.
        assert_ne!(entry_key("other", "guid", "g1"), n.entries[0].key);
    }

    #[test]
    fn permalink_guid_is_the_link_when_there_is_none() {
        let n = run(r#"<rss version="2.0"><channel><title>T</title>
            <item><guid>http://example.com/ep1.m4a</guid><title>A</title></item>
            <item><guid>urn:x:1</guid><title>B</title></item>
            </channel></rss>"#);
        assert_eq!(
            n.entries[0].link.as_deref(),
            Some("http://example.com/ep1.m4a")
        );
        assert_eq!(n.entries[1].link, None);
    }

    #[test]
    fn links_are_normalised() {
        let n = |s: &str| normalise_link(&Url::parse(s).expect("url")).to_string();
        assert_eq!(
            n("HTTP://Example.ORG:80/a/b?utm_source=x&id=3&fbclid=y&UTM_medium=z#frag"),
            "http://example.org/a/b?id=3#frag"
        );
        assert_eq!(
            n("https://example.org:443/?gclid=1&mc_cid=2&mc_eid=3"),
            "https://example.org/"
        );
        assert_eq!(
            n("https://example.org:8443/p?b=2&a=1"),
            "https://example.org:8443/p?b=2&a=1"
        );
        let a = |s: &str| article_key(&normalise_link(&Url::parse(s).expect("url")));
        assert_eq!(
            a("http://www.example.org/p?utm_source=rss"),
            a("https://example.org/p")
        );
        assert_ne!(a("https://example.org/p"), a("https://example.org/q"));
    }

    #[test]
    fn duplicated_guids_fall_back_to_links() {
        let n = run(r#"<rss version="2.0"><channel><title>T</title>
            <item><guid>same</guid><link>https://example.org/1</link><title>One</title></item>
            <item><guid>same</guid><link>https://example.org/2</link><title>Two</title></item>
            <item><guid>fine</guid><link>https://example.org/3</link><title>Three</title></item>
            </channel></rss>"#);
        assert_eq!(n.entries.len(), 3);
        assert_eq!(
            n.entries[0].key,
            entry_key("src", "link", "https://example.org/1")
        );
        assert_eq!(
            n.entries[1].key,
            entry_key("src", "link", "https://example.org/2")
        );
        assert_eq!(n.entries[2].key, entry_key("src", "guid", "fine"));
    }

    #[test]
    fn shared_links_are_no_article_identity() {
        let n = run(r#"<rss version="2.0"><channel><title>T</title>
            <item><guid>1</guid><link>https://example.org/</link><title>One</title></item>
            <item><guid>2</guid><link>https://example.org/</link><title>Two</title></item>
            <item><guid>3</guid><link>https://example.org/3</link><title>Three</title></item>
            </channel></rss>"#);
        assert_eq!(n.entries[0].article, None);
        assert_eq!(n.entries[1].article, None);
        assert!(n.entries[2].article.is_some());
    }

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

    #[test]
    fn fragments_are_kept_and_identify_only_where_they_tell_entries_apart() {
        let n = run(r#"<rss version="2.0"><channel><title>T</title>
            <item><title>A</title><link>https://example.org/day.html#a1</link></item>
            <item><title>B</title><link>https://example.org/day.html#a2</link></item>
            <item><title>C</title><link>https://example.org/page#details</link></item>
            </channel></rss>"#);
        assert_eq!(n.entries.len(), 3);
        let links: Vec<_> = n.entries.iter().map(|e| e.link.as_deref()).collect();
        assert_eq!(
            links,
            [
                Some("https://example.org/day.html#a1"),
                Some("https://example.org/day.html#a2"),
                Some("https://example.org/page#details")
            ]
        );
        assert_ne!(n.entries[0].key, n.entries[1].key);
        let key = |s: &str| article_key(&Url::parse(s).expect("url"));
        assert_eq!(
            n.entries[0].article,
            Some(key("https://example.org/day.html#a1"))
        );
        assert_eq!(n.entries[2].article, Some(key("https://example.org/page")));
        // Without a guid the whole link is the key, so it does not change when the page
        // later gains or loses other fragment posts; the article is what dedups.
        assert_eq!(
            n.entries[2].key,
            entry_key("src", "link", "https://example.org/page#details")
        );
    }

    #[test]
    fn entries_without_authors_take_the_feeds() {
        let n = run(
            r#"<feed xmlns="http://www.w3.org/2005/Atom"><title>T</title><id>f</id>
            <author><name>Feed Author</name></author>
            <entry><id>1</id><title>One</title><updated>2025-01-01T00:00:00Z</updated></entry>
            <entry><id>2</id><title>Two</title><author><name>Own</name></author>
            <updated>2025-01-01T00:00:00Z</updated></entry></feed>"#,
        );
        assert_eq!(n.entries[0].authors[0].name, "Feed Author");
        assert_eq!(n.entries[1].authors.len(), 1);
        assert_eq!(n.entries[1].authors[0].name, "Own");
    }

    #[test]
    fn same_feed_twice_gives_same_keys() {
        let xml = r#"<rss version="2.0"><channel><title>T</title><item><title>x</title></item></channel></rss>"#;
        assert_eq!(run(xml).entries[0].key, run(xml).entries[0].key);
    }

    #[test]
    fn titles_are_plain_text_and_content_is_sanitised() {
        let n = run(
            r#"<feed xmlns="http://www.w3.org/2005/Atom"><title>T</title><id>f</id>
            <entry><id>e</id><title type="html">&lt;b&gt;Fish &amp;amp; Chips&lt;/b&gt;</title>
            <link href="https://example.org/posts/1"/>
            <content type="html">&lt;p onclick="x()"&gt;Hi&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src="pic.png"&gt;&lt;/p&gt;</content>
            <updated>2025-01-01T00:00:00Z</updated></entry></feed>"#,
        );
        let e = &n.entries[0];
        assert_eq!(e.title, "Fish & Chips");
        let content = e.content.as_deref().expect("content");
        assert!(
            !content.contains("script") && !content.contains("onclick"),
            "{content}"
        );
        assert!(
            content.contains(r#"src="https://example.org/posts/pic.png""#),
            "{content}"
        );
    }

    #[test]
    fn future_dates_are_clamped() {
        let n = run(r#"<rss version="2.0"><channel><title>T</title>
            <item><guid>a</guid><title>A</title><pubDate>Mon, 01 Jan 2100 00:00:00 GMT</pubDate></item>
            </channel></rss>"#);
        assert_eq!(n.entries[0].published, Some(now()));
    }

    #[test]
    fn merge_detects_changes_but_not_restamps() {
        let n = run(r#"<rss version="2.0"><channel><title>T</title>
            <item><guid>a</guid><title>A</title><pubDate>Mon, 01 Jan 2024 00:00:00 GMT</pubDate></item>
            </channel></rss>"#);
        let old = n.entries[0].clone();
        assert_eq!(merge(Some(&old), old.clone(), now()), Merge::Unchanged);
        let mut restamped = old.clone();
        restamped.updated = now();
        assert_eq!(merge(Some(&old), restamped, now()), Merge::Unchanged);
        let mut changed = old.clone();
        changed.title = "A2".into();
        changed.fingerprint = fingerprint(&changed);
        changed.first_seen = now();
        let Merge::Updated(u) = merge(Some(&old), changed, now()) else {
            panic!("expected an update");
        };
        assert_eq!(u.key, old.key);
        assert_eq!(u.first_seen, old.first_seen);
        assert_eq!(u.updated, now());
    }
}
