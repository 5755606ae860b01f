//! The tab's store as a sync [`Replica`] (over its storage, `storage.rs`:
//! log reads, merges with the cursor) and the browser's
//! [`Timer`] (`Date.now`, `setTimeout`). After a merge commits, the change
//! feed hears of every record it rewrote and the log head moves (so other
//! sessions push the changes on); never before.
//!
//! Get one with `Store::replica()`; it shares the open store's database,
//! feed, head and echo bookkeeping. [`random_seed`] gives a session's key
//! exchange its fresh randomness. It owns this wiring only.

use crate::error::WebError;
use crate::store_inner::Inner;
use crate::sync::head::HeadWatch;
use crate::sync::merge::MergeReport;
use crate::sync::replica::{Replica, Timer};
use crate::sync::serve;
use js_sys::{Function, Promise, Reflect};
use shoal_core::sync::{Refusal, Rejection, Request, Response};
use shoal_core::{Change, LogRead, SyncCursor};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

/// An open store as a sync replica; clones share it.
#[derive(Clone)]
pub struct StoreReplica {
    inner: Rc<Inner>,
}

impl StoreReplica {
    pub(crate) fn new(inner: Rc<Inner>) -> Self {
        StoreReplica { inner }
    }

    /// Merges and, after the commit, tells subscribers and the head.
    async fn merge(
        &self,
        peer: &str,
        changes: &[Change],
        cursor: Option<SyncCursor>,
        now_ms: u64,
    ) -> Result<MergeReport, WebError> {
        let merged = self
            .inner
            .db()?
            .apply(peer, changes, cursor, now_ms)
            .await?;
        if let Some((first, last)) = merged.report.versions {
            if cursor.is_some() {
                self.inner.echoes.borrow_mut().record(peer, first, last);
            }
            for row in &merged.rows {
                let value = row.record.state.render_json();
                self.inner.feed.publish(&crate::feed::change_object(
                    &row.collection,
                    &row.id,
                    row.version,
                    value.as_deref(),
                ));
            }
            self.inner.head.advance(last);
        }
        Ok(merged.report)
    }
}

impl Replica for StoreReplica {
    async fn peer_cursor(&self, peer: &str) -> Result<SyncCursor, WebError> {
        self.inner.db()?.cursor(peer).await
    }

    async fn read_changes(
        &self,
        peer: &str,
        after: SyncCursor,
        max_changes: u32,
        max_bytes: u32,
    ) -> Result<LogRead, WebError> {
        // Copied out: a merge may note echoes while the read awaits.
        let echoes = self.inner.echoes.borrow().snapshot(peer);
        self.inner
            .db()?
            .read_for_peer(peer, after, max_changes, max_bytes, &echoes)
            .await
    }

    async fn apply(
        &self,
        peer: &str,
        changes: &[Change],
        cursor: SyncCursor,
        now_ms: u64,
    ) -> Result<MergeReport, WebError> {
        self.merge(peer, changes, Some(cursor), now_ms).await
    }

    async fn serve(&self, peer: &str, request: Request, now_ms: u64) -> Response {
        if let Some(refusal) = serve::refused(&request) {
            return refusal;
        }
        let Ok(db) = self.inner.db() else {
            return Response::Refused(Refusal::Failed);
        };
        match request {
            Request::Fetch {
                collection,
                ids,
                resume,
            } => match db.rows_of(&collection, &ids).await {
                Ok(rows) => serve::fetch_answer(&ids, &rows, resume),
                Err(_) => Response::Refused(Refusal::Failed),
            },
            Request::Offer {
                collection,
                id,
                changes,
                whole,
            } => {
                let report = match self.merge(peer, &changes, None, now_ms).await {
                    Ok(report) => report,
                    Err(WebError::Invalid(_)) => return Response::Refused(Refusal::BadRequest),
                    Err(_) => return Response::Refused(Refusal::Failed),
                };
                let ids = [id.clone()];
                match db.rows_of(&collection, &ids).await {
                    Ok(rows) => serve::offer_answer(
                        report.versions.is_some(),
                        &id,
                        whole,
                        rows.first()
                            .and_then(Option::as_ref)
                            .map(|r| &r.record.state),
                    ),
                    Err(_) => Response::Refused(Refusal::Failed),
                }
            }
            Request::Collections
            | Request::Reconcile { .. }
            | Request::Level { .. }
            | Request::Filtered { .. } => Response::Refused(Refusal::Failed),
        }
    }

    async fn device_check(&self, peer: &str) -> Result<Option<Rejection>, WebError> {
        let registry = self.inner.db()?.registry().await?;
        Ok(crate::sync::devices::refusal(registry.as_ref(), peer))
    }

    fn session_started(&self, peer: &str) {
        self.inner.echoes.borrow_mut().forget(peer);
    }

    fn head(&self) -> HeadWatch {
        self.inner.head.clone()
    }
}

/// 32 fresh secret random bytes (`crypto.getRandomValues`): the `seed`
/// of a [`crate::sync::driver::SessionSpec`].
pub fn random_seed() -> Result<[u8; 32], WebError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| WebError::Storage(format!("no randomness: {e}")))?;
    Ok(seed)
}

/// The browser's clock and `setTimeout` (in a window or a worker).
#[derive(Debug, Clone, Copy, Default)]
pub struct BrowserTimer;

impl Timer for BrowserTimer {
    fn now_ms(&self) -> u64 {
        js_sys::Date::now() as u64
    }

    fn sleep(&self, ms: u64) -> Pin<Box<dyn Future<Output = ()>>> {
        let promise = Promise::new(&mut |resolve, _reject| {
            let set_timeout = Reflect::get(&js_sys::global(), &"setTimeout".into())
                .ok()
                .and_then(|f| f.dyn_into::<Function>().ok());
            match set_timeout {
                Some(set_timeout) => {
                    let _ = set_timeout.call2(&JsValue::NULL, &resolve, &(ms as f64).into());
                }
                None => {
                    let _ = resolve.call0(&JsValue::NULL);
                }
            }
        });
        Box::pin(async move {
            let _ = JsFuture::from(promise).await;
        })
    }
}
