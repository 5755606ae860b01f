//! Local writes: one call is one SQLite transaction holding the data, the field
//! clocks and the change-log position of every record it touches.
//!
//! This module owns the write path's order of steps (stamp a clock,
//! plan through the core, persist the difference) and the taking of a
//! write's ops from its caller, a step at a time, inside the transaction;
//! it never merges by itself, and never holds more than one step of ops.

use crate::data_versions::Declared;
use crate::device_writes::DeviceWrites;
use crate::error::StoreError;
use crate::kept::KeptStatements;
use crate::rows::{self, StoredSlots, TxnStamp};
use crate::sharing::{FileState, rules_read_from};
use crate::write_op::{WriteOp, WriteOutcome};
use crate::write_txn::WriteTxn;
use crate::{Store, collection_for_write, now_ms};
use rusqlite::Connection;
use shoal_core::{Clock, FieldNames, Intent, RecordId, plan_naming};
use std::collections::{HashMap, HashSet};
use std::path::Path;

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
        self.write_from(ops.into_iter().map(Ok))
    }

    /// [`write`](Self::write) of ops made as the write goes: an op given
    /// as an error (one its caller could not make: an invalid id, say)
    /// fails the whole write with that error, and nothing is written.
    ///
    /// The ops are taken and planned [`OPS_PER_STEP`] at a time, so a large
    /// write holds one step of them in memory, not all of them (the
    /// changed records' keys, which the outcome returns, and their
    /// reconciliation deltas are kept for all). After the first step they
    /// are taken while the write holds the database file's write lock:
    /// another process's write waits for them, up to its busy timeout.
    /// Errors come in op order: a refused op in one step fails the write
    /// before an op of a later step is taken, let alone checked. The first
    /// step's ops are checked against the devices' rules before the lock
    /// is taken, so a read-only device's refused put waits for no one.
    pub fn write_from(
        &mut self,
        ops: impl IntoIterator<Item = Result<WriteOp, StoreError>>,
    ) -> Result<WriteOutcome, StoreError> {
        // Fused: a first step shorter than a full one is the whole write.
        let mut ops = ops.into_iter().fuse();
        let mut step = Vec::new();
        next_step(&mut ops, &mut step)?;
        // Read before the transaction, as the registry is cached apart from it.
        let devices = self.device_writes()?;
        // Whether the sharing rules may change with this write; see the end.
        let mut rules_touched = false;
        check_step(
            &devices,
            &self.db.conn,
            &self.path,
            &step,
            &mut rules_touched,
        )?;
        let origin = rows::Origin::Local {
            record_cap: self.config.max_value_bytes,
            state_cap: self.config.max_record_bytes,
        };
        let own_changes = self.db.conn.total_changes();
        let mut tx = WriteTxn::begin(&mut self.db)?;
        // Another process (the CLI next to a daemon) may have committed since
        // our last look: continue its log and order our clock after its writes.
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
        self.schemas.refresh(&tx, self.head_memo.data_version)?;
        let mut deltas = Vec::new();
        let mut created = Vec::new();
        let mut stamp = TxnStamp::new(self.db_version);
        let mut changed = Vec::new();
        let mut last_clock = None;
        // The write's records mostly share their fields: each name made once.
        let mut names = FieldNames::for_plans(step.len());
        while !step.is_empty() {
            // Created inside the transaction: a failed write leaves no empty collection.
            let cids = step
                .iter()
                .map(|op| {
                    collection_for_write(&self.collections, &tx, &op.collection, &mut created)
                })
                .collect::<Result<Vec<_>, _>>()?;
            // Read after the rows of the steps before are written: this
            // step may change a record one of them changed.
            let preloaded = preload(
                tx.flushed()?,
                tx.kept(),
                &step,
                &cids,
                self.head_memo.ledger_in_use,
            )?;
            for ((op, cid), preloaded) in step.drain(..).zip(cids).zip(preloaded) {
                let loaded = match preloaded {
                    Some(loaded) => loaded,
                    // Looked up now, after writing the rows waiting (an earlier
                    // op of this write may have changed this record).
                    None => rows::load_for_merge(
                        tx.flushed()?,
                        tx.kept(),
                        cid,
                        &op.id,
                        self.head_memo.ledger_in_use,
                    )?,
                };
                let mut after = loaded.state.clone();
                let declared = self.schemas.get(&op.collection);
                let (intent, stamp_patch) = match &declared {
                    None => (op.intent, None),
                    Some(declared) => {
                        let before = loaded.state.render();
                        declared.check_not_newer(&op.collection, &op.id, before.as_ref())?;
                        data_versions_plan(declared, op.intent)
                    }
                };
                // One clock per op: two ops on one record in one write apply in
                // order (an op's stamp patch writes another slot than the op).
                let clock = Clock {
                    hlc: self.hlc.tick(now_ms()),
                    site: self.identity.site(),
                };
                for intent in std::iter::once(&intent).chain(stamp_patch.as_ref()) {
                    for (slot, version) in plan_naming(&after, intent, clock, &mut names)? {
                        // What peers check of every change (`Change::validate`): a
                        // value they would refuse must not be written here either,
                        // even into a record the whole-record cap lets through.
                        if let Some(value) = &version.value {
                            value.check_limits(self.config.max_value_bytes)?;
                        }
                        after.apply(slot, version);
                    }
                }
                // Rendered only for a collection with a declared schema: a tuple
                // `(&declared, after.render())` renders every record written,
                // which was most of what the data-version merge added to a write.
                if let Some(declared) = &declared
                    && let Some(rendered) = after.render()
                {
                    declared.validate(&op.collection, &op.id, &rendered)?;
                }
                if let Some(delta) =
                    rows::save(&mut tx, cid, &op.id, &loaded, &after, &mut stamp, origin)?
                {
                    deltas.push(delta);
                    changed.push((op.collection, op.id));
                    last_clock = Some(clock);
                }
            }
            next_step(&mut ops, &mut step)?;
            check_step(&devices, &tx, &self.path, &step, &mut rules_touched)?;
        }
        tx.commit()?;
        if !rules_touched {
            self.sharing_cache.carry_over(entering, &self.db.conn);
        }
        self.collections.extend(created);
        self.recon.apply(&deltas);
        let version = stamp.taken();
        if let Some(v) = version {
            self.db_version = v;
        }
        Ok(WriteOutcome {
            version,
            changed,
            clock: last_clock,
        })
    }
}

