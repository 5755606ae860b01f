//! Blobs, sans IO: content hashes, the typed references records hold, the
//! per-piece verification outline, the blob-transfer wire messages and the
//! state machine that fetches one blob from one peer.
//!
//! A blob is identified by the standard BLAKE3 hash of its whole content (so
//! `b3sum` agrees). Transfers move it in pieces of [`PIECE_LEN`] (1 MiB); each
//! aligned piece is a complete subtree of the BLAKE3 tree, so its chaining value
//! can be checked the moment it arrives against an [`Outline`] (one chaining
//! value per piece), which is itself checked against the hash before any piece
//! is accepted. Every byte is therefore verified against the hash, piece by
//! piece, and an interrupted transfer resumes at a piece boundary.
//!
//! This module owns those rules only. It never touches a file, a socket, a
//! clock or a thread: the store keeps the bytes, the network layer moves the
//! frames, and the scheduler (which peer, when, never two peers for one blob)
//! lives in the shell.

mod error;
mod evict;
mod fetch;
mod hash;
mod outline;
mod refusal;
mod wanted;
mod wire;

pub use error::BlobError;
pub use evict::{OnDemandBlob, pick_evictions};
pub use fetch::{FETCH_WINDOW, Fetch, PieceVerdict, resume_point};
pub use hash::{BlobHash, BlobRef, MAX_MIME_LEN, MAX_REFS_PER_RECORD, refs_in};
pub use outline::{
    MAX_BLOB_SIZE, MAX_OUTLINE_CVS, Outline, OutlineBuilder, PIECE_LEN, piece_count,
};
pub use wanted::MissingBlob;
pub use wire::{
    BlobKey, BlobRefusal, BlobRequest, BlobResponse, Incoming, MAX_BLOB_FRAME,
    MAX_PIECES_PER_REQUEST, MAX_REQUEST_FRAME, PIECE_HEADER_LEN, decode_request, decode_response,
    encode_piece, encode_piece_header, encode_request, encode_response, request_frame_len,
    response_frame_len, seal_request_body, seal_response_body, serve_range,
};
