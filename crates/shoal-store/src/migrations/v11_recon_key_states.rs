//! Schema step 11: `recon_keys` carries each record's digest, life and
//! missing-blob count beside its key, so reconciliation lists a tree node's
//! records from a range of that one table instead of looking every record
//! up in `records` (a random read of a wide row each). The columns are
//! filled by the next catch-up of the keys (`recon_index.rs`): the step
//! drops its mark, so that catch-up writes every row again.
//!
//! Frozen: change the schema in a new step.

use super::add_column;
use crate::error::StoreError;
use rusqlite::Transaction;

/// Adds the columns and drops the catch-up mark.
pub(super) fn up(tx: &Transaction<'_>) -> Result<(), StoreError> {
    add_column(tx, "recon_keys", "digest", "BLOB")?;
    add_column(tx, "recon_keys", "life", "INTEGER")?;
    add_column(tx, "recon_keys", "missing", "INTEGER")?;
    tx.execute("DELETE FROM meta WHERE key = 'recon_indexed'", [])?;
    Ok(())
}
