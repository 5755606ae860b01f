//! Browser tests of the SQLite-on-OPFS storage, run in a dedicated Worker
//! of headless Chromium by `scripts/wasm-test.sh` (OPFS synchronous access
//! handles exist only there): the cases both storages pass
//! (`cases/storage.rs`), and moving a store from IndexedDB into OPFS
//! (`importFrom`, below).
#![cfg(target_arch = "wasm32")]

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_dedicated_worker);

/// The storage the shared cases run on.
const STORAGE: StorageKind = StorageKind::Opfs;

include!("cases/storage.rs");

// Moving a store from IndexedDB into OPFS (`importFrom`, src/import.rs):
// OPFS-only, so here rather than in the shared cases.

/// `Store.open`'s options for OPFS, moving in the IndexedDB store.
fn import_options() -> JsValue {
    let options = js_sys::Object::new();
    Reflect::set(&options, &"storage".into(), &"opfs".into()).unwrap();
    Reflect::set(&options, &"importFrom".into(), &"indexeddb".into()).unwrap();
    options.into()
}

/// Neither storage holds the store `name`.
async fn gone(name: &str) {
    Storage::delete(name, StorageKind::IndexedDb).await.unwrap();
    Storage::delete(name, StorageKind::Opfs).await.unwrap();
}

