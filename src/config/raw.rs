//! `feeds.toml` as written: the serde types the file is read into, with the span of every
//! value that can be wrong so the validator can point at `file:line:col`. Nothing here is
//! checked or defaulted; `validate` turns these into the types of `config`.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// The whole file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub(super) server: Option<RawServer>,
    #[serde(default)]
    pub(super) store: Option<RawStore>,
    #[serde(default)]
    pub(super) publish: Option<RawPublish>,
    #[serde(default)]
    pub(super) fetch: Option<RawFetch>,
    #[serde(default, rename = "source")]
    pub(super) sources: Vec<Spanned<RawSource>>,
    #[serde(default, rename = "feed")]
    pub(super) feeds: Vec<Spanned<RawFeed>>,
    #[serde(default)]
    pub(super) retention: Option<RawRetention>,
    #[serde(default, rename = "webhook")]
    pub(super) webhooks: Vec<Spanned<RawWebhook>>,
    #[serde(default)]
    pub(super) websub: Option<RawWebsub>,
    #[serde(default)]
    pub(super) hub: Option<RawHub>,
}

/// `[websub]`: the WebSub subscriber.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWebsub {
    pub(super) subscribe: Option<bool>,
    pub(super) lease: Option<Spanned<String>>,
    pub(super) safety_poll: Option<Spanned<String>>,
}

/// `[hub]`: the WebSub hub for tributary's own feeds.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHub {
    pub(super) enabled: Option<bool>,
    pub(super) lease_min: Option<Spanned<String>>,
    pub(super) lease_max: Option<Spanned<String>>,
    pub(super) lease_default: Option<Spanned<String>>,
    pub(super) max_per_topic: Option<Spanned<i64>>,
    pub(super) max_per_callback_host: Option<Spanned<i64>>,
    pub(super) deliveries: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWebhook {
    pub(super) name: Option<Spanned<String>>,
    pub(super) url: Spanned<String>,
    pub(super) secret: Spanned<String>,
    #[serde(default)]
    pub(super) sources: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) tags: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) feeds: Vec<Spanned<String>>,
    pub(super) format: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRetention {
    pub(super) keep_per_source: Option<Spanned<i64>>,
    pub(super) keep_total: Option<Spanned<i64>>,
    pub(super) keep_for: Option<Spanned<String>>,
    pub(super) keep_min: Option<Spanned<i64>>,
    pub(super) every: Option<Spanned<String>>,
    pub(super) removed_after: Option<Spanned<String>>,
    pub(super) tombstones_for: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFeed {
    pub(super) name: Spanned<String>,
    pub(super) title: Option<String>,
    pub(super) description: Option<String>,
    #[serde(default)]
    pub(super) sources: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) tags: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) include: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) exclude: Vec<Spanned<String>>,
    pub(super) query: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    pub(super) listen: Option<Spanned<String>>,
    pub(super) base_url: Option<Spanned<String>>,
    pub(super) max_connections: Option<Spanned<i64>>,
    pub(super) max_connections_per_ip: Option<Spanned<i64>>,
    pub(super) trusted_proxies: Option<Vec<Spanned<String>>>,
    pub(super) header_timeout: Option<Spanned<String>>,
    pub(super) idle_timeout: Option<Spanned<String>>,
    pub(super) render_cache_mb: Option<Spanned<i64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStore {
    pub(super) path: Option<String>,
    pub(super) cache_mb: Option<Spanned<u64>>,
    pub(super) min_free_mb: Option<Spanned<i64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPublish {
    pub(super) title: Option<String>,
    pub(super) description: Option<String>,
    pub(super) author: Option<String>,
    pub(super) max_items: Option<Spanned<i64>>,
    pub(super) templates: Option<Spanned<String>>,
    /// External WebSub hubs pinged with `hub.mode=publish`.
    #[serde(default)]
    pub(super) hubs: Vec<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFetch {
    pub(super) concurrency: Option<Spanned<i64>>,
    pub(super) timeout: Option<Spanned<String>>,
    pub(super) connect_timeout: Option<Spanned<String>>,
    pub(super) max_body_mb: Option<Spanned<i64>>,
    pub(super) max_entries: Option<Spanned<i64>>,
    pub(super) user_agent: Option<String>,
    pub(super) interval: Option<Spanned<String>>,
    pub(super) per_host: Option<Spanned<i64>>,
    pub(super) min_interval: Option<Spanned<String>>,
    pub(super) max_interval: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) allow_networks: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSource {
    pub(super) name: Spanned<String>,
    pub(super) url: Spanned<String>,
    pub(super) title: Option<String>,
    #[serde(default)]
    pub(super) tags: Vec<Spanned<String>>,
    pub(super) interval: Option<Spanned<String>>,
    pub(super) user_agent: Option<Spanned<String>>,
    pub(super) headers: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    pub(super) keep: Option<Spanned<i64>>,
    pub(super) keep_for: Option<Spanned<String>>,
    pub(super) full_text: Option<bool>,
    #[serde(default)]
    pub(super) include: Vec<Spanned<RawRule>>,
    #[serde(default)]
    pub(super) exclude: Vec<Spanned<RawRule>>,
    pub(super) title_template: Option<Spanned<String>>,
    pub(super) max_new_per_poll: Option<Spanned<i64>>,
    /// `"feed"` (the default), `"html"` or `"json"`.
    pub(super) kind: Option<Spanned<String>>,
    /// Where entries are on a page (`kind = "html"` or `"json"`).
    pub(super) select: Option<Spanned<RawSelect>>,
    /// The zone of dates a page writes without one (an IANA name).
    pub(super) timezone: Option<Spanned<String>>,
    /// `false`: never subscribe to this source's WebSub hub.
    pub(super) websub: Option<bool>,
}

/// `[source.select]`: CSS selectors (html) or JSONPaths (json).
#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a table of selectors: [source.select] with items = \"...\" and optional fields"
)]
pub(super) struct RawSelect {
    pub(super) items: Option<Spanned<String>>,
    pub(super) title: Option<Spanned<String>>,
    pub(super) link: Option<Spanned<String>>,
    pub(super) date: Option<Spanned<String>>,
    pub(super) date_format: Option<Spanned<String>>,
    pub(super) summary: Option<Spanned<String>>,
    pub(super) content: Option<Spanned<String>>,
    pub(super) author: Option<Spanned<String>>,
    pub(super) image: Option<Spanned<String>>,
}

/// A filter rule as written: a pattern for every field, or a table naming the field.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum RawRule {
    Any(String),
    Field { field: String, pattern: String },
}
