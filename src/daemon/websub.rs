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
//!   most [`HUB_CONCURRENCY`] at once, from their own tasks: a slow hub never delays polls
//!   or the server. At most [`MAX_PER_HUB_HOST`] subscriptions go to one hub host.
//! - The hub's verification (GET on the callback) is answered only for the request we
//!   made and are waiting on (mode and topic must match); a denial is recorded with its
//!   reason and the source goes back to its own interval.
//! - A delivery (POST) must be signed (`X-Hub-Signature`, sha1/256/384/512, HMAC with the
//!   subscription's secret, compared in constant time); one unsigned or wrongly signed is
//!   answered 202 and ignored (counted as rejected). A fat ping's document is stored as a
//!   poll's page (`Poller::push`), at most [`PER_SOURCE`] per source and [`IN_FLIGHT`] in
//!   all at once (the rest are dropped and counted); an empty one asks the supervisor to
//!   poll the source.
//! - While a lease runs the source is polled every `[websub] safety_poll`
//!   (`ingest/push.rs`); renewals go out at [`RENEW_AT`] of the lease; a lease that ends
//!   unrenewed lapses, and the source is polled at once and at its own interval again.
//! - A reload that removes a source, turns it (or WebSub) off, or changes `base_url`
//!   unsubscribes; a changed URL, hub or topic is unsubscribed when the next poll finds
//!   the new one. Subscriptions are kept in the store, so a restart carries on with them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use chrono::Utc;
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
/// Subscriptions to one hub host at most.
pub const MAX_PER_HUB_HOST: usize = 1000;
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
    hub_places: Arc<Semaphore>,
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
    /// Ignored: no or a wrong signature (202, as the Recommendation says, but not used).
    Rejected,
    /// No such subscription: 410 Gone tells the hub to stop.
    Unknown,
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
            if s.state == SubscriptionState::Active {
                push.set(&s.source, s.lease_end.filter(|end| *end > now));
            }
        }
        let (discoveries, rx) = mpsc::channel(DISCOVERIES);
        let shared = Arc::new(Shared {
            subs: Mutex::new(stored.into_iter().map(|s| (s.token.clone(), s)).collect()),
            store,
            push,
            live,
            fetcher: Mutex::new(fetcher),
            hub_places: Arc::new(Semaphore::new(HUB_CONCURRENCY)),
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
                _ => {
                    let reason = query
                        .get("hub.reason")
                        .map(|r| r.chars().take(500).collect::<String>())
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
            shared.poll_now(&source);
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
        let (sub, ok) = {
            let mut subs = shared.lock_subs();
            let Some(sub) = subs.get_mut(token) else {
                return Delivered::Unknown;
            };
            let ok = sub
                .secret
                .as_deref()
                .zip(signature)
                .is_some_and(|(secret, sig)| signature_ok(secret.as_bytes(), sig, &body));
            if ok {
                sub.deliveries += 1;
                sub.last_delivery = Some(Utc::now());
            } else {
                sub.rejected += 1;
            }
            (sub.clone(), ok)
        };
        let source = sub.source.clone();
        shared.save(sub.clone()).await;
        if !ok {
            tracing::warn!(%source, hub = %sub.hub, "websub: a delivery without a valid signature was ignored");
            shared.metrics.record_websub(&source, "rejected");
            return Delivered::Rejected;
        }
        if body.iter().all(u8::is_ascii_whitespace) {
            tracing::info!(%source, "websub: a delivery without a document; polling the source");
            shared.metrics.record_websub(&source, "thin");
            shared.poll_now(&source);
            return Delivered::Accepted;
        }
        shared.store_delivery(&sub, content_type, body);
        Delivered::Accepted
    }

    /// `[fetch] max_body_mb` and `[fetch] timeout`: a delivery's body bounds.
    pub fn body_bounds(&self) -> (u64, Duration) {
        let config = self.shared.live.borrow();
        (config.fetch.max_body_bytes, config.fetch.timeout)
    }

    /// Whether `token` names a subscription we hold: a delivery to any other callback is
    /// answered 410 before its body is read.
    pub fn knows(&self, token: &str) -> bool {
        self.shared.lock_subs().contains_key(token)
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
        tracing::warn!(source = %sub.source, "websub: a delivery over [fetch] max_body_mb was ignored");
        self.shared.metrics.record_websub(&sub.source, "rejected");
        self.shared.save(sub).await;
        Delivered::Rejected
    }
}

/// Whether WebSub is on: `[server] base_url` written and `[websub] subscribe`.
fn enabled(config: &Config) -> bool {
    config.server.base_url_set && config.websub.subscribe
}

/// The callback URL for `token` under `base`.
fn callback(base: &str, token: &str) -> String {
    format!("{base}/websub/callback/{token}")
}

/// 32 random bytes (the system's CSPRNG) in hex.
fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    if getrandom::fill(&mut bytes).is_err() {
        // No system randomness at all: never expected on a supported system; fall back to
        // a generator seeded from the clock and the process (still 256 bits of output).
        for b in &mut bytes {
            *b = fastrand::u8(..);
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks `X-Hub-Signature: method=hex` against the HMAC of `body` keyed by `secret`.
pub fn signature_ok(secret: &[u8], header: &str, body: &[u8]) -> bool {
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
    ) {
        let source = sub.source.clone();
        let config = self.live.borrow().clone();
        let Some(source_config) = config.source(&source).cloned() else {
            return;
        };
        let Some((poller, on_poll)) = self.ingest.get().cloned() else {
            return;
        };
        let place = self.in_flight.clone().try_acquire_owned().ok();
        let admitted = place.is_some() && {
            let mut storing = self.storing.lock().unwrap_or_else(|e| e.into_inner());
            let n = storing.entry(source.clone()).or_default();
            (*n < PER_SOURCE).then(|| *n += 1).is_some()
        };
        let Some(place) = place.filter(|_| admitted) else {
            tracing::warn!(%source, "websub: too many deliveries being stored; this one is dropped");
            self.metrics.record_websub(&source, "dropped");
            return;
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
    }

    /// Sends `sub`'s `mode` request to its hub from its own task; a failure is recorded.
    fn request(self: &Arc<Self>, sub: Subscription, mode: &'static str, lease: Duration) {
        let shared = self.clone();
        tokio::spawn(async move {
            let cancel = shared.shutdown.clone();
            tokio::select! {
                () = cancel.cancelled() => {}
                () = shared.send(sub, mode, lease) => {}
            }
        });
    }

    async fn send(self: &Arc<Self>, sub: Subscription, mode: &'static str, lease: Duration) {
        let Ok(_place) = self.hub_places.clone().acquire_owned().await else {
            return;
        };
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
        {
            let mut subs = self.lock_subs();
            let current: Vec<String> = subs
                .values()
                .filter(|s| s.source == source && s.pending.as_deref() != Some("unsubscribe"))
                .map(|s| s.token.clone())
                .collect();
            let mut keep = false;
            for token in current {
                let Some(s) = subs.get_mut(&token) else {
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
                    continue;
                }
                // Moved (another hub or topic) or to be made again: the old one goes.
                if matches!(
                    s.state,
                    SubscriptionState::Active | SubscriptionState::Pending
                ) {
                    s.pending = Some("unsubscribe".into());
                    s.requested = Some(now);
                    self.push.set(&s.source, None);
                    saves.push(s.clone());
                    requests.push((s.clone(), "unsubscribe"));
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
                let on_host = subs
                    .values()
                    .filter(|s| s.state != SubscriptionState::Off)
                    .filter(|s| {
                        Url::parse(&s.hub)
                            .ok()
                            .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
                            .as_deref()
                            == Some(host.as_str())
                    })
                    .count();
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
                };
                if !trusted {
                    sub.state = SubscriptionState::Off;
                    sub.pending = None;
                    sub.reason = Some("not subscribed: the hub is plain http outside loopback and [fetch] allow_networks, so its secret would travel in clear and deliveries could not be trusted".into());
                    tracing::warn!(%source, hub = %sub.hub, "websub: not subscribing to a plain-http hub outside trusted networks");
                } else if on_host >= MAX_PER_HUB_HOST {
                    sub.state = SubscriptionState::Off;
                    sub.pending = None;
                    sub.reason = Some(format!(
                        "not subscribed: {MAX_PER_HUB_HOST} subscriptions to {host} already"
                    ));
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

    /// After a reload: subscriptions no longer wanted are unsubscribed (or dropped).
    async fn reloaded(self: &Arc<Self>, config: &Config) {
        self.push.set_safety_poll(config.websub.safety_poll);
        match Fetcher::new(&config.fetch) {
            Ok(f) => *self.fetcher.lock().unwrap_or_else(|e| e.into_inner()) = f,
            Err(error) => tracing::warn!(%error, "websub: keeping the old HTTP client"),
        }
        let now = Utc::now();
        let mut unsubscribe = Vec::new();
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
                let wanted = enabled(config)
                    && s.callback == callback(&config.server.base_url, &s.token)
                    && config
                        .source(&s.source)
                        .is_some_and(|c| c.websub && c.url.as_str() == s.source_url);
                if wanted {
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
            self.poll_now(&source);
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
            () = shared.shutdown.cancelled() => return,
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

    #[test]
    fn tokens_are_long_and_distinct() {
        let (a, b) = (random_hex(), random_hex());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }
}
