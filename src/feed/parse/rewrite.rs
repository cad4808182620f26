//! Rewrites of well-formed documents feed-rs misreads, into what it reads right: Atom 0.3
//! and Atom text types given as MIME types, inherited `xml:base` pinned where feed-rs looks
//! for it, RSS 1.0 items without `<link>`, and the namespaces of RSS 0.90 and UserLand's
//! RSS 2.0 draft.

use url::Url;

pub(super) const ATOM_03_NS: &str = "http://purl.org/atom/ns#";
const ATOM_10_NS: &str = "http://www.w3.org/2005/Atom";

/// Rewrites an Atom document for feed-rs: `type` attributes given as MIME types (or
/// unknown) become Atom 1.0's `text`/`html`/`xhtml`; with `from_03`, Atom 0.3 also becomes
/// Atom 1.0 (namespace, `issued`/`modified`/`created`, `tagline`, `copyright`, `url` of a
/// person, and `mode="escaped"`). `None` when the document is no Atom or nothing changed.
pub(super) fn rewrite_atom(text: &str, from_03: bool) -> Option<String> {
    use quick_xml::events::attributes::Attribute;
    use quick_xml::events::{BytesEnd, BytesStart, Event};
    use quick_xml::name::QName;
    use std::borrow::Cow;

    fn renamed(name: &str, parent: Option<&str>, from_03: bool) -> Option<String> {
        if !from_03 {
            return None;
        }
        let (prefix, local) = match name.rsplit_once(':') {
            Some((p, l)) => (Some(p), l),
            None => (None, name),
        };
        let new = match (local, parent.map(|p| p.rsplit(':').next().unwrap_or(p))) {
            ("issued", _) => "published",
            ("modified", _) => "updated",
            ("tagline", _) => "subtitle",
            ("copyright", _) => "rights",
            ("url", Some("author" | "contributor")) => "uri",
            _ => return None,
        };
        Some(match prefix {
            Some(p) => format!("{p}:{new}"),
            None => new.to_string(),
        })
    }
    const TEXT_CONSTRUCTS: &[&str] = &[
        "title",
        "subtitle",
        "tagline",
        "summary",
        "content",
        "rights",
        "copyright",
    ];

    let mut reader = quick_xml::Reader::from_str(text);
    let mut writer = quick_xml::Writer::new(Vec::with_capacity(text.len() + 256));
    let mut stack: Vec<String> = Vec::new();
    let mut changed = false;
    let mut saw_feed = false;
    let mut has_issued: Vec<bool> = Vec::new();
    loop {
        let event = reader.read_event().ok()?;
        let (start, empty) = match &event {
            Event::Start(e) => (Some(e), false),
            Event::Empty(e) => (Some(e), true),
            _ => (None, false),
        };
        if let Some(e) = start {
            let name = e.name().into_inner().to_string();
            let local = name.rsplit(':').next().unwrap_or(&name).to_string();
            if stack.is_empty() {
                if local != "feed" {
                    return None;
                }
                saw_feed = true;
            }
            if from_03 && local == "entry" {
                has_issued.push(false);
            }
            if from_03
                && local == "issued"
                && let Some(h) = has_issued.last_mut()
            {
                *h = true;
            }
            // `created` is only a stand-in for `issued`, when an entry has none before it.
            let new_name = if from_03 && local == "created" {
                if has_issued.last().copied().unwrap_or(true) {
                    None
                } else {
                    Some(name.replacen("created", "published", 1))
                }
            } else {
                renamed(&name, stack.last().map(String::as_str), from_03)
            };
            let mut out = BytesStart::new(new_name.clone().unwrap_or_else(|| name.clone()));
            let is_text = TEXT_CONSTRUCTS.contains(&local.as_str());
            let mut mode = None;
            let mut ty = None;
            for attr in e.attributes().with_checks(false).flatten() {
                let key = attr.key.into_inner();
                if key.starts_with("xmlns") && attr.value == ATOM_03_NS && from_03 {
                    out.push_attribute(Attribute {
                        key: QName(key),
                        value: Cow::Borrowed(ATOM_10_NS),
                    });
                    changed = true;
                } else if is_text && key == "mode" {
                    mode = Some(attr.value.to_string());
                    changed = true;
                } else if is_text && key == "type" {
                    ty = Some(attr.value.to_string());
                } else {
                    out.push_attribute(attr);
                }
            }
            if is_text {
                let mapped = match (
                    ty.as_deref().map(str::to_ascii_lowercase).as_deref(),
                    mode.as_deref(),
                ) {
                    (_, Some("escaped")) => Some("html"),
                    (Some("text" | "html" | "xhtml"), _) => None,
                    (Some("text/html"), _) => Some("html"),
                    (None, None) => None,
                    (Some("text/plain"), _) | (None, _) => Some("text"),
                    (Some(t), _) if t.contains("xml") => Some("xhtml"),
                    _ => Some("text"),
                };
                match (mapped, ty.as_deref()) {
                    (Some(m), _) => {
                        changed |= ty.as_deref() != Some(m);
                        out.push_attribute(("type", m));
                    }
                    (None, Some(t)) => out.push_attribute(Attribute {
                        key: QName("type"),
                        value: Cow::Owned(t.to_string()),
                    }),
                    (None, None) => {}
                }
            }
            changed |= new_name.is_some();
            // A dropped `created` is skipped with its contents.
            if from_03 && local == "created" && new_name.is_none() {
                changed = true;
                if !empty {
                    reader.read_to_end(e.name()).ok()?;
                }
                continue;
            }
            if empty {
                writer.write_event(Event::Empty(out)).ok()?;
            } else {
                stack.push(new_name.unwrap_or(name));
                writer.write_event(Event::Start(out)).ok()?;
            }
            continue;
        }
        match event {
            Event::End(_) => {
                let name = stack.pop()?;
                if from_03 && name.rsplit(':').next() == Some("entry") {
                    has_issued.pop();
                }
                writer.write_event(Event::End(BytesEnd::new(name))).ok()?;
            }
            Event::Eof => break,
            other => writer.write_event(other).ok()?,
        }
    }
    if !saw_feed || !changed {
        return None;
    }
    String::from_utf8(writer.into_inner()).ok()
}

