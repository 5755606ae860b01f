//! The JavaScript shape of stored rows: a record row `{k, c, v, s}` and the
//! metadata and cursor texts, built and read back here so no other file
//! spells a property name. It opens no transaction.

use crate::error::WebError;
use js_sys::{Object, Reflect};
use shoal_core::{CollectionName, DbVersion, RecordId};
use wasm_bindgen::prelude::*;

/// One stored record row.
pub struct RecordRow {
    /// Its key, `collection/id` (`keys::record_key`).
    pub key: String,
    /// The record's collection.
    pub collection: String,
    /// The record id.
    pub id: String,
    /// Its change-log position.
    pub version: DbVersion,
    /// Its state text (row.rs).
    pub state: String,
}

thread_local! {
    /// The property names `k`, `c`, `v`, `s` as JavaScript strings, made
    /// once: a catch-up builds and reads thousands of rows at a time.
    static NAMES: [JsValue; 4] = ["k", "c", "v", "s"].map(JsValue::from_str);
}

/// The row object to `put` for a record.
pub fn to_js(
    collection: &CollectionName,
    id: &RecordId,
    version: DbVersion,
    state: &str,
) -> Object {
    let object = Object::new();
    NAMES.with(|[k, c, v, s]| {
        let set = |key: &JsValue, value: JsValue| {
            let _ = Reflect::set(&object, key, &value);
        };
        set(k, crate::keys::record_key(collection, id).into());
        set(c, collection.as_str().into());
        // Versions count transactions: far below 2^53, exact as a JS number.
        set(v, (version.0 as f64).into());
        set(s, state.into());
    });
    object
}

/// A stored row object back (`None` for `undefined`: no such record).
pub fn from_js(value: &JsValue) -> Result<Option<RecordRow>, WebError> {
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    let (key, version, state) = NAMES.with(|[k, _, v, s]| {
        let get = |name: &JsValue| Reflect::get(value, name).ok();
        (
            get(k).and_then(|k| k.as_string()),
            get(v).and_then(|v| v.as_f64()),
            get(s).and_then(|s| s.as_string()),
        )
    });
    match (key, version, state) {
        (Some(key), Some(version), Some(state)) => Ok(Some(RecordRow {
            collection: key
                .split_once('/')
                .map(|(c, _)| c)
                .unwrap_or_default()
                .to_string(),
            id: crate::keys::id_of_key(&key).unwrap_or_default().to_string(),
            key,
            version: DbVersion(version as u64),
            state,
        })),
        _ => Err(WebError::Corrupt("a record row lacks k, v or s".into())),
    }
}

/// A stored text value (metadata, cursor), `None` when absent.
pub fn text(value: &JsValue) -> Result<Option<String>, WebError> {
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    value
        .as_string()
        .map(Some)
        .ok_or_else(|| WebError::Corrupt("a stored value is not text".into()))
}
