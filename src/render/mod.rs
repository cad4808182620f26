//! Entries to Atom 1.0 and RSS 2.0 documents, with the `atom_syndication` and `rss` writer
//! crates (never by string formatting, so escaping is always right). No I/O.
//!
//! What the W3C Feed Validator asks for is built in: a self link equal to the URL requested,
//! a feed-level author (so every entry has one), `id`/`title`/`updated` inside each Atom
//! `<source>`, RFC 3339 dates in Atom and RFC 822 dates in RSS, unique ids.

pub mod opml;

use std::borrow::Cow;
use std::collections::HashMap;

use atom_syndication as atom;
use chrono::{DateTime, FixedOffset, Utc};

use crate::feed::text::{clean_xml_text, is_xml_char};
use crate::model::Entry;

/// What describes one published feed.
#[derive(Clone, Debug)]
pub struct FeedMeta {
    pub title: String,
    pub description: String,
    pub author: String,
    /// The exact URL this document is served at (query string included): the self link.
    pub self_url: String,
    /// A stable id for the feed (its URL without query string).
    pub id: String,
    /// The site's home page.
    pub home_url: String,
    /// `updated` of a feed with no entries.
    pub empty_updated: DateTime<Utc>,
    /// The next (older) page, when there is one (RFC 5005 paging).
    pub next_url: Option<String>,
}

/// What a combined feed says about where an entry came from.
#[derive(Clone, Debug)]
pub struct SourceInfo {
    pub title: String,
    /// The source's feed URL.
    pub url: String,
    /// The source's home page, when known.
    pub link: Option<String>,
}

/// Every text of a document without the characters XML 1.0 cannot carry (see
/// [`crate::feed::text::xml_text`]): `normalise` removes them from what it stores, but entries
/// stored by older versions, feed titles kept in a source's state and the config may still
/// hold some, and one of them makes the whole document unreadable. Borrows what is clean.
struct Clean<'a> {
    meta: Cow<'a, FeedMeta>,
    entries: Cow<'a, [Entry]>,
    sources: Cow<'a, HashMap<String, SourceInfo>>,
}

fn clean<'a>(
    meta: &'a FeedMeta,
    entries: &'a [Entry],
    sources: &'a HashMap<String, SourceInfo>,
) -> Clean<'a> {
    let dirty = |s: &str| !s.chars().all(is_xml_char);
    let meta_dirty = [
        &meta.title,
        &meta.description,
        &meta.author,
        &meta.self_url,
        &meta.id,
        &meta.home_url,
    ]
    .iter()
    .any(|s| dirty(s))
        || meta.next_url.as_deref().is_some_and(dirty);
    let meta = if meta_dirty {
        let mut m = meta.clone();
        for s in [
            &mut m.title,
            &mut m.description,
            &mut m.author,
            &mut m.self_url,
            &mut m.id,
            &mut m.home_url,
        ] {
            clean_xml_text(s);
        }
        if let Some(n) = &mut m.next_url {
            clean_xml_text(n);
        }
        Cow::Owned(m)
    } else {
        Cow::Borrowed(meta)
    };
    let sources = if sources
        .values()
        .any(|s| dirty(&s.title) || dirty(&s.url) || s.link.as_deref().is_some_and(dirty))
    {
        Cow::Owned(
            sources
                .iter()
                .map(|(k, s)| {
                    let mut s = s.clone();
                    clean_xml_text(&mut s.title);
                    clean_xml_text(&mut s.url);
                    if let Some(l) = &mut s.link {
                        clean_xml_text(l);
                    }
                    (k.clone(), s)
                })
                .collect(),
        )
    } else {
        Cow::Borrowed(sources)
    };
    let entries = if entries.iter().any(|e| entry_texts(e).any(dirty)) {
        Cow::Owned(
            entries
                .iter()
                .map(|e| {
                    let mut e = e.clone();
                    visit_texts(&mut e, &mut |s| clean_xml_text(s));
                    e
                })
                .collect(),
        )
    } else {
        Cow::Borrowed(entries)
    };
    Clean {
        meta,
        entries,
        sources,
    }
}

