//! The host services `sqlite-wasm-rs` links against (its C ABI hooks
//! `rust_sqlite_wasm_host_*`): the clock, randomness, sleeping and local
//! time for SQLite and the `sahpool` VFS. The crate's own implementations
//! need a newer wasm-bindgen than libp2p allows here (Cargo.toml), so these
//! are the tab's: `Date.now`, `crypto.getRandomValues` (through getrandom,
//! as the rest of the tab draws randomness) — nothing else. It owns these
//! hooks only.
//!
//! Sleeping is a no-op: a worker could block, but nothing here asks SQLite
//! to wait — the database is opened in exclusive locking mode by its one
//! owner (the store's Web Lock), so no busy handler ever runs. Local time
//! is reported unsupported: no query of the store uses `'localtime'`.

/// `rust_sqlite_wasm_host_*` status codes (`sqlite_wasm_rs::host`).
const OK: i32 = 0;
/// The capability is not provided.
const UNSUPPORTED: i32 = 1;
/// The service failed.
const UNAVAILABLE: i32 = 2;

/// The bytes `buf`, `len` point to, or `None` for a null pointer with a
/// length (an empty buffer may be null).
///
/// # Safety
/// `buf` must be valid for writes of `len` bytes when not null.
unsafe fn bytes<'a>(buf: *mut u8, len: usize) -> Option<&'a mut [u8]> {
    if len == 0 {
        return Some(&mut []);
    }
    if buf.is_null() {
        return None;
    }
    // SAFETY: the caller's contract (SQLite hands a buffer of `len` bytes).
    Some(unsafe { std::slice::from_raw_parts_mut(buf, len) })
}

/// Does nothing (see the module documentation).
#[unsafe(no_mangle)]
pub extern "C" fn rust_sqlite_wasm_host_sleep(_seconds: u64, _nanoseconds: u32) {}

/// Fills `len` bytes at `buf` with random bytes; answers how many.
///
/// # Safety
/// `buf` must be valid for writes of `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rust_sqlite_wasm_host_random(buf: *mut u8, len: usize) -> usize {
    // SAFETY: forwarded from the caller.
    match unsafe { bytes(buf, len) } {
        Some(out) => match getrandom::fill(out) {
            Ok(()) => len,
            Err(_) => 0,
        },
        None => 0,
    }
}

/// Writes the Unix time in milliseconds to `out`.
///
/// # Safety
/// `out` must be valid and aligned for one `i64`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rust_sqlite_wasm_host_epoch_timestamp_in_ms(out: *mut i64) -> i32 {
    let now = js_sys::Date::now();
    if out.is_null() || !now.is_finite() {
        return UNAVAILABLE;
    }
    // SAFETY: the caller's contract.
    unsafe { out.write(now as i64) };
    OK
}

/// Fills all `len` bytes at `buf` with secure randomness, or fails.
///
/// # Safety
/// `buf` must be valid for writes of `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rust_sqlite_wasm_host_fill_entropy(buf: *mut u8, len: usize) -> i32 {
    // SAFETY: forwarded from the caller.
    match unsafe { bytes(buf, len) } {
        Some(out) => match getrandom::fill(out) {
            Ok(()) => OK,
            Err(_) => UNAVAILABLE,
        },
        None => UNAVAILABLE,
    }
}

/// Local time is not provided (see the module documentation).
#[unsafe(no_mangle)]
pub extern "C" fn rust_sqlite_wasm_host_localtime(_unix_seconds: i64, _out: *mut u8) -> i32 {
    UNSUPPORTED
}

/// The `sahpool` VFS's services (`rsqlite-vfs` 0.1's trait): the same
/// clock and randomness, and the same no-op sleep.
pub struct TabOs;

impl rsqlite_vfs::OsCallback for TabOs {
    fn sleep(_duration: std::time::Duration) {}

    fn random(buf: &mut [u8]) {
        // Names of pool files: when the browser gives no randomness the
        // VFS's own fallbacks apply; nothing secret is made of these.
        let _ = getrandom::fill(buf);
    }

    fn epoch_timestamp_in_ms() -> i64 {
        js_sys::Date::now() as i64
    }
}
