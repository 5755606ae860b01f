//! Which of the tab's transactions merged a batch from which peer, so that
//! the log read for that peer leaves those slot versions out: the peer sent
//! them, so it holds them (or newer). Without it every batch the tab catches
//! up would be read back and pushed to the peer it came from — the same
//! bookkeeping the native store keeps (`shoal-store` echo.rs), memory only
//! and scoped to one session with the peer (forgotten when a new session
//! starts: a peer restored from a backup may no longer hold what it sent).
//!
//! It owns the bookkeeping only; the read that skips is `log_read.rs`'s.

use shoal_core::DbVersion;
use std::collections::HashMap;

/// Most separate runs of versions remembered per peer (oldest forgotten
/// first: forgetting costs a re-sent slot, never a lost one).
const MAX_RUNS: usize = 256;

/// Per peer, the db_versions whose transactions merged only that peer's
/// changes, as sorted disjoint runs `(first, last)`.
#[derive(Debug, Default)]
pub struct EchoLog {
    peers: HashMap<String, Vec<(u64, u64)>>,
}

impl EchoLog {
    /// Notes that the versions `first..=last` merged only changes from `peer`.
    pub fn record(&mut self, peer: &str, first: DbVersion, last: DbVersion) {
        let runs = self.peers.entry(peer.to_string()).or_default();
        let (first, last) = (first.0, last.0);
        if last < first {
            return;
        }
        match runs.last_mut() {
            Some(run) if run.1 + 1 >= first && run.0 <= first => run.1 = run.1.max(last),
            _ => runs.push((first, last)),
        }
        if runs.len() > MAX_RUNS {
            runs.remove(0);
        }
    }

    /// A copy holding `peer`'s runs only (for a read that awaits while
    /// merges may note more).
    pub fn snapshot(&self, peer: &str) -> EchoLog {
        let mut copy = EchoLog::default();
        if let Some(runs) = self.peers.get(peer) {
            copy.peers.insert(peer.to_string(), runs.clone());
        }
        copy
    }

    /// Forgets what `peer` sent (a new session with it starts).
    pub fn forget(&mut self, peer: &str) {
        self.peers.remove(peer);
    }

    /// Whether transaction `version` merged only `peer`'s changes.
    pub fn contains(&self, peer: &str, version: DbVersion) -> bool {
        let runs = self.peers.get(peer).map_or(&[][..], Vec::as_slice);
        let i = runs.partition_point(|r| r.1 < version.0);
        runs.get(i).is_some_and(|r| r.0 <= version.0)
    }

    /// Whether every transaction after `after` up to `upto` merged only
    /// `peer`'s changes (true for an empty span).
    pub fn covers(&self, peer: &str, after: DbVersion, upto: DbVersion) -> bool {
        if upto <= after {
            return true;
        }
        let runs = self.peers.get(peer).map_or(&[][..], Vec::as_slice);
        let i = runs.partition_point(|r| r.1 <= after.0);
        runs.get(i)
            .is_some_and(|r| r.0 <= after.0 + 1 && r.1 >= upto.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_cover_only_what_the_peer_sent() {
        let mut log = EchoLog::default();
        log.record("p", DbVersion(3), DbVersion(5));
        log.record("p", DbVersion(6), DbVersion(6));
        log.record("p", DbVersion(9), DbVersion(10));
        assert!(log.contains("p", DbVersion(4)));
        assert!(log.contains("p", DbVersion(6)));
        assert!(!log.contains("p", DbVersion(7)));
        assert!(!log.contains("q", DbVersion(4)));
        assert!(log.covers("p", DbVersion(2), DbVersion(6)));
        assert!(!log.covers("p", DbVersion(1), DbVersion(6)));
        assert!(!log.covers("p", DbVersion(2), DbVersion(9)));
        assert!(log.covers("p", DbVersion(8), DbVersion(10)));
        assert!(log.covers("q", DbVersion(8), DbVersion(8)));
        log.forget("p");
        assert!(!log.contains("p", DbVersion(4)));
    }
}
