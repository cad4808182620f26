//! WebSub against an independent implementation: flask-websub's hub and subscriber (PyPI,
//! pinned in `scripts/websub-interop/requirements.txt`), run as processes by the harness in
//! `scripts/websub-interop/`, against the real daemon on loopback.
//!
//! - tributary's subscriber: it discovers flask-websub's hub (the `Link` header before the
//!   feed's `atom:link`), subscribes, and an entry the hub pushes is in `/feed.atom` within a
//!   second of the publish, without a fetch; a delivery with a wrong or missing signature is
//!   acknowledged and ignored; a removed source is unsubscribed.
//! - tributary's hub: flask-websub's subscriber discovers it from `/feed.atom`, subscribes,
//!   and receives a delivery whose signature it checked within a second of the new entry
//!   being stored; a topic that is not one of tributary's feeds is refused at once.
//!
//! The Python comes from `TRIBUTARY_WEBSUB_PYTHON` (a venv with the requirements; `.ci/run`
//! makes one). Without it each test fails when `CI` is set and is skipped, loudly, otherwise.

mod support;

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{KillOnDrop, RawOrigin, RawRoute, config_raw, get, health};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tributary::app;
use tributary::ingest::poll::PollOutcome;

/// How long the harness's processes may take for a step (start, discover, subscribe).
const STEP: Duration = Duration::from_secs(20);
/// The bound: publish to stored, and stored to delivered.
const REAL_TIME: Duration = Duration::from_secs(1);

/// The interpreter of a venv with `scripts/websub-interop/requirements.txt`, or `None` (the
/// test is skipped) when `TRIBUTARY_WEBSUB_PYTHON` is not set outside CI.
fn python() -> Option<PathBuf> {
    match std::env::var_os("TRIBUTARY_WEBSUB_PYTHON") {
        Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
        // As build.rs reads `CI` for the corpus test.
        _ if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) => panic!(
            "TRIBUTARY_WEBSUB_PYTHON is not set: CI must run the WebSub interop tests (.ci/run \
             makes the venv)"
        ),
        _ => {
            // Once, and straight to the process's stderr: `eprintln!` would be captured
            // (and hidden) for a test that passes.
            static ONCE: std::sync::Once = std::sync::Once::new();
            ONCE.call_once(|| {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "\n!!! SKIPPED: the WebSub interop tests need TRIBUTARY_WEBSUB_PYTHON, the python of a \
                 venv with scripts/websub-interop/requirements.txt (README, Tests: \
                 `export TRIBUTARY_WEBSUB_PYTHON=$(bash scripts/websub-interop/venv.sh)`) !!!\n"
            );
            });
            None
        }
    }
}

/// One of the harness's Python programs, its stdout read as JSON lines as they come.
struct Harness {
    _child: KillOnDrop,
    lines: mpsc::UnboundedReceiver<Value>,
    /// Lines read while waiting for another event, kept for a later wait.
    seen: Vec<Value>,
    log: PathBuf,
}

impl Harness {
    fn spawn(python: &Path, dir: &Path, script: &str, args: &[&str]) -> Harness {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("scripts/websub-interop")
            .join(script);
        let log = dir.join(format!("{script}.{}.log", args.len()));
        let stderr = std::fs::File::create(&log).expect("log file");
        let mut child = Command::new(python)
            .arg(&path)
            .args(args)
            .arg("--state")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {} {}: {e}", python.display(), path.display()));
        let stdout = child.stdout.take().expect("stdout piped");
        let (tx, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let value = serde_json::from_str(&line)
                    .unwrap_or_else(|_| serde_json::json!({"event": "unparsed", "line": line}));
                if tx.send(value).is_err() {
                    break;
                }
            }
        });
        Harness {
            _child: KillOnDrop(Some(child)),
            lines,
            seen: Vec::new(),
            log,
        }
    }

    /// The first line (seen before or coming within `within`) with `event` that `pred`
    /// accepts. An "error" line, or none in time, fails the test with the program's log.
    async fn wait(
        &mut self,
        event: &str,
        within: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let fits = |v: &Value| v["event"] == event && pred(v);
        if let Some(i) = self.seen.iter().position(fits) {
            return self.seen.remove(i);
        }
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(v)) if fits(&v) => return v,
                Ok(Some(v)) if v["event"] == "error" => self.fail(&format!("{v}")),
                Ok(Some(v)) => self.seen.push(v),
                Ok(None) => self.fail(&format!("it ended before a {event:?} line")),
                Err(_) => self.fail(&format!("no {event:?} line within {within:?}")),
            }
        }
    }

    /// Every line so far (without waiting).
    fn drain(&mut self) -> &[Value] {
        while let Ok(v) = self.lines.try_recv() {
            self.seen.push(v);
        }
        &self.seen
    }

    fn fail(&mut self, why: &str) -> ! {
        let lines: Vec<String> = self.drain().iter().map(Value::to_string).collect();
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: String = log
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        panic!(
            "{why}\nlines so far: {lines:#?}\nlog ({}):\n{tail}",
            self.log.display()
        );
    }
}

