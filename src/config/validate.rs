//! From `feeds.toml` as written ([`raw`](super::raw)) to the [`Config`] the daemon runs: the
//! [`Validator`] checks every value, fills in defaults and resolves paths, one method per
//! section, and collects every problem with its position (not just the first).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;
use url::Url;

use super::raw::{
    RawConfig, RawFeed, RawFetch, RawPublish, RawRetention, RawRule, RawServer, RawSource,
    RawStore, RawWebhook, RawWebsub,
};
use super::{
    Config, ConfigError, DEFAULT_CACHE_MB, DEFAULT_INTERVAL, DEFAULT_MAX_ENTRIES, FeedConfig,
    FetchConfig, MAX_DURATION, MAX_RETENTION, MIN_INTERVAL, Problem, PublishConfig,
    RetentionConfig, ServerConfig, SourceConfig, StoreConfig, WebhookConfig, WebhookFormat,
    WebsubConfig, first_directory, is_slug,
};
use crate::feed::rules::{Field, Rule, Rules};
use crate::feed::scrape::{Pick, Selectors, SourceKind};
use crate::feed::template::Template;

/// Validates config text; `path` names the file in messages and anchors relative paths.
pub(super) fn validate(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let mut v = Validator::new(text);
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

/// Checks a config's values and records its problems. Each section method returns its
/// validated section, or `None` when something in it is wrong (and reported).
struct Validator<'a> {
    text: &'a str,
    problems: Vec<Problem>,
    /// Where each line starts, so positions cost a binary search (a config with 10,000
    /// sources asks for 20,000 of them).
    line_starts: Vec<usize>,
}

/// The names and URLs of the sources seen so far, with the line each was first used on.
#[derive(Default)]
struct SeenSources {
    names: HashMap<String, usize>,
    urls: HashMap<String, usize>,
}

