//! What a [`crate::Node`] handle asks the swarm loop (`driver.rs`) to do
//! ([`Command`]), and how the node reports that it could not
//! ([`NetError`]).
//!
//! Shared by the handle (`node.rs`) and the loop, so neither imports the
//! other for them; it holds no state.

use crate::session_link::SessionCmd;
use libp2p::{Multiaddr, PeerId};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Why the node could not do something.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    /// The swarm could not be built.
    #[error("cannot start the network: {0}")]
    Setup(String),
    /// A listen address was refused.
    #[error("cannot listen on {address}: {error}")]
    Listen {
        /// The address.
        address: Multiaddr,
        /// The transport's error.
        error: String,
    },
    /// A dial could not be started.
    #[error("cannot dial {address}: {error}")]
    Dial {
        /// The address.
        address: Multiaddr,
        /// The transport's error.
        error: String,
    },
    /// Nothing was listening after the wait.
    #[error("the node has no listen address after {0:?}")]
    NoListenAddress(Duration),
    /// The node has stopped.
    #[error("the node has stopped")]
    Stopped,
}

pub(crate) enum Command {
    Dial(Multiaddr, oneshot::Sender<Result<(), NetError>>),
    Session(PeerId, oneshot::Sender<Option<mpsc::Sender<SessionCmd>>>),
    SyncNow(oneshot::Sender<usize>),
    Forget(PeerId, oneshot::Sender<usize>),
    Shutdown(oneshot::Sender<()>),
}
