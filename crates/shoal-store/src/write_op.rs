//! What a local write is made of, [`WriteOp`], and what it returns,
//! [`WriteOutcome`]: the types the write path (`write.rs`), the devices'
//! write rules (`device_writes.rs`) and the devices' statements
//! (`devices.rs`) share. It owns the types only, no behaviour.

use crate::RecordKey;
use shoal_core::{Clock, CollectionName, DbVersion, Intent, RecordId};

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
    /// The db_version the transaction took (the last, for a write of more
    /// than 1,048,575 changes, which takes several); `None` if nothing changed.
    pub version: Option<DbVersion>,
    /// The records whose state changed, in write order.
    pub changed: Vec<RecordKey>,
    /// The clock of the last op that changed a record: every slot that op
    /// wrote carries it (for a one-op write, the write's clock); `None` if
    /// nothing changed.
    pub clock: Option<Clock>,
}
