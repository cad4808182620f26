//! The HTTP server: published feeds, the status page and `/healthz`.
//!
//! It only reads the store; it never triggers a fetch.

pub mod listener;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::model::SourceState;
use crate::render::{self, FeedMeta, SourceInfo};
use crate::store::{Cursor, Store};

pub const ATOM_TYPE: &str = "application/atom+xml; charset=utf-8";
pub const RSS_TYPE: &str = "application/rss+xml; charset=utf-8";

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    /// The running config; a reload replaces it (see [`AppState::config`]).
    pub live_config: tokio::sync::watch::Receiver<Arc<Config>>,
    /// When the daemon started: `updated` of a feed that has no entries yet.
    pub started: DateTime<Utc>,
    /// Rendered documents, by path and query, for the store generation they were made at.
    pub cache: Arc<std::sync::Mutex<RenderCache>>,
    pub metrics: crate::daemon::metrics::Metrics,
}

impl AppState {
    /// The config as of now (a reload may replace it between two calls).
    pub fn config(&self) -> Arc<Config> {
        self.live_config.borrow().clone()
    }
}

/// Rendered feeds kept until the store changes or the config is reloaded, so a reader's
/// poll costs a lookup. Keyed by the canonical request (the feed's path and only the
/// parameters that change the document), and bounded in bytes (`[server] render_cache_mb`):
/// the least recently used documents give way.
pub struct RenderCache {
    generation: u64,
    /// The config the documents were rendered with.
    config: Option<Arc<Config>>,
    /// Each document with its last use (a key in `order`).
    documents: HashMap<String, (Rendered, u64)>,
    /// Keys by last use, oldest first.
    order: std::collections::BTreeMap<u64, String>,
    tick: u64,
    /// What the documents take, as [`RenderCache::cost`] counts it.
    bytes: u64,
    /// Of which documents with a query (see [`RenderCache::insert`]).
    variant_bytes: u64,
    /// Renders under way, by generation, config and key: a miss joins one of these rather
    /// than rendering the same document again.
    renders: HashMap<String, Flight<Rendered>>,
    /// Compressions under way, likewise (the key with its coding).
    compressions: HashMap<String, Flight<bytes::Bytes>>,
    /// Renders and compressions running at once, at most [`RenderCache::WORKERS`] of them;
    /// the rest wait (asynchronously) for a permit.
    work: Arc<tokio::sync::Semaphore>,
}

/// One render or compression that concurrent requests share.
type Flight<T> = Arc<tokio::sync::OnceCell<Result<T, String>>>;

impl Default for RenderCache {
    fn default() -> Self {
        RenderCache {
            generation: 0,
            config: None,
            documents: HashMap::new(),
            order: std::collections::BTreeMap::new(),
            tick: 0,
            bytes: 0,
            variant_bytes: 0,
            renders: HashMap::new(),
            compressions: HashMap::new(),
            work: Arc::new(tokio::sync::Semaphore::new(Self::workers())),
        }
    }
}

impl RenderCache {
    /// Renders and compressions at once: one per core, at least 2 and at most 8.
    fn workers() -> usize {
        std::thread::available_parallelism()
            .map_or(2, std::num::NonZeroUsize::get)
            .clamp(2, 8)
    }

    /// Whether the documents were rendered from this store generation and this config.
    fn is_current(&self, generation: u64, config: &Arc<Config>) -> bool {
        self.generation == generation
            && self.config.as_ref().is_some_and(|c| Arc::ptr_eq(c, config))
    }

    /// Bytes the cached documents take (bodies, keys, ETags and bookkeeping).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Documents cached.
    pub fn len(&self) -> usize {
        self.documents.len()
    }

    pub fn is_empty(&self) -> bool {
        self.documents.is_empty()
    }

    fn cost(key: &str, r: &Rendered) -> u64 {
        // The map and order entries, the Rendered struct and the allocations' headers.
        const OVERHEAD: usize = 256;
        let variants = r.gzip.as_ref().map_or(0, bytes::Bytes::len)
            + r.br.as_ref().map_or(0, bytes::Bytes::len);
        (r.body.len() + variants + 2 * key.len() + r.etag.len() + OVERHEAD) as u64
    }

    /// The document for `key`, now the most recently used.
    fn get(&mut self, key: &str) -> Option<Rendered> {
        self.tick += 1;
        let tick = self.tick;
        let (rendered, used) = self.documents.get_mut(key)?;
        if let Some(k) = self.order.remove(used) {
            self.order.insert(tick, k);
        }
        *used = tick;
        Some(rendered.clone())
    }