/// Writes on every Atom `<content>` the absolute xml:base in effect there (inherited and
/// resolved), when one is in effect. `None` when nothing changed (or not Atom).
pub(super) fn pin_content_bases(text: &str, document: &Url) -> Option<String> {
    use quick_xml::events::attributes::Attribute;
    use quick_xml::events::{BytesStart, Event};
    use quick_xml::name::QName;
    use std::borrow::Cow;

    let mut reader = quick_xml::Reader::from_str(text);
    let mut writer = quick_xml::Writer::new(Vec::with_capacity(text.len() + 256)); // The base in effect for each open element, whether an xml:base set it, and whether
    // the element is inside a summary or content (inline XHTML).
    let mut bases: Vec<(Url, bool, bool)> = Vec::new();
    let mut changed = false;
    loop {
        let event = reader.read_event().ok()?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let name = e.name().into_inner().to_string();
                if bases.is_empty() && name.rsplit(':').next() != Some("feed") {
                    return None;
                }
                let (parent, inherited, in_text) =
                    bases
                        .last()
                        .cloned()
                        .unwrap_or((document.clone(), false, false));
                let own = e
                    .attributes()
                    .with_checks(false)
                    .flatten()
                    .find(|a| a.key.into_inner() == "xml:base")
                    .and_then(|a| {
                        let raw = html_escape::decode_html_entities(&a.value).into_owned();
                        parent.join(raw.trim()).ok()
                    });
                let (here, set) = match own {
                    Some(u) => (u, true),
                    None => (parent, inherited),
                };
                let local = name.rsplit(':').next().unwrap_or(&name);
                let is_empty = matches!(event, Event::Empty(_));
                // feed-rs keeps no base for a summary: its HTML is resolved here, against the
                // base in effect, and written back (escaped HTML, as `type="html"` says).
                let html_summary = local == "summary"
                    && set
                    && !is_empty
                    && e.attributes().with_checks(false).flatten().any(|a| {
                        a.key.into_inner() == "type" && a.value.eq_ignore_ascii_case("html")
                    });
                if html_summary {
                    writer.write_event(Event::Start(e.clone())).ok()?;
                    let mut html = String::new();
                    loop {
                        match reader.read_event().ok()? {
                            Event::Text(t) => html.push_str(&t.into_inner()),
                            Event::GeneralRef(r) => {
                                let entity = format!("&{};", r.into_inner());
                                html.push_str(&html_escape::decode_html_entities(&entity));
                            }
                            Event::CData(c) => html.push_str(&c.into_inner()),
                            // Markup where escaped HTML was promised: leave it all to the
                            // parser, unpinned.
                            Event::Start(_) | Event::Empty(_) => return None,
                            Event::End(end) => {
                                let mut builder = ammonia::Builder::default();
                                builder.url_relative(ammonia::UrlRelative::RewriteWithBase(
                                    here.clone(),
                                ));
                                let cleaned = builder.clean(&html).to_string();
                                writer
                                    .write_event(Event::Text(quick_xml::events::BytesText::new(
                                        &cleaned,
                                    )))
                                    .ok()?;
                                writer.write_event(Event::End(end)).ok()?;
                                break;
                            }
                            Event::Eof => return None,
                            _ => {}
                        }
                    }
                    changed = true;
                    continue;
                } // Inline XHTML in a summary or content: its links resolved here.
                if in_text && set {
                    let mut out = BytesStart::new(name.clone());
                    for a in e.attributes().with_checks(false).flatten() {
                        let key = a.key.into_inner();
                        if matches!(key, "href" | "src") {
                            let raw = html_escape::decode_html_entities(&a.value).into_owned();
                            if let Ok(abs) = here.join(raw.trim()) {
                                let escaped =
                                    html_escape::encode_double_quoted_attribute(abs.as_str())
                                        .into_owned();
                                out.push_attribute(Attribute {
                                    key: QName(key),
                                    value: Cow::Owned(escaped),
                                });
                                changed = true;
                                continue;
                            }
                        }
                        out.push_attribute(a);
                    }
                    if is_empty {
                        writer.write_event(Event::Empty(out)).ok()?;
                    } else {
                        writer.write_event(Event::Start(out)).ok()?;
                        bases.push((here, set, true));
                    }
                    continue;
                }
                if local == "content" && set {
                    let mut out = BytesStart::new(name.clone());
                    for a in e.attributes().with_checks(false).flatten() {
                        if a.key.into_inner() != "xml:base" {
                            out.push_attribute(a);
                        }
                    }
                    let escaped =
                        html_escape::encode_double_quoted_attribute(here.as_str()).into_owned();
                    out.push_attribute(Attribute {
                        key: QName("xml:base"),
                        value: Cow::Owned(escaped),
                    });
                    changed = true;
                    if is_empty {
                        writer.write_event(Event::Empty(out)).ok()?;
                    } else {
                        writer.write_event(Event::Start(out)).ok()?;
                    }
                } else {
                    writer.write_event(event.clone()).ok()?;
                }
                if !is_empty {
                    let text_construct = matches!(local, "summary" | "content");
                    bases.push((here, set, in_text || text_construct));
                }
            }
            Event::End(_) => {
                bases.pop();
                writer.write_event(event).ok()?;
            }
            Event::Eof => break,
            other => writer.write_event(other).ok()?,
        }
    }
    if !changed {
        return None;
    }
    String::from_utf8(writer.into_inner()).ok()
}
pub(super) const USERLAND_NS: &str = "http://backend.userland.com/rss2";

