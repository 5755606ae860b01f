//! Reading an IndexedDB store out whole, for moving it to another storage
//! (`import.rs`): whether the store's database exists at all, its record
//! rows a bounded page at a time in key order, and its catch-up cursors.
//! Each read is one read-only transaction; it writes nothing.

use crate::cursor_text;
use crate::error::WebError;
use crate::idb::request::{classify, result};
use crate::idb::rows::{self, RecordRow};
use crate::idb::schema::{CURSORS, RECORDS, database_name, factory};
use crate::idb::tx;
use js_sys::{Array, Function, Promise, Reflect};
use shoal_core::SyncCursor;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{IdbDatabase, IdbKeyRange};

/// Whether the IndexedDB database of the store `name` exists, without
/// creating it (opening would). `None` when the browser cannot list its
/// databases (`indexedDB.databases()` is missing).
pub async fn exists(name: &str) -> Result<Option<bool>, WebError> {
    let factory = factory()?;
    let Ok(list) = Reflect::get(&factory, &"databases".into()) else {
        return Ok(None);
    };
    let Some(list) = list.dyn_ref::<Function>() else {
        return Ok(None);
    };
    let pending: Promise = list
        .call0(&factory)
        .map_err(|e| classify(&e))?
        .unchecked_into();
    let databases: Array = JsFuture::from(pending)
        .await
        .map_err(|e| classify(&e))?
        .dyn_into()
        .map_err(|_| WebError::Storage("indexedDB.databases() gave no array".into()))?;
    let wanted = database_name(name);
    Ok(Some(databases.iter().any(|info| {
        Reflect::get(&info, &"name".into())
            .ok()
            .and_then(|n| n.as_string())
            .is_some_and(|n| n == wanted)
    })))
}

/// Up to `limit` record rows after the key `after` (from the first without
/// it), in key order, and whether the page is full (there may be more).
/// The states are not decoded: a move copies them as they are.
pub async fn records_after(
    db: &IdbDatabase,
    after: Option<&str>,
    limit: u32,
) -> Result<(Vec<RecordRow>, bool), WebError> {
    let range = match after {
        Some(key) => IdbKeyRange::lower_bound_with_open(&key.into(), true)
            .map_err(|e| classify(&e))?
            .into(),
        None => JsValue::NULL,
    };
    let t = tx::read(db, &[RECORDS])?;
    let request = tx::store(&t, RECORDS)?
        .get_all_with_key_and_limit(&range, limit)
        .map_err(|e| classify(&e))?;
    let values: Array = result(&request)
        .await?
        .dyn_into()
        .map_err(|_| WebError::Storage("getAll did not give an array".into()))?;
    let full = values.length() == limit;
    let mut read = Vec::with_capacity(values.length() as usize);
    for value in values.iter() {
        read.extend(rows::from_js(&value)?);
    }
    Ok((read, full))
}

/// Every stored catch-up cursor, by peer.
pub async fn cursors(db: &IdbDatabase) -> Result<Vec<(String, SyncCursor)>, WebError> {
    let t = tx::read(db, &[CURSORS])?;
    let store = tx::store(&t, CURSORS)?;
    let keys = store.get_all_keys().map_err(|e| classify(&e))?;
    let values = store.get_all().map_err(|e| classify(&e))?;
    let keys: Array = result(&keys).await?.unchecked_into();
    let values: Array = result(&values).await?.unchecked_into();
    if keys.length() != values.length() {
        return Err(WebError::Storage(
            "the cursors' keys and values differ in number".into(),
        ));
    }
    keys.iter()
        .zip(values.iter())
        .map(|(peer, cursor)| {
            let peer = peer
                .as_string()
                .ok_or_else(|| WebError::Corrupt("a cursor's peer is not text".into()))?;
            let text = rows::text(&cursor)?
                .ok_or_else(|| WebError::Corrupt(format!("the cursor of {peer} is empty")))?;
            let cursor = cursor_text::decode(&peer, &text)?;
            Ok((peer, cursor))
        })
        .collect()
}
