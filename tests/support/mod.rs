//! Test support: a real origin HTTP server on 127.0.0.1:0 serving fixture feeds, config
//! building, HTTP GETs against the daemon, and checks of output feeds modelled on what the W3C
//! Feed Validator flags (see ../shared/OUTPUT-CHECKS.md).

#![allow(dead_code)]

mod daemon;
mod feeds;

#[allow(unused_imports)]
pub use daemon::*;
#[allow(unused_imports)]
pub use feeds::*;

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use tokio::net::TcpListener;
use tributary::config::{self, Config};

/// What the origin answers on one path.
#[derive(Clone, Debug)]
pub struct Route {
    pub status: u16,
    pub body: Vec<u8>,
    pub content_type: String,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// Wait this long before answering (a slow or hung server).
    pub delay: Option<Duration>,
    /// A `Location` header (for redirects).
    pub location: Option<String>,
}

impl Route {
    pub fn feed(body: impl Into<Vec<u8>>, content_type: &str) -> Route {
        Route {
            status: 200,
            body: body.into(),
            content_type: content_type.to_string(),
            etag: None,
            last_modified: None,
            delay: None,
            location: None,
        }
    }

    /// A redirect to `location`.
    pub fn redirect(status: u16, location: &str) -> Route {
        Route {
            status,
            location: Some(location.to_string()),
            ..Route::feed("", "text/plain")
        }
    }

    pub fn fixture(name: &str) -> Route {
        let content_type = if name.ends_with(".json") {
            "application/feed+json"
        } else {
            "application/xml"
        };
        Route::feed(fixture(name), content_type)
    }

    pub fn status(status: u16, body: &str) -> Route {
        Route {
            status,
            ..Route::feed(body, "text/plain")
        }
    }

    pub fn with_etag(mut self, etag: &str) -> Route {
        self.etag = Some(etag.to_string());
        self
    }

    pub fn with_last_modified(mut self, lm: &str) -> Route {
        self.last_modified = Some(lm.to_string());
        self
    }

    pub fn with_delay(mut self, d: Duration) -> Route {
        self.delay = Some(d);
        self
    }
}

/// One request the origin received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub path: String,
    pub headers: HeaderMap,
}

/// What an origin answers on each path, and every request it received.
struct Table<R> {
    routes: Mutex<HashMap<String, R>>,
    seen: Mutex<Vec<Seen>>,
}

impl<R> Default for Table<R> {
    fn default() -> Self {
        Table {
            routes: Mutex::default(),
            seen: Mutex::default(),
        }
    }
}

impl<R: Clone> Table<R> {
    fn set(&self, path: &str, route: R) {
        self.routes
            .lock()
            .expect("lock")
            .insert(path.to_string(), route);
    }

    /// Records the request and returns the route for its path.
    fn answer(&self, path: &str, headers: HeaderMap) -> Option<R> {
        self.seen.lock().expect("lock").push(Seen {
            path: path.to_string(),
            headers,
        });
        self.routes.lock().expect("lock").get(path).cloned()
    }

    fn requests(&self, path: &str) -> Vec<Seen> {
        self.seen
            .lock()
            .expect("lock")
            .iter()
            .filter(|s| s.path == path)
            .cloned()
            .collect()
    }
}

#[derive(Default)]
struct OriginState {
    table: Table<Route>,
    /// Requests being answered right now, and the most ever at once.
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

/// A feed origin on 127.0.0.1:0.
pub struct Origin {
    pub addr: SocketAddr,
    state: Arc<OriginState>,
}

impl Origin {
    pub async fn start() -> Origin {
        Origin::start_on(Ipv4Addr::LOCALHOST.into()).await
    }

    /// An origin on `ip`:0 (e.g. 127.0.0.2, another host as far as per-host limits go).
    pub async fn start_on(ip: IpAddr) -> Origin {
        let state = Arc::new(OriginState::default());
        let app = Router::new().fallback(counted).with_state(state.clone());
        let listener = TcpListener::bind((ip, 0)).await.expect("bind origin");
        let addr = listener.local_addr().expect("origin addr");
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("origin serves");
        });
        Origin { addr, state }
    }

    pub fn set(&self, path: &str, route: Route) {
        self.state.table.set(path, route);
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Requests received on `path`, oldest first.
    pub fn requests(&self, path: &str) -> Vec<Seen> {
        self.state.table.requests(path)
    }
}

