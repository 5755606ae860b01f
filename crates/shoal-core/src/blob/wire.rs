//! The blob-transfer protocol, sans IO: requests, responses, refusals, their
//! framing and MACs. This file only turns messages into bytes and back; it
//! never reads a socket or a file, and it does not decide what to serve.
//!
//! # Framing
//!
//! A frame is a 4-byte big-endian length followed by a payload of that many
//! bytes, as in [`crate::sync::codec`]; the length is checked against a cap
//! *before* the payload is read ([`request_frame_len`], [`response_frame_len`]).
//! Two payload kinds exist:
//!
//! - **sealed**: `0x01 ‖ mac(32) ‖ body`, where `body` is the postcard encoding
//!   of a [`BlobRequest`] or [`BlobResponse`] (outline or refusal), with no
//!   trailing bytes;
//! - **piece**: `0x02 ‖ index (u64 big-endian) ‖ raw piece bytes`.
//!
//! A piece frame is a fixed [`PIECE_HEADER_LEN`]-byte header followed by the
//! bytes exactly as stored, so the serving shell writes
//! [`encode_piece_header`] and then the piece straight from its file or
//! buffer, with no copy and no serialization; the receiving side gets the
//! bytes as a borrowed slice of the payload ([`Incoming::Piece`]).
//!
//! # Authentication
//!
//! Sealed frames carry keyed BLAKE3 over the direction's frame counter and the
//! exact body bytes, under a [`BlobKey`] derived from the group key and bound
//! to both peer ids (as the transport authenticated them) and to the direction
//! (requests and responses use different keys, so neither can be reflected).
//! The counter is the number of *sealed* frames already sent in that direction
//! on this stream, starting at 0; piece frames do not count. It refuses
//! reordered, replayed or dropped control frames within a stream. The key has
//! no per-connection nonce: replay across connections is left to the
//! transport's own encryption and peer authentication.
//!
//! Piece frames are **not** MACed: a piece is accepted only if it verifies
//! against the outline, and the outline only if it merges to the blob hash the
//! record named, so a MAC would add nothing to integrity and would cost a pass
//! over every byte. Whether a peer may receive a blob at all is decided from
//! the (sealed) request before any piece is sent.
//!
//! Decoding never panics: garbage, truncation, unknown tags, bad MACs and
//! trailing bytes are all errors.

use super::error::BlobError;
use super::hash::BlobHash;
use super::outline::{MAX_OUTLINE_CVS, Outline, PIECE_LEN, piece_count};
pub use super::refusal::BlobRefusal;
use crate::sync::auth::GroupKey;
use crate::sync::codec::{FrameError, LEN_PREFIX, payload_len};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::Range;

/// Largest response payload: a full outline of a maximal blob (2 MiB of CVs)
/// plus room for its envelope. Also far above a piece frame.
pub const MAX_BLOB_FRAME: usize = MAX_OUTLINE_CVS * 32 + 1024;
/// Largest request payload (a sealed request is at most 81 bytes).
pub const MAX_REQUEST_FRAME: usize = 128;
/// Bytes before the piece in a piece frame: length prefix, tag, index.
pub const PIECE_HEADER_LEN: usize = LEN_PREFIX + 1 + 8;
/// Most pieces one [`BlobRequest::Pieces`] may ask for.
pub const MAX_PIECES_PER_REQUEST: u32 = 1024;

const SEALED: u8 = 1;
const PIECE: u8 = 2;
const MAC_LEN: usize = 32;

/// What a requester asks of a peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BlobRequest {
    /// "Do you have this blob? Send its outline."
    Outline {
        /// The blob.
        hash: BlobHash,
    },
    /// "Stream `count` pieces starting at piece `from`", in index order.
    Pieces {
        /// The blob.
        hash: BlobHash,
        /// First piece index.
        from: u64,
        /// Number of pieces, 1 to [`MAX_PIECES_PER_REQUEST`].
        count: u32,
    },
}

/// A control response (sealed). Pieces travel in their own frames, see
/// [`encode_piece_header`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BlobResponse {
    /// The blob's outline, answering [`BlobRequest::Outline`].
    Outline(Outline),
    /// The peer will not serve the request.
    Refused(BlobRefusal),
}

