//! A [`WebError`] as the JavaScript value a promise rejects with: an `Error`
//! named `ShoalError` whose `code` is the stable machine code (the HTTP
//! API's, see error.rs) and whose `message` is for people. It owns that
//! conversion only.

use crate::error::WebError;
use js_sys::Reflect;
use wasm_bindgen::prelude::*;

/// The `ShoalError` for `error`.
pub fn to_js(error: &WebError) -> JsValue {
    let js = js_sys::Error::new(&error.to_string());
    js.set_name("ShoalError");
    let _ = Reflect::set(&js, &"code".into(), &error.code().into());
    js.into()
}
