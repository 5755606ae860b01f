//! Bad local input is refused with a clear, specific error and changes nothing.
//!
//! Covers: invalid collection names, record ids and field names; non-object
//! bodies; values over the configured size cap (put, patch, map_set, and a
//! `put_many` whose last record is too large); patch/delete/map_remove of a
//! missing or deleted record; a record merged past the cap (edits that do not
//! grow it pass, one that does is refused); queries with a bad limit or an
//! unusable field
//! name; and regressions found along the way. After every refused call,
//! `db_version()`, the records, the change log and the status are compared
//! with a snapshot taken before it. Remote batches: `bad_remote.rs`; files:
//! `bad_files.rs`.

use crate::refusal;

use refusal::*;
use serde_json::{Map, Value, json};
use shoal::{Collection, Error, ListOptions, Order, Query};
use shoal_core::CoreError;
use shoal_store::StoreError;

#[test]
fn invalid_collection_names() {
    let dir = tempfile::tempdir().unwrap();
    let store = fixture(&dir.path().join("a.db"));
    let long = "a".repeat(65);
    for name in ["", "9abc", "a b", long.as_str(), "é", "_x", "a.b", "a/b"] {
        let err = refused(&store, &format!("collection {name:?}"), || {
            store.collection(name)
        });
        assert!(
            is_core(
                &err,
                |e| matches!(e, CoreError::InvalidCollectionName { name: n, .. } if n == name)
            ),
            "collection {name:?}: {err:?}"
        );
        assert!(err.to_string().contains(&format!("{name:?}")), "{err}");
        let err = refused(&store, &format!("typed {name:?}"), || {
            store.typed::<Value>(name)
        });
        assert!(
            is_core(&err, |e| matches!(
                e,
                CoreError::InvalidCollectionName { .. }
            )),
            "{err:?}"
        );
    }
    // The longest allowed name is fine.
    let ok = "a".repeat(64);
    store.collection(&ok).unwrap().put("x", json!({})).unwrap();
}

#[test]
fn invalid_record_ids() {
    let dir = tempfile::tempdir().unwrap();
    let store = fixture(&dir.path().join("a.db"));
    let tasks = store.collection("tasks").unwrap();
    let long = "a".repeat(129);
    let bad_ids = ["", "a/b", "a b", long.as_str(), "é", "日本", "a\nb", "t1?"];
    for id in bad_ids {
        let is_bad_id = |err: &Error| {
            is_core(
                err,
                |e| matches!(e, CoreError::InvalidRecordId { id: got, .. } if got == id),
            )
        };
        let calls: Vec<(&str, WriteCall)> = vec![
            ("put", Box::new(|| tasks.put(id, json!({"a": 1})))),
            ("patch", Box::new(|| tasks.patch(id, json!({"a": 1})))),
            ("delete", Box::new(|| tasks.delete(id))),
            (
                "map_set",
                Box::new(|| tasks.map_set(id, "tags", "k", json!(1))),
            ),
            ("map_remove", Box::new(|| tasks.map_remove(id, "tags", "k"))),
            (
                "put_many",
                Box::new(|| tasks.put_many([("ok1", json!({"a": 1})), (id, json!({"a": 2}))])),
            ),
        ];
        for (what, call) in calls {
            let err = refused(&store, &format!("{what} id {id:?}"), call);
            assert!(is_bad_id(&err), "{what} id {id:?}: {err:?}");
            assert!(err.to_string().contains(&format!("{id:?}")), "{err}");
        }
        let err = refused(&store, &format!("get id {id:?}"), || tasks.get(id));
        assert!(is_bad_id(&err), "get id {id:?}: {err:?}");
    }
    // The longest allowed id is fine.
    tasks.put(&"a".repeat(128), json!({"a": 1})).unwrap();
}

