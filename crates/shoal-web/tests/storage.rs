//! Browser tests of the IndexedDB storage, run in a page of headless
//! Chromium by `scripts/wasm-test.sh` (wasm-bindgen-test-runner with
//! chromedriver): the cases both storages pass (`cases/storage.rs`), and
//! what is the page's own — quota errors classified, and the OPFS storage
//! refused outside a dedicated Worker with a clear error.
#![cfg(target_arch = "wasm32")]

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

/// The storage the shared cases run on.
const STORAGE: StorageKind = StorageKind::IndexedDb;

include!("cases/storage.rs");

#[wasm_bindgen_test]
fn a_quota_exceeded_error_is_its_own_code() {
    let quota =
        web_sys::DomException::new_with_message_and_name("no room", "QuotaExceededError").unwrap();
    let err = shoal_web::idb::request::classify(&quota.into());
    assert_eq!(err, WebError::QuotaExceeded("no room".into()));
    assert_eq!(err.code(), "quota-exceeded");
    let other = web_sys::DomException::new_with_message_and_name("bad", "DataError").unwrap();
    assert_eq!(
        shoal_web::idb::request::classify(&other.into()).code(),
        "internal"
    );
}

#[wasm_bindgen_test]
async fn the_opfs_storage_is_refused_in_a_window_with_a_clear_error() {
    let opfs = js_sys::Object::new();
    Reflect::set(&opfs, &"storage".into(), &"opfs".into()).unwrap();
    let refused = Store::open("t-opfs-window".into(), Some(opfs.into()))
        .await
        .err()
        .unwrap();
    assert_eq!(code(&refused), "bad-request");
    let message = Reflect::get(&refused, &"message".into())
        .unwrap()
        .as_string()
        .unwrap();
    assert!(message.contains("dedicated Worker"), "{message}");
    // The refused open let the store's lock go: IndexedDB opens it.
    let store = Store::open("t-opfs-window".into(), None).await.unwrap();
    resolve(store.close()).await.unwrap();
    let bad = js_sys::Object::new();
    Reflect::set(&bad, &"storage".into(), &"disk".into()).unwrap();
    let refused = Store::open("t-opfs-window".into(), Some(bad.into()))
        .await
        .err()
        .unwrap();
    assert_eq!(code(&refused), "bad-request");
}
