//! The outline: one BLAKE3 chaining value (CV) per 1 MiB piece, checked
//! against the blob hash by merging up the BLAKE3 tree, so each piece can be
//! verified on its own as it arrives. Also the streaming [`OutlineBuilder`]
//! that computes the hash and the outline in one pass.
//!
//! An aligned [`PIECE_LEN`] piece is a complete subtree of the BLAKE3 tree
//! (1024 chunks), so its CV is `Hasher::set_input_offset(start)` +
//! `finalize_non_root()`. A blob of at most one piece has no non-root CV: its
//! outline carries no CVs and its single piece is checked by hashing it whole.
//!
//! The empty blob has exactly one piece, the empty one (`0..0`), so every blob
//! has at least one piece and a transfer always ends with a piece.
//!
//! This file owns the tree arithmetic and must never panic on an outline or a
//! piece from a peer: every `blake3::hazmat` precondition (non-zero offsets
//! only with `finalize_non_root`, at most one piece per subtree hasher, no
//! empty subtrees) is established before the call.

use super::error::BlobError;
use super::hash::BlobHash;
use blake3::hazmat::{
    ChainingValue, HasherExt, Mode, left_subtree_len, merge_subtrees_non_root, merge_subtrees_root,
};
use serde::{Deserialize, Serialize};
use std::ops::Range;

/// Length of a transfer piece: 1 MiB, i.e. 1024 BLAKE3 chunks.
pub const PIECE_LEN: u64 = 1 << 20;
/// Largest blob the protocol handles at all: 64 GiB. Local caps are smaller.
pub const MAX_BLOB_SIZE: u64 = 64 << 30;
/// Most CVs an outline can carry (one per piece of a [`MAX_BLOB_SIZE`] blob),
/// so an outline is at most 2 MiB on the wire.
pub const MAX_OUTLINE_CVS: usize = (MAX_BLOB_SIZE / PIECE_LEN) as usize;

/// Number of pieces of a blob of `size` bytes: `ceil(size / PIECE_LEN)`, but
/// at least 1 (the empty blob has one empty piece).
pub fn piece_count(size: u64) -> u64 {
    size.div_ceil(PIECE_LEN).max(1)
}

/// The verification outline of a blob.
///
/// Fields are public because this is a wire type; nothing built from them is
/// trusted until [`Outline::check`] passes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outline {
    /// The blob's hash.
    pub hash: BlobHash,
    /// The blob's size in bytes.
    pub size: u64,
    /// One CV per piece; empty when the blob fits in one piece.
    pub cvs: Vec<[u8; 32]>,
}

impl Outline {
    /// Number of pieces of this blob.
    pub fn piece_count(&self) -> u64 {
        piece_count(self.size)
    }

    /// Checks that the size is within [`MAX_BLOB_SIZE`], that there is one CV
    /// per piece (none for a one-piece blob), and that merging the CVs up the
    /// BLAKE3 tree gives `hash`.
    ///
    /// The size is bound to the hash through the tree shape and the last
    /// piece: a size that differs only inside the last piece still checks,
    /// but then the last piece can never verify (its CV commits to its exact
    /// length), so no wrong byte is ever accepted. Compare the size with the
    /// reference's as well.
    pub fn check(&self) -> Result<(), BlobError> {
        if self.size > MAX_BLOB_SIZE {
            return Err(BlobError::TooLarge {
                size: self.size,
                cap: MAX_BLOB_SIZE,
            });
        }
        let pieces = self.piece_count();
        let want = if pieces == 1 { 0 } else { pieces };
        if self.cvs.len() as u64 != want {
            return Err(BlobError::OutlineMismatch {
                reason: "wrong number of piece CVs for the size",
            });
        }
        if pieces == 1 {
            // Nothing to merge: the one piece is checked against the hash itself.
            return Ok(());
        }
        match root_of(&self.cvs, self.size) {
            Some(root) if BlobHash::from(root) == self.hash => Ok(()),
            _ => Err(BlobError::OutlineMismatch {
                reason: "piece CVs do not merge to the hash",
            }),
        }
    }

