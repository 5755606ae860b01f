//! The reconciliation a sync session runs beside its catch-up: the walk
//! that rejoins a peer after a lost cursor, anti-entropy, and the walks a
//! widened sharing rule asks for. This file owns starting one walk at a time
//! (or queueing one more), and what a walk reports when it ends: the cursor
//! a rejoin fast-forwards to, and whether the flows a widened rule opened
//! were levelled. The walk itself is `federate.rs`'s; deciding what a rule
//! opened is `rule_watch.rs`'s.

use crate::federate;
use crate::metrics::Counters;
use crate::replica::Replica;
use crate::rule_watch::Flow;
use crate::session_link::{Requester, SessionCmd};
use libp2p::PeerId;
use shoal_core::SyncCursor;
use shoal_core::recon::ReconLimits;
use std::sync::Arc;

/// The reconciliation a session runs beside its sync: once to rejoin after a
/// lost cursor (`rejoin`), then periodically as anti-entropy.
pub(crate) struct Levelling {
    /// Where each walk's duration is counted.
    pub(crate) counters: Counters,
    /// Asks the peer, on this session.
    pub(crate) requester: Requester,
    /// The next walk rejoins (the cursor was lost): it fast-forwards the
    /// cursor when it ends.
    pub(crate) rejoin: bool,
    /// The walk running, if any.
    pub(crate) task: Option<tokio::task::JoinHandle<()>>,
    /// A walk was asked for while one ran (a rule widened meanwhile): run
    /// another once it ends, since the running one may have passed the
    /// collection already.
    pub(crate) again: bool,
    /// Collections a widened rule opened inbound: the next walk to start
    /// covers them and reports how it ended.
    pub(crate) opened: Vec<Flow>,
}

impl Levelling {
    /// Whether a walk is running.
    pub(crate) fn running(&self) -> bool {
        self.task.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Starts a walk now, or right after the one running.
    pub(crate) fn start_again(
        &mut self,
        replica: Arc<dyn Replica>,
        peer: PeerId,
        limits: ReconLimits,
    ) {
        if self.running() {
            self.again = true;
        } else {
            self.start(replica, peer, limits);
        }
    }

    /// Starts a walk now, unless one is running.
    pub(crate) fn start(&mut self, replica: Arc<dyn Replica>, peer: PeerId, limits: ReconLimits) {
        if self.running() {
            return;
        }
        self.again = false;
        let rejoin = std::mem::take(&mut self.rejoin);
        let opened = std::mem::take(&mut self.opened);
        let requester = self.requester.clone();
        let counters = self.counters.clone();
        self.task = Some(tokio::spawn(async move {
            let started = std::time::Instant::now();
            let result = federate::level(&replica, &requester, peer, limits, rejoin).await;
            counters.reconciled(started.elapsed());
            match &result {
                Ok(done) => tracing::debug!(%peer, ?done, "levelled by reconciliation"),
                Err(e) => tracing::info!(%peer, "reconciliation with peer failed: {e}"),
            }
            if !opened.is_empty() {
                let ok = matches!(&result, Ok(done) if done.complete);
                let levelled = SessionCmd::RulesLevelled { flows: opened, ok };
                let _ = requester.send(levelled).await;
            }
            if !rejoin {
                return;
            }
            // Rejoining: persist the peer's head as our cursor if the walk
            // covered everything, else fall back to a full catch-up.
            let cursor = match result {
                Ok(done) if done.complete => {
                    let head = done.head;
                    let r = replica.clone();
                    let saved =
                        tokio::task::spawn_blocking(move || r.set_peer_cursor(&peer, head)).await;
                    match saved {
                        Ok(Ok(())) => head,
                        _ => SyncCursor::default(),
                    }
                }
                _ => SyncCursor::default(),
            };
            let _ = requester.send(SessionCmd::FastForward(cursor)).await;
        }));
    }
}

impl Drop for Levelling {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
