//! The JavaScript `Store`: opening a named store (taking its Web Lock, then
//! its storage: IndexedDB, or SQLite on OPFS in a dedicated Worker),
//! handing out collections, the change subscription, and closing. It owns the store handle's lifetime; record
//! operations are api_collection.rs's.

use crate::api_collection::Collection;
use crate::error::WebError;
use crate::feed::Feed;
use crate::import::{self, ImportFrom, Moved};
use crate::js_error;
use crate::lock;
use crate::storage::{Storage, StorageKind};
use crate::store_inner::Inner;
use crate::sync::echo::EchoLog;
use crate::sync::head::HeadWatch;
use crate::sync::store_replica::StoreReplica;
use crate::write_queue::WriteQueue;
use js_sys::{Function, Promise, Reflect};
use shoal_core::CollectionName;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

/// A named Shoal store in this browser, owned by this tab while open.
#[wasm_bindgen]
pub struct Store {
    pub(crate) inner: Rc<Inner>,
}

#[wasm_bindgen]
impl Store {
    /// Opens the store `name` (created on first use). Rejects with
    /// `store-busy` when another tab has it open, unless `{wait: true}`;
    /// `{storage: "opfs"}` keeps it in SQLite on OPFS (a dedicated Worker
    /// only; `bad-request` elsewhere); with it, `{importFrom: "indexeddb"}`
    /// first moves the IndexedDB store of the same name there, if any
    /// (import.rs).
    pub async fn open(
        name: String,
        #[wasm_bindgen(unchecked_param_type = "OpenOptions")] options: Option<JsValue>,
    ) -> Result<Store, JsValue> {
        let options = options.unwrap_or(JsValue::UNDEFINED);
        let wait = Reflect::get(&options, &"wait".into())
            .ok()
            .and_then(|w| w.as_bool())
            .unwrap_or(false);
        let opened = async {
            let kind = storage_option(&options)?;
            let import = import_option(&options, kind)?;
            Self::open_inner(&name, wait, kind, import).await
        };
        opened.await.map_err(|e| js_error::to_js(&e))
    }

    async fn open_inner(
        name: &str,
        wait: bool,
        kind: StorageKind,
        import: Option<ImportFrom>,
    ) -> Result<Store, WebError> {
        check_name(name)?;
        let ownership = lock::acquire(name, wait).await?;
        let (db, meta) = match Storage::open(name, kind).await {
            Ok(opened) => opened,
            Err(error) => {
                ownership.release().await;
                return Err(error);
            }
        };
        let meta = match (import, &db) {
            (Some(ImportFrom::IndexedDb), Storage::Sql(sql)) => {
                match import::from_indexeddb(name, sql, meta).await {
                    Ok((meta, moved)) => {
                        report_move(name, &moved);
                        meta
                    }
                    Err(error) => {
                        db.close();
                        ownership.release().await;
                        return Err(error);
                    }
                }
            }
            _ => meta,
        };
        let keypair = match meta.keypair() {
            Ok(keypair) => keypair,
            Err(error) => {
                db.close();
                ownership.release().await;
                return Err(error);
            }
        };
        Ok(Store {
            inner: Rc::new(Inner {
                db,
                feed: Feed::default(),
                writes: WriteQueue::default(),
                head: HeadWatch::new(meta.version),
                echoes: RefCell::new(EchoLog::default()),
                site: meta.site,
                lock: RefCell::new(Some(ownership)),
                closed: Cell::new(false),
                keypair,
                net: RefCell::new(None),
            }),
        })
    }

    /// Deletes the store `name` and everything in it (it must not be open),
    /// on the storage `{storage}` names (default IndexedDB).
    #[wasm_bindgen(js_name = deleteStore)]
    pub async fn delete_store(
        name: String,
        #[wasm_bindgen(unchecked_param_type = "DeleteOptions")] options: Option<JsValue>,
    ) -> Result<(), JsValue> {
        let options = options.unwrap_or(JsValue::UNDEFINED);
        let result = async {
            check_name(&name)?;
            let kind = storage_option(&options)?;
            let ownership = lock::acquire(&name, false).await?;
            let deleted = Storage::delete(&name, kind).await;
            ownership.release().await;
            deleted
        };
        result.await.map_err(|e| js_error::to_js(&e))
    }

    /// The collection `name` (throws `invalid-collection` for a bad name).
    pub fn collection(&self, name: &str) -> Result<Collection, JsValue> {
        let name = CollectionName::new(name).map_err(|e| js_error::to_js(&e.into()))?;
        Ok(Collection::new(self.inner.clone(), name))
    }

    /// This store's site id (16 hex digits): the tie-break in clock order.
    #[wasm_bindgen(getter)]
    pub fn site(&self) -> String {
        self.inner.site.to_string()
    }

