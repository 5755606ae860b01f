//! The tab's network: libp2p over the browser's WebSocket to daemons (and
//! any peer listening on WebSocket) — directly, or through a circuit of the
//! group's relay once the tab proved membership to it — the membership
//! handshake and sync sessions of the native protocol, and the peer table.
//! Started by the first `store.connect`, so a tab that never connects runs
//! no swarm.
//!
//! It owns the handle the JavaScript API talks to (`Network`); the swarm is
//! swarm.rs's, the loop task.rs's, the sessions session.rs's, the secret's
//! forms secret.rs's, addresses address.rs's, relays relay.rs's.

pub(crate) mod address;
mod relay;
pub(crate) mod secret;
mod session;
mod swarm;
mod task;
mod websocket;

use crate::error::WebError;
use crate::peers::{PeerStatus, PeerTable};
use address::Target;
use futures::channel::{mpsc, oneshot};
use libp2p::PeerId;
use libp2p::identity::Keypair;
use session::StoreHandle;
use shoal_core::sync::GroupKey;
use std::cell::RefCell;
use std::rc::Rc;

/// The running network of one open store.
pub(crate) struct Network {
    commands: mpsc::UnboundedSender<Command>,
    table: Rc<RefCell<PeerTable>>,
}

impl Network {
    /// Builds the swarm for `keypair` and starts its loop on `store`.
    pub(crate) fn start(store: StoreHandle, keypair: Keypair) -> Result<Network, WebError> {
        let swarm = swarm::build(keypair).map_err(WebError::Storage)?;
        let table = Rc::new(RefCell::new(PeerTable::default()));
        let (commands, commands_rx) = mpsc::unbounded();
        task::spawn(swarm, store, table.clone(), commands_rx)?;
        Ok(Network { commands, table })
    }

    /// Connects to the peer `target` names with `key`: resolves once both
    /// sides proved membership.
    pub(crate) async fn connect(&self, target: Target, key: GroupKey) -> Result<(), WebError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .unbounded_send(Command::Connect { target, key, reply })
            .map_err(|_| WebError::Closed)?;
        answer.await.map_err(|_| WebError::Closed)?
    }

    /// Disconnects `peer` (every peer when `None`).
    pub(crate) async fn disconnect(&self, peer: Option<PeerId>) {
        let (reply, answer) = oneshot::channel();
        if self
            .commands
            .unbounded_send(Command::Disconnect { peer, reply })
            .is_ok()
        {
            let _ = answer.await;
        }
    }

    /// Ends the network (the store closes): sessions and connections
    /// close, waiting `connect` calls fail with `store-closed`.
    pub(crate) fn stop(&self) {
        let _ = self.commands.unbounded_send(Command::Stop);
    }

    /// The peer table.
    pub(crate) fn peers(&self) -> Vec<PeerStatus> {
        self.table.borrow().list()
    }
}

/// What the store asks of its network (the loop, task.rs, answers).
pub(crate) enum Command {
    /// Connect to the peer `target` names as a member holding `key`;
    /// answered once the peer proved membership, or why not.
    Connect {
        target: Target,
        key: GroupKey,
        reply: oneshot::Sender<Result<(), WebError>>,
    },
    /// Disconnect `peer` (every peer when `None`); answered when done.
    Disconnect {
        peer: Option<PeerId>,
        reply: oneshot::Sender<()>,
    },
    /// End every session and connection and the loop (the store closes);
    /// waiting `connect` calls fail with `store-closed`.
    Stop,
}
