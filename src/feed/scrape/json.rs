//! A JSON document's entries, by JSONPath (serde_json_path, RFC 9535). No I/O.
//!
//! `items` is a path from the document to the items: `$.data.posts[*]` (each match an
//! item), or `$.data.posts` (an array: its elements are the items). Each field is a path
//! from one item; a bare name (`title`, `author.name`) means `$.title`, `$.author.name`.
//! A field's value is read as text: a string as it is, a number as its decimal text (a
//! date in Unix seconds or milliseconds), an object by its `rendered` (WordPress), `name`,
//! `url` or `href`, an array by its first element.

use chrono::{DateTime, Utc};
use serde_json::Value;
use serde_json_path::JsonPath;
use url::Url;

use super::{Field, Item, Misses, ScrapeError, Selectors};
use crate::feed::parse::Parsed;

/// Checks a JSONPath when the config is read: `Err` says what is wrong. Besides parsing,
/// the work a path may cost is bounded: `items` may descend (`..`) once, a field (read in
/// every item) not at all, since every further descent multiplies the nodes it visits by
/// the document's depth (`$..*..*..*` on a 400 KB document takes gigabytes).
pub fn check_path(path: &str, items: bool) -> Result<(), String> {
    JsonPath::parse(path).map_err(|e| format!("is not a valid JSONPath ({e})"))?;
    let descents = descents(path);
    match (items, descents) {
        (true, 0 | 1) | (false, 0) => Ok(()),
        (true, _) => Err(
            "descends (`..`) more than once: a path to the items may descend once (e.g. `$..posts[*]`)".into(),
        ),
        (false, _) => Err(
            "descends (`..`): a field's path is read in every item and may not descend; name the way down (e.g. `$.author.name`)".into(),
        ),
    }
}

/// How many descendant segments (`..`) a path has, outside quoted names.
fn descents(path: &str) -> usize {
    let mut quote = None;
    let mut count = 0;
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(_), '\\') => {
                chars.next();
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '.') if chars.peek() == Some(&'.') => {
                chars.next();
                count += 1;
            }
            _ => {}
        }
    }
    count
}

/// For `tributary add` on a JSON API: `items` for its largest array of objects (`$.hits[*]`,
/// `$.data.children[*]`, `$[*]`), looked for through objects up to 8 levels down.
pub fn suggest_items(doc: &Value) -> Option<String> {
    fn walk(v: &Value, path: &str, depth: usize, best: &mut Option<(usize, String)>) {
        match v {
            Value::Array(a) => {
                let objects = a.iter().filter(|e| e.is_object()).count();
                if objects > 0 && best.as_ref().is_none_or(|(n, _)| objects > *n) {
                    *best = Some((objects, format!("{path}[*]")));
                }
            }
            Value::Object(o) if depth < 8 => {
                for (key, value) in o.iter().take(1_000) {
                    let simple = key
                        .chars()
                        .next()
                        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                    let next = if simple {
                        format!("{path}.{key}")
                    } else {
                        format!(
                            "{path}['{}']",
                            key.replace('\\', "\\\\").replace('\'', "\\'")
                        )
                    };
                    walk(value, &next, depth + 1, best);
                }
            }
            _ => {}
        }
    }
    let mut best = None;
    walk(doc, "$", 0, &mut best);
    best.map(|(_, path)| path)
}

/// The keys each field is looked for under when it has no path of its own, in order.
fn default_keys(field: Field) -> &'static [&'static str] {
    match field {
        Field::Title => &["title", "name", "headline", "subject"],
        Field::Link => &["url", "link", "permalink", "href", "html_url", "web_url"],
        Field::Date => &[
            "date_published",
            "published_at",
            "publishedAt",
            "published",
            "pubDate",
            "date",
            "created_at",
            "createdAt",
            "created",
            "updated_at",
            "time",
            "timestamp",
        ],
        Field::Summary => &["summary", "description", "excerpt", "abstract"],
        Field::Content => &[
            "content_html",
            "content",
            "body_html",
            "body",
            "html",
            "text",
        ],
        Field::Author => &["author", "authors", "by", "creator", "user", "username"],
        Field::Image => &[
            "image",
            "image_url",
            "thumbnail",
            "thumbnail_url",
            "banner_image",
        ],
    }
}

