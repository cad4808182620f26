//! Entry fidelity, measured against Universal Feed Parser's (Python feedparser's) own test cases.
//!
//! Each fixture under `tests/fixtures/feedparser/` is a file from feedparser's test suite (see
//! `/work/shared/corpus/README.md`; kurtmckee/feedparser@a22c552, `tests/`), copied unchanged.
//! Each starts with an XML comment holding `Description:`, `Expect:` (a Python expression over
//! feedparser's result) and sometimes `Header:` lines (the HTTP headers feedparser's harness
//! serves the file with). The tests read those comments, run the file through
//! [`parse_document`] and [`normalise`] (pure functions: no network), and check one rule of
//! entry fidelity each:
//!
//! 1. `encodings`: every encoding case decodes: it parses, no U+FFFD appears in any title,
//!    summary or content, and titles and descriptions equal feedparser's non-ASCII literals.
//! 2. `relative_urls_become_absolute`: every URL in the entries (links, enclosures, every
//!    `href`/`src` in summaries and content) is absolute, and equals the URL feedparser
//!    resolves where its Expect says.
//! 3. `sanitising_removes_everything_dangerous`: no script, event handler, `javascript:` URL,
//!    plug-in, form, style or document-level element survives sanitising, in any of the 745
//!    sanitiser cases (strict); agreement with feedparser's safe literals is reported.
//! 4. `entry_dates`: `published` / `updated` equal feedparser's parsed dates to the second.
//!
//! (`the_checks_check` tests the checkers themselves.) Fixtures are copied only where a test
//! reads them: all of `encoding/`, `wellformed/base/` (without its one CDF file, a format
//! tributary does not claim) and `wellformed/sanitize/`, and from `wellformed/atom/` and
//! `wellformed/rss/` the files whose Expect gives an entry date.
//!
//! Where tributary is wrong today the tests say so without failing: literal divergences are
//! listed by file with the bug behind them (and the test fails once one is fixed, so the list
//! stays true); agreement rates are asserted at what tributary measures now, to be raised as
//! bugs are fixed. The safety rules of test 3 have no such allowance. Atom 0.3 documents, from
//! which tributary reads no entries today, are also re-read as Atom 1.0 so that the sanitising
//! and URL rules still see their content.
//!
//! Each test prints a one-line summary (`cargo test --test fidelity -- --nocapture`); set
//! `FIDELITY_VERBOSE=1` to list every miss and difference behind it.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use html5ever::tokenizer::{
    BufferQueue, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};
use tributary::feed::normalise::{Normalised, normalise};
use tributary::feed::parse::{ParsedFeed, parse_document};
use tributary::model::Entry;
use url::Url;

// ---------------------------------------------------------------------------------------------
// Fixtures and their header comments

fn fixture_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/feedparser")
}

/// The `.xml` files of a fixture folder (relative to `tests/fixtures/feedparser`), sorted.
fn fixtures(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixture_root().join(dir))
        .unwrap_or_else(|e| panic!("fixture folder {dir}: {e}"))
        .map(|d| d.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "xml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in {dir}");
    files
}

