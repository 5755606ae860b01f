//! Federation with replication on, over real nodes on loopback: sharing
//! rules obeyed by catch-up, live pushes, reconciliation and pull/push on
//! both sides; a replica that lost its cursors rejoins by reconciliation,
//! paying for the differences rather than the collection; anti-entropy
//! repairs what cursors cannot see; deterministic ids converge on one record;
//! a lopsided rejoin is left to catch-up without indexing the larger side.

use crate::common;

use common::{
    Peer, connected, converge, group_key, peer_cursor_count, start, start_with, wait_for,
    wipe_peer_cursors,
};
use serde_json::json;
use shoal::{CollectionName, Direction, FedError, RecordId, ShareMode, Store, Transfer, derive_id};
use std::path::Path;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

fn name(s: &str) -> CollectionName {
    CollectionName::new(s).expect("collection name")
}

fn has(store: &Store, collection: &str, id: &str) -> bool {
    store
        .collection(collection)
        .and_then(|c| c.get(id))
        .is_ok_and(|r| r.is_some())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharing_rules_hold_on_both_sides_for_every_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Identities first, so the rules can name the peers before any sync.
    let a_store = Store::open(dir.path().join("a.db")).expect("open a");
    let b_store = Store::open(dir.path().join("b.db")).expect("open b");
    let (a_id, b_id) = (a_store.peer_id(), b_store.peer_id());
    a_store
        .share(&b_id, "diary", ShareMode::None)
        .expect("rule");
    a_store
        .share(&b_id, "outbox", ShareMode::Send)
        .expect("rule");
    a_store.set_local_only("scratch", true).expect("rule");
    b_store
        .share(&a_id, "inbox", ShareMode::Receive)
        .expect("rule");
    let write = |store: &Store, collection: &str, id: &str| {
        store
            .collection(collection)
            .expect("collection")
            .put(id, json!({"from": id}))
            .expect("put");
    };
    for (collection, id) in [
        ("diary", "a-d"),
        ("outbox", "a-o"),
        ("scratch", "a-s"),
        ("inbox", "a-i"),
        ("shared", "a-x"),
    ] {
        write(&a_store, collection, id);
    }
    for (collection, id) in [
        ("diary", "b-d"),
        ("outbox", "b-o"),
        ("inbox", "b-i"),
        ("shared", "b-x"),
    ] {
        write(&b_store, collection, id);
    }
    let a = start_with(a_store, group_key(), vec![], |_| {}).await;
    let b = start_with(b_store, group_key(), vec![a.address.clone()], |_| {}).await;
    connected(&a, &b, WAIT).await;
    wait_for("shared records both ways", WAIT, || {
        has(&a.store, "shared", "b-x") && has(&b.store, "shared", "a-x")
    })
    .await;
    wait_for("A's outbox and inbox to reach B", WAIT, || {
        has(&b.store, "outbox", "a-o") && has(&b.store, "inbox", "a-i")
    })
    .await;
    // A live write after the catch-up takes the push path, under the same rules.
    write(&a.store, "diary", "a-d2");
    write(&a.store, "shared", "a-x2");
    write(&b.store, "inbox", "b-i2");
    wait_for("live shared write", WAIT, || {
        has(&b.store, "shared", "a-x2")
    })
    .await;
    // Nothing a rule holds back crossed, in either direction.
    assert!(!has(&b.store, "diary", "a-d") && !has(&b.store, "diary", "a-d2"));
    assert!(
        !has(&a.store, "diary", "b-d"),
        "A does not receive its diary"
    );
    assert!(!has(&b.store, "scratch", "a-s"), "local-only never leaves");
    assert!(!has(&a.store, "outbox", "b-o"), "A only sends its outbox");
    assert!(!has(&a.store, "inbox", "b-i") && !has(&a.store, "inbox", "b-i2"));

    let (pa, pb) = (a.node.peer_id(), b.node.peer_id());
    // Our own rule: refused before asking.
    let t = a
        .node
        .pull_record(pb, &name("diary"), &RecordId::new("b-d").expect("id"))
        .await;
    assert_eq!(t, Transfer::Failed(FedError::NotSharedHere(name("diary"))));
    assert_eq!(t.code(), "not-shared");
    // The peer's rule: it refuses, and we say so.
    let t = b
        .node
        .pull_record(pa, &name("diary"), &RecordId::new("a-d").expect("id"))
        .await;
    assert_eq!(t.code(), "not-shared-with-you", "{t}");
    assert_eq!(t.to_string(), "not shared with you");
    let t = b
        .node
        .push_record(pa, &name("outbox"), &RecordId::new("b-o").expect("id"))
        .await;
    assert_eq!(t.code(), "not-shared-with-you", "{t}");
    let t = b
        .node
        .pull_record(pa, &name("scratch"), &RecordId::new("a-s").expect("id"))
        .await;
    assert_eq!(t.code(), "not-shared-with-you", "{t}");
    assert!(matches!(
        b.node.reconcile(pa, &name("diary")).await,
        Err(FedError::Refused(shoal::Refusal::NotShared))
    ));
    assert!(matches!(
        a.node.reconcile(pb, &name("scratch")).await,
        Err(FedError::NotSharedHere(_))
    ));
    // What is shared still reconciles to nothing missing.
    let shared = a
        .node
        .reconcile(pb, &name("shared"))
        .await
        .expect("reconcile");
    assert_eq!(shared.outcome.counts.total(), 0, "{:?}", shared.outcome);
    assert!(a.store.allows(&b_id, &name("outbox"), Direction::ToPeer));
    assert!(!a.store.allows(&b_id, &name("outbox"), Direction::FromPeer));
}

