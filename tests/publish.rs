//! Published feeds beyond the combined one: JSON Feed, per-source and per-tag feeds,
//! `?limit=`, and HTTP caching (ETag, Last-Modified, 304).

mod support;

use support::{
    Origin, Route, assert_valid_atom, assert_valid_rss, config_prelude, config_raw, get,
};
use tokio::net::TcpListener;
use tributary::app;

async fn daemon_with_tagged_sources() -> (app::Daemon, Origin, tempfile::TempDir) {
    let origin = Origin::start().await;
    origin.set("/rss.xml", Route::fixture("large_rss.xml"));
    origin.set("/atom.xml", Route::fixture("small_atom.xml"));
    origin.set("/pod.xml", Route::fixture("itunes.xml"));
    let mut text = config_prelude("");
    for (name, path, tags) in [
        ("news", "/rss.xml", r#"["tech", "news"]"#),
        ("code", "/atom.xml", r#"["tech"]"#),
        ("pod", "/pod.xml", r#"["audio"]"#),
    ] {
        text.push_str(&format!(
            "[[source]]\nname = \"{name}\"\nurl = \"{}\"\ntags = {tags}\ninterval = \"1h\"\n\n",
            origin.url(path)
        ));
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config_raw(dir.path(), &text);
    app::once(cfg.clone()).await.expect("once");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    (
        app::start(cfg, listener).await.expect("starts"),
        origin,
        dir,
    )
}

#[tokio::test]
async fn json_feed_follows_the_1_1_spec() {
    let (daemon, _origin, _dir) = daemon_with_tagged_sources().await;
    let (status, ct, body) = get(&format!(
        "http://{}/feed.json?limit=30",
        daemon.local_addr()
    ))
    .await;
    assert_eq!(status, 200);
    assert_eq!(ct, "application/feed+json; charset=utf-8");
    let feed: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(feed["version"], "https://jsonfeed.org/version/1.1");
    assert_eq!(feed["title"], "Test river");
    assert_eq!(feed["feed_url"], "http://feeds.test/feed.json?limit=30");
    assert_eq!(feed["home_page_url"], "http://feeds.test/");
    let items = feed["items"].as_array().expect("items");
    assert_eq!(items.len(), 30);
    let mut ids = std::collections::HashSet::new();
    for item in items {
        let id = item["id"].as_str().expect("id is a string");
        assert!(ids.insert(id.to_string()), "unique id {id}");
        assert!(item["content_html"].is_string() || item["content_text"].is_string());
        for key in ["date_published", "date_modified"] {
            if let Some(d) = item[key].as_str() {
                chrono::DateTime::parse_from_rfc3339(d).expect("RFC 3339");
            }
        }
        assert!(item["_source"]["feed_url"].is_string());
    }
    daemon.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn per_source_and_per_tag_feeds() {
    let (daemon, _origin, _dir) = daemon_with_tagged_sources().await;
    let base = format!("http://{}", daemon.local_addr());

    let (status, _, body) = get(&format!("{base}/sources/code.atom")).await;
    assert_eq!(status, 200);
    let atom = assert_valid_atom(&body, "http://feeds.test/sources/code.atom");
    assert_eq!(atom.entries.len(), 20);
    assert_eq!(atom.title.value, "Test river: code");

    let (_, _, body) = get(&format!("{base}/tags/tech.rss")).await;
    let rss = assert_valid_rss(&body, "http://feeds.test/tags/tech.rss");
    assert_eq!(
        rss.items.len(),
        45,
        "news (25) and code (20), not the podcast"
    );
    let (_, _, body) = get(&format!("{base}/tags/audio.json")).await;
    let json: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(json["items"].as_array().map(Vec::len), Some(3));
    assert!(json["items"][0]["attachments"][0]["url"].is_string());

    for missing in [
        "/sources/nope.atom",
        "/tags/nope.rss",
        "/sources/code.xml",
        "/sources/nope",
        "/tags/nope.html",
    ] {
        let (status, _, _) = get(&format!("{base}{missing}")).await;
        assert_eq!(status, 404, "{missing}");
    }
    // The status page links every feed.
    let (_, _, page) = get(&format!("{base}/status")).await;
    for link in [
        "sources/code.atom",
        "tags/tech.rss",
        "tags/audio.json",
        "feed.json",
    ] {
        assert!(page.contains(link), "{link}");
    }
    daemon.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn limit_is_bounded() {
    let (daemon, _origin, _dir) = daemon_with_tagged_sources().await;
    let base = format!("http://{}", daemon.local_addr());
    let (_, _, body) = get(&format!("{base}/feed.atom?limit=2")).await;
    assert_eq!(
        assert_valid_atom(&body, "http://feeds.test/feed.atom?limit=2")
            .entries
            .len(),
        2
    );
    for bad in ["0", "1001", "-1", "many", "99999999999999999999"] {
        let (status, _, _) = get(&format!("{base}/feed.rss?limit={bad}")).await;
        assert_eq!(status, 400, "limit={bad}");
    }
    daemon.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn repeated_requests_get_304_with_no_body() {
    let (daemon, _origin, _dir) = daemon_with_tagged_sources().await;
    let url = format!("http://{}/feed.atom", daemon.local_addr());
    let client = reqwest::Client::new();
    let first = client.get(&url).send().await.expect("get");
    assert_eq!(first.status(), 200);
    let etag = first.headers()["etag"].to_str().expect("ascii").to_string();
    let last_modified = first.headers()["last-modified"]
        .to_str()
        .expect("ascii")
        .to_string();
    let cache_control = first.headers()["cache-control"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(
        etag.starts_with('"') && !etag.starts_with("W/"),
        "strong: {etag}"
    );
    assert_eq!(cache_control, "public, max-age=900");
    let body = first.text().await.expect("body");

    // The same entries give the same ETag.
    let again = client.get(&url).send().await.expect("get");
    assert_eq!(again.headers()["etag"].to_str().expect("ascii"), etag);
    assert_eq!(again.text().await.expect("body"), body);

    let cached = client
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("get");
    assert_eq!(cached.status(), 304);
    assert_eq!(cached.headers()["etag"].to_str().expect("ascii"), etag);
    assert!(cached.bytes().await.expect("body").is_empty());

    let cached = client
        .get(&url)
        .header("if-modified-since", &last_modified)
        .send()
        .await
        .expect("get");
    assert_eq!(cached.status(), 304);

    let stale = client
        .get(&url)
        .header("if-none-match", "\"something-else\"")
        .send()
        .await
        .expect("get");
    assert_eq!(stale.status(), 200);
    daemon.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn feeds_are_compressed_for_readers_that_ask() {
    use std::io::Read;
    let (daemon, _origin, _dir) = daemon_with_tagged_sources().await;
    let url = format!("http://{}/feed.rss", daemon.local_addr());
    let client = reqwest::Client::builder()
        .gzip(false)
        .brotli(false)
        .build()
        .expect("client");
    let plain = client.get(&url).send().await.expect("get");
    assert!(plain.headers().get("content-encoding").is_none());
    let plain = plain.bytes().await.expect("body");
    let gz = client
        .get(&url)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("get");
    assert_eq!(gz.headers()["content-encoding"], "gzip");
    // Another representation, another strong ETag; either is recognised.
    let gz_etag = gz.headers()["etag"].to_str().expect("ascii").to_string();
    assert!(gz_etag.ends_with("-gzip\""), "{gz_etag}");
    let revalidated = client
        .get(&url)
        .header("accept-encoding", "gzip")
        .header("if-none-match", &gz_etag)
        .send()
        .await
        .expect("get");
    assert_eq!(revalidated.status(), 304);
    let compressed = gz.bytes().await.expect("body");
    assert!(
        compressed.len() * 3 < plain.len(),
        "{} vs {}",
        compressed.len(),
        plain.len()
    );
    let mut unzipped = Vec::new();
    flate2::read::GzDecoder::new(&compressed[..])
        .read_to_end(&mut unzipped)
        .expect("gunzip");
    assert_eq!(unzipped, plain);
    daemon.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn opml_lists_every_source_with_its_tags() {
    let (daemon, origin, _dir) = daemon_with_tagged_sources().await;
    let (status, ct, body) = get(&format!("http://{}/opml", daemon.local_addr())).await;
    assert_eq!(status, 200);
    assert!(ct.starts_with("text/x-opml"));
    let outlines = tributary::config::opml::read(&body).expect("OPML");
    assert_eq!(outlines.len(), 3);
    let news = outlines
        .iter()
        .find(|o| o.xml_url == origin.url("/rss.xml"))
        .expect("news");
    assert_eq!(news.categories, ["tech", "news"]);
    daemon.shutdown().await.expect("shutdown");
}

/// RFC 5005 paging: following `next` links walks back through every entry once.
#[tokio::test]
async fn next_links_page_through_history() {
    let (daemon, _origin, _dir) = daemon_with_tagged_sources().await;
    let local = format!("http://{}", daemon.local_addr());
    let mut url = "http://feeds.test/feed.atom?limit=10".to_string();
    let mut ids = Vec::new();
    let mut pages = 0;
    loop {
        let (status, _, body) = get(&url.replace("http://feeds.test", &local)).await;
        assert_eq!(status, 200, "{url}");
        let atom = assert_valid_atom(&body, &url);
        ids.extend(atom.entries.iter().map(|e| e.id.clone()));
        pages += 1;
        match atom.links.iter().find(|l| l.rel == "next") {
            Some(next) => url = next.href.clone(),
            None => break,
        }
    }
    assert_eq!(pages, 5);
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!((ids.len(), unique.len()), (48, 48));

    let (_, _, body) = get(&format!("{local}/sources/news.json?limit=20")).await;
    let json: serde_json::Value = serde_json::from_str(&body).expect("json");
    let next = json["next_url"].as_str().expect("next_url");
    assert!(
        next.starts_with("http://feeds.test/sources/news.json?limit=20&before="),
        "{next}"
    );
    let (_, _, body) = get(&next.replace("http://feeds.test", &local)).await;
    let json: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(json["items"].as_array().map(Vec::len), Some(5));
    assert!(json.get("next_url").is_none());

    let (_, _, body) = get(&format!("{local}/feed.rss?limit=40")).await;
    let rss = rss::Channel::read_from(body.as_bytes()).expect("rss");
    let links = &rss.atom_ext.as_ref().expect("atom links").links;
    assert!(links.iter().any(|l| l.rel == "next"));

    let (status, _, _) = get(&format!("{local}/feed.atom?before=nonsense")).await;
    assert_eq!(status, 400);
    daemon.shutdown().await.expect("shutdown");
}

/// `[[feed]]`: chosen sources and tags, include and exclude patterns.
#[tokio::test]
async fn named_feeds_filter_by_pattern() {
    let origin = Origin::start().await;
    let items = |list: &[(&str, &str, &str)]| {
        let mut s = String::from(
            r#"<rss version="2.0"><channel><title>R</title><link>https://r.example/</link><description>d</description>"#,
        );
        for (guid, title, cat) in list {
            s.push_str(&format!(
                "<item><guid>{guid}</guid><title>{title}</title><link>https://r.example/{guid}</link><category>{cat}</category></item>"
            ));
        }
        s.push_str("</channel></rss>");
        s
    };
    origin.set(
        "/a.xml",
        Route::feed(
            items(&[
                ("a1", "Rust 1.80 released", "news"),
                ("a2", "Rust 1.81 beta released", "news"),
                ("a3", "Community update", "release"),
            ]),
            "application/rss+xml",
        ),
    );
    origin.set(
        "/b.xml",
        Route::feed(
            items(&[("b1", "Other release", "x")]),
            "application/rss+xml",
        ),
    );
    let mut text = config_prelude("");
    text.push_str(&format!(
        "[[source]]\nname = \"a\"\nurl = \"{}\"\ntags = [\"rust\"]\ninterval = \"1h\"\n\n[[source]]\nname = \"b\"\nurl = \"{}\"\ninterval = \"1h\"\n\n",
        origin.url("/a.xml"),
        origin.url("/b.xml")
    ));
    text.push_str(
        "[[feed]]\nname = \"releases\"\ntitle = \"Rust releases\"\ndescription = \"Stable only\"\ntags = [\"rust\"]\ninclude = [\"(?i)releas\"]\nexclude = [\"(?i)beta\"]\n",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config_raw(dir.path(), &text);
    app::once(cfg.clone()).await.expect("once");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let daemon = app::start(cfg, listener).await.expect("starts");
    let base = format!("http://{}", daemon.local_addr());
    let (status, _, body) = get(&format!("{base}/feeds/releases.atom")).await;
    assert_eq!(status, 200);
    let atom = assert_valid_atom(&body, "http://feeds.test/feeds/releases.atom");
    assert_eq!(atom.title.value, "Rust releases");
    let mut titles: Vec<&str> = atom
        .entries
        .iter()
        .map(|e| e.title.value.as_str())
        .collect();
    titles.sort_unstable();
    // Matched by title, or by category; the beta excluded; source b not taken.
    assert_eq!(titles, ["Community update", "Rust 1.80 released"]);
    let (status, _, _) = get(&format!("{base}/feeds/nope.rss")).await;
    assert_eq!(status, 404);
    daemon.shutdown().await.expect("shutdown");
}

/// A feed whose newest entry is dated before 1970 is served (an HTTP date cannot say such a
/// time: Last-Modified says 1970), not a 500, and revalidates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_older_than_1970_is_served() {
    let origin = Origin::start().await;
    let rss = "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Old</title>\
               <link>https://old.example/</link><description>d</description>\
               <item><guid>moon</guid><title>Moon landing</title>\
               <link>https://old.example/moon</link>\
               <pubDate>Sun, 20 Jul 1969 20:17:00 GMT</pubDate></item></channel></rss>";
    origin.set("/old.xml", Route::feed(rss, "application/rss+xml"));
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "{}[[source]]\nname = \"old\"\nurl = \"{}\"\ninterval = \"1h\"\n",
        config_prelude(""),
        origin.url("/old.xml")
    );
    let cfg = config_raw(dir.path(), &text);
    app::once(cfg.clone()).await.expect("polled");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let daemon = app::start(cfg, listener).await.expect("start");
    let url = format!("http://{}/sources/old.atom", daemon.local_addr());
    let (status, _, body) = get(&url).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Moon landing"), "{body}");
    let response = reqwest::get(&url).await.expect("get");
    assert_eq!(
        response.headers()["last-modified"],
        "Thu, 01 Jan 1970 00:00:00 GMT"
    );
    daemon.shutdown().await.expect("shutdown");
}
