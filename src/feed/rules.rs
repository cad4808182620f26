//! Include/exclude rules: which entries a source stores and a named feed publishes. One
//! implementation with one meaning, built by the config for `[[source]]` filters and
//! `[[feed]]` patterns alike. No I/O.
//!
//! A rule is a pattern and the fields it looks at; it matches an entry when the pattern
//! matches the text of any of those fields. Content (summary and content) is matched as
//! plain text (tags stripped, entities decoded), so a pattern never matches markup. Rules
//! look at the entry as the feed gave it (the title before any template).

use std::cell::OnceCell;

use crate::model::Entry;

/// The fields a rule can look at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Title,
    /// The summary and the content, as plain text.
    Content,
    Link,
    /// Every author's name and email.
    Author,
    /// Every category.
    Category,
}

impl Field {
    /// Each field with the name `feeds.toml` gives it.
    pub const ALL: [(&'static str, Field); 5] = [
        ("title", Field::Title),
        ("content", Field::Content),
        ("link", Field::Link),
        ("author", Field::Author),
        ("category", Field::Category),
    ];

    /// Every field: what a source's rule without a field looks at.
    pub const EVERY: &'static [Field] = &[
        Field::Title,
        Field::Content,
        Field::Link,
        Field::Author,
        Field::Category,
    ];

    /// What a named feed's pattern looks at: title, summary, content and categories.
    pub const TEXT: &'static [Field] = &[Field::Title, Field::Content, Field::Category];

    /// This field alone.
    pub fn only(self) -> &'static [Field] {
        match self {
            Field::Title => &[Field::Title],
            Field::Content => &[Field::Content],
            Field::Link => &[Field::Link],
            Field::Author => &[Field::Author],
            Field::Category => &[Field::Category],
        }
    }
}

/// A pattern matched against some fields of an entry.
#[derive(Clone, Debug)]
pub struct Rule {
    pub fields: &'static [Field],
    pub pattern: regex::Regex,
}

impl PartialEq for Rule {
    fn eq(&self, other: &Rule) -> bool {
        self.fields == other.fields && self.pattern.as_str() == other.pattern.as_str()
    }
}

/// An entry is admitted when some include rule matches it (or there are none) and no
/// exclude rule does.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rules {
    pub include: Vec<Rule>,
    pub exclude: Vec<Rule>,
}

impl Rules {
    /// Whether there are no rules at all (every entry is admitted).
    pub fn is_empty(&self) -> bool {
        self.include.is_empty() && self.exclude.is_empty()
    }

    /// Whether the rules let `e` in.
    pub fn admits(&self, e: &Entry) -> bool {
        let texts = Texts {
            entry: e,
            content: OnceCell::new(),
        };
        (self.include.is_empty() || self.include.iter().any(|r| texts.matches(r)))
            && !self.exclude.iter().any(|r| texts.matches(r))
    }
}

/// An entry's texts, its content made plain once for all rules.
struct Texts<'a> {
    entry: &'a Entry,
    content: OnceCell<Vec<String>>,
}

