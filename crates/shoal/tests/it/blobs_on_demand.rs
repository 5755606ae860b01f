//! Blobs on demand over real nodes on loopback: a lazy device takes records
//! but not their blobs; opening one fetches it from a peer (content and
//! hash checked); under a budget smaller than two blobs, opening a second
//! evicts the first (which the writer holds) and reopening the first fetches
//! it again; the device's own blobs and blobs open right now are never
//! evicted; a blob no connected
//! peer holds is a clear error, not a hang; an open whose wait runs out says
//! the blob is still fetching and the next open waits for the same fetch;
//! the setting survives a restart.

use crate::common;

use common::blobs::{bytes, node, open};
use common::{Peer, wait_for};
use serde_json::json;
use shoal::{BlobHash, BlobRef, DemandError, OnDemand, Store};
use std::io::Read;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);
const KB: usize = 1024;

/// Adds `content` on `store` and a record in `photos` referencing it.
fn add_with_record(store: &Store, id: &str, content: &[u8]) -> BlobRef {
    let blob = store.add_blob(content).expect("add blob");
    store
        .collection("photos")
        .expect("collection")
        .put(id, json!({"title": id, "file": blob.to_json()}))
        .expect("put");
    blob
}

fn has_record(store: &Store, id: &str) -> bool {
    store
        .collection("photos")
        .and_then(|c| c.get(id))
        .is_ok_and(|r| r.is_some())
}

/// Opens `hash` on `peer`, fetching it on demand, and reads it whole.
async fn open_and_read(peer: &Peer, hash: &BlobHash) -> Vec<u8> {
    let mut file = peer
        .store
        .open_blob_from(&peer.node, hash, WAIT)
        .await
        .expect("open on demand")
        .expect("a referenced blob");
    let mut content = Vec::new();
    file.read_to_end(&mut content).expect("read blob");
    content
}

