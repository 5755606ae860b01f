//! One bounded read of the tab's change log for a peer, decided in memory
//! from the stored rows the caller feeds it in log order: the same changes
//! a native node sends (`shoal-store` log.rs `read_for_peer`) — for each
//! record after the cursor, its slot versions the peer does not hold yet
//! (written after the cursor's `base`, and not merged from that very peer in
//! this session), at most `max_changes` records and changes and about
//! `max_bytes`, the first change always going, a record too big for the rest
//! of the read cut between two slots and continued by the next read.
//!
//! The tab gives every record its own change-log position: a transaction
//! that writes n records takes n consecutive versions, each record at
//! `(version, seq 0)`. So a position names one record, and "after the
//! cursor" is "version above the cursor's" (or, for a cursor inside a
//! record, the rest of that record first).
//!
//! Pure: the storage's log read (`idb/sync_log.rs`, `sql/sync_log.rs`) or
//! the in-memory replica of the tests feeds it rows; nothing here touches storage.

use crate::error::WebError;
use crate::row::StoredRecord;
use shoal_core::{
    Change, CollectionName, DbVersion, LogPosition, LogRead, RecordId, Slot, SlotVersion,
    SyncCursor,
};

/// One stored record as the log reader sees it.
#[derive(Debug, Clone)]
pub struct LogRow {
    /// Its collection.
    pub collection: CollectionName,
    /// Its id.
    pub id: RecordId,
    /// Its change-log position's version (seq is always 0 in the tab).
    pub version: DbVersion,
    /// Its state and per-slot stamps.
    pub record: StoredRecord,
}

impl LogRow {
    /// A stored row: its collection and id (as stored in its key), its
    /// version and its state text. A key or state that does not decode is
    /// [`WebError::Corrupt`].
    pub fn decode(
        collection: &str,
        id: &str,
        version: DbVersion,
        state: &str,
    ) -> Result<LogRow, WebError> {
        let damaged = |e: shoal_core::CoreError| WebError::Corrupt(format!("record key: {e}"));
        Ok(LogRow {
            collection: CollectionName::new(collection).map_err(damaged)?,
            id: RecordId::new(id).map_err(damaged)?,
            version,
            record: StoredRecord::decode(state, version)?,
        })
    }

    /// The record's position in the tab's log.
    pub fn position(&self) -> LogPosition {
        position_of(self.version)
    }

    /// The change that carries `slot`'s `version` of this record, at the
    /// record's log position.
    pub fn change(&self, slot: &Slot, version: &SlotVersion) -> Change {
        Change {
            collection: self.collection.clone(),
            id: self.id.clone(),
            slot: slot.clone(),
            value: version.value.clone(),
            clock: version.clock,
            life: version.life,
            position: self.position(),
            pred: version.pred,
        }
    }
}

/// The log position of the record at `version`.
pub fn position_of(version: DbVersion) -> LogPosition {
    LogPosition { version, seq: 0 }
}

/// About how many bytes a change takes on the wire (its value, names, ids,
/// and room for the varints of clock, life and position) — the measure the
/// native store budgets reads with.
pub fn change_size(change: &Change) -> usize {
    let value = change.value.as_ref().map_or(0, |v| v.as_str().len());
    let slot = match &change.slot {
        Slot::Life => 0,
        Slot::Field(f) => f.as_str().len(),
        Slot::Entry(f, k) => f.as_str().len() + k.len(),
    };
    value + slot + change.collection.as_str().len() + change.id.as_str().len() + 40
}

/// How much of a record a read took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Taken {
    Whole,
    Cut(u32),
    NoRoom,
}

/// A read in progress. Feed it [`LogReader::resume`] (when the cursor is
/// inside a record), then rows after the cursor in log order while
/// [`LogReader::wants_more`], then [`LogReader::finish`].
pub struct LogReader<H: Fn(DbVersion) -> bool> {
    cursor: SyncCursor,
    max_records: u32,
    max_changes: usize,
    max_bytes: usize,
    bytes: usize,
    records: u32,
    changes: Vec<Change>,
    done: (LogPosition, Option<u32>),
    stopped: bool,
    held: H,
}

