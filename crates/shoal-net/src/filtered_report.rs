//! The integrity report of a collection this node or the peer takes only
//! part of (a partial replica's filter, `docs/partial.md`), over a running
//! session: asks the peer page by page for its records the filter admits
//! (a full peer: those its filter for us admits; a partial peer: every
//! live record it holds) with `Request::Filtered`, checks each answer is
//! that, and hands it to the replica, which compares it with its own
//! records of the page's range that the same filter admits
//! (`shoal_core::recon::FilteredWalk`). A report that repairs pulls
//! what the peer holds more of after every page, through the ordinary
//! fetch.
//!
//! A peer without the `filtered-report` feature is never asked: the
//! report fails as [`FedError::PeerTooOld`] ("not covered"), never as
//! "in sync".

use crate::pull::pull_differences;
use crate::reconciliation::{OnDifference, Reconciliation};
use crate::replica::Replica;
use crate::session_link::{FedError, Requester, blocking};
use libp2p::PeerId;
use shoal_core::CollectionName;
use shoal_core::recon::{FilteredError, FilteredWalk, ReconLimits};
use shoal_core::sync::federation::{Request, Response};
use std::sync::Arc;

/// Reports (and with [`OnDifference::Pull`], repairs) `collection`
/// against the peer by its filtered listing; this side is "local".
/// Records outside the filter are neither listed nor counted, on either side.
pub(crate) async fn report(
    replica: &Arc<dyn Replica>,
    requester: &Requester,
    peer: PeerId,
    collection: &CollectionName,
    limits: ReconLimits,
    mode: OnDifference,
) -> Result<(Reconciliation, usize), FedError> {
    let start_bytes = requester.bytes();
    let mut walk = FilteredWalk::new(limits);
    let mut merged = 0;
    while let Some(after) = walk.next_request() {
        let request = Request::Filtered {
            collection: collection.clone(),
            after,
        };
        let Response::Filtered { items, next } = requester.ask(request).await? else {
            return Err(FedError::BadAnswer("not a filtered listing".into()));
        };
        let c = collection.clone();
        walk = blocking(replica, move |r| {
            Ok(r.filtered_receive(&peer, &c, &mut walk, items, next)
                .map(|()| walk))
        })
        .await?
        .map_err(|e| match e {
            FilteredError::Local(e) => FedError::Local(e.to_string()),
            other => FedError::BadAnswer(other.to_string()),
        })?;
        if mode == OnDifference::Pull {
            let differences = walk.take_differences();
            merged += pull_differences(replica, requester, peer, collection, differences).await?;
        }
    }
    let (outcome, counts) = walk.finish();
    let found = Reconciliation {
        collection: collection.clone(),
        outcome,
        filtered: Some(counts),
        bytes: requester.bytes() - start_bytes,
    };
    Ok((found, merged))
}
