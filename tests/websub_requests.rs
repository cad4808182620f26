//! What anyone may send to the WebSub routes (`POST /hub`, `/websub/callback/{token}`),
//! through the real daemon over raw TCP: a body for a callback we do not have is not read,
//! and slow uploads hold only the WebSub routes' own places, never those readers need nor
//! those hubs' deliveries need, and one client address holds only a few `/hub` places.

mod support;

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use support::{Item, Origin, Route, Rss, config_raw, get};
use tributary::serve::{MAX_HUB_REQUESTS_PER_CLIENT, MAX_WEBSUB_REQUESTS};

/// A daemon with one polled source and a written `base_url` (so the subscriber is on).
async fn daemon(dir: &std::path::Path) -> (tributary::app::Daemon, Origin) {
    daemon_with(dir, "").await
}

/// [`daemon`] with more `[server]` keys.
async fn daemon_with(dir: &std::path::Path, server: &str) -> (tributary::app::Daemon, Origin) {
    let origin = Origin::start().await;
    origin.set(
        "/feed.xml",
        Route::feed(
            Rss::new("o", "https://example.org/")
                .item(Item::new("a").title("A"))
                .xml(),
            "application/rss+xml",
        ),
    );
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nbase_url = \"http://127.0.0.1:9\"\n{server}\n\n\
         [fetch]\nallow_networks = [\"127.0.0.0/8\"]\n\n\
         [[source]]\nname = \"o\"\nurl = \"{}\"\n",
        origin.url("/feed.xml"),
    );
    let daemon = support::start(config_raw(dir, &text)).await;
    (daemon, origin)
}

/// The status line of the answer on `stream`, read within 10 s.
async fn status_line(stream: &mut TcpStream) -> String {
    let mut buf = vec![0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
        .await
        .expect("an answer in time")
        .expect("read");
    let text = String::from_utf8_lossy(&buf[..n]).to_string();
    text.lines().next().unwrap_or_default().to_string()
}

#[tokio::test]
async fn a_delivery_to_a_callback_we_do_not_have_is_refused_before_its_body() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (daemon, _origin) = daemon(dir.path()).await;
    let mut stream = TcpStream::connect(daemon.local_addr())
        .await
        .expect("connect");
    // 15 MB announced, a few bytes sent: the answer must not wait for the rest.
    let head = format!(
        "POST /websub/callback/{} HTTP/1.1\r\nHost: x\r\nContent-Type: application/atom+xml\r\n\
         X-Hub-Signature: sha256=00\r\nContent-Length: 15000000\r\n\r\n<feed",
        "ab".repeat(32)
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    let line = status_line(&mut stream).await;
    assert!(line.starts_with("HTTP/1.1 410"), "{line}");
    daemon.shutdown().await.expect("stops");
}

#[tokio::test]
async fn slow_websub_uploads_are_shed_and_hold_no_place_readers_need() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (daemon, _origin) = daemon(dir.path()).await;
    let addr = daemon.local_addr();
    let base = format!("http://{addr}");
    // Every WebSub place taken by a request that drips its body (one byte of 100).
    let mut held = Vec::new();
    for _ in 0..MAX_WEBSUB_REQUESTS {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(
            b"POST /hub HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
              Content-Length: 100\r\n\r\nh",
        )
        .await
        .expect("write");
        held.push(s);
    }
    // The next one is answered 503 at once, once the server has taken them all up (each
    // probe is a whole request, so one that finds a place is answered at once too).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let mut probe = TcpStream::connect(addr).await.expect("connect");
        probe
            .write_all(
                b"POST /hub HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
                  Content-Length: 0\r\nConnection: close\r\n\r\n",
            )
            .await
            .expect("write");
        let line = status_line(&mut probe).await;
        if line.starts_with("HTTP/1.1 503") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never shed while {MAX_WEBSUB_REQUESTS} uploads drip: {line}"
        );
        tokio::task::yield_now().await;
    }
    // A hub's delivery has places of its own: still answered (410 for a token we do not
    // hold), not 503.
    let mut delivery = TcpStream::connect(addr).await.expect("connect");
    delivery
        .write_all(
            b"POST /websub/callback/nothere HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\
              Connection: close\r\n\r\n{}",
        )
        .await
        .expect("write");
    let line = status_line(&mut delivery).await;
    assert!(line.starts_with("HTTP/1.1 410"), "{line}");
    // Readers are served meanwhile, and so are the probes.
    let (status, _, body) = get(&format!("{base}/feed.atom")).await;
    assert_eq!(status, 200, "{body}");
    let (status, _, _) = get(&format!("{base}/healthz")).await;
    assert_eq!(status, 200);
    // Once the uploads go, the places are free again.
    drop(held);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let client = reqwest::Client::new();
        let answer = client
            .post(format!("{base}/hub"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("hub.mode=subscribe")
            .send()
            .await
            .expect("post");
        if answer.status() == 400 {
            break;
        }
        assert_eq!(answer.status(), 503);
        assert!(tokio::time::Instant::now() < deadline, "places never freed");
        tokio::task::yield_now().await;
    }
    daemon.shutdown().await.expect("stops");
}

