//! Reading the store: source states, single entries, and pages of entries newest first
//! through the time indexes (all sources, one, several merged, or a named feed's own
//! index), with the [`Cursor`] that continues a page. Every entry read through an index is
//! counted ([`Store::entries_read`]).

use super::codec::{Credits, Manifest};
use super::keys::{self, dated_key, decode, hex, state_key};
use super::{Store, StoreError};
use crate::model::{Entry, EntryKey, SourceState};

/// Index tails (`{time:8}{key:16}`, newest first) with the entries they point at (`None`:
/// dangling or unreadable, logged and skipped).
type Found = Result<([u8; 24], Option<Entry>), StoreError>;

impl Store {
    /// The saved state of a source, if it was ever polled.
    pub fn source_state(&self, source: &str) -> Result<Option<SourceState>, StoreError> {
        self.reading(|| self.source_state_inner(source))
    }

    pub(super) fn source_state_inner(
        &self,
        source: &str,
    ) -> Result<Option<SourceState>, StoreError> {
        let key = state_key(source);
        match self.db()?.get(&key)? {
            None => Ok(None),
            Some(v) => decode(&key, &v).map(Some),
        }
    }

    /// Every source with saved state, by name.
    pub fn source_states(&self) -> Result<Vec<(String, SourceState)>, StoreError> {
        self.source_states_with(|_, s| Some(s))
    }

    /// Every source's state, each reduced by `keep` as it is read (`None`: left out): what
    /// a pass over 10,000 sources needs of them, without holding 10,000 whole states (about
    /// 9 MB) at once.
    pub fn source_states_with<T>(
        &self,
        keep: impl Fn(&str, SourceState) -> Option<T>,
    ) -> Result<Vec<(String, T)>, StoreError> {
        self.reading(|| {
            let mut out = Vec::new();
            for item in self.db()?.scan_prefix(keys::STATE) {
                let (k, v) = item?;
                let name = String::from_utf8_lossy(keys::state_source(&k));
                if let Some(kept) = keep(&name, decode(&k, &v)?) {
                    out.push((name.into_owned(), kept));
                }
            }
            Ok(out)
        })
    }

    /// A source's newest `window` entries whose article page was never tried (full text):
    /// their keys and links.
    pub fn pending_full_text(
        &self,
        source: &str,
        window: usize,
    ) -> Result<Vec<(EntryKey, Option<String>)>, StoreError> {
        self.reading(|| {
            let mut out = Vec::new();
            for found in self.source_scan(source, None)?.take(window) {
                if let (_, Some(e)) = found?
                    && e.full_text.is_none()
                {
                    out.push((e.key, e.link));
                }
            }
            Ok(out)
        })
    }

    /// Whether an entry is stored (a failed read counts as yes: nothing is hidden by it).
    pub fn has_entry(&self, source: &str, key: &EntryKey) -> bool {
        !matches!(self.placed(source, key), Ok(None))
    }

    /// Where `source`'s manifest places `key`, without decoding the manifest (renders ask
    /// this per duplicate entry).
    pub(super) fn placed(
        &self,
        source: &str,
        key: &EntryKey,
    ) -> Result<Option<super::codec::Placed>, StoreError> {
        let Some(v) = self.db()?.get(keys::manifest_key(source))? else {
            return Ok(None);
        };
        match super::codec::find_in_packed(&v, key) {
            Ok(p) => Ok(p),
            Err(_) => Ok(self.manifest(source)?.get(key)),
        }
    }

