//! Sharing rules over HTTP: reading them, setting how one collection flows
//! with one peer (or with every peer, `*`), and marking a collection
//! local-only. Each reply is the rules after the change.
//!
//! What a rule means, and its enforcement on both sides, is the library's;
//! this file only checks the parameters and shows the rules. It must not
//! interpret a rule itself (e.g. decide what flows).

use super::extract::{self, JsonBody};
use super::{Failure, Shared, blocking};
use crate::api::{ApiError, SetLocalOnly, SharingReply, SharingRule};
use axum::Json;
use axum::extract::State;
use shoal::{ANY_PEER, ShareMode, SharingRules, Store};

/// The sharing rules.
#[utoipa::path(get, path = "/api/sharing", tag = "sharing",
    responses((status = 200, body = SharingReply), (status = 401, body = ApiError)))]
pub async fn rules(State(control): State<Shared>) -> Result<Json<SharingReply>, Failure> {
    let store = control.store.clone();
    Ok(Json(blocking(move || read(&store)).await?))
}

/// Sets how one collection flows with one peer (`*`: every peer without a
/// rule of its own).
#[utoipa::path(put, path = "/api/sharing", tag = "sharing", request_body = SharingRule,
    responses((status = 200, body = SharingReply), (status = 400, body = ApiError),
        (status = 401, body = ApiError), (status = 415, body = ApiError)))]
pub async fn set_rule(
    State(control): State<Shared>,
    JsonBody(rule): JsonBody<SharingRule>,
) -> Result<Json<SharingReply>, Failure> {
    let peer = match rule.peer.trim() {
        ANY_PEER => ANY_PEER.to_string(),
        peer => extract::peer(peer)?.to_string(),
    };
    let collection = extract::collection(&rule.collection)?;
    let mode: ShareMode = rule.mode.parse().map_err(|_| {
        Failure::bad_request(format!(
            "mode must be both, send, receive or none, not `{}`",
            rule.mode
        ))
    })?;
    let store = control.store.clone();
    let reply = blocking(move || {
        store
            .share(&peer, collection.as_str(), mode)
            .map_err(Failure::store)?;
        read(&store)
    })
    .await?;
    Ok(Json(reply))
}

/// Marks a collection local-only (never leaves this node, takes nothing
/// from peers), or lifts the mark.
#[utoipa::path(put, path = "/api/sharing/local-only", tag = "sharing",
    request_body = SetLocalOnly,
    responses((status = 200, body = SharingReply), (status = 400, body = ApiError),
        (status = 401, body = ApiError), (status = 415, body = ApiError)))]
pub async fn set_local_only(
    State(control): State<Shared>,
    JsonBody(request): JsonBody<SetLocalOnly>,
) -> Result<Json<SharingReply>, Failure> {
    let collection = extract::collection(&request.collection)?;
    let store = control.store.clone();
    let reply = blocking(move || {
        store
            .set_local_only(collection.as_str(), request.local_only)
            .map_err(Failure::store)?;
        read(&store)
    })
    .await?;
    Ok(Json(reply))
}

fn read(store: &Store) -> Result<SharingReply, Failure> {
    let rules = store.sharing().map_err(Failure::store)?;
    Ok(shown(&rules))
}

fn shown(rules: &SharingRules) -> SharingReply {
    SharingReply {
        default: ShareMode::default().as_str().to_string(),
        local_only: rules.local_only().map(|c| c.to_string()).collect(),
        rules: rules
            .explicit()
            .map(|(peer, collection, mode)| SharingRule {
                peer: peer.to_string(),
                collection: collection.to_string(),
                mode: mode.as_str().to_string(),
            })
            .collect(),
    }
}
