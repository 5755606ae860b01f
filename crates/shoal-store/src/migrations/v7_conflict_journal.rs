//! Schema step 7: the conflict journal's table (values that lost a merge to
//! a concurrent value; owned by `conflict_journal.rs`, local, never synced).
//!
//! Frozen: change the schema in a new step.

use crate::error::StoreError;
use rusqlite::Transaction;

const TABLE: &str = "
-- The conflict journal (conflict_journal.rs): values that lost a merge to a
-- concurrent value, per node, never synced. n: insertion order; at_ms: when
-- journalled (local wall time). field NULL: the record's life (a delete);
-- entry_key: a map entry's key (NULL for a whole field). A NULL value is a
-- tombstone (removed field or entry, deleted record). A lost version is
-- journalled once per slot (conflicts_lost), however often it arrives.
CREATE TABLE IF NOT EXISTS conflicts (
    n INTEGER PRIMARY KEY,
    at_ms INTEGER NOT NULL,
    collection TEXT NOT NULL,
    rid TEXT NOT NULL,
    field TEXT,
    entry_key TEXT,
    kept_value TEXT,
    kept_hlc INTEGER NOT NULL,
    kept_site INTEGER NOT NULL,
    lost_value TEXT,
    lost_hlc INTEGER NOT NULL,
    lost_site INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS conflicts_at ON conflicts (at_ms);
CREATE INDEX IF NOT EXISTS conflicts_lost ON conflicts (lost_hlc, lost_site);
";

/// Creates the table and its index.
pub(super) fn up(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch(TABLE)?;
    Ok(())
}
