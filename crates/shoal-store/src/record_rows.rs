//! Record rows a write transaction has decided but not yet written:
//! [`RecordRows`] keeps them and writes them by multi-row statements, up to
//! [`CHUNK`] rows a statement.
//!
//! One statement per row made SQLite set up, bind, run and reset a
//! statement 10,000 times for a `put_many` of 10,000 records; written 64
//! rows at a time, raw SQLite ran the same upserts on Shoal's layout 1.2–1.5
//! times as fast (a probe beside `shoal-bench write`). Rows are written when
//! a chunk fills and when the transaction flushes them: before anything in
//! it reads the `records` table again and at its commit
//! (`write_txn.rs`), so no read in the transaction misses a pending row.
//!
//! A row of a record that has none yet (the caller loaded it and found
//! none: [`Prior::Absent`]) waits for an insert, the others for an upsert
//! (`record_sql.rs`). Every error here fails the whole write, whose
//! transaction is then rolled back. A record's row is never in both
//! buffers at once (a caller loads a record again only through a flush),
//! so the two are written in either order.
//!
//! The full-chunk statements are taken from the connection's cache once per
//! transaction and kept until it ends: the cache finds a statement by its
//! SQL, and hashing and comparing the 64-row text (about 1,400 bytes) for
//! every chunk was 2.7 % of a `put_many`'s instructions (callgrind). The
//! one-row statements, which a single write uses, are the store's kept ones
//! (`kept.rs`).
//!
//! A waiting row's text and packed slots are copied into its buffer's one
//! byte arena, and the row's own allocations freed at once: held until the
//! chunk was written, a chunk's 128 of them outran the allocator's
//! per-thread cache, and each went through glibc's slower bins when made
//! and again when freed (callgrind, `put_many` of 10,000: pack_digested's
//! allocation alone cost 319 instructions a call).
//!
//! This module owns only the buffering and running the statements (their
//! SQL is `record_sql.rs`'s); what a row holds is decided by `rows::save`.

use crate::error::StoreError;
use crate::kept::{Db, Kept, KeptStatements};
use crate::record_sql::{CHUNK, COLUMNS, Prior, SIZES, statements_of};
use rusqlite::{CachedStatement, Connection, Statement};
use shoal_core::RecordId;
use std::ops::Range;

/// One `records` row as it will be written.
#[derive(Debug)]
pub(crate) struct RecordRow {
    /// Whether it replaces a row or is the record's first.
    pub(crate) prior: Prior,
    pub(crate) cid: i64,
    pub(crate) rid: RecordId,
    pub(crate) life: i64,
    /// The rendered JSON; `None` while the record is deleted.
    pub(crate) data: Option<String>,
    pub(crate) slots: Vec<u8>,
    /// The log position of the change, as the table's key (`log_pos.rs`).
    pub(crate) pos: i64,
    pub(crate) digest: [u8; 16],
    pub(crate) refs: u32,
    pub(crate) missing: u32,
}

/// A waiting [`RecordRow`] whose text and slots are in its buffer's arenas
/// ([`Pending::texts`], [`Pending::blobs`]), by range.
#[derive(Debug)]
struct Parked {
    cid: i64,
    rid: RecordId,
    life: i64,
    data: Option<Range<usize>>,
    slots: Range<usize>,
    pos: i64,
    digest: [u8; 16],
    refs: u32,
    missing: u32,
}

/// Appends `bytes` to `arena` and returns where they are.
fn appended(arena: &mut Vec<u8>, bytes: &[u8]) -> Range<usize> {
    let start = arena.len();
    arena.extend_from_slice(bytes);
    start..arena.len()
}

/// Rows waiting to be written, by statement, each in the order decided,
/// on the connection of one transaction.
pub(crate) struct RecordRows<'c> {
    conn: &'c Connection,
    kept: &'c KeptStatements,
    inserts: Pending<'c>,
    upserts: Pending<'c>,
}

