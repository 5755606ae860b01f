//! Tests of the migration runner and the steps: numbering, idempotence,
//! one transaction (a failing step leaves the old version), and that a
//! file made by every step has exactly the tables the code uses.

use super::*;

/// Every table, index and column of `conn`, in a stable order.
fn layout(conn: &Connection) -> Vec<String> {
    let mut out: Vec<String> = conn
        .prepare("SELECT type || ' ' || name FROM sqlite_master ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for table in tables {
        let columns: Vec<String> = conn
            .prepare("SELECT name || ' ' || type FROM pragma_table_xinfo(?1) ORDER BY cid")
            .unwrap()
            .query_map([&table], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        out.push(format!("{table}: {}", columns.join(", ")));
    }
    out
}

fn version(conn: &Connection) -> i64 {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn steps_count_up_by_one() {
    for pair in MIGRATIONS.windows(2) {
        assert_eq!(pair[1].to, pair[0].to + 1, "{}", pair[1].what);
    }
    assert_eq!(SCHEMA_VERSION, MIGRATIONS.last().unwrap().to);
}

#[test]
fn a_fresh_file_runs_every_step_once() {
    let mut conn = Connection::open_in_memory().unwrap();
    assert_eq!(
        upgrade(&mut conn, MIGRATIONS, true).unwrap(),
        (0, SCHEMA_VERSION)
    );
    assert_eq!(version(&conn), SCHEMA_VERSION);
    let app: i64 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .unwrap();
    assert_eq!(app, crate::migrations::APPLICATION_ID);
    let before = layout(&conn);
    assert!(
        before.iter().any(|l| l == "table held_changes"),
        "{before:?}"
    );
    // Up to date: nothing to do, nothing written.
    assert_eq!(
        upgrade(&mut conn, MIGRATIONS, false).unwrap(),
        (SCHEMA_VERSION, SCHEMA_VERSION)
    );
    assert_eq!(layout(&conn), before);
}

#[test]
fn every_step_is_idempotent() {
    let mut conn = Connection::open_in_memory().unwrap();
    for (i, step) in MIGRATIONS.iter().enumerate() {
        let tx = conn.transaction().unwrap();
        (step.up)(&tx).unwrap();
        tx.commit().unwrap();
        let once = layout(&conn);
        let tx = conn.transaction().unwrap();
        (step.up)(&tx).unwrap();
        // And every earlier step again, over the later schema — up to step
        // 12: step 13 dropped the index on (dbv, seq) that step 2 makes
        // (steps run in order only, never an earlier one after a later).
        if step.to <= 12 {
            for earlier in &MIGRATIONS[..i] {
                (earlier.up)(&tx).unwrap();
            }
        }
        (step.up)(&tx).unwrap();
        tx.commit().unwrap();
        assert_eq!(layout(&conn), once, "step {} ran twice", step.to);
    }
}

fn failing(_: &Transaction<'_>) -> Result<(), StoreError> {
    Err(StoreError::InvalidQuery("step fails on purpose".into()))
}

fn adds_a_table(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch("CREATE TABLE IF NOT EXISTS later (x INTEGER);")?;
    Ok(())
}

#[test]
fn a_step_that_fails_leaves_the_file_at_its_old_version() {
    let mut conn = Connection::open_in_memory().unwrap();
    upgrade(&mut conn, &MIGRATIONS[..2], true).unwrap();
    assert_eq!(version(&conn), 3);
    let before = layout(&conn);
    let mut steps: Vec<Migration> = MIGRATIONS
        .iter()
        .map(|m| Migration {
            to: m.to,
            what: m.what,
            up: m.up,
        })
        .collect();
    let next = SCHEMA_VERSION + 1;
    steps.push(Migration {
        to: next,
        what: "adds a table",
        up: adds_a_table,
    });
    steps.push(Migration {
        to: next + 1,
        what: "fails",
        up: failing,
    });
    let err = upgrade(&mut conn, &steps, false).unwrap_err();
    assert!(err.to_string().contains("on purpose"), "{err}");
    assert_eq!(version(&conn), 3, "the version moved");
    assert_eq!(layout(&conn), before, "steps 4.. left changes behind");
    // Without the failing step the same file upgrades.
    steps.pop();
    assert_eq!(upgrade(&mut conn, &steps, false).unwrap(), (3, next));
    assert!(layout(&conn).iter().any(|l| l == "table later"));
}

#[test]
fn a_newer_file_is_left_alone() {
    let mut conn = Connection::open_in_memory().unwrap();
    upgrade(&mut conn, MIGRATIONS, true).unwrap();
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 7)
        .unwrap();
    let before = layout(&conn);
    assert_eq!(
        upgrade(&mut conn, MIGRATIONS, false).unwrap(),
        (SCHEMA_VERSION + 7, SCHEMA_VERSION + 7)
    );
    assert_eq!(version(&conn), SCHEMA_VERSION + 7);
    assert_eq!(layout(&conn), before);
}

/// Packed slots of a record put at wall clock `ms`, written at `dbv`.
fn slots_put_at(ms: u64, dbv: u64) -> Vec<u8> {
    use shoal_core::{Clock, Hlc, Intent, RecordState, SiteId, plan};
    let clock = Clock {
        hlc: Hlc::new(ms, 0),
        site: SiteId(7),
    };
    let fields = serde_json::json!({"n": ms}).as_object().unwrap().clone();
    let mut state = RecordState::default();
    for (slot, version) in plan(&state, &Intent::Put(fields), clock).unwrap() {
        state.apply(slot, version);
    }
    crate::packed_slots::pack(&state, |_, _| shoal_core::DbVersion(dbv))
}

#[test]
fn step_13_keys_every_row_by_its_log_position_and_moves_the_overflowing_ones_to_the_end() {
    let mut conn = Connection::open_in_memory().unwrap();
    upgrade(&mut conn, &MIGRATIONS[..11], true).unwrap();
    assert_eq!(version(&conn), 12);
    // (id, dbv, seq, data, clock ms): the last transaction (5) holds the
    // highest clock; two rows of transaction 4 are past what a key holds.
    let rows = [
        ("c", 5, 1, Some("{\"x\":3}"), 9_000),
        ("a", 3, 1, Some("{\"x\":1}"), 1_000),
        ("big2", 4, 2_000_000, Some("{}"), 2_000),
        ("b", 3, 2, None, 1_500),
        ("big", 4, 1_048_576, Some("{}"), 2_000),
    ];
    for (rid, dbv, seq, data, ms) in rows {
        conn.execute(
            "INSERT INTO records (cid, rid, life, data, slots, dbv, seq) VALUES (1, ?1, 1, ?2, ?3, ?4, ?5)",
            rusqlite::params![rid, data, slots_put_at(ms, dbv), dbv as i64, seq as i64],
        )
        .unwrap();
    }
    conn.execute_batch(
        "CREATE INDEX ix_1_test ON records (json_extract(data, '$.x'), rid)
             WHERE cid = 1 AND data IS NOT NULL;",
    )
    .unwrap();
    assert_eq!(upgrade(&mut conn, MIGRATIONS, false).unwrap(), (12, 13));
    let got: Vec<(String, i64, i64, Vec<u8>)> = conn
        .prepare("SELECT rid, dbv, seq, slots FROM records ORDER BY pos")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let expected = [
        ("a", 3, 1),
        ("b", 3, 2),
        ("c", 5, 1),
        // Past what a key holds: after the last version, in their order.
        ("big", 6, 1),
        ("big2", 6, 2),
    ];
    assert_eq!(got.len(), expected.len(), "{got:?}");
    for (row, (rid, dbv, seq)) in got.iter().zip(expected) {
        assert_eq!((row.0.as_str(), row.1, row.2), (rid, dbv, seq));
        let (_, old_dbv, _, _, ms) = rows.iter().find(|r| r.0 == rid).unwrap();
        assert_eq!(row.3, slots_put_at(*ms, *old_dbv), "{rid}: slots changed");
    }
    // Opening restores the clock from the last version, now the moved rows:
    // the last transaction's clock is kept in the mark.
    assert_eq!(
        crate::clock_mark::load(&conn).unwrap(),
        shoal_core::Hlc::new(9_000, 0)
    );
    let indexes: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'records' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(indexes, ["ix_1_test", "records_dead", "records_key"]);
    let dead: String = conn
        .query_row(
            "SELECT rid FROM records INDEXED BY records_dead WHERE data IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(dead, "b");
    // The key index refuses a second row of a record.
    assert!(
        conn.execute(
            "INSERT INTO records (pos, cid, rid, life, slots) VALUES (99 << 20 | 1, 1, 'a', 1, x'')",
            []
        )
        .is_err()
    );
}

#[test]
fn step_13_moves_overflowing_rows_past_a_restore_s_log_floor() {
    let mut conn = Connection::open_in_memory().unwrap();
    upgrade(&mut conn, &MIGRATIONS[..11], true).unwrap();
    conn.execute(
        "INSERT INTO records (cid, rid, life, data, slots, dbv, seq) VALUES (1, 'big', 1, '{}', ?1, 4, 1048576)",
        [slots_put_at(1_000, 4)],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('log_floor', ?1)",
        [100_u64.to_be_bytes().to_vec()],
    )
    .unwrap();
    upgrade(&mut conn, MIGRATIONS, false).unwrap();
    let (dbv, seq): (i64, i64) = conn
        .query_row("SELECT dbv, seq FROM records", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((dbv, seq), (101, 1));
}
