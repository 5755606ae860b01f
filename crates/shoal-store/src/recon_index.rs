//! The reconciliation index of each collection: the fingerprints of the top
//! levels of the recon tree held in memory (`recon_tree.rs`), built once
//! from the file on first use and then updated on every committed write and
//! applied change. Deeper nodes and item lists are read from the
//! `recon_keys` table alone, a few dozen rows of one index range per node
//! (`recon_scans.rs`): it holds each record's key (which never changes)
//! with its digest, life and missing-blob count, and is brought up to date
//! from the change log before each use, so writes do not pay for it.
//!
//! It owns keeping the fingerprints and the table true, and handing out
//! views of them (`recon_snapshot.rs`); what to compare is the core's
//! `recon` walk. A commit by another process (seen through `data_version`)
//! drops the trees: they are rebuilt on next use. Trees are saved when the
//! store closes and taken back instead of rebuilt while still true (see
//! `recon_saved.rs`).

use crate::error::StoreError;
use crate::kept::Db;
use crate::log_pos::key_after;
use crate::recon_scans::KeptScans;
use crate::recon_snapshot::ReconSnapshot;
use crate::recon_tree::Tree;
use crate::rows::{self, TreeDelta, key_column};
use crate::write_txn::WriteTxn;
use rusqlite::{Connection, params};
use shoal_core::{DbVersion, LogPosition};
use std::collections::{HashMap, HashSet};

/// Records per page when bringing `recon_keys` up to date.
const KEY_PAGE: usize = 50_000;

/// One record's row of `recon_keys`: collection, key column, id, digest,
/// life, missing-blob count.
type KeyRow = (i64, i64, String, Vec<u8>, i64, i64);

/// Brings `recon_keys` up to date with `records` and moves the
/// `recon_indexed` mark to `head` — one transaction. Each row carries the
/// record's key (which never changes) and its digest, life and missing-blob
/// count as they are now: from the mark on, the records whose log position
/// moved since (every write moves it) are written again, in sorted pages;
/// with no mark (a new file, or one from before step 11) every record is,
/// read in key order. Blob arrivals, which change the missing count without
/// moving the log, update their row themselves (`blob_index.rs`).
pub(crate) fn catch_up_keys(db: &mut Db, head: i64) -> Result<(), StoreError> {
    let tx = WriteTxn::begin(db)?;
    let mark: Option<i64> = tx
        .query_row(
            "SELECT value FROM meta WHERE key = 'recon_indexed'",
            [],
            |r| r.get::<_, Vec<u8>>(0),
        )
        .ok()
        .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
        .map(i64::from_be_bytes);
    if mark.is_some_and(|mark| mark >= head) {
        return Ok(());
    }
    // Where the next page starts: a log position (after the mark), or a
    // primary key (every record).
    let mut after_log = key_after(LogPosition::after_version(DbVersion(
        mark.unwrap_or(0) as u64
    )));
    let mut after_pk = (i64::MIN, String::new());
    loop {
        let mut page: Vec<KeyRow> = Vec::with_capacity(KEY_PAGE);
        {
            let mut stmt = match mark {
                Some(_) => tx.prepare_cached(
                    "SELECT cid, rid, digest, life, missing, pos FROM records
                     WHERE pos > ?1 ORDER BY pos LIMIT ?2",
                )?,
                None => tx.prepare_cached(
                    "SELECT cid, rid, digest, life, missing, 0 FROM records
                     WHERE (cid, rid) > (?1, ?2) ORDER BY cid, rid LIMIT ?3",
                )?,
            };
            let mut rows = match mark {
                Some(_) => stmt.query(params![after_log, KEY_PAGE as i64])?,
                None => stmt.query(params![after_pk.0, after_pk.1, KEY_PAGE as i64])?,
            };
            while let Some(row) = rows.next()? {
                let (cid, rid): (i64, String) = (row.get(0)?, row.get(1)?);
                let key = rows::recon_key(&rid);
                after_log = row.get(5)?;
                after_pk = (cid, rid.clone());
                page.push((
                    cid,
                    key_column(key),
                    rid,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                ));
            }
        }
        let full = page.len() == KEY_PAGE;
        // Sorted, the writes walk the key table in order.
        page.sort_unstable();
        let mut upsert = tx.prepare_cached(
            "INSERT INTO recon_keys (cid, rkey, rid, digest, life, missing)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (cid, rkey, rid) DO UPDATE SET digest = excluded.digest,
                 life = excluded.life, missing = excluded.missing",
        )?;
        for (cid, rkey, rid, digest, life, missing) in &page {
            upsert.execute(params![cid, rkey, rid, digest, life, missing])?;
        }
        if !full {
            break;
        }
    }
    tx.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('recon_indexed', ?1)",
        [head.to_be_bytes().to_vec()],
    )?;
    tx.commit()?;
    Ok(())
}

