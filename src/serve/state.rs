//! What the handlers share: the store, the live config, the render cache, the metrics.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::cache::RenderCache;
use crate::config::Config;
use crate::store::Store;

/// What the handlers share: one `Arc`, so the copy each request's extractors take is one
/// atomic increment, not one per counter of [`Shared`] (that was a fifth of a warm feed's
/// cost).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> AppState {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] holds.
pub struct Shared {
    pub store: Store,
    /// The running config; a reload replaces it (see [`AppState::config`]).
    pub live_config: tokio::sync::watch::Receiver<Arc<Config>>,
    /// When the daemon started: `updated` of a feed that has no entries yet.
    pub started: DateTime<Utc>,
    /// Rendered documents, by path and query, for the store generation they were made at.
    pub cache: Arc<std::sync::Mutex<RenderCache>>,
    pub metrics: crate::daemon::metrics::Metrics,
    /// The WebSub hub's subscription counts, for `/healthz` (the hub itself is the `/hub`
    /// route's extension: it renders with this state).
    pub hub_counts: Arc<std::sync::Mutex<super::hub_counts::Counts>>,
    /// The WebSub subscriber, which answers its callbacks.
    pub websub: crate::daemon::websub::Websub,
    /// `/healthz`, `/status`, `/metrics` and `/opml`, each made one at a time and shared
    /// by the requests waiting for it.
    pub pages: PageAnswers,
}

/// The pages made from every source's state ([`PageAnswer`] each).
#[derive(Default)]
pub struct PageAnswers {
    pub healthz: PageAnswer,
    pub status: PageAnswer,
    pub metrics: PageAnswer,
    pub opml: PageAnswer,
}

/// One page's answers, made one at a time, each shared by every request that arrived
/// before it began. At 10,000 sources `/healthz` is 4 MB of JSON: made once per request,
/// 64 slow readers held 430 MB; now they share one copy, and no answer is older than its
/// request (a request arriving while one is being made waits for the next).
/// An answer is kept only while requests wait for it: no later request could be given it.
#[derive(Default)]
pub struct PageAnswer {
    /// Answers begun so far.
    begun: std::sync::atomic::AtomicU64,
    /// Requests between arriving and having their answer.
    waiting: std::sync::atomic::AtomicUsize,
    /// The last answer made, and its number; held while one is being made.
    last: tokio::sync::Mutex<Option<(u64, bytes::Bytes)>>,
}

/// One request counted in [`PageAnswer::waiting`] until it is dropped (answered, failed or
/// given up).
struct Waiting<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

impl PageAnswer {
    /// The first answer begun after this call, made by `make` unless another request's
    /// is (a failed one is not kept: the next request makes its own).
    pub async fn get<F, E>(&self, make: impl FnOnce() -> F) -> Result<bytes::Bytes, E>
    where
        F: std::future::Future<Output = Result<bytes::Bytes, E>>,
    {
        use std::sync::atomic::Ordering;
        self.waiting.fetch_add(1, Ordering::AcqRel);
        let waiting = Waiting(&self.waiting);
        let wanted = self.begun.load(Ordering::Acquire) + 1;
        let mut last = self.last.lock().await;
        let body = match &*last {
            Some((n, body)) if *n >= wanted => body.clone(),
            _ => {
                let n = self.begun.fetch_add(1, Ordering::AcqRel) + 1;
                *last = None;
                let body = make().await?;
                *last = Some((n, body.clone()));
                body
            }
        };
        // The last one waiting lets it go (a request arriving from now on wants a newer
        // one anyway).
        drop(waiting);
        if self.waiting.load(Ordering::Acquire) == 0 {
            *last = None;
        }
        Ok(body)
    }
}

impl Shared {
    /// The config as of now (a reload may replace it between two calls).
    pub fn config(&self) -> Arc<Config> {
        self.live_config.borrow().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::PageAnswer;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Requests that arrive while an answer is being made wait for the next one and share
    /// it; a request never gets an answer begun before it arrived; a failed one is not kept.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn answers_are_made_one_at_a_time_and_shared_by_those_waiting() {
        let page = Arc::new(PageAnswer::default());
        let made = Arc::new(AtomicUsize::new(0));
        let (release, held) = tokio::sync::watch::channel(false);
        let make = |page: Arc<PageAnswer>, made: Arc<AtomicUsize>| {
            let mut held = held.clone();
            async move {
                page.get(|| async {
                    let n = made.fetch_add(1, Ordering::SeqCst) + 1;
                    held.wait_for(|go| *go).await.expect("released");
                    Ok::<_, ()>(bytes::Bytes::from(n.to_string()))
                })
                .await
            }
        };
        // The first request begins answer 1 and holds it open.
        let first = tokio::spawn(make(page.clone(), made.clone()));
        while made.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        // Ten more arrive meanwhile: they wait, and share answer 2.
        let waiting: Vec<_> = (0..10)
            .map(|_| tokio::spawn(make(page.clone(), made.clone())))
            .collect();
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        assert_eq!(made.load(Ordering::SeqCst), 1, "one answer at a time");
        release.send(true).expect("sends");
        assert_eq!(first.await.expect("joins"), Ok(bytes::Bytes::from("1")));
        for w in waiting {
            assert_eq!(w.await.expect("joins"), Ok(bytes::Bytes::from("2")));
        }
        assert_eq!(made.load(Ordering::SeqCst), 2, "the waiting shared one");
        assert!(
            page.last.lock().await.is_none(),
            "kept only while requests wait"
        );
        // A later request gets a new answer, not the last one.
        assert_eq!(
            make(page.clone(), made.clone()).await,
            Ok(bytes::Bytes::from("3"))
        );
        // A failed answer is not kept: the next request makes its own.
        assert_eq!(
            page.get(|| async { Err::<bytes::Bytes, _>("no") }).await,
            Err("no")
        );
        assert_eq!(
            make(page.clone(), made.clone()).await,
            Ok(bytes::Bytes::from("4"))
        );
    }
}
