//! What the real binary tells a person: network failures in one short line, `status`
//! without a daemon, absolute paths, and `RUST_LOG=debug` as tributary's own debug log.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use support::{Item, Origin, Route, Rss, config_prelude, free_port, source_toml};

fn write_config(dir: &Path, sources: &str) -> PathBuf {
    let path = dir.join("feeds.toml");
    std::fs::write(&path, format!("{}{sources}", config_prelude(""))).expect("write config");
    path
}

async fn run(config: &Path, rust_log: &str, args: &[&str]) -> Output {
    let mut cmd = support::tributary_command(rust_log);
    cmd.args(args).arg("--config").arg(config);
    tokio::task::spawn_blocking(move || cmd.output().expect("runs"))
        .await
        .expect("joined")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The error of `source`'s line in `once`'s output: between "FAILED  " and its time.
fn failure<'a>(stdout: &'a str, source: &str) -> &'a str {
    let line = stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(source))
        .unwrap_or_else(|| panic!("no line for {source}:\n{stdout}"));
    let error = line
        .split_once(" FAILED  ")
        .unwrap_or_else(|| panic!("not a failure: {line}"))
        .1;
    error.rsplit_once("  ").map_or(error, |(e, _)| e)
}

/// A name that cannot resolve (.invalid never does), a port nothing listens on and a TLS
/// handshake with a server that does not speak TLS: one short line each, naming the host or
/// the address; the whole chain only at debug level.
#[tokio::test]
async fn network_failures_are_one_short_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    // https:// to a server that answers in plain HTTP: the handshake fails.
    let origin = Origin::start().await;
    origin.set(
        "/feed",
        Route::feed(support::small_rss("a", 2), "application/rss+xml"),
    );
    let plain = origin.url("/feed").replacen("http://", "https://", 1);
    let config = write_config(
        dir.path(),
        &format!(
            "{}{}{}",
            source_toml("nowhere", "http://nonexistent.invalid/feed", "1h", ""),
            source_toml("closed", &format!("http://127.0.0.1:{port}/feed"), "1h", ""),
            source_toml("plain", &plain, "1h", "")
        ),
    );
    let out = run(&config, "info", &["once"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(
        failure(&stdout, "plain"),
        "TLS: the server does not speak TLS here (an http:// address?)"
    );
    assert_eq!(
        failure(&stdout, "nowhere"),
        "cannot resolve nonexistent.invalid"
    );
    assert_eq!(
        failure(&stdout, "closed"),
        format!("connection refused by 127.0.0.1:{port}")
    );
    assert!(!text(&out.stderr).contains("error sending request"));

    // The status keeps the same short sentence.
    let out = run(&config, "info", &["status"]).await;
    let status = text(&out.stdout);
    assert!(
        status.contains("last error:     cannot resolve nonexistent.invalid at "),
        "{status}"
    );

    // The chain is in tributary's debug log.
    let out = run(&config, "debug", &["once"]).await;
    let stderr = text(&out.stderr);
    assert!(
        stderr.lines().any(|l| l.contains("DEBUG")
            && l.contains("request failed")
            && l.contains("nonexistent.invalid")
            && l.contains("dns error")),
        "{stderr}"
    );
}

/// With no daemon running, `status` says so, and no next poll reads as if one were coming.
#[tokio::test]
async fn status_without_a_daemon_says_so() {
    let origin = Origin::start().await;
    origin.set(
        "/feed",
        Route::feed(support::small_rss("a", 2), "application/rss+xml"),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let text_config = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\n\n{}",
        source_toml("a", &origin.url("/feed"), "1h", "")
    );
    let config = dir.path().join("feeds.toml");
    std::fs::write(&config, text_config).expect("write config");
    let out = run(&config, "info", &["once"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let out = run(&config, "info", &["status"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("a [ok] 2 entries"), "{stdout}");
    let next: Vec<&str> = stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("next poll:"))
        .collect();
    assert_eq!(next.len(), 1, "{stdout}");
    assert!(
        next[0].contains("when a daemon runs (due "),
        "not as if a daemon were polling: {stdout}"
    );
    assert!(
        stdout.trim_end().ends_with(&format!(
            "No daemon is running (nothing answered at http://127.0.0.1:{port}/healthz): this is what the store holds, and nothing is polled until `tributary run` starts (or `tributary once` polls every source once)."
        )),
        "{stdout}"
    );
}

/// A config named by a relative path is named absolutely, and so is its store.
#[tokio::test]
async fn paths_are_printed_absolute() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_config(
        dir.path(),
        &source_toml("a", "https://example.org/feed", "1h", ""),
    );
    let real = dir.path().canonicalize().expect("canonical");
    let mut cmd = support::tributary_command("info");
    cmd.args(["check", "--config", "feeds.toml"])
        .current_dir(dir.path());
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("runs"))
        .await
        .expect("joined");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with(&format!(
            "{}: ok (1 sources, store at {}, ",
            real.join("feeds.toml").display(),
            real.join("store").display()
        )),
        "{stdout}"
    );

    // A problem in the file names it absolutely too.
    std::fs::write(dir.path().join("feeds.toml"), "[[source]]\nname = 3\n").expect("write");
    let mut cmd = support::tributary_command("info");
    cmd.args(["check", "--config", "feeds.toml"])
        .current_dir(dir.path());
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("runs"))
        .await
        .expect("joined");
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with(&format!("{}:", real.join("feeds.toml").display())),
        "{stderr}"
    );
}

