//! The store: the only module that touches sled. Everything else sees [`Store`]'s own API, so
//! the engine can be swapped.
//!
//! # Layout (one sled tree, prefixed keys)
//! - `meta/schema` → schema version (ASCII decimal).
//! - `e/{source}\0{key:16}` → an [`Entry`] as JSON. A source's entries lie side by side,
//!   so a source's feed and a poll's lookups read a few tree nodes, not one per entry.
//! - `t/{time:8}{key:16}` → the entry's source: every entry, ordered by
//!   [`Entry::sort_time`], so the newest N are read from the end without scanning.
//! - `s/{source}\0{time:8}{key:16}` → empty: the same, per source.
//! - `st/{source}` → a [`SourceState`] as JSON.
//! - `l/{source}\0{article:16}` → an entry key: a source's entries by normalised link, so a
//!   publisher changing an entry's guid does not make it new.
//! - `a/{article:16}` → a [`Credit`] as JSON: the source that brought an article first
//!   (cross-source dedup).
//! - `f/{instance:8}{time:8}{key:16}` → the entry's source: the entries a named feed with
//!   patterns takes, newest last, with `fm/` and `fg/` keys that manage them (see [`feeds`]).
//! - `x/{source}\0{key:16}` → a tombstone, `{last seen:8}{article:16}?`: an entry retention
//!   pruned, so it is not stored again while the source's feed still lists it (see
//!   [`retention`]).
//!
//! One poll's writes go in one `apply_batch`, which sled applies atomically, followed by a
//! flush: what a poll reports as stored is on disk. Writers hold a mutex across read and
//! batch, so two writers cannot interleave a read-modify-write.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use crate::feed::normalise::Merge;
use crate::model::{Credit, Entry, EntryKey, PollCounts, SourceState};

mod face;
mod feeds;
mod retention;

pub use crate::model::FeedIndex;
pub use retention::{HeldPass, Limits, PrunePlan, PruneReport, VerifyReport};

/// The on-disk layout version this build reads and writes.
///
/// - 1: entries, indexes, source states, links, credits.
/// - 2: adds tombstones (`x/`). A version-1 store is upgraded in place at open (nothing
///   to convert); a build that knows only version 1 refuses a version-2 store, since it
///   would store pruned entries again.
/// - 4: adds the named-feed indexes (`f/`, `fm/`, `fg/`, see [`feeds`]). A version-3
///   store is upgraded in place at open (nothing to convert); a build that knows only
///   version 3 refuses a version-4 store, since its writes would not keep those indexes.
/// - 3: entries are keyed by source and key (`e/{source}\0{key}`, was `e/{key}`), and the
///   time index records the source. An older store is converted at open (see
///   [`convert`]), resumably: the version is set to 3 first, with a `meta/converting`
///   marker (so an older build refuses the half-converted store); a crash midway leaves
///   some entries moved and the marker, and the next open moves the rest.
pub const SCHEMA_VERSION: u32 = 4;

const SCHEMA_KEY: &[u8] = b"meta/schema";
/// Present while an older store is being converted to [`SCHEMA_VERSION`].
const CONVERTING_KEY: &[u8] = b"meta/converting";

/// Entries per sled batch (see [`Store::apply_poll`]).
const CHUNK: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the store at {path} is in use by another process (is another tributary running on it?)"
    )]
    Locked { path: PathBuf },
    #[error(
        "there is no store at {path}: nothing was stored with this config yet. (The service keeps its store in $STATE_DIRECTORY: to reach it by hand, run e.g. `sudo STATE_DIRECTORY=/var/lib/tributary tributary …`.)"
    )]
    Missing { path: PathBuf },
    #[error("cannot open the store at {path}: {error}")]
    Open { path: PathBuf, error: String },
    #[error(
        "the store at {path} has schema version {found}, newer than this tributary understands ({SCHEMA_VERSION}); upgrade tributary"
    )]
    NewerSchema { path: PathBuf, found: String },
    #[error("store error: {0}")]
    Sled(#[from] sled::Error),
    #[error("store record {key} is unreadable: {error}")]
    Corrupt { key: String, error: String },
    #[error(
        "the disk holding the store at {path} is full ({free} MB free, [store] min_free_mb is {min} MB): nothing is stored until space is freed; the feeds are still served"
    )]
    DiskFull { path: PathBuf, free: u64, min: u64 },
    #[error(
        "the disk holding the store at {path} is full (no space left on device): this poll was not stored; the store was reopened and the feeds are still served; nothing is stored until [store] min_free_mb is free again"
    )]
    NoSpace { path: PathBuf },
    #[error("a store call stopped unfinished: {0}")]
    Task(String),
}

/// A cheap-to-clone handle to the store.
#[derive(Clone)]
pub struct Store {
    /// `None` only while the store is being reopened after a full disk (see
    /// [`Store::recover`]); every access clones the handle out (a cheap Arc clone).
    db: Arc<std::sync::RwLock<Option<sled::Db>>>,
    cache_bytes: u64,
    path: Arc<PathBuf>,
    min_free: Arc<std::sync::atomic::AtomicU64>,
    /// `[retention] tombstones_for`, in ms: how fresh polls keep tombstones.
    tombstone_ttl_ms: Arc<std::sync::atomic::AtomicU64>,
    /// Counts reopenings after a full disk, so two threads that saw the same failure
    /// reopen once.
    epoch: Arc<std::sync::atomic::AtomicU64>,
    /// Bumped by every write that can change a published feed; readers cache by it.
    generation: Arc<std::sync::atomic::AtomicU64>,
    // A std Mutex is right here: it is never held across an .await (store calls are
    // synchronous, run on blocking threads).
    write_lock: Arc<Mutex<()>>,
    /// When the write lock was taken, in ms since the epoch; 0 when free.
    write_since: Arc<std::sync::atomic::AtomicU64>,
    /// When the flush in progress began (likewise).
    flush_since: Arc<std::sync::atomic::AtomicU64>,
    /// The named-feed indexes this process keeps (see [`feeds`]).
    feeds: Arc<feeds::Registry>,
    /// Entries read through an index (pages, full-text lookups) since the store was opened.
    entries_read: Arc<std::sync::atomic::AtomicU64>,
}

impl Store {
    /// Opens the store at `path` only if there is one: for commands that read or check a
    /// store, where creating an empty one would hide a wrong path.
    pub fn open_existing(path: &Path, cache_bytes: u64) -> Result<Store, StoreError> {
        if !path.join("db").exists() {
            return Err(StoreError::Missing {
                path: path.to_path_buf(),
            });
        }
        Store::open(path, cache_bytes)
    }

