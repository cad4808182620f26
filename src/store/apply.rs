//! Applying a poll: merging its entries into the store (new, updated, unchanged, capped,
//! buried by a tombstone, a guid change on a known link, cross-source credits) with the
//! source's new state, in atomic batches; and the smaller writes a poll makes (its state
//! alone, an entry's full text).

use chrono::{DateTime, Utc};

use super::keys::{self, encode, entry_key, link_key, state_key, tomb_key};
use super::shared::{Buried, Shared};
use super::{CHUNK, Store, StoreError};
use crate::feed::normalise::Merge;
use crate::model::{Credit, Entry, EntryKey, PollCounts, SourceState};

impl Store {
    /// Records a poll that produced no entries to merge (a failure or a 304). Written
    /// without waiting for the disk (see the body).
    ///
    /// What the store itself keeps in the state (the entry count, the removal mark) is
    /// taken from the stored state, not from `state`: retention may have changed it since
    /// the poll read it.
    pub fn save_state(&self, source: &str, state: &SourceState) -> Result<(), StoreError> {
        self.writing(|| self.save_state_inner(source, state))
    }

    pub(super) fn save_state_inner(
        &self,
        source: &str,
        state: &SourceState,
    ) -> Result<(), StoreError> {
        let _guard = self.lock();
        let mut state = state.clone();
        if let Some(stored) = self.source_state_inner(source)? {
            state.entry_count = stored.entry_count;
            state.capped = stored.capped;
            state.keep_store_fields(&stored);
        }
        // Not flushed here: sled writes it out within a second, and a state lost to a
        // crash only means an earlier poll. Entries are what must not be lost.
        self.db()?.insert(state_key(source), encode(&state))?;
        Ok(())
    }

