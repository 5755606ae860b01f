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
//! Pure: the replica (`store_replica.rs`) loads the rows and merges offers.

use crate::sync::log_read::{LogRow, change_size};
use shoal_core::recon::StateDigest;
use shoal_core::sync::federation::{MAX_FETCH_IDS, MAX_PART_BYTES, RecordCut};
use shoal_core::sync::{Refusal, Request, Response};
use shoal_core::{CollectionName, RecordId, RecordState};

/// The answer to a request the tab does not serve, or `None` for one it
/// does (`Fetch`, `Offer`).
pub fn refused(request: &Request) -> Option<Response> {
    match request {
        Request::Collections
        | Request::Reconcile { .. }
        | Request::Level { .. }
        | Request::Filtered { .. } => Some(Response::Refused(Refusal::Failed)),
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
            let change = row.change(slot, version);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::StoredRecord;
    use shoal_core::sync::federation::Request;
    use shoal_core::{
        CanonicalJson, Clock, DbVersion, FieldName, Hlc, Life, LogPosition, SiteId, Slot,
        SlotVersion,
    };

    fn row(id: &str, version: u64, fields: usize, size: usize) -> LogRow {
        let v = |value: Option<String>| SlotVersion {
            value: value.map(|t| CanonicalJson::from_value(&serde_json::Value::String(t))),
            clock: Clock {
                hlc: Hlc::new(1, 0),
                site: SiteId(1),
            },
            life: Life(1),
            pred: None,
        };
        let mut slots = vec![(Slot::Life, v(None))];
        for f in 0..fields {
            let name = FieldName::new(format!("f{f}")).unwrap();
            slots.push((Slot::Field(name), v(Some("x".repeat(size)))));
        }
        LogRow {
            collection: CollectionName::new("c").unwrap(),
            id: RecordId::new(id).unwrap(),
            version: DbVersion(version),
            record: StoredRecord {
                state: RecordState::from_slots(slots),
                ..StoredRecord::default()
            },
        }
    }

    #[test]
    fn a_fetch_answers_found_records_names_missing_ones_and_cuts_big_ones() {
        let ids: Vec<RecordId> = ["a", "gone", "b"]
            .iter()
            .map(|i| RecordId::new(*i).unwrap())
            .collect();
        let rows = vec![Some(row("a", 3, 1, 10)), None, Some(row("b", 5, 2, 10))];
        let Response::Records {
            changes,
            missing,
            cut,
        } = fetch_answer(&ids, &rows, None)
        else {
            panic!("not records");
        };
        assert_eq!(changes.len(), 5);
        assert_eq!(missing, vec![RecordId::new("gone").unwrap()]);
        assert_eq!(cut, None);
        assert_eq!(
            changes[0].position,
            LogPosition {
                version: DbVersion(3),
                seq: 0
            }
        );
        // A record over one answer's size (three fields of half of it) is
        // cut, each answer resuming after the last cut, until it is whole.
        let big = [Some(row("big", 7, 3, MAX_PART_BYTES / 2))];
        let one = [RecordId::new("big").unwrap()];
        let (mut resume, mut parts, mut got) = (None, Vec::new(), 0);
        loop {
            let Response::Records { changes, cut, .. } = fetch_answer(&one, &big, resume) else {
                panic!("not records");
            };
            got += changes.len();
            parts.push(cut.map(|c| c.slots));
            match cut {
                Some(cut) => resume = Some(cut),
                None => break,
            }
        }
        assert_eq!(parts, vec![Some(2), Some(3), None]);
        assert_eq!(got, 4, "life and three fields, each once");
    }

    #[test]
    fn walks_are_refused_at_once_and_bad_requests_named() {
        let c = CollectionName::new("c").unwrap();
        for request in [
            Request::Collections,
            Request::Level {
                collection: c.clone(),
            },
            Request::Reconcile {
                collection: c.clone(),
                entries: Vec::new(),
            },
            Request::Filtered {
                collection: c.clone(),
                after: None,
            },
        ] {
            assert_eq!(refused(&request), Some(Response::Refused(Refusal::Failed)));
        }
        let too_many = Request::Fetch {
            collection: c.clone(),
            ids: vec![RecordId::new("a").unwrap(); MAX_FETCH_IDS + 1],
            resume: None,
        };
        assert_eq!(
            refused(&too_many),
            Some(Response::Refused(Refusal::BadRequest))
        );
        let other = row("b", 1, 0, 0)
            .record
            .state
            .to_changes(&c, &RecordId::new("b").unwrap());
        let offer = Request::Offer {
            collection: c,
            id: RecordId::new("a").unwrap(),
            changes: other,
            whole: None,
        };
        assert_eq!(
            refused(&offer),
            Some(Response::Refused(Refusal::BadRequest))
        );
        let id = RecordId::new("a").unwrap();
        let state = row("a", 1, 1, 1).record.state;
        let digest = StateDigest::of(&id, &state);
        assert_eq!(
            offer_answer(true, &id, Some(digest), Some(&state)),
            Response::Offered {
                changed: true,
                in_sync: true
            }
        );
        assert_eq!(
            offer_answer(false, &id, Some(digest), None),
            Response::Offered {
                changed: false,
                in_sync: false
            }
        );
    }
}
