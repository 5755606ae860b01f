//! The scrub of held blobs: a good blob checks good and stays; a blob whose
//! file no longer hashes to its name (or whose outline is damaged, or whose
//! file vanished) is found bad, moved to `corrupt/`, no longer held, listed
//! as missing, and its records flagged `assets-missing` until it arrives
//! again.

use crate::blob_common;

use blob_common::*;
use serde_json::json;
use shoal_store::{Arrival, BlobCheck};

#[test]
fn a_bad_held_blob_is_set_aside_and_counted_missing_until_it_arrives_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = open(&dir.path().join("a.db"));
    let files = store.blob_files();
    let good = bytes(1, 2 * MIB + 3);
    let rotten = bytes(2, 3 * MIB + 5);
    let mut outlines = Vec::new();
    for (id, content) in [("good", &good), ("rotten", &rotten)] {
        let outline = files.add(&mut &content[..], 1 << 30).expect("add");
        assert_eq!(
            store.blob_arrived(&outline).expect("arrived"),
            Arrival::Indexed
        );
        let body = json!({"file": {"$blob": outline.hash.to_hex(), "size": outline.size}});
        put(&mut store, "photos", id, body);
        outlines.push(outline);
    }
    let (good_o, rotten_o) = (&outlines[0], &outlines[1]);
    assert!(!flags(&mut store, "photos", "rotten").assets_missing);

    let mut read = 0u64;
    assert_eq!(
        files
            .check_blob(&good_o.hash, &mut |n| read += n)
            .expect("check"),
        BlobCheck::Good
    );
    assert_eq!(read, good.len() as u64, "the whole file is read");
    assert_eq!(
        files
            .check_blob(&rotten_o.hash, &mut |_| {})
            .expect("check"),
        BlobCheck::Good
    );

    // A bit flips on disk.
    let hex = rotten_o.hash.to_hex();
    let path = files.root().join(&hex[..2]).join(&hex);
    let mut raw = std::fs::read(&path).expect("read");
    raw[2 * MIB + 17] ^= 0x08;
    std::fs::write(&path, &raw).expect("rot");
    assert!(matches!(
        files
            .check_blob(&rotten_o.hash, &mut |_| {})
            .expect("check"),
        BlobCheck::Bad { .. }
    ));
    // Still called present until it is set aside.
    assert!(store.has_blob(&rotten_o.hash).expect("has"));
    let moved = store
        .set_blob_aside(&rotten_o.hash)
        .expect("set aside")
        .expect("the file was moved");
    assert!(moved.starts_with(files.root().join("corrupt")));
    assert!(
        moved
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(&hex)
    );
    assert_eq!(std::fs::read(&moved).expect("kept for inspection"), raw);
    assert!(!files.has(&rotten_o.hash));
    assert!(!store.has_blob(&rotten_o.hash).expect("has"));
    let missing = store.missing_blobs(None, 10).expect("missing");
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0].hash, rotten_o.hash);
    assert!(flags(&mut store, "photos", "rotten").assets_missing);
    assert!(!flags(&mut store, "photos", "good").assets_missing);
    assert!(store.has_blob(&good_o.hash).expect("good stays"));

    // Fetched (here: added) again, it is held and the flag clears.
    let again = files.add(&mut &rotten[..], 1 << 30).expect("add again");
    assert_eq!(
        store.blob_arrived(&again).expect("arrived"),
        Arrival::Indexed
    );
    assert!(!flags(&mut store, "photos", "rotten").assets_missing);
    assert!(store.missing_blobs(None, 10).expect("missing").is_empty());
    assert_eq!(
        files
            .check_blob(&rotten_o.hash, &mut |_| {})
            .expect("check"),
        BlobCheck::Good
    );
}

#[test]
fn a_damaged_outline_or_a_vanished_file_is_bad_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = open(&dir.path().join("a.db"));
    let files = store.blob_files();
    let content = bytes(5, 2 * MIB + 1);
    let outline = files.add(&mut &content[..], 1 << 30).expect("add");
    assert_eq!(
        store.blob_arrived(&outline).expect("arrived"),
        Arrival::Indexed
    );
    let hex = outline.hash.to_hex();
    let outline_path = files.root().join(&hex[..2]).join(format!("{hex}.outline"));
    let mut cvs = std::fs::read(&outline_path).expect("outline");
    cvs[3] ^= 1;
    std::fs::write(&outline_path, &cvs).expect("damage outline");
    assert!(matches!(
        files.check_blob(&outline.hash, &mut |_| {}).expect("check"),
        BlobCheck::Bad { .. }
    ));
    assert!(
        store
            .set_blob_aside(&outline.hash)
            .expect("aside")
            .is_some()
    );
    assert!(!outline_path.exists());
    assert!(!store.has_blob(&outline.hash).expect("has"));

    // Indexed, but its file is gone.
    let outline = files.add(&mut &content[..], 1 << 30).expect("add");
    assert_eq!(
        store.blob_arrived(&outline).expect("arrived"),
        Arrival::Indexed
    );
    std::fs::remove_file(files.root().join(&hex[..2]).join(&hex)).expect("remove");
    assert!(matches!(
        files.check_blob(&outline.hash, &mut |_| {}).expect("check"),
        BlobCheck::Bad { .. }
    ));
    assert_eq!(store.set_blob_aside(&outline.hash).expect("aside"), None);
    assert!(!store.has_blob(&outline.hash).expect("has"));
}
