//! The tab's peer table: for each peer it was asked to connect to, the
//! address, the connection's state, whether the tab has caught up with the
//! peer's log, and the last error — what `store.peers()` answers. The states
//! are named as the daemon's `/api/peers` names them, so an app handles both
//! alike.
//!
//! It owns the table and its transitions' bookkeeping; it does no I/O (the
//! network task, net/task.rs, reports events to it).

use serde::Serialize;
use std::collections::BTreeMap;

/// Where the tab stands with one peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PeerState {
    /// Dialing, or connected and proving membership.
    Connecting,
    /// Both sides proved membership: changes flow both ways.
    Connected,
    /// Was connected or connecting; not any more (`store.disconnect`, the
    /// peer went away, or the connection broke).
    Disconnected,
    /// The dial failed (nothing listens there, or the connection was refused).
    Unreachable,
    /// The peer refused the tab's membership proof (or the tab refused the
    /// peer's, or the relay in between refused the tab's): the secret
    /// differs. Redialing does not help.
    Rejected,
}

/// One row of `store.peers()`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeerStatus {
    /// The peer's libp2p peer id.
    pub peer_id: String,
    /// The address the tab dialed.
    pub address: String,
    /// The connection's state.
    pub state: PeerState,
    /// Whether the tab has pulled everything the peer had when it last said
    /// where its log ends (false until the first catch-up completes).
    pub caught_up: bool,
    /// The last failure with this peer, for people.
    pub last_error: Option<String>,
}

/// Every peer the tab was asked to connect to, by peer id.
#[derive(Debug, Default)]
pub struct PeerTable {
    peers: BTreeMap<String, PeerStatus>,
}

impl PeerTable {
    /// Records a dial of `peer` at `address`: the peer is `connecting`, its
    /// last error kept until something newer replaces it.
    pub fn dialing(&mut self, peer: &str, address: &str) {
        let entry = self
            .peers
            .entry(peer.to_string())
            .or_insert_with(|| PeerStatus {
                peer_id: peer.to_string(),
                address: address.to_string(),
                state: PeerState::Connecting,
                caught_up: false,
                last_error: None,
            });
        entry.address = address.to_string();
        entry.state = PeerState::Connecting;
    }

    /// Sets `peer`'s state (a peer never dialed is not added).
    pub fn set_state(&mut self, peer: &str, state: PeerState) {
        if let Some(entry) = self.peers.get_mut(peer) {
            entry.state = state;
            if state != PeerState::Connected {
                entry.caught_up = false;
            }
        }
    }

    /// Records a failure with `peer`, and the state it leaves the peer in.
    pub fn failed(&mut self, peer: &str, state: PeerState, error: &str) {
        if let Some(entry) = self.peers.get_mut(peer) {
            entry.state = state;
            entry.caught_up = false;
            entry.last_error = Some(error.to_string());
        }
    }

    /// Records whether the tab is caught up with `peer`.
    pub fn set_caught_up(&mut self, peer: &str, caught_up: bool) {
        if let Some(entry) = self.peers.get_mut(peer) {
            entry.caught_up = caught_up && entry.state == PeerState::Connected;
        }
    }

    /// `peer`'s row.
    pub fn get(&self, peer: &str) -> Option<&PeerStatus> {
        self.peers.get(peer)
    }

    /// Every row, in peer id order.
    pub fn list(&self) -> Vec<PeerStatus> {
        self.peers.values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_moves_through_its_states_and_keeps_its_last_error() {
        let mut table = PeerTable::default();
        table.set_state("nobody", PeerState::Connected);
        assert!(table.list().is_empty(), "a peer never dialed is not added");

        table.dialing("p", "/ip4/127.0.0.1/tcp/1/ws/p2p/p");
        assert_eq!(table.get("p").unwrap().state, PeerState::Connecting);
        table.set_caught_up("p", true);
        assert!(
            !table.get("p").unwrap().caught_up,
            "not caught up before connected"
        );
        table.set_state("p", PeerState::Connected);
        table.set_caught_up("p", true);
        assert!(table.get("p").unwrap().caught_up);

        table.failed("p", PeerState::Disconnected, "connection closed");
        let row = table.get("p").unwrap();
        assert_eq!(row.state, PeerState::Disconnected);
        assert!(!row.caught_up);
        assert_eq!(row.last_error.as_deref(), Some("connection closed"));

        // A redial keeps the last error until a newer one.
        table.dialing("p", "/ip4/127.0.0.1/tcp/2/ws/p2p/p");
        let row = table.get("p").unwrap();
        assert_eq!(row.state, PeerState::Connecting);
        assert_eq!(row.address, "/ip4/127.0.0.1/tcp/2/ws/p2p/p");
        assert_eq!(row.last_error.as_deref(), Some("connection closed"));
    }

    #[test]
    fn rows_serialize_with_the_daemons_state_names() {
        let mut table = PeerTable::default();
        table.dialing("b", "addr-b");
        table.dialing("a", "addr-a");
        table.failed("a", PeerState::Rejected, "wrong group secret");
        let json = serde_json::to_value(table.list()).unwrap();
        assert_eq!(
            json,
            serde_json::json!([
                {"peer_id": "a", "address": "addr-a", "state": "rejected", "caught_up": false,
                 "last_error": "wrong group secret"},
                {"peer_id": "b", "address": "addr-b", "state": "connecting", "caught_up": false,
                 "last_error": null},
            ])
        );
    }
}