/// Every published text of an entry (what [`visit_texts`] visits).
fn entry_texts(e: &Entry) -> impl Iterator<Item = &str> {
    std::iter::once(e.title.as_str())
        .chain(
            [
                &e.link,
                &e.summary,
                &e.content,
                &e.comments,
                &e.thumbnail,
                &e.full_content,
            ]
            .into_iter()
            .flatten()
            .map(String::as_str),
        )
        .chain(e.authors.iter().flat_map(|p| {
            std::iter::once(p.name.as_str())
                .chain([&p.email, &p.uri].into_iter().flatten().map(String::as_str))
        }))
        .chain(e.categories.iter().map(String::as_str))
        .chain(
            e.enclosures
                .iter()
                .flat_map(|x| std::iter::once(x.url.as_str()).chain(x.mime_type.as_deref())),
        )
}

/// Calls `f` on every published text of an entry.
fn visit_texts(e: &mut Entry, f: &mut dyn FnMut(&mut String)) {
    f(&mut e.title);
    for s in [
        &mut e.link,
        &mut e.summary,
        &mut e.content,
        &mut e.comments,
        &mut e.thumbnail,
        &mut e.full_content,
    ]
    .into_iter()
    .flatten()
    {
        f(s);
    }
    for p in &mut e.authors {
        f(&mut p.name);
        for s in [&mut p.email, &mut p.uri].into_iter().flatten() {
            f(s);
        }
    }
    for c in &mut e.categories {
        f(c);
    }
    for x in &mut e.enclosures {
        f(&mut x.url);
        if let Some(m) = &mut x.mime_type {
            f(m);
        }
    }
}

/// Where a source's feed is published as coming from: its own URL, except that a `file:`
/// URL (a path private to this machine) becomes the source's feed on this instance
/// (`{base_url}/sources/{name}.atom`), and user name and password are taken out of an
/// http(s) URL.
pub fn public_source_url(base_url: &str, name: &str, url: &url::Url) -> String {
    match url.scheme() {
        "http" | "https" => crate::feed::text::without_credentials(url.clone()).to_string(),
        _ => format!("{base_url}/sources/{name}.atom"),
    }
}

/// An Atom 1.0 document.
pub fn atom(meta: &FeedMeta, entries: &[Entry], sources: &HashMap<String, SourceInfo>) -> String {
    let c = clean(meta, entries, sources);
    let (meta, entries, sources) = (&*c.meta, &*c.entries, &*c.sources);
    let updated = entries
        .iter()
        .map(|e| e.updated)
        .max()
        .unwrap_or(meta.empty_updated);
    let feed = atom::Feed {
        title: atom::Text::plain(meta.title.clone()),
        id: meta.id.clone(),
        updated: fixed(updated),
        authors: vec![atom_person(&meta.author, None, None)],
        subtitle: Some(atom::Text::plain(meta.description.clone())),
        generator: Some(atom::Generator {
            value: "tributary".into(),
            uri: None,
            version: Some(crate::VERSION.into()),
        }),
        links: [
            Some(atom_link(
                &meta.self_url,
                "self",
                Some("application/atom+xml"),
            )),
            Some(atom_link(&meta.home_url, "alternate", Some("text/html"))),
            meta.next_url
                .as_deref()
                .map(|n| atom_link(n, "next", Some("application/atom+xml"))),
        ]
        .into_iter()
        .flatten()
        .collect(),
        entries: entries.iter().map(|e| atom_entry(e, sources)).collect(),
        namespaces: media_namespace(entries),
        ..Default::default()
    };
    feed.to_string()
}