/// How deep an object or array is followed to find a field's text.
const MAX_VALUE_DEPTH: usize = 4;

pub(super) fn read(
    s: &Selectors,
    bytes: &[u8],
    content_type: Option<&str>,
    base: &Url,
    max_entries: usize,
    now: DateTime<Utc>,
) -> Result<Parsed, ScrapeError> {
    let items_path = parse(&s.items, "items")?;
    let mut paths: [Option<JsonPath>; 7] = Default::default();
    // A path to a field named `..._html` (`$.summary_html`, `$['body_html']`) reads HTML.
    let mut named_html = [false; 7];
    for (field, pick) in s.fields() {
        if let Some(p) = pick {
            paths[field as usize] = Some(parse(&p.path, field.name())?);
            named_html[field as usize] =
                p.path.trim_end_matches(['\'', '"', ']']).ends_with("_html");
        }
    }
    // JSON is UTF-8 (RFC 8259), but servers send a BOM, UTF-16, or a legacy charset they
    // declare: decoded by a BOM, the HTTP charset, else as UTF-8 (or a guess).
    let decoded = crate::feed::charset::decode_json(bytes, content_type);
    let mut warnings: Vec<String> = decoded.warning.into_iter().collect();
    let doc: Value = serde_json::from_str(&decoded.text).map_err(ScrapeError::NotJson)?;
    drop(decoded.text);
    let found = items_path.query(&doc).all();
    // `$.posts` names the array; `$.posts[*]` its elements: both mean the elements.
    let items: Vec<&Value> = match found.as_slice() {
        [Value::Array(elements)] => elements.iter().collect(),
        _ => found,
    };
    let matched = items.len();
    let items: Vec<&Value> = items.into_iter().filter(|v| v.is_object()).collect();
    if items.is_empty() && matched > 0 {
        return Err(ScrapeError::NotObjects {
            path: s.items.clone(),
            matched,
        });
    }
    if items.is_empty() {
        return Err(ScrapeError::NoJsonItems {
            path: s.items.clone(),
        });
    }
    if items.len() > max_entries {
        warnings.push(format!(
            "the document has {} items: only the first {max_entries} were read",
            items.len()
        ));
    }
    let mut misses = Misses::default();
    let mut entries = Vec::new();
    let read_count = items.len().min(max_entries);
    for value in items.into_iter().take(max_entries) {
        // Each field's text, and whether the API gave it as HTML.
        let mut read = |field: Field| -> Option<(String, bool)> {
            let got = match &paths[field as usize] {
                Some(p) => p.query(value).first().and_then(|v| {
                    let named_html = named_html[field as usize];
                    text_of(v, field, 0).map(|(t, html)| (t, html || named_html))
                }),
                None => default_keys(field).iter().find_map(|k| {
                    value
                        .get(*k)
                        .and_then(|v| text_of(v, field, 0))
                        .map(|(t, html)| (t, html || k.ends_with("_html")))
                }),
            };
            if got.is_none() && paths[field as usize].is_some() {
                misses.note(field);
            }
            got
        };
        let text = |got: Option<(String, bool)>| got.map(|(t, _)| t);
        let date = text(read(Field::Date));
        let (title, title_html) = split(read(Field::Title));
        let (summary, summary_html) = split(read(Field::Summary));
        let item = Item {
            title,
            title_html,
            link: text(read(Field::Link)).filter(|l| looks_like_url(l)),
            date: date.as_deref().and_then(|d| super::date(d, s, now)),
            summary,
            summary_html,
            content: text(read(Field::Content)),
            author: text(read(Field::Author)),
            image: text(read(Field::Image)).filter(|l| looks_like_url(l)),
        };
        if item.date.is_none() && date.is_some() && paths[Field::Date as usize].is_some() {
            misses.note(Field::Date);
        }
        if item.link.is_some()
            || item.title.is_some()
            || item.content.is_some()
            || item.summary.is_some()
        {
            entries.push(super::entry(item, base, base));
        }
    }
    if entries.is_empty() {
        return Err(ScrapeError::NoEntries {
            what: "path",
            selector: s.items.clone(),
            matched: read_count,
        });
    }
    warnings.extend(misses.warnings(s, read_count, "path"));
    Ok(Parsed {
        feed: super::feed(None, base, entries),
        warnings,
    })
}