    /// Opens (creating if needed) the store at `path`, checking its schema version.
    pub fn open(path: &Path, cache_bytes: u64) -> Result<Store, StoreError> {
        if let Err(e) = std::fs::create_dir_all(path) {
            return Err(StoreError::Open {
                path: path.to_path_buf(),
                error: e.to_string(),
            });
        }
        let db = match open_db(path, cache_bytes) {
            // A disk so full that sled cannot even open: the reserve makes room.
            Err(StoreError::Open { .. }) if release_reserve(path) => open_db(path, cache_bytes)?,
            other => other?,
        };
        match db.get(SCHEMA_KEY)? {
            None => {
                db.insert(SCHEMA_KEY, SCHEMA_VERSION.to_string().as_bytes())?;
                db.flush()?;
            }
            Some(v) => {
                let found = String::from_utf8_lossy(&v).to_string();
                match found.parse::<u32>() {
                    // A conversion was interrupted: carry on.
                    Ok(n) if n <= SCHEMA_VERSION && db.contains_key(CONVERTING_KEY)? => {
                        db.insert(SCHEMA_KEY, SCHEMA_VERSION.to_string().as_bytes())?;
                        convert(&db)?
                    }
                    Ok(SCHEMA_VERSION) => {}
                    // Version 4 only adds keys: nothing to convert.
                    Ok(3) => {
                        db.insert(SCHEMA_KEY, SCHEMA_VERSION.to_string().as_bytes())?;
                        db.flush()?;
                        tracing::info!(from = 3, to = SCHEMA_VERSION, "store schema upgraded");
                    }
                    Ok(n) if n < SCHEMA_VERSION => {
                        // The new version first, with a marker: from here on a build that
                        // knows only the old layout refuses the store instead of storing
                        // entries again beside the converted ones.
                        db.insert(CONVERTING_KEY, &[])?;
                        db.insert(SCHEMA_KEY, SCHEMA_VERSION.to_string().as_bytes())?;
                        db.flush()?;
                        convert(&db)?;
                        tracing::info!(from = n, to = SCHEMA_VERSION, "store schema upgraded");
                    }
                    _ => {
                        return Err(StoreError::NewerSchema {
                            path: path.to_path_buf(),
                            found,
                        });
                    }
                }
            }
        }
        make_reserve(path);
        Ok(Store {
            db: Arc::new(std::sync::RwLock::new(Some(db))),
            cache_bytes,
            path: Arc::new(path.to_path_buf()),
            min_free: Arc::default(),
            tombstone_ttl_ms: Arc::new(std::sync::atomic::AtomicU64::new(90 * 24 * 3600 * 1000)),
            epoch: Arc::default(),
            generation: Arc::default(),
            write_lock: Arc::new(Mutex::new(())),
            write_since: Arc::default(),
            flush_since: Arc::default(),
            feeds: Arc::default(),
            entries_read: Arc::default(),
        })
    }

    /// The saved state of a source, if it was ever polled.
    pub fn source_state(&self, source: &str) -> Result<Option<SourceState>, StoreError> {
        self.reading(|| self.source_state_inner(source))
    }

    fn source_state_inner(&self, source: &str) -> Result<Option<SourceState>, StoreError> {
        let key = state_key(source);
        match self.db()?.get(&key)? {
            None => Ok(None),
            Some(v) => decode(&key, &v).map(Some),
        }
    }

    /// Every source with saved state, by name.
    pub fn source_states(&self) -> Result<Vec<(String, SourceState)>, StoreError> {
        self.reading(|| self.source_states_inner())
    }

    fn source_states_inner(&self) -> Result<Vec<(String, SourceState)>, StoreError> {
        let mut out = Vec::new();
        for item in self.db()?.scan_prefix(b"st/") {
            let (k, v) = item?;
            let name = String::from_utf8_lossy(&k[3..]).to_string();
            out.push((name, decode(&k, &v)?));
        }
        Ok(out)
    }

    /// Records a poll that produced no entries to merge (a failure or a 304). Written
    /// without waiting for the disk (see the body).
    ///
    /// What the store itself keeps in the state (the entry count, the removal mark) is
    /// taken from the stored state, not from `state`: retention may have changed it since
    /// the poll read it.
    pub fn save_state(&self, source: &str, state: &SourceState) -> Result<(), StoreError> {
        self.writing(|| self.save_state_inner(source, state))
    }

    fn save_state_inner(&self, source: &str, state: &SourceState) -> Result<(), StoreError> {
        let _guard = self.lock();
        let mut state = state.clone();
        if let Some(stored) = self.source_state_inner(source)? {
            state.entry_count = stored.entry_count;
            state.capped = stored.capped;
            state.keep_store_fields(&stored);
        }
        // Not flushed here: sled writes it out within a second, and a state lost to a
        // crash only means an earlier poll. Entries are what must not be lost.
        self.db()?.insert(state_key(source), encode(&state))?;
        Ok(())
    }

    /// Merges one poll's entries and the source's new state, atomically, then flushes.
    ///
    /// `merge` decides, for each incoming entry and the stored one with the same key, whether
    /// it is new, updated or unchanged ([`crate::feed::normalise::merge`]).
    ///
    /// With `max_new`, at most that many new entries are stored (the newest); the other
    /// new ones get a tombstone, so they are skipped for good (counted as `capped`).
    pub fn apply_poll(
        &self,
        source: &str,
        incoming: Vec<Entry>,
        state: SourceState,
        max_new: Option<usize>,
        now: DateTime<Utc>,
        merge: impl Fn(Option<&Entry>, Entry) -> Merge,
    ) -> Result<PollCounts, StoreError> {
        self.ensure_space()?;
        self.writing(|| self.apply_poll_inner(source, incoming, state, max_new, now, merge))
    }

    fn apply_poll_inner(
        &self,
        source: &str,
        mut incoming: Vec<Entry>,
        mut state: SourceState,
        max_new: Option<usize>,
        now: DateTime<Utc>,
        merge: impl Fn(Option<&Entry>, Entry) -> Merge,
    ) -> Result<PollCounts, StoreError> {
        if max_new.is_some() {
            // The newest first, so the cap keeps the newest.
            incoming.sort_by_key(|e| std::cmp::Reverse(e.sort_time()));
        }
        let mut counts = PollCounts::default();
        // A huge feed is written in chunks: one sled batch for 50,000 entries costs over a
        // gigabyte, and memory grows with the batch. Each chunk carries the source's
        // *previous* state with its entry count brought up to date, so an interrupted poll
        // leaves consistent counts and the old validators: the next poll fetches again and
        // finds what was written unchanged. Only the last chunk writes the new state. Feeds
        // of up to CHUNK entries (nearly all) are one atomic batch. The write lock is taken
        // per chunk, so no write holds it for long (the watchdog watches for that) and
        // retention interleaves with a big poll.
        // Keys the feed still uses: such an entry is never the target of a guid change.
        let present: std::collections::HashSet<EntryKey> = incoming.iter().map(|e| e.key).collect();
        let total = incoming.len();
        let mut done = 0;
        let mut incoming = incoming.into_iter();
        loop {
            let _guard = self.lock();
            let mut previous = self.source_state_inner(source)?.unwrap_or_default();
            let mut batch = sled::Batch::default();
            let new_before = counts.new;
            for entry in incoming.by_ref().take(CHUNK) {
                self.merge_one(
                    source,
                    entry,
                    &present,
                    &merge,
                    max_new,
                    now,
                    &mut batch,
                    &mut counts,
                )?;
                done += 1;
            }
            let added = (counts.new - new_before) as u64;
            if done >= total {
                // As in `save_state`: the store's own fields come from the stored state.
                state.entry_count = previous.entry_count + added;
                state.capped = previous.capped + counts.capped as u64;
                state.keep_store_fields(&previous);
                batch.insert(state_key(source), encode(&state));
                self.db()?.apply_batch(batch)?;
                break;
            }
            previous.entry_count += added;
            batch.insert(state_key(source), encode(&previous));
            self.db()?.apply_batch(batch)?;
        }
        // What a poll reports as stored is on disk. A poll that changed no entry (all
        // unchanged) wrote only the source's state: like `save_state`, no need to wait.
        if counts.new + counts.updated + counts.capped > 0 {
            self.flush_tracked()?;
            self.generation
                .fetch_add(1, std::sync::atomic::Ordering::Release);
        }
        Ok(counts)
    }

