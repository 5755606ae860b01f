//! The daemon's local HTTP control API (axum): `GET /api/node`,
//! `GET /api/peers`, `POST /api/sync` and `POST /api/peers`.
//!
//! This module owns the routes, the bearer-token check every request passes
//! (compared in constant time; 401 otherwise), and the JSON error shape
//! `{"code", "message"}` of every failure, unknown routes included. The
//! shapes of the bodies are `api.rs`'s.

use crate::api::{AddPeer, AddPeerReply, ApiError, NodeInfo, PeerInfo, PeersReply, SyncReply};
use crate::datadir::DataDir;
use crate::peer_file;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use shoal::{Multiaddr, NetError, Node, Store};
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
        .route("/api/sync", axum::routing::post(sync))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(shared.clone(), authorize))
        .with_state(shared)
}

/// A failed request: status, code and message.
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

async fn not_found() -> Failure {
    Failure(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such route; see GET /api/node, GET /api/peers, POST /api/peers, POST /api/sync".into(),
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
