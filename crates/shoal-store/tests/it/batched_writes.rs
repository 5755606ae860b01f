//! A write of many records loads them up front and writes their rows in
//! chunks: what it leaves must be what the same ops leave one write at a
//! time — later ops on a record see the earlier ones, every record of
//! every chunk is there and logged, and a refused write leaves nothing,
//! not even the chunks already written. Ops are taken a step
//! (`OPS_PER_STEP`) at a time: a step sees the rows the steps before it
//! left waiting, and an op its caller fails to make, in any step, fails
//! the whole write.

use serde_json::{Map, Value, json};
use shoal_core::{CollectionName, CoreError, DbVersion, Intent, RecordId};
use shoal_store::{OPS_PER_STEP, Store, StoreConfig, StoreError, WriteOp};
use std::collections::BTreeSet;
use std::path::Path;

fn open(dir: &Path, name: &str) -> Store {
    Store::open(dir.join(name), StoreConfig::default()).expect("open")
}

fn op(collection: &str, id: &str, intent: Intent) -> WriteOp {
    WriteOp {
        collection: CollectionName::new(collection).expect("name"),
        id: RecordId::new(id).expect("id"),
        intent,
    }
}

fn fields(body: Value) -> Map<String, Value> {
    body.as_object().expect("object").clone()
}

fn get(store: &Store, collection: &str, id: &str) -> Option<Value> {
    store
        .get(
            &CollectionName::new(collection).expect("name"),
            &RecordId::new(id).expect("id"),
        )
        .expect("get")
        .map(Value::Object)
}

#[test]
fn later_ops_on_a_record_see_the_earlier_ones_of_the_same_write() {
    let dir = tempfile::tempdir().expect("dir");
    let mut store = open(dir.path(), "one.db");
    let ops = vec![
        op("notes", "x", Intent::Put(fields(json!({"a": 1})))),
        op("notes", "y", Intent::Put(fields(json!({"n": 1})))),
        op("notes", "z", Intent::Put(fields(json!({"n": 1})))),
        // Each of these fails, or does something else, if it does not see
        // the op before it on the same record.
        op("notes", "x", Intent::Patch(fields(json!({"b": 2})))),
        op("notes", "y", Intent::Delete),
        op("notes", "y", Intent::Create(fields(json!({"n": 2})))),
        op("notes", "x", Intent::Patch(fields(json!({"a": 3})))),
    ];
    let outcome = store.write(ops).expect("write");
    assert_eq!(outcome.changed.len(), 7, "every op changed its record");
    assert_eq!(get(&store, "notes", "x"), Some(json!({"a": 3, "b": 2})));
    assert_eq!(get(&store, "notes", "y"), Some(json!({"n": 2})));
    assert_eq!(get(&store, "notes", "z"), Some(json!({"n": 1})));
    store.verify().expect("the file is consistent");
    // Each record is in the log once, at its last change.
    let logged: Vec<String> = store
        .changes_since(DbVersion(0))
        .map(|c| c.expect("change").id.as_str().to_owned())
        .collect();
    let records: BTreeSet<&String> = logged.iter().collect();
    assert_eq!(records.len(), 3);
}

#[test]
fn every_record_of_a_write_across_chunks_and_collections_is_stored_and_logged() {
    let dir = tempfile::tempdir().expect("dir");
    let mut batched = open(dir.path(), "batched.db");
    let mut single = open(dir.path(), "single.db");
    // Two collections interleaved, past several chunks, with a remainder.
    let ops: Vec<WriteOp> = (0..303)
        .map(|i| {
            let collection = if i % 2 == 0 { "notes" } else { "tasks" };
            let body = json!({"title": format!("t{i}"), "n": i, "tags": {"k": i % 5}});
            op(collection, &format!("r{i}"), Intent::Put(fields(body)))
        })
        .collect();
    batched.write(ops.clone()).expect("batched write");
    for op in ops.iter().cloned() {
        single.write([op]).expect("single write");
    }
    for (i, op) in ops.iter().enumerate() {
        let (collection, id) = (op.collection.as_str(), op.id.as_str());
        let stored = get(&batched, collection, id);
        assert!(stored.is_some(), "record {i} missing");
        assert_eq!(stored, get(&single, collection, id), "record {i}");
    }
    batched.verify().expect("the file is consistent");
    let logged: BTreeSet<String> = batched
        .changes_since(DbVersion(0))
        .map(|c| {
            let c = c.expect("change");
            format!("{}/{}", c.collection.as_str(), c.id.as_str())
        })
        .collect();
    assert_eq!(logged.len(), ops.len(), "every record logged");
}