    /// A source's newest `window` entries whose article page was never tried (full text):
    /// their keys and links.
    pub fn pending_full_text(
        &self,
        source: &str,
        window: usize,
    ) -> Result<Vec<(EntryKey, Option<String>)>, StoreError> {
        self.reading(|| {
            let mut prefix = b"s/".to_vec();
            prefix.extend_from_slice(source.as_bytes());
            prefix.push(0);
            let mut out = Vec::new();
            for k in self.db()?.scan_prefix(&prefix).keys().rev().take(window) {
                let k = k?;
                let Some(tail) = k.len().checked_sub(16).map(|at| &k[at..]) else {
                    continue;
                };
                if let Some(e) = self.indexed_entry(source, tail)?
                    && e.full_text.is_none()
                {
                    out.push((e.key, e.link));
                }
            }
            Ok(out)
        })
    }

    /// Records what fetching an entry's article page came to (and the article), once;
    /// the source's counters follow. An entry pruned meanwhile is left alone.
    pub fn set_full_text(
        &self,
        source: &str,
        key: &EntryKey,
        outcome: crate::model::FullText,
        article: Option<String>,
        url: &str,
    ) -> Result<(), StoreError> {
        use crate::model::FullText;
        self.ensure_space()?;
        self.writing(|| {
            let _guard = self.lock();
            let Some(mut e) = self.entry(source, key)? else {
                return Ok(());
            };
            let mut batch = sled::Batch::default();
            if let Some(mut state) = self.source_state_inner(source)? {
                match &outcome {
                    FullText::Fetched => state.full_text_fetched += 1,
                    FullText::Failed { reason } => {
                        state.full_text_failed += 1;
                        state.full_text_last_failure = Some(format!("{url}: {reason}"));
                    }
                    FullText::Refused { reason } => {
                        state.full_text_refused += 1;
                        state.last_refusal = Some(format!("{url}: {reason}"));
                    }
                }
                batch.insert(state_key(source), encode(&state));
            }
            e.full_text = Some(outcome);
            e.full_content = article;
            batch.insert(entry_key(source, key), encode(&e));
            self.db()?.apply_batch(batch)?;
            self.generation
                .fetch_add(1, std::sync::atomic::Ordering::Release);
            Ok(())
        })
    }

