//! The daemon's local HTTP control API (axum): `GET /api/node`,
//! `GET /api/peers`, `POST /api/sync`, `POST /api/peers`, and federation —
//! `GET /api/peers/{peer}/diff`, `POST /api/peers/{peer}/pull` and
//! `POST /api/peers/{peer}/push` (the commands `shoal diff`, `pull`, `push`).
//!
//! This module owns the routes, the bearer-token check every request passes
//! (compared in constant time; 401 otherwise), and the JSON error shape
//! `{"code", "message"}` of every failure, unknown routes included. The
//! shapes of the bodies are `api.rs`'s.

use crate::api::{
    AddPeer, AddPeerReply, ApiError, CollectionDiff, DiffReply, DiffRow, MAX_DIFF_PAGE, NodeInfo,
    PeerInfo, PeersReply, SyncReply, TransferReply, TransferRequest,
};
use crate::datadir::DataDir;
use crate::peer_file;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use shoal::{
    CollectionName, FedError, Multiaddr, NetError, Node, PeerId, Reconciliation, RecordId, Refusal,
    Store, Transfer,
};
use std::sync::Arc;
use std::time::Duration;

/// What the handlers share.
pub struct Control {
    /// The running node.
    pub node: Arc<Node>,
    /// The store it syncs.
    pub store: Store,
    /// The data directory (for `peers.txt`).
    pub data: DataDir,
    /// BLAKE3 of the access token (compared in constant time).
    pub token_hash: blake3::Hash,
    /// Fingerprint of the group key.
    pub group: String,
}

type Shared = Arc<Control>;

/// The router, every route behind the token check.
pub fn router(control: Control) -> Router {
    let shared: Shared = Arc::new(control);
    Router::new()
        .route("/api/node", get(node))
        .route("/api/peers", get(peers).post(add_peer))
        .route("/api/sync", post(sync))
        .route("/api/peers/{peer}/diff", get(diff))
        .route("/api/peers/{peer}/pull", post(pull))
        .route("/api/peers/{peer}/push", post(push))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(shared.clone(), authorize))
        .with_state(shared)
}

/// A failed request: status, code and message.
#[derive(Debug)]
struct Failure(StatusCode, &'static str, String);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let body = ApiError {
            code: self.1.to_string(),
            message: self.2,
        };
        (self.0, Json(body)).into_response()
    }
}

async fn authorize(State(control): State<Shared>, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|token| blake3::hash(token.trim().as_bytes()));
    // blake3::Hash compares in constant time.
    if given != Some(control.token_hash) {
        return Failure(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong `Authorization: Bearer <token>` (the token is in DATA/token)".into(),
        )
        .into_response();
    }
    next.run(request).await
}

async fn node(State(control): State<Shared>) -> Result<Json<NodeInfo>, Failure> {
    let listen = control
        .node
        .listen_addrs(Duration::from_secs(1))
        .await
        .map_err(net_failure)?;
    Ok(Json(NodeInfo {
        peer_id: control.node.peer_id().to_string(),
        listen: listen.iter().map(|a| a.to_string()).collect(),
        db_version: control.store.db_version().0,
        group: control.group.clone(),
    }))
}

async fn peers(State(control): State<Shared>) -> Json<PeersReply> {
    Json(PeersReply {
        peers: control.node.peers().iter().map(PeerInfo::from).collect(),
    })
}

async fn sync(State(control): State<Shared>) -> Result<Json<SyncReply>, Failure> {
    let requested_ms = crate::api::now_ms();
    let sessions = control.node.sync_now().await.map_err(net_failure)?;
    Ok(Json(SyncReply {
        sessions,
        requested_ms,
    }))
}

async fn add_peer(
    State(control): State<Shared>,
    body: Bytes,
) -> Result<Json<AddPeerReply>, Failure> {
    let request: AddPeer = serde_json::from_slice(&body).map_err(|e| {
        Failure(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("expected {{\"address\": \"MULTIADDR\"}}: {e}"),
        )
    })?;
    let address: Multiaddr = request.address.trim().parse().map_err(|e| {
        Failure(
            StatusCode::BAD_REQUEST,
            "bad_address",
            format!("`{}` is not a multiaddr: {e}", request.address),
        )
    })?;
    control
        .node
        .dial(address.clone())
        .await
        .map_err(net_failure)?;
    let data = control.data.clone();
    let remembered = {
        let address = address.clone();
        tokio::task::spawn_blocking(move || peer_file::add(&data, &address)).await
    }
    .map_err(|e| internal(e.to_string()))?
    .map_err(|e| internal(crate::exit::message(&e)))?;
    Ok(Json(AddPeerReply {
        address: address.to_string(),
        remembered,
    }))
}

