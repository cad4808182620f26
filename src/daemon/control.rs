//! The control socket: how `tributary poll` asks the running daemon to poll sources now.
//!
//! A Unix socket in the store's folder ([`socket_path`]), mode 0600, created when the daemon
//! starts (a stale one left by a crash is replaced: the daemon holds the store's lock) and
//! removed when it stops. Only the daemon's own user (or root) can connect: the mode says so,
//! and each connection's peer credentials are checked as well. It is never on the network:
//! polling on demand costs the sources' servers requests, so it is not for the public.
//!
//! The protocol is lines of JSON. The client sends one [`Request`] line; the daemon answers
//! with one [`Reply`] a line: `started` (how many sources poll), then a `report` per source
//! as each poll finishes, then `done`; or one `unknown` or `error` line. Every resource a
//! client could hold is bounded: the request's size ([`MAX_REQUEST`]) and names
//! ([`MAX_NAMES`]), the time to send it ([`REQUEST_WITHIN`]) and to take each line
//! ([`WRITE_WITHIN`]), clients at a time ([`MAX_CLIENTS`]; one more is told `busy`), how long
//! a request waits for polls ([`QUIET_LIMIT`] without a report, [`REQUEST_LIMIT`] in all).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{Semaphore, broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::daemon::supervise::{Control, PollNowError};
use crate::ingest::poll::PollReport;

/// The socket's name in the store's folder.
pub const SOCKET_NAME: &str = "control.sock";
/// The longest request line, in bytes.
pub const MAX_REQUEST: usize = 256 * 1024;
/// The most sources one request may name.
pub const MAX_NAMES: usize = 10_000;
/// The longest reply line a client reads, in bytes.
pub const MAX_REPLY: usize = 64 * 1024;
/// Clients served at once.
pub const MAX_CLIENTS: usize = 4;
/// How long a client has to send its request after connecting.
pub const REQUEST_WITHIN: Duration = Duration::from_secs(5);
/// How long a client has to take each reply line.
pub const WRITE_WITHIN: Duration = Duration::from_secs(10);
/// A request ends (`done`, naming the sources not yet reported) once no report came for
/// this long: polls wait for places (`[fetch] concurrency`, `per_host`), so a big request
/// takes its time, but each poll has its deadline.
pub const QUIET_LIMIT: Duration = Duration::from_secs(10 * 60);
/// A request ends after this long in any case.
pub const REQUEST_LIMIT: Duration = Duration::from_secs(60 * 60);

/// Where the daemon of a store listens: `control.sock` in the store's folder (where
/// `prune --confirm` leaves its confirmation too), so whoever may use the store finds it.
pub fn socket_path(store: &Path) -> PathBuf {
    store.join(SOCKET_NAME)
}

/// What a client asks: poll these sources now (every source when empty).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub poll: Vec<String>,
}

/// One line of the daemon's answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    /// The request is taken: this many sources poll now.
    Started { sources: usize },
    /// One source's poll: `line` is what `tributary once` prints for it.
    Report {
        source: String,
        failed: bool,
        line: String,
    },
    /// Every source reported, or the daemon stopped waiting: `missing` had not reported.
    Done {
        polled: usize,
        failed: usize,
        missing: Vec<String>,
    },
    /// Names not in the running config; nothing was polled.
    Unknown { names: Vec<String> },
    /// The request was refused (malformed, too big, too slow, too many clients).
    Error { message: String },
}

/// Why the control socket could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot create the control socket {}: {error}", path.display())]
pub struct BindError {
    pub path: PathBuf,
    #[source]
    pub error: std::io::Error,
}

/// What a connection needs from the daemon.
#[derive(Clone)]
pub struct Channel {
    pub control: mpsc::Sender<Control>,
    pub reports: broadcast::Sender<PollReport>,
    pub shutdown: CancellationToken,
}

/// The control socket, listening: serve it with [`Listening::serve`].
pub struct Listening {
    listener: UnixListener,
    path: PathBuf,
}

