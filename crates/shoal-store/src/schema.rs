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
pub const SCHEMA_VERSION: i64 = 3;

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
-- rkey: the record's reconciliation key (BLAKE3 of the id, first 8 bytes, sign
-- bit flipped so integer order is key order); digest: 16 bytes of BLAKE3 over
-- its full merged state. The index on (cid, rkey) lists a tree node's records.
CREATE TABLE records (
    cid INTEGER NOT NULL,
    rid TEXT NOT NULL,
    life INTEGER NOT NULL,
    data TEXT,
    slots BLOB NOT NULL,
    dbv INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    rkey INTEGER NOT NULL,
    digest BLOB NOT NULL,
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

/// Added by schema version 3: reconciliation keys and digests, sharing rules.
const SCHEMA_V3: &str = "
CREATE INDEX records_recon ON records (cid, rkey);
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
        tx.execute_batch(SCHEMA_V3).map_err(sqlite)?;
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
    if version == 2 {
        migrate_v2(conn).map_err(|e| e.with_path(path))?;
        return Ok(());
    }
    if version != SCHEMA_VERSION {
        return Err(StoreError::UnsupportedSchema {
            path: path.to_path_buf(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(())
}

/// Upgrades a version-2 file in one transaction: adds each record's
/// reconciliation key and state digest, and the sharing tables.
fn migrate_v2(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    tx.execute_batch(
        "ALTER TABLE records ADD COLUMN rkey INTEGER NOT NULL DEFAULT 0;
         ALTER TABLE records ADD COLUMN digest BLOB NOT NULL DEFAULT x'';",
    )?;
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
        let mut update = tx.prepare_cached(
            "UPDATE records SET rkey = ?3, digest = ?4 WHERE cid = ?1 AND rid = ?2",
        )?;
        for (cid, rid, slots) in page {
            let id = shoal_core::RecordId::new(rid.clone())?;
            let state = crate::rows::unpack(&slots)?.state;
            let digest = shoal_core::recon::StateDigest::of(&id, &state);
            update.execute(rusqlite::params![
                cid,
                rid,
                crate::rows::rkey_column(&id),
                digest.0.to_vec()
            ])?;
        }
    }
    tx.execute_batch(SCHEMA_V3)?;
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(())
}
