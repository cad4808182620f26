//! Reads and validates `feeds.toml`.
//!
//! Two phases, as in ripgrep: [`RawConfig`] is what the user wrote (deserialised with spans so
//! every error can point at `file:line:col`), [`Config`] is what the daemon runs, with every
//! value checked, defaulted and resolved (relative store paths against the config's folder).

pub mod opml;

use crate::feed::parse::DEFAULT_MAX_ENTRIES;

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;
use url::Url;

/// Default poll interval for sources that do not set one.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30 * 60);
/// The shortest interval accepted in `feeds.toml`.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// The longest duration accepted in `feeds.toml`.
pub const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);

/// A validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file this configuration was read from.
    pub path: PathBuf,
    pub server: ServerConfig,
    pub store: StoreConfig,
    pub publish: PublishConfig,
    pub fetch: FetchConfig,
    pub sources: Vec<SourceConfig>,
    /// Named feeds (`[[feed]]`), published at `/feeds/{name}.{fmt}`.
    pub feeds: Vec<FeedConfig>,
    pub retention: RetentionConfig,
    /// Source name → position in `sources`.
    index: HashMap<String, usize>,
}

impl Config {
    /// The source with this name.
    pub fn source(&self, name: &str) -> Option<&SourceConfig> {
        self.index.get(name).and_then(|&i| self.sources.get(i))
    }
}

/// How long entries are kept (`[retention]`); see README "Retention".
#[derive(Clone, Debug, PartialEq)]
pub struct RetentionConfig {
    /// Entries kept per source at most (newest first); a source's `keep` overrides it.
    pub keep_per_source: usize,
    /// Entries kept in the whole store at most (the oldest go first).
    pub keep_total: usize,
    /// Entries older than this (by date and by when first seen) are pruned; `None` keeps
    /// them forever. A source's `keep_for` overrides it.
    pub keep_for: Option<Duration>,
    /// The newest entries of each source kept whatever their age.
    pub keep_min: usize,
    /// How often retention runs.
    pub every: Duration,
    /// How long the entries of a source removed from the config are kept (hidden), in case
    /// it comes back.
    pub removed_after: Duration,
    /// How long a pruned entry's tombstone outlives its last sighting in the source's feed.
    pub tombstones_for: Duration,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            keep_per_source: 1000,
            keep_total: 250_000,
            keep_for: Some(Duration::from_secs(180 * DAY)),
            keep_min: 10,
            every: Duration::from_secs(3600),
            removed_after: Duration::from_secs(7 * DAY),
            tombstones_for: Duration::from_secs(90 * DAY),
        }
    }
}

const DAY: u64 = 24 * 3600;
/// The longest retention duration accepted (100 years).
const MAX_RETENTION: Duration = Duration::from_secs(100 * 366 * DAY);

/// A named feed: some sources and/or tags (all sources when neither is given), filtered by
/// patterns on title, summary, content and categories.
#[derive(Clone, Debug)]
pub struct FeedConfig {
    pub name: String,
    pub title: Option<String>,
    pub description: Option<String>,
    /// The sources it takes: those named plus those with one of its tags.
    pub sources: Vec<String>,
    pub include: Vec<regex::Regex>,
    pub exclude: Vec<regex::Regex>,
}

impl FeedConfig {
    /// Whether an entry with these texts belongs in the feed: it matches an include
    /// pattern (if there are any) and no exclude pattern.
    pub fn admits(&self, texts: &[&str]) -> bool {
        let hit = |r: &regex::Regex| texts.iter().any(|t| r.is_match(t));
        (self.include.is_empty() || self.include.iter().any(hit)) && !self.exclude.iter().any(hit)
    }

    /// Whether the feed takes this entry (its patterns on its title, summary, content and
    /// categories; the entry's source is not checked here).
    pub fn admits_entry(&self, e: &crate::model::Entry) -> bool {
        let mut texts = vec![e.title.as_str()];
        texts.extend(e.summary.as_deref());
        texts.extend(e.content.as_deref());
        texts.extend(e.categories.iter().map(String::as_str));
        self.admits(&texts)
    }

    /// The store index a feed with patterns is read from (see `model::FeedIndex`), named by
    /// a hash of its sources and patterns; `None` for a feed without patterns, which is
    /// read by merging its sources' own indexes.
    pub fn index(&self) -> Option<crate::model::FeedIndex> {
        if !self.has_patterns() {
            return None;
        }
        Some(crate::model::FeedIndex {
            id: self.index_id(),
            sources: self.sources.iter().cloned().collect(),
            admits: {
                let feed = self.clone();
                std::sync::Arc::new(move |e| feed.admits_entry(e))
            },
        })
    }

    /// Whether it filters by patterns (and so has a store index of its own).
    pub fn has_patterns(&self) -> bool {
        !self.include.is_empty() || !self.exclude.is_empty()
    }

    /// Names the feed's definition: equal sources and patterns, equal id.
    pub fn index_id(&self) -> [u8; 8] {
        let mut h = blake3::Hasher::new();
        let mut sources = self.sources.clone();
        sources.sort();
        sources.dedup();
        for (tag, list) in [
            ("sources", sources),
            (
                "include",
                self.include
                    .iter()
                    .map(|r| r.as_str().to_string())
                    .collect(),
            ),
            (
                "exclude",
                self.exclude
                    .iter()
                    .map(|r| r.as_str().to_string())
                    .collect(),
            ),
        ] {
            h.update(tag.as_bytes());
            h.update(&(list.len() as u64).to_le_bytes());
            for item in list {
                h.update(&(item.len() as u64).to_le_bytes());
                h.update(item.as_bytes());
            }
        }
        let mut id = [0u8; 8];
        id.copy_from_slice(&h.finalize().as_bytes()[..8]);
        id
    }
}

impl Config {
    /// The store indexes of the named feeds with patterns.
    pub fn feed_indexes(&self) -> Vec<crate::model::FeedIndex> {
        self.feeds.iter().filter_map(FeedConfig::index).collect()
    }
}

