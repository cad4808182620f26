//! The operator's side of the real binary: how it stops (SIGTERM during a slow poll), what a
//! careless save of `feeds.toml` can do, and where a feed's own redirects may lead.

mod support;

use std::path::Path;
use std::process::Command;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use support::{KillOnDrop, Origin, RawOrigin, RawRoute, Route, get};

fn tributary() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tributary"));
    c.env_remove("TRIBUTARY_CONFIG")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("WATCHDOG_PID")
        .env_remove("STATE_DIRECTORY")
        .env_remove("CONFIGURATION_DIRECTORY")
        .env_remove("JOURNAL_STREAM")
        .env("RUST_LOG", "info,tributary::poll=debug");
    c
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

fn sigterm(pid: u32) {
    let ok = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(ok.success());
}

/// Log lines until one contains every one of `what`; panics after `within`.
fn wait_for_line(lines: &Receiver<String>, what: &[&str], within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no log line with {what:?} within {within:?}"));
        if what.iter().all(|w| line.contains(w)) {
            return line;
        }
    }
}

/// Waits for the child to exit; panics if it is still alive after `within`.
fn exits_within(child: &mut KillOnDrop, within: Duration) -> std::process::ExitStatus {
    let pid = child.id();
    let mut process = child.0.take().expect("running");
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let status = process.wait();
        let _ = tx.send(());
        (process, status)
    });
    let exited = rx.recv_timeout(within).is_ok();
    if !exited {
        // Kill it so the waiter ends, then fail.
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
    let (process, status) = waiter.join().expect("waiter");
    drop(process);
    assert!(
        exited,
        "the daemon was still running {within:?} after SIGTERM"
    );
    status.expect("wait")
}

/// `tributary verify` exits 0, and `tributary status --json` (from the store) as JSON.
fn verify_and_status(config: &Path) -> serde_json::Value {
    let out = tributary()
        .args(["verify", "--config"])
        .arg(config)
        .output()
        .expect("verify");
    assert_eq!(
        out.status.code(),
        Some(0),
        "verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let out = tributary()
        .args(["status", "--json", "--config"])
        .arg(config)
        .output()
        .expect("status");
    serde_json::from_slice(&out.stdout).expect("status json")
}

/// An RSS document of `items` entries, each with `paragraphs` paragraphs of markup to
/// sanitise: 4,000 entries of 25 paragraphs is 15.9 MB (under the 16 MB body cap) and takes
/// seconds to parse and normalise in a debug build, however linear the code.
fn heavy_rss(items: usize, paragraphs: usize) -> String {
    let para = "&lt;p&gt;Some &lt;b&gt;bold&lt;/b&gt; and &lt;a href=&quot;/x?y=1&quot;&gt;a link&lt;/a&gt; with &lt;i&gt;italic&lt;/i&gt; text &amp;amp; more.&lt;/p&gt;"
        .repeat(paragraphs);
    let mut s = String::from(
        r#"<?xml version="1.0"?><rss version="2.0"><channel><title>Heavy</title><link>http://heavy.example/</link><description>d</description>"#,
    );
    for i in 0..items {
        s.push_str(&format!(
            "<item><title>Item {i}</title><link>http://heavy.example/{i}</link><guid>g{i}</guid><category>c{}</category><description>{para}</description></item>",
            i % 7
        ));
    }
    s.push_str("</channel></rss>");
    s
}

fn write_config(
    dir: &Path,
    port: u16,
    extra: &str,
    sources: &[(&str, String)],
) -> std::path::PathBuf {
    let mut text = format!("[server]\nlisten = \"127.0.0.1:{port}\"\n\n{extra}\n");
    for (name, url) in sources {
        text.push_str(&format!(
            "\n[[source]]\nname = \"{name}\"\nurl = \"{url}\"\ninterval = \"1h\"\n"
        ));
    }
    let path = dir.join("feeds.toml");
    std::fs::write(&path, text).expect("config");
    path
}

/// SIGTERM while the daemon parses a document that takes seconds to read: the process is
/// gone within 2 s, exits 0, and the poll is not stored at all (its store write had not
/// begun); the store is consistent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_slow_parse_exits_at_once_and_stores_nothing() {
    let origin = Origin::start().await;
    origin.set(
        "/heavy",
        Route::feed(heavy_rss(4000, 25), "application/rss+xml"),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        free_port(),
        "[fetch]\nmax_entries = 10000\n",
        &[("heavy", origin.url("/heavy"))],
    );
    let mut child = KillOnDrop::spawn(tributary().args(["run", "--config"]).arg(&config));
    let lines = child.stderr_lines();
    // The whole body is in hand and reading it has begun.
    wait_for_line(
        &lines,
        &["source=heavy", "fetched; reading the feed"],
        Duration::from_secs(60),
    );
    let stop = Instant::now();
    sigterm(child.id());
    let status = exits_within(&mut child, Duration::from_secs(2));
    assert_eq!(status.code(), Some(0), "exit status {status:?}");
    eprintln!("stopped {:?} after SIGTERM", stop.elapsed());
    let health = verify_and_status(&config);
    assert_eq!(
        health["entries"].as_u64(),
        Some(0),
        "the poll was still being read: nothing of it is stored: {health}"
    );
}