fn atom_entry(e: &Entry, sources: &HashMap<String, SourceInfo>) -> atom::Entry {
    let mut links = Vec::new();
    if let Some(link) = &e.link {
        links.push(atom_link(link, "alternate", Some("text/html")));
    }
    if let Some(c) = &e.comments {
        // RFC 4685 (Atom threading): where the replies are.
        links.push(atom_link(c, "replies", Some("text/html")));
    }
    for enc in &e.enclosures {
        let mut l = atom_link(&enc.url, "enclosure", enc.mime_type.as_deref());
        l.length = enc.length.map(|n| n.to_string());
        links.push(l);
    }
    let html = |s: &String| atom::Text {
        value: s.clone(),
        r#type: atom::TextType::Html,
        ..Default::default()
    };
    // An entry needs content or an alternate link; with neither, the summary (or the title)
    // becomes the content.
    let content_html = match (&e.content, &e.link, &e.summary) {
        (Some(c), _, _) => Some(c.clone()),
        (None, None, Some(s)) => Some(s.clone()),
        (None, None, None) => Some(html_escape::encode_text(&e.title).into_owned()),
        (None, Some(_), _) => None,
    };
    let summary = match (&e.content, &e.summary, &e.link) {
        (None, Some(_), None) => None, // already the content
        (_, s, _) => s.as_ref().map(html),
    };
    atom::Entry {
        title: atom::Text::plain(e.title.clone()),
        id: e.key.urn(),
        updated: fixed(e.updated),
        published: e.published.map(fixed),
        authors: e
            .authors
            .iter()
            .map(|p| atom_person(&p.name, p.email.as_deref(), p.uri.as_deref()))
            .collect(),
        categories: e
            .categories
            .iter()
            .map(|c| atom::Category {
                term: c.clone(),
                ..Default::default()
            })
            .collect(),
        links,
        summary,
        content: content_html.map(|value| atom::Content {
            value: Some(value),
            content_type: Some("html".into()),
            ..Default::default()
        }),
        source: sources.get(&e.source).map(|s| {
            let mut links = vec![atom_link(&s.url, "self", None)];
            if let Some(l) = &s.link {
                links.push(atom_link(l, "alternate", Some("text/html")));
            }
            atom::Source {
                title: atom::Text::plain(s.title.clone()),
                id: s.url.clone(),
                updated: fixed(e.updated),
                links,
                ..Default::default()
            }
        }),
        extensions: thumbnail_extension(e),
        ..Default::default()
    }
}

const MEDIA_NS: &str = "http://search.yahoo.com/mrss/";

/// `xmlns:media` when some entry has a thumbnail.
fn media_namespace(entries: &[Entry]) -> std::collections::BTreeMap<String, String> {
    let mut ns = std::collections::BTreeMap::new();
    if entries.iter().any(|e| e.thumbnail.is_some()) {
        ns.insert("media".to_string(), MEDIA_NS.to_string());
    }
    ns
}

/// `<media:thumbnail url="..."/>` (Media RSS) for an Atom entry.
fn thumbnail_extension(e: &Entry) -> atom::extension::ExtensionMap {
    let mut map = atom::extension::ExtensionMap::new();
    if let Some(t) = &e.thumbnail {
        // atom_syndication writes extension attributes as raw bytes (unlike the rss crate,
        // which escapes them): the value must be escaped here, or a `&` in the URL breaks
        // the document.
        let escaped = html_escape::encode_double_quoted_attribute(t).into_owned();
        let ext = atom::extension::Extension {
            name: "media:thumbnail".into(),
            attrs: [("url".to_string(), escaped)].into(),
            ..Default::default()
        };
        map.insert(
            "media".into(),
            [("thumbnail".to_string(), vec![ext])].into(),
        );
    }
    map
}

/// The same for an RSS item.
fn rss_thumbnail_extension(e: &Entry) -> rss::extension::ExtensionMap {
    let mut map = rss::extension::ExtensionMap::new();
    if let Some(t) = &e.thumbnail {
        let ext = rss::extension::Extension {
            name: "media:thumbnail".into(),
            attrs: [("url".to_string(), t.clone())].into(),
            ..Default::default()
        };
        map.insert(
            "media".into(),
            [("thumbnail".to_string(), vec![ext])].into(),
        );
    }
    map
}