#[test]
fn non_object_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let store = fixture(&dir.path().join("a.db"));
    let tasks = store.collection("tasks").unwrap();
    let bodies = [
        (json!([1, 2]), "an array"),
        (json!("text"), "a string"),
        (json!(3), "a number"),
        (Value::Null, "null"),
        (json!(true), "a boolean"),
    ];
    for (body, kind) in bodies {
        let is_not_object = |err: &Error| matches!(err, Error::Invalid(CoreError::NotAnObject { got }) if *got == kind);
        for id in ["t1", "t2", "new"] {
            let err = refused(&store, &format!("put {id} {body}"), || {
                tasks.put(id, body.clone())
            });
            assert!(is_not_object(&err), "put {body}: {err:?}");
            assert!(err.to_string().contains(kind), "{err}");
            let err = refused(&store, &format!("patch {id} {body}"), || {
                tasks.patch(id, body.clone())
            });
            assert!(is_not_object(&err), "patch {body}: {err:?}");
        }
        let err = refused(&store, &format!("put_many {body}"), || {
            tasks.put_many([("ok1", json!({"a": 1})), ("ok2", body.clone())])
        });
        assert!(is_not_object(&err), "put_many {body}: {err:?}");
    }
    // A typed collection whose type is not a JSON object.
    let numbers = store.typed::<Vec<u8>>("tasks").unwrap();
    let err = refused(&store, "typed put of a Vec", || numbers.put("v", &vec![1]));
    assert!(
        matches!(
            err,
            Error::Invalid(CoreError::NotAnObject { got: "an array" })
        ),
        "{err:?}"
    );
}

#[test]
fn values_over_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let store = fixture(&dir.path().join("a.db"));
    let tasks = store.collection("tasks").unwrap();
    // {"s":"xxx…"} is the string's length + 8 bytes.
    let sized = |len: usize| json!({"s": "x".repeat(len - 8)});
    let too_large = |err: &Error, size: usize| matches!(err, Error::Invalid(CoreError::ValueTooLarge { size: s, cap: CAP }) if *s == size);
    for id in ["t1", "t2", "new"] {
        let err = refused(&store, &format!("put {id}"), || {
            tasks.put(id, sized(CAP + 1))
        });
        assert!(too_large(&err, CAP + 1), "put {id}: {err:?}");
        assert!(err.to_string().contains("1025") && err.to_string().contains("1024"));
        let err = refused(&store, &format!("map_set {id}"), || {
            tasks.map_set(id, "tags", "k", json!("y".repeat(CAP)))
        });
        // The cap is on the whole record: the entry alone is CAP + 2 bytes.
        assert!(
            matches!(&err, Error::Invalid(CoreError::ValueTooLarge { size, cap: CAP }) if *size >= CAP + 2),
            "map_set {id}: {err:?}"
        );
    }
    let err = refused(&store, "patch", || {
        tasks.patch("t1", json!({"big": "z".repeat(2 * CAP), "n": 2}))
    });
    assert!(
        is_core(&err, |e| matches!(
            e,
            CoreError::ValueTooLarge { cap: CAP, .. }
        )),
        "{err:?}"
    );
    let err = refused(&store, "put_many with the last record too large", || {
        let mut batch: Vec<(String, Value)> = (0..20)
            .map(|i| (format!("b{i}"), json!({"i": i})))
            .collect();
        batch.push(("t1".into(), json!({"title": "changed"})));
        batch.push(("last".into(), sized(CAP + 1)));
        tasks.put_many(batch)
    });
    assert!(too_large(&err, CAP + 1), "put_many: {err:?}");
    // Exactly at the cap is accepted.
    tasks.put("t1", sized(CAP)).unwrap();
    assert_eq!(Value::Object(tasks.get("t1").unwrap().unwrap()), sized(CAP));
}

#[test]
fn a_record_merged_past_the_cap_can_still_be_edited_without_growing() {
    // Two replicas each write a different 600-byte field of one record: each
    // write is under the cap, the merge of both is over it. Local writes that
    // do not make it bigger still go through; one that grows it is refused.
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (
        capped(&dir.path().join("a.db")),
        capped(&dir.path().join("b.db")),
    );
    let field = |c: char| c.to_string().repeat(600);
    let notes = a.collection("notes").unwrap();
    notes
        .put("r", json!({"a": field('a'), "done": false}))
        .unwrap();
    b.collection("notes")
        .unwrap()
        .put("r", json!({"b": field('b')}))
        .unwrap();
    for (from, to) in [(&a, &b), (&b, &a)] {
        let changes: Vec<_> = from
            .changes_since(Default::default())
            .collect::<Result<_, _>>()
            .unwrap();
        to.apply(&changes).unwrap();
    }
    let merged = Value::Object(notes.get("r").unwrap().unwrap()).to_string();
    assert!(
        merged.len() > CAP,
        "the merge is over the cap: {}",
        merged.len()
    );
    notes.patch("r", json!({"done": true})).unwrap();
    notes.patch("r", json!({"a": field('c')})).unwrap();
    notes.patch("r", json!({"a": "short"})).unwrap();
    let err = refused(&a, "a write that grows it again", || {
        notes.patch("r", json!({"a": field('d'), "more": 1}))
    });
    assert!(
        is_core(&err, |e| matches!(
            e,
            CoreError::ValueTooLarge { cap: CAP, .. }
        )),
        "{err:?}"
    );
}

