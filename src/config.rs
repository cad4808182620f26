//! Reads and validates `feeds.toml`.
//!
//! Two phases, as in ripgrep: [`RawConfig`] is what the user wrote (deserialised with spans so
//! every error can point at `file:line:col`), [`Config`] is what the daemon runs, with every
//! value checked, defaulted and resolved (relative store paths against the config's folder).

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
}

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
}

#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Open connections at most (idle keep-alive ones included).
    pub max_connections: usize,
    /// The public URL of this instance, without a trailing slash.
    pub base_url: String,
}

#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// Absolute, or relative to the current directory when the config's folder is.
    pub path: PathBuf,
    /// sled's page cache size.
    pub cache_bytes: u64,
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
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    path: Option<String>,
    cache_mb: Option<Spanned<u64>>,
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
}

/// Where to find the config: `--config`, else `TRIBUTARY_CONFIG`, else `./feeds.toml`.
/// (clap reads the environment variable into the flag.)
pub fn resolve_path(flag: Option<PathBuf>) -> PathBuf {
    flag.unwrap_or_else(|| PathBuf::from("feeds.toml"))
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
}

impl Validator<'_> {
    fn problem(&mut self, span: Option<Range<usize>>, message: impl Into<String>) {
        let (line, column) = span.map(|s| line_col(self.text, s.start)).unwrap_or((1, 1));
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
        match humantime::parse_duration(value.get_ref().trim()) {
            Ok(d) if d < MIN_INTERVAL => {
                self.problem(
                    Some(value.span()),
                    format!("{what} \"{}\" is shorter than one second", value.get_ref()),
                );
                None
            }
            Ok(d) if d > MAX_DURATION => {
                self.problem(
                    Some(value.span()),
                    format!("{what} \"{}\" is longer than a year", value.get_ref()),
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

    fn build(&mut self, raw: RawConfig, path: &Path) -> Option<Config> {
        let server = raw.server.unwrap_or(RawServer {
            listen: None,
            base_url: None,
            max_connections: None,
        });
        let max_connections = match &server.max_connections {
            None => Some(1024),
            Some(m) => self.positive(m, "max_connections", 1_000_000),
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
        });
        let store_path = config_dir.join(store_raw.path.unwrap_or_else(|| "store".into()));
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

        let fetch_raw = raw.fetch.unwrap_or(RawFetch {
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
        });
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
            None => Some(crate::parse::DEFAULT_MAX_ENTRIES as u64),
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
            let name_line = line_col(self.text, s.name.span().start).0;
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
                    urls.insert(key, line_col(self.text, s.url.span().start).0);
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
            if let (true, Some(url), Some(interval)) = (ok, url, interval) {
                sources.push(SourceConfig {
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
                feed_names.insert(name.to_string(), line_col(self.text, f.name.span().start).0);
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
                let mut out = Vec::new();
                for p in patterns {
                    match regex::RegexBuilder::new(p.get_ref())
                        .size_limit(1 << 20)
                        .build()
                    {
                        Ok(r) => out.push(r),
                        Err(e) => {
                            let detail = e
                                .to_string()
                                .lines()
                                .last()
                                .unwrap_or("")
                                .trim()
                                .to_string();
                            self.problem(
                                Some(p.span()),
                                format!("{what} pattern \"{}\" is not a valid regular expression: {detail}", p.get_ref()),
                            );
                        }
                    }
                }
                out
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

        Some(Config {
            feeds,
            path: path.to_path_buf(),
            server: ServerConfig {
                max_connections: max_connections? as usize,
                listen: listen?,
                base_url: base_url?,
            },
            store: StoreConfig {
                path: store_path,
                cache_bytes: cache_mb.saturating_mul(1024 * 1024),
            },
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
            },
            sources,
        })
    }
}

/// Slugs name sources and tags in URLs: `[a-z0-9][a-z0-9_-]*`, at most 64 bytes.
pub fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().enumerate().all(|(i, b)| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || (i > 0 && (b == b'-' || b == b'_'))
        })
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
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
