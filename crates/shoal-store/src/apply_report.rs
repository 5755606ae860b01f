//! [`ApplyReport`]: what merging a batch from another replica did, counted
//! per outcome. Both paths that merge remote changes return it — applying a
//! batch (`apply.rs`) and releasing held-back changes (`held.rs`) — so it
//! lives apart from either. It holds counts only and decides nothing.

use crate::RecordKey;
use shoal_core::DbVersion;

/// What applying a remote batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Slot versions that won and are now stored.
    pub applied: usize,
    /// Versions ignored because they were written in an older life of the record.
    pub stale: usize,
    /// Versions ignored because an equal or newer one is already stored.
    pub not_newer: usize,
    /// Versions left out because this store does not receive their
    /// collection from the sending peer (see the sharing rules).
    pub not_shared: usize,
    /// Changes to the devices collection left out because no replica takes
    /// them from another (a delete, a cleared field, a statement not
    /// signed by the owner or an admin; `shoal_core::devices::admissible`).
    pub not_admissible: usize,
    /// Values that lost to a concurrent one in this batch (whichever side
    /// held them), kept in the conflict journal (`conflict_journal.rs`).
    pub conflicts: usize,
    /// Changes held back because their clock is too far ahead of local
    /// time (see `held.rs`): merged later, not refused with the batch.
    pub held: usize,
    /// The local db_version the batch was committed at (the last, for a
    /// batch of more changes than one version holds); `None` if nothing changed.
    pub version: Option<DbVersion>,
    /// Records whose state changed, in key order.
    pub changed: Vec<RecordKey>,
}
