//! Entries to an RSS 2.0 document, with the `rss` writer (Dublin Core creators, Media RSS
//! thumbnails, Atom self and next links).

use std::collections::HashMap;

use super::clean::clean;
use super::meta::{FeedMeta, SourceInfo, media_namespace, newest};
use crate::model::Entry;

/// An RSS 2.0 document.
pub fn rss(meta: &FeedMeta, entries: &[Entry], sources: &HashMap<String, SourceInfo>) -> String {
    let c = clean(meta, entries, sources);
    let (meta, entries, sources) = (&*c.meta, &*c.entries, &*c.sources);
    let newest = newest(entries, meta);
    let channel = rss::Channel {
        title: meta.title.clone(),
        link: meta.home_url.clone(),
        // Readers render an RSS description as HTML; ours is text (`[publish] description`),
        // so it goes out escaped: `<script>` shows as written.
        description: html_escape::encode_text(&meta.description).into_owned(),
        generator: Some(format!("tributary {}", crate::VERSION)),
        last_build_date: Some(rfc2822(newest)),
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
            // WebSub §4: the hubs beside the self link.
            .chain(meta.hubs.iter().map(|h| rss::extension::atom::Link {
                href: h.clone(),
                rel: "hub".into(),
                ..Default::default()
            }))
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
        pub_date: Some(rfc2822(e.sort_time())),
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

/// An RFC 2822 date; one chrono cannot write that way (a year past 9999 or before 0, which
/// normalise never stores) is written as the nearest one it can, never a panic.
fn rfc2822(d: chrono::DateTime<chrono::Utc>) -> String {
    let earliest = chrono::DateTime::<chrono::Utc>::from_timestamp(-62_167_219_200, 0);
    let latest = chrono::DateTime::<chrono::Utc>::from_timestamp(253_402_300_799, 0);
    let d = match (earliest, latest) {
        (Some(lo), Some(hi)) => d.clamp(lo, hi),
        _ => d,
    };
    d.to_rfc2822()
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    /// A date RFC 2822 cannot write is written as the nearest it can, not a panic (one
    /// such entry would otherwise make every RSS document holding it an error).
    #[test]
    fn dates_out_of_range_do_not_panic() {
        let far = Utc
            .with_ymd_and_hms(12_000, 1, 1, 0, 0, 0)
            .single()
            .expect("date");
        assert_eq!(super::rfc2822(far), "Fri, 31 Dec 9999 23:59:59 +0000");
        let before = Utc
            .with_ymd_and_hms(-20, 1, 1, 0, 0, 0)
            .single()
            .expect("date");
        assert!(
            super::rfc2822(before).contains(" 0000 "),
            "{}",
            super::rfc2822(before)
        );
        let now = Utc
            .with_ymd_and_hms(2026, 11, 29, 5, 0, 0)
            .single()
            .expect("date");
        assert_eq!(super::rfc2822(now), "Sun, 29 Nov 2026 05:00:00 +0000");
    }
}
