//! Tombstone collection, persisted: the collected ledger, each peer's
//! acknowledged position in this store's log, the collection pass and the
//! tombstone counts `shoal status` shows.
//!
//! Tables (schema step 8): `collected (cid, rid, life, hlc, site)` — one
//! small row per collected record, which merges and local writes read as the
//! tombstone it was (`rows::load_for_merge`; the statements on it are
//! `gc_ledger.rs`'s); `peer_acks (peer, acked)` — the db_version through
//! which each peer holds every record of this log (from its acks and catch-up
//! requests, `shoal_core::gc::acked_through`); and the partial index
//! `records_dead` over tombstone rows, which the pass and the counts read
//! instead of the whole table.
//!
//! What is collectable is the core's decision (`shoal_core::gc::fate`);
//! this module only reads, moves and counts rows. It never touches the
//! network.

use crate::conflict_journal::{ConflictEntry, ConflictSide};
use crate::error::StoreError;
use crate::log_pos::version_of;
use crate::rows;
use crate::write_txn::WriteTxn;
use crate::{Store, now_ms};
use rusqlite::{Connection, OptionalExtension, params};
use shoal_core::gc::{self, Fate, GcPolicy};
use shoal_core::recon::ReconKey;
use shoal_core::{Change, Clock, DbVersion, RecordId, RecordState, Slot, SyncCursor};
use std::collections::BTreeSet;

/// Tombstone rows read per transaction of a collection pass.
const PAGE: i64 = 1000;

/// What a collection pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Tombstone rows looked at.
    pub examined: u64,
    /// Rows collected (moved from the record table to the ledger).
    pub rows_reclaimed: u64,
    /// Tombstones kept because a known peer has not acknowledged them yet
    /// and they are within the horizon.
    pub kept: u64,
    /// Bytes of the file no longer in use afterwards (pages freed for reuse;
    /// the file itself shrinks only with `VACUUM`). 0 if nothing was freed.
    pub bytes_reclaimed: u64,
    /// Known peers whose acknowledgement is behind this log's head, with
    /// the db_version they acknowledged: they hold collection back until
    /// the horizon.
    pub waiting_for: Vec<(String, DbVersion)>,
}

/// Progress of a collection pass, after each page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcProgress {
    /// Tombstone rows looked at so far.
    pub examined: u64,
    /// Tombstone rows there were when the pass started.
    pub total: u64,
    /// Rows collected so far.
    pub collected: u64,
}

/// Tombstones this store holds (for `shoal status`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TombstoneStatus {
    /// Tombstone rows not yet collected.
    pub held: u64,
    /// Wall time (ms since the epoch) of the oldest held tombstone's delete.
    pub oldest_ms: Option<u64>,
    /// Records collected into the ledger.
    pub collected: u64,
}

/// Known peers with the db_version of this log each has acknowledged.
type Acks = Vec<(String, DbVersion)>;

