//! The render cache: rendered feeds by canonical request, for one store generation and
//! config, bounded in bytes; single flight (concurrent misses share one render or
//! compression); the gzip and brotli variants; ETags, Last-Modified and 304s.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};

use super::error::ServeError;
use crate::config::Config;
use crate::daemon::metrics::Metrics;

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
    pub(super) renders: HashMap<String, Flight<Rendered>>,
    /// Compressions under way, likewise (the key with its coding).
    pub(super) compressions: HashMap<String, Flight<bytes::Bytes>>,
    /// Renders and compressions running at once, at most [`RenderCache::WORKERS`] of them;
    /// the rest wait (asynchronously) for a permit.
    work: Arc<tokio::sync::Semaphore>,
}

/// One render or compression that concurrent requests share.
pub(super) type Flight<T> = Arc<tokio::sync::OnceCell<Result<T, Arc<ServeError>>>>;

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
        (r.body.len() + variants + 2 * key.len() + r.head.etags[0].len() + OVERHEAD) as u64
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
pub(super) struct Rendered {
    /// Shared, not copied, by every response that serves it.
    pub(super) body: bytes::Bytes,
    /// The body gzipped and brotli-compressed, once a reader has asked for them.
    pub(super) gzip: Option<bytes::Bytes>,
    pub(super) br: Option<bytes::Bytes>,
    pub(super) content_type: &'static str,
    /// Its response headers, made once with it.
    pub(super) head: Arc<Head>,
}

/// A rendered document's response headers, made when it is rendered rather than at every
/// request: a warm feed's response is then a lookup and a few reference counts.
pub(super) struct Head {
    /// A strong ETag over the bytes (the documents carry no build time, so equal entries
    /// give equal bytes), then the same for each compressed variant (`"…-gzip"`, `"…-br"`).
    etags: [HeaderValue; 3],
    last_modified: HeaderValue,
    /// What `last_modified` says (whole seconds), for If-Modified-Since.
    modified: std::time::SystemTime,
    cache_control: HeaderValue,
    content_type: HeaderValue,
    /// Headers of this document alone: WebSub's `Link`s on a feed, the content security
    /// policy on a page.
    extra: Vec<(header::HeaderName, HeaderValue)>,
}

impl Head {
    /// The headers of a document with this strong `etag` (quoted hex), type and newest
    /// entry, rendered under `config`, with `extra` headers of its own.
    pub(super) fn new(
        config: &Config,
        etag: String,
        content_type: &'static str,
        last_modified: DateTime<Utc>,
        extra: Vec<(header::HeaderName, HeaderValue)>,
    ) -> Head {
        // An HTTP date cannot say a time before 1970 (httpdate panics on one): a feed whose
        // newest entry is older says 1970.
        let modified = std::time::SystemTime::from(last_modified).max(std::time::UNIX_EPOCH);
        let text = httpdate::fmt_http_date(modified);
        let modified = httpdate::parse_http_date(&text).unwrap_or(modified);
        // Readers may keep a copy for half the shortest poll interval, within [10 s, 15 min].
        let shortest = config
            .sources
            .iter()
            .map(|s| s.interval)
            .min()
            .unwrap_or(config.fetch.default_interval);
        let max_age = (shortest / 2).clamp(
            std::time::Duration::from_secs(10),
            std::time::Duration::from_secs(900),
        );
        let variant = |coding: &str| format!("{}-{coding}\"", etag.trim_end_matches('"'));
        // Hex digests, dates, numbers and static text: always valid header values.
        let value = |v: String| HeaderValue::from_str(&v).unwrap_or(HeaderValue::from_static(""));
        let (gzip, br) = (variant("gzip"), variant("br"));
        Head {
            etags: [value(etag), value(gzip), value(br)],
            last_modified: value(text),
            modified,
            cache_control: value(format!("public, max-age={}", max_age.as_secs())),
            content_type: HeaderValue::from_static(content_type),
            extra,
        }
    }