impl<H: Fn(DbVersion) -> bool> LogReader<H> {
    /// A read after `cursor`; `held(v)` says whether the peer holds the slot
    /// versions written at `v` (at or below the cursor's base, or merged from
    /// it in this session).
    pub fn new(cursor: SyncCursor, max_changes: u32, max_bytes: u32, held: H) -> Self {
        LogReader {
            cursor,
            max_records: max_changes.max(1),
            max_changes: max_changes.max(1) as usize,
            max_bytes: max_bytes.max(1) as usize,
            bytes: 0,
            records: 0,
            changes: Vec::new(),
            done: (cursor.position, cursor.partial),
            stopped: false,
            held,
        }
    }

    /// The version rows must be above (exclusive lower bound of the scan).
    pub fn after_version(&self) -> DbVersion {
        self.cursor.position.version
    }

    /// Whether the cursor stopped inside a record: call [`Self::resume`]
    /// with the row now at its position first.
    pub fn inside_record(&self) -> bool {
        self.cursor.partial.is_some()
    }

    /// Whether the read takes more rows.
    pub fn wants_more(&self) -> bool {
        !self.stopped
    }

    /// Continues the record the cursor stopped inside, if it is still at the
    /// cursor's position (`row`; rewritten since, it moved on and is read
    /// again whole where it is now).
    pub fn resume(&mut self, row: Option<&LogRow>) {
        let Some(from) = self.cursor.partial else {
            return;
        };
        if let Some(row) = row.filter(|r| r.position() == self.cursor.position) {
            match self.take_row(row, from) {
                Taken::Whole => {}
                Taken::Cut(slots) => {
                    self.done.1 = Some(slots);
                    self.stopped = true;
                }
                Taken::NoRoom => self.stopped = true,
            }
        }
        if !self.stopped {
            self.done.1 = None;
        }
    }

    /// Takes the next row after the cursor (rows come in log order).
    pub fn take(&mut self, row: &LogRow) {
        if self.stopped {
            return;
        }
        if self.records == self.max_records {
            self.stopped = true;
            return;
        }
        self.records += 1;
        match self.take_row(row, 0) {
            Taken::Whole => self.done = (row.position(), None),
            Taken::Cut(slots) => {
                self.done = (row.position(), Some(slots));
                self.stopped = true;
            }
            Taken::NoRoom => self.stopped = true,
        }
    }

    fn take_row(&mut self, row: &LogRow, from: u32) -> Taken {
        let mut took = false;
        let base = self.cursor.base;
        for (index, (slot, version)) in row.record.state.slots().enumerate() {
            let written = row.record.written_at(slot).unwrap_or(row.version);
            if index < from as usize || written <= base || (self.held)(written) {
                continue;
            }
            let change = row.change(slot, version);
            let size = change_size(&change);
            let fits = self.changes.is_empty()
                || (self.changes.len() < self.max_changes
                    && self.bytes.saturating_add(size) <= self.max_bytes);
            if !fits {
                return if took {
                    Taken::Cut(index as u32)
                } else {
                    Taken::NoRoom
                };
            }
            self.bytes += size;
            self.changes.push(change);
            took = true;
        }
        Taken::Whole
    }

    /// The read, given the end of the log (`head`: the last version written)
    /// at the time of the read.
    pub fn finish(self, head: DbVersion) -> LogRead {
        let (upto, partial) = if self.stopped {
            self.done
        } else {
            (
                LogPosition::after_version(head).max(self.cursor.position),
                None,
            )
        };
        LogRead {
            changes: self.changes,
            upto,
            partial,
            more: self.stopped,
            leaves: Vec::new(),
            held_back: Default::default(),
        }
    }
}

