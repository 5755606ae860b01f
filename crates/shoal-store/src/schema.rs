//! The on-disk schema: creating it in a new file, and recognising (or refusing)
//! an existing file before anything is written to it.
//!
//! This module owns table layout and the open-time checks only; reading and
//! writing rows belongs to `rows.rs`.

use crate::error::StoreError;
use rusqlite::Connection;
use std::path::Path;

/// SQLite `application_id` of a Shoal database: "SHOL".
pub const APPLICATION_ID: i64 = 0x5348_4F4C;
/// Schema version this build writes and reads.
pub const SCHEMA_VERSION: i64 = 6;

const SCHEMA: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE collections (
    cid INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    indexes TEXT NOT NULL DEFAULT '[]'
);
-- One row per record ever seen. data: the rendered JSON object (NULL while
-- deleted). slots: every slot version (life, field registers, map entries)
-- with its clock, life and the db_version that wrote it, packed. (dbv, seq):
-- the log position of the record's last change; the index on it is the change log.
-- digest: 16 bytes of BLAKE3 over the record's full merged state (for
-- reconciliation). refs: how many blobs the live record references; missing:
-- how many of them are not here (sets its assets-missing flag).
CREATE TABLE records (
    cid INTEGER NOT NULL,
    rid TEXT NOT NULL,
    life INTEGER NOT NULL,
    data TEXT,
    slots BLOB NOT NULL,
    dbv INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    digest BLOB NOT NULL,
    refs INTEGER NOT NULL DEFAULT 0,
    missing INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (cid, rid)
) WITHOUT ROWID;
CREATE UNIQUE INDEX records_log ON records (dbv, seq);
-- Per peer: how far its change log has been applied here (a SyncCursor).
-- Written in the same transaction as the applied changes.
CREATE TABLE peer_cursors (
    peer TEXT PRIMARY KEY,
    base INTEGER NOT NULL,
    dbv INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
) WITHOUT ROWID;
";

/// Added by schema version 4 (replacing version 3's `records.rkey` column
/// and its index): every record's reconciliation key.
const RECON_KEYS: &str = "
-- Every record's reconciliation key (BLAKE3 of its id, first 8 bytes, sign bit
-- flipped so integer order is key order), to list a tree node's records. Keys
-- never change; the table is brought up to date lazily, before each
-- reconciliation, from the change log after meta 'recon_indexed' — so local
-- writes do not pay for a third B-tree.
CREATE TABLE recon_keys (
    cid INTEGER NOT NULL,
    rkey INTEGER NOT NULL,
    rid TEXT NOT NULL,
    PRIMARY KEY (cid, rkey, rid)
) WITHOUT ROWID;
";

/// Added by schema version 4: the blob index.
const BLOBS: &str = "
-- Which live records reference which blob (hash: 32 bytes of BLAKE3; size as
-- the reference states it). Written in the record's own transaction.
CREATE TABLE blob_refs (
    hash BLOB NOT NULL,
    cid INTEGER NOT NULL,
    rid TEXT NOT NULL,
    size INTEGER NOT NULL,
    PRIMARY KEY (hash, cid, rid)
) WITHOUT ROWID;
CREATE INDEX blob_refs_record ON blob_refs (cid, rid);
-- Blobs complete and verified in the blob directory. orphan_ms: when garbage
-- collection first found nothing referencing it (NULL while referenced).
CREATE TABLE blobs (
    hash BLOB PRIMARY KEY,
    size INTEGER NOT NULL,
    added_ms INTEGER NOT NULL,
    orphan_ms INTEGER
) WITHOUT ROWID;
";

/// Added by schema version 3: sharing rules.
const SHARING: &str = "
-- Per (peer, collection): none / send / receive / both. Unset means both.
CREATE TABLE sharing (
    peer TEXT NOT NULL,
    collection TEXT NOT NULL,
    mode TEXT NOT NULL,
    PRIMARY KEY (peer, collection)
) WITHOUT ROWID;
-- Collections that never leave this node.
CREATE TABLE local_only (collection TEXT PRIMARY KEY) WITHOUT ROWID;
";

