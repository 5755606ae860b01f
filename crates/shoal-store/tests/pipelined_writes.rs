//! A write of a thousand ops or more on distinct records is decided on a
//! second thread while the writing thread writes the rows decided before
//! (`write_pipeline.rs`). What it leaves must be what the same ops leave
//! one write at a time: every record as written, logged once in op order
//! with clocks rising in op order, blob references indexed; a refusal on
//! the deciding thread, however late, leaves nothing; and the store goes
//! on as before after either.

use serde_json::{Map, Value, json};
use shoal_core::blob::BlobHash;
use shoal_core::{CollectionName, CoreError, DbVersion, Intent, RecordId};
use shoal_store::{Store, StoreConfig, StoreError, WriteOp};
use std::collections::HashMap;
use std::path::Path;

/// Ops in the large writes: past the pipeline's threshold (1,024) and
/// several of its hand-overs (256 ops each), with a remainder.
const LARGE: usize = 2_500;

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

/// A blob no store here holds, referenced by some of the records.
fn absent_blob() -> BlobHash {
    BlobHash::of(b"a photo never fetched")
}

/// Records `e0..e299` in `notes`, written before the large write, which
/// then patches, deletes or sets map entries in them.
fn existing() -> Vec<WriteOp> {
    (0..300)
        .map(|i| {
            op(
                "notes",
                &format!("e{i}"),
                Intent::Put(fields(json!({"n": i, "keep": true}))),
            )
        })
        .collect()
}

/// [`LARGE`] ops on distinct records: puts in two collections interleaved
/// (every 97th with a blob reference), and on the existing records a
/// patch, a delete or a map entry set in turn.
fn large_write() -> Vec<WriteOp> {
    let blob = absent_blob().to_hex();
    (0..LARGE)
        .map(|i| {
            if i < 300 {
                let id = format!("e{i}");
                return match i % 3 {
                    0 => op(
                        "notes",
                        &id,
                        Intent::Patch(fields(json!({"n": i * 10, "keep": null}))),
                    ),
                    1 => op("notes", &id, Intent::Delete),
                    _ => op(
                        "notes",
                        &id,
                        Intent::MapSet {
                            field: shoal_core::FieldName::new("tags").expect("field"),
                            key: format!("k{i}"),
                            value: json!(i),
                        },
                    ),
                };
            }
            let collection = if i % 2 == 0 { "notes" } else { "tasks" };
            let mut body = json!({"title": format!("t{i}"), "n": i});
            if i % 97 == 0 {
                body["photo"] = json!({"$blob": blob, "size": 7});
            }
            op(collection, &format!("r{i}"), Intent::Put(fields(body)))
        })
        .collect()
}

