//! The search query language: what a user types in the search box, parsed into a
//! [`Query`] the index can run.
//!
//! - Words separated by whitespace must all match: `sled fjall`.
//! - `"quoted phrases"` match as a run of words: `"write ahead log"`.
//! - `-` excludes a word, phrase or field term: `-crypto`, `-"hello world"`, `-title:foo`.
//! - `OR` (uppercase; `or` is a word) makes the terms on each side alternatives:
//!   `a b OR c` is a AND (b OR c); `a OR b OR c` is one group. Exclusions and dates
//!   cannot be alternatives.
//! - `title:`, `author:`, `category:`, `source:`, `tag:` and `host:` look in one field;
//!   the value is a word or a phrase (`title:"two words"`). Names are case-insensitive.
//!   Any other all-letter name before a colon is an error (a typo would silently find
//!   nothing); anything else with a colon (`http://x.org/a`, `12:30`) is a word.
//! - `after:DATE` (on or after) and `before:DATE` (strictly before), each at most once;
//!   DATE is `YYYY-MM-DD` (that day's start, UTC) or an RFC 3339 time.
//!
//! Every input may be hostile: the query is bounded ([`MAX_QUERY_BYTES`], [`MAX_TERMS`])
//! and every mistake is a [`QueryError`] saying what is wrong, never a panic. Control
//! characters separate terms like whitespace; a quote starts a phrase only at the start of
//! a term (`5'11"` is a word), and a closing quote ends its term. Text is kept as typed:
//! lowercasing and splitting words (`c++`, `don't`) is the index tokenizer's job.
//! [`Query::canonical`] writes a query back in one normal form, the cache key of its results.

use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, Utc};

/// The longest query accepted, in bytes (checked before parsing).
pub const MAX_QUERY_BYTES: usize = 1024;
/// The most terms a query may have: positive terms (each alternative of an `OR`),
/// exclusions and dates together.
pub const MAX_TERMS: usize = 32;

/// A parsed query: every group must match, no exclusion may, within the dates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// AND of groups; each group is one or more alternatives (OR).
    pub groups: Vec<Vec<Term>>,
    /// Terms no matching entry may have.
    pub exclude: Vec<Term>,
    /// Inclusive lower bound.
    pub after: Option<DateTime<Utc>>,
    /// Exclusive upper bound.
    pub before: Option<DateTime<Utc>>,
}

/// One word or phrase to look for, in one field or all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    /// Where to look.
    pub field: Field,
    /// The word, or the phrase's inner text without the quotes, as typed.
    pub text: String,
    /// Whether `text` was quoted: its words must appear together, in order.
    pub phrase: bool,
}

/// Where a term is looked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// Everywhere (no prefix).
    Any,
    Title,
    Author,
    Category,
    Source,
    Tag,
    Host,
}

impl Field {
    /// The prefix's name without its colon (`title` for `title:`); `None` for [`Field::Any`].
    pub fn name(self) -> Option<&'static str> {
        match self {
            Field::Any => None,
            Field::Title => Some("title"),
            Field::Author => Some("author"),
            Field::Category => Some("category"),
            Field::Source => Some("source"),
            Field::Tag => Some("tag"),
            Field::Host => Some("host"),
        }
    }

    /// The field a lowercase prefix name stands for.
    fn from_name(name: &str) -> Option<Field> {
        match name {
            "title" => Some(Field::Title),
            "author" => Some(Field::Author),
            "category" => Some(Field::Category),
            "source" => Some(Field::Source),
            "tag" => Some(Field::Tag),
            "host" => Some(Field::Host),
            _ => None,
        }
    }
}

