//! The peers this node keeps away from for a while, and how far: a peer
//! refused for a membership failure gets no connection until its back-off
//! ends; a peer whose batch this node's own store could not merge keeps its
//! connection, but no session opens with it until a pause ends — short at
//! first, doubling while the failure keeps coming back.
//!
//! It owns only the deadlines and what each holds back; when to set them
//! is the driver's, and it never touches the swarm or a session.

use crate::admission::NOT_ADMITTED_BACKOFF;
use libp2p::PeerId;
use shoal_core::sync::Rejection;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long no session opens with a peer after this node's store first
/// failed to merge its batch (busy past the timeout, disk full): a lock
/// held for a moment costs little.
pub(crate) const LOCAL_FAILURE_PAUSE: Duration = Duration::from_secs(3);

/// A failure this long after the last pause ended starts again from
/// [`LOCAL_FAILURE_PAUSE`]; one sooner doubles the pause (a failure that
/// lasts — a full disk — must not fetch a catch-up chunk every few seconds).
const RECOVERED_AFTER: Duration = Duration::from_secs(60);

/// A pause of sessions with one peer.
#[derive(Debug, Clone, Copy)]
struct Pause {
    until: Instant,
    length: Duration,
}

/// The deadlines, by peer.
#[derive(Debug, Default)]
pub(crate) struct Backoffs {
    /// Refused peers: no connection, no session.
    rejected_until: HashMap<PeerId, Instant>,
    /// Peers whose batch we could not merge: no session.
    paused: HashMap<PeerId, Pause>,
}

impl Backoffs {
    /// `peer` was refused (or refused us) for `reason`: keep away for the
    /// `configured` back-off, or less when the refusal may lift any moment.
    pub(crate) fn reject(
        &mut self,
        peer: PeerId,
        now: Instant,
        reason: Rejection,
        configured: Duration,
    ) {
        let backoff = match reason {
            // A request for admission may be approved any moment.
            Rejection::NotAdmitted => configured.min(NOT_ADMITTED_BACKOFF),
            _ => configured,
        };
        self.rejected_until.insert(peer, now + backoff);
    }

    /// This node's store could not merge `peer`'s batch: no session for
    /// [`LOCAL_FAILURE_PAUSE`], or twice the last pause (at most `longest`)
    /// if the last one ended less than [`RECOVERED_AFTER`] ago.
    pub(crate) fn pause(&mut self, peer: PeerId, now: Instant, longest: Duration) {
        let length = match self.paused.get(&peer) {
            Some(last) if now < last.until + RECOVERED_AFTER => {
                (last.length * 2).min(longest.max(LOCAL_FAILURE_PAUSE))
            }
            _ => LOCAL_FAILURE_PAUSE,
        };
        let until = now + length;
        self.paused.insert(peer, Pause { until, length });
    }

    /// Whether `peer` may not be connected to (nor a session held with).
    pub(crate) fn rejected(&self, peer: &PeerId, now: Instant) -> bool {
        self.rejected_until
            .get(peer)
            .is_some_and(|until| now < *until)
    }

    /// Whether no session may open with `peer` now.
    pub(crate) fn holds_sessions(&self, peer: &PeerId, now: Instant) -> bool {
        self.rejected(peer, now) || self.paused.get(peer).is_some_and(|p| now < p.until)
    }

    /// Forgets the deadlines past.
    pub(crate) fn expire(&mut self, now: Instant) {
        self.rejected_until.retain(|_, until| now < *until);
        self.paused.retain(|_, p| now < p.until + RECOVERED_AFTER);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pause_holds_sessions_but_not_the_connection() {
        let peer = PeerId::random();
        let now = Instant::now();
        let mut backoffs = Backoffs::default();
        backoffs.pause(peer, now, Duration::from_secs(60));
        assert!(backoffs.holds_sessions(&peer, now));
        assert!(!backoffs.rejected(&peer, now));
        let after = now + LOCAL_FAILURE_PAUSE;
        assert!(!backoffs.holds_sessions(&peer, after));
        backoffs.expire(after + RECOVERED_AFTER);
        assert!(backoffs.paused.is_empty());
    }

    #[test]
    fn a_failure_that_keeps_coming_back_pauses_longer_up_to_the_longest() {
        let peer = PeerId::random();
        let longest = Duration::from_secs(20);
        let mut backoffs = Backoffs::default();
        let mut now = Instant::now();
        let mut lengths = Vec::new();
        for _ in 0..5 {
            backoffs.pause(peer, now, longest);
            let pause = backoffs.paused[&peer];
            lengths.push(pause.length.as_secs());
            // The next session fails as soon as the pause ends.
            now = pause.until;
            backoffs.expire(now);
        }
        assert_eq!(lengths, [3, 6, 12, 20, 20]);
        // Long after the last pause, a new failure is a new one.
        now += RECOVERED_AFTER;
        backoffs.pause(peer, now, longest);
        assert_eq!(backoffs.paused[&peer].length, LOCAL_FAILURE_PAUSE);
    }

    #[test]
    fn a_rejection_holds_both_until_it_ends() {
        let peer = PeerId::random();
        let now = Instant::now();
        let mut backoffs = Backoffs::default();
        backoffs.reject(peer, now, Rejection::WrongSecret, Duration::from_secs(60));
        assert!(backoffs.rejected(&peer, now));
        assert!(backoffs.holds_sessions(&peer, now));
        assert!(!backoffs.holds_sessions(&PeerId::random(), now));
        let after = now + Duration::from_secs(60);
        assert!(!backoffs.rejected(&peer, after));
        backoffs.expire(after);
        assert!(backoffs.rejected_until.is_empty());
    }

    #[test]
    fn a_peer_waiting_for_admission_is_kept_away_no_longer_than_its_back_off() {
        let peer = PeerId::random();
        let now = Instant::now();
        let mut backoffs = Backoffs::default();
        backoffs.reject(peer, now, Rejection::NotAdmitted, Duration::from_secs(3600));
        assert!(backoffs.rejected(&peer, now));
        assert!(!backoffs.rejected(&peer, now + NOT_ADMITTED_BACKOFF));
    }
}