    /// The entries of `source` with these keys that are still stored, in the keys' order
    /// (a poll's new entries, for webhooks).
    pub fn entries_by_keys(
        &self,
        source: &str,
        keys: &[EntryKey],
    ) -> Result<Vec<Entry>, StoreError> {
        let manifest = self.manifest(source)?;
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            if let Some(p) = manifest.get(key)
                && let Some(e) = self.entry_at(source, &p.time, key)?
            {
                out.push(e);
            }
        }
        Ok(out)
    }

    /// A source's manifest (empty when it has no entries). An unreadable one (a damaged
    /// disk) is made again from the source's entries, which it only indexes: the next
    /// write stores it whole again.
    pub(super) fn manifest(&self, source: &str) -> Result<Manifest, StoreError> {
        Ok(self.manifest_or_remade(source)?.0)
    }

    /// Whether any key begins with `prefix` (one seek).
    pub(super) fn any_under(&self, prefix: &[u8]) -> Result<bool, StoreError> {
        Ok(self
            .db()?
            .scan_prefix(prefix)
            .keys()
            .next()
            .transpose()?
            .is_some())
    }

    /// [`Store::manifest`], and whether it was made again (so a write stores it).
    pub(super) fn manifest_or_remade(&self, source: &str) -> Result<(Manifest, bool), StoreError> {
        let k = keys::manifest_key(source);
        let Some(v) = self.db()?.get(&k)? else {
            return Ok((Manifest::default(), false));
        };
        match Manifest::unpack(&v) {
            Ok(m) => Ok((m, false)),
            Err(error) => {
                tracing::warn!(source, %error, "a damaged manifest is made again from the source's entries");
                Ok((self.manifest_from_entries(source)?, true))
            }
        }
    }

    /// A source's manifest as its entries say: their keys' times and keys, their articles.
    pub(super) fn manifest_from_entries(&self, source: &str) -> Result<Manifest, StoreError> {
        let mut m = Manifest::default();
        for item in self
            .db()?
            .scan_prefix(keys::source_prefix(keys::DATED, source))
        {
            let (k, v) = item?;
            if let Some((key, placed)) = keys::dated_record(source, &k, &v) {
                m.place(key, placed);
            }
        }
        Ok(m)
    }

    /// A credit bucket (`c/{article:2}`), and whether it was damaged (see [`credits_at`]).
    pub(super) fn credits(&self, k: &[u8; 4]) -> Result<(Credits, bool), StoreError> {
        credits_at(&self.db()?, k)
    }

    /// A stored entry, by key (through its source's manifest).
    pub(super) fn entry(&self, source: &str, key: &EntryKey) -> Result<Option<Entry>, StoreError> {
        match self.placed(source, key)? {
            Some(p) => self.entry_at(source, &p.time, key),
            None => Ok(None),
        }
    }

    /// The entry stored under `d/{source}\0{time}{key}`.
    pub(super) fn entry_at(
        &self,
        source: &str,
        time: &[u8; 8],
        key: &EntryKey,
    ) -> Result<Option<Entry>, StoreError> {
        let k = dated_key(source, time, key);
        match self.db()?.get(&k)? {
            Some(v) => Ok(Some(keys::unpack(source, &k, &v)?)),
            None => Ok(None),
        }
    }

    /// One page of entries, newest first: all sources (`source: None`) or one, strictly
    /// older than `before` (a cursor from an earlier page's `next`), at most `limit`, those
    /// for which `accept` holds. `next` is set when older accepted entries remain.
    pub fn page(
        &self,
        source: Option<&str>,
        before: Option<&Cursor>,
        limit: usize,
        accept: impl Fn(&Entry) -> bool,
    ) -> Result<Page, StoreError> {
        self.reading(|| self.page_inner(source, before, limit, &accept))
    }

    pub(super) fn page_inner(
        &self,
        source: Option<&str>,
        before: Option<&Cursor>,
        limit: usize,
        accept: &impl Fn(&Entry) -> bool,
    ) -> Result<Page, StoreError> {
        match source {
            // The time index records each entry's source.
            None => self.collect_page(self.time_scan(keys::TIME.to_vec(), before)?, limit, accept),
            Some(name) => self.collect_page(self.source_scan(name, before)?, limit, accept),
        }
    }

    /// A page of a feed made of `sources`, newest first, of the entries `accept` takes.
    ///
    /// With `index` (a named feed with patterns, see `store::feeds`) ready, the feed's own index
    /// is read: it holds only what the patterns take, so a page costs the same whatever
    /// they match. Otherwise the sources' own indexes are merged, newest first: the cost is
    /// the page plus one index seek per source, and a source with no entries costs a seek.
    pub fn page_of_sources(
        &self,
        sources: &[&str],
        index: Option<[u8; 8]>,
        before: Option<&Cursor>,
        limit: usize,
        accept: impl Fn(&Entry) -> bool,
    ) -> Result<Page, StoreError> {
        self.reading(|| {
            if let Some(instance) = index.and_then(|id| self.ready_instance(&id)) {
                let prefix = keys::feed_index_prefix(&instance);
                return self.collect_page(self.time_scan(prefix, before)?, limit, &accept);
            }
            // Each source's scan yields raw values; an entry is decoded (and counted) only
            // when the merge takes it, so a source's head costs a key, not an entry.
            let mut heads = std::collections::BinaryHeap::new();
            let mut scans = Vec::with_capacity(sources.len());
            let mut held = Vec::with_capacity(sources.len());
            for (i, name) in sources.iter().enumerate() {
                let mut scan = self.index_scan(keys::source_prefix(keys::DATED, name), before)?;
                let first = scan.next().transpose()?;
                if let Some((tail, _)) = &first {
                    heads.push((*tail, i));
                }
                held.push(first.map(|(_, v)| v));
                scans.push(scan);
            }
            let merged = std::iter::from_fn(|| {
                let (tail, i) = heads.pop()?;
                let value = held.get_mut(i).and_then(Option::take);
                match scans[i].next() {
                    Some(Ok((next, v))) => {
                        heads.push((next, i));
                        held[i] = Some(v);
                    }
                    Some(Err(e)) => return Some(Err(e)),
                    None => {}
                }
                let entry = value.and_then(|v| self.read_value(sources[i], &tail, &v));
                Some(Ok((tail, entry)))
            });
            self.collect_page(merged, limit, &accept)
        })
    }

    /// A source's entries, newest first, older than `before`.
    pub(super) fn source_scan(
        &self,
        source: &str,
        before: Option<&Cursor>,
    ) -> Result<impl Iterator<Item = Found> + use<'_>, StoreError> {
        let source = source.to_string();
        Ok(self
            .index_scan(keys::source_prefix(keys::DATED, &source), before)?
            .map(move |item| {
                let (tail, v) = item?;
                Ok((tail, self.read_value(&source, &tail, &v)))
            }))
    }

    /// An entry's value as read (counted); an unreadable one is logged and skipped.
    fn read_value(&self, source: &str, tail: &[u8; 24], v: &[u8]) -> Option<Entry> {
        self.entries_read
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let k = keys::tail_entry_key(source, tail);
        match keys::unpack(source, &k, v) {
            Ok(e) => Some(e),
            Err(err) => {
                tracing::warn!(%err, "skipped an unreadable entry");
                None
            }
        }
    }

    /// An index whose values name the source (`t/`, a named feed's `f/`), newest first,
    /// older than `before`, with the entries it points at.
    pub(super) fn time_scan(
        &self,
        prefix: Vec<u8>,
        before: Option<&Cursor>,
    ) -> Result<impl Iterator<Item = Found> + use<'_>, StoreError> {
        Ok(self.index_scan(prefix, before)?.map(move |item| {
            let (tail, owner) = item?;
            let Ok(owner) = std::str::from_utf8(&owner) else {
                tracing::warn!(key = %hex(&tail), "index key without a source; skipped");
                return Ok((tail, None));
            };
            Ok((tail, self.indexed_entry(owner, &tail)?))
        }))
    }

    /// The keys under an index `prefix`, newest first, older than `before`: each key's
    /// last 24 bytes (time and entry key) and its value.
    pub(super) fn index_scan(
        &self,
        prefix: Vec<u8>,
        before: Option<&Cursor>,
    ) -> Result<impl Iterator<Item = Result<([u8; 24], sled::IVec), StoreError>> + use<>, StoreError>
    {
        self.slow_page_read();
        let db = self.db()?;
        let iter = match before {
            None => db.scan_prefix(&prefix),
            Some(c) => {
                let mut upper = prefix.clone();
                upper.extend_from_slice(&c.0);
                db.range(prefix..upper)
            }
        };
        Ok(iter.rev().filter_map(|item| match item {
            Err(e) => Some(Err(StoreError::from(e))),
            Ok((k, v)) => Some(Ok((keys::index_tail(&k)?, v))),
        }))
    }

    /// The entries `items` (index tails with their sources, newest first) point at, up to
    /// `limit` that `accept` takes; `next` is set when more follow.
    pub(super) fn collect_page(
        &self,
        items: impl Iterator<Item = Found>,
        limit: usize,
        accept: &impl Fn(&Entry) -> bool,
    ) -> Result<Page, StoreError> {
        Ok(self
            .collect_page_within(items, limit, accept, usize::MAX)?
            .unwrap_or_default())
    }

    /// [`Store::collect_page`], giving up (`None`) once more than `max_rejected` entries
    /// were read and not accepted.
    pub(super) fn collect_page_within(
        &self,
        items: impl Iterator<Item = Found>,
        limit: usize,
        accept: &impl Fn(&Entry) -> bool,
        max_rejected: usize,
    ) -> Result<Option<Page>, StoreError> {
        let mut entries = Vec::with_capacity(limit.min(1024));
        let mut last: Option<Cursor> = None;
        let mut more = false;
        let mut rejected = 0usize;
        for item in items {
            let (tail, Some(e)) = item? else {
                continue;
            };
            if !accept(&e) {
                rejected += 1;
                if rejected > max_rejected {
                    return Ok(None);
                }
                continue;
            }
            if entries.len() >= limit {
                more = true;
                break;
            }
            last = Some(Cursor(tail));
            entries.push(e);
        }
        Ok(Some(Page {
            entries,
            next: if more { last } else { None },
        }))
    }

    /// A page of the whole store's time index, newest first, of the entries `accept` takes;
    /// `None` when more than `max_rejected` entries were read and not taken (the caller then
    /// reads its sources' own indexes instead: see [`Store::page_of_sources`]).
    pub fn page_within(
        &self,
        before: Option<&Cursor>,
        limit: usize,
        accept: impl Fn(&Entry) -> bool,
        max_rejected: usize,
    ) -> Result<Option<Page>, StoreError> {
        self.reading(|| {
            self.collect_page_within(
                self.time_scan(keys::TIME.to_vec(), before)?,
                limit,
                &accept,
                max_rejected,
            )
        })
    }

    /// The entry an index key's tail points at; a dangling or unreadable one is logged
    /// and skipped.
    pub(super) fn indexed_entry(
        &self,
        source: &str,
        tail: &[u8; 24],
    ) -> Result<Option<Entry>, StoreError> {
        let Some(v) = self.db()?.get(keys::tail_entry_key(source, tail))? else {
            tracing::warn!(key = %hex(&tail[8..]), "index points at a missing entry; skipped");
            return Ok(None);
        };
        Ok(self.read_value(source, tail, &v))
    }
}

