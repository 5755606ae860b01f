//! Federation over running sessions: the integrity report (a reconciliation
//! walk), the node's pull and push of one record (carried out by
//! `transfer.rs`), and levelling a replica with a peer
//! by reconciliation — which is both anti-entropy and how a replica that lost
//! its cursor rejoins without fetching everything.
//!
//! Requests travel on the peer's one sync session (already authenticated, so
//! no extra handshake); every answer is checked against what was asked.
//! Decisions about sharing are the replica's; the walk is `shoal-core`'s.

use crate::replica::{Replica, ReplicaError};
use crate::session_task::SessionCmd;
use crate::transfer::{self, Transfer, fetch_part};
use libp2p::PeerId;
use shoal_core::recon::{FilteredCounts, Outcome, ReconLimits, Reconciler};
use shoal_core::sync::federation::{
    MAX_FETCH_IDS, Refusal, Request, Response, SharedCollection, encoded_len,
};
use shoal_core::sync::version::Feature;
use shoal_core::{Change, CollectionName, Direction, RecordId, SyncCursor};
use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{mpsc, oneshot};

/// Why a federation request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FedError {
    /// No authenticated session with the peer (or it ended mid-request).
    #[error("peer unreachable")]
    Unreachable,
    /// The peer did not answer within the request timeout.
    #[error("timed out")]
    TimedOut,
    /// The peer refused the request.
    #[error("{0}")]
    Refused(Refusal),
    /// This node's own sharing rules forbid it.
    #[error("collection {0} is not shared with that peer in that direction (local rule)")]
    NotSharedHere(CollectionName),
    /// The peer answered something other than what was asked.
    #[error("the peer answered out of protocol: {0}")]
    BadAnswer(String),
    /// The local replica failed.
    #[error("local store: {0}")]
    Local(String),
    /// The peer's build lacks a feature the request needs (it predates
    /// it): the collection is not covered, rather than claimed in sync.
    #[error("not covered: the peer's build is too old (no {} feature)", .0.name())]
    PeerTooOld(Feature),
}

impl From<ReplicaError> for FedError {
    fn from(e: ReplicaError) -> Self {
        FedError::Local(e.to_string())
    }
}

/// Sends requests on one peer's session, counting payload bytes both ways.
#[derive(Debug, Clone)]
pub(crate) struct Requester {
    commands: mpsc::Sender<SessionCmd>,
    bytes: Arc<AtomicU64>,
}

impl Requester {
    pub(crate) fn new(commands: mpsc::Sender<SessionCmd>) -> Self {
        Self {
            commands,
            bytes: Arc::default(),
        }
    }

    pub(crate) async fn ask(&self, request: Request) -> Result<Response, FedError> {
        self.bytes
            .fetch_add(encoded_len(&request), Ordering::Relaxed);
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(SessionCmd::Request { request, reply })
            .await
            .map_err(|_| FedError::Unreachable)?;
        let response = answer.await.map_err(|_| FedError::Unreachable)??;
        self.bytes
            .fetch_add(encoded_len(&response), Ordering::Relaxed);
        match response {
            Response::Refused(refusal) => Err(FedError::Refused(refusal)),
            response => Ok(response),
        }
    }

    /// Passes a command to the session itself.
    pub(crate) async fn send(&self, command: SessionCmd) -> Result<(), FedError> {
        self.commands
            .send(command)
            .await
            .map_err(|_| FedError::Unreachable)
    }

    /// Payload bytes sent and received so far.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

/// Runs a blocking replica call off the async executor.
pub(crate) async fn blocking<T: Send + 'static>(
    replica: &Arc<dyn Replica>,
    f: impl FnOnce(&dyn Replica) -> Result<T, ReplicaError> + Send + 'static,
) -> Result<T, FedError> {
    let replica = replica.clone();
    tokio::task::spawn_blocking(move || f(replica.as_ref()))
        .await
        .map_err(|e| FedError::Local(format!("replica call panicked: {e}")))?
        .map_err(FedError::from)
}

