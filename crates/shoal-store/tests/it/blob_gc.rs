//! Blobs over time and across peers, in a real database file: garbage
//! collection keeps referenced blobs, honours the grace period and then
//! removes the blob from the index and the disk; `blob_readable_by` follows
//! the sharing rules of the referencing collections, and `list_blobs` pages
//! in hash order. A collection racing a re-add of the same content (another
//! connection) never leaves the index claiming a blob whose file is gone.

use crate::blob_common;

use blob_common::*;
use shoal_core::ShareMode;
use shoal_core::blob::BlobHash;
use shoal_store::Arrival;
use std::path::PathBuf;

#[test]
fn garbage_collection_keeps_referenced_blobs_and_honours_the_grace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = open(&dir.path().join("a.db"));
    let data = bytes(30, 2 * MIB + 1);
    let outline = add_blob(&mut store, &data);
    let hash = outline.hash;
    put(
        &mut store,
        "photos",
        "p1",
        serde_json::json!({"photo": blob_ref(hash, data.len() as u64, None)}),
    );
    // An unreferenced blob beside it goes at once with no grace.
    let loose = add_blob(&mut store, &bytes(31, 100));

    assert_eq!(store.collect_garbage(0).expect("gc"), vec![loose.hash]);
    assert!(!store.blob_files().has(&loose.hash));
    assert!(!store.has_blob(&loose.hash).expect("has"));
    assert!(store.has_blob(&hash).expect("has"));
    assert!(store.blob_files().has(&hash));
    let listed = store.list_blobs(None, 10).expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].hash, listed[0].size, listed[0].references),
        (hash, data.len() as u64, 1)
    );

    delete(&mut store, "photos", "p1");
    assert_eq!(store.collect_garbage(60_000).expect("gc"), vec![]);
    assert!(store.has_blob(&hash).expect("has"));
    assert!(store.blob_files().has(&hash));
    assert_eq!(store.list_blobs(None, 10).expect("list").len(), 1);
    // Still within the grace period.
    assert_eq!(store.collect_garbage(60_000).expect("gc"), vec![]);

    assert_eq!(store.collect_garbage(0).expect("gc"), vec![hash]);
    assert_eq!(store.list_blobs(None, 10).expect("list"), vec![]);
    assert!(!store.has_blob(&hash).expect("has"));
    assert!(!store.blob_files().has(&hash));
    assert_eq!(
        files_under(store.blob_files().root()),
        Vec::<PathBuf>::new()
    );
    assert_eq!(store.collect_garbage(0).expect("gc"), vec![]);
}

#[test]
fn a_blob_referenced_again_within_the_grace_is_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = open(&dir.path().join("a.db"));
    let data = bytes(32, 4000);
    let hash = add_blob(&mut store, &data).hash;
    let body = serde_json::json!({"photo": blob_ref(hash, data.len() as u64, None)});
    put(&mut store, "photos", "p1", body.clone());
    delete(&mut store, "photos", "p1");
    // Marked unreferenced now…
    assert_eq!(store.collect_garbage(60_000).expect("gc"), vec![]);
    // …then referenced again: never missing, and the mark is lifted.
    put(&mut store, "photos", "p2", body);
    assert!(!flags(&mut store, "photos", "p2").assets_missing);
    assert_eq!(store.collect_garbage(0).expect("gc"), vec![]);
    assert!(store.has_blob(&hash).expect("has"));
    assert!(store.blob_files().has(&hash));
}

#[test]
fn an_unbounded_grace_never_removes_anything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = open(&dir.path().join("a.db"));
    let hash = add_blob(&mut store, &bytes(33, 10)).hash;
    // Graces past i64::MAX milliseconds must neither wrap into "now" nor
    // overflow.
    for grace in [u64::MAX, 1 << 63, i64::MAX as u64] {
        assert_eq!(store.collect_garbage(grace).expect("gc"), vec![], "{grace}");
        assert!(store.has_blob(&hash).expect("has"));
    }
    assert_eq!(store.collect_garbage(0).expect("gc"), vec![hash]);
}

