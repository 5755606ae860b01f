//! The blob index follows records, in a real database file: a reference
//! (top level, in an array or a sub-object) is missing until the blob
//! arrives, sets the record's `assets_missing` reconciliation flag meanwhile
//! (the incremental tree agreeing with one rebuilt from the file), and goes
//! away with the record or the reference; a malformed reference is refused
//! locally with nothing written, and ignored (record kept) when it comes from
//! a peer; a blob arriving makes a reconciliation tree saved before stale.

use crate::blob_common;

use blob_common::*;
use shoal_core::blob::{BlobHash, MissingBlob};
use shoal_core::recon::ItemFlags;
use shoal_core::{CanonicalJson, CollectionName, Intent, Slot};
use shoal_store::{Arrival, StoreError, WriteOp};

#[test]
fn references_are_missing_until_the_blob_arrives_and_follow_the_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.db");
    let mut store = open(&path);
    let cover = bytes(10, MIB + MIB / 2);
    let thumb = bytes(11, 5000);
    let (h_cover, h_thumb) = (BlobHash::of(&cover), BlobHash::of(&thumb));
    let (cover_len, thumb_len) = (cover.len() as u64, thumb.len() as u64);

    put(
        &mut store,
        "photos",
        "p1",
        serde_json::json!({"title": "sea", "photo": blob_ref(h_cover, cover_len, Some("image/png"))}),
    );
    // Nested in an array, and in a sub-object of another collection.
    put(
        &mut store,
        "photos",
        "p2",
        serde_json::json!({"gallery": [1, {"caption": "a", "img": blob_ref(h_thumb, thumb_len, None)}]}),
    );
    put(
        &mut store,
        "notes",
        "n1",
        serde_json::json!({"meta": {"deep": {"thumb": blob_ref(h_thumb, thumb_len, None)}}}),
    );
    put(
        &mut store,
        "notes",
        "plain",
        serde_json::json!({"text": "no blobs"}),
    );

    let mut want = vec![
        MissingBlob {
            hash: h_cover,
            size: cover_len,
            collections: vec![coll("photos")],
        },
        MissingBlob {
            hash: h_thumb,
            size: thumb_len,
            collections: vec![coll("notes"), coll("photos")],
        },
    ];
    want.sort_by_key(|m| m.hash);
    assert_eq!(store.missing_blobs(None, 10).expect("missing"), want);
    // Paging through the missing list.
    assert_eq!(store.missing_blobs(None, 1).expect("missing"), want[..1]);
    assert_eq!(
        store
            .missing_blobs(Some(&want[0].hash), 10)
            .expect("missing"),
        want[1..]
    );
    assert!(!store.has_blob(&h_cover).expect("has"));
    for (c, id) in [("photos", "p1"), ("photos", "p2"), ("notes", "n1")] {
        assert_eq!(
            flags(&mut store, c, id),
            ItemFlags {
                alive: true,
                assets_missing: true
            },
            "{c}/{id}"
        );
    }
    assert!(!flags(&mut store, "notes", "plain").assets_missing);

    // The cover arrives (the trees are built above, so this moves them
    // incrementally).
    let outline = store
        .blob_files()
        .add(&mut &cover[..], 1 << 30)
        .expect("add");
    assert_eq!(outline.hash, h_cover);
    // Present on disk but not registered: still missing.
    assert!(!store.has_blob(&h_cover).expect("has"));
    assert_eq!(
        store.blob_arrived(&outline).expect("arrived"),
        Arrival::Indexed
    );
    assert_eq!(
        store.blob_arrived(&outline).expect("arrived twice is fine"),
        Arrival::Indexed
    );
    assert!(store.has_blob(&h_cover).expect("has"));
    let only_thumb: Vec<_> = want.iter().filter(|m| m.hash == h_thumb).cloned().collect();
    assert_eq!(store.missing_blobs(None, 10).expect("missing"), only_thumb);
    assert!(!flags(&mut store, "photos", "p1").assets_missing);
    assert!(flags(&mut store, "photos", "p2").assets_missing);
    assert!(flags(&mut store, "notes", "n1").assets_missing);

    add_blob(&mut store, &thumb);
    assert_eq!(store.missing_blobs(None, 10).expect("missing"), vec![]);
    assert!(store.has_blob(&h_thumb).expect("has"));
    for (c, id) in [("photos", "p1"), ("photos", "p2"), ("notes", "n1")] {
        assert_eq!(
            flags(&mut store, c, id),
            ItemFlags {
                alive: true,
                assets_missing: false
            },
            "{c}/{id}"
        );
    }

    // A record written once the blob is here is never missing anything.
    put(
        &mut store,
        "notes",
        "n2",
        serde_json::json!({"cover": blob_ref(h_cover, cover_len, None)}),
    );
    assert!(!flags(&mut store, "notes", "n2").assets_missing);
    assert_eq!(store.missing_blobs(None, 10).expect("missing"), vec![]);

    // The incrementally moved trees equal those rebuilt from the file.
    let incremental = (
        fingerprints(&mut store, "photos"),
        fingerprints(&mut store, "notes"),
    );
    let mut reopened = open(&path);
    let rebuilt = (
        fingerprints(&mut reopened, "photos"),
        fingerprints(&mut reopened, "notes"),
    );
    drop(reopened);
    assert_eq!(incremental, rebuilt);

    // Deleting a record, or rewriting it without the reference, drops it.
    assert_eq!(
        store.blob_collections(&h_cover).expect("collections"),
        vec![coll("notes"), coll("photos")]
    );
    delete(&mut store, "photos", "p1");
    assert_eq!(
        store.blob_collections(&h_cover).expect("collections"),
        vec![coll("notes")]
    );
    put(
        &mut store,
        "notes",
        "n2",
        serde_json::json!({"cover": "gone"}),
    );
    assert_eq!(
        store.blob_collections(&h_cover).expect("collections"),
        Vec::<CollectionName>::new()
    );
    store
        .write([WriteOp {
            collection: coll("photos"),
            id: rid("p2"),
            intent: Intent::Patch(
                serde_json::json!({"gallery": null})
                    .as_object()
                    .expect("object")
                    .clone(),
            ),
        }])
        .expect("patch");
    assert_eq!(
        store.blob_collections(&h_thumb).expect("collections"),
        vec![coll("notes")]
    );
    delete(&mut store, "notes", "n1");
    assert_eq!(
        store.blob_collections(&h_thumb).expect("collections"),
        Vec::<CollectionName>::new()
    );
    let listed = store.list_blobs(None, 10).expect("list");
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|b| b.references == 0), "{listed:?}");
    assert_eq!(
        flags(&mut store, "photos", "p1"),
        ItemFlags {
            alive: false,
            assets_missing: false
        }
    );
}