/// Rows waiting for one statement, and its full-chunk form once used.
struct Pending<'c> {
    /// Which kind of statement: an insert or an upsert.
    prior: Prior,
    rows: Vec<Parked>,
    /// The waiting rows' data texts, back to back.
    texts: String,
    /// The waiting rows' packed slots, back to back.
    blobs: Vec<u8>,
    /// The [`CHUNK`]-row statement, kept from its first use on.
    full: Option<CachedStatement<'c>>,
}

impl<'c> RecordRows<'c> {
    /// No rows waiting, to be written on `db`'s connection.
    pub(crate) fn new(db: &'c Db) -> Self {
        let pending = |prior| Pending {
            prior,
            rows: Vec::new(),
            texts: String::new(),
            blobs: Vec::new(),
            full: None,
        };
        Self {
            conn: &db.conn,
            kept: &db.kept,
            inserts: pending(Prior::Absent),
            upserts: pending(Prior::Present),
        }
    }

    /// Adds a row; writes a full chunk at once.
    pub(crate) fn push(&mut self, row: RecordRow) -> Result<(), StoreError> {
        let pending = match row.prior {
            Prior::Absent => &mut self.inserts,
            Prior::Present => &mut self.upserts,
        };
        pending.park(row);
        if pending.rows.len() >= CHUNK {
            pending.write(self.conn, self.kept)?;
        }
        Ok(())
    }

    /// Writes every waiting row. On error the rows are dropped with the
    /// transaction, which the caller's error rolls back.
    pub(crate) fn flush(&mut self) -> Result<(), StoreError> {
        self.inserts.write(self.conn, self.kept)?;
        self.upserts.write(self.conn, self.kept)
    }
}

impl<'c> Pending<'c> {
    /// Keeps `row` to be written, its text and slots copied into the arenas
    /// (and its own freed here).
    fn park(&mut self, row: RecordRow) {
        let data = row.data.map(|text| {
            let start = self.texts.len();
            self.texts.push_str(&text);
            start..self.texts.len()
        });
        self.rows.push(Parked {
            cid: row.cid,
            rid: row.rid,
            life: row.life,
            data,
            slots: appended(&mut self.blobs, &row.slots),
            pos: row.pos,
            digest: row.digest,
            refs: row.refs,
            missing: row.missing,
        });
    }

    /// Writes the waiting rows by the statements of [`SIZES`], and empties
    /// the buffers (written or not: on error the transaction is given up).
    fn write(&mut self, conn: &'c Connection, kept: &KeptStatements) -> Result<(), StoreError> {
        let written = self.write_parked(conn, kept);
        // Cleared, not taken: the buffers keep their capacity for the next chunk.
        self.rows.clear();
        self.texts.clear();
        self.blobs.clear();
        written
    }

    fn write_parked(
        &mut self,
        conn: &'c Connection,
        kept: &KeptStatements,
    ) -> Result<(), StoreError> {
        let mut rows = self.rows.iter();
        let arenas = (self.texts.as_str(), self.blobs.as_slice());
        // Every size but the last, one row, by the statements of that many
        // rows; then the rest one by one, by the store's kept statement.
        let several = SIZES.len() - 1;
        for (size, sql) in SIZES[..several].iter().zip(statements_of(self.prior)) {
            while rows.len() >= *size {
                // A remainder's statement goes back to the cache when done.
                let mut looked_up;
                let statement = if *size == CHUNK {
                    match &mut self.full {
                        Some(full) => full,
                        full => full.insert(conn.prepare_cached(sql)?),
                    }
                } else {
                    looked_up = conn.prepare_cached(sql)?;
                    &mut looked_up
                };
                for (i, row) in rows.by_ref().take(*size).enumerate() {
                    bind(statement, i * COLUMNS, row, arenas)?;
                }
                statement.raw_execute()?;
                if *size == CHUNK {
                    // Kept, it would otherwise hold SQLite's copies of the
                    // chunk's values until the transaction ends (the cache
                    // clears those of the statements it takes back).
                    statement.clear_bindings();
                }
            }
        }
        let one = match self.prior {
            Prior::Absent => Kept::InsertOne,
            Prior::Present => Kept::UpsertOne,
        };
        for row in rows {
            kept.run(one, |statement| {
                let written =
                    bind(statement, 0, row, arenas).and_then(|()| Ok(statement.raw_execute()?));
                // Kept, it would otherwise hold SQLite's copies of the row's
                // values until its next use, refused or not.
                statement.clear_bindings();
                written.map(drop)
            })?;
        }
        Ok(())
    }
}

