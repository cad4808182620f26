//! The store's async face: the one way async code calls the store.
//!
//! sled calls block (a read can wait on the disk, a write on a flush, and a full disk
//! reopens the store), so async code never calls a [`Store`] method on a runtime worker:
//! it hands the call to tokio's blocking pool with [`Store::call`], and the workers stay
//! free to answer `/healthz` and cached feeds whatever the disk does.

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
