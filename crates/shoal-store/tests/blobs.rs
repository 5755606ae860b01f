//! The store's blobs, end to end on a real directory and database file:
//!
//! - `BlobFiles::add` streams any slicing of its input into place with the
//!   standard BLAKE3 hash and a checking outline, reads back byte for byte,
//!   serves verifiable pieces, is idempotent, and leaves nothing behind when
//!   the cap is passed or the input fails;
//! - the blob index follows records: a reference (top level, in an array or a
//!   sub-object) is missing until the blob arrives, sets the record's
//!   `assets_missing` reconciliation flag meanwhile (the incremental tree
//!   agreeing with one rebuilt from the file), and goes away with the record
//!   or the reference; a malformed reference is refused locally with nothing
//!   written, and ignored (record kept) when it comes from a peer;
//! - a partial fetch resumes at the last verified piece, cuts a corrupt or
//!   torn tail, refuses pieces out of order and is placed whole at the end;
//! - garbage collection keeps referenced blobs, honours the grace period and
//!   then removes the blob from the index and the disk;
//! - `blob_readable_by` follows the sharing rules of the referencing
//!   collections, and `list_blobs` pages in hash order.

use shoal_core::blob::{BlobHash, BlobRef, MissingBlob, Outline, OutlineBuilder, PIECE_LEN};
use shoal_core::recon::{Fingerprint, ItemFlags, Node, ReconView};
use shoal_core::{CanonicalJson, CollectionName, Intent, RecordId, ShareMode, Slot};
use shoal_store::{BlobFiles, Store, StoreConfig, StoreError, WriteOp};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

const MIB: usize = PIECE_LEN as usize;

fn open(path: &Path) -> Store {
    Store::open(path, StoreConfig::default()).expect("open store")
}

fn coll(name: &str) -> CollectionName {
    CollectionName::new(name).expect("collection name")
}

fn rid(id: &str) -> RecordId {
    RecordId::new(id).expect("record id")
}

fn put_op(collection: &str, id: &str, body: serde_json::Value) -> WriteOp {
    WriteOp {
        collection: coll(collection),
        id: rid(id),
        intent: Intent::Put(body.as_object().expect("object").clone()),
    }
}

fn put(store: &mut Store, collection: &str, id: &str, body: serde_json::Value) {
    store.write([put_op(collection, id, body)]).expect("write");
}

fn delete(store: &mut Store, collection: &str, id: &str) {
    store
        .write([WriteOp {
            collection: coll(collection),
            id: rid(id),
            intent: Intent::Delete,
        }])
        .expect("delete");
}

/// Deterministic pseudo-random bytes (splitmix64).
fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A reader that hands out its data in small, odd-sized reads, and is
/// interrupted once (which a caller must retry).
struct Dribble<'a> {
    data: &'a [u8],
    calls: usize,
}

impl Read for Dribble<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        const SIZES: [usize; 7] = [1, 7, 4093, 3, 65_521, 999, 131_071];
        self.calls += 1;
        if self.calls == 4 {
            return Err(io::Error::from(io::ErrorKind::Interrupted));
        }
        let n = SIZES[self.calls % SIZES.len()]
            .min(buf.len())
            .min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// A reader that fails after `ok` bytes.
struct Failing {
    ok: usize,
}

impl Read for Failing {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.ok == 0 {
            return Err(io::Error::other("the source went away"));
        }
        let n = self.ok.min(buf.len());
        buf[..n].fill(0xab);
        self.ok -= n;
        Ok(n)
    }
}

fn outline_of(data: &[u8]) -> Outline {
    let mut builder = OutlineBuilder::new();
    builder.update(data);
    builder.finish()
}

fn read_all(files: &BlobFiles, hash: &BlobHash) -> Vec<u8> {
    let mut file = files.open(hash).expect("open blob").expect("blob is here");
    let mut out = Vec::new();
    file.read_to_end(&mut out).expect("read blob");
    out
}

/// Every file under `dir` (recursively, `tmp/` and `partial/` included),
/// relative to it and sorted. A missing directory has none.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(path.strip_prefix(root).expect("under root").to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn blob_ref(hash: BlobHash, size: u64, mime: Option<&str>) -> serde_json::Value {
    BlobRef {
        hash,
        size,
        mime: mime.map(str::to_string),
    }
    .to_json()
}

/// The reconciliation flags of one record, as the store lists it.
fn flags(store: &mut Store, collection: &str, id: &str) -> ItemFlags {
    let mut view = store.recon_view(&coll(collection)).expect("view");
    let mut found = Vec::new();
    for i in 0..16 {
        let node = Node::ROOT.child(i).expect("child");
        found.extend(
            view.items(node)
                .expect("items")
                .into_iter()
                .filter(|item| item.id.as_str() == id)
                .map(|item| item.flags),
        );
    }
    assert_eq!(found.len(), 1, "{collection}/{id} listed once");
    found[0]
}

