//! Which connections have gone silent: when each last answered a ping (or
//! opened), and which have not answered for three liveness periods.
//!
//! libp2p's ping only reports, and only its second failure in a row — after
//! the first one it opens a new ping stream, and on a dead connection that
//! waits out a 10 s negotiation timeout. Counting from the last answer
//! instead notices a silent peer within three periods. This file keeps the
//! bookkeeping, with the time passed in; closing is the swarm loop's job.

use libp2p::PeerId;
use libp2p::swarm::ConnectionId;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Periods without an answer after which a connection counts as silent.
const MISSED_PERIODS: u32 = 3;

/// The last sign of life of every open connection.
#[derive(Debug)]
pub(crate) struct Liveness {
    limit: Duration,
    last: HashMap<ConnectionId, (PeerId, Instant)>,
}

impl Liveness {
    /// Bookkeeping for connections pinged every `period`.
    pub(crate) fn new(period: Duration) -> Liveness {
        Liveness {
            limit: period.saturating_mul(MISSED_PERIODS),
            last: HashMap::new(),
        }
    }

    /// A connection to `peer` opened at `now`.
    pub(crate) fn opened(&mut self, connection: ConnectionId, peer: PeerId, now: Instant) {
        self.last.insert(connection, (peer, now));
    }

    /// A ping on `connection` was answered at `now`.
    pub(crate) fn answered(&mut self, connection: ConnectionId, now: Instant) {
        if let Some((_, at)) = self.last.get_mut(&connection) {
            *at = now;
        }
    }

    /// `connection` closed.
    pub(crate) fn closed(&mut self, connection: ConnectionId) {
        self.last.remove(&connection);
    }

    /// The connections silent at `now`, forgotten here (each is reported once).
    pub(crate) fn take_silent(&mut self, now: Instant) -> Vec<(ConnectionId, PeerId)> {
        let silent: Vec<(ConnectionId, PeerId)> = self
            .last
            .iter()
            .filter(|(_, (_, at))| now.saturating_duration_since(*at) > self.limit)
            .map(|(connection, (peer, _))| (*connection, *peer))
            .collect();
        for (connection, _) in &silent {
            self.last.remove(connection);
        }
        silent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silent_after_three_periods_without_an_answer_and_reported_once() {
        let start = Instant::now();
        let second = |s: u64| start + Duration::from_secs(s);
        let mut liveness = Liveness::new(Duration::from_secs(10));
        let (quiet, chatty, gone) = (
            ConnectionId::new_unchecked(1),
            ConnectionId::new_unchecked(2),
            ConnectionId::new_unchecked(3),
        );
        let peer = PeerId::random();
        for connection in [quiet, chatty, gone] {
            liveness.opened(connection, peer, start);
        }
        liveness.closed(gone);
        liveness.answered(chatty, second(25));
        assert!(liveness.take_silent(second(30)).is_empty());
        assert_eq!(liveness.take_silent(second(31)), vec![(quiet, peer)]);
        assert!(liveness.take_silent(second(40)).is_empty(), "reported once");
        assert_eq!(liveness.take_silent(second(56)), vec![(chatty, peer)]);
        // An answer on a connection not tracked (closed) does nothing.
        liveness.answered(gone, second(60));
        assert!(liveness.take_silent(second(100)).is_empty());
    }
}
