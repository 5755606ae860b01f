//! Schema step 6: the data version and JSON Schema an app declares per
//! collection on this node (local, never synced; see `data_versions.rs`).
//!
//! Frozen: change the schema in a new step.

use crate::error::StoreError;
use rusqlite::Transaction;

const TABLE: &str = "
-- Per collection: the data version the app on this node declares, and the
-- JSON Schema its records must validate against (JSON text). set_ms: when.
CREATE TABLE IF NOT EXISTS collection_schemas (
    collection TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    schema TEXT NOT NULL,
    set_ms INTEGER NOT NULL
) WITHOUT ROWID;
";

/// Creates the table.
pub(super) fn up(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch(TABLE)?;
    Ok(())
}
