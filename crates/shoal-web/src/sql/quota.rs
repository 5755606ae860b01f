//! Telling a full origin from other storage failures on OPFS. When the
//! browser refuses more space, a synchronous access handle's `write` stops
//! short and SQLite answers a generic error ("SQL logic error", "disk I/O
//! error") — the VFS has no code for a full disk — and rolls the
//! transaction back. So after a write transaction fails with a storage
//! error the origin is asked whether it has room: a probe file of its own
//! in OPFS takes [`PROBE_BYTES`] (then is removed), and
//! `navigator.storage.estimate()` tells the usage and the quota. A probe
//! that cannot be written, or less than [`MARGIN`] left, reports the
//! failure as `quota-exceeded`, as IndexedDB's `QuotaExceededError` is. It
//! owns this classification only.

use crate::error::WebError;
use crate::write_queue::MAX_GROUP_BYTES;
use js_sys::{Function, Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// Space left below which a failed write is taken for a full origin, when
/// the probe could not tell: what one group of writes carries at most
/// (`write_queue::MAX_GROUP_BYTES`; a larger single record goes alone and
/// may be refused with more than this left, then reported as `internal`).
pub const MARGIN: f64 = MAX_GROUP_BYTES as f64;

/// Bytes the probe writes: a few pages of a transaction.
pub const PROBE_BYTES: u32 = 64 * 1024;

/// The probe's file name in the origin's OPFS root.
const PROBE_FILE: &str = ".shoal-space-probe";

/// `error` as the write's failure: [`WebError::QuotaExceeded`] when it is
/// a storage error and the origin has no room.
pub async fn classify(error: WebError) -> WebError {
    let WebError::Storage(message) = &error else {
        return error;
    };
    if let Some(false) = probe().await {
        return WebError::QuotaExceeded(format!(
            "the origin's storage has no room for {PROBE_BYTES} more bytes ({message})"
        ));
    }
    match estimate().await {
        Some((usage, quota)) if quota - usage < MARGIN => WebError::QuotaExceeded(format!(
            "{usage:.0} of the origin's {quota:.0} bytes in use ({message})"
        )),
        _ => error,
    }
}

/// A property of `from`.
fn get(from: &JsValue, name: &str) -> Option<JsValue> {
    Reflect::get(from, &name.into())
        .ok()
        .filter(|v| !v.is_undefined())
}

/// Why a probe step failed: the browser's refusal of space, or anything
/// else (no OPFS here, ...).
enum Refused {
    Quota,
    Other,
}

/// A failure as thrown: a `QuotaExceededError` is the origin being full.
fn refused(error: JsValue) -> Refused {
    match get(&error, "name").and_then(|n| n.as_string()).as_deref() {
        Some("QuotaExceededError") => Refused::Quota,
        _ => Refused::Other,
    }
}

/// Calls the method `name` of `on` with `args`; its result.
fn call(on: &JsValue, name: &str, args: &[JsValue]) -> Result<JsValue, Refused> {
    let method: Function = get(on, name)
        .and_then(|m| m.dyn_into().ok())
        .ok_or(Refused::Other)?;
    method
        .apply(on, &args.iter().cloned().collect::<js_sys::Array>())
        .map_err(refused)
}

/// Awaits the promise `value` is.
async fn settled(value: JsValue) -> Result<JsValue, Refused> {
    let promise: Promise = value.dyn_into().map_err(|_| Refused::Other)?;
    JsFuture::from(promise).await.map_err(refused)
}

/// Whether [`PROBE_BYTES`] fit in the origin's OPFS (`None`: could not
/// tell — no OPFS here, or it failed otherwise).
async fn probe() -> Option<bool> {
    match try_probe().await {
        Ok(fits) => Some(fits),
        Err(Refused::Quota) => Some(false),
        Err(Refused::Other) => None,
    }
}

/// The probe's steps: create the file, open a handle (Chromium refuses
/// that already when the origin is full), write, and remove it again.
async fn try_probe() -> Result<bool, Refused> {
    let navigator = get(&js_sys::global(), "navigator").ok_or(Refused::Other)?;
    let storage = get(&navigator, "storage").ok_or(Refused::Other)?;
    let root = settled(call(&storage, "getDirectory", &[])?).await?;
    let create = js_sys::Object::new();
    Reflect::set(&create, &"create".into(), &true.into()).map_err(|_| Refused::Other)?;
    let file = settled(call(
        &root,
        "getFileHandle",
        &[PROBE_FILE.into(), create.into()],
    )?)
    .await?;
    let fits = match settled(call(&file, "createSyncAccessHandle", &[])?).await {
        Ok(handle) => {
            let bytes = js_sys::Uint8Array::new_with_length(PROBE_BYTES);
            let written = call(&handle, "write", &[bytes.into()]);
            let _ = call(&handle, "truncate", &[0.into()]);
            let _ = call(&handle, "close", &[]);
            match written {
                Ok(count) => count.as_f64() == Some(f64::from(PROBE_BYTES)),
                Err(Refused::Quota) => false,
                Err(Refused::Other) => return Err(Refused::Other),
            }
        }
        Err(Refused::Quota) => false,
        Err(Refused::Other) => return Err(Refused::Other),
    };
    if let Ok(removed) = call(&root, "removeEntry", &[PROBE_FILE.into()]) {
        let _ = settled(removed).await;
    }
    Ok(fits)
}

/// The origin's usage and quota in bytes, if the browser tells them.
async fn estimate() -> Option<(f64, f64)> {
    let storage = get(&get(&js_sys::global(), "navigator")?, "storage")?;
    let answer = settled(call(&storage, "estimate", &[]).ok()?).await.ok()?;
    Some((
        get(&answer, "usage")?.as_f64()?,
        get(&answer, "quota")?.as_f64()?,
    ))
}
