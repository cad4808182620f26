//! The HTTP connections: hyper's HTTP/1 server under our own connection tracking, so that idle
//! and slow clients cannot hold the server.
//!
//! - **Header timeout**: a new connection must deliver its first request's headers within
//!   `[server] header_timeout` of being accepted; a later request's headers must be complete
//!   within `header_timeout` of its first byte. A slowloris client is cut off there.
//! - **Idle timeout**: a keep-alive connection with no request for `[server] idle_timeout`
//!   (counted from the end of the last response, or the last byte written) is closed.
//! - **A stalled response** (the client stops reading) is dropped after no progress for the
//!   longer of `idle_timeout` and the request timeout.
//! - **At the cap** (`[server] max_connections`) a new connection is never kept waiting while
//!   another sits idle: the connection idle longest (between requests, before its first
//!   request, or in a partial header) gives way. Only when every connection is serving a
//!   request does the next one wait in the listen backlog.
//! - **Per client address** (`[server] max_connections_per_ip`, an IPv6 /64 counting as one
//!   address): a connection over the limit is closed at once. Trusted proxies
//!   (`[server] trusted_proxies`, loopback by default) are exempt.
//!
//! hyper's own `header_read_timeout` is not used: in hyper 1.x its timer starts whenever the
//! connection waits for a request head, so between keep-alive requests too, which would make
//! the idle timeout the header timeout.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::ServerConfig;
use crate::daemon::metrics::Metrics;

/// How the server treats connections; from `[server]`.
#[derive(Clone, Debug)]
pub struct Settings {
    pub max_connections: usize,
    pub max_per_address: usize,
    pub trusted: Vec<ipnet::IpNet>,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    /// A response that makes no progress this long is dropped.
    pub stall_timeout: Duration,
}

/// The read buffer of a connection, and so the largest request head (hyper's minimum is
/// 8 KiB, its default about 400 KB).
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// The address a request's client is counted under (an IPv6 /64 as one), in every
/// request's extensions; `None` for a trusted proxy (whose clients cannot be told apart).
#[derive(Clone, Copy, Debug)]
pub struct ClientAddress(pub Option<IpAddr>);

/// How long a stop waits for responses in flight before closing their connections: short,
/// so that an open connection never holds the process up (systemd, and the 2 s a stop may
/// take in all).
pub const STOP_GRACE: Duration = Duration::from_millis(800);

/// How long one request may take (then it is answered 408; see [`super::router`]).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// File descriptors kept for everything but client connections (the store, outgoing fetches,
/// the config watch, the listener).
pub const RESERVED_FDS: u64 = 256;

impl Settings {
    pub fn from_config(c: &ServerConfig) -> Settings {
        Settings {
            max_connections: c.max_connections,
            max_per_address: c.max_connections_per_ip,
            trusted: c.trusted_proxies.clone(),
            header_timeout: c.header_timeout,
            idle_timeout: c.idle_timeout,
            stall_timeout: c.idle_timeout.max(REQUEST_TIMEOUT),
        }
    }

    /// Lowers `max_connections` to what the process's file-descriptor limit can hold, less
    /// [`RESERVED_FDS`] (with a warning), so that accepting never fails for lack of them.
    pub fn within_fd_limit(mut self, soft_limit: Option<u64>) -> Settings {
        if let Some(limit) = soft_limit {
            let room = usize::try_from(limit.saturating_sub(RESERVED_FDS))
                .unwrap_or(usize::MAX)
                .max(1);
            if room < self.max_connections {
                tracing::warn!(
                    max_connections = self.max_connections,
                    fd_limit = limit,
                    serving_at_most = room,
                    "the file-descriptor limit (LimitNOFILE) is too low for [server] max_connections; raise it or lower max_connections"
                );
                self.max_connections = room;
            }
        }
        self
    }

