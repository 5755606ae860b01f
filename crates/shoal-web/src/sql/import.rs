//! Writing a store moved from another storage (`crate::import`) into the
//! SQLite store: whether this store already holds anything, and the copy's
//! one transaction — begun, filled a page of rows at a time, finished with
//! the cursors and the moved store's metadata, committed; or rolled back,
//! leaving the store as it was. It owns these statements only; what is
//! copied and when is `crate::import`'s.

use crate::error::WebError;
use crate::meta::NodeMeta;
use crate::sql::open::{put_meta, put_row};
use crate::sql::{cursors, sql_error};
use rusqlite::Connection;
use shoal_core::{DbVersion, SyncCursor};

/// Whether the store holds any record row (tombstones included).
pub fn holds_records(conn: &Connection) -> Result<bool, WebError> {
    conn.query_row("SELECT EXISTS (SELECT 1 FROM records)", [], |r| r.get(0))
        .map_err(sql_error)
}

/// Begins the copy's transaction (it stays open across the awaits between
/// pages: nothing else uses the connection until the store is opened).
pub fn begin(conn: &Connection) -> Result<(), WebError> {
    conn.execute_batch("BEGIN IMMEDIATE").map_err(sql_error)
}

/// Stores one page of moved rows (key, log version, state text) as they
/// were stored.
pub fn rows<'a>(
    conn: &Connection,
    rows: impl IntoIterator<Item = (&'a str, DbVersion, &'a str)>,
) -> Result<(), WebError> {
    for (key, version, state) in rows {
        put_row(conn, key, version, state)?;
    }
    Ok(())
}

/// Stores the moved cursors (each checked to decode) and metadata, and
/// commits.
pub fn finish(
    conn: &Connection,
    meta: &NodeMeta,
    moved_cursors: &[(String, String)],
) -> Result<(), WebError> {
    for (peer, text) in moved_cursors {
        let cursor: SyncCursor = serde_json::from_str(text)
            .map_err(|e| WebError::Corrupt(format!("cursor of {peer}: {e}")))?;
        cursors::save(conn, peer, cursor)?;
    }
    put_meta(conn, meta)?;
    conn.execute_batch("COMMIT").map_err(sql_error)
}

/// Rolls the copy back, if its transaction is still open.
pub fn abort(conn: &Connection) {
    if !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
}
