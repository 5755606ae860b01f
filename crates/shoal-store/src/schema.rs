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
pub const SCHEMA_VERSION: i64 = 2;

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
CREATE TABLE records (
    cid INTEGER NOT NULL,
    rid TEXT NOT NULL,
    life INTEGER NOT NULL,
    data TEXT,
    slots BLOB NOT NULL,
    dbv INTEGER NOT NULL,
    seq INTEGER NOT NULL,
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
    if version != SCHEMA_VERSION {
        return Err(StoreError::UnsupportedSchema {
            path: path.to_path_buf(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(())
}
