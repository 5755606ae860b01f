//! The sans-IO state machine that fetches one blob from one peer: ask for the
//! outline, check it against the reference, then ask for pieces in windows
//! from the resume point and verify each one as it arrives.
//!
//! It owns the order of a transfer and the verdict on every input. It must not
//! do IO, keep time, retry, or choose peers: the shell writes the bytes it is
//! told to write, persists the outline for a later resume, applies timeouts
//! and makes sure no two fetches of one blob run at once. Once anything is
//! wrong the fetch is failed for good; a new one starts from what was verified.

use super::error::BlobError;
use super::hash::BlobHash;
use super::outline::{MAX_BLOB_SIZE, Outline, piece_count};
use super::wire::{BlobRefusal, BlobRequest, MAX_PIECES_PER_REQUEST};
use std::ops::Range;

/// Default number of pieces asked for per [`BlobRequest::Pieces`] (64 MiB).
pub const FETCH_WINDOW: u32 = 64;

/// What to do with a piece that verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieceVerdict {
    /// Write the piece at `offset`; more pieces follow.
    Write {
        /// Byte offset of the piece in the blob.
        offset: u64,
    },
    /// Write the piece at `offset`; the blob is then complete and every byte
    /// of it verified against the hash.
    Complete {
        /// Byte offset of the piece in the blob.
        offset: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The outline request is still to be sent.
    Start,
    /// The outline was asked for.
    AwaitOutline,
    /// The outline checked; pieces are being fetched.
    Pieces,
    /// Every piece is verified.
    Done,
    /// Something was wrong; nothing more is accepted.
    Failed,
}

/// One blob being fetched from one peer.
///
/// ```
/// use shoal_core::blob::{BlobRequest, Fetch, OutlineBuilder, PieceVerdict};
/// let mut b = OutlineBuilder::new();
/// b.update(b"tiny blob");
/// let outline = b.finish();
/// let mut f = Fetch::new(outline.hash, 9, 1 << 20, 0).unwrap();
/// assert!(matches!(f.next_request(), Some(BlobRequest::Outline { .. })));
/// f.on_outline(outline).unwrap();
/// assert!(matches!(f.next_request(), Some(BlobRequest::Pieces { from: 0, count: 1, .. })));
/// assert_eq!(f.on_piece(0, b"tiny blob").unwrap(), PieceVerdict::Complete { offset: 0 });
/// assert!(f.is_done());
/// ```
#[derive(Debug, Clone)]
pub struct Fetch {
    hash: BlobHash,
    size: u64,
    cap: u64,
    window: u32,
    phase: Phase,
    outline: Option<Outline>,
    /// Next piece expected; equals the number of verified pieces.
    next: u64,
    /// End (exclusive) of the pieces asked for so far.
    requested_until: u64,
    bytes_received: u64,
}

impl Fetch {
    /// Starts a fetch of the blob `hash` whose reference says `size` bytes,
    /// refusing more than `cap` bytes, with the first `verified` pieces
    /// already present and verified locally (clamped to the piece count).
    ///
    /// Fails with [`BlobError::TooLarge`] if the reference's size is already
    /// above the cap (or above [`MAX_BLOB_SIZE`]).
    pub fn new(hash: BlobHash, size: u64, cap: u64, verified: u64) -> Result<Self, BlobError> {
        let cap = cap.min(MAX_BLOB_SIZE);
        if size > cap {
            return Err(BlobError::TooLarge { size, cap });
        }
        let resume = verified.min(piece_count(size));
        Ok(Self {
            hash,
            size,
            cap,
            window: FETCH_WINDOW,
            phase: Phase::Start,
            outline: None,
            next: resume,
            requested_until: resume,
            bytes_received: 0,
        })
    }

    /// Uses windows of `window` pieces instead of [`FETCH_WINDOW`] (clamped to
    /// 1..=[`MAX_PIECES_PER_REQUEST`]).
    pub fn with_window(mut self, window: u32) -> Self {
        self.window = window.clamp(1, MAX_PIECES_PER_REQUEST);
        self
    }

    /// The blob being fetched.
    pub fn hash(&self) -> BlobHash {
        self.hash
    }

    /// The checked outline, once received: persist it to resume later.
    pub fn outline(&self) -> Option<&Outline> {
        self.outline.as_ref()
    }

