//! Moving one record between this node and a peer, in bounded parts: pull
//! (fetch its full state and merge it), push (offer ours for the peer to
//! merge), and reading the peer's state without merging (for the sync details
//! view). A record bigger than one message travels in parts, in slot order
//! (its life first): a fetch answer says where it cut the record and the next
//! request resumes there; an offer is sent in parts, the last carrying the
//! digest of the whole state so the peer can say whether it is now in sync.
//! Each part is merged as it arrives, so no message and no merge ever holds
//! more than one part; the verdict needs the peer's whole state, gathered
//! (one record) on the pulling side.
//!
//! Both sides' rules apply to pull and to reading the peer's state: a
//! collection this node does not receive from the peer is not asked about at
//! all; one it receives but does not send is asked about blind
//! (`blind_lookup.rs`): the record is fetched by id only once the peer
//! listed it, so its id never crosses first.
//!
//! The walk that finds records to move is `federate.rs`'s; sharing decisions
//! are the replica's.

use crate::blind_lookup;
use crate::replica::Replica;
use crate::session_link::{FedError, Requester, blocking};
use libp2p::PeerId;
use shoal_core::recon::{ReconLimits, StateDigest};
use shoal_core::sync::federation::{
    MAX_PART_BYTES, RecordCut, Refusal, Request, Response, encoded_len,
};
use shoal_core::{
    Change, CollectionName, Direction, LogPosition, RecordId, RecordState, SlotVersion,
};
use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The result of pulling or pushing one record, with its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transfer {
    /// The record's state crossed and changed the receiving side.
    Merged,
    /// Both sides already held the same state ("already in sync").
    AlreadyInSync,
    /// Nothing to merge: the receiving side already holds newer state than
    /// the sender (the other direction would move something).
    NothingNew,
    /// The peer has never seen the record.
    PeerDoesNotHaveIt,
    /// This node has never seen the record (push).
    NotHere,
    /// The transfer did not happen.
    Failed(FedError),
}

impl Transfer {
    /// Whether the transfer completed: merged, or nothing left to merge.
    pub fn is_success(&self) -> bool {
        matches!(
            self,
            Transfer::Merged | Transfer::AlreadyInSync | Transfer::NothingNew
        )
    }

    /// A short machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Transfer::Merged => "merged",
            Transfer::AlreadyInSync => "already-in-sync",
            Transfer::NothingNew => "nothing-new",
            Transfer::PeerDoesNotHaveIt => "peer-does-not-have-it",
            Transfer::NotHere => "not-found-here",
            Transfer::Failed(FedError::Unreachable) => "peer-unreachable",
            Transfer::Failed(FedError::TimedOut) => "timed-out",
            Transfer::Failed(FedError::Refused(Refusal::NotShared)) => "not-shared-with-you",
            Transfer::Failed(FedError::NotSharedHere(_)) => "not-shared",
            Transfer::Failed(FedError::PeerTooOld(_)) => "peer-too-old",
            Transfer::Failed(_) => "failed",
        }
    }
}

impl fmt::Display for Transfer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Transfer::Merged => f.write_str("merged"),
            Transfer::AlreadyInSync => f.write_str("already in sync"),
            Transfer::NothingNew => {
                f.write_str("nothing new: the receiving side already holds newer state")
            }
            Transfer::PeerDoesNotHaveIt => f.write_str("peer does not have it"),
            Transfer::NotHere => f.write_str("not found on this node"),
            Transfer::Failed(e) => write!(f, "{e}"),
        }
    }
}

/// One answer to a fetch of `ids` (the first continued after `resume`),
/// checked: only records asked for, a cut only inside the last record
/// answered, and progress (something answered; a continued record moved on).
pub(crate) async fn fetch_part(
    requester: &Requester,
    collection: &CollectionName,
    ids: Vec<RecordId>,
    resume: Option<RecordCut>,
) -> Result<(Vec<Change>, Vec<RecordId>, Option<RecordCut>), FedError> {
    let asked: BTreeSet<RecordId> = ids.iter().cloned().collect();
    let first = ids.first().cloned();
    let request = Request::Fetch {
        collection: collection.clone(),
        ids,
        resume,
    };
    let Response::Records {
        changes,
        missing,
        cut,
    } = requester.ask(request).await?
    else {
        return Err(FedError::BadAnswer("not records".into()));
    };
    let stray = changes
        .iter()
        .find(|c| &c.collection != collection || !asked.contains(&c.id))
        .map(|c| format!("{}/{} was not asked for", c.collection, c.id))
        .or_else(|| {
            missing
                .iter()
                .find(|id| !asked.contains(id))
                .map(|id| format!("{id} was not asked for"))
        });
    if let Some(stray) = stray {
        return Err(FedError::BadAnswer(stray));
    }
    if changes.is_empty() && missing.is_empty() {
        return Err(FedError::BadAnswer("no record answered".into()));
    }
    if let Some(cut) = cut {
        let last = changes.last().filter(|c| c.position == cut.position);
        if cut.slots == 0 || last.is_none() {
            return Err(FedError::BadAnswer("a cut outside the last record".into()));
        }
        // Continuing the same record at the same place must move forward.
        let continued = resume.filter(|r| r.position == cut.position);
        if continued.is_some_and(|r| r.slots >= cut.slots)
            && changes.first().map(|c| &c.id) == first.as_ref()
        {
            return Err(FedError::BadAnswer("a part that does not move on".into()));
        }
    }
    Ok((changes, missing, cut))
}

