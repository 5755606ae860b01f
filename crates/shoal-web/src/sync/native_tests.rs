//! The tab's side of sync against a native node's: the in-memory tab
//! replica (the tab's log reads and merges, `memory.rs`) and a real
//! `shoal-store` database (the native log reads and applies with cursors,
//! as a daemon performs them) synced by two real sessions, each run by the
//! tab's driver, over an in-memory pipe. Catch-up both ways, in small
//! chunks and with records cut between chunks, live pushes, field-by-field
//! merges and resumption from the persisted cursors.

use crate::error::WebError;
use crate::sync::driver::{SessionEnd, SessionSpec, run_session, tab_sync_config};
use crate::sync::head::HeadWatch;
use crate::sync::memory::MemoryReplica;
use crate::sync::memory::NativeTimer;
use crate::sync::merge::MergeReport;
use crate::sync::pipe::duplex;
use crate::sync::replica::Replica;
use crate::sync::spec::{Control, DEFAULT_TICK_MS};
use crate::sync::status::StatusCell;
use crate::sync::tests::until;
use futures::executor::block_on;
use serde_json::json;
use shoal_core::sync::{GroupKey, Refusal, Rejection, Request, Response, Role};
use shoal_core::{Change, CollectionName, Intent, LogRead, RecordId, SyncCursor};
use shoal_store::{Store, StoreConfig, WriteOp};
use std::cell::RefCell;

/// A native store as the driver's replica (what `shoal-net` does with it).
struct NativeStore {
    store: RefCell<Store>,
    head: HeadWatch,
}

fn failed(e: shoal_store::StoreError) -> WebError {
    WebError::Storage(e.to_string())
}

impl NativeStore {
    fn open(dir: &tempfile::TempDir) -> Self {
        let store = Store::open(dir.path().join("n.db"), StoreConfig::default()).unwrap();
        let head = HeadWatch::new(store.db_version());
        NativeStore {
            store: RefCell::new(store),
            head,
        }
    }

    fn write(&self, id: &str, intent: Intent) {
        let op = WriteOp {
            collection: CollectionName::new("notes").unwrap(),
            id: RecordId::new(id).unwrap(),
            intent,
        };
        let mut store = self.store.borrow_mut();
        store.write([op]).unwrap();
        self.head.advance(store.db_version());
    }

    fn get(&self, id: &str) -> Option<String> {
        let store = self.store.borrow();
        let found = store
            .get(
                &CollectionName::new("notes").unwrap(),
                &RecordId::new(id).unwrap(),
            )
            .unwrap();
        found.map(|m| serde_json::Value::Object(m).to_string())
    }
}

impl Replica for NativeStore {
    async fn peer_cursor(&self, peer: &str) -> Result<SyncCursor, WebError> {
        self.store.borrow().peer_cursor(peer).map_err(failed)
    }

    async fn read_changes(
        &self,
        peer: &str,
        after: SyncCursor,
        max_changes: u32,
        max_bytes: u32,
    ) -> Result<LogRead, WebError> {
        let store = self.store.borrow();
        store
            .read_for_peer(peer, after, max_changes, max_bytes)
            .map_err(failed)
    }

    async fn apply(
        &self,
        peer: &str,
        changes: &[Change],
        cursor: SyncCursor,
        _now_ms: u64,
    ) -> Result<MergeReport, WebError> {
        let mut store = self.store.borrow_mut();
        let report = store.apply_from(peer, changes, cursor).map_err(failed)?;
        self.head.advance(store.db_version());
        Ok(MergeReport {
            applied: report.applied,
            stale: report.stale,
            not_newer: report.not_newer,
            not_admissible: report.not_admissible,
            versions: report.version.map(|v| (v, v)),
        })
    }

    async fn serve(&self, _peer: &str, _request: Request, _now_ms: u64) -> Response {
        Response::Refused(Refusal::Failed)
    }

    async fn device_check(&self, _peer: &str) -> Result<Option<Rejection>, WebError> {
        Ok(None)
    }

    fn session_started(&self, peer: &str) {
        self.store.borrow_mut().session_started(peer);
    }

    fn head(&self) -> HeadWatch {
        self.head.clone()
    }
}

fn put(value: serde_json::Value) -> Intent {
    Intent::Put(value.as_object().unwrap().clone())
}

fn patch(value: serde_json::Value) -> Intent {
    Intent::Patch(value.as_object().unwrap().clone())
}

