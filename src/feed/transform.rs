//! Per-source rules applied to a poll's entries before they are stored: include/exclude
//! filters and the title template. No I/O.
//!
//! Filters look at the entry as the feed gave it (the title before any template). A rule
//! with a field looks at that field; one without looks at every field. Content is matched
//! as plain text (tags stripped), so a pattern never matches markup.

use crate::config::{Field, Rule, SourceConfig};
use crate::model::Entry;

/// The texts of one field of an entry.
fn texts(e: &Entry, field: Field) -> Vec<String> {
    match field {
        Field::Title => vec![e.title.clone()],
        Field::Content => e
            .summary
            .iter()
            .chain(e.content.iter())
            .map(|h| crate::feed::text::plain_text(h, true))
            .collect(),
        Field::Link => e.link.iter().cloned().collect(),
        Field::Author => e
            .authors
            .iter()
            .flat_map(|p| std::iter::once(p.name.clone()).chain(p.email.clone()))
            .collect(),
        Field::Category => e.categories.clone(),
    }
}

fn matches(rule: &Rule, e: &Entry) -> bool {
    let fields: &[Field] = match &rule.field {
        Some(f) => std::slice::from_ref(f),
        None => &[
            Field::Title,
            Field::Content,
            Field::Link,
            Field::Author,
            Field::Category,
        ],
    };
    fields
        .iter()
        .any(|f| texts(e, *f).iter().any(|t| rule.pattern.is_match(t)))
}

/// Whether the source's rules let `e` in: some include rule matches (when there are any),
/// and no exclude rule does.
pub fn admits(source: &SourceConfig, e: &Entry) -> bool {
    (source.include.is_empty() || source.include.iter().any(|r| matches(r, e)))
        && !source.exclude.iter().any(|r| matches(r, e))
}

/// Applies the source's filters, then its title template (`source_title` fills
/// `{source}`). Returns the entries to store and how many were filtered out.
pub fn apply(
    source: &SourceConfig,
    source_title: &str,
    entries: Vec<Entry>,
) -> (Vec<Entry>, usize) {
    let before = entries.len();
    let mut kept: Vec<Entry> = entries.into_iter().filter(|e| admits(source, e)).collect();
    let filtered = before - kept.len();
    if let Some(template) = &source.title_template {
        for e in &mut kept {
            e.title = render_title(template, e, &source.name, source_title);
            e.fingerprint = crate::feed::identity::fingerprint(e);
        }
    }
    (kept, filtered)
}

