//! Webhooks (`[[webhook]]`): after each poll that stored new entries, those entries go to
//! every webhook that takes them, as one POST (a JSON Feed or Atom document), signed as the
//! Standard Webhooks specification says (<https://www.standardwebhooks.com/>).
//!
//! Polls never wait for a delivery: the poll's callback only hands the new entries' keys
//! to a bounded channel ([`Webhooks::poll_done`], which never blocks). One task reads the
//! entries back (one store call), renders a document per webhook and queues a delivery;
//! the queue holds at most [`QUEUE`] deliveries and [`QUEUE_BYTES`] of bodies (when full,
//! the oldest are dropped and counted), a delivery at most [`PER_DELIVERY`] entries, and at
//! most [`CONCURRENCY`] are sent at once. A failed attempt (a network
//! error, a 5xx or a 429) is tried again after [`BACKOFF`] (or after the receiver's
//! Retry-After, up to an hour, when it sends one), with the same `webhook-id`; another 4xx,
//! a redirect or a refused address is not.
//! Requests go through the fetcher's address guard, with `[fetch] timeout`, and follow no
//! redirects. Nothing is kept across a restart.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use chrono::Utc;
use hmac::{Hmac, Mac};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use tokio::sync::{Notify, Semaphore, mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, WebhookConfig, WebhookFormat};
use crate::daemon::metrics::Metrics;
use crate::fetch::{FetchError, Fetcher};
use crate::ingest::poll::PollReport;
use crate::model::{Entry, EntryKey, SourceState};
use crate::render::{self, FeedMeta, SourceInfo};
use crate::store::Store;

/// Deliveries queued at most (those being sent or waiting for a retry are not counted);
/// past it the oldest queued delivery is dropped.
pub const QUEUE: usize = 1000;
/// Bytes of queued deliveries' bodies at most; past it the oldest are dropped too.
pub const QUEUE_BYTES: usize = 64 << 20;
/// Entries in one delivery at most: a poll with more new entries (a new source's first)
/// sends several, newest first.
pub const PER_DELIVERY: usize = 100;
/// Deliveries sent at once, over all webhooks.
pub const CONCURRENCY: usize = 4;
/// Polls with new entries waiting to be read back and rendered; past it a poll's
/// deliveries are dropped (and counted) at once.
const POLLS: usize = 256;
/// The waits before the 2nd, 3rd, 4th and 5th (last) attempt.
pub const BACKOFF: [Duration; 4] = [
    Duration::from_secs(2),
    Duration::from_secs(60),
    Duration::from_secs(10 * 60),
    Duration::from_secs(60 * 60),
];
/// A receiver's Retry-After is honoured up to this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60 * 60);

/// The dispatcher's handle: cheap to clone.
#[derive(Clone)]
pub struct Webhooks {
    polls: mpsc::Sender<(String, Arc<[EntryKey]>)>,
    live: watch::Receiver<Arc<Config>>,
    metrics: Metrics,
}

/// One poll's new entries for one webhook, rendered and signed at each attempt.
struct Delivery {
    /// The webhook's name, and its URL when the delivery was made: a retry goes out only
    /// while the config still has that webhook at that URL.
    hook: String,
    url: url::Url,
    id: String,
    body: Arc<Vec<u8>>,
    content_type: &'static str,
    /// Attempts made so far.
    attempts: usize,
}

/// What the sending tasks share.
struct Shared {
    queue: Mutex<Bounded<Delivery>>,
    ready: Notify,
    places: Arc<Semaphore>,
    /// Built again at each reload, so `[fetch]` changes (`allow_networks`, `timeout`)
    /// apply to webhooks at once, as to sources.
    fetcher: Mutex<Fetcher>,
    live: watch::Receiver<Arc<Config>>,
    metrics: Metrics,
    shutdown: CancellationToken,
}