fn parse(path: &str, field: &'static str) -> Result<JsonPath, ScrapeError> {
    JsonPath::parse(path).map_err(|e| ScrapeError::BadPath {
        field,
        path: path.to_string(),
        error: e.to_string(),
    })
}

/// A title or summary as the item gives it: HTML as it is (normalise strips its tags),
/// plain text with its character references decoded (APIs such as Reddit's escape `&` in
/// plain text) and its `<` kept (`Vec<T>` is a title, not a tag).
fn split(got: Option<(String, bool)>) -> (Option<String>, bool) {
    match got {
        Some((t, true)) => (Some(t), true),
        Some((t, false)) => (
            Some(html_escape::decode_html_entities(&t).into_owned()),
            false,
        ),
        None => (None, false),
    }
}

/// A value as a field's text (module docs), and whether it is HTML (read from an object's
/// `rendered` or `html`); `None` for null, booleans, empty text.
fn text_of(v: &Value, field: Field, depth: usize) -> Option<(String, bool)> {
    if depth > MAX_VALUE_DEPTH {
        return None;
    }
    match v {
        Value::String(s) => {
            let s = s.trim();
            if s.is_empty() {
                return None;
            }
            // Content keeps its line structure; everything else is one line.
            let text = if field == Field::Content {
                Some(s.chars().take(super::MAX_FIELD_CHARS).collect())
            } else {
                super::folded(s)
            };
            text.map(|t| (t, false))
        }
        Value::Number(n) => Some((n.to_string(), false)),
        Value::Array(a) => a.iter().find_map(|e| text_of(e, field, depth + 1)),
        Value::Object(o) => {
            let keys: &[&str] = match field {
                Field::Author => &["name", "display_name", "username", "login", "screen_name"],
                Field::Link | Field::Image => &["url", "href", "src"],
                _ => &["rendered", "html", "text", "value"],
            };
            keys.iter().find_map(|k| {
                o.get(*k)
                    .and_then(|v| text_of(v, field, depth + 1))
                    .map(|(t, html)| (t, html || matches!(*k, "rendered" | "html")))
            })
        }
        Value::Null | Value::Bool(_) => None,
    }
}

