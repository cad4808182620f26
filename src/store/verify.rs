//! Verifying the store: checks the invariants the layout promises (every index key has its
//! entry, every entry both its index keys, counts match, named-feed indexes agree) without
//! changing anything (`tributary verify`).

use std::collections::{HashMap, HashSet};

use super::keys::{self, decode, entry_key, hex, source_time_key, time_key};
use super::{Store, StoreError};
use crate::model::Entry;

/// What [`Store::verify`] found.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct VerifyReport {
    pub entries: usize,
    pub sources: usize,
    pub tombstones: usize,
    /// Every broken invariant, as a sentence.
    pub problems: Vec<String>,
}

impl Store {
    /// Checks the layout's invariants; changes nothing.
    pub fn verify(&self) -> Result<VerifyReport, StoreError> {
        let mut report = VerifyReport::default();
        let mut counts: HashMap<String, u64> = HashMap::new();
        let mut seen = HashSet::new();
        for item in self.db()?.scan_prefix(keys::ENTRY) {
            let (k, v) = item?;
            let e: Entry = match decode(&k, &v) {
                Ok(e) => e,
                Err(err) => {
                    report.problems.push(err.to_string());
                    continue;
                }
            };
            report.entries += 1;
            if *k != *entry_key(&e.source, &e.key) {
                report.problems.push(format!(
                    "entry {} is stored under another key",
                    hex(&e.key.0)
                ));
            }
            if !seen.insert(e.key) {
                report
                    .problems
                    .push(format!("entry {} appears twice", hex(&e.key.0)));
            }
            *counts.entry(e.source.clone()).or_default() += 1;
            for index in [time_key(&e), source_time_key(&e)] {
                if !self.db()?.contains_key(&index)? {
                    report.problems.push(format!(
                        "entry {} of {} is missing from the index {}",
                        hex(&e.key.0),
                        e.source,
                        String::from_utf8_lossy(&index[..2])
                    ));
                }
            }
        }
        for prefix in [keys::TIME, keys::SOURCE_TIME] {
            let mut indexed = 0usize;
            for item in self.db()?.scan_prefix(prefix) {
                let (k, v) = item?;
                indexed += 1;
                // The source: in the time index, the value; in a source's, the key.
                let source = if prefix == keys::TIME {
                    std::str::from_utf8(&v).ok()
                } else {
                    keys::key_source(&k, prefix, keys::TAIL)
                        .and_then(|s| std::str::from_utf8(s).ok())
                };
                match (source, keys::key_at_end(&k)) {
                    (Some(source), Some(key))
                        if self.db()?.contains_key(entry_key(source, &key))? => {}
                    _ => report
                        .problems
                        .push(format!("index key {} points at no entry", hex(&k))),
                }
            }
            if indexed != report.entries {
                report.problems.push(format!(
                    "the {} index has {indexed} keys for {} entries",
                    String::from_utf8_lossy(prefix),
                    report.entries
                ));
            }
        }
        for (name, state) in self.source_states()? {
            report.sources += 1;
            let stored = counts.remove(&name).unwrap_or(0);
            if state.entry_count != stored {
                report.problems.push(format!(
                    "source {name} counts {} entries but has {stored}",
                    state.entry_count
                ));
            }
        }
        for (name, n) in counts {
            report
                .problems
                .push(format!("{n} entries belong to {name}, which has no state"));
        }
        report.tombstones = self.db()?.scan_prefix(keys::TOMB).keys().count();
        report.problems.extend(self.verify_feed_indexes()?);
        Ok(report)
    }
}
