//! Parsed feed to tributary's own [`Entry`] model, and the dedup decision. No I/O.
//!
//! Each entry gets its identity from [`crate::feed::identity`] (its guid, else its link,
//! else its title and content, scoped to the source).
//!
//! # Content
//! Titles become plain text (tags stripped, entities decoded, white space folded). Summaries
//! and content become sanitised HTML (ammonia's allow-list), with relative URLs resolved
//! against the entry's link, else the feed's URL. An entry with no date of its own, or one
//! in the future (so that it does not stick to the top), is dated by its feed's date (Atom
//! `<updated>`, RSS `lastBuildDate` or `pubDate`) when the feed has one not in the future,
//! else by the poll: two instances that fetch the same document at different moments then
//! date, order and page it alike (README, "Two instances behind nginx").

use chrono::{DateTime, Utc};
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use url::Url;

use crate::feed::identity::{article_key, fingerprint, identity, normalised_link};
use crate::feed::parse::{MAX_LIST_SCAN, ParsedFeed};
use crate::feed::text::{plain_text, to_html, without_credentials, xml_text};
use crate::model::{Enclosure, Entry, Person};

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
    // When an undated or future-dated entry is taken to be from: the feed's own date (the
    // same in every copy of this document) when it is recent, else the time of this poll.
    // A stale feed date (a `lastBuildDate` nobody updates) would bury a new entry among
    // old ones, or hand it to retention at once.
    let undated_at = feed
        .updated
        .or(feed.published)
        .filter(writable)
        .map(|d| d.min(now))
        .filter(|d| now - *d <= FRESH_FEED_DATE)
        .unwrap_or(now);
    let (mut entries, bare_links): (Vec<Entry>, Vec<Option<String>>) = feed
        .entries
        .into_iter()
        .map(|e| normalise_entry(e, source, feed_url, now, undated_at, &feed_authors))
        .unzip();

    // Fragments: a link keeps its fragment wherever it is published. Whether the fragment
    // is part of the article's identity depends on the source: when it tells several of its
    // own entries apart by fragment alone (`day.html#a1`, `day.html#a2`: posts on one page),
    // it is; otherwise it is a section anchor, and `page#details` is the article `page`.
    // Per page: the first link seen on it, and whether another one was.
    let mut fragments_by_page: HashMap<&str, (&str, bool)> = HashMap::new();
    for (e, bare) in entries.iter().zip(&bare_links) {
        if let Some(link) = &e.link {
            let page = bare.as_deref().unwrap_or(link);
            let (first, several) = fragments_by_page.entry(page).or_insert((link, false));
            *several |= *first != link.as_str();
        }
    }
    let by_fragment: HashSet<String> = fragments_by_page
        .into_iter()
        .filter(|(_, (_, several))| *several)
        .map(|(page, _)| page.to_string())
        .collect();
    // On such a source the whole link names the article.
    if !by_fragment.is_empty() {
        for e in &mut entries {
            if let Some(full) = e.link.as_deref().and_then(|l| Url::parse(l).ok())
                && by_fragment.contains(without_fragment(&full).as_str())
            {
                e.article = Some(article_key(&full));
            }
        }
    }

    // A guid shared by entries with different links is no identity: those entries are
    // identified by their links instead. Per guid: the first link, and whether another
    // one was seen.
    let mut guid_links: HashMap<&str, (Option<&str>, bool)> = HashMap::new();
    for e in &entries {
        if let Some(g) = &e.guid {
            let link = e.link.as_deref();
            let (first, several) = guid_links.entry(g).or_insert((link, false));
            *several |= *first != link;
        }
    }
    let unusable: HashSet<String> = guid_links
        .into_iter()
        .filter(|(_, (_, several))| *several)
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

/// How old a feed's own date may be to date its undated entries (see [`normalise`]).
const FRESH_FEED_DATE: chrono::TimeDelta = chrono::TimeDelta::days(2);

/// Whether a date has a year that RFC 3339 and RFC 2822 can write (a page's "9999999 days
/// ago" is no date at all).
fn writable(d: &DateTime<Utc>) -> bool {
    (0..=9999).contains(&chrono::Datelike::year(d))
}

