//! The JavaScript `Collection`: put, create, patch, delete, get, list (a
//! page at a time), map set and remove. Each write's promise resolves only
//! once the durable transaction holding it is complete (IndexedDB's or
//! SQLite's, storage.rs; writes made together share one, write_queue.rs);
//! subscribers hear of it after that. Values cross as JSON text
//! (`JSON.stringify` / `JSON.parse`), so what JSON can say is what a record
//! holds, exactly as over the HTTP API. It owns argument handling only.

use crate::error::WebError;
use crate::js_error;
use crate::page::{MAX_PAGE, Page};
use crate::store_inner::Inner;
use crate::write_batch::WriteRequest;
use crate::write_queue::WriteQueue;
use js_sys::{Array, Promise, Reflect};
use serde_json::{Map, Value};
use shoal_core::{CollectionName, CoreError, FieldName, Intent, RecordId};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

/// Records per page when `limit` is not given.
const DEFAULT_PAGE: u32 = 100;

/// One collection of an open store.
#[wasm_bindgen]
pub struct Collection {
    inner: Rc<Inner>,
    name: CollectionName,
}

impl Collection {
    pub(crate) fn new(inner: Rc<Inner>, name: CollectionName) -> Self {
        Collection { inner, name }
    }

    /// Runs one write (through the store's write queue, which lets writes
    /// made together share a transaction) and answers a `WriteResult`.
    fn write(&self, id: String, intent: Result<Intent, WebError>) -> Promise {
        let inner = self.inner.clone();
        let collection = self.name.clone();
        future_to_promise(async move {
            let outcome = async {
                let write = WriteRequest {
                    collection,
                    id: RecordId::new(id)?,
                    intent: intent?,
                };
                WriteQueue::write(&inner, write).await
            };
            let committed = outcome.await.map_err(|e| js_error::to_js(&e))?;
            let result = js_sys::Object::new();
            let _ = Reflect::set(&result, &"changed".into(), &committed.is_some().into());
            let version = committed.map(|c| c.version.0 as f64);
            let _ = Reflect::set(&result, &"version".into(), &version.into());
            Ok(result.into())
        })
    }
}

