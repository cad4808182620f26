//! Webhooks (`[[webhook]]`) through the real daemon: a receiver on loopback records each
//! POST; signatures are checked with the `standardwebhooks` crate (Svix's, independent of
//! ours); retries, selection, formats, the address guard, and polls that never wait.

mod support;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;

use support::{Origin, Route, all_stored, config_prelude, config_raw, health, small_rss, start};
use support::{get, source_toml};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const LOOPBACK: &str = "allow_networks = [\"127.0.0.0/8\"]";

/// One POST the receiver got.
#[derive(Debug)]
struct Got {
    path: String,
    headers: HeaderMap,
    body: Bytes,
    at: Instant,
}

/// How the receiver answers a request.
#[derive(Clone)]
enum Answer {
    Status(u16, Vec<(&'static str, &'static str)>),
    /// Never answers.
    Hang,
}

#[derive(Clone)]
struct ReceiverState {
    got: mpsc::UnboundedSender<Got>,
    /// Answers in order; then 200.
    plan: Arc<Mutex<VecDeque<Answer>>>,
}

/// A webhook receiver on 127.0.0.1:0.
struct Receiver {
    base: String,
    got: mpsc::UnboundedReceiver<Got>,
}

impl Receiver {
    async fn start(plan: Vec<Answer>) -> Receiver {
        let (tx, got) = mpsc::unbounded_channel();
        let state = ReceiverState {
            got: tx,
            plan: Arc::new(Mutex::new(plan.into())),
        };
        let app = axum::Router::new()
            .fallback(axum::routing::post(receive))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { base, got }
    }

    /// The next POST; fails the test after 30 s.
    async fn next(&mut self) -> Got {
        tokio::time::timeout(Duration::from_secs(30), self.got.recv())
            .await
            .expect("a webhook request came")
            .expect("receiver open")
    }
}

async fn receive(
    State(state): State<ReceiverState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let _ = state.got.send(Got {
        path: uri.path().to_string(),
        headers,
        body,
        at: Instant::now(),
    });
    let answer = state
        .plan
        .lock()
        .expect("plan")
        .pop_front()
        .unwrap_or(Answer::Status(200, vec![]));
    match answer {
        Answer::Status(code, headers) => {
            let mut r = StatusCode::from_u16(code).expect("status").into_response();
            for (k, v) in headers {
                r.headers_mut().insert(k, v.parse().expect("header value"));
            }
            r
        }
        Answer::Hang => std::future::pending().await,
    }
}

/// A `[[webhook]]` table.
fn webhook_toml(url: &str, extra: &str) -> String {
    format!("[[webhook]]\nurl = \"{url}\"\nsecret = \"{SECRET}\"\n{extra}\n\n")
}

/// The request verifies with the Standard Webhooks reference library.
fn verify(got: &Got) {
    standardwebhooks::Webhook::new(SECRET)
        .expect("secret")
        .verify(&got.body, &got.headers)
        .expect("the signature verifies");
}

fn header<'a>(got: &'a Got, name: &str) -> &'a str {
    got.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// The titles of a JSON Feed's items.
