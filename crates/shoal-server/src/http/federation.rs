//! Federation over HTTP: the integrity report against a peer (`GET
//! /api/peers/{peer}/diff`, as `shoal diff`) and moving one record's full
//! state to or from it (`POST .../pull`, `.../push`).
//!
//! The reconciliation, the transfers and their reasons are the node's; this
//! file owns the query of a report, its paging, and the HTTP shape of the
//! answers (a transfer that did not happen is still `200`, with `ok: false`).
//! It must not merge or compare records itself: that is the node's, so the
//! CLI (`shoal diff`, `pull`, `push`) and the dashboard see the same answers.

use super::error::fed_code;
use super::extract::{self, JsonBody};
use super::{Failure, Shared, blocking, query_string};
use crate::api::{
    ApiError, CollectionDiff, DiffReply, DiffRow, FilteredDiff, MAX_DIFF_PAGE, TransferReply,
    TransferRequest,
};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::Uri;
use shoal::{CollectionName, FedError, PeerId, Reconciliation, RecordId, Transfer};

/// Differing records a diff page lists when `limit` is not given.
const DEFAULT_DIFF_PAGE: usize = 50;

/// `GET /api/peers/{peer}/diff?collection=NAME&limit=N&after=ID`: the
/// integrity report for one collection (counts and a page of differing
/// records), or — without `collection` — counts for every collection this
/// node has. A collection that cannot be checked (a sharing rule) says why in
/// its entry; an unreachable or silent peer fails the whole request.
#[utoipa::path(get, path = "/api/peers/{peer}/diff", tag = "federation",
    params(("peer" = String, Path, description = "a peer id"),
        ("collection" = Option<String>, Query, description = "report one collection, with its differing records"),
        ("after" = Option<String>, Query, description = "list differing records after this id"),
        ("limit" = Option<usize>, Query, description = "differing records listed, 1 to 10000 (default 50)")),
    responses((status = 200, body = DiffReply), (status = 400, body = ApiError),
        (status = 401, body = ApiError), (status = 403, body = ApiError),
        (status = 502, body = ApiError), (status = 504, body = ApiError)))]
pub async fn diff(
    State(control): State<Shared>,
    Path(peer): Path<String>,
    uri: Uri,
) -> Result<Json<DiffReply>, Failure> {
    let peer = extract::peer(&peer)?;
    let query = DiffQuery::parse(uri.query().unwrap_or(""))?;
    let named = query.collection.is_some();
    let collections = match &query.collection {
        Some(name) => vec![name.clone()],
        None => {
            let store = control.store.clone();
            let mut names: Vec<CollectionName> =
                blocking(move || store.status().map_err(Failure::store))
                    .await?
                    .collections
                    .into_iter()
                    .map(|c| c.name)
                    .collect();
            // And the collections only the peer has (those it sends us).
            let theirs = control
                .node
                .peer_collections(peer)
                .await
                .map_err(|e| Failure::federation(&e))?;
            for shared in theirs {
                if !names.contains(&shared.name) {
                    names.push(shared.name);
                }
            }
            names.sort();
            names
        }
    };
    let mut reply = DiffReply {
        peer: peer.to_string(),
        collections: Vec::with_capacity(collections.len()),
    };
    for collection in collections {
        match control.node.reconcile(peer, &collection).await {
            Ok(found) => reply.collections.push(report(found, &query)),
            Err(e) if named || matches!(e, FedError::Unreachable | FedError::TimedOut) => {
                return Err(Failure::federation(&e));
            }
            Err(e) => reply.collections.push(CollectionDiff {
                collection: collection.to_string(),
                counts: None,
                error: Some(ApiError {
                    code: fed_code(&e).to_string(),
                    message: e.to_string(),
                }),
                records: Vec::new(),
                next: None,
                unlisted: 0,
                round_trips: 0,
                bytes: 0,
                filtered: None,
            }),
        }
    }
    Ok(Json(reply))
}

