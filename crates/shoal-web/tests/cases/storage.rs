// The storage cases both storages pass, included by `storage.rs`
// (IndexedDB, in a page) and `storage_opfs.rs` (SQLite on OPFS, in a
// dedicated Worker), each of which defines `STORAGE` and configures where
// the tests run: writes survive closing and reopening the store (what a
// reload does), pages list live records, the catch-up cursors persist, a
// failed write leaves nothing behind, a row that does not read refuses
// only its record's writes, one owner at a time, and the JavaScript API
// end to end.

use js_sys::{Promise, Reflect};
use shoal_core::{CollectionName, DbVersion, Intent, LogPosition, RecordId, SyncCursor};
use shoal_web::Store;
use shoal_web::error::WebError;
use shoal_web::storage::{Storage, StorageKind};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

fn object(json: &str) -> serde_json::Map<String, serde_json::Value> {
    serde_json::from_str(json).unwrap()
}

fn names(collection: &str, id: &str) -> (CollectionName, RecordId) {
    (
        CollectionName::new(collection).unwrap(),
        RecordId::new(id).unwrap(),
    )
}

/// `Store.open`'s options for `STORAGE`, with `wait`.
fn options(wait: bool) -> JsValue {
    let options = js_sys::Object::new();
    let storage = match STORAGE {
        StorageKind::IndexedDb => "indexeddb",
        StorageKind::Opfs => "opfs",
    };
    Reflect::set(&options, &"storage".into(), &storage.into()).unwrap();
    Reflect::set(&options, &"wait".into(), &wait.into()).unwrap();
    options.into()
}

/// One write alone, as the write queue runs a write made after the last
/// one resolved: `Ok(None)` when nothing changed.
async fn write(
    db: &Storage,
    collection: &CollectionName,
    id: &RecordId,
    intent: &Intent,
    now_ms: u64,
) -> Result<Option<shoal_web::write_batch::Committed>, WebError> {
    let request = shoal_web::write_batch::WriteRequest {
        collection: collection.clone(),
        id: id.clone(),
        intent: intent.clone(),
    };
    let mut outcomes = db.write_all(&[request], now_ms).await?;
    outcomes.pop().unwrap()
}

/// A fresh store for one test.
async fn fresh(name: &str) -> Storage {
    Storage::delete(name, STORAGE).await.unwrap();
    Storage::open(name, STORAGE).await.unwrap().0
}

/// How a stored row is damaged (as if the database were altered outside
/// Shoal).
#[derive(Clone, Copy, PartialEq)]
enum Damage {
    /// A row whose state does not decode.
    State,
    /// No row Shoal reads at all: no state on IndexedDB, a version that is
    /// no number in SQLite.
    Row,
}

/// Stores a row under `key` damaged as `how` says.
async fn damage(db: &Storage, key: &str, how: Damage) {
    match db {
        Storage::Idb(db) => {
            use shoal_web::idb::{request, schema, tx};
            let t = tx::write(db, &[schema::RECORDS]).unwrap();
            let row = js_sys::Object::new();
            Reflect::set(&row, &"k".into(), &key.into()).unwrap();
            Reflect::set(&row, &"v".into(), &7.into()).unwrap();
            if how == Damage::State {
                Reflect::set(&row, &"s".into(), &"[{".into()).unwrap();
            }
            tx::store(&t, schema::RECORDS).unwrap().put(&row).unwrap();
            request::completed(&t).await.unwrap();
        }
        Storage::Sql(db) => db
            .with(|c| {
                let sql = match how {
                    Damage::State => "INSERT INTO records (k, v, s) VALUES (?1, 7, '[{')",
                    Damage::Row => "INSERT INTO records (k, v, s) VALUES (?1, 'x', '[]')",
                };
                c.execute(sql, [key]).unwrap();
                Ok(())
            })
            .unwrap(),
    }
}