fn json_titles(body: &[u8]) -> Vec<String> {
    let doc: serde_json::Value = serde_json::from_slice(body).expect("json");
    assert_eq!(doc["version"], "https://jsonfeed.org/version/1.1");
    let mut titles: Vec<String> = doc["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["title"].as_str().unwrap_or_default().to_string())
        .collect();
    titles.sort();
    titles
}

/// The webhook `name`'s status in `/healthz` once `pred` holds for it (fails after 30 s).
async fn hook_status(
    base: &str,
    name: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let h = health(base).await;
        let w = h["webhooks"]
            .as_array()
            .and_then(|a| a.iter().find(|w| w["name"] == name).cloned())
            .unwrap_or_default();
        if pred(&w) {
            return w;
        }
        assert!(
            Instant::now() < deadline,
            "webhook {name} never got there: {w}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_poll_s_new_entries_are_posted_signed() {
    let origin = Origin::start().await;
    origin.set(
        "/a.xml",
        Route::feed(small_rss("a", 3), "application/rss+xml"),
    );
    let mut receiver = Receiver::start(vec![]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let text = config_prelude(LOOPBACK)
        + &source_toml("a", &origin.url("/a.xml"), "1s", "title = \"Alpha\"")
        + &webhook_toml(&format!("{}/hook", receiver.base), "name = \"chat\"");
    let mut daemon = start(config_raw(dir.path(), &text)).await;
    let mut reports = daemon.take_reports();
    all_stored(&mut reports, &["a"]).await;

    let got = receiver.next().await;
    assert_eq!(got.path, "/hook");
    verify(&got);
    assert!(header(&got, "webhook-id").starts_with("msg_"));
    let ts: i64 = header(&got, "webhook-timestamp")
        .parse()
        .expect("unix seconds");
    assert!((chrono::Utc::now().timestamp() - ts).abs() < 60);
    assert!(header(&got, "webhook-signature").starts_with("v1,"));
    assert_eq!(header(&got, "content-type"), "application/feed+json");
    assert_eq!(json_titles(&got.body), ["a 0", "a 1", "a 2"]);
    let doc: serde_json::Value = serde_json::from_slice(&got.body).expect("json");
    assert!(
        doc["title"].as_str().unwrap_or_default().contains("Alpha"),
        "the title names the source: {}",
        doc["title"]
    );
    // Tampering breaks the signature (the check is a real one).
    let mut tampered = got.body.to_vec();
    tampered.extend_from_slice(b" ");
    assert!(
        standardwebhooks::Webhook::new(SECRET)
            .expect("secret")
            .verify(&tampered, &got.headers)
            .is_err()
    );

    let base = format!("http://{}", daemon.local_addr());
    let w = hook_status(&base, "chat", |w| w["delivered"] == 1).await;
    assert_eq!(w["failed"], 0);
    assert_eq!(w["pending"], 0);
    assert!(w["last_delivery"].is_string());
    assert!(
        w.get("url").is_none(),
        "the URL (maybe a token) is not public"
    );
    let (_, _, metrics) = get(&format!("{base}/metrics")).await;
    assert!(
        metrics.contains(
            "tributary_webhook_deliveries_total{webhook=\"chat\",result=\"delivered\"} 1"
        ),
        "{metrics}"
    );
    daemon.shutdown().await.expect("stops");
}

#[tokio::test]
async fn a_big_poll_is_sent_in_deliveries_of_100_entries() {
    let origin = Origin::start().await;
    origin.set(
        "/a.xml",
        Route::feed(small_rss("a", 150), "application/rss+xml"),
    );
    let mut receiver = Receiver::start(vec![]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let text = config_prelude(LOOPBACK)
        + &source_toml("a", &origin.url("/a.xml"), "1s", "")
        + &webhook_toml(&receiver.base, "");
    let mut daemon = start(config_raw(dir.path(), &text)).await;
    let mut reports = daemon.take_reports();
    all_stored(&mut reports, &["a"]).await;
    let base = format!("http://{}", daemon.local_addr());
    hook_status(&base, "webhook-1", |w| w["delivered"] == 2).await;
    let (one, two) = (receiver.next().await, receiver.next().await);
    let mut sizes = [json_titles(&one.body).len(), json_titles(&two.body).len()];
    sizes.sort();
    assert_eq!(sizes, [50, 100]);
    assert_ne!(header(&one, "webhook-id"), header(&two, "webhook-id"));
    daemon.shutdown().await.expect("stops");
}

#[tokio::test]
async fn a_500_is_retried_with_the_same_id_and_a_400_is_not() {
    let origin = Origin::start().await;
    origin.set(
        "/a.xml",
        Route::feed(small_rss("a", 1), "application/rss+xml"),
    );
    origin.set(
        "/b.xml",
        Route::feed(small_rss("b", 1), "application/rss+xml"),
    );
    let mut flaky = Receiver::start(vec![Answer::Status(500, vec![])]).await;
    let mut refusing = Receiver::start(vec![Answer::Status(400, vec![])]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let text = config_prelude(LOOPBACK)
        + &source_toml("a", &origin.url("/a.xml"), "1s", "")
        + &source_toml("b", &origin.url("/b.xml"), "1s", "")
        + &webhook_toml(
            &format!("{}/", flaky.base),
            "name = \"flaky\"\nsources = [\"a\"]",
        )
        + &webhook_toml(
            &format!("{}/", refusing.base),
            "name = \"refusing\"\nsources = [\"b\"]",
        );
    let mut daemon = start(config_raw(dir.path(), &text)).await;
    let mut reports = daemon.take_reports();
    all_stored(&mut reports, &["a", "b"]).await;

    let first = flaky.next().await;
    let second = flaky.next().await;
    verify(&first);
    verify(&second);
    assert_eq!(header(&first, "webhook-id"), header(&second, "webhook-id"));
    assert_eq!(first.body, second.body);
    let waited = second.at - first.at;
    assert!(
        waited >= Duration::from_millis(1500),
        "retried after a backoff: {waited:?}"
    );

    let base = format!("http://{}", daemon.local_addr());
    let w = hook_status(&base, "flaky", |w| w["delivered"] == 1).await;
    assert_eq!(w["retries"], 1);
    assert_eq!(w["failed"], 0);
    assert!(
        w["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("HTTP 500"),
        "{w}"
    );

    let once = refusing.next().await;
    verify(&once);
    let w = hook_status(&base, "refusing", |w| w["failed"] == 1).await;
    assert_eq!(w["retries"], 0);
    assert_eq!(w["pending"], 0, "given up: nothing more will be sent");
    assert!(
        w["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("HTTP 400"),
        "{w}"
    );
    assert!(refusing.got.try_recv().is_err(), "a 400 is not retried");
    daemon.shutdown().await.expect("stops");
}

#[tokio::test]
async fn a_429_is_retried_after_its_retry_after() {
    let origin = Origin::start().await;
    origin.set(
        "/a.xml",
        Route::feed(small_rss("a", 1), "application/rss+xml"),
    );
    let mut receiver = Receiver::start(vec![Answer::Status(429, vec![("retry-after", "3")])]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let text = config_prelude(LOOPBACK)
        + &source_toml("a", &origin.url("/a.xml"), "1s", "")
        + &webhook_toml(&receiver.base, "");
    let mut daemon = start(config_raw(dir.path(), &text)).await;
    let mut reports = daemon.take_reports();
    all_stored(&mut reports, &["a"]).await;
    let first = receiver.next().await;
    let second = receiver.next().await;
    assert_eq!(header(&first, "webhook-id"), header(&second, "webhook-id"));
    let waited = second.at - first.at;
    // Longer than the first backoff (2 s): only Retry-After explains the wait.
    assert!(
        waited >= Duration::from_millis(2900),
        "Retry-After: 3 is honoured: {waited:?}"
    );
    verify(&second);
    let base = format!("http://{}", daemon.local_addr());
    hook_status(&base, "webhook-1", |w| w["delivered"] == 1).await;
    daemon.shutdown().await.expect("stops");
}

#[tokio::test]
async fn sources_tags_and_feeds_choose_the_entries() {
    let origin = Origin::start().await;
    for s in ["a", "b", "c"] {
        origin.set(
            &format!("/{s}.xml"),
            Route::feed(small_rss(s, 2), "application/rss+xml"),
        );
    }
    let mut receiver = Receiver::start(vec![]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let r = &receiver.base;
    let text = config_prelude(LOOPBACK)
        + &source_toml("a", &origin.url("/a.xml"), "1s", "tags = [\"x\"]")
        + &source_toml("b", &origin.url("/b.xml"), "1s", "tags = [\"y\"]")
        + &source_toml("c", &origin.url("/c.xml"), "1s", "")
        + "[[feed]]\nname = \"picked\"\nsources = [\"c\"]\ninclude = [\"c 1\"]\n\n"
        + &webhook_toml(&format!("{r}/by-source"), "name = \"s\"\nsources = [\"a\"]")
        + &webhook_toml(&format!("{r}/by-tag"), "name = \"t\"\ntags = [\"y\"]")
        + &webhook_toml(
            &format!("{r}/by-feed"),
            "name = \"f\"\nfeeds = [\"picked\"]\nformat = \"atom\"",
        )
        + &webhook_toml(&format!("{r}/all"), "name = \"all\"");
    let mut daemon = start(config_raw(dir.path(), &text)).await;
    let mut reports = daemon.take_reports();
    all_stored(&mut reports, &["a", "b", "c"]).await;
    let base = format!("http://{}", daemon.local_addr());
    // Every poll's deliveries are queued together; once "all" has its three, none is
    // left to come.
    hook_status(&base, "all", |w| w["delivered"] == 3).await;
    for name in ["s", "t", "f"] {
        hook_status(&base, name, |w| w["delivered"] == 1 && w["pending"] == 0).await;
    }
    let mut by_path: std::collections::HashMap<String, Vec<Got>> = Default::default();
    for _ in 0..6 {
        let got = receiver.next().await;
        verify(&got);
        by_path.entry(got.path.clone()).or_default().push(got);
    }
    assert!(receiver.got.try_recv().is_err(), "six deliveries in all");
    assert_eq!(json_titles(&by_path["/by-source"][0].body), ["a 0", "a 1"]);
    assert_eq!(json_titles(&by_path["/by-tag"][0].body), ["b 0", "b 1"]);
    let mut all: Vec<String> = by_path["/all"]
        .iter()
        .flat_map(|g| json_titles(&g.body))
        .collect();
    all.sort();
    assert_eq!(all, ["a 0", "a 1", "b 0", "b 1", "c 0", "c 1"]);
    // The named feed's sources and patterns; in Atom.
    let atom = &by_path["/by-feed"][0];
    assert!(header(atom, "content-type").starts_with("application/atom+xml"));
    let feed = atom_syndication::Feed::read_from(&atom.body[..]).expect("atom parses");
    let titles: Vec<&str> = feed.entries.iter().map(|e| e.title.as_str()).collect();
    assert_eq!(titles, ["c 1"]);
    daemon.shutdown().await.expect("stops");
}

#[tokio::test]
async fn a_hanging_receiver_delays_neither_polls_nor_serving() {
    let origin = Origin::start().await;
    let names = ["s1", "s2", "s3", "s4", "s5"];
    for s in names {
        origin.set(
            &format!("/{s}.xml"),
            Route::feed(small_rss(s, 1), "application/rss+xml"),
        );
    }
    origin.set(
        "/late.xml",
        Route::feed(small_rss("late", 1), "application/rss+xml"),
    );
    let mut receiver = Receiver::start(vec![Answer::Hang; 10]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let sources: String = names
        .iter()
        .map(|s| source_toml(s, &origin.url(&format!("/{s}.xml")), "1s", ""))
        .collect();
    let hook = webhook_toml(&receiver.base, "name = \"stuck\"");
    let text = config_prelude(&format!("{LOOPBACK}\ntimeout = \"60s\""));
    let mut daemon = start(config_raw(dir.path(), &(text.clone() + &sources + &hook))).await;
    let mut reports = daemon.take_reports();
    all_stored(&mut reports, &names).await;
    // Every sending place is taken by a request that never ends.
    for _ in 0..4 {
        receiver.next().await;
    }
    let base = format!("http://{}", daemon.local_addr());
    hook_status(&base, "stuck", |w| w["pending"] == 5).await;

    // A source added now is polled and stored at once, and the server answers at once.
    let late = source_toml("late", &origin.url("/late.xml"), "1s", "");
    std::fs::write(
        dir.path().join("feeds.toml"),
        text + &sources + &late + &hook,
    )
    .expect("write");
    let began = Instant::now();
    daemon.reload().await.expect("reloads");
    all_stored(&mut reports, &["late"]).await;
    let (status, _, _) = get(&format!("{base}/feed.atom")).await;
    assert_eq!(status, 200);
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "polling and serving did not wait: {:?}",
        began.elapsed()
    );
    // Its delivery is queued behind the stuck ones.
    hook_status(&base, "stuck", |w| w["pending"] == 6).await;
    assert!(
        receiver.got.try_recv().is_err(),
        "no place for a fifth request"
    );
    let stop = Instant::now();
    daemon.shutdown().await.expect("stops");
    assert!(
        stop.elapsed() < Duration::from_secs(3),
        "stuck deliveries do not hold a stop"
    );
}

#[tokio::test]
async fn a_loopback_receiver_without_allow_networks_is_refused() {
    let origin = Origin::start().await;
    origin.set(
        "/a.xml",
        Route::feed(small_rss("a", 1), "application/rss+xml"),
    );
    let mut receiver = Receiver::start(vec![]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let text = config_prelude("")
        + &source_toml("a", &origin.url("/a.xml"), "1s", "")
        + &webhook_toml(&format!("{}/hook", receiver.base), "name = \"inside\"");
    let mut daemon = start(config_raw(dir.path(), &text)).await;
    let mut reports = daemon.take_reports();
    all_stored(&mut reports, &["a"]).await;
    let base = format!("http://{}", daemon.local_addr());
    let w = hook_status(&base, "inside", |w| w["failed"] == 1).await;
    let error = w["last_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("refused") && error.contains("loopback") && error.contains("allow_networks"),
        "{error}"
    );
    assert_eq!(w["retries"], 0);
    assert!(
        receiver.got.try_recv().is_err(),
        "nothing reached the receiver"
    );
    let (_, _, metrics) = get(&format!("{base}/metrics")).await;
    assert!(
        metrics
            .contains("tributary_webhook_deliveries_total{webhook=\"inside\",result=\"failed\"} 1"),
        "{metrics}"
    );
    daemon.shutdown().await.expect("stops");
}

#[tokio::test]
async fn a_reload_changes_the_webhooks() {
    let origin = Origin::start().await;
    origin.set(
        "/a.xml",
        Route::feed(small_rss("a", 1), "application/rss+xml"),
    );
    origin.set(
        "/b.xml",
        Route::feed(small_rss("b", 1), "application/rss+xml"),
    );
    let mut receiver = Receiver::start(vec![]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let text = config_prelude(LOOPBACK) + &source_toml("a", &origin.url("/a.xml"), "1s", "");
    let mut daemon = start(config_raw(
        dir.path(),
        &(text.clone() + &webhook_toml(&format!("{}/one", receiver.base), "name = \"one\"")),
    ))
    .await;
    let mut reports = daemon.take_reports();
    all_stored(&mut reports, &["a"]).await;
    assert_eq!(receiver.next().await.path, "/one");
    std::fs::write(
        dir.path().join("feeds.toml"),
        text + &source_toml("b", &origin.url("/b.xml"), "1s", "")
            + &webhook_toml(&format!("{}/two", receiver.base), "name = \"two\""),
    )
    .expect("write");
    daemon.reload().await.expect("reloads");
    all_stored(&mut reports, &["b"]).await;
    let got = receiver.next().await;
    assert_eq!(got.path, "/two");
    assert_eq!(json_titles(&got.body), ["b 0"]);
    let h = health(&format!("http://{}", daemon.local_addr())).await;
    let names: Vec<&str> = h["webhooks"]
        .as_array()
        .expect("webhooks")
        .iter()
        .filter_map(|w| w["name"].as_str())
        .collect();
    assert_eq!(names, ["two"]);

    // `[fetch] allow_networks` applies to webhooks as the running config says.
    origin.set(
        "/c.xml",
        Route::feed(small_rss("c", 1), "application/rss+xml"),
    );
    std::fs::write(
        dir.path().join("feeds.toml"),
        config_prelude("")
            + &source_toml("c", &origin.url("/c.xml"), "1s", "")
            + &webhook_toml(&format!("{}/two", receiver.base), "name = \"two\""),
    )
    .expect("write");
    daemon.reload().await.expect("reloads");
    all_stored(&mut reports, &["c"]).await;
    let base = format!("http://{}", daemon.local_addr());
    let w = hook_status(&base, "two", |w| w["failed"] == 1).await;
    assert!(
        w["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("loopback"),
        "{w}"
    );
    assert!(receiver.got.try_recv().is_err());
    daemon.shutdown().await.expect("stops");
}

#[test]
fn webhook_config_mistakes_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = config_prelude("")
        + &source_toml("a", "http://a.example/feed", "1s", "tags = [\"x\"]")
        + "[[webhook]]\nurl = \"ftp://hooks.example/\"\nsecret = \"hunter2\"\nsources = [\"nope\"]\ntags = [\"zz\"]\nfeeds = [\"nofeed\"]\nformat = \"rss\"\n"
        + &webhook_toml("https://hooks.example/1", "name = \"dup\"")
        + &webhook_toml("https://hooks.example/2", "name = \"dup\"");
    let path = dir.path().join("feeds.toml");
    std::fs::write(&path, text).expect("write");
    let error = tributary::config::load(&path)
        .expect_err("invalid")
        .to_string();
    for expected in [
        "url must be an http or https URL",
        "secret must be a Standard Webhooks secret: \"whsec_\"",
        "names source \"nope\", which is not a [[source]]",
        "takes tag \"zz\", which no source has",
        "names feed \"nofeed\", which is not a [[feed]]",
        "format \"rss\" is not one of \"json\"",
        "duplicate webhook name \"dup\"",
    ] {
        assert!(
            error.contains(expected),
            "{expected:?} missing from: {error}"
        );
    }
    assert!(!error.contains("hunter2"), "the secret is not echoed");
}
