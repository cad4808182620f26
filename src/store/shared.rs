//! The values a batch shares between entries: sources' manifests and credit buckets. A
//! write reads each one once, changes it for every entry it touches, and puts it in its
//! batch once ([`Shared::write`]); the write lock is held throughout, so nothing else
//! changes them meanwhile.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use super::codec::{Credits, Manifest, Placed};
use super::keys::{credits_key, dated_key, manifest_key, time_bytes, time_key};
use super::{Store, StoreError};
use crate::model::{self, Credit, EntryKey};

/// Manifests and credit buckets read for one batch, with what it changed.
#[derive(Default)]
pub(super) struct Shared {
    manifests: HashMap<String, (Manifest, bool)>,
    credits: HashMap<[u8; 4], (Credits, bool)>,
    /// Per source, whether it had any keys of each [`Buried`] kind when the batch began.
    buried: HashMap<String, [Option<bool>; 2]>,
    /// The entries this batch changed, for the search index's journal.
    notes: super::search::Notes,
}

/// The keys a source keeps for its pruned (and capped) entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Buried {
    /// `x/`: tombstones, by entry key.
    Tombstones,
    /// `l/`: their keys, by article.
    Links,
}

impl Shared {
    /// `source`'s manifest as this batch leaves it.
    pub fn manifest(&mut self, store: &Store, source: &str) -> Result<&Manifest, StoreError> {
        Ok(&self.slot(store, source)?.0)
    }

    /// The same, to change: it is written with the batch.
    pub fn manifest_mut(
        &mut self,
        store: &Store,
        source: &str,
    ) -> Result<&mut Manifest, StoreError> {
        let slot = self.slot(store, source)?;
        slot.1 = true;
        Ok(&mut slot.0)
    }

    /// The stored entry of `source` with this key, as of the batch's start (a manifest
    /// changed by this batch may place it elsewhere: callers read an entry before they
    /// change it).
    pub fn entry(
        &mut self,
        store: &Store,
        source: &str,
        key: &EntryKey,
    ) -> Result<Option<model::Entry>, StoreError> {
        match self.manifest(store, source)?.get(key) {
            Some(p) => store.entry_at(source, &p.time, key),
            None => Ok(None),
        }
    }

    /// The key of `source`'s stored entry with `article`, if any.
    pub fn with_article(
        &mut self,
        store: &Store,
        source: &str,
        article: &[u8; 16],
    ) -> Result<Option<EntryKey>, StoreError> {
        Ok(self.slot(store, source)?.0.with_article(article))
    }

    /// Whether `source` had any keys of this kind when the batch began: one look per
    /// batch, so that a source that never lost an entry (nearly all) costs no lookup per
    /// new entry. The batch's own tombstones are not in sled yet either way.
    pub fn any_buried(
        &mut self,
        store: &Store,
        kind: Buried,
        source: &str,
    ) -> Result<bool, StoreError> {
        let (at, prefix) = match kind {
            Buried::Tombstones => (0, super::keys::TOMB),
            Buried::Links => (1, super::keys::LINK),
        };
        if let Some(any) = self.buried.get(source).and_then(|known| known[at]) {
            return Ok(any);
        }
        let any = store.any_under(&super::keys::source_prefix(prefix, source))?;
        self.buried.entry(source.to_owned()).or_default()[at] = Some(any);
        Ok(any)
    }

    fn slot(&mut self, store: &Store, source: &str) -> Result<&mut (Manifest, bool), StoreError> {
        // Looked up by `&str` first: this runs several times per entry of a poll, and the
        // owned name is made only the first time.
        if !self.manifests.contains_key(source) {
            // One made again from the entries (it was damaged) is written back.
            let loaded = store.manifest_or_remade(source)?;
            self.manifests.insert(source.to_owned(), loaded);
        }
        Ok(self
            .manifests
            .get_mut(source)
            .expect("the manifest was inserted just above"))
    }

    /// Who has `article`, as this batch leaves it.
    pub fn credit(
        &mut self,
        store: &Store,
        article: &[u8; 16],
    ) -> Result<Option<Credit>, StoreError> {
        Ok(self.bucket(store, article)?.0.get(article).cloned())
    }