#[test]
fn a_large_write_leaves_what_the_same_ops_leave_one_at_a_time() {
    let dir = tempfile::tempdir().expect("dir");
    let mut large = open(dir.path(), "large.db");
    let mut single = open(dir.path(), "single.db");
    for store in [&mut large, &mut single] {
        store.write(existing()).expect("existing records");
    }
    let ops = large_write();
    let outcome = large.write(ops.clone()).expect("large write");
    for op in ops.iter().cloned() {
        single.write([op]).expect("single write");
    }

    // Every op changed its record, reported in op order.
    let expected: Vec<(String, String)> = ops
        .iter()
        .map(|op| (op.collection.as_str().to_owned(), op.id.as_str().to_owned()))
        .collect();
    let changed: Vec<(String, String)> = outcome
        .changed
        .iter()
        .map(|(c, id)| (c.as_str().to_owned(), id.as_str().to_owned()))
        .collect();
    assert_eq!(changed, expected);
    for (i, op) in ops.iter().enumerate() {
        let (collection, id) = (op.collection.as_str(), op.id.as_str());
        assert_eq!(
            get(&large, collection, id),
            get(&single, collection, id),
            "record {i}"
        );
    }
    assert_eq!(get(&large, "notes", "e0"), Some(json!({"n": 0})));
    assert_eq!(get(&large, "notes", "e1"), None);
    assert_eq!(
        get(&large, "notes", "e2"),
        Some(json!({"n": 2, "keep": true, "tags": {"k2": 2}}))
    );

    // Logged once each at the write's version, in op order, each record's
    // clock above the one before: one tick per op, in order.
    let version = outcome.version.expect("a version");
    let mut logged: HashMap<(String, String), (u32, shoal_core::Clock)> = HashMap::new();
    for change in large.changes_since(DbVersion(version.0 - 1)) {
        let change = change.expect("change");
        assert_eq!(change.position.version, version);
        let key = (
            change.collection.as_str().to_owned(),
            change.id.as_str().to_owned(),
        );
        let entry = logged
            .entry(key)
            .or_insert((change.position.seq, change.clock));
        assert_eq!(entry.0, change.position.seq, "one position per record");
        entry.1 = entry.1.max(change.clock);
    }
    assert_eq!(logged.len(), LARGE, "every record logged");
    let mut previous = None;
    for (i, key) in expected.iter().enumerate() {
        let (seq, clock) = logged[key];
        assert_eq!(seq as usize, i + 1, "op {i}'s log sequence");
        if let Some(previous) = previous {
            assert!(
                clock > previous,
                "op {i}'s clock is not above op {}'s",
                i - 1
            );
        }
        previous = Some(clock);
    }
    assert_eq!(
        outcome.clock, previous,
        "the write reports its last op's clock"
    );

    // The blob references were indexed as one at a time indexes them.
    let missing = large.missing_blobs(None, 10).expect("missing blobs");
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0].hash, absent_blob());
    assert_eq!(
        missing,
        single.missing_blobs(None, 10).expect("missing blobs")
    );
    large.verify().expect("the file is consistent");

    // The store goes on: the next write takes the next version.
    let next = large
        .write([op("notes", "after", Intent::Put(fields(json!({"n": 1}))))])
        .expect("next write");
    assert_eq!(next.version, Some(DbVersion(version.0 + 1)));
}

#[test]
fn a_late_refusal_on_the_deciding_thread_leaves_nothing_of_a_large_write() {
    let dir = tempfile::tempdir().expect("dir");
    let mut store = open(dir.path(), "refused.db");
    store.write(existing()).expect("existing records");
    let version = store.status().expect("status").db_version;
    // Thousands of rows are written before the refusal comes: a patch of a
    // record that does not exist, near the end.
    let mut ops = large_write();
    ops[LARGE - 10] = op("notes", "nobody", Intent::Patch(fields(json!({"n": 1}))));
    let err = store.write(ops.clone()).expect_err("the patch is refused");
    assert!(
        matches!(err, StoreError::Invalid(CoreError::RecordNotFound)),
        "{err:?}"
    );
    for (i, op) in ops.iter().enumerate().skip(300) {
        assert_eq!(
            get(&store, op.collection.as_str(), op.id.as_str()),
            None,
            "record {i}"
        );
    }
    assert_eq!(
        get(&store, "notes", "e1"),
        Some(json!({"n": 1, "keep": true})),
        "an existing record is as it was"
    );
    assert!(
        store
            .missing_blobs(None, 10)
            .expect("missing blobs")
            .is_empty()
    );
    assert_eq!(store.status().expect("status").db_version, version);
    store.verify().expect("the file is consistent");

    // A value over the cap is refused on the deciding thread as well.
    let mut ops = large_write();
    let big = "x".repeat(StoreConfig::default().max_value_bytes + 1);
    ops[LARGE - 1] = op("tasks", "huge", Intent::Put(fields(json!({"text": big}))));
    assert!(store.write(ops).is_err(), "a value over the cap is refused");
    assert_eq!(store.status().expect("status").db_version, version);

    // The same ops without the refused one go through afterwards.
    let outcome = store
        .write(large_write())
        .expect("the write without the refusal");
    assert_eq!(outcome.version, Some(DbVersion(version.0 + 1)));
    assert_eq!(outcome.changed.len(), LARGE);
    store.verify().expect("the file is consistent");
}