    /// Keeps `rendered` under `key`, evicting the least recently used documents so that the
    /// whole stays within `bound` bytes; a document bigger than `bound` is not kept.
    fn insert(&mut self, key: String, rendered: Rendered, bound: u64) {
        let cost = Self::cost(&key, &rendered);
        self.remove(&key);
        if cost > bound {
            return;
        }
        // The feeds readers subscribe to (no query) give way last: a document *with* a query
        // (`?limit=`, `?before=`) only ever displaces others with one, and is not kept when
        // they cannot make room, so a flood of variants cannot push `/feed.atom` out and make
        // every reader wait for renders.
        let variant = key.contains('?');
        if variant && self.bytes - self.variant_bytes + cost > bound {
            return;
        }
        while self.bytes + cost > bound {
            let victim = self
                .order
                .iter()
                .find(|(_, k)| k.contains('?'))
                .or_else(|| self.order.iter().next().filter(|_| !variant))
                .map(|(&used, _)| used);
            let Some(oldest) = victim.and_then(|used| self.order.remove(&used)) else {
                break;
            };
            self.forget(&oldest);
        }
        self.tick += 1;
        self.order.insert(self.tick, key.clone());
        self.documents.insert(key, (rendered, self.tick));
        self.bytes += cost;
        if variant {
            self.variant_bytes += cost;
        }
    }

    fn remove(&mut self, key: &str) {
        if let Some((_, used)) = self.documents.get(key) {
            self.order.remove(used);
            self.forget(key);
        }
    }

    /// Drops a document whose place in `order` is already gone.
    fn forget(&mut self, key: &str) {
        if let Some((r, _)) = self.documents.remove(key) {
            let cost = Self::cost(key, &r);
            self.bytes -= cost;
            if key.contains('?') {
                self.variant_bytes -= cost;
            }
        }
    }

    /// Empties the cache for documents of this generation and config.
    fn start_over(&mut self, generation: u64, config: &Arc<Config>) {
        self.documents.clear();
        self.order.clear();
        self.bytes = 0;
        self.variant_bytes = 0;
        self.generation = generation;
        self.config = Some(config.clone());
    }
}

#[derive(Clone)]
struct Rendered {
    /// Shared, not copied, by every response that serves it.
    body: bytes::Bytes,
    /// The body gzipped and brotli-compressed, once a reader has asked for them.
    gzip: Option<bytes::Bytes>,
    br: Option<bytes::Bytes>,
    /// A strong ETag over the bytes (the documents carry no build time, so equal entries
    /// give equal bytes).
    etag: String,
    content_type: &'static str,
    last_modified: DateTime<Utc>,
}

pub fn router(state: AppState) -> Router {
    // Cheap reads that must answer while feeds queue: outside the limit on feed requests.
    let probes = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(state.clone());
    Router::new()
        .route("/", get(index))
        .route("/feed.atom", get(feed_atom))
        .route("/feed.rss", get(feed_rss))
        .route("/feed.json", get(feed_json))
        // /sources/{name}.{fmt}, /tags/{tag}.{fmt}, /feeds/{name}.{fmt}
        .route("/{folder}/{file}", get(folder_feed))
        .route("/opml", get(opml))
        .fallback(not_found)
        .with_state(state)
        // At most this many requests are served at once (one count across these routes);
        // the rest wait their turn.
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
            MAX_CONCURRENT_REQUESTS,
        ))
        .merge(probes)
        // A request that takes this long is answered 408 and its work dropped.
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
}

/// A content coding a feed is served in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Coding {
    Identity,
    Gzip,
    Br,
}

impl Coding {
    fn name(self) -> &'static str {
        match self {
            Coding::Identity => "identity",
            Coding::Gzip => "gzip",
            Coding::Br => "br",
        }
    }
}

/// The coding to answer in, from Accept-Encoding with its q-values: the most preferred of
/// br, gzip and identity (on a tie in that order); identity when none is acceptable or the
/// header is absent.
fn negotiate(headers: &HeaderMap) -> Coding {
    let (mut br, mut gzip, mut identity, mut any) = (None, None, None, None);
    for value in headers.get_all(header::ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let name = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let mut q = Some(1.0f32);
            for p in parts {
                if let Some((k, v)) = p.split_once('=')
                    && k.trim().eq_ignore_ascii_case("q")
                {
                    q = v
                        .trim()
                        .parse::<f32>()
                        .ok()
                        .filter(|q| (0.0..=1.0).contains(q));
                }
            }
            // A malformed q-value: the item is ignored.
            let Some(q) = q else { continue };
            match name.as_str() {
                "br" => br = Some(q),
                "gzip" | "x-gzip" => gzip = Some(q),
                "identity" => identity = Some(q),
                "*" => any = Some(q),
                _ => {}
            }
        }
    }
    let br = br.or(any).unwrap_or(0.0);
    let gzip = gzip.or(any).unwrap_or(0.0);
    // Identity is acceptable unless excluded, and least preferred when not named.
    let identity = identity.or(any.filter(|q| *q == 0.0)).unwrap_or(0.0001);
    let mut best = (Coding::Identity, 0.0f32);
    for (coding, q) in [
        (Coding::Br, br),
        (Coding::Gzip, gzip),
        (Coding::Identity, identity),
    ] {
        if q > best.1 {
            best = (coding, q);
        }
    }
    best.0
}

/// Gzip level and brotli quality and window: good ratios at a few ms per 100 KB, and a
/// brotli window of 1 MiB (not the 4 MiB default) so a compression holds little memory.
const GZIP_LEVEL: u32 = 6;
const BROTLI_QUALITY: i32 = 5;
const BROTLI_WINDOW_BITS: i32 = 20;

