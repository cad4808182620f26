//! Entries from pages that are not feeds: an HTML page read by CSS selectors (`html.rs`), a
//! JSON document read by JSONPath (`json.rs`). No I/O.
//!
//! Both give what [`crate::feed::parse`] gives for a feed, a [`Parsed`] document in
//! feed-rs's model, so everything after parsing (normalise, identity, dedup, rules, full
//! text, store, every output) treats their entries exactly as feed entries. An entry has no
//! guid: it is identified by its link, fragment included (`page#v1` and `page#v2` are two
//! entries), else by its title and content.
//!
//! What each field reads, and its default when no selector is given, is in [`Selectors`];
//! the work per document is bounded (see [`MAX_VISITS`]).

mod html;
mod json;
pub mod propose;

use chrono::{DateTime, Utc};
use feed_rs::model::{Content, Entry, Feed, FeedType, Link, Person, Text};
use mediatype::{MediaTypeBuf, names};
use url::Url;

use crate::feed::parse::Parsed;

pub use html::check_selector;
pub use json::{check_path, suggest_items};

/// How many element visits one HTML document may cost the field selectors, in all (each
/// element looked at while finding one field of one item counts once). Real listing pages
/// need a few thousand; past the bound the remaining items are not read, with a warning.
pub const MAX_VISITS: usize = 2_000_000;

/// The longest text read from one field (characters); longer text is cut.
pub const MAX_FIELD_CHARS: usize = 100_000;

/// What a source's URL serves, and how its entries are read.
#[derive(Clone, Debug, PartialEq)]
pub enum SourceKind {
    /// RSS, Atom or JSON Feed (the default).
    Feed,
    /// An HTML page: `items` and the fields are CSS selectors.
    Html(Selectors),
    /// A JSON document: `items` is a JSONPath from the document to the items, the fields
    /// are JSONPaths from one item.
    Json(Selectors),
}

impl SourceKind {
    /// The name as written in the config (`kind = "..."`).
    pub fn name(&self) -> &'static str {
        match self {
            SourceKind::Feed => "feed",
            SourceKind::Html(_) => "html",
            SourceKind::Json(_) => "json",
        }
    }

    /// A hash of how documents are read (kind, selectors, date format, time zone): when it
    /// changes, the next poll must read the page again even if the server says it did not
    /// change. `None` for feeds.
    pub fn reader_key(&self) -> Option<String> {
        let s = match self {
            SourceKind::Feed => return None,
            SourceKind::Html(s) | SourceKind::Json(s) => s,
        };
        let mut h = blake3::Hasher::new_derive_key("tributary 2026-11 page reader v1");
        h.update(self.name().as_bytes());
        for part in s.parts() {
            let text = part.unwrap_or_else(|| "\u{0}-".into());
            h.update(&(text.len() as u64).to_le_bytes());
            h.update(text.as_bytes());
        }
        Some(h.finalize().to_hex()[..32].to_string())
    }
}

/// Where each field of an entry is found on the page. Every field but `items` is optional
/// and has a default (for HTML):
///
/// | field | reads | default (HTML) | default (JSON) |
/// |---|---|---|---|
/// | `title` | text | the first heading's text, else the link's | `title`, `name`, `headline` |
/// | `link` | `href` | the first heading's `a[href]`, else the first `a[href]` (or the item itself) | `url`, `link`, `permalink`, `href` |
/// | `date` | `datetime`, else text | the first `time`: its `datetime`, else its text | `date_published`, `published_at`, `published`, `date`, `created_at`, `pubDate`, `updated_at` |
/// | `summary` | text | the first `p` with text | `summary`, `description`, `excerpt` |
/// | `content` | inner HTML | none | `content_html`, `content`, `body`, `html` |
/// | `author` | text | `[rel~=author]`, `[itemprop~=author]` | `author` (a string, or an object's `name`) |
/// | `image` | `src` (`data-src` for lazy images) | none | `image`, `thumbnail` |
///
/// An HTML selector ending in `@name` reads that attribute instead (`time@datetime`,
/// `a.more@href`); `@name` alone reads the item's own attribute.
#[derive(Clone, Debug, PartialEq)]
pub struct Selectors {
    pub items: String,
    pub title: Option<Pick>,
    pub link: Option<Pick>,
    pub date: Option<Pick>,
    pub summary: Option<Pick>,
    pub content: Option<Pick>,
    pub author: Option<Pick>,
    pub image: Option<Pick>,
    /// A chrono `strftime` format for `date` (else dates are read loosely).
    pub date_format: Option<String>,
    /// The zone of dates written without one (a source's `timezone`; default UTC).
    pub timezone: chrono_tz::Tz,
}