fn lazy(budget: Option<u64>) -> OnDemand {
    OnDemand {
        enabled: true,
        budget,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lazy_blob_is_fetched_on_open_and_evicted_under_the_budget() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = node(open(dir.path(), "a"), vec![]).await;
    let one = bytes(300 * KB, 1);
    let two = bytes(300 * KB, 2);
    let blob1 = add_with_record(&a.store, "p1", &one);
    let blob2 = add_with_record(&a.store, "p2", &two);

    // B takes blobs on demand, with room for one of A's blobs only.
    let b_store = open(dir.path(), "b");
    b_store
        .set_blobs_on_demand(lazy(Some(400 * KB as u64)))
        .expect("set on demand");
    let mine = bytes(200 * KB, 9);
    let own = add_with_record(&b_store, "b1", &mine);
    let b = node(b_store, vec![a.address.clone()]).await;
    wait_for("A's records on B", WAIT, || {
        has_record(&b.store, "p1") && has_record(&b.store, "p2")
    })
    .await;
    // Many scans later, neither blob came: they wait to be opened.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!b.store.has_blob(&blob1.hash).expect("has"));
    assert!(!b.store.has_blob(&blob2.hash).expect("has"));
    let missing = b.store.missing_blobs(None, 10).expect("missing");
    assert_eq!(missing.len(), 2, "both are listed as not here: {missing:?}");
    assert_eq!(b.node.blob_transfers().1.fetched, 0);
    // A still fetches B's blob eagerly (A is not lazy).
    wait_for("B's own blob on A", WAIT, || {
        a.store.has_blob(&own.hash).unwrap_or(false)
    })
    .await;

    // Opening the first fetches it, verified.
    let got = open_and_read(&b, &blob1.hash).await;
    assert_eq!(BlobHash::of(&got), blob1.hash);
    assert_eq!(got, one);
    assert!(b.store.has_blob(&blob1.hash).expect("has"));
    let held = b.store.on_demand_blobs().expect("on demand");
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].hash, blob1.hash);
    assert_eq!(held[0].size, one.len() as u64);

    // Opening the second passes the budget: the first (A holds it) goes.
    let got = open_and_read(&b, &blob2.hash).await;
    assert_eq!(got, two);
    assert!(b.store.has_blob(&blob2.hash).expect("has"));
    assert!(!b.store.has_blob(&blob1.hash).expect("has"));
    let path1 = dir
        .path()
        .join("b.blobs")
        .join(&blob1.hash.to_hex()[..2])
        .join(blob1.hash.to_hex());
    assert!(!path1.exists(), "the evicted blob's file is removed");
    // Its own blob is never evicted, whatever the budget.
    assert!(b.store.has_blob(&own.hash).expect("has"));
    // An evicted blob is remote, not corrupt: a full verify finds nothing bad.
    assert_eq!(
        b.store
            .verify_blob(&blob2.hash, &mut |_| {})
            .expect("verify"),
        shoal::Scrubbed::Good
    );
    assert!(!dir.path().join("b.blobs").join("corrupt").exists());
    // It is listed as not here (remote) again, and the store checks clean.
    let missing: Vec<BlobHash> = b
        .store
        .missing_blobs(None, 10)
        .expect("missing")
        .into_iter()
        .map(|m| m.hash)
        .collect();
    assert_eq!(missing, [blob1.hash]);
    b.store.check(|_| {}).expect("the store checks clean");

    // Reopening the first fetches it again and evicts the second.
    let got = open_and_read(&b, &blob1.hash).await;
    assert_eq!(got, one);
    assert!(b.store.has_blob(&blob1.hash).expect("has"));
    assert!(!b.store.has_blob(&blob2.hash).expect("has"));
    assert!(b.store.has_blob(&own.hash).expect("has"));
    assert_eq!(b.node.blob_transfers().1.fetched, 3);
    let held = b.store.on_demand_blobs().expect("on demand");
    assert_eq!(
        held.iter().map(|h| h.hash).collect::<Vec<_>>(),
        [blob1.hash]
    );
    // A held blob opens without any fetch.
    let got = open_and_read(&b, &own.hash).await;
    assert_eq!(got, mine);
    assert_eq!(b.node.blob_transfers().1.fetched, 3);
    // B adding the same bytes itself takes it out of the book: it is then
    // B's own, and the next fetch on demand does not evict it.
    b.store.add_blob(&one[..]).expect("add the same bytes");
    assert!(b.store.on_demand_blobs().expect("on demand").is_empty());
    let got = open_and_read(&b, &blob2.hash).await;
    assert_eq!(got, two);
    assert!(b.store.has_blob(&blob1.hash).expect("has"));
    assert!(b.store.has_blob(&blob2.hash).expect("has"));
    // A lower budget evicts at once: blob 2 (A holds it), never B's own.
    let evicted = b
        .store
        .set_blobs_on_demand(lazy(Some(100 * KB as u64)))
        .expect("lower the budget");
    assert_eq!(evicted, [blob2.hash]);
    assert!(!b.store.has_blob(&blob2.hash).expect("has"));
    assert!(b.store.has_blob(&blob1.hash).expect("has"));
    assert!(b.store.has_blob(&own.hash).expect("has"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_open_whose_wait_runs_out_says_fetching_and_the_next_waits_for_the_same_fetch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = node(open(dir.path(), "a"), vec![]).await;
    let content = bytes(8 * 1024 * KB, 5);
    let blob = add_with_record(&a.store, "big", &content);
    let b_store = open(dir.path(), "b");
    b_store.set_blobs_on_demand(lazy(None)).expect("set");
    let b = node(b_store, vec![a.address.clone()]).await;
    wait_for("A's record on B", WAIT, || has_record(&b.store, "big")).await;
    let err = b
        .store
        .open_blob_from(&b.node, &blob.hash, Duration::from_millis(1))
        .await
        .expect_err("8 MiB do not cross in a millisecond");
    match &err {
        shoal::Error::BlobUnavailable(DemandError::StillFetching { hash, size, .. }) => {
            assert_eq!((*hash, *size), (blob.hash, content.len() as u64))
        }
        other => panic!("unexpected error: {other:?}"),
    }
    assert!(err.to_string().contains("is still fetching"), "{err}");
    // The next open waits for that fetch rather than starting another.
    let got = open_and_read(&b, &blob.hash).await;
    assert_eq!(got, content);
    let (_, totals) = b.node.blob_transfers();
    assert_eq!(totals.fetched, 1);
    assert_eq!(totals.bytes_received, content.len() as u64);
    // Booked as fetched on demand though the first wait had run out.
    let held = b.store.on_demand_blobs().expect("on demand");
    assert_eq!(held.iter().map(|h| h.hash).collect::<Vec<_>>(), [blob.hash]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_blob_no_connected_peer_holds_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = node(open(dir.path(), "a"), vec![]).await;
    let blob = add_with_record(&a.store, "p1", &bytes(100 * KB, 4));
    let b_store = open(dir.path(), "b");
    b_store.set_blobs_on_demand(lazy(None)).expect("set");
    let b = node(b_store, vec![a.address.clone()]).await;
    wait_for("A's record on B", WAIT, || has_record(&b.store, "p1")).await;
    a.node.shutdown().await;
    wait_for("B to see A gone", WAIT, || {
        b.node
            .peers()
            .iter()
            .all(|p| !matches!(p.state, shoal::PeerState::Connected))
    })
    .await;
    let started = std::time::Instant::now();
    let err = b
        .store
        .open_blob_from(&b.node, &blob.hash, WAIT)
        .await
        .expect_err("nobody can send it");
    assert!(started.elapsed() < Duration::from_secs(10), "no hang");
    match &err {
        shoal::Error::BlobUnavailable(DemandError::Unavailable { hash, .. }) => {
            assert_eq!(*hash, blob.hash)
        }
        other => panic!("unexpected error: {other:?}"),
    }
    assert!(
        err.to_string()
            .contains("is not available from any connected peer"),
        "{err}"
    );
    assert!(!b.store.has_blob(&blob.hash).expect("has"));
    // A blob nothing references is simply not there.
    let stranger = BlobHash::of(b"nobody refers to this");
    assert!(
        b.store
            .open_blob_from(&b.node, &stranger, WAIT)
            .await
            .expect("open")
            .is_none()
    );
}

#[test]
fn the_setting_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), "b");
    assert_eq!(store.blobs_on_demand().expect("read"), OnDemand::default());
    store.set_blobs_on_demand(lazy(Some(5 << 20))).expect("set");
    drop(store);
    let store = open(dir.path(), "b");
    assert_eq!(store.blobs_on_demand().expect("read"), lazy(Some(5 << 20)));
    store
        .set_blobs_on_demand(OnDemand {
            enabled: false,
            budget: None,
        })
        .expect("set");
    drop(store);
    let store = open(dir.path(), "b");
    assert_eq!(store.blobs_on_demand().expect("read"), OnDemand::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_blob_open_right_now_is_not_evicted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = node(open(dir.path(), "a"), vec![]).await;
    let (x, y, z) = (
        bytes(300 * KB, 11),
        bytes(300 * KB, 13),
        bytes(300 * KB, 15),
    );
    let bx = add_with_record(&a.store, "x", &x);
    let by = add_with_record(&a.store, "y", &y);
    let bz = add_with_record(&a.store, "z", &z);
    let b_store = open(dir.path(), "b");
    b_store
        .set_blobs_on_demand(lazy(Some(400 * KB as u64)))
        .expect("set");
    let b = node(b_store, vec![a.address.clone()]).await;
    wait_for("A's records on B", WAIT, || {
        ["x", "y", "z"].iter().all(|id| has_record(&b.store, id))
    })
    .await;
    // X stays open while Y passes the budget: X is kept, over budget.
    let mut handle = b
        .store
        .open_blob_from(&b.node, &bx.hash, WAIT)
        .await
        .expect("open x")
        .expect("x");
    assert_eq!(open_and_read(&b, &by.hash).await, y);
    assert!(b.store.has_blob(&bx.hash).expect("has"));
    assert!(b.store.has_blob(&by.hash).expect("has"));
    let mut read = Vec::new();
    handle.read_to_end(&mut read).expect("read x");
    assert_eq!(read, x);
    // Closed, it goes with the next fetch that passes the budget.
    drop(handle);
    assert_eq!(open_and_read(&b, &bz.hash).await, z);
    assert!(!b.store.has_blob(&bx.hash).expect("has"));
    assert!(!b.store.has_blob(&by.hash).expect("has"));
    assert!(b.store.has_blob(&bz.hash).expect("has"));
}