    /// The ETag of the document in `coding`.
    fn etag_in(&self, coding: Coding) -> &HeaderValue {
        &self.etags[match coding {
            Coding::Identity => 0,
            Coding::Gzip => 1,
            Coding::Br => 2,
        }]
    }

    /// The validator a 304 echoes when the reader's request names this document (in any
    /// coding: `"…"`, `"…-gzip"`, `"…-br"`, or `*`), by If-None-Match, else by
    /// If-Modified-Since.
    fn still_valid(&self, headers: &HeaderMap) -> Option<&HeaderValue> {
        if let Some(inm) = headers.get(header::IF_NONE_MATCH) {
            let inm = inm.to_str().ok()?;
            return inm
                .split(',')
                .map(|t| t.trim().trim_start_matches("W/"))
                .find_map(|t| {
                    if t == "*" {
                        return Some(&self.etags[0]);
                    }
                    self.etags.iter().find(|e| e.as_bytes() == t.as_bytes())
                });
        }
        let since = headers
            .get(header::IF_MODIFIED_SINCE)?
            .to_str()
            .ok()
            .and_then(|v| httpdate::parse_http_date(v).ok())?;
        (self.modified <= since).then_some(&self.etags[0])
    }
}

/// A content coding a feed is served in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Coding {
    Identity,
    Gzip,
    Br,
}

impl Coding {
    pub(super) fn name(self) -> &'static str {
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
pub(super) fn negotiate(headers: &HeaderMap) -> Coding {
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
fn compress(body: &[u8], coding: Coding) -> Result<bytes::Bytes, ServeError> {
    use std::io::Write;
    match coding {
        Coding::Identity => Ok(bytes::Bytes::copy_from_slice(body)),
        Coding::Gzip => {
            let mut gz = flate2::write::GzEncoder::new(
                Vec::with_capacity(body.len() / 4),
                flate2::Compression::new(GZIP_LEVEL),
            );
            gz.write_all(body).map_err(ServeError::Compress)?;
            gz.finish()
                .map(bytes::Bytes::from)
                .map_err(ServeError::Compress)
        }
        Coding::Br => {
            let params = brotli::enc::BrotliEncoderParams {
                quality: BROTLI_QUALITY,
                lgwin: BROTLI_WINDOW_BITS,
                size_hint: body.len(),
                ..Default::default()
            };
            let mut out = Vec::with_capacity(body.len() / 4);
            brotli::BrotliCompress(&mut &body[..], &mut out, &params)
                .map_err(ServeError::Compress)?;
            Ok(bytes::Bytes::from(out))
        }
    }
}

/// Joins the flight under `key` in the map `which` picks, starting it with `start` when
/// there is none: concurrent callers share one result. The flight leaves the map when it
/// has its result, or when its last caller gives up (so a later caller starts it again).
pub(super) async fn single_flight<T, F, Fut>(
    cache: &Mutex<RenderCache>,
    key: String,
    which: fn(&mut RenderCache) -> &mut HashMap<String, Flight<T>>,
    start: F,
) -> Result<T, Arc<ServeError>>
where
    T: Clone,
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<T, ServeError>>,
{
    struct Leave<'a, T> {
        cache: &'a Mutex<RenderCache>,
        key: String,
        which: fn(&mut RenderCache) -> &mut HashMap<String, Flight<T>>,
        flight: Flight<T>,
    }
    impl<T> Drop for Leave<'_, T> {
        fn drop(&mut self) {
            let mut cache = self
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
        let mut cache = cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        which(&mut cache).entry(key.clone()).or_default().clone()
    };
    let leave = Leave {
        cache,
        key,
        which,
        flight,
    };
    leave
        .flight
        .get_or_init(|| async { start().await.map_err(Arc::new) })
        .await
        .clone()
}

/// A render permit, once one is free (waited for without holding a thread): renders and
/// compressions hold one until their work is done, even if the request is dropped
/// meanwhile, so at most [`RenderCache::workers`] run at once.
pub(super) async fn work_permit(
    cache: &Mutex<RenderCache>,
) -> Result<tokio::sync::OwnedSemaphorePermit, ServeError> {
    let semaphore = cache
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .work
        .clone();
    Ok(semaphore.acquire_owned().await?)
}

/// `body` in `coding`, compressed on a blocking thread once a render permit is free.
pub(super) async fn compress_bounded(
    cache: &Mutex<RenderCache>,
    body: bytes::Bytes,
    coding: Coding,
) -> Result<bytes::Bytes, ServeError> {
    let permit = work_permit(cache).await?;
    tokio::task::spawn_blocking(move || {
        let result = compress(&body, coding);
        drop(permit);
        result
    })
    .await?
}

/// Where one document lives in the cache: its canonical request (`key`), rendered from one
/// store generation and config.
pub(super) struct Slot<'a> {
    pub(super) cache: &'a Mutex<RenderCache>,
    pub(super) metrics: &'a Metrics,
    pub(super) generation: u64,
    pub(super) config: &'a Arc<Config>,
    pub(super) key: &'a str,
}