    /// A number that changes whenever what the feeds publish may have changed (every
    /// stored poll): rendered documents cached under one generation are stale under another.
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Entries read through an index since the store was opened: what renders cost.
    pub fn entries_read(&self) -> u64 {
        self.entries_read.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn bump_generation(&self) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::Release);
    }

    #[allow(clippy::too_many_arguments)]
    fn merge_one(
        &self,
        source: &str,
        mut entry: Entry,
        present: &std::collections::HashSet<EntryKey>,
        merge: &impl Fn(Option<&Entry>, Entry) -> Merge,
        max_new: Option<usize>,
        now: DateTime<Utc>,
        batch: &mut sled::Batch,
        counts: &mut PollCounts,
    ) -> Result<(), StoreError> {
        // Stored under `source`, indexed and credited under `entry.source`: one name.
        debug_assert_eq!(entry.source, source, "an entry polled for another source");
        if entry.source != source {
            entry.source = source.to_string();
        }
        let mut existing = self.entry(source, &entry.key)?;
        if existing.is_none() && self.buried(source, &entry.key, now, batch)? {
            counts.pruned += 1;
            return Ok(());
        }
        // A new guid on a link this source already has: the publisher changed its guids
        // (some do on every fetch). It is the same entry (or the same pruned entry).
        if existing.is_none()
            && let Some(article) = entry.article
            && let Some(k) = self.db()?.get(link_key(source, &article))?
            && let Ok(old_key) = <[u8; 16]>::try_from(k.as_ref())
            && !present.contains(&EntryKey(old_key))
        {
            match self.entry(source, &EntryKey(old_key))? {
                Some(old) => {
                    counts.guid_changes += 1;
                    entry.key = old.key;
                    existing = Some(old);
                }
                None if self.buried(source, &EntryKey(old_key), now, batch)? => {
                    counts.pruned += 1;
                    return Ok(());
                }
                None => {}
            }
        }
        let ekey = entry_key(source, &entry.key);
        match merge(existing.as_ref(), entry) {
            Merge::Unchanged => counts.unchanged += 1,
            Merge::New(e) if max_new.is_some_and(|max| counts.new >= max) => {
                counts.capped += 1;
                batch.insert(
                    tomb_key(source, &e.key),
                    retention::tomb_value(now, e.article),
                );
                if let Some(article) = e.article {
                    batch.insert(link_key(source, &article), &e.key.0);
                }
            }
            Merge::New(mut e) => {
                counts.new += 1;
                if let Some(article) = e.article {
                    batch.insert(link_key(source, &article), &e.key.0);
                    self.credit(&mut e, article, batch, counts)?;
                }
                insert_indexes(&e, batch);
                self.index_in_feeds(&e, batch);
                batch.insert(ekey, encode(&e));
            }
            Merge::Updated(e) => {
                counts.updated += 1;
                if let Some(article) = e.article
                    && existing.as_ref().is_none_or(|o| o.article != e.article)
                {
                    batch.insert(link_key(source, &article), &e.key.0);
                }
                if let Some(old) = &existing
                    && old.sort_time() != e.sort_time()
                {
                    batch.remove(time_key(old));
                    batch.remove(source_time_key(old));
                    insert_indexes(&e, batch);
                }
                // Its texts may have changed, and with them the named feeds that take it.
                if let Some(old) = &existing {
                    self.unindex_in_feeds(old, batch);
                }
                self.index_in_feeds(&e, batch);
                batch.insert(ekey, encode(&e));
            }
        }
        Ok(())
    }

    /// Whether retention pruned this entry (it has a tombstone); a tombstone last seen
    /// over a day ago is refreshed, so it lives while the feed still lists the entry.
    fn buried(
        &self,
        source: &str,
        key: &EntryKey,
        now: DateTime<Utc>,
        batch: &mut sled::Batch,
    ) -> Result<bool, StoreError> {
        let tkey = tomb_key(source, key);
        let Some(value) = self.db()?.get(&tkey)? else {
            return Ok(false);
        };
        let seen = retention::tomb_seen(&value);
        // Refreshed often enough that retention (which drops tombstones unseen for
        // `tombstones_for`) never drops one its feed still lists: daily, or at a quarter of
        // a shorter `tombstones_for`.
        let ttl_ms = self
            .tombstone_ttl_ms
            .load(std::sync::atomic::Ordering::Relaxed);
        let every =
            chrono::Duration::milliseconds((ttl_ms / 4) as i64).min(chrono::Duration::days(1));
        if seen.is_none_or(|t| now - t >= every) {
            batch.insert(
                tkey,
                retention::tomb_value(now, retention::tomb_article(&value)),
            );
        }
        Ok(true)
    }

    /// Whether an entry is stored (a failed read counts as yes: nothing is hidden by it).
    pub fn has_entry(&self, source: &str, key: &EntryKey) -> bool {
        self.db()
            .and_then(|db| Ok(db.contains_key(entry_key(source, key))?))
            .unwrap_or(true)
    }

    fn entry(&self, source: &str, key: &EntryKey) -> Result<Option<Entry>, StoreError> {
        let ekey = entry_key(source, key);
        match self.db()?.get(&ekey)? {
            Some(v) => Ok(Some(decode(&ekey, &v)?)),
            None => Ok(None),
        }
    }

    /// Cross-source dedup: the first source to bring an article is credited with it; a
    /// later one's entry is marked as a duplicate of it, and the credited entry records the
    /// other source.
    fn credit(
        &self,
        e: &mut Entry,
        article: [u8; 16],
        batch: &mut sled::Batch,
        counts: &mut PollCounts,
    ) -> Result<(), StoreError> {
        let akey = article_key(&article);
        let credited = match self.db()?.get(&akey)? {
            Some(v) => Some(decode::<Credit>(&akey, &v)?),
            None => None,
        };
        match credited {
            Some(c) if c.source != e.source => {
                if let Some(mut first) = self.entry(&c.source, &c.key)? {
                    if !first.also_in.contains(&e.source) {
                        first.also_in.push(e.source.clone());
                        batch.insert(entry_key(&first.source, &first.key), encode(&first));
                    }
                    counts.duplicates += 1;
                    e.duplicate_of = Some(c);
                } else {
                    // The credited entry is gone: this one takes over.
                    batch.insert(akey, encode(&credit_of(e)));
                }
            }
            Some(_) => {}
            None => batch.insert(akey, encode(&credit_of(e))),
        }
        Ok(())
    }

    /// One page of entries, newest first: all sources (`source: None`) or one, strictly
    /// older than `before` (a cursor from an earlier page's `next`), at most `limit`, those
    /// for which `accept` holds. `next` is set when older accepted entries remain.
    pub fn page(
        &self,
        source: Option<&str>,
        before: Option<&Cursor>,
        limit: usize,
        accept: impl Fn(&Entry) -> bool,
    ) -> Result<Page, StoreError> {
        self.reading(|| self.page_inner(source, before, limit, &accept))
    }

    fn page_inner(
        &self,
        source: Option<&str>,
        before: Option<&Cursor>,
        limit: usize,
        accept: &impl Fn(&Entry) -> bool,
    ) -> Result<Page, StoreError> {
        match source {
            // The time index records each entry's source.
            None => self.collect_page(self.index_scan(b"t/".to_vec(), before)?, limit, accept),
            Some(name) => {
                let items = self
                    .index_scan(retention::source_prefix(b"s/", name), before)?
                    .map(|item| item.map(|(tail, _)| (tail, name.to_string())));
                self.collect_page(items, limit, accept)
            }
        }
    }

    /// A page of a feed made of `sources`, newest first, of the entries `accept` takes.
    ///
    /// With `index` (a named feed with patterns, see [`feeds`]) ready, the feed's own index
    /// is read: it holds only what the patterns take, so a page costs the same whatever
    /// they match. Otherwise the sources' own indexes are merged, newest first: the cost is
    /// the page plus one index seek per source, and a source with no entries costs a seek.
    pub fn page_of_sources(
        &self,
        sources: &[&str],
        index: Option<[u8; 8]>,
        before: Option<&Cursor>,
        limit: usize,
        accept: impl Fn(&Entry) -> bool,
    ) -> Result<Page, StoreError> {
        self.reading(|| {
            if let Some(instance) = index.and_then(|id| self.ready_instance(&id)) {
                let prefix = [b"f/".as_slice(), &instance].concat();
                return self.collect_page(self.index_scan(prefix, before)?, limit, &accept);
            }
            let mut heads = std::collections::BinaryHeap::new();
            let mut scans = Vec::with_capacity(sources.len());
            for (i, name) in sources.iter().enumerate() {
                let mut scan = self.index_scan(retention::source_prefix(b"s/", name), before)?;
                if let Some(item) = scan.next() {
                    heads.push((item?.0, i));
                }
                scans.push(scan);
            }
            let merged = std::iter::from_fn(|| {
                let (tail, i) = heads.pop()?;
                match scans[i].next() {
                    Some(Ok((next, _))) => heads.push((next, i)),
                    Some(Err(e)) => return Some(Err(e)),
                    None => {}
                }
                Some(Ok((tail, sources[i].to_string())))
            });
            self.collect_page(merged, limit, &accept)
        })
    }

    /// The keys under an index `prefix`, newest first, older than `before`: each key's
    /// last 24 bytes (time and entry key) and its value.
    fn index_scan(
        &self,
        prefix: Vec<u8>,
        before: Option<&Cursor>,
    ) -> Result<impl Iterator<Item = Result<([u8; 24], sled::IVec), StoreError>> + use<>, StoreError>
    {
        self.slow_page_read();
        let db = self.db()?;
        let iter = match before {
            None => db.scan_prefix(&prefix),
            Some(c) => {
                let mut upper = prefix.clone();
                upper.extend_from_slice(&c.0);
                db.range(prefix..upper)
            }
        };
        Ok(iter.rev().filter_map(|item| match item {
            Err(e) => Some(Err(StoreError::from(e))),
            Ok((k, v)) => {
                let tail = k.len().checked_sub(24).map(|at| &k[at..])?;
                let mut t = [0u8; 24];
                t.copy_from_slice(tail);
                Some(Ok((t, v)))
            }
        }))
    }

    /// The entries `items` (index tails with their sources, newest first) point at, up to
    /// `limit` that `accept` takes; `next` is set when more follow.
    fn collect_page<O: AsRef<[u8]>>(
        &self,
        items: impl Iterator<Item = Result<([u8; 24], O), StoreError>>,
        limit: usize,
        accept: &impl Fn(&Entry) -> bool,
    ) -> Result<Page, StoreError> {
        Ok(self
            .collect_page_within(items, limit, accept, usize::MAX)?
            .unwrap_or_default())
    }

    /// [`Store::collect_page`], giving up (`None`) once more than `max_rejected` entries
    /// were read and not accepted.
    fn collect_page_within<O: AsRef<[u8]>>(
        &self,
        items: impl Iterator<Item = Result<([u8; 24], O), StoreError>>,
        limit: usize,
        accept: &impl Fn(&Entry) -> bool,
        max_rejected: usize,
    ) -> Result<Option<Page>, StoreError> {
        let mut entries = Vec::with_capacity(limit.min(1024));
        let mut last: Option<Cursor> = None;
        let mut more = false;
        let mut rejected = 0usize;
        for item in items {
            let (tail, owner) = item?;
            let Ok(owner) = std::str::from_utf8(owner.as_ref()) else {
                tracing::warn!(key = %hex(&tail), "index key without a source; skipped");
                continue;
            };
            let Some(e) = self.indexed_entry(owner, &tail[8..])? else {
                continue;
            };
            if !accept(&e) {
                rejected += 1;
                if rejected > max_rejected {
                    return Ok(None);
                }
                continue;
            }
            if entries.len() >= limit {
                more = true;
                break;
            }
            last = Some(Cursor(tail));
            entries.push(e);
        }
        Ok(Some(Page {
            entries,
            next: if more { last } else { None },
        }))
    }

    /// A page of the whole store's time index, newest first, of the entries `accept` takes;
    /// `None` when more than `max_rejected` entries were read and not taken (the caller then
    /// reads its sources' own indexes instead: see [`Store::page_of_sources`]).
    pub fn page_within(
        &self,
        before: Option<&Cursor>,
        limit: usize,
        accept: impl Fn(&Entry) -> bool,
        max_rejected: usize,
    ) -> Result<Option<Page>, StoreError> {
        self.reading(|| {
            self.collect_page_within(
                self.index_scan(b"t/".to_vec(), before)?,
                limit,
                &accept,
                max_rejected,
            )
        })
    }

    /// The entry an index key points at; a dangling or unreadable one is logged and skipped.
    fn indexed_entry(&self, source: &str, key: &[u8]) -> Result<Option<Entry>, StoreError> {
        let Ok(key) = <[u8; 16]>::try_from(key) else {
            return Ok(None);
        };
        let ekey = entry_key(source, &EntryKey(key));
        self.entries_read
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let Some(v) = self.db()?.get(&ekey)? else {
            tracing::warn!(key = %hex(&key), "index points at a missing entry; skipped");
            return Ok(None);
        };
        match decode::<Entry>(&ekey, &v) {
            Ok(e) => Ok(Some(e)),
            Err(err) => {
                tracing::warn!(%err, "skipped an unreadable entry");
                Ok(None)
            }
        }
    }

    /// Free space on the store's file system, in bytes.
    pub fn free_bytes(&self) -> std::io::Result<u64> {
        free_bytes(&self.path)
    }

    /// Sets how long tombstones live unseen (`[retention] tombstones_for`); polls refresh
    /// them well within that.
    pub fn set_tombstone_ttl(&self, ttl: std::time::Duration) {
        self.tombstone_ttl_ms.store(
            u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX),
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// Sets the free space below which polls store nothing (`[store] min_free_mb`).
    pub fn set_min_free(&self, bytes: u64) {
        self.min_free
            .store(bytes, std::sync::atomic::Ordering::Relaxed);
    }

    /// Refuses to write when the store's file system has less free space than
    /// [`Store::set_min_free`] asks: a store that fills its disk cannot even record why it
    /// stopped, and the rest of the system suffers too.
    pub fn ensure_space(&self) -> Result<(), StoreError> {
        let min = self.min_free.load(std::sync::atomic::Ordering::Relaxed);
        if min == 0 {
            return Ok(());
        }
        let free = self.free_bytes();
        // Space is back: put the reserve back too (it is what lets a store on a full disk
        // be reopened).
        if let Ok(f) = free
            && f >= min.saturating_add(RESERVE_BYTES)
            && !self.path.join(RESERVE_FILE).exists()
        {
            make_reserve(&self.path);
        }
        match free {
            Ok(free) if free < min => Err(StoreError::DiskFull {
                path: self.path.to_path_buf(),
                free: free / (1024 * 1024),
                min: min / (1024 * 1024),
            }),
            // Cannot tell: let the write try (a real ENOSPC is reported as such).
            _ => Ok(()),
        }
    }

    /// A cheap read that proves the store answers (for the watchdog).
    pub fn probe(&self) -> Result<(), StoreError> {
        self.db()?.get(SCHEMA_KEY)?;
        Ok(())
    }

    /// The store's folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes everything to disk.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.writing(|| {
            self.flush_tracked()?;
            Ok(())
        })
    }

    /// The sled handle (an Arc clone).
    fn db(&self) -> Result<sled::Db, StoreError> {
        let slot = self
            .db
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match &*slot {
            Some(db) => Ok(db.clone()),
            None => {
                drop(slot);
                self.reopen()
            }
        }
    }

    /// A read; if it finds sled stopped by a full disk, the store is reopened and the read
    /// made again, so what is stored is still served.
    fn reading<T>(&self, read: impl Fn() -> Result<T, StoreError>) -> Result<T, StoreError> {
        let epoch = self.epoch.load(std::sync::atomic::Ordering::Acquire);
        match read() {
            Err(StoreError::Sled(e)) if is_disk_full(&e) => {
                self.recover_from(epoch);
                read()
            }
            other => other,
        }
    }

    /// A write; one that fails for a full disk reopens the store (see [`Store::recover`])
    /// and is reported as [`StoreError::NoSpace`].
    fn writing<T>(&self, write: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
        let epoch = self.epoch.load(std::sync::atomic::Ordering::Acquire);
        match write() {
            Err(StoreError::Sled(e)) if is_disk_full(&e) => {
                self.recover_from(epoch);
                Err(StoreError::NoSpace {
                    path: self.path.to_path_buf(),
                })
            }
            other => other,
        }
    }

    /// After a write failed for lack of space sled refuses every later call, reads
    /// included. The store is closed, the reserve file released so there is room to open
    /// it, and opened again; sled recovers to its last complete batch, as after a crash.
    /// Writes stay refused by [`Store::ensure_space`] until `min_free` is free again.
    pub fn recover(&self) {
        self.recover_from(self.epoch.load(std::sync::atomic::Ordering::Acquire));
    }

    /// [`Store::recover`], unless another thread already reopened the store since
    /// `epoch` (when the failure was seen).
    fn recover_from(&self, epoch: u64) {
        let mut slot = self
            .db
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.epoch.load(std::sync::atomic::Ordering::Acquire) != epoch {
            return;
        }
        self.epoch.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        if slot.take().is_some() {
            let released = release_reserve(&self.path);
            tracing::error!(
                path = %self.path.display(),
                reserve_released = released,
                "the disk holding the store is full: reopening the store; nothing is stored until space is freed, the feeds are still served"
            );
        }
        match open_db(&self.path, self.cache_bytes) {
            Ok(db) => *slot = Some(db),
            Err(e) => tracing::error!(error = %e, "cannot reopen the store; will try again"),
        }
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::Release);
    }

    /// Opens the store again if it is closed (a reopen after a full disk failed).
    fn reopen(&self) -> Result<sled::Db, StoreError> {
        let mut slot = self
            .db
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(db) = &*slot {
            return Ok(db.clone());
        }
        release_reserve(&self.path);
        let db = open_db(&self.path, self.cache_bytes)?;
        *slot = Some(db.clone());
        Ok(db)
    }

    /// The write lock, for a writer. A process that registered no named-feed indexes
    /// forgets them first (see [`feeds`]): it would not keep them.
    fn lock(&self) -> WriteGuard<'_> {
        let guard = self.lock_unchecked();
        if let Err(error) = self.forget_unregistered_indexes() {
            tracing::warn!(%error, "could not forget the named-feed indexes");
        }
        guard
    }

    fn lock_unchecked(&self) -> WriteGuard<'_> {
        // A panic while holding the lock cannot leave sled half-written (batches are
        // atomic), so a poisoned lock is safe to take over.
        let guard = self
            .write_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.write_since
            .store(now_millis(), std::sync::atomic::Ordering::Release);
        WriteGuard {
            _guard: guard,
            since: &self.write_since,
        }
    }

    /// Flushes, with the flush counted as a write in progress for [`Store::write_stall`].
    fn flush_tracked(&self) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering;
        let started = now_millis();
        let mine = self
            .flush_since
            .compare_exchange(0, started, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        let flushed = self.db().and_then(|db| Ok(db.flush()?));
        if mine {
            self.flush_since.store(0, Ordering::Release);
        }
        flushed.map(|_| ())
    }

    /// How long the write in progress has held the write lock (zero when none does). No
    /// write holds it for more than a chunk of entries, so a long stall means sled is stuck
    /// (it can hang in a flush after a write error); the watchdog stops vouching then.
    pub fn write_stall(&self) -> std::time::Duration {
        let held = |since: u64| match since {
            0 => std::time::Duration::ZERO,
            since => std::time::Duration::from_millis(now_millis().saturating_sub(since)),
        };
        let write = held(self.write_since.load(std::sync::atomic::Ordering::Acquire));
        let flush = held(self.flush_since.load(std::sync::atomic::Ordering::Acquire));
        write.max(flush)
    }
}

