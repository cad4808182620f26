//! Retention: what the store forgets, and the tombstones that stop it coming back.
//!
//! [`Store::prune`] runs one pass:
//! 1. sources no longer configured are marked with the time they were first found missing
//!    (their entries already left every output); `removed_after` later they are deleted
//!    whole: entries, indexes, links, tombstones, state. A source that comes back before
//!    then is unmarked and has everything it had.
//! 2. each configured source keeps its newest `keep` entries; of those, entries whose date
//!    *and* first sighting are both older than `keep_for` go too, except the newest
//!    `keep_min`.
//! 3. the whole store keeps its newest `keep_total` entries.
//! 4. tombstones not seen in their source's feed for `tombstones_for` are dropped.
//!
//! A pruned entry leaves a tombstone (`x/{source}\0{key}` → last seen, article): while the
//! source's feed still lists it, polls find the tombstone and skip it, refreshing the last
//! sighting at most daily. Deletions go in batches of [`DELETE_CHUNK`] under the write lock,
//! so polls interleave with a long pass; each batch also brings the source's entry count
//! up to date.
//!
//! A pass that would remove most of the store because its limits were tightened is held
//! for the operator's confirmation instead (see `hold`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::keys::{
    self, TAIL, encode, index_tail, index_time, key_at_end, link_key, source_prefix, state_key,
    tail_key, tomb_article, tomb_key, tomb_seen, tomb_value,
};
use super::shared::Shared;
use super::{Store, StoreError};
use crate::model::{Entry, SourceState};

/// An entry to prune: its source and its keys' tail (`{time:8}{key:16}`).
type Doomed = (String, [u8; TAIL]);

mod hold;

pub use hold::HeldPass;

/// Entries deleted per sled batch.
const DELETE_CHUNK: usize = 500;

/// One source's retention limits.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    /// Entries kept at most, newest first.
    pub keep: usize,
    /// Entries older than this (by date and first sighting) go; `None`: kept forever.
    pub keep_for: Option<Duration>,
    /// The newest entries kept whatever their age.
    pub keep_min: usize,
}

/// One retention pass: the configured sources and the store-wide limits.
#[derive(Clone, Debug)]
pub struct PrunePlan {
    pub sources: Vec<(String, Limits)>,
    pub keep_total: usize,
    pub removed_after: Duration,
    pub tombstones_for: Duration,
    pub now: DateTime<Utc>,
    /// Count what would go, change nothing.
    pub dry_run: bool,
    /// Set to end the pass early (at shutdown); what was done stays done.
    pub stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// The operator confirmed (`tributary prune --confirm`): a pass that would remove most
    /// of the store runs rather than being held.
    pub confirmed: bool,
}

impl PrunePlan {
    fn stopped(&self) -> bool {
        self.stop
            .as_ref()
            .is_some_and(|s| s.load(std::sync::atomic::Ordering::Acquire))
    }
}

/// What a pass did (or, in a dry run, would do).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PruneReport {
    /// Entries pruned per source (by its own limits or the store-wide one).
    pub pruned: BTreeMap<String, usize>,
    /// Sources removed from the config whose entries were deleted, with how many.
    pub deleted_sources: BTreeMap<String, usize>,
    /// Sources removed from the config, kept until the given time in case they return.
    pub removed_pending: BTreeMap<String, DateTime<Utc>>,
    /// Tombstones dropped (not seen in their feed for `tombstones_for`).
    pub tombstones_expired: usize,
    /// Tombstones left.
    pub tombstones: usize,
    /// Entries left in the store.
    pub entries: usize,
    pub dry_run: bool,
    /// The pass would remove most of the store and was held (nothing was changed); in a
    /// dry run, that an unconfirmed pass would be.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<HeldPass>,
}

impl PruneReport {
    pub fn pruned_total(&self) -> usize {
        self.pruned.values().sum()
    }
}

impl Store {
    /// One retention pass (see the module docs).
    pub fn prune(&self, plan: &PrunePlan) -> Result<PruneReport, StoreError> {
        let report = self.writing(|| self.prune_guarded(plan));
        // A pass reads every source's state and some entries, all freed by now.
        super::release_freed_memory();
        report
    }