#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Open connections at most (idle keep-alive ones included); at the cap the longest-idle
    /// connection gives way to a new one.
    pub max_connections: usize,
    /// Open connections at most from one client address (an IPv6 /64 counts as one), unless
    /// the address is a trusted proxy.
    pub max_connections_per_ip: usize,
    /// Addresses exempt from `max_connections_per_ip` (reverse proxies): loopback by default.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// How long a client may take to send a request's headers, from the connection (first
    /// request) or from the request's first byte (later ones).
    pub header_timeout: Duration,
    /// How long a keep-alive connection may sit idle between requests.
    pub idle_timeout: Duration,
    /// Memory for rendered documents, in bytes.
    pub render_cache_bytes: u64,
    /// The public URL of this instance, without a trailing slash.
    pub base_url: String,
}

#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// Absolute, or relative to the current directory when the config's folder is.
    pub path: PathBuf,
    /// sled's page cache size.
    pub cache_bytes: u64,
    /// Polls store nothing while the store's file system has less free space than this.
    pub min_free_bytes: u64,
}

#[derive(Clone, Debug)]
pub struct PublishConfig {
    pub title: String,
    pub description: String,
    /// The author named on published feeds (needed for entries that name none).
    pub author: String,
    pub max_items: usize,
}

#[derive(Clone, Debug)]
pub struct FetchConfig {
    /// Sources polled at the same time, at most.
    pub concurrency: usize,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub max_body_bytes: u64,
    /// Entries read from one document, at most (the first ones: feeds list newest first).
    pub max_entries: usize,
    pub user_agent: String,
    pub default_interval: Duration,
    /// Requests to one host at the same time, at most.
    pub per_host: usize,
    /// Bounds on intervals derived from server hints (Cache-Control, Expires, `<ttl>`,
    /// Retry-After) and on backoff; intervals written in the config are honoured as written.
    pub min_interval: Duration,
    pub max_interval: Duration,
    /// Non-public networks that article pages (full text) may still be fetched from.
    pub allow_networks: Vec<ipnet::IpNet>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SourceConfig {
    pub name: String,
    pub url: Url,
    pub title: Option<String>,
    pub tags: Vec<String>,
    pub interval: Duration,
    /// Replaces `[fetch] user_agent` for this source.
    pub user_agent: Option<String>,
    /// Extra request headers (e.g. `Authorization`), validated as HTTP header names/values.
    pub headers: Vec<(String, String)>,
    /// Overrides `[retention] keep_per_source`.
    pub keep: Option<usize>,
    /// Overrides `[retention] keep_for` (`Some(None)`: forever).
    pub keep_for: Option<Option<Duration>>,
    /// Fetch each new entry's web page and publish the article extracted from it.
    pub full_text: bool,
    /// An entry is stored only if it matches one of these (when there are any)...
    pub include: Vec<Rule>,
    /// ...and none of these.
    pub exclude: Vec<Rule>,
    /// Rewrites entry titles, e.g. `"[{source}] {title}"`.
    pub title_template: Option<String>,
    /// New entries one poll may add at most; the rest are skipped for good.
    pub max_new_per_poll: Option<usize>,
}

/// A per-source filter rule: a pattern, matched against one field of an entry or (with no
/// field) against any of them.
#[derive(Clone, Debug)]
pub struct Rule {
    pub field: Option<Field>,
    pub pattern: regex::Regex,
}

impl PartialEq for Rule {
    fn eq(&self, other: &Rule) -> bool {
        self.field == other.field && self.pattern.as_str() == other.pattern.as_str()
    }
}

/// The fields filter rules can look at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Title,
    /// The summary and the content.
    Content,
    Link,
    /// Every author's name and email.
    Author,
    /// Every category.
    Category,
}

impl Field {
    pub const ALL: [(&'static str, Field); 5] = [
        ("title", Field::Title),
        ("content", Field::Content),
        ("link", Field::Link),
        ("author", Field::Author),
        ("category", Field::Category),
    ];
}

impl SourceConfig {
    /// How a reload should treat a source whose config changed from `old` to `self`.
    pub fn change_from(&self, old: &SourceConfig) -> SourceChange {
        if self.url != old.url || self.user_agent != old.user_agent || self.headers != old.headers {
            SourceChange::Request
        } else if self.interval != old.interval {
            SourceChange::Interval
        } else if self != old {
            SourceChange::Presentation
        } else {
            SourceChange::None
        }
    }
}

/// What changed about a source between two configs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceChange {
    None,
    /// Title, tags, retention, filters, full text, title template or the per-poll cap:
    /// what is kept and published, not how the source is requested.
    Presentation,
    Interval,
    /// URL, User-Agent or headers: the next poll is a different request.
    Request,
}