impl Slot<'_> {
    /// The cached document, if the cache holds this generation and config.
    pub(super) fn get(&self) -> Option<Rendered> {
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.is_current(self.generation, self.config) {
            cache.get(self.key)
        } else {
            None
        }
    }

    /// Keeps `r` (with the variants it carries), within `render_cache_mb`.
    pub(super) fn keep(&self, r: Rendered) {
        // A std Mutex: held for an insert, never across an .await.
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !cache.is_current(self.generation, self.config) {
            if self.generation < cache.generation {
                // Rendered from an older generation than the cache now holds: not kept.
                return;
            }
            cache.start_over(self.generation, self.config);
        }
        cache.insert(
            self.key.to_string(),
            r,
            self.config.server.render_cache_bytes,
        );
        self.metrics.set_render_cache(cache.bytes(), cache.len());
    }
}

/// The compressed body `r` carries for `coding`, if any.
pub(super) fn variant(r: &Rendered, coding: Coding) -> Option<&bytes::Bytes> {
    match coding {
        Coding::Identity => Some(&r.body),
        Coding::Gzip => r.gzip.as_ref(),
        Coding::Br => r.br.as_ref(),
    }
}
/// The rendered document in `coding` (which it carries), with its ETag (a strong one per
/// coding: `"…-gzip"`, `"…-br"`), Last-Modified (the newest entry), a max-age from the poll
/// intervals and its own headers, or 304 when the reader already has it (in any coding).
pub(super) fn cached_response(headers: &HeaderMap, rendered: Rendered, coding: Coding) -> Response {
    let head = &rendered.head;
    let vary = HeaderValue::from_static("Accept-Encoding");
    let mut response = if let Some(validator) = head.still_valid(headers) {
        let mut r = StatusCode::NOT_MODIFIED.into_response();
        let h = r.headers_mut();
        h.insert(header::ETAG, validator.clone());
        r
    } else {
        let coded = variant(&rendered, coding).filter(|_| coding != Coding::Identity);
        let (body, coding) = match coded {
            Some(b) => (b.clone(), coding),
            None => (rendered.body.clone(), Coding::Identity),
        };
        let mut r = Response::new(axum::body::Body::from(body));
        let h = r.headers_mut();
        h.insert(header::CONTENT_TYPE, head.content_type.clone());
        h.insert(header::ETAG, head.etag_in(coding).clone());
        if coding != Coding::Identity {
            h.insert(
                header::CONTENT_ENCODING,
                HeaderValue::from_static(coding.name()),
            );
        }
        r
    };
    let h = response.headers_mut();
    h.insert(header::LAST_MODIFIED, head.last_modified.clone());
    h.insert(header::CACHE_CONTROL, head.cache_control.clone());
    h.insert(header::VARY, vary);
    for (name, value) in &head.extra {
        h.append(name, value.clone());
    }
    response
}