/// A flask-websub hub (hub.py) signing with `algorithm`; returns it and its URL.
async fn flask_hub(python: &Path, dir: &Path, algorithm: &str) -> (Harness, String) {
    let mut hub = Harness::spawn(python, dir, "hub.py", &["--algorithm", algorithm]);
    let ready = hub.wait("ready", STEP, |_| true).await;
    let url = ready["url"].as_str().expect("hub url").to_string();
    (hub, url)
}

/// An Atom feed of `titles`, with `atom:link`s to `hub` and `self_url` when given.
fn atom(titles: &[&str], hub: Option<&str>, self_url: Option<&str>) -> String {
    let mut s = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\
         <title>Origin</title><id>urn:origin</id><updated>2026-01-01T00:00:00Z</updated>",
    );
    if let Some(h) = hub {
        s.push_str(&format!("<link rel=\"hub\" href=\"{h}\"/>"));
    }
    if let Some(u) = self_url {
        s.push_str(&format!("<link rel=\"self\" href=\"{u}\"/>"));
    }
    for (i, t) in titles.iter().enumerate() {
        s.push_str(&format!(
            "<entry><title>{t}</title><id>urn:origin:{t}</id><link href=\"https://origin.example/{t}\"/>\
             <updated>2026-01-0{}T00:00:00Z</updated></entry>",
            i + 1
        ));
    }
    s.push_str("</feed>");
    s
}

/// An Atom route with `Link` headers naming `hub` and `self_url` (as flask-websub's hub
/// requires of a topic it distributes).
fn linked(body: String, hub: &str, self_url: &str) -> RawRoute {
    let link = format!("<{hub}>; rel=\"hub\", <{self_url}>; rel=\"self\"");
    RawRoute::respond(
        200,
        &[("Content-Type", "application/atom+xml"), ("Link", &link)],
        body,
    )
}

/// A daemon config whose `base_url` is `addr` (the hub must reach the callbacks and
/// tributary's feeds must name themselves rightly), loopback allowed for hubs and callbacks,
/// and `extra` appended; written to `dir`/feeds.toml.
fn write_config(dir: &Path, addr: SocketAddr, extra: &str) -> tributary::config::Config {
    let text = format!(
        "[server]\nlisten = \"{addr}\"\nbase_url = \"http://{addr}\"\n\n\
         [store]\npath = \"store\"\n\n\
         [publish]\ntitle = \"Interop river\"\nmax_items = 100\n\n\
         [fetch]\nallow_networks = [\"127.0.0.0/8\"]\n\n{extra}"
    );
    config_raw(dir, &text)
}

/// [`write_config`] for the daemon that will serve on `listener`.
fn daemon_config(dir: &Path, listener: &TcpListener, extra: &str) -> tributary::config::Config {
    write_config(dir, listener.local_addr().expect("addr"), extra)
}

fn source(name: &str, url: &str) -> String {
    format!("[[source]]\nname = \"{name}\"\nurl = \"{url}\"\ninterval = \"1h\"\n\n")
}

