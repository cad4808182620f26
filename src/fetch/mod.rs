//! Retrieves a source's bytes: HTTP(S) with conditional GET, or a local `file://`.
//!
//! Every limit is enforced here so later stages can trust their input's size and every
//! failure comes back as a [`FetchError`] a person can act on:
//! - a connect timeout, and a total timeout over the whole exchange (redirects and body
//!   included), so a server that trickles its body is cut off;
//! - at most [`MAX_REDIRECTS`] redirects, followed here rather than by reqwest so loops are
//!   named and a permanent move (301/308) is reported for the source to remember;
//! - a cap on the decompressed body, checked while it streams, so an endless body or a
//!   compression bomb is cut off without being held in memory;
//! - at most `per_host` requests at a time to any one host ([`Fetcher::host_permit`]);
//! - a redirect off the configured URL's origin goes only where the address guard lets it
//!   ([`guard::Policy::for_redirects_from`]): a public feed cannot lead into
//!   loopback, link-local or private space. Such hops are made by a guarded client (its
//!   resolver checks the addresses connected to), one per kind of network the configured
//!   URLs are reached at.
//!
//! Servers' caching hints and `Retry-After` are read in [`cache`] and returned for the
//! scheduler to honour; the address guard is [`guard`].

pub mod cache;
pub mod guard;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use tokio::sync::Semaphore;
use url::Url;

use crate::config::{FetchConfig, SourceConfig, SourceKind};
use guard::{GuardedResolver, Policy};

pub use cache::Validators;

/// An HTTP client with `default_headers` that follows no redirects (they are followed
/// here, hop by hop) and decompresses bodies. With a `guard`, it connects only where the
/// policy allows (its resolver drops other addresses) and uses no proxy.
fn build_client(
    default_headers: HeaderMap,
    connect_timeout: Duration,
    guard: Option<Arc<Policy>>,
) -> Result<reqwest::Client, FetchError> {
    let mut builder = reqwest::Client::builder()
        .default_headers(default_headers)
        .connect_timeout(connect_timeout)
        // The total timeout is applied around the whole fetch (redirects included), in
        // `fetch`, so there is one clock and one message.
        .redirect(reqwest::redirect::Policy::none())
        .gzip(true)
        .brotli(true)
        .deflate(true);
    if let Some(policy) = guard {
        builder = builder
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver { policy }));
    }
    builder.build().map_err(FetchError::Client)
}

/// Redirects followed at most, per fetch.
pub const MAX_REDIRECTS: usize = 5;

/// Where a redirect from `url` goes: its Location, resolved, http(s), not seen before in
/// this fetch (`visited`), within [`MAX_REDIRECTS`].
fn redirect_target(
    url: &Url,
    response: &reqwest::Response,
    visited: &[Url],
) -> Result<Url, FetchError> {
    let status = response.status();
    let location = response
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(FetchError::NoLocation {
            status: status.as_u16(),
        })?;
    let next = url
        .join(location)
        .map_err(|error| FetchError::BadLocation {
            location: location.to_string(),
            error,
        })?;
    if !matches!(next.scheme(), "http" | "https") {
        return Err(FetchError::RedirectScheme {
            scheme: next.scheme().to_string(),
        });
    }
    if visited.contains(&next) {
        return Err(FetchError::RedirectLoop(next));
    }
    if visited.len() > MAX_REDIRECTS {
        return Err(FetchError::TooManyRedirects);
    }
    Ok(next)
}

/// A completed exchange: 200 with a body, or 304.
#[derive(Debug)]
pub struct Fetched {
    pub status: u16,
    /// `None` for 304 Not Modified (or an unchanged local file).
    pub body: Option<Body>,
    /// How long the server says the response stays fresh (`Cache-Control: max-age`,
    /// `Expires`), if it says so usefully.
    pub fresh_for: Option<Duration>,
    /// Where a leading chain of permanent redirects (301/308) ended, if there was one.
    pub moved_to: Option<Url>,
    /// The response's `Link` header values (WebSub discovery), at most [`MAX_LINKS`] of at
    /// most [`MAX_LINK_BYTES`] each.
    pub links: Vec<String>,
}

/// `Link` header values kept from one response, at most...
pub const MAX_LINKS: usize = 16;
/// ...of at most this many bytes each (longer ones are skipped).
pub const MAX_LINK_BYTES: usize = 8 * 1024;

/// A response's `Link` header values, bounded (see [`Fetched::links`]).
fn link_values(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::LINK)
        .iter()
        .filter(|v| v.len() <= MAX_LINK_BYTES)
        .filter_map(|v| v.to_str().ok())
        .take(MAX_LINKS)
        .map(str::to_string)
        .collect()
}

