//! Peers of different protocol versions, over real loopback sockets: a node
//! acting as the previous protocol (hello without an offer, as protocol-2
//! builds send it) and a current one sync both ways and use no feature —
//! their changes travel without predecessors, and edits that cross the
//! link one after the other journal no conflict on either side;
//! two current nodes use the features both have; a node without grouped
//! changes (the layout before them) and a current one sync alike, the
//! current pair in fewer bytes; a node far newer (one
//! that no longer talks this build's protocol) is refused by both sides,
//! each saying which machine to upgrade, and no record crosses.

use crate::common;

use common::*;
use serde_json::json;
use shoal::{
    ConflictQuery, Feature, FeatureSet, Incompatible, Node, Offer, PROTOCOL_VERSION, PeerId,
    PeerProtocol, PeerState, Store,
};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);

async fn start_offering(
    dir: &std::path::Path,
    name: &str,
    offer: Offer,
    peers: Vec<shoal::Multiaddr>,
) -> Peer {
    let store = Store::open(dir.join(format!("{name}.db"))).expect("open store");
    start_with(store, group_key(), peers, |config| {
        config.sync.offer = offer
    })
    .await
}

fn protocol(node: &Node, peer: &PeerId) -> Option<PeerProtocol> {
    node.peer(peer).and_then(|s| s.protocol)
}

fn put(store: &Store, id: &str, n: i64) {
    store
        .collection("notes")
        .unwrap()
        .put(id, json!({"n": n}))
        .unwrap();
}

fn n_of(store: &Store, id: &str) -> Option<serde_json::Value> {
    store
        .collection("notes")
        .unwrap()
        .get(id)
        .unwrap()
        .and_then(|r| r.get("n").cloned())
}

