//! The hold on a retention pass that would remove most of the store.
//!
//! A pass that would remove most of the store (more than half of all entries, or of one
//! source's, and at least [`HOLD_AT_LEAST`] entries) because the limits were tightened
//! since the last pass that ran (`meta/prune_limits` records them) does not run unless
//! the plan is `confirmed` (`tributary prune --confirm`): it is *held*, nothing is
//! deleted, and the hold is recorded in the store (`meta/prune_held`, a [`HeldPass`]) for
//! `status`, `/healthz` and `/metrics` until a pass runs. Limits that did not change never
//! hold a pass: a busy source losing most of its entries to its own `keep` every pass, or a
//! new source's backlog, is ordinary pruning. Removed sources' deletion after
//! `removed_after` is not counted (their grace period was the safety).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{Limits, PrunePlan, PruneReport};
use crate::store::keys::{self, decode, encode};
use crate::store::{Store, StoreError};

/// A pass that would prune fewer entries than this is never held, however large a share of
/// the store they are (a small store's ordinary pruning).
pub const HOLD_AT_LEAST: usize = 100;

/// The limits a pass ran with, to tell tightened limits from steady pruning.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
struct RanWith {
    keep_total: usize,
    sources: BTreeMap<String, Limits>,
}

impl RanWith {
    /// The limits of `plan`, and for every source that is not in it but still has entries
    /// in the store (`counts` before the pass, less the sources it `deleted`): unlimited, as
    /// a removed source's entries are kept until `removed_after`. So a removed source that
    /// comes back with tight limits counts as tightened, not as new.
    fn of(
        plan: &PrunePlan,
        counts: &BTreeMap<String, usize>,
        deleted: &BTreeMap<String, usize>,
    ) -> RanWith {
        let mut sources: BTreeMap<String, Limits> = plan.sources.iter().cloned().collect();
        for (name, &count) in counts {
            if count > 0 && !sources.contains_key(name) && !deleted.contains_key(name) {
                sources.insert(
                    name.clone(),
                    Limits {
                        keep: usize::MAX,
                        keep_for: None,
                        keep_min: usize::MAX,
                    },
                );
            }
        }
        RanWith {
            keep_total: plan.keep_total,
            sources,
        }
    }

    /// Whether `source` may keep fewer entries under `plan` than it could before (a source
    /// with no earlier limits was not tightened: it is new, it had no entries at the last
    /// pass; one that was removed but kept its entries was recorded as unlimited).
    fn tightened(&self, plan: &PrunePlan, source: &str) -> bool {
        let was = self.sources.get(source);
        let now = plan
            .sources
            .iter()
            .find(|(n, _)| n == source)
            .map(|(_, l)| l);
        let limits = match (was, now) {
            (Some(was), Some(now)) => {
                now.keep < was.keep
                    || now.keep_min < was.keep_min
                    || match (was.keep_for, now.keep_for) {
                        (None, Some(_)) => true,
                        (Some(a), Some(b)) => b < a,
                        _ => false,
                    }
            }
            _ => false,
        };
        limits || plan.keep_total < self.keep_total
    }
}

/// A retention pass that would have removed most of the store, held for the operator's
/// confirmation (`tributary prune --confirm`).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HeldPass {
    /// When a pass was first held (kept while passes stay held).
    pub since: DateTime<Utc>,
    /// When it was last held.
    pub last: DateTime<Utc>,
    /// Entries the pass would prune.
    pub would_prune: usize,
    /// Entries in the store.
    pub entries: usize,
    /// Per source: entries it would lose, of how many.
    pub sources: BTreeMap<String, (usize, usize)>,
    /// Why, as a sentence for the log and status.
    pub reason: String,
}