/// A decoded response-direction frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming<'a> {
    /// A sealed control response; the sealed-frame counter advances by one.
    Response(BlobResponse),
    /// A piece, borrowed from the payload; the counter does not advance.
    Piece {
        /// The piece index.
        index: u64,
        /// The piece bytes, not yet verified.
        bytes: &'a [u8],
    },
}

/// The MAC keys of one requester–responder pair of peers, one per direction.
#[derive(Clone, PartialEq, Eq)]
pub struct BlobKey {
    requests: [u8; 32],
    responses: [u8; 32],
}

impl fmt::Debug for BlobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BlobKey(..)")
    }
}

impl BlobKey {
    /// Derives the keys from the group key, bound to the requester's and the
    /// responder's peer id bytes (in that order: the roles matter).
    pub fn derive(group: &GroupKey, requester: &[u8], responder: &[u8]) -> Self {
        let context = "shoal blob frame key v1";
        Self {
            requests: group.mac(context, &[b"requests", requester, responder]),
            responses: group.mac(context, &[b"responses", requester, responder]),
        }
    }
}

impl GroupKey {
    /// The blob-transfer MAC keys between `requester` and `responder` (peer id
    /// bytes); same as [`BlobKey::derive`].
    pub fn blob_key(&self, requester: &[u8], responder: &[u8]) -> BlobKey {
        BlobKey::derive(self, requester, responder)
    }
}

fn mac(key: &[u8; 32], seq: u64, body: &[u8]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_keyed(key);
    hasher.update(&seq.to_le_bytes());
    hasher.update(body);
    *hasher.finalize().as_bytes()
}

fn seal(key: &[u8; 32], seq: u64, body: &[u8]) -> Vec<u8> {
    let len = 1 + MAC_LEN + body.len();
    let mut frame = Vec::with_capacity(LEN_PREFIX + len);
    // Bodies here are at most a few MiB, far below u32::MAX.
    frame.extend_from_slice(&(len as u32).to_be_bytes());
    frame.push(SEALED);
    frame.extend_from_slice(&mac(key, seq, body));
    frame.extend_from_slice(body);
    frame
}

/// Checks a sealed payload's MAC and returns its body.
fn open<'a>(key: &[u8; 32], seq: u64, rest: &'a [u8]) -> Result<&'a [u8], BlobError> {
    let (tag, body) = rest
        .split_first_chunk::<MAC_LEN>()
        .ok_or_else(|| FrameError::Garbage("truncated MAC".into()))?;
    // Constant-time comparison, as in `sync::auth`.
    if blake3::Hash::from(mac(key, seq, body)) != blake3::Hash::from(*tag) {
        return Err(FrameError::BadMac.into());
    }
    Ok(body)
}

/// Decodes a postcard body that must be consumed exactly.
fn from_body<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, BlobError> {
    let (value, rest) =
        postcard::take_from_bytes(body).map_err(|e| FrameError::Garbage(e.to_string()))?;
    if !rest.is_empty() {
        return Err(FrameError::Garbage("trailing bytes".into()).into());
    }
    Ok(value)
}

/// Reads a request frame's length prefix, refusing more than
/// [`MAX_REQUEST_FRAME`] before the payload is read.
pub fn request_frame_len(prefix: [u8; LEN_PREFIX]) -> Result<usize, BlobError> {
    Ok(payload_len(prefix, MAX_REQUEST_FRAME)?)
}

/// Reads a response frame's length prefix, refusing more than
/// [`MAX_BLOB_FRAME`] before the payload is read.
pub fn response_frame_len(prefix: [u8; LEN_PREFIX]) -> Result<usize, BlobError> {
    Ok(payload_len(prefix, MAX_BLOB_FRAME)?)
}

/// Encodes a request as a whole sealed frame (length prefix included); `seq`
/// is the number of requests already sent on this stream.
pub fn encode_request(request: &BlobRequest, key: &BlobKey, seq: u64) -> Vec<u8> {
    // Encoding these types into a Vec cannot fail.
    let body = postcard::to_allocvec(request).unwrap_or_default();
    seal(&key.requests, seq, &body)
}

