//! The schema: the layout version a store was written with, and bringing an older store up
//! to this build's at open (upgrades in place, conversions, the resumable migration of
//! schema-2 entries). The layout itself is in [`super::keys`].

use std::path::Path;

use std::collections::HashMap;

use super::codec::{Credits, Manifest};
use super::{CHUNK, StoreError, keys};
use crate::model::{Credit, Entry, SourceState};

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
///   time index records the source.
/// - 5: two keys per entry instead of five: entries packed under `d/{source}\0{time}{key}`
///   (their source's feed is read from them), a manifest per source in place of the
///   per-source time index and the link index, credits in buckets (see `keys`).
///
/// An older store is converted at open (see `convert`), resumably: the version is set
/// first, with a `meta/converting` marker (so an older build refuses the half-converted
/// store); every batch moves entries from the old layout to the new one whole, so a crash
/// midway leaves some moved and the marker, and the next open moves the rest.
pub const SCHEMA_VERSION: u32 = 5;

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

/// Converts an older store to this schema (1 or 2 to 3 first, then 3 or 4 to 5), then
/// drops the marker.
fn convert(db: &sled::Db) -> Result<(), StoreError> {
    migrate_entries(db)?;
    pack_entries(db)?;
    pack_credits(db)?;
    recount_entries(db)?;
    db.remove(keys::CONVERTING)?;
    db.flush()?;
    Ok(())
}

