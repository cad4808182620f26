//! Corpus run: every file of the shared feed corpus through tributary's parse + normalise,
//! compared with what Python feedparser 6.0.14 found (the corpus's `MANIFEST.tsv`).
//!
//! ```text
//! cargo run --release --example corpus -- ../shared/corpus [--out CORPUS.md] [--tsv FILE]
//! ```
//!
//! Writes a Markdown report (default `CORPUS.md` at the repository root) and, with `--tsv`,
//! one line per file. `tests/corpus.rs` runs the same code as a regression guard.
//!
//! # Buckets
//! Every manifest row lands in exactly one bucket, decided from the manifest and the path:
//! - **reference**: feedparser parsed it cleanly (a version, bozo 0). Agreement is measured
//!   here only: the share of these files where tributary's entry count (after normalise)
//!   equals feedparser's. A parse error or a panic is a disagreement.
//! - **bozo with entries**: feedparser flagged the document (bozo 1) but still found entries.
//!   Informational: where tributary fails or counts differently.
//! - **bozo, no entries**: feedparser recognised a format but flagged it and found nothing.
//!   Only panics count here.
//! - **JSON**: a JSON input document (JSON Feed, or a deliberately broken / non-JSON-Feed
//!   JSON file). feedparser 6.0 has no JSON Feed support, so its `-` says nothing; the
//!   reference is the length of the document's own `items` array.
//! - **not a feed for feedparser**: version `-` and not JSON: CDF, plain XML, OPML, HTML,
//!   empty or gzip-compressed bodies. Processed; a difference is reported only where
//!   feedparser still counted entries.
//! - **skipped**: expected-output JSON of other parsers' test suites, not feeds by nature:
//!   feed-rs's `*.serde.json`, gofeed's `*_expected.json`, and a gofeed `X.json` next to an
//!   `X.xml` (gofeed's expected result for that XML). Not read.
//!
//! Every processed file is parsed inside `catch_unwind`; a panic is counted, not fatal.
//!
//! Inputs: feedparser-py files whose leading XML comment has a `Header: Content-type: ...`
//! line are parsed with that content type (feedparser's test harness serves them with it);
//! every other file with none. The base URL is `http://corpus.test/<path>`.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use url::Url;

/// The corpus, relative to the repository root.
pub const DEFAULT_CORPUS: &str = "../shared/corpus";

/// One line of `MANIFEST.tsv`.
#[derive(Clone, Debug)]
pub struct Row {
    pub path: String,
    /// feedparser's `version`; `None` for `-` (no feed recognised).
    pub fp_version: Option<String>,
    pub fp_bozo: bool,
    pub fp_entries: usize,
    pub fp_exception: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Bucket {
    Reference,
    BozoWithEntries,
    BozoEmpty,
    Json,
    NotAFeed,
    Skipped,
}

impl Bucket {
    pub const ALL: [Bucket; 6] = [
        Bucket::Reference,
        Bucket::BozoWithEntries,
        Bucket::BozoEmpty,
        Bucket::Json,
        Bucket::NotAFeed,
        Bucket::Skipped,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Bucket::Reference => "reference: feedparser found a version, bozo 0",
            Bucket::BozoWithEntries => "feedparser bozo 1, entries > 0",
            Bucket::BozoEmpty => "feedparser bozo 1, no entries",
            Bucket::Json => "JSON inputs (reference: the `items` array)",
            Bucket::NotAFeed => "not a feed for feedparser (version `-`, not JSON)",
            Bucket::Skipped => "skipped: other parsers' expected-output JSON",
        }
    }
}

/// Which identity the entries that normalise collapsed shared, by normalise's rule (guid,
/// else link, else title + summary + content).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Collapsed {
    pub same_id: usize,
    pub same_link: usize,
    /// No guid or link, and the same non-empty title/summary/content.
    pub same_content: usize,
    /// No guid or link, and no title, summary or content either: nothing tells them apart.
    pub empty: usize,
}

/// What tributary made of one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// parse or normalise panicked; the panic message.
    Panicked(String),
    /// parse returned an error; its message.
    Failed(String),
    /// `raw` entries from parse, `entries` after normalise (which keeps one entry per
    /// identity).
    Parsed {
        raw: usize,
        entries: usize,
        collapsed: Collapsed,
        first_title: Option<String>,
    },
    /// Not run (skipped bucket).
    NotRun,
}

#[derive(Clone, Debug)]
pub struct FileResult {
    pub row: Row,
    pub bucket: Bucket,
    pub content_type: Option<String>,
    pub outcome: Outcome,
    /// What the file should yield: feedparser's count, or for JSON the `items` length
    /// (`None` when the JSON is not a JSON Feed).
    pub expected: Option<usize>,
    /// Why tributary and the reference differ; `None` when they agree or when the bucket
    /// has no reference to differ from.
    pub cause: Option<Cause>,
}

impl FileResult {
    pub fn agrees(&self) -> bool {
        matches!(self.outcome, Outcome::Parsed { entries, .. } if Some(entries) == self.expected)
    }
}

/// Where a fix belongs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fix {
    /// In `src/feed/parse/` (a pre-pass over the bytes, or a fallback parse).
    Parse,
    /// In `src/feed/normalise.rs`.
    Normalise,
    /// Not a tributary bug: tributary is right, or the difference is deliberate.
    None,
    /// Debatable; cheap to match but of little real-world value.
    Optional,
}

impl Fix {
    fn label(self) -> &'static str {
        match self {
            Fix::Parse => "parse",
            Fix::Normalise => "normalise",
            Fix::None => "no",
            Fix::Optional => "optional",
        }
    }
}

/// A disagreement cause.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cause {
    Atom03,
    Rss1ItemWithoutLink,
    RssWithoutChannel,
    AtomTextType,
    RssInNamespace,
    Rss090OtherNamespace,
    Truncated,
    MismatchedTags,
    UndeclaredEntity,
    BareAmpersand,
    FeedNestedInOtherRoot,
    DedupSameId,
    DedupSameLink,
    DedupSameContent,
    DedupIndistinct,
    DedupOther,
    NestedItems,
    ItemInAtom,
    Cdf,
    NotAFeedEntries,
    JsonFeedRejected,
    JsonFeedCount,
    JsonNotJsonFeed,
    JsonBroken,
    NoFeedRoot,
    FeedRsError,
    IllFormedOther,
    FewerEntries,
    MoreEntries,
    Panic,
}