/// Sets the missing-blob count of record `(cid, rid)` in `recon_keys`, if
/// its row is there yet (else the next catch-up writes it whole).
pub(crate) fn set_missing(
    tx: &Connection,
    cid: i64,
    rid: &str,
    missing: i64,
) -> Result<(), StoreError> {
    let key = rows::recon_key(rid);
    tx.prepare_cached(
        "UPDATE recon_keys SET missing = ?4 WHERE cid = ?1 AND rkey = ?2 AND rid = ?3",
    )?
    .execute(params![cid, key_column(key), rid, missing])?;
    Ok(())
}

/// The in-memory trees of the collections reconciled so far.
#[derive(Debug, Default)]
pub(crate) struct ReconIndex {
    trees: HashMap<i64, Tree>,
    /// Collections whose tree differs from what `recon_saved` holds.
    unsaved: HashSet<i64>,
    /// Trees built by reading every record, since the store opened.
    builds: u64,
    /// The log version `recon_keys` was last brought up to.
    pub(crate) keys_indexed_upto: Option<DbVersion>,
    /// Scans kept from earlier snapshots while nothing changed.
    scans: KeptScans,
}

impl ReconIndex {
    /// Forgets every tree (another process committed).
    pub(crate) fn clear(&mut self) {
        self.trees.clear();
        self.unsaved.clear();
        self.scans.clear();
    }

    /// Moves committed records in the trees already built.
    pub(crate) fn apply(&mut self, deltas: &[TreeDelta]) {
        if !deltas.is_empty() {
            self.scans.clear();
        }
        for delta in deltas {
            if let Some(tree) = self.trees.get_mut(&delta.cid) {
                let key = delta.key();
                if let Some(old) = delta.old {
                    tree.update(key, |fp| fp.remove(old.element()));
                }
                tree.update(key, |fp| fp.add(delta.new.element()));
                self.unsaved.insert(delta.cid);
            }
        }
    }

    /// Makes sure the tree of `cid` is in memory: the saved one if it was
    /// saved at log head `head` (the current one), else built now from
    /// every record.
    fn load_tree(
        &mut self,
        conn: &Connection,
        cid: i64,
        head: DbVersion,
    ) -> Result<(), StoreError> {
        if self.trees.contains_key(&cid) {
            return Ok(());
        }
        let tree = match crate::recon_saved::load(conn, cid, head)?.and_then(Tree::from_deepest) {
            Some(tree) => tree,
            None => {
                self.builds += 1;
                self.unsaved.insert(cid);
                Tree::build(conn, cid)?
            }
        };
        self.trees.insert(cid, tree);
        Ok(())
    }

    /// The view of collection `cid` at log head `head`: its tree (built
    /// or loaded if needed) and the scans kept while the head stays there.
    pub(crate) fn view<'a>(
        &'a mut self,
        conn: &'a Connection,
        cid: Option<i64>,
        head: DbVersion,
    ) -> Result<ReconSnapshot<'a>, StoreError> {
        if let Some(cid) = cid {
            self.load_tree(conn, cid, head)?;
        }
        self.scans.reset_unless(head, cid);
        Ok(ReconSnapshot::new(
            conn,
            cid,
            cid.and_then(|cid| self.trees.get(&cid)),
            &mut self.scans,
        ))
    }

    /// Trees built by reading every record since the store opened.
    pub(crate) fn builds(&self) -> u64 {
        self.builds
    }

    /// Saves the trees that changed since loaded or saved (see
    /// `recon_saved::save`); afterwards they count as saved if they were.
    pub(crate) fn save(
        &mut self,
        db: &mut Db,
        memo: &mut rows::HeadMemo,
    ) -> Result<(), StoreError> {
        if self.unsaved.is_empty() {
            return Ok(());
        }
        let trees = self
            .unsaved
            .iter()
            .filter_map(|cid| self.trees.get(cid).map(|t| (*cid, t.deepest())));
        if crate::recon_saved::save(db, memo, trees)? {
            self.unsaved.clear();
        }
        Ok(())
    }
}
