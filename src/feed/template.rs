//! Title templates (`title_template = "[{source}] {title}"`): parsed and checked once when
//! the config is read, rendered for each new entry. No I/O.
//!
//! A template is text with the placeholders `{title}`, `{source}`, `{name}` and `{author}`;
//! `{{` and `}}` stand for braces.

use std::fmt;
use std::str::FromStr;

use crate::model::Entry;

/// The placeholders a title template may use.
pub const FIELDS: [&str; 4] = ["title", "source", "name", "author"];

/// What is wrong with a template (the config prefixes `title_template: `).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("a lone '}}' (write '}}}}' for a brace)")]
    LoneClose,
    #[error("a '{{' without its '}}' (write '{{{{' for a brace)")]
    Unclosed,
    #[error("unknown placeholder {{{0}}}; use {{title}}, {{source}}, {{name}} or {{author}}")]
    UnknownPlaceholder(String),
}

/// One piece of a template.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    /// The entry's title.
    Title,
    /// The source's title (its `title`, else its feed's, else its name).
    Source,
    /// The source's name.
    Name,
    /// The entry's first author.
    Author,
}

/// A checked title template.
#[derive(Clone, Debug)]
pub struct Template {
    text: String,
    parts: Vec<Part>,
}

impl PartialEq for Template {
    fn eq(&self, other: &Template) -> bool {
        self.text == other.text
    }
}

impl Template {
    /// Parses a template, refusing unbalanced braces and unknown placeholders.
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(i) = rest.find(['{', '}']) {
            literal.push_str(&rest[..i]);
            let (c, after) = (rest.as_bytes()[i] as char, &rest[i + 1..]);
            if after.starts_with(c) {
                literal.push(c);
                rest = &after[1..];
                continue;
            }
            if c == '}' {
                return Err(TemplateError::LoneClose);
            }
            let end = after.find('}').ok_or(TemplateError::Unclosed)?;
            let part = match &after[..end] {
                "title" => Part::Title,
                "source" => Part::Source,
                "name" => Part::Name,
                "author" => Part::Author,
                other => return Err(TemplateError::UnknownPlaceholder(other.to_string())),
            };
            if !literal.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut literal)));
            }
            parts.push(part);
            rest = &after[end + 1..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(Template {
            text: text.to_string(),
            parts,
        })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The title of `e` from the source named `name`, whose title is `source_title`.
    pub fn render(&self, e: &Entry, name: &str, source_title: &str) -> String {
        let mut out = String::with_capacity(self.text.len() + e.title.len());
        for part in &self.parts {
            out.push_str(match part {
                Part::Text(t) => t,
                Part::Title => &e.title,
                Part::Source => source_title,
                Part::Name => name,
                Part::Author => e.authors.first().map_or("", |p| p.name.as_str()),
            });
        }
        out.trim().to_string()
    }
}

impl FromStr for Template {
    type Err = TemplateError;

    fn from_str(s: &str) -> Result<Template, TemplateError> {
        Template::parse(s)
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::rules::tests::entry;

    #[test]
    fn fills_placeholders_and_braces() {
        let t = Template::parse("[{source}] {title} ({author}) {{x}} {name}").expect("valid");
        let e = entry("Hello", "c", "Ann", &[]);
        assert_eq!(
            t.render(&e, "s", "Some Blog"),
            "[Some Blog] Hello (Ann) {x} s"
        );
        let t = Template::parse("  {title}  ").expect("valid");
        assert_eq!(t.render(&e, "s", "S"), "Hello");
    }

    #[test]
    fn refuses_bad_braces_and_placeholders() {
        let err = |t: &str| Template::parse(t).expect_err("invalid").to_string();
        assert_eq!(err("a } b"), "a lone '}' (write '}}' for a brace)");
        assert_eq!(
            err("{title"),
            "a '{' without its '}' (write '{{' for a brace)"
        );
        assert_eq!(
            err("{nope} {title}"),
            "unknown placeholder {nope}; use {title}, {source}, {name} or {author}"
        );
    }
}
