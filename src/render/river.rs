//! The river of news: the HTML view of a feed (`/`, `/sources/{name}`, `/tags/{tag}`,
//! `/feeds/{name}`), its entries newest first, rendered with minijinja from the built-in
//! templates ([`BUILT_IN`], compiled into the binary) or a theme's files that replace them
//! (`[publish] templates`). Pure: the caller reads the store and the theme's files; this
//! takes the data and returns the page. Autoescaping is on (every template is `.html`):
//! only an entry's `content`, sanitised when it was stored, is marked `|safe` by the
//! templates.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::feed::text::{plain_text, xml_text};
use crate::model::Entry;

/// The most instructions one render of a page may execute (a page of 1,000 entries takes
/// a few hundred thousand).
pub const MAX_RENDER_FUEL: u64 = 20_000_000;

/// The most bytes one rendered page may have (a page of 1,000 long entries is about 13 MB).
pub const MAX_PAGE_BYTES: usize = 64 * 1024 * 1024;

/// A page being written, refused past [`MAX_PAGE_BYTES`].
struct Capped(Vec<u8>);

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.0.len() + buf.len() > MAX_PAGE_BYTES {
            return Err(std::io::Error::other(format!(
                "the page is larger than {} MB",
                MAX_PAGE_BYTES / (1024 * 1024)
            )));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The built-in templates by name: a theme's file of the same name replaces one.
pub const BUILT_IN: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("river.html", include_str!("templates/river.html")),
    ("entry.html", include_str!("templates/entry.html")),
];

/// The template a view renders (it extends and includes the others).
pub const PAGE: &str = "river.html";

/// At most this many characters of an entry's text make its excerpt.
const EXCERPT_CHARS: usize = 280;

/// A template that failed to compile or render: its file, line and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{}", describe(.0))]
pub struct TemplateError(#[source] minijinja::Error);

/// `name:line: message` (with minijinja's own detail), the file where the error is: for an
/// error inside an included or extended template, that template's (the innermost of the
/// chain), followed by where it was included from.
fn describe(e: &minijinja::Error) -> String {
    let one = |e: &minijinja::Error| {
        let name = e.name().unwrap_or("template");
        let detail = e.detail().map(|d| format!(": {d}")).unwrap_or_default();
        match e.line() {
            Some(line) => format!("{name}:{line}: {}{detail}", e.kind()),
            None => format!("{name}: {}{detail}", e.kind()),
        }
    };
    let mut chain = vec![e];
    let mut other = None;
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        match c.downcast_ref::<minijinja::Error>() {
            Some(m) => chain.push(m),
            None => other = Some(c.to_string()),
        }
        cause = c.source();
    }
    let innermost = chain[chain.len() - 1];
    let mut text = one(innermost);
    if let Some(other) = other {
        text.push_str(&format!(": {other}"));
    }
    for outer in chain.iter().rev().skip(1) {
        if let (Some(name), Some(line)) = (outer.name(), outer.line()) {
            text.push_str(&format!(" (from {name}:{line})"));
        }
    }
    text
}

/// The environment with the built-in templates, then `overrides` (name, source) in their
/// place or beside them. An error names the file and line.
pub fn environment(
    overrides: &[(String, String)],
) -> Result<minijinja::Environment<'static>, TemplateError> {
    let mut env = minijinja::Environment::new();
    // A theme is code: a render may execute at most this many instructions (a loop of
    // loops is refused, not run for hours), and write at most `MAX_PAGE_BYTES`.
    env.set_fuel(Some(MAX_RENDER_FUEL));
    // Every name ends in `.html`: minijinja's default autoescapes those, here with the five
    // characters HTML needs (minijinja's own also writes `/` as `&#x2f;`, unreadable in
    // URLs).
    env.set_formatter(|out, state, value| {
        if state.auto_escape() != minijinja::AutoEscape::Html
            || value.is_safe()
            || value.is_undefined()
            || value.is_none()
        {
            return minijinja::escape_formatter(out, state, value);
        }
        let text = match value.as_str() {
            Some(s) => html_escape::encode_quoted_attribute(s),
            None => html_escape::encode_quoted_attribute(&value.to_string())
                .into_owned()
                .into(),
        };
        out.write_str(&text)
            .map_err(|e| minijinja::Error::new(minijinja::ErrorKind::WriteFailure, e.to_string()))
    });
    for (name, source) in BUILT_IN {
        env.add_template(name, source).map_err(TemplateError)?;
    }
    for (name, source) in overrides {
        env.add_template_owned(name.clone(), source.clone())
            .map_err(TemplateError)?;
    }
    Ok(env)
}

