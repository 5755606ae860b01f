//! The store's side of federation: answering a peer's requests (the
//! collections shared with it, reconciliation steps, full record states,
//! offered records) under the sharing rules, and the local reads and merges
//! the requesting side needs.
//!
//! Every answer is decided here from the rules as stored; the walk itself is
//! the core's `recon` module, and the transport is the network layer's.

use crate::error::StoreError;
use crate::partial::{PeerFilter, Verdict, record_data};
use crate::parts::{Budget, Taken, row_of};
use crate::recon_snapshot::ReconSnapshot;
use crate::rows;
use crate::{ApplyReport, Store};
use shoal_core::recon::{Node, ReconLimits, ReconView, StateDigest, respond};
use shoal_core::sync::federation::{
    MAX_FETCH_IDS, RecordCut, Refusal, Request, Response, SharedCollection,
};
use shoal_core::{Change, CollectionName, Direction, RecordId, SyncCursor};

/// Most bytes of record state one [`Response::Records`] (or one part of an
/// offer) carries: the first change always fits, a record that does not fit
/// whole is cut and continued in the next answer, and ids not answered are
/// asked again.
pub const MAX_RECORDS_BYTES: usize = shoal_core::sync::federation::MAX_PART_BYTES;

impl Store {
    /// A view of `collection` for reconciliation, its tree built if needed.
    pub fn recon_view(
        &mut self,
        collection: &CollectionName,
    ) -> Result<ReconSnapshot<'_>, StoreError> {
        self.notice_other_commits()?;
        if self.recon.keys_indexed_upto != Some(self.db_version) {
            crate::recon_index::catch_up_keys(&mut self.db, self.db_version.0 as i64)?;
            self.recon.keys_indexed_upto = Some(self.db_version);
        }
        let cid = self.collection_id(collection)?;
        self.recon.view(&self.db.conn, cid, self.db_version)
    }

    /// Every collection this store has, by name.
    pub fn collection_names(&self) -> Result<Vec<CollectionName>, StoreError> {
        let mut stmt = self
            .db
            .conn
            .prepare_cached("SELECT name FROM collections ORDER BY name")?;
        let names: Vec<String> = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(names
            .into_iter()
            .map(CollectionName::new)
            .collect::<Result<_, _>>()?)
    }

    /// Whether any record (live or deleted) is stored.
    pub fn has_records(&self) -> Result<bool, StoreError> {
        Ok(self
            .db
            .conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM records)")?
            .query_row([], |r| r.get(0))?)
    }

    /// Every slot version of one record, as changes (for a peer to merge);
    /// `None` if the record was never seen here.
    pub fn record_changes(
        &self,
        collection: &CollectionName,
        id: &RecordId,
    ) -> Result<Option<Vec<Change>>, StoreError> {
        let Some(state) = self.record_state(collection, id)? else {
            return Ok(None);
        };
        Ok(Some(state.to_changes(collection, id)))
    }

    /// Merges full record states received from `peer` for `collection`,
    /// unless this store does not receive that collection from it
    /// ([`StoreError::NotShared`]).
    pub fn merge_from_peer(
        &mut self,
        peer: &str,
        collection: &CollectionName,
        changes: &[Change],
    ) -> Result<ApplyReport, StoreError> {
        if !self
            .sharing()?
            .allows(peer, collection, Direction::FromPeer)
        {
            return Err(StoreError::NotShared {
                collection: collection.to_string(),
            });
        }
        if let Some(stray) = changes.iter().find(|c| &c.collection != collection) {
            return Err(StoreError::NotShared {
                collection: stray.collection.to_string(),
            });
        }
        self.apply_records_from(peer, changes)
    }

    /// Answers a federation request from `peer`, with what merging an
    /// offered record did (for the caller to announce). Never fails: a local
    /// error becomes [`Refusal::Failed`] (and is logged).
    pub fn serve_request(
        &mut self,
        peer: &str,
        request: Request,
        limits: &ReconLimits,
    ) -> (Response, Option<ApplyReport>) {
        let mut merged = None;
        let response = match self.try_serve(peer, request, limits, &mut merged) {
            Ok(response) => response,
            Err(StoreError::NotShared { .. }) => Response::Refused(Refusal::NotShared),
            Err(StoreError::Invalid(_)) => Response::Refused(Refusal::BadRequest),
            Err(error) => {
                tracing::warn!(%peer, "cannot serve a federation request: {error}");
                Response::Refused(Refusal::Failed)
            }
        };
        (response, merged)
    }

    fn try_serve(
        &mut self,
        peer: &str,
        request: Request,
        limits: &ReconLimits,
        merged: &mut Option<ApplyReport>,
    ) -> Result<Response, StoreError> {
        let rules = self.sharing()?;
        let refuse = |collection: &CollectionName, direction| match rules
            .allows(peer, collection, direction)
        {
            true => Ok(()),
            false => Err(StoreError::NotShared {
                collection: collection.to_string(),
            }),
        };
        // A partial peer sees only the records its filters admit: a
        // filtered collection is not walked with it (the tree would name
        // records outside them) but listed (`Request::Filtered`), and a
        // fetch of a record outside them answers as if the record did not
        // exist.
        let filter = PeerFilter::load(&self.db.conn, peer)?;
        let unfiltered = |collection: &CollectionName| match filter.filters(collection) {
            false => Ok(()),
            true => Err(StoreError::NotShared {
                collection: collection.to_string(),
            }),
        };
        Ok(match request {
            Request::Collections => {
                // The head first: everything listed is at least this recent.
                let (head, _) = rows::log_head(&self.db.conn)?;
                let mut collections = Vec::new();
                for name in self.collection_names()? {
                    if rules.allows(peer, &name, Direction::ToPeer) && !filter.filters(&name) {
                        let root = self.recon_view(&name)?.fingerprint(Node::ROOT)?;
                        collections.push(SharedCollection {
                            name,
                            root: root.short(),
                            records: root.count,
                        });
                    }
                }
                Response::Collections {
                    head: SyncCursor::complete(head),
                    collections,
                }
            }
            Request::Reconcile {
                collection,
                entries,
            } => {
                refuse(&collection, Direction::ToPeer)?;
                unfiltered(&collection)?;
                let (entries, answered) =
                    respond(&mut self.recon_view(&collection)?, &entries, limits)?;
                Response::Reconcile {
                    entries,
                    answered: answered as u32,
                }
            }
            Request::Fetch {
                collection,
                ids,
                resume,
            } => {
                refuse(&collection, Direction::ToPeer)?;
                if ids.len() > MAX_FETCH_IDS {
                    return Ok(Response::Refused(Refusal::BadRequest));
                }
                let mut budget = Budget::new(usize::MAX, MAX_RECORDS_BYTES);
                let (mut changes, mut missing, mut cut) = (Vec::new(), Vec::new(), None);
                for (n, id) in ids.iter().enumerate() {
                    let Some(row) = row_of(&self.db.conn, &collection, id)? else {
                        missing.push(id.clone());
                        continue;
                    };
                    if filter.filters(&collection) {
                        let data = record_data(&self.db.conn, &collection, id)?;
                        // Records it as sent when it matches.
                        let verdict =
                            filter.verdict(&self.db.conn, &collection, id, data.as_deref())?;
                        if verdict != Verdict::Whole {
                            missing.push(id.clone());
                            continue;
                        }
                    }
                    // Continue after the cut only if the record has not moved
                    // (been rewritten) since; otherwise send it again whole.
                    let from = match resume {
                        Some(r) if n == 0 && r.position == row.position => r.slots,
                        _ => 0,
                    };
                    match row.take(from, |_| false, &mut budget, &mut changes)? {
                        Taken::Whole => {}
                        Taken::Cut(slots) => {
                            cut = Some(RecordCut {
                                position: row.position,
                                slots,
                            });
                            break;
                        }
                        Taken::NoRoom => break,
                    }
                }
                Response::Records {
                    changes,
                    missing,
                    cut,
                }
            }
            Request::Offer {
                collection,
                id,
                changes,
                whole,
            } => {
                refuse(&collection, Direction::FromPeer)?;
                if changes
                    .iter()
                    .any(|c| c.collection != collection || c.id != id)
                {
                    return Ok(Response::Refused(Refusal::BadRequest));
                }
                let report = self.merge_from_peer(peer, &collection, &changes)?;
                let changed = !report.changed.is_empty();
                *merged = Some(report);
                // Only the last part says what the whole offer was.
                let in_sync = match whole {
                    Some(offered) => {
                        let held = self.record_state(&collection, &id)?;
                        held.is_some_and(|state| StateDigest::of(&id, &state) == offered)
                    }
                    None => false,
                };
                Response::Offered { changed, in_sync }
            }
            Request::Filtered { collection, after } => {
                refuse(&collection, Direction::ToPeer)?;
                // Filtered for the peer: what the filter admits. Filtered
                // here (a full peer reports against us): everything live we
                // hold. Neither: the tree walk covers it.
                if !filter.filters(&collection) && !self.own_filters()?.filters(&collection) {
                    return Ok(Response::Refused(Refusal::BadRequest));
                }
                let (items, next) = crate::partial_report::serve_page(
                    &self.db.conn,
                    &filter,
                    &collection,
                    after.as_ref(),
                )?;
                Response::Filtered { items, next }
            }
            // The node starts the walk on this answer; the rule is the store's.
            Request::Level { collection } => {
                refuse(&collection, Direction::FromPeer)?;
                Response::Levelling
            }
        })
    }
}
