//! Reads and validates `feeds.toml`: the validated types the daemon runs ([`Config`] and its
//! sections), [`ConfigError`], and [`load`]/[`parse`].
//!
//! Two phases, as in ripgrep: `raw` is what the user wrote (deserialised with spans so every
//! error can point at `file:line:col`), `validate` turns it into a [`Config`], with every
//! value checked, defaulted and resolved (relative store paths against the config's folder).
//! Filter rules and title templates are the feed's own types ([`Rules`], [`Template`]),
//! built here once.

pub mod edit;
pub mod opml;
mod raw;
mod validate;
pub mod warn;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use url::Url;

pub use crate::feed::parse::DEFAULT_MAX_ENTRIES;
pub use crate::feed::rules::{Field, Rule, Rules};
pub use crate::feed::scrape::{Pick, Selectors, SourceKind};
pub use crate::feed::template::Template;

/// Default `[store] cache_mb`: sled's page cache, in MiB. sled keeps pages it has just read
/// beyond this for a while, and a million entries already hold about 125 MB at rest, so the
/// cache is kept small; feeds read often are served from the render cache anyway
/// (BENCHMARKS.md, "Round two, third pass").
pub const DEFAULT_CACHE_MB: u64 = 16;

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
    /// Shared with the tasks that poll them (a config is cloned, the sources are not).
    pub sources: Vec<std::sync::Arc<SourceConfig>>,
    /// Named feeds (`[[feed]]`), published at `/feeds/{name}.{fmt}`.
    pub feeds: Vec<FeedConfig>,
    pub retention: RetentionConfig,
    /// `[[webhook]]` tables: where new entries are POSTed after each poll.
    pub webhooks: Vec<WebhookConfig>,
    /// `[websub]`: the WebSub subscriber (README "WebSub").
    pub websub: WebsubConfig,
    /// `[hub]`: the WebSub hub for the published feeds (README "WebSub hub").
    pub hub: HubConfig,
    /// Source name → position in `sources`.
    index: HashMap<String, usize>,
}

impl Config {
    /// The hubs every published feed advertises: this instance's own (`{base_url}/hub`,
    /// unless `[hub] enabled = false`), then `[publish] hubs`.
    pub fn advertised_hubs(&self) -> Vec<String> {
        let own = self
            .hub
            .enabled
            .then(|| format!("{}/hub", self.server.base_url));
        own.into_iter()
            .chain(self.publish.hubs.iter().map(|u| u.to_string()))
            .collect()
    }

    /// The source with this name.
    pub fn source(&self, name: &str) -> Option<&SourceConfig> {
        self.index
            .get(name)
            .and_then(|&i| self.sources.get(i))
            .map(|s| &**s)
    }
}

/// One `[[webhook]]`: a receiver of each poll's new entries (README "Webhooks").
#[derive(Clone, PartialEq)]
pub struct WebhookConfig {
    /// Its `name`, else `webhook-N` (N from 1, in file order): names it in status and
    /// metrics.
    pub name: String,
    pub url: Url,
    /// The signing key: the bytes the `whsec_` secret encodes.
    pub key: Vec<u8>,
    /// The sources whose new entries it takes (named or by tag); with `feeds`, `None`
    /// (neither `sources`, `tags` nor `feeds` given) takes every source's.
    pub sources: Option<Vec<String>>,
    /// Named feeds (`[[feed]]`) whose entries it takes as well (their sources and patterns).
    pub feeds: Vec<String>,
    pub format: WebhookFormat,
}

