//! Browser tests of syncing two IndexedDB stores in one page of headless
//! Chromium, run by `scripts/wasm-test.sh`: the cases of `cases/sync.rs`.
#![cfg(target_arch = "wasm32")]

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

/// The storage the shared cases run on.
const STORAGE: shoal_web::storage::StorageKind = shoal_web::storage::StorageKind::IndexedDb;

include!("cases/sync.rs");
