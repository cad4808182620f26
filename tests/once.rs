//! `tributary once` as a user runs it: each source's line as its poll finishes, with the
//! poll's own time, no progress line when piped, and no log line repeating the table.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::{KillOnDrop, Origin, Route, config_prelude, small_rss, source_toml};

/// Writes feeds.toml into `dir` with `[fetch]` `fetch_extra` and `sources` (name, path on
/// `origin`), and returns its path.
fn write_config(
    dir: &std::path::Path,
    origin: &Origin,
    fetch_extra: &str,
    sources: &[(&str, &str)],
) -> std::path::PathBuf {
    let mut text = config_prelude(fetch_extra);
    for (name, path) in sources {
        text.push_str(&source_toml(name, &origin.url(path), "1h", ""));
    }
    let path = dir.join("feeds.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

fn rss_route(tag: &str) -> Route {
    Route::feed(small_rss(tag, 3), "application/rss+xml")
}

async fn run_once(config: &std::path::Path, rust_log: &str) -> Output {
    let mut cmd = support::tributary_command(rust_log);
    cmd.arg("once").arg("--config").arg(config);
    tokio::task::spawn_blocking(move || cmd.output().expect("runs"))
        .await
        .expect("joined")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The source name a `once` line starts with.
fn name(line: &str) -> &str {
    line.split_whitespace().next().unwrap_or_default()
}

/// The time at the end of a `once` line ("... 1.02s").
fn seconds(line: &str) -> f64 {
    line.rsplit(' ')
        .next()
        .and_then(|t| t.strip_suffix('s'))
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no time at the end of {line:?}"))
}

/// A slow source does not hold back the lines of the sources that finished before it: they
/// are on stdout (a pipe) while its poll still runs.
#[tokio::test(flavor = "multi_thread")]
async fn once_prints_each_line_as_its_poll_finishes() {
    let origin = Origin::start().await;
    for tag in ["a", "b", "c"] {
        origin.set(&format!("/{tag}"), rss_route(tag));
    }
    origin.set(
        "/slow",
        rss_route("slow").with_delay(Duration::from_secs(600)),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        &origin,
        "per_host = 8\ntimeout = \"900s\"",
        &[("a", "/a"), ("slow", "/slow"), ("b", "/b"), ("c", "/c")],
    );
    let mut cmd = support::tributary_command("info");
    cmd.arg("once").arg("--config").arg(&config);
    let mut child = KillOnDrop(Some(
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawns"),
    ));
    let stdout = child
        .0
        .as_mut()
        .and_then(|c| c.stdout.take())
        .expect("stdout piped");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let line = lines
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("only {seen:?} on stdout within 60 s"));
        assert!(line.contains(" ok "), "{line}");
        seen.push(name(&line).to_string());
    }
    seen.sort();
    assert_eq!(seen, ["a", "b", "c"]);
    // The slow source is still being polled: no line for it, no totals, still running.
    assert!(
        lines.recv_timeout(Duration::from_millis(200)).is_err(),
        "nothing more before the slow source finishes"
    );
    let running = child
        .0
        .as_mut()
        .map(|c| c.try_wait().expect("try_wait").is_none());
    assert_eq!(running, Some(true));
    assert_eq!(
        origin.requests("/slow").len(),
        1,
        "the slow poll is under way"
    );
}

/// With one poll at a time, the second source waits for the first; its time is its own
/// poll's (about one delay), not the time it was queued (two).
#[tokio::test(flavor = "multi_thread")]
async fn a_queued_poll_is_timed_from_its_own_fetch() {
    let delay = Duration::from_secs(2);
    let origin = Origin::start().await;
    origin.set("/one", rss_route("one").with_delay(delay));
    origin.set("/two", rss_route("two").with_delay(delay));
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        &origin,
        "concurrency = 1\nper_host = 4",
        &[("one", "/one"), ("two", "/two")],
    );
    let began = Instant::now();
    let out = run_once(&config, "info").await;
    let took = began.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(took >= delay * 2, "the polls ran one after the other");
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert_eq!(lines[2], "2 sources polled, 0 failed");
    for line in &lines[..2] {
        let secs = seconds(line);
        assert!(
            // Queued time counted, the second would be over two delays.
            secs >= delay.as_secs_f64() && secs < delay.as_secs_f64() * 1.75,
            "each poll's own time, not its time queued: {line}"
        );
    }
}

/// Piped, `once` draws no progress line, and its log does not repeat the table: the
/// per-poll lines (successes and failures) are at debug level.
#[tokio::test(flavor = "multi_thread")]
async fn piped_once_has_no_progress_line_and_no_table_in_the_log() {
    let origin = Origin::start().await;
    origin.set("/good", rss_route("good"));
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        &origin,
        "",
        &[("good", "/good"), ("missing", "/missing")],
    );
    let out = run_once(&config, "info").await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("good "), "{stdout}");
    assert!(
        stdout.contains("missing                  FAILED  HTTP 404 Not Found"),
        "{stdout}"
    );
    assert!(stdout.ends_with("2 sources polled, 1 failed\n"), "{stdout}");
    let stderr = text(&out.stderr);
    for repeated in ["polled", "poll failed", "404", "sources,", "\r", "\u{1b}["] {
        assert!(
            !stderr.contains(repeated),
            "{repeated:?} in stderr:\n{stderr}"
        );
    }

    // The lines are still there for whoever asks for tributary's debug log.
    let out = run_once(&config, "tributary=debug").await;
    let stderr = text(&out.stderr);
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("DEBUG") && l.contains("polled")),
        "{stderr}"
    );
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("DEBUG") && l.contains("poll failed")),
        "{stderr}"
    );
}
