//! Levelling what a widened sharing rule held back. Cursors move past the
//! records a rule held back, so when a rule starts letting a collection flow
//! with a peer, only a reconciliation walk can move them. This file owns the
//! comparison behind that: the rules against the baseline persisted for the
//! peer (what they held back when this node last levelled with it, a
//! [`HeldFlows`]), which flows a session must level because of it, and when
//! the baseline moves — only once that levelling succeeded, so a failed walk
//! or a disconnect does not forget a widening, and one made while the peer
//! was away or the node stopped is levelled by the next session.
//!
//! It walks nothing and sends nothing: the session's shell starts the walks
//! and requests it asks for, and reports back how they ended.

use crate::replica::Replica;
use libp2p::PeerId;
use shoal_core::{CollectionName, Direction, HeldFlows, SharingRules};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One collection flowing one way.
pub(crate) type Flow = (CollectionName, Direction);

/// How long after a failed levelling a widened rule is tried again.
const RETRY: Duration = Duration::from_secs(5);

/// What the rules opened since the baseline, for the session to level now.
#[derive(Debug, Default)]
pub(crate) struct Opened {
    /// Collections that start flowing in: walk them with the peer.
    pub(crate) inbound: Vec<Flow>,
    /// Collections that start flowing out: ask the peer to level them.
    pub(crate) outbound: Vec<CollectionName>,
}

/// One session's watch on the sharing rules against the peer's baseline.
pub(crate) struct RuleWatch {
    replica: Arc<dyn Replica>,
    peer: PeerId,
    /// What the rules held back as the session started: the baseline for a
    /// peer without one (first contact, or met before baselines were kept).
    at_start: Option<HeldFlows>,
    /// The persisted baseline, loaded once the peer proved membership.
    baseline: Option<HeldFlows>,
    /// Flows being levelled now (a walk or a request in flight).
    in_flight: BTreeSet<Flow>,
    /// No new levelling before this, after one failed.
    quiet_until: Option<Instant>,
}

impl RuleWatch {
    /// Starts watching for `peer`, noting the rules as they stand.
    pub(crate) async fn new(replica: Arc<dyn Replica>, peer: PeerId) -> Self {
        let at_start = read_rules(&replica)
            .await
            .map(|rules| rules.held_flows(&peer.to_string()));
        Self {
            replica,
            peer,
            at_start,
            baseline: None,
            in_flight: BTreeSet::new(),
            quiet_until: None,
        }
    }

    /// Loads the peer's baseline, or records the rules as they stood when
    /// the session started as its first one (a peer never levelled with:
    /// its catch-up moves what they allow). Called once the peer has proved
    /// membership, before any of its changes are applied (a stranger leaves
    /// no row behind); whether the baseline is in hand.
    pub(crate) async fn load(&mut self) -> bool {
        if self.baseline.is_some() {
            return true;
        }
        let peer = self.peer;
        let replica = self.replica.clone();
        let loaded = match tokio::task::spawn_blocking(move || replica.levelled_rules(&peer)).await
        {
            Ok(Ok(loaded)) => loaded,
            Ok(Err(e)) => {
                tracing::warn!(%peer, "cannot read the rules last levelled: {e}");
                return false;
            }
            Err(_) => return false,
        };
        let baseline = match loaded {
            Some(baseline) => baseline,
            None => {
                let first = match self.at_start.take() {
                    Some(first) => first,
                    None => match read_rules(&self.replica).await {
                        Some(rules) => rules.held_flows(&peer.to_string()),
                        None => return false,
                    },
                };
                if !self.persist(&first).await {
                    return false;
                }
                first
            }
        };
        self.baseline = Some(baseline);
        true
    }