impl Cause {
    pub fn label(self) -> &'static str {
        match self {
            Cause::Atom03 => "Atom 0.3 (`http://purl.org/atom/ns#`): feed-rs reads no entries",
            Cause::Rss1ItemWithoutLink => {
                "RSS 1.0 / 0.90 `<item>` without `<link>`: feed-rs drops the item"
            }
            Cause::RssWithoutChannel => {
                "`<rss>` without `<channel>` (empty `<rss></rss>`, or `<item>` right under `<rss>`): feed-rs says no feed root"
            }
            Cause::AtomTextType => {
                "Atom text construct with a `type` other than text/html/xhtml (base64 `application/octet-stream`, `application/xhtml+xml`, empty, custom): feed-rs rejects the whole feed"
            }
            Cause::RssInNamespace => {
                "RSS 2.0 in a namespace (`xmlns=\"http://backend.userland.com/rss2\"` or a prefix): feed-rs reads no items"
            }
            Cause::Rss090OtherNamespace => {
                "RSS 0.90 under `http://channel.netscape.com/rdf/simple/0.9/`: no items"
            }
            Cause::Truncated => {
                "not well-formed: document ends early (last tag without `>`, unclosed CDATA or elements)"
            }
            Cause::MismatchedTags => "not well-formed: mismatched or unclosed end tag",
            Cause::UndeclaredEntity => "not well-formed: undeclared entity like `&nbsp;`",
            Cause::BareAmpersand => "not well-formed: bare `&`",
            Cause::FeedNestedInOtherRoot => {
                "feed element nested inside another root (Atom `<feed>` inside XHTML `<html><body>`)"
            }
            Cause::DedupSameId => "duplicate guids/ids collapsed by our within-feed dedup",
            Cause::DedupSameLink => "no guid, duplicate links collapsed by our within-feed dedup",
            Cause::DedupSameContent => {
                "no guid or link, identical title+content collapsed by our within-feed dedup"
            }
            Cause::DedupIndistinct => {
                "no guid or link, and the title/summary/content feed-rs reads are all empty: the entries collapse into one"
            }
            Cause::DedupOther => {
                "collapsed by our within-feed dedup (which identity, this run cannot tell)"
            }
            Cause::NestedItems => "feedparser counts `<item/>` nested inside `<item>`",
            Cause::ItemInAtom => "feedparser counts an RSS `<item>` inside an Atom `<feed>`",
            Cause::Cdf => "CDF (Microsoft Channel Definition Format): feedparser reads it",
            Cause::NotAFeedEntries => {
                "feedparser counts entries in a document that is not a feed (no known root)"
            }
            Cause::JsonFeedRejected => "JSON Feed rejected by feed-rs (strict deserialisation)",
            Cause::JsonFeedCount => "JSON Feed: entry count differs from `items`",
            Cause::JsonNotJsonFeed => {
                "JSON without a jsonfeed.org `version` (gofeed's `\"version\": \"1.0\"` tests, a JSON dump of an RSS feed)"
            }
            Cause::JsonBroken => "broken JSON (deliberately)",
            Cause::NoFeedRoot => "feed-rs finds no RSS/Atom/JSON root (other)",
            Cause::FeedRsError => "feed-rs rejects the document (other)",
            Cause::IllFormedOther => "not well-formed (other)",
            Cause::FewerEntries => "parsed, but fewer entries than feedparser (other)",
            Cause::MoreEntries => "parsed, but more entries than feedparser",
            Cause::Panic => "panic",
        }
    }

    pub fn fix(self) -> Fix {
        match self {
            Cause::Atom03
            | Cause::Rss1ItemWithoutLink
            | Cause::AtomTextType
            | Cause::RssInNamespace
            | Cause::Rss090OtherNamespace
            | Cause::Truncated
            | Cause::MismatchedTags
            | Cause::UndeclaredEntity
            | Cause::BareAmpersand
            | Cause::JsonFeedRejected
            | Cause::RssWithoutChannel
            | Cause::Panic => Fix::Parse,
            Cause::DedupIndistinct => Fix::Normalise,
            Cause::FeedNestedInOtherRoot | Cause::JsonNotJsonFeed => Fix::Optional,
            Cause::DedupSameId
            | Cause::DedupOther
            | Cause::DedupSameLink
            | Cause::DedupSameContent
            | Cause::NestedItems
            | Cause::ItemInAtom
            | Cause::Cdf
            | Cause::NotAFeedEntries
            | Cause::JsonBroken => Fix::None,
            Cause::JsonFeedCount
            | Cause::NoFeedRoot
            | Cause::FeedRsError
            | Cause::IllFormedOther
            | Cause::FewerEntries
            | Cause::MoreEntries => Fix::Optional,
        }
    }

    /// Who is right, and what to do.
    pub fn verdict(self) -> &'static str {
        match self {
            Cause::Atom03 => {
                "feedparser is right: Atom 0.3 is obsolete but still served. feed-rs dispatches on the root name `feed`, but maps only `http://www.w3.org/2005/Atom` to its Atom namespace, so every `<entry>` is an unknown element. Fix in parse, like the RSS 0.90 rewrite: map Atom 0.3 to 1.0 before feed-rs. The namespace alone is not enough: Atom 0.3 text constructs carry MIME types (`type=\"text/plain\"`, `\"text/html\"`, `\"application/xhtml+xml\"`, with `mode=\"escaped|xml|base64\"`), and feed-rs rejects the whole feed on any `type` other than text/html/xhtml (see that cause), so also rewrite `type` on title/subtitle/tagline/summary/rights/copyright to `text`/`html`/`xhtml` (unknown → `text`), and on `<content>` `application/xhtml+xml` → `xhtml` (feed-rs fails on inline `+xml` content, see the text-type cause); optionally rename `tagline`→`subtitle`, `copyright`→`rights`, `issued`→`published`, `modified`→`updated`, `url`→`uri` (person). A quick-xml event pass (read, rename, write) is safer than byte surgery. (A throwaway prototype doing only the namespace and `type` rewrites with regexes read 348 of these 355 files right; the rest then fall into other causes.)"
            }
            Cause::Rss1ItemWithoutLink => {
                "feedparser is right: RSS 1.0 requires `<link>` but items without one still carry a title or description, and feed-rs's RSS 1.0 (and so RSS 0.90) reader returns `None` for an item with no link. Fix in parse: before feed-rs, give such an `<item>` a `<link>` from its `rdf:about` (RSS 1.0's item URI, normally the same URL); an item with neither (the RSS 0.90 cases) needs parse's own fallback reader for RDF items, or an explicit decision to drop them."
            }
            Cause::RssWithoutChannel => {
                "Cheap to match, so worth it. Mostly test scaffolding: feedparser's encoding and version tests are `<rss version=...></rss>` with nothing inside, and feedparser says 0 entries where we say \"no RSS, Atom or JSON Feed root\" (feed-rs's RSS 2.0 reader requires `<channel>`). Two files have `<item>` right under `<rss>`: feedparser reads them, which is kinder. Cheap fix in parse: when the root is `<rss>` with no `<channel>` child, wrap the root's children in `<channel>...</channel>` and parse again (empty documents then give 0 entries, as feedparser). Note these files are also why the count comparison cannot see encoding bugs in `feedparser-py/tests/encoding`: see the probes."
            }
            Cause::AtomTextType => {
                "feedparser is right to keep the feed. RFC 4287 allows only text/html/xhtml on text constructs (`title`, `subtitle`, `summary`, `rights`), but feed-rs answers any other `type` (`application/octet-stream` base64 tests, `application/xhtml+xml`, `\"\"`, `application/x-custom`) with `UnknownMimeType`, failing the whole feed for one title. Fix in parse: on Atom text constructs map `type` by rule (`text/plain`/empty/unknown → `text`, `text/html` → `html`, `*/xhtml+xml` → `xhtml`; base64 optionally decoded) before feed-rs. `<content>` may carry any MIME type, but feed-rs 3.0 fails the feed on inline XML content too: a `.../xml` type goes to its text-construct reader, which rejects the type (`UnknownMimeType`), and a `...+xml` type (its check is `ends_with(\" +xml\")`, with a stray space) goes to the inline-text reader, which finds markup instead of text (`MissingContent`). So map XML types on `<content>` without `src` to `xhtml` as well (see the probes)."
            }
            Cause::RssInNamespace => {
                "feedparser is right: early RSS 2.0 drafts put the elements in `http://backend.userland.com/rss2`, and some feeds still do (node-feedparser's `iconv.xml` is a real windows-1251 feed). feed-rs dispatches on the root name, then sees every child in an unknown namespace. Fix in parse: remove that default namespace declaration (or rewrite its URI to nothing) before feed-rs; for the prefixed form (`<r:rss xmlns:r=...>`), drop the prefix."
            }
            Cause::Rss090OtherNamespace => {
                "feedparser reads 5 items (while calling the document version-less). parse's RSS 0.90 rewrite knows only `http://my.netscape.com/rdf/simple/0.9/`; rust-rss's `rss090.xml` uses `http://channel.netscape.com/rdf/simple/0.9/`. Fix in parse: rewrite that URI too."
            }
            Cause::Truncated => {
                "feedparser recovers (bozo 1, loose parser); we reject the whole feed. A document cut short by a broken server loses at most its last entry with recovery, all of it without. Fix in parse: a recovering pass (quick-xml with `check_end_names = false`, tracking the open elements; at EOF or an unterminated tag/CDATA, drop the broken tail and close what is open) and feed the repaired bytes to feed-rs."
            }
            Cause::MismatchedTags => {
                "feedparser recovers; we reject the whole feed. Same recovering pass as for truncation: on an end tag that does not match, close the open elements up to the matching one (or ignore a stray end tag)."
            }
            Cause::UndeclaredEntity => {
                "feedparser recovers; fix in parse by replacing HTML named entities with their characters before feed-rs."
            }
            Cause::BareAmpersand => {
                "feedparser recovers; fix in parse by escaping `&` that does not start a reference."
            }
            Cause::FeedNestedInOtherRoot => {
                "feedparser finds the `<feed>` anywhere in the document; feed-rs looks only at the root. A feed inside an XHTML page is a broken publisher, but recoverable: fix in parse (optional) by re-parsing from the first `<feed`/`<rss`/`<rdf:RDF` start tag below an unknown root."
            }
            Cause::DedupSameId => {
                "Deliberate, we are right for an aggregator: normalise keeps one entry per guid within a feed (the first). feedparser does not dedup; it is a parser. (In `scriptingNews.rss` the two items sharing a guid differ in text: the publisher reused the guid, and keeping the first is the documented choice.)"
            }
            Cause::DedupSameLink => {
                "Deliberate: entries without a guid are identified by their link, and two entries with the same link are one entry for us."
            }
            Cause::DedupSameContent => {
                "Deliberate: entries with neither guid nor link are identified by title + content; identical ones are the same entry."
            }
            Cause::DedupIndistinct => {
                "Mixed. Where the entries are copies of each other that differ only in element order or in elements nobody reads (feedparser's `node_precedence` and `link_priority` tests), one entry is right. Where the items are different but only in fields feed-rs does not map for RSS 2.0 or normalise does not hash (gofeed's fallback test: `dc:title`, `dc:description`, `itunes:summary`, `itunes:author`, `media:content`), feedparser is right: three items become one. Fix in normalise: widen the no-guid-no-link identity (authors, dates, enclosure/media URLs, categories), or keep entries whose identity is entirely empty instead of collapsing them."
            }
            Cause::DedupOther => {
                "Look at the files: normalise collapsed entries, by a rule (e.g. a guid shared by entries with different links) this run does not reproduce."
            }
            Cause::NestedItems => {
                "We are right: `<item />` nested inside an `<item>` is not an entry; feedparser counts each one."
            }
            Cause::ItemInAtom => {
                "We are right: an `<item>` inside an Atom `<feed>` is an unknown element; feedparser's test only checks that unknown namespaces are kept."
            }
            Cause::Cdf => {
                "CDF is a dead Microsoft format (IE 4); feedparser reads it, feed-rs does not. Not worth a fix."
            }
            Cause::NotAFeedEntries => {
                "We are right to call it not a feed: feedparser (version `-`) counts `<item>` elements of a document whose root is not a feed (feed-rs's `xml/` fixtures, e.g. a bare `<rdf>` without namespace)."
            }
            Cause::JsonFeedRejected => {
                "The publisher is sloppy, the feed is usable: feed-rs deserialises JSON Feed strictly (serde), so `\"version\": \"http://jsonfeed.org/version/1\"` (http, not https) or `\"tags\": \"a,b\"` (a string, not an array) fail the whole feed. Fix in parse: on a JSON Feed error, normalise the document with serde_json (`Value`) and retry: accept the http:// version URL, turn a string `tags` into a one-element array, drop fields of the wrong type."
            }
            Cause::JsonFeedCount => "To look at: feed-rs and the `items` array disagree.",
            Cause::JsonNotJsonFeed => {
                "We are right by the spec (the JSON Feed `version` is a URL); gofeed accepts `\"1.0\"`/`\"1.1\"` in its own tests. Optional to accept."
            }
            Cause::JsonBroken => "Deliberately broken JSON; an error is right.",
            Cause::NoFeedRoot
            | Cause::FeedRsError
            | Cause::IllFormedOther
            | Cause::FewerEntries
            | Cause::MoreEntries => "Not yet classified: look at the files.",
            Cause::Panic => "A bug: parse and normalise must never panic on input.",
        }
    }
}

