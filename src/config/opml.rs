//! OPML subscriptions read and added to `feeds.toml` ([`super::edit`]: toml_edit, so the file
//! keeps its comments and layout). (The export is [`crate::render::opml`].)

use quick_xml::events::Event;

use super::edit::{EditError, NewSource, add_sources};

/// Why an OPML file cannot be read or its subscriptions cannot be added to the config. The
/// message includes the underlying error.
#[derive(Debug, thiserror::Error)]
pub enum OpmlError {
    #[error("not a readable OPML file: {0}")]
    Unreadable(quick_xml::Error),
    #[error(transparent)]
    Edit(#[from] EditError),
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
pub type Imported = super::edit::Added;

/// Appends the outlines that are not in `config_text` yet as `[[source]]` tables (named by
/// readable slugs of their titles), keeping everything else in the file as it was. Returns
/// the new text.
pub fn import(config_text: &str, outlines: &[Outline]) -> Result<(String, Imported), OpmlError> {
    let new: Vec<NewSource> = outlines
        .iter()
        .map(|o| NewSource {
            name: None,
            title: (!o.title.is_empty() && o.title != o.xml_url).then(|| o.title.clone()),
            url: o.xml_url.clone(),
            tags: o.categories.clone(),
            select: None,
        })
        .collect();
    Ok(add_sources(config_text, &new)?)
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

    #[test]
    fn import_names_are_transliterated_slugs() {
        let opml = r#"<opml version="2.0"><body>
            <outline text="Café Résumé — Blog!" xmlUrl="https://cafe.example/feed"/>
            <outline text="Café Résumé — Blog!" xmlUrl="https://cafe.example/other"/></body></opml>"#;
        let outlines = read(opml).expect("reads");
        let (_, report) = import("", &outlines).expect("imports");
        assert_eq!(report.added, ["cafe-resume-blog", "cafe-resume-blog-2"]);
    }
}
