//! Schema step 13: the `records` table keyed by its rows' log positions
//! (`log_pos.rs`) instead of by (collection, id) `WITHOUT ROWID`: a write
//! appends at the table's end, and a unique index finds a record by
//! (collection, id). `dbv` and `seq` stay readable as columns computed from
//! the key; the index on them goes, since the key orders the log.
//!
//! The rows are copied in log order, through the old log index, and the
//! new indexes are made after. A row whose place in its transaction is
//! past what a key holds (a transaction of more than 1,048,575 changes) is
//! moved to the log's end, as if a new transaction had changed it, with its
//! slots' versions kept: a peer whose cursor was past it receives it again,
//! which a merge takes as nothing new; the log's last clocks are then kept
//! in the clock mark. The collection indexes of `query.rs` (`ix_…`) are
//! made again on the new table.
//!
//! It runs once, inside the open that finds a file of schema 12: about 4 s
//! for 1,000,000 records on the machine of the benchmarks. The old table's
//! pages stay in the file as free pages, which later writes reuse.
//!
//! Frozen: change the schema in a new step.

use super::has_column;
use crate::error::StoreError;
use crate::log_pos::{MAX_SEQ, MAX_VERSION};
use rusqlite::Transaction;

/// The table as this step leaves it.
pub(crate) const RECORDS_TABLE: &str = "
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
);";

/// Its indexes (the per-collection indexes of `query.rs` are added later).
pub(crate) const RECORDS_INDEXES: &str = "
CREATE UNIQUE INDEX records_key ON records (cid, rid);
CREATE INDEX records_dead ON records (pos) WHERE data IS NULL;";

/// Rebuilds `records` keyed by log position, unless it is already.
pub(super) fn up(tx: &Transaction<'_>) -> Result<(), StoreError> {
    if has_column(tx, "records", "pos")? {
        return Ok(());
    }
    let (rows, last, overflowing): (i64, i64, i64) = tx.query_row(
        "SELECT count(*), coalesce(max(dbv), 0), count(*) FILTER (WHERE seq NOT BETWEEN 1 AND 1048575)
         FROM records",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    if rows > 0 {
        tracing::info!("rewriting {rows} records keyed by their log positions (schema step 13)");
    }
    // Rows past what a key holds go after the log's end: after its last
    // version, and after a floor a same-identity restore set (`backup.rs`).
    let end = (last as u64).max(crate::rows::log_floor(tx)?.0);
    let needed = end + (overflowing as u64).div_ceil(u64::from(MAX_SEQ));
    if needed > MAX_VERSION {
        return Err(StoreError::LogFull { version: needed });
    }
    if overflowing > 0 {
        // Opening restores the clock from the log's last version, which
        // the moved rows become: the last transaction's clocks go to the
        // clock mark.
        let mut highest = None;
        let mut stmt = tx.prepare("SELECT slots FROM records WHERE dbv = ?1")?;
        let mut found = stmt.query([last])?;
        while let Some(row) = found.next()? {
            let slots = crate::rows::unpack(&row.get::<_, Vec<u8>>(0)?)?;
            highest = highest.max(slots.state.max_clock().map(|c| c.hlc));
        }
        if let Some(hlc) = highest {
            crate::clock_mark::save(tx, hlc)?;
        }
    }
    // The indexes whose names the new table takes are dropped, and the
    // collection indexes, made again on the new table; the log index goes
    // with the old table, after the copy has read through it.
    let indexes: Vec<(String, String)> = tx
        .prepare(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'records'
             AND sql IS NOT NULL AND name <> 'records_log'",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (name, _) in &indexes {
        tx.execute_batch(&format!("DROP INDEX \"{name}\";"))?;
    }
    tx.execute_batch("ALTER TABLE records RENAME TO records_by_key;")?;
    tx.execute_batch(RECORDS_TABLE)?;
    tx.execute(
        "INSERT INTO records (pos, cid, rid, life, data, slots, digest, refs, missing)
             SELECT (dbv << 20) | seq, cid, rid, life, data, slots, digest, refs, missing
             FROM records_by_key WHERE seq BETWEEN 1 AND 1048575 ORDER BY dbv, seq",
        [],
    )?;
    if overflowing > 0 {
        tx.execute(
            "INSERT INTO records (pos, cid, rid, life, data, slots, digest, refs, missing)
                 SELECT ((?1 + 1 + (n - 1) / 1048575) << 20) | ((n - 1) % 1048575 + 1),
                        cid, rid, life, data, slots, digest, refs, missing
                 FROM (SELECT row_number() OVER (ORDER BY dbv, seq) AS n, * FROM records_by_key
                       WHERE seq NOT BETWEEN 1 AND 1048575)
                 ORDER BY n",
            [end as i64],
        )?;
    }
    tx.execute_batch("DROP TABLE records_by_key;")?;
    tx.execute_batch(RECORDS_INDEXES)?;
    for (_, sql) in indexes.iter().filter(|(name, _)| name.starts_with("ix_")) {
        tx.execute_batch(sql)?;
    }
    Ok(())
}
