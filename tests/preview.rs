//! `tributary preview NAME [--json]` through the real binary: what a source gives now, one
//! line per entry or every field as JSON, without creating or opening the store, beside a
//! running daemon that holds it.

mod support;

use support::{Origin, Route, config_prelude, config_raw, source_toml, start, tributary_command};

const PAGE: &str = r#"<!DOCTYPE html><html><head><title>Town news</title></head><body><main>
<article><h2><a href="/news/bridge">Council votes on the bridge plan</a></h2>
<time datetime="2026-11-21T08:00:00Z">21 Nov</time><p>The vote is on Tuesday.</p></article>
<article><h2><a href="/news/library">The library reopens</a></h2><p>With a new roof.</p></article>
</main></body></html>"#;

/// The config text: one page source, `news`, with `select` lines.
fn config_text(origin: &Origin, select: &str, store: &std::path::Path) -> String {
    format!(
        "{}[store]\npath = \"{}\"\n\n{}",
        config_prelude(""),
        store.display(),
        source_toml(
            "news",
            &origin.url("/news"),
            "1h",
            &format!("kind = \"html\"\n[source.select]\n{select}")
        )
    )
}

fn preview(config: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = tributary_command("warn")
        .arg("--config")
        .arg(config)
        .arg("preview")
        .args(args)
        .output()
        .expect("tributary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_lists_entries_without_the_store_and_beside_the_daemon() {
    let origin = Origin::start().await;
    origin.set("/news", Route::feed(PAGE, "text/html; charset=utf-8"));
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    let text = config_text(
        &origin,
        "items = \"article\"\nauthor = \".byline\"\n",
        &store,
    );
    let config = dir.path().join("feeds.toml");
    std::fs::write(&config, &text).expect("config");

    let (ok, stdout, stderr) = preview(&config, &["news"]);
    assert!(ok, "{stdout}\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with(&format!(
            "news: 2 entries from {} (HTTP 200, ",
            origin.url("/news")
        )),
        "{stdout}"
    );
    assert_eq!(
        lines[1],
        format!(
            "2026-11-21 08:00 UTC  Council votes on the bridge plan  {}",
            origin.url("/news/bridge")
        )
    );
    assert_eq!(
        lines[2],
        format!(
            "(dated when seen)     The library reopens  {}",
            origin.url("/news/library")
        )
    );
    assert_eq!(
        stderr.trim(),
        "warning: selector `author` (.byline) matched nothing in 2 of 2 items"
    );
    assert!(!store.exists(), "preview created the store");

    // --json: every field.
    let (ok, stdout, _) = preview(&config, &["news", "--json"]);
    assert!(ok);
    let doc: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(doc["source"], "news");
    assert_eq!(doc["entries"][0]["summary"], "The vote is on Tuesday.");
    assert_eq!(doc["entries"][0]["date"], "2026-11-21T08:00:00+00:00");
    assert_eq!(doc["entries"][1]["date"], serde_json::Value::Null);
    assert_eq!(doc["warnings"].as_array().map(Vec::len), Some(1));

    // Beside a daemon holding the store (sled's lock): preview still works, and asks for
    // the page whole even though the daemon keeps its ETag.
    origin.set(
        "/news",
        Route::feed(PAGE, "text/html; charset=utf-8").with_etag("\"p1\""),
    );
    let mut daemon = start(config_raw(dir.path(), &text)).await;
    let mut reports = daemon.take_reports();
    support::next(&mut reports, |r| r.source == "news").await;
    let before = origin.requests("/news").len();
    let (ok, stdout, stderr) = preview(&config, &["news"]);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.starts_with("news: 2 entries"), "{stdout}");
    let requests = origin.requests("/news");
    assert_eq!(requests.len(), before + 1);
    assert!(!requests[before].headers.contains_key("if-none-match"));
    daemon.shutdown().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_fails_clearly() {
    let origin = Origin::start().await;
    origin.set("/news", Route::feed(PAGE, "text/html; charset=utf-8"));
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("feeds.toml");
    std::fs::write(
        &config,
        config_text(
            &origin,
            "items = \"div.story\"\n",
            &dir.path().join("store"),
        ),
    )
    .expect("config");

    let (ok, stdout, stderr) = preview(&config, &["news"]);
    assert!(!ok);
    assert_eq!(stdout, "");
    assert_eq!(
        stderr.trim(),
        "news: selector `items` (div.story) matched nothing on the page"
    );
    let (ok, _, stderr) = preview(&config, &["nope"]);
    assert!(!ok);
    assert_eq!(
        stderr.trim(),
        "tributary: no source named \"nope\" in the config (sources: news)"
    );
}

/// Piped into a reader that stops early (`| head -1`), the rest of the report is dropped
/// quietly and the command ends normally, not with a panic on the broken pipe (nor killed
/// by SIGPIPE, which stays ignored: a network peer closing a socket must not end it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_stops_early_ends_it_quietly() {
    use std::io::{BufRead, BufReader};

    let items: String = (0..3000)
        .map(|i| {
            format!("<li><a href=\"/e/{i}\">An entry with a title long enough, number {i}</a></li>")
        })
        .collect();
    let origin = Origin::start().await;
    origin.set(
        "/news",
        Route::feed(format!("<ul>{items}</ul>"), "text/html; charset=utf-8"),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("feeds.toml");
    std::fs::write(
        &config,
        config_text(&origin, "items = \"li\"\n", &dir.path().join("store")),
    )
    .expect("config");
    let mut child = tributary_command("warn")
        .arg("--config")
        .arg(&config)
        .args(["preview", "news"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("tributary runs");
    let stdout = child.stdout.take().expect("stdout");
    let first = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("a line");
        line
    })
    .await
    .expect("join");
    assert!(first.starts_with("news: 3000 entries"), "{first}");
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
}