/// Sets every source's `entry_count` to the entries it has. Retention sums the counts
/// instead of scanning, so a count an older build let drift is corrected once, here.
fn recount_entries(db: &sled::Db) -> Result<(), StoreError> {
    let mut counts: std::collections::HashMap<Vec<u8>, u64> = std::collections::HashMap::new();
    for k in db.scan_prefix(keys::DATED).keys() {
        let k = k?;
        if let Some(source) = keys::key_source(&k, keys::DATED, keys::TAIL) {
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
    for item in db.scan_prefix(keys::OLD_ENTRY) {
        let (k, v) = item?;
        if k.len() != OLD_ENTRY_KEY_LEN {
            continue;
        }
        let e: Entry = match keys::decode::<Entry>(&k, &v) {
            Ok(e) if e.key.0 == k[keys::OLD_ENTRY.len()..] && !e.source.is_empty() => e,
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
        batch.insert(keys::old_entry_key(&e.source, &e.key), v);
        batch.insert(keys::time_key(&e), e.source.as_bytes());
        batch.insert(keys::old_source_time_key(&e), &[]);
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
    if moved > 0 {
        tracing::info!(
            moved,
            secs = started.elapsed().as_secs_f64(),
            "entries keyed by source (schema 3)"
        );
    }
    Ok(())
}

/// Converts schema-3 and -4 entries (`e/{source}\0{key}` as JSON, with `s/` and `l/`
/// keys) to schema 5 (`d/{source}\0{time}{key}` packed), then writes the manifests. A
/// batch per [`CHUNK`] entries removes their old keys and writes the new ones, so a crash
/// midway leaves each entry in one layout or the other. An entry it cannot read stays,
/// logged, and `tributary verify` does not count it.
fn pack_entries(db: &sled::Db) -> Result<(), StoreError> {
    let started = std::time::Instant::now();
    let mut moved = 0usize;
    let mut items = db.scan_prefix(keys::OLD_ENTRY);
    loop {
        let mut batch = sled::Batch::default();
        let mut in_batch = 0;
        for item in items.by_ref() {
            let (k, v) = item?;
            let source =
                keys::key_source(&k, keys::OLD_ENTRY, 16).and_then(|s| std::str::from_utf8(s).ok());
            let e = match (source, keys::decode::<Entry>(&k, &v)) {
                (Some(source), Ok(e)) if e.source == source && k.ends_with(&e.key.0) => e,
                (_, Err(err)) => {
                    tracing::warn!(%err, "an unreadable entry was left as it was");
                    continue;
                }
                _ => {
                    tracing::warn!(key = %keys::hex(&k), "an entry stored under another key was left as it was");
                    continue;
                }
            };
            // A stored entry's link is in its manifest now; `l/` keeps pruned ones'.
            if let Some(article) = e.article {
                let lkey = keys::link_key(&e.source, &article);
                if db.get(&lkey)?.is_some_and(|v| v.as_ref() == e.key.0) {
                    batch.remove(lkey);
                }
            }
            batch.remove(k);
            batch.remove(keys::old_source_time_key(&e));
            batch.insert(keys::time_key(&e), e.source.as_bytes());
            batch.insert(keys::entry_key(&e), super::codec::pack_entry(&e));
            moved += 1;
            in_batch += 1;
            if in_batch == CHUNK {
                break;
            }
        }
        db.apply_batch(batch)?;
        if in_batch < CHUNK {
            break;
        }
        if moved.is_multiple_of(100_000) {
            tracing::info!(moved, "converting the store to schema 5");
        }
    }
    // What is left of the per-source time index pointed at no entry.
    let mut batch = sled::Batch::default();
    for k in db.scan_prefix(keys::OLD_SOURCE_TIME).keys() {
        batch.remove(k?);
    }
    db.apply_batch(batch)?;
    write_manifests(db)?;
    db.flush()?;
    tracing::info!(
        moved,
        secs = started.elapsed().as_secs_f64(),
        "entries packed (schema 5)"
    );
    Ok(())
}

/// Writes every source's manifest from its packed entries, one source after the other
/// (a source's entries are side by side): once each, whatever the source's size, after
/// every entry has moved. An interrupted conversion writes them all again, so they never
/// miss an entry moved before the interruption.
fn write_manifests(db: &sled::Db) -> Result<(), StoreError> {
    let mut current: Option<(Vec<u8>, Manifest)> = None;
    let mut batch = sled::Batch::default();
    let mut in_batch = 0;
    let flush = |source: &[u8], m: &Manifest, batch: &mut sled::Batch| {
        batch.insert([keys::MANIFEST, source].concat(), m.pack());
    };
    for item in db.scan_prefix(keys::DATED) {
        let (k, v) = item?;
        let Some(source) = keys::key_source(&k, keys::DATED, keys::TAIL) else {
            continue;
        };
        if current.as_ref().is_none_or(|(s, _)| s != source) {
            if let Some((s, m)) = current.take() {
                flush(&s, &m, &mut batch);
                in_batch += 1;
                if in_batch == CHUNK {
                    db.apply_batch(std::mem::take(&mut batch))?;
                    in_batch = 0;
                }
            }
            current = Some((source.to_vec(), Manifest::default()));
        }
        let name = String::from_utf8_lossy(source);
        if let Some((_, m)) = current.as_mut()
            && let Some((key, placed)) = keys::dated_record(&name, &k, &v)
        {
            m.place(key, placed);
        }
    }
    if let Some((s, m)) = current.take() {
        flush(&s, &m, &mut batch);
    }
    db.apply_batch(batch)?;
    Ok(())
}

/// Moves schema-4 credits (`a/{article}` as JSON) into buckets (`c/{article:2}`), a batch
/// per [`CHUNK`].
fn pack_credits(db: &sled::Db) -> Result<(), StoreError> {
    let mut items = db.scan_prefix(keys::OLD_ARTICLE);
    loop {
        let mut batch = sled::Batch::default();
        let mut buckets: HashMap<[u8; 4], Credits> = HashMap::new();
        let mut in_batch = 0;
        for item in items.by_ref() {
            let (k, v) = item?;
            batch.remove(k.clone());
            in_batch += 1;
            let (Ok(article), Ok(credit)) = (
                <[u8; 16]>::try_from(&k[keys::OLD_ARTICLE.len()..]),
                keys::decode::<Credit>(&k, &v),
            ) else {
                tracing::warn!(key = %keys::hex(&k), "an unreadable credit was dropped");
                continue;
            };
            let bk = keys::credits_key(&article);
            let bucket = match buckets.entry(bk) {
                std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                // A damaged bucket (derived data) starts again empty.
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(super::read::credits_at(db, &bk)?.0)
                }
            };
            bucket.set(article, credit);
            if in_batch == CHUNK {
                break;
            }
        }
        for (k, b) in buckets {
            batch.insert(&k[..], b.pack());
        }
        db.apply_batch(batch)?;
        if in_batch < CHUNK {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::codec::Placed;
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
        assert_eq!(v.as_deref(), Some(&b"5"[..]));
    }

    /// Rewrites this build's store into schema 4's layout, as the previous build wrote it:
    /// entries as JSON under `e/{source}\0{key}`, the per-source time index `s/`, links
    /// `l/` for every entry with an article, credits as JSON under `a/{article}`.
    pub(super) fn downgrade_to_schema_4(store: &Store) {
        let db = store.db().expect("open");
        let mut batch = sled::Batch::default();
        for item in db.scan_prefix(keys::DATED) {
            let (k, v) = item.expect("reads");
            let source = keys::key_source(&k, keys::DATED, keys::TAIL).expect("a source");
            let e = keys::unpack(std::str::from_utf8(source).expect("utf-8"), &k, &v)
                .expect("an entry");
            batch.remove(k);
            batch.insert(keys::old_entry_key(&e.source, &e.key), keys::encode(&e));
            batch.insert(keys::old_source_time_key(&e), &[]);
            if let Some(article) = e.article {
                batch.insert(keys::link_key(&e.source, &article), &e.key.0);
            }
        }
        for k in db.scan_prefix(keys::MANIFEST).keys() {
            batch.remove(k.expect("reads"));
        }
        for item in db.scan_prefix(keys::CREDITS) {
            let (k, v) = item.expect("reads");
            for (article, credit) in Credits::unpack(&v).expect("credits").iter() {
                batch.insert(
                    [keys::OLD_ARTICLE, &article[..]].concat(),
                    keys::encode(credit),
                );
            }
            batch.remove(k);
        }
        batch.insert(keys::SCHEMA, b"4");
        db.apply_batch(batch).expect("writes");
        db.flush().expect("flushes");
    }

    /// Rewrites this build's store into the schema-2 layout: entries under `e/{key}`, an
    /// empty value in the time index.
    fn downgrade_to_schema_2(store: &Store) {
        downgrade_to_schema_4(store);
        let db = store.db().expect("open");
        let mut batch = sled::Batch::default();
        for item in db.scan_prefix(keys::OLD_ENTRY) {
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

    /// 150 entries of `source`; every third article is also in the other source
    /// (credits and duplicates).
    fn for_source(source: &str) -> Vec<Entry> {
        (0..150)
            .map(|i| {
                let mut e = entry(&format!("{source}-{i}"), i % 60, &format!("{source} {i}"));
                e.key = make_key(source, "guid", &format!("g{i}"));
                e.source = source.into();
                e.article = Some([(i % 3 == 0) as u8 * (i as u8); 16]).filter(|_| i % 3 == 0);
                e
            })
            .collect()
    }

    fn poll_both(store: &Store, now: chrono::DateTime<Utc>) -> Vec<PollCounts> {
        ["a", "b"]
            .map(|source| poll_as(store, source, for_source(source), now))
            .to_vec()
    }

    #[test]
    fn a_schema_4_store_is_packed_at_open_even_when_interrupted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let now = Utc::now();
        let before = {
            let store = Store::open(dir.path(), 1 << 20).expect("opens");
            let counts = poll_both(&store, now);
            assert_eq!(counts[1].duplicates, 50);
            let before = store
                .page(None, None, 1000, |_| true)
                .expect("reads")
                .entries;
            downgrade_to_schema_4(&store);
            // Cut short: marked, the first 100 entries (of source a) packed, the rest not.
            let db = store.db().expect("open");
            db.insert(keys::CONVERTING, &[]).expect("writes");
            db.insert(keys::SCHEMA, b"5").expect("writes");
            let mut batch = sled::Batch::default();
            let mut manifest = Manifest::default();
            for item in db.scan_prefix(keys::OLD_ENTRY).take(100) {
                let (k, v) = item.expect("reads");
                let e: Entry = keys::decode(&k, &v).expect("an entry");
                assert_eq!(e.source, "a");
                batch.remove(k);
                batch.remove(keys::old_source_time_key(&e));
                batch.insert(keys::entry_key(&e), super::super::codec::pack_entry(&e));
                let time = keys::time_bytes(e.sort_time());
                let article = e.article;
                if let Some(a) = article {
                    batch.remove(keys::link_key("a", &a));
                }
                manifest.place(e.key, Placed { time, article });
            }
            batch.insert(keys::manifest_key("a"), manifest.pack());
            db.apply_batch(batch).expect("writes");
            db.flush().expect("flushes");
            before
        };
        let store = Store::open(dir.path(), 1 << 20).expect("the conversion carries on");
        let db = store.db().expect("open");
        assert!(!db.contains_key(keys::CONVERTING).expect("reads"));
        for old in [
            keys::OLD_ENTRY,
            keys::OLD_SOURCE_TIME,
            keys::OLD_ARTICLE,
            keys::LINK,
        ] {
            assert_eq!(db.scan_prefix(old).count(), 0, "{old:?} keys are left");
        }
        let report = store.verify().expect("verifies");
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        assert_eq!(report.entries, 300);
        let after = store
            .page(None, None, 1000, |_| true)
            .expect("reads")
            .entries;
        assert_eq!(after, before, "every entry as it was, credits included");
        // Nothing is new again, and the credits still say who was first.
        let counts = poll_both(&store, now);
        for c in &counts {
            assert_eq!((c.new, c.unchanged), (0, 150));
        }
    }

    #[test]
    fn schema_2_entries_are_keyed_by_source_at_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let now = Utc::now();
        let poll_both = |store: &Store| poll_both(store, now);
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
        assert_eq!(v.as_deref(), Some(&b"5"[..]));
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
            for item in db.scan_prefix(keys::OLD_ENTRY).take(100) {
                let (k, v) = item.expect("reads");
                let e: Entry = keys::decode(&k, &v).expect("an entry");
                batch.remove(k);
                batch.insert(keys::old_entry_key("s", &e.key), v);
                batch.insert(keys::time_key(&e), e.source.as_bytes());
                batch.insert(keys::old_source_time_key(&e), &[]);
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
