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
pub const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE collections (
    cid INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    indexes TEXT NOT NULL DEFAULT '[]'
);
-- One row per record ever seen; data is the rendered JSON object, NULL when deleted.
CREATE TABLE records (
    rk INTEGER PRIMARY KEY,
    cid INTEGER NOT NULL,
    rid TEXT NOT NULL,
    life INTEGER NOT NULL,
    data TEXT,
    UNIQUE (cid, rid)
);
-- One row per stored slot version (life, field register or map entry): the
-- per-field clocks. kind: 0 life, 1 field, 2 map entry. The (dbv, seq) index
-- is the change log.
CREATE TABLE slots (
    rk INTEGER NOT NULL,
    kind INTEGER NOT NULL,
    field TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT,
    hlc INTEGER NOT NULL,
    site INTEGER NOT NULL,
    life INTEGER NOT NULL,
    dbv INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (rk, kind, field, key)
) WITHOUT ROWID;
CREATE UNIQUE INDEX slots_log ON slots (dbv, seq);
";

/// Tables added after schema version 1 was first written; created on open if
/// missing, so older files gain them without a version bump.
const ADDITIONS: &str = "
-- Per peer: the position in that peer's change log up to which its changes
-- are applied here. Written in the same transaction as the applied changes.
CREATE TABLE IF NOT EXISTS peer_cursors (
    peer TEXT PRIMARY KEY,
    dbv INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
) WITHOUT ROWID;
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
        tx.pragma_update(None, "application_id", APPLICATION_ID)
            .map_err(sqlite)?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(sqlite)?;
        tx.execute_batch(ADDITIONS).map_err(sqlite)?;
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
    if version > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            path: path.to_path_buf(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    conn.execute_batch(ADDITIONS).map_err(sqlite)?;
    Ok(())
}
