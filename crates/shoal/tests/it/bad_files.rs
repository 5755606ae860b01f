//! Files that are not (healthy) Shoal databases are refused with a named error
//! and left byte for byte as they were: random garbage, another application's
//! SQLite database, a Shoal file with damaged pages (found at open, by the
//! first read that reaches them, or by `verify`), and another schema version.

use serde_json::json;
use shoal::{DbVersion, Error, ListOptions, Query, Store};
use shoal_store::StoreError;
use std::path::Path;

/// A deterministic stream of garbage bytes (xorshift).
fn garbage(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect()
}

fn dir_listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn garbage_file_is_corrupt_and_untouched() {
    for (len, seed) in [(10, 1), (100, 2), (4096, 3), (65_536 + 123, 4)] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("garbage.db");
        let bytes = garbage(len, seed);
        std::fs::write(&path, &bytes).unwrap();
        let err = Store::open(&path).expect_err("garbage opened as a store");
        assert!(
            matches!(&err, Error::Store(StoreError::Corrupt { path: p, .. }) if *p == path),
            "{len} bytes of garbage: {err:?}"
        );
        assert!(err.to_string().contains("garbage.db"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "garbage file changed");
        assert_eq!(dir_listing(dir.path()), ["garbage.db"]);
    }
}

#[test]
fn foreign_sqlite_file_is_refused_and_untouched() {
    let dir = tempfile::tempdir().unwrap();
    // Another application's database, with and without its own application id.
    for (name, app_id) in [("plain.db", 0i64), ("tagged.db", 0x1234_5678)] {
        let path = dir.path().join(name);
        {
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE contacts (id INTEGER PRIMARY KEY, name TEXT);
                 INSERT INTO contacts (name) VALUES ('ada'), ('grace');",
            )
            .unwrap();
            conn.pragma_update(None, "application_id", app_id).unwrap();
        }
        let bytes = std::fs::read(&path).unwrap();
        let err = Store::open(&path).expect_err("foreign database opened");
        assert!(
            matches!(&err, Error::Store(StoreError::Foreign { path: p, application_id, tables: 1 })
                if *p == path && *application_id == app_id),
            "{name}: {err:?}"
        );
        assert!(err.to_string().contains("not a Shoal database"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "{name} changed");
    }
    assert_eq!(dir_listing(dir.path()), ["plain.db", "tagged.db"]);
}

/// Writes a Shoal file of 3000 records and closes it (which checkpoints the
/// WAL into the main file); returns its bytes.
fn shoal_file_bytes(path: &Path) -> Vec<u8> {
    {
        let store = Store::open(path).unwrap();
        let items = store.collection("items").unwrap();
        for batch in 0..10 {
            items
                .put_many((0..300).map(|i| {
                    let n = batch * 300 + i;
                    (
                        format!("item:{n:05}"),
                        json!({"n": n, "text": format!("record number {n}"), "even": n % 2 == 0}),
                    )
                }))
                .unwrap();
        }
    }
    let bytes = std::fs::read(path).unwrap();
    assert!(
        bytes.len() > 256 * 1024,
        "main file is only {} bytes",
        bytes.len()
    );
    bytes
}

/// Writes `clean` to `path` with `range` overwritten by garbage and no WAL.
fn write_damaged(path: &Path, clean: &[u8], range: std::ops::Range<usize>) {
    let mut bytes = clean.to_vec();
    let len = range.len();
    bytes[range].copy_from_slice(&garbage(len, 7));
    for suffix in ["-wal", "-shm"] {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        let _ = std::fs::remove_file(side);
    }
    std::fs::write(path, &bytes).unwrap();
}