    /// Merges one poll's entries and the source's new state, atomically, then flushes.
    ///
    /// `merge` decides, for each incoming entry and the stored one with the same key, whether
    /// it is new, updated or unchanged ([`crate::feed::normalise::merge`]).
    ///
    /// With `max_new`, at most that many new entries are stored (the newest); the other
    /// new ones get a tombstone, so they are skipped for good (counted as `capped`). Also
    /// returns the keys of the entries stored as new, in the order stored (for webhooks).
    ///
    /// `read`: the entries are the whole of the document in `state.document`, read just
    /// now (not an older page, not a hub's push): the store writes into it what reading it
    /// again would count.
    #[allow(clippy::too_many_arguments)]
    pub fn apply_poll(
        &self,
        source: &str,
        incoming: Vec<Entry>,
        state: SourceState,
        read: bool,
        max_new: Option<usize>,
        now: DateTime<Utc>,
        merge: impl Fn(Option<&Entry>, Entry) -> Merge,
    ) -> Result<(PollCounts, Vec<EntryKey>), StoreError> {
        self.ensure_space()?;
        let mut new_keys = Vec::new();
        let counts = self.writing(|| {
            self.apply_poll_inner(
                source,
                incoming,
                state,
                read,
                max_new,
                now,
                merge,
                &mut new_keys,
            )
        })?;
        Ok((counts, new_keys))
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn apply_poll_inner(
        &self,
        source: &str,
        mut incoming: Vec<Entry>,
        mut state: SourceState,
        read: bool,
        max_new: Option<usize>,
        now: DateTime<Utc>,
        merge: impl Fn(Option<&Entry>, Entry) -> Merge,
        new_keys: &mut Vec<EntryKey>,
    ) -> Result<PollCounts, StoreError> {
        if max_new.is_some() {
            // The newest first, so the cap keeps the newest.
            incoming.sort_by_key(|e| std::cmp::Reverse(e.sort_time()));
        }
        let mut counts = PollCounts::default();
        // A huge feed is written in chunks: one sled batch for 50,000 entries costs over a
        // gigabyte, and memory grows with the batch. Each chunk carries the source's
        // *previous* state with its entry count brought up to date, so an interrupted poll
        // leaves consistent counts and the old validators: the next poll fetches again and
        // finds what was written unchanged. Only the last chunk writes the new state. Feeds
        // of up to CHUNK entries (nearly all) are one atomic batch. The write lock is taken
        // per chunk, so no write holds it for long (the watchdog watches for that) and
        // retention interleaves with a big poll.
        // Keys the feed still uses: such an entry is never the target of a guid change.
        let present: std::collections::HashSet<EntryKey> = incoming.iter().map(|e| e.key).collect();
        let total = incoming.len();
        let mut done = 0;
        let mut incoming = incoming.into_iter();
        loop {
            let _guard = self.lock();
            let mut previous = self.source_state_inner(source)?.unwrap_or_default();
            let mut batch = sled::Batch::default();
            let mut shared = Shared::default();
            let new_before = counts.new;
            for entry in incoming.by_ref().take(CHUNK) {
                self.merge_one(
                    source,
                    entry,
                    &present,
                    &merge,
                    max_new,
                    now,
                    (&mut batch, &mut shared),
                    &mut counts,
                    new_keys,
                )?;
                done += 1;
            }
            let oldest = shared.oldest(self, source)?;
            shared.write(self, &mut batch)?;
            let added = (counts.new - new_before) as u64;
            if done >= total {
                // As in `save_state`: the store's own fields come from the stored state.
                state.entry_count = previous.entry_count + added;
                state.capped = previous.capped + counts.capped as u64;
                state.keep_store_fields(&previous);
                state.oldest_entry = oldest;
                // The document this poll read (not one a hub pushed, which leaves the
                // source's last read as it was): what reading it again would count, while
                // the source's stored entries stay as this write leaves them.
                if let Some(seen) = state.document.as_mut().filter(|_| read) {
                    seen.entries =
                        counts.new + counts.updated + counts.unchanged + counts.guid_changes;
                    seen.buried = counts.pruned + counts.capped;
                    seen.entry_count = state.entry_count;
                }
                batch.insert(state_key(source), encode(&state));
                self.db()?.apply_batch(batch)?;
                break;
            }
            previous.entry_count += added;
            previous.oldest_entry = oldest;
            batch.insert(state_key(source), encode(&previous));
            self.db()?.apply_batch(batch)?;
        }
        // What a poll reports as stored is on disk. A poll that changed no entry (all
        // unchanged) wrote only the source's state: like `save_state`, no need to wait.
        self.wrote((counts.new + counts.updated) as u64);
        if counts.new + counts.updated + counts.capped > 0 {
            self.flush_tracked()?;
            self.generation
                .fetch_add(1, std::sync::atomic::Ordering::Release);
        }
        Ok(counts)
    }

    /// Records what fetching an entry's article page came to (and the article), once;
    /// the source's counters follow. An entry pruned meanwhile is left alone.
    pub fn set_full_text(
        &self,
        source: &str,
        key: &EntryKey,
        outcome: crate::model::FullText,
        article: Option<String>,
        url: &str,
    ) -> Result<(), StoreError> {
        use crate::model::FullText;
        self.ensure_space()?;
        self.writing(|| {
            let _guard = self.lock();
            let Some(mut e) = self.entry(source, key)? else {
                return Ok(());
            };
            let mut batch = sled::Batch::default();
            if let Some(mut state) = self.source_state_inner(source)? {
                match &outcome {
                    FullText::Fetched => state.full_text_fetched += 1,
                    FullText::Failed { reason } => {
                        state.full_text_failed += 1;
                        state.full_text_last_failure = Some(format!("{url}: {reason}"));
                    }
                    FullText::Refused { reason } => {
                        state.full_text_refused += 1;
                        state.last_refusal = Some(format!("{url}: {reason}"));
                    }
                }
                batch.insert(state_key(source), encode(&state));
            }
            e.full_text = Some(outcome);
            e.full_content = article;
            batch.insert(entry_key(&e), super::codec::pack_entry(&e));
            let mut notes = super::search::Notes::default();
            notes.note(source, key);
            notes.write(self, &mut batch)?;
            self.db()?.apply_batch(batch)?;
            self.generation
                .fetch_add(1, std::sync::atomic::Ordering::Release);
            Ok(())
        })
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn merge_one(
        &self,
        source: &str,
        mut entry: Entry,
        present: &std::collections::HashSet<EntryKey>,
        merge: &impl Fn(Option<&Entry>, Entry) -> Merge,
        max_new: Option<usize>,
        now: DateTime<Utc>,
        (batch, shared): (&mut sled::Batch, &mut Shared),
        counts: &mut PollCounts,
        new_keys: &mut Vec<EntryKey>,
    ) -> Result<(), StoreError> {
        // Stored under `source`, indexed and credited under `entry.source`: one name.
        debug_assert_eq!(entry.source, source, "an entry polled for another source");
        if entry.source != source {
            entry.source = source.to_string();
        }
        let mut existing = shared.entry(self, source, &entry.key)?;
        if existing.is_none()
            && shared.any_buried(self, Buried::Tombstones, source)?
            && self.buried(source, &entry.key, now, batch)?
        {
            counts.pruned += 1;
            tracing::debug!(
                source,
                entry = entry.label(),
                "entry skipped: tombstoned (pruned by retention, or capped earlier)"
            );
            return Ok(());
        }
        // A new guid on a link this source already has (stored, or pruned): the publisher
        // changed its guids (some do on every fetch). It is the same entry (or the same
        // pruned entry).
        if existing.is_none()
            && let Some(article) = entry.article
        {
            let linked = match shared.with_article(self, source, &article)? {
                Some(key) => Some((key, true)),
                None if shared.any_buried(self, Buried::Links, source)? => {
                    self.buried_link(source, &article)?.map(|key| (key, false))
                }
                None => None,
            };
            if let Some((old_key, stored)) = linked
                && !present.contains(&old_key)
            {
                if stored {
                    if let Some(old) = shared.entry(self, source, &old_key)? {
                        counts.guid_changes += 1;
                        entry.key = old.key;
                        existing = Some(old);
                    }
                } else if self.buried(source, &old_key, now, batch)? {
                    counts.pruned += 1;
                    tracing::debug!(
                        source,
                        entry = entry.label(),
                        "entry skipped: tombstoned (its link's entry was pruned)"
                    );
                    return Ok(());
                }
            }
        }
        let label = tracing::enabled!(tracing::Level::DEBUG).then(|| entry.label().to_string());
        let label = label.as_deref().unwrap_or_default();
        match merge(existing.as_ref(), entry) {
            Merge::Unchanged => {
                counts.unchanged += 1;
                tracing::debug!(source, entry = label, "entry skipped: unchanged");
            }
            Merge::New(e) if max_new.is_some_and(|max| counts.new >= max) => {
                counts.capped += 1;
                tracing::debug!(
                    source,
                    entry = label,
                    max_new_per_poll = max_new,
                    "entry skipped for good: capped by max_new_per_poll"
                );
                batch.insert(tomb_key(source, &e.key), keys::tomb_value(now, e.article));
                if let Some(article) = e.article {
                    batch.insert(link_key(source, &article), &e.key.0);
                }
            }
            Merge::New(mut e) => {
                counts.new += 1;
                new_keys.push(e.key);
                if let Some(article) = e.article {
                    self.credit(&mut e, article, batch, shared, counts)?;
                }
                self.index_in_feeds(&e, batch);
                shared.put_entry(self, &e, None, batch)?;
            }
            Merge::Updated(e) => {
                counts.updated += 1;
                // Its texts may have changed, and with them the named feeds that take it.
                if let Some(old) = &existing {
                    self.unindex_in_feeds(old, batch);
                }
                self.index_in_feeds(&e, batch);
                shared.put_entry(self, &e, existing.as_ref(), batch)?;
            }
        }
        Ok(())
    }

    /// The key of this source's pruned (or capped) entry with `article`, if any.
    fn buried_link(
        &self,
        source: &str,
        article: &[u8; 16],
    ) -> Result<Option<EntryKey>, StoreError> {
        Ok(self
            .db()?
            .get(link_key(source, article))?
            .and_then(|k| <[u8; 16]>::try_from(k.as_ref()).ok())
            .map(EntryKey))
    }

    /// Whether retention pruned this entry (it has a tombstone); a tombstone last seen
    /// over a day ago is refreshed, so it lives while the feed still lists the entry.
    pub(super) fn buried(
        &self,
        source: &str,
        key: &EntryKey,
        now: DateTime<Utc>,
        batch: &mut sled::Batch,
    ) -> Result<bool, StoreError> {
        let tkey = tomb_key(source, key);
        let Some(value) = self.db()?.get(&tkey)? else {
            return Ok(false);
        };
        let seen = keys::tomb_seen(&value);
        // Refreshed often enough that retention (which drops tombstones unseen for
        // `tombstones_for`) never drops one its feed still lists: daily, or at a quarter of
        // a shorter `tombstones_for`.
        let every = self.tombstone_refresh();
        if seen.is_none_or(|t| now - t >= every) {
            batch.insert(tkey, keys::tomb_value(now, keys::tomb_article(&value)));
        }
        Ok(true)
    }

    /// Cross-source dedup: the first source to bring an article is credited with it; a
    /// later one's entry is marked as a duplicate of it, and the credited entry records the
    /// other source.
    pub(super) fn credit(
        &self,
        e: &mut Entry,
        article: [u8; 16],
        batch: &mut sled::Batch,
        shared: &mut Shared,
        counts: &mut PollCounts,
    ) -> Result<(), StoreError> {
        match shared.credit(self, &article)? {
            Some(c) if c.source != e.source => {
                if let Some(mut first) = shared.entry(self, &c.source, &c.key)? {
                    if !first.also_in.contains(&e.source) {
                        first.also_in.push(e.source.clone());
                        batch.insert(entry_key(&first), super::codec::pack_entry(&first));
                    }
                    counts.duplicates += 1;
                    e.duplicate_of = Some(c);
                } else {
                    // The credited entry is gone: this one takes over.
                    shared.set_credit(self, article, credit_of(e))?;
                }
            }
            Some(_) => {}
            None => shared.set_credit(self, article, credit_of(e))?,
        }
        Ok(())
    }

    /// Sets how long tombstones live unseen (`[retention] tombstones_for`); polls refresh
    /// them well within that.
    /// How often a poll that reads a document refreshes the tombstones of the entries it
    /// still lists: daily, or at a quarter of a shorter `tombstones_for`. A document
    /// recognised unread ([`crate::ingest::page::digest`]) is read again at least this
    /// often, so that its tombstones are refreshed too.
    pub fn tombstone_refresh(&self) -> chrono::Duration {
        let ttl_ms = self
            .tombstone_ttl_ms
            .load(std::sync::atomic::Ordering::Relaxed);
        chrono::Duration::milliseconds(i64::try_from(ttl_ms / 4).unwrap_or(i64::MAX))
            .min(chrono::Duration::days(1))
    }

    pub fn set_tombstone_ttl(&self, ttl: std::time::Duration) {
        self.tombstone_ttl_ms.store(
            u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX),
            std::sync::atomic::Ordering::Relaxed,
        );
    }
}

fn credit_of(e: &Entry) -> Credit {
    Credit {
        key: e.key,
        source: e.source.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::{entry, poll_as, temp_store};

    #[test]
    fn a_damaged_manifest_or_credit_bucket_is_made_good_by_the_next_poll() {
        let (_dir, store) = temp_store();
        let now = Utc::now();
        let polled: Vec<Entry> = (0..30)
            .map(|i| {
                let mut e = entry(&format!("g{i}"), i, &format!("T{i}"));
                e.article = Some([i as u8; 16]);
                e
            })
            .collect();
        assert_eq!(poll_as(&store, "s", polled.clone(), now).new, 30);
        let db = store.db().expect("open");
        db.insert(keys::manifest_key("s"), &b"\x01garbage"[..])
            .expect("writes");
        db.insert(keys::credits_key(&[3; 16]), &b"\x01\xff"[..])
            .expect("writes");
        assert!(!store.verify().expect("verifies").problems.is_empty());
        // Every entry is still known: nothing new, nothing lost; the manifest is whole again.
        let c = poll_as(&store, "s", polled.clone(), now);
        assert_eq!((c.new, c.unchanged), (0, 30));
        let report = store.verify().expect("verifies");
        assert_eq!(report.entries, 30);
        assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
        assert!(report.problems[0].contains("credit bucket"));
        // The bucket is written whole again by the next entry it takes.
        let mut next = entry("g-new", 59, "new");
        next.article = Some([3; 16]);
        let mut polled = polled;
        polled.push(next);
        assert_eq!(poll_as(&store, "s", polled, now).new, 1);
        let report = store.verify().expect("verifies");
        assert!(report.problems.is_empty(), "{:?}", report.problems);
    }

    #[test]
    fn newest_first_and_no_duplicates() {
        let (_dir, store) = temp_store();
        let now = Utc::now();
        let polled = vec![entry("a", 1, "A"), entry("b", 3, "B"), entry("c", 2, "C")];
        let c = poll_as(&store, "s", polled.clone(), now);
        assert_eq!(c.new, 3);
        let c = poll_as(&store, "s", polled, now);
        assert_eq!((c.new, c.unchanged), (0, 3));
        let titles: Vec<_> = store
            .page(None, None, 10, |_| true)
            .expect("reads")
            .entries
            .into_iter()
            .map(|e| e.title)
            .collect();
        assert_eq!(titles, ["B", "C", "A"]);
        let newest = store.page(Some("s"), None, 2, |_| true).expect("reads");
        assert_eq!(newest.entries.len(), 2);
        assert!(newest.next.is_some(), "a third entry remains");
    }
}