/// `encoding/utf-16le.xml` for a fixture path.
fn rel(path: &Path) -> String {
    path.strip_prefix(fixture_root())
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

/// What a fixture's leading comment says.
struct Case {
    path: PathBuf,
    bytes: Vec<u8>,
    expect: String,
    /// `Header:` lines as (lower-cased name, value).
    headers: Vec<(String, String)>,
}

impl Case {
    fn load(path: &Path) -> Case {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // The comment is ASCII in every encoding the suite uses; dropping NULs reads it out of
        // UTF-16 and UTF-32 too.
        let ascii: Vec<u8> = bytes.iter().copied().filter(|b| *b != 0).collect();
        let text = String::from_utf8_lossy(&ascii);
        let comment = text
            .find("<!--")
            .and_then(|start| {
                let body = &text[start + 4..];
                body.find("-->").map(|end| body[..end].to_string())
            })
            .unwrap_or_else(|| panic!("{}: no leading comment", path.display()));
        let mut expect = String::new();
        let mut headers = Vec::new();
        for line in comment.lines() {
            let line = line.trim();
            if let Some(e) = line.strip_prefix("Expect:") {
                expect = e.trim().to_string();
            } else if let Some(h) = line.strip_prefix("Header:")
                && let Some((name, value)) = h.split_once(':')
            {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
            }
        }
        assert!(!expect.is_empty(), "{}: no Expect line", path.display());
        Case {
            path: path.to_path_buf(),
            bytes,
            expect,
            headers,
        }
    }

    fn rel(&self) -> String {
        rel(&self.path)
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Where feedparser's harness serves the file: relative links in the "docuri" cases are
    /// expected to resolve against this.
    fn url(&self) -> Url {
        Url::parse(&format!("http://127.0.0.1:8097/tests/{}", self.rel())).expect("fixture url")
    }

    /// The comparisons `lhs == literal` of the Expect expression (other clauses are ignored).
    fn comparisons(&self) -> Vec<(String, Literal)> {
        comparisons(&self.expect)
    }

    fn says_bozo(&self) -> bool {
        top_level_split(&self.expect, " and ")
            .iter()
            .any(|c| c.trim() == "bozo")
    }

    /// parse_document and normalise, as a poll does, with the fixture's Content-Type.
    fn run(&self) -> Result<Run, String> {
        run_bytes(&self.bytes, self.header("content-type"), &self.url())
    }

    /// The document re-read as Atom 1.0, when it is an Atom 0.3 document tributary reads no
    /// entries from, so that the sanitising and URL rules still see what its entries hold:
    /// `None` for other documents, and when the rewritten document yields no entries either.
    fn run_as_atom_10(&self, run: &Run) -> Option<Run> {
        let text = std::str::from_utf8(&self.bytes).ok()?;
        if !run.normalised.entries.is_empty() || !text.contains(ATOM_03_NS) {
            return None;
        }
        let rewritten = text.replace(ATOM_03_NS, ATOM_10_NS);
        let rerun = run_bytes(
            rewritten.as_bytes(),
            self.header("content-type"),
            &self.url(),
        );
        rerun.ok().filter(|r| !r.normalised.entries.is_empty())
    }
}

/// Atom 0.3's namespace, and 1.0's.
const ATOM_03_NS: &str = "http://purl.org/atom/ns#";
const ATOM_10_NS: &str = "http://www.w3.org/2005/Atom";

fn run_bytes(bytes: &[u8], content_type: Option<&str>, url: &Url) -> Result<Run, String> {
    let parsed = parse_document(bytes, content_type, url).map_err(|e| e.to_string())?;
    let raw = parsed.feed.clone();
    let normalised = normalise(parsed.feed, "feedparser", url, now());
    Ok(Run { raw, normalised })
}

struct Run {
    /// The parser's output, before normalising (to see which link feedparser's comes first).
    raw: ParsedFeed,
    normalised: Normalised,
}

impl Run {
    fn first(&self) -> Option<&Entry> {
        self.normalised.entries.first()
    }
}

/// The poll time normalise clamps dates to: later than every date in the fixtures.
fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .expect("static date")
        .with_timezone(&Utc)
}

// ---------------------------------------------------------------------------------------------
// Just enough of Python's expression syntax to read the Expect lines

#[derive(Clone, Debug, PartialEq)]
enum Literal {
    Str(String),
    Int(i64),
    Tuple(Vec<i64>),
}

/// Splits at `sep` outside string literals and brackets.
fn top_level_split<'a>(s: &'a str, sep: &str) -> Vec<&'a str> {
    let mut parts = Vec::new();
    let (mut depth, mut quote, mut escaped, mut start) = (0i32, None::<char>, false, 0);
    let mut i = 0;
    while i < s.len() {
        let c = s[i..].chars().next().expect("in bounds");
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                '\'' | '"' => quote = Some(c),
                '(' | '[' | '{' => depth += 1,
                ')' | ']' | '}' => depth -= 1,
                _ if depth == 0 && s[i..].starts_with(sep) => {
                    parts.push(&s[start..i]);
                    i += sep.len();
                    start = i;
                    continue;
                }
                _ => {}
            },
        }
        i += c.len_utf8();
    }
    parts.push(&s[start..]);
    parts
}

fn comparisons(expect: &str) -> Vec<(String, Literal)> {
    let mut out = Vec::new();
    for clause in top_level_split(expect, " and ") {
        let sides = top_level_split(clause, "==");
        let [lhs, rhs] = sides.as_slice() else {
            continue;
        };
        let (lhs, rhs) = (lhs.trim(), rhs.trim());
        let Some(lit) = py_literal(rhs) else {
            continue;
        };
        // `ord(x) == 8230` says x is that one character.
        match (
            lhs.strip_prefix("ord(").and_then(|l| l.strip_suffix(')')),
            lit,
        ) {
            (Some(inner), Literal::Int(n)) => {
                if let Some(c) = u32::try_from(n).ok().and_then(char::from_u32) {
                    out.push((inner.trim().to_string(), Literal::Str(c.to_string())));
                }
            }
            (_, lit) => out.push((lhs.to_string(), lit)),
        }
    }
    out
}

/// A string (`'a'`, `u"b"`, `'a' + 'b'`), an integer or a tuple of integers.
fn py_literal(s: &str) -> Option<Literal> {
    let s = s.trim();
    if let Ok(n) = s.parse::<i64>() {
        return Some(Literal::Int(n));
    }
    if let Some(inner) = s.strip_prefix('(').and_then(|t| t.strip_suffix(')')) {
        return inner
            .split(',')
            .map(|n| n.trim().parse::<i64>().ok())
            .collect::<Option<Vec<_>>>()
            .map(Literal::Tuple);
    }
    let mut text = String::new();
    for part in top_level_split(s, "+") {
        text.push_str(&py_string(part.trim())?);
    }
    Some(Literal::Str(text))
}

/// One Python string literal, with the escapes the suite uses.
fn py_string(s: &str) -> Option<String> {
    let s = s.strip_prefix(['u', 'U']).unwrap_or(s);
    let quote = s.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let body = s.strip_prefix(quote)?.strip_suffix(quote)?;
    let mut out = String::new();
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let hex = |chars: &mut std::str::Chars, n: usize| {
            let digits: String = chars.by_ref().take(n).collect();
            u32::from_str_radix(&digits, 16)
                .ok()
                .and_then(char::from_u32)
        };
        match chars.next()? {
            'u' => out.push(hex(&mut chars, 4)?),
            'U' => out.push(hex(&mut chars, 8)?),
            'x' => out.push(hex(&mut chars, 2)?),
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            '0' => out.push('\0'),
            other => out.push(other), // \\ \' \"
        }
    }
    Some(out)
}

// ---------------------------------------------------------------------------------------------
// HTML as a browser tokenises it

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Start(String, Vec<(String, String)>),
    End(String),
    Text(String),
}

