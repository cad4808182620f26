//! The store's async face: the one way async code calls the store.
//!
//! sled calls block (a read can wait on the disk, a write on a flush, and a full disk
//! reopens the store), so async code never calls a [`Store`] method on a runtime worker:
//! it hands the call to tokio's blocking pool with [`Store::call`], and the workers stay
//! free to answer `/healthz` and cached feeds whatever the disk does.
//!
//! The test of that promise needs a disk that stalls: [`Store::slow_page_reads_for_tests`]
//! makes this store's page reads wait (inert unless a test calls it).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{Store, StoreError};

impl Store {
    /// Runs `f` with this store on tokio's blocking pool and waits for it without holding
    /// a runtime worker.
    pub async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.clone();
        match tokio::task::spawn_blocking(move || f(&store)).await {
            Ok(result) => result,
            Err(join) => Err(StoreError::Task(join)),
        }
    }
}

impl Store {
    /// [`Store::call`] on a thread of its own instead of the blocking pool: for the one
    /// call that must not queue behind the others (the watchdog's heartbeat, once a second).
    /// On a single-threaded runtime (the tests', whose clock may be paused) it is `call`:
    /// tokio holds a paused clock while a blocking-pool task runs, not while a thread of
    /// our own does, and a clock run ahead fires timers (the stop's grace) no real time
    /// has reached. The daemon's runtime is multi-threaded.
    pub async fn call_apart<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    {
        if tokio::runtime::Handle::current().runtime_flavor()
            == tokio::runtime::RuntimeFlavor::CurrentThread
        {
            return self.call(f).await;
        }
        let store = self.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name("tributary-beat".into())
            .spawn(move || {
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&store)));
                let _ = tx.send(result.map_err(|_| ()));
            });
        if let Err(e) = spawned {
            return Err(StoreError::Apart(e.to_string()));
        }
        match rx.await {
            Ok(Ok(result)) => result,
            Ok(Err(())) => Err(StoreError::Apart("it panicked".into())),
            Err(_) => Err(StoreError::Apart(
                "its thread ended without an answer".into(),
            )),
        }
    }
}

/// Page reads made slow on purpose, by store path, with how many wait now: for the test
/// that the runtime stays free while the disk is slow. Empty unless a test fills it.
static SLOW_PAGE_READS: std::sync::Mutex<Vec<(std::path::PathBuf, Duration, usize)>> =
    std::sync::Mutex::new(Vec::new());
/// Whether [`SLOW_PAGE_READS`] was ever filled: page reads skip its lock until then.
static ANY_SLOW: AtomicBool = AtomicBool::new(false);

impl Store {
    /// For tests: from now on every page read (a feed's entries, from any index) of the
    /// store at `path` first waits `delay`, as on a disk that stalls; `Duration::ZERO` ends
    /// it and lets the reads waiting go on at once. Inert unless called.
    #[doc(hidden)]
    pub fn slow_page_reads_for_tests(path: &Path, delay: Duration) {
        let mut slow = SLOW_PAGE_READS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match slow.iter_mut().find(|(p, _, _)| p == path) {
            Some(entry) => entry.1 = delay,
            None => slow.push((path.to_path_buf(), delay, 0)),
        }
        ANY_SLOW.store(true, Ordering::Release);
    }

    /// For tests: how many page reads of the store at `path` wait now (see
    /// [`Store::slow_page_reads_for_tests`]).
    #[doc(hidden)]
    pub fn slow_page_reads_waiting(path: &Path) -> usize {
        SLOW_PAGE_READS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .find(|(p, _, _)| p == path)
            .map_or(0, |(_, _, waiting)| *waiting)
    }

    /// Where a page read waits when a test made this store's page reads slow; returns at
    /// once otherwise.
    pub(super) fn slow_page_read(&self) {
        if !ANY_SLOW.load(Ordering::Acquire) {
            return;
        }
        let began = Instant::now();
        let mut waiting = false;
        loop {
            {
                let mut slow = SLOW_PAGE_READS
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let Some(entry) = slow.iter_mut().find(|(p, _, _)| p == &*self.path) else {
                    return;
                };
                let done = began.elapsed() >= entry.1;
                match (waiting, done) {
                    (false, false) => entry.2 += 1,
                    (true, true) => {
                        entry.2 -= 1;
                        return;
                    }
                    (false, true) => return,
                    (true, false) => {}
                }
                waiting = true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    /// While a `call_apart` is under way, a paused clock does not run ahead: a timer
    /// longer than the call fires after it, as with `call`. (On a thread of its own the
    /// idle runtime jumps to the timer at once, and the stop's grace fired during a
    /// heartbeat in the paused-clock tests.)
    #[tokio::test(start_paused = true)]
    async fn a_paused_clock_waits_for_a_call_apart() {
        let (_dir, store) = super::super::tests::temp_store();
        let call = store.call_apart(|_| {
            // Real time, on the call's own thread.
            std::thread::sleep(Duration::from_millis(200));
            Ok(())
        });
        tokio::select! {
            biased;
            done = call => done.expect("the call"),
            () = tokio::time::sleep(Duration::from_secs(30)) => {
                panic!("the paused clock reached 30 s while the call was under way")
            }
        }
    }
}
