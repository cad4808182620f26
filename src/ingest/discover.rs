//! `tributary add`: from a site's address (or a feed's) to the feeds it offers, each
//! fetched once and read, so the user sees what they subscribe to.
//!
//! A feed is a candidate by itself. An HTML page's candidates are the feeds it advertises
//! (`<link rel="alternate">`, [`crate::feed::parse::advertised_feeds`]), else the common
//! paths ([`COMMON_PATHS`]) on its origin. Every fetch goes through the [`Fetcher`] (its
//! timeouts, body cap, per-host limit and redirect guard). The page is hostile: only
//! http(s) links are followed (a `file:` link never is), at most [`MAX_CANDIDATES`], and a
//! link off the page's origin must pass the address guard ([`guard`]) the way a redirect
//! does: a public page cannot point tributary into loopback, link-local or private space.
//!
//! A page that offers no feed at all gets selectors proposed for its repeated entries
//! ([`crate::feed::scrape::propose`]), read from the page already fetched.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::task::JoinSet;
use url::Url;

use crate::config::{FetchConfig, Rules, SourceConfig};
use crate::feed::normalise::normalise;
use crate::feed::parse::{ParseError, advertised_feeds, parse_document_limited};
use crate::feed::scrape::propose::{Proposal, propose};
use crate::fetch::guard::{self, Policy};
use crate::fetch::{FetchError, Fetcher, Validators};

/// Paths tried, on the page's origin, when it advertises no feed.
pub const COMMON_PATHS: &[&str] = &[
    "/feed",
    "/rss",
    "/atom.xml",
    "/feed.xml",
    "/index.xml",
    "/rss.xml",
    "/atom",
    "/feed.json",
];

/// Candidates fetched at most for one address.
pub const MAX_CANDIDATES: usize = 12;

/// Entries shown per candidate.
pub const NEWEST_SHOWN: usize = 3;

/// Selector proposals offered for a page without a feed, at most.
pub const MAX_PROPOSALS: usize = 5;

/// A feed found, as read once.
#[derive(Clone, Debug)]
pub struct Candidate {
    /// What to subscribe to: the URL found (or where its permanent redirect ended).
    pub url: Url,
    /// Where it was read from, after every redirect.
    pub base: Url,
    /// The feed's own title.
    pub title: Option<String>,
    /// The feed's site.
    pub site: Option<String>,
    /// Entries in the document.
    pub entries: usize,
    /// The newest few: title and date.
    pub newest: Vec<(String, Option<DateTime<Utc>>)>,
}

/// What an address offers.
#[derive(Debug, Default)]
pub struct Discovery {
    pub candidates: Vec<Candidate>,
    /// Feeds the page advertised that were not taken, with why.
    pub rejected: Vec<(String, String)>,
    /// Whether the address was an HTML page (else a feed).
    pub was_page: bool,
    /// When a page offers no feed: selectors for its repeated entries, best first.
    pub proposals: Vec<Proposal>,
    /// The page to subscribe to with a proposal (the URL asked for, or where its permanent
    /// redirects ended); `None` unless there are proposals.
    pub page: Option<Url>,
}

/// Why nothing could be discovered.
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error("{0} is not an http(s) URL")]
    NotHttp(String),
    #[error("cannot fetch {url}: {error}")]
    Fetch { url: Url, error: FetchError },
    #[error("{url} is neither a feed nor a web page: {error}")]
    NotFeedOrPage { url: Url, error: ParseError },
    /// A JSON document that is no JSON Feed: an API, read with `kind = "json"`.
    #[error(
        "{url} is a JSON document but no JSON Feed: read it as a JSON API, with kind = \"json\" and a [source.select] table{} (see \"Sites without a feed\" in the README; `tributary preview NAME` shows what it gives)",
        items.as_ref().map(|i| format!(" such as items = \"{i}\"")).unwrap_or_default()
    )]
    JsonApi { url: Url, items: Option<String> },
}

/// The feeds `url` offers (see the module's header). `Ok` with no candidates when a page
/// advertises none that can be read and no common path holds one.
pub async fn discover(fetch: &FetchConfig, url: &Url) -> Result<Discovery, DiscoverError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(DiscoverError::NotHttp(url.to_string()));
    }
    let fetcher = Fetcher::new(fetch).map_err(|error| DiscoverError::Fetch {
        url: url.clone(),
        error,
    })?;
    let got = fetch_body(&fetcher, url)
        .await
        .map_err(|error| DiscoverError::Fetch {
            url: url.clone(),
            error,
        })?;
    let final_url = got.base.clone();
    match read_feed(&fetcher, &got) {
        Ok(c) => {
            return Ok(Discovery {
                candidates: vec![c],
                ..Default::default()
            });
        }
        Err(ParseError::HtmlPage { .. }) => {}
        Err(error) => {
            if let Ok(doc) = serde_json::from_slice::<serde_json::Value>(&got.bytes)
                && !matches!(doc, serde_json::Value::Object(ref o) if o.contains_key("version") && o.contains_key("items"))
            {
                return Err(DiscoverError::JsonApi {
                    url: url.clone(),
                    items: crate::feed::scrape::suggest_items(&doc),
                });
            }
            return Err(DiscoverError::NotFeedOrPage {
                url: url.clone(),
                error,
            });
        }
    }
    let mut discovery = Discovery {
        was_page: true,
        ..Default::default()
    };
    let policy = Policy {
        allow: fetch.allow_networks.clone(),
        also: None,
    }
    .for_redirects_from(guard::url_address(&final_url));
    let mut advertised = Vec::new();
    for link in advertised_feeds(&got.bytes, &final_url) {
        let Ok(link) = Url::parse(&link) else {
            continue;
        };
        if advertised.len() >= MAX_CANDIDATES {
            discovery.rejected.push((
                link.to_string(),
                format!("more than {MAX_CANDIDATES} feeds"),
            ));
            continue;
        }
        match allowed(&link, &final_url, &policy, fetch.connect_timeout).await {
            Ok(()) => advertised.push(link),
            Err(why) => discovery.rejected.push((link.to_string(), why)),
        }
    }
    let from_links = !advertised.is_empty();
    let tried = if from_links {
        advertised
    } else {
        COMMON_PATHS
            .iter()
            .filter_map(|p| final_url.join(p).ok())
            .collect()
    };
    let mut seen = HashSet::new();
    for (url, result) in fetch_all(&fetcher, tried).await {
        match result {
            Ok(c) if seen.insert(c.base.clone()) => discovery.candidates.push(c),
            Ok(_) => {}
            // A common path that holds no feed is the usual case, not worth a line.
            Err(why) if from_links => discovery.rejected.push((url.to_string(), why)),
            Err(_) => {}
        }
    }
    if discovery.candidates.is_empty() {
        let Got {
            bytes,
            content_type,
            base,
            subscribe,
        } = got;
        let now = Utc::now();
        let proposals = tokio::task::spawn_blocking(move || {
            propose(&bytes, content_type.as_deref(), &base, now, MAX_PROPOSALS)
        })
        .await
        .unwrap_or_default();
        if !proposals.is_empty() {
            discovery.proposals = proposals;
            discovery.page = Some(subscribe);
        }
    }
    Ok(discovery)
}

