//! Pull and Sync Details in a collection this node receives from a peer but
//! does not send it (a `receive` rule), over real nodes on loopback: neither
//! ever puts one of this node's record ids on the wire unless the peer
//! listed it first — a record the peer lacks is "peer does not have it"
//! without the peer hearing its name — and both still bring the peer's
//! newer state. The peer is a spy store that writes down every request it
//! serves.

use crate::common;
use crate::spy;

use common::{group_key, is_connected, start_with, wait_for};
use serde_json::json;
use shoal::{CollectionName, RecordId, ShareMode, StateDigest, Store, Transfer};
use shoal_core::recon::Entry;
use shoal_core::sync::federation::Request;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

fn name(s: &str) -> CollectionName {
    CollectionName::new(s).expect("collection name")
}

fn id(s: &str) -> RecordId {
    RecordId::new(s).expect("record id")
}

fn put(store: &Store, record: &str, value: serde_json::Value) {
    store
        .collection("inbox")
        .expect("collection")
        .put(record, value)
        .expect("put");
}

fn value(store: &Store, record: &str) -> Option<serde_json::Value> {
    let held = store.collection("inbox").expect("inbox").get(record);
    held.expect("read").map(serde_json::Value::Object)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_and_details_in_a_receive_only_collection_never_name_our_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a_store = Store::open(dir.path().join("a.db")).expect("open a");
    let b_store = Store::open(dir.path().join("b.db")).expect("open b");
    // A takes B's inbox and sends none of its own.
    a_store
        .share(&b_store.peer_id(), "inbox", ShareMode::Receive)
        .expect("rule");
    put(&a_store, "a-secret", json!({"mine": true}));
    put(&a_store, "both-1", json!({"v": "old"}));
    // B's state is newer (written later: its clock is past A's), and B
    // holds enough records that it splits its collection rather than list
    // it whole.
    std::thread::sleep(Duration::from_millis(20));
    put(&b_store, "both-1", json!({"v": "new"}));
    put(&b_store, "b-only", json!({"v": "b"}));
    let filler = (0..2_000).map(|i| (format!("filler-{i}"), json!({"n": i})));
    b_store
        .collection("inbox")
        .expect("inbox")
        .put_many(filler.collect::<Vec<_>>())
        .expect("fill b");
    // No catch-up either way: records move only by the pulls below.
    let (spy, seen) = spy::Spy::new(b_store.clone());
    let (b_node, b_address) = spy::start(spy, vec![], |c| c.auto_sync = false).await;
    let a = start_with(a_store, group_key(), vec![b_address], |c| {
        c.anti_entropy = None;
        c.auto_sync = false;
    })
    .await;
    let pb = b_node.peer_id();
    let pa = a.node.peer_id();
    wait_for("A and B connected", WAIT, || {
        is_connected(&a.node, pb) && is_connected(&b_node, pa)
    })
    .await;
    let inbox = name("inbox");

    // Sync Details: B lacks A's record, and hears nothing of it.
    let details = a.node.peer_record(pb, &inbox, &id("a-secret")).await;
    assert_eq!(details, Ok(None));
    // B's own record is shown as B holds it.
    let details = a.node.peer_record(pb, &inbox, &id("both-1")).await;
    let theirs = details.expect("details").expect("B holds both-1");
    let held = b_store.record_changes("inbox", "both-1").expect("read");
    let held = held.expect("B holds both-1");
    assert_eq!(
        StateDigest::of_changes(&id("both-1"), &theirs),
        StateDigest::of_changes(&id("both-1"), &held)
    );
    assert_eq!(value(&a.store, "both-1"), Some(json!({"v": "old"})));

    // Pull: nothing to pull of A's own record; B's newer and B's own come.
    let pulled = a.node.pull_record(pb, &inbox, &id("a-secret")).await;
    assert_eq!(pulled, Transfer::PeerDoesNotHaveIt);
    let pulled = a.node.pull_record(pb, &inbox, &id("both-1")).await;
    assert_eq!(pulled, Transfer::Merged);
    assert_eq!(value(&a.store, "both-1"), Some(json!({"v": "new"})));
    let pulled = a.node.pull_record(pb, &inbox, &id("b-only")).await;
    assert_eq!(pulled, Transfer::Merged);
    assert_eq!(value(&a.store, "b-only"), Some(json!({"v": "b"})));
    assert_eq!(value(&b_store, "a-secret"), None);

    let seen = seen.lock().expect("seen").clone();
    // A's id went nowhere near B, in any request.
    let wire = format!("{seen:?}");
    assert!(!wire.contains("a-secret"), "B heard of a-secret: {seen:?}");
    // B was asked only "list what you hold here", and fetched only what it listed.
    let mut lookups = 0;
    for request in &seen {
        match request {
            Request::Reconcile { entries, .. } => {
                lookups += 1;
                for entry in entries {
                    assert!(
                        matches!(entry, Entry::Items { items, .. } if items.is_empty()),
                        "A sent its own replica's state: {entry:?}"
                    );
                }
            }
            Request::Fetch { ids, .. } => {
                let listed = |i: &RecordId| ["both-1", "b-only"].contains(&i.as_str());
                assert!(ids.iter().all(listed), "{request:?}");
            }
            Request::Collections | Request::Level { .. } => {}
            Request::Filtered { .. } => panic!("A has no filter: {request:?}"),
            Request::Offer { .. } => panic!("A offered B a record: {request:?}"),
        }
    }
    // Five lookups, each at least the root and then one range under it.
    assert!(lookups >= 10, "{lookups} lookup steps: {seen:?}");
    b_node.shutdown().await;
}
