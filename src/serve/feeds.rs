//! The published feeds: `/feed.{fmt}`, `/sources/`, `/tags/` and `/feeds/{name}.{fmt}`;
//! their query (`?limit=`, `?before=`), canonical request, the selection of entries from
//! the store and the render, through the render cache.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};

use super::cache::{self, Coding, Rendered};
use super::error::{ServeError, error_response};
use super::state::AppState;
use crate::config::Config;
use crate::render::{self, FeedMeta, SourceInfo};
use crate::store::search::{MAX_SKIP, Scope, Sort, Start};
use crate::store::{Cursor, Page, Store, StoreError};

pub const ATOM_TYPE: &str = "application/atom+xml; charset=utf-8";
pub const RSS_TYPE: &str = "application/rss+xml; charset=utf-8";
pub const JSON_TYPE: &str = "application/feed+json; charset=utf-8";
pub const HTML_TYPE: &str = "text/html; charset=utf-8";

/// What the HTML pages may load and do: styles inline, images and media from anywhere,
/// forms only to this site (the search box), nothing else (no script at all, no frames,
/// no `<base>`).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; \
     img-src * data:; media-src *; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The most entries `?limit=` may ask for.
pub const MAX_LIMIT: usize = 1000;

/// An output format of the published feeds.
#[derive(Clone, Copy, Debug)]
pub(super) enum Format {
    Atom,
    Rss,
    Json,
    /// The river of news: the view's entries as an HTML page.
    Html,
}

impl Format {
    /// The file extension of the format (also its label in the metrics).
    fn extension(self) -> &'static str {
        match self {
            Format::Atom => "atom",
            Format::Rss => "rss",
            Format::Json => "json",
            Format::Html => "html",
        }
    }

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
#[derive(Clone, Debug)]
enum Selection {
    All,
    Source(String),
    Tag(String),
    /// A `[[feed]]` from the config, by index.
    Named(usize),
    /// A search (`/search`).
    Search(Arc<SearchView>),
}

/// The search a selection makes, if any: `/search`'s, or a `[[feed]]`'s `query` (newest
/// first, from the start, with the feed for its sources and patterns).
type Searched<'a> = (
    &'a crate::query::Query,
    Sort,
    usize,
    Option<&'a crate::config::FeedConfig>,
);

impl Selection {
    fn searched<'a>(&'a self, config: &'a Config) -> Option<Searched<'a>> {
        match self {
            Selection::Search(view) => Some((&view.query, view.sort, view.skip, None)),
            Selection::Named(i) => config
                .feeds
                .get(*i)
                .and_then(|f| f.query.as_ref().map(|q| (&**q, Sort::Newest, 0, Some(f)))),
            _ => None,
        }
    }
}

/// A search as `/search` takes it: `?q=` parsed, `?sort=`, and (by relevance) `?skip=`.
#[derive(Debug)]
pub(super) struct SearchView {
    query: crate::query::Query,
    /// The query in its canonical form: the cache key and the URLs' `q`.
    text: String,
    sort: Sort,
    skip: usize,
}

/// The route of `/search` (the river page of the results) and `/search.{fmt}`.
pub(super) fn search(format: Format) -> MethodRouter<AppState> {
    get(
        move |State(state): State<AppState>, uri: Uri, headers: HeaderMap| async move {
            match search_view(&uri) {
                Ok(view) => {
                    let selection = Selection::Search(Arc::new(view));
                    published(&state, selection, format, &uri, &headers).await
                }
                Err(message) => (StatusCode::BAD_REQUEST, message).into_response(),
            }
        },
    )
}

