//! Which of this store's transactions merged a batch from which peer, so
//! that the log read for that peer can leave those slot versions out: the
//! peer sent them, so it holds them (or newer). Without this, every batch a
//! node catches up is read back and sent to the peer it came from, which
//! merges it as "not newer" — doubling the work of both sides.
//!
//! It is memory only, scoped to one session with the peer (the node forgets a
//! peer's echoes when a new session with it starts: a peer restored from a
//! backup under the same identity no longer holds what it once sent), and
//! bounded: forgetting costs only the old echo, never a change. It owns the bookkeeping; the
//! read that skips is `log.rs`'s.

use shoal_core::DbVersion;
use std::collections::HashMap;

/// Most separate runs of versions remembered per peer; older runs are
/// forgotten first.
const MAX_RUNS: usize = 256;

/// Per peer, the db_versions whose transactions merged only that peer's
/// changes, as sorted, disjoint runs `(first, last)`.
#[derive(Debug, Default)]
pub(crate) struct EchoLog {
    peers: HashMap<String, Vec<(u64, u64)>>,
}

impl EchoLog {
    /// Notes that transaction `version` merged changes received from `peer`
    /// (and nothing else).
    pub(crate) fn record(&mut self, peer: &str, version: DbVersion) {
        let v = version.0;
        let runs = match self.peers.get_mut(peer) {
            Some(runs) => runs,
            None => self.peers.entry(peer.to_string()).or_default(),
        };
        match runs.last_mut() {
            Some(last) if last.1 + 1 == v => last.1 = v,
            Some(last) if last.1 >= v => {}
            _ => runs.push((v, v)),
        }
        if runs.len() > MAX_RUNS {
            runs.remove(0);
        }
    }

    /// Forgets what `peer` sent: a new session with it starts, and the peer
    /// may no longer hold it (a node restored from a backup under the same
    /// identity). Only a session's own echoes are left out of its reads.
    pub(crate) fn forget(&mut self, peer: &str) {
        self.peers.remove(peer);
    }

    /// The transactions that merged `peer`'s batches.
    pub(crate) fn of(&self, peer: &str) -> PeerEchoes<'_> {
        PeerEchoes(self.peers.get(peer).map_or(&[], Vec::as_slice))
    }
}

/// One peer's runs of [`EchoLog`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct PeerEchoes<'a>(&'a [(u64, u64)]);

impl PeerEchoes<'_> {
    /// Whether transaction `version` merged only the peer's changes.
    pub(crate) fn contains(self, version: DbVersion) -> bool {
        let i = self.0.partition_point(|r| r.1 < version.0);
        self.0.get(i).is_some_and(|r| r.0 <= version.0)
    }

    /// Whether every transaction after `after` up to `upto` merged only the
    /// peer's changes (true for an empty span).
    pub(crate) fn covers(self, after: DbVersion, upto: DbVersion) -> bool {
        if upto <= after {
            return true;
        }
        let i = self.0.partition_point(|r| r.1 <= after.0);
        self.0
            .get(i)
            .is_some_and(|r| r.0 <= after.0 + 1 && r.1 >= upto.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_grow_and_cover_only_what_they_hold() {
        let mut log = EchoLog::default();
        for v in [3, 4, 5, 8] {
            log.record("p", DbVersion(v));
        }
        assert!(log.of("p").contains(DbVersion(4)));
        assert!(!log.of("p").contains(DbVersion(6)));
        assert!(!log.of("q").contains(DbVersion(4)));
        assert!(log.of("p").covers(DbVersion(2), DbVersion(5)));
        assert!(log.of("p").covers(DbVersion(4), DbVersion(5)));
        assert!(
            !log.of("p").covers(DbVersion(1), DbVersion(5)),
            "2 is not the peer's"
        );
        assert!(!log.of("p").covers(DbVersion(2), DbVersion(6)));
        assert!(log.of("p").covers(DbVersion(7), DbVersion(8)));
        assert!(
            log.of("p").covers(DbVersion(9), DbVersion(9)),
            "nothing after 9"
        );
        assert!(!log.of("q").covers(DbVersion(2), DbVersion(3)));
    }

    #[test]
    fn the_oldest_runs_are_forgotten() {
        let mut log = EchoLog::default();
        for v in 0..(MAX_RUNS as u64 + 10) {
            log.record("p", DbVersion(v * 2));
        }
        assert!(!log.of("p").contains(DbVersion(0)));
        assert!(log.of("p").contains(DbVersion((MAX_RUNS as u64 + 9) * 2)));
    }
}
