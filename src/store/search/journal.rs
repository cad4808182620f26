//! The index's journal: `j/{source}\0{key:16}` → a sequence number, put in the same sled
//! batch as every change to an entry (stored, updated, article fetched, pruned, deleted),
//! so the index can never miss one, whatever stops the process. The indexer takes a
//! record in by reading the entry as it is now (present: its document replaced; gone: its
//! document deleted), commits the index, then removes the record only if it still holds
//! the number it read: a change made meanwhile leaves its record for the next round.
//! Records are per entry, so an entry changed ten times before the indexer runs costs one.

use crate::model::EntryKey;
use crate::store::keys::{self, JOURNAL};
use crate::store::{Store, StoreError};

/// A record of the journal: which entry changed, and the number it was noted with.
pub(super) struct Record {
    pub key: sled::IVec,
    pub seq: sled::IVec,
    pub source: String,
    pub entry: EntryKey,
}

/// Notes in `batch` that `source`'s entry `key` changed.
pub(in crate::store) fn note(
    store: &Store,
    source: &str,
    key: &EntryKey,
    batch: &mut sled::Batch,
) -> Result<(), StoreError> {
    let seq = store.db()?.generate_id()?;
    batch.insert(keys::journal_key(source, key), &seq.to_be_bytes()[..]);
    Ok(())
}

/// The number a record was noted with.
pub(super) fn seq(value: &[u8]) -> u64 {
    <[u8; 8]>::try_from(value).map_or(u64::MAX, u64::from_be_bytes)
}

impl Store {
    /// Up to `max` records of the journal.
    pub(super) fn journal_take(&self, max: usize) -> Result<Vec<Record>, StoreError> {
        let mut out = Vec::new();
        for item in self.db()?.scan_prefix(JOURNAL).take(max) {
            let (k, seq) = item?;
            match keys::journal_entry(&k) {
                Some((source, entry)) => out.push(Record {
                    source,
                    entry,
                    key: k,
                    seq,
                }),
                // Not ours to read: dropped, or it would be read every round.
                None => {
                    self.db()?.remove(&k)?;
                }
            }
        }
        Ok(out)
    }

    /// Removes the records taken in, each only if no change was noted since.
    pub(super) fn journal_clear(&self, records: &[Record]) -> Result<(), StoreError> {
        let db = self.db()?;
        for r in records {
            // A failed comparison is a newer change: its record stays.
            let _ = db.compare_and_swap(&r.key, Some(&r.seq), None::<&[u8]>)?;
        }
        Ok(())
    }

    /// Records in the journal, counted up to `max`.
    pub(super) fn journal_len(&self, max: usize) -> Result<usize, StoreError> {
        Ok(self.db()?.scan_prefix(JOURNAL).keys().take(max).count())
    }
}
