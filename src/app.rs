//! Wires the stages into the daemon ([`start`], [`run`]) and the one-shot poll ([`once`]).

use std::net::SocketAddr;
use std::sync::Arc;

use chrono::Utc;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, broadcast};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::fetch::{FetchError, Fetcher};
use crate::http::{self, AppState};
use crate::poll::{PollReport, poll_source};
use crate::scheduler::{Bounds, Scheduler};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("cannot listen on {addr}: {error}")]
    Bind {
        addr: SocketAddr,
        error: std::io::Error,
    },
    #[error("the HTTP server failed: {0}")]
    Serve(std::io::Error),
    #[error("internal error: {0}")]
    Internal(String),
    #[error(
        "the store is in use by a running tributary, but its /healthz at {url} did not answer: {error}"
    )]
    Daemon { url: String, error: String },
}

/// A running daemon: scheduler and HTTP server.
pub struct Daemon {
    addr: SocketAddr,
    shutdown: CancellationToken,
    events: broadcast::Sender<PollReport>,
    task: tokio::task::JoinHandle<Result<(), Error>>,
    /// Every poll's report, from the first one on (subscribed before any poll started).
    pub reports: broadcast::Receiver<PollReport>,
}

impl Daemon {
    /// The address the HTTP server is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Another receiver of poll reports, from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<PollReport> {
        self.events.subscribe()
    }

    /// Stops polling, lets in-flight writes finish, stops the server, flushes the store.
    pub async fn shutdown(self) -> Result<(), Error> {
        self.shutdown.cancel();
        self.wait().await
    }

    /// Waits until the daemon has stopped (after its shutdown token was cancelled).
    pub async fn wait(self) -> Result<(), Error> {
        match self.task.await {
            Ok(r) => r,
            Err(e) => Err(Error::Internal(e.to_string())),
        }
    }
}

/// Opens the store and starts the scheduler and the HTTP server on `listener`.
pub async fn start(config: Config, listener: TcpListener) -> Result<Daemon, Error> {
    let store = open_store(&config).await?;
    let fetcher = Fetcher::new(&config.fetch)?;
    let addr = listener.local_addr().map_err(|error| Error::Bind {
        addr: config.server.listen,
        error,
    })?;
    let (events, reports) = broadcast::channel(4096);
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let config = Arc::new(config);

    let metrics = crate::metrics::Metrics::new();
    let scheduler = Scheduler {
        metrics: metrics.clone(),
        fetcher,
        store: store.clone(),
        bounds: Bounds::from(&config.fetch),
        permits: Arc::new(Semaphore::new(config.fetch.concurrency)),
        events: events.clone(),
        shutdown: shutdown.clone(),
    };
    scheduler.spawn_all(config.sources.clone(), &tracker);
    tracing::info!(
        %addr,
        sources = config.sources.len(),
        store = %config.store.path.display(),
        "tributary started"
    );

    let app = http::router(AppState {
        store: store.clone(),
        config: config.clone(),
        started: Utc::now(),
        cache: Arc::default(),
        metrics: metrics.clone(),
    });
    let server_shutdown = shutdown.clone();
    let max_connections = config.server.max_connections;
    let task = tokio::spawn(async move {
        let listener = http::LimitedListener::new(listener, max_connections);
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(server_shutdown.cancelled_owned())
            .await;
        tracker.close();
        tracker.wait().await;
        let flushed = tokio::task::spawn_blocking(move || store.flush())
            .await
            .map_err(|e| Error::Internal(e.to_string()))?;
        flushed?;
        tracing::info!("tributary stopped; store flushed");
        served.map_err(Error::Serve)
    });
    Ok(Daemon {
        addr,
        shutdown,
        events,
        task,
        reports,
    })
}