/// Decodes a request payload (without its length prefix); `seq` is the number
/// of requests already received on this stream.
pub fn decode_request(payload: &[u8], key: &BlobKey, seq: u64) -> Result<BlobRequest, BlobError> {
    match payload.split_first() {
        Some((&SEALED, rest)) => from_body(open(&key.requests, seq, rest)?),
        Some((&PIECE, _)) => Err(BlobError::Unexpected("piece frame from a requester")),
        Some((tag, _)) => Err(FrameError::Garbage(format!("unknown frame tag {tag}")).into()),
        None => Err(FrameError::Garbage("empty frame".into()).into()),
    }
}

/// A whole sealed request frame around arbitrary `body` bytes, under a
/// correct MAC: only for fuzzing the body decoder behind the MAC
/// (`fuzz/fuzz_targets/blob_wire.rs`). The protocol uses [`encode_request`].
#[doc(hidden)]
pub fn seal_request_body(body: &[u8], key: &BlobKey, seq: u64) -> Vec<u8> {
    seal(&key.requests, seq, body)
}

/// A whole sealed response frame around arbitrary `body` bytes, as
/// [`seal_request_body`]; the protocol uses [`encode_response`].
#[doc(hidden)]
pub fn seal_response_body(body: &[u8], key: &BlobKey, seq: u64) -> Vec<u8> {
    seal(&key.responses, seq, body)
}

/// Encodes a control response as a whole sealed frame; `seq` is the number of
/// sealed responses already sent on this stream (pieces not counted).
pub fn encode_response(response: &BlobResponse, key: &BlobKey, seq: u64) -> Vec<u8> {
    let body = postcard::to_allocvec(response).unwrap_or_default();
    seal(&key.responses, seq, &body)
}

/// The header of a piece frame carrying `len` bytes of piece `index`: write
/// it, then the piece bytes, and the frame is complete. Refuses a piece longer
/// than [`PIECE_LEN`].
pub fn encode_piece_header(index: u64, len: usize) -> Result<[u8; PIECE_HEADER_LEN], BlobError> {
    if len as u64 > PIECE_LEN {
        return Err(BlobError::TooLarge {
            size: len as u64,
            cap: PIECE_LEN,
        });
    }
    let payload = (1 + 8 + len) as u32;
    let mut header = [0u8; PIECE_HEADER_LEN];
    let (prefix, rest) = header.split_at_mut(LEN_PREFIX);
    prefix.copy_from_slice(&payload.to_be_bytes());
    let (tag, idx) = rest.split_at_mut(1);
    tag.copy_from_slice(&[PIECE]);
    idx.copy_from_slice(&index.to_be_bytes());
    Ok(header)
}

/// A whole piece frame in one buffer (header and bytes); for tests and small
/// blobs. Servers should prefer [`encode_piece_header`] and write the bytes
/// directly.
pub fn encode_piece(index: u64, bytes: &[u8]) -> Result<Vec<u8>, BlobError> {
    let header = encode_piece_header(index, bytes.len())?;
    let mut frame = Vec::with_capacity(PIECE_HEADER_LEN + bytes.len());
    frame.extend_from_slice(&header);
    frame.extend_from_slice(bytes);
    Ok(frame)
}

/// Decodes a response-direction payload (without its length prefix). `seq`
/// is the number of sealed responses already received on this stream; it is
/// used only if the frame is sealed.
pub fn decode_response<'a>(
    payload: &'a [u8],
    key: &BlobKey,
    seq: u64,
) -> Result<Incoming<'a>, BlobError> {
    match payload.split_first() {
        Some((&SEALED, rest)) => Ok(Incoming::Response(from_body(open(
            &key.responses,
            seq,
            rest,
        )?)?)),
        Some((&PIECE, rest)) => {
            let (index, bytes) = rest
                .split_first_chunk::<8>()
                .ok_or_else(|| FrameError::Garbage("truncated piece header".into()))?;
            if bytes.len() as u64 > PIECE_LEN {
                return Err(FrameError::Garbage("piece longer than 1 MiB".into()).into());
            }
            Ok(Incoming::Piece {
                index: u64::from_be_bytes(*index),
                bytes,
            })
        }
        Some((tag, _)) => Err(FrameError::Garbage(format!("unknown frame tag {tag}")).into()),
        None => Err(FrameError::Garbage("empty frame".into()).into()),
    }
}

