//! tributary's own entry model: what normalise produces, the store keeps and render reads.
//!
//! Parser types never reach the store, so a parser upgrade cannot change what is on disk.
//! Fields added later must be `#[serde(default)]` so older stores keep reading.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The stable identity of an entry: 16 bytes of a keyed BLAKE3 hash over the source name and
/// the entry's guid, link or content (see [`crate::feed::identity::entry_key`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EntryKey(pub [u8; 16]);

impl EntryKey {
    /// The id published in output feeds: a `urn:uuid:` (RFC 9562 version 8, "custom") made
    /// from the key, so it is stable across polls and restarts and valid as an Atom id.
    pub fn urn(&self) -> String {
        let mut b = self.0;
        b[6] = (b[6] & 0x0f) | 0x80; // version 8
        b[8] = (b[8] & 0x3f) | 0x80; // RFC 9562 variant
        let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
        format!(
            "urn:uuid:{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }

    pub fn hex(&self) -> String {
        hex(&self.0)
    }
}

/// `bytes` in lowercase hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|x| format!("{x:02x}")).collect()
}

/// A person named by a feed (author or contributor).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub uri: Option<String>,
}

/// A media file attached to an entry (podcast episodes, images).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enclosure {
    pub url: String,
    #[serde(default)]
    pub mime_type: Option<String>,
    #[serde(default)]
    pub length: Option<u64>,
}

/// One entry as tributary stores and publishes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub key: EntryKey,
    /// The name of the source (from `feeds.toml`) this entry came from.
    pub source: String,
    /// The feed's own guid / id, when it gave one.
    #[serde(default)]
    pub guid: Option<String>,
    /// Plain text: entities decoded, tags stripped.
    pub title: String,
    /// Absolute URL of the article.
    #[serde(default)]
    pub link: Option<String>,
    /// Sanitised HTML.
    #[serde(default)]
    pub summary: Option<String>,
    /// Sanitised HTML.
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub authors: Vec<Person>,
    #[serde(default)]
    pub categories: Vec<String>,
    #[serde(default)]
    pub enclosures: Vec<Enclosure>,
    /// The page with the article's comments.
    #[serde(default)]
    pub comments: Option<String>,
    /// A thumbnail image (Media RSS).
    #[serde(default)]
    pub thumbnail: Option<String>,
    /// When the publisher says the entry was first published (never in the future).
    #[serde(default)]
    pub published: Option<DateTime<Utc>>,
    /// When the entry last changed: the feed's own date, or the poll that saw the change.
    pub updated: DateTime<Utc>,
    /// When tributary first stored the entry.
    pub first_seen: DateTime<Utc>,
    /// BLAKE3 over everything a reader sees; a change means "updated".
    pub fingerprint: [u8; 16],
    /// Names the article across sources (a hash of its normalised link); `None` when the
    /// entry has no link of its own (or shares it with other entries of its feed).
    #[serde(default)]
    pub article: Option<[u8; 16]>,
    /// Set when another source had this article first: the combined feeds show that one.
    #[serde(default)]
    pub duplicate_of: Option<Credit>,
    /// On the credited entry: the other sources that also carried the article.
    #[serde(default)]
    pub also_in: Vec<String>,
    /// For sources with `full_text`: what became of fetching the article's page (`None`:
    /// not tried yet). Set once; never tried again.
    #[serde(default)]
    pub full_text: Option<FullText>,
    /// The article extracted from the entry's page (sanitised HTML), published as the
    /// content in place of the feed's.
    #[serde(default)]
    pub full_content: Option<String>,
}

/// What fetching an entry's article page came to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum FullText {
    /// The article was extracted and is in `full_content`.
    Fetched,
    /// The page could not be fetched, or held nothing article-like: the feed's content
    /// stays.
    Failed { reason: String },
    /// The link pointed at a non-public address: never fetched.
    Refused { reason: String },
}

/// Which entry (of which source) an article is credited to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credit {
    pub key: EntryKey,
    pub source: String,
}

impl Entry {
    /// How a log line names the entry: its link, else its guid, else its title.
    pub fn label(&self) -> &str {
        self.link
            .as_deref()
            .or(self.guid.as_deref())
            .unwrap_or(&self.title)
    }

    /// The entry as published: with an extracted article, the article is the content and
    /// the feed's own summary (else its content) the summary.
    pub fn for_publishing(mut self) -> Entry {
        if let Some(article) = self.full_content.take() {
            let feed_content = self.content.replace(article);
            if self.summary.is_none() {
                self.summary = feed_content;
            }
        }
        self
    }

    /// The time the entry is ordered by, newest first: its publication date, else its first
    /// update, else when we first saw it.
    pub fn sort_time(&self) -> DateTime<Utc> {
        self.published.unwrap_or(self.first_seen)
    }
}