/// One problem in a config file, with its position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Everything wrong with a config file (all problems, not just the first).
#[derive(Debug)]
pub enum ConfigError {
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { path, error } => {
                write!(
                    f,
                    "{}: cannot read the config file: {error}",
                    path.display()
                )
            }
            ConfigError::Invalid { path, problems } => {
                for (i, p) in problems.iter().enumerate() {
                    if i > 0 {
                        writeln!(f)?;
                    }
                    write!(
                        f,
                        "{}:{}:{}: {}",
                        path.display(),
                        p.line,
                        p.column,
                        p.message
                    )?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ConfigError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: Option<RawServer>,
    #[serde(default)]
    store: Option<RawStore>,
    #[serde(default)]
    publish: Option<RawPublish>,
    #[serde(default)]
    fetch: Option<RawFetch>,
    #[serde(default, rename = "source")]
    sources: Vec<Spanned<RawSource>>,
    #[serde(default, rename = "feed")]
    feeds: Vec<Spanned<RawFeed>>,
    #[serde(default)]
    retention: Option<RawRetention>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRetention {
    keep_per_source: Option<Spanned<i64>>,
    keep_total: Option<Spanned<i64>>,
    keep_for: Option<Spanned<String>>,
    keep_min: Option<Spanned<i64>>,
    every: Option<Spanned<String>>,
    removed_after: Option<Spanned<String>>,
    tombstones_for: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFeed {
    name: Spanned<String>,
    title: Option<String>,
    description: Option<String>,
    #[serde(default)]
    sources: Vec<Spanned<String>>,
    #[serde(default)]
    tags: Vec<Spanned<String>>,
    #[serde(default)]
    include: Vec<Spanned<String>>,
    #[serde(default)]
    exclude: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<Spanned<String>>,
    base_url: Option<Spanned<String>>,
    max_connections: Option<Spanned<i64>>,
    max_connections_per_ip: Option<Spanned<i64>>,
    trusted_proxies: Option<Vec<Spanned<String>>>,
    header_timeout: Option<Spanned<String>>,
    idle_timeout: Option<Spanned<String>>,
    render_cache_mb: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    path: Option<String>,
    cache_mb: Option<Spanned<u64>>,
    min_free_mb: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPublish {
    title: Option<String>,
    description: Option<String>,
    author: Option<String>,
    max_items: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFetch {
    concurrency: Option<Spanned<i64>>,
    timeout: Option<Spanned<String>>,
    connect_timeout: Option<Spanned<String>>,
    max_body_mb: Option<Spanned<i64>>,
    max_entries: Option<Spanned<i64>>,
    user_agent: Option<String>,
    interval: Option<Spanned<String>>,
    per_host: Option<Spanned<i64>>,
    min_interval: Option<Spanned<String>>,
    max_interval: Option<Spanned<String>>,
    #[serde(default)]
    allow_networks: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    name: Spanned<String>,
    url: Spanned<String>,
    title: Option<String>,
    #[serde(default)]
    tags: Vec<Spanned<String>>,
    interval: Option<Spanned<String>>,
    user_agent: Option<Spanned<String>>,
    headers: Option<Spanned<std::collections::BTreeMap<String, Spanned<String>>>>,
    keep: Option<Spanned<i64>>,
    keep_for: Option<Spanned<String>>,
    full_text: Option<bool>,
    #[serde(default)]
    include: Vec<Spanned<RawRule>>,
    #[serde(default)]
    exclude: Vec<Spanned<RawRule>>,
    title_template: Option<Spanned<String>>,
    max_new_per_poll: Option<Spanned<i64>>,
}

/// A filter rule as written: a pattern for every field, or a table naming the field.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawRule {
    Any(String),
    Field { field: String, pattern: String },
}

/// Where to find the config: `--config`, else `TRIBUTARY_CONFIG` (clap reads it into the
/// flag), else `feeds.toml` in `$CONFIGURATION_DIRECTORY` (set by systemd's
/// `ConfigurationDirectory=`), else `./feeds.toml`.
pub fn resolve_path(flag: Option<PathBuf>) -> PathBuf {
    flag.unwrap_or_else(|| {
        first_directory("CONFIGURATION_DIRECTORY")
            .unwrap_or_default()
            .join("feeds.toml")
    })
}

/// The first folder of a systemd directory variable (`$STATE_DIRECTORY` and the like hold a
/// colon-separated list when a unit names several).
fn first_directory(var: &str) -> Option<PathBuf> {
    let value = std::env::var_os(var)?;
    std::env::split_paths(&value)
        .next()
        .filter(|p| !p.as_os_str().is_empty())
}

/// Reads and validates the config file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    parse(&text, path)
}

/// Validates config text; `path` names the file in messages and anchors relative paths.
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let mut v = Validator {
        text,
        problems: Vec::new(),
        line_starts: std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect(),
    };
    let raw: RawConfig = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            let mut message = e.message().trim().replace('\n', " ");
            // toml says "duplicate key" without naming it; the span does.
            if message == "duplicate key"
                && let Some(key) = e.span().and_then(|s| text.get(s))
            {
                message = format!("duplicate key `{}`", key.trim());
            }
            v.problem(e.span(), message);
            return Err(v.into_error(path));
        }
    };
    let config = v.build(raw, path);
    match config {
        Some(c) if v.problems.is_empty() => Ok(c),
        _ => Err(v.into_error(path)),
    }
}

struct Validator<'a> {
    text: &'a str,
    problems: Vec<Problem>,
    /// Where each line starts, so positions cost a binary search (a config with 10,000
    /// sources asks for 20,000 of them).
    line_starts: Vec<usize>,
}

