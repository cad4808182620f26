//! The WebSub subscriber (W3C WebSub, January 2018: §5.1 subscribing, §5.3 intent
//! verification, §7 content distribution). Discovery (§4) is `feed/websub.rs`'s, run by
//! each poll (`PollReport::websub`).
//!
//! - After a poll that found a hub (and the source takes part: `[server] base_url` written,
//!   `[websub] subscribe`, the source's `websub`), one task subscribes to the first hub with
//!   a callback `{base_url}/websub/callback/{token}` (a fresh random token per
//!   subscription), a random `hub.secret` and `[websub] lease`. A secret goes only to an
//!   https hub, or a plain-http one on loopback or in `[fetch] allow_networks`; any other
//!   plain-http hub is not subscribed to at all (deliveries without a signature could not
//!   be trusted): the subscription is `off` with that reason.
//! - Hub requests go through the fetcher's address guard, within `[fetch] timeout`, at
//!   most [`HUB_CONCURRENCY`] at once from as many sender tasks, at most [`HUB_QUEUE`]
//!   waiting (the rest stay marked unsent and the tick queues them again): a slow hub
//!   never delays polls or the server. A source has at most one current subscription and
//!   one being unsubscribed, moves to another hub or topic at most once per
//!   [`SWITCH_EVERY`], and at most [`PER_SOURCE_RECORDS`] × sources subscriptions are kept,
//!   [`MAX_PER_HUB_HOST`] to one hub host.
//! - The hub's verification (GET on the callback) is answered only for the request we
//!   made and are waiting on (mode and topic must match); a denial is recorded with its
//!   reason and the source goes back to its own interval.
//! - A delivery (POST) is taken only for a subscription that is active, not being
//!   unsubscribed and still wanted by the running config (else 410). It must be signed
//!   (`X-Hub-Signature`, sha1/256/384/512, HMAC with the subscription's secret, compared in
//!   constant time); one unsigned or wrongly signed, or whose document names another feed
//!   as its self, is answered 202 and ignored (counted as rejected). A fat ping's document
//!   is stored as a poll's page (`Poller::push`), at most [`PER_SOURCE`] per source and
//!   [`IN_FLIGHT`] in all at once (the rest are answered 503 with `Retry-After` and
//!   counted); an empty one asks the supervisor to poll the source, at most once per
//!   [`POLL_GAP`] (pings, denials and lapses in between fold into one poll at its end).
//! - While a lease runs the source is polled every `[websub] safety_poll`
//!   (`ingest/push.rs`); renewals go out at [`RENEW_AT`] of the lease; a lease that ends
//!   unrenewed lapses, and the source is polled at once and at its own interval again.
//! - A reload that removes a source, turns it (or WebSub) off, or changes `base_url`
//!   unsubscribes; a changed URL, hub or topic is unsubscribed when the next poll finds
//!   the new one. Subscriptions are kept in the store, so a restart carries on with them
//!   (and sends pending unsubscribes again).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use url::Url;

use crate::config::Config;
use crate::daemon::supervise::Control;
use crate::feed::websub::Discovery;
use crate::fetch::{Body, Fetcher, Validators};
use crate::ingest::poll::{PollReport, Poller};
use crate::ingest::push::Push;
use crate::ingest::scheduler::OnPoll;
use crate::ingest::timing::Bounds;
use crate::model::{Subscription, SubscriptionState};
use crate::store::Store;

/// Hub requests (subscribe, unsubscribe) in flight at most.
pub const HUB_CONCURRENCY: usize = 4;
/// Hub requests waiting for one of those places at most; past it a request stays marked
/// unsent and the lease clock sends it again later.
pub const HUB_QUEUE: usize = 64;
/// Subscriptions to one hub host at most.
pub const MAX_PER_HUB_HOST: usize = 1000;
/// Subscription records kept at most, as a multiple of the configured sources (a source
/// has at most one current subscription and one being unsubscribed).
pub const PER_SOURCE_RECORDS: usize = 2;
/// A source moves to another hub or topic at most this often; until then the current
/// subscription is kept.
pub const SWITCH_EVERY: Duration = Duration::from_secs(3600);
/// Polls asked for by thin pings, denials and lapses are at least this far apart per
/// source; what comes in between is folded into one poll at the end of the gap.
pub const POLL_GAP: Duration = Duration::from_secs(60);
/// `Retry-After` (seconds) on a fat ping refused because too many are being stored.
pub const BUSY_RETRY_AFTER: u64 = 30;
/// Delivered documents being stored (or waiting to be) per source at most...
pub const PER_SOURCE: usize = 3;
/// ...and in all.
pub const IN_FLIGHT: usize = 32;
/// A lease is renewed once this share of it has run.
pub const RENEW_AT: f64 = 0.85;
/// How long a request waits for the hub's verification before it is given up.
pub const VERIFY_WITHIN: Duration = Duration::from_secs(24 * 3600);
/// A denied, failed or lapsed subscription is tried again this long after its last
/// request (at the next poll after).
pub const RETRY_DENIED: Duration = Duration::from_secs(24 * 3600);
/// How often leases and renewals are looked at.
const TICK: Duration = Duration::from_millis(500);
/// Polls' discoveries waiting for the subscriber at most (past it they are dropped: the
/// next poll finds them again).
const DISCOVERIES: usize = 256;

/// The subscriber's handle: cheap to clone.
#[derive(Clone)]
pub struct Websub {
    discoveries: Discoveries,
    shared: Arc<Shared>,
}

/// Where polls hand their discoveries (see [`Websub::discoveries`]); it holds nothing
/// else of the subscriber's, so the poll callback can keep it without a cycle.
#[derive(Clone)]
pub struct Discoveries {
    tx: mpsc::Sender<(String, Discovery)>,
    live: watch::Receiver<Arc<Config>>,
}

