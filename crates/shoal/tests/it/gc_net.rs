//! Tombstone collection with real nodes over loopback: A, B and C hold the
//! same records; C goes away; A deletes two of them, B receives the
//! deletes, and both collect them once past the horizon (C never
//! acknowledged them). C, still holding both alive, edits one while away and
//! comes back. Neither record comes back to life anywhere — C's edit (sent by
//! its catch-up) and its untouched stale copy (found by A's reconciliation)
//! lose to the collected delete — C's edit is in A's conflict journal, and
//! C itself ends up holding both deleted. A record nobody deleted, and one C
//! created while away, are alive everywhere.

use crate::common;

use common::{connected, group_key, start_with, wait_for};
use serde_json::json;
use shoal::{GcPolicy, Store};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);

fn alive(store: &Store, id: &str) -> bool {
    store
        .collection("notes")
        .unwrap()
        .get(id)
        .unwrap()
        .is_some()
}

/// The values lost in `store`'s conflict journal.
fn journalled(path: &std::path::Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.prepare("SELECT lost_value FROM conflicts WHERE lost_value IS NOT NULL")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_back_after_the_horizon_cannot_revive_collected_records() {
    let dir = tempfile::tempdir().unwrap();
    let key = group_key();
    let fast = |c: &mut shoal::NodeConfig| c.anti_entropy = Some(Duration::from_millis(500));
    let a = start_with(
        Store::open(dir.path().join("a.db")).unwrap(),
        key.clone(),
        vec![],
        fast,
    )
    .await;
    let b = start_with(
        Store::open(dir.path().join("b.db")).unwrap(),
        key.clone(),
        vec![a.address.clone()],
        fast,
    )
    .await;
    let c_path = dir.path().join("c.db");
    let c = start_with(
        Store::open(&c_path).unwrap(),
        key.clone(),
        vec![a.address.clone()],
        fast,
    )
    .await;
    connected(&a, &b, LIMIT).await;
    connected(&a, &c, LIMIT).await;
    let notes = a.store.collection("notes").unwrap();
    for id in ["gone", "stale", "kept"] {
        notes.put(id, json!({"text": id})).unwrap();
    }
    wait_for("B and C hold the records", LIMIT, || {
        ["gone", "stale", "kept"]
            .iter()
            .all(|id| alive(&b.store, id) && alive(&c.store, id))
    })
    .await;

    // C goes away.
    c.node.shutdown().await;
    drop(c);
    notes.delete("gone").unwrap();
    notes.delete("stale").unwrap();
    wait_for("B has the deletes", LIMIT, || {
        !alive(&b.store, "gone") && !alive(&b.store, "stale")
    })
    .await;
    let b_peer = b.node.peer_id().to_string();
    let head = a.store.db_version();
    wait_for("A has B's acknowledgement of the deletes", LIMIT, || {
        let db = shoal_store::Store::open(dir.path().join("a.db"), Default::default()).unwrap();
        db.peer_acked(&b_peer).unwrap().is_some_and(|v| v >= head)
    })
    .await;
    // C, known to A, has not acknowledged the deletes: within the horizon
    // nothing is collected.
    let month = GcPolicy::default();
    let report = a.store.collect_tombstones(month, |_| {}).unwrap();
    assert_eq!((report.rows_reclaimed, report.kept), (0, 2), "{report:?}");
    assert!(
        report.waiting_for.iter().all(|(p, _)| *p != b_peer) && !report.waiting_for.is_empty(),
        "only C holds collection back: {report:?}"
    );
    // Past the horizon (here: 1 ms), both collect.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let horizon = GcPolicy { horizon_ms: 1 };
    assert_eq!(
        a.store
            .collect_tombstones(horizon, |_| {})
            .unwrap()
            .rows_reclaimed,
        2
    );
    assert_eq!(
        b.store
            .collect_tombstones(horizon, |_| {})
            .unwrap()
            .rows_reclaimed,
        2
    );
    assert_eq!(a.store.tombstones().unwrap().held, 0);
    assert_eq!(a.store.tombstones().unwrap().collected, 2);

    // While away, C edits one of them and creates a new record.
    let c_store = Store::open(&c_path).unwrap();
    let c_notes = c_store.collection("notes").unwrap();
    c_notes
        .patch("stale", json!({"text": "edited while away"}))
        .unwrap();
    c_notes
        .put("new", json!({"text": "written while away"}))
        .unwrap();
    assert!(alive(&c_store, "gone") && alive(&c_store, "stale"));

    // C comes back.
    let c = start_with(c_store, key, vec![a.address.clone()], fast).await;
    connected(&a, &c, LIMIT).await;
    wait_for("C's new record reaches A and B", LIMIT, || {
        alive(&a.store, "new") && alive(&b.store, "new")
    })
    .await;
    wait_for("C receives the collected deletes", LIMIT, || {
        !alive(&c.store, "gone") && !alive(&c.store, "stale")
    })
    .await;
    // Let sync and reconciliation run a few more rounds: nothing revives.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (name, store) in [("A", &a.store), ("B", &b.store), ("C", &c.store)] {
        assert!(!alive(store, "gone"), "gone is alive on {name}");
        assert!(!alive(store, "stale"), "stale is alive on {name}");
        assert!(alive(store, "kept"), "kept is missing on {name}");
        assert!(alive(store, "new"), "new is missing on {name}");
    }
    let lost = journalled(&dir.path().join("a.db"));
    assert!(
        lost.iter().any(|v| v == "\"edited while away\""),
        "C's edit is journalled on A: {lost:?}"
    );
}
