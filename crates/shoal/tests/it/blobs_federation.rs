//! Blobs in federation, over real nodes on loopback with `auto_sync` off:
//! a record whose blob is absent on one side shows as `assets-missing` in
//! the integrity report (same record state, different assets), and pulling
//! a record also brings its blobs, after which the record is in sync.

use crate::common;

use common::{Peer, connected, group_key, start_with, wait_for};
use serde_json::json;
use shoal::{CollectionName, RecordId, Status, Store, StoreOptions, Transfer};
use std::path::Path;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

async fn manual(store: Store, peers: Vec<shoal::Multiaddr>) -> Peer {
    start_with(store, group_key(), peers, |c| {
        c.auto_sync = false;
        c.anti_entropy = None;
        c.blobs.scan_interval = Duration::from_millis(100);
        c.blobs.retry_after = Duration::from_millis(200);
    })
    .await
}

fn store_with_cap(dir: &Path, name: &str, cap: u64) -> Store {
    let mut options = StoreOptions::default();
    options.config.max_blob_bytes = cap;
    Store::open_with(dir.join(format!("{name}.db")), options).expect("open store")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_missing_blob_shows_as_assets_missing_and_pull_brings_the_blob() {
    let dir = tempfile::tempdir().expect("tempdir");
    let content: Vec<u8> = (0..3 * 1024 * 1024u32)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    let a = manual(
        Store::open(dir.path().join("a.db")).expect("open a"),
        vec![],
    )
    .await;
    let blob = a.store.add_blob(&content[..]).expect("add");
    let photos = a.store.collection("photos").expect("photos");
    photos
        .put("p1", json!({"title": "cat", "file": blob.to_json()}))
        .expect("put");
    let (coll, id) = (
        CollectionName::new("photos").expect("name"),
        RecordId::new("p1").expect("id"),
    );

    // B takes the record but cannot take the blob (its cap is smaller).
    let b = manual(
        store_with_cap(dir.path(), "b", 1024 * 1024),
        vec![a.address.clone()],
    )
    .await;
    connected(&a, &b, WAIT).await;
    let pulled = b.node.pull_record(a.node.peer_id(), &coll, &id).await;
    assert!(matches!(pulled, Transfer::Merged), "{pulled}");
    wait_for("B to refuse the blob over its cap", WAIT, || {
        b.node
            .blob_transfers()
            .0
            .iter()
            .any(|t| t.hash == blob.hash)
    })
    .await;
    let report = a
        .node
        .reconcile(b.node.peer_id(), &coll)
        .await
        .expect("reconcile");
    let statuses: Vec<_> = report
        .outcome
        .differences
        .iter()
        .map(|d| (d.id.to_string(), d.status()))
        .collect();
    assert_eq!(
        statuses,
        vec![("p1".to_string(), Some(Status::AssetsMissing))]
    );
    assert_eq!(report.outcome.counts.assets_missing, 1);

    // C, with room for it, pulls the record: the blob follows, and the
    // record is then in sync with A.
    let c = manual(
        Store::open(dir.path().join("c.db")).expect("open c"),
        vec![a.address.clone()],
    )
    .await;
    connected(&a, &c, WAIT).await;
    let pulled = c.node.pull_record(a.node.peer_id(), &coll, &id).await;
    assert!(matches!(pulled, Transfer::Merged), "{pulled}");
    wait_for("the blob on C", WAIT, || {
        c.store.has_blob(&blob.hash).unwrap_or(false)
    })
    .await;
    let report = a
        .node
        .reconcile(c.node.peer_id(), &coll)
        .await
        .expect("reconcile");
    assert_eq!(report.outcome.counts.total(), 0, "{:?}", report.outcome);
}