impl Webhooks {
    /// Starts the dispatcher's tasks (they end with `shutdown`).
    pub fn start(
        store: Store,
        fetcher: Fetcher,
        live: watch::Receiver<Arc<Config>>,
        metrics: Metrics,
        shutdown: CancellationToken,
    ) -> Webhooks {
        let (polls, rx) = mpsc::channel(POLLS);
        let shared = Arc::new(Shared {
            queue: Mutex::new(Bounded::new(QUEUE, QUEUE_BYTES)),
            ready: Notify::new(),
            places: Arc::new(Semaphore::new(CONCURRENCY)),
            fetcher: Mutex::new(fetcher),
            live: live.clone(),
            metrics: metrics.clone(),
            shutdown: shutdown.clone(),
        });
        keep_names(&metrics, &live.borrow());
        tokio::spawn(prepare(rx, store, shared.clone()));
        tokio::spawn(send_loop(shared));
        Webhooks {
            polls,
            live,
            metrics,
        }
    }

    /// A poll ended: its new entries (if any) go to the webhooks. Never waits.
    pub fn poll_done(&self, report: &PollReport) {
        if report.new_entries.is_empty() || self.live.borrow().webhooks.is_empty() {
            return;
        }
        let job = (report.source.clone(), report.new_entries.clone());
        if self.polls.try_send(job).is_err() {
            tracing::warn!(
                source = %report.source,
                "webhooks: too many polls waiting to be delivered; this poll's new entries are not sent"
            );
            for w in &self.live.borrow().webhooks {
                self.metrics.record_webhook(&w.name, "dropped");
                self.metrics.webhooks.update(&w.name, |s| s.dropped += 1);
            }
        }
    }
}

/// The board lists the config's webhooks, in its order.
fn keep_names(metrics: &Metrics, config: &Config) {
    let names: Vec<&str> = config.webhooks.iter().map(|w| w.name.as_str()).collect();
    metrics.webhooks.keep(&names);
}

/// Reads back each poll's new entries and queues a delivery per webhook that takes some.
async fn prepare(
    mut polls: mpsc::Receiver<(String, Arc<[EntryKey]>)>,
    store: Store,
    shared: Arc<Shared>,
) {
    let mut live = shared.live.clone();
    loop {
        // A reload is taken before the polls after it (`biased`).
        let (source, keys) = tokio::select! {
            biased;
            () = shared.shutdown.cancelled() => return,
            changed = live.changed() => {
                if changed.is_err() {
                    return;
                }
                let config = live.borrow_and_update().clone();
                keep_names(&shared.metrics, &config);
                match Fetcher::new(&config.fetch) {
                    Ok(f) => *shared.fetcher.lock().unwrap_or_else(|e| e.into_inner()) = f,
                    Err(error) => tracing::warn!(%error, "webhooks: keeping the old HTTP client"),
                }
                continue;
            }
            job = polls.recv() => match job {
                Some(job) => job,
                None => return,
            },
        };
        let config = shared.live.borrow().clone();
        if config.webhooks.is_empty() {
            continue;
        }
        let name = source.clone();
        let read = store
            .call(move |s| Ok((s.entries_by_keys(&name, &keys)?, s.source_state(&name)?)))
            .await;
        let (entries, state) = match read {
            Ok(read) => read,
            Err(error) => {
                tracing::warn!(%source, %error, "webhooks: cannot read the poll's new entries");
                continue;
            }
        };
        for hook in &config.webhooks {
            for delivery in render_for(hook, &config, &source, &entries, state.as_ref()) {
                shared.enqueue(delivery);
            }
        }
    }
}

