//! Federation tools over real nodes on loopback: the integrity report
//! classifies every status, and per-record pull and push give each reason —
//! merged, already in sync, peer does not have it, not found here, peer
//! unreachable, timed out. Nodes run with `auto_sync` off so differences stay
//! put until a test moves them explicitly.

use crate::common;

use common::{Peer, connected, group_key, start_with, wait_for};
use serde_json::json;
use shoal::{CollectionName, FedError, RecordId, Status, Store, Transfer};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

/// Two manual-federation nodes, B dialing A, connected.
async fn pair(dir: &Path, timeout_ms: u64) -> (Peer, Peer) {
    let manual = move |c: &mut shoal::NodeConfig| {
        c.auto_sync = false;
        c.anti_entropy = None;
        c.sync.request_timeout_ms = timeout_ms;
    };
    let a = start_with(
        Store::open(dir.join("a.db")).expect("open a"),
        group_key(),
        vec![],
        manual,
    )
    .await;
    let b = start_with(
        Store::open(dir.join("b.db")).expect("open b"),
        group_key(),
        vec![a.address.clone()],
        manual,
    )
    .await;
    connected(&a, &b, WAIT).await;
    (a, b)
}

fn name(s: &str) -> CollectionName {
    CollectionName::new(s).expect("collection name")
}

fn rid(s: &str) -> RecordId {
    RecordId::new(s).expect("record id")
}

/// The report as (id → status) for the listed records.
async fn report(from: &Peer, to: &Peer, collection: &str) -> BTreeMap<String, Status> {
    let found = from
        .node
        .reconcile(to.node.peer_id(), &name(collection))
        .await
        .expect("reconcile");
    found
        .outcome
        .differences
        .iter()
        .filter_map(|d| d.status().map(|s| (d.id.to_string(), s)))
        .collect()
}

async fn push(from: &Peer, to: &Peer, id: &str) -> Transfer {
    from.node
        .push_record(to.node.peer_id(), &name("notes"), &rid(id))
        .await
}

