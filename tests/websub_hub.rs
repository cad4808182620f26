//! The WebSub hub (`POST /hub`) through the real daemon: a subscriber written here, on
//! loopback (`[fetch] allow_networks` covers it), answers intent verifications and records
//! deliveries; an origin's feed gains entries. Discovery headers and links in every format,
//! verification, signed deliveries of the right document, refusals, limits, leases,
//! restarts, 410 and 5xx answers, the address guard, a hanging subscriber, publish pings.

mod support;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use tokio::sync::mpsc;

use support::{Origin, Route, all_stored, config_prelude, config_raw, health, small_rss, start};
use support::{get, source_toml};

const LOOPBACK: &str = "allow_networks = [\"127.0.0.0/8\"]";
const TOPIC: &str = "http://feeds.test/feed.atom";

/// A verification request (a GET) the subscriber got: its query.
type Verification = HashMap<String, String>;

/// A POST the subscriber got.
#[derive(Debug)]
struct Delivery {
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

/// How the subscriber answers a verification.
#[derive(Clone)]
enum Check {
    /// 200 with the challenge.
    Echo,
    /// 200 with something else.
    Wrong,
    /// Never answers.
    Hang,
    /// Waits until as many verifications as the barrier counts have come, then echoes.
    Together(Arc<tokio::sync::Barrier>),
    /// As `Together`, but a denial is never answered.
    TogetherDenialHangs(Arc<tokio::sync::Barrier>),
}

/// How the subscriber answers a delivery.
#[derive(Clone)]
enum Answer {
    Status(u16),
    /// Never answers.
    Hang,
    /// Waits until the test releases it, then answers with the status.
    Held(Arc<tokio::sync::Notify>, u16),
}

#[derive(Clone)]
struct SubState {
    gets: mpsc::UnboundedSender<Verification>,
    posts: mpsc::UnboundedSender<Delivery>,
    check: Check,
    /// Answers to deliveries in order; then 200.
    plan: Arc<Mutex<VecDeque<Answer>>>,
}

/// A WebSub subscriber on 127.0.0.1:0 (or another loopback address: another host).
struct Subscriber {
    base: String,
    gets: mpsc::UnboundedReceiver<Verification>,
    posts: mpsc::UnboundedReceiver<Delivery>,
}

impl Subscriber {
    async fn start(check: Check, plan: Vec<Answer>) -> Subscriber {
        Subscriber::start_on("127.0.0.1", check, plan).await
    }

    async fn start_on(ip: &str, check: Check, plan: Vec<Answer>) -> Subscriber {
        let (gets_tx, gets) = mpsc::unbounded_channel();
        let (posts_tx, posts) = mpsc::unbounded_channel();
        let state = SubState {
            gets: gets_tx,
            posts: posts_tx,
            check,
            plan: Arc::new(Mutex::new(plan.into())),
        };
        let app = axum::Router::new()
            .fallback(
                axum::routing::get(verification)
                    .post(delivery)
                    .with_state(state),
            )
            .into_make_service();
        let listener = tokio::net::TcpListener::bind((ip, 0)).await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Subscriber { base, gets, posts }
    }

    fn callback(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn next_verification(&mut self) -> Verification {
        tokio::time::timeout(Duration::from_secs(30), self.gets.recv())
            .await
            .expect("a verification request came")
            .expect("subscriber open")
    }

    async fn next_delivery(&mut self) -> Delivery {
        tokio::time::timeout(Duration::from_secs(30), self.posts.recv())
            .await
            .expect("a delivery came")
            .expect("subscriber open")
    }
}

async fn verification(State(state): State<SubState>, uri: Uri) -> Response {
    let query: Verification = url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    let challenge = query.get("hub.challenge").cloned().unwrap_or_default();
    let _ = state.gets.send(query);
    match (&state.check, query_mode(&uri).as_deref()) {
        // A denial is only taken note of.
        (Check::TogetherDenialHangs(_), Some("denied")) => std::future::pending().await,
        (_, Some("denied")) => StatusCode::OK.into_response(),
        (Check::Echo, _) => (StatusCode::OK, challenge).into_response(),
        (Check::Wrong, _) => (StatusCode::OK, format!("not-{challenge}")).into_response(),
        (Check::Hang, _) => std::future::pending().await,
        (Check::Together(barrier) | Check::TogetherDenialHangs(barrier), _) => {
            barrier.wait().await;
            (StatusCode::OK, challenge).into_response()
        }
    }
}

fn query_mode(uri: &Uri) -> Option<String> {
    url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "hub.mode")
        .map(|(_, v)| v.into_owned())
}

async fn delivery(
    State(state): State<SubState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let _ = state.posts.send(Delivery {
        path: uri.path().to_string(),
        headers,
        body,
    });
    let answer = state
        .plan
        .lock()
        .expect("plan")
        .pop_front()
        .unwrap_or(Answer::Status(200));
    match answer {
        Answer::Status(code) => StatusCode::from_u16(code).expect("status").into_response(),
        Answer::Hang => std::future::pending().await,
        Answer::Held(release, code) => {
            release.notified().await;
            StatusCode::from_u16(code).expect("status").into_response()
        }
    }
}

/// A request's fields, the status it gets and a part of its reason.
type Case<'a> = (Vec<(&'a str, &'a str)>, u16, &'a str);

/// POSTs a form to the hub; returns the status and body.
async fn hub_request(base: &str, fields: &[(&str, &str)]) -> (u16, String) {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    let (status, _, body) = hub_raw(base, body).await;
    (status, body)
}