/// What the store keeps about each source between polls.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceState {
    /// Validators for the next conditional GET.
    #[serde(default)]
    pub etag: Option<String>,
    #[serde(default)]
    pub last_modified: Option<String>,
    /// For a page source: how the page was read when the validators were kept
    /// ([`crate::feed::scrape::SourceKind::reader_key`]). Validators kept under other
    /// selectors are not sent: the page must be read again.
    #[serde(default)]
    pub read_as: Option<String>,
    #[serde(default)]
    pub last_attempt: Option<DateTime<Utc>>,
    #[serde(default)]
    pub last_success: Option<DateTime<Utc>>,
    #[serde(default)]
    pub last_error: Option<String>,
    #[serde(default)]
    pub last_error_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub consecutive_failures: u32,
    /// What the last good poll had to forgive (a guessed encoding, repaired XML).
    #[serde(default)]
    pub last_warning: Option<String>,
    #[serde(default)]
    pub last_status: Option<u16>,
    /// The feed's own title and home page, used for attribution in combined feeds.
    #[serde(default)]
    pub feed_title: Option<String>,
    #[serde(default)]
    pub feed_link: Option<String>,
    /// How many entries of this source are stored.
    #[serde(default)]
    pub entry_count: u64,
    /// The sort time of its oldest stored entry, kept by the store with `entry_count`, so a
    /// retention pass tells a source with nothing to prune without reading its entries.
    /// `None` when it has none (or a store written before it was kept: then it is read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oldest_entry: Option<DateTime<Utc>>,
    /// When the next poll is due: from the interval, the server's hints and backoff.
    #[serde(default)]
    pub next_poll: Option<DateTime<Utc>>,
    /// Where permanent redirects (301/308) moved the source, and the configured URL that
    /// applies to: a new URL in `feeds.toml` starts afresh.
    #[serde(default)]
    pub moved_to: Option<String>,
    #[serde(default)]
    pub moved_from: Option<String>,
    /// The configured URL that answered 410 Gone: not polled again until `feeds.toml`
    /// gives the source another URL.
    #[serde(default)]
    pub gone_url: Option<String>,
    /// When retention first found the source missing from the config; its entries are
    /// deleted `[retention] removed_after` later unless it comes back.
    #[serde(default)]
    pub removed_at: Option<DateTime<Utc>>,
    /// Entries the source's include/exclude rules kept out, in all.
    #[serde(default)]
    pub filtered: u64,
    /// New entries skipped because of `max_new_per_poll`, in all.
    #[serde(default)]
    pub capped: u64,
    /// Article pages fetched and extracted, failed (the feed's content kept), and refused
    /// (non-public addresses), in all.
    #[serde(default)]
    pub full_text_fetched: u64,
    #[serde(default)]
    pub full_text_failed: u64,
    #[serde(default)]
    pub full_text_refused: u64,
    /// The last article page refused by the address guard, and why.
    #[serde(default)]
    pub last_refusal: Option<String>,
    /// The last article page that could not be fetched or held no article, and why.
    #[serde(default)]
    pub full_text_last_failure: Option<String>,
    /// The last document read in full and stored: what a later 200 is compared with, so
    /// the same document again is not read a second time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<SeenDocument>,
}

/// A document a poll read in full: its digest ([`crate::ingest::page::digest`]: its bytes
/// and everything that shaped how it was read), the `<ttl>` it gave and its entries.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenDocument {
    pub digest: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_secs: Option<u64>,
    /// What reading it again would count: its entries stored (unchanged), those retention
    /// pruned or the new-entry cap kept out (pruned), and those the rules kept out
    /// (filtered). Set by the store with the entries.
    #[serde(default)]
    pub entries: usize,
    #[serde(default)]
    pub buried: usize,
    #[serde(default)]
    pub filtered: usize,
    /// The source's stored entries after that read: when retention has pruned some since,
    /// the next document is read in full (and counted afresh).
    #[serde(default)]
    pub entry_count: u64,
    /// When it was read in full. It is read again after a while even if unchanged, as a
    /// read refreshes the tombstones of pruned entries it still lists
    /// ([`crate::store::Store::tombstone_refresh`]).
    #[serde(default)]
    pub read_at: Option<DateTime<Utc>>,
    /// Its entries as parsed ([`crate::ingest::page::entries_digest`]): another document
    /// with the same entries is not normalised again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entries_digest: Option<String>,
}

impl SourceState {
    /// Takes the fields only the store changes (removal mark, full-text counters) from the
    /// stored state: a poll's copy may be older than a write made since it was read.
    pub fn keep_store_fields(&mut self, stored: &SourceState) {
        self.removed_at = stored.removed_at;
        self.oldest_entry = stored.oldest_entry;
        self.full_text_fetched = stored.full_text_fetched;
        self.full_text_failed = stored.full_text_failed;
        self.full_text_refused = stored.full_text_refused;
        self.last_refusal = stored.last_refusal.clone();
        self.full_text_last_failure = stored.full_text_last_failure.clone();
    }