async fn pull(from: &Peer, to: &Peer, id: &str) -> Transfer {
    from.node
        .pull_record(to.node.peer_id(), &name("notes"), &rid(id))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_classifies_each_status_and_pull_push_repair_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = pair(dir.path(), 30_000).await;
    let (na, nb) = (
        a.store.collection("notes").expect("notes"),
        b.store.collection("notes").expect("notes"),
    );
    // Same on both: written on A, pushed.
    na.put("same", json!({"t": 1})).expect("put");
    assert_eq!(push(&a, &b, "same").await, Transfer::Merged);
    // Diverged: pushed, then edited on B.
    na.put("both", json!({"t": 1, "u": 1})).expect("put");
    assert_eq!(push(&a, &b, "both").await, Transfer::Merged);
    nb.patch("both", json!({"u": 2})).expect("patch");
    // Local-only: only on A; and alive on A but deleted on B.
    na.put("mine", json!({"t": 3})).expect("put");
    na.put("del-there", json!({"t": 4})).expect("put");
    assert_eq!(push(&a, &b, "del-there").await, Transfer::Merged);
    nb.delete("del-there").expect("delete");
    // Peer-only: only on B.
    nb.put("theirs", json!({"t": 5})).expect("put");
    // Deleted on both: not listed.
    na.put("gone", json!({"t": 6})).expect("put");
    na.delete("gone").expect("delete");
    assert_eq!(push(&a, &b, "gone").await, Transfer::Merged);

    let found = report(&a, &b, "notes").await;
    let expected: BTreeMap<String, Status> = [
        ("both", Status::Diverged),
        ("del-there", Status::LocalOnly),
        ("mine", Status::LocalOnly),
        ("theirs", Status::PeerOnly),
    ]
    .into_iter()
    .map(|(id, s)| (id.to_string(), s))
    .collect();
    assert_eq!(found, expected);
    let outcome = a
        .node
        .reconcile(b.node.peer_id(), &name("notes"))
        .await
        .expect("reconcile")
        .outcome;
    assert_eq!(
        (
            outcome.counts.local_only,
            outcome.counts.peer_only,
            outcome.counts.diverged,
            outcome.counts.assets_missing
        ),
        (2, 1, 1, 0)
    );
    // Seen from B, the same records with the directions swapped.
    let mirrored = report(&b, &a, "notes").await;
    assert_eq!(mirrored["mine"], Status::PeerOnly);
    assert_eq!(mirrored["theirs"], Status::LocalOnly);
    assert_eq!(mirrored["del-there"], Status::PeerOnly);
    assert_eq!(mirrored["both"], Status::Diverged);

    // Repair each, checking every reason; the second attempt is a no-op.
    assert_eq!(pull(&a, &b, "theirs").await, Transfer::Merged);
    assert_eq!(pull(&a, &b, "theirs").await, Transfer::AlreadyInSync);
    assert_eq!(push(&a, &b, "mine").await, Transfer::Merged);
    assert_eq!(push(&a, &b, "mine").await, Transfer::AlreadyInSync);
    assert_eq!(pull(&a, &b, "both").await, Transfer::Merged);
    assert_eq!(push(&a, &b, "both").await, Transfer::AlreadyInSync);
    assert_eq!(pull(&a, &b, "del-there").await, Transfer::Merged);
    assert_eq!(pull(&a, &b, "nobody").await, Transfer::PeerDoesNotHaveIt);
    assert_eq!(push(&a, &b, "nobody").await, Transfer::NotHere);
    assert_eq!(pull(&a, &b, "same").await, Transfer::AlreadyInSync);
    // A is ahead on "same": pulling brings nothing, pushing does.
    na.patch("same", json!({"t": 2})).expect("patch");
    assert_eq!(pull(&a, &b, "same").await, Transfer::NothingNew);
    assert_eq!(push(&b, &a, "same").await, Transfer::NothingNew);
    assert_eq!(push(&a, &b, "same").await, Transfer::Merged);
    assert_eq!(pull(&b, &a, "same").await, Transfer::AlreadyInSync);
    assert_eq!(pull(&a, &b, "nobody").await.code(), "peer-does-not-have-it");

    // The merge kept both sides' edits and the delete.
    assert_eq!(na.get("both").expect("get"), nb.get("both").expect("get"));
    assert_eq!(na.get("both").expect("get").expect("alive")["u"], 2);
    assert!(na.get("del-there").expect("get").is_none());
    assert!(report(&a, &b, "notes").await.is_empty());
    assert!(report(&b, &a, "notes").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equal_replicas_settle_in_one_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = pair(dir.path(), 30_000).await;
    let records: Vec<(String, serde_json::Value)> = (0..3000)
        .map(|i| (format!("r{i:05}"), json!({"n": i})))
        .collect();
    let na = a.store.collection("notes").expect("notes");
    na.put_many(records.clone()).expect("put");
    for id in ["r00007", "r01234", "r02999"] {
        assert_eq!(push(&a, &b, id).await, Transfer::Merged);
    }
    // B holds 3 of A's 3000 records; a full pull of the rest by anti-entropy
    // is what `level_with` does.
    let levelled = b.node.level_with(a.node.peer_id()).await.expect("level");
    assert_eq!(levelled.merged, 2997);
    let found = a
        .node
        .reconcile(b.node.peer_id(), &name("notes"))
        .await
        .expect("reconcile");
    assert_eq!(found.outcome.counts.total(), 0);
    assert_eq!(found.outcome.round_trips, 1);
    let listed = b
        .node
        .peer_collections(a.node.peer_id())
        .await
        .expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].name.as_str(), listed[0].records),
        ("notes", 3000)
    );
    // One differing record costs a few round trips and little data.
    na.patch("r01500", json!({"n": -1})).expect("patch");
    let found = a
        .node
        .reconcile(b.node.peer_id(), &name("notes"))
        .await
        .expect("reconcile");
    assert_eq!(found.outcome.counts.diverged, 1);
    assert!(found.outcome.round_trips <= 4, "{:?}", found.outcome);
    assert!(found.bytes < 4096, "{} bytes", found.bytes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_and_timed_out_requests_say_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = pair(dir.path(), 1_000).await;
    a.store
        .collection("notes")
        .expect("notes")
        .put("x", json!({"v": 1}))
        .expect("put");
    // A peer with no session: unreachable at once, for every operation.
    let stranger = shoal::PeerId::random();
    let t = a
        .node
        .pull_record(stranger, &name("notes"), &rid("x"))
        .await;
    assert_eq!(t, Transfer::Failed(FedError::Unreachable));
    assert_eq!(t.code(), "peer-unreachable");
    assert_eq!(t.to_string(), "peer unreachable");
    assert!(matches!(
        a.node.reconcile(stranger, &name("notes")).await,
        Err(FedError::Unreachable)
    ));
    // B's database is write-locked by another process: B cannot answer an
    // offer within A's 1 s request timeout.
    let lock = rusqlite::Connection::open(dir.path().join("b.db")).expect("open b raw");
    lock.execute_batch("BEGIN IMMEDIATE").expect("lock b");
    let t = push(&a, &b, "x").await;
    assert_eq!(t, Transfer::Failed(FedError::TimedOut));
    assert_eq!(t.to_string(), "timed out");
    lock.execute_batch("ROLLBACK").expect("unlock b");
    drop(lock);
    // The session survived the timeout; once B has answered its backlog the
    // record arrives (the late answer is ignored) or is already there.
    wait_for("B to take the record", WAIT, || {
        b.store
            .collection("notes")
            .and_then(|c| c.get("x"))
            .is_ok_and(|r| r.is_some())
    })
    .await;
    assert_eq!(push(&a, &b, "x").await, Transfer::AlreadyInSync);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_record_reads_without_merging_and_forget_peer_disconnects() {
    let dir = tempfile::tempdir().expect("tempdir");
    let quick = |c: &mut shoal::NodeConfig| {
        c.auto_sync = false;
        c.anti_entropy = None;
        c.redial_interval = Duration::from_millis(200);
    };
    let a = start_with(
        Store::open(dir.path().join("a.db")).expect("open a"),
        group_key(),
        vec![],
        quick,
    )
    .await;
    let b = start_with(
        Store::open(dir.path().join("b.db")).expect("open b"),
        group_key(),
        vec![a.address.clone()],
        quick,
    )
    .await;
    connected(&a, &b, WAIT).await;
    let nb = b.store.collection("notes").expect("notes");
    nb.put("theirs", json!({"t": 5})).expect("put");
    nb.map_set("theirs", "tags", "x", json!(true))
        .expect("map set");

    // B's full state of the record, as B holds it, and nothing merged on A.
    let theirs = a
        .node
        .peer_record(b.node.peer_id(), &name("notes"), &rid("theirs"))
        .await
        .expect("fetch")
        .expect("B has it");
    let held = b
        .store
        .record_changes("notes", "theirs")
        .expect("read")
        .expect("B has it");
    let digest =
        |changes: &[shoal::Change]| shoal::StateDigest::of_changes(&rid("theirs"), changes);
    assert_eq!(digest(&theirs), digest(&held));
    assert!(theirs.iter().any(|c| c.slot == shoal::Slot::Life));
    assert!(theirs.iter().all(|c| c.id.as_str() == "theirs"));
    assert_eq!(
        a.store.record_changes("notes", "theirs").expect("read"),
        None
    );
    assert_eq!(
        a.store.collection("notes").unwrap().get("theirs").unwrap(),
        None
    );
    // A record B never saw; a collection B does not send A.
    let none = a
        .node
        .peer_record(b.node.peer_id(), &name("notes"), &rid("nope"))
        .await
        .expect("fetch");
    assert_eq!(none, None);
    b.store
        .share(
            &a.node.peer_id().to_string(),
            "notes",
            shoal::ShareMode::Receive,
        )
        .expect("share");
    let refused = a
        .node
        .peer_record(b.node.peer_id(), &name("notes"), &rid("theirs"))
        .await;
    assert_eq!(refused, Err(FedError::Refused(shoal::Refusal::NotShared)));

    // B forgets A: the connection closes and B does not redial it.
    assert_eq!(b.node.forget_peer(a.node.peer_id()).await, Ok(1));
    let a_id = a.node.peer_id();
    wait_for("B to lose A", WAIT, || {
        b.node
            .peer(&a_id)
            .is_some_and(|s| !matches!(s.state, shoal::PeerState::Connected))
    })
    .await;
    // Well past several redial intervals.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let on_b = b.node.peer(&a_id).expect("still known").state;
    assert!(
        !matches!(
            on_b,
            shoal::PeerState::Connected | shoal::PeerState::Connecting
        ),
        "{on_b:?}"
    );
    let gone = b
        .node
        .peer_record(a_id, &name("notes"), &rid("theirs"))
        .await;
    assert_eq!(gone, Err(FedError::Unreachable));
    // Forgetting it again drops no address.
    assert_eq!(b.node.forget_peer(a_id).await, Ok(0));
}
