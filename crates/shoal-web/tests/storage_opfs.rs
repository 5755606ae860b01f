//! Browser tests of the SQLite-on-OPFS storage, run in a dedicated Worker
//! of headless Chromium by `scripts/wasm-test.sh` (OPFS synchronous access
//! handles exist only there): the cases both storages pass
//! (`cases/storage.rs`).
#![cfg(target_arch = "wasm32")]

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_dedicated_worker);

/// The storage the shared cases run on.
const STORAGE: StorageKind = StorageKind::Opfs;

include!("cases/storage.rs");