/// A credit bucket (`c/{article:2}`). An unreadable one (a damaged disk) counts as empty,
/// with `true` so a write stores it again: its articles' next entries are credited afresh.
pub(super) fn credits_at(db: &sled::Db, k: &[u8; 4]) -> Result<(Credits, bool), StoreError> {
    match db.get(k)? {
        Some(v) => Ok(match Credits::unpack(&v) {
            Ok(c) => (c, false),
            Err(error) => {
                tracing::warn!(bucket = %hex(k), %error, "a damaged credit bucket is dropped");
                (Credits::default(), true)
            }
        }),
        None => Ok((Credits::default(), false)),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor([u8; 24]);

impl Cursor {
    /// As it appears in a URL.
    pub fn to_param(&self) -> String {
        hex(&self.0)
    }

    /// From a URL parameter; `None` unless it is exactly what [`Cursor::to_param`] makes.
    pub fn from_param(s: &str) -> Option<Cursor> {
        if s.len() != 48 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let mut out = [0u8; 24];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Cursor(out))
    }

    /// A search's place (an `order` of the search index, see `search::order_of`) as a
    /// cursor, so that search pages are continued with the same `before=` as every feed.
    pub fn from_order(order: i64) -> Cursor {
        let mut out = [0u8; 24];
        out[..8].copy_from_slice(&(order as u64 ^ (1 << 63)).to_be_bytes());
        Cursor(out)
    }

    /// The search place [`Cursor::from_order`] made this cursor from.
    pub fn order(&self) -> i64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.0[..8]);
        (u64::from_be_bytes(b) ^ (1 << 63)) as i64
    }
}

/// One page of a feed.
#[derive(Debug, Default)]
pub struct Page {
    pub entries: Vec<Entry>,
    /// Where the next (older) page starts, if there is one.
    pub next: Option<Cursor>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::{entry, poll_as, temp_store, walk_pages};
    use chrono::Utc;

    #[test]
    fn pages_walk_back_through_history() {
        let (_dir, store) = temp_store();
        let now = Utc::now();
        let polled: Vec<Entry> = (0..10)
            .map(|i| entry(&format!("g{i}"), i, &format!("T{i}")))
            .collect();
        poll_as(&store, "s", polled, now);
        let seen = walk_pages(|cursor| store.page(Some("s"), cursor, 4, |_| true).expect("page"));
        let expected: Vec<String> = (0..10).rev().map(|i| format!("T{i}")).collect();
        assert_eq!(seen, expected);
        assert_eq!(Cursor::from_param("zz"), None);
    }
}