#[test]
fn blob_readability_follows_the_sharing_of_referencing_collections() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = open(&dir.path().join("a.db"));
    let data = bytes(40, 3000);
    let hash = add_blob(&mut store, &data).hash;
    // Nothing references it yet: no peer may read it.
    assert!(!store.blob_readable_by("peer-a", &hash).expect("readable"));

    let body = serde_json::json!({"photo": blob_ref(hash, data.len() as u64, None)});
    put(&mut store, "photos", "p1", body.clone());
    for peer in ["peer-a", "peer-b"] {
        assert!(
            store.blob_readable_by(peer, &hash).expect("readable"),
            "{peer}"
        );
    }

    store
        .set_sharing("peer-a", &coll("photos"), ShareMode::None)
        .expect("share");
    assert!(!store.blob_readable_by("peer-a", &hash).expect("readable"));
    assert!(store.blob_readable_by("peer-b", &hash).expect("readable"));
    store
        .set_sharing("peer-a", &coll("photos"), ShareMode::Receive)
        .expect("share");
    assert!(!store.blob_readable_by("peer-a", &hash).expect("readable"));
    store
        .set_sharing("peer-a", &coll("photos"), ShareMode::Send)
        .expect("share");
    assert!(store.blob_readable_by("peer-a", &hash).expect("readable"));
    store
        .set_sharing("peer-a", &coll("photos"), ShareMode::None)
        .expect("share");

    // Another collection, shared with the peer, references the same blob.
    put(
        &mut store,
        "albums",
        "a1",
        serde_json::json!({"items": [body]}),
    );
    assert!(store.blob_readable_by("peer-a", &hash).expect("readable"));
    // Local-only collections never leave this node.
    store
        .set_local_only(&coll("albums"), true)
        .expect("local only");
    assert!(!store.blob_readable_by("peer-a", &hash).expect("readable"));
    assert!(store.blob_readable_by("peer-b", &hash).expect("readable"));
    store
        .set_local_only(&coll("albums"), false)
        .expect("local only");
    assert!(store.blob_readable_by("peer-a", &hash).expect("readable"));
    // Once the record is gone, the blob is unreadable to the peer again.
    delete(&mut store, "albums", "a1");
    assert!(!store.blob_readable_by("peer-a", &hash).expect("readable"));
    // An unknown blob is readable by nobody.
    let unknown = BlobHash::of(b"unknown");
    assert!(
        !store
            .blob_readable_by("peer-b", &unknown)
            .expect("readable")
    );
}

#[test]
fn list_blobs_pages_in_hash_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = open(&dir.path().join("a.db"));
    let blobs: Vec<Vec<u8>> = (0..3).map(|i| bytes(50 + i, 100 + i as usize)).collect();
    let mut hashes: Vec<(BlobHash, u64)> = blobs
        .iter()
        .map(|b| (add_blob(&mut store, b).hash, b.len() as u64))
        .collect();
    hashes.sort();
    // Reference the middle one twice (two records).
    let (mid, mid_len) = hashes[1];
    put(
        &mut store,
        "photos",
        "p1",
        serde_json::json!({"photo": blob_ref(mid, mid_len, None)}),
    );
    put(
        &mut store,
        "notes",
        "n1",
        serde_json::json!({"photo": blob_ref(mid, mid_len, None)}),
    );

    let first = store.list_blobs(None, 2).expect("list");
    assert_eq!(
        first.iter().map(|b| (b.hash, b.size)).collect::<Vec<_>>(),
        hashes[..2]
    );
    assert_eq!(
        first.iter().map(|b| b.references).collect::<Vec<_>>(),
        vec![0, 2]
    );
    assert!(first.iter().all(|b| b.added_ms > 0));
    let rest = store.list_blobs(Some(&first[1].hash), 2).expect("list");
    assert_eq!(
        rest.iter().map(|b| (b.hash, b.size)).collect::<Vec<_>>(),
        hashes[2..]
    );
    assert_eq!(
        store.list_blobs(Some(&rest[0].hash), 2).expect("list"),
        vec![]
    );
    assert_eq!(store.list_blobs(None, 10).expect("list").len(), 3);
}

#[test]
fn a_collection_racing_a_re_add_never_leaves_the_index_without_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.db");
    // Two connections to one database: a collecting process and an adding one.
    let mut collector = open(&path);
    let mut adder = open(&path);
    let data = bytes(40, MIB + 3);
    let outline = add_blob(&mut collector, &data);
    let hash = outline.hash;

    // The adder indexes the content again between the collector's two
    // halves: the file stays, and the index and the directory agree.
    assert_eq!(collector.unindex_orphans(0).expect("unindex"), vec![hash]);
    assert!(!adder.has_blob(&hash).expect("has"));
    let again = adder
        .blob_files()
        .add(&mut &data[..], u64::MAX)
        .expect("add again");
    assert_eq!(again.hash, hash);
    assert_eq!(
        adder.blob_arrived(&again).expect("arrived"),
        Arrival::Indexed
    );
    assert_eq!(
        collector.remove_unindexed(&[hash]).expect("remove"),
        vec![],
        "a blob indexed again is not removed"
    );
    assert!(collector.blob_files().has(&hash));
    assert!(collector.has_blob(&hash).expect("has"));
    assert_eq!(read_all(&collector.blob_files(), &hash), data);

    // The adder placed the file before the collector removed it, and asks
    // to index it after: it is told the file is gone, and nothing claims
    // the blob is here.
    assert_eq!(collector.unindex_orphans(0).expect("unindex"), vec![hash]);
    let placed = adder
        .blob_files()
        .add(&mut &data[..], u64::MAX)
        .expect("placed");
    assert_eq!(
        collector.remove_unindexed(&[hash]).expect("remove"),
        vec![hash]
    );
    assert_eq!(
        adder.blob_arrived(&placed).expect("arrived"),
        Arrival::FileGone
    );
    assert!(!adder.has_blob(&hash).expect("has"));
    assert!(!adder.blob_files().has(&hash));
    // Placed once more, it is indexed.
    let third = adder
        .blob_files()
        .add(&mut &data[..], u64::MAX)
        .expect("placed again");
    assert_eq!(
        adder.blob_arrived(&third).expect("arrived"),
        Arrival::Indexed
    );
    assert!(collector.has_blob(&hash).expect("has"));
}
