//! Shared by the bad-input tests: a store with a small value cap, a snapshot of
//! everything observable, and `refused`, which runs a call that must fail and
//! checks that nothing changed.
#![allow(dead_code)]

use serde_json::{Map, Value, json};
use shoal::{Change, DbVersion, Error, ListOptions, Store, StoreConfig, StoreOptions, StoreStatus};
use shoal_core::CoreError;
use std::path::Path;

pub const CAP: usize = 1024;

pub fn capped(path: &Path) -> Store {
    Store::open_with(
        path,
        StoreOptions {
            config: StoreConfig {
                max_value_bytes: CAP,
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .unwrap()
}

/// Everything a refused call must leave untouched.
#[derive(Debug, PartialEq)]
pub struct Snapshot {
    version: DbVersion,
    status: StoreStatus,
    records: Vec<(String, String, Map<String, Value>)>,
    log: Vec<Change>,
}

pub fn snapshot(store: &Store) -> Snapshot {
    let status = store.status().unwrap();
    let mut records = Vec::new();
    for c in &status.collections {
        let coll = store.collection(c.name.as_str()).unwrap();
        let mut after = None;
        loop {
            let page = coll
                .list(&ListOptions {
                    after: after.clone(),
                    limit: 1000,
                    ..Default::default()
                })
                .unwrap();
            for (id, fields) in page.records {
                records.push((c.name.to_string(), id.to_string(), fields));
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
    }
    Snapshot {
        version: store.db_version(),
        status,
        records,
        log: store
            .changes_since(DbVersion(0))
            .collect::<Result<_, _>>()
            .unwrap(),
    }
}

/// Runs a call that must fail, checks it changed nothing, returns its error.
pub fn refused<T: std::fmt::Debug>(
    store: &Store,
    what: &str,
    call: impl FnOnce() -> Result<T, Error>,
) -> Error {
    let before = snapshot(store);
    let result = call();
    let after = snapshot(store);
    let err = match result {
        Ok(value) => panic!("{what}: accepted, returned {value:?}"),
        Err(err) => err,
    };
    assert!(!err.to_string().is_empty(), "{what}: empty error message");
    assert_eq!(
        before.version, after.version,
        "{what}: refused ({err}) but db_version moved"
    );
    assert_eq!(
        before.records, after.records,
        "{what}: refused ({err}) but records changed"
    );
    assert_eq!(
        before.log, after.log,
        "{what}: refused ({err}) but the change log changed"
    );
    assert_eq!(
        before.status, after.status,
        "{what}: refused ({err}) but status changed"
    );
    err
}

/// A store holding: tasks/t1 live, tasks/t2 deleted, notes/n1 with a map field.
pub fn fixture(path: &Path) -> Store {
    let store = capped(path);
    let tasks = store.collection("tasks").unwrap();
    tasks.put("t1", json!({"title": "one", "n": 1})).unwrap();
    tasks.put("t2", json!({"title": "two"})).unwrap();
    tasks.delete("t2").unwrap();
    let notes = store.collection("notes").unwrap();
    notes.put("n1", json!({"text": "hi"})).unwrap();
    notes.map_set("n1", "tags", "red", json!(true)).unwrap();
    store
}

/// A write to try, boxed so different calls fit in one list.
pub type WriteCall<'a> = Box<dyn FnOnce() -> Result<Option<DbVersion>, Error> + 'a>;

pub fn is_core(err: &Error, check: impl Fn(&CoreError) -> bool) -> bool {
    matches!(err, Error::Invalid(core) if check(core))
}