/// Two replicas converged on `n` records, then B stops, loses its cursor
/// table, and A changes `d` records; B restarts. Returns B's bytes received
/// in the rejoining session and in the first full sync.
async fn rejoin_bytes(dir: &Path, n: usize, d: usize) -> (u64, u64) {
    let a = start(dir, "a", group_key(), vec![]).await;
    let b = start(dir, "b", group_key(), vec![a.address.clone()]).await;
    let items = a.store.collection("items").expect("items");
    let records: Vec<(String, serde_json::Value)> = (0..n)
        .map(|i| {
            (
                format!("item-{i:06}"),
                json!({"n": i, "pad": "x".repeat(60)}),
            )
        })
        .collect();
    items.put_many(records).expect("fill");
    converge(&[&a.store, &b.store], WAIT).await;
    let full = b.node.peer(&a.node.peer_id()).expect("status").bytes_in;
    let b_path = dir.join("b.db");
    let Peer { store, node, .. } = b;
    node.shutdown().await;
    drop(store);
    for i in 0..d {
        items
            .patch(&format!("item-{:06}", i * (n / d)), json!({"n": -1}))
            .expect("patch");
    }
    assert_eq!(wipe_peer_cursors(&b_path), 1);
    let b = start_with(
        Store::open(&b_path).expect("reopen b"),
        group_key(),
        vec![a.address.clone()],
        |_| {},
    )
    .await;
    converge(&[&a.store, &b.store], WAIT).await;
    let status = b.node.peer(&a.node.peer_id()).expect("status");
    // The cursor was rebuilt: B continues from A's head, not from zero.
    wait_for("B's cursor for A to be rebuilt", WAIT, || {
        b.store
            .peer_cursor(&a.node.peer_id().to_string())
            .is_ok_and(|c| c.base.0 > 0)
    })
    .await;
    a.node.shutdown().await;
    b.node.shutdown().await;
    (status.bytes_in, full)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_cursors_rejoin_by_reconciliation_paying_for_differences() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (small_dir, large_dir) = (dir.path().join("small"), dir.path().join("large"));
    std::fs::create_dir_all(&small_dir).expect("dir");
    std::fs::create_dir_all(&large_dir).expect("dir");
    let (small, small_full) = rejoin_bytes(&small_dir, 1_000, 10).await;
    let (large, large_full) = rejoin_bytes(&large_dir, 8_000, 10).await;
    println!(
        "rejoin bytes: 1k records {small} (full sync {small_full}); 8k records {large} (full sync {large_full})"
    );
    // A full catch-up grows with the collection; the rejoin does not.
    assert!(large_full > 6 * small_full, "{large_full} vs {small_full}");
    assert!(
        large < 2 * small,
        "rejoin grew with size: {large} vs {small}"
    );
    assert!(
        large * 20 < large_full,
        "rejoin {large} vs full {large_full}"
    );
}

