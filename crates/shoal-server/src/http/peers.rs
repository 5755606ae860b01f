//! The node and its peers over HTTP: `GET /api/node`, the peer table,
//! adding a peer (an address or an invite code), forgetting one, and
//! `POST /api/sync`.
//!
//! It asks the [`PeerBook`](super::PeerBook) (`DATA/peers.txt` in `shoal serve`)
//! to remember and forget peers and refuses an invite of another group; dialing and
//! disconnecting are the node's. It must not write the group key: joining
//! another group is `shoal join`'s, with a restart.

use super::extract::{self, JsonBody};
use super::{Failure, Shared, blocking};
use crate::api::{
    AddPeer, AddPeerReply, ApiError, ForgetReply, NodeInfo, PeerInfo, PeersReply, PunchInfo,
    SyncReply,
};
use axum::Json;
use axum::extract::{Path, State};
use shoal::{Invite, Multiaddr};
use std::net::IpAddr;
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
    let relays = control.node.relays().to_vec();
    let code = invite_address(&listen).map(|address| {
        Invite {
            key: control.key.clone(),
            salt: control.salt,
            address,
            relays: relays
                .iter()
                .take(shoal::MAX_INVITE_RELAYS)
                .cloned()
                .collect(),
        }
        .to_string()
    });
    let peer_id = control.node.peer_id().to_string();
    let store = control.store.clone();
    let db_version = blocking(move || Ok(store.db_version().0)).await?;
    Ok(Json(NodeInfo {
        name: control.name.clone().unwrap_or_else(|| name_of(&peer_id)),
        peer_id,
        websocket: listen.iter().filter(|a| is_websocket(a)).cloned().collect(),
        listen,
        db_version,
        group: control.group.clone(),
        invite: code,
        relays: relays.iter().map(|r| r.to_string()).collect(),
        reachability: control.node.reachability().as_str().to_string(),
    }))
}

/// Whether a listen address is a WebSocket one (`…/ws` or `…/ws/p2p/…`).
pub fn is_websocket(address: &str) -> bool {
    address.split('/').any(|part| part == "ws" || part == "wss")
}

/// A node's default label: `node-` and the last 6 characters of its peer id.
fn name_of(peer_id: &str) -> String {
    let start = peer_id.len().saturating_sub(6);
    format!("node-{}", peer_id.get(start..).unwrap_or(peer_id))
}

/// Among listen addresses other than WebSocket ones (those are for browser
/// tabs): the first that is neither loopback nor unspecified, else the
/// first loopback one.
pub fn invite_address(listen: &[String]) -> Option<Multiaddr> {
    let class = |address: &str| -> u8 {
        let mut parts = address.split('/').skip(1);
        let ip: Option<IpAddr> = match (parts.next(), parts.next()) {
            (Some("ip4" | "ip6"), Some(ip)) => ip.parse().ok(),
            _ => None,
        };
        match ip {
            Some(ip) if ip.is_unspecified() => 2,
            Some(ip) if ip.is_loopback() => 1,
            _ => 0,
        }
    };
    [0, 1]
        .iter()
        .find_map(|wanted| {
            listen
                .iter()
                .find(|a| !is_websocket(a) && class(a) == *wanted)
        })
        .and_then(|a| a.parse().ok())
}

/// Every peer the node knows, with its state.
#[utoipa::path(get, path = "/api/peers", tag = "peers", operation_id = "list_peers",
    responses((status = 200, body = PeersReply), (status = 401, body = ApiError)))]
pub async fn list(State(control): State<Shared>) -> Json<PeersReply> {
    let net = control.node.metrics();
    Json(PeersReply {
        peers: control.node.peers().iter().map(PeerInfo::from).collect(),
        reachability: control.node.reachability().as_str().to_string(),
        punch: PunchInfo {
            attempts: net.punch_attempts,
            successes: net.punch_successes,
            last_error: None,
        },
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
    // An invite's relays give more ways in: through each, best effort.
    let mut relayed = Vec::new();
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
            if crate::api::fingerprint(&invite.key) != control.group {
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
            relayed = invite.relayed_addresses();
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
    for via in &relayed {
        if let Err(e) = control.node.dial(via.clone()).await {
            tracing::info!("cannot dial {via}: {e}");
        }
    }
    let remembered = match control.peer_book.clone() {
        Some(book) => {
            let address = address.clone();
            blocking(move || {
                for via in &relayed {
                    book.add(via).map_err(Failure::internal)?;
                }
                book.add(&address).map_err(Failure::internal)
            })
            .await?
        }
        None => false,
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
    let removed = match control.peer_book.clone() {
        Some(book) => blocking(move || book.remove(&peer).map_err(Failure::internal)).await?,
        None => 0,
    };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invite_address_prefers_a_routable_one() {
        let listen = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let pick = |v: &[&str]| invite_address(&listen(v)).map(|a| a.to_string());
        assert_eq!(
            pick(&[
                "/ip4/127.0.0.1/tcp/4040",
                "/ip4/0.0.0.0/tcp/4040",
                "/ip4/192.168.1.5/tcp/4040"
            ]),
            Some("/ip4/192.168.1.5/tcp/4040".into())
        );
        assert_eq!(
            pick(&["/ip4/127.0.0.1/tcp/4040", "/ip6/::1/tcp/4040"]),
            Some("/ip4/127.0.0.1/tcp/4040".into())
        );
        assert_eq!(pick(&["/ip4/0.0.0.0/tcp/4040"]), None);
        assert_eq!(pick(&[]), None);
        // WebSocket addresses are for browser tabs, never an invite's.
        assert_eq!(
            pick(&["/ip4/127.0.0.1/tcp/9/ws/p2p/x", "/ip4/127.0.0.1/tcp/4040"]),
            Some("/ip4/127.0.0.1/tcp/4040".into())
        );
        assert_eq!(pick(&["/ip4/192.168.1.5/tcp/9/ws"]), None);
    }

    #[test]
    fn websocket_addresses_are_told_apart() {
        assert!(is_websocket("/ip4/127.0.0.1/tcp/9/ws/p2p/12D3Koo"));
        assert!(is_websocket("/dns4/example.org/tcp/443/wss"));
        assert!(!is_websocket("/ip4/127.0.0.1/tcp/9"));
        assert!(!is_websocket("/ip4/127.0.0.1/udp/9/quic-v1/p2p/wsx"));
    }
}
