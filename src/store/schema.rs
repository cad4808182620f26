//! The schema: the layout version a store was written with, and bringing an older store up
//! to this build's at open (upgrades in place, conversions, the resumable migration of
//! schema-2 entries). The layout itself is in [`super::keys`].

use std::path::Path;

use super::{CHUNK, StoreError, keys};
use crate::model::{Entry, SourceState};

/// The on-disk layout version this build reads and writes.
///
/// - 1: entries, indexes, source states, links, credits.
/// - 2: adds tombstones (`x/`). A version-1 store is upgraded in place at open (nothing
///   to convert); a build that knows only version 1 refuses a version-2 store, since it
///   would store pruned entries again.
/// - 4: adds the named-feed indexes (`f/`, `fm/`, `fg/`, see `store::feeds`). A version-3
///   store is upgraded in place at open (nothing to convert); a build that knows only
///   version 3 refuses a version-4 store, since its writes would not keep those indexes.
/// - 3: entries are keyed by source and key (`e/{source}\0{key}`, was `e/{key}`), and the
///   time index records the source. An older store is converted at open (see
///   `convert`), resumably: the version is set to 3 first, with a `meta/converting`
///   marker (so an older build refuses the half-converted store); a crash midway leaves
///   some entries moved and the marker, and the next open moves the rest.
pub const SCHEMA_VERSION: u32 = 4;