impl<'a> Validator<'a> {
    fn new(text: &'a str) -> Validator<'a> {
        Validator {
            text,
            problems: Vec::new(),
            line_starts: std::iter::once(0)
                .chain(text.match_indices('\n').map(|(i, _)| i + 1))
                .collect(),
        }
    }
}

impl Validator<'_> {
    fn build(&mut self, raw: RawConfig, path: &Path) -> Option<Config> {
        let server = self.server(raw.server.unwrap_or_default());
        let store = self.store(raw.store.unwrap_or_default(), path);
        let publish = self.publish(
            raw.publish.unwrap_or_default(),
            path,
            server.as_ref().map(|s| s.base_url.as_str()),
        );
        let fetch_raw = raw.fetch.unwrap_or_default();
        let default_interval = self.duration_or(&fetch_raw.interval, "interval", DEFAULT_INTERVAL);
        let base_url = server.as_ref().map(|s| s.base_url.as_str());
        let fetch = self.fetch(fetch_raw, default_interval, base_url);
        let sources = self.sources(&raw.sources, default_interval);
        let feeds = self.feeds(&raw.feeds, &sources);
        let retention = self.retention(raw.retention.unwrap_or_default());
        let webhooks = self.webhooks(&raw.webhooks, &sources, &feeds);
        let websub = self.websub(raw.websub.unwrap_or_default());
        let hub = self.hub(raw.hub.unwrap_or_default());
        let index = sources
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.clone(), i))
            .collect();
        Some(Config {
            index,
            feeds,
            path: path.to_path_buf(),
            server: server?,
            store: store?,
            retention: retention?,
            publish: publish?,
            fetch: fetch?,
            sources,
            webhooks,
            websub: websub?,
            hub: hub?,
        })
    }

    /// `[websub]`.
    fn websub(&mut self, raw: RawWebsub) -> Option<WebsubConfig> {
        let written = raw.subscribe.is_some() || raw.lease.is_some() || raw.safety_poll.is_some();
        let mut lease = self.duration_or(&raw.lease, "lease", WebsubConfig::DEFAULT_LEASE);
        if let (Some(d), Some(value)) = (lease, &raw.lease)
            && d < WebsubConfig::MIN_LEASE
        {
            self.problem(
                Some(value.span()),
                format!(
                    "[websub] lease \"{}\" is shorter than an hour (hubs would be asked to renew all the time)",
                    value.get_ref()
                ),
            );
            lease = None;
        }
        let safety_poll = self.duration_or(
            &raw.safety_poll,
            "safety_poll",
            WebsubConfig::DEFAULT_SAFETY_POLL,
        );
        Some(WebsubConfig {
            subscribe: raw.subscribe.unwrap_or(true),
            written,
            lease: lease?,
            safety_poll: safety_poll?,
        })
    }

    /// `[hub]`: lease bounds (`lease_min <= lease_default <= lease_max`) and limits.
    fn hub(&mut self, raw: super::raw::RawHub) -> Option<super::HubConfig> {
        let hour = Duration::from_secs(3600);
        let day = 24 * hour;
        let lease_min = self.duration_or(&raw.lease_min, "lease_min", hour);
        let lease_max = self.duration_or(&raw.lease_max, "lease_max", 30 * day);
        let lease_default = self.duration_or(&raw.lease_default, "lease_default", 10 * day);
        let max_per_topic = self.count(&raw.max_per_topic, "max_per_topic", 100_000, 100);
        let max_per_callback_host = self.count(
            &raw.max_per_callback_host,
            "max_per_callback_host",
            100_000,
            20,
        );
        let deliveries = self.count(&raw.deliveries, "deliveries", 256, 4);
        let (lease_min, lease_max, lease_default) = (lease_min?, lease_max?, lease_default?);
        if !(lease_min <= lease_default && lease_default <= lease_max) {
            let span = raw
                .lease_default
                .as_ref()
                .or(raw.lease_min.as_ref())
                .or(raw.lease_max.as_ref())
                .map(|s| s.span());
            self.problem(
                span,
                "[hub]: lease_min, lease_default and lease_max must be in that order (lease_min <= lease_default <= lease_max)".to_string(),
            );
            return None;
        }
        Some(super::HubConfig {
            enabled: raw.enabled.unwrap_or(true),
            lease_min,
            lease_max,
            lease_default,
            max_per_topic: max_per_topic? as usize,
            max_per_callback_host: max_per_callback_host? as usize,
            deliveries: deliveries? as usize,
        })
    }

    /// `[server]`.
    fn server(&mut self, raw: RawServer) -> Option<ServerConfig> {
        let max_connections = self.count(&raw.max_connections, "max_connections", 1_000_000, 1024);
        let max_connections_per_ip = self.count(
            &raw.max_connections_per_ip,
            "max_connections_per_ip",
            1_000_000,
            32,
        );
        let trusted_proxies = match &raw.trusted_proxies {
            None => Some(vec![
                ipnet::IpNet::new_assert(std::net::Ipv4Addr::LOCALHOST.into(), 8),
                ipnet::IpNet::new_assert(std::net::Ipv6Addr::LOCALHOST.into(), 128),
            ]),
            Some(list) => self.networks(list, |t| {
                format!(
                    "trusted_proxies: \"{t}\" is not an address or network like \"10.0.0.1\", \"10.0.0.0/8\" or \"fd00::/8\""
                )
            }),
        };
        let header_timeout = self.duration_or(
            &raw.header_timeout,
            "header_timeout",
            Duration::from_secs(10),
        );
        let idle_timeout =
            self.duration_or(&raw.idle_timeout, "idle_timeout", Duration::from_secs(60));
        let render_cache_mb =
            self.count_or_zero(&raw.render_cache_mb, "render_cache_mb", 65_536, 32);
        let listen = match &raw.listen {
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
        let base_url = match &raw.base_url {
            None => listen.map(|a| format!("http://{a}")),
            Some(b) => match Url::parse(b.get_ref()) {
                Ok(u)
                    if !u.username().is_empty()
                        || u.password().is_some()
                        || u.query().is_some()
                        || u.fragment().is_some() =>
                {
                    self.problem(
                        Some(b.span()),
                        format!(
                            "base_url \"{}\" must have no user name, password, query or fragment: every published link is made by appending a path to it",
                            b.get_ref()
                        ),
                    );
                    None
                }
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
                    Some(lowercase_origin(b.get_ref().trim().trim_end_matches('/')))
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
        Some(ServerConfig {
            max_connections: max_connections? as usize,
            max_connections_per_ip: max_connections_per_ip? as usize,
            trusted_proxies: trusted_proxies?,
            header_timeout: header_timeout?,
            idle_timeout: idle_timeout?,
            render_cache_bytes: render_cache_mb?.saturating_mul(1024 * 1024),
            listen: listen?,
            base_url: base_url?,
            base_url_set: raw.base_url.is_some(),
        })
    }

    /// `[store]`; a relative path is resolved against `$STATE_DIRECTORY`, else the config's
    /// folder.
    fn store(&mut self, raw: RawStore, path: &Path) -> Option<StoreConfig> {
        let config_dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        // Under systemd, StateDirectory= is where state belongs (and the only writable
        // place in a hardened unit): relative store paths resolve there.
        let store_base = first_directory("STATE_DIRECTORY").unwrap_or(config_dir);
        let store_path = store_base.join(raw.path.unwrap_or_else(|| "store".into()));
        // Absolute, so messages and logs name it wherever tributary was started.
        let store_path = std::path::absolute(&store_path).unwrap_or(store_path);
        let min_free_mb = self.count_or_zero(&raw.min_free_mb, "min_free_mb", 1 << 30, 64);
        let cache_mb = match &raw.cache_mb {
            None => DEFAULT_CACHE_MB,
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
        Some(StoreConfig {
            path: store_path,
            cache_bytes: cache_mb.saturating_mul(1024 * 1024),
            min_free_bytes: min_free_mb?.saturating_mul(1024 * 1024),
        })
    }

    /// `[publish]`.
    fn publish(
        &mut self,
        raw: RawPublish,
        path: &Path,
        base_url: Option<&str>,
    ) -> Option<PublishConfig> {
        let max_items = self.count(&raw.max_items, "max_items", 10_000, 50);
        let templates = match &raw.templates {
            None => Some(None),
            Some(dir) => {
                let config_dir = path.parent().unwrap_or(Path::new("."));
                let dir_path = std::path::absolute(config_dir.join(dir.get_ref()))
                    .unwrap_or_else(|_| config_dir.join(dir.get_ref()));
                match read_templates(&dir_path) {
                    Ok(files) => Some(Some(super::Templates {
                        dir: dir_path,
                        files,
                    })),
                    Err(message) => {
                        self.problem(Some(dir.span()), format!("templates: {message}"));
                        None
                    }
                }
            }
        };
        let mut hubs = Some(Vec::new());
        let own_hub = base_url.and_then(|b| Url::parse(&format!("{b}/hub")).ok());
        let mut seen: Vec<Url> = Vec::new();
        for h in &raw.hubs {
            let trimmed = |u: &Url| u.as_str().trim_end_matches('/').to_string();
            let why = match Url::parse(h.get_ref().trim()) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
                    if !u.username().is_empty() || u.password().is_some() {
                        Some("holds a user name or password, which every published feed would show")
                    } else if seen.iter().any(|s| trimmed(s) == trimmed(&u)) {
                        Some("is listed twice")
                    } else if own_hub
                        .as_ref()
                        .is_some_and(|own| trimmed(own) == trimmed(&u))
                    {
                        Some(
                            "is this instance's own hub ({base_url}/hub), advertised already; it needs no ping",
                        )
                    } else {
                        seen.push(u.clone());
                        if let Some(list) = hubs.as_mut() {
                            list.push(u);
                        }
                        None
                    }
                }
                _ => Some("is not an http or https URL with a host"),
            };
            if let Some(why) = why {
                self.problem(Some(h.span()), format!("hubs: \"{}\" {why}", h.get_ref()));
                hubs = None;
            }
        }
        let title = raw
            .title
            .unwrap_or_else(|| "tributary".to_string())
            .trim()
            .to_string();
        Some(PublishConfig {
            description: raw
                .description
                .unwrap_or_else(|| format!("{title}: combined by tributary")),
            author: raw.author.unwrap_or_else(|| title.clone()),
            title,
            max_items: max_items? as usize,
            templates: templates?,
            hubs: hubs?,
        })
    }

    /// `[fetch]`; its `interval` is validated by the caller (sources need it too), and the
    /// default User-Agent names `base_url`.
    fn fetch(
        &mut self,
        raw: RawFetch,
        default_interval: Option<Duration>,
        base_url: Option<&str>,
    ) -> Option<FetchConfig> {
        let concurrency = self.count(&raw.concurrency, "concurrency", 1024, 8);
        let timeout = self.duration_or(&raw.timeout, "timeout", Duration::from_secs(30));
        let connect_timeout = self.duration_or(
            &raw.connect_timeout,
            "connect_timeout",
            Duration::from_secs(10),
        );
        let max_entries = self.count(
            &raw.max_entries,
            "max_entries",
            1_000_000,
            DEFAULT_MAX_ENTRIES as u64,
        );
        let max_body_mb = self.count(&raw.max_body_mb, "max_body_mb", 1024, 16);
        let per_host = self.count(&raw.per_host, "per_host", 64, 1);
        let min_interval =
            self.duration_or(&raw.min_interval, "min_interval", Duration::from_secs(60));
        let max_interval = self.duration_or(
            &raw.max_interval,
            "max_interval",
            Duration::from_secs(24 * 3600),
        );
        if let (Some(min), Some(max), Some(span)) =
            (min_interval, max_interval, raw.max_interval.as_ref())
            && max < min
        {
            self.problem(
                Some(span.span()),
                "max_interval must not be shorter than min_interval",
            );
        }
        let user_agent = raw.user_agent.unwrap_or_else(|| match base_url {
            Some(b) => format!("tributary/{} (+{b})", crate::VERSION),
            None => format!("tributary/{}", crate::VERSION),
        });
        let allow_networks = self.networks(&raw.allow_networks, |n| {
            format!(
                "allow_networks entry \"{n}\" is not a network like \"10.0.0.0/8\", \"fd00::/8\" or an address"
            )
        });
        Some(FetchConfig {
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
            allow_networks: allow_networks?,
        })
    }

    /// `[retention]`.
    fn retention(&mut self, raw: RawRetention) -> Option<RetentionConfig> {
        let d = RetentionConfig::default();
        const MAX_COUNT: i64 = 100_000_000;
        let count = |v: &mut Self, value: &Option<Spanned<i64>>, what, default: usize| {
            v.count(value, what, MAX_COUNT, default as u64)
                .map(|n| n as usize)
        };
        let keep_per_source = count(
            self,
            &raw.keep_per_source,
            "keep_per_source",
            d.keep_per_source,
        );
        let keep_total = count(self, &raw.keep_total, "keep_total", d.keep_total);
        let keep_min = self
            .count_or_zero(&raw.keep_min, "keep_min", MAX_COUNT, d.keep_min as u64)
            .map(|n| n as usize);
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

    /// The `[[source]]` tables: those without problems (the others are reported).
    fn sources(
        &mut self,
        raw: &[Spanned<RawSource>],
        default_interval: Option<Duration>,
    ) -> Vec<std::sync::Arc<SourceConfig>> {
        let mut seen = SeenSources::default();
        // Sized once: grown by doubling, it would take up to twice the room it needs for as
        // long as the config lives. Each source is shared by every copy of the config and
        // by the task that polls it (10,000 sources are about 8 MB).
        let mut sources = Vec::with_capacity(raw.len());
        sources.extend(
            raw.iter()
                .filter_map(|s| self.source(s.get_ref(), &mut seen, default_interval))
                .map(std::sync::Arc::new),
        );
        sources
    }

    /// One `[[source]]` table.
    fn source(
        &mut self,
        s: &RawSource,
        seen: &mut SeenSources,
        default_interval: Option<Duration>,
    ) -> Option<SourceConfig> {
        let name = s.name.get_ref().trim();
        let mut ok = self.unique_slug(
            &s.name,
            &mut seen.names,
            "source name",
            ", starting with a letter or digit (it is used in URLs)",
        );

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
        if let Some(u) = &url
            && !self.first_use(u.as_str(), s.url.span(), &mut seen.urls, "source url")
        {
            ok = false;
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
                    format!("tag \"{tag}\" must be a slug: lowercase letters, digits, '-' and '_'"),
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
                    format!("the value of header \"{key}\" must be printable ASCII on one line"),
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
        let kind = self.kind(s);
        if !ok {
            return None;
        }
        Some(SourceConfig {
            keep: keep?,
            keep_for: keep_for?,
            full_text: s.full_text.unwrap_or(false),
            rules: Rules {
                include: include?,
                exclude: exclude?,
            },
            title_template: title_template?,
            max_new_per_poll: max_new_per_poll?,
            kind: kind?,
            name: name.to_string(),
            url: url?,
            title: s.title.clone().map(|t| t.trim().to_string()),
            tags,
            interval: interval?,
            user_agent,
            headers,
            websub: s.websub.unwrap_or(true),
        })
    }

    /// A source's `kind`, with its `[source.select]` and `timezone`.
    fn kind(&mut self, s: &RawSource) -> Option<SourceKind> {
        let kind = s.kind.as_ref().map(|k| (k.get_ref().trim(), k.span()));
        let page = match kind {
            None | Some(("feed", _)) => None,
            Some((k @ ("html" | "json"), _)) => Some(k == "html"),
            Some((other, span)) => {
                self.problem(
                    Some(span),
                    format!("kind \"{other}\" is not a kind of source; write \"feed\" (the default), \"html\" (a page read by CSS selectors) or \"json\" (a JSON document read by JSONPath)"),
                );
                return None;
            }
        };
        let Some(html) = page else {
            for (present, span, what) in [
                (s.select.as_ref().map(Spanned::span), "[source.select]"),
                (s.timezone.as_ref().map(Spanned::span), "timezone"),
            ]
            .map(|(span, what)| (span.is_some(), span, what))
            {
                if present {
                    self.problem(
                        span,
                        format!("{what} is for sources of kind = \"html\" or \"json\"; this source is a feed (add kind = \"html\" or \"json\")"),
                    );
                    return None;
                }
            }
            return Some(SourceKind::Feed);
        };
        let kind_name = if html { "html" } else { "json" };
        let Some(select) = &s.select else {
            self.problem(
                s.kind.as_ref().map(Spanned::span),
                format!("a source of kind = \"{kind_name}\" needs a [source.select] table with at least `items` ({})", if html { "a CSS selector for each entry's element, e.g. items = \"article\"" } else { "a JSONPath to the items, e.g. items = \"$.posts[*]\"" }),
            );
            return None;
        };
        let select = select.get_ref();
        let Some(items) = &select.items else {
            self.problem(
                s.select.as_ref().map(Spanned::span),
                format!(
                    "[source.select] needs `items` ({})",
                    if html {
                        "a CSS selector for each entry's element, e.g. items = \"article\""
                    } else {
                        "a JSONPath to the items, e.g. items = \"$.posts[*]\""
                    }
                ),
            );
            return None;
        };
        let problems_before = self.problems.len();
        let items = self.pick(items, "items", html, true).map(|p| p.path);
        let title = self.field(&select.title, "title", html);
        let link = self.field(&select.link, "link", html);
        let date = self.field(&select.date, "date", html);
        let summary = self.field(&select.summary, "summary", html);
        let content = self.field(&select.content, "content", html);
        let author = self.field(&select.author, "author", html);
        let image = self.field(&select.image, "image", html);
        let date_format = match &select.date_format {
            None => None,
            Some(f) => match crate::feed::dates::check_format(f.get_ref()) {
                Ok(()) => Some(f.get_ref().clone()),
                Err(e) => {
                    self.problem(
                        Some(f.span()),
                        format!("select.date_format \"{}\" {e}", f.get_ref()),
                    );
                    None
                }
            },
        };
        let timezone = match &s.timezone {
            None => chrono_tz::UTC,
            Some(t) => match t.get_ref().trim().parse::<chrono_tz::Tz>() {
                Ok(tz) => tz,
                Err(_) => {
                    self.problem(
                        Some(t.span()),
                        format!("timezone \"{}\" is not a time zone name; write an IANA name such as \"Europe/Berlin\", \"America/New_York\" or \"UTC\"", t.get_ref()),
                    );
                    chrono_tz::UTC
                }
            },
        };
        if self.problems.len() > problems_before {
            return None;
        }
        let selectors = Selectors {
            items: items?,
            title,
            link,
            date,
            summary,
            content,
            author,
            image,
            date_format,
            timezone,
        };
        Some(if html {
            SourceKind::Html(selectors)
        } else {
            SourceKind::Json(selectors)
        })
    }

    /// An optional field of `[source.select]`, checked.
    fn field(&mut self, value: &Option<Spanned<String>>, what: &str, html: bool) -> Option<Pick> {
        value.as_ref().and_then(|v| self.pick(v, what, html, false))
    }

    /// A selector (`html`: CSS, `selector@attribute` unless `whole`) or a JSONPath, checked.
    fn pick(
        &mut self,
        value: &Spanned<String>,
        what: &str,
        html: bool,
        whole: bool,
    ) -> Option<Pick> {
        let written = value.get_ref();
        let pick = match (html, whole) {
            (false, _) => Pick::json(written),
            (true, true) => Pick {
                path: written.trim().to_string(),
                attribute: None,
            },
            (true, false) => Pick::css(written),
        };
        let checked = match (html, pick.path.is_empty()) {
            (false, _) if written.trim().is_empty() => Err("is empty".to_string()),
            // A path written without `$` is read from the item: say how, since the
            // parser's positions count in that.
            (false, _) if !written.trim().starts_with('$') => {
                crate::feed::scrape::check_path(&pick.path, whole)
                    .map_err(|e| format!("{e} (read as \"{}\")", pick.path))
            }
            (false, _) => crate::feed::scrape::check_path(&pick.path, whole),
            // `@href`: the item's own attribute.
            (true, true) if pick.attribute.is_some() => Ok(()),
            (true, _) => crate::feed::scrape::check_selector(&pick.path),
        };
        match checked {
            Ok(()) => Some(pick),
            Err(e) => {
                self.problem(
                    Some(value.span()),
                    format!("select.{what} \"{written}\" {e}"),
                );
                None
            }
        }
    }

    /// The `[[feed]]` tables over these (valid) sources: those without problems.
    fn feeds(
        &mut self,
        raw: &[Spanned<RawFeed>],
        sources: &[std::sync::Arc<SourceConfig>],
    ) -> Vec<FeedConfig> {
        let mut names: HashMap<String, usize> = HashMap::new();
        raw.iter()
            .filter_map(|f| self.feed(f.get_ref(), sources, &mut names))
            .collect()
    }

    /// The sources a `[[feed]]` or `[[webhook]]` (`who`, as messages name it) takes by name
    /// and by tag, each once, in the order named; `None` (with a problem for each) when a
    /// name is no source or a tag is on none.
    fn chosen_sources(
        &mut self,
        who: &str,
        names: &[Spanned<String>],
        tags: &[Spanned<String>],
        sources: &[std::sync::Arc<SourceConfig>],
    ) -> Option<Vec<String>> {
        let mut ok = true;
        let mut chosen: Vec<String> = Vec::new();
        let mut take = |name: &str| {
            if !chosen.iter().any(|c| c == name) {
                chosen.push(name.to_string());
            }
        };
        for s in names {
            if sources.iter().any(|c| &c.name == s.get_ref()) {
                take(s.get_ref());
            } else {
                self.problem(
                    Some(s.span()),
                    format!(
                        "{who} names source \"{}\", which is not a [[source]]",
                        s.get_ref()
                    ),
                );
                ok = false;
            }
        }
        for t in tags {
            let tagged: Vec<&SourceConfig> = sources
                .iter()
                .filter(|c| c.tags.contains(t.get_ref()))
                .map(|c| &**c)
                .collect();
            if tagged.is_empty() {
                self.problem(
                    Some(t.span()),
                    format!("{who} takes tag \"{}\", which no source has", t.get_ref()),
                );
                ok = false;
            }
            for c in tagged {
                take(&c.name);
            }
        }
        ok.then_some(chosen)
    }

    /// One `[[feed]]` table; `names` holds the feed names seen so far and their lines.
    fn feed(
        &mut self,
        f: &RawFeed,
        sources: &[std::sync::Arc<SourceConfig>],
        names: &mut HashMap<String, usize>,
    ) -> Option<FeedConfig> {
        let name = f.name.get_ref().trim();
        let mut ok = self.unique_slug(&f.name, names, "feed name", "");
        let mut chosen =
            match self.chosen_sources(&format!("feed \"{name}\""), &f.sources, &f.tags, sources) {
                Some(c) => c,
                None => {
                    ok = false;
                    Vec::new()
                }
            };
        if f.sources.is_empty() && f.tags.is_empty() {
            chosen = sources.iter().map(|c| c.name.clone()).collect();
        }
        let include = self.patterns(&f.include, "include");
        let exclude = self.patterns(&f.exclude, "exclude");
        let query = match &f.query {
            None => None,
            Some(q) => match crate::query::parse(q.get_ref()) {
                Ok(parsed) => Some(std::sync::Arc::new(parsed)),
                Err(e) => {
                    self.problem(Some(q.span()), format!("feed \"{name}\": query: {e}"));
                    ok = false;
                    None
                }
            },
        };
        if !ok {
            return None;
        }
        Some(FeedConfig {
            name: name.to_string(),
            title: f.title.clone(),
            description: f.description.clone(),
            sources: chosen,
            rules: Rules {
                include: include?,
                exclude: exclude?,
            },
            query,
        })
    }

    /// The `[[webhook]]` tables, each checked against the sources and named feeds.
    fn webhooks(
        &mut self,
        raw: &[Spanned<RawWebhook>],
        sources: &[std::sync::Arc<SourceConfig>],
        feeds: &[FeedConfig],
    ) -> Vec<WebhookConfig> {
        let mut names: HashMap<String, usize> = HashMap::new();
        raw.iter()
            .enumerate()
            .filter_map(|(i, w)| self.webhook(w.get_ref(), i + 1, sources, feeds, &mut names))
            .collect()
    }

    /// One `[[webhook]]` table, the `n`th.
    fn webhook(
        &mut self,
        w: &RawWebhook,
        n: usize,
        sources: &[std::sync::Arc<SourceConfig>],
        feeds: &[FeedConfig],
        names: &mut HashMap<String, usize>,
    ) -> Option<WebhookConfig> {
        use base64::Engine;
        let mut ok = true;
        let name = match &w.name {
            Some(name) => {
                ok &= self.unique_slug(name, names, "webhook name", "");
                name.get_ref().trim().to_string()
            }
            None => format!("webhook-{n}"),
        };
        let url = match Url::parse(w.url.get_ref().trim()) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Some(u),
            Ok(_) => {
                self.problem(
                    Some(w.url.span()),
                    format!("webhook \"{name}\": url must be an http or https URL with a host"),
                );
                None
            }
            Err(e) => {
                self.problem(
                    Some(w.url.span()),
                    format!("webhook \"{name}\": url is not a URL ({e})"),
                );
                None
            }
        };
        let key = w
            .secret
            .get_ref()
            .trim()
            .strip_prefix("whsec_")
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .filter(|k| (24..=64).contains(&k.len()));
        if key.is_none() {
            self.problem(
                Some(w.secret.span()),
                format!(
                    "webhook \"{name}\": secret must be a Standard Webhooks secret: \"whsec_\" followed by 24 to 64 random bytes in base64 (e.g. `echo whsec_$(openssl rand -base64 32)`)"
                ),
            );
        }
        let chosen =
            match self.chosen_sources(&format!("webhook \"{name}\""), &w.sources, &w.tags, sources)
            {
                Some(c) => c,
                None => {
                    ok = false;
                    Vec::new()
                }
            };
        for f in &w.feeds {
            if !feeds.iter().any(|c| &c.name == f.get_ref()) {
                self.problem(
                    Some(f.span()),
                    format!(
                        "webhook \"{name}\" names feed \"{}\", which is not a [[feed]]",
                        f.get_ref()
                    ),
                );
                ok = false;
            }
        }
        let format = match w.format.as_ref().map(|f| (f.get_ref().as_str(), f.span())) {
            None | Some(("json", _)) => Some(WebhookFormat::Json),
            Some(("atom", _)) => Some(WebhookFormat::Atom),
            Some((other, span)) => {
                self.problem(
                    Some(span),
                    format!(
                        "webhook \"{name}\": format \"{other}\" is not one of \"json\" (JSON Feed, the default) or \"atom\""
                    ),
                );
                None
            }
        };
        if !ok {
            return None;
        }
        let selects = !(w.sources.is_empty() && w.tags.is_empty());
        Some(WebhookConfig {
            name,
            url: url?,
            key: key?,
            sources: (selects || !w.feeds.is_empty()).then_some(chosen),
            feeds: w.feeds.iter().map(|f| f.get_ref().clone()).collect(),
            format: format?,
        })
    }

    /// Whether `key` (a `what`, e.g. "source name") is used here first: `seen` then holds
    /// it with its line; else a problem names the line of its first use.
    /// A name (`what`: "source name", "feed name") that must be a slug, the first of its kind;
    /// `more` ends the message that says what a slug is.
    fn unique_slug(
        &mut self,
        name: &Spanned<String>,
        seen: &mut HashMap<String, usize>,
        what: &str,
        more: &str,
    ) -> bool {
        let key = name.get_ref().trim();
        if is_slug(key) {
            return self.first_use(key, name.span(), seen, what);
        }
        self.problem(
            Some(name.span()),
            format!(
                "{what} \"{key}\" must be a slug: lowercase letters, digits, '-' and '_'{more}"
            ),
        );
        false
    }

    fn first_use(
        &mut self,
        key: &str,
        span: Range<usize>,
        seen: &mut HashMap<String, usize>,
        what: &str,
    ) -> bool {
        if let Some(first) = seen.get(key) {
            self.problem(
                Some(span),
                format!("duplicate {what} \"{key}\" (first used on line {first})"),
            );
            false
        } else {
            let line = self.line_col(span.start).0;
            seen.insert(key.to_string(), line);
            true
        }
    }

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

    fn duration(&mut self, value: &Spanned<String>, what: &str) -> Option<Duration> {
        self.duration_within(value, what, MAX_DURATION)
    }

    /// An optional duration: `default` when absent.
    fn duration_or(
        &mut self,
        value: &Option<Spanned<String>>,
        what: &str,
        default: Duration,
    ) -> Option<Duration> {
        match value {
            None => Some(default),
            Some(d) => self.duration(d, what),
        }
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

    /// An optional count from 1 to `max`: `default` when absent.
    fn count(
        &mut self,
        value: &Option<Spanned<i64>>,
        what: &str,
        max: i64,
        default: u64,
    ) -> Option<u64> {
        match value {
            None => Some(default),
            Some(n) => self.positive(n, what, max),
        }
    }

    /// As [`Validator::count`], where 0 is allowed too (it turns something off).
    fn count_or_zero(
        &mut self,
        value: &Option<Spanned<i64>>,
        what: &str,
        max: i64,
        default: u64,
    ) -> Option<u64> {
        match value {
            Some(n) if *n.get_ref() == 0 => Some(0),
            other => self.count(other, what, max, default),
        }
    }

    /// Addresses and networks (`10.0.0.1`, `10.0.0.0/8`, `fd00::/8`); `None` if any is
    /// neither (each reported with `message` of the entry as written).
    fn networks(
        &mut self,
        list: &[Spanned<String>],
        message: impl Fn(&str) -> String,
    ) -> Option<Vec<ipnet::IpNet>> {
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
                    self.problem(Some(t.span()), message(t.get_ref()));
                    nets = None;
                }
            }
        }
        nets
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
            let (fields, pattern) = match r.get_ref() {
                RawRule::Any(p) => (Field::EVERY, p),
                RawRule::Field { field, pattern } => {
                    match Field::ALL.iter().find(|(n, _)| n == field) {
                        Some((_, f)) => (f.only(), pattern),
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
                Some(pattern) => out.push(Rule { fields, pattern }),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// A named feed's patterns (on its entries' texts, [`Field::TEXT`]); `None` if any is
    /// wrong (each is reported).
    fn patterns(&mut self, raw: &[Spanned<String>], what: &str) -> Option<Vec<Rule>> {
        let rules: Vec<Rule> = raw
            .iter()
            .filter_map(|p| {
                self.regex(p.get_ref(), p.span(), what).map(|pattern| Rule {
                    fields: Field::TEXT,
                    pattern,
                })
            })
            .collect();
        (rules.len() == raw.len()).then_some(rules)
    }

    /// A title template, or a problem at its position.
    fn template(&mut self, t: &Spanned<String>) -> Option<Template> {
        match Template::parse(t.get_ref()) {
            Ok(template) => Some(template),
            Err(e) => {
                self.problem(Some(t.span()), format!("title_template: {e}"));
                None
            }
        }
    }
}

/// A theme's `*.html` files (at most [`MAX_TEMPLATES`], each at most
/// [`MAX_TEMPLATE_BYTES`]), each checked by minijinja; a problem names the file and line.
fn read_templates(dir: &Path) -> Result<Vec<(String, String)>, String> {
    use super::{MAX_TEMPLATE_BYTES, MAX_TEMPLATES};
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let listing =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut files = Vec::new();
    for item in listing {
        let item = item.map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        let file = item.path();
        let Some(name) = item.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if !name.ends_with(".html") {
            continue;
        }
        // Not `is_file`, which follows links: a link in a theme could publish any file the
        // daemon can read (its config with source credentials, /proc/self/environ).
        let kind = std::fs::symlink_metadata(&file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?
            .file_type();
        if kind.is_symlink() {
            return Err(format!(
                "{} is a symbolic link: a theme's templates must be files of its own",
                file.display()
            ));
        }
        if !kind.is_file() {
            continue;
        }
        if files.len() == MAX_TEMPLATES {
            return Err(format!(
                "{} holds more than {MAX_TEMPLATES} templates",
                dir.display()
            ));
        }
        let mut text = String::new();
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&file)
            .and_then(|f| f.take(MAX_TEMPLATE_BYTES + 1).read_to_string(&mut text))
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        if text.len() as u64 > MAX_TEMPLATE_BYTES {
            return Err(format!(
                "{} is larger than {} KiB",
                file.display(),
                MAX_TEMPLATE_BYTES / 1024
            ));
        }
        let env = minijinja::Environment::new();
        if let Err(e) = env.template_from_named_str(&name, &text) {
            let line = e.line().map(|l| format!(":{l}")).unwrap_or_default();
            let detail = e.detail().map(|d| format!(": {d}")).unwrap_or_default();
            return Err(format!("{}{line}: {}{detail}", file.display(), e.kind()));
        }
        files.push((name, text));
    }
    files.sort();
    Ok(files)
}

/// `url` with its scheme and host (everything before the path) in lowercase, as `Url`
/// would write them, and the rest as written.
fn lowercase_origin(url: &str) -> String {
    let end = url
        .find("://")
        .map(|i| i + 3)
        .and_then(|start| url[start..].find('/').map(|j| start + j))
        .unwrap_or(url.len());
    format!("{}{}", url[..end].to_ascii_lowercase(), &url[end..])
}