/// The search a request asks for, or what is wrong with it (a 400's text).
fn search_view(uri: &Uri) -> Result<SearchView, String> {
    let (mut q, mut sort, mut skip, mut before) = (None, Sort::Newest, 0, false);
    for (k, v) in url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()) {
        match &*k {
            "q" => q = Some(v.into_owned()),
            "sort" => {
                sort = match &*v {
                    "newest" => Sort::Newest,
                    "relevance" => Sort::Relevance,
                    _ => return Err("sort must be newest or relevance\n".into()),
                }
            }
            "skip" => {
                skip = v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n <= MAX_SKIP)
                    .ok_or_else(|| format!("skip must be a whole number from 0 to {MAX_SKIP}\n"))?
            }
            "before" => before = true,
            _ => {}
        }
    }
    let q = q
        .filter(|q| !q.trim().is_empty())
        .ok_or("q is required: what to search for, as in /search?q=sled\n")?;
    let query = crate::query::parse(&q).map_err(|e| format!("q: {e}\n"))?;
    match sort {
        Sort::Newest if skip > 0 => {
            return Err("skip is for sort=relevance; newest first continues with before\n".into());
        }
        Sort::Relevance if before => {
            return Err("before is for newest first; sort=relevance continues with skip\n".into());
        }
        _ => {}
    }
    Ok(SearchView {
        text: query.canonical(),
        query,
        sort,
        skip,
    })
}

/// A search's own parameters, URL-encoded: `q`, and `sort` and `skip` (as given) when
/// not the default.
fn search_params(view: &SearchView, skip: usize) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    append_search(&mut query, view, skip);
    query.finish()
}

/// Appends a search's own parameters to `query` (see [`search_params`]).
fn append_search(
    query: &mut url::form_urlencoded::Serializer<'_, String>,
    view: &SearchView,
    skip: usize,
) {
    query.append_pair("q", &view.text);
    if view.sort == Sort::Relevance {
        query.append_pair("sort", "relevance");
    }
    if skip > 0 {
        query.append_pair("skip", &skip.to_string());
    }
}

/// The route of `/feed.{fmt}`: every configured source, in `format`.
pub(super) fn everything(format: Format) -> MethodRouter<AppState> {
    get(
        move |State(state): State<AppState>, uri: Uri, headers: HeaderMap| async move {
            published(&state, Selection::All, format, &uri, &headers).await
        },
    )
}

pub(super) async fn folder_feed(
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

/// `name.atom` → (`name`, Atom); `name` and `name.html` → (`name`, Html) (names are slugs,
/// without dots).
fn split_file(file: &str) -> Option<(&str, Format)> {
    match file.rsplit_once('.') {
        Some((name, "html")) => Some((name, Format::Html)),
        Some((name, ext)) => Some((name, Format::from_extension(ext)?)),
        None => Some((file, Format::Html)),
    }
}

/// A feed's query that is not understood: a 400 with this text.
#[derive(Debug, thiserror::Error)]
enum QueryError {
    #[error("limit must be a whole number from 1 to {MAX_LIMIT}\n")]
    Limit,
    #[error("before must be a cursor from a feed's next link\n")]
    Before,
}

/// The query a feed takes: `?limit=N` (1 to [`MAX_LIMIT`]) and `?before=CURSOR` (from a
/// `next` link); anything malformed there is a 400.
fn query(uri: &Uri, default: usize) -> Result<(usize, Option<Cursor>), QueryError> {
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
                    _ => return Err(QueryError::Limit),
                }
            }
            "before" => before = Some(Cursor::from_param(&v).ok_or(QueryError::Before)?),
            _ => {}
        }
    }
    Ok((limit, before))
}

/// A WebSub topic: one of the published feeds (Atom, RSS or JSON; its first page, with
/// `limit` when the URL names one), by its URL as the feed names itself.
#[derive(Clone, Debug)]
pub(super) struct Topic {
    selection: Selection,
    format: Format,
    limit: usize,
    uri: Uri,
    /// The topic URL: `{base_url}{uri}`.
    pub(super) url: String,
}

/// `url` without `base` in front: the scheme and host compared without case (they have
/// none), the rest exactly.
fn strip_base<'a>(url: &'a str, base: &str) -> Option<&'a str> {
    let authority_end = base
        .find("://")
        .map(|i| i + 3)
        .and_then(|start| base[start..].find('/').map(|j| start + j))
        .unwrap_or(base.len());
    let (head, tail) = (url.get(..authority_end)?, url.get(authority_end..)?);
    if !head.eq_ignore_ascii_case(&base[..authority_end]) {
        return None;
    }
    tail.strip_prefix(&base[authority_end..])
}

