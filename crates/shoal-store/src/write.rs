//! Local writes: one call is one SQLite transaction holding the data, the field
//! clocks and the change-log position of every record it touches.
//!
//! This module owns the write path's order of steps (check caps, stamp a clock,
//! plan through the core, persist the difference); it never merges by itself.

use crate::error::StoreError;
use crate::rows::{self, TxnStamp};
use crate::{RecordKey, Store, now_ms};
use shoal_core::{Clock, CollectionName, DbVersion, Intent, RecordId, plan};

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

/// What a committed write did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteOutcome {
    /// The db_version the transaction took; `None` if nothing changed.
    pub version: Option<DbVersion>,
    /// The records whose state changed, in write order.
    pub changed: Vec<RecordKey>,
}

impl Store {
    /// Applies local writes in one transaction: all of them or none.
    ///
    /// Errors (nothing is written): an oversized body ([`shoal_core::CoreError::ValueTooLarge`]),
    /// an invalid field name, a patch/delete of a record that is not alive
    /// ([`shoal_core::CoreError::RecordNotFound`]).
    pub fn write(
        &mut self,
        ops: impl IntoIterator<Item = WriteOp>,
    ) -> Result<WriteOutcome, StoreError> {
        let ops: Vec<WriteOp> = ops.into_iter().collect();
        let cap = self.config.max_value_bytes;
        for op in &ops {
            check_cap(&op.intent, cap)?;
        }
        let tx = rows::begin_write(&mut self.conn)?;
        // Another process (the CLI next to a daemon) may have committed since
        // our last look: continue its log and order our clock after its writes.
        let (head, head_hlc) = rows::log_head(&tx)?;
        self.db_version = self.db_version.max(head);
        self.hlc.raise_to(head_hlc);
        let clock = Clock {
            hlc: self.hlc.tick(now_ms()),
            site: self.identity.site(),
        };
        let mut stamp = TxnStamp::new(self.db_version);
        let mut changed = Vec::new();
        for op in ops {
            // Created inside the transaction: a failed write leaves no empty collection.
            let cid = rows::collection_id(&tx, &op.collection, true)?.unwrap_or_default();
            let loaded = rows::load(&tx, cid, &op.id)?;
            let mut after = loaded.state.clone();
            for (slot, version) in plan(&loaded.state, &op.intent, clock)? {
                after.apply(slot, version);
            }
            if rows::save(&tx, cid, &op.id, &loaded, &after, &mut stamp)? {
                changed.push((op.collection, op.id));
            }
        }
        tx.commit()?;
        let version = stamp.taken();
        if let Some(v) = version {
            self.db_version = v;
        }
        Ok(WriteOutcome { version, changed })
    }
}

/// The canonical encoded size of a value, counted without building the text.
fn encoded_len(value: &impl serde::Serialize) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing JSON into a counter cannot fail.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

fn check_cap(intent: &Intent, cap: usize) -> Result<(), StoreError> {
    let size = match intent {
        Intent::Put(object) | Intent::Patch(object) => encoded_len(object),
        Intent::MapSet { value, .. } => encoded_len(value),
        Intent::Delete | Intent::MapRemove { .. } => 0,
    };
    if size > cap {
        return Err(shoal_core::CoreError::ValueTooLarge { size, cap }.into());
    }
    Ok(())
}
