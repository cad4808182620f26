//! An HTML page's entries, by CSS selectors (dom_query, whose matcher is Servo's `selectors`
//! crate, as in Firefox). No I/O.
//!
//! The page is decoded as a browser does ([`crate::feed::charset::decode_html`]) and its
//! nesting bounded ([`crate::feed::text::bound_html`]) before html5ever parses it. `items`
//! is matched once over the whole page; each field is then the first match inside its
//! item, found by a walk that counts every element it looks at against [`MAX_VISITS`].

use chrono::{DateTime, Utc};
use std::collections::HashSet;

use dom_query::{Document, Matcher, NodeId, NodeRef};
use url::Url;

use super::{Field, Item, MAX_FIELD_CHARS, MAX_VISITS, Misses, Pick, ScrapeError, Selectors};
use crate::feed::parse::Parsed;

/// Checks a CSS selector when the config is read: `Err` says where it goes wrong.
pub fn check_selector(selector: &str) -> Result<(), String> {
    if selector.trim().is_empty() {
        return Err("is empty".into());
    }
    if selector.trim_end().ends_with('@') {
        return Err("ends with `@`: name the attribute to read, e.g. `a@href`".into());
    }
    Matcher::new(selector)
        .map(|_| ())
        .map_err(|e| format!("is not a valid CSS selector ({})", css_problem(&e.kind)))
}

/// The defaults, for fields with no selector of their own.
struct Defaults {
    heading: Matcher,
    link: Matcher,
    time: Matcher,
    paragraph: Matcher,
    author: Matcher,
    image: Matcher,
}

impl Defaults {
    fn new() -> Option<Defaults> {
        Some(Defaults {
            heading: Matcher::new("h1, h2, h3, h4, h5, h6").ok()?,
            link: Matcher::new("a[href]").ok()?,
            time: Matcher::new("time").ok()?,
            paragraph: Matcher::new("p").ok()?,
            author: Matcher::new("[rel~=author], [itemprop~=author]").ok()?,
            image: Matcher::new("img").ok()?,
        })
    }
}

/// Text the `content` of one page's entries may copy, in all (bytes).
const MAX_CONTENT_BYTES: usize = 16 * 1024 * 1024;

/// Elements after an item looked at for its fields, at most (a flat page's date and
/// paragraph after its heading).
const MAX_TRAILING: usize = 20;

/// An item's element and the elements after it, up to the next item (see [`Reader::span`]).
struct Span<'a> {
    node: NodeRef<'a>,
    trailing: Vec<NodeRef<'a>>,
}

impl Span<'_> {
    /// Whether `node` is one of the elements after the item.
    fn holds(&self, node: &NodeRef) -> bool {
        self.trailing.iter().any(|t| t.id == node.id)
    }
}

/// A configured field: its matcher (`None`: the item itself) and attribute.
struct Chosen {
    matcher: Option<Matcher>,
    attribute: Option<String>,
}

/// Reads one page's items, counting the elements it looks at.
struct Reader {
    defaults: Defaults,
    fields: [Option<Chosen>; 7],
    visits: std::cell::Cell<usize>,
    /// One cache for every match of the read: `:nth-child()` indexes and `:has()` results
    /// are computed once per element, not once per item that looks at it.
    caches: std::cell::RefCell<selectors::context::SelectorCaches>,
    /// Text copied into `content` so far, in bytes.
    content_bytes: std::cell::Cell<usize>,
}