impl Topic {
    /// `url` as a topic of `config`: a feed URL this instance advertises (its self URL,
    /// under `base_url`, canonical, without `before`), else `None`.
    pub(super) fn parse(config: &Config, url: &str) -> Option<Topic> {
        let rest = strip_base(url, &config.server.base_url)?;
        let uri: Uri = rest.parse().ok()?;
        let path = uri.path();
        let (selection, format) = match path.strip_prefix("/feed.") {
            Some(ext) => (Selection::All, Format::from_extension(ext)?),
            None => {
                let mut parts = path.strip_prefix('/')?.splitn(2, '/');
                let (folder, file) = (parts.next()?, parts.next()?);
                let (name, format) = split_file(file)?;
                let selection = match folder {
                    "sources" => config.source(name).map(|_| Selection::Source(name.into())),
                    "tags" => config
                        .sources
                        .iter()
                        .any(|s| s.tags.iter().any(|t| t == name))
                        .then(|| Selection::Tag(name.into())),
                    "feeds" => config
                        .feeds
                        .iter()
                        .position(|f| f.name == name)
                        .map(Selection::Named),
                    _ => None,
                }?;
                (selection, format)
            }
        };
        if let Format::Html = format {
            return None;
        }
        let (limit, before) = query(&uri, config.publish.max_items).ok()?;
        let canonical = canonical_uri(config, &selection, format, limit, None)?;
        (before.is_none() && canonical == uri).then(|| Topic {
            selection,
            format,
            limit,
            url: format!("{}{canonical}", config.server.base_url),
            uri: canonical,
        })
    }

    /// Whether a new entry of `source` may change this topic's document.
    pub(super) fn takes_source(&self, config: &Config, source: &str) -> bool {
        match &self.selection {
            Selection::All => config.source(source).is_some(),
            Selection::Source(name) => name == source,
            Selection::Tag(tag) => config
                .source(source)
                .is_some_and(|s| s.tags.iter().any(|t| t == tag)),
            Selection::Named(i) => config
                .feeds
                .get(*i)
                .is_some_and(|f| f.sources.iter().any(|s| s == source)),
            Selection::Search(_) => false,
        }
    }

    /// The topic's current document, as `GET` would serve it (a blocking store read).
    pub(super) fn render(&self, state: &AppState, store: &Store) -> Result<Rendered, ServeError> {
        render_selection(
            state,
            store,
            &self.selection,
            self.format,
            &self.uri,
            self.limit,
            None,
        )
    }
}

