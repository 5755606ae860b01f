//! Raw SQLite doing the statements Shoal's write path runs against its own
//! layout — no merge, no clocks, no JSON rendering — to show how fast a
//! `put_many` could be on this machine if everything but SQLite cost
//! nothing (the `write` scenario's `sqlite_layout_batch_per_s`).
//!
//! In one transaction for the batch, as Shoal's `put_many` does: one
//! look-up of every record's row by (collection, id) through a JSON list of
//! the ids, reading the columns a merge reads, then an insert of each
//! whole new row (`INSERT OR FAIL`, as Shoal writes a record it found no
//! row of) with every column bound, [`ROWS_PER_INSERT`] rows a statement
//! (a remainder in statements of 16, 4 and 1), with a
//! packed-slots blob, digest and JSON of the sizes Shoal stores for the
//! `write` record. It is a lower bound of Shoal's SQLite work, not all of
//! it: clocks, blob references and the log head are not read or written. The table and indexes are written here as
//! Shoal's schema lays them out; this file owns only that copy, kept in
//! step with `shoal-store`'s migrations by a test in `write.rs` (it cannot
//! read them: they are private to the store).

use anyhow::ensure;
use rusqlite::{Connection, params};
use std::time::{Duration, Instant};

/// Shoal's `records` table, keyed by log position, with its (collection,
/// id) and tombstone indexes, as its schema steps leave them
/// (`crates/shoal-store/src/migrations`).
pub const RECORDS_LAYOUT: &str = "
CREATE TABLE records (
    pos INTEGER PRIMARY KEY,
    cid INTEGER NOT NULL,
    rid TEXT NOT NULL,
    life INTEGER NOT NULL,
    data TEXT,
    slots BLOB NOT NULL,
    digest BLOB NOT NULL DEFAULT x'',
    refs INTEGER NOT NULL DEFAULT 0,
    missing INTEGER NOT NULL DEFAULT 0,
    dbv INTEGER GENERATED ALWAYS AS (pos >> 20) VIRTUAL,
    seq INTEGER GENERATED ALWAYS AS (pos & 1048575) VIRTUAL
);
CREATE UNIQUE INDEX records_key ON records (cid, rid);
CREATE INDEX records_dead ON records (pos) WHERE data IS NULL;";

/// Bytes of the packed slots Shoal stores for the `write` record (a life
/// slot and three field registers with their clocks, whose varints make it
/// 129–133 bytes), read from stores.
pub const SLOTS_BYTES: usize = 131;
/// Rows per insert statement, as Shoal writes them (its `record_rows.rs`).
const ROWS_PER_INSERT: usize = 64;
/// Bytes of a record's state digest.
pub const DIGEST_BYTES: usize = 16;

/// Statement sizes, largest first, as Shoal's `record_rows.rs` uses them.
const SIZES: [usize; 4] = [ROWS_PER_INSERT, 16, 4, 1];

/// Shoal's insert of new records' rows, for `n` rows (every column bound).
fn insert_of(n: usize) -> String {
    let mut sql = String::from(
        "INSERT OR FAIL INTO records (pos, cid, rid, life, data, slots, digest, refs, missing) VALUES ",
    );
    sql.push_str(&vec!["(?,?,?,?,?,?,?,?,?)"; n].join(","));
    sql
}

/// The key of the `i`th row (from 1) of one transaction, as Shoal packs it
/// (`log_pos.rs`): version 1 and its place, going on in the next version
/// after 1,048,575 rows.
fn key_of(i: u64) -> i64 {
    const PER_VERSION: u64 = (1 << 20) - 1;
    let (version, seq) = (1 + (i - 1) / PER_VERSION, (i - 1) % PER_VERSION + 1);
    ((version << 20) | seq) as i64
}