/// Reads `/feed.atom` until it holds `title`; the time it first did, or `None` by `deadline`.
/// (Reading every 10 ms is the measurement: when a reader of the feed would see it.)
async fn visible(base: &str, title: &str, deadline: Instant) -> Option<Instant> {
    let want = format!(">{title}<");
    loop {
        let (status, _, body) = get(&format!("{base}/feed.atom")).await;
        assert_eq!(status, 200);
        if body.contains(&want) {
            return Some(Instant::now());
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The `/healthz` record of `source`'s WebSub subscription.
fn websub_status<'a>(health: &'a Value, source: &str) -> &'a Value {
    health["websub"]
        .as_array()
        .and_then(|subs| subs.iter().find(|s| s["source"] == source))
        .unwrap_or_else(|| panic!("no websub subscription of {source} in /healthz: {health}"))
}

/// Requests flask-websub's hub (python-requests) did not make: tributary's own fetches.
fn fetches_by_tributary(origin: &RawOrigin, path: &str) -> usize {
    origin
        .requests(path)
        .iter()
        .filter(|s| {
            let ua = s.headers.get("user-agent").and_then(|v| v.to_str().ok());
            !ua.unwrap_or_default().starts_with("python-requests")
        })
        .count()
}

async fn publish(hub_url: &str, topic: &str) {
    let response = reqwest::Client::new()
        .post(hub_url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("hub.mode", "publish")
                .append_pair("hub.topic", topic)
                .finish(),
        )
        .send()
        .await
        .expect("publish request");
    assert_eq!(
        response.status().as_u16(),
        202,
        "the hub accepts the publish"
    );
}

/// tributary subscribes to flask-websub's hub, found by the Recommendation's discovery
/// order (the `Link` header before the feed's `atom:link`), and an entry the hub pushes is
/// in `/feed.atom` within a second of the publish, from the delivered document (no fetch).
/// A feed with only `atom:link`s is discovered from those.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tributary_subscribes_to_flask_websub_hub_and_stores_a_push_within_a_second() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut hub, hub_url) = flask_hub(&python, dir.path(), "sha512").await;
    let origin = RawOrigin::start().await;
    let topic = origin.url("/feed.atom");
    // The body names a decoy hub and another self URL: the Link header wins.
    let decoy = origin.url("/decoy-hub");
    let body_self = origin.url("/feed.atom?from-body");
    let feed = |titles: &[&str]| {
        linked(
            atom(titles, Some(&decoy), Some(&body_self)),
            &hub_url,
            &topic,
        )
    };
    origin.set("/feed.atom", feed(&["first"]));
    // A feed advertising its hub in atom:link only.
    let only_body = origin.url("/body.atom");
    let only_body_self = origin.url("/body-self.atom");
    origin.set(
        "/body.atom",
        RawRoute::feed(
            atom(&["other"], Some(&hub_url), Some(&only_body_self)),
            "application/atom+xml",
        ),
    );

    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let cfg = daemon_config(
        dir.path(),
        &listener,
        &format!(
            "{}{}",
            source("pushed", &topic),
            source("bodylinks", &only_body)
        ),
    );
    let daemon = app::start(cfg, listener).await.expect("daemon starts");
    let base = format!("http://{}", daemon.local_addr());

    // Subscribed and verified: flask-websub's hub verifies before it answers 202.
    let sub = hub
        .wait("request", STEP, |v| {
            v["mode"] == "subscribe" && v["topic"] == topic.as_str()
        })
        .await;
    assert_eq!(sub["status"], 202, "{sub}");
    let callback = sub["callback"].as_str().expect("callback").to_string();
    assert!(
        callback.starts_with(&format!("{base}/websub/callback/")),
        "callback under base_url: {callback}"
    );
    let other = hub
        .wait("request", STEP, |v| {
            v["mode"] == "subscribe" && v["topic"] == only_body_self.as_str()
        })
        .await;
    assert_eq!(other["status"], 202, "{other}");
    assert_ne!(
        other["callback"], sub["callback"],
        "a callback per subscription"
    );
    visible(&base, "first", Instant::now() + STEP)
        .await
        .expect("the first poll is served");

    // The origin gains an entry and its hub is told: push, not poll.
    origin.set("/feed.atom", feed(&["first", "second"]));
    let fetched_before = fetches_by_tributary(&origin, "/feed.atom");
    let published = Instant::now();
    publish(&hub_url, &topic).await;
    let seen = visible(&base, "second", published + STEP).await;
    let seen = seen.expect("the pushed entry reaches /feed.atom");
    let latency = seen - published;
    eprintln!("flask-websub hub publish -> tributary /feed.atom: {latency:?}");
    assert!(
        latency < REAL_TIME,
        "pushed entry in /feed.atom after {latency:?}"
    );
    assert_eq!(
        fetches_by_tributary(&origin, "/feed.atom"),
        fetched_before,
        "a fat ping is stored without fetching the feed"
    );
    assert!(
        origin.requests("/decoy-hub").is_empty(),
        "the hub in the Link header is used, not the feed's atom:link"
    );
    assert!(
        !hub.drain().iter().any(|v| v["topic"] == body_self.as_str()),
        "the self URL in the Link header is the topic"
    );
    let health = health(&base).await;
    let sub = websub_status(&health, "pushed");
    assert_eq!(sub["state"], "active", "{sub}");
    assert_eq!(sub["hub"], hub_url.as_str(), "{sub}");
    assert_eq!(sub["topic"], topic.as_str(), "{sub}");
    assert_eq!(sub["deliveries"], 1, "{sub}");
    assert_eq!(sub["rejected"], 0, "{sub}");
    daemon.shutdown().await.expect("shutdown");
}

