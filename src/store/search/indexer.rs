//! Keeping the index: rounds of work that take the journal in, or rebuild the index from
//! the store, a chunk at a time (newest entries first, so a rebuilding index answers for
//! recent entries within seconds), each round one commit. The commit's payload records
//! the layout version, whether the index is complete and, while it is not, how far the
//! rebuild came: a rebuild interrupted by a stop carries on at the next start.
//!
//! The index is rebuilt when it is missing, cannot be opened (damaged: its folder is
//! cleared), or was written with another [`INDEX_VERSION`]; `tributary reindex` asks for it.
//! While it rebuilds, the journal waits (the rebuild reads every entry as it is then),
//! and searches answer from what is indexed so far; `/healthz` says how far it is.
//!
//! Searches never wait for a round: the writer is taken out of its slot for the round,
//! and a search only clones the open index.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::{Found, Hit, INDEX_VERSION, Query, Scope, SearchError, SearchIndex, Sort, Start};
use crate::model::Entry;
use crate::store::keys::{self, TIME};
use crate::store::{Cursor, Store, StoreError};

/// Entries a rebuild round reads from the store (and the writer holds before it commits:
/// 5,000 held up to 8 MB of documents queued in the writer, and larger segments to build).
const REBUILD_CHUNK: usize = 2_000;

/// Rounds of results a page of a search may read when its view turns many down (a saved
/// search's patterns, duplicates): past them the page is shorter, and its next link goes on.
const SEARCH_ROUNDS: usize = 20;

/// The file that asks a running daemon to rebuild the index (`tributary reindex`).
pub const REINDEX_FILE: &str = "search-reindex";

/// What the last commit recorded.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Progress {
    pub version: u32,
    /// Every entry of the store was indexed once (later changes come through the journal).
    pub complete: bool,
    /// While rebuilding: the last time-index key indexed (hex), newest first.
    #[serde(default)]
    pub cursor: Option<String>,
    /// The journal's next number when the rebuild began: records numbered below it were
    /// noted before, so the rebuild read their entries as they are, and they are dropped
    /// without indexing again (a store filled before the index existed, a million records).
    #[serde(default)]
    pub since: u64,
}

/// The index as `/healthz` and `status` show it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SearchStatus {
    /// Entries searches can find.
    pub indexed: u64,
    /// Every stored entry was indexed (false while rebuilding).
    pub complete: bool,
    /// Records waiting in the journal (each the entries one write changed, at most a
    /// hundred for a poll), counted up to 10,000.
    pub backlog: u64,
    /// The last round's failure, if it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The index beside a store: opened when first needed.
#[derive(Default)]
pub struct Searching {
    index: Mutex<Option<Arc<SearchIndex>>>,
    /// The writer, between rounds (a round takes it out).
    writer: Mutex<Option<(tantivy::IndexWriter, Progress)>>,
    indexed: AtomicU64,
    /// Bumped by every round that changed the index.
    generation: AtomicU64,
    complete: std::sync::atomic::AtomicBool,
    backlog: AtomicU64,
    error: Mutex<Option<String>>,
}

/// What one round did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Round {
    /// Documents added or removed.
    pub changed: usize,
    /// More work is waiting.
    pub more: bool,
}

impl Store {
    /// The index's folder.
    fn search_dir(&self) -> PathBuf {
        self.path().join("search")
    }

    /// The open index (opened, or made empty, the first time).
    pub fn search_index(&self) -> Result<Arc<SearchIndex>, SearchError> {
        let mut slot = self
            .search
            .index
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(index) = &*slot {
            return Ok(index.clone());
        }
        let index = Arc::new(SearchIndex::open_or_create(&self.search_dir())?);
        *slot = Some(index.clone());
        Ok(index)
    }

