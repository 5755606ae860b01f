//! Browser tests of the storage layer, run in headless Chromium by
//! `scripts/wasm-test.sh` (wasm-bindgen-test-runner with chromedriver):
//! writes through IndexedDB survive closing and reopening the database (what
//! a reload does), the catch-up cursor table persists, a failed write leaves
//! nothing behind, quota errors are classified, and one tab owns a store.
#![cfg(target_arch = "wasm32")]

use js_sys::{Promise, Reflect};
use shoal_core::{CollectionName, DbVersion, Intent, LogPosition, RecordId, SyncCursor};
use shoal_web::Store;
use shoal_web::error::WebError;
use shoal_web::idb::{cursors, read, request, schema, tx, write_tx};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn object(json: &str) -> serde_json::Map<String, serde_json::Value> {
    serde_json::from_str(json).unwrap()
}

fn names(collection: &str, id: &str) -> (CollectionName, RecordId) {
    (
        CollectionName::new(collection).unwrap(),
        RecordId::new(id).unwrap(),
    )
}

/// A fresh database for one test.
async fn fresh(name: &str) -> web_sys::IdbDatabase {
    schema::delete(name).await.unwrap();
    let db = schema::open(name).await.unwrap();
    read::node_meta(&db).await.unwrap();
    db
}