/// The read when everything after a complete cursor was merged from the
/// peer itself: nothing to send, the log read to its end at once.
pub fn nothing_after(cursor: SyncCursor, head: DbVersion) -> LogRead {
    LogRead {
        changes: Vec::new(),
        upto: LogPosition::after_version(head.max(cursor.base)),
        partial: None,
        more: false,
        leaves: Vec::new(),
        held_back: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_core::{
        CanonicalJson, Clock, FieldName, Hlc, Life, RecordState, SiteId, SlotVersion,
    };

    fn row(id: &str, version: u64, fields: &[(&str, &str, u64)]) -> LogRow {
        let clock = Clock {
            hlc: Hlc::new(1, 0),
            site: SiteId(1),
        };
        let mut record = StoredRecord::default();
        let life = SlotVersion {
            value: None,
            clock,
            life: Life(1),
            pred: None,
        };
        record = record.merged(RecordState::from_slots([(Slot::Life, life)]), DbVersion(1));
        for (name, value, at) in fields {
            let mut state = record.state.clone();
            state.apply(
                Slot::Field(FieldName::new(*name).unwrap()),
                SlotVersion {
                    value: Some(CanonicalJson::from_trusted(value.to_string())),
                    clock,
                    life: Life(1),
                    pred: None,
                },
            );
            record = record.merged(state, DbVersion(*at));
        }
        LogRow {
            collection: CollectionName::new("c").unwrap(),
            id: RecordId::new(id).unwrap(),
            version: DbVersion(version),
            record,
        }
    }

    #[test]
    fn a_read_sends_what_is_newer_than_the_base_and_ends_at_the_head() {
        let rows = [
            row("a", 1, &[("x", "1", 1)]),
            row("b", 3, &[("x", "2", 2), ("y", "3", 3)]),
        ];
        // From the start: everything, then complete at the head.
        let mut read = LogReader::new(SyncCursor::default(), 100, 1 << 20, |_| false);
        rows.iter().for_each(|r| read.take(r));
        let read = read.finish(DbVersion(3));
        assert_eq!(read.changes.len(), 5);
        assert!(!read.more);
        assert_eq!(read.upto, LogPosition::after_version(DbVersion(3)));
        // After a complete cursor at 2: only the slot written at 3.
        let mut read = LogReader::new(SyncCursor::complete(DbVersion(2)), 100, 1 << 20, |_| false);
        read.take(&rows[1]);
        let read = read.finish(DbVersion(3));
        assert_eq!(read.changes.len(), 1);
        assert_eq!(
            read.changes[0].slot,
            Slot::Field(FieldName::new("y").unwrap())
        );
        // Echoes of the peer are left out.
        let mut read = LogReader::new(SyncCursor::default(), 100, 1 << 20, |v| v == DbVersion(3));
        rows.iter().for_each(|r| read.take(r));
        assert_eq!(read.finish(DbVersion(3)).changes.len(), 4);
    }

    #[test]
    fn a_full_read_stops_between_records_or_inside_one_and_resumes() {
        let rows = [
            row("a", 1, &[("x", "1", 1)]),
            row("b", 2, &[("x", "2", 2), ("y", "3", 2)]),
        ];
        // Two changes at most: "a" whole, no room for "b".
        let mut read = LogReader::new(SyncCursor::default(), 2, 1 << 20, |_| false);
        rows.iter().for_each(|r| read.take(r));
        let first = read.finish(DbVersion(2));
        assert!(first.more);
        assert_eq!(first.upto, position_of(DbVersion(1)));
        assert_eq!(first.changes.len(), 2);
        // A byte budget that fits one change of "b" cuts it after its first slot.
        let after = SyncCursor::default().advance(first.upto, true);
        let mut read = LogReader::new(after, 100, 10, |_| false);
        read.take(&rows[1]);
        let cut = read.finish(DbVersion(2));
        assert!(cut.more);
        assert_eq!(
            (cut.upto, cut.partial),
            (position_of(DbVersion(2)), Some(1))
        );
        // Resuming inside "b" takes the rest of it, then reaches the end.
        let inside = after.advance_within(cut.upto, cut.partial, true);
        let mut read = LogReader::new(inside, 100, 1 << 20, |_| false);
        assert!(read.inside_record());
        read.resume(Some(&rows[1]));
        let rest = read.finish(DbVersion(2));
        assert_eq!(rest.changes.len(), 2);
        assert!(!rest.more);
        // Rewritten since (moved to 5): the resume finds nothing there.
        let mut read = LogReader::new(inside, 100, 1 << 20, |_| false);
        read.resume(None);
        assert!(read.finish(DbVersion(5)).changes.is_empty());
    }
}
