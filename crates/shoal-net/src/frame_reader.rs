//! Reading a sync session's length-prefixed frames from its libp2p stream
//! ([`read_frames`]), on a task of its own: a frame over the cap is refused
//! before its payload is read, and one over the handshake cap is read only
//! once the peer has proved membership.
//!
//! It only cuts bytes into frames and hands them on ([`Input`]); what a
//! frame means is the session's (`session_task.rs` drives it).

use futures::AsyncReadExt;
use libp2p::Stream;
use shoal_core::sync::codec::{self, FrameError, LEN_PREFIX, MAX_HANDSHAKE_FRAME};
use tokio::sync::{mpsc, watch};

/// What the reader hands the session task.
pub(crate) enum Input {
    /// One frame's payload.
    Payload(Vec<u8>),
    /// The next frame announced a length over the cap (nothing more is read).
    TooLarge,
    /// The stream ended or failed.
    Broken(String),
}

/// How far the session has got, for the frame reader: how many payloads it
/// has handled, and whether the peer has proved membership.
pub(crate) type Progress = (u64, bool);

/// Reads frames until the stream ends; never allocates beyond the frame cap,
/// nor beyond [`MAX_HANDSHAKE_FRAME`] while the peer is not authenticated.
pub(crate) async fn read_frames(
    mut reader: futures::io::ReadHalf<Stream>,
    cap: usize,
    mut progress: watch::Receiver<Progress>,
    inputs: mpsc::Sender<Input>,
) {
    let mut delivered = 0u64;
    loop {
        let mut prefix = [0u8; LEN_PREFIX];
        if let Err(e) = reader.read_exact(&mut prefix).await {
            let _ = inputs.send(Input::Broken(e.to_string())).await;
            return;
        }
        // A frame over the handshake cap is read only from an authenticated
        // peer. The handshake's last frame may still wait in the session's
        // queue when a member's first data frame arrives: settle that first.
        let mut cap_now = MAX_HANDSHAKE_FRAME.min(cap);
        if u32::from_be_bytes(prefix) as usize > cap_now {
            let settled = progress
                .wait_for(|&(handled, authenticated)| authenticated || handled >= delivered)
                .await;
            match settled {
                Ok(state) if state.1 => cap_now = cap,
                Ok(_) => {}
                Err(_) => return,
            }
        }
        let len = match codec::payload_len(prefix, cap_now) {
            Ok(len) => len,
            Err(FrameError::TooLarge { .. }) => {
                let _ = inputs.send(Input::TooLarge).await;
                return;
            }
            // An empty frame is garbage: let the session refuse it by name.
            Err(_) => 0,
        };
        let mut payload = vec![0u8; len];
        if let Err(e) = reader.read_exact(&mut payload).await {
            let _ = inputs.send(Input::Broken(e.to_string())).await;
            return;
        }
        if inputs.send(Input::Payload(payload)).await.is_err() {
            return;
        }
        delivered += 1;
    }
}