impl Selectors {
    /// Only `items`; every field by its default; UTC.
    pub fn items(items: &str) -> Selectors {
        Selectors {
            items: items.to_string(),
            title: None,
            link: None,
            date: None,
            summary: None,
            content: None,
            author: None,
            image: None,
            date_format: None,
            timezone: chrono_tz::UTC,
        }
    }

    /// The configured fields, by name (each once, in the order of the docs' table).
    pub fn fields(&self) -> [(Field, Option<&Pick>); 7] {
        [
            (Field::Title, self.title.as_ref()),
            (Field::Link, self.link.as_ref()),
            (Field::Date, self.date.as_ref()),
            (Field::Summary, self.summary.as_ref()),
            (Field::Content, self.content.as_ref()),
            (Field::Author, self.author.as_ref()),
            (Field::Image, self.image.as_ref()),
        ]
    }

    /// Everything that decides how a document is read, as text (for [`SourceKind::reader_key`]).
    fn parts(&self) -> Vec<Option<String>> {
        let mut parts = vec![Some(self.items.clone())];
        parts.extend(self.fields().iter().map(|(_, p)| p.map(Pick::to_string)));
        parts.push(self.date_format.clone());
        parts.push(Some(self.timezone.name().to_string()));
        parts
    }
}

/// The fields of an entry a selector can read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Title,
    Link,
    Date,
    Summary,
    Content,
    Author,
    Image,
}

impl Field {
    pub fn name(self) -> &'static str {
        match self {
            Field::Title => "title",
            Field::Link => "link",
            Field::Date => "date",
            Field::Summary => "summary",
            Field::Content => "content",
            Field::Author => "author",
            Field::Image => "image",
        }
    }
}

/// One field's selector: where (a CSS selector or a JSONPath) and, for HTML, which
/// attribute (`selector@attribute`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pick {
    /// The CSS selector (empty: the item itself) or the JSONPath.
    pub path: String,
    pub attribute: Option<String>,
}

impl Pick {
    /// A CSS selector as written in the config, `selector` or `selector@attribute`: the
    /// last `@` outside brackets and quotes, followed by an attribute name, starts the
    /// attribute.
    pub fn css(written: &str) -> Pick {
        let written = written.trim();
        let (mut depth, mut quote) = (0i32, None);
        let mut at = None;
        let mut escaped = false;
        for (i, c) in written.char_indices() {
            if std::mem::take(&mut escaped) {
                continue;
            }
            match (quote, c) {
                (_, '\\') => escaped = true,
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '"' | '\'') => quote = Some(c),
                (None, '[' | '(') => depth += 1,
                (None, ']' | ')') => depth -= 1,
                (None, '@') if depth == 0 => at = Some(i),
                _ => {}
            }
        }
        match at {
            Some(i) if is_attribute_name(&written[i + 1..]) => Pick {
                path: written[..i].trim().to_string(),
                attribute: Some(written[i + 1..].to_ascii_lowercase()),
            },
            _ => Pick {
                path: written.to_string(),
                attribute: None,
            },
        }
    }

    /// A JSONPath as written in the config: `$...` as it is, a bare name or dotted path
    /// (`title`, `author.name`) relative to the item (`$.title`, `$.author.name`).
    pub fn json(written: &str) -> Pick {
        let written = written.trim();
        let path = if written.starts_with('$') {
            written.to_string()
        } else if written.starts_with('[') {
            format!("${written}")
        } else {
            format!("$.{written}")
        };
        Pick {
            path,
            attribute: None,
        }
    }
}

impl std::fmt::Display for Pick {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.attribute {
            Some(a) => write!(f, "{}@{a}", self.path),
            None => f.write_str(&self.path),
        }
    }
}

fn is_attribute_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.'))
}