/// Removing a source unsubscribes it: flask-websub's hub verifies the unsubscribe with
/// tributary's callback (which confirms it, as one tributary asked for) and distributes the
/// topic to nobody after that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tributary_unsubscribes_from_flask_websub_hub_when_the_source_goes() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut hub, hub_url) = flask_hub(&python, dir.path(), "sha256").await;
    let origin = RawOrigin::start().await;
    let topic = origin.url("/feed.atom");
    origin.set(
        "/feed.atom",
        linked(atom(&["first"], None, None), &hub_url, &topic),
    );
    let plain = RawRoute::feed(atom(&["plain"], None, None), "application/atom+xml");
    origin.set("/plain.atom", plain);
    let stays = source("stays", &origin.url("/plain.atom"));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let cfg = write_config(
        dir.path(),
        addr,
        &format!("{}{stays}", source("pushed", &topic)),
    );
    let daemon = app::start(cfg, listener).await.expect("daemon starts");
    let sub = hub
        .wait("request", STEP, |v| {
            v["mode"] == "subscribe" && v["topic"] == topic.as_str()
        })
        .await;
    assert_eq!(sub["status"], 202, "{sub}");
    let callback = sub["callback"].clone();
    publish(&hub_url, &topic).await;
    let to = hub.wait("distribute", STEP, |_| true).await;
    assert_eq!(to["callbacks"], serde_json::json!([callback]), "{to}");

    write_config(dir.path(), addr, &stays);
    daemon.reload().await.expect("reload");
    let unsub = hub
        .wait("request", STEP, |v| v["mode"] == "unsubscribe")
        .await;
    assert_eq!(unsub["topic"], topic.as_str(), "{unsub}");
    assert_eq!(unsub["callback"], callback, "{unsub}");
    assert_eq!(unsub["status"], 202, "{unsub}");
    publish(&hub_url, &topic).await;
    let to = hub.wait("distribute", STEP, |_| true).await;
    assert_eq!(
        to["callbacks"],
        serde_json::json!([]),
        "the hub verified the unsubscribe with tributary: {to}"
    );
    daemon.shutdown().await.expect("shutdown");
}