/// `body` in `coding` (no I/O: bytes in memory to bytes in memory).
fn compress(body: &[u8], coding: Coding) -> Result<bytes::Bytes, String> {
    use std::io::Write;
    match coding {
        Coding::Identity => Ok(bytes::Bytes::copy_from_slice(body)),
        Coding::Gzip => {
            let mut gz = flate2::write::GzEncoder::new(
                Vec::with_capacity(body.len() / 4),
                flate2::Compression::new(GZIP_LEVEL),
            );
            gz.write_all(body).map_err(|e| e.to_string())?;
            gz.finish()
                .map(bytes::Bytes::from)
                .map_err(|e| e.to_string())
        }
        Coding::Br => {
            let params = brotli::enc::BrotliEncoderParams {
                quality: BROTLI_QUALITY,
                lgwin: BROTLI_WINDOW_BITS,
                size_hint: body.len(),
                ..Default::default()
            };
            let mut out = Vec::with_capacity(body.len() / 4);
            brotli::BrotliCompress(&mut &body[..], &mut out, &params).map_err(|e| e.to_string())?;
            Ok(bytes::Bytes::from(out))
        }
    }
}

/// Joins the flight under `key` in the map `which` picks, starting it with `start` when
/// there is none: concurrent callers share one result. The flight leaves the map when it
/// has its result, or when its last caller gives up (so a later caller starts it again).
async fn single_flight<T, F, Fut>(
    state: &AppState,
    key: String,
    which: fn(&mut RenderCache) -> &mut HashMap<String, Flight<T>>,
    start: F,
) -> Result<T, String>
where
    T: Clone,
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    struct Leave<'a, T> {
        state: &'a AppState,
        key: String,
        which: fn(&mut RenderCache) -> &mut HashMap<String, Flight<T>>,
        flight: Flight<T>,
    }
    impl<T> Drop for Leave<'_, T> {
        fn drop(&mut self) {
            let mut cache = self
                .state
                .cache
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let map = (self.which)(&mut cache);
            // Clones are made only under this lock: 2 is the map's and ours.
            if map.get(&self.key).is_some_and(|f| {
                Arc::ptr_eq(f, &self.flight)
                    && (self.flight.initialized() || Arc::strong_count(&self.flight) == 2)
            }) {
                map.remove(&self.key);
            }
        }
    }
    let flight = {
        let mut cache = state
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        which(&mut cache).entry(key.clone()).or_default().clone()
    };
    let leave = Leave {
        state,
        key,
        which,
        flight,
    };
    leave.flight.get_or_init(start).await.clone()
}

/// Runs `work` on a blocking thread once a render permit is free (waiting for it without
/// holding a thread); the permit is held until the work is done, even if the request is
/// dropped meanwhile.
async fn bounded<T: Send + 'static>(
    state: &AppState,
    work: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    let semaphore = state
        .cache
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .work
        .clone();
    let permit = semaphore.acquire_owned().await.map_err(|e| e.to_string())?;
    match tokio::task::spawn_blocking(move || {
        let result = work();
        drop(permit);
        result
    })
    .await
    {
        Ok(r) => r,
        Err(e) => Err(e.to_string()),
    }
}

/// How long one request may take.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// Requests served at the same time, at most.
pub const MAX_CONCURRENT_REQUESTS: usize = 256;

pub const JSON_TYPE: &str = "application/feed+json; charset=utf-8";

/// The most entries `?limit=` may ask for.
pub const MAX_LIMIT: usize = 1000;

#[derive(Clone, Copy)]
enum Format {
    Atom,
    Rss,
    Json,
}

impl Format {
    fn from_extension(ext: &str) -> Option<Format> {
        match ext {
            "atom" => Some(Format::Atom),
            "rss" => Some(Format::Rss),
            "json" => Some(Format::Json),
            _ => None,
        }
    }
}

/// Which entries a published feed takes.
enum Selection {
    All,
    Source(String),
    Tag(String),
    /// A `[[feed]]` from the config, by index.
    Named(usize),
}

async fn feed_atom(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    published(&state, Selection::All, Format::Atom, &uri, &headers).await
}

async fn feed_rss(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    published(&state, Selection::All, Format::Rss, &uri, &headers).await
}

async fn feed_json(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    published(&state, Selection::All, Format::Json, &uri, &headers).await
}

