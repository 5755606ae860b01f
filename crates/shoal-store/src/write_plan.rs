//! One op of a local write ([`WriteOp`]) decided in memory ([`Planner::plan`]): its
//! clock, the core's plan applied to the record's state, the collection's
//! declared data version and schema, and the row the new state makes
//! (`rows::prepare`); and what the write's decided ops came to once their
//! rows are written ([`Outcomes`]).
//!
//! It never touches the database, so it runs on whichever thread decides
//! the ops: the writing thread for most writes (write.rs), a second thread
//! for a large one while the writing thread writes the rows decided before
//! (write_pipeline.rs). Loading the records and the order of the steps are
//! write.rs's.

use crate::RecordKey;
use crate::data_versions::{Declared, SchemaCache};
use crate::error::StoreError;
use crate::rows::{self, Origin, Prepared, StoredSlots, TreeDelta, TxnStamp};
use crate::write_txn::WriteTxn;
use shoal_core::{Clock, CollectionName, HlcGenerator, Intent, RecordId, SiteId, plan};

/// One local write to one record.
#[derive(Debug, Clone)]
pub struct WriteOp {
    /// The record's collection.
    pub collection: CollectionName,
    /// The record's id.
    pub id: RecordId,
    /// What to do to it.
    pub intent: Intent,
}

/// What deciding the ops of one write needs besides the ops: borrowed from
/// the store for the length of the write.
pub(crate) struct Planner<'s> {
    /// The collections' declared data versions and schemas.
    pub(crate) schemas: &'s SchemaCache,
    /// The store's clock: one tick per op.
    pub(crate) hlc: &'s mut HlcGenerator,
    /// This node's site id, in every clock it issues.
    pub(crate) site: SiteId,
    /// The caps a local write is held to.
    pub(crate) origin: Origin,
    /// The largest value one field may hold.
    pub(crate) value_cap: usize,
    /// The write's log position, one sequence number per changed record.
    pub(crate) stamp: TxnStamp,
}

/// An op decided: the row to write and what to report of it.
#[derive(Debug)]
pub(crate) struct Planned {
    prepared: Prepared,
    collection: CollectionName,
    id: RecordId,
    clock: Clock,
}

impl Planner<'_> {
    /// Decides `op` on its record as `loaded`; `None` when it changes
    /// nothing. Errors refuse the whole write (a value over a cap, a patch
    /// of a record that is not alive, a schema's refusal, ...).
    pub(crate) fn plan(
        &mut self,
        op: WriteOp,
        cid: i64,
        loaded: &StoredSlots,
    ) -> Result<Option<Planned>, StoreError> {
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
            hlc: self.hlc.tick(crate::now_ms()),
            site: self.site,
        };
        for intent in std::iter::once(&intent).chain(stamp_patch.as_ref()) {
            for (slot, version) in plan(&after, intent, clock)? {
                // What peers check of every change (`Change::validate`): a
                // value they would refuse must not be written here either,
                // even into a record the whole-record cap lets through.
                if let Some(value) = &version.value {
                    value.check_limits(self.value_cap)?;
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
        let prepared = rows::prepare(cid, &op.id, loaded, &after, &mut self.stamp, self.origin)?;
        Ok(prepared.map(|prepared| Planned {
            prepared,
            collection: op.collection,
            id: op.id,
            clock,
        }))
    }
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

/// What a write's ops came to, in op order, as their rows are written.
#[derive(Debug, Default)]
pub(crate) struct Outcomes {
    /// How each changed record moved in its reconciliation tree.
    pub(crate) deltas: Vec<TreeDelta>,
    /// The records whose state changed.
    pub(crate) changed: Vec<RecordKey>,
    /// The clock of the last op that changed a record.
    pub(crate) last_clock: Option<Clock>,
}

impl Outcomes {
    /// Writes `planned`'s row (in `tx`) and records what it changed.
    pub(crate) fn write(
        &mut self,
        tx: &mut WriteTxn<'_>,
        planned: Planned,
    ) -> Result<(), StoreError> {
        self.deltas.push(rows::finish(tx, planned.prepared)?);
        self.changed.push((planned.collection, planned.id));
        self.last_clock = Some(planned.clock);
        Ok(())
    }
}
