//! The reconciliation index of each collection: the fingerprints of the top
//! levels of the recon tree held in memory — as many levels as leave 8 to 128
//! records per deepest node, at most 5 (69,905 nodes, 1.6 MB, from 524,288
//! records up) — built once from the file on first use and then updated on
//! every committed write and applied change. Deeper nodes and item lists are
//! read from the `recon_keys` table alone, a few dozen rows of one index
//! range per node: it holds each record's key (which never changes) with its
//! digest, life and missing-blob count, and is brought up to date from the
//! change log before each use, so writes do not pay for it.
//!
//! It owns keeping the fingerprints true; what to compare is the core's
//! `recon` walk. A commit by another process (seen through `data_version`)
//! drops the trees: they are rebuilt on next use. Trees are saved when the
//! store closes and taken back instead of rebuilt while still true (see
//! `recon_saved.rs`).

use crate::error::StoreError;
use crate::rows::{self, TreeDelta, column_key, key_column};
use crate::write_txn::WriteTxn;
use rusqlite::{Connection, params};
use shoal_core::Life;
use shoal_core::recon::{
    FANOUT, Fingerprint, Item, Node, ReconKey, ReconView, StateDigest, element,
};
use shoal_core::{DbVersion, RecordId};
use std::collections::{HashMap, HashSet};

/// Deepest level ever held in memory.
const MAX_MEM_LEVEL: u8 = 4;

/// Records per deepest in-memory node the depth is chosen for.
const RECORDS_PER_NODE: u64 = 8;

/// One collection's in-memory levels: level `l` holds 16^l fingerprints.
#[derive(Debug)]
pub(crate) struct Tree {
    levels: Vec<Vec<Fingerprint>>,
}

impl Tree {
    /// Levels 0..=`depth`.
    fn empty(depth: u8) -> Self {
        Self {
            levels: (0..=depth)
                .map(|l| vec![Fingerprint::default(); FANOUT.pow(u32::from(l))])
                .collect(),
        }
    }

    /// The depth that leaves about [`RECORDS_PER_NODE`] records per deepest node.
    fn depth_for(records: u64) -> u8 {
        let mut depth = 0;
        while depth < MAX_MEM_LEVEL
            && (FANOUT as u64).pow(u32::from(depth) + 1) * RECORDS_PER_NODE <= records
        {
            depth += 1;
        }
        depth
    }

    /// The deepest level held.
    fn depth(&self) -> u8 {
        (self.levels.len() - 1) as u8
    }

    /// The deepest level (what is saved; the others are its sums).
    fn deepest(&self) -> &[Fingerprint] {
        self.levels.last().map_or(&[], Vec::as_slice)
    }

    /// The tree whose deepest level is `nodes`, the levels above summed from
    /// it; `None` unless `nodes` is a whole level no deeper than the cap.
    fn from_deepest(nodes: Vec<Fingerprint>) -> Option<Self> {
        let depth = (0..=MAX_MEM_LEVEL).find(|d| FANOUT.pow(u32::from(*d)) == nodes.len())?;
        let mut levels = vec![nodes];
        for _ in 0..depth {
            let below = levels.last()?;
            let above = below
                .chunks_exact(FANOUT)
                .map(|children| {
                    let mut fp = Fingerprint::default();
                    children.iter().for_each(|c| fp.merge(*c));
                    fp
                })
                .collect();
            levels.push(above);
        }
        levels.reverse();
        Some(Self { levels })
    }

    fn update(&mut self, key: ReconKey, f: impl Fn(&mut Fingerprint)) {
        for (level, nodes) in self.levels.iter_mut().enumerate() {
            let node = Node::at(level as u8, key);
            if let Some(fp) = nodes.get_mut(node.prefix() as usize) {
                f(fp);
            }
        }
    }

    fn get(&self, node: Node) -> Option<Fingerprint> {
        self.levels
            .get(usize::from(node.level()))
            .and_then(|nodes| nodes.get(node.prefix() as usize))
            .copied()
    }