    /// Byte range of piece `index`. An index past the last piece gives the
    /// empty range at the end of the blob.
    pub fn piece_range(&self, index: u64) -> Range<u64> {
        let start = index.saturating_mul(PIECE_LEN).min(self.size);
        start..start.saturating_add(PIECE_LEN).min(self.size)
    }

    /// Verifies one piece: it must have exactly the piece's length and its CV
    /// (or, for a one-piece blob, its whole hash) must match. Meaningful only
    /// on an outline that passed [`Outline::check`]; never panics either way.
    pub fn verify_piece(&self, index: u64, bytes: &[u8]) -> Result<(), BlobError> {
        let bad = BlobError::BadPiece { index };
        if index >= self.piece_count() {
            return Err(bad);
        }
        let range = self.piece_range(index);
        if bytes.len() as u64 != range.end - range.start {
            return Err(bad);
        }
        if self.piece_count() == 1 {
            return if BlobHash::of(bytes) == self.hash {
                Ok(())
            } else {
                Err(bad)
            };
        }
        // A multi-piece blob has no empty piece; the length check above
        // already refused empty input, which `finalize_non_root` would panic on.
        let want = usize::try_from(index)
            .ok()
            .and_then(|i| self.cvs.get(i))
            .ok_or(BlobError::BadPiece { index })?;
        let got = piece_cv(range.start, bytes);
        // Constant-time comparison, like every hash comparison here.
        if blake3::Hash::from(got) == blake3::Hash::from(*want) {
            Ok(())
        } else {
            Err(bad)
        }
    }
}

/// CV of a non-empty piece of at most [`PIECE_LEN`] bytes starting at the
/// piece-aligned `start`.
fn piece_cv(start: u64, bytes: &[u8]) -> ChainingValue {
    let mut hasher = blake3::Hasher::new();
    hasher.set_input_offset(start);
    hasher.update(bytes);
    hasher.finalize_non_root()
}

/// Root hash of a blob of `size` bytes from its piece CVs (at least two).
/// `None` if the CV count does not fit the size.
fn root_of(cvs: &[ChainingValue], size: u64) -> Option<blake3::Hash> {
    let (left, right, left_len) = split(cvs, size)?;
    let l = subtree_cv(left, left_len)?;
    let r = subtree_cv(right, size - left_len)?;
    Some(merge_subtrees_root(&l, &r, Mode::Hash))
}

/// Non-root CV of a subtree of `len` bytes made of the given piece CVs.
fn subtree_cv(cvs: &[ChainingValue], len: u64) -> Option<ChainingValue> {
    if let [only] = cvs {
        return Some(*only);
    }
    let (left, right, left_len) = split(cvs, len)?;
    let l = subtree_cv(left, left_len)?;
    let r = subtree_cv(right, len - left_len)?;
    Some(merge_subtrees_non_root(&l, &r, Mode::Hash))
}

/// Splits a subtree of `len` bytes (more than one piece) into its BLAKE3 left
/// and right children: the left one is the largest power of two strictly
/// below `len`, a whole number of pieces since `len > PIECE_LEN`.
fn split(cvs: &[ChainingValue], len: u64) -> Option<(&[ChainingValue], &[ChainingValue], u64)> {
    if len <= PIECE_LEN || cvs.len() < 2 {
        return None;
    }
    let left_len = left_subtree_len(len);
    let at = usize::try_from(left_len / PIECE_LEN).ok()?;
    let (left, right) = cvs.split_at_checked(at)?;
    if right.is_empty() {
        return None;
    }
    Some((left, right, left_len))
}

/// Computes a blob's hash and outline in one streaming pass.
///
/// Feed the content with any slicing through [`OutlineBuilder::update`]; no
/// piece is buffered (each piece has its own incremental hasher) and the input
/// is hashed exactly once. The result always equals `blake3::hash` of the
/// whole input.
///
/// ```
/// use shoal_core::blob::OutlineBuilder;
/// let mut b = OutlineBuilder::new();
/// b.update(b"hello ");
/// b.update(b"world");
/// let outline = b.finish();
/// assert_eq!(outline.hash.as_bytes(), blake3::hash(b"hello world").as_bytes());
/// assert!(outline.check().is_ok());
/// ```
#[derive(Debug, Clone)]
pub struct OutlineBuilder {
    /// Hasher of the current piece (offset set for every piece but the first).
    piece: blake3::Hasher,
    /// Bytes fed into the current piece.
    in_piece: u64,
    /// Start offset of the current piece.
    piece_start: u64,
    /// CVs of the finished pieces before the current one.
    cvs: Vec<ChainingValue>,
}