pub(super) fn read(
    s: &Selectors,
    bytes: &[u8],
    content_type: Option<&str>,
    base: &Url,
    max_entries: usize,
    now: DateTime<Utc>,
) -> Result<Parsed, ScrapeError> {
    if let Some(ct) = content_type
        && !is_html_type(ct)
        && !looks_like_markup(bytes)
    {
        return Err(ScrapeError::NotHtml(ct.to_string()));
    }
    let items_matcher = Matcher::new(&s.items).map_err(|_| ScrapeError::BadSelector {
        field: "items",
        selector: s.items.clone(),
    })?;
    let mut fields: [Option<Chosen>; 7] = Default::default();
    for (field, pick) in s.fields() {
        if let Some(pick) = pick {
            fields[field as usize] = Some(chosen(field, pick)?);
        }
    }
    let defaults = Defaults::new().ok_or(ScrapeError::BadSelector {
        field: "items",
        selector: "(a default)".into(),
    })?;

    let decoded = crate::feed::charset::decode_html(bytes, content_type);
    if decoded.encoding == encoding_rs::REPLACEMENT.name() {
        return Err(ScrapeError::Charset(decoded.warning.unwrap_or_default()));
    }
    let mut warnings: Vec<String> = decoded.warning.into_iter().collect();
    let html = crate::feed::text::bound_html(&decoded.text);
    let doc = Document::from(&*html);
    drop(html);

    let page = base;
    let base = doc
        .base_uri()
        .and_then(|b| base.join(b.trim()).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .unwrap_or_else(|| base.clone());
    let page_title = doc
        .select_single("title")
        .nodes()
        .first()
        .and_then(|t| super::folded(&t.text()));

    // One walk over the page with one cache, so `:nth-child()` and `:has()` cost a constant
    // per element rather than a scan of its siblings or subtree.
    let mut caches = selectors::context::SelectorCaches::default();
    let nodes: Vec<NodeRef> = doc
        .root()
        .descendants_it()
        .filter(|n| n.is_element() && items_matcher.match_element_with_caches(n, &mut caches))
        .collect();
    drop(caches);
    if nodes.is_empty() {
        return Err(ScrapeError::NoItems {
            selector: s.items.clone(),
        });
    }
    let reader = Reader {
        defaults,
        fields,
        visits: std::cell::Cell::new(0),
        caches: std::cell::RefCell::default(),
        content_bytes: std::cell::Cell::new(0),
    };
    let item_ids: HashSet<NodeId> = nodes.iter().map(|n| n.id).collect();
    let mut misses = Misses::default();
    let mut entries = Vec::new();
    let mut read = 0;
    for (i, node) in nodes.iter().take(max_entries).enumerate() {
        let span = reader.span(*node, nodes.get(i + 1), &item_ids);
        let noted = misses.counts;
        let item = reader.item(&span, s, &mut misses, now);
        if reader.visits.get() >= MAX_VISITS {
            // The budget ran out inside this item: what was found of it is partial (a link
            // without its title or date), so it is no entry, and its misses do not count.
            misses.counts = noted;
            warnings.push(format!(
                "the page is too large to read whole: only its first {read} of {} items were read",
                nodes.len()
            ));
            break;
        }
        read += 1;
        // An element with nothing in it (a spacer row, an ad slot) is no entry.
        if item.link.is_some()
            || item.title.is_some()
            || item.content.is_some()
            || item.summary.is_some()
        {
            entries.push(super::entry(item, &base, page));
        }
    }
    if nodes.len() > max_entries {
        warnings.push(format!(
            "the page has {} items: only the first {max_entries} were read",
            nodes.len()
        ));
    }
    if entries.is_empty() && read > 0 && reader.visits.get() < MAX_VISITS {
        return Err(ScrapeError::NoEntries {
            what: "selector",
            selector: s.items.clone(),
            matched: nodes.len(),
        });
    }
    warnings.extend(misses.warnings(s, read, "selector"));
    Ok(Parsed {
        feed: super::feed(page_title, page, entries),
        warnings,
    })
}

/// A configured field's selector compiled.
fn chosen(field: Field, pick: &Pick) -> Result<Chosen, ScrapeError> {
    let matcher = if pick.path.is_empty() {
        None
    } else {
        Some(
            Matcher::new(&pick.path).map_err(|_| ScrapeError::BadSelector {
                field: field.name(),
                selector: pick.path.clone(),
            })?,
        )
    };
    Ok(Chosen {
        matcher,
        attribute: pick.attribute.clone(),
    })
}

impl Reader {
    /// The item `node` and the elements after it up to `next` (the next item): on a flat
    /// page an entry is a heading followed by its date and text, not one element.
    fn span<'a>(
        &self,
        node: NodeRef<'a>,
        next: Option<&NodeRef<'a>>,
        items: &HashSet<NodeId>,
    ) -> Span<'a> {
        let mut trailing = Vec::new();
        // Only an item that cannot hold a whole entry reaches past itself: a heading (a
        // flat page), a term (`dt`), a table row (an entry over two rows), an element with
        // no elements in it (a bare link). An `article` or `li` is the whole entry.
        let tag = node
            .node_name()
            .map(|n| n.to_ascii_lowercase())
            .unwrap_or_default();
        let level = heading_level(&tag);
        let reaches = level.is_some()
            || matches!(tag.as_str(), "dt" | "tr")
            || node.first_element_child().is_none();
        let mut at = node.next_element_sibling().filter(|_| reaches);
        while let Some(sibling) = at {
            let sibling_tag = sibling
                .node_name()
                .map(|n| n.to_ascii_lowercase())
                .unwrap_or_default();
            // The next entry, selected or not: the next item, one holding it, a heading as
            // high as the item's, or an element like the item (same tag and class).
            if trailing.len() >= MAX_TRAILING
                || items.contains(&sibling.id)
                || next.is_some_and(|n| is_inside(n, &sibling))
                || heading_level(&sibling_tag).is_some_and(|l| level.is_none_or(|own| l <= own))
                || (sibling_tag == tag && sibling.attr("class") == node.attr("class"))
                || (level.is_some() && self.find(&sibling, &self.defaults.heading).is_some())
            {
                break;
            }
            self.visits.set(self.visits.get() + 1);
            at = sibling.next_element_sibling();
            trailing.push(sibling);
        }
        Span { node, trailing }
    }

    /// One item's fields: each configured one by its selector (a miss noted), the others by
    /// their defaults.
    fn item(&self, span: &Span, s: &Selectors, misses: &mut Misses, now: DateTime<Utc>) -> Item {
        let d = &self.defaults;
        let node = &span.node;
        // Title and link by default both come from the first heading, when there is one
        // (the item itself, when the items are headings).
        let heading = || {
            if self.matches(node, &d.heading) {
                Some(*node)
            } else {
                self.find_in(span, &d.heading)
            }
        };
        let link = match self.configured(Field::Link, span) {
            Some(found) => found.and_then(|f| self.read(&f, Field::Link)),
            None => self
                .default_link(span, heading().as_ref())
                .and_then(|a| a.attr("href").and_then(|h| super::folded(&h))),
        };
        let title = match self.configured(Field::Title, span) {
            Some(found) => found.and_then(|f| self.read(&f, Field::Title)),
            None => heading()
                .and_then(|h| self.text(&h))
                .or_else(|| self.default_link(span, None).and_then(|a| self.text(&a))),
        };
        let date = match self.configured(Field::Date, span) {
            Some(found) => found.and_then(|f| self.read(&f, Field::Date)),
            None => self
                .find_in(span, &d.time)
                .and_then(|t| self.read(&t, Field::Date)),
        };
        let summary = match self.configured(Field::Summary, span) {
            Some(found) => found.and_then(|f| self.read(&f, Field::Summary)),
            None => self.first_text_in(span, &d.paragraph),
        };
        let content = self
            .configured(Field::Content, span)
            .flatten()
            .and_then(|f| self.read(&f, Field::Content));
        let author = match self.configured(Field::Author, span) {
            Some(found) => found.and_then(|f| self.read(&f, Field::Author)),
            None => self.find_in(span, &d.author).and_then(|a| self.text(&a)),
        };
        let image = self
            .configured(Field::Image, span)
            .flatten()
            .and_then(|f| self.read(&f, Field::Image));
        let item = Item {
            title,
            link,
            date: date.as_deref().and_then(|t| super::date(t, s, now)),
            summary,
            content,
            author,
            image,
            title_html: false,
            summary_html: false,
        };
        for (field, _) in s.fields() {
            if !item.has(field) && self.fields[field as usize].is_some() {
                misses.note(field);
            }
        }
        item
    }

    /// A configured field's element in the item's span: `None` when the field has no
    /// selector (its default applies), `Some(None)` when the selector matched nothing.
    fn configured<'a>(&self, field: Field, span: &Span<'a>) -> Option<Option<NodeRef<'a>>> {
        let chosen = self.fields[field as usize].as_ref()?;
        Some(match &chosen.matcher {
            None => Some(span.node),
            Some(m) => self.find_in(span, m),
        })
    }

    /// What a configured field reads from its element: the attribute written after `@`,
    /// else the field's own reading (module docs of [`super`]).
    fn read(&self, node: &NodeRef, field: Field) -> Option<String> {
        if let Some(a) = self.fields[field as usize]
            .as_ref()
            .and_then(|c| c.attribute.as_deref())
        {
            return node.attr(a).and_then(|v| super::folded(&v));
        }
        match field {
            Field::Link => {
                let a = if node.has_attr("href") {
                    Some(*node)
                } else {
                    self.enclosing_link(node)
                        .or_else(|| self.find(node, &self.defaults.link))
                };
                a.and_then(|a| a.attr("href"))
                    .and_then(|h| super::folded(&h))
            }
            Field::Date => match node.attr("datetime") {
                Some(d) if !d.trim().is_empty() => super::folded(&d),
                _ => self.text(node),
            },
            Field::Content => self.inner_html(node),
            Field::Image => {
                let img = if node.has_attr("src") || node.has_attr("data-src") {
                    Some(*node)
                } else {
                    self.find(node, &self.defaults.image)
                };
                img.and_then(|i| image_source(&i))
            }
            Field::Title | Field::Summary | Field::Author => self.text(node),
        }
    }

    /// The default link element: the first heading's link (inside it, or around it), else
    /// the item itself when it is a link, else the first `a[href]` of its span.
    fn default_link<'a>(
        &self,
        span: &Span<'a>,
        heading: Option<&NodeRef<'a>>,
    ) -> Option<NodeRef<'a>> {
        let item = &span.node;
        if let Some(h) = heading
            && let Some(a) = self.find(h, &self.defaults.link).or_else(|| {
                self.enclosing_link(h)
                    .filter(|a| a.id == item.id || is_inside(a, item) || span.holds(a))
            })
        {
            return Some(a);
        }
        if item.has_attr("href") {
            return Some(*item);
        }
        self.find_in(span, &self.defaults.link)
    }

    /// The `a[href]` around `node`, if any (a heading wrapped in a link).
    fn enclosing_link<'a>(&self, node: &NodeRef<'a>) -> Option<NodeRef<'a>> {
        node.ancestors_it(Some(8))
            .find(|a| self.matches(a, &self.defaults.link))
    }

    /// Whether `m` matches the element `n`, through the read's cache.
    fn matches(&self, n: &NodeRef, m: &Matcher) -> bool {
        n.is_element() && m.match_element_with_caches(n, &mut self.caches.borrow_mut())
    }

    /// The first element of the span that `m` matches: the item itself, else one inside
    /// it, else one of the elements after it, or inside one.
    fn find_in<'a>(&self, span: &Span<'a>, m: &Matcher) -> Option<NodeRef<'a>> {
        if self.matches(&span.node, m) {
            return Some(span.node);
        }
        self.find(&span.node, m).or_else(|| {
            span.trailing.iter().find_map(|t| {
                if self.matches(t, m) {
                    Some(*t)
                } else {
                    self.find(t, m)
                }
            })
        })
    }

    /// The text of the first element of the span (as [`Reader::find_in`]) that `m` matches
    /// and that has text: an empty or image-only paragraph is passed over.
    fn first_text_in(&self, span: &Span, m: &Matcher) -> Option<String> {
        let after = span
            .trailing
            .iter()
            .flat_map(|t| std::iter::once(*t).chain(t.descendants_it()));
        for n in span.node.descendants_it().chain(after) {
            if self.visits.get() >= MAX_VISITS {
                return None;
            }
            self.visits.set(self.visits.get() + 1);
            if self.matches(&n, m)
                && let Some(text) = self.text(&n)
            {
                return Some(text);
            }
        }
        None
    }

    /// The first element inside `item` (not `item` itself) that `m` matches, in document
    /// order; every element looked at is counted.
    fn find<'a>(&self, item: &NodeRef<'a>, m: &Matcher) -> Option<NodeRef<'a>> {
        for n in item.descendants_it() {
            if self.visits.get() >= MAX_VISITS {
                return None;
            }
            self.visits.set(self.visits.get() + 1);
            if self.matches(&n, m) {
                return Some(n);
            }
        }
        None
    }

    /// The element's text, white space folded, without the text of scripts and styles;
    /// every node looked at is counted.
    fn text(&self, node: &NodeRef) -> Option<String> {
        let mut out = String::new();
        for n in std::iter::once(*node).chain(node.descendants_it()) {
            if self.visits.get() >= MAX_VISITS || out.len() > MAX_FIELD_CHARS * 4 {
                break;
            }
            self.visits.set(self.visits.get() + 1);
            if n.is_text()
                && !n.parent().and_then(|p| p.node_name()).is_some_and(|name| {
                    matches!(
                        &*name,
                        "script"
                            | "style"
                            | "noscript"
                            | "template"
                            | "iframe"
                            | "noembed"
                            | "noframes"
                    )
                })
            {
                out.push_str(&n.text());
                out.push(' ');
            }
        }
        super::folded(&out)
    }

    /// The element's inner HTML (sanitised later, by normalise), its cost counted first.
    /// Its size is counted first, in elements against [`MAX_VISITS`] and in bytes of
    /// text: content over [`crate::feed::text::MAX_HTML_BYTES`] is not copied (nested items
    /// would copy a page many times over), nor is any once the page's content reached
    /// [`MAX_CONTENT_BYTES`].
    fn inner_html(&self, node: &NodeRef) -> Option<String> {
        let mut size = 0usize;
        let mut bytes = 0usize;
        for n in node.descendants_it().take(MAX_VISITS) {
            size += 1;
            if n.is_text() {
                bytes += n.text().len();
            }
        }
        if self.visits.get() + size > MAX_VISITS {
            self.visits.set(MAX_VISITS);
            return None;
        }
        self.visits.set(self.visits.get() + size);
        if bytes > crate::feed::text::MAX_HTML_BYTES
            || self.content_bytes.get() + bytes > MAX_CONTENT_BYTES
        {
            return None;
        }
        self.content_bytes.set(self.content_bytes.get() + bytes);
        let html = node.inner_html();
        (!html.trim().is_empty()).then(|| html.to_string())
    }
}