    /// The writer and the progress of the last commit, opening (or remaking) the index
    /// as needed.
    fn take_writer(&self) -> Result<(tantivy::IndexWriter, Progress), SearchError> {
        let taken = self
            .search
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(w) = taken {
            return Ok(w);
        }
        let opened = self
            .search_index()
            .and_then(|index| Ok((index.writer()?, committed(&index)?)));
        let (writer, committed_progress) = match opened {
            Ok(ok) => ok,
            Err(error) => {
                tracing::warn!(%error, "the search index cannot be opened; it is rebuilt");
                self.remake_index()?;
                let index = self.search_index()?;
                (index.writer()?, committed(&index)?)
            }
        };
        let progress = match committed_progress {
            Some(p) => p,
            None => {
                let mut writer = writer;
                if self.search_index()?.num_docs() > 0 {
                    tracing::info!("the search index is of another version; it is rebuilt");
                }
                writer.delete_all_documents()?;
                let fresh = self.fresh_progress()?;
                commit(&mut writer, &fresh)?;
                return Ok((writer, fresh));
            }
        };
        Ok((writer, progress))
    }

    /// The progress of a rebuild about to begin.
    fn fresh_progress(&self) -> Result<Progress, SearchError> {
        let since = self
            .db()
            .and_then(|db| Ok(db.generate_id()?))
            .map_err(store_error)?;
        Ok(Progress {
            version: INDEX_VERSION,
            complete: false,
            cursor: None,
            since,
        })
    }

    fn put_writer(&self, writer: tantivy::IndexWriter, progress: Progress) {
        self.search
            .complete
            .store(progress.complete, Ordering::Relaxed);
        *self
            .search
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((writer, progress));
    }

    /// Whether the writer is open (between rounds of a rebuild or a long journal).
    fn writer_open(&self) -> bool {
        self.search
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some()
    }