    fn prune_inner(&self, plan: &PrunePlan) -> Result<PruneReport, StoreError> {
        let mut report = PruneReport {
            dry_run: plan.dry_run,
            ..Default::default()
        };
        self.prune_removed(plan, &mut report)?;
        for (name, limits) in &plan.sources {
            if plan.stopped() {
                return Ok(report);
            }
            let doomed = self.doomed_in_source(name, limits, plan.now)?;
            self.bury_all(doomed, plan, &mut report)?;
        }
        // A dry run deleted nothing: what the steps above would delete counts as gone.
        let already = if plan.dry_run {
            report.pruned_total()
        } else {
            0
        };
        let doomed = self.doomed_overall(plan.keep_total.saturating_add(already))?;
        self.bury_all(doomed, plan, &mut report)?;
        self.expire_tombstones(plan, &mut report)?;
        report.entries = self.stored_total()?;
        report.tombstones = self.db()?.scan_prefix(keys::TOMB).keys().count();
        if !plan.dry_run && (report.pruned_total() > 0 || !report.deleted_sources.is_empty()) {
            self.flush_tracked()?;
            self.generation
                .fetch_add(1, std::sync::atomic::Ordering::Release);
        }
        Ok(report)
    }

    /// Marks, unmarks and deletes sources by whether the config still has them.
    fn prune_removed(&self, plan: &PrunePlan, report: &mut PruneReport) -> Result<(), StoreError> {
        let configured: HashSet<&str> = plan.sources.iter().map(|(n, _)| n.as_str()).collect();
        let grace =
            chrono::Duration::from_std(plan.removed_after).unwrap_or(chrono::TimeDelta::MAX);
        for (name, removed_at) in self.source_states_with(|_, s| Some(s.removed_at))? {
            let listed = configured.contains(name.as_str());
            match removed_at {
                None if listed => {}
                Some(_) if listed => {
                    if !plan.dry_run {
                        self.update_state(&name, |s| s.removed_at = None)?;
                    }
                }
                Some(at) if plan.now - at >= grace => {
                    let n = self.delete_source(&name, plan)?;
                    report.deleted_sources.insert(name, n);
                }
                Some(at) => {
                    report
                        .removed_pending
                        .insert(name, at.checked_add_signed(grace).unwrap_or(at));
                }
                None => {
                    if !plan.dry_run {
                        self.update_state(&name, |s| {
                            s.removed_at.get_or_insert(plan.now);
                        })?;
                    }
                    report
                        .removed_pending
                        .insert(name, plan.now.checked_add_signed(grace).unwrap_or(plan.now));
                }
            }
        }
        Ok(())
    }

    /// Read-modify-write of a source's state under the write lock.
    fn update_state(
        &self,
        name: &str,
        change: impl FnOnce(&mut SourceState),
    ) -> Result<(), StoreError> {
        let _guard = self.lock();
        if let Some(mut state) = self.source_state(name)? {
            change(&mut state);
            self.db()?.insert(state_key(name), encode(&state))?;
        }
        Ok(())
    }