/// Why a page gave no entries.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    /// `items` matched nothing: the page changed, or the selector is wrong.
    #[error("selector `items` ({selector}) matched nothing on the page")]
    NoItems { selector: String },
    /// `items` matched nothing in the JSON document.
    #[error("path `items` ({path}) matched nothing in the document")]
    NoJsonItems { path: String },
    /// `items` matched, but no item held a link, a title or text: the page changed under
    /// the selector, or it names the wrong elements.
    #[error(
        "{what} `items` ({selector}) matched {matched} {}, but none has a link, a title or text",
        if *.matched == 1 { "element" } else { "elements" }
    )]
    NoEntries {
        what: &'static str,
        selector: String,
        matched: usize,
    },
    /// A selector the config check let through and the matcher refused (a bug).
    #[error("selector `{field}` ({selector}) is not a valid CSS selector")]
    BadSelector {
        field: &'static str,
        selector: String,
    },
    /// A JSONPath that does not parse.
    #[error("path `{field}` ({path}) is not a valid JSONPath: {error}")]
    BadPath {
        field: &'static str,
        path: String,
        error: String,
    },
    /// `items` matched values that are not objects (strings, numbers, arrays).
    #[error(
        "path `items` ({path}) matched {matched} {}, but none is an object (an item is an object, e.g. {{\"title\": ..., \"url\": ...}})",
        if *.matched == 1 { "value" } else { "values" }
    )]
    NotObjects { path: String, matched: usize },
    /// The document is not JSON.
    #[error("not JSON: {0}")]
    NotJson(serde_json::Error),
    /// The page declares a charset no browser decodes (ISO-2022-KR and the like).
    #[error("cannot read the page: {0}")]
    Charset(String),
    /// An HTML source got something that is not HTML (an image, a PDF...).
    #[error("not an HTML page: the server sent {0}")]
    NotHtml(String),
}

/// Reads the entries of a page (`bytes`, with its Content-Type, fetched from `base`) as
/// `kind` says; at most `max_entries` of them. `now` anchors relative dates ("2 hours ago").
/// Not for [`SourceKind::Feed`] (that is [`crate::feed::parse`]): it gives no entries.
pub fn read(
    kind: &SourceKind,
    bytes: &[u8],
    content_type: Option<&str>,
    base: &Url,
    max_entries: usize,
    now: DateTime<Utc>,
) -> Result<Parsed, ScrapeError> {
    match kind {
        SourceKind::Feed => Ok(Parsed {
            feed: feed(None, base, Vec::new()),
            warnings: Vec::new(),
        }),
        SourceKind::Html(s) => html::read(s, bytes, content_type, base, max_entries, now),
        SourceKind::Json(s) => json::read(s, bytes, content_type, base, max_entries, now),
    }
}

/// One item as read from the page, before it becomes a feed-rs entry. Texts are plain,
/// `content` is HTML, links are as written (resolved later against `base`).
#[derive(Debug, Default, PartialEq)]
pub struct Item {
    pub title: Option<String>,
    pub link: Option<String>,
    pub date: Option<DateTime<Utc>>,
    pub summary: Option<String>,
    pub content: Option<String>,
    pub author: Option<String>,
    pub image: Option<String>,
    /// The title, and the summary, are HTML (tags and character references), as a JSON
    /// API's `{"rendered": ...}` is; else plain text.
    pub title_html: bool,
    pub summary_html: bool,
}

impl Item {
    /// Whether the item has `field`.
    fn has(&self, field: Field) -> bool {
        match field {
            Field::Title => self.title.is_some(),
            Field::Link => self.link.is_some(),
            Field::Date => self.date.is_some(),
            Field::Summary => self.summary.is_some(),
            Field::Content => self.content.is_some(),
            Field::Author => self.author.is_some(),
            Field::Image => self.image.is_some(),
        }
    }
}

/// How many items a configured field found nothing in: one warning per field and poll.
#[derive(Default)]
struct Misses {
    counts: [usize; 7],
}

impl Misses {
    fn note(&mut self, field: Field) {
        self.counts[field as usize] += 1;
    }