    /// Reads every record of `cid` once.
    fn build(conn: &Connection, cid: i64) -> Result<Self, StoreError> {
        let records: i64 = conn
            .prepare_cached("SELECT count(*) FROM records WHERE cid = ?1")?
            .query_row([cid], |r| r.get(0))?;
        let mut tree = Self::empty(Self::depth_for(records as u64));
        let mut stmt =
            conn.prepare_cached("SELECT rid, digest, life, missing FROM records WHERE cid = ?1")?;
        let mut rows = stmt.query([cid])?;
        while let Some(row) = rows.next()? {
            let rid = row.get_ref(0)?.as_str().map_err(rusqlite::Error::from)?;
            let key = ReconKey(u64::from_be_bytes(key_bytes(rid)));
            let digest = digest_column(row.get_ref(1)?.as_blob().map_err(rusqlite::Error::from)?)?;
            let life = Life(row.get::<_, i64>(2)? as u64);
            let e = element(digest, rows::flags_of(life, row.get::<_, i64>(3)? > 0));
            tree.update(key, |fp| fp.add(e));
        }
        Ok(tree)
    }
}

/// The first 8 bytes of BLAKE3 of an id (its [`ReconKey`]), without
/// validating the id again.
fn key_bytes(rid: &str) -> [u8; 8] {
    let mut out = [0u8; 8];
    out.copy_from_slice(&blake3::hash(rid.as_bytes()).as_bytes()[..8]);
    out
}

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
pub(crate) fn catch_up_keys(conn: &mut Connection, head: i64) -> Result<(), StoreError> {
    let tx = WriteTxn::begin(conn)?;
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
    let (mut after_log, mut after_pk) = ((mark.unwrap_or(0), i64::MAX), (i64::MIN, String::new()));
    loop {
        let mut page: Vec<KeyRow> = Vec::with_capacity(KEY_PAGE);
        {
            let mut stmt = match mark {
                Some(_) => tx.prepare_cached(
                    "SELECT cid, rid, digest, life, missing, dbv, seq FROM records
                     WHERE (dbv, seq) > (?1, ?2) ORDER BY dbv, seq LIMIT ?3",
                )?,
                None => tx.prepare_cached(
                    "SELECT cid, rid, digest, life, missing, 0, 0 FROM records
                     WHERE (cid, rid) > (?1, ?2) ORDER BY cid, rid LIMIT ?3",
                )?,
            };
            let mut rows = match mark {
                Some(_) => stmt.query(params![after_log.0, after_log.1, KEY_PAGE as i64])?,
                None => stmt.query(params![after_pk.0, after_pk.1, KEY_PAGE as i64])?,
            };
            while let Some(row) = rows.next()? {
                let (cid, rid): (i64, String) = (row.get(0)?, row.get(1)?);
                let key = ReconKey(u64::from_be_bytes(key_bytes(&rid)));
                after_log = (row.get(5)?, row.get(6)?);
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
    let key = ReconKey(u64::from_be_bytes(key_bytes(rid)));
    tx.prepare_cached(
        "UPDATE recon_keys SET missing = ?4 WHERE cid = ?1 AND rkey = ?2 AND rid = ?3",
    )?
    .execute(params![cid, key_column(key), rid, missing])?;
    Ok(())
}

pub(crate) fn digest_column(blob: &[u8]) -> Result<StateDigest, StoreError> {
    <[u8; 16]>::try_from(blob)
        .map(StateDigest)
        .map_err(|_| StoreError::Corrupt {
            path: Default::default(),
            detail: format!("a record digest of {} bytes", blob.len()),
        })
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
}

impl ReconIndex {
    /// Forgets every tree (another process committed).
    pub(crate) fn clear(&mut self) {
        self.trees.clear();
        self.unsaved.clear();
    }

    /// Moves committed records in the trees already built.
    pub(crate) fn apply(&mut self, deltas: &[TreeDelta]) {
        for delta in deltas {
            if let Some(tree) = self.trees.get_mut(&delta.cid) {
                if let Some(old) = delta.old {
                    tree.update(delta.key, |fp| fp.remove(old));
                }
                tree.update(delta.key, |fp| fp.add(delta.new));
                self.unsaved.insert(delta.cid);
            }
        }
    }

    /// The tree of `cid`: in memory, else the saved one if it was saved at
    /// log head `head` (the current one), else built now from every record.
    pub(crate) fn tree(
        &mut self,
        conn: &Connection,
        cid: i64,
        head: DbVersion,
    ) -> Result<&Tree, StoreError> {
        Ok(match self.trees.entry(cid) {
            std::collections::hash_map::Entry::Occupied(tree) => tree.into_mut(),
            std::collections::hash_map::Entry::Vacant(slot) => {
                let saved = crate::recon_saved::load(conn, cid, head)?.and_then(Tree::from_deepest);
                let tree = match saved {
                    Some(tree) => tree,
                    None => {
                        self.builds += 1;
                        self.unsaved.insert(cid);
                        Tree::build(conn, cid)?
                    }
                };
                slot.insert(tree)
            }
        })
    }

    /// Trees built by reading every record since the store opened.
    pub(crate) fn builds(&self) -> u64 {
        self.builds
    }

    /// Saves the trees that changed since loaded or saved (see
    /// `recon_saved::save`); afterwards they count as saved if they were.
    pub(crate) fn save(
        &mut self,
        conn: &mut Connection,
        memo: &mut rows::HeadMemo,
    ) -> Result<(), StoreError> {
        if self.unsaved.is_empty() {
            return Ok(());
        }
        let trees = self
            .unsaved
            .iter()
            .filter_map(|cid| self.trees.get(cid).map(|t| (*cid, t.deepest())));
        if crate::recon_saved::save(conn, memo, trees)? {
            self.unsaved.clear();
        }
        Ok(())
    }
}

/// One collection as reconciliation reads it: the memory tree for the top
/// levels, the `(cid, rkey)` index below. An unknown collection is empty.
///
/// Below the memory tree a node's records are read with one range scan, and
/// the last scan is kept for the snapshot's life: a walk asks about the same
/// node (its fingerprint, then its items) or a child of the node it just
/// split, one after the other, so each differing node is read once, not
/// once per question.
///
/// Its scans share one read transaction, begun by the first and ended when
/// the snapshot is dropped: a walk step reads thousands of nodes, and each
/// scan in a transaction of its own took and released WAL read locks (two
/// `fcntl` calls) and found the page cache to check again.
pub struct ReconSnapshot<'a> {
    conn: &'a Connection,
    cid: Option<i64>,
    tree: Option<&'a Tree>,
    /// The last scan, kept for the snapshot's life.
    last: Scan,
    /// Whether this snapshot began the read transaction its scans share.
    reading: bool,
}

impl<'a> ReconSnapshot<'a> {
    /// The view of collection `cid` (`None`: unknown, so empty) whose top
    /// levels are `tree`.
    pub(crate) fn new(conn: &'a Connection, cid: Option<i64>, tree: Option<&'a Tree>) -> Self {
        Self {
            conn,
            cid,
            tree,
            last: Scan::default(),
            reading: false,
        }
    }
}

impl Drop for ReconSnapshot<'_> {
    fn drop(&mut self) {
        if self.reading {
            // Ends a read-only transaction: nothing to write, so nothing to
            // lose; a failure leaves SQLite to end it when the connection
            // closes or the next write begins.
            let _ = self.conn.execute_batch("COMMIT");
        }
    }
}

/// A record as the reconciliation index lists it.
#[derive(Debug)]
struct Row {
    key: ReconKey,
    /// Where its id lies in the scan's `ids`.
    id: std::ops::Range<usize>,
    digest: StateDigest,
    flags: shoal_core::recon::ItemFlags,
}

/// One range scan of the index: the node scanned (`None` before the first
/// or after a failed one) and its records in key order. The buffers are
/// reused scan after scan, and the ids of one scan share one string: a walk
/// reads hundreds of thousands of rows and lists few of them as items.
#[derive(Debug, Default)]
struct Scan {
    node: Option<Node>,
    rows: Vec<Row>,
    ids: String,
}

impl Row {
    fn element(&self) -> shoal_core::recon::Element {
        element(self.digest, self.flags)
    }

    /// The row as reconciliation lists it; `ids` is its scan's.
    fn item(&self, ids: &str) -> Result<Item, StoreError> {
        Ok(Item {
            id: RecordId::new(ids[self.id.clone()].to_owned())?,
            digest: self.digest.short(),
            flags: self.flags,
        })
    }
}

impl std::fmt::Debug for ReconSnapshot<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReconSnapshot")
            .field("cid", &self.cid)
            .finish()
    }
}

