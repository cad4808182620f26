//! Full-text search end to end: real origins, the real daemon on a temporary store, its
//! `/search` endpoints and saved searches (`[[feed]] query`), and the `tributary` binary's
//! `search`, `reindex` and `verify`. The index takes changes in on a thread of its own;
//! tests wait for its `Event::SearchIndexed`, never for a clock.

mod support;

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;
use tributary::app::{self, Daemon};
use tributary::config::Config;
use tributary::daemon::supervise::Event;

use support::{
    EXPECTED_WITHIN, Origin, Route, all_stored, assert_valid_atom, assert_valid_rss,
    config_prelude, config_raw, get, source_toml,
};

/// The `base_url` of every test config: feeds name themselves (and their next pages) by it.
const BASE_URL: &str = "http://feeds.test";

// ---------------------------------------------------------------------------------------------
// Feeds

/// `<pubDate>` of a day at noon UTC (`YYYY-MM-DD`), plus `minutes`.
fn date(day: &str, minutes: i64) -> String {
    let noon = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .expect("a test date")
        .and_hms_opt(12, 0, 0)
        .expect("noon")
        .and_utc();
    (noon + chrono::Duration::minutes(minutes)).to_rfc2822()
}

/// One `<item>`: its link is its guid; `body` is HTML; `extra` is more elements, as written.
fn post(link: &str, title: &str, body: &str, pub_date: &str, extra: &str) -> String {
    format!(
        "<item><guid>{link}</guid><link>{link}</link><title>{title}</title>\
         <description><![CDATA[{body}]]></description><pubDate>{pub_date}</pubDate>{extra}</item>"
    )
}

/// An RSS 2.0 document (with the Dublin Core namespace, for `<dc:creator>`).
fn rss(title: &str, items: &[String]) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><rss version=\"2.0\" \
         xmlns:dc=\"http://purl.org/dc/elements/1.1/\"><channel><title>{title}</title>\
         <link>https://{title}.example/</link><description>d</description>{}</channel></rss>",
        items.concat()
    )
}

const SLED_ENGINE: &str = "Sled storage engine";
const FJALL: &str = "Fjall release notes";
const CRYPTO: &str = "Crypto and sled";
const TANTIVY: &str = "Tantivy internals";
const WEEKLY: &str = "Weekly links";
const POSTGRES: &str = "Postgres tuning";
const REDIS: &str = "Redis notes";

/// "alpha" (tag `rust`, links on www.example.org and example.org): five entries from
/// January to March 2025, with authors and categories.
fn alpha() -> String {
    let jane = "<category>databases</category><dc:creator>Jane Doe</dc:creator>";
    let john = "<category>release</category><dc:creator>John Roe</dc:creator>";
    rss(
        "alpha",
        &[
            post(
                "https://www.example.org/a1",
                SLED_ENGINE,
                "<p>An embedded database.</p>",
                &date("2025-01-15", 0),
                jane,
            ),
            post(
                "https://www.example.org/a2",
                FJALL,
                "<p>It mentions sled in passing.</p>",
                &date("2025-02-10", 0),
                john,
            ),
            post(
                "https://example.org/a3",
                CRYPTO,
                "<p>Hashes everywhere.</p>",
                &date("2025-03-05", 0),
                "",
            ),
            post(
                "https://www.example.org/t1",
                TANTIVY,
                "<p>Segments and postings.</p>",
                &date("2025-01-02", 0),
                "",
            ),
            post(
                "https://www.example.org/t2",
                WEEKLY,
                "<p>Among many other links this week, one about tantivy, and some about gardening, cooking, travel and music.</p>",
                &date("2025-03-25", 0),
                "",
            ),
        ],
    )
}

/// "beta" (tag `db`, links on blog.other.net): two entries.
fn beta() -> String {
    let jane = "<category>databases</category><dc:creator>Jane Doe</dc:creator>";
    rss(
        "beta",
        &[
            post(
                "https://blog.other.net/b1",
                POSTGRES,
                "<p>A sled comparison.</p>",
                &date("2025-02-20", 0),
                jane,
            ),
            post(
                "https://blog.other.net/b2",
                REDIS,
                "<p>Cache stuff.</p>",
                &date("2025-03-20", 0),
                "",
            ),
        ],
    )
}

/// A config of `[[source]]` tables (name, origin path, extra keys) served by `origin`, with
/// `more` (other tables) after them.
fn sources(origin: &Origin, list: &[(&str, &str, &str)], more: &str) -> String {
    let mut text = config_prelude("");
    for (name, path, extra) in list {
        text.push_str(&source_toml(name, &origin.url(path), "1h", extra));
    }
    text.push_str(more);
    text
}

/// An origin serving alpha and beta, and the `[[source]]` tables of both.
async fn alpha_beta() -> (Origin, String) {
    let origin = Origin::start().await;
    origin.set("/alpha.xml", Route::feed(alpha(), "application/rss+xml"));
    origin.set("/beta.xml", Route::feed(beta(), "application/rss+xml"));
    let list = [
        ("alpha", "/alpha.xml", "tags = [\"rust\"]"),
        ("beta", "/beta.xml", "tags = [\"db\"]"),
    ];
    let text = sources(&origin, &list, "");
    (origin, text)
}

// ---------------------------------------------------------------------------------------------
// The daemon and its index

/// A running daemon, its address and its events from the start on.
struct Running {
    daemon: Daemon,
    base: String,
    events: Receiver<Event>,
}

/// Starts the daemon on `cfg` (on a fresh port), waits until `names` stored
/// a poll and the index is complete with at least `documents` entries.
async fn running(cfg: Config, names: &[&str], documents: u64) -> Running {
    let mut daemon = support::start(cfg).await;
    let mut reports = daemon.take_reports();
    let fresh = daemon.subscribe_changes();
    // Subscribed before the first poll: no SearchIndexed is missed.
    let mut events = std::mem::replace(&mut daemon.supervisor_events, fresh);
    all_stored(&mut reports, names).await;
    indexed(&mut events, documents).await;
    let base = format!("http://{}", daemon.local_addr());
    Running {
        daemon,
        base,
        events,
    }
}

