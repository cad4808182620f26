//! A 200 that brings the very document a poll read last time is not read again (its digest
//! is kept in the source's state), and one that brings the very entries is not normalised
//! again; other entries, other rules or another title template are read in full. Through the real binary (its debug log says which) and the store.

mod support;

use std::path::Path;

use support::{Origin, Route, tributary_command};

/// The line a poll logs (at debug level) when it recognises the document.
const SAME: &str = "the same document as last time";
/// The line when another document brings the very entries read last time.
const SAME_ENTRIES: &str = "the same entries as last time";

fn rss(build: &str, ttl: &str) -> String {
    let mut s = format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Same</title>\
         <link>https://same.example/</link><description>d</description>\
         <lastBuildDate>{build}</lastBuildDate>{ttl}"
    );
    for i in 0..3 {
        s.push_str(&format!(
            "<item><guid>g{i}</guid><title>Item {i}</title><link>https://same.example/{i}</link>\
             <description>&lt;p&gt;Body {i}&lt;/p&gt;</description>\
             <pubDate>Mon, 0{} Jan 2024 10:00:00 GMT</pubDate></item>",
            i + 1
        ));
    }
    s + "</channel></rss>"
}

fn write_config(dir: &Path, url: &str, template: Option<&str>) -> std::path::PathBuf {
    let template = template.map_or(String::new(), |t| format!("title_template = \"{t}\"\n"));
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[store]\npath = \"{}\"\n\n\
         [[source]]\nname = \"same\"\nurl = \"{url}\"\ninterval = \"1h\"\n{template}",
        dir.join("store").display()
    );
    let path = dir.join("feeds.toml");
    std::fs::write(&path, text).expect("config");
    path
}

