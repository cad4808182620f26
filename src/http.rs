//! The HTTP server: published feeds, the status page and `/healthz`.
//!
//! It only reads the store; it never triggers a fetch.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::model::SourceState;
use crate::render::{self, FeedMeta, SourceInfo};
use crate::store::Store;

pub const ATOM_TYPE: &str = "application/atom+xml; charset=utf-8";
pub const RSS_TYPE: &str = "application/rss+xml; charset=utf-8";

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<Config>,
    /// When the daemon started: `updated` of a feed that has no entries yet.
    pub started: DateTime<Utc>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/feed.atom", get(feed_atom))
        .route("/feed.rss", get(feed_rss))
        .route("/healthz", get(healthz))
        .fallback(not_found)
        .with_state(state)
}

enum Format {
    Atom,
    Rss,
}

async fn feed_atom(State(state): State<AppState>, uri: Uri) -> Response {
    combined(state, uri, Format::Atom)
}

async fn feed_rss(State(state): State<AppState>, uri: Uri) -> Response {
    combined(state, uri, Format::Rss)
}

fn combined(state: AppState, uri: Uri, format: Format) -> Response {
    let config = &state.config;
    let configured: HashSet<&str> = config.sources.iter().map(|s| s.name.as_str()).collect();
    // Each article once: a duplicate shows only while its credited source is published.
    let entries = match state.store.latest(config.publish.max_items, |e| {
        configured.contains(e.source.as_str())
            && e.duplicate_of
                .as_ref()
                .is_none_or(|c| !configured.contains(c.source.as_str()))
    }) {
        Ok(e) => e,
        Err(e) => return internal_error(e),
    };
    let sources = match source_infos(&state) {
        Ok(s) => s,
        Err(e) => return internal_error(e),
    };
    let base = &config.server.base_url;
    let meta = FeedMeta {
        title: config.publish.title.clone(),
        description: config.publish.description.clone(),
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
    };
    let (body, content_type) = match format {
        Format::Atom => (render::atom(&meta, &entries, &sources), ATOM_TYPE),
        Format::Rss => (render::rss(&meta, &entries, &sources), RSS_TYPE),
    };
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// Attribution for each configured source: its title (from the config, else from its feed,
/// else its name), feed URL and home page.
fn source_infos(state: &AppState) -> Result<HashMap<String, SourceInfo>, crate::store::StoreError> {
    let states: HashMap<String, SourceState> = state.store.source_states()?.into_iter().collect();
    Ok(state
        .config
        .sources
        .iter()
        .map(|s| {
            let st = states.get(&s.name);
            let title = s
                .title
                .clone()
                .or_else(|| st.and_then(|st| st.feed_title.clone()))
                .unwrap_or_else(|| s.name.clone());
            let info = SourceInfo {
                title,
                url: s.url.to_string(),
                link: st.and_then(|st| st.feed_link.clone()),
            };
            (s.name.clone(), info)
        })
        .collect())
}

async fn healthz(State(state): State<AppState>) -> Response {
    match crate::status::collect(&state.config, &state.store) {
        Ok(health) => axum::Json(health).into_response(),
        Err(e) => internal_error(e),
    }
}

/// A plain page listing the feeds, with autodiscovery links for readers.
async fn index(State(state): State<AppState>) -> Response {
    let c = &state.config;
    let e = |s: &str| html_escape::encode_text(s).into_owned();
    let a = |s: &str| html_escape::encode_double_quoted_attribute(s).into_owned();
    let base = &c.server.base_url;
    let title = e(&c.publish.title);
    let mut page = String::new();
    page.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    page.push_str(&format!("<title>{title}</title>"));
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
    page.push_str("</head><body>");
    page.push_str(&format!(
        "<h1>{title}</h1><p>{}</p>",
        e(&c.publish.description)
    ));
    page.push_str("<h2>Feeds</h2><ul>");
    page.push_str("<li><a href=\"feed.atom\">Everything (Atom)</a></li>");
    page.push_str("<li><a href=\"feed.rss\">Everything (RSS)</a></li></ul>");
    page.push_str("<h2>Sources</h2><ul>");
    for s in &c.sources {
        page.push_str(&format!(
            "<li>{} — <a href=\"{}\">{}</a></li>",
            e(&s.name),
            a(s.url.as_str()),
            e(s.url.as_str())
        ));
    }
    page.push_str("</ul></body></html>\n");
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
