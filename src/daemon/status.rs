//! Each source's health, as `/healthz` serves it and `tributary status` prints it.

use std::collections::HashMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::{Config, SourceConfig};
use crate::model::SourceState;
use crate::store::{Store, StoreError};

/// The whole instance.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Health {
    pub status: String,
    pub version: String,
    /// Entries stored for the configured sources.
    pub entries: u64,
    pub sources: Vec<SourceStatus>,
    /// A retention pass that would remove most of the store, held until `tributary prune
    /// --confirm`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_held: Option<crate::store::HeldPass>,
    /// Each `[[webhook]]`'s deliveries since the daemon started (filled in by the running
    /// daemon's `/healthz`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub webhooks: Vec<WebhookStatus>,
    /// The WebSub hub (filled in by the running daemon's `/healthz` when `[hub]` is on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hub: Option<HubStatus>,
    /// Each WebSub subscription of ours (`daemon/websub.rs`), as stored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub websub: Vec<WebsubStatus>,
    /// The search index (filled in by the running daemon's `/healthz`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<crate::store::search::SearchStatus>,
}

/// The WebSub hub since the daemon started (subscriptions: as stored now).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct HubStatus {
    /// Active subscriptions per topic.
    pub subscriptions: std::collections::BTreeMap<String, usize>,
    /// Documents delivered to subscribers (a 2xx answer).
    pub delivered: u64,
    /// Deliveries given up after their retries (or at a 4xx).
    pub failed: u64,
    /// Subscriptions dropped: a 410, repeated failures, an expired lease.
    pub dropped_subscriptions: u64,
    /// Intent verifications under way.
    pub pending_verifications: u64,
}

/// One WebSub subscription: to which hub, for which topic, how it stands.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct WebsubStatus {
    pub source: String,
    /// `pending`, `active`, `denied`, `lapsed` or `off`.
    pub state: String,
    /// A request the hub has yet to verify (`subscribe`: also a renewal; `unsubscribe`).
    pub pending: Option<String>,
    /// Why it is denied, lapsed or off.
    pub reason: Option<String>,
    pub hub: String,
    pub topic: String,
    pub lease_end: Option<DateTime<Utc>>,
    pub last_delivery: Option<DateTime<Utc>>,
    /// Deliveries taken (signed correctly).
    pub deliveries: u64,
    /// Deliveries ignored (no or a wrong signature, too big).
    pub rejected: u64,
}

impl From<&crate::model::Subscription> for WebsubStatus {
    fn from(sub: &crate::model::Subscription) -> WebsubStatus {
        WebsubStatus {
            source: sub.source.clone(),
            state: sub.state.as_str().to_string(),
            pending: sub.pending.clone(),
            reason: sub.reason.clone(),
            hub: sub.hub.clone(),
            topic: sub.topic.clone(),
            lease_end: sub.lease_end,
            last_delivery: sub.last_delivery,
            deliveries: sub.deliveries,
            rejected: sub.rejected,
        }
    }
}

/// One webhook's deliveries since the daemon started (a delivery is one poll's new
/// entries; its attempts are not counted apart).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct WebhookStatus {
    /// Its `name` (`webhook-N` without one); its URL is not shown (it may hold a token).
    pub name: String,
    /// Delivered (a 2xx answer).
    pub delivered: u64,
    /// Given up: a 4xx other than 429, a refused address, or every attempt failed.
    pub failed: u64,
    /// Dropped unsent because the queue was full (the oldest go first).
    pub dropped: u64,
    /// Waiting: queued, being sent, or waiting for a retry.
    pub pending: u64,
    /// Attempts that failed and are retried.
    pub retries: u64,
    pub last_delivery: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
}

/// Every webhook's [`WebhookStatus`], shared by the dispatcher (which writes) and
/// `/healthz` (which reads). Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct WebhookBoard(std::sync::Arc<std::sync::Mutex<Vec<WebhookStatus>>>);

impl WebhookBoard {
    /// Every webhook's status, in config order.
    pub fn snapshot(&self) -> Vec<WebhookStatus> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Changes `name`'s status; a webhook no longer configured (see [`WebhookBoard::keep`])
    /// is not shown again.
    pub fn update(&self, name: &str, change: impl FnOnce(&mut WebhookStatus)) {
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(w) = all.iter_mut().find(|w| w.name == name) {
            change(w);
        }
    }

    /// Keeps only the webhooks named in `names` (in that order), adding the new ones.
    pub fn keep(&self, names: &[&str]) {
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut kept: Vec<WebhookStatus> = names
            .iter()
            .map(|n| {
                all.iter()
                    .find(|w| w.name == *n)
                    .cloned()
                    .unwrap_or_else(|| WebhookStatus {
                        name: (*n).to_string(),
                        ..WebhookStatus::default()
                    })
            })
            .collect();
        std::mem::swap(&mut *all, &mut kept);
    }
}

