//! Reading stored records into bounded messages, change by change: a record
//! bigger than what one message may carry is cut between two of its slots,
//! and the next message continues after the cut. This is what lets a record
//! of any size travel through frames of a fixed cap (catch-up chunks and
//! pushes, fetch answers).
//!
//! It owns the message budget and the cut; it does not decide which records
//! a read covers (`log.rs`, `federation.rs`) nor touch the packed layout
//! beyond `packed_slots::unpack_slots`.

use crate::error::StoreError;
use crate::packed_slots::unpack_slots;
use rusqlite::{Connection, OptionalExtension, params};
use shoal_core::{Change, CollectionName, DbVersion, LogPosition, RecordId, Slot};

/// About how many bytes a change takes on the wire (postcard: the value, the
/// slot's names, the record's collection and id, and room for the varints of
/// clock, life and position).
pub(crate) fn change_size(change: &Change) -> usize {
    let value = change.value.as_ref().map_or(0, |v| v.as_str().len());
    let slot = match &change.slot {
        Slot::Life => 0,
        Slot::Field(f) => f.as_str().len(),
        Slot::Entry(f, k) => f.as_str().len() + k.len(),
    };
    value + slot + change.collection.as_str().len() + change.id.as_str().len() + 40
}

/// What one message may still take: at most `max_changes` changes and about
/// `max_bytes`; the first change always fits, so every message makes progress.
#[derive(Debug)]
pub(crate) struct Budget {
    max_changes: usize,
    max_bytes: usize,
    changes: usize,
    bytes: usize,
}

impl Budget {
    pub(crate) fn new(max_changes: usize, max_bytes: usize) -> Self {
        Self {
            max_changes: max_changes.max(1),
            max_bytes: max_bytes.max(1),
            changes: 0,
            bytes: 0,
        }
    }

    fn fits(&self, size: usize) -> bool {
        self.changes == 0
            || (self.changes < self.max_changes
                && self.bytes.saturating_add(size) <= self.max_bytes)
    }
}

/// How much of a record a read took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Taken {
    /// Every remaining slot (or there was none to take).
    Whole,
    /// Slots up to (not including) this index; the rest did not fit.
    Cut(u32),
    /// Nothing: not even its first remaining slot fitted after what the
    /// message already holds.
    NoRoom,
}

/// One record's row: where it is in the log and its packed slots.
#[derive(Debug)]
pub(crate) struct StoredRow {
    pub(crate) collection: CollectionName,
    pub(crate) id: RecordId,
    pub(crate) position: LogPosition,
    pub(crate) slots: Vec<u8>,
}

impl StoredRow {
    /// Appends to `out` the record's slot versions from stored slot index
    /// `from` on, but those written by a transaction the reader already
    /// holds (`held(db_version)`: at or before its base, or merged from it),
    /// while `budget` allows.
    pub(crate) fn take(
        &self,
        from: u32,
        held: impl Fn(DbVersion) -> bool,
        budget: &mut Budget,
        out: &mut Vec<Change>,
    ) -> Result<Taken, StoreError> {
        let mut took = false;
        let slots = unpack_slots(&self.slots)?;
        for (index, (slot, version, written_at)) in slots.into_iter().enumerate() {
            if index < from as usize || held(written_at) {
                continue;
            }
            let change = Change {
                collection: self.collection.clone(),
                id: self.id.clone(),
                slot,
                value: version.value,
                clock: version.clock,
                life: version.life,
                position: self.position,
                pred: version.pred,
            };
            let size = change_size(&change);
            if !budget.fits(size) {
                return Ok(match took {
                    true => Taken::Cut(index as u32),
                    false => Taken::NoRoom,
                });
            }
            budget.changes += 1;
            budget.bytes += size;
            out.push(change);
            took = true;
        }
        Ok(Taken::Whole)
    }
}

/// The record whose last change is at `position`, if one still is.
pub(crate) fn row_at(
    conn: &Connection,
    position: LogPosition,
) -> Result<Option<StoredRow>, StoreError> {
    // A position no key holds (one from before the table was keyed by
    // them) has no row: its record moved on (`log_pos.rs`).
    let Some(key) = crate::log_pos::key_at(position) else {
        return Ok(None);
    };
    let row: Option<(String, String, Vec<u8>)> = conn
        .prepare_cached(
            "SELECT c.name, r.rid, r.slots FROM records r JOIN collections c ON c.cid = r.cid
             WHERE r.pos = ?1",
        )?
        .query_row([key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    row.map(|(collection, id, slots)| {
        Ok(StoredRow {
            collection: CollectionName::new(collection)?,
            id: RecordId::new(id)?,
            position,
            slots,
        })
    })
    .transpose()
}

/// The row of one record, if it was ever seen here.
pub(crate) fn row_of(
    conn: &Connection,
    collection: &CollectionName,
    id: &RecordId,
) -> Result<Option<StoredRow>, StoreError> {
    let row: Option<(i64, i64, Vec<u8>)> = conn
        .prepare_cached(
            "SELECT r.dbv, r.seq, r.slots FROM records r JOIN collections c ON c.cid = r.cid
             WHERE c.name = ?1 AND r.rid = ?2",
        )?
        .query_row(params![collection.as_str(), id.as_str()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    Ok(row.map(|(dbv, seq, slots)| StoredRow {
        collection: collection.clone(),
        id: id.clone(),
        position: LogPosition {
            version: DbVersion(dbv as u64),
            seq: seq as u32,
        },
        slots,
    }))
}
