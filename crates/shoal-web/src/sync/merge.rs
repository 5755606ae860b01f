//! Merging a batch of a peer's changes into the tab's records, decided in
//! memory: what the native store's apply does (`shoal-store` apply.rs) on
//! the tab's rows — every change validated first (a malformed one, one over
//! the value cap, or one whose clock is too far ahead of local time refuses
//! the whole batch, nothing written), the devices collection's changes
//! passed through `shoal_core::devices::admissible`, each record merged by
//! `RecordState::apply` (the core's rules, never a rewrite), the records
//! that changed given consecutive new log versions (`log_read.rs`), and the
//! node clock raised past every clock seen.
//!
//! Pure: `idb/sync_apply.rs` loads the rows and stores the plan in one
//! transaction with the peer's cursor. Not here (said in docs/web.md): the
//! native store's conflict journal and its held-back table for clocks from
//! the future (the tab refuses such a batch instead, and the peer's cursor
//! stays where it was).

use crate::error::WebError;
use crate::meta::NodeMeta;
use crate::row::StoredRecord;
use shoal_core::devices::{DEVICES_COLLECTION, Issuers, admissible};
use shoal_core::{
    Change, CollectionName, DEFAULT_MAX_DRIFT_MS, DbVersion, HlcGenerator, RecordId, SlotVersion,
    Verdict,
};
use std::collections::{BTreeMap, HashMap};

/// Most bytes one value from a peer may take, as on native nodes
/// (`shoal-store`'s default `max_value_bytes`).
pub const MAX_VALUE_BYTES: usize = 1024 * 1024;

/// A record key: collection and id.
pub type RecordKey = (CollectionName, RecordId);

/// What merging a batch did (the native `ApplyReport`'s counts that apply to the tab).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MergeReport {
    /// Slot versions that won and are now stored.
    pub applied: usize,
    /// Versions ignored: written in an older life of the record.
    pub stale: usize,
    /// Versions ignored: an equal or newer one is stored.
    pub not_newer: usize,
    /// Changes to the devices collection no replica takes from another.
    pub not_admissible: usize,
    /// The versions the changed records were written at (`None`: nothing changed).
    pub versions: Option<(DbVersion, DbVersion)>,
}

/// One record the merge rewrote.
#[derive(Debug, Clone)]
pub struct MergedRow {
    /// Its collection.
    pub collection: CollectionName,
    /// Its id.
    pub id: RecordId,
    /// Its new log version.
    pub version: DbVersion,
    /// Its new state and stamps.
    pub record: StoredRecord,
}

/// A committed merge: the counts and the records rewritten.
#[derive(Debug, Clone, Default)]
pub struct Merged {
    /// The counts.
    pub report: MergeReport,
    /// The records whose state changed, with their new versions.
    pub rows: Vec<MergedRow>,
}

/// What to store: the rewritten records and the new metadata.
#[derive(Debug, Clone)]
pub struct MergePlan {
    /// The records whose state changed, in key order.
    pub rows: Vec<MergedRow>,
    /// The metadata after the merge (clock raised, version moved).
    pub meta: NodeMeta,
    /// The counts.
    pub report: MergeReport,
}

