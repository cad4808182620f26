//! The WebSub subscriber through the real daemon and real HTTP: an origin announcing a hub
//! (Link headers, atom:link), a test hub written here (records subscribe requests, verifies
//! intent by GETting the callback with a challenge, pushes signed fat pings and thin pings),
//! and the daemon's own callback, status, metrics and feeds.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use hmac::{Hmac, Mac};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use support::{RawOrigin, RawRoute, config_raw, get, next};
use tributary::app;
use tributary::ingest::poll::{PollOutcome, PollReport};

const LOOPBACK: &str = "allow_networks = [\"127.0.0.0/8\"]";

/// One request the hub got, as a form.
type Form = HashMap<String, String>;

/// What the hub does with a subscribe or unsubscribe request.
#[derive(Clone, Copy, PartialEq)]
enum Verify {
    /// Verifies it (GET with a challenge), granting this lease.
    Grant(u64),
    /// Says it denied it.
    Deny,
    /// Accepts it (202) and never verifies.
    Ignore,
    /// Never answers the request.
    Hang,
}

#[derive(Clone)]
struct HubState {
    requests: mpsc::UnboundedSender<Form>,
    /// The callback's answers to verifications: (form sent, status, body).
    verified: mpsc::UnboundedSender<(Form, u16, String)>,
    plan: Arc<Mutex<Vec<Verify>>>,
}

/// A WebSub hub on 127.0.0.1:0.
struct Hub {
    url: String,
    requests: mpsc::UnboundedReceiver<Form>,
    verified: mpsc::UnboundedReceiver<(Form, u16, String)>,
}

impl Hub {
    /// A hub that answers requests as `plan` says, in order (then the last again).
    async fn start(plan: Vec<Verify>) -> Hub {
        let (rtx, requests) = mpsc::unbounded_channel();
        let (vtx, verified) = mpsc::unbounded_channel();
        let state = HubState {
            requests: rtx,
            verified: vtx,
            plan: Arc::new(Mutex::new(plan)),
        };
        let app = axum::Router::new()
            .route("/hub", axum::routing::post(hub_request))
            .with_state(state);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind hub");
        let url = format!("http://{}/hub", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Hub {
            url,
            requests,
            verified,
        }
    }

    async fn request(&mut self) -> Form {
        tokio::time::timeout(Duration::from_secs(30), self.requests.recv())
            .await
            .expect("the hub got a request")
            .expect("hub open")
    }

    async fn verification(&mut self) -> (Form, u16, String) {
        tokio::time::timeout(Duration::from_secs(30), self.verified.recv())
            .await
            .expect("the hub verified")
            .expect("hub open")
    }
}

async fn hub_request(State(state): State<HubState>, body: String) -> StatusCode {
    let form: Form = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let _ = state.requests.send(form.clone());
    let verify = {
        let mut plan = state.plan.lock().expect("plan");
        if plan.len() > 1 {
            plan.remove(0)
        } else {
            plan.first().copied().unwrap_or(Verify::Grant(3600))
        }
    };
    if verify == Verify::Hang {
        std::future::pending::<()>().await;
    }
    tokio::spawn(async move {
        let mut pairs = vec![
            ("hub.topic", form["hub.topic"].clone()),
            ("hub.challenge", "challenge-4711".to_string()),
        ];
        match verify {
            Verify::Grant(lease) => {
                pairs.push(("hub.mode", form["hub.mode"].clone()));
                pairs.push(("hub.lease_seconds", lease.to_string()));
            }
            Verify::Deny => {
                pairs.push(("hub.mode", "denied".into()));
                pairs.push(("hub.reason", "not on this hub".into()));
            }
            Verify::Ignore | Verify::Hang => return,
        }
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        let url = format!("{}?{query}", form["hub.callback"]);
        let (status, _, body) = get(&url).await;
        let _ = state.verified.send((form, status, body));
    });
    StatusCode::ACCEPTED
}

/// An RSS feed announcing `hub` in its document, with these items (guid, title).
fn rss(hub: &str, self_url: &str, items: &[(&str, &str)]) -> String {
    let items: String = items
        .iter()
        .map(|(g, t)| {
            format!("<item><guid>{g}</guid><title>{t}</title><link>https://example.org/{g}</link></item>")
        })
        .collect();
    format!(
        r#"<?xml version="1.0"?><rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"><channel><title>Pushed</title><link>https://example.org/</link><description>d</description><atom:link rel="hub" href="{hub}"/><atom:link rel="self" href="{self_url}"/>{items}</channel></rss>"#
    )
}

/// A daemon whose base_url is its own address, with these sources and extra tables.
struct Setup {
    dir: tempfile::TempDir,
    base: String,
    daemon: app::Daemon,
    reports: tokio::sync::broadcast::Receiver<PollReport>,
}

fn config_text(base: &str, fetch: &str, sources: &str, extra: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nbase_url = \"{base}\"\n\n[fetch]\n{LOOPBACK}\n{fetch}\n\n{extra}\n\n{sources}"
    )
}

fn source(name: &str, url: &str, extra: &str) -> String {
    format!("[[source]]\nname = \"{name}\"\nurl = \"{url}\"\ninterval = \"1m\"\n{extra}\n\n")
}

impl Setup {
    async fn start(fetch: &str, sources: &str, extra: &str) -> Setup {
        let dir = tempfile::tempdir().expect("tempdir");
        Setup::start_in(dir, None, fetch, sources, extra).await
    }

    /// In `dir`, on `addr` (a fresh port when `None`), once the store is free.
    async fn start_in(
        dir: tempfile::TempDir,
        addr: Option<std::net::SocketAddr>,
        fetch: &str,
        sources: &str,
        extra: &str,
    ) -> Setup {
        let addr = addr.unwrap_or_else(|| ([127, 0, 0, 1], 0).into());
        let listener = TcpListener::bind(addr).await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let cfg = config_raw(dir.path(), &config_text(&base, fetch, sources, extra));
        let bound = listener.local_addr().expect("addr");
        let mut first = Some(listener);
        let mut daemon = support::when_unlocked(|| {
            let (cfg, listener) = (cfg.clone(), first.take());
            async move {
                let listener = match listener {
                    Some(l) => l,
                    None => TcpListener::bind(bound).await.expect("bind again"),
                };
                app::start(cfg, listener).await
            }
        })
        .await
        .expect("daemon starts");
        let reports = daemon.take_reports();
        Setup {
            dir,
            base,
            daemon,
            reports,
        }
    }

