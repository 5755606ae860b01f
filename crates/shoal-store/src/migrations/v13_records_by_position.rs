//! Schema step 13: the `records` table keyed by its rows' log positions
//! (`log_pos.rs`) instead of by (collection, id) `WITHOUT ROWID`: a write
//! appends at the table's end, and a unique index finds a record by
//! (collection, id). `dbv` and `seq` stay readable as columns computed from
//! the key; the index on them goes, since the key orders the log.
//!
//! The rows are copied in log order. A row whose place in its transaction
//! is past what a key holds (a transaction of more than 1,048,575 changes)
//! is moved to the log's end, as if a new transaction had changed it, with
//! its slots' versions kept: a peer whose cursor was past it receives it
//! again, which a merge takes as nothing new. The collection indexes of
//! `query.rs` (`ix_…`) are made again on the new table.
//!
//! Frozen: change the schema in a new step.

use super::has_column;
use crate::error::StoreError;
use rusqlite::Transaction;

/// The table and its indexes as this step leaves them (the per-collection
/// indexes of `query.rs` are added to it later).
pub(crate) const RECORDS: &str = "
CREATE TABLE records (
    pos INTEGER PRIMARY KEY,
    cid INTEGER NOT NULL,
    rid TEXT NOT NULL,
    life INTEGER NOT NULL,
    data TEXT,
    slots BLOB NOT NULL,
    digest BLOB NOT NULL DEFAULT x'',
    refs INTEGER NOT NULL DEFAULT 0,
    missing INTEGER NOT NULL DEFAULT 0,
    dbv INTEGER GENERATED ALWAYS AS (pos >> 20) VIRTUAL,
    seq INTEGER GENERATED ALWAYS AS (pos & 1048575) VIRTUAL
);
CREATE UNIQUE INDEX records_key ON records (cid, rid);
CREATE INDEX records_dead ON records (pos) WHERE data IS NULL;";

/// Rebuilds `records` keyed by log position, unless it is already.
pub(super) fn up(tx: &Transaction<'_>) -> Result<(), StoreError> {
    if has_column(tx, "records", "pos")? {
        return Ok(());
    }
    let rows: i64 = tx.query_row("SELECT count(*) FROM records", [], |r| r.get(0))?;
    if rows > 0 {
        tracing::info!("rewriting {rows} records keyed by their log positions (schema step 13)");
    }
    // Every index of the old table is dropped (the new one has its names);
    // the collection indexes are made again on the new table.
    let indexes: Vec<(String, String)> = tx
        .prepare(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'records'
             AND sql IS NOT NULL",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (name, _) in &indexes {
        tx.execute_batch(&format!("DROP INDEX \"{name}\";"))?;
    }
    tx.execute_batch("ALTER TABLE records RENAME TO records_by_key;")?;
    tx.execute_batch(RECORDS)?;
    tx.execute_batch(
        "INSERT INTO records (pos, cid, rid, life, data, slots, digest, refs, missing)
             SELECT (dbv << 20) | seq, cid, rid, life, data, slots, digest, refs, missing
             FROM records_by_key WHERE seq BETWEEN 1 AND 1048575 ORDER BY dbv, seq;
         INSERT INTO records (pos, cid, rid, life, data, slots, digest, refs, missing)
             SELECT ((last + 1 + (n - 1) / 1048575) << 20) | ((n - 1) % 1048575 + 1),
                    cid, rid, life, data, slots, digest, refs, missing
             FROM (SELECT row_number() OVER (ORDER BY dbv, seq) AS n, * FROM records_by_key
                   WHERE seq NOT BETWEEN 1 AND 1048575),
                  (SELECT coalesce(max(dbv), 0) AS last FROM records_by_key)
             ORDER BY n;
         DROP TABLE records_by_key;",
    )?;
    for (_, sql) in indexes.iter().filter(|(name, _)| name.starts_with("ix_")) {
        tx.execute_batch(sql)?;
    }
    Ok(())
}