/// The records of a batch, grouped by record in key order: the keys to load.
pub fn records_of(changes: &[Change]) -> Vec<RecordKey> {
    let mut keys: Vec<RecordKey> = changes
        .iter()
        .map(|c| (c.collection.clone(), c.id.clone()))
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// Whether the batch touches the devices collection (then the caller loads
/// it to know who may sign statements: `devices.rs`).
pub fn touches_devices(changes: &[Change]) -> bool {
    changes
        .iter()
        .any(|c| c.collection.as_str() == DEVICES_COLLECTION)
}

/// Checks every change before anything is merged: the batch is refused
/// whole on the first bad one.
pub fn validate(meta: &NodeMeta, changes: &[Change], now_ms: u64) -> Result<(), WebError> {
    let clocks = HlcGenerator::new(meta.hlc, DEFAULT_MAX_DRIFT_MS);
    for change in changes {
        change.validate(MAX_VALUE_BYTES)?;
        clocks.check(change.clock.hlc, now_ms)?;
    }
    Ok(())
}

/// Merges `changes` (already validated) into the `stored` records (those of
/// the batch that exist here, with their row versions), under `issuers`.
pub fn plan_merge(
    meta: &NodeMeta,
    changes: &[Change],
    stored: &HashMap<RecordKey, (DbVersion, StoredRecord)>,
    issuers: &Issuers,
) -> MergePlan {
    let all: Vec<&Change> = changes.iter().collect();
    let issuers = issuers.clone().with_admins_in(&all);
    let mut report = MergeReport::default();
    let mut by_record: BTreeMap<(&CollectionName, &RecordId), Vec<&Change>> = BTreeMap::new();
    for change in all {
        if !admissible(change, &issuers) {
            report.not_admissible += 1;
            continue;
        }
        by_record
            .entry((&change.collection, &change.id))
            .or_default()
            .push(change);
    }
    let mut clocks = HlcGenerator::new(meta.hlc, DEFAULT_MAX_DRIFT_MS);
    let mut version = meta.version;
    let mut rows = Vec::new();
    for ((collection, id), record_changes) in by_record {
        let key = (collection.clone(), id.clone());
        let before = stored.get(&key).map(|(_, r)| r.clone()).unwrap_or_default();
        let mut after = before.state.clone();
        for change in record_changes {
            let verdict = after.apply(
                change.slot.clone(),
                SlotVersion {
                    value: change.value.clone(),
                    clock: change.clock,
                    life: change.life,
                    pred: change.pred,
                },
            );
            match verdict {
                Verdict::Applied => report.applied += 1,
                Verdict::StaleLife => report.stale += 1,
                Verdict::NotNewer => report.not_newer += 1,
            }
            clocks.raise_to(change.clock.hlc);
        }
        if after != before.state {
            version = DbVersion(version.0 + 1);
            rows.push(MergedRow {
                collection: key.0,
                id: key.1,
                version,
                record: before.merged(after, version),
            });
        }
    }
    if let (Some(first), Some(last)) = (rows.first(), rows.last()) {
        report.versions = Some((first.version, last.version));
    }
    let meta = NodeMeta {
        hlc: clocks.last(),
        version,
        ..meta.clone()
    };
    MergePlan { rows, meta, report }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_core::{CanonicalJson, Clock, FieldName, Hlc, Life, LogPosition, SiteId, Slot};

    fn change(id: &str, slot: Slot, value: Option<&str>, ms: u64, site: u64) -> Change {
        Change {
            collection: CollectionName::new("notes").unwrap(),
            id: RecordId::new(id).unwrap(),
            slot,
            value: value.map(|v| CanonicalJson::from_trusted(v.to_string())),
            clock: Clock {
                hlc: Hlc::new(ms, 0),
                site: SiteId(site),
            },
            life: Life(1),
            position: LogPosition::default(),
            pred: None,
        }
    }

    fn field(name: &str) -> Slot {
        Slot::Field(FieldName::new(name).unwrap())
    }

    #[test]
    fn a_batch_merges_field_by_field_and_twice_changes_nothing() {
        let meta = NodeMeta::new([1; 32]);
        let batch = vec![
            change("n1", Slot::Life, None, 10, 2),
            change("n1", field("title"), Some("\"a\""), 10, 2),
            change("n2", Slot::Life, None, 11, 2),
        ];
        validate(&meta, &batch, 1_000).unwrap();
        let plan = plan_merge(&meta, &batch, &HashMap::new(), &Issuers::NoOwner);
        assert_eq!(plan.rows.len(), 2);
        assert_eq!(plan.report.applied, 3);
        assert_eq!(plan.report.versions, Some((DbVersion(1), DbVersion(2))));
        assert_eq!(plan.meta.version, DbVersion(2));
        assert_eq!(plan.meta.hlc, Hlc::new(11, 0));
        let stored: HashMap<RecordKey, (DbVersion, StoredRecord)> = plan
            .rows
            .iter()
            .map(|r| {
                (
                    (r.collection.clone(), r.id.clone()),
                    (r.version, r.record.clone()),
                )
            })
            .collect();
        // The same batch again: nothing changes, no version is taken.
        let again = plan_merge(&plan.meta, &batch, &stored, &Issuers::NoOwner);
        assert!(again.rows.is_empty());
        assert_eq!(again.report.not_newer, 3);
        assert_eq!(again.meta.version, DbVersion(2));
        // A concurrent edit of another field merges beside the first.
        let other = vec![change("n1", field("body"), Some("\"b\""), 5, 3)];
        let merged = plan_merge(&plan.meta, &other, &stored, &Issuers::NoOwner);
        assert_eq!(
            merged.rows[0].record.state.render_json().unwrap(),
            r#"{"body":"b","title":"a"}"#
        );
        assert_eq!(merged.rows[0].version, DbVersion(3));
        assert_eq!(
            merged.meta.hlc,
            Hlc::new(11, 0),
            "the clock never moves back"
        );
    }

    #[test]
    fn bad_changes_refuse_the_batch_and_devices_deletes_are_left_out() {
        let meta = NodeMeta::new([1; 32]);
        let mut far = change("n1", Slot::Life, None, 1_000_000_000, 2);
        far.clock.hlc = Hlc::new(10_000_000, 0);
        assert!(
            validate(&meta, &[far], 1_000).is_err(),
            "clock too far ahead"
        );
        let mut dead_field = change("n1", field("a"), Some("1"), 10, 2);
        dead_field.life = Life(2);
        assert!(
            validate(&meta, &[dead_field], 1_000).is_err(),
            "field in a deleted life"
        );

        let mut delete = change("r1", Slot::Life, None, 10, 2);
        delete.collection = CollectionName::new(DEVICES_COLLECTION).unwrap();
        delete.life = Life(2);
        let plan = plan_merge(&meta, &[delete], &HashMap::new(), &Issuers::NoOwner);
        assert!(plan.rows.is_empty());
        assert_eq!(plan.report.not_admissible, 1);
    }
}
