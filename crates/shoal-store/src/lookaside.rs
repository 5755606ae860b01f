//! The writing connection's lookaside: the small-allocation pool SQLite
//! keeps per connection, enlarged from its default.
//!
//! A bound text or blob is copied into memory SQLite allocates, as is each
//! row record it builds and each cursor a statement opens. A multi-row
//! statement (`record_rows.rs`, 64 rows of 10 values) holds hundreds of
//! those at once; the default pool (40 slots of 1,200 bytes, split into
//! smaller ones) runs out and the rest go to the system allocator. The pool
//! here is 512 slots of 512 bytes (256 KiB for the one writing connection;
//! SQLite carves part of it into its 128-byte small slots). Counted with
//! callgrind against the default: a `put_many` of 10,000 records 237.1 M ->
//! 229.4 M instructions inside `Store::write`, 2,000 single puts unchanged
//! (109.6 M), a tombstone collection of 20,000 records unchanged (897.8 M).
//! Slots of 256 bytes (1,024 of them) did as well for the batch but made
//! single puts 2.7 % and the collection 5.4 % costlier: cursors and other
//! allocations between 256 and 1,200 bytes no longer fitted and went to
//! `malloc`. Other shapes tried: 1,200 × 256 and × 512, 512 × 256 and
//! × 1,024, 768 × 384, 1,024 × 256 — none better on all three.
//!
//! This module owns only that setting. It must be applied right after the
//! connection opens: SQLite refuses to change the pool while any of it is
//! in use.

use rusqlite::Connection;
use rusqlite::ffi;
use std::ffi::{c_int, c_void};

/// Bytes per slot; larger allocations are not served from the pool.
const SLOT_BYTES: c_int = 512;

/// Slots in the pool.
const SLOTS: c_int = 512;

/// Gives `conn` a lookaside pool of [`SLOTS`] × [`SLOT_BYTES`]. If SQLite
/// refuses (memory of the pool in use: a call too late, which debug builds
/// assert against), the connection keeps its pool; if it cannot allocate
/// the new one, it runs without a pool. Either is only slower, so it is
/// logged, not returned.
pub(crate) fn enlarge(conn: &Connection) {
    // SAFETY: the handle is the open connection `conn` borrows, used on this
    // thread only for the call. With a null buffer SQLite allocates the pool
    // itself; the two variadic arguments are the `int`s this option takes.
    let rc = unsafe {
        ffi::sqlite3_db_config(
            conn.handle(),
            ffi::SQLITE_DBCONFIG_LOOKASIDE,
            std::ptr::null_mut::<c_void>(),
            SLOT_BYTES,
            SLOTS,
        )
    };
    debug_assert_eq!(rc, ffi::SQLITE_OK, "lookaside set before first use");
    if rc != ffi::SQLITE_OK {
        tracing::warn!(rc, "SQLite refused the larger lookaside pool");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How many allocations found the pool full, since the last call.
    fn misses_when_full(conn: &Connection) -> c_int {
        let (mut current, mut highest) = (0, 0);
        // SAFETY: the open connection's handle, and two valid out-pointers.
        let rc = unsafe {
            ffi::sqlite3_db_status(
                conn.handle(),
                ffi::SQLITE_DBSTATUS_LOOKASIDE_MISS_FULL,
                &mut current,
                &mut highest,
                1,
            )
        };
        assert_eq!(rc, ffi::SQLITE_OK);
        highest
    }

    /// Runs one statement binding 64 rows of texts and blobs, as the
    /// records' multi-row writes do; says how often the pool was full.
    fn multi_row_insert(conn: &Connection) -> c_int {
        conn.execute_batch("CREATE TABLE t (a TEXT, b BLOB, c TEXT)")
            .unwrap();
        misses_when_full(conn);
        let sql = format!("INSERT INTO t VALUES {}", vec!["(?,?,?)"; 64].join(","));
        let mut statement = conn.prepare(&sql).unwrap();
        for i in 0..64 {
            statement
                .raw_bind_parameter(3 * i + 1, format!("row {i} of a batch"))
                .unwrap();
            statement
                .raw_bind_parameter(3 * i + 2, vec![i as u8; 100])
                .unwrap();
            statement
                .raw_bind_parameter(3 * i + 3, format!("{{\"title\":\"task {i}\"}}"))
                .unwrap();
        }
        statement.raw_execute().unwrap();
        misses_when_full(conn)
    }

    #[test]
    fn a_multi_row_write_fits_the_enlarged_pool_and_not_the_default() {
        let default = Connection::open_in_memory().unwrap();
        assert!(
            multi_row_insert(&default) > 0,
            "the default pool runs out (else this test proves nothing)"
        );
        let enlarged = Connection::open_in_memory().unwrap();
        enlarge(&enlarged);
        assert_eq!(multi_row_insert(&enlarged), 0);
    }
}
