//! A replica kept in memory, for the native tests of the driver and the
//! pure parts together: the same decisions (`log_read.rs`, `merge.rs`,
//! `serve.rs`, `write.rs`) the browser replica makes, on maps.

use crate::error::WebError;
use crate::meta::NodeMeta;
use crate::row::StoredRecord;
use crate::sync::devices;
use crate::sync::echo::EchoLog;
use crate::sync::head::HeadWatch;
use crate::sync::log_read::{LogReader, LogRow, nothing_after, position_of};
use crate::sync::merge::{self, MergeReport, RecordKey};
use crate::sync::replica::{Replica, Timer};
use crate::sync::serve;
use crate::write::local_write;
use shoal_core::devices::DEVICES_COLLECTION;
use shoal_core::sync::{Refusal, Rejection, Request, Response};
use shoal_core::{Change, CollectionName, DbVersion, Intent, LogRead, RecordId, SyncCursor};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub(crate) struct MemoryReplica {
    meta: RefCell<NodeMeta>,
    records: RefCell<BTreeMap<RecordKey, (DbVersion, StoredRecord)>>,
    pub(crate) cursors: RefCell<HashMap<String, SyncCursor>>,
    echoes: RefCell<EchoLog>,
    head: HeadWatch,
}

pub(crate) fn key(collection: &str, id: &str) -> RecordKey {
    (
        CollectionName::new(collection).unwrap(),
        RecordId::new(id).unwrap(),
    )
}

impl MemoryReplica {
    pub(crate) fn new(seed: u8) -> Self {
        MemoryReplica {
            meta: RefCell::new(NodeMeta::new([seed; 32])),
            records: RefCell::default(),
            cursors: RefCell::default(),
            echoes: RefCell::default(),
            head: HeadWatch::default(),
        }
    }

    pub(crate) fn write(&self, collection: &str, id: &str, intent: Intent) {
        let key = key(collection, id);
        let stored = self
            .records
            .borrow()
            .get(&key)
            .map(|(_, r)| r.clone())
            .unwrap_or_default();
        let meta = self.meta.borrow().clone();
        let now = NativeTimer.now_ms();
        if let Some(written) = local_write(&meta, &stored, &intent, now).unwrap() {
            let version = written.meta.version;
            self.records
                .borrow_mut()
                .insert(key, (version, written.record));
            *self.meta.borrow_mut() = written.meta;
            self.head.advance(version);
        }
    }

    pub(crate) fn get(&self, collection: &str, id: &str) -> Option<String> {
        self.records
            .borrow()
            .get(&key(collection, id))
            .and_then(|(_, r)| r.state.render_json())
    }

    pub(crate) fn version(&self) -> DbVersion {
        self.meta.borrow().version
    }

    fn row(&self, key: &RecordKey) -> Option<LogRow> {
        self.records.borrow().get(key).map(|(v, r)| LogRow {
            collection: key.0.clone(),
            id: key.1.clone(),
            version: *v,
            record: r.clone(),
        })
    }

    fn merge(
        &self,
        peer: &str,
        changes: &[Change],
        cursor: Option<SyncCursor>,
        now_ms: u64,
    ) -> Result<MergeReport, WebError> {
        let meta = self.meta.borrow().clone();
        merge::validate(&meta, changes, now_ms)?;
        let records = self.records.borrow();
        let devices: Vec<(String, StoredRecord)> = records
            .iter()
            .filter(|(k, _)| k.0.as_str() == DEVICES_COLLECTION)
            .map(|(k, (_, r))| (k.1.as_str().to_string(), r.clone()))
            .collect();
        let registry = devices::registry_from(devices.iter().map(|(i, r)| (i.as_str(), r)));
        let issuers = devices::issuers(registry.as_ref());
        let stored: HashMap<RecordKey, (DbVersion, StoredRecord)> = merge::records_of(changes)
            .into_iter()
            .filter_map(|k| records.get(&k).cloned().map(|v| (k, v)))
            .collect();
        drop(records);
        let plan = merge::plan_merge(&meta, changes, &stored, &issuers);
        let mut records = self.records.borrow_mut();
        for row in plan.rows {
            records.insert((row.collection, row.id), (row.version, row.record));
        }
        drop(records);
        *self.meta.borrow_mut() = plan.meta.clone();
        if let Some(cursor) = cursor {
            self.cursors
                .borrow_mut()
                .insert(peer.to_string(), cursor.durable());
        }
        if let Some((first, last)) = plan.report.versions {
            if cursor.is_some() {
                self.echoes.borrow_mut().record(peer, first, last);
            }
            self.head.advance(last);
        }
        Ok(plan.report)
    }
}

