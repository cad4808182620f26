//! The HTTP server under hostile clients, through the real daemon: idle and slowloris
//! connections (header and idle timeouts, eviction at the cap, the per-address limit and
//! trusted proxies), the render cache's bound in bytes and canonical key, and
//! `[publish] description` published as text.
//!
//! Client sockets are bound to 127.0.0.2, 127.0.0.3, ... so that the daemon sees them as
//! other hosts; 127.0.0.1 is the trusted proxy (or the real reader).

mod support;

use support::{Item, Rss};

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use support::{Origin, Route, config_raw};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tributary::app;

/// A daemon with `server_extra` in `[server]` and `rest` after `[publish]` (sources, feeds);
/// polled once first.
async fn daemon(server_extra: &str, rest: &str) -> (app::Daemon, tempfile::TempDir) {
    daemon_described("Everything, combined", server_extra, rest).await
}

async fn daemon_described(
    description: &str,
    server_extra: &str,
    rest: &str,
) -> (app::Daemon, tempfile::TempDir) {
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nbase_url = \"http://feeds.test\"\n{server_extra}\n\n\
         [publish]\ntitle = \"Test river\"\ndescription = {}\nmax_items = 50\n\n{rest}",
        toml_string(description)
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config_raw(dir.path(), &text);
    if !cfg.sources.is_empty() {
        app::once(cfg.clone()).await.expect("once");
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    (app::start(cfg, listener).await.expect("starts"), dir)
}

fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// An RSS feed of `n` items, each with `words` words of description.
fn rss(n: usize, words: usize) -> String {
    let filler = "lorem ipsum ".repeat(words / 2);
    Rss::new("Fat", "https://fat.example/")
        .items((0..n).map(|i| {
            Item::new(format!("fat-{i}"))
                .title(format!("Item {i}"))
                .link(format!("https://fat.example/{i}"))
                .description(format!("{filler} {i}"))
                .pub_date(format!(
                    "Mon, 01 Jan 2024 {:02}:{:02}:00 GMT",
                    (i / 60) % 24,
                    i % 60
                ))
        }))
        .xml()
}

/// A TCP connection to `addr` from 127.0.0.`host`.
async fn connect_from(host: u8, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((Ipv4Addr::new(127, 0, 0, host), 0)))?;
    socket.connect(addr).await
}

/// Sends a GET on `stream` (keep-alive) and reads one response: status and body.
async fn request(stream: &mut TcpStream, path: &str) -> std::io::Result<(u16, Vec<u8>)> {
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: feeds.test\r\n\r\n").as_bytes())
        .await?;
    read_response(stream).await
}

async fn read_response(stream: &mut TcpStream) -> std::io::Result<(u16, Vec<u8>)> {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let status: u16 = head
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let mut chunk = vec![0u8; length - body.len()];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Ok((status, body))
}

/// How long until the server closes `stream` (EOF or reset), if it does within `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    tokio::time::timeout(within, async {
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .ok()
    .map(|()| start.elapsed())
}

/// A GET from 127.0.0.1 on a fresh connection, timed.
async fn timed_get(url: &str) -> (u16, Duration) {
    let start = Instant::now();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let response = client.get(url).send().await.expect("answered");
    let status = response.status().as_u16();
    response.bytes().await.expect("body");
    (status, start.elapsed())
}