/// One configured source.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SourceStatus {
    pub name: String,
    /// The URL in feeds.toml.
    pub url: String,
    /// The URL polled: differs from `url` after a permanent redirect.
    pub current_url: String,
    /// "new" (never polled), "ok", "failing" or "gone" (410: no longer polled).
    pub state: String,
    /// "feed", or "html" / "json" for a page read by selectors.
    #[serde(default = "feed_kind")]
    pub kind: String,
    pub last_attempt: Option<DateTime<Utc>>,
    pub last_success: Option<DateTime<Utc>>,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    pub consecutive_failures: u32,
    /// What the last good poll had to forgive (a guessed encoding, repaired XML).
    pub last_warning: Option<String>,
    pub next_poll: Option<DateTime<Utc>>,
    pub entries: u64,
    /// Entries the source's include/exclude rules kept out, in all.
    #[serde(default)]
    pub filtered: u64,
    /// New entries skipped by `max_new_per_poll`, in all.
    #[serde(default)]
    pub capped: u64,
    /// For `full_text` sources: article pages extracted, failed and refused, in all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_text: Option<FullTextStatus>,
    /// The source's own feed title, for the status page; not part of `/healthz`.
    #[serde(skip)]
    pub feed_title: Option<String>,
}

/// Full-text counters of one source.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FullTextStatus {
    pub fetched: u64,
    pub failed: u64,
    pub refused: u64,
    /// The last article page the address guard refused, and why.
    pub last_refusal: Option<String>,
    /// The last article page that failed (the feed's content was kept), and why.
    #[serde(default)]
    pub last_failure: Option<String>,
}

/// Reads every configured source's state from the store.
pub fn collect(config: &Config, store: &Store) -> Result<Health, StoreError> {
    // Each state becomes its status as it is read: 10,000 whole states are about 9 MB,
    // and every `/healthz` asks.
    let mut read: HashMap<String, SourceStatus> = store
        .source_states_with(|name, st| config.source(name).map(|s| status(s, st)))?
        .into_iter()
        .collect();
    let sources: Vec<SourceStatus> = config
        .sources
        .iter()
        .map(|s| {
            read.remove(&s.name)
                .unwrap_or_else(|| status(s, SourceState::default()))
        })
        .collect();
    Ok(Health {
        status: "ok".into(),
        version: crate::VERSION.into(),
        entries: sources.iter().map(|s| s.entries).sum(),
        sources,
        retention_held: store.held_prune()?,
        webhooks: Vec::new(),
        hub: None,
        websub: websub_statuses(store)?,
        search: None,
    })
}

/// A source's status from its config and its stored state.
fn status(s: &SourceConfig, st: SourceState) -> SourceStatus {
    let state = if st.is_gone(&s.url) {
        "gone"
    } else if st.last_attempt.is_none() {
        "new"
    } else if st.consecutive_failures > 0 {
        "failing"
    } else {
        "ok"
    };
    SourceStatus {
        name: s.name.clone(),
        url: s.url.to_string(),
        current_url: st.current_url(&s.url).to_string(),
        state: state.to_string(),
        kind: s.kind.name().to_string(),
        last_attempt: st.last_attempt,
        last_success: st.last_success,
        last_status: st.last_status,
        last_error: st.last_error,
        last_error_at: st.last_error_at,
        consecutive_failures: st.consecutive_failures,
        last_warning: st.last_warning,
        next_poll: if state == "gone" { None } else { st.next_poll },
        entries: st.entry_count,
        filtered: st.filtered,
        capped: st.capped,
        full_text: s.full_text.then_some(FullTextStatus {
            fetched: st.full_text_fetched,
            failed: st.full_text_failed,
            refused: st.full_text_refused,
            last_refusal: st.last_refusal,
            last_failure: st.full_text_last_failure,
        }),
        feed_title: st.feed_title,
    }
}

/// The stored WebSub subscriptions, by source.
fn websub_statuses(store: &Store) -> Result<Vec<WebsubStatus>, StoreError> {
    let mut subs: Vec<WebsubStatus> = store
        .websub_subscriptions()?
        .iter()
        .map(WebsubStatus::from)
        .collect();
    subs.sort_by(|a, b| (&a.source, &a.hub).cmp(&(&b.source, &b.hub)));
    Ok(subs)
}

/// Where a status came from.
#[derive(Clone, Debug, PartialEq)]
pub enum Answered {
    /// The running daemon's `/healthz`.
    Daemon,
    /// The store, because no daemon answered at `healthz`: nothing is polling.
    Store { healthz: String },
}

fn feed_kind() -> String {
    "feed".into()
}