    /// Compares the rules with the baseline (loading it first if need be):
    /// what they hold back more is added to it at once; what they let flow
    /// that it held back is returned, to be levelled.
    pub(crate) async fn check(&mut self) -> Opened {
        if !self.load().await {
            return Opened::default();
        }
        let Some(rules) = read_rules(&self.replica).await else {
            return Opened::default();
        };
        let peer_text = self.peer.to_string();
        let held_now = rules.held_flows(&peer_text);
        // A narrowed rule: holding more back is safe to record at once.
        self.hold(&held_now).await;
        if self.quiet_until.is_some_and(|t| Instant::now() < t) {
            return Opened::default();
        }
        let Some(baseline) = self.baseline.as_ref() else {
            return Opened::default();
        };
        let mut opened = Opened::default();
        for flow in baseline.opened(&rules, &peer_text) {
            if !self.in_flight.insert(flow.clone()) {
                continue;
            }
            match flow.1 {
                Direction::FromPeer => opened.inbound.push(flow),
                Direction::ToPeer => opened.outbound.push(flow.0),
            }
        }
        if !opened.inbound.is_empty() || !opened.outbound.is_empty() {
            tracing::info!(peer = %self.peer, ?opened, "a sharing rule widened: levelling with the peer");
        }
        opened
    }

    /// A read of the log for the peer passed over `collections` (the rules
    /// do not send them): they join the baseline at once, as a narrowed
    /// rule does in [`check`](Self::check), before the read is sent and the
    /// peer's cursor can move past them. Else a rule narrowed and widened
    /// again between two checks (a tick is 500 ms; the CLI sets rules in
    /// milliseconds) would leave what the narrowed rule passed over behind
    /// the cursor, never levelled. Whether they are recorded: when not (the
    /// baseline could not be read or written), the read must not be sent.
    pub(crate) async fn held_back(&mut self, collections: &BTreeSet<CollectionName>) -> bool {
        if collections.is_empty() {
            return true;
        }
        if !self.load().await {
            return false;
        }
        let passed: HeldFlows = collections
            .iter()
            .map(|collection| (collection.clone(), Direction::ToPeer))
            .collect();
        self.hold(&passed).await
    }

    /// Adds `flows` to the loaded baseline and persists it if that added
    /// anything; whether the baseline, as persisted, holds them.
    async fn hold(&mut self, flows: &HeldFlows) -> bool {
        let Some(baseline) = self.baseline.as_mut() else {
            return false;
        };
        if !baseline.hold(flows) {
            return true;
        }
        let baseline = baseline.clone();
        self.persist(&baseline).await
    }

    /// The levelling of `flows` ended: on success the baseline forgets those
    /// the rules still allow (and is persisted); on failure they are tried
    /// again after a pause, or by the next session.
    pub(crate) async fn levelled(&mut self, flows: Vec<Flow>, ok: bool) {
        for flow in &flows {
            self.in_flight.remove(flow);
        }
        if !ok {
            self.quiet_until = Some(Instant::now() + RETRY);
            return;
        }
        let Some(rules) = read_rules(&self.replica).await else {
            return;
        };
        let peer_text = self.peer.to_string();
        let Some(baseline) = self.baseline.as_mut() else {
            return;
        };
        let allowed = flows
            .iter()
            .filter(|(c, d)| rules.allows(&peer_text, c, *d));
        baseline.release(allowed);
        let baseline = baseline.clone();
        self.persist(&baseline).await;
    }

    /// Persists `baseline` for the peer; whether it was.
    async fn persist(&self, baseline: &HeldFlows) -> bool {
        let (replica, peer, held) = (self.replica.clone(), self.peer, baseline.clone());
        match tokio::task::spawn_blocking(move || replica.set_levelled_rules(&peer, &held)).await {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                tracing::warn!(%peer, "cannot record the rules levelled: {e}");
                false
            }
            Err(_) => false,
        }
    }
}

async fn read_rules(replica: &Arc<dyn Replica>) -> Option<SharingRules> {
    let replica = replica.clone();
    tokio::task::spawn_blocking(move || replica.sharing_rules())
        .await
        .ok()
        .and_then(Result::ok)
}
