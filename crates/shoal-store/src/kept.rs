//! The statements a single write runs every time — `BEGIN IMMEDIATE`,
//! `COMMIT`, the `data_version` check, the look-up of the record's row and
//! the one-row insert or upsert — prepared once per store and kept for its
//! life ([`Kept`]).
//!
//! Taken from rusqlite's statement cache instead, each use made a new
//! `Arc<str>` key of the SQL text, hashed it twice and freed and made again
//! the cache's list node: about 890 instructions a statement, 4,500 of a
//! single put's 54,800 (callgrind inside `Store::write`, 2,000 puts).
//!
//! A rusqlite statement borrows the `Connection` it was prepared on, so the
//! store could not keep statements of its own connection beside it. They
//! are prepared on a second `Connection` over the same SQLite handle
//! (`Connection::from_handle`, which never closes the handle), owned here
//! together with its statements (`self_cell`). SQLite sees one connection:
//! a transaction begun by a kept statement is the store's transaction, and
//! what the store's connection wrote is what a kept statement reads.
//!
//! It owns that second connection and the statements, and [`Db`], which
//! holds them with the store's connection as one value. The statements must
//! not outlive the connection they were made over (`Db` drops them first),
//! nor run anything but the statements of [`Kept`].

use crate::error::StoreError;
use crate::record_sql::{Prior, one_row};
use rusqlite::{Connection, PrepFlags, Statement};
use std::cell::RefCell;

/// A kept statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kept {
    /// `BEGIN IMMEDIATE`: a write transaction that holds the write lock.
    BeginImmediate,
    /// `COMMIT`.
    Commit,
    /// `PRAGMA data_version`.
    DataVersion,
    /// A record's row, by collection and id (`rows::load`: writes and reads).
    LoadRow,
    /// The one-row insert of a record's first row (`record_rows.rs`).
    InsertOne,
    /// The one-row upsert of a record's row (`record_rows.rs`).
    UpsertOne,
}

impl Kept {
    /// Every kept statement, in [`Self::index`] order.
    const ALL: [Kept; 6] = [
        Kept::BeginImmediate,
        Kept::Commit,
        Kept::DataVersion,
        Kept::LoadRow,
        Kept::InsertOne,
        Kept::UpsertOne,
    ];

    fn index(self) -> usize {
        match self {
            Kept::BeginImmediate => 0,
            Kept::Commit => 1,
            Kept::DataVersion => 2,
            Kept::LoadRow => 3,
            Kept::InsertOne => 4,
            Kept::UpsertOne => 5,
        }
    }

    fn sql(self) -> &'static str {
        match self {
            Kept::BeginImmediate => "BEGIN IMMEDIATE",
            Kept::Commit => "COMMIT",
            Kept::DataVersion => DATA_VERSION,
            Kept::LoadRow => LOAD_ROW,
            Kept::InsertOne => one_row(Prior::Absent),
            Kept::UpsertOne => one_row(Prior::Present),
        }
    }
}

/// SQLite's `data_version`: it moves whenever another connection commits.
pub(crate) const DATA_VERSION: &str = "PRAGMA data_version";

/// A record's row by collection and id: `slots`, `digest`, `refs`, `missing`.
const LOAD_ROW: &str =
    "SELECT slots, digest, refs, missing FROM records WHERE cid = ?1 AND rid = ?2";

/// The statements of one kept set, in [`Kept::index`] order, each
/// prepared at its first use (a connection that never touches records, as
/// in some tests, never prepares the statements on `records`).
struct Prepared<'a> {
    statements: [RefCell<Option<Statement<'a>>>; Kept::ALL.len()],
}

self_cell::self_cell!(
    /// The second connection and the statements prepared on it.
    struct Cell {
        owner: Connection,
        #[not_covariant]
        dependent: Prepared,
    }
);

/// The kept statements of one store connection.
pub(crate) struct KeptStatements(Cell);

impl std::fmt::Debug for KeptStatements {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeptStatements")
    }
}

/// A store's connection with its kept statements, as one value: the
/// statements are dropped before the connection whose handle they share,
/// and the two can only move between threads together.
#[derive(Debug)]
pub(crate) struct Db {
    /// Declared before `conn`: dropped first, while the handle is open.
    pub(crate) kept: KeptStatements,
    pub(crate) conn: Connection,
}

// SAFETY: as rusqlite's `Connection` is `Send` with the statements in its
// cache: the two connections over one handle move together, as this one
// value (`KeptStatements` alone is not `Send`), and `&mut`/`&` access to it
// follows the store's, one thread at a time (neither is `Sync`).
unsafe impl Send for Db {}

impl Db {
    /// `conn` with its kept statements.
    pub(crate) fn new(conn: Connection) -> Result<Self, StoreError> {
        // SAFETY: `kept` lives in the same value as `conn`, declared before
        // it (dropped first), and moves with it; moving `conn` keeps its
        // handle.
        let kept = unsafe { KeptStatements::over(&conn) }?;
        Ok(Self { kept, conn })
    }
}