/// Runs the native side (peer "n", dialer) and the tab (peer "t",
/// listener) while `test` runs, both with `max_changes` and `max_bytes`
/// per chunk; returns the two statuses.
fn session<F: std::future::Future<Output = ()>>(
    native: &NativeStore,
    tab: &MemoryReplica,
    limits: (u32, u32),
    test: impl FnOnce(StatusCell, StatusCell) -> F,
) -> (StatusCell, StatusCell) {
    let key = GroupKey::from_random([4; 32]);
    let spec = |role, local: &str, remote: &str, seed| {
        let mut config = tab_sync_config();
        config.max_changes = limits.0;
        config.max_bytes = limits.1;
        SessionSpec {
            role,
            local_peer: local.as_bytes().to_vec(),
            remote_peer: remote.as_bytes().to_vec(),
            peer: remote.to_string(),
            key: key.clone(),
            seed: [seed; 32],
            config,
            tick_ms: DEFAULT_TICK_MS,
        }
    };
    let (sn, st) = (StatusCell::new("t"), StatusCell::new("n"));
    let (cn, ct) = (Control::default(), Control::default());
    let (left, right) = duplex();
    let checks = test(sn.clone(), st.clone());
    let (end_n, end_t, ()) = block_on(async {
        futures::join!(
            run_session(
                native,
                &NativeTimer,
                spec(Role::Dialer, "n", "t", 1),
                &sn,
                &cn,
                left
            ),
            run_session(
                tab,
                &NativeTimer,
                spec(Role::Listener, "t", "n", 2),
                &st,
                &ct,
                right
            ),
            async {
                checks.await;
                cn.stop();
                ct.stop();
            }
        )
    });
    assert_eq!((end_n, end_t), (SessionEnd::Stopped, SessionEnd::Stopped));
    (sn, st)
}

#[test]
fn a_tab_and_a_native_store_sync_both_ways_in_chunks_and_resume() {
    let dir = tempfile::tempdir().unwrap();
    let (native, tab) = (NativeStore::open(&dir), MemoryReplica::new(3));
    let (native, tab) = (&native, &tab);
    let big = "y".repeat(3_000);
    for i in 0..40 {
        native.write(&format!("n{i:02}"), put(json!({"from": "native", "i": i})));
        tab.write(
            "notes",
            &format!("t{i:02}"),
            put(json!({"from": "tab", "i": i})),
        );
    }
    // Records of several big fields, cut between chunks of 4 KB.
    let fields = |who: &str| {
        let mut m = serde_json::Map::new();
        for f in ["a", "b", "c", "d"] {
            m.insert(f.into(), json!(format!("{who}{big}")));
        }
        Intent::Put(m)
    };
    native.write("nbig", fields("n"));
    tab.write("notes", "tbig", fields("t"));
    let (sn, st) = session(native, tab, (7, 4_096), |sn, st| async move {
        until("both caught up", || {
            sn.get().caught_up
                && st.get().caught_up
                && native.get("tbig").is_some()
                && tab.get("notes", "nbig").is_some()
        })
        .await;
    });
    for i in 0..40 {
        let (n, t) = (format!("n{i:02}"), format!("t{i:02}"));
        assert_eq!(tab.get("notes", &n), native.get(&n), "{n}");
        assert_eq!(tab.get("notes", &t), native.get(&t), "{t}");
    }
    assert_eq!(tab.get("notes", "nbig"), native.get("nbig"));
    assert_eq!(tab.get("notes", "tbig"), native.get("tbig"));
    // 41 records of life + fields each way: 40 × 3 + 5.
    assert_eq!(st.get().stats.changes_in, 125);
    assert_eq!(sn.get().stats.changes_in, 125);
    // Edits of different fields apart, then live edits while connected.
    native.write("n01", patch(json!({"note": "native"})));
    tab.write("notes", "n01", patch(json!({"i": 100})));
    session(native, tab, (16384, 4 << 20), |_, st| async move {
        let merged = r#"{"from":"native","i":100,"note":"native"}"#;
        until("merged", || {
            tab.get("notes", "n01").as_deref() == Some(merged)
                && native.get("n01").as_deref() == Some(merged)
        })
        .await;
        tab.write("notes", "live", put(json!({"x": 1})));
        until("pushed", || native.get("live").is_some()).await;
        // Only the edits moved: nothing caught up again.
        assert!(st.get().stats.changes_in <= 2, "{:?}", st.get().stats);
    });
}