impl Validator<'_> {
    fn problem(&mut self, span: Option<Range<usize>>, message: impl Into<String>) {
        let (line, column) = span.map(|s| self.line_col(s.start)).unwrap_or((1, 1));
        self.problems.push(Problem {
            line,
            column,
            message: message.into(),
        });
    }

    fn into_error(self, path: &Path) -> ConfigError {
        let mut problems = self.problems;
        problems.sort_by_key(|p| (p.line, p.column));
        ConfigError::Invalid {
            path: path.to_path_buf(),
            problems,
        }
    }

    fn duration(&mut self, value: &Spanned<String>, what: &str) -> Option<Duration> {
        self.duration_within(value, what, MAX_DURATION)
    }

    /// A retention age: a duration up to a century, or "forever" (`Some(None)`).
    fn age(&mut self, value: &Spanned<String>, what: &str) -> Option<Option<Duration>> {
        if value.get_ref().trim() == "forever" {
            return Some(None);
        }
        self.duration_within(value, what, MAX_RETENTION).map(Some)
    }

    fn duration_within(
        &mut self,
        value: &Spanned<String>,
        what: &str,
        max: Duration,
    ) -> Option<Duration> {
        match humantime::parse_duration(value.get_ref().trim()) {
            Ok(d) if d < MIN_INTERVAL => {
                self.problem(
                    Some(value.span()),
                    format!("{what} \"{}\" is shorter than one second", value.get_ref()),
                );
                None
            }
            Ok(d) if d > max => {
                let limit = if max == MAX_DURATION {
                    "a year"
                } else {
                    "a century"
                };
                self.problem(
                    Some(value.span()),
                    format!("{what} \"{}\" is longer than {limit}", value.get_ref()),
                );
                None
            }
            Ok(d) => Some(d),
            Err(_) => {
                self.problem(
                    Some(value.span()),
                    format!(
                        "{what} \"{}\" is not a duration; write e.g. \"90s\", \"30m\", \"2h\" or \"1h 30m\"",
                        value.get_ref()
                    ),
                );
                None
            }
        }
    }

    fn positive(&mut self, value: &Spanned<i64>, what: &str, max: i64) -> Option<u64> {
        let n = *value.get_ref();
        if n < 1 || n > max {
            self.problem(
                Some(value.span()),
                format!("{what} must be between 1 and {max}, not {n}"),
            );
            None
        } else {
            Some(n as u64)
        }
    }

    /// A regular expression (linear time, size-limited), or a problem at its position.
    fn regex(&mut self, pattern: &str, span: Range<usize>, what: &str) -> Option<regex::Regex> {
        match regex::RegexBuilder::new(pattern)
            .size_limit(1 << 20)
            .build()
        {
            Ok(r) => Some(r),
            Err(e) => {
                let detail = e
                    .to_string()
                    .lines()
                    .last()
                    .unwrap_or("")
                    .trim()
                    .to_string();
                self.problem(
                    Some(span),
                    format!(
                        "{what} pattern \"{pattern}\" is not a valid regular expression: {detail}"
                    ),
                );
                None
            }
        }
    }

    /// A source's filter rules; `None` if any is wrong (each is reported).
    fn rules(&mut self, raw: &[Spanned<RawRule>], what: &str) -> Option<Vec<Rule>> {
        let mut out = Vec::new();
        let mut ok = true;
        for r in raw {
            let (field, pattern) = match r.get_ref() {
                RawRule::Any(p) => (None, p),
                RawRule::Field { field, pattern } => {
                    match Field::ALL.iter().find(|(n, _)| n == field) {
                        Some((_, f)) => (Some(*f), pattern),
                        None => {
                            self.problem(
                                Some(r.span()),
                                format!(
                                    "{what} rule field \"{field}\" is not one of title, content, link, author, category"
                                ),
                            );
                            ok = false;
                            continue;
                        }
                    }
                }
            };
            match self.regex(pattern, r.span(), what) {
                Some(pattern) => out.push(Rule { field, pattern }),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// A title template: text with `{title}`, `{source}`, `{name}` and `{author}`
    /// placeholders (`{{` and `}}` for braces).
    fn template(&mut self, t: &Spanned<String>) -> Option<String> {
        match check_template(t.get_ref()) {
            Ok(()) => Some(t.get_ref().clone()),
            Err(message) => {
                self.problem(Some(t.span()), format!("title_template: {message}"));
                None
            }
        }
    }

    fn retention(&mut self, raw: RawRetention) -> Option<RetentionConfig> {
        let d = RetentionConfig::default();
        let count = |v: &mut Self, value: &Option<Spanned<i64>>, what, default: usize| match value {
            None => Some(default),
            Some(n) => v.positive(n, what, 100_000_000).map(|n| n as usize),
        };
        let keep_per_source = count(
            self,
            &raw.keep_per_source,
            "keep_per_source",
            d.keep_per_source,
        );
        let keep_total = count(self, &raw.keep_total, "keep_total", d.keep_total);
        let keep_min = match &raw.keep_min {
            Some(n) if *n.get_ref() == 0 => Some(0),
            other => count(self, other, "keep_min", d.keep_min),
        };
        let keep_for = match &raw.keep_for {
            None => Some(d.keep_for),
            Some(k) => self.age(k, "keep_for"),
        };
        let span = |v: &mut Self, value: &Option<Spanned<String>>, what, default| match value {
            None => Some(default),
            Some(k) => v.duration_within(k, what, MAX_RETENTION),
        };
        let every = span(self, &raw.every, "every", d.every);
        let removed_after = span(self, &raw.removed_after, "removed_after", d.removed_after);
        let tombstones_for = span(
            self,
            &raw.tombstones_for,
            "tombstones_for",
            d.tombstones_for,
        );
        if let (Some(min), Some(per), Some(k)) = (keep_min, keep_per_source, &raw.keep_min)
            && min > per
        {
            self.problem(
                Some(k.span()),
                format!("keep_min ({min}) must not be more than keep_per_source ({per})"),
            );
            return None;
        }
        Some(RetentionConfig {
            keep_per_source: keep_per_source?,
            keep_total: keep_total?,
            keep_for: keep_for?,
            keep_min: keep_min?,
            every: every?,
            removed_after: removed_after?,
            tombstones_for: tombstones_for?,
        })
    }

    fn build(&mut self, raw: RawConfig, path: &Path) -> Option<Config> {
        let server = raw.server.unwrap_or(RawServer {
            listen: None,
            base_url: None,
            max_connections: None,
            max_connections_per_ip: None,
            trusted_proxies: None,
            header_timeout: None,
            idle_timeout: None,
            render_cache_mb: None,
        });
        let max_connections = match &server.max_connections {
            None => Some(1024),
            Some(m) => self.positive(m, "max_connections", 1_000_000),
        };
        let max_connections_per_ip = match &server.max_connections_per_ip {
            None => Some(32),
            Some(m) => self.positive(m, "max_connections_per_ip", 1_000_000),
        };
        let trusted_proxies = match &server.trusted_proxies {
            None => Some(vec![
                ipnet::IpNet::new_assert(std::net::Ipv4Addr::LOCALHOST.into(), 8),
                ipnet::IpNet::new_assert(std::net::Ipv6Addr::LOCALHOST.into(), 128),
            ]),
            Some(list) => {
                let mut nets = Some(Vec::new());
                for t in list {
                    let text = t.get_ref().trim();
                    let net = text
                        .parse::<ipnet::IpNet>()
                        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from));
                    match (net, &mut nets) {
                        (Ok(n), Some(v)) => v.push(n.trunc()),
                        (Ok(_), None) => {}
                        (Err(_), _) => {
                            self.problem(
                                Some(t.span()),
                                format!(
                                    "trusted_proxies: \"{}\" is not an address or network like \"10.0.0.1\", \"10.0.0.0/8\" or \"fd00::/8\"",
                                    t.get_ref()
                                ),
                            );
                            nets = None;
                        }
                    }
                }
                nets
            }
        };
        let header_timeout = match &server.header_timeout {
            None => Some(Duration::from_secs(10)),
            Some(d) => self.duration(d, "header_timeout"),
        };
        let idle_timeout = match &server.idle_timeout {
            None => Some(Duration::from_secs(60)),
            Some(d) => self.duration(d, "idle_timeout"),
        };
        let render_cache_mb = match &server.render_cache_mb {
            None => Some(32),
            Some(m) if *m.get_ref() == 0 => Some(0),
            Some(m) => self.positive(m, "render_cache_mb", 65_536),
        };
        let listen = match &server.listen {
            None => Some(SocketAddr::from(([127, 0, 0, 1], 8080))),
            Some(l) => match l.get_ref().parse::<SocketAddr>() {
                Ok(a) => Some(a),
                Err(_) => {
                    self.problem(
                        Some(l.span()),
                        format!(
                            "listen \"{}\" is not an address and port like \"127.0.0.1:8080\" or \"[::]:8080\"",
                            l.get_ref()
                        ),
                    );
                    None
                }
            },
        };
        let base_url = match &server.base_url {
            None => listen.map(|a| format!("http://{a}")),
            Some(b) => match Url::parse(b.get_ref()) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
                    Some(b.get_ref().trim_end_matches('/').to_string())
                }
                _ => {
                    self.problem(
                        Some(b.span()),
                        format!(
                            "base_url \"{}\" must be an absolute http(s) URL like \"https://news.example.org\"",
                            b.get_ref()
                        ),
                    );
                    None
                }
            },
        };

        let config_dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let store_raw = raw.store.unwrap_or(RawStore {
            path: None,
            cache_mb: None,
            min_free_mb: None,
        });
        // Under systemd, StateDirectory= is where state belongs (and the only writable
        // place in a hardened unit): relative store paths resolve there.
        let store_base = first_directory("STATE_DIRECTORY").unwrap_or(config_dir);
        let store_path = store_base.join(store_raw.path.unwrap_or_else(|| "store".into()));
        let min_free_mb = match &store_raw.min_free_mb {
            None => Some(64),
            Some(m) if *m.get_ref() == 0 => Some(0),
            Some(m) => self.positive(m, "min_free_mb", 1 << 30),
        };
        let cache_mb = match &store_raw.cache_mb {
            None => 32,
            Some(c) => {
                let n = *c.get_ref();
                if n == 0 || n > 65_536 {
                    self.problem(
                        Some(c.span()),
                        format!("cache_mb must be between 1 and 65536, not {n}"),
                    );
                }
                n
            }
        };

        let publish = raw.publish.unwrap_or(RawPublish {
            title: None,
            description: None,
            author: None,
            max_items: None,
        });
        let max_items = match &publish.max_items {
            None => Some(50),
            Some(m) => self.positive(m, "max_items", 10_000),
        };
        let title = publish
            .title
            .unwrap_or_else(|| "tributary".to_string())
            .trim()
            .to_string();

        let mut fetch_raw = raw.fetch.unwrap_or(RawFetch {
            concurrency: None,
            timeout: None,
            connect_timeout: None,
            max_body_mb: None,
            max_entries: None,
            user_agent: None,
            interval: None,
            per_host: None,
            min_interval: None,
            max_interval: None,
            allow_networks: Vec::new(),
        });
        let fetch_allow_networks = std::mem::take(&mut fetch_raw.allow_networks);
        let concurrency = match &fetch_raw.concurrency {
            None => Some(8),
            Some(c) => self.positive(c, "concurrency", 1024),
        };
        let timeout = match &fetch_raw.timeout {
            None => Some(Duration::from_secs(30)),
            Some(t) => self.duration(t, "timeout"),
        };
        let connect_timeout = match &fetch_raw.connect_timeout {
            None => Some(Duration::from_secs(10)),
            Some(t) => self.duration(t, "connect_timeout"),
        };
        let max_entries = match &fetch_raw.max_entries {
            None => Some(DEFAULT_MAX_ENTRIES as u64),
            Some(m) => self.positive(m, "max_entries", 1_000_000),
        };
        let max_body_mb = match &fetch_raw.max_body_mb {
            None => Some(16),
            Some(m) => self.positive(m, "max_body_mb", 1024),
        };
        let default_interval = match &fetch_raw.interval {
            None => Some(DEFAULT_INTERVAL),
            Some(i) => self.duration(i, "interval"),
        };
        let per_host = match &fetch_raw.per_host {
            None => Some(1),
            Some(p) => self.positive(p, "per_host", 64),
        };
        let min_interval = match &fetch_raw.min_interval {
            None => Some(Duration::from_secs(60)),
            Some(i) => self.duration(i, "min_interval"),
        };
        let max_interval = match &fetch_raw.max_interval {
            None => Some(Duration::from_secs(24 * 3600)),
            Some(i) => self.duration(i, "max_interval"),
        };
        if let (Some(min), Some(max), Some(span)) =
            (min_interval, max_interval, fetch_raw.max_interval.as_ref())
            && max < min
        {
            self.problem(
                Some(span.span()),
                "max_interval must not be shorter than min_interval",
            );
        }
        let user_agent = fetch_raw.user_agent.unwrap_or_else(|| match &base_url {
            Some(b) => format!("tributary/{} (+{b})", crate::VERSION),
            None => format!("tributary/{}", crate::VERSION),
        });

        let mut sources = Vec::new();
        let mut names: HashMap<String, usize> = HashMap::new();
        let mut urls: HashMap<String, usize> = HashMap::new();
        for raw_source in &raw.sources {
            let s = raw_source.get_ref();
            let name = s.name.get_ref().trim();
            let name_line = self.line_col(s.name.span().start).0;
            let mut ok = true;
            if !is_slug(name) {
                self.problem(
                    Some(s.name.span()),
                    format!(
                        "source name \"{name}\" must be a slug: lowercase letters, digits, '-' and '_', starting with a letter or digit (it is used in URLs)"
                    ),
                );
                ok = false;
            } else if let Some(first) = names.get(name) {
                self.problem(
                    Some(s.name.span()),
                    format!("duplicate source name \"{name}\" (first used on line {first})"),
                );
                ok = false;
            } else {
                names.insert(name.to_string(), name_line);
            }

            let url = match Url::parse(s.url.get_ref().trim()) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Some(u),
                Ok(u) if u.scheme() == "file" => Some(u),
                Ok(u) => {
                    self.problem(
                        Some(s.url.span()),
                        format!(
                            "url \"{}\" has scheme \"{}\"; sources must be http://, https:// or file://",
                            s.url.get_ref(),
                            u.scheme()
                        ),
                    );
                    None
                }
                Err(e) => {
                    self.problem(
                        Some(s.url.span()),
                        format!(
                            "url \"{}\" is not an absolute URL ({e}); write e.g. \"https://example.org/feed.xml\" or \"file:///home/me/feed.xml\"",
                            s.url.get_ref()
                        ),
                    );
                    None
                }
            };
            if let Some(u) = &url {
                let key = u.as_str().to_string();
                if let Some(first) = urls.get(&key) {
                    self.problem(
                        Some(s.url.span()),
                        format!("duplicate source url \"{key}\" (first used on line {first})"),
                    );
                    ok = false;
                } else {
                    let line = self.line_col(s.url.span().start).0;
                    urls.insert(key, line);
                }
            }

            let mut tags = Vec::new();
            for t in &s.tags {
                let tag = t.get_ref().trim();
                if is_slug(tag) {
                    if !tags.iter().any(|x| x == tag) {
                        tags.push(tag.to_string());
                    }
                } else {
                    self.problem(
                        Some(t.span()),
                        format!(
                            "tag \"{tag}\" must be a slug: lowercase letters, digits, '-' and '_'"
                        ),
                    );
                    ok = false;
                }
            }
            let interval = match &s.interval {
                None => default_interval,
                Some(i) => self.duration(i, "interval"),
            };
            let user_agent = match &s.user_agent {
                Some(ua) if reqwest::header::HeaderValue::from_str(ua.get_ref()).is_err() => {
                    self.problem(
                        Some(ua.span()),
                        "user_agent must be printable ASCII on one line",
                    );
                    ok = false;
                    None
                }
                other => other.as_ref().map(|ua| ua.get_ref().clone()),
            };
            let mut headers = Vec::new();
            let raw_headers = s.headers.iter().flat_map(|h| {
                let span = h.span();
                h.get_ref().iter().map(move |(k, v)| (span.clone(), k, v))
            });
            for (span, key, value) in raw_headers {
                if reqwest::header::HeaderName::from_bytes(key.as_bytes()).is_err() {
                    self.problem(
                        Some(span),
                        format!("header name \"{key}\" is not a valid HTTP header name"),
                    );
                    ok = false;
                } else if reqwest::header::HeaderValue::from_str(value.get_ref()).is_err() {
                    self.problem(
                        Some(value.span()),
                        format!(
                            "the value of header \"{key}\" must be printable ASCII on one line"
                        ),
                    );
                    ok = false;
                } else {
                    headers.push((key.clone(), value.get_ref().clone()));
                }
            }
            let include = self.rules(&s.include, "include");
            let exclude = self.rules(&s.exclude, "exclude");
            let title_template = match &s.title_template {
                None => Some(None),
                Some(t) => self.template(t).map(Some),
            };
            let max_new_per_poll = match &s.max_new_per_poll {
                None => Some(None),
                Some(m) => self
                    .positive(m, "max_new_per_poll", 1_000_000)
                    .map(|m| Some(m as usize)),
            };
            let keep = match &s.keep {
                None => Some(None),
                Some(k) => self
                    .positive(k, "keep", 10_000_000)
                    .map(|k| Some(k as usize)),
            };
            let keep_for = match &s.keep_for {
                None => Some(None),
                Some(k) => self.age(k, "keep_for").map(Some),
            };
            if let (
                true,
                Some(url),
                Some(interval),
                Some(keep),
                Some(keep_for),
                Some(include),
                Some(exclude),
                Some(title_template),
                Some(max_new_per_poll),
            ) = (
                ok,
                url,
                interval,
                keep,
                keep_for,
                include,
                exclude,
                title_template,
                max_new_per_poll,
            ) {
                sources.push(SourceConfig {
                    keep,
                    keep_for,
                    full_text: s.full_text.unwrap_or(false),
                    include,
                    exclude,
                    title_template,
                    max_new_per_poll,
                    name: name.to_string(),
                    url,
                    title: s.title.clone().map(|t| t.trim().to_string()),
                    tags,
                    interval,
                    user_agent,
                    headers,
                });
            }
        }

        let mut feeds = Vec::new();
        let mut feed_names: HashMap<String, usize> = HashMap::new();
        for raw_feed in &raw.feeds {
            let f = raw_feed.get_ref();
            let name = f.name.get_ref().trim();
            let mut ok = true;
            if !is_slug(name) {
                self.problem(
                    Some(f.name.span()),
                    format!("feed name \"{name}\" must be a slug: lowercase letters, digits, '-' and '_'"),
                );
                ok = false;
            } else if let Some(first) = feed_names.get(name) {
                self.problem(
                    Some(f.name.span()),
                    format!("duplicate feed name \"{name}\" (first used on line {first})"),
                );
                ok = false;
            } else {
                let line = self.line_col(f.name.span().start).0;
                feed_names.insert(name.to_string(), line);
            }
            let mut chosen: Vec<String> = Vec::new();
            for s in &f.sources {
                if sources.iter().any(|c| &c.name == s.get_ref()) {
                    chosen.push(s.get_ref().clone());
                } else {
                    self.problem(
                        Some(s.span()),
                        format!(
                            "feed \"{name}\" names source \"{}\", which is not a [[source]]",
                            s.get_ref()
                        ),
                    );
                    ok = false;
                }
            }
            for t in &f.tags {
                let tagged: Vec<&SourceConfig> = sources
                    .iter()
                    .filter(|c| c.tags.contains(t.get_ref()))
                    .collect();
                if tagged.is_empty() {
                    self.problem(
                        Some(t.span()),
                        format!(
                            "feed \"{name}\" takes tag \"{}\", which no source has",
                            t.get_ref()
                        ),
                    );
                    ok = false;
                }
                for c in tagged {
                    if !chosen.contains(&c.name) {
                        chosen.push(c.name.clone());
                    }
                }
            }
            if f.sources.is_empty() && f.tags.is_empty() {
                chosen = sources.iter().map(|c| c.name.clone()).collect();
            }
            let mut compile = |patterns: &[Spanned<String>], what: &str| -> Vec<regex::Regex> {
                patterns
                    .iter()
                    .filter_map(|p| self.regex(p.get_ref(), p.span(), what))
                    .collect()
            };
            let include = compile(&f.include, "include");
            let exclude = compile(&f.exclude, "exclude");
            if ok && include.len() == f.include.len() && exclude.len() == f.exclude.len() {
                feeds.push(FeedConfig {
                    name: name.to_string(),
                    title: f.title.clone(),
                    description: f.description.clone(),
                    sources: chosen,
                    include,
                    exclude,
                });
            }
        }

        let retention = self.retention(raw.retention.unwrap_or_default());
        let mut allow_networks = Vec::new();
        for n in &fetch_allow_networks {
            match n.get_ref().trim().parse::<ipnet::IpNet>() {
                Ok(net) => allow_networks.push(net.trunc()),
                Err(_) => match n.get_ref().trim().parse::<std::net::IpAddr>() {
                    Ok(ip) => allow_networks.push(ipnet::IpNet::from(ip)),
                    Err(_) => self.problem(
                        Some(n.span()),
                        format!(
                            "allow_networks entry \"{}\" is not a network like \"10.0.0.0/8\", \"fd00::/8\" or an address",
                            n.get_ref()
                        ),
                    ),
                },
            }
        }

        let index = sources
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.clone(), i))
            .collect();
        Some(Config {
            index,
            feeds,
            path: path.to_path_buf(),
            server: ServerConfig {
                max_connections: max_connections? as usize,
                max_connections_per_ip: max_connections_per_ip? as usize,
                trusted_proxies: trusted_proxies?,
                header_timeout: header_timeout?,
                idle_timeout: idle_timeout?,
                render_cache_bytes: render_cache_mb?.saturating_mul(1024 * 1024),
                listen: listen?,
                base_url: base_url?,
            },
            store: StoreConfig {
                path: store_path,
                cache_bytes: cache_mb.saturating_mul(1024 * 1024),
                min_free_bytes: min_free_mb?.saturating_mul(1024 * 1024),
            },
            retention: retention?,
            publish: PublishConfig {
                description: publish
                    .description
                    .unwrap_or_else(|| format!("{title}: combined by tributary")),
                author: publish.author.unwrap_or_else(|| title.clone()),
                title,
                max_items: max_items? as usize,
            },
            fetch: FetchConfig {
                concurrency: concurrency? as usize,
                timeout: timeout?,
                connect_timeout: connect_timeout?,
                max_body_bytes: max_body_mb? * 1024 * 1024,
                max_entries: max_entries? as usize,
                user_agent,
                default_interval: default_interval?,
                per_host: per_host? as usize,
                min_interval: min_interval?,
                max_interval: max_interval?,
                allow_networks,
            },
            sources,
        })
    }
}

