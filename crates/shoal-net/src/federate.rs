//! Federation walks over running sessions: the integrity report (a
//! reconciliation walk over a whole collection; over a partial replica's
//! filter it is `filtered_report.rs`'s), and levelling a replica with a
//! peer by reconciliation — which is both anti-entropy and how a replica
//! that lost its cursor rejoins without fetching everything. The node's
//! calls that start them are `node_federation.rs`'s; one record's pull and
//! push, `transfer.rs`'s.
//!
//! Requests travel on the peer's one sync session (already authenticated, so
//! no extra handshake); every answer is checked against what was asked.
//! Decisions about sharing are the replica's; the walk is `shoal-core`'s.

use crate::pull::pull_differences;
use crate::reconciliation::{OnDifference, Reconciliation};
use crate::replica::Replica;
use crate::session_link::{FedError, Requester, blocking};
use libp2p::PeerId;
use shoal_core::recon::{Fingerprint, ReconLimits, Reconciler};
use shoal_core::sync::federation::{Request, Response};
use shoal_core::{CollectionName, Direction, SyncCursor};
use std::sync::Arc;

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
            let differences = walk.take_differences();
            merged += pull_differences(replica, requester, peer, collection, differences).await?;
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

/// What [`level`] finds of one collection the peer lists, on our side.
enum Ours {
    /// Our rules take nothing of it from the peer.
    NotReceived,
    /// Rejoining, one side holds under half the other's records: left to
    /// catch-up.
    Lopsided,
    /// Our root, to compare with the peer's.
    Root(Fingerprint),
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
        let theirs = shared.records;
        // Rejoining, a side holding under half the other's records makes
        // catch-up the cheaper way: it ships the peer's records, while a
        // walk lists at least every record the smaller side lacks — and
        // races the peer's own catch-up from us for both stores. Decided
        // from a count that stops just past twice the peer's, before the
        // root: a root may first index every record we hold, seconds of
        // store time at a million, which a new device's catch-up from us
        // would wait behind.
        let lopsided =
            move |ours: u64| ours.saturating_mul(2) < theirs || theirs.saturating_mul(2) < ours;
        let ours = blocking(replica, move |r| {
            if !r.allows(&peer, &name, Direction::FromPeer)? {
                return Ok(Ours::NotReceived);
            }
            if rejoin {
                let limit = theirs.saturating_mul(2).saturating_add(1);
                if lopsided(r.record_count_up_to(&name, limit)?) {
                    return Ok(Ours::Lopsided);
                }
            }
            Ok(Ours::Root(r.root_fingerprint(&name)?))
        })
        .await?;
        let root = match ours {
            Ours::NotReceived => continue,
            Ours::Lopsided => {
                done.complete = false;
                continue;
            }
            Ours::Root(root) => root,
        };
        if root.short() == shared.root {
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