    /// The URL to poll for a source configured with `configured`: where it moved
    /// permanently, if it did.
    pub fn current_url(&self, configured: &url::Url) -> url::Url {
        match (&self.moved_from, &self.moved_to) {
            (Some(from), Some(to)) if from == configured.as_str() => {
                url::Url::parse(to).unwrap_or_else(|_| configured.clone())
            }
            _ => configured.clone(),
        }
    }

    /// Whether the source at `configured` answered 410 Gone.
    pub fn is_gone(&self, configured: &url::Url) -> bool {
        self.gone_url.as_deref() == Some(configured.as_str())
    }
}

impl PollCounts {
    /// Adds these counts to `total`.
    pub fn add_to(&self, total: &mut PollCounts) {
        total.new += self.new;
        total.updated += self.updated;
        total.unchanged += self.unchanged;
        total.duplicates += self.duplicates;
        total.guid_changes += self.guid_changes;
        total.pruned += self.pruned;
        total.filtered += self.filtered;
        total.capped += self.capped;
    }
}

/// Counts from one poll of one source.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollCounts {
    pub new: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// New entries whose article another source brought first.
    #[serde(default)]
    pub duplicates: usize,
    /// Entries recognised by their link after the publisher changed their guid.
    #[serde(default)]
    pub guid_changes: usize,
    /// Entries still in the feed that retention has pruned: not stored again.
    #[serde(default)]
    pub pruned: usize,
    /// Entries the source's include/exclude rules kept out.
    #[serde(default)]
    pub filtered: usize,
    /// New entries past `max_new_per_poll`, skipped for good.
    #[serde(default)]
    pub capped: usize,
}

/// A named feed that selects entries by a predicate, for the store to index.
#[derive(Clone)]
pub struct FeedIndex {
    /// Names the definition (sources and patterns): equal definitions share an index, and
    /// a changed definition gets a new one.
    pub id: [u8; 8],
    /// The sources whose entries it may take.
    pub sources: std::collections::HashSet<String>,
    /// Whether it takes an entry of one of those sources.
    pub admits: std::sync::Arc<dyn Fn(&Entry) -> bool + Send + Sync>,
}

impl std::fmt::Debug for FeedIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedIndex")
            .field(
                "id",
                &self
                    .id
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>(),
            )
            .field("sources", &self.sources.len())
            .finish()
    }
}

/// A WebSub subscription of ours to a source's hub (stored by `store/websub.rs`, run by
/// `daemon/websub.rs`). The `token` is the last segment of its callback URL.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub token: String,
    pub source: String,
    /// The source's configured URL when it was made: a reload that changes it unsubscribes.
    #[serde(default)]
    pub source_url: String,
    /// The callback URL the hub was given (`{base_url}/websub/callback/{token}`).
    #[serde(default)]
    pub callback: String,
    pub hub: String,
    pub topic: String,
    /// `hub.secret` sent (`None`: none, so deliveries cannot be trusted and are refused).
    pub secret: Option<String>,
    pub state: SubscriptionState,
    /// The request the hub may still verify: `subscribe` or `unsubscribe`.
    #[serde(default)]
    pub pending: Option<String>,
    /// Why it is denied, lapsed, or was not made.
    #[serde(default)]
    pub reason: Option<String>,
    /// When the last subscribe (or renewal) request was sent.
    #[serde(default)]
    pub requested: Option<DateTime<Utc>>,
    /// When the lease the hub granted ends.
    #[serde(default)]
    pub lease_end: Option<DateTime<Utc>>,
    #[serde(default)]
    pub last_delivery: Option<DateTime<Utc>>,
    #[serde(default)]
    pub deliveries: u64,
    /// Deliveries ignored: missing or wrong signature, too big.
    #[serde(default)]
    pub rejected: u64,
    /// The `self` the source's document names, when other than the topic (a pushed
    /// document may name it).
    #[serde(default)]
    pub document_self: Option<String>,
}

/// Where a [`Subscription`] stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubscriptionState {
    /// Asked for; the hub has not verified it yet.
    Pending,
    /// Verified, and its lease runs.
    Active,
    /// The hub refused it (`hub.mode=denied`), or the request failed.
    Denied,
    /// Its lease ended without a renewal being verified.
    Lapsed,
    /// Not made (a plain-http hub outside trusted networks, too many for that hub).
    Off,
}

impl SubscriptionState {
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionState::Pending => "pending",
            SubscriptionState::Active => "active",
            SubscriptionState::Denied => "denied",
            SubscriptionState::Lapsed => "lapsed",
            SubscriptionState::Off => "off",
        }
    }
}
