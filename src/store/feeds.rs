//! Indexes of named feeds whose patterns pick entries (`[[feed]]` with `include` or
//! `exclude`), so such a feed is read from its own index, newest first, like `/feed.atom`:
//! an uncached render costs the page, whatever the patterns match (nothing included).
//!
//! # Layout (built in [`super::keys`])
//! - `fm/{feed:8}` → `{instance:8}{ready:1}`: the index of a feed definition (its sources
//!   and patterns, hashed by the caller into `feed`), kept under a random `instance`.
//! - `f/{instance:8}{time:8}{key:16}` → the entry's source: the entries the feed admits,
//!   ordered like the time index, so paging uses the same cursors.
//! - `fg/{instance:8}` → empty: an instance no definition uses any more, whose keys are
//!   deleted in the background.
//!
//! # How the index stays true
//! - Every write that adds, moves or removes an entry (a poll, retention) updates the keys
//!   of every *registered* index under the write lock, with the predicate the caller gave
//!   ([`FeedIndex::admits`]). A process registers the config's indexes
//!   ([`Store::register_feed_indexes`]) before it writes.
//! - A definition without a ready index gets a new instance: its keys are written by the
//!   writes above from the moment it is registered, and a background build
//!   ([`Store::build_feed_indexes`]) adds the entries stored before, in chunks under the
//!   write lock. Only then is it marked ready and read; until then the feed is read by
//!   merging its sources' indexes and filtering.
//! - A process that writes without registering (a tool that opens the store without a
//!   config) first forgets every index: the next daemon builds them again.
//! - A definition that leaves the config is forgotten at once (its marker removed, its
//!   instance queued as garbage), so an index is never trusted after writes it missed.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::keys::{
    self, feed_garbage_key, feed_index_key, feed_index_prefix, feed_marker_instance,
    feed_marker_key, feed_marker_value, hex, time_bytes,
};
use super::{Store, StoreError};
use crate::model::{Entry, FeedIndex};

/// Keys written or deleted per batch while building or collecting garbage.
const CHUNK: usize = 500;

/// A registered index: its definition, the instance its keys live under, and whether it
/// holds every entry (and may be read).
pub(super) struct Registered {
    def: FeedIndex,
    instance: [u8; 8],
    ready: AtomicBool,
}

/// What the store knows of feed indexes in this process.
#[derive(Default)]
pub(super) struct Registry {
    /// `None` until this process registers (or forgets) its indexes.
    indexes: std::sync::RwLock<Option<Arc<Vec<Arc<Registered>>>>>,
    /// One build or garbage collection at a time.
    jobs: std::sync::Mutex<()>,
    /// The last ticket issued by [`Store::feed_index_ticket`].
    issued: std::sync::atomic::AtomicU64,
    /// The ticket of the registration in force: an older one arriving late is ignored.
    applied: std::sync::Mutex<u64>,
}

/// Removes every marker whose definition `keep` does not keep (and any malformed one),
/// queueing its instance as garbage.
fn retire_markers(
    db: &sled::Db,
    batch: &mut sled::Batch,
    keep: impl Fn(&[u8; 8]) -> bool,
) -> Result<(), StoreError> {
    for item in db.scan_prefix(keys::FEED_MARKER) {
        let (k, v) = item?;
        let id = keys::feed_marker_id(&k);
        if id.as_ref().is_some_and(&keep) {
            continue;
        }
        if let Some(old) = feed_marker_instance(&v) {
            batch.insert(feed_garbage_key(&old), &[]);
        }
        batch.remove(k);
    }
    Ok(())
}

impl Store {
    /// Makes `indexes` the named-feed indexes this process maintains: a definition whose
    /// index is ready keeps it; a new or changed one gets a new, empty instance (built by
    /// [`Store::build_feed_indexes`]); one no longer given is forgotten. Quick: no entry is
    /// read. Call it before the first write, and again after each config change.
    pub fn register_feed_indexes(&self, indexes: Vec<FeedIndex>) -> Result<(), StoreError> {
        let ticket = self.feed_index_ticket();
        self.register_feed_indexes_as(ticket, indexes)
    }

