//! The conflict journal over real nodes on loopback: two nodes that edited
//! the same field while apart each journal exactly one entry, with both
//! values, once they meet and converge; an edit made after seeing the
//! other node's value (sequential) journals nothing; and restoring the lost
//! value is an ordinary write that syncs. The nodes agree on the
//! predecessors feature, which carries what the journal reads.

use crate::common;

use common::*;
use serde_json::{Value, json};
use shoal::{ConflictQuery, Feature, JournalledConflict, Store, SyncCursor};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

fn journal(store: &Store) -> Vec<JournalledConflict> {
    store.conflicts(&ConflictQuery::default()).expect("journal")
}

fn field(store: &Store, id: &str, name: &str) -> Option<Value> {
    store
        .collection("notes")
        .and_then(|c| c.get(id))
        .expect("get")
        .and_then(|r| r.get(name).cloned())
}

fn patch(store: &Store, id: &str, body: Value) {
    store
        .collection("notes")
        .expect("notes")
        .patch(id, body)
        .expect("patch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_offline_edits_are_journalled_once_on_each_node_and_sequential_ones_never() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a_store = Store::open(dir.path().join("a.db")).expect("open a");
    let b_store = Store::open(dir.path().join("b.db")).expect("open b");
    let notes = a_store.collection("notes").expect("notes");
    notes
        .put("n1", json!({"title": "base", "body": "x"}))
        .expect("put");
    notes.put("n2", json!({"title": "base"})).expect("put");
    // Both hold the same records, synced over the network (so each keeps a
    // cursor for the other), before they go their own ways.
    let a = start_with(a_store, group_key(), vec![], |_| {}).await;
    let b = start_with(
        b_store.clone(),
        group_key(),
        vec![a.address.clone()],
        |_| {},
    )
    .await;
    connected(&a, &b, WAIT).await;
    converge(&[&a.store, &b.store], WAIT).await;
    // Each has a cursor for the other, so they meet again by catch-up (a
    // node with records and no cursor would rejoin by reconciliation, where
    // only the node whose value lost is sure to journal it: docs/merge.md).
    let (pa, pb) = (a.node.peer_id().to_string(), b.node.peer_id().to_string());
    wait_for("both cursors persisted", WAIT, || {
        let fresh = SyncCursor::default();
        a.store.peer_cursor(&pb).is_ok_and(|c| c != fresh)
            && b.store.peer_cursor(&pa).is_ok_and(|c| c != fresh)
    })
    .await;
    b.node.shutdown().await;

    // Apart: each edits n1's title.
    patch(&a.store, "n1", json!({"title": "written on A"}));
    patch(&b_store, "n1", json!({"title": "written on B"}));

    let b = start_with(b_store, group_key(), vec![a.address.clone()], |_| {}).await;
    connected(&a, &b, WAIT).await;
    converge(&[&a.store, &b.store], WAIT).await;
    // Their changes carried predecessors (sync_versions.rs: a link without
    // them journals nothing).
    let features = a
        .node
        .peer(&b.node.peer_id())
        .and_then(|s| s.protocol)
        .expect("b's protocol")
        .features;
    assert!(features.contains(&Feature::Predecessors), "{features:?}");
    wait_for("a journal entry on each node", WAIT, || {
        !journal(&a.store).is_empty() && !journal(&b.store).is_empty()
    })
    .await;

    let kept = field(&a.store, "n1", "title").expect("title");
    let lost = if kept == json!("written on A") {
        json!("written on B")
    } else {
        json!("written on A")
    };
    for (node, store) in [("A", &a.store), ("B", &b.store)] {
        let entries = journal(store);
        assert_eq!(entries.len(), 1, "{node}: {entries:?}");
        let entry = &entries[0].entry;
        assert_eq!(
            (entry.collection.as_str(), entry.id.as_str()),
            ("notes", "n1")
        );
        assert_eq!(
            entry.kept.value.as_ref().map(|v| v.to_value()),
            Some(kept.clone())
        );
        assert_eq!(
            entry.lost.value.as_ref().map(|v| v.to_value()),
            Some(lost.clone())
        );
        assert_ne!(entry.kept.clock.site, entry.lost.clock.site);
    }

    // Sequential: B edits n2 after seeing A's edit, and A again after B's.
    patch(&a.store, "n2", json!({"title": "A first"}));
    wait_for("A's edit at B", WAIT, || {
        field(&b.store, "n2", "title") == Some(json!("A first"))
    })
    .await;
    patch(&b.store, "n2", json!({"title": "B after A"}));
    wait_for("B's edit at A", WAIT, || {
        field(&a.store, "n2", "title") == Some(json!("B after A"))
    })
    .await;
    patch(&a.store, "n2", json!({"title": "A after B"}));

    // Restoring the lost value (as the dashboard does) is a new local
    // write: it syncs, and is no conflict either.
    patch(&b.store, "n1", json!({"title": lost.clone()}));
    converge(&[&a.store, &b.store], WAIT).await;
    wait_for("everything at both nodes", WAIT, || {
        field(&b.store, "n2", "title") == Some(json!("A after B"))
            && field(&a.store, "n1", "title") == Some(lost.clone())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(journal(&a.store).len(), 1, "{:?}", journal(&a.store));
    assert_eq!(journal(&b.store).len(), 1, "{:?}", journal(&b.store));
}
