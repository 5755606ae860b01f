//! Schema step 12: blobs on demand (owned by `blob_demand.rs`) — the blobs
//! this node fetched only when opened, with the peer it fetched each from
//! and when it was last opened, so that a byte budget evicts the least
//! recently opened ones another peer holds. The setting itself lives in
//! `meta` (`blobs_on_demand`, `blob_budget`).
//!
//! Frozen: change the schema in a new step.

use crate::error::StoreError;
use rusqlite::Transaction;

const TABLES: &str = "
-- Blobs fetched on demand (hash: 32 bytes of BLAKE3). source: the peer id it
-- came from (a peer known to hold it); last_open_ms: its last open here.
CREATE TABLE IF NOT EXISTS blob_demand (
    hash BLOB PRIMARY KEY,
    size INTEGER NOT NULL,
    source TEXT NOT NULL,
    last_open_ms INTEGER NOT NULL
) WITHOUT ROWID;
";

/// Creates the table.
pub(super) fn up(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch(TABLES)?;
    Ok(())
}