/// An article page (full text).
#[derive(Debug)]
pub struct Page {
    pub bytes: Vec<u8>,
    pub content_type: Option<String>,
    /// After redirects: the base for the article's relative links.
    pub final_url: Url,
}

const HTML_ACCEPT: &str = "text/html, application/xhtml+xml;q=0.9, */*;q=0.1";
/// What a `kind = "json"` source asks for.
const JSON_ACCEPT: &str = "application/json, text/json;q=0.9, */*;q=0.1";

#[derive(Debug)]
pub struct Body {
    pub bytes: Vec<u8>,
    pub content_type: Option<String>,
    /// The URL after redirects: the base for relative links.
    pub final_url: Url,
    /// Validators to keep for the next poll.
    pub validators: Validators,
}

/// Why a fetch failed, by kind; the Display text is what status pages and logs show.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The host's name did not resolve (the whole chain is logged at debug level).
    #[error("cannot resolve {host}")]
    Dns { host: String },
    /// The TLS handshake failed: why, in short ("certificate expired").
    #[error("TLS: {0}")]
    Tls(String),
    /// No TCP connection to `addr` (host:port): "connection refused by 10.0.0.5:443", or
    /// "cannot connect to ...: Network is unreachable".
    #[error("{}", match reason { ConnectFailure::Refused => format!("connection refused by {addr}"),
        ConnectFailure::Other(why) => format!("cannot connect to {addr}: {why}") })]
    Connect {
        addr: String,
        reason: ConnectFailure,
    },
    /// No connection within `[fetch] connect_timeout`.
    #[error("timed out after {} connecting to {addr}", humantime::format_duration(*after))]
    ConnectTimeout { after: Duration, addr: String },
    /// The whole exchange took longer than `[fetch] timeout`.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("HTTP {status}{}{}", reason.map(|r| format!(" {r}")).unwrap_or_default(),
        retry_after.map(|d| format!(" (Retry-After: {}s)", d.as_secs())).unwrap_or_default())]
    Status {
        status: u16,
        reason: Option<&'static str>,
        /// For 429 and 503: how long the server asked us to wait.
        retry_after: Option<Duration>,
    },
    #[error("more than {MAX_REDIRECTS} redirects")]
    TooManyRedirects,
    #[error("redirect loop: {0} was reached twice")]
    RedirectLoop(Url),
    #[error("bad redirect: HTTP {status} without a Location")]
    NoLocation { status: u16 },
    #[error("bad redirect: Location \"{location}\" is not a URL ({error})")]
    BadLocation {
        location: String,
        error: url::ParseError,
    },
    #[error("bad redirect: redirect to a {scheme} URL")]
    RedirectScheme { scheme: String },
    #[error("response too large: more than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("connection broken while reading the body: {0}")]
    Body(String),
    #[error("empty response")]
    Empty,
    #[error("cannot read {path}: {error}")]
    File { path: String, error: std::io::Error },
    #[error("{0} is not a local file path")]
    NotAFilePath(Url),
    #[error("{path} is not a regular file")]
    NotAFile { path: String },
    /// A URL (an article page, a redirect hop) at an address the guard refuses (see
    /// [`crate::fetch::guard`]), or not http(s).
    #[error("refused: {0}")]
    Refused(String),
    #[error("not a web page (Content-Type {0})")]
    NotHtml(String),
    #[error("cannot build the HTTP client: {0}")]
    Client(reqwest::Error),
    /// Any other failure of the request, with reqwest's causes.
    #[error("{0}")]
    Request(String),
}

/// Why a TCP connection failed.
#[derive(Debug, Clone, PartialEq)]
pub enum ConnectFailure {
    /// Nothing listens there (the peer answered with a reset).
    Refused,
    /// Anything else, in the operating system's words ("Network is unreachable").
    Other(String),
}

impl FetchError {
    /// The HTTP status, when the failure was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            FetchError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// The HTTP client and limits shared by every poll.
#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    /// For article pages on other hosts than their source: resolves through the address
    /// guard, no proxy.
    guarded: reqwest::Client,
    policy: Arc<Policy>,
    /// Whether a proxy variable was set when the client was built: the first hop may have
    /// gone through a proxy, so its peer address says nothing about the feed's network.
    proxied: bool,
    /// For a feed's redirect hops off its configured origin: a guarded client per kind of
    /// non-public network the configured URL was reached at, built when first needed (from
    /// a public one, hops use `guarded`).
    redirect_clients: Arc<Mutex<HashMap<&'static str, reqwest::Client>>>,
    accept: HeaderMap,
    user_agent: String,
    timeout: Duration,
    connect_timeout: Duration,
    max_body: u64,
    max_entries: usize,
    per_host: usize,
    hosts: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
}

