//! The operator's side of the real binary: how it stops (SIGTERM during a slow poll), what a
//! careless save of `feeds.toml` can do, and where a feed's own redirects may lead.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{
    KillOnDrop, Origin, RawOrigin, RawRoute, Route, exits_within, free_port, get, small_rss,
    wait_for_line,
};

fn tributary() -> Command {
    support::tributary_command("info,tributary::ingest::poll=debug")
}

fn sigterm(pid: u32) {
    support::signal(pid, "-TERM");
}

fn hup(pid: u32) {
    support::signal(pid, "-HUP");
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

/// A clean stop after a big ingest checkpoints the store (sled's snapshot written at the
/// stop, so the next start reads no log), and loses nothing; a stop after a little writing
/// does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_stop_after_a_big_ingest_checkpoints_the_store_and_loses_nothing() {
    let entries = tributary::store::CHECKPOINT_AFTER as usize + 100;
    let origin = Origin::start().await;
    origin.set(
        "/big",
        Route::feed(heavy_rss(entries, 1), "application/rss+xml"),
    );
    origin.set(
        "/small",
        Route::feed(small_rss("s", 3), "application/rss+xml"),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |config: &Path, source: &str| {
        let mut child = KillOnDrop::spawn(tributary().args(["run", "--config"]).arg(config));
        let lines = child.stderr_lines();
        wait_for_line(
            &lines,
            &["polled", &format!("source={source}")],
            Duration::from_secs(60),
        );
        sigterm(child.id());
        let status = exits_within(&mut child, Duration::from_secs(20));
        assert_eq!(status.code(), Some(0), "exit status {status:?}");
        // The rest of the log, to its end (the process is gone: the pipe closes).
        lines.iter().collect::<Vec<_>>()
    };

    let big = write_config(
        dir.path(),
        free_port(),
        "[fetch]\nmax_entries = 5000\n",
        &[("big", origin.url("/big"))],
    );
    let log = run(&big, "big");
    assert!(
        log.iter().any(|l| l.contains("store checkpointed")),
        "checkpointed at the stop: {log:?}"
    );
    assert!(log.iter().any(|l| l.contains("store flushed")), "{log:?}");
    let health = verify_and_status(&big);
    assert_eq!(health["entries"].as_u64(), Some(entries as u64), "{health}");

    let small_dir = tempfile::tempdir().expect("tempdir");
    let small = write_config(
        small_dir.path(),
        free_port(),
        "",
        &[("small", origin.url("/small"))],
    );
    let log = run(&small, "small");
    assert!(
        !log.iter().any(|l| l.contains("checkpoint")),
        "three entries: no checkpoint: {log:?}"
    );
    assert!(log.iter().any(|l| l.contains("store flushed")), "{log:?}");
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
    // The log line comes just before the request goes out: wait until the origin has it.
    let asked = std::time::Instant::now();
    while origin.requests("/stall").is_empty() {
        assert!(
            asked.elapsed() < Duration::from_secs(30),
            "the poll never reached the origin"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    sigterm(child.id());
    let status = exits_within(&mut child, Duration::from_secs(2));
    assert_eq!(status.code(), Some(0), "exit status {status:?}");
    let health = verify_and_status(&config);
    assert_eq!(health["entries"].as_u64(), Some(0), "{health}");
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

async fn health(port: u16) -> serde_json::Value {
    let (status, _, body) = get(&format!("http://127.0.0.1:{port}/healthz")).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("healthz json")
}

fn sources_text(sources: &[(&str, String)]) -> String {
    sources
        .iter()
        .map(|(name, url)| {
            format!("\n[[source]]\nname = \"{name}\"\nurl = \"{url}\"\ninterval = \"1h\"\n")
        })
        .collect()
}

/// Careless saves of `feeds.toml` under the running daemon: a save written in two chunks
/// (the first valid TOML with `keep_total = 2` and no sources) deletes nothing, and the
/// final file is what is applied; tighter limits in a reload prune nothing at once; an
/// empty save is refused (by the watch and by SIGHUP) and every source keeps being served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn careless_saves_of_the_config_delete_and_hide_nothing() {
    let origin = Origin::start().await;
    origin.set(
        "/a",
        Route::feed(small_rss("a", 150), "application/rss+xml"),
    );
    origin.set(
        "/b",
        Route::feed(small_rss("b", 150), "application/rss+xml"),
    );
    origin.set("/c", Route::feed(small_rss("c", 5), "application/rss+xml"));
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let head = format!("[server]\nlisten = \"127.0.0.1:{port}\"\n");
    let two = sources_text(&[("a", origin.url("/a")), ("b", origin.url("/b"))]);
    let path = dir.path().join("feeds.toml");
    std::fs::write(&path, format!("{head}{two}")).expect("config");
    let mut child = KillOnDrop::spawn(tributary().args(["run", "--config"]).arg(&path));
    let pid = child.id();
    let lines = child.stderr_lines();
    // Every log line from here on, to check what did not happen.
    let mut log = Vec::new();
    let wait = |what: &[&str], log: &mut Vec<String>| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no log line with {what:?}; log: {log:#?}"));
            let found = what.iter().all(|w| line.contains(w));
            log.push(line);
            if found {
                return;
            }
        }
    };
    // Both sources, in either order.
    wait(&["polled", "new=150"], &mut log);
    wait(&["polled", "new=150"], &mut log);
    assert_eq!(health(port).await["entries"], 300);

    // An editor saving in place, in two writes 600 ms apart: the first half alone is a
    // valid config that keeps 2 entries and has no sources. The second half adds source c
    // and tightens the per-source limit.
    let first = format!("{head}\n[retention]\nkeep_total = 2\n");
    let second = format!(
        "keep_per_source = 40\n{two}{}",
        sources_text(&[("c", origin.url("/c"))])
    );
    {
        use std::io::Write;
        let mut file = std::fs::File::create(&path).expect("truncate");
        file.write_all(first.as_bytes()).expect("first chunk");
        file.sync_data().expect("sync");
        std::thread::sleep(Duration::from_millis(600));
        file.write_all(second.as_bytes()).expect("second chunk");
    }
    wait(&["config reloaded", "added c"], &mut log);
    wait(&["source=c", "polled", "new=5"], &mut log);
    // Any retention pass right after the reload would have run by now; make sure by a
    // round trip through the supervisor (a SIGHUP reload of the same file).
    hup(pid);
    wait(&["config reloaded", "no changes"], &mut log);
    let h = health(port).await;
    assert_eq!(h["entries"], 305, "nothing pruned: {h}");
    assert!(
        !log.iter().any(|l| l.contains("removed a")
            || l.contains("retention pass")
            || l.contains("config was not reloaded")),
        "the half-written file was never applied, nothing pruned: {log:#?}"
    );

    // An empty save (or one truncated to nothing): refused, every source still served.
    std::fs::write(&path, "").expect("empty");
    wait(&["config was not reloaded", "no [[source]] left"], &mut log);
    hup(pid);
    wait(&["config was not reloaded", "no [[source]] left"], &mut log);
    let h = health(port).await;
    let names: Vec<&str> = h["sources"]
        .as_array()
        .map(|s| s.iter().filter_map(|s| s["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["a", "b", "c"], "{h}");
    assert_eq!(h["entries"], 305);
    let (status, _, feed) = get(&format!("http://127.0.0.1:{port}/sources/a.atom")).await;
    assert_eq!(status, 200);
    assert!(
        feed.contains("<title>a 119</title>"),
        "source a is still published"
    );

    // A real config again: applied.
    std::fs::write(&path, format!("{head}{two}")).expect("config");
    wait(&["config reloaded", "removed c"], &mut log);
    sigterm(pid);
    exits_within(&mut child, Duration::from_secs(5));
    verify_and_status(&path);
}

/// A daemon restarted with limits tightened (from 1000 entries per source to 10) over a
/// store of 200 entries: its retention pass would remove most of the store, so it is held.
struct RetentionHeld {
    _origin: Origin,
    dir: tempfile::TempDir,
    port: u16,
    path: std::path::PathBuf,
    child: KillOnDrop,
    /// The restarted daemon's log lines.
    lines: std::sync::mpsc::Receiver<String>,
}

impl RetentionHeld {
    async fn start() -> RetentionHeld {
        let origin = Origin::start().await;
        origin.set(
            "/a",
            Route::feed(small_rss("a", 200), "application/rss+xml"),
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let text = |keep: usize| {
            format!(
                "[server]\nlisten = \"127.0.0.1:{port}\"\n\n[retention]\nkeep_per_source = {keep}\nkeep_min = 5\n{}",
                sources_text(&[("a", origin.url("/a"))])
            )
        };
        let path = dir.path().join("feeds.toml");
        std::fs::write(&path, text(1000)).expect("config");
        let mut child = KillOnDrop::spawn(tributary().args(["run", "--config"]).arg(&path));
        let lines = child.stderr_lines();
        wait_for_line(
            &lines,
            &["source=a", "polled", "new=200"],
            Duration::from_secs(60),
        );
        sigterm(child.id());
        exits_within(&mut child, Duration::from_secs(5));

        std::fs::write(&path, text(10)).expect("config");
        let mut child = KillOnDrop::spawn(tributary().args(["run", "--config"]).arg(&path));
        let lines = child.stderr_lines();
        RetentionHeld {
            _origin: origin,
            dir,
            port,
            path,
            child,
            lines,
        }
    }
}

/// A retention pass that would remove most of the store (here: limits tightened while the
/// daemon was stopped, from 1000 per source to 10) does not run by itself: the daemon
/// logs it loudly and shows it in `/healthz` and `/metrics`, deleting nothing; `prune
/// --dry-run` shows what would go, `prune` refuses, `prune --confirm` prunes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_removing_most_of_the_store_waits_for_prune_confirm() {
    let held = RetentionHeld::start().await;
    let (port, path, mut child, lines) = (held.port, held.path.clone(), held.child, held.lines);
    let line = wait_for_line(&lines, &["RETENTION HELD"], Duration::from_secs(60));
    assert!(
        line.contains("190 of the store's 200") && line.contains("prune --confirm"),
        "{line}"
    );
    let h = health(port).await;
    assert_eq!(h["entries"], 200, "{h}");
    assert_eq!(h["retention_held"]["would_prune"], 190, "{h}");
    let (_, _, metrics) = get(&format!("http://127.0.0.1:{port}/metrics")).await;
    assert!(
        metrics.contains("tributary_retention_held_entries 190"),
        "{metrics}"
    );
    sigterm(child.id());
    exits_within(&mut child, Duration::from_secs(5));

    let run = |args: &[&str]| {
        let out = tributary()
            .args(args)
            .arg("--config")
            .arg(&path)
            .output()
            .expect("runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, _) = run(&["status"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("RETENTION HELD"), "{out}");
    let (code, out, err) = run(&["prune", "--dry-run"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("would prune 190") && out.contains("HELD"),
        "{out}"
    );
    let (code, out, err) = run(&["prune"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        err.contains("not pruned") && err.contains("--confirm"),
        "{err}"
    );
    assert_eq!(verify_and_status(&path)["entries"], 200);
    let (code, out, err) = run(&["prune", "--confirm"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("190 entries pruned, 10 left"), "{out}");
    let h = verify_and_status(&path);
    assert_eq!(h["entries"], 10);
    assert!(h.get("retention_held").is_none(), "{h}");
}

/// SIGTERM while clients hold connections open (idle, half a request sent, keep-alive after
/// a response): the server gives responses in progress a moment, then drops them; the
/// process is gone within 2 s and exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_open_client_connections_exits_at_once() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let config = write_config(dir.path(), port, "", &[]);
    let mut child = KillOnDrop::spawn(tributary().args(["run", "--config"]).arg(&config));
    let lines = child.stderr_lines();
    wait_for_line(&lines, &["tributary started"], Duration::from_secs(30));
    let connect = || std::net::TcpStream::connect(("127.0.0.1", port)).expect("connects");
    let idle = connect();
    let mut half = connect();
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: feeds.test\r\n")
        .expect("half a request");
    let mut kept = connect();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: feeds.test\r\n\r\n")
        .expect("a request");
    let mut buf = [0u8; 4096];
    let n = kept.read(&mut buf).expect("a response");
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &buf[..n]);
    sigterm(child.id());
    let status = exits_within(&mut child, Duration::from_secs(2));
    assert_eq!(status.code(), Some(0), "exit status {status:?}");
    drop((idle, half, kept));
    verify_and_status(&config);
}

/// `prune --confirm` while the daemon runs: the daemon takes the confirmation, runs the held
/// pass and the command prints its report; a plain `prune` still refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_confirm_reaches_a_running_daemon() {
    let held = RetentionHeld::start().await;
    let (port, path, mut child, lines) = (held.port, held.path.clone(), held.child, held.lines);
    wait_for_line(&lines, &["RETENTION HELD"], Duration::from_secs(60));
    let run = |args: &[&str]| {
        let out = tributary()
            .args(args)
            .arg("--config")
            .arg(&path)
            .output()
            .expect("runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, _, err) = run(&["prune"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("in use by the running tributary"), "{err}");
    assert_eq!(health(port).await["entries"], 200);

    let (code, out, err) = run(&["prune", "--confirm"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("190 entries pruned, 10 left"), "{out}");
    wait_for_line(&lines, &["prune --confirm"], Duration::from_secs(5));
    let h = health(port).await;
    assert_eq!(h["entries"], 10, "{h}");
    assert!(h.get("retention_held").is_none(), "{h}");
    assert!(
        !held.dir.path().join("store/prune-confirm").exists()
            && !held
                .dir
                .path()
                .join("store/prune-confirm.report.json")
                .exists(),
        "the confirmation and its report are cleaned up"
    );
    sigterm(child.id());
    exits_within(&mut child, Duration::from_secs(5));
    assert_eq!(verify_and_status(&path)["entries"], 10);
}
