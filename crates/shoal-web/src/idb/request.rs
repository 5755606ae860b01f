//! IndexedDB's callbacks as futures: a request's result, and a transaction's
//! end (`complete`, or `abort` with the transaction's error, which is where a
//! `QuotaExceededError` shows up).
//!
//! Futures resolve through promises, whose reactions run as microtasks while
//! the transaction is still active, so a transaction can await its requests
//! and keep issuing more. This module owns that bridge and the mapping of
//! DOM exceptions to [`WebError`]; it knows no object store.

use crate::error::WebError;
use js_sys::Promise;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{DomException, IdbRequest, IdbTransaction};

/// The result of `request` once it succeeds; its error as a [`WebError`] if it fails.
pub async fn result(request: &IdbRequest) -> Result<JsValue, WebError> {
    let promise = Promise::new(&mut |resolve, reject| {
        let req = request.clone();
        let on_success = Closure::once_into_js(move || {
            let _ = resolve.call1(&JsValue::NULL, &req.result().unwrap_or(JsValue::UNDEFINED));
        });
        let req = request.clone();
        let on_error = Closure::once_into_js(move || {
            let error = req.error().ok().flatten().map(JsValue::from);
            let _ = reject.call1(&JsValue::NULL, &error.unwrap_or(JsValue::UNDEFINED));
        });
        request.set_onsuccess(Some(on_success.unchecked_ref()));
        request.set_onerror(Some(on_error.unchecked_ref()));
    });
    JsFuture::from(promise).await.map_err(|e| classify(&e))
}

/// Commits `tx` and resolves once it is `complete` (durable, for a
/// transaction opened with strict durability); an aborted transaction gives
/// its error, nothing of it written.
pub async fn completed(tx: &IdbTransaction) -> Result<(), WebError> {
    let promise = Promise::new(&mut |resolve, reject| {
        let on_complete = Closure::once_into_js(move || {
            let _ = resolve.call0(&JsValue::NULL);
        });
        let t = tx.clone();
        let on_abort = Closure::once_into_js(move || {
            let error = t.error().map(JsValue::from);
            let _ = reject.call1(&JsValue::NULL, &error.unwrap_or(JsValue::UNDEFINED));
        });
        tx.set_oncomplete(Some(on_complete.unchecked_ref()));
        tx.set_onabort(Some(on_abort.unchecked_ref()));
    });
    // Every request is already placed; committing now saves a task turn.
    // (Older browsers without commit() commit on their own when idle.)
    let _ = js_sys::Reflect::get(tx, &"commit".into())
        .ok()
        .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
        .map(|commit| commit.call0(tx));
    JsFuture::from(promise)
        .await
        .map(|_| ())
        .map_err(|e| classify(&e))
}

/// A DOM exception (or any thrown value) as a [`WebError`]: a
/// `QuotaExceededError` is [`WebError::QuotaExceeded`], the rest storage errors.
pub fn classify(error: &JsValue) -> WebError {
    match error.dyn_ref::<DomException>() {
        Some(e) if e.name() == "QuotaExceededError" => WebError::QuotaExceeded(e.message()),
        Some(e) => WebError::Storage(format!("{}: {}", e.name(), e.message())),
        None if error.is_undefined() || error.is_null() => {
            WebError::Storage("the transaction was aborted".into())
        }
        None => WebError::Storage(
            error
                .as_string()
                .or_else(|| js_sys::JSON::stringify(error).ok().map(String::from))
                .unwrap_or_else(|| "unknown error".into()),
        ),
    }
}
