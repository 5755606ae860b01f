//! One sync session of the tab with a peer, as the network loop (task.rs)
//! sees it: what it needs to start one (`SessionSpec`), what a running one
//! reports (`SessionEvent`), and how it ends (`SessionEnd`). Running it —
//! framing, shoal-core's sans-IO `Session`, reads and applies in IndexedDB —
//! is the sync driver's; this file only adapts the driver to the loop.

use crate::api_store::Inner;
use futures::{AsyncReadExt, AsyncWriteExt};
use libp2p::{PeerId, Stream};
use shoal_core::SyncCursor;
use shoal_core::sync::codec::{self, LEN_PREFIX, MAX_HANDSHAKE_FRAME};
use shoal_core::sync::{Action, GroupKey, Rejection, Role, Session, SyncConfig};
use std::rc::Rc;

/// What a session works on: the open store.
pub(crate) type StoreHandle = Rc<Inner>;

/// Who a session is with, and how it authenticates.
pub(crate) struct SessionSpec {
    /// The tab's peer id.
    pub(crate) local: PeerId,
    /// The peer's, as the transport authenticated it.
    pub(crate) peer: PeerId,
    /// Whether the tab opened the stream (dialer) or accepted it.
    pub(crate) role: Role,
    /// The group key the tab proves membership with.
    pub(crate) key: GroupKey,
}

/// What a running session reports to the loop.
pub(crate) enum SessionEvent {
    /// The peer proved membership (and accepted ours): data flows.
    Authenticated,
    /// Whether everything the peer had when it last answered is applied.
    CaughtUp(bool),
    /// The session ended.
    Ended(SessionEnd),
}

/// How a session ended.
pub(crate) enum SessionEnd {
    /// The protocol closed it with a named reason; `by_peer`: the peer
    /// refused the tab (else the tab refused the peer).
    Rejected { reason: Rejection, by_peer: bool },
    /// The stream broke, or the session ended without a rejection.
    Broken(String),
}

/// Runs the session on `stream` until it ends, reporting to `report`.
pub(crate) async fn run(
    stream: Stream,
    spec: SessionSpec,
    _store: StoreHandle,
    mut report: impl FnMut(SessionEvent),
) -> SessionEnd {
    let mut seed = [0u8; 32];
    if getrandom::fill(&mut seed).is_err() {
        return SessionEnd::Broken("no randomness for the key exchange".into());
    }
    let mut session = Session::new(
        spec.role,
        spec.local.to_bytes(),
        spec.peer.to_bytes(),
        spec.key,
        seed,
        SyncCursor::default(),
        SyncConfig::default(),
    );
    let (mut reader, mut writer) = stream.split();
    let mut pending = session.start(now_ms());
    loop {
        for action in pending.drain(..) {
            match action {
                Action::Send(frame) => {
                    if let Err(e) = writer.write_all(&frame).await {
                        return SessionEnd::Broken(e.to_string());
                    }
                    let _ = writer.flush().await;
                }
                Action::Authenticated => report(SessionEvent::Authenticated),
                Action::CaughtUp { .. } => report(SessionEvent::CaughtUp(true)),
                Action::Close { reason, by_peer } => {
                    let _ = writer.close().await;
                    return SessionEnd::Rejected { reason, by_peer };
                }
                _ => {}
            }
        }
        let mut prefix = [0u8; LEN_PREFIX];
        if let Err(e) = reader.read_exact(&mut prefix).await {
            return SessionEnd::Broken(e.to_string());
        }
        let cap = if session.is_authenticated() {
            codec::DEFAULT_MAX_FRAME
        } else {
            MAX_HANDSHAKE_FRAME
        };
        let Ok(len) = codec::payload_len(prefix, cap) else {
            pending = session.frame_too_large();
            continue;
        };
        let mut payload = vec![0u8; len];
        if let Err(e) = reader.read_exact(&mut payload).await {
            return SessionEnd::Broken(e.to_string());
        }
        pending = session.handle_payload(&payload, now_ms());
    }
}

fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}
