//! Adding `[[source]]` tables to `feeds.toml` with toml_edit, so the file keeps its comments
//! and layout, and the readable slugs new sources are named by. Used by `import-opml`
//! ([`super::opml`]) and `tributary add`.

use std::collections::HashSet;

use url::Url;

use crate::config::is_slug;
use crate::feed::scrape::Selectors;

/// Why new sources cannot be added to the config text.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("the config is not valid TOML: {0}")]
    ConfigNotToml(toml_edit::TomlError),
    #[error("`source` in the config is not a list of [[source]] tables")]
    SourceNotTables,
}

/// A source to add.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NewSource {
    /// The name to give it; `None`: a unique slug of `title` (else of the URL's host).
    pub name: Option<String>,
    /// Written as `title` when `Some`; also what the name is made from.
    pub title: Option<String>,
    pub url: String,
    /// Made into slugs; those that cannot be one are left out.
    pub tags: Vec<String>,
    /// A page read by CSS selectors (`kind = "html"` and a `[source.select]` table); `None`
    /// for a feed.
    pub select: Option<Selectors>,
}

/// What adding did.
#[derive(Debug, Default, PartialEq)]
pub struct Added {
    /// The names of the sources added, in order.
    pub added: Vec<String>,
    /// URLs not added: already in the config (same URL), or not http(s).
    pub skipped: Vec<String>,
}

/// Appends the sources whose URL is not in `config_text` yet as `[[source]]` tables, keeping
/// everything else in the file as it was. Returns the new text.
pub fn add_sources(config_text: &str, new: &[NewSource]) -> Result<(String, Added), EditError> {
    let mut doc: toml_edit::DocumentMut = config_text.parse().map_err(EditError::ConfigNotToml)?;
    let mut report = Added::default();
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
        return Err(EditError::SourceNotTables);
    };
    for s in new {
        let url = match Url::parse(&s.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => u,
            _ => {
                report.skipped.push(s.url.clone());
                continue;
            }
        };
        if !urls.insert(url.to_string()) {
            report.skipped.push(s.url.clone());
            continue;
        }
        let name = match &s.name {
            Some(n) => n.clone(),
            None => unique_slug(s.title.as_deref().unwrap_or_default(), &url, &names),
        };
        names.insert(name.clone());
        let mut t = toml_edit::Table::new();
        t.insert("name", toml_edit::value(name.clone()));
        t.insert("url", toml_edit::value(url.as_str()));
        if let Some(title) = s.title.as_ref().filter(|t| !t.is_empty()) {
            t.insert("title", toml_edit::value(title.clone()));
        }
        if let Some(select) = &s.select {
            t.insert("kind", toml_edit::value("html"));
            if select.timezone != chrono_tz::UTC {
                t.insert("timezone", toml_edit::value(select.timezone.name()));
            }
            t.insert("select", toml_edit::Item::Table(select_table(select)));
        }
        let tags: Vec<String> = s
            .tags
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
    let mut text = doc.to_string();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    Ok((text, report))
}

/// `[source.select]`: `items`, then each field that has a selector, then `date_format`.
fn select_table(s: &Selectors) -> toml_edit::Table {
    let mut t = toml_edit::Table::new();
    t.insert("items", toml_edit::value(s.items.clone()));
    for (field, pick) in s.fields() {
        if let Some(pick) = pick {
            t.insert(field.name(), toml_edit::value(pick.to_string()));
        }
    }
    if let Some(f) = &s.date_format {
        t.insert("date_format", toml_edit::value(f.clone()));
    }
    t
}

/// A slug from a title (or the URL's host when the title gives none), unique among `taken`.
pub fn unique_slug(title: &str, url: &Url, taken: &HashSet<String>) -> String {
    let mut base = slug(title);
    if !is_slug(&base) {
        base = slug(url.host_str().unwrap_or("feed"));
    }
    if !is_slug(&base) {
        base = "feed".into();
    }
    if base.len() > 56 {
        base.truncate(56);
        base = base.trim_end_matches(['-', '_']).to_string();
    }
    let mut name = base.clone();
    let mut n = 2;
    while taken.contains(&name) {
        name = format!("{base}-{n}");
        n += 1;
    }
    name
}