/// The deliveries of `entries` (new in `source`) to `hook`: none if it takes none, else
/// one per [`PER_DELIVERY`] entries, newest first.
fn render_for(
    hook: &WebhookConfig,
    config: &Config,
    source: &str,
    entries: &[Entry],
    state: Option<&SourceState>,
) -> Vec<Delivery> {
    let mut taken: Vec<Entry> = entries
        .iter()
        .filter(|e| hook.takes(e, &config.feeds))
        .cloned()
        .map(Entry::for_publishing)
        .collect();
    let Some(s) = config.source(source).filter(|_| !taken.is_empty()) else {
        return Vec::new();
    };
    taken.sort_by_key(|e| std::cmp::Reverse(e.sort_time()));
    let title = s
        .title
        .clone()
        .or_else(|| state.and_then(|st| st.feed_title.clone()))
        .unwrap_or_else(|| s.name.clone());
    let base = &config.server.base_url;
    let ext = match hook.format {
        WebhookFormat::Json => "json",
        WebhookFormat::Atom => "atom",
    };
    let feed_url = format!("{base}/sources/{source}.{ext}");
    let meta = FeedMeta {
        title: format!("{}: new in {title}", config.publish.title),
        description: config.publish.description.clone(),
        author: config.publish.author.clone(),
        self_url: feed_url.clone(),
        id: feed_url,
        home_url: format!("{base}/"),
        empty_updated: Utc::now(),
        next_url: None,
        // A webhook's document is no WebSub topic.
        hubs: Vec::new(),
    };
    let infos = HashMap::from([(
        s.name.clone(),
        SourceInfo {
            title,
            url: render::source_feed_url(base, s),
            link: state.and_then(|st| st.feed_link.clone()),
        },
    )]);
    taken
        .chunks(PER_DELIVERY)
        .map(|chunk| {
            let (body, content_type) = match hook.format {
                WebhookFormat::Json => {
                    (render::json(&meta, chunk, &infos), "application/feed+json")
                }
                WebhookFormat::Atom => (
                    render::atom(&meta, chunk, &infos),
                    "application/atom+xml; charset=utf-8",
                ),
            };
            Delivery {
                hook: hook.name.clone(),
                url: hook.url.clone(),
                id: format!("msg_{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..)),
                body: Arc::new(body.into_bytes()),
                content_type,
                attempts: 0,
            }
        })
        .collect()
}

impl Shared {
    /// Queues a new delivery (pending until it ends); a full queue drops its oldest.
    fn enqueue(&self, delivery: Delivery) {
        let hook = delivery.hook.clone();
        self.metrics.webhooks.update(&hook, |s| s.pending += 1);
        self.requeue(delivery);
    }

    /// Queues a delivery already counted as pending.
    fn requeue(&self, delivery: Delivery) {
        let dropped = {
            let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            let bytes = delivery.body.len();
            queue.push(delivery, bytes)
        };
        for old in dropped {
            tracing::warn!(webhook = %old.hook, id = %old.id, "webhooks: queue full; the oldest delivery is dropped");
            self.metrics.record_webhook(&old.hook, "dropped");
            self.metrics.webhooks.update(&old.hook, |s| {
                s.dropped += 1;
                s.pending = s.pending.saturating_sub(1);
            });
        }
        self.ready.notify_one();
    }

    fn pop(&self) -> Option<Delivery> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).pop()
    }
}

/// A FIFO queue of at most `cap` items and `max_bytes` bytes (as each item's weight was
/// given) that drops its oldest to take a new one; the newest always stays.
struct Bounded<T> {
    items: VecDeque<(T, usize)>,
    bytes: usize,
    cap: usize,
    max_bytes: usize,
}

impl<T> Bounded<T> {
    fn new(cap: usize, max_bytes: usize) -> Bounded<T> {
        Bounded {
            items: VecDeque::new(),
            bytes: 0,
            cap: cap.max(1),
            max_bytes,
        }
    }

    /// Adds `item` (of `bytes`) at the end; returns the oldest items that had to go.
    fn push(&mut self, item: T, bytes: usize) -> Vec<T> {
        let mut dropped = Vec::new();
        while !self.items.is_empty()
            && (self.items.len() >= self.cap || self.bytes + bytes > self.max_bytes)
        {
            dropped.extend(self.pop());
        }
        self.bytes += bytes;
        self.items.push_back((item, bytes));
        dropped
    }

    fn pop(&mut self) -> Option<T> {
        let (item, bytes) = self.items.pop_front()?;
        self.bytes -= bytes;
        Some(item)
    }
}

/// Sends queued deliveries, [`CONCURRENCY`] at a time.
async fn send_loop(shared: Arc<Shared>) {
    loop {
        let place = tokio::select! {
            () = shared.shutdown.cancelled() => return,
            p = shared.places.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let delivery = loop {
            if let Some(d) = shared.pop() {
                break d;
            }
            tokio::select! {
                () = shared.shutdown.cancelled() => return,
                () = shared.ready.notified() => {}
            }
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let cancel = shared.shutdown.clone();
            tokio::select! {
                () = cancel.cancelled() => {}
                () = attempt(&shared, delivery) => {}
            }
            drop(place);
        });
    }
}