/// One view's page, rendered in `env`, without the characters XML cannot carry (no use in
/// HTML either, wherever a feed put them).
pub fn river(env: &minijinja::Environment<'_>, page: &RiverPage) -> Result<String, TemplateError> {
    let mut out = Capped(Vec::new());
    env.get_template(PAGE)
        .and_then(|t| t.render_captured_to(page, &mut out).map(drop))
        .map_err(TemplateError)?;
    let html = String::from_utf8(out.0).map_err(|_| {
        TemplateError(minijinja::Error::new(
            minijinja::ErrorKind::WriteFailure,
            "the page is not UTF-8",
        ))
    })?;
    Ok(match xml_text(&html) {
        std::borrow::Cow::Borrowed(_) => html,
        std::borrow::Cow::Owned(clean) => clean,
    })
}

/// Compiles `overrides` with the built-in templates and renders sample pages with them (a
/// first page with every kind of entry and an older link, a later page, an empty one), so a
/// theme that fails only as it renders (an include of a missing file, an unknown filter,
/// a loop over a field that is not a list) is caught at `check`, at start and at a reload,
/// not by the first reader. Pure.
pub fn trial(overrides: &[(String, String)]) -> Result<(), TemplateError> {
    let env = environment(overrides)?;
    for page in sample_pages() {
        river(&env, &page)?;
    }
    Ok(())
}

fn sample_pages() -> Vec<RiverPage> {
    let alternate = |label: &str, mime: &str, ext: &str| Alternate {
        mime_type: mime.to_string(),
        title: format!("Sample ({label})"),
        label: label.to_string(),
        href: format!("http://sample.invalid/feed.{ext}"),
    };
    let view = View {
        site_title: "Sample".into(),
        title: "Sample".into(),
        description: "A sample page".into(),
        site: Some("http://sample.invalid/".into()),
        home: "http://sample.invalid/".into(),
        status: "http://sample.invalid/status".into(),
        alternates: vec![
            alternate("Atom", "application/atom+xml", "atom"),
            alternate("RSS", "application/rss+xml", "rss"),
            alternate("JSON Feed", "application/feed+json", "json"),
        ],
        nav: vec![NavLink {
            title: "#sample".into(),
            href: "http://sample.invalid/tags/sample".into(),
        }],
        older: Some("http://sample.invalid/?before=x".into()),
        newest: None,
        search: "http://sample.invalid/search".into(),
        query: "sample \"a phrase\"".into(),
    };
    let source = RiverSource {
        name: "sample".into(),
        title: "Sample source".into(),
        site: Some("http://sample.invalid/".into()),
        view: "http://sample.invalid/sources/sample".into(),
    };
    let media = |kind: &'static str, mime: Option<&str>| Media {
        url: format!("http://sample.invalid/{kind}"),
        mime_type: mime.map(str::to_string),
        kind,
        name: kind.to_string(),
        size: Some("1.0 MB".into()),
    };
    let entry = |expands: bool, full: bool| RiverEntry {
        title: "A sample entry".into(),
        link: full.then(|| "http://sample.invalid/1".into()),
        source: source.clone(),
        date: "2026-01-01T00:00:00Z".into(),
        date_text: "1 Jan 2026, 00:00 UTC".into(),
        authors: if full {
            vec!["Ann".into(), "Bo".into()]
        } else {
            Vec::new()
        },
        excerpt: "An excerpt".into(),
        content: full.then(|| "<p>The content</p>".into()),
        expands,
        enclosures: if full {
            vec![
                media("audio", Some("audio/mpeg")),
                media("video", Some("video/mp4")),
                media("other", None),
            ]
        } else {
            Vec::new()
        },
    };
    let later = View {
        older: None,
        newest: Some("http://sample.invalid/".into()),
        site: None,
        ..view.clone()
    };
    vec![
        RiverPage {
            view: view.clone(),
            entries: vec![entry(true, true), entry(false, true), entry(false, false)],
        },
        RiverPage {
            view: later,
            entries: vec![entry(true, true)],
        },
        RiverPage {
            view,
            entries: Vec::new(),
        },
    ]
}