/// The write lock held, and when it was taken (cleared on release).
struct WriteGuard<'a> {
    _guard: std::sync::MutexGuard<'a, ()>,
    since: &'a std::sync::atomic::AtomicU64,
}

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        self.since.store(0, std::sync::atomic::Ordering::Release);
    }
}

fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_millis() as u64)
        .max(1)
}

/// `e/{source}\0{key:16}`: a source's entries side by side.
fn entry_key(source: &str, key: &EntryKey) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + source.len() + 1 + 16);
    k.extend_from_slice(b"e/");
    k.extend_from_slice(source.as_bytes());
    k.push(0);
    k.extend_from_slice(&key.0);
    k
}

/// Converts an older store (schema 1 or 2) to schema 3, then drops the marker.
fn convert(db: &sled::Db) -> Result<(), StoreError> {
    migrate_entries(db)?;
    recount_entries(db)?;
    db.remove(CONVERTING_KEY)?;
    db.flush()?;
    Ok(())
}

/// Sets every source's `entry_count` to the entries it has. Retention sums the counts
/// instead of scanning, so a count an older build let drift is corrected once, here.
fn recount_entries(db: &sled::Db) -> Result<(), StoreError> {
    let mut counts: std::collections::HashMap<Vec<u8>, u64> = std::collections::HashMap::new();
    for k in db.scan_prefix(b"e/").keys() {
        let k = k?;
        if let Some(source) = k.len().checked_sub(17).and_then(|end| k.get(2..end)) {
            *counts.entry(source.to_vec()).or_default() += 1;
        }
    }
    let mut batch = sled::Batch::default();
    for item in db.scan_prefix(b"st/") {
        let (k, v) = item?;
        let Ok(mut state) = decode::<SourceState>(&k, &v) else {
            continue;
        };
        let stored = counts.get(&k[3..]).copied().unwrap_or(0);
        if state.entry_count != stored {
            tracing::info!(
                source = %String::from_utf8_lossy(&k[3..]),
                was = state.entry_count,
                now = stored,
                "entry count corrected"
            );
            state.entry_count = stored;
            batch.insert(k, encode(&state));
        }
    }
    db.apply_batch(batch)?;
    Ok(())
}