/// An RSS 2.0 document.
pub fn rss(meta: &FeedMeta, entries: &[Entry], sources: &HashMap<String, SourceInfo>) -> String {
    let c = clean(meta, entries, sources);
    let (meta, entries, sources) = (&*c.meta, &*c.entries, &*c.sources);
    let newest = entries
        .iter()
        .map(|e| e.updated)
        .max()
        .unwrap_or(meta.empty_updated);
    let channel = rss::Channel {
        title: meta.title.clone(),
        link: meta.home_url.clone(),
        // Readers render an RSS description as HTML; ours is text (`[publish] description`),
        // so it goes out escaped: `<script>` shows as written.
        description: html_escape::encode_text(&meta.description).into_owned(),
        generator: Some(format!("tributary {}", crate::VERSION)),
        last_build_date: Some(newest.to_rfc2822()),
        docs: Some("https://www.rssboard.org/rss-specification".into()),
        atom_ext: Some(rss::extension::atom::AtomExtension {
            links: [
                Some(("self", &meta.self_url)),
                meta.next_url.as_ref().map(|n| ("next", n)),
            ]
            .into_iter()
            .flatten()
            .map(|(rel, href)| rss::extension::atom::Link {
                href: href.clone(),
                rel: rel.into(),
                mime_type: Some("application/rss+xml".into()),
                ..Default::default()
            })
            .collect(),
        }),
        items: entries.iter().map(|e| rss_item(e, sources)).collect(),
        namespaces: media_namespace(entries),
        ..Default::default()
    };
    channel.to_string()
}

fn rss_item(e: &Entry, sources: &HashMap<String, SourceInfo>) -> rss::Item {
    let (description, content) = match (&e.summary, &e.content) {
        (Some(s), Some(c)) => (Some(s.clone()), Some(c.clone())),
        (Some(s), None) => (Some(s.clone()), None),
        (None, Some(c)) => (Some(c.clone()), None),
        (None, None) => (None, None),
    };
    let creators: Vec<String> = e.authors.iter().map(|p| p.name.clone()).collect();
    rss::Item {
        title: Some(e.title.clone()),
        link: e.link.clone(),
        comments: e.comments.clone(),
        description,
        content,
        guid: Some(rss::Guid {
            value: e.key.urn(),
            permalink: false,
        }),
        pub_date: Some(e.sort_time().to_rfc2822()),
        categories: e
            .categories
            .iter()
            .map(|c| rss::Category {
                name: c.clone(),
                domain: None,
            })
            .collect(),
        // RSS allows one enclosure per item: the first, as podcast apps expect.
        enclosure: e.enclosures.first().map(|enc| rss::Enclosure {
            url: enc.url.clone(),
            length: enc.length.unwrap_or(0).to_string(),
            mime_type: enc
                .mime_type
                .clone()
                .unwrap_or_else(|| "application/octet-stream".into()),
        }),
        dublin_core_ext: (!creators.is_empty()).then(|| {
            rss::extension::dublincore::DublinCoreExtension {
                creators,
                ..Default::default()
            }
        }),
        source: sources.get(&e.source).map(|s| rss::Source {
            url: s.url.clone(),
            title: Some(s.title.clone()),
        }),
        extensions: rss_thumbnail_extension(e),
        ..Default::default()
    }
}

fn fixed(t: DateTime<Utc>) -> DateTime<FixedOffset> {
    t.fixed_offset()
}

fn atom_link(href: &str, rel: &str, mime_type: Option<&str>) -> atom::Link {
    atom::Link {
        href: href.to_string(),
        rel: rel.to_string(),
        mime_type: mime_type.map(str::to_string),
        ..Default::default()
    }
}