/// Reads `MANIFEST.tsv` in `dir`.
pub fn read_manifest(dir: &Path) -> std::io::Result<Vec<Row>> {
    let text = std::fs::read_to_string(dir.join("MANIFEST.tsv"))?;
    let mut rows = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() < 6 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("MANIFEST.tsv: short line: {line}"),
            ));
        }
        rows.push(Row {
            path: cols[0].to_string(),
            fp_version: Some(cols[3].to_string()).filter(|v| v != "-"),
            fp_bozo: cols[4] == "1",
            fp_entries: cols[5].parse().unwrap_or(0),
            fp_exception: cols.get(6).copied().unwrap_or("").to_string(),
        });
    }
    Ok(rows)
}

/// The bucket of `row`; `paths` is every path of the manifest. See the module docs.
pub fn bucket(row: &Row, paths: &HashSet<&str>) -> Bucket {
    let p = row.path.as_str();
    if let Some(stem) = p.strip_suffix(".json") {
        let expected_output = p.ends_with(".serde.json")
            || p.ends_with("_expected.json")
            || (p.starts_with("gofeed/") && paths.contains(format!("{stem}.xml").as_str()));
        return if expected_output {
            Bucket::Skipped
        } else {
            Bucket::Json
        };
    }
    match (&row.fp_version, row.fp_bozo, row.fp_entries) {
        (None, _, _) => Bucket::NotAFeed,
        (Some(_), false, _) => Bucket::Reference,
        (Some(_), true, 0) => Bucket::BozoEmpty,
        (Some(_), true, _) => Bucket::BozoWithEntries,
    }
}

/// The Content-Type a feedparser-py test is served with: its leading XML comment's
/// `Header: Content-type: ...` line.
pub fn header_content_type(bytes: &[u8]) -> Option<String> {
    let head = &bytes[..bytes.len().min(4096)];
    let text = String::from_utf8_lossy(head);
    let start = text.find("<!--")?;
    let end = text[start..].find("-->").map_or(text.len(), |e| start + e);
    text[start..end].lines().find_map(|line| {
        let rest = line.trim().strip_prefix("Header:")?.trim();
        let (name, value) = rest.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("content-type")
            .then(|| value.trim().to_string())
    })
}

/// What a JSON document is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JsonKind {
    Broken,
    NotJsonFeed,
    /// A JSON Feed with this many `items`.
    JsonFeed(usize),
}

pub fn json_kind(bytes: &[u8]) -> JsonKind {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return JsonKind::Broken;
    };
    let is_json_feed = v
        .get("version")
        .and_then(|v| v.as_str())
        .is_some_and(|v| v.contains("jsonfeed.org"));
    if !is_json_feed {
        return JsonKind::NotJsonFeed;
    }
    JsonKind::JsonFeed(
        v.get("items")
            .and_then(|i| i.as_array())
            .map_or(0, Vec::len),
    )
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".to_string()
    }
}

