//! Schema step 5: three tables version-4 builds created outside any schema
//! version, at every open (so a version-4 file may have them already):
//! changes held back for clocks too far ahead (`held.rs`), what the sharing
//! rules held back per peer (`levelled.rs`) and the saved reconciliation
//! trees (`recon_saved.rs`).
//!
//! Frozen: change the schema in a new step.

use crate::error::StoreError;
use rusqlite::Transaction;

const TABLES: &str = "
-- A peer's changes whose clock was too far ahead of local time when they
-- arrived (see held.rs): merged once local time is within the drift bound.
-- n: arrival order; wall_ms: the change's clock; change: postcard encoding.
CREATE TABLE IF NOT EXISTS held_changes (
    n INTEGER PRIMARY KEY,
    peer TEXT NOT NULL,
    wall_ms INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    change BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS held_changes_wall ON held_changes (wall_ms);
-- Per peer, what the sharing rules held back when this node last levelled
-- with it (see levelled.rs). held: JSON list of [collection, direction].
CREATE TABLE IF NOT EXISTS levelled_rules (
    peer TEXT PRIMARY KEY,
    held TEXT NOT NULL
);
-- Each collection's in-memory reconciliation tree, deepest level only, as
-- saved when the store last closed (see recon_saved.rs). at: the log head
-- (MAX(dbv) of records) it matches; it is used only while that is the head.
CREATE TABLE IF NOT EXISTS recon_saved (
    cid INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    nodes BLOB NOT NULL
);
";

/// Creates the three tables where missing.
pub(super) fn up(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch(TABLES)?;
    Ok(())
}
