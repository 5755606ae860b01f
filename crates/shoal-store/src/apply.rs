//! Applying a batch of remote changes: validate everything first, then merge the
//! whole batch in one transaction and report what actually changed.
//!
//! This module owns the remote write path: clock-drift checks (a peer's
//! record with a clock too far ahead is held back, `held.rs`, the rest of
//! its batch merges), the Lamport update of the local HLC, and the
//! persisted clock mark, and journalling the conflicts the core's merge
//! reports (`conflict_journal.rs`). Merge rules are the
//! core's; nothing here decides who wins.

use crate::ApplyReport;
use crate::conflict_journal::ConflictEntry;
use crate::error::StoreError;
use crate::rows::{self, TxnStamp};
use crate::sharing::{FileState, rules_read_from};
use crate::write_txn::WriteTxn;
use crate::{Store, collection_for_write, now_ms};
use rusqlite::{OptionalExtension, params};
use shoal_core::gc::{self, Arrival};
use shoal_core::{
    Change, CollectionName, DbVersion, Direction, Hlc, LogPosition, RecordId, RecordState,
    SlotVersion, SyncCursor, Verdict,
};
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap};

/// What to do with a change whose clock is too far ahead.
#[derive(Debug, Clone, Copy)]
enum Holding<'a> {
    /// Refuse the whole batch (a local merge, or releasing held changes).
    Refuse,
    /// Hold the record back, as received from this peer.
    For(&'a str),
}

impl Store {
    /// Merges a batch of changes from another replica in one transaction.
    ///
    /// The whole batch is refused, with nothing written, if any change is
    /// malformed, over the value cap, or carries a clock further ahead of local
    /// time than the allowed drift. Applying the same batch twice changes nothing
    /// the second time.
    pub fn apply(&mut self, changes: &[Change]) -> Result<ApplyReport, StoreError> {
        self.apply_with_cursor(changes.iter().collect(), 0, None, Holding::Refuse, &[])
    }

    /// Merges a batch received from `peer` and, in the same transaction,
    /// records `cursor` as that peer's cursor: a crash keeps both or neither, so
    /// the cursor never runs ahead of the applied data. A cursor inside a
    /// record is kept as the point before that record ([`SyncCursor::durable`]). Changes of collections
    /// this store does not receive from `peer` are left out (and counted).
    /// A record whose changes carry a clock too far ahead of local time is
    /// held back whole (`held.rs`) while the rest of the batch merges; only
    /// a malformed change, or a full table of held changes, refuses the batch.
    pub fn apply_from(
        &mut self,
        peer: &str,
        changes: &[Change],
        cursor: SyncCursor,
    ) -> Result<ApplyReport, StoreError> {
        let rules = self.sharing()?;
        let kept: Vec<&Change> = changes
            .iter()
            .filter(|c| rules.allows(peer, &c.collection, Direction::FromPeer))
            .collect();
        let not_shared = changes.len() - kept.len();
        self.apply_with_cursor(
            kept,
            not_shared,
            Some((peer, cursor)),
            Holding::For(peer),
            &[],
        )
    }

    /// Records `cursor` as `peer`'s cursor without applying anything: the
    /// replica was brought level with the peer by reconciliation.
    pub fn set_peer_cursor(&mut self, peer: &str, cursor: SyncCursor) -> Result<(), StoreError> {
        self.apply_with_cursor(Vec::new(), 0, Some((peer, cursor)), Holding::Refuse, &[])
            .map(|_| ())
    }

    /// Merges full record states fetched from (or offered by) `peer`,
    /// holding back records whose clocks are too far ahead as
    /// [`apply_from`](Self::apply_from) does. The caller checks the rules.
    pub(crate) fn apply_records_from(
        &mut self,
        peer: &str,
        changes: &[Change],
    ) -> Result<ApplyReport, StoreError> {
        self.apply_with_cursor(changes.iter().collect(), 0, None, Holding::For(peer), &[])
    }

    /// Merges released held changes and removes their rows, in one transaction.
    pub(crate) fn apply_held(
        &mut self,
        changes: Vec<Change>,
        not_shared: usize,
        released: &[i64],
    ) -> Result<ApplyReport, StoreError> {
        self.apply_with_cursor(
            changes.iter().collect(),
            not_shared,
            None,
            Holding::Refuse,
            released,
        )
    }