/// A store `name` on IndexedDB holding `ids` in "notes" (each `{"n": i}`).
async fn indexeddb_store(name: &str, ids: &[&str]) -> Storage {
    let (db, _) = Storage::open(name, StorageKind::IndexedDb).await.unwrap();
    for (i, id) in ids.iter().enumerate() {
        let (notes, id) = names("notes", id);
        let put = Intent::Put(object(&format!(r#"{{"n": {i}}}"#)));
        write(&db, &notes, &id, &put, 10 + i as u64).await.unwrap();
    }
    db
}

async fn indexeddb_exists(name: &str) -> bool {
    shoal_web::idb::export::exists(name).await.unwrap().unwrap()
}

/// Opens `name` moving its IndexedDB store in, which must be refused with
/// `bad-request`; the refusal's message.
async fn refused_move(name: &str) -> String {
    let refused = Store::open(name.into(), Some(import_options()))
        .await
        .err()
        .unwrap();
    assert_eq!(code(&refused), "bad-request");
    Reflect::get(&refused, &"message".into())
        .unwrap()
        .as_string()
        .unwrap()
}

/// Whether the store `name` on `storage` holds the live record notes/`id`.
async fn holds(name: &str, storage: StorageKind, id: &str) -> bool {
    let (db, _) = Storage::open(name, storage).await.unwrap();
    let (notes, id) = names("notes", id);
    let found = db.get(&notes, &id).await.unwrap().is_some();
    db.close();
    found
}

#[wasm_bindgen_test]
async fn a_store_moves_from_indexeddb_with_its_records_cursors_and_identity() {
    gone("t-move").await;
    // More records than the move's first pages (8, 16, ... rows), an edited one and a
    // deleted one (its tombstone moves too), and a peer's cursor.
    let ids: Vec<String> = (0..300).map(|i| format!("n{i:03}")).collect();
    let db = indexeddb_store(
        "t-move",
        &ids.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .await;
    let (notes, n0) = names("notes", "n000");
    let (_, n1) = names("notes", "n001");
    let edit = Intent::Patch(object(r#"{"edited": true}"#));
    write(&db, &notes, &n0, &edit, 400).await.unwrap();
    write(&db, &notes, &n1, &Intent::Delete, 401).await.unwrap();
    let cursor = SyncCursor::complete(DbVersion(42));
    db.apply("peer-a", &[], Some(cursor), 402).await.unwrap();
    let before = db.meta().await.unwrap();
    let n0_before = db.get(&notes, &n0).await.unwrap();
    db.close();
    assert!(indexeddb_exists("t-move").await);

    let store = Store::open("t-move".into(), Some(import_options()))
        .await
        .unwrap();
    assert_eq!(store.site(), before.site.to_string(), "the same identity");
    assert_eq!(
        resolve(store.version()).await.unwrap().as_f64(),
        Some(before.version.0 as f64),
        "the same log head"
    );
    assert!(
        !indexeddb_exists("t-move").await,
        "the IndexedDB copy is deleted"
    );
    // Writing goes on from the moved log head.
    let api = store.collection("notes").unwrap();
    resolve(api.put("late".into(), js_sys::JSON::parse(r#"{"n":-1}"#).unwrap()))
        .await
        .unwrap();
    resolve(store.close()).await.unwrap();

    let (db, meta) = Storage::open("t-move", StorageKind::Opfs).await.unwrap();
    assert_eq!(meta.site, before.site);
    assert_eq!(meta.seed, before.seed);
    assert_eq!(meta.version.0, before.version.0 + 1);
    assert_eq!(db.get(&notes, &n0).await.unwrap(), n0_before);
    assert_eq!(db.get(&notes, &n1).await.unwrap(), None, "still deleted");
    let (_, last) = names("notes", "n299");
    assert_eq!(
        db.get(&notes, &last).await.unwrap().as_deref(),
        Some(r#"{"n":299}"#)
    );
    let page = db.list(&notes, "", None, 1000).await.unwrap();
    assert_eq!(
        page.records.len(),
        300,
        "299 moved and alive, and the late one"
    );
    assert_eq!(db.cursor("peer-a").await.unwrap(), cursor.durable());
    // The deleted record's tombstone moved: a peer catching up from the
    // start hears of the delete.
    let (collection, id) = names("notes", "n001");
    let rows = db.rows_of(&collection, &[id]).await.unwrap();
    assert!(rows[0].is_some(), "the tombstone's row is there");
    db.close();

    // Opened again with the option: nothing left to move, nothing changed.
    let store = Store::open("t-move".into(), Some(import_options()))
        .await
        .unwrap();
    assert_eq!(
        resolve(store.version()).await.unwrap().as_f64(),
        Some((before.version.0 + 1) as f64)
    );
    resolve(store.close()).await.unwrap();
}

/// An IndexedDB store `name` again, as the move left it or written since:
/// its metadata `meta`, then a write of each of `ids`.
async fn indexeddb_store_as(name: &str, meta: &shoal_web::meta::NodeMeta, ids: &[&str]) {
    let db = indexeddb_store(name, &[]).await;
    let Storage::Idb(idb) = &db else {
        unreachable!()
    };
    {
        use shoal_web::idb::{request, schema, tx};
        let t = tx::write(idb, &[schema::META]).unwrap();
        tx::store(&t, schema::META)
            .unwrap()
            .put_with_key(&meta.encode().into(), &schema::NODE_KEY.into())
            .unwrap();
        request::completed(&t).await.unwrap();
    }
    for id in ids {
        let (notes, id) = names("notes", id);
        write(&db, &notes, &id, &Intent::Put(object("{}")), 900)
            .await
            .unwrap();
    }
    db.close();
}

#[wasm_bindgen_test]
async fn a_move_stopped_after_its_commit_deletes_the_old_copy_unless_it_was_written_since() {
    gone("t-move-again").await;
    let db = indexeddb_store("t-move-again", &["a", "b"]).await;
    let moved_meta = db.meta().await.unwrap();
    db.close();
    let store = Store::open("t-move-again".into(), Some(import_options()))
        .await
        .unwrap();
    resolve(store.close()).await.unwrap();

    // As if the tab had stopped between the commit and the delete: the
    // IndexedDB store is there again as it was moved. The next open only
    // deletes it.
    indexeddb_store_as("t-move-again", &moved_meta, &[]).await;
    let store = Store::open("t-move-again".into(), Some(import_options()))
        .await
        .unwrap();
    assert!(!indexeddb_exists("t-move-again").await);
    let notes = store.collection("notes").unwrap();
    assert!(!resolve(notes.get("b".into())).await.unwrap().is_null());
    resolve(store.close()).await.unwrap();

    // And written since (an older version of the app opened it again): two
    // stores with writes of one identity. Refused, both kept.
    indexeddb_store_as("t-move-again", &moved_meta, &["c"]).await;
    let message = refused_move("t-move-again").await;
    assert!(message.contains("written after it was moved"), "{message}");
    assert!(indexeddb_exists("t-move-again").await);
    assert!(holds("t-move-again", StorageKind::IndexedDb, "c").await);
    assert!(!holds("t-move-again", StorageKind::Opfs, "c").await);
    assert!(holds("t-move-again", StorageKind::Opfs, "a").await);
}

#[wasm_bindgen_test]
async fn a_move_that_fails_midway_leaves_both_stores_as_they_were() {
    gone("t-move-fails").await;
    let ids: Vec<String> = (0..40).map(|i| format!("n{i:02}")).collect();
    let db = indexeddb_store(
        "t-move-fails",
        &ids.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .await;
    // A row past the first pages that cannot be read (no state), as if the
    // database had been altered outside Shoal.
    damage(&db, "notes/n35x", Damage::Row).await;
    db.close();

    let failed = Store::open("t-move-fails".into(), Some(import_options()))
        .await
        .err()
        .unwrap();
    assert_eq!(code(&failed), "internal");
    assert!(indexeddb_exists("t-move-fails").await, "the source is kept");
    let (db, meta) = Storage::open("t-move-fails", StorageKind::Opfs)
        .await
        .unwrap();
    assert_eq!(meta.version, DbVersion(0), "nothing of the move committed");
    let (notes, _) = names("notes", "n00");
    assert!(
        db.list(&notes, "", None, 100)
            .await
            .unwrap()
            .records
            .is_empty()
    );
    // The store works: the rolled-back transaction left nothing open.
    let (_, fresh) = names("notes", "fresh");
    write(&db, &notes, &fresh, &Intent::Put(object("{}")), 7)
        .await
        .unwrap();
    assert_eq!(db.meta().await.unwrap().version, DbVersion(1));
    db.close();
}

#[wasm_bindgen_test]
async fn a_move_into_an_opfs_store_with_other_data_is_refused_and_keeps_both() {
    gone("t-move-refused").await;
    let (db, _) = Storage::open("t-move-refused", StorageKind::Opfs)
        .await
        .unwrap();
    let (notes, mine) = names("notes", "opfs-only");
    write(&db, &notes, &mine, &Intent::Put(object("{}")), 5)
        .await
        .unwrap();
    db.close();
    indexeddb_store("t-move-refused", &["idb-only"])
        .await
        .close();

    let message = refused_move("t-move-refused").await;
    assert!(message.contains("already holds other data"), "{message}");
    // Both stores as they were, and the name's lock released.
    assert!(indexeddb_exists("t-move-refused").await);
    assert!(holds("t-move-refused", StorageKind::IndexedDb, "idb-only").await);
    assert!(holds("t-move-refused", StorageKind::Opfs, "opfs-only").await);
    assert!(!holds("t-move-refused", StorageKind::Opfs, "idb-only").await);
    let store = Store::open("t-move-refused".into(), Some(options(false)))
        .await
        .unwrap();
    resolve(store.close()).await.unwrap();
}

#[wasm_bindgen_test]
async fn import_from_is_checked_and_without_an_indexeddb_store_moves_nothing() {
    gone("t-move-none").await;
    let bad = |storage: &str, from: &str| {
        let options = js_sys::Object::new();
        Reflect::set(&options, &"storage".into(), &storage.into()).unwrap();
        Reflect::set(&options, &"importFrom".into(), &from.into()).unwrap();
        JsValue::from(options)
    };
    for (storage, from) in [("indexeddb", "indexeddb"), ("opfs", "localStorage")] {
        let error = Store::open("t-move-none".into(), Some(bad(storage, from)))
            .await
            .err()
            .unwrap();
        assert_eq!(code(&error), "bad-request", "{storage} from {from}");
    }
    let store = Store::open("t-move-none".into(), Some(import_options()))
        .await
        .unwrap();
    assert_eq!(resolve(store.version()).await.unwrap().as_f64(), Some(0.0));
    resolve(store.close()).await.unwrap();
    assert!(
        !indexeddb_exists("t-move-none").await,
        "no IndexedDB store was made"
    );
}

// The node metadata (src/sql/head.rs): a local write stores none — its rows
// carry the log head and the clock — and a merge stores it as the mark of
// the highest clock seen.

/// The node metadata's stored text.
fn stored_meta(db: &Storage) -> String {
    let Storage::Sql(db) = db else {
        panic!("an OPFS store")
    };
    db.with(|c| shoal_web::sql::meta_rows::meta_text(c, shoal_web::sql::meta_rows::NODE_KEY))
        .unwrap()
        .unwrap()
}

#[wasm_bindgen_test]
async fn a_local_write_stores_no_metadata_and_a_reopen_takes_the_head_from_the_rows() {
    let db = fresh("t-head-local").await;
    let created = stored_meta(&db);
    let (notes, _) = names("notes", "n0");
    for i in 0..5u64 {
        let id = RecordId::new(format!("n{i}")).unwrap();
        let put = Intent::Put(object(r#"{"title": "a"}"#));
        write(&db, &notes, &id, &put, 1_000 + i)
            .await
            .unwrap()
            .unwrap();
    }
    assert_eq!(stored_meta(&db), created, "no put stored the metadata");
    let meta = db.meta().await.unwrap();
    assert_eq!((meta.version, meta.hlc.wall_ms()), (DbVersion(5), 1_004));
    db.close();

    // The head comes back from the newest row: the log goes on from it and
    // the clock stays above it with the wall clock behind.
    let (db, _) = Storage::open("t-head-local", STORAGE).await.unwrap();
    let meta = db.meta().await.unwrap();
    assert_eq!((meta.version, meta.hlc.wall_ms()), (DbVersion(5), 1_004));
    let id = RecordId::new("n0").unwrap();
    let patch = Intent::Patch(object(r#"{"title": "b"}"#));
    let next = write(&db, &notes, &id, &patch, 10).await.unwrap().unwrap();
    assert_eq!(next.version, DbVersion(6));
    assert!(db.meta().await.unwrap().hlc > meta.hlc);
    db.close();
}

#[wasm_bindgen_test]
async fn a_merged_clock_above_the_newest_rows_is_kept_over_a_reopen() {
    let peer = fresh("t-head-peer").await;
    let db = fresh("t-head-merge").await;
    let (notes, old) = names("notes", "old");
    let far = RecordId::new("far").unwrap();
    let put = Intent::Put(object(r#"{"title": "a"}"#));
    // The peer's clock runs far ahead; its older change is written first.
    write(&peer, &notes, &old, &put, 500)
        .await
        .unwrap()
        .unwrap();
    write(&peer, &notes, &far, &put, 9_000_000)
        .await
        .unwrap()
        .unwrap();
    let echoes = shoal_web::sync::echo::EchoLog::default();
    let read = peer
        .read_for_peer("t", SyncCursor::default(), 100, 1 << 20, &echoes)
        .await
        .unwrap();
    let (of_far, of_old): (Vec<_>, Vec<_>) = read.changes.into_iter().partition(|c| c.id == far);
    // Merged here in two batches: the far one, then the older one, whose
    // row is then the newest but holds the older clock.
    db.apply("peer", &of_far, None, 9_000_000).await.unwrap();
    db.apply("peer", &of_old, None, 9_000_000).await.unwrap();
    db.close();

    let (db, _) = Storage::open("t-head-merge", STORAGE).await.unwrap();
    let meta = db.meta().await.unwrap();
    assert_eq!(meta.version, DbVersion(2));
    assert_eq!(meta.hlc.wall_ms(), 9_000_000, "the clock seen is kept");
    let (_, mine) = names("notes", "mine");
    let written = write(&db, &notes, &mine, &put, 1_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(written.version, DbVersion(3));
    assert!(
        db.meta().await.unwrap().hlc > meta.hlc,
        "the next clock is above it"
    );
    db.close();
    peer.close();
}

#[wasm_bindgen_test]
async fn a_newest_row_that_does_not_read_takes_no_clock_back_over_a_reopen() {
    let db = fresh("t-head-damaged").await;
    let (notes, a) = names("notes", "a");
    let put = Intent::Put(object(r#"{"title": "a"}"#));
    write(&db, &notes, &a, &put, 5_000).await.unwrap().unwrap();
    let issued = db.meta().await.unwrap().hlc;
    // The newest row (version 7) altered outside Shoal: its state does not
    // read, so its clock is lost; the put's row before it still has one.
    damage(&db, "notes/zz", Damage::State).await;
    db.close();

    let (db, _) = Storage::open("t-head-damaged", STORAGE).await.unwrap();
    let meta = db.meta().await.unwrap();
    assert_eq!(meta.version, DbVersion(7));
    assert!(meta.hlc >= issued, "the put's clock is still known");
    let b = RecordId::new("b").unwrap();
    let written = write(&db, &notes, &b, &put, 5_000).await.unwrap().unwrap();
    assert_eq!(written.version, DbVersion(8));
    assert!(
        db.meta().await.unwrap().hlc > issued,
        "no clock issued twice"
    );
    db.close();
}