/// One attempt of `d`: delivered, failed for good, or queued again after a wait.
async fn attempt(shared: &Arc<Shared>, mut d: Delivery) {
    let hook = shared
        .live
        .borrow()
        .webhooks
        .iter()
        .find(|w| w.name == d.hook && w.url == d.url)
        .cloned();
    let Some(hook) = hook else {
        // Removed (or moved) by a reload: not sent.
        tracing::info!(webhook = %d.hook, id = %d.id, "webhooks: the webhook is no longer configured; delivery dropped");
        shared
            .metrics
            .webhooks
            .update(&d.hook, |s| s.pending = s.pending.saturating_sub(1));
        return;
    };
    d.attempts += 1;
    let timestamp = Utc::now().timestamp();
    let result = match headers(&hook, &d, timestamp) {
        Ok(headers) => {
            let fetcher = shared
                .fetcher
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            fetcher.post(&hook.url, headers, d.body.to_vec()).await
        }
        Err(e) => Err(e),
    };
    let error = match result {
        Ok(_) => {
            tracing::info!(webhook = %d.hook, id = %d.id, attempts = d.attempts, "webhook delivered");
            shared.metrics.record_webhook(&d.hook, "delivered");
            shared.metrics.webhooks.update(&d.hook, |s| {
                s.delivered += 1;
                s.pending = s.pending.saturating_sub(1);
                s.last_delivery = Some(Utc::now());
            });
            return;
        }
        Err(e) => e,
    };
    // The URL may carry a token: messages name the webhook, not its URL.
    let message = error
        .to_string()
        .replace(hook.url.as_str(), "[webhook url]");
    let wait = retry_wait(&error, d.attempts);
    shared.metrics.webhooks.update(&d.hook, |s| {
        s.last_error = Some(match wait {
            Some(w) => format!(
                "{message} (attempt {}; retried in {})",
                d.attempts,
                humantime::format_duration(w)
            ),
            None => format!("{message} (attempt {}; given up)", d.attempts),
        });
        s.last_error_at = Some(Utc::now());
        if wait.is_some() {
            s.retries += 1;
        } else {
            s.failed += 1;
            s.pending = s.pending.saturating_sub(1);
        }
    });
    let Some(wait) = wait else {
        tracing::warn!(webhook = %d.hook, id = %d.id, attempts = d.attempts, error = %message, "webhook delivery failed; given up");
        shared.metrics.record_webhook(&d.hook, "failed");
        return;
    };
    tracing::warn!(webhook = %d.hook, id = %d.id, attempts = d.attempts, error = %message, retry_in = ?wait, "webhook delivery failed; retrying");
    shared.metrics.record_webhook(&d.hook, "retry");
    // The wait holds no sending place.
    let shared = shared.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = shared.shutdown.cancelled() => {}
            () = tokio::time::sleep(wait) => shared.requeue(d),
        }
    });
}

/// How long to wait before attempt `attempts + 1`, or `None` to give up: network errors,
/// timeouts, 5xx and 429 are retried (429 and 503 after Retry-After when it is longer);
/// a refused address, a redirect and other 4xx are not. The WebSub hub's deliveries
/// follow the same rule.
pub(crate) fn retry_wait(error: &FetchError, attempts: usize) -> Option<Duration> {
    let backoff = *BACKOFF.get(attempts.checked_sub(1)?)?;
    match error {
        FetchError::Status {
            status,
            retry_after,
            ..
        } if *status == 429 || (500..600).contains(status) => {
            Some(retry_after.map_or(backoff, |r| r.min(MAX_RETRY_AFTER)))
        }
        FetchError::Status { .. } | FetchError::Refused(_) | FetchError::Client(_) => None,
        _ => Some(backoff),
    }
}