async fn serve(State(state): State<Arc<OriginState>>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    let route = state.table.answer(&path, req.headers().clone());
    let Some(route) = route else {
        return Response::builder()
            .status(404)
            .body(Body::from("no such fixture"))
            .expect("response");
    };
    if let Some(d) = route.delay {
        tokio::time::sleep(d).await;
    }
    let inm = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok());
    if route.etag.is_some() && inm == route.etag.as_deref() {
        return Response::builder()
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .expect("response");
    }
    let mut b = Response::builder()
        .status(route.status)
        .header(header::CONTENT_TYPE, route.content_type.clone());
    if let Some(e) = &route.etag {
        b = b.header(header::ETAG, e);
    }
    if let Some(lm) = &route.last_modified {
        b = b.header(header::LAST_MODIFIED, lm);
    }
    if let Some(l) = &route.location {
        b = b.header(header::LOCATION, l);
    }
    b.body(Body::from(route.body)).expect("response")
}

pub fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture_path(name)).expect("fixture exists")
}

/// Writes a feeds.toml into `dir` (with `store` inside it) and loads it.
/// `sources` are (name, url, interval).
pub fn config(dir: &Path, sources: &[(&str, &str, &str)], extra: &str) -> Config {
    let mut text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nbase_url = \"http://feeds.test\"\n\n\
         [publish]\ntitle = \"Test river\"\ndescription = \"Everything, combined\"\nmax_items = 500\n\n\
         [fetch]\n{extra}\n"
    );
    for (name, url, interval) in sources {
        text.push_str(&format!(
            "[[source]]\nname = \"{name}\"\nurl = \"{url}\"\ninterval = \"{interval}\"\n\n"
        ));
    }
    let path = dir.join("feeds.toml");
    std::fs::write(&path, text).expect("write config");
    config::load(&path).expect("valid test config")
}

/// GET `url`; returns status, Content-Type and body.
pub async fn get(url: &str) -> (u16, String, String) {
    let response = reqwest::get(url).await.expect("request succeeds");
    let status = response.status().as_u16();
    let ct = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (status, ct, response.text().await.expect("body"))
}