/// The ways a document declares [`USERLAND_NS`] as its default namespace.
pub(super) fn userland_ns_declarations() -> [String; 2] {
    [
        format!(" xmlns=\"{USERLAND_NS}\""),
        format!(" xmlns='{USERLAND_NS}'"),
    ]
}

/// The document without its first declaration of [`USERLAND_NS`] (of each quoting): RSS
/// 2.0 as feed-rs knows it. `None` when it has none.
pub(super) fn strip_userland_ns(text: &str) -> Option<String> {
    let mut plain = text.to_string();
    for declaration in userland_ns_declarations() {
        plain = plain.replacen(&declaration, "", 1);
    }
    (plain != text).then_some(plain)
}

/// Gives each RSS 1.0 `<item rdf:about="...">` that has no `<link>` one, from its
/// `rdf:about`. `None` when no item needed it.
pub(super) fn link_rdf_items(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len() + 256);
    let mut rest = text;
    let mut changed = false;
    while let Some(i) = rest.find("<item") {
        let after = &rest[i + 5..];
        if !after.starts_with([' ', '>', '\t', '\r', '\n']) {
            out.push_str(&rest[..i + 5]);
            rest = after;
            continue;
        }
        let tag_end = i + rest[i..].find('>')? + 1;
        let block_end = rest[tag_end..]
            .find("</item>")
            .map_or(rest.len(), |e| tag_end + e);
        let tag = &rest[i..tag_end];
        out.push_str(&rest[..tag_end]);
        let block = &rest[tag_end..block_end];
        if !block.contains("<link")
            && let Some(at) = tag.find("rdf:about=")
            && let Some(q) = tag[at + 10..]
                .chars()
                .next()
                .filter(|c| matches!(c, '"' | '\''))
            && let Some(len) = tag[at + 11..].find(q)
        {
            out.push_str("<link>");
            out.push_str(&tag[at + 11..at + 11 + len]);
            out.push_str("</link>");
            changed = true;
        }
        rest = &rest[tag_end..];
    }
    out.push_str(rest);
    changed.then_some(out)
}

pub(super) const RSS_090_NS: &str = "http://my.netscape.com/rdf/simple/0.9/";
pub(super) const RSS_10_NS: &str = "http://purl.org/rss/1.0/";