/// Differing records a diff page lists when `limit` is not given.
const DEFAULT_DIFF_PAGE: usize = 50;

/// `GET /api/peers/{peer}/diff?collection=NAME&limit=N&after=ID`: the
/// integrity report for one collection (counts and a page of differing
/// records), or — without `collection` — counts for every collection this
/// node has. A collection that cannot be checked (a sharing rule) says why in
/// its entry; an unreachable or silent peer fails the whole request.
async fn diff(
    State(control): State<Shared>,
    Path(peer): Path<String>,
    uri: Uri,
) -> Result<Json<DiffReply>, Failure> {
    let peer = parse_peer(&peer)?;
    let query = DiffQuery::parse(uri.query().unwrap_or(""))?;
    let named = query.collection.is_some();
    let collections = match &query.collection {
        Some(name) => vec![name.clone()],
        None => {
            let store = control.store.clone();
            let mut names: Vec<CollectionName> =
                tokio::task::spawn_blocking(move || store.status())
                    .await
                    .map_err(|e| internal(e.to_string()))?
                    .map_err(|e| internal(e.to_string()))?
                    .collections
                    .into_iter()
                    .map(|c| c.name)
                    .collect();
            // And the collections only the peer has (those it sends us).
            let theirs = control
                .node
                .peer_collections(peer)
                .await
                .map_err(|e| fed_failure(&e))?;
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
                return Err(fed_failure(&e));
            }
            Err(e) => reply.collections.push(CollectionDiff {
                collection: collection.to_string(),
                counts: None,
                error: Some(ApiError {
                    code: fed_code(&e).to_string(),
                    message: e.to_string(),
                }),
                differences: Vec::new(),
                next_after: None,
                unlisted: 0,
                round_trips: 0,
                bytes: 0,
            }),
        }
    }
    Ok(Json(reply))
}

/// One collection's entry; lists a page of differences if one was named.
fn report(found: Reconciliation, query: &DiffQuery) -> CollectionDiff {
    let outcome = found.outcome;
    let mut differences = Vec::new();
    let mut next_after = None;
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
            differences.push(DiffRow {
                id: id.to_string(),
                status: status.to_string(),
            });
        }
        if page.peek().is_some() {
            next_after = differences.last().map(|row| row.id.clone());
        }
    }
    CollectionDiff {
        collection: found.collection.to_string(),
        counts: Some(outcome.counts.into()),
        error: None,
        differences,
        next_after,
        unlisted: outcome.dropped,
        round_trips: outcome.round_trips,
        bytes: found.bytes,
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
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode(value).ok_or_else(|| {
                bad_request("bad_request", format!("`{pair}` is not URL-encoded"))
            })?;
            match key {
                "collection" => {
                    let name = CollectionName::new(value)
                        .map_err(|e| bad_request("bad_collection", e.to_string()))?;
                    parsed.collection = Some(name);
                }
                "after" => {
                    let id =
                        RecordId::new(value).map_err(|e| bad_request("bad_id", e.to_string()))?;
                    parsed.after = Some(id);
                }
                "limit" => {
                    parsed.limit = value
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=MAX_DIFF_PAGE).contains(n))
                        .ok_or_else(|| {
                            bad_request(
                                "bad_request",
                                format!("limit must be 1 to {MAX_DIFF_PAGE}, not `{value}`"),
                            )
                        })?;
                }
                other => {
                    return Err(bad_request(
                        "bad_request",
                        format!("unknown parameter `{other}` (expected collection, limit, after)"),
                    ));
                }
            }
        }
        Ok(parsed)
    }
}

/// `%XX` escapes and `+` decoded; `None` if malformed or not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        rest = tail;
        match b {
            b'+' => bytes.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(rest.get(..2)?).ok()?;
                bytes.push(u8::from_str_radix(hex, 16).ok()?);
                rest = &rest[2..];
            }
            b => bytes.push(b),
        }
    }
    String::from_utf8(bytes).ok()
}