    /// The address a client is counted under, or `None` for a trusted proxy.
    fn address_key(&self, ip: IpAddr) -> Option<IpAddr> {
        let ip = ip.to_canonical();
        if self.trusted.iter().any(|n| n.contains(&ip)) {
            return None;
        }
        Some(match ip {
            IpAddr::V4(_) => ip,
            // One host usually has a whole /64.
            IpAddr::V6(v6) => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(bits.into())
            }
        })
    }
}

/// Raises the soft RLIMIT_NOFILE to the hard limit and returns the soft limit in force.
pub fn raise_fd_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return None;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit.rlim_cur = limit.rlim_max;
            }
        }
    }
    // RLIM_INFINITY is u64::MAX.
    #[allow(clippy::unnecessary_cast)]
    Some(limit.rlim_cur as u64)
}

/// Why a connection ended, for the metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Closed {
    /// Over the per-address limit: closed when accepted.
    PerAddress,
    /// Gave way to a new connection at the cap.
    Evicted,
    HeaderTimeout,
    IdleTimeout,
    /// A response the client stopped reading.
    Stalled,
}

impl Closed {
    pub fn label(self) -> &'static str {
        match self {
            Closed::PerAddress => "per_address_limit",
            Closed::Evicted => "evicted",
            Closed::HeaderTimeout => "header_timeout",
            Closed::IdleTimeout => "idle_timeout",
            Closed::Stalled => "stalled",
        }
    }
}

/// Every open connection, for the cap, the per-address counts and eviction.
#[derive(Default)]
struct Registry {
    next_id: u64,
    next_seq: u64,
    conns: HashMap<u64, Registered>,
    /// Connections serving no request, by when they became so (oldest first).
    idle: BTreeMap<u64, u64>,
    per_address: HashMap<IpAddr, usize>,
}

struct Registered {
    address: Option<IpAddr>,
    /// Its key in `idle`, while it serves no request.
    idle_seq: Option<u64>,
    evict: CancellationToken,
}

impl Registry {
    fn remove(&mut self, id: u64) -> Option<Registered> {
        let r = self.conns.remove(&id)?;
        if let Some(seq) = r.idle_seq {
            self.idle.remove(&seq);
        }
        if let Some(a) = r.address
            && let Some(n) = self.per_address.get_mut(&a)
        {
            *n -= 1;
            if *n == 0 {
                self.per_address.remove(&a);
            }
        }
        Some(r)
    }

    fn set_idle(&mut self, id: u64, idle: bool) {
        let seq = self.next_seq;
        let Some(r) = self.conns.get_mut(&id) else {
            return;
        };
        match (idle, r.idle_seq) {
            (true, None) => {
                r.idle_seq = Some(seq);
                self.idle.insert(seq, id);
                self.next_seq += 1;
            }
            (false, Some(old)) => {
                r.idle_seq = None;
                self.idle.remove(&old);
            }
            _ => {}
        }
    }

    /// Whether a new connection can be taken now (below the cap, or one to evict).
    fn has_room(&self, max: usize) -> bool {
        self.conns.len() < max || !self.idle.is_empty()
    }
}

/// What the accept loop, the connections and their requests share.
struct Shared {
    registry: Mutex<Registry>,
    /// Signalled when a connection closes or becomes idle.
    room: tokio::sync::Notify,
    settings: Settings,
    metrics: Metrics,
}

impl Shared {
    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set_idle(&self, id: u64, idle: bool) {
        self.registry().set_idle(id, idle);
        if idle {
            self.room.notify_one();
        }
    }