#[wasm_bindgen_test]
async fn writes_survive_reopening_with_their_clocks_and_version() {
    let db = fresh("t-reopen").await;
    let (tasks, t1) = names("tasks", "t1");
    let put = Intent::Put(object(r#"{"title": "milk", "done": false}"#));
    let first = write_tx::write(&db, &tasks, &t1, &put, 1_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.version, DbVersion(1));
    let patch = Intent::Patch(object(r#"{"done": true}"#));
    write_tx::write(&db, &tasks, &t1, &patch, 2_000)
        .await
        .unwrap()
        .unwrap();
    // The same patch again changes nothing and moves no version.
    assert_eq!(
        write_tx::write(&db, &tasks, &t1, &patch, 3_000)
            .await
            .unwrap(),
        None
    );
    let site = read::node_meta(&db).await.unwrap().site;
    db.close();

    // What a reload does: a new connection to the same database.
    let db = schema::open("t-reopen").await.unwrap();
    assert_eq!(
        read::get(&db, &tasks, &t1).await.unwrap().as_deref(),
        Some(r#"{"done":true,"title":"milk"}"#)
    );
    let meta = read::node_meta(&db).await.unwrap();
    assert_eq!(meta.version, DbVersion(2));
    assert_eq!(meta.site, site, "the site id persists");
    assert_eq!(meta.hlc.wall_ms(), 2_000, "the clock persists");
    // A write after the reload orders after every earlier one, even with
    // the wall clock behind.
    let third = write_tx::write(&db, &tasks, &t1, &Intent::Delete, 10)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(third.version, DbVersion(3));
    assert_eq!(third.value, None);
    assert_eq!(read::node_meta(&db).await.unwrap().hlc.wall_ms(), 2_000);
    assert_eq!(read::get(&db, &tasks, &t1).await.unwrap(), None);
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
        write_tx::write(&db, &c, &i, &put, 1)
            .await
            .unwrap()
            .unwrap();
    }
    let (tasks, b) = names("tasks", "b");
    write_tx::write(&db, &tasks, &b, &Intent::Delete, 2)
        .await
        .unwrap()
        .unwrap();

    let page = read::list(&db, &tasks, "", None, 1).await.unwrap();
    assert_eq!(
        page.records,
        vec![("a".to_string(), r#"{"n":"tasks/a"}"#.to_string())]
    );
    let after = RecordId::new(page.next.clone().unwrap()).unwrap();
    // The deleted b is skipped; c closes the collection.
    let page = read::list(&db, &tasks, "", Some(&after), 5).await.unwrap();
    let ids: Vec<&str> = page.records.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["c"]);
    assert_eq!(page.next, None);
    let err = read::list(&db, &tasks, "", None, 0).await.unwrap_err();
    assert_eq!(err.code(), "bad-request");
    db.close();
}

#[wasm_bindgen_test]
async fn catch_up_cursors_persist_per_peer() {
    let db = fresh("t-cursors").await;
    assert_eq!(
        cursors::load(&db, "peer-a").await.unwrap(),
        SyncCursor::default()
    );
    let cursor = SyncCursor::complete(DbVersion(4)).advance(
        LogPosition {
            version: DbVersion(9),
            seq: 2,
        },
        true,
    );
    cursors::save(&db, "peer-a", cursor).await.unwrap();
    db.close();
    let db = schema::open("t-cursors").await.unwrap();
    assert_eq!(
        cursors::load(&db, "peer-a").await.unwrap(),
        cursor.durable()
    );
    assert_eq!(
        cursors::load(&db, "peer-b").await.unwrap(),
        SyncCursor::default()
    );
    db.close();
}

#[wasm_bindgen_test]
async fn a_write_that_fails_midway_leaves_nothing_behind() {
    let db = fresh("t-abort").await;
    let (tasks, t1) = names("tasks", "t1");
    // A damaged row for t1 (as if altered outside Shoal).
    let t = tx::write(&db, &[schema::RECORDS]).unwrap();
    let row = js_sys::Object::new();
    Reflect::set(&row, &"k".into(), &"tasks/t1".into()).unwrap();
    Reflect::set(&row, &"v".into(), &7.into()).unwrap();
    Reflect::set(&row, &"s".into(), &"[{".into()).unwrap();
    tx::store(&t, schema::RECORDS).unwrap().put(&row).unwrap();
    request::completed(&t).await.unwrap();

    // A write to another record and then to t1: the second fails whole.
    let (_, t2) = names("tasks", "t2");
    let put = Intent::Put(object(r#"{"a": 1}"#));
    write_tx::write(&db, &tasks, &t2, &put, 5)
        .await
        .unwrap()
        .unwrap();
    let err = write_tx::write(&db, &tasks, &t1, &put, 6)
        .await
        .unwrap_err();
    assert!(matches!(err, WebError::Corrupt(_)), "{err:?}");
    assert_eq!(err.code(), "internal");
    let meta = read::node_meta(&db).await.unwrap();
    assert_eq!(
        meta.version,
        DbVersion(1),
        "the failed write moved no version"
    );
    assert_eq!(meta.hlc.wall_ms(), 5, "nor the stored clock");
    db.close();
}

#[wasm_bindgen_test]
fn a_quota_exceeded_error_is_its_own_code() {
    let quota =
        web_sys::DomException::new_with_message_and_name("no room", "QuotaExceededError").unwrap();
    let err = request::classify(&quota.into());
    assert_eq!(err, WebError::QuotaExceeded("no room".into()));
    assert_eq!(err.code(), "quota-exceeded");
    let other = web_sys::DomException::new_with_message_and_name("bad", "DataError").unwrap();
    assert_eq!(request::classify(&other.into()).code(), "internal");
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
    let _ = Store::delete_store("t-lock".into()).await;
    let first = Store::open("t-lock".into(), None).await.unwrap();
    let busy = Store::open("t-lock".into(), None).await.err().unwrap();
    assert_eq!(code(&busy), "store-busy");
    assert_eq!(
        Reflect::get(&busy, &"name".into())
            .unwrap()
            .as_string()
            .as_deref(),
        Some("ShoalError")
    );

    // A waiting open gets the store once the first closes it.
    let wait = js_sys::Object::new();
    Reflect::set(&wait, &"wait".into(), &true.into()).unwrap();
    let waiting = wasm_bindgen_futures::future_to_promise(async move {
        Store::open("t-lock".into(), Some(wait.into()))
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
    let _ = Store::delete_store("t-api".into()).await;
    let store = Store::open("t-api".into(), None).await.unwrap();
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
