//! The reconciliation index kept across restarts: each collection's in-memory
//! fingerprint tree (see `recon_index.rs`) saved in the `recon_saved` table
//! when the store closes, and taken back on first use instead of reading
//! every record again (3.7 s at 1,000,000 records).
//!
//! A saved tree is stamped with the log head (the version of `records`' greatest key) it
//! matches, and used only while that is still the head: any write or merged
//! change moves the head, so it makes the saved tree stale. The one change
//! to a record's reconciliation element that does not move the head — its
//! assets-missing flag, moved by a blob arriving or going — deletes the
//! saved tree in its own transaction (`blob_index::adjust_missing`). A save
//! runs under the write lock and is skipped if another connection committed
//! since this one last looked, so a tree is never saved stale.
//!
//! It owns only the table (created by schema step 5) and the encoding; when trees are built, updated
//! and dropped is `recon_index.rs`'s, and it must not decide what a peer is
//! sent.

use crate::error::StoreError;
use crate::kept::Db;
use crate::rows;
use crate::write_txn::WriteTxn;
use rusqlite::{Connection, OptionalExtension, params};
use shoal_core::DbVersion;
use shoal_core::recon::Fingerprint;

/// Bytes of one saved fingerprint: count (u64) and sum (u128), little-endian.
const FINGERPRINT_BYTES: usize = 24;

/// The saved deepest level of `cid`'s tree, if one was saved at log head
/// `head` and decodes whole (anything else is ignored: the tree is rebuilt).
pub(crate) fn load(
    conn: &Connection,
    cid: i64,
    head: DbVersion,
) -> Result<Option<Vec<Fingerprint>>, StoreError> {
    let saved: Option<(i64, Vec<u8>)> = conn
        .prepare_cached("SELECT at, nodes FROM recon_saved WHERE cid = ?1")?
        .query_row([cid], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(saved
        .filter(|(at, _)| *at as u64 == head.0)
        .and_then(|(_, bytes)| decode(&bytes)))
}

/// Saves the deepest levels of `trees` (by collection id), stamped with the
/// log head, in one write transaction — unless another connection committed
/// since `memo` was last refreshed, in which case the trees may be stale
/// and nothing is saved. Returns whether they were saved.
pub(crate) fn save<'a>(
    db: &mut Db,
    memo: &mut rows::HeadMemo,
    trees: impl IntoIterator<Item = (i64, &'a [Fingerprint])>,
) -> Result<bool, StoreError> {
    let tx = WriteTxn::begin(db)?;
    let now = rows::kept_data_version(tx.kept())?;
    if now != memo.data_version {
        return Ok(false);
    }
    let (head, _) = rows::log_head(&tx)?;
    {
        let mut insert = tx.prepare_cached(
            "INSERT OR REPLACE INTO recon_saved (cid, at, nodes) VALUES (?1, ?2, ?3)",
        )?;
        for (cid, deepest) in trees {
            insert.execute(params![cid, head.0 as i64, encode(deepest)])?;
        }
    }
    tx.commit()?;
    // Our own commit does not move our data_version: nothing to note.
    Ok(true)
}

/// Forgets `cid`'s saved tree (a record's element changed without moving
/// the log head). Call inside the transaction making that change.
pub(crate) fn forget(conn: &Connection, cid: i64) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM recon_saved WHERE cid = ?1")?
        .execute([cid])?;
    Ok(())
}

fn encode(nodes: &[Fingerprint]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nodes.len() * FINGERPRINT_BYTES);
    for fp in nodes {
        out.extend_from_slice(&fp.count.to_le_bytes());
        out.extend_from_slice(&fp.sum.to_le_bytes());
    }
    out
}

fn decode(bytes: &[u8]) -> Option<Vec<Fingerprint>> {
    if !bytes.len().is_multiple_of(FINGERPRINT_BYTES) {
        return None;
    }
    bytes
        .chunks_exact(FINGERPRINT_BYTES)
        .map(|chunk| {
            Some(Fingerprint {
                count: u64::from_le_bytes(chunk[..8].try_into().ok()?),
                sum: u128::from_le_bytes(chunk[8..].try_into().ok()?),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_round_trip_and_a_torn_blob_is_refused() {
        let nodes = vec![
            Fingerprint { count: 0, sum: 0 },
            Fingerprint {
                count: 3,
                sum: u128::MAX - 7,
            },
        ];
        let bytes = encode(&nodes);
        assert_eq!(bytes.len(), 2 * FINGERPRINT_BYTES);
        assert_eq!(decode(&bytes), Some(nodes));
        assert_eq!(decode(&bytes[..bytes.len() - 1]), None);
    }
}