/// Whether a link the page at `page` advertises may be fetched: on the page's origin, or
/// at an address `policy` lets through (a name is resolved and every address checked).
async fn allowed(link: &Url, page: &Url, policy: &Policy, within: Duration) -> Result<(), String> {
    if guard::same_origin(link, page) {
        return Ok(());
    }
    guard::check_url(link, policy).map_err(|why| format!("refused: {why}"))?;
    let (Some(url::Host::Domain(host)), Some(port)) = (link.host(), link.port_or_known_default())
    else {
        return Ok(());
    };
    let addresses = tokio::time::timeout(within, tokio::net::lookup_host((host, port)))
        .await
        .map_err(|_| format!("cannot resolve {host}: timed out"))?
        .map_err(|e| format!("cannot resolve {host}: {e}"))?;
    for a in addresses {
        policy
            .check(a.ip())
            .map_err(|why| format!("refused: {why}"))?;
    }
    Ok(())
}

/// Each URL fetched once and read, all at the same time (the fetcher's per-host limit
/// applies), in the order given.
async fn fetch_all(fetcher: &Fetcher, urls: Vec<Url>) -> Vec<(Url, Result<Candidate, String>)> {
    let mut tasks = JoinSet::new();
    for (i, url) in urls.into_iter().enumerate() {
        let fetcher = fetcher.clone();
        tasks.spawn(async move {
            let _permit = fetcher.host_permit(&url).await;
            let result = match fetch_body(&fetcher, &url).await {
                Ok(got) => read_feed(&fetcher, &got).map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            (i, url, result)
        });
    }
    let mut out = Vec::new();
    while let Some(done) = tasks.join_next().await {
        if let Ok(r) = done {
            out.push(r);
        }
    }
    out.sort_by_key(|(i, _, _)| *i);
    out.into_iter().map(|(_, u, r)| (u, r)).collect()
}

/// A document fetched.
struct Got {
    bytes: Vec<u8>,
    content_type: Option<String>,
    /// After every redirect: the base for relative links.
    base: Url,
    /// What to subscribe to: the URL asked for, or where its permanent redirects ended.
    subscribe: Url,
}

async fn fetch_body(fetcher: &Fetcher, url: &Url) -> Result<Got, FetchError> {
    let fetched = fetcher
        .fetch(&probe(url), url, &Validators::default())
        .await?;
    let subscribe = fetched.moved_to.unwrap_or_else(|| url.clone());
    let body = fetched.body.ok_or(FetchError::Empty)?;
    Ok(Got {
        bytes: body.bytes,
        content_type: body.content_type,
        base: body.final_url,
        subscribe,
    })
}

/// A document read as a feed.
fn read_feed(fetcher: &Fetcher, got: &Got) -> Result<Candidate, ParseError> {
    let final_url = &got.base;
    let parsed = parse_document_limited(
        &got.bytes,
        got.content_type.as_deref(),
        final_url,
        fetcher.max_entries(),
    )?;
    let n = normalise(parsed.feed, "add", final_url, Utc::now());
    let mut newest: Vec<(String, Option<DateTime<Utc>>)> = n
        .entries
        .iter()
        .map(|e| (e.title.clone(), e.published.or(Some(e.updated))))
        .collect();
    newest.sort_by_key(|e| std::cmp::Reverse(e.1));
    newest.truncate(NEWEST_SHOWN);
    Ok(Candidate {
        url: got.subscribe.clone(),
        base: got.base.clone(),
        title: n.feed_title,
        site: n.feed_link,
        entries: n.entries.len(),
        newest,
    })
}

/// A source for requesting `url` with the `[fetch]` defaults (no custom headers).
fn probe(url: &Url) -> SourceConfig {
    SourceConfig {
        name: "add".into(),
        url: url.clone(),
        title: None,
        tags: Vec::new(),
        interval: crate::config::DEFAULT_INTERVAL,
        user_agent: None,
        headers: Vec::new(),
        keep: None,
        keep_for: None,
        full_text: false,
        rules: Rules::default(),
        title_template: None,
        max_new_per_poll: None,
        kind: crate::config::SourceKind::Feed,
        websub: false,
    }
}