/// The daemon until SIGTERM or SIGINT: binds `server.listen` and runs.
pub async fn run(config: Config) -> Result<(), Error> {
    let addr = config.server.listen;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|error| Error::Bind { addr, error })?;
    let daemon = start(config, listener).await?;
    crate::shutdown::signal().await;
    daemon.shutdown().await
}

/// Polls every source once (concurrently, within the configured limit) and returns one
/// report per source, in config order. Failing sources are reports, not errors; only an
/// unusable store is an error.
pub async fn once(config: Config) -> Result<Vec<PollReport>, Error> {
    let store = open_store(&config).await?;
    let fetcher = Fetcher::new(&config.fetch)?;
    let permits = Arc::new(Semaphore::new(config.fetch.concurrency));
    let cancel = CancellationToken::new();
    let bounds = Bounds::from(&config.fetch);
    let mut set = JoinSet::new();
    for (i, source) in config.sources.iter().cloned().enumerate() {
        let (store, fetcher, permits, cancel) = (
            store.clone(),
            fetcher.clone(),
            permits.clone(),
            cancel.clone(),
        );
        set.spawn(async move {
            let report = poll_source(&fetcher, &store, &source, bounds, &permits, &cancel).await;
            (i, report)
        });
    }
    let mut reports: Vec<Option<PollReport>> = vec![None; config.sources.len()];
    while let Some(done) = set.join_next().await {
        let (i, report) = done.map_err(|e| Error::Internal(e.to_string()))?;
        reports[i] = Some(report);
    }
    tokio::task::spawn_blocking(move || store.flush())
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;
    Ok(reports.into_iter().flatten().collect())
}

async fn open_store(config: &Config) -> Result<Store, Error> {
    let path = config.store.path.clone();
    let cache = config.store.cache_bytes;
    tokio::task::spawn_blocking(move || Store::open(&path, cache))
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
        .map_err(Error::Store)
}

/// Every source's status: from the running daemon (asked over HTTP at `server.listen`) when
/// one holds the store, else read from the store directly.
pub async fn status(config: Config) -> Result<crate::status::Health, Error> {
    match open_store(&config).await {
        Ok(store) => {
            let config = Arc::new(config);
            tokio::task::spawn_blocking(move || crate::status::collect(&config, &store))
                .await
                .map_err(|e| Error::Internal(e.to_string()))?
                .map_err(Error::Store)
        }
        Err(Error::Store(StoreError::Locked { .. })) => {
            let mut addr = config.server.listen;
            if addr.ip().is_unspecified() {
                addr.set_ip(if addr.is_ipv4() {
                    std::net::Ipv4Addr::LOCALHOST.into()
                } else {
                    std::net::Ipv6Addr::LOCALHOST.into()
                });
            }
            let url = format!("http://{addr}/healthz");
            let daemon_error = |error: String| Error::Daemon {
                url: url.clone(),
                error,
            };
            let response = reqwest::Client::new()
                .get(&url)
                .timeout(std::time::Duration::from_secs(10))
                .send()
                .await
                .map_err(|e| daemon_error(e.to_string()))?;
            let body = response
                .bytes()
                .await
                .map_err(|e| daemon_error(e.to_string()))?;
            serde_json::from_slice(&body).map_err(|e| daemon_error(e.to_string()))
        }
        Err(e) => Err(e),
    }
}

/// The sources as OPML, with the feeds' own titles from the store when it can be read (a
/// running daemon holds it; then the config's titles and names are used).
pub async fn export_opml(config: Config) -> String {
    let path = config.store.path.clone();
    let cache = config.store.cache_bytes;
    let states: std::collections::HashMap<String, crate::model::SourceState> =
        tokio::task::spawn_blocking(move || {
            Store::open(&path, cache)
                .and_then(|s| s.source_states())
                .unwrap_or_default()
        })
        .await
        .unwrap_or_default()
        .into_iter()
        .collect();
    crate::opml::export(&config, &|name| {
        states.get(name).and_then(|s| s.feed_title.clone())
    })
}
