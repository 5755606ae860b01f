//! One collection as a reconciliation walk reads it ([`ReconSnapshot`]):
//! the memory tree for the top levels, range scans of the `recon_keys`
//! index below, the scans kept between the walk's steps.
//!
//! It answers the core's `ReconView` questions and holds the read
//! transaction its scans share; it does not change the index or the trees.

use crate::error::StoreError;
use crate::recon_scans::{KeptScans, Row, Scan};
use crate::recon_tree::Tree;
use rusqlite::Connection;
use shoal_core::recon::{FANOUT, Fingerprint, Item, Node, ReconView};

/// One collection as reconciliation reads it: the memory tree for the top
/// levels, the `(cid, rkey)` index below. An unknown collection is empty.
///
/// Below the memory tree a node's records are read with one range scan, and
/// the scan is kept: a walk asks about the same node (its fingerprint, then
/// its items) or a child of the node it just split, one after the other,
/// and — a round trip later — about the children of a node it split. Each
/// differing node is read once, not once per question.
///
/// Its scans share one read transaction, begun by the first and ended when
/// the snapshot is dropped: a walk step reads thousands of nodes, and each
/// scan in a transaction of its own took and released WAL read locks (two
/// `fcntl` calls) and found the page cache to check again.
pub struct ReconSnapshot<'a> {
    conn: &'a Connection,
    cid: Option<i64>,
    tree: Option<&'a Tree>,
    /// The last scan.
    last: Scan,
    /// Earlier scans, kept while the collection's head stays where it is.
    kept: &'a mut KeptScans,
    /// Whether this snapshot began the read transaction its scans share.
    reading: bool,
}

impl<'a> ReconSnapshot<'a> {
    /// The view of collection `cid` (`None`: unknown, so empty) whose top
    /// levels are `tree`, with the scans kept at its current head.
    pub(crate) fn new(
        conn: &'a Connection,
        cid: Option<i64>,
        tree: Option<&'a Tree>,
        kept: &'a mut KeptScans,
    ) -> Self {
        Self {
            conn,
            cid,
            tree,
            last: Scan::default(),
            kept,
            reading: false,
        }
    }

    /// The records under `node`, in key order, and the string their ids
    /// lie in: from the last scan or a kept one if either covers the node,
    /// else from one range scan of the index.
    fn rows(&mut self, node: Node) -> Result<(&[Row], &str), StoreError> {
        let Some(cid) = self.cid else {
            return Ok((&[], ""));
        };
        if !self.last.covers(node) {
            let next = match self.kept.take_covering(node) {
                Some(kept) => kept,
                None => {
                    if !self.reading && self.conn.is_autocommit() {
                        self.conn.prepare_cached("BEGIN")?.execute([])?;
                        self.reading = true;
                    }
                    let mut scan = self.kept.spare();
                    scan.read(self.conn, cid, node)?;
                    scan
                }
            };
            let done = std::mem::replace(&mut self.last, next);
            self.kept.keep(done);
        }
        Ok(self.last.under(node))
    }
}

impl Drop for ReconSnapshot<'_> {
    fn drop(&mut self) {
        self.kept.keep(std::mem::take(&mut self.last));
        if self.reading {
            // Ends a read-only transaction: nothing to write, so nothing to
            // lose; a failure leaves SQLite to end it when the connection
            // closes or the next write begins.
            let _ = self.conn.execute_batch("COMMIT");
        }
    }
}

impl std::fmt::Debug for ReconSnapshot<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReconSnapshot")
            .field("cid", &self.cid)
            .finish()
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