/// A delivery whose `X-Hub-Signature` is wrong, of another algorithm's length, or missing
/// is acknowledged (2xx, as the Recommendation says) and ignored; a rightly signed one
/// (flask-websub's hub signing with sha1 this time) is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tributary_ignores_a_delivery_with_a_bad_signature() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut hub, hub_url) = flask_hub(&python, dir.path(), "sha1").await;
    let origin = RawOrigin::start().await;
    let topic = origin.url("/feed.atom");
    let feed = |titles: &[&str]| linked(atom(titles, None, None), &hub_url, &topic);
    origin.set("/feed.atom", feed(&["first"]));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let cfg = daemon_config(dir.path(), &listener, &source("pushed", &topic));
    let daemon = app::start(cfg, listener).await.expect("daemon starts");
    let base = format!("http://{}", daemon.local_addr());
    let sub = hub
        .wait("request", STEP, |v| {
            v["mode"] == "subscribe" && v["topic"] == topic.as_str()
        })
        .await;
    assert_eq!(sub["status"], 202, "{sub}");
    let callback = sub["callback"].as_str().expect("callback").to_string();

    let forged = atom(&["first", "forged"], None, None);
    let client = reqwest::Client::new();
    for signature in [
        Some(format!("sha1={}", "0".repeat(40))),
        Some(format!("sha256={}", "ab".repeat(32))),
        Some("sha1".to_string()),
        None,
    ] {
        let mut request = client
            .post(&callback)
            .header("Content-Type", "application/atom+xml")
            .header(
                "Link",
                format!("<{hub_url}>; rel=\"hub\", <{topic}>; rel=\"self\""),
            )
            .body(forged.clone());
        if let Some(s) = &signature {
            request = request.header("X-Hub-Signature", s);
        }
        let response = request.send().await.expect("delivery request");
        assert!(
            response.status().is_success(),
            "a delivery with signature {signature:?} is acknowledged: {}",
            response.status()
        );
    }
    // Then a rightly signed delivery: it is stored, and the forged entry is not.
    origin.set("/feed.atom", feed(&["first", "signed"]));
    publish(&hub_url, &topic).await;
    visible(&base, "signed", Instant::now() + STEP)
        .await
        .expect("the signed delivery is stored");
    let (_, _, body) = get(&format!("{base}/feed.atom")).await;
    assert!(
        !body.contains(">forged<"),
        "a badly signed delivery is ignored"
    );
    // And counted as such in /healthz (the status and metrics read the same record).
    let health = health(&base).await;
    let sub = websub_status(&health, "pushed");
    assert_eq!(sub["state"], "active", "{sub}");
    assert_eq!(sub["rejected"], 4, "{sub}");
    assert_eq!(sub["deliveries"], 1, "{sub}");
    daemon.shutdown().await.expect("shutdown");
}

