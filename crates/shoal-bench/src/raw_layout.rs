//! Raw SQLite doing, per record, the statements Shoal's write path runs
//! against its own layout — no merge, no clocks, no JSON rendering — to
//! show how fast a `put_many` could be on this machine if everything but
//! SQLite cost nothing (the `write` scenario's `sqlite_layout_batch_per_s`).
//!
//! Per record, in one transaction for the batch: a look-up of the record's
//! row by (collection, id), as a write must read what it merges into, then
//! an insert-or-update of the whole row, with a packed-slots blob, digest
//! and JSON of the sizes Shoal stores for the `write` record. The table and
//! index are written here as Shoal's schema lays them out; this file owns
//! only that copy and must be kept in step with `shoal-store`'s migrations
//! by hand (it cannot read them: they are private to the store).

use anyhow::ensure;
use rusqlite::{Connection, OptionalExtension, params};
use std::time::{Duration, Instant};

/// Shoal's `records` table with its change-log and tombstone indexes, as
/// its schema steps leave them (`crates/shoal-store/src/migrations`).
pub const RECORDS_LAYOUT: &str = "
CREATE TABLE records (
    cid INTEGER NOT NULL,
    rid TEXT NOT NULL,
    life INTEGER NOT NULL,
    data TEXT,
    slots BLOB NOT NULL,
    dbv INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    digest BLOB NOT NULL DEFAULT x'',
    refs INTEGER NOT NULL DEFAULT 0,
    missing INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (cid, rid)
) WITHOUT ROWID;
CREATE UNIQUE INDEX records_log ON records (dbv, seq);
CREATE INDEX records_dead ON records (dbv, seq) WHERE data IS NULL;";

/// Bytes of the packed slots Shoal stores for the `write` record (a life
/// slot and three field registers with their clocks, whose varints make it
/// 129–133 bytes), read from stores.
pub const SLOTS_BYTES: usize = 131;
/// Bytes of a record's state digest.
pub const DIGEST_BYTES: usize = 16;

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
    let tx = conn.transaction()?;
    {
        let mut look_up = tx.prepare_cached(
            "SELECT slots, digest, refs, missing FROM records WHERE cid = ?1 AND rid = ?2",
        )?;
        let mut upsert = tx.prepare_cached(
            "INSERT INTO records (cid, rid, life, data, slots, dbv, seq, digest, refs, missing)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (cid, rid) DO UPDATE SET life = excluded.life, data = excluded.data,
                 slots = excluded.slots, dbv = excluded.dbv, seq = excluded.seq,
                 digest = excluded.digest, refs = excluded.refs, missing = excluded.missing",
        )?;
        for i in 1..=rows {
            let rid = id(i);
            let found: Option<Vec<u8>> = look_up
                .query_row(params![1, rid], |r| r.get(0))
                .optional()?;
            ensure!(found.is_none(), "record {rid} was already there");
            upsert.execute(params![
                1,
                rid,
                1,
                json(i),
                slots,
                1,
                i as i64,
                &digest[..],
                0,
                0
            ])?;
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
        batch(
            &mut conn,
            50,
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
        assert_eq!(rows, 50);
        assert_eq!(slots as usize, 50 * SLOTS_BYTES);
        assert_eq!(digests as usize, 50 * DIGEST_BYTES);
    }

    #[test]
    fn a_repeated_id_is_an_error_not_a_silent_update() {
        let mut conn = Connection::open_in_memory().unwrap();
        let err = batch(&mut conn, 3, |_| "same".to_string(), |_| "{}".into()).unwrap_err();
        assert!(err.to_string().contains("already there"), "{err}");
    }
}