    /// Pieces verified so far, those present before the fetch included.
    pub fn verified_pieces(&self) -> u64 {
        self.next
    }

    /// Piece bytes received from the peer in this fetch (including a piece
    /// that failed verification).
    pub fn bytes_received(&self) -> u64 {
        self.bytes_received
    }

    /// Whether every piece is verified.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Whether the fetch failed; it accepts nothing more.
    pub fn is_failed(&self) -> bool {
        self.phase == Phase::Failed
    }

    /// The next request to send, if one is due: the outline first, then one
    /// window of pieces at a time, the next window once the current one has
    /// fully arrived. `None` while waiting, and once done or failed.
    pub fn next_request(&mut self) -> Option<BlobRequest> {
        match self.phase {
            Phase::Start => {
                self.phase = Phase::AwaitOutline;
                Some(BlobRequest::Outline { hash: self.hash })
            }
            Phase::Pieces if self.next == self.requested_until => {
                let left = piece_count(self.size).saturating_sub(self.next);
                let count = u32::try_from(left).unwrap_or(u32::MAX).min(self.window);
                if count == 0 {
                    return None;
                }
                let from = self.next;
                self.requested_until = from + u64::from(count);
                Some(BlobRequest::Pieces {
                    hash: self.hash,
                    from,
                    count,
                })
            }
            _ => None,
        }
    }

    fn fail(&mut self, error: BlobError) -> BlobError {
        self.phase = Phase::Failed;
        error
    }

    /// Refuses an input in the current phase; a done fetch stays done.
    fn unexpected(&mut self, what: &'static str) -> BlobError {
        match self.phase {
            Phase::Done => BlobError::Unexpected(what),
            Phase::Failed => BlobError::Unexpected("the fetch already failed"),
            _ => self.fail(BlobError::Unexpected(what)),
        }
    }

    /// Takes the peer's outline: it must be for the blob asked for, within
    /// the cap, of the reference's size, and pass [`Outline::check`].
    pub fn on_outline(&mut self, outline: Outline) -> Result<(), BlobError> {
        if self.phase != Phase::AwaitOutline {
            return Err(self.unexpected("an outline that was not asked for"));
        }
        if outline.hash != self.hash {
            return Err(self.fail(BlobError::WrongOutline {
                reason: "hash differs from the one asked for",
            }));
        }
        if outline.size > self.cap {
            return Err(self.fail(BlobError::TooLarge {
                size: outline.size,
                cap: self.cap,
            }));
        }
        if outline.size != self.size {
            return Err(self.fail(BlobError::WrongOutline {
                reason: "size differs from the reference's",
            }));
        }
        if let Err(e) = outline.check() {
            return Err(self.fail(e));
        }
        self.phase = if self.next >= outline.piece_count() {
            Phase::Done
        } else {
            Phase::Pieces
        };
        self.outline = Some(outline);
        Ok(())
    }

    /// Takes a piece from the peer: it must be the next one expected, within
    /// a window asked for, and verify against the outline.
    pub fn on_piece(&mut self, index: u64, bytes: &[u8]) -> Result<PieceVerdict, BlobError> {
        if self.phase != Phase::Pieces {
            return Err(self.unexpected("a piece before the outline or after the end"));
        }
        if index != self.next {
            return Err(self.fail(BlobError::OutOfOrder {
                expected: self.next,
                got: index,
            }));
        }
        if index >= self.requested_until {
            return Err(self.fail(BlobError::Unexpected("a piece that was not asked for")));
        }
        self.bytes_received = self.bytes_received.saturating_add(bytes.len() as u64);
        let Some(outline) = &self.outline else {
            return Err(self.fail(BlobError::Unexpected("a piece before the outline")));
        };
        let checked = outline.verify_piece(index, bytes);
        let offset = outline.piece_range(index).start;
        let last = index + 1 >= outline.piece_count();
        if let Err(e) = checked {
            return Err(self.fail(e));
        }
        self.next = index + 1;
        if last {
            self.phase = Phase::Done;
            Ok(PieceVerdict::Complete { offset })
        } else {
            Ok(PieceVerdict::Write { offset })
        }
    }

    /// Takes the peer's refusal: the fetch fails with [`BlobError::Refused`].
    pub fn on_refused(&mut self, refusal: BlobRefusal) -> BlobError {
        if self.phase == Phase::Done {
            return BlobError::Refused(refusal);
        }
        self.fail(BlobError::Refused(refusal))
    }
}

