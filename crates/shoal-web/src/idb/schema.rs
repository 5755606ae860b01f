//! The browser store's IndexedDB schema and opening it: the database
//! `shoal:<name>` with three object stores —
//!
//! - `records`: one row per record, `{k: "collection/id", c: collection,
//!   v: db_version of its last change, s: its state (row.rs)}`, keyed by `k`,
//!   with the index `by_version` on `v`: "records changed since version v" in
//!   log order, as the native store's change log serves catch-up;
//! - `meta`: the node metadata (meta.rs) under the key `node`;
//! - `cursors`: each peer's catch-up cursor (`SyncCursor`), keyed by peer id,
//!   persisted like the native `peer_cursors` table.
//!
//! A new schema version adds an `upgrade_*` step here. This module owns the
//! layout; it reads and writes no rows.

use crate::error::WebError;
use crate::idb::request::{classify, result};
use js_sys::Reflect;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{
    IdbDatabase, IdbFactory, IdbIndexParameters, IdbObjectStoreParameters, IdbOpenDbRequest,
};

/// The records store.
pub const RECORDS: &str = "records";
/// The index of `records` by change-log position.
pub const BY_VERSION: &str = "by_version";
/// The metadata store.
pub const META: &str = "meta";
/// The key of the node metadata in `meta`.
pub const NODE_KEY: &str = "node";
/// The catch-up cursors store.
pub const CURSORS: &str = "cursors";
/// The schema version this build writes.
const VERSION: u32 = 1;

/// The IndexedDB database name of the store `name`.
pub fn database_name(name: &str) -> String {
    format!("shoal:{name}")
}

/// The browser's IndexedDB factory (in a window or a worker).
pub(crate) fn factory() -> Result<IdbFactory, WebError> {
    Reflect::get(&js_sys::global(), &"indexedDB".into())
        .ok()
        .and_then(|f| f.dyn_into::<IdbFactory>().ok())
        .ok_or_else(|| WebError::Storage("IndexedDB is not available here".into()))
}

/// Opens (creating or upgrading) the database of the store `name`.
pub async fn open(name: &str) -> Result<IdbDatabase, WebError> {
    let request: IdbOpenDbRequest = factory()?
        .open_with_u32(&database_name(name), VERSION)
        .map_err(|e| classify(&e))?;
    let upgrade = Closure::<dyn FnMut(web_sys::IdbVersionChangeEvent)>::new({
        let request = request.clone();
        move |event: web_sys::IdbVersionChangeEvent| {
            if let Ok(db) = request.result().and_then(|r| r.dyn_into::<IdbDatabase>()) {
                // A failure here aborts the upgrade, and the open fails with it.
                let _ = upgrade(&db, event.old_version() as u32);
            }
        }
    });
    request.set_onupgradeneeded(Some(upgrade.as_ref().unchecked_ref()));
    let db = result(&request).await;
    request.set_onupgradeneeded(None);
    drop(upgrade);
    let db: IdbDatabase = db?
        .dyn_into()
        .map_err(|_| WebError::Storage("open did not give a database".into()))?;
    // Another tab upgrading the schema asks us to step aside: close (later
    // calls fail with a storage error) instead of blocking that tab.
    let closing = Closure::<dyn FnMut()>::new({
        let db = db.clone();
        move || db.close()
    });
    db.set_onversionchange(Some(closing.as_ref().unchecked_ref()));
    closing.forget();
    Ok(db)
}

/// Creates what versions after `old` add.
fn upgrade(db: &IdbDatabase, old: u32) -> Result<(), JsValue> {
    if old < 1 {
        let params = IdbObjectStoreParameters::new();
        params.set_key_path(&"k".into());
        let records = db.create_object_store_with_optional_parameters(RECORDS, &params)?;
        let index = IdbIndexParameters::new();
        index.set_unique(false);
        records.create_index_with_str_and_optional_parameters(BY_VERSION, "v", &index)?;
        db.create_object_store(META)?;
        db.create_object_store(CURSORS)?;
    }
    Ok(())
}

/// Deletes the database of the store `name` (tests, and a user's "forget").
pub async fn delete(name: &str) -> Result<(), WebError> {
    let request = factory()?
        .delete_database(&database_name(name))
        .map_err(|e| classify(&e))?;
    result(&request).await.map(|_| ())
}