/// flask-websub's subscriber discovers tributary's hub from `/feed.atom`, subscribes, and
/// receives a delivery, signed and checked, within a second of the new entry being stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flask_websub_subscriber_gets_a_signed_delivery_from_tributary_within_a_second() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let origin = RawOrigin::start().await;
    origin.set(
        "/feed.atom",
        RawRoute::feed(atom(&["first"], None, None), "application/atom+xml"),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let cfg = daemon_config(
        dir.path(),
        &listener,
        &source("origin", &origin.url("/feed.atom")),
    );
    let daemon = app::start(cfg.clone(), listener)
        .await
        .expect("daemon starts");
    let base = format!("http://{}", daemon.local_addr());
    let mut reports = daemon.subscribe();
    visible(&base, "first", Instant::now() + STEP)
        .await
        .expect("the first poll is served");

    let topic = format!("{base}/feed.atom");
    let mut sub = Harness::spawn(&python, dir.path(), "subscriber.py", &[&topic]);
    let found = sub.wait("discovered", STEP, |_| true).await;
    assert_eq!(found["hub"], format!("{base}/hub").as_str(), "{found}");
    assert_eq!(found["topic"], topic.as_str(), "{found}");
    sub.wait("requested", STEP, |_| true).await;
    sub.wait("subscribed", STEP, |_| true).await;
    // flask-websub counts itself subscribed once it has answered the challenge; the hub
    // takes the subscription on when it has read that answer. Entries stored before then
    // are not the subscriber's (§7), so the test waits for the hub's own count.
    let deadline = Instant::now() + STEP;
    while support::health(&base).await["hub"]["subscriptions"][topic.as_str()].as_u64() != Some(1) {
        assert!(
            Instant::now() < deadline,
            "the hub never took the subscription on"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A new entry at the origin, polled now (as `tributary poll` asks).
    origin.set(
        "/feed.atom",
        RawRoute::feed(
            atom(&["first", "second"], None, None),
            "application/atom+xml",
        ),
    );
    app::poll(cfg, vec!["origin".into()], |_| {})
        .await
        .expect("poll");
    let report = support::next(&mut reports, |r| {
        r.source == "origin" && matches!(r.outcome, PollOutcome::Stored { .. })
    })
    .await;
    let stored = report.started + report.duration;
    let stored = stored.timestamp_micros() as f64 / 1e6;
    let delivery = sub
        .wait("delivery", STEP, |v| {
            v["body"].as_str().is_some_and(|b| b.contains(">second<"))
        })
        .await;
    let signature = delivery["signature"].as_str().unwrap_or_default();
    assert!(
        ["sha1=", "sha256=", "sha384=", "sha512="]
            .iter()
            .any(|p| signature.starts_with(p)),
        "signed with a secret: {delivery}"
    );
    // The Recommendation's content distribution: the topic's type and `Link` headers.
    let content_type = delivery["content_type"].as_str().unwrap_or_default();
    assert!(
        content_type.starts_with("application/atom+xml"),
        "{delivery}"
    );
    let links = delivery["link"].to_string();
    assert!(links.contains(&format!("<{base}/hub>")), "{delivery}");
    assert!(links.contains(&format!("<{topic}>")), "{delivery}");
    let latency = delivery["time"].as_f64().expect("time") - stored;
    eprintln!(
        "tributary stored -> flask-websub subscriber delivered: {:.0} ms",
        latency * 1000.0
    );
    assert!(
        latency < REAL_TIME.as_secs_f64(),
        "delivered {latency:.3} s after the entry was stored"
    );
    assert!(
        !sub.drain().iter().any(|v| v["event"] == "rejected"),
        "flask-websub accepted every delivery's signature"
    );
    daemon.shutdown().await.expect("shutdown");
}

/// A subscription to a topic that is not one of tributary's feeds is refused at once (4xx,
/// with a reason) and never verified: flask-websub's subscriber, sent by a page's `Link`
/// header to tributary's hub with another host's `/feed.atom` as the topic, gets the refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tributary_hub_refuses_a_foreign_topic() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let origin = RawOrigin::start().await;
    let source_feed = RawRoute::feed(atom(&["first"], None, None), "application/atom+xml");
    origin.set("/source.atom", source_feed);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let cfg = daemon_config(
        dir.path(),
        &listener,
        &source("origin", &origin.url("/source.atom")),
    );
    let daemon = app::start(cfg, listener).await.expect("daemon starts");
    let base = format!("http://{}", daemon.local_addr());
    let foreign = origin.url("/feed.atom");
    let page = atom(&["elsewhere"], None, None);
    origin.set("/feed.atom", linked(page, &format!("{base}/hub"), &foreign));

    let mut sub = Harness::spawn(&python, dir.path(), "subscriber.py", &[&foreign]);
    let found = sub.wait("discovered", STEP, |_| true).await;
    assert_eq!(found["hub"], format!("{base}/hub").as_str(), "{found}");
    let refused = sub.wait("error", STEP, |_| true).await;
    // flask-websub's words: "SubscriberError: Hub error - STATUS: b'BODY'".
    let message = refused["message"].as_str().unwrap_or_default();
    let (status, reason) = message
        .split_once("Hub error - ")
        .and_then(|(_, rest)| rest.split_once(": "))
        .unwrap_or_else(|| panic!("the hub answered the request: {refused}"));
    let status: u16 = status.parse().expect("a status");
    // 404 or 405 would be no hub at all.
    assert!(
        (400..500).contains(&status) && status != 404 && status != 405,
        "refused with a 4xx: {refused}"
    );
    assert!(reason.len() > "b''".len(), "with a reason: {refused}");
    assert!(
        !sub.drain()
            .iter()
            .any(|v| v["event"] == "subscribed" || v["event"] == "requested"),
        "a foreign topic is never verified"
    );
    daemon.shutdown().await.expect("shutdown");
}