#[test]
fn missing_or_deleted_records() {
    let dir = tempfile::tempdir().unwrap();
    let store = fixture(&dir.path().join("a.db"));
    let tasks = store.collection("tasks").unwrap();
    let notes = store.collection("notes").unwrap();
    for (coll, id) in [(&tasks, "t2"), (&tasks, "never"), (&notes, "t1")] {
        let not_found = |err: &Error| {
            matches!(err, Error::NotFound { collection, id: got }
                if collection == coll.name() && got.as_str() == id)
        };
        let err = refused(&store, &format!("patch {id}"), || {
            coll.patch(id, json!({"a": 1}))
        });
        assert!(not_found(&err), "patch {id}: {err:?}");
        assert!(err.to_string().contains(id), "{err}");
        let err = refused(&store, &format!("delete {id}"), || coll.delete(id));
        assert!(not_found(&err), "delete {id}: {err:?}");
        let err = refused(&store, &format!("map_remove {id}"), || {
            coll.map_remove(id, "tags", "red")
        });
        assert!(not_found(&err), "map_remove {id}: {err:?}");
    }
    // Deleting twice: the second one is NotFound.
    tasks.delete("t1").unwrap();
    let err = refused(&store, "second delete", || tasks.delete("t1"));
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
}

#[test]
fn invalid_field_names() {
    let dir = tempfile::tempdir().unwrap();
    let store = fixture(&dir.path().join("a.db"));
    let tasks = store.collection("tasks").unwrap();
    let notes = store.collection("notes").unwrap();
    let long = "f".repeat(129);
    for field in ["", "a\nb", "\u{7f}", long.as_str()] {
        let bad_field = |err: &Error| {
            is_core(
                err,
                |e| matches!(e, CoreError::InvalidFieldName { name, .. } if name == field),
            )
        };
        let mut body = Map::new();
        body.insert("ok".into(), json!(1));
        body.insert(field.to_string(), json!(2));
        let body = Value::Object(body);
        // Live, deleted (a put would start a new life) and unknown records.
        for id in ["t1", "t2", "new"] {
            let err = refused(&store, &format!("put {id} field {field:?}"), || {
                tasks.put(id, body.clone())
            });
            assert!(bad_field(&err), "put {id} {field:?}: {err:?}");
        }
        let err = refused(&store, &format!("patch field {field:?}"), || {
            tasks.patch("t1", body.clone())
        });
        assert!(bad_field(&err), "patch {field:?}: {err:?}");
        let err = refused(&store, &format!("put_many field {field:?}"), || {
            tasks.put_many([("ok1", json!({"a": 1})), ("ok2", body.clone())])
        });
        assert!(bad_field(&err), "put_many {field:?}: {err:?}");
        let err = refused(&store, &format!("map_set field {field:?}"), || {
            notes.map_set("n1", field, "k", json!(1))
        });
        assert!(bad_field(&err), "map_set {field:?}: {err:?}");
        let err = refused(&store, &format!("map_remove field {field:?}"), || {
            notes.map_remove("n1", field, "red")
        });
        assert!(bad_field(&err), "map_remove {field:?}: {err:?}");
    }
}

