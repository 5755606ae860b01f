// The sync cases both storages pass, included by `sync.rs` (IndexedDB, in
// a page) and `sync_opfs.rs` (SQLite on OPFS, in a dedicated Worker), each
// of which defines `STORAGE` and configures where the tests run: two tab
// stores sync through two real `shoal_core` sync sessions, each run by the
// tab's driver (`run_session`) over an in-memory duplex byte pipe — the
// same code path a libp2p stream takes, without the network. Writes reach
// the other side both ways, concurrent edits of different fields converge
// field by field, catch-up resumes from the cursor persisted in the store
// after it is reopened (nothing re-sent), a wrong group key is rejected
// with nothing applied, and re-delivered changes are harmless.

use js_sys::Promise;
use shoal_core::sync::{GroupKey, Rejection, Role};
use shoal_core::{CanonicalJson, DbVersion, Slot, SyncCursor};
use shoal_web::Store;
use shoal_web::sync::driver::{
    Control, DEFAULT_TICK_MS, SessionEnd, SessionSpec, run_session, tab_sync_config,
};
use shoal_web::sync::store_replica::BrowserTimer;
use shoal_web::sync::pipe::duplex;
use shoal_web::sync::replica::{Replica, Timer};
use shoal_web::sync::status::{PeerState, StatusCell};
use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

async fn resolve(promise: Promise) -> Result<JsValue, JsValue> {
    JsFuture::from(promise).await
}

/// `Store.open`'s options for `STORAGE`.
fn options() -> JsValue {
    let options = js_sys::Object::new();
    let storage = match STORAGE {
        shoal_web::storage::StorageKind::IndexedDb => "indexeddb",
        shoal_web::storage::StorageKind::Opfs => "opfs",
    };
    js_sys::Reflect::set(&options, &"storage".into(), &storage.into()).unwrap();
    options.into()
}

async fn fresh(name: &str) -> Store {
    let _ = Store::delete_store(name.into(), Some(options())).await;
    Store::open(name.into(), Some(options())).await.unwrap()
}

async fn put(store: &Store, id: &str, json: &str) {
    let notes = store.collection("notes").unwrap();
    resolve(notes.put(id.into(), js_sys::JSON::parse(json).unwrap()))
        .await
        .unwrap();
}

async fn patch(store: &Store, id: &str, json: &str) {
    let notes = store.collection("notes").unwrap();
    resolve(notes.patch(id.into(), js_sys::JSON::parse(json).unwrap()))
        .await
        .unwrap();
}

async fn get(store: &Store, id: &str) -> Option<String> {
    let notes = store.collection("notes").unwrap();
    let value = resolve(notes.get(id.into())).await.unwrap();
    (!value.is_null()).then(|| js_sys::JSON::stringify(&value).unwrap().into())
}

async fn version(store: &Store) -> u64 {
    resolve(store.version()).await.unwrap().as_f64().unwrap() as u64
}

fn key(byte: u8) -> GroupKey {
    GroupKey::from_random([byte; 32])
}

fn spec(role: Role, local: &str, remote: &str, key: &GroupKey, seed: u8) -> SessionSpec {
    SessionSpec {
        role,
        local_peer: local.as_bytes().to_vec(),
        remote_peer: remote.as_bytes().to_vec(),
        peer: remote.to_string(),
        key: key.clone(),
        seed: [seed; 32],
        config: tab_sync_config(),
        tick_ms: DEFAULT_TICK_MS,
    }
}

/// The status and control of one side's session.
struct Side {
    status: StatusCell,
    control: Control,
}

impl Side {
    fn new(peer: &str) -> Self {
        Side {
            status: StatusCell::new(peer),
            control: Control::default(),
        }
    }
}

/// Runs a session between store `a` (peer "tab-a", dialer) and `b`
/// ("tab-b", listener) while `test` runs, then stops both; how each ended.
async fn session<F: Future<Output = ()>>(
    (a, sa, ka): (&Store, &Side, &GroupKey),
    (b, sb, kb): (&Store, &Side, &GroupKey),
    test: F,
) -> (SessionEnd, SessionEnd) {
    let (left, right) = duplex();
    let (ra, rb) = (a.replica(), b.replica());
    let run_a = run_session(
        &ra,
        &BrowserTimer,
        spec(Role::Dialer, "tab-a", "tab-b", ka, 1),
        &sa.status,
        &sa.control,
        left,
    );
    let run_b = run_session(
        &rb,
        &BrowserTimer,
        spec(Role::Listener, "tab-b", "tab-a", kb, 2),
        &sb.status,
        &sb.control,
        right,
    );
    let stop = async {
        test.await;
        sa.control.stop();
        sb.control.stop();
    };
    let (end_a, end_b, ()) = futures::join!(run_a, run_b, stop);
    (end_a, end_b)
}

