//! Nodes whose path misbehaves, over real loopback sockets through a
//! [`Door`](common::door::Door) forwarder: a dial still in flight when its
//! peer is forgotten does not connect; a path that goes silent (nothing
//! closed, nothing forwarded) is noticed by ping within the liveness
//! period, and the peer is redialed and synced once the path is back; a zero
//! liveness period is refused.

use crate::common;

use common::door::Door;
use common::*;
use serde_json::json;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);

/// The door holds each dial a second, so several (the first and its
/// redials) are still in flight when the peer is forgotten; every
/// connection they open afterwards must be closed, with no session on it
/// and neither side counting the other as connected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dial_in_flight_when_its_peer_is_forgotten_does_not_connect() {
    let dir = tempfile::tempdir().unwrap();
    let a = start(dir.path(), "a", group_key(), vec![]).await;
    let b = start(dir.path(), "b", group_key(), vec![]).await;
    let door = Door::open(tcp_port(&b.address), Duration::from_secs(1)).await;
    let b_id = b.node.peer_id();
    a.node.dial(door.address(b_id)).await.unwrap();
    // The dialed address is redialed every 300 ms: by now several dials are
    // held in the door at once.
    tokio::time::sleep(Duration::from_millis(700)).await;
    // Forgetting drops the address kept for redials.
    assert_eq!(a.node.forget_peer(b_id).await, Ok(1));
    wait_for("the door to join several dials to B", LIMIT, || {
        door.joined() >= 2
    })
    .await;
    // Time for the handshake over the joined connection, and for sessions.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!is_connected(&a.node, b_id), "{:?}", a.node.peer(&b_id));
    let a_id = a.node.peer_id();
    assert!(!is_connected(&b.node, a_id), "{:?}", b.node.peer(&a_id));
}

/// The path between two synced nodes goes silent. Ping notices within the
/// liveness period and the connection is closed on both sides (without it,
/// the dead connection looked established until the kernel's TCP timeout
/// and blocked every redial); once the path is back, the configured peer is
/// redialed and a write made meanwhile arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_gone_silent_is_noticed_and_healed() {
    let dir = tempfile::tempdir().unwrap();
    let quick = |c: &mut shoal::NodeConfig| {
        c.liveness = Duration::from_millis(500);
        c.redial_interval = Duration::from_millis(200);
    };
    let b = start_with(
        shoal::Store::open(dir.path().join("b.db")).unwrap(),
        group_key(),
        vec![],
        quick,
    )
    .await;
    let door = Door::open(tcp_port(&b.address), Duration::ZERO).await;
    let b_id = b.node.peer_id();
    let a = start_with(
        shoal::Store::open(dir.path().join("a.db")).unwrap(),
        group_key(),
        vec![door.address(b_id)],
        quick,
    )
    .await;
    let a_id = a.node.peer_id();
    connected(&a, &b, LIMIT).await;

    door.freeze(true);
    wait_for(
        "both to notice the silent path",
        Duration::from_secs(10),
        || !is_connected(&a.node, b_id) && !is_connected(&b.node, a_id),
    )
    .await;
    b.store
        .collection("notes")
        .unwrap()
        .put("while-away", json!({"n": 1}))
        .unwrap();

    door.freeze(false);
    wait_for("A to redial B and receive the write", LIMIT, || {
        a.store
            .collection("notes")
            .unwrap()
            .get("while-away")
            .unwrap()
            .is_some()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_liveness_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let store = shoal::Store::open(dir.path().join("a.db")).unwrap();
    let mut config = shoal::NodeConfig::loopback(group_key());
    config.liveness = Duration::ZERO;
    match store.start_node(config).await {
        Err(shoal::Error::Net(shoal::NetError::Setup(why))) => {
            assert!(why.contains("liveness"), "{why}")
        }
        Err(other) => panic!("wrong error: {other}"),
        Ok(_) => panic!("a node with zero liveness started"),
    }
}
