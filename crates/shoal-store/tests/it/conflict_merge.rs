//! Merges fill the conflict journal only for concurrent overwrites: two
//! stores that edit one field without seeing each other's value and then
//! exchange their logs each journal the pair once (whichever side's value
//! lost, however often it arrives); a node that only ever receives the
//! merged winner has nothing to journal; while a sequential edit, a replica that missed the versions in
//! between, an edit of another field and an equal value journal nothing.
//! Concurrent map entry writes are journalled per entry.

use serde_json::{Value, json};
use shoal_core::{Change, CollectionName, DbVersion, FieldName, Intent, RecordId, Slot};
use shoal_store::{ConflictQuery, JournalledConflict, Store, StoreConfig, WriteOp};
use std::path::Path;

fn open(dir: &Path, name: &str) -> Store {
    Store::open(dir.join(name), StoreConfig::default()).expect("open")
}

fn notes() -> CollectionName {
    CollectionName::new("notes").expect("name")
}

fn write(store: &mut Store, intent: Intent) {
    store
        .write([WriteOp {
            collection: notes(),
            id: RecordId::new("n1").expect("id"),
            intent,
        }])
        .expect("write");
}

fn patch(store: &mut Store, body: Value) {
    write(
        store,
        Intent::Patch(body.as_object().expect("object").clone()),
    );
}

fn all_changes(store: &Store) -> Vec<Change> {
    store
        .changes_since(DbVersion(0))
        .collect::<Result<_, _>>()
        .expect("changes")
}

/// What two nodes do when they meet: each reads its log for the other,
/// then each merges what it got.
fn exchange(a: &mut Store, b: &mut Store) {
    let (from_a, from_b) = (all_changes(a), all_changes(b));
    b.apply(&from_a).expect("apply");
    a.apply(&from_b).expect("apply");
}

/// Sends everything `from` holds to `to`.
fn sync(from: &Store, to: &mut Store) {
    to.apply(&all_changes(from)).expect("apply");
}

fn journal(store: &Store) -> Vec<JournalledConflict> {
    store.conflicts(&ConflictQuery::default()).expect("list")
}

fn title(store: &Store) -> Value {
    store
        .get(&notes(), &RecordId::new("n1").expect("id"))
        .expect("get")
        .expect("record")["title"]
        .clone()
}

/// Two stores holding the same record `{"title": "base", "body": "x"}`.
fn pair(dir: &Path) -> (Store, Store) {
    let mut a = open(dir, "a.db");
    let mut b = open(dir, "b.db");
    write(
        &mut a,
        Intent::Put(
            json!({"title": "base", "body": "x"})
                .as_object()
                .expect("o")
                .clone(),
        ),
    );
    sync(&a, &mut b);
    (a, b)
}

#[test]
fn concurrent_edits_of_one_field_are_journalled_once_on_each_side() {
    let dir = tempfile::tempdir().expect("dir");
    let (mut a, mut b) = pair(dir.path());
    patch(&mut a, json!({"title": "from a"}));
    patch(&mut b, json!({"title": "from b"}));
    exchange(&mut a, &mut b);
    // Again, as a resend or another peer would: nothing new.
    sync(&a, &mut b);
    sync(&b, &mut a);
    assert_eq!(title(&a), title(&b), "converged");
    let (ja, jb) = (journal(&a), journal(&b));
    assert_eq!(ja.len(), 1, "{ja:?}");
    assert_eq!(jb.len(), 1, "{jb:?}");
    for entry in [&ja[0].entry, &jb[0].entry] {
        assert_eq!(entry.slot, Slot::Field(FieldName::new("title").expect("f")));
        assert_eq!(entry.id.as_str(), "n1");
        assert_eq!(
            entry.kept.value.as_ref().map(|v| v.to_value()),
            Some(title(&a))
        );
        let lost = entry.lost.value.as_ref().expect("lost").to_value();
        assert!(lost == json!("from a") || lost == json!("from b"));
        assert_ne!(Some(lost), Some(title(&a)));
        assert_ne!(entry.kept.clock.site, entry.lost.clock.site);
    }
    assert_eq!(ja[0].entry.kept, jb[0].entry.kept);
    assert_eq!(ja[0].entry.lost, jb[0].entry.lost);
    // The node whose value lost and the one whose value won both know.
    let sites = [a.identity().site(), b.identity().site()];
    assert!(sites.contains(&ja[0].entry.lost.clock.site));

    // A third node that meets only the merged result has nothing to journal.
    let mut c = open(dir.path(), "c.db");
    sync(&a, &mut c);
    assert!(journal(&c).is_empty());
}

#[test]
fn sequential_edits_are_not_conflicts() {
    let dir = tempfile::tempdir().expect("dir");
    let (mut a, mut b) = pair(dir.path());
    patch(&mut a, json!({"title": "a1"}));
    sync(&a, &mut b);
    patch(&mut b, json!({"title": "b1 after a1"}));
    sync(&b, &mut a);
    patch(&mut a, json!({"title": "a2 after b1"}));
    sync(&a, &mut b);
    // Concurrent edits of different fields are no conflict either.
    patch(&mut a, json!({"title": "a3"}));
    patch(&mut b, json!({"body": "b's body"}));
    exchange(&mut a, &mut b);
    assert_eq!(title(&b), json!("a3"));
    assert!(journal(&a).is_empty(), "{:?}", journal(&a));
    assert!(journal(&b).is_empty(), "{:?}", journal(&b));
}

#[test]
fn a_replica_that_missed_versions_in_between_sees_no_conflict() {
    let dir = tempfile::tempdir().expect("dir");
    let (mut a, mut b) = pair(dir.path());
    let mut c = open(dir.path(), "c.db");
    sync(&a, &mut c);
    patch(&mut a, json!({"title": "a1"}));
    sync(&a, &mut b);
    patch(&mut b, json!({"title": "b1"}));
    sync(&b, &mut a);
    patch(&mut a, json!({"title": "a2"}));
    // c only ever sees the base and then the newest version.
    sync(&a, &mut c);
    assert_eq!(title(&c), json!("a2"));
    assert!(journal(&c).is_empty(), "{:?}", journal(&c));
}

#[test]
fn the_same_value_written_twice_concurrently_loses_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let (mut a, mut b) = pair(dir.path());
    patch(&mut a, json!({"title": "same"}));
    patch(&mut b, json!({"title": "same"}));
    exchange(&mut a, &mut b);
    assert!(journal(&a).is_empty() && journal(&b).is_empty());
}

#[test]
fn concurrent_map_entry_writes_are_journalled_per_entry() {
    let dir = tempfile::tempdir().expect("dir");
    let (mut a, mut b) = pair(dir.path());
    let tags = FieldName::new("tags").expect("f");
    let set = |key: &str, value: Value| Intent::MapSet {
        field: tags.clone(),
        key: key.into(),
        value,
    };
    write(&mut a, set("colour", json!("red")));
    sync(&a, &mut b);
    write(&mut a, set("colour", json!("green")));
    write(&mut b, set("colour", json!("blue")));
    write(&mut b, set("size", json!(3)));
    exchange(&mut a, &mut b);
    for store in [&a, &b] {
        let j = journal(store);
        assert_eq!(j.len(), 1, "{j:?}");
        assert_eq!(j[0].entry.slot, Slot::Entry(tags.clone(), "colour".into()));
    }
}