/// POSTs a form body as is; returns the status, `Retry-After` and body.
async fn hub_raw(base: &str, body: String) -> (u16, Option<String>, String) {
    let response = reqwest::Client::new()
        .post(format!("{base}/hub"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (status, retry_after, response.text().await.expect("body"))
}

async fn subscribe(base: &str, topic: &str, callback: &str, extra: &[(&str, &str)]) -> u16 {
    let mut fields = vec![
        ("hub.mode", "subscribe"),
        ("hub.topic", topic),
        ("hub.callback", callback),
    ];
    fields.extend_from_slice(extra);
    let (status, body) = hub_request(base, &fields).await;
    assert_eq!(status, 202, "{body}");
    status
}

/// The hub's part of `/healthz` once `pred` holds for it (fails after 30 s).
async fn hub_status(base: &str, pred: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let h = health(base).await["hub"].clone();
        if pred(&h) {
            return h;
        }
        assert!(Instant::now() < deadline, "the hub never got there: {h}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn subscriptions(h: &serde_json::Value, topic: &str) -> u64 {
    h["subscriptions"][topic].as_u64().unwrap_or(0)
}

async fn metrics(base: &str) -> String {
    get(&format!("{base}/metrics")).await.2
}

fn header<'a>(d: &'a Delivery, name: &str) -> &'a str {
    d.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

fn links(headers: &reqwest::header::HeaderMap) -> Vec<String> {
    headers
        .get_all("link")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect()
}

fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A daemon polling source `a` (on `origin`, every second) with `extra` appended to the
/// config; its first poll stored.
async fn daemon_with(
    dir: &std::path::Path,
    origin: &Origin,
    fetch_extra: &str,
    extra: &str,
) -> (
    tributary::app::Daemon,
    tokio::sync::broadcast::Receiver<tributary::ingest::poll::PollReport>,
    String,
) {
    let text = config_prelude(fetch_extra)
        + &source_toml("a", &origin.url("/a.xml"), "1s", "tags = [\"news\"]")
        + "[[feed]]\nname = \"picked\"\nsources = [\"a\"]\n\n"
        + extra;
    let mut daemon = start(config_raw(dir, &text)).await;
    let mut reports = daemon.take_reports();
    all_stored(&mut reports, &["a"]).await;
    let base = format!("http://{}", daemon.local_addr());
    (daemon, reports, base)
}

fn origin_feed(origin: &Origin, n: usize) {
    origin.set(
        "/a.xml",
        Route::feed(small_rss("a", n), "application/rss+xml"),
    );
}

/// Waits for a poll of `a` that stored new entries.
async fn new_entries_stored(
    reports: &mut tokio::sync::broadcast::Receiver<tributary::ingest::poll::PollReport>,
) {
    support::next(reports, |r| r.source == "a" && !r.new_entries.is_empty()).await;
}

#[tokio::test]
async fn every_published_feed_advertises_the_hub() {
    let origin = Origin::start().await;
    origin_feed(&origin, 2);
    let dir = tempfile::tempdir().expect("tempdir");
    let (daemon, _reports, base) = daemon_with(dir.path(), &origin, LOOPBACK, "").await;
    let client = reqwest::Client::new();
    for path in [
        "/feed.atom",
        "/feed.rss",
        "/feed.json",
        "/sources/a.atom",
        "/tags/news.rss",
        "/feeds/picked.json",
        "/feed.atom?limit=1",
    ] {
        let response = client
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect("get");
        assert_eq!(response.status(), 200, "{path}");
        let l = links(response.headers());
        assert_eq!(
            l,
            [
                "<http://feeds.test/hub>; rel=\"hub\"".to_string(),
                format!("<http://feeds.test{path}>; rel=\"self\"")
            ],
            "{path}"
        );
        let body = response.text().await.expect("body");
        let self_url = format!("http://feeds.test{path}");
        if path.contains(".atom") {
            let feed = support::assert_valid_atom(&body, &self_url);
            assert!(
                feed.links
                    .iter()
                    .any(|l| l.rel == "hub" && l.href == "http://feeds.test/hub"),
                "{body}"
            );
        } else if path.contains(".rss") {
            let channel = support::assert_valid_rss(&body, &self_url);
            let atom = channel.atom_ext.expect("atom links");
            assert!(
                atom.links
                    .iter()
                    .any(|l| l.rel == "hub" && l.href == "http://feeds.test/hub"),
                "{body}"
            );
        } else {
            let doc: serde_json::Value = serde_json::from_str(&body).expect("json");
            assert_eq!(
                doc["hubs"],
                serde_json::json!([{"type": "WebSub", "url": "http://feeds.test/hub"}])
            );
        }
    }
    // The HTML views are no topics.
    let response = client.get(format!("{base}/")).send().await.expect("get");
    assert!(links(response.headers()).is_empty());
    daemon.shutdown().await.expect("stops");

    // Without the hub, only `[publish] hubs` are advertised.
    let dir = tempfile::tempdir().expect("tempdir");
    let text = config_prelude(LOOPBACK).replace(
        "max_items = 500\n",
        "max_items = 500\nhubs = [\"http://127.0.0.1:9/hub\"]\n",
    ) + &source_toml("a", &origin.url("/a.xml"), "1s", "")
        + "[hub]\nenabled = false\n";
    let daemon = start(config_raw(dir.path(), &text)).await;
    let base = format!("http://{}", daemon.local_addr());
    let response = client
        .get(format!("{base}/feed.atom"))
        .send()
        .await
        .expect("get");
    assert_eq!(
        links(response.headers()),
        [
            "<http://127.0.0.1:9/hub>; rel=\"hub\"",
            "<http://feeds.test/feed.atom>; rel=\"self\""
        ]
    );
    let body = response.text().await.expect("body");
    assert!(!body.contains("feeds.test/hub"), "{body}");
    let (status, reason) = hub_request(
        &base,
        &[
            ("hub.mode", "subscribe"),
            ("hub.topic", TOPIC),
            ("hub.callback", "http://127.0.0.1:9/cb"),
        ],
    )
    .await;
    assert_eq!(status, 404, "{reason}");
    daemon.shutdown().await.expect("stops");

    // Neither: nothing advertised.
    let dir = tempfile::tempdir().expect("tempdir");
    let text = config_prelude(LOOPBACK)
        + &source_toml("a", &origin.url("/a.xml"), "1s", "")
        + "[hub]\nenabled = false\n";
    let daemon = start(config_raw(dir.path(), &text)).await;
    let base = format!("http://{}", daemon.local_addr());
    for path in ["/feed.atom", "/feed.rss", "/feed.json"] {
        let response = client
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect("get");
        assert!(links(response.headers()).is_empty());
        let body = response.text().await.expect("body");
        assert!(!body.contains("hub"), "{body}");
    }
    daemon.shutdown().await.expect("stops");
}

#[tokio::test]
async fn a_verified_subscriber_gets_the_new_document_signed() {
    let origin = Origin::start().await;
    origin_feed(&origin, 2);
    let mut sub = Subscriber::start(Check::Echo, vec![]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (daemon, mut reports, base) = daemon_with(dir.path(), &origin, LOOPBACK, "").await;
    let callback = sub.callback("/cb?user=7");
    subscribe(
        &base,
        TOPIC,
        &callback,
        &[("hub.secret", "s3cret"), ("hub.lease_seconds", "86400")],
    )
    .await;
    let v = sub.next_verification().await;
    assert_eq!(v["hub.mode"], "subscribe");
    assert_eq!(v["hub.topic"], TOPIC);
    assert_eq!(v["hub.lease_seconds"], "86400");
    assert_eq!(v["user"], "7", "the callback's own query is kept");
    assert!(v["hub.challenge"].len() >= 32);
    hub_status(&base, |h| {
        subscriptions(h, TOPIC) == 1 && h["pending_verifications"] == 0
    })
    .await;
    // Another topic's subscriber gets nothing of this one's.
    let mut other = Subscriber::start(Check::Echo, vec![]).await;
    subscribe(
        &base,
        "http://feeds.test/sources/a.atom",
        &other.callback("/cb"),
        &[],
    )
    .await;
    other.next_verification().await;
    hub_status(&base, |h| {
        subscriptions(h, "http://feeds.test/sources/a.atom") == 1
    })
    .await;

    origin_feed(&origin, 3);
    new_entries_stored(&mut reports).await;
    let d = sub.next_delivery().await;
    assert_eq!(d.path, "/cb");
    assert_eq!(
        header(&d, "content-type"),
        "application/atom+xml; charset=utf-8"
    );
    assert_eq!(
        header(&d, "x-hub-signature"),
        format!("sha256={}", hmac_hex("s3cret", &d.body))
    );
    let link: Vec<&str> = d
        .headers
        .get_all("link")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert_eq!(
        link,
        [
            "<http://feeds.test/hub>; rel=\"hub\"",
            "<http://feeds.test/feed.atom>; rel=\"self\""
        ]
    );
    // The document is the topic's current one, as GET serves it.
    let (_, _, served) = get(&format!("{base}/feed.atom")).await;
    assert_eq!(String::from_utf8_lossy(&d.body), served);
    let feed = support::assert_valid_atom(&served, TOPIC);
    assert_eq!(feed.entries.len(), 3);
    // The source's own feed went to its subscriber, unsigned (no secret).
    let d2 = other.next_delivery().await;
    assert!(d2.headers.get("x-hub-signature").is_none());
    let (_, _, own) = get(&format!("{base}/sources/a.atom")).await;
    assert_eq!(String::from_utf8_lossy(&d2.body), own);

    hub_status(&base, |h| h["delivered"] == 2).await;
    let m = metrics(&base).await;
    assert!(
        m.contains("tributary_hub_deliveries_total{result=\"delivered\"} 2"),
        "{m}"
    );
    assert!(
        m.contains("tributary_hub_subscriptions{topic=\"http://feeds.test/feed.atom\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("tributary_hub_verifications_total{mode=\"subscribe\",result=\"confirmed\"} 2"),
        "{m}"
    );
    // Tampering breaks the signature (the check is a real one).
    let mut tampered = d.body.to_vec();
    tampered.push(b' ');
    assert_ne!(
        header(&d, "x-hub-signature"),
        format!("sha256={}", hmac_hex("s3cret", &tampered))
    );
    daemon.shutdown().await.expect("stops");
}

#[tokio::test]
async fn bad_requests_are_refused_at_once_with_a_reason() {
    let origin = Origin::start().await;
    origin_feed(&origin, 1);
    let mut sub = Subscriber::start(Check::Echo, vec![]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (daemon, _reports, base) = daemon_with(dir.path(), &origin, LOOPBACK, "").await;
    let cb = sub.callback("/cb");
    let long_secret = "x".repeat(200);
    let cases: Vec<Case> = vec![
        (
            vec![
                ("hub.mode", "subscribe"),
                ("hub.topic", "https://elsewhere.example/feed.atom"),
                ("hub.callback", &cb),
            ],
            400,
            "not a feed published here",
        ),
        (
            vec![
                ("hub.mode", "subscribe"),
                ("hub.topic", "http://feeds.test/sources/nope.atom"),
                ("hub.callback", &cb),
            ],
            400,
            "not a feed published here",
        ),
        (
            vec![
                ("hub.mode", "subscribe"),
                ("hub.topic", "http://feeds.test/"),
                ("hub.callback", &cb),
            ],
            400,
            "not a feed published here",
        ),
        (
            vec![
                ("hub.mode", "subscribe"),
                ("hub.topic", TOPIC),
                ("hub.callback", "ftp://127.0.0.1/cb"),
            ],
            400,
            "absolute http or https",
        ),
        (
            vec![
                ("hub.mode", "subscribe"),
                ("hub.topic", TOPIC),
                ("hub.callback", "/relative"),
            ],
            400,
            "absolute http or https",
        ),
        (
            vec![
                ("hub.mode", "publish"),
                ("hub.topic", TOPIC),
                ("hub.callback", &cb),
            ],
            400,
            "hub.mode",
        ),
        (
            vec![
                ("hub.mode", "subscribe"),
                ("hub.topic", TOPIC),
                ("hub.callback", &cb),
                ("hub.secret", &long_secret),
            ],
            400,
            "shorter than 200 bytes",
        ),
        (
            vec![
                ("hub.mode", "subscribe"),
                ("hub.topic", TOPIC),
                ("hub.callback", &cb),
                ("hub.lease_seconds", "soon"),
            ],
            400,
            "lease_seconds",
        ),
    ];
    for (fields, status, reason) in cases {
        let (got, body) = hub_request(&base, &fields).await;
        assert_eq!(got, status, "{fields:?}: {body}");
        assert!(body.contains(reason), "{fields:?}: {body}");
    }
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{base}/hub"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 415);
    let r = client
        .post(format!("{base}/hub"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("hub.mode=subscribe&x={}", "a".repeat(9000)))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 413, "the body is capped");
    let m = metrics(&base).await;
    assert!(
        m.contains("tributary_hub_requests_total{status=\"400\"} 8"),
        "{m}"
    );
    assert!(
        m.contains("tributary_hub_requests_total{status=\"415\"} 1"),
        "{m}"
    );
    // None of them reached the callback: the first verification it sees is this one's.
    subscribe(&base, "http://feeds.test/feed.rss", &cb, &[]).await;
    let v = sub.next_verification().await;
    assert_eq!(v["hub.topic"], "http://feeds.test/feed.rss");
    daemon.shutdown().await.expect("stops");
}

#[tokio::test]
async fn a_wrong_challenge_answer_does_not_subscribe() {
    let origin = Origin::start().await;
    origin_feed(&origin, 1);
    let mut sub = Subscriber::start(Check::Wrong, vec![]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (daemon, mut reports, base) = daemon_with(dir.path(), &origin, LOOPBACK, "").await;
    subscribe(&base, TOPIC, &sub.callback("/cb"), &[]).await;
    sub.next_verification().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !metrics(&base)
        .await
        .contains("tributary_hub_verifications_total{mode=\"subscribe\",result=\"rejected\"} 1")
    {
        assert!(
            Instant::now() < deadline,
            "the verification was never rejected"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let h = hub_status(&base, |_| true).await;
    assert_eq!(subscriptions(&h, TOPIC), 0, "{h}");
    // And nothing is delivered to it.
    origin_feed(&origin, 2);
    new_entries_stored(&mut reports).await;
    hub_status(&base, |h| h["pending_verifications"] == 0).await;
    assert!(sub.posts.try_recv().is_err());
    daemon.shutdown().await.expect("stops");
}

#[tokio::test]
async fn unsubscribing_is_verified_and_leases_are_clamped() {
    let origin = Origin::start().await;
    origin_feed(&origin, 1);
    let mut sub = Subscriber::start(Check::Echo, vec![]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (daemon, _reports, base) = daemon_with(
        dir.path(),
        &origin,
        LOOPBACK,
        "[hub]\nlease_min = \"2h\"\nlease_default = \"1d\"\nlease_max = \"7d\"\n",
    )
    .await;
    let cb = sub.callback("/cb");
    subscribe(&base, TOPIC, &cb, &[("hub.lease_seconds", "60")]).await;
    assert_eq!(sub.next_verification().await["hub.lease_seconds"], "7200");
    subscribe(&base, TOPIC, &cb, &[("hub.lease_seconds", "99999999999")]).await;
    assert_eq!(
        sub.next_verification().await["hub.lease_seconds"],
        (7 * 86400).to_string()
    );
    subscribe(&base, TOPIC, &cb, &[]).await;
    assert_eq!(sub.next_verification().await["hub.lease_seconds"], "86400");
    // Renewals replace, they do not add.
    hub_status(&base, |h| subscriptions(h, TOPIC) == 1).await;
    let (status, body) = hub_request(
        &base,
        &[
            ("hub.mode", "unsubscribe"),
            ("hub.topic", TOPIC),
            ("hub.callback", &cb),
        ],
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let v = sub.next_verification().await;
    assert_eq!(v["hub.mode"], "unsubscribe");
    assert!(!v.contains_key("hub.lease_seconds"));
    hub_status(&base, |h| subscriptions(h, TOPIC) == 0).await;
    daemon.shutdown().await.expect("stops");
}

#[tokio::test]
async fn subscriptions_survive_a_restart() {
    let origin = Origin::start().await;
    origin_feed(&origin, 1);
    let mut sub = Subscriber::start(Check::Echo, vec![]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (daemon, _reports, base) = daemon_with(dir.path(), &origin, LOOPBACK, "").await;
    subscribe(
        &base,
        "http://feeds.test/feed.json",
        &sub.callback("/cb"),
        &[],
    )
    .await;
    sub.next_verification().await;
    hub_status(&base, |h| {
        subscriptions(h, "http://feeds.test/feed.json") == 1
    })
    .await;
    daemon.shutdown().await.expect("stops");

    let (daemon, mut reports, base) = daemon_with(dir.path(), &origin, LOOPBACK, "").await;
    hub_status(&base, |h| {
        subscriptions(h, "http://feeds.test/feed.json") == 1
    })
    .await;
    origin_feed(&origin, 2);
    new_entries_stored(&mut reports).await;
    let d = sub.next_delivery().await;
    assert_eq!(
        header(&d, "content-type"),
        "application/feed+json; charset=utf-8"
    );
    let doc: serde_json::Value = serde_json::from_slice(&d.body).expect("json");
    assert_eq!(doc["items"].as_array().map(Vec::len), Some(2));
    daemon.shutdown().await.expect("stops");
}

#[tokio::test]
async fn a_500_is_retried_and_a_410_drops_the_subscription() {
    let origin = Origin::start().await;
    origin_feed(&origin, 1);
    let mut flaky = Subscriber::start(Check::Echo, vec![Answer::Status(500)]).await;
    let mut gone = Subscriber::start(Check::Echo, vec![Answer::Status(410)]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (daemon, mut reports, base) = daemon_with(dir.path(), &origin, LOOPBACK, "").await;
    subscribe(&base, TOPIC, &flaky.callback("/cb"), &[]).await;
    flaky.next_verification().await;
    subscribe(&base, TOPIC, &gone.callback("/cb"), &[]).await;
    gone.next_verification().await;
    hub_status(&base, |h| subscriptions(h, TOPIC) == 2).await;

    origin_feed(&origin, 2);
    new_entries_stored(&mut reports).await;
    let first = flaky.next_delivery().await;
    let again = flaky.next_delivery().await;
    assert_eq!(first.body, again.body, "the same document again");
    gone.next_delivery().await;
    let h = hub_status(&base, |h| {
        h["delivered"] == 1 && subscriptions(h, TOPIC) == 1
    })
    .await;
    assert_eq!(h["dropped_subscriptions"], 1);
    let m = metrics(&base).await;
    assert!(
        m.contains("tributary_hub_deliveries_total{result=\"retry\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("tributary_hub_subscriptions_dropped_total{reason=\"gone\"} 1"),
        "{m}"
    );
    // The dropped one gets nothing more; the other does.
    origin_feed(&origin, 3);
    new_entries_stored(&mut reports).await;
    flaky.next_delivery().await;
    hub_status(&base, |h| h["delivered"] == 2).await;
    assert!(gone.posts.try_recv().is_err());
    daemon.shutdown().await.expect("stops");
}

#[tokio::test]
async fn an_unsubscribe_during_a_failing_delivery_stays_unsubscribed() {
    const JSON: &str = "http://feeds.test/feed.json";
    let origin = Origin::start().await;
    origin_feed(&origin, 1);
    let release = Arc::new(tokio::sync::Notify::new());
    let mut sub = Subscriber::start(Check::Echo, vec![Answer::Held(release.clone(), 400)]).await;
    // On the same host: its deliveries wait for the held one's outcome to be recorded.
    let mut control = Subscriber::start(Check::Echo, vec![]).await;
    let cb = sub.callback("/cb");
    let dir = tempfile::tempdir().expect("tempdir");
    let (daemon, mut reports, base) = daemon_with(dir.path(), &origin, LOOPBACK, "").await;
    subscribe(&base, JSON, &cb, &[]).await;
    sub.next_verification().await;
    subscribe(&base, TOPIC, &control.callback("/cb"), &[]).await;
    control.next_verification().await;
    hub_status(&base, |h| {
        subscriptions(h, JSON) == 1 && subscriptions(h, TOPIC) == 1
    })
    .await;

    // The delivery's POST is held by the subscriber while it unsubscribes.
    origin_feed(&origin, 2);
    new_entries_stored(&mut reports).await;
    sub.next_delivery().await;
    let unsubscribe = [
        ("hub.mode", "unsubscribe"),
        ("hub.topic", JSON),
        ("hub.callback", cb.as_str()),
    ];
    let (status, body) = hub_request(&base, &unsubscribe).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(sub.next_verification().await["hub.mode"], "unsubscribe");
    hub_status(&base, |h| subscriptions(h, JSON) == 0).await;

    // The held POST now fails (400: not retried); its outcome must not bring it back.
    release.notify_one();
    hub_status(&base, |h| h["failed"] == 1).await;
    // The next change reaches the control only once the held delivery's task is done.
    origin_feed(&origin, 3);
    new_entries_stored(&mut reports).await;
    control.next_delivery().await;
    control.next_delivery().await;
    assert!(
        sub.posts.try_recv().is_err(),
        "nothing more to the unsubscribed"
    );
    assert_eq!(subscriptions(&health(&base).await["hub"], JSON), 0);
    let (status, body) = hub_request(&base, &unsubscribe).await;
    assert_eq!(status, 404, "{body}");
    daemon.shutdown().await.expect("stops");

    let (daemon, _reports, base) = daemon_with(dir.path(), &origin, LOOPBACK, "").await;
    let h = health(&base).await["hub"].clone();
    assert_eq!(subscriptions(&h, JSON), 0, "{h}");
    let (status, body) = hub_request(&base, &unsubscribe).await;
    assert_eq!(status, 404, "{body}");
    daemon.shutdown().await.expect("stops");
}

#[tokio::test]
async fn a_hanging_delivery_is_given_up_sooner_than_the_fetch_timeout() {
    let origin = Origin::start().await;
    origin_feed(&origin, 1);
    let mut sub = Subscriber::start(Check::Echo, vec![Answer::Hang]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let fetch = format!("{LOOPBACK}\ntimeout = \"60s\"");
    let (daemon, mut reports, base) = daemon_with(dir.path(), &origin, &fetch, "").await;
    subscribe(&base, TOPIC, &sub.callback("/cb"), &[]).await;
    sub.next_verification().await;
    hub_status(&base, |h| subscriptions(h, TOPIC) == 1).await;

    origin_feed(&origin, 2);
    new_entries_stored(&mut reports).await;
    let first = sub.next_delivery().await;
    let hung = Instant::now();
    // Given up after 10 s (not the 60 s of [fetch] timeout), retried 2 s later.
    let again = sub.next_delivery().await;
    let waited = hung.elapsed();
    assert!(
        waited >= Duration::from_secs(9) && waited < Duration::from_secs(20),
        "{waited:?}"
    );
    assert_eq!(first.body, again.body);
    hub_status(&base, |h| h["delivered"] == 1).await;
    let m = metrics(&base).await;
    assert!(
        m.contains("tributary_hub_deliveries_total{result=\"retry\"} 1"),
        "{m}"
    );
    daemon.shutdown().await.expect("stops");
}

#[tokio::test]
async fn limits_per_topic_and_per_callback_host_are_kept() {
    let origin = Origin::start().await;
    origin_feed(&origin, 1);
    let mut sub = Subscriber::start(Check::Echo, vec![]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (daemon, _reports, base) = daemon_with(
        dir.path(),
        &origin,
        LOOPBACK,
        "[hub]\nmax_per_topic = 1\nmax_per_callback_host = 2\n",
    )
    .await;
    subscribe(&base, TOPIC, &sub.callback("/one"), &[]).await;
    sub.next_verification().await;
    hub_status(&base, |h| subscriptions(h, TOPIC) == 1).await;
    // A second subscriber of the topic: refused at once.
    let fields = [
        ("hub.mode", "subscribe"),
        ("hub.topic", TOPIC),
        ("hub.callback", &sub.callback("/two")),
    ];
    let (status, reason) = hub_request(&base, &fields).await;
    assert_eq!(status, 403, "{reason}");
    assert!(reason.contains("max_per_topic"), "{reason}");
    // A renewal is no new subscription.
    subscribe(&base, TOPIC, &sub.callback("/one"), &[]).await;
    sub.next_verification().await;
    // The callback host's second subscription is allowed, its third is not.
    subscribe(
        &base,
        "http://feeds.test/feed.rss",
        &sub.callback("/two"),
        &[],
    )
    .await;
    sub.next_verification().await;
    hub_status(&base, |h| {
        subscriptions(h, "http://feeds.test/feed.rss") == 1
    })
    .await;
    let fields = [
        ("hub.mode", "subscribe"),
        ("hub.topic", "http://feeds.test/feed.json"),
        ("hub.callback", &sub.callback("/three")),
    ];
    let (status, reason) = hub_request(&base, &fields).await;
    assert_eq!(status, 403, "{reason}");
    assert!(reason.contains("max_per_callback_host"), "{reason}");
    daemon.shutdown().await.expect("stops");
}

#[tokio::test]
async fn a_private_callback_is_refused_unless_allowed() {
    let origin = Origin::start().await;
    origin_feed(&origin, 1);
    let mut sub = Subscriber::start(Check::Echo, vec![]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    // The origin is a configured source (its own address is allowed); the callback is not.
    let (daemon, _reports, base) = daemon_with(dir.path(), &origin, "", "").await;
    let fields = [
        ("hub.mode", "subscribe"),
        ("hub.topic", TOPIC),
        ("hub.callback", &sub.callback("/cb")),
    ];
    let (status, reason) = hub_request(&base, &fields).await;
    assert_eq!(status, 400, "{reason}");
    assert!(reason.contains("hub.callback"), "{reason}");
    let fields = [
        ("hub.mode", "subscribe"),
        ("hub.topic", TOPIC),
        ("hub.callback", "http://localhost:1/cb"),
    ];
    let (status, reason) = hub_request(&base, &fields).await;
    assert_eq!(status, 400, "{reason}");
    assert!(sub.gets.try_recv().is_err(), "no request reached it");
    daemon.shutdown().await.expect("stops");
}

#[tokio::test]
async fn a_hanging_subscriber_delays_neither_feeds_nor_polls() {
    let origin = Origin::start().await;
    origin_feed(&origin, 1);
    let mut sub = Subscriber::start(Check::Echo, vec![Answer::Hang, Answer::Hang]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (daemon, mut reports, base) = daemon_with(
        dir.path(),
        &origin,
        &format!("{LOOPBACK}\ntimeout = \"60s\""),
        "[hub]\ndeliveries = 1\n",
    )
    .await;
    subscribe(&base, TOPIC, &sub.callback("/cb"), &[]).await;
    sub.next_verification().await;
    hub_status(&base, |h| subscriptions(h, TOPIC) == 1).await;
    origin_feed(&origin, 2);
    new_entries_stored(&mut reports).await;
    // The delivery is under way and never answered.
    sub.next_delivery().await;
    // Polls go on and store, and the feed serves them at once.
    origin_feed(&origin, 3);
    new_entries_stored(&mut reports).await;
    let started = Instant::now();
    let (status, _, body) = get(&format!("{base}/feed.atom")).await;
    assert_eq!(status, 200);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(support::assert_valid_atom(&body, TOPIC).entries.len(), 3);
    // The hub itself still answers.
    let started = Instant::now();
    subscribe(
        &base,
        "http://feeds.test/feed.rss",
        &sub.callback("/cb"),
        &[],
    )
    .await;
    sub.next_verification().await;
    assert!(started.elapsed() < Duration::from_secs(2));
    daemon.shutdown().await.expect("stops");
}

#[tokio::test]
async fn external_hubs_are_pinged_when_a_feed_gains_entries() {
    let origin = Origin::start().await;
    origin_feed(&origin, 1);
    let mut hub = Subscriber::start(Check::Echo, vec![]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let text = config_prelude(LOOPBACK).replace(
        "max_items = 500\n",
        &format!("max_items = 500\nhubs = [\"{}/publish\"]\n", hub.base),
    ) + &source_toml("a", &origin.url("/a.xml"), "1s", "")
        + "[hub]\nenabled = false\n";
    let mut daemon = start(config_raw(dir.path(), &text)).await;
    let mut reports = daemon.take_reports();
    // The first poll's entries are new too: pinged.
    all_stored(&mut reports, &["a"]).await;
    let mut urls = Vec::new();
    for _ in 0..6 {
        let ping = hub.next_delivery().await;
        assert_eq!(ping.path, "/publish");
        assert_eq!(
            header(&ping, "content-type"),
            "application/x-www-form-urlencoded"
        );
        let form: HashMap<String, String> = url::form_urlencoded::parse(&ping.body)
            .into_owned()
            .collect();
        assert_eq!(form["hub.mode"], "publish");
        urls.push(form["hub.url"].clone());
    }
    urls.sort();
    assert_eq!(
        urls,
        [
            "http://feeds.test/feed.atom",
            "http://feeds.test/feed.json",
            "http://feeds.test/feed.rss",
            "http://feeds.test/sources/a.atom",
            "http://feeds.test/sources/a.json",
            "http://feeds.test/sources/a.rss",
        ]
    );
    let base = format!("http://{}", daemon.local_addr());
    let deadline = Instant::now() + Duration::from_secs(30);
    while !metrics(&base)
        .await
        .contains("tributary_hub_publish_pings_total{result=\"sent\"} 6")
    {
        assert!(Instant::now() < deadline, "pings not counted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    daemon.shutdown().await.expect("stops");
}

#[tokio::test]
async fn a_limit_reached_while_verifying_is_denied_to_the_callback() {
    let origin = Origin::start().await;
    origin_feed(&origin, 1);
    // Both verifications are under way before either is answered.
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let mut sub = Subscriber::start(Check::Together(barrier), vec![]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (daemon, _reports, base) =
        daemon_with(dir.path(), &origin, LOOPBACK, "[hub]\nmax_per_topic = 1\n").await;
    subscribe(&base, TOPIC, &sub.callback("/one"), &[]).await;
    subscribe(&base, TOPIC, &sub.callback("/two"), &[]).await;
    let mut modes = Vec::new();
    for _ in 0..3 {
        modes.push(sub.next_verification().await);
    }
    let denied: Vec<&Verification> = modes
        .iter()
        .filter(|v| v.get("hub.mode").map(String::as_str) == Some("denied"))
        .collect();
    assert_eq!(denied.len(), 1, "{modes:?}");
    assert_eq!(denied[0]["hub.topic"], TOPIC);
    assert!(
        denied[0]["hub.reason"].contains("max_per_topic"),
        "{modes:?}"
    );
    assert!(!denied[0].contains_key("hub.challenge"));
    hub_status(&base, |h| {
        subscriptions(h, TOPIC) == 1 && h["pending_verifications"] == 0
    })
    .await;
    daemon.shutdown().await.expect("stops");
}

#[tokio::test]
async fn verifications_under_way_are_bounded() {
    let origin = Origin::start().await;
    origin_feed(&origin, 1);
    // 4 verifications per callback host at most: 16 hosts (loopback addresses).
    let mut subs = Vec::new();
    for host in 1..=17 {
        subs.push(Subscriber::start_on(&format!("127.0.0.{host}"), Check::Hang, vec![]).await);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (daemon, _reports, base) = daemon_with(dir.path(), &origin, LOOPBACK, "").await;
    for i in 0..64 {
        let callback = subs[i / 4].callback(&format!("/cb{i}"));
        subscribe(&base, TOPIC, &callback, &[]).await;
    }
    for sub in &mut subs[..16] {
        for _ in 0..4 {
            sub.next_verification().await;
        }
    }
    let fields = [
        ("hub.mode", "subscribe"),
        ("hub.topic", TOPIC),
        ("hub.callback", &subs[16].callback("/late")),
    ];
    let (status, reason) = hub_request(&base, &fields).await;
    assert_eq!(status, 503, "{reason}");
    assert!(reason.contains("under way"), "{reason}");
    let h = hub_status(&base, |_| true).await;
    assert_eq!(h["pending_verifications"], 64);
    assert!(
        metrics(&base)
            .await
            .contains("tributary_hub_verifications_pending 64")
    );
    // The feeds are served meanwhile.
    let (status, _, _) = get(&format!("{base}/feed.atom")).await;
    assert_eq!(status, 200);
    daemon.shutdown().await.expect("stops");
}

#[tokio::test]
async fn an_expired_lease_is_dropped_and_gets_nothing() {
    let origin = Origin::start().await;
    origin_feed(&origin, 1);
    let mut sub = Subscriber::start(Check::Echo, vec![]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (daemon, mut reports, base) = daemon_with(
        dir.path(),
        &origin,
        LOOPBACK,
        "[hub]\nlease_min = \"1s\"\nlease_default = \"1h\"\n",
    )
    .await;
    subscribe(
        &base,
        TOPIC,
        &sub.callback("/short"),
        &[("hub.lease_seconds", "1")],
    )
    .await;
    assert_eq!(sub.next_verification().await["hub.lease_seconds"], "1");
    subscribe(&base, TOPIC, &sub.callback("/long"), &[]).await;
    sub.next_verification().await;
    hub_status(&base, |h| h["dropped_subscriptions"] == 1).await;
    let m = metrics(&base).await;
    assert!(
        m.contains("tributary_hub_subscriptions_dropped_total{reason=\"expired\"} 1"),
        "{m}"
    );
    hub_status(&base, |h| subscriptions(h, TOPIC) == 1).await;
    origin_feed(&origin, 2);
    new_entries_stored(&mut reports).await;
    assert_eq!(sub.next_delivery().await.path, "/long");
    hub_status(&base, |h| h["delivered"] == 1).await;
    assert!(sub.posts.try_recv().is_err(), "the expired one got nothing");
    daemon.shutdown().await.expect("stops");
}

#[tokio::test]
async fn a_hanging_denial_holds_up_no_other_confirmation() {
    let origin = Origin::start().await;
    origin_feed(&origin, 1);
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let mut slow = Subscriber::start(Check::TogetherDenialHangs(barrier), vec![]).await;
    let mut other = Subscriber::start_on("127.0.0.2", Check::Echo, vec![]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (daemon, _reports, base) = daemon_with(
        dir.path(),
        &origin,
        &format!("{LOOPBACK}\ntimeout = \"60s\""),
        "[hub]\nmax_per_topic = 1\n",
    )
    .await;
    subscribe(&base, TOPIC, &slow.callback("/one"), &[]).await;
    subscribe(&base, TOPIC, &slow.callback("/two"), &[]).await;
    // Two challenges, then the denial, which is never answered.
    let mut modes = Vec::new();
    for _ in 0..3 {
        modes.push(slow.next_verification().await["hub.mode"].clone());
    }
    assert_eq!(
        modes.iter().filter(|m| *m == "denied").count(),
        1,
        "{modes:?}"
    );
    // Another subscriber is confirmed meanwhile, at once.
    let started = Instant::now();
    subscribe(
        &base,
        "http://feeds.test/feed.rss",
        &other.callback("/cb"),
        &[],
    )
    .await;
    other.next_verification().await;
    hub_status(&base, |h| {
        subscriptions(h, "http://feeds.test/feed.rss") == 1
    })
    .await;
    assert!(started.elapsed() < Duration::from_secs(10));
    daemon.shutdown().await.expect("stops");
}

#[tokio::test]
async fn hanging_subscribers_on_one_host_hold_up_no_other_delivery_or_ping() {
    let origin = Origin::start().await;
    origin_feed(&origin, 1);
    let mut hanging = Subscriber::start(Check::Echo, vec![Answer::Hang; 20]).await;
    let mut legit = Subscriber::start_on("127.0.0.2", Check::Echo, vec![]).await;
    let mut hub = Subscriber::start_on("127.0.0.3", Check::Echo, vec![]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let text = config_prelude(&format!("{LOOPBACK}\ntimeout = \"60s\"")).replace(
        "max_items = 500\n",
        &format!("max_items = 500\nhubs = [\"{}/publish\"]\n", hub.base),
    ) + &source_toml("a", &origin.url("/a.xml"), "1s", "")
        + "[hub]\ndeliveries = 2\n";
    let mut daemon = start(config_raw(dir.path(), &text)).await;
    let mut reports = daemon.take_reports();
    all_stored(&mut reports, &["a"]).await;
    let base = format!("http://{}", daemon.local_addr());
    // The first poll's pings.
    for _ in 0..6 {
        hub.next_delivery().await;
    }
    // Four subscriptions whose deliveries hang, all on one host (they come first in the
    // store's order), and one elsewhere.
    for i in 0..4 {
        subscribe(&base, TOPIC, &hanging.callback(&format!("/h{i}")), &[]).await;
        hanging.next_verification().await;
    }
    subscribe(&base, TOPIC, &legit.callback("/cb"), &[]).await;
    legit.next_verification().await;
    hub_status(&base, |h| subscriptions(h, TOPIC) == 5).await;
    origin_feed(&origin, 2);
    new_entries_stored(&mut reports).await;
    let started = Instant::now();
    let d = legit.next_delivery().await;
    assert_eq!(d.path, "/cb");
    assert!(started.elapsed() < Duration::from_secs(10));
    // One of the hanging host's deliveries is under way; the others wait their turn.
    assert_eq!(hanging.next_delivery().await.path, "/h0");
    assert!(hanging.posts.try_recv().is_err(), "one at a time per host");
    // The pings were not held up either.
    for _ in 0..6 {
        assert_eq!(hub.next_delivery().await.path, "/publish");
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    daemon.shutdown().await.expect("stops");
}

#[tokio::test]
async fn one_callback_host_gets_a_few_verifications_and_places_per_topic() {
    let origin = Origin::start().await;
    origin_feed(&origin, 1);
    let mut hanging = Subscriber::start(Check::Hang, vec![]).await;
    let mut sub = Subscriber::start_on("127.0.0.2", Check::Echo, vec![]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (daemon, _reports, base) = daemon_with(dir.path(), &origin, LOOPBACK, "").await;
    // 4 verifications under way for one host; the fifth is told to come back later.
    for i in 0..4 {
        subscribe(&base, TOPIC, &hanging.callback(&format!("/cb{i}")), &[]).await;
        hanging.next_verification().await;
    }
    let form = format!(
        "hub.mode=subscribe&hub.topic={TOPIC}&hub.callback={}",
        hanging.callback("/cb4")
    );
    let (status, retry_after, reason) = hub_raw(&base, form).await;
    assert_eq!(status, 429, "{reason}");
    assert_eq!(retry_after.as_deref(), Some("60"));
    assert!(reason.contains("on this site are under way"), "{reason}");
    // Other hosts are not held up; one host gets 5 subscriptions to a topic at most.
    for i in 0..5 {
        subscribe(&base, TOPIC, &sub.callback(&format!("/cb{i}")), &[]).await;
        sub.next_verification().await;
    }
    hub_status(&base, |h| subscriptions(h, TOPIC) == 5).await;
    let fields = [
        ("hub.mode", "subscribe"),
        ("hub.topic", TOPIC),
        ("hub.callback", &sub.callback("/cb5")),
    ];
    let (status, reason) = hub_request(&base, &fields).await;
    assert_eq!(status, 403, "{reason}");
    assert!(reason.contains("on this site"), "{reason}");
    // Renewals are exempt; another topic is fine.
    subscribe(&base, TOPIC, &sub.callback("/cb0"), &[]).await;
    sub.next_verification().await;
    subscribe(
        &base,
        "http://feeds.test/feed.rss",
        &sub.callback("/cb5"),
        &[],
    )
    .await;
    sub.next_verification().await;
    daemon.shutdown().await.expect("stops");
}

#[tokio::test]
async fn verification_requests_per_callback_host_are_rate_bounded() {
    let origin = Origin::start().await;
    origin_feed(&origin, 1);
    let mut sub = Subscriber::start(Check::Wrong, vec![]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (daemon, _reports, base) = daemon_with(dir.path(), &origin, LOOPBACK, "").await;
    for i in 0..30 {
        subscribe(&base, TOPIC, &sub.callback(&format!("/cb{i}")), &[]).await;
        sub.next_verification().await;
        hub_status(&base, |h| h["pending_verifications"] == 0).await;
    }
    let form = format!(
        "hub.mode=subscribe&hub.topic={TOPIC}&hub.callback={}",
        sub.callback("/cb30")
    );
    let (status, retry_after, reason) = hub_raw(&base, form).await;
    assert_eq!(status, 429, "{reason}");
    assert_eq!(retry_after.as_deref(), Some("60"));
    assert!(reason.contains("a minute"), "{reason}");
    assert!(sub.gets.try_recv().is_err(), "the callback was not asked");
    daemon.shutdown().await.expect("stops");
}

#[tokio::test]
async fn unsubscribing_what_is_not_subscribed_asks_the_callback_nothing() {
    let origin = Origin::start().await;
    origin_feed(&origin, 1);
    let mut sub = Subscriber::start(Check::Echo, vec![]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (daemon, _reports, base) = daemon_with(dir.path(), &origin, LOOPBACK, "").await;
    for _ in 0..50 {
        let (status, reason) = hub_request(
            &base,
            &[
                ("hub.mode", "unsubscribe"),
                ("hub.topic", TOPIC),
                ("hub.callback", &sub.callback("/victim")),
            ],
        )
        .await;
        assert_eq!(status, 404, "{reason}");
        assert!(reason.contains("not subscribed"), "{reason}");
    }
    // A subscription made is one that can be ended.
    subscribe(&base, TOPIC, &sub.callback("/cb"), &[]).await;
    assert_eq!(sub.next_verification().await["hub.mode"], "subscribe");
    hub_status(&base, |h| subscriptions(h, TOPIC) == 1).await;
    let (status, reason) = hub_request(
        &base,
        &[
            ("hub.mode", "unsubscribe"),
            ("hub.topic", TOPIC),
            ("hub.callback", &sub.callback("/cb")),
        ],
    )
    .await;
    assert_eq!(status, 202, "{reason}");
    assert_eq!(sub.next_verification().await["hub.mode"], "unsubscribe");
    assert!(sub.gets.try_recv().is_err(), "nothing reached /victim");
    daemon.shutdown().await.expect("stops");
}

#[tokio::test]
async fn fields_must_be_utf8_and_the_topic_host_is_case_blind() {
    let origin = Origin::start().await;
    origin_feed(&origin, 1);
    let mut sub = Subscriber::start(Check::Echo, vec![]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (daemon, _reports, base) = daemon_with(dir.path(), &origin, LOOPBACK, "").await;
    let cb = sub.callback("/cb");
    for (field, form) in [
        (
            "hub.secret",
            format!("hub.mode=subscribe&hub.topic={TOPIC}&hub.callback={cb}&hub.secret=%ff%ff"),
        ),
        (
            "hub.callback",
            format!("hub.mode=subscribe&hub.topic={TOPIC}&hub.callback={cb}%ff%fe"),
        ),
    ] {
        let (status, _, reason) = hub_raw(&base, form).await;
        assert_eq!(status, 400, "{reason}");
        assert!(
            reason.contains(&format!("{field} is not valid UTF-8")),
            "{reason}"
        );
    }
    assert!(sub.gets.try_recv().is_err(), "no request reached it");
    // The topic's scheme and host are compared without case; the canonical one is used.
    subscribe(&base, "HTTP://FEEDS.Test/feed.atom", &cb, &[]).await;
    assert_eq!(sub.next_verification().await["hub.topic"], TOPIC);
    hub_status(&base, |h| subscriptions(h, TOPIC) == 1).await;
    daemon.shutdown().await.expect("stops");
}
