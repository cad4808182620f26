//! Entries to an Atom 1.0 document, with the `atom_syndication` writer.

use std::collections::HashMap;

use atom_syndication as atom;
use chrono::{DateTime, FixedOffset, Utc};

use super::clean::clean;
use super::meta::{FeedMeta, SourceInfo, media_namespace, newest};
use crate::model::Entry;

/// An Atom 1.0 document.
pub fn atom(meta: &FeedMeta, entries: &[Entry], sources: &HashMap<String, SourceInfo>) -> String {
    let c = clean(meta, entries, sources);
    let (meta, entries, sources) = (&*c.meta, &*c.entries, &*c.sources);
    let updated = newest(entries, meta);
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
        // WebSub §4: the hubs beside the self link.
        .chain(meta.hubs.iter().map(|h| atom_link(h, "hub", None)))
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
