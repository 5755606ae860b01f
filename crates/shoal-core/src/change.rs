//! The unit of replication: one [`Change`] is one slot version of one record,
//! plus the local change-log position ([`DbVersion`]) it was read at.
//!
//! This module owns the shape of a change and its self-consistency checks; it
//! does not decide merges (see `merge.rs`) nor encode for the wire.

use crate::clock::{Clock, Life};
use crate::error::CoreError;
use crate::ids::{CollectionName, FieldName, RecordId};
use crate::value::CanonicalJson;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;

/// A store's change-log position: bumped once per committed transaction
/// (more than once for one of over 1,048,575 changes).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct DbVersion(pub u64);

impl fmt::Display for DbVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An exact position in a store's change log: the transaction's [`DbVersion`]
/// and the change's sequence number within it. Ordered; a cursor that has
/// seen position `p` has seen every change at or before `p`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct LogPosition {
    /// The transaction.
    pub version: DbVersion,
    /// The change's place within the transaction.
    pub seq: u32,
}

impl LogPosition {
    /// The position just after every change of `version` and before: "since `version`".
    pub fn after_version(version: DbVersion) -> Self {
        Self {
            version,
            seq: u32::MAX,
        }
    }
}

impl fmt::Display for LogPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.version, self.seq)
    }
}

/// How far a replica has received another replica's log.
///
/// The log is ordered by the position at which each record *last* changed, and
/// a record carries every slot version it holds, each with the db_version that
/// wrote it. A cursor `(base, position)` means: every slot version newer than
/// `base` of every record whose log position is at most `position` has been
/// received — and everything at or before `base` was received before. A reader
/// resuming from the cursor therefore asks for records after `position` and,
/// of those, only the slot versions newer than `base`. When a catch-up reaches
/// the end of the log the cursor becomes *complete*: `base` moves up to the end.
///
/// A record too big for one frame is read in parts: then `partial` is
/// `Some(n)` — every record *before* `position` was received, and of the
/// record at `position` only its first `n` stored slots (in slot order, which
/// puts [`Slot::Life`] first). A record never changes in place: rewritten, it
/// moves to a later position, so a reader resuming inside a record that has
/// moved simply reads it again there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct SyncCursor {
    /// Slot versions at or below this db_version were received by an earlier, completed pass.
    pub base: DbVersion,
    /// Records up to this position have been received (their slots newer than `base`).
    pub position: LogPosition,
    /// `Some(n)`: the record at `position` was received only up to its first
    /// `n` stored slots (n ≥ 1); `None`: it was received whole.
    pub partial: Option<u32>,
}

impl SyncCursor {
    /// The complete cursor at the end of a log that ended at `version`.
    pub fn complete(version: DbVersion) -> Self {
        Self {
            base: version,
            position: LogPosition::after_version(version),
            partial: None,
        }
    }

    /// The cursor after receiving a read of whole records that ended at
    /// `upto`; when nothing `more` remained, `upto` is the end of the log and
    /// the cursor completes.
    pub fn advance(self, upto: LogPosition, more: bool) -> Self {
        self.advance_within(upto, None, more)
    }

    /// The cursor after receiving a read that ended at `upto` — inside the
    /// record there, after its first `partial` slots, if `Some`.
    pub fn advance_within(self, upto: LogPosition, partial: Option<u32>, more: bool) -> Self {
        if more {
            let next = Self {
                base: self.base,
                position: upto,
                partial,
            };
            if next.reach() >= self.reach() {
                next
            } else {
                self
            }
        } else {
            Self::complete(upto.version.max(self.base))
        }
    }

    /// How far the cursor has read, as a totally ordered key: a record read
    /// in part sorts after every earlier record and before its own end.
    pub fn reach(&self) -> (LogPosition, u32) {
        (self.position, self.partial.unwrap_or(u32::MAX))
    }

    /// The cursor as the store persists it: a cursor inside a record is kept
    /// as the point just before that record (everything before it was
    /// received), so a new session reads the record again from its start.
    pub fn durable(self) -> Self {
        match self.partial {
            None => self,
            Some(_) => {
                let LogPosition { version, seq } = self.position;
                let position = match seq.checked_sub(1) {
                    Some(seq) => LogPosition { version, seq },
                    None => LogPosition::after_version(DbVersion(version.0.saturating_sub(1))),
                };
                Self {
                    base: self.base,
                    position,
                    partial: None,
                }
            }
        }
    }
}

impl fmt::Display for SyncCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == Self::complete(self.base) {
            write!(f, "{}", self.base)
        } else {
            write!(f, "{}+{}", self.base, self.position)?;
            match self.partial {
                Some(n) => write!(f, "/{n}"),
                None => Ok(()),
            }
        }
    }
}

