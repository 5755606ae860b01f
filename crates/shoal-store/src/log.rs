//! The change log read side: every stored slot version after a position, in
//! log order, fetched in bounded pages so the whole log is never in memory.
//!
//! It owns the keyset pagination over the `(dbv, seq)` index; what to do with
//! the changes (send, copy, count) is the caller's business.

use crate::Store;
use crate::error::StoreError;
use crate::rows::{slot_from_columns, version_from_columns};
use rusqlite::params;
use shoal_core::{Change, CollectionName, DbVersion, LogPosition, RecordId};
use std::collections::VecDeque;

/// Default number of changes fetched per page by [`ChangeIter`].
pub const DEFAULT_PAGE: usize = 1024;

impl Store {
    /// Up to `limit` changes strictly after `after`, in log order.
    pub fn changes_page(
        &self,
        after: LogPosition,
        limit: usize,
    ) -> Result<Vec<Change>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT s.dbv, s.seq, c.name, r.rid, s.kind, s.field, s.key, s.value, s.hlc, s.site, s.life
             FROM slots s JOIN records r ON r.rk = s.rk JOIN collections c ON c.cid = r.cid
             WHERE (s.dbv, s.seq) > (?1, ?2)
             ORDER BY s.dbv, s.seq LIMIT ?3",
        )?;
        let mut rows = stmt.query(params![
            after.version.0 as i64,
            i64::from(after.seq),
            limit as i64
        ])?;
        let mut out = Vec::with_capacity(limit.min(DEFAULT_PAGE));
        while let Some(row) = rows.next()? {
            let version =
                version_from_columns(row.get(7)?, row.get(8)?, row.get(9)?, row.get(10)?)?;
            out.push(Change {
                position: LogPosition {
                    version: DbVersion(row.get::<_, i64>(0)? as u64),
                    seq: row.get::<_, i64>(1)? as u32,
                },
                collection: CollectionName::new(row.get::<_, String>(2)?)?,
                id: RecordId::new(row.get::<_, String>(3)?)?,
                slot: slot_from_columns(row.get(4)?, row.get(5)?, row.get(6)?)?,
                value: version.value,
                clock: version.clock,
                life: version.life,
            });
        }
        Ok(out)
    }

    /// One bounded read for a sync peer: changes after `after`, at most
    /// `max_changes` and — beyond the first — about `max_bytes` of values and
    /// ids. Returns the changes, where the reader continues from (the last
    /// change when more remain, else the end of the log now), and whether more remain.
    pub fn read_for_peer(
        &self,
        after: LogPosition,
        max_changes: u32,
        max_bytes: u32,
    ) -> Result<(Vec<Change>, LogPosition, bool), StoreError> {
        let limit = max_changes.max(1) as usize;
        let mut changes = self.changes_page(after, limit)?;
        let mut more = changes.len() == limit;
        let mut bytes = 0usize;
        if let Some(cut) = changes.iter().position(|c| {
            bytes += change_size(c);
            bytes > max_bytes as usize
        }) {
            let keep = cut.max(1);
            more |= keep < changes.len();
            changes.truncate(keep);
        }
        let upto = match (more, changes.last()) {
            (true, Some(last)) => last.position,
            _ => LogPosition::after_version(self.db_version).max(after),
        };
        Ok((changes, upto, more))
    }

    /// Every change committed after `version`, as a streaming iterator in
    /// db_version order (pages of [`DEFAULT_PAGE`] changes).
    pub fn changes_since(
        &self,
        version: DbVersion,
    ) -> ChangeIter<impl FnMut(LogPosition, usize) -> Result<Vec<Change>, StoreError> + '_> {
        ChangeIter::new(
            LogPosition::after_version(version),
            DEFAULT_PAGE,
            |after, limit| self.changes_page(after, limit),
        )
    }
}

/// About how many bytes a change takes on the wire.
fn change_size(change: &Change) -> usize {
    let value = change.value.as_ref().map_or(0, |v| v.as_str().len());
    let slot = match &change.slot {
        shoal_core::Slot::Life => 0,
        shoal_core::Slot::Field(f) => f.as_str().len(),
        shoal_core::Slot::Entry(f, k) => f.as_str().len() + k.len(),
    };
    value + slot + change.collection.as_str().len() + change.id.as_str().len() + 40
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
    /// Iterates the changes after `after`, `page_size` (at least 1) per fetch.
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