/// A report for a person: one block per source, and, when no daemon is running, a line
/// that says so (and next polls that wait for one).
pub fn render_text(health: &Health, now: DateTime<Utc>, answered: &Answered) -> String {
    let when = |t: Option<DateTime<Utc>>| match t {
        None => "never".to_string(),
        Some(t) => format!(
            "{} ({})",
            t.format("%Y-%m-%d %H:%M:%S UTC"),
            relative(t, now)
        ),
    };
    let mut out = String::new();
    for s in &health.sources {
        let _ = writeln!(out, "{} [{}] {} entries", s.name, s.state, s.entries);
        let _ = writeln!(out, "  url:            {}", s.current_url);
        if s.kind != "feed" {
            let _ = writeln!(
                out,
                "  kind:           {} (a page read by selectors)",
                s.kind
            );
        }
        if s.current_url != s.url {
            let _ = writeln!(
                out,
                "  moved from:     {} (permanent redirect: update feeds.toml)",
                s.url
            );
        }
        let _ = writeln!(out, "  last success:   {}", when(s.last_success));
        if let Some(e) = &s.last_error {
            let _ = writeln!(out, "  last error:     {e} at {}", when(s.last_error_at));
        }
        if let Some(w) = &s.last_warning {
            let _ = writeln!(out, "  warning:        {w}");
        }
        if s.consecutive_failures > 0 {
            let _ = writeln!(out, "  failures:       {} in a row", s.consecutive_failures);
        }
        if s.filtered > 0 || s.capped > 0 {
            let _ = writeln!(
                out,
                "  kept out:       {} by filters, {} by max_new_per_poll",
                s.filtered, s.capped
            );
        }
        if let Some(f) = &s.full_text {
            let _ = writeln!(
                out,
                "  full text:      {} fetched, {} failed, {} refused",
                f.fetched, f.failed, f.refused
            );
            if let Some(r) = &f.last_refusal {
                let _ = writeln!(out, "  last refusal:   {r}");
            }
            if let Some(r) = &f.last_failure {
                let _ = writeln!(
                    out,
                    "  last failure:   {r} (the feed's content is published)"
                );
            }
        }
        let running = *answered == Answered::Daemon;
        let next = match (s.state.as_str(), s.next_poll) {
            ("gone", _) => "never (410 Gone)".to_string(),
            ("new", None) if running => "soon after start".to_string(),
            (_, None) if !running => "when a daemon runs".to_string(),
            (_, t) if !running => format!("when a daemon runs (due {})", when(t)),
            (_, t) => when(t),
        };
        let _ = writeln!(out, "  next poll:      {next}");
    }
    for w in &health.webhooks {
        let _ = writeln!(
            out,
            "webhook {}: {} delivered, {} failed, {} pending, {} retries, {} dropped",
            w.name, w.delivered, w.failed, w.pending, w.retries, w.dropped
        );
        let _ = writeln!(out, "  last delivery:  {}", when(w.last_delivery));
        if let Some(e) = &w.last_error {
            let _ = writeln!(out, "  last error:     {e} at {}", when(w.last_error_at));
        }
    }
    if let Some(search) = &health.search {
        let _ = writeln!(
            out,
            "search index: {} entries{}{}",
            search.indexed,
            if search.complete { "" } else { ", being built" },
            match search.backlog {
                0 => String::new(),
                n => format!(", {n} changes to take in"),
            }
        );
        if let Some(e) = &search.error {
            let _ = writeln!(out, "  last error:     {e}");
        }
    }
    // The hub's lines only once it has had something to do.
    if let Some(h) = health.hub.as_ref().filter(|h| **h != HubStatus::default()) {
        let total: usize = h.subscriptions.values().sum();
        let _ = writeln!(
            out,
            "hub: {total} subscriptions, {} delivered, {} failed, {} dropped, {} verifications pending",
            h.delivered, h.failed, h.dropped_subscriptions, h.pending_verifications
        );
        for (topic, n) in &h.subscriptions {
            let _ = writeln!(out, "  {topic}: {n}");
        }
    }
    for w in &health.websub {
        let _ = writeln!(
            out,
            "websub {}: {}{}, {} deliveries, {} rejected",
            w.source,
            w.state,
            w.pending
                .as_deref()
                .map(|p| format!(" ({p} pending)"))
                .unwrap_or_default(),
            w.deliveries,
            w.rejected
        );
        let _ = writeln!(out, "  hub:            {}", w.hub);
        let _ = writeln!(out, "  topic:          {}", w.topic);
        let _ = writeln!(out, "  lease ends:     {}", when(w.lease_end));
        let _ = writeln!(out, "  last delivery:  {}", when(w.last_delivery));
        if let Some(r) = &w.reason {
            let _ = writeln!(out, "  reason:         {r}");
        }
    }
    let _ = write!(
        out,
        "{} sources, {} entries",
        health.sources.len(),
        health.entries
    );
    if let Some(held) = &health.retention_held {
        let _ = write!(
            out,
            "\nRETENTION HELD since {}: {}. Nothing is pruned until you run `tributary prune --confirm` (with the daemon stopped; `prune --dry-run` shows what would go) or change the limits in feeds.toml.",
            when(Some(held.since)),
            held.reason
        );
    }
    if let Answered::Store { healthz } = answered {
        let _ = write!(
            out,
            "\nNo daemon is running (nothing answered at {healthz}): this is what the store holds, and nothing is polled until `tributary run` starts (or `tributary once` polls every source once)."
        );
    }
    out
}

