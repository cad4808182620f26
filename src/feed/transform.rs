//! What a poll does to a source's entries before they are stored: its include/exclude
//! rules ([`Rules`]), then its title template ([`Template`]). No I/O.

use crate::feed::rules::Rules;
use crate::feed::template::Template;
use crate::model::Entry;

/// A source's transforms, as its config gives them.
#[derive(Clone, Copy, Debug)]
pub struct Transform<'a> {
    /// The source's name (fills `{name}`).
    pub name: &'a str,
    /// Which entries are kept.
    pub rules: &'a Rules,
    /// Rewrites the titles of the entries kept.
    pub title_template: Option<&'a Template>,
}

impl Transform<'_> {
    /// Applies the rules, then the title template (`source_title` fills `{source}`).
    /// Returns the entries to store and how many were filtered out.
    pub fn apply(&self, source_title: &str, entries: Vec<Entry>) -> (Vec<Entry>, usize) {
        let before = entries.len();
        let mut kept: Vec<Entry> = entries
            .into_iter()
            .filter(|e| self.rules.admits(e))
            .collect();
        let filtered = before - kept.len();
        if let Some(template) = self.title_template {
            for e in &mut kept {
                e.title = template.render(e, self.name, source_title);
                e.fingerprint = crate::feed::identity::fingerprint(e);
            }
        }
        (kept, filtered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::rules::tests::entry;
    use crate::feed::rules::{Field, Rule};

    #[test]
    fn filters_then_retitles() {
        let rules = Rules {
            include: Vec::new(),
            exclude: vec![Rule {
                fields: Field::EVERY,
                pattern: regex::Regex::new("^Sponsored").expect("valid"),
            }],
        };
        let template = Template::parse("[{source}] {title} ({author}) {{x}}").expect("valid");
        let t = Transform {
            name: "s",
            rules: &rules,
            title_template: Some(&template),
        };
        let hello = entry("Hello", "c", "Ann", &[]);
        let old_fingerprint = hello.fingerprint;
        let (kept, filtered) = t.apply(
            "Some Blog",
            vec![hello, entry("Sponsored: buy", "c", "Ads", &[])],
        );
        assert_eq!(filtered, 1);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].title, "[Some Blog] Hello (Ann) {x}");
        assert_ne!(kept[0].fingerprint, old_fingerprint);
    }
}
