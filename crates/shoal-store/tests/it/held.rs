//! Changes held back for their clock, at the storage layer: a peer's batch
//! with one record whose clock is past the drift bound merges everything
//! else and moves the cursor; the far record waits in the held table (per
//! peer, persisted across reopening), the local HLC does not jump to it, and
//! it merges once the bound allows it. A local merge (no peer) still refuses
//! the batch whole.

use shoal_core::{Change, CollectionName, DbVersion, Hlc, Intent, RecordId, SyncCursor};
use shoal_store::{Store, StoreConfig, StoreError, WriteOp};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("time")
        .as_millis() as u64
}

fn open(path: &Path, max_drift_ms: u64) -> Store {
    let config = StoreConfig {
        max_drift_ms,
        ..StoreConfig::default()
    };
    Store::open(path, config).expect("open")
}

/// The changes of records `ids` written on a store of their own; those of
/// `future` get a clock `ahead` ms in the future.
fn remote(dir: &Path, ids: &[&str], future: &str, ahead: u64) -> Vec<Change> {
    let mut writer = open(&dir.join("writer.db"), 60_000);
    let notes = CollectionName::new("notes").expect("name");
    let ops: Vec<WriteOp> = ids
        .iter()
        .map(|id| WriteOp {
            collection: notes.clone(),
            id: RecordId::new(*id).expect("id"),
            intent: Intent::Put(
                serde_json::json!({"id": id})
                    .as_object()
                    .expect("obj")
                    .clone(),
            ),
        })
        .collect();
    writer.write(ops).expect("write");
    let mut changes: Vec<Change> = writer
        .changes_since(DbVersion(0))
        .map(|c| c.expect("read"))
        .collect();
    for change in &mut changes {
        if change.id.as_str() == future {
            change.clock.hlc = Hlc::new(now_ms() + ahead, 0);
        }
    }
    changes
}

#[test]
fn a_far_clock_is_held_and_the_rest_of_the_batch_merges() {
    let dir = tempfile::tempdir().expect("tempdir");
    let changes = remote(dir.path(), &["a", "far", "b"], "far", 120_000);
    let path = dir.path().join("b.db");
    let mut store = open(&path, 10_000);
    let notes = CollectionName::new("notes").expect("name");
    let get = |store: &Store, id: &str| {
        store
            .get(&notes, &RecordId::new(id).expect("id"))
            .expect("get")
    };

    // A local merge of the same batch is still refused whole.
    assert!(matches!(
        store.apply(&changes),
        Err(StoreError::Invalid(
            shoal_core::CoreError::ClockTooFarAhead { .. }
        ))
    ));
    let cursor = SyncCursor::complete(DbVersion(7));
    let report = store.apply_from("peer-1", &changes, cursor).expect("apply");
    assert!(report.held > 0, "{report:?}");
    assert!(get(&store, "a").is_some() && get(&store, "b").is_some());
    assert!(get(&store, "far").is_none());
    assert_eq!(store.peer_cursor("peer-1").expect("cursor"), cursor);
    assert!(
        store.last_hlc().wall_ms() < now_ms() + 60_000,
        "the HLC jumped"
    );
    let held = store.held_back().expect("held");
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].peer, "peer-1");
    assert_eq!(held[0].changes as usize, report.held);
    assert!(held[0].ahead_ms(now_ms()) > 100_000);

    // Still too far: releasing merges nothing; the table survives reopening.
    assert_eq!(store.release_held().expect("release").applied, 0);
    drop(store);
    let mut store = open(&path, 10_000);
    assert_eq!(store.held_back().expect("held").len(), 1);
    // The bound is raised: it merges, and the table is empty.
    store.set_max_drift_ms(600_000);
    let report = store.release_held().expect("release");
    assert!(report.applied > 0, "{report:?}");
    assert!(get(&store, "far").is_some());
    assert!(store.held_back().expect("held").is_empty());
}

#[test]
fn one_peer_fills_only_its_share_of_the_held_table() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ids: Vec<String> = (0..30_000).map(|i| format!("r{i:05}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut far = remote(dir.path(), &ids, "", 0);
    for change in &mut far {
        change.clock.hlc = Hlc::new(now_ms() + 600_000, 0);
    }
    let per_record = far.len() / ids.len();
    // One peer's share: a quarter of the table's bound.
    let share = (shoal_store::MAX_HELD_CHANGES / 4) as usize;
    let fits = share / per_record * per_record;
    let mut store = open(&dir.path().join("b.db"), 10_000);
    let cursor = SyncCursor::complete(DbVersion(1));
    let report = store
        .apply_from("flood", &far[..fits], cursor)
        .expect("apply");
    assert_eq!(report.held, fits);
    // One record more from the same peer passes its share: refused by name.
    let more = &far[fits..fits + per_record];
    match store.apply_from("flood", more, cursor) {
        Err(StoreError::HeldFull { per_peer, .. }) => assert!(per_peer),
        other => panic!("the flooding peer's batch was not refused: {other:?}"),
    }
    // Another peer's change with a far clock is still held, not refused:
    // the table is far from its own bound.
    let report = store
        .apply_from("honest", more, cursor)
        .expect("another peer's batch");
    assert_eq!(report.held, per_record);
}