fn atom_person(name: &str, email: Option<&str>, uri: Option<&str>) -> atom::Person {
    atom::Person {
        name: name.to_string(),
        email: email.map(str::to_string),
        uri: uri.map(str::to_string),
        ..Default::default()
    }
}

/// A JSON Feed 1.1 document (jsonfeed.org/version/1.1), built from serde types.
///
/// JSON could carry every character (escaped), but the same texts are published as in the
/// XML formats: without the ones XML cannot carry.
pub fn json(meta: &FeedMeta, entries: &[Entry], sources: &HashMap<String, SourceInfo>) -> String {
    use serde_json::{Map, Value, json};
    let c = clean(meta, entries, sources);
    let (meta, entries, sources) = (&*c.meta, &*c.entries, &*c.sources);
    let items: Vec<Value> = entries
        .iter()
        .map(|e| {
            let mut item = Map::new();
            item.insert("id".into(), json!(e.key.urn()));
            if let Some(link) = &e.link {
                item.insert("url".into(), json!(link));
            }
            item.insert("title".into(), json!(e.title));
            let content = e
                .content
                .clone()
                .or_else(|| e.summary.clone())
                .unwrap_or_else(|| html_escape::encode_text(&e.title).into_owned());
            item.insert("content_html".into(), json!(content));
            if let Some(summary) = &e.summary {
                // JSON Feed's summary is plain text.
                item.insert(
                    "summary".into(),
                    json!(crate::feed::text::plain_text(summary, true)),
                );
            }
            if let Some(p) = e.published {
                item.insert("date_published".into(), json!(p.to_rfc3339()));
            }
            item.insert("date_modified".into(), json!(e.updated.to_rfc3339()));
            if !e.authors.is_empty() {
                let authors: Vec<Value> = e
                    .authors
                    .iter()
                    .map(|p| match &p.uri {
                        Some(u) => json!({"name": p.name, "url": u}),
                        None => json!({"name": p.name}),
                    })
                    .collect();
                item.insert("authors".into(), Value::Array(authors));
            }
            if !e.categories.is_empty() {
                item.insert("tags".into(), json!(e.categories));
            }
            if let Some(t) = &e.thumbnail {
                item.insert("image".into(), json!(t));
            }
            if !e.enclosures.is_empty() {
                let attachments: Vec<Value> = e
                    .enclosures
                    .iter()
                    .map(|a| {
                        let mut m = Map::new();
                        m.insert("url".into(), json!(a.url));
                        m.insert(
                            "mime_type".into(),
                            json!(a.mime_type.as_deref().unwrap_or("application/octet-stream")),
                        );
                        if let Some(len) = a.length {
                            m.insert("size_in_bytes".into(), json!(len));
                        }
                        Value::Object(m)
                    })
                    .collect();
                item.insert("attachments".into(), Value::Array(attachments));
            }
            // Extensions start with an underscore (JSON Feed 1.1, "Extensions").
            if let Some(s) = sources.get(&e.source) {
                let mut source = Map::new();
                source.insert("title".into(), json!(s.title));
                source.insert("feed_url".into(), json!(s.url));
                if let Some(l) = &s.link {
                    source.insert("home_page_url".into(), json!(l));
                }
                item.insert("_source".into(), Value::Object(source));
            }
            Value::Object(item)
        })
        .collect();
    let mut feed = json!({
        "version": "https://jsonfeed.org/version/1.1",
        "title": meta.title,
        "home_page_url": meta.home_url,
        "feed_url": meta.self_url,
        "description": meta.description,
        "authors": [{"name": meta.author}],
        "items": items,
    });
    if let (Some(next), Some(obj)) = (&meta.next_url, feed.as_object_mut()) {
        obj.insert("next_url".into(), json!(next));
    }
    // Serialising a Value cannot fail.
    serde_json::to_string_pretty(&feed).unwrap_or_default()
}