struct Shared {
    subs: Mutex<HashMap<String, Subscription>>,
    store: Store,
    push: Push,
    live: watch::Receiver<Arc<Config>>,
    fetcher: Mutex<Fetcher>,
    /// Hub requests for the [`HUB_CONCURRENCY`] senders (bounded: [`HUB_QUEUE`]).
    hub_queue: mpsc::Sender<HubJob>,
    /// Subscriptions whose pending request is not queued (the queue was full, or an
    /// unsubscribe stored by an earlier run): the tick queues them again.
    unsent: Mutex<HashSet<String>>,
    /// Subscriptions whose counters changed since they were last saved (saved by the tick).
    dirty: Mutex<HashSet<String>>,
    /// Per source: when the subscriber last asked for a poll, and whether one is owed.
    polls: Mutex<HashMap<String, PollGate>>,
    /// Per source: when it last moved to another hub or topic, and whether a move held
    /// back since was logged.
    switched: Mutex<HashMap<String, (DateTime<Utc>, bool)>>,
    /// Deliveries being stored, per source, and all.
    storing: Mutex<HashMap<String, usize>>,
    in_flight: Arc<Semaphore>,
    control: mpsc::Sender<Control>,
    /// The poller and report callback for fat pings (set once the daemon has them).
    ingest: OnceLock<(Poller, OnPoll)>,
    metrics: crate::daemon::metrics::Metrics,
    shutdown: CancellationToken,
    /// The daemon's tasks: a delivery's store write is waited for at shutdown.
    tracker: TaskTracker,
}

/// What the subscriber is started with.
pub struct Parts {
    pub store: Store,
    pub fetcher: Fetcher,
    pub push: Push,
    pub live: watch::Receiver<Arc<Config>>,
    /// The supervisor's channel (thin pings and lapses ask for polls on it).
    pub control: mpsc::Sender<Control>,
    pub metrics: crate::daemon::metrics::Metrics,
    pub shutdown: CancellationToken,
    /// The daemon's tasks: a delivery's store write is waited for at shutdown.
    pub tracker: TaskTracker,
}

/// What a delivery's answer should be.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivered {
    /// Taken (stored, or a poll asked for): 202.
    Accepted,
    /// Ignored: no or a wrong signature, or a document of another topic (202, as the
    /// Recommendation says, but not used).
    Rejected,
    /// No such subscription, or one not taking deliveries (not verified, lease ended,
    /// denied, being unsubscribed, no longer configured): 410 Gone tells the hub to stop.
    Unknown,
    /// Too many documents being stored: 503 with `Retry-After` ([`BUSY_RETRY_AFTER`]
    /// seconds), so the hub delivers it again.
    Busy,
}