fn collapsed(feed: &tributary::feed::parse::ParsedFeed) -> Collapsed {
    let mut seen = HashSet::new();
    let mut c = Collapsed::default();
    for e in &feed.entries {
        let id = e.id.trim();
        let link = e.links.first().map(|l| l.href.trim()).unwrap_or("");
        let content = format!(
            "{}\u{0}{}\u{0}{}",
            e.title.as_ref().map_or("", |t| t.content.trim()),
            e.summary.as_ref().map_or("", |t| t.content.trim()),
            e.content
                .as_ref()
                .and_then(|c| c.body.as_deref())
                .map_or("", str::trim)
        );
        let key = if !id.is_empty() {
            ("id", id.to_string())
        } else if !link.is_empty() {
            ("link", link.to_string())
        } else {
            ("content", content.clone())
        };
        if !seen.insert(key.clone()) {
            match key.0 {
                "id" => c.same_id += 1,
                "link" => c.same_link += 1,
                _ if content == "\u{0}\u{0}" => c.empty += 1,
                _ => c.same_content += 1,
            }
        }
    }
    c
}

/// Runs parse + normalise over `bytes`, catching panics.
pub fn run_one(bytes: &[u8], content_type: Option<&str>, base: &Url) -> Outcome {
    let now = chrono::Utc::now();
    let result = catch_unwind(AssertUnwindSafe(|| {
        match tributary::feed::parse::parse(bytes, content_type, base) {
            Ok(feed) => {
                let raw = feed.entries.len();
                let collapsed = collapsed(&feed);
                let n = tributary::feed::normalise::normalise(feed, "corpus", base, now);
                Outcome::Parsed {
                    raw,
                    entries: n.entries.len(),
                    collapsed,
                    first_title: n.entries.first().map(|e| e.title.clone()),
                }
            }
            Err(e) => Outcome::Failed(e.to_string()),
        }
    }));
    result.unwrap_or_else(|p| Outcome::Panicked(panic_message(p.as_ref())))
}

/// The structure of an XML document, as far as classification needs it.
#[derive(Clone, Debug, Default)]
pub struct Shape {
    /// The root's local name (`rss`, `feed`, `RDF`, ...).
    pub root: String,
    /// The root's namespace URI (declared on the root itself).
    pub root_ns: Option<String>,
    /// The default namespace declared on the root (`xmlns="..."`).
    pub default_ns: Option<String>,
    /// The root has a `<channel>` child.
    pub root_has_channel: bool,
    /// `<item>` elements anywhere, those without a `<link>` child, those inside another.
    pub items: usize,
    pub items_without_link: usize,
    pub nested_items: usize,
    /// A `feed`, `rss` or `RDF` element below the root.
    pub feed_below_root: bool,
}

/// UTF-16 and UTF-32 documents as UTF-8, so that the sniffer can read their names.
fn utf8_for_sniffing(bytes: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let units = |size: usize, be: bool, skip: usize| -> Vec<u32> {
        bytes[skip..]
            .chunks_exact(size)
            .map(|c| {
                c.iter().enumerate().fold(0u32, |acc, (i, &b)| {
                    let shift = if be { 8 * (size - 1 - i) } else { 8 * i };
                    acc | (u32::from(b) << shift)
                })
            })
            .collect()
    };
    let utf16 = |be: bool, skip: usize| -> Vec<u8> {
        let u: Vec<u16> = units(2, be, skip)
            .into_iter()
            .map(|u| u16::try_from(u).unwrap_or(0xfffd))
            .collect();
        String::from_utf16_lossy(&u).into_bytes()
    };
    let utf32 = |be: bool, skip: usize| -> Vec<u8> {
        units(4, be, skip)
            .into_iter()
            .map(|u| char::from_u32(u).unwrap_or('\u{fffd}'))
            .collect::<String>()
            .into_bytes()
    };
    match bytes {
        [0xff, 0xfe, 0, 0, ..] => utf32(false, 4).into(),
        [0, 0, 0xfe, 0xff, ..] => utf32(true, 4).into(),
        [b'<', 0, 0, 0, ..] => utf32(false, 0).into(),
        [0, 0, 0, b'<', ..] => utf32(true, 0).into(),
        [0xff, 0xfe, ..] => utf16(false, 2).into(),
        [0xfe, 0xff, ..] => utf16(true, 2).into(),
        [b'<', 0, ..] => utf16(false, 0).into(),
        [0, b'<', ..] => utf16(true, 0).into(),
        _ => bytes.into(),
    }
}

/// Reads the structure of `bytes` as far as it is XML.
pub fn shape(bytes: &[u8]) -> Shape {
    use quick_xml::events::{BytesStart, Event};
    let text = utf8_for_sniffing(bytes);
    let mut reader = quick_xml::Reader::from_reader(text.as_ref());
    reader.config_mut().check_end_names = false;
    let mut s = Shape::default();
    // (local name, has a <link> child)
    let mut open: Vec<(String, bool)> = Vec::new();
    let mut buf = Vec::new();
    let start = |e: &BytesStart<'_>, open: &mut Vec<(String, bool)>, s: &mut Shape| {
        let local: String = e.local_name().as_ref().to_string();
        if open.is_empty() && s.root.is_empty() {
            s.root = local.clone();
            let xmlns = match e.name().prefix() {
                Some(p) => format!("xmlns:{}", p.as_ref()),
                None => "xmlns".to_string(),
            };
            let attr = |name: &str| {
                e.attributes()
                    .flatten()
                    .find(|a| a.key.as_ref() == name)
                    .map(|a| a.value.into_owned())
            };
            s.root_ns = attr(&xmlns);
            s.default_ns = attr("xmlns");
        }
        if open.len() == 1 && local == "channel" {
            s.root_has_channel = true;
        }
        if !open.is_empty() && matches!(local.as_str(), "feed" | "rss" | "RDF") {
            s.feed_below_root = true;
        }
        if local == "item" {
            s.items += 1;
            if open.iter().any(|(n, _)| n == "item") {
                s.nested_items += 1;
            }
        }
        if local == "link"
            && let Some((parent, has_link)) = open.last_mut()
            && parent == "item"
        {
            *has_link = true;
        }
        local
    };
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) => {
                let local = start(&e, &mut open, &mut s);
                open.push((local, false));
            }
            Ok(Event::Empty(e)) => {
                if start(&e, &mut open, &mut s) == "item" {
                    s.items_without_link += 1;
                }
            }
            Ok(Event::End(_)) => {
                if let Some((name, has_link)) = open.pop()
                    && name == "item"
                    && !has_link
                {
                    s.items_without_link += 1;
                }
            }
            Ok(Event::Eof) | Err(_) => break,
            Ok(_) => {}
        }
        buf.clear();
    }
    s
}

const ATOM_03_NS: &str = "http://purl.org/atom/ns#";

