//! Blobs over real nodes on loopback: a blob follows the record that
//! references it and arrives verified; a peer serving corrupted bytes is
//! caught at its first bad piece and another peer completes the fetch from
//! the last verified piece; a transfer cut at about half resumes without the
//! first half crossing again; a blob over the cap is refused by name; a blob
//! is served only to a peer that may read a record referencing it; a fetch
//! starts as soon as a peer that has the blob connects; a requester that
//! stops reading loses its serving slot within the blob timeout.

use crate::common;

use common::blobs::{bytes, node, open, quick};
use common::{Peer, group_key, start_with, wait_for};
use serde_json::json;
use shoal::{BlobHash, BlobRef, BlobState, PIECE_LEN, ShareMode, Store, StoreOptions};
use std::io::Read;
use std::path::Path;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(120);
const MB: usize = 1024 * 1024;

/// Adds `content` on `store` and a record in `collection` referencing it.
fn add_with_record(store: &Store, collection: &str, id: &str, content: &[u8]) -> BlobRef {
    let blob = store.add_blob(content).expect("add blob");
    store
        .collection(collection)
        .expect("collection")
        .put(id, json!({"title": id, "file": blob.to_json()}))
        .expect("put");
    blob
}

/// Reads a blob held by `store` back whole and hashes it.
fn held_hash(store: &Store, hash: &BlobHash) -> Option<BlobHash> {
    let mut file = store.open_blob(hash).expect("open blob")?;
    let mut content = Vec::new();
    file.read_to_end(&mut content).expect("read blob");
    Some(BlobHash::of(&content))
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_50_mb_blob_follows_its_record_and_verifies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = node(open(dir.path(), "a"), vec![]).await;
    let content = bytes(50 * MB, 1);
    let blob = add_with_record(&a.store, "photos", "p1", &content);
    let b = node(open(dir.path(), "b"), vec![a.address.clone()]).await;
    wait_for("the blob on B", WAIT, || {
        b.store.has_blob(&blob.hash).unwrap_or(false)
    })
    .await;
    assert_eq!(held_hash(&b.store, &blob.hash), Some(blob.hash));
    assert!(b.store.missing_blobs(None, 10).expect("missing").is_empty());
    let (_, totals) = b.node.blob_transfers();
    assert_eq!(totals.fetched, 1);
    assert_eq!(totals.bad_pieces, 0);
    assert_eq!(totals.bytes_received, content.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_corrupt_peer_is_caught_at_the_first_bad_piece_and_another_peer_completes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let content = bytes(12 * MB, 2);
    let a = node(open(dir.path(), "a"), vec![]).await;
    let blob = add_with_record(&a.store, "photos", "p1", &content);
    // A's copy rots on disk in piece 5; A serves it as it is.
    let path = dir
        .path()
        .join("a.blobs")
        .join(&blob.hash.to_hex()[..2])
        .join(blob.hash.to_hex());
    let mut rotten = std::fs::read(&path).expect("read A's blob");
    rotten[5 * MB + 123] ^= 0x40;
    std::fs::write(&path, rotten).expect("corrupt A's blob");
    let c = node(open(dir.path(), "c"), vec![]).await;
    add_with_record(&c.store, "photos", "p1", &content);

    let b = node(open(dir.path(), "b"), vec![a.address.clone()]).await;
    wait_for("B to catch A's bad piece", WAIT, || {
        b.node.blob_transfers().1.bad_pieces >= 1
            && failure(&b, &blob.hash).is_some_and(|e| e.contains("piece 5"))
    })
    .await;
    assert!(!b.store.has_blob(&blob.hash).expect("has"));
    // Only the verified pieces before the bad one are kept.
    let partial = dir
        .path()
        .join("b.blobs")
        .join("partial")
        .join(blob.hash.to_hex());
    let kept = std::fs::metadata(&partial).map_or(0, |m| m.len());
    assert_eq!(kept, 5 * PIECE_LEN);

    let before = b.node.blob_transfers().1.bytes_received;
    b.node.dial(c.address.clone()).await.expect("dial C");
    wait_for("the blob on B from C", WAIT, || {
        b.store.has_blob(&blob.hash).unwrap_or(false)
    })
    .await;
    assert_eq!(held_hash(&b.store, &blob.hash), Some(blob.hash));
    let after = b.node.blob_transfers().1.bytes_received;
    // From C only the pieces from 5 on (A may have been retried meanwhile,
    // each time failing at piece 5: one piece per retry).
    let from_c = after - before;
    assert!(
        from_c <= (content.len() as u64 - 5 * PIECE_LEN) + 4 * PIECE_LEN,
        "B received {from_c} bytes after dialing C"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_transfer_cut_at_about_half_resumes_without_resending_the_first_half() {
    let dir = tempfile::tempdir().expect("tempdir");
    let content = bytes(200 * MB, 3);
    let a = node(open(dir.path(), "a"), vec![]).await;
    let blob = add_with_record(&a.store, "media", "m1", &content);
    let partial = dir
        .path()
        .join("b.blobs")
        .join("partial")
        .join(blob.hash.to_hex());
    let b_store = open(dir.path(), "b");
    let b = node(b_store.clone(), vec![a.address.clone()]).await;
    let half = content.len() as u64 / 2;
    wait_for("half of the blob on B", WAIT, || {
        std::fs::metadata(&partial).is_ok_and(|m| m.len() >= half)
    })
    .await;
    b.node.shutdown().await;
    let kept = std::fs::metadata(&partial).expect("partial").len();
    assert!(
        !b_store.has_blob(&blob.hash).expect("has"),
        "finished before the cut"
    );
    assert!(kept >= half && kept < content.len() as u64, "kept {kept}");

    let b = node(b_store.clone(), vec![a.address.clone()]).await;
    wait_for("the rest of the blob on B", WAIT, || {
        b_store.has_blob(&blob.hash).unwrap_or(false)
    })
    .await;
    assert_eq!(held_hash(&b_store, &blob.hash), Some(blob.hash));
    let resent = b.node.blob_transfers().1.bytes_received;
    // Only what was missing crosses again (kept >= half: never the first
    // half); pieces written after the size was read may still be in flight,
    // so a few pieces of slack.
    assert!(
        resent <= content.len() as u64 - kept + 8 * PIECE_LEN,
        "the resumed transfer received {resent} bytes; {kept} were already here"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_blob_over_the_cap_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = node(open(dir.path(), "a"), vec![]).await;
    let blob = add_with_record(&a.store, "photos", "big", &bytes(6 * MB, 4));
    let mut options = StoreOptions::default();
    options.config.max_blob_bytes = 4 * MB as u64;
    let b_store = Store::open_with(dir.path().join("b.db"), options).expect("open b");
    let b = node(b_store.clone(), vec![a.address.clone()]).await;
    wait_for("B to refuse the blob over its cap", WAIT, || {
        failure(&b, &blob.hash).is_some_and(|e| e.contains("exceeds the cap"))
    })
    .await;
    assert!(!b_store.has_blob(&blob.hash).expect("has"));
    assert_eq!(b.node.blob_transfers().1.bytes_received, 0);
    // The record itself arrived: records never wait for blobs.
    assert!(
        b_store
            .collection("photos")
            .expect("photos")
            .get("big")
            .expect("get")
            .is_some()
    );
    // A local add over the cap is refused too, keeping nothing.
    let err = b_store
        .add_blob(&bytes(5 * MB, 5)[..])
        .expect_err("over the cap");
    assert!(err.to_string().contains("exceeds the cap"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_blob_is_served_only_to_a_peer_that_may_read_a_record_referencing_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a_store = open(dir.path(), "a");
    let b_store = open(dir.path(), "b");
    let (a_id, b_id) = (a_store.peer_id(), b_store.peer_id());
    let content = bytes(3 * MB, 6);
    // On A the blob is referenced only from a collection B may not read, and
    // A takes nothing from B in `notes` (so B's own reference cannot open it).
    let blob = add_with_record(&a_store, "private", "secret", &content);
    a_store
        .share(&b_id, "private", ShareMode::None)
        .expect("share");
    a_store
        .share(&b_id, "notes", ShareMode::Send)
        .expect("share");
    // B knows the hash and references it from `notes`.
    b_store
        .collection("notes")
        .expect("notes")
        .put("n1", json!({"file": blob.to_json()}))
        .expect("put");
    let a = node(a_store.clone(), vec![]).await;
    let b = node(b_store.clone(), vec![a.address.clone()]).await;
    wait_for("A to refuse B", WAIT, || {
        failure(&b, &blob.hash).is_some_and(|e| e.contains("not shared with you"))
    })
    .await;
    assert!(!b_store.has_blob(&blob.hash).expect("has"));
    assert_eq!(b.node.blob_transfers().1.bytes_received, 0);
    assert!(a_id != b_id);

    // Once A references it from a collection B reads, B gets it.
    a_store
        .collection("notes")
        .expect("notes")
        .put("shared", json!({"file": blob.to_json()}))
        .expect("put");
    wait_for("the blob on B", WAIT, || {
        b_store.has_blob(&blob.hash).unwrap_or(false)
    })
    .await;
    assert_eq!(held_hash(&b_store, &blob.hash), Some(blob.hash));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fetch_starts_when_a_peer_connects_not_at_the_next_scan_or_retry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let content = bytes(3 * MB, 6);
    // B holds the record but not the blob, and scans and retries only every
    // ten minutes: its first scan (at start) finds no peer to ask. A writes
    // the same record later, so the reference A serves by is A's own (a
    // reference only B wrote would not be served to B).
    let b_store = open(dir.path(), "b");
    let reference = BlobRef {
        hash: BlobHash::of(&content),
        size: content.len() as u64,
        mime: None,
    };
    b_store
        .collection("photos")
        .expect("collection")
        .put("p1", json!({"title": "p1", "file": reference.to_json()}))
        .expect("put");
    tokio::time::sleep(Duration::from_millis(20)).await;
    let a_store = open(dir.path(), "a");
    let blob = add_with_record(&a_store, "photos", "p1", &content);
    assert_eq!(blob, reference);
    let slow = |c: &mut shoal::NodeConfig| {
        c.blobs.scan_interval = Duration::from_secs(600);
        c.blobs.retry_after = Duration::from_secs(600);
    };
    let b = start_with(b_store, group_key(), vec![], slow).await;
    wait_for("B's first scan to find no peer", WAIT, || {
        failure(&b, &blob.hash).is_some_and(|e| e.contains("no connected peer"))
    })
    .await;
    let _a = start_with(a_store, group_key(), vec![b.address.clone()], slow).await;
    wait_for(
        "the blob on B soon after A connects",
        Duration::from_secs(60),
        || b.store.has_blob(&blob.hash).unwrap_or(false),
    )
    .await;
    assert_eq!(held_hash(&b.store, &blob.hash), Some(blob.hash));
}

/// A member asks for every piece of a blob and then stops reading, keeping
/// its connection open. The node has one serving slot and a 1 s blob
/// timeout: it gives up on the stalled stream within the timeout, so the
/// slot is free again and an honest peer fetches the blob. (Without the
/// write timeout the slot stayed taken for as long as the connection lived,
/// and every other peer was told "busy".)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requester_that_stops_reading_loses_its_serving_slot() {
    use futures::AsyncWriteExt;
    use shoal_core::blob::{BlobRequest, encode_request};
    let dir = tempfile::tempdir().expect("tempdir");
    let a = start_with(open(dir.path(), "a"), group_key(), vec![], |c| {
        quick(c);
        c.blobs.serving = 1;
        c.blobs.timeout = Duration::from_secs(1);
    })
    .await;
    let content = bytes(8 * MB, 11);
    let blob = add_with_record(&a.store, "media", "m1", &content);

    let staller = common::bare::Bare::connect(a.address.clone(), WAIT).await;
    let a_id = a.node.peer_id();
    let key = group_key().blob_key(&staller.id.to_bytes(), &a_id.to_bytes());
    let mut stream = staller
        .control
        .clone()
        .open_stream(a_id, shoal_net::BLOB_PROTOCOL)
        .await
        .expect("a blob stream");
    let outline = BlobRequest::Outline { hash: blob.hash };
    let pieces = BlobRequest::Pieces {
        hash: blob.hash,
        from: 0,
        count: 8,
    };
    for (seq, request) in [outline, pieces].iter().enumerate() {
        let frame = encode_request(request, &key, seq as u64);
        stream.write_all(&frame).await.expect("send a request");
    }
    stream.flush().await.expect("flush");
    // It reads nothing from here on, and keeps `stream` and its connection.

    // B gets A's record (a reference B wrote itself would not be served).
    let b = node(open(dir.path(), "b"), vec![a.address.clone()]).await;
    wait_for(
        "B to fetch the blob past the staller",
        Duration::from_secs(30),
        || held_hash(&b.store, &blob.hash).is_some(),
    )
    .await;
    assert_eq!(held_hash(&b.store, &blob.hash), Some(blob.hash));
    drop(stream);
}

/// Every file in `<name>.blobs/partial` (fetches in progress, their outlines
/// and claim locks).
fn partial_files(dir: &Path, name: &str) -> Vec<String> {
    std::fs::read_dir(dir.join(format!("{name}.blobs")).join("partial"))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_on_one_store_fetching_from_three_peers_place_only_true_blobs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = node(open(dir.path(), "a"), vec![]).await;
    let blobs: Vec<BlobRef> = (0..5u64)
        .map(|i| {
            let content = bytes(4 * MB + 777 * i as usize, 40 + i);
            add_with_record(&a.store, "photos", &format!("p{i}"), &content)
        })
        .collect();
    let b = node(open(dir.path(), "b"), vec![a.address.clone()]).await;
    let c = node(open(dir.path(), "c"), vec![a.address.clone()]).await;
    let holds_all = |s: &Store| blobs.iter().all(|x| s.has_blob(&x.hash).unwrap_or(false));
    wait_for("B and C to hold every blob", WAIT, || {
        holds_all(&b.store) && holds_all(&c.store)
    })
    .await;

    // N's data directory is used by two nodes at once (as two processes
    // would: two handles, two schedulers), one fetching from A, the other
    // from B and C, every blob in parallel; the first is restarted as soon
    // as bytes arrive. Only the store's claim keeps them apart.
    let wide = |c: &mut shoal::NodeConfig| {
        quick(c);
        c.blobs.concurrency = 8;
    };
    let (n1_store, n2_store) = (open(dir.path(), "n"), open(dir.path(), "n"));
    let others_held = |s: &Store| {
        blobs[1..]
            .iter()
            .all(|x| s.has_blob(&x.hash).unwrap_or(false))
    };
    // A third user of the directory (another process) is mid-fetch of the
    // first blob: neither node may write it until that claim ends.
    let third = shoal_store::BlobFiles::for_database(&dir.path().join("n.db"));
    let held = third.claim(&blobs[0].hash).expect("a third claimant");
    let to_a = vec![a.address.clone()];
    let n1 = start_with(n1_store.clone(), group_key(), to_a.clone(), wide).await;
    let n2 = start_with(
        n2_store.clone(),
        group_key(),
        vec![b.address.clone(), c.address.clone()],
        wide,
    )
    .await;
    wait_for("N to receive blob bytes", WAIT, || {
        n1.node.blob_transfers().1.bytes_received > 0 || others_held(&n1_store)
    })
    .await;
    drop(n1);
    let n1 = start_with(n1_store.clone(), group_key(), to_a, wide).await;
    wait_for("N to hold the blobs not claimed elsewhere", WAIT, || {
        others_held(&n1_store)
            && [&n1, &n2]
                .iter()
                .any(|n| failure(n, &blobs[0].hash).is_some_and(|e| e.contains("another fetch")))
    })
    .await;
    assert!(!n1_store.has_blob(&blobs[0].hash).expect("has"));
    drop(held);
    wait_for("N to hold every blob", WAIT, || {
        holds_all(&n1_store) && holds_all(&n2_store)
    })
    .await;
    for blob in &blobs {
        assert_eq!(
            held_hash(&n1_store, &blob.hash),
            Some(blob.hash),
            "a placed blob hashes to its name"
        );
    }
    assert!(
        n1_store
            .missing_blobs(None, 10)
            .expect("missing")
            .is_empty()
    );
    wait_for("no fetch left in progress on N", WAIT, || {
        partial_files(dir.path(), "n").is_empty()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_blob_rotting_on_disk_is_found_by_the_scrub_set_aside_and_fetched_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = node(open(dir.path(), "a"), vec![]).await;
    let content = bytes(3 * MB + 11, 77);
    let blob = add_with_record(&a.store, "photos", "p1", &content);
    let scrubbing = |c: &mut shoal::NodeConfig| {
        quick(c);
        c.blobs.scrub_interval = Some(Duration::from_millis(300));
        c.blobs.scrub_bytes_per_sec = 64 << 20;
    };
    let b = start_with(
        open(dir.path(), "b"),
        group_key(),
        vec![a.address.clone()],
        scrubbing,
    )
    .await;
    wait_for("the blob on B", WAIT, || {
        b.store.has_blob(&blob.hash).unwrap_or(false)
    })
    .await;
    // B's copy rots: one bit in its second piece.
    let hex = blob.hash.to_hex();
    let path = dir.path().join("b.blobs").join(&hex[..2]).join(&hex);
    let mut rotten = std::fs::read(&path).expect("read B's blob");
    rotten[MB + 5] ^= 0x01;
    std::fs::write(&path, &rotten).expect("rot B's blob");
    let corrupt = dir.path().join("b.blobs").join("corrupt");
    wait_for("B's scrub to set the bad copy aside", WAIT, || {
        std::fs::read_dir(&corrupt).is_ok_and(|d| d.count() == 1)
    })
    .await;
    wait_for("the blob fetched again", WAIT, || {
        b.store.has_blob(&blob.hash).unwrap_or(false)
            && held_hash(&b.store, &blob.hash) == Some(blob.hash)
    })
    .await;
    let aside = std::fs::read_dir(&corrupt)
        .expect("corrupt dir")
        .next()
        .expect("one file")
        .expect("entry");
    assert!(aside.file_name().to_string_lossy().starts_with(&hex));
    assert_eq!(std::fs::read(aside.path()).expect("kept"), rotten);
}