impl std::fmt::Debug for WebhookConfig {
    /// Without the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("name", &self.name)
            .field("url", &self.url.as_str())
            .field("sources", &self.sources)
            .field("feeds", &self.feeds)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl WebhookConfig {
    /// Whether it takes this new entry (`feeds`: the named feeds in `config`).
    pub fn takes(&self, entry: &crate::model::Entry, feeds: &[FeedConfig]) -> bool {
        let by_source = match &self.sources {
            None if self.feeds.is_empty() => return true,
            None => false,
            Some(names) => names.contains(&entry.source),
        };
        by_source
            || feeds.iter().any(|f| {
                self.feeds.contains(&f.name)
                    && f.sources.contains(&entry.source)
                    && f.admits_entry(entry)
            })
    }
}

/// `[websub]`: subscribing to the hubs sources announce (README "WebSub").
#[derive(Clone, Debug, PartialEq)]
pub struct WebsubConfig {
    /// `subscribe`: whether to subscribe at all (only with `[server] base_url` written).
    pub subscribe: bool,
    /// Whether the `[websub]` table sets anything (`tributary check` warns when it does
    /// while `[server] base_url` is not written).
    pub written: bool,
    /// `lease`: the lease asked of hubs (`hub.lease_seconds`).
    pub lease: Duration,
    /// `safety_poll`: how often a source with an active subscription is still polled.
    pub safety_poll: Duration,
}

impl WebsubConfig {
    pub const DEFAULT_LEASE: Duration = Duration::from_secs(10 * 24 * 3600);
    /// The shortest `lease` accepted.
    pub const MIN_LEASE: Duration = Duration::from_secs(3600);
    pub const DEFAULT_SAFETY_POLL: Duration = Duration::from_secs(6 * 3600);
}

/// What a webhook's body is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookFormat {
    /// A JSON Feed 1.1 document (`application/feed+json`).
    Json,
    /// An Atom document (`application/atom+xml`).
    Atom,
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
    /// Its patterns, on each entry's title, summary, content and categories
    /// ([`Field::TEXT`]).
    pub rules: Rules,
    /// A saved search (`query = "..."`): the feed takes the entries of its sources that
    /// match it (and its patterns), found through the search index.
    pub query: Option<std::sync::Arc<crate::query::Query>>,
}

impl FeedConfig {
    /// Whether the feed takes this entry (by its patterns; the entry's source is not
    /// checked here).
    pub fn admits_entry(&self, e: &crate::model::Entry) -> bool {
        self.rules.admits(e)
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
        !self.rules.is_empty()
    }

    /// Names the feed's definition: equal sources and patterns, equal id. The meaning of
    /// the patterns is hashed too (`PATTERN_MEANING`), so indexes built under an older
    /// meaning are rebuilt.
    pub fn index_id(&self) -> [u8; 8] {
        let patterns = |rules: &[Rule]| -> Vec<String> {
            rules
                .iter()
                .map(|r| r.pattern.as_str().to_string())
                .collect()
        };
        let mut h = blake3::Hasher::new();
        h.update(PATTERN_MEANING.as_bytes());
        let mut sources = self.sources.clone();
        sources.sort();
        sources.dedup();
        for (tag, list) in [
            ("sources", sources),
            ("include", patterns(&self.rules.include)),
            ("exclude", patterns(&self.rules.exclude)),
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

/// Names what a named feed's patterns mean, for [`FeedConfig::index_id`]: version 2 matches
/// summary and content as plain text (version 1, unnamed in the hash, matched their markup).
const PATTERN_MEANING: &str = "patterns v2: plain text";

impl Config {
    /// Every tag a source has, sorted, each once.
    pub fn tags(&self) -> Vec<&str> {
        let mut tags: Vec<&str> = self
            .sources
            .iter()
            .flat_map(|s| s.tags.iter().map(String::as_str))
            .collect();
        tags.sort_unstable();
        tags.dedup();
        tags
    }

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
    /// Whether `base_url` was written in the config (else it was made from `listen`).
    pub base_url_set: bool,
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
    /// `templates`: the theme's folder (absolute) and its templates, read and checked when
    /// the config was: (file name, source), each replacing the built-in template of its
    /// name or beside them.
    pub templates: Option<Templates>,
    /// `hubs`: external WebSub hubs, advertised and pinged (`hub.mode=publish`) when a
    /// feed gains entries.
    pub hubs: Vec<Url>,
}

/// `[hub]`: the WebSub hub at `{base_url}/hub` (README "WebSub hub").
#[derive(Clone, Debug, PartialEq)]
pub struct HubConfig {
    /// Whether the hub is advertised and accepts subscriptions (default true).
    pub enabled: bool,
    /// A subscriber's `hub.lease_seconds` is clamped into `[lease_min, lease_max]`.
    pub lease_min: Duration,
    pub lease_max: Duration,
    /// The lease of a subscription that asks for none.
    pub lease_default: Duration,
    /// Subscriptions per topic at most.
    pub max_per_topic: usize,
    /// Subscriptions per callback host at most (over all topics).
    pub max_per_callback_host: usize,
    /// Deliveries sent at once at most.
    pub deliveries: usize,
}

/// A theme's templates (`[publish] templates`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Templates {
    pub dir: PathBuf,
    pub files: Vec<(String, String)>,
}

/// A theme folder holds at most this many templates...
pub const MAX_TEMPLATES: usize = 64;
/// ...of at most this many bytes each.
pub const MAX_TEMPLATE_BYTES: u64 = 256 * 1024;

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
    /// Which entries are stored: those that match an include rule (when there are any)
    /// and no exclude rule.
    pub rules: Rules,
    /// Rewrites entry titles, e.g. `"[{source}] {title}"`.
    pub title_template: Option<Template>,
    /// New entries one poll may add at most; the rest are skipped for good.
    pub max_new_per_poll: Option<usize>,
    /// A feed, or a page read by selectors (`kind`, `[source.select]`, `timezone`).
    pub kind: SourceKind,
    /// `websub = false`: never subscribe to the hub this source announces.
    pub websub: bool,
}

impl SourceConfig {
    /// What a poll does to this source's entries before they are stored.
    pub fn transform(&self) -> crate::feed::transform::Transform<'_> {
        crate::feed::transform::Transform {
            name: &self.name,
            rules: &self.rules,
            title_template: self.title_template.as_ref(),
        }
    }