    /// "selector `date` (time) matched nothing in 3 of 20 items", per configured field
    /// that missed; `what` is "selector" or "path".
    fn warnings(&self, s: &Selectors, items: usize, what: &str) -> Vec<String> {
        s.fields()
            .iter()
            .filter_map(|(field, pick)| {
                let pick = (*pick)?;
                let missed = self.counts[*field as usize];
                (missed > 0).then(|| {
                    format!(
                        "{what} `{}` ({pick}) matched nothing in {missed} of {items} items",
                        field.name()
                    )
                })
            })
            .collect()
    }
}

/// A feed-rs document of `entries`, titled `title`, for the page at `base`.
fn feed(title: Option<String>, base: &Url, entries: Vec<Entry>) -> Feed {
    Feed {
        feed_type: FeedType::JSON,
        id: String::new(),
        title: title.map(escaped),
        updated: None,
        authors: Vec::new(),
        description: None,
        links: vec![link(base.as_str())],
        categories: Vec::new(),
        contributors: Vec::new(),
        generator: None,
        icon: None,
        language: None,
        logo: None,
        published: None,
        rating: None,
        rights: None,
        ttl: None,
        people: Vec::new(),
        entries,
    }
}

/// An item as a feed-rs entry: no id (identity is the link), relative URLs resolved against
/// `base` (the page, or its `<base href>`).
fn entry(item: Item, base: &Url, page: &Url) -> Entry {
    let resolve = |u: &str| {
        base.join(u.trim())
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .map(without_session)
            .map(String::from)
    };
    // A link back to the page itself (`#`, `?`, the page's own address) names no entry:
    // items sharing it would be taken for one.
    let own_page = |l: &str| Url::parse(l).is_ok_and(|u| is_page(&u, page));
    let mut e = Entry {
        id: String::new(),
        base: Some(base.to_string()),
        published: item.date,
        ..Entry::default()
    };
    e.updated = None;
    let text = |html: bool| if html { html_text } else { escaped };
    e.title = item.title.map(text(item.title_html));
    e.summary = item.summary.map(text(item.summary_html));
    match item
        .link
        .as_deref()
        .and_then(resolve)
        .filter(|l| !own_page(l))
    {
        Some(l) => e.links.push(link(&l)),
        // Without a link of its own, an entry is identified by its title within the
        // source: its text around the title (an age, a count of comments) changes from
        // poll to poll, and would make it new every time.
        None => {
            if let Some(t) = e.title.as_ref().filter(|t| !t.content.trim().is_empty()) {
                e.id = format!("title:{}", t.content.trim());
            }
        }
    }
    if let Some(html) = item.content {
        e.content = Some(Content {
            body: Some(html),
            content_type: MediaTypeBuf::new(names::TEXT, names::HTML),
            ..Content::default()
        });
    }
    if let Some(name) = item.author {
        e.authors.push(Person {
            name: Some(name),
            uri: None,
            email: None,
            role: None,
        });
    }
    if let Some(src) = item.image.as_deref().and_then(resolve) {
        e.media.push(crate::feed::parse::thumbnail(src));
    }
    e
}

/// A link without the session id a server puts in links for a client without cookies
/// (`?sid=`, `PHPSESSID`, `;jsessionid=`): it changes with every fetch, and would make every
/// entry new at every poll.
fn without_session(mut url: Url) -> Url {
    let is_session = |name: &str| {
        let n = name.to_ascii_lowercase();
        matches!(
            n.as_str(),
            "sid" | "phpsessid" | "jsessionid" | "sessionid" | "session_id" | "sessid"
        ) || n.starts_with("aspsessionid")
    };
    if url.query().is_some() && url.query_pairs().any(|(k, _)| is_session(&k)) {
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| !is_session(k))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if kept.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(kept);
        }
    }
    let path = url.path().to_string();
    if let Some(at) = path.to_ascii_lowercase().find(";jsessionid=") {
        url.set_path(&path[..at]);
    }
    url
}

/// Whether `link` is the page `page` itself: the same address, with at most an empty
/// query or fragment (`page?`, `page#`).
fn is_page(link: &Url, page: &Url) -> bool {
    let bare = |u: &Url| {
        let mut u = u.clone();
        if u.fragment() == Some("") || u.fragment().is_none() {
            u.set_fragment(None);
        }
        if u.query() == Some("") {
            u.set_query(None);
        }
        u
    };
    link.fragment().is_none_or(str::is_empty) && bare(link) == bare(page)
}

