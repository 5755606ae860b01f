//! Replica convergence of `shoal_store::Store` on fixed cases (DESIGN.md §1,
//! docs/merge.md), pinning the laws of the property test in `convergence.rs`:
//! two stores exchanging their changes one by one in a fixed shuffled order
//! converge, and re-applying a batch reports `applied == 0` and no new version.

use serde_json::json;
use shoal_core::{CollectionName, FieldName, Intent, RecordId};

use crate::convergence_model;
use crate::convergence_support;
use convergence_model::shuffle;
use convergence_support::{all_changes, obj, open, put};

/// Two stores with conflicting histories exchange their changes one at a time
/// in a fixed shuffled order and converge on the expected merge.
#[test]
fn fixed_shuffled_exchange_converges() {
    let dir = tempfile::tempdir().unwrap();
    let (mut a, mut b) = (open(&dir, "a.db"), open(&dir, "b.db"));
    let c = CollectionName::new("notes").unwrap();
    let tags = FieldName::new("tags").unwrap();

    // Shared starting point.
    put(
        &mut a,
        &c,
        "n1",
        Intent::Put(obj(json!({"title": "t", "n": 1}))),
    );
    put(&mut a, &c, "n2", Intent::Put(obj(json!({"title": "keep"}))));
    b.apply(&all_changes(&a)).unwrap();

    // Concurrent, disconnected edits.
    put(&mut a, &c, "n1", Intent::Delete);
    put(&mut b, &c, "n1", Intent::Patch(obj(json!({"n": 2}))));
    put(&mut a, &c, "n2", Intent::Patch(obj(json!({"a": 1}))));
    put(&mut b, &c, "n2", Intent::Patch(obj(json!({"b": 2}))));
    for (store, key) in [(&mut a, "red"), (&mut b, "blue")] {
        put(
            store,
            &c,
            "n3",
            Intent::MapSet {
                field: tags.clone(),
                key: key.into(),
                value: json!(true),
            },
        );
    }
    put(&mut b, &c, "n4", Intent::Put(obj(json!({"x": 1}))));
    put(&mut b, &c, "n4", Intent::Delete);
    put(&mut b, &c, "n4", Intent::Put(obj(json!({"y": 2}))));

    let mut from_a = all_changes(&a);
    let mut from_b = all_changes(&b);
    shuffle(&mut from_a, 0x5eed_0001);
    shuffle(&mut from_b, 0x5eed_0002);
    for change in &from_a {
        b.apply(std::slice::from_ref(change)).unwrap();
    }
    for change in &from_b {
        a.apply(std::slice::from_ref(change)).unwrap();
    }

    assert_eq!(a.full_state().unwrap(), b.full_state().unwrap());
    for store in [&a, &b] {
        let get = |id: &str| store.get(&c, &RecordId::new(id).unwrap()).unwrap();
        assert_eq!(get("n1"), None, "delete wins over a concurrent edit");
        assert_eq!(
            get("n2"),
            Some(obj(json!({"title": "keep", "a": 1, "b": 2})))
        );
        assert_eq!(
            get("n3"),
            Some(obj(json!({"tags": {"red": true, "blue": true}}))),
            "concurrent map adds both survive"
        );
        assert_eq!(
            get("n4"),
            Some(obj(json!({"y": 2}))),
            "re-created, old life gone"
        );
    }
    // A fixed point: nothing more to exchange.
    assert_eq!(b.apply(&all_changes(&a)).unwrap().applied, 0);
    assert_eq!(a.apply(&all_changes(&b)).unwrap().applied, 0);
}

/// Applying the same batch twice: the second time applies nothing and takes
/// no db_version.
#[test]
fn reapplying_a_batch_is_a_no_op() {
    let dir = tempfile::tempdir().unwrap();
    let (mut a, mut b) = (open(&dir, "a.db"), open(&dir, "b.db"));
    let c = CollectionName::new("tasks").unwrap();
    put(
        &mut a,
        &c,
        "t1",
        Intent::Put(obj(json!({"title": "x", "done": false}))),
    );
    put(&mut a, &c, "t2", Intent::Put(obj(json!({"title": "y"}))));
    put(&mut a, &c, "t2", Intent::Delete);
    let batch = all_changes(&a);

    let first = b.apply(&batch).unwrap();
    assert_eq!(first.applied, batch.len());
    assert!(first.version.is_some());
    let version = b.db_version();
    let state = b.full_state().unwrap();

    let again = b.apply(&batch).unwrap();
    assert_eq!(again.applied, 0);
    assert_eq!(again.version, None);
    assert!(again.changed.is_empty());
    assert_eq!(again.not_newer + again.stale, batch.len());
    assert_eq!(b.db_version(), version);
    assert_eq!(b.full_state().unwrap(), state);
    assert_eq!(b.full_state().unwrap(), a.full_state().unwrap());
}
