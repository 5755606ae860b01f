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
            .prepare("SELECT name || ' ' || type FROM pragma_table_info(?1) ORDER BY cid")
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
        // And every earlier step again, over the later schema.
        for earlier in &MIGRATIONS[..i] {
            (earlier.up)(&tx).unwrap();
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
