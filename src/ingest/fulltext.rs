//! Full text: for sources with `full_text = true`, each new entry's article page is
//! fetched once and the article extracted ([`crate::feed::extract`]) in place of the feed's teaser.
//!
//! After each poll of such a source, its newest [`WINDOW`] entries that were never tried
//! are fetched, at most [`PER_POLL`] per poll (the rest on later polls): politely, through
//! [`Fetcher::fetch_article`] (same User-Agent, timeout and size cap as feeds, the page
//! host's `per_host` place held, the address guard off the source's origin). Each outcome is stored
//! on the entry, so a page is never fetched twice, not after a restart either. A failure
//! or a refusal keeps the feed's own content and is recorded in the source's status.

use crate::config::SourceConfig;
use crate::fetch::{FetchError, Fetcher};
use crate::model::FullText;
use crate::store::Store;
use tokio_util::sync::CancellationToken;

/// How many of a source's newest entries are considered.
pub const WINDOW: usize = 50;
/// Article pages fetched per poll at most.
pub const PER_POLL: usize = 10;

/// What one poll's full-text pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FullTextCounts {
    pub fetched: usize,
    pub failed: usize,
    pub refused: usize,
}

impl FullTextCounts {
    pub fn tried(&self) -> usize {
        self.fetched + self.failed + self.refused
    }
}

/// Fetches the source's pending article pages (see the module docs).
pub async fn fetch_pending(
    fetcher: &Fetcher,
    store: &Store,
    source: &SourceConfig,
    cancel: &CancellationToken,
) -> FullTextCounts {
    let mut counts = FullTextCounts::default();
    let name = source.name.clone();
    let pending = match store
        .call(move |store| store.pending_full_text(&name, WINDOW))
        .await
    {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list the entries waiting for their full text");
            return counts;
        }
    };
    for (key, link) in pending.into_iter().take(PER_POLL) {
        if cancel.is_cancelled() {
            break;
        }
        let (article, shown) = match link.as_deref().map(url::Url::parse) {
            Some(Ok(url)) => {
                let fetched = tokio::select! {
                    r = fetch_one(fetcher, source, &url) => r,
                    () = cancel.cancelled() => break,
                };
                (fetched, url.to_string())
            }
            _ => (Err(ArticleError::NoLink), String::from("(no link)")),
        };
        let (outcome, article) = match article {
            Ok(html) => (FullText::Fetched, Some(html)),
            Err(e) => (e.into(), None),
        };
        match &outcome {
            FullText::Fetched => counts.fetched += 1,
            FullText::Failed { reason } => {
                counts.failed += 1;
                tracing::warn!(url = %shown, %reason, "full text not available; the feed's content stays");
            }
            FullText::Refused { reason } => {
                counts.refused += 1;
                tracing::warn!(url = %shown, %reason, "article page refused by the address guard");
            }
        }
        let name = source.name.clone();
        let saved = store
            .call(move |store| store.set_full_text(&name, &key, outcome, article, &shown))
            .await;
        if let Err(e) = saved {
            tracing::warn!(error = %e, "cannot store a full text");
        }
    }
    counts
}

/// Why an article page gave no full text.
#[derive(Debug, thiserror::Error)]
enum ArticleError {
    #[error("the entry has no link")]
    NoLink,
    /// Not fetched (a refusal by the address guard among them).
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// Fetched, but no article found in it.
    #[error(transparent)]
    Extract(#[from] crate::feed::extract::ExtractError),
    /// The extraction stopped unfinished (a bug: it panicked).
    #[error("internal error: {0}")]
    Task(tokio::task::JoinError),
}

impl From<ArticleError> for FullText {
    /// The outcome stored on the entry: a refusal is told apart from a failure.
    fn from(e: ArticleError) -> FullText {
        match e {
            ArticleError::Fetch(FetchError::Refused(reason)) => FullText::Refused { reason },
            e => FullText::Failed {
                reason: e.to_string(),
            },
        }
    }
}

/// One article page: fetched, extracted, sanitised.
async fn fetch_one(
    fetcher: &Fetcher,
    source: &SourceConfig,
    url: &url::Url,
) -> Result<String, ArticleError> {
    let _place = fetcher.host_permit(url).await;
    let page = fetcher.fetch_article(source, url).await?;
    let extracted = tokio::task::spawn_blocking(move || {
        crate::feed::extract::article(&page.bytes, page.content_type.as_deref(), &page.final_url)
    })
    .await;
    match extracted {
        Ok(Ok(html)) => Ok(html),
        Ok(Err(reason)) => Err(ArticleError::Extract(reason)),
        Err(e) => Err(ArticleError::Task(e)),
    }
}