/// `h1` to `h6`: the heading's level.
fn heading_level(tag: &str) -> Option<u8> {
    match tag.as_bytes() {
        [b'h', d @ b'1'..=b'6'] => Some(d - b'0'),
        _ => None,
    }
}

/// An image's address: `src`, unless it is missing or a placeholder (`data:`) and the page
/// loads the image lazily (`data-src`, `data-lazy-src`, `data-original`), else the first
/// candidate of `srcset`.
fn image_source(img: &NodeRef) -> Option<String> {
    let usable = |name: &str| {
        img.attr(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty() && !v.starts_with("data:"))
    };
    usable("src")
        .or_else(|| usable("data-src"))
        .or_else(|| usable("data-lazy-src"))
        .or_else(|| usable("data-original"))
        .or_else(|| {
            usable("srcset").and_then(|s| {
                s.split_whitespace()
                    .next()
                    .map(|c| c.trim_end_matches(',').to_string())
            })
        })
}

/// What is wrong with a selector, in words, from the parser's error (whose types are not
/// public through dom_query: read from its debug form).
fn css_problem(kind: &impl std::fmt::Debug) -> String {
    let debug = format!("{kind:?}");
    if debug.contains("EndOfInput") {
        "it ends too early".into()
    } else if debug.contains("EmptySelector") {
        "a part of it is empty".into()
    } else if debug.contains("DanglingCombinator") {
        "it ends with a combinator".into()
    } else if debug.contains("UnexpectedToken") {
        "a character or word out of place".into()
    } else if debug.contains("InvalidState") {
        "a pseudo-class where it is not allowed, e.g. `:has()` inside `:has()`".into()
    } else if debug.contains("UnsupportedPseudoClassOrElement") || debug.contains("PseudoElement") {
        "an unsupported pseudo-class or pseudo-element".into()
    } else {
        debug
    }
}

