//! Why a peer will not serve a blob request: carried in the transfer's
//! refusal message (`wire.rs`) and in the blob core's error (`error.rs`),
//! which name it without naming each other.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a peer will not serve a blob request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BlobRefusal {
    /// The peer does not have the blob (or not all of it).
    NotFound,
    /// The blob is only referenced from records not shared with the requester.
    NotShared,
    /// The blob is larger than the peer is willing to serve.
    TooLarge,
    /// The peer is serving too many transfers; try again later.
    Busy,
    /// The request is malformed or out of range.
    BadRequest,
}

impl fmt::Display for BlobRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BlobRefusal::NotFound => "peer does not have the blob",
            BlobRefusal::NotShared => "not shared with you",
            BlobRefusal::TooLarge => "blob is larger than the peer will serve",
            BlobRefusal::Busy => "peer is busy, try again later",
            BlobRefusal::BadRequest => "peer found the request malformed",
        })
    }
}