/// `RUST_LOG=debug` is tributary's debug: requests with their time and status, cache
/// decisions, and why entries were skipped; other crates stay at warn unless named.
#[tokio::test(flavor = "multi_thread")]
async fn rust_log_debug_is_tributarys_debug() {
    let origin = Origin::start().await;
    // HTML content: sanitised through html5ever, which logs a lot at debug.
    let feed_of = |n: usize| {
        let items = (0..n).map(|i| {
            Item::new(format!("http://a.example/{i}"))
                .title(if i == 0 {
                    "Sponsored: buy".to_string()
                } else {
                    format!("Post {i}")
                })
                .description(format!(
                    "&lt;p&gt;Some &lt;b&gt;bold&lt;/b&gt; text and &lt;a href=\"/x{i}\"&gt;a link&lt;/a&gt;&lt;/p&gt;&lt;table&gt;&lt;tr&gt;&lt;td&gt;cell&lt;/td&gt;&lt;/tr&gt;&lt;/table&gt;"
                ))
                .pub_date(format!("Mon, 01 Sep 2025 10:0{i}:00 GMT"))
        });
        Rss::new("A", "http://a.example/").items(items).xml()
    };
    let feed = feed_of(4);
    origin.set(
        "/cached",
        Route::feed(feed.clone(), "application/rss+xml").with_etag("\"v1\""),
    );
    origin.set("/plain", Route::feed(feed, "application/rss+xml"));
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        &format!(
            "{}{}",
            source_toml("cached", &origin.url("/cached"), "1h", ""),
            source_toml(
                "plain",
                &origin.url("/plain"),
                "1h",
                "max_new_per_poll = 2\nexclude = [{ field = \"title\", pattern = '^Sponsored' }]"
            )
        ),
    );
    let first = run(&config, "debug", &["once"]).await;
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    // One entry more: the document differs, so it is read in full (the very same bytes
    // would be recognised and not read again).
    origin.set("/plain", Route::feed(feed_of(5), "application/rss+xml"));
    let second = run(&config, "debug", &["once"]).await;
    assert!(
        text(&second.stdout).contains("not modified"),
        "{}",
        text(&second.stdout)
    );
    let stderr = format!("{}{}", text(&first.stderr), text(&second.stderr));
    let debug: Vec<&str> = stderr.lines().filter(|l| l.contains(" DEBUG ")).collect();
    let has = |what: &[&str]| debug.iter().any(|l| what.iter().all(|w| l.contains(w)));
    for line in &debug {
        assert!(
            line.contains(" tributary::"),
            "a dependency's debug line: {line}"
        );
    }
    assert!(has(&["request", "url=", "/cached"]), "{stderr}");
    assert!(has(&["response headers", "status=200", "ms="]), "{stderr}");
    assert!(
        has(&["request", "if_none_match=", "v1"]),
        "validators sent:\n{stderr}"
    );
    assert!(has(&["cache: 304"]), "{stderr}");
    assert!(
        has(&[
            "entry skipped: kept out by the source's include/exclude rules",
            "a.example/0"
        ]),
        "{stderr}"
    );
    assert!(
        has(&["entry skipped for good: capped by max_new_per_poll"]),
        "{stderr}"
    );
    assert!(
        has(&["entry skipped: tombstoned"]),
        "the capped entry, seen again:\n{stderr}"
    );
    assert!(has(&["entry skipped: unchanged"]), "{stderr}");
    assert!(has(&["polled", "ms="]), "{stderr}");

    // A dependency named is still heard: the control that html5ever logs at all (a fresh
    // store: content is sanitised, through html5ever, only when an entry is new or changed).
    let fresh = tempfile::tempdir().expect("tempdir");
    let copy = fresh.path().join("feeds.toml");
    std::fs::copy(&config, &copy).expect("copy config");
    let out = run(&copy, "debug,html5ever=trace", &["once"]).await;
    let stderr = text(&out.stderr);
    assert!(
        stderr
            .lines()
            .any(|l| (l.contains(" DEBUG ") || l.contains(" TRACE ")) && l.contains("html5ever")),
        "RUST_LOG=html5ever=... still works:\n{stderr}"
    );
}