/// The root and first-level fingerprints of a collection.
fn fingerprints(store: &mut Store, collection: &str) -> Vec<Fingerprint> {
    let mut view = store.recon_view(&coll(collection)).expect("view");
    let mut out = vec![view.fingerprint(Node::ROOT).expect("root")];
    out.extend(view.children(Node::ROOT).expect("children"));
    out
}

/// Adds `data` to the store's blob directory and registers its arrival.
fn add_blob(store: &mut Store, data: &[u8]) -> Outline {
    let outline = store
        .blob_files()
        .add(&mut &data[..], u64::MAX)
        .expect("add blob");
    store.blob_arrived(&outline).expect("blob arrived");
    outline
}

#[test]
fn add_streams_hashes_reads_back_and_is_idempotent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = BlobFiles::for_database(&dir.path().join("a.db"));
    assert_eq!(files.root(), dir.path().join("a.blobs"));
    let data = bytes(1, 3 * MIB + 5);
    let mut reader = Dribble {
        data: &data,
        calls: 0,
    };
    let outline = files.add(&mut reader, 1 << 30).expect("add");
    assert!(reader.calls > 50, "small reads: {}", reader.calls);
    assert_eq!(outline.hash.as_bytes(), blake3::hash(&data).as_bytes());
    assert_eq!(outline.size, data.len() as u64);
    assert_eq!(outline.piece_count(), 4);
    assert!(files.has(&outline.hash));
    assert_eq!(read_all(&files, &outline.hash), data);

    let stored = files
        .outline(&outline.hash)
        .expect("outline")
        .expect("present");
    stored.check().expect("stored outline checks");
    assert_eq!(stored, outline);

    let mut joined = Vec::new();
    for index in 0..stored.piece_count() {
        let mut piece = Vec::new();
        files
            .read_piece(&stored, index, &mut piece)
            .expect("read piece");
        stored.verify_piece(index, &piece).expect("piece verifies");
        joined.extend_from_slice(&piece);
    }
    assert_eq!(joined.len(), 3 * MIB + 5);
    assert_eq!(joined, data);
    // A piece from elsewhere in the blob does not verify in this place.
    let mut other = b"kept".to_vec();
    files
        .read_piece(&stored, 2, &mut other)
        .expect("read piece");
    assert_eq!(&other[..4], b"kept", "a piece is appended to the buffer");
    let other = &other[4..];
    assert!(stored.verify_piece(1, other).is_err());

    let hex = outline.hash.to_hex();
    let layout = vec![
        PathBuf::from(&hex[..2]).join(&hex),
        PathBuf::from(&hex[..2]).join(format!("{hex}.outline")),
    ];
    assert_eq!(files_under(files.root()), layout);

    // The same bytes again, differently sliced: same outline, still one blob.
    let again = files.add(&mut &data[..], 1 << 30).expect("add again");
    assert_eq!(again, outline);
    assert_eq!(files_under(files.root()), layout);
    assert_eq!(read_all(&files, &outline.hash), data);

    // A one-piece blob has no outline file; its outline is rebuilt from it.
    let small = bytes(2, 1000);
    let small_outline = files.add(&mut &small[..], 1 << 30).expect("add small");
    assert_eq!(small_outline.hash, BlobHash::of(&small));
    assert!(small_outline.cvs.is_empty());
    assert_eq!(
        files.outline(&small_outline.hash).expect("outline"),
        Some(small_outline.clone())
    );
    assert_eq!(files_under(files.root()).len(), 3);
    // The empty blob is a blob too.
    let empty = files.add(&mut io::empty(), 1 << 30).expect("add empty");
    assert_eq!(empty.hash.as_bytes(), blake3::hash(b"").as_bytes());
    assert_eq!((empty.size, empty.piece_count()), (0, 1));
    assert_eq!(read_all(&files, &empty.hash), Vec::<u8>::new());
    assert_eq!(files.outline(&empty.hash).expect("outline"), Some(empty));
    assert_eq!(files_under(files.root()).len(), 4);
    // An absent blob.
    let absent = BlobHash::of(b"never added");
    assert!(!files.has(&absent));
    assert!(files.open(&absent).expect("open").is_none());
    assert_eq!(files.outline(&absent).expect("outline"), None);
}

