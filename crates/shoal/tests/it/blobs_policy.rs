//! Who may fetch a blob, over real nodes on loopback: a member that writes a
//! record referencing a hash it learnt elsewhere (in a collection that flows
//! both ways) is not served that blob, and its answer is the same whether
//! this node holds the blob or not; once someone else references the blob
//! in a shared collection, the member is served it.

use crate::common;

use common::{Peer, group_key, start_with, wait_for};
use serde_json::json;
use shoal::{BlobHash, BlobRef, BlobState, Store};
use std::io::Read;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(120);

async fn node(store: Store, peers: Vec<shoal::Multiaddr>) -> Peer {
    start_with(store, group_key(), peers, |c| {
        c.blobs.scan_interval = Duration::from_millis(100);
        c.blobs.retry_after = Duration::from_millis(200);
    })
    .await
}

fn put_ref(store: &Store, collection: &str, id: &str, blob: &BlobRef) {
    store
        .collection(collection)
        .expect("collection")
        .put(id, json!({"file": blob.to_json()}))
        .expect("put");
}

fn failure(peer: &Peer, hash: &BlobHash) -> Option<String> {
    peer.node
        .blob_transfers()
        .0
        .into_iter()
        .find(|t| t.hash == *hash)
        .and_then(|t| match t.state {
            BlobState::Failed { error } => Some(error),
            BlobState::Fetching { .. } | BlobState::AwaitingDirect { .. } => None,
        })
}

fn has_record(store: &Store, collection: &str, id: &str) -> bool {
    store
        .collection(collection)
        .and_then(|c| c.get(id))
        .is_ok_and(|r| r.is_some())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_member_cannot_fetch_or_probe_a_blob_by_referencing_its_hash_itself() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a_store = Store::open(dir.path().join("a.db")).expect("open");
    // A holds a secret file, referenced only by a local-only record.
    let secret = a_store.add_blob(&b"the secret bytes"[..]).expect("add");
    let a = node(a_store, vec![]).await;
    a.store.set_local_only("private", true).expect("local-only");
    put_ref(&a.store, "private", "s1", &secret);
    let b = node(
        Store::open(dir.path().join("b.db")).expect("open"),
        vec![a.address.clone()],
    )
    .await;

    // B learnt the secret's hash somewhere and references it in "notes",
    // which flows both ways; it also references a hash nobody holds.
    let unknown = BlobRef {
        hash: BlobHash::of(b"bytes nobody has"),
        size: secret.size,
        mime: None,
    };
    put_ref(&b.store, "notes", "probe", &secret);
    put_ref(&b.store, "notes", "control", &unknown);
    wait_for("A to have B's records", WAIT, || {
        has_record(&a.store, "notes", "probe") && has_record(&a.store, "notes", "control")
    })
    .await;
    // B's fetcher asks A for both, again every 200 ms; give it many tries
    // now that A holds B's references. Both are refused the same way.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let answers = || {
        let s = failure(&b, &secret.hash)?;
        let u = failure(&b, &unknown.hash)?;
        Some((s, u))
    };
    wait_for("B to be refused both", WAIT, || {
        answers().is_some_and(|(s, u)| s.contains("not shared") && u.contains("not shared"))
    })
    .await;
    let (s, u) = answers().expect("answers");
    assert_eq!(
        s.replace(&secret.hash.to_hex(), "HASH"),
        u.replace(&unknown.hash.to_hex(), "HASH"),
        "the same answer whether A holds the blob or not"
    );
    assert!(!b.store.has_blob(&secret.hash).expect("has"));

    // Once A itself references the blob in a shared record, B may fetch it.
    put_ref(&a.store, "notes", "shared", &secret);
    wait_for("the blob on B", WAIT, || {
        b.store.has_blob(&secret.hash).unwrap_or(false)
    })
    .await;
    let mut held = Vec::new();
    b.store
        .open_blob(&secret.hash)
        .expect("open")
        .expect("held")
        .read_to_end(&mut held)
        .expect("read");
    assert_eq!(held, b"the secret bytes");
}
