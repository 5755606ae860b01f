//! Pulling records a walk found the peer holds more of
//! ([`pull_differences`]): fetching their full state in bounded parts
//! ([`fetch_and_merge`]) and merging each record as it arrives.
//!
//! It owns checking each answer is a record asked for and asking again for
//! what an answer left out; the request itself is `transfer.rs`'s
//! (`fetch_part`), the merge the replica's.

use crate::replica::Replica;
use crate::session_link::{FedError, Requester, blocking};
use crate::transfer::fetch_part;
use libp2p::PeerId;
use shoal_core::recon::Difference;
use shoal_core::sync::federation::MAX_FETCH_IDS;
use shoal_core::{Change, CollectionName, RecordId};
use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

/// Pulls and merges the records among `differences` the peer holds more
/// of. Returns how many merged records changed something here.
pub(crate) async fn pull_differences(
    replica: &Arc<dyn Replica>,
    requester: &Requester,
    peer: PeerId,
    collection: &CollectionName,
    differences: Vec<Difference>,
) -> Result<usize, FedError> {
    let wanted = differences
        .into_iter()
        .filter(|d| d.peer_has_more())
        .map(|d| d.id)
        .collect();
    fetch_and_merge(replica, requester, peer, collection, wanted).await
}

/// Fetches the full state of `ids` from the peer, checks each answer is a
/// record asked for, and merges them — a record too big for one answer in
/// parts, each merged as it comes (ids the peer does not have are skipped).
/// Returns how many merged records changed something here.
async fn fetch_and_merge(
    replica: &Arc<dyn Replica>,
    requester: &Requester,
    peer: PeerId,
    collection: &CollectionName,
    ids: Vec<RecordId>,
) -> Result<usize, FedError> {
    let mut changed = BTreeSet::new();
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
        changed.extend(merge_grouped(replica, peer, collection, changes).await?);
    }
    Ok(changed.len())
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
