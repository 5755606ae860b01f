//! Sync between real nodes over real loopback sockets (TCP + Noise + Yamux,
//! mDNS off): convergence both ways, relaying along a line whose ends never
//! meet, a four-node mesh with concurrent edits to the same and to different
//! fields, and deletes against concurrent edits and re-creates — identical
//! records and clocks on every replica; and a node shared behind an `Arc`
//! stopping through any handle.

use crate::common;

use common::*;
use serde_json::{Value, json};
use shoal::{ListOptions, PeerState, Store};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);

fn get(store: &Store, collection: &str, id: &str) -> Option<serde_json::Map<String, Value>> {
    store.collection(collection).unwrap().get(id).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_converge_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let a = start(dir.path(), "a", group_key(), vec![]).await;
    a.store
        .collection("tasks")
        .unwrap()
        .put("from-a", json!({"n": 1}))
        .unwrap();
    let b = start(dir.path(), "b", group_key(), vec![a.address.clone()]).await;
    b.store
        .collection("tasks")
        .unwrap()
        .put("from-b", json!({"n": 2}))
        .unwrap();
    converge(&[&a.store, &b.store], LIMIT).await;
    // Live: a write after the catch-up arrives by push.
    a.store
        .collection("tasks")
        .unwrap()
        .patch("from-a", json!({"n": 3}))
        .unwrap();
    wait_for("b to see the live edit", LIMIT, || {
        get(&b.store, "tasks", "from-a").is_some_and(|r| r["n"] == 3)
    })
    .await;
    let status = b
        .node
        .peer(&a.node.peer_id())
        .expect("a is in b's peer table");
    assert_eq!(status.state, PeerState::Connected);
    assert!(status.last_sync_ms.is_some());
}

/// A–B–C: A and C only know B. What A writes reaches C through B's log (B
/// applies it, which commits, which pushes it on), and the other way round —
/// both what was written before the line formed and what is written live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn line_relays_both_ways_through_the_middle() {
    let dir = tempfile::tempdir().unwrap();
    let b = start(dir.path(), "b", group_key(), vec![]).await;
    let a = start(dir.path(), "a", group_key(), vec![b.address.clone()]).await;
    a.store
        .collection("notes")
        .unwrap()
        .put("from-a", json!({"by": "a"}))
        .unwrap();
    let c = start(dir.path(), "c", group_key(), vec![b.address.clone()]).await;
    c.store
        .collection("notes")
        .unwrap()
        .put("from-c", json!({"by": "c"}))
        .unwrap();
    wait_for("c to see a's record", LIMIT, || {
        get(&c.store, "notes", "from-a").is_some()
    })
    .await;
    wait_for("a to see c's record", LIMIT, || {
        get(&a.store, "notes", "from-c").is_some()
    })
    .await;
    // Live edits at both ends cross the line too.
    a.store
        .collection("notes")
        .unwrap()
        .patch("from-c", json!({"seen_by_a": true}))
        .unwrap();
    c.store
        .collection("notes")
        .unwrap()
        .patch("from-a", json!({"seen_by_c": true}))
        .unwrap();
    converge(&[&a.store, &b.store, &c.store], LIMIT).await;
    assert_eq!(get(&c.store, "notes", "from-c").unwrap()["seen_by_a"], true);
    assert_eq!(get(&a.store, "notes", "from-a").unwrap()["seen_by_c"], true);
    // The ends never met: neither has the other in its peer table.
    assert!(a.node.peer(&c.node.peer_id()).is_none(), "a never saw c");
    assert!(c.node.peer(&a.node.peer_id()).is_none(), "c never saw a");
    assert_eq!(a.node.peers().len(), 1);
    assert_eq!(c.node.peers().len(), 1);
}

/// Four nodes in a full mesh, every one writing the same record (the same
/// field and a field of its own) and a record of its own before the mesh
/// forms, then again while it forms: every replica ends with the same
/// records and clocks, the shared field holds one of the later (live) writes,
/// and every node's own fields survive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesh_of_four_converges_under_concurrent_edits() {
    const N: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    let stores: Vec<Store> = (0..N)
        .map(|i| Store::open(dir.path().join(format!("n{i}.db"))).unwrap())
        .collect();
    // Before connecting: same record, same field and own field; own record.
    for (i, store) in stores.iter().enumerate() {
        let items = store.collection("items").unwrap();
        items
            .put(
                "shared",
                json!({"title": format!("by {i}"), format!("own{i}"): i}),
            )
            .unwrap();
        items.put(&format!("only-{i}"), json!({"n": i})).unwrap();
    }
    let mut peers = Vec::new();
    for (i, store) in stores.iter().enumerate() {
        let dial = peers.iter().map(|p: &Peer| p.address.clone()).collect();
        peers.push(start_with(store.clone(), group_key(), dial, |_| {}).await);
        // While the mesh forms: the same field again, and another own field.
        store
            .collection("items")
            .unwrap()
            .patch(
                "shared",
                json!({"title": format!("live {i}"), format!("live{i}"): i}),
            )
            .unwrap();
    }
    let all: Vec<&Store> = stores.iter().collect();
    converge(&all, LIMIT).await;
    let shared = get(&stores[0], "items", "shared").unwrap();
    for i in 0..N {
        assert_eq!(shared[&format!("own{i}")], json!(i), "{shared:?}");
        assert_eq!(shared[&format!("live{i}")], json!(i), "{shared:?}");
        assert_eq!(
            get(&stores[0], "items", &format!("only-{i}")).unwrap()["n"],
            json!(i)
        );
    }
    assert!(
        shared["title"].as_str().unwrap().starts_with("live "),
        "the later writes win over the earlier ones: {shared:?}"
    );
    // Every node sees every other connected and synced.
    for p in &peers {
        wait_for("a full mesh", LIMIT, || {
            p.node
                .peers()
                .iter()
                .filter(|s| s.state == PeerState::Connected && s.last_sync_ms.is_some())
                .count()
                == N - 1
        })
        .await;
    }
}