/// One collection's entry; lists a page of differences if one was named.
fn report(found: Reconciliation, query: &DiffQuery) -> CollectionDiff {
    let outcome = found.outcome;
    let mut records = Vec::new();
    let mut next = None;
    if query.collection.is_some() {
        // Records deleted (or never seen) on both sides have no status.
        let mut rows: Vec<(RecordId, &'static str)> = outcome
            .differences
            .into_iter()
            .filter_map(|d| d.status().map(|s| (d.id, s.as_str())))
            .collect();
        rows.sort();
        rows.dedup_by(|a, b| a.0 == b.0);
        let mut page = rows
            .into_iter()
            .filter(|(id, _)| query.after.as_ref().is_none_or(|after| id > after))
            .peekable();
        for (id, status) in page.by_ref().take(query.limit) {
            records.push(DiffRow {
                id: id.to_string(),
                status: status.to_string(),
            });
        }
        if page.peek().is_some() {
            next = records.last().map(|row| row.id.clone());
        }
    }
    CollectionDiff {
        collection: found.collection.to_string(),
        counts: Some(outcome.counts.into()),
        error: None,
        records,
        next,
        unlisted: outcome.dropped,
        round_trips: outcome.round_trips,
        bytes: found.bytes,
        filtered: found.filtered.map(|c| FilteredDiff {
            peer: c.peer_admitted,
            local: c.local_admitted,
        }),
    }
}

/// The query of a diff request.
struct DiffQuery {
    collection: Option<CollectionName>,
    limit: usize,
    after: Option<RecordId>,
}

impl DiffQuery {
    fn parse(query: &str) -> Result<Self, Failure> {
        let mut parsed = DiffQuery {
            collection: None,
            limit: DEFAULT_DIFF_PAGE,
            after: None,
        };
        for (key, value) in query_string::pairs(query) {
            let value = value
                .map_err(|pair| Failure::bad_request(format!("`{pair}` is not URL-encoded")))?;
            match key {
                "collection" => {
                    parsed.collection = Some(extract::collection(&value)?);
                }
                "after" => {
                    parsed.after = Some(extract::record_id(&value)?);
                }
                "limit" => {
                    parsed.limit = value
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=MAX_DIFF_PAGE).contains(n))
                        .ok_or_else(|| {
                            Failure::bad_request(format!(
                                "limit must be 1 to {MAX_DIFF_PAGE}, not `{value}`"
                            ))
                        })?;
                }
                other => {
                    return Err(Failure::bad_request(format!(
                        "unknown parameter `{other}` (expected collection, limit, after)"
                    )));
                }
            }
        }
        Ok(parsed)
    }
}

/// `POST /api/peers/{peer}/pull`: fetch one record's full state from the peer
/// and merge it here.
#[utoipa::path(post, path = "/api/peers/{peer}/pull", tag = "federation",
    params(("peer" = String, Path, description = "a peer id")), request_body = TransferRequest,
    responses((status = 200, body = TransferReply), (status = 400, body = ApiError),
        (status = 401, body = ApiError), (status = 415, body = ApiError)))]
pub async fn pull(
    State(control): State<Shared>,
    Path(peer): Path<String>,
    JsonBody(request): JsonBody<TransferRequest>,
) -> Result<Json<TransferReply>, Failure> {
    let (peer, collection, id) = transfer_request(&peer, request)?;
    let done = control.node.pull_record(peer, &collection, &id).await;
    Ok(Json(transfer_reply(&done)))
}

/// `POST /api/peers/{peer}/push`: offer one record's full state to the peer,
/// which merges it.
#[utoipa::path(post, path = "/api/peers/{peer}/push", tag = "federation",
    params(("peer" = String, Path, description = "a peer id")), request_body = TransferRequest,
    responses((status = 200, body = TransferReply), (status = 400, body = ApiError),
        (status = 401, body = ApiError), (status = 415, body = ApiError)))]
pub async fn push(
    State(control): State<Shared>,
    Path(peer): Path<String>,
    JsonBody(request): JsonBody<TransferRequest>,
) -> Result<Json<TransferReply>, Failure> {
    let (peer, collection, id) = transfer_request(&peer, request)?;
    let done = control.node.push_record(peer, &collection, &id).await;
    Ok(Json(transfer_reply(&done)))
}

fn transfer_request(
    peer: &str,
    request: TransferRequest,
) -> Result<(PeerId, CollectionName, RecordId), Failure> {
    let peer = extract::peer(peer)?;
    let collection = extract::collection(&request.collection)?;
    let id = extract::record_id(&request.id)?;
    Ok((peer, collection, id))
}

fn transfer_reply(done: &Transfer) -> TransferReply {
    TransferReply {
        result: done.code().to_string(),
        reason: done.to_string(),
        ok: done.is_success(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[test]
    fn diff_queries_parse_and_bad_ones_are_named() {
        let q = DiffQuery::parse("collection=tasks&limit=7&after=a%3A1").unwrap();
        assert_eq!(q.collection.unwrap().as_str(), "tasks");
        assert_eq!(q.limit, 7);
        assert_eq!(q.after.unwrap().as_str(), "a:1");
        let q = DiffQuery::parse("").unwrap();
        assert!(q.collection.is_none() && q.after.is_none());
        assert_eq!(q.limit, DEFAULT_DIFF_PAGE);
        for (query, code) in [
            ("limit=0", "bad-request"),
            ("limit=x", "bad-request"),
            ("collection=no+spaces", "invalid-collection"),
            ("after=bad%2Fid", "invalid-id"),
            ("after=%zz", "bad-request"),
            ("colour=red", "bad-request"),
        ] {
            let Err(Failure {
                status, code: got, ..
            }) = DiffQuery::parse(query)
            else {
                panic!("{query} was accepted");
            };
            assert_eq!((status, got), (StatusCode::BAD_REQUEST, code), "{query}");
        }
    }
}
