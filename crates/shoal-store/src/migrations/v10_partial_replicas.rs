//! Schema step 10: partial replicas (owned by `partial.rs`) — the filters
//! this node takes records by, the filters each peer declared, and which
//! records went to each filtered peer (so a record that leaves a peer's
//! filter is named to that peer only if it may hold it).
//!
//! Frozen: change the schema in a new step.

use crate::error::StoreError;
use rusqlite::Transaction;

const TABLES: &str = "
-- This node's filters: the records it takes, per collection.
CREATE TABLE IF NOT EXISTS partial_own (
    collection TEXT PRIMARY KEY,
    filter TEXT NOT NULL
) WITHOUT ROWID;
-- The filters each peer declared in its last session (kept across restarts,
-- so a peer is never sent more than it asked for before it says again).
CREATE TABLE IF NOT EXISTS partial_peers (
    peer TEXT NOT NULL,
    collection TEXT NOT NULL,
    filter TEXT NOT NULL,
    PRIMARY KEY (peer, collection)
) WITHOUT ROWID;
-- Records sent to a filtered peer: it may hold them.
CREATE TABLE IF NOT EXISTS partial_sent (
    peer TEXT NOT NULL,
    cid INTEGER NOT NULL,
    rid TEXT NOT NULL,
    PRIMARY KEY (peer, cid, rid)
) WITHOUT ROWID;
";

/// Creates the tables.
pub(super) fn up(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch(TABLES)?;
    Ok(())
}