impl Texts<'_> {
    fn matches(&self, rule: &Rule) -> bool {
        let e = self.entry;
        let hit = |t: &str| rule.pattern.is_match(t);
        rule.fields.iter().any(|field| match field {
            Field::Title => hit(&e.title),
            Field::Content => self
                .content
                .get_or_init(|| {
                    e.summary
                        .iter()
                        .chain(e.content.iter())
                        .map(|h| crate::feed::text::plain_text(h, true))
                        .collect()
                })
                .iter()
                .any(|t| hit(t)),
            Field::Link => e.link.as_deref().is_some_and(hit),
            Field::Author => e
                .authors
                .iter()
                .any(|p| hit(&p.name) || p.email.as_deref().is_some_and(hit)),
            Field::Category => e.categories.iter().any(|c| hit(c)),
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::{EntryKey, Person};

    /// An entry with these texts (content as HTML).
    pub(crate) fn entry(title: &str, content: &str, author: &str, categories: &[&str]) -> Entry {
        let now = chrono::Utc::now();
        Entry {
            key: EntryKey([0; 16]),
            source: "s".into(),
            guid: None,
            title: title.into(),
            link: Some(format!("https://s.example/{title}")),
            summary: None,
            content: Some(content.into()),
            authors: vec![Person {
                name: author.into(),
                email: Some(format!("{}@example.org", author.to_lowercase())),
                uri: None,
            }],
            categories: categories.iter().map(|c| c.to_string()).collect(),
            enclosures: Vec::new(),
            comments: None,
            thumbnail: None,
            published: None,
            updated: now,
            first_seen: now,
            fingerprint: [0; 16],
            article: None,
            duplicate_of: None,
            also_in: Vec::new(),
            full_text: None,
            full_content: None,
        }
    }

    fn rule(field: Option<Field>, pattern: &str) -> Rule {
        Rule {
            fields: field.map_or(Field::EVERY, Field::only),
            pattern: regex::Regex::new(pattern).expect("valid"),
        }
    }

    fn rules(include: &[(Option<Field>, &str)], exclude: &[(Option<Field>, &str)]) -> Rules {
        Rules {
            include: include.iter().map(|(f, p)| rule(*f, p)).collect(),
            exclude: exclude.iter().map(|(f, p)| rule(*f, p)).collect(),
        }
    }

    #[test]
    fn include_exclude_and_both() {
        let rust = entry("Rust 2.0 released", "<b>big</b> news", "Ann", &["lang"]);
        let sport = entry("Football results", "goals", "Bob", &["sport"]);
        let ads = entry("Sponsored: Rust hosting", "buy", "Ads", &["ad"]);
        let all = [&rust, &sport, &ads];
        let kept = |r: &Rules| -> Vec<String> {
            all.iter()
                .filter(|e| r.admits(e))
                .map(|e| e.title.clone())
                .collect()
        };
        assert_eq!(kept(&Rules::default()).len(), 3);
        assert_eq!(
            kept(&rules(&[(None, "(?i)rust")], &[])),
            ["Rust 2.0 released", "Sponsored: Rust hosting"]
        );
        assert_eq!(
            kept(&rules(&[], &[(None, "^Sponsored")])),
            ["Rust 2.0 released", "Football results"]
        );
        assert_eq!(
            kept(&rules(
                &[(None, "(?i)rust")],
                &[(Some(Field::Category), "^ad$")]
            )),
            ["Rust 2.0 released"]
        );
        // Fields: content as plain text (no markup), author, link.
        assert_eq!(
            kept(&rules(&[(Some(Field::Content), "big news")], &[])),
            ["Rust 2.0 released"]
        );
        assert!(kept(&rules(&[(Some(Field::Content), "<b>")], &[])).is_empty());
        assert!(kept(&rules(&[(None, "<b>")], &[])).is_empty());
        assert_eq!(
            kept(&rules(&[(Some(Field::Author), "bob@")], &[])),
            ["Football results"]
        );
        assert_eq!(
            kept(&rules(&[], &[(Some(Field::Link), "Sponsored")])).len(),
            2
        );
        // A title rule does not look at the category.
        assert!(kept(&rules(&[(Some(Field::Title), "^sport$")], &[])).is_empty());
    }

    #[test]
    fn text_fields_leave_out_link_and_author() {
        let e = entry(
            "Hello",
            "<a href=\"https://x.example/\">there</a>",
            "Ann",
            &["c"],
        );
        let text = |p: &str| Rules {
            include: vec![Rule {
                fields: Field::TEXT,
                pattern: regex::Regex::new(p).expect("valid"),
            }],
            exclude: Vec::new(),
        };
        assert!(text("there").admits(&e));
        assert!(text("^c$").admits(&e));
        assert!(!text("href").admits(&e));
        assert!(!text("Ann").admits(&e));
        assert!(!text("s.example").admits(&e));
    }
}