    /// How a reload should treat a source whose config changed from `old` to `self`.
    pub fn change_from(&self, old: &SourceConfig) -> SourceChange {
        if self.url != old.url
            || self.user_agent != old.user_agent
            || self.headers != old.headers
            || self.kind != old.kind
        {
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
    /// URL, User-Agent, headers, or how the page is read (kind, selectors): the next poll
    /// is a different request, or reads the same page differently.
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
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read (its error is in the message).
    #[error("{}: cannot read the config file: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The file is not a valid config: one line per problem, `file:line:col: message`.
    #[error("{}", Listed { path, problems })]
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
}

/// Problems as `file:line:col: message`, one a line.
struct Listed<'a> {
    path: &'a Path,
    problems: &'a [Problem],
}

impl std::fmt::Display for Listed<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(
                f,
                "{}:{}:{}: {}",
                self.path.display(),
                p.line,
                p.column,
                p.message
            )?;
        }
        Ok(())
    }
}

/// Where to find the config: `--config`, else `TRIBUTARY_CONFIG` (clap reads it into the
/// flag), else `feeds.toml` in `$CONFIGURATION_DIRECTORY` (set by systemd's
/// `ConfigurationDirectory=`), else `./feeds.toml`.
pub fn resolve_path(flag: Option<PathBuf>) -> PathBuf {
    let path = flag.unwrap_or_else(|| {
        first_directory("CONFIGURATION_DIRECTORY")
            .unwrap_or_default()
            .join("feeds.toml")
    });
    // Absolute, so every message names the file wherever it is read.
    std::path::absolute(&path).unwrap_or(path)
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
    validate::validate(text, path)
}

