//! Schema step 9: devices (owned by `devices.rs`, issue 19) — the group
//! owner's public key this node pinned, and the admission requests of peers
//! that proved the group secret but hold no admission yet.
//!
//! Frozen: change the schema in a new step.

use crate::error::StoreError;
use rusqlite::Transaction;

const TABLES: &str = "
-- The owner key this node trusts (one row; pinned once, never replaced by
-- a replicated record).
CREATE TABLE IF NOT EXISTS device_owner (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    public TEXT NOT NULL,
    pinned_ms INTEGER NOT NULL
);
-- Peers refused for want of an admission: requests for the owner to approve.
CREATE TABLE IF NOT EXISTS device_requests (
    peer TEXT PRIMARY KEY,
    first_ms INTEGER NOT NULL,
    last_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL
) WITHOUT ROWID;
";

/// Creates the tables.
pub(super) fn up(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch(TABLES)?;
    Ok(())
}