    /// Registers a connection from `address`, evicting the longest-idle one at the cap.
    /// `Err(true)`: over the per-address limit; `Err(false)`: no room yet.
    fn admit(&self, address: Option<IpAddr>) -> Result<(u64, CancellationToken), bool> {
        let mut reg = self.registry();
        if let Some(a) = address
            && reg.per_address.get(&a).copied().unwrap_or(0) >= self.settings.max_per_address
        {
            return Err(true);
        }
        while reg.conns.len() >= self.settings.max_connections {
            let Some((_, victim)) = reg.idle.pop_first() else {
                return Err(false);
            };
            if let Some(r) = reg.conns.get_mut(&victim) {
                r.idle_seq = None;
            }
            if let Some(r) = reg.remove(victim) {
                r.evict.cancel();
                self.metrics
                    .record_connection_closed(Closed::Evicted.label());
            }
        }
        let id = reg.next_id;
        reg.next_id += 1;
        let evict = CancellationToken::new();
        reg.conns.insert(
            id,
            Registered {
                address,
                idle_seq: None,
                evict: evict.clone(),
            },
        );
        if let Some(a) = address {
            *reg.per_address.entry(a).or_default() += 1;
        }
        // Idle from the start: a connection that sends nothing is the first to give way.
        reg.set_idle(id, true);
        self.metrics.set_connections_open(reg.conns.len());
        Ok((id, evict))
    }

    fn release(&self, id: u64) {
        let mut reg = self.registry();
        reg.remove(id);
        self.metrics.set_connections_open(reg.conns.len());
        drop(reg);
        self.room.notify_one();
    }
}

/// Serves `router` on `listener` until `stop` is cancelled; then in-flight requests finish
/// (for at most [`STOP_GRACE`]) and it returns.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    settings: Settings,
    metrics: Metrics,
    stop: CancellationToken,
) {
    let shared = Arc::new(Shared {
        registry: Mutex::default(),
        room: tokio::sync::Notify::new(),
        settings,
        metrics,
    });
    let connections = TaskTracker::new();
    let force = CancellationToken::new();
    'accept: loop {
        // Wait for room before accepting: below the cap, or an idle connection to evict.
        loop {
            let room = shared.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            if shared.registry().has_room(shared.settings.max_connections) {
                break;
            }
            tokio::select! {
                () = room => {}
                () = stop.cancelled() => break 'accept,
            }
        }
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(100)) => continue,
                        () = stop.cancelled() => break,
                    }
                }
            },
            () = stop.cancelled() => break,
        };
        let address = shared.settings.address_key(peer.ip());
        let (id, evict) = loop {
            let room = shared.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            match shared.admit(address) {
                Ok(admitted) => break admitted,
                Err(true) => {
                    shared
                        .metrics
                        .record_connection_closed(Closed::PerAddress.label());
                    tracing::debug!(%peer, "over the per-address connection limit; closed");
                    drop(stream);
                    continue 'accept;
                }
                // Every connection is serving a request (a race with the check above).
                Err(false) => tokio::select! {
                    () = room => {}
                    () = stop.cancelled() => break 'accept,
                },
            }
        };
        let connection = Connection {
            id,
            peer,
            shared: shared.clone(),
            evict,
            stop: stop.clone(),
            force: force.clone(),
        };
        connections.spawn(connection.run(stream, router.clone()));
    }
    drop(listener);
    connections.close();
    if tokio::time::timeout(STOP_GRACE, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            grace_ms = STOP_GRACE.as_millis() as u64,
            "responses still in flight after the grace; closing their connections"
        );
        force.cancel();
        connections.wait().await;
    }
}

/// The timing of one connection, shared by its task, its socket and its requests.
struct Track {
    accepted: Instant,
    /// Requests being served (0 or 1 in HTTP/1, which answers in order).
    busy: usize,
    /// Requests begun so far.
    requests: u64,
    /// When the last response ended (or the connection was accepted).
    idle_since: Instant,
    /// The first byte of a request head not yet complete (while not busy).
    head_started: Option<Instant>,
    /// The last byte read or written.
    last_io: Instant,
}

impl Track {
    fn new(now: Instant) -> Track {
        Track {
            accepted: now,
            busy: 0,
            requests: 0,
            idle_since: now,
            head_started: None,
            last_io: now,
        }
    }