async fn folder_feed(
    State(state): State<AppState>,
    Path((folder, file)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let select = |c: &Config, name: &str| match folder.as_str() {
        "sources" => c.source(name).map(|_| Selection::Source(name.into())),
        "tags" => c
            .sources
            .iter()
            .any(|s| s.tags.iter().any(|t| t == name))
            .then(|| Selection::Tag(name.into())),
        "feeds" => c
            .feeds
            .iter()
            .position(|f| f.name == name)
            .map(Selection::Named),
        _ => None,
    };
    feed_file(&state, &file, &uri, &headers, select).await
}

/// `{name}.{fmt}` in a feed folder: `select` says which entries `name` means, or that there
/// is no such feed (404).
async fn feed_file(
    state: &AppState,
    file: &str,
    uri: &Uri,
    headers: &HeaderMap,
    select: impl Fn(&Config, &str) -> Option<Selection>,
) -> Response {
    match split_file(file).and_then(|(name, format)| Some((select(&state.config(), name)?, format)))
    {
        Some((selection, format)) => published(state, selection, format, uri, headers).await,
        None => (StatusCode::NOT_FOUND, "not found\n").into_response(),
    }
}

/// `name.atom` → (`name`, Atom).
fn split_file(file: &str) -> Option<(&str, Format)> {
    let (name, ext) = file.rsplit_once('.')?;
    Some((name, Format::from_extension(ext)?))
}

/// The query a feed takes: `?limit=N` (1 to [`MAX_LIMIT`]) and `?before=CURSOR` (from a
/// `next` link); anything malformed there is a 400.
fn query(uri: &Uri, default: usize) -> Result<(usize, Option<Cursor>), String> {
    let mut limit = default;
    let mut before = None;
    let Some(q) = uri.query() else {
        return Ok((limit, before));
    };
    for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
        match &*k {
            "limit" => {
                limit = match v.parse::<usize>() {
                    Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                    _ => {
                        return Err(format!(
                            "limit must be a whole number from 1 to {MAX_LIMIT}\n"
                        ));
                    }
                }
            }
            "before" => {
                before = Some(
                    Cursor::from_param(&v)
                        .ok_or("before must be a cursor from a feed's next link\n")?,
                )
            }
            _ => {}
        }
    }
    Ok((limit, before))
}

/// Renders a published feed, answering conditional requests with 304.
async fn published(
    state: &AppState,
    selection: Selection,
    format: Format,
    uri: &Uri,
    headers: &HeaderMap,
) -> Response {
    let config = state.config();
    let (limit, before) = match query(uri, config.publish.max_items) {
        Ok(q) => q,
        Err(message) => return (StatusCode::BAD_REQUEST, message).into_response(),
    };
    // The canonical request: the feed's own path and only the parameters that change the
    // document, so that ignored or re-spelt parameters neither add cache entries nor reach
    // the self link.
    let uri = match canonical_uri(&config, &selection, format, limit, before.as_ref()) {
        Some(u) => u,
        None => return (StatusCode::NOT_FOUND, "not found\n").into_response(),
    };
    let key = uri.to_string();
    let generation = state.store.generation();
    // Flights are per store generation and config: a miss never joins a stale render.
    let flight_key = format!("{generation}:{:p}:{key}", Arc::as_ptr(&config));
    let rendered = match cached(state, generation, &config, &key) {
        Some(r) => r,
        None => {
            let render = single_flight(
                state,
                flight_key.clone(),
                |c| &mut c.renders,
                || async {
                    // Another flight may have finished since the lookup.
                    if let Some(r) = cached(state, generation, &config, &key) {
                        return Ok(r);
                    }
                    // On a blocking thread, a few at a time: a render reads the store, and
                    // the runtime's few workers must stay free for other requests
                    // (`/healthz` among them).
                    let (for_render, uri) = (state.clone(), uri.clone());
                    let r = bounded(state, move || {
                        render_selection(&for_render, &selection, format, &uri, limit, before)
                            .map_err(|e| e.to_string())
                    })
                    .await?;
                    state.metrics.record_render();
                    keep(state, generation, &config, key.clone(), r.clone());
                    Ok(r)
                },
            )
            .await;
            match render {
                Ok(r) => r,
                Err(e) => return internal_error(e),
            }
        }
    };
    let coding = negotiate(headers);
    let rendered = match (coding, &rendered.gzip, &rendered.br) {
        (Coding::Identity, _, _) | (Coding::Gzip, Some(_), _) | (Coding::Br, _, Some(_)) => {
            rendered
        }
        _ => {
            let compressed = single_flight(
                state,
                format!("{flight_key}#{}", coding.name()),
                |c| &mut c.compressions,
                || async {
                    if let Some(r) = cached(state, generation, &config, &key)
                        && let Some(b) = variant(&r, coding)
                    {
                        return Ok(b.clone());
                    }
                    let body = rendered.body.clone();
                    let b = bounded(state, move || compress(&body, coding)).await?;
                    state.metrics.record_compression(coding.name());
                    // Kept beside the document (which may have given way meanwhile: then
                    // the document comes back with it).
                    let mut with = cached(state, generation, &config, &key)
                        .unwrap_or_else(|| rendered.clone());
                    match coding {
                        Coding::Gzip => with.gzip = Some(b.clone()),
                        Coding::Br => with.br = Some(b.clone()),
                        Coding::Identity => {}
                    }
                    keep(state, generation, &config, key.clone(), with);
                    Ok(b)
                },
            )
            .await;
            let mut r = rendered;
            match (coding, compressed) {
                (Coding::Gzip, Ok(b)) => r.gzip = Some(b),
                (Coding::Br, Ok(b)) => r.br = Some(b),
                (_, Ok(_)) => {}
                (_, Err(e)) => return internal_error(e),
            }
            r
        }
    };
    let response = cached_response(state, headers, rendered, coding);
    let label = match format {
        Format::Atom => "atom",
        Format::Rss => "rss",
        Format::Json => "json",
    };
    state
        .metrics
        .record_request(label, response.status().as_u16());
    response
}

