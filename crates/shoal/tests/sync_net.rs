//! Sync between real nodes over real loopback sockets (TCP + Noise + Yamux,
//! mDNS off): convergence both ways, relaying along a line, a mesh with
//! concurrent edits, deletes against edits, restarts that transfer only what
//! was missed, and wrong secrets that receive nothing.

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);

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
        b.store
            .collection("tasks")
            .unwrap()
            .get("from-a")
            .unwrap()
            .is_some_and(|r| r["n"] == 3)
    })
    .await;
    let status = b
        .node
        .peer(&a.node.peer_id())
        .expect("a is in b's peer table");
    assert_eq!(status.state, shoal::PeerState::Connected);
    assert!(status.last_sync_ms.is_some());
}