/// Waits for a round after which the index is complete with at least `documents`.
async fn indexed(events: &mut Receiver<Event>, documents: u64) {
    let waited = tokio::time::timeout(EXPECTED_WITHIN, async {
        loop {
            match events.recv().await {
                Ok(Event::SearchIndexed {
                    documents: d,
                    complete: true,
                    ..
                }) if d >= documents => return,
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(e) => panic!("event channel closed: {e}"),
            }
        }
    })
    .await;
    assert!(
        waited.is_ok(),
        "the index did not reach {documents} documents"
    );
}

/// Checks `done` after each index round (from now on) until it holds.
async fn until(events: &mut Receiver<Event>, what: &str, mut done: impl AsyncFnMut() -> bool) {
    let waited = tokio::time::timeout(EXPECTED_WITHIN, async {
        while !done().await {
            loop {
                match events.recv().await {
                    Ok(Event::SearchIndexed { .. }) | Err(RecvError::Lagged(_)) => break,
                    Ok(_) => {}
                    Err(e) => panic!("event channel closed: {e}"),
                }
            }
        }
    })
    .await;
    assert!(waited.is_ok(), "{what}: not within {EXPECTED_WITHIN:?}");
}

/// The daemon again on the same store, once the stopped one let go of it.
async fn restart(cfg: &Config) -> Daemon {
    support::when_unlocked(|| async {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        app::start(cfg.clone(), listener).await
    })
    .await
    .expect("the daemon starts again")
}

/// Polls `name` now, through the running daemon.
async fn poll_now(daemon: &Daemon, name: &str) {
    let summary = app::poll((*daemon.config()).clone(), vec![name.into()], |_| {})
        .await
        .expect("polled");
    assert!(summary.by_daemon && summary.failed == 0);
}

// ---------------------------------------------------------------------------------------------
// Searching over HTTP

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `/search.json?{params}`, which must answer 200.
async fn search_json(base: &str, params: &str) -> Value {
    let (status, ct, body) = get(&format!("{base}/search.json?{params}")).await;
    assert_eq!(status, 200, "{params}: {body}");
    assert!(ct.starts_with("application/feed+json"), "{ct}");
    serde_json::from_str(&body).expect("the search is JSON")
}