/// Whether a pass that would prune what `would` says (a dry run's report) removes most of
/// the store (or of one source, by its count in `counts`): more than half, and at least
/// [`HOLD_AT_LEAST`] entries.
/// Only sources whose limits were tightened since the last pass that ran (`before`; none
/// recorded: nothing was) count, and the store as a whole only if some were.
fn mass_removal(
    would: &PruneReport,
    counts: &BTreeMap<String, usize>,
    plan: &PrunePlan,
    before: Option<&RanWith>,
) -> Option<HeldPass> {
    let before = before?;
    let total: usize = counts.values().copied().fold(0, usize::saturating_add);
    let pruned = would.pruned_total();
    let most = |gone: usize, of: usize| gone >= HOLD_AT_LEAST && gone.saturating_mul(2) > of;
    let tightened: Vec<&String> = would
        .pruned
        .keys()
        .filter(|name| before.tightened(plan, name))
        .collect();
    let sources: BTreeMap<String, (usize, usize)> = tightened
        .iter()
        .map(|name| {
            let gone = would.pruned.get(*name).copied().unwrap_or(0);
            (
                (*name).clone(),
                (gone, counts.get(*name).copied().unwrap_or(0)),
            )
        })
        .filter(|(_, (gone, of))| most(*gone, *of))
        .collect();
    let reason = if !tightened.is_empty() && most(pruned, total) {
        format!(
            "it would remove {pruned} of the store's {total} entries (the limits were tightened since the last pass)"
        )
    } else if let Some((name, (gone, of))) = sources.iter().next() {
        format!(
            "it would remove {gone} of source {name}'s {of} entries (its limits were tightened since the last pass)"
        )
    } else {
        return None;
    };
    let now = plan.now;
    Some(HeldPass {
        since: now,
        last: now,
        would_prune: pruned,
        entries: total,
        sources,
        reason,
    })
}

impl Store {
    /// The pass held for confirmation, if the last one was.
    pub fn held_prune(&self) -> Result<Option<HeldPass>, StoreError> {
        match self.db()?.get(keys::PRUNE_HELD)? {
            Some(v) => Ok(decode::<HeldPass>(keys::PRUNE_HELD, &v).ok()),
            None => Ok(None),
        }
    }

