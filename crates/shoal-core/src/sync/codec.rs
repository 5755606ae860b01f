//! Framing: the one canonical binary encoding of [`Message`]s (postcard), the
//! length prefix, the frame-size cap, and the per-frame MAC.
//!
//! A frame on the stream is a 4-byte big-endian length followed by a payload.
//! A payload is `0x00 ‖ body` before authentication, or `0x01 ‖ mac ‖ body`
//! after it, where `body` is the postcard encoding of the message and `mac` is
//! keyed BLAKE3 over the direction's frame counter and the exact body bytes.
//! Before authentication a frame may be at most [`MAX_HANDSHAKE_FRAME`] bytes
//! (the handshake's messages are tiny), so a stranger cannot make a node hold
//! a large buffer; after it, the session's cap applies.
//! The body is followed by the predecessor tail, or carries its changes
//! grouped by record after it, when the session's [`ChangeLayout`] asks for
//! it (`layout.rs`).
//! This module never reads or writes a socket.

use super::auth::FrameKey;
pub use super::frame_error::FrameError;
pub use super::layout::ChangeLayout;
use super::message::Message;

/// Default largest payload accepted: 8 MiB.
pub const DEFAULT_MAX_FRAME: usize = 8 * 1024 * 1024;
/// Largest payload accepted before the peer has proved membership: every
/// handshake message (hello, PAKE message, proof, rejection) is under 64 bytes.
pub const MAX_HANDSHAKE_FRAME: usize = 256;
/// Size of the length prefix.
pub const LEN_PREFIX: usize = 4;

const PLAIN: u8 = 0;
const SEALED: u8 = 1;

/// Reads a length prefix and checks it against the cap *before* the payload
/// is read, so an oversized frame never costs memory.
pub fn payload_len(prefix: [u8; LEN_PREFIX], cap: usize) -> Result<usize, FrameError> {
    let len = u32::from_be_bytes(prefix) as usize;
    if len > cap {
        return Err(FrameError::TooLarge { len, cap });
    }
    if len == 0 {
        return Err(FrameError::Garbage("empty frame".into()));
    }
    Ok(len)
}

/// The body of a message's frame in `layout`: its postcard encoding and
/// the tail the layout adds.
pub fn body(message: &Message, layout: ChangeLayout) -> Vec<u8> {
    layout.body(message)
}

/// Encodes a message as a whole frame (length prefix included) with its
/// changes in `layout`; sealed with `key` and frame number `seq` when given.
pub fn encode(message: &Message, layout: ChangeLayout, key: Option<(&FrameKey, u64)>) -> Vec<u8> {
    let body = body(message, layout);
    let mut frame = Vec::with_capacity(LEN_PREFIX + 1 + 32 + body.len());
    frame.extend_from_slice(&[0; LEN_PREFIX]);
    match key {
        Some((key, seq)) => {
            frame.push(SEALED);
            frame.extend_from_slice(&key.mac(seq, &body));
        }
        None => frame.push(PLAIN),
    }
    frame.extend_from_slice(&body);
    let len = (frame.len() - LEN_PREFIX) as u32;
    frame[..LEN_PREFIX].copy_from_slice(&len.to_be_bytes());
    frame
}

/// A decoded payload: the message and whether it was sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The message.
    pub message: Message,
    /// Whether it carried a valid MAC.
    pub sealed: bool,
}

/// Decodes a payload (without its length prefix) whose changes are in
/// `layout`, checking the MAC with `key` and frame number `seq` if the
/// payload is sealed.
pub fn decode(
    payload: &[u8],
    layout: ChangeLayout,
    key: Option<(&FrameKey, u64)>,
) -> Result<Opened, FrameError> {
    let (&tag, rest) = payload
        .split_first()
        .ok_or_else(|| FrameError::Garbage("empty frame".into()))?;
    let (body, sealed) = match tag {
        PLAIN => (rest, false),
        SEALED => {
            let (key, seq) = key.ok_or(FrameError::BadMac)?;
            if rest.len() < 32 {
                return Err(FrameError::Garbage("truncated MAC".into()));
            }
            let (mac, body) = rest.split_at(32);
            let mac: [u8; 32] = mac.try_into().map_err(|_| FrameError::BadMac)?;
            if !key.verify(seq, body, &mac) {
                return Err(FrameError::BadMac);
            }
            (body, true)
        }
        other => return Err(FrameError::Garbage(format!("unknown frame tag {other}"))),
    };
    let (mut message, rest) =
        postcard::take_from_bytes(body).map_err(|e| FrameError::Garbage(e.to_string()))?;
    layout.read_tail(&mut message, rest)?;
    Ok(Opened { message, sealed })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::auth::{Role, SessionKeys};

    const L: ChangeLayout = ChangeLayout::WithPredecessors;

    fn key() -> FrameKey {
        SessionKeys::from_secret([5; 32]).frame_key(Role::Dialer)
    }

    #[test]
    fn roundtrip_plain_and_sealed() {
        let msg = Message::Ack {
            cursor: Default::default(),
        };
        let frame = encode(&msg, L, None);
        let len = payload_len(frame[..4].try_into().unwrap(), 100).unwrap();
        assert_eq!(
            decode(&frame[4..4 + len], L, None).unwrap(),
            Opened {
                message: msg.clone(),
                sealed: false
            }
        );
        let k = key();
        let frame = encode(&msg, L, Some((&k, 3)));
        assert!(decode(&frame[4..], L, Some((&k, 3))).unwrap().sealed);
        assert_eq!(
            decode(&frame[4..], L, Some((&k, 4))),
            Err(FrameError::BadMac),
            "replayed or reordered"
        );
        let mut tampered = frame.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(decode(&tampered[4..], L, Some((&k, 3))).is_err());
    }

    #[test]
    fn caps_and_garbage() {
        assert_eq!(
            payload_len(1000u32.to_be_bytes(), 999),
            Err(FrameError::TooLarge {
                len: 1000,
                cap: 999
            })
        );
        assert!(decode(&[0, 0xff, 0xff, 0xff], L, None).is_err());
        assert!(decode(&[7], L, None).is_err());
        assert!(decode(&[], L, None).is_err());
    }
}