/// Waits up to 20 s for `done` (an async check) to hold.
async fn until<F: Future<Output = bool>>(what: &str, done: impl Fn() -> F) {
    for _ in 0..400 {
        if done().await {
            return;
        }
        BrowserTimer.sleep(50).await;
    }
    panic!("timed out waiting until {what}");
}

#[wasm_bindgen_test]
async fn a_write_on_either_side_reaches_the_other_and_the_feed_hears_of_it() {
    let (a, b) = (fresh("s-both-a").await, fresh("s-both-b").await);
    put(&a, "n1", r#"{"title":"from a"}"#).await;
    let heard = Rc::new(RefCell::new(Vec::<String>::new()));
    let callback = Closure::<dyn FnMut(JsValue)>::new({
        let heard = heard.clone();
        move |change: JsValue| {
            heard
                .borrow_mut()
                .push(js_sys::JSON::stringify(&change).unwrap().into());
        }
    });
    let _subscription = b.subscribe(callback.as_ref().clone().into());
    let (sa, sb) = (Side::new("tab-b"), Side::new("tab-a"));
    let k = key(7);
    session((&a, &sa, &k), (&b, &sb, &k), async {
        until("b has n1", || async { get(&b, "n1").await.is_some() }).await;
        assert_eq!(sb.status.get().state, PeerState::Connected);
        // Live, the other way: a write in b is pushed to a.
        put(&b, "n2", r#"{"title":"from b"}"#).await;
        until("a has n2", || async { get(&a, "n2").await.is_some() }).await;
    })
    .await;
    assert_eq!(
        get(&b, "n1").await.as_deref(),
        Some(r#"{"title":"from a"}"#)
    );
    assert_eq!(
        get(&a, "n2").await.as_deref(),
        Some(r#"{"title":"from b"}"#)
    );
    // b's subscriber heard the merged record (after its commit) and its own write.
    let heard = heard.borrow().clone();
    assert!(
        heard
            .iter()
            .any(|c| c.contains(r#""id":"n1""#) && c.contains("from a")),
        "{heard:?}"
    );
    assert!(
        heard.iter().any(|c| c.contains(r#""id":"n2""#)),
        "{heard:?}"
    );
    assert!(sb.status.get().caught_up);
    assert_eq!(
        sa.status.get().state,
        PeerState::Disconnected { error: None }
    );
    resolve(a.close()).await.unwrap();
    resolve(b.close()).await.unwrap();
}

#[wasm_bindgen_test]
async fn concurrent_edits_of_different_fields_converge_field_by_field() {
    let (a, b) = (fresh("s-merge-a").await, fresh("s-merge-b").await);
    put(&a, "n1", r#"{"title":"t","body":"b"}"#).await;
    let k = key(7);
    let (sa, sb) = (Side::new("tab-b"), Side::new("tab-a"));
    session((&a, &sa, &k), (&b, &sb, &k), async {
        until("b has n1", || async { get(&b, "n1").await.is_some() }).await;
    })
    .await;
    // Apart, each edits another field of the same record.
    patch(&a, "n1", r#"{"title":"T"}"#).await;
    patch(&b, "n1", r#"{"body":"B","done":true}"#).await;
    let expected = r#"{"body":"B","done":true,"title":"T"}"#;
    let (sa, sb) = (Side::new("tab-b"), Side::new("tab-a"));
    session((&a, &sa, &k), (&b, &sb, &k), async {
        until("both converged", || async {
            get(&a, "n1").await.as_deref() == Some(expected)
                && get(&b, "n1").await.as_deref() == Some(expected)
        })
        .await;
    })
    .await;
    resolve(a.close()).await.unwrap();
    resolve(b.close()).await.unwrap();
}

#[wasm_bindgen_test]
async fn catch_up_resumes_from_the_persisted_cursor_after_reopening() {
    let (a, b) = (fresh("s-resume-a").await, fresh("s-resume-b").await);
    for i in 0..3 {
        put(&a, &format!("n{i}"), &format!(r#"{{"i":{i}}}"#)).await;
    }
    let k = key(7);
    let (sa, sb) = (Side::new("tab-b"), Side::new("tab-a"));
    session((&a, &sa, &k), (&b, &sb, &k), async {
        until("b caught up with three", || async {
            sb.status.get().caught_up && get(&b, "n2").await.is_some()
        })
        .await;
    })
    .await;
    // Three records of two slot versions each (life and field).
    assert_eq!(sb.status.get().stats.changes_in, 6);
    // What a reload does: b's store closed and opened again.
    resolve(b.close()).await.unwrap();
    let b = Store::open("s-resume-b".into(), Some(options())).await.unwrap();
    let cursor = b.replica().peer_cursor("tab-a").await.unwrap();
    assert_eq!(
        cursor,
        SyncCursor::complete(DbVersion(3)),
        "the cursor persisted"
    );
    put(&a, "n3", r#"{"i":3}"#).await;
    let (sa, sb) = (Side::new("tab-b"), Side::new("tab-a"));
    session((&a, &sa, &k), (&b, &sb, &k), async {
        until("b has n3", || async {
            sb.status.get().caught_up && get(&b, "n3").await.is_some()
        })
        .await;
    })
    .await;
    assert_eq!(
        sb.status.get().stats.changes_in,
        2,
        "only the new record was sent"
    );
    assert_eq!(get(&b, "n0").await.as_deref(), Some(r#"{"i":0}"#));
    resolve(a.close()).await.unwrap();
    resolve(b.close()).await.unwrap();
}

#[wasm_bindgen_test]
async fn a_wrong_group_key_is_rejected_and_nothing_is_applied() {
    let (a, b) = (fresh("s-key-a").await, fresh("s-key-b").await);
    put(&a, "n1", r#"{"secret":true}"#).await;
    let (sa, sb) = (Side::new("tab-b"), Side::new("tab-a"));
    let (end_a, end_b) = session((&a, &sa, &key(7)), (&b, &sb, &key(8)), async {
        until("both ended", || async {
            sa.status.get().ended() && sb.status.get().ended()
        })
        .await;
    })
    .await;
    let wrong = |by_peer| SessionEnd::Closed {
        reason: Rejection::WrongSecret,
        by_peer,
    };
    assert_eq!(
        end_b,
        wrong(false),
        "the listener checks the dialer's proof"
    );
    assert_eq!(end_a, wrong(true));
    assert_eq!(
        sa.status.get().state,
        PeerState::Rejected {
            reason: Rejection::WrongSecret,
            by_peer: true
        }
    );
    assert_eq!(get(&b, "n1").await, None);
    assert_eq!(version(&b).await, 0, "nothing was written");
    let cursor = b.replica().peer_cursor("tab-a").await.unwrap();
    assert_eq!(cursor, SyncCursor::default());
    resolve(a.close()).await.unwrap();
    resolve(b.close()).await.unwrap();
}

#[wasm_bindgen_test]
async fn re_delivered_changes_are_harmless_and_a_refused_batch_moves_no_cursor() {
    let (a, b) = (fresh("s-dup-a").await, fresh("s-dup-b").await);
    put(&a, "n1", r#"{"title":"x"}"#).await;
    put(&a, "n2", r#"{"title":"y"}"#).await;
    let (ra, rb) = (a.replica(), b.replica());
    let read = ra
        .read_changes("tab-b", SyncCursor::default(), 100, 1 << 20)
        .await
        .unwrap();
    assert_eq!(read.changes.len(), 4);
    assert!(!read.more);
    let cursor = SyncCursor::default().advance(read.upto, read.more);
    let now = BrowserTimer.now_ms();
    let first = rb.apply("tab-a", &read.changes, cursor, now).await.unwrap();
    assert_eq!(first.applied, 4);
    assert_eq!(first.versions, Some((DbVersion(1), DbVersion(2))));
    // The same batch again (a re-sent chunk): nothing changes, no version.
    let again = rb.apply("tab-a", &read.changes, cursor, now).await.unwrap();
    assert_eq!(
        (again.applied, again.not_newer, again.versions),
        (0, 4, None)
    );
    assert_eq!(version(&b).await, 2);
    assert_eq!(get(&b, "n1").await.as_deref(), Some(r#"{"title":"x"}"#));
    assert_eq!(rb.peer_cursor("tab-a").await.unwrap(), cursor);
    // A batch with one malformed change is refused whole: nothing merged,
    // the cursor not moved.
    let mut bad = read.changes.clone();
    bad[1].value = Some(CanonicalJson::from_trusted("\"changed\"".into()));
    bad.push(shoal_core::Change {
        slot: Slot::Life,
        value: Some(CanonicalJson::from_trusted("1".into())),
        ..read.changes[0].clone()
    });
    let later = SyncCursor::complete(DbVersion(99));
    assert!(rb.apply("tab-a", &bad, later, now).await.is_err());
    assert_eq!(rb.peer_cursor("tab-a").await.unwrap(), cursor);
    assert_eq!(get(&b, "n1").await.as_deref(), Some(r#"{"title":"x"}"#));
    assert_eq!(version(&b).await, 2);
    resolve(a.close()).await.unwrap();
    resolve(b.close()).await.unwrap();
}

#[wasm_bindgen_test]
async fn a_ten_thousand_record_catch_up_arrives_whole() {
    let (a, b) = (fresh("s-big-a").await, fresh("s-big-b").await);
    // Seed a fast: 10,000 records merged in one transaction, as if from a peer.
    let seed = |i: u32| {
        let change = |slot: Slot, value: Option<&str>| shoal_core::Change {
            collection: shoal_core::CollectionName::new("notes").unwrap(),
            id: shoal_core::RecordId::new(format!("n{i:05}")).unwrap(),
            slot,
            value: value.map(|v| CanonicalJson::from_trusted(v.to_string())),
            clock: shoal_core::Clock {
                hlc: shoal_core::Hlc::new(1_000, 0),
                site: shoal_core::SiteId(9),
            },
            life: shoal_core::Life(1),
            position: Default::default(),
            pred: None,
        };
        let title = shoal_core::FieldName::new("title").unwrap();
        [
            change(Slot::Life, None),
            change(Slot::Field(title), Some("\"a note of some length\"")),
        ]
    };
    let changes: Vec<shoal_core::Change> = (0..10_000).flat_map(seed).collect();
    let now = BrowserTimer.now_ms();
    a.replica()
        .apply("seed", &changes, SyncCursor::default(), now)
        .await
        .unwrap();
    assert_eq!(version(&a).await, 10_000);
    let k = key(7);
    let (sa, sb) = (Side::new("tab-b"), Side::new("tab-a"));
    let started = BrowserTimer.now_ms();
    session((&a, &sa, &k), (&b, &sb, &k), async {
        until("b caught up", || async {
            sb.status.get().caught_up && sb.status.get().stats.changes_in == 20_000
        })
        .await;
    })
    .await;
    let took = BrowserTimer.now_ms() - started;
    console_log!("10,000-record catch-up between two tabs: {took} ms");
    assert_eq!(version(&b).await, 10_000);
    assert_eq!(
        get(&b, "n09999").await.as_deref(),
        Some(r#"{"title":"a note of some length"}"#)
    );
    resolve(a.close()).await.unwrap();
    resolve(b.close()).await.unwrap();
}

/// A change of record `id` in `notes`: its life, or `field` set to `value`.
fn note_change(id: &str, field: Option<(&str, &str)>, ms: u64) -> shoal_core::Change {
    shoal_core::Change {
        collection: shoal_core::CollectionName::new("notes").unwrap(),
        id: shoal_core::RecordId::new(id).unwrap(),
        slot: match field {
            Some((name, _)) => Slot::Field(shoal_core::FieldName::new(name).unwrap()),
            None => Slot::Life,
        },
        value: field.map(|(_, v)| CanonicalJson::from_trusted(v.to_string())),
        clock: shoal_core::Clock {
            hlc: shoal_core::Hlc::new(ms, 0),
            site: shoal_core::SiteId(9),
        },
        life: shoal_core::Life(1),
        position: Default::default(),
        pred: None,
    }
}

#[wasm_bindgen_test]
async fn a_merge_reads_the_records_it_touches_however_far_apart() {
    let b = fresh("s-load-b").await;
    let rb = b.replica();
    let now = BrowserTimer.now_ms();
    let seed: Vec<shoal_core::Change> = (0..100)
        .flat_map(|i| {
            let id = format!("n{i:03}");
            [
                note_change(&id, None, 1_000),
                note_change(&id, Some(("a", "1")), 1_000),
            ]
        })
        .collect();
    rb.apply("p", &seed, SyncCursor::default(), now)
        .await
        .unwrap();
    // Two records with 98 stored between them: each read by itself.
    let far = [
        note_change("n000", Some(("b", "2")), 2_000),
        note_change("n099", Some(("b", "2")), 2_000),
    ];
    let report = rb
        .apply("p", &far, SyncCursor::default(), now)
        .await
        .unwrap();
    assert_eq!(report.applied, 2);
    // A run of neighbours: read with one getAll over their stretch.
    let near: Vec<shoal_core::Change> = (10..20)
        .map(|i| note_change(&format!("n{i:03}"), Some(("b", "3")), 2_000))
        .collect();
    rb.apply("p", &near, SyncCursor::default(), now)
        .await
        .unwrap();
    for (id, b_value) in [("n000", 2), ("n099", 2), ("n010", 3), ("n019", 3)] {
        assert_eq!(
            get(&b, id).await,
            Some(format!(r#"{{"a":1,"b":{b_value}}}"#)),
            "{id} kept its field a"
        );
    }
    assert_eq!(get(&b, "n050").await.as_deref(), Some(r#"{"a":1}"#));
    assert_eq!(version(&b).await, 112);
    resolve(b.close()).await.unwrap();
}

#[wasm_bindgen_test]
async fn device_admission_is_checked_and_a_devices_delete_is_not_taken() {
    use shoal_core::devices::{
        Admission, DEVICES_COLLECTION, DeviceRole, OWNER_RECORD, OwnerKey, Statement,
    };
    let (a, b) = (fresh("s-dev-a").await, fresh("s-dev-b").await);
    let owner = OwnerKey::from_seed([5; 32]);
    let devices = a.collection(DEVICES_COLLECTION).unwrap();
    let json = |value: serde_json::Value| js_sys::JSON::parse(&value.to_string()).unwrap();
    let owner_record = json(serde_json::json!({ "key": owner.public().to_hex() }));
    resolve(devices.put(OWNER_RECORD.into(), owner_record))
        .await
        .unwrap();
    put(&a, "n1", r#"{"x":1}"#).await;
    // An owner and no admission for tab-b: a refuses it by name.
    let k = key(7);
    let (sa, sb) = (Side::new("tab-b"), Side::new("tab-a"));
    let (end_a, _) = session((&a, &sa, &k), (&b, &sb, &k), async {
        until("both ended", || async {
            sa.status.get().ended() && sb.status.get().ended()
        })
        .await;
    })
    .await;
    assert_eq!(
        end_a,
        SessionEnd::Closed {
            reason: Rejection::NotAdmitted,
            by_peer: false
        }
    );
    assert_eq!(
        sb.status.get().state,
        PeerState::Rejected {
            reason: Rejection::NotAdmitted,
            by_peer: true
        }
    );
    assert_eq!(get(&b, "n1").await, None, "nothing reached tab-b");
    // Both admitted by the owner: they sync, the devices records too.
    let mut admitted = Vec::new();
    for device in ["tab-a", "tab-b", "tab-c"] {
        let signed = Statement::Admit(Admission {
            device: device.into(),
            role: DeviceRole::Member,
            collections: Default::default(),
            admitted_ms: 10,
            device_key: None,
            name: String::new(),
        })
        .sign(&owner);
        let id = signed.statement.record_id();
        let value = json(serde_json::json!({ "statement": signed.to_text() }));
        resolve(devices.put(id.clone(), value)).await.unwrap();
        admitted.push(id);
    }
    let (sa, sb) = (Side::new("tab-b"), Side::new("tab-a"));
    let b_devices = b.collection(DEVICES_COLLECTION).unwrap();
    session((&a, &sa, &k), (&b, &sb, &k), async {
        until("b has n1", || async { get(&b, "n1").await.is_some() }).await;
        // A delete of an admission (tab-c's) is no change a replica takes.
        resolve(devices.delete(admitted[2].clone())).await.unwrap();
        put(&a, "n2", r#"{"after":"the delete"}"#).await;
        until("b has n2", || async { get(&b, "n2").await.is_some() }).await;
    })
    .await;
    let kept = resolve(b_devices.get(admitted[2].clone())).await.unwrap();
    assert!(!kept.is_null(), "tab-b kept the admission a deleted");
    let gone = resolve(devices.get(admitted[2].clone())).await.unwrap();
    assert!(gone.is_null(), "deleted in a");
    resolve(a.close()).await.unwrap();
    resolve(b.close()).await.unwrap();
}