#[wasm_bindgen]
impl Collection {
    /// The collection's name.
    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        self.name.as_str().to_string()
    }

    /// Makes the record exactly `value` (creating it, or a new life of a deleted one).
    #[wasm_bindgen(unchecked_return_type = "Promise<WriteResult>")]
    pub fn put(
        &self,
        id: String,
        #[wasm_bindgen(unchecked_param_type = "Fields")] value: JsValue,
    ) -> Promise {
        self.write(id, fields(&value).map(Intent::Put))
    }

    /// Creates the record; rejects with `already-exists` if it is alive.
    #[wasm_bindgen(unchecked_return_type = "Promise<WriteResult>")]
    pub fn create(
        &self,
        id: String,
        #[wasm_bindgen(unchecked_param_type = "Fields")] value: JsValue,
    ) -> Promise {
        self.write(id, fields(&value).map(Intent::Create))
    }

    /// Changes only the given fields (`null` removes one); rejects with
    /// `not-found` if the record is not alive.
    #[wasm_bindgen(unchecked_return_type = "Promise<WriteResult>")]
    pub fn patch(
        &self,
        id: String,
        #[wasm_bindgen(unchecked_param_type = "Fields")] value: JsValue,
    ) -> Promise {
        self.write(id, fields(&value).map(Intent::Patch))
    }

    /// Deletes the record; rejects with `not-found` if it is not alive.
    #[wasm_bindgen(unchecked_return_type = "Promise<WriteResult>")]
    pub fn delete(&self, id: String) -> Promise {
        self.write(id, Ok(Intent::Delete))
    }

    /// Sets one entry of the map field `field` (entries merge one by one).
    #[wasm_bindgen(js_name = mapSet, unchecked_return_type = "Promise<WriteResult>")]
    pub fn map_set(
        &self,
        id: String,
        field: String,
        key: String,
        #[wasm_bindgen(unchecked_param_type = "Json")] value: JsValue,
    ) -> Promise {
        let intent = FieldName::new(field)
            .map_err(WebError::from)
            .and_then(|field| Ok((field, json(&value)?)))
            .map(|(field, value)| Intent::MapSet { field, key, value });
        self.write(id, intent)
    }

    /// Removes one entry of the map field `field` (a tombstone).
    #[wasm_bindgen(js_name = mapRemove, unchecked_return_type = "Promise<WriteResult>")]
    pub fn map_remove(&self, id: String, field: String, key: String) -> Promise {
        let intent = FieldName::new(field)
            .map_err(WebError::from)
            .map(|field| Intent::MapRemove { field, key });
        self.write(id, intent)
    }

    /// The record, or `null` if it does not exist or is deleted.
    #[wasm_bindgen(unchecked_return_type = "Promise<Fields | null>")]
    pub fn get(&self, id: String) -> Promise {
        let inner = self.inner.clone();
        let collection = self.name.clone();
        future_to_promise(async move {
            let outcome = async {
                let id = RecordId::new(id)?;
                inner.db()?.get(&collection, &id).await
            };
            match outcome.await.map_err(|e| js_error::to_js(&e))? {
                Some(text) => js_sys::JSON::parse(&text),
                None => Ok(JsValue::NULL),
            }
        })
    }

    /// One page of live records in id order.
    #[wasm_bindgen(unchecked_return_type = "Promise<Page>")]
    pub fn list(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ListOptions")] options: Option<JsValue>,
    ) -> Promise {
        let options = options.unwrap_or(JsValue::UNDEFINED);
        let inner = self.inner.clone();
        let collection = self.name.clone();
        let option = |key: &str| {
            Reflect::get(&options, &key.into())
                .ok()
                .filter(|v| !v.is_undefined() && !v.is_null())
        };
        let prefix = option("prefix")
            .and_then(|p| p.as_string())
            .unwrap_or_default();
        let after = option("after").map(|a| a.as_string().unwrap_or_default());
        let limit = option("limit").map(|l| l.as_f64().unwrap_or(0.0));
        future_to_promise(async move {
            let outcome = async {
                let after = after.map(RecordId::new).transpose()?;
                let limit = match limit {
                    None => DEFAULT_PAGE,
                    Some(l) if l.fract() == 0.0 && (1.0..=f64::from(MAX_PAGE)).contains(&l) => {
                        l as u32
                    }
                    Some(l) => {
                        return Err(WebError::BadRequest(format!(
                            "limit must be a whole number from 1 to {}, got {l}",
                            MAX_PAGE
                        )));
                    }
                };
                inner
                    .db()?
                    .list(&collection, &prefix, after.as_ref(), limit)
                    .await
            };
            let page = outcome.await.map_err(|e| js_error::to_js(&e))?;
            page_to_js(&page)
        })
    }
}

/// A `Page` object.
fn page_to_js(page: &Page) -> Result<JsValue, JsValue> {
    let records = Array::new();
    for (id, text) in &page.records {
        let record = js_sys::Object::new();
        Reflect::set(&record, &"id".into(), &id.into())?;
        Reflect::set(&record, &"value".into(), &js_sys::JSON::parse(text)?)?;
        records.push(&record);
    }
    let object = js_sys::Object::new();
    Reflect::set(&object, &"records".into(), &records)?;
    let next = page
        .next
        .as_deref()
        .map(JsValue::from)
        .unwrap_or(JsValue::NULL);
    Reflect::set(&object, &"next".into(), &next)?;
    Ok(object.into())
}

/// A JavaScript value as JSON (what `JSON.stringify` makes of it).
fn json(value: &JsValue) -> Result<Value, WebError> {
    let text = js_sys::JSON::stringify(value)
        .ok()
        .and_then(|t| t.as_string())
        .ok_or_else(|| {
            WebError::Invalid(CoreError::InvalidJson(
                "the value is not JSON (undefined, a function, a BigInt or a cycle)".into(),
            ))
        })?;
    serde_json::from_str(&text)
        .map_err(|e| WebError::Invalid(CoreError::InvalidJson(e.to_string())))
}

/// A record's fields: a JSON object.
fn fields(value: &JsValue) -> Result<Map<String, Value>, WebError> {
    match json(value)? {
        Value::Object(map) => Ok(map),
        other => Err(CoreError::NotAnObject {
            got: match other {
                Value::Null => "null",
                Value::Bool(_) => "a boolean",
                Value::Number(_) => "a number",
                Value::String(_) => "a string",
                Value::Array(_) => "an array",
                Value::Object(_) => "an object",
            },
        }
        .into()),
    }
}
