//! What a sync session is started with and how it is steered: the peer and
//! key ([`SessionSpec`]), the tab's session settings ([`tab_sync_config`]),
//! stopping or re-syncing it from outside ([`Control`]), and how it ended
//! ([`SessionEnd`]). Re-exported by `driver.rs`, which runs sessions; this
//! file owns the shapes only.

use shoal_core::sync::version::{Feature, FeatureSet, Offer};
use shoal_core::sync::{GroupKey, Rejection, Role, SyncConfig};
use std::cell::RefCell;
use std::rc::Rc;
use std::task::{Context, Waker};

/// How often the driver ticks the session (timeouts, re-sync, held pushes),
/// as on native nodes.
pub const DEFAULT_TICK_MS: u64 = 500;

/// The session settings of a tab: native defaults, but without the
/// partial-replica feature (nor filtered-report, which builds on it) — a tab is a full replica and does not serve
/// partial peers (a partial peer then sends and receives everything, as
/// with a build that predates the feature: docs/partial.md).
pub fn tab_sync_config() -> SyncConfig {
    let current = Offer::current();
    let features = current
        .features
        .known()
        .into_iter()
        .filter(|f| !matches!(f, Feature::PartialReplica | Feature::FilteredReport))
        .fold(FeatureSet::NONE, FeatureSet::with);
    SyncConfig {
        offer: Offer {
            features,
            ..current
        },
        ..SyncConfig::default()
    }
}

/// Who a session is with and how it runs.
pub struct SessionSpec {
    /// Whether the tab opened the stream (dialer) or accepted it (listener).
    pub role: Role,
    /// The tab's peer id, as the transport authenticated it (bytes).
    pub local_peer: Vec<u8>,
    /// The peer's id, as the transport authenticated it (bytes).
    pub remote_peer: Vec<u8>,
    /// The peer's id as text: the key of its cursor and its status.
    pub peer: String,
    /// The group key (from the group secret).
    pub key: GroupKey,
    /// 32 fresh secret random bytes for the key exchange.
    pub seed: [u8; 32],
    /// Session settings ([`tab_sync_config`]).
    pub config: SyncConfig,
    /// How often to tick the session ([`DEFAULT_TICK_MS`]).
    pub tick_ms: u64,
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEnd {
    /// The protocol closed it with a named reason: refused by the peer
    /// (`by_peer`) or by the tab.
    Closed {
        /// Why.
        reason: Rejection,
        /// Whether the peer refused the tab.
        by_peer: bool,
    },
    /// The stream broke, or the store could not be read.
    Broken(String),
    /// [`Control::stop`] was called.
    Stopped,
}

#[derive(Debug, Default)]
struct ControlState {
    stop: bool,
    resync: bool,
    waker: Option<Waker>,
}

/// Asks a running session to stop or to re-sync now; clones share it.
#[derive(Debug, Clone, Default)]
pub struct Control(Rc<RefCell<ControlState>>);

impl Control {
    /// Ends the session (the stream is closed; nothing is half-applied).
    pub fn stop(&self) {
        self.ask(|s| s.stop = true);
    }

    /// Asks the peer for its changes now (unless a catch-up is under way).
    pub fn resync(&self) {
        self.ask(|s| s.resync = true);
    }

    /// Whether [`Control::stop`] was called.
    pub fn stopped(&self) -> bool {
        self.0.borrow().stop
    }

    /// What was asked and not yet taken (a stop stays asked); else
    /// registers the waiting task to be woken when something is.
    pub(crate) fn poll_asked(&self, cx: &mut Context<'_>) -> Option<Asked> {
        let mut state = self.0.borrow_mut();
        if state.stop {
            return Some(Asked::Stop);
        }
        if std::mem::take(&mut state.resync) {
            return Some(Asked::Resync);
        }
        state.waker = Some(cx.waker().clone());
        None
    }

    fn ask(&self, set: impl FnOnce(&mut ControlState)) {
        let waker = {
            let mut state = self.0.borrow_mut();
            set(&mut state);
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// What [`Control`] asked of the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Asked {
    Stop,
    Resync,
}