impl Replica for MemoryReplica {
    async fn peer_cursor(&self, peer: &str) -> Result<SyncCursor, WebError> {
        Ok(self.cursors.borrow().get(peer).copied().unwrap_or_default())
    }

    async fn read_changes(
        &self,
        peer: &str,
        after: SyncCursor,
        max_changes: u32,
        max_bytes: u32,
    ) -> Result<LogRead, WebError> {
        let head = self.version();
        let echoes = self.echoes.borrow();
        if after == SyncCursor::complete(after.base) && echoes.covers(peer, after.base, head) {
            return Ok(nothing_after(after, head));
        }
        let mut reader =
            LogReader::new(after, max_changes, max_bytes, |v| echoes.contains(peer, v));
        let mut rows: Vec<LogRow> = self
            .records
            .borrow()
            .iter()
            .map(|(k, (v, r))| LogRow {
                collection: k.0.clone(),
                id: k.1.clone(),
                version: *v,
                record: r.clone(),
            })
            .collect();
        rows.sort_by_key(|r| r.version);
        if reader.inside_record() {
            let at = rows
                .iter()
                .find(|r| r.position() == position_of(after.position.version));
            reader.resume(at);
        }
        let after_version = reader.after_version();
        for row in rows.iter().filter(|r| r.version > after_version) {
            if !reader.wants_more() {
                break;
            }
            reader.take(row);
        }
        Ok(reader.finish(head))
    }

    async fn apply(
        &self,
        peer: &str,
        changes: &[Change],
        cursor: SyncCursor,
        now_ms: u64,
    ) -> Result<MergeReport, WebError> {
        self.merge(peer, changes, Some(cursor), now_ms)
    }

    async fn serve(&self, peer: &str, request: Request, now_ms: u64) -> Response {
        if let Some(refusal) = serve::refused(&request) {
            return refusal;
        }
        match request {
            Request::Fetch {
                collection,
                ids,
                resume,
            } => {
                let rows: Vec<Option<LogRow>> = ids
                    .iter()
                    .map(|id| self.row(&(collection.clone(), id.clone())))
                    .collect();
                serve::fetch_answer(&ids, &rows, resume)
            }
            Request::Offer {
                collection,
                id,
                changes,
                whole,
            } => match self.merge(peer, &changes, None, now_ms) {
                Ok(report) => {
                    let row = self.row(&(collection, id.clone()));
                    serve::offer_answer(
                        report.versions.is_some(),
                        &id,
                        whole,
                        row.as_ref().map(|r| &r.record.state),
                    )
                }
                Err(_) => Response::Refused(Refusal::BadRequest),
            },
            _ => Response::Refused(Refusal::Failed),
        }
    }

    async fn device_check(&self, peer: &str) -> Result<Option<Rejection>, WebError> {
        let records = self.records.borrow();
        let registry = devices::registry_from(
            records
                .iter()
                .filter(|(k, _)| k.0.as_str() == DEVICES_COLLECTION)
                .map(|(k, (_, r))| (k.1.as_str(), r)),
        );
        Ok(devices::refusal(registry.as_ref(), peer))
    }

    fn session_started(&self, peer: &str) {
        self.echoes.borrow_mut().forget(peer);
    }

    fn head(&self) -> HeadWatch {
        self.head.clone()
    }
}

/// The tests' clock and sleep: the system's, on threads (futures-timer).
pub(crate) struct NativeTimer;

impl Timer for NativeTimer {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }

    fn sleep(&self, ms: u64) -> Pin<Box<dyn Future<Output = ()>>> {
        Box::pin(futures_timer::Delay::new(Duration::from_millis(ms)))
    }
}
