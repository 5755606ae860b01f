//! The top levels of one collection's reconciliation tree, held in memory:
//! each node's fingerprint (count and sum of its records' elements), level
//! `l` holding 16^l of them — as many levels as leave 8 to 128 records per
//! deepest node, at most 5 (69,905 nodes, 1.6 MB, from 524,288 records up).
//!
//! It owns the levels' arithmetic: building them from every record, moving
//! one record, summing the levels above a saved deepest one. When to build,
//! update, save or drop a tree is `recon_index.rs`'s.

use crate::error::StoreError;
use crate::rows;
use rusqlite::Connection;
use shoal_core::Life;
use shoal_core::recon::{FANOUT, Fingerprint, Node, ReconKey, element};

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
    pub(crate) fn depth(&self) -> u8 {
        (self.levels.len() - 1) as u8
    }

    /// The deepest level (what is saved; the others are its sums).
    pub(crate) fn deepest(&self) -> &[Fingerprint] {
        self.levels.last().map_or(&[], Vec::as_slice)
    }

    /// The tree whose deepest level is `nodes`, the levels above summed from
    /// it; `None` unless `nodes` is a whole level no deeper than the cap.
    pub(crate) fn from_deepest(nodes: Vec<Fingerprint>) -> Option<Self> {
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

    /// Applies `f` to the fingerprint of every node held on `key`'s path.
    pub(crate) fn update(&mut self, key: ReconKey, f: impl Fn(&mut Fingerprint)) {
        for (level, nodes) in self.levels.iter_mut().enumerate() {
            let node = Node::at(level as u8, key);
            if let Some(fp) = nodes.get_mut(node.prefix() as usize) {
                f(fp);
            }
        }
    }

    /// The fingerprint of `node`, if its level is held.
    pub(crate) fn get(&self, node: Node) -> Option<Fingerprint> {
        self.levels
            .get(usize::from(node.level()))
            .and_then(|nodes| nodes.get(node.prefix() as usize))
            .copied()
    }

    /// Reads every record of `cid` once.
    pub(crate) fn build(conn: &Connection, cid: i64) -> Result<Self, StoreError> {
        let records: i64 = conn
            .prepare_cached("SELECT count(*) FROM records WHERE cid = ?1")?
            .query_row([cid], |r| r.get(0))?;
        let mut tree = Self::empty(Self::depth_for(records as u64));
        let mut stmt =
            conn.prepare_cached("SELECT rid, digest, life, missing FROM records WHERE cid = ?1")?;
        let mut rows = stmt.query([cid])?;
        while let Some(row) = rows.next()? {
            let rid = row.get_ref(0)?.as_str().map_err(rusqlite::Error::from)?;
            let key = rows::recon_key(rid);
            let digest =
                rows::digest_column(row.get_ref(1)?.as_blob().map_err(rusqlite::Error::from)?)?;
            let life = Life(row.get::<_, i64>(2)? as u64);
            let e = element(digest, rows::flags_of(life, row.get::<_, i64>(3)? > 0));
            tree.update(key, |fp| fp.add(e));
        }
        Ok(tree)
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