    /// Clears the index's folder (it could not be opened) and forgets the open index.
    fn remake_index(&self) -> Result<(), SearchError> {
        self.search
            .index
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let dir = self.search_dir();
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(tantivy::TantivyError::from)?;
        }
        Ok(())
    }

    /// One round of indexing: a chunk of the rebuild while there is one, else up to `max`
    /// records of the journal. Errors are kept for [`Store::search_status`] too.
    pub fn index_pending(&self, max: usize) -> Result<Round, SearchError> {
        let round = self.index_round(max);
        let failure = round.as_ref().err().map(ToString::to_string);
        *self
            .search
            .error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = failure;
        round
    }

    fn index_round(&self, max: usize) -> Result<Round, SearchError> {
        // Nothing to do, the usual case between polls: no writer is opened.
        if self.search.complete.load(Ordering::Relaxed)
            && !self.writer_open()
            && self.journal_len(1).map_err(store_error)? == 0
        {
            self.search.backlog.store(0, Ordering::Relaxed);
            return Ok(Round::default());
        }
        let (mut writer, mut progress) = self.take_writer()?;
        let index = self.search_index()?;
        let round = if progress.complete {
            self.take_in_journal(&index, &mut writer, &progress, max)
        } else {
            self.rebuild_chunk(&index, &mut writer, &mut progress)
        };
        match round {
            Ok(round) => {
                if round.changed > 0 || !progress.complete {
                    index.reload()?;
                }
                self.search
                    .indexed
                    .store(index.num_docs(), Ordering::Relaxed);
                let backlog = self.journal_len(10_000).unwrap_or(0) as u64;
                self.search.backlog.store(backlog, Ordering::Relaxed);
                if round.more || !progress.complete {
                    self.put_writer(writer, progress);
                } else {
                    // Caught up: the writer goes (its memory, about 15 MB, and threads)
                    // until there is work again, once its merges are done.
                    self.search.complete.store(true, Ordering::Relaxed);
                    if let Err(error) = writer.wait_merging_threads() {
                        tracing::warn!(%error, "the search index's merges did not finish");
                    }
                    // What the writer and its merges freed goes back to the system (a
                    // rebuild's arenas are otherwise kept: 100 MB after a million).
                    crate::store::release_freed_memory();
                }
                if round.changed > 0 {
                    // Searches are cached by this too (the feeds' renders are not touched).
                    self.search.generation.fetch_add(1, Ordering::Release);
                    crate::store::release_freed_memory();
                }
                Ok(round)
            }
            // The writer is dropped (its uncommitted work with it); the next round opens
            // it again from the last commit.
            Err(e) => Err(e),
        }
    }

    /// Indexes the next chunk of the store, newest first.
    fn rebuild_chunk(
        &self,
        index: &SearchIndex,
        writer: &mut tantivy::IndexWriter,
        progress: &mut Progress,
    ) -> Result<Round, SearchError> {
        let before = progress.cursor.as_deref().and_then(Cursor::from_param);
        let mut read = 0;
        let mut last = None;
        let tails: Vec<([u8; 24], sled::IVec)> = self
            .index_scan(TIME.to_vec(), before.as_ref())
            .map_err(store_error)?
            .take(REBUILD_CHUNK)
            .collect::<Result<_, _>>()
            .map_err(store_error)?;
        for (tail, source) in &tails {
            read += 1;
            last = Some(*tail);
            let Ok(source) = std::str::from_utf8(source) else {
                continue;
            };
            // An unreadable entry is left out (verify reports it).
            if let Ok(Some(e)) =
                self.entry_at(source, &keys::tail_time(tail), &keys::tail_key(tail))
            {
                writer.add_document(index.document(&e, tail))?;
            }
        }
        if read < REBUILD_CHUNK {
            progress.complete = true;
            progress.cursor = None;
            tracing::info!(
                entries = index.num_docs() + read as u64,
                "search index built"
            );
        } else {
            progress.cursor = last.map(|t| crate::model::hex(&t));
        }
        commit(writer, progress)?;
        Ok(Round {
            changed: read,
            more: true,
        })
    }

    /// Takes in up to `max` records of the journal.
    fn take_in_journal(
        &self,
        index: &SearchIndex,
        writer: &mut tantivy::IndexWriter,
        progress: &Progress,
        max: usize,
    ) -> Result<Round, SearchError> {
        let records = self.journal_take(max).map_err(store_error)?;
        if records.is_empty() {
            return Ok(Round::default());
        }
        let mut changed = 0;
        let mut seen = std::collections::HashSet::new();
        for r in &records {
            // Noted before the rebuild began: the rebuild read those entries as they are.
            if r.seq < progress.since {
                continue;
            }
            for (source, key) in &r.entries {
                if !seen.insert((source, key)) {
                    continue;
                }
                changed += 1;
                writer.delete_term(index.id_term(key));
                // An unreadable entry is left out of the index until it is stored again.
                if let Ok(Some(e)) = self.entry(source, key) {
                    let tail = tail_of(&e);
                    writer.add_document(index.document(&e, &tail))?;
                }
            }
        }
        if changed > 0 {
            commit(writer, progress)?;
        }
        self.journal_clear(&records).map_err(store_error)?;
        let entries: usize = records.iter().map(|r| r.entries.len().max(1)).sum();
        Ok(Round {
            changed,
            more: entries >= max,
        })
    }

    /// Rounds until nothing is left: for `once`, `reindex` without a daemon, and tests.
    pub fn index_all_pending(&self) -> Result<(), SearchError> {
        while self.index_pending(1_000)?.more {}
        Ok(())
    }

    /// Starts a rebuild: the index is emptied and made again from the store.
    pub fn reindex(&self) -> Result<(), SearchError> {
        let (mut writer, _) = self.take_writer()?;
        writer.delete_all_documents()?;
        let progress = self.fresh_progress()?;
        commit(&mut writer, &progress)?;
        self.search_index()?.reload()?;
        self.put_writer(writer, progress);
        Ok(())
    }

    /// Whether the index was built completely once (from its last commit; for commands
    /// that read it without keeping it).
    pub fn search_built(&self) -> bool {
        if !self.search_dir().join("meta.json").exists() {
            return false;
        }
        self.search_index()
            .and_then(|index| committed(&index))
            .ok()
            .flatten()
            .is_some_and(|p| p.complete)
    }

    /// A number that changes whenever what searches find may have changed: rendered
    /// searches are cached under it (as feeds are under [`Store::generation`]).
    pub fn search_generation(&self) -> u64 {
        self.search.generation.load(Ordering::Acquire)
    }

    /// How the index stands (from the last round; nothing is read).
    pub fn search_status(&self) -> SearchStatus {
        SearchStatus {
            indexed: self.search.indexed.load(Ordering::Relaxed),
            complete: self.search.complete.load(Ordering::Relaxed),
            backlog: self.search.backlog.load(Ordering::Relaxed),
            error: self
                .search
                .error
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
        }
    }

    /// Drops the writer (and with it the index's lock): for a clean stop.
    pub fn close_search(&self) {
        if let Some((writer, _)) = self
            .search
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        {
            // Waits for merges in flight: their segments are kept for the next start.
            if let Err(error) = writer.wait_merging_threads() {
                tracing::warn!(%error, "the search index's merges did not finish");
            }
        }
    }

    /// The entries of a search's hits. Hits whose entry is gone (the journal has not
    /// caught up) are left out.
    fn entries_of(&self, hits: Vec<Hit>, scope: &Scope<'_>) -> Vec<Entry> {
        let mut entries = Vec::with_capacity(hits.len());
        for hit in hits {
            if !(scope.publishes)(&hit.source) {
                continue;
            }
            let tail = &hit.tail;
            if let Ok(Some(e)) =
                self.entry_at(&hit.source, &keys::tail_time(tail), &keys::tail_key(tail))
            {
                entries.push(e);
            }
        }
        self.entries_read
            .fetch_add(entries.len() as u64, Ordering::Relaxed);
        entries
    }

    /// A page of the entries matching `query` that `accept` takes, with where the next
    /// page starts. Newest first, further results are read (in rounds, at most
    /// [`SEARCH_ROUNDS`], all in one search's time) until the page is full; by relevance,
    /// one round (a page may hold fewer than `limit`).
    pub fn search_page(
        &self,
        query: &Query,
        scope: &Scope<'_>,
        sort: Sort,
        start: Option<Start>,
        limit: usize,
        accept: impl Fn(&Entry) -> bool,
    ) -> Result<(Vec<Entry>, Option<Start>), SearchError> {
        let index = self.search_index()?;
        let clock = index.clock();
        let mut out: Vec<Entry> = Vec::with_capacity(limit);
        let mut start = start;
        for round in 0..SEARCH_ROUNDS {
            if round > 0 && (clock.ran_out() || clock.over_budget()) {
                // The search's time is spent: the page ends with what it has.
                break;
            }
            let want = if round == 0 { limit } else { limit.max(200) };
            let Found { hits, next } = index.search(query, scope, sort, start, want, &clock)?;
            let entries = self.entries_of(hits, scope);
            if sort == Sort::Relevance {
                out.extend(entries.into_iter().filter(|e| accept(e)));
                return Ok((out, next));
            }
            let mut entries = entries.into_iter().peekable();
            while let Some(e) = entries.next() {
                if !accept(&e) {
                    continue;
                }
                out.push(e);
                if out.len() == limit {
                    let more = entries.peek().is_some() || next.is_some();
                    let last = out.last().map(|e| super::order_of(e.sort_time(), &e.key));
                    return Ok((out, last.filter(|_| more).map(Start::Below)));
                }
            }
            match next {
                Some(n) => start = Some(n),
                None => return Ok((out, None)),
            }
        }
        Ok((out, start))
    }

    /// Checks that the index and the store agree: every stored entry once in the index,
    /// nothing else. Meaningful when the index is complete and the journal empty.
    pub fn verify_search(&self) -> Result<SearchReport, SearchError> {
        if !self.search_dir().join("meta.json").exists() {
            // Never built: nothing to compare (and nothing is made here).
            return Ok(SearchReport::default());
        }
        let index = self.search_index()?;
        let mut report = SearchReport {
            complete: committed(&index)?.is_some_and(|p| p.complete),
            backlog: self
                .journal_take(usize::MAX)
                .map_err(store_error)?
                .iter()
                .map(|r| r.entries.len())
                .sum(),
            ..SearchReport::default()
        };
        let mut indexed: std::collections::HashMap<[u8; 24], usize> =
            std::collections::HashMap::new();
        for (_, tail) in index.all_documents()? {
            *indexed.entry(tail).or_default() += 1;
        }
        report.documents = indexed.values().sum();
        report.duplicated = indexed.values().filter(|&&n| n > 1).count();
        for item in self.index_scan(TIME.to_vec(), None).map_err(store_error)? {
            let (tail, _) = item.map_err(store_error)?;
            report.entries += 1;
            if indexed.remove(&tail).is_none() {
                report.missing += 1;
            }
        }
        report.stale = indexed.len();
        Ok(report)
    }
}

