//! Verifying the store: checks the invariants the layout promises (every index key has its
//! entry, every entry both its index keys, counts match, named-feed indexes agree) without
//! changing anything (`tributary verify`).

use std::collections::{HashMap, HashSet};

use super::codec::{Credits, Manifest, Placed};
use super::keys::{self, hex, time_bytes, time_key};
use super::{Store, StoreError};

/// What [`Store::verify`] found.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct VerifyReport {
    pub entries: usize,
    pub sources: usize,
    pub tombstones: usize,
    /// Every broken invariant, as a sentence.
    pub problems: Vec<String>,
    /// How the search index compares with the store (`None`: it could not be read).
    pub search: Option<super::search::SearchReport>,
}

impl Store {
    /// Checks the layout's invariants; changes nothing.
    pub fn verify(&self) -> Result<VerifyReport, StoreError> {
        let mut report = VerifyReport::default();
        let mut counts: HashMap<String, u64> = HashMap::new();
        let mut manifests: HashMap<String, Manifest> = HashMap::new();
        let mut seen = HashSet::new();
        let mut oldest: HashMap<String, chrono::DateTime<chrono::Utc>> = HashMap::new();
        for item in self.db()?.scan_prefix(keys::DATED) {
            let (k, v) = item?;
            let Some(source) = keys::key_source(&k, keys::DATED, keys::TAIL)
                .and_then(|s| std::str::from_utf8(s).ok())
            else {
                report
                    .problems
                    .push(format!("entry key {} names no source", hex(&k)));
                continue;
            };
            let e = match keys::unpack(source, &k, &v) {
                Ok(e) => e,
                Err(err) => {
                    report.problems.push(err.to_string());
                    continue;
                }
            };
            report.entries += 1;
            let time = time_bytes(e.sort_time());
            if *k != *keys::entry_key(&e) {
                report.problems.push(format!(
                    "entry {} is stored under another key",
                    hex(&e.key.0)
                ));
            }
            if !seen.insert((e.source.clone(), e.key)) {
                report.problems.push(format!(
                    "entry {} of {} appears twice",
                    hex(&e.key.0),
                    e.source
                ));
            }
            *counts.entry(e.source.clone()).or_default() += 1;
            let oldest = oldest.entry(e.source.clone()).or_insert(e.sort_time());
            *oldest = (*oldest).min(e.sort_time());
            if !self.db()?.contains_key(time_key(&e))? {
                report.problems.push(format!(
                    "entry {} of {} is missing from the time index",
                    hex(&e.key.0),
                    e.source
                ));
            }
            if !manifests.contains_key(source) {
                manifests.insert(source.to_string(), self.manifest(source)?);
            }
            let placed = manifests.get(source).and_then(|m| m.get(&e.key));
            if placed
                != Some(Placed {
                    time,
                    article: e.article,
                })
            {
                report.problems.push(format!(
                    "entry {} of {} is missing from its manifest, or placed elsewhere",
                    hex(&e.key.0),
                    e.source
                ));
            }
        }
        let mut indexed = 0usize;
        for item in self.db()?.scan_prefix(keys::TIME) {
            let (k, v) = item?;
            indexed += 1;
            match (std::str::from_utf8(&v), keys::index_tail(&k)) {
                (Ok(source), Some(tail))
                    if self
                        .db()?
                        .contains_key(keys::tail_entry_key(source, &tail))? => {}
                _ => report
                    .problems
                    .push(format!("index key {} points at no entry", hex(&k))),
            }
        }
        if indexed != report.entries {
            report.problems.push(format!(
                "the time index has {indexed} keys for {} entries",
                report.entries
            ));
        }
        let mut placed = 0usize;
        for item in self.db()?.scan_prefix(keys::MANIFEST) {
            let (k, v) = item?;
            let source = String::from_utf8_lossy(keys::manifest_source(&k)).to_string();
            match Manifest::unpack(&v) {
                Ok(m) => {
                    placed += m.len();
                    for (key, p) in m.iter() {
                        if !self
                            .db()?
                            .contains_key(keys::dated_key(&source, &p.time, key))?
                        {
                            report.problems.push(format!(
                                "the manifest of {source} lists {}, which is not stored",
                                hex(&key.0)
                            ));
                        }
                    }
                }
                Err(err) => report
                    .problems
                    .push(format!("the manifest of {source} is unreadable: {err}")),
            }
        }
        if placed != report.entries {
            report.problems.push(format!(
                "the manifests list {placed} entries of {}",
                report.entries
            ));
        }
        for item in self.db()?.scan_prefix(keys::CREDITS) {
            let (k, v) = item?;
            if let Err(err) = Credits::unpack(&v) {
                report.problems.push(format!(
                    "the credit bucket {} is unreadable: {err}",
                    hex(&k)
                ));
            }
        }
        for (name, state) in self.source_states()? {
            report.sources += 1;
            let stored = counts.remove(&name).unwrap_or(0);
            // Kept to the millisecond, as in the keys.
            let first = oldest
                .get(&name)
                .map(|t| t.timestamp_millis())
                .and_then(chrono::DateTime::from_timestamp_millis);
            if state.oldest_entry.is_some() && state.oldest_entry != first {
                report.problems.push(format!(
                    "source {name} says its oldest entry is from {:?} but it is from {first:?}",
                    state.oldest_entry
                ));
            }
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