/// SIGTERM while the origin stalls mid-body: the fetch is dropped, the process is gone
/// within 2 s, nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_stalled_body_exits_at_once() {
    let origin = RawOrigin::start().await;
    // A valid feed sent one byte every 2 s: the transfer never finishes in the test.
    origin.set(
        "/stall",
        RawRoute::Trickle {
            body: heavy_rss(3, 1).into_bytes(),
            every: Duration::from_secs(2),
        },
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        free_port(),
        "[fetch]\ntimeout = \"10m\"\n",
        &[("stall", origin.url("/stall"))],
    );
    let mut child = KillOnDrop::spawn(tributary().args(["run", "--config"]).arg(&config));
    let lines = child.stderr_lines();
    wait_for_line(
        &lines,
        &["source=stall", "fetching"],
        Duration::from_secs(30),
    );
    sigterm(child.id());
    let status = exits_within(&mut child, Duration::from_secs(2));
    assert_eq!(status.code(), Some(0), "exit status {status:?}");
    let health = verify_and_status(&config);
    assert_eq!(health["entries"].as_u64(), Some(0), "{health}");
    assert!(
        !origin.requests("/stall").is_empty(),
        "the poll reached the origin"
    );
}

fn small_rss(tag: &str, n: usize) -> String {
    let mut s = format!(
        r#"<?xml version="1.0"?><rss version="2.0"><channel><title>{tag}</title><link>http://{tag}.example/</link><description>d</description>"#
    );
    for i in 0..n {
        s.push_str(&format!(
            "<item><guid>http://{tag}.example/{i}</guid><title>{tag} {i}</title><pubDate>Mon, 01 Sep 2025 10:{:02}:00 GMT</pubDate></item>",
            i % 60
        ));
    }
    s.push_str("</channel></rss>");
    s
}

/// A feed's own redirects stay in the kind of network the feed is in: a source reached on
/// loopback (no `allow_networks`) may redirect to another loopback address or to
/// `localhost`, but a redirect into link-local or private space is refused before any
/// connection, and `status` says so. (That a public feed cannot reach loopback at all is
/// `guard::tests::redirects_stay_in_the_kind_of_network_the_feed_is_in`: no test here can
/// be served from a public address.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feeds_redirect_into_another_kind_of_network_is_refused() {
    let origin = Origin::start().await;
    let other = Origin::start_on("127.0.0.2".parse().expect("ip")).await;
    other.set(
        "/feed",
        Route::feed(small_rss("moved", 3), "application/rss+xml"),
    );
    origin.set(
        "/feed",
        Route::feed(small_rss("home", 2), "application/rss+xml"),
    );
    origin.set("/to-loopback", Route::redirect(302, &other.url("/feed")));
    let by_name = format!("http://localhost:{}/feed", origin.addr.port());
    origin.set("/to-localhost", Route::redirect(302, &by_name));
    origin.set(
        "/to-metadata",
        Route::redirect(302, "http://169.254.169.254/latest/meta-data/"),
    );
    origin.set("/to-private", Route::redirect(307, "http://10.0.0.1/feed"));
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let config = write_config(
        dir.path(),
        port,
        "",
        &[
            ("loop", origin.url("/to-loopback")),
            ("named", origin.url("/to-localhost")),
            ("metadata", origin.url("/to-metadata")),
            ("private", origin.url("/to-private")),
        ],
    );
    let mut child = KillOnDrop::spawn(tributary().args(["run", "--config"]).arg(&config));
    let lines = child.stderr_lines();
    let mut waiting: std::collections::HashSet<&str> =
        ["loop", "named", "metadata", "private"].into();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !waiting.is_empty() {
        let line = lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("no poll logged for {waiting:?}"));
        if line.contains("polled") || line.contains("poll failed") {
            waiting.retain(|name| !line.contains(&format!("source={name}")));
        }
    }
    let (status, _, body) = get(&format!("http://127.0.0.1:{port}/healthz")).await;
    assert_eq!(status, 200);
    let health: serde_json::Value = serde_json::from_str(&body).expect("json");
    let source = |name: &str| -> serde_json::Value {
        health["sources"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["name"] == name))
            .cloned()
            .unwrap_or_else(|| panic!("{name} in {health}"))
    };
    assert_eq!(source("loop")["state"], "ok", "{health}");
    assert_eq!(source("loop")["entries"], 3, "{health}");
    assert_eq!(source("named")["state"], "ok", "{health}");
    assert_eq!(source("named")["entries"], 2, "{health}");
    for (name, target, kind) in [
        ("metadata", "169.254.169.254", "link-local"),
        ("private", "10.0.0.1", "private"),
    ] {
        let s = source(name);
        assert_eq!(s["state"], "failing", "{s}");
        let error = s["last_error"].as_str().unwrap_or_default();
        assert!(
            error.starts_with("refused: redirect to http://")
                && error.contains(target)
                && error.contains(&format!("is a {kind} address"))
                && error.contains("allow_networks"),
            "{error}"
        );
    }
}