    /// The change-log position of the last committed write.
    #[wasm_bindgen(unchecked_return_type = "Promise<number>")]
    pub fn version(&self) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let meta = inner
                .db()
                .map_err(|e| js_error::to_js(&e))?
                .meta()
                .await
                .map_err(|e| js_error::to_js(&e))?;
            Ok((meta.version.0 as f64).into())
        })
    }

    /// Calls `callback` with each committed change (a `Change`) from now on.
    pub fn subscribe(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(change: Change) => void")] callback: Function,
    ) -> Subscription {
        let number = self.inner.feed.subscribe(callback);
        Subscription {
            inner: self.inner.clone(),
            number,
        }
    }

    /// Closes the store and lets another tab open it: resolves once the
    /// store's lock is released. Later calls reject with `store-closed`.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn close(&self) -> Promise {
        if !self.inner.closed.replace(true) {
            // The network's loop ends at its next turn, closing sessions
            // and connections and failing waiting connects with
            // store-closed; an apply in flight fails whole on the closed
            // database (each is one transaction with its cursor).
            if let Some(net) = self.inner.net.borrow_mut().take() {
                net.stop();
            }
            self.inner.db.close();
        }
        let ownership = self.inner.lock.borrow_mut().take();
        future_to_promise(async move {
            if let Some(ownership) = ownership {
                ownership.release().await;
            }
            Ok(JsValue::UNDEFINED)
        })
    }
}

/// Rust-only (not exported to JavaScript): the parts syncing needs.
impl Store {
    /// This open store as a sync replica, for `sync::driver::run_session`
    /// (it shares the store's database, change feed and log head).
    pub fn replica(&self) -> StoreReplica {
        StoreReplica::new(self.inner.clone())
    }

    /// The seed of this store's identity (64 hex digits, secret): the
    /// transport derives the tab's libp2p key from it.
    pub async fn identity_seed(&self) -> Result<String, WebError> {
        Ok(self.inner.db()?.meta().await?.seed)
    }
}

/// Refuses a store name outside 1 to 128 bytes.
fn check_name(name: &str) -> Result<(), WebError> {
    if name.is_empty() || name.len() > 128 {
        return Err(WebError::BadRequest(
            "a store name is 1 to 128 bytes".into(),
        ));
    }
    Ok(())
}

/// The storage `options.storage` names (IndexedDB when absent).
fn storage_option(options: &JsValue) -> Result<StorageKind, WebError> {
    match Reflect::get(options, &"storage".into()) {
        Ok(value) if value.is_undefined() || value.is_null() => Ok(StorageKind::default()),
        Ok(value) => match value.as_string() {
            Some(text) => StorageKind::parse(&text),
            None => Err(WebError::BadRequest(
                "storage must be \"indexeddb\" or \"opfs\"".into(),
            )),
        },
        Err(_) => Ok(StorageKind::default()),
    }
}

/// The store `options.importFrom` asks to move in, if any.
fn import_option(options: &JsValue, kind: StorageKind) -> Result<Option<ImportFrom>, WebError> {
    match Reflect::get(options, &"importFrom".into()) {
        Ok(value) if value.is_undefined() || value.is_null() => Ok(None),
        Ok(value) => match value.as_string() {
            Some(text) => ImportFrom::parse(&text, kind).map(Some),
            None => Err(WebError::BadRequest(
                "importFrom must be \"indexeddb\"".into(),
            )),
        },
        Err(_) => Ok(None),
    }
}

/// Says in the console what a move did, when it did anything.
fn report_move(name: &str, moved: &Moved) {
    let line = match moved {
        Moved::Nothing => return,
        Moved::Copied {
            rows,
            deleted: true,
        } => {
            format!("moved store {name:?} from IndexedDB to OPFS ({rows} record rows)")
        }
        Moved::Copied {
            rows,
            deleted: false,
        } => format!(
            "moved store {name:?} from IndexedDB to OPFS ({rows} record rows); \
             its IndexedDB copy could not be deleted yet (the next open deletes it)"
        ),
        Moved::AlreadyCopied => {
            format!("deleted the IndexedDB copy of store {name:?}, moved to OPFS earlier")
        }
    };
    web_sys::console::info_1(&format!("shoal: {line}").into());
}

/// A change subscription; `unsubscribe()` ends it.
#[wasm_bindgen]
pub struct Subscription {
    inner: Rc<Inner>,
    number: u32,
}

#[wasm_bindgen]
impl Subscription {
    /// Stops the callbacks (idempotent).
    pub fn unsubscribe(&self) {
        self.inner.feed.unsubscribe(self.number);
    }
}
