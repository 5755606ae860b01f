//! App data versions: a collection's declared JSON Schema refuses local
//! writes that do not validate (with the schema's message, nothing
//! written) and stamps those that do; a bad declaration is refused; and,
//! over real loopback nodes, a record a newer app wrote reaches a node
//! whose app declares an older version — kept, flagged, not writable there
//! until that node's app upgrades — and is synced onward to a third node
//! that declares nothing, flagged there too.

use crate::common;

use common::*;
use serde_json::json;
use shoal::{DATA_VERSION_FIELD, Error, Store};
use shoal_store::StoreError;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);

fn task_schema() -> serde_json::Value {
    json!({
        "type": "object",
        "required": ["title"],
        "properties": {"title": {"type": "string", "minLength": 1}, "done": {"type": "boolean"}},
        "additionalProperties": false
    })
}

#[test]
fn a_write_that_does_not_validate_is_refused_with_the_schemas_message() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("a.db")).unwrap();
    let tasks = store.collection("tasks").unwrap();
    tasks.put("before", json!({"anything": 1})).unwrap();
    tasks.set_schema(2, &task_schema()).unwrap();
    assert_eq!(tasks.schema().unwrap().unwrap().version, 2);

    let head = store.db_version();
    let err = tasks.put("t1", json!({"title": 5})).unwrap_err();
    assert!(
        matches!(&err, Error::Store(StoreError::SchemaViolation { version: 2, message, .. }) if message.contains("/title")),
        "{err:?}"
    );
    assert!(err.to_string().contains("\"string\""), "{err}");
    let err = tasks
        .put("t1", json!({"title": "x", "extra": true}))
        .unwrap_err();
    assert!(
        matches!(err, Error::Store(StoreError::SchemaViolation { .. })),
        "{err:?}"
    );
    assert_eq!(
        tasks.get("t1").unwrap(),
        None,
        "a refused write left a record"
    );
    assert_eq!(store.db_version(), head);

    // A valid write is stamped; the stamp itself is not checked against the schema.
    tasks.put("t1", json!({"title": "ok"})).unwrap();
    let t1 = tasks.get("t1").unwrap().unwrap();
    assert_eq!(t1[DATA_VERSION_FIELD], 2);
    assert_eq!(t1["title"], "ok");
    // A patch is checked on the whole record it leaves.
    assert!(tasks.patch("t1", json!({"title": null})).is_err());
    tasks.patch("t1", json!({"done": true})).unwrap();
    // A record written before the declaration must validate once changed.
    assert!(tasks.patch("before", json!({"anything": 2})).is_err());
    assert_eq!(tasks.get("before").unwrap().unwrap()["anything"], 1);
    // Map entries stamp the record too (another collection, a map-friendly schema).
    let lists = store.collection("lists").unwrap();
    lists.set_schema(1, &json!({"type": "object"})).unwrap();
    lists.map_set("l1", "tags", "red", json!(1)).unwrap();
    assert_eq!(lists.get("l1").unwrap().unwrap()[DATA_VERSION_FIELD], 1);
}

#[test]
fn a_bad_declaration_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("a.db")).unwrap();
    let tasks = store.collection("tasks").unwrap();
    let err = tasks
        .set_schema(1, &json!({"type": "no-such-type"}))
        .unwrap_err();
    assert!(
        matches!(err, Error::Store(StoreError::BadSchema { .. })),
        "{err:?}"
    );
    assert!(tasks.set_schema(0, &json!({})).is_err());
    assert_eq!(tasks.schema().unwrap(), None);
    tasks.set_schema(3, &json!({})).unwrap();
    let err = tasks.set_schema(2, &task_schema()).unwrap_err();
    assert!(
        err.to_string().contains("older than the declared 3"),
        "{err}"
    );
    assert_eq!(tasks.schema().unwrap().unwrap().version, 3);
    // Removing it lifts every check.
    assert!(tasks.remove_schema().unwrap());
    tasks.put("free", json!({"title": 5})).unwrap();
    assert_eq!(
        tasks.get("free").unwrap().unwrap().get(DATA_VERSION_FIELD),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_from_a_newer_app_is_kept_flagged_and_synced_onward() {
    let dir = tempfile::tempdir().unwrap();
    let new = start(dir.path(), "new", group_key(), vec![]).await;
    let old = start(dir.path(), "old", group_key(), vec![new.address.clone()]).await;
    let third = start(dir.path(), "third", group_key(), vec![old.address.clone()]).await;
    let v3 = json!({"type": "object", "required": ["title", "priority"]});
    new.store
        .collection("tasks")
        .unwrap()
        .set_schema(3, &v3)
        .unwrap();
    old.store
        .collection("tasks")
        .unwrap()
        .set_schema(2, &json!({"type": "object"}))
        .unwrap();
    new.store
        .collection("tasks")
        .unwrap()
        .put("t1", json!({"title": "new shape", "priority": 1}))
        .unwrap();
    old.store
        .collection("tasks")
        .unwrap()
        .put("t2", json!({"title": "old shape"}))
        .unwrap();
    converge(&[&new.store, &old.store, &third.store], LIMIT).await;

    let at_old = old.store.collection("tasks").unwrap();
    let t1 = at_old.get("t1").unwrap().expect("kept, not dropped");
    assert_eq!(t1["priority"], 1);
    assert_eq!(at_old.newer_data_version(&t1).unwrap(), Some(3));
    let t2 = at_old.get("t2").unwrap().unwrap();
    assert_eq!(
        at_old.newer_data_version(&t2).unwrap(),
        None,
        "its own record is not flagged"
    );
    // The old app may not change it: refused, record as it was.
    let err = at_old
        .patch("t1", json!({"title": "old app edit"}))
        .unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Store(StoreError::NewerDataVersion {
                record: 3,
                declared: 2,
                ..
            })
        ),
        "{err:?}"
    );
    assert!(at_old.delete("t1").is_err());
    assert_eq!(at_old.get("t1").unwrap().unwrap()["title"], "new shape");
    // Synced onward, through the old node, to a node that declares nothing: flagged there too.
    let at_third = third.store.collection("tasks").unwrap();
    let relayed = at_third.get("t1").unwrap().expect("relayed");
    assert_eq!(at_third.newer_data_version(&relayed).unwrap(), Some(3));
    // At the newer node nothing is flagged.
    let at_new = new.store.collection("tasks").unwrap();
    assert_eq!(
        at_new
            .newer_data_version(&at_new.get("t1").unwrap().unwrap())
            .unwrap(),
        None
    );

    // The old node's app upgrades: the flag goes and the record is writable.
    at_old.set_schema(3, &v3).unwrap();
    assert_eq!(at_old.newer_data_version(&t1).unwrap(), None);
    at_old
        .patch("t1", json!({"title": "edited after the upgrade"}))
        .unwrap();
    wait_for("the edit to reach the new node", LIMIT, || {
        at_new
            .get("t1")
            .unwrap()
            .is_some_and(|r| r["title"] == "edited after the upgrade")
    })
    .await;
}
