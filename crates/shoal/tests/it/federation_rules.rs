//! What reconciliation must never lose or leak, over real nodes on loopback:
//! a rejoin whose walk finds more differences per step than its limit still
//! pulls every one; a sharing rule that starts letting a collection flow
//! (either side's, with anti-entropy off) moves the data it held back at
//! once, also when it widened while the peer was away or the node stopped;
//! a collection this node only receives is walked without sending the
//! peer any of its ids, digests or flags; and a record of a collection not
//! received from the peer (or local-only) is never asked about, by Sync
//! Details or pull. (Pull and details in a collection only received are
//! `federation_blind.rs`'s.)

use crate::common;
use crate::spy;

use common::{
    Peer, connected, converge, group_key, start, start_with, wait_for, wipe_peer_cursors,
};
use serde_json::json;
use shoal::{CollectionName, FedError, RecordId, ShareMode, Store, Transfer};
use shoal_core::recon::Entry;
use shoal_core::sync::federation::Request;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);
/// "At once": well under any anti-entropy period, with room for a loaded machine.
const PROMPTLY: Duration = Duration::from_secs(20);

fn name(s: &str) -> CollectionName {
    CollectionName::new(s).expect("collection name")
}

fn has(store: &Store, collection: &str, id: &str) -> bool {
    store
        .collection(collection)
        .and_then(|c| c.get(id))
        .is_ok_and(|r| r.is_some())
}

fn write(store: &Store, collection: &str, id: &str) {
    store
        .collection(collection)
        .expect("collection")
        .put(id, json!({"from": id}))
        .expect("put");
}

/// Node A, and node B dialing it, both without anti-entropy (so only a
/// widened rule's levelling moves what a rule held back), connected.
async fn connected_without_anti_entropy(a_store: Store, b_store: Store) -> (Peer, Peer) {
    let a = start_with(a_store, group_key(), vec![], no_anti_entropy).await;
    let b = dialing_without_anti_entropy(b_store, &a).await;
    connected(&a, &b, WAIT).await;
    (a, b)
}

/// A node on `store` dialing `a`, without anti-entropy.
async fn dialing_without_anti_entropy(store: Store, a: &Peer) -> Peer {
    start_with(store, group_key(), vec![a.address.clone()], no_anti_entropy).await
}

fn no_anti_entropy(config: &mut shoal::NodeConfig) {
    config.anti_entropy = None;
}