/// The feed URLs (every format, first page) that a new entry of `source` may change: what
/// `[publish] hubs` are pinged with.
pub(super) fn topics_of_source(config: &Config, source: &str) -> Vec<String> {
    let Some(s) = config.source(source) else {
        return Vec::new();
    };
    let mut selections = vec![Selection::All, Selection::Source(s.name.clone())];
    selections.extend(s.tags.iter().map(|t| Selection::Tag(t.clone())));
    selections.extend(
        config
            .feeds
            .iter()
            .enumerate()
            .filter(|(_, f)| f.sources.iter().any(|n| n == source))
            .map(|(i, _)| Selection::Named(i)),
    );
    selections
        .iter()
        .flat_map(|sel| {
            [Format::Atom, Format::Rss, Format::Json]
                .into_iter()
                .filter_map(|f| feed_path(config, sel, f))
        })
        .map(|p| format!("{}{p}", config.server.base_url))
        .collect()
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
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    // The canonical request: the feed's own path and only the parameters that change the
    // document, so that ignored or re-spelt parameters neither add cache entries nor reach
    // the self link.
    let uri = match canonical_uri(&config, &selection, format, limit, before.as_ref()) {
        Some(u) => u,
        None => return (StatusCode::NOT_FOUND, "not found\n").into_response(),
    };
    // A search's render is also keyed by the index's generation: a round of the indexer
    // makes it stale, without making every feed's render stale with it.
    let key = if selection.searched(&config).is_some() {
        format!("{uri}#search{}", state.store.search_generation())
    } else {
        uri.to_string()
    };
    let generation = state.store.generation();
    // Flights are per store generation and config: a miss never joins a stale render.
    let flight_key = || format!("{generation}:{:p}:{key}", Arc::as_ptr(&config));
    let slot = cache::Slot {
        cache: &state.cache,
        metrics: &state.metrics,
        generation,
        config: &config,
        key: &key,
    };
    let rendered = match slot.get() {
        Some(r) => r,
        None => {
            let render = cache::single_flight(
                &state.cache,
                flight_key(),
                |c| &mut c.renders,
                || async {
                    // Another flight may have finished since the lookup.
                    if let Some(r) = slot.get() {
                        return Ok(r);
                    }
                    // On a blocking thread, a few at a time: a render reads the store, and
                    // the runtime's few workers must stay free for other requests
                    // (`/healthz` among them).
                    let (for_render, uri) = (state.clone(), uri.clone());
                    let permit = cache::work_permit(&state.cache).await?;
                    let r = state
                        .store
                        .call(move |store| {
                            let r = render_selection(
                                &for_render,
                                store,
                                &selection,
                                format,
                                &uri,
                                limit,
                                before,
                            );
                            drop(permit);
                            // A store error ends the call; a template error is the render's.
                            match r {
                                Err(ServeError::Store(e)) => Err(e),
                                other => Ok(other),
                            }
                        })
                        .await??;
                    state.metrics.record_render();
                    slot.keep(r.clone());
                    Ok(r)
                },
            )
            .await;
            match render {
                Ok(r) => r,
                Err(e) => return error_response(&e),
            }
        }
    };
    let coding = cache::negotiate(headers);
    let rendered = match (coding, &rendered.gzip, &rendered.br) {
        (Coding::Identity, _, _) | (Coding::Gzip, Some(_), _) | (Coding::Br, _, Some(_)) => {
            rendered
        }
        _ => {
            let compressed = cache::single_flight(
                &state.cache,
                format!("{}#{}", flight_key(), coding.name()),
                |c| &mut c.compressions,
                || async {
                    if let Some(r) = slot.get()
                        && let Some(b) = cache::variant(&r, coding)
                    {
                        return Ok(b.clone());
                    }
                    let body = rendered.body.clone();
                    let b = cache::compress_bounded(&state.cache, body, coding).await?;
                    state.metrics.record_compression(coding.name());
                    // Kept beside the document (which may have given way meanwhile: then
                    // the document comes back with it).
                    let mut with = slot.get().unwrap_or_else(|| rendered.clone());
                    match coding {
                        Coding::Gzip => with.gzip = Some(b.clone()),
                        Coding::Br => with.br = Some(b.clone()),
                        Coding::Identity => {}
                    }
                    slot.keep(with);
                    Ok(b)
                },
            )
            .await;
            let mut r = rendered;
            match (coding, compressed) {
                (Coding::Gzip, Ok(b)) => r.gzip = Some(b),
                (Coding::Br, Ok(b)) => r.br = Some(b),
                (_, Ok(_)) => {}
                (_, Err(e)) => return error_response(&e),
            }
            r
        }
    };
    let response = cache::cached_response(headers, rendered, coding);
    state
        .metrics
        .record_request(format.extension(), response.status().as_u16());
    response
}