/// The lowest acknowledgement of every known peer (`None`: no peer known),
/// and the peers behind `head`.
fn acknowledgements(
    conn: &Connection,
    head: DbVersion,
) -> Result<(Option<DbVersion>, Acks), StoreError> {
    let peers: Vec<(String, i64)> = conn
        .prepare_cached(
            "SELECT p.peer, COALESCE(a.acked, 0)
             FROM (SELECT peer FROM peer_cursors UNION SELECT peer FROM peer_acks) p
             LEFT JOIN peer_acks a ON a.peer = p.peer ORDER BY p.peer",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let lowest = peers.iter().map(|(_, a)| DbVersion(*a as u64)).min();
    let behind = peers
        .into_iter()
        .map(|(p, a)| (p, DbVersion(a as u64)))
        .filter(|(_, a)| *a < head)
        .collect();
    Ok((lowest, behind))
}

/// Pages of the file in use (not on the free list), and the page size.
fn used_bytes(conn: &Connection) -> Result<u64, StoreError> {
    let count: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    let free: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
    let size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    Ok((count - free).max(0) as u64 * size as u64)
}

/// The delete clock of a tombstone row's packed slots.
fn delete_clock(slots: &[u8]) -> Result<Option<Clock>, StoreError> {
    Ok(rows::unpack(slots)?
        .state
        .slot(&Slot::Life)
        .map(|v| v.clock))
}

/// Journal entries for the values of a stale live copy that lost to the
/// collected delete `tombstone` (the ledger's state of the record): each
/// value it carried, lost to the delete.
pub(crate) fn lost_to_delete(
    tombstone: &RecordState,
    changes: &[&Change],
    now_ms: u64,
) -> Vec<ConflictEntry> {
    let Some(delete) = tombstone.slot(&Slot::Life) else {
        return Vec::new();
    };
    changes
        .iter()
        .filter(|c| c.value.is_some())
        .map(|c| ConflictEntry {
            collection: c.collection.clone(),
            id: c.id.clone(),
            slot: c.slot.clone(),
            kept: ConflictSide {
                value: None,
                clock: delete.clock,
            },
            lost: ConflictSide {
                value: c.value.clone(),
                clock: c.clock,
            },
            at_ms: now_ms,
        })
        .collect()
}

impl Store {
    /// Records that `peer` holds this log through its cursor `cursor` (from
    /// its acknowledgement or catch-up request). Only ever moves forward.
    pub fn set_peer_acked(&mut self, peer: &str, cursor: SyncCursor) -> Result<(), StoreError> {
        let acked = gc::acked_through(cursor);
        self.db
            .conn
            .prepare_cached(
                "INSERT INTO peer_acks (peer, acked, updated_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT (peer) DO UPDATE SET acked = excluded.acked,
                     updated_ms = excluded.updated_ms WHERE excluded.acked > acked",
            )?
            .execute(params![peer, acked.0 as i64, now_ms() as i64])?;
        Ok(())
    }

    /// The db_version through which `peer` holds this log, as last
    /// acknowledged (`None` if it never did).
    pub fn peer_acked(&self, peer: &str) -> Result<Option<DbVersion>, StoreError> {
        let acked: Option<i64> = self
            .db
            .conn
            .prepare_cached("SELECT acked FROM peer_acks WHERE peer = ?1")?
            .query_row([peer], |r| r.get(0))
            .optional()?;
        Ok(acked.map(|a| DbVersion(a as u64)))
    }

    /// Tombstones held and collected, and the oldest one held.
    pub fn tombstones(&self) -> Result<TombstoneStatus, StoreError> {
        let (held, oldest): (i64, Option<Vec<u8>>) = self.db.conn.query_row(
            "SELECT count(*), (SELECT slots FROM records INDEXED BY records_dead
                 WHERE data IS NULL ORDER BY pos LIMIT 1)
             FROM records INDEXED BY records_dead WHERE data IS NULL",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let collected: i64 = self
            .db
            .conn
            .query_row("SELECT count(*) FROM collected", [], |r| r.get(0))?;
        let oldest_ms = match oldest {
            Some(slots) => delete_clock(&slots)?.map(|c| c.hlc.wall_ms()),
            None => None,
        };
        Ok(TombstoneStatus {
            held: held as u64,
            oldest_ms,
            collected: collected as u64,
        })
    }

    /// Collects the tombstones every known peer has acknowledged, and those
    /// older than the policy's horizon: each leaves the record table (its
    /// log entry and reconciliation entry with it) for the ledger. Runs in
    /// transactions of 1,000 tombstones, so writers and sync go on between
    /// them; `progress` is told after each. (A caller sharing the store can
    /// run the pass a page at a time: [`Store::gc_start`], [`Store::gc_step`].)
    pub fn collect_tombstones(
        &mut self,
        policy: GcPolicy,
        progress: &mut dyn FnMut(GcProgress),
    ) -> Result<GcReport, StoreError> {
        let mut pass = self.gc_start(policy)?;
        while self.gc_step(&mut pass)? {
            progress(pass.progress());
        }
        self.gc_finish(pass)
    }

    /// Starts a collection pass (see [`Store::collect_tombstones`]).
    pub fn gc_start(&mut self, policy: GcPolicy) -> Result<GcPass, StoreError> {
        Ok(GcPass {
            policy,
            before: used_bytes(&self.db.conn)?,
            total: self.tombstones()?.held,
            after: 0,
            report: GcReport::default(),
        })
    }

    /// Collects the next page of a pass in one transaction; `false` when
    /// the pass has looked at every tombstone.
    pub fn gc_step(&mut self, pass: &mut GcPass) -> Result<bool, StoreError> {
        let now = now_ms();
        let policy = pass.policy;
        let report = &mut pass.report;
        let tx = WriteTxn::begin(&mut self.db)?;
        if self
            .head_memo
            .refresh(&tx, tx.kept(), &mut self.db_version, &mut self.hlc)?
        {
            self.recon.clear();
        }
        let (acked, behind) = acknowledgements(&tx, self.db_version)?;
        report.waiting_for = behind;
        let page: Vec<(i64, String, i64, Vec<u8>)> = tx
            .prepare_cached(
                "SELECT cid, rid, pos, slots FROM records INDEXED BY records_dead
                 WHERE data IS NULL AND pos > ?1 ORDER BY pos LIMIT ?2",
            )?
            .query_map(params![pass.after, PAGE], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect::<Result<_, _>>()?;
        let Some((_, _, pos, _)) = page.last() else {
            return Ok(false);
        };
        pass.after = *pos;
        let mut touched = BTreeSet::new();
        for (cid, rid, pos, slots) in page {
            report.examined += 1;
            let Some(clock) = delete_clock(&slots)? else {
                report.kept += 1;
                continue;
            };
            let at = version_of(pos);
            if gc::fate(at, clock, acked, now, policy) == Fate::Keep {
                report.kept += 1;
                continue;
            }
            let life: i64 = tx
                .prepare_cached("SELECT life FROM records WHERE cid = ?1 AND rid = ?2")?
                .query_row(params![cid, rid], |r| r.get(0))?;
            tx.prepare_cached(
                "INSERT OR REPLACE INTO collected (cid, rid, life, hlc, site)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                cid,
                rid,
                life,
                clock.hlc.packed() as i64,
                clock.site.0 as i64
            ])?;
            tx.prepare_cached("DELETE FROM records WHERE cid = ?1 AND rid = ?2")?
                .execute(params![cid, rid])?;
            let key = rows::key_column(ReconKey::of(&RecordId::new(rid.clone())?));
            tx.prepare_cached("DELETE FROM recon_keys WHERE cid = ?1 AND rkey = ?2 AND rid = ?3")?
                .execute(params![cid, key, rid])?;
            touched.insert(cid);
            report.rows_reclaimed += 1;
        }
        if !touched.is_empty() {
            rows::keep_head(&tx, self.db_version, self.hlc.last())?;
            for cid in &touched {
                crate::recon_saved::forget(&tx, *cid)?;
            }
        }
        tx.commit()?;
        if !touched.is_empty() {
            self.recon.clear();
            self.head_memo.ledger_in_use = true;
        }
        Ok(true)
    }

    /// Ends a pass: what it did, with the bytes it freed.
    pub fn gc_finish(&mut self, pass: GcPass) -> Result<GcReport, StoreError> {
        let mut report = pass.report;
        report.bytes_reclaimed = pass.before.saturating_sub(used_bytes(&self.db.conn)?);
        Ok(report)
    }
}

/// A collection pass under way ([`Store::gc_start`]).
#[derive(Debug, Clone)]
pub struct GcPass {
    policy: GcPolicy,
    before: u64,
    total: u64,
    /// The key of the last tombstone row looked at (`log_pos.rs`).
    after: i64,
    report: GcReport,
}

impl GcPass {
    /// How far the pass has come.
    pub fn progress(&self) -> GcProgress {
        GcProgress {
            examined: self.report.examined,
            total: self.total.max(self.report.examined),
            collected: self.report.rows_reclaimed,
        }
    }
}