#[test]
fn a_refused_write_leaves_none_of_its_records_not_even_written_chunks() {
    let dir = tempfile::tempdir().expect("dir");
    let mut store = open(dir.path(), "refused.db");
    store
        .write([op("notes", "before", Intent::Put(fields(json!({"n": 0}))))])
        .expect("first write");
    let version = store.status().expect("status").db_version;
    // 150 records (two full chunks written before the refusal), then a
    // patch of a record that does not exist.
    let mut ops: Vec<WriteOp> = (0..150)
        .map(|i| {
            op(
                "notes",
                &format!("r{i}"),
                Intent::Put(fields(json!({"n": i}))),
            )
        })
        .collect();
    ops.push(op(
        "notes",
        "nobody",
        Intent::Patch(fields(json!({"n": 1}))),
    ));
    let err = store.write(ops).expect_err("the patch is refused");
    assert!(
        matches!(err, StoreError::Invalid(CoreError::RecordNotFound)),
        "{err:?}"
    );
    for i in 0..150 {
        assert_eq!(get(&store, "notes", &format!("r{i}")), None, "record {i}");
    }
    assert_eq!(store.status().expect("status").db_version, version);
    // The next write continues the log where it was.
    let next = store
        .write([op("notes", "after", Intent::Put(fields(json!({"n": 1}))))])
        .expect("next write");
    assert_eq!(next.version, Some(DbVersion(version.0 + 1)));
    store.verify().expect("the file is consistent");
}

#[test]
fn a_step_sees_the_rows_the_steps_before_it_left_waiting() {
    let dir = tempfile::tempdir().expect("dir");
    let mut store = open(dir.path(), "steps.db");
    let same = || op("notes", "same", Intent::Put(fields(json!({"v": 0}))));
    store.write([same()]).expect("first write");
    // The first step: a put that changes nothing, so its row count is not
    // a multiple of the row chunk and the last rows are still waiting
    // when the step ends; then new records, the last one `last`.
    let last = format!("r{}", OPS_PER_STEP - 1);
    let mut ops = vec![same()];
    ops.extend((1..OPS_PER_STEP).map(|i| {
        op(
            "notes",
            &format!("r{i}"),
            Intent::Put(fields(json!({"v": i}))),
        )
    }));
    // The second step, large enough to load its records up front, edits
    // `last` and deletes another of the first step's records: refused as
    // "not found" if it read the table without the rows still waiting.
    ops.push(op("notes", &last, Intent::Patch(fields(json!({"w": 2})))));
    ops.push(op("notes", "r200", Intent::Delete));
    ops.extend((0..4).map(|i| op("notes", &format!("new{i}"), Intent::Put(fields(json!({}))))));
    let outcome = store.write(ops).expect("write");
    assert_eq!(
        outcome.changed.len(),
        OPS_PER_STEP + 5,
        "all but `same` changed"
    );
    assert_eq!(
        get(&store, "notes", &last),
        Some(json!({"v": OPS_PER_STEP - 1, "w": 2}))
    );
    assert_eq!(get(&store, "notes", "r200"), None);
    assert_eq!(get(&store, "notes", "r199"), Some(json!({"v": 199})));
    store.verify().expect("the file is consistent");
}

#[test]
fn an_op_its_caller_fails_to_make_in_a_later_step_fails_the_whole_write() {
    let dir = tempfile::tempdir().expect("dir");
    let mut store = open(dir.path(), "failed.db");
    store
        .write([op("notes", "before", Intent::Put(fields(json!({"n": 0}))))])
        .expect("first write");
    let version = store.status().expect("status").db_version;
    let good = OPS_PER_STEP + 10;
    let mut taken = 0;
    // Into a collection the write would create: it must not stay behind.
    let ops = (0..good + 5).map(|i| {
        taken += 1;
        if i == good {
            return Err(StoreError::Invalid(CoreError::NotAnObject { got: "array" }));
        }
        Ok(op(
            "fresh",
            &format!("r{i}"),
            Intent::Put(fields(json!({"n": i}))),
        ))
    });
    let err = store
        .write_from(ops)
        .expect_err("the bad op fails the write");
    assert!(
        matches!(
            err,
            StoreError::Invalid(CoreError::NotAnObject { got: "array" })
        ),
        "{err:?}"
    );
    assert_eq!(taken, good + 1, "no op is taken after the failed one");
    assert_eq!(store.status().expect("status").db_version, version);
    for i in [0, OPS_PER_STEP - 1, OPS_PER_STEP, good - 1] {
        assert_eq!(get(&store, "fresh", &format!("r{i}")), None, "record {i}");
    }
    let status = store.status().expect("status");
    assert!(
        status
            .collections
            .iter()
            .all(|c| c.name.as_str() != "fresh"),
        "the collection the failed write made is gone: {:?}",
        status.collections
    );
    store.verify().expect("the file is consistent");
}