/// Plain text as HTML, escaped: normalise reads a "plain" title with a `<` in it as HTML
/// (feeds put markup there), which would drop the `<T>` of a page's "Vec<T>".
fn escaped(text: String) -> Text {
    html_text(html_escape::encode_text(&text).into_owned())
}

fn html_text(text: String) -> Text {
    Text {
        content_type: MediaTypeBuf::new(names::TEXT, names::HTML),
        src: None,
        content: text,
    }
}

fn link(href: &str) -> Link {
    Link {
        href: href.to_string(),
        target: None,
        rel: None,
        media_type: None,
        href_lang: None,
        title: None,
        length: None,
    }
}

/// `text` with white space folded to single spaces and trimmed, cut at
/// [`MAX_FIELD_CHARS`]; `None` when empty.
fn folded(text: &str) -> Option<String> {
    let mut out = String::new();
    for (n, word) in text.split_whitespace().enumerate() {
        if out.len() >= MAX_FIELD_CHARS {
            break;
        }
        if n > 0 {
            out.push(' ');
        }
        out.push_str(word);
    }
    if let Some((at, _)) = out.char_indices().nth(MAX_FIELD_CHARS) {
        out.truncate(at);
    }
    (!out.is_empty()).then_some(out)
}

/// A date as written on a page (or in a JSON document), read as `s` says.
fn date(text: &str, s: &Selectors, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    crate::feed::dates::parse_loose(text, s.date_format.as_deref(), s.timezone, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_after_the_last_at_outside_brackets() {
        assert_eq!(
            Pick::css("time@datetime"),
            Pick {
                path: "time".into(),
                attribute: Some("datetime".into())
            }
        );
        assert_eq!(Pick::css("@href").path, "");
        assert_eq!(Pick::css("@href").attribute.as_deref(), Some("href"));
        let mail = Pick::css(r#"a[href*="@"]"#);
        assert_eq!(mail.path, r#"a[href*="@"]"#);
        assert_eq!(mail.attribute, None);
        let both = Pick::css(r#"a[title="x@y"]@data-url"#);
        assert_eq!(both.path, r#"a[title="x@y"]"#);
        assert_eq!(both.attribute.as_deref(), Some("data-url"));
        assert_eq!(Pick::css("a @ b").attribute, None);
        // An escaped `@` is part of a class name (Tailwind's `@container`).
        let tailwind = Pick::css(r"div.\@container");
        assert_eq!(
            (tailwind.path.as_str(), tailwind.attribute),
            (r"div.\@container", None)
        );
        let both = Pick::css(r"div.\@lg@title");
        assert_eq!(both.path, r"div.\@lg");
        assert_eq!(both.attribute.as_deref(), Some("title"));
    }

    #[test]
    fn session_ids_are_not_part_of_a_link() {
        let cases = [
            (
                "https://a.example/story?id=7&sid=abc123",
                "https://a.example/story?id=7",
            ),
            (
                "https://a.example/story?PHPSESSID=x",
                "https://a.example/story",
            ),
            (
                "https://a.example/story;jsessionid=ABC?id=7",
                "https://a.example/story?id=7",
            ),
            (
                "https://a.example/story?s=search-term",
                "https://a.example/story?s=search-term",
            ),
        ];
        for (given, want) in cases {
            let url = Url::parse(given).expect("url");
            assert_eq!(without_session(url).as_str(), want, "{given}");
        }
    }

    #[test]
    fn json_paths_may_leave_out_the_dollar() {
        assert_eq!(Pick::json("title").path, "$.title");
        assert_eq!(Pick::json("author.name").path, "$.author.name");
        assert_eq!(Pick::json("$.a[0]").path, "$.a[0]");
        assert_eq!(Pick::json("['odd key']").path, "$['odd key']");
    }

    #[test]
    fn the_reader_key_changes_with_any_selector() {
        let a = SourceKind::Html(Selectors::items("article"));
        let mut s = Selectors::items("article");
        s.date = Some(Pick::css("time"));
        let b = SourceKind::Html(s);
        assert_ne!(a.reader_key(), b.reader_key());
        assert_ne!(
            a.reader_key(),
            SourceKind::Json(Selectors::items("article")).reader_key()
        );
        assert_eq!(SourceKind::Feed.reader_key(), None);
    }
}
