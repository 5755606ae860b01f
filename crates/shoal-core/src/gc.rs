//! Tombstone collection, as pure decisions: when a deleted record may leave
//! a replica, and how a replica that has collected deletes judges a record
//! state a peer hands it, so a collected record never comes back to life.
//!
//! The rules (see `docs/merge.md`, "Tombstone collection"):
//!
//! - A tombstone whose log position every known peer has acknowledged
//!   ([`acked_through`]), or whose delete is older than the **horizon**
//!   (for peers that stay away longer), is collected ([`fate`]): its row
//!   leaves the record table — data, packed slots, log entry,
//!   reconciliation entry — and the **collected ledger** keeps only
//!   (collection, id, life, delete clock).
//! - The ledger is never emptied (only a re-create takes a record out of
//!   it). Merges and local writes see a ledger entry as the tombstone it
//!   was ([`Held::Collected`]), so collection changes no merge outcome: a
//!   stale copy (an older life) loses, a create at the id starts the next
//!   life, whenever a peer comes back.
//! - A state arriving alive in a life older than a ledger entry's is stale
//!   (the delete wins, as with the row); the replica journals its values and
//!   writes the tombstone back into its log ([`Arrival::Restate`]), so the
//!   peer that brought the stale copy receives the delete and it dies there
//!   too.
//!
//! This module never reads a clock or touches storage: times, positions and
//! acknowledgements come in as arguments.

use crate::change::{Change, DbVersion, Slot, SyncCursor};
use crate::clock::{Clock, Life};
use crate::merge::RecordState;
use crate::slot_version::SlotVersion;

/// Default horizon: 30 days. A tombstone older than this is forgotten even
/// if a known peer never acknowledged it.
pub const DEFAULT_HORIZON_MS: u64 = 30 * 24 * 60 * 60 * 1000;

/// When tombstones are collected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcPolicy {
    /// Tombstones whose delete clock is older than this (wall milliseconds
    /// before now) are forgotten, acknowledged or not.
    pub horizon_ms: u64,
}

impl Default for GcPolicy {
    fn default() -> Self {
        Self {
            horizon_ms: DEFAULT_HORIZON_MS,
        }
    }
}

/// The highest db_version `v` of a replica's log such that a peer whose
/// cursor in that log is `cursor` has received every record whose last
/// change is at or before `v`.
pub fn acked_through(cursor: SyncCursor) -> DbVersion {
    let position = cursor.position;
    let whole_version = position.seq == u32::MAX && cursor.partial.is_none();
    let by_position = if whole_version {
        position.version
    } else {
        DbVersion(position.version.0.saturating_sub(1))
    };
    cursor.base.max(by_position)
}

/// What happens to one tombstone at a collection pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Kept: a known peer may still lack the delete, and it is within the horizon.
    Keep,
    /// Collected: every known peer has acknowledged the delete, or it is
    /// older than the horizon. Its row goes; the ledger keeps its life and clock.
    Collect,
}

/// Decides a tombstone's fate.
///
/// `position` is the db_version of the tombstone's log position; `deleted`
/// the clock of its delete; `acked` the lowest [`acked_through`] of every
/// known peer (`None` when no peer is known yet: then only the horizon
/// collects, since a peer that joins later may hold the record).
pub fn fate(
    position: DbVersion,
    deleted: Clock,
    acked: Option<DbVersion>,
    now_ms: u64,
    policy: GcPolicy,
) -> Fate {
    let past_horizon = deleted.hlc.wall_ms().saturating_add(policy.horizon_ms) < now_ms;
    let acknowledged = acked.is_some_and(|acked| position <= acked);
    if past_horizon || acknowledged {
        Fate::Collect
    } else {
        Fate::Keep
    }
}

/// What a replica holds of a record a peer's changes are about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// A record row (alive or a tombstone): merge as usual.
    Row,
    /// A collected tombstone in the ledger, at this life, deleted at this clock.
    Collected {
        /// The tombstone's life (even).
        life: Life,
        /// The delete's clock.
        clock: Clock,
    },
    /// Nothing: never seen.
    Unknown,
}

impl Held {
    /// The state merges and local writes see: a collected record is the
    /// tombstone it was (its life slot alone); anything else has no state
    /// of its own here (`None`: use the row, or nothing).
    pub fn collected_state(&self) -> Option<RecordState> {
        match *self {
            Held::Collected { life, clock } => Some(RecordState::from_slots([(
                Slot::Life,
                SlotVersion {
                    value: None,
                    clock,
                    life,
                    // The ledger keeps no predecessor: only the conflict
                    // journal reads it, and a delete is never journalled.
                    pred: None,
                },
            )])),
            Held::Row | Held::Unknown => None,
        }
    }
}

