//! Which way each connection to a peer goes — directly, or through a relay
//! (its remote address holds `/p2p-circuit`) — and so how the peer is
//! reached as a whole: directly when any connection is direct.
//!
//! Bookkeeping only; the swarm loop (`driver.rs`) feeds it connection
//! events and acts on its answers.

use crate::status::PeerPath;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::ConnectionId;
use libp2p::{Multiaddr, PeerId};
use std::collections::HashMap;

/// Open connections to peers and the relay each goes through, if any.
#[derive(Debug, Default)]
pub(crate) struct ConnPaths {
    open: HashMap<ConnectionId, (PeerId, Option<PeerId>)>,
}

/// The relay a connection with remote address `address` goes through, if it
/// is relayed (`…/p2p/<relay>/p2p-circuit/…`).
pub(crate) fn relay_of(address: &Multiaddr) -> Option<PeerId> {
    let mut relay = None;
    for part in address.iter() {
        match part {
            Protocol::P2p(peer) => relay = Some(peer),
            Protocol::P2pCircuit => return relay,
            _ => {}
        }
    }
    None
}

/// Whether `address` goes through a relay.
pub(crate) fn is_relayed(address: &Multiaddr) -> bool {
    address.iter().any(|p| p == Protocol::P2pCircuit)
}

impl ConnPaths {
    /// A connection to `peer` at `address` opened.
    pub(crate) fn opened(&mut self, connection: ConnectionId, peer: PeerId, address: &Multiaddr) {
        let relay = if is_relayed(address) {
            // A circuit's remote address may lack the relay's id only if
            // it was dialed without it; still relayed.
            Some(relay_of(address).unwrap_or(peer))
        } else {
            None
        };
        self.open.insert(connection, (peer, relay));
    }

    /// A connection closed.
    pub(crate) fn closed(&mut self, connection: ConnectionId) {
        self.open.remove(&connection);
    }

    /// How `peer` is reached now.
    pub(crate) fn path(&self, peer: &PeerId) -> PeerPath {
        let mut path = PeerPath::None;
        for (p, relay) in self.open.values() {
            if p != peer {
                continue;
            }
            match relay {
                None => return PeerPath::Direct,
                Some(relay) => path = PeerPath::Relayed { relay: *relay },
            }
        }
        path
    }

    /// The relayed connections to `peer` (to close once a direct one opened,
    /// so its session moves to the direct one).
    pub(crate) fn relayed_to(&self, peer: &PeerId) -> Vec<ConnectionId> {
        self.open
            .iter()
            .filter(|(_, (p, relay))| p == peer && relay.is_some())
            .map(|(c, _)| *c)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_is_direct_when_any_connection_is() {
        let (peer, relay) = (PeerId::random(), PeerId::random());
        let circuit: Multiaddr = format!("/ip4/1.2.3.4/tcp/1/p2p/{relay}/p2p-circuit")
            .parse()
            .unwrap();
        let direct: Multiaddr = "/ip4/5.6.7.8/tcp/2".parse().unwrap();
        let mut paths = ConnPaths::default();
        assert_eq!(paths.path(&peer), PeerPath::None);
        let (c1, c2) = (
            ConnectionId::new_unchecked(1),
            ConnectionId::new_unchecked(2),
        );
        paths.opened(c1, peer, &circuit);
        assert_eq!(paths.path(&peer), PeerPath::Relayed { relay });
        paths.opened(c2, peer, &direct);
        assert_eq!(paths.path(&peer), PeerPath::Direct);
        assert_eq!(paths.relayed_to(&peer), vec![c1]);
        paths.closed(c1);
        assert_eq!(paths.path(&peer), PeerPath::Direct);
        paths.closed(c2);
        assert_eq!(paths.path(&peer), PeerPath::None);
    }
}