/// Writes `rows` records (`id(i)`, `json(i)` for i in 1..=rows) into a
/// fresh `records` table on `conn` as Shoal's write path does, in one
/// transaction, and returns how long it took.
pub fn batch(
    conn: &mut Connection,
    rows: u64,
    id: impl Fn(u64) -> String,
    json: impl Fn(u64) -> String,
) -> anyhow::Result<Duration> {
    conn.execute_batch(RECORDS_LAYOUT)?;
    let slots = vec![0x5a_u8; SLOTS_BYTES];
    let digest = [0xa5_u8; DIGEST_BYTES];
    let start = Instant::now();
    let ids: Vec<String> = (1..=rows).map(&id).collect();
    let tx = conn.transaction()?;
    {
        // Shoal's batched look-up (`load_many.rs`): every column a merge reads.
        let list = serde_json::to_string(&ids)?;
        let mut look_up = tx.prepare_cached(
            "SELECT r.rid, r.slots, r.digest, r.refs, r.missing
             FROM json_each(?2) j CROSS JOIN records r ON r.cid = ?1 AND r.rid = j.value",
        )?;
        let mut found = look_up.query(params![1, list])?;
        let mut stored = 0_usize;
        while let Some(row) = found.next()? {
            stored += row.get::<_, Vec<u8>>(1)?.len();
        }
        ensure!(stored == 0, "records were already there");
        let mut next = 1_u64;
        for (size, sql) in SIZES.iter().map(|n| (*n, insert_of(*n))) {
            let mut insert = tx.prepare_cached(&sql)?;
            while rows + 1 - next >= size as u64 {
                for k in 0..size {
                    let (i, at) = (next + k as u64, k * 9);
                    insert.raw_bind_parameter(at + 1, key_of(i))?;
                    insert.raw_bind_parameter(at + 2, 1)?;
                    insert.raw_bind_parameter(at + 3, &ids[(i - 1) as usize])?;
                    insert.raw_bind_parameter(at + 4, 1)?;
                    insert.raw_bind_parameter(at + 5, json(i))?;
                    insert.raw_bind_parameter(at + 6, &slots)?;
                    insert.raw_bind_parameter(at + 7, &digest[..])?;
                    insert.raw_bind_parameter(at + 8, 0)?;
                    insert.raw_bind_parameter(at + 9, 0)?;
                }
                insert.raw_execute()?;
                next += size as u64;
            }
        }
    }
    tx.commit()?;
    let elapsed = start.elapsed();
    let count: i64 = conn.query_row("SELECT count(*) FROM records", [], |r| r.get(0))?;
    ensure!(
        count as u64 == rows,
        "raw SQLite holds {count} records, expected {rows}"
    );
    Ok(elapsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_every_row_once_in_the_layout() {
        let mut conn = Connection::open_in_memory().unwrap();
        // Two full statements and a remainder.
        batch(
            &mut conn,
            150,
            |i| format!("r{i}"),
            |i| format!("{{\"n\":{i}}}"),
        )
        .unwrap();
        let (rows, slots, digests): (i64, i64, i64) = conn
            .query_row(
                "SELECT count(*), sum(length(slots)), sum(length(digest)) FROM records",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(rows, 150);
        assert_eq!(slots as usize, 150 * SLOTS_BYTES);
        assert_eq!(digests as usize, 150 * DIGEST_BYTES);
    }

    #[test]
    fn keys_go_on_in_the_next_version_past_a_full_one() {
        assert_eq!(key_of(1), (1 << 20) | 1);
        assert_eq!(key_of(1_048_575), (1 << 20) | 1_048_575);
        assert_eq!(key_of(1_048_576), (2 << 20) | 1);
    }

    #[test]
    fn a_repeated_id_is_an_error_not_a_silent_update() {
        let mut conn = Connection::open_in_memory().unwrap();
        let err = batch(&mut conn, 3, |_| "same".to_string(), |_| "{}".into()).unwrap_err();
        // Every row is written as new, as Shoal writes a record it found no
        // row of: a repeated id is refused by the (collection, id) index.
        assert!(err.to_string().contains("UNIQUE"), "{err}");
    }
}
