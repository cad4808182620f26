//! A hostile origin, one route per case: every way a server can fail, lie, stall or attack is
//! met with a precise recorded error, and none of them stops a healthy source from updating.
//!
//! Everything is real: origins on loopback (axum for well-formed answers, a hand-written
//! HTTP/1.1 server for broken framing), the real `app::once` and daemon on temporary sled
//! stores. Nothing here sleeps to wait for the daemon: `once` returns when its polls are done,
//! and the daemon test waits on the daemon's poll reports. (The one retry, in `when_unlocked`,
//! is for sled letting go of a store's lock a moment after it is closed.)

mod support;

use support::{once, when_unlocked};

use support::health;

use support::{Item, Rss};

use std::collections::HashSet;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use support::{
    Origin, RawOrigin, RawRoute, Route, assert_valid_atom, config, config_prelude, config_raw, get,
};
use tokio::net::TcpListener;
use tributary::app;
use tributary::config::Config;
use tributary::ingest::error::PollError;
use tributary::ingest::poll::{PollOutcome, PollReport};
use tributary::model::SourceState;
use tributary::store::Store;

const MIB: u64 = 1024 * 1024;
/// The default body cap, `[fetch] max_body_mb = 16`.
const DEFAULT_CAP: u64 = 16 * MIB;

// ---------------------------------------------------------------------------------------------
// Helpers

fn rss(items: &[(&str, &str)]) -> String {
    Rss::new("Hostile test", "https://hostile.example/")
        .utf8_declared()
        .items(items.iter().map(|(guid, title)| {
            Item::new(*guid)
                .not_permalink()
                .title(*title)
                .link(format!("https://hostile.example/{guid}"))
                .pub_date("Mon, 01 Jan 2024 10:00:00 GMT")
        }))
        .xml()
}

fn small_feed() -> String {
    rss(&[("one", "One"), ("two", "Two")])
}

/// A config with one source, `s`, at `url`.
fn one_source(dir: &Path, url: &str, fetch_extra: &str) -> Config {
    config(dir, &[("s", url, "1h")], fetch_extra)
}

/// `app::once` over a config with one source; its report.
async fn poll_once(cfg: &Config) -> PollReport {
    let mut reports = once(cfg).await;
    assert_eq!(reports.len(), 1);
    reports.remove(0)
}

fn failed(r: &PollReport) -> String {
    match &r.outcome {
        PollOutcome::Failed { error } => error.to_string(),
        other => panic!("{}: expected a failure, got {other:?}", r.source),
    }
}

fn new_count(r: &PollReport) -> usize {
    match &r.outcome {
        PollOutcome::Stored { counts, .. } => counts.new,
        other => panic!("{}: expected stored, got {other:?}", r.source),
    }
}

/// What the store recorded about `name` (what /healthz shows), read after `once` finished.
async fn state(cfg: &Config, name: &str) -> SourceState {
    let open = || async { Store::open(&cfg.store.path, 8 * MIB).map_err(app::Error::Store) };
    let store = when_unlocked(open).await.expect("store opens");
    store
        .source_state(name)
        .expect("state readable")
        .expect("state recorded")
}

/// A single failing poll: its error, and the store's record of it.
async fn assert_failure_recorded(cfg: &Config, report: &PollReport, status: Option<u16>) {
    let error = failed(report);
    let st = state(cfg, &report.source).await;
    assert_eq!(st.last_error.as_deref(), Some(error.as_str()));
    assert_eq!(st.last_status, status, "{error}");
    assert_eq!(st.consecutive_failures, 1, "{error}");
    assert!(st.last_success.is_none());
    assert_eq!(st.next_poll, report.next_poll);
}

/// Seconds from the poll's start to its next poll.
fn delay_secs(r: &PollReport) -> i64 {
    (r.next_poll.expect("a next poll") - r.started).num_seconds()
}

async fn start_daemon(cfg: Config) -> app::Daemon {
    when_unlocked(|| async {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        app::start(cfg.clone(), listener).await
    })
    .await
    .expect("daemon starts")
}

fn source_health<'a>(health: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    health["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("{name} listed in /healthz"))
}

/// 64 MiB of zeros, gzipped fast (about 300 KiB on the wire); built once per test binary.
fn gzip_bomb() -> &'static [u8] {
    static BOMB: OnceLock<Vec<u8>> = OnceLock::new();
    BOMB.get_or_init(|| {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let zeros = vec![0u8; MIB as usize];
        for _ in 0..64 {
            gz.write_all(&zeros).expect("compress");
        }
        gz.finish().expect("gzip")
    })
}

fn html_page() -> &'static str {
    r#"<!DOCTYPE html><html><head><title>A blog</title><link rel="alternate" type="application/rss+xml" href="/feed.xml" title="Main"></head><body><p>Hello</p></body></html>"#
}

/// A feed declared UTF-8 with a title of Latin-1 and stray bytes.
fn invalid_utf8_feed() -> Vec<u8> {
    let mut b = br#"<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Broken bytes</title><link>https://bytes.example/</link><description>d</description><item><guid isPermaLink="false">b1</guid><title>Caf"#.to_vec();
    b.extend_from_slice(b"\xe9 \xff\xfe end");
    b.extend_from_slice(b"</title><link>https://bytes.example/1</link><pubDate>Mon, 01 Jan 2024 10:00:00 GMT</pubDate></item></channel></rss>");
    b
}