    pub fn set_credit(
        &mut self,
        store: &Store,
        article: [u8; 16],
        credit: Credit,
    ) -> Result<(), StoreError> {
        let slot = self.bucket(store, &article)?;
        slot.0.set(article, credit);
        slot.1 = true;
        Ok(())
    }

    /// Removes `article`'s credit if `key` holds it.
    pub fn drop_credit(
        &mut self,
        store: &Store,
        article: &[u8; 16],
        key: &EntryKey,
    ) -> Result<(), StoreError> {
        let slot = self.bucket(store, article)?;
        if slot.0.get(article).is_some_and(|c| c.key == *key) {
            slot.0.remove(article);
            slot.1 = true;
        }
        Ok(())
    }

    fn bucket(
        &mut self,
        store: &Store,
        article: &[u8; 16],
    ) -> Result<&mut (Credits, bool), StoreError> {
        Ok(match self.credits.entry(credits_key(article)) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) => {
                let c = store.credits(v.key())?;
                v.insert(c)
            }
        })
    }

    /// Stores `e` (new, or moved from `old` when its time changed): its value, its time
    /// index key and its manifest record, and notes it in the search index's journal.
    pub fn put_entry(
        &mut self,
        store: &Store,
        e: &model::Entry,
        old: Option<&model::Entry>,
        batch: &mut sled::Batch,
    ) -> Result<(), StoreError> {
        let time = time_bytes(e.sort_time());
        if let Some(old) = old
            && time_bytes(old.sort_time()) != time
        {
            batch.remove(super::keys::entry_key(old));
            batch.remove(time_key(old));
        }
        if old.is_none_or(|o| time_bytes(o.sort_time()) != time) {
            batch.insert(time_key(e), e.source.as_bytes());
        }
        batch.insert(
            dated_key(&e.source, &time, &e.key),
            super::codec::pack_entry(e),
        );
        let placed = Placed {
            time,
            article: e.article,
        };
        if self.manifest(store, &e.source)?.get(&e.key) != Some(placed) {
            self.manifest_mut(store, &e.source)?.place(e.key, placed);
        }
        self.notes.note(&e.source, &e.key);
        Ok(())
    }

    /// Removes `e`, its time index key, its manifest record and its credit (if it holds
    /// one), noting it in the search index's journal. Named-feed indexes are the caller's.
    pub fn remove_entry(
        &mut self,
        store: &Store,
        e: &model::Entry,
        batch: &mut sled::Batch,
    ) -> Result<(), StoreError> {
        batch.remove(super::keys::entry_key(e));
        batch.remove(time_key(e));
        self.manifest_mut(store, &e.source)?.remove(&e.key);
        if let Some(article) = e.article {
            self.drop_credit(store, &article, &e.key)?;
        }
        self.notes.note(&e.source, &e.key);
        Ok(())
    }

    /// The sort time of `source`'s oldest entry as this batch leaves it (`None`: none).
    pub fn oldest(
        &mut self,
        store: &Store,
        source: &str,
    ) -> Result<Option<chrono::DateTime<chrono::Utc>>, StoreError> {
        Ok(self
            .manifest(store, source)?
            .iter()
            .map(|(_, p)| p.time)
            .min()
            .and_then(|t| super::keys::time_from_bytes(&t)))
    }

    /// Notes an entry removed by its keys alone (unreadable) for the search index.
    pub fn note(&mut self, source: &str, key: &EntryKey) {
        self.notes.note(source, key);
    }

    /// Puts every changed manifest and bucket in `batch` (an empty one is removed), and
    /// the search journal's record of the entries changed.
    pub fn write(self, store: &Store, batch: &mut sled::Batch) -> Result<(), StoreError> {
        for (source, (m, changed)) in self.manifests {
            if !changed {
                continue;
            }
            if m.is_empty() {
                batch.remove(manifest_key(&source));
            } else {
                batch.insert(manifest_key(&source), m.pack());
            }
        }
        for (k, (c, changed)) in self.credits {
            if !changed {
                continue;
            }
            if c.is_empty() {
                batch.remove(&k[..]);
            } else {
                batch.insert(&k[..], c.pack());
            }
        }
        self.notes.write(store, batch)
    }
}