/// One entry in our model, and its link without the fragment (what identifies it unless its
/// source tells entries apart by fragment; see [`normalise`]) when the link has one (else
/// that is the link itself).
fn normalise_entry(
    e: feed_rs::model::Entry,
    source: &str,
    feed_url: &Url,
    now: DateTime<Utc>,
    undated_at: DateTime<Utc>,
    feed_authors: &[Person],
) -> (Entry, Option<String>) {
    let guid = Some(e.id.trim().to_string()).filter(|g| !g.is_empty());
    // An RSS guid is a permalink unless marked otherwise (feed-rs does not keep the mark):
    // with no <link>, an absolute http(s) guid is where the entry lives.
    let link = pick_link(&e.links, feed_url)
        .map(normalised_link)
        .or_else(|| {
            guid.as_deref()
                .and_then(|g| Url::parse(g).ok())
                .filter(|u| matches!(u.scheme(), "http" | "https"))
                .map(normalised_link)
        });
    let fragment_less = link
        .as_ref()
        .filter(|l| l.fragment().is_some())
        .map(without_fragment);
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
    let xml_base = e
        .base
        .as_deref()
        .and_then(|b| feed_url.join(b).ok())
        .filter(web);
    let content_base = xml_base
        .as_ref()
        .or(link.as_ref())
        .or(Some(feed_url).filter(|u| web(u)));

    let summary = e
        .summary
        .as_ref()
        .map(|t| to_html(&t.content, is_html(t.content_type.as_ref()), content_base))
        .filter(|s| !s.trim().is_empty());
    let content = e
        .content
        .as_ref()
        .and_then(|c| {
            c.body
                .as_ref()
                .map(|body| to_html(body, is_html(c.content_type.as_ref()), content_base))
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
    // What names the article across sources: its link (else a permalink guid, which is
    // then the link), without the fragment (`normalise` puts the fragment back for sources
    // whose entries differ by it).
    let article = fragment_less.as_ref().or(link.as_ref()).map(article_key);

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

    // The first MAX_ENCLOSURES distinct URLs (a linear search: there are at most that many).
    // An address just read is not resolved again: it would give the same URL (a podcast's
    // <enclosure> and <media:content> usually name the same file).
    let mut enclosures: Vec<Enclosure> = Vec::new();
    let mut last_href: Option<&str> = None;
    let from_links = e
        .links
        .iter()
        .take(MAX_LIST_SCAN)
        .filter(|l| l.rel.as_deref() == Some("enclosure"))
        .map(|l| (l.href.as_str(), l.media_type.clone(), l.length));
    let from_media = e
        .media
        .iter()
        .take(MAX_LIST_SCAN)
        .flat_map(|m| m.content.iter().take(MAX_LIST_SCAN))
        .filter_map(|c| {
            let href = c.url.as_ref()?.as_str();
            Some((href, c.content_type.as_ref().map(|t| t.to_string()), c.size))
        });
    for (href, mime_type, length) in from_links.chain(from_media) {
        if enclosures.len() >= MAX_ENCLOSURES {
            break;
        }
        if last_href == Some(href) {
            continue;
        }
        last_href = Some(href);
        if let Some(url) = absolute(href, feed_url).map(String::from)
            && !enclosures.iter().any(|e| e.url == url)
        {
            enclosures.push(Enclosure {
                url,
                mime_type: mime_type
                    .map(|m| shorten(xml_text(m.trim()).into_owned(), MAX_LABEL_CHARS))
                    .filter(|m| !m.is_empty()),
                length: length.filter(|l| *l > 0),
            });
        }
    }

    // Dates in the future are clamped (to the feed's date, else now); a year outside what
    // RFC 3339 and RFC 2822 write (a page's "9999999 days ago") is no date at all.
    let clamp = |d: DateTime<Utc>| if d > now { undated_at } else { d };
    let (published, updated) = (e.published.filter(writable), e.updated.filter(writable));
    let published = published.or(updated).map(clamp);
    let updated = updated.or(published).map(clamp);
    // An undated entry takes its feed's recent date as its own (see `undated_at`), so every
    // instance dates it alike; it is still first seen now, which is what keeps a new entry
    // from retention for `keep_for` (a feed date a day old must not make it a day old).
    let published = published.or((undated_at != now).then_some(undated_at));
    let updated = updated.unwrap_or(undated_at);
    let first_seen = now;

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
        first_seen,
        fingerprint: [0; 16],
        article,
        duplicate_of: None,
        also_in: Vec::new(),
        full_text: None,
        full_content: None,
    };
    entry.fingerprint = fingerprint(&entry);
    (entry, fragment_less.map(String::from))
}

/// How many categories an entry keeps (the first distinct ones).
pub const MAX_CATEGORIES: usize = 100;
/// How many authors an entry (or a feed, for its entries) keeps.
pub const MAX_AUTHORS: usize = 20;
/// How many enclosures an entry keeps.
pub const MAX_ENCLOSURES: usize = 20;
/// A title longer than this many characters is cut (with an ellipsis).
pub const MAX_TITLE_CHARS: usize = 1_000;
/// Names, categories and media types longer than this are cut.
pub const MAX_LABEL_CHARS: usize = 200;

/// `text` cut to `max` characters, with an ellipsis when cut.
fn shorten(mut text: String, max: usize) -> String {
    if let Some((at, _)) = text.char_indices().nth(max) {
        text.truncate(at);
        text.push('…');
    }
    text
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
        // Distinct names and addresses (a linear search: at most MAX_AUTHORS).
        if out.iter().any(|o| o.name == name && o.email == email) {
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

/// Whether a media type names HTML or XML (in any case).
fn is_html(media_type: &str) -> bool {
    let m = media_type.as_bytes();
    m.windows(4).any(|w| w.eq_ignore_ascii_case(b"html"))
        || m.windows(3).any(|w| w.eq_ignore_ascii_case(b"xml"))
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
    use crate::feed::identity::entry_key;
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
    fn an_undated_or_future_entry_takes_its_feeds_date_else_the_poll() {
        let dated = run(r#"<rss version="2.0"><channel><title>T</title>
            <lastBuildDate>Thu, 01 Jan 2026 10:00:00 GMT</lastBuildDate>
            <item><guid>a</guid><title>A</title></item>
            <item><guid>b</guid><title>B</title><pubDate>Sun, 31 Dec 2023 00:00:00 GMT</pubDate></item>
            </channel></rss>"#);
        let feed_date = "2026-01-01T10:00:00Z".parse::<DateTime<Utc>>().ok();
        let a = &dated.entries[0];
        assert_eq!((a.published, Some(a.updated)), (feed_date, feed_date));
        assert_eq!(Some(a.sort_time()), feed_date, "the same in every copy");
        assert_eq!(a.first_seen, now(), "found now: retention counts from here");
        // A dated entry keeps its own date and is first seen now.
        assert_eq!(dated.entries[1].first_seen, now());
        // An entry dated in the future: the feed's date too.
        let future = run(r#"<rss version="2.0"><channel><title>T</title>
            <lastBuildDate>Thu, 01 Jan 2026 10:00:00 GMT</lastBuildDate>
            <item><guid>a</guid><title>A</title><pubDate>Mon, 01 Jan 2100 00:00:00 GMT</pubDate></item>
            </channel></rss>"#);
        assert_eq!(future.entries[0].published, feed_date);
        // A feed without a date, one in the future or one older than two days (a stale
        // lastBuildDate would bury the entry): the poll's time.
        for channel in [
            "",
            "<pubDate>Mon, 01 Jan 2100 00:00:00 GMT</pubDate>",
            "<lastBuildDate>Mon, 01 Jan 2024 10:00:00 GMT</lastBuildDate>",
        ] {
            let n = run(&format!(
                r#"<rss version="2.0"><channel><title>T</title>{channel}
                <item><guid>a</guid><title>A</title></item></channel></rss>"#
            ));
            assert_eq!(
                (n.entries[0].updated, n.entries[0].sort_time()),
                (now(), now())
            );
        }
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
