//! SQLite persistence of the browser store, in the origin private file
//! system (OPFS): rusqlite on SQLite compiled to wasm32, through the
//! `sahpool` VFS, whose synchronous access handles exist only in a
//! dedicated Worker — so a store opened with `{storage: "opfs"}` lives in
//! one. The same rows as the IndexedDB store (`idb/`), one table each:
//! `records (k, v, s)` with an index on `v`, `meta`, `cursors`
//! ([`open`]). Every operation is synchronous on the one connection: a
//! worker has one thread, so nothing interleaves with it.
//!
//! Nothing here decides a write or a merge: write_tx.rs calls
//! write_batch.rs, sync_apply.rs calls `sync/merge.rs`.

pub mod cursors;
pub mod head;
pub mod host;
pub mod import;
pub mod meta_rows;
pub mod open;
pub mod quota;
pub mod read;
pub mod sync_apply;
pub mod sync_log;
pub mod txn;
pub mod write_tx;

use crate::error::WebError;

/// A SQLite failure as the store's error: a full disk as
/// `quota-exceeded`, anything else as `storage` with SQLite's message.
pub fn sql_error(error: rusqlite::Error) -> WebError {
    match error.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DiskFull) => WebError::QuotaExceeded(error.to_string()),
        _ => WebError::Storage(format!("SQLite: {error}")),
    }
}