/// One bounded read of a store's log for a peer: the changes, where the read
/// stopped and whether more remain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogRead {
    /// The changes, in log order (slots of one record together, in slot order).
    pub changes: Vec<Change>,
    /// Where the read stopped: the last record's position when `more`, else
    /// the end of the log.
    pub upto: LogPosition,
    /// `Some(n)` when the read stopped inside the record at `upto`, after its
    /// first `n` stored slots (only with `more`).
    pub partial: Option<u32>,
    /// Whether more changes remain after `upto`.
    pub more: bool,
    /// Records in the read's range that a partial peer may hold and that no
    /// longer match its filters: it drops them ([`crate::sync::Message::Leave`]).
    pub leaves: Vec<(CollectionName, RecordId)>,
    /// Collections the read passed over because the sharing rules do not
    /// send them to the peer: the read moves past their records all the
    /// same, so only a levelling walk brings them once a rule lets them
    /// flow. A session notes them as held back before it sends the read
    /// (shoal-net's `rule_watch.rs`); the protocol itself ignores them.
    pub held_back: BTreeSet<CollectionName>,
}

/// What part of a record a change writes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Slot {
    /// The record's life itself: a create, delete or re-create.
    Life,
    /// A whole field (a last-writer-wins register).
    Field(FieldName),
    /// One entry of a map field; entries merge independently.
    Entry(FieldName, String),
}

/// One slot version of one record, as it travels between replicas.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// Collection of the record.
    pub collection: CollectionName,
    /// Id of the record.
    pub id: RecordId,
    /// Which part of the record.
    pub slot: Slot,
    /// The new value; `None` is a tombstone (field or entry removed). Always
    /// `None` for [`Slot::Life`].
    pub value: Option<CanonicalJson>,
    /// The clock the writer gave this version.
    pub clock: Clock,
    /// The record life this version was written in.
    pub life: Life,
    /// Position, in the *sending* store's change log, of the record this slot
    /// version was read with (all slots of one record share it).
    pub position: LogPosition,
    /// The clock of the version the writer replaced ([`crate::SlotVersion::pred`]):
    /// read only to tell a concurrent overwrite from a sequential one for
    /// the conflict journal; [`crate::conflict::UNKNOWN_PRED`] when it came
    /// from a peer that did not send it. Not part of the change's binary
    /// encoding (postcard: the protocol-2 layout; the sync wire carries it
    /// in a tail when both peers have the feature, `sync/layout.rs`, and a
    /// store that keeps changes appends it itself); kept in human-readable
    /// ones (JSON).
    #[serde(with = "pred_in_text_only")]
    pub pred: Option<Clock>,
}

/// `Change::pred` in human-readable formats only: in a binary one it is a
/// unit, which postcard writes as nothing and reads as `None`.
mod pred_in_text_only {
    use crate::clock::Clock;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(super) fn serialize<S: Serializer>(pred: &Option<Clock>, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            pred.serialize(s)
        } else {
            s.serialize_unit()
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Clock>, D::Error> {
        if d.is_human_readable() {
            Option::<Clock>::deserialize(d)
        } else {
            <()>::deserialize(d).map(|()| None)
        }
    }
}

impl Change {
    /// Checks the parts of the change against each other and the value cap.
    pub fn validate(&self, value_cap: usize) -> Result<(), CoreError> {
        let reason = match (&self.slot, &self.value) {
            _ if self.life.0 == 0 => Some("life 0 is never written"),
            _ if self.life > Life::MAX => Some("life beyond any real record's"),
            (Slot::Life, Some(_)) => Some("a life change carries no value"),
            (Slot::Field(_) | Slot::Entry(..), _) if !self.life.is_alive() => {
                Some("field written in a deleted life")
            }
            (Slot::Entry(_, key), _) if key.len() > crate::ids::MAX_MAP_KEY_LEN => {
                Some("map key longer than 128 bytes")
            }
            _ => None,
        };
        if let Some(reason) = reason {
            return Err(CoreError::MalformedChange {
                collection: self.collection.to_string(),
                id: self.id.to_string(),
                reason,
            });
        }
        if let Some(value) = &self.value {
            value.check_limits(value_cap)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(version: u64, seq: u32) -> LogPosition {
        LogPosition {
            version: DbVersion(version),
            seq,
        }
    }

    #[test]
    fn a_cursor_inside_a_record_sorts_between_its_neighbours_and_persists_before_it() {
        let start = SyncCursor::complete(DbVersion(3));
        let inside = start.advance_within(at(5, 2), Some(10), true);
        assert_eq!(inside.partial, Some(10));
        assert!(inside.reach() > start.reach());
        let further = inside.advance_within(at(5, 2), Some(20), true);
        assert!(further.reach() > inside.reach());
        let past = further.advance(at(5, 2), true);
        assert!(past.reach() > further.reach());
        // Persisted: everything before the record, nothing of it.
        assert_eq!(
            inside.durable(),
            SyncCursor {
                base: DbVersion(3),
                position: at(5, 1),
                partial: None
            }
        );
        assert_eq!(past.durable(), past);
        // The end of the log completes the cursor, cut or not.
        assert_eq!(
            inside.advance_within(at(9, u32::MAX), None, false),
            SyncCursor::complete(DbVersion(9))
        );
        assert_eq!(inside.to_string(), "3+5.2/10");
    }
}
