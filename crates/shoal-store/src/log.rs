//! The change log read side: records in the order of their last change, each
//! with its slot versions newer than a base version, read in bounded pages, so
//! the whole log is never in memory. Local pages never split a record; the
//! reads sync serves peers from are bounded by changes and bytes and cut a
//! record too big for one of them (see `parts.rs`).
//!
//! It owns the keyset pagination over the table's log-position key
//! (`log_pos.rs`) and the bounded reads sync serves peers from; what to do
//! with the changes is the caller's.

use crate::Store;
use crate::error::StoreError;
use crate::log_pos::{key_after, version_of};
use crate::packed_slots::unpack_slots;
use crate::partial::{PeerFilter, Verdict, record_data};
use crate::parts::{Budget, StoredRow, Taken, row_at};
use crate::write_txn::WriteTxn;
use rusqlite::params;
use shoal_core::{
    Change, CollectionName, DbVersion, Direction, LogPosition, LogRead, RecordId, SyncCursor,
};
use std::collections::{BTreeSet, VecDeque};

/// Default number of records fetched per page by [`ChangeIter`].
pub const DEFAULT_PAGE: usize = 1024;

impl Store {
    /// The changes of up to `record_limit` records after `after`, in log order:
    /// for each record, its slot versions written after `base`. Returns whether
    /// the record limit was reached (more may follow).
    fn log_records(
        &self,
        base: DbVersion,
        after: LogPosition,
        record_limit: usize,
    ) -> Result<(Vec<Change>, bool), StoreError> {
        let mut stmt = self.db.conn.prepare_cached(
            "SELECT r.dbv, r.seq, c.name, r.rid, r.slots
             FROM records r JOIN collections c ON c.cid = r.cid
             WHERE r.pos > ?1
             ORDER BY r.pos LIMIT ?2",
        )?;
        let mut rows = stmt.query(params![key_after(after), record_limit as i64])?;
        let mut out = Vec::new();
        let mut records = 0;
        while let Some(row) = rows.next()? {
            records += 1;
            let position = LogPosition {
                version: DbVersion(row.get::<_, i64>(0)? as u64),
                seq: row.get::<_, i64>(1)? as u32,
            };
            let collection = CollectionName::new(row.get::<_, String>(2)?)?;
            let id = RecordId::new(row.get::<_, String>(3)?)?;
            let blob = row.get_ref(4)?.as_blob().map_err(rusqlite::Error::from)?;
            for (slot, version, written_at) in unpack_slots(blob)? {
                if written_at > base {
                    out.push(Change {
                        collection: collection.clone(),
                        id: id.clone(),
                        slot,
                        value: version.value,
                        clock: version.clock,
                        life: version.life,
                        position,
                        pred: version.pred,
                    });
                }
            }
        }
        Ok((out, records == record_limit))
    }

    /// The changes of up to `limit` records after `after` whose slot versions
    /// are newer than `base`, in log order (a page never splits a record).
    pub fn changes_page(
        &self,
        base: DbVersion,
        after: LogPosition,
        limit: usize,
    ) -> Result<Vec<Change>, StoreError> {
        Ok(self.log_records(base, after, limit.max(1))?.0)
    }

    /// Starts a new session with `peer`: what it sent in earlier sessions is
    /// no longer taken as held by it (see `echo.rs`), so its reads carry
    /// everything after its cursor again.
    pub fn session_started(&mut self, peer: &str) {
        self.echoes.forget(peer);
    }