#[test]
fn a_deleted_record_with_a_missing_blob_stops_wanting_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = open(&dir.path().join("a.db"));
    let hash = BlobHash::of(b"never fetched");
    put(
        &mut store,
        "photos",
        "p1",
        serde_json::json!({"photo": blob_ref(hash, 13, None)}),
    );
    assert_eq!(store.missing_blobs(None, 10).expect("missing").len(), 1);
    delete(&mut store, "photos", "p1");
    assert_eq!(store.missing_blobs(None, 10).expect("missing"), vec![]);
    assert_eq!(
        flags(&mut store, "photos", "p1"),
        ItemFlags {
            alive: false,
            assets_missing: false
        }
    );
    // A new life of the record wants it again.
    put(
        &mut store,
        "photos",
        "p1",
        serde_json::json!({"photo": blob_ref(hash, 13, None)}),
    );
    assert_eq!(store.missing_blobs(None, 10).expect("missing").len(), 1);
    assert!(flags(&mut store, "photos", "p1").assets_missing);
}

#[test]
fn a_malformed_reference_is_refused_locally_and_ignored_from_a_peer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = open(&dir.path().join("a.db"));
    put(&mut store, "notes", "keep", serde_json::json!({"n": 1}));
    let version = store.db_version();
    let changes_before = store.changes_since(Default::default()).count();
    let good = blob_ref(BlobHash::of(b"x"), 1, None);
    let bad_values = [
        serde_json::json!({"$blob": "zz", "size": 1}),
        serde_json::json!({"$blob": BlobHash::of(b"x").to_hex()}),
        serde_json::json!({"$blob": BlobHash::of(b"x").to_hex(), "size": 1, "name": "x"}),
        serde_json::json!([good.clone(), {"$blob": BlobHash::of(b"x").to_hex(), "size": 2}]),
    ];
    for bad in bad_values {
        // Alone, and in one write with a good op: all or nothing.
        for ops in [
            vec![put_op(
                "photos",
                "p1",
                serde_json::json!({"photo": bad.clone()}),
            )],
            vec![
                put_op("photos", "ok", serde_json::json!({"photo": good.clone()})),
                put_op(
                    "photos",
                    "p1",
                    serde_json::json!({"nested": {"x": [bad.clone()]}}),
                ),
            ],
        ] {
            match store.write(ops) {
                Err(StoreError::BadBlobRef(_)) => {}
                other => panic!("{bad}: expected BadBlobRef, got {other:?}"),
            }
        }
    }
    assert_eq!(store.db_version(), version);
    assert_eq!(
        store.changes_since(Default::default()).count(),
        changes_before
    );
    assert_eq!(store.get(&coll("photos"), &rid("p1")).expect("get"), None);
    assert_eq!(store.get(&coll("photos"), &rid("ok")).expect("get"), None);
    let names: Vec<_> = store
        .status()
        .expect("status")
        .collections
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, vec![coll("notes")]);
    assert_eq!(store.missing_blobs(None, 10).expect("missing"), vec![]);
    // A patch adding a bad reference to an existing record is refused too.
    let patch = WriteOp {
        collection: coll("notes"),
        id: rid("keep"),
        intent: Intent::Patch(
            serde_json::json!({"photo": {"$blob": "zz", "size": 1}})
                .as_object()
                .expect("object")
                .clone(),
        ),
    };
    assert!(matches!(
        store.write([patch]),
        Err(StoreError::BadBlobRef(_))
    ));
    assert_eq!(
        store.get(&coll("notes"), &rid("keep")).expect("get"),
        Some(
            serde_json::json!({"n": 1})
                .as_object()
                .expect("object")
                .clone()
        )
    );

    // The same malformed value from a peer: a peer's change carrying it (made
    // from a real change of another store, its value replaced as a faulty
    // peer would send it) is kept, and the reference ignored.
    let mut peer = open(&dir.path().join("peer.db"));
    put(
        &mut peer,
        "photos",
        "p1",
        serde_json::json!({"photo": "placeholder"}),
    );
    let mut changes: Vec<_> = peer
        .changes_since(Default::default())
        .collect::<Result<_, _>>()
        .expect("changes");
    let malformed = serde_json::json!({"$blob": "zz", "size": 1});
    let mut replaced = 0;
    for change in &mut changes {
        if matches!(&change.slot, Slot::Field(f) if f.as_str() == "photo") {
            change.value = Some(CanonicalJson::from_value(&malformed));
            replaced += 1;
        }
    }
    assert_eq!(replaced, 1);
    store.apply(&changes).expect("apply");
    assert_eq!(
        store.get(&coll("photos"), &rid("p1")).expect("get"),
        Some(
            serde_json::json!({"photo": malformed})
                .as_object()
                .expect("object")
                .clone()
        )
    );
    assert_eq!(store.missing_blobs(None, 10).expect("missing"), vec![]);
    assert!(!flags(&mut store, "photos", "p1").assets_missing);
    // The peer's malformed reference does not block local edits of the
    // record's other fields.
    let edit = WriteOp {
        collection: coll("photos"),
        id: rid("p1"),
        intent: Intent::Patch(
            serde_json::json!({"caption": "kept"})
                .as_object()
                .expect("object")
                .clone(),
        ),
    };
    store
        .write([edit])
        .expect("local edit beside a peer's bad reference");
    assert_eq!(
        store
            .get(&coll("photos"), &rid("p1"))
            .expect("get")
            .expect("alive")["caption"],
        "kept"
    );
}

/// A blob arriving moves a record's reconciliation element without moving
/// the log head: a tree saved at close must not be taken back after it.
#[test]
fn a_blob_arriving_in_another_process_makes_the_saved_tree_stale() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.db");
    let data = bytes(12, 4000);
    let hash = BlobHash::of(&data);
    let mut daemon = open(&path);
    for i in 0..50 {
        put(
            &mut daemon,
            "photos",
            &format!("p{i}"),
            serde_json::json!({"n": i}),
        );
    }
    put(
        &mut daemon,
        "photos",
        "pic",
        serde_json::json!({"img": blob_ref(hash, data.len() as u64, None)}),
    );
    assert!(flags(&mut daemon, "photos", "pic").assets_missing);
    let saved = fingerprints(&mut daemon, "photos");
    drop(daemon); // saves the tree

    // Another process, which never built a tree, takes the blob in.
    let mut cli = open(&path);
    add_blob(&mut cli, &data);
    drop(cli);

    let mut reopened = open(&path);
    let now = fingerprints(&mut reopened, "photos");
    assert_eq!(
        reopened.recon_index_builds(),
        1,
        "the stale tree was not used"
    );
    assert_ne!(now, saved);
    assert!(!flags(&mut reopened, "photos", "pic").assets_missing);
}
