//! `tributary preview NAME`: what one poll of a source would store now, without the store.
//!
//! The page is fetched as a poll fetches it (the same client, headers, caps and address
//! rules) but without validators, so the whole document is read; it is read exactly as a
//! poll reads it ([`read_page`]: parse or selectors, normalise, the source's rules and
//! title template). Nothing is stored and the store is not opened, so it works beside a
//! running daemon.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use url::Url;

use crate::config::SourceConfig;
use crate::fetch::{Fetched, Fetcher, Validators};
use crate::ingest::error::PollError;
use crate::ingest::page::{ReadPage, read_page_blocking};
use crate::model::Entry;

/// What a source gives now.
#[derive(Debug)]
pub struct Preview {
    /// Where the document came from, after redirects.
    pub url: Url,
    pub status: u16,
    pub took: Duration,
    /// The entries a poll would store (new or not), in page order.
    pub entries: Vec<Entry>,
    /// Entries the source's include/exclude rules kept out.
    pub filtered: usize,
    /// A field selector that matched nothing, a guessed charset, a repaired feed...
    pub warnings: Vec<String>,
}

/// Fetches and reads `source` once, at `now`. See the module docs.
pub async fn preview(
    fetcher: &Fetcher,
    source: &SourceConfig,
    now: DateTime<Utc>,
) -> Result<Preview, PollError> {
    let started = Instant::now();
    let _place = fetcher.host_permit(&source.url).await;
    let fetched = fetcher
        .fetch(source, &source.url, &Validators::default())
        .await?;
    let Fetched { status, body, .. } = fetched;
    let Some(body) = body else {
        // Without validators a server has nothing to answer 304 to; a file: source read
        // as unchanged has no body either.
        return Ok(Preview {
            url: source.url.clone(),
            status,
            took: started.elapsed(),
            entries: Vec::new(),
            filtered: 0,
            warnings: vec!["the server sent no document".into()],
        });
    };
    let url = body.final_url.clone();
    let ReadPage {
        normalised,
        warnings,
        filtered,
        ..
    } = read_page_blocking(source, body, fetcher.max_entries(), now, None).await?;
    let entries = normalised
        .entries
        .into_iter()
        .map(Entry::for_publishing)
        .collect();
    Ok(Preview {
        url,
        status,
        took: started.elapsed(),
        entries,
        filtered,
        warnings,
    })
}