/// Whether `inner` lies within `outer` (is it or one of its descendants).
fn within(outer: Node, inner: Node) -> bool {
    outer.first() <= inner.first() && inner.last() <= outer.last()
}

impl ReconSnapshot<'_> {
    /// The records under `node`, in key order, and the string their ids
    /// lie in: from the last scan if it covered the node, else from one
    /// range scan of the index (kept).
    fn rows(&mut self, node: Node) -> Result<(&[Row], &str), StoreError> {
        let Some(cid) = self.cid else {
            return Ok((&[], ""));
        };
        let covered = self.last.node.is_some_and(|n| within(n, node));
        if !covered {
            if !self.reading && self.conn.is_autocommit() {
                self.conn.prepare_cached("BEGIN")?.execute([])?;
                self.reading = true;
            }
            let mut stmt = self.conn.prepare_cached(
                "SELECT rkey, rid, digest, life, missing FROM recon_keys
                 WHERE cid = ?1 AND rkey BETWEEN ?2 AND ?3 ORDER BY rkey",
            )?;
            let mut rows = stmt.query(params![
                cid,
                key_column(node.first()),
                key_column(node.last())
            ])?;
            let scan = &mut self.last;
            scan.node = None;
            scan.rows.clear();
            scan.ids.clear();
            while let Some(row) = rows.next()? {
                let digest =
                    digest_column(row.get_ref(2)?.as_blob().map_err(rusqlite::Error::from)?)?;
                let start = scan.ids.len();
                scan.ids
                    .push_str(row.get_ref(1)?.as_str().map_err(rusqlite::Error::from)?);
                scan.rows.push(Row {
                    key: column_key(row.get(0)?),
                    id: start..scan.ids.len(),
                    digest,
                    flags: rows::flags_of(
                        Life(row.get::<_, i64>(3)? as u64),
                        row.get::<_, i64>(4)? > 0,
                    ),
                });
            }
            scan.node = Some(node);
        }
        let rows = &self.last.rows;
        let (first, last) = (node.first(), node.last());
        let from = rows.partition_point(|r| r.key < first);
        let to = rows.partition_point(|r| r.key <= last);
        Ok((&rows[from..to], &self.last.ids))
    }
}

