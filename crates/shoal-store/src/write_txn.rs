//! The hot paths' transactions: `BEGIN IMMEDIATE`, `BEGIN` and `COMMIT` run
//! as statements prepared once and kept (`kept.rs`; `BEGIN` in the
//! connection's statement cache), instead of being parsed and compiled
//! again for every transaction (what `rusqlite::Transaction` does). A
//! single put is one transaction, so those compilations were a measurable
//! share of its cost; so they were of applying a peer's batch, and of
//! reading the log for each peer a write is pushed to (a tenth of the
//! writer's CPU with 16 peers).
//!
//! It owns the begin / commit / roll-back-on-drop life of the transaction
//! and the record rows decided in it and not yet written
//! (`record_rows.rs`), which it writes before its commit; what is read and
//! written inside belongs to the callers. It
//! is the one way the store begins a write transaction. It must not change
//! when the write lock is taken (at once for [`WriteTxn::begin`], so that
//! another process cannot commit between our read of the log head and our
//! commit; at the first write for [`WriteTxn::begin_deferred`]) nor what a
//! commit means: `COMMIT` is the same statement at the connection's
//! `synchronous` level.

use crate::error::StoreError;
use crate::kept::{Db, Kept, KeptStatements};
use crate::record_rows::{RecordRow, RecordRows};
use rusqlite::Connection;
use std::ops::Deref;

/// An open write transaction (the write lock is held). Dropped without
/// [`commit`](Self::commit) — an error part-way, or a failed commit — it
/// rolls back, so nothing of a refused write stays.
///
/// Record rows given to [`push_row`](Self::push_row) may wait to be
/// written: code that reads the `records` table after pushing one reads
/// through [`flushed`](Self::flushed).
pub(crate) struct WriteTxn<'c> {
    conn: &'c Connection,
    kept: &'c KeptStatements,
    open: bool,
    rows: RecordRows<'c>,
}

impl<'c> WriteTxn<'c> {
    /// Starts a transaction that takes the write lock at once (so another
    /// process cannot commit between our read of the log head and our commit).
    pub(crate) fn begin(db: &'c mut Db) -> Result<Self, StoreError> {
        let db: &'c Db = db;
        db.kept.run(Kept::BeginImmediate, |s| s.execute([]))?;
        Ok(Self::opened(db))
    }

    /// Starts a deferred transaction: a read that sees one snapshot and may
    /// also write (the write lock is taken then, if ever). The log read for
    /// a peer is one, once per push to every peer.
    pub(crate) fn begin_deferred(db: &'c Db) -> Result<Self, StoreError> {
        db.conn.prepare_cached("BEGIN")?.execute([])?;
        Ok(Self::opened(db))
    }

    fn opened(db: &'c Db) -> Self {
        Self {
            conn: &db.conn,
            kept: &db.kept,
            open: true,
            rows: RecordRows::new(db),
        }
    }

    /// The connection's kept statements (`kept.rs`).
    pub(crate) fn kept(&self) -> &'c KeptStatements {
        self.kept
    }

    /// Writes a record's row, now or with the next ones (before
    /// [`flushed`](Self::flushed) returns and before the commit).
    pub(crate) fn push_row(&mut self, row: RecordRow) -> Result<(), StoreError> {
        self.rows.push(row)
    }

    /// Writes every record row still waiting and gives the connection to
    /// read through: a read of the `records` table after rows were pushed
    /// goes through this, so it sees them.
    pub(crate) fn flushed(&mut self) -> Result<&'c Connection, StoreError> {
        self.rows.flush()?;
        Ok(self.conn)
    }

    /// Writes the waiting record rows and commits; on error the transaction
    /// is rolled back when this is dropped.
    pub(crate) fn commit(mut self) -> Result<(), StoreError> {
        self.flushed()?;
        self.kept.run(Kept::Commit, |s| s.execute([]))?;
        self.open = false;
        Ok(())
    }
}

impl Deref for WriteTxn<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl Drop for WriteTxn<'_> {
    fn drop(&mut self) {
        // SQLite may already have rolled back by itself (some I/O errors do);
        // then there is nothing left to end.
        if self.open && !self.conn.is_autocommit() {
            // Nothing to report to: a failed rollback leaves SQLite to roll
            // back when the connection closes, as rusqlite's own drop does.
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Db {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
        Db::new(conn).unwrap()
    }

    fn rows(conn: &Connection) -> i64 {
        conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn a_committed_transaction_stays_and_the_next_one_starts_afresh() {
        let mut db = table();
        for round in 1..=3 {
            let tx = WriteTxn::begin(&mut db).unwrap();
            assert!(!tx.is_autocommit(), "begin opened no transaction");
            tx.execute("INSERT INTO t VALUES (1)", []).unwrap();
            tx.commit().unwrap();
            assert!(db.conn.is_autocommit(), "commit left the transaction open");
            assert_eq!(rows(&db.conn), round);
        }
    }

    #[test]
    fn a_dropped_transaction_rolls_back() {
        let mut db = table();
        {
            let tx = WriteTxn::begin(&mut db).unwrap();
            tx.execute("INSERT INTO t VALUES (1)", []).unwrap();
        }
        assert!(db.conn.is_autocommit());
        assert_eq!(rows(&db.conn), 0);
        // The kept statements still work after a rollback.
        let tx = WriteTxn::begin(&mut db).unwrap();
        tx.execute("INSERT INTO t VALUES (2)", []).unwrap();
        tx.commit().unwrap();
        assert_eq!(rows(&db.conn), 1);
    }

    #[test]
    fn a_deferred_transaction_reads_one_snapshot_and_locks_nothing_until_it_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snap.db");
        let reader = Connection::open(&path).unwrap();
        reader
            .execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (x INTEGER)")
            .unwrap();
        let writer = Connection::open(&path).unwrap();
        writer.busy_timeout(std::time::Duration::ZERO).unwrap();
        let (reader, mut writer) = (Db::new(reader).unwrap(), Db::new(writer).unwrap());
        for round in 1..=2 {
            let tx = WriteTxn::begin_deferred(&reader).unwrap();
            assert_eq!(rows(&tx), round - 1);
            // Another connection commits meanwhile: no lock stops it, and
            // the open transaction still sees what it saw first.
            let other = WriteTxn::begin(&mut writer).unwrap();
            other.execute("INSERT INTO t VALUES (1)", []).unwrap();
            other.commit().unwrap();
            assert_eq!(rows(&tx), round - 1);
            tx.commit().unwrap();
            assert!(
                reader.conn.is_autocommit(),
                "commit left the transaction open"
            );
            assert_eq!(rows(&reader.conn), round);
        }
    }

    #[test]
    fn the_write_lock_is_taken_at_begin() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock.db");
        let first = Connection::open(&path).unwrap();
        first
            .execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (x INTEGER)")
            .unwrap();
        let second = Connection::open(&path).unwrap();
        second.busy_timeout(std::time::Duration::ZERO).unwrap();
        let (mut first, mut second) = (Db::new(first).unwrap(), Db::new(second).unwrap());
        let _held = WriteTxn::begin(&mut first).unwrap();
        // Another writer cannot begin while this transaction holds the lock.
        assert!(WriteTxn::begin(&mut second).is_err());
    }
}