/// An absolute URL or an absolute path: what an API means as a link (`"self"`, `"default"`
/// and the like are not).
fn looks_like_url(s: &str) -> bool {
    s.starts_with('/') || Url::parse(s).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::feed::scrape::{Pick, SourceKind, read as read_kind};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0)
            .single()
            .expect("date")
    }

    fn url() -> Url {
        Url::parse("https://api.example/v1/posts?page=1").expect("url")
    }

    /// (title, link, date, author, content) per entry, and the warnings.
    fn got(s: Selectors, doc: &str) -> (Vec<[Option<String>; 5]>, Vec<String>) {
        let parsed = read_kind(
            &SourceKind::Json(s),
            doc.as_bytes(),
            None,
            &url(),
            100,
            now(),
        )
        .expect("entries");
        let entries = parsed
            .feed
            .entries
            .iter()
            .map(|e| {
                [
                    e.title.as_ref().map(|t| t.content.clone()),
                    e.links.first().map(|l| l.href.clone()),
                    e.published.map(|d| d.to_rfc3339()),
                    e.authors.first().and_then(|a| a.name.clone()),
                    e.content.as_ref().and_then(|c| c.body.clone()),
                ]
            })
            .collect();
        (entries, parsed.warnings)
    }

    /// WordPress's REST API: a bare array, `{"rendered": ...}` objects, dates without a zone.
    #[test]
    fn a_wordpress_api_by_defaults() {
        let doc = r#"[{"id": 7, "date_gmt": "2026-11-20T08:00:00", "link": "https://blog.example/?p=7",
            "title": {"rendered": "Caf&#233; news"}, "content": {"rendered": "<p>Body</p>"},
            "excerpt": {"rendered": "<p>Short</p>"}}, 3, "not an item"]"#;
        let mut s = Selectors::items("$[*]");
        s.date = Some(Pick::json("date_gmt"));
        let (entries, warnings) = got(s, doc);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            entries,
            [[
                Some("Caf&#233; news".into()),
                Some("https://blog.example/?p=7".into()),
                Some("2026-11-20T08:00:00+00:00".into()),
                None,
                Some("<p>Body</p>".into()),
            ]]
        );
    }

    /// A Reddit-like listing: items one level down, Unix seconds, a relative permalink, an
    /// array path without `[*]`, and a field that misses in one item.
    #[test]
    fn nested_items_numbers_and_relative_links() {
        let doc = r#"{"data": {"children": [
            {"data": {"title": "One", "permalink": "/r/x/1", "created_utc": 1764320400, "author": {"name": "ann"}}},
            {"data": {"title": "Two", "permalink": "/r/x/2"}}]}}"#;
        let mut s = Selectors::items("$.data.children");
        s.title = Some(Pick::json("data.title"));
        s.link = Some(Pick::json("data.permalink"));
        s.date = Some(Pick::json("$.data.created_utc"));
        s.author = Some(Pick::json("data.author"));
        let (entries, warnings) = got(s, doc);
        assert_eq!(entries[0][1].as_deref(), Some("https://api.example/r/x/1"));
        assert_eq!(entries[0][2].as_deref(), Some("2025-11-28T09:00:00+00:00"));
        assert_eq!(entries[0][3].as_deref(), Some("ann"));
        assert_eq!(entries[1][0].as_deref(), Some("Two"));
        assert_eq!(
            warnings,
            [
                "path `date` ($.data.created_utc) matched nothing in 1 of 2 items",
                "path `author` ($.data.author) matched nothing in 1 of 2 items"
            ]
        );
    }

    #[test]
    fn no_items_bad_json_and_deep_nesting_are_errors() {
        let read = |items: &str, doc: &str| {
            read_kind(
                &SourceKind::Json(Selectors::items(items)),
                doc.as_bytes(),
                None,
                &url(),
                100,
                now(),
            )
            .map(|_| ())
            .expect_err("an error")
            .to_string()
        };
        assert_eq!(
            read("$.posts[*]", r#"{"items": []}"#),
            "path `items` ($.posts[*]) matched nothing in the document"
        );
        assert!(read("$[*]", "<html>").starts_with("not JSON: "));
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let e = read("$[*]", &deep);
        assert!(e.contains("recursion limit"), "{e}");
    }

    /// Most APIs give titles as plain text: `<T>` is part of the title, `&amp;` (Reddit
    /// escapes `&`) is an ampersand; only `{"rendered": ...}` and `*_html` fields are HTML.
    #[test]
    fn plain_titles_stay_plain() {
        let doc = r#"{"hits": [
            {"title": "Why is Vec<T> slower than Box<[T]>?", "url": "https://a.example/1", "story_text": "a<b"},
            {"title": "AT&amp;T and a<b && c>d", "url": "https://a.example/2", "summary_html": "<p>x</p>"}]}"#;
        let parsed = read_kind(
            &SourceKind::Json(Selectors::items("$.hits[*]")),
            doc.as_bytes(),
            None,
            &url(),
            100,
            now(),
        )
        .expect("entries");
        // As published: through normalise, which reads a plain title with a `<` as HTML.
        let entries = crate::feed::normalise::normalise(parsed.feed, "api", &url(), now()).entries;
        let titles: Vec<&str> = entries.iter().map(|e| e.title.as_str()).collect();
        assert_eq!(
            titles,
            ["Why is Vec<T> slower than Box<[T]>?", "AT&T and a<b && c>d"]
        );
    }

    #[test]
    fn the_largest_array_of_objects_is_suggested() {
        let doc: Value = serde_json::from_str(
            r#"{"meta": {"tags": [{"a": 1}]}, "data": {"children": [{"x": 1}, {"x": 2}]}, "n": [1, 2, 3]}"#,
        )
        .expect("json");
        assert_eq!(suggest_items(&doc).as_deref(), Some("$.data.children[*]"));
        let doc: Value = serde_json::from_str(r#"[{"a": 1}]"#).expect("json");
        assert_eq!(suggest_items(&doc).as_deref(), Some("$[*]"));
        let doc: Value = serde_json::from_str(r#"{"odd key": [{"a": 1}]}"#).expect("json");
        let path = suggest_items(&doc).expect("a path");
        assert_eq!(path, "$['odd key'][*]");
        assert!(check_path(&path, true).is_ok());
        assert_eq!(suggest_items(&serde_json::json!({"a": [1, 2]})), None);
    }

    /// JSON sent as UTF-16 with a BOM, or in a charset the HTTP header declares, is read;
    /// `items` matching only strings says so.
    #[test]
    fn charsets_and_items_that_are_not_objects() {
        let doc = r#"{"posts": [{"title": "Café “q”", "url": "https://a.example/1"}]}"#;
        let mut utf16 = vec![0xFF, 0xFE];
        utf16.extend(doc.encode_utf16().flat_map(u16::to_le_bytes));
        let latin: Vec<u8> = r#"{"posts": [{"title": "Caf"#
            .bytes()
            .chain([0xE9])
            .chain(r#"", "url": "https://a.example/1"}]}"#.bytes())
            .collect();
        for (bytes, ct) in [
            (utf16, None),
            (latin, Some("application/json; charset=iso-8859-1")),
        ] {
            let parsed = read_kind(
                &SourceKind::Json(Selectors::items("$.posts[*]")),
                &bytes,
                ct,
                &url(),
                100,
                now(),
            )
            .expect("entries");
            let title = &parsed.feed.entries[0]
                .title
                .as_ref()
                .expect("title")
                .content;
            assert!(title.starts_with("Caf\u{e9}"), "{title}");
        }
        let err = read_kind(
            &SourceKind::Json(Selectors::items("$.tags[*]")),
            br#"{"tags": ["a", "b"]}"#,
            None,
            &url(),
            100,
            now(),
        )
        .expect_err("strings");
        assert!(
            err.to_string()
                .starts_with("path `items` ($.tags[*]) matched 2 values, but none is an object"),
            "{err}"
        );
    }

    #[test]
    fn paths_are_checked_with_a_reason() {
        assert!(check_path("$.data.children[*].data", true).is_ok());
        let e = check_path("$.posts[*", true).expect_err("bad");
        assert!(e.starts_with("is not a valid JSONPath"), "{e}");
        assert!(check_path("$..posts[*]", true).is_ok());
        assert!(check_path("$['a..b']", false).is_ok());
        let e = check_path("$..*..*", true).expect_err("two descents");
        assert!(e.contains("more than once"), "{e}");
        let e = check_path("$..name", false).expect_err("a field descends");
        assert!(e.contains("may not descend"), "{e}");
    }
}