    /// When the connection is due to be closed, and why.
    fn deadline(&self, s: &Settings) -> (Instant, Closed) {
        if self.busy > 0 {
            (self.last_io + s.stall_timeout, Closed::Stalled)
        } else if self.requests == 0 {
            (self.accepted + s.header_timeout, Closed::HeaderTimeout)
        } else if let Some(first) = self.head_started {
            (first + s.header_timeout, Closed::HeaderTimeout)
        } else {
            (
                self.idle_since.max(self.last_io) + s.idle_timeout,
                Closed::IdleTimeout,
            )
        }
    }
}

type SharedTrack = Arc<Mutex<Track>>;

fn lock(track: &SharedTrack) -> MutexGuard<'_, Track> {
    track.lock().unwrap_or_else(PoisonError::into_inner)
}

struct Connection {
    id: u64,
    peer: SocketAddr,
    shared: Arc<Shared>,
    /// Cancelled when the connection is to give way to a new one.
    evict: CancellationToken,
    /// The daemon is stopping: finish the request in flight, take no more.
    stop: CancellationToken,
    /// The stop's grace is over: close now.
    force: CancellationToken,
}

/// Ends the connection's registration however its task ends.
struct Registration {
    id: u64,
    shared: Arc<Shared>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.shared.release(self.id);
    }
}

impl Connection {
    async fn run(self, stream: TcpStream, router: Router) {
        let Connection {
            id,
            peer,
            shared,
            evict,
            stop,
            force,
        } = self;
        let _registration = Registration {
            id,
            shared: shared.clone(),
        };
        let _ = stream.set_nodelay(true);
        let track: SharedTrack = Arc::new(Mutex::new(Track::new(Instant::now())));
        let io = TokioIo::new(Tracked {
            stream,
            track: track.clone(),
        });
        let client = ClientAddress(shared.settings.address_key(peer.ip()));
        let service = {
            let (track, shared) = (track.clone(), shared.clone());
            hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(client);
                let busy = Busy::begin(id, &track, &shared);
                let mut router = router.clone();
                async move {
                    // Router is always ready (its poll_ready returns Ready at once).
                    let response = tower::Service::call(&mut router, request).await?;
                    Ok::<_, std::convert::Infallible>(
                        response.map(|body| axum::body::Body::new(Guarded { body, _busy: busy })),
                    )
                }
            })
        };
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            // Our own header timeout, below; see the module docs.
            .header_read_timeout(None)
            // A request head larger than this is answered 431 and the connection closed,
            // so an unfinished one holds at most this much.
            .max_buf_size(MAX_HEAD_BYTES)
            .keep_alive(true);
        let conn = builder.serve_connection(io, service);
        tokio::pin!(conn);
        let settings = &shared.settings;
        let first = lock(&track).deadline(settings).0;
        let sleep = tokio::time::sleep_until(first);
        tokio::pin!(sleep);
        let evicted = evict.cancelled();
        tokio::pin!(evicted);
        let stopping = stop.cancelled();
        tokio::pin!(stopping);
        let forced = force.cancelled();
        tokio::pin!(forced);
        // Since when the connection has been asked to close (evicted or stopping).
        let mut closing: Option<Instant> = None;
        let ended: Result<(), Closed> = std::future::poll_fn(|cx| {
            if forced.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Ok(()));
            }
            let asked =
                stopping.as_mut().poll(cx).is_ready() || evicted.as_mut().poll(cx).is_ready();
            if asked && closing.is_none() {
                closing = Some(Instant::now());
                // hyper closes an idle or untouched connection at once (flushing what it
                // has written), and one serving a request after its response.
                conn.as_mut().graceful_shutdown();
            }
            if asked {
                let t = lock(&track);
                // A partial request head: hyper would wait for the rest.
                if t.busy == 0 && t.head_started.is_some() {
                    return Poll::Ready(Ok(()));
                }
            }
            if let Poll::Ready(result) = conn.as_mut().poll(cx) {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return Poll::Ready(Ok(()));
            }
            // A timer that fires early is re-armed a few times, then the task is re-polled.
            for _ in 0..4 {
                let (mut due, why) = lock(&track).deadline(settings);
                if let Some(since) = closing
                    && lock(&track).busy == 0
                {
                    due = due.min(since + settings.header_timeout);
                }
                if Instant::now() >= due {
                    return Poll::Ready(Err(why));
                }
                if sleep.deadline() != due {
                    sleep.as_mut().reset(due);
                }
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
            }
            cx.waker().wake_by_ref();
            Poll::Pending
        })
        .await;
        if let Err(why) = ended {
            tracing::debug!(%peer, reason = why.label(), "connection closed");
            shared.metrics.record_connection_closed(why.label());
        }
    }
}