/// How many leading pieces of a partial local copy are already good:
/// `piece_ok(index, byte_range)` is asked for piece 0, 1, … until it says no
/// (typically: read that range and [`Outline::verify_piece`] it). Pass the
/// result as `verified` to [`Fetch::new`].
pub fn resume_point(outline: &Outline, mut piece_ok: impl FnMut(u64, Range<u64>) -> bool) -> u64 {
    (0..outline.piece_count())
        .find(|&i| !piece_ok(i, outline.piece_range(i)))
        .unwrap_or(outline.piece_count())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blob::outline::tests::content;
    use crate::blob::{OutlineBuilder, PIECE_LEN};

    const MIB: usize = PIECE_LEN as usize;

    fn blob(len: usize) -> (Vec<u8>, Outline) {
        let data = content(len, len as u64);
        let mut b = OutlineBuilder::new();
        b.update(&data);
        (data, b.finish())
    }

    fn piece<'a>(data: &'a [u8], o: &Outline, i: u64) -> &'a [u8] {
        let r = o.piece_range(i);
        &data[r.start as usize..r.end as usize]
    }

    fn started(o: &Outline, resume: u64) -> Fetch {
        let mut f = Fetch::new(o.hash, o.size, 1 << 30, resume).unwrap();
        assert_eq!(
            f.next_request(),
            Some(BlobRequest::Outline { hash: o.hash })
        );
        assert_eq!(f.next_request(), None, "waits for the outline");
        f.on_outline(o.clone()).unwrap();
        f
    }

    #[test]
    fn happy_path_in_windows() {
        let (data, o) = blob(5 * MIB + 7);
        let mut f = started(&o, 0).with_window(4);
        let mut out = vec![0u8; data.len()];
        let mut asked = vec![];
        while !f.is_done() {
            let Some(BlobRequest::Pieces { from, count, hash }) = f.next_request() else {
                panic!("expected a pieces request");
            };
            assert_eq!(hash, o.hash);
            assert_eq!(f.next_request(), None, "one window at a time");
            asked.push((from, count));
            for i in from..from + u64::from(count) {
                let p = piece(&data, &o, i);
                let offset = match f.on_piece(i, p).unwrap() {
                    PieceVerdict::Write { offset } => offset,
                    PieceVerdict::Complete { offset } => {
                        assert_eq!(i, 5);
                        offset
                    }
                };
                out[offset as usize..offset as usize + p.len()].copy_from_slice(p);
            }
        }
        assert_eq!(asked, vec![(0, 4), (4, 2)]);
        assert_eq!(out, data);
        assert_eq!(f.verified_pieces(), 6);
        assert_eq!(f.bytes_received(), data.len() as u64);
        assert_eq!(f.next_request(), None);
        assert_eq!(f.outline(), Some(&o));
        assert!(f.on_piece(6, &[]).is_err());
        assert!(f.is_done(), "an extra piece does not undo a finished fetch");
    }

    #[test]
    fn empty_and_one_piece_blobs() {
        for len in [0, 1, MIB] {
            let (data, o) = blob(len);
            let mut f = started(&o, 0);
            assert_eq!(
                f.next_request(),
                Some(BlobRequest::Pieces {
                    hash: o.hash,
                    from: 0,
                    count: 1
                })
            );
            assert_eq!(
                f.on_piece(0, &data).unwrap(),
                PieceVerdict::Complete { offset: 0 }
            );
            assert!(f.is_done());
        }
    }

    #[test]
    fn resume_asks_from_the_resume_point() {
        let (data, o) = blob(3 * MIB + 5);
        let have = 2 * MIB + 100;
        let k = resume_point(&o, |i, r| {
            r.end as usize <= have
                && o.verify_piece(i, &data[r.start as usize..r.end as usize])
                    .is_ok()
        });
        assert_eq!(k, 2);
        let mut f = started(&o, k);
        assert_eq!(f.verified_pieces(), 2);
        assert_eq!(
            f.next_request(),
            Some(BlobRequest::Pieces {
                hash: o.hash,
                from: 2,
                count: 2
            })
        );
        assert!(f.on_piece(0, piece(&data, &o, 0)).is_err(), "before resume");
        assert!(f.is_failed());

        let mut f = started(&o, 2);
        f.next_request();
        assert_eq!(
            f.on_piece(2, piece(&data, &o, 2)).unwrap(),
            PieceVerdict::Write {
                offset: 2 * PIECE_LEN
            }
        );
        assert_eq!(
            f.on_piece(3, piece(&data, &o, 3)).unwrap(),
            PieceVerdict::Complete {
                offset: 3 * PIECE_LEN
            }
        );
        assert_eq!(f.bytes_received(), (MIB + 5) as u64);

        // Everything already here: done once the outline checks.
        assert_eq!(resume_point(&o, |_, _| true), 4);
        let f = started(&o, 99);
        assert!(f.is_done());
        assert_eq!(f.verified_pieces(), 4);
    }

    #[test]
    fn wrong_index_and_unrequested_pieces_are_refused() {
        let (data, o) = blob(2 * MIB + 1);
        let mut f = started(&o, 0);
        assert!(f.on_piece(0, piece(&data, &o, 0)).is_err(), "not asked yet");
        assert!(f.is_failed());

        let mut f = started(&o, 0);
        f.next_request();
        assert_eq!(
            f.on_piece(1, piece(&data, &o, 1)),
            Err(BlobError::OutOfOrder {
                expected: 0,
                got: 1
            })
        );
        assert!(f.is_failed());
        assert!(f.on_piece(0, piece(&data, &o, 0)).is_err(), "stays failed");
        assert_eq!(f.next_request(), None);
    }

    #[test]
    fn a_bad_piece_fails_the_fetch() {
        let (data, o) = blob(2 * MIB + 1);
        let mut f = started(&o, 0);
        f.next_request();
        f.on_piece(0, piece(&data, &o, 0)).unwrap();
        let mut bad = piece(&data, &o, 1).to_vec();
        bad[12345] ^= 1;
        assert_eq!(f.on_piece(1, &bad), Err(BlobError::BadPiece { index: 1 }));
        assert!(f.is_failed());
        assert!(f.on_piece(1, piece(&data, &o, 1)).is_err());
        assert_eq!(f.verified_pieces(), 1);
        assert_eq!(f.next_request(), None);
    }

    #[test]
    fn bad_outlines_are_refused() {
        let (_, o) = blob(MIB + 1);
        let (_, other) = blob(MIB + 2);
        let fresh = |cap| {
            let mut f = Fetch::new(o.hash, o.size, cap, 0).unwrap();
            f.next_request();
            f
        };
        let mut f = fresh(1 << 30);
        assert!(matches!(
            f.on_outline(other.clone()),
            Err(BlobError::WrongOutline { .. })
        ));
        assert!(f.is_failed());

        let mut wrong_size = o.clone();
        wrong_size.size += 1;
        assert!(matches!(
            fresh(1 << 30).on_outline(wrong_size),
            Err(BlobError::WrongOutline { .. })
        ));

        let mut huge = o.clone();
        huge.size = 5 << 30;
        assert_eq!(
            fresh(1 << 30).on_outline(huge),
            Err(BlobError::TooLarge {
                size: 5 << 30,
                cap: 1 << 30
            })
        );

        let mut forged = o.clone();
        forged.cvs.swap(0, 1);
        assert!(matches!(
            fresh(1 << 30).on_outline(forged),
            Err(BlobError::OutlineMismatch { .. })
        ));

        assert_eq!(
            Fetch::new(o.hash, o.size, 100, 0).unwrap_err(),
            BlobError::TooLarge {
                size: o.size,
                cap: 100
            }
        );

        let mut f = Fetch::new(o.hash, o.size, 1 << 30, 0).unwrap();
        assert!(f.on_outline(o.clone()).is_err(), "not asked for yet");
        let mut f = fresh(1 << 30);
        f.on_outline(o.clone()).unwrap();
        assert!(f.on_outline(o.clone()).is_err(), "asked once");
    }

    #[test]
    fn refusals_fail_the_fetch() {
        let (_, o) = blob(10);
        let mut f = Fetch::new(o.hash, o.size, 100, 0).unwrap();
        f.next_request();
        assert_eq!(
            f.on_refused(BlobRefusal::NotFound),
            BlobError::Refused(BlobRefusal::NotFound)
        );
        assert!(f.is_failed());
        assert_eq!(f.next_request(), None);
    }
}
