//! What feed-rs reads past, added to its result from the document's own text: a channel's
//! `<dc:creator>`, items' lone `<media:thumbnail>` and Dublin Core terms dates.

use url::Url;

use super::ParsedFeed;

/// An RSS channel's `<dc:creator>` as the feed's author (feed-rs reads it only on items),
/// when the feed names no other (`managingEditor`, `itunes:author`).
pub(super) fn add_channel_creator(feed: &mut ParsedFeed, text: &str) {
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

/// What feed-rs drops from items, found here in document order and given to the entries:
/// - a `<media:thumbnail>` with no `<media:content>` beside it (YouTube's, blogs');
/// - Dublin Core terms dates (`dcterms:issued`, `dcterms:created`, `dcterms:modified`).
pub(super) fn add_item_extras(feed: &mut ParsedFeed, text: &str, base: &Url) {
    use quick_xml::events::Event;
    // A thumbnail found here is given only to an entry that has none: with every entry
    // holding one already and no Dublin Core terms, the pass would change nothing.
    let all_have_thumbnails = feed
        .entries
        .iter()
        .all(|e| e.media.iter().any(|m| !m.thumbnails.is_empty()));
    if !text.contains("dcterms") && (all_have_thumbnails || !text.contains(":thumbnail")) {
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
            entry.media.push(thumbnail(url.to_string()));
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

/// A media object holding only a thumbnail at `uri` (feed-rs's model for `media:thumbnail`).
pub(crate) fn thumbnail(uri: String) -> feed_rs::model::MediaObject {
    let mut media = feed_rs::model::MediaObject::default();
    media.thumbnails.push(feed_rs::model::MediaThumbnail {
        image: feed_rs::model::Image {
            uri,
            title: None,
            link: None,
            width: None,
            height: None,
            description: None,
        },
        time: None,
    });
    media
}