/// Writes a record on A after those written before and waits for it at B:
/// B's cursor for A is then past them all.
async fn marker_at_b(a: &Peer, b: &Peer) {
    write(&a.store, "shared", "marker");
    wait_for("the marker at B", WAIT, || {
        has(&b.store, "shared", "marker")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejoin_pulls_every_difference_past_the_walk_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = start(dir.path(), "a", group_key(), vec![]).await;
    let b = start(dir.path(), "b", group_key(), vec![a.address.clone()]).await;
    let items = a.store.collection("items").expect("items");
    let records = (0..400).map(|i| (format!("item-{i:04}"), json!({"n": i})));
    items.put_many(records.collect::<Vec<_>>()).expect("fill");
    converge(&[&a.store, &b.store], WAIT).await;
    let b_path = dir.path().join("b.db");
    let Peer { store, node, .. } = b;
    node.shutdown().await;
    drop(store);
    // 120 records change while B is away, and B loses its cursor for A.
    for i in (0..400).step_by(4).chain(400..420) {
        items
            .put(&format!("item-{i:04}"), json!({"n": -1}))
            .expect("change");
    }
    wipe_peer_cursors(&b_path);
    // One step of B's walk finds far more than 3 differences; with
    // anti-entropy off, only the rejoin walk can bring them.
    let b = start_with(
        Store::open(&b_path).expect("reopen b"),
        group_key(),
        vec![a.address.clone()],
        |c| {
            c.recon.max_differences = 3;
            c.anti_entropy = None;
        },
    )
    .await;
    converge(&[&a.store, &b.store], WAIT).await;
    // It rejoined by the walk (the cursor moved to A's head), not by a full
    // catch-up. The walk's pulls land before it ends and moves the cursor:
    // records equal is not yet the walk's end.
    let a_id = a.node.peer_id();
    wait_for("B's cursor for A to move to A's head", PROMPTLY, || {
        b.node
            .peer(&a_id)
            .is_some_and(|status| status.cursor.base.0 > 0)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_widened_rule_moves_what_it_held_back_without_anti_entropy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a_store = Store::open(dir.path().join("a.db")).expect("open a");
    let b_store = Store::open(dir.path().join("b.db")).expect("open b");
    let (a_id, b_id) = (a_store.peer_id(), b_store.peer_id());
    // A does not send its diary to B; B does not take A's notes.
    a_store
        .share(&b_id, "diary", ShareMode::None)
        .expect("rule");
    b_store
        .share(&a_id, "notes", ShareMode::Send)
        .expect("rule");
    let (a, b) = connected_without_anti_entropy(a_store, b_store).await;
    write(&a.store, "diary", "d1");
    write(&a.store, "notes", "n1");
    // A later record in A's log: once it is at B, B's cursor is past both.
    marker_at_b(&a, &b).await;
    assert!(!has(&b.store, "diary", "d1") && !has(&b.store, "notes", "n1"));

    // B's own rule widens: it levels the collection with A at once.
    b.store
        .share(&a_id, "notes", ShareMode::Both)
        .expect("widen");
    wait_for("n1 at B after B's rule widened", PROMPTLY, || {
        has(&b.store, "notes", "n1")
    })
    .await;
    // A's rule widens: A asks B to level the collection with it.
    a.store
        .share(&b_id, "diary", ShareMode::Send)
        .expect("widen");
    wait_for("d1 at B after A's rule widened", PROMPTLY, || {
        has(&b.store, "diary", "d1")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_narrowed_and_widened_between_two_checks_still_levels() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a_store = Store::open(dir.path().join("a.db")).expect("open a");
    let b_store = Store::open(dir.path().join("b.db")).expect("open b");
    let b_id = b_store.peer_id();
    let (a, b) = connected_without_anti_entropy(a_store, b_store).await;
    // Narrowed, written, pushed past and widened again in a few
    // milliseconds: the session compares the rules every 500 ms, so it
    // almost never sees the narrowed rule; only the push that passed over
    // d1 does.
    a.store
        .share(&b_id, "diary", ShareMode::None)
        .expect("narrow");
    write(&a.store, "diary", "d1");
    marker_at_b(&a, &b).await;
    a.store
        .share(&b_id, "diary", ShareMode::Both)
        .expect("widen");
    assert!(
        !has(&b.store, "diary", "d1"),
        "the narrowed rule let d1 out"
    );
    wait_for("d1 at B after A's rule widened again", PROMPTLY, || {
        has(&b.store, "diary", "d1")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_widened_while_the_node_was_stopped_levels_as_it_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a_store = Store::open(dir.path().join("a.db")).expect("open a");
    let b_store = Store::open(dir.path().join("b.db")).expect("open b");
    let a_id = a_store.peer_id();
    // B does not take A's notes.
    b_store
        .share(&a_id, "notes", ShareMode::Send)
        .expect("rule");
    let (a, b) = connected_without_anti_entropy(a_store, b_store).await;
    write(&a.store, "notes", "n1");
    marker_at_b(&a, &b).await;
    assert!(!has(&b.store, "notes", "n1"));

    // B's node stops; its rule widens meanwhile (`shoal share` with no
    // daemon running); B's node starts again and levels the notes with A.
    let Peer {
        store: b_store,
        node,
        ..
    } = b;
    node.shutdown().await;
    b_store
        .share(&a_id, "notes", ShareMode::Both)
        .expect("widen");
    let b = dialing_without_anti_entropy(b_store, &a).await;
    wait_for(
        "n1 at B after its rule widened while stopped",
        PROMPTLY,
        || has(&b.store, "notes", "n1"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_widened_while_the_peer_was_away_levels_when_it_is_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a_store = Store::open(dir.path().join("a.db")).expect("open a");
    let b_store = Store::open(dir.path().join("b.db")).expect("open b");
    let b_id = b_store.peer_id();
    // A does not send its diary to B.
    a_store
        .share(&b_id, "diary", ShareMode::None)
        .expect("rule");
    let (a, b) = connected_without_anti_entropy(a_store, b_store).await;
    write(&a.store, "diary", "d1");
    marker_at_b(&a, &b).await;
    assert!(!has(&b.store, "diary", "d1"));

    // B goes away; A's rule widens while A knows B is gone; B comes back.
    let pb = b.node.peer_id();
    let Peer {
        store: b_store,
        node,
        ..
    } = b;
    node.shutdown().await;
    wait_for("A to see B gone", WAIT, || {
        !common::is_connected(&a.node, pb)
    })
    .await;
    a.store
        .share(&b_id, "diary", ShareMode::Send)
        .expect("widen");
    let b = dialing_without_anti_entropy(b_store, &a).await;
    wait_for(
        "d1 at B after A's rule widened while B was away",
        PROMPTLY,
        || has(&b.store, "diary", "d1"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receive_only_collection_is_walked_without_sending_ours() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a_store = Store::open(dir.path().join("a.db")).expect("open a");
    let b_store = Store::open(dir.path().join("b.db")).expect("open b");
    let (a_id, b_id) = (a_store.peer_id(), b_store.peer_id());
    // A takes B's inbox and sends none of its own; B keeps its secrets from A too.
    a_store
        .share(&b_id, "inbox", ShareMode::Receive)
        .expect("rule");
    b_store
        .share(&a_id, "inbox", ShareMode::Send)
        .expect("rule");
    for i in 0..30 {
        write(&a_store, "inbox", &format!("a-private-{i}"));
    }
    for i in 0..30 {
        write(&b_store, "inbox", &format!("b-{i}"));
    }
    let (spy, seen) = spy::Spy::new(b_store.clone());
    let (b_node, b_address) = spy::start(spy, vec![], |_| {}).await;
    let a = start_with(a_store, group_key(), vec![b_address], |c| {
        c.anti_entropy = None;
    })
    .await;
    wait_for("B's inbox at A", WAIT, || has(&a.store, "inbox", "b-29")).await;
    // B gains a record A lacks, which only a walk (or catch-up) can find.
    write(&b_store, "inbox", "b-late");

    // The integrity report and a levelling walk, both started by A.
    let report = a
        .node
        .reconcile(b_node.peer_id(), &name("inbox"))
        .await
        .expect("report");
    let levelled = a.node.level_with(b_node.peer_id()).await.expect("level");
    assert!(levelled.walked >= 1, "{levelled:?}");
    // What the report found is right: A's own records are local-only.
    assert_eq!(report.outcome.counts.local_only, 30, "{:?}", report.outcome);

    let seen = seen.lock().expect("seen").clone();
    let walks: Vec<&Vec<Entry>> = seen
        .iter()
        .filter_map(|r| match r {
            Request::Reconcile {
                collection,
                entries,
            } if collection == &name("inbox") => Some(entries),
            _ => None,
        })
        .collect();
    assert!(!walks.is_empty(), "no walk reached B: {seen:?}");
    for entries in walks {
        for entry in entries {
            // Only "list what you hold here": no fingerprint, id, digest or flag of A's.
            assert!(
                matches!(entry, Entry::Items { items, .. } if items.is_empty()),
                "A sent its own replica's state: {entry:?}"
            );
        }
    }
    for request in &seen {
        if let Request::Fetch { ids, .. } = request {
            let private = ids.iter().find(|id| id.as_str().starts_with("a-private"));
            assert!(private.is_none(), "A asked for its own id: {request:?}");
        }
    }
    b_node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_details_and_pull_of_an_unshared_collection_ask_the_peer_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a_store = Store::open(dir.path().join("a.db")).expect("open a");
    let b_store = Store::open(dir.path().join("b.db")).expect("open b");
    let b_id = b_store.peer_id();
    a_store
        .share(&b_id, "diary", ShareMode::None)
        .expect("rule");
    a_store
        .share(&b_id, "outbox", ShareMode::Send)
        .expect("rule");
    a_store.set_local_only("scratch", true).expect("rule");
    for collection in ["diary", "outbox", "scratch", "shared"] {
        write(&a_store, collection, "secret-id");
    }
    let (spy, seen) = spy::Spy::new(b_store);
    let (b_node, b_address) = spy::start(spy, vec![], |_| {}).await;
    let a = start_with(a_store, group_key(), vec![b_address], |c| {
        c.anti_entropy = None;
    })
    .await;
    let pb = b_node.peer_id();
    wait_for("A connected to B", WAIT, || {
        common::is_connected(&a.node, pb)
    })
    .await;
    let id = RecordId::new("secret-id").expect("id");
    for collection in ["diary", "outbox", "scratch"] {
        let asked = a.node.peer_record(pb, &name(collection), &id).await;
        assert_eq!(
            asked,
            Err(FedError::NotSharedHere(name(collection))),
            "{collection}"
        );
        let pulled = a.node.pull_record(pb, &name(collection), &id).await;
        assert_eq!(
            pulled,
            Transfer::Failed(FedError::NotSharedHere(name(collection))),
            "{collection}"
        );
    }
    // A collection shared both ways is still asked about (and answered).
    let shared = a.node.peer_record(pb, &name("shared"), &id).await;
    assert!(shared.is_ok(), "{shared:?}");
    let seen = seen.lock().expect("seen").clone();
    let named: Vec<&Request> = seen
        .iter()
        .filter(|r| match r {
            Request::Fetch { collection, .. } | Request::Reconcile { collection, .. } => {
                collection != &name("shared")
            }
            Request::Offer { collection, .. }
            | Request::Level { collection }
            | Request::Filtered { collection, .. } => collection != &name("shared"),
            Request::Collections => false,
        })
        .collect();
    assert!(
        named.is_empty(),
        "B was asked about unshared records: {named:?}"
    );
    assert!(
        seen.iter().any(
            |r| matches!(r, Request::Fetch { collection, .. } if collection == &name("shared"))
        ),
        "the spy saw nothing at all: {seen:?}"
    );
    b_node.shutdown().await;
}

/// A replica with many records meeting a peer that holds few (the peer is
/// catching up from it) has no cursor for the peer, so it rejoins — and the
/// peer's few records come by catch-up, not by a walk that would list every
/// record the peer still lacks (1.7 MB and seconds of both stores' time when
/// the catch-up benchmark hit it). Everything still arrives both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_far_ahead_of_a_rejoining_peer_leaves_it_to_catch_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a_store = Store::open(dir.path().join("a.db")).expect("open a");
    let b_store = Store::open(dir.path().join("b.db")).expect("open b");
    a_store
        .collection("notes")
        .expect("collection")
        .put_many((0..3_000).map(|i| (format!("a-{i}"), json!({"n": i}))))
        .expect("fill a");
    for i in 0..10 {
        write(&b_store, "notes", &format!("b-{i}"));
    }
    let (spy, seen) = spy::Spy::new(b_store.clone());
    let (b_node, b_address) = spy::start(spy, vec![], |_| {}).await;
    let a = start_with(a_store, group_key(), vec![b_address], |c| {
        c.anti_entropy = None;
    })
    .await;
    wait_for("B's records at A", WAIT, || has(&a.store, "notes", "b-9")).await;
    wait_for("A's records at B", WAIT, || {
        has(&b_store, "notes", "a-2999")
    })
    .await;
    let seen = seen.lock().expect("seen").clone();
    let walks = seen
        .iter()
        .filter(|r| matches!(r, Request::Reconcile { .. }))
        .count();
    assert_eq!(walks, 0, "A walked B instead of catching up: {seen:?}");
    b_node.shutdown().await;
}
