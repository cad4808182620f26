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

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use url::Url;

use crate::model::{Enclosure, Entry, EntryKey, Person};
use crate::parse::ParsedFeed;

/// Keeps key derivations of different versions or purposes apart.
const KEY_CONTEXT: &str = "tributary 2026-11 entry key v1";
const FINGERPRINT_CONTEXT: &str = "tributary 2026-11 entry fingerprint v1";

/// A feed turned into our model.
#[derive(Debug)]
pub struct Normalised {
    pub feed_title: Option<String>,
    pub feed_link: Option<String>,
    /// RSS `<ttl>`: how long the publisher says the feed may be cached.
    pub ttl: Option<std::time::Duration>,
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
    let mut seen = HashSet::new();
    let mut entries = Vec::with_capacity(feed.entries.len());
    for e in feed.entries {
        let entry = normalise_entry(e, source, feed_url, now);
        if seen.insert(entry.key) {
            entries.push(entry);
        }
    }
    Normalised {
        feed_title,
        feed_link: feed_link.map(String::from),
        ttl: ttl
            .filter(|m| *m > 0)
            .map(|m| std::time::Duration::from_secs(u64::from(m) * 60)),
        entries,
    }
}

fn normalise_entry(
    e: feed_rs::model::Entry,
    source: &str,
    feed_url: &Url,
    now: DateTime<Utc>,
) -> Entry {
    let guid = Some(e.id.trim().to_string()).filter(|g| !g.is_empty());
    // An RSS guid is a permalink unless marked otherwise (feed-rs does not keep the mark):
    // with no <link>, an absolute http(s) guid is where the entry lives.
    let link = pick_link(&e.links, feed_url).or_else(|| {
        guid.as_deref()
            .and_then(|g| Url::parse(g).ok())
            .filter(|u| matches!(u.scheme(), "http" | "https"))
    });
    let content_base = link.clone().unwrap_or_else(|| feed_url.clone());

    let summary = e
        .summary
        .as_ref()
        .map(|t| to_html(&t.content, is_html(t.content_type.as_ref()), &content_base))
        .filter(|s| !s.trim().is_empty());
    let content = e
        .content
        .as_ref()
        .and_then(|c| {
            c.body
                .as_ref()
                .map(|body| to_html(body, is_html(c.content_type.as_ref()), &content_base))
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

    let key = match (&guid, &link) {
        (Some(g), _) => entry_key(source, "guid", g),
        (None, Some(l)) => entry_key(source, "link", l.as_str()),
        (None, None) => entry_key(
            source,
            "content",
            &format!(
                "{title}\u{0}{}\u{0}{}",
                summary.as_deref().unwrap_or(""),
                content.as_deref().unwrap_or("")
            ),
        ),
    };

    let authors = e
        .authors
        .iter()
        .filter_map(|p| {
            let name = plain_text(p.name.as_deref().unwrap_or(""), false);
            let email = p
                .email
                .as_ref()
                .map(|m| m.trim().to_string())
                .filter(|m| !m.is_empty());
            let name = if name.is_empty() {
                email.clone()?
            } else {
                name
            };
            Some(Person {
                name,
                email,
                uri: p
                    .uri
                    .as_deref()
                    .and_then(|u| absolute(u, feed_url))
                    .map(String::from),
            })
        })
        .collect();

    let mut categories: Vec<String> = Vec::new();
    for c in &e.categories {
        let label = plain_text(c.label.as_deref().unwrap_or(&c.term), false);
        if !label.is_empty() && !categories.contains(&label) {
            categories.push(label);
        }
    }

    let mut enclosures: Vec<Enclosure> = Vec::new();
    let mut add_enclosure = |url: Option<Url>, mime_type: Option<String>, length: Option<u64>| {
        if let Some(url) = url
            && !enclosures.iter().any(|x| x.url == url.as_str())
        {
            enclosures.push(Enclosure {
                url: url.to_string(),
                mime_type: mime_type.filter(|m| !m.is_empty()),
                length: length.filter(|l| *l > 0),
            });
        }
    };
    for l in &e.links {
        if l.rel.as_deref() == Some("enclosure") {
            add_enclosure(absolute(&l.href, feed_url), l.media_type.clone(), l.length);
        }
    }
    for m in &e.media {
        for c in &m.content {
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
        published,
        updated,
        first_seen: now,
        fingerprint: [0; 16],
    };
    entry.fingerprint = fingerprint(&entry);
    entry
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
        .filter(|l| matches!(l.rel.as_deref(), None | Some("alternate")))
        .find_map(|l| absolute(&l.href, base))
}

fn absolute(href: &str, base: &Url) -> Option<Url> {
    let href = href.trim();
    if href.is_empty() {
        return None;
    }
    let url = base.join(href).ok()?;
    matches!(url.scheme(), "http" | "https").then_some(url)
}

/// Sanitised HTML from feed text: HTML is cleaned by the allow-list, plain text escaped.
fn to_html(text: &str, html: bool, base: &Url) -> String {
    if !html {
        return html_escape::encode_text(text.trim()).into_owned();
    }
    let mut builder = ammonia::Builder::default();
    builder
        .url_relative(ammonia::UrlRelative::RewriteWithBase(base.clone()))
        .link_rel(Some("noopener noreferrer"));
    builder.clean(text).to_string().trim().to_string()
}

/// Plain text: tags stripped (scripts and styles with their contents), entities decoded,
/// white space folded.
pub fn plain_text(text: &str, html: bool) -> String {
    let decoded = if html || text.contains('<') || text.contains('&') {
        let stripped = ammonia::Builder::empty()
            .clean_content_tags(HashSet::from(["script", "style"]))
            .clean(text)
            .to_string();
        html_escape::decode_html_entities(&stripped).into_owned()
    } else {
        text.to_string()
    };
    decoded.split_whitespace().collect::<Vec<_>>().join(" ")
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
    use crate::parse::parse;

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