/// The cached document for `key`, if the cache holds this generation and config.
fn cached(state: &AppState, generation: u64, config: &Arc<Config>, key: &str) -> Option<Rendered> {
    let mut cache = state
        .cache
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if cache.is_current(generation, config) {
        cache.get(key)
    } else {
        None
    }
}

/// Keeps `rendered` (with the variants it carries) under `key`, within `render_cache_mb`.
fn keep(state: &AppState, generation: u64, config: &Arc<Config>, key: String, r: Rendered) {
    // A std Mutex: held for an insert, never across an .await.
    let mut cache = state
        .cache
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !cache.is_current(generation, config) {
        if generation < cache.generation {
            // Rendered from an older generation than the cache now holds: not kept.
            return;
        }
        cache.start_over(generation, config);
    }
    cache.insert(key, r, config.server.render_cache_bytes);
    state.metrics.set_render_cache(cache.bytes(), cache.len());
}

/// The compressed body `r` carries for `coding`, if any.
fn variant(r: &Rendered, coding: Coding) -> Option<&bytes::Bytes> {
    match coding {
        Coding::Identity => Some(&r.body),
        Coding::Gzip => r.gzip.as_ref(),
        Coding::Br => r.br.as_ref(),
    }
}

/// The request as the feed names itself: `/feed.{fmt}`, `/sources/{name}.{fmt}`,
/// `/tags/{tag}.{fmt}` or `/feeds/{name}.{fmt}`, with `limit` (when it is not the default)
/// and `before`. Names and tags are slugs, so they need no escaping.
fn canonical_uri(
    config: &Config,
    selection: &Selection,
    format: Format,
    limit: usize,
    before: Option<&Cursor>,
) -> Option<Uri> {
    let ext = match format {
        Format::Atom => "atom",
        Format::Rss => "rss",
        Format::Json => "json",
    };
    let path = match selection {
        Selection::All => format!("/feed.{ext}"),
        Selection::Source(name) => format!("/sources/{name}.{ext}"),
        Selection::Tag(tag) => format!("/tags/{tag}.{ext}"),
        Selection::Named(i) => format!("/feeds/{}.{ext}", config.feeds.get(*i)?.name),
    };
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    if limit != config.publish.max_items {
        query.append_pair("limit", &limit.to_string());
    }
    if let Some(c) = before {
        query.append_pair("before", &c.to_param());
    }
    let query = query.finish();
    let text = if query.is_empty() {
        path
    } else {
        format!("{path}?{query}")
    };
    text.parse().ok()
}