/// How to take in a peer's changes to one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// Merge them as usual (into the row, or into the ledger's tombstone
    /// when they are newer than it: a re-create or a concurrent delete).
    Merge,
    /// They are stale against a collected tombstone (an older, live life):
    /// nothing of them merges; journal their values and write the tombstone
    /// back into the log, so the peer that still holds the record alive
    /// receives the delete.
    Restate,
}

/// Judges a peer's changes to one record against what this replica holds.
pub fn judge<'a>(held: Held, changes: impl IntoIterator<Item = &'a Change>) -> Arrival {
    let Held::Collected { life: dead, .. } = held else {
        return Arrival::Merge;
    };
    let newest = changes.into_iter().map(|c| c.life).max();
    match newest {
        Some(life) if life < dead && life.is_alive() => Arrival::Restate,
        _ => Arrival::Merge,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::change::LogPosition;
    use crate::ids::{CollectionName, RecordId, SiteId};
    use crate::value::CanonicalJson;

    fn clock(ms: u64) -> Clock {
        Clock {
            hlc: crate::Hlc::new(ms, 0),
            site: SiteId(1),
        }
    }

    fn change(slot: Slot, life: u64, ms: u64) -> Change {
        let value = match slot {
            Slot::Life => None,
            _ => Some(CanonicalJson::from_value(&serde_json::json!(1))),
        };
        Change {
            collection: CollectionName::new("c").unwrap(),
            id: RecordId::new("r").unwrap(),
            slot,
            value,
            clock: clock(ms),
            life: Life(life),
            position: LogPosition::default(),
            pred: None,
        }
    }

    fn field() -> Slot {
        Slot::Field(crate::FieldName::new("f").unwrap())
    }

    #[test]
    fn a_cursor_acknowledges_whole_versions_only() {
        assert_eq!(acked_through(SyncCursor::default()), DbVersion(0));
        assert_eq!(
            acked_through(SyncCursor::complete(DbVersion(9))),
            DbVersion(9)
        );
        let inside = SyncCursor {
            base: DbVersion(3),
            position: LogPosition {
                version: DbVersion(7),
                seq: 2,
            },
            partial: None,
        };
        assert_eq!(acked_through(inside), DbVersion(6));
        let early = SyncCursor {
            base: DbVersion(3),
            position: LogPosition {
                version: DbVersion(2),
                seq: 1,
            },
            partial: None,
        };
        assert_eq!(acked_through(early), DbVersion(3));
    }

    #[test]
    fn tombstones_are_collected_once_acknowledged_or_past_the_horizon() {
        let policy = GcPolicy { horizon_ms: 1000 };
        let at = DbVersion(5);
        assert_eq!(
            fate(at, clock(100), Some(DbVersion(4)), 200, policy),
            Fate::Keep
        );
        assert_eq!(
            fate(at, clock(100), Some(DbVersion(5)), 200, policy),
            Fate::Collect
        );
        assert_eq!(fate(at, clock(100), None, 200, policy), Fate::Keep);
        assert_eq!(
            fate(at, clock(100), Some(DbVersion(0)), 1100, policy),
            Fate::Keep
        );
        assert_eq!(
            fate(at, clock(100), Some(DbVersion(0)), 1101, policy),
            Fate::Collect
        );
    }

    #[test]
    fn a_ledger_entry_restates_its_delete_to_a_stale_copy() {
        let held = Held::Collected {
            life: Life(2),
            clock: clock(50),
        };
        let stale = [change(field(), 1, 60)];
        assert_eq!(judge(held, &stale), Arrival::Restate);
        let stale_create = [change(Slot::Life, 1, 90), change(field(), 1, 90)];
        assert_eq!(judge(held, &stale_create), Arrival::Restate);
        let recreated = [change(Slot::Life, 3, 70), change(field(), 3, 70)];
        assert_eq!(judge(held, &recreated), Arrival::Merge);
        let same = [change(Slot::Life, 2, 50)];
        assert_eq!(judge(held, &same), Arrival::Merge);
        assert_eq!(judge(Held::Row, &stale), Arrival::Merge);
        assert_eq!(judge(Held::Unknown, &stale), Arrival::Merge);
    }
}