fn relative(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (t - now).num_seconds();
    let abs = secs.unsigned_abs();
    let human = if abs < 90 {
        format!("{abs}s")
    } else if abs < 90 * 60 {
        format!("{}m", abs / 60)
    } else if abs < 36 * 3600 {
        format!("{}h", abs / 3600)
    } else {
        format!("{}d", abs / 86400)
    };
    if secs > 0 {
        format!("in {human}")
    } else {
        format!("{human} ago")
    }
}

/// `tributary prune`'s text report.
pub fn render_prune(report: &crate::store::PruneReport) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let verb = if report.dry_run {
        "would prune"
    } else {
        "pruned"
    };
    for (source, n) in &report.pruned {
        let _ = writeln!(out, "{source:<24} {verb} {n}");
    }
    for (source, n) in &report.deleted_sources {
        let verb = if report.dry_run {
            "would delete"
        } else {
            "deleted"
        };
        let _ = writeln!(
            out,
            "{source:<24} removed from the config: {verb} its {n} entries"
        );
    }
    for (source, at) in &report.removed_pending {
        let _ = writeln!(
            out,
            "{source:<24} removed from the config: entries hidden, deleted after {}",
            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
    }
    if let Some(held) = &report.held {
        let _ = writeln!(
            out,
            "HELD: {}, more than half; nothing changed. Run `tributary prune --confirm` to prune anyway, or change the limits in feeds.toml.",
            held.reason
        );
    }
    let _ = writeln!(
        out,
        "{} entries {verb}, {} left; {} tombstones ({} expired){}",
        report.pruned_total(),
        report.entries,
        report.tombstones,
        report.tombstones_expired,
        if report.dry_run {
            " (dry run: nothing changed)"
        } else {
            ""
        }
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_shows_each_webhook() {
        let now = Utc::now();
        let health = Health {
            status: "ok".into(),
            version: "0".into(),
            entries: 0,
            sources: vec![],
            retention_held: None,
            webhooks: vec![WebhookStatus {
                name: "chat".into(),
                delivered: 3,
                failed: 1,
                pending: 2,
                retries: 4,
                dropped: 0,
                last_delivery: Some(now),
                last_error: Some("HTTP 400 Bad Request (attempt 1; given up)".into()),
                last_error_at: Some(now),
            }],
            websub: vec![],
            search: None,
            hub: Some(HubStatus {
                subscriptions: [("http://feeds.test/feed.atom".to_string(), 2)].into(),
                delivered: 5,
                failed: 1,
                dropped_subscriptions: 1,
                pending_verifications: 0,
            }),
        };
        let text = render_text(&health, now, &Answered::Daemon);
        assert!(
            text.contains("hub: 2 subscriptions, 5 delivered, 1 failed, 1 dropped, 0 verifications pending\n  http://feeds.test/feed.atom: 2"),
            "{text}"
        );
        let idle = Health {
            hub: Some(HubStatus::default()),
            ..health.clone()
        };
        assert!(!render_text(&idle, now, &Answered::Daemon).contains("hub:"));
        assert!(
            text.contains("webhook chat: 3 delivered, 1 failed, 2 pending, 4 retries, 0 dropped"),
            "{text}"
        );
        assert!(text.contains("last error:     HTTP 400 Bad Request (attempt 1; given up)"));
        // A status without webhooks (an older daemon's /healthz) still reads.
        let old: Health =
            serde_json::from_str(r#"{"status":"ok","version":"0","entries":0,"sources":[]}"#)
                .expect("reads");
        assert!(old.webhooks.is_empty());
    }

    #[test]
    fn the_board_follows_the_config() {
        let board = WebhookBoard::default();
        board.keep(&["a", "b"]);
        board.update("b", |w| w.delivered += 1);
        board.keep(&["b", "c"]);
        board.update("a", |w| w.delivered += 1);
        let names: Vec<(String, u64)> = board
            .snapshot()
            .into_iter()
            .map(|w| (w.name, w.delivered))
            .collect();
        assert_eq!(names, [("b".to_string(), 1), ("c".to_string(), 0)]);
    }
}
