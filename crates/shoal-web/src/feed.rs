//! The change subscription: callbacks told of every committed write, after
//! its transaction completed (so a callback never sees a change that could
//! still be rolled back). It owns the subscriber list only.

use std::cell::RefCell;
use wasm_bindgen::prelude::*;

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
