//! The index's journal: `j/{seq:8}` → the entries one write changed (stored, updated,
//! article fetched, pruned, deleted with their source), put in the same sled batch as the
//! change, so the index can never miss one, whatever stops the process. One record per
//! batch (a poll's 100 entries), not per entry: on the poll path it costs one key in a
//! hundred. The indexer takes records in by reading each entry as it is now (present: its
//! document replaced; gone: its document deleted), commits the index, then removes them.
//! A record is never changed once written (a later change is a later record), so removing
//! the records taken in loses nothing noted meanwhile.

use crate::model::EntryKey;
use crate::store::keys::{self, JOURNAL};
use crate::store::{Store, StoreError};

/// The entries one batch changed, to be noted with it.
#[derive(Default)]
pub(in crate::store) struct Notes(Vec<(String, EntryKey)>);

impl Notes {
    /// Notes that `source`'s entry `key` changed.
    pub fn note(&mut self, source: &str, key: &EntryKey) {
        self.0.push((source.to_string(), *key));
    }

    /// Puts the record of the entries noted in `batch` (none when nothing was).
    pub fn write(self, store: &Store, batch: &mut sled::Batch) -> Result<(), StoreError> {
        if self.0.is_empty() {
            return Ok(());
        }
        let seq = store.db()?.generate_id()?;
        batch.insert(keys::journal_key(seq), encode(&self.0));
        Ok(())
    }
}

/// A record of the journal.
pub(super) struct Record {
    pub key: sled::IVec,
    pub seq: u64,
    pub entries: Vec<(String, EntryKey)>,
}

/// `{count:4}` then per entry `{source length:2}{source}{key:16}`.
fn encode(entries: &[(String, EntryKey)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + entries.len() * 40);
    out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    for (source, key) in entries {
        let name = &source.as_bytes()[..source.len().min(usize::from(u16::MAX))];
        out.extend_from_slice(&(name.len() as u16).to_be_bytes());
        out.extend_from_slice(name);
        out.extend_from_slice(&key.0);
    }
    out
}

/// The entries of a record's value (`None`: unreadable).
fn decode(mut v: &[u8]) -> Option<Vec<(String, EntryKey)>> {
    let mut take = |n: usize| -> Option<&[u8]> {
        let (head, rest) = v.split_at_checked(n)?;
        v = rest;
        Some(head)
    };
    let count = u32::from_be_bytes(take(4)?.try_into().ok()?) as usize;
    let mut out = Vec::with_capacity(count.min(10_000));
    for _ in 0..count {
        let len = u16::from_be_bytes(take(2)?.try_into().ok()?) as usize;
        let source = std::str::from_utf8(take(len)?).ok()?.to_string();
        let key = EntryKey(take(16)?.try_into().ok()?);
        out.push((source, key));
    }
    Some(out)
}

impl Store {
    /// The oldest records of the journal, until they hold at least `max` entries.
    pub(super) fn journal_take(&self, max: usize) -> Result<Vec<Record>, StoreError> {
        let mut out = Vec::new();
        let mut entries = 0;
        for item in self.db()?.scan_prefix(JOURNAL) {
            if entries >= max {
                break;
            }
            let (k, v) = item?;
            let seq = keys::journal_seq(&k);
            // An unreadable record is removed with the others (nothing could be done with
            // it; `verify` tells if the index then disagrees).
            let noted = decode(&v).unwrap_or_default();
            if seq.is_none() || noted.is_empty() {
                tracing::warn!(key = %keys::hex(&k), "an unreadable search journal record is dropped");
            }
            entries += noted.len().max(1);
            out.push(Record {
                key: k,
                seq: seq.unwrap_or(u64::MAX),
                entries: noted,
            });
        }
        Ok(out)
    }

    /// Removes the records taken in.
    pub(super) fn journal_clear(&self, records: &[Record]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for r in records {
            batch.remove(&r.key);
        }
        self.db()?.apply_batch(batch)?;
        Ok(())
    }

    /// Records in the journal, counted up to `max`.
    pub(super) fn journal_len(&self, max: usize) -> Result<usize, StoreError> {
        Ok(self.db()?.scan_prefix(JOURNAL).keys().take(max).count())
    }
}

#[cfg(test)]
mod tests {
    use super::{decode, encode};
    use crate::model::EntryKey;

    #[test]
    fn records_read_back_and_damage_is_seen() {
        let entries = vec![
            ("alpha".to_string(), EntryKey([1; 16])),
            ("β".to_string(), EntryKey([2; 16])),
        ];
        let v = encode(&entries);
        assert_eq!(decode(&v), Some(entries));
        assert_eq!(decode(&v[..v.len() - 1]), None);
        assert_eq!(decode(&[0, 0, 0, 9]), None);
        assert_eq!(decode(&[]), None);
        assert_eq!(decode(&encode(&[])), Some(vec![]));
    }
}