/// What a source sends can end up in an error, but never as it came: an HTML page that
/// advertises 3,000 feeds gives a short message naming a few (quickly: the links are
/// deduplicated by hash and read up to a bound), and a feed whose broken XML holds escape
/// sequences cannot write them to the terminal, the log or `status`.
#[tokio::test]
async fn errors_from_a_source_are_short_and_carry_no_control_characters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let origin = Origin::start().await;
    let mut page = String::from("<html><head><title>many</title>");
    for i in 0..3000 {
        page.push_str(&format!(
            "<link rel=\"alternate\" type=\"application/rss+xml\" href=\"/feed{i}.xml\">"
        ));
    }
    page.push_str("</head><body>hi</body></html>");
    origin.set("/many", Route::feed(page, "text/html; charset=utf-8"));
    origin.set(
        "/escapes",
        Route::feed(
            "<rss version=\"2.0\"><channel><title>t</title><item><ti\u{1b}[31mtle>x</ti\u{1b}[0mtle\r\n></item></channel></rss>",
            "application/rss+xml",
        ),
    );
    let config = write_config(
        dir.path(),
        &format!(
            "{}{}",
            source_toml("many", &origin.url("/many"), "1h", ""),
            source_toml("escapes", &origin.url("/escapes"), "1h", "")
        ),
    );
    let out = run(&config, "info", &["once"]).await;
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    let many = failure(&stdout, "many");
    assert!(
        many.contains("/feed0.xml") && many.contains(" more"),
        "{many}"
    );
    assert!(
        many.chars().count() <= 601,
        "{} chars",
        many.chars().count()
    );
    assert!(failure(&stdout, "escapes").contains("tle"), "{stdout}");
    for (what, out) in [("stdout", &stdout), ("stderr", &stderr)] {
        assert!(!out.contains('\u{1b}'), "{what} holds an escape: {out:?}");
    }
    let status = run(&config, "info", &["status"]).await;
    let status = text(&status.stdout);
    assert!(
        !status.contains('\u{1b}') && !status.contains('\r'),
        "{status:?}"
    );
    assert!(status.len() < 4000, "{} bytes", status.len());
}