/// Reads the selected entries and renders them.
fn render_selection(
    state: &AppState,
    selection: &Selection,
    format: Format,
    uri: &Uri,
    limit: usize,
    before: Option<Cursor>,
) -> Result<Rendered, crate::store::StoreError> {
    let config = &state.config();
    let page = match selection {
        // A source's own feed shows all its entries, duplicates of other sources' included.
        Selection::Source(name) => state
            .store
            .page(Some(name), before.as_ref(), limit, |_| true),
        _ => {
            // The sources the feed takes, and the named feed (for its patterns).
            let (sources, feed): (Option<Vec<&str>>, _) = match selection {
                Selection::Tag(tag) => (
                    Some(
                        config
                            .sources
                            .iter()
                            .filter(|s| s.tags.iter().any(|t| t == tag))
                            .map(|s| s.name.as_str())
                            .collect(),
                    ),
                    None,
                ),
                Selection::Named(i) => {
                    let feed = &config.feeds[*i];
                    let mut sources: Vec<&str> = feed.sources.iter().map(String::as_str).collect();
                    sources.sort_unstable();
                    sources.dedup();
                    // Every source and no patterns: the time index answers, as for /feed.atom.
                    let everything = !feed.has_patterns() && sources.len() == config.sources.len();
                    ((!everything).then_some(sources), Some(feed))
                }
                // Every configured source: the config's own index answers.
                _ => (None, None),
            };
            let chosen_set: Option<HashSet<&str>> =
                sources.as_ref().map(|s| s.iter().copied().collect());
            let chosen = |name: &str| match &chosen_set {
                Some(set) => set.contains(name),
                None => config.source(name).is_some(),
            };
            // Each article once: a duplicate shows only while its credited source is not in
            // the same feed.
            // (A credited entry pruned by retention no longer stands in for its duplicates.)
            let accept = |e: &crate::model::Entry| {
                chosen(&e.source)
                    && e.duplicate_of.as_ref().is_none_or(|c| {
                        !chosen(&c.source) || !state.store.has_entry(&c.source, &c.key)
                    })
                    && feed.is_none_or(|f| f.admits_entry(e))
            };
            match &sources {
                // Read from the feed's own index when it has one and it is built, else by
                // merging its sources' indexes: never a scan of the whole store.
                Some(sources) => state.store.page_of_sources(
                    sources,
                    feed.filter(|f| f.has_patterns()).map(|f| f.index_id()),
                    before.as_ref(),
                    limit,
                    accept,
                ),
                // Every configured source: the time index, unless it is crowded with entries
                // no feed shows (sources removed from the config, waiting for deletion; many
                // duplicates): then the configured sources' own indexes are merged, so a
                // render never reads much more than it publishes.
                None => match state.store.page_within(
                    before.as_ref(),
                    limit,
                    accept,
                    2 * limit + 100,
                )? {
                    Some(page) => Ok(page),
                    None => {
                        let all: Vec<&str> =
                            config.sources.iter().map(|s| s.name.as_str()).collect();
                        state
                            .store
                            .page_of_sources(&all, None, before.as_ref(), limit, accept)
                    }
                },
            }
        }
    }?;
    let title = match selection {
        Selection::All => config.publish.title.clone(),
        Selection::Source(name) => format!("{}: {name}", config.publish.title),
        Selection::Tag(tag) => format!("{}: #{tag}", config.publish.title),
        Selection::Named(i) => {
            let feed = &config.feeds[*i];
            feed.title
                .clone()
                .unwrap_or_else(|| format!("{}: {}", config.publish.title, feed.name))
        }
    };
    let entries: Vec<crate::model::Entry> = page
        .entries
        .into_iter()
        .map(crate::model::Entry::for_publishing)
        .collect();
    let sources = source_infos(state, &entries)?;
    let base = &config.server.base_url;
    let description = match selection {
        Selection::Named(i) => config.feeds[*i].description.clone(),
        _ => None,
    };
    let meta = FeedMeta {
        title,
        description: description.unwrap_or_else(|| config.publish.description.clone()),
        author: config.publish.author.clone(),
        self_url: format!(
            "{base}{}",
            uri.path_and_query()
                .map(|p| p.as_str())
                .unwrap_or(uri.path())
        ),
        id: format!("{base}{}", uri.path()),
        home_url: format!("{base}/"),
        empty_updated: state.started,
        // RFC 5005 paging: the same feed, from where this page ends.
        next_url: page.next.map(|c| {
            let mut next = url::form_urlencoded::Serializer::new(String::new());
            if limit != config.publish.max_items {
                next.append_pair("limit", &limit.to_string());
            }
            next.append_pair("before", &c.to_param());
            format!("{base}{}?{}", uri.path(), next.finish())
        }),
    };
    let (body, content_type) = match format {
        Format::Atom => (render::atom(&meta, &entries, &sources), ATOM_TYPE),
        Format::Rss => (render::rss(&meta, &entries, &sources), RSS_TYPE),
        Format::Json => (render::json(&meta, &entries, &sources), JSON_TYPE),
    };
    let last_modified = entries
        .iter()
        .map(|e| e.updated)
        .max()
        .unwrap_or(state.started);
    let etag = format!("\"{}\"", &blake3::hash(body.as_bytes()).to_hex()[..32]);
    Ok(Rendered {
        body: bytes::Bytes::from(body),
        gzip: None,
        br: None,
        etag,
        content_type,
        last_modified,
    })
}