    /// A dry run first: a pass that would remove most of the store is held unless
    /// confirmed (see the module docs).
    pub(super) fn prune_guarded(&self, plan: &PrunePlan) -> Result<PruneReport, StoreError> {
        let counts: BTreeMap<String, usize> = self
            .source_states_with(|_, s| Some(usize::try_from(s.entry_count).unwrap_or(usize::MAX)))?
            .into_iter()
            .collect();
        let before = match self.db()?.get(keys::PRUNE_LIMITS)? {
            Some(v) => decode::<RanWith>(keys::PRUNE_LIMITS, &v).ok(),
            None => None,
        };
        if plan.dry_run {
            let mut report = self.prune_inner(plan)?;
            if !plan.confirmed {
                report.held = mass_removal(&report, &counts, plan, before.as_ref());
            }
            return Ok(report);
        }
        // Only tightened limits can hold a pass (see `mass_removal`): without them the dry
        // run would be a whole pass for nothing.
        let may_hold = before.as_ref().is_some_and(|b| {
            plan.keep_total < b.keep_total || plan.sources.iter().any(|(n, _)| b.tightened(plan, n))
        });
        if !plan.confirmed && may_hold {
            let would = self.prune_inner(&PrunePlan {
                dry_run: true,
                ..plan.clone()
            })?;
            if let Some(mut held) = mass_removal(&would, &counts, plan, before.as_ref()) {
                if let Some(before) = self.held_prune()? {
                    held.since = before.since;
                }
                let _guard = self.lock();
                self.db()?.insert(keys::PRUNE_HELD, encode(&held))?;
                return Ok(PruneReport {
                    tombstones: would.tombstones,
                    entries: would.entries,
                    held: Some(held),
                    ..PruneReport::default()
                });
            }
        }
        let report = self.prune_inner(plan)?;
        if !plan.stopped() {
            let _guard = self.lock();
            let mut batch = sled::Batch::default();
            batch.remove(keys::PRUNE_HELD);
            let ran = RanWith::of(plan, &counts, &report.deleted_sources);
            batch.insert(keys::PRUNE_LIMITS, encode(&ran));
            self.db()?.apply_batch(batch)?;
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::*;
    use super::*;
    use crate::store::tests::temp_store;
    use chrono::Utc;

    /// A pass that would remove most of the store is held (nothing changes, the hold is
    /// recorded) until confirmed; a dry run says it would be held.
    #[test]
    fn a_pass_removing_most_of_the_store_waits_for_confirmation() {
        let (_dir, store) = temp_store();
        let now = Utc::now();
        assert_eq!(poll(&store, entries(0..300), now).new, 300);
        let tight = Limits {
            keep: 10,
            ..KEEP_ALL
        };
        // The first pass a store sees has nothing to compare with: nothing is held
        // (a dry run of it shows that too).
        let dry = dry_run(&store, plan(now, tight));
        assert_eq!((dry.pruned["s"], dry.held), (290, None));
        let report = store.prune(&plan(now, KEEP_ALL)).expect("prunes");
        assert_eq!((report.pruned_total(), report.held), (0, None));

        let dry = dry_run(&store, plan(now, tight));
        assert_eq!(dry.pruned["s"], 290);
        let held = dry.held.expect("a dry run says the pass would be held");
        assert_eq!((held.would_prune, held.entries), (290, 300));
        assert_eq!(
            store.held_prune().expect("reads"),
            None,
            "a dry run records nothing"
        );

        let report = store.prune(&plan(now, tight)).expect("held");
        assert_eq!(report.pruned_total(), 0);
        let held = report.held.expect("held");
        assert!(
            held.reason.contains("290 of the store's 300"),
            "{}",
            held.reason
        );
        assert_eq!(held.sources.get("s"), Some(&(290, 300)));
        assert_eq!(titles(&store).len(), 300, "nothing deleted");
        assert_eq!(store.held_prune().expect("reads"), Some(held.clone()));
        // Held again later: the hold keeps its first time.
        let later = now + chrono::Duration::hours(1);
        let again = store.prune(&plan(later, tight)).expect("held");
        assert_eq!(
            again.held.as_ref().map(|h| (h.since, h.last)),
            Some((now, later))
        );

        // A pass removing a minority runs, whatever the size.
        let half = Limits {
            keep: 150,
            ..KEEP_ALL
        };
        let report = store.prune(&plan(now, half)).expect("prunes");
        assert_eq!((report.pruned["s"], report.held), (150, None));
        assert_eq!(
            store.held_prune().expect("reads"),
            None,
            "a pass that ran clears the hold"
        );

        let report = store.prune(&plan(now, tight)).expect("held");
        assert!(report.held.is_some());
        let report = store
            .prune(&PrunePlan {
                confirmed: true,
                ..plan(now, tight)
            })
            .expect("prunes");
        assert_eq!((report.pruned["s"], report.held), (140, None));
        assert_eq!(titles(&store).len(), 10);
        assert_eq!(store.held_prune().expect("reads"), None);

        // Unchanged limits never hold a pass: a busy source losing most of its entries to
        // its own `keep` at every pass is ordinary pruning.
        assert_eq!(poll(&store, entries(1000..1300), now).new, 300);
        let report = store.prune(&plan(now, tight)).expect("prunes");
        assert_eq!((report.pruned["s"], report.held), (300, None));
        assert!(store.verify().expect("verifies").problems.is_empty());
    }

    /// A source removed for one pass (its entries kept, pending deletion) that comes back
    /// with tight limits is not "new": the pass waits for confirmation. A source that had no
    /// entries at the last pass is new and prunes without a hold.
    #[test]
    fn a_removed_source_returning_with_tight_limits_is_held() {
        let (_dir, store) = temp_store();
        let now = Utc::now();
        assert_eq!(poll(&store, entries(0..300), now).new, 300);
        assert_eq!(poll_as(&store, "other", entries(0..5), now).new, 5);
        let other = ("other".to_string(), KEEP_ALL);
        let report = store
            .prune(&PrunePlan {
                sources: vec![other.clone()],
                ..plan(now, KEEP_ALL)
            })
            .expect("a pass without s");
        assert_eq!((report.pruned_total(), report.held), (0, None));

        let tight = Limits {
            keep: 1,
            ..KEEP_ALL
        };
        let back = PrunePlan {
            sources: vec![("s".into(), tight), other.clone()],
            ..plan(now, KEEP_ALL)
        };
        let report = store.prune(&back).expect("held");
        assert_eq!(report.pruned_total(), 0);
        let held = report.held.expect("the hold is not bypassed");
        assert_eq!(held.sources.get("s"), Some(&(299, 300)));
        assert_eq!(titles(&store).len(), 300, "nothing deleted");

        // A brand-new source (no entries at the last pass) is not held.
        assert_eq!(poll_as(&store, "fresh", entries(0..50), now).new, 50);
        let report = store
            .prune(&PrunePlan {
                sources: vec![("s".into(), KEEP_ALL), other, ("fresh".into(), tight)],
                ..plan(now, KEEP_ALL)
            })
            .expect("prunes");
        assert_eq!((report.pruned["fresh"], report.held), (49, None));
    }
}