    /// Deletes everything a source has; returns how many entries it had.
    fn delete_source(&self, name: &str, plan: &PrunePlan) -> Result<usize, StoreError> {
        let prefix = source_prefix(keys::DATED, name);
        let tails: Vec<[u8; TAIL]> = self
            .db()?
            .scan_prefix(&prefix)
            .keys()
            .filter_map(|k| k.ok().and_then(|k| index_tail(&k)))
            .collect();
        if plan.dry_run {
            return Ok(tails.len());
        }
        for chunk in tails.chunks(DELETE_CHUNK) {
            // A stop between batches leaves a consistent store (each batch keeps the
            // count); the next pass deletes the rest.
            if plan.stopped() {
                return Ok(0);
            }
            let _guard = self.lock();
            let state = self.source_state_inner(name)?;
            if state.as_ref().is_some_and(|s| s.removed_at.is_none()) {
                return Ok(0);
            }
            let mut batch = sled::Batch::default();
            let mut shared = Shared::default();
            let mut gone = 0u64;
            for tail in chunk {
                if let Some(e) = self.indexed_entry(name, tail)? {
                    self.unindex_in_feeds(&e, &mut batch);
                    shared.remove_entry(self, &e, &mut batch)?;
                    gone += 1;
                }
            }
            // The count stays exact batch by batch (the store-wide limit sums the counts).
            if let Some(mut state) = state {
                state.entry_count = state.entry_count.saturating_sub(gone);
                state.oldest_entry = shared.oldest(self, name)?;
                batch.insert(state_key(name), encode(&state));
            }
            shared.write(self, &mut batch)?;
            self.db()?.apply_batch(batch)?;
        }
        let _guard = self.lock();
        // Back in the config since this pass began (a reload): what it stored since stays.
        if self
            .source_state_inner(name)?
            .is_some_and(|s| s.removed_at.is_none())
        {
            return Ok(tails.len());
        }
        let mut batch = sled::Batch::default();
        let mut notes = crate::store::search::Notes::default();
        // Entries that could not be read go with their time index keys, and the rest.
        for k in self.db()?.scan_prefix(&prefix).keys() {
            let k = k?;
            if let Some(tail) = index_tail(&k) {
                batch.remove([keys::TIME, &tail[..]].concat());
                notes.note(name, &tail_key(&tail));
            }
            batch.remove(k);
        }
        notes.write(self, &mut batch)?;
        for p in [
            source_prefix(keys::LINK, name),
            source_prefix(keys::TOMB, name),
        ] {
            for k in self.db()?.scan_prefix(&p).keys() {
                batch.remove(k?);
            }
        }
        batch.remove(keys::manifest_key(name));
        batch.remove(state_key(name));
        self.db()?.apply_batch(batch)?;
        tracing::info!(
            source = name,
            entries = tails.len(),
            "deleted a source removed from the config"
        );
        Ok(tails.len())
    }

    /// A source's entries past its limits, newest first.
    fn doomed_in_source(
        &self,
        name: &str,
        limits: &Limits,
        now: DateTime<Utc>,
    ) -> Result<Vec<Doomed>, StoreError> {
        let cutoff = limits
            .keep_for
            .and_then(|d| chrono::Duration::from_std(d).ok())
            .and_then(|d| now.checked_sub_signed(d));
        let mut doomed = Vec::new();
        let prefix = source_prefix(keys::DATED, name);
        // Nothing to prune unless the source has more than `keep` entries or its oldest is
        // past the cutoff: the usual case, told from its state alone, so a pass costs one
        // read per source rather than one per entry.
        let state = self.source_state(name)?;
        let stored = state
            .as_ref()
            .map_or(0, |s| usize::try_from(s.entry_count).unwrap_or(usize::MAX));
        if stored <= limits.keep {
            // The state keeps the oldest entry's time; a store that predates it is read.
            let oldest = match state.and_then(|s| s.oldest_entry) {
                Some(t) => Some(t),
                None => match self.db()?.scan_prefix(&prefix).keys().next() {
                    Some(k) => index_time(&k?),
                    None => None,
                },
            };
            let aged = cutoff.is_some_and(|c| oldest.is_some_and(|t| t < c));
            if stored <= limits.keep_min || !aged {
                return Ok(doomed);
            }
        }
        for (i, item) in self.db()?.scan_prefix(&prefix).rev().enumerate() {
            let (k, v) = item?;
            let (Some(time), Some(tail)) = (index_time(&k), index_tail(&k)) else {
                continue;
            };
            if i >= limits.keep {
                doomed.push((name.to_string(), tail));
            } else if i >= limits.keep_min
                && let Some(cutoff) = cutoff
                && time < cutoff
                // The date is old; a recently found entry (a backlog) still stays its time.
                && keys::unpack(name, &k, &v).is_ok_and(|e| e.first_seen < cutoff)
            {
                doomed.push((name.to_string(), tail));
            }
        }
        Ok(doomed)
    }

