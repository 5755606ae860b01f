//! One owner per store across the tabs of an origin, by the Web Locks API:
//! opening a store takes the exclusive lock `shoal-web:<name>` and holds it
//! until the store is closed or the tab goes away (the browser releases a
//! dead tab's locks). A second tab is told `store-busy` at once, or, asked
//! to wait, gets the store when the first lets go.
//!
//! One owner (rather than sharing) because the tab will be a full peer:
//! its sync state (cursors, the live session) belongs to one owner, and a
//! write decided in memory must not race another tab's. This module owns the
//! lock only.

use crate::error::WebError;
use futures_channel::oneshot;
use js_sys::{Function, Object, Promise, Reflect};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen]
extern "C" {
    /// `navigator.locks` (web-sys marks it unstable, so it is bound here).
    type LockManager;
    #[wasm_bindgen(method, js_name = request)]
    fn request(this: &LockManager, name: &str, options: &Object, callback: &JsValue) -> Promise;
}

/// The held lock of one store; [`Ownership::release`] (or dropping it) lets
/// the next tab in.
pub struct Ownership {
    /// Settles the promise the lock is held by.
    release: Function,
    /// The lock request's own promise: settles once the lock is released.
    released: Promise,
}

impl Ownership {
    /// Releases the lock and resolves once it is released (the release
    /// itself takes a turn of the event loop, so only after this does an
    /// `ifAvailable` request elsewhere get the lock).
    pub async fn release(self) {
        let _ = self.release.call0(&JsValue::NULL);
        let _ = JsFuture::from(self.released.clone()).await;
    }
}

impl Drop for Ownership {
    fn drop(&mut self) {
        let _ = self.release.call0(&JsValue::NULL);
    }
}

/// Takes the lock of the store `name`: at once or [`WebError::StoreBusy`],
/// or, with `wait`, once every earlier owner has released it.
pub async fn acquire(name: &str, wait: bool) -> Result<Ownership, WebError> {
    let locks = Reflect::get(&js_sys::global(), &"navigator".into())
        .and_then(|n| Reflect::get(&n, &"locks".into()))
        .ok()
        .filter(|l| !l.is_undefined())
        .ok_or_else(|| {
            WebError::Storage(
                "the Web Locks API is not available (it needs a secure context: https or localhost)"
                    .into(),
            )
        })?
        .unchecked_into::<LockManager>();
    let (granted, answer) = oneshot::channel::<Option<Function>>();
    let granted = Rc::new(RefCell::new(Some(granted)));
    let callback = Closure::once_into_js(move |lock: JsValue| -> JsValue {
        let Some(granted) = granted.borrow_mut().take() else {
            return JsValue::UNDEFINED;
        };
        if lock.is_null() {
            let _ = granted.send(None);
            return JsValue::UNDEFINED;
        }
        // The lock is held until this promise settles: its resolve is the release.
        let mut release = None;
        let held = Promise::new(&mut |resolve, _| release = Some(resolve));
        let _ = granted.send(release);
        held.into()
    });
    let options = Object::new();
    let _ = Reflect::set(&options, &"mode".into(), &"exclusive".into());
    let _ = Reflect::set(&options, &"ifAvailable".into(), &JsValue::from_bool(!wait));
    let released = locks.request(&format!("shoal-web:{name}"), &options, &callback);
    match answer.await {
        Ok(Some(release)) => Ok(Ownership { release, released }),
        Ok(None) => Err(WebError::StoreBusy(name.to_string())),
        Err(_) => Err(WebError::Storage("the lock request was dropped".into())),
    }
}