/// Why the outcome differs from the reference for the file `bytes`.
fn classify(bytes: &[u8], r: &FileResult) -> Option<Cause> {
    if r.agrees() {
        return None;
    }
    let panicked = matches!(r.outcome, Outcome::Panicked(_));
    match r.bucket {
        Bucket::Skipped => return None,
        Bucket::BozoEmpty if !panicked => return None,
        Bucket::Json => {
            return Some(match (&r.outcome, json_kind(bytes)) {
                (Outcome::Panicked(_), _) => Cause::Panic,
                (_, JsonKind::Broken) => Cause::JsonBroken,
                (_, JsonKind::NotJsonFeed) => Cause::JsonNotJsonFeed,
                (Outcome::Failed(_), JsonKind::JsonFeed(_)) => Cause::JsonFeedRejected,
                _ => Cause::JsonFeedCount,
            });
        }
        Bucket::NotAFeed if !panicked => {
            if r.row.fp_entries == 0 {
                return None;
            }
            let s = shape(bytes);
            return Some(
                if s.root == "RDF"
                    && s.default_ns
                        .as_deref()
                        .is_some_and(|ns| ns.contains("netscape.com/rdf/simple/0.9"))
                {
                    Cause::Rss090OtherNamespace
                } else if s.root.eq_ignore_ascii_case("channel") && s.root != "channel" {
                    Cause::Cdf
                } else {
                    Cause::NotAFeedEntries
                },
            );
        }
        _ => {}
    }
    let s = shape(bytes);
    Some(match &r.outcome {
        Outcome::NotRun => return None,
        Outcome::Panicked(_) => Cause::Panic,
        Outcome::Parsed {
            raw,
            entries,
            collapsed: c,
            ..
        } => {
            let fp = r.row.fp_entries;
            if *raw >= fp && *entries < fp {
                [
                    (c.same_id, Cause::DedupSameId),
                    (c.empty, Cause::DedupIndistinct),
                    (c.same_link, Cause::DedupSameLink),
                    (c.same_content, Cause::DedupSameContent),
                ]
                .into_iter()
                .filter(|(n, _)| *n > 0)
                .max_by_key(|(n, _)| *n)
                .map_or(Cause::DedupOther, |(_, cause)| cause)
            } else if *entries < fp {
                let ns = s.root_ns.as_deref().unwrap_or("");
                let default_ns = s.default_ns.as_deref().unwrap_or("");
                if s.root == "feed" && ns == ATOM_03_NS {
                    Cause::Atom03
                } else if s.root == "RDF"
                    && default_ns.contains("netscape.com/rdf/simple/0.9")
                    && *raw == 0
                {
                    if default_ns.contains("channel.netscape.com") {
                        Cause::Rss090OtherNamespace
                    } else {
                        Cause::Rss1ItemWithoutLink
                    }
                } else if s.root == "rss" && !ns.is_empty() {
                    Cause::RssInNamespace
                } else if s.root == "RDF" && s.items_without_link > 0 {
                    Cause::Rss1ItemWithoutLink
                } else if s.nested_items > 0 && s.items == fp {
                    Cause::NestedItems
                } else if s.root == "feed" && s.items > 0 {
                    Cause::ItemInAtom
                } else {
                    Cause::FewerEntries
                }
            } else {
                Cause::MoreEntries
            }
        }
        Outcome::Failed(msg) => {
            if msg.contains("no RSS, Atom or JSON Feed root") {
                if s.root == "rss" && !s.root_has_channel {
                    Cause::RssWithoutChannel
                } else if s.feed_below_root && !matches!(s.root.as_str(), "rss" | "feed" | "RDF") {
                    Cause::FeedNestedInOtherRoot
                } else {
                    Cause::NoFeedRoot
                }
            } else if msg.contains("unsupported content type") {
                Cause::AtomTextType
            } else if msg.contains("XML error") || msg.contains("XmlReader") {
                let lower = msg.to_ascii_lowercase();
                if lower.contains("before end of input") || lower.contains("ends before") {
                    Cause::Truncated
                } else if lower.contains("expected `</") || lower.contains("unmatched") {
                    Cause::MismatchedTags
                } else if lower.contains("entity") {
                    Cause::UndeclaredEntity
                } else if lower.contains('&') {
                    Cause::BareAmpersand
                } else {
                    Cause::IllFormedOther
                }
            } else {
                Cause::FeedRsError
            }
        }
    })
}

/// The class of a parse error message: positions, numbers and quoted details taken out, so
/// that like errors group together.
pub fn error_class(msg: &str) -> String {
    let mut out = String::new();
    let mut chars = msg.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            while chars.peek().is_some_and(char::is_ascii_digit) {
                chars.next();
            }
            out.push('N');
        } else {
            out.push(c);
        }
    }
    // The content type in "not a feed" messages and the details of serde errors vary per
    // file; the message before them is the class.
    for cut in [
        " root (",
        " content type ",
        "unable to parse JSON: ",
        "unsupported version: ",
    ] {
        if let Some(at) = out.find(cut) {
            out.truncate(at + cut.len());
            out.push('…');
        }
    }
    out
}

/// The whole run.
pub struct Run {
    pub corpus: PathBuf,
    pub results: Vec<FileResult>,
    pub elapsed: Duration,
}

/// Runs every file of the corpus at `dir`, on all cores.
pub fn run(dir: &Path) -> std::io::Result<Run> {
    let started = Instant::now();
    let rows = read_manifest(dir)?;
    let paths: HashSet<&str> = rows.iter().map(|r| r.path.as_str()).collect();
    let jobs: Vec<(Row, Bucket)> = rows
        .iter()
        .map(|r| (r.clone(), bucket(r, &paths)))
        .collect();

    // Panics are caught and counted; keep their messages off stderr meanwhile.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<(usize, std::io::Result<FileResult>)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some((row, bucket)) = jobs.get(i) else {
                            break;
                        };
                        done.push((i, process(dir, row, *bucket)));
                    }
                    done
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    });
    std::panic::set_hook(hook);
    if results.len() != jobs.len() {
        return Err(std::io::Error::other(
            "a worker thread died outside catch_unwind",
        ));
    }
    results.sort_by_key(|(i, _)| *i);
    let results = results
        .into_iter()
        .map(|(_, r)| r)
        .collect::<std::io::Result<Vec<_>>>()?;
    Ok(Run {
        corpus: dir.to_path_buf(),
        results,
        elapsed: started.elapsed(),
    })
}

fn process(dir: &Path, row: &Row, bucket: Bucket) -> std::io::Result<FileResult> {
    let mut r = FileResult {
        row: row.clone(),
        bucket,
        content_type: None,
        outcome: Outcome::NotRun,
        expected: None,
        cause: None,
    };
    if bucket == Bucket::Skipped {
        return Ok(r);
    }
    let bytes = std::fs::read(dir.join(&row.path))
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", row.path)))?;
    if row.path.starts_with("feedparser-py/") {
        r.content_type = header_content_type(&bytes);
    }
    r.expected = if bucket == Bucket::Json {
        match json_kind(&bytes) {
            JsonKind::JsonFeed(n) => Some(n),
            _ => None,
        }
    } else {
        Some(row.fp_entries)
    };
    let base = Url::parse(&format!("http://corpus.test/{}", row.path))
        .map_err(|e| std::io::Error::other(format!("{}: {e}", row.path)))?;
    r.outcome = run_one(&bytes, r.content_type.as_deref(), &base);
    r.cause = classify(&bytes, &r);
    Ok(r)
}

/// A small synthetic document checking one known trouble spot of real feeds, with what a
/// lenient reader should make of it.
pub struct Probe {
    pub name: &'static str,
    pub content_type: Option<&'static str>,
    pub bytes: Vec<u8>,
    /// How many entries are right.
    pub entries: std::ops::RangeInclusive<usize>,
    /// The first entry's title after normalise, when it matters.
    pub title: Option<&'static str>,
}