/// A hub request waiting for a sender.
type HubJob = (Subscription, &'static str, Duration);

/// The subscriber's polls of one source.
#[derive(Default)]
struct PollGate {
    last: Option<tokio::time::Instant>,
    owed: bool,
    folded: u64,
}

impl Websub {
    /// Starts the subscriber's task (it ends with `shutdown`). Subscriptions stored by an
    /// earlier run are taken up again.
    pub async fn start(parts: Parts) -> Websub {
        let Parts {
            store,
            fetcher,
            push,
            live,
            control,
            metrics,
            shutdown,
            tracker,
        } = parts;
        let stored = store
            .call(|s| s.websub_subscriptions())
            .await
            .unwrap_or_else(|error| {
                tracing::error!(%error, "websub: cannot read the stored subscriptions");
                Vec::new()
            });
        let now = Utc::now();
        push.set_safety_poll(live.borrow().websub.safety_poll);
        for s in &stored {
            if s.state == SubscriptionState::Active && s.pending.as_deref() != Some("unsubscribe") {
                push.set(&s.source, s.lease_end.filter(|end| *end > now));
            }
        }
        let (discoveries, rx) = mpsc::channel(DISCOVERIES);
        let (hub_queue, jobs) = mpsc::channel(HUB_QUEUE);
        // Unsubscribes an earlier run asked for and may never have sent go out again.
        let unsent = stored
            .iter()
            .filter(|s| s.pending.as_deref() == Some("unsubscribe"))
            .map(|s| s.token.clone())
            .collect();
        let shared = Arc::new(Shared {
            subs: Mutex::new(stored.into_iter().map(|s| (s.token.clone(), s)).collect()),
            store,
            push,
            live,
            fetcher: Mutex::new(fetcher),
            hub_queue,
            unsent: Mutex::new(unsent),
            dirty: Mutex::default(),
            polls: Mutex::default(),
            switched: Mutex::default(),
            storing: Mutex::default(),
            in_flight: Arc::new(Semaphore::new(IN_FLIGHT)),
            control,
            ingest: OnceLock::new(),
            metrics,
            shutdown,
            tracker,
        });
        let discoveries = Discoveries {
            tx: discoveries,
            live: shared.live.clone(),
        };
        let jobs = Arc::new(tokio::sync::Mutex::new(jobs));
        for _ in 0..HUB_CONCURRENCY {
            tokio::spawn(sender(jobs.clone(), shared.clone()));
        }
        tokio::spawn(run(rx, shared.clone()));
        Websub {
            discoveries,
            shared,
        }
    }

    /// The handle polls report to.
    pub fn discoveries(&self) -> Discoveries {
        self.discoveries.clone()
    }

    /// Fat pings are stored with `poller` and reported to `on_poll`.
    pub fn attach(&self, poller: Poller, on_poll: OnPoll) {
        let _ = self.shared.ingest.set((poller, on_poll));
    }
}

impl Discoveries {
    /// A poll ended: what it discovered goes to the subscriber. Never waits.
    pub fn poll_done(&self, report: &PollReport) {
        let Some(found) = &report.websub else {
            return;
        };
        if !enabled(&self.live.borrow()) {
            return;
        }
        if self
            .tx
            .try_send((report.source.clone(), found.clone()))
            .is_err()
        {
            tracing::debug!(source = %report.source, "websub: too many discoveries waiting; the next poll finds it again");
        }
    }
}

impl Websub {
    /// The hub's verification of intent (GET on the callback): the challenge to echo, or
    /// `None` (404) for a request we did not make or no longer wait on.
    pub async fn verify(&self, token: &str, query: &HashMap<String, String>) -> Option<String> {
        let shared = &self.shared;
        let mode = query.get("hub.mode")?.as_str();
        let topic = query.get("hub.topic")?;
        let now = Utc::now();
        let (changed, removed, poll) = {
            let mut subs = shared.lock_subs();
            let sub = subs.get_mut(token).filter(|s| &s.topic == topic)?;
            match mode {
                "subscribe" | "unsubscribe" if sub.pending.as_deref() == Some(mode) => {}
                "denied" => {}
                _ => return None,
            }
            match mode {
                "subscribe" => {
                    let config = shared.live.borrow().clone();
                    let lease = query
                        .get("hub.lease_seconds")
                        .and_then(|l| l.trim().parse::<u64>().ok())
                        .map_or(config.websub.lease, Duration::from_secs)
                        .min(crate::config::MAX_DURATION);
                    let end = now + chrono::Duration::from_std(lease).unwrap_or_default();
                    sub.state = SubscriptionState::Active;
                    sub.pending = None;
                    sub.reason = None;
                    sub.lease_end = Some(end);
                    sub.requested = Some(now);
                    shared.push.set(&sub.source, Some(end));
                    tracing::info!(source = %sub.source, hub = %sub.hub, lease_s = lease.as_secs(), "websub: subscription verified");
                    (Some(sub.clone()), None, None)
                }
                "unsubscribe" => {
                    tracing::info!(source = %sub.source, hub = %sub.hub, "websub: unsubscription verified");
                    let gone = subs.remove(token)?;
                    if !subs.values().any(|s| s.source == gone.source) {
                        shared.push.set(&gone.source, None);
                    }
                    (None, Some(gone.token), None)
                }
                _ if sub.pending.as_deref() == Some("unsubscribe")
                    || !wanted(&shared.live.borrow(), sub) =>
                {
                    // Denied while being unsubscribed, or no longer configured: forgotten.
                    tracing::info!(source = %sub.source, hub = %sub.hub, "websub: the hub denied a subscription no longer wanted; forgotten");
                    let gone = subs.remove(token)?;
                    (None, Some(gone.token), None)
                }
                _ if sub.state == SubscriptionState::Denied && sub.pending.is_none() => {
                    // Said again: nothing new to record.
                    tracing::debug!(source = %sub.source, hub = %sub.hub, "websub: the hub denied the subscription again");
                    (None, None, Some(sub.source.clone()))
                }
                _ => {
                    let reason = query
                        .get("hub.reason")
                        .map(|r| printable(r))
                        .unwrap_or_else(|| "no reason given".into());
                    tracing::warn!(source = %sub.source, hub = %sub.hub, %reason, "websub: the hub denied the subscription; polling as usual");
                    sub.state = SubscriptionState::Denied;
                    sub.pending = None;
                    sub.reason = Some(format!("denied by the hub: {reason}"));
                    sub.lease_end = None;
                    shared.push.set(&sub.source, None);
                    (Some(sub.clone()), None, Some(sub.source.clone()))
                }
            }
        };
        if let Some(sub) = changed {
            shared.save(sub).await;
        }
        if let Some(token) = removed {
            shared.delete(token).await;
        }
        if let Some(source) = poll {
            shared.poll_soon(&source);
            return Some(String::new());
        }
        query.get("hub.challenge").cloned().or(Some(String::new()))
    }

    /// A delivery (POST on the callback) with its `X-Hub-Signature` and body.
    pub async fn deliver(
        &self,
        token: &str,
        signature: Option<&str>,
        content_type: Option<String>,
        body: Vec<u8>,
    ) -> Delivered {
        let shared = &self.shared;
        let config = shared.live.borrow().clone();
        // The subscription as it is now; the signature and the document are checked
        // outside the lock (an HMAC over up to `max_body_mb`, a scan of the document).
        let Some(sub) = shared.lock_subs().get(token).cloned() else {
            return Delivered::Unknown;
        };
        if !taking(&config, &sub, Utc::now()) {
            tracing::debug!(source = %sub.source, hub = %sub.hub, state = ?sub.state, "websub: a delivery for a subscription not taking any was refused (410)");
            return Delivered::Unknown;
        }
        let ok = sub
            .secret
            .as_deref()
            .zip(signature)
            .is_some_and(|(secret, sig)| signature_ok(secret.as_bytes(), sig, &body));
        let fat = !body.iter().all(u8::is_ascii_whitespace);
        let other_topic = ok && fat && !same_topic(&sub, &body);
        let (sub, ok, fat) = {
            let mut subs = shared.lock_subs();
            // Gone (unsubscribed, replaced) while the body was checked.
            let Some(sub) = subs.get_mut(token) else {
                return Delivered::Unknown;
            };
            if ok && !other_topic {
                sub.deliveries += 1;
                sub.last_delivery = Some(Utc::now());
            } else {
                sub.rejected += 1;
            }
            (sub.clone(), ok.then_some(!other_topic), fat)
        };
        let source = sub.source.clone();
        if ok == Some(true) {
            // Signed by the hub: saved now (status shows it at once).
            shared.save(sub.clone()).await;
        } else {
            // Anyone may send these: counted, saved by the next tick, not one write each.
            shared.mark_dirty(&sub.token);
        }
        match ok {
            None => {
                tracing::debug!(%source, hub = %sub.hub, "websub: a delivery without a valid signature was ignored");
                shared.metrics.record_websub(&source, "rejected");
                return Delivered::Rejected;
            }
            Some(false) => {
                // Signed by the hub, so news of a change all the same: the source's own
                // document is fetched (folded with other asks into one poll per gap).
                tracing::debug!(%source, hub = %sub.hub, "websub: a delivered document names another feed as its self; ignored, polling the source");
                shared.metrics.record_websub(&source, "rejected");
                shared.poll_soon(&source);
                return Delivered::Rejected;
            }
            Some(true) => {}
        }
        if !fat {
            tracing::debug!(%source, "websub: a delivery without a document; polling the source");
            shared.metrics.record_websub(&source, "thin");
            shared.poll_soon(&source);
            return Delivered::Accepted;
        }
        shared.store_delivery(&sub, content_type, body)
    }

    /// `[fetch] max_body_mb` and `[fetch] timeout`: a delivery's body bounds.
    pub fn body_bounds(&self) -> (u64, Duration) {
        let config = self.shared.live.borrow();
        (config.fetch.max_body_bytes, config.fetch.timeout)
    }

    /// Whether `token` names a subscription taking deliveries now: a delivery to any other
    /// callback (unknown, denied, lapsed, being unsubscribed, no longer configured) is
    /// answered 410 before its body is read.
    pub fn takes(&self, token: &str) -> bool {
        let config = self.shared.live.borrow().clone();
        self.shared
            .lock_subs()
            .get(token)
            .is_some_and(|sub| taking(&config, sub, Utc::now()))
    }

    /// A delivery too big to read: counted as rejected.
    pub async fn too_big(&self, token: &str) -> Delivered {
        let sub = {
            let mut subs = self.shared.lock_subs();
            let Some(sub) = subs.get_mut(token) else {
                return Delivered::Unknown;
            };
            sub.rejected += 1;
            sub.clone()
        };
        tracing::debug!(source = %sub.source, "websub: a delivery over [fetch] max_body_mb was ignored");
        self.shared.metrics.record_websub(&sub.source, "rejected");
        self.shared.mark_dirty(&sub.token);
        Delivered::Rejected
    }
}

/// Whether WebSub is on: `[server] base_url` written and `[websub] subscribe`.
fn enabled(config: &Config) -> bool {
    config.server.base_url_set && config.websub.subscribe
}

/// Whether `config` still wants `sub`: WebSub on, its source configured with `websub`
/// and the same URL, and its callback under the current `base_url`.
fn wanted(config: &Config, sub: &Subscription) -> bool {
    enabled(config)
        && sub.callback == callback(&config.server.base_url, &sub.token)
        && config
            .source(&sub.source)
            .is_some_and(|c| c.websub && c.url.as_str() == sub.source_url)
}

/// Whether `sub` takes deliveries at `now`: verified, its lease running, not being
/// unsubscribed, and still wanted.
fn taking(config: &Config, sub: &Subscription, now: DateTime<Utc>) -> bool {
    sub.state == SubscriptionState::Active
        && sub.lease_end.is_some_and(|end| end > now)
        && sub.pending.as_deref() != Some("unsubscribe")
        && wanted(config, sub)
}

/// Whether a delivered document is of `sub`'s topic: it names no self link, or as its
/// self the topic, the source's URL or the self its document named at the last poll, as
/// [`loosely`] compares them (a feed moved to https, or a self with a query, is the same).
fn same_topic(sub: &Subscription, body: &[u8]) -> bool {
    let Ok(base) = Url::parse(&sub.topic) else {
        return true;
    };
    let Some(named) = crate::feed::websub::from_document(body, &base).topic else {
        return true;
    };
    let named = loosely(&named);
    [
        Some(sub.topic.as_str()),
        Some(sub.source_url.as_str()),
        sub.document_self.as_deref(),
    ]
    .into_iter()
    .flatten()
    .filter_map(|u| Url::parse(u).ok())
    .any(|u| loosely(&u) == named)
}

/// A feed URL as far as telling feeds apart needs: the host (lowercase), a port other than
/// 80 and 443, and the percent-decoded, lowercased path without a trailing `/`; the
/// scheme, query and fragment left out.
fn loosely(url: &Url) -> (String, Option<u16>, String) {
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    let port = url.port().filter(|p| *p != 80 && *p != 443);
    let path = percent_encoding::percent_decode_str(url.path())
        .decode_utf8_lossy()
        .trim_end_matches('/')
        .to_lowercase();
    (host, port, path)
}

/// Whether one more subscription to `hub_host` may be made for `source`: at most
/// `per_host` to one hub host and `cap` in all (`source`'s own records, about to be
/// replaced, not counted). The reason when not.
fn admit(
    subs: &HashMap<String, Subscription>,
    source: &str,
    hub_host: &str,
    per_host: usize,
    cap: usize,
) -> Result<(), String> {
    let others = || subs.values().filter(|s| s.source != source);
    if others().count() >= cap {
        return Err(format!(
            "not subscribed: {cap} subscriptions kept already ({PER_SOURCE_RECORDS} per configured source)"
        ));
    }
    let on_host = others()
        .filter(|s| s.state != SubscriptionState::Off)
        .filter(|s| {
            Url::parse(&s.hub)
                .ok()
                .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
                .as_deref()
                == Some(hub_host)
        })
        .count();
    if on_host >= per_host {
        return Err(format!(
            "not subscribed: {per_host} subscriptions to {hub_host} already"
        ));
    }
    Ok(())
}

/// The callback URL for `token` under `base`.
fn callback(base: &str, token: &str) -> String {
    format!("{base}/websub/callback/{token}")
}

/// 32 random bytes (the system's CSPRNG) in hex.
pub fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    if getrandom::fill(&mut bytes).is_err() {
        // No system randomness at all: never expected on a supported system; fall back to
        // a generator seeded from the clock and the process (still 256 bits of output).
        for b in &mut bytes {
            *b = fastrand::u8(..);
        }
    }
    crate::model::hex(&bytes)
}