/// (live, deleted) records of `collection`.
fn counts(store: &Store, collection: &str) -> (u64, u64) {
    store
        .status()
        .unwrap()
        .collections
        .iter()
        .find(|c| c.name.as_str() == collection)
        .map_or((0, 0), |c| (c.live, c.deleted))
}

/// The lives in which `collection/id`'s slots were written, as the log shows them.
fn lives(store: &Store, collection: &str, id: &str) -> Vec<u64> {
    let mut lives: Vec<u64> = store
        .changes_since(shoal::DbVersion(0))
        .map(|c| c.unwrap())
        .filter(|c| c.collection.as_str() == collection && c.id.as_str() == id)
        .map(|c| c.life.0)
        .collect();
    lives.sort();
    lives.dedup();
    lives
}

/// A deletes a record while B, offline, edits it (later in wall time, same
/// life): once B is back, the delete wins on both and the edit does not bring
/// the record back. Then B re-creates it: one live record on both (never a
/// duplicate), in life 3, holding only the new life's fields.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_beats_concurrent_edit_and_recreate_starts_a_clean_life() {
    let dir = tempfile::tempdir().unwrap();
    let a = start(dir.path(), "a", group_key(), vec![]).await;
    let b_store = Store::open(dir.path().join("b.db")).unwrap();
    let b = start_with(
        b_store.clone(),
        group_key(),
        vec![a.address.clone()],
        |_| {},
    )
    .await;
    a.store
        .collection("docs")
        .unwrap()
        .put("d1", json!({"title": "first", "body": "old"}))
        .unwrap();
    a.store
        .collection("docs")
        .unwrap()
        .put("keep", json!({"n": 1}))
        .unwrap();
    converge(&[&a.store, &b.store], LIMIT).await;

    // Partition: B goes offline; A deletes, then B edits the same life.
    b.node.shutdown().await;
    a.store.collection("docs").unwrap().delete("d1").unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    b_store
        .collection("docs")
        .unwrap()
        .patch("d1", json!({"body": "edited offline", "extra": 1}))
        .unwrap();
    assert!(
        get(&b_store, "docs", "d1").is_some(),
        "B edited a live record"
    );
    let b = start_with(
        b_store.clone(),
        group_key(),
        vec![a.address.clone()],
        |_| {},
    )
    .await;
    converge(&[&a.store, &b.store], LIMIT).await;
    for store in [&a.store, &b.store] {
        assert_eq!(get(store, "docs", "d1"), None, "the delete wins");
        assert_eq!(counts(store, "docs"), (1, 1));
    }

    // Re-create on B, live: a new life with only the new fields.
    b.store
        .collection("docs")
        .unwrap()
        .put("d1", json!({"title": "second"}))
        .unwrap();
    converge(&[&a.store, &b.store], LIMIT).await;
    for store in [&a.store, &b.store] {
        let record = get(store, "docs", "d1").expect("re-created");
        assert_eq!(Value::Object(record), json!({"title": "second"}));
        assert_eq!(counts(store, "docs"), (2, 0));
        let page = store
            .collection("docs")
            .unwrap()
            .list(&ListOptions::default())
            .unwrap();
        let ids: Vec<&str> = page.records.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["d1", "keep"], "one record per id, never a duplicate");
        assert_eq!(
            lives(store, "docs", "d1"),
            [3],
            "life 3: created, deleted, re-created"
        );
    }
}

/// A server holds its node in an `Arc` that open connections share; stopping
/// through that shared handle must still stop the node: its peer sees it go,
/// every later call on any clone answers `Stopped`, and a second stop is a
/// no-op.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_node_stops_through_any_handle() {
    let dir = tempfile::tempdir().unwrap();
    let a = start(dir.path(), "a", group_key(), vec![]).await;
    let b = start(dir.path(), "b", group_key(), vec![a.address.clone()]).await;
    let a_id = a.node.peer_id();
    wait_for("b to connect", LIMIT, || is_connected(&b.node, a_id)).await;
    let shared = std::sync::Arc::new(a.node);
    let held_elsewhere = shared.clone();
    shared.shutdown().await;
    wait_for("b to see a go", LIMIT, || {
        b.node
            .peer(&a_id)
            .is_some_and(|s| s.state != PeerState::Connected)
    })
    .await;
    assert_eq!(
        held_elsewhere.sync_now().await,
        Err(shoal::NetError::Stopped)
    );
    held_elsewhere.shutdown().await;
}
