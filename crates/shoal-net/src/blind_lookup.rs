//! Asking a peer whether it holds one record without naming it: runs the
//! core's [`BlindLookup`] over the peer's session, as reconciliation steps
//! that say nothing of this node's records but a coarse range (see
//! `shoal_core::recon::lookup`). Used by pull and Sync Details in a
//! collection this node receives from the peer but does not send it.
//!
//! Deciding when to ask blind is `transfer.rs`'s; fetching the record the
//! peer listed is too. Nothing here reads or writes the replica.

use crate::session_link::{FedError, Requester};
use shoal_core::recon::{BlindLookup, ReconLimits};
use shoal_core::sync::federation::{Request, Response};
use shoal_core::{CollectionName, RecordId};

/// Whether the peer listed record `id` of `collection` (alive or deleted)
/// when asked only for the lists of the ranges a [`BlindLookup`] asks.
pub(crate) async fn peer_lists(
    requester: &Requester,
    collection: &CollectionName,
    id: &RecordId,
    limits: ReconLimits,
) -> Result<bool, FedError> {
    let mut lookup = BlindLookup::new(id.clone(), limits);
    while let Some(entries) = lookup.next_request() {
        let request = Request::Reconcile {
            collection: collection.clone(),
            entries,
        };
        let Response::Reconcile { entries, answered } = requester.ask(request).await? else {
            return Err(FedError::BadAnswer("not a reconciliation step".into()));
        };
        lookup
            .receive(entries, answered as usize)
            .map_err(|e| FedError::BadAnswer(e.to_string()))?;
    }
    Ok(lookup.finish().is_some())
}