#[test]
fn bad_queries() {
    let dir = tempfile::tempdir().unwrap();
    let store = fixture(&dir.path().join("a.db"));
    let tasks = store.collection("tasks").unwrap();
    tasks.create_index("n").unwrap();
    let invalid_query = |err: &Error, needle: &str| matches!(err, Error::Store(StoreError::InvalidQuery(msg)) if msg.contains(needle));
    for limit in [0, 10_001, usize::MAX] {
        let err = refused(&store, &format!("query limit {limit}"), || {
            tasks.query(&Query::new().limit(limit))
        });
        assert!(invalid_query(&err, &limit.to_string()), "{err:?}");
        let err = refused(&store, &format!("list limit {limit}"), || {
            tasks.list(&ListOptions {
                limit,
                ..Default::default()
            })
        });
        assert!(invalid_query(&err, "limit"), "{err:?}");
    }
    assert_eq!(tasks.query(&Query::new().limit(10_000)).unwrap().len(), 1);
    for field in ["a\"b", "it's", "back\\slash"] {
        let queries = [
            Query::new().eq(field, json!(1)),
            Query::new().range(field, Some(json!(1)), None),
            Query::new().order_by(field, Order::Desc),
            Query::new().eq("n", json!(1)).order_by(field, Order::Asc),
        ];
        for query in queries {
            let err = refused(&store, &format!("query on {field:?}"), || {
                tasks.query(&query)
            });
            assert!(invalid_query(&err, "quotes"), "{field:?}: {err:?}");
        }
        let err = refused(&store, &format!("index on {field:?}"), || {
            tasks.create_index(field)
        });
        assert!(invalid_query(&err, "quotes"), "index {field:?}: {err:?}");
    }
    // A field name that breaks the naming rules is refused as such.
    let err = refused(&store, "query on an empty field name", || {
        tasks.query(&Query::new().eq("", json!(1)))
    });
    assert!(
        is_core(&err, |e| matches!(e, CoreError::InvalidFieldName { .. })),
        "{err:?}"
    );
    // Only scalars can be compared.
    let err = refused(&store, "query eq an array", || {
        tasks.query(&Query::new().eq("n", json!([1])))
    });
    assert!(invalid_query(&err, "compared"), "{err:?}");
}

/// Regression (was a bug): a local write accepts a map key longer than 128 bytes (through
/// `map_set`, or `put`/`patch` of an object onto a map field), which every peer
/// then refuses ("map key longer than 128 bytes"), refusing the whole batch it
/// travels in — an acknowledged write that will not sync.
#[test]
fn long_map_key_is_refused_locally() {
    let dir = tempfile::tempdir().unwrap();
    let store = fixture(&dir.path().join("a.db"));
    let notes = store.collection("notes").unwrap();
    let key = "k".repeat(129);
    // n1's "tags" is a map field, so put and patch diff it entry by entry.
    let mut entries = Map::new();
    entries.insert(key.clone(), json!(1));
    let body = json!({"text": "hi", "tags": Value::Object(entries)});
    refused(&store, "put of a 129-byte key onto a map field", || {
        notes.put("n1", body.clone())
    });
    refused(&store, "patch of a 129-byte key onto a map field", || {
        notes.patch("n1", body.clone())
    });
    refused(&store, "map_set with a 129-byte key", || {
        notes.map_set("n1", "tags", &key, json!(1))
    });
}

/// Regression (was a bug): a failed write (bad field name, patch/delete of a missing
/// record, ...) to a collection that does not exist yet still creates it (the
/// collection row is inserted outside the write transaction), so `status()`
/// lists a new, empty collection.
#[test]
fn refused_write_creates_no_collection() {
    let dir = tempfile::tempdir().unwrap();
    let store = fixture(&dir.path().join("a.db"));
    let fresh: Collection = store.collection("fresh").unwrap();
    refused(&store, "put with an empty field name", || {
        fresh.put("x", json!({"": 1}))
    });
    refused(&store, "patch of a record that does not exist", || {
        fresh.patch("x", json!({"a": 1}))
    });
    refused(&store, "delete of a record that does not exist", || {
        fresh.delete("x")
    });
}

/// Regression (was a bug): a query is only validated when its collection exists, so a bad
/// limit or field name on an empty or unknown collection returns `Ok([])`.
#[test]
fn bad_query_on_unknown_collection() {
    let dir = tempfile::tempdir().unwrap();
    let store = fixture(&dir.path().join("a.db"));
    let missing = store.collection("missing").unwrap();
    refused(&store, "limit 0", || missing.query(&Query::new().limit(0)));
    refused(&store, "quoted field", || {
        missing.query(&Query::new().eq("a\"b", json!(1)))
    });
}