/// One sample from `/metrics`.
async fn metric(addr: SocketAddr, name: &str) -> f64 {
    let body = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body");
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// Opens `count` connections to `addr` from 127.0.0.2 and up (`per_host` from each), each
/// sending `first` (maybe nothing) once connected.
async fn flood(
    addr: SocketAddr,
    count: usize,
    per_host: usize,
    first: &'static [u8],
) -> Vec<TcpStream> {
    let mut out = Vec::with_capacity(count);
    let mut set = tokio::task::JoinSet::new();
    for i in 0..count {
        let host = 2 + (i / per_host) as u8;
        set.spawn(async move {
            // A server that locks up leaves connects hanging: those are given up.
            let mut s = tokio::time::timeout(Duration::from_secs(3), connect_from(host, addr))
                .await
                .ok()?
                .ok()?;
            if !first.is_empty() {
                // The server may already have closed it (per-address limit).
                let _ = s.write_all(first).await;
            }
            Some(s)
        });
        // At most 200 connects in flight (the listen backlog).
        if set.len() >= 200
            && let Some(done) = set.join_next().await
        {
            out.extend(done.expect("connect task"));
        }
    }
    while let Some(done) = set.join_next().await {
        out.extend(done.expect("connect task"));
    }
    out
}

/// A source for /feed.atom to carry.
async fn one_source() -> (Origin, String) {
    let origin = Origin::start().await;
    origin.set("/feed.xml", Route::feed(rss(20, 20), "application/rss+xml"));
    let rest = format!(
        "[[source]]\nname = \"fat\"\nurl = \"{}\"\ninterval = \"1h\"\n",
        origin.url("/feed.xml")
    );
    (origin, rest)
}

/// 2,000 idle connections from 40 other addresses: /healthz and /feed.atom from 127.0.0.1
/// answer within a second, and the daemon holds no more than `max_connections`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_idle_connections_do_not_lock_out_readers() {
    tributary::serve::listener::raise_fd_limit();
    let (_origin, rest) = one_source().await;
    // Timeouts longer than the test: only eviction makes room.
    let (daemon, _dir) = daemon(
        "trusted_proxies = [\"127.0.0.1/32\"]\nheader_timeout = \"5m\"\nidle_timeout = \"5m\"",
        &rest,
    )
    .await;
    let addr = daemon.local_addr();
    let started = Instant::now();
    let idle = flood(addr, 2000, 50, b"").await;
    eprintln!("2000 connections opened in {:?}", started.elapsed());
    assert_eq!(idle.len(), 2000, "every connect went through");
    for path in ["/healthz", "/feed.atom", "/healthz"] {
        let (status, took) = timed_get(&format!("http://{addr}{path}")).await;
        assert_eq!(status, 200, "{path}");
        assert!(took < Duration::from_secs(1), "{path} took {took:?}");
    }
    let open = metric(addr, "tributary_http_connections_open").await;
    assert!(open <= 1024.0, "{open} connections open");
    // 40 addresses × 32 (the default per-address limit) is more than the cap of 1024: both
    // the per-address limit and eviction took part.
    let refused = metric(
        addr,
        "tributary_http_connections_closed_total{reason=\"per_address_limit\"}",
    )
    .await;
    assert!(refused >= 1.0, "{refused} refused");
    let evicted = metric(
        addr,
        "tributary_http_connections_closed_total{reason=\"evicted\"}",
    )
    .await;
    assert!(evicted >= 1.0, "{evicted} evicted");
    drop(idle);
    daemon.shutdown().await.expect("shutdown");
}