fn billion_laughs() -> String {
    let mut dtd = String::from("<!DOCTYPE rss [\n<!ENTITY lol \"lol\">\n");
    let mut prev = "lol".to_string();
    for i in 1..=9 {
        let name = format!("lol{i}");
        let refs = format!("&{prev};").repeat(10);
        dtd.push_str(&format!("<!ENTITY {name} \"{refs}\">\n"));
        prev = name;
    }
    dtd.push_str("]>\n");
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
{dtd}<rss version="2.0"><channel><title>Laughs</title><link>https://laughs.example/</link><description>d</description><item><guid isPermaLink="false">l1</guid><title>&lol9;</title><link>https://laughs.example/1</link><description>&lol9;</description><pubDate>Mon, 01 Jan 2024 10:00:00 GMT</pubDate></item></channel></rss>"#
    )
}

fn xxe() -> &'static str {
    r#"<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<rss version="2.0"><channel><title>XXE</title><link>https://xxe.example/</link><description>d</description><item><guid isPermaLink="false">x1</guid><title>Secrets: &xxe;</title><link>https://xxe.example/1</link><description>&xxe;</description><pubDate>Mon, 01 Jan 2024 10:00:00 GMT</pubDate></item></channel></rss>"#
}

const BIG_FEED_ENTRIES: usize = 50_000;