/// The placeholders a title template may use.
pub const TEMPLATE_FIELDS: [&str; 4] = ["title", "source", "name", "author"];

/// Checks a title template: balanced braces around known placeholders.
pub fn check_template(t: &str) -> Result<(), String> {
    let mut rest = t;
    while let Some(i) = rest.find(['{', '}']) {
        let (c, after) = (rest.as_bytes()[i], &rest[i + 1..]);
        if after.starts_with(c as char) {
            rest = &after[1..];
            continue;
        }
        if c == b'}' {
            return Err("a lone '}' (write '}}' for a brace)".into());
        }
        let Some(end) = after.find('}') else {
            return Err("a '{' without its '}' (write '{{' for a brace)".into());
        };
        let name = &after[..end];
        if !TEMPLATE_FIELDS.contains(&name) {
            return Err(format!(
                "unknown placeholder {{{name}}}; use {{title}}, {{source}}, {{name}} or {{author}}"
            ));
        }
        rest = &after[end + 1..];
    }
    Ok(())
}

/// Slugs name sources and tags in URLs: `[a-z0-9][a-z0-9_-]*`, at most 64 bytes.
pub fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().enumerate().all(|(i, b)| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || (i > 0 && (b == b'-' || b == b'_'))
        })
}

impl Validator<'_> {
    /// 1-based line and column (in characters) of a byte offset.
    fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&start| start <= offset);
        let line_start = self.line_starts[line.saturating_sub(1)];
        let column = self
            .text
            .get(line_start..offset)
            .map_or(0, |s| s.chars().count())
            + 1;
        (line, column)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        match parse(text, Path::new("feeds.toml")) {
            Ok(_) => Vec::new(),
            Err(e) => e.to_string().lines().map(str::to_string).collect(),
        }
    }

    #[test]
    fn server_connection_keys() {
        let c = parse(
            "[server]\nmax_connections_per_ip = 4\ntrusted_proxies = [\"10.0.0.1\", \"10.1.2.3/8\", \"fd00::/8\"]\n\
             header_timeout = \"5s\"\nidle_timeout = \"2m\"\nrender_cache_mb = 0\n",
            Path::new("/etc/tributary/feeds.toml"),
        )
        .expect("valid");
        assert_eq!(c.server.max_connections_per_ip, 4);
        let nets: Vec<String> = c
            .server
            .trusted_proxies
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(nets, ["10.0.0.1/32", "10.0.0.0/8", "fd00::/8"]);
        assert_eq!(c.server.header_timeout, Duration::from_secs(5));
        assert_eq!(c.server.idle_timeout, Duration::from_secs(120));
        assert_eq!(c.server.render_cache_bytes, 0);
        let d = parse("", Path::new("/etc/tributary/feeds.toml")).expect("valid");
        assert_eq!(d.server.max_connections_per_ip, 32);
        assert_eq!(d.server.render_cache_bytes, 32 << 20);
        assert!(
            d.server
                .trusted_proxies
                .iter()
                .any(|n| n.contains(&std::net::IpAddr::from([127, 0, 0, 5])))
        );
        let p = problems(
            "[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"proxy.example\"]\nmax_connections_per_ip = 0\n",
        );
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(
            p[0].contains(":2:34:") && p[0].contains("proxy.example"),
            "{p:?}"
        );
        assert!(p[1].contains("max_connections_per_ip"), "{p:?}");
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let c = parse(
            "[[source]]\nname = \"a\"\nurl = \"https://example.org/feed\"\n",
            Path::new("/etc/tributary/feeds.toml"),
        )
        .expect("valid");
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.server.base_url, "http://127.0.0.1:8080");
        assert_eq!(c.store.path, PathBuf::from("/etc/tributary/store"));
        assert_eq!(c.publish.max_items, 50);
        assert_eq!(c.sources[0].interval, DEFAULT_INTERVAL);
    }

    #[test]
    fn unknown_key_is_reported_with_position() {
        let p = problems("[server]\nlisten = \"127.0.0.1:1\"\nlisen = \"x\"\n");
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with("feeds.toml:3:1: "), "{p:?}");
        assert!(p[0].contains("unknown field `lisen`"), "{p:?}");
    }

    #[test]
    fn duplicate_names_and_urls_bad_durations_are_all_reported() {
        let text = r#"
[[source]]
name = "a"
url = "https://example.org/feed"

[[source]]
name = "a"
url = "https://example.org/feed"
interval = "soon"
"#;
        let p = problems(text);
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(
            p[0].starts_with("feeds.toml:7:8: duplicate source name \"a\" (first used on line 3)"),
            "{p:?}"
        );
        assert!(
            p[1].starts_with("feeds.toml:8:7: duplicate source url"),
            "{p:?}"
        );
        assert!(
            p[2].starts_with("feeds.toml:9:12: interval \"soon\" is not a duration"),
            "{p:?}"
        );
    }

    #[test]
    fn bad_scheme_and_bad_slug() {
        let p = problems("[[source]]\nname = \"Rust Blog\"\nurl = \"ftp://x/y\"\n");
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].contains("must be a slug"));
        assert!(p[1].contains("sources must be http://, https:// or file://"));
    }

    #[test]
    fn duplicate_key_is_named() {
        let p = problems("[fetch]\ntimeout = \"1s\"\ntimeout = \"2s\"\n");
        assert_eq!(p, ["feeds.toml:3:1: duplicate key `timeout`"]);
    }

    #[test]
    fn syntax_error_has_position() {
        let p = problems("[server]\nlisten = \n");
        assert_eq!(p.len(), 1);
        assert!(p[0].starts_with("feeds.toml:2:"), "{p:?}");
    }

    #[test]
    fn per_source_identity_and_headers() {
        let c = parse(
            "[[source]]\nname = \"a\"\nurl = \"https://example.org/f\"\nuser_agent = \"special/1\"\nheaders = { Authorization = \"Bearer abc\" }\n",
            Path::new("feeds.toml"),
        )
        .expect("valid");
        assert_eq!(c.sources[0].user_agent.as_deref(), Some("special/1"));
        assert_eq!(
            c.sources[0].headers,
            [("Authorization".to_string(), "Bearer abc".to_string())]
        );
        let p = problems(
            "[[source]]\nname = \"a\"\nurl = \"https://example.org/f\"\nheaders = { \"Bad Name\" = \"x\" }\n",
        );
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].contains("header name \"Bad Name\""), "{p:?}");
    }

    #[test]
    fn absurd_durations_are_refused() {
        let p = problems(
            "[[source]]\nname = \"a\"\nurl = \"https://example.org/f\"\ninterval = \"5000 years\"\n",
        );
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].contains("longer than a year"), "{p:?}");
    }

    #[test]
    fn named_feeds_take_sources_tags_and_patterns() {
        let c = parse(
            r#"
[[source]]
name = "a"
url = "https://a.example/f"
tags = ["rust"]

[[source]]
name = "b"
url = "https://b.example/f"

[[feed]]
name = "releases"
tags = ["rust"]
sources = ["b"]
include = ["(?i)release"]
exclude = ["(?i)beta"]
"#,
            Path::new("feeds.toml"),
        )
        .expect("valid");
        let f = &c.feeds[0];
        assert_eq!(f.sources, ["b", "a"]);
        assert!(f.admits(&["Rust 1.80 released"]));
        assert!(!f.admits(&["Rust 1.80 beta release"]));
        assert!(!f.admits(&["Something else"]));
        let p = problems(
            "[[source]]\nname = \"a\"\nurl = \"https://a.example/f\"\n\n[[feed]]\nname = \"x\"\nsources = [\"nope\"]\ninclude = [\"(unclosed\"]\n",
        );
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(
            p[0].starts_with("feeds.toml:7:12: feed \"x\" names source \"nope\""),
            "{p:?}"
        );
        assert!(
            p[1].starts_with(
                "feeds.toml:8:12: include pattern \"(unclosed\" is not a valid regular expression"
            ),
            "{p:?}"
        );
    }

    #[test]
    fn short_intervals_are_honoured() {
        let c = parse(
            "[[source]]\nname = \"a\"\nurl = \"file:///tmp/a.xml\"\ninterval = \"2s\"\n",
            Path::new("feeds.toml"),
        )
        .expect("valid");
        assert_eq!(c.sources[0].interval, Duration::from_secs(2));
    }
}
