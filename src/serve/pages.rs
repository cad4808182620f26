//! The pages beside the feeds: `/status` (the sources' health as an HTML page, rendered by
//! [`crate::render::page`]),
//! `/healthz` (every source's status as JSON), `/metrics` (OpenMetrics) and `/opml` (the
//! sources as a subscription list). Their store reads go through [`Store::call`].
//!
//! [`Store::call`]: crate::store::Store::call

use std::collections::HashMap;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::error::{ServeError, error_response};
use super::state::AppState;
use crate::config::Config;
use crate::daemon::status::Health;
use crate::render::{self, page::PageSource};

/// Every source's status, read off the runtime.
async fn health(state: &AppState) -> Result<Health, ServeError> {
    let config = state.config();
    let mut health = state
        .store
        .call(move |store| crate::daemon::status::collect(&config, store))
        .await?;
    health.webhooks = state.metrics.webhooks.snapshot();
    health.hub = super::hub::status(&state.config(), &state.metrics, &state.hub_counts);
    health.search = Some(state.store.search_status());
    Ok(health)
}

/// [`health`] as the public may see it: a `file:` source (a path on this machine) is shown
/// by its feed here, and its path is left out of its errors.
async fn public_health(state: &AppState) -> Result<Health, ServeError> {
    let mut health = health(state).await?;
    hide_local_paths(&state.config(), &mut health);
    Ok(health)
}

/// Replaces each `file:` source's URL with its feed on this instance, and its path in its
/// error and warning texts with `[local path]`; drops credentials from web sources' URLs.
fn hide_local_paths(config: &Config, health: &mut Health) {
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

pub(super) async fn healthz(State(state): State<AppState>) -> Response {
    let answer = state
        .pages
        .healthz
        .get(|| async {
            let health = public_health(&state).await?;
            Ok::<_, ServeError>(Bytes::from(serde_json::to_vec(&health)?))
        })
        .await;
    answered(answer, [(header::CONTENT_TYPE, "application/json")])
}

pub(super) async fn metrics(State(state): State<AppState>) -> Response {
    let answer = state
        .pages
        .metrics
        .get(|| async {
            let h = health(&state).await?;
            state.metrics.set_websub(&h.websub);
            Ok::<_, ServeError>(Bytes::from(
                state.metrics.render(h.entries, state.store.entries_read()),
            ))
        })
        .await;
    answered(
        answer,
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
    )
}

/// Each source's own feed title, where it gave one.
async fn feed_titles(state: &AppState) -> Result<HashMap<String, String>, ServeError> {
    Ok(state
        .store
        .call(|store| store.source_states_with(|_, st| st.feed_title))
        .await?
        .into_iter()
        .collect())
}

/// The sources as an OPML subscription list.
pub(super) async fn opml(State(state): State<AppState>) -> Response {
    let answer = state
        .pages
        .opml
        .get(|| async {
            let titles = feed_titles(&state).await?;
            let body =
                render::opml::export_public(&state.config(), &|name| titles.get(name).cloned());
            Ok::<_, ServeError>(Bytes::from(body))
        })
        .await;
    answered(
        answer,
        [(header::CONTENT_TYPE, "text/x-opml; charset=utf-8")],
    )
}

/// A plain page listing the feeds and the sources' health, with autodiscovery links.
pub(super) async fn status(State(state): State<AppState>) -> Response {
    let answer = state.pages.status.get(|| status_page(&state)).await;
    answered(
        answer,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                super::feeds::CONTENT_SECURITY_POLICY,
            ),
        ],
    )
}

/// A status page's answer with its headers, or a 500 (the error in the log).
fn answered(
    answer: Result<Bytes, ServeError>,
    headers: impl axum::response::IntoResponseParts,
) -> Response {
    match answer {
        Ok(body) => (headers, body).into_response(),
        Err(e) => error_response(&e),
    }
}

async fn status_page(state: &AppState) -> Result<Bytes, ServeError> {
    let config = state.config();
    let health = public_health(state).await?;
    let subs: Vec<render::page::PageSubscription> = health
        .websub
        .iter()
        .map(|w| render::page::PageSubscription {
            source: w.source.clone(),
            state: w.state.clone(),
            reason: w.reason.clone(),
            hub: w.hub.clone(),
            lease_end: w.lease_end,
            last_delivery: w.last_delivery,
            deliveries: w.deliveries,
            rejected: w.rejected,
        })
        .collect();
    let sources: Vec<PageSource> = health
        .sources
        .into_iter()
        .map(|s| PageSource {
            title: config
                .source(&s.name)
                .and_then(|c| c.title.clone())
                .or(s.feed_title),
            name: s.name,
            current_url: s.current_url,
            state: s.state,
            last_success: s.last_success,
            last_error: s.last_error,
            consecutive_failures: s.consecutive_failures,
            next_poll: s.next_poll,
            entries: s.entries,
        })
        .collect();
    Ok(Bytes::from(render::page::status_page_with(
        &config, &sources, &subs,
    )))
}