impl Fetcher {
    pub fn new(config: &FetchConfig) -> Result<Fetcher, FetchError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static(
                "application/atom+xml, application/rss+xml, application/rdf+xml, application/feed+json, application/json;q=0.9, application/xml;q=0.9, text/xml;q=0.8, */*;q=0.5",
            ),
        );
        let client = build_client(headers.clone(), config.connect_timeout, None)?;
        let policy = Arc::new(Policy {
            allow: config.allow_networks.clone(),
            also: None,
        });
        // Article requests set their own Accept; feed redirect hops from a public host use
        // this client too, with the feed Accept.
        let guarded = build_client(
            headers.clone(),
            config.connect_timeout,
            Some(policy.clone()),
        )?;
        Ok(Fetcher {
            client,
            guarded,
            policy,
            proxied: proxy_configured(),
            redirect_clients: Arc::default(),
            accept: headers,
            user_agent: config.user_agent.clone(),
            timeout: config.timeout,
            connect_timeout: config.connect_timeout,
            max_body: config.max_body_bytes,
            max_entries: config.max_entries,
            per_host: config.per_host,
            hosts: Arc::default(),
        })
    }

    /// Fetches `url` for `source` (whose User-Agent and extra headers apply), sending
    /// `validators` as If-None-Match / If-Modified-Since.
    pub async fn fetch(
        &self,
        source: &SourceConfig,
        url: &Url,
        validators: &Validators,
    ) -> Result<Fetched, FetchError> {
        if url.scheme() == "file" {
            return self.within_timeout(self.fetch_file(url, validators)).await;
        }
        self.within_timeout(self.fetch_http(source, url, validators))
            .await
    }

    /// `work`, or [`FetchError::Timeout`] when it takes longer than `[fetch] timeout`.
    async fn within_timeout<T>(
        &self,
        work: impl Future<Output = Result<T, FetchError>>,
    ) -> Result<T, FetchError> {
        tokio::time::timeout(self.timeout, work)
            .await
            .unwrap_or(Err(FetchError::Timeout(self.timeout)))
    }

    /// Whether `url`'s host is loopback or in `[fetch] allow_networks` by its literal
    /// address (a trusted network for WebSub secrets over plain http). A name other than
    /// `localhost` is never trusted: it could resolve anywhere.
    pub fn trusted_host(&self, url: &Url) -> bool {
        let ip = match url.host() {
            Some(url::Host::Ipv4(a)) => std::net::IpAddr::V4(a),
            Some(url::Host::Ipv6(a)) => std::net::IpAddr::V6(a),
            Some(url::Host::Domain(d)) => return d.eq_ignore_ascii_case("localhost"),
            None => return false,
        };
        ip.is_loopback() || self.policy.allow.iter().any(|n| n.contains(&ip))
    }

    /// Entries read from one document, at most (`[fetch] max_entries`).
    pub fn max_entries(&self) -> usize {
        self.max_entries
    }

    /// Waits for one of the `per_host` places of `url`'s host. The caller holds it for the
    /// whole fetch (see [`crate::ingest::poll::Poller::poll`]).
    pub async fn host_permit(&self, url: &Url) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        let semaphore = {
            let mut hosts = self
                .hosts
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            hosts
                .entry(host)
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_host)))
                .clone()
        };
        semaphore.acquire_owned().await.ok()
    }

    /// The request headers for `source`: User-Agent, the validators, and its custom
    /// `headers` (often credentials) only when `custom` (a hop on the configured origin).
    fn headers_with(
        &self,
        source: &SourceConfig,
        validators: &Validators,
        custom: bool,
    ) -> HeaderMap {
        let mut h = HeaderMap::new();
        // A page source asks for what it reads (a feed's Accept is the client's default).
        match source.kind {
            SourceKind::Feed => {}
            SourceKind::Html(_) => {
                h.insert(header::ACCEPT, HeaderValue::from_static(HTML_ACCEPT));
            }
            SourceKind::Json(_) => {
                h.insert(header::ACCEPT, HeaderValue::from_static(JSON_ACCEPT));
            }
        }
        let ua = source.user_agent.as_deref().unwrap_or(&self.user_agent);
        if let Ok(v) = HeaderValue::from_str(ua) {
            h.insert(header::USER_AGENT, v);
        }
        // Names and values were validated with the config.
        for (name, value) in source.headers.iter().filter(|_| custom) {
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                h.insert(n, v);
            }
        }
        validators.add_conditions(&mut h);
        h
    }

    async fn fetch_http(
        &self,
        source: &SourceConfig,
        start: &Url,
        validators: &Validators,
    ) -> Result<Fetched, FetchError> {
        let mut url = start.clone();
        let mut visited = vec![start.clone()];
        let mut moved_to = None;
        let mut still_permanent = true;
        // Where the configured URL was reached: its redirects may stay in that network.
        let mut reached = None;
        // Once a hop went from https to http, credentials are never sent again.
        let mut downgraded = false;
        let mut headers;
        let response = loop {
            let own_origin = guard::same_origin(&url, start);
            let client = if own_origin {
                self.client.clone()
            } else {
                self.redirect_client(reached, &url)?
            };
            // The source's custom headers (credentials) go only to its configured origin.
            headers = self.headers_with(source, validators, own_origin && !downgraded);
            tracing::debug!(
                url = %url,
                if_none_match = validators.etag.as_deref(),
                if_modified_since = validators.last_modified.as_deref(),
                "request"
            );
            let sent = std::time::Instant::now();
            let response = client
                .get(url.clone())
                .headers(headers.clone())
                .send()
                .await
                .map_err(|e| self.classify(e))?;
            tracing::debug!(
                url = %url,
                status = response.status().as_u16(),
                ms = sent.elapsed().as_millis() as u64,
                remote = response.remote_addr().map(|a| a.to_string()),
                "response headers"
            );
            if visited.len() == 1 {
                reached = if self.proxied {
                    // The address connected to may be a proxy's: the configured URL's kind
                    // of network is judged from the URL alone.
                    guard::url_address(start)
                } else {
                    response.remote_addr().map(|a| a.ip())
                };
            }
            let status = response.status();
            if !status.is_redirection() || status == StatusCode::NOT_MODIFIED {
                break response;
            }
            let next = redirect_target(&url, &response, &visited)?;
            let permanent = matches!(
                status,
                StatusCode::MOVED_PERMANENTLY | StatusCode::PERMANENT_REDIRECT
            );
            still_permanent &= permanent;
            if still_permanent {
                moved_to = Some(next.clone());
            }
            downgraded |= url.scheme() == "https" && next.scheme() == "http";
            visited.push(next.clone());
            url = next;
        };

        let status = response.status();
        let fresh_for = cache::freshness(&url, &headers, status, response.headers());
        if let Some(fresh) = fresh_for {
            tracing::debug!(
                fresh_s = fresh.as_secs(),
                "cache: the server says the response stays fresh this long"
            );
        }
        if status == StatusCode::NOT_MODIFIED {
            tracing::debug!(url = %url, "cache: 304 Not Modified, the stored entries stand");
            return Ok(Fetched {
                status: status.as_u16(),
                body: None,
                fresh_for,
                moved_to,
                links: link_values(response.headers()),
            });
        }
        if !status.is_success() {
            return Err(FetchError::Status {
                status: status.as_u16(),
                reason: status.canonical_reason(),
                retry_after: cache::retry_after(status, response.headers()),
            });
        }
        let content_type = content_type(&response);
        let new_validators = Validators::of_response(response.headers());
        let links = link_values(response.headers());
        tracing::debug!(
            etag = new_validators.etag.as_deref(),
            last_modified = new_validators.last_modified.as_deref(),
            "cache: validators kept for the next poll"
        );
        let sent = std::time::Instant::now();
        let bytes = self.read_body(response).await?;
        tracing::debug!(
            url = %url,
            bytes = bytes.len(),
            ms = sent.elapsed().as_millis() as u64,
            "body read"
        );
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(FetchError::Empty);
        }
        Ok(Fetched {
            status: status.as_u16(),
            body: Some(Body {
                bytes,
                content_type,
                final_url: url,
                validators: new_validators,
            }),
            fresh_for,
            moved_to,
            links,
        })
    }

    /// The client for a feed's redirect hop to `url`, off the configured origin, when the
    /// configured URL was reached at `reached`; a literal address the guard refuses is
    /// refused here, a name by the client's resolver.
    fn redirect_client(
        &self,
        reached: Option<std::net::IpAddr>,
        url: &Url,
    ) -> Result<reqwest::Client, FetchError> {
        let policy = self.policy.for_redirects_from(reached);
        guard::check_url(url, &policy)
            .map_err(|why| FetchError::Refused(format!("redirect to {url}: {why}")))?;
        // From a public host: the same policy as article pages.
        let Some(kind) = policy.also else {
            return Ok(self.guarded.clone());
        };
        let mut clients = self
            .redirect_clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(c) = clients.get(kind) {
            return Ok(c.clone());
        }
        let client = build_client(
            self.accept.clone(),
            self.connect_timeout,
            Some(Arc::new(policy)),
        )?;
        clients.insert(kind, client.clone());
        Ok(client)
    }

    /// The body, decompressed, cut off past `max_body` while it streams.
    async fn read_body(&self, mut response: reqwest::Response) -> Result<Vec<u8>, FetchError> {
        // The Content-Length (of the possibly compressed body) can refuse early; the
        // decompressed bytes are counted below either way.
        if response
            .content_length()
            .is_some_and(|len| len > self.max_body)
        {
            return Err(FetchError::TooLarge {
                limit: self.max_body,
            });
        }
        // Chunks are kept as they come and joined once at the end: a growing Vec would
        // hold its old and new buffers at once on every doubling, half again the cap for a
        // body that is cut off anyway.
        let mut chunks = Vec::new();
        let mut total = 0u64;
        while let Some(chunk) = response.chunk().await.map_err(|e| self.classify(e))? {
            total += chunk.len() as u64;
            if total > self.max_body {
                return Err(FetchError::TooLarge {
                    limit: self.max_body,
                });
            }
            chunks.push(chunk);
        }
        let mut bytes = Vec::with_capacity(total as usize);
        for chunk in chunks.drain(..) {
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }

    /// Fetches an entry's article page for `source` (full text), through the address guard
    /// unless the page is on the source's own origin; the source's extra headers (often
    /// credentials) go only to that origin. Each redirect hop is decided again. Same timeout, body cap and User-Agent as
    /// feeds; the caller holds the page host's `per_host` place.
    pub async fn fetch_article(
        &self,
        source: &SourceConfig,
        url: &Url,
    ) -> Result<Page, FetchError> {
        self.within_timeout(self.fetch_article_inner(source, url))
            .await
    }

    async fn fetch_article_inner(
        &self,
        source: &SourceConfig,
        start: &Url,
    ) -> Result<Page, FetchError> {
        if !matches!(start.scheme(), "http" | "https") {
            return Err(FetchError::Refused(format!(
                "{} URLs are not fetched",
                start.scheme()
            )));
        }
        let mut url = start.clone();
        let mut visited = vec![start.clone()];
        let response = loop {
            let own_host = guard::same_origin(&url, &source.url);
            let client = if own_host {
                &self.client
            } else {
                guard::check_url(&url, &self.policy)
                    .map_err(|why| FetchError::Refused(why.to_string()))?;
                &self.guarded
            };
            // The source's extra headers go only to its own origin.
            let mut headers = self.headers_with(source, &Validators::default(), own_host);
            headers.insert(header::ACCEPT, HeaderValue::from_static(HTML_ACCEPT));
            let response = client
                .get(url.clone())
                .headers(headers)
                .send()
                .await
                .map_err(|e| self.classify(e))?;
            let status = response.status();
            if !status.is_redirection() {
                break response;
            }
            let next = redirect_target(&url, &response, &visited)?;
            visited.push(next.clone());
            url = next;
        };
        let status = response.status();
        if !status.is_success() {
            return Err(FetchError::Status {
                status: status.as_u16(),
                reason: status.canonical_reason(),
                retry_after: None,
            });
        }
        let content_type = content_type(&response);
        if let Some(ct) = &content_type
            && !ct.to_ascii_lowercase().contains("html")
        {
            return Err(FetchError::NotHtml(ct.clone()));
        }
        let bytes = self.read_body(response).await?;
        Ok(Page {
            bytes,
            content_type,
            final_url: url,
        })
    }

    /// POSTs `body` to `url` (a webhook) through the address guard, with `headers`, within
    /// `[fetch] timeout`; redirects are not followed (a 3xx is a failure like a 4xx). A
    /// status other than 2xx is [`FetchError::Status`] (with Retry-After for 429 and 503);
    /// the answer's body is not read.
    pub async fn post(
        &self,
        url: &Url,
        headers: HeaderMap,
        body: Vec<u8>,
    ) -> Result<u16, FetchError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(FetchError::Refused(format!(
                "{} URLs are not fetched",
                url.scheme()
            )));
        }
        guard::check_url(url, &self.policy).map_err(|why| FetchError::Refused(why.to_string()))?;
        let send = async {
            let response = self
                .guarded
                .post(url.clone())
                .header(header::USER_AGENT, self.user_agent.as_str())
                .header(header::ACCEPT, "*/*")
                .headers(headers)
                .body(body)
                .send()
                .await
                .map_err(|e| self.classify(e))?;
            let status = response.status();
            if status.is_success() {
                return Ok(status.as_u16());
            }
            Err(FetchError::Status {
                status: status.as_u16(),
                reason: status.canonical_reason(),
                retry_after: cache::retry_after(status, response.headers()),
            })
        };
        self.within_timeout(send).await
    }

    /// Whether the address guard lets `url` through, as far as can be told without a
    /// lookup (a literal address, `localhost`); a name is checked again as it resolves.
    pub fn check_address(&self, url: &Url) -> Result<(), FetchError> {
        guard::check_url(url, &self.policy).map_err(|why| FetchError::Refused(why.to_string()))
    }

    /// GETs `url` (a WebSub callback's intent verification) through the address guard,
    /// within `[fetch] timeout`, following no redirect; any status is returned with at
    /// most `limit` bytes of the body (a longer body is [`FetchError::TooLarge`]).
    pub async fn get_small(&self, url: &Url, limit: u64) -> Result<(u16, Vec<u8>), FetchError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(FetchError::Refused(format!(
                "{} URLs are not fetched",
                url.scheme()
            )));
        }
        guard::check_url(url, &self.policy).map_err(|why| FetchError::Refused(why.to_string()))?;
        let send = async {
            let mut response = self
                .guarded
                .get(url.clone())
                .header(header::USER_AGENT, self.user_agent.as_str())
                .header(header::ACCEPT, "*/*")
                .send()
                .await
                .map_err(|e| self.classify(e))?;
            let status = response.status().as_u16();
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(|e| self.classify(e))? {
                if (body.len() + chunk.len()) as u64 > limit {
                    return Err(FetchError::TooLarge { limit });
                }
                body.extend_from_slice(&chunk);
            }
            Ok((status, body))
        };
        self.within_timeout(send).await
    }

    /// A local file: its size and modification time stand in for an ETag, so an unchanged
    /// file is "not modified" like a 304.
    async fn fetch_file(&self, url: &Url, validators: &Validators) -> Result<Fetched, FetchError> {
        let path = url
            .to_file_path()
            .map_err(|()| FetchError::NotAFilePath(url.clone()))?;
        let file_err = |error| FetchError::File {
            path: path.display().to_string(),
            error,
        };
        let meta = tokio::fs::metadata(&path).await.map_err(file_err)?;
        if !meta.is_file() {
            return Err(FetchError::NotAFile {
                path: path.display().to_string(),
            });
        }
        if meta.len() > self.max_body {
            return Err(FetchError::TooLarge {
                limit: self.max_body,
            });
        }
        let modified = meta
            .modified()
            .ok()
            .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let etag = format!("\"file-{}-{}\"", meta.len(), modified);
        let unchanged = |body: Option<Body>| Fetched {
            status: if body.is_some() { 200 } else { 304 },
            body,
            fresh_for: None,
            moved_to: None,
            links: Vec::new(),
        };
        if validators.etag.as_deref() == Some(etag.as_str()) {
            return Ok(unchanged(None));
        }
        let mut bytes = Vec::new();
        {
            use tokio::io::AsyncReadExt;
            let file = tokio::fs::File::open(&path).await.map_err(file_err)?;
            // The file may grow between the size check and the read.
            file.take(self.max_body + 1)
                .read_to_end(&mut bytes)
                .await
                .map_err(file_err)?;
        }
        if bytes.len() as u64 > self.max_body {
            return Err(FetchError::TooLarge {
                limit: self.max_body,
            });
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(FetchError::Empty);
        }
        Ok(unchanged(Some(Body {
            bytes,
            content_type: None,
            final_url: url.clone(),
            validators: Validators {
                etag: Some(etag),
                last_modified: None,
            },
        })))
    }
}