/// A connection to `addr` from the loopback address `local`.
async fn connect_from(local: std::net::IpAddr, addr: std::net::SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(std::net::SocketAddr::new(local, 0))
        .expect("bind");
    socket.connect(addr).await.expect("connect")
}

/// A POST /hub from `local` that sends its head and one byte of a 100-byte body, and holds.
async fn drip_from(local: std::net::IpAddr, addr: std::net::SocketAddr) -> TcpStream {
    let mut s = connect_from(local, addr).await;
    s.write_all(
        b"POST /hub HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
          Content-Length: 100\r\n\r\nh",
    )
    .await
    .expect("write");
    s
}

/// A whole (empty) POST /hub from `local`: its status line.
async fn probe_from(local: std::net::IpAddr, addr: std::net::SocketAddr) -> String {
    let mut s = connect_from(local, addr).await;
    s.write_all(
        b"POST /hub HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
          Content-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await
    .expect("write");
    status_line(&mut s).await
}

#[tokio::test]
async fn one_client_address_holds_only_a_few_hub_places_and_a_slow_one_is_cut_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    // No trusted proxy: every loopback address is a client of its own.
    let (daemon, _origin) = daemon_with(dir.path(), "trusted_proxies = []").await;
    let addr = daemon.local_addr();
    let one: std::net::IpAddr = [127, 0, 0, 1].into();
    let other: std::net::IpAddr = [127, 0, 0, 2].into();
    let mut held = Vec::new();
    for _ in 0..MAX_HUB_REQUESTS_PER_CLIENT {
        held.push(drip_from(one, addr).await);
    }
    // Once the server holds them all, the address's next request is refused at once...
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let line = probe_from(one, addr).await;
        if line.starts_with("HTTP/1.1 503") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never refused: {line}"
        );
        tokio::task::yield_now().await;
    }
    // ...while another address is served (400: an empty form).
    let line = probe_from(other, addr).await;
    assert!(line.starts_with("HTTP/1.1 400"), "{line}");
    // A dripping request is cut off at HUB_REQUEST_TIMEOUT (408), not held for long.
    let started = tokio::time::Instant::now();
    let line = status_line_within(&mut held[0], Duration::from_secs(20)).await;
    assert!(line.starts_with("HTTP/1.1 408"), "{line}");
    assert!(
        started.elapsed() <= tributary::serve::HUB_REQUEST_TIMEOUT + Duration::from_secs(2),
        "cut off after {:?}",
        started.elapsed()
    );
    daemon.shutdown().await.expect("stops");
}

/// The status line of the answer on `stream`, read within `within`.
async fn status_line_within(stream: &mut TcpStream, within: Duration) -> String {
    let mut buf = vec![0u8; 512];
    let n = tokio::time::timeout(within, stream.read(&mut buf))
        .await
        .expect("an answer in time")
        .expect("read");
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}
