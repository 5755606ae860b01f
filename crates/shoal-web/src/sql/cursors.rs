//! The catch-up cursor table of the SQLite store: for each peer, how far
//! this tab has received its change log, as `idb/cursors.rs` keeps it.
//! It owns this table only.

use crate::cursor_text;
use crate::error::WebError;
use crate::sql::sql_error;
use rusqlite::{Connection, OptionalExtension};
use shoal_core::SyncCursor;

/// The stored cursor for `peer`, or the start of its log.
pub fn load(conn: &Connection, peer: &str) -> Result<SyncCursor, WebError> {
    let text: Option<String> = conn
        .prepare_cached("SELECT cursor FROM cursors WHERE peer = ?1")
        .and_then(|mut s| s.query_row([peer], |r| r.get(0)).optional())
        .map_err(sql_error)?;
    match text {
        Some(text) => cursor_text::decode(peer, &text),
        None => Ok(SyncCursor::default()),
    }
}

/// Stores `cursor`'s durable part for `peer` (in the caller's
/// transaction, if any).
pub fn save(conn: &Connection, peer: &str, cursor: SyncCursor) -> Result<(), WebError> {
    let text = cursor_text::encode(cursor);
    conn.prepare_cached("INSERT OR REPLACE INTO cursors (peer, cursor) VALUES (?1, ?2)")
        .and_then(|mut s| s.execute((peer, text)))
        .map(drop)
        .map_err(sql_error)
}
