//! Opening transactions: read-only ones, and read-write ones with
//! `durability: "strict"`, so that `complete` fires only once the browser has
//! flushed the data to disk. (Chrome's default is `"relaxed"`, which
//! completes before the flush: a power cut could then lose an acknowledged
//! write.) It owns the transaction options only.

use crate::error::WebError;
use crate::idb::request::classify;
use js_sys::{Array, Object, Reflect};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{IdbDatabase, IdbObjectStore, IdbTransaction, IdbTransactionMode};

#[wasm_bindgen]
extern "C" {
    /// An `IDBDatabase` seen through the binding below.
    type DatabaseWithOptions;
    /// `IDBDatabase.transaction(names, mode, options)`: web-sys marks the
    /// options dictionary unstable, so it is bound here.
    #[wasm_bindgen(method, catch, js_name = transaction)]
    fn transaction_with_options(
        this: &DatabaseWithOptions,
        names: &Array,
        mode: &str,
        options: &Object,
    ) -> Result<IdbTransaction, JsValue>;
}

/// A read-only transaction over `stores`.
pub fn read(db: &IdbDatabase, stores: &[&str]) -> Result<IdbTransaction, WebError> {
    db.transaction_with_str_sequence_and_mode(&names(stores), IdbTransactionMode::Readonly)
        .map_err(|e| classify(&e))
}

/// A read-write transaction over `stores` that completes only when durable.
pub fn write(db: &IdbDatabase, stores: &[&str]) -> Result<IdbTransaction, WebError> {
    let options = Object::new();
    let _ = Reflect::set(&options, &"durability".into(), &"strict".into());
    db.unchecked_ref::<DatabaseWithOptions>()
        .transaction_with_options(&names(stores), "readwrite", &options)
        .map_err(|e| classify(&e))
}

/// One object store of `tx`.
pub fn store(tx: &IdbTransaction, name: &str) -> Result<IdbObjectStore, WebError> {
    tx.object_store(name).map_err(|e| classify(&e))
}

fn names(stores: &[&str]) -> Array {
    stores.iter().map(|s| JsValue::from_str(s)).collect()
}
