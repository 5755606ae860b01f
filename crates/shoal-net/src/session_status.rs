//! What a session leaves in the peer table: its traffic and cursors as
//! they move (`report`), and at its end the peer's state and the reason
//! (`finish`). A child of `session_task.rs`, whose `Shell` it reads; it
//! must not perform actions or touch the stream.

use super::Shell;
use crate::session_link::SessionEnd;
use crate::status::{PeerProtocol, PeerState};
use std::time::Instant;

impl Shell {
    /// Adds the session's traffic since the last report to the peer's
    /// totals and copies its cursors and the agreed protocol.
    pub(super) fn report(&mut self) {
        let stats = self.session.stats().clone();
        let before = std::mem::replace(&mut self.reported, stats.clone());
        if stats.catchups > before.catchups && self.catching_up.is_none() {
            self.catching_up = Some(Instant::now());
        }
        let session = &self.session;
        self.table.update(self.peer, |s| {
            s.totals.bytes_in += stats.bytes_in.saturating_sub(before.bytes_in);
            s.totals.bytes_out += stats.bytes_out.saturating_sub(before.bytes_out);
            s.totals.changes_in += stats.changes_in.saturating_sub(before.changes_in);
            s.totals.changes_out += stats.changes_out.saturating_sub(before.changes_out);
            s.cursor = session.cursor();
            s.remote_head = session.remote_head().version;
            s.acked = session.peer_acked();
            s.bytes_in = stats.bytes_in;
            s.bytes_out = stats.bytes_out;
            s.changes_in = stats.changes_in;
            if let Some(agreed) = session.agreed() {
                s.protocol = Some(PeerProtocol {
                    version: agreed.peer_version,
                    agreed: agreed.version,
                    features: agreed.features.known(),
                    software: session.peer_software().map(str::to_string),
                });
            }
        });
    }

    /// Records how the session ended: the peer's state, and the reason of
    /// a local failure as its `last_error`.
    pub(super) fn finish(&mut self, end: SessionEnd) -> SessionEnd {
        self.report();
        if let SessionEnd::Closed { reason, by_peer } = &end
            && reason.is_membership_failure()
        {
            self.table.counters().rejected(*reason, *by_peer);
        }
        let incompatible = self.session.incompatible();
        self.table.update(self.peer, |s| {
            if let SessionEnd::LocalFailure(why) = &end {
                s.last_error = Some(why.clone());
            }
            match (&end, incompatible) {
                // Our hello check refused the peer's version (the peer's own
                // check reaches the same verdict, worded for its side).
                (SessionEnd::Closed { .. }, Some(why)) => s.state = PeerState::Incompatible { why },
                (SessionEnd::Closed { reason, by_peer }, None)
                    if reason.is_membership_failure() =>
                {
                    s.state = PeerState::Rejected {
                        reason: *reason,
                        by_peer: *by_peer,
                    }
                }
                // Another session with the peer (on a second connection) may
                // have ended in a verdict meanwhile; this one's plain end must
                // not wipe it.
                _ => {
                    if matches!(s.state, PeerState::Connected | PeerState::Connecting) {
                        s.state = PeerState::Disconnected;
                    }
                }
            }
        });
        end
    }
}