struct Collect(RefCell<Vec<Tok>>);

impl TokenSink for Collect {
    type Handle = ();
    fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
        let mut toks = self.0.borrow_mut();
        match token {
            Token::TagToken(tag) => {
                let name = tag.name.to_string();
                match tag.kind {
                    TagKind::StartTag => {
                        let attrs = tag
                            .attrs
                            .iter()
                            .map(|a| {
                                let name = match &a.name.prefix {
                                    Some(p) => format!("{p}:{}", a.name.local),
                                    None => a.name.local.to_string(),
                                };
                                (name, a.value.to_string())
                            })
                            .collect();
                        toks.push(Tok::Start(name, attrs));
                    }
                    TagKind::EndTag => toks.push(Tok::End(name)),
                }
            }
            Token::CharacterTokens(t) => match toks.last_mut() {
                Some(Tok::Text(s)) => s.push_str(&t),
                _ => toks.push(Tok::Text(t.to_string())),
            },
            _ => {}
        }
        TokenSinkResult::Continue
    }
}

fn tokens(html: &str) -> Vec<Tok> {
    let tokenizer = Tokenizer::new(Collect(RefCell::new(Vec::new())), TokenizerOpts::default());
    let queue = BufferQueue::default();
    queue.push_back(html.into());
    let _ = tokenizer.feed(&queue);
    tokenizer.end();
    tokenizer.sink.0.take()
}

/// Tokens in a canonical form for comparing two fragments: attributes sorted, white space
/// folded, empty text dropped, and the `rel` tributary adds to links set aside.
fn canonical(html: &str) -> Vec<Tok> {
    tokens(html)
        .into_iter()
        .filter_map(|t| match t {
            Tok::Text(s) => {
                let folded = s.split_whitespace().collect::<Vec<_>>().join(" ");
                (!folded.is_empty()).then_some(Tok::Text(folded))
            }
            Tok::Start(name, mut attrs) => {
                attrs.retain(|(k, v)| !(name == "a" && k == "rel" && v == "noopener noreferrer"));
                attrs.sort();
                Some(Tok::Start(name, attrs))
            }
            end => Some(end),
        })
        .collect()
}