/// The response's Content-Type, when it is text.
fn content_type(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Whether any proxy variable reqwest honours is set (non-empty), in either case. NO_PROXY
/// is not consulted: when in doubt, the first hop counts as proxied.
fn proxy_configured() -> bool {
    ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"]
        .iter()
        .any(|name| {
            [name.to_string(), name.to_ascii_lowercase()]
                .iter()
                .any(|n| std::env::var_os(n).is_some_and(|v| !v.is_empty()))
        })
}

impl Fetcher {
    /// Names what failed, from reqwest's error and its causes (its own message is vague).
    fn classify(&self, e: reqwest::Error) -> FetchError {
        classify(e, self.connect_timeout)
    }
}

fn classify(e: reqwest::Error, connect_timeout: Duration) -> FetchError {
    let chain = error_chain(&e);
    let url = e.url().map(|u| u.as_str()).unwrap_or_default();
    // The short message names what failed; the whole chain is here for whoever asks.
    tracing::debug!(url, error = %chain, "request failed");
    let lower = chain.to_ascii_lowercase();
    let host = e
        .url()
        .and_then(Url::host_str)
        .unwrap_or_default()
        .to_string();
    let addr = match e.url().and_then(Url::port_or_known_default) {
        Some(port) => format!("{host}:{port}"),
        None => host.clone(),
    };
    if let Some(at) = chain.find(guard::REFUSED) {
        let why = chain[at + guard::REFUSED.len()..].trim_start_matches(": ");
        FetchError::Refused(why.to_string())
    } else if e.is_timeout() && e.is_connect() {
        FetchError::ConnectTimeout {
            after: connect_timeout,
            addr,
        }
    } else if lower.contains("dns error") || lower.contains("failed to lookup address") {
        FetchError::Dns { host }
    } else if let Some(tls) = rustls_cause(&e) {
        FetchError::Tls(tls_reason(tls))
    } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake")
    {
        FetchError::Tls(innermost(&e))
    } else if e.is_connect() {
        let reason = match io_cause(&e) {
            Some(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
                ConnectFailure::Refused
            }
            Some(io) => ConnectFailure::Other(os_words(io)),
            None => ConnectFailure::Other(innermost(&e)),
        };
        FetchError::Connect { addr, reason }
    } else if e.is_body() || e.is_decode() {
        FetchError::Body(innermost(&e))
    } else {
        FetchError::Request(innermost(&e))
    }
}

/// The I/O errors among `e`'s causes, outermost first, with those wrapped inside them (an
/// I/O error does not list the error it wraps as its source).
fn io_errors<'a>(e: &'a (dyn std::error::Error + 'static)) -> Vec<&'a std::io::Error> {
    let mut found = Vec::new();
    let mut cause = e.source();
    while let Some(c) = cause {
        let mut io = c.downcast_ref::<std::io::Error>();
        while let Some(i) = io {
            found.push(i);
            io = i
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<std::io::Error>());
        }
        cause = c.source();
    }
    found
}

/// The innermost I/O error among `e`'s causes: the one that says what happened.
fn io_cause<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a std::io::Error> {
    io_errors(e).pop()
}

/// An I/O error as the operating system says it, without its number: "Network is
/// unreachable".
fn os_words(io: &std::io::Error) -> String {
    let text = io.to_string();
    match text.find(" (os error") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

/// The last cause of `e`: what actually failed (reqwest's and hyper's wrappers above it say
/// only "error sending request").
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut last = e;
    while let Some(c) = last.source() {
        last = c;
    }
    match last.downcast_ref::<std::io::Error>() {
        Some(io) => os_words(io),
        None => last.to_string(),
    }
}

/// The TLS error among `e`'s causes: rustls's error travels inside an I/O error, which
/// does not list it as a source.
fn rustls_cause<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut cause = e.source();
    while let Some(c) = cause {
        if let Some(tls) = c.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        cause = c.source();
    }
    io_errors(e)
        .into_iter()
        .find_map(|io| io.get_ref()?.downcast_ref::<rustls::Error>())
}