/// Binds `row`, whose text and slots are in `(texts, blobs)`, to the
/// statement's parameters after the first `at`.
fn bind(
    statement: &mut Statement<'_>,
    at: usize,
    row: &Parked,
    (texts, blobs): (&str, &[u8]),
) -> Result<(), StoreError> {
    statement.raw_bind_parameter(at + 1, row.pos)?;
    statement.raw_bind_parameter(at + 2, row.cid)?;
    statement.raw_bind_parameter(at + 3, row.rid.as_str())?;
    statement.raw_bind_parameter(at + 4, row.life)?;
    statement.raw_bind_parameter(at + 5, row.data.clone().map(|text| &texts[text]))?;
    statement.raw_bind_parameter(at + 6, &blobs[row.slots.clone()])?;
    statement.raw_bind_parameter(at + 7, &row.digest[..])?;
    statement.raw_bind_parameter(at + 8, row.refs)?;
    statement.raw_bind_parameter(at + 9, row.missing)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrations::v13_records_by_position::{RECORDS_INDEXES, RECORDS_TABLE};

    fn table() -> Db {
        let conn = Connection::open_in_memory().unwrap();
        for sql in [RECORDS_TABLE, RECORDS_INDEXES] {
            conn.execute_batch(sql).unwrap();
        }
        Db::new(conn).unwrap()
    }

    fn row(i: i64, dbv: i64, prior: Prior) -> RecordRow {
        RecordRow {
            prior,
            cid: 1,
            rid: RecordId::new(format!("r{i}")).unwrap(),
            life: 1,
            data: (i % 7 != 0).then(|| format!("{{\"n\":{i}}}")),
            slots: vec![i as u8; 3],
            pos: crate::log_pos::key_of_row(shoal_core::LogPosition {
                version: shoal_core::DbVersion(dbv as u64),
                seq: i as u32,
            })
            .unwrap(),
            digest: [i as u8; 16],
            refs: (i % 3) as u32,
            missing: 0,
        }
    }

    #[test]
    fn every_count_of_rows_is_written_whole_by_the_statement_sizes() {
        // Counts that use every size, none, and each remainder.
        for n in [0, 1, 3, 4, 5, 16, 21, 63, 64, 65, 150] {
            let db = table();
            let conn = &db.conn;
            let mut rows = RecordRows::new(&db);
            for i in 1..=n {
                rows.push(row(i, 1, Prior::Absent)).unwrap();
            }
            assert!(
                rows.inserts.rows.len() < CHUNK,
                "a full chunk is written at once"
            );
            rows.flush().unwrap();
            assert!(rows.inserts.rows.is_empty());
            let (count, sum, nulls): (i64, i64, i64) = conn
                .query_row(
                    "SELECT count(*), coalesce(sum(seq + refs + length(slots) + length(digest)), 0),
                            count(*) - count(data) FROM records",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .unwrap();
            let want: i64 = (1..=n).map(|i| i + i % 3 + 3 + 16).sum();
            assert_eq!((count, sum, nulls), (n, want, n / 7), "{n} rows");
        }
    }

    #[test]
    fn a_later_row_of_a_record_replaces_the_earlier_one() {
        let db = table();
        let conn = &db.conn;
        let mut rows = RecordRows::new(&db);
        rows.push(row(5, 1, Prior::Absent)).unwrap();
        rows.flush().unwrap();
        let mut again = row(5, 2, Prior::Present);
        again.data = Some("{\"n\":\"new\"}".into());
        rows.push(again).unwrap();
        rows.flush().unwrap();
        let (count, data, dbv): (i64, String, i64) = conn
            .query_row("SELECT count(*), data, dbv FROM records", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap();
        assert_eq!((count, data.as_str(), dbv), (1, "{\"n\":\"new\"}", 2));
    }

    #[test]
    fn new_and_replacing_rows_pending_together_are_all_written() {
        let db = table();
        let conn = &db.conn;
        let mut rows = RecordRows::new(&db);
        for i in 1..=100 {
            rows.push(row(i, 1, Prior::Absent)).unwrap();
        }
        rows.flush().unwrap();
        // Rows 1..=100 replaced and 101..=200 new, interleaved, pending at once.
        for i in 1..=100 {
            rows.push(row(i, 2, Prior::Present)).unwrap();
            rows.push(row(100 + i, 2, Prior::Absent)).unwrap();
        }
        rows.flush().unwrap();
        let (count, old): (i64, i64) = conn
            .query_row(
                "SELECT count(*), count(*) FILTER (WHERE dbv = 1) FROM records",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((count, old), (200, 0));
    }

    #[test]
    fn kept_chunk_statements_survive_a_rollback_a_refused_chunk_and_the_next_transaction() {
        use crate::write_txn::WriteTxn;
        let count = |conn: &Connection| -> i64 {
            conn.query_row("SELECT count(*) FROM records", [], |r| r.get(0))
                .unwrap()
        };
        let mut db = table();
        // Two full chunks and a remainder, dropped unfinished: rolled back.
        {
            let mut tx = WriteTxn::begin(&mut db).unwrap();
            for i in 1..=150 {
                tx.push_row(row(i, 1, Prior::Absent)).unwrap();
            }
        }
        assert_eq!(count(&db.conn), 0);
        let mut tx = WriteTxn::begin(&mut db).unwrap();
        for i in 1..=150 {
            tx.push_row(row(i, 1, Prior::Absent)).unwrap();
        }
        tx.commit().unwrap();
        assert_eq!(count(&db.conn), 150);
        // A full chunk whose last row is a record that has one: refused
        // when the chunk is written, and nothing of it stays.
        {
            let mut tx = WriteTxn::begin(&mut db).unwrap();
            for i in 1..CHUNK as i64 {
                tx.push_row(row(1_000 + i, 2, Prior::Absent)).unwrap();
            }
            let refused = tx.push_row(row(5, 2, Prior::Absent)).unwrap_err();
            assert!(refused.to_string().contains("UNIQUE"), "{refused}");
        }
        assert_eq!(count(&db.conn), 150);
        // The connection and its statements write the next transaction.
        let mut tx = WriteTxn::begin(&mut db).unwrap();
        for i in 1..=CHUNK as i64 {
            tx.push_row(row(2_000 + i, 3, Prior::Absent)).unwrap();
        }
        tx.commit().unwrap();
        assert_eq!(count(&db.conn), 150 + CHUNK as i64);
    }

    #[test]
    fn a_new_row_for_a_record_that_has_one_is_refused_not_merged() {
        let db = table();
        let (conn, kept) = (&db.conn, &db.kept);
        let mut rows = RecordRows::new(&db);
        rows.push(row(5, 1, Prior::Absent)).unwrap();
        rows.flush().unwrap();
        rows.push(row(5, 2, Prior::Absent)).unwrap();
        let refused = rows.flush().unwrap_err();
        assert!(
            refused.to_string().contains("UNIQUE"),
            "a constraint error, got {refused}"
        );
        let dbv: i64 = conn
            .query_row("SELECT dbv FROM records", [], |r| r.get(0))
            .unwrap();
        assert_eq!(dbv, 1, "the stored row is untouched");
        // The kept one-row statement, refused, is reset and writes the next
        // row, and holds none of the refused row's values.
        let bound = |kept: &KeptStatements| {
            kept.run(Kept::InsertOne, |s| {
                Ok::<_, rusqlite::Error>(s.expanded_sql().unwrap_or_default())
            })
            .unwrap()
        };
        assert!(!bound(kept).contains("r5"), "{}", bound(kept));
        rows.push(row(6, 3, Prior::Absent)).unwrap();
        rows.flush().unwrap();
        let count: i64 = conn
            .query_row("SELECT count(*) FROM records", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 2);
    }
}