/// What [`Store::verify_search`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SearchReport {
    pub complete: bool,
    /// Entries changed and not yet taken in (counted once per change).
    pub backlog: usize,
    pub entries: usize,
    pub documents: usize,
    /// Stored entries the index does not have.
    pub missing: usize,
    /// Documents for entries the store does not have (or has elsewhere).
    pub stale: usize,
    /// Entries with more than one document.
    pub duplicated: usize,
}

impl SearchReport {
    /// Index and store agree (allowing for changes still in the journal).
    pub fn agrees(&self) -> bool {
        self.complete && self.duplicated == 0 && self.missing + self.stale <= 2 * self.backlog
    }
}

/// Where an entry is stored: `{time:8}{key:16}`.
fn tail_of(e: &Entry) -> [u8; 24] {
    let mut tail = [0u8; 24];
    tail[..8].copy_from_slice(&keys::time_bytes(e.sort_time()));
    tail[8..].copy_from_slice(&e.key.0);
    tail
}

/// What the index's last commit recorded, if it was written with this [`INDEX_VERSION`]
/// (else `None`: the index is to be rebuilt).
fn committed(index: &SearchIndex) -> Result<Option<Progress>, SearchError> {
    Ok(index
        .payload()?
        .and_then(|p| serde_json::from_str::<Progress>(&p).ok())
        .filter(|p| p.version == INDEX_VERSION))
}