/// Checks what the W3C Feed Validator checks most often for Atom, and returns the feed.
/// atom_syndication's reader is strict: any non-RFC 3339 date fails the parse.
pub fn assert_valid_atom(xml: &str, self_url: &str) -> atom_syndication::Feed {
    let feed: atom_syndication::Feed = xml.parse().expect("well-formed, strictly valid Atom");
    assert!(!feed.title.value.is_empty(), "feed title");
    assert!(!feed.id.is_empty(), "feed id");
    assert!(
        !feed.authors.is_empty(),
        "a feed-level author covers entries without one"
    );
    let selfs: Vec<_> = feed.links.iter().filter(|l| l.rel == "self").collect();
    assert_eq!(selfs.len(), 1, "one self link");
    assert_eq!(
        selfs[0].href, self_url,
        "self link equals the requested URL"
    );
    let mut ids = HashSet::new();
    for e in &feed.entries {
        assert!(ids.insert(e.id.clone()), "duplicate Atom id {}", e.id);
        assert!(e.id.starts_with("urn:uuid:"), "{}", e.id);
        assert!(!e.title.value.is_empty(), "entry title");
        assert_eq!(e.title.r#type, atom_syndication::TextType::Text);
        assert!(
            e.content.is_some() || e.links.iter().any(|l| l.rel == "alternate"),
            "an entry needs content or an alternate link"
        );
        for l in &e.links {
            let u = url::Url::parse(&l.href).expect("absolute link");
            assert!(matches!(u.scheme(), "http" | "https"), "{}", l.href);
        }
        if let Some(s) = &e.source {
            assert!(
                !s.id.is_empty() && !s.title.value.is_empty(),
                "source id and title"
            );
        }
    }
    feed
}

/// Checks what the W3C Feed Validator checks most often for RSS 2.0, and returns the channel.
pub fn assert_valid_rss(xml: &str, self_url: &str) -> rss::Channel {
    let channel = rss::Channel::read_from(xml.as_bytes()).expect("well-formed RSS");
    assert!(
        !channel.title.is_empty() && !channel.link.is_empty() && !channel.description.is_empty()
    );
    let atom = channel.atom_ext.as_ref().expect("atom:link rel=self");
    assert!(
        atom.links
            .iter()
            .any(|l| l.rel == "self" && l.href == self_url)
    );
    let mut guids = HashSet::new();
    for item in &channel.items {
        let guid = item.guid.as_ref().expect("every item has a guid");
        assert!(
            guids.insert(guid.value.clone()),
            "duplicate guid {}",
            guid.value
        );
        assert!(item.title.is_some() || item.description.is_some());
        let date = item.pub_date.as_deref().expect("pubDate");
        chrono::DateTime::parse_from_rfc2822(date).expect("pubDate is RFC 822");
        if let Some(link) = &item.link {
            url::Url::parse(link).expect("absolute link");
        }
        if let Some(enc) = &item.enclosure {
            url::Url::parse(&enc.url).expect("absolute enclosure");
            enc.length.parse::<u64>().expect("numeric enclosure length");
        }
    }
    if let Some(d) = &channel.last_build_date {
        chrono::DateTime::parse_from_rfc2822(d).expect("lastBuildDate is RFC 822");
    }
    channel
}

// ---------------------------------------------------------------------------------------------
// Additions for tests/hostile.rs: in-flight counting on `Origin`, raw TOML configs, and a
// hand-written HTTP/1.1 origin for behaviour axum will not produce.

impl Origin {
    /// The most requests this origin was answering at the same time.
    pub fn max_in_flight(&self) -> usize {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }
}

/// Counts a request as in flight while `serve` answers it (also when the client gives up and
/// the handler is dropped).
async fn counted(state: State<Arc<OriginState>>, req: Request) -> Response {
    struct InFlight(Arc<OriginState>);
    impl Drop for InFlight {
        fn drop(&mut self) {
            self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
        }
    }
    let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    state.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let _guard = InFlight(state.0.clone());
    serve(state, req).await
}

/// The `[server]`, `[publish]` and `[fetch]` tables `config` writes, with `fetch_extra` in
/// `[fetch]`; append `[[source]]` tables and pass the whole to [`config_raw`].
pub fn config_prelude(fetch_extra: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nbase_url = \"http://feeds.test\"\n\n\
         [publish]\ntitle = \"Test river\"\ndescription = \"Everything, combined\"\nmax_items = 500\n\n\
         [fetch]\n{fetch_extra}\n\n"
    )
}

/// Writes `text` as feeds.toml into `dir` (store inside it) and loads it.
pub fn config_raw(dir: &Path, text: &str) -> Config {
    let path = dir.join("feeds.toml");
    std::fs::write(&path, text).expect("write config");
    config::load(&path).expect("valid test config")
}

/// What [`RawOrigin`] does on one path. Every response carries `Connection: close`.
#[derive(Clone, Debug)]
pub enum RawRoute {
    /// A whole response with these headers; Content-Length is added.
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// 200 with the Content-Length of `body`, sent one byte every `every`.
    Trickle { body: Vec<u8>, every: Duration },
    /// 200 with a chunked body that never ends.
    EndlessChunked,
    /// 200 with `Content-Length: len`, then bytes until the client goes away.
    Huge { len: u64 },
    /// 200 promising `promised` bytes, sending `sent`, then resetting the connection
    /// (SO_LINGER 0, so the peer gets an RST rather than a clean end of stream).
    ResetMidBody { promised: usize, sent: Vec<u8> },
}

