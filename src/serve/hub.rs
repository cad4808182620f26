//! The WebSub hub for tributary's own feeds (W3C WebSub Recommendation, January 2018):
//! `POST {base_url}/hub` takes subscribe and unsubscribe requests (§5.1) for the feeds
//! this instance publishes, verifies the subscriber's intent with a challenge (§5.3),
//! keeps confirmed subscriptions in the store (`store/hub.rs`) and, when a poll stores new
//! entries, delivers each changed topic's current document to its subscribers (§7).
//!
//! - A request that is wrong, or over a limit, is answered at once with a 4xx (a 429 past
//!   a callback host's share of verifications, a 503 while [`PENDING`] are under way) and
//!   a plain-text reason, as §5.1 allows; otherwise 202, and the verification runs on its
//!   own task. An unsubscribe for what is not subscribed asks the callback nothing (404).
//!   A subscription that passed the limits when asked for but not when confirmed (others
//!   were confirmed meanwhile) is denied to the callback (`hub.mode=denied`, §5.2), after
//!   the confirmation lock is released.
//! - Subscriptions are bounded per topic, per callback host, per both, in all
//!   ([`MAX_SUBSCRIPTIONS`]) and in distinct topics ([`MAX_TOPICS`]), counted in memory
//!   (`hub_counts.rs`); the per-topic digests kept are those of subscribed topics. Every
//!   per-host bound (and the delivery queue's fairness) counts a host by its *site*
//!   (`hub_counts::site`: registrable domain, IPv4 address or IPv6 /64).
//! - Leases are clamped into `[hub] lease_min..=lease_max` (`lease_default` when none is
//!   asked for); expired subscriptions are dropped every [`SWEEP`].
//! - Polls never wait: `on_poll` only hands the source's name to a bounded channel
//!   ([`Hub::poll_done`]). One task works out the topics that changed (those whose
//!   selection takes the source and whose document is not the one last delivered),
//!   renders each once and queues a delivery per subscriber in a bounded queue fair between
//!   hosts (`hub_queue.rs`); at most `[hub] deliveries` are sent at once, one per host,
//!   each waiting at most [`DELIVERY_TIMEOUT`], retried with the webhooks' backoff ([`retry_wait`]); pings have their own queue. A 410 drops the subscription at once; [`DROP_AFTER`] failed
//!   deliveries in a row over at least [`DROP_SPAN`] drop it too.
//! - Every callback request (verification, denial, delivery) and `[publish] hubs` ping goes
//!   through the fetcher's address guard, with `[fetch] timeout` (a delivery at most
//!   [`DELIVERY_TIMEOUT`]), following no redirect.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use hmac::{Hmac, Mac};
use reqwest::header::HeaderValue;
use tokio::sync::{Notify, Semaphore, mpsc, watch};
use tokio_util::sync::CancellationToken;
use url::Url;

use super::feeds::{Topic, topics_of_source, websub_links};
use super::hub_counts::{Busy, Counts, site, site_of};
pub use super::hub_counts::{
    MAX_PER_TOPIC_HOST, MAX_SUBSCRIPTIONS, MAX_TOPICS, PENDING, PENDING_PER_HOST, RATE_PER_HOST,
};
use super::hub_queue::Fair;
use super::state::AppState;
use crate::config::Config;
use crate::daemon::metrics::Metrics;
use crate::daemon::webhooks::retry_wait;
use crate::fetch::{FetchError, Fetcher};
use crate::ingest::poll::PollReport;
use crate::store::{HubSubscription, Store};

/// A delivery to a subscriber waits this long at most for the answer (or `[fetch] timeout`
/// if shorter): subscribers that hang hold a sending place for no longer, so others wait
/// at most about (hanging sites / `[hub] deliveries`) x this.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// A subscription request's body at most (a form of a few URLs).
pub const BODY_LIMIT: usize = 8 * 1024;
/// `hub.secret` must be shorter than 200 bytes (§5.1).
pub const MAX_SECRET: usize = 199;
/// Deliveries queued at most (past it the host with the most queued loses its oldest), and
/// their bytes; `[publish] hubs` pings have a queue of their own as large.
pub const QUEUE: usize = 1000;
pub const QUEUE_BYTES: usize = 64 << 20;
/// `[publish] hubs` pings in flight at most (beside `[hub] deliveries`).
const PING_PLACES: usize = 2;
/// Polls with new entries waiting for the hub; past it a poll is not delivered.
const POLLS: usize = 256;
/// A subscription is dropped after this many failed deliveries in a row (each one after
/// its retries)...
pub const DROP_AFTER: u32 = 5;
/// ...when the first of them was at least this long ago.
pub const DROP_SPAN: Duration = Duration::from_secs(24 * 3600);
/// How often expired leases are dropped (more often when `[hub] lease_min` is shorter).
pub const SWEEP: Duration = Duration::from_secs(60);
/// Attempts of a `[publish] hubs` ping at most.
const PING_ATTEMPTS: usize = 3;
/// A verification answer's body at most (it should be the challenge).
const ANSWER_LIMIT: u64 = 1024;

