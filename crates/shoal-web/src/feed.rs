//! The change subscription: callbacks told of every committed write — a
//! local one or a merge of a peer's changes — after its transaction
//! completed (so a callback never sees a change that could still be rolled
//! back). It owns the subscriber list and the `Change` object's shape.

use js_sys::Reflect;
use shoal_core::{CollectionName, DbVersion, RecordId};
use std::cell::RefCell;
use wasm_bindgen::prelude::*;

/// A `Change` object for subscribers: `{collection, id, version, value}`,
/// `value` the record's JSON text parsed, `null` for a delete.
pub fn change_object(
    collection: &CollectionName,
    id: &RecordId,
    version: DbVersion,
    value: Option<&str>,
) -> JsValue {
    let object = js_sys::Object::new();
    let _ = Reflect::set(&object, &"collection".into(), &collection.as_str().into());
    let _ = Reflect::set(&object, &"id".into(), &id.as_str().into());
    let _ = Reflect::set(&object, &"version".into(), &(version.0 as f64).into());
    let value = match value {
        Some(text) => js_sys::JSON::parse(text).unwrap_or(JsValue::NULL),
        None => JsValue::NULL,
    };
    let _ = Reflect::set(&object, &"value".into(), &value);
    object.into()
}

/// The subscribers of one open store.
#[derive(Default)]
pub struct Feed {
    next: RefCell<u32>,
    subscribers: RefCell<Vec<(u32, js_sys::Function)>>,
}

impl Feed {
    /// Adds `callback`; the number removes it again.
    pub fn subscribe(&self, callback: js_sys::Function) -> u32 {
        let mut next = self.next.borrow_mut();
        *next += 1;
        self.subscribers.borrow_mut().push((*next, callback));
        *next
    }

    /// Removes a subscriber (idempotent).
    pub fn unsubscribe(&self, number: u32) {
        self.subscribers.borrow_mut().retain(|(n, _)| *n != number);
    }

    /// Calls every subscriber with `change`; one that throws does not stop the others.
    pub fn publish(&self, change: &JsValue) {
        let subscribers: Vec<js_sys::Function> = self
            .subscribers
            .borrow()
            .iter()
            .map(|(_, f)| f.clone())
            .collect();
        for callback in subscribers {
            let _ = callback.call1(&JsValue::NULL, change);
        }
    }
}