/// For a serving shell: the piece indices a [`BlobRequest::Pieces`] asks for,
/// or [`BlobRefusal::BadRequest`] if the count is 0 or above
/// [`MAX_PIECES_PER_REQUEST`], or the range runs past the last piece.
pub fn serve_range(outline: &Outline, from: u64, count: u32) -> Result<Range<u64>, BlobRefusal> {
    if count == 0 || count > MAX_PIECES_PER_REQUEST {
        return Err(BlobRefusal::BadRequest);
    }
    match from.checked_add(u64::from(count)) {
        Some(end) if end <= piece_count(outline.size) => Ok(from..end),
        _ => Err(BlobRefusal::BadRequest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blob::OutlineBuilder;

    fn key() -> BlobKey {
        GroupKey::from_random([5; 32]).blob_key(b"peer-a", b"peer-b")
    }

    fn payload(frame: &[u8], cap: usize) -> &[u8] {
        let len = payload_len(frame[..4].try_into().unwrap(), cap).unwrap();
        assert_eq!(frame.len(), 4 + len);
        &frame[4..]
    }

    fn outline(len: usize) -> Outline {
        let mut b = OutlineBuilder::new();
        b.update(&vec![7u8; len]);
        b.finish()
    }

    #[test]
    fn requests_round_trip_and_are_bound_to_seq_key_and_direction() {
        let k = key();
        let hash = BlobHash::of(b"x");
        for (seq, req) in [
            BlobRequest::Outline { hash },
            BlobRequest::Pieces {
                hash,
                from: u64::MAX,
                count: u32::MAX,
            },
        ]
        .into_iter()
        .enumerate()
        {
            let seq = seq as u64;
            let frame = encode_request(&req, &k, seq);
            assert!(frame.len() - 4 <= MAX_REQUEST_FRAME);
            let p = payload(&frame, MAX_REQUEST_FRAME);
            assert_eq!(decode_request(p, &k, seq).unwrap(), req);
            let bad_mac = Err(BlobError::Frame(FrameError::BadMac));
            assert_eq!(decode_request(p, &k, seq + 1), bad_mac, "replayed");
            let other = GroupKey::from_random([6; 32]).blob_key(b"peer-a", b"peer-b");
            assert_eq!(decode_request(p, &other, seq), bad_mac, "other group");
            let swapped = GroupKey::from_random([5; 32]).blob_key(b"peer-b", b"peer-a");
            assert_eq!(decode_request(p, &swapped, seq), bad_mac, "other roles");
            assert!(decode_response(p, &k, seq).is_err(), "not reflectable");
            let mut tampered = p.to_vec();
            *tampered.last_mut().unwrap() ^= 1;
            assert_eq!(decode_request(&tampered, &k, seq), bad_mac);
        }
    }

    #[test]
    fn responses_round_trip() {
        let k = key();
        let responses = [
            BlobResponse::Outline(outline(10)),
            BlobResponse::Outline(outline(3 * PIECE_LEN as usize + 1)),
            BlobResponse::Refused(BlobRefusal::NotShared),
        ];
        for (seq, resp) in responses.into_iter().enumerate() {
            let frame = encode_response(&resp, &k, seq as u64);
            let p = payload(&frame, MAX_BLOB_FRAME);
            assert_eq!(
                decode_response(p, &k, seq as u64).unwrap(),
                Incoming::Response(resp)
            );
            assert!(decode_response(p, &k, seq as u64 + 1).is_err());
            assert!(decode_request(p, &k, seq as u64).is_err());
        }
    }

    #[test]
    fn pieces_are_a_header_then_raw_bytes() {
        let k = key();
        for len in [0usize, 1, PIECE_LEN as usize] {
            let bytes: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let frame = encode_piece(u64::MAX - 1, &bytes).unwrap();
            assert_eq!(frame[PIECE_HEADER_LEN..], bytes[..]);
            let p = payload(&frame, MAX_BLOB_FRAME);
            assert_eq!(
                decode_response(p, &k, 99).unwrap(),
                Incoming::Piece {
                    index: u64::MAX - 1,
                    bytes: &bytes
                }
            );
            assert!(decode_request(p, &k, 0).is_err());
        }
        assert!(encode_piece_header(0, PIECE_LEN as usize + 1).is_err());
        let mut long = encode_piece(3, &vec![0; PIECE_LEN as usize]).unwrap();
        long.push(0);
        assert!(decode_response(&long[4..], &k, 0).is_err());
    }

    #[test]
    fn biggest_outline_fits_the_frame_cap() {
        let o = Outline {
            hash: BlobHash::of(b""),
            size: crate::blob::MAX_BLOB_SIZE,
            cvs: vec![[0xff; 32]; MAX_OUTLINE_CVS],
        };
        let frame = encode_response(&BlobResponse::Outline(o.clone()), &key(), u64::MAX);
        let p = payload(&frame, MAX_BLOB_FRAME);
        assert_eq!(
            decode_response(p, &key(), u64::MAX).unwrap(),
            Incoming::Response(BlobResponse::Outline(o))
        );
    }

    #[test]
    fn oversized_lengths_are_refused_before_reading() {
        let too_big = ((MAX_BLOB_FRAME + 1) as u32).to_be_bytes();
        assert_eq!(
            response_frame_len(too_big),
            Err(BlobError::Frame(FrameError::TooLarge {
                len: MAX_BLOB_FRAME + 1,
                cap: MAX_BLOB_FRAME
            }))
        );
        assert!(request_frame_len(129u32.to_be_bytes()).is_err());
        assert!(request_frame_len(u32::MAX.to_be_bytes()).is_err());
        assert!(response_frame_len([0; 4]).is_err(), "empty frame");
        assert_eq!(response_frame_len(100u32.to_be_bytes()), Ok(100));
    }

    #[test]
    fn garbage_is_refused_without_panicking() {
        let k = key();
        let frame = encode_response(&BlobResponse::Outline(outline(5)), &k, 0);
        let p = payload(&frame, MAX_BLOB_FRAME).to_vec();
        // Every truncation, and a few tags and fillers.
        for cut in 0..p.len() {
            assert!(decode_response(&p[..cut], &k, 0).is_err());
            assert!(decode_request(&p[..cut], &k, 0).is_err());
        }
        let mut trailing = p.clone();
        trailing.push(0);
        assert!(decode_response(&trailing, &k, 0).is_err());
        for tag in [0u8, 3, 0xff] {
            assert!(decode_response(&[tag; 64], &k, 0).is_err());
            assert!(decode_request(&[tag; 64], &k, 0).is_err());
        }
        // Correctly MACed garbage bodies still fail to decode.
        for body in [&[][..], &[9], &[0xff; 40], &[0, 1, 2]] {
            let sealed = seal(&k.responses, 0, body);
            assert!(decode_response(&sealed[4..], &k, 0).is_err());
            let sealed = seal(&k.requests, 0, body);
            assert!(decode_request(&sealed[4..], &k, 0).is_err());
        }
        // A sealed outline claiming 2^60 CVs with a tiny body.
        let mut body = vec![0u8];
        body.extend_from_slice(&[1; 32]);
        body.push(5);
        body.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f]);
        let sealed = seal(&k.responses, 0, &body);
        assert!(decode_response(&sealed[4..], &k, 0).is_err());
    }

    #[test]
    fn serve_ranges() {
        let o = outline(3 * PIECE_LEN as usize + 1);
        assert_eq!(serve_range(&o, 0, 4), Ok(0..4));
        assert_eq!(serve_range(&o, 3, 1), Ok(3..4));
        assert_eq!(serve_range(&o, 3, 2), Err(BlobRefusal::BadRequest));
        assert_eq!(serve_range(&o, 0, 0), Err(BlobRefusal::BadRequest));
        assert_eq!(serve_range(&o, u64::MAX, 1), Err(BlobRefusal::BadRequest));
        assert_eq!(serve_range(&outline(0), 0, 1), Ok(0..1));
        assert_eq!(
            BlobRefusal::NotFound.to_string(),
            "peer does not have the blob"
        );
    }
}
