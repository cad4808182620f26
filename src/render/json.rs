//! Entries to a JSON Feed 1.1 document, built from serde values.

use std::collections::HashMap;

use super::clean::clean;
use super::meta::{FeedMeta, SourceInfo};
use crate::model::Entry;

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
    // JSON Feed 1.1's `hubs`: WebSub endpoints.
    if let (false, Some(obj)) = (meta.hubs.is_empty(), feed.as_object_mut()) {
        let hubs: Vec<Value> = meta
            .hubs
            .iter()
            .map(|h| json!({"type": "WebSub", "url": h}))
            .collect();
        obj.insert("hubs".into(), Value::Array(hubs));
    }
    // Serialising a Value cannot fail.
    serde_json::to_string_pretty(&feed).unwrap_or_default()
}