/// Commits with `progress` as the payload.
fn commit(writer: &mut tantivy::IndexWriter, progress: &Progress) -> Result<(), SearchError> {
    let mut prepared = writer.prepare_commit()?;
    prepared.set_payload(&serde_json::to_string(progress).unwrap_or_default());
    prepared.commit()?;
    Ok(())
}

/// A store error met while indexing, as the index's.
fn store_error(e: StoreError) -> SearchError {
    SearchError::Store(Box::new(e))
}

#[cfg(test)]
mod tests {
    use super::super::{Scope, SearchError, Sort};
    use crate::store::Store;
    use crate::store::keys;
    use crate::store::tests::{entry, poll_as, temp_store};

    fn titles(store: &Store, q: &str) -> Vec<String> {
        let query = crate::query::parse(q).expect("a valid query");
        let all = |_: &str| true;
        let none = |_: &str| Vec::new();
        let scope = Scope {
            publishes: &all,
            tagged: &none,
        };
        let (entries, _) = store
            .search_page(&query, &scope, Sort::Newest, None, 50, |_| true)
            .expect("searches");
        entries.into_iter().map(|e| e.title).collect()
    }

    #[test]
    fn the_journal_carries_every_change_into_the_index() {
        let (_dir, store) = temp_store();
        let now = chrono::Utc::now();
        poll_as(
            &store,
            "s",
            vec![entry("a", 1, "Sled is fast"), entry("b", 2, "Fjall too")],
            now,
        );
        store.index_all_pending().expect("indexes");
        assert_eq!(titles(&store, "sled"), ["Sled is fast"]);
        assert!(store.verify_search().expect("verifies").agrees());

        // An update: found by its new words only.
        poll_as(&store, "s", vec![entry("a", 1, "Redb is fast")], now);
        store.index_all_pending().expect("indexes");
        assert!(titles(&store, "sled").is_empty());
        assert_eq!(titles(&store, "fast"), ["Redb is fast"]);
        let report = store.verify_search().expect("verifies");
        assert!(report.agrees(), "{report:?}");
        assert_eq!((report.entries, report.documents), (2, 2));

        // A rebuild drops the journal noted before it without indexing it again.
        store.reindex().expect("starts a rebuild");
        poll_as(&store, "s", vec![entry("c", 3, "Sled again")], now);
        store.index_all_pending().expect("rebuilds");
        assert_eq!(
            titles(&store, "fast OR sled"),
            ["Sled again", "Redb is fast"]
        );
        assert_eq!(store.journal_len(10).expect("reads"), 0);
        let report = store.verify_search().expect("verifies");
        assert!(report.agrees() && report.documents == 3, "{report:?}");
    }