impl ReconView for ReconSnapshot<'_> {
    type Error = StoreError;

    fn fingerprint(&mut self, node: Node) -> Result<Fingerprint, StoreError> {
        if let Some(fp) = self.tree.and_then(|t| t.get(node)) {
            return Ok(fp);
        }
        let mut fp = Fingerprint::default();
        self.rows(node)?.0.iter().for_each(|r| fp.add(r.element()));
        Ok(fp)
    }

    fn children(&mut self, node: Node) -> Result<[Fingerprint; FANOUT], StoreError> {
        let mut out = [Fingerprint::default(); FANOUT];
        if node.is_leaf() {
            return Ok(out);
        }
        if let Some(tree) = self.tree.filter(|t| node.level() < t.depth()) {
            for (i, fp) in out.iter_mut().enumerate() {
                if let Some(child) = node.child(i) {
                    *fp = tree.get(child).unwrap_or_default();
                }
            }
            return Ok(out);
        }
        // One scan of the node's range, bucketed by child.
        for row in self.rows(node)?.0 {
            let child = Node::at(node.level() + 1, row.key);
            out[(child.prefix() & (FANOUT as u64 - 1)) as usize].add(row.element());
        }
        Ok(out)
    }

    fn items(&mut self, node: Node) -> Result<Vec<Item>, StoreError> {
        let (rows, ids) = self.rows(node)?;
        rows.iter().map(|r| r.item(ids)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::Tree;
    use shoal_core::recon::{Fingerprint, ReconKey, element};

    #[test]
    fn a_tree_from_its_deepest_level_equals_the_tree() {
        let mut tree = Tree::empty(2);
        for i in 0u64..500 {
            let e = element(
                shoal_core::recon::StateDigest([i as u8; 16]),
                Default::default(),
            );
            tree.update(ReconKey(i.wrapping_mul(0x9e37_79b9_7f4a_7c15)), |fp| {
                fp.add(e)
            });
        }
        let again = Tree::from_deepest(tree.deepest().to_vec()).expect("whole level");
        assert_eq!(again.levels, tree.levels);
        assert!(Tree::from_deepest(vec![Fingerprint::default(); 17]).is_none());
        assert!(Tree::from_deepest(vec![Fingerprint::default(); 16usize.pow(5)]).is_none());
    }

    #[test]
    fn depth_grows_with_the_collection_up_to_the_cap() {
        assert_eq!(Tree::depth_for(0), 0);
        assert_eq!(Tree::depth_for(127), 0);
        assert_eq!(Tree::depth_for(128), 1);
        assert_eq!(Tree::depth_for(100_000), 3);
        assert_eq!(Tree::depth_for(1_000_000), 4);
        assert_eq!(Tree::depth_for(u64::MAX / 32), 4);
    }
}