impl RawRoute {
    pub fn respond(status: u16, headers: &[(&str, &str)], body: impl Into<Vec<u8>>) -> RawRoute {
        RawRoute::Respond {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.into(),
        }
    }

    pub fn feed(body: impl Into<Vec<u8>>, content_type: &str) -> RawRoute {
        RawRoute::respond(200, &[("Content-Type", content_type)], body)
    }

    pub fn redirect(status: u16, location: &str) -> RawRoute {
        RawRoute::respond(status, &[("Location", location)], "")
    }
}

#[derive(Default)]
struct RawState {
    table: Table<RawRoute>,
}

/// A hostile origin: HTTP/1.1 written by hand on a raw `TcpListener`, one connection per
/// request, so responses can lie about their length, trickle, never end or break off.
pub struct RawOrigin {
    pub addr: SocketAddr,
    state: Arc<RawState>,
}

impl RawOrigin {
    pub async fn start() -> RawOrigin {
        RawOrigin::start_on(Ipv4Addr::LOCALHOST.into()).await
    }

    pub async fn start_on(ip: IpAddr) -> RawOrigin {
        let state = Arc::new(RawState::default());
        let listener = TcpListener::bind((ip, 0)).await.expect("bind raw origin");
        let addr = listener.local_addr().expect("raw origin addr");
        let accepting = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(raw_connection(stream, accepting.clone()));
            }
        });
        RawOrigin { addr, state }
    }

    pub fn set(&self, path: &str, route: RawRoute) {
        self.state.table.set(path, route);
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Requests received on `path`, oldest first.
    pub fn requests(&self, path: &str) -> Vec<Seen> {
        self.state.table.requests(path)
    }
}

