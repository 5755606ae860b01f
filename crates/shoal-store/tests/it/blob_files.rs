//! The store's blob directory on a real disk: `BlobFiles::add` streams any
//! slicing of its input into place with the standard BLAKE3 hash and a
//! checking outline, reads back byte for byte, serves verifiable pieces, is
//! idempotent, and leaves nothing behind when the cap is passed or the input
//! fails; a partial fetch resumes at the last verified piece, cuts a corrupt
//! or torn tail, refuses pieces out of order and is placed whole at the end.

use crate::blob_common;

use blob_common::*;
use shoal_core::blob::{BlobHash, PIECE_LEN};
use shoal_store::{BlobFiles, StoreError};
use std::io::{self};
use std::path::PathBuf;

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
    let mut claim = files.claim(&hash).expect("claim");
    assert_eq!(claim.resume_point().expect("resume"), 0);
    assert_eq!(files.partial_len(&hash), 0);

    let k = 3u64;
    for i in 0..k {
        claim.append_piece(&outline, i, piece(i)).expect("append");
    }
    assert_eq!(claim.resume_point().expect("resume"), k);
    assert_eq!(files.partial_len(&hash), k * PIECE_LEN);
    assert!(!files.has(&hash));
    // Released and claimed again: the pieces stay; a second claimant is
    // refused meanwhile.
    drop(claim);
    let mut claim = files.claim(&hash).expect("claim");
    assert_eq!(claim.resume_point().expect("resume"), k);
    assert!(matches!(
        files.claim(&hash),
        Err(StoreError::BlobBusy { .. })
    ));

    // A corrupt byte in piece k-1 on disk: resume there, the file cut back.
    let partial = files.root().join("partial").join(hash.to_hex());
    let mut raw = std::fs::read(&partial).expect("read partial");
    assert_eq!(raw.len() as u64, k * PIECE_LEN);
    raw[(k as usize - 1) * MIB + 12_345] ^= 0x40;
    std::fs::write(&partial, &raw).expect("corrupt partial");
    assert_eq!(claim.resume_point().expect("resume"), k - 1);
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
    assert_eq!(claim.resume_point().expect("resume"), k - 1);
    assert_eq!(files.partial_len(&hash), (k - 1) * PIECE_LEN);

    // Out of order: ahead of the file, and behind it.
    assert!(claim.append_piece(&outline, k, piece(k)).is_err());
    assert!(claim.append_piece(&outline, k - 2, piece(k - 2)).is_err());
    assert_eq!(files.partial_len(&hash), (k - 1) * PIECE_LEN);
    assert_eq!(claim.resume_point().expect("resume"), k - 1);

    for i in (k - 1)..outline.piece_count() {
        claim.append_piece(&outline, i, piece(i)).expect("append");
    }
    assert_eq!(claim.resume_point().expect("resume"), 5);
    claim.finish(&outline).expect("finish");
    assert!(files.has(&hash));
    assert_eq!(read_all(&files, &hash), data);
    assert_eq!(
        files.outline(&hash).expect("outline"),
        Some(outline.clone())
    );
    assert_eq!(files.partial_len(&hash), 0);
    let hex = hash.to_hex();
    assert_eq!(
        files_under(files.root()),
        vec![
            PathBuf::from(&hex[..2]).join(&hex),
            PathBuf::from(&hex[..2]).join(format!("{hex}.outline")),
        ]
    );
    let mut claim = files.claim(&hash).expect("claim again");
    assert_eq!(claim.resume_point().expect("resume"), 0);
    let mut claim = files.claim(&BlobHash::of(b"unknown")).expect("claim");
    assert_eq!(claim.resume_point().expect("resume"), 0);
}