/// An RSS feed of 50,000 entries (about 8 MB).
fn big_feed() -> String {
    let mut xml = String::with_capacity(BIG_FEED_ENTRIES * 200);
    xml.push_str(r#"<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Big</title><link>https://big.example/</link><description>d</description>"#);
    let start = chrono::DateTime::parse_from_rfc3339("2020-01-01T00:00:00Z").expect("date");
    for i in 0..BIG_FEED_ENTRIES {
        let date = (start + chrono::Duration::minutes(i as i64)).to_rfc2822();
        xml.push_str(&format!(
            "<item><guid isPermaLink=\"false\">g{i}</guid><title>Item {i}</title><link>https://big.example/{i}</link><pubDate>{date}</pubDate></item>"
        ));
    }
    xml.push_str("</channel></rss>");
    xml
}

// ---------------------------------------------------------------------------------------------
// Status codes

#[tokio::test]
async fn not_found_is_recorded() {
    let origin = Origin::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = one_source(dir.path(), &origin.url("/missing"), "");
    let r = poll_once(&cfg).await;
    assert_eq!(failed(&r), "HTTP 404 Not Found");
    assert_failure_recorded(&cfg, &r, Some(404)).await;
}

#[tokio::test]
async fn server_error_is_recorded() {
    let origin = Origin::start().await;
    origin.set("/500", Route::status(500, "oops"));
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = one_source(dir.path(), &origin.url("/500"), "");
    let r = poll_once(&cfg).await;
    assert_eq!(failed(&r), "HTTP 500 Internal Server Error");
    assert_failure_recorded(&cfg, &r, Some(500)).await;
    // A first failure is retried within a minute (±10% jitter), not after the interval (1h).
    assert!((54..=66).contains(&delay_secs(&r)), "{r:?}");
}

/// 410 Gone: the source is switched off, and a later poll does not even ask.
#[tokio::test]
async fn gone_is_never_polled_again() {
    let origin = Origin::start().await;
    origin.set("/gone", Route::status(410, "gone"));
    let dir = tempfile::tempdir().expect("tempdir");
    let url = origin.url("/gone");
    let cfg = one_source(dir.path(), &url, "");

    let r = poll_once(&cfg).await;
    assert_eq!(failed(&r), "HTTP 410 Gone: gone, no longer polled");
    assert!(failed(&r).contains("410 Gone"));
    assert!(
        matches!(
            &r.outcome,
            PollOutcome::Failed {
                error: PollError::Gone(_)
            }
        ),
        "{r:?}"
    );
    assert_eq!(r.next_poll, None);
    assert_failure_recorded(&cfg, &r, Some(410)).await;
    assert_eq!(
        state(&cfg, "s").await.gone_url.as_deref(),
        Some(url.as_str())
    );

    let again = poll_once(&cfg).await;
    assert_eq!(
        failed(&again),
        "HTTP 410 Gone earlier: no longer polled (remove the source or change its url)"
    );
    assert_eq!(again.next_poll, None);
    assert!(
        matches!(
            &again.outcome,
            PollOutcome::Failed {
                error: PollError::GoneEarlier
            }
        ),
        "{again:?}"
    );
    assert_eq!(origin.requests("/gone").len(), 1, "not contacted again");
}

#[tokio::test]
async fn too_many_requests_honours_retry_after_seconds() {
    let origin = RawOrigin::start().await;
    origin.set(
        "/429",
        RawRoute::respond(429, &[("Retry-After", "3600")], "slow down"),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    // A short interval: without the Retry-After the next poll would be a minute away.
    let cfg = config(dir.path(), &[("s", &origin.url("/429"), "1m")], "");
    let r = poll_once(&cfg).await;
    assert_eq!(
        failed(&r),
        "HTTP 429 Too Many Requests (Retry-After: 3600s)"
    );
    assert_failure_recorded(&cfg, &r, Some(429)).await;
    // ±10% jitter, at most 5 minutes.
    let d = delay_secs(&r);
    assert!((3600 - 300..=3600 + 300).contains(&d), "next poll in {d}s");
}

#[tokio::test]
async fn unavailable_honours_retry_after_date() {
    let origin = RawOrigin::start().await;
    let two_hours = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(7200));
    origin.set(
        "/503",
        RawRoute::respond(503, &[("Retry-After", &two_hours)], "maintenance"),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), &[("s", &origin.url("/503"), "1m")], "");
    let r = poll_once(&cfg).await;
    let error = failed(&r);
    let secs: u64 = error
        .strip_prefix("HTTP 503 Service Unavailable (Retry-After: ")
        .and_then(|rest| rest.strip_suffix("s)"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected error: {error}"));
    assert!((7190..=7200).contains(&secs), "{error}");
    assert_failure_recorded(&cfg, &r, Some(503)).await;
    let d = delay_secs(&r);
    assert!((7200 - 310..=7200 + 300).contains(&d), "next poll in {d}s");
}

// ---------------------------------------------------------------------------------------------
// Redirects

/// /a -301-> /b -308-> /feed: stored, and the move is remembered.
#[tokio::test]
async fn permanent_redirect_chain_is_remembered() {
    let origin = RawOrigin::start().await;
    origin.set("/a", RawRoute::redirect(301, "/b"));
    origin.set("/b", RawRoute::redirect(308, &origin.url("/feed")));
    origin.set("/feed", RawRoute::feed(small_feed(), "application/rss+xml"));
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = one_source(dir.path(), &origin.url("/a"), "");

    let r = poll_once(&cfg).await;
    assert_eq!(new_count(&r), 2);
    let st = state(&cfg, "s").await;
    assert_eq!(st.moved_to.as_deref(), Some(origin.url("/feed").as_str()));
    assert_eq!(st.moved_from.as_deref(), Some(origin.url("/a").as_str()));
    assert_eq!(st.last_status, Some(200));
    assert_eq!(st.entry_count, 2);

    let again = poll_once(&cfg).await;
    assert!(
        matches!(again.outcome, PollOutcome::Stored { counts, .. } if counts.unchanged == 2),
        "{again:?}"
    );
    assert_eq!(
        origin.requests("/a").len(),
        1,
        "the old url is not asked again"
    );
    assert_eq!(origin.requests("/b").len(), 1);
    assert_eq!(
        origin.requests("/feed").len(),
        2,
        "the new url is asked directly"
    );
}

/// 302 is followed but not remembered; a temporary hop ends what a chain remembers.
#[tokio::test]
async fn temporary_redirect_is_followed_not_remembered() {
    let origin = RawOrigin::start().await;
    origin.set("/t", RawRoute::redirect(302, "/feed"));
    origin.set("/m", RawRoute::redirect(301, "/n"));
    origin.set("/n", RawRoute::redirect(302, "/feed"));
    origin.set("/feed", RawRoute::feed(small_feed(), "application/rss+xml"));
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(
        dir.path(),
        &[
            ("temp", &origin.url("/t"), "1h"),
            ("mixed", &origin.url("/m"), "1h"),
        ],
        "",
    );

    let reports = once(&cfg).await;
    assert_eq!(new_count(&reports[0]), 2);
    assert_eq!(new_count(&reports[1]), 2);
    assert_eq!(state(&cfg, "temp").await.moved_to, None);
    assert_eq!(
        state(&cfg, "mixed").await.moved_to.as_deref(),
        Some(origin.url("/n").as_str())
    );

    once(&cfg).await;
    assert_eq!(
        origin.requests("/t").len(),
        2,
        "302: the original url again"
    );
    assert_eq!(
        origin.requests("/m").len(),
        1,
        "301 then 302: /n from now on"
    );
    assert_eq!(origin.requests("/n").len(), 2);
}

#[tokio::test]
async fn redirect_loop_is_named() {
    let origin = RawOrigin::start().await;
    origin.set("/x", RawRoute::redirect(302, "/y"));
    origin.set("/y", RawRoute::redirect(302, "/x"));
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = one_source(dir.path(), &origin.url("/x"), "");
    let r = poll_once(&cfg).await;
    assert!(failed(&r).starts_with("redirect loop"));
    assert_eq!(
        failed(&r),
        format!("redirect loop: {} was reached twice", origin.url("/x"))
    );
    assert_failure_recorded(&cfg, &r, None).await;
    assert_eq!(origin.requests("/x").len(), 1);
    assert_eq!(origin.requests("/y").len(), 1);
}

/// Five redirects are followed; a sixth is refused.
#[tokio::test]
async fn more_than_five_redirects_are_refused() {
    let origin = RawOrigin::start().await;
    for i in 1..=6 {
        origin.set(
            &format!("/r{i}"),
            RawRoute::redirect(302, &format!("/r{}", i + 1)),
        );
    }
    origin.set("/r7", RawRoute::feed(small_feed(), "application/rss+xml"));
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(
        dir.path(),
        &[
            ("six", &origin.url("/r1"), "1h"),
            ("five", &origin.url("/r2"), "1h"),
        ],
        "",
    );
    let reports = once(&cfg).await;
    assert_eq!(failed(&reports[0]), "more than 5 redirects");
    assert_failure_recorded(&cfg, &reports[0], None).await;
    assert_eq!(new_count(&reports[1]), 2, "exactly five redirects are fine");
    // The sixth Location was never requested by the refused source.
    assert_eq!(origin.requests("/r7").len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Bodies

#[tokio::test]
async fn gzip_bomb_is_cut_off() {
    let origin = RawOrigin::start().await;
    origin.set(
        "/bomb",
        RawRoute::respond(
            200,
            &[
                ("Content-Type", "application/rss+xml"),
                ("Content-Encoding", "gzip"),
            ],
            gzip_bomb(),
        ),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = one_source(dir.path(), &origin.url("/bomb"), "");
    let r = poll_once(&cfg).await;
    assert_eq!(
        failed(&r),
        format!("response too large: more than {DEFAULT_CAP} bytes")
    );
    assert_failure_recorded(&cfg, &r, None).await;
}

#[tokio::test]
async fn hundred_mib_body_is_refused() {
    let origin = RawOrigin::start().await;
    origin.set("/huge", RawRoute::Huge { len: 100 * MIB });
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = one_source(dir.path(), &origin.url("/huge"), "");
    let r = poll_once(&cfg).await;
    assert_eq!(
        failed(&r),
        format!("response too large: more than {DEFAULT_CAP} bytes")
    );
    assert_failure_recorded(&cfg, &r, None).await;
}

#[tokio::test]
async fn endless_chunked_body_is_cut_off() {
    let origin = RawOrigin::start().await;
    origin.set("/endless", RawRoute::EndlessChunked);
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = one_source(dir.path(), &origin.url("/endless"), "max_body_mb = 2");
    let r = poll_once(&cfg).await;
    assert_eq!(
        failed(&r),
        format!("response too large: more than {} bytes", 2 * MIB)
    );
    assert_failure_recorded(&cfg, &r, None).await;
}

#[tokio::test]
async fn trickle_times_out() {
    let origin = RawOrigin::start().await;
    origin.set(
        "/trickle",
        RawRoute::Trickle {
            body: small_feed().into_bytes(),
            every: Duration::from_secs(1),
        },
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = one_source(dir.path(), &origin.url("/trickle"), "timeout = \"2s\"");
    let r = poll_once(&cfg).await;
    assert_eq!(failed(&r), "timed out after 2s");
    assert_failure_recorded(&cfg, &r, None).await;
    // Cut off long before the ~170 s the body would take (the duration also counts the
    // store's flush of the failure, slow when other tests write a lot at the same time).
    assert!(r.duration < Duration::from_secs(20), "{:?}", r.duration);
}

#[tokio::test]
async fn connection_reset_mid_body() {
    let origin = RawOrigin::start().await;
    origin.set(
        "/reset",
        RawRoute::ResetMidBody {
            promised: 100_000,
            sent: small_feed().into_bytes()[..100].to_vec(),
        },
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = one_source(dir.path(), &origin.url("/reset"), "");
    let r = poll_once(&cfg).await;
    let error = failed(&r);
    assert!(
        error.starts_with("connection broken while reading the body: "),
        "{error}"
    );
    assert!(error.contains("Connection reset by peer"), "{error}");
    assert_failure_recorded(&cfg, &r, None).await;
}

#[tokio::test]
async fn empty_200_is_an_error() {
    let origin = Origin::start().await;
    origin.set("/empty", Route::feed("", "application/rss+xml"));
    origin.set("/blank", Route::feed(" \r\n\t\n ", "application/rss+xml"));
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(
        dir.path(),
        &[
            ("empty", &origin.url("/empty"), "1h"),
            ("blank", &origin.url("/blank"), "1h"),
        ],
        "",
    );
    let reports = once(&cfg).await;
    for r in &reports {
        assert_eq!(failed(r), "empty response");
        // The fetch succeeded at the HTTP level, but 200 is not recorded as the status.
        assert_failure_recorded(&cfg, r, None).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Documents

/// An HTML page is not a feed; the error names the feed it advertises, as an absolute URL.
#[tokio::test]
async fn html_page_names_its_advertised_feed() {
    let origin = Origin::start().await;
    origin.set(
        "/blog",
        Route::feed(html_page(), "text/html; charset=utf-8"),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = one_source(dir.path(), &origin.url("/blog"), "");
    let r = poll_once(&cfg).await;
    let error = failed(&r);
    assert!(
        error.starts_with("not a feed: the server sent an HTML page (text/html"),
        "{error}"
    );
    assert_failure_recorded(&cfg, &r, Some(200)).await;
    assert!(
        error.contains(&origin.url("/feed.xml")),
        "the advertised feed is named as an absolute URL: {error}"
    );
}

/// Bytes that are not UTF-8 in a document declared UTF-8: never a crash, and the daemon keeps
/// serving. Accepted: stored, the bad bytes read as windows-1252 (what happens today: a
/// mislabelled Latin-1 document) or as replacement characters; or the whole document refused
/// as "cannot parse the feed: ...".
#[tokio::test]
async fn invalid_utf8_does_not_crash() {
    let origin = Origin::start().await;
    origin.set(
        "/bytes",
        Route::feed(invalid_utf8_feed(), "application/rss+xml; charset=utf-8"),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = one_source(dir.path(), &origin.url("/bytes"), "");
    let r = poll_once(&cfg).await;
    match &r.outcome {
        PollOutcome::Stored { counts, .. } => assert_eq!(counts.new, 1),
        PollOutcome::Failed { error } => {
            assert!(matches!(error, PollError::Parse(_)), "{error:?}");
            assert!(
                error.to_string().starts_with("cannot parse the feed"),
                "{error}"
            )
        }
        other => panic!("{other:?}"),
    }
    let observed = format!("{:?}", r.outcome);

    let daemon = start_daemon(cfg).await;
    let base = format!("http://{}", daemon.local_addr());
    let (status, _, body) = get(&format!("{base}/feed.atom")).await;
    assert_eq!(status, 200);
    let atom = assert_valid_atom(&body, "http://feeds.test/feed.atom");
    if let PollOutcome::Stored { .. } = r.outcome {
        assert_eq!(atom.entries.len(), 1, "{observed}");
        let title = &atom.entries[0].title.value;
        assert!(
            title == "Caf\u{e9} \u{ff}\u{fe} end" || title == "Caf\u{fffd} \u{fffd}\u{fffd} end",
            "{title:?}"
        );
    }
    assert_eq!(health(&base).await["status"], "ok");
    daemon.shutdown().await.expect("shutdown");
}

/// Nested entities are not expanded: the poll finishes and nothing huge is stored or served.
#[tokio::test]
async fn billion_laughs_is_not_expanded() {
    let origin = Origin::start().await;
    origin.set(
        "/laughs",
        Route::feed(billion_laughs(), "application/rss+xml"),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = one_source(dir.path(), &origin.url("/laughs"), "");
    let r = poll_once(&cfg).await;
    assert!(r.duration < Duration::from_secs(20), "{:?}", r.duration);
    match &r.outcome {
        PollOutcome::Stored { counts, .. } => assert_eq!(counts.new, 1),
        PollOutcome::Failed { error } => {
            assert!(matches!(error, PollError::Parse(_)), "{error:?}");
            assert!(
                error.to_string().starts_with("cannot parse the feed"),
                "{error}"
            )
        }
        other => panic!("{other:?}"),
    }

    let daemon = start_daemon(cfg).await;
    let base = format!("http://{}", daemon.local_addr());
    let (status, _, body) = get(&format!("{base}/feed.atom")).await;
    assert_eq!(status, 200);
    let atom = assert_valid_atom(&body, "http://feeds.test/feed.atom");
    if let PollOutcome::Stored { .. } = r.outcome {
        // Unknown entities are kept as written, never expanded.
        assert_eq!(atom.entries.len(), 1);
        assert_eq!(atom.entries[0].title.value, "&lol9;");
    }
    assert!(body.len() < 64 * 1024, "served {} bytes", body.len());
    assert!(!body.contains("lollollol"), "entities were expanded");
    let (_, _, rss_body) = get(&format!("{base}/feed.rss")).await;
    assert!(rss_body.len() < 64 * 1024 && !rss_body.contains("lollollol"));
    daemon.shutdown().await.expect("shutdown");
}

/// An external entity is never resolved: /etc/passwd does not leak into the served feed.
#[tokio::test]
async fn xxe_is_not_resolved() {
    let origin = Origin::start().await;
    origin.set("/xxe", Route::feed(xxe(), "application/rss+xml"));
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = one_source(dir.path(), &origin.url("/xxe"), "");
    let r = poll_once(&cfg).await;
    match &r.outcome {
        PollOutcome::Stored { counts, .. } => assert_eq!(counts.new, 1),
        PollOutcome::Failed { error } => {
            assert!(matches!(error, PollError::Parse(_)), "{error:?}");
            assert!(
                error.to_string().starts_with("cannot parse the feed"),
                "{error}"
            )
        }
        other => panic!("{other:?}"),
    }

    let daemon = start_daemon(cfg).await;
    let base = format!("http://{}", daemon.local_addr());
    for path in ["/feed.atom", "/feed.rss", "/healthz"] {
        let (status, _, body) = get(&format!("{base}{path}")).await;
        assert_eq!(status, 200);
        assert!(!body.contains("root:"), "{path} leaks /etc/passwd: {body}");
    }
    let (_, _, body) = get(&format!("{base}/feed.atom")).await;
    let atom = assert_valid_atom(&body, "http://feeds.test/feed.atom");
    if let PollOutcome::Stored { .. } = r.outcome {
        assert_eq!(atom.entries.len(), 1);
        assert_eq!(atom.entries[0].title.value, "Secrets: &xxe;");
    }
    daemon.shutdown().await.expect("shutdown");
}

/// 50,000 entries in one document: the first `max_entries` (5,000 by default) are read,
/// with a warning, so memory stays bounded; the published feed is still capped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_thousand_entries_are_cut_to_max_entries() {
    const N: usize = tributary::feed::parse::DEFAULT_MAX_ENTRIES;
    let xml = big_feed();
    let origin = Origin::start().await;
    origin.set("/big", Route::feed(xml, "application/rss+xml"));
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = one_source(dir.path(), &origin.url("/big"), "");
    // Retention would prune past 1,000 per source; this test is about reading.
    cfg.retention.keep_per_source = 2 * N;
    let r = poll_once(&cfg).await;
    assert_eq!(new_count(&r), N);
    let st = state(&cfg, "s").await;
    assert_eq!(st.entry_count, N as u64);
    let warning = st.last_warning.expect("a warning");
    assert!(warning.contains("more than 5000 entries"), "{warning}");

    let daemon = start_daemon(cfg.clone()).await;
    let base = format!("http://{}", daemon.local_addr());
    let (_, _, body) = get(&format!("{base}/feed.atom")).await;
    let atom = assert_valid_atom(&body, "http://feeds.test/feed.atom");
    assert_eq!(atom.entries.len(), cfg.publish.max_items);
    assert_eq!(atom.entries[0].title.value, format!("Item {}", N - 1));
    assert_eq!(health(&base).await["entries"], N);
    daemon.shutdown().await.expect("shutdown");
}

// ---------------------------------------------------------------------------------------------
// Identity and politeness

/// A source's own User-Agent and headers reach the origin exactly; other sources' do not.
#[tokio::test]
async fn per_source_identity_is_sent() {
    let origin = Origin::start().await;
    origin.set("/private", Route::feed(small_feed(), "application/rss+xml"));
    origin.set("/public", Route::feed(small_feed(), "application/rss+xml"));
    let dir = tempfile::tempdir().expect("tempdir");
    let mut text = config_prelude("");
    text.push_str(&format!(
        "[[source]]\nname = \"private\"\nurl = \"{}\"\nuser_agent = \"special/1\"\nheaders = {{ Authorization = \"Bearer t0k3n\" }}\n\n\
         [[source]]\nname = \"public\"\nurl = \"{}\"\n",
        origin.url("/private"),
        origin.url("/public")
    ));
    let cfg = config_raw(dir.path(), &text);
    let reports = once(&cfg).await;
    assert!(reports.iter().all(|r| new_count(r) == 2));

    let private = origin.requests("/private");
    assert_eq!(private.len(), 1);
    let h = &private[0].headers;
    let all = |name: &str| -> Vec<String> {
        h.get_all(name)
            .iter()
            .map(|v| v.to_str().expect("ascii").to_string())
            .collect()
    };
    assert_eq!(all("user-agent"), ["special/1"]);
    assert_eq!(all("authorization"), ["Bearer t0k3n"]);

    let public = &origin.requests("/public")[0].headers;
    assert!(public.get("authorization").is_none());
    let ua = public["user-agent"].to_str().expect("ascii");
    assert!(ua.starts_with("tributary/"), "{ua}");
}

/// `per_host = 1`: four slow sources on one host are fetched one after another, even with
/// room for eight at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_host_limit_is_respected() {
    let origin = Origin::start().await;
    let urls: Vec<String> = (1..=4)
        .map(|i| {
            let path = format!("/slow{i}");
            origin.set(
                &path,
                Route::feed(small_feed(), "application/rss+xml")
                    .with_delay(Duration::from_millis(300)),
            );
            origin.url(&path)
        })
        .collect();
    let names = ["s1", "s2", "s3", "s4"];
    let sources: Vec<(&str, &str, &str)> = names
        .iter()
        .zip(&urls)
        .map(|(n, u)| (*n, u.as_str(), "1h"))
        .collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), &sources, "per_host = 1\nconcurrency = 8");
    let clock = std::time::Instant::now();
    let reports = once(&cfg).await;
    assert!(reports.iter().all(|r| new_count(r) == 2), "{reports:?}");
    assert_eq!(origin.max_in_flight(), 1, "never two requests at once");
    assert!(
        clock.elapsed() >= Duration::from_millis(1200),
        "one after another"
    );
}

// ---------------------------------------------------------------------------------------------
// The headline: one daemon, every hostile source, one healthy source that keeps updating.

#[derive(Clone, Copy)]
enum Expect {
    /// The error equals this.
    Is(&'static str),
    /// The error starts with this.
    Starts(&'static str),
    /// The poll succeeds (a recoverable case: redirects, odd bytes).
    Ok,
    /// Either: the poll succeeds or fails with an error starting with this.
    OkOr(&'static str),
}

/// Every hostile route, on two origins, plus a healthy source on another loopback address.
struct Hostile {
    _hostile: RawOrigin,
    _plain: Origin,
    healthy: Origin,
    cases: Vec<(&'static str, String, Expect)>,
}

async fn hostile_setup(cap: u64) -> Hostile {
    let hostile = RawOrigin::start().await;
    let plain = Origin::start().await;
    let healthy = Origin::start_on(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))).await;
    let too_large: &'static str =
        Box::leak(format!("response too large: more than {cap} bytes").into_boxed_str());

    let two_hours = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(7200));
    let feed = || RawRoute::feed(small_feed(), "application/rss+xml");
    hostile.set(
        "/429",
        RawRoute::respond(429, &[("Retry-After", "3600")], ""),
    );
    hostile.set(
        "/503",
        RawRoute::respond(503, &[("Retry-After", &two_hours)], ""),
    );
    hostile.set("/a", RawRoute::redirect(301, "/b"));
    hostile.set("/b", RawRoute::redirect(308, "/feed"));
    hostile.set("/feed", feed());
    hostile.set("/t", RawRoute::redirect(302, "/feed"));
    hostile.set("/x", RawRoute::redirect(302, "/y"));
    hostile.set("/y", RawRoute::redirect(302, "/x"));
    for i in 1..=6 {
        hostile.set(
            &format!("/r{i}"),
            RawRoute::redirect(302, &format!("/r{}", i + 1)),
        );
    }
    hostile.set("/r7", feed());
    hostile.set(
        "/bomb",
        RawRoute::respond(
            200,
            &[
                ("Content-Type", "application/rss+xml"),
                ("Content-Encoding", "gzip"),
            ],
            gzip_bomb(),
        ),
    );
    hostile.set("/huge", RawRoute::Huge { len: 100 * MIB });
    hostile.set("/endless", RawRoute::EndlessChunked);
    hostile.set(
        "/trickle",
        RawRoute::Trickle {
            body: small_feed().into_bytes(),
            every: Duration::from_secs(1),
        },
    );
    hostile.set(
        "/reset",
        RawRoute::ResetMidBody {
            promised: 100_000,
            sent: small_feed().into_bytes()[..100].to_vec(),
        },
    );
    plain.set("/500", Route::status(500, "oops"));
    plain.set("/410", Route::status(410, "gone"));
    plain.set(
        "/blog",
        Route::feed(html_page(), "text/html; charset=utf-8"),
    );
    plain.set("/empty", Route::feed("", "application/rss+xml"));
    plain.set(
        "/bytes",
        Route::feed(invalid_utf8_feed(), "application/rss+xml; charset=utf-8"),
    );
    plain.set(
        "/laughs",
        Route::feed(billion_laughs(), "application/rss+xml"),
    );
    plain.set("/xxe", Route::feed(xxe(), "application/rss+xml"));
    healthy.set(
        "/good.xml",
        Route::feed(rss(&[("h1", "Healthy one")]), "application/rss+xml"),
    );

    let cases: Vec<(&str, String, Expect)> = vec![
        (
            "e404",
            plain.url("/missing"),
            Expect::Is("HTTP 404 Not Found"),
        ),
        (
            "e500",
            plain.url("/500"),
            Expect::Is("HTTP 500 Internal Server Error"),
        ),
        (
            "e410",
            plain.url("/410"),
            Expect::Is("HTTP 410 Gone: gone, no longer polled"),
        ),
        (
            "e429",
            hostile.url("/429"),
            Expect::Is("HTTP 429 Too Many Requests (Retry-After: 3600s)"),
        ),
        (
            "e503",
            hostile.url("/503"),
            Expect::Starts("HTTP 503 Service Unavailable (Retry-After: 7"),
        ),
        ("moved", hostile.url("/a"), Expect::Ok),
        ("temporary", hostile.url("/t"), Expect::Ok),
        ("loop", hostile.url("/x"), Expect::Starts("redirect loop: ")),
        (
            "redirects",
            hostile.url("/r1"),
            Expect::Is("more than 5 redirects"),
        ),
        ("bomb", hostile.url("/bomb"), Expect::Is(too_large)),
        ("huge", hostile.url("/huge"), Expect::Is(too_large)),
        ("endless", hostile.url("/endless"), Expect::Is(too_large)),
        (
            // Exactly "timed out after 2s" is checked by `trickle_times_out`; which of two
            // equal timers fires first is not this test's concern.
            "trickle",
            hostile.url("/trickle"),
            Expect::Starts("timed out"),
        ),
        (
            "reset",
            hostile.url("/reset"),
            Expect::Starts("connection broken while reading the body: "),
        ),
        ("html", plain.url("/blog"), Expect::Starts("not a feed: ")),
        ("empty", plain.url("/empty"), Expect::Is("empty response")),
        (
            "bytes",
            plain.url("/bytes"),
            Expect::OkOr("cannot parse the feed"),
        ),
        (
            "laughs",
            plain.url("/laughs"),
            Expect::OkOr("cannot parse the feed"),
        ),
        (
            "xxe",
            plain.url("/xxe"),
            Expect::OkOr("cannot parse the feed"),
        ),
    ];
    Hostile {
        _hostile: hostile,
        _plain: plain,
        healthy,
        cases,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_source_keeps_updating_among_hostile_ones() {
    let cap = 2 * MIB;
    let Hostile {
        _hostile,
        _plain,
        healthy,
        cases,
    } = hostile_setup(cap).await;
    let mut text = config_prelude(&format!("timeout = \"2s\"\nmax_body_mb = {}", cap / MIB));
    for (name, url, _) in &cases {
        text.push_str(&format!(
            "[[source]]\nname = \"{name}\"\nurl = \"{url}\"\ninterval = \"1s\"\n\n"
        ));
    }
    text.push_str(&format!(
        "[[source]]\nname = \"healthy\"\nurl = \"{}\"\ninterval = \"1s\"\n",
        healthy.url("/good.xml")
    ));
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config_raw(dir.path(), &text);
    assert_eq!(cfg.sources.len(), cases.len() + 1);

    let mut daemon = start_daemon(cfg).await;
    let mut polled: HashSet<String> = HashSet::new();
    let mut healthy_polls = 0;
    let mut changed = false;
    let mut updated = false;
    tokio::time::timeout(Duration::from_secs(25), async {
        loop {
            let r = match daemon.reports.recv().await {
                Ok(r) => r,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(e) => panic!("report channel closed: {e}"),
            };
            if r.source != "healthy" {
                polled.insert(r.source.clone());
            } else {
                healthy_polls += 1;
                let new = new_count(&r);
                if !changed {
                    assert_eq!(new, 1, "the first healthy poll stores its entry");
                    healthy.set(
                        "/good.xml",
                        Route::feed(
                            rss(&[("h1", "Healthy one"), ("h2", "Healthy two")]),
                            "application/rss+xml",
                        ),
                    );
                    changed = true;
                } else if new == 1 {
                    updated = true;
                }
            }
            if updated && polled.len() == cases.len() {
                break;
            }
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!("the healthy source updated ({healthy_polls} polls) and every hostile one was polled ({polled:?})")
    });

    let base = format!("http://{}", daemon.local_addr());
    let (_, _, body) = get(&format!("{base}/feed.atom")).await;
    let atom = assert_valid_atom(&body, "http://feeds.test/feed.atom");
    assert!(
        atom.entries.iter().any(|e| e.title.value == "Healthy two"),
        "the new entry is served"
    );

    let health = health(&base).await;
    let good = source_health(&health, "healthy");
    assert_eq!(good["last_error"], serde_json::Value::Null);
    assert_eq!(good["consecutive_failures"], 0);
    assert_eq!(good["last_status"], 200);
    assert_eq!(good["entries"], 2);
    let mut summary = Vec::new();
    for (name, _, expect) in &cases {
        let h = source_health(&health, name);
        let error = h["last_error"].as_str();
        let failures = h["consecutive_failures"].as_u64().expect("count");
        summary.push(format!("{name}: {error:?} x{failures}"));
        match (expect, error) {
            (Expect::Is(want), Some(e)) => assert_eq!(e, *want, "{name}"),
            (Expect::Starts(want), Some(e)) => assert!(e.starts_with(want), "{name}: {e}"),
            (Expect::Ok, None) => assert_eq!(h["last_status"], 200, "{name}"),
            (Expect::OkOr(_), None) => {}
            (Expect::OkOr(want), Some(e)) => assert!(e.starts_with(want), "{name}: {e}"),
            (_, got) => panic!("{name}: unexpected {got:?}"),
        }
        if error.is_some() {
            assert!(failures >= 1, "{name}");
        }
    }
    // 410, 429 and 503 are not asked again within the test.
    assert_eq!(source_health(&health, "e410")["consecutive_failures"], 1);
    assert_eq!(source_health(&health, "e429")["consecutive_failures"], 1);
    assert_eq!(source_health(&health, "e503")["consecutive_failures"], 1);
    eprintln!("{}", summary.join("\n"));
    daemon.shutdown().await.expect("shutdown");
}

/// The real binary, default limits, with 20 hostile sources (the cases above and a
/// 50,000-entry feed) and one healthy source: the healthy source's new entry is stored within
/// its interval, and the daemon's peak memory stays under 100 MB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_daemon_among_twenty_hostile_sources_stays_under_100_mb() {
    let Hostile {
        _hostile,
        _plain,
        healthy,
        cases,
    } = hostile_setup(DEFAULT_CAP).await;
    let big = Origin::start().await;
    big.set("/big", Route::feed(big_feed(), "application/rss+xml"));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let mut text =
        format!("[server]\nlisten = \"127.0.0.1:{port}\"\n\n[fetch]\ntimeout = \"2s\"\n\n");
    for (name, url, _) in &cases {
        text.push_str(&format!(
            "[[source]]\nname = \"{name}\"\nurl = \"{url}\"\ninterval = \"5s\"\n\n"
        ));
    }
    text.push_str(&format!(
        "[[source]]\nname = \"big\"\nurl = \"{}\"\ninterval = \"5s\"\n\n",
        big.url("/big")
    ));
    text.push_str(&format!(
        "[[source]]\nname = \"healthy\"\nurl = \"{}\"\ninterval = \"2s\"\n",
        healthy.url("/good.xml")
    ));
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("feeds.toml");
    std::fs::write(&path, text).expect("config");

    let mut child = support::KillOnDrop::spawn(
        std::process::Command::new(env!("CARGO_BIN_EXE_tributary"))
            .arg("run")
            .arg("--config")
            .arg(&path)
            .env("RUST_LOG", "info"),
    );
    let lines = child.stderr_lines();
    let pid = child.id();
    // Read the log as it comes until everything has happened, in whatever order.
    let (mut healthy_first, mut healthy_new, mut big_stored, mut big_again) =
        (false, false, false, false);
    let mut changed_at = std::time::Instant::now();
    while !(healthy_new && big_again) {
        let line = lines
            .recv_timeout(Duration::from_secs(120))
            .unwrap_or_else(|_| {
                panic!(
                    "the daemon logged every expected poll: healthy {healthy_first}/{healthy_new}, big {big_stored}/{big_again}"
                )
            });
        if line.contains("source=healthy") && line.contains(" new=1 ") {
            if !healthy_first {
                healthy_first = true;
                changed_at = std::time::Instant::now();
                healthy.set(
                    "/good.xml",
                    Route::feed(
                        rss(&[("h1", "Healthy one"), ("h2", "Healthy two")]),
                        "application/rss+xml",
                    ),
                );
            } else if !healthy_new {
                healthy_new = true;
                // Its interval is 2 s (plus up to 10% jitter); a second for logging and load.
                let took = changed_at.elapsed();
                assert!(
                    took < Duration::from_millis(3200),
                    "new entry after {took:?}"
                );
            }
        }
        if line.contains("source=big") && line.contains(" new=5000 ") {
            big_stored = true;
        }
        // Another round of the big feed (unchanged now), the others polled meanwhile.
        if big_stored && line.contains("source=big") && line.contains(" unchanged=5000 ") {
            big_again = true;
        }
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kb = |key: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{key} in /proc/PID/status"))
    };
    // The peak resident set, less the program's own file-backed pages (its code, which in
    // this unoptimised test build is several times the release binary's): what the daemon
    // allocated at its peak.
    let (peak, file) = (kb("VmHWM:"), kb("RssFile:"));
    let allocated = peak.saturating_sub(file);
    eprintln!(
        "peak resident memory: {} MB, of which program file pages {} MB: {} MB allocated",
        peak / 1024,
        file / 1024,
        allocated / 1024
    );
    assert!(
        allocated < 100 * 1024,
        "peak memory {} MB",
        allocated / 1024
    );
}