impl Default for OutlineBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl OutlineBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self {
            piece: blake3::Hasher::new(),
            in_piece: 0,
            piece_start: 0,
            cvs: Vec::new(),
        }
    }

    /// Bytes fed so far.
    pub fn len(&self) -> u64 {
        self.piece_start + self.in_piece
    }

    /// Whether nothing was fed yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Feeds the next bytes of the content.
    pub fn update(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.in_piece == PIECE_LEN {
                // The current piece is full and more input follows, so it is
                // not the last one (and not the root): close it as a subtree.
                self.cvs.push(self.piece.finalize_non_root());
                self.piece_start += PIECE_LEN;
                self.in_piece = 0;
                self.piece = blake3::Hasher::new();
                self.piece.set_input_offset(self.piece_start);
            }
            let room = usize::try_from(PIECE_LEN - self.in_piece).unwrap_or(usize::MAX);
            let (now, rest) = bytes.split_at(room.min(bytes.len()));
            self.piece.update(now);
            self.in_piece += now.len() as u64;
            bytes = rest;
        }
    }

    /// The outline (with its hash) of everything fed.
    pub fn finish(self) -> Outline {
        let size = self.len();
        if self.cvs.is_empty() {
            // At most one piece: the first piece's hasher (offset 0) is the
            // whole input, so its root finalization is the blob hash.
            return Outline {
                hash: self.piece.finalize().into(),
                size,
                cvs: Vec::new(),
            };
        }
        let mut cvs = self.cvs;
        // A piece is only started when input arrives, so the last one is
        // non-empty and can be finalized as a subtree.
        cvs.push(self.piece.finalize_non_root());
        let hash = root_of(&cvs, size)
            .map(BlobHash::from)
            // Unreachable: the CV count matches the size by construction.
            .unwrap_or(BlobHash::from_bytes([0; 32]));
        Outline { hash, size, cvs }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Deterministic pseudo-random bytes (xorshift).
    pub(crate) fn content(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    const MIB: usize = 1 << 20;

    fn sizes() -> Vec<usize> {
        vec![
            0,
            1,
            1023,
            1024,
            MIB - 1,
            MIB,
            MIB + 1,
            3 * MIB + 5,
            5 * MIB,
            9 * MIB + 17,
        ]
    }

    #[test]
    fn piece_counts() {
        assert_eq!(piece_count(0), 1);
        assert_eq!(piece_count(1), 1);
        assert_eq!(piece_count(PIECE_LEN), 1);
        assert_eq!(piece_count(PIECE_LEN + 1), 2);
        assert_eq!(piece_count(MAX_BLOB_SIZE), MAX_OUTLINE_CVS as u64);
        assert_eq!(MAX_OUTLINE_CVS, 65_536);
    }

    #[test]
    fn outlines_match_blake3_and_verify_every_piece() {
        for (seed, size) in sizes().into_iter().enumerate() {
            let data = content(size, seed as u64);
            let mut b = OutlineBuilder::new();
            b.update(&data);
            let o = b.finish();
            assert_eq!(o.hash, BlobHash::of(&data), "size {size}");
            assert_eq!(o.size, size as u64);
            let pieces = o.piece_count();
            assert_eq!(o.cvs.len() as u64, if pieces == 1 { 0 } else { pieces });
            o.check().unwrap();
            let mut covered = 0;
            for i in 0..pieces {
                let r = o.piece_range(i);
                assert_eq!(r.start, covered);
                covered = r.end;
                let piece = &data[r.start as usize..r.end as usize];
                o.verify_piece(i, piece).unwrap();
                // A flipped byte fails exactly that piece.
                if !piece.is_empty() {
                    for at in [0, piece.len() / 2, piece.len() - 1] {
                        let mut bad = piece.to_vec();
                        bad[at] ^= 0x40;
                        assert_eq!(
                            o.verify_piece(i, &bad),
                            Err(BlobError::BadPiece { index: i })
                        );
                    }
                }
                // Wrong length or wrong index fails.
                let mut longer = piece.to_vec();
                longer.push(0);
                assert!(o.verify_piece(i, &longer).is_err());
                if !piece.is_empty() {
                    assert!(o.verify_piece(i, &piece[1..]).is_err());
                }
                if pieces > 1 {
                    let other = (i + 1) % pieces;
                    assert!(
                        o.verify_piece(other, piece).is_err(),
                        "piece {i} as {other}"
                    );
                }
            }
            assert_eq!(covered, size as u64);
            assert!(o.verify_piece(pieces, &[]).is_err());
        }
    }

    #[test]
    fn tampered_outlines_fail_check() {
        let data = content(5 * MIB + 3, 42);
        let mut b = OutlineBuilder::new();
        b.update(&data);
        let o = b.finish();
        o.check().unwrap();

        let mut swapped = o.clone();
        swapped.cvs.swap(1, 3);
        assert!(matches!(
            swapped.check(),
            Err(BlobError::OutlineMismatch { .. })
        ));

        let mut flipped = o.clone();
        flipped.cvs[5][0] ^= 1;
        assert!(flipped.check().is_err());

        let mut truncated = o.clone();
        truncated.cvs.pop();
        assert!(matches!(
            truncated.check(),
            Err(BlobError::OutlineMismatch { .. })
        ));

        let mut extended = o.clone();
        extended.cvs.push([0; 32]);
        assert!(extended.check().is_err());

        let mut resized = o.clone();
        resized.size -= PIECE_LEN;
        assert!(resized.check().is_err(), "fewer pieces than CVs");

        // A size change inside the last piece keeps the tree shape, so the
        // outline still checks, but the last piece can then never verify:
        // its CV commits to its exact length.
        let last = o.piece_count() - 1;
        let tail = &data[o.piece_range(last).start as usize..];
        for delta in [-1i64, 1] {
            let mut resized = o.clone();
            resized.size = (resized.size as i64 + delta) as u64;
            resized.check().unwrap();
            assert!(resized.verify_piece(last, tail).is_err());
            let mut other_len = tail.to_vec();
            other_len.resize((tail.len() as i64 + delta) as usize, 0);
            assert!(resized.verify_piece(last, &other_len).is_err());
            resized.verify_piece(0, &data[..MIB]).unwrap();
        }

        let mut wrong_hash = o.clone();
        wrong_hash.hash = BlobHash::of(b"other");
        assert!(wrong_hash.check().is_err());

        let mut too_big = o.clone();
        too_big.size = MAX_BLOB_SIZE + 1;
        assert!(matches!(too_big.check(), Err(BlobError::TooLarge { .. })));

        // A one-piece blob must carry no CVs.
        let small = Outline {
            hash: BlobHash::of(b"x"),
            size: 1,
            cvs: vec![[0; 32]],
        };
        assert!(small.check().is_err());
        let empty = Outline {
            hash: BlobHash::of(b""),
            size: 0,
            cvs: vec![],
        };
        empty.check().unwrap();
        empty.verify_piece(0, &[]).unwrap();
        assert!(empty.verify_piece(0, b"x").is_err());
    }

    #[test]
    fn garbage_outlines_never_panic() {
        for size in [0, 1, PIECE_LEN, PIECE_LEN + 1, 7 * PIECE_LEN, u64::MAX] {
            for n in [0usize, 1, 2, 3, 7, 8] {
                let o = Outline {
                    hash: BlobHash::of(b"x"),
                    size,
                    cvs: vec![[7; 32]; n],
                };
                // Only a one-piece outline without CVs checks (its piece
                // is then checked against the hash itself).
                assert_eq!(o.check().is_ok(), n == 0 && size <= PIECE_LEN, "{size} {n}");
                for i in [0, 1, 6, 7, u64::MAX] {
                    let _ = o.verify_piece(i, &[1, 2, 3]);
                    let _ = o.verify_piece(i, &[]);
                    let _ = o.piece_range(i);
                }
            }
        }
    }
}