    /// The position in `peer`'s change log up to which its changes are applied
    /// here (the start of its log if never synced).
    pub fn peer_cursor(&self, peer: &str) -> Result<SyncCursor, StoreError> {
        let row: Option<(i64, i64, i64)> = self
            .db
            .conn
            .prepare_cached("SELECT base, dbv, seq FROM peer_cursors WHERE peer = ?1")?
            .query_row([peer], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        Ok(
            row.map_or_else(SyncCursor::default, |(base, dbv, seq)| SyncCursor {
                base: DbVersion(base as u64),
                position: LogPosition {
                    version: DbVersion(dbv as u64),
                    seq: seq as u32,
                },
                partial: None,
            }),
        )
    }

    fn apply_with_cursor(
        &mut self,
        changes: Vec<&Change>,
        not_shared: usize,
        cursor: Option<(&str, SyncCursor)>,
        holding: Holding<'_>,
        released: &[i64],
    ) -> Result<ApplyReport, StoreError> {
        let now = now_ms();
        let cap = self.config.max_value_bytes;
        for change in &changes {
            change.validate(cap)?;
        }
        let (changes, not_admissible) = self.admissible_changes(changes)?;
        // Keyed by reference: the batch outlives the grouping, so no key is
        // copied until a record is reported changed.
        let mut by_record: BTreeMap<(&CollectionName, &RecordId), Vec<&Change>> =
            group_runs(&changes, |c| (&c.collection, &c.id));
        // Clocks too far ahead: the record is held back whole (from a
        // peer), or the batch refused (anything else).
        let mut held: Vec<&Change> = Vec::new();
        let mut too_far = Vec::new();
        for (key, record_changes) in &by_record {
            let first_err = record_changes
                .iter()
                .find_map(|c| self.hlc.check(c.clock.hlc, now).err());
            if let Some(e) = first_err {
                match holding {
                    Holding::Refuse => return Err(e.into()),
                    Holding::For(_) => too_far.push(*key),
                }
            }
        }
        for key in &too_far {
            held.extend(by_record.remove(key).unwrap_or_default());
        }
        let mut report = ApplyReport {
            not_shared,
            not_admissible,
            held: held.len(),
            ..ApplyReport::default()
        };
        // Whether the sharing rules (which read the devices collection)
        // may change with this batch; see the end.
        let rules_touched = by_record
            .keys()
            .any(|(collection, _)| rules_read_from(collection));
        let own_changes = self.db.conn.total_changes();
        let mut tx = WriteTxn::begin(&mut self.db)?;
        if self
            .head_memo
            .refresh(&tx, tx.kept(), &mut self.db_version, &mut self.hlc)?
        {
            self.recon.clear();
        }
        let entering = FileState {
            data_version: self.head_memo.data_version,
            own_changes,
        };
        let mut deltas = Vec::new();
        let mut created = Vec::new();
        let mut stamp = TxnStamp::new(self.db_version);
        let mut observed = self.hlc.clone();
        let mut conflicts = Vec::new();
        // The highest clock among the records this transaction saves.
        let mut saved_clock = Hlc::default();
        // Every record the batch touches, loaded with one statement per
        // collection (`load_many.rs`) rather than one look-up per record.
        let mut ids_of: BTreeMap<i64, Vec<&RecordId>> = BTreeMap::new();
        for (collection, id) in by_record.keys() {
            let cid = collection_for_write(&self.collections, &tx, collection, &mut created)?;
            ids_of.entry(cid).or_default().push(*id);
        }
        // Each collection's records come back in the order of its ids,
        // which is the order the loop below meets them in.
        let mut stored = HashMap::with_capacity(ids_of.len());
        for (cid, ids) in &ids_of {
            let found = crate::load_many::load_many(
                &tx,
                tx.kept(),
                *cid,
                ids,
                self.head_memo.ledger_in_use,
            )?;
            stored.insert(*cid, found.into_iter());
        }
        for ((collection, id), record_changes) in by_record {
            let cid = collection_for_write(&self.collections, &tx, collection, &mut created)?;
            let loaded = stored
                .get_mut(&cid)
                .and_then(Iterator::next)
                .unwrap_or_default();
            if gc::judge(loaded.held, record_changes.iter().copied()) == Arrival::Restate {
                // A live copy from before a collected delete: it loses, as
                // it would to the tombstone row; its values are journalled
                // and the tombstone goes back into the log for the peer.
                conflicts.extend(crate::gc::lost_to_delete(
                    &loaded.state,
                    &record_changes,
                    now,
                ));
                report.stale += record_changes.len();
                for change in &record_changes {
                    observed.raise_to(change.clock.hlc);
                }
                let unsaved = rows::StoredSlots {
                    held: loaded.held,
                    ..rows::StoredSlots::default()
                };
                if let Some(delta) = rows::save(
                    &mut tx,
                    cid,
                    id,
                    &unsaved,
                    &loaded.state,
                    &mut stamp,
                    rows::Origin::Remote,
                )? {
                    saved_clock = saved_clock.max(highest_hlc(&loaded.state));
                    deltas.push(delta);
                    report.changed.push((collection.clone(), id.clone()));
                }
                continue;
            }
            let mut after = loaded.state.clone();
            for change in record_changes {
                let version = SlotVersion {
                    value: change.value.clone(),
                    clock: change.clock,
                    life: change.life,
                    pred: change.pred,
                };
                let (verdict, conflict) = after.apply_noting(change.slot.clone(), version);
                if let Some(conflict) = conflict {
                    conflicts.push(ConflictEntry::of(collection, id, conflict, now));
                }
                match verdict {
                    Verdict::Applied => report.applied += 1,
                    Verdict::StaleLife => report.stale += 1,
                    Verdict::NotNewer => report.not_newer += 1,
                }
                // Drift was checked for the whole batch above.
                observed.raise_to(change.clock.hlc);
            }
            if let Some(delta) = rows::save(
                &mut tx,
                cid,
                id,
                &loaded,
                &after,
                &mut stamp,
                rows::Origin::Remote,
            )? {
                saved_clock = saved_clock.max(highest_hlc(&after));
                deltas.push(delta);
                report.changed.push((collection.clone(), id.clone()));
            }
        }
        // Only when a merge settled a conflict: no statement otherwise.
        crate::conflict_journal::insert(&tx, &conflicts, self.config.journal, now)?;
        report.conflicts = conflicts.len();
        if let Holding::For(peer) = holding {
            crate::held::hold(&tx, peer, &held)?;
        }
        crate::held::forget(&tx, released)?;
        if let Some((peer, cursor)) = cursor {
            let cursor = cursor.durable();
            tx.prepare_cached(
                "INSERT INTO peer_cursors (peer, base, dbv, seq, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (peer) DO UPDATE SET base = excluded.base, dbv = excluded.dbv,
                     seq = excluded.seq, updated_ms = excluded.updated_ms",
            )?
            .execute(params![
                peer,
                cursor.base.0 as i64,
                cursor.position.version.0 as i64,
                i64::from(cursor.position.seq),
                now as i64
            ])?;
        }
        // The records saved here are the log's last transaction, whose
        // clocks opening restores the clock from (those of its last
        // version): the mark is needed only when they are not the highest
        // seen (older changes merged, or a later local clock), or when the
        // transaction took more than one version. A live change newer than
        // anything here carries its own, and its merge writes one page fewer.
        let spanned = stamp.versions().nth(1).is_some();
        if stamp.taken().is_some() && (observed.last() > saved_clock || spanned) {
            crate::clock_mark::save(&tx, observed.last())?;
        }
        tx.commit()?;
        if !rules_touched {
            self.sharing_cache.carry_over(entering, &self.db.conn);
        }
        self.collections.extend(created);
        self.recon.apply(&deltas);
        self.hlc = observed;
        report.version = stamp.taken();
        // Only a batch from a sync peer, with nothing but its changes.
        if let (Some((peer, _)), []) = (cursor, released) {
            // Every version the batch took (none if nothing changed).
            for version in stamp.versions() {
                self.echoes.record(peer, version);
            }
        }
        if let Some(v) = report.version {
            self.db_version = v;
        }
        Ok(report)
    }
}

/// `items` grouped by `key`, each group in the items' order. A peer's batch
/// lists a record's changes together (its log is read record by record), so
/// the map is searched once per run of equal keys, not once per item (with
/// four fields a record, that search was a tenth of applying a catch-up),
/// and each run is copied out at its length in one allocation.
fn group_runs<T: Copy, K: Ord + Copy>(items: &[T], key: impl Fn(T) -> K) -> BTreeMap<K, Vec<T>> {
    let mut groups: BTreeMap<K, Vec<T>> = BTreeMap::new();
    let mut add = |done: K, same: &[T]| match groups.entry(done) {
        Entry::Vacant(group) => {
            group.insert(same.to_vec());
        }
        Entry::Occupied(mut group) => group.get_mut().extend_from_slice(same),
    };
    let mut rest = items;
    while let Some(&first) = rest.first() {
        let current = key(first);
        let run = rest
            .iter()
            .position(|&item| key(item) != current)
            .unwrap_or(rest.len());
        add(current, &rest[..run]);
        rest = &rest[run..];
    }
    groups
}

/// The highest clock reading in `state` (the zero reading for an empty one).
fn highest_hlc(state: &RecordState) -> Hlc {
    state.max_clock().map_or(Hlc::default(), |clock| clock.hlc)
}

#[cfg(test)]
mod tests {
    use super::group_runs;

    #[test]
    fn runs_group_as_item_by_item_would_keeping_each_groups_order() {
        let items = [
            (3, 'a'),
            (3, 'b'),
            (1, 'c'),
            (3, 'd'),
            (2, 'e'),
            (1, 'f'),
            (1, 'g'),
        ];
        let grouped = group_runs(&items, |(k, _)| k);
        let mut expected = std::collections::BTreeMap::<u8, Vec<(u8, char)>>::new();
        for item in items {
            expected.entry(item.0).or_default().push(item);
        }
        assert_eq!(grouped, expected);
        assert_eq!(grouped[&3], vec![(3, 'a'), (3, 'b'), (3, 'd')]);
        assert!(group_runs(&Vec::<(u8, char)>::new(), |(k, _)| k).is_empty());
    }
}