/// Slugs name sources and tags in URLs: `[a-z0-9][a-z0-9_-]*`, at most 64 bytes.
pub fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().enumerate().all(|(i, b)| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || (i > 0 && (b == b'-' || b == b'_'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::rules::tests::entry;

    fn problems(text: &str) -> Vec<String> {
        match parse(text, Path::new("feeds.toml")) {
            Ok(_) => Vec::new(),
            Err(e) => e.to_string().lines().map(str::to_string).collect(),
        }
    }

    #[test]
    fn websub_keys() {
        let path = Path::new("/etc/tributary/feeds.toml");
        let d = parse(
            "[[source]]\nname = \"a\"\nurl = \"https://a.example/f\"\n",
            path,
        )
        .expect("valid");
        assert!(d.websub.subscribe);
        assert_eq!(d.websub.lease, WebsubConfig::DEFAULT_LEASE);
        assert_eq!(d.websub.safety_poll, Duration::from_secs(6 * 3600));
        assert!(d.sources[0].websub);
        let c = parse(
            "[websub]\nsubscribe = false\nlease = \"2d\"\nsafety_poll = \"90m\"\n\
             [[source]]\nname = \"a\"\nurl = \"https://a.example/f\"\nwebsub = false\n",
            path,
        )
        .expect("valid");
        assert!(!c.websub.subscribe && !c.sources[0].websub);
        assert_eq!(c.websub.lease, Duration::from_secs(2 * 24 * 3600));
        assert_eq!(c.websub.safety_poll, Duration::from_secs(90 * 60));
        let p = problems("[websub]\nlease = \"soon\"\nhubs = 1\n");
        assert!(p.iter().any(|l| l.contains("hubs")), "{p:?}");
        let p = problems("[websub]\nlease = \"soon\"\n");
        assert!(
            p.iter().any(|l| l.contains("2:9") && l.contains("lease")),
            "{p:?}"
        );
        let p = problems("[websub]\nlease = \"59m\"\n");
        assert!(
            p.iter()
                .any(|l| l.contains("2:9") && l.contains("shorter than an hour")),
            "{p:?}"
        );
        assert!(problems("[websub]\nlease = \"1h\"\n").is_empty());
        assert!(!d.websub.written && c.websub.written);
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
        // The documented default (README, feeds.toml).
        assert_eq!(d.store.cache_bytes, 16 << 20);
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
    fn hub_keys_and_their_defaults() {
        let d = parse("", Path::new("/etc/tributary/feeds.toml")).expect("valid");
        let day = Duration::from_secs(86_400);
        assert!(d.hub.enabled);
        assert_eq!(
            (d.hub.lease_min, d.hub.lease_default, d.hub.lease_max),
            (Duration::from_secs(3600), 10 * day, 30 * day)
        );
        assert_eq!(
            (
                d.hub.max_per_topic,
                d.hub.max_per_callback_host,
                d.hub.deliveries
            ),
            (100, 20, 4)
        );
        assert_eq!(d.advertised_hubs(), ["http://127.0.0.1:8080/hub"]);
        let c = parse(
            "[publish]\nhubs = [\"https://hub.example/\"]\n[hub]\nenabled = false\nlease_max = \"2d\"\nlease_default = \"1d\"\ndeliveries = 2\n",
            Path::new("/etc/tributary/feeds.toml"),
        )
        .expect("valid");
        assert_eq!(c.advertised_hubs(), ["https://hub.example/"]);
        assert_eq!(c.hub.lease_max, 2 * day);
        assert_eq!(c.hub.deliveries, 2);
        let p = problems("[hub]\nlease_min = \"20d\"\n");
        assert!(
            p.iter().any(|p| p.contains("lease_min <= lease_default")),
            "{p:?}"
        );
        let p = problems("[publish]\nhubs = [\"ftp://hub.example/\"]\n[hub]\ndeliveries = 0\n");
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].contains(":2:9:") && p[0].contains("hubs"), "{p:?}");
        assert!(p[1].contains("deliveries"), "{p:?}");
        let p = problems(
            "[server]\nbase_url = \"http://news.test\"\n[publish]\nhubs = [\"https://u:pw@hub.example/\", \"https://Hub.example/x\", \"https://hub.example/x/\", \"http://news.test/hub\"]\n",
        );
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(
            p[0].contains(":4:9:") && p[0].contains("user name or password"),
            "{p:?}"
        );
        assert!(
            p[1].contains(":4:63:") && p[1].contains("listed twice"),
            "{p:?}"
        );
        assert!(p[2].contains("own hub"), "{p:?}");
    }

    #[test]
    fn base_url_is_a_plain_origin_and_path() {
        for bad in [
            "http://h.test:1/a?x=1",
            "http://h.test/#top",
            "http://me:pw@h.test/",
            "http://me@h.test/",
        ] {
            let p = problems(&format!("[server]\nbase_url = \"{bad}\"\n"));
            assert_eq!(p.len(), 1, "{bad}: {p:?}");
            assert!(p[0].contains("feeds.toml:2:12:"), "{p:?}");
            assert!(
                p[0].contains("no user name, password, query or fragment"),
                "{p:?}"
            );
        }
        let c = parse(
            "[server]\nbase_url = \"HTTP://News.Example:8080/River/\"\n",
            Path::new("feeds.toml"),
        )
        .expect("valid");
        assert_eq!(c.server.base_url, "http://news.example:8080/River");
        assert_eq!(c.advertised_hubs(), ["http://news.example:8080/River/hub"]);
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
        let titled = |t: &str| entry(t, "", "Ann", &[]);
        assert!(f.admits_entry(&titled("Rust 1.80 released")));
        assert!(!f.admits_entry(&titled("Rust 1.80 beta release")));
        assert!(!f.admits_entry(&titled("Something else")));
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
    fn named_feed_patterns_match_text_and_their_index_names_the_meaning() {
        let c = parse(
            "[[source]]\nname = \"a\"\nurl = \"https://a.example/f\"\n\n[[feed]]\nname = \"x\"\nexclude = [\"href\"]\n",
            Path::new("feeds.toml"),
        )
        .expect("valid");
        let f = &c.feeds[0];
        let entry = entry(
            "Linked",
            "<a href=\"https://x.example/\">this</a>",
            "Ann",
            &[],
        );
        assert!(f.admits_entry(&entry));
        // The id a store indexed under the old meaning (markup matched) is not reused.
        let mut h = blake3::Hasher::new();
        for (tag, list) in [
            ("sources", vec!["a"]),
            ("include", vec![]),
            ("exclude", vec!["href"]),
        ] {
            h.update(tag.as_bytes());
            h.update(&(list.len() as u64).to_le_bytes());
            for item in list {
                h.update(&(item.len() as u64).to_le_bytes());
                h.update(item.as_bytes());
            }
        }
        assert_ne!(f.index_id(), h.finalize().as_bytes()[..8]);
    }

    #[test]
    fn source_rules_and_template_are_built() {
        let c = parse(
            "[[source]]\nname = \"s\"\nurl = \"https://s.example/feed\"\n\
             include = ['(?i)rust', { field = \"category\", pattern = '^ad$' }]\n\
             exclude = [{ field = \"title\", pattern = '^Sponsored' }]\n\
             title_template = \"[{source}] {title}\"\n",
            Path::new("feeds.toml"),
        )
        .expect("valid");
        let s = &c.sources[0];
        let fields: Vec<&[Field]> = s.rules.include.iter().map(|r| r.fields).collect();
        assert_eq!(fields, [Field::EVERY, &[Field::Category]]);
        assert_eq!(s.rules.exclude[0].fields, [Field::Title]);
        assert_eq!(s.rules.exclude[0].pattern.as_str(), "^Sponsored");
        assert_eq!(
            s.title_template.as_ref().map(Template::as_str),
            Some("[{source}] {title}")
        );
    }

    #[test]
    fn bad_patterns_and_fields_are_reported_with_positions() {
        let text = "[[source]]\nname = \"s\"\nurl = \"https://s.example/feed\"\ninclude = ['(unclosed']\nexclude = [{ field = \"colour\", pattern = 'x' }]\ntitle_template = \"{nope} {title}\"\n";
        let err = parse(text, Path::new("feeds.toml"))
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
    fn short_intervals_are_honoured() {
        let c = parse(
            "[[source]]\nname = \"a\"\nurl = \"file:///tmp/a.xml\"\ninterval = \"2s\"\n",
            Path::new("feeds.toml"),
        )
        .expect("valid");
        assert_eq!(c.sources[0].interval, Duration::from_secs(2));
    }
}