    /// One bounded read for a sync peer at `cursor`: at most `max_changes`
    /// changes (and records) and about `max_bytes` — the first change always
    /// goes, and a record that does not fit whole is cut between two slots
    /// (the read then stops inside it, [`LogRead::partial`]). A cursor inside
    /// a record continues after its cut if the record is still at that
    /// position; rewritten since, it is read again whole at its new place.
    ///
    /// Records of collections the sharing rules do not send to `peer` are
    /// left out; the read still moves past them. For a partial peer
    /// (`partial.rs`), a filtered collection's record goes whole if it
    /// matches the peer's filter, is named in [`LogRead::leaves`] if it does
    /// not and the peer was sent it before, and is left out otherwise.
    pub fn read_for_peer(
        &self,
        peer: &str,
        cursor: SyncCursor,
        max_changes: u32,
        max_bytes: u32,
    ) -> Result<LogRead, StoreError> {
        // Everything after a complete cursor was merged from this very
        // peer: it holds all of it, so the log is read to its end at once.
        let echoes = self.echoes.of(peer);
        if cursor == SyncCursor::complete(cursor.base)
            && echoes.covers(cursor.base, self.db_version)
        {
            return Ok(LogRead {
                changes: Vec::new(),
                upto: LogPosition::after_version(self.db_version.max(cursor.base)),
                partial: None,
                more: false,
                leaves: Vec::new(),
                held_back: Default::default(),
            });
        }
        // A slot version the peer holds: at or before the cursor's base, or
        // written by a transaction that merged the peer's own changes.
        let held = |written_at: DbVersion| written_at <= cursor.base || echoes.contains(written_at);
        // One read transaction: the rows and the end of the log agree.
        let tx = WriteTxn::begin_deferred(&self.db)?;
        let rules = self.sharing()?;
        let sends = |row: &StoredRow| rules.allows(peer, &row.collection, Direction::ToPeer);
        // What the rules make the read pass over, for the session to note.
        let mut held_back = BTreeSet::new();
        // A partial peer: a record it may see goes whole; one that left its
        // filters is named in `leaves`; any other is never mentioned.
        let filter = PeerFilter::load(&tx, peer)?;
        let mut leaves = Vec::new();
        let whole = |_: DbVersion| false;
        let mut budget = Budget::new(max_changes as usize, max_bytes as usize);
        let mut changes = Vec::new();
        // Everything up to here is read: a position, and inside it if cut.
        let mut done = (cursor.position, cursor.partial);
        let mut stopped = false;
        if let Some(from) = cursor.partial {
            match row_at(&tx, cursor.position)? {
                Some(row) if !sends(&row) => {
                    held_back.insert(row.collection);
                }
                Some(row) => {
                    let data = record_data(&tx, &row.collection, &row.id)?;
                    let verdict = filter.verdict(&tx, &row.collection, &row.id, data.as_deref())?;
                    let taken = match verdict {
                        Verdict::Full => row.take(from, held, &mut budget, &mut changes)?,
                        Verdict::Whole => row.take(from, whole, &mut budget, &mut changes)?,
                        Verdict::Leave | Verdict::Hidden => Taken::Whole,
                    };
                    match taken {
                        Taken::Whole => {}
                        Taken::Cut(slots) => {
                            done.1 = Some(slots);
                            stopped = true;
                        }
                        // Cannot happen on an empty budget; stop without progress.
                        Taken::NoRoom => stopped = true,
                    }
                }
                None => {}
            }
            if !stopped {
                done.1 = None;
            }
        }
        if !stopped {
            let mut stmt = tx.prepare_cached(
                "SELECT r.dbv, r.seq, c.name, r.rid, r.slots, r.data
                 FROM records r JOIN collections c ON c.cid = r.cid
                 WHERE r.pos > ?1
                 ORDER BY r.pos",
            )?;
            let mut rows = stmt.query([key_after(cursor.position)])?;
            let mut records = 0;
            while let Some(row_data) = rows.next()? {
                if records == max_changes.max(1) {
                    stopped = true;
                    break;
                }
                records += 1;
                let row = StoredRow {
                    position: LogPosition {
                        version: DbVersion(row_data.get::<_, i64>(0)? as u64),
                        seq: row_data.get::<_, i64>(1)? as u32,
                    },
                    collection: CollectionName::new(row_data.get::<_, String>(2)?)?,
                    id: RecordId::new(row_data.get::<_, String>(3)?)?,
                    slots: row_data.get(4)?,
                };
                if !sends(&row) {
                    held_back.insert(row.collection);
                    done = (row.position, None);
                    continue;
                }
                let data: Option<String> = match filter.filters(&row.collection) {
                    true => row_data.get(5)?,
                    false => None,
                };
                let taken = match filter.verdict(&tx, &row.collection, &row.id, data.as_deref())? {
                    Verdict::Full => row.take(0, held, &mut budget, &mut changes)?,
                    Verdict::Whole => row.take(0, whole, &mut budget, &mut changes)?,
                    Verdict::Leave => {
                        leaves.push((row.collection.clone(), row.id.clone()));
                        Taken::Whole
                    }
                    Verdict::Hidden => Taken::Whole,
                };
                match taken {
                    Taken::Whole => done = (row.position, None),
                    Taken::Cut(slots) => {
                        done = (row.position, Some(slots));
                        stopped = true;
                        break;
                    }
                    Taken::NoRoom => {
                        stopped = true;
                        break;
                    }
                }
            }
        }
        let (upto, partial) = if stopped {
            done
        } else {
            let head: Option<i64> = tx
                .prepare_cached("SELECT max(pos) FROM records")?
                .query_row([], |r| r.get(0))?;
            (
                LogPosition::after_version(head.map_or(DbVersion(0), version_of))
                    .max(cursor.position),
                None,
            )
        };
        // Commit, not roll back: a partial peer's read records what it was
        // sent (`partial_sent`).
        tx.commit()?;
        Ok(LogRead {
            changes,
            upto,
            partial,
            more: stopped,
            leaves,
            held_back,
        })
    }

    /// Every change committed after `version`, as a streaming iterator in log
    /// order (pages of [`DEFAULT_PAGE`] records).
    pub fn changes_since(
        &self,
        version: DbVersion,
    ) -> ChangeIter<impl FnMut(LogPosition, usize) -> Result<Vec<Change>, StoreError> + '_> {
        ChangeIter::new(
            LogPosition::after_version(version),
            DEFAULT_PAGE,
            move |after, limit| self.changes_page(version, after, limit),
        )
    }
}

/// A streaming iterator over the change log, fetching one bounded page at a
/// time from `fetch(after, limit)`; see [`Store::changes_since`].
///
/// Holds at most one page in memory. A read error ends the iteration after
/// yielding it.
pub struct ChangeIter<F> {
    fetch: F,
    after: LogPosition,
    page: VecDeque<Change>,
    page_size: usize,
    done: bool,
}

impl<F, E> ChangeIter<F>
where
    F: FnMut(LogPosition, usize) -> Result<Vec<Change>, E>,
{
    /// Iterates the changes after `after`, `page_size` (at least 1) records per fetch.
    pub fn new(after: LogPosition, page_size: usize, fetch: F) -> Self {
        Self {
            fetch,
            after,
            page: VecDeque::new(),
            page_size: page_size.max(1),
            done: false,
        }
    }
}

impl<F, E> Iterator for ChangeIter<F>
where
    F: FnMut(LogPosition, usize) -> Result<Vec<Change>, E>,
{
    type Item = Result<Change, E>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.page.is_empty() && !self.done {
            match (self.fetch)(self.after, self.page_size) {
                Ok(page) => {
                    // A page holds at least one change per record, so fewer
                    // changes than records asked for means the log ended.
                    self.done = page.len() < self.page_size;
                    if let Some(last) = page.last() {
                        self.after = last.position;
                    }
                    self.page = page.into();
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        self.page.pop_front().map(Ok)
    }
}
