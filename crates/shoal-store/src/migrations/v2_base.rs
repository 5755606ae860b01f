//! Schema step 2: the base schema an empty file starts from (what the
//! first released format, version 2, created).
//!
//! Frozen: files in the field were made by it. Change the schema in a new step.

use crate::error::StoreError;
use rusqlite::Transaction;

const BASE: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS collections (
    cid INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    indexes TEXT NOT NULL DEFAULT '[]'
);
-- One row per record ever seen. data: the rendered JSON object (NULL while
-- deleted). slots: every slot version (life, field registers, map entries)
-- with its clock, life and the db_version that wrote it, packed. (dbv, seq):
-- the log position of the record's last change; the index on it is the change log.
CREATE TABLE IF NOT EXISTS records (
    cid INTEGER NOT NULL,
    rid TEXT NOT NULL,
    life INTEGER NOT NULL,
    data TEXT,
    slots BLOB NOT NULL,
    dbv INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (cid, rid)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS records_log ON records (dbv, seq);
-- Per peer: how far its change log has been applied here (a SyncCursor).
-- Written in the same transaction as the applied changes.
CREATE TABLE IF NOT EXISTS peer_cursors (
    peer TEXT PRIMARY KEY,
    base INTEGER NOT NULL,
    dbv INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
) WITHOUT ROWID;
";

/// Creates the base tables.
pub(super) fn up(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch(BASE)?;
    Ok(())
}