fn item_titles(feed: &Value) -> Vec<String> {
    feed["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["title"].as_str().expect("title").to_string())
        .collect()
}

/// The titles `query` finds, in the order given (newest first unless `params` says).
async fn titles(base: &str, query: &str, params: &str) -> Vec<String> {
    item_titles(&search_json(base, &format!("q={}&limit=1000{params}", enc(query))).await)
}

async fn found(base: &str, query: &str) -> BTreeSet<String> {
    titles(base, query, "").await.into_iter().collect()
}

fn set(titles: &[&str]) -> BTreeSet<String> {
    titles.iter().map(|t| t.to_string()).collect()
}

/// Runs every query and fails with all the ones that found something else.
async fn expect_all(base: &str, cases: &[(&str, &[&str])]) {
    let mut wrong = Vec::new();
    for (query, expected) in cases {
        let url = format!("{base}/search.json?q={}&limit=1000", enc(query));
        let (status, _, body) = get(&url).await;
        if status != 200 {
            wrong.push(format!("{query:?}: {status} {}", body.trim()));
            continue;
        }
        let feed: Value = serde_json::from_str(&body).expect("the search is JSON");
        let got: BTreeSet<String> = item_titles(&feed).into_iter().collect();
        if got != set(expected) {
            wrong.push(format!("{query:?}: expected {expected:?}, found {got:?}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "queries that found the wrong entries:\n{}",
        wrong.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Tests

/// Words are lowercased and accent-folded, HTML is stripped, Chinese and Japanese are
/// found by character pairs, Korean and German too; a phrase needs its words together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multilingual_entries_are_found_by_their_words() {
    let origin = Origin::start().await;
    origin.set("/world.xml", Route::fixture("search/multilingual.xml"));
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config_raw(
        dir.path(),
        &sources(&origin, &[("world", "/world.xml", "")], ""),
    );
    let r = running(cfg, &["world"], 9).await;

    let cafe: &[&str] = &["Café crème on the corner"];
    let tokyo: &[&str] = &["東京都の天気"];
    let seoul: &[&str] = &["서울의 날씨"];
    let munich: &[&str] = &["Die Straße in München"];
    expect_all(
        &r.base,
        &[
            ("cafe", cafe),
            ("Café", cafe),
            ("CAFÉ crème", cafe),
            ("creme", cafe),
            // The body's words, not its markup.
            ("espresso croissants", cafe),
            ("zzhidden", &[]),
            ("span", &[]),
            ("cafeteria", &["Cafeteria menu"]),
            ("東京", tokyo),
            ("東京都", tokyo),
            ("天気", tokyo),
            ("日本語", tokyo),
            ("日本語のテキスト", tokyo),
            ("title:東京", tokyo),
            ("title:日本語", &[]),
            ("日本", &["東京都の天気", "北京今天天气晴朗"]),
            ("天气", &["北京今天天气晴朗"]),
            ("北京", &["北京今天天气晴朗"]),
            ("紅葉", &["京都の紅葉"]),
            ("서울", seoul),
            ("날씨", seoul),
            ("한국어", seoul),
            ("strasse", munich),
            ("Straße", munich),
            ("munchen", munich),
            ("MÜNCHEN", munich),
            ("uber", munich),
            ("\"write ahead log\"", &["Write ahead log explained"]),
            ("\"Ahead Log\"", &["Write ahead log explained"]),
            (
                "write ahead log",
                &["Write ahead log explained", "Log files"],
            ),
            ("\"log ahead write\"", &[]),
            ("天気 OR 天气 -日本語", &["北京今天天气晴朗"]),
            ("log -\"ahead log\"", &["Log files"]),
        ],
    )
    .await;
    r.daemon.shutdown().await.expect("stops");
}

/// Exclusion, OR, the field prefixes, dates, and the two orders.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_fields_dates_and_order() {
    let (_origin, text) = alpha_beta().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let r = running(config_raw(dir.path(), &text), &["alpha", "beta"], 7).await;
    let base = &r.base;

    let sled: &[&str] = &[SLED_ENGINE, FJALL, CRYPTO, POSTGRES];
    let alpha_sled: &[&str] = &[SLED_ENGINE, FJALL, CRYPTO];
    let example_org: &[&str] = &[SLED_ENGINE, FJALL, CRYPTO, TANTIVY, WEEKLY];
    // Newest first by default; by relevance, the title match before a passing mention.
    assert_eq!(
        titles(base, "sled", "").await,
        [CRYPTO, POSTGRES, FJALL, SLED_ENGINE]
    );
    assert_eq!(titles(base, "tantivy", "").await, [WEEKLY, TANTIVY]);
    assert_eq!(
        titles(base, "tantivy", "&sort=newest").await,
        [WEEKLY, TANTIVY]
    );
    assert_eq!(
        titles(base, "tantivy", "&sort=relevance").await,
        [TANTIVY, WEEKLY]
    );

    expect_all(
        base,
        &[
            ("sled", sled),
            ("sled -crypto", &[SLED_ENGINE, FJALL, POSTGRES]),
            ("sled -\"storage engine\"", &[FJALL, CRYPTO, POSTGRES]),
            ("sled -title:crypto", &[SLED_ENGINE, FJALL, POSTGRES]),
            ("sled -author:jane", &[FJALL, CRYPTO]),
            ("sled -category:databases -host:example.org", &[]),
            ("fjall OR redis", &[FJALL, REDIS]),
            // Lowercase `or` is a word to find.
            ("fjall or redis", &[]),
            ("sled fjall OR postgres", &[FJALL, POSTGRES]),
            ("title:sled", &[SLED_ENGINE, CRYPTO]),
            ("TITLE:Sled", &[SLED_ENGINE, CRYPTO]),
            ("author:jane", &[SLED_ENGINE, POSTGRES]),
            ("author:\"Jane Doe\"", &[SLED_ENGINE, POSTGRES]),
            ("author:roe", &[FJALL]),
            ("category:databases", &[SLED_ENGINE, POSTGRES]),
            ("category:release", &[FJALL]),
            ("source:beta", &[POSTGRES, REDIS]),
            ("sled source:alpha", alpha_sled),
            ("sled -source:alpha", &[POSTGRES]),
            ("tag:db", &[POSTGRES, REDIS]),
            ("sled tag:rust", alpha_sled),
            ("sled tag:nosuch", &[]),
            ("host:example.org", example_org),
            (
                "host:www.example.org",
                &[SLED_ENGINE, FJALL, TANTIVY, WEEKLY],
            ),
            ("host:other.net", &[POSTGRES, REDIS]),
            ("host:blog.other.net", &[POSTGRES, REDIS]),
            ("sled after:2025-02-01", &[FJALL, CRYPTO, POSTGRES]),
            ("sled before:2025-02-15", &[SLED_ENGINE, FJALL]),
            (
                "sled after:2025-02-01 before:2025-03-01",
                &[FJALL, POSTGRES],
            ),
            ("after:2025-03-01", &[CRYPTO, WEEKLY, REDIS]),
            ("before:2025-01-10", &[TANTIVY]),
            ("-sled after:2025-03-01", &[WEEKLY, REDIS]),
            (
                "after:2025-02-10T12:00:00Z before:2025-02-10T12:00:01Z",
                &[FJALL],
            ),
            // Authors are searched by plain words too, not only through `author:`.
            ("roe", &[FJALL]),
            ("jane sled", &[SLED_ENGINE, POSTGRES]),
        ],
    )
    .await;

    r.daemon.shutdown().await.expect("stops");
}

/// /search in every format: valid documents naming themselves by the canonical query,
/// the river page, ETags and 304s, and a new ETag once a new matching entry is indexed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_feeds_are_valid_and_conditional() {
    let origin = Origin::start().await;
    let day = |i: usize| date("2025-06-01", i as i64 * 60);
    let link = |i: usize| format!("https://news.example/{i}");
    let mut items = vec![post(
        &link(0),
        "Unrelated gardening",
        "<p>Tomatoes.</p>",
        &day(0),
        "",
    )];
    items.extend((1..=3).map(|i| {
        post(
            &link(i),
            &format!("Sled news {i}"),
            "<p>sled</p>",
            &day(i),
            "",
        )
    }));
    origin.set(
        "/news.xml",
        Route::feed(rss("news", &items), "application/rss+xml"),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config_raw(
        dir.path(),
        &sources(&origin, &[("news", "/news.xml", "")], ""),
    );
    let mut r = running(cfg, &["news"], 4).await;
    let base = r.base.clone();

    let (status, ct, body) = get(&format!("{base}/search.atom?q=sled")).await;
    assert_eq!(status, 200, "{body}");
    assert!(ct.starts_with("application/atom+xml"), "{ct}");
    let feed = assert_valid_atom(&body, &format!("{BASE_URL}/search.atom?q=sled"));
    let atom_titles: Vec<&str> = feed
        .entries
        .iter()
        .map(|e| e.title.value.as_str())
        .collect();
    assert_eq!(atom_titles, ["Sled news 3", "Sled news 2", "Sled news 1"]);

    let (status, _, body) = get(&format!("{base}/search.rss?q=sled")).await;
    assert_eq!(status, 200, "{body}");
    let channel = assert_valid_rss(&body, &format!("{BASE_URL}/search.rss?q=sled"));
    assert_eq!(channel.items.len(), 3);

    let json = search_json(&base, "q=sled").await;
    assert_eq!(json["feed_url"], format!("{BASE_URL}/search.json?q=sled"));
    assert_eq!(
        item_titles(&json),
        ["Sled news 3", "Sled news 2", "Sled news 1"]
    );
    assert!(json.get("next_url").is_none(), "{json}");

    // The query as the feed names itself: canonical (spaces collapsed), case kept.
    let (status, _, body) = get(&format!("{base}/search.atom?q=Sled%20%20-Tomatoes&limit=5")).await;
    assert_eq!(status, 200, "{body}");
    let feed = assert_valid_atom(
        &body,
        &format!("{BASE_URL}/search.atom?q=Sled+-Tomatoes&limit=5"),
    );
    assert_eq!(feed.entries.len(), 3);

    let (status, ct, page) = get(&format!("{base}/search?q=sled")).await;
    assert_eq!(status, 200, "{page}");
    assert!(ct.starts_with("text/html"), "{ct}");
    assert!(
        page.contains("Sled news 1") && page.contains("Sled news 3"),
        "{page}"
    );
    assert!(!page.contains("Unrelated gardening"), "{page}");
    assert!(
        page.contains("/search.atom?q=sled"),
        "the page links its feed: {page}"
    );

    // Conditional GETs.
    let client = reqwest::Client::new();
    let url = format!("{base}/search.atom?q=sled");
    let first = client.get(&url).send().await.expect("GET");
    assert_eq!(first.status(), 200);
    let etag = first.headers()[reqwest::header::ETAG]
        .to_str()
        .expect("etag")
        .to_string();
    let again = client
        .get(&url)
        .header(reqwest::header::IF_NONE_MATCH, &etag)
        .send()
        .await
        .expect("GET");
    assert_eq!(again.status(), 304);

    // A new matching entry: once indexed, the old ETag no longer matches.
    items.push(post(
        &link(4),
        "Sled news 4",
        "<p>more sled</p>",
        &day(4),
        "",
    ));
    origin.set(
        "/news.xml",
        Route::feed(rss("news", &items), "application/rss+xml"),
    );
    poll_now(&r.daemon, "news").await;
    indexed(&mut r.events, 5).await;
    let changed = client
        .get(&url)
        .header(reqwest::header::IF_NONE_MATCH, &etag)
        .send()
        .await
        .expect("GET");
    assert_eq!(changed.status(), 200);
    let new_etag = changed.headers()[reqwest::header::ETAG]
        .to_str()
        .expect("etag")
        .to_string();
    assert_ne!(new_etag, etag);
    let feed: atom_syndication::Feed = changed.text().await.expect("body").parse().expect("Atom");
    assert_eq!(feed.entries.len(), 4);
    assert_eq!(feed.entries[0].title.value, "Sled news 4");
    r.daemon.shutdown().await.expect("stops");
}

/// Follows a JSON search's next_url from `/search.json?{params}`: each page's size, and
/// every title in the order read.
async fn follow_json(base: &str, params: &str) -> (Vec<usize>, Vec<String>) {
    let mut url = format!("{base}/search.json?{params}");
    let (mut pages, mut seen) = (Vec::new(), Vec::new());
    loop {
        let (status, _, body) = get(&url).await;
        assert_eq!(status, 200, "{url}: {body}");
        let feed: Value = serde_json::from_str(&body).expect("JSON");
        let page = item_titles(&feed);
        pages.push(page.len());
        seen.extend(page);
        let Some(next) = feed["next_url"].as_str() else {
            return (pages, seen);
        };
        url = next.replace(BASE_URL, base);
        assert!(pages.len() < 10, "the next links go on: {pages:?}");
    }
}

/// 25 matches, ten a page: newest first through RFC 5005 next links (Atom) and JSON
/// Feed's next_url, each entry once and in order; by relevance through skip.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_are_paged_newest_first_and_by_relevance() {
    let origin = Origin::start().await;
    let mut items: Vec<String> = (0..25)
        .map(|i| {
            let body = format!("<p>paging body {i}</p>");
            post(
                &format!("https://many.example/{i}"),
                &format!("Paging entry {i:02}"),
                &body,
                &date("2025-09-01", i),
                "",
            )
        })
        .collect();
    items.extend((25..30).map(|i| {
        post(
            &format!("https://many.example/{i}"),
            &format!("Other entry {i}"),
            "<p>x</p>",
            &date("2025-09-01", i),
            "",
        )
    }));
    origin.set(
        "/many.xml",
        Route::feed(rss("many", &items), "application/rss+xml"),
    );
    let same: Vec<String> = (0..25)
        .map(|i| {
            let link = format!("https://same.example/{i}");
            post(
                &link,
                &format!("Tied {i}"),
                "<p>tied</p>",
                &date("2025-08-01", 0),
                "",
            )
        })
        .collect();
    origin.set(
        "/same.xml",
        Route::feed(rss("same", &same), "application/rss+xml"),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let list = [("many", "/many.xml", ""), ("same", "/same.xml", "")];
    let cfg = config_raw(dir.path(), &sources(&origin, &list, ""));
    let r = running(cfg, &["many", "same"], 55).await;
    let base = &r.base;
    let newest_first: Vec<String> = (0..25)
        .rev()
        .map(|i| format!("Paging entry {i:02}"))
        .collect();

    // Atom, following rel="next".
    let (mut url, mut self_url) = (
        format!("{base}/search.atom?q=paging&limit=10"),
        format!("{BASE_URL}/search.atom?q=paging&limit=10"),
    );
    let (mut seen, mut pages) = (Vec::new(), Vec::new());
    loop {
        let (status, _, body) = get(&url).await;
        assert_eq!(status, 200, "{url}: {body}");
        let feed = assert_valid_atom(&body, &self_url);
        pages.push(feed.entries.len());
        seen.extend(feed.entries.iter().map(|e| e.title.value.clone()));
        let Some(next) = feed.links.iter().find(|l| l.rel == "next") else {
            break;
        };
        assert!(
            next.href.contains("limit=10") && next.href.contains("before="),
            "{}",
            next.href
        );
        self_url = next.href.clone();
        url = next.href.replace(BASE_URL, base);
        assert!(pages.len() < 5, "the next links go on: {pages:?}");
    }
    assert_eq!(pages, [10, 10, 5]);
    assert_eq!(seen, newest_first);

    // JSON Feed, following next_url; with a date bound in the query as well.
    let (pages, seen) = follow_json(base, "q=paging&limit=10").await;
    assert_eq!((pages, seen), (vec![10, 10, 5], newest_first.clone()));
    let bounded = format!("q={}&limit=10", enc("paging before:2025-09-01T12:20:00Z"));
    let (pages, seen) = follow_json(base, &bounded).await;
    assert_eq!((pages, seen), (vec![10, 10], newest_first[5..].to_vec()));
    // Entries of the very same second still page through, each once.
    let (pages, seen) = follow_json(base, "q=tied&limit=10").await;
    assert_eq!(pages, [10, 10, 5]);
    let tied: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!((seen.len(), tied.len()), (25, 25), "{seen:?}");

    // By relevance: skip=10, skip=20, then no next page.
    let mut url = format!("{base}/search.json?q=paging&sort=relevance&limit=10");
    let (mut seen, mut skips) = (Vec::new(), Vec::new());
    loop {
        let feed = search_json(base, url.split_once('?').expect("query").1).await;
        seen.extend(item_titles(&feed));
        let Some(next) = feed["next_url"].as_str() else {
            break;
        };
        let skip = url::Url::parse(next)
            .expect("next_url")
            .query_pairs()
            .find(|(k, _)| k == "skip")
            .map(|(_, v)| v.into_owned());
        skips.push(skip.expect("the next page skips"));
        url = next.replace(BASE_URL, base);
        assert!(skips.len() < 5, "the next links go on: {skips:?}");
    }
    assert_eq!(skips, ["10", "20"]);
    assert_eq!(seen.len(), 25, "{seen:?}");
    assert_eq!(
        seen.iter().collect::<BTreeSet<_>>(),
        newest_first.iter().collect::<BTreeSet<_>>()
    );
    let last = search_json(base, "q=paging&sort=relevance&limit=10&skip=20").await;
    assert_eq!(item_titles(&last).len(), 5);
    let past = search_json(base, "q=paging&sort=relevance&skip=30").await;
    assert!(item_titles(&past).is_empty());
    r.daemon.shutdown().await.expect("stops");
}

/// Every mistake in a search request is a 400 with a plain-text reason, on every endpoint;
/// hostile queries never make a 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_searches_are_400_with_a_reason() {
    let origin = Origin::start().await;
    let items = [post(
        "https://e.example/1",
        "Sled",
        "<p>sled</p>",
        &date("2025-01-01", 0),
        "",
    )];
    origin.set(
        "/e.xml",
        Route::feed(rss("e", &items), "application/rss+xml"),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config_raw(dir.path(), &sources(&origin, &[("e", "/e.xml", "")], ""));
    let r = running(cfg, &["e"], 1).await;
    let cursor = "8".repeat(48);
    let too_long = format!("q={}", "x".repeat(1025));
    let many_terms = format!("q={}", enc(&"w ".repeat(33)));
    let cases: &[(&str, &str)] = &[
        ("", "q is required"),
        ("q=", "q is required"),
        ("q=%20%20", "q is required"),
        ("q=title%3A", "needs a word"),
        ("q=title%3A%20sled", "needs a word"),
        ("q=%22unclosed", "unclosed quote"),
        ("q=foo%3Abar", "unknown field"),
        ("q=-sled", "not only exclusions"),
        ("q=%21%3F", "no letters or digits"),
        ("q=sled%20OR", "`OR` needs a term"),
        ("q=after%3A2025-13-01", "bad date"),
        ("q=sled&sort=best", "sort must be newest or relevance"),
        ("q=sled&skip=10", "skip is for sort=relevance"),
        ("q=sled&sort=newest&skip=1", "skip is for sort=relevance"),
        (
            &format!("q=sled&sort=relevance&before={cursor}"),
            "before is for newest first",
        ),
        ("q=sled&sort=relevance&skip=10001", "skip must be"),
        ("q=sled&sort=relevance&skip=-1", "skip must be"),
        ("q=sled&limit=0", "limit must be"),
        ("q=sled&limit=1001", "limit must be"),
        ("q=sled&before=nothex", "before must be a cursor"),
        (&too_long, "1025 bytes"),
        (&many_terms, "33 terms"),
    ];
    for endpoint in ["/search", "/search.atom", "/search.rss", "/search.json"] {
        for (params, reason) in cases {
            let (status, ct, body) = get(&format!("{}{endpoint}?{params}", r.base)).await;
            assert_eq!(status, 400, "{endpoint}?{params}: {body}");
            assert!(ct.starts_with("text/plain"), "{endpoint}?{params}: {ct}");
            assert!(
                body.contains(reason),
                "{endpoint}?{params}: {body:?} lacks {reason:?}"
            );
        }
    }
    // At the bounds: 1024 bytes (seventeen words of at most 60 letters) and 32 terms.
    let words: Vec<String> = (0..16).map(|_| "y".repeat(60)).collect();
    let longest = format!("{} {}", words.join(" "), "z".repeat(48));
    assert_eq!(longest.len(), 1024);
    for q in [longest, "w ".repeat(32)] {
        let (status, _, body) = get(&format!("{}/search.json?q={}", r.base, enc(&q))).await;
        assert_eq!(status, 200, "{body}");
    }
    // Hostile queries, and words the index cannot hold (longer than 64 bytes), excluded
    // phrases and words of several terms (CJK, `don't`): answered, never a 500.
    let long_word = "x".repeat(100);
    let hostile: &[&str] = &[
        "\u{0}\u{1}\u{7f}",
        &"\"".repeat(1000),
        &"-".repeat(1000),
        &"OR ".repeat(200),
        "。。",
        "http://x.org/a",
        "🦀sled",
        "sled \"\"",
        "source:\"\"",
        "host:...",
        "tag:東",
        "before:0000-01-01",
        "\u{200b}",
        &long_word,
        &"x".repeat(1024),
        &format!("sled {long_word}"),
        &format!("title:{long_word}"),
        "sled -\"storage engine\"",
        "sled -日本語",
        "sled -don't",
    ];
    let mut failed = Vec::new();
    for q in hostile {
        let (status, _, body) = get(&format!("{}/search.atom?q={}", r.base, enc(q))).await;
        if status != 200 && status != 400 {
            failed.push(format!("q={q:?}: {status} {}", body.trim()));
        }
    }
    let (status, _, body) = get(&format!("{}/search.atom?q=%FF%FE", r.base)).await;
    assert!(status == 200 || status == 400, "{status} {body}");
    assert!(
        failed.is_empty(),
        "answered with neither 200 nor 400:\n{}",
        failed.join("\n")
    );
    r.daemon.shutdown().await.expect("stops");
}

/// Searches see only the sources in the config: one removed by a reload vanishes from
/// the results (its entries still stored, hidden) and comes back with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_removed_by_reload_leaves_the_results() {
    let origin = Origin::start().await;
    for name in ["kept", "dropped"] {
        let items: Vec<String> = (0..2)
            .map(|i| {
                let link = format!("https://{name}.example/{i}");
                post(
                    &link,
                    &format!("River {name} {i}"),
                    "<p>by the river</p>",
                    &date("2025-05-01", i),
                    "",
                )
            })
            .collect();
        origin.set(
            &format!("/{name}.xml"),
            Route::feed(rss(name, &items), "application/rss+xml"),
        );
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let both = sources(
        &origin,
        &[("kept", "/kept.xml", ""), ("dropped", "/dropped.xml", "")],
        "",
    );
    let r = running(config_raw(dir.path(), &both), &["kept", "dropped"], 4).await;
    let all = set(&[
        "River kept 0",
        "River kept 1",
        "River dropped 0",
        "River dropped 1",
    ]);
    assert_eq!(found(&r.base, "river").await, all);

    let one = sources(&origin, &[("kept", "/kept.xml", "")], "");
    std::fs::write(dir.path().join("feeds.toml"), &one).expect("writes");
    r.daemon.reload().await.expect("reloads");
    let kept = set(&["River kept 0", "River kept 1"]);
    assert_eq!(found(&r.base, "river").await, kept);
    assert!(found(&r.base, "source:dropped").await.is_empty());
    assert!(found(&r.base, "dropped").await.is_empty());
    let (status, _, body) = get(&format!("{}/search.atom?q=river", r.base)).await;
    assert_eq!(status, 200);
    assert!(!body.contains("River dropped"), "{body}");

    std::fs::write(dir.path().join("feeds.toml"), &both).expect("writes");
    r.daemon.reload().await.expect("reloads");
    assert_eq!(found(&r.base, "river").await, all);
    r.daemon.shutdown().await.expect("stops");
}

/// A `[[feed]]` with a `query` publishes the matching entries of its sources (and only
/// those its patterns admit); a query that does not parse is a config error naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saved_searches_are_feeds() {
    let (_origin, text) = alpha_beta().await;
    let feeds = "[[feed]]\nname = \"sled-news\"\nquery = \"sled -crypto\"\n\n\
                 [[feed]]\nname = \"alpha-sled\"\nsources = [\"alpha\"]\nquery = \"sled\"\nexclude = [\"Fjall\"]\n\n\
                 [[feed]]\nname = \"dated\"\nquery = \"after:2025-03-01\"\n\n\
                 [[feed]]\nname = \"scoped\"\nsources = [\"alpha\"]\n\
                 query = \"postgres OR source:beta OR tag:db OR crypto\"\n";
    let dir = tempfile::tempdir().expect("tempdir");
    let r = running(
        config_raw(dir.path(), &format!("{text}{feeds}")),
        &["alpha", "beta"],
        7,
    )
    .await;

    let feed_titles = async |name: &str| {
        let (status, _, body) = get(&format!("{}/feeds/{name}.atom", r.base)).await;
        assert_eq!(status, 200, "{name}: {body}");
        let feed = assert_valid_atom(&body, &format!("{BASE_URL}/feeds/{name}.atom"));
        feed.entries
            .iter()
            .map(|e| e.title.value.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        feed_titles("sled-news").await,
        [POSTGRES, FJALL, SLED_ENGINE]
    );
    assert_eq!(feed_titles("alpha-sled").await, [CRYPTO, SLED_ENGINE]);
    assert_eq!(feed_titles("dated").await, [WEEKLY, REDIS, CRYPTO]);
    // A saved search never reaches past its sources, whatever its query names.
    assert_eq!(feed_titles("scoped").await, [CRYPTO]);
    let (status, _, body) = get(&format!("{}/feeds/sled-news.json", r.base)).await;
    assert_eq!(status, 200);
    let json: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(item_titles(&json), [POSTGRES, FJALL, SLED_ENGINE]);
    r.daemon.shutdown().await.expect("stops");

    for (query, reason) in [
        ("title:", "needs a word"),
        ("foo:bar", "unknown field"),
        ("\\\"open", "unclosed quote"),
    ] {
        let bad = format!("{text}[[feed]]\nname = \"broken\"\nquery = \"{query}\"\n");
        let error = tributary::config::parse(&bad, &dir.path().join("feeds.toml"))
            .err()
            .unwrap_or_else(|| panic!("query {query:?} was accepted"))
            .to_string();
        assert!(
            error.contains("feed \"broken\"") && error.contains(reason),
            "{error}"
        );
    }
}

/// A changed title is found by its new words only; entries pruned by retention are no
/// longer found; the index and the store still agree afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_and_pruning_reach_the_index() {
    let origin = Origin::start().await;
    let feed = |headline: &str, body: &str, day: &str| {
        let mut items: Vec<String> = (0..4)
            .map(|i| {
                post(
                    &format!("https://s.example/{i}"),
                    &format!("Steady entry {i}"),
                    "<p>steady</p>",
                    &date("2025-04-01", i),
                    "",
                )
            })
            .collect();
        items.push(post(
            "https://s.example/4",
            headline,
            body,
            &date(day, 4),
            "",
        ));
        rss("s", &items)
    };
    origin.set(
        "/s.xml",
        Route::feed(
            feed("Original zebra headline", "<p>news</p>", "2025-04-01"),
            "application/rss+xml",
        ),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let text = |retention: &str| {
        format!(
            "{retention}{}",
            sources(&origin, &[("s", "/s.xml", "")], "")
        )
    };
    let cfg = config_raw(dir.path(), &text(""));
    let mut r = running(cfg.clone(), &["s"], 5).await;
    let base = r.base.clone();
    assert_eq!(
        found(&base, "zebra").await,
        set(&["Original zebra headline"])
    );
    assert!(found(&base, "giraffe").await.is_empty());

    origin.set(
        "/s.xml",
        Route::feed(
            feed(
                "Revised giraffe headline",
                "<p>okapi sighting</p>",
                "2025-04-02",
            ),
            "application/rss+xml",
        ),
    );
    poll_now(&r.daemon, "s").await;
    until(&mut r.events, "the new title is found", async || {
        found(&base, "giraffe").await == set(&["Revised giraffe headline"])
    })
    .await;
    assert!(
        found(&base, "zebra").await.is_empty(),
        "the old title is still found"
    );
    // Its body and date are the new ones too; no document of the old version is left.
    expect_all(
        &base,
        &[
            ("headline", &["Revised giraffe headline"]),
            ("okapi", &["Revised giraffe headline"]),
            ("news", &[]),
            ("headline after:2025-04-02", &["Revised giraffe headline"]),
            ("headline before:2025-04-02", &[]),
        ],
    )
    .await;
    let health = support::health(&base).await;
    assert_eq!(health["search"]["indexed"], 5, "{health}");

    // Tighter retention, then a pass: the three oldest go.
    std::fs::write(
        dir.path().join("feeds.toml"),
        text("[retention]\nkeep_per_source = 2\nkeep_min = 2\n\n"),
    )
    .expect("writes");
    r.daemon.reload().await.expect("reloads");
    let report = r.daemon.prune().await.expect("prunes");
    assert_eq!(report.pruned.get("s"), Some(&3), "{report:?}");
    until(
        &mut r.events,
        "pruned entries leave the index",
        async || found(&base, "steady").await == set(&["Steady entry 3"]),
    )
    .await;
    for gone in ["Steady entry 0", "Steady entry 1", "Steady entry 2"] {
        assert!(
            found(&base, &format!("title:\"{gone}\"")).await.is_empty(),
            "{gone}"
        );
    }
    assert_eq!(
        found(&base, "headline").await,
        set(&["Revised giraffe headline"])
    );
    until(&mut r.events, "healthz counts two documents", async || {
        let h = support::health(&base).await;
        h["search"]["indexed"] == 2 && h["search"]["backlog"] == 0
    })
    .await;
    r.daemon.shutdown().await.expect("stops");

    let report = support::when_unlocked(|| app::verify(cfg.clone()))
        .await
        .expect("verifies");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let search = report.search.expect("the index was compared");
    assert_eq!(
        (
            search.entries,
            search.documents,
            search.missing,
            search.stale
        ),
        (2, 2, 0, 0)
    );
}

/// The `tributary` binary as a user runs it, its output parsed.
async fn cli(config: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let mut cmd = support::tributary_command("warn");
    cmd.args(args).arg("--config").arg(config);
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("runs"))
        .await
        .expect("joined");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

/// `once` leaves a searchable store: `search` reads it (lines, JSON, relevance, limit),
/// `verify` compares index and store, `reindex` rebuilds; with the daemon running,
/// `search` asks it and gets the same answer, and `reindex` asks it to rebuild.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_searches_the_store_or_the_daemon() {
    let (origin, text) = alpha_beta().await;
    // And an entry without a date: dated when first seen.
    let undated = "<item><guid>https://u.example/1</guid><link>https://u.example/1</link>\
                   <title>Undated walrus note</title></item>";
    origin.set(
        "/undated.xml",
        Route::feed(
            rss("undated", &[undated.to_string()]),
            "application/rss+xml",
        ),
    );
    let port = support::free_port();
    let text = text.replace("127.0.0.1:0", &format!("127.0.0.1:{port}"))
        + &source_toml("undated", &origin.url("/undated.xml"), "1h", "");
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config_raw(dir.path(), &text);
    let path = dir.path().join("feeds.toml");

    let (code, _, err) = cli(&path, &["once"]).await;
    assert_eq!(code, Some(0), "{err}");
    let (code, store_out, err) = cli(&path, &["search", "sled"]).await;
    assert_eq!(code, Some(0), "{err}");
    let lines: Vec<&str> = store_out.lines().collect();
    let link = |l: &str| format!("{}{l}", " ".repeat(18));
    let expected = [
        "2025-03-05 12:00  alpha  Crypto and sled".to_string(),
        link("https://example.org/a3"),
        "2025-02-20 12:00  beta  Postgres tuning".to_string(),
        link("https://blog.other.net/b1"),
        "2025-02-10 12:00  alpha  Fjall release notes".to_string(),
        link("https://www.example.org/a2"),
        "2025-01-15 12:00  alpha  Sled storage engine".to_string(),
        link("https://www.example.org/a1"),
        "4 entries from the store (no daemon is running)".to_string(),
    ];
    assert_eq!(lines, expected, "{store_out}");

    let (code, out, err) = cli(&path, &["search", "tantivy", "--json", "--relevance"]).await;
    assert_eq!(code, Some(0), "{err}");
    let json: Value = serde_json::from_str(&out).expect("--json prints JSON");
    assert_eq!(
        json,
        serde_json::json!([
            {"title": TANTIVY, "source": "alpha", "date": "2025-01-02T12:00:00Z", "link": "https://www.example.org/t1"},
            {"title": WEEKLY, "source": "alpha", "date": "2025-03-25T12:00:00Z", "link": "https://www.example.org/t2"},
        ])
    );
    let (code, out, err) = cli(&path, &["search", "sled", "--limit", "2"]).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.ends_with("2 entries from the store (no daemon is running)\n"),
        "{out}"
    );
    let (code, _, err) = cli(&path, &["search", "foo:bar"]).await;
    assert_ne!(code, Some(0));
    assert!(err.contains("unknown field"), "{err}");

    let verified = async || {
        let (code, out, err) = cli(&path, &["verify"]).await;
        assert_eq!(code, Some(0), "{out}{err}");
        let line = out
            .lines()
            .find(|l| l.starts_with("search index: "))
            .unwrap_or_else(|| panic!("{out}"));
        assert_eq!(line, "search index: 8 documents for 8 entries", "{out}");
    };
    verified().await;
    let (code, out, err) = cli(&path, &["reindex"]).await;
    assert_eq!(
        (code, out.trim()),
        (Some(0), "search index rebuilt"),
        "{err}"
    );
    verified().await;
    let (_, out, _) = cli(&path, &["search", "sled"]).await;
    assert_eq!(out, store_out);
    let (_, walrus_store, _) = cli(&path, &["search", "walrus"]).await;
    let stamp = walrus_store.get(..16).unwrap_or_default();
    assert!(
        chrono::NaiveDateTime::parse_from_str(stamp, "%Y-%m-%d %H:%M").is_ok()
            && walrus_store.contains("  undated  Undated walrus note"),
        "dated when first seen: {walrus_store}"
    );

    // With the daemon running (on the port the config names): it answers, the same.
    let listener = TcpListener::bind(cfg.server.listen)
        .await
        .expect("bind the configured port");
    let daemon = app::start(cfg.clone(), listener)
        .await
        .expect("daemon starts");
    let mut events = daemon.subscribe_changes();
    let (code, out, err) = cli(&path, &["search", "sled"]).await;
    assert_eq!(code, Some(0), "{err}");
    let from_daemon = store_out.replace(
        "from the store (no daemon is running)",
        "from the running daemon",
    );
    assert_eq!(out, from_daemon);
    let (code, _, err) = cli(&path, &["search", "foo:bar"]).await;
    assert_ne!(code, Some(0));
    assert!(err.contains("unknown field"), "{err}");

    let (code, out, err) = cli(&path, &["reindex"]).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("the running daemon is rebuilding"), "{out}");
    indexed(&mut events, 8).await;
    let (_, out, _) = cli(&path, &["search", "sled"]).await;
    assert_eq!(out, from_daemon);

    // An entry without a date of its own is printed with the same date either way.
    let (_, walrus_daemon, _) = cli(&path, &["search", "walrus"]).await;
    daemon.shutdown().await.expect("stops");
    assert_eq!(
        walrus_daemon,
        walrus_store.replace(
            "from the store (no daemon is running)",
            "from the running daemon"
        )
    );
}

/// An index deleted, or damaged, while the daemon is stopped is rebuilt from the store at
/// the next start; `/healthz` says how it stands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_or_damaged_index_is_rebuilt_at_start() {
    let (_origin, text) = alpha_beta().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config_raw(dir.path(), &text);
    let r = running(cfg.clone(), &["alpha", "beta"], 7).await;
    let health = support::health(&r.base).await;
    assert_eq!(
        health["search"],
        serde_json::json!({"indexed": 7, "complete": true, "backlog": 0})
    );
    r.daemon.shutdown().await.expect("stops");
    let search_dir = cfg.store.path.join("search");
    assert!(
        search_dir.join("meta.json").exists(),
        "the index is at {}",
        search_dir.display()
    );

    for what in ["deleted", "damaged"] {
        if what == "deleted" {
            std::fs::remove_dir_all(&search_dir).expect("deletes");
        } else {
            let meta = search_dir.join("meta.json");
            std::fs::write(meta, b"{ not json \x00\xff").expect("writes");
            // `verify` says so (and changes nothing); the next start rebuilds it.
            let report = support::when_unlocked(|| app::verify(cfg.clone()))
                .await
                .expect("verifies");
            assert!(
                report.problems.iter().any(|p| p.contains("search index")),
                "{:?}",
                report.problems
            );
        }
        let mut daemon = restart(&cfg).await;
        indexed(&mut daemon.supervisor_events, 7).await;
        let base = format!("http://{}", daemon.local_addr());
        assert_eq!(
            found(&base, "sled").await,
            set(&[SLED_ENGINE, FJALL, CRYPTO, POSTGRES]),
            "{what}"
        );
        assert_eq!(
            found(&base, "tag:db").await,
            set(&[POSTGRES, REDIS]),
            "{what}"
        );
        let health = support::health(&base).await;
        assert_eq!(health["search"]["indexed"], 7, "{what}: {health}");
        assert_eq!(health["search"]["complete"], true, "{what}: {health}");
        daemon.shutdown().await.expect("stops");
    }
    let report = support::when_unlocked(|| app::verify(cfg.clone()))
        .await
        .expect("verifies");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let search = report.search.expect("the index was compared");
    assert!(search.complete && search.agrees(), "{search:?}");
    assert_eq!((search.entries, search.documents), (7, 7));
}