/// Checks the schema version of the store just opened at `path`: a new store is stamped
/// with [`SCHEMA_VERSION`], an older one upgraded or converted, a newer one refused.
pub(super) fn check(db: &sled::Db, path: &Path) -> Result<(), StoreError> {
    match db.get(keys::SCHEMA)? {
        None => {
            db.insert(keys::SCHEMA, SCHEMA_VERSION.to_string().as_bytes())?;
            db.flush()?;
        }
        Some(v) => {
            let found = String::from_utf8_lossy(&v).to_string();
            match found.parse::<u32>() {
                // A conversion was interrupted: carry on.
                Ok(n) if n <= SCHEMA_VERSION && db.contains_key(keys::CONVERTING)? => {
                    db.insert(keys::SCHEMA, SCHEMA_VERSION.to_string().as_bytes())?;
                    convert(db)?
                }
                Ok(SCHEMA_VERSION) => {}
                // Version 4 only adds keys: nothing to convert.
                Ok(3) => {
                    db.insert(keys::SCHEMA, SCHEMA_VERSION.to_string().as_bytes())?;
                    db.flush()?;
                    tracing::info!(from = 3, to = SCHEMA_VERSION, "store schema upgraded");
                }
                Ok(n) if n < SCHEMA_VERSION => {
                    // The new version first, with a marker: from here on a build that
                    // knows only the old layout refuses the store instead of storing
                    // entries again beside the converted ones.
                    db.insert(keys::CONVERTING, &[])?;
                    db.insert(keys::SCHEMA, SCHEMA_VERSION.to_string().as_bytes())?;
                    db.flush()?;
                    convert(db)?;
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
    Ok(())
}

/// Converts an older store (schema 1 or 2) to schema 3, then drops the marker.
fn convert(db: &sled::Db) -> Result<(), StoreError> {
    migrate_entries(db)?;
    recount_entries(db)?;
    db.remove(keys::CONVERTING)?;
    db.flush()?;
    Ok(())
}

/// Sets every source's `entry_count` to the entries it has. Retention sums the counts
/// instead of scanning, so a count an older build let drift is corrected once, here.
fn recount_entries(db: &sled::Db) -> Result<(), StoreError> {
    let mut counts: std::collections::HashMap<Vec<u8>, u64> = std::collections::HashMap::new();
    for k in db.scan_prefix(keys::ENTRY).keys() {
        let k = k?;
        if let Some(source) = keys::key_source(&k, keys::ENTRY, 16) {
            *counts.entry(source.to_vec()).or_default() += 1;
        }
    }
    let mut batch = sled::Batch::default();
    for item in db.scan_prefix(keys::STATE) {
        let (k, v) = item?;
        let Ok(mut state) = keys::decode::<SourceState>(&k, &v) else {
            continue;
        };
        let stored = counts.get(keys::state_source(&k)).copied().unwrap_or(0);
        if state.entry_count != stored {
            tracing::info!(
                source = %String::from_utf8_lossy(keys::state_source(&k)),
                was = state.entry_count,
                now = stored,
                "entry count corrected"
            );
            state.entry_count = stored;
            batch.insert(k, keys::encode(&state));
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
/// batch per [`super::CHUNK`] entries, so a crash midway leaves every entry under its old key or
/// its new one (never both, never neither); the next open carries on. Entries it cannot
/// place (unreadable, or stored under another key: a corrupt store) stay where they are,
/// logged, and `tributary verify` reports them.
fn migrate_entries(db: &sled::Db) -> Result<(), StoreError> {
    let started = std::time::Instant::now();
    let mut moved = 0usize;
    let mut batch = sled::Batch::default();
    let mut in_batch = 0;
    for item in db.scan_prefix(keys::ENTRY) {
        let (k, v) = item?;
        if k.len() != OLD_ENTRY_KEY_LEN {
            continue;
        }
        let e: Entry = match keys::decode::<Entry>(&k, &v) {
            Ok(e) if e.key.0 == k[keys::ENTRY.len()..] && !e.source.is_empty() => e,
            Ok(_) => {
                tracing::warn!(key = %keys::hex(&k), "an entry stored under another key was left as it was; `tributary verify` reports it");
                continue;
            }
            Err(err) => {
                tracing::warn!(%err, "an unreadable entry was left as it was; `tributary verify` reports it");
                continue;
            }
        };
        batch.remove(k);
        batch.insert(keys::entry_key(&e.source, &e.key), v);
        keys::insert_indexes(&e, &mut batch);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::identity::entry_key as make_key;
    use crate::model::PollCounts;
    use crate::store::Store;
    use crate::store::tests::{entry, poll_as};
    use chrono::Utc;

    #[test]
    fn older_schema_is_upgraded_in_place() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let store = Store::open(dir.path(), 1 << 20).expect("opens");
            let db = store.db().expect("open");
            db.insert(keys::SCHEMA, b"1").expect("writes");
            db.flush().expect("flushes");
        }
        let store = Store::open(dir.path(), 1 << 20).expect("a version-1 store opens");
        let v = store.db().expect("open").get(keys::SCHEMA).expect("reads");
        assert_eq!(v.as_deref(), Some(&b"4"[..]));
    }

    /// Rewrites a schema-3 store into the schema-2 layout: entries under `e/{key}`, an
    /// empty value in the time index.
    fn downgrade_to_schema_2(store: &Store) {
        let db = store.db().expect("open");
        let mut batch = sled::Batch::default();
        for item in db.scan_prefix(keys::ENTRY) {
            let (k, v) = item.expect("reads");
            let e: Entry = keys::decode(&k, &v).expect("an entry");
            batch.remove(k);
            let mut old = b"e/".to_vec();
            old.extend_from_slice(&e.key.0);
            batch.insert(old, v);
            batch.insert(keys::time_key(&e), &[]);
        }
        batch.insert(keys::SCHEMA, b"2");
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
                .map(|source| poll_as(store, source, for_source(source), now))
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
        let v = store.db().expect("open").get(keys::SCHEMA).expect("reads");
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
            poll_as(&store, "s", polled, now);
            downgrade_to_schema_2(&store);
            // An older build's drifted count, and a conversion cut short: marked, some
            // entries moved, the rest not.
            let db = store.db().expect("open");
            let mut state = store.source_state("s").expect("reads").expect("a state");
            state.entry_count = 999;
            db.insert(keys::state_key("s"), keys::encode(&state))
                .expect("writes");
            db.insert(keys::CONVERTING, &[]).expect("writes");
            db.insert(keys::SCHEMA, b"3").expect("writes");
            let mut moved = 0;
            let mut batch = sled::Batch::default();
            for item in db.scan_prefix(keys::ENTRY).take(100) {
                let (k, v) = item.expect("reads");
                let e: Entry = keys::decode(&k, &v).expect("an entry");
                batch.remove(k);
                batch.insert(keys::entry_key("s", &e.key), v);
                keys::insert_indexes(&e, &mut batch);
                moved += 1;
            }
            db.apply_batch(batch).expect("writes");
            db.flush().expect("flushes");
            assert_eq!(moved, 100);
        }
        let store = Store::open(dir.path(), 1 << 20).expect("the conversion carries on");
        let db = store.db().expect("open");
        assert!(!db.contains_key(keys::CONVERTING).expect("reads"));
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
                .insert(keys::SCHEMA, b"999")
                .expect("writes");
            store.flush().expect("flushes");
        }
        let err = Store::open(dir.path(), 1 << 20).err().expect("refused");
        assert!(err.to_string().contains("schema version 999"), "{err}");
    }
}