fn has(store: &Store, id: &str) -> bool {
    store
        .collection("notes")
        .unwrap()
        .get(id)
        .unwrap()
        .is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_previous_protocol_node_and_a_current_one_sync_without_features() {
    let dir = tempfile::tempdir().unwrap();
    let current = start(dir.path(), "current", group_key(), vec![]).await;
    put(&current.store, "from-current", 1);
    let old = start_offering(
        dir.path(),
        "old",
        Offer::protocol_2(),
        vec![current.address.clone()],
    )
    .await;
    put(&old.store, "from-old", 2);
    converge(&[&current.store, &old.store], LIMIT).await;
    // Live pushes both ways.
    put(&current.store, "live-current", 3);
    put(&old.store, "live-old", 4);
    wait_for("both live writes to cross", LIMIT, || {
        has(&old.store, "live-current") && has(&current.store, "live-old")
    })
    .await;
    let seen_by_current = protocol(&current.node, &old.node.peer_id()).expect("old's protocol");
    assert_eq!(
        seen_by_current,
        PeerProtocol {
            version: 2,
            agreed: 2,
            features: vec![],
            software: None
        }
    );
    let seen_by_old = protocol(&old.node, &current.node.peer_id()).expect("current's protocol");
    assert_eq!(
        (
            seen_by_old.version,
            seen_by_old.agreed,
            seen_by_old.features.len(),
            seen_by_old.software
        ),
        (PROTOCOL_VERSION, 2, 0, None),
        "the previous-protocol node was sent a feature message"
    );
    assert_eq!(
        current.node.peer(&old.node.peer_id()).unwrap().state,
        PeerState::Connected
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_crossing_a_link_without_predecessors_are_not_journalled() {
    let dir = tempfile::tempdir().unwrap();
    let current = start(dir.path(), "current", group_key(), vec![]).await;
    let old = start_offering(
        dir.path(),
        "old",
        Offer::protocol_2(),
        vec![current.address.clone()],
    )
    .await;
    // Each edit is made after seeing the one before, alternately on either
    // side: sequential, so no conflict. The writer's predecessor does not
    // cross this link (a protocol-2 build has none), and an unknown one must
    // not be taken for "replaced nothing", which would journal each edit.
    put(&old.store, "seq", 1);
    for (n, store) in [(2, &current.store), (3, &old.store), (4, &current.store)] {
        wait_for("the previous edit to cross", LIMIT, || {
            n_of(&current.store, "seq") == Some(json!(n - 1))
                && n_of(&old.store, "seq") == Some(json!(n - 1))
        })
        .await;
        store
            .collection("notes")
            .unwrap()
            .patch("seq", json!({"n": n}))
            .unwrap();
    }
    wait_for("the last edit to cross", LIMIT, || {
        n_of(&old.store, "seq") == Some(json!(4))
    })
    .await;
    converge(&[&current.store, &old.store], LIMIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (name, store) in [("current", &current.store), ("old", &old.store)] {
        let journal = store.conflicts(&ConflictQuery::default()).unwrap();
        assert!(journal.is_empty(), "{name} journalled {journal:?}");
    }
    let features = protocol(&current.node, &old.node.peer_id())
        .unwrap()
        .features;
    assert!(!features.contains(&Feature::Predecessors));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn current_nodes_use_only_the_features_both_have() {
    let dir = tempfile::tempdir().unwrap();
    let a = start(dir.path(), "a", group_key(), vec![]).await;
    let b = start(dir.path(), "b", group_key(), vec![a.address.clone()]).await;
    let plain = Offer {
        features: FeatureSet::NONE,
        ..Offer::current()
    };
    let c = start_offering(dir.path(), "c", plain, vec![a.address.clone()]).await;
    put(&a.store, "r", 1);
    converge(&[&a.store, &b.store, &c.store], LIMIT).await;
    wait_for("a and b to exchange their builds", LIMIT, || {
        protocol(&a.node, &b.node.peer_id()).is_some_and(|p| p.software.is_some())
            && protocol(&b.node, &a.node.peer_id()).is_some_and(|p| p.software.is_some())
    })
    .await;
    let ab = protocol(&a.node, &b.node.peer_id()).unwrap();
    assert_eq!(
        ab.features,
        vec![
            Feature::About,
            Feature::Predecessors,
            Feature::PartialReplica,
            Feature::GroupedChanges,
            Feature::FilteredReport,
        ]
    );
    assert_eq!(ab.agreed, PROTOCOL_VERSION);
    assert!(ab.software.unwrap().starts_with("Shoal "));
    // c has the version but not the feature: nothing of it is used either way.
    let ac = protocol(&a.node, &c.node.peer_id()).expect("c's protocol");
    let ca = protocol(&c.node, &a.node.peer_id()).expect("a's protocol");
    assert_eq!((ac.features.len(), ac.software), (0, None));
    assert_eq!((ca.features.len(), ca.software), (0, None));
    assert_eq!(
        a.node.peer(&c.node.peer_id()).unwrap().state,
        PeerState::Connected
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_grouped_changes_and_a_current_one_sync_alike() {
    let dir = tempfile::tempdir().unwrap();
    let a = start(dir.path(), "a", group_key(), vec![]).await;
    // Several chunks' worth (a chunk carries at most 16,384 changes) of
    // three-field records, and one record of many fields.
    let records: Vec<(String, serde_json::Value)> = (0..6000)
        .map(|i| {
            let record = json!({"n": i, "title": format!("note {i}"), "done": i % 2 == 0});
            (format!("r{i}"), record)
        })
        .collect();
    let notes = a.store.collection("notes").unwrap();
    notes.put_many(records).unwrap();
    let wide: serde_json::Map<String, serde_json::Value> =
        (0..300).map(|i| (format!("f{i}"), json!(i))).collect();
    notes.put("wide", serde_json::Value::Object(wide)).unwrap();
    let before = Offer {
        features: FeatureSet::NONE
            .with(Feature::About)
            .with(Feature::Predecessors),
        ..Offer::current()
    };
    let b = start_offering(dir.path(), "b", before, vec![a.address.clone()]).await;
    let c = start(dir.path(), "c", group_key(), vec![a.address.clone()]).await;
    converge(&[&a.store, &b.store, &c.store], LIMIT).await;
    // Live pushes both ways, and edits made after seeing the other side's
    // are no conflict on either link (predecessors cross both layouts).
    put(&b.store, "from-b", 1);
    put(&c.store, "from-c", 2);
    notes.patch("r7", json!({"title": "edited on a"})).unwrap();
    converge(&[&a.store, &b.store, &c.store], LIMIT).await;
    b.store
        .collection("notes")
        .unwrap()
        .patch("r7", json!({"title": "edited on b"}))
        .unwrap();
    wait_for("b's edit to reach c", LIMIT, || {
        c.store
            .collection("notes")
            .unwrap()
            .get("r7")
            .unwrap()
            .and_then(|r| r.get("title").cloned())
            == Some(json!("edited on b"))
    })
    .await;
    converge(&[&a.store, &b.store, &c.store], LIMIT).await;
    for (name, store) in [("a", &a.store), ("b", &b.store), ("c", &c.store)] {
        let journal = store.conflicts(&ConflictQuery::default()).unwrap();
        assert!(journal.is_empty(), "{name} journalled {journal:?}");
    }
    let ab = protocol(&a.node, &b.node.peer_id()).expect("b's protocol");
    let ac = protocol(&a.node, &c.node.peer_id()).expect("c's protocol");
    assert_eq!(ab.features, vec![Feature::About, Feature::Predecessors]);
    assert!(ac.features.contains(&Feature::GroupedChanges));
    // The same records cost c far fewer bytes than b.
    let to_b = a.node.peer(&b.node.peer_id()).unwrap().bytes_out;
    let to_c = a.node.peer(&c.node.peer_id()).unwrap().bytes_out;
    assert!(to_c * 3 < to_b * 2, "to c {to_c} bytes, to b {to_b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incompatible_node_is_refused_by_name_on_both_sides() {
    let dir = tempfile::tempdir().unwrap();
    let current = start(dir.path(), "current", group_key(), vec![]).await;
    put(&current.store, "kept-here", 1);
    let far = Offer {
        version: PROTOCOL_VERSION + 6,
        oldest: PROTOCOL_VERSION + 2,
        features: FeatureSet::all(),
    };
    let newer = start_offering(dir.path(), "newer", far, vec![current.address.clone()]).await;
    put(&newer.store, "kept-there", 2);
    let state_of = |node: &Node, peer: &PeerId| node.peer(peer).map(|s| s.state);
    wait_for("both sides to refuse", LIMIT, || {
        matches!(
            state_of(&current.node, &newer.node.peer_id()),
            Some(PeerState::Incompatible { .. })
        ) && matches!(
            state_of(&newer.node, &current.node.peer_id()),
            Some(PeerState::Incompatible { .. })
        )
    })
    .await;
    let Some(PeerState::Incompatible { why: here }) =
        state_of(&current.node, &newer.node.peer_id())
    else {
        unreachable!()
    };
    let Some(PeerState::Incompatible { why: there }) =
        state_of(&newer.node, &current.node.peer_id())
    else {
        unreachable!()
    };
    assert_eq!(
        here,
        Incompatible::PeerNewer {
            peer: PROTOCOL_VERSION + 6,
            peer_oldest: PROTOCOL_VERSION + 2
        }
    );
    assert_eq!(
        there,
        Incompatible::PeerOlder {
            peer: PROTOCOL_VERSION,
            oldest: PROTOCOL_VERSION + 2
        }
    );
    assert!(
        here.to_string().contains("peer runs a newer Shoal")
            && here.to_string().ends_with("upgrade this node"),
        "{here}"
    );
    assert!(
        there.to_string().contains("peer runs an older Shoal")
            && there.to_string().ends_with("upgrade it"),
        "{there}"
    );
    // Nothing crossed, and redials keep the verdict.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!has(&newer.store, "kept-here") && !has(&current.store, "kept-there"));
    assert!(matches!(
        state_of(&current.node, &newer.node.peer_id()),
        Some(PeerState::Incompatible { .. })
    ));
}