#[wasm_bindgen_test]
async fn writes_survive_reopening_with_their_clocks_and_version() {
    let db = fresh("t-reopen").await;
    let (tasks, t1) = names("tasks", "t1");
    let put = Intent::Put(object(r#"{"title": "milk", "done": false}"#));
    let first = write(&db, &tasks, &t1, &put, 1_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.version, DbVersion(1));
    let patch = Intent::Patch(object(r#"{"done": true}"#));
    write(&db, &tasks, &t1, &patch, 2_000)
        .await
        .unwrap()
        .unwrap();
    // The same patch again changes nothing and moves no version.
    assert_eq!(
        write(&db, &tasks, &t1, &patch, 3_000).await.unwrap(),
        None
    );
    let site = db.meta().await.unwrap().site;
    db.close();

    // What a reload does: a new connection to the same database.
    let (db, _) = Storage::open("t-reopen", STORAGE).await.unwrap();
    assert_eq!(
        db.get(&tasks, &t1).await.unwrap().as_deref(),
        Some(r#"{"done":true,"title":"milk"}"#)
    );
    let meta = db.meta().await.unwrap();
    assert_eq!(meta.version, DbVersion(2));
    assert_eq!(meta.site, site, "the site id persists");
    assert_eq!(meta.hlc.wall_ms(), 2_000, "the clock persists");
    // A write after the reload orders after every earlier one, even with
    // the wall clock behind.
    let third = write(&db, &tasks, &t1, &Intent::Delete, 10)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(third.version, DbVersion(3));
    assert_eq!(third.value, None);
    assert_eq!(db.meta().await.unwrap().hlc.wall_ms(), 2_000);
    assert_eq!(db.get(&tasks, &t1).await.unwrap(), None);
    db.close();
}

#[wasm_bindgen_test]
async fn pages_list_live_records_in_id_order_within_one_collection() {
    let db = fresh("t-pages").await;
    for (collection, id) in [
        ("tasks", "b"),
        ("tasks", "a"),
        ("tasks", "c"),
        ("tasks2", "a"),
        ("task", "z"),
    ] {
        let (c, i) = names(collection, id);
        let put = Intent::Put(object(&format!(r#"{{"n": "{collection}/{id}"}}"#)));
        write(&db, &c, &i, &put, 1)
            .await
            .unwrap()
            .unwrap();
    }
    let (tasks, b) = names("tasks", "b");
    write(&db, &tasks, &b, &Intent::Delete, 2)
        .await
        .unwrap()
        .unwrap();

    let page = db.list(&tasks, "", None, 1).await.unwrap();
    assert_eq!(
        page.records,
        vec![("a".to_string(), r#"{"n":"tasks/a"}"#.to_string())]
    );
    let after = RecordId::new(page.next.clone().unwrap()).unwrap();
    // The deleted b is skipped; c closes the collection.
    let page = db.list(&tasks, "", Some(&after), 5).await.unwrap();
    let ids: Vec<&str> = page.records.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["c"]);
    assert_eq!(page.next, None);
    // An `after` at or past the end of the prefix: an empty page, no error.
    for after in ["b", "z"] {
        let after = RecordId::new(after).unwrap();
        let page = db.list(&tasks, "a", Some(&after), 5).await.unwrap();
        assert_eq!((page.records.len(), page.next), (0, None), "{after:?}");
    }
    let err = db.list(&tasks, "", None, 0).await.unwrap_err();
    assert_eq!(err.code(), "bad-request");
    db.close();
}

#[wasm_bindgen_test]
async fn catch_up_cursors_persist_per_peer() {
    let db = fresh("t-cursors").await;
    assert_eq!(
        db.cursor("peer-a").await.unwrap(),
        SyncCursor::default()
    );
    let cursor = SyncCursor::complete(DbVersion(4)).advance(
        LogPosition {
            version: DbVersion(9),
            seq: 2,
        },
        true,
    );
    // A cursor is stored with the changes it covers (here none), as a
    // merge stores it.
    db.apply("peer-a", &[], Some(cursor), 1).await.unwrap();
    db.close();
    let (db, _) = Storage::open("t-cursors", STORAGE).await.unwrap();
    assert_eq!(
        db.cursor("peer-a").await.unwrap(),
        cursor.durable()
    );
    assert_eq!(
        db.cursor("peer-b").await.unwrap(),
        SyncCursor::default()
    );
    db.close();
}

#[wasm_bindgen_test]
async fn a_row_that_does_not_read_refuses_only_its_records_writes() {
    let db = fresh("t-bad-row").await;
    let (tasks, t1) = names("tasks", "t1");
    damage(&db, "tasks/t1", Damage::Row).await;
    let (_, t2) = names("tasks", "t2");
    let put = Intent::Put(object(r#"{"a": 1}"#));
    let request = |id: &RecordId| shoal_web::write_batch::WriteRequest {
        collection: tasks.clone(),
        id: id.clone(),
        intent: put.clone(),
    };
    // Written together: the damaged record's write is refused, the other's
    // is stored.
    let outcomes = db
        .write_all(&[request(&t1), request(&t2)], 5)
        .await
        .unwrap();
    let refused = outcomes[0].as_ref().unwrap_err();
    assert!(matches!(refused, WebError::Corrupt(_)), "{refused:?}");
    assert!(outcomes[1].as_ref().unwrap().is_some());
    assert_eq!(db.get(&tasks, &t2).await.unwrap().as_deref(), Some(r#"{"a":1}"#));
    assert_eq!(db.meta().await.unwrap().version, DbVersion(1));
    db.close();
}

#[wasm_bindgen_test]
async fn a_write_that_fails_midway_leaves_nothing_behind() {
    let db = fresh("t-abort").await;
    let (tasks, t1) = names("tasks", "t1");
    // A damaged row for t1 (as if altered outside Shoal).
    damage(&db, "tasks/t1", Damage::State).await;

    // A write to another record and then to t1: the second fails whole.
    let (_, t2) = names("tasks", "t2");
    let put = Intent::Put(object(r#"{"a": 1}"#));
    write(&db, &tasks, &t2, &put, 5)
        .await
        .unwrap()
        .unwrap();
    let err = write(&db, &tasks, &t1, &put, 6).await.unwrap_err();
    assert!(matches!(err, WebError::Corrupt(_)), "{err:?}");
    assert_eq!(err.code(), "internal");
    let meta = db.meta().await.unwrap();
    assert_eq!(
        meta.version,
        DbVersion(1),
        "the failed write moved no version"
    );
    assert_eq!(meta.hlc.wall_ms(), 5, "nor the stored clock");
    db.close();
}

async fn resolve(promise: Promise) -> Result<JsValue, JsValue> {
    JsFuture::from(promise).await
}

fn code(error: &JsValue) -> String {
    Reflect::get(error, &"code".into())
        .unwrap()
        .as_string()
        .unwrap()
}

#[wasm_bindgen_test]
async fn one_tab_owns_a_store_and_the_next_waits_or_is_told_busy() {
    let _ = Store::delete_store("t-lock".into(), Some(options(false))).await;
    let first = Store::open("t-lock".into(), Some(options(false)))
        .await
        .unwrap();
    let busy = Store::open("t-lock".into(), Some(options(false)))
        .await
        .err()
        .unwrap();
    assert_eq!(code(&busy), "store-busy");
    assert_eq!(
        Reflect::get(&busy, &"name".into())
            .unwrap()
            .as_string()
            .as_deref(),
        Some("ShoalError")
    );

    // A waiting open gets the store once the first closes it.
    let wait = options(true);
    let waiting = wasm_bindgen_futures::future_to_promise(async move {
        Store::open("t-lock".into(), Some(wait))
            .await
            .map(JsValue::from)
    });
    let notes = first.collection("notes").unwrap();
    resolve(notes.put("n1".into(), js_sys::JSON::parse(r#"{"t":"x"}"#).unwrap()))
        .await
        .unwrap();
    resolve(first.close()).await.unwrap();
    let closed = resolve(notes.get("n1".into())).await.unwrap_err();
    assert_eq!(code(&closed), "store-closed");
    let second = resolve(waiting).await.unwrap();
    assert!(!second.is_undefined());
}

#[wasm_bindgen_test]
async fn the_js_api_writes_reads_pages_and_reports_changes_with_codes() {
    let _ = Store::delete_store("t-api".into(), Some(options(false))).await;
    let store = Store::open("t-api".into(), Some(options(false)))
        .await
        .unwrap();
    let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::<String>::new()));
    let callback = Closure::<dyn FnMut(JsValue)>::new({
        let seen = seen.clone();
        move |change: JsValue| {
            seen.borrow_mut()
                .push(js_sys::JSON::stringify(&change).unwrap().into());
        }
    });
    let subscription = store.subscribe(callback.as_ref().clone().into());
    let notes = store.collection("notes").unwrap();
    let json = |t: &str| js_sys::JSON::parse(t).unwrap();

    let written = resolve(notes.put("n1".into(), json(r#"{"title":"a"}"#)))
        .await
        .unwrap();
    assert_eq!(
        js_sys::JSON::stringify(&written).unwrap(),
        r#"{"changed":true,"version":1}"#
    );
    resolve(notes.map_set("n1".into(), "tags".into(), "x".into(), json("true")))
        .await
        .unwrap();
    let got = resolve(notes.get("n1".into())).await.unwrap();
    assert_eq!(
        js_sys::JSON::stringify(&got).unwrap(),
        r#"{"tags":{"x":true},"title":"a"}"#
    );

    let exists = resolve(notes.create("n1".into(), json("{}")))
        .await
        .unwrap_err();
    assert_eq!(code(&exists), "already-exists");
    let missing = resolve(notes.patch("n9".into(), json(r#"{"a":1}"#)))
        .await
        .unwrap_err();
    assert_eq!(code(&missing), "not-found");
    let bad_id = resolve(notes.get("a b".into())).await.unwrap_err();
    assert_eq!(code(&bad_id), "invalid-id");
    let not_object = resolve(notes.put("n2".into(), json("[1]")))
        .await
        .unwrap_err();
    assert_eq!(code(&not_object), "bad-request");
    assert_eq!(
        code(&store.collection("9bad").err().unwrap()),
        "invalid-collection"
    );

    resolve(notes.delete("n1".into())).await.unwrap();
    let page = resolve(notes.list(None)).await.unwrap();
    assert_eq!(
        js_sys::JSON::stringify(&page).unwrap(),
        r#"{"records":[],"next":null}"#
    );

    subscription.unsubscribe();
    resolve(notes.put("n3".into(), json("{}"))).await.unwrap();
    assert_eq!(
        *seen.borrow(),
        [
            r#"{"collection":"notes","id":"n1","version":1,"value":{"title":"a"}}"#,
            r#"{"collection":"notes","id":"n1","version":2,"value":{"tags":{"x":true},"title":"a"}}"#,
            r#"{"collection":"notes","id":"n1","version":3,"value":null}"#,
        ]
    );
    resolve(store.close()).await.unwrap();
}