pub fn probes() -> Vec<Probe> {
    const ITEM: &str = "<item><title>One</title><link>http://example.org/1</link></item>";
    let rss = |inner: &str| {
        format!("<rss version=\"2.0\"><channel><title>t</title>{inner}</channel></rss>")
    };
    let utf16le = |s: &str| -> Vec<u8> {
        let mut v = vec![0xff, 0xfe];
        v.extend(s.encode_utf16().flat_map(u16::to_le_bytes));
        v
    };
    let p = |name, content_type, bytes: Vec<u8>, entries: usize, title| Probe {
        name,
        content_type,
        bytes,
        entries: entries..=entries,
        title,
    };
    vec![
        p(
            "bare `&` in a title",
            None,
            rss("<item><title>AT&T</title><link>http://example.org/1</link></item>").into_bytes(),
            1,
            Some("AT&T"),
        ),
        p(
            "undeclared `&nbsp;` in a title",
            None,
            rss("<item><title>a&nbsp;b</title><link>http://example.org/1</link></item>")
                .into_bytes(),
            1,
            Some("a\u{a0}b"),
        ),
        p(
            "undeclared `&eacute;` next to a bare `&`",
            None,
            rss("<item><title>caf&eacute; & bar</title><link>http://example.org/1</link></item>")
                .into_bytes(),
            1,
            Some("café & bar"),
        ),
        p(
            "`<rss>` without version",
            None,
            format!("<rss><channel><title>t</title>{ITEM}</channel></rss>").into_bytes(),
            1,
            None,
        ),
        p(
            "`<rss version=\"0.94\">`",
            None,
            format!("<rss version=\"0.94\"><channel><title>t</title>{ITEM}</channel></rss>")
                .into_bytes(),
            1,
            None,
        ),
        p(
            "`<rss>` with `<item>` and no `<channel>`",
            None,
            format!("<rss version=\"2.0\">{ITEM}</rss>").into_bytes(),
            1,
            None,
        ),
        p(
            "RSS 2.0 in `http://backend.userland.com/rss2`",
            None,
            format!("<rss version=\"2.0\" xmlns=\"http://backend.userland.com/rss2\"><channel><title>t</title>{ITEM}</channel></rss>").into_bytes(),
            1,
            None,
        ),
        p(
            "RSS 0.90 (`my.netscape.com` namespace)",
            None,
            format!("<rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\" xmlns=\"http://my.netscape.com/rdf/simple/0.9/\"><channel><title>t</title><link>http://example.org/</link></channel>{ITEM}</rdf:RDF>").into_bytes(),
            1,
            None,
        ),
        p(
            "RSS 0.90 (`channel.netscape.com` namespace)",
            None,
            format!("<rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\" xmlns=\"http://channel.netscape.com/rdf/simple/0.9/\"><channel><title>t</title><link>http://example.org/</link></channel>{ITEM}</rdf:RDF>").into_bytes(),
            1,
            None,
        ),
        p(
            "RSS 1.0 item with `rdf:about` but no `<link>`",
            None,
            b"<rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\" xmlns=\"http://purl.org/rss/1.0/\"><channel rdf:about=\"http://example.org/\"><title>t</title><link>http://example.org/</link></channel><item rdf:about=\"http://example.org/1\"><title>One</title></item></rdf:RDF>".to_vec(),
            1,
            None,
        ),
        p(
            "Atom 0.3",
            None,
            b"<feed version=\"0.3\" xmlns=\"http://purl.org/atom/ns#\"><title>t</title><entry><id>tag:example.org,2004:1</id><title type=\"text/plain\">One</title></entry></feed>".to_vec(),
            1,
            Some("One"),
        ),
        p(
            "Atom 1.0 title `type=\"application/octet-stream\"` (base64)",
            None,
            b"<feed xmlns=\"http://www.w3.org/2005/Atom\"><title>t</title><entry><id>tag:example.org,2004:1</id><title type=\"application/octet-stream\">T25l</title></entry></feed>".to_vec(),
            1,
            None,
        ),
        p(
            "Atom 1.0 `<content type=\"application/xhtml+xml\">` with inline markup",
            None,
            b"<feed xmlns=\"http://www.w3.org/2005/Atom\"><title>t</title><entry><id>tag:example.org,2004:1</id><title>One</title><content type=\"application/xhtml+xml\"><div xmlns=\"http://www.w3.org/1999/xhtml\">a <b>b</b></div></content></entry></feed>".to_vec(),
            1,
            None,
        ),
        p(
            "RSS 2.0, last end tag without `>`",
            None,
            format!("<rss version=\"2.0\"><channel><title>t</title>{ITEM}</channel></rss").into_bytes(),
            1,
            None,
        ),
        p(
            "Atom 1.0, last end tag without `>`",
            None,
            b"<feed xmlns=\"http://www.w3.org/2005/Atom\"><title>t</title><entry><id>tag:example.org,2004:1</id><title>One</title></entry></feed".to_vec(),
            1,
            None,
        ),
        Probe {
            entries: 1..=2,
            ..p(
            "RSS 2.0 cut off inside the second item (feedparser: 2, the second one cut short)",
            None,
            format!("<rss version=\"2.0\"><channel><title>t</title>{ITEM}<item><title>Two</title><link>http://exa").into_bytes(),
            1,
            None,
        )},
        p(
            "RSS 2.0 with a mismatched end tag in an item",
            None,
            rss("<item><title>One</titel><link>http://example.org/1</link></item>").into_bytes(),
            1,
            None,
        ),
        p(
            "UTF-16LE with BOM",
            None,
            utf16le(&format!("<?xml version=\"1.0\" encoding=\"utf-16\"?>{}", rss("<item><title>é中</title><link>http://example.org/1</link></item>"))),
            1,
            Some("é中"),
        ),
        p(
            "ISO-8859-1 declared in the XML declaration",
            None,
            [
                &b"<?xml version=\"1.0\" encoding=\"iso-8859-1\"?><rss version=\"2.0\"><channel><title>t</title><item><title>caf"[..],
                &[0xe9],
                b"</title><link>http://example.org/1</link></item></channel></rss>",
            ]
            .concat(),
            1,
            Some("café"),
        ),
        p(
            "ISO-8859-1 declared only in the HTTP Content-Type",
            Some("application/rss+xml; charset=iso-8859-1"),
            [
                &b"<rss version=\"2.0\"><channel><title>t</title><item><title>caf"[..],
                &[0xe9],
                b"</title><link>http://example.org/1</link></item></channel></rss>",
            ]
            .concat(),
            1,
            Some("café"),
        ),
        p(
            "HTTP charset overrides the XML declaration (RFC 7303)",
            Some("text/xml; charset=iso-8859-1"),
            [
                &b"<?xml version=\"1.0\" encoding=\"utf-8\"?><rss version=\"2.0\"><channel><title>t</title><item><title>caf"[..],
                &[0xe9],
                b"</title><link>http://example.org/1</link></item></channel></rss>",
            ]
            .concat(),
            1,
            Some("café"),
        ),
        p(
            "windows-1252 bytes with no declaration at all",
            None,
            [
                &b"<rss version=\"2.0\"><channel><title>t</title><item><title>caf"[..],
                &[0xe9, 0x20, 0x93, b'q', 0x94],
                b"</title><link>http://example.org/1</link></item></channel></rss>",
            ]
            .concat(),
            1,
            Some("café \u{201c}q\u{201d}"),
        ),
        p(
            "JSON Feed with `http://` version URL",
            None,
            br#"{"version":"http://jsonfeed.org/version/1","title":"t","items":[{"id":"1","title":"One","content_text":"x"}]}"#.to_vec(),
            1,
            None,
        ),
        p(
            "JSON Feed with `\"tags\": \"a,b\"` (a string)",
            None,
            br#"{"version":"https://jsonfeed.org/version/1","title":"t","items":[{"id":"1","title":"One","content_text":"x","tags":"a,b"}]}"#.to_vec(),
            1,
            None,
        ),
    ]
}