/// `tributary once` at debug level: its table (stdout) and its log (stderr).
fn once(config: &Path) -> (String, String) {
    let out = tributary_command("tributary=debug")
        .arg("once")
        .arg("--config")
        .arg(config)
        .output()
        .expect("tributary runs");
    assert!(out.status.success(), "{out:?}");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn state(dir: &Path) -> tributary::model::SourceState {
    let store = tributary::store::Store::open(&dir.join("store"), 1 << 20).expect("store");
    store.source_state("same").expect("read").expect("a state")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_document_is_not_read_twice_but_any_change_is_read() {
    let origin = Origin::start().await;
    // No validators: every poll is a 200 with the whole document.
    let first = rss("Mon, 01 Jan 2024 12:00:00 GMT", "");
    origin.set("/f.xml", Route::feed(first, "application/rss+xml"));
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &origin.url("/f.xml"), None);

    let (table, log) = once(&config);
    assert!(table.contains("new    3"), "{table}");
    assert!(!log.contains(SAME), "{log}");
    let seen = state(dir.path())
        .document
        .expect("the document is recorded");
    assert_eq!((seen.entries, seen.filtered), (3, 0));

    // The same bytes: recognised, counted as unchanged, not read.
    let (table, log) = once(&config);
    assert!(
        table.contains("new    0  updated    0  unchanged    3"),
        "{table}"
    );
    assert!(log.contains(SAME), "{log}");
    assert_eq!(origin.requests("/f.xml").len(), 2, "it was fetched");

    // Only the channel's date differs: another document, parsed, but its entries are the
    // very ones read last time: not normalised again, nothing stored.
    origin.set(
        "/f.xml",
        Route::feed(
            rss("Tue, 02 Jan 2024 12:00:00 GMT", ""),
            "application/rss+xml",
        ),
    );
    let (table, log) = once(&config);
    assert!(
        table.contains("new    0  updated    0  unchanged    3"),
        "{table}"
    );
    assert!(!log.contains(SAME), "{log}");
    assert!(log.contains(SAME_ENTRIES), "{log}");
    let (_, log) = once(&config);
    assert!(
        log.contains(SAME),
        "the new document is the one remembered: {log}"
    );

    // One entry edited: read in full, the edit stored.
    let edited = rss("Tue, 02 Jan 2024 12:00:00 GMT", "").replace("Item 1<", "Item one<");
    origin.set("/f.xml", Route::feed(edited, "application/rss+xml"));
    let (table, log) = once(&config);
    assert!(!log.contains(SAME_ENTRIES), "{log}");
    assert!(table.contains("updated    1  unchanged    2"), "{table}");

    // The same bytes under another title template: read again, every title rewritten.
    let config = write_config(dir.path(), &origin.url("/f.xml"), Some("[x] {title}"));
    let (table, log) = once(&config);
    assert!(!log.contains(SAME), "{log}");
    assert!(!log.contains(SAME_ENTRIES), "{log}");
    assert!(table.contains("updated    3"), "{table}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recognised_document_keeps_its_ttl_and_takes_new_validators() {
    let origin = Origin::start().await;
    // <ttl> of 600 minutes: the source is not due for 10 hours, though its interval is 1h.
    let body = rss("Mon, 01 Jan 2024 12:00:00 GMT", "<ttl>600</ttl>");
    origin.set("/f.xml", Route::feed(body.clone(), "application/rss+xml"));
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &origin.url("/f.xml"), None);
    once(&config);
    // The same bytes, now with an ETag: recognised, and the ETag is kept for the next poll.
    origin.set(
        "/f.xml",
        Route::feed(body, "application/rss+xml").with_etag("\"e2\""),
    );
    let before = chrono::Utc::now();
    let (_, log) = once(&config);
    assert!(log.contains(SAME), "{log}");
    let state = state(dir.path());
    let due = state.next_poll.expect("due");
    assert!(
        due >= before + chrono::Duration::hours(9),
        "the document's ttl still counts: due {due}"
    );
    assert_eq!(state.etag.as_deref(), Some("\"e2\""));
    // And it is sent: the next answer is a 304.
    let (table, _) = once(&config);
    assert!(table.contains("not modified"), "{table}");
}

/// A recognised document is still read once its last full read is older than the
/// tombstone refresh (a day by default): reading refreshes the tombstones of pruned entries
/// it still lists, which retention would otherwise expire, letting those entries back in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recognised_document_is_read_again_after_a_day() {
    let origin = Origin::start().await;
    let body = rss("Mon, 01 Jan 2024 12:00:00 GMT", "");
    origin.set("/f.xml", Route::feed(body, "application/rss+xml"));
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &origin.url("/f.xml"), None);
    once(&config);
    let (_, log) = once(&config);
    assert!(log.contains(SAME), "{log}");

    // The last full read, made 25 hours ago.
    {
        let store =
            tributary::store::Store::open(&dir.path().join("store"), 1 << 20).expect("store");
        let mut state = store.source_state("same").expect("read").expect("state");
        let seen = state.document.as_mut().expect("document");
        seen.read_at = Some(chrono::Utc::now() - chrono::Duration::hours(25));
        store.save_state("same", &state).expect("save");
        store.flush().expect("flush");
    }
    let before = chrono::Utc::now();
    let (table, log) = once(&config);
    assert!(!log.contains(SAME), "read in full: {log}");
    assert!(table.contains("unchanged    3"), "{table}");
    let read_at = state(dir.path()).document.and_then(|d| d.read_at);
    assert!(read_at.is_some_and(|t| t >= before), "{read_at:?}");
    let (_, log) = once(&config);
    assert!(log.contains(SAME), "recognised again: {log}");
}

/// A title template's `{source}` is the feed's own title when the config names none: a
/// feed renamed with its entries unchanged is read in full, and every title rewritten.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_feed_rewrites_titles_made_with_its_name() {
    let origin = Origin::start().await;
    let body = rss("Mon, 01 Jan 2024 12:00:00 GMT", "");
    origin.set("/f.xml", Route::feed(body.clone(), "application/rss+xml"));
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        &origin.url("/f.xml"),
        Some("[{source}] {title}"),
    );
    let (table, _) = once(&config);
    assert!(table.contains("new    3"), "{table}");
    let renamed = body.replace("<title>Same</title>", "<title>Renamed</title>");
    origin.set("/f.xml", Route::feed(renamed, "application/rss+xml"));
    let (table, log) = once(&config);
    assert!(!log.contains(SAME_ENTRIES), "{log}");
    assert!(table.contains("updated    3"), "{table}");
}