/// What an integrity check between this node and a peer found for one collection.
#[derive(Debug, Clone)]
pub struct Reconciliation {
    /// The collection.
    pub collection: CollectionName,
    /// Differences, counts per status, round trips.
    pub outcome: Outcome,
    /// For a collection this node or the peer takes only part of (a
    /// partial replica's filter): the report compared only what that
    /// filter covers on each side, and these are the counts of records
    /// compared. `None`: a tree walk over the whole collection.
    pub filtered: Option<FilteredCounts>,
    /// Application payload bytes, both directions.
    pub bytes: u64,
}

/// What a walk does with the differences it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnDifference {
    /// Keep them in the outcome (the integrity report).
    Report,
    /// Pull, after each step, every record where the peer holds state we
    /// lack (anti-entropy); memory stays bounded by one step.
    Pull,
}

/// Walks `collection` with the peer; this side is "local" in the outcome.
/// Returns the walk and, with [`OnDifference::Pull`], the records merged.
pub(crate) async fn reconcile(
    replica: &Arc<dyn Replica>,
    requester: &Requester,
    peer: PeerId,
    collection: &CollectionName,
    limits: ReconLimits,
    mode: OnDifference,
) -> Result<(Reconciliation, usize), FedError> {
    let c = collection.clone();
    let (receives, sends) = blocking(replica, move |r| {
        Ok((
            r.allows(&peer, &c, Direction::FromPeer)?,
            r.allows(&peer, &c, Direction::ToPeer)?,
        ))
    })
    .await?;
    if !receives {
        return Err(FedError::NotSharedHere(collection.clone()));
    }
    let c = collection.clone();
    if blocking(replica, move |r| r.filtered_with(&peer, &c)).await? {
        // One of us takes only part of it: compare only what the filter covers.
        return crate::filtered_report::report(replica, requester, peer, collection, limits, mode)
            .await;
    }
    let start_bytes = requester.bytes();
    let c = collection.clone();
    // A collection we receive but do not send: the walk tells the peer
    // nothing of ours (no fingerprint, id, digest or flag) and compares the
    // peer's lists here.
    let mut walk = match sends {
        true => blocking(replica, move |r| r.recon_start(&c, limits)).await?,
        false => Reconciler::blind(limits),
    };
    if mode == OnDifference::Pull {
        // Differences are taken after every step: past the cap, ask again
        // rather than drop (a dropped one would never be pulled).
        walk.keep_every_difference();
    }
    let mut merged = 0;
    while let Some(entries) = walk.next_request() {
        let request = Request::Reconcile {
            collection: collection.clone(),
            entries,
        };
        let Response::Reconcile { entries, answered } = requester.ask(request).await? else {
            return Err(FedError::BadAnswer("not a reconciliation step".into()));
        };
        let c = collection.clone();
        walk = blocking(replica, move |r| {
            r.recon_receive(&c, &mut walk, entries, answered as usize)?;
            Ok(walk)
        })
        .await?;
        if mode == OnDifference::Pull {
            let wanted: Vec<RecordId> = walk
                .take_differences()
                .into_iter()
                .filter(|d| d.peer_has_more())
                .map(|d| d.id)
                .collect();
            merged += fetch_and_merge(replica, requester, peer, collection, wanted)
                .await?
                .0;
        }
    }
    let found = Reconciliation {
        collection: collection.clone(),
        outcome: walk.finish(),
        filtered: None,
        bytes: requester.bytes() - start_bytes,
    };
    Ok((found, merged))
}