/// A schema-2 entry key, `e/{key:16}`: no source name is empty, so no schema-3 key is
/// this short.
const OLD_ENTRY_KEY_LEN: usize = 2 + 16;

/// Converts entries stored under schema 1 or 2 (`e/{key}`, and an empty value in the time
/// index) to schema 3 (`e/{source}\0{key}`, the source in the time index). One pass, a
/// batch per [`CHUNK`] entries, so a crash midway leaves every entry under its old key or
/// its new one (never both, never neither); the next open carries on. Entries it cannot
/// place (unreadable, or stored under another key: a corrupt store) stay where they are,
/// logged, and `tributary verify` reports them.
fn migrate_entries(db: &sled::Db) -> Result<(), StoreError> {
    let started = std::time::Instant::now();
    let mut moved = 0usize;
    let mut batch = sled::Batch::default();
    let mut in_batch = 0;
    for item in db.scan_prefix(b"e/") {
        let (k, v) = item?;
        if k.len() != OLD_ENTRY_KEY_LEN {
            continue;
        }
        let e: Entry = match decode::<Entry>(&k, &v) {
            Ok(e) if e.key.0 == k[2..] && !e.source.is_empty() => e,
            Ok(_) => {
                tracing::warn!(key = %hex(&k), "an entry stored under another key was left as it was; `tributary verify` reports it");
                continue;
            }
            Err(err) => {
                tracing::warn!(%err, "an unreadable entry was left as it was; `tributary verify` reports it");
                continue;
            }
        };
        batch.remove(k);
        batch.insert(entry_key(&e.source, &e.key), v);
        insert_indexes(&e, &mut batch);
        moved += 1;
        in_batch += 1;
        if in_batch == CHUNK {
            db.apply_batch(std::mem::take(&mut batch))?;
            in_batch = 0;
            if moved.is_multiple_of(100_000) {
                tracing::info!(moved, "converting the store to schema 3");
            }
        }
    }
    db.apply_batch(batch)?;
    db.flush()?;
    tracing::info!(
        moved,
        secs = started.elapsed().as_secs_f64(),
        "entries keyed by source (schema 3)"
    );
    Ok(())
}

/// A position in the time index: where the next (older) page starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor([u8; 24]);

impl Cursor {
    /// As it appears in a URL.
    pub fn to_param(&self) -> String {
        hex(&self.0)
    }

    /// From a URL parameter; `None` unless it is exactly what [`Cursor::to_param`] makes.
    pub fn from_param(s: &str) -> Option<Cursor> {
        if s.len() != 48 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let mut out = [0u8; 24];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Cursor(out))
    }
}

/// One page of a feed.
#[derive(Debug, Default)]
pub struct Page {
    pub entries: Vec<Entry>,
    /// Where the next (older) page starts, if there is one.
    pub next: Option<Cursor>,
}