/// The rendered document in `coding` (which it carries), with its ETag (a strong one per
/// coding: `"…-gzip"`, `"…-br"`), Last-Modified (the newest entry), a max-age from the poll
/// intervals, or 304 when the reader already has it (in any coding).
fn cached_response(
    state: &AppState,
    headers: &HeaderMap,
    rendered: Rendered,
    coding: Coding,
) -> Response {
    let body = variant(&rendered, coding)
        .cloned()
        .unwrap_or_else(|| rendered.body.clone());
    let coded = !matches!(coding, Coding::Identity) && variant(&rendered, coding).is_some();
    let Rendered {
        etag,
        content_type,
        last_modified,
        ..
    } = rendered;
    let vary = (header::VARY, "Accept-Encoding".to_string());
    let last_modified = httpdate::fmt_http_date(std::time::SystemTime::from(last_modified));
    // Readers may keep a copy for half the shortest poll interval, within [10 s, 15 min].
    let shortest = state
        .config()
        .sources
        .iter()
        .map(|s| s.interval)
        .min()
        .unwrap_or(state.config().fetch.default_interval);
    let max_age = (shortest / 2).clamp(
        std::time::Duration::from_secs(10),
        std::time::Duration::from_secs(900),
    );
    let cache_control = format!("public, max-age={}", max_age.as_secs());
    // The validator the reader already has, when it names this document (any coding of it;
    // `"…-gzip"`, `"…-br"`): a 304 echoes it back.
    let still_valid: Option<String> = match headers.get(header::IF_NONE_MATCH) {
        Some(inm) => inm.to_str().ok().and_then(|v| {
            v.split(',')
                .map(|t| t.trim().trim_start_matches("W/"))
                .find(|t| {
                    let base = ["-gzip\"", "-br\""]
                        .iter()
                        .find_map(|s| t.strip_suffix(s).map(|b| format!("{b}\"")))
                        .unwrap_or_else(|| t.to_string());
                    base == etag || *t == "*"
                })
                .map(|t| {
                    if t == "*" {
                        etag.clone()
                    } else {
                        t.to_string()
                    }
                })
        }),
        None => headers
            .get(header::IF_MODIFIED_SINCE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .zip(httpdate::parse_http_date(&last_modified).ok())
            .is_some_and(|(since, modified)| modified <= since)
            .then(|| etag.clone()),
    };
    if let Some(validator) = still_valid {
        return (
            StatusCode::NOT_MODIFIED,
            [
                (header::ETAG, validator),
                (header::LAST_MODIFIED, last_modified),
                (header::CACHE_CONTROL, cache_control),
                vary,
            ],
        )
            .into_response();
    }
    let (etag, encoding) = match coded {
        true => (
            format!("{}-{}\"", etag.trim_end_matches('"'), coding.name()),
            Some((header::CONTENT_ENCODING, coding.name().to_string())),
        ),
        false => (etag, None),
    };
    let common = [
        (header::ETAG, etag),
        (header::LAST_MODIFIED, last_modified),
        (header::CACHE_CONTROL, cache_control),
        vary,
    ];
    let mut response = (
        [(header::CONTENT_TYPE, content_type.to_string())],
        common,
        body,
    )
        .into_response();
    if let Some((name, value)) = encoding
        && let Ok(value) = axum::http::HeaderValue::from_str(&value)
    {
        response.headers_mut().insert(name, value);
    }
    response
}

/// Attribution for each configured source: its title (from the config, else from its feed,
/// else its name), feed URL and home page.
fn source_infos(
    state: &AppState,
    entries: &[crate::model::Entry],
) -> Result<HashMap<String, SourceInfo>, crate::store::StoreError> {
    // Only the sources on this page: a render costs the page, not the number of sources.
    let config = state.config();
    let mut out = HashMap::new();
    for e in entries {
        if out.contains_key(&e.source) {
            continue;
        }
        let Some(s) = config.source(&e.source) else {
            continue;
        };
        let st = state.store.source_state(&s.name)?;
        let title = s
            .title
            .clone()
            .or_else(|| st.as_ref().and_then(|st| st.feed_title.clone()))
            .unwrap_or_else(|| s.name.clone());
        // A `file:` URL is private to this machine: the source's feed here stands for it.
        let info = SourceInfo {
            title,
            url: render::public_source_url(&config.server.base_url, &s.name, &s.url),
            link: st.and_then(|st| st.feed_link),
        };
        out.insert(s.name.clone(), info);
    }
    Ok(out)
}

/// Runs a store read on a blocking thread (sled reads block), so request handlers never
/// hold up the runtime's workers.
async fn off_runtime<T: Send + 'static>(
    read: impl FnOnce() -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Result<T, String> {
    match tokio::task::spawn_blocking(read).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// Every source's status, read off the runtime.
async fn health(state: &AppState) -> Result<crate::daemon::status::Health, String> {
    let (config, store) = (state.config(), state.store.clone());
    off_runtime(move || crate::daemon::status::collect(&config, &store)).await
}

/// [`health`] as the public may see it: a `file:` source (a path on this machine) is shown
/// by its feed here, and its path is left out of its errors.
async fn public_health(state: &AppState) -> Result<crate::daemon::status::Health, String> {
    let mut health = health(state).await?;
    hide_local_paths(&state.config(), &mut health);
    Ok(health)
}

/// Replaces each `file:` source's URL with its feed on this instance, and its path in its
/// error and warning texts with `[local path]`; drops credentials from web sources' URLs.
fn hide_local_paths(config: &Config, health: &mut crate::daemon::status::Health) {
    for s in &mut health.sources {
        // A web source as the feeds publish it: without a user name or password, in its
        // URLs and in its error texts (which may quote the URL).
        for u in [&mut s.url, &mut s.current_url] {
            if let Ok(parsed) = url::Url::parse(u)
                && parsed.scheme() != "file"
            {
                let public = render::public_source_url(&config.server.base_url, &s.name, &parsed);
                for text in [&mut s.last_error, &mut s.last_warning]
                    .into_iter()
                    .flatten()
                {
                    *text = text.replace(u.as_str(), &public);
                }
                *u = public;
            }
        }
        let Some(src) = config
            .source(&s.name)
            .filter(|src| src.url.scheme() == "file")
        else {
            continue;
        };
        let public = render::public_source_url(&config.server.base_url, &s.name, &src.url);
        let mut paths = vec![src.url.to_string(), s.url.clone(), s.current_url.clone()];
        if let Ok(p) = src.url.to_file_path() {
            paths.push(p.display().to_string());
        }
        paths.retain(|p| !p.is_empty());
        // The longest first, so a URL is replaced whole before its path inside it.
        paths.sort_by_key(|p| std::cmp::Reverse(p.len()));
        let private = |text: &mut Option<String>| {
            if let Some(t) = text {
                for p in &paths {
                    *t = t.replace(p.as_str(), "[local path]");
                }
            }
        };
        private(&mut s.last_error);
        private(&mut s.last_warning);
        if let Some(f) = &mut s.full_text {
            private(&mut f.last_refusal);
        }
        s.url = public.clone();
        s.current_url = public;
    }
}

async fn healthz(State(state): State<AppState>) -> Response {
    match public_health(&state).await {
        Ok(health) => axum::Json(health).into_response(),
        Err(e) => internal_error(e),
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    let stored = match health(&state).await {
        Ok(h) => h.entries,
        Err(e) => return internal_error(e),
    };
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(stored, state.store.entries_read()),
    )
        .into_response()
}

/// The sources as an OPML subscription list.
async fn opml(State(state): State<AppState>) -> Response {
    let store = state.store.clone();
    let states: HashMap<String, SourceState> =
        match off_runtime(move || store.source_states()).await {
            Ok(s) => s.into_iter().collect(),
            Err(e) => return internal_error(e),
        };
    let body = crate::render::opml::export_public(&state.config(), &|name| {
        states.get(name).and_then(|s| s.feed_title.clone())
    });
    ([(header::CONTENT_TYPE, "text/x-opml; charset=utf-8")], body).into_response()
}

/// A plain page listing the feeds, with autodiscovery links for readers.
async fn index(State(state): State<AppState>) -> Response {
    let c = &state.config();
    // Characters XML cannot carry are no use in HTML either (and may come from the config).
    let e = |s: &str| html_escape::encode_text(&crate::feed::text::xml_text(s)).into_owned();
    let a = |s: &str| {
        html_escape::encode_double_quoted_attribute(&crate::feed::text::xml_text(s)).into_owned()
    };
    let base = &c.server.base_url;
    let title = e(&c.publish.title);
    let mut page = String::new();
    page.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    page.push_str(&format!("<title>{title}</title>"));
    page.push_str(
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><style>\
         body{font:16px/1.5 system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;color:#222}\
         table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.3rem .6rem;\
         border-bottom:1px solid #ddd;vertical-align:top}th{background:#f4f4f4}\
         td:last-child,th:last-child{text-align:right}a{color:#0645ad}</style>",
    );
    page.push_str(&format!(
        "<link rel=\"alternate\" type=\"application/atom+xml\" title=\"{} (Atom)\" href=\"{}\">",
        a(&c.publish.title),
        a(&format!("{base}/feed.atom"))
    ));
    page.push_str(&format!(
        "<link rel=\"alternate\" type=\"application/rss+xml\" title=\"{} (RSS)\" href=\"{}\">",
        a(&c.publish.title),
        a(&format!("{base}/feed.rss"))
    ));
    page.push_str(&format!(
        "<link rel=\"alternate\" type=\"application/feed+json\" title=\"{} (JSON Feed)\" href=\"{}\">",
        a(&c.publish.title),
        a(&format!("{base}/feed.json"))
    ));
    page.push_str("</head><body>");
    page.push_str(&format!(
        "<h1>{title}</h1><p>{}</p>",
        e(&c.publish.description)
    ));
    page.push_str("<h2>Feeds</h2><ul>");
    let formats = |path: &str| {
        format!(
            "<a href=\"{0}.atom\">Atom</a> · <a href=\"{0}.rss\">RSS</a> · <a href=\"{0}.json\">JSON</a>",
            a(path)
        )
    };
    page.push_str(&format!("<li>Everything: {}</li>", formats("feed")));
    for f in &c.feeds {
        page.push_str(&format!(
            "<li>{}: {}</li>",
            e(f.title.as_deref().unwrap_or(&f.name)),
            formats(&format!("feeds/{}", f.name))
        ));
    }
    let mut tags: Vec<&str> = c
        .sources
        .iter()
        .flat_map(|s| s.tags.iter().map(String::as_str))
        .collect();
    tags.sort_unstable();
    tags.dedup();
    for t in tags {
        page.push_str(&format!(
            "<li>#{}: {}</li>",
            e(t),
            formats(&format!("tags/{t}"))
        ));
    }
    page.push_str("</ul><h2>Sources</h2>");
    let health = match public_health(&state).await {
        Ok(h) => h,
        Err(err) => return internal_error(err),
    };
    let when = |t: Option<DateTime<Utc>>| {
        t.map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_else(|| "never".into())
    };
    page.push_str(
        "<table><thead><tr><th>Source</th><th>Feeds</th><th>State</th><th>Last success</th>\
         <th>Last error</th><th>Next poll</th><th>Entries</th></tr></thead><tbody>",
    );
    for s in &health.sources {
        let error = match (&s.last_error, s.consecutive_failures) {
            (Some(err), n) if n > 0 => format!("{} ({n} in a row)", e(err)),
            (Some(err), _) => format!("{} (then recovered)", e(err)),
            (None, _) => String::new(),
        };
        // The source's own feed, or for a `file:` source (a path on this machine) its feed
        // here.
        let href = match (url::Url::parse(&s.current_url), c.source(&s.name)) {
            (Ok(u), _) => render::public_source_url(base, &s.name, &u),
            (Err(_), Some(src)) => render::public_source_url(base, &s.name, &src.url),
            (Err(_), None) => format!("{base}/sources/{}.atom", s.name),
        };
        page.push_str(&format!(
            "<tr><td><a href=\"{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            a(&href),
            e(&s.name),
            formats(&format!("sources/{}", s.name)),
            e(&s.state),
            when(s.last_success),
            error,
            if s.state == "gone" { "never".into() } else { when(s.next_poll) },
            s.entries
        ));
    }
    page.push_str("</tbody></table></body></html>\n");
    Html(page).into_response()
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

fn internal_error(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "request failed");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal error: the store could not be read\n",
    )
        .into_response()
}
