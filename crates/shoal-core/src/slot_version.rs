//! [`SlotVersion`]: one stored version of a slot — value, writer's clock,
//! life, and the clock of the version it replaced — and its place in the
//! merge order.
//!
//! The merge rules that compare versions are `merge.rs`'s; what a lost
//! version records is `conflict.rs`'s. Both use this type, so it stands on
//! its own.

use crate::clock::{Clock, Life};
use crate::value::CanonicalJson;

/// One stored version of a slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotVersion {
    /// The value; `None` is a tombstone. Always `None` for [`Slot::Life`](crate::Slot::Life).
    pub value: Option<CanonicalJson>,
    /// The writer's clock.
    pub clock: Clock,
    /// The life it was written in.
    pub life: Life,
    /// The clock of the version its writer replaced: the writer's stored
    /// version of the slot in the same life when it wrote this one (`None`
    /// if it had none). Set by [`crate::plan`], carried with the version to
    /// every replica; only the conflict journal reads it (`conflict.rs`),
    /// never the merge order.
    pub pred: Option<Clock>,
}

impl SlotVersion {
    /// Its place in the merge order: life first, then clock.
    pub(crate) fn rank(&self) -> (Life, Clock) {
        (self.life, self.clock)
    }
}
