//! Counting hole punches: each DCUtR outcome (a relayed connection upgraded
//! to a direct one, or given up on) goes into the peer's entry of the peer
//! table and the node's totals.
//!
//! Bookkeeping only: the swarm loop (`driver.rs`) hands it libp2p's events;
//! it must not act on the swarm.

use crate::status::PeerTable;
use libp2p::dcutr;

/// Counts one hole-punch outcome.
pub(crate) fn record(table: &PeerTable, event: &dcutr::Event) {
    let peer = event.remote_peer_id;
    let success = event.result.is_ok();
    match &event.result {
        Ok(_) => tracing::info!(%peer, "hole punched: a direct connection opened"),
        Err(e) => tracing::info!(%peer, "hole punching failed: {e}"),
    }
    table.counters().punched(success);
    table.update(peer, |s| {
        s.punch.attempts += 1;
        match &event.result {
            Ok(_) => s.punch.successes += 1,
            Err(e) => s.punch.last_error = Some(e.to_string()),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use libp2p::PeerId;
    use libp2p::swarm::ConnectionId;

    #[test]
    fn a_success_counts_per_peer_and_in_the_totals() {
        let table = PeerTable::default();
        let peer = PeerId::random();
        let event = dcutr::Event {
            remote_peer_id: peer,
            result: Ok(ConnectionId::new_unchecked(7)),
        };
        record(&table, &event);
        record(&table, &event);
        let status = table.get(&peer).expect("counted");
        assert_eq!((status.punch.attempts, status.punch.successes), (2, 2));
        let totals = table.counters().snapshot();
        assert_eq!((totals.punch_attempts, totals.punch_successes), (2, 2));
    }
}