fn credit_of(e: &Entry) -> Credit {
    Credit {
        key: e.key,
        source: e.source.clone(),
    }
}

/// `l/{source}\0{article:16}` → the entry key: a source's entries by link.
fn link_key(source: &str, article: &[u8; 16]) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + source.len() + 1 + 16);
    k.extend_from_slice(b"l/");
    k.extend_from_slice(source.as_bytes());
    k.push(0);
    k.extend_from_slice(article);
    k
}

/// `a/{article:16}` → the [`Credit`]: who had an article first.
fn article_key(article: &[u8; 16]) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + 16);
    k.extend_from_slice(b"a/");
    k.extend_from_slice(article);
    k
}

/// Opens sled at `path`, waiting up to half a second for a lock this process is releasing.
fn open_db(path: &Path, cache_bytes: u64) -> Result<sled::Db, StoreError> {
    let open = || {
        sled::Config::new()
            .path(path)
            .cache_capacity(cache_bytes)
            .flush_every_ms(Some(1000))
            .open()
            .map_err(|e| match e {
                sled::Error::Io(io)
                    if io.kind() == std::io::ErrorKind::WouldBlock
                        || io.to_string().contains("lock") =>
                {
                    StoreError::Locked {
                        path: path.to_path_buf(),
                    }
                }
                other => StoreError::Open {
                    path: path.to_path_buf(),
                    error: other.to_string(),
                },
            })
    };
    // sled's background threads release the file lock a moment after the last handle
    // is dropped; a store just closed in this process is worth a short wait. Another
    // process holding it still gets `Locked` within half a second.
    let mut attempt = 0;
    loop {
        match open() {
            Err(StoreError::Locked { .. }) if attempt < 10 => {
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

/// The reserve: a file of real blocks in the store's folder, released when the disk fills
/// up so that sled has room to open and recover.
const RESERVE_FILE: &str = "tributary.reserve";
const RESERVE_BYTES: u64 = 8 * 1024 * 1024;

/// Writes the reserve file if it is missing and there is room for it (twice its size).
fn make_reserve(dir: &Path) {
    let path = dir.join(RESERVE_FILE);
    if path.exists() || free_bytes(dir).map_or(true, |f| f < 2 * RESERVE_BYTES) {
        return;
    }
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut f = std::fs::File::create(&path)?;
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..RESERVE_BYTES / (1 << 20) {
            f.write_all(&chunk)?;
        }
        f.sync_all()
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&path);
        tracing::warn!(error = %e, "cannot write the store's reserve file");
    }
}

/// Deletes the reserve file; whether there was one.
fn release_reserve(dir: &Path) -> bool {
    std::fs::remove_file(dir.join(RESERVE_FILE)).is_ok()
}

/// Whether sled failed for lack of space (it then refuses every later call).
fn is_disk_full(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io)
        if io.kind() == std::io::ErrorKind::StorageFull
            || io.raw_os_error() == Some(libc::ENOSPC)
            || io.raw_os_error() == Some(libc::EDQUOT))
}

/// `x/{source}\0{key:16}`: a pruned entry's tombstone.
fn tomb_key(source: &str, key: &EntryKey) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + source.len() + 1 + 16);
    k.extend_from_slice(b"x/");
    k.extend_from_slice(source.as_bytes());
    k.push(0);
    k.extend_from_slice(&key.0);
    k
}

/// `statvfs(2)`: the space an unprivileged process may still use on `path`'s file system.
fn free_bytes(path: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: statvfs writes into the zeroed struct we own; the path is a valid C string
    // that outlives the call.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    #[allow(clippy::unnecessary_cast)] // the field types differ between platforms
    Ok(stat.f_bavail as u64 * stat.f_frsize as u64)
}

fn state_key(source: &str) -> Vec<u8> {
    let mut k = b"st/".to_vec();
    k.extend_from_slice(source.as_bytes());
    k
}

/// Milliseconds since the epoch, as big-endian bytes that sort in time order (sign bit
/// flipped so dates before 1970 sort first).
fn time_bytes(t: DateTime<Utc>) -> [u8; 8] {
    ((t.timestamp_millis() as u64) ^ (1 << 63)).to_be_bytes()
}

fn time_key(e: &Entry) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + 8 + 16);
    k.extend_from_slice(b"t/");
    k.extend_from_slice(&time_bytes(e.sort_time()));
    k.extend_from_slice(&e.key.0);
    k
}

/// Both index keys of an entry: the time index records its source.
fn insert_indexes(e: &Entry, batch: &mut sled::Batch) {
    batch.insert(time_key(e), e.source.as_bytes());
    batch.insert(source_time_key(e), &[]);
}

fn source_time_key(e: &Entry) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + e.source.len() + 1 + 8 + 16);
    k.extend_from_slice(b"s/");
    k.extend_from_slice(e.source.as_bytes());
    k.push(0);
    k.extend_from_slice(&time_bytes(e.sort_time()));
    k.extend_from_slice(&e.key.0);
    k
}

fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // Our model types serialise infallibly (no maps with non-string keys, no custom impls).
    serde_json::to_vec(value).unwrap_or_default()
}

