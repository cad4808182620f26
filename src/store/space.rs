//! Disk space: the free space below which nothing is written (`[store] min_free_mb`), the
//! reserve file that lets a store on a full disk be reopened, telling a full disk from
//! other sled errors, and recovering from one (closing and reopening sled).

use std::path::Path;

use super::{Store, StoreError, keys, open_db};

impl Store {
    /// Free space on the store's file system, in bytes. Blocking (`statvfs`): async code
    /// calls it through [`Store::call`].
    pub fn free_bytes(&self) -> std::io::Result<u64> {
        free_bytes(&self.path)
    }

    /// Sets the free space below which polls store nothing (`[store] min_free_mb`).
    pub fn set_min_free(&self, bytes: u64) {
        self.min_free
            .store(bytes, std::sync::atomic::Ordering::Relaxed);
    }

    /// Refuses to write when the store's file system has less free space than
    /// [`Store::set_min_free`] asks: a store that fills its disk cannot even record why it
    /// stopped, and the rest of the system suffers too.
    ///
    /// Blocking (`statvfs`, and it may write the reserve file): the store's writes call it
    /// on the thread they run on; async code calls it through [`Store::call`].
    pub fn ensure_space(&self) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering;
        let min = self.min_free.load(Ordering::Relaxed);
        if min == 0 {
            return Ok(());
        }
        // Plenty of room at a look under a second ago (and the reserve in place): no
        // second look. Polls call this thousands of times a cycle; no second of writes
        // comes near the margin, and a disk that fills anyway is met by the write itself.
        let now = super::now_millis();
        if self.space_seen.free.load(Ordering::Acquire) >= min.saturating_add(ROOM_MARGIN)
            && now.saturating_sub(self.space_seen.at.load(Ordering::Acquire)) < ROOM_FOR_MS
        {
            return Ok(());
        }
        // A recovery (which releases the reserve) during this look voids it.
        let epoch = self.epoch.load(Ordering::Acquire);
        let free = self.free_bytes();
        // Space is back: put the reserve back too (it is what lets a store on a full disk
        // be reopened).
        let mut reserve = self.path.join(RESERVE_FILE).exists();
        if let Ok(f) = free
            && f >= min.saturating_add(RESERVE_BYTES)
            && !reserve
        {
            make_reserve(&self.path);
            reserve = self.path.join(RESERVE_FILE).exists();
        }
        let seen = match free {
            Ok(f) if reserve && f >= min => f,
            _ => 0,
        };
        self.space_seen.free.store(seen, Ordering::Release);
        self.space_seen.at.store(now, Ordering::Release);
        if self.epoch.load(Ordering::Acquire) != epoch {
            self.forget_space_look();
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

    /// A read. One that finds sled stopped by a full disk does not reopen the store:
    /// reopening releases the reserve and replaces the handle under every other caller, and
    /// is for writes ([`Store::writing`]), which polls make every interval. If a write
    /// reopened the store while this read ran, the read is made again on the new handle;
    /// otherwise it fails with [`StoreError::Stopped`] (rendered feeds stay cached).
    pub(super) fn reading<T>(
        &self,
        read: impl Fn() -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let epoch = self.epoch.load(std::sync::atomic::Ordering::Acquire);
        match read() {
            Err(StoreError::Sled(e)) if is_disk_full(&e) => {
                // Waits for a reopening in progress (it holds the slot).
                drop(
                    self.db
                        .read()
                        .unwrap_or_else(std::sync::PoisonError::into_inner),
                );
                if self.epoch.load(std::sync::atomic::Ordering::Acquire) == epoch {
                    return Err(StoreError::Stopped {
                        path: self.path.to_path_buf(),
                    });
                }
                match read() {
                    Err(StoreError::Sled(e)) if is_disk_full(&e) => Err(StoreError::Stopped {
                        path: self.path.to_path_buf(),
                    }),
                    other => other,
                }
            }
            other => other,
        }
    }

    /// A cheap read that proves the store answers, for the watchdog's heartbeat (once a
    /// second, from the supervisor alone). It is also what brings back a store a full disk
    /// stopped, so the daemon recovers within a heartbeat of space coming back whether or
    /// not a poll writes: it opens a store left closed (a reopening failed) and recovers a
    /// sled that refuses calls after a failed write. Other reads never do (see
    /// `Store::reading`): they run under every request.
    pub fn probe(&self) -> Result<(), StoreError> {
        if self.is_closed() {
            self.reopen()?;
        }
        let epoch = self.epoch.load(std::sync::atomic::Ordering::Acquire);
        match self.db()?.get(keys::SCHEMA) {
            Err(e) if is_disk_full(&e) => {
                self.recover_from(epoch);
                self.db()?.get(keys::SCHEMA)?;
            }
            other => {
                other?;
            }
        }
        Ok(())
    }

    /// A write; one that fails for a full disk reopens the store (see [`Store::recover`])
    /// and is reported as [`StoreError::NoSpace`].
    pub(super) fn writing<T>(
        &self,
        write: impl FnOnce() -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        // A store left closed (a reopening after a full disk failed) is opened again by
        // the next write or the heartbeat's probe, never by another read (see `Store::db`).
        if self.is_closed() {
            self.reopen()?;
        }
        let epoch = self.epoch.load(std::sync::atomic::Ordering::Acquire);
        self.wrote(1);
        match write() {
            Err(e) if stopped_by_full_disk(&e) => {
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
    pub(super) fn recover_from(&self, epoch: u64) {
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
            self.forget_space_look();
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

    /// The reserve was released: the next write looks at the disk again (and makes it).
    fn forget_space_look(&self) {
        self.space_seen
            .free
            .store(0, std::sync::atomic::Ordering::Release);
    }

    /// Whether the store is closed (a reopening after a full disk failed).
    fn is_closed(&self) -> bool {
        self.db
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_none()
    }

    /// Opens the store again if it is closed (a reopen after a full disk failed).
    /// Called by writes only ([`Store::writing`]).
    pub(super) fn reopen(&self) -> Result<sled::Db, StoreError> {
        let mut slot = self
            .db
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(db) = &*slot {
            return Ok(db.clone());
        }
        release_reserve(&self.path);
        self.forget_space_look();
        let db = open_db(&self.path, self.cache_bytes)?;
        *slot = Some(db.clone());
        Ok(db)
    }
}

/// The reserve: a file of real blocks in the store's folder, released when the disk fills
/// up so that sled has room to open and recover.
pub(super) const RESERVE_FILE: &str = "tributary.reserve";
const RESERVE_BYTES: u64 = 8 * 1024 * 1024;
/// Free space beyond `min_free_mb` that lets [`Store::ensure_space`] trust its last look.
const ROOM_MARGIN: u64 = 256 * 1024 * 1024;
/// How long it trusts it, in ms.
const ROOM_FOR_MS: u64 = 1000;

/// The last look at the free space: bytes (0 when short, unknown, or the reserve file
/// was missing) and when (`now_millis`).
#[derive(Debug, Default)]
pub(super) struct SpaceSeen {
    free: std::sync::atomic::AtomicU64,
    at: std::sync::atomic::AtomicU64,
}

/// Writes the reserve file if it is missing and there is room for it (twice its size).
pub(super) fn make_reserve(dir: &Path) {
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
pub(super) fn release_reserve(dir: &Path) -> bool {
    std::fs::remove_file(dir.join(RESERVE_FILE)).is_ok()
}

/// Whether a write failed because sled stopped for lack of space: met by the write itself,
/// or by a read it made ([`StoreError::Stopped`]: retention reads states as it writes).
fn stopped_by_full_disk(e: &StoreError) -> bool {
    match e {
        StoreError::Sled(e) => is_disk_full(e),
        StoreError::Stopped { .. } => true,
        _ => false,
    }
}

/// Whether sled failed for lack of space (it then refuses every later call).
fn is_disk_full(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io)
        if io.kind() == std::io::ErrorKind::StorageFull
            || io.raw_os_error() == Some(libc::ENOSPC)
            || io.raw_os_error() == Some(libc::EDQUOT))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SourceState;
    use crate::store::tests::temp_store;
    use std::sync::atomic::Ordering;

    fn disk_full() -> StoreError {
        StoreError::Sled(sled::Error::Io(std::io::Error::from_raw_os_error(
            libc::ENOSPC,
        )))
    }

    fn is_open(store: &Store) -> bool {
        store.db.read().expect("not poisoned").is_some()
    }

    /// A look that found plenty of room is trusted for a moment (polls skip `statvfs`),
    /// but never past a `min_free` that asks for more than it saw, nor a missing reserve.
    #[test]
    fn a_recent_look_at_the_free_space_spares_no_write_it_should_stop() {
        let (dir, store) = temp_store();
        let free = store.free_bytes().expect("statvfs");
        if free < 2 * ROOM_MARGIN {
            return; // Too little room here to tell a trusted look from a fresh one.
        }
        store.set_min_free(1);
        store.ensure_space().expect("room");
        let seen = store.space_seen.at.load(Ordering::Acquire);
        assert!(seen > 0, "the look is kept");
        store.ensure_space().expect("room");
        assert_eq!(
            store.space_seen.at.load(Ordering::Acquire),
            seen,
            "and trusted"
        );

        // More than the disk has: refused at once, recent look or not.
        store.set_min_free(free.saturating_mul(2));
        assert!(matches!(
            store.ensure_space(),
            Err(StoreError::DiskFull { .. })
        ));
        // A look that found too little is not trusted once the limit is lower again.
        store.set_min_free(1);
        store.ensure_space().expect("room");
        assert!(store.space_seen.at.load(Ordering::Acquire) >= seen);
        assert!(
            store.space_seen.free.load(Ordering::Acquire) > 0,
            "looked again"
        );
        // A full disk's recovery releases the reserve: the next write looks again and
        // puts it back.
        store.recover();
        assert!(!dir.path().join(RESERVE_FILE).exists(), "released");
        store.ensure_space().expect("room");
        assert!(dir.path().join(RESERVE_FILE).exists(), "reserve made again");
    }

    #[test]
    fn a_read_that_meets_a_full_disk_does_not_reopen_the_store() {
        let (dir, store) = temp_store();
        let reserve = dir.path().join(RESERVE_FILE).exists();
        let generation = store.generation();
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let read = store.reading(|| -> Result<(), StoreError> {
            calls.fetch_add(1, Ordering::Relaxed);
            Err(disk_full())
        });
        assert!(matches!(read, Err(StoreError::Stopped { .. })), "{read:?}");
        assert_eq!(calls.load(Ordering::Relaxed), 1, "not read again");
        assert_eq!(store.epoch.load(Ordering::Acquire), 0, "not reopened");
        assert_eq!(store.generation(), generation, "not reopened");
        assert_eq!(dir.path().join(RESERVE_FILE).exists(), reserve);
        assert!(is_open(&store));

        // A write that meets it reopens the store.
        let write = store.writing(|| -> Result<(), StoreError> { Err(disk_full()) });
        assert!(
            matches!(write, Err(StoreError::NoSpace { .. })),
            "{write:?}"
        );
        assert_eq!(store.epoch.load(Ordering::Acquire), 1, "reopened");
        assert!(is_open(&store));

        // So does a write whose own read met it.
        let write =
            store.writing(|| store.reading(|| -> Result<(), StoreError> { Err(disk_full()) }));
        assert!(
            matches!(write, Err(StoreError::NoSpace { .. })),
            "{write:?}"
        );
        assert_eq!(store.epoch.load(Ordering::Acquire), 2, "reopened");
        assert!(is_open(&store));
    }

    #[test]
    fn a_read_is_made_again_when_a_write_reopened_the_store_meanwhile() {
        let (_dir, store) = temp_store();
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let read = store.reading(|| {
            if calls.fetch_add(1, Ordering::Relaxed) == 0 {
                // A writer met the full disk too and reopened the store.
                store.recover();
                return Err(disk_full());
            }
            Ok(7)
        });
        assert_eq!(read.expect("read again"), 7);
        assert_eq!(calls.load(Ordering::Relaxed), 2);
        assert_eq!(store.epoch.load(Ordering::Acquire), 1, "reopened once");
    }

    #[test]
    fn a_closed_store_is_opened_again_by_a_write_not_by_a_read() {
        let (dir, store) = temp_store();
        let reserve = dir.path().join(RESERVE_FILE).exists();
        // As a reopening that failed leaves it.
        drop(store.db.write().expect("not poisoned").take());

        let page = store.page(None, None, 10, |_| true);
        assert!(matches!(page, Err(StoreError::Stopped { .. })), "{page:?}");
        let state = store.source_state("s");
        assert!(
            matches!(state, Err(StoreError::Stopped { .. })),
            "{state:?}"
        );
        assert!(!is_open(&store), "a read does not reopen the store");
        assert_eq!(dir.path().join(RESERVE_FILE).exists(), reserve);

        store
            .save_state("s", &SourceState::default())
            .expect("a write reopens the store");
        assert!(is_open(&store));
        assert!(store.source_state("s").expect("reads").is_some());
    }

    /// The heartbeat's probe opens a store a failed reopening left closed (a poll begins
    /// with a read, so without it only the next retention pass would), and the store is
    /// whole afterwards.
    #[test]
    fn the_heartbeat_probe_opens_a_closed_store() {
        let (_dir, store) = temp_store();
        store
            .save_state("s", &SourceState::default())
            .expect("writes");
        drop(store.db.write().expect("not poisoned").take());
        assert!(matches!(
            store.source_state("s"),
            Err(StoreError::Stopped { .. })
        ));

        store.probe().expect("the probe opens the store again");
        assert!(is_open(&store));
        assert!(store.source_state("s").expect("reads").is_some());
        store.probe().expect("and answers");
    }
}
