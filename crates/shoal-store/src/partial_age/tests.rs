//! The time sweep at a fixed `now`: a record whose date falls out of the
//! window is dropped (locally: no delete, no log entry), one inside is kept,
//! an own write no peer acknowledged is kept until one does, a collection
//! whose filter does not use `now` is not touched, and a pass pages.

use crate::{Store, StoreConfig, WriteOp};
use serde_json::json;
use shoal_core::{Change, CollectionName, DbVersion, Intent, RecordId, SyncCursor};

const SEC: u64 = 1_000;
/// The fixed "now" of the records' dates (Unix ms).
const T0: u64 = 1_800_000_000_000;

fn name(s: &str) -> CollectionName {
    CollectionName::new(s).unwrap()
}

fn id(s: &str) -> RecordId {
    RecordId::new(s).unwrap()
}

fn put(store: &mut Store, collection: &str, rid: &str, v: serde_json::Value) {
    store
        .write(vec![WriteOp {
            collection: name(collection),
            id: id(rid),
            intent: Intent::Put(v.as_object().unwrap().clone()),
        }])
        .unwrap();
}

fn all_changes(store: &Store) -> Vec<Change> {
    store
        .changes_since(DbVersion(0))
        .collect::<Result<_, _>>()
        .unwrap()
}

/// `device` takes everything `full` has, as a peer would send it.
fn receive(full: &Store, device: &mut Store) {
    let head = SyncCursor::complete(full.db_version());
    device.apply_from("full", &all_changes(full), head).unwrap();
}

/// A full store and a device store, fresh, under `dir`.
fn stores(dir: &std::path::Path) -> (Store, Store) {
    let open = |file: &str| Store::open(dir.join(file), StoreConfig::default()).unwrap();
    (open("full.db"), open("device.db"))
}

fn held(store: &Store, collection: &str, rid: &str) -> bool {
    store.get(&name(collection), &id(rid)).unwrap().is_some()
}

