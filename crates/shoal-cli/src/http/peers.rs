//! The node and its peers over HTTP: `GET /api/node`, the peer table,
//! adding a peer (an address or an invite code), forgetting one, and
//! `POST /api/sync`.
//!
//! It owns what the daemon remembers of peers (`DATA/peers.txt`, through
//! `peer_file`) and refuses an invite of another group; dialing and
//! disconnecting are the node's. It must not write the group key: joining
//! another group is `shoal join`'s, with a restart.

use super::extract::{self, JsonBody};
use super::{Failure, Shared, blocking};
use crate::api::{
    AddPeer, AddPeerReply, ApiError, ForgetReply, NodeInfo, PeerInfo, PeersReply, SyncReply,
};
use crate::{invite, peer_file, secrets};
use axum::Json;
use axum::extract::{Path, State};
use shoal::{Invite, Multiaddr};
use std::time::Duration;

/// This node: peer id, name, listen addresses, db_version, group and an
/// invite code.
#[utoipa::path(get, path = "/api/node", tag = "node",
    responses((status = 200, body = NodeInfo), (status = 401, body = ApiError)))]
pub async fn node(State(control): State<Shared>) -> Result<Json<NodeInfo>, Failure> {
    let listen: Vec<String> = control
        .node
        .listen_addrs(Duration::from_secs(1))
        .await
        .map_err(Failure::net)?
        .iter()
        .map(|a| a.to_string())
        .collect();
    let data = control.data.clone();
    let salt = blocking(move || {
        secrets::ensure_salt(&data).map_err(|e| Failure::internal(format!("{e:#}")))
    })
    .await?;
    let code = invite::invite_address(&listen).map(|address| {
        Invite {
            key: control.key.clone(),
            salt,
            address,
        }
        .to_string()
    });
    let peer_id = control.node.peer_id().to_string();
    let store = control.store.clone();
    let db_version = blocking(move || Ok(store.db_version().0)).await?;
    Ok(Json(NodeInfo {
        name: control.name.clone().unwrap_or_else(|| name_of(&peer_id)),
        peer_id,
        listen,
        db_version,
        group: control.group.clone(),
        invite: code,
    }))
}

/// A node's default label: `node-` and the last 6 characters of its peer id.
fn name_of(peer_id: &str) -> String {
    let start = peer_id.len().saturating_sub(6);
    format!("node-{}", peer_id.get(start..).unwrap_or(peer_id))
}

/// Every peer the node knows, with its state.
#[utoipa::path(get, path = "/api/peers", tag = "peers", operation_id = "list_peers",
    responses((status = 200, body = PeersReply), (status = 401, body = ApiError)))]
pub async fn list(State(control): State<Shared>) -> Json<PeersReply> {
    Json(PeersReply {
        peers: control.node.peers().iter().map(PeerInfo::from).collect(),
    })
}

/// Dials an address or an invite's address now and remembers it in
/// `peers.txt`.
#[utoipa::path(post, path = "/api/peers", tag = "peers", request_body = AddPeer,
    responses((status = 200, body = AddPeerReply), (status = 400, body = ApiError),
        (status = 401, body = ApiError), (status = 415, body = ApiError)))]
pub async fn add(
    State(control): State<Shared>,
    JsonBody(request): JsonBody<AddPeer>,
) -> Result<Json<AddPeerReply>, Failure> {
    let address = match (request.address, request.invite) {
        (Some(address), None) => address.trim().parse::<Multiaddr>().map_err(|e| {
            Failure::invalid(
                "invalid-address",
                format!("`{address}` is not a multiaddr: {e}"),
            )
        })?,
        (None, Some(code)) => {
            let invite: Invite = code
                .parse()
                .map_err(|e| Failure::bad_request(format!("invalid invite code: {e}")))?;
            if secrets::fingerprint(&invite.key) != control.group {
                return Err(Failure::bad_request(
                    "this invite is for another group: this daemon runs with a different \
                     group secret (use `shoal join` and restart `shoal serve` to switch groups)",
                ));
            }
            if invite
                .address
                .to_string()
                .ends_with(&format!("/p2p/{}", control.node.peer_id()))
            {
                return Err(Failure::bad_request(
                    "this invite code is this node's own; use it on the other machine",
                ));
            }
            invite.address
        }
        _ => {
            return Err(Failure::bad_request(
                "expected {\"address\": \"MULTIADDR\"} or {\"invite\": \"CODE\"}",
            ));
        }
    };
    control
        .node
        .dial(address.clone())
        .await
        .map_err(Failure::net)?;
    let data = control.data.clone();
    let remembered = {
        let address = address.clone();
        blocking(move || {
            peer_file::add(&data, &address).map_err(|e| Failure::internal(crate::exit::message(&e)))
        })
        .await?
    };
    Ok(Json(AddPeerReply {
        address: address.to_string(),
        remembered,
    }))
}

/// Forgets a peer: its lines in `peers.txt`, and its connection.
#[utoipa::path(delete, path = "/api/peers/{peer}", tag = "peers",
    params(("peer" = String, Path, description = "a peer id")),
    responses((status = 200, body = ForgetReply), (status = 400, body = ApiError),
        (status = 401, body = ApiError), (status = 404, body = ApiError)))]
pub async fn forget(
    State(control): State<Shared>,
    Path(peer): Path<String>,
) -> Result<Json<ForgetReply>, Failure> {
    let peer = extract::peer(&peer)?;
    let data = control.data.clone();
    let removed = blocking(move || {
        peer_file::remove(&data, &peer).map_err(|e| Failure::internal(crate::exit::message(&e)))
    })
    .await?;
    let known = control.node.peer(&peer).is_some();
    let dropped = control.node.forget_peer(peer).await.map_err(Failure::net)?;
    if removed == 0 && dropped == 0 && !known {
        return Err(Failure::not_found(format!(
            "peer {peer} is neither in peers.txt nor known to the node"
        )));
    }
    Ok(Json(ForgetReply {
        peer: peer.to_string(),
        removed: removed as u64,
    }))
}

/// Asks every connected peer for its changes now.
#[utoipa::path(post, path = "/api/sync", tag = "peers",
    responses((status = 200, body = SyncReply), (status = 401, body = ApiError)))]
pub async fn sync(State(control): State<Shared>) -> Result<Json<SyncReply>, Failure> {
    let requested_ms = crate::api::now_ms();
    let sessions = control.node.sync_now().await.map_err(Failure::net)?;
    Ok(Json(SyncReply {
        sessions,
        requested_ms,
    }))
}
