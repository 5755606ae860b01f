//! The SQL that writes `records` rows: the insert of a record's first row
//! and the upsert of a row that replaces one, for each number of rows a
//! statement writes ([`SIZES`]).
//!
//! A record's first row is written by `INSERT OR FAIL`. A multi-row
//! statement that may stop part-way with `ABORT` (an upsert, a plain insert
//! into `NOT NULL` columns) makes SQLite copy every page it touches into a
//! statement journal first, to undo its own rows; `OR FAIL` leaves them, so
//! SQLite keeps no such journal: raw SQLite wrote 10,000 new rows on
//! Shoal's layout about a fifth faster (a probe, 614,000 against 522,000
//! rows/s). Nothing is lost by it: the writer fails the whole write on any
//! error, and its transaction is rolled back.
//!
//! It owns those texts only: `record_rows.rs` buffers rows and runs them,
//! `kept.rs` keeps the one-row forms a single write uses.

use std::sync::LazyLock;

/// Rows per statement when a buffer is full.
pub(crate) const CHUNK: usize = 64;

/// Statement sizes a flush uses, largest first: a remainder is written in
/// as few statements as these allow, with at most four shapes compiled.
pub(crate) const SIZES: [usize; 4] = [CHUNK, 16, 4, 1];

// The last size writes one row: `one_row` is it.
const _: () = assert!(SIZES[SIZES.len() - 1] == 1);

/// Columns of one row, in the statement's order.
pub(crate) const COLUMNS: usize = 9;

/// The insert of `n` new rows for each of [`SIZES`].
static INSERTS: LazyLock<[String; 4]> =
    LazyLock::new(|| SIZES.map(|n| statement_of(n, Prior::Absent)));

/// The upsert of `n` rows for each of [`SIZES`].
static UPSERTS: LazyLock<[String; 4]> =
    LazyLock::new(|| SIZES.map(|n| statement_of(n, Prior::Present)));

/// The statements of `prior`'s kind, for each of [`SIZES`].
pub(crate) fn statements_of(prior: Prior) -> &'static [String; 4] {
    match prior {
        Prior::Absent => &INSERTS,
        Prior::Present => &UPSERTS,
    }
}

/// The one-row statement of `prior`'s kind, which the store keeps
/// (`kept.rs`): a single write uses it every time.
pub(crate) fn one_row(prior: Prior) -> &'static str {
    &statements_of(prior)[SIZES.len() - 1]
}

fn statement_of(n: usize, prior: Prior) -> String {
    let mut sql = String::from(match prior {
        Prior::Absent => "INSERT OR FAIL INTO records ",
        Prior::Present => "INSERT INTO records ",
    });
    sql.push_str("(pos, cid, rid, life, data, slots, digest, refs, missing) VALUES ");
    for i in 0..n {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str("(?,?,?,?,?,?,?,?,?)");
    }
    if prior == Prior::Present {
        sql.push_str(
            " ON CONFLICT (cid, rid) DO UPDATE SET pos = excluded.pos, life = excluded.life,
             data = excluded.data, slots = excluded.slots,
             digest = excluded.digest, refs = excluded.refs, missing = excluded.missing",
        );
    }
    sql
}

/// Whether the record has a row in the table when its new one is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Prior {
    /// No row: the record is new here, or only in the collected ledger.
    Absent,
    /// A row, which the new one replaces.
    Present,
}