    /// A ticket for a registration to come: registrations take effect in the order their
    /// tickets were issued (a reload's registration runs on a blocking thread, and two quick
    /// reloads must not end with the older config's indexes).
    pub fn feed_index_ticket(&self) -> u64 {
        self.feeds.issued.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// [`Store::register_feed_indexes`] under a ticket: ignored when a later ticket was
    /// registered already.
    pub fn register_feed_indexes_as(
        &self,
        ticket: u64,
        indexes: Vec<FeedIndex>,
    ) -> Result<(), StoreError> {
        let mut applied = self
            .feeds
            .applied
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *applied > ticket {
            return Ok(());
        }
        *applied = ticket;
        self.writing(|| {
            let _guard = self.lock_unchecked();
            let db = self.db()?;
            let previous = self.feed_registry();
            let mut batch = sled::Batch::default();
            let mut wanted: HashSet<[u8; 8]> = HashSet::new();
            let mut registered = Vec::new();
            for def in indexes {
                if !wanted.insert(def.id) {
                    continue;
                }
                // A marker is trusted when this process kept the index (it was registered
                // here), or at the first registration (the previous process kept it).
                let kept_here = previous
                    .as_ref()
                    .is_none_or(|p| p.iter().any(|r| r.def.id == def.id));
                let marker = db.get(feed_marker_key(&def.id))?;
                let (instance, ready) = match marker.as_deref() {
                    Some(v) if v.len() == 9 && kept_here => {
                        (feed_marker_instance(v).unwrap_or_default(), v[8] == 1)
                    }
                    other => {
                        if let Some(old) = other.and_then(feed_marker_instance) {
                            batch.insert(feed_garbage_key(&old), &[]);
                        }
                        let instance = fastrand::u64(..).to_be_bytes();
                        batch.insert(
                            feed_marker_key(&def.id),
                            feed_marker_value(&instance, false),
                        );
                        (instance, false)
                    }
                };
                registered.push(Arc::new(Registered {
                    def,
                    instance,
                    ready: AtomicBool::new(ready),
                }));
            }
            // Markers of definitions no longer wanted (or left by another config).
            retire_markers(&db, &mut batch, |id| wanted.contains(id))?;
            db.apply_batch(batch)?;
            self.set_feed_registry(registered);
            Ok(())
        })
    }

    fn set_feed_registry(&self, registered: Vec<Arc<Registered>>) {
        *self
            .feeds
            .indexes
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Arc::new(registered));
    }

