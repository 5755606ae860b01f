//! The conflict journal: a per-node, bounded record of values that lost a
//! merge to a *concurrent* value (neither writer had seen the other's), so a
//! person can see what a concurrent edit overwrote and write it back.
//!
//! This module owns the `conflicts` table (created by schema step 7,
//! `schema.rs`): adding entries within the caller's transaction, pruning to
//! [`JournalBounds`], and listing. It decides nothing about what is a
//! conflict (the core's merge does) and never affects sync: nothing here is
//! replicated, read by a merge, or counted in a record's state.

use crate::error::StoreError;
use crate::write_txn::WriteTxn;
use crate::{Store, now_ms};
use rusqlite::{Connection, params};
use shoal_core::{CanonicalJson, Clock, CollectionName, FieldName, Hlc, RecordId, SiteId, Slot};

/// Default most entries kept: 10,000.
pub const DEFAULT_JOURNAL_MAX_ENTRIES: u64 = 10_000;
/// Default longest an entry is kept: 90 days.
pub const DEFAULT_JOURNAL_MAX_AGE_MS: u64 = 90 * 24 * 60 * 60 * 1000;
/// Most entries one [`Store::conflicts`] call returns.
pub const MAX_CONFLICTS_LISTED: usize = 10_000;

/// How much of the journal a node keeps (a [`crate::StoreConfig`] option).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalBounds {
    /// Most entries kept; the oldest go first. 0 turns the journal off.
    pub max_entries: u64,
    /// Longest an entry is kept, in milliseconds.
    pub max_age_ms: u64,
}

impl Default for JournalBounds {
    fn default() -> Self {
        Self {
            max_entries: DEFAULT_JOURNAL_MAX_ENTRIES,
            max_age_ms: DEFAULT_JOURNAL_MAX_AGE_MS,
        }
    }
}

/// One side of a conflict: a slot's value and the clock it was written with
/// (the clock names the writer's site).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConflictSide {
    /// The value; `None` is a tombstone (a removed field or entry, or a
    /// deleted record when the slot is [`Slot::Life`]).
    pub value: Option<CanonicalJson>,
    /// The writer's clock: its HLC and site.
    pub clock: Clock,
}

/// One journal entry: in `collection`/`id`, the value `lost` was replaced by
/// (or lost to) the concurrent value `kept`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConflictEntry {
    /// The record's collection.
    pub collection: CollectionName,
    /// The record's id.
    pub id: RecordId,
    /// Which part of the record: a whole field, one map entry, or
    /// [`Slot::Life`] for the record itself (a write that lost to a delete).
    pub slot: Slot,
    /// The value the record holds after the merge.
    pub kept: ConflictSide,
    /// The value the merge dropped.
    pub lost: ConflictSide,
    /// When the conflict was journalled: local wall time, ms since the Unix epoch.
    pub at_ms: u64,
}

impl ConflictEntry {
    /// The entry for a conflict the core's merge reported in
    /// `collection`/`id`, journalled at `at_ms`.
    pub fn of(
        collection: &CollectionName,
        id: &RecordId,
        conflict: shoal_core::Conflict,
        at_ms: u64,
    ) -> Self {
        let side = |v: shoal_core::SlotVersion| ConflictSide {
            value: v.value,
            clock: v.clock,
        };
        Self {
            collection: collection.clone(),
            id: id.clone(),
            slot: conflict.slot,
            kept: side(conflict.kept),
            lost: side(conflict.lost),
            at_ms,
        }
    }
}

/// A journal entry as listed, with its place in the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalledConflict {
    /// Insertion order in this node's journal (increasing).
    pub n: i64,
    /// The entry.
    pub entry: ConflictEntry,
}

/// What to list from the journal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConflictQuery {
    /// Only this collection's conflicts (all if `None`).
    pub collection: Option<CollectionName>,
    /// Only conflicts journalled at or after this time (ms since the Unix epoch).
    pub since_ms: Option<u64>,
    /// Most entries returned, newest first (capped at [`MAX_CONFLICTS_LISTED`]; `None`: the cap).
    pub limit: Option<usize>,
}