/// The text of an HTML fragment (entities decoded, white space folded).
fn html_text(html: &str) -> String {
    let text: String = tokens(html)
        .into_iter()
        .filter_map(|t| match t {
            Tok::Text(s) => Some(s),
            _ => None,
        })
        .collect();
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Attributes whose value is a URL (or, for srcset, a list of them).
const URL_ATTRIBUTES: &[&str] = &[
    "href",
    "src",
    "cite",
    "action",
    "formaction",
    "poster",
    "background",
    "longdesc",
    "srcset",
    "xlink:href",
];

/// Every URL in a fragment's attributes, in document order: (tag, attribute, value).
fn urls_in(html: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for t in tokens(html) {
        let Tok::Start(tag, attrs) = t else { continue };
        for (name, value) in attrs {
            if !URL_ATTRIBUTES.contains(&name.as_str()) {
                continue;
            }
            if name == "srcset" {
                for candidate in value.split(',') {
                    if let Some(u) = candidate.split_whitespace().next() {
                        out.push((tag.clone(), name.clone(), u.to_string()));
                    }
                }
            } else {
                out.push((tag.clone(), name, value));
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The safety rules for sanitised HTML

/// Elements that must never survive sanitising.
const FORBIDDEN_ELEMENTS: &[&str] = &[
    "script", "iframe", "frame", "frameset", "object", "embed", "applet", "form", "style", "meta",
    "link", "base",
];

/// Everything in `html` that breaks a safety rule, described.
fn violations(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    // Sanitised output escapes every `<` of text, so any `<name` in it is markup: check the
    // raw text too, in case a tokenizer disagreement hid an element.
    let lower = html.to_ascii_lowercase();
    for name in FORBIDDEN_ELEMENTS {
        for open in [format!("<{name}"), format!("</{name}")] {
            let mut from = 0;
            while let Some(at) = lower[from..].find(&open) {
                let end = from + at + open.len();
                let boundary = lower[end..]
                    .chars()
                    .next()
                    .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '-'));
                if boundary {
                    found.push(format!("a <{name}> element"));
                    break;
                }
                from = end;
            }
        }
    }
    for t in tokens(html) {
        let Tok::Start(tag, attrs) = t else { continue };
        if FORBIDDEN_ELEMENTS.contains(&tag.as_str()) {
            found.push(format!("a <{tag}> element"));
        }
        for (name, value) in attrs {
            let n = name.to_ascii_lowercase();
            if n.len() > 2 && n.starts_with("on") && n[2..].chars().all(|c| c.is_ascii_lowercase())
            {
                found.push(format!("an event handler {name}= on <{tag}>"));
            }
            if n == "style" {
                found.push(format!("a style= attribute on <{tag}>"));
            }
            // How a browser reads a URL: ASCII white space and control characters ignored.
            let squeezed: String = value
                .chars()
                .filter(|c| !c.is_ascii_whitespace() && !c.is_ascii_control())
                .collect::<String>()
                .to_ascii_lowercase();
            for scheme in ["javascript:", "vbscript:", "livescript:"] {
                if squeezed.starts_with(scheme) || (n == "srcset" && squeezed.contains(scheme)) {
                    found.push(format!("a {scheme} URL in {name}= on <{tag}>"));
                }
            }
            let data_ok = tag == "img" && n == "src";
            if !data_ok && (squeezed.starts_with("data:") || squeezed.contains(",data:")) {
                found.push(format!("a data: URL in {name}= on <{tag}>"));
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

/// Every sanitised HTML field of a normalised feed, labelled.
fn html_fields(n: &Normalised) -> Vec<(String, &str)> {
    let mut out = Vec::new();
    for (i, e) in n.entries.iter().enumerate() {
        if let Some(s) = &e.summary {
            out.push((format!("entries[{i}].summary"), s.as_str()));
        }
        if let Some(c) = &e.content {
            out.push((format!("entries[{i}].content"), c.as_str()));
        }
    }
    out
}

/// Whether a feedparser field is an entry's HTML (see [`our_html`]).
fn our_html_field(field: &str) -> bool {
    matches!(
        field,
        "entries[0]['content'][0]['value']"
            | "entries[0]['description']"
            | "entries[0]['summary']"
            | "entries[0].summary"
    )
}

/// Which of our fields stands for a feedparser entry field holding HTML.
fn our_html<'a>(e: &'a Entry, feedparser_field: &str) -> Option<&'a str> {
    match feedparser_field {
        "entries[0]['content'][0]['value']" => e.content.as_deref().or(e.summary.as_deref()),
        "entries[0]['description']" | "entries[0]['summary']" | "entries[0].summary" => {
            e.summary.as_deref().or(e.content.as_deref())
        }
        _ => None,
    }
}

/// Prints the details behind a summary line when `FIDELITY_VERBOSE` is set.
fn verbose(what: &str, items: &[String]) {
    if std::env::var_os("FIDELITY_VERBOSE").is_some() {
        for i in items {
            println!("  {what}: {i}");
        }
    }
}

/// A list of misses, one a line, for failure messages.
fn listing(items: &[String]) -> String {
    items.iter().fold(String::new(), |mut s, m| {
        let _ = writeln!(s, "  {m}");
        s
    })
}

/// The checkers themselves: the safety rules catch what they must (so "no violations" is not
/// vacuous), and the Expect reader reads what the suite writes.
#[test]
fn the_checks_check() {
    let unsafe_html = [
        "<script>x</script>",
        "<SCRIPT SRC=//x></SCRIPT>",
        "<a href=\"java\tscript:alert(1)\">x</a>",
        "<a href=\"&#x20;VBScript:x\">x</a>",
        "<img src=x onerror=alert(1)>",
        "<p style=\"color:red\">x</p>",
        "<a href=\"data:text/html,x\">x</a>",
        "<iframe src=x></iframe>",
        "<object data=x></object>",
        "<embed src=x>",
        "<form action=x></form>",
        "<style>p{}</style>",
        "<meta http-equiv=refresh content=0>",
        "<link rel=stylesheet href=x>",
        "<base href=x>",
        "<img srcset=\"a.png 1x, javascript:x 2x\">",
    ];
    for h in unsafe_html {
        assert!(!violations(h).is_empty(), "not caught: {h}");
    }
    let safe_html = [
        "<p>javascript: is a word here; so are onclick= and &lt;script&gt;</p>",
        "<img src=\"data:image/png;base64,AAAA\" alt=\"\">",
        "<a href=\"http://example.com/\" rel=\"noopener noreferrer\">x</a>",
        "<meter value=1></meter><linkage></linkage><basefont>",
    ];
    for h in safe_html {
        assert!(
            violations(h).is_empty(),
            "flagged: {h}: {:?}",
            violations(h)
        );
    }
    assert_eq!(
        comparisons("not bozo and ord(entries[0]['description']) == 8230"),
        [(
            "entries[0]['description']".into(),
            Literal::Str("\u{2026}".into())
        )]
    );
    assert_eq!(
        comparisons("feed['title'] == u'\\ub144' and x == 'a\\'b' + \"c\""),
        [
            ("feed['title']".into(), Literal::Str("\u{b144}".into())),
            ("x".into(), Literal::Str("a'bc".into())),
        ]
    );
    assert_eq!(
        comparisons("entries[0]['updated_parsed'] == (2003, 12, 31, 10, 14, 55, 2, 365, 0)"),
        [(
            "entries[0]['updated_parsed']".into(),
            Literal::Tuple(vec![2003, 12, 31, 10, 14, 55, 2, 365, 0])
        )]
    );
    assert_eq!(
        canonical("<a rel=\"noopener noreferrer\" title=t href=\"h\">x  y</a><br>"),
        canonical("<a href='h' title=\"t\">x y</a><br />")
    );
    println!(
        "checks: {} unsafe fragments caught, {} safe ones passed, Expect reader ok",
        unsafe_html.len(),
        safe_html.len()
    );
}

// ---------------------------------------------------------------------------------------------
// 1. Encodings

/// Files feedparser expects to be flagged (bozo) and cannot decode either: there is no right
/// answer to compare with.
const ENCODING_SKIPS: &[(&str, &str)] = &[
    (
        "bozo_invalid-bytes-with-bom.xml",
        "its bytes are not valid in the encoding its BOM names; feedparser fails with a SAXParseException and reads no entries",
    ),
    (
        "bozo_linenoise.xml",
        "'unguessable characters': declared UTF-8 but is not; feedparser's expected answer is itself mojibake (CharacterEncodingOverride)",
    ),
];

/// Where tributary disagrees with feedparser's literal today: each is a tributary bug, with
/// where its fix belongs. The test fails when one of these starts to agree, so the list stays
/// true.
const ENCODING_KNOWN_DIVERGENCES: &[(&str, &str)] = &[];

/// A parse failure these documents share, not an encoding problem: an `<rss>` with no
/// `<channel>` is rejected (feedparser reads an empty feed). Their decoding is still checked.
const NO_CHANNEL: &str = "an <rss> with no <channel> does not parse (src/feed/parse/)";

#[test]
fn encodings() {
    let files = fixtures("encoding");
    let (mut passed, mut checked, mut literals, mut no_channel) = (0, 0, 0, 0);
    let mut failures = Vec::new();
    let mut diverging = Vec::new();
    for path in &files {
        let case = Case::load(path);
        let name = case.rel();
        let file = name.trim_start_matches("encoding/");
        if let Some((_, why)) = ENCODING_SKIPS.iter().find(|(f, _)| *f == file) {
            assert!(
                case.says_bozo(),
                "{name} is skipped ({why}) but feedparser accepts it"
            );
            continue;
        }
        checked += 1;
        let mut problems = Vec::new();

        // The decoding stage on its own: most of these documents hold nothing but their
        // comment, so the comment (ASCII in every encoding here) must come out intact.
        let content_type = case.header("content-type");
        let decoded = tributary::feed::charset::decode(&case.bytes, content_type);
        if decoded.text.contains('\u{fffd}') {
            problems.push(format!(
                "U+FFFD in the decoded text (read as {})",
                decoded.encoding
            ));
        }
        let ascii: Vec<u8> = case.bytes.iter().copied().filter(|b| *b != 0).collect();
        let ascii = String::from_utf8_lossy(&ascii);
        let comment = ascii
            .find("<!--")
            .and_then(|s| ascii[s..].find("-->").map(|e| &ascii[s..s + e + 3]))
            .unwrap_or_default();
        if !decoded.text.contains(comment) {
            problems.push(format!(
                "decoded as {}, the leading comment does not read back",
                decoded.encoding
            ));
        }

        let run = match case.run() {
            Ok(r) => Some(r),
            Err(e) => {
                if decoded.text.contains("<rss") && !decoded.text.contains("<channel") {
                    no_channel += 1;
                } else {
                    problems.push(format!("does not parse: {e}"));
                }
                None
            }
        };
        let mut diverges = Vec::new();
        if let Some(run) = &run {
            let n = &run.normalised;
            let mut texts: Vec<(String, &str)> = html_fields(n);
            if let Some(t) = &n.feed_title {
                texts.push(("feed title".into(), t));
            }
            for (i, e) in n.entries.iter().enumerate() {
                texts.push((format!("entries[{i}].title"), &e.title));
            }
            // A replacement character the document itself writes (`&#65533;`, even escaped twice)
            // is content.
            let source_has_fffd = String::from_utf8_lossy(&case.bytes).contains("#65533;");
            for (what, text) in &texts {
                if text.contains('\u{fffd}') && !source_has_fffd {
                    problems.push(format!("U+FFFD in {what}: {text:?}"));
                }
            }
            for (lhs, lit) in case.comparisons() {
                let Literal::Str(expected) = lit else {
                    continue;
                };
                let is_title = matches!(lhs.as_str(), "feed['title']" | "entries[0]['title']");
                if !is_title && !our_html_field(&lhs) {
                    continue;
                }
                literals += 1;
                let ours = match lhs.as_str() {
                    "feed['title']" => n.feed_title.clone(),
                    "entries[0]['title']" => run.first().map(|e| e.title.clone()),
                    field => run
                        .first()
                        .and_then(|e| our_html(e, field))
                        .map(String::from),
                };
                let Some(ours) = ours else {
                    diverges.push(format!("{lhs}: ours is missing, expected {expected:?}"));
                    continue;
                };
                let same = if is_title {
                    ours == expected
                } else if expected.contains('<') {
                    canonical(&ours) == canonical(&expected)
                } else {
                    // feedparser's description is HTML too: compare what a reader sees.
                    html_text(&ours) == html_text(&expected)
                };
                if !same {
                    diverges.push(format!("{lhs}: ours {ours:?}, expected {expected:?}"));
                }
            }
        }
        let known = ENCODING_KNOWN_DIVERGENCES.iter().any(|(f, _)| *f == file);
        match (diverges.is_empty(), known) {
            (false, true) => diverging.push(format!("{name}: {}", diverges.join("; "))),
            (false, false) => problems.extend(diverges),
            (true, true) => problems.push(
                "listed in ENCODING_KNOWN_DIVERGENCES but now agrees with feedparser: drop it"
                    .into(),
            ),
            (true, false) => {}
        }
        if problems.is_empty() {
            if !known {
                passed += 1;
            }
        } else {
            failures.push(format!("{name}: {}", problems.join("; ")));
        }
    }
    println!(
        "encodings: {passed}/{checked} files decode faithfully ({literals} literal comparisons; {} known divergences; {no_channel} checked at the decoding stage only: {NO_CHANNEL}; {} skipped as undecodable)",
        diverging.len(),
        ENCODING_SKIPS.len()
    );
    verbose("known divergence", &diverging);
    assert!(
        failures.is_empty(),
        "encoding failures:\n{}",
        listing(&failures)
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Relative URLs

/// Where each feedparser field that names a URL is kept by us, if it is.
fn our_url(run: &Run, field: &str) -> Option<Option<String>> {
    let e = run.first();
    Some(match field {
        "entries[0]['link']" | "entries[0]['links'][0]['href']" => e.and_then(|e| e.link.clone()),
        "entries[0]['comments']" => e.and_then(|e| e.comments.clone()),
        "entries[0]['author_detail']['url']" => e
            .and_then(|e| e.authors.first())
            .and_then(|a| a.uri.clone()),
        "feed['link']" | "feed['links'][0]['href']" => run.normalised.feed_link.clone(),
        _ => return None,
    })
}

/// Whether the parser's first link for a `...['links'][0]['href']` field is the page itself
/// (rel "alternate" or none), as our `link` is.
fn first_link_is_a_page(raw: &ParsedFeed, field: &str) -> bool {
    let links = match field {
        "feed['links'][0]['href']" => &raw.links,
        "entries[0]['links'][0]['href']" => match raw.entries.first() {
            Some(e) => &e.links,
            None => return true,
        },
        _ => return true,
    };
    links
        .first()
        .is_none_or(|l| matches!(l.rel.as_deref(), None | Some("alternate")))
}

/// Two URLs are the same when they parse to the same URL (an IRI and its percent-encoded
/// form are one URL).
fn same_url(a: &str, b: &str) -> bool {
    match (Url::parse(a.trim()), Url::parse(b.trim())) {
        (Ok(a), Ok(b)) => a == b,
        _ => a.trim() == b.trim(),
    }
}

/// The feedparser field holding HTML whose `base` a `..._detail']['base']` field gives.
fn based_field(field: &str) -> Option<(&'static str, &'static str)> {
    match field {
        "entries[0]['content'][0]['base']" => {
            Some(("content", "entries[0]['content'][0]['value']"))
        }
        "entries[0]['summary_detail']['base']" => Some(("summary", "entries[0]['summary']")),
        _ => None,
    }
}

/// The HTML inside the source document's first `<element>` (read straight from the fixture,
/// so the expectation does not depend on our parser): inline XHTML as is, escaped HTML
/// unescaped.
fn source_html(doc: &str, element: &str) -> Option<String> {
    let open = format!("<{element}");
    let mut at = 0;
    let start = loop {
        let i = at + doc[at..].find(&open)?;
        let next = doc[i + open.len()..].chars().next()?;
        if next == '>' || next.is_whitespace() {
            break i;
        }
        at = i + open.len();
    };
    let body_start = start + doc[start..].find('>')? + 1;
    let body_end = body_start + doc[body_start..].find(&format!("</{element}>"))?;
    let inner = doc[body_start..body_end].trim();
    if let Some(cdata) = inner
        .strip_prefix("<![CDATA[")
        .and_then(|c| c.strip_suffix("]]>"))
    {
        return Some(cdata.to_string());
    }
    if inner.contains('<') {
        return Some(inner.to_string());
    }
    Some(
        inner
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&amp;", "&"),
    )
}

/// Every URL of an entry, labelled: link, comments, thumbnail, authors, enclosures and every
/// URL attribute in its summary and content.
fn entry_urls(e: &Entry, i: usize) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut add = |what: String, u: Option<&String>| {
        if let Some(u) = u {
            out.push((what, u.clone()));
        }
    };
    add(format!("entries[{i}].link"), e.link.as_ref());
    add(format!("entries[{i}].comments"), e.comments.as_ref());
    add(format!("entries[{i}].thumbnail"), e.thumbnail.as_ref());
    for (k, a) in e.authors.iter().enumerate() {
        add(format!("entries[{i}].authors[{k}].uri"), a.uri.as_ref());
    }
    for (k, x) in e.enclosures.iter().enumerate() {
        add(format!("entries[{i}].enclosures[{k}]"), Some(&x.url));
    }
    for (what, html) in [("summary", &e.summary), ("content", &e.content)] {
        for (tag, attr, u) in urls_in(html.as_deref().unwrap_or("")) {
            out.push((format!("entries[{i}].{what} <{tag} {attr}>"), u));
        }
    }
    out
}

/// RFC 7231 (appendix B) and RFC 9110 no longer make Content-Location a base URI, and
/// tributary resolves against the URL it fetched: feedparser's expectations for these cases
/// follow RFC 2616, so they are not compared (their URLs must still be absolute).
const CONTENT_LOCATION: &str = "content-location";

/// The share of feedparser's expected URLs we must match: what tributary measures today (see
/// the test's output and the misses it lists). Raise it as the misses are fixed.
const BASE_AGREEMENT_MIN: f64 = 0.74;

#[test]
fn relative_urls_become_absolute() {
    let files = fixtures("wellformed/base");
    let (mut parsed, mut urls, mut compared, mut matched, mut not_ours) = (0, 0, 0, 0, 0);
    let (mut content_location, mut no_entries, mut reread_as_atom_10) = (0, 0, 0);
    let mut relative = Vec::new();
    let mut misses = Vec::new();
    let mut failures = Vec::new();
    for path in &files {
        let case = Case::load(path);
        let name = case.rel();
        let run = match case.run() {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{name}: does not parse: {e}"));
                continue;
            }
        };
        parsed += 1;
        let source = String::from_utf8_lossy(&case.bytes);
        if run.normalised.entries.is_empty()
            && (source.contains("<entry") || source.contains("<item"))
        {
            no_entries += 1;
        }
        let reread = case.run_as_atom_10(&run);
        reread_as_atom_10 += usize::from(reread.is_some());
        for (label, n) in std::iter::once(("", &run.normalised))
            .chain(reread.as_ref().map(|r| (" (as Atom 1.0)", &r.normalised)))
        {
            for (i, e) in n.entries.iter().enumerate() {
                for (what, u) in entry_urls(e, i) {
                    urls += 1;
                    if Url::parse(&u).is_err() {
                        relative.push(format!("{name}{label}: {what} = {u:?}"));
                    }
                }
            }
            if let Some(l) = &n.feed_link {
                urls += 1;
                if Url::parse(l).is_err() {
                    relative.push(format!("{name}{label}: feed link = {l:?}"));
                }
            }
        }

        if case.header(CONTENT_LOCATION).is_some() {
            content_location += 1;
            continue;
        }
        for (lhs, lit) in case.comparisons() {
            let Literal::Str(expected) = lit else {
                continue;
            };
            let first = run.first();
            let urls_of = |field: &str| -> Vec<String> {
                first
                    .and_then(|e| our_html(e, field))
                    .map(|h| urls_in(h).into_iter().map(|(_, _, u)| u).collect())
                    .unwrap_or_default()
            };
            let (wanted, ours): (Vec<String>, Vec<String>) = if let Some(ours) = our_url(&run, &lhs)
            {
                // feedparser's first link may be rel="self" or another non-page link, which
                // is not what our link means.
                if !first_link_is_a_page(&run.raw, &lhs) {
                    not_ours += 1;
                    continue;
                }
                (vec![expected], ours.into_iter().collect())
            } else if let Some((element, field)) = based_field(&lhs) {
                // feedparser gives the base this text's relative URLs resolve against.
                let (Ok(base), Some(html)) = (Url::parse(&expected), source_html(&source, element))
                else {
                    not_ours += 1;
                    continue;
                };
                let wanted = urls_in(&html)
                    .into_iter()
                    .map(|(_, _, u)| base.join(u.trim()).map_or(u, String::from))
                    .collect();
                (wanted, urls_of(field))
            } else if our_html_field(&lhs) {
                let wanted = urls_in(&expected).into_iter().map(|(_, _, u)| u).collect();
                (wanted, urls_of(&lhs))
            } else {
                // Feed-level text, titles (plain text for us), ids, wfw links: not kept.
                not_ours += 1;
                continue;
            };
            if wanted.is_empty() {
                not_ours += 1;
                continue;
            }
            compared += 1;
            if wanted.len() == ours.len() && wanted.iter().zip(&ours).all(|(a, b)| same_url(a, b)) {
                matched += 1;
            } else {
                misses.push(format!("{name}: {lhs}: ours {ours:?}, expected {wanted:?}"));
            }
        }
    }
    let rate = matched as f64 / compared.max(1) as f64;
    println!(
        "relative URLs: {parsed}/{} files parse ({no_entries} lose their entries; {reread_as_atom_10} Atom 0.3 files also checked re-read as Atom 1.0); {}/{urls} URLs absolute; {matched}/{compared} expected URLs matched ({:.0}%; {content_location} Content-Location files and {not_ours} expectations about fields we do not keep not compared)",
        files.len(),
        urls - relative.len(),
        rate * 100.0
    );
    verbose("miss", &misses);
    assert!(
        failures.is_empty(),
        "parse failures:\n{}",
        listing(&failures)
    );
    assert!(
        relative.is_empty(),
        "relative URLs survived:\n{}",
        listing(&relative)
    );
    assert!(
        rate >= BASE_AGREEMENT_MIN,
        "only {matched}/{compared} URLs match feedparser's; misses:\n{}",
        listing(&misses)
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Sanitising

/// The share of feedparser's safe literals we must agree with: informational, measured.
const SANITIZE_AGREEMENT_MIN: f64 = 0.40;

#[test]
fn sanitising_removes_everything_dangerous() {
    let files = fixtures("wellformed/sanitize");
    let (mut fields, mut with_entries, mut compared, mut agreed, mut unsafe_literals) =
        (0, 0, 0, 0, 0);
    let (mut reread_as_atom_10, mut unsafe_files) = (0, 0);
    let (mut no_entry, mut empty, mut markup_only) = (0, 0, 0);
    let mut violating = Vec::new();
    let mut failures = Vec::new();
    let mut disagreements = Vec::new();
    for path in &files {
        let case = Case::load(path);
        let name = case.rel();
        let run = match case.run() {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{name}: does not parse: {e}"));
                continue;
            }
        };
        let reread = case.run_as_atom_10(&run);
        let mut unsafe_here = Vec::new();
        for (label, n) in std::iter::once(("", &run.normalised))
            .chain(reread.as_ref().map(|r| (" (as Atom 1.0)", &r.normalised)))
        {
            if !n.entries.is_empty() {
                with_entries += 1;
            }
            for (what, h) in html_fields(n) {
                fields += 1;
                let v = violations(h);
                if !v.is_empty() {
                    unsafe_here.push(format!("{name}{label}: {what}: {} in {h:?}", v.join(", ")));
                }
            }
        }
        reread_as_atom_10 += usize::from(reread.is_some());
        if !unsafe_here.is_empty() {
            unsafe_files += 1;
            violating.extend(unsafe_here);
        }
        for (lhs, lit) in case.comparisons() {
            let Literal::Str(expected) = lit else {
                continue;
            };
            if !our_html_field(&lhs) {
                continue; // feed-level text and titles are not sanitised HTML with us
            }
            // Only literals that are safe by our own, stricter rules (feedparser keeps
            // some inline styles) say what we should produce.
            if !violations(&expected).is_empty() {
                unsafe_literals += 1;
                continue;
            }
            compared += 1;
            let ours = run.first().and_then(|e| our_html(e, &lhs)).unwrap_or("");
            if canonical(ours) == canonical(&expected) {
                agreed += 1;
                continue;
            }
            let why = if run.first().is_none() {
                no_entry += 1;
                "no entry read"
            } else if ours.is_empty() {
                empty += 1;
                "field empty"
            } else if html_text(ours) == html_text(&expected) {
                markup_only += 1;
                "markup only"
            } else {
                "text"
            };
            disagreements.push(format!(
                "{name} ({why}): ours {ours:?}, expected {expected:?}"
            ));
        }
    }
    let rate = agreed as f64 / compared.max(1) as f64;
    println!(
        "sanitising: {}/{} files safe ({fields} HTML fields checked in {with_entries} documents with entries, {reread_as_atom_10} of them Atom 0.3 files re-read as Atom 1.0; no violations allowed); {agreed}/{compared} agree with feedparser's safe literals ({:.0}%; of the rest: {no_entry} no entry read, {empty} field empty (not read, or nothing our allow-list keeps), {markup_only} differ only in markup our allow-list or HTML5 parsing drops; {unsafe_literals} literals unsafe by our stricter rules (inline styles, a commented-out script), not compared)",
        files.len() - unsafe_files - failures.len(),
        files.len(),
        rate * 100.0
    );
    verbose("differs", &disagreements);
    assert!(
        failures.is_empty(),
        "parse failures:\n{}",
        listing(&failures)
    );
    assert!(
        violating.is_empty(),
        "dangerous HTML survived sanitising:\n{}",
        listing(&violating)
    );
    assert!(
        rate >= SANITIZE_AGREEMENT_MIN,
        "only {agreed}/{compared} agree with feedparser; differences:\n{}",
        listing(&disagreements)
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Dates

/// What a feedparser date field means for our entry: the field of ours that must equal it, or
/// `None` for a date that is not the entry's own (it must then not become one of ours).
fn our_date_field(field: &str) -> Option<Option<&'static str>> {
    let name = field
        .strip_prefix("entries[0]['")?
        .split('\'')
        .next()?
        .trim_end_matches("_parsed");
    Some(match name {
        // Atom 0.3 issued/created and dcterms:issued/created are the publication date.
        "published" | "created" => Some("published"),
        "updated" => Some("updated"),
        // An RSS 0.93 expirationDate, an atom:source's updated: not when the entry was
        // published or changed.
        "expired" | "source" => None,
        _ => return None,
    })
}

/// A feedparser date: a `time.struct_time` tuple (UTC), or the feed's own text, read with
/// chrono's RFC 3339 and RFC 2822 parsers (not ours).
fn expected_date(lit: &Literal) -> Option<DateTime<Utc>> {
    match lit {
        Literal::Tuple(t) if t.len() >= 6 => {
            let part = |i: usize| u32::try_from(t[i]).ok();
            NaiveDate::from_ymd_opt(i32::try_from(t[0]).ok()?, part(1)?, part(2)?)?
                .and_hms_opt(part(3)?, part(4)?, part(5)?)
                .map(|n| n.and_utc())
        }
        Literal::Str(s) => DateTime::parse_from_rfc3339(s)
            .or_else(|_| DateTime::parse_from_rfc2822(s))
            .ok()
            .map(|d| d.with_timezone(&Utc)),
        _ => None,
    }
}

/// The share of feedparser's entry dates we must match: what tributary measures today.
const DATE_AGREEMENT_MIN: f64 = 1.0;

#[test]
fn entry_dates() {
    let mut files = fixtures("wellformed/atom");
    files.extend(fixtures("wellformed/rss"));
    let (mut compared, mut matched, mut not_own) = (0, 0, 0);
    let mut misses = Vec::new();
    let mut failures = Vec::new();
    for path in &files {
        let case = Case::load(path);
        let name = case.rel();
        let run = match case.run() {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{name}: does not parse: {e}"));
                continue;
            }
        };
        for (lhs, lit) in case.comparisons() {
            let (Some(field), Some(expected)) = (our_date_field(&lhs), expected_date(&lit)) else {
                continue;
            };
            compared += 1;
            not_own += usize::from(field.is_none());
            let (published, updated) = match run.first() {
                Some(e) => (e.published, Some(e.updated)),
                None => (None, None),
            };
            let (ok, ours) = match field {
                Some("published") => (published == Some(expected), published),
                Some(_) => (updated == Some(expected), updated),
                None => (
                    run.first().is_some()
                        && published != Some(expected)
                        && updated != Some(expected),
                    published.or(updated),
                ),
            };
            if ok {
                matched += 1;
            } else {
                let what = field.map_or("neither published nor updated".into(), |f| {
                    format!("our {f}")
                });
                let ours = match run.first() {
                    Some(_) => format!("{ours:?}"),
                    None => "no entry".into(),
                };
                misses.push(format!(
                    "{name}: {lhs}: {what} should be {expected}, ours {ours}"
                ));
            }
        }
    }
    let rate = matched as f64 / compared.max(1) as f64;
    println!(
        "dates: {matched}/{compared} entry dates agree with feedparser to the second ({:.0}%, over {} files; {not_own} of the checks are that an expiry or source date does not become the entry's)",
        rate * 100.0,
        files.len()
    );
    verbose("miss", &misses);
    assert!(
        failures.is_empty(),
        "parse failures:\n{}",
        listing(&failures)
    );
    assert!(
        rate >= DATE_AGREEMENT_MIN,
        "only {matched}/{compared} dates agree; misses:\n{}",
        listing(&misses)
    );
}