/// Fills a title template (checked by the config: only known placeholders).
pub fn render_title(template: &str, e: &Entry, name: &str, source_title: &str) -> String {
    let mut out = String::with_capacity(template.len() + e.title.len());
    let mut rest = template;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let (c, after) = (rest.as_bytes()[i] as char, &rest[i + 1..]);
        if after.starts_with(c) {
            out.push(c);
            rest = &after[1..];
            continue;
        }
        let Some(end) = after.find('}') else {
            out.push_str(&rest[i..]);
            return out;
        };
        match &after[..end] {
            "title" => out.push_str(&e.title),
            "source" => out.push_str(source_title),
            "name" => out.push_str(name),
            "author" => out.push_str(e.authors.first().map_or("", |p| p.name.as_str())),
            other => {
                out.push('{');
                out.push_str(other);
                out.push('}');
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn source(extra: &str) -> SourceConfig {
        let text = format!("[[source]]\nname = \"s\"\nurl = \"https://s.example/feed\"\n{extra}\n");
        crate::config::parse(&text, Path::new("feeds.toml"))
            .expect("valid")
            .sources
            .remove(0)
    }

    fn entry(title: &str, content: &str, author: &str, categories: &[&str]) -> Entry {
        let url = url::Url::parse("https://s.example/").expect("url");
        let now = chrono::Utc::now();
        let xml = format!(
            r#"<rss version="2.0"><channel><title>S</title><link>https://s.example/</link><description>d</description>
            <item><title>{title}</title><link>https://s.example/{title}</link><description>{content}</description>
            <author>{author}</author>{}</item></channel></rss>"#,
            categories
                .iter()
                .map(|c| format!("<category>{c}</category>"))
                .collect::<String>()
        );
        let parsed = crate::feed::parse::parse_document_limited(xml.as_bytes(), None, &url, 100)
            .expect("parses");
        crate::feed::normalise::normalise(parsed.feed, "s", &url, now)
            .entries
            .remove(0)
    }

    #[test]
    fn include_exclude_and_both() {
        let rust = entry(
            "Rust 2.0 released",
            "&lt;b&gt;big&lt;/b&gt; news",
            "ann@example.org (Ann)",
            &["lang"],
        );
        let sport = entry(
            "Football results",
            "goals",
            "bob@example.org (Bob)",
            &["sport"],
        );
        let ads = entry(
            "Sponsored: Rust hosting",
            "buy",
            "ads@example.org (Ads)",
            &["ad"],
        );
        let all = [&rust, &sport, &ads];
        let kept = |s: &SourceConfig| -> Vec<String> {
            all.iter()
                .filter(|e| admits(s, e))
                .map(|e| e.title.clone())
                .collect()
        };
        assert_eq!(
            kept(&source("include = ['(?i)rust']")),
            ["Rust 2.0 released", "Sponsored: Rust hosting"]
        );
        assert_eq!(
            kept(&source("exclude = ['^Sponsored']")),
            ["Rust 2.0 released", "Football results"]
        );
        assert_eq!(
            kept(&source(
                "include = ['(?i)rust']\nexclude = [{ field = \"category\", pattern = '^ad$' }]"
            )),
            ["Rust 2.0 released"]
        );
        // Fields: content as plain text (no markup), author, link.
        assert_eq!(
            kept(&source(
                "include = [{ field = \"content\", pattern = 'big news' }]"
            )),
            ["Rust 2.0 released"]
        );
        assert!(
            kept(&source(
                "include = [{ field = \"content\", pattern = '<b>' }]"
            ))
            .is_empty()
        );
        assert_eq!(
            kept(&source(
                "include = [{ field = \"author\", pattern = 'Bob' }]"
            )),
            ["Football results"]
        );
        assert_eq!(
            kept(&source(
                "exclude = [{ field = \"link\", pattern = 'Sponsored' }]"
            ))
            .len(),
            2
        );
        // A title rule does not look at the category.
        assert!(
            kept(&source(
                "include = [{ field = \"title\", pattern = '^sport$' }]"
            ))
            .is_empty()
        );
    }

    #[test]
    fn bad_patterns_and_fields_are_reported_with_positions() {
        let text = "[[source]]\nname = \"s\"\nurl = \"https://s.example/feed\"\ninclude = ['(unclosed']\nexclude = [{ field = \"colour\", pattern = 'x' }]\ntitle_template = \"{nope} {title}\"\n";
        let err = crate::config::parse(text, Path::new("feeds.toml"))
            .expect_err("invalid")
            .to_string();
        assert!(
            err.contains(
                "feeds.toml:4:12: include pattern \"(unclosed\" is not a valid regular expression"
            ),
            "{err}"
        );
        assert!(
            err.contains("feeds.toml:5:12: exclude rule field \"colour\" is not one of"),
            "{err}"
        );
        assert!(
            err.contains("feeds.toml:6:18: title_template: unknown placeholder {nope}"),
            "{err}"
        );
    }

    #[test]
    fn title_template_fills_placeholders() {
        let s = source("title_template = \"[{source}] {title} ({author}) {{x}}\"");
        let (kept, filtered) = apply(
            &s,
            "Some Blog",
            vec![entry("Hello", "c", "ann@example.org (Ann)", &[])],
        );
        assert_eq!(filtered, 0);
        assert_eq!(kept[0].title, "[Some Blog] Hello (Ann) {x}");
    }
}