/// Why a TLS handshake failed, in short: "certificate expired", "certificate issuer
/// unknown", "the server does not speak TLS here".
fn tls_reason(e: &rustls::Error) -> String {
    use rustls::{CertificateError, Error};
    let certificate = |c: &CertificateError| match c {
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "certificate expired".to_string()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "certificate not valid yet".to_string()
        }
        CertificateError::UnknownIssuer => {
            "certificate issuer unknown (self-signed, or an intermediate missing)".to_string()
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            "certificate not valid for this name".to_string()
        }
        CertificateError::Revoked => "certificate revoked".to_string(),
        CertificateError::BadSignature => "certificate signature invalid".to_string(),
        CertificateError::BadEncoding => "certificate unreadable".to_string(),
        // rustls adds times or names after the reason: the reason is enough here.
        other => other
            .to_string()
            .split(": ")
            .next()
            .unwrap_or_default()
            .to_string(),
    };
    match e {
        Error::InvalidCertificate(c) => certificate(c),
        Error::InvalidMessage(_) | Error::InappropriateMessage { .. } => {
            "the server does not speak TLS here (an http:// address?)".to_string()
        }
        Error::AlertReceived(alert) => format!("the server refused the handshake ({alert:?})"),
        other => other.to_string(),
    }
}

/// reqwest's top-level message is vague ("error sending request"); the causes say what failed.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn trusted_hosts_are_loopback_or_allowed_networks_by_address() {
        let config = crate::config::parse(
            "[fetch]\nallow_networks = [\"10.0.0.0/8\"]\n",
            Path::new("/tmp/feeds.toml"),
        )
        .expect("valid");
        let fetcher = Fetcher::new(&config.fetch).expect("client");
        let t = |u: &str| fetcher.trusted_host(&Url::parse(u).expect("url"));
        assert!(t("http://127.0.0.1:9/hub") && t("http://[::1]/hub") && t("http://localhost/"));
        assert!(t("http://10.1.2.3/hub"));
        assert!(
            !t("http://192.0.2.1/hub") && !t("http://hub.example/") && !t("http://192.168.1.1/")
        );
    }

    #[test]
    fn link_headers_are_kept_bounded() {
        let mut headers = HeaderMap::new();
        for i in 0..40 {
            let v = format!("<https://h{i}.example/>; rel=\"hub\"");
            headers.append(header::LINK, HeaderValue::from_str(&v).expect("value"));
        }
        let long = format!(
            "<https://x.example/{}>; rel=hub",
            "a".repeat(MAX_LINK_BYTES)
        );
        let mut one = HeaderMap::new();
        one.append(header::LINK, HeaderValue::from_str(&long).expect("value"));
        assert_eq!(link_values(&headers).len(), MAX_LINKS);
        assert!(link_values(&one).is_empty());
    }

    /// A raw HTTP origin on 127.0.0.1 that answers each request for a path with
    /// `answer(path)` (a whole response) and closes the connection.
    async fn origin(answer: fn(&str) -> String) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let request = String::from_utf8_lossy(&request);
                    let path = request.split_whitespace().nth(1).unwrap_or("/");
                    let _ = conn.write_all(answer(path).as_bytes()).await;
                });
            }
        });
        addr
    }

    fn answer(path: &str) -> String {
        let (status, headers) = match path {
            "/loop" => ("302 Found", "Location: /loop\r\n"),
            "/nowhere" => ("302 Found", ""),
            "/ftp" => (
                "301 Moved Permanently",
                "Location: ftp://example.org/feed\r\n",
            ),
            "/busy" => ("503 Service Unavailable", "Retry-After: 120\r\n"),
            "/big" => ("200 OK", ""),
            _ => ("404 Not Found", ""),
        };
        let body = if path == "/big" {
            "x".repeat(2 * 1024 * 1024)
        } else {
            String::new()
        };
        format!(
            "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    }

    async fn fetch(url: &str) -> Result<Fetched, FetchError> {
        let text = format!("[fetch]\nmax_body_mb = 1\n[[source]]\nname = \"s\"\nurl = \"{url}\"\n");
        let config = crate::config::parse(&text, Path::new("feeds.toml")).expect("valid");
        let fetcher = Fetcher::new(&config.fetch).expect("client");
        let url = Url::parse(url).expect("url");
        fetcher
            .fetch(&config.sources[0], &url, &Validators::default())
            .await
    }

    /// Network failures read as one short line.
    #[test]
    fn network_failures_are_short() {
        use rustls::{CertificateError, Error};
        let tls = |e: Error| FetchError::Tls(tls_reason(&e)).to_string();
        assert_eq!(
            tls(Error::InvalidCertificate(CertificateError::Expired)),
            "TLS: certificate expired"
        );
        assert_eq!(
            tls(Error::InvalidCertificate(CertificateError::UnknownIssuer)),
            "TLS: certificate issuer unknown (self-signed, or an intermediate missing)"
        );
        assert_eq!(
            FetchError::ConnectTimeout {
                after: Duration::from_secs(30),
                addr: "example.org:443".into()
            }
            .to_string(),
            "timed out after 30s connecting to example.org:443"
        );
        assert_eq!(
            FetchError::Dns {
                host: "xkcd.com".into()
            }
            .to_string(),
            "cannot resolve xkcd.com"
        );
        assert_eq!(
            FetchError::Connect {
                addr: "10.0.0.5:443".into(),
                reason: ConnectFailure::Refused
            }
            .to_string(),
            "connection refused by 10.0.0.5:443"
        );
    }

    /// Callers (status, metrics, tests) tell failures apart by kind, not by their text.
    #[tokio::test]
    async fn failures_come_back_as_kinds() {
        let at = origin(answer).await;
        let url = |path: &str| format!("http://{at}{path}");
        match fetch(&url("/loop")).await {
            Err(FetchError::RedirectLoop(u)) => assert_eq!(u.as_str(), url("/loop")),
            other => panic!("expected a redirect loop, got {other:?}"),
        }
        assert!(matches!(
            fetch(&url("/nowhere")).await,
            Err(FetchError::NoLocation { status: 302 })
        ));
        match fetch(&url("/ftp")).await {
            Err(e @ FetchError::RedirectScheme { .. }) => {
                assert_eq!(e.to_string(), "bad redirect: redirect to a ftp URL");
            }
            other => panic!("expected a refused scheme, got {other:?}"),
        }
        assert!(matches!(
            fetch(&url("/busy")).await,
            Err(FetchError::Status {
                status: 503,
                retry_after: Some(d),
                ..
            }) if d == Duration::from_secs(120)
        ));
        assert!(matches!(
            fetch(&url("/big")).await,
            Err(FetchError::TooLarge { limit }) if limit == 1024 * 1024
        ));
        // A port nothing listens on (just freed).
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port");
        assert!(matches!(
            fetch(&format!("http://{closed}/feed")).await,
            Err(FetchError::Connect {
                reason: ConnectFailure::Refused,
                ..
            })
        ));
    }
}