/// Creates the socket at `path` (replacing a stale one), mode 0600.
pub fn bind(path: &Path) -> Result<Listening, BindError> {
    use std::os::unix::fs::PermissionsExt;
    let fail = |error| BindError {
        path: path.to_path_buf(),
        error,
    };
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(fail(e)),
        _ => {}
    }
    let listener = UnixListener::bind(path).map_err(fail)?;
    // Peers are checked one by one as well (see `serve`), so the moment before this holds
    // no risk.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(fail)?;
    Ok(Listening {
        listener,
        path: path.to_path_buf(),
    })
}

impl Listening {
    /// Serves clients until shutdown, then removes the socket.
    pub async fn serve(self, channel: Channel, tracker: TaskTracker) {
        let places = Arc::new(Semaphore::new(MAX_CLIENTS));
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        loop {
            let stream = tokio::select! {
                () = channel.shutdown.cancelled() => break,
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        // Out of file descriptors, most likely: wait a moment.
                        tracing::warn!(%error, "the control socket cannot accept a client");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let uid = stream.peer_cred().map(|c| c.uid());
            if !matches!(uid, Ok(u) if u == me || u == 0) {
                tracing::warn!(peer_uid = ?uid.ok(), "control socket: a client of another user was refused");
                continue;
            }
            let place = places.clone().try_acquire_owned().ok();
            let channel = channel.clone();
            tracker.spawn(async move {
                let mut stream = stream;
                let stop = channel.shutdown.clone();
                tokio::select! {
                    () = serve_client(&mut stream, channel, place.is_some()) => {}
                    () = stop.cancelled() => {}
                }
                // The place is free before the client sees the end.
                drop(place);
                drop(stream);
            });
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// One client: its request, then the reports (see the module docs).
async fn serve_client(stream: &mut UnixStream, channel: Channel, has_place: bool) {
    let (read, mut write) = stream.split();
    if !has_place {
        let message = format!("busy: {MAX_CLIENTS} clients are being served; try again");
        let _ = send(&mut write, &Reply::Error { message }).await;
        return;
    }
    let request = match tokio::time::timeout(REQUEST_WITHIN, read_request(read)).await {
        Ok(Ok(request)) => request,
        Ok(Err(message)) => {
            tracing::debug!(%message, "control socket: a request was refused");
            let _ = send(&mut write, &Reply::Error { message }).await;
            return;
        }
        Err(_) => {
            let message = format!("no request within {} s", REQUEST_WITHIN.as_secs());
            let _ = send(&mut write, &Reply::Error { message }).await;
            return;
        }
    };
    // Subscribed before the polls start, so none of their reports is missed; only polls
    // that start after the request count (one in progress may have fetched before it).
    let mut reports = channel.reports.subscribe();
    let asked_at = Utc::now();
    let (reply, answer) = oneshot::channel();
    let woken = match channel
        .control
        .send(Control::PollNow(request.poll, reply))
        .await
    {
        Ok(()) => answer.await.unwrap_or(Err(PollNowError::Stopping)),
        Err(_) => Err(PollNowError::Stopping),
    };
    let names = match woken {
        Ok(names) => names,
        Err(PollNowError::Unknown(names)) => {
            let _ = send(&mut write, &Reply::Unknown { names }).await;
            return;
        }
        Err(error) => {
            let message = error.to_string();
            let _ = send(&mut write, &Reply::Error { message }).await;
            return;
        }
    };
    if send(
        &mut write,
        &Reply::Started {
            sources: names.len(),
        },
    )
    .await
    .is_err()
    {
        return;
    }
    let mut left: HashSet<String> = names.iter().cloned().collect();
    let (mut polled, mut failed) = (0, 0);
    let end = tokio::time::Instant::now() + REQUEST_LIMIT;
    while !left.is_empty() {
        let quiet = (tokio::time::Instant::now() + QUIET_LIMIT).min(end);
        let report = match tokio::time::timeout_at(quiet, reports.recv()).await {
            Ok(Ok(r)) => r,
            // Reports missed while a line was being written: those sources are named as
            // missing at the end.
            Ok(Err(RecvError::Lagged(_))) => continue,
            Ok(Err(RecvError::Closed)) | Err(_) => break,
        };
        if report.started < asked_at || !left.remove(&report.source) {
            continue;
        }
        polled += 1;
        failed += usize::from(report.is_failure());
        let line = Reply::Report {
            source: report.source.clone(),
            failed: report.is_failure(),
            line: report.to_string(),
        };
        if send(&mut write, &line).await.is_err() {
            tracing::debug!("control socket: a client did not take its reports; dropped");
            return;
        }
    }
    let missing = names.into_iter().filter(|n| left.contains(n)).collect();
    let _ = send(
        &mut write,
        &Reply::Done {
            polled,
            failed,
            missing,
        },
    )
    .await;
    let _ = write.shutdown().await;
}

/// The request line: at most [`MAX_REQUEST`] bytes, at most [`MAX_NAMES`] names.
async fn read_request(read: impl AsyncRead + Unpin) -> Result<Request, String> {
    let line = read_line(&mut BufReader::new(read), MAX_REQUEST)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "no request".to_string())?;
    let request: Request =
        serde_json::from_slice(&line).map_err(|e| format!("not a request: {e}"))?;
    if request.poll.len() > MAX_NAMES {
        return Err(format!("more than {MAX_NAMES} sources named"));
    }
    Ok(request)
}

/// Why a line could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    #[error("a line longer than {0} bytes")]
    TooLong(usize),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// One line (without its newline), reading no more than `max` bytes of it; `None` at the
/// end of the stream.
async fn read_line(
    read: &mut (impl AsyncBufRead + Unpin),
    max: usize,
) -> Result<Option<Vec<u8>>, LineError> {
    use tokio::io::AsyncReadExt;
    let mut line = Vec::new();
    read.take(max as u64 + 1)
        .read_until(b'\n', &mut line)
        .await?;
    if line.last() == Some(&b'\n') {
        line.pop();
        return Ok(Some(line));
    }
    if line.len() > max {
        return Err(LineError::TooLong(max));
    }
    Ok((!line.is_empty()).then_some(line))
}

/// Writes one reply line, within [`WRITE_WITHIN`].
async fn send(write: &mut (impl AsyncWrite + Unpin), reply: &Reply) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(reply).map_err(std::io::Error::other)?;
    line.push(b'\n');
    match tokio::time::timeout(WRITE_WITHIN, write.write_all(&line)).await {
        Ok(written) => written,
        Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
    }
}

/// Why asking the daemon over its socket failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens there: no daemon runs on this store.
    #[error("no daemon listens at {}: {error}", path.display())]
    NotRunning {
        path: PathBuf,
        #[source]
        error: std::io::Error,
    },
    #[error("the daemon's control socket {}: {error}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        error: std::io::Error,
    },
    #[error("the daemon's control socket {}: {error}", path.display())]
    Line {
        path: PathBuf,
        #[source]
        error: LineError,
    },
    #[error("the daemon's control socket {} answered what is not a reply: {error}", path.display())]
    Reply {
        path: PathBuf,
        #[source]
        error: serde_json::Error,
    },
    #[error("the daemon's control socket {} said nothing for {} s", path.display(), .within.as_secs())]
    Silent { path: PathBuf, within: Duration },
    #[error("the daemon's control socket {} closed before the end", path.display())]
    Closed { path: PathBuf },
}

