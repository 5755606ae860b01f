//! The federation calls of a running [`Node`]: the integrity report,
//! pulling and pushing one record, reading a peer's copy of one, listing
//! what a peer sends, and levelling with a peer now.
//!
//! Each finds the peer's session and hands the work to `federate.rs`
//! (walks, levelling) or `transfer.rs` (one record); nothing is decided
//! here.

use crate::federate::{Levelled, level, reconcile};
use crate::node::Node;
use crate::reconciliation::{OnDifference, Reconciliation};
use crate::session_link::{FedError, Requester};
use crate::transfer::{self, Transfer};
use libp2p::PeerId;
use shoal_core::sync::federation::{Request, Response, SharedCollection};
use shoal_core::{Change, CollectionName, RecordId};

impl Node {
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
