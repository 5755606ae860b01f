//! One fetch per blob, enforced by the blob directory itself: a second claim
//! on a blob's partial file is refused (another handle on the same directory,
//! another thread), several writers racing to fetch one blob end with exactly
//! the blob placed, and finishing re-hashes the partial file so bytes that
//! are not the blob are never placed.

use crate::blob_common;

use blob_common::*;
use shoal_core::blob::BlobHash;
use shoal_store::{BlobFiles, StoreError};
use std::sync::{Arc, Barrier};
use std::time::Duration;

#[test]
fn a_blob_has_one_claim_at_a_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("a.db");
    let files = BlobFiles::for_database(&db);
    let hash = BlobHash::of(b"some blob");
    let claim = files.claim(&hash).expect("first claim");
    assert_eq!(claim.hash(), &hash);
    // The same handle, another handle on the same directory (as another
    // process would have), and another thread are all refused.
    for other in [files.clone(), BlobFiles::for_database(&db)] {
        match other.claim(&hash) {
            Err(StoreError::BlobBusy { hash: h }) => assert_eq!(h, hash.to_hex()),
            other => panic!("second claim: {other:?}"),
        }
    }
    let from_thread = {
        let files = files.clone();
        std::thread::spawn(move || files.claim(&hash).map(|_| ()))
            .join()
            .expect("thread")
    };
    assert!(matches!(from_thread, Err(StoreError::BlobBusy { .. })));
    // Another blob is not held up.
    files.claim(&BlobHash::of(b"another")).expect("other blob");
    drop(claim);
    let again = files.claim(&hash).expect("claimed again once released");
    drop(again);
    // Nothing is left behind by claims alone.
    assert!(files_under(files.root()).is_empty());
}

#[test]
fn racing_fetches_of_one_blob_place_exactly_the_blob() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("a.db");
    let data = Arc::new(bytes(7, 6 * MIB + 321));
    let outline = Arc::new(outline_of(&data));
    let hash = outline.hash;
    let writers = 4;
    let start = Arc::new(Barrier::new(writers));
    let threads: Vec<_> = (0..writers)
        .map(|_| {
            let (data, outline, start) = (data.clone(), outline.clone(), start.clone());
            // Each writer its own handle, as separate fetch tasks (or nodes
            // restarted on one directory) have.
            let files = BlobFiles::for_database(&db);
            std::thread::spawn(move || {
                start.wait();
                let mut placed_here = 0;
                while !files.has(&outline.hash) {
                    let mut claim = match files.claim(&outline.hash) {
                        Ok(claim) => claim,
                        Err(StoreError::BlobBusy { .. }) => {
                            std::thread::sleep(Duration::from_millis(1));
                            continue;
                        }
                        Err(e) => panic!("claim: {e}"),
                    };
                    let from = claim.resume_point().expect("resume");
                    for i in from..outline.piece_count() {
                        let range = outline.piece_range(i);
                        let piece = &data[range.start as usize..range.end as usize];
                        claim.append_piece(&outline, i, piece).expect("append");
                        std::thread::yield_now();
                    }
                    claim.finish(&outline).expect("finish");
                    placed_here += 1;
                }
                placed_here
            })
        })
        .collect();
    let placed: u32 = threads.into_iter().map(|t| t.join().expect("writer")).sum();
    assert!(placed >= 1);
    let files = BlobFiles::for_database(&db);
    let held = read_all(&files, &hash);
    assert_eq!(held.len(), data.len(), "the placed file is the blob's size");
    assert_eq!(
        BlobHash::of(&held),
        hash,
        "the placed file hashes to its name"
    );
    assert_eq!(files.partial_len(&hash), 0);
}

#[test]
fn finishing_rehashes_and_never_places_bytes_that_are_not_the_blob() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = BlobFiles::for_database(&dir.path().join("a.db"));
    let data = bytes(9, 3 * MIB + 10);
    let outline = outline_of(&data);
    let partial = files.root().join("partial").join(outline.hash.to_hex());
    let fill = |claim: &mut shoal_store::BlobClaim| {
        for i in 0..outline.piece_count() {
            let range = outline.piece_range(i);
            let piece = &data[range.start as usize..range.end as usize];
            claim.append_piece(&outline, i, piece).expect("append");
        }
    };

    // A byte changed on disk after its piece was verified.
    let mut claim = files.claim(&outline.hash).expect("claim");
    fill(&mut claim);
    let mut raw = std::fs::read(&partial).expect("read partial");
    raw[MIB + 99] ^= 1;
    std::fs::write(&partial, &raw).expect("tamper");
    match claim.finish(&outline) {
        Err(StoreError::BlobMismatch { hash, .. }) => assert_eq!(hash, outline.hash.to_hex()),
        other => panic!("finish of a changed file: {other:?}"),
    }
    assert!(!files.has(&outline.hash));
    assert_eq!(files.partial_len(&outline.hash), 0, "bad bytes are dropped");

    // Bytes past the blob's end (what two unlocked appenders made).
    let mut claim = files.claim(&outline.hash).expect("claim");
    fill(&mut claim);
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&partial)
            .expect("open partial");
        f.write_all(&data[..MIB]).expect("extra bytes");
    }
    assert!(matches!(
        claim.finish(&outline),
        Err(StoreError::BlobMismatch { .. })
    ));
    assert!(!files.has(&outline.hash));

    // Finishing with another blob's outline is refused too.
    let mut claim = files.claim(&outline.hash).expect("claim");
    fill(&mut claim);
    let other = outline_of(b"other");
    assert!(matches!(
        claim.finish(&other),
        Err(StoreError::BlobMismatch { .. })
    ));
    assert!(!files.has(&other.hash) && !files.has(&outline.hash));

    // And the honest fetch is placed.
    let mut claim = files.claim(&outline.hash).expect("claim");
    fill(&mut claim);
    claim.finish(&outline).expect("finish");
    assert_eq!(read_all(&files, &outline.hash), data);
}

#[test]
fn appends_are_checked_against_the_claim() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = BlobFiles::for_database(&dir.path().join("a.db"));
    let data = bytes(3, 2 * MIB + 1);
    let outline = outline_of(&data);
    let other = outline_of(&bytes(4, 2 * MIB + 1));
    let mut claim = files.claim(&outline.hash).expect("claim");
    let piece0 = &data[..MIB];
    // Another blob's pieces, or a piece out of turn, are refused unwritten.
    assert!(claim.append_piece(&other, 0, piece0).is_err());
    assert!(claim.append_piece(&outline, 1, piece0).is_err());
    assert_eq!(files.partial_len(&outline.hash), 0);
    claim
        .append_piece(&outline, 0, piece0)
        .expect("first piece");
    assert!(claim.append_piece(&outline, 0, piece0).is_err());
    assert_eq!(files.partial_len(&outline.hash), MIB as u64);
}