/// What a view's template gets: `view` (about the page) and `entries`.
#[derive(Clone, Debug, Serialize)]
pub struct RiverPage {
    pub view: View,
    pub entries: Vec<RiverEntry>,
}

/// About the page: its titles, where it links to.
#[derive(Clone, Debug, Serialize)]
pub struct View {
    /// `[publish] title`.
    pub site_title: String,
    /// The view's own title: the site's, a source's, `#tag` or a named feed's.
    pub title: String,
    pub description: String,
    /// A source's home page (a source's view only).
    pub site: Option<String>,
    /// `{base_url}/` and `{base_url}/status`.
    pub home: String,
    pub status: String,
    /// The view's feeds, for autodiscovery (`<link rel="alternate">`) and the footer.
    pub alternates: Vec<Alternate>,
    /// The named feeds and tags, by title.
    pub nav: Vec<NavLink>,
    /// The next (older) page: the same `?before=` cursor as the feeds' next links.
    pub older: Option<String>,
    /// The first page, when this is not it.
    pub newest: Option<String>,
    /// `{base_url}/search`: where the search box sends its `q`.
    pub search: String,
    /// What was searched for, on a search's page (else empty).
    pub query: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Alternate {
    /// The MIME type.
    #[serde(rename = "type")]
    pub mime_type: String,
    /// The view's title with the format ("News (Atom)").
    pub title: String,
    /// The format alone ("Atom").
    pub label: String,
    pub href: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct NavLink {
    pub title: String,
    pub href: String,
}

/// One entry as the page shows it.
#[derive(Clone, Debug, Serialize)]
pub struct RiverEntry {
    pub title: String,
    pub link: Option<String>,
    pub source: RiverSource,
    /// RFC 3339, for `<time datetime>`, and as read.
    pub date: String,
    pub date_text: String,
    pub authors: Vec<String>,
    /// Plain text: the start of the summary (else the content).
    pub excerpt: String,
    /// Sanitised HTML: the content (else the summary).
    pub content: Option<String>,
    /// Whether the content says more than the excerpt (else the content is shown as it is,
    /// not behind the excerpt).
    pub expands: bool,
    pub enclosures: Vec<Media>,
}

/// Where an entry came from.
#[derive(Clone, Debug, Serialize)]
pub struct RiverSource {
    pub name: String,
    pub title: String,
    /// Its home page (else its feed).
    pub site: Option<String>,
    /// Its view on this site.
    pub view: String,
}

impl RiverSource {
    /// Source `name` as its entries show it: by its attribution's title (by its name when
    /// there is none), linking to its home page (else its feed), and its view under `base`.
    pub fn new(name: &str, info: Option<&crate::render::SourceInfo>, base: &str) -> RiverSource {
        RiverSource {
            name: name.to_string(),
            title: info.map_or_else(|| name.to_string(), |i| i.title.clone()),
            site: info.map(|i| i.link.clone().unwrap_or_else(|| i.url.clone())),
            view: format!("{base}/sources/{name}"),
        }
    }
}

/// An enclosure: `kind` is "audio", "video" or "other".
#[derive(Clone, Debug, Serialize)]
pub struct Media {
    pub url: String,
    #[serde(rename = "type")]
    pub mime_type: Option<String>,
    pub kind: &'static str,
    /// The file's name in its URL, else the URL.
    pub name: String,
    /// "12.3 MB", when the feed gave a length.
    pub size: Option<String>,
}

impl RiverEntry {
    /// The entry as published (`Entry::for_publishing` applied), from `source`.
    pub fn new(e: &Entry, source: RiverSource) -> RiverEntry {
        let text = |s: &str| xml_text(s).into_owned();
        let full = e.content.as_deref().or(e.summary.as_deref());
        let excerpt_from = e.summary.as_deref().or(e.content.as_deref()).unwrap_or("");
        let excerpt_text = excerpt(&plain_text(excerpt_from, true));
        let expands = full.is_some_and(|f| plain_text(f, true) != excerpt_text);
        RiverEntry {
            title: text(&e.title),
            link: e.link.clone(),
            source,
            date: e
                .sort_time()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            date_text: date_text(e.sort_time()),
            authors: e.authors.iter().map(|p| text(&p.name)).collect(),
            excerpt: excerpt_text,
            content: full.map(text),
            expands,
            enclosures: e.enclosures.iter().map(media).collect(),
        }
    }
}

fn date_text(t: DateTime<Utc>) -> String {
    t.format("%-d %b %Y, %H:%M UTC").to_string()
}

/// The first [`EXCERPT_CHARS`] characters of `text`, cut at a word, with "…" when cut.
fn excerpt(text: &str) -> String {
    if text.chars().count() <= EXCERPT_CHARS {
        return text.to_string();
    }
    let cut: String = text.chars().take(EXCERPT_CHARS).collect();
    let at_word = match cut.rfind(' ') {
        Some(i) if i > EXCERPT_CHARS / 2 => &cut[..i],
        _ => &cut,
    };
    format!("{}…", at_word.trim_end())
}

fn media(m: &crate::model::Enclosure) -> Media {
    let kind = match m.mime_type.as_deref() {
        Some(t) if t.starts_with("audio/") => "audio",
        Some(t) if t.starts_with("video/") => "video",
        _ => "other",
    };
    let name = url::Url::parse(&m.url)
        .ok()
        .and_then(|u| {
            u.path_segments()
                .and_then(|mut s| s.next_back().map(str::to_string))
        })
        .filter(|n| !n.is_empty())
        .map(|n| percent_decode(&n))
        .unwrap_or_else(|| m.url.clone());
    Media {
        url: m.url.clone(),
        mime_type: m.mime_type.clone(),
        kind,
        name,
        size: m.length.filter(|n| *n > 0).map(size_text),
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| xml_text(&v).into_owned())
        .unwrap_or_else(|| s.to_string())
}

fn size_text(n: u64) -> String {
    const UNITS: &[&str] = &["bytes", "KB", "MB", "GB", "TB"];
    let mut size = n as f64;
    let mut unit = 0;
    while size >= 1000.0 && unit + 1 < UNITS.len() {
        size /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} bytes")
    } else {
        format!("{size:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_cut_at_a_word() {
        let long = "word ".repeat(100);
        let e = excerpt(long.trim());
        assert!(e.ends_with("word…"), "{e}");
        assert!(e.chars().count() <= EXCERPT_CHARS + 1);
        assert_eq!(excerpt("short"), "short");
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(size_text(512), "512 bytes");
        assert_eq!(size_text(12_345_678), "12.3 MB");
    }

    #[test]
    fn a_broken_override_names_its_file_and_line() {
        let err = environment(&[("entry.html".into(), "<p>\n{% if x %}\n".into())])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.starts_with("entry.html:"), "{err}");
        assert!(err.contains("syntax error"), "{err}");
    }
}