/// A probe's result: (passed, what happened).
pub fn run_probe(p: &Probe) -> (bool, String) {
    let base = Url::parse("http://probe.test/feed").expect("static url");
    match run_one(&p.bytes, p.content_type, &base) {
        Outcome::Parsed {
            entries,
            first_title,
            ..
        } => {
            // normalise folds white space (U+00A0 included) in titles.
            let fold = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
            let title_ok = p
                .title
                .is_none_or(|t| first_title.as_deref().map(fold) == Some(fold(t)));
            let got = match &first_title {
                Some(t) if p.title.is_some() => format!("{}, title {t:?}", n_entries(entries)),
                _ => n_entries(entries),
            };
            (p.entries.contains(&entries) && title_ok, got)
        }
        Outcome::Failed(e) => (false, format!("error: {e}")),
        Outcome::Panicked(e) => (false, format!("PANIC: {e}")),
        Outcome::NotRun => (false, "not run".into()),
    }
}

impl Run {
    fn in_bucket(&self, b: Bucket) -> impl Iterator<Item = &FileResult> {
        self.results.iter().filter(move |r| r.bucket == b)
    }

    pub fn panics(&self) -> Vec<&FileResult> {
        self.results
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Panicked(_)))
            .collect()
    }

    /// (files agreeing, reference files).
    pub fn agreement(&self) -> (usize, usize) {
        let total = self.in_bucket(Bucket::Reference).count();
        let agree = self
            .in_bucket(Bucket::Reference)
            .filter(|r| r.agrees())
            .count();
        (agree, total)
    }

    /// Agreement in percent.
    pub fn agreement_pct(&self) -> f64 {
        let (a, t) = self.agreement();
        if t == 0 {
            0.0
        } else {
            100.0 * a as f64 / t as f64
        }
    }

    /// Files feedparser flagged (bozo 1) but read entries from, where tributary failed or
    /// counted differently.
    pub fn bozo_with_entries_disagreeing(&self) -> (usize, usize) {
        let all = self.in_bucket(Bucket::BozoWithEntries).count();
        let bad = self
            .in_bucket(Bucket::BozoWithEntries)
            .filter(|r| !r.agrees())
            .count();
        (bad, all)
    }

    /// Parse errors of processed files, by class: (class, example paths).
    pub fn error_classes(&self) -> Vec<(String, Vec<&FileResult>)> {
        let mut by: BTreeMap<String, Vec<&FileResult>> = BTreeMap::new();
        for r in &self.results {
            if let Outcome::Failed(msg) = &r.outcome {
                by.entry(error_class(msg)).or_default().push(r);
            }
        }
        let mut v: Vec<_> = by.into_iter().collect();
        v.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
        v
    }

    /// Disagreements by cause, biggest first.
    pub fn causes(&self) -> Vec<(Cause, Vec<&FileResult>)> {
        let mut by: BTreeMap<Cause, Vec<&FileResult>> = BTreeMap::new();
        for r in &self.results {
            if let Some(c) = r.cause {
                by.entry(c).or_default().push(r);
            }
        }
        let mut v: Vec<_> = by.into_iter().collect();
        v.sort_by(|a, b| {
            let refs =
                |x: &[&FileResult]| x.iter().filter(|r| r.bucket == Bucket::Reference).count();
            refs(&b.1)
                .cmp(&refs(&a.1))
                .then(b.1.len().cmp(&a.1.len()))
                .then(a.0.cmp(&b.0))
        });
        v
    }

    /// One line per file: path, bucket, content type, expected, outcome, cause.
    pub fn tsv(&self) -> String {
        let mut out =
            String::from("# path\tbucket\tcontent_type\texpected\traw\tentries\terror\tcause\n");
        for r in &self.results {
            let (raw, entries, err) = match &r.outcome {
                Outcome::Parsed { raw, entries, .. } => (raw.to_string(), entries.to_string(), ""),
                Outcome::Failed(m) | Outcome::Panicked(m) => ("-".into(), "-".into(), m.as_str()),
                Outcome::NotRun => ("-".into(), "-".into(), ""),
            };
            let _ = writeln!(
                out,
                "{}\t{:?}\t{}\t{}\t{raw}\t{entries}\t{}\t{}",
                r.row.path,
                r.bucket,
                r.content_type.as_deref().unwrap_or("-"),
                r.expected.map_or("-".into(), |e| e.to_string()),
                err.replace(['\t', '\n'], " "),
                r.cause.map_or("-".to_string(), |c| format!("{c:?}")),
            );
        }
        out
    }

    /// The Markdown report. `command` is how the run was started.
    pub fn report(&self, command: &str, date: &str, revision: Option<&str>) -> String {
        let mut md = String::new();
        let (agree, total) = self.agreement();
        let panics = self.panics();
        let (bozo_bad, bozo_all) = self.bozo_with_entries_disagreeing();
        let _ = writeln!(md, "# Corpus run: tributary vs. feedparser\n");
        let _ = writeln!(
            md,
            "Generated by `{command}` on {date}{}, in {:.1} s. Corpus: `{}` (`MANIFEST.tsv`: \
             what Python feedparser 6.0.14 made of each file). Regenerate with the same command; \
             `--tsv FILE` also writes one line per file. `tests/corpus.rs` runs the same code \
             as a regression guard.\n",
            revision.map_or(String::new(), |r| format!(" at `{r}`")),
            self.elapsed.as_secs_f64(),
            self.corpus.display(),
        );
        let _ = writeln!(md, "## Summary\n");
        let _ = writeln!(
            md,
            "- **Agreement: {agree} / {total} = {:.2}%** of the files feedparser parsed \
             cleanly (a version, bozo 0) give the same entry count after tributary's parse + \
             normalise.",
            self.agreement_pct()
        );
        let _ = writeln!(md, "- **Panics: {}.**", panics.len());
        for p in &panics {
            let _ = writeln!(
                md,
                "  - `{}`: {}",
                p.row.path,
                match &p.outcome {
                    Outcome::Panicked(m) => m.as_str(),
                    _ => "",
                }
            );
        }
        let _ = writeln!(
            md,
            "- feedparser bozo 1 but entries > 0: tributary failed or counted differently on \
             {bozo_bad} of {bozo_all} (informational).",
        );
        let fixable: usize = self
            .causes()
            .iter()
            .filter(|(c, _)| matches!(c.fix(), Fix::Parse | Fix::Normalise))
            .map(|(_, rs)| rs.iter().filter(|r| r.bucket == Bucket::Reference).count())
            .sum();
        let _ = writeln!(
            md,
            "- Reference files lost to causes marked fixable (parse/normalise) below: {fixable}; \
             agreement is at most {:.2}% once they are fixed (an upper bound: every file of those causes recovered).\n",
            if total == 0 {
                0.0
            } else {
                100.0 * (agree + fixable) as f64 / total as f64
            }
        );

        let _ = writeln!(md, "## Buckets\n");
        let _ = writeln!(
            md,
            "| bucket | files | parsed | parse errors | panics | same count as reference |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|");
        for b in Bucket::ALL {
            let rs: Vec<_> = self.in_bucket(b).collect();
            let count = |f: &dyn Fn(&Outcome) -> bool| rs.iter().filter(|r| f(&r.outcome)).count();
            let parsed = count(&|o| matches!(o, Outcome::Parsed { .. }));
            let failed = count(&|o| matches!(o, Outcome::Failed(_)));
            let panicked = count(&|o| matches!(o, Outcome::Panicked(_)));
            let same = rs.iter().filter(|r| r.agrees()).count();
            let with_ref = rs.iter().filter(|r| r.expected.is_some()).count();
            let same = if b == Bucket::Skipped {
                "-".to_string()
            } else if b == Bucket::NotAFeed {
                "- (an error is right)".to_string()
            } else {
                format!("{same} / {with_ref}")
            };
            let _ = writeln!(
                md,
                "| {} | {} | {parsed} | {failed} | {panicked} | {same} |",
                b.label(),
                rs.len()
            );
        }
        let _ = writeln!(md, "| **all** | {} | | | | |\n", self.results.len());
        let _ = writeln!(
            md,
            "Bucket rules: JSON files are skipped when they are other parsers' expected output \
             (`*.serde.json`, `*_expected.json`, a gofeed `X.json` next to `X.xml`), else \
             processed as JSON inputs; any other file with feedparser version `-` is \"not a \
             feed for feedparser\" (processed; compared only where feedparser still counted \
             entries); the rest split on feedparser's bozo flag and entry count. Content type: \
             the `Header: Content-type:` line of feedparser-py test files, else none.\n"
        );

        let _ = writeln!(md, "## Disagreements by cause\n");
        let _ = writeln!(
            md,
            "Counted per file, in every bucket; \"reference\" is the part that lowers the \
             agreement figure. \"Fix\": where a fix belongs (parse = `src/feed/parse/`, \
             normalise = `src/feed/normalise.rs`; no = tributary is right or it is deliberate; \
             optional = cheap to match, little real-world value).\n"
        );
        let _ = writeln!(
            md,
            "| cause | files | reference | bozo+entries | other buckets | fix | examples |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---:|---|---|");
        let causes = self.causes();
        for (c, rs) in &causes {
            let n = |b: Bucket| rs.iter().filter(|r| r.bucket == b).count();
            let reference = n(Bucket::Reference);
            let bozo = n(Bucket::BozoWithEntries);
            let examples: Vec<String> = examples(rs, 2)
                .iter()
                .map(|r| format!("`{}`", r.row.path))
                .collect();
            let _ = writeln!(
                md,
                "| {} | {} | {reference} | {bozo} | {} | {} | {} |",
                c.label(),
                rs.len(),
                rs.len() - reference - bozo,
                c.fix().label(),
                examples.join("<br>")
            );
        }
        let _ = writeln!(md);
        for (c, rs) in &causes {
            let _ = writeln!(
                md,
                "### {} ({} file{})\n",
                c.label(),
                rs.len(),
                if rs.len() == 1 { "" } else { "s" }
            );
            let _ = writeln!(
                md,
                "**Verdict (fix: {}).** {}\n",
                c.fix().label(),
                c.verdict()
            );
            for r in examples(rs, 6) {
                let got = match &r.outcome {
                    Outcome::Parsed { raw, entries, .. } if raw != entries => {
                        format!("{} ({raw} before dedup)", n_entries(*entries))
                    }
                    Outcome::Parsed { entries, .. } => n_entries(*entries),
                    Outcome::Failed(e) | Outcome::Panicked(e) => e.clone(),
                    Outcome::NotRun => "not run".into(),
                };
                let _ = writeln!(
                    md,
                    "- `{}`: reference {}, tributary: {}",
                    r.row.path,
                    r.expected.map_or("none".into(), |e| e.to_string()),
                    got
                );
            }
            if rs.len() > 6 {
                let _ = writeln!(md, "- … and {} more", rs.len() - 6);
            }
            let _ = writeln!(md);
        }

        let _ = writeln!(md, "## Parse errors by class\n");
        let _ = writeln!(
            md,
            "Every file (any bucket) for which `parse` returned an error; numbers and \
             per-file details folded.\n"
        );
        let _ = writeln!(
            md,
            "| error class | files | of which reference | examples |"
        );
        let _ = writeln!(md, "|---|---:|---:|---|");
        for (class, rs) in self.error_classes() {
            let examples: Vec<String> = examples(&rs, 2)
                .iter()
                .map(|r| format!("`{}`", r.row.path))
                .collect();
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                class.replace('|', "\\|"),
                rs.len(),
                rs.iter().filter(|r| r.bucket == Bucket::Reference).count(),
                examples.join("<br>")
            );
        }
        let _ = writeln!(md);

        let _ = writeln!(md, "## Probes\n");
        let _ = writeln!(
            md,
            "Small synthetic documents for the usual trouble spots of real feeds, some of \
             which the corpus cannot show by entry counts (the feedparser encoding tests are \
             mostly empty `<rss>` documents, so a wrong charset changes no count). Expected: \
             what a lenient reader (feedparser) makes of them.\n"
        );
        let _ = writeln!(md, "| probe | expected | tributary | ok |");
        let _ = writeln!(md, "|---|---|---|---|");
        for p in probes() {
            let (ok, got) = run_probe(&p);
            let n = if p.entries.start() == p.entries.end() {
                n_entries(*p.entries.start())
            } else {
                format!("{}–{} entries", p.entries.start(), p.entries.end())
            };
            let expected = match p.title {
                Some(t) => format!("{n}, title {t:?}"),
                None => n,
            };
            let name = match p.content_type {
                Some(ct) => format!("{} (`Content-Type: {ct}`)", p.name),
                None => p.name.to_string(),
            };
            let _ = writeln!(
                md,
                "| {name} | {expected} | {} | {} |",
                got.replace('|', "\\|"),
                if ok { "yes" } else { "**no**" }
            );
        }
        md
    }
}

