//! The real binary as systemd runs it: sd_notify readiness, watchdog, SIGHUP reload,
//! SIGTERM stop, `$STATE_DIRECTORY`/`$CONFIGURATION_DIRECTORY`, and the operator's commands
//! (`prune`, `verify`).

mod support;

use support::{Item, Rss};

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{KillOnDrop, Origin, Route, free_port, get, signal};

fn tributary() -> Command {
    support::tributary_command("info")
}

/// The next datagram from the daemon on the notify socket.
fn notification(socket: &UnixDatagram) -> String {
    let mut buf = [0u8; 4096];
    let n = socket
        .recv(&mut buf)
        .expect("a notification within the timeout");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// Notifications until one contains `what`; the others are returned too.
fn until(socket: &UnixDatagram, what: &str) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let n = notification(socket);
        let done = n.lines().any(|l| l == what);
        seen.push(n);
        if done {
            return seen;
        }
    }
}

fn rss(items: std::ops::Range<u32>) -> String {
    Rss::new("s", "https://s.example/")
        .items(items.map(|i| {
            Item::new(format!("https://s.example/{i}"))
                .title(format!("item {i}"))
                .pub_date(format!("Mon, 01 Sep 2025 10:{i:02}:00 GMT"))
        }))
        .xml()
}

/// Under systemd: READY only once the listener answers, keep-alives while alive, RELOADING
/// and READY around SIGHUP, STOPPING and exit 0 within seconds of SIGTERM, nothing lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speaks_sd_notify_reloads_on_sighup_and_stops_on_sigterm() {
    let origin = Origin::start().await;
    origin.set("/s", Route::feed(rss(0..5), "application/rss+xml"));
    origin.set("/t", Route::feed(rss(0..5), "application/rss+xml"));
    origin.set("/u", Route::feed(rss(0..5), "application/rss+xml"));
    let dir = tempfile::tempdir().expect("tempdir");
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("bind notify socket");
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let port = free_port();
    let config = dir.path().join("feeds.toml");
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\n\n[[source]]\nname = \"s\"\nurl = \"{}\"\ninterval = \"1s\"\n",
        origin.url("/s")
    );
    std::fs::write(&config, &text).expect("config");
    let mut child = KillOnDrop::spawn(
        tributary()
            .args(["run", "--config"])
            .arg(&config)
            .env("NOTIFY_SOCKET", &socket_path)
            .env("WATCHDOG_USEC", "200000"),
    );
    let log = child.stderr_lines();
    let ready = until(&socket, "READY=1");
    assert!(
        ready
            .concat()
            .contains(&format!("STATUS=serving 1 sources on 127.0.0.1:{port}")),
        "{ready:?}"
    );
    // READY means serving: no retry needed.
    let (status, _, _) = get(&format!("http://127.0.0.1:{port}/healthz")).await;
    assert_eq!(status, 200);
    // Keep-alives every 100 ms (half of WATCHDOG_USEC) while the scheduler lives.
    for _ in 0..3 {
        until(&socket, "WATCHDOG=1");
    }

    // SIGHUP with a source added to the file: RELOADING, then READY with the new count.
    let added = format!(
        "{text}\n[[source]]\nname = \"t\"\nurl = \"{}\"\ninterval = \"1h\"\n",
        origin.url("/t")
    );
    std::fs::write(&config, &added).expect("config");
    signal(child.id(), "-HUP");
    let reload = until(&socket, "READY=1");
    let reload = reload.concat();
    assert!(reload.contains("RELOADING=1"), "{reload}");
    assert!(reload.contains("MONOTONIC_USEC="), "{reload}");
    assert!(reload.contains("STATUS=serving 2 sources"), "{reload}");

    let mut reloaded = false;
    let mut stored = false;
    let mut stored_s = false;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(reloaded && stored && stored_s) {
        let line = log
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("log lines");
        assert!(!line.contains('\u{1b}'), "no colour codes: {line}");
        reloaded |= line.contains("config reloaded") && line.contains("added t");
        stored |= line.contains("source=t") && line.contains("polled") && line.contains("new=");
        stored_s |= line.contains("source=s") && line.contains("polled") && line.contains("new=");
    }

    // An edit picked up by the watch (no SIGHUP) updates the status line too.
    let third = format!(
        "{added}\n[[source]]\nname = \"u\"\nurl = \"{}\"\ninterval = \"1h\"\n",
        origin.url("/u")
    );
    std::fs::write(&config, &third).expect("config");
    until(
        &socket,
        &format!("STATUS=serving 3 sources on 127.0.0.1:{port}"),
    );

    let stop = Instant::now();
    signal(child.id(), "-TERM");
    until(&socket, "STOPPING=1");
    let mut waited = child.0.take().expect("child");
    let status = tokio::task::spawn_blocking(move || waited.wait())
        .await
        .expect("join")
        .expect("wait");
    assert_eq!(status.code(), Some(0));
    assert!(
        stop.elapsed() < Duration::from_secs(5),
        "stopped in {:?}",
        stop.elapsed()
    );

    // Nothing lost: both sources' entries are in the store.
    let out = tributary()
        .args(["status", "--json", "--config"])
        .arg(&config)
        .output()
        .expect("status");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(json["entries"].as_u64() >= Some(10), "{json}");
    let out = tributary()
        .args(["verify", "--config"])
        .arg(&config)
        .output()
        .expect("verify");
    assert_eq!(out.status.code(), Some(0));
}