/// Ops a write takes from its caller and plans at a time: a step's
/// records are loaded with one statement (per collection), and its ops
/// dropped before the next step is taken.
pub const OPS_PER_STEP: usize = 256;

/// Fills `step` (empty) with the next ops, up to [`OPS_PER_STEP`]; an op
/// its caller failed to make fails the write.
fn next_step(
    ops: &mut impl Iterator<Item = Result<WriteOp, StoreError>>,
    step: &mut Vec<WriteOp>,
) -> Result<(), StoreError> {
    for op in ops.take(OPS_PER_STEP) {
        step.push(op?);
    }
    Ok(())
}

/// Checks a step's ops against the devices' rules, and notes in
/// `rules_touched` whether one writes what the sharing rules are read from.
fn check_step(
    devices: &DeviceWrites,
    conn: &Connection,
    path: &Path,
    step: &[WriteOp],
    rules_touched: &mut bool,
) -> Result<(), StoreError> {
    for op in step {
        devices.check(conn, path, op)?;
        *rules_touched |= rules_read_from(&op.collection);
    }
    Ok(())
}

/// Ops from which a step loads its records up front, with one statement
/// per collection (`load_many.rs`); a smaller step (a single put, the
/// last few ops of a batch) looks each record up as its op comes.
const BATCH_LOAD_FROM: usize = 4;

/// For each op of a step, the stored state of its record loaded up front,
/// or `None` where the op must look it up itself: in a small step, and for
/// every op after the first on one record in the step (whose row the
/// earlier op changed).
fn preload(
    conn: &Connection,
    kept: &KeptStatements,
    ops: &[WriteOp],
    cids: &[i64],
    ledger_in_use: bool,
) -> Result<Vec<Option<StoredSlots>>, StoreError> {
    let mut preloaded: Vec<Option<StoredSlots>> = ops.iter().map(|_| None).collect();
    if ops.len() < BATCH_LOAD_FROM {
        return Ok(preloaded);
    }
    // Each record's first op, by collection: where it is, and its id.
    let mut firsts: HashMap<i64, (Vec<usize>, Vec<&RecordId>)> = HashMap::new();
    let mut seen = HashSet::with_capacity(ops.len());
    for (at, (op, cid)) in ops.iter().zip(cids).enumerate() {
        if seen.insert((*cid, op.id.as_str())) {
            let (ats, ids) = firsts.entry(*cid).or_default();
            ats.push(at);
            ids.push(&op.id);
        }
    }
    for (cid, (ats, ids)) in firsts {
        let loaded = crate::load_many::load_many(conn, kept, cid, &ids, ledger_in_use)?;
        for (at, stored) in ats.into_iter().zip(loaded) {
            preloaded[at] = Some(stored);
        }
    }
    Ok(preloaded)
}

/// The intents a write to a collection with a declared data version
/// becomes: an object written whole or patched carries the version stamp;
/// a map entry set or removed is followed by a patch of the stamp (so the
/// record is stamped by whatever last wrote it here); a delete is as is.
fn data_versions_plan(declared: &Declared, intent: Intent) -> (Intent, Option<Intent>) {
    match intent {
        Intent::Put(fields) => (Intent::Put(declared.stamped(fields)), None),
        Intent::Create(fields) => (Intent::Create(declared.stamped(fields)), None),
        Intent::Patch(fields) => (Intent::Patch(declared.stamped(fields)), None),
        Intent::Delete => (Intent::Delete, None),
        map @ (Intent::MapSet { .. } | Intent::MapRemove { .. }) => (
            map,
            Some(Intent::Patch(declared.stamped(Default::default()))),
        ),
    }
}
