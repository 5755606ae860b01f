//! What the convergence tests share: turning store errors into proptest
//! failures, the replica harness of the property test (`cluster`) with the
//! checks it makes (`checks`), and the small helpers of the fixed cases.
//! Not every test file uses every part.
#![allow(dead_code)]

mod checks;
pub mod cluster;

use proptest::test_runner::TestCaseError;
use serde_json::{Map, Value};
use shoal_core::{Change, CollectionName, DbVersion, Intent, RecordId};
use shoal_store::{Store, StoreConfig, StoreError, WriteOp};
use std::fmt;
use tempfile::TempDir;

pub fn fail(msg: impl fmt::Display) -> TestCaseError {
    TestCaseError::fail(msg.to_string())
}

pub fn ok<T>(result: Result<T, StoreError>, what: &str) -> Result<T, TestCaseError> {
    result.map_err(|e| fail(format!("{what}: {e}")))
}

pub fn open(dir: &TempDir, name: &str) -> Store {
    Store::open(dir.path().join(name), StoreConfig::default()).unwrap()
}

pub fn obj(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

pub fn put(store: &mut Store, c: &CollectionName, id: &str, intent: Intent) {
    store
        .write([WriteOp {
            collection: c.clone(),
            id: RecordId::new(id).unwrap(),
            intent,
        }])
        .unwrap();
}

pub fn all_changes(store: &Store) -> Vec<Change> {
    store
        .changes_since(DbVersion(0))
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}
