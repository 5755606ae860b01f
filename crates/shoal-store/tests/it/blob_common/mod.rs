//! What the store's blob tests share: opening a store, writing records,
//! deterministic and awkward readers, and looking at the blob directory and
//! the reconciliation view. Not every test file uses every part.
#![allow(dead_code)]

use shoal_core::blob::{BlobHash, BlobRef, Outline, OutlineBuilder, PIECE_LEN};
use shoal_core::recon::{Fingerprint, ItemFlags, Node, ReconView};
use shoal_core::{CollectionName, Intent, RecordId};
use shoal_store::{Arrival, BlobFiles, Store, StoreConfig, WriteOp};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

pub const MIB: usize = PIECE_LEN as usize;

pub fn open(path: &Path) -> Store {
    Store::open(path, StoreConfig::default()).expect("open store")
}

pub fn coll(name: &str) -> CollectionName {
    CollectionName::new(name).expect("collection name")
}

pub fn rid(id: &str) -> RecordId {
    RecordId::new(id).expect("record id")
}

pub fn put_op(collection: &str, id: &str, body: serde_json::Value) -> WriteOp {
    WriteOp {
        collection: coll(collection),
        id: rid(id),
        intent: Intent::Put(body.as_object().expect("object").clone()),
    }
}

pub fn put(store: &mut Store, collection: &str, id: &str, body: serde_json::Value) {
    store.write([put_op(collection, id, body)]).expect("write");
}

pub fn delete(store: &mut Store, collection: &str, id: &str) {
    store
        .write([WriteOp {
            collection: coll(collection),
            id: rid(id),
            intent: Intent::Delete,
        }])
        .expect("delete");
}

/// Deterministic pseudo-random bytes (splitmix64).
pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
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
pub struct Dribble<'a> {
    pub data: &'a [u8],
    pub calls: usize,
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
pub struct Failing {
    pub ok: usize,
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

pub fn outline_of(data: &[u8]) -> Outline {
    let mut builder = OutlineBuilder::new();
    builder.update(data);
    builder.finish()
}

pub fn read_all(files: &BlobFiles, hash: &BlobHash) -> Vec<u8> {
    let mut file = files.open(hash).expect("open blob").expect("blob is here");
    let mut out = Vec::new();
    file.read_to_end(&mut out).expect("read blob");
    out
}

/// Every file under `dir` (recursively, `tmp/` and `partial/` included),
/// relative to it and sorted. A missing directory has none.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
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

pub fn blob_ref(hash: BlobHash, size: u64, mime: Option<&str>) -> serde_json::Value {
    BlobRef {
        hash,
        size,
        mime: mime.map(str::to_string),
    }
    .to_json()
}

/// The reconciliation flags of one record, as the store lists it.
pub fn flags(store: &mut Store, collection: &str, id: &str) -> ItemFlags {
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
pub fn fingerprints(store: &mut Store, collection: &str) -> Vec<Fingerprint> {
    let mut view = store.recon_view(&coll(collection)).expect("view");
    let mut out = vec![view.fingerprint(Node::ROOT).expect("root")];
    out.extend(view.children(Node::ROOT).expect("children"));
    out
}

/// Adds `data` to the store's blob directory and registers its arrival.
pub fn add_blob(store: &mut Store, data: &[u8]) -> Outline {
    let outline = store
        .blob_files()
        .add(&mut &data[..], u64::MAX)
        .expect("add blob");
    assert_eq!(
        store.blob_arrived(&outline).expect("blob arrived"),
        Arrival::Indexed
    );
    outline
}