async fn raw_connection(mut stream: tokio::net::TcpStream, state: Arc<RawState>) {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > 64 * 1024 {
            return;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let target = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .unwrap_or("/");
    let path = target.split('?').next().unwrap_or("/").to_string();
    let mut headers = HeaderMap::new();
    for line in lines {
        if let Some((name, value)) = line.split_once(':')
            && let (Ok(n), Ok(v)) = (
                axum::http::HeaderName::from_bytes(name.trim().as_bytes()),
                axum::http::HeaderValue::from_str(value.trim()),
            )
        {
            headers.append(n, v);
        }
    }
    let route = state.table.answer(&path, headers);
    let route = route.unwrap_or_else(|| RawRoute::respond(404, &[], "no such route"));
    // Write errors mean the client went away: that ends the exchange either way.
    let _ = raw_respond(&mut stream, route).await;
}

fn raw_head(status: u16, headers: &[(String, String)]) -> Vec<u8> {
    let reason = StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Whatever");
    let mut head = format!("HTTP/1.1 {status} {reason}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    head.into_bytes()
}

async fn raw_respond(stream: &mut tokio::net::TcpStream, route: RawRoute) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let length = |n: u64| vec![("Content-Length".to_string(), n.to_string())];
    match route {
        RawRoute::Respond {
            status,
            mut headers,
            body,
        } => {
            headers.extend(length(body.len() as u64));
            stream.write_all(&raw_head(status, &headers)).await?;
            stream.write_all(&body).await?;
            stream.shutdown().await?;
        }
        RawRoute::Trickle { body, every } => {
            let mut headers = length(body.len() as u64);
            headers.push(("Content-Type".into(), "application/rss+xml".into()));
            stream.write_all(&raw_head(200, &headers)).await?;
            for b in body {
                stream.write_all(&[b]).await?;
                stream.flush().await?;
                tokio::time::sleep(every).await;
            }
            stream.shutdown().await?;
        }
        RawRoute::EndlessChunked => {
            let headers = vec![
                (
                    "Content-Type".to_string(),
                    "application/rss+xml".to_string(),
                ),
                ("Transfer-Encoding".to_string(), "chunked".to_string()),
            ];
            stream.write_all(&raw_head(200, &headers)).await?;
            let mut chunk = b"10000\r\n".to_vec();
            chunk.extend(std::iter::repeat_n(b'x', 0x10000));
            chunk.extend_from_slice(b"\r\n");
            loop {
                stream.write_all(&chunk).await?;
            }
        }
        RawRoute::Huge { len } => {
            let mut headers = length(len);
            headers.push(("Content-Type".into(), "application/rss+xml".into()));
            stream.write_all(&raw_head(200, &headers)).await?;
            let block = vec![b'x'; 64 * 1024];
            let mut left = len;
            while left > 0 {
                let n = left.min(block.len() as u64) as usize;
                stream.write_all(&block[..n]).await?;
                left -= n as u64;
            }
            stream.shutdown().await?;
        }
        RawRoute::ResetMidBody { promised, sent } => {
            let mut headers = length(promised as u64);
            headers.push(("Content-Type".into(), "application/rss+xml".into()));
            stream.write_all(&raw_head(200, &headers)).await?;
            stream.write_all(&sent).await?;
            stream.flush().await?;
            // Let the client take the head and the first bytes, then break off.
            tokio::time::sleep(Duration::from_millis(100)).await;
            stream.set_zero_linger()?;
        }
    }
    Ok(())
}

/// A child process (the real daemon) that is killed if the test ends before it stopped.
pub struct KillOnDrop(pub Option<std::process::Child>);

impl KillOnDrop {
    /// Spawns `cmd` with stderr piped and stdout discarded.
    pub fn spawn(cmd: &mut std::process::Command) -> KillOnDrop {
        let child = cmd
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawns");
        KillOnDrop(Some(child))
    }

    pub fn id(&self) -> u32 {
        self.0.as_ref().map(std::process::Child::id).unwrap_or(0)
    }

    /// The child's stderr, line by line, as it comes.
    pub fn stderr_lines(&mut self) -> std::sync::mpsc::Receiver<String> {
        use std::io::BufRead;
        let stderr = self
            .0
            .as_mut()
            .and_then(|c| c.stderr.take())
            .expect("stderr piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        rx
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The real binary, as tests that run it as a process use it.

/// The tributary binary with none of the environment a test runner or a systemd session
/// could leak into it (config path, notify socket, directories, proxies), logging at
/// `rust_log`.
pub fn tributary_command(rust_log: &str) -> std::process::Command {
    // `option_env!`: examples include this module too, and have no binary path.
    let mut c =
        std::process::Command::new(option_env!("CARGO_BIN_EXE_tributary").unwrap_or("tributary"));
    for var in [
        "TRIBUTARY_CONFIG",
        "NOTIFY_SOCKET",
        "WATCHDOG_USEC",
        "WATCHDOG_PID",
        "STATE_DIRECTORY",
        "CONFIGURATION_DIRECTORY",
        "JOURNAL_STREAM",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "no_proxy",
    ] {
        c.env_remove(var);
    }
    c.env("RUST_LOG", rust_log);
    c
}

/// A loopback port nothing listens on (at the moment of asking).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// Waits for the child to exit; panics if it is still alive after `within`.
pub fn exits_within(
    child: &mut KillOnDrop,
    within: std::time::Duration,
) -> std::process::ExitStatus {
    let pid = child.id();
    let mut process = child.0.take().expect("running");
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let status = process.wait();
        let _ = tx.send(());
        (process, status)
    });
    let exited = rx.recv_timeout(within).is_ok();
    if !exited {
        // Kill it so the waiter ends, then fail.
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
    let (process, status) = waiter.join().expect("waiter");
    drop(process);
    assert!(
        exited,
        "the daemon was still running {within:?} after SIGTERM"
    );
    status.expect("wait")
}

/// Sends `sig` (`-TERM`, `-HUP`, ...) to `pid`.
pub fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(ok.success());
}

/// Log lines until one contains every one of `what`; panics after `within`.
pub fn wait_for_line(
    lines: &std::sync::mpsc::Receiver<String>,
    what: &[&str],
    within: Duration,
) -> String {
    let deadline = std::time::Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = lines
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no log line with {what:?} within {within:?}"));
        if what.iter().all(|w| line.contains(w)) {
            return line;
        }
    }
}
