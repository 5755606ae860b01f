//! Reading length-prefixed frames from the byte stream, exactly as the
//! native shell does (`shoal-net` session_task.rs, framing of
//! `shoal_core::sync::codec`): a 4-byte big-endian length, checked against
//! the cap *before* the payload is read — the handshake cap until the peer
//! has proved membership, so a stranger cannot make the tab hold a large
//! buffer — then the payload.
//!
//! A stream of inputs whose state lives in the stream, so the driver may
//! stop waiting on it (to tick, or push) without losing half a frame. It
//! owns the reading only; the session decides what a payload means.

use futures::io::{AsyncRead, AsyncReadExt};
use futures::stream::Stream;
use shoal_core::sync::codec::{self, FrameError, LEN_PREFIX, MAX_HANDSHAKE_FRAME};
use std::cell::Cell;
use std::rc::Rc;

/// What the stream gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// One frame's payload (without its length prefix).
    Payload(Vec<u8>),
    /// A length prefix over the cap: the session refuses it as too large.
    TooLarge,
    /// The stream ended or failed.
    Broken(String),
}

/// The frames of `reader`: at most `cap` bytes each once `authenticated`
/// is set, at most [`MAX_HANDSHAKE_FRAME`] before. Ends after
/// [`Input::TooLarge`] or [`Input::Broken`].
pub fn read_frames<R: AsyncRead + Unpin>(
    reader: R,
    cap: usize,
    authenticated: Rc<Cell<bool>>,
) -> impl Stream<Item = Input> {
    futures::stream::unfold(Some(reader), move |reader| {
        let authenticated = authenticated.clone();
        async move {
            let mut reader = reader?;
            let mut prefix = [0u8; LEN_PREFIX];
            if let Err(e) = reader.read_exact(&mut prefix).await {
                return Some((Input::Broken(broken(&e)), None));
            }
            let cap_now = match authenticated.get() {
                true => cap,
                false => MAX_HANDSHAKE_FRAME.min(cap),
            };
            let len = match codec::payload_len(prefix, cap_now) {
                Ok(len) => len,
                Err(FrameError::TooLarge { .. }) => return Some((Input::TooLarge, None)),
                // An empty frame: let the session refuse it by name.
                Err(_) => 0,
            };
            let mut payload = vec![0u8; len];
            if let Err(e) = reader.read_exact(&mut payload).await {
                return Some((Input::Broken(broken(&e)), None));
            }
            Some((Input::Payload(payload), Some(reader)))
        }
    })
}

fn broken(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::UnexpectedEof => "the peer closed the stream".into(),
        _ => format!("the stream failed: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use futures::executor::block_on;

    #[test]
    fn frames_are_capped_by_the_handshake_until_authenticated() {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&3u32.to_be_bytes());
        bytes.extend_from_slice(b"abc");
        bytes.extend_from_slice(&1000u32.to_be_bytes());
        let auth = Rc::new(Cell::new(false));
        let frames: Vec<Input> = block_on(read_frames(&bytes[..], 4096, auth.clone()).collect());
        assert_eq!(
            frames,
            vec![Input::Payload(b"abc".to_vec()), Input::TooLarge]
        );
        // Authenticated, the same prefix is read (here: the stream ends first).
        auth.set(true);
        let frames: Vec<Input> = block_on(read_frames(&bytes[7..], 4096, auth).collect());
        assert_eq!(
            frames,
            vec![Input::Broken("the peer closed the stream".into())]
        );
    }
}