/// A denial's `hub.reason` kept, in characters at most.
pub const MAX_REASON: usize = 300;

/// `text` cut to [`MAX_REASON`] characters, with control characters (terminal escapes,
/// line breaks, NUL) and invisible format characters (bidirectional overrides, zero-width
/// characters, line and paragraph separators) replaced by spaces: what a hub writes must
/// not forge lines, colours or reading order in logs and `tributary status`.
fn printable(text: &str) -> String {
    text.chars()
        .take(MAX_REASON)
        .map(|c| {
            if c.is_control() || invisible(c) {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// Unicode format characters that change how text around them shows.
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}'
        | '\u{2060}'..='\u{2069}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

/// Checks `X-Hub-Signature: method=hex` against the HMAC of `body` keyed by `secret`.
fn signature_ok(secret: &[u8], header: &str, body: &[u8]) -> bool {
    let Some((method, hex)) = header.trim().split_once('=') else {
        return false;
    };
    let Some(expected) = from_hex(hex.trim()) else {
        return false;
    };
    macro_rules! check {
        ($hash:ty) => {{
            let Ok(mut mac) = Hmac::<$hash>::new_from_slice(secret) else {
                return false;
            };
            mac.update(body);
            mac.verify_slice(&expected).is_ok()
        }};
    }
    match method.trim().to_ascii_lowercase().as_str() {
        "sha1" => check!(sha1::Sha1),
        "sha256" => check!(sha2::Sha256),
        "sha384" => check!(sha2::Sha384),
        "sha512" => check!(sha2::Sha512),
        _ => false,
    }
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || text.len() > 256 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

impl Shared {
    fn lock_subs(&self) -> std::sync::MutexGuard<'_, HashMap<String, Subscription>> {
        self.subs.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn save(&self, sub: Subscription) {
        if let Err(error) = self.store.call(move |s| s.save_websub(&sub)).await {
            tracing::warn!(%error, "websub: cannot save a subscription");
        }
    }

    async fn delete(&self, token: String) {
        if let Err(error) = self.store.call(move |s| s.delete_websub(&token)).await {
            tracing::warn!(%error, "websub: cannot remove a subscription");
        }
    }

    /// `token`'s counters changed: saved at the next tick (not one write per delivery).
    fn mark_dirty(&self, token: &str) {
        self.dirty
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(token.to_string());
    }

    /// Saves the subscriptions whose counters changed.
    async fn save_dirty(&self) {
        let tokens: Vec<String> = self
            .dirty
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .collect();
        let subs: Vec<Subscription> = {
            let subs = self.lock_subs();
            tokens.iter().filter_map(|t| subs.get(t).cloned()).collect()
        };
        for sub in subs {
            self.save(sub).await;
        }
    }

    /// Asks for a poll of `source` (a thin ping, a denial, a lapse): at once if the last
    /// one the subscriber asked for is [`POLL_GAP`] ago, else once the gap has passed
    /// (everything in between folded into that one poll). Never waits.
    fn poll_soon(&self, source: &str) {
        let now = tokio::time::Instant::now();
        {
            let mut polls = self.polls.lock().unwrap_or_else(|e| e.into_inner());
            let gate = polls.entry(source.to_string()).or_default();
            if gate.last.is_some_and(|last| now - last < POLL_GAP) {
                gate.owed = true;
                gate.folded += 1;
                self.metrics.record_websub(source, "coalesced");
                return;
            }
            gate.last = Some(now);
        }
        self.poll_now(source);
    }

    /// Polls owed once their gap has passed (one summary line each).
    fn owed_polls(&self) {
        let now = tokio::time::Instant::now();
        let due: Vec<(String, u64)> = {
            let mut polls = self.polls.lock().unwrap_or_else(|e| e.into_inner());
            polls.retain(|_, g| g.owed || g.last.is_some_and(|last| now - last < POLL_GAP));
            polls
                .iter_mut()
                .filter(|(_, g)| g.owed && g.last.is_none_or(|last| now - last >= POLL_GAP))
                .map(|(source, g)| {
                    let folded = std::mem::take(&mut g.folded);
                    g.owed = false;
                    g.last = Some(now);
                    (source.clone(), folded)
                })
                .collect()
        };
        for (source, folded) in due {
            tracing::info!(%source, folded, "websub: polling once for the pings, denials or lapses since the last poll");
            self.poll_now(&source);
        }
    }

    /// Asks the supervisor to poll `source` now (as `tributary poll` does). Never waits.
    fn poll_now(&self, source: &str) {
        let (reply, _answer) = oneshot::channel();
        if self
            .control
            .try_send(Control::PollNow(vec![source.to_string()], reply))
            .is_err()
        {
            tracing::warn!(%source, "websub: the supervisor is busy; the source is polled at its next due time");
        }
    }

    /// A fat ping stored off the request, bounded per source and in all.
    fn store_delivery(
        self: &Arc<Self>,
        sub: &Subscription,
        content_type: Option<String>,
        body: Vec<u8>,
    ) -> Delivered {
        let source = sub.source.clone();
        let config = self.live.borrow().clone();
        let Some(source_config) = config.source(&source).cloned() else {
            return Delivered::Unknown;
        };
        let Some((poller, on_poll)) = self.ingest.get().cloned() else {
            return Delivered::Busy;
        };
        let place = self.in_flight.clone().try_acquire_owned().ok();
        let admitted = place.is_some() && {
            let mut storing = self.storing.lock().unwrap_or_else(|e| e.into_inner());
            let n = storing.entry(source.clone()).or_default();
            (*n < PER_SOURCE).then(|| *n += 1).is_some()
        };
        let Some(place) = place.filter(|_| admitted) else {
            tracing::debug!(%source, "websub: too many deliveries being stored; this one is refused (503)");
            self.metrics.record_websub(&source, "dropped");
            return Delivered::Busy;
        };
        self.metrics.record_websub(&source, "accepted");
        let final_url = Url::parse(&sub.topic).unwrap_or_else(|_| source_config.url.clone());
        let body = Body {
            bytes: body,
            content_type,
            final_url,
            validators: Validators::default(),
        };
        let shared = self.clone();
        self.tracker.spawn(async move {
            let report = poller.push(&source_config, body, &shared.shutdown).await;
            on_poll(report);
            drop(place);
            let mut storing = shared.storing.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = storing.get_mut(&source_config.name) {
                *n = n.saturating_sub(1);
            }
        });
        Delivered::Accepted
    }

    /// Queues `sub`'s `mode` request for the senders; with the queue full it is marked
    /// unsent and queued again by a later tick. Never waits.
    fn request(&self, sub: Subscription, mode: &'static str, lease: Duration) {
        let token = sub.token.clone();
        if self.hub_queue.try_send((sub, mode, lease)).is_err() {
            tracing::debug!(
                mode,
                "websub: too many hub requests waiting; this one goes later"
            );
            self.unsent
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(token);
        }
    }

    /// Queues again the requests that found the queue full (or an earlier run left).
    fn resend(&self, lease: Duration) {
        let tokens: Vec<String> = self
            .unsent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .collect();
        let jobs: Vec<(Subscription, &'static str)> = {
            let subs = self.lock_subs();
            tokens
                .iter()
                .filter_map(|t| subs.get(t))
                .filter_map(|s| match s.pending.as_deref() {
                    Some("subscribe") => Some((s.clone(), "subscribe")),
                    Some("unsubscribe") => Some((s.clone(), "unsubscribe")),
                    _ => None,
                })
                .collect()
        };
        for (sub, mode) in jobs {
            self.request(sub, mode, lease);
        }
    }

    async fn send(self: &Arc<Self>, sub: Subscription, mode: &'static str, lease: Duration) {
        let result = match Url::parse(&sub.hub) {
            Ok(hub) => {
                let to = if sub.callback.is_empty() {
                    callback(&self.live.borrow().server.base_url, &sub.token)
                } else {
                    sub.callback.clone()
                };
                let body = {
                    let mut form = url::form_urlencoded::Serializer::new(String::new());
                    form.append_pair("hub.mode", mode)
                        .append_pair("hub.topic", &sub.topic)
                        .append_pair("hub.callback", &to);
                    if mode == "subscribe" {
                        form.append_pair("hub.lease_seconds", &lease.as_secs().to_string());
                        if let Some(secret) = &sub.secret {
                            form.append_pair("hub.secret", secret);
                        }
                    }
                    form.finish().into_bytes()
                };
                let mut headers = HeaderMap::new();
                headers.insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/x-www-form-urlencoded"),
                );
                let fetcher = self
                    .fetcher
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                fetcher
                    .post(&hub, headers, body)
                    .await
                    .map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        };
        let Err(error) = result else {
            tracing::info!(source = %sub.source, hub = %sub.hub, mode, "websub: request accepted by the hub; waiting for its verification");
            return;
        };
        tracing::warn!(source = %sub.source, hub = %sub.hub, mode, %error, "websub: the hub refused the request");
        if mode == "unsubscribe" {
            // Nothing more to do: the lease runs out on its own.
            self.lock_subs().remove(&sub.token);
            self.delete(sub.token).await;
            return;
        }
        let changed = {
            let mut subs = self.lock_subs();
            subs.get_mut(&sub.token).map(|s| {
                s.pending = None;
                if s.state != SubscriptionState::Active {
                    s.state = SubscriptionState::Denied;
                    s.lease_end = None;
                    self.push.set(&s.source, None);
                }
                s.reason = Some(format!("the {mode} request failed: {error}"));
                s.clone()
            })
        };
        if let Some(s) = changed {
            self.save(s).await;
        }
    }

    /// A poll of `source` found `found`: subscribe, move, or nothing.
    async fn discovered(self: &Arc<Self>, source: String, found: Discovery) {
        let config = self.live.borrow().clone();
        let Some(src) = config
            .source(&source)
            .filter(|s| s.websub && enabled(&config))
        else {
            return;
        };
        let now = Utc::now();
        let Some(topic) = found.topic.as_ref() else {
            return;
        };
        // No hub announced any more: what we have for the source is unsubscribed.
        let hub = found.hubs.first();
        let mut saves = Vec::new();
        let mut deletes = Vec::new();
        let mut requests = Vec::new();
        'decide: {
            let mut subs = self.lock_subs();
            // Records of an earlier URL or base_url (not wanted, on their way out) are not
            // the source's current subscription.
            let current: Vec<String> = subs
                .values()
                .filter(|s| {
                    s.source == source
                        && s.pending.as_deref() != Some("unsubscribe")
                        && (s.state == SubscriptionState::Off || wanted(&config, s))
                })
                .map(|s| s.token.clone())
                .collect();
            let mut keep = false;
            let mut moving = false;
            for token in &current {
                let Some(s) = subs.get(token) else {
                    continue;
                };
                let same = hub.is_some_and(|h| s.hub == h.as_str()) && s.topic == topic.as_str();
                let retry = match s.state {
                    SubscriptionState::Lapsed | SubscriptionState::Denied => {
                        s.requested.is_none_or(|r| {
                            now - r > chrono::Duration::from_std(RETRY_DENIED).unwrap_or_default()
                        })
                    }
                    _ => false,
                };
                if same && !retry {
                    keep = true;
                } else if !same {
                    moving = true;
                }
            }
            // Another hub or topic: at most one move per SWITCH_EVERY (a source announcing
            // a new hub at every poll keeps the one it has).
            if moving && !keep {
                let mut switched = self.switched.lock().unwrap_or_else(|e| e.into_inner());
                if let Some((at, logged)) = switched.get_mut(&source)
                    && now - *at < chrono::Duration::from_std(SWITCH_EVERY).unwrap_or_default()
                {
                    if !*logged {
                        *logged = true;
                        tracing::info!(%source, hub = ?hub.map(Url::as_str), "websub: the source announces another hub or topic; it moved less than an hour ago, so the current subscription is kept for now");
                        for token in &current {
                            if let Some(s) = subs.get_mut(token) {
                                s.reason = Some("the source announces another hub or topic; it moved less than an hour ago, so this subscription is kept for now".into());
                                saves.push(s.clone());
                            }
                        }
                    }
                    break 'decide;
                }
                switched.insert(source.clone(), (now, false));
            }
            let mut unsubscribing = false;
            for token in current {
                let Some(s) = subs.get_mut(&token) else {
                    continue;
                };
                let same = hub.is_some_and(|h| s.hub == h.as_str()) && s.topic == topic.as_str();
                if keep && same {
                    let named = found.document_self.as_ref().map(Url::to_string);
                    if s.document_self != named {
                        s.document_self = named;
                        saves.push(s.clone());
                    }
                    continue;
                }
                // Moved (another hub or topic) or to be made again: the old one goes.
                if matches!(
                    s.state,
                    SubscriptionState::Active | SubscriptionState::Pending
                ) && !unsubscribing
                {
                    unsubscribing = true;
                    s.pending = Some("unsubscribe".into());
                    s.requested = Some(now);
                    self.push.set(&s.source, None);
                    saves.push(s.clone());
                    requests.push((s.clone(), "unsubscribe"));
                    deletes.extend(self.retire(&mut subs, &source, &token));
                } else {
                    subs.remove(&token);
                    deletes.push(token);
                }
            }
            if let Some(hub) = hub.filter(|_| !keep) {
                let trusted = hub.scheme() == "https"
                    || self
                        .fetcher
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .trusted_host(hub);
                let host = hub.host_str().unwrap_or_default().to_ascii_lowercase();
                let cap = PER_SOURCE_RECORDS * config.sources.len().max(1);
                let admitted = admit(&subs, &source, &host, MAX_PER_HUB_HOST, cap);
                let token = random_hex();
                let mut sub = Subscription {
                    callback: callback(&config.server.base_url, &token),
                    token,
                    source: source.clone(),
                    source_url: src.url.to_string(),
                    hub: hub.to_string(),
                    topic: topic.to_string(),
                    secret: None,
                    state: SubscriptionState::Pending,
                    pending: Some("subscribe".into()),
                    reason: None,
                    requested: Some(now),
                    lease_end: None,
                    last_delivery: None,
                    deliveries: 0,
                    rejected: 0,
                    document_self: found.document_self.as_ref().map(Url::to_string),
                };
                if !trusted {
                    sub.state = SubscriptionState::Off;
                    sub.pending = None;
                    sub.reason = Some("not subscribed: the hub is plain http outside loopback and [fetch] allow_networks, so its secret would travel in clear and deliveries could not be trusted".into());
                    tracing::warn!(%source, hub = %sub.hub, "websub: not subscribing to a plain-http hub outside trusted networks");
                } else if let Err(reason) = admitted {
                    sub.state = SubscriptionState::Off;
                    sub.pending = None;
                    tracing::warn!(%source, hub = %sub.hub, %reason, "websub: not subscribing");
                    sub.reason = Some(reason);
                } else {
                    sub.secret = Some(random_hex());
                    requests.push((sub.clone(), "subscribe"));
                    tracing::info!(%source, hub = %sub.hub, topic = %sub.topic, "websub: subscribing");
                }
                subs.insert(sub.token.clone(), sub.clone());
                saves.push(sub);
            }
        }
        for token in deletes {
            self.delete(token).await;
        }
        for s in saves {
            self.save(s).await;
        }
        for (s, mode) in requests {
            self.request(s, mode, config.websub.lease);
        }
    }

    /// `source`'s records being unsubscribed other than `keep` are forgotten (their
    /// leases run out on their own): a source has at most one being unsubscribed. The
    /// tokens to delete from the store.
    fn retire(
        &self,
        subs: &mut HashMap<String, Subscription>,
        source: &str,
        keep: &str,
    ) -> Vec<String> {
        let old: Vec<String> = subs
            .values()
            .filter(|s| {
                s.source == source && s.token != keep && s.pending.as_deref() == Some("unsubscribe")
            })
            .map(|s| s.token.clone())
            .collect();
        let mut unsent = self.unsent.lock().unwrap_or_else(|e| e.into_inner());
        for t in &old {
            subs.remove(t);
            unsent.remove(t);
        }
        old
    }

    /// After a reload: subscriptions no longer wanted are unsubscribed (or dropped).
    async fn reloaded(self: &Arc<Self>, config: &Config) {
        self.push.set_safety_poll(config.websub.safety_poll);
        match Fetcher::new(&config.fetch) {
            Ok(f) => *self.fetcher.lock().unwrap_or_else(|e| e.into_inner()) = f,
            Err(error) => tracing::warn!(%error, "websub: keeping the old HTTP client"),
        }
        let now = Utc::now();
        let mut unsubscribe: Vec<Subscription> = Vec::new();
        let mut drop = Vec::new();
        {
            let mut subs = self.lock_subs();
            for s in subs.values_mut() {
                if s.pending.as_deref() == Some("unsubscribe") {
                    continue;
                }
                if s.state == SubscriptionState::Off {
                    // Looked at again at the next poll (`[fetch] allow_networks` may have
                    // changed).
                    drop.push(s.token.clone());
                    continue;
                }
                if wanted(config, s) {
                    continue;
                }
                self.push.set(&s.source, None);
                if matches!(
                    s.state,
                    SubscriptionState::Active | SubscriptionState::Pending
                ) {
                    s.pending = Some("unsubscribe".into());
                    s.requested = Some(now);
                    unsubscribe.push(s.clone());
                } else {
                    drop.push(s.token.clone());
                }
            }
            for t in &drop {
                subs.remove(t);
            }
            for s in &unsubscribe {
                drop.extend(self.retire(&mut subs, &s.source, &s.token));
            }
        }
        for t in drop {
            self.delete(t).await;
        }
        for s in unsubscribe {
            tracing::info!(source = %s.source, hub = %s.hub, "websub: unsubscribing (no longer configured)");
            self.save(s.clone()).await;
            self.request(s, "unsubscribe", config.websub.lease);
        }
    }

    /// Renewals due, leases ended, verifications never made.
    async fn tick(self: &Arc<Self>) {
        let config = self.live.borrow().clone();
        let now = Utc::now();
        let verify_within = chrono::Duration::from_std(VERIFY_WITHIN).unwrap_or_default();
        let mut renew = Vec::new();
        let mut saves = Vec::new();
        let mut gone = Vec::new();
        let mut polls = Vec::new();
        {
            let mut subs = self.lock_subs();
            for s in subs.values_mut() {
                let waited = s.requested.is_some_and(|r| now - r > verify_within);
                match (s.state, s.pending.as_deref()) {
                    (_, Some("unsubscribe")) if waited => gone.push(s.token.clone()),
                    (
                        SubscriptionState::Denied
                        | SubscriptionState::Off
                        | SubscriptionState::Lapsed,
                        None,
                    ) if !wanted(&config, s) => {
                        // Denied or ended, and no longer configured: forgotten.
                        gone.push(s.token.clone());
                    }
                    (SubscriptionState::Active, _) if s.lease_end.is_some_and(|end| end <= now) => {
                        tracing::warn!(source = %s.source, hub = %s.hub, "websub: the lease ended unrenewed; polling as usual");
                        s.state = SubscriptionState::Lapsed;
                        s.pending = None;
                        s.reason = Some("the lease ended without a verified renewal".into());
                        self.push.set(&s.source, None);
                        saves.push(s.clone());
                        polls.push(s.source.clone());
                    }
                    (SubscriptionState::Active, None) => {
                        let (Some(end), Some(from)) = (s.lease_end, s.requested) else {
                            continue;
                        };
                        let lease = (end - from).num_milliseconds().max(0) as f64;
                        let at = from + chrono::Duration::milliseconds((lease * RENEW_AT) as i64);
                        if now >= at && enabled(&config) {
                            s.pending = Some("subscribe".into());
                            s.requested = Some(now);
                            saves.push(s.clone());
                            renew.push(s.clone());
                        }
                    }
                    (SubscriptionState::Pending, Some("subscribe")) if waited => {
                        s.state = SubscriptionState::Denied;
                        s.pending = None;
                        s.reason = Some("the hub never verified the subscription".into());
                        saves.push(s.clone());
                    }
                    _ => {}
                }
            }
            for t in &gone {
                subs.remove(t);
            }
        }
        if !gone.is_empty() {
            let mut unsent = self.unsent.lock().unwrap_or_else(|e| e.into_inner());
            for t in &gone {
                unsent.remove(t);
            }
        }
        for t in gone {
            self.delete(t).await;
        }
        for s in saves {
            self.save(s).await;
        }
        for s in renew {
            tracing::info!(source = %s.source, hub = %s.hub, "websub: renewing the lease");
            self.request(s, "subscribe", config.websub.lease);
        }
        for source in polls {
            self.poll_soon(&source);
        }
        self.owed_polls();
        self.resend(config.websub.lease);
        self.save_dirty().await;
    }
}

/// One of the [`HUB_CONCURRENCY`] senders of hub requests.
async fn sender(jobs: Arc<tokio::sync::Mutex<mpsc::Receiver<HubJob>>>, shared: Arc<Shared>) {
    loop {
        let job = tokio::select! {
            () = shared.shutdown.cancelled() => return,
            job = async { jobs.lock().await.recv().await } => job,
        };
        let Some((sub, mode, lease)) = job else {
            return;
        };
        tokio::select! {
            () = shared.shutdown.cancelled() => return,
            () = shared.send(sub, mode, lease) => {}
        }
    }
}

/// The subscriber's task: discoveries, reloads and the lease clock.
async fn run(mut rx: mpsc::Receiver<(String, Discovery)>, shared: Arc<Shared>) {
    let mut live = shared.live.clone();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The config the daemon started with: subscriptions it no longer wants go.
    let first = live.borrow_and_update().clone();
    shared.reloaded(&first).await;
    loop {
        tokio::select! {
            biased;
            () = shared.shutdown.cancelled() => {
                shared.save_dirty().await;
                return;
            }
            changed = live.changed() => {
                if changed.is_err() {
                    return;
                }
                let config = live.borrow_and_update().clone();
                shared.reloaded(&config).await;
            }
            found = rx.recv() => match found {
                Some((source, found)) => shared.discovered(source, found).await,
                None => return,
            },
            _ = tick.tick() => shared.tick().await,
        }
    }
}

/// A poller for fat pings, beside the scheduler's (its own places; the same store).
pub fn poller(store: Store, fetcher: Fetcher, config: &Config, push: Push) -> Poller {
    Poller {
        fetcher,
        store,
        bounds: Bounds::from(&config.fetch),
        permits: Arc::new(Semaphore::new(IN_FLIGHT)),
        quiet: false,
        push,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign<M: Mac + hmac::digest::KeyInit>(body: &[u8]) -> String {
        let mut mac = <M as Mac>::new_from_slice(b"secret").unwrap();
        mac.update(body);
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[test]
    fn every_algorithm_is_checked() {
        let body = b"<feed/>";
        for (name, hex) in [
            ("sha1", sign::<Hmac<sha1::Sha1>>(body)),
            ("sha256", sign::<Hmac<sha2::Sha256>>(body)),
            ("sha384", sign::<Hmac<sha2::Sha384>>(body)),
            ("sha512", sign::<Hmac<sha2::Sha512>>(body)),
        ] {
            assert!(
                signature_ok(b"secret", &format!("{name}={hex}"), body),
                "{name}"
            );
            assert!(
                !signature_ok(b"other", &format!("{name}={hex}"), body),
                "{name}"
            );
            assert!(
                !signature_ok(b"secret", &format!("{name}={hex}"), b"x"),
                "{name}"
            );
        }
        for bad in ["", "sha256", "sha256=", "md5=00", "sha256=zz", "sha256=0"] {
            assert!(!signature_ok(b"secret", bad, body), "{bad}");
        }
    }

    fn sub(token: &str, source: &str, hub: &str, state: SubscriptionState) -> Subscription {
        Subscription {
            token: token.into(),
            source: source.into(),
            source_url: format!("https://{source}.example/feed"),
            callback: String::new(),
            hub: hub.into(),
            topic: format!("https://{source}.example/feed"),
            secret: None,
            state,
            pending: None,
            reason: None,
            requested: None,
            lease_end: None,
            last_delivery: None,
            deliveries: 0,
            rejected: 0,
            document_self: None,
        }
    }

    #[test]
    fn subscriptions_are_bounded_per_hub_host_and_in_all() {
        let mut subs = HashMap::new();
        for (t, source, hub, state) in [
            ("1", "a", "https://Hub.example/x", SubscriptionState::Active),
            (
                "2",
                "b",
                "https://hub.example/y",
                SubscriptionState::Pending,
            ),
            ("3", "c", "https://hub.example/z", SubscriptionState::Off),
            (
                "4",
                "d",
                "https://other.example/",
                SubscriptionState::Active,
            ),
        ] {
            subs.insert(t.to_string(), sub(t, source, hub, state));
        }
        // Two (not off) on hub.example, whatever the case and path.
        assert!(admit(&subs, "e", "hub.example", 3, 100).is_ok());
        let refused = admit(&subs, "e", "hub.example", 2, 100).unwrap_err();
        assert!(
            refused.contains("2 subscriptions to hub.example"),
            "{refused}"
        );
        // The source's own records are about to be replaced: not counted.
        assert!(admit(&subs, "a", "hub.example", 2, 100).is_ok());
        assert!(admit(&subs, "e", "third.example", 2, 100).is_ok());
        // Four records kept in all.
        let refused = admit(&subs, "e", "third.example", 1000, 4).unwrap_err();
        assert!(refused.contains("4 subscriptions kept"), "{refused}");
        assert!(admit(&subs, "d", "third.example", 1000, 4).is_ok());
    }

    #[test]
    fn a_delivered_document_must_be_of_the_topic() {
        let s = sub("1", "a", "https://hub.example/", SubscriptionState::Active);
        let doc = |self_link: &str| {
            format!(
                r#"<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>{self_link}<entry><id>1</id></entry></feed>"#
            )
        };
        assert!(same_topic(&s, doc("").as_bytes()));
        assert!(same_topic(
            &s,
            doc(r#"<link rel="self" href="https://a.example/feed"/>"#).as_bytes()
        ));
        assert!(!same_topic(
            &s,
            doc(r#"<link rel="self" href="https://b.example/feed"/>"#).as_bytes()
        ));
        // The same feed however its self is spelt: https, a trailing slash, a query, a
        // fragment, percent-encoding, case.
        for spelt in [
            "http://a.example/feed",
            "https://A.example/feed/",
            "https://a.example/feed?x=1#top",
            "https://a.example/%66eed",
            "https://a.example/FEED",
            "https://a.example:443/feed",
        ] {
            assert!(
                same_topic(
                    &s,
                    doc(&format!(r#"<link rel="self" href="{spelt}"/>"#)).as_bytes()
                ),
                "{spelt}"
            );
        }
        assert!(!same_topic(
            &s,
            doc(r#"<link rel="self" href="https://a.example/other"/>"#).as_bytes()
        ));
        assert!(!same_topic(
            &s,
            doc(r#"<link rel="self" href="https://a.example:8443/feed"/>"#).as_bytes()
        ));
        // The self the source's own document named at its last poll is its too.
        let mut s = s;
        s.document_self = Some("https://a.example/feed.xml?v=2".into());
        assert!(same_topic(
            &s,
            doc(r#"<link rel="self" href="https://a.example/feed.xml?v=2"/>"#).as_bytes()
        ));
    }

    #[test]
    fn a_reason_loses_its_control_characters_and_its_excess() {
        let hostile = "\u{1b}[31mRED\u{1b}[0m\u{1b}]0;PWNED\u{7}\r\n  reason: FAKE\u{0}nul";
        let clean = printable(hostile);
        assert!(!clean.chars().any(char::is_control), "{clean:?}");
        assert!(clean.contains("RED") && clean.contains("FAKE"));
        let bidi = printable("ok\u{202E}txt.exe\u{200B}\u{2028}next");
        assert_eq!(bidi, "ok txt.exe  next");
        assert_eq!(printable(&"é".repeat(1000)).chars().count(), MAX_REASON);
    }

    #[test]
    fn tokens_are_long_and_distinct() {
        let (a, b) = (random_hex(), random_hex());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }
}
