//! The one error type of the blob core: every way a hash, a reference, an
//! outline, a piece or a transfer message can be refused.
//!
//! It names what is wrong and carries no IO errors; the store and the network
//! layer wrap it in their own error types.

use super::refusal::BlobRefusal;
use crate::sync::codec::FrameError;
use thiserror::Error;

/// Why a blob hash, reference, outline, piece or transfer step was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BlobError {
    /// Text that is not a blob hash (64 lowercase hex digits).
    #[error("invalid blob hash: {0}")]
    BadHash(String),
    /// A `{"$blob": …}` object that is malformed; the text says which part.
    #[error("malformed blob reference: {0}")]
    BadRef(String),
    /// A record references more distinct blobs than allowed.
    #[error("a record references more than {limit} blobs")]
    TooManyRefs {
        /// The limit ([`super::MAX_REFS_PER_RECORD`]).
        limit: usize,
    },
    /// A blob larger than the cap in force.
    #[error("blob of {size} bytes exceeds the cap of {cap} bytes")]
    TooLarge {
        /// The blob's size.
        size: u64,
        /// The cap.
        cap: u64,
    },
    /// An outline whose chaining values do not add up to its hash.
    #[error("outline does not match the blob hash: {reason}")]
    OutlineMismatch {
        /// What did not match.
        reason: &'static str,
    },
    /// An outline for another blob than the one asked for.
    #[error("outline is for the wrong blob: {reason}")]
    WrongOutline {
        /// What differed.
        reason: &'static str,
    },
    /// A piece whose length or bytes do not match the outline.
    #[error("piece {index} failed verification")]
    BadPiece {
        /// The piece's index.
        index: u64,
    },
    /// A piece other than the next one expected.
    #[error("expected piece {expected}, got piece {got}")]
    OutOfOrder {
        /// The index the fetch was waiting for.
        expected: u64,
        /// The index that arrived.
        got: u64,
    },
    /// A message that makes no sense at this point of the transfer.
    #[error("unexpected message: {0}")]
    Unexpected(&'static str),
    /// The peer refused the request.
    #[error("peer refused: {0}")]
    Refused(BlobRefusal),
    /// A frame that is oversized, undecodable or fails its MAC.
    #[error(transparent)]
    Frame(#[from] FrameError),
}
