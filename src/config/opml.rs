//! OPML subscriptions read and added to `feeds.toml` with toml_edit, so the file keeps its
//! comments and layout. (The export is [`crate::render::opml`].)

use std::collections::HashSet;

use quick_xml::events::Event;
use url::Url;

use crate::config::is_slug;

/// Why an OPML file cannot be read or its subscriptions cannot be added to the config. The
/// message includes the underlying error.
#[derive(Debug, thiserror::Error)]
pub enum OpmlError {
    #[error("not a readable OPML file: {0}")]
    Unreadable(quick_xml::Error),
    #[error("the config is not valid TOML: {0}")]
    ConfigNotToml(toml_edit::TomlError),
    #[error("`source` in the config is not a list of [[source]] tables")]
    SourceNotTables,
}

/// One subscription read from an OPML file.
#[derive(Clone, Debug, PartialEq)]
pub struct Outline {
    pub title: String,
    pub xml_url: String,
    pub categories: Vec<String>,
}

/// Every `<outline>` with an `xmlUrl`, at any depth; a folder outline's title becomes a
/// category of the feeds inside it.
pub fn read(opml: &str) -> Result<Vec<Outline>, OpmlError> {
    let mut reader = quick_xml::Reader::from_str(opml);
    let mut out = Vec::new();
    let mut folders: Vec<Option<String>> = Vec::new();
    loop {
        let event = reader.read_event().map_err(OpmlError::Unreadable)?;
        let (e, empty) = match event {
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            Event::End(e) => {
                if e.name().into_inner() == "outline" {
                    folders.pop();
                }
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        if e.name().into_inner() != "outline" {
            continue;
        }
        let attr = |name: &str| {
            e.attributes()
                .with_checks(false)
                .flatten()
                .find(|a| a.key.into_inner().eq_ignore_ascii_case(name))
                .map(|a| {
                    html_escape::decode_html_entities(&a.value)
                        .trim()
                        .to_string()
                })
        };
        let title = attr("title").or_else(|| attr("text"));
        match attr("xmlUrl") {
            Some(xml_url) => {
                let mut categories: Vec<String> = folders.iter().flatten().cloned().collect();
                if let Some(c) = attr("category") {
                    categories.extend(c.split([',', '/']).map(str::trim).map(String::from));
                }
                out.push(Outline {
                    title: title.unwrap_or_else(|| xml_url.clone()),
                    xml_url,
                    categories,
                });
                if !empty {
                    folders.push(None);
                }
            }
            None if !empty => folders.push(title),
            None => {}
        }
    }
    Ok(out)
}

/// What an import did.
#[derive(Debug, Default, PartialEq)]
pub struct Imported {
    pub added: Vec<String>,
    /// Already in the config (same URL), or not an http(s) URL.
    pub skipped: Vec<String>,
}

/// Appends the outlines that are not in `config_text` yet as `[[source]]` tables, keeping
/// everything else in the file as it was. Returns the new text.
pub fn import(config_text: &str, outlines: &[Outline]) -> Result<(String, Imported), OpmlError> {
    let mut doc: toml_edit::DocumentMut = config_text.parse().map_err(OpmlError::ConfigNotToml)?;
    let mut report = Imported::default();
    let mut names: HashSet<String> = HashSet::new();
    let mut urls: HashSet<String> = HashSet::new();
    if let Some(sources) = doc.get("source").and_then(|s| s.as_array_of_tables()) {
        for t in sources.iter() {
            if let Some(n) = t.get("name").and_then(|v| v.as_str()) {
                names.insert(n.to_string());
            }
            if let Some(u) = t
                .get("url")
                .and_then(|v| v.as_str())
                .and_then(|u| Url::parse(u).ok())
            {
                urls.insert(u.to_string());
            }
        }
    }
    if doc.get("source").is_none() {
        doc.insert("source", toml_edit::Item::ArrayOfTables(Default::default()));
    }
    let Some(sources) = doc
        .get_mut("source")
        .and_then(|s| s.as_array_of_tables_mut())
    else {
        return Err(OpmlError::SourceNotTables);
    };
    for o in outlines {
        let url = match Url::parse(&o.xml_url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => u,
            _ => {
                report.skipped.push(o.xml_url.clone());
                continue;
            }
        };
        if !urls.insert(url.to_string()) {
            report.skipped.push(o.xml_url.clone());
            continue;
        }
        let name = unique_slug(&o.title, &url, &names);
        names.insert(name.clone());
        let mut t = toml_edit::Table::new();
        t.insert("name", toml_edit::value(name.clone()));
        t.insert("url", toml_edit::value(url.as_str()));
        if !o.title.is_empty() && o.title != o.xml_url {
            t.insert("title", toml_edit::value(o.title.clone()));
        }
        let tags: Vec<String> = o
            .categories
            .iter()
            .map(|c| slug(c))
            .filter(|c| is_slug(c))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        if !tags.is_empty() {
            let mut arr = toml_edit::Array::new();
            for tag in tags {
                arr.push(tag);
            }
            t.insert("tags", toml_edit::value(arr));
        }
        sources.push(t);
        report.added.push(name);
    }
    Ok((doc.to_string(), report))
}

/// A slug from a title (or the URL's host when the title gives none), made unique.
fn unique_slug(title: &str, url: &Url, taken: &HashSet<String>) -> String {
    let mut base = slug(title);
    if !is_slug(&base) {
        base = slug(url.host_str().unwrap_or("feed"));
    }
    if !is_slug(&base) {
        base = "feed".into();
    }
    base.truncate(56);
    let mut name = base.clone();
    let mut n = 2;
    while taken.contains(&name) {
        name = format!("{base}-{n}");
        n += 1;
    }
    name
}

fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.to_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_keeps_comments_and_skips_known_urls() {
        let config = "# my feeds\n[server]\nlisten = \"127.0.0.1:8080\" # here\n\n[[source]]\nname = \"rust\"\nurl = \"https://blog.rust-lang.org/feed.xml\"\n";
        let opml = r#"<opml version="2.0"><body>
            <outline text="Tech"><outline text="Rust Blog" xmlUrl="https://blog.rust-lang.org/feed.xml"/>
            <outline title="LWN &amp; more" xmlUrl="https://lwn.net/headlines/rss" category="linux,news"/></outline>
            <outline text="x" xmlUrl="ftp://nope/"/></body></opml>"#;
        let outlines = read(opml).expect("reads");
        assert_eq!(outlines.len(), 3);
        let (text, report) = import(config, &outlines).expect("imports");
        assert_eq!(report.added, ["lwn-more"]);
        assert_eq!(report.skipped.len(), 2);
        assert!(
            text.starts_with("# my feeds\n[server]\nlisten = \"127.0.0.1:8080\" # here\n"),
            "{text}"
        );
        let c = crate::config::parse(&text, std::path::Path::new("feeds.toml")).expect("valid");
        let lwn = &c.sources[1];
        assert_eq!(lwn.title.as_deref(), Some("LWN & more"));
        assert_eq!(lwn.tags, ["linux", "news", "tech"]);
    }
}
