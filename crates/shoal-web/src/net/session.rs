//! One sync session of the tab with a peer, as the network loop (task.rs)
//! sees it: what it needs to start one (`SessionSpec`), what a running one
//! reports (`SessionEvent`), and how it ends (`SessionEnd`). Running it —
//! framing, shoal-core's sans-IO `Session`, reads and applies in IndexedDB —
//! is the sync driver's (`crate::sync::driver::run_session`); this file
//! adapts it to the loop: it starts the driver on the stream and follows
//! the driver's status (`StatusCell::changed`), reporting the moment the
//! peer proved membership (what `connect` waits for) and catch-ups.

use crate::store_inner::Inner;
use crate::sync::driver::{self, Control, DEFAULT_TICK_MS, tab_sync_config};
use crate::sync::status::{PeerState, StatusCell};
use crate::sync::store_replica::{BrowserTimer, StoreReplica, random_seed};
use futures::FutureExt;
use libp2p::{PeerId, Stream};
use shoal_core::sync::{GroupKey, Rejection, Role};
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
    store: StoreHandle,
    mut report: impl FnMut(SessionEvent),
) -> SessionEnd {
    let seed = match random_seed() {
        Ok(seed) => seed,
        Err(e) => return SessionEnd::Broken(e.to_string()),
    };
    let peer = spec.peer.to_string();
    let spec = driver::SessionSpec {
        role: spec.role,
        local_peer: spec.local.to_bytes(),
        remote_peer: spec.peer.to_bytes(),
        peer: peer.clone(),
        key: spec.key,
        seed,
        config: tab_sync_config(),
        tick_ms: DEFAULT_TICK_MS,
    };
    let replica = StoreReplica::new(store);
    let status = StatusCell::new(&peer);
    let control = Control::default();
    let session =
        driver::run_session(&replica, &BrowserTimer, spec, &status, &control, stream).fuse();
    futures::pin_mut!(session);
    let (mut authenticated, mut caught_up, mut seen) = (false, false, 0);
    loop {
        let ended = futures::select! {
            end = session => Some(end),
            (_, generation) = status.changed(seen).fuse() => {
                seen = generation;
                None
            }
        };
        let now = status.get();
        if !authenticated && now.state == PeerState::Connected {
            authenticated = true;
            report(SessionEvent::Authenticated);
        }
        if authenticated && now.caught_up != caught_up {
            caught_up = now.caught_up;
            report(SessionEvent::CaughtUp(caught_up));
        }
        if let Some(end) = ended {
            return match end {
                driver::SessionEnd::Closed { reason, by_peer }
                    if reason.is_membership_failure() =>
                {
                    SessionEnd::Rejected { reason, by_peer }
                }
                driver::SessionEnd::Closed { reason, by_peer } => SessionEnd::Broken(format!(
                    "the session was closed by {}: {reason}",
                    if by_peer { "the peer" } else { "this tab" }
                )),
                driver::SessionEnd::Broken(why) => SessionEnd::Broken(why),
                driver::SessionEnd::Stopped => SessionEnd::Broken("stopped".into()),
            };
        }
    }
}