    /// Builds every registered index that is not ready, then deletes garbage instances.
    /// Long (it reads the entries of the feeds' sources), in chunks under the write lock, so
    /// polls go on meanwhile; `stop` ends it early (the rest is done next time).
    pub fn build_feed_indexes(&self, stop: &dyn Fn() -> bool) -> Result<(), StoreError> {
        let _job = self
            .feeds
            .jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let pending: Vec<Arc<Registered>> = self
            .feed_registry()
            .map(|r| {
                r.iter()
                    .filter(|r| !r.ready.load(Ordering::Acquire))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        for index in pending {
            if stop() {
                return Ok(());
            }
            self.writing(|| self.build_one(&index, stop))?;
        }
        self.writing(|| self.collect_feed_garbage(stop))
    }

    fn build_one(
        &self,
        index: &Arc<Registered>,
        stop: &dyn Fn() -> bool,
    ) -> Result<(), StoreError> {
        let began = std::time::Instant::now();
        let mut sources: Vec<&String> = index.def.sources.iter().collect();
        sources.sort();
        let mut indexed = 0usize;
        for source in sources {
            let prefix = keys::source_prefix(keys::DATED, source);
            let mut after: Option<Vec<u8>> = None;
            loop {
                if stop() || !self.is_registered(index) {
                    return Ok(());
                }
                let _guard = self.lock();
                let db = self.db()?;
                let range = match &after {
                    None => db.scan_prefix(&prefix),
                    Some(last) => {
                        let mut start = last.clone();
                        start.push(0);
                        let mut end = prefix.clone();
                        end.push(0xff);
                        db.range(start..end)
                    }
                };
                let mut batch = sled::Batch::default();
                let mut seen = 0;
                for item in range.take(CHUNK) {
                    let (k, v) = item?;
                    seen += 1;
                    after = Some(k.to_vec());
                    let e = match keys::unpack(source, &k, &v) {
                        Ok(e) => e,
                        Err(err) => {
                            tracing::warn!(%err, "skipped an unreadable entry");
                            continue;
                        }
                    };
                    if (index.def.admits)(&e) {
                        batch.insert(feed_index_key(&index.instance, &e), e.source.as_bytes());
                        indexed += 1;
                    }
                }
                db.apply_batch(batch)?;
                if seen < CHUNK {
                    break;
                }
            }
        }
        let _guard = self.lock();
        if !self.is_registered(index) {
            return Ok(());
        }
        self.db()?.insert(
            feed_marker_key(&index.def.id),
            feed_marker_value(&index.instance, true),
        )?;
        index.ready.store(true, Ordering::Release);
        self.bump_generation();
        tracing::info!(
            feed = %hex(&index.def.id),
            entries = indexed,
            took_ms = began.elapsed().as_millis() as u64,
            "named feed index built"
        );
        Ok(())
    }

    /// Deletes the keys of instances no definition uses.
    fn collect_feed_garbage(&self, stop: &dyn Fn() -> bool) -> Result<(), StoreError> {
        let garbage: Vec<[u8; 8]> = self
            .db()?
            .scan_prefix(keys::FEED_GARBAGE)
            .keys()
            .filter_map(|k| keys::feed_garbage_instance(&k.ok()?))
            .collect();
        for instance in garbage {
            let prefix = feed_index_prefix(&instance);
            loop {
                if stop() {
                    return Ok(());
                }
                let _guard = self.lock();
                let db = self.db()?;
                let mut batch = sled::Batch::default();
                let mut n = 0;
                for k in db.scan_prefix(&prefix).keys().take(CHUNK) {
                    batch.remove(k?);
                    n += 1;
                }
                if n == 0 {
                    db.remove(feed_garbage_key(&instance))?;
                    break;
                }
                db.apply_batch(batch)?;
            }
        }
        Ok(())
    }

    fn is_registered(&self, index: &Arc<Registered>) -> bool {
        self.feed_registry()
            .is_some_and(|r| r.iter().any(|x| Arc::ptr_eq(x, index)))
    }

    pub(super) fn feed_registry(&self) -> Option<Arc<Vec<Arc<Registered>>>> {
        self.feeds
            .indexes
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The instance to read a feed from, when its index is registered and ready.
    pub(super) fn ready_instance(&self, id: &[u8; 8]) -> Option<[u8; 8]> {
        self.feed_registry()?
            .iter()
            .find(|r| &r.def.id == id && r.ready.load(Ordering::Acquire))
            .map(|r| r.instance)
    }

    /// Whether the named feed `id` is read from its own index (else by a filtered merge).
    pub fn feed_index_ready(&self, id: &[u8; 8]) -> bool {
        self.ready_instance(id).is_some()
    }

    /// Called under the write lock by a writer: a process that never registered indexes
    /// forgets every index on its first write, since it will not keep them.
    pub(super) fn forget_unregistered_indexes(&self) -> Result<(), StoreError> {
        if self.feed_registry().is_some() {
            return Ok(());
        }
        let db = self.db()?;
        let mut batch = sled::Batch::default();
        retire_markers(&db, &mut batch, |_| false)?;
        db.apply_batch(batch)?;
        self.set_feed_registry(Vec::new());
        Ok(())
    }

    /// Index keys for a new (or moved) entry: one in each registered index that takes it.
    pub(super) fn index_in_feeds(&self, e: &Entry, batch: &mut sled::Batch) {
        let Some(registry) = self.feed_registry() else {
            return;
        };
        for r in registry.iter() {
            if r.def.sources.contains(&e.source) && (r.def.admits)(e) {
                batch.insert(feed_index_key(&r.instance, e), e.source.as_bytes());
            }
        }
    }

    /// Removes an entry's keys from every registered index (a removal of a key that is not
    /// there costs nothing).
    pub(super) fn unindex_in_feeds(&self, e: &Entry, batch: &mut sled::Batch) {
        let Some(registry) = self.feed_registry() else {
            return;
        };
        for r in registry.iter() {
            if r.def.sources.contains(&e.source) {
                batch.remove(feed_index_key(&r.instance, e));
            }
        }
    }

    /// Checks every key of every ready index: its entry exists, sits at that time, and the
    /// feed admits it. Returns the problems found.
    pub(super) fn verify_feed_indexes(&self) -> Result<Vec<String>, StoreError> {
        let mut problems = Vec::new();
        let Some(registry) = self.feed_registry() else {
            return Ok(problems);
        };
        for r in registry.iter().filter(|r| r.ready.load(Ordering::Acquire)) {
            for item in self.db()?.scan_prefix(feed_index_prefix(&r.instance)) {
                let (k, v) = item?;
                let Some(tail) = keys::index_tail(&k) else {
                    problems.push(format!("feed index key {} is too short", hex(&k)));
                    continue;
                };
                let Ok(source) = std::str::from_utf8(&v) else {
                    problems.push(format!("feed index key {} names no source", hex(&k)));
                    continue;
                };
                match self.indexed_entry(source, &tail)? {
                    Some(e) if time_bytes(e.sort_time()) == tail[..8] && (r.def.admits)(&e) => {}
                    _ => problems.push(format!(
                        "feed index key {} points at no matching entry",
                        hex(&k)
                    )),
                }
            }
        }
        Ok(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::{entry, poll_as, temp_store, walk_pages};
    use chrono::Utc;

    /// A feed over source "s" taking titles that contain `word`.
    fn feed(word: &'static str) -> FeedIndex {
        FeedIndex {
            id: *blake3::hash(word.as_bytes())
                .as_bytes()
                .first_chunk()
                .expect("8"),
            sources: ["s".to_string()].into(),
            admits: Arc::new(move |e: &Entry| e.title.contains(word)),
        }
    }

    fn poll(store: &Store, polled: Vec<Entry>) {
        let now = Utc::now();
        poll_as(store, "s", polled, now);
    }

    fn titles(store: &Store, f: &FeedIndex) -> Vec<String> {
        let page = store
            .page_of_sources(&["s"], Some(f.id), None, 100, |_| true)
            .expect("reads");
        page.entries.into_iter().map(|e| e.title).collect()
    }

    fn index_keys(store: &Store) -> usize {
        store.db().expect("db").scan_prefix(b"f/").count()
    }

    #[test]
    fn a_feed_index_is_built_then_kept_by_polls_and_retention() {
        let (_dir, store) = temp_store();
        let rust = feed("rust");
        store
            .register_feed_indexes(vec![rust.clone()])
            .expect("registers");
        // Stored before the build (and during it: writes keep a registered index).
        poll(
            &store,
            vec![
                entry("a", 1, "rust one"),
                entry("b", 2, "go two"),
                entry("c", 3, "rust three"),
            ],
        );
        assert!(!store.feed_index_ready(&rust.id));
        store.build_feed_indexes(&|| false).expect("builds");
        assert!(store.feed_index_ready(&rust.id));
        assert_eq!(titles(&store, &rust), ["rust three", "rust one"]);
        assert_eq!(index_keys(&store), 2, "only what the feed takes is indexed");

        // A new entry that matches, and an update that stops another matching.
        poll(
            &store,
            vec![
                entry("a", 1, "now go"),
                entry("b", 2, "go two"),
                entry("c", 3, "rust three"),
                entry("d", 4, "rust four"),
            ],
        );
        assert_eq!(titles(&store, &rust), ["rust four", "rust three"]);
        assert!(store.verify().expect("verifies").problems.is_empty());

        // Retention removes index keys with their entries.
        let now = Utc::now();
        let plan = crate::store::PrunePlan {
            sources: vec![(
                "s".into(),
                crate::store::Limits {
                    keep: 1,
                    keep_for: None,
                    keep_min: 0,
                },
            )],
            keep_total: 1_000_000,
            removed_after: std::time::Duration::from_secs(3600),
            tombstones_for: std::time::Duration::from_secs(3600),
            now,
            dry_run: false,
            stop: None,
            confirmed: true,
        };
        store.prune(&plan).expect("prunes");
        assert_eq!(titles(&store, &rust), ["rust four"]);
        assert_eq!(index_keys(&store), 1);
        assert!(store.verify().expect("verifies").problems.is_empty());
    }

    #[test]
    fn a_changed_feed_gets_a_new_index_and_the_old_one_is_collected() {
        let (_dir, store) = temp_store();
        let (rust, go) = (feed("rust"), feed("go"));
        store
            .register_feed_indexes(vec![rust.clone()])
            .expect("registers");
        poll(&store, vec![entry("a", 1, "rust"), entry("b", 2, "go")]);
        store.build_feed_indexes(&|| false).expect("builds");
        assert_eq!(index_keys(&store), 1);

        store
            .register_feed_indexes(vec![go.clone()])
            .expect("registers");
        assert!(!store.feed_index_ready(&rust.id));
        store.build_feed_indexes(&|| false).expect("builds");
        assert_eq!(titles(&store, &go), ["go"]);
        assert_eq!(index_keys(&store), 1, "the old index's keys are gone");

        // Back again: built anew (the old keys could have missed writes).
        store
            .register_feed_indexes(vec![rust.clone()])
            .expect("registers");
        assert!(!store.feed_index_ready(&rust.id));
        // Until it is built, the feed is read by merging and filtering.
        let page = store
            .page_of_sources(&["s"], Some(rust.id), None, 10, |e| (rust.admits)(e))
            .expect("reads");
        assert_eq!(page.entries.len(), 1);
        store.build_feed_indexes(&|| false).expect("builds");
        assert_eq!(titles(&store, &rust), ["rust"]);
    }

    #[test]
    fn a_ready_index_survives_a_restart_but_not_a_writer_that_does_not_keep_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rust = feed("rust");
        {
            let store = Store::open(dir.path(), 1 << 20).expect("opens");
            store
                .register_feed_indexes(vec![rust.clone()])
                .expect("registers");
            poll(&store, vec![entry("a", 1, "rust")]);
            store.build_feed_indexes(&|| false).expect("builds");
        }
        {
            let store = Store::open(dir.path(), 1 << 20).expect("opens");
            store
                .register_feed_indexes(vec![rust.clone()])
                .expect("registers");
            assert!(store.feed_index_ready(&rust.id), "kept across a restart");
        }
        {
            // A writer that registers nothing (a tool without the config).
            let store = Store::open(dir.path(), 1 << 20).expect("opens");
            poll(&store, vec![entry("a", 1, "rust"), entry("b", 2, "rust b")]);
        }
        let store = Store::open(dir.path(), 1 << 20).expect("opens");
        store
            .register_feed_indexes(vec![rust.clone()])
            .expect("registers");
        assert!(
            !store.feed_index_ready(&rust.id),
            "rebuilt after an unkept write"
        );
        store.build_feed_indexes(&|| false).expect("builds");
        assert_eq!(titles(&store, &rust), ["rust b", "rust"]);
    }

    #[test]
    fn merging_sources_pages_newest_first_across_sources() {
        let (_dir, store) = temp_store();
        let now = Utc::now();
        for (source, minutes) in [("a", [1, 4, 5]), ("b", [2, 3, 6]), ("c", [7, 8, 9])] {
            let polled = minutes
                .iter()
                .map(|m| {
                    let mut e = entry(&format!("{source}{m}"), *m, &format!("{source}{m}"));
                    e.source = source.into();
                    e.key = crate::feed::identity::entry_key(source, "guid", &format!("{m}"));
                    e
                })
                .collect();
            poll_as(&store, source, polled, now);
        }
        let seen = walk_pages(|cursor| {
            store
                .page_of_sources(&["a", "b", "empty"], None, cursor, 2, |_| true)
                .expect("reads")
        });
        assert_eq!(seen, ["b6", "a5", "a4", "b3", "b2", "a1"]);
    }
}