/// 2,000 slowloris connections (a partial header, then a byte now and then) from 40 other
/// addresses: /healthz and /feed.atom from 127.0.0.1 answer within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_slowloris_connections_do_not_lock_out_readers() {
    tributary::serve::listener::raise_fd_limit();
    let (_origin, rest) = one_source().await;
    // Timeouts longer than the test: only eviction makes room.
    let (daemon, _dir) = daemon(
        "trusted_proxies = [\"127.0.0.1/32\"]\nheader_timeout = \"5m\"\nidle_timeout = \"5m\"",
        &rest,
    )
    .await;
    let addr = daemon.local_addr();
    let mut slow = flood(
        addr,
        2000,
        50,
        b"GET /feed.atom HTTP/1.1\r\nHost: feeds.test\r\nX-Slow: ",
    )
    .await;
    assert_eq!(slow.len(), 2000, "every connect went through");
    // Keep them trickling while the reader asks.
    let trickle = tokio::spawn(async move {
        loop {
            for s in &mut slow {
                let _ = s.try_write(b"a");
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    for path in ["/healthz", "/feed.atom", "/healthz", "/feed.atom"] {
        let (status, took) = timed_get(&format!("http://{addr}{path}")).await;
        assert_eq!(status, 200, "{path}");
        assert!(took < Duration::from_secs(1), "{path} took {took:?}");
    }
    trickle.abort();
    daemon.shutdown().await.expect("shutdown");
}

/// A keep-alive connection is closed after `idle_timeout`, not after the (shorter)
/// `header_timeout`; a second request inside the idle time is served.
#[tokio::test]
async fn idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let (daemon, _dir) = daemon("header_timeout = \"1s\"\nidle_timeout = \"3s\"", "").await;
    let addr = daemon.local_addr();
    let mut conn = connect_from(2, addr).await.expect("connect");
    let (status, _) = request(&mut conn, "/healthz").await.expect("answered");
    assert_eq!(status, 200);
    // Longer than the header timeout, shorter than the idle timeout: still open.
    assert_eq!(
        closed_within(&mut conn, Duration::from_millis(1500)).await,
        None
    );
    let (status, _) = request(&mut conn, "/healthz")
        .await
        .expect("answered again");
    assert_eq!(status, 200);
    let after = closed_within(&mut conn, Duration::from_secs(10))
        .await
        .expect("closed after the idle timeout");
    assert!(
        after >= Duration::from_millis(2500),
        "closed after {after:?}, before the idle timeout"
    );
    assert!(
        metric(
            addr,
            "tributary_http_connections_closed_total{reason=\"idle_timeout\"}"
        )
        .await
            >= 1.0
    );
    daemon.shutdown().await.expect("shutdown");
}

/// A client that sends its headers a byte at a time is cut off at `header_timeout`, on the
/// first request and on a later one of a keep-alive connection.
#[tokio::test]
async fn slowloris_is_cut_off_after_the_header_timeout() {
    let (daemon, _dir) = daemon("header_timeout = \"1s\"\nidle_timeout = \"30s\"", "").await;
    let addr = daemon.local_addr();
    for served_before in [false, true] {
        let mut conn = connect_from(2, addr).await.expect("connect");
        if served_before {
            let (status, _) = request(&mut conn, "/healthz").await.expect("answered");
            assert_eq!(status, 200);
        }
        conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: feeds.test\r\nX-Slow: ")
            .await
            .expect("write");
        let start = Instant::now();
        let (mut read, mut write) = conn.into_split();
        let trickle = tokio::spawn(async move {
            while write.write_all(b"a").await.is_ok() {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        let closed = tokio::time::timeout(Duration::from_secs(10), async {
            let mut buf = [0u8; 256];
            loop {
                match read.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "slowloris still connected after 10 s");
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_secs(5),
            "cut off after {took:?}"
        );
        trickle.abort();
    }
    assert!(
        metric(
            addr,
            "tributary_http_connections_closed_total{reason=\"header_timeout\"}"
        )
        .await
            >= 2.0
    );
    daemon.shutdown().await.expect("shutdown");
}

/// At `max_connections`, the connection idle longest gives way to a new one at once.
#[tokio::test]
async fn at_the_cap_the_longest_idle_connection_gives_way() {
    let (daemon, _dir) = daemon("max_connections = 2", "").await;
    let addr = daemon.local_addr();
    let mut first = connect_from(2, addr).await.expect("connect");
    let (status, _) = request(&mut first, "/healthz").await.expect("answered");
    assert_eq!(status, 200);
    let mut second = connect_from(3, addr).await.expect("connect");
    // Served, so idle since after the first became idle.
    let (status, _) = request(&mut second, "/healthz").await.expect("answered");
    assert_eq!(status, 200);
    let mut third = connect_from(4, addr).await.expect("connect");
    let started = Instant::now();
    let (status, _) = request(&mut third, "/healthz")
        .await
        .expect("served at once");
    assert_eq!(status, 200);
    assert!(started.elapsed() < Duration::from_secs(1));
    // The first, idle longest, was closed for it; the second is still open.
    assert!(
        closed_within(&mut first, Duration::from_secs(5))
            .await
            .is_some(),
        "the longest-idle connection was not evicted"
    );
    let (status, _) = request(&mut second, "/healthz")
        .await
        .expect("second still open");
    assert_eq!(status, 200);
    // A stop does not wait for idle connections, nor for one stuck in a partial header.
    let mut partial = connect_from(5, addr).await.expect("connect");
    partial
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: feeds.test\r\nX-Slow: ")
        .await
        .expect("write");
    let stopping = Instant::now();
    daemon.shutdown().await.expect("shutdown");
    assert!(
        stopping.elapsed() < Duration::from_secs(2),
        "stop took {:?}",
        stopping.elapsed()
    );
    for conn in [&mut second, &mut third, &mut partial] {
        assert!(closed_within(conn, Duration::from_secs(1)).await.is_some());
    }
}

/// Connections over `max_connections_per_ip` from one address are closed at once; a trusted
/// proxy's address is exempt.
#[tokio::test]
async fn per_address_limit_closes_extra_connections_and_trusted_proxies_are_exempt() {
    let (daemon, _dir) = daemon(
        "max_connections_per_ip = 2\ntrusted_proxies = [\"127.0.0.1\", \"127.0.0.9/32\"]",
        "",
    )
    .await;
    let addr = daemon.local_addr();
    let mut a = connect_from(2, addr).await.expect("connect");
    let mut b = connect_from(2, addr).await.expect("connect");
    let (status, _) = request(&mut a, "/healthz").await.expect("a answered");
    assert_eq!(status, 200);
    let (status, _) = request(&mut b, "/healthz").await.expect("b answered");
    assert_eq!(status, 200);
    let mut c = connect_from(2, addr).await.expect("connect");
    assert!(
        closed_within(&mut c, Duration::from_secs(5))
            .await
            .is_some(),
        "a third connection from one address was kept"
    );
    // Another address has its own allowance.
    let mut d = connect_from(3, addr).await.expect("connect");
    assert_eq!(
        request(&mut d, "/healthz").await.expect("d answered").0,
        200
    );
    // Trusted proxies (a listed address, a listed /32) are not limited.
    for host in [1, 9] {
        let mut many = Vec::new();
        for _ in 0..5 {
            many.push(connect_from(host, addr).await.expect("connect"));
        }
        for conn in &mut many {
            let (status, _) = request(conn, "/healthz").await.expect("proxy served");
            assert_eq!(status, 200);
        }
    }
    daemon.shutdown().await.expect("shutdown");
}

/// Requests that differ only in ignored parameters share one cached document (same ETag,
/// one cache entry, and a self link without them); distinct limits stay under
/// `render_cache_mb`, and a document bigger than the whole cache is served, not kept.
#[tokio::test]
async fn render_cache_is_keyed_canonically_and_bounded_in_bytes() {
    let origin = Origin::start().await;
    // About 1.5 MB as 700 entries: limit=1000 renders more than the 1 MiB cache.
    origin.set(
        "/feed.xml",
        Route::feed(rss(700, 300), "application/rss+xml"),
    );
    let rest = format!(
        "[[source]]\nname = \"fat\"\nurl = \"{}\"\ninterval = \"1h\"\n",
        origin.url("/feed.xml")
    );
    let (daemon, _dir) = daemon("render_cache_mb = 1", &rest).await;
    let addr = daemon.local_addr();
    let client = reqwest::Client::new();
    let mut etags = std::collections::HashSet::new();
    for n in 0..100 {
        let response = client
            .get(format!(
                "http://{addr}/sources/fat.atom?limit=10&bust={n}&x=%3Cscript%3E"
            ))
            .send()
            .await
            .expect("answered");
        assert_eq!(response.status().as_u16(), 200);
        etags.insert(
            response
                .headers()
                .get("etag")
                .and_then(|v| v.to_str().ok())
                .expect("etag")
                .to_string(),
        );
        let body = response.text().await.expect("body");
        assert!(
            body.contains("href=\"http://feeds.test/sources/fat.atom?limit=10\""),
            "self link carries only the canonical query"
        );
        assert!(!body.contains("bust") && !body.contains("script"));
    }
    assert_eq!(etags.len(), 1, "one document for every ignored parameter");
    assert_eq!(metric(addr, "tributary_render_cache_documents").await, 1.0);
    // The default limit spelt out is the same document as none.
    let plain = client
        .get(format!("http://{addr}/sources/fat.atom"))
        .send()
        .await
        .expect("answered");
    let with_default = client
        .get(format!("http://{addr}/sources/fat.atom?limit=50&y=1"))
        .send()
        .await
        .expect("answered");
    assert_eq!(
        plain.headers().get("etag"),
        with_default.headers().get("etag")
    );
    assert_eq!(metric(addr, "tributary_render_cache_documents").await, 2.0);

    let bound = 1024.0 * 1024.0;
    for limit in (100..=700).step_by(50) {
        let (status, _, _) =
            support::get(&format!("http://{addr}/sources/fat.atom?limit={limit}")).await;
        assert_eq!(status, 200);
        let bytes = metric(addr, "tributary_render_cache_bytes").await;
        assert!(bytes <= bound, "{bytes} bytes cached after limit={limit}");
        assert!(bytes > 0.0);
    }
    // The feed as readers subscribe to it (no query) outlived that flood of variants: it is
    // served from the cache, not rendered again.
    let renders = metric(addr, "tributary_renders_total").await;
    let (status, _, _) = support::get(&format!("http://{addr}/sources/fat.atom")).await;
    assert_eq!(status, 200);
    assert_eq!(
        metric(addr, "tributary_renders_total").await,
        renders,
        "the subscribed feed was pushed out of the cache by query variants"
    );
    // Bigger than the whole cache: served whole, not kept (the rest stay).
    let before = metric(addr, "tributary_render_cache_documents").await;
    let (status, _, body) =
        support::get(&format!("http://{addr}/sources/fat.atom?limit=1000")).await;
    assert_eq!(status, 200);
    assert!(body.len() as f64 > bound, "{} bytes", body.len());
    assert_eq!(body.matches("<entry>").count(), 700);
    assert_eq!(
        metric(addr, "tributary_render_cache_documents").await,
        before
    );
    daemon.shutdown().await.expect("shutdown");
}

/// `[publish] description` and a named feed's description are text: RSS carries them
/// escaped (readers render an RSS description as HTML), Atom as a text subtitle, JSON Feed
/// as a string; a reader shows `<script>` as written.
#[tokio::test]
async fn hostile_descriptions_are_published_as_text() {
    let hostile = "<script>alert(1)</script> & <b>bold</b>";
    let named = "<img src=x onerror=alert(2)>";
    let (daemon, _dir) = daemon_described(
        hostile,
        "",
        &format!(
            "[[feed]]\nname = \"picks\"\ndescription = {}\n",
            toml_string(named)
        ),
    )
    .await;
    let addr = daemon.local_addr();
    for (path, text) in [("/feed", hostile), ("/feeds/picks", named)] {
        let (status, _, body) = support::get(&format!("http://{addr}{path}.rss")).await;
        assert_eq!(status, 200);
        let channel = rss::Channel::read_from(body.as_bytes()).expect("RSS");
        // What a reader renders as HTML: the escaped text, so the markup shows as written.
        assert_eq!(
            channel.description,
            html_escape::encode_text(text),
            "{path}.rss"
        );
        assert!(!body.contains("<script") && !body.contains("&lt;script"));

        let (_, _, body) = support::get(&format!("http://{addr}{path}.atom")).await;
        let feed = atom_syndication::Feed::read_from(body.as_bytes()).expect("Atom");
        let subtitle = feed.subtitle.expect("subtitle");
        assert_eq!(subtitle.r#type, atom_syndication::TextType::Text);
        assert_eq!(subtitle.value, text, "{path}.atom");

        let (_, _, body) = support::get(&format!("http://{addr}{path}.json")).await;
        let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(json["description"], text, "{path}.json");
    }
    daemon.shutdown().await.expect("shutdown");
}

/// An RSS feed of `n` items, each with `chars` characters of random text (compresses
/// poorly, so a compressed response still outgrows the socket buffers).
fn random_rss(n: usize, chars: usize) -> String {
    let mut s = String::from(
        r#"<?xml version="1.0"?><rss version="2.0"><channel><title>Fat</title><link>https://fat.example/</link><description>d</description>"#,
    );
    let mut rng = fastrand::Rng::with_seed(13);
    for i in 0..n {
        let filler: String = (0..chars).map(|_| rng.alphanumeric()).collect();
        s.push_str(&format!(
            "<item><guid>fat-{i}</guid><title>Item {i}</title><link>https://fat.example/{i}</link>\
             <description>{filler}</description><pubDate>Mon, 01 Jan 2024 {:02}:{:02}:00 GMT</pubDate></item>",
            (i / 60) % 24,
            i % 60
        ));
    }
    s.push_str("</channel></rss>");
    s
}

/// A source `fat` serving `body`.
async fn fat_source(body: String) -> (Origin, String) {
    let origin = Origin::start().await;
    origin.set("/feed.xml", Route::feed(body, "application/rss+xml"));
    let rest = format!(
        "[[source]]\nname = \"fat\"\nurl = \"{}\"\ninterval = \"1h\"\n",
        origin.url("/feed.xml")
    );
    (origin, rest)
}

/// A client that neither decompresses nor asks for compression by itself.
fn raw_client() -> reqwest::Client {
    reqwest::Client::builder()
        .gzip(false)
        .brotli(false)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// gzip and brotli as Accept-Encoding asks (q-values, `Vary`), each decoding to the identity
/// body, with a strong ETag per coding and 304 for any of them; each coding is compressed
/// once and then served from the render cache.
#[tokio::test]
async fn feeds_are_negotiated_compressed_once_and_decode_to_the_identity_body() {
    use std::io::Read;
    let (_origin, rest) = fat_source(rss(200, 50)).await;
    let (daemon, _dir) = daemon("", &rest).await;
    let addr = daemon.local_addr();
    let url = format!("http://{addr}/feed.atom?limit=200");
    let client = raw_client();
    let get = |accept: Option<&'static str>, inm: Option<String>| {
        let mut request = client.get(&url);
        if let Some(a) = accept {
            request = request.header("accept-encoding", a);
        }
        if let Some(e) = inm {
            request = request.header("if-none-match", e);
        }
        request.send()
    };
    let plain = get(None, None).await.expect("identity");
    assert_eq!(plain.status(), 200);
    assert_eq!(header(&plain, "content-encoding"), None);
    assert_eq!(header(&plain, "vary").as_deref(), Some("Accept-Encoding"));
    let etag = header(&plain, "etag").expect("etag");
    let plain = plain.bytes().await.expect("body");

    let decode = |coding: &str, body: &[u8]| {
        let mut out = Vec::new();
        match coding {
            "gzip" => flate2::read::GzDecoder::new(body)
                .read_to_end(&mut out)
                .expect("gunzip"),
            _ => brotli::Decompressor::new(body, 4096)
                .read_to_end(&mut out)
                .expect("unbrotli"),
        };
        out
    };
    let mut etags = vec![etag.clone()];
    for (accept, coding) in [
        ("gzip", "gzip"),
        ("gzip, deflate, br", "br"),
        ("br;q=0.5, gzip;q=0.9", "gzip"),
        ("br;q=0, gzip", "gzip"),
        ("*", "br"),
        ("gzip;q=0.4, identity", "identity"),
        ("br;q=0, gzip;q=0", "identity"),
        ("deflate", "identity"),
        ("gzip", "gzip"),
        ("br", "br"),
    ] {
        let response = get(Some(accept), None).await.expect("answered");
        assert_eq!(response.status(), 200);
        assert_eq!(
            header(&response, "vary").as_deref(),
            Some("Accept-Encoding")
        );
        let e = header(&response, "etag").expect("etag");
        let body = response.bytes().await.expect("body");
        if coding == "identity" {
            assert_eq!(e, etag, "{accept}");
            assert_eq!(body, plain, "{accept}");
            continue;
        }
        assert_eq!(
            e,
            format!("{}-{coding}\"", etag.trim_end_matches('"')),
            "{accept}"
        );
        assert!(body.len() * 3 < plain.len(), "{accept}: {}", body.len());
        assert_eq!(decode(coding, &body), plain, "{accept}");
        etags.push(e);
    }
    // Each coding compressed once, however often asked for.
    for coding in ["gzip", "br"] {
        let n = metric(
            addr,
            &format!("tributary_render_compressions_total{{encoding=\"{coding}\"}}"),
        )
        .await;
        assert_eq!(n, 1.0, "{coding} compressed {n} times");
    }
    assert_eq!(metric(addr, "tributary_renders_total").await, 1.0);
    // Any coding's validator is good for any other.
    for e in &etags {
        for accept in [None, Some("gzip"), Some("br")] {
            let r = get(accept, Some(e.clone())).await.expect("answered");
            assert_eq!(r.status(), 304, "{e} with {accept:?}");
            assert_eq!(header(&r, "etag").as_ref(), Some(e));
        }
    }
    daemon.shutdown().await.expect("shutdown");
}

/// 100 identical requests for an uncached document right after a start render it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_concurrent_misses_render_once() {
    let (_origin, rest) = fat_source(rss(700, 300)).await;
    let (daemon, _dir) = daemon("", &rest).await;
    let addr = daemon.local_addr();
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(100));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let barrier = barrier.clone();
        set.spawn(async move {
            let client = raw_client();
            barrier.wait().await;
            let response = client
                .get(format!("http://{addr}/feed.atom?limit=700"))
                .send()
                .await
                .expect("answered");
            assert_eq!(response.status(), 200);
            header(&response, "etag").expect("etag")
        });
    }
    let mut etags = std::collections::HashSet::new();
    while let Some(done) = set.join_next().await {
        etags.insert(done.expect("request task"));
    }
    assert_eq!(etags.len(), 1);
    assert_eq!(metric(addr, "tributary_renders_total").await, 1.0);
    daemon.shutdown().await.expect("shutdown");
}

/// 64 concurrent uncached renders, gzipped, from other connections: /healthz and /metrics
/// answer within a second meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_answers_under_concurrent_uncached_compressed_renders() {
    let (_origin, rest) = fat_source(rss(700, 300)).await;
    let (daemon, _dir) = daemon("", &rest).await;
    let addr = daemon.local_addr();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..64 {
        set.spawn(async move {
            let response = raw_client()
                .get(format!("http://{addr}/feed.atom?limit={}", 600 + i))
                .header("accept-encoding", "gzip")
                .send()
                .await
                .expect("answered");
            assert_eq!(response.status(), 200);
            response.bytes().await.expect("body");
        });
    }
    // Renders are under way (the first has finished; most wait for a permit).
    while metric(addr, "tributary_renders_total").await < 1.0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for path in ["/healthz", "/metrics", "/healthz", "/healthz"] {
        let (status, took) = timed_get(&format!("http://{addr}{path}")).await;
        assert_eq!(status, 200, "{path}");
        assert!(took < Duration::from_secs(1), "{path} took {took:?}");
    }
    let rendered = metric(addr, "tributary_renders_total").await;
    assert!(rendered < 64.0, "the renders were over before the probes");
    while let Some(done) = set.join_next().await {
        done.expect("request task");
    }
    assert_eq!(metric(addr, "tributary_renders_total").await, 64.0);
    daemon.shutdown().await.expect("shutdown");
}

/// At the cap, a client that stops reading a large response (identity or gzip) is not
/// "serving a request": the response is one complete body handed to the connection, so the
/// stalled connection gives way to a new one like any idle one.
#[tokio::test]
async fn a_stalled_compressed_reader_is_evicted_at_the_cap_like_an_identity_one() {
    // About 2 MB of random text: about 1.5 MB gzipped, far beyond the socket buffers.
    let (_origin, rest) = fat_source(random_rss(700, 3000)).await;
    let (daemon, _dir) = daemon("max_connections = 2\nidle_timeout = \"5m\"", &rest).await;
    let addr = daemon.local_addr();
    let path = "/sources/fat.atom?limit=700";
    for accept in ["identity", "gzip"] {
        // Rendered and compressed first (the stall is about the reader, not the render).
        let warm = raw_client()
            .get(format!("http://{addr}{path}"))
            .header("accept-encoding", accept)
            .send()
            .await
            .expect("answered");
        assert_eq!(warm.status(), 200);
        assert!(warm.bytes().await.expect("body").len() > 1_000_000);
        // The stalled reader: a small receive buffer, and it reads only the first bytes.
        let socket = TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("rcvbuf");
        socket
            .bind(SocketAddr::from((Ipv4Addr::new(127, 0, 0, 2), 0)))
            .expect("bind");
        let mut stalled = socket.connect(addr).await.expect("connect");
        stalled
            .write_all(
                format!(
                    "GET {path} HTTP/1.1\r\nHost: feeds.test\r\nAccept-Encoding: {accept}\r\n\r\n"
                )
                .as_bytes(),
            )
            .await
            .expect("write");
        let mut first = [0u8; 12];
        stalled
            .read_exact(&mut first)
            .await
            .expect("response begins");
        assert_eq!(&first[9..12], b"200");
        // Another connection, served after the stalled one began.
        let mut other = connect_from(3, addr).await.expect("connect");
        assert_eq!(
            request(&mut other, "/healthz").await.expect("served").0,
            200
        );
        // A third at the cap is served at once, and the stalled reader gave way for it.
        let mut third = connect_from(4, addr).await.expect("connect");
        let started = Instant::now();
        let (status, _) =
            tokio::time::timeout(Duration::from_secs(5), request(&mut third, "/healthz"))
                .await
                .expect("served within 5 s")
                .expect("served");
        assert_eq!(status, 200);
        assert!(started.elapsed() < Duration::from_secs(1), "{accept}");
        assert!(
            closed_within(&mut stalled, Duration::from_secs(10))
                .await
                .is_some(),
            "{accept}: the stalled reader was not evicted"
        );
        assert_eq!(
            request(&mut other, "/healthz")
                .await
                .expect("other still open")
                .0,
            200,
            "{accept}"
        );
        drop((other, third));
        // Room again for the next round.
        while metric(addr, "tributary_http_connections_open").await > 1.0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    daemon.shutdown().await.expect("shutdown");
}

/// A request head over the 64 KiB read buffer is answered 431 and the connection closed,
/// before the client finishes it; a 40 KB header is served.
#[tokio::test]
async fn an_oversized_request_head_gets_431() {
    let (daemon, _dir) = daemon("", "").await;
    let addr = daemon.local_addr();
    let mut fine = connect_from(2, addr).await.expect("connect");
    fine.write_all(
        format!(
            "GET /healthz HTTP/1.1\r\nHost: feeds.test\r\nX-Big: {}\r\n\r\n",
            "a".repeat(40_000)
        )
        .as_bytes(),
    )
    .await
    .expect("write");
    assert_eq!(read_response(&mut fine).await.expect("served").0, 200);

    let conn = connect_from(3, addr).await.expect("connect");
    let (mut read, mut write) = conn.into_split();
    // 380 KB of header that never ends: hyper's default buffer would take it all.
    let writer = tokio::spawn(async move {
        let _ = write
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: feeds.test\r\nX-Big: ")
            .await;
        for _ in 0..380 {
            if write.write_all(&[b'a'; 1000]).await.is_err() {
                break;
            }
        }
        write
    });
    let mut answer = Vec::new();
    let read_all = tokio::time::timeout(Duration::from_secs(10), read.read_to_end(&mut answer))
        .await
        .expect("closed within 10 s");
    let _ = read_all;
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.starts_with("HTTP/1.1 431"),
        "answered {:?}",
        text.lines().next()
    );
    writer.abort();
    daemon.shutdown().await.expect("shutdown");
}

/// GET `url` from a thread and runtime of its own, so the time is measured even when the
/// daemon's runtime workers are stuck: status and time taken.
fn probe(url: String) -> std::thread::JoinHandle<(u16, Duration)> {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("probe runtime")
            .block_on(timed_get(&url))
    })
}

/// Ends the slow page reads of a store when dropped (also when the test fails).
struct SlowPageReads(std::path::PathBuf);

impl Drop for SlowPageReads {
    fn drop(&mut self) {
        tributary::store::Store::slow_page_reads_for_tests(&self.0, Duration::ZERO);
    }
}

/// While every page read of the store stalls and more uncached feeds are asked for than
/// the runtime has workers, `/healthz` and the cached `/feed.atom` still answer promptly:
/// handlers read the store off the runtime (through `Store::call`), never on a worker, and
/// the stalled renders hold only some of the blocking threads (the runtime is bounded as
/// the binary's is).
#[test]
fn a_slow_store_holds_up_neither_healthz_nor_cached_feeds() {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(tributary::app::blocking_threads())
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(slow_store_holds_up_neither_healthz_nor_cached_feeds());
}

async fn slow_store_holds_up_neither_healthz_nor_cached_feeds() {
    use tributary::store::Store;
    let (_origin, rest) = one_source().await;
    let (daemon, _dir) = daemon("", &rest).await;
    let addr = daemon.local_addr();
    let store = daemon.config().store.path.clone();
    let (status, _) = timed_get(&format!("http://{addr}/feed.atom")).await;
    assert_eq!(status, 200, "warm the cache");

    Store::slow_page_reads_for_tests(&store, Duration::from_secs(60));
    let slow = SlowPageReads(store.clone());
    // More than the runtime has blocking threads.
    let uncached: Vec<_> = (1..=tributary::app::blocking_threads() + 4)
        .map(|n| probe(format!("http://{addr}/feed.atom?limit={n}")))
        .collect();
    // Wait until the renders hang in the store.
    let began = Instant::now();
    while Store::slow_page_reads_waiting(&store) == 0 {
        assert!(
            began.elapsed() < Duration::from_secs(10),
            "the renders never reached the store"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    for path in ["/healthz", "/feed.atom", "/healthz", "/feed.atom"] {
        let (status, took) = probe(format!("http://{addr}{path}"))
            .join()
            .expect("answered while the store stalls");
        assert_eq!(status, 200, "{path}");
        assert!(took < Duration::from_secs(2), "{path} took {took:?}");
    }
    assert!(
        Store::slow_page_reads_waiting(&store) > 0,
        "the renders still hang"
    );
    // The stall ends: the uncached feeds are served too.
    drop(slow);
    for request in uncached {
        let (status, _) = request.join().expect("answered once the store is quick");
        assert_eq!(status, 200);
    }
    daemon.shutdown().await.expect("shutdown");
}