fn n_entries(n: usize) -> String {
    format!("{n} {}", if n == 1 { "entry" } else { "entries" })
}

/// Up to `n` examples, preferring reference files, then different directories.
fn examples<'a>(rs: &[&'a FileResult], n: usize) -> Vec<&'a FileResult> {
    let mut sorted: Vec<&FileResult> = rs.to_vec();
    sorted.sort_by_key(|r| (r.bucket != Bucket::Reference, r.row.path.clone()));
    let dir = |r: &FileResult| {
        r.row
            .path
            .rsplit_once('/')
            .map_or(String::new(), |(d, _)| d.to_string())
    };
    let mut out: Vec<&FileResult> = Vec::new();
    let mut dirs = HashSet::new();
    for r in &sorted {
        if out.len() < n && dirs.insert(dir(r)) {
            out.push(r);
        }
    }
    for r in &sorted {
        if out.len() < n && !out.iter().any(|o| std::ptr::eq(*o, *r)) {
            out.push(r);
        }
    }
    out
}

fn git_revision() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut corpus = PathBuf::from(DEFAULT_CORPUS);
    let mut out = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/CORPUS.md"));
    let mut tsv: Option<PathBuf> = None;
    let mut command = String::from("cargo run --release --example corpus --");
    while let Some(a) = args.next() {
        match a.as_str() {
            "--out" => {
                out = args.next().expect("--out needs a path").into();
                let _ = write!(command, " --out {}", out.display());
            }
            "--tsv" => tsv = Some(args.next().expect("--tsv needs a path").into()),
            "-h" | "--help" => {
                println!(
                    "usage: cargo run --release --example corpus -- [CORPUS_DIR] [--out CORPUS.md] [--tsv FILE]"
                );
                return;
            }
            _ => {
                corpus = a.into();
                let _ = write!(command, " {}", corpus.display());
            }
        }
    }
    let run = match run(&corpus) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("corpus run failed: {e}");
            std::process::exit(2);
        }
    };
    if let Some(tsv) = tsv
        && let Err(e) = std::fs::write(&tsv, run.tsv())
    {
        eprintln!("cannot write {}: {e}", tsv.display());
        std::process::exit(2);
    }
    let date = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let report = run.report(&command, &date, git_revision().as_deref());
    if let Err(e) = std::fs::write(&out, report) {
        eprintln!("cannot write {}: {e}", out.display());
        std::process::exit(2);
    }
    let (a, t) = run.agreement();
    println!(
        "{} files in {:.1?}: agreement {a}/{t} = {:.2}%, {} panics; report in {}",
        run.results.len(),
        run.elapsed,
        run.agreement_pct(),
        run.panics().len(),
        out.display()
    );
}