fn is_inside(node: &NodeRef, container: &NodeRef) -> bool {
    node.ancestors_it(None).any(|a| a.id == container.id)
}

/// Content types an HTML source may answer with.
fn is_html_type(content_type: &str) -> bool {
    let t = content_type.to_ascii_lowercase();
    let t = t.split(';').next().unwrap_or("").trim();
    t.is_empty() || t.starts_with("text/") || t.contains("html") || t.contains("xml")
}

/// A body that starts (after white space and a BOM) with `<`: markup, whatever its type says.
fn looks_like_markup(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace() && !matches!(b, 0xEF | 0xBB | 0xBF))
        == Some(&b'<')
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
        Url::parse("https://site.example/news/").expect("url")
    }

    /// (title, link, date, summary, image) of each entry, and the warnings.
    type Got = (
        Vec<(
            String,
            String,
            Option<String>,
            Option<String>,
            Option<String>,
        )>,
        Vec<String>,
    );

    fn got(s: Selectors, page: &[u8], content_type: Option<&str>) -> Got {
        let parsed = read_kind(&SourceKind::Html(s), page, content_type, &url(), 100, now())
            .expect("entries");
        let entries = parsed
            .feed
            .entries
            .iter()
            .map(|e| {
                (
                    e.title
                        .as_ref()
                        .map(|t| t.content.clone())
                        .unwrap_or_default(),
                    e.links.first().map(|l| l.href.clone()).unwrap_or_default(),
                    e.published.map(|d| d.to_rfc3339()),
                    e.summary.as_ref().map(|t| t.content.clone()),
                    e.media
                        .first()
                        .and_then(|m| m.thumbnails.first())
                        .map(|t| t.image.uri.clone()),
                )
            })
            .collect();
        (entries, parsed.warnings)
    }

    #[test]
    fn defaults_read_heading_link_time_and_paragraph() {
        let page = br#"<html><head><title>News</title></head><body>
            <article><h2><a href="a1">First</a></h2><time datetime="2026-11-27T10:00:00Z">x</time><p>One.</p></article>
            <article><a href="/a2"><h3>Second</h3></a><p>Two.</p></article>
            <article><a class=more href="a3">Read more about the third</a></article>
            </body></html>"#;
        let (entries, warnings) = got(Selectors::items("article"), page, None);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            entries,
            [
                (
                    "First".into(),
                    "https://site.example/news/a1".into(),
                    Some("2026-11-27T10:00:00+00:00".into()),
                    Some("One.".into()),
                    None
                ),
                (
                    "Second".into(),
                    "https://site.example/a2".into(),
                    None,
                    Some("Two.".into()),
                    None
                ),
                (
                    "Read more about the third".into(),
                    "https://site.example/news/a3".into(),
                    None,
                    None,
                    None
                ),
            ]
        );
    }

    #[test]
    fn attributes_base_href_lazy_images_and_misses() {
        let page = br#"<html><head><base href="https://cdn.example/base/"></head><body>
            <li class=i data-url="/x1"><span title="First title">F</span><img src="data:image/gif;base64,R0" data-src="p1.jpg"><b>Feb 9, 2023</b></li>
            <li class=i data-url="/x2"><span title="Second title">S</span></li>
            </body></html>"#;
        let mut s = Selectors::items("li.i");
        s.link = Some(Pick::css("@data-url"));
        s.title = Some(Pick::css("span@title"));
        s.image = Some(Pick::css("img"));
        s.date = Some(Pick::css("b"));
        let (entries, warnings) = got(s, page, None);
        assert_eq!(entries[0].0, "First title");
        assert_eq!(entries[0].1, "https://cdn.example/x1");
        assert_eq!(entries[0].2.as_deref(), Some("2023-02-09T00:00:00+00:00"));
        assert_eq!(
            entries[0].4.as_deref(),
            Some("https://cdn.example/base/p1.jpg")
        );
        assert_eq!(entries[1].1, "https://cdn.example/x2");
        assert_eq!(
            warnings,
            [
                "selector `date` (b) matched nothing in 1 of 2 items",
                "selector `image` (img) matched nothing in 1 of 2 items"
            ]
        );
    }

    /// Entries that are a heading and what follows it, up to the next heading; a table row
    /// and the next row (Hacker News).
    #[test]
    fn flat_pages_read_the_elements_after_each_item() {
        let page = br#"<main><h2><a href="/p/a">A</a></h2><time datetime="2026-11-01">1 Nov</time><p>About A.</p>
            <h2><a href="/p/b">B</a></h2><p>About B.</p><h2><a href="/p/c">C</a></h2></main>"#;
        let (entries, _) = got(Selectors::items("main > h2"), page, None);
        let short: Vec<(&str, Option<&str>, Option<&str>)> = entries
            .iter()
            .map(|e| (e.0.as_str(), e.2.as_deref(), e.3.as_deref()))
            .collect();
        assert_eq!(
            short,
            [
                ("A", Some("2026-11-01T00:00:00+00:00"), Some("About A.")),
                ("B", None, Some("About B.")),
                ("C", None, None)
            ]
        );
        let table = br#"<table><tr class=athing><td><span class=titleline><a href="https://x.example/1">One</a></span></td></tr>
            <tr><td><span class=age title="2026-11-28T09:00:00 1764320400"><a href="item?id=1">3 hours ago</a></span></td></tr>
            <tr class=athing><td><span class=titleline><a href="https://x.example/2">Two</a></span></td></tr>
            <tr><td><span class=age title="2026-11-28T10:00:00"><a href="item?id=2">2 hours ago</a></span></td></tr></table>"#;
        let mut s = Selectors::items("tr.athing");
        s.date = Some(Pick::css("span.age@title"));
        let (entries, warnings) = got(s, table, None);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(entries[0].1, "https://x.example/1");
        assert_eq!(entries[0].2.as_deref(), Some("2026-11-28T09:00:00+00:00"));
        assert_eq!(entries[1].2.as_deref(), Some("2026-11-28T10:00:00+00:00"));
    }

    #[test]
    fn an_unlabelled_windows_1252_page_keeps_its_quotes() {
        let page = "<html><body><div class=p><h2><a href=/q>\u{201c}Quoted\u{201d} \u{2013} caf\u{e9}</a></h2></div></body></html>";
        let (bytes, _, _) = encoding_rs::WINDOWS_1252.encode(page);
        let (entries, warnings) = got(Selectors::items("div.p"), &bytes, Some("text/html"));
        assert_eq!(entries[0].0, "\u{201c}Quoted\u{201d} \u{2013} caf\u{e9}");
        assert!(
            warnings.iter().any(|w| w.contains("windows-1252")),
            "{warnings:?}"
        );
    }

    /// The prescan's rules: `x-user-defined` in a page means windows-1252; a charset no
    /// browser decodes (ISO-2022-KR) is an error naming it, not "`items` matched nothing".
    #[test]
    fn charsets_a_browser_reads_differently_from_their_label() {
        let page = b"<html><head><meta charset=\"x-user-defined\"></head><body><div class=p><a href=/q>\x93q\x94</a></div></body></html>";
        let (entries, _) = got(Selectors::items("div.p"), page, None);
        assert_eq!(entries[0].0, "\u{201c}q\u{201d}");
        let err = read_kind(
            &SourceKind::Html(Selectors::items("div.p")),
            b"<html><head><meta charset=\"iso-2022-kr\"></head><body><div class=p><a href=/q>q</a></div></body></html>",
            None,
            &url(),
            100,
            now(),
        )
        .expect_err("undecodable");
        assert_eq!(
            err.to_string(),
            "cannot read the page: the page declares charset \"iso-2022-kr\", which no browser decodes"
        );
    }

    /// Links back to the page itself name no entry (they would make five stories one);
    /// such entries are told apart by their titles, as linkless ones are.
    #[test]
    fn a_link_to_the_page_itself_is_no_link() {
        let page = br##"<div class="post"><h2><a href="#">First</a></h2></div>
            <div class="post"><h2><a href="#">Second</a></h2></div>
            <div class="post"><h2><a href="?">Third</a></h2></div>
            <div class="post"><h2><a href="https://site.example/news/">Fourth</a></h2></div>
            <div class="post"><h2><a href="#part-2">Fifth</a></h2></div>""##;
        let parsed = read_kind(
            &SourceKind::Html(Selectors::items("div.post")),
            page,
            None,
            &url(),
            100,
            now(),
        )
        .expect("entries");
        let got: Vec<(String, usize)> = parsed
            .feed
            .entries
            .iter()
            .map(|e| (e.id.clone(), e.links.len()))
            .collect();
        assert_eq!(
            got,
            [
                ("title:First".to_string(), 0),
                ("title:Second".to_string(), 0),
                ("title:Third".to_string(), 0),
                ("title:Fourth".to_string(), 0),
                (String::new(), 1),
            ]
        );
    }

    /// Only an item that cannot hold a whole entry (a heading, a row, a bare link) reads
    /// the elements after it; an `article` never borrows its neighbour's fields, and a
    /// heading stops at the next heading as high as its own, or an element like itself.
    #[test]
    fn only_flat_items_reach_past_themselves() {
        let page = br#"<main><article class="pinned"><h2>Pinned</h2></article>
            <article><h2><a href="/a">Other</a></h2><time datetime="2020-01-01">1 Jan</time><p>Other summary</p></article>
            <h3 class=t><a href="/h1">Heading one</a></h3><h3 class=t-x><a href="/x">not selected</a></h3><p>Not one's.</p>
            <h3 class=t><a href="/h2">Heading two</a></h3><h4>Part</h4><p>Two's.</p></main>"#;
        let (entries, _) = got(Selectors::items("article.pinned"), page, None);
        assert_eq!(
            entries,
            [("Pinned".into(), String::new(), None, None, None)],
            "nothing borrowed from the next article"
        );
        let (entries, _) = got(Selectors::items("h3.t"), page, None);
        let summaries: Vec<Option<&str>> = entries.iter().map(|e| e.3.as_deref()).collect();
        assert_eq!(summaries, [None, Some("Two's.")]);
    }

    /// `items` that match, but with nothing in them, fail as loudly as `items` matching
    /// nothing: the source would look healthy while it brings nothing.
    #[test]
    fn items_without_entries_are_an_error() {
        let err = read_kind(
            &SourceKind::Html(Selectors::items("li")),
            b"<ul><li><img src=/a.png></li><li><img src=/b.png></li></ul>",
            None,
            &url(),
            100,
            now(),
        )
        .expect_err("no entries");
        assert_eq!(
            err.to_string(),
            "selector `items` (li) matched 2 elements, but none has a link, a title or text"
        );
    }

    /// A page's text is text: "Vec&lt;T&gt;" on the page is the title "Vec<T>" once
    /// published, not a title with a tag to strip.
    #[test]
    fn text_with_angle_brackets_survives_normalise() {
        let page = br#"<article><h2><a href="/v">Vec&lt;T&gt; &amp; friends</a></h2><p>a &lt;b&gt; c</p></article>"#;
        let parsed = read_kind(
            &SourceKind::Html(Selectors::items("article")),
            page,
            None,
            &url(),
            100,
            now(),
        )
        .expect("entries");
        let entries = crate::feed::normalise::normalise(parsed.feed, "s", &url(), now()).entries;
        assert_eq!(entries[0].title, "Vec<T> & friends");
        assert_eq!(entries[0].summary.as_deref(), Some("a &lt;b&gt; c"));
    }

    /// `content` of nested items would copy the same text once per item: what one page's
    /// entries copy in all is bounded.
    #[test]
    fn content_copies_are_bounded() {
        let text = "word ".repeat(80_000); // 400 KB
        let page = format!(
            "<html><body>{}<a href=/x>x</a><p>{text}</p>{}</body></html>",
            "<div>".repeat(100),
            "</div>".repeat(100)
        );
        let mut s = Selectors::items("div");
        s.content = Some(Pick::css("p"));
        let parsed = read_kind(
            &SourceKind::Html(s),
            page.as_bytes(),
            None,
            &url(),
            1000,
            now(),
        )
        .expect("entries");
        let with_content = parsed
            .feed
            .entries
            .iter()
            .filter(|e| e.content.is_some())
            .count();
        assert_eq!(parsed.feed.entries.len(), 100);
        assert_eq!(with_content, MAX_CONTENT_BYTES / 400_000);
    }

    /// Text a browser never shows (scripts, styles, an iframe's fallback) is no title.
    #[test]
    fn hidden_text_is_not_read() {
        let page = br#"<article><h2><a href="/l1">Title<script>S</script><style>C</style><noscript>N</noscript><template>T</template><iframe>I</iframe><noembed>E</noembed></a></h2></article>"#;
        let (entries, _) = got(Selectors::items("article"), page, None);
        assert_eq!(entries[0].0, "Title");
    }

    #[test]
    fn nothing_matched_and_not_html_are_errors() {
        let err = read_kind(
            &SourceKind::Html(Selectors::items("article.story")),
            b"<html><body><div>redesigned</div></body></html>",
            Some("text/html"),
            &url(),
            100,
            now(),
        )
        .expect_err("no items");
        assert_eq!(
            err.to_string(),
            "selector `items` (article.story) matched nothing on the page"
        );
        let err = read_kind(
            &SourceKind::Html(Selectors::items("a")),
            b"\x89PNG\r\n",
            Some("image/png"),
            &url(),
            100,
            now(),
        )
        .expect_err("not html");
        assert_eq!(
            err.to_string(),
            "not an HTML page: the server sent image/png"
        );
    }

    #[test]
    fn selectors_are_checked_with_a_reason() {
        assert!(check_selector("article h2 > a").is_ok());
        assert!(check_selector("li:has(time)").is_ok());
        for (bad, why) in [
            ("div >", "ends with a combinator"),
            ("a@", "name the attribute"),
            ("", "is empty"),
            ("*:has(*:has(a))", ":has()"),
            ("h2!!", "out of place"),
        ] {
            let e = check_selector(bad).expect_err(bad);
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