/// The peer's state of one record, gathered part by part (restarted when the
/// record moved on the peer between parts). `on_part` sees each part as it
/// arrives (to merge it). `None` if the peer has never seen the record.
async fn fetch_record<F, Fut>(
    requester: &Requester,
    collection: &CollectionName,
    id: &RecordId,
    mut on_part: F,
) -> Result<Option<RecordState>, FedError>
where
    F: FnMut(Vec<Change>) -> Fut,
    Fut: std::future::Future<Output = Result<(), FedError>>,
{
    let (mut theirs, mut at, mut resume) = (RecordState::new(), None::<LogPosition>, None);
    loop {
        let (changes, missing, cut) =
            fetch_part(requester, collection, vec![id.clone()], resume).await?;
        let Some(first) = changes.first() else {
            return match resume.is_none() && missing.contains(id) {
                true => Ok(None),
                false => Err(FedError::BadAnswer(format!(
                    "the answer is not {collection}/{id}"
                ))),
            };
        };
        if at.is_some_and(|p| p != first.position) {
            // Rewritten on the peer since the last part: it came again whole.
            theirs = RecordState::new();
        }
        at = Some(first.position);
        for c in &changes {
            theirs.apply(
                c.slot.clone(),
                SlotVersion {
                    value: c.value.clone(),
                    clock: c.clock,
                    life: c.life,
                    pred: c.pred,
                },
            );
        }
        on_part(changes).await?;
        match cut {
            Some(cut) => resume = Some(cut),
            None => return Ok(Some(theirs)),
        }
    }
}

/// How this node may ask the peer about one of its records, by its own rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Asking {
    /// A collection it sends the peer too: name the record (the peer
    /// receives our records of it anyway).
    ById,
    /// A collection it receives but does not send: ask blind, and name the
    /// record only once the peer listed it.
    Blind,
}

/// How this node's rules let it ask `peer` about a record of `collection`:
/// [`FedError::NotSharedHere`] for one it does not receive from the peer
/// (also a local-only one), before anything is sent.
pub(crate) async fn asking(
    replica: &Arc<dyn Replica>,
    peer: PeerId,
    collection: &CollectionName,
) -> Result<Asking, FedError> {
    let c = collection.clone();
    let (receives, sends) = blocking(replica, move |r| {
        Ok((
            r.allows(&peer, &c, Direction::FromPeer)?,
            r.allows(&peer, &c, Direction::ToPeer)?,
        ))
    })
    .await?;
    match (receives, sends) {
        (false, _) => Err(FedError::NotSharedHere(collection.clone())),
        (true, true) => Ok(Asking::ById),
        (true, false) => Ok(Asking::Blind),
    }
}

/// Whether the record may be fetched by id: always when asking by id (the
/// fetch answers whether the peer has it), and when asking blind only if
/// the peer listed it.
async fn may_fetch(
    requester: &Requester,
    collection: &CollectionName,
    id: &RecordId,
    asking: Asking,
    limits: ReconLimits,
) -> Result<bool, FedError> {
    match asking {
        Asking::ById => Ok(true),
        Asking::Blind => blind_lookup::peer_lists(requester, collection, id, limits).await,
    }
}

/// The full state the peer holds of one record, as changes in slot order
/// (`None` if it has never seen it); nothing is merged here. `asking` is
/// what [`asking`] allowed.
pub(crate) async fn peer_record(
    requester: &Requester,
    collection: &CollectionName,
    id: &RecordId,
    asking: Asking,
    limits: ReconLimits,
) -> Result<Option<Vec<Change>>, FedError> {
    if !may_fetch(requester, collection, id, asking, limits).await? {
        return Ok(None);
    }
    let state = fetch_record(requester, collection, id, |_| async { Ok(()) }).await?;
    Ok(state.map(|state| state.to_changes(collection, id)))
}