impl KeptStatements {
    /// Kept statements over `conn`'s SQLite handle.
    ///
    /// # Safety
    ///
    /// `conn` must stay open for as long as the returned value lives: drop
    /// this first. And the two share one SQLite handle, opened without a
    /// mutex: they must not be used on two threads at once ([`Db`] holds
    /// both as one value).
    unsafe fn over(conn: &Connection) -> Result<Self, StoreError> {
        // SAFETY: the caller keeps the handle open while the alias lives;
        // the alias never closes it.
        let alias = unsafe { Connection::from_handle(conn.handle()) }?;
        Ok(Self(Cell::new(alias, |_| Prepared {
            statements: Default::default(),
        })))
    }

    /// Runs `f` on the `which` statement, preparing it the first time.
    /// The statement must be done (reset) when `f` returns, as rusqlite's
    /// `execute` and `query_row` leave it.
    pub(crate) fn run<R, E: From<rusqlite::Error>>(
        &self,
        which: Kept,
        f: impl FnOnce(&mut Statement<'_>) -> Result<R, E>,
    ) -> Result<R, E> {
        self.0.with_dependent(|alias, prepared| {
            let mut slot = prepared.statements[which.index()].borrow_mut();
            let statement = match &mut *slot {
                Some(statement) => statement,
                empty => empty.insert(
                    alias.prepare_with_flags(which.sql(), PrepFlags::SQLITE_PREPARE_PERSISTENT)?,
                ),
            };
            f(statement)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("k.db")).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (x INTEGER)")
            .unwrap();
        (dir, Db::new(conn).unwrap())
    }

    #[test]
    fn a_kept_transaction_is_the_connections_own() {
        let (_dir, db) = lab();
        let (conn, kept) = (&db.conn, &db.kept);
        for round in 1..=3 {
            kept.run(Kept::BeginImmediate, |s| s.execute([])).unwrap();
            assert!(!conn.is_autocommit(), "the store's connection is in it");
            conn.execute("INSERT INTO t VALUES (?1)", [round]).unwrap();
            kept.run(Kept::Commit, |s| s.execute([])).unwrap();
            assert!(conn.is_autocommit());
        }
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 3, "every round committed");
    }

    #[test]
    fn each_kept_statement_is_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            crate::Store::open(dir.path().join("s.db"), crate::StoreConfig::default()).unwrap();
        for which in Kept::ALL {
            assert_eq!(Kept::ALL[which.index()], which);
            let sql = store
                .db
                .kept
                .run(which, |s| Ok::<_, rusqlite::Error>(s.expanded_sql()))
                .unwrap()
                .unwrap();
            assert_eq!(
                sql.replace("NULL", "?"),
                which.sql().replace("?1", "?").replace("?2", "?"),
                "{which:?}"
            );
        }
    }

    #[test]
    fn a_kept_statement_follows_a_schema_change() {
        let dir = tempfile::tempdir().unwrap();
        let mut store =
            crate::Store::open(dir.path().join("s.db"), crate::StoreConfig::default()).unwrap();
        let notes = shoal_core::CollectionName::new("notes").unwrap();
        let put = |store: &mut crate::Store, id: &str, n: i64| {
            let body = serde_json::json!({ "n": n }).as_object().unwrap().clone();
            store
                .write(vec![crate::WriteOp {
                    collection: notes.clone(),
                    id: shoal_core::RecordId::new(id).unwrap(),
                    intent: shoal_core::Intent::Put(body),
                }])
                .unwrap();
        };
        let n = |store: &crate::Store, id: &str| {
            store
                .get(&notes, &shoal_core::RecordId::new(id).unwrap())
                .unwrap()
                .unwrap()["n"]
                .clone()
        };
        // The look-up and the one-row insert are prepared and used ...
        put(&mut store, "a", 1);
        assert_eq!(n(&store, "a"), 1);
        // ... then `records` changes shape under them (as a declared index
        // or a schema step changes it), and they still run.
        store
            .db
            .conn
            .execute_batch("CREATE INDEX kept_test ON records (dbv)")
            .unwrap();
        put(&mut store, "b", 2);
        put(&mut store, "a", 3);
        assert_eq!((n(&store, "a"), n(&store, "b")), (3.into(), 2.into()));
    }

    #[test]
    fn a_dropped_store_closes_its_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        {
            let mut store = crate::Store::open(&path, crate::StoreConfig::default()).unwrap();
            let tasks = shoal_core::CollectionName::new("tasks").unwrap();
            let body = serde_json::json!({"n": 1}).as_object().unwrap().clone();
            store
                .write(vec![crate::WriteOp {
                    collection: tasks,
                    id: shoal_core::RecordId::new("t1").unwrap(),
                    intent: shoal_core::Intent::Put(body),
                }])
                .unwrap();
            store
                .get(
                    &shoal_core::CollectionName::new("tasks").unwrap(),
                    &shoal_core::RecordId::new("t1").unwrap(),
                )
                .unwrap();
        }
        // The last connection to close removes the log: a handle left open
        // (a statement not finalized keeps SQLite from closing it) would
        // leave it behind.
        let wal = dir.path().join("s.db-wal");
        assert!(!wal.exists(), "the store's connection stayed open");
    }
}