/// WebSub §4's `Link` headers of a published feed at `self_url`: each advertised hub
/// (`rel="hub"`) and the topic (`rel="self"`); none when no hub is advertised.
pub(super) fn websub_links(config: &Config, self_url: &str) -> Vec<axum::http::HeaderValue> {
    let hubs = config.advertised_hubs();
    if hubs.is_empty() {
        return Vec::new();
    }
    hubs.iter()
        .map(|h| format!("<{h}>; rel=\"hub\""))
        .chain(std::iter::once(format!("<{self_url}>; rel=\"self\"")))
        // URLs from the config and slugs: always valid header text.
        .filter_map(|v| axum::http::HeaderValue::from_str(&v).ok())
        .collect()
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
    let path = match format {
        Format::Html => view_path(config, selection)?,
        _ => feed_path(config, selection, format)?,
    };
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    if let Selection::Search(view) = selection {
        append_search(&mut query, view, view.skip);
    }
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

/// The path of the selection's feed in `format` (not Html).
fn feed_path(config: &Config, selection: &Selection, format: Format) -> Option<String> {
    let ext = format.extension();
    Some(match selection {
        Selection::All => format!("/feed.{ext}"),
        Selection::Source(name) => format!("/sources/{name}.{ext}"),
        Selection::Tag(tag) => format!("/tags/{tag}.{ext}"),
        Selection::Named(i) => format!("/feeds/{}.{ext}", config.feeds.get(*i)?.name),
        Selection::Search(_) => format!("/search.{ext}"),
    })
}

/// The path of the selection's HTML view: `/`, `/sources/{name}`, `/tags/{tag}` or
/// `/feeds/{name}`.
fn view_path(config: &Config, selection: &Selection) -> Option<String> {
    Some(match selection {
        Selection::All => "/".to_string(),
        Selection::Source(name) => format!("/sources/{name}"),
        Selection::Tag(tag) => format!("/tags/{tag}"),
        Selection::Named(i) => format!("/feeds/{}", config.feeds.get(*i)?.name),
        Selection::Search(_) => "/search".to_string(),
    })
}

/// Reads the selected entries and renders them.
fn render_selection(
    state: &AppState,
    store: &Store,
    selection: &Selection,
    format: Format,
    uri: &Uri,
    limit: usize,
    before: Option<Cursor>,
) -> Result<Rendered, ServeError> {
    let config = &state.config();
    let searched = selection.searched(config);
    let mut next_skip = None;
    let page = match (searched, selection) {
        (Some((query, sort, skip, feed)), _) => {
            let (page, skip) = search_page(
                config,
                store,
                query,
                sort,
                skip,
                feed,
                before.as_ref(),
                limit,
            )?;
            next_skip = skip;
            Ok(page)
        }
        // A source's own feed shows all its entries, duplicates of other sources' included.
        (None, Selection::Source(name)) => store.page(Some(name), before.as_ref(), limit, |_| true),
        (None, _) => {
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
                    && e.duplicate_of
                        .as_ref()
                        .is_none_or(|c| !chosen(&c.source) || !store.has_entry(&c.source, &c.key))
                    && feed.is_none_or(|f| f.admits_entry(e))
            };
            match &sources {
                // Read from the feed's own index when it has one and it is built, else by
                // merging its sources' indexes: never a scan of the whole store.
                Some(sources) => store.page_of_sources(
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
                None => match store.page_within(before.as_ref(), limit, accept, 2 * limit + 100)? {
                    Some(page) => Ok(page),
                    None => {
                        let all: Vec<&str> =
                            config.sources.iter().map(|s| s.name.as_str()).collect();
                        store.page_of_sources(&all, None, before.as_ref(), limit, accept)
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
        Selection::Search(view) => format!("{}: search for {}", config.publish.title, view.text),
    };
    let entries: Vec<crate::model::Entry> = page
        .entries
        .into_iter()
        .map(crate::model::Entry::for_publishing)
        .collect();
    let sources = source_infos(state, store, &entries)?;
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
        // A search's feed is its query's: the first page's URL.
        id: match selection {
            Selection::Search(view) => format!("{base}{}?{}", uri.path(), search_params(view, 0)),
            _ => format!("{base}{}", uri.path()),
        },
        home_url: format!("{base}/"),
        empty_updated: state.started,
        // RFC 5005 paging: the same feed, from where this page ends.
        next_url: match (next_skip, page.next) {
            (Some(n), _) => Some(format!("{base}{}", continued(uri, "skip", &n.to_string()))),
            (None, Some(c)) => Some(format!("{base}{}", continued(uri, "before", &c.to_param()))),
            (None, None) => None,
        },
        hubs: config.advertised_hubs(),
    };
    let (body, content_type) = match format {
        Format::Html => (
            river_page(
                config,
                store,
                selection,
                &meta,
                &entries,
                &sources,
                before.is_some(),
            )?,
            HTML_TYPE,
        ),
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
    let extra = match format {
        Format::Html => vec![(
            axum::http::header::CONTENT_SECURITY_POLICY,
            axum::http::HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        )],
        _ => {
            let self_url = format!("{}{uri}", config.server.base_url);
            websub_links(config, &self_url)
                .into_iter()
                .map(|link| (axum::http::header::LINK, link))
                .collect()
        }
    };
    Ok(Rendered {
        body: bytes::Bytes::from(body),
        gzip: None,
        br: None,
        content_type,
        head: Arc::new(cache::Head::new(
            config,
            etag,
            content_type,
            last_modified,
            extra,
        )),
    })
}

/// `uri` continued from another place: its `before` and `skip` replaced by `param`.
fn continued(uri: &Uri, param: &str, value: &str) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()) {
        if k != "before" && k != "skip" {
            query.append_pair(&k, &v);
        }
    }
    query.append_pair(param, value);
    format!("{}?{}", uri.path(), query.finish())
}

/// A page of a search (`/search`, or a `[[feed]]` with a `query`): the entries of the
/// sources the view takes that match, each article once, those a named feed's patterns
/// admit; and, by relevance, how many results the next page skips.
#[allow(clippy::too_many_arguments)]
fn search_page(
    config: &Config,
    store: &Store,
    query: &crate::query::Query,
    sort: Sort,
    skip: usize,
    feed: Option<&crate::config::FeedConfig>,
    before: Option<&Cursor>,
    limit: usize,
) -> Result<(Page, Option<usize>), ServeError> {
    // The combined view asks the config's own index of names; a named feed its sources.
    let chosen: Option<HashSet<&str>> =
        feed.map(|f| f.sources.iter().map(String::as_str).collect());
    let publishes = |name: &str| match &chosen {
        Some(set) => set.contains(name),
        None => config.source(name).is_some(),
    };
    let tagged = |tag: &str| {
        config
            .sources
            .iter()
            .filter(|s| s.tags.iter().any(|t| t == tag) && publishes(&s.name))
            .map(|s| s.name.clone())
            .collect()
    };
    let scope = Scope {
        publishes: &publishes,
        tagged: &tagged,
    };
    let accept = |e: &crate::model::Entry| {
        e.duplicate_of
            .as_ref()
            .is_none_or(|c| !publishes(&c.source) || !store.has_entry(&c.source, &c.key))
            && feed.is_none_or(|f| f.admits_entry(e))
    };
    let start = match sort {
        Sort::Newest => before.map(|c| Start::Below(c.order())),
        Sort::Relevance => (skip > 0).then_some(Start::Skip(skip)),
    };
    let (entries, next) = store.search_page(query, &scope, sort, start, limit, accept)?;
    let mut page = Page {
        entries,
        next: None,
    };
    let mut next_skip = None;
    match next {
        Some(Start::Below(order)) => page.next = Some(Cursor::from_order(order)),
        Some(Start::Skip(n)) => next_skip = Some(n),
        None => {}
    }
    Ok((page, next_skip))
}

/// The river page of a view: its entries with their sources' titles, links to its feeds
/// and the older page, in the config's templates.
fn river_page(
    config: &Config,
    store: &Store,
    selection: &Selection,
    meta: &FeedMeta,
    entries: &[crate::model::Entry],
    sources: &HashMap<String, SourceInfo>,
    paged: bool,
) -> Result<String, ServeError> {
    use render::river::{Alternate, NavLink, RiverEntry, RiverPage, RiverSource, View};
    let base = &config.server.base_url;
    let (title, description, site) = match selection {
        Selection::All => (
            config.publish.title.clone(),
            config.publish.description.clone(),
            None,
        ),
        Selection::Source(name) => match config.source(name) {
            Some(s) => {
                let info = source_info(config, store, s)?;
                (info.title, String::new(), info.link)
            }
            None => (name.clone(), String::new(), None),
        },
        Selection::Tag(tag) => (format!("#{tag}"), String::new(), None),
        Selection::Search(view) => (format!("Search: {}", view.text), String::new(), None),
        Selection::Named(i) => {
            let feed = &config.feeds[*i];
            (
                feed.title.clone().unwrap_or_else(|| feed.name.clone()),
                meta.description.clone(),
                None,
            )
        }
    };
    let alternates = [
        (Format::Atom, "application/atom+xml", "Atom"),
        (Format::Rss, "application/rss+xml", "RSS"),
        (Format::Json, "application/feed+json", "JSON Feed"),
    ]
    .into_iter()
    .filter_map(|(format, mime_type, label)| {
        let params = match selection {
            Selection::Search(view) => format!("?{}", search_params(view, view.skip)),
            _ => String::new(),
        };
        Some(Alternate {
            mime_type: mime_type.into(),
            title: format!("{title} ({label})"),
            label: label.into(),
            href: format!("{base}{}{params}", feed_path(config, selection, format)?),
        })
    })
    .collect();
    let mut nav: Vec<NavLink> = config
        .feeds
        .iter()
        .map(|f| NavLink {
            title: f.title.clone().unwrap_or_else(|| f.name.clone()),
            href: format!("{base}/feeds/{}", f.name),
        })
        .collect();
    nav.extend(config.tags().into_iter().map(|t| NavLink {
        title: format!("#{t}"),
        href: format!("{base}/tags/{t}"),
    }));
    let entries = entries
        .iter()
        .map(|e| {
            let source = RiverSource::new(&e.source, sources.get(&e.source), base);
            RiverEntry::new(e, source)
        })
        .collect();
    let page = RiverPage {
        view: View {
            site_title: config.publish.title.clone(),
            title,
            description,
            site,
            home: format!("{base}/"),
            status: format!("{base}/status"),
            alternates,
            nav,
            older: meta.next_url.clone(),
            newest: paged.then(|| meta.id.clone()),
            search: format!("{base}/search"),
            query: match selection {
                Selection::Search(view) => view.text.clone(),
                _ => String::new(),
            },
        },
        entries,
    };
    let overrides = config
        .publish
        .templates
        .as_ref()
        .map_or(&[][..], |t| &t.files[..]);
    let env = render::river::environment(overrides)?;
    Ok(render::river::river(&env, &page)?)
}

/// Attribution for each configured source on the page: see [`source_info`].
fn source_infos(
    state: &AppState,
    store: &Store,
    entries: &[crate::model::Entry],
) -> Result<HashMap<String, SourceInfo>, StoreError> {
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
        out.insert(s.name.clone(), source_info(&config, store, s)?);
    }
    Ok(out)
}

/// A source's attribution: its title (from the config, else from its feed, else its name),
/// feed URL and home page.
fn source_info(
    config: &Config,
    store: &Store,
    s: &crate::config::SourceConfig,
) -> Result<SourceInfo, StoreError> {
    let st = store.source_state(&s.name)?;
    let title = s
        .title
        .clone()
        .or_else(|| st.as_ref().and_then(|st| st.feed_title.clone()))
        .unwrap_or_else(|| s.name.clone());
    // A `file:` URL is private to this machine: the source's feed here stands for it.
    Ok(SourceInfo {
        title,
        url: render::source_feed_url(&config.server.base_url, s),
        // A page source's page is its home page.
        link: st.and_then(|st| st.feed_link).or_else(|| {
            (s.kind != crate::config::SourceKind::Feed)
                .then(|| render::public_source_url(&config.server.base_url, &s.name, &s.url))
        }),
    })
}