    #[test]
    fn a_search_ends_when_its_time_runs_out() {
        use super::super::{Clock, Start};
        use std::time::Duration;
        let (_dir, store) = temp_store();
        // 400 entries a day apart, the newest first in `titles`.
        let day0 = chrono::Utc::now() - chrono::Duration::days(400);
        let entries: Vec<_> = (0..400)
            .map(|i| {
                let mut e = entry(&format!("g{i}"), 0, &format!("Sled note {i}"));
                e.published = Some(day0 + chrono::Duration::days(i));
                e
            })
            .collect();
        let all: Vec<String> = entries.iter().rev().map(|e| e.title.clone()).collect();
        poll_as(&store, "s", entries, chrono::Utc::now());
        store.index_all_pending().expect("indexes");
        let index = store.search_index().expect("opens");
        let query = crate::query::parse("sled").expect("a valid query");
        let (yes, none) = (|_: &str| true, |_: &str| Vec::new());
        let scope = Scope {
            publishes: &yes,
            tagged: &none,
        };
        let hour = Duration::from_secs(3600);
        let search = |sort, start, clock: &std::sync::Arc<Clock>| {
            index.search(&query, &scope, sort, start, 1000, clock)
        };

        // No time at all: the first window (or the whole search, by relevance) runs out.
        for sort in [Sort::Newest, Sort::Relevance] {
            let out = search(sort, None, &Clock::start(None, Duration::ZERO));
            assert!(
                matches!(out, Err(SearchError::TooSlow)),
                "{sort:?}: {out:?}"
            );
        }

        // The first window has the hard limit, the next ones a spent budget: the page
        // holds the first window's matches, newest first, and the next page starts where
        // it ended.
        let page = search(
            Sort::Newest,
            None,
            &Clock::start(Some(Duration::ZERO), hour),
        )
        .expect("the first window is searched whole");
        let Some(Start::Below(below)) = page.next else {
            panic!("the page ends early: {:?}", page.next);
        };
        assert!(
            !page.hits.is_empty() && page.hits.len() < 400,
            "{}",
            page.hits.len()
        );
        let rest = search(
            Sort::Newest,
            Some(Start::Below(below)),
            &Clock::start(None, hour),
        )
        .expect("searches");
        assert!(rest.next.is_none());
        let title = |h: &super::super::Hit| {
            let tail = &h.tail;
            store
                .entry_at(&h.source, &keys::tail_time(tail), &keys::tail_key(tail))
                .expect("reads")
                .expect("stored")
                .title
        };
        let seen: Vec<String> = page.hits.iter().chain(&rest.hits).map(title).collect();
        assert_eq!(seen, all, "no match lost or repeated across the cut");

        // A window that runs out after one was searched whole (a later round of the same
        // search) is left whole for the next page: here, all of it.
        let clock = Clock::start(Some(Duration::ZERO), hour);
        clock.window_done();
        let later = search(Sort::Newest, Some(Start::Below(below)), &clock).expect("searches");
        assert!(later.hits.is_empty());
        assert_eq!(later.next, Some(Start::Below(below)));
    }

    #[test]
    fn a_damaged_index_is_made_again_from_the_store() {
        let (dir, store) = temp_store();
        poll_as(
            &store,
            "s",
            vec![entry("a", 1, "Sled is fast")],
            chrono::Utc::now(),
        );
        store.index_all_pending().expect("indexes");
        store.close_search();
        drop(store);
        std::fs::write(dir.path().join("search").join("meta.json"), b"{not json").expect("writes");
        let store = Store::open(dir.path(), 1 << 20).expect("opens");
        assert!(!store.search_built());
        store.index_all_pending().expect("rebuilds");
        assert_eq!(titles(&store, "sled"), ["Sled is fast"]);
        assert!(store.search_built());
    }
}