/// Under systemd, with no --config: the config comes from $CONFIGURATION_DIRECTORY and a
/// relative store path lands in $STATE_DIRECTORY. Then `prune` and `verify` operate it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn systemd_directories_prune_and_verify() {
    let origin = Origin::start().await;
    origin.set("/s", Route::feed(rss(0..30), "application/rss+xml"));
    let etc = tempfile::tempdir().expect("tempdir");
    let var = tempfile::tempdir().expect("tempdir");
    let run = |args: &[&str]| {
        let out = tributary()
            .args(args)
            .env("CONFIGURATION_DIRECTORY", etc.path())
            .env("STATE_DIRECTORY", var.path())
            .current_dir(Path::new("/"))
            .output()
            .expect("runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let port = free_port();
    let write = |keep: u32| {
        std::fs::write(
            etc.path().join("feeds.toml"),
            format!(
                "[server]\nlisten = \"127.0.0.1:{port}\"\n\n[store]\npath = \"store\"\n\n[retention]\nkeep_per_source = {keep}\n\n[[source]]\nname = \"s\"\nurl = \"{}\"\n",
                origin.url("/s")
            ),
        )
        .expect("config")
    };
    write(100);
    let (code, _, err) = run(&["verify"]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("there is no store at"),
        "verify does not create one: {err}"
    );
    let (code, out, err) = run(&["once"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("new   30"), "{out}");
    assert!(
        var.path().join("store/db").exists(),
        "the store is in STATE_DIRECTORY"
    );

    write(10);
    let (code, out, err) = run(&["prune", "--dry-run"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("s                        would prune 20"),
        "{out}"
    );
    assert!(out.contains("dry run: nothing changed"), "{out}");
    let (_, out, _) = run(&["prune"]);
    assert!(out.contains("s                        pruned 20"), "{out}");
    assert!(
        out.contains("20 entries pruned, 10 left; 20 tombstones"),
        "{out}"
    );
    let (code, out, _) = run(&["verify"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("10 entries, 1 sources, 20 tombstones: consistent"),
        "{out}"
    );
    // Polled again: the pruned 20 do not come back.
    let (_, out, _) = run(&["once"]);
    assert!(out.contains("new    0"), "{out}");
    let (_, out, _) = run(&["status", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(json["entries"], 10);
}

/// Under journald (`$JOURNAL_STREAM`), each log line starts with its syslog priority.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_lines_carry_their_priority_for_journald() {
    let origin = Origin::start().await;
    origin.set("/s", Route::feed(rss(0..3), "application/rss+xml"));
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("feeds.toml");
    std::fs::write(
        &config,
        format!(
            "[[source]]\nname = \"s\"\nurl = \"{}\"\n\n[[source]]\nname = \"gone\"\nurl = \"{}\"\n",
            origin.url("/s"),
            origin.url("/gone")
        ),
    )
    .expect("config");
    origin.set("/gone", Route::status(410, ""));
    // `once` prints its own table: its per-poll log lines are at debug level (<7>); a
    // source that is gone is a warning (<4>).
    let mut cmd = support::tributary_command("debug");
    cmd.args(["once", "--config"])
        .arg(&config)
        .env("JOURNAL_STREAM", "8:12345");
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("once"))
        .await
        .expect("joined");
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("<7>") && l.contains("source=s") && l.contains("polled")),
        "{err}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("<7>")
            && l.contains("source=gone")
            && l.contains("poll failed")),
        "{err}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("<4>") && l.contains("source=gone") && l.contains("410 Gone")),
        "{err}"
    );
    assert!(
        lines.iter().all(|l| l.starts_with('<')),
        "every line has a priority: {err}"
    );
}
