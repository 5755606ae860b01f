//! Local writes: one call is one SQLite transaction holding the data, the field
//! clocks and the change-log position of every record it touches.
//!
//! This module owns the write path's order of steps (begin, load the
//! records, decide each op — write_plan.rs, on a second thread for a large
//! write: write_pipeline.rs — write the rows, commit); it never merges by
//! itself.

use crate::error::StoreError;
use crate::rows::{self, StoredSlots, TxnStamp};
use crate::sharing::{FileState, rules_read_from};
use crate::write_pipeline::{self, PIPELINE_FROM};
use crate::write_plan::{Outcomes, Planner, WriteOp};
use crate::write_txn::WriteTxn;
use crate::{RecordKey, Store, collection_for_write};
use rusqlite::Connection;
use shoal_core::{Clock, DbVersion, RecordId};
use std::collections::{HashMap, HashSet};

/// What a committed write did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteOutcome {
    /// The db_version the transaction took; `None` if nothing changed.
    pub version: Option<DbVersion>,
    /// The records whose state changed, in write order.
    pub changed: Vec<RecordKey>,
    /// The clock of the last op that changed a record: every slot that op
    /// wrote carries it (for a one-op write, the write's clock); `None` if
    /// nothing changed.
    pub clock: Option<Clock>,
}

impl Store {
    /// Applies local writes in one transaction: all of them or none.
    ///
    /// Errors (nothing is written): a value over the cap, or a record whose
    /// JSON would exceed it and grow ([`shoal_core::CoreError::ValueTooLarge`]),
    /// a record whose stored state, tombstones included, would exceed
    /// `max_record_bytes` and grow ([`shoal_core::CoreError::RecordTooLarge`]),
    /// an invalid field name, a patch/delete of a record that is not alive
    /// ([`shoal_core::CoreError::RecordNotFound`]), a create of one that is
    /// ([`shoal_core::CoreError::RecordExists`]).
    pub fn write(
        &mut self,
        ops: impl IntoIterator<Item = WriteOp>,
    ) -> Result<WriteOutcome, StoreError> {
        let ops: Vec<WriteOp> = ops.into_iter().collect();
        self.check_device_writes(&ops)?;
        let origin = rows::Origin::Local {
            record_cap: self.config.max_value_bytes,
            state_cap: self.config.max_record_bytes,
        };
        // Whether the sharing rules may change with this write; see the end.
        let rules_touched = ops.iter().any(|op| rules_read_from(&op.collection));
        let own_changes = self.conn.total_changes();
        let mut tx = WriteTxn::begin(&mut self.conn)?;
        // Another process (the CLI next to a daemon) may have committed since
        // our last look: continue its log and order our clock after its writes.
        if self
            .head_memo
            .refresh(&tx, &mut self.db_version, &mut self.hlc)?
        {
            self.recon.clear();
        }
        let entering = FileState {
            data_version: self.head_memo.data_version,
            own_changes,
        };
        self.schemas.refresh(&tx, self.head_memo.data_version)?;
        let mut created = Vec::new();
        // Created inside the transaction: a failed write leaves no empty collection.
        let cids = ops
            .iter()
            .map(|op| collection_for_write(&self.collections, &tx, &op.collection, &mut created))
            .collect::<Result<Vec<_>, _>>()?;
        let ledger_in_use = self.head_memo.ledger_in_use;
        let preloaded = preload(&tx, &ops, &cids, ledger_in_use)?;
        let mut planner = Planner {
            schemas: &self.schemas,
            hlc: &mut self.hlc,
            site: self.identity.site(),
            origin,
            value_cap: self.config.max_value_bytes,
            stamp: TxnStamp::new(self.db_version),
        };
        let mut outcomes = Outcomes::default();
        let ops = ops.into_iter().zip(cids);
        if ops.len() >= PIPELINE_FROM && preloaded.iter().all(Option::is_some) {
            let loaded = ops.zip(preloaded.into_iter().flatten()).collect();
            if let Some(left) = write_pipeline::run(&mut tx, &mut planner, loaded, &mut outcomes)? {
                let left = left.into_iter().map(|(op, loaded)| (op, Some(loaded)));
                decide_here(&mut tx, &mut planner, left, ledger_in_use, &mut outcomes)?;
            }
        } else {
            decide_here(
                &mut tx,
                &mut planner,
                ops.zip(preloaded),
                ledger_in_use,
                &mut outcomes,
            )?;
        }
        let version = planner.stamp.taken();
        tx.commit()?;
        if !rules_touched {
            self.sharing_cache.carry_over(entering, &self.conn);
        }
        self.collections.extend(created);
        self.recon.apply(&outcomes.deltas);
        if let Some(v) = version {
            self.db_version = v;
        }
        Ok(WriteOutcome {
            version,
            changed: outcomes.changed,
            clock: outcomes.last_clock,
        })
    }
}

/// Ops from which a write loads its records up front, with one statement
/// per collection (`load_many.rs`); a smaller write (a single put) looks
/// each record up as its op comes.
const BATCH_LOAD_FROM: usize = 4;

/// For each op, the stored state of its record loaded up front, or `None`
/// where the op must look it up itself: in a small write, and for every op
/// after the first on one record (whose row the earlier op changed).
fn preload(
    conn: &Connection,
    ops: &[WriteOp],
    cids: &[i64],
    ledger_in_use: bool,
) -> Result<Vec<Option<StoredSlots>>, StoreError> {
    if ops.len() < BATCH_LOAD_FROM {
        return Ok(ops.iter().map(|_| None).collect());
    }
    let mut ids_of: HashMap<i64, Vec<&RecordId>> = HashMap::new();
    for (op, cid) in ops.iter().zip(cids) {
        ids_of.entry(*cid).or_default().push(&op.id);
    }
    let mut found = HashMap::with_capacity(ids_of.len());
    for (cid, ids) in &ids_of {
        found.insert(
            *cid,
            crate::load_many::load_many(conn, *cid, ids, ledger_in_use)?,
        );
    }
    let mut seen = HashSet::with_capacity(ops.len());
    Ok(ops
        .iter()
        .zip(cids)
        .map(|(op, cid)| {
            seen.insert((*cid, op.id.as_str())).then(|| {
                found
                    .get_mut(cid)
                    .and_then(|records| records.remove(op.id.as_str()))
                    .unwrap_or_default()
            })
        })
        .collect())
}

/// Decides `ops` in order on this thread, writing each one's row before
/// the next is decided; an op whose record was not loaded up front loads
/// it then (after the rows written so far: an earlier op may have changed
/// it).
fn decide_here(
    tx: &mut WriteTxn<'_>,
    planner: &mut Planner<'_>,
    ops: impl Iterator<Item = ((WriteOp, i64), Option<StoredSlots>)>,
    ledger_in_use: bool,
    outcomes: &mut Outcomes,
) -> Result<(), StoreError> {
    for ((op, cid), preloaded) in ops {
        let loaded = match preloaded {
            Some(loaded) => loaded,
            None => rows::load_for_merge(tx.flushed()?, cid, &op.id, ledger_in_use)?,
        };
        if let Some(planned) = planner.plan(op, cid, &loaded)? {
            outcomes.write(tx, planned)?;
        }
    }
    Ok(())
}