/// Fetches the full state of `ids` from the peer, checks each answer is a
/// record asked for, and merges them — a record too big for one answer in
/// parts, each merged as it comes. Returns (records merged that changed
/// something, ids the peer does not have).
pub(crate) async fn fetch_and_merge(
    replica: &Arc<dyn Replica>,
    requester: &Requester,
    peer: PeerId,
    collection: &CollectionName,
    ids: Vec<RecordId>,
) -> Result<(usize, Vec<RecordId>), FedError> {
    let (mut changed, mut absent) = (BTreeSet::new(), Vec::new());
    let mut todo: VecDeque<RecordId> = ids.into();
    let mut resume = None;
    while !todo.is_empty() {
        let batch: Vec<RecordId> = todo.drain(..todo.len().min(MAX_FETCH_IDS)).collect();
        let (changes, missing, cut) =
            fetch_part(requester, collection, batch.clone(), resume).await?;
        let answered: BTreeSet<&RecordId> = changes
            .iter()
            .map(|c| &c.id)
            .chain(missing.iter())
            .collect();
        // A record cut part-way is asked again first, to continue; ids left
        // out for size are asked again after it.
        let cut_id = cut.and(changes.last()).map(|c| c.id.clone());
        let again = batch
            .iter()
            .filter(|id| !answered.contains(id))
            .cloned()
            .collect::<Vec<_>>();
        for id in again.into_iter().rev().chain(cut_id.clone()) {
            todo.push_front(id);
        }
        resume = cut;
        absent.extend(missing);
        changed.extend(merge_grouped(replica, peer, collection, changes).await?);
    }
    Ok((changed.len(), absent))
}

/// Merges changes record by record; returns the records that changed.
async fn merge_grouped(
    replica: &Arc<dyn Replica>,
    peer: PeerId,
    collection: &CollectionName,
    changes: Vec<Change>,
) -> Result<Vec<RecordId>, FedError> {
    let c = collection.clone();
    blocking(replica, move |r| {
        let mut changed = Vec::new();
        for record in changes.chunk_by(|a, b| a.id == b.id) {
            if r.merge_records(&peer, &c, record)? {
                changed.push(record[0].id.clone());
            }
        }
        Ok(changed)
    })
    .await
}

/// What levelling with a peer did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Levelled {
    /// The peer's log end when it listed its collections: everything it held
    /// then is now held here too (for the collections we receive).
    pub head: SyncCursor,
    /// Collections whose fingerprints differed and were walked.
    pub walked: usize,
    /// Records merged that changed something here.
    pub merged: usize,
    /// Whether every collection we receive was walked (a rejoin skips those
    /// where either side holds under half the other's records: a catch-up
    /// is cheaper).
    pub complete: bool,
    /// Payload bytes, both directions.
    pub bytes: u64,
}

/// Brings this replica level with everything the peer sends us: lists its
/// collections (one round trip when all agree), walks those whose root
/// fingerprints differ, and pulls every record where the peer holds state we
/// lack. Records we hold and it lacks are its own anti-entropy's to pull.
/// When `rejoin`ing, a collection where either side holds under half the
/// other's records is left to catch-up (and the result is not `complete`).
pub(crate) async fn level(
    replica: &Arc<dyn Replica>,
    requester: &Requester,
    peer: PeerId,
    limits: ReconLimits,
    rejoin: bool,
) -> Result<Levelled, FedError> {
    let start = requester.bytes();
    let Response::Collections { head, collections } = requester.ask(Request::Collections).await?
    else {
        return Err(FedError::BadAnswer("not a collection list".into()));
    };
    let mut done = Levelled {
        head,
        complete: true,
        ..Levelled::default()
    };
    for shared in collections {
        let name = shared.name.clone();
        let (receives, root) = blocking(replica, move |r| {
            Ok((
                r.allows(&peer, &name, Direction::FromPeer)?,
                r.root_fingerprint(&name)?,
            ))
        })
        .await?;
        if !receives || root.short() == shared.root {
            continue;
        }
        // Rejoining, a side holding under half the other's records makes
        // catch-up the cheaper way: it ships the peer's records, while a
        // walk lists at least every record the smaller side lacks — and
        // races the peer's own catch-up from us for both stores.
        if rejoin && (root.count * 2 < shared.records || shared.records * 2 < root.count) {
            done.complete = false;
            continue;
        }
        done.walked += 1;
        let walked = reconcile(
            replica,
            requester,
            peer,
            &shared.name,
            limits,
            OnDifference::Pull,
        )
        .await;
        let (found, merged) = match walked {
            // A partial peer too old for the filtered listing: this
            // collection is not levelled, the others still are.
            Err(FedError::PeerTooOld(_)) => {
                done.complete = false;
                continue;
            }
            other => other?,
        };
        done.merged += merged;
        // A difference not kept was not pulled: the walk did not cover it.
        done.complete &= found.outcome.dropped == 0;
    }
    done.bytes = requester.bytes() - start;
    Ok(done)
}