/// A `put_many` whose records come from an iterator that uses the same
/// store: the write holds the store while it takes them, so the call would
/// wait for itself forever. It panics with a message saying so; the batch
/// is rolled back and the store stays usable. (A thread with a deadline, so
/// that a hang fails this test instead of stalling the suite.)
#[test]
fn a_put_many_iterator_that_uses_its_store_panics_instead_of_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(fixture(&dir.path().join("a.db")));
    let version = store.db_version();
    let message = {
        let store = store.clone();
        panic_message_within_deadline(move || {
            let tasks = store.collection("tasks").unwrap();
            let _ = tasks.put_many((0..600).map(|i| {
                // Past the first step of ops, so part of the batch is
                // written when the call comes.
                if i == 400 {
                    let _ = tasks.get("t1");
                }
                (format!("b{i}"), json!({"i": i}))
            }));
        })
    };
    assert!(
        message.contains("put_many used the store they are written to"),
        "{message}"
    );
    assert_eq!(
        store.db_version(),
        version,
        "nothing of the batch was written"
    );
    let tasks = store.collection("tasks").unwrap();
    assert_eq!(tasks.get("b0").unwrap(), None);
    tasks.put("after", json!({"ok": true})).unwrap();
    assert_eq!(tasks.get("after").unwrap().unwrap()["ok"], true);
}

/// Runs `call` on a thread of its own and returns the message it panicked
/// with; fails if it returns instead, or is still running after a minute
/// (a hang fails the test instead of stalling the suite).
fn panic_message_within_deadline(call: impl FnOnce() + Send + 'static) -> String {
    let (done, finished) = std::sync::mpsc::channel();
    let caller = std::thread::spawn(move || {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(call));
        let _ = done.send(());
        outcome
    });
    finished
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("put_many returned or panicked, and did not hang");
    let panic = caller
        .join()
        .unwrap()
        .expect_err("the call from the iterator panics");
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|m| m.to_string()))
        .unwrap_or_default()
}

/// Two stores feeding each other: A's `put_many` iterator runs B's
/// `put_many`, whose iterator calls into A. A is still locked by the outer
/// write, so that call panics too (the thread knows every store it is
/// feeding, not only the innermost); both batches are rolled back.
#[test]
fn a_put_many_iterator_feeding_another_store_that_uses_the_first_panics() {
    let dir = tempfile::tempdir().unwrap();
    let a = std::sync::Arc::new(fixture(&dir.path().join("a.db")));
    let b = std::sync::Arc::new(fixture(&dir.path().join("b.db")));
    let (a_version, b_version) = (a.db_version(), b.db_version());
    let message = {
        let (a, b) = (a.clone(), b.clone());
        panic_message_within_deadline(move || {
            let a_tasks = a.collection("tasks").unwrap();
            let b_tasks = b.collection("tasks").unwrap();
            let _ = a_tasks.put_many((0..3).map(|i| {
                let _ = b_tasks.put_many((0..3).map(|j| {
                    let _ = a_tasks.get("t1");
                    (format!("b{j}"), json!({"j": j}))
                }));
                (format!("a{i}"), json!({"i": i}))
            }));
        })
    };
    assert!(
        message.contains("put_many used the store they are written to"),
        "the call into A panics: {message}"
    );
    assert_eq!(a.db_version(), a_version);
    assert_eq!(b.db_version(), b_version);
    assert_eq!(a.collection("tasks").unwrap().get("a0").unwrap(), None);
    assert_eq!(b.collection("tasks").unwrap().get("b0").unwrap(), None);
}

/// An iterator that yields again after its first `None` ends the batch at
/// that `None`, as collecting it did: nothing after it is written.
#[test]
fn a_put_many_batch_ends_at_its_iterators_first_none() {
    let dir = tempfile::tempdir().unwrap();
    let store = fixture(&dir.path().join("a.db"));
    let tasks = store.collection("tasks").unwrap();
    let mut calls = 0;
    // Some, None, then Some again eight times, then None for ever.
    let records = std::iter::from_fn(|| {
        calls += 1;
        (calls != 2 && calls <= 10).then(|| (format!("r{calls}"), json!({"n": calls})))
    });
    tasks.put_many(records).unwrap();
    assert!(tasks.get("r1").unwrap().is_some());
    assert_eq!(
        tasks.get("r3").unwrap(),
        None,
        "nothing after the first None"
    );
}
