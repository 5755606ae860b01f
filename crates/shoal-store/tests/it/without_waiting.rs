//! `Store::without_waiting`: a call made where another connection holds the
//! database file's write lock fails at once, changing nothing, and the
//! store's own wait is back for the calls after it — also after a call
//! that panicked.

use shoal_core::{CollectionName, Intent, RecordId};
use shoal_store::{Store, StoreConfig, StoreError, WriteOp};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_millis(400);

fn put(store: &mut Store, id: &str) -> Result<(), StoreError> {
    let op = WriteOp {
        collection: CollectionName::new("notes").expect("name"),
        id: RecordId::new(id).expect("id"),
        intent: Intent::Put(serde_json::Map::from_iter([("t".into(), id.into())])),
    };
    store.write(vec![op]).map(|_| ())
}

/// How long a plain put takes to give up on the lock `locker` holds.
fn waited_for_the_lock(store: &mut Store) -> Duration {
    let start = Instant::now();
    let err = put(store, "waiting").expect_err("put through another's lock");
    assert!(err.is_busy(), "{err}");
    start.elapsed()
}

#[test]
fn a_call_without_waiting_fails_at_once_and_the_wait_comes_back_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let config = StoreConfig {
        busy_timeout: WAIT,
        ..StoreConfig::default()
    };
    let mut store = Store::open(&path, config).unwrap();
    put(&mut store, "before").unwrap();
    let locker = rusqlite::Connection::open(&path).unwrap();
    locker.execute_batch("BEGIN IMMEDIATE").unwrap();

    let start = Instant::now();
    let err = store
        .without_waiting(|db| put(db, "at-once"))
        .expect_err("put through another's lock");
    assert!(err.is_busy(), "{err}");
    assert!(start.elapsed() < WAIT / 2, "waited {:?}", start.elapsed());
    assert!(waited_for_the_lock(&mut store) >= WAIT * 3 / 4);

    let panicked = catch_unwind(AssertUnwindSafe(|| {
        store.without_waiting(|_| -> Result<(), StoreError> { panic!("inside") })
    }));
    assert!(panicked.is_err());
    assert!(
        waited_for_the_lock(&mut store) >= WAIT * 3 / 4,
        "the wait was not restored after a panic"
    );

    locker.execute_batch("ROLLBACK").unwrap();
    store.without_waiting(|db| put(db, "after")).unwrap();
    let notes = CollectionName::new("notes").unwrap();
    for (id, there) in [
        ("before", true),
        ("at-once", false),
        ("waiting", false),
        ("after", true),
    ] {
        let found = store.get(&notes, &RecordId::new(id).unwrap()).unwrap();
        assert_eq!(found.is_some(), there, "{id}");
    }
}