#[test]
fn records_out_of_a_now_window_leave_locally_and_the_rest_stay() {
    let dir = tempfile::tempdir().unwrap();
    let (mut full, mut device) = stores(dir.path());
    device
        .set_own_filter(&name("events"), Some("date >= now-30s"))
        .unwrap();
    device
        .set_own_filter(&name("notes"), Some(r#"owner = "bo""#))
        .unwrap();
    // At T0 every event is inside the window; 20 s later "old" is not.
    put(&mut full, "events", "old", json!({"date": T0 - 15 * SEC}));
    put(&mut full, "events", "new", json!({"date": T0 - SEC}));
    // A note outside its (time-free) filter the device holds anyway (an
    // older sender sends everything): the sweep must not touch it.
    put(&mut full, "notes", "al", json!({"owner": "al"}));
    receive(&full, &mut device);
    // The device's own write, dated out of the window, no peer has acknowledged.
    put(
        &mut device,
        "events",
        "mine",
        json!({"date": T0 - 60 * SEC}),
    );
    let head = device.db_version();

    let pass = device.age_out_pass(T0 + 20 * SEC).unwrap();
    assert_eq!(pass.collections(), &[name("events")]);
    assert_eq!(
        device.age_out(T0).unwrap(),
        0,
        "all inside at T0 but mine (kept)"
    );
    assert_eq!(device.age_out(T0 + 20 * SEC).unwrap(), 1);
    assert!(!held(&device, "events", "old"), "aged out");
    assert!(held(&device, "events", "new"), "inside the window");
    assert!(
        held(&device, "events", "mine"),
        "own write not yet acknowledged"
    );
    assert!(
        held(&device, "notes", "al"),
        "a filter without now is not swept"
    );
    // Dropped, not deleted: no log entry, the log head did not move, and the
    // sender still holds it.
    assert_eq!(device.db_version(), head);
    assert!(
        all_changes(&device).iter().all(|c| c.id != id("old")),
        "no delete or other change of the dropped record in the device's log"
    );
    assert!(held(&full, "events", "old"));

    // Once the peer acknowledged the device's log, its own write ages out too.
    device
        .set_peer_acked("full", SyncCursor::complete(device.db_version()))
        .unwrap();
    assert_eq!(device.age_out(T0 + 20 * SEC).unwrap(), 1);
    assert!(!held(&device, "events", "mine"));
    // Later still, "new" goes as well.
    assert_eq!(device.age_out(T0 + 40 * SEC).unwrap(), 1);
    assert!(!held(&device, "events", "new"));
    assert!(held(&device, "notes", "al"));
}

#[test]
fn a_pass_reads_a_bounded_page_per_step() {
    let dir = tempfile::tempdir().unwrap();
    let (mut full, mut device) = stores(dir.path());
    device
        .set_own_filter(&name("events"), Some("date >= now-1m"))
        .unwrap();
    let n = super::AGE_OUT_PAGE * 2 + 100;
    let ops: Vec<_> = (0..n)
        .map(|i| WriteOp {
            collection: name("events"),
            id: id(&format!("e{i:05}")),
            // Every third one is recent.
            intent: Intent::Put(
                json!({"date": if i % 3 == 0 { T0 } else { T0 - 120 * SEC }})
                    .as_object()
                    .unwrap()
                    .clone(),
            ),
        })
        .collect();
    full.write(ops).unwrap();
    receive(&full, &mut device);
    let mut pass = device.age_out_pass(T0).unwrap();
    let mut steps = 1;
    while device.age_out_step(&mut pass).unwrap() {
        steps += 1;
    }
    assert_eq!(steps, 3, "three pages of at most {}", super::AGE_OUT_PAGE);
    let old = (0..n).filter(|i| i % 3 != 0).count();
    assert_eq!(pass.dropped(), old);
    assert!(held(&device, "events", "e00000"));
    assert!(!held(&device, "events", "e00001"));
    // A filter removed mid-pass is honoured: nothing more goes.
    let mut pass = device.age_out_pass(T0 + 3_600 * SEC).unwrap();
    device.set_own_filter(&name("events"), None).unwrap();
    while device.age_out_step(&mut pass).unwrap() {}
    assert_eq!(pass.dropped(), 0);
    assert!(held(&device, "events", "e00000"));
}

/// Narrowing a filter drops by the same rule as the sweep (one shared
/// page function): an own write no peer acknowledged stays.
#[test]
fn narrowing_keeps_an_own_write_no_peer_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let (mut full, mut device) = stores(dir.path());
    put(&mut full, "notes", "theirs", json!({"owner": "al"}));
    receive(&full, &mut device);
    put(&mut device, "notes", "mine", json!({"owner": "al"}));
    let dropped = device
        .set_own_filter(&name("notes"), Some(r#"owner = "bo""#))
        .unwrap();
    assert_eq!(dropped, 1);
    assert!(!held(&device, "notes", "theirs"));
    assert!(held(&device, "notes", "mine"), "may exist nowhere else");
    device
        .set_peer_acked("full", SyncCursor::complete(device.db_version()))
        .unwrap();
    assert_eq!(
        device
            .set_own_filter(&name("notes"), Some(r#"owner = "bo""#))
            .unwrap(),
        1
    );
    assert!(!held(&device, "notes", "mine"));
}

#[test]
fn a_store_reopens_with_its_clock_past_a_dropped_records_clock() {
    let dir = tempfile::tempdir().unwrap();
    let (_full, mut device) = stores(dir.path());
    device
        .set_own_filter(&name("events"), Some("date >= now-30s"))
        .unwrap();
    // The device's own write, the newest clock it issued, out of the window.
    put(
        &mut device,
        "events",
        "mine",
        json!({"date": T0 - 60 * SEC}),
    );
    device
        .set_peer_acked("full", SyncCursor::complete(device.db_version()))
        .unwrap();
    assert_eq!(device.age_out(T0).unwrap(), 1);
    assert!(!held(&device, "events", "mine"));
    let issued = device.last_hlc();
    let path = device.path().to_path_buf();
    drop(device);
    // The clock restored on opening must not fall behind one already issued
    // (the record that carried it is gone from the log).
    let reopened = Store::open(path, StoreConfig::default()).unwrap();
    assert!(
        reopened.last_hlc() >= issued,
        "reopened at {:?}, behind {:?} issued before",
        reopened.last_hlc(),
        issued
    );
}
