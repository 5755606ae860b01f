//! Schema step 8: tombstone collection (owned by `gc.rs`) — the ledger of
//! collected tombstones, each peer's acknowledged version of this log, and
//! a partial index over tombstone rows.
//!
//! Frozen: change the schema in a new step.

use crate::error::StoreError;
use rusqlite::Transaction;

const TABLES: &str = "
-- Collected tombstones (gc.rs): the record's life and delete clock, read by
-- merges and writes as the tombstone it was. Never synced; a re-create
-- takes the record out.
CREATE TABLE IF NOT EXISTS collected (
    cid INTEGER NOT NULL,
    rid TEXT NOT NULL,
    life INTEGER NOT NULL,
    hlc INTEGER NOT NULL,
    site INTEGER NOT NULL,
    PRIMARY KEY (cid, rid)
) WITHOUT ROWID;
-- Per peer: the db_version of this log through which it holds every record
-- (its acknowledgements), and when it last moved.
CREATE TABLE IF NOT EXISTS peer_acks (
    peer TEXT PRIMARY KEY,
    acked INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS records_dead ON records (dbv, seq) WHERE data IS NULL;
";

/// Creates the tables and the index.
pub(super) fn up(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch(TABLES)?;
    Ok(())
}
