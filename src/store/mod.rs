//! The store: the only module that touches sled. Everything else sees [`Store`]'s own API, so
//! the engine can be swapped. This file holds the handle (opening, the write lock, flushes,
//! the generation and counters); the rest is one idea per file:
//!
//! - `keys`: the key layout, every prefix and key, as a table;
//! - `schema`: the layout version, upgrades and conversions at open;
//! - `apply`: applying a poll (and a poll's smaller writes);
//! - `read`: source states, entries, pages and cursors;
//! - `feeds`: the named-feed indexes;
//! - `retention`: what the store forgets, and the tombstones;
//! - `verify`: checking the layout's invariants;
//! - `space`: free space, the reserve file, recovering from a full disk;
//! - `face`: the async face ([`Store::call`]);
//! - `search`: the full-text index beside the store, and its journal.
//!
//! One poll's writes go in one `apply_batch`, which sled applies atomically, followed by a
//! flush: what a poll reports as stored is on disk. Writers hold a mutex across read and
//! batch, so two writers cannot interleave a read-modify-write.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

mod apply;
mod codec;
mod face;
mod feeds;
mod hub;
mod keys;
mod read;
mod retention;
mod schema;
pub mod search;
mod shared;
mod space;
mod verify;
mod websub;

pub use crate::model::FeedIndex;
pub use hub::HubSubscription;
pub use read::{Cursor, Page};
pub use retention::{HeldPass, Limits, PrunePlan, PruneReport};
pub use schema::SCHEMA_VERSION;
pub use verify::VerifyReport;

/// Entries per sled batch (see [`Store::apply_poll`]).
const CHUNK: usize = 100;

/// Writes (or entries stored) since the open after which a clean stop checkpoints the
/// store ([`Store::checkpoint`]). Below it the next open's replay takes milliseconds.
pub const CHECKPOINT_AFTER: u64 = 1_000;

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
    Open {
        path: PathBuf,
        #[source]
        error: OpenError,
    },
    #[error(
        "the store at {path} has schema version {found}, newer than this tributary understands ({SCHEMA_VERSION}); upgrade tributary"
    )]
    NewerSchema { path: PathBuf, found: String },
    #[error("store error: {0}")]
    Sled(#[from] sled::Error),
    #[error("store record {key} is unreadable: {error}")]
    Corrupt {
        key: String,
        #[source]
        error: serde_json::Error,
    },
    #[error("store record {key} is unreadable: {error}")]
    Damaged {
        key: String,
        #[source]
        error: codec::PackError,
    },
    #[error(
        "the disk holding the store at {path} is full ({free} MB free, [store] min_free_mb is {min} MB): nothing is stored until space is freed; the feeds are still served"
    )]
    DiskFull { path: PathBuf, free: u64, min: u64 },
    #[error(
        "the disk holding the store at {path} is full (no space left on device): this poll was not stored; the store was reopened and the feeds are still served; nothing is stored until [store] min_free_mb is free again"
    )]
    NoSpace { path: PathBuf },
    #[error(
        "the store at {path} stopped when its disk filled up: it is reopened within a second once there is room again"
    )]
    Stopped { path: PathBuf },
    #[error("a store call stopped unfinished: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("a store call on its own thread stopped unfinished: {0}")]
    Apart(String),
}