/// Opens the store and reads (then writes) everything, stopping at the first error.
fn use_everything(path: &Path) -> Result<(), Error> {
    let store = Store::open(path)?;
    let items = store.collection("items")?;
    let mut after = None;
    loop {
        let page = items.list(&ListOptions {
            after,
            limit: 500,
            ..Default::default()
        })?;
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    for n in 0..3000 {
        items.get(&format!("item:{n:05}"))?;
    }
    for change in store.changes_since(DbVersion(0)) {
        change?;
    }
    store.status()?;
    items.query(&Query::new().eq("even", json!(true)).limit(10_000))?;
    items.put("item:00001", json!({"n": -1}))?;
    Ok(())
}

#[test]
fn damaged_shoal_file_gives_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("damaged.db");
    let clean = shoal_file_bytes(&path);
    const PAGE: usize = 4096;
    let pages = clean.len() / PAGE;
    // The middle third (refused at open), and single pages that open fine but
    // fail on the first read that reaches them.
    let damages = [
        ("middle third", clean.len() / 3..clean.len() * 2 / 3),
        (
            "one page at 30%",
            pages * 3 / 10 * PAGE..(pages * 3 / 10 + 1) * PAGE,
        ),
        (
            "one page at 70%",
            pages * 7 / 10 * PAGE..(pages * 7 / 10 + 1) * PAGE,
        ),
        ("the last page", (pages - 1) * PAGE..pages * PAGE),
    ];
    for (what, range) in damages {
        write_damaged(&path, &clean, range);
        let outcome = std::panic::catch_unwind(|| use_everything(&path));
        let result = outcome.unwrap_or_else(|_| panic!("{what}: a damaged file made Shoal panic"));
        let err = result.expect_err(&format!("{what} is garbage, yet every read succeeded"));
        assert!(
            matches!(err, Error::Store(StoreError::Corrupt { .. })),
            "{what}: expected Corrupt, got {err:?}"
        );
        // SQLite's words, from a read or from the check at open.
        let text = err.to_string();
        assert!(
            text.contains("malformed") || text.contains("quick check found damaged pages"),
            "{what}: {err}"
        );
    }
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.db");
    {
        let store = Store::open(&path).unwrap();
        store
            .collection("tasks")
            .unwrap()
            .put("t1", json!({"title": "kept"}))
            .unwrap();
    }
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
    }
    let bytes = std::fs::read(&path).unwrap();
    let err = Store::open(&path).expect_err("a newer schema opened");
    assert!(
        matches!(&err, Error::Store(StoreError::NewerSchema { path: p, found: 99, supported: shoal_store::SCHEMA_VERSION }) if *p == path),
        "{err:?}"
    );
    assert!(err.to_string().contains("99"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "the file changed");
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 99);
}

/// Regression (was a bug): a `Corrupt` error named the file "(open store)"
/// instead of the path that was opened — whether the damage is found while
/// opening or by the first read that reaches the damaged pages.
#[test]
fn corrupt_error_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("damaged.db");
    let clean = shoal_file_bytes(&path);
    write_damaged(&path, &clean, clean.len() / 3..clean.len() * 2 / 3);
    let err = match Store::open(&path) {
        Err(err) => err,
        // Opening reads only the header, meta and the log's last records, and
        // ordinary reads may not notice damage: the explicit check must.
        Ok(store) => store.verify().expect_err("verify passed a damaged file"),
    };
    assert!(
        matches!(&err, Error::Store(StoreError::Corrupt { path: p, .. }) if *p == path),
        "{err:?}"
    );
}

/// Damage SQLite cannot see (every page well formed) is found by the full
/// check, through Shoal's own invariants: a record row whose stored JSON no
/// longer matches its field clocks. Opening (a quick page check) passes.
#[test]
fn check_finds_a_record_row_that_disagrees_with_its_clocks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shoal.db");
    shoal_file_bytes(&path);
    let progress = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = progress.clone();
    let report = Store::open(&path)
        .unwrap()
        .check(move |p| seen.lock().unwrap().push(p))
        .expect("a healthy file passes");
    assert_eq!(report.records, 3000);
    assert!(report.pages > 64, "{report:?}");
    let last = |stage| {
        progress
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|p: &&shoal::CheckProgress| p.stage == stage)
            .copied()
            .expect("progress of each stage")
    };
    let pages = last(shoal::CheckStage::Pages);
    assert_eq!((pages.done, pages.total), (report.pages, report.pages));
    let records = last(shoal::CheckStage::Records);
    assert_eq!((records.done, records.total), (3000, 3000));
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        let changed = conn
            .execute(
                "UPDATE records SET data = '{\"n\":-1}' WHERE rid = 'item:00007'",
                [],
            )
            .unwrap();
        assert_eq!(changed, 1);
    }
    let store = Store::open(&path).expect("every page is well formed");
    let err = store
        .check(|_| {})
        .expect_err("the row disagrees with its clocks");
    assert!(
        matches!(&err, Error::Store(StoreError::Corrupt { path: p, .. }) if *p == path),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("items/item:00007") && text.contains("stored JSON"),
        "{text}"
    );
}