/// A replica that lost its cursors and holds far more than its peer leaves
/// the peer's records to catch-up — deciding so without building its own
/// reconciliation index, which at a million records is seconds of store
/// time that the peer's catch-up from it would wait behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lopsided_rejoin_is_decided_without_indexing_the_larger_side() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = start(dir.path(), "a", group_key(), vec![]).await;
    // Small chunks: B takes in A's new records slowly enough that it
    // answers A's listing far from holding half of them.
    let b = start_with(
        Store::open(dir.path().join("b.db")).expect("open b"),
        group_key(),
        vec![a.address.clone()],
        |c| c.sync.max_changes = 500,
    )
    .await;
    let items = a.store.collection("items").expect("items");
    items
        .put_many((0..10).map(|i| (format!("both-{i}"), json!({"n": i}))))
        .expect("fill");
    converge(&[&a.store, &b.store], WAIT).await;
    let a_path = dir.path().join("a.db");
    // B holding A's records says nothing of A's cursor for B: that comes
    // from A's own catch-up from B, which may still be under way.
    wait_for("A to hold its cursor for B", WAIT, || {
        peer_cursor_count(&a_path) == 1
    })
    .await;
    let Peer { store, node, .. } = a;
    node.shutdown().await;
    drop(items);
    // A writes on alone and loses its cursors: it rejoins B, which still
    // has its cursor for A (so only A levels), and B answers A's listing
    // long before it holds half of A's new records.
    let offline = Store::open(&a_path).expect("reopen a");
    offline
        .collection("items")
        .expect("items")
        .put_many((0..20_000).map(|i| (format!("a-{i:05}"), json!({"n": i}))))
        .expect("fill a");
    drop((offline, store));
    assert_eq!(wipe_peer_cursors(&a_path), 1);
    let a = start_with(
        Store::open(&a_path).expect("reopen a"),
        group_key(),
        vec![b.address.clone()],
        |_| {},
    )
    .await;
    converge(&[&a.store, &b.store], WAIT).await;
    assert!(has(&b.store, "items", "a-19999") && has(&a.store, "items", "both-9"));
    assert_eq!(
        a.store.recon_index_builds(),
        0,
        "A built its reconciliation index to learn that B holds under half its records"
    );
    a.node.shutdown().await;
    b.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anti_entropy_repairs_what_a_cursor_cannot_see() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = start(dir.path(), "a", group_key(), vec![]).await;
    let b = start(dir.path(), "b", group_key(), vec![a.address.clone()]).await;
    let notes = a.store.collection("notes").expect("notes");
    notes.put("first", json!({"v": 1})).expect("put");
    converge(&[&a.store, &b.store], WAIT).await;
    let b_path = dir.path().join("b.db");
    let Peer { store, node, .. } = b;
    node.shutdown().await;
    drop(store);
    // A cursor from A's future (as after A was restored from an old backup):
    // catch-up sees nothing new, only reconciliation can.
    let raw = rusqlite::Connection::open(&b_path).expect("open b raw");
    raw.execute("UPDATE peer_cursors SET base = 1000000, dbv = 1000000", [])
        .expect("skew cursor");
    drop(raw);
    notes.put("missed", json!({"v": 2})).expect("put");
    notes.patch("first", json!({"v": 3})).expect("patch");
    let b = start_with(
        Store::open(&b_path).expect("reopen b"),
        group_key(),
        vec![a.address.clone()],
        |c| c.anti_entropy = Some(Duration::from_millis(500)),
    )
    .await;
    converge(&[&a.store, &b.store], WAIT).await;
    assert_eq!(
        b.store
            .collection("notes")
            .expect("notes")
            .get("first")
            .expect("get")
            .expect("alive")["v"],
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deterministic_ids_make_one_record_that_deletes_and_recreates_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let id = derive_id("collection-of", "owner-x").expect("derive");
    let a = start(dir.path(), "a", group_key(), vec![]).await;
    // B starts apart (no peers), so both create the record independently.
    let b = start(dir.path(), "b", group_key(), vec![]).await;
    let (ca, cb) = (
        a.store.collection("lists").expect("lists"),
        b.store.collection("lists").expect("lists"),
    );
    ca.put(id.as_str(), json!({"owner": "x", "title": "from a"}))
        .expect("put");
    ca.map_set(id.as_str(), "items", "apple", json!(1))
        .expect("map set");
    cb.put(id.as_str(), json!({"owner": "x"})).expect("put");
    cb.map_set(id.as_str(), "items", "pear", json!(2))
        .expect("map set");
    b.node.dial(a.address.clone()).await.expect("dial");
    converge(&[&a.store, &b.store], WAIT).await;
    let merged = ca.get(id.as_str()).expect("get").expect("alive");
    assert_eq!(merged["items"], json!({"apple": 1, "pear": 2}));
    let listed = ca.list(&Default::default()).expect("list");
    assert_eq!(listed.records.len(), 1, "one record, no duplicate");

    ca.delete(id.as_str()).expect("delete");
    wait_for("the delete to reach B", WAIT, || {
        cb.get(id.as_str()).is_ok_and(|r| r.is_none())
    })
    .await;
    cb.put(id.as_str(), json!({"owner": "x", "title": "again"}))
        .expect("re-create");
    converge(&[&a.store, &b.store], WAIT).await;
    let again = ca.get(id.as_str()).expect("get").expect("alive again");
    assert_eq!(again, cb.get(id.as_str()).expect("get").expect("alive"));
    assert_eq!(again["title"], "again");
    assert!(
        again.get("items").is_none(),
        "no stale fields resurrected: {again:?}"
    );
    assert_eq!(ca.list(&Default::default()).expect("list").records.len(), 1);
}
