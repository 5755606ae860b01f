//! Shared helpers for the network integration tests: real stores in temp
//! directories, real nodes on loopback (mDNS off), and polling waits with
//! deadlines so a failure is a clear message, never a hang.
#![allow(dead_code)]

pub mod bare;
pub mod blobs;
pub mod door;

use shoal::{GroupKey, Multiaddr, Node, NodeConfig, PeerId, PeerState, Store};
use std::path::Path;
use std::time::{Duration, Instant};

/// A group key shared by the members in a test.
pub fn group_key() -> GroupKey {
    GroupKey::from_random([42; 32])
}

/// A store and its running node.
pub struct Peer {
    pub store: Store,
    pub node: Node,
    pub address: Multiaddr,
}

/// Opens `dir/name.db` and starts a loopback node for it dialing `peers`.
pub async fn start(dir: &Path, name: &str, key: GroupKey, peers: Vec<Multiaddr>) -> Peer {
    let store = Store::open(dir.join(format!("{name}.db"))).expect("open store");
    start_with(store, key, peers, |_| {}).await
}

/// Starts a node for `store`, letting the test adjust the config.
pub async fn start_with(
    store: Store,
    key: GroupKey,
    peers: Vec<Multiaddr>,
    adjust: impl FnOnce(&mut NodeConfig),
) -> Peer {
    let mut config = NodeConfig::loopback(key);
    config.peers = peers;
    config.redial_interval = Duration::from_millis(300);
    adjust(&mut config);
    let node = store.start_node(config).await.expect("start node");
    let address = node
        .listen_addrs(Duration::from_secs(10))
        .await
        .expect("listen address")
        .into_iter()
        .find(|a| a.to_string().contains("/tcp/"))
        .expect("a TCP address");
    Peer {
        store,
        node,
        address,
    }
}

/// How many peer cursors the database at `path` holds (read beside the
/// node running on it).
pub fn peer_cursor_count(path: &Path) -> usize {
    rusqlite::Connection::open(path)
        .expect("open the database raw")
        .query_row("SELECT count(*) FROM peer_cursors", [], |r| {
            r.get::<_, i64>(0)
        })
        .expect("count cursors") as usize
}

/// Deletes every peer cursor in the stopped node's database at `path`, as
/// a node that lost them (a restore, a damaged table) would be; returns how
/// many there were.
pub fn wipe_peer_cursors(path: &Path) -> usize {
    rusqlite::Connection::open(path)
        .expect("open the database raw")
        .execute("DELETE FROM peer_cursors", [])
        .expect("wipe cursors")
}

/// Polls `check` until it holds or `limit` passes; panics with `what` on timeout.
pub async fn wait_for(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        if start.elapsed() > limit {
            panic!("timed out after {limit:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether `node` sees `peer` as a connected, authenticated member.
pub fn is_connected(node: &Node, peer: PeerId) -> bool {
    node.peer(&peer)
        .is_some_and(|s| s.state == PeerState::Connected)
}

/// Waits until `a` and `b` each see the other as an authenticated member.
pub async fn connected(a: &Peer, b: &Peer, limit: Duration) {
    let (a_id, b_id) = (a.node.peer_id(), b.node.peer_id());
    wait_for("both sessions authenticated", limit, || {
        is_connected(&a.node, b_id) && is_connected(&b.node, a_id)
    })
    .await;
}

/// The TCP port of a loopback multiaddr.
pub fn tcp_port(address: &Multiaddr) -> u16 {
    address
        .iter()
        .find_map(|p| match p {
            libp2p::multiaddr::Protocol::Tcp(port) => Some(port),
            _ => None,
        })
        .expect("a TCP address")
}

/// Every record of every collection with its clocks, for equality checks.
pub fn state(store: &Store) -> Vec<String> {
    let mut lines: Vec<String> = store
        .changes_since(shoal::DbVersion(0))
        .map(|c| {
            let c = c.expect("read log");
            format!(
                "{}/{} {:?} {:?} {} {}",
                c.collection, c.id, c.slot, c.value, c.clock, c.life
            )
        })
        .collect();
    lines.sort();
    lines
}

/// Waits until all stores hold identical records and clocks.
pub async fn converge(stores: &[&Store], limit: Duration) {
    wait_for("replicas to converge", limit, || {
        let first = state(stores[0]);
        !first.is_empty() && stores[1..].iter().all(|s| state(s) == first)
    })
    .await;
}