    async fn stored(&mut self, name: &str) -> PollReport {
        next(&mut self.reports, |r: &PollReport| {
            r.source == name && matches!(r.outcome, PollOutcome::Stored { .. })
        })
        .await
    }

    async fn health(&self) -> serde_json::Value {
        support::health(&self.base).await
    }

    /// The first subscription of `source` in /healthz once `pred` holds for it.
    async fn wait_sub(
        &self,
        source: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                let h = self.health().await;
                if let Some(s) = h["websub"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|s| s["source"] == source && pred(s))
                {
                    return s.clone();
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("the subscription came to the expected state")
    }
}

fn sign(algorithm: &str, secret: &str, body: &[u8]) -> String {
    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
    macro_rules! mac {
        ($h:ty) => {{
            let mut m = Hmac::<$h>::new_from_slice(secret.as_bytes()).expect("key");
            m.update(body);
            hex(&m.finalize().into_bytes())
        }};
    }
    let hex = match algorithm {
        "sha1" => mac!(sha1::Sha1),
        "sha256" => mac!(sha2::Sha256),
        "sha384" => mac!(sha2::Sha384),
        "sha512" => mac!(sha2::Sha512),
        other => panic!("{other}"),
    };
    format!("{algorithm}={hex}")
}

/// POSTs a delivery to `callback`; the status.
async fn push(callback: &str, signature: Option<&str>, body: Vec<u8>) -> u16 {
    let mut request = reqwest::Client::new()
        .post(callback)
        .header("Content-Type", "application/rss+xml")
        .body(body);
    if let Some(s) = signature {
        request = request.header("X-Hub-Signature", s);
    }
    request
        .send()
        .await
        .expect("delivery sent")
        .status()
        .as_u16()
}

/// An origin serving `feed` at /feed.xml with these Link headers.
async fn origin(feed: &str, links: &[&str]) -> RawOrigin {
    let origin = RawOrigin::start().await;
    set_feed(&origin, feed, links);
    origin
}

fn set_feed(origin: &RawOrigin, feed: &str, links: &[&str]) {
    let mut headers = vec![("Content-Type", "application/rss+xml")];
    headers.extend(links.iter().map(|l| ("Link", *l)));
    origin.set(
        "/feed.xml",
        RawRoute::respond(200, &headers, feed.to_string()),
    );
}

/// Subscribed and verified: the hub's subscribe form.
async fn subscribed(hub: &mut Hub) -> Form {
    let form = hub.request().await;
    assert_eq!(form["hub.mode"], "subscribe");
    let (_, status, body) = hub.verification().await;
    assert_eq!((status, body.as_str()), (200, "challenge-4711"));
    form
}

#[tokio::test]
async fn link_headers_beat_atom_link_and_subscribe_with_every_parameter() {
    let mut header_hub = Hub::start(vec![Verify::Grant(3600)]).await;
    let mut doc_hub = Hub::start(vec![Verify::Grant(3600)]).await;
    let topic = "https://example.org/canonical.xml";
    let feed = rss(
        &doc_hub.url,
        "https://example.org/doc-self.xml",
        &[("a", "A")],
    );
    let origin = origin(
        &feed,
        &[
            &format!("<{}>; rel=\"hub\"", header_hub.url),
            &format!("<{topic}>; rel=\"self\""),
        ],
    )
    .await;
    let mut s = Setup::start("", &source("s", &origin.url("/feed.xml"), ""), "").await;
    s.stored("s").await;
    let form = header_hub.request().await;
    assert_eq!(form["hub.mode"], "subscribe");
    assert_eq!(form["hub.topic"], topic);
    assert_eq!(form["hub.lease_seconds"], (10 * 24 * 3600).to_string());
    let callback = &form["hub.callback"];
    let prefix = format!("{}/websub/callback/", s.base);
    let token = callback
        .strip_prefix(&prefix)
        .expect("callback under base_url");
    assert_eq!(token.len(), 64, "{token}");
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
    let secret = &form["hub.secret"];
    assert_eq!(secret.len(), 64);
    assert_ne!(secret, token);
    // The hub verifies: the challenge is echoed as text/plain.
    let (_, status, body) = header_hub.verification().await;
    assert_eq!((status, body.as_str()), (200, "challenge-4711"));
    let sub = s.wait_sub("s", |w| w["state"] == "active").await;
    assert_eq!(sub["hub"], header_hub.url);
    assert_eq!(sub["topic"], topic);
    assert!(sub["lease_end"].is_string());
    // The document's hub was never asked.
    assert!(doc_hub.requests.try_recv().is_err());
    let status = s.health().await;
    assert_eq!(status["websub"].as_array().map(Vec::len), Some(1));
    // A second, unrelated request to another source's subscription would have shown here.
    assert!(header_hub.requests.try_recv().is_err());
    s.daemon.shutdown().await.expect("stops");
}

#[tokio::test]
async fn verification_is_answered_only_for_requests_made() {
    let mut hub = Hub::start(vec![Verify::Grant(3600)]).await;
    let feed = rss(&hub.url, "https://example.org/t.xml", &[("a", "A")]);
    let origin = origin(&feed, &[]).await;
    let mut s = Setup::start("", &source("s", &origin.url("/feed.xml"), ""), "").await;
    s.stored("s").await;
    let form = subscribed(&mut hub).await;
    assert_eq!(form["hub.topic"], "https://example.org/t.xml");
    let callback = form["hub.callback"].clone();
    let q = |mode: &str, topic: &str| {
        format!(
            "{callback}?hub.mode={mode}&hub.topic={topic}&hub.challenge=zz&hub.lease_seconds=60"
        )
    };
    // Already verified: a second subscribe is not pending; an unsubscribe was never asked.
    for url in [
        q("subscribe", "https://example.org/t.xml"),
        q("unsubscribe", "https://example.org/t.xml"),
        q("subscribe", "https://example.org/other.xml"),
        format!(
            "{}/websub/callback/{}?hub.mode=subscribe&hub.topic=https://example.org/t.xml&hub.challenge=zz",
            s.base,
            "0".repeat(64)
        ),
    ] {
        let (status, _, body) = get(&url).await;
        assert_eq!(status, 404, "{url}: {body}");
        assert!(!body.contains("zz"));
    }
    s.daemon.shutdown().await.expect("stops");
}

#[tokio::test]
async fn a_denial_is_recorded_and_the_source_polls_as_usual() {
    let mut hub = Hub::start(vec![Verify::Deny]).await;
    let feed = rss(&hub.url, "https://example.org/t.xml", &[("a", "A")]);
    let origin = origin(&feed, &[]).await;
    let mut s = Setup::start("", &source("s", &origin.url("/feed.xml"), ""), "").await;
    let first = s.stored("s").await;
    assert!(first.websub.is_some());
    hub.request().await;
    let (form, status, _) = hub.verification().await;
    assert_eq!(status, 200);
    assert_eq!(form["hub.mode"], "subscribe");
    let sub = s.wait_sub("s", |w| w["state"] == "denied").await;
    assert!(
        sub["reason"]
            .as_str()
            .is_some_and(|r| r.contains("not on this hub")),
        "{sub}"
    );
    // Denied: the source is polled (at once, then at its own interval).
    let again = s.stored("s").await;
    let next = again.next_poll.expect("due again");
    assert!(
        next - again.started < chrono::Duration::minutes(3),
        "{next}"
    );
    s.daemon.shutdown().await.expect("stops");
}

#[tokio::test]
async fn signed_fat_pings_are_stored_with_every_algorithm_and_bad_ones_ignored() {
    let mut hub = Hub::start(vec![Verify::Grant(3600)]).await;
    let topic = "https://example.org/t.xml";
    let origin = origin(&rss(&hub.url, topic, &[("a", "A")]), &[]).await;
    let mut s = Setup::start(
        "max_body_mb = 1",
        &source(
            "s",
            &origin.url("/feed.xml"),
            "title_template = \"[pushed] {title}\"",
        ),
        "",
    )
    .await;
    s.stored("s").await;
    let form = subscribed(&mut hub).await;
    s.wait_sub("s", |w| w["state"] == "active").await;
    let (callback, secret) = (form["hub.callback"].clone(), form["hub.secret"].clone());

    for (i, alg) in ["sha1", "sha256", "sha384", "sha512"].iter().enumerate() {
        let guid = format!("p{i}");
        let body = rss(&hub.url, topic, &[(&guid, &format!("Pushed {alg}"))]).into_bytes();
        let sig = sign(alg, &secret, &body);
        assert_eq!(push(&callback, Some(&sig), body).await, 202);
        let report = s.stored("s").await;
        match &report.outcome {
            PollOutcome::Stored { counts, .. } => assert_eq!(counts.new, 1, "{alg}"),
            other => panic!("{other:?}"),
        }
        // Stored through the source's own path: its title template applied.
        let (_, _, atom) = get(&format!("{}/feed.atom", s.base)).await;
        assert!(
            atom.contains(&format!("[pushed] Pushed {alg}")),
            "{alg}: {atom}"
        );
    }

    // Missing, wrong (other secret, other body) and unknown-method signatures: 2xx, ignored.
    let bad = rss(&hub.url, topic, &[("bad", "Forged entry")]).into_bytes();
    let wrong_key = sign("sha256", "not the secret", &bad);
    let other_body = sign("sha256", &secret, b"something else");
    for sig in [
        None,
        Some(wrong_key.as_str()),
        Some(other_body.as_str()),
        Some("md5=00"),
    ] {
        assert_eq!(push(&callback, sig, bad.clone()).await, 202);
    }
    // Too big ([fetch] max_body_mb = 1): refused unread, counted.
    let huge = vec![b'x'; 2 * 1024 * 1024];
    let sig = sign("sha256", &secret, &huge);
    assert_eq!(push(&callback, Some(&sig), huge).await, 413);
    let sub = s.wait_sub("s", |w| w["rejected"] == 5).await;
    assert_eq!(sub["deliveries"], 4);
    assert!(sub["last_delivery"].is_string());
    let (_, _, atom) = get(&format!("{}/feed.atom", s.base)).await;
    assert!(!atom.contains("Forged entry"));
    let (_, _, metrics) = get(&format!("{}/metrics", s.base)).await;
    assert!(
        metrics.contains("tributary_websub_deliveries_total{source=\"s\",result=\"rejected\"} 5"),
        "{metrics}"
    );
    assert!(metrics.contains("tributary_websub_subscription{source=\"s\""));
    assert!(metrics.contains("state=\"active\"} 1"));
    // An unknown callback is Gone.
    let unknown = format!("{}/websub/callback/{}", s.base, "f".repeat(64));
    assert_eq!(
        push(&unknown, Some(&sig_for(&secret)), b"x".to_vec()).await,
        410
    );
    // `tributary status` text shows the subscription.
    let h: tributary::daemon::status::Health =
        serde_json::from_value(s.health().await).expect("health");
    let text = tributary::daemon::status::render_text(
        &h,
        chrono::Utc::now(),
        &tributary::daemon::status::Answered::Daemon,
    );
    assert!(
        text.contains("websub s: active, 4 deliveries, 5 rejected"),
        "{text}"
    );
    s.daemon.shutdown().await.expect("stops");
}

fn sig_for(secret: &str) -> String {
    sign("sha256", secret, b"x")
}

#[tokio::test]
async fn a_thin_ping_polls_and_an_active_lease_polls_only_as_a_safety_net() {
    let mut hub = Hub::start(vec![Verify::Grant(3600)]).await;
    let topic = "https://example.org/t.xml";
    let origin = origin(&rss(&hub.url, topic, &[("a", "A")]), &[]).await;
    let mut s = Setup::start(
        "",
        &source("s", &origin.url("/feed.xml"), ""),
        "[websub]\nsafety_poll = \"5h\"",
    )
    .await;
    let first = s.stored("s").await;
    // Before the subscription: the source's own interval.
    let due = first.next_poll.expect("due");
    assert!(due - first.started < chrono::Duration::minutes(3), "{due}");
    let form = subscribed(&mut hub).await;
    s.wait_sub("s", |w| w["state"] == "active").await;
    set_feed(
        &origin,
        &rss(&hub.url, topic, &[("a", "A"), ("b", "B")]),
        &[],
    );
    // A thin ping (signed, empty): the source is polled, and while the lease runs its next
    // poll is the safety net's.
    let sig = sign("sha256", &form["hub.secret"], b"");
    assert_eq!(
        push(&form["hub.callback"], Some(&sig), Vec::new()).await,
        202
    );
    let polled = s.stored("s").await;
    match &polled.outcome {
        PollOutcome::Stored { counts, .. } => assert_eq!(counts.new, 1),
        other => panic!("{other:?}"),
    }
    let next = polled.next_poll.expect("due");
    assert!(next - polled.started > chrono::Duration::hours(4), "{next}");
    let (_, _, metrics) = get(&format!("{}/metrics", s.base)).await;
    assert!(
        metrics.contains("tributary_websub_deliveries_total{source=\"s\",result=\"thin\"} 1"),
        "{metrics}"
    );
    s.daemon.shutdown().await.expect("stops");
}

#[tokio::test]
async fn a_lease_that_lapses_unrenewed_falls_back_to_polling() {
    // The first subscribe is granted for 6 s (renewed at 85%, 5.1 s); the renewal is never
    // verified, so it lapses.
    let mut hub = Hub::start(vec![Verify::Grant(6), Verify::Ignore]).await;
    let topic = "https://example.org/t.xml";
    let origin = origin(&rss(&hub.url, topic, &[("a", "A")]), &[]).await;
    let mut s = Setup::start(
        "",
        &source("s", &origin.url("/feed.xml"), ""),
        "[websub]\nsafety_poll = \"5h\"",
    )
    .await;
    s.stored("s").await;
    let form = subscribed(&mut hub).await;
    // The renewal is asked for before the lease ends (same callback), never verified; the
    // lease lapses, and the source is polled at once (long before its 1m interval) and at
    // its own interval after.
    let renewal = hub.request().await;
    assert_eq!(renewal["hub.mode"], "subscribe");
    assert_eq!(renewal["hub.callback"], form["hub.callback"]);
    let lapsed = s.wait_sub("s", |w| w["state"] == "lapsed").await;
    assert!(
        lapsed["reason"]
            .as_str()
            .is_some_and(|r| r.contains("lease"))
    );
    // A lapsed subscription takes no deliveries: 410, so the hub stops.
    let sig = sign("sha256", &form["hub.secret"], b"");
    assert_eq!(
        push(&form["hub.callback"], Some(&sig), Vec::new()).await,
        410
    );
    let after = next_poll_report(&mut s).await;
    let next = after.next_poll.expect("due");
    assert!(
        next - after.started < chrono::Duration::minutes(3),
        "{next}"
    );
    s.daemon.shutdown().await.expect("stops");
}

/// The next report of `s` that fetched (stored or not modified).
async fn next_poll_report(s: &mut Setup) -> PollReport {
    next(&mut s.reports, |r: &PollReport| {
        r.source == "s"
            && matches!(
                r.outcome,
                PollOutcome::Stored { .. } | PollOutcome::NotModified { .. }
            )
    })
    .await
}

#[tokio::test]
async fn websub_false_and_untrusted_plain_http_hubs_are_not_subscribed() {
    let mut hub = Hub::start(vec![Verify::Grant(3600)]).await;
    let origin = RawOrigin::start().await;
    // A plain-http hub outside loopback and allow_networks (TEST-NET-1).
    let untrusted = "http://192.0.2.1/hub";
    set_feed(
        &origin,
        &rss(untrusted, "https://example.org/u.xml", &[("a", "A")]),
        &[],
    );
    origin.set(
        "/off.xml",
        RawRoute::respond(
            200,
            &[("Content-Type", "application/rss+xml")],
            rss(&hub.url, "https://example.org/off.xml", &[("b", "B")]),
        ),
    );
    origin.set(
        "/on.xml",
        RawRoute::respond(
            200,
            &[("Content-Type", "application/rss+xml")],
            rss(&hub.url, "https://example.org/on.xml", &[("c", "C")]),
        ),
    );
    let sources = [
        source("u", &origin.url("/feed.xml"), ""),
        source("off", &origin.url("/off.xml"), "websub = false"),
        source("on", &origin.url("/on.xml"), ""),
    ]
    .concat();
    let mut s = Setup::start("", &sources, "").await;
    let mut seen = HashMap::new();
    while seen.len() < 3 {
        let r = s.stored_any().await;
        seen.insert(r.source.clone(), r.websub.is_some());
    }
    assert!(!seen["off"], "websub = false: nothing discovered");
    assert!(seen["on"] && seen["u"]);
    let off = s.wait_sub("u", |w| w["state"] == "off").await;
    assert!(
        off["reason"]
            .as_str()
            .is_some_and(|r| r.contains("plain http")),
        "{off}"
    );
    assert_eq!(off["hub"], untrusted);
    // The one request the hub got is for `on`.
    let form = subscribed(&mut hub).await;
    assert_eq!(form["hub.topic"], "https://example.org/on.xml");
    s.wait_sub("on", |w| w["state"] == "active").await;
    assert!(hub.requests.try_recv().is_err());
    let h = s.health().await;
    assert_eq!(h["websub"].as_array().map(Vec::len), Some(2), "{h}");
    s.daemon.shutdown().await.expect("stops");
}

impl Setup {
    async fn stored_any(&mut self) -> PollReport {
        next(&mut self.reports, |r: &PollReport| {
            matches!(r.outcome, PollOutcome::Stored { .. })
        })
        .await
    }
}

#[tokio::test]
async fn removing_a_source_unsubscribes_and_subscriptions_survive_a_restart() {
    let mut hub = Hub::start(vec![Verify::Grant(3600)]).await;
    let origin = RawOrigin::start().await;
    origin.set(
        "/a.xml",
        RawRoute::respond(
            200,
            &[("Content-Type", "application/rss+xml")],
            rss(&hub.url, "https://example.org/a.xml", &[("a", "A")]),
        ),
    );
    origin.set(
        "/b.xml",
        RawRoute::respond(
            200,
            &[("Content-Type", "application/rss+xml")],
            rss(&hub.url, "https://example.org/b.xml", &[("b", "B")]),
        ),
    );
    let both = [
        source("a", &origin.url("/a.xml"), ""),
        source("b", &origin.url("/b.xml"), ""),
    ]
    .concat();
    let s = Setup::start("", &both, "").await;
    let mut forms = HashMap::new();
    for _ in 0..2 {
        let form = subscribed(&mut hub).await;
        forms.insert(form["hub.topic"].clone(), form);
    }
    s.wait_sub("a", |w| w["state"] == "active").await;
    s.wait_sub("b", |w| w["state"] == "active").await;
    let a = forms["https://example.org/a.xml"].clone();
    let b = forms["https://example.org/b.xml"].clone();

    // Restart: the subscriptions (token, secret, lease) are kept; no new subscribe.
    let base = s.base.clone();
    let addr: std::net::SocketAddr = base.trim_start_matches("http://").parse().expect("addr");
    let Setup { dir, daemon, .. } = s;
    daemon.shutdown().await.expect("stops");
    let mut s = Setup::start_in(dir, Some(addr), "", &both, "").await;
    s.wait_sub("a", |w| w["state"] == "active").await;
    let body = rss(
        &hub.url,
        "https://example.org/a.xml",
        &[("after", "After restart")],
    )
    .into_bytes();
    let sig = sign("sha512", &a["hub.secret"], &body);
    assert_eq!(push(&a["hub.callback"], Some(&sig), body).await, 202);
    let r = s.stored("a").await;
    assert!(matches!(&r.outcome, PollOutcome::Stored { counts, .. } if counts.new == 1));
    assert!(
        hub.requests.try_recv().is_err(),
        "no subscribe after a restart"
    );

    // A reload without `b`: its subscription is unsubscribed (and verified), then gone.
    let path = s.dir.path().join("feeds.toml");
    std::fs::write(
        &path,
        config_text(&s.base, "", &source("a", &origin.url("/a.xml"), ""), ""),
    )
    .expect("write");
    s.daemon.reload().await.expect("reloaded");
    let un = hub.request().await;
    assert_eq!(un["hub.mode"], "unsubscribe");
    assert_eq!(un["hub.topic"], b["hub.topic"]);
    assert_eq!(un["hub.callback"], b["hub.callback"]);
    assert!(!un.contains_key("hub.secret"));
    let (_, status, body) = hub.verification().await;
    assert_eq!((status, body.as_str()), (200, "challenge-4711"));
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let h = s.health().await;
            let subs = h["websub"].as_array().cloned().unwrap_or_default();
            if subs.len() == 1 && subs[0]["source"] == "a" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("b's subscription is gone");
    // Its callback no longer takes deliveries.
    let sig = sign("sha256", &b["hub.secret"], b"");
    assert_eq!(push(&b["hub.callback"], Some(&sig), Vec::new()).await, 410);

    // A reload giving `a` another URL (whose feed names no hub): `a` is unsubscribed.
    origin.set(
        "/a2.xml",
        RawRoute::respond(
            200,
            &[("Content-Type", "application/rss+xml")],
            support::small_rss("a2", 1),
        ),
    );
    std::fs::write(
        &path,
        config_text(&s.base, "", &source("a", &origin.url("/a2.xml"), ""), ""),
    )
    .expect("write");
    s.daemon.reload().await.expect("reloaded");
    let un = hub.request().await;
    assert_eq!(un["hub.mode"], "unsubscribe");
    assert_eq!(un["hub.callback"], a["hub.callback"]);
    hub.verification().await;
    s.stored("a").await;
    tokio::time::timeout(Duration::from_secs(30), async {
        while s.health().await.get("websub").is_some() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("a's subscription is gone");
    s.daemon.shutdown().await.expect("stops");
}

#[tokio::test]
async fn without_base_url_nothing_is_subscribed() {
    let mut hub = Hub::start(vec![Verify::Grant(3600)]).await;
    let origin = origin(
        &rss(&hub.url, "https://example.org/t.xml", &[("a", "A")]),
        &[],
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n\n[fetch]\n{LOOPBACK}\n\n{}",
        source("s", &origin.url("/feed.xml"), "")
    );
    let cfg = config_raw(dir.path(), &text);
    let mut daemon = support::start(cfg).await;
    let mut reports = daemon.take_reports();
    let r = next(&mut reports, |r: &PollReport| r.source == "s").await;
    // Discovered, but with no base_url the hub could not reach us: no request.
    assert!(r.websub.is_some());
    let base = format!("http://{}", daemon.local_addr());
    let h = support::health(&base).await;
    assert!(h.get("websub").is_none(), "{h}");
    assert!(hub.requests.try_recv().is_err());
    daemon.shutdown().await.expect("stops");
}

#[tokio::test]
async fn turning_websub_off_by_reload_unsubscribes() {
    let mut hub = Hub::start(vec![Verify::Grant(3600)]).await;
    let origin = origin(
        &rss(&hub.url, "https://example.org/t.xml", &[("a", "A")]),
        &[],
    )
    .await;
    let sources = source("s", &origin.url("/feed.xml"), "");
    let mut s = Setup::start("", &sources, "").await;
    s.stored("s").await;
    let form = subscribed(&mut hub).await;
    s.wait_sub("s", |w| w["state"] == "active").await;
    let path = s.dir.path().join("feeds.toml");
    std::fs::write(
        &path,
        config_text(&s.base, "", &sources, "[websub]\nsubscribe = false"),
    )
    .expect("write");
    s.daemon.reload().await.expect("reloaded");
    let un = hub.request().await;
    assert_eq!(un["hub.mode"], "unsubscribe");
    assert_eq!(un["hub.callback"], form["hub.callback"]);
    hub.verification().await;
    // Once the hub has verified the unsubscribe, the callback takes nothing more.
    let sig = sign("sha256", &form["hub.secret"], b"");
    tokio::time::timeout(Duration::from_secs(30), async {
        while push(&form["hub.callback"], Some(&sig), Vec::new()).await != 410 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the callback is gone");
    s.daemon.shutdown().await.expect("stops");
}

#[tokio::test]
async fn a_hub_that_never_answers_delays_neither_polls_nor_the_server() {
    let mut hub = Hub::start(vec![Verify::Hang]).await;
    let origin = RawOrigin::start().await;
    for (path, topic) in [("/a.xml", "a"), ("/b.xml", "b")] {
        origin.set(
            path,
            RawRoute::respond(
                200,
                &[("Content-Type", "application/rss+xml")],
                rss(
                    &hub.url,
                    &format!("https://example.org/{topic}.xml"),
                    &[(topic, topic)],
                ),
            ),
        );
    }
    let sources = [
        source("a", &origin.url("/a.xml"), ""),
        format!(
            "[[source]]\nname = \"b\"\nurl = \"{}\"\ninterval = \"1s\"\n\n",
            origin.url("/b.xml")
        ),
    ]
    .concat();
    let mut s = Setup::start("timeout = \"5m\"", &sources, "").await;
    // Both subscribe requests hang at the hub...
    hub.request().await;
    hub.request().await;
    // ...while `b` is polled again and again and the feeds are served.
    for _ in 0..3 {
        s.stored("b").await;
    }
    let (status, _, atom) = get(&format!("{}/feed.atom", s.base)).await;
    assert_eq!(status, 200);
    assert!(
        atom.contains("<title>a</title>") || atom.contains(">a<"),
        "{atom}"
    );
    let sub = s.wait_sub("a", |w| w["state"] == "pending").await;
    assert_eq!(sub["hub"], hub.url);
    // Shutdown does not wait for the hub either.
    tokio::time::timeout(Duration::from_secs(5), s.daemon.shutdown())
        .await
        .expect("stops at once")
        .expect("stops");
}

#[tokio::test]
async fn hub_requests_pass_the_address_guard() {
    // No allow_networks: the hub on loopback is refused before any request is sent.
    let mut hub = Hub::start(vec![Verify::Grant(3600)]).await;
    let origin = origin(
        &rss(&hub.url, "https://example.org/t.xml", &[("a", "A")]),
        &[],
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nbase_url = \"{base}\"\n\n{}",
        source("s", &origin.url("/feed.xml"), "")
    );
    let mut daemon = app::start(config_raw(dir.path(), &text), listener)
        .await
        .expect("starts");
    let mut reports = daemon.take_reports();
    next(&mut reports, |r: &PollReport| r.source == "s").await;
    let s = Setup {
        dir,
        base,
        daemon,
        reports,
    };
    let sub = s.wait_sub("s", |w| w["state"] == "denied").await;
    let reason = sub["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("loopback"), "{reason}");
    assert!(hub.requests.try_recv().is_err(), "nothing reached the hub");
    s.daemon.shutdown().await.expect("stops");
}

#[tokio::test]
async fn a_delivery_body_must_arrive_within_the_fetch_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut hub = Hub::start(vec![Verify::Grant(3600)]).await;
    let origin = origin(
        &rss(&hub.url, "https://example.org/t.xml", &[("a", "A")]),
        &[],
    )
    .await;
    let mut s = Setup::start(
        "timeout = \"1s\"",
        &source("s", &origin.url("/feed.xml"), ""),
        "",
    )
    .await;
    s.stored("s").await;
    let form = subscribed(&mut hub).await;
    let path = form["hub.callback"]
        .strip_prefix(&s.base)
        .expect("under base")
        .to_string();
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut conn = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/rss+xml\r\nX-Hub-Signature: sha256=00\r\nContent-Length: 1000\r\n\r\n<rss>"
    );
    conn.write_all(head.as_bytes()).await.expect("write");
    // The rest never comes: answered 408 after [fetch] timeout, well before the server's own
    // request timeout (30 s).
    let began = std::time::Instant::now();
    let mut answer = vec![0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(20), conn.read(&mut answer))
        .await
        .expect("answered")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer[..n]).to_string();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(began.elapsed() < Duration::from_secs(10));
    s.daemon.shutdown().await.expect("stops");
}

/// The callback's address and the secret, once `s` is subscribed to `hub` and active.
async fn active(s: &Setup, hub: &mut Hub) -> Form {
    let form = subscribed(hub).await;
    s.wait_sub("s", |w| w["state"] == "active").await;
    form
}

/// Waits until /metrics of `s` contains `line`.
async fn wait_metric(s: &Setup, line: &str) {
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let (_, _, metrics) = get(&format!("{}/metrics", s.base)).await;
            if metrics.contains(line) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("metrics never showed {line}"));
}

/// A GET on `callback` saying the hub denied the subscription.
async fn deny(callback: &str, topic: &str) -> u16 {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([("hub.mode", "denied"), ("hub.topic", topic)])
        .finish();
    get(&format!("{callback}?{query}")).await.0
}

#[tokio::test]
async fn deliveries_are_taken_only_while_the_subscription_is_active_and_configured() {
    // Granted, then the unsubscribe is accepted and never verified (it stays pending),
    // then the new URL's subscribe is granted.
    let mut hub = Hub::start(vec![
        Verify::Grant(3600),
        Verify::Ignore,
        Verify::Grant(3600),
    ])
    .await;
    let topic = "https://example.org/t.xml";
    let feed = rss(&hub.url, topic, &[("a", "A")]);
    let origin = origin(&feed, &[]).await;
    origin.set(
        "/moved.xml",
        RawRoute::respond(200, &[("Content-Type", "application/rss+xml")], feed),
    );
    let mut s = Setup::start("", &source("s", &origin.url("/feed.xml"), ""), "").await;
    s.stored("s").await;
    let old = active(&s, &mut hub).await;
    // The source's URL changes by reload: the old subscription is being unsubscribed and
    // takes nothing more (410, so the hub stops), before and after the hub's denial.
    std::fs::write(
        s.dir.path().join("feeds.toml"),
        config_text(&s.base, "", &source("s", &origin.url("/moved.xml"), ""), ""),
    )
    .expect("write");
    s.daemon.reload().await.expect("reloaded");
    let un = hub.request().await;
    assert_eq!(un["hub.mode"], "unsubscribe");
    let body = rss(&hub.url, topic, &[("late", "Late push")]).into_bytes();
    let sig = sign("sha256", &old["hub.secret"], &body);
    assert_eq!(
        push(&old["hub.callback"], Some(&sig), body.clone()).await,
        410
    );
    assert_eq!(deny(&old["hub.callback"], topic).await, 200);
    assert_eq!(
        push(&old["hub.callback"], Some(&sig), body.clone()).await,
        410
    );
    // The denied record of the old URL is forgotten; the new URL is subscribed.
    let new = subscribed(&mut hub).await;
    assert_ne!(new["hub.callback"], old["hub.callback"]);
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let h = s.health().await;
            let subs = h["websub"].as_array().cloned().unwrap_or_default();
            if subs.len() == 1 && subs[0]["state"] == "active" {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("only the new subscription is left");
    let (_, _, atom) = get(&format!("{}/feed.atom", s.base)).await;
    assert!(!atom.contains("Late push"), "{atom}");
    s.daemon.shutdown().await.expect("stops");
}

#[tokio::test]
async fn a_denied_subscription_takes_no_deliveries() {
    let mut hub = Hub::start(vec![Verify::Grant(3600)]).await;
    let topic = "https://example.org/t.xml";
    let origin = origin(&rss(&hub.url, topic, &[("a", "A")]), &[]).await;
    let mut s = Setup::start("", &source("s", &origin.url("/feed.xml"), ""), "").await;
    s.stored("s").await;
    let form = active(&s, &mut hub).await;
    assert_eq!(deny(&form["hub.callback"], topic).await, 200);
    s.wait_sub("s", |w| w["state"] == "denied").await;
    let body = rss(&hub.url, topic, &[("x", "After denial")]).into_bytes();
    let sig = sign("sha256", &form["hub.secret"], &body);
    assert_eq!(push(&form["hub.callback"], Some(&sig), body).await, 410);
    let thin = sign("sha256", &form["hub.secret"], b"");
    assert_eq!(
        push(&form["hub.callback"], Some(&thin), Vec::new()).await,
        410
    );
    s.daemon.shutdown().await.expect("stops");
}

#[tokio::test]
async fn thin_pings_and_denials_are_folded_into_one_poll_per_gap() {
    let mut hub = Hub::start(vec![Verify::Grant(3600)]).await;
    let topic = "https://example.org/t.xml";
    let origin = origin(&rss(&hub.url, topic, &[("a", "A")]), &[]).await;
    let mut s = Setup::start("", &source("s", &origin.url("/feed.xml"), ""), "").await;
    s.stored("s").await;
    let form = active(&s, &mut hub).await;
    let fetched = origin.requests("/feed.xml").len();
    let sig = sign("sha256", &form["hub.secret"], b"");
    for _ in 0..20 {
        assert_eq!(
            push(&form["hub.callback"], Some(&sig), Vec::new()).await,
            202
        );
    }
    // The first asks for a poll; the other 19 (and a denial after) wait for the gap's end.
    next_poll_report(&mut s).await;
    assert_eq!(deny(&form["hub.callback"], topic).await, 200);
    let (_, _, metrics) = get(&format!("{}/metrics", s.base)).await;
    assert!(
        metrics.contains("tributary_websub_deliveries_total{source=\"s\",result=\"thin\"} 20"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tributary_websub_deliveries_total{source=\"s\",result=\"coalesced\"} 20"),
        "{metrics}"
    );
    s.daemon.shutdown().await.expect("stops");
    assert_eq!(origin.requests("/feed.xml").len(), fetched + 1);
}

#[tokio::test]
async fn a_pushed_document_of_another_feed_is_ignored_and_one_without_self_taken() {
    let mut hub = Hub::start(vec![Verify::Grant(3600)]).await;
    let topic = "https://example.org/t.xml";
    let origin = origin(&rss(&hub.url, topic, &[("a", "A")]), &[]).await;
    let mut s = Setup::start("", &source("s", &origin.url("/feed.xml"), ""), "").await;
    s.stored("s").await;
    let form = active(&s, &mut hub).await;
    let other = rss(
        &hub.url,
        "https://example.org/other.xml",
        &[("o", "Other feed")],
    );
    let sig = sign("sha256", &form["hub.secret"], other.as_bytes());
    assert_eq!(
        push(&form["hub.callback"], Some(&sig), other.into_bytes()).await,
        202
    );
    s.wait_sub("s", |w| w["rejected"] == 1).await;
    // A signed document of another feed is news all the same: the source is polled (and
    // that poll's report is not the next push's).
    next_poll_report(&mut s).await;
    let no_self = rss(&hub.url, topic, &[("n", "No self")])
        .replace(&format!("<atom:link rel=\"self\" href=\"{topic}\"/>"), "");
    assert!(!no_self.contains("rel=\"self\""));
    let sig = sign("sha256", &form["hub.secret"], no_self.as_bytes());
    assert_eq!(
        push(&form["hub.callback"], Some(&sig), no_self.into_bytes()).await,
        202
    );
    s.stored("s").await;
    let (_, _, atom) = get(&format!("{}/feed.atom", s.base)).await;
    assert!(
        atom.contains("No self") && !atom.contains("Other feed"),
        "{atom}"
    );
    let sub = s.wait_sub("s", |w| w["deliveries"] == 1).await;
    assert_eq!(sub["rejected"], 1);
    s.daemon.shutdown().await.expect("stops");
}

#[tokio::test]
async fn fat_pings_past_the_storing_places_are_answered_503_with_retry_after() {
    let mut hub = Hub::start(vec![Verify::Grant(3600)]).await;
    let topic = "https://example.org/t.xml";
    let origin = origin(&rss(&hub.url, topic, &[("a", "A")]), &[]).await;
    let mut s = Setup::start("", &source("s", &origin.url("/feed.xml"), ""), "").await;
    s.stored("s").await;
    let form = active(&s, &mut hub).await;
    // Documents large enough that storing one takes a while: sent two at a time (a
    // callback token's share of places, `MAX_CALLBACK_REQUESTS_PER_TOKEN`), each answered
    // before it is stored, 24 of them overrun the source's storing places (3), so every
    // refusal is the subscriber's.
    let items: Vec<(String, String)> = (0..1500)
        .map(|i| (format!("g{i}"), format!("Item {i}")))
        .collect();
    let items: Vec<(&str, &str)> = items
        .iter()
        .map(|(g, t)| (g.as_str(), t.as_str()))
        .collect();
    let body = rss(&hub.url, topic, &items).into_bytes();
    let sig = sign("sha256", &form["hub.secret"], &body);
    let client = reqwest::Client::new();
    const { assert!(tributary::serve::MAX_CALLBACK_REQUESTS_PER_TOKEN == 2) };
    let mut busy = 0;
    for _ in 0..12 {
        let mut sends = tokio::task::JoinSet::new();
        for _ in 0..2 {
            sends.spawn(
                client
                    .post(&form["hub.callback"])
                    .header("Content-Type", "application/rss+xml")
                    .header("X-Hub-Signature", &sig)
                    .body(body.clone())
                    .send(),
            );
        }
        while let Some(answer) = sends.join_next().await {
            let answer = answer.expect("joined").expect("answered");
            match answer.status().as_u16() {
                202 => {}
                503 => {
                    busy += 1;
                    assert_eq!(
                        answer.headers()["retry-after"],
                        tributary::daemon::websub::BUSY_RETRY_AFTER
                            .to_string()
                            .as_str()
                    );
                }
                other => panic!("{other}"),
            }
        }
    }
    assert!(busy > 0, "some were refused");
    wait_metric(
        &s,
        &format!("tributary_websub_deliveries_total{{source=\"s\",result=\"dropped\"}} {busy}\n"),
    )
    .await;
    s.daemon.shutdown().await.expect("stops");
}

#[tokio::test]
async fn a_source_moves_to_another_hub_at_most_once_an_hour() {
    let mut a = Hub::start(vec![Verify::Grant(3600)]).await;
    let mut b = Hub::start(vec![Verify::Grant(3600)]).await;
    let mut c = Hub::start(vec![Verify::Grant(3600)]).await;
    let topic = "https://example.org/t.xml";
    let origin = origin(&rss(&a.url, topic, &[("a", "A")]), &[]).await;
    let mut s = Setup::start("", &source("s", &origin.url("/feed.xml"), ""), "").await;
    s.stored("s").await;
    let first = active(&s, &mut a).await;
    let poll = |s: &Setup| {
        let config = (*s.daemon.config()).clone();
        async move {
            app::poll(config, vec!["s".into()], |_| {})
                .await
                .expect("polled");
        }
    };
    // The first move: the old subscription is unsubscribed, the new hub subscribed.
    set_feed(&origin, &rss(&b.url, topic, &[("a", "A")]), &[]);
    poll(&s).await;
    let un = a.request().await;
    assert_eq!(
        (un["hub.mode"].as_str(), &un["hub.callback"]),
        ("unsubscribe", &first["hub.callback"])
    );
    subscribed(&mut b).await;
    s.wait_sub("s", |w| {
        w["state"] == "active" && w["hub"] == b.url.as_str()
    })
    .await;
    // Another within the hour: the current subscription is kept (and says why).
    set_feed(&origin, &rss(&c.url, topic, &[("a", "A")]), &[]);
    poll(&s).await;
    s.wait_sub("s", |w| {
        w["hub"] == b.url.as_str()
            && w["reason"]
                .as_str()
                .is_some_and(|r| r.contains("moved less than an hour ago"))
    })
    .await;
    assert!(
        c.requests.try_recv().is_err(),
        "no subscribe to the third hub"
    );
    assert!(
        b.requests.try_recv().is_err(),
        "no unsubscribe from the second"
    );
    let h = s.health().await;
    assert_eq!(h["websub"].as_array().map(Vec::len), Some(1), "{h}");
    s.daemon.shutdown().await.expect("stops");
}

#[tokio::test]
async fn a_renewal_the_hub_verifies_extends_the_lease() {
    let mut hub = Hub::start(vec![Verify::Grant(6), Verify::Grant(3600)]).await;
    let topic = "https://example.org/t.xml";
    let origin = origin(&rss(&hub.url, topic, &[("a", "A")]), &[]).await;
    let mut s = Setup::start("", &source("s", &origin.url("/feed.xml"), ""), "").await;
    s.stored("s").await;
    let form = active(&s, &mut hub).await;
    let renewal = subscribed(&mut hub).await;
    assert_eq!(renewal["hub.callback"], form["hub.callback"]);
    let sub = s
        .wait_sub("s", |w| {
            w["state"] == "active"
                && w["lease_end"]
                    .as_str()
                    .and_then(|e| chrono::DateTime::parse_from_rfc3339(e).ok())
                    .is_some_and(|e| e > chrono::Utc::now() + chrono::Duration::minutes(50))
        })
        .await;
    assert!(sub["pending"].is_null(), "{sub}");
    s.daemon.shutdown().await.expect("stops");
}

#[tokio::test]
async fn a_new_base_url_by_reload_unsubscribes_the_old_callback() {
    let mut hub = Hub::start(vec![Verify::Grant(3600)]).await;
    let topic = "https://example.org/t.xml";
    let origin = origin(&rss(&hub.url, topic, &[("a", "A")]), &[]).await;
    let sources = source("s", &origin.url("/feed.xml"), "");
    let mut s = Setup::start("", &sources, "").await;
    s.stored("s").await;
    let form = active(&s, &mut hub).await;
    let text = config_text(&s.base, "", &sources, "").replace(
        &format!("base_url = \"{}\"", s.base),
        &format!("base_url = \"{}/river\"", s.base),
    );
    std::fs::write(s.dir.path().join("feeds.toml"), text).expect("write");
    s.daemon.reload().await.expect("reloaded");
    let un = hub.request().await;
    assert_eq!(un["hub.mode"], "unsubscribe");
    assert_eq!(un["hub.callback"], form["hub.callback"]);
    s.daemon.shutdown().await.expect("stops");
}

#[tokio::test]
async fn an_unsubscribe_never_verified_is_sent_again_after_a_restart() {
    // Granted; the unsubscribe hangs (never answered).
    let mut hub = Hub::start(vec![Verify::Grant(3600), Verify::Hang]).await;
    let origin = origin(
        &rss(&hub.url, "https://example.org/t.xml", &[("a", "A")]),
        &[],
    )
    .await;
    let sources = source("s", &origin.url("/feed.xml"), "");
    let mut s = Setup::start("", &sources, "").await;
    s.stored("s").await;
    let form = active(&s, &mut hub).await;
    std::fs::write(
        s.dir.path().join("feeds.toml"),
        config_text(&s.base, "", &sources, "[websub]\nsubscribe = false"),
    )
    .expect("write");
    s.daemon.reload().await.expect("reloaded");
    let un = hub.request().await;
    assert_eq!(un["hub.mode"], "unsubscribe");
    let Setup { dir, daemon, .. } = s;
    daemon.shutdown().await.expect("stops");
    let s = Setup::start_in(dir, None, "", &sources, "[websub]\nsubscribe = false").await;
    let again = hub.request().await;
    assert_eq!(again["hub.mode"], "unsubscribe");
    assert_eq!(again["hub.callback"], form["hub.callback"]);
    s.daemon.shutdown().await.expect("stops");
}

#[tokio::test]
async fn one_callback_holds_only_its_share_of_the_callback_places() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut hub = Hub::start(vec![Verify::Grant(3600)]).await;
    let topic = "https://example.org/t.xml";
    let origin = origin(&rss(&hub.url, topic, &[("a", "A")]), &[]).await;
    let s = Setup::start("", &source("s", &origin.url("/feed.xml"), ""), "").await;
    let form = active(&s, &mut hub).await;
    let path = url::Url::parse(&form["hub.callback"])
        .expect("callback")
        .path()
        .to_string();
    let addr = s.daemon.local_addr();
    let head = |length: usize| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/rss+xml\r\n\
             X-Hub-Signature: sha256=00\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
        )
    };
    // Whoever learns the callback URL drips its share of bodies...
    let mut held = Vec::new();
    for _ in 0..tributary::serve::MAX_CALLBACK_REQUESTS_PER_TOKEN {
        let mut c = tokio::net::TcpStream::connect(addr).await.expect("connect");
        c.write_all(format!("{}<", head(1000)).as_bytes())
            .await
            .expect("write");
        held.push(c);
    }
    // ...and the next delivery to it is refused at once, once the server holds them.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let mut c = tokio::net::TcpStream::connect(addr).await.expect("connect");
        c.write_all(head(0).as_bytes()).await.expect("write");
        let mut buf = vec![0u8; 256];
        let n = tokio::time::timeout(Duration::from_secs(10), c.read(&mut buf))
            .await
            .expect("answered")
            .expect("read");
        let line = String::from_utf8_lossy(&buf[..n]).to_string();
        if line.starts_with("HTTP/1.1 503") {
            assert!(line.contains("this callback"), "{line}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never refused: {line}"
        );
        tokio::task::yield_now().await;
    }
    // Other callbacks' places are untouched: a token we do not hold is answered (410).
    let other = format!("{}/websub/callback/{}", s.base, "cd".repeat(32));
    let answer = reqwest::Client::new()
        .post(&other)
        .body("x")
        .send()
        .await
        .expect("post");
    assert_eq!(answer.status(), 410);
    drop(held);
    s.daemon.shutdown().await.expect("stops");
}
