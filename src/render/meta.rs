//! What every published document is made of: the feed's description ([`FeedMeta`]), each
//! source's attribution ([`SourceInfo`]) and its public URL, and the pieces the formats
//! share.

use chrono::{DateTime, Utc};

use crate::model::Entry;

/// What describes one published feed.
#[derive(Clone, Debug)]
pub struct FeedMeta {
    pub title: String,
    pub description: String,
    pub author: String,
    /// The exact URL this document is served at (query string included): the self link.
    pub self_url: String,
    /// A stable id for the feed (its URL without query string).
    pub id: String,
    /// The site's home page.
    pub home_url: String,
    /// `updated` of a feed with no entries.
    pub empty_updated: DateTime<Utc>,
    /// The next (older) page, when there is one (RFC 5005 paging).
    pub next_url: Option<String>,
    /// WebSub hubs to advertise (`rel="hub"` links; JSON Feed's `hubs`).
    pub hubs: Vec<String>,
}

/// What a combined feed says about where an entry came from.
#[derive(Clone, Debug)]
pub struct SourceInfo {
    pub title: String,
    /// The source's feed URL.
    pub url: String,
    /// The source's home page, when known.
    pub link: Option<String>,
}

/// Where a source's feed is published as coming from: its own URL, except that a `file:`
/// URL (a path private to this machine) becomes the source's feed on this instance
/// (`{base_url}/sources/{name}.atom`), and user name and password are taken out of an
/// http(s) URL.
pub fn public_source_url(base_url: &str, name: &str, url: &url::Url) -> String {
    match url.scheme() {
        "http" | "https" => crate::feed::text::without_credentials(url.clone()).to_string(),
        _ => format!("{base_url}/sources/{name}.atom"),
    }
}

/// Where a source's entries are published as coming from, as a feed: for a page source
/// (`kind = "html"` or `"json"`, whose URL is no feed) its feed on this instance, else
/// [`public_source_url`].
pub fn source_feed_url(base_url: &str, source: &crate::config::SourceConfig) -> String {
    match source.kind {
        crate::config::SourceKind::Feed => public_source_url(base_url, &source.name, &source.url),
        _ => format!("{base_url}/sources/{}.atom", source.name),
    }
}

/// When the newest entry changed; for a feed without entries, `meta.empty_updated`.
pub(super) fn newest(entries: &[Entry], meta: &FeedMeta) -> DateTime<Utc> {
    entries
        .iter()
        .map(|e| e.updated)
        .max()
        .unwrap_or(meta.empty_updated)
}

const MEDIA_NS: &str = "http://search.yahoo.com/mrss/";

/// `xmlns:media` when some entry has a thumbnail.
pub(super) fn media_namespace(entries: &[Entry]) -> std::collections::BTreeMap<String, String> {
    let mut ns = std::collections::BTreeMap::new();
    if entries.iter().any(|e| e.thumbnail.is_some()) {
        ns.insert("media".to_string(), MEDIA_NS.to_string());
    }
    ns
}