/// `POST /api/peers/{peer}/pull`: fetch one record's full state from the peer
/// and merge it here.
async fn pull(
    State(control): State<Shared>,
    Path(peer): Path<String>,
    body: Bytes,
) -> Result<Json<TransferReply>, Failure> {
    let (peer, collection, id) = transfer_request(&peer, &body)?;
    let done = control.node.pull_record(peer, &collection, &id).await;
    Ok(Json(transfer_reply(&done)))
}

/// `POST /api/peers/{peer}/push`: offer one record's full state to the peer,
/// which merges it.
async fn push(
    State(control): State<Shared>,
    Path(peer): Path<String>,
    body: Bytes,
) -> Result<Json<TransferReply>, Failure> {
    let (peer, collection, id) = transfer_request(&peer, &body)?;
    let done = control.node.push_record(peer, &collection, &id).await;
    Ok(Json(transfer_reply(&done)))
}

fn transfer_request(
    peer: &str,
    body: &[u8],
) -> Result<(PeerId, CollectionName, RecordId), Failure> {
    let peer = parse_peer(peer)?;
    let request: TransferRequest = serde_json::from_slice(body).map_err(|e| {
        bad_request(
            "bad_request",
            format!("expected {{\"collection\": \"NAME\", \"id\": \"ID\"}}: {e}"),
        )
    })?;
    let collection = CollectionName::new(request.collection)
        .map_err(|e| bad_request("bad_collection", e.to_string()))?;
    let id = RecordId::new(request.id).map_err(|e| bad_request("bad_id", e.to_string()))?;
    Ok((peer, collection, id))
}

fn transfer_reply(done: &Transfer) -> TransferReply {
    TransferReply {
        result: done.code().to_string(),
        reason: done.to_string(),
        ok: done.is_success(),
    }
}

fn parse_peer(text: &str) -> Result<PeerId, Failure> {
    text.parse()
        .map_err(|e| bad_request("bad_peer", format!("`{text}` is not a peer id: {e}")))
}

/// The machine code of a failed federation request (the same codes as a
/// failed pull or push: `peer-unreachable`, `timed-out`, ...).
fn fed_code(error: &FedError) -> &'static str {
    Transfer::Failed(error.clone()).code()
}

fn fed_failure(error: &FedError) -> Failure {
    let status = match error {
        FedError::Unreachable | FedError::BadAnswer(_) => StatusCode::BAD_GATEWAY,
        FedError::TimedOut => StatusCode::GATEWAY_TIMEOUT,
        FedError::Refused(Refusal::NotShared) | FedError::NotSharedHere(_) => StatusCode::FORBIDDEN,
        FedError::Refused(_) => StatusCode::BAD_GATEWAY,
        FedError::Local(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    Failure(status, fed_code(error), error.to_string())
}

fn bad_request(code: &'static str, message: String) -> Failure {
    Failure(StatusCode::BAD_REQUEST, code, message)
}

async fn not_found() -> Failure {
    Failure(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such route; see GET /api/node, GET /api/peers, POST /api/peers, POST /api/sync, \
         GET /api/peers/{peer}/diff, POST /api/peers/{peer}/pull, POST /api/peers/{peer}/push"
            .into(),
    )
}

async fn method_not_allowed() -> Failure {
    Failure(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method".into(),
    )
}

fn net_failure(error: NetError) -> Failure {
    match error {
        NetError::Dial { .. } => Failure(StatusCode::BAD_GATEWAY, "dial_failed", error.to_string()),
        NetError::Stopped => Failure(
            StatusCode::SERVICE_UNAVAILABLE,
            "stopped",
            error.to_string(),
        ),
        other => Failure(StatusCode::BAD_GATEWAY, "network", other.to_string()),
    }
}

fn internal(message: String) -> Failure {
    Failure(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
}

#[cfg(test)]
mod tests {
    use super::*;

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
            ("limit=0", "bad_request"),
            ("limit=x", "bad_request"),
            ("collection=no+spaces", "bad_collection"),
            ("after=bad%2Fid", "bad_id"),
            ("after=%zz", "bad_request"),
            ("colour=red", "bad_request"),
        ] {
            let Err(Failure(status, got, _)) = DiffQuery::parse(query) else {
                panic!("{query} was accepted");
            };
            assert_eq!((status, got), (StatusCode::BAD_REQUEST, code), "{query}");
        }
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Fb+c").as_deref(), Some("a/b c"));
        assert_eq!(percent_decode("plain").as_deref(), Some("plain"));
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%ff"), None);
    }
}
