//! Peers over WebSocket (the transport a browser tab speaks), over real
//! loopback sockets: a node listening on `/ip4/127.0.0.1/tcp/0/ws` admits a
//! member that dials it there with the same membership proof and syncs with
//! it both ways; a peer with the wrong secret is rejected and receives
//! nothing; garbage on the WebSocket port (before and after the WebSocket
//! upgrade) costs the node nothing; and the half-open handshake cap
//! (`ConnectionCaps::pending`) and the transport's handshake timeout apply
//! to WebSocket connections as to TCP ones.

use crate::common;

use common::*;
use serde_json::json;
use shoal::{GroupKey, Multiaddr, PeerState, Rejection, Store};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const LIMIT: Duration = Duration::from_secs(60);

/// Starts a node that also listens for WebSocket peers; returns it and its
/// `/ws` address ending in `/p2p/<peer id>`.
async fn ws_node(
    dir: &std::path::Path,
    name: &str,
    key: GroupKey,
    adjust: impl FnOnce(&mut shoal::NodeConfig),
) -> (Peer, Multiaddr) {
    let store = Store::open(dir.join(format!("{name}.db"))).unwrap();
    let peer = start_with(store, key, vec![], |c| {
        c.listen.push("/ip4/127.0.0.1/tcp/0/ws".parse().unwrap());
        adjust(c);
    })
    .await;
    // listen_addrs answers once any listener is up; the WebSocket one may
    // come up a moment after the TCP and QUIC ones, so ask until it is there.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let ws = loop {
        let found = peer
            .node
            .listen_addrs(Duration::from_secs(10))
            .await
            .unwrap()
            .into_iter()
            .find(|a| a.to_string().contains("/ws"));
        match found {
            Some(ws) => break ws,
            None if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            None => panic!("no /ws listen address within 10 s"),
        }
    };
    (peer, ws)
}

fn put(peer: &Peer, id: &str, value: serde_json::Value) {
    peer.store
        .collection("notes")
        .unwrap()
        .put(id, value)
        .unwrap();
}

fn get(peer: &Peer, id: &str) -> Option<serde_json::Value> {
    peer.store
        .collection("notes")
        .unwrap()
        .get(id)
        .unwrap()
        .map(serde_json::Value::Object)
}

/// The TCP port of a `/ip4/…/tcp/N/ws/…` address.
fn ws_port(address: &Multiaddr) -> u16 {
    tcp_port(address)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_dialing_the_websocket_address_syncs_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let (a, ws) = ws_node(dir.path(), "a", group_key(), |_| {}).await;
    assert!(
        ws.to_string()
            .ends_with(&format!("/ws/p2p/{}", a.node.peer_id())),
        "{ws}"
    );
    put(&a, "from-a", json!({"n": 1}));
    let b = start(dir.path(), "b", group_key(), vec![ws.clone()]).await;
    connected(&a, &b, LIMIT).await;
    wait_for("a's record to reach b over ws", LIMIT, || {
        get(&b, "from-a").is_some()
    })
    .await;
    put(&b, "from-b", json!({"n": 2}));
    wait_for("b's record to reach a over ws", LIMIT, || {
        get(&a, "from-b") == Some(json!({"n": 2}))
    })
    .await;
    // The connection b holds is the WebSocket one: it dialed nothing else.
    let status = b.node.peer(&a.node.peer_id()).expect("a in b's table");
    assert_eq!(status.state, PeerState::Connected);
    converge(&[&a.store, &b.store], LIMIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_over_websocket_is_rejected_and_receives_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (a, ws) = ws_node(dir.path(), "a", group_key(), |_| {}).await;
    put(&a, "secret", json!({"n": 1}));
    let stranger = start(
        dir.path(),
        "stranger",
        GroupKey::from_random([7; 32]),
        vec![ws],
    )
    .await;
    let a_id = a.node.peer_id();
    wait_for("the stranger to be rejected", LIMIT, || {
        stranger.node.peer(&a_id).is_some_and(|s| {
            matches!(
                s.state,
                PeerState::Rejected {
                    reason: Rejection::WrongSecret,
                    ..
                }
            )
        })
    })
    .await;
    assert_eq!(get(&stranger, "secret"), None);
    assert!(
        stranger
            .store
            .changes_since(shoal::DbVersion(0))
            .next()
            .is_none(),
        "the stranger received changes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_websocket_port_costs_the_node_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (a, ws) = ws_node(dir.path(), "a", group_key(), |_| {}).await;
    let port = ws_port(&ws);
    // Not HTTP at all.
    let mut raw = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    raw.write_all(&[0xff; 4096]).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), raw.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the node kept a garbage connection open");
    // A proper WebSocket upgrade, then binary frames of garbage where the
    // Noise handshake should be.
    let mut upgraded = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let request = format!(
        "GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    );
    upgraded.write_all(request.as_bytes()).await.unwrap();
    let mut head = vec![0u8; 1024];
    let n = upgraded.read(&mut head).await.unwrap();
    let head = String::from_utf8_lossy(&head[..n]).to_string();
    assert!(head.starts_with("HTTP/1.1 101"), "no upgrade: {head}");
    // A masked binary frame (clients must mask) of 100 bytes of 0x42.
    let mut frame = vec![0x82, 0x80 | 100, 1, 2, 3, 4];
    frame.extend((0..100).map(|i| 0x42 ^ [1, 2, 3, 4][i % 4]));
    for _ in 0..10 {
        if upgraded.write_all(&frame).await.is_err() {
            break;
        }
    }
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), upgraded.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "the node kept a garbage WebSocket open");
    assert!(a.node.peers().is_empty(), "{:?}", a.node.peers());
    // And a member still gets in and syncs.
    put(&a, "after", json!({"ok": true}));
    let b = start(dir.path(), "b", group_key(), vec![ws]).await;
    wait_for("a member to sync after the garbage", LIMIT, || {
        get(&b, "after").is_some()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_handshakes_held_half_open_count_against_the_cap_and_time_out() {
    const CAP: u32 = 4;
    let dir = tempfile::tempdir().unwrap();
    let (a, ws) = ws_node(dir.path(), "a", group_key(), |c| {
        c.connections.pending = CAP;
    })
    .await;
    put(&a, "held", json!({"n": 1}));
    let port = ws_port(&ws);
    // Strangers that upgrade to WebSocket and then never start Noise: a tab
    // that never finishes the handshake.
    let mut held = Vec::new();
    for _ in 0..CAP {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let request = format!(
            "GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n"
        );
        s.write_all(request.as_bytes()).await.unwrap();
        held.push(s);
    }
    // Give the node time to accept them all before the member dials.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = std::time::Instant::now();
    let b = start(dir.path(), "b", group_key(), vec![ws]).await;
    let a_id = a.node.peer_id();
    // While the slots are taken, the member is refused at once.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !is_connected(&b.node, a_id) && get(&b, "held").is_none(),
        "a member got past {CAP} half-open WebSocket handshakes"
    );
    // The transport's handshake timeout drops the half-open ones (the
    // strangers still hold their sockets), and the member gets in.
    wait_for(
        "the member to sync once the half-open ones time out",
        LIMIT,
        || get(&b, "held").is_some(),
    )
    .await;
    eprintln!("member synced after {:?}", started.elapsed());
    // Each stranger's socket was closed by the node.
    for mut s in held {
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest)).await;
        assert!(read.is_ok(), "a half-open WebSocket is still open");
    }
}
