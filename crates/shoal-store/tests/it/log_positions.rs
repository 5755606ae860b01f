//! The `records` table is keyed by its rows' log positions (`log_pos.rs`):
//! the log reads in that order across versions and through a cursor of any
//! form, and a write past the last version a key holds is refused with
//! nothing written.

use serde_json::{Map, Value, json};
use shoal_core::{CollectionName, DbVersion, Intent, LogPosition, RecordId};
use shoal_store::{Store, StoreConfig, StoreError, WriteOp};
use std::path::Path;

/// The last version a key holds (`log_pos::MAX_VERSION`, private to the store).
const MAX_VERSION: u64 = (1 << 43) - 1;

fn open(path: &Path) -> Store {
    Store::open(path, StoreConfig::default()).expect("open")
}

fn put(id: &str, body: Value) -> WriteOp {
    let Value::Object(fields) = body else {
        panic!("not an object")
    };
    WriteOp {
        collection: CollectionName::new("notes").expect("name"),
        id: RecordId::new(id).expect("id"),
        intent: Intent::Put(fields),
    }
}

fn get(store: &Store, id: &str) -> Option<Map<String, Value>> {
    store
        .get(
            &CollectionName::new("notes").expect("name"),
            &RecordId::new(id).expect("id"),
        )
        .expect("get")
}

/// The ids of the records the log holds after `after`, in log order.
fn log_after(store: &Store, after: LogPosition) -> Vec<String> {
    let mut ids: Vec<String> = store
        .changes_page(DbVersion(0), after, 100)
        .expect("log")
        .into_iter()
        .map(|c| c.id.as_str().to_string())
        .collect();
    ids.dedup();
    ids
}

#[test]
fn the_log_reads_in_position_order_from_any_cursor() {
    let dir = tempfile::tempdir().expect("dir");
    let mut store = open(&dir.path().join("log.db"));
    store
        .write([put("a", json!({"n": 1})), put("b", json!({"n": 1}))])
        .expect("first write");
    let first = store.db_version();
    store.write([put("c", json!({"n": 1}))]).expect("second");
    // Rewriting a record moves it to the log's end.
    store.write([put("a", json!({"n": 2}))]).expect("third");
    assert_eq!(log_after(&store, LogPosition::default()), ["b", "c", "a"]);
    assert_eq!(
        log_after(&store, LogPosition::after_version(first)),
        ["c", "a"]
    );
    let at_b = LogPosition {
        version: first,
        seq: 2,
    };
    assert_eq!(log_after(&store, at_b), ["c", "a"]);
    // A seq past what a key holds (a cursor kept from the layout before)
    // is the end of its version.
    let past = LogPosition {
        version: first,
        seq: 5_000_000,
    };
    assert_eq!(log_after(&store, past), ["c", "a"]);
    let beyond = LogPosition::after_version(DbVersion(u64::MAX));
    assert!(log_after(&store, beyond).is_empty());
}

#[test]
fn a_write_past_the_last_version_is_refused_and_leaves_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("full.db");
    {
        let mut store = open(&path);
        store.write([put("kept", json!({"n": 1}))]).expect("put");
    }
    // The log's last row at the last version a key holds.
    rusqlite::Connection::open(&path)
        .expect("sqlite")
        .execute(
            "UPDATE records SET pos = ?1",
            [((MAX_VERSION << 20) | 1) as i64],
        )
        .expect("move the row");
    let mut store = open(&path);
    assert_eq!(store.db_version(), DbVersion(MAX_VERSION));
    let err = store
        .write([put("new", json!({"n": 1}))])
        .expect_err("a version past the last");
    assert!(
        matches!(err, StoreError::LogFull { version } if version == MAX_VERSION + 1),
        "{err:?}"
    );
    assert!(err.to_string().contains("change log is full"), "{err}");
    assert_eq!(
        get(&store, "new"),
        None,
        "the refused write left its record"
    );
    assert_eq!(
        get(&store, "kept"),
        Some(json!({"n": 1}).as_object().cloned().unwrap())
    );
    assert_eq!(store.db_version(), DbVersion(MAX_VERSION));
}