/// Why the store could not be opened (shown as the cause itself).
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Its folder could not be made.
    #[error(transparent)]
    Folder(std::io::Error),
    /// sled refused it.
    #[error(transparent)]
    Sled(sled::Error),
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
    /// The last look at the free space ([`Store::ensure_space`]).
    space_seen: Arc<space::SpaceSeen>,
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
    /// Writes, plus entries stored, since the store was opened: how much of sled's log the
    /// next open would read again ([`Store::checkpoint`]).
    written: Arc<std::sync::atomic::AtomicU64>,
    /// The full-text index beside the store (see [`search`]).
    search: Arc<search::Searching>,
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
                error: OpenError::Folder(e),
            });
        }
        let db = match open_db(path, cache_bytes) {
            // A disk so full that sled cannot even open: the reserve makes room.
            Err(StoreError::Open { .. }) if space::release_reserve(path) => {
                open_db(path, cache_bytes)?
            }
            other => other?,
        };
        schema::check(&db, path)?;
        space::make_reserve(path);
        release_freed_memory();
        Ok(Store {
            db: Arc::new(std::sync::RwLock::new(Some(db))),
            cache_bytes,
            path: Arc::new(path.to_path_buf()),
            min_free: Arc::default(),
            space_seen: Arc::default(),
            tombstone_ttl_ms: Arc::new(std::sync::atomic::AtomicU64::new(90 * 24 * 3600 * 1000)),
            epoch: Arc::default(),
            generation: Arc::default(),
            write_lock: Arc::new(Mutex::new(())),
            write_since: Arc::default(),
            flush_since: Arc::default(),
            feeds: Arc::default(),
            entries_read: Arc::default(),
            written: Arc::default(),
            search: Arc::default(),
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

    /// Counts `n` more units of writing for [`Store::checkpoint`].
    fn wrote(&self, n: u64) {
        self.written
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }

    /// At a clean stop, after the final flush: closes and reopens sled when this process
    /// wrote at least [`CHECKPOINT_AFTER`] times (or stored as many entries), and reports
    /// whether it did. sled 0.34 writes its page-table snapshot only while opening, and an
    /// open reads again all the log written since the last snapshot: a million entries
    /// stored since, about 0.7 s. The reopen here writes that snapshot at the stop, where
    /// the time is not waited for, so the next start reads no log. (PostgreSQL's shutdown
    /// checkpoint does the same for the same reason.) A stop without it (a crash, a kill)
    /// costs the next start the replay, as before: nothing depends on the checkpoint.
    ///
    /// Every other handle must be dropped (sled holds a file lock): the daemon calls it
    /// once its tasks are done. If the reopen fails the store is left closed, as after a
    /// failed reopening on a full disk, and the error returned.
    pub fn checkpoint(&self) -> Result<bool, StoreError> {
        use std::sync::atomic::Ordering;
        if self.written.load(Ordering::Relaxed) < CHECKPOINT_AFTER {
            return Ok(false);
        }
        let _guard = self.lock_unchecked();
        let mut slot = self
            .db
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(db) = slot.take() else {
            return Ok(false);
        };
        db.flush()?;
        drop(db);
        let db = open_db(&self.path, self.cache_bytes)?;
        *slot = Some(db);
        self.written.store(0, Ordering::Relaxed);
        Ok(true)
    }

    /// The sled handle (an Arc clone). While the store is closed (a reopening after a full
    /// disk failed), [`StoreError::Stopped`]: only a write opens it again
    /// ([`Store::writing`]).
    fn db(&self) -> Result<sled::Db, StoreError> {
        let slot = self
            .db
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match &*slot {
            Some(db) => Ok(db.clone()),
            None => Err(StoreError::Stopped {
                path: self.path.to_path_buf(),
            }),
        }
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

/// Milliseconds on a clock that never steps back, from 1 (0 means "not held"): for how long
/// a write or flush has held on ([`Store::write_stall`]) and how old a look at the free
/// space is. A wall clock set back an hour would make both wrong for that hour.
fn now_millis() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let start = START.get_or_init(std::time::Instant::now);
    u64::try_from(start.elapsed().as_millis())
        .unwrap_or(u64::MAX)
        .saturating_add(1)
}

/// Gives the heap pages freed so far back to the system. Opening sled reads its page-table
/// snapshot into tens of megabytes freed at once, among the small allocations that stay;
/// glibc keeps such holes in its heap (and counts them in the resident set) until asked.
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns whole free pages of the heap to the kernel; it
    // touches no allocated memory.
    unsafe {
        libc::malloc_trim(0);
    }
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
                    error: OpenError::Sled(other),
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

#[cfg(test)]
pub(crate) mod tests {
    use super::{Cursor, Page, Store};
    use crate::feed::identity::entry_key as make_key;
    use crate::feed::normalise::merge;
    use crate::model::{Entry, PollCounts, SourceState};
    use chrono::{DateTime, Utc};

    /// A new store in a new temporary folder (which must outlive it).
    pub(in crate::store) fn temp_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), 1 << 20).expect("opens");
        (dir, store)
    }

    /// Stores one poll of `source` as a poll does: no earlier state, no cap, merged at
    /// `now`.
    pub(in crate::store) fn poll_as(
        store: &Store,
        source: &str,
        polled: Vec<Entry>,
        now: DateTime<Utc>,
    ) -> PollCounts {
        store
            .apply_poll(
                source,
                polled,
                SourceState::default(),
                false,
                None,
                now,
                |o, n| merge(o, n, now),
            )
            .expect("applies")
            .0
    }

    /// The titles on every page `page` gives, newest first, following each page's `next`
    /// (which must survive the trip through a URL).
    pub(in crate::store) fn walk_pages(page: impl Fn(Option<&Cursor>) -> Page) -> Vec<String> {
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = page(cursor.as_ref());
            seen.extend(page.entries.into_iter().map(|e| e.title));
            match page.next {
                Some(c) => {
                    assert_eq!(Cursor::from_param(&c.to_param()), Some(c));
                    cursor = Some(c);
                }
                None => return seen,
            }
        }
    }

    /// The name of sled's newest page-table snapshot in `dir` (`snap.{lsn:016X}`), or ""
    /// when it wrote none yet (a new store has none).
    fn snapshot(dir: &std::path::Path) -> String {
        std::fs::read_dir(dir)
            .expect("reads the store's folder")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with("snap.") && !n.ends_with(".generating"))
            .max()
            .unwrap_or_default()
    }

    #[test]
    fn a_checkpoint_writes_sleds_snapshot_once_enough_was_written_and_loses_nothing() {
        let (dir, store) = temp_store();
        let now = Utc::now();
        let at_open = snapshot(dir.path());
        poll_as(&store, "s", vec![entry("first", 1, "First")], now);
        assert!(
            !store.checkpoint().expect("checks"),
            "a little writing: no checkpoint"
        );
        assert_eq!(snapshot(dir.path()), at_open);

        let many = (0..super::CHECKPOINT_AFTER)
            .map(|i| entry(&format!("g{i}"), (i % 60) as u32, &format!("Entry {i}")))
            .collect();
        poll_as(&store, "s", many, now);
        assert!(store.checkpoint().expect("checkpoints"));
        let after = snapshot(dir.path());
        assert!(after > at_open, "a newer snapshot: {after} after {at_open}");
        // The handle works on, and counts from nothing again.
        let stored = super::CHECKPOINT_AFTER + 1;
        let state = |s: &Store| s.source_state("s").expect("reads").expect("a state");
        assert_eq!(state(&store).entry_count, stored);
        assert_eq!(
            poll_as(&store, "s", vec![entry("late", 2, "Late")], now).new,
            1
        );
        assert!(!store.checkpoint().expect("checks"));

        drop(store);
        let store = Store::open(dir.path(), 1 << 20).expect("opens again");
        assert_eq!(state(&store).entry_count, stored + 1);
        let titles = walk_pages(|c| store.page(Some("s"), c, 500, |_| true).expect("a page"));
        assert_eq!(titles.len() as u64, stored + 1);
    }

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
}
