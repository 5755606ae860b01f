//! Applying a batch of remote changes: validate everything first, then merge the
//! whole batch in one transaction and report what actually changed.
//!
//! This module owns the remote write path: clock-drift checks, the Lamport
//! update of the local HLC, and the persisted clock mark. Merge rules are the
//! core's; nothing here decides who wins.

use crate::error::StoreError;
use crate::rows::{self, TxnStamp};
use crate::{RecordKey, Store, now_ms};
use rusqlite::params;
use shoal_core::{Change, DbVersion, SlotVersion, Verdict};
use std::collections::BTreeMap;

/// What applying a remote batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Slot versions that won and are now stored.
    pub applied: usize,
    /// Versions ignored because they were written in an older life of the record.
    pub stale: usize,
    /// Versions ignored because an equal or newer one is already stored.
    pub not_newer: usize,
    /// The local db_version the batch was committed at; `None` if nothing changed.
    pub version: Option<DbVersion>,
    /// Records whose state changed, in key order.
    pub changed: Vec<RecordKey>,
}

impl Store {
    /// Merges a batch of changes from another replica in one transaction.
    ///
    /// The whole batch is refused, with nothing written, if any change is
    /// malformed, over the value cap, or carries a clock further ahead of local
    /// time than the allowed drift. Applying the same batch twice changes nothing
    /// the second time.
    pub fn apply(&mut self, changes: &[Change]) -> Result<ApplyReport, StoreError> {
        let now = now_ms();
        let cap = self.config.max_value_bytes;
        for change in changes {
            change.validate(cap)?;
            self.hlc.check(change.clock.hlc, now)?;
        }
        let mut by_record: BTreeMap<RecordKey, Vec<&Change>> = BTreeMap::new();
        for change in changes {
            by_record
                .entry((change.collection.clone(), change.id.clone()))
                .or_default()
                .push(change);
        }
        let mut report = ApplyReport::default();
        let mut stamp = TxnStamp::new(self.db_version);
        let mut observed = self.hlc.clone();
        let tx = self.conn.transaction()?;
        for ((collection, id), record_changes) in by_record {
            let cid = rows::collection_id(&tx, &collection, true)?.unwrap_or_default();
            let loaded = rows::load(&tx, cid, &id)?;
            let mut after = loaded.state.clone();
            for change in record_changes {
                let version = SlotVersion {
                    value: change.value.clone(),
                    clock: change.clock,
                    life: change.life,
                };
                match after.apply(change.slot.clone(), version) {
                    Verdict::Applied => report.applied += 1,
                    Verdict::StaleLife => report.stale += 1,
                    Verdict::NotNewer => report.not_newer += 1,
                }
                observed.observe(change.clock.hlc, now)?;
            }
            if rows::save(&tx, cid, &id, &loaded, &after, &mut stamp)? {
                report.changed.push((collection, id));
            }
        }
        if stamp.taken().is_some() {
            tx.prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES ('hlc', ?1)")?
                .execute(params![observed.last().packed().to_be_bytes().to_vec()])?;
        }
        tx.commit()?;
        self.hlc = observed;
        report.version = stamp.taken();
        if let Some(v) = report.version {
            self.db_version = v;
        }
        Ok(report)
    }
}