/// A readable slug: transliterated to ASCII (deunicode: "Café Résumé — Blog!" becomes
/// `cafe-resume-blog`, "Ελληνικά" `ellenika`), lower case, runs of anything else one `-`.
/// May be empty (nothing transliterates) or not start with a letter or digit: check with
/// [`is_slug`].
pub fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in deunicode::deunicode(s).to_lowercase().chars() {
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
    fn slugs_are_transliterated() {
        assert_eq!(slug("Café Résumé — Blog!"), "cafe-resume-blog");
        assert_eq!(slug("Ελληνικά νέα"), "ellenika-nea");
        assert_eq!(slug("Straße & Ærø"), "strasse-aero");
        assert_eq!(slug("  --  "), "");
        let taken: HashSet<String> = ["cafe-resume-blog".to_string()].into();
        let url = Url::parse("https://example.org/feed").expect("url");
        assert_eq!(
            unique_slug("Café Résumé — Blog!", &url, &taken),
            "cafe-resume-blog-2"
        );
        assert_eq!(unique_slug("", &url, &taken), "example-org");
        assert_eq!(unique_slug("·", &url, &taken), "example-org");
        assert!(is_slug(&unique_slug(&"é".repeat(200), &url, &taken)));
    }

    #[test]
    fn an_explicit_name_is_kept_and_known_urls_are_skipped() {
        let config = "# mine\n[[source]]\nname = \"a\"\nurl = \"https://a.example/feed\"\n";
        let new = [
            NewSource {
                name: Some("b".into()),
                url: "https://b.example/feed".into(),
                tags: vec!["Tech News".into()],
                ..Default::default()
            },
            NewSource {
                url: "https://a.example/feed".into(),
                ..Default::default()
            },
        ];
        let (text, report) = add_sources(config, &new).expect("adds");
        assert_eq!(report.added, ["b"]);
        assert_eq!(report.skipped, ["https://a.example/feed"]);
        assert!(text.starts_with("# mine\n"), "{text}");
        assert!(text.ends_with("tags = [\"tech-news\"]\n"), "{text}");
        let c = crate::config::parse(&text, std::path::Path::new("feeds.toml")).expect("valid");
        assert_eq!(c.sources[1].tags, ["tech-news"]);
    }

    #[test]
    fn a_page_source_gets_its_kind_and_select_table() {
        use crate::feed::scrape::{Pick, SourceKind};
        let config = "# mine\n[[source]]\nname = \"a\"\nurl = \"https://a.example/feed\"\n";
        let mut select = Selectors::items("tr.athing");
        select.title = Some(Pick::css("span.titleline > a"));
        select.date = Some(Pick::css("span.age@title"));
        let new = NewSource {
            name: Some("hn".into()),
            url: "https://news.example/".into(),
            tags: vec!["news".into()],
            select: Some(select.clone()),
            ..Default::default()
        };
        let (text, report) = add_sources(config, &[new]).expect("adds");
        assert_eq!(report.added, ["hn"]);
        assert!(
            text.ends_with(concat!(
                "[[source]]\nname = \"hn\"\nurl = \"https://news.example/\"\nkind = \"html\"\n",
                "tags = [\"news\"]\n\n[source.select]\nitems = \"tr.athing\"\n",
                "title = \"span.titleline > a\"\ndate = \"span.age@title\"\n"
            )),
            "{text}"
        );
        let c = crate::config::parse(&text, std::path::Path::new("feeds.toml")).expect("valid");
        assert_eq!(c.sources[1].kind, SourceKind::Html(select));
    }
}