/// Checks that `conn` is a Shoal database (creating the schema in an empty
/// file), or explains why it is not.
pub fn prepare(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let sqlite = |e| StoreError::from_sqlite(path, e);
    let application_id: i64 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(sqlite)?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sqlite)?;
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .map_err(sqlite)?;
    if application_id == 0 && version == 0 && tables == 0 {
        let tx = conn.transaction().map_err(sqlite)?;
        tx.execute_batch(SCHEMA).map_err(sqlite)?;
        tx.execute_batch(SHARING).map_err(sqlite)?;
        tx.execute_batch(RECON_KEYS).map_err(sqlite)?;
        tx.execute_batch(BLOBS).map_err(sqlite)?;
        tx.execute_batch(crate::conflict_journal::TABLE)
            .map_err(sqlite)?;
        tx.execute_batch(crate::gc::TABLES).map_err(sqlite)?;
        tx.pragma_update(None, "application_id", APPLICATION_ID)
            .map_err(sqlite)?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(sqlite)?;
        tx.commit().map_err(sqlite)?;
        return Ok(());
    }
    if application_id != APPLICATION_ID {
        return Err(StoreError::Foreign {
            path: path.to_path_buf(),
            application_id,
            tables,
        });
    }
    match version {
        2 => migrate_v2(conn),
        3 => migrate_v3(conn),
        4 => migrate_v4(conn),
        5 => finish_v6(conn.transaction()?),
        SCHEMA_VERSION => Ok(()),
        found => Err(StoreError::UnsupportedSchema {
            path: path.to_path_buf(),
            found,
            supported: SCHEMA_VERSION,
        }),
    }
    .map_err(|e| e.with_path(path))
}

/// Upgrades a version-2 file in one transaction: adds each record's state
/// digest, the reconciliation key table (filled on first use), the sharing
/// tables and the (empty) blob index.
fn migrate_v2(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    tx.execute_batch("ALTER TABLE records ADD COLUMN digest BLOB NOT NULL DEFAULT x'';")?;
    // In pages of 1000 records, so a large file is never read into memory whole.
    let mut after = (i64::MIN, String::new());
    loop {
        let page: Vec<(i64, String, Vec<u8>)> = tx
            .prepare_cached(
                "SELECT cid, rid, slots FROM records WHERE (cid, rid) > (?1, ?2)
                 ORDER BY cid, rid LIMIT 1000",
            )?
            .query_map(rusqlite::params![after.0, after.1], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<Result<_, _>>()?;
        let Some((cid, rid, _)) = page.last() else {
            break;
        };
        after = (*cid, rid.clone());
        let mut update =
            tx.prepare_cached("UPDATE records SET digest = ?3 WHERE cid = ?1 AND rid = ?2")?;
        for (cid, rid, slots) in page {
            let id = shoal_core::RecordId::new(rid.clone())?;
            let state = crate::rows::unpack(&slots)?.state;
            let digest = shoal_core::recon::StateDigest::of(&id, &state);
            update.execute(rusqlite::params![cid, rid, digest.0.to_vec()])?;
        }
    }
    tx.execute_batch(SHARING)?;
    finish_v4(tx)
}

/// Upgrades a version-3 file in one transaction: its reconciliation keys
/// move from a `records` column with its own index (a B-tree every write
/// paid for) to the lazily filled `recon_keys` table, and the blob index is
/// added.
fn migrate_v3(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    tx.execute_batch(
        "DROP INDEX records_recon;
         ALTER TABLE records DROP COLUMN rkey;",
    )?;
    finish_v4(tx)
}

/// What every upgrade from before schema 4 ends with: the schema-4 additions
/// (the key table, the blob index and its per-record counts, filled for
/// existing records), then schema 5's.
fn finish_v4(tx: rusqlite::Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch(
        "ALTER TABLE records ADD COLUMN refs INTEGER NOT NULL DEFAULT 0;
         ALTER TABLE records ADD COLUMN missing INTEGER NOT NULL DEFAULT 0;",
    )?;
    tx.execute_batch(RECON_KEYS)?;
    tx.execute_batch(BLOBS)?;
    index_blob_refs(&tx)?;
    finish_v5(tx)
}

/// Upgrades a version-4 file in one transaction: adds the conflict journal.
fn migrate_v4(conn: &mut Connection) -> Result<(), StoreError> {
    finish_v5(conn.transaction()?)
}

/// Schema 5: the conflict journal's table (`conflict_journal.rs`), then
/// schema 6.
fn finish_v5(tx: rusqlite::Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch(crate::conflict_journal::TABLE)?;
    finish_v6(tx)
}

/// Schema 6 (every upgrade ends here): tombstone collection's tables and
/// index (`gc.rs`), the new version, and the commit.
fn finish_v6(tx: rusqlite::Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch(crate::gc::TABLES)?;
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(())
}

/// Indexes the blob references of records written before the blob index
/// existed (records whose text holds a `"$blob"` object; nothing is here yet,
/// so each reference is missing).
fn index_blob_refs(tx: &Connection) -> Result<(), StoreError> {
    let rows: Vec<(i64, String, String)> = tx
        .prepare("SELECT cid, rid, data FROM records WHERE instr(data, '\"$blob\"') > 0")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    for (cid, rid, data) in rows {
        let refs = crate::blob_index::refs_of_rendered(Some(&data), false)?;
        let missing = crate::blob_index::replace_refs(tx, cid, &rid, &refs)?;
        tx.execute(
            "UPDATE records SET refs = ?3, missing = ?4 WHERE cid = ?1 AND rid = ?2",
            rusqlite::params![cid, rid, refs.len() as i64, missing],
        )?;
    }
    Ok(())
}