/// Pulls one record from the peer and merges it, as far as this node's
/// rules let it ask ([`asking`]).
pub(crate) async fn pull(
    replica: &Arc<dyn Replica>,
    requester: &Requester,
    peer: PeerId,
    collection: &CollectionName,
    id: &RecordId,
    limits: ReconLimits,
) -> Transfer {
    let fetch = match asking(replica, peer, collection).await {
        Ok(asking) => may_fetch(requester, collection, id, asking, limits).await,
        Err(e) => Err(e),
    };
    match fetch {
        Ok(true) => {}
        Ok(false) => return Transfer::PeerDoesNotHaveIt,
        Err(e) => return Transfer::Failed(e),
    }
    let changed = AtomicBool::new(false);
    let merge = |changes: Vec<Change>| {
        let (c, changed) = (collection.clone(), &changed);
        async move {
            if blocking(replica, move |r| r.merge_records(&peer, &c, &changes)).await? {
                changed.store(true, Ordering::Relaxed);
            }
            Ok(())
        }
    };
    let theirs = match fetch_record(requester, collection, id, merge).await {
        Ok(Some(theirs)) => StateDigest::of(id, &theirs),
        Ok(None) => return Transfer::PeerDoesNotHaveIt,
        Err(e) => return Transfer::Failed(e),
    };
    if changed.into_inner() {
        return Transfer::Merged;
    }
    let (c, i) = (collection.clone(), id.clone());
    let ours = blocking(replica, move |r| {
        let held = r.record_changes(&c, &i)?.unwrap_or_default();
        Ok(StateDigest::of_changes(&i, &held))
    })
    .await;
    match ours {
        Ok(ours) if ours == theirs => Transfer::AlreadyInSync,
        Ok(_) => Transfer::NothingNew,
        Err(e) => Transfer::Failed(e),
    }
}

/// Splits a record's changes into parts of about [`MAX_PART_BYTES`] (at
/// least one change each; an empty record is one empty part).
fn parts(changes: Vec<Change>) -> Vec<Vec<Change>> {
    let mut parts = vec![Vec::new()];
    let mut bytes = 0;
    for change in changes {
        // Its own encoding and its `pred` in the message's tail (`ChangeLayout`).
        let size = (encoded_len(&change) + encoded_len(&change.pred)) as usize;
        let current = parts.last_mut().expect("never empty");
        if !current.is_empty() && bytes + size > MAX_PART_BYTES {
            parts.push(Vec::new());
            bytes = 0;
        }
        bytes += size;
        parts.last_mut().expect("never empty").push(change);
    }
    parts
}

/// Offers one record's full state to the peer, which merges it (only for a
/// collection this node sends the peer).
pub(crate) async fn push(
    replica: &Arc<dyn Replica>,
    requester: &Requester,
    peer: PeerId,
    collection: &CollectionName,
    id: &RecordId,
) -> Transfer {
    let (c, i) = (collection.clone(), id.clone());
    let local = blocking(replica, move |r| {
        // A partial peer is offered only records its filters admit.
        Ok((
            r.allows(&peer, &c, Direction::ToPeer)? && r.admits(&peer, &c, &i)?,
            r.record_changes(&c, &i)?,
        ))
    })
    .await;
    let changes = match local {
        Ok((false, _)) => return Transfer::Failed(FedError::NotSharedHere(collection.clone())),
        Ok((true, None)) => return Transfer::NotHere,
        Ok((true, Some(changes))) => changes,
        Err(e) => return Transfer::Failed(e),
    };
    let whole = StateDigest::of_changes(id, &changes);
    let parts = parts(changes);
    let (mut changed, mut in_sync) = (false, false);
    let count = parts.len();
    for (n, part) in parts.into_iter().enumerate() {
        let last = n + 1 == count;
        let request = Request::Offer {
            collection: collection.clone(),
            id: id.clone(),
            changes: part,
            whole: last.then_some(whole),
        };
        match requester.ask(request).await {
            Ok(Response::Offered {
                changed: c,
                in_sync: s,
            }) => {
                changed |= c;
                in_sync = s;
            }
            Ok(_) => return Transfer::Failed(FedError::BadAnswer("not an offer's answer".into())),
            Err(e) => return Transfer::Failed(e),
        }
    }
    match (changed, in_sync) {
        (true, _) => Transfer::Merged,
        (false, true) => Transfer::AlreadyInSync,
        (false, false) => Transfer::NothingNew,
    }
}