/// The hub's handle: cheap to clone.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    live: watch::Receiver<Arc<Config>>,
    metrics: Metrics,
    shutdown: CancellationToken,
    /// Built again at each reload, so `[fetch]` changes apply at once.
    fetcher: Mutex<Fetcher>,
    polls: mpsc::Sender<String>,
    polls_rx: Mutex<Option<mpsc::Receiver<String>>>,
    /// The limits' counts (see `hub_counts.rs`).
    counts: Arc<Mutex<Counts>>,
    /// Deliveries to subscribers, and pings to `[publish] hubs`, each with its own queue
    /// and sending places.
    deliveries: Arc<Lane>,
    pings: Arc<Lane>,
    /// Per topic, the digest of the document last delivered: an unchanged one is not sent
    /// again.
    sent: Mutex<HashMap<String, blake3::Hash>>,
    /// Confirmations one at a time, so two cannot pass a limit together (no network
    /// request is made while it is held).
    activating: tokio::sync::Mutex<()>,
}

/// A queue, fair between hosts, and its sending places.
struct Lane {
    queue: Mutex<Fair<Delivery>>,
    ready: Notify,
    places: Arc<Semaphore>,
}

impl Lane {
    fn new(places: usize) -> Arc<Lane> {
        Arc::new(Lane {
            queue: Mutex::new(Fair::new(QUEUE, QUEUE_BYTES)),
            ready: Notify::new(),
            places: Arc::new(Semaphore::new(places.max(1))),
        })
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Fair<Delivery>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What is sent: a topic's document to a subscriber, or a ping to an external hub.
enum Delivery {
    Content {
        topic: String,
        callback: String,
        secret: Option<String>,
        body: Bytes,
        content_type: &'static str,
        attempts: usize,
    },
    Ping {
        hub: Url,
        topic: String,
        attempts: usize,
    },
}

impl Delivery {
    /// The site it goes to (`hub_counts::site`): at most one delivery per site is in
    /// flight.
    fn host(&self) -> String {
        match self {
            Delivery::Content { callback, .. } => site_of(callback),
            Delivery::Ping { hub, .. } => site(hub.host_str().unwrap_or("")),
        }
    }

    fn bytes(&self) -> usize {
        match self {
            Delivery::Content { body, .. } => body.len(),
            Delivery::Ping { topic, .. } => topic.len(),
        }
    }
}

/// A request refused at once: its status and plain-text reason.
#[derive(Debug, thiserror::Error)]
#[error("{reason}")]
struct Refused {
    status: StatusCode,
    reason: String,
}

fn refused(status: StatusCode, reason: impl Into<String>) -> Refused {
    Refused {
        status,
        reason: reason.into(),
    }
}

/// A checked subscription request.
struct Request {
    subscribe: bool,
    topic: Topic,
    callback: Url,
    secret: Option<String>,
    lease: Duration,
}

impl Hub {
    /// The hub's handle (the limits' counts read from the store); its tasks start with
    /// [`Hub::run`].
    pub async fn new(
        store: Store,
        fetcher: Fetcher,
        live: watch::Receiver<Arc<Config>>,
        metrics: Metrics,
        shutdown: CancellationToken,
    ) -> Hub {
        let (polls, rx) = mpsc::channel(POLLS);
        let deliveries = live.borrow().hub.deliveries;
        let counts = match store.call(|s| s.hub_subscriptions()).await {
            Ok(subs) => Counts::of(&subs),
            Err(error) => {
                tracing::warn!(%error, "hub: cannot read the subscriptions; counting from none");
                Counts::default()
            }
        };
        Hub {
            inner: Arc::new(Inner {
                store,
                live,
                metrics,
                shutdown,
                fetcher: Mutex::new(fetcher),
                polls,
                polls_rx: Mutex::new(Some(rx)),
                counts: Arc::new(Mutex::new(counts)),
                deliveries: Lane::new(deliveries),
                pings: Lane::new(PING_PLACES),
                sent: Mutex::default(),
                activating: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// Starts the hub's tasks (they end with the daemon's shutdown); `state` renders the
    /// topics' documents.
    pub fn run(&self, state: AppState) {
        let rx = self
            .inner
            .polls_rx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(rx) = rx {
            tokio::spawn(prepare(self.inner.clone(), rx, state));
            tokio::spawn(send_loop(self.inner.clone(), self.inner.deliveries.clone()));
            tokio::spawn(send_loop(self.inner.clone(), self.inner.pings.clone()));
            tokio::spawn(sweep(self.inner.clone()));
            tokio::spawn(follow_config(self.inner.clone()));
        }
    }

    /// A poll ended: if it stored new entries, the hub delivers what changed. Never waits.
    pub fn poll_done(&self, report: &PollReport) {
        if report.new_entries.is_empty() {
            return;
        }
        {
            let config = self.inner.live.borrow();
            if !config.hub.enabled && config.publish.hubs.is_empty() {
                return;
            }
        }
        if self.inner.polls.try_send(report.source.clone()).is_err() {
            tracing::warn!(source = %report.source, "hub: too many polls waiting; this poll is not delivered to subscribers");
            self.inner.metrics.hub.record_delivery("dropped");
        }
    }

    /// The limits' counts, shared with the server's state for `/healthz`
    /// ([`status`]): the server reads them without a handle on the hub.
    pub fn counts(&self) -> Arc<Mutex<Counts>> {
        self.inner.counts.clone()
    }
}

/// The hub's part of `/healthz`, from the config, the metrics and the limits' counts.
pub fn status(
    config: &Config,
    metrics: &Metrics,
    counts: &Mutex<Counts>,
) -> Option<crate::daemon::status::HubStatus> {
    if !config.hub.enabled {
        return None;
    }
    let m = &metrics.hub;
    let per_topic = counts
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .per_topic(Utc::now());
    Some(crate::daemon::status::HubStatus {
        subscriptions: per_topic,
        delivered: m.deliveries("delivered"),
        failed: m.deliveries("failed"),
        dropped_subscriptions: m.dropped_total(),
        pending_verifications: u64::try_from(m.pending.get()).unwrap_or(0),
    })
}

/// `POST /hub`: a subscribe or unsubscribe request (§5.1).
pub(super) async fn endpoint(
    State(state): State<AppState>,
    Extension(hub): Extension<Hub>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let answer = match accept(&state, &hub, &headers, &body).await {
        Ok(()) => (
            StatusCode::ACCEPTED,
            "accepted; intent verification follows\n",
        )
            .into_response(),
        Err(r) => {
            let mut response = (r.status, format!("{}\n", r.reason)).into_response();
            if matches!(
                r.status,
                StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS
            ) {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
            }
            response
        }
    };
    state.metrics.hub.record_request(answer.status().as_u16());
    answer
}

/// Checks a request and starts its verification, or says why not.
async fn accept(
    state: &AppState,
    hub: &Hub,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), Refused> {
    let config = state.config();
    if !config.hub.enabled {
        return Err(refused(
            StatusCode::NOT_FOUND,
            "this instance runs no hub ([hub] enabled = false)",
        ));
    }
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.split(';').next().is_some_and(|t| {
                t.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        });
    if !form {
        return Err(refused(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the request must be application/x-www-form-urlencoded",
        ));
    }
    let request = parse(&config, body)?;
    let inner = &hub.inner;
    let fetcher = inner.fetcher();
    fetcher.check_address(&request.callback).map_err(|e| {
        refused(
            StatusCode::BAD_REQUEST,
            format!("hub.callback is not reachable from this hub: {e}"),
        )
    })?;
    let host = site_of(request.callback.as_str());
    {
        let mut counts = inner.counts();
        if request.subscribe {
            counts
                .allows(
                    config.hub.max_per_topic,
                    config.hub.max_per_callback_host,
                    &request.topic.url,
                    request.callback.as_str(),
                )
                .map_err(|reason| refused(StatusCode::FORBIDDEN, reason))?;
        } else if !counts.has(&request.topic.url, request.callback.as_str()) {
            // Nothing to unsubscribe: the callback is not asked anything.
            return Err(refused(
                StatusCode::NOT_FOUND,
                "hub.callback is not subscribed to hub.topic",
            ));
        }
        // A place among this host's verifications (and within its rate), or a 429.
        counts
            .start_verification(&host, std::time::Instant::now())
            .map_err(|busy| match busy {
                Busy::Host(reason) => refused(StatusCode::TOO_MANY_REQUESTS, reason),
                Busy::Hub(reason) => refused(StatusCode::SERVICE_UNAVAILABLE, reason),
            })?;
    }
    inner.metrics.hub.pending.inc();
    let inner = inner.clone();
    tokio::spawn(async move {
        let cancel = inner.shutdown.clone();
        tokio::select! {
            () = cancel.cancelled() => {}
            () = verify(&inner, request) => {}
        }
        inner.counts().end_verification(&host);
        inner.metrics.hub.pending.dec();
    });
    Ok(())
}

/// A form's fields (the first of each name), percent-decoded; a name or value that is
/// not UTF-8 once decoded is refused, named, rather than altered.
fn form_fields(body: &[u8]) -> Result<HashMap<String, String>, String> {
    let decode = |raw: &[u8]| -> Option<String> {
        let plus: Vec<u8> = raw
            .iter()
            .map(|&b| if b == b'+' { b' ' } else { b })
            .collect();
        percent_encoding::percent_decode(&plus)
            .decode_utf8()
            .ok()
            .map(std::borrow::Cow::into_owned)
    };
    let mut fields = HashMap::new();
    for pair in body.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        let mut kv = pair.splitn(2, |&b| b == b'=');
        let (k, v) = (kv.next().unwrap_or_default(), kv.next().unwrap_or_default());
        let name = decode(k).ok_or_else(|| "a field name is not valid UTF-8".to_string())?;
        let value = decode(v).ok_or_else(|| format!("{name} is not valid UTF-8"))?;
        fields.entry(name).or_insert(value);
    }
    Ok(fields)
}

/// The form's fields, checked.
fn parse(config: &Config, body: &[u8]) -> Result<Request, Refused> {
    let bad = |reason: String| refused(StatusCode::BAD_REQUEST, reason);
    let fields = form_fields(body).map_err(bad)?;
    let field = |name: &str| fields.get(name).map(String::as_str);
    let subscribe = match field("hub.mode") {
        Some("subscribe") => true,
        Some("unsubscribe") => false,
        Some(other) => {
            return Err(bad(format!(
                "hub.mode must be subscribe or unsubscribe, not {other:?}"
            )));
        }
        None => return Err(bad("hub.mode is missing".into())),
    };
    let callback = field("hub.callback").ok_or_else(|| bad("hub.callback is missing".into()))?;
    let callback = match Url::parse(callback) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => u,
        _ => {
            return Err(bad(
                "hub.callback must be an absolute http or https URL".into()
            ));
        }
    };
    let topic_url = field("hub.topic").ok_or_else(|| bad("hub.topic is missing".into()))?;
    let topic = Topic::parse(config, topic_url).ok_or_else(|| {
        bad(format!(
            "hub.topic {topic_url:?} is not a feed published here; topics are the self URLs of this instance's Atom, RSS and JSON feeds under {}",
            config.server.base_url
        ))
    })?;
    let secret = match field("hub.secret") {
        Some("") | None => None,
        Some(s) if s.len() > MAX_SECRET => {
            return Err(bad("hub.secret must be shorter than 200 bytes".into()));
        }
        Some(s) => Some(s.to_string()),
    };
    let lease = match field("hub.lease_seconds") {
        None | Some("") => config.hub.lease_default,
        Some(s) => {
            let secs: u64 = s
                .trim()
                .parse()
                .map_err(|_| bad("hub.lease_seconds must be a whole number of seconds".into()))?;
            Duration::from_secs(secs).clamp(config.hub.lease_min, config.hub.lease_max)
        }
    };
    Ok(Request {
        subscribe,
        topic,
        callback,
        secret,
        lease,
    })
}

impl Inner {
    fn fetcher(&self) -> Fetcher {
        self.fetcher
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A subscription was removed from the store: counted out, and the gauge follows.
    fn removed(&self, topic: &str, callback: &str) {
        self.counts().remove(topic, callback);
        self.refresh_gauge();
    }

    /// The active subscriptions per topic, in the metrics.
    fn refresh_gauge(&self) {
        let per_topic = self.counts().per_topic(Utc::now());
        self.metrics.hub.set_subscriptions(&per_topic);
    }

    fn enqueue(&self, d: Delivery) {
        let lane = match d {
            Delivery::Content { .. } => &self.deliveries,
            Delivery::Ping { .. } => &self.pings,
        };
        let dropped = {
            let (host, bytes) = (d.host(), d.bytes());
            lane.queue().push(&host, d, bytes)
        };
        for d in dropped {
            tracing::warn!(
                host = %d.host(),
                "hub: delivery queue full; the oldest delivery of the host with the most queued is dropped"
            );
            match d {
                Delivery::Content { .. } => self.metrics.hub.record_delivery("dropped"),
                Delivery::Ping { .. } => self.metrics.hub.record_ping("failed"),
            }
        }
        lane.ready.notify_one();
    }
}

/// A random challenge: 160 bits of the system's CSPRNG, in hex.
fn challenge() -> String {
    crate::daemon::websub::random_hex()[..40].to_string()
}

/// `callback` with `pairs` added to its query.
fn with_query(callback: &Url, pairs: &[(&str, &str)]) -> Url {
    let mut url = callback.clone();
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in pairs {
            q.append_pair(k, v);
        }
    }
    url
}

/// Verifies a request's intent (§5.3) and, once confirmed, applies it.
async fn verify(inner: &Arc<Inner>, r: Request) {
    let mode = if r.subscribe {
        "subscribe"
    } else {
        "unsubscribe"
    };
    let challenge = challenge();
    let lease = r.lease.as_secs().to_string();
    let mut pairs = vec![
        ("hub.mode", mode),
        ("hub.topic", r.topic.url.as_str()),
        ("hub.challenge", challenge.as_str()),
    ];
    if r.subscribe {
        pairs.push(("hub.lease_seconds", lease.as_str()));
    }
    let url = with_query(&r.callback, &pairs);
    let answer = inner.fetcher().get_small(&url, ANSWER_LIMIT).await;
    let confirmed = match &answer {
        Ok((status, body)) => (200..300).contains(status) && body == challenge.as_bytes(),
        Err(_) => false,
    };
    if !confirmed {
        let result = if answer.is_err() {
            "failed"
        } else {
            "rejected"
        };
        let why = match answer {
            Ok((status, _)) if (200..300).contains(&status) => {
                "the answer was not the challenge".to_string()
            }
            Ok((status, _)) => format!("the callback answered {status}"),
            Err(e) => e.to_string(),
        };
        tracing::info!(topic = %r.topic.url, callback_host = r.callback.host_str().unwrap_or(""), %why, "hub: {mode} not verified");
        inner.metrics.hub.record_verification(mode, result);
        return;
    }
    let callback = r.callback.to_string();
    let denied = {
        // Decided and stored under the lock; the denial is sent after it is released.
        let _one = inner.activating.lock().await;
        if r.subscribe {
            let config = inner.live.borrow().clone();
            let allowed = inner.counts().allows(
                config.hub.max_per_topic,
                config.hub.max_per_callback_host,
                &r.topic.url,
                &callback,
            );
            match allowed {
                Err(reason) => Some(reason),
                Ok(()) => {
                    let sub = HubSubscription {
                        topic: r.topic.url.clone(),
                        callback,
                        secret: r.secret.clone(),
                        expires: Utc::now() + r.lease,
                        failures: 0,
                        failing_since: None,
                    };
                    let (topic, cb, expires) =
                        (sub.topic.clone(), sub.callback.clone(), sub.expires);
                    match inner.store.call(move |s| s.hub_put(&sub)).await {
                        Ok(()) => {
                            inner.counts().add(&topic, &cb, expires);
                            tracing::info!(topic = %r.topic.url, lease_s = r.lease.as_secs(), "hub: subscription confirmed");
                            inner.metrics.hub.record_verification(mode, "confirmed");
                        }
                        Err(error) => {
                            tracing::warn!(%error, "hub: cannot store a confirmed subscription");
                        }
                    }
                    None
                }
            }
        } else {
            let (topic, cb) = (r.topic.url.clone(), callback.clone());
            match inner.store.call(move |s| s.hub_remove(&topic, &cb)).await {
                Ok(_) => {
                    inner.counts().remove(&r.topic.url, &callback);
                    tracing::info!(topic = %r.topic.url, "hub: unsubscribed");
                    inner.metrics.hub.record_verification(mode, "confirmed");
                }
                Err(error) => tracing::warn!(%error, "hub: cannot remove a subscription"),
            }
            None
        }
    };
    inner.refresh_gauge();
    if let Some(reason) = denied {
        deny(inner, &r, &reason).await;
    }
}

/// Tells the callback its subscription was denied (§5.2); the answer is not waited for
/// beyond `[fetch] timeout` and not retried.
async fn deny(inner: &Arc<Inner>, r: &Request, reason: &str) {
    tracing::info!(topic = %r.topic.url, %reason, "hub: subscription denied");
    inner.metrics.hub.record_verification("denied", "denied");
    let url = with_query(
        &r.callback,
        &[
            ("hub.mode", "denied"),
            ("hub.topic", r.topic.url.as_str()),
            ("hub.reason", reason),
        ],
    );
    let _ = inner.fetcher().get_small(&url, ANSWER_LIMIT).await;
}

/// Rebuilds the HTTP client at each reload (`[fetch] allow_networks`, `timeout`).
async fn follow_config(inner: Arc<Inner>) {
    let mut live = inner.live.clone();
    loop {
        tokio::select! {
            () = inner.shutdown.cancelled() => return,
            changed = live.changed() => {
                if changed.is_err() {
                    return;
                }
                let config = live.borrow_and_update().clone();
                match Fetcher::new(&config.fetch) {
                    Ok(f) => *inner.fetcher.lock().unwrap_or_else(|e| e.into_inner()) = f,
                    Err(error) => tracing::warn!(%error, "hub: keeping the old HTTP client"),
                }
            }
        }
    }
}

/// Drops expired subscriptions every [`SWEEP`] (or `[hub] lease_min`, when shorter) and
/// at start, and keeps the gauge.
async fn sweep(inner: Arc<Inner>) {
    let lease_min = inner.live.borrow().hub.lease_min;
    let mut every = tokio::time::interval(SWEEP.min(lease_min));
    loop {
        tokio::select! {
            () = inner.shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        let now = Utc::now();
        let expired = inner.counts().expired(now);
        if expired.is_empty() {
            inner.refresh_gauge();
            continue;
        }
        // Under the lock, so a renewal being stored is not removed.
        let _one = inner.activating.lock().await;
        let removed = inner
            .store
            .call(move |s| {
                let mut removed = Vec::new();
                for (topic, callback) in expired {
                    let ended = s
                        .hub_get(&topic, &callback)?
                        .is_none_or(|sub| sub.expires <= now);
                    if ended {
                        s.hub_remove(&topic, &callback)?;
                        removed.push((topic, callback));
                    }
                }
                Ok(removed)
            })
            .await;
        match removed {
            Ok(removed) => {
                for (topic, callback) in removed {
                    inner.metrics.hub.record_dropped("expired");
                    inner.counts().remove(&topic, &callback);
                }
            }
            Err(error) => tracing::warn!(%error, "hub: cannot drop expired subscriptions"),
        }
        inner.refresh_gauge();
    }
}

/// Works out, for each poll with new entries, which topics changed, and queues their
/// documents for their subscribers (and pings for `[publish] hubs`).
async fn prepare(inner: Arc<Inner>, mut polls: mpsc::Receiver<String>, state: AppState) {
    loop {
        let source = tokio::select! {
            () = inner.shutdown.cancelled() => return,
            s = polls.recv() => match s {
                Some(s) => s,
                None => return,
            },
        };
        let config = inner.live.borrow().clone();
        for hub in &config.publish.hubs {
            for topic in topics_of_source(&config, &source) {
                inner.enqueue(Delivery::Ping {
                    hub: hub.clone(),
                    topic,
                    attempts: 0,
                });
            }
        }
        if !config.hub.enabled {
            continue;
        }
        // Digests of topics nobody subscribes to any longer are forgotten.
        let subscribed = inner.counts().per_topic(chrono::DateTime::<Utc>::MIN_UTC);
        inner
            .sent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|topic, _| subscribed.contains_key(topic));
        let subs = match inner.store.call(|s| s.hub_subscriptions()).await {
            Ok(subs) => subs,
            Err(error) => {
                tracing::warn!(%error, "hub: cannot read the subscriptions");
                continue;
            }
        };
        let now = Utc::now();
        // Each topic is parsed once, however many subscribe to it.
        let mut grouped: BTreeMap<String, Vec<HubSubscription>> = BTreeMap::new();
        for sub in subs.into_iter().filter(|s| s.expires > now) {
            grouped.entry(sub.topic.clone()).or_default().push(sub);
        }
        let mut by_topic: BTreeMap<String, (Topic, Vec<HubSubscription>)> = BTreeMap::new();
        for (text, subs) in grouped {
            let Some(topic) = Topic::parse(&config, &text) else {
                continue;
            };
            if topic.takes_source(&config, &source) {
                by_topic
                    .entry(topic.url.clone())
                    .or_insert_with(|| (topic, Vec::new()))
                    .1
                    .extend(subs);
            }
        }
        for (url, (topic, subs)) in by_topic {
            let (for_render, t) = (state.clone(), topic.clone());
            let rendered = state
                .store
                .call(move |store| Ok(t.render(&for_render, store)))
                .await;
            let rendered = match rendered {
                Ok(Ok(r)) => r,
                Ok(Err(error)) => {
                    tracing::warn!(topic = %url, %error, "hub: cannot render a topic");
                    continue;
                }
                Err(error) => {
                    tracing::warn!(topic = %url, %error, "hub: cannot render a topic");
                    continue;
                }
            };
            let digest = blake3::hash(&rendered.body);
            let unchanged = inner
                .sent
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(url.clone(), digest)
                == Some(digest);
            if unchanged {
                continue;
            }
            for sub in subs {
                inner.enqueue(Delivery::Content {
                    topic: url.clone(),
                    callback: sub.callback,
                    secret: sub.secret,
                    body: rendered.body.clone(),
                    content_type: rendered.content_type,
                    attempts: 0,
                });
            }
        }
    }
}

/// Sends a lane's queued deliveries, as many at a time as it has places (`[hub]
/// deliveries`, or [`PING_PLACES`]) and one per host.
async fn send_loop(inner: Arc<Inner>, lane: Arc<Lane>) {
    loop {
        let place = tokio::select! {
            () = inner.shutdown.cancelled() => return,
            p = lane.places.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let (host, delivery) = loop {
            let next = lane.queue().pop();
            if let Some(next) = next {
                break next;
            }
            tokio::select! {
                () = inner.shutdown.cancelled() => return,
                () = lane.ready.notified() => {}
            }
        };
        let (inner, lane) = (inner.clone(), lane.clone());
        tokio::spawn(async move {
            let cancel = inner.shutdown.clone();
            tokio::select! {
                () = cancel.cancelled() => {}
                () = attempt(&inner, delivery) => {}
            }
            lane.queue().done(&host);
            drop(place);
            // The host's next delivery may go now.
            lane.ready.notify_one();
        });
    }
}

/// `X-Hub-Signature: sha256=…` of `body` with `secret` (§7).
fn signature(secret: &str, body: &[u8]) -> Option<String> {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).ok()?;
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    Some(format!("sha256={}", crate::model::hex(&bytes)))
}

/// Whether a subscription with `failures` failed deliveries in a row, the first at
/// `since`, is dropped.
fn worn_out(failures: u32, since: chrono::DateTime<Utc>, now: chrono::DateTime<Utc>) -> bool {
    failures >= DROP_AFTER
        && (now - since)
            .to_std()
            .is_ok_and(|elapsed| elapsed >= DROP_SPAN)
}

/// One attempt of a delivery or ping: done, failed for good, or queued again later.
async fn attempt(inner: &Arc<Inner>, d: Delivery) {
    match d {
        Delivery::Ping {
            hub,
            topic,
            attempts,
        } => {
            let attempts = attempts + 1;
            let body = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("hub.mode", "publish")
                .append_pair("hub.url", &topic)
                .finish();
            let mut headers = reqwest::header::HeaderMap::new();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            );
            match inner.fetcher().post(&hub, headers, body.into_bytes()).await {
                Ok(_) => inner.metrics.hub.record_ping("sent"),
                Err(error) => {
                    match retry_wait(&error, attempts).filter(|_| attempts < PING_ATTEMPTS) {
                        Some(wait) => {
                            later(
                                inner,
                                wait,
                                Delivery::Ping {
                                    hub,
                                    topic,
                                    attempts,
                                },
                            );
                        }
                        None => {
                            tracing::warn!(hub = %hub, %topic, %error, "hub: publish ping failed");
                            inner.metrics.hub.record_ping("failed");
                        }
                    }
                }
            }
        }
        Delivery::Content {
            topic,
            callback,
            secret,
            body,
            content_type,
            attempts,
        } => {
            let attempts = attempts + 1;
            // Unsubscribed or dropped meanwhile: not sent.
            let (t, c) = (topic.clone(), callback.clone());
            let still = inner
                .store
                .call(move |s| s.hub_get(&t, &c))
                .await
                .ok()
                .flatten();
            let Some(sub) = still.filter(|s| s.expires > Utc::now()) else {
                return;
            };
            let Ok(url) = Url::parse(&callback) else {
                return;
            };
            let config = inner.live.borrow().clone();
            let mut headers = reqwest::header::HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            for link in websub_links(&config, &topic) {
                headers.append(header::LINK, link);
            }
            if let Some(sig) = secret
                .as_deref()
                .and_then(|s| signature(s, &body))
                .and_then(|s| HeaderValue::from_str(&s).ok())
            {
                headers.insert("x-hub-signature", sig);
            }
            let fetcher = inner.fetcher();
            let post = fetcher.post(&url, headers, body.to_vec());
            let result = tokio::time::timeout(DELIVERY_TIMEOUT, post)
                .await
                .unwrap_or(Err(FetchError::Timeout(DELIVERY_TIMEOUT)));
            let error = match result {
                Ok(_) => {
                    inner.metrics.hub.record_delivery("delivered");
                    if sub.failures > 0 {
                        record_outcome(inner, &topic, &callback, true).await;
                    }
                    return;
                }
                Err(e) => e,
            };
            let host = url.host_str().unwrap_or("").to_string();
            if let FetchError::Status { status: 410, .. } = error {
                tracing::info!(%topic, callback_host = %host, "hub: the subscriber answered 410 Gone; subscription dropped");
                let _held = inner.activating.lock().await;
                let (t, c) = (sub.topic.clone(), sub.callback.clone());
                let removed = inner
                    .store
                    .call(move |s| s.hub_remove(&sub.topic, &sub.callback))
                    .await;
                if matches!(removed, Ok(true)) {
                    inner.metrics.hub.record_dropped("gone");
                    inner.removed(&t, &c);
                }
                return;
            }
            if let Some(wait) = retry_wait(&error, attempts) {
                tracing::warn!(%topic, callback_host = %host, %error, attempts, retry_in = ?wait, "hub: delivery failed; retrying");
                inner.metrics.hub.record_delivery("retry");
                later(
                    inner,
                    wait,
                    Delivery::Content {
                        topic,
                        callback,
                        secret,
                        body,
                        content_type,
                        attempts,
                    },
                );
                return;
            }
            tracing::warn!(%topic, callback_host = %host, %error, attempts, "hub: delivery failed; given up");
            inner.metrics.hub.record_delivery("failed");
            record_outcome(inner, &topic, &callback, false).await;
        }
    }
}

/// Records a delivery's outcome on the subscription as it is in the store now (it may
/// have been renewed, unsubscribed or dropped while the delivery was under way: a
/// subscription gone meanwhile is not written back). A failure counts towards
/// [`DROP_AFTER`]; a success clears the count. Under the `activating` lock, as every other
/// change of a subscription is.
async fn record_outcome(inner: &Arc<Inner>, topic: &str, callback: &str, delivered: bool) {
    let _held = inner.activating.lock().await;
    let (t, c) = (topic.to_string(), callback.to_string());
    let Ok(Some(sub)) = inner.store.call(move |s| s.hub_get(&t, &c)).await else {
        return;
    };
    if delivered {
        let healed = HubSubscription {
            failures: 0,
            failing_since: None,
            ..sub
        };
        let _ = inner.store.call(move |s| s.hub_put(&healed)).await;
        return;
    }
    let now = Utc::now();
    let since = sub.failing_since.unwrap_or(now);
    let failures = sub.failures.saturating_add(1);
    if worn_out(failures, since, now) {
        let host = site_of(callback);
        tracing::warn!(%topic, callback_host = %host, failures, "hub: subscription dropped after repeated failed deliveries");
        let (t, c) = (topic.to_string(), callback.to_string());
        let removed = inner.store.call(move |s| s.hub_remove(&t, &c)).await;
        if matches!(removed, Ok(true)) {
            inner.metrics.hub.record_dropped("failures");
            inner.removed(topic, callback);
        }
    } else {
        let updated = HubSubscription {
            failures,
            failing_since: Some(since),
            ..sub
        };
        let _ = inner.store.call(move |s| s.hub_put(&updated)).await;
    }
}

/// Queues `d` again after `wait` (the wait holds no sending place).
fn later(inner: &Arc<Inner>, wait: Duration, d: Delivery) {
    let inner = inner.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = inner.shutdown.cancelled() => {}
            () = tokio::time::sleep(wait) => inner.enqueue(d),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_in_hex() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?").as_deref(),
            Some("sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        );
    }

    #[test]
    fn repeated_failures_drop_only_over_a_long_enough_span() {
        let now = Utc::now();
        let day = chrono::Duration::hours(24);
        assert!(!worn_out(4, now - day * 10, now));
        assert!(!worn_out(5, now - chrono::Duration::hours(23), now));
        assert!(worn_out(5, now - day, now));
        assert!(worn_out(9, now - day * 3, now));
    }

    #[test]
    fn form_fields_must_be_utf8() {
        let f =
            form_fields(b"hub.mode=subscribe&hub.secret=a+b%21&hub.mode=x&&flag").expect("form");
        assert_eq!(f["hub.mode"], "subscribe");
        assert_eq!(f["hub.secret"], "a b!");
        assert_eq!(f["flag"], "");
        let e = form_fields(b"hub.mode=subscribe&hub.secret=%ff%ff").unwrap_err();
        assert_eq!(e, "hub.secret is not valid UTF-8");
        let e = form_fields(b"hub.callback=\xff").unwrap_err();
        assert_eq!(e, "hub.callback is not valid UTF-8");
        assert!(form_fields(b"%fe=1").is_err());
        assert_eq!(
            form_fields("hub.topic=%C3%A9".as_bytes()).expect("utf-8")["hub.topic"],
            "\u{e9}"
        );
    }

    #[test]
    fn challenges_differ() {
        let (a, b) = (challenge(), challenge());
        assert_eq!(a.len(), 40);
        assert_ne!(a, b);
    }
}