    /// The oldest entries past the store-wide limit.
    fn doomed_overall(&self, keep_total: usize) -> Result<Vec<Doomed>, StoreError> {
        let excess = self.stored_total()?.saturating_sub(keep_total);
        if excess == 0 {
            return Ok(Vec::new());
        }
        let mut doomed = Vec::with_capacity(excess);
        for item in self.db()?.scan_prefix(keys::TIME).take(excess) {
            let (k, v) = item?;
            // The time index records each entry's source.
            if let (Some(tail), Ok(source)) = (index_tail(&k), std::str::from_utf8(&v)) {
                doomed.push((source.to_string(), tail));
            }
        }
        Ok(doomed)
    }

    /// How many entries the store holds: the sum of the sources' counts, which every write
    /// keeps exact (`verify` checks them against the entries), so no index is scanned.
    fn stored_total(&self) -> Result<usize, StoreError> {
        Ok(self
            .source_states_with(|_, s| Some(usize::try_from(s.entry_count).unwrap_or(usize::MAX)))?
            .into_iter()
            .map(|(_, n)| n)
            .fold(0, usize::saturating_add))
    }

    /// Deletes entries, leaving tombstones, in batches; counts them in the report.
    fn bury_all(
        &self,
        doomed: Vec<Doomed>,
        plan: &PrunePlan,
        report: &mut PruneReport,
    ) -> Result<(), StoreError> {
        for chunk in doomed.chunks(DELETE_CHUNK) {
            if plan.stopped() {
                break;
            }
            let _guard = self.lock();
            let mut batch = sled::Batch::default();
            let mut shared = Shared::default();
            let mut per_source: HashMap<String, u64> = HashMap::new();
            for (source, tail) in chunk {
                // Read again under the lock: a poll may have changed it since (an entry
                // whose time changed is pruned by a later pass, if it still should be).
                let e = match self.entry_at(source, &keys::tail_time(tail), &tail_key(tail)) {
                    Ok(Some(e)) => e,
                    Ok(None) => continue,
                    // Unreadable (a damaged disk): it goes by its keys, or every pass
                    // would stop on it.
                    Err(StoreError::Damaged { key, error }) => {
                        tracing::warn!(%key, %error, "an unreadable entry is pruned by its keys");
                        *per_source.entry(source.clone()).or_default() += 1;
                        *report.pruned.entry(source.clone()).or_default() += 1;
                        if !plan.dry_run {
                            let key = tail_key(tail);
                            batch.remove(keys::tail_entry_key(source, tail));
                            batch.remove([keys::TIME, &tail[..]].concat());
                            shared.manifest_mut(self, source)?.remove(&key);
                            shared.note(source, &key);
                            batch.insert(tomb_key(source, &key), tomb_value(plan.now, None));
                        }
                        continue;
                    }
                    Err(other) => return Err(other),
                };
                *per_source.entry(e.source.clone()).or_default() += 1;
                *report.pruned.entry(e.source.clone()).or_default() += 1;
                if plan.dry_run {
                    continue;
                }
                self.bury(&e, plan.now, &mut batch, &mut shared)?;
            }
            if plan.dry_run {
                continue;
            }
            for (source, n) in per_source {
                if let Some(mut state) = self.source_state(&source)? {
                    state.entry_count = state.entry_count.saturating_sub(n);
                    state.oldest_entry = shared.oldest(self, &source)?;
                    batch.insert(state_key(&source), encode(&state));
                }
            }
            shared.write(self, &mut batch)?;
            self.db()?.apply_batch(batch)?;
        }
        Ok(())
    }

    /// Removes an entry, leaving its tombstone (and its link, so the same article under
    /// a new guid stays pruned too).
    fn bury(
        &self,
        e: &Entry,
        now: DateTime<Utc>,
        batch: &mut sled::Batch,
        shared: &mut Shared,
    ) -> Result<(), StoreError> {
        self.unindex_in_feeds(e, batch);
        shared.remove_entry(self, e, batch)?;
        batch.insert(tomb_key(&e.source, &e.key), tomb_value(now, e.article));
        if let Some(article) = e.article {
            batch.insert(link_key(&e.source, &article), &e.key.0);
        }
        Ok(())
    }