/// A connection to the daemon's control socket.
pub struct Client {
    path: PathBuf,
    reader: BufReader<tokio::net::unix::OwnedReadHalf>,
}

impl Client {
    /// Connects and sends `request`. `NotRunning` when nothing listens at `path`.
    pub async fn ask(path: &Path, request: &Request) -> Result<Client, ClientError> {
        let stream = match UnixStream::connect(path).await {
            Ok(s) => s,
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                ) =>
            {
                return Err(ClientError::NotRunning {
                    path: path.to_path_buf(),
                    error,
                });
            }
            Err(error) => {
                return Err(ClientError::Io {
                    path: path.to_path_buf(),
                    error,
                });
            }
        };
        let (read, mut write) = stream.into_split();
        let mut line = serde_json::to_vec(request).map_err(|error| ClientError::Reply {
            path: path.to_path_buf(),
            error,
        })?;
        line.push(b'\n');
        let io = |error| ClientError::Io {
            path: path.to_path_buf(),
            error,
        };
        match tokio::time::timeout(WRITE_WITHIN, write.write_all(&line)).await {
            Ok(written) => written.map_err(io)?,
            Err(_) => return Err(io(std::io::ErrorKind::TimedOut.into())),
        }
        Ok(Client {
            path: path.to_path_buf(),
            reader: BufReader::new(read),
        })
    }

    /// The next reply line. The daemon ends a request after [`QUIET_LIMIT`] without a
    /// report, so a longer silence means it is stuck.
    pub async fn next(&mut self) -> Result<Reply, ClientError> {
        let within = QUIET_LIMIT + Duration::from_secs(60);
        let path = || self.path.clone();
        let line = match tokio::time::timeout(within, read_line(&mut self.reader, MAX_REPLY)).await
        {
            Ok(Ok(Some(line))) => line,
            Ok(Ok(None)) => return Err(ClientError::Closed { path: path() }),
            Ok(Err(error)) => {
                return Err(ClientError::Line {
                    path: path(),
                    error,
                });
            }
            Err(_) => {
                return Err(ClientError::Silent {
                    path: path(),
                    within,
                });
            }
        };
        serde_json::from_slice(&line).map_err(|error| ClientError::Reply {
            path: path(),
            error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_line_is_read_up_to_its_bound() {
        let mut two = &b"{\"poll\":[]}\nmore\n"[..];
        let ok = read_line(&mut two, 64).await.unwrap();
        assert_eq!(ok.as_deref(), Some(&b"{\"poll\":[]}"[..]));
        let more = read_line(&mut two, 64).await.unwrap();
        assert_eq!(
            more.as_deref(),
            Some(&b"more"[..]),
            "nothing read past a line"
        );
        let endless = vec![b'x'; 1000];
        assert!(matches!(
            read_line(&mut &endless[..], 64).await,
            Err(LineError::TooLong(64))
        ));
        assert_eq!(read_line(&mut &b""[..], 64).await.unwrap(), None);
    }

    /// A client that does not take its replies is given up on after [`WRITE_WITHIN`].
    #[tokio::test(start_paused = true)]
    async fn a_reply_not_taken_in_time_is_given_up() {
        let (mut daemon_end, _client_end) = tokio::io::duplex(64);
        let reply = Reply::Error {
            message: "x".repeat(1000),
        };
        let began = tokio::time::Instant::now();
        let sent = send(&mut daemon_end, &reply).await;
        assert_eq!(
            sent.map_err(|e| e.kind()),
            Err(std::io::ErrorKind::TimedOut)
        );
        assert_eq!(began.elapsed(), WRITE_WITHIN);
    }

    #[tokio::test]
    async fn requests_are_checked() {
        assert!(read_request(&b"hello\n"[..]).await.is_err());
        assert!(read_request(&b"{\"poll\":[],\"x\":1}\n"[..]).await.is_err());
        let many = serde_json::to_vec(&Request {
            poll: (0..=MAX_NAMES).map(|i| i.to_string()).collect(),
        })
        .unwrap();
        let mut many = many;
        many.push(b'\n');
        assert!(read_request(&many[..]).await.is_err());
        let ok = read_request(&b"{\"poll\":[\"a\"]}\n"[..]).await.unwrap();
        assert_eq!(ok.poll, ["a"]);
    }
}