#[test]
fn add_over_the_cap_or_from_a_failing_reader_leaves_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = BlobFiles::for_database(&dir.path().join("a.db"));
    let data = bytes(3, 2 * MIB + 17);
    let cap = data.len() as u64 - 1;
    let mut reader = Dribble {
        data: &data,
        calls: 0,
    };
    match files.add(&mut reader, cap) {
        Err(StoreError::BlobTooLarge { size, cap: c }) => {
            assert_eq!(c, cap);
            assert!(size > cap, "{size} > {cap}");
        }
        other => panic!("expected BlobTooLarge, got {other:?}"),
    }
    assert!(!files.has(&BlobHash::of(&data)));
    assert!(files.root().join("tmp").is_dir(), "add went through tmp/");
    assert_eq!(files_under(files.root()), Vec::<PathBuf>::new());

    // A reader that fails midway leaves nothing either.
    assert!(matches!(
        files.add(&mut Failing { ok: 300_000 }, 1 << 30),
        Err(StoreError::Io { .. })
    ));
    assert_eq!(files_under(files.root()), Vec::<PathBuf>::new());

    // Exactly at the cap is fine.
    let outline = files
        .add(&mut &data[..], data.len() as u64)
        .expect("at cap");
    assert_eq!(outline.hash, BlobHash::of(&data));
    assert_eq!(files_under(files.root()).len(), 2);
}

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
    store.blob_arrived(&outline).expect("arrived");
    store.blob_arrived(&outline).expect("arrived twice is fine");
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

#[test]
fn a_partial_fetch_resumes_at_the_last_verified_piece() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = BlobFiles::for_database(&dir.path().join("a.db"));
    let data = bytes(20, 5 * MIB);
    let outline = outline_of(&data);
    outline.check().expect("outline checks");
    assert_eq!(outline.piece_count(), 5);
    let hash = outline.hash;
    let piece = |i: u64| {
        let range = outline.piece_range(i);
        &data[range.start as usize..range.end as usize]
    };
    assert_eq!(files.resume_point(&hash).expect("resume"), 0);
    assert_eq!(files.partial_len(&hash), 0);

    let k = 3u64;
    for i in 0..k {
        files.append_piece(&outline, i, piece(i)).expect("append");
    }
    assert_eq!(files.resume_point(&hash).expect("resume"), k);
    assert_eq!(files.partial_len(&hash), k * PIECE_LEN);
    assert!(!files.has(&hash));
    // Not finished yet.
    assert!(files.finish_partial(&outline).is_err());
    assert!(!files.has(&hash));

    // A corrupt byte in piece k-1 on disk: resume there, the file cut back.
    let partial = files.root().join("partial").join(hash.to_hex());
    let mut raw = std::fs::read(&partial).expect("read partial");
    assert_eq!(raw.len() as u64, k * PIECE_LEN);
    raw[(k as usize - 1) * MIB + 12_345] ^= 0x40;
    std::fs::write(&partial, &raw).expect("corrupt partial");
    assert_eq!(files.resume_point(&hash).expect("resume"), k - 1);
    assert_eq!(files.partial_len(&hash), (k - 1) * PIECE_LEN);
    assert_eq!(
        std::fs::metadata(&partial).expect("stat").len(),
        (k - 1) * PIECE_LEN
    );

    // A torn tail (half a piece) is cut too.
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&partial)
            .expect("open partial");
        f.write_all(&piece(k - 1)[..MIB / 2]).expect("tear");
    }
    assert_eq!(
        files.partial_len(&hash),
        (k - 1) * PIECE_LEN + PIECE_LEN / 2
    );
    assert_eq!(files.resume_point(&hash).expect("resume"), k - 1);
    assert_eq!(files.partial_len(&hash), (k - 1) * PIECE_LEN);

    // Out of order: ahead of the file, and behind it.
    assert!(files.append_piece(&outline, k, piece(k)).is_err());
    assert!(files.append_piece(&outline, k - 2, piece(k - 2)).is_err());
    assert_eq!(files.partial_len(&hash), (k - 1) * PIECE_LEN);
    assert_eq!(files.resume_point(&hash).expect("resume"), k - 1);

    for i in (k - 1)..outline.piece_count() {
        files.append_piece(&outline, i, piece(i)).expect("append");
    }
    assert_eq!(files.resume_point(&hash).expect("resume"), 5);
    files.finish_partial(&outline).expect("finish");
    assert!(files.has(&hash));
    assert_eq!(read_all(&files, &hash), data);
    assert_eq!(
        files.outline(&hash).expect("outline"),
        Some(outline.clone())
    );
    assert_eq!(files.partial_len(&hash), 0);
    assert_eq!(files.resume_point(&hash).expect("resume"), 0);
    let hex = hash.to_hex();
    assert_eq!(
        files_under(files.root()),
        vec![
            PathBuf::from(&hex[..2]).join(&hex),
            PathBuf::from(&hex[..2]).join(format!("{hex}.outline")),
        ]
    );
    assert_eq!(
        files
            .resume_point(&BlobHash::of(b"unknown"))
            .expect("resume"),
        0
    );
}

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