/// Adds `entries` to the journal **within the caller's transaction** (an
/// entry whose lost version, in the same slot, is already journalled is
/// skipped) and
/// prunes it to `bounds` (entries older than `bounds.max_age_ms` before
/// `now_ms`, then the oldest past `bounds.max_entries`). With
/// `bounds.max_entries == 0` nothing is written.
///
/// How to call it: from any write path in this crate that drops a value in
/// favour of one its writer had not seen, inside the same transaction as the
/// merge, with the store's bounds and the transaction's wall time:
/// `conflict_journal::insert(&tx, &entries, self.config.journal, now)?` —
/// only when there is something to journal (it runs two pruning statements),
/// so merges without a conflict pay nothing. From outside a transaction use
/// [`Store::journal_conflicts`].
pub(crate) fn insert(
    tx: &Connection,
    entries: &[ConflictEntry],
    bounds: JournalBounds,
    now_ms: u64,
) -> Result<(), StoreError> {
    if entries.is_empty() || bounds.max_entries == 0 {
        return Ok(());
    }
    let mut add = tx.prepare_cached(
        "INSERT INTO conflicts (at_ms, collection, rid, field, entry_key, kept_value, kept_hlc,
             kept_site, lost_value, lost_hlc, lost_site)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?;
    let mut known = tx.prepare_cached(
        "SELECT 1 FROM conflicts WHERE lost_hlc = ?1 AND lost_site = ?2 AND rid = ?3
             AND collection = ?4 AND field IS ?5 AND entry_key IS ?6",
    )?;
    for e in entries {
        let (field, key) = match &e.slot {
            Slot::Life => (None, None),
            Slot::Field(f) => (Some(f.as_str()), None),
            Slot::Entry(f, k) => (Some(f.as_str()), Some(k.as_str())),
        };
        // The same lost version met again (from another peer, or sent twice).
        if known.exists(params![
            e.lost.clock.hlc.packed() as i64,
            e.lost.clock.site.0 as i64,
            e.id.as_str(),
            e.collection.as_str(),
            field,
            key
        ])? {
            continue;
        }
        add.execute(params![
            e.at_ms as i64,
            e.collection.as_str(),
            e.id.as_str(),
            field,
            key,
            e.kept.value.as_ref().map(CanonicalJson::as_str),
            e.kept.clock.hlc.packed() as i64,
            e.kept.clock.site.0 as i64,
            e.lost.value.as_ref().map(CanonicalJson::as_str),
            e.lost.clock.hlc.packed() as i64,
            e.lost.clock.site.0 as i64,
        ])?;
    }
    prune(tx, bounds, now_ms)
}

/// Drops entries past the bounds.
fn prune(tx: &Connection, bounds: JournalBounds, now_ms: u64) -> Result<(), StoreError> {
    let oldest = now_ms.saturating_sub(bounds.max_age_ms);
    tx.prepare_cached("DELETE FROM conflicts WHERE at_ms < ?1")?
        .execute([oldest as i64])?;
    tx.prepare_cached("DELETE FROM conflicts WHERE n <= (SELECT max(n) FROM conflicts) - ?1")?
        .execute([bounds.max_entries.min(i64::MAX as u64) as i64])?;
    Ok(())
}

/// Reads one row back. The row was written by [`insert`] from validated
/// types; a row that no longer parses is damage, reported as such.
fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<JournalledConflict, String>> {
    let n: i64 = r.get(0)?;
    let at_ms: i64 = r.get(1)?;
    let collection: String = r.get(2)?;
    let rid: String = r.get(3)?;
    let field: Option<String> = r.get(4)?;
    let key: Option<String> = r.get(5)?;
    let side = |value: Option<String>, hlc: i64, site: i64| ConflictSide {
        value: value.map(CanonicalJson::from_trusted),
        clock: Clock {
            hlc: Hlc::from_packed(hlc as u64),
            site: SiteId(site as u64),
        },
    };
    let kept = side(r.get(6)?, r.get(7)?, r.get(8)?);
    let lost = side(r.get(9)?, r.get(10)?, r.get(11)?);
    Ok((|| {
        let collection = CollectionName::new(collection).map_err(|e| e.to_string())?;
        let id = RecordId::new(rid).map_err(|e| e.to_string())?;
        let slot = match (field, key) {
            (None, _) => Slot::Life,
            (Some(f), None) => Slot::Field(FieldName::new(f).map_err(|e| e.to_string())?),
            (Some(f), Some(k)) => Slot::Entry(FieldName::new(f).map_err(|e| e.to_string())?, k),
        };
        Ok(JournalledConflict {
            n,
            entry: ConflictEntry {
                collection,
                id,
                slot,
                kept,
                lost,
                at_ms: at_ms as u64,
            },
        })
    })())
}

impl Store {
    /// Adds `entries` to this node's conflict journal in a transaction of
    /// their own, pruned to the store's [`JournalBounds`]
    /// ([`crate::StoreConfig::journal`]). Merges journal their own conflicts
    /// in their transaction; this is for callers outside one.
    pub fn journal_conflicts(&mut self, entries: &[ConflictEntry]) -> Result<(), StoreError> {
        let tx = WriteTxn::begin(&mut self.db)?;
        insert(&tx, entries, self.config.journal, now_ms())?;
        tx.commit()?;
        Ok(())
    }

    /// This node's journalled conflicts, newest first, filtered by `query`.
    /// Entries past the age bound are not listed (they are pruned at the next
    /// insert).
    pub fn conflicts(&self, query: &ConflictQuery) -> Result<Vec<JournalledConflict>, StoreError> {
        let oldest = now_ms().saturating_sub(self.config.journal.max_age_ms);
        let since = query.since_ms.unwrap_or(0).max(oldest);
        let limit = query
            .limit
            .unwrap_or(MAX_CONFLICTS_LISTED)
            .min(MAX_CONFLICTS_LISTED);
        let mut stmt = self.db.conn.prepare_cached(
            "SELECT n, at_ms, collection, rid, field, entry_key, kept_value, kept_hlc, kept_site,
                 lost_value, lost_hlc, lost_site
             FROM conflicts WHERE at_ms >= ?1 AND (?2 IS NULL OR collection = ?2)
             ORDER BY n DESC LIMIT ?3",
        )?;
        let rows = stmt.query_map(
            params![
                since as i64,
                query.collection.as_ref().map(CollectionName::as_str),
                limit as i64
            ],
            from_row,
        )?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row?.map_err(|detail| StoreError::Corrupt {
                path: self.path.clone(),
                detail: format!("unreadable conflict journal entry: {detail}"),
            })?);
        }
        Ok(out)
    }
}