/// A request being served: the connection is busy from the request head until its response
/// body is done (dropped by hyper).
struct Busy {
    id: u64,
    track: SharedTrack,
    shared: Arc<Shared>,
}

impl Busy {
    fn begin(id: u64, track: &SharedTrack, shared: &Arc<Shared>) -> Busy {
        {
            let mut t = lock(track);
            t.busy += 1;
            t.requests += 1;
            t.head_started = None;
            t.last_io = Instant::now();
        }
        shared.set_idle(id, false);
        Busy {
            id,
            track: track.clone(),
            shared: shared.clone(),
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let idle = {
            let mut t = lock(&self.track);
            t.busy = t.busy.saturating_sub(1);
            if t.busy == 0 {
                t.idle_since = Instant::now();
                t.head_started = None;
            }
            t.busy == 0
        };
        if idle {
            self.shared.set_idle(self.id, true);
        }
    }
}

/// A response body that keeps its connection busy until hyper is done with it.
struct Guarded {
    body: axum::body::Body,
    _busy: Busy,
}

impl http_body::Body for Guarded {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// The client socket, noting when bytes move.
struct Tracked {
    stream: TcpStream,
    track: SharedTrack,
}

impl tokio::io::AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            let now = Instant::now();
            let mut t = lock(&self.track);
            t.last_io = now;
            if t.busy == 0 && t.head_started.is_none() {
                t.head_started = Some(now);
            }
        }
        polled
    }
}

impl tokio::io::AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            lock(&self.track).last_io = Instant::now();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            lock(&self.track).last_io = Instant::now();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            max_connections: 2,
            max_per_address: 1,
            trusted: vec![ipnet::IpNet::new_assert([127, 0, 0, 1].into(), 32)],
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            stall_timeout: Duration::from_secs(60),
        }
    }

    #[test]
    fn ipv6_clients_count_by_64_and_trusted_are_exempt() {
        let s = settings();
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("address");
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().expect("address");
        assert_eq!(s.address_key(a), s.address_key(b));
        assert_eq!(s.address_key([127, 0, 0, 1].into()), None);
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().expect("address");
        assert_eq!(s.address_key(mapped), None);
        assert!(s.address_key([127, 0, 0, 2].into()).is_some());
    }

    #[test]
    fn deadlines_follow_the_phase() {
        let s = settings();
        let t0 = Instant::now();
        let mut t = Track::new(t0);
        assert_eq!(
            t.deadline(&s),
            (t0 + s.header_timeout, Closed::HeaderTimeout)
        );
        t.requests = 1;
        assert_eq!(t.deadline(&s), (t0 + s.idle_timeout, Closed::IdleTimeout));
        t.head_started = Some(t0 + Duration::from_secs(5));
        assert_eq!(
            t.deadline(&s),
            (t0 + Duration::from_secs(15), Closed::HeaderTimeout)
        );
        t.busy = 1;
        assert_eq!(t.deadline(&s).1, Closed::Stalled);
    }

    #[test]
    fn fd_limit_lowers_the_cap() {
        let s = settings();
        let mut big = s.clone();
        big.max_connections = 10_000;
        assert_eq!(big.within_fd_limit(Some(1024)).max_connections, 768);
        assert_eq!(s.within_fd_limit(Some(1_000_000)).max_connections, 2);
    }
}
