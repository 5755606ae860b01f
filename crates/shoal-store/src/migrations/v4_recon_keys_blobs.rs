//! Schema step 4: reconciliation keys move from version 3's `records.rkey`
//! column (a B-tree every write paid for) to the lazily filled
//! `recon_keys` table; the blob index is added and filled for records
//! written before it existed.
//!
//! Frozen: change the schema in a new step.

use crate::error::StoreError;
use rusqlite::{Connection, Transaction};

const RECON_KEYS: &str = "
-- Every record's reconciliation key (BLAKE3 of its id, first 8 bytes, sign bit
-- flipped so integer order is key order), to list a tree node's records. Keys
-- never change; the table is brought up to date lazily, before each
-- reconciliation, from the change log after meta 'recon_indexed' — so local
-- writes do not pay for a third B-tree.
CREATE TABLE IF NOT EXISTS recon_keys (
    cid INTEGER NOT NULL,
    rkey INTEGER NOT NULL,
    rid TEXT NOT NULL,
    PRIMARY KEY (cid, rkey, rid)
) WITHOUT ROWID;
";

const BLOBS: &str = "
-- Which live records reference which blob (hash: 32 bytes of BLAKE3; size as
-- the reference states it). Written in the record's own transaction.
CREATE TABLE IF NOT EXISTS blob_refs (
    hash BLOB NOT NULL,
    cid INTEGER NOT NULL,
    rid TEXT NOT NULL,
    size INTEGER NOT NULL,
    PRIMARY KEY (hash, cid, rid)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS blob_refs_record ON blob_refs (cid, rid);
-- Blobs complete and verified in the blob directory. orphan_ms: when garbage
-- collection first found nothing referencing it (NULL while referenced).
CREATE TABLE IF NOT EXISTS blobs (
    hash BLOB PRIMARY KEY,
    size INTEGER NOT NULL,
    added_ms INTEGER NOT NULL,
    orphan_ms INTEGER
) WITHOUT ROWID;
";

/// Drops version 3's key column and index where present, adds the key
/// table, the blob index and each record's blob counts.
pub(super) fn up(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch("DROP INDEX IF EXISTS records_recon;")?;
    if super::has_column(tx, "records", "rkey")? {
        tx.execute_batch("ALTER TABLE records DROP COLUMN rkey;")?;
    }
    super::add_column(tx, "records", "refs", "INTEGER NOT NULL DEFAULT 0")?;
    super::add_column(tx, "records", "missing", "INTEGER NOT NULL DEFAULT 0")?;
    tx.execute_batch(RECON_KEYS)?;
    tx.execute_batch(BLOBS)?;
    index_blob_refs(tx)
}

/// Indexes the blob references of records written before the blob index
/// existed (records whose text holds a `"$blob"` object; the counts are
/// set from scratch, so running it again changes nothing).
fn index_blob_refs(tx: &Connection) -> Result<(), StoreError> {
    let rows: Vec<(i64, String, String)> = tx
        .prepare("SELECT cid, rid, data FROM records WHERE instr(data, '\"$blob\"') > 0")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    for (cid, rid, data) in rows {
        let refs = crate::blob_refs::refs_of_rendered(Some(&data), false)?;
        let missing = crate::blob_refs::replace_refs(tx, cid, &rid, &refs)?;
        tx.execute(
            "UPDATE records SET refs = ?3, missing = ?4 WHERE cid = ?1 AND rid = ?2",
            rusqlite::params![cid, rid, refs.len() as i64, missing],
        )?;
    }
    Ok(())
}
