//! The SQLite store's write transactions: `BEGIN IMMEDIATE` and `COMMIT`
//! run as statements prepared once and kept in the connection's statement
//! cache, where rusqlite's `Transaction` parses and compiles both again for
//! every transaction — a single put is one transaction, so that parsing
//! was part of every put's cost (and more of it while V8 still runs the
//! WebAssembly on its baseline compiler).
//!
//! It owns begin, commit and roll-back-on-drop only: a [`Txn`] dropped
//! without [`Txn::commit`] (an error part-way, a failed commit) rolls back,
//! so nothing of a refused write stays. What is read and written inside is
//! the callers' (`write_tx.rs`, `sync_apply.rs`). The storage tests in a
//! dedicated Worker (`tests/storage_opfs.rs`, `tests/sync_opfs.rs`) and the
//! browser's quota test (a refused commit leaves the store as it was) run
//! through it.

use crate::error::WebError;
use crate::sql::sql_error;
use rusqlite::Connection;
use std::ops::Deref;

/// An open write transaction on the store's one connection.
pub struct Txn<'c> {
    conn: &'c Connection,
    open: bool,
}

impl<'c> Txn<'c> {
    /// Begins a transaction that takes the write lock at once.
    pub fn begin(conn: &'c mut Connection) -> Result<Self, WebError> {
        let conn: &'c Connection = conn;
        // An earlier transaction whose rollback failed would still be open:
        // end it before this one begins (else every later begin fails and
        // reads see its rows).
        if !conn.is_autocommit() {
            conn.execute_batch("ROLLBACK").map_err(sql_error)?;
        }
        conn.prepare_cached("BEGIN IMMEDIATE")
            .and_then(|mut begin| begin.execute([]))
            .map_err(sql_error)?;
        Ok(Txn { conn, open: true })
    }

    /// Commits; on error the transaction is rolled back when dropped.
    pub fn commit(mut self) -> Result<(), WebError> {
        self.conn
            .prepare_cached("COMMIT")
            .and_then(|mut commit| commit.execute([]))
            .map_err(sql_error)?;
        self.open = false;
        Ok(())
    }
}

impl Deref for Txn<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl Drop for Txn<'_> {
    fn drop(&mut self) {
        // SQLite may have rolled back by itself already (some I/O errors
        // do, a full disk among them); then there is nothing left to end.
        if self.open && !self.conn.is_autocommit() {
            // Nowhere to report to: a failed rollback leaves SQLite to roll
            // back when the connection closes, as rusqlite's own drop does.
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}
