//! `tributary poll` through the real binary: it asks the running daemon over its control
//! socket (named sources, every source, unknown names), polls by itself when no daemon runs,
//! and the socket is private (mode 0600, removed at stop) and bounded: garbage, an endless
//! line, a client that never sends or never reads, and more clients than it serves at once
//! do not disturb the daemon.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::mpsc::Receiver;
use std::time::Duration;

use support::{
    KillOnDrop, Origin, Route, small_rss, source_toml, tributary_command, wait_for_line,
};

/// A feeds.toml in `dir` with sources `a` and `b` on `origin`, polled every hour (so the
/// daemon polls them only when asked, once `once` has polled them).
fn write_config(dir: &Path, origin: &Origin) -> PathBuf {
    let mut text = "[server]\nlisten = \"127.0.0.1:0\"\n\n".to_string();
    text.push_str(&source_toml("a", &origin.url("/a"), "1h", ""));
    text.push_str(&source_toml("b", &origin.url("/b"), "1h", ""));
    let path = dir.join("feeds.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

async fn origin_with_feeds() -> Origin {
    let origin = Origin::start().await;
    origin.set("/a", Route::feed(small_rss("a", 3), "application/rss+xml"));
    origin.set("/b", Route::feed(small_rss("b", 2), "application/rss+xml"));
    origin
}

/// `tributary ARGS --config PATH`, run to its end.
async fn tributary(path: &Path, args: &[&str]) -> Output {
    let mut cmd = tributary_command("warn");
    cmd.args(args).arg("--config").arg(path);
    tokio::task::spawn_blocking(move || cmd.output().expect("runs"))
        .await
        .expect("joined")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `tributary run`, once it has started (its control socket is there by then), and the
/// address it serves on.
fn start_daemon(path: &Path) -> (KillOnDrop, Receiver<String>, String) {
    let mut cmd = tributary_command("info");
    cmd.arg("run").arg("--config").arg(path);
    let mut child = KillOnDrop::spawn(&mut cmd);
    let lines = child.stderr_lines();
    let started = wait_for_line(&lines, &["tributary started"], Duration::from_secs(60));
    let addr = started
        .split_whitespace()
        .find_map(|w| w.strip_prefix("addr="))
        .expect("address logged")
        .to_string();
    (child, lines, addr)
}

fn socket(dir: &Path) -> PathBuf {
    dir.join("store").join("control.sock")
}

/// The lines of `poll`'s output for source `name`.
fn line_of<'a>(stdout: &'a str, name: &str) -> Vec<&'a str> {
    stdout
        .lines()
        .filter(|l| l.split_whitespace().next() == Some(name))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_asks_the_running_daemon_for_named_and_all_sources() {
    let origin = origin_with_feeds().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(dir.path(), &origin);
    // Polled once: the daemon's next polls are an hour away.
    let once = tributary(&path, &["once"]).await;
    assert!(once.status.success(), "{}", text(&once.stderr));
    let (_daemon, _log, _) = start_daemon(&path);

    // One source by name: polled at once, its line printed, the other left alone.
    origin.set("/a", Route::feed(small_rss("a", 5), "application/rss+xml"));
    let out = tributary(&path, &["poll", "a"]).await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    let a = line_of(&stdout, "a");
    assert_eq!(a.len(), 1, "{stdout}");
    assert!(
        a[0].contains(" ok ") && a[0].contains("new    2"),
        "the same line `once` prints: {stdout}"
    );
    assert!(line_of(&stdout, "b").is_empty(), "{stdout}");
    assert!(
        stdout.ends_with("1 sources polled, 0 failed (by the running daemon)\n"),
        "{stdout}"
    );
    assert_eq!(origin.requests("/a").len(), 2);
    assert_eq!(origin.requests("/b").len(), 1, "b is not polled");

    // No names: every source. A failing one is a line, not an error.
    origin.set("/b", Route::status(500, "oops"));
    let out = tributary(&path, &["poll"]).await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert_eq!(line_of(&stdout, "a").len(), 1, "{stdout}");
    let b = line_of(&stdout, "b");
    assert!(
        b.len() == 1 && b[0].contains("FAILED  HTTP 500 Internal Server Error"),
        "{stdout}"
    );
    assert!(
        stdout.ends_with("2 sources polled, 1 failed (by the running daemon)\n"),
        "{stdout}"
    );
    assert_eq!(origin.requests("/a").len(), 3);
    assert_eq!(origin.requests("/b").len(), 2);

    // Unknown names: named in the error, and nothing is polled.
    let out = tributary(&path, &["poll", "a", "nope", "zzz"]).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(r#"no source named "nope", "zzz""#),
        "{stderr}"
    );
    assert!(text(&out.stdout).is_empty());
    assert_eq!(origin.requests("/a").len(), 3, "nothing polled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_without_a_daemon_polls_by_itself() {
    let origin = origin_with_feeds().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(dir.path(), &origin);

    let out = tributary(&path, &["poll", "b"]).await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    let b = line_of(&stdout, "b");
    assert!(b.len() == 1 && b[0].contains("new    2"), "{stdout}");
    assert!(stdout.ends_with("1 sources polled, 0 failed\n"), "{stdout}");
    assert!(origin.requests("/a").is_empty(), "only the named source");
    assert_eq!(origin.requests("/b").len(), 1);

    let out = tributary(&path, &["poll"]).await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.ends_with("2 sources polled, 0 failed\n"), "{stdout}");

    let out = tributary(&path, &["poll", "nope"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains(r#"no source named "nope""#),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(origin.requests("/a").len(), 1, "nothing polled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_socket_is_private_and_removed_at_stop() {
    let origin = origin_with_feeds().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(dir.path(), &origin);
    // A stale socket left by a crash is replaced.
    std::fs::create_dir_all(dir.path().join("store")).expect("mkdir");
    drop(std::os::unix::net::UnixListener::bind(socket(dir.path())).expect("stale socket"));

    let (mut daemon, _log, _) = start_daemon(&path);
    let meta = std::fs::metadata(socket(dir.path())).expect("the socket exists");
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);

    // A daemon without its socket (an older one, say) is named, not taken for none.
    let moved = dir.path().join("store").join("moved.sock");
    std::fs::rename(socket(dir.path()), &moved).expect("move away");
    let out = tributary(&path, &["poll"]).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("in use by a running tributary, but its control socket did not answer"),
        "{stderr}"
    );
    std::fs::rename(&moved, socket(dir.path())).expect("move back");

    support::signal(daemon.id(), "-TERM");
    let status = daemon.0.take().expect("child").wait().expect("exits");
    assert!(status.success());
    assert!(!socket(dir.path()).exists(), "removed at stop");
}

/// Sends `request` as it is and reads the first reply line ("" at the end of the stream).
fn exchange(stream: &mut UnixStream, request: &[u8]) -> String {
    let _ = stream.write_all(request);
    let mut line = String::new();
    let _ = BufReader::new(stream).read_line(&mut line);
    line
}

fn connect(dir: &Path) -> UnixStream {
    let stream = UnixStream::connect(socket(dir)).expect("connects");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_control_clients_do_not_disturb_the_daemon() {
    let origin = origin_with_feeds().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(dir.path(), &origin);
    let once = tributary(&path, &["once"]).await;
    assert!(once.status.success());
    let (_daemon, _log, addr) = start_daemon(&path);
    let d = dir.path().to_path_buf();
    // Clients that send nothing hold the four places only until their time is up; meanwhile
    // one more is told the daemon is busy, at once.
    let idle: Vec<UnixStream> = (0..4).map(|_| connect(&d)).collect();
    // Each connection is taken in turn: the fifth is answered once the four hold places.
    let busy = tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        let line = exchange(&mut connect(&d), b"{\"poll\":[]}\n");
        (line, started.elapsed())
    })
    .await
    .expect("joined");
    assert!(busy.0.contains("busy"), "{busy:?}");
    assert!(busy.1 < Duration::from_secs(3), "{busy:?}");
    let timed_out = tokio::task::spawn_blocking(move || {
        idle.into_iter()
            .map(|mut s| {
                let mut all = String::new();
                let _ = s.read_to_string(&mut all);
                all
            })
            .collect::<Vec<_>>()
    })
    .await
    .expect("joined");
    for reply in &timed_out {
        assert!(reply.contains("no request within 5 s"), "{reply}");
    }

    let d = dir.path().to_path_buf();
    let answers = tokio::task::spawn_blocking(move || {
        // Garbage: refused with a message.
        let garbage = exchange(&mut connect(&d), b"\x00\xffGET / HTTP/1.1\r\n");
        // An endless line: cut off after 256 KiB, not read into memory.
        let mut endless = connect(&d);
        let writer = {
            let mut w = endless.try_clone().expect("clone");
            std::thread::spawn(move || {
                let chunk = vec![b'x'; 64 * 1024];
                for _ in 0..1024 {
                    if w.write_all(&chunk).is_err() {
                        return true;
                    }
                }
                false
            })
        };
        let mut endless_reply = String::new();
        let _ = BufReader::new(&mut endless).read_line(&mut endless_reply);
        let cut_off = writer.join().expect("writer");
        // A client asking for every poll and never reading its reports.
        let mut deaf = connect(&d);
        deaf.write_all(b"{\"poll\":[]}\n").expect("request");
        (garbage, endless_reply, cut_off, deaf)
    })
    .await
    .expect("joined");
    let (garbage, endless_reply, cut_off, _deaf) = answers;
    assert!(garbage.contains("not a request"), "{garbage}");
    assert!(
        endless_reply.contains("a line longer than 262144 bytes"),
        "{endless_reply}"
    );
    assert!(cut_off, "the daemon stopped reading the endless line");

    // Through all of it the daemon polls on demand and serves.
    let out = tributary(&path, &["poll", "a"]).await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert_eq!(line_of(&stdout, "a").len(), 1, "{stdout}");
    let health = support::health(&format!("http://{addr}")).await;
    assert_eq!(
        health["sources"].as_array().map(Vec::len),
        Some(2),
        "{health}"
    );
}

/// A source that answered 410 Gone has no task polling it any more: asked to poll it, the
/// daemon polls it once on its own, which reports that it is gone (without asking the
/// origin again), rather than leave the request waiting.
#[tokio::test]
async fn a_gone_source_asked_to_poll_reports_it_is_gone() {
    let origin = Origin::start().await;
    origin.set("/gone", Route::status(410, "gone"));
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = support::config(dir.path(), &[("g", &origin.url("/gone"), "1h")], "");
    let mut daemon = support::start(cfg.clone()).await;
    support::next(&mut daemon.reports, |r| r.source == "g").await;

    let mut lines = Vec::new();
    let summary = tributary::app::poll(cfg, vec!["g".into()], |l| lines.push(l.to_string()))
        .await
        .expect("polled");
    assert!(summary.by_daemon);
    assert_eq!((summary.polled, summary.failed), (1, 1));
    assert_eq!(lines.len(), 1);
    assert!(lines[0].contains("410 Gone earlier"), "{lines:?}");
    assert_eq!(origin.requests("/gone").len(), 1, "not asked again");
    daemon.shutdown().await.expect("shutdown");
}
