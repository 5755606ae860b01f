//! Answering a peer's federation requests (`Action::Serve`), decided in
//! memory: what the tab can serve it serves as native nodes do — a fetch of
//! records' full state (cut between slots when over the answer's size, as
//! `shoal-store` federation.rs does) and an offer of one record's state
//! (merged like any change from the peer) — and the rest gets the refusal
//! the protocol defines, so the peer never waits for a timeout:
//!
//! - `Collections` and `Reconcile` (reconciliation walks) are refused as
//!   `Failed`: the tab keeps no reconciliation index. A daemon that meets
//!   the tab without a cursor for it (it would walk first) then falls back
//!   to a plain catch-up from the start of the tab's log, and its periodic
//!   anti-entropy walks with a tab fail (logged), costing nothing.
//! - `Level` (a sharing rule of the peer widened) is refused as `Failed`:
//!   only a walk the tab would start levels that, and it starts none.
//!
//! Pure: the replica (`idb_replica.rs`) loads the rows and merges offers.

use crate::sync::log_read::{LogRow, change_size};
use shoal_core::recon::StateDigest;
use shoal_core::sync::federation::{MAX_FETCH_IDS, MAX_PART_BYTES, RecordCut};
use shoal_core::sync::{Refusal, Request, Response};
use shoal_core::{Change, CollectionName, RecordId, RecordState};

/// The answer to a request the tab does not serve, or `None` for one it
/// does (`Fetch`, `Offer`).
pub fn refused(request: &Request) -> Option<Response> {
    match request {
        Request::Collections | Request::Reconcile { .. } | Request::Level { .. } => {
            Some(Response::Refused(Refusal::Failed))
        }
        Request::Fetch { ids, .. } if ids.len() > MAX_FETCH_IDS => {
            Some(Response::Refused(Refusal::BadRequest))
        }
        Request::Offer {
            collection,
            id,
            changes,
            ..
        } if changes
            .iter()
            .any(|c| c.collection != *collection || c.id != *id) =>
        {
            Some(Response::Refused(Refusal::BadRequest))
        }
        Request::Fetch { .. } | Request::Offer { .. } => None,
    }
}

/// The answer to a fetch of `ids`, given the row of each (`None`: never
/// seen here), in request order.
pub fn fetch_answer(
    ids: &[RecordId],
    rows: &[Option<LogRow>],
    resume: Option<RecordCut>,
) -> Response {
    let (mut changes, mut missing, mut cut) = (Vec::new(), Vec::new(), None);
    let mut bytes = 0usize;
    'records: for (n, (id, row)) in ids.iter().zip(rows).enumerate() {
        let Some(row) = row else {
            missing.push(id.clone());
            continue;
        };
        let from = match resume {
            Some(r) if n == 0 && r.position == row.position() => r.slots,
            _ => 0,
        };
        let mut took = false;
        for (index, (slot, version)) in row.record.state.slots().enumerate() {
            if index < from as usize {
                continue;
            }
            let change = Change {
                collection: row.collection.clone(),
                id: row.id.clone(),
                slot: slot.clone(),
                value: version.value.clone(),
                clock: version.clock,
                life: version.life,
                position: row.position(),
                pred: version.pred,
            };
            let size = change_size(&change);
            if !changes.is_empty() && bytes.saturating_add(size) > MAX_PART_BYTES {
                if took {
                    cut = Some(RecordCut {
                        position: row.position(),
                        slots: index as u32,
                    });
                }
                break 'records;
            }
            bytes += size;
            changes.push(change);
            took = true;
        }
    }
    Response::Records {
        changes,
        missing,
        cut,
    }
}

/// The answer to an offer once merged: whether the merge changed the
/// record, and (on the last part, `whole`) whether the record now holds
/// exactly the offered state.
pub fn offer_answer(
    changed: bool,
    id: &RecordId,
    whole: Option<StateDigest>,
    held: Option<&RecordState>,
) -> Response {
    let in_sync = match whole {
        Some(offered) => held.is_some_and(|state| StateDigest::of(id, state) == offered),
        None => false,
    };
    Response::Offered { changed, in_sync }
}

/// The record a request is about, for the replica to load.
pub fn offered_record(request: &Request) -> Option<(&CollectionName, &RecordId)> {
    match request {
        Request::Offer { collection, id, .. } => Some((collection, id)),
        _ => None,
    }
}
