//! Operational metrics in Prometheus text format, for `/metrics`.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::ingest::poll::{PollOutcome, PollReport};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PollLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    format: &'static str,
    status: u16,
}

/// Every metric, cheap to clone (the registry holds the same counters).
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    polls: Family<PollLabels, Counter>,
    entries_new: Counter,
    entries_updated: Counter,
    entries_deduplicated: Counter,
    fetch_seconds: Histogram,
    requests: Family<RequestLabels, Counter>,
    entries_stored: Gauge,
    entries_read: Gauge,
    entries_pruned: Counter,
    retention_held: Gauge,
    reloads: Family<PollLabels, Counter>,
    entries_filtered: Counter,
    full_text: Family<PollLabels, Counter>,
    connections_open: Gauge,
    connections_closed: Family<ReasonLabels, Counter>,
    render_cache_bytes: Gauge,
    render_cache_documents: Gauge,
    renders: Counter,
    compressions: Family<EncodingLabels, Counter>,
    webhook_deliveries: Family<WebhookLabels, Counter>,
    /// Each webhook's deliveries, for `/healthz` and `tributary status`.
    pub webhooks: crate::daemon::status::WebhookBoard,
    websub_deliveries: Family<WebsubLabels, Counter>,
    websub_subscription: Family<WebsubSubLabels, Gauge>,
    websub_lease_end: Family<WebsubSourceLabels, Gauge>,
    websub_last_delivery: Family<WebsubSourceLabels, Gauge>,
    websub_delivered: Family<WebsubSourceLabels, Gauge>,
    websub_rejected: Family<WebsubSourceLabels, Gauge>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebsubLabels {
    source: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebsubSubLabels {
    source: String,
    hub: String,
    topic: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebsubSourceLabels {
    source: String,
    hub: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookLabels {
    webhook: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EncodingLabels {
    encoding: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("tributary");
        let polls = Family::<PollLabels, Counter>::default();
        let entries_new = Counter::default();
        let entries_updated = Counter::default();
        let entries_deduplicated = Counter::default();
        let fetch_seconds = Histogram::new(exponential_buckets(0.01, 2.0, 14));
        let requests = Family::<RequestLabels, Counter>::default();
        let entries_stored = Gauge::default();
        let entries_read = Gauge::default();
        let entries_pruned = Counter::default();
        let retention_held = Gauge::default();
        registry.register(
            "retention_held_entries",
            "Entries a held retention pass would remove (0: none held); it waits for `tributary prune --confirm`",
            retention_held.clone(),
        );
        let reloads = Family::<PollLabels, Counter>::default();
        let entries_filtered = Counter::default();
        let full_text = Family::<PollLabels, Counter>::default();
        let connections_open = Gauge::default();
        let connections_closed = Family::<ReasonLabels, Counter>::default();
        let render_cache_bytes = Gauge::default();
        let render_cache_documents = Gauge::default();
        let renders = Counter::default();
        let compressions = Family::<EncodingLabels, Counter>::default();
        let webhook_deliveries = Family::<WebhookLabels, Counter>::default();
        let websub_deliveries = Family::<WebsubLabels, Counter>::default();
        registry.register(
            "websub_deliveries",
            "WebSub deliveries received by source and result (accepted, thin, rejected, dropped) since the start",
            websub_deliveries.clone(),
        );
        let websub_subscription = Family::<WebsubSubLabels, Gauge>::default();
        registry.register(
            "websub_subscription",
            "WebSub subscriptions of ours (1 each), by source, hub, topic and state (pending, active, denied, lapsed, off)",
            websub_subscription.clone(),
        );
        let websub_lease_end = Family::<WebsubSourceLabels, Gauge>::default();
        registry.register(
            "websub_lease_end_seconds",
            "When each WebSub subscription's lease ends (Unix time; 0: none)",
            websub_lease_end.clone(),
        );
        let websub_last_delivery = Family::<WebsubSourceLabels, Gauge>::default();
        registry.register(
            "websub_last_delivery_seconds",
            "When each WebSub subscription last had a valid delivery (Unix time; 0: never)",
            websub_last_delivery.clone(),
        );
        let websub_delivered = Family::<WebsubSourceLabels, Gauge>::default();
        registry.register(
            "websub_subscription_deliveries",
            "Valid deliveries each WebSub subscription has had (kept across restarts)",
            websub_delivered.clone(),
        );
        let websub_rejected = Family::<WebsubSourceLabels, Gauge>::default();
        registry.register(
            "websub_subscription_rejected",
            "Deliveries each WebSub subscription ignored: no or a wrong signature, too big (kept across restarts)",
            websub_rejected.clone(),
        );
        registry.register(
            "webhook_deliveries",
            "Webhook deliveries by webhook and result (delivered, failed, dropped; retry counts attempts that are retried)",
            webhook_deliveries.clone(),
        );
        registry.register(
            "http_connections_open",
            "Client connections open",
            connections_open.clone(),
        );
        registry.register(
            "http_connections_closed",
            "Client connections closed by the server, by reason (evicted, per_address_limit, header_timeout, idle_timeout, stalled)",
            connections_closed.clone(),
        );
        registry.register(
            "render_cache_bytes",
            "Bytes of rendered documents kept in the render cache",
            render_cache_bytes.clone(),
        );
        registry.register(
            "render_cache_documents",
            "Rendered documents kept in the render cache",
            render_cache_documents.clone(),
        );
        registry.register(
            "renders",
            "Feed documents rendered (each cache miss shared by concurrent requests counts once)",
            renders.clone(),
        );
        registry.register(
            "render_compressions",
            "Rendered documents compressed, by content coding (each kept in the render cache)",
            compressions.clone(),
        );
        registry.register(
            "entries_filtered",
            "Entries kept out by sources' include/exclude rules or max_new_per_poll",
            entries_filtered.clone(),
        );
        registry.register(
            "full_text_pages",
            "Article pages for full text, by result (fetched, failed, refused)",
            full_text.clone(),
        );
        registry.register(
            "entries_pruned",
            "Entries removed by retention (count, age and store-wide limits)",
            entries_pruned.clone(),
        );
        registry.register(
            "config_reloads",
            "Reloads of feeds.toml, by result (ok, failed)",
            reloads.clone(),
        );
        registry.register(
            "polls",
            "Polls of sources, by result (stored, not_modified, failed)",
            polls.clone(),
        );
        registry.register(
            "entries_new",
            "Entries stored for the first time",
            entries_new.clone(),
        );
        registry.register(
            "entries_updated",
            "Stored entries whose content changed",
            entries_updated.clone(),
        );
        registry.register(
            "entries_deduplicated",
            "New entries whose article another source brought first",
            entries_deduplicated.clone(),
        );
        registry.register(
            "poll_duration_seconds",
            "Time to fetch, parse and store one poll",
            fetch_seconds.clone(),
        );
        registry.register(
            "feed_requests",
            "Published feed requests, by format and status (200, 304)",
            requests.clone(),
        );
        registry.register(
            "entries_stored",
            "Entries stored for the configured sources",
            entries_stored.clone(),
        );
        registry.register(
            "store_entries_read",
            "Entries read from the store to render feeds and pages since start (a feed is read from an index, so this grows with the entries published, not with the store)",
            entries_read.clone(),
        );
        Metrics {
            registry: Arc::new(registry),
            polls,
            entries_new,
            entries_updated,
            entries_deduplicated,
            fetch_seconds,
            requests,
            entries_stored,
            entries_read,
            entries_pruned,
            retention_held,
            reloads,
            entries_filtered,
            full_text,
            connections_open,
            connections_closed,
            render_cache_bytes,
            render_cache_documents,
            renders,
            compressions,
            webhook_deliveries,
            webhooks: crate::daemon::status::WebhookBoard::default(),
            websub_deliveries,
            websub_subscription,
            websub_lease_end,
            websub_last_delivery,
            websub_delivered,
            websub_rejected,
        }
    }

    /// One WebSub delivery's `result` since the start: "accepted" (a document stored),
    /// "thin" (a poll asked for), "rejected" (bad signature, too big), "dropped" (too many
    /// being stored).
    pub fn record_websub(&self, source: &str, result: &'static str) {
        self.websub_deliveries
            .get_or_create(&WebsubLabels {
                source: source.to_string(),
                result,
            })
            .inc();
    }

    /// The WebSub subscriptions' gauges, set from their stored state (at each scrape).
    pub fn set_websub(&self, subs: &[crate::daemon::status::WebsubStatus]) {
        self.websub_subscription.clear();
        self.websub_lease_end.clear();
        self.websub_last_delivery.clear();
        self.websub_delivered.clear();
        self.websub_rejected.clear();
        for s in subs {
            self.websub_subscription
                .get_or_create(&WebsubSubLabels {
                    source: s.source.clone(),
                    hub: s.hub.clone(),
                    topic: s.topic.clone(),
                    state: s.state.clone(),
                })
                .set(1);
            let labels = WebsubSourceLabels {
                source: s.source.clone(),
                hub: s.hub.clone(),
            };
            let secs = |t: Option<chrono::DateTime<chrono::Utc>>| t.map_or(0, |t| t.timestamp());
            self.websub_lease_end
                .get_or_create(&labels)
                .set(secs(s.lease_end));
            self.websub_last_delivery
                .get_or_create(&labels)
                .set(secs(s.last_delivery));
            let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
            self.websub_delivered
                .get_or_create(&labels)
                .set(n(s.deliveries));
            self.websub_rejected
                .get_or_create(&labels)
                .set(n(s.rejected));
        }
    }

    /// One webhook delivery's `result`: "delivered", "failed", "dropped" or "retry".
    pub fn record_webhook(&self, webhook: &str, result: &'static str) {
        self.webhook_deliveries
            .get_or_create(&WebhookLabels {
                webhook: webhook.to_string(),
                result,
            })
            .inc();
    }

    pub fn record_render(&self) {
        self.renders.inc();
    }

    pub fn record_compression(&self, encoding: &'static str) {
        self.compressions
            .get_or_create(&EncodingLabels { encoding })
            .inc();
    }

    pub fn set_connections_open(&self, n: usize) {
        self.connections_open
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub fn record_connection_closed(&self, reason: &'static str) {
        self.connections_closed
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    pub fn set_render_cache(&self, bytes: u64, documents: usize) {
        self.render_cache_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        self.render_cache_documents
            .set(i64::try_from(documents).unwrap_or(i64::MAX));
    }

    pub fn record_poll(&self, report: &PollReport) {
        let result = match &report.outcome {
            PollOutcome::Stored { counts, .. } => {
                self.entries_new.inc_by(counts.new as u64);
                self.entries_updated.inc_by(counts.updated as u64);
                self.entries_deduplicated.inc_by(counts.duplicates as u64);
                self.entries_filtered
                    .inc_by((counts.filtered + counts.capped) as u64);
                "stored"
            }
            PollOutcome::NotModified { .. } => "not_modified",
            PollOutcome::Failed { .. } => "failed",
            PollOutcome::Cancelled => return,
        };
        self.polls.get_or_create(&PollLabels { result }).inc();
        if let Some(f) = &report.full_text {
            for (result, n) in [
                ("fetched", f.fetched),
                ("failed", f.failed),
                ("refused", f.refused),
            ] {
                if n > 0 {
                    self.full_text
                        .get_or_create(&PollLabels { result })
                        .inc_by(n as u64);
                }
            }
        }
        self.fetch_seconds.observe(report.duration.as_secs_f64());
    }

    pub fn record_prune(&self, report: &crate::store::PruneReport) {
        self.entries_pruned.inc_by(report.pruned_total() as u64);
        let held = report.held.as_ref().map_or(0, |h| h.would_prune);
        self.retention_held
            .set(i64::try_from(held).unwrap_or(i64::MAX));
    }

    pub fn record_reload(&self, ok: bool) {
        let result = if ok { "ok" } else { "failed" };
        self.reloads.get_or_create(&PollLabels { result }).inc();
    }

    pub fn record_request(&self, format: &'static str, status: u16) {
        self.requests
            .get_or_create(&RequestLabels { format, status })
            .inc();
    }

    /// The text exposition, with the stored-entries gauge set to `entries_stored` and the
    /// entries-read gauge to `entries_read` (both read from the store).
    pub fn render(&self, entries_stored: u64, entries_read: u64) -> String {
        self.entries_stored
            .set(i64::try_from(entries_stored).unwrap_or(i64::MAX));
        self.entries_read
            .set(i64::try_from(entries_read).unwrap_or(i64::MAX));
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
