//! Writing a store moved from another storage (`crate::import`) into the
//! SQLite store: whether this store already holds anything, the copy's one
//! transaction — begun, filled a page of rows at a time, finished with the
//! cursors, the moved store's metadata and a note of what was moved, then
//! committed and flushed; or rolled back, leaving the store as it was —
//! and reading that note back. It owns these statements only; what is
//! copied and when is `crate::import`'s.

use crate::error::WebError;
use crate::meta::NodeMeta;
use crate::sql::meta_rows::{meta_text, put_meta, put_meta_text};
use crate::sql::open::put_row;
use crate::sql::{cursors, sql_error};
use rusqlite::Connection;
use shoal_core::{DbVersion, SyncCursor};

/// The `meta` key of the note: the source's metadata as it was when moved.
const MOVED_KEY: &str = "moved-from-indexeddb";

/// Whether the store holds any record row (tombstones included).
pub fn holds_records(conn: &Connection) -> Result<bool, WebError> {
    conn.query_row("SELECT EXISTS (SELECT 1 FROM records)", [], |r| r.get(0))
        .map_err(sql_error)
}

/// The metadata the moved store had when it was moved here, if one was.
pub fn moved_from(conn: &Connection) -> Result<Option<NodeMeta>, WebError> {
    meta_text(conn, MOVED_KEY)?
        .map(|text| NodeMeta::decode(&text))
        .transpose()
}

/// Begins the copy's transaction (it stays open across the awaits between
/// pages, which `sql/txn.rs`'s guard, borrowing the connection, cannot:
/// nothing else uses the connection until the store is opened) and
/// drops the store's own cursors: an empty store's, of an identity the
/// move replaces. Its commit is flushed to the disk (`synchronous = FULL`,
/// for this transaction only): the source is deleted right after it.
pub fn begin(conn: &Connection) -> Result<(), WebError> {
    conn.execute_batch("PRAGMA synchronous = FULL; BEGIN IMMEDIATE; DELETE FROM cursors")
        .map_err(sql_error)
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

/// Stores the moved cursors, metadata and the note of it, and commits.
pub fn finish(
    conn: &Connection,
    meta: &NodeMeta,
    moved_cursors: &[(String, SyncCursor)],
) -> Result<(), WebError> {
    for (peer, cursor) in moved_cursors {
        cursors::save(conn, peer, *cursor)?;
    }
    put_meta(conn, meta)?;
    put_meta_text(conn, MOVED_KEY, &meta.encode())?;
    conn.execute_batch("COMMIT").map_err(sql_error)?;
    normal_sync(conn)
}

/// Rolls the copy back, if its transaction is still open.
pub fn abort(conn: &Connection) {
    if !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    let _ = normal_sync(conn);
}

/// The store's own setting again (sql/open.rs).
fn normal_sync(conn: &Connection) -> Result<(), WebError> {
    conn.execute_batch("PRAGMA synchronous = NORMAL")
        .map_err(sql_error)
}