fn decode<T: serde::de::DeserializeOwned>(key: &[u8], value: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(value).map_err(|e| StoreError::Corrupt {
        key: String::from_utf8_lossy(key).to_string(),
        error: e.to_string(),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::feed::identity::entry_key as make_key;
    use crate::feed::normalise::merge;

    pub(in crate::store) fn entry(guid: &str, minute: u32, title: &str) -> Entry {
        let t = DateTime::parse_from_rfc3339(&format!("2025-01-01T00:{minute:02}:00Z"))
            .expect("static date")
            .with_timezone(&Utc);
        let mut e = Entry {
            key: make_key("s", "guid", guid),
            source: "s".into(),
            guid: Some(guid.into()),
            title: title.into(),
            link: None,
            summary: None,
            content: None,
            authors: vec![],
            categories: vec![],
            enclosures: vec![],
            comments: None,
            thumbnail: None,
            published: Some(t),
            updated: t,
            first_seen: t,
            fingerprint: [0; 16],
            article: None,
            duplicate_of: None,
            also_in: vec![],
            full_text: None,
            full_content: None,
        };
        e.fingerprint = crate::feed::identity::fingerprint(&e);
        e
    }

    #[test]
    fn newest_first_and_no_duplicates() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), 1 << 20).expect("opens");
        let now = Utc::now();
        let polled = vec![entry("a", 1, "A"), entry("b", 3, "B"), entry("c", 2, "C")];
        let c = store
            .apply_poll(
                "s",
                polled.clone(),
                SourceState::default(),
                None,
                now,
                |o, n| merge(o, n, now),
            )
            .expect("applies");
        assert_eq!(c.new, 3);
        let c = store
            .apply_poll("s", polled, SourceState::default(), None, now, |o, n| {
                merge(o, n, now)
            })
            .expect("applies");
        assert_eq!((c.new, c.unchanged), (0, 3));
        let titles: Vec<_> = store
            .page(None, None, 10, |_| true)
            .expect("reads")
            .entries
            .into_iter()
            .map(|e| e.title)
            .collect();
        assert_eq!(titles, ["B", "C", "A"]);
        let newest = store.page(Some("s"), None, 2, |_| true).expect("reads");
        assert_eq!(newest.entries.len(), 2);
        assert!(newest.next.is_some(), "a third entry remains");
    }

    #[test]
    fn pages_walk_back_through_history() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), 1 << 20).expect("opens");
        let now = Utc::now();
        let polled: Vec<Entry> = (0..10)
            .map(|i| entry(&format!("g{i}"), i, &format!("T{i}")))
            .collect();
        store
            .apply_poll("s", polled, SourceState::default(), None, now, |o, n| {
                merge(o, n, now)
            })
            .expect("applies");
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = store
                .page(Some("s"), cursor.as_ref(), 4, |_| true)
                .expect("page");
            seen.extend(page.entries.into_iter().map(|e| e.title));
            match page.next {
                Some(c) => {
                    assert_eq!(Cursor::from_param(&c.to_param()), Some(c));
                    cursor = Some(c);
                }
                None => break,
            }
        }
        let expected: Vec<String> = (0..10).rev().map(|i| format!("T{i}")).collect();
        assert_eq!(seen, expected);
        assert_eq!(Cursor::from_param("zz"), None);
    }

    #[test]
    fn older_schema_is_upgraded_in_place() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let store = Store::open(dir.path(), 1 << 20).expect("opens");
            let db = store.db().expect("open");
            db.insert(SCHEMA_KEY, b"1").expect("writes");
            db.flush().expect("flushes");
        }
        let store = Store::open(dir.path(), 1 << 20).expect("a version-1 store opens");
        let v = store.db().expect("open").get(SCHEMA_KEY).expect("reads");
        assert_eq!(v.as_deref(), Some(&b"4"[..]));
    }

    /// Rewrites a schema-3 store into the schema-2 layout: entries under `e/{key}`, an
    /// empty value in the time index.
    fn downgrade_to_schema_2(store: &Store) {
        let db = store.db().expect("open");
        let mut batch = sled::Batch::default();
        for item in db.scan_prefix(b"e/") {
            let (k, v) = item.expect("reads");
            let e: Entry = decode(&k, &v).expect("an entry");
            batch.remove(k);
            let mut old = b"e/".to_vec();
            old.extend_from_slice(&e.key.0);
            batch.insert(old, v);
            batch.insert(time_key(&e), &[]);
        }
        batch.insert(SCHEMA_KEY, b"2");
        db.apply_batch(batch).expect("writes");
        db.flush().expect("flushes");
    }

    #[test]
    fn schema_2_entries_are_keyed_by_source_at_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let now = Utc::now();
        let for_source = |source: &str| -> Vec<Entry> {
            (0..150)
                .map(|i| {
                    let mut e = entry(&format!("{source}-{i}"), i % 60, &format!("{source} {i}"));
                    e.key = make_key(source, "guid", &format!("g{i}"));
                    e.source = source.into();
                    // Every third article is in both sources: credits and duplicates.
                    e.article = Some([(i % 3 == 0) as u8 * (i as u8); 16]).filter(|_| i % 3 == 0);
                    e
                })
                .collect()
        };
        let poll_both = |store: &Store| -> Vec<PollCounts> {
            ["a", "b"]
                .map(|source| {
                    store
                        .apply_poll(
                            source,
                            for_source(source),
                            SourceState::default(),
                            None,
                            now,
                            |o, n| merge(o, n, now),
                        )
                        .expect("applies")
                })
                .to_vec()
        };
        let (before, counts_before) = {
            let store = Store::open(dir.path(), 1 << 20).expect("opens");
            poll_both(&store);
            let before = store
                .page(None, None, 1000, |_| true)
                .expect("reads")
                .entries;
            downgrade_to_schema_2(&store);
            let counts = store.verify().expect("verifies").problems.len();
            (before, counts)
        };
        assert!(counts_before > 0, "the downgraded layout is not schema 3's");
        let store = Store::open(dir.path(), 1 << 20).expect("a version-2 store opens");
        let v = store.db().expect("open").get(SCHEMA_KEY).expect("reads");
        assert_eq!(v.as_deref(), Some(&b"4"[..]));
        let report = store.verify().expect("verifies");
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        assert_eq!(report.entries, 300);
        let after = store
            .page(None, None, 1000, |_| true)
            .expect("reads")
            .entries;
        assert_eq!(after, before);
        let a = store
            .page(Some("a"), None, 1000, |_| true)
            .expect("reads")
            .entries;
        assert_eq!(a.len(), 150);
        assert!(a.iter().all(|e| e.source == "a"));
        // Nothing is new again: dedup reads the moved entries.
        for c in poll_both(&store) {
            assert_eq!((c.new, c.unchanged), (0, 150));
        }
    }

    #[test]
    fn an_interrupted_conversion_is_finished_and_counts_are_corrected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let now = Utc::now();
        {
            let store = Store::open(dir.path(), 1 << 20).expect("opens");
            let polled: Vec<Entry> = (0..250)
                .map(|i| entry(&format!("g{i}"), i % 60, &format!("T{i}")))
                .collect();
            store
                .apply_poll("s", polled, SourceState::default(), None, now, |o, n| {
                    merge(o, n, now)
                })
                .expect("applies");
            downgrade_to_schema_2(&store);
            // An older build's drifted count, and a conversion cut short: marked, some
            // entries moved, the rest not.
            let db = store.db().expect("open");
            let mut state = store.source_state("s").expect("reads").expect("a state");
            state.entry_count = 999;
            db.insert(state_key("s"), encode(&state)).expect("writes");
            db.insert(CONVERTING_KEY, &[]).expect("writes");
            db.insert(SCHEMA_KEY, b"3").expect("writes");
            let mut moved = 0;
            let mut batch = sled::Batch::default();
            for item in db.scan_prefix(b"e/").take(100) {
                let (k, v) = item.expect("reads");
                let e: Entry = decode(&k, &v).expect("an entry");
                batch.remove(k);
                batch.insert(entry_key("s", &e.key), v);
                insert_indexes(&e, &mut batch);
                moved += 1;
            }
            db.apply_batch(batch).expect("writes");
            db.flush().expect("flushes");
            assert_eq!(moved, 100);
        }
        let store = Store::open(dir.path(), 1 << 20).expect("the conversion carries on");
        let db = store.db().expect("open");
        assert!(!db.contains_key(CONVERTING_KEY).expect("reads"));
        let report = store.verify().expect("verifies");
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        assert_eq!(report.entries, 250);
        let state = store.source_state("s").expect("reads").expect("a state");
        assert_eq!(state.entry_count, 250);
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let store = Store::open(dir.path(), 1 << 20).expect("opens");
            store
                .db()
                .expect("open")
                .insert(SCHEMA_KEY, b"999")
                .expect("writes");
            store.flush().expect("flushes");
        }
        let err = Store::open(dir.path(), 1 << 20).err().expect("refused");
        assert!(err.to_string().contains("schema version 999"), "{err}");
    }
}
