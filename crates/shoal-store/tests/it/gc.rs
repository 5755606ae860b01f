//! Tombstone collection in the store: tombstones leave the record table once
//! every known peer acknowledged them (or past the horizon), the ledger keeps
//! what merges and writes need, and a stale copy brought back later loses,
//! is journalled and gets the delete back.

use serde_json::json;
use shoal_core::gc::GcPolicy;
use shoal_core::{Change, CollectionName, DbVersion, Intent, RecordId, SyncCursor};
use shoal_store::{ConflictQuery, Store, StoreConfig, WriteOp};

fn open(dir: &tempfile::TempDir, name: &str) -> Store {
    Store::open(dir.path().join(name), StoreConfig::default()).unwrap()
}

fn tasks() -> CollectionName {
    CollectionName::new("tasks").unwrap()
}

fn id(n: u32) -> RecordId {
    RecordId::new(format!("t{n}")).unwrap()
}

fn put(store: &mut Store, n: u32, v: serde_json::Value) {
    let body = json!({ "v": v }).as_object().unwrap().clone();
    store
        .write(vec![WriteOp {
            collection: tasks(),
            id: id(n),
            intent: Intent::Put(body),
        }])
        .unwrap();
}

fn delete(store: &mut Store, n: u32) {
    store
        .write(vec![WriteOp {
            collection: tasks(),
            id: id(n),
            intent: Intent::Delete,
        }])
        .unwrap();
}

fn all_changes(store: &Store) -> Vec<Change> {
    store
        .changes_since(DbVersion(0))
        .collect::<Result<_, _>>()
        .unwrap()
}

/// `to` pulls everything `from` has, as `peer`, and `from` hears the ack.
fn sync(from: &mut Store, to: &mut Store, from_name: &str, to_name: &str) {
    let changes = all_changes(from);
    let head = SyncCursor::complete(from.db_version());
    to.apply_from(from_name, &changes, head).unwrap();
    from.set_peer_acked(to_name, head).unwrap();
}

const KEEP_ALL: GcPolicy = GcPolicy {
    horizon_ms: u64::MAX / 4,
};

#[test]
fn acknowledged_tombstones_are_collected_and_a_stale_copy_cannot_revive_them() {
    let dir = tempfile::tempdir().unwrap();
    let (mut a, mut b, mut c) = (open(&dir, "a"), open(&dir, "b"), open(&dir, "c"));
    for n in 0..10 {
        put(&mut a, n, json!(n));
    }
    sync(&mut a, &mut b, "a", "b");
    sync(&mut a, &mut c, "a", "c");
    for n in 0..5 {
        delete(&mut a, n);
    }
    let head = a.db_version();
    sync(&mut a, &mut b, "a", "b");
    // c has not acknowledged the deletes: nothing goes.
    let report = a.collect_tombstones(KEEP_ALL, &mut |_| {}).unwrap();
    assert_eq!((report.rows_reclaimed, report.kept), (0, 5));
    assert_eq!(report.waiting_for.len(), 1, "{report:?}");
    assert_eq!(a.tombstones().unwrap().held, 5);

    // c edits t0 (still alive there) before it hears of the delete.
    put(&mut c, 0, json!("edited by c"));
    // c acknowledges a's log (its catch-up brought the deletes), but its own
    // copy of t0 is a *later* edit in the old life; to show the ledger's
    // rule, c's edit is applied on a after collection.
    a.set_peer_acked("c", SyncCursor::complete(head)).unwrap();
    let mut seen = Vec::new();
    let report = a
        .collect_tombstones(KEEP_ALL, &mut |p| seen.push(p))
        .unwrap();
    assert_eq!(report.rows_reclaimed, 5, "{report:?}");
    assert!(report.waiting_for.is_empty());
    assert_eq!(seen.last().unwrap().collected, 5);
    let status = a.tombstones().unwrap();
    assert_eq!((status.held, status.collected), (0, 5));
    assert_eq!(status.oldest_ms, None);
    // The head never moves back, also across a reopen.
    assert_eq!(a.db_version(), head);
    drop(a);
    let mut a = open(&dir, "a");
    assert_eq!(a.db_version(), head);
    assert!(a.get(&tasks(), &id(0)).unwrap().is_none());
    // Nothing of the collected records is in the log any more.
    assert!(all_changes(&a).iter().all(|ch| ch.id.as_str() >= "t5"));

    // c's stale copy of t0 comes back (its catch-up sends its edit): it
    // loses to the collected delete, is journalled, and the tombstone is
    // written back into a's log so c receives the delete.
    let stale: Vec<Change> = all_changes(&c)
        .into_iter()
        .filter(|ch| ch.id == id(0))
        .collect();
    let report = a
        .apply_from("c", &stale, SyncCursor::complete(c.db_version()))
        .unwrap();
    assert_eq!(report.applied, 0, "{report:?}");
    assert!(a.get(&tasks(), &id(0)).unwrap().is_none());
    let journal = a.conflicts(&ConflictQuery::default()).unwrap();
    assert!(
        journal
            .iter()
            .any(|j| j.entry.lost.value.as_ref().map(|v| v.as_str()) == Some("\"edited by c\"")),
        "{journal:?}"
    );
    let back: Vec<Change> = all_changes(&a)
        .into_iter()
        .filter(|ch| ch.id == id(0))
        .collect();
    assert_eq!(back.len(), 1, "the tombstone is back in the log: {back:?}");
    c.apply_from("a", &back, SyncCursor::complete(a.db_version()))
        .unwrap();
    assert!(c.get(&tasks(), &id(0)).unwrap().is_none(), "dead on c too");

    // A create at a collected id starts the next life, never life 1.
    put(&mut a, 1, json!("again"));
    let state = a.record_state(&tasks(), &id(1)).unwrap().unwrap();
    assert_eq!(state.life().0, 3);
    assert_eq!(
        a.tombstones().unwrap().collected,
        3,
        "t0 and t1 left the ledger"
    );
}