impl crate::node::Node {
    async fn requester(&self, peer: PeerId) -> Result<Requester, FedError> {
        self.session(peer)
            .await
            .map(Requester::new)
            .ok_or(FedError::Unreachable)
    }

    /// The integrity report for `collection` against `peer`: every record not
    /// in sync, classified, found by range-based set reconciliation.
    pub async fn reconcile(
        &self,
        peer: PeerId,
        collection: &CollectionName,
    ) -> Result<Reconciliation, FedError> {
        let requester = self.requester(peer).await?;
        let (replica, limits) = self.replica();
        let started = std::time::Instant::now();
        let (found, _) = reconcile(
            replica,
            &requester,
            peer,
            collection,
            limits,
            OnDifference::Report,
        )
        .await?;
        self.counters().reconciled(started.elapsed());
        Ok(found)
    }

    /// Pulls one record's full state from `peer` and merges it here. In a
    /// collection this node receives from the peer but does not send it,
    /// the record is asked about blind and fetched only if the peer listed
    /// it, so its id never reaches a peer that does not hold it.
    pub async fn pull_record(
        &self,
        peer: PeerId,
        collection: &CollectionName,
        id: &RecordId,
    ) -> Transfer {
        match self.requester(peer).await {
            Ok(requester) => {
                let (replica, limits) = self.replica();
                transfer::pull(replica, &requester, peer, collection, id, limits).await
            }
            Err(e) => Transfer::Failed(e),
        }
    }

    /// Pushes one record's full state to `peer`, which merges it.
    pub async fn push_record(
        &self,
        peer: PeerId,
        collection: &CollectionName,
        id: &RecordId,
    ) -> Transfer {
        match self.requester(peer).await {
            Ok(requester) => {
                transfer::push(self.replica().0, &requester, peer, collection, id).await
            }
            Err(e) => Transfer::Failed(e),
        }
    }

    /// The full state `peer` holds of one record — every slot version, as a
    /// pull would receive it — without merging anything here: `None` if the
    /// peer has never seen the record. Both sides' rules apply, as to a
    /// pull: a collection this node does not receive from the peer (also a
    /// local-only one) is [`FedError::NotSharedHere`] and nothing — not even
    /// the collection's name or the id — is sent; one it receives but does
    /// not send is asked about blind, the id named only if the peer listed
    /// it (else `None`); a collection the peer does not send us is
    /// [`FedError::Refused`].
    pub async fn peer_record(
        &self,
        peer: PeerId,
        collection: &CollectionName,
        id: &RecordId,
    ) -> Result<Option<Vec<Change>>, FedError> {
        let (replica, limits) = self.replica();
        let asking = transfer::asking(replica, peer, collection).await?;
        let requester = self.requester(peer).await?;
        transfer::peer_record(&requester, collection, id, asking, limits).await
    }

    /// The collections `peer` sends this node, with their root fingerprints
    /// and record counts.
    pub async fn peer_collections(&self, peer: PeerId) -> Result<Vec<SharedCollection>, FedError> {
        match self
            .requester(peer)
            .await?
            .ask(Request::Collections)
            .await?
        {
            Response::Collections { collections, .. } => Ok(collections),
            _ => Err(FedError::BadAnswer("not a collection list".into())),
        }
    }

    /// Levels this replica with `peer` now (what anti-entropy does periodically).
    pub async fn level_with(&self, peer: PeerId) -> Result<Levelled, FedError> {
        let requester = self.requester(peer).await?;
        let (replica, limits) = self.replica();
        level(replica, &requester, peer, limits, false).await
    }
}
