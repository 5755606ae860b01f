//! Finding members again over real loopback sockets: a node writes where it
//! reached each member (and what the member announced) into its address
//! book file once the member proved itself, and after a restart with no
//! peer configured redials them from the book alone; a book with a bad line
//! is read past it. (Across NAT, with relays and a member that moves, see
//! `crates/shoal-cli/tests/it/natlab_find.rs`.)

use crate::common;

use common::*;
use serde_json::json;
use shoal::{Multiaddr, PeerState, Store};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_member_finds_the_group_from_its_address_book() {
    let dir = tempfile::tempdir().unwrap();
    let (a_book, b_book) = (dir.path().join("a.txt"), dir.path().join("b.txt"));
    let book_of = |path: &std::path::Path| {
        let path = path.to_path_buf();
        move |config: &mut shoal::NodeConfig| config.address_book = Some(path)
    };
    let a_store = Store::open(dir.path().join("a.db")).unwrap();
    let a = start_with(a_store, group_key(), vec![], book_of(&a_book)).await;
    let b_store = Store::open(dir.path().join("b.db")).unwrap();
    let b = start_with(
        b_store,
        group_key(),
        vec![a.address.clone()],
        book_of(&b_book),
    )
    .await;
    connected(&a, &b, LIMIT).await;
    let (a_id, b_id) = (a.node.peer_id(), b.node.peer_id());
    // A was never told of B: it learned B's listen addresses from B.
    let b_addresses = b.node.listen_addrs(Duration::from_secs(5)).await.unwrap();
    wait_for("A to write B's address in", LIMIT, || {
        std::fs::read_to_string(&a_book).is_ok_and(|t| t.contains(&format!("{b_id} {}", b.address)))
    })
    .await;
    wait_for("B to write A's address in", LIMIT, || {
        std::fs::read_to_string(&b_book).is_ok_and(|t| t.contains(&a_id.to_string()))
    })
    .await;
    a.node.shutdown().await;
    b.node.shutdown().await;
    let (a_store, b_store) = (a.store.clone(), b.store.clone());
    drop((a, b));
    // A cache with a bad line is read past it.
    let text = std::fs::read_to_string(&a_book).unwrap();
    std::fs::write(&a_book, format!("not an entry\n{text}")).unwrap();
    // B comes back where it was; neither is given a peer.
    let listen: Vec<Multiaddr> = b_addresses
        .iter()
        .map(|address| {
            let mut bare = address.clone();
            bare.pop(); // the /p2p/<id> ending
            bare
        })
        .collect();
    // The old node's QUIC endpoint closes its UDP socket in a task of its
    // own, a moment after shutdown returns: wait until every port is free,
    // or the restart races it ("address already in use").
    wait_for("B's old sockets to close", LIMIT, || {
        listen.iter().all(port_is_free)
    })
    .await;
    let b = start_with(b_store, group_key(), vec![], |config| {
        config.address_book = Some(b_book.clone());
        config.listen = listen;
    })
    .await;
    b.store
        .collection("notes")
        .unwrap()
        .put("n1", json!({"t": "written while A was away"}))
        .unwrap();
    let a = start_with(a_store, group_key(), vec![], book_of(&a_book)).await;
    connected(&a, &b, LIMIT).await;
    converge(&[&a.store, &b.store], LIMIT).await;
    assert_eq!(
        a.node.peer(&b_id).map(|s| s.state),
        Some(PeerState::Connected)
    );
}

/// Whether the TCP or UDP port of a loopback listen address can be bound
/// again (binding it here and letting it go at once).
fn port_is_free(address: &Multiaddr) -> bool {
    use libp2p::multiaddr::Protocol;
    let mut ip = None;
    for part in address.iter() {
        match part {
            Protocol::Ip4(a) => ip = Some(std::net::IpAddr::V4(a)),
            Protocol::Ip6(a) => ip = Some(std::net::IpAddr::V6(a)),
            Protocol::Tcp(port) => {
                let at = std::net::SocketAddr::new(ip.expect("ip before port"), port);
                return std::net::TcpListener::bind(at).is_ok();
            }
            Protocol::Udp(port) => {
                let at = std::net::SocketAddr::new(ip.expect("ip before port"), port);
                return std::net::UdpSocket::bind(at).is_ok();
            }
            _ => {}
        }
    }
    true
}
