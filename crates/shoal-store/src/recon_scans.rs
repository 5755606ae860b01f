//! What reconciliation reads below the memory tree: one range of the
//! `recon_keys` index per node ([`Scan`]), and the scans a walk's snapshots
//! keep while the collection does not change ([`KeptScans`]).
//!
//! It reads the index; keeping the index up to date is `recon_index.rs`'s,
//! and what to compare is the core's walk.

use crate::error::StoreError;
use crate::rows::{self, column_key, digest_column, key_column};
use rusqlite::{Connection, params};
use shoal_core::recon::{Element, Item, ItemFlags, Node, ReconKey, StateDigest, element};
use shoal_core::{DbVersion, Life, RecordId};
use std::collections::BTreeMap;

/// A record as the reconciliation index lists it.
#[derive(Debug)]
pub(crate) struct Row {
    /// Where it sits in the tree.
    pub(crate) key: ReconKey,
    /// Where its id lies in the scan's `ids`.
    id: std::ops::Range<usize>,
    digest: StateDigest,
    flags: ItemFlags,
}

impl Row {
    /// Its contribution to its nodes' fingerprints.
    pub(crate) fn element(&self) -> Element {
        element(self.digest, self.flags)
    }

    /// The row as reconciliation lists it; `ids` is its scan's.
    pub(crate) fn item(&self, ids: &str) -> Result<Item, StoreError> {
        Ok(Item {
            id: RecordId::new(ids[self.id.clone()].to_owned())?,
            digest: self.digest.short(),
            flags: self.flags,
        })
    }
}

/// One range scan of the index: the node scanned (`None` while empty) and
/// its records in key order. The ids of one scan share one string: a walk
/// reads hundreds of thousands of rows and lists few of them as items.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    node: Option<Node>,
    rows: Vec<Row>,
    ids: String,
}

impl Scan {
    /// Whether it holds every record under `node`.
    pub(crate) fn covers(&self, node: Node) -> bool {
        self.node.is_some_and(|n| within(n, node))
    }

    /// Reads the records of collection `cid` under `node`, in place of what
    /// it held (its buffers are reused). Left empty if the read fails.
    pub(crate) fn read(
        &mut self,
        conn: &Connection,
        cid: i64,
        node: Node,
    ) -> Result<(), StoreError> {
        self.clear();
        let mut stmt = conn.prepare_cached(
            "SELECT rkey, rid, digest, life, missing FROM recon_keys
             WHERE cid = ?1 AND rkey BETWEEN ?2 AND ?3 ORDER BY rkey",
        )?;
        let mut rows = stmt.query(params![
            cid,
            key_column(node.first()),
            key_column(node.last())
        ])?;
        while let Some(row) = rows.next()? {
            let digest = digest_column(row.get_ref(2)?.as_blob().map_err(rusqlite::Error::from)?)?;
            let start = self.ids.len();
            self.ids
                .push_str(row.get_ref(1)?.as_str().map_err(rusqlite::Error::from)?);
            self.rows.push(Row {
                key: column_key(row.get(0)?),
                id: start..self.ids.len(),
                digest,
                flags: rows::flags_of(
                    Life(row.get::<_, i64>(3)? as u64),
                    row.get::<_, i64>(4)? > 0,
                ),
            });
        }
        self.node = Some(node);
        Ok(())
    }

    /// Its records under `node` (which it covers), in key order, and the
    /// string their ids lie in.
    pub(crate) fn under(&self, node: Node) -> (&[Row], &str) {
        let (first, last) = (node.first(), node.last());
        let from = self.rows.partition_point(|r| r.key < first);
        let to = self.rows.partition_point(|r| r.key <= last);
        (&self.rows[from..to], &self.ids)
    }

    fn clear(&mut self) {
        self.node = None;
        self.rows.clear();
        self.ids.clear();
    }

    /// What it counts for against [`MAX_KEPT_BYTES`]: the memory it holds
    /// (its buffers' capacity, which a scan read into a reused buffer may
    /// hold beyond its rows), and itself.
    fn weight(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.rows.capacity() * std::mem::size_of::<Row>()
            + self.ids.capacity()
    }
}

/// Whether `inner` lies within `outer` (is it or one of its descendants).
fn within(outer: Node, inner: Node) -> bool {
    outer.first() <= inner.first() && inner.last() <= outer.last()
}

/// Most memory [`KeptScans`] holds in scans (besides one spare): about
/// 150,000 rows of ids of 10–20 bytes.
const MAX_KEPT_BYTES: usize = 12 << 20;

/// The scans of one collection kept across snapshots while its log head
/// stays where it is. A walk's initiator splits a node, and a round trip
/// later compares the peer's lists of the node's children with its own:
/// without these it read each of those children again, one seek each —
/// about 40 % of a walk's time with 10,000 differences among 1,000,000
/// records.
///
/// Cleared whenever the collection may have changed: a new log head, a
/// commit by another process, a blob's arrival (`ReconIndex`).
#[derive(Debug, Default)]
pub(crate) struct KeptScans {
    /// The log head and collection they were read at.
    head: Option<(DbVersion, Option<i64>)>,
    /// By the first key of their node.
    scans: BTreeMap<ReconKey, Scan>,
    /// Their weight in bytes (see [`Scan::weight`]).
    weight: usize,
    /// A scan that did not fit, emptied, to read the next one into.
    spare: Option<Scan>,
}

impl KeptScans {
    /// Forgets every scan kept, and the spare.
    pub(crate) fn clear(&mut self) {
        self.scans.clear();
        self.weight = 0;
        self.head = None;
        self.spare = None;
    }

    /// Clears them unless they were read at `head` of collection `cid`;
    /// from now on, they are.
    pub(crate) fn reset_unless(&mut self, head: DbVersion, cid: Option<i64>) {
        if self.head != Some((head, cid)) {
            self.clear();
            self.head = Some((head, cid));
        }
    }

    /// Keeps `scan` if there is room; else keeps its buffers to reuse.
    pub(crate) fn keep(&mut self, mut scan: Scan) {
        let Some(node) = scan.node else {
            return;
        };
        if self.weight + scan.weight() > MAX_KEPT_BYTES {
            scan.clear();
            self.spare = Some(scan);
            return;
        }
        self.weight += scan.weight();
        if let Some(old) = self.scans.insert(node.first(), scan) {
            self.weight -= old.weight();
        }
    }

    /// A kept scan covering `node`, taken out.
    pub(crate) fn take_covering(&mut self, node: Node) -> Option<Scan> {
        let (&first, scan) = self.scans.range(..=node.first()).next_back()?;
        if !scan.covers(node) {
            return None;
        }
        let scan = self.scans.remove(&first)?;
        self.weight -= scan.weight();
        Some(scan)
    }

    /// An empty scan to read into.
    pub(crate) fn spare(&mut self) -> Scan {
        self.spare.take().unwrap_or_default()
    }
}