#[test]
fn past_the_horizon_tombstones_go_without_every_acknowledgement() {
    let dir = tempfile::tempdir().unwrap();
    let (mut a, mut b) = (open(&dir, "a"), open(&dir, "b"));
    put(&mut a, 1, json!(1));
    sync(&mut a, &mut b, "a", "b");
    delete(&mut a, 1);
    // b never acknowledges the delete.
    let report = a.collect_tombstones(KEEP_ALL, &mut |_| {}).unwrap();
    assert_eq!(report.rows_reclaimed, 0);
    std::thread::sleep(std::time::Duration::from_millis(5));
    let report = a
        .collect_tombstones(GcPolicy { horizon_ms: 1 }, &mut |_| {})
        .unwrap();
    assert_eq!(report.rows_reclaimed, 1);
    // b comes back with its live copy (a full state, as levelling sends):
    // it stays dead on a, and b gets the delete.
    let stale = b.record_changes(&tasks(), &id(1)).unwrap().unwrap();
    a.apply_from("b", &stale, b.peer_cursor("a").unwrap())
        .unwrap();
    assert!(a.get(&tasks(), &id(1)).unwrap().is_none());
    sync(&mut a, &mut b, "a", "b");
    assert!(b.get(&tasks(), &id(1)).unwrap().is_none());
}

#[test]
fn a_lone_node_keeps_its_tombstones_until_the_horizon() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = open(&dir, "a");
    put(&mut a, 1, json!(1));
    delete(&mut a, 1);
    let report = a.collect_tombstones(KEEP_ALL, &mut |_| {}).unwrap();
    assert_eq!((report.rows_reclaimed, report.kept), (0, 1));
    let status = a.tombstones().unwrap();
    assert_eq!(status.held, 1);
    assert!(status.oldest_ms.is_some());
}

/// Another process (`shoal gc` beside a daemon) collects a tombstone; the
/// daemon's store then sees the commit through any of its calls — here a
/// reconciliation view, as a peer's walk takes — and a stale live copy a
/// peer sends afterwards still loses to the collected delete.
#[test]
fn a_collection_by_another_process_holds_whichever_call_sees_it_first() {
    let dir = tempfile::tempdir().unwrap();
    let (mut a, mut b) = (open(&dir, "a"), open(&dir, "b"));
    put(&mut a, 1, json!(1));
    sync(&mut a, &mut b, "a", "b");
    delete(&mut a, 1);
    std::thread::sleep(std::time::Duration::from_millis(5));
    let mut beside = open(&dir, "a");
    let report = beside
        .collect_tombstones(GcPolicy { horizon_ms: 1 }, &mut |_| {})
        .unwrap();
    assert_eq!(report.rows_reclaimed, 1);
    drop(beside);
    // The daemon's first look at the file since the collection.
    a.recon_view(&tasks()).unwrap();
    let stale = b.record_changes(&tasks(), &id(1)).unwrap().unwrap();
    a.apply_from("b", &stale, b.peer_cursor("a").unwrap())
        .unwrap();
    assert!(
        a.get(&tasks(), &id(1)).unwrap().is_none(),
        "a collected record came back from a stale copy"
    );
}