    fn expire_tombstones(
        &self,
        plan: &PrunePlan,
        report: &mut PruneReport,
    ) -> Result<(), StoreError> {
        let ttl = chrono::Duration::from_std(plan.tombstones_for).unwrap_or(chrono::TimeDelta::MAX);
        let mut expired = Vec::new();
        for item in self.db()?.scan_prefix(keys::TOMB) {
            let (k, v) = item?;
            if tomb_seen(&v).is_none_or(|seen| plan.now - seen >= ttl) {
                expired.push((k, tomb_article(&v)));
            }
        }
        report.tombstones_expired = expired.len();
        if plan.dry_run {
            return Ok(());
        }
        for chunk in expired.chunks(DELETE_CHUNK) {
            let _guard = self.lock();
            let mut batch = sled::Batch::default();
            for (k, article) in chunk {
                // Seen again since the scan (a poll refreshed it): it stays.
                let ttl_left = self
                    .db()?
                    .get(k)?
                    .and_then(|v| tomb_seen(&v))
                    .is_some_and(|seen| plan.now - seen < ttl);
                if ttl_left {
                    continue;
                }
                // `x/{source}\0{key}`: the link key points at the entry key for guid changes.
                if let Some(article) = article
                    && let Some(source) = keys::key_source(k, keys::TOMB, 16)
                    && let Ok(source) = std::str::from_utf8(source)
                    && let Some(key) = key_at_end(k)
                {
                    let lkey = link_key(source, article);
                    if self
                        .db()?
                        .get(&lkey)?
                        .is_some_and(|v| v.as_ref() == &key.0[..])
                    {
                        batch.remove(lkey);
                    }
                }
                batch.remove(k.clone());
            }
            self.db()?.apply_batch(batch)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::{entry, temp_store};

    pub(super) const DAY: Duration = Duration::from_secs(24 * 3600);

    /// `n` entries of source "s", one a minute from 2025-01-01T00:00 (wrapping at 60),
    /// with guids g0.. and, when given, a link each.
    pub(super) fn entries(range: std::ops::Range<u32>) -> Vec<Entry> {
        range
            .map(|i| {
                let mut e = entry(&format!("g{i}"), i % 60, &format!("T{i}"));
                e.published = e
                    .published
                    .map(|t| t + chrono::Duration::hours(i as i64 / 60));
                e.article = Some(
                    *blake3::hash(format!("link{i}").as_bytes())
                        .as_bytes()
                        .first_chunk()
                        .expect("16"),
                );
                e
            })
            .collect()
    }

    pub(super) fn poll_as(
        store: &Store,
        source: &str,
        mut polled: Vec<Entry>,
        now: DateTime<Utc>,
    ) -> crate::model::PollCounts {
        for e in &mut polled {
            e.source = source.into();
        }
        crate::store::tests::poll_as(store, source, polled, now)
    }

    pub(super) fn poll(
        store: &Store,
        polled: Vec<Entry>,
        now: DateTime<Utc>,
    ) -> crate::model::PollCounts {
        crate::store::tests::poll_as(store, "s", polled, now)
    }

    pub(super) fn plan(now: DateTime<Utc>, limits: Limits) -> PrunePlan {
        PrunePlan {
            sources: vec![("s".into(), limits)],
            keep_total: 1_000_000,
            removed_after: 7 * DAY,
            tombstones_for: 90 * DAY,
            now,
            dry_run: false,
            stop: None,
            confirmed: false,
        }
    }

    /// What `plan` would do, as a dry run.
    pub(super) fn dry_run(store: &Store, plan: PrunePlan) -> PruneReport {
        store
            .prune(&PrunePlan {
                dry_run: true,
                ..plan
            })
            .expect("dry run")
    }

    pub(super) fn titles(store: &Store) -> Vec<String> {
        let page = store.page(Some("s"), None, 1000, |_| true).expect("reads");
        page.entries.into_iter().map(|e| e.title).collect()
    }

    pub(super) const KEEP_ALL: Limits = Limits {
        keep: usize::MAX,
        keep_for: None,
        keep_min: 0,
    };

    #[test]
    fn count_limit_keeps_the_newest_and_tombstones_stop_them_coming_back() {
        let (_dir, store) = temp_store();
        let now = Utc::now();
        assert_eq!(poll(&store, entries(0..20), now).new, 20);
        let limits = Limits {
            keep: 5,
            ..KEEP_ALL
        };
        let dry = dry_run(&store, plan(now, limits));
        assert_eq!(dry.pruned["s"], 15);
        assert_eq!(titles(&store).len(), 20, "a dry run changes nothing");

        let report = store.prune(&plan(now, limits)).expect("prunes");
        assert_eq!(report.pruned["s"], 15);
        assert_eq!((report.entries, report.tombstones), (5, 15));
        assert_eq!(titles(&store), ["T19", "T18", "T17", "T16", "T15"]);
        let state = store.source_state("s").expect("state").expect("some");
        assert_eq!(state.entry_count, 5);
        // The state knows the oldest left, so the next pass reads no entry to skip it.
        let t15 = entries(15..16)[0].sort_time();
        assert_eq!(state.oldest_entry, Some(t15));

        // The feed still lists all 20: the pruned 15 are not stored again.
        let c = poll(&store, entries(0..20), now);
        assert_eq!((c.new, c.pruned, c.unchanged), (0, 15, 5));
        // Nor when the publisher changes their guids (same links).
        let renamed: Vec<Entry> = entries(0..20)
            .into_iter()
            .map(|mut e| {
                e.key = crate::feed::identity::entry_key("s", "guid", &format!("new-{}", e.title));
                e
            })
            .collect();
        let c = poll(&store, renamed, now);
        assert_eq!((c.new, c.pruned), (0, 15), "{c:?}");
        let v = store.verify().expect("verifies");
        assert!(v.problems.is_empty(), "{:?}", v.problems);
    }

    #[test]
    fn age_limit_spares_recent_finds_and_the_newest_few() {
        let (dir, store) = temp_store();
        // Entries dated 2025, first seen then too.
        let then = DateTime::parse_from_rfc3339("2025-01-02T00:00:00Z")
            .expect("date")
            .with_timezone(&Utc);
        poll(&store, entries(0..10), then);
        let limits = Limits {
            keep: 1000,
            keep_for: Some(30 * DAY),
            keep_min: 3,
        };
        // A backlog found today, dated long ago, stays its 30 days.
        let today = Utc::now();
        let late = Store::open(&dir.path().join("other"), 1 << 20).expect("opens");
        let found: Vec<Entry> = entries(0..10)
            .into_iter()
            .map(|mut e| {
                e.first_seen = today;
                e
            })
            .collect();
        poll(&late, found, today);
        assert_eq!(
            late.prune(&plan(today, limits))
                .expect("prunes")
                .pruned_total(),
            0
        );

        let report = store.prune(&plan(today, limits)).expect("prunes");
        assert_eq!(report.pruned["s"], 7);
        assert_eq!(
            titles(&store),
            ["T9", "T8", "T7"],
            "keep_min spares the newest"
        );
        // Forever keeps everything.
        let report = store
            .prune(&plan(
                today,
                Limits {
                    keep_min: 0,
                    keep_for: None,
                    keep: 1000,
                },
            ))
            .expect("prunes");
        assert_eq!(report.pruned_total(), 0);
    }

    #[test]
    fn store_wide_limit_prunes_the_oldest_of_all_sources() {
        let (_dir, store) = temp_store();
        let now = Utc::now();
        poll(&store, entries(0..30), now);
        let mut p = plan(now, KEEP_ALL);
        p.keep_total = 12;
        let report = store.prune(&p).expect("prunes");
        assert_eq!((report.pruned_total(), report.entries), (18, 12));
        assert_eq!(titles(&store).first().map(String::as_str), Some("T29"));
        assert_eq!(titles(&store).last().map(String::as_str), Some("T18"));
    }

    #[test]
    fn an_unreadable_entry_is_pruned_by_its_keys() {
        let (_dir, store) = temp_store();
        let now = Utc::now();
        poll(&store, entries(0..10), now);
        // The oldest entry's bytes damaged on disk.
        let oldest = keys::entry_key(&entries(0..1)[0]);
        let db = store.db().expect("open");
        db.insert(&oldest, &b"\x01damaged"[..]).expect("writes");
        let limits = Limits {
            keep: 2,
            ..KEEP_ALL
        };
        let report = store
            .prune(&plan(now, limits))
            .expect("a pass is not stopped by it");
        assert_eq!(report.pruned["s"], 8);
        assert!(!db.contains_key(&oldest).expect("reads"));
        let v = store.verify().expect("verifies");
        assert!(v.problems.is_empty(), "{:?}", v.problems);
        assert_eq!(v.entries, 2);
    }

    #[test]
    fn tombstones_expire_when_no_longer_seen() {
        let (_dir, store) = temp_store();
        let now = Utc::now();
        poll(&store, entries(0..10), now);
        store
            .prune(&plan(
                now,
                Limits {
                    keep: 2,
                    ..KEEP_ALL
                },
            ))
            .expect("prunes");
        let links = || store.db().expect("open").scan_prefix(b"l/").count();
        assert_eq!(
            links(),
            8,
            "a pruned entry's link is kept with its tombstone"
        );
        let later = now + chrono::Duration::days(91);
        let report = store
            .prune(&plan(
                later,
                Limits {
                    keep: 2,
                    ..KEEP_ALL
                },
            ))
            .expect("prunes");
        assert_eq!((report.tombstones_expired, report.tombstones), (8, 0));
        assert_eq!(links(), 0, "their link keys went too");
    }

    #[test]
    fn removed_sources_are_hidden_then_deleted_unless_they_return() {
        let (_dir, store) = temp_store();
        let now = Utc::now();
        poll(&store, entries(0..10), now);
        let gone = |at| PrunePlan {
            sources: vec![],
            ..plan(at, KEEP_ALL)
        };
        let report = store.prune(&gone(now)).expect("prunes");
        assert!(report.removed_pending.contains_key("s"));
        assert_eq!(report.entries, 10, "kept while it may come back");
        // It comes back: unmarked.
        store.prune(&plan(now, KEEP_ALL)).expect("prunes");
        assert_eq!(
            store
                .source_state("s")
                .expect("state")
                .expect("some")
                .removed_at,
            None
        );
        // Removed again, and the grace runs out.
        store.prune(&gone(now)).expect("prunes");
        let report = store
            .prune(&gone(now + chrono::Duration::days(8)))
            .expect("prunes");
        assert_eq!(report.deleted_sources["s"], 10);
        assert_eq!(report.entries, 0);
        assert!(store.source_state("s").expect("state").is_none());
        for prefix in [&b"e/"[..], b"t/", b"s/", b"l/", b"x/", b"a/"] {
            assert_eq!(
                store.db().expect("open").scan_prefix(prefix).count(),
                0,
                "{prefix:?} left behind"
            );
        }
    }

    /// Steady churn: a feed that moves on by 50 entries each poll, with retention keeping
    /// 100. The store's size on disk levels off instead of growing with what went through.
    #[test]
    fn disk_size_stays_bounded_under_churn() {
        let (_dir, store) = temp_store();
        let now = Utc::now();
        let limits = Limits {
            keep: 100,
            ..KEEP_ALL
        };
        let mut p = plan(now, limits);
        // Tombstones of entries gone from the feed expire at once here, as they would
        // after `tombstones_for` in real use.
        p.tombstones_for = Duration::from_millis(1);
        let mut sizes = Vec::new();
        for round in 0..300u32 {
            let mut polled = entries(round * 50..round * 50 + 100);
            for e in &mut polled {
                e.content = Some("x".repeat(2000));
            }
            poll(&store, polled, now);
            p.now = now + chrono::Duration::seconds(round as i64);
            store.prune(&p).expect("prunes");
            // The search index takes its journal in, as the daemon's indexer does.
            store.index_all_pending().expect("indexes");
            if round % 50 == 49 {
                store.flush().expect("flushes");
                sizes.push(store.db().expect("open").size_on_disk().expect("size"));
            }
        }
        // 15,000 entries of 2 KB went through (30 MB); 100 are kept.
        let (first, last) = (sizes[0], sizes[sizes.len() - 1]);
        assert!(
            last <= first * 3 / 2,
            "the store grows with churn: {sizes:?}"
        );
        let v = store.verify().expect("verifies");
        assert!(v.problems.is_empty(), "{:?}", v.problems);
        assert_eq!(v.entries, 100);
    }

    /// A `tombstones_for` shorter than a day: polls refresh tombstones at a quarter of it,
    /// so entries the feed still lists never come back.
    #[test]
    fn short_tombstone_lifetimes_are_kept_alive_by_polls() {
        let (_dir, store) = temp_store();
        let twelve_hours = Duration::from_secs(12 * 3600);
        store.set_tombstone_ttl(twelve_hours);
        let now = Utc::now();
        poll(&store, entries(0..10), now);
        let mut p = plan(
            now,
            Limits {
                keep: 2,
                ..KEEP_ALL
            },
        );
        p.tombstones_for = twelve_hours;
        store.prune(&p).expect("prunes");
        for hours in [4, 8, 12, 16, 20] {
            let at = now + chrono::Duration::hours(hours);
            let c = poll(&store, entries(0..10), at);
            assert_eq!((c.new, c.pruned), (0, 8), "at +{hours}h: {c:?}");
            p.now = at + chrono::Duration::hours(1);
            store.prune(&p).expect("prunes");
        }
    }

    /// Pruning the entry an article is credited to lets the other sources' copies show in
    /// the combined feeds again (the selection serve/feeds.rs makes).
    #[test]
    fn pruning_a_credited_entry_uncovers_its_duplicates() {
        let (_dir, store) = temp_store();
        let now = Utc::now();
        let shared = |source: &str| {
            let mut e = entries(0..1).remove(0);
            e.source = source.into();
            e.key = crate::feed::identity::entry_key(source, "guid", "shared");
            e
        };
        let mut newer = entries(5..6).remove(0);
        newer.source = "a".into();
        newer.key = crate::feed::identity::entry_key("a", "guid", "newer");
        newer.published = newer.published.map(|t| t + chrono::Duration::days(1));
        poll_as(&store, "a", vec![shared("a"), newer], now);
        poll_as(&store, "b", vec![shared("b")], now);
        let chosen = ["a", "b"];
        let combined = |store: &Store| -> Vec<String> {
            let page = store
                .page(None, None, 100, |e| {
                    chosen.contains(&e.source.as_str())
                        && e.duplicate_of.as_ref().is_none_or(|c| {
                            !chosen.contains(&c.source.as_str())
                                || !store.has_entry(&c.source, &c.key)
                        })
                })
                .expect("page");
            page.entries
                .iter()
                .map(|e| format!("{}:{}", e.source, e.title))
                .collect()
        };
        assert_eq!(
            combined(&store),
            ["a:T5", "a:T0"],
            "b's copy is a duplicate"
        );
        let mut p = plan(now, KEEP_ALL);
        p.sources = vec![
            (
                "a".into(),
                Limits {
                    keep: 1,
                    ..KEEP_ALL
                },
            ),
            ("b".into(), KEEP_ALL),
        ];
        let report = store.prune(&p).expect("prunes");
        assert_eq!(report.pruned.get("a"), Some(&1), "{report:?}");
        assert_eq!(
            combined(&store),
            ["a:T5", "b:T0"],
            "b's copy shows once a's is gone"
        );
    }
}