/// Why a query cannot be run; each message names the problem for the user.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum QueryError {
    #[error("the query is {bytes} bytes; at most {max} are allowed", max = MAX_QUERY_BYTES)]
    TooLong { bytes: usize },
    #[error("the query is empty")]
    Empty,
    /// `text` runs from the opening quote to the end of the query.
    #[error("unclosed quote: {text}")]
    UnclosedQuote { text: String },
    #[error("a phrase needs something to find between its quotes")]
    EmptyPhrase,
    /// `name` as typed.
    #[error(
        "unknown field `{name}:`; the fields are title:, author:, category:, source:, tag:, \
         host:, after:, before:"
    )]
    UnknownField { name: String },
    #[error("`{field}:` needs a word or phrase after it")]
    EmptyValue { field: String },
    #[error("`-` needs a word or phrase after it")]
    LoneMinus,
    #[error("`OR` needs a term on each side")]
    OrWithoutTerm,
    #[error("`OR` cannot join an exclusion; exclude each term on its own")]
    OrWithExclusion,
    #[error("`{bound}:` cannot be joined with `OR`")]
    DateInOr { bound: &'static str },
    #[error("`{bound}:` cannot be excluded; use the other bound instead")]
    DateExcluded { bound: &'static str },
    #[error("`{bound}:` may appear only once")]
    DuplicateDate { bound: &'static str },
    #[error("bad date in {bound}:{value}: expected YYYY-MM-DD or an RFC 3339 time")]
    BadDate { bound: &'static str, value: String },
    #[error("after:{after} is not before before:{before}, so nothing can match")]
    EmptyRange { after: String, before: String },
    #[error("the query has {terms} terms; at most {max} are allowed", max = MAX_TERMS)]
    TooManyTerms { terms: usize },
    #[error("a query needs at least one word to find, not only exclusions")]
    OnlyExclusions,
    /// A word or phrase the index could never find (it is made of words).
    #[error("`{text}` has no letters or digits to search for")]
    NoWords { text: String },
}

/// Parses what a user typed into a [`Query`].
pub fn parse(input: &str) -> Result<Query, QueryError> {
    if input.len() > MAX_QUERY_BYTES {
        return Err(QueryError::TooLong { bytes: input.len() });
    }
    if input.chars().all(is_separator) {
        return Err(QueryError::Empty);
    }
    let items = items(input)?;
    let terms = items
        .iter()
        .filter(|item| !matches!(item, Item::Or))
        .count();
    if terms > MAX_TERMS {
        return Err(QueryError::TooManyTerms { terms });
    }
    let mut query = Query::default();
    for (i, item) in items.iter().enumerate() {
        let previous = i.checked_sub(1).and_then(|p| items.get(p));
        match item {
            Item::Or => {
                for side in [previous, items.get(i + 1)] {
                    match side {
                        None | Some(Item::Or) => return Err(QueryError::OrWithoutTerm),
                        Some(Item::Excluded(_)) => return Err(QueryError::OrWithExclusion),
                        Some(Item::Date(bound, _)) => return Err(QueryError::DateInOr { bound }),
                        Some(Item::Text(_)) => {}
                    }
                }
            }
            Item::Text(term) => match (previous, query.groups.last_mut()) {
                (Some(Item::Or), Some(group)) => group.push(term.clone()),
                _ => query.groups.push(vec![term.clone()]),
            },
            Item::Excluded(term) => query.exclude.push(term.clone()),
            Item::Date(bound, at) => {
                let slot = if *bound == AFTER {
                    &mut query.after
                } else {
                    &mut query.before
                };
                if slot.replace(*at).is_some() {
                    return Err(QueryError::DuplicateDate { bound });
                }
            }
        }
    }
    if let (Some(after), Some(before)) = (query.after, query.before)
        && after >= before
    {
        let (after, before) = (stamp(after), stamp(before));
        return Err(QueryError::EmptyRange { after, before });
    }
    if query.groups.is_empty() && query.after.is_none() && query.before.is_none() {
        return Err(QueryError::OnlyExclusions);
    }
    // Text fields are searched by their words: a term with none would match nothing.
    for term in query.groups.iter().flatten().chain(&query.exclude) {
        let worded = matches!(
            term.field,
            Field::Any | Field::Title | Field::Author | Field::Category
        );
        if worded && !term.text.chars().any(char::is_alphanumeric) {
            return Err(QueryError::NoWords {
                text: term.text.clone(),
            });
        }
    }
    Ok(query)
}

impl Query {
    /// The query in one normal form, used as a cache key: groups in order (alternatives
    /// joined by ` OR `), then exclusions, then `after:` and `before:` as UTC RFC 3339
    /// times (`after:2026-01-01T00:00:00Z`). Parsing it gives back an equal query, unless
    /// the longer form passes [`MAX_QUERY_BYTES`] (dates are written in full).
    pub fn canonical(&self) -> String {
        let groups = self.groups.iter().map(|group| {
            let alternatives: Vec<String> = group.iter().map(Term::written).collect();
            alternatives.join(" OR ")
        });
        let exclude = self
            .exclude
            .iter()
            .map(|term| format!("-{}", term.written()));
        let after = self.after.map(|at| format!("{AFTER}:{}", stamp(at)));
        let before = self.before.map(|at| format!("{BEFORE}:{}", stamp(at)));
        let parts: Vec<String> = groups.chain(exclude).chain(after).chain(before).collect();
        parts.join(" ")
    }
}

impl Term {
    /// The term as it would be typed: a `name:` prefix, quotes around a phrase.
    fn written(&self) -> String {
        let prefix = self.field.name().map(|name| format!("{name}:"));
        let quote = if self.phrase { "\"" } else { "" };
        format!("{}{quote}{}{quote}", prefix.unwrap_or_default(), self.text)
    }
}

const AFTER: &str = "after";
const BEFORE: &str = "before";

/// One item of the query as typed, before its structure is checked.
enum Item {
    /// `OR` between two terms.
    Or,
    /// A word, phrase or field term to find.
    Text(Term),
    /// A term after a `-`.
    Excluded(Term),
    /// `after:` or `before:` (the name) with its time.
    Date(&'static str, DateTime<Utc>),
}

/// Whether `c` separates terms: Unicode whitespace, and control characters.
fn is_separator(c: char) -> bool {
    c.is_whitespace() || c.is_control()
}

/// Whether `rest` (what follows a token) ends the term: a separator or the end.
fn ends_term(rest: &str) -> bool {
    rest.chars().next().is_none_or(is_separator)
}

/// Splits the query into items, in order.
fn items(input: &str) -> Result<Vec<Item>, QueryError> {
    let mut items = Vec::new();
    let mut rest = input.trim_start_matches(is_separator);
    while !rest.is_empty() {
        let (item, tail) = match rest.strip_prefix("OR") {
            Some(tail) if ends_term(tail) => (Item::Or, tail),
            _ => match rest.strip_prefix('-') {
                Some(tail) if ends_term(tail) => return Err(QueryError::LoneMinus),
                Some(tail) => term(tail, true)?,
                None => term(rest, false)?,
            },
        };
        items.push(item);
        rest = tail.trim_start_matches(is_separator);
    }
    Ok(items)
}

/// Reads one term (a word, a phrase, `name:value`) from the start of `s`, which is not
/// empty and does not start with a separator; returns it and what follows.
fn term(s: &str, negated: bool) -> Result<(Item, &str), QueryError> {
    let (mut field, mut value_at) = (Field::Any, s);
    if let Some((name, rest)) = s.split_once(':')
        && !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_alphabetic())
        && !rest.starts_with("//")
    {
        let lower = name.to_ascii_lowercase();
        if let Some(bound) = [AFTER, BEFORE].into_iter().find(|bound| *bound == lower) {
            if negated {
                return Err(QueryError::DateExcluded { bound });
            }
            let (text, _, tail) = value(rest, bound)?;
            let at = parse_date(&text).ok_or(QueryError::BadDate { bound, value: text })?;
            return Ok((Item::Date(bound, at), tail));
        }
        let Some(known) = Field::from_name(&lower) else {
            return Err(QueryError::UnknownField {
                name: name.to_string(),
            });
        };
        (field, value_at) = (known, rest);
    }
    let (text, phrase, tail) = value(value_at, field.name().unwrap_or_default())?;
    let term = Term {
        field,
        text,
        phrase,
    };
    Ok((
        if negated {
            Item::Excluded(term)
        } else {
            Item::Text(term)
        },
        tail,
    ))
}

/// Reads a word or a phrase (the value of `name:`, if any); returns its text, whether it
/// is a phrase, and what follows.
fn value<'a>(s: &'a str, name: &str) -> Result<(String, bool, &'a str), QueryError> {
    if ends_term(s) {
        return Err(QueryError::EmptyValue {
            field: name.to_string(),
        });
    }
    if let Some(inner) = s.strip_prefix('"') {
        let Some(end) = inner.find('"') else {
            return Err(QueryError::UnclosedQuote {
                text: s.to_string(),
            });
        };
        let text = &inner[..end];
        if text.chars().all(is_separator) {
            return Err(QueryError::EmptyPhrase);
        }
        return Ok((text.to_string(), true, &inner[end + 1..]));
    }
    let end = s.find(is_separator).unwrap_or(s.len());
    Ok((s[..end].to_string(), false, &s[end..]))
}

/// Reads `YYYY-MM-DD` (that day's start, UTC) or an RFC 3339 time. Times whose UTC year
/// is outside 0000–9999 are refused: they could not be written back as RFC 3339.
fn parse_date(text: &str) -> Option<DateTime<Utc>> {
    let shape = text
        .bytes()
        .map(|b| if b.is_ascii_digit() { b'0' } else { b });
    let at = if shape.eq(*b"0000-00-00") {
        let day = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
        day.and_hms_opt(0, 0, 0)?.and_utc()
    } else {
        DateTime::parse_from_rfc3339(text).ok()?.with_timezone(&Utc)
    };
    (0..=9999).contains(&at.year()).then_some(at)
}

/// A time as RFC 3339 in UTC, with a fraction only when it has one.
fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term(field: Field, text: &str, phrase: bool) -> Term {
        Term {
            field,
            text: text.to_string(),
            phrase,
        }
    }

    fn word(text: &str) -> Term {
        term(Field::Any, text, false)
    }

    fn phrase(text: &str) -> Term {
        term(Field::Any, text, true)
    }

    fn ok(input: &str) -> Query {
        parse(input).unwrap_or_else(|error| panic!("{input:?} failed: {error}"))
    }

    fn err(input: &str) -> String {
        match parse(input) {
            Ok(query) => panic!("{input:?} parsed as {query:?}"),
            Err(error) => error.to_string(),
        }
    }

    fn time(text: &str) -> Option<DateTime<Utc>> {
        Some(parse_date(text).expect("a test date"))
    }

    /// Asserts that the canonical form parses back to the same query.
    fn round_trips(query: &Query) {
        let canonical = query.canonical();
        if canonical.len() <= MAX_QUERY_BYTES {
            assert_eq!(parse(&canonical).as_ref(), Ok(query), "{canonical:?}");
        }
    }

    const EMPTY_PHRASE: &str = "a phrase needs something to find between its quotes";
    const NO_OR_TERM: &str = "`OR` needs a term on each side";
    const OR_EXCLUSION: &str = "`OR` cannot join an exclusion; exclude each term on its own";
    const LONE_MINUS: &str = "`-` needs a word or phrase after it";
    const ONLY_EXCLUSIONS: &str = "a query needs at least one word to find, not only exclusions";

    #[test]
    fn every_mistake_is_named() {
        let too_long = format!("{}b", "a ".repeat(MAX_QUERY_BYTES / 2));
        let cases: &[(&str, &str)] = &[
            ("", "the query is empty"),
            (" \t\n\u{3000}\u{0}\u{85}", "the query is empty"),
            (
                &too_long,
                "the query is 1025 bytes; at most 1024 are allowed",
            ),
            ("x \"abc", "unclosed quote: \"abc"),
            ("\"a\"\"a\"\"x y", "unclosed quote: \"x y"),
            ("title:\"x", "unclosed quote: \"x"),
            ("\"\"", EMPTY_PHRASE),
            ("\" \t \"", EMPTY_PHRASE),
            ("title:\"\"", EMPTY_PHRASE),
            ("-", LONE_MINUS),
            ("a -", LONE_MINUS),
            ("- a", LONE_MINUS),
            ("a -\u{3000}b", LONE_MINUS),
            ("OR", NO_OR_TERM),
            ("OR a", NO_OR_TERM),
            ("a OR", NO_OR_TERM),
            ("a OR OR b", NO_OR_TERM),
            ("a\tOR\u{3000}", NO_OR_TERM),
            ("-a OR b", OR_EXCLUSION),
            ("a OR -b", OR_EXCLUSION),
            ("a OR -\"b c\"", OR_EXCLUSION),
            (
                "a OR after:2026-01-01",
                "`after:` cannot be joined with `OR`",
            ),
            (
                "before:2026-01-01 OR a",
                "`before:` cannot be joined with `OR`",
            ),
            (
                "-before:2026-01-01 x",
                "`before:` cannot be excluded; use the other bound instead",
            ),
            (
                "after:2026-01-01 after:2026-02-01",
                "`after:` may appear only once",
            ),
            ("title: x", "`title:` needs a word or phrase after it"),
            ("a Tag:", "`tag:` needs a word or phrase after it"),
            ("after:", "`after:` needs a word or phrase after it"),
            ("-a -b", ONLY_EXCLUSIONS),
            ("-title:x -\"a b\"", ONLY_EXCLUSIONS),
        ];
        for (input, message) in cases {
            assert_eq!(err(input), *message, "{input:?}");
        }
        let fields = "title:, author:, category:, source:, tag:, host:, after:, before:";
        assert_eq!(
            err("a Foo:bar"),
            format!("unknown field `Foo:`; the fields are {fields}")
        );
        assert!(err("-x:y").starts_with("unknown field `x:`"));
        let range = "after:2026-02-01T00:00:00Z is not before before:2026-02-01T00:00:00Z";
        assert!(err("after:2026-02-01 before:2026-02-01").starts_with(range));
        assert!(err("before:2026-01-01 after:2026-03-01").starts_with("after:2026-03-01T"));
    }

    #[test]
    fn words_must_all_match_and_are_kept_as_typed() {
        let query =
            ok("  Sled\tc++ don't 5'11\" éclair 東京\u{3000}日本語 🎉🦀x or\u{7}x\u{a0}y\n");
        let typed = "Sled c++ don't 5'11\" éclair 東京 日本語 🎉🦀x or x y";
        let words: Vec<_> = typed.split(' ').map(|text| vec![word(text)]).collect();
        assert_eq!(query.groups, words);
        assert!(query.exclude.is_empty() && query.after.is_none() && query.before.is_none());
    }

    #[test]
    fn phrases() {
        assert_eq!(
            ok("\"Write  Ahead log\"").groups,
            [[phrase("Write  Ahead log")]]
        );
        assert_eq!(ok("\"a\"b").groups, [[phrase("a")], [word("b")]]);
        assert_eq!(
            ok("\"a\"\"東 京\"").groups,
            [[phrase("a")], [phrase("東 京")]]
        );
        assert_eq!(ok("\"OR\"").groups, [[phrase("OR")]]);
        // Nothing the index could find: no letters or digits.
        assert_eq!(
            err("\"!?\" x"),
            "`!?` has no letters or digits to search for"
        );
        assert_eq!(err("x -🎉"), "`🎉` has no letters or digits to search for");
        assert_eq!(ok("source:!?").groups.len(), 1);
    }

    #[test]
    fn exclusions() {
        let query = ok("rust -crypto -\"hello world\" -TITLE:foo --x -OR");
        assert_eq!(query.groups, [[word("rust")]]);
        let title = term(Field::Title, "foo", false);
        let excluded = [
            word("crypto"),
            phrase("hello world"),
            title,
            word("-x"),
            word("OR"),
        ];
        assert_eq!(query.exclude, excluded);
        assert_eq!(ok("a-b x-").groups, [[word("a-b")], [word("x-")]]);
        assert_eq!(ok("\"a\"-b").exclude, [word("b")]);
    }

    #[test]
    fn or_makes_alternatives() {
        assert_eq!(
            ok("a b OR c").groups,
            [vec![word("a")], vec![word("b"), word("c")]]
        );
        let query = ok("a OR b OR \"c d\" e");
        assert_eq!(
            query.groups,
            [vec![word("a"), word("b"), phrase("c d")], vec![word("e")]]
        );
        assert_eq!(ok("a or b ORx").groups.len(), 4);
        assert_eq!(ok("title:OR").groups, [[term(Field::Title, "OR", false)]]);
    }

    #[test]
    fn fields() {
        let query = ok("title:x Author:\"Jane Doe\" CATEGORY:db source:hn tag:c++ hOsT:x.org");
        let expected = [
            term(Field::Title, "x", false),
            term(Field::Author, "Jane Doe", true),
            term(Field::Category, "db", false),
            term(Field::Source, "hn", false),
            term(Field::Tag, "c++", false),
            term(Field::Host, "x.org", false),
        ];
        assert_eq!(query.groups, expected.map(|term| [term]));
        assert_eq!(ok("title:a:b").groups, [[term(Field::Title, "a:b", false)]]);
        for input in "http://x.org/a 12:30 c++: :foo a1:b é:x".split(' ') {
            assert_eq!(ok(input).groups, [[word(input)]]);
        }
        assert_eq!(ok("\"a:b\"").groups, [[phrase("a:b")]]);
    }

    #[test]
    fn dates() {
        let query = ok("after:2026-01-01 rust BEFORE:2026-02-01T12:00:00+02:00");
        assert_eq!(query.after, time("2026-01-01T00:00:00Z"));
        assert_eq!(query.before, time("2026-02-01T10:00:00Z"));
        assert_eq!(
            query.canonical(),
            "rust after:2026-01-01T00:00:00Z before:2026-02-01T10:00:00Z"
        );
        let only = ok("after:2026-01-01");
        assert!(only.groups.is_empty() && only.exclude.is_empty() && only.after.is_some());
        assert_eq!(ok("-spam before:2026-01-01").exclude, [word("spam")]);
        assert_eq!(
            ok("after:\"2026-01-01 10:00:00.5Z\"").after,
            time("2026-01-01T10:00:00.5Z")
        );
        let bad = "bad date in after:2026-13-01: expected YYYY-MM-DD or an RFC 3339 time";
        assert_eq!(err("after:2026-13-01"), bad);
        let bad_dates = "2026-1-1 2026-02-30 tomorrow +2026-01-01 2026-01-01T25:00:00Z \
            0000-01-01T00:00:00+01:00 9999-12-31T23:00:00-05:00 ２０２６-01-01";
        for date in bad_dates.split_whitespace() {
            assert!(
                err(&format!("before:{date}")).starts_with("bad date in before:"),
                "{date}"
            );
        }
    }

    #[test]
    fn bounds() {
        let longest = format!("{} {}", "x".repeat(1000), "y".repeat(23));
        assert_eq!(longest.len(), MAX_QUERY_BYTES);
        assert_eq!(ok(&longest).groups.len(), 2);
        let thirty_two = format!("{} -x after:2026-01-01", "a OR b ".repeat(15));
        assert_eq!(ok(&thirty_two).groups.len(), 15);
        let many = "the query has 33 terms; at most 32 are allowed";
        assert_eq!(err(&format!("{thirty_two} c")), many);
        assert_eq!(
            err(&"x ".repeat(40)),
            "the query has 40 terms; at most 32 are allowed"
        );
        assert_eq!(
            err(&"\"".repeat(5000)),
            "the query is 5000 bytes; at most 1024 are allowed"
        );
    }

    #[test]
    fn hostile_inputs() {
        assert_eq!(err(&"\"".repeat(1000)), EMPTY_PHRASE);
        assert_eq!(err(&"\"".repeat(1001)), EMPTY_PHRASE);
        assert!(err(&":".repeat(1024)).contains("no letters or digits"));
        assert_eq!(err(&"-".repeat(1024)), ONLY_EXCLUSIONS);
        assert_eq!(err(&"OR ".repeat(300)), NO_OR_TERM);
        assert_eq!(
            ok("\u{0}\u{1}x\u{1f}\u{7f}y\u{9b}").groups,
            [[word("x")], [word("y")]]
        );
        assert!(err("\u{200b}\u{feff}").contains("no letters or digits"));
    }

    #[test]
    fn canonical_form_parses_back() {
        let query = ok("  b  TITLE:\"x  y\" OR tag:z -\"no\" -Host:h before:2027-01-01 a\u{0}c");
        let canonical = "b title:\"x  y\" OR tag:z a c -\"no\" -host:h before:2027-01-01T00:00:00Z";
        assert_eq!(query.canonical(), canonical);
        let inputs = "\"a\"b|--x y|-OR x|http://x 12:30 c++:|author:\"日本 語\" OR é|\
            after:2026-06-30T23:59:60Z x|x before:2026-01-01T01:02:03.000456-07:30";
        for input in inputs.split('|') {
            round_trips(&ok(input));
        }
    }

    #[test]
    fn random_inputs_never_panic_and_round_trip() {
        let pieces: Vec<&str> = "a|OR|or|-|\"|:|::|title:|Tag:|foo:|after:|before:|2026-01-01|\
            2027-05-05T10:00:00+05:00|2026-13-01| |\t|\u{3000}|\u{0}|é|東京|🎉|//|c++|x.org|12|\
            \u{7f}|\u{200b}|'"
            .split('|')
            .collect();
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut parsed = 0;
        for _ in 0..5000 {
            let count = next() % 24;
            let input: String = (0..count)
                .map(|_| pieces[(next() % pieces.len() as u64) as usize])
                .collect();
            if let Ok(query) = parse(&input) {
                parsed += 1;
                round_trips(&query);
            }
            let bytes: Vec<u8> = (0..next() % 64).map(|_| next() as u8).collect();
            if let Ok(query) = parse(&String::from_utf8_lossy(&bytes)) {
                round_trips(&query);
            }
        }
        assert!(parsed > 100, "only {parsed} of the random queries parsed");
    }
}