/// The Standard Webhooks headers for attempt at `timestamp` (Unix seconds).
fn headers(hook: &WebhookConfig, d: &Delivery, timestamp: i64) -> Result<HeaderMap, FetchError> {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&hook.key)
        .map_err(|e| FetchError::Refused(format!("bad webhook key: {e}")))?;
    mac.update(format!("{}.{timestamp}.", d.id).as_bytes());
    mac.update(&d.body);
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let value = |s: String| {
        HeaderValue::from_str(&s)
            .map_err(|e| FetchError::Refused(format!("bad webhook header: {e}")))
    };
    let mut headers = HeaderMap::new();
    headers.insert("webhook-id", value(d.id.clone())?);
    headers.insert("webhook-timestamp", value(timestamp.to_string())?);
    headers.insert("webhook-signature", value(format!("v1,{signature}"))?);
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(d.content_type));
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_drops_its_oldest() {
        let mut q = Bounded::new(3, 100);
        assert!(q.push(1, 10).is_empty());
        assert!(q.push(2, 10).is_empty());
        assert!(q.push(3, 10).is_empty());
        assert_eq!(q.push(4, 10), [1]);
        assert_eq!(q.push(5, 10), [2]);
        assert_eq!(q.items.len(), 3);
        assert_eq!(q.pop(), Some(3));
        assert!(q.push(6, 10).is_empty());
        assert_eq!(
            std::iter::from_fn(|| q.pop()).collect::<Vec<_>>(),
            [4, 5, 6]
        );
        // By bytes: a big one pushes out as many as it needs, and stays even alone.
        assert!(q.push(7, 30).is_empty());
        assert!(q.push(8, 30).is_empty());
        assert_eq!(q.push(9, 50), [7]);
        assert_eq!(q.bytes, 80);
        assert_eq!(q.push(11, 80), [8, 9]);
        assert_eq!(q.push(12, 90), [11]);
        assert_eq!(q.push(10, 500), [12]);
        assert_eq!(q.pop(), Some(10));
        assert_eq!(q.bytes, 0);
    }

    #[test]
    fn signatures_are_standard_webhooks_ones() {
        // The Standard Webhooks specification's example: key, id, timestamp and payload
        // give this signature.
        let key = base64::engine::general_purpose::STANDARD
            .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .expect("base64");
        let hook = WebhookConfig {
            name: "w".into(),
            url: url::Url::parse("https://example.com/").expect("url"),
            key,
            sources: None,
            feeds: vec![],
            format: WebhookFormat::Json,
        };
        let d = Delivery {
            hook: "w".into(),
            url: hook.url.clone(),
            id: "msg_p5jXN8AQM9LWM0D4loKWxJek".into(),
            body: Arc::new(br#"{"test": 2432232314}"#.to_vec()),
            content_type: "application/json",
            attempts: 0,
        };
        let h = headers(&hook, &d, 1_614_265_330).expect("headers");
        assert_eq!(
            h["webhook-signature"],
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        assert_eq!(h["webhook-id"], "msg_p5jXN8AQM9LWM0D4loKWxJek");
        assert_eq!(h["webhook-timestamp"], "1614265330");
    }

    #[test]
    fn retries_follow_the_kind_of_failure() {
        let status = |status, retry_after| FetchError::Status {
            status,
            reason: None,
            retry_after,
        };
        assert_eq!(retry_wait(&status(500, None), 1), Some(BACKOFF[0]));
        assert_eq!(retry_wait(&status(503, None), 4), Some(BACKOFF[3]));
        assert_eq!(
            retry_wait(&status(503, None), 5),
            None,
            "5 attempts at most"
        );
        assert_eq!(
            retry_wait(&status(429, Some(Duration::from_secs(7))), 1),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            retry_wait(&status(429, Some(Duration::from_secs(86_400))), 1),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(retry_wait(&status(400, None), 1), None);
        assert_eq!(retry_wait(&status(404, None), 1), None);
        assert_eq!(retry_wait(&FetchError::Refused("x".into()), 1), None);
        assert_eq!(
            retry_wait(&FetchError::Timeout(Duration::from_secs(1)), 2),
            Some(BACKOFF[1])
        );
    }
}
